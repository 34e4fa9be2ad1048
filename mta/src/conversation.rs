//! Who has written to which patient (DESIGN §4: "a patient answers, never starts").
//!
//! When a non-patient sender's message is delivered to a patient, the pair
//! (patient, sender address) is recorded with the message's Message-ID. A patient may then
//! write to that address, and only as a reply: the message must reference (In-Reply-To or
//! References) one of the recorded Message-IDs.
//!
//! Records: `conversation`: patient ‖ correspondent ‖ NUL ‖ Message-ID → Unix time. Each is a
//! blind write (no read-modify-write), so busy senders do not contend on one record.

use std::sync::Arc;

use mshub_directory::Address;
use mshub_store::{AccountId, Batch, Store, Tree};

use crate::MtaError;

const CONVERSATION: Tree = Tree("conversation");

pub struct Conversations {
    store: Arc<Store>,
}

fn prefix(patient: AccountId, correspondent: &Address) -> Vec<u8> {
    let mut k = patient.to_key().to_vec();
    k.extend_from_slice(correspondent.as_str().as_bytes());
    k.push(0);
    k
}

/// `<id@host>` → `id@host`: Message-IDs are compared without their angle brackets.
pub fn normalise_message_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

impl Conversations {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Records, in `batch`, that `correspondent` wrote to `patient` (message `message_id`, if
    /// it has one).
    ///
    /// The caller puts this in the batch that stores the patient's copy of the message: the
    /// record is durable exactly when the copy is, and costs no write of its own (each atomic
    /// batch costs the embedded store two log writes, whatever its size).
    pub fn record_in(
        batch: &mut Batch,
        patient: AccountId,
        correspondent: &Address,
        message_id: Option<&str>,
        now: i64,
    ) {
        let mut key = prefix(patient, correspondent);
        key.extend_from_slice(normalise_message_id(message_id.unwrap_or("")).as_bytes());
        batch.put(CONVERSATION, key, now.to_be_bytes());
    }

    /// Records, durably and on its own, that `correspondent` wrote to `patient` (for callers
    /// outside delivery, which uses [`Conversations::record_in`]).
    pub fn record(
        &self,
        patient: AccountId,
        correspondent: &Address,
        message_id: Option<&str>,
    ) -> Result<(), MtaError> {
        let mut batch = Batch::new();
        Self::record_in(
            &mut batch,
            patient,
            correspondent,
            message_id,
            mshub_store::now(),
        );
        let _ = self.store.kv().commit(&batch)?;
        Ok(())
    }

    /// Has `correspondent` ever written to `patient`?
    pub fn has_written(
        &self,
        patient: AccountId,
        correspondent: &Address,
    ) -> Result<bool, MtaError> {
        Ok(!self
            .store
            .kv()
            .scan(CONVERSATION, &prefix(patient, correspondent), None, Some(1))?
            .is_empty())
    }

    /// Does a message referencing `references` answer something `correspondent` sent?
    pub fn is_reply(
        &self,
        patient: AccountId,
        correspondent: &Address,
        references: &[String],
    ) -> Result<bool, MtaError> {
        for r in references {
            let id = normalise_message_id(r);
            if id.is_empty() {
                continue;
            }
            let mut key = prefix(patient, correspondent);
            key.extend_from_slice(id.as_bytes());
            if self.store.kv().get(CONVERSATION, &key)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// When `correspondent` first wrote to `patient`, if ever (the care relationship
    /// "wrote to the patient" dates from then).
    pub fn first_written(
        &self,
        patient: AccountId,
        correspondent: &Address,
    ) -> Result<Option<i64>, MtaError> {
        Ok(self
            .store
            .kv()
            .scan(CONVERSATION, &prefix(patient, correspondent), None, None)?
            .iter()
            .map(|(_, v)| time_of(v))
            .min())
    }

    /// Everyone who wrote to `patient`, most recent first (the webmail's "reply to" list).
    pub fn correspondents(&self, patient: AccountId) -> Result<Vec<Address>, MtaError> {
        let mut all = self.written(patient)?;
        all.sort_by_key(|(_, _, last)| std::cmp::Reverse(*last));
        Ok(all.into_iter().map(|(a, _, _)| a).collect())
    }

    /// Everyone who wrote to `patient`, with when each first did, in address order.
    pub fn correspondents_since(
        &self,
        patient: AccountId,
    ) -> Result<Vec<(Address, i64)>, MtaError> {
        Ok(self
            .written(patient)?
            .into_iter()
            .map(|(a, first, _)| (a, first))
            .collect())
    }

    /// (correspondent, first, last) for each who wrote to `patient`.
    fn written(&self, patient: AccountId) -> Result<Vec<(Address, i64, i64)>, MtaError> {
        let mut out: Vec<(Address, i64, i64)> = Vec::new();
        for (k, v) in self
            .store
            .kv()
            .scan(CONVERSATION, &patient.to_key(), None, None)?
        {
            let rest = &k[8..];
            let Some(end) = rest.iter().position(|b| *b == 0) else {
                continue;
            };
            let Some(addr) = std::str::from_utf8(&rest[..end])
                .ok()
                .and_then(|a| Address::try_from(a).ok())
            else {
                continue;
            };
            let at = time_of(&v);
            // Keys are in order: one correspondent's records are adjacent.
            match out.last_mut() {
                Some(entry) if entry.0 == addr => {
                    entry.1 = entry.1.min(at);
                    entry.2 = entry.2.max(at);
                }
                _ => out.push((addr, at, at)),
            }
        }
        Ok(out)
    }
}

fn time_of(value: &[u8]) -> i64 {
    value.try_into().map(i64::from_be_bytes).unwrap_or(0)
}
