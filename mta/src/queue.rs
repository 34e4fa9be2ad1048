//! The outbound queue: messages for peer operators' domains, kept durably until each recipient
//! is delivered, has failed for good, or the give-up time has passed. It survives restarts: the
//! queue is records in the store plus a sealed blob per message.
//!
//! Several nodes may share the store: a node delivers an entry only while it holds the entry's
//! lease (a record taken by compare-and-swap, with an expiry; on PostgreSQL the race for it uses
//! `SELECT … FOR UPDATE SKIP LOCKED`, so a node never waits on an entry another is taking), and
//! re-reads the entry once it holds it. Two live nodes never deliver one entry at once; an entry
//! whose node died is taken up by another when the lease expires.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use mshub_directory::Address;
use mshub_store::{Batch, BlobId, Commit, Store, Tree};

use crate::dsn::DsnRequest;
use crate::MtaError;

const QUEUE: Tree = Tree("queue");
/// queue id → [`Lease`] of the node delivering that entry.
const LEASES: Tree = Tree("queue-lease");
/// The hub's own account owns the sealed blobs of queued messages.
pub use mshub_store::SYSTEM_ACCOUNT;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum RecipientState {
    Pending { last_error: Option<String> },
    Delivered { reply: String },
    Failed { reply: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecipient {
    pub address: Address,
    pub dsn: DsnRequest,
    pub state: RecipientState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    pub id: u64,
    pub blob: BlobId,
    pub size: u64,
    /// `None`: null reverse-path (a DSN itself: never answered by another DSN).
    pub from: Option<Address>,
    pub env_id: Option<String>,
    pub ret_full: bool,
    pub recipients: Vec<QueuedRecipient>,
    pub created: i64,
    pub attempts: u32,
    pub next_attempt: i64,
    pub delay_notified: bool,
}

impl QueuedMessage {
    pub fn pending(&self) -> impl Iterator<Item = &QueuedRecipient> {
        self.recipients
            .iter()
            .filter(|r| matches!(r.state, RecipientState::Pending { .. }))
    }
}

/// Who delivers a queued entry, until when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    node: String,
    until: i64,
}

pub struct Queue {
    store: Arc<Store>,
    wake: tokio::sync::Notify,
    /// This process among the nodes sharing the store (random).
    node: String,
}

impl Queue {
    pub fn open(store: Arc<Store>) -> Result<Self, MtaError> {
        store.provision_account(SYSTEM_ACCOUNT)?;
        Ok(Self {
            store,
            wake: tokio::sync::Notify::new(),
            node: BlobId::random().to_string(),
        })
    }

    /// Durably queues a message for remote recipients; the queue runner is woken.
    pub fn enqueue(
        &self,
        from: Option<&Address>,
        env_id: Option<String>,
        ret_full: bool,
        recipients: Vec<(Address, DsnRequest)>,
        message: &[u8],
    ) -> Result<u64, MtaError> {
        let (id, batch) = self.entry_in_batch(from, env_id, ret_full, recipients, message)?;
        if let Err(e) = self.store.kv().commit(&batch) {
            self.discard(&batch);
            return Err(e.into());
        }
        self.wake();
        Ok(id)
    }

    /// A new entry and its sealed message as a batch of writes, for the caller to commit with
    /// its own (the local copies of the same message: all or none). Committed, the entry is
    /// queued ([`Queue::wake`] the runner then); not committed, hand it to [`Queue::discard`].
    pub fn entry_in_batch(
        &self,
        from: Option<&Address>,
        env_id: Option<String>,
        ret_full: bool,
        recipients: Vec<(Address, DsnRequest)>,
        message: &[u8],
    ) -> Result<(u64, Batch), MtaError> {
        let mut batch = Batch::new();
        let blob = self
            .store
            .put_blob_in(SYSTEM_ACCOUNT, message, &mut batch)?;
        // An id taken and never used leaves a gap, nothing else.
        let id = match self.store.next_counter("queue", 1) {
            Ok(id) => id,
            Err(e) => {
                self.store.discard_blob(blob);
                return Err(e.into());
            }
        };
        let now = mshub_store::now();
        let entry = QueuedMessage {
            id,
            blob,
            size: message.len() as u64,
            from: from.cloned(),
            env_id,
            ret_full,
            recipients: recipients
                .into_iter()
                .map(|(address, dsn)| QueuedRecipient {
                    address,
                    dsn,
                    state: RecipientState::Pending { last_error: None },
                })
                .collect(),
            created: now,
            attempts: 0,
            next_attempt: now,
            delay_notified: false,
        };
        batch.put(
            QUEUE,
            entry.id.to_be_bytes(),
            serde_json::to_vec(&entry).expect("serialisable"),
        );
        Ok((id, batch))
    }

    /// Forgets an entry from [`Queue::entry_in_batch`] whose batch was not committed.
    pub fn discard(&self, batch: &Batch) {
        for w in batch.writes.iter().filter(|w| w.tree == QUEUE) {
            if let Some(entry) = w
                .value
                .as_deref()
                .and_then(|v| serde_json::from_slice::<QueuedMessage>(v).ok())
            {
                self.store.discard_blob(entry.blob);
            }
        }
    }

    /// Tells the runner that an entry was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn save(&self, entry: &QueuedMessage) -> Result<(), MtaError> {
        let mut batch = Batch::new();
        batch.put(
            QUEUE,
            entry.id.to_be_bytes(),
            serde_json::to_vec(entry).expect("serialisable"),
        );
        let _ = self.store.kv().commit(&batch)?;
        Ok(())
    }

    /// Takes (or extends) the delivery lease of entry `id` for `secs` from `now`, unless another
    /// node holds one that has not expired. `true`: this node may deliver the entry (re-read
    /// it with [`Queue::get`] first: another node may have finished it meanwhile).
    pub fn lease(&self, id: u64, now: i64, secs: u64) -> Result<bool, MtaError> {
        let key = id.to_be_bytes();
        let raw = self.store.kv().get(LEASES, &key)?;
        if let Some(raw) = &raw {
            let held: Lease = serde_json::from_slice(raw).map_err(|e| {
                MtaError::Store(mshub_store::StoreError::Corrupt {
                    what: "queue lease".into(),
                    reason: e.to_string(),
                })
            })?;
            if held.node != self.node && held.until > now {
                return Ok(false);
            }
        }
        let lease = Lease {
            node: self.node.clone(),
            until: now.saturating_add(secs as i64),
        };
        // Nodes racing for due entries skip the ones another is taking this instant
        // (PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED) rather than queue behind it.
        let mut batch = Batch::new().skipping_locked();
        batch.check(LEASES, key, raw);
        batch.put(
            LEASES,
            key,
            serde_json::to_vec(&lease).expect("serialisable"),
        );
        Ok(self.store.kv().commit(&batch)? == Commit::Done)
    }

    /// Gives the lease of entry `id` back (if this node holds it), for the next due attempt.
    pub fn release(&self, id: u64) -> Result<(), MtaError> {
        let key = id.to_be_bytes();
        let Some(raw) = self.store.kv().get(LEASES, &key)? else {
            return Ok(());
        };
        if serde_json::from_slice::<Lease>(&raw).is_ok_and(|l| l.node == self.node) {
            let mut batch = Batch::new();
            batch.check(LEASES, key, Some(raw));
            batch.remove(LEASES, key);
            let _ = self.store.kv().commit(&batch)?;
        }
        Ok(())
    }

    /// The entry as stored now, if it is still queued.
    pub fn get(&self, id: u64) -> Result<Option<QueuedMessage>, MtaError> {
        self.store
            .kv()
            .get(QUEUE, &id.to_be_bytes())?
            .map(|v| {
                serde_json::from_slice(&v).map_err(|e| {
                    MtaError::Store(mshub_store::StoreError::Corrupt {
                        what: "queue entry".into(),
                        reason: e.to_string(),
                    })
                })
            })
            .transpose()
    }

    /// Removes a finished entry, its lease and its blob.
    pub fn remove(&self, entry: &QueuedMessage) -> Result<(), MtaError> {
        let mut batch = Batch::new();
        batch.remove(LEASES, entry.id.to_be_bytes());
        batch.remove(QUEUE, entry.id.to_be_bytes());
        let _ = self.store.kv().commit(&batch)?;
        self.store.delete_blob(entry.blob)?;
        Ok(())
    }

    pub fn message(&self, entry: &QueuedMessage) -> Result<Vec<u8>, MtaError> {
        Ok(self.store.read_blob(SYSTEM_ACCOUNT, entry.blob)?)
    }

    /// Every queued message, oldest first.
    pub fn list(&self) -> Result<Vec<QueuedMessage>, MtaError> {
        self.store
            .kv()
            .scan(QUEUE, &[], None, None)?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v).map_err(|e| {
                    MtaError::Store(mshub_store::StoreError::Corrupt {
                        what: "queue entry".into(),
                        reason: e.to_string(),
                    })
                })
            })
            .collect()
    }

    /// Waits until something is enqueued or `timeout` passes.
    pub async fn wait(&self, timeout: std::time::Duration) {
        let _ = tokio::time::timeout(timeout, self.wake.notified()).await;
    }
}

/// Exponential back-off: `initial`, 2×, 4×, … capped at `max` (seconds).
pub fn next_delay(attempts: u32, initial: u64, max: u64) -> u64 {
    let factor = 1u64
        .checked_shl(attempts.saturating_sub(1).min(30))
        .unwrap_or(u64::MAX);
    initial.saturating_mul(factor).min(max).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        let delays: Vec<u64> = (1..=8).map(|a| next_delay(a, 60, 3600)).collect();
        assert_eq!(delays, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(next_delay(1000, 60, 3600), 3600);
    }
}
