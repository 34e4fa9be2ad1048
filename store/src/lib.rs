//! # mshub-store
//!
//! The hub's embedded store. Start with [`Store::open`]: it opens the key-value backend
//! (sled by default, behind the [`Backend`] trait), the blob directory, and the keyring that
//! seals every blob to its owner's OpenPGP key under the operator's [`MasterKey`].
//!
//! On top of that the store keeps, per account, mailboxes with IMAP's bookkeeping
//! (UIDVALIDITY, UIDNEXT, MODSEQ: [`mailbox`]), publishes [`Change`] events after each commit,
//! and keeps the tamper-evident [`audit`] chain.
//!
//! Invariants:
//! - a call that returns `Ok` after writing has made the write durable (fsync'd);
//! - no plaintext of a message or document is written to the data directory;
//! - events are published after the commit they describe.

pub mod audit;
pub mod backend;
pub mod blob;
mod error;
pub mod events;
mod keyring;
pub mod mailbox;
mod sled_backend;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use audit::{AuditEvent, AuditRecord, AuditReport};
pub use backend::{Backend, Batch, Commit, Tree};
pub use blob::{BlobId, BlobStore, FsBlobStore};
pub use error::{Result, StoreError};
pub use events::{Change, ChangeKind, Events};
pub use keyring::MasterKey;
pub use mailbox::{
    Flag, FlagOp, Mailbox, MailboxId, MessageMeta, ModSeq, SpecialUse, Uid, UidValidity,
};
pub use sled_backend::SledBackend;

use keyring::Keyring;

/// The owner of mailboxes, keys and blobs. The directory gives each account one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub u64);

impl AccountId {
    /// Big-endian, so that keys sort by id.
    pub fn to_key(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

const COUNTERS: Tree = Tree("counter");
/// Bounded so that a bug that makes a check always fail surfaces as an error, not a hang.
const MAX_ATTEMPTS: u32 = 1000;

pub struct Store {
    kv: Arc<dyn Backend>,
    blobs: Arc<dyn BlobStore>,
    keyring: Keyring,
    events: Events,
    dir: PathBuf,
}

impl Store {
    /// Opens the embedded store in `dir` (created if missing): `dir/kv` for sled, `dir/blobs`
    /// for sealed blobs.
    pub fn open(dir: &Path, master: MasterKey) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let kv: Arc<dyn Backend> = Arc::new(SledBackend::open(&dir.join("kv"))?);
        let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(&dir.join("blobs"))?);
        Self::with_backends(dir, kv, blobs, master)
    }

    /// Assembles a store from any backends (the scale-out path, and tests).
    pub fn with_backends(
        dir: &Path,
        kv: Arc<dyn Backend>,
        blobs: Arc<dyn BlobStore>,
        master: MasterKey,
    ) -> Result<Self> {
        let keyring = Keyring::load(kv.clone(), master)?;
        Ok(Self {
            kv,
            blobs,
            keyring,
            events: Events::new(),
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The raw key-value backend, for the crates that keep their own records (the directory).
    pub fn kv(&self) -> &dyn Backend {
        &*self.kv
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Prepares an account's storage: its key pair and its special-use mailboxes. Idempotent.
    pub fn provision_account(&self, account: AccountId) -> Result<()> {
        self.keyring.ensure_account_key(account)?;
        self.ensure_default_mailboxes(account)
    }

    /// Seals `plain` to the owner's key and stores it durably.
    pub fn put_blob(&self, owner: AccountId, plain: &[u8]) -> Result<BlobId> {
        let sealed = self.keyring.seal(owner, plain)?;
        let id = BlobId::random();
        self.blobs.put(id, &sealed)?;
        Ok(id)
    }

    /// Reads and opens a blob of `owner`.
    pub fn read_blob(&self, owner: AccountId, id: BlobId) -> Result<Vec<u8>> {
        let sealed = self.blobs.get(id)?;
        self.keyring.open(owner, &sealed)
    }

    pub fn delete_blob(&self, id: BlobId) -> Result<()> {
        self.blobs.delete(id)
    }

    /// Copies a sealed blob as is, under a new id (same owner: no decryption needed).
    pub(crate) fn duplicate_blob(&self, id: BlobId) -> Result<BlobId> {
        let sealed = self.blobs.get(id)?;
        let copy = BlobId::random();
        self.blobs.put(copy, &sealed)?;
        Ok(copy)
    }

    /// The next value of a named counter, at least `floor`. Durable and never repeated.
    pub fn next_counter(&self, name: &str, floor: u64) -> Result<u64> {
        self.retry(|| {
            let raw = self.kv.get(COUNTERS, name.as_bytes())?;
            let current =
                match &raw {
                    Some(v) => u64::from_be_bytes(v.as_slice().try_into().map_err(|_| {
                        StoreError::corrupt(format!("counter {name}"), "not 8 bytes")
                    })?),
                    None => 0,
                };
            let next = (current + 1).max(floor);
            let mut batch = Batch::new();
            batch.check(COUNTERS, name.as_bytes(), raw);
            batch.put(COUNTERS, name.as_bytes(), next.to_be_bytes());
            Ok((batch, next))
        })
    }

    /// Runs a read-modify-write until its batch commits without conflict.
    pub fn retry<T>(&self, mut attempt: impl FnMut() -> Result<(Batch, T)>) -> Result<T> {
        for _ in 0..MAX_ATTEMPTS {
            let (batch, value) = attempt()?;
            if self.kv.commit(&batch)? == Commit::Done {
                return Ok(value);
            }
            std::thread::yield_now();
        }
        Err(StoreError::Contention(MAX_ATTEMPTS))
    }
}

/// Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records serialise")
}
