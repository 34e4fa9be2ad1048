//! The embedded default backend: one sled database in the data directory.
//!
//! sled is a single-process database (it locks its files), so the compare-and-swap checks of a
//! batch are evaluated under one writer lock. All trees share one sled keyspace, each key
//! prefixed by its tree's name and a NUL, so that a batch spanning trees is still one atomic
//! sled batch (sled's own multi-tree transactions cost several times more per write).
//!
//! Group apply: every sled batch costs two log-buffer writes whatever its size (sled rolls its
//! log buffer before and after the batch's manifest, and hands each write to its I/O threads),
//! so an applied batch first goes to an in-memory overlay, visible to every reader at once;
//! the next flush moves everything in the overlay to sled as ONE sled batch, then makes it
//! durable. Concurrent writers thus share both the sled batch and the fsync.
//!
//! Invariants:
//! - readers look at the overlay before sled, and an entry leaves the overlay only after sled
//!   holds it (or a later value): a reader never sees an older value than one already applied;
//! - a batch's writes enter the overlay together under the writer lock and reach sled in one
//!   atomic sled batch: after a crash a batch is wholly there or wholly absent;
//! - `sync(t)` returns after the sled batch holding batch `t` was flushed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Condvar, Mutex, RwLock};

use crate::backend::{Applied, Backend, Batch, Entries, SyncTicket, Tree};
use crate::{Result, StoreError};

pub struct SledBackend {
    db: sled::Db,
    data: sled::Tree,
    /// Applied writes not yet in sled; its write lock is the writer lock.
    overlay: RwLock<Overlay>,
    /// Held while the overlay moves to sled, so that moves happen one at a time, in order.
    mover: Mutex<()>,
    gate: FlushGate,
}

/// Writes applied but not yet moved to sled, by full key.
#[derive(Default)]
struct Overlay {
    pending: BTreeMap<Vec<u8>, Pending>,
    /// Batches applied so far; each pending entry remembers the last batch that wrote it.
    applied: u64,
    /// Bytes of keys and values in `pending`.
    bytes: usize,
}

/// Past this many bytes in the overlay, an apply moves it to sled at once (without waiting for
/// the disk): writes nobody syncs (caches, markers) do not pile up in memory.
const OVERLAY_MAX_BYTES: usize = 8 * 1024 * 1024;

fn entry_bytes(key: &[u8], value: &Option<Vec<u8>>) -> usize {
    key.len() + value.as_ref().map_or(0, Vec::len)
}

struct Pending {
    /// `None`: removed.
    value: Option<Vec<u8>>,
    batch: u64,
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
    fn applied(&self, seq: u64) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.applied = st.applied.max(seq);
    }

    /// Returns once batch `seq` is durable; `flush` makes durable everything applied when it
    /// starts and says up to which batch.
    fn wait_durable(&self, seq: u64, flush: impl Fn() -> Result<u64>) -> Result<()> {
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
            let outcome = flush();
            st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.flushing = false;
            if let Ok(covered) = outcome {
                st.durable = st.durable.max(covered);
            }
            self.done.notify_all();
            outcome?;
        }
    }
}

/// How long [`SledBackend::open`] waits for a lock that sled has not yet released.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether sled failed to open because another handle still holds the database's lock.
fn is_lock_held(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock"))
}

impl SledBackend {
    /// Opens (or creates) the database in `dir`. Fails with [`StoreError::InUse`] when another
    /// process holds it: sled takes an exclusive lock on its files.
    ///
    /// Sled releases its file lock from a background thread a moment after the last handle
    /// drops, so a database just closed by this process may still look held: the lock is
    /// tried again for up to [`LOCK_WAIT`] before the store is reported in use.
    pub fn open(dir: &Path) -> Result<Self> {
        let config = sled::Config::new()
            .path(dir)
            // The hub keeps its hot data in its own caches; 64 MiB of page cache is plenty and
            // keeps several test instances within a small machine.
            .cache_capacity(64 * 1024 * 1024)
            // Mail is write-heavy: favour write throughput over rewriting segments for space.
            .mode(sled::Mode::HighThroughput);
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(5);
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(e) if is_lock_held(&e) => {
                    if started.elapsed() >= LOCK_WAIT {
                        return Err(StoreError::InUse(dir.to_path_buf()));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                Err(other) => return Err(StoreError::Backend(other.to_string())),
            }
        };
        let data = db.open_tree("mshub").map_err(backend)?;
        Ok(Self {
            db,
            data,
            overlay: RwLock::new(Overlay::default()),
            mover: Mutex::new(()),
            gate: FlushGate::default(),
        })
    }

