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
//! A failed flush (the disk is full, an I/O error) is rolled back: every batch not yet durable
//! leaves the overlay, whether the failed flush held it or it was applied on top meanwhile (a
//! later batch may have been computed from an earlier one's values), and every committer of
//! those batches gets [`StoreError::NotWritten`]. What sled may hold of them in memory (or on
//! disk, when the log write landed but its fsync failed) is hidden by *restore* entries: the
//! durable value of each key the failed flush wrote, read from sled before the flush, which
//! readers see instead of sled's, and which the next successful flush writes back. The memory
//! state is then exactly the durable state, as after a crash and a restart, without either.
//!
//! A full disk is the failure met in practice, and sled 0.34 does not survive one (it keeps the
//! error for good, and its later flushes may wait for ever), so sled must never meet it: each
//! flush first checks that the write leaves [`crate::space::RESERVE`] free, and fails before
//! sled is touched otherwise. While flushes fail so, the store is *unhealthy*
//! ([`SledBackend::health`]); the first flush that finds room again succeeds and makes it
//! healthy: no restart. An error from sled itself (an I/O error of the device, or another
//! program filling the disk past the reserve) leaves sled unusable: every later write is
//! refused at once, with the reason and that the hub must be restarted, and readers still see
//! exactly the durable state.
//!
//! Invariants:
//! - readers look at the overlay, then the restore entries, then sled; an entry leaves the
//!   overlay only after sled durably holds it (or a later value): a reader never sees an older
//!   value than one already applied, except that a failed flush takes back everything not
//!   durable;
//! - a batch's writes enter the overlay together under the writer lock and reach sled in one
//!   atomic sled batch: after a crash a batch is wholly there or wholly absent;
//! - every move to sled is flushed before the next one starts (one mover at a time): sled holds
//!   nothing that is not durable, except during a move and after a failed one (hidden by the
//!   restore entries until they are written back);
//! - `sync(t)` returns `Ok` only after the sled batch holding batch `t` was flushed, and `Err`
//!   for every batch a failed flush took back, even once later flushes succeed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::backend::{Applied, Backend, Batch, Entries, Health, SyncTicket, Tree};
use crate::{Result, StoreError};

pub struct SledBackend {
    dir: PathBuf,
    /// The open database; `None` only in `drop`.
    sled: Option<Sled>,
    /// Applied writes not yet in sled; its write lock is the writer lock.
    overlay: RwLock<Overlay>,
    /// Held while the overlay moves to sled and is flushed, so that moves happen one at a time,
    /// in order; holds what recovery needs.
    mover: Mutex<Mover>,
    gate: FlushGate,
    health: Mutex<Health>,
    /// Failed flushes so far ([`Backend::write_failures`]).
    failures: AtomicU64,
    /// sled itself failed a write ([`Mover::broken`], readable without the mover's lock).
    broken: AtomicBool,
    /// Test hook: every flush finds no room, as on a full disk.
    fail_writes: AtomicBool,
    /// Test hook: the next flush fails inside sled, after sled took the batch in memory.
    break_writes: AtomicBool,
}

struct Sled {
    db: sled::Db,
    data: sled::Tree,
}

#[derive(Default)]
struct Mover {
    /// sled itself failed a write (why): it is not written to again.
    broken: Option<String>,
    /// The failure was the test hook's: sled is sound (it may be closed normally).
    broken_by_hook: bool,
    /// What the last failed flush took back: batches, records.
    last_loss: (u64, usize),
}

/// Writes applied but not yet moved to sled, by full key.
#[derive(Default)]
struct Overlay {
    pending: BTreeMap<Vec<u8>, Pending>,
    /// The durable values of the keys a failed flush wrote (`None`: absent), which sled may no
    /// longer hold in memory; read in place of sled's until a flush writes them back.
    restore: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Batches applied so far; each pending entry remembers the last batch that wrote it.
    applied: u64,
    /// Bytes of keys and values in `pending`.
    bytes: usize,
}

