//! Filing of invitations from delivered mail (DESIGN §3, RFC 5546 §3.2 for an attendee): every
//! `text/calendar` part or `.ics` attachment of a message to a patient creates, updates or
//! cancels appointments; the [`AgendaFiling`] report says what became of each event.

use std::collections::BTreeSet;

use mail_parser::{MessageParser, MimeHeaders};

use mshub_directory::{Account, Address};
use mshub_store::{Batch, FilingOutcome};

use crate::appointments::{lane, retry, Record, Records};
use crate::ics::{read_invitation, EventGroup, Method};
use crate::itip::{decide, merge_overrides, Decision};
use crate::{Agenda, Appointment, PartStat, Rejection, Result, Status};

/// Cheap prefilter for the delivery pipeline: could this message carry an invitation? Only a
/// `text/calendar` (or `application/ics`) message, or a multipart one that mentions a calendar,
/// can (RFC 6047 §2.4): most mail is answered from its header block alone.
pub fn may_carry_invitation(raw: &[u8]) -> bool {
    let top = MessageParser::new()
        .parse_headers(raw)
        .and_then(|m| {
            m.content_type().map(|ct| {
                ct.ctype().to_ascii_lowercase()
                    + "/"
                    + &ct.subtype().unwrap_or("").to_ascii_lowercase()
            })
        })
        .unwrap_or_else(|| "text/plain".into());
    if top == "text/calendar" || top == "application/ics" {
        return true;
    }
    if !top.starts_with("multipart/") {
        return false;
    }
    const NEEDLES: [&[u8]; 4] = [
        b"text/calendar",
        b"application/ics",
        b".ics",
        b"begin:vcalendar",
    ];
    NEEDLES
        .iter()
        .any(|n| raw.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n)))
}

/// What became of one event (one UID) of a calendar part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    Created,
    Updated,
    Cancelled,
    /// Already stored in this version: nothing to do.
    Unchanged,
    Failed(Rejection),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFiling {
    /// The event's UID, or the part's name when the part could not be read.
    pub name: String,
    pub summary: String,
    pub outcome: EventOutcome,
}

/// What [`Agenda::file_message`] did with a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgendaFiling {
    pub events: Vec<EventFiling>,
}

impl AgendaFiling {
    /// A French sentence for the recipient and the sender.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .events
            .iter()
            .map(|e| {
                let what = if e.summary.is_empty() {
                    format!("rendez-vous {}", e.name)
                } else {
                    format!("rendez-vous « {} »", e.summary)
                };
                match &e.outcome {
                    EventOutcome::Created => format!("{what} ajouté à l'agenda"),
                    EventOutcome::Updated => format!("{what} mis à jour"),
                    EventOutcome::Cancelled => format!("{what} annulé"),
                    EventOutcome::Unchanged => format!("{what} déjà à jour"),
                    EventOutcome::Failed(r) => format!("{what} refusé : {r}"),
                }
            })
            .collect();
        parts.join(" ; ")
    }

    pub fn failures(&self) -> impl Iterator<Item = &Rejection> {
        self.events.iter().filter_map(|e| match &e.outcome {
            EventOutcome::Failed(r) => Some(r),
            _ => None,
        })
    }

    /// Refusals (including stale updates) win, so that the sender hears of them.
    pub fn outcome(&self) -> FilingOutcome {
        if self.events.is_empty() {
            FilingOutcome::NotApplicable
        } else if self.failures().next().is_some() {
            FilingOutcome::Failed {
                reason: self.summary(),
            }
        } else {
            FilingOutcome::Filed {
                summary: self.summary(),
            }
        }
    }
}

/// The calendar parts of a message: `text/calendar`, `application/ics`, or a `.ics` file.
fn calendar_parts(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    let mut parts = Vec::new();
    for part in &message.parts {
        if part.is_multipart() || part.is_message() {
            continue;
        }
        let ctype = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_default();
        let name = part.attachment_name().unwrap_or("").to_string();
        let is_calendar = ctype == "text/calendar"
            || ctype == "application/ics"
            || name.to_ascii_lowercase().ends_with(".ics");
        if !is_calendar {
            continue;
        }
        let body = part.contents().to_vec();
        // Thunderbird and Outlook send the same calendar inline and as invite.ics.
        if seen.insert(body.clone()) {
            let label = if name.is_empty() { ctype } else { name };
            parts.push((label, body));
        }
    }
    parts
}

