//! The patient's appointments at rest: one record per (patient, UID), sealed to the patient's
//! key, under a key that holds no patient data (the account id and the SHA-256 of the UID).
//!
//! Trees:
//! - `agenda-appointment`: account ‖ sha256(UID) → sealed JSON [`Record`];
//! - `agenda-reminder`: due time ‖ account ‖ sha256(UID) → start of the occurrence reminded
//!   of, the reminders to send in time order (the one piece of clear metadata: that an account
//!   has something at a time);
//! - `agenda-reminder-of`: account ‖ sha256(UID) → due time, to find that entry again.

use chrono::{NaiveDate, TimeZone};
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
    /// Proposed by an app, "à confirmer" by the patient ([`crate::Agenda::accept_proposal`]):
    /// no reminder until then. Written TENTATIVE in the feed.
    Proposed,
}

/// Who created an appointment, for the webmail to say so.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Origin {
    /// An organiser's invitation by mail (iTIP): only the organiser changes it. Records
    /// stored before the origin was kept are all invitations.
    #[default]
    Invitation,
    /// The patient, in the agenda ("rendez-vous personnel").
    Patient,
    /// An app the patient connected, by its catalogue id ("proposé par …").
    App { app_id: String },
}

/// An all-day appointment's days in Paris ("toute la journée", "du 10 au 11 mars"): local
/// calendar days, never derived from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DaySpan {
    pub first: NaiveDate,
    /// Included: RFC 5545 §3.6.1's DTEND is the day after.
    pub last: NaiveDate,
}

impl DaySpan {
    /// How many days, at least one.
    pub fn days(&self) -> i64 {
        (self.last - self.first).num_days() + 1
    }

    /// The span between two Paris midnights; rounding to whole days absorbs the 23- and
    /// 25-hour days of the DST changes.
    pub(crate) fn of_instants(start: i64, end: i64) -> Option<DaySpan> {
        let first = crate::ics::DEFAULT_TZ
            .timestamp_opt(start, 0)
            .earliest()?
            .date_naive();
        let days = ((end - start + 43_200).div_euclid(86_400)).max(1);
        Some(DaySpan {
            first,
            last: first + chrono::Days::new(u64::try_from(days - 1).ok()?),
        })
    }

    /// Midnight in Paris of the first day, and after the last (Unix seconds).
    pub fn bounds(&self) -> (i64, i64) {
        (
            paris_midnight(self.first),
            paris_midnight(self.last + chrono::Days::new(1)),
        )
    }
}

/// Midnight in Paris of `day` (it always exists: the clocks change at 02:00 and 03:00).
pub(crate) fn paris_midnight(day: NaiveDate) -> i64 {
    let naive = day.and_time(chrono::NaiveTime::MIN);
    crate::ics::DEFAULT_TZ
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp())
        .unwrap_or_else(|| naive.and_utc().timestamp() - 3600)
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
    /// First occurrence, Unix seconds (UTC). For an all-day appointment, midnight in Paris of
    /// its first day.
    pub start: i64,
    /// For an all-day appointment, midnight in Paris after its last day (exclusive).
    pub end: i64,
    /// `Some` for an all-day appointment (RFC 5545 §3.3.4 DATE start): its days in Paris.
    /// Display it with these dates, never with `start`/`end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_day: Option<DaySpan>,
    /// IANA name of the time zone the organizer gave ("UTC" for UTC times).
    pub tzid: String,
    pub status: Status,
    pub sequence: i64,
    /// DTSTAMP of the version kept, Unix seconds.
    pub dtstamp: i64,
    pub partstat: PartStat,
    pub recurrent: bool,
    /// Who created it.
    #[serde(default)]
    pub origin: Origin,
    /// The professional seen, free text, for the patient's own appointments.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub professional: String,
}

impl Appointment {
    /// Whether the patient edits it ([`crate::Agenda::update_own`]): made by the patient or
    /// proposed by an app, not an organiser's invitation.
    pub fn is_own(&self) -> bool {
        self.origin != Origin::Invitation
    }
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
