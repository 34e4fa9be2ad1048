//! At most a few password hashes at once.
//!
//! An argon2id hash holds its whole memory cost (19 MiB with the parameters of
//! [`crate::password`]) for as long as it runs, and it is CPU-bound: running more hashes than
//! there are cores only multiplies the memory held, it does not answer anyone sooner. So every
//! hash (a login's verification, a new password's hash) first enters a [`Gate`] with a few
//! slots; the rest wait in a bounded queue for a bounded time and are then told the hub is
//! busy (a temporary failure the protocols can say: IMAP `[UNAVAILABLE]`, SMTP 454, HTTP 503).
//! The hub's memory for hashing is thus at most slots × 19 MiB whatever the number of logins
//! arriving at once.
//!
//! The gate is blocking code: callers run on a blocking pool (`spawn_blocking`), where a
//! waiting thread costs a small stack, not 19 MiB.

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Most hashes at once, whatever the number of cores: 4 × 19 MiB.
pub const MAX_SLOTS: usize = 4;
/// Callers allowed to wait, per slot. Past that the answer is "busy" at once: a queue so long
/// that its last caller would wait longer than [`PATIENCE`] only holds threads for nothing.
pub const WAITING_PER_SLOT: usize = 32;
/// Longest wait for a slot. Mail clients give a LOGIN tens of seconds.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// What the protocols tell a caller turned away to wait before trying again (HTTP
/// `Retry-After`): a slot frees every few tens of milliseconds.
pub const RETRY_AFTER_SECS: u64 = 5;

/// Why a caller got no slot. Either way nothing was hashed and the caller may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Too many callers were already waiting.
    QueueFull,
    /// No slot came free within the gate's patience.
    TimedOut,
}

/// A counting semaphore with a cap on its waiters and a timeout.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<State>,
    freed: Condvar,
    slots: usize,
    max_waiting: usize,
    patience: Duration,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    waiting: usize,
}

/// A slot of the [`Gate`], given back when dropped. Hashing functions take one by reference,
/// so that no hash runs outside the gate.
#[derive(Debug)]
pub struct Permit<'a> {
    gate: &'a Gate,
}

impl Gate {
    /// `slots` hashes at once (at least 1), `max_waiting` callers queued, each at most
    /// `patience`.
    pub fn new(slots: usize, max_waiting: usize, patience: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
            slots: slots.max(1),
            max_waiting,
            patience,
        }
    }

    /// Sized to this machine: one slot per core, at most [`MAX_SLOTS`].
    pub fn for_this_machine() -> Self {
        let slots = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_SLOTS);
        Self::new(slots, slots * WAITING_PER_SLOT, PATIENCE)
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Hashes running now (slots taken).
    pub fn running(&self) -> usize {
        self.lock().running
    }

    /// Callers waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    /// Most callers allowed to wait.
    pub fn max_waiting(&self) -> usize {
        self.max_waiting
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot, at once if one is free and nobody waits for it, else after waiting in the queue.
    pub fn enter(&self) -> Result<Permit<'_>, Busy> {
        let mut state = self.lock();
        // Nobody overtakes a waiter: a free slot with waiters is theirs.
        if state.running < self.slots && state.waiting == 0 {
            state.running += 1;
            return Ok(Permit { gate: self });
        }
        if state.waiting >= self.max_waiting {
            return Err(Busy::QueueFull);
        }
        state.waiting += 1;
        let deadline = Instant::now() + self.patience;
        while state.running >= self.slots {
            let now = Instant::now();
            if now >= deadline {
                state.waiting -= 1;
                return Err(Busy::TimedOut);
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state.waiting -= 1;
        state.running += 1;
        Ok(Permit { gate: self })
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        state.running = state.running.saturating_sub(1);
        drop(state);
        self.gate.freed.notify_one();
    }
}

/// The hub's gate, shared by every protocol: the memory bound holds for the process.
pub fn gate() -> &'static Gate {
    GATE.get_or_init(Gate::for_this_machine)
}

static GATE: OnceLock<Gate> = OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn no_more_than_the_slots_run_at_once() {
        let gate = Arc::new(Gate::new(2, 100, Duration::from_secs(30)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (gate, running, most) = (gate.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    let _permit = gate.enter().expect("a slot within the patience");
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        let state = gate.lock();
        assert_eq!(
            (state.running, state.waiting),
            (0, 0),
            "everything given back"
        );
    }

    #[test]
    fn the_queue_is_bounded() {
        let gate = Arc::new(Gate::new(1, 1, Duration::from_secs(30)));
        let first = gate.enter().unwrap();
        // One caller waits…
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.enter().map(drop))
        };
        while gate.lock().waiting == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        // …and the next is turned away at once.
        let started = Instant::now();
        assert_eq!(gate.enter().map(drop), Err(Busy::QueueFull));
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(first);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert!(gate.enter().is_ok(), "the slot came back");
    }

    #[test]
    fn a_waiter_gives_up_after_the_patience() {
        let gate = Gate::new(1, 10, Duration::from_millis(50));
        let _held = gate.enter().unwrap();
        let started = Instant::now();
        assert_eq!(gate.enter().map(drop), Err(Busy::TimedOut));
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(gate.lock().waiting, 0, "the waiter left the queue");
    }

    #[test]
    fn at_least_one_slot_at_most_max_slots() {
        assert_eq!(Gate::new(0, 0, PATIENCE).slots(), 1);
        let g = Gate::for_this_machine();
        assert!((1..=MAX_SLOTS).contains(&g.slots()));
    }
}
