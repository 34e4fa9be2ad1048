//! The patient's appointments at rest: one record per (patient, UID), sealed to the patient's
//! key, under a key that holds no patient data (the account id and the SHA-256 of the UID).
//!
//! Trees:
//! - `agenda-appointment`: account ‖ sha256(UID) → sealed JSON [`Record`];
//! - `agenda-reminder`: due time ‖ account ‖ sha256(UID) → start of the occurrence reminded
//!   of, the reminders to send in time order (the one piece of clear metadata: that an account
//!   has something at a time);
//! - `agenda-reminder-of`: account ‖ sha256(UID) → due time, to find that entry again.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use mshub_store::{AccountId, Batch, Store, StoreError, Tree};

use crate::Result;

pub(crate) const APPOINTMENTS: Tree = Tree("agenda-appointment");
pub(crate) const REMINDERS: Tree = Tree("agenda-reminder");
pub(crate) const REMINDER_OF: Tree = Tree("agenda-reminder-of");

/// RFC 5545 §3.8.1.11 STATUS of an event, as the patient sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Confirmed,
    Tentative,
    Cancelled,
}

/// RFC 5545 §3.2.12 PARTSTAT of the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartStat {
    NeedsAction,
    Accepted,
    Declined,
}

impl PartStat {
    pub fn as_ical(self) -> &'static str {
        match self {
            PartStat::NeedsAction => "NEEDS-ACTION",
            PartStat::Accepted => "ACCEPTED",
            PartStat::Declined => "DECLINED",
        }
    }
}

/// A rendez-vous of the patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    pub uid: String,
    pub summary: String,
    pub location: String,
    pub description: String,
    /// ORGANIZER's address (without `mailto:`), lower-cased.
    pub organizer: Option<String>,
    /// ORGANIZER's CN.
    pub organizer_name: Option<String>,
    /// The envelope sender of the message that brought the invitation (or its update): the
    /// address the patient's REPLY goes to (DESIGN §4: a patient answers, never starts).
    pub invited_by: Option<String>,
    /// The Message-ID of that message: the REPLY refers to it (In-Reply-To, References), which
    /// is how the MTA knows the patient answers and does not start a conversation.
    #[serde(default)]
    pub invitation_id: Option<String>,
    /// First occurrence, Unix seconds (UTC).
    pub start: i64,
    pub end: i64,
    /// IANA name of the time zone the organizer gave ("UTC" for UTC times).
    pub tzid: String,
    pub status: Status,
    pub sequence: i64,
    /// DTSTAMP of the version kept, Unix seconds.
    pub dtstamp: i64,
    pub partstat: PartStat,
    pub recurrent: bool,
}

/// What is sealed at rest for one appointment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub appointment: Appointment,
    /// A VCALENDAR of the event's VEVENTs (master and overrides) and their VTIMEZONEs.
    pub ics: String,
}

pub(crate) fn uid_hash(uid: &str) -> [u8; 32] {
    Sha256::digest(uid.as_bytes()).into()
}

pub(crate) fn record_key(patient: AccountId, uid: &str) -> Vec<u8> {
    let mut key = patient.to_key().to_vec();
    key.extend_from_slice(&uid_hash(uid));
    key
}

/// Reminder index key: due time first so that a scan returns them in time order.
pub(crate) fn reminder_key(due: i64, record_key: &[u8]) -> Vec<u8> {
    let mut key = (due.max(0) as u64).to_be_bytes().to_vec();
    key.extend_from_slice(record_key);
    key
}

/// A lane of [`Store::retry`] per patient, so that two filings for one patient serialise.
pub(crate) fn lane(patient: AccountId) -> u64 {
    0x6167_656e_6461_0000 ^ patient.0
}

pub(crate) struct Records<'a> {
    pub store: &'a Store,
}

impl Records<'_> {
    /// The record and its raw sealed bytes (for a compare-and-swap).
    pub fn get(&self, patient: AccountId, uid: &str) -> Result<Option<(Record, Vec<u8>)>> {
        let Some(sealed) = self
            .store
            .kv()
            .get(APPOINTMENTS, &record_key(patient, uid))?
        else {
            return Ok(None);
        };
        Ok(Some((self.open(patient, &sealed)?, sealed)))
    }

    fn open(&self, patient: AccountId, sealed: &[u8]) -> Result<Record> {
        let plain = self.store.open_sealed(patient, sealed)?;
        serde_json::from_slice(&plain).map_err(|e| {
            StoreError::Corrupt {
                what: "agenda appointment".into(),
                reason: e.to_string(),
            }
            .into()
        })
    }

    pub fn all(&self, patient: AccountId) -> Result<Vec<Record>> {
        let mut records = self
            .store
            .kv()
            .scan(APPOINTMENTS, &patient.to_key(), None, None)?
            .into_iter()
            .map(|(_, sealed)| self.open(patient, &sealed))
            .collect::<Result<Vec<_>>>()?;
        records.sort_by(|a, b| {
            (a.appointment.start, &a.appointment.uid)
                .cmp(&(b.appointment.start, &b.appointment.uid))
        });
        Ok(records)
    }

    /// Adds to `batch` the writes that store `record` (expected to replace `previous`, for the
    /// compare-and-swap) and move its reminder to `reminder` (due time, occurrence start).
    pub fn put(
        &self,
        batch: &mut Batch,
        patient: AccountId,
        record: &Record,
        previous: Option<Vec<u8>>,
        reminder: Option<(i64, i64)>,
    ) -> Result<()> {
        let key = record_key(patient, &record.appointment.uid);
        let plain = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            what: "agenda appointment".into(),
            reason: e.to_string(),
        })?;
        batch.check(APPOINTMENTS, key.clone(), previous);
        batch.put(APPOINTMENTS, key.clone(), self.store.seal(patient, &plain)?);
        self.move_reminder(batch, &key, reminder)?;
        Ok(())
    }

    /// Replaces the reminder entry of an appointment: `(due time, occurrence start)`, or none.
    pub fn move_reminder(
        &self,
        batch: &mut Batch,
        key: &[u8],
        reminder: Option<(i64, i64)>,
    ) -> Result<()> {
        if let Some(old) = self.store.kv().get(REMINDER_OF, key)? {
            if let Ok(bytes) = <[u8; 8]>::try_from(old.as_slice()) {
                batch.remove(REMINDERS, reminder_key(i64::from_be_bytes(bytes), key));
            }
        }
        match reminder {
            Some((due, start)) => {
                batch.put(
                    REMINDERS,
                    reminder_key(due, key),
                    start.to_be_bytes().to_vec(),
                );
                batch.put(REMINDER_OF, key.to_vec(), due.to_be_bytes().to_vec());
            }
            None => batch.remove(REMINDER_OF, key.to_vec()),
        }
        Ok(())
    }
}

/// [`Store::retry`] for attempts that fail with the agenda's own errors: such a failure stops
/// the retries and is returned as is.
pub(crate) fn retry<T>(
    store: &Store,
    lane: u64,
    mut attempt: impl FnMut() -> Result<(Batch, T)>,
) -> Result<T> {
    let mut failure = None;
    let outcome = store.retry(lane, || match attempt() {
        Ok(done) => Ok(done),
        Err(crate::AgendaError::Store(e)) => Err(e),
        Err(other) => {
            failure = Some(other);
            Err(StoreError::Backend("agenda attempt failed".into()))
        }
    });
    match failure {
        Some(failure) => Err(failure),
        None => Ok(outcome?),
    }
}
