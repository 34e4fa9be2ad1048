//! Occurrences of an appointment in a time window: RRULE, RDATE, EXDATE and RECURRENCE-ID
//! overrides (RFC 5545 §3.8.5, §3.8.4.4) expanded by calcard, with hard bounds so that a
//! hostile rule (`FREQ=SECONDLY` without COUNT or UNTIL) costs a bounded amount of work and
//! shows a bounded number of rows.
//!
//! Two bounds protect the patient's list. At filing, [`check_rules`] refuses a rule that
//! never ends at a sub-daily frequency, or that yields more than
//! [`RecurrenceLimits::max_per_series`] occurrences within a year. At reading, each series
//! contributes at most that many occurrences to a window, so that one series never pushes
//! the patient's other appointments out of the list (records stored before the filing check
//! existed are bounded the same way).

use std::collections::BTreeSet;

use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarFrequency, ICalendarProperty,
    ICalendarStatus, ICalendarValue,
};
use chrono::TimeZone;

use crate::appointments::{DaySpan, Origin};
use crate::ics::{parse_calendar, DEFAULT_TZ};
use crate::{Rejection, Status};

/// One year, as RFC 5545 counts none: 366 days, so that a leap year fits.
const YEAR_SECS: i64 = 366 * 86_400;

/// Bounds of one expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecurrenceLimits {
    /// Occurrences one series contributes to a window, and the most a series may yield within
    /// a year to be filed (default 732: twice a day every day of a leap year — home nursing
    /// morning and evening, insulin or dressings, is the densest routine care a patient is
    /// invited to; denser is a machine, not an agenda).
    pub max_per_series: usize,
    /// Width of a query window (default 5 years): a wider one is cut.
    pub max_window_secs: i64,
    /// Instances generated from DTSTART, in or out of the window (default 20,000): a rule
    /// that started long ago at a high frequency shows no occurrence past this many.
    pub max_iterations: usize,
}

impl Default for RecurrenceLimits {
    fn default() -> Self {
        Self {
            max_per_series: 732,
            max_window_secs: 5 * 366 * 86_400,
            max_iterations: 20_000,
        }
    }
}

/// One occurrence of an appointment, as the agenda lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub uid: String,
    /// The occurrence's own SUMMARY when an override gives one, else the series'.
    pub summary: String,
    pub location: String,
    pub description: String,
    /// Unix seconds (UTC). For an all-day occurrence, midnight in Paris of its first day.
    pub start: i64,
    /// For an all-day occurrence, midnight in Paris after its last day (exclusive).
    pub end: i64,
    /// `Some` for an all-day occurrence ("toute la journée"): its first and last days in
    /// Paris, both included. Display it with these dates, never with `start`/`end`.
    pub all_day: Option<DaySpan>,
    /// Whether it comes from a RECURRENCE-ID override (moved or changed occurrence).
    pub overridden: bool,
    /// The appointment's status: [`Status::Proposed`] is "à confirmer".
    pub status: Status,
    /// Who created the appointment.
    pub origin: Origin,
}

/// One instance of a stored event, before the appointment's facts are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub start: i64,
    pub end: i64,
    pub overridden: bool,
    pub all_day: Option<DaySpan>,
    /// The override's own texts (empty when it has none: the series' apply).
    pub summary: String,
    pub location: String,
    pub description: String,
}

fn vevents(cal: &ICalendar) -> impl Iterator<Item = (u32, &ICalendarComponent)> {
    cal.components
        .iter()
        .enumerate()
        .filter(|(_, c)| c.component_type == ICalendarComponentType::VEvent)
        .map(|(id, c)| (id as u32, c))
}

fn text(comp: &ICalendarComponent, prop: ICalendarProperty) -> String {
    comp.property(&prop)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text())
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn is_date(comp: &ICalendarComponent) -> bool {
    comp.property(&ICalendarProperty::Dtstart)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_partial_date_time())
        .is_some_and(|d| !d.has_time())
}

/// The RECURRENCE-ID of an override as an instant (RFC 5545 §3.8.4.4): in its TZID, else in
/// UTC when written so, else (floating, or a DATE) in the time zone of the master's DTSTART.
fn recurrence_instant(
    cal: &ICalendar,
    comp: &ICalendarComponent,
    master_tzid: Option<&str>,
) -> Option<i64> {
    let entry = comp.property(&ICalendarProperty::RecurrenceId)?;
    let value = entry
        .values
        .first()?
        .as_partial_date_time()?
        .to_date_time()?;
    let tz = match value.tz() {
        Some(tz) => tz,
        None => cal
            .build_tz_resolver()
            .with_default(DEFAULT_TZ)
            .resolve_or_default(entry.tz_id().or(master_tzid)),
    };
    tz.from_local_datetime(&value.date_time)
        .earliest()
        .map(|t| t.timestamp())
}

