//! iCalendar (RFC 5545) reading, bounded: a calendar part becomes an [`Invitation`], its events
//! grouped by UID with the facts the agenda keeps, and the calendar text of each group (its
//! VEVENTs and the VTIMEZONEs they use) that [`crate::recurrence`] expands later.
//!
//! Parsing is calcard's (non-recursive, lenient); the bounds are checked on the raw text first,
//! so that a hostile part costs at most one linear scan.

use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarMethod,
    ICalendarParameterName, ICalendarProperty, ICalendarStatus, ICalendarValue,
};
use calcard::{Entry, Parser};
use chrono::TimeZone;

use crate::appointments::{paris_midnight, DaySpan};
use crate::{PartStat, Rejection, Status};

/// The time zone of floating times and of unknown TZIDs (the hub serves France).
pub const DEFAULT_TZ: chrono_tz::Tz = chrono_tz::Europe::Paris;

/// Bounds on one calendar part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcsLimits {
    /// Size of the calendar text (default 1 MiB).
    pub max_bytes: usize,
    /// Nesting of BEGIN: blocks (VCALENDAR > VEVENT > VALARM is 3; default 8).
    pub max_depth: usize,
    /// Number of components, all levels together (default 1000).
    pub max_components: usize,
}

impl Default for IcsLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_depth: 8,
            max_components: 1000,
        }
    }
}

/// RFC 5546 §1.4 methods the agenda acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Request,
    Cancel,
    /// Also a calendar without METHOD (a plain .ics file): filed like a request.
    Publish,
}

/// A calendar part, read.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub method: Method,
    pub groups: Vec<EventGroup>,
}

/// The VEVENTs of one UID in a calendar: the master (if sent) and overrides (RECURRENCE-ID).
#[derive(Debug, Clone)]
pub struct EventGroup {
    pub uid: String,
    pub master: Option<EventFacts>,
    pub overrides: Vec<EventFacts>,
    /// A VCALENDAR with these VEVENTs and the VTIMEZONEs of the part.
    pub ics: String,
}

impl EventGroup {
    /// The master, or else the first override: what the appointment shows.
    pub fn main(&self) -> Option<&EventFacts> {
        self.master.as_ref().or(self.overrides.first())
    }
}

/// What the agenda keeps of one VEVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFacts {
    pub summary: String,
    pub location: String,
    pub description: String,
    pub organizer: Option<(String, Option<String>)>,
    pub attendees: Vec<(String, PartStat)>,
    pub start: i64,
    pub end: i64,
    /// `Some` when DTSTART is a DATE (RFC 5545 §3.3.4): an all-day event, its days in Paris.
    pub all_day: Option<DaySpan>,
    /// The IANA name of the start's time zone ("UTC" for UTC times).
    pub tzid: String,
    pub status: Status,
    /// RFC 5545 §3.8.7.4.
    pub sequence: i64,
    /// RFC 5545 §3.8.7.2, Unix seconds (0 if absent).
    pub dtstamp: i64,
    pub recurrent: bool,
    pub recurrence_id: Option<i64>,
}

