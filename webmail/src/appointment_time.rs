//! An appointment's time as the pages and the apps' API write and read it: Paris wall-clock
//! dates and times (the `type="date"` and `type="time"` inputs, which carry no time zone), the
//! French sentence of when it takes place, and RFC 3339 for machines.
//!
//! An all-day appointment is always said with its days ([`DaySpan`]), never with its instants:
//! its start is a Paris midnight, its end the midnight after its last day.

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};

use mshub_agenda::ics::DEFAULT_TZ;
use mshub_agenda::DaySpan;

/// The Paris date and time (to the minute) of an instant.
pub fn local(unix: i64) -> Option<(NaiveDate, NaiveTime)> {
    let t = DEFAULT_TZ.timestamp_opt(unix, 0).single()?;
    Some((t.date_naive(), t.time()))
}

/// The instant of a Paris wall-clock time. On the autumn change, the hour that happens twice
/// is taken the first time; a time the spring change skips (02:00–02:59 on the last Sunday
/// of March) does not exist and is refused with a French reason.
pub fn instant(day: NaiveDate, time: NaiveTime) -> Result<i64, String> {
    match DEFAULT_TZ.from_local_datetime(&day.and_time(time)) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.timestamp()),
        LocalResult::None => Err(format!(
            "L'heure {} n'existe pas le {} : c'est le passage à l'heure d'été. Choisissez une \
             autre heure.",
            time.format("%H:%M"),
            long_day(day)
        )),
    }
}

/// Noon UTC of `day`: the same calendar day in Paris (UTC+1 or UTC+2), so that the agenda's
/// French date writing, which takes instants, names exactly that day.
fn noon(day: NaiveDate) -> i64 {
    day.and_time(NaiveTime::MIN).and_utc().timestamp() + 12 * 3600
}

/// "mercredi 10 mars 2027"
pub fn long_day(day: NaiveDate) -> String {
    mshub_agenda::french::long_date(noon(day))
}

/// "10 mars 2027"
pub fn short_day(day: NaiveDate) -> String {
    mshub_agenda::french::date(noon(day))
}

/// "le mercredi 10 mars 2027 (toute la journée)", "du 10 au 11 mars 2027", "du 30 mars au
/// 2 avril 2027", "du 30 décembre 2026 au 2 janvier 2027".
pub fn days_fr(span: DaySpan) -> String {
    let (first, last) = (span.first, span.last);
    if first >= last {
        return format!("le {} (toute la journée)", long_day(first));
    }
    let last_text = short_day(last);
    let first_text = if first.year() != last.year() {
        short_day(first)
    } else if first.month() != last.month() {
        let full = short_day(first);
        full.strip_suffix(&format!(" {}", first.year()))
            .map_or(full.clone(), str::to_string)
    } else {
        first.day().to_string()
    };
    format!("du {first_text} au {last_text}")
}

/// When an appointment (or occurrence) takes place, in French: its days when it is all-day,
/// else "24 novembre 2026 à 11:05".
pub fn when_fr(start: i64, all_day: Option<DaySpan>) -> String {
    match all_day {
        Some(span) => days_fr(span),
        None => mshub_agenda::french::datetime(start),
    }
}

/// The `datetime` attribute of a `<time>`: the first day of an all-day appointment
/// (`2027-03-10`), else the instant in UTC.
pub fn machine(start: i64, all_day: Option<DaySpan>) -> String {
    match all_day {
        Some(span) => span.first.to_string(),
        None => crate::format::iso_utc(start),
    }
}

/// `2027-03-15T08:00:00Z`
pub fn rfc3339_utc(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| unix.to_string())
}

/// An RFC 3339 date-time (any offset) as Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn all_day_spans_read_as_their_days() {
        let one = DaySpan {
            first: d(2027, 3, 10),
            last: d(2027, 3, 10),
        };
        assert_eq!(days_fr(one), "le mercredi 10 mars 2027 (toute la journée)");
        let two = DaySpan {
            first: d(2027, 3, 10),
            last: d(2027, 3, 11),
        };
        assert_eq!(days_fr(two), "du 10 au 11 mars 2027");
        let months = DaySpan {
            first: d(2027, 3, 30),
            last: d(2027, 4, 2),
        };
        assert_eq!(days_fr(months), "du 30 mars au 2 avril 2027");
        let years = DaySpan {
            first: d(2026, 12, 30),
            last: d(2027, 1, 2),
        };
        assert_eq!(days_fr(years), "du 30 décembre 2026 au 2 janvier 2027");
    }

    #[test]
    fn paris_wall_clock_follows_summer_time_and_refuses_the_skipped_hour() {
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        // 9:00 in Paris is 8:00 UTC in winter, 7:00 UTC in summer.
        assert_eq!(
            rfc3339_utc(instant(d(2027, 3, 15), nine).unwrap()),
            "2027-03-15T08:00:00Z"
        );
        assert_eq!(
            rfc3339_utc(instant(d(2027, 7, 1), nine).unwrap()),
            "2027-07-01T07:00:00Z"
        );
        let skipped = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert!(instant(d(2027, 3, 28), skipped)
            .unwrap_err()
            .contains("heure d'été"));
        let start = instant(d(2027, 7, 1), nine).unwrap();
        assert_eq!(local(start), Some((d(2027, 7, 1), nine)));
        assert_eq!(parse_rfc3339("2027-07-01T09:00:00+02:00"), Some(start));
    }
}