impl Overlay {
    /// What the overlay says of a key: `Some(None)` if it is removed there, `None` if the
    /// overlay does not know it (read sled).
    fn lookup(&self, full: &[u8]) -> Option<Option<Vec<u8>>> {
        if let Some(p) = self.pending.get(full) {
            return Some(p.value.clone());
        }
        self.restore.get(full).cloned()
    }

    /// The overlay's entries from `start` on, under `prefix`, in key order.
    fn range(
        &self,
        start: &std::ops::Bound<Vec<u8>>,
        prefix: &[u8],
    ) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let bounds = (start.clone(), std::ops::Bound::Unbounded);
        let pending = self
            .pending
            .range::<Vec<u8>, _>(bounds.clone())
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, p)| (k.clone(), p.value.clone()));
        if self.restore.is_empty() {
            return pending.collect();
        }
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = self
            .restore
            .range::<Vec<u8>, _>(bounds)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        merged.extend(pending);
        merged.into_iter().collect()
    }
}

/// Past this many bytes in the overlay, an apply moves it to sled and flushes at once: writes
/// nobody syncs (caches, markers) do not pile up in memory.
const OVERLAY_MAX_BYTES: usize = 8 * 1024 * 1024;

fn entry_bytes(key: &[u8], value: &Option<Vec<u8>>) -> usize {
    key.len() + value.as_ref().map_or(0, Vec::len)
}

/// A key, its value (`None`: removed), and the batch that wrote it (`None`: a restore entry).
type Move = (Vec<u8>, Option<Vec<u8>>, Option<u64>);

struct Pending {
    /// `None`: removed.
    value: Option<Vec<u8>>,
    batch: u64,
}

/// Group commit: a committer waits until a flush that started after its batch was applied has
/// finished. One flush (one fsync of sled's log) then serves every batch applied before it, so
/// concurrent sessions share fsyncs instead of queueing one each.
/// How long a flush leader waits for concurrent writers to join when others are writing.
const COMMIT_DELAY: Duration = Duration::from_micros(300);

#[derive(Default)]
struct FlushGate {
    state: Mutex<GateState>,
    done: Condvar,
}

/// How many ranges of lost batches the gate remembers (one per outage: the failed flushes of
/// one outage merge into one range).
const LOST_RANGES: usize = 1024;

#[derive(Default)]
struct GateState {
    /// Batches applied so far (in memory).
    applied: u64,
    /// Batches known to be on disk, except those in `lost`.
    durable: u64,
    flushing: bool,
    /// Batches a failed flush took back: `(after, up_to)`, exclusive then inclusive.
    lost: Vec<(u64, u64)>,
}

impl GateState {
    fn is_lost(&self, seq: u64) -> bool {
        self.lost
            .iter()
            .any(|&(after, up_to)| seq > after && seq <= up_to)
    }
}

impl FlushGate {
    fn applied(&self, seq: u64) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.applied = st.applied.max(seq);
    }

    /// Every batch up to `up_to` not yet durable was taken back: its committers fail.
    fn lost(&self, up_to: u64) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let after = st.durable;
        match st.lost.last_mut() {
            Some(last) if last.0 == after => last.1 = last.1.max(up_to),
            _ => {
                st.lost.push((after, up_to));
                if st.lost.len() > LOST_RANGES {
                    st.lost.remove(0);
                }
            }
        }
        self.done.notify_all();
    }

    /// Returns once batch `seq` is durable; `flush` makes durable everything applied when it
    /// starts and says up to which batch. Fails if a failed flush took the batch back.
    fn wait_durable(&self, seq: u64, flush: impl Fn() -> Result<u64>) -> Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if st.is_lost(seq) {
                return Err(StoreError::NotWritten(
                    "the flush that held this change failed".into(),
                ));
            }
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
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Whether sled failed to open because another handle still holds the database's lock.
fn is_lock_held(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock"))
}

