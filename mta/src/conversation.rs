//! Who has written to which patient (DESIGN §4: "a patient answers, never starts").
//!
//! When a non-patient sender's message is delivered to a patient, the pair
//! (patient, sender address) is recorded with the message's Message-ID. A patient may then
//! write to that address, and only as a reply: the message must reference (In-Reply-To or
//! References) one of the recorded Message-IDs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use mshub_directory::Address;
use mshub_store::{AccountId, Batch, Commit, Store, Tree};

use crate::MtaError;

const CONVERSATION: Tree = Tree("conversation");
/// Message-IDs kept per (patient, professional): a patient answers recent messages.
const KEEP_IDS: usize = 500;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Thread {
    message_ids: Vec<String>,
    last: i64,
}

pub struct Conversations {
    store: Arc<Store>,
}

fn key(patient: AccountId, correspondent: &Address) -> Vec<u8> {
    let mut k = patient.to_key().to_vec();
    k.extend_from_slice(correspondent.as_str().as_bytes());
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

    /// Records that `correspondent` wrote to `patient` (message `message_id`, if it has one).
    pub fn record(
        &self,
        patient: AccountId,
        correspondent: &Address,
        message_id: Option<&str>,
    ) -> Result<(), MtaError> {
        let k = key(patient, correspondent);
        loop {
            let raw = self.store.kv().get(CONVERSATION, &k)?;
            let mut thread: Thread = match &raw {
                Some(r) => serde_json::from_slice(r).unwrap_or_default(),
                None => Thread::default(),
            };
            if let Some(id) = message_id {
                let id = normalise_message_id(id);
                if !thread.message_ids.contains(&id) {
                    thread.message_ids.push(id);
                }
                let excess = thread.message_ids.len().saturating_sub(KEEP_IDS);
                thread.message_ids.drain(..excess);
            }
            thread.last = mshub_store::now();
            let mut batch = Batch::new();
            batch.check(CONVERSATION, k.clone(), raw);
            batch.put(
                CONVERSATION,
                k.clone(),
                serde_json::to_vec(&thread).expect("serialisable"),
            );
            if self.store.kv().commit(&batch)? == Commit::Done {
                return Ok(());
            }
        }
    }

    fn thread(
        &self,
        patient: AccountId,
        correspondent: &Address,
    ) -> Result<Option<Thread>, MtaError> {
        Ok(self
            .store
            .kv()
            .get(CONVERSATION, &key(patient, correspondent))?
            .and_then(|raw| serde_json::from_slice(&raw).ok()))
    }

    /// Has `correspondent` ever written to `patient`?
    pub fn has_written(
        &self,
        patient: AccountId,
        correspondent: &Address,
    ) -> Result<bool, MtaError> {
        Ok(self.thread(patient, correspondent)?.is_some())
    }

    /// Does a message referencing `references` answer something `correspondent` sent?
    pub fn is_reply(
        &self,
        patient: AccountId,
        correspondent: &Address,
        references: &[String],
    ) -> Result<bool, MtaError> {
        let Some(thread) = self.thread(patient, correspondent)? else {
            return Ok(false);
        };
        Ok(references
            .iter()
            .map(|r| normalise_message_id(r))
            .any(|r| thread.message_ids.contains(&r)))
    }

    /// Everyone who wrote to `patient`, most recent first (the webmail's "reply to" list).
    pub fn correspondents(&self, patient: AccountId) -> Result<Vec<Address>, MtaError> {
        let mut out: Vec<(i64, Address)> = Vec::new();
        for (k, v) in self
            .store
            .kv()
            .scan(CONVERSATION, &patient.to_key(), None, None)?
        {
            let Ok(addr) = std::str::from_utf8(&k[8..]) else {
                continue;
            };
            let Ok(addr) = Address::try_from(addr) else {
                continue;
            };
            let last = serde_json::from_slice::<Thread>(&v)
                .map(|t| t.last)
                .unwrap_or(0);
            out.push((last, addr));
        }
        out.sort_by_key(|(last, _)| std::cmp::Reverse(*last));
        Ok(out.into_iter().map(|(_, a)| a).collect())
    }
}