    fn overlay(&self) -> std::sync::RwLockReadGuard<'_, Overlay> {
        self.overlay.read().unwrap_or_else(|p| p.into_inner())
    }

    fn overlay_mut(&self) -> std::sync::RwLockWriteGuard<'_, Overlay> {
        self.overlay.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The current value of a full key: the overlay's if it has one, else sled's. The overlay
    /// is read first: an entry leaves it only once sled holds it.
    fn current(&self, full: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(p) = self.overlay().pending.get(full) {
            return Ok(p.value.clone());
        }
        Ok(self.data.get(full).map_err(backend)?.map(|v| v.to_vec()))
    }

    /// Moves everything in the overlay to sled in one sled batch and flushes it. Returns the
    /// last batch now durable.
    fn move_and_flush(&self) -> Result<u64> {
        let covered = self.move_to_sled()?;
        self.db.flush().map_err(backend)?;
        Ok(covered)
    }

    /// Moves everything in the overlay to sled in one sled batch (not yet flushed). Returns
    /// the last batch it covers.
    fn move_to_sled(&self) -> Result<u64> {
        let _one_mover = self.mover.lock().unwrap_or_else(|p| p.into_inner());
        let (writes, covered) = {
            let overlay = self.overlay();
            let writes: Vec<(Vec<u8>, Option<Vec<u8>>, u64)> = overlay
                .pending
                .iter()
                .map(|(k, p)| (k.clone(), p.value.clone(), p.batch))
                .collect();
            (writes, overlay.applied)
        };
        if !writes.is_empty() {
            let mut batch = sled::Batch::default();
            for (k, v, _) in &writes {
                match v {
                    Some(v) => batch.insert(k.as_slice(), v.as_slice()),
                    None => batch.remove(k.as_slice()),
                }
            }
            self.data.apply_batch(batch).map_err(backend)?;
            // Sled now holds these values: drop the entries no later batch rewrote.
            let mut overlay = self.overlay_mut();
            for (k, _, written_by) in writes {
                if overlay
                    .pending
                    .get(&k)
                    .is_some_and(|p| p.batch == written_by)
                {
                    if let Some(p) = overlay.pending.remove(&k) {
                        overlay.bytes -= entry_bytes(&k, &p.value);
                    }
                }
            }
        }
        Ok(covered)
    }
}

