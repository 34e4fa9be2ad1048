//! # mshub-store
//!
//! The hub's embedded store. Start with [`Store::open`]: it opens the key-value backend
//! (sled by default, behind the [`Backend`] trait), the blob directory, and the keyring that
//! seals every blob to its owner's OpenPGP key under the operator's [`MasterKey`]. Sealed blobs
//! may live in an S3-compatible bucket instead ([`S3BlobStore`], [`Store::open_with_blobs`]).
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
pub mod backup;
pub mod blob;
mod error;
pub mod events;
mod filing;
mod format;
mod hub_keys;
mod keyring;
mod lease;
pub mod mailbox;
mod pg_backend;
mod plain_cache;
mod purge;
mod s3_blobs;
mod sled_backend;
pub mod space;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use audit::{AuditEvent, AuditRecord, AuditReport};
pub use backend::{Applied, Backend, Batch, Commit, Health, SyncTicket, Tree};
pub use blob::{BlobId, BlobStore, FsBlobStore};
pub use error::{Result, StoreError};
pub use events::{Change, ChangeFeed, ChangeKind, Events};
pub use filing::FilingOutcome;
pub use format::FORMAT_VERSION;
pub use hub_keys::{INDEX_TAG_LEN, SEALED_FIELD};
pub use keyring::MasterKey;
pub use mailbox::{
    Flag, FlagCounts, FlagOp, Mailbox, MailboxId, MessageMeta, ModSeq, SpecialUse, Uid, UidValidity,
};
pub use pg_backend::{PgBackend, DEFAULT_POOL_SIZE as PG_DEFAULT_POOL_SIZE};
pub use purge::PurgeReport;
pub use s3_blobs::{S3BlobStore, S3Options};
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

/// The hub's own account: owns what is sealed but belongs to no user (queued mail, the
/// directory's identity records).
pub const SYSTEM_ACCOUNT: AccountId = AccountId(0);

const COUNTERS: Tree = Tree("counter");
/// blob ‖ kind → sealed data derived from the blob ([`Store::put_derived`]).
const DERIVED: Tree = Tree("derived");
const INLINE_BLOBS: Tree = Tree("blob");
/// Sealed blobs up to this size are kept in the key-value store (see [`Store::place_sealed`]).
pub const INLINE_BLOB_MAX: usize = 64 * 1024;

/// A sealed blob placed but not yet referenced: an inline one rides in the referencing batch.
pub(crate) struct SealedBlob {
    pub(crate) id: BlobId,
    pub(crate) inline: Option<Vec<u8>>,
}

impl SealedBlob {
    pub(crate) fn add_to(&self, batch: &mut Batch) {
        if let Some(bytes) = &self.inline {
            batch.put(INLINE_BLOBS, self.id.as_bytes().to_vec(), bytes.clone());
        }
    }

    /// Removes the inline copy of `id` (if it has one) in `batch`.
    pub(crate) fn remove_from(id: BlobId, batch: &mut Batch) {
        batch.remove(INLINE_BLOBS, id.as_bytes().to_vec());
    }
}
/// Bounded so that a bug that makes a check always fail surfaces as an error, not a hang.
pub(crate) const MAX_ATTEMPTS: u32 = 1000;
/// Serialisation lanes of [`Store::retry`] (a striped lock).
const LANES: usize = 64;
const COUNTER_LANE: u64 = 0x636f_756e_7465_7273;
pub(crate) const AUDIT_LANE: u64 = 0x6175_6469_7400_0000;

pub struct Store {
    kv: Arc<dyn Backend>,
    blobs: Arc<dyn BlobStore>,
    keyring: Keyring,
    events: Events,
    dir: PathBuf,
    lanes: [std::sync::Mutex<()>; LANES],
    plain: plain_cache::PlainCache,
    hub_keys: hub_keys::HubKeys,
    resumed: mailbox::Resumed,
}

/// Memory kept for recently used blobs, opened ([`plain_cache`]).
pub const PLAIN_CACHE_BYTES: usize = 64 * 1024 * 1024;