/// Checks the bounds on the raw text: size, nesting depth, number of components.
pub fn check_bounds(text: &[u8], limits: &IcsLimits) -> Result<(), Rejection> {
    if text.len() > limits.max_bytes {
        return Err(Rejection::TooLarge {
            size: text.len(),
            limit: limits.max_bytes,
        });
    }
    let (mut depth, mut components) = (0usize, 0usize);
    for line in text.split(|&b| b == b'\n') {
        let line = line.trim_ascii_start();
        if starts_with_ignore_case(line, b"BEGIN:") {
            depth += 1;
            components += 1;
            if depth > limits.max_depth {
                return Err(Rejection::TooDeep {
                    limit: limits.max_depth,
                });
            }
            if components > limits.max_components {
                return Err(Rejection::TooManyComponents {
                    limit: limits.max_components,
                });
            }
        } else if starts_with_ignore_case(line, b"END:") {
            depth = depth.saturating_sub(1);
        }
    }
    Ok(())
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Parses a VCALENDAR text (after [`check_bounds`]).
pub fn parse_calendar(text: &str) -> Result<ICalendar, Rejection> {
    let unreadable = |detail: &str| Rejection::Unreadable {
        detail: detail.to_string(),
    };
    match Parser::new(text).entry() {
        Entry::ICalendar(cal)
            if cal
                .components
                .first()
                .is_some_and(|c| c.component_type == ICalendarComponentType::VCalendar) =>
        {
            Ok(cal)
        }
        Entry::ICalendar(_) | Entry::VCard(_) => Err(unreadable("pas de BEGIN:VCALENDAR")),
        Entry::InvalidLine(line) => Err(unreadable(&format!("ligne invalide {line:?}"))),
        Entry::UnexpectedComponentEnd { expected, found } => Err(unreadable(&format!(
            "END:{} au lieu de END:{}",
            found.as_str(),
            expected.as_str()
        ))),
        Entry::UnterminatedComponent(c) => Err(unreadable(&format!("BEGIN:{c} sans END"))),
        Entry::TooManyComponents => Err(unreadable("trop de composants")),
        Entry::Eof => Err(unreadable("vide")),
        _ => Err(unreadable("contenu inattendu")),
    }
}

/// Reads a calendar part: bounds, syntax, METHOD, and every VEVENT's facts.
pub fn read_invitation(raw: &[u8], limits: &IcsLimits) -> Result<Invitation, Rejection> {
    check_bounds(raw, limits)?;
    let text = String::from_utf8_lossy(raw);
    let cal = parse_calendar(&text)?;
    let root = &cal.components[0];
    // RFC 5546 §3.2: METHOD is a property of the VCALENDAR.
    let method = match root
        .property(&ICalendarProperty::Method)
        .and_then(|e| e.values.first())
    {
        None => Method::Publish,
        Some(ICalendarValue::Method(ICalendarMethod::Request)) => Method::Request,
        Some(ICalendarValue::Method(ICalendarMethod::Cancel)) => Method::Cancel,
        Some(ICalendarValue::Method(ICalendarMethod::Publish)) => Method::Publish,
        Some(other) => {
            return Err(Rejection::UnsupportedMethod {
                method: other.as_text().unwrap_or("?").to_string(),
            })
        }
    };
    let resolver = cal.build_tz_resolver().with_default(DEFAULT_TZ);
    let mut groups: Vec<EventGroup> = Vec::new();
    let mut members: Vec<Vec<u32>> = Vec::new();
    for &id in &root.component_ids {
        let Some(comp) = cal.component_by_id(id) else {
            continue;
        };
        if comp.component_type != ICalendarComponentType::VEvent {
            continue;
        }
        let uid = comp
            .uid()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Rejection::InvalidEvent {
                uid: String::new(),
                detail: "pas d'UID (RFC 5545 §3.8.4.7)".into(),
            })?
            .to_string();
        let facts = event_facts(comp, &uid, &|name| resolver.resolve_or_default(name))?;
        let index = match groups.iter().position(|g| g.uid == uid) {
            Some(i) => i,
            None => {
                groups.push(EventGroup {
                    uid: uid.clone(),
                    master: None,
                    overrides: Vec::new(),
                    ics: String::new(),
                });
                members.push(Vec::new());
                groups.len() - 1
            }
        };
        members[index].push(id);
        let group = &mut groups[index];
        if facts.recurrence_id.is_some() {
            group.overrides.push(facts);
        } else if group.master.is_some() {
            return Err(Rejection::InvalidEvent {
                uid,
                detail: "deux VEVENT maîtres pour le même UID".into(),
            });
        } else {
            group.master = Some(facts);
        }
    }
    if groups.is_empty() {
        return Err(Rejection::NoEvent);
    }
    for (group, ids) in groups.iter_mut().zip(&members) {
        group.ics = subset(&cal, ids);
    }
    Ok(Invitation { method, groups })
}

fn text_of(comp: &ICalendarComponent, prop: ICalendarProperty) -> String {
    comp.property(&prop)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text())
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn param_text<'a>(entry: &'a ICalendarEntry, name: &ICalendarParameterName) -> Option<&'a str> {
    entry.parameter(name).and_then(|v| v.as_text())
}

/// A date-time property as Unix seconds, in its TZID (or UTC, or floating = Europe/Paris),
/// whether it has a time, and its calendar date as written.
/// `Ok(None)` when absent; a reason when present but not a valid date.
fn instant(
    comp: &ICalendarComponent,
    prop: ICalendarProperty,
    uid: &str,
    resolve: &dyn Fn(Option<&str>) -> Tz,
) -> Result<Option<(i64, Tz, bool, chrono::NaiveDate)>, Rejection> {
    let Some(entry) = comp.property(&prop) else {
        return Ok(None);
    };
    let bad = || Rejection::InvalidEvent {
        uid: uid.to_string(),
        detail: format!(
            "{} n'est pas une date valide : {:?}",
            prop.as_str(),
            entry.values.first().and_then(|v| v.as_text()).unwrap_or("")
        ),
    };
    let dt = entry
        .values
        .first()
        .and_then(|v| v.as_partial_date_time())
        .ok_or_else(bad)?;
    let has_time = dt.has_time();
    let result = dt.to_date_time().ok_or_else(bad)?;
    let tz = result.tz().unwrap_or_else(|| resolve(entry.tz_id()));
    // A local time that falls in a DST gap has no instant; in the overlap, take the earlier.
    let local = tz
        .from_local_datetime(&result.date_time)
        .earliest()
        .ok_or_else(bad)?;
    Ok(Some((
        local.timestamp(),
        tz,
        has_time,
        result.date_time.date(),
    )))
}