/// Opens sled in `dir`, waiting up to [`LOCK_WAIT`] for a lock still held.
fn open_sled(dir: &Path) -> Result<Sled> {
    let config = sled::Config::new()
        .path(dir)
        // The hub keeps its hot data in its own caches; 64 MiB of page cache is plenty and
        // keeps several test instances within a small machine.
        .cache_capacity(64 * 1024 * 1024)
        // Mail is write-heavy: favour write throughput over rewriting segments for space.
        .mode(sled::Mode::HighThroughput);
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    let db = loop {
        match config.open() {
            Ok(db) => break db,
            Err(e) if is_lock_held(&e) => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(StoreError::InUse(dir.to_path_buf()));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(other) => return Err(StoreError::Backend(other.to_string())),
        }
    };
    let data = db.open_tree("mshub").map_err(backend)?;
    Ok(Sled { db, data })
}

fn not_written(e: impl std::fmt::Display) -> StoreError {
    StoreError::NotWritten(e.to_string())
}

impl SledBackend {
    /// Opens (or creates) the database in `dir`. Fails with [`StoreError::InUse`] when another
    /// process holds it: sled takes an exclusive lock on its files.
    ///
    /// Sled releases its file lock from a background thread a moment after the last handle
    /// drops, so a database just closed by this process may still look held: the lock is
    /// tried again for up to [`LOCK_WAIT`] before the store is reported in use.
    pub fn open(dir: &Path) -> Result<Self> {
        let sled = open_sled(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            sled: Some(sled),
            overlay: RwLock::new(Overlay::default()),
            mover: Mutex::new(Mover::default()),
            gate: FlushGate::default(),
            health: Mutex::new(Health::Healthy),
            failures: AtomicU64::new(0),
            broken: AtomicBool::new(false),
            fail_writes: AtomicBool::new(false),
            break_writes: AtomicBool::new(false),
        })
    }

    /// Whether writes reach the disk: [`Health::WritesFailing`] from a failed flush until
    /// one succeeds again, or, when the flushes failed for want of room, until there is room
    /// again: a readiness check that takes the hub out of service must see it come back
    /// without waiting for a write that would then never come.
    pub fn health(&self) -> Health {
        let health = self
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if matches!(health, Health::WritesFailing { .. })
            && !self.broken.load(Ordering::SeqCst)
            && !self.fail_writes.load(Ordering::SeqCst)
            && crate::space::ensure_room(&self.dir, 0).is_ok()
        {
            return Health::Healthy;
        }
        health
    }

    /// Test hook: while `on`, every flush finds no room, as on a full disk.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn inject_write_faults(&self, on: bool) {
        self.fail_writes.store(on, Ordering::SeqCst);
    }

    /// Test hook: the next flush fails inside sled after sled took the batch in memory, as an
    /// I/O error of the device would.
    #[cfg(test)]
    fn break_next_write(&self) {
        self.break_writes.store(true, Ordering::SeqCst);
    }

    fn overlay(&self) -> std::sync::RwLockReadGuard<'_, Overlay> {
        self.overlay.read().unwrap_or_else(|p| p.into_inner())
    }

    fn overlay_mut(&self) -> std::sync::RwLockWriteGuard<'_, Overlay> {
        self.overlay.write().unwrap_or_else(|p| p.into_inner())
    }

    fn sled(&self) -> &Sled {
        self.sled.as_ref().expect("sled is open until drop")
    }

    /// sled's value of a full key (beneath the overlay).
    fn sled_get(&self, full: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .sled()
            .data
            .get(full)
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    /// The current value of a full key: the overlay's if it has one, else sled's. The overlay
    /// is read first: an entry leaves it only once sled holds it.
    fn current(&self, full: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.overlay().lookup(full) {
            return Ok(v);
        }
        self.sled_get(full)
    }

    /// Moves everything in the overlay to sled in one sled batch and flushes it. Returns the
    /// last batch now durable; on failure everything not durable is taken back.
    fn move_and_flush(&self) -> Result<u64> {
        let mut mover = self.mover.lock().unwrap_or_else(|p| p.into_inner());
        self.move_and_flush_locked(&mut mover)
    }

    fn move_and_flush_locked(&self, mover: &mut Mover) -> Result<u64> {
        if let Some(reason) = &mover.broken {
            let e = not_written(reason);
            self.roll_back(mover, Vec::new(), &e);
            return Err(e);
        }
        let (writes, covered) = {
            let overlay = self.overlay();
            let mut writes: Vec<Move> = overlay
                .pending
                .iter()
                .map(|(k, p)| (k.clone(), p.value.clone(), Some(p.batch)))
                .collect();
            // Restore entries not overwritten since: written back as they are.
            writes.extend(
                overlay
                    .restore
                    .iter()
                    .filter(|(k, _)| !overlay.pending.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone(), None)),
            );
            (writes, overlay.applied)
        };
        if writes.is_empty() {
            return Ok(covered);
        }
        // Room for the write and the reserve, or sled is not touched.
        let bytes: usize = writes.iter().map(|(k, v, _)| entry_bytes(k, v)).sum();
        let room = if self.fail_writes.load(Ordering::SeqCst) {
            Err("no space left on the data directory's file system (injected fault)".to_string())
        } else {
            crate::space::ensure_room(&self.dir, bytes as u64)
        };
        if let Err(reason) = room {
            let e = not_written(reason);
            self.roll_back(mover, Vec::new(), &e);
            return Err(e);
        }
        let sled = self.sled();
        // The durable value of each key about to change in sled, should the flush fail. A key
        // with a restore entry already has its durable value there.
        let mut priors = Vec::new();
        {
            let overlay = self.overlay();
            for (k, _, batch) in &writes {
                if batch.is_some() && !overlay.restore.contains_key(k) {
                    match sled.data.get(k) {
                        Ok(v) => priors.push((k.clone(), v.map(|v| v.to_vec()))),
                        Err(e) => {
                            drop(overlay);
                            // sled was not written: nothing of it to hide.
                            let e = not_written(e);
                            self.roll_back(mover, Vec::new(), &e);
                            return Err(e);
                        }
                    }
                }
            }
        }
        let mut batch = sled::Batch::default();
        for (k, v, _) in &writes {
            match v {
                Some(v) => batch.insert(k.as_slice(), v.as_slice()),
                None => batch.remove(k.as_slice()),
            }
        }
        let outcome = sled.data.apply_batch(batch).and_then(|()| {
            if self.break_writes.swap(false, Ordering::SeqCst) {
                mover.broken_by_hook = true;
                return Err(sled::Error::Io(std::io::Error::other(
                    "injected device error",
                )));
            }
            sled.db.flush().map(drop)
        });
        if let Err(e) = outcome {
            let reason = format!("{e}; restart the hub once the cause is fixed");
            mover.broken = Some(reason.clone());
            self.broken.store(true, Ordering::SeqCst);
            let e = not_written(reason);
            self.roll_back(mover, priors, &e);
            return Err(e);
        }
        // Sled now durably holds these values: drop the entries no later batch rewrote.
        {
            let mut overlay = self.overlay_mut();
            overlay.restore.clear();
            for (k, _, written_by) in writes {
                let Some(written_by) = written_by else {
                    continue;
                };
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
        self.set_health(None);
        Ok(covered)
    }

    /// Takes back every batch not durable: the overlay is emptied, and the durable values of
    /// the keys sled may have taken (`priors`) become restore entries.
    fn roll_back(
        &self,
        mover: &mut Mover,
        priors: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        e: &StoreError,
    ) {
        let up_to = {
            let mut overlay = self.overlay_mut();
            for (k, v) in priors {
                // A key that already has one keeps it: that is the durable value.
                overlay.restore.entry(k).or_insert(v);
            }
            let records = overlay.pending.len();
            overlay.pending.clear();
            overlay.bytes = 0;
            let up_to = overlay.applied;
            // Before any writer can apply again: it reads the count to resume UIDs above what
            // readers may have seen.
            self.failures.fetch_add(1, Ordering::SeqCst);
            let batches = up_to - self.gate.durable().min(up_to);
            mover.last_loss = (batches, records);
            up_to
        };
        self.gate.lost(up_to);
        self.set_health(Some(e.to_string()));
    }

    /// Records a change of health, and logs it once.
    fn set_health(&self, failing: Option<String>) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        match (&*health, failing) {
            (Health::Healthy, None) | (Health::WritesFailing { .. }, Some(_)) => {}
            (Health::Healthy, Some(reason)) => {
                tracing::warn!(
                    %reason,
                    "the key-value store cannot write: every change is refused until it can"
                );
                *health = Health::WritesFailing {
                    since: SystemTime::now(),
                    reason,
                };
            }
            (Health::WritesFailing { since, .. }, None) => {
                let secs = since.elapsed().map_or(0.0, |d| d.as_secs_f64());
                tracing::warn!(
                    failing_for_secs = format!("{secs:.1}"),
                    "the key-value store writes again"
                );
                *health = Health::Healthy;
            }
        }
    }

    /// Flushes everything applied, for a clean stop. The error says what could not be
    /// written: how many batches and records (none of them acknowledged).
    fn flush_at_close(&self) -> Result<()> {
        let mut mover = self.mover.lock().unwrap_or_else(|p| p.into_inner());
        let (batches, records) = {
            let overlay = self.overlay();
            if overlay.pending.is_empty() && overlay.restore.is_empty() {
                return Ok(());
            }
            (
                overlay.applied - self.gate.durable().min(overlay.applied),
                overlay.pending.len(),
            )
        };
        match self.move_and_flush_locked(&mut mover) {
            Ok(_) => {
                tracing::debug!(batches, records, "applied batches written at close");
                Ok(())
            }
            Err(e) => {
                let (batches, records) = mover.last_loss;
                Err(StoreError::NotWritten(format!(
                    "at close, {batches} applied batches ({records} records) could not be \
                     written and are lost, none of them acknowledged: {e}"
                )))
            }
        }
    }
}