impl Store {
    /// Opens the embedded store in `dir` (created if missing): `dir/kv` for sled, `dir/blobs`
    /// for sealed blobs.
    pub fn open(dir: &Path, master: MasterKey) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let kv: Arc<dyn Backend> = Arc::new(SledBackend::open(&dir.join("kv"))?);
        let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(&dir.join("blobs"))?);
        Self::with_backends(dir, kv, blobs, master)
    }

    /// Opens the store in `dir` like [`Store::open`], with its sealed blobs in `blobs` (e.g. an
    /// [`S3BlobStore`]) instead of `dir/blobs`.
    pub fn open_with_blobs(
        dir: &Path,
        blobs: Arc<dyn BlobStore>,
        master: MasterKey,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let kv: Arc<dyn Backend> = Arc::new(SledBackend::open(&dir.join("kv"))?);
        Self::with_backends(dir, kv, blobs, master)
    }

    /// Assembles a store from any backends (the scale-out path, and tests).
    pub fn with_backends(
        dir: &Path,
        kv: Arc<dyn Backend>,
        blobs: Arc<dyn BlobStore>,
        master: MasterKey,
    ) -> Result<Self> {
        format::refuse_newer(&*kv)?;
        let keyring = Keyring::load(kv.clone(), master)?;
        let events = match kv.change_feed() {
            Some(feed) => Events::across_nodes(feed)?,
            None => Events::new(),
        };
        let store = Self {
            kv,
            blobs,
            keyring,
            events,
            dir: dir.to_path_buf(),
            lanes: std::array::from_fn(|_| std::sync::Mutex::new(())),
            plain: plain_cache::PlainCache::new(PLAIN_CACHE_BYTES),
            hub_keys: hub_keys::HubKeys::default(),
            resumed: mailbox::Resumed::default(),
        };
        store.upgrade_format()?;
        Ok(store)
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

    /// Whether the store's writes reach the disk (for a readiness check): while they fail,
    /// every change is refused, and nothing of it is kept.
    pub fn health(&self) -> Health {
        self.kv.health()
    }

    /// [`Store::health`] is [`Health::Healthy`].
    pub fn healthy(&self) -> bool {
        self.kv.health() == Health::Healthy
    }

    /// Makes everything applied durable before the process stops (acknowledged writes already
    /// are). The error says what could not be written, to be logged.
    pub fn close(&self) -> Result<()> {
        self.kv.close()
    }

    /// Prepares an account's storage: its key pair and its special-use mailboxes. Idempotent.
    pub fn provision_account(&self, account: AccountId) -> Result<()> {
        self.keyring.ensure_account_key(account)?;
        self.ensure_default_mailboxes(account)
    }

    /// Seals a small record to `owner`'s key, for callers that keep it in their own records.
    pub fn seal(&self, owner: AccountId, plain: &[u8]) -> Result<Vec<u8>> {
        self.keyring.seal(owner, plain)
    }

    /// Opens what [`Store::seal`] sealed for `owner`.
    pub fn open_sealed(&self, owner: AccountId, sealed: &[u8]) -> Result<Vec<u8>> {
        self.keyring.open(owner, sealed)
    }

    /// Seals `plain` to the owner's key and stores it durably.
    pub fn put_blob(&self, owner: AccountId, plain: &[u8]) -> Result<BlobId> {
        let sealed = self.place_sealed(self.keyring.seal(owner, plain)?)?;
        if sealed.inline.is_some() {
            let mut batch = Batch::new();
            sealed.add_to(&mut batch);
            let _ = self.kv.commit(&batch)?;
        }
        Ok(sealed.id)
    }

    /// Seals `plain` to the owner's key for a record the caller commits in `batch`: a small
    /// blob rides in that batch (durable exactly with its record, never orphaned); a large one
    /// is written to the blob store now.
    pub fn put_blob_in(&self, owner: AccountId, plain: &[u8], batch: &mut Batch) -> Result<BlobId> {
        let sealed = self.place_sealed(self.keyring.seal(owner, plain)?)?;
        sealed.add_to(batch);
        Ok(sealed.id)
    }

    /// Forgets a blob placed by [`Store::put_blob_in`] whose batch was never committed: a
    /// large one's object is deleted (best effort: an unreferenced object is only litter).
    pub fn discard_blob(&self, id: BlobId) {
        self.plain.remove(id);
        let _ = counted_blob_op("delete", self.blobs.delete(id));
    }

    /// Small sealed blobs go into the key-value store, in the same batch as the record that
    /// references them: one (group-committed) flush makes both durable. Larger ones are
    /// written, fsync'd, to the blob store now.
    pub(crate) fn place_sealed(&self, sealed: Vec<u8>) -> Result<SealedBlob> {
        let id = BlobId::random();
        if sealed.len() <= INLINE_BLOB_MAX {
            return Ok(SealedBlob {
                id,
                inline: Some(sealed),
            });
        }
        counted_blob_op("put", self.blobs.put(id, &sealed))?;
        Ok(SealedBlob { id, inline: None })
    }

    /// The sealed bytes of a blob, wherever they live.
    pub(crate) fn sealed_bytes(&self, id: BlobId) -> Result<Vec<u8>> {
        match self.kv.get(INLINE_BLOBS, id.as_bytes())? {
            Some(bytes) => Ok(bytes),
            None => counted_blob_op("get", self.blobs.get(id)),
        }
    }

    /// Reads and opens a blob of `owner` (from memory when it was opened or written lately).
    pub fn read_blob(&self, owner: AccountId, id: BlobId) -> Result<Vec<u8>> {
        if let Some(plain) = self.plain.get(owner, id) {
            return Ok(plain.to_vec());
        }
        let plain = self.keyring.open(owner, &self.sealed_bytes(id)?)?;
        self.plain.put(owner, id, &plain);
        Ok(plain)
    }

    /// Keeps data derived from a blob (e.g. IMAP's BODYSTRUCTURE of a large message, so that
    /// it is not parsed again), sealed to `owner` like the blob, and removed with it. A cache:
    /// written without waiting for the disk.
    pub fn put_derived(
        &self,
        owner: AccountId,
        blob: BlobId,
        kind: &str,
        plain: &[u8],
    ) -> Result<()> {
        let mut key = blob.as_bytes().to_vec();
        key.extend_from_slice(kind.as_bytes());
        let mut batch = Batch::new();
        batch.put(DERIVED, key, self.keyring.seal(owner, plain)?);
        let _ = self.kv.apply(&batch)?;
        Ok(())
    }

    /// What [`Store::put_derived`] kept, if anything.
    pub fn derived(&self, owner: AccountId, blob: BlobId, kind: &str) -> Result<Option<Vec<u8>>> {
        let mut key = blob.as_bytes().to_vec();
        key.extend_from_slice(kind.as_bytes());
        self.kv
            .get(DERIVED, &key)?
            .map(|sealed| self.keyring.open(owner, &sealed))
            .transpose()
    }

    fn forget_derived(&self, id: BlobId) -> Result<()> {
        let entries = self.kv.scan(DERIVED, id.as_bytes(), None, None)?;
        if entries.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        for (k, _) in entries {
            batch.remove(DERIVED, k);
        }
        let _ = self.kv.apply(&batch)?;
        Ok(())
    }

    pub fn delete_blob(&self, id: BlobId) -> Result<()> {
        self.plain.remove(id);
        self.forget_derived(id)?;
        let mut batch = Batch::new();
        batch.remove(INLINE_BLOBS, id.as_bytes().to_vec());
        let _ = self.kv.commit(&batch)?;
        self.blobs.delete(id)
    }

    /// Removes blobs whose inline copies a committed batch already removed (see
    /// [`SealedBlob::remove_from`]): what is left is their files, if any.
    pub(crate) fn delete_blob_files(&self, ids: impl IntoIterator<Item = BlobId>) -> Result<()> {
        for id in ids {
            self.plain.remove(id);
            self.forget_derived(id)?;
            self.blobs.delete(id)?;
        }
        Ok(())
    }

    /// Reserves `count` consecutive values of a named counter at once and returns the first:
    /// bulk creation (a roster import) pays one durable write for many ids.
    pub fn reserve_counter(&self, name: &str, count: u64) -> Result<u64> {
        let count = count.max(1);
        let lane = name
            .bytes()
            .fold(COUNTER_LANE, |h, b| h.rotate_left(5) ^ u64::from(b));
        self.retry(lane, || {
            let raw = self.kv.get(COUNTERS, name.as_bytes())?;
            let current =
                match &raw {
                    Some(v) => u64::from_be_bytes(v.as_slice().try_into().map_err(|_| {
                        StoreError::corrupt(format!("counter {name}"), "not 8 bytes")
                    })?),
                    None => 0,
                };
            let mut batch = Batch::new();
            batch.check(COUNTERS, name.as_bytes(), raw);
            batch.put(COUNTERS, name.as_bytes(), (current + count).to_be_bytes());
            Ok((batch, current + 1))
        })
    }

    /// Whether the account has its key pair yet (spaces created from a roster get theirs on
    /// first need).
    pub fn has_account_key(&self, account: AccountId) -> Result<bool> {
        self.keyring.has_key(account)
    }

    /// The next value of a named counter, at least `floor`. Durable and never repeated.
    pub fn next_counter(&self, name: &str, floor: u64) -> Result<u64> {
        let lane = name
            .bytes()
            .fold(COUNTER_LANE, |h, b| h.rotate_left(5) ^ u64::from(b));
        self.retry(lane, || {
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

    /// Runs a read-modify-write until its batch applies without conflict, then waits until it
    /// is durable. Writers of the same `lane` (a mailbox id, a counter…) are serialised in this
    /// process while they read and apply, so they do not spin on each other's compare-and-swap;
    /// the wait for the disk happens outside the lock, where concurrent writers share a flush.
    /// The compare-and-swap still guards against other processes or nodes.
    pub fn retry<T>(
        &self,
        lane: u64,
        mut attempt: impl FnMut() -> Result<(Batch, T)>,
    ) -> Result<T> {
        let (ticket, value) = {
            let _serialised = self.lanes[(lane % LANES as u64) as usize]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let mut applied = None;
            for _ in 0..MAX_ATTEMPTS {
                let (batch, value) = attempt()?;
                if let Applied::Done(ticket) = self.kv.apply(&batch)? {
                    applied = Some((ticket, value));
                    break;
                }
            }
            applied.ok_or(StoreError::Contention(MAX_ATTEMPTS))?
        };
        let started = std::time::Instant::now();
        let synced = self.kv.sync(ticket);
        COMMITS.observe(
            &[if synced.is_ok() { "ok" } else { "failed" }],
            started.elapsed(),
        );
        synced?;
        Ok(value)
    }
}

/// How long changes wait to be durable (the group commit's flush), by outcome.
static COMMITS: mshub_metrics::Family = mshub_metrics::Family::histogram(
    "mshub_store_commit_seconds",
    "Time from a change being applied to its being durable (flushed and fsync'd), by result.",
    &["result"],
);

/// Blob store operations that failed (a full disk, an unreachable bucket).
static BLOB_ERRORS: mshub_metrics::Family = mshub_metrics::Family::counter(
    "mshub_blob_errors_total",
    "Failed blob store operations (put, get), e.g. a full disk or an unreachable bucket.",
    &["op"],
);

/// `result`, with a failure counted in [`BLOB_ERRORS`] (a blob that does not exist is no
/// failure of the blob store).
fn counted_blob_op<T>(op: &str, result: Result<T>) -> Result<T> {
    if let Err(e) = &result {
        if !matches!(e, StoreError::NoSuchBlob(_)) {
            BLOB_ERRORS.inc(&[op]);
        }
    }
    result
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