/// The occurrences of `ics` that overlap `[from, to)`, in start order, at most
/// [`RecurrenceLimits::max_per_series`]. An override replaces the instance of the same
/// RECURRENCE-ID instant, whatever its SEQUENCE (clients raise it when they move one
/// occurrence); a cancelled override (STATUS:CANCELLED) removes it.
pub fn expand(ics: &str, from: i64, to: i64, limits: &RecurrenceLimits) -> Vec<Instance> {
    let to = to.min(from.saturating_add(limits.max_window_secs));
    let Ok(cal) = parse_calendar(ics) else {
        return Vec::new();
    };
    let master = vevents(&cal).find(|(_, c)| !c.has_property(&ICalendarProperty::RecurrenceId));
    let master_tzid = master.and_then(|(_, c)| {
        c.property(&ICalendarProperty::Dtstart)
            .and_then(|e| e.tz_id())
    });
    let replaced: BTreeSet<i64> = vevents(&cal)
        .filter_map(|(_, c)| recurrence_instant(&cal, c, master_tzid))
        .collect();
    let expanded = cal.expand_dates(DEFAULT_TZ, limits.max_iterations);
    let mut out: Vec<Instance> = expanded
        .events
        .iter()
        .filter_map(|event| {
            let comp = cal.component_by_id(event.comp_id)?;
            if comp.component_type != ICalendarComponentType::VEvent
                || matches!(comp.status(), Some(ICalendarStatus::Cancelled))
            {
                return None;
            }
            let (mut start, mut end) = event.timestamps();
            let overridden = comp.has_property(&ICalendarProperty::RecurrenceId);
            // calcard pairs an override with its instance only at equal SEQUENCE; the
            // RECURRENCE-ID instant alone decides here.
            if !overridden && replaced.contains(&start) {
                return None;
            }
            let all_day = is_date(comp)
                .then(|| DaySpan::of_instants(start, end))
                .flatten();
            if let Some(span) = all_day {
                // calcard adds whole days of 86,400 s; a day is 23 or 25 hours on a DST change.
                (start, end) = span.bounds();
            }
            let end = end.max(start);
            // An instant event (end == start) is in the window if it starts in it.
            let overlaps = start < to && (end > from || (end == start && start >= from));
            overlaps.then(|| Instance {
                start,
                end,
                overridden,
                all_day,
                summary: if overridden {
                    text(comp, ICalendarProperty::Summary)
                } else {
                    String::new()
                },
                location: if overridden {
                    text(comp, ICalendarProperty::Location)
                } else {
                    String::new()
                },
                description: if overridden {
                    text(comp, ICalendarProperty::Description)
                } else {
                    String::new()
                },
            })
        })
        .collect();
    out.sort_by_key(|i| (i.start, i.end, i.overridden));
    out.dedup();
    out.truncate(limits.max_per_series);
    out
}

/// RFC 5545 §3.3.10: checks, before anything is stored, that the recurrence rules of a
/// calendar (one event's VEVENTs) are bounded: a SECONDLY, MINUTELY or HOURLY rule must end
/// (COUNT or UNTIL), and no series may yield more than [`RecurrenceLimits::max_per_series`]
/// occurrences within the year from its first one.
pub fn check_rules(uid: &str, ics: &str, limits: &RecurrenceLimits) -> Result<(), Rejection> {
    let cal = parse_calendar(ics)?;
    let mut recurrent = false;
    for (_, comp) in vevents(&cal) {
        for entry in comp.properties(&ICalendarProperty::Rrule) {
            let Some(ICalendarValue::RecurrenceRule(rule)) = entry.values.first() else {
                continue;
            };
            recurrent = true;
            let sub_daily = matches!(
                rule.freq,
                ICalendarFrequency::Secondly
                    | ICalendarFrequency::Minutely
                    | ICalendarFrequency::Hourly
            );
            if sub_daily && rule.count.is_none() && rule.until.is_none() {
                return Err(Rejection::EndlessRule {
                    uid: uid.to_string(),
                    freq: match rule.freq {
                        ICalendarFrequency::Secondly => "SECONDLY",
                        ICalendarFrequency::Minutely => "MINUTELY",
                        _ => "HOURLY",
                    }
                    .to_string(),
                });
            }
        }
        recurrent |= comp.has_property(&ICalendarProperty::Rdate);
    }
    if !recurrent {
        return Ok(());
    }
    let expanded = cal.expand_dates(DEFAULT_TZ, limits.max_iterations);
    let starts: Vec<i64> = expanded
        .events
        .iter()
        .map(|e| e.start.timestamp())
        .collect();
    let Some(&first) = starts.iter().min() else {
        return Ok(());
    };
    let count = starts
        .iter()
        .filter(|&&s| s < first.saturating_add(YEAR_SECS))
        .count();
    if count > limits.max_per_series {
        return Err(Rejection::TooManyOccurrences {
            uid: uid.to_string(),
            count,
            limit: limits.max_per_series,
        });
    }
    Ok(())
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
    fn hostile_secondly_rule_stored_earlier_is_bounded_per_series_and_quick() {
        let began = std::time::Instant::now();
        let limits = RecurrenceLimits::default();
        let all = expand(
            &cal("RRULE:FREQ=SECONDLY"),
            1_735_000_000,
            i64::MAX,
            &limits,
        );
        assert_eq!(all.len(), limits.max_per_series);
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
        assert_eq!(all[1].start - all[0].start, 7 * 86_400);
    }

    #[test]
    fn bounded_and_ending_rules_pass_the_filing_check() {
        let limits = RecurrenceLimits::default();
        assert!(check_rules("r", &cal("RRULE:FREQ=WEEKLY"), &limits).is_ok());
        assert!(check_rules(
            "r",
            &cal("RRULE:FREQ=HOURLY;UNTIL=20250102T000000Z"),
            &limits
        )
        .is_ok());
        assert!(check_rules("r", &cal(""), &limits).is_ok());
        assert!(matches!(
            check_rules("r", &cal("RRULE:FREQ=MINUTELY"), &limits),
            Err(Rejection::EndlessRule { ref freq, .. }) if freq == "MINUTELY"
        ));
        assert!(matches!(
            check_rules("r", &cal("RRULE:FREQ=MINUTELY;COUNT=5000"), &limits),
            Err(Rejection::TooManyOccurrences { limit: 732, .. })
        ));
    }
}
