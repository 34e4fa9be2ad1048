//! RFC 5546 (iTIP) decisions for an attendee: which version of an event wins, and how a
//! request or cancellation of one occurrence merges into the stored series.

use calcard::icalendar::{
    ICalendarComponentType, ICalendarProperty, ICalendarStatus, ICalendarValue,
};

use crate::ics::{parse_calendar, Calendar, EventGroup};
use crate::{Appointment, Rejection};

/// What to do with an incoming version of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Unknown UID: a new appointment.
    Create,
    /// A newer version of the whole event (it carries the master VEVENT). `reset_partstat`:
    /// the SEQUENCE went up, a significant change (RFC 5546 §2.1.4) — the patient answers
    /// again.
    Replace { reset_partstat: bool },
    /// Overrides of single occurrences for a known series (RFC 5546 §2.1.5 "RECURRENCE-ID").
    MergeOverrides,
    /// The very version already stored (the same message delivered twice, or the invitation
    /// carried both inline and as invite.ics).
    Duplicate,
    /// Older than the stored version: reported, not applied.
    Stale { incoming: i64, current: i64 },
}

/// RFC 5546 §2.1.5: a version is newer if its SEQUENCE is higher, or equal with a later DTSTAMP.
pub fn decide(current: Option<&Appointment>, incoming: &EventGroup) -> Decision {
    let Some(current) = current else {
        return Decision::Create;
    };
    match &incoming.master {
        Some(master) => {
            let (new, old) = (
                (master.sequence, master.dtstamp),
                (current.sequence, current.dtstamp),
            );
            if new > old {
                Decision::Replace {
                    reset_partstat: master.sequence > current.sequence,
                }
            } else if new == old {
                Decision::Duplicate
            } else {
                Decision::Stale {
                    incoming: master.sequence,
                    current: current.sequence,
                }
            }
        }
        None => {
            let sequence = incoming
                .overrides
                .iter()
                .map(|o| o.sequence)
                .max()
                .unwrap_or(0);
            if sequence < current.sequence {
                Decision::Stale {
                    incoming: sequence,
                    current: current.sequence,
                }
            } else {
                Decision::MergeOverrides
            }
        }
    }
}

/// The stored series with the incoming overrides in place of those of the same RECURRENCE-ID;
/// with `cancel`, the incoming occurrences are marked STATUS:CANCELLED (RFC 5546 §3.2.5).
pub fn merge_overrides(stored: &str, incoming: &str, cancel: bool) -> Result<String, Rejection> {
    let stored = parse_calendar(stored)?;
    let mut incoming = parse_calendar(incoming)?;
    let events = |cal: &calcard::icalendar::ICalendar| -> Vec<u32> {
        cal.components[0]
            .component_ids
            .iter()
            .copied()
            .filter(|&id| {
                cal.component_by_id(id)
                    .is_some_and(|c| c.component_type == ICalendarComponentType::VEvent)
            })
            .collect()
    };
    let rid = |cal: &calcard::icalendar::ICalendar, id: u32| {
        cal.component_by_id(id)
            .and_then(|c| c.property(&ICalendarProperty::RecurrenceId))
            .and_then(|e| e.values.first())
            .and_then(|v| v.as_partial_date_time())
            .and_then(|d| d.to_date_time())
            .map(|d| d.date_time)
    };
    let incoming_ids = events(&incoming);
    if cancel {
        for &id in &incoming_ids {
            if let Some(comp) = incoming.components.get_mut(id as usize) {
                comp.entries.retain(|e| e.name != ICalendarProperty::Status);
                comp.add_property(
                    ICalendarProperty::Status,
                    ICalendarValue::Status(ICalendarStatus::Cancelled),
                );
            }
        }
    }
    let replaced: Vec<_> = incoming_ids
        .iter()
        .filter_map(|&id| rid(&incoming, id))
        .collect();
    let mut out = Calendar::new();
    out.add_timezones_of(&stored);
    out.add_timezones_of(&incoming);
    for id in events(&stored) {
        match rid(&stored, id) {
            Some(r) if replaced.contains(&r) => {}
            _ => out.add(&stored, id),
        }
    }
    for id in incoming_ids {
        out.add(&incoming, id);
    }
    Ok(out.to_ics())
}
