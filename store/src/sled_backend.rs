//! The embedded default backend: one sled database in the data directory.

use std::path::Path;
use std::sync::{Condvar, Mutex};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::backend::{Backend, Batch, Commit, Entries, Tree};
use crate::{Result, StoreError};

pub struct SledBackend {
    db: sled::Db,
    gate: FlushGate,
}

/// Group commit: a committer waits until a flush that started after its batch was applied has
/// finished. One flush (one fsync of sled's log) then serves every batch applied before it, so
/// concurrent sessions share fsyncs instead of queueing one each.
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
            let target = st.applied;
            drop(st);
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
        Ok(Self {
            db,
            gate: FlushGate::default(),
        })
    }

    fn tree(&self, tree: Tree) -> Result<sled::Tree> {
        self.db.open_tree(tree.0).map_err(backend)
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl Backend for SledBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree(tree)?
            .get(key)
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
        let t = self.tree(tree)?;
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match after {
            Some(after) => {
                let start = std::ops::Bound::Excluded(after.to_vec());
                Box::new(
                    t.range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded))
                        .take_while(move |r| match r {
                            Ok((k, _)) => k.starts_with(prefix),
                            Err(_) => true,
                        }),
                )
            }
            None => Box::new(t.scan_prefix(prefix)),
        };
        let mut out = Vec::new();
        for item in iter {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let (k, v) = item.map_err(backend)?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn commit(&self, batch: &Batch) -> Result<Commit> {
        if batch.checks.is_empty() && batch.writes.is_empty() {
            // Nothing to check or write (a STORE or EXPUNGE that changes nothing): sled panics
            // on a transaction over zero trees, and there is nothing to make durable.
            return Ok(Commit::Done);
        }
        let mut names: Vec<Tree> = batch
            .checks
            .iter()
            .map(|c| c.tree)
            .chain(batch.writes.iter().map(|w| w.tree))
            .collect();
        names.sort();
        names.dedup();
        let trees = names
            .iter()
            .map(|n| self.tree(*n))
            .collect::<Result<Vec<_>>>()?;
        let index = |t: Tree| names.binary_search(&t).unwrap_or(0);

        let outcome = trees[..].transaction(|tx| {
            for check in &batch.checks {
                let current = tx[index(check.tree)].get(&check.key)?;
                if current.as_deref() != check.expected.as_deref() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
            }
            for write in &batch.writes {
                let t = &tx[index(write.tree)];
                match &write.value {
                    Some(v) => {
                        t.insert(write.key.as_slice(), v.as_slice())?;
                    }
                    None => {
                        t.remove(write.key.as_slice())?;
                    }
                }
            }
            Ok(())
        });
        match outcome {
            Ok(()) => {
                // Durability: the batch is on disk before the caller may acknowledge anything.
                let seq = self.gate.applied();
                self.gate
                    .wait_durable(seq, || self.db.flush().map(|_| ()).map_err(backend))?;
                Ok(Commit::Done)
            }
            Err(TransactionError::Abort(())) => Ok(Commit::Conflict),
            Err(TransactionError::Storage(e)) => Err(backend(e)),
        }
    }
}