impl Agenda {
    /// Files the invitations of a message durably in `recipient`'s INBOX. Only patients get
    /// appointments; for anyone else the outcome is "not applicable".
    pub fn file_message(
        &self,
        recipient: &Account,
        sender: Option<&Address>,
        raw: &[u8],
    ) -> AgendaFiling {
        let mut filing = AgendaFiling::default();
        if !recipient.kind.is_patient() {
            return filing;
        }
        let mut done_uids = BTreeSet::new();
        let message_id = mail_parser::MessageParser::new()
            .parse_headers(raw)
            .and_then(|m| m.message_id().map(str::to_string));
        for (name, body) in calendar_parts(raw) {
            // A part with an unbounded series is refused whole: nothing of it is stored.
            let invitation = match read_invitation(&body, &self.limits.ics).and_then(|i| {
                i.groups.iter().try_for_each(|g| {
                    crate::recurrence::check_rules(&g.uid, &g.ics, &self.limits.recurrence)
                })?;
                Ok(i)
            }) {
                Ok(i) => i,
                Err(rejection) => {
                    filing.events.push(EventFiling {
                        name,
                        summary: String::new(),
                        outcome: EventOutcome::Failed(rejection),
                    });
                    continue;
                }
            };
            for group in &invitation.groups {
                let outcome = self
                    .file_group(
                        recipient,
                        sender,
                        message_id.as_deref(),
                        invitation.method,
                        group,
                    )
                    .unwrap_or_else(|e| {
                        EventOutcome::Failed(match e {
                            crate::AgendaError::Rejected(r) => r,
                            other => Rejection::Internal {
                                detail: other.to_string(),
                            },
                        })
                    });
                // The same event in two parts of one message is reported once.
                if outcome == EventOutcome::Unchanged && done_uids.contains(&group.uid) {
                    continue;
                }
                done_uids.insert(group.uid.clone());
                filing.events.push(EventFiling {
                    name: group.uid.clone(),
                    summary: group.main().map(|m| m.summary.clone()).unwrap_or_default(),
                    outcome,
                });
            }
        }
        filing
    }

    fn file_group(
        &self,
        patient: &Account,
        sender: Option<&Address>,
        message_id: Option<&str>,
        method: Method,
        group: &EventGroup,
    ) -> Result<EventOutcome> {
        let Some(main) = group.main() else {
            return Err(Rejection::NoEvent.into());
        };
        let records = Records { store: &self.store };
        let me = patient.address.as_str().to_ascii_lowercase();
        let invited_by = sender.map(|s| s.as_str().to_ascii_lowercase());
        let via = Via {
            invited_by,
            invitation_id: message_id.map(str::to_string),
        };
        let invited_by = &via.invited_by;
        retry(&self.store, lane(patient.id), || {
            let current = records.get(patient.id, &group.uid)?;
            let decision = decide(current.as_ref().map(|(r, _)| &r.appointment), group);
            if let (Some((old, _)), false) = (&current, matches!(decision, Decision::Duplicate)) {
                self.check_organizer(&old.appointment, sender)?;
            }
            let (record, outcome) = match (decision, &current) {
                (Decision::Duplicate, _) => return Ok((Batch::new(), EventOutcome::Unchanged)),
                (Decision::Stale { incoming, current }, _) => {
                    return Err(Rejection::Stale {
                        uid: group.uid.clone(),
                        incoming,
                        current,
                    }
                    .into())
                }
                (Decision::MergeOverrides, Some((old, _))) => {
                    let mut record = old.clone();
                    record.ics = merge_overrides(&old.ics, &group.ics, method == Method::Cancel)?;
                    let a = &mut record.appointment;
                    a.sequence = a.sequence.max(main.sequence);
                    if invited_by.is_some() {
                        a.invited_by = invited_by.clone();
                        a.invitation_id = via.invitation_id.clone();
                    }
                    (record, EventOutcome::Updated)
                }
                (Decision::Replace { reset_partstat }, Some((old, _))) => {
                    let mut record = Record {
                        appointment: appointment_of(main, &group.uid, &me, &via),
                        ics: group.ics.clone(),
                    };
                    let a = &mut record.appointment;
                    if !reset_partstat && a.partstat == PartStat::NeedsAction {
                        a.partstat = old.appointment.partstat;
                    }
                    if a.invited_by.is_none() {
                        a.invited_by = old.appointment.invited_by.clone();
                        a.invitation_id = old.appointment.invitation_id.clone();
                    }
                    if method == Method::Cancel {
                        // RFC 5546 §3.2.5: the whole event is cancelled; keep what it was.
                        let mut kept = old.clone();
                        kept.appointment.status = Status::Cancelled;
                        kept.appointment.sequence = a.sequence;
                        kept.appointment.dtstamp = a.dtstamp;
                        (kept, EventOutcome::Cancelled)
                    } else {
                        (record, EventOutcome::Updated)
                    }
                }
                _ => {
                    let mut record = Record {
                        appointment: appointment_of(main, &group.uid, &me, &via),
                        ics: group.ics.clone(),
                    };
                    if method == Method::Cancel {
                        record.appointment.status = Status::Cancelled;
                        (record, EventOutcome::Cancelled)
                    } else {
                        (record, EventOutcome::Created)
                    }
                }
            };
            let outcome = match (outcome, record.appointment.status) {
                (EventOutcome::Updated, Status::Cancelled) => EventOutcome::Cancelled,
                (o, _) => o,
            };
            let mut batch = Batch::new();
            let due = self.next_reminder(&record, mshub_store::now());
            records.put(
                &mut batch,
                patient.id,
                &record,
                current.map(|(_, raw)| raw),
                due,
            )?;
            Ok((batch, outcome))
        })
    }
}

