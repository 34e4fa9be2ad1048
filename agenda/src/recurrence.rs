//! Occurrences of an appointment in a time window: RRULE, RDATE, EXDATE and RECURRENCE-ID
//! overrides (RFC 5545 §3.8.5, §3.8.4.4) expanded by calcard, with hard bounds so that a
//! hostile rule (`FREQ=SECONDLY` without COUNT or UNTIL) costs a bounded amount of work.

use calcard::icalendar::{ICalendarProperty, ICalendarStatus};

use crate::ics::{parse_calendar, DEFAULT_TZ};

/// Bounds of one expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecurrenceLimits {
    /// Occurrences returned by one query (default 500).
    pub max_occurrences: usize,
    /// Width of a query window (default 5 years): a wider one is cut.
    pub max_window_secs: i64,
    /// Instances generated from DTSTART, in or out of the window (default 20,000): a rule
    /// that started long ago at a high frequency shows no occurrence past this many.
    pub max_iterations: usize,
}

impl Default for RecurrenceLimits {
    fn default() -> Self {
        Self {
            max_occurrences: 500,
            max_window_secs: 5 * 366 * 86_400,
            max_iterations: 20_000,
        }
    }
}

/// One occurrence of an appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub uid: String,
    pub summary: String,
    pub location: String,
    /// Unix seconds (UTC).
    pub start: i64,
    pub end: i64,
    /// Whether it comes from a RECURRENCE-ID override (moved or changed occurrence).
    pub overridden: bool,
}

/// The (start, end, overridden) of the occurrences of `ics` that overlap `[from, to)`, in
/// start order, bounded by `limits`. Cancelled overrides (STATUS:CANCELLED) are left out.
pub fn expand(ics: &str, from: i64, to: i64, limits: &RecurrenceLimits) -> Vec<(i64, i64, bool)> {
    let to = to.min(from.saturating_add(limits.max_window_secs));
    let Ok(cal) = parse_calendar(ics) else {
        return Vec::new();
    };
    let expanded = cal.expand_dates(DEFAULT_TZ, limits.max_iterations);
    let mut out: Vec<(i64, i64, bool)> = expanded
        .events
        .iter()
        .filter_map(|event| {
            let comp = cal.component_by_id(event.comp_id)?;
            if matches!(comp.status(), Some(ICalendarStatus::Cancelled)) {
                return None;
            }
            let (start, end) = event.timestamps();
            let overridden = comp.has_property(&ICalendarProperty::RecurrenceId);
            // An instant event (end == start) is in the window if it starts in it.
            let overlaps = start < to && (end > from || (end == start && start >= from));
            overlaps.then_some((start, end.max(start), overridden))
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out.truncate(limits.max_occurrences);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(rule: &str) -> String {
        format!(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:r\r\nDTSTART:20250101T090000Z\r\n\
             DTEND:20250101T100000Z\r\n{rule}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    }

    #[test]
    fn hostile_secondly_rule_is_bounded_and_quick() {
        let began = std::time::Instant::now();
        let all = expand(
            &cal("RRULE:FREQ=SECONDLY"),
            1_735_000_000,
            i64::MAX,
            &RecurrenceLimits::default(),
        );
        assert_eq!(all.len(), 500);
        assert!(began.elapsed().as_secs() < 10);
    }

    #[test]
    fn weekly_count_is_followed() {
        let all = expand(
            &cal("RRULE:FREQ=WEEKLY;COUNT=3"),
            1_735_000_000,
            i64::MAX,
            &RecurrenceLimits::default(),
        );
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].0 - all[0].0, 7 * 86_400);
    }
}
