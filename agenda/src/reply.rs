//! The patient's answer to an invitation: the PARTSTAT recorded on the appointment, and the
//! iTIP REPLY e-mail (RFC 5546 §3.2.3, carried by mail per RFC 6047) that the caller submits.
//!
//! Where the REPLY goes: to the address that *sent* the invitation when it is known, else to
//! the ORGANIZER. A hospital system often sends on behalf of a physician (ORGANIZER is the
//! physician, the message comes from `rdv@chu…`); DESIGN §4 lets a patient write only to
//! whoever wrote first, so the sender is the address the MTA accepts. The ORGANIZER stays in
//! the REPLY's VEVENT, as RFC 5546 requires.

use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use mail_builder::MessageBuilder;

use mshub_directory::Account;
use mshub_store::Batch;

use crate::appointments::{lane, retry, Appointment};
use crate::{Agenda, AgendaError, PartStat, Result, Status};

/// The patient's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Decline,
}

impl Answer {
    fn partstat(self) -> PartStat {
        match self {
            Answer::Accept => PartStat::Accepted,
            Answer::Decline => PartStat::Declined,
        }
    }
}

/// An e-mail for the caller to submit through the MTA (`Mta::submit`), from the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The envelope and `To:` recipient.
    pub to: String,
    /// The RFC 5322 message.
    pub message: Vec<u8>,
}

impl Agenda {
    /// Records the patient's answer and builds the REPLY to send.
    pub fn respond(&self, patient: &Account, uid: &str, answer: Answer) -> Result<Reply> {
        if !patient.kind.is_patient() {
            return Err(AgendaError::NotAPatient(patient.address.to_string()));
        }
        let records = self.records();
        let appointment = retry(&self.store, lane(patient.id), || {
            let (mut record, raw) = records
                .get(patient.id, uid)?
                .ok_or_else(|| AgendaError::NoSuchAppointment(uid.to_string()))?;
            if record.appointment.status == Status::Cancelled {
                return Err(AgendaError::Cancelled(uid.to_string()));
            }
            record
                .appointment
                .organizer
                .as_ref()
                .ok_or_else(|| AgendaError::NoOrganizer(uid.to_string()))?;
            record.appointment.partstat = answer.partstat();
            let mut batch = Batch::new();
            let due = self.next_reminder(&record, mshub_store::now());
            records.put(&mut batch, patient.id, &record, Some(raw), due)?;
            Ok((batch, record.appointment))
        })?;
        let organizer = appointment
            .organizer
            .clone()
            .ok_or_else(|| AgendaError::NoOrganizer(uid.to_string()))?;
        let to = appointment.invited_by.clone().unwrap_or(organizer);
        let ics = reply_ics(&appointment, patient, mshub_store::now());
        let message = reply_message(&appointment, patient, &to, answer, ics)?;
        Ok(Reply { to, message })
    }
}

/// RFC 5545 §3.3.11: TEXT escaping.
pub(crate) fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// RFC 5545 §3.2: a parameter value with `:;,` is quoted; `"` cannot appear (dropped).
fn param_value(s: &str) -> String {
    let s: String = s.chars().filter(|&c| c != '"' && !c.is_control()).collect();
    format!("\"{s}\"")
}

/// RFC 5545 §3.1: lines folded at 75 octets, never inside a UTF-8 character.
pub(crate) fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// RFC 5545 §3.3.5 date-time in UTC.
pub(crate) fn utc(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|| "19700101T000000Z".into())
}

/// DTSTART and DTEND of `a`: dates for an all-day appointment (RFC 5545 §3.6.1: DTEND is the
/// day after its last), UTC date-times otherwise.
pub(crate) fn dtstart_dtend(a: &Appointment) -> [String; 2] {
    match a.all_day {
        Some(span) => [
            format!("DTSTART;VALUE=DATE:{}", span.first.format("%Y%m%d")),
            format!(
                "DTEND;VALUE=DATE:{}",
                (span.last + chrono::Days::new(1)).format("%Y%m%d")
            ),
        ],
        None => [
            format!("DTSTART:{}", utc(a.start)),
            format!("DTEND:{}", utc(a.end)),
        ],
    }
}

/// RFC 5546 §3.2.3 REPLY: METHOD:REPLY, the event's UID and SEQUENCE, a new DTSTAMP, the
/// ORGANIZER and exactly one ATTENDEE, the replying patient, with the PARTSTAT.
pub fn reply_ics(a: &Appointment, patient: &Account, now: i64) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".into(),
        "PRODID:-//mshub//agenda//FR".into(),
        "METHOD:REPLY".into(),
        "BEGIN:VEVENT".into(),
        format!("UID:{}", escape_text(&a.uid)),
        format!("SEQUENCE:{}", a.sequence),
        format!("DTSTAMP:{}", utc(now)),
    ];
    lines.extend(dtstart_dtend(a));
    if !a.summary.is_empty() {
        lines.push(format!("SUMMARY:{}", escape_text(&a.summary)));
    }
    if let Some(organizer) = &a.organizer {
        let cn = a
            .organizer_name
            .as_deref()
            .map(|n| format!(";CN={}", param_value(n)))
            .unwrap_or_default();
        lines.push(format!("ORGANIZER{cn}:mailto:{organizer}"));
    }
    lines.push(format!(
        "ATTENDEE;CN={};PARTSTAT={}:mailto:{}",
        param_value(&patient.kind.display_name()),
        a.partstat.as_ical(),
        patient.address
    ));
    lines.push("END:VEVENT".into());
    lines.push("END:VCALENDAR".into());
    let mut out = String::new();
    for line in lines {
        fold(&line, &mut out);
    }
    out
}

fn reply_message(
    a: &Appointment,
    patient: &Account,
    to: &str,
    answer: Answer,
    ics: String,
) -> Result<Vec<u8>> {
    let (verb, subject) = match answer {
        Answer::Accept => ("accepte", "Accepté"),
        Answer::Decline => ("décline", "Refusé"),
    };
    let title = if a.summary.is_empty() {
        "rendez-vous".to_string()
    } else {
        a.summary.clone()
    };
    let text = format!(
        "{} {verb} l'invitation « {title} ».\r\n",
        patient.kind.display_name()
    );
    // RFC 6047 §2.4: the iCalendar object in a text/calendar part with the method parameter;
    // multipart/alternative so that a client without calendar support shows the text.
    let body = MimePart::new(
        "multipart/alternative",
        vec![
            MimePart::new("text/plain", text),
            MimePart::new(
                ContentType::new("text/calendar")
                    .attribute("method", "REPLY")
                    .attribute("charset", "utf-8"),
                ics,
            ),
        ],
    );
    let mut builder = MessageBuilder::new()
        .from((patient.kind.display_name(), patient.address.to_string()))
        .to(to.to_string())
        .subject(format!("{subject} : {title}"))
        .date(mshub_store::now());
    // RFC 5322 §3.6.4: the answer threads with the invitation (and the MTA recognises an
    // answer by it).
    if let Some(id) = &a.invitation_id {
        builder = builder.in_reply_to(id.clone()).references(id.clone());
    }
    builder
        .body(body)
        .write_to_vec()
        .map_err(|e| AgendaError::Mail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_characters() {
        let mut out = String::new();
        fold(&format!("SUMMARY:{}", "é".repeat(60)), &mut out);
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{line}");
        }
        assert_eq!(
            out.replace("\r\n ", ""),
            format!("SUMMARY:{}\r\n", "é".repeat(60))
        );
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape_text("a;b,c\\d\ne"), "a\\;b\\,c\\\\d\\ne");
    }
}
