//! Dates as a French reader expects them, in Paris time (the hub's users are in metropolitan
//! France; overseas time zones are future work).

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

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

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The last Sunday of a month at 01:00 UTC, when EU summer time starts (March) or ends
/// (October) — Directive 2000/84/EC.
fn last_sunday_1utc(year: i64, month: u32) -> i64 {
    let last_day = days_from_civil(year, month + 1, 1) - 1;
    // 1970-01-01 was a Thursday: weekday 0 = Sunday is (days + 4) mod 7.
    let sunday = last_day - (last_day + 4).rem_euclid(7);
    sunday * 86_400 + 3_600
}

/// Paris offset from UTC at `unix`, in seconds.
fn paris_offset(unix: i64) -> i64 {
    let (year, _, _) = civil(unix.div_euclid(86_400));
    if unix >= last_sunday_1utc(year, 3) && unix < last_sunday_1utc(year, 10) {
        7_200
    } else {
        3_600
    }
}

fn local(unix: i64) -> (i64, u32, u32, i64, i64) {
    let t = unix + paris_offset(unix);
    let (y, m, d) = civil(t.div_euclid(86_400));
    let secs = t.rem_euclid(86_400);
    (y, m, d, secs / 3600, (secs % 3600) / 60)
}

/// "24 novembre 2026"
pub fn date_fr(unix: i64) -> String {
    let (y, m, d, _, _) = local(unix);
    format!("{d} {} {y}", MONTHS[(m - 1) as usize])
}

/// "24 novembre 2026 à 11:05"
pub fn datetime_fr(unix: i64) -> String {
    let (y, m, d, h, min) = local(unix);
    format!("{d} {} {y} à {h:02}:{min:02}", MONTHS[(m - 1) as usize])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winter_is_utc_plus_one_and_summer_plus_two() {
        // 2026-11-24 10:00 UTC
        assert_eq!(datetime_fr(1_795_514_400), "24 novembre 2026 à 11:00");
        // 2026-07-01 10:00 UTC
        assert_eq!(datetime_fr(1_782_900_000), "1 juillet 2026 à 12:00");
        assert_eq!(iso_utc(1_795_514_400), "2026-11-24T10:00Z");
    }

    #[test]
    fn summer_time_switches_on_the_last_sundays_at_one_utc() {
        // 2026-03-29 is the last Sunday of March; 2026-10-25 the last of October.
        let march = days_from_civil(2026, 3, 29) * 86_400 + 3_600;
        assert_eq!(last_sunday_1utc(2026, 3), march);
        assert_eq!(paris_offset(march - 1), 3_600);
        assert_eq!(paris_offset(march), 7_200);
        let october = days_from_civil(2026, 10, 25) * 86_400 + 3_600;
        assert_eq!(paris_offset(october - 1), 7_200);
        assert_eq!(paris_offset(october), 3_600);
        assert_eq!(date_fr(october), "25 octobre 2026");
    }
}
