//! Appointment reminders: a French plain-text notification in the patient's INBOX some time
//! before the appointment (default 24 h, [`crate::AgendaLimits::reminder_lead_secs`]).
//!
//! An all-day appointment has no hour to count back from: it is reminded the evening before,
//! at 18:00 in Paris ([`ALL_DAY_REMINDER_HOUR`]), early enough to prepare (fasting, papers,
//! transport) and not in the night. A proposal from an app is not reminded until the patient
//! accepts it.
//!
//! Exactly once: the message is appended in the same atomic batch that removes the reminder's
//! index entry (and, for a recurring appointment, schedules the next one).

use std::collections::BTreeSet;

use mail_builder::MessageBuilder;

use mshub_store::{AccountId, Batch, SpecialUse};

use crate::appointments::{Record, REMINDERS};
use crate::{Agenda, AgendaError, PartStat, Result, Status};

/// How many reminders one call reads at most (the next call takes the rest).
const BATCH: usize = 1000;

/// The hour, in Paris, of the eve on which an all-day appointment is reminded.
pub const ALL_DAY_REMINDER_HOUR: u32 = 18;

/// 18:00 in Paris on the day before the Paris day of `start`.
fn eve_of(start: i64) -> Option<i64> {
    use chrono::TimeZone;
    let tz = crate::ics::DEFAULT_TZ;
    let day = tz.timestamp_opt(start, 0).earliest()?.date_naive();
    let eve = day.pred_opt()?.and_hms_opt(ALL_DAY_REMINDER_HOUR, 0, 0)?;
    Some(tz.from_local_datetime(&eve).earliest()?.timestamp())
}

/// A reminder whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    pub patient: AccountId,
    pub uid: String,
    pub summary: String,
    pub location: String,
    /// The occurrence reminded of, Unix seconds.
    pub start: i64,
    /// Whether it is an all-day appointment (the notice gives no hour).
    pub all_day: bool,
    /// When the reminder was due.
    pub due: i64,
    /// Index key, to remove once sent.
    key: Vec<u8>,
    record_key: Vec<u8>,
}

impl Agenda {
    /// When to remind the patient of `record`, and of which occurrence: `lead` before its next
    /// occurrence after `now` (the eve at 18:00 for an all-day one), or at once if that is
    /// already past; never for a cancelled or declined appointment, nor a proposal not yet
    /// accepted.
    pub(crate) fn next_reminder(&self, record: &Record, now: i64) -> Option<(i64, i64)> {
        let a = &record.appointment;
        if matches!(a.status, Status::Cancelled | Status::Proposed)
            || a.partstat == PartStat::Declined
        {
            return None;
        }
        let next = if a.recurrent {
            crate::recurrence::expand(&record.ics, now, i64::MAX, &self.limits.recurrence)
                .into_iter()
                .map(|i| i.start)
                .find(|&s| s > now)?
        } else {
            a.start
        };
        let due = match a.all_day {
            Some(_) => eve_of(next)?,
            None => next - self.limits.reminder_lead_secs,
        };
        (next > now).then(|| (due.max(now), next))
    }

    /// The reminders due at `now_unix` (at most 1000 per call), oldest first.
    pub fn due_reminders(&self, now_unix: i64) -> Result<Vec<DueReminder>> {
        let mut due = Vec::new();
        for (key, value) in self.store.kv().scan(REMINDERS, &[], None, Some(BATCH))? {
            let (Some(at), Some(account)) = (key.get(..8), key.get(8..16)) else {
                continue;
            };
            let at = i64::from_be_bytes(at.try_into().unwrap_or_default());
            if at > now_unix {
                break;
            }
            let patient = AccountId(u64::from_be_bytes(account.try_into().unwrap_or_default()));
            let record_key = key[8..].to_vec();
            let sealed = self
                .store
                .kv()
                .get(crate::appointments::APPOINTMENTS, &record_key)?;
            let Some(sealed) = sealed else {
                // The appointment is gone: drop its stale entry.
                let mut batch = Batch::new();
                batch.remove(REMINDERS, key.clone());
                let _ = self.store.kv().commit(&batch)?;
                continue;
            };
            let plain = self.store.open_sealed(patient, &sealed)?;
            let record: Record =
                serde_json::from_slice(&plain).map_err(|e| AgendaError::Data(e.to_string()))?;
            let a = &record.appointment;
            let start = <[u8; 8]>::try_from(value.as_slice())
                .map(i64::from_be_bytes)
                .unwrap_or(a.start);
            due.push(DueReminder {
                patient,
                uid: a.uid.clone(),
                summary: a.summary.clone(),
                location: a.location.clone(),
                start,
                all_day: a.all_day.is_some(),
                due: at,
                key,
                record_key,
            });
        }
        Ok(due)
    }

    /// Sends every due reminder once: appends the notification to the patient's INBOX and
    /// removes the reminder in the same commit. Returns how many were sent. The binary calls
    /// this periodically (every minute).
    pub fn send_due_reminders(&self, now_unix: i64) -> Result<usize> {
        let mut sent = 0;
        for reminder in self.due_reminders(now_unix)? {
            let Some(account) = self.directory.account(reminder.patient)? else {
                continue;
            };
            let message = reminder_message(
                &reminder,
                account.address.as_str(),
                self.directory.hub_domain().as_str(),
            )?;
            let next = match self.records().get(reminder.patient, &reminder.uid)? {
                Some((record, _)) => self.next_reminder(&record, reminder.start),
                None => None,
            };
            let mut extra = Batch::new();
            extra.remove(REMINDERS, reminder.key.clone());
            self.records()
                .move_reminder(&mut extra, &reminder.record_key, next)?;
            let inbox = self
                .store
                .special_mailbox(reminder.patient, SpecialUse::Inbox)?;
            self.store.append_with(
                inbox.id,
                &message,
                BTreeSet::new(),
                now_unix,
                &|_, batch| {
                    batch.writes.extend(extra.writes.iter().cloned());
                },
            )?;
            sent += 1;
        }
        Ok(sent)
    }
}

fn reminder_message(r: &DueReminder, to: &str, hub_domain: &str) -> Result<Vec<u8>> {
    let title = if r.summary.is_empty() {
        "Rendez-vous".to_string()
    } else {
        r.summary.clone()
    };
    let when = if r.all_day {
        format!(
            "le {} (toute la journée)",
            crate::french::long_date(r.start)
        )
    } else {
        format!("le {}", crate::french::long_datetime(r.start))
    };
    let mut body = format!("Bonjour,\r\n\r\nRappel : « {title} » {when}.\r\n");
    if !r.location.is_empty() {
        body.push_str(&format!("Lieu : {}\r\n", r.location));
    }
    body.push_str("\r\nCe message est envoyé automatiquement par votre agenda ; merci de ne pas y répondre.\r\n");
    MessageBuilder::new()
        .from((
            "Votre agenda santé".to_string(),
            format!("ne-pas-repondre@{hub_domain}"),
        ))
        .to(to.to_string())
        .subject(format!("Rappel : {title}"))
        .date(mshub_store::now())
        .message_id(format!(
            "agenda-reminder-{}-{}@{hub_domain}",
            r.due,
            hex(&r.record_key[8..16.min(r.record_key.len())])
        ))
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-generated"),
        )
        .text_body(body)
        .write_to_vec()
        .map_err(|e| AgendaError::Mail(e.to_string()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
