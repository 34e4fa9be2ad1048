//! Dates as a French reader expects them, in Paris time (chrono-tz, the IANA rules): one place
//! for the agenda's notices and the web inbox's pages.

use chrono::{DateTime, Datelike, TimeZone, Timelike};
use chrono_tz::Tz;

const DAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];
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

fn paris(unix: i64) -> Option<DateTime<Tz>> {
    crate::ics::DEFAULT_TZ.timestamp_opt(unix, 0).single()
}

/// "24 novembre 2026"
pub fn date(unix: i64) -> String {
    match paris(unix) {
        Some(t) => format!("{} {} {}", t.day(), MONTHS[t.month0() as usize], t.year()),
        None => unix.to_string(),
    }
}

/// "12 mai 1984": a calendar day (a birth date, a vaccination), no time zone involved.
pub fn day(d: chrono::NaiveDate) -> String {
    format!("{} {} {}", d.day(), MONTHS[d.month0() as usize], d.year())
}

/// "24/11/2026 11:05", the numeric form documents use (a CDA's dates); `None` out of range.
pub fn numeric_datetime(unix: i64) -> Option<String> {
    paris(unix).map(|t| t.format("%d/%m/%Y %H:%M").to_string())
}

/// "24 novembre 2026 à 11:05"
pub fn datetime(unix: i64) -> String {
    match paris(unix) {
        Some(t) => format!("{} à {:02}:{:02}", date(unix), t.hour(), t.minute()),
        None => unix.to_string(),
    }
}

/// "mercredi 10 mars 2027"
pub fn long_date(unix: i64) -> String {
    match paris(unix) {
        Some(t) => format!(
            "{} {}",
            DAYS[t.weekday().num_days_from_monday() as usize],
            date(unix)
        ),
        None => unix.to_string(),
    }
}

/// "mardi 14 janvier 2025 à 09h30"
pub fn long_datetime(unix: i64) -> String {
    match paris(unix) {
        Some(t) => format!(
            "{} {} à {:02}h{:02}",
            DAYS[t.weekday().num_days_from_monday() as usize],
            date(unix),
            t.hour(),
            t.minute()
        ),
        None => unix.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winter_is_utc_plus_one_and_summer_plus_two() {
        // 2026-11-24 10:00 UTC; 2026-07-01 10:00 UTC.
        assert_eq!(datetime(1_795_514_400), "24 novembre 2026 à 11:00");
        assert_eq!(datetime(1_782_900_000), "1 juillet 2026 à 12:00");
        assert_eq!(
            long_datetime(1_795_514_400),
            "mardi 24 novembre 2026 à 11h00"
        );
    }

    #[test]
    fn summer_time_switches_on_the_last_sundays_at_one_utc() {
        // 2026-03-29 01:00 UTC and 2026-10-25 01:00 UTC.
        assert_eq!(datetime(1_774_746_000 - 1), "29 mars 2026 à 01:59");
        assert_eq!(datetime(1_774_746_000), "29 mars 2026 à 03:00");
        assert_eq!(datetime(1_792_890_000 - 1), "25 octobre 2026 à 02:59");
        assert_eq!(datetime(1_792_890_000), "25 octobre 2026 à 02:00");
    }
}
