//! The key-value backend trait. The embedded default is sled ([`crate::SledBackend`]); a
//! PostgreSQL backend implements the same trait for the scale-out path. No backend type leaks
//! through this interface: keys and values are bytes, trees are names.
//!
//! Implementations: [`crate::SledBackend`] (embedded, one process) and [`crate::PgBackend`]
//! (PostgreSQL, several nodes); `store/tests/conformance.rs` runs one suite on both.
//!
//! Invariant: a [`Backend::commit`] that returns `Ok` has been flushed to stable storage; so has
//! an [`Backend::apply`] once the [`Backend::sync`] of its ticket returned `Ok`.

use std::sync::Arc;

use crate::events::ChangeFeed;
use crate::Result;

/// A named keyspace (a sled tree, a PostgreSQL table partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tree(pub &'static str);

/// One write of a [`Batch`]: `Some` inserts or replaces, `None` removes.
#[derive(Debug, Clone)]
pub struct Write {
    pub tree: Tree,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A precondition of a [`Batch`]: the key must currently hold exactly `expected`
/// (`None`: must be absent). This is the one concurrency primitive of the store: every
/// read-modify-write (UID allocation, the audit head, counters) is a compare-and-swap.
#[derive(Debug, Clone)]
pub struct Check {
    pub tree: Tree,
    pub key: Vec<u8>,
    pub expected: Option<Vec<u8>>,
}

/// Writes applied atomically, all or none, if all checks hold.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub checks: Vec<Check>,
    pub writes: Vec<Write>,
    /// A checked key that another writer is changing right now counts as a failed check
    /// ([`Commit::Conflict`]) instead of being waited for: for work several nodes race to
    /// claim (the outbound queue's leases), where the loser has other work to take. On
    /// PostgreSQL, `SELECT … FOR UPDATE SKIP LOCKED`; a single-process backend, whose writers
    /// never wait on one another's rows, ignores it.
    pub skip_locked: bool,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// See [`Batch::skip_locked`].
    pub fn skipping_locked(mut self) -> Self {
        self.skip_locked = true;
        self
    }

    pub fn check(&mut self, tree: Tree, key: impl Into<Vec<u8>>, expected: Option<Vec<u8>>) {
        self.checks.push(Check {
            tree,
            key: key.into(),
            expected,
        });
    }

    pub fn put(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.writes.push(Write {
            tree,
            key: key.into(),
            value: Some(value.into()),
        });
    }

    pub fn remove(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.writes.push(Write {
            tree,
            key: key.into(),
            value: None,
        });
    }
}

/// What became of a [`Batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Commit {
    /// Applied and durable.
    Done,
    /// A check failed: nothing was written; re-read and try again.
    Conflict,
}

/// What became of an applied batch: visible to readers at once, durable after
/// [`Backend::sync`] of the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Applied {
    Done(SyncTicket),
    Conflict,
}

/// Names a point in the backend's write history; syncing it makes everything before it durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SyncTicket(pub u64);

/// Whether a backend's writes reach stable storage right now (for a readiness check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Writes fail since `since` (the disk is full, an I/O error): every change is refused
    /// until one succeeds again. `reason` is the I/O error, never data.
    WritesFailing {
        since: std::time::SystemTime,
        reason: String,
    },
}

/// What [`Backend::snapshot`] hands each entry to: (tree, key, value).
pub type Visit<'a> = dyn FnMut(&str, &[u8], &[u8]) -> Result<()> + 'a;

/// Key-value pairs in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

pub trait Backend: Send + Sync + 'static {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The values of several keys of one tree, in the order of `keys` (one round trip where the
    /// backend is remote).
    fn get_many(&self, tree: Tree, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(tree, k)).collect()
    }

    /// Entries whose key starts with `prefix`, in key order, strictly after `after` if given,
    /// at most `limit` of them if given.
    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: Option<usize>,
    ) -> Result<Entries>;

    /// Applies the batch atomically if its checks hold, without waiting for the disk. Callers
    /// that serialise their writers apply under their lock and sync after releasing it, so that
    /// concurrent writers share one flush (group commit).
    fn apply(&self, batch: &Batch) -> Result<Applied>;

    /// Returns once everything applied up to `ticket` is on stable storage.
    fn sync(&self, ticket: SyncTicket) -> Result<()>;

    /// Applies the batch atomically if its checks hold, and makes it durable before returning.
    fn commit(&self, batch: &Batch) -> Result<Commit> {
        match self.apply(batch)? {
            Applied::Done(ticket) => {
                self.sync(ticket)?;
                Ok(Commit::Done)
            }
            Applied::Conflict => Ok(Commit::Conflict),
        }
    }

    /// Every tree holding at least one entry, by name (to copy a whole store).
    fn tree_names(&self) -> Result<Vec<String>>;

    /// Whether writes reach stable storage (the default: the backend does not know, and
    /// reports each failure through its calls only).
    fn health(&self) -> Health {
        Health::Healthy
    }

    /// Whether an applied batch is durable at once (its `sync` has nothing to wait for), so that
    /// readers never see a write that could still be lost. `false` (the default) for a backend
    /// that shows applied writes before they are durable.
    fn applied_is_durable(&self) -> bool {
        false
    }

    /// How many times writes applied (visible to readers) were taken back because they could
    /// not be made durable. A backend whose applied writes are always durable keeps 0 (the
    /// default). The mailboxes resume their UIDs and MODSEQs above their reservation each
    /// time it changes ([`crate::mailbox`]).
    fn write_failures(&self) -> u64 {
        0
    }

    /// Makes everything applied durable, for a clean stop. The error says what could not be
    /// written. The default: nothing to do (every applied batch is durable, or is made so by
    /// `sync`).
    fn close(&self) -> Result<()> {
        Ok(())
    }

    /// Every entry of every tree as `(tree, key, value)`, as of one moment: no batch is
    /// applied while `visit` runs, so what it sees is what some moment's readers saw (a
    /// consistent copy, for a backup). `during` runs after the entries, still within that
    /// moment (the blob files are copied there). `None` (the default): this backend cannot
    /// (PostgreSQL: its own tools, `pg_dump`, take consistent copies).
    fn snapshot(
        &self,
        _visit: &mut Visit<'_>,
        _during: &mut dyn FnMut() -> Result<()>,
    ) -> Option<Result<()>> {
        None
    }

    /// How change events reach the other nodes sharing this backend; `None` (the default)
    /// for a backend only one process can open, where events stay in the process.
    fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
        None
    }
}