impl FlushGate {
    fn durable(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).durable
    }

    /// A flush outside [`FlushGate::wait_durable`] made everything up to `covered` durable.
    fn flushed(&self, covered: u64) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.durable = st.durable.max(covered);
        self.done.notify_all();
    }
}

impl Drop for SledBackend {
    fn drop(&mut self) {
        // Applied but never synced writes are not promised durable; still, keep them. The
        // owner's close (`Backend::close`) has said what it could not write; this flushes
        // only what was applied after it.
        if let Err(e) = self.flush_at_close() {
            tracing::error!(error = %e, "closing the key-value store");
        }
        let mover = self.mover.get_mut().unwrap_or_else(|p| p.into_inner());
        if mover.broken.is_some() && !mover.broken_by_hook {
            // A sled that failed a write may wait for ever in the flush its handles make as
            // they drop: leave them to the end of the process (which releases its lock), and
            // nothing more is written.
            std::mem::forget(self.sled.take());
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
        let pending = self.overlay().range(&start, &full_prefix);
        let mut pending = pending.into_iter().peekable();
        let mut out = Vec::new();
        let full = |out: &Entries| limit.is_some_and(|l| out.len() >= l);
        let mut sled_range = self
            .sled()
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

    fn snapshot(
        &self,
        visit: &mut crate::backend::Visit<'_>,
        during: &mut dyn FnMut() -> Result<()>,
    ) -> Option<Result<()>> {
        // Held throughout: no batch applies, none is taken back, and an entry leaves the
        // overlay only for an identical one in sled — the merged view does not move.
        let overlay = self.overlay();
        let all = std::ops::Bound::Included(Vec::new());
        let mut pending = overlay.range(&all, &[]).into_iter().peekable();
        let mut emit = |full: &[u8], value: &[u8]| -> Result<()> {
            let Some(nul) = full.iter().position(|&b| b == 0) else {
                return Err(StoreError::corrupt("key", "no tree name"));
            };
            let tree = std::str::from_utf8(&full[..nul])
                .map_err(|_| StoreError::corrupt("key", "tree name not UTF-8"))?;
            visit(tree, &full[nul + 1..], value)
        };
        let mut run = || -> Result<()> {
            for item in self.sled().data.iter() {
                let (sk, sv) = item.map_err(backend)?;
                while let Some((pk, _)) = pending.peek() {
                    if pk.as_slice() >= sk.as_ref() {
                        break;
                    }
                    let (pk, pv) = pending.next().expect("peeked");
                    if let Some(v) = pv {
                        emit(&pk, &v)?;
                    }
                }
                match pending.peek() {
                    Some((pk, _)) if pk.as_slice() == sk.as_ref() => {
                        let (pk, pv) = pending.next().expect("peeked");
                        if let Some(v) = pv {
                            emit(&pk, &v)?;
                        }
                    }
                    _ => emit(&sk, &sv)?,
                }
            }
            for (pk, pv) in pending.by_ref() {
                if let Some(v) = pv {
                    emit(&pk, &v)?;
                }
            }
            during()
        };
        let result = run();
        drop(overlay);
        Some(result)
    }

    fn apply(&self, batch: &Batch) -> Result<Applied> {
        if batch.writes.is_empty() && batch.checks.is_empty() {
            return Ok(Applied::Done(SyncTicket(0)));
        }
        let mut overlay = self.overlay_mut();
        for check in &batch.checks {
            let full = full_key(check.tree, &check.key);
            let current = match overlay.lookup(&full) {
                Some(v) => v,
                None => self.sled_get(&full)?,
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
            let covered = self.move_and_flush()?;
            self.gate.flushed(covered);
        }
        Ok(Applied::Done(SyncTicket(seq)))
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        // Keys are `tree ‖ NUL ‖ key`: read the first key of each tree, then skip past it.
        let mut names = Vec::new();
        let mut from = Vec::new();
        while let Some((k, _)) = self
            .sled()
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

    fn health(&self) -> Health {
        SledBackend::health(self)
    }

    fn write_failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    fn close(&self) -> Result<()> {
        self.flush_at_close()
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

    fn value(b: &SledBackend, k: &str) -> Option<String> {
        b.get(T, k.as_bytes())
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn a_failed_flush_leaves_no_trace_and_fails_every_committer_of_its_batches() {
        let dir = tempfile::tempdir().unwrap();
        let b = std::sync::Arc::new(SledBackend::open(dir.path()).unwrap());
        b.sync(put(&b, "k", "durable")).unwrap();
        b.inject_write_faults(true);
        // Two batches wait for the same failing flush; the second wrote over the first.
        let first = put(&b, "k", "first");
        put(&b, "new", "first");
        let second = put(&b, "k", "second");
        assert!(b.sync(first).is_err(), "the flush failed: the commit fails");
        assert!(
            b.sync(second).is_err(),
            "a batch on top of a failed one fails too"
        );
        assert_eq!(value(&b, "k").as_deref(), Some("durable"));
        assert_eq!(
            value(&b, "new"),
            None,
            "a failed write leaves no visible trace"
        );
        assert!(keys(b.scan(T, b"", None, None).unwrap()) == ["k=durable"]);
        assert!(matches!(b.health(), Health::WritesFailing { .. }));
        // A commit while writes still fail fails too, and leaves nothing either.
        let mut batch = Batch::new();
        batch.put(T, b"other".to_vec(), b"x".to_vec());
        assert!(b.commit(&batch).is_err());
        assert_eq!(value(&b, "other"), None);
        // Writes succeed again: the store recovers by itself, without a restart.
        b.inject_write_faults(false);
        assert_eq!(
            b.health(),
            Health::Healthy,
            "ready again as soon as there is room, before any write"
        );
        let again = put(&b, "after", "x");
        b.sync(again).unwrap();
        assert_eq!(b.health(), Health::Healthy);
        assert!(
            b.sync(first).is_err(),
            "a lost batch stays lost once later ones succeed"
        );
        drop(b);
        let b = SledBackend::open(dir.path()).unwrap();
        assert_eq!(
            keys(b.scan(T, b"", None, None).unwrap()),
            ["after=x", "k=durable"]
        );
    }

    #[test]
    fn after_an_error_of_sled_itself_readers_see_the_durable_state_and_writes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b = SledBackend::open(dir.path()).unwrap();
        b.sync(put(&b, "k", "durable")).unwrap();
        b.break_next_write();
        // sled took these in memory, then failed: readers must not see them.
        let lost = put(&b, "k", "lost");
        put(&b, "new", "lost");
        assert!(b.sync(lost).is_err());
        assert_eq!(value(&b, "k").as_deref(), Some("durable"));
        assert_eq!(value(&b, "new"), None);
        assert_eq!(keys(b.scan(T, b"", None, None).unwrap()), ["k=durable"]);
        // A check sees the durable value too.
        let mut cas = Batch::new();
        cas.check(T, b"k".to_vec(), Some(b"durable".to_vec()));
        cas.put(T, b"k".to_vec(), b"next".to_vec());
        assert!(b.commit(&cas).is_err(), "sled is not written to again");
        assert_eq!(value(&b, "k").as_deref(), Some("durable"));
        match b.health() {
            Health::WritesFailing { reason, .. } => assert!(reason.contains("restart")),
            Health::Healthy => panic!("unhealthy after a failed write"),
        }
    }

    #[test]
    fn closing_says_how_many_batches_and_records_it_could_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let b = SledBackend::open(dir.path()).unwrap();
        b.sync(put(&b, "k", "durable")).unwrap();
        b.inject_write_faults(true);
        put(&b, "a", "never synced");
        put(&b, "b", "never synced");
        let mut two = Batch::new();
        two.put(T, b"c".to_vec(), b"x".to_vec());
        two.put(T, b"d".to_vec(), b"x".to_vec());
        let _ = b.apply(&two).unwrap();
        let e = b.close().unwrap_err().to_string();
        assert!(
            e.contains("3 applied batches (4 records)"),
            "the summary says what was lost: {e}"
        );
        assert!(b.close().is_ok(), "said once: nothing is left to write");
        b.inject_write_faults(false);
        b.sync(put(&b, "e", "x")).unwrap();
        assert!(b.close().is_ok());
    }

    #[test]
    fn with_writes_failing_on_and_off_under_concurrent_writers_every_ok_and_no_err_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let b = std::sync::Arc::new(SledBackend::open(dir.path()).unwrap());
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let toggler = {
            let (b, stop) = (b.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut on = false;
                while !stop.load(Ordering::SeqCst) {
                    on = !on;
                    b.inject_write_faults(on);
                    std::thread::sleep(Duration::from_millis(if on { 1 } else { 10 }));
                }
                b.inject_write_faults(false);
            })
        };
        let writers: Vec<_> = (0..6)
            .map(|t| {
                let b = b.clone();
                std::thread::spawn(move || {
                    // A counter per thread under compare-and-swap: it must end equal to the
                    // commits that returned Ok, whatever failed in between.
                    let (mut ok, mut refused) = (0u32, 0u32);
                    for i in 0..300 {
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
                        match b.commit(&batch) {
                            Ok(Commit::Done) => ok += 1,
                            Ok(Commit::Conflict) => unreachable!("one writer per counter"),
                            Err(_) => refused += 1,
                        }
                    }
                    (ok, refused)
                })
            })
            .collect();
        let outcomes: Vec<(u32, u32)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        stop.store(true, Ordering::SeqCst);
        toggler.join().unwrap();
        let check = |b: &SledBackend| {
            for (t, (ok, _)) in outcomes.iter().enumerate() {
                let value = b.get(T, format!("c{t}").as_bytes()).unwrap();
                let value = value.map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap());
                assert_eq!(
                    value, *ok,
                    "thread {t}: the counter counts the commits that were Ok"
                );
                let records = b.scan(T, format!("r{t}-").as_bytes(), None, None).unwrap();
                assert_eq!(records.len() as u32, *ok, "thread {t}: one record per Ok");
            }
        };
        check(&b);
        println!("Ok and refused commits per writer: {outcomes:?}");
        assert!(
            outcomes.iter().any(|(_, refused)| *refused > 0),
            "faults were met"
        );
        drop(b);
        check(&SledBackend::open(dir.path()).unwrap());
    }
}
