//! The embedded default backend: one sled database in the data directory.
//!
//! sled is a single-process database (it locks its files), so the compare-and-swap checks of a
//! batch are evaluated under one writer lock and the writes applied as one sled batch, which
//! sled makes atomic on disk. All trees share one sled keyspace, each key prefixed by its tree's
//! name and a NUL, so that a batch spanning trees is still one atomic sled batch (sled's own
//! multi-tree transactions cost several times more per write).

use std::path::Path;
use std::sync::{Condvar, Mutex};

use crate::backend::{Applied, Backend, Batch, Entries, SyncTicket, Tree};
use crate::{Result, StoreError};

pub struct SledBackend {
    db: sled::Db,
    data: sled::Tree,
    writer: Mutex<()>,
    gate: FlushGate,
}

/// Group commit: a committer waits until a flush that started after its batch was applied has
/// finished. One flush (one fsync of sled's log) then serves every batch applied before it, so
/// concurrent sessions share fsyncs instead of queueing one each.
/// How long a flush leader waits for concurrent writers to join when others are writing.
const COMMIT_DELAY: std::time::Duration = std::time::Duration::from_micros(300);

#[derive(Default)]
struct FlushGate {
    state: Mutex<GateState>,
    done: Condvar,
}

#[derive(Default)]
struct GateState {
    /// Batches applied so far (in memory).
    applied: u64,
    /// Batches known to be on disk.
    durable: u64,
    flushing: bool,
}

impl FlushGate {
    fn applied(&self) -> u64 {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.applied += 1;
        st.applied
    }

    fn wait_durable(&self, seq: u64, flush: impl Fn() -> Result<()>) -> Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if st.durable >= seq {
                return Ok(());
            }
            if st.flushing {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead a flush covering everything applied so far.
            st.flushing = true;
            let busy = st.applied > seq;
            drop(st);
            // When others are writing too, give them a moment to join this flush: the fsync
            // is fast on its own, but each flush costs sled a log write and several thread
            // hand-offs, so one flush for many batches is what saves CPU (PostgreSQL's
            // commit_delay, for the same reason).
            if busy {
                std::thread::sleep(COMMIT_DELAY);
            }
            let target = self.state.lock().unwrap_or_else(|p| p.into_inner()).applied;
            let outcome = flush();
            st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.flushing = false;
            if outcome.is_ok() {
                st.durable = st.durable.max(target);
            }
            self.done.notify_all();
            outcome?;
        }
    }
}

impl SledBackend {
    /// Opens (or creates) the database in `dir`. Fails with [`StoreError::InUse`] when another
    /// process holds it: sled takes an exclusive lock on its files.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            // The hub keeps its hot data in its own caches; 64 MiB of page cache is plenty and
            // keeps several test instances within a small machine.
            .cache_capacity(64 * 1024 * 1024)
            // Mail is write-heavy: favour write throughput over rewriting segments for space.
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    StoreError::InUse(dir.to_path_buf())
                }
                sled::Error::Io(io) if io.to_string().contains("lock") => {
                    StoreError::InUse(dir.to_path_buf())
                }
                other => StoreError::Backend(other.to_string()),
            })?;
        let data = db.open_tree("mshub").map_err(backend)?;
        Ok(Self {
            db,
            data,
            writer: Mutex::new(()),
            gate: FlushGate::default(),
        })
    }
}

/// `tree ‖ NUL ‖ key`.
fn full_key(tree: Tree, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(tree.0.len() + 1 + key.len());
    k.extend_from_slice(tree.0.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl Backend for SledBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .data
            .get(full_key(tree, key))
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: Option<usize>,
    ) -> Result<Entries> {
        let full_prefix = full_key(tree, prefix);
        let strip = tree.0.len() + 1;
        let start = match after {
            Some(after) => std::ops::Bound::Excluded(full_key(tree, after)),
            None => std::ops::Bound::Included(full_prefix.clone()),
        };
        let mut out = Vec::new();
        for item in self
            .data
            .range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded))
        {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let (k, v) = item.map_err(backend)?;
            if !k.starts_with(&full_prefix) {
                break;
            }
            out.push((k[strip..].to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn apply(&self, batch: &Batch) -> Result<Applied> {
        if batch.writes.is_empty() && batch.checks.is_empty() {
            return Ok(Applied::Done(SyncTicket(0)));
        }
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for check in &batch.checks {
            let current = self
                .data
                .get(full_key(check.tree, &check.key))
                .map_err(backend)?;
            if current.as_deref() != check.expected.as_deref() {
                return Ok(Applied::Conflict);
            }
        }
        let mut writes = sled::Batch::default();
        for w in &batch.writes {
            let k = full_key(w.tree, &w.key);
            match &w.value {
                Some(v) => writes.insert(k, v.as_slice()),
                None => writes.remove(k),
            }
        }
        self.data.apply_batch(writes).map_err(backend)?;
        Ok(Applied::Done(SyncTicket(self.gate.applied())))
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        // Keys are `tree ‖ NUL ‖ key`: read the first key of each tree, then skip past it.
        let mut names = Vec::new();
        let mut from = Vec::new();
        while let Some((k, _)) = self
            .data
            .range(from.clone()..)
            .next()
            .transpose()
            .map_err(backend)?
        {
            let end = k.iter().position(|&b| b == 0).unwrap_or(k.len());
            let name = String::from_utf8_lossy(&k[..end]).into_owned();
            from = k[..end].to_vec();
            from.push(1);
            names.push(name);
        }
        Ok(names)
    }

    fn sync(&self, ticket: SyncTicket) -> Result<()> {
        // Durability: the batch is on disk before the caller may acknowledge anything.
        self.gate
            .wait_durable(ticket.0, || self.db.flush().map(|_| ()).map_err(backend))
    }
}