fn tz_name(tz: Tz) -> String {
    match tz {
        Tz::Floating => DEFAULT_TZ.name().to_string(),
        other => other.to_string(),
    }
}

fn partstat(entry: &ICalendarEntry) -> PartStat {
    match param_text(entry, &ICalendarParameterName::Partstat) {
        Some(s) if s.eq_ignore_ascii_case("ACCEPTED") => PartStat::Accepted,
        Some(s) if s.eq_ignore_ascii_case("DECLINED") => PartStat::Declined,
        _ => PartStat::NeedsAction,
    }
}

fn event_facts(
    comp: &ICalendarComponent,
    uid: &str,
    resolve: &dyn Fn(Option<&str>) -> Tz,
) -> Result<EventFacts, Rejection> {
    let invalid = |detail: &str| Rejection::InvalidEvent {
        uid: uid.to_string(),
        detail: detail.to_string(),
    };
    let recurrence_id = instant(comp, ICalendarProperty::RecurrenceId, uid, resolve)?;
    // RFC 5545 §3.6.1: DTSTART is required in a VEVENT (a CANCEL of one occurrence may carry
    // only its RECURRENCE-ID).
    let (start, tz, has_time, start_date) =
        match instant(comp, ICalendarProperty::Dtstart, uid, resolve)? {
            Some(s) => s,
            None => recurrence_id.ok_or_else(|| invalid("pas de DTSTART (RFC 5545 §3.6.1)"))?,
        };
    let dtend = instant(comp, ICalendarProperty::Dtend, uid, resolve)?;
    let duration = match comp
        .property(&ICalendarProperty::Duration)
        .and_then(|e| e.values.first())
    {
        Some(ICalendarValue::Duration(d)) => Some(d.as_seconds()),
        Some(_) => return Err(invalid("DURATION invalide")),
        None => None,
    };
    let end = match (dtend, duration) {
        (Some((end, ..)), _) => end,
        (None, Some(seconds)) => start.saturating_add(seconds),
        // RFC 5545 §3.6.1: a DATE start without end lasts one day, a DATE-TIME one none.
        (None, None) if has_time => start,
        (None, None) => start + 86_400,
    };
    if end < start {
        return Err(invalid("DTEND avant DTSTART"));
    }
    // RFC 5545 §3.6.1: a DATE event spans its DTSTART day up to, not including, its DTEND
    // day; without DTEND, one day. The days are the patient's, in Paris, as written.
    let all_day = (!has_time).then(|| {
        let days = match (dtend, duration) {
            (Some((.., false, end_date)), _) => (end_date - start_date).num_days(),
            (Some((end, ..)), _) => (end - start + 43_200).div_euclid(86_400),
            (None, Some(seconds)) => (seconds + 86_399).div_euclid(86_400),
            (None, None) => 1,
        };
        DaySpan {
            first: start_date,
            last: start_date + chrono::Days::new(days.max(1) as u64 - 1),
        }
    });
    let (start, end) = match all_day {
        Some(span) => (paris_midnight(span.first), span.bounds().1),
        None => (start, end),
    };
    let organizer = comp.property(&ICalendarProperty::Organizer).and_then(|e| {
        e.calendar_address().map(|a| {
            (
                a.trim().to_ascii_lowercase(),
                param_text(e, &ICalendarParameterName::Cn).map(str::to_string),
            )
        })
    });
    let attendees = comp
        .properties(&ICalendarProperty::Attendee)
        .filter_map(|e| {
            e.calendar_address()
                .map(|a| (a.trim().to_ascii_lowercase(), partstat(e)))
        })
        .collect();
    let status = match comp.status() {
        Some(ICalendarStatus::Cancelled) => Status::Cancelled,
        Some(ICalendarStatus::Tentative) => Status::Tentative,
        _ => Status::Confirmed,
    };
    let sequence = comp
        .property(&ICalendarProperty::Sequence)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_integer())
        .unwrap_or(0);
    let dtstamp = instant(comp, ICalendarProperty::Dtstamp, uid, resolve)?
        .map(|(t, ..)| t)
        .unwrap_or(0);
    Ok(EventFacts {
        summary: text_of(comp, ICalendarProperty::Summary),
        location: text_of(comp, ICalendarProperty::Location),
        description: text_of(comp, ICalendarProperty::Description),
        organizer,
        attendees,
        start,
        end,
        all_day,
        tzid: tz_name(tz),
        status,
        sequence,
        dtstamp,
        recurrent: comp.is_recurrent(),
        recurrence_id: recurrence_id.map(|(t, ..)| t),
    })
}

