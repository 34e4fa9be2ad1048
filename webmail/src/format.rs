//! How the pages write dates and sizes: French dates in Paris time (the agenda's
//! [`mshub_agenda::french`]), the UTC form of `<time datetime>`, and file sizes.

/// "24 novembre 2026"
pub fn date_fr(unix: i64) -> String {
    mshub_agenda::french::date(unix)
}

/// "12 mai 1984": a calendar day without time (a birth date, a vaccination).
pub fn day_fr(day: mshub_agenda::NaiveDate) -> String {
    mshub_agenda::french::day(day)
}

/// "24 novembre 2026 à 11:05"
pub fn datetime_fr(unix: i64) -> String {
    mshub_agenda::french::datetime(unix)
}

/// Civil date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DDTHH:MM` for a `<time datetime>` attribute, in UTC.
pub fn iso_utc(unix: i64) -> String {
    let (y, m, d) = civil(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// A size as the pages write it: "512 o", "12 Ko", "3.4 Mo".
pub fn human_size(n: usize) -> String {
    match n {
        n if n < 1024 => format!("{n} o"),
        n if n < 1024 * 1024 => format!("{} Ko", n.div_ceil(1024)),
        n => format!("{:.1} Mo", n as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_readable_times_are_utc() {
        assert_eq!(iso_utc(1_795_514_400), "2026-11-24T10:00Z");
        assert_eq!(datetime_fr(1_795_514_400), "24 novembre 2026 à 11:00");
    }
}