impl Agenda {
    /// RFC 5546 §3.2: only the organizer updates or cancels an event. The authenticated
    /// sender must be the stored appointment's organizer, the one whose message created it, or
    /// share an organisation mailbox with either (a secretariat's system sending for a
    /// doctor). What the new iCalendar data claims as ORGANIZER proves nothing.
    fn check_organizer(&self, stored: &Appointment, sender: Option<&Address>) -> Result<()> {
        let refused = || {
            crate::AgendaError::from(Rejection::NotOrganizer {
                uid: stored.uid.clone(),
                organizer: stored
                    .organizer
                    .clone()
                    .or_else(|| stored.invited_by.clone())
                    .unwrap_or_else(|| "inconnu".into()),
            })
        };
        let Some(sender) = sender else {
            return Err(refused());
        };
        let owners: Vec<&str> = [stored.organizer.as_deref(), stored.invited_by.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let sender_text = sender.as_str().to_ascii_lowercase();
        if owners.iter().any(|o| o.eq_ignore_ascii_case(&sender_text)) {
            return Ok(());
        }
        // Organisations the sender belongs to, and the sender itself when it is one.
        let mut shared: Vec<String> = self
            .directory
            .organisations_of(sender)?
            .into_iter()
            .map(|o| o.address.as_str().to_ascii_lowercase())
            .collect();
        shared.push(sender_text);
        for owner in owners {
            let Ok(owner) = Address::try_from(owner) else {
                continue;
            };
            let owner_orgs = self.directory.organisations_of(&owner)?;
            if owner_orgs
                .iter()
                .any(|o| shared.contains(&o.address.as_str().to_ascii_lowercase()))
                || shared.contains(&owner.as_str().to_ascii_lowercase())
            {
                return Ok(());
            }
        }
        Err(refused())
    }
}

/// The message an invitation came in: who sent it, and its Message-ID.
struct Via {
    invited_by: Option<String>,
    invitation_id: Option<String>,
}

fn appointment_of(facts: &crate::ics::EventFacts, uid: &str, me: &str, via: &Via) -> Appointment {
    let partstat = facts
        .attendees
        .iter()
        .find(|(a, _)| a == me)
        .map(|(_, p)| *p)
        .unwrap_or(PartStat::NeedsAction);
    Appointment {
        uid: uid.to_string(),
        summary: facts.summary.clone(),
        location: facts.location.clone(),
        description: facts.description.clone(),
        organizer: facts.organizer.as_ref().map(|(a, _)| a.clone()),
        organizer_name: facts.organizer.as_ref().and_then(|(_, n)| n.clone()),
        invited_by: via.invited_by.clone(),
        invitation_id: via.invitation_id.clone(),
        start: facts.start,
        end: facts.end,
        all_day: facts.all_day,
        tzid: facts.tzid.clone(),
        status: facts.status,
        sequence: facts.sequence,
        dtstamp: facts.dtstamp,
        partstat,
        recurrent: facts.recurrent,
        origin: crate::Origin::Invitation,
        professional: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefilter_finds_calendar_markers_in_any_case() {
        assert!(may_carry_invitation(
            b"Content-Type: TEXT/CALENDAR; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\n"
        ));
        let multipart = |inner: &str| {
            format!("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n{inner}\r\n--b--\r\n")
        };
        assert!(may_carry_invitation(
            multipart("Content-Disposition: attachment; filename=\"invite.ICS\"\r\n\r\nx")
                .as_bytes()
        ));
        assert!(may_carry_invitation(
            multipart("Content-Type: text/plain\r\n\r\nBEGIN:VCALENDAR").as_bytes()
        ));
        assert!(!may_carry_invitation(
            multipart("Content-Type: text/plain\r\n\r\nBonjour").as_bytes()
        ));
        // A single text part cannot carry an invitation (RFC 6047), whatever it says.
        assert!(!may_carry_invitation(
            b"Subject: hello\r\n\r\nBEGIN:VCALENDAR plain text about invite.ics"
        ));
    }
}