/// A VCALENDAR holding the given components of `cal` (with their sub-components) and all its
/// VTIMEZONEs: what an appointment keeps for later expansion and for the feed.
pub fn subset(cal: &ICalendar, ids: &[u32]) -> String {
    let mut out = Calendar::new();
    out.add_timezones_of(cal);
    for &id in ids {
        out.add(cal, id);
    }
    out.to_ics()
}

/// A VCALENDAR built from components of other calendars.
pub struct Calendar {
    cal: ICalendar,
    tzids: Vec<String>,
}

impl Calendar {
    pub fn new() -> Self {
        let mut root = ICalendarComponent::new(ICalendarComponentType::VCalendar);
        root.add_property(ICalendarProperty::Version, "2.0".to_string());
        root.add_property(
            ICalendarProperty::Prodid,
            "-//mshub//agenda//FR".to_string(),
        );
        Self {
            cal: ICalendar {
                components: vec![root],
            },
            tzids: Vec::new(),
        }
    }

    /// Adds a property to the VCALENDAR itself (e.g. METHOD).
    pub fn root_property(&mut self, prop: ICalendarProperty, value: ICalendarValue) {
        self.cal.components[0].add_property(prop, value);
    }

    /// Adds the VTIMEZONEs of `cal` not yet present (by TZID).
    pub fn add_timezones_of(&mut self, cal: &ICalendar) {
        let root = &cal.components[0];
        for &id in &root.component_ids {
            let Some(comp) = cal.component_by_id(id) else {
                continue;
            };
            if comp.component_type != ICalendarComponentType::VTimezone {
                continue;
            }
            let tzid = text_of(comp, ICalendarProperty::Tzid);
            if !self.tzids.contains(&tzid) {
                self.tzids.push(tzid);
                self.add(cal, id);
            }
        }
    }

    /// Copies component `id` of `cal` and its sub-components under the VCALENDAR.
    pub fn add(&mut self, cal: &ICalendar, id: u32) {
        if let Some(new_id) = self.copy(cal, id, 0) {
            self.cal.components[0].component_ids.push(new_id);
        }
    }

    /// Depth-bounded by [`check_bounds`] on the text the calendar came from.
    fn copy(&mut self, cal: &ICalendar, id: u32, depth: usize) -> Option<u32> {
        let comp = cal.component_by_id(id)?;
        if depth > 16 {
            return None;
        }
        let new_id = u32::try_from(self.cal.components.len()).ok()?;
        self.cal.components.push(ICalendarComponent {
            component_type: comp.component_type.clone(),
            entries: comp.entries.clone(),
            component_ids: Vec::new(),
        });
        let children: Vec<u32> = comp
            .component_ids
            .iter()
            .filter_map(|&child| self.copy(cal, child, depth + 1))
            .collect();
        self.cal.components[new_id as usize].component_ids = children;
        Some(new_id)
    }

    pub fn to_ics(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.cal.write_to(&mut out);
        out
    }
}

impl Default for Calendar {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_and_count_are_bounded_before_parsing() {
        let deep = "BEGIN:VCALENDAR\r\n".to_string() + &"BEGIN:X\r\n".repeat(20);
        assert!(matches!(
            check_bounds(deep.as_bytes(), &IcsLimits::default()),
            Err(Rejection::TooDeep { limit: 8 })
        ));
        let many =
            "BEGIN:VCALENDAR\r\n".to_string() + &"BEGIN:VEVENT\r\nEND:VEVENT\r\n".repeat(2000);
        assert!(matches!(
            check_bounds(many.as_bytes(), &IcsLimits::default()),
            Err(Rejection::TooManyComponents { limit: 1000 })
        ));
    }

    #[test]
    fn floating_times_are_paris_and_utc_times_utc() {
        let ics = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20250101T000000Z\r\n\
                   DTSTART:20250115T100000\r\nDTEND:20250115T103000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let inv = read_invitation(ics.as_bytes(), &IcsLimits::default()).unwrap();
        let facts = inv.groups[0].main().unwrap();
        // 10:00 in Paris in January is 09:00 UTC.
        assert_eq!(facts.start, 1_736_931_600);
        assert_eq!(facts.end, 1_736_937_000);
        assert_eq!(facts.tzid, "Europe/Paris");
        assert_eq!(inv.method, Method::Request);
    }
}