impl Drop for SledBackend {
    fn drop(&mut self) {
        // Applied but never synced writes are not promised durable; still, keep them.
        if let Err(e) = self.move_and_flush() {
            tracing::error!(error = %e, "could not write the last applied batches");
        }
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
        self.current(&full_key(tree, key))
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
        // From the prefix, or past `after` when that is further (an `after` sorting before the
        // prefix does not hide the prefix's keys).
        let start = match after.map(|a| full_key(tree, a)) {
            Some(after) if after >= full_prefix => std::ops::Bound::Excluded(after),
            _ => std::ops::Bound::Included(full_prefix.clone()),
        };
        // The overlay's entries in range first (it only shrinks once sled has them), then
        // sled's, merged in key order with the overlay's taking precedence.
        let pending: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .overlay()
            .pending
            .range::<Vec<u8>, _>((start.clone(), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&full_prefix))
            .map(|(k, p)| (k.clone(), p.value.clone()))
            .collect();
        let mut pending = pending.into_iter().peekable();
        let mut out = Vec::new();
        let full = |out: &Entries| limit.is_some_and(|l| out.len() >= l);
        let mut sled_range = self
            .data
            .range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded));
        let mut next_sled = || -> Result<Option<(Vec<u8>, Vec<u8>)>> {
            match sled_range.next() {
                Some(item) => {
                    let (k, v) = item.map_err(backend)?;
                    Ok(k.starts_with(&full_prefix)
                        .then(|| (k.to_vec(), v.to_vec())))
                }
                None => Ok(None),
            }
        };
        let mut from_sled = next_sled()?;
        while !full(&out) {
            let take_pending = match (&from_sled, pending.peek()) {
                (None, None) => break,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some((sk, _)), Some((pk, _))) => pk <= sk,
            };
            if take_pending {
                let (pk, pv) = pending.next().expect("peeked");
                if from_sled.as_ref().is_some_and(|(sk, _)| *sk == pk) {
                    from_sled = next_sled()?; // shadowed by the overlay
                }
                if let Some(v) = pv {
                    out.push((pk[strip..].to_vec(), v));
                }
            } else {
                let (sk, sv) = from_sled.take().expect("checked");
                out.push((sk[strip..].to_vec(), sv));
                from_sled = next_sled()?;
            }
        }
        Ok(out)
    }

    fn apply(&self, batch: &Batch) -> Result<Applied> {
        if batch.writes.is_empty() && batch.checks.is_empty() {
            return Ok(Applied::Done(SyncTicket(0)));
        }
        let mut overlay = self.overlay_mut();
        for check in &batch.checks {
            let full = full_key(check.tree, &check.key);
            let current = match overlay.pending.get(&full) {
                Some(p) => p.value.clone(),
                None => self.data.get(&full).map_err(backend)?.map(|v| v.to_vec()),
            };
            if current.as_deref() != check.expected.as_deref() {
                return Ok(Applied::Conflict);
            }
        }
        if batch.writes.is_empty() {
            return Ok(Applied::Done(SyncTicket(0)));
        }
        overlay.applied += 1;
        let seq = overlay.applied;
        for w in &batch.writes {
            let key = full_key(w.tree, &w.key);
            overlay.bytes += entry_bytes(&key, &w.value);
            let pending = Pending {
                value: w.value.clone(),
                batch: seq,
            };
            if let Some(old) = overlay.pending.insert(key.clone(), pending) {
                overlay.bytes -= entry_bytes(&key, &old.value);
            }
        }
        let oversize = overlay.bytes > OVERLAY_MAX_BYTES;
        drop(overlay);
        self.gate.applied(seq);
        if oversize {
            self.move_to_sled()?;
        }
        Ok(Applied::Done(SyncTicket(seq)))
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
        self.gate.wait_durable(ticket.0, || self.move_and_flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Commit;

    const T: Tree = Tree("t");

    fn put(b: &SledBackend, k: &str, v: &str) -> SyncTicket {
        let mut batch = Batch::new();
        batch.put(T, k.as_bytes(), v.as_bytes());
        match b.apply(&batch).unwrap() {
            Applied::Done(t) => t,
            Applied::Conflict => panic!("no check, no conflict"),
        }
    }

    fn keys(entries: Entries) -> Vec<String> {
        entries
            .into_iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8(k).unwrap(),
                    String::from_utf8(v).unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn scans_merge_what_is_in_sled_with_what_is_still_in_the_overlay() {
        let dir = tempfile::tempdir().unwrap();
        let b = SledBackend::open(dir.path()).unwrap();
        for (k, v) in [("a1", "s"), ("a3", "s"), ("a5", "s"), ("b1", "s")] {
            put(&b, k, v);
        }
        b.sync(put(&b, "a7", "s")).unwrap();
        assert!(
            b.overlay().pending.is_empty(),
            "a sync moves everything to sled"
        );
        // Now in the overlay only: a new key between sled's, a replaced one, a removed one.
        put(&b, "a2", "o");
        put(&b, "a3", "o");
        let mut removal = Batch::new();
        removal.remove(T, b"a5".to_vec());
        let _ = b.apply(&removal).unwrap();
        assert_eq!(b.overlay().pending.len(), 3);
        assert_eq!(
            keys(b.scan(T, b"a", None, None).unwrap()),
            ["a1=s", "a2=o", "a3=o", "a7=s"]
        );
        assert_eq!(
            keys(b.scan(T, b"a", Some(b"a2"), Some(2)).unwrap()),
            ["a3=o", "a7=s"]
        );
        assert_eq!(
            keys(b.scan(T, b"a", None, Some(2)).unwrap()),
            ["a1=s", "a2=o"]
        );
        assert_eq!(b.get(T, b"a5").unwrap(), None);
        assert_eq!(b.get(T, b"a3").unwrap().as_deref(), Some(&b"o"[..]));
        // A check sees the overlay's value, not sled's.
        let mut cas = Batch::new();
        cas.check(T, b"a3".to_vec(), Some(b"s".to_vec()));
        cas.put(T, b"a3".to_vec(), b"x".to_vec());
        assert_eq!(b.commit(&cas).unwrap(), Commit::Conflict);
        cas.checks[0].expected = Some(b"o".to_vec());
        assert_eq!(b.commit(&cas).unwrap(), Commit::Done);
        assert!(b.overlay().pending.is_empty());
        assert_eq!(
            keys(b.scan(T, b"a", None, None).unwrap()),
            ["a1=s", "a2=o", "a3=x", "a7=s"]
        );
    }

    #[test]
    fn writes_nobody_syncs_do_not_pile_up_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let b = SledBackend::open(dir.path()).unwrap();
        let value = "v".repeat(64 * 1024);
        for i in 0..300 {
            put(&b, &format!("cache{i:03}"), &value); // 19 MiB in all, never synced
            assert!(b.overlay().bytes <= OVERLAY_MAX_BYTES + 70 * 1024);
        }
        assert_eq!(b.scan(T, b"cache", None, None).unwrap().len(), 300);
        put(&b, "cache000", "small");
        assert_eq!(
            b.get(T, b"cache000").unwrap().as_deref(),
            Some(&b"small"[..])
        );
        b.sync(put(&b, "last", "x")).unwrap();
        assert_eq!(b.overlay().bytes, 0, "a sync leaves nothing behind");
    }

    #[test]
    fn what_was_synced_is_there_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let b = SledBackend::open(dir.path()).unwrap();
            let mut tickets = Vec::new();
            for i in 0..50 {
                tickets.push(put(&b, &format!("k{i:02}"), &i.to_string()));
            }
            b.sync(*tickets.last().unwrap()).unwrap();
            put(&b, "late", "applied, not synced");
        }
        let b = SledBackend::open(dir.path()).unwrap();
        assert_eq!(b.scan(T, b"k", None, None).unwrap().len(), 50);
        assert!(b.get(T, b"late").unwrap().is_some(), "kept at close");
    }

    #[test]
    fn concurrent_writers_share_sled_batches_and_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let b = std::sync::Arc::new(SledBackend::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let b = b.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        // A counter per thread under compare-and-swap, and a record per write.
                        loop {
                            let key = format!("c{t}");
                            let cur = b.get(T, key.as_bytes()).unwrap();
                            let n = cur
                                .as_deref()
                                .map(|v| std::str::from_utf8(v).unwrap().parse::<u32>().unwrap())
                                .unwrap_or(0);
                            let mut batch = Batch::new();
                            batch.check(T, key.as_bytes(), cur);
                            batch.put(T, key.as_bytes(), (n + 1).to_string());
                            batch.put(T, format!("r{t}-{i:03}"), "x");
                            if b.commit(&batch).unwrap() == Commit::Done {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for t in 0..8 {
            assert_eq!(
                b.get(T, format!("c{t}").as_bytes()).unwrap().as_deref(),
                Some(&b"200"[..])
            );
        }
        assert_eq!(b.scan(T, b"r", None, None).unwrap().len(), 1600);
    }
}
