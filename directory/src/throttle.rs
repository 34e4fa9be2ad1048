//! Login throttling: exponential back-off per account and per source address, so that neither
//! guessing one account's password from many addresses nor many accounts' from one address
//! goes fast.
//!
//! A login first [`Throttle::reserve`]s its attempt: under the lock, it is counted as a failure
//! in flight before its password is checked. So N attempts sent at once cannot all pass the
//! check before the first failure is counted: each one sees the others.
//!
//! Attempts in flight are not failures yet, though: when only they stand in the way (the
//! decided failures alone would let the attempt through), [`Throttle::reserve_queued`] waits
//! for one of them to be decided instead of refusing. So twenty devices of one organisation
//! logging in together are served in turn, not told "too many failed logins", while at most
//! `FREE_FAILURES + 1` attempts of an account or a source are ever undecided at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Failures allowed before any delay (typos happen).
const FREE_FAILURES: u32 = 3;
const BASE_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Past this many tracked keys, entries idle for longer than `MAX_DELAY` are pruned.
const PRUNE_ABOVE: usize = 10_000;
/// Most logins waiting at once behind attempts in flight; past it they are refused as before.
const MAX_QUEUED: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Source(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// Attempts reserved and not yet decided: each counts as a failure until it is one or not.
    pending: u32,
    last_failure: Instant,
    /// The latest reservation: while attempts are pending, delays run from here too.
    last_attempt: Instant,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            failures: 0,
            pending: 0,
            last_failure: now,
            last_attempt: now,
        }
    }

    fn blocked_until(&self) -> Option<Instant> {
        self.blocked_counting(self.pending)
    }

    /// When the entry stops blocking if `pending` attempts are counted as failures.
    fn blocked_counting(&self, pending: u32) -> Option<Instant> {
        let counted = self.failures.saturating_add(pending);
        let over = counted.checked_sub(FREE_FAILURES + 1)?;
        let delay = BASE_DELAY
            .checked_mul(1u32 << over.min(20))
            .unwrap_or(MAX_DELAY)
            .min(MAX_DELAY);
        let since = if pending > 0 {
            self.last_failure.max(self.last_attempt)
        } else {
            self.last_failure
        };
        Some(since + delay)
    }

    /// A quiet period as long as the maximum delay forgives the past.
    fn forgive(&mut self, now: Instant) {
        if self.pending == 0 && now.saturating_duration_since(self.last_failure) >= MAX_DELAY {
            self.failures = 0;
        }
    }

    fn is_idle(&self, now: Instant) -> bool {
        self.pending == 0 && now.saturating_duration_since(self.last_failure) >= MAX_DELAY
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<Key, Entry>>,
    /// Signalled whenever an attempt is decided or withdrawn.
    decided: Condvar,
    /// Logins waiting in [`Throttle::reserve_queued`].
    queued: Mutex<usize>,
}

/// A login attempt reserved by [`Throttle::reserve`], counted as a failure in flight until it
/// is decided: [`Attempt::failed`] keeps it as a failure, [`Attempt::succeeded`] clears the
/// account's record. Dropped undecided (nothing was checked: the hub was busy, the store
/// failed), it is withdrawn and counts for nothing.
#[derive(Debug)]
#[must_use = "an attempt is decided by failed() or succeeded()"]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    account: String,
    source: IpAddr,
    decided: bool,
}

impl Throttle {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait(entries: &HashMap<Key, Entry>, keys: &[Key], now: Instant) -> Option<Duration> {
        keys.iter()
            .filter_map(|k| entries.get(k)?.blocked_until())
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    fn prune(entries: &mut HashMap<Key, Entry>, now: Instant) {
        if entries.len() > PRUNE_ABOVE {
            entries.retain(|_, e| !e.is_idle(now));
        }
    }

    /// `Err(wait)` while either the account or the source must wait.
    pub fn check(&self, account: &str, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let entries = self.lock();
        let keys = [Key::Account(account.to_string()), Key::Source(source)];
        match Self::wait(&entries, &keys, now) {
            Some(w) => Err(w),
            None => Ok(()),
        }
    }

    /// Checks and counts in one step: `Err(wait)` while the account or the source must wait,
    /// else the attempt, already counted as a failure for both until it is decided.
    pub fn reserve(
        &self,
        account: &str,
        source: IpAddr,
        now: Instant,
    ) -> Result<Attempt<'_>, Duration> {
        let mut entries = self.lock();
        let keys = [Key::Account(account.to_string()), Key::Source(source)];
        if let Some(wait) = Self::wait(&entries, &keys, now) {
            return Err(wait);
        }
        Ok(self.take(&mut entries, keys, account, source, now))
    }

    /// As [`Throttle::reserve`], but when only attempts still in flight stand in the way, waits
    /// (at most `patience`) for them to be decided rather than refusing: the decided failures
    /// alone decide a refusal. Blocking: for the login threads, never the async runtime.
    pub fn reserve_queued(
        &self,
        account: &str,
        source: IpAddr,
        patience: Duration,
    ) -> Result<Attempt<'_>, Duration> {
        let keys = [Key::Account(account.to_string()), Key::Source(source)];
        let deadline = Instant::now() + patience;
        let mut entries = self.lock();
        let mut waiting = false;
        let result = loop {
            let now = Instant::now();
            let Some(wait) = Self::wait(&entries, &keys, now) else {
                break Ok(self.take(&mut entries, keys.clone(), account, source, now));
            };
            // Refused for its decided failures: no waiting changes that soon.
            let for_failures = keys
                .iter()
                .filter_map(|k| entries.get(k)?.blocked_counting(0))
                .any(|until| until > now);
            if for_failures || now >= deadline {
                break Err(wait);
            }
            if !waiting {
                let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
                if *queued >= MAX_QUEUED {
                    break Err(wait);
                }
                *queued += 1;
                waiting = true;
            }
            let until_decided = wait.min(deadline - now);
            entries = self
                .decided
                .wait_timeout(entries, until_decided)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        };
        if waiting {
            *self.queued.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        }
        result
    }

    fn take(
        &self,
        entries: &mut HashMap<Key, Entry>,
        keys: [Key; 2],
        account: &str,
        source: IpAddr,
        now: Instant,
    ) -> Attempt<'_> {
        Self::prune(entries, now);
        for key in keys {
            let e = entries.entry(key).or_insert_with(|| Entry::new(now));
            e.forgive(now);
            e.pending = e.pending.saturating_add(1);
            e.last_attempt = now;
        }
        Attempt {
            throttle: self,
            account: account.to_string(),
            source,
            decided: false,
        }
    }

    pub fn record_failure(&self, account: &str, source: IpAddr, now: Instant) {
        let mut entries = self.lock();
        Self::prune(&mut entries, now);
        for key in [Key::Account(account.to_string()), Key::Source(source)] {
            let e = entries.entry(key).or_insert_with(|| Entry::new(now));
            e.forgive(now);
            e.failures = e.failures.saturating_add(1);
            e.last_failure = now;
        }
    }

    /// A success clears the account's record. The source's is kept: one valid login must not
    /// reset an address that is guessing other accounts.
    pub fn record_success(&self, account: &str) {
        self.lock().remove(&Key::Account(account.to_string()));
    }
}

impl Attempt<'_> {
    /// Wrong password (or unknown account): the reservation stays, as a failure.
    pub fn failed(mut self, now: Instant) {
        self.decided = true;
        let mut entries = self.throttle.lock();
        for key in [Key::Account(self.account.clone()), Key::Source(self.source)] {
            let e = entries.entry(key).or_insert_with(|| Entry::new(now));
            e.pending = e.pending.saturating_sub(1);
            e.failures = e.failures.saturating_add(1);
            e.last_failure = now;
        }
        drop(entries);
        self.throttle.decided.notify_all();
    }

    /// Right password: the account's failures are forgiven (attempts still in flight keep
    /// their reservations), the source's own attempt is withdrawn but its failures are kept.
    pub fn succeeded(mut self) {
        self.decided = true;
        let mut entries = self.throttle.lock();
        let account = Key::Account(self.account.clone());
        if let Some(e) = entries.get_mut(&account) {
            e.failures = 0;
            e.pending = e.pending.saturating_sub(1);
            if e.pending == 0 {
                entries.remove(&account);
            }
        }
        Self::withdraw(&mut entries, Key::Source(self.source));
        drop(entries);
        self.throttle.decided.notify_all();
    }

    fn withdraw(entries: &mut HashMap<Key, Entry>, key: Key) {
        if let Some(e) = entries.get_mut(&key) {
            e.pending = e.pending.saturating_sub(1);
            if e.pending == 0 && e.failures == 0 {
                entries.remove(&key);
            }
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.decided {
            return;
        }
        let mut entries = self.throttle.lock();
        Self::withdraw(&mut entries, Key::Account(self.account.clone()));
        Self::withdraw(&mut entries, Key::Source(self.source));
        drop(entries);
        self.throttle.decided.notify_all();
    }
}

/// Simultaneous connections per source address, shared by the hub's listeners (SMTP, IMAP):
/// a slot is taken at accept and given back when its guard drops.
#[derive(Debug, Default)]
pub struct ConnectionLimits {
    counts: std::sync::Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// A connection's place in [`ConnectionLimits`], freed on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    counts: std::sync::Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl ConnectionLimits {
    /// A slot for `ip`, or `None` when it already holds `max` connections.
    pub fn admit(&self, ip: IpAddr, max: usize) -> Option<ConnectionSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let c = counts.entry(ip).or_insert(0);
        if *c >= max {
            return None;
        }
        *c += 1;
        Some(ConnectionSlot {
            counts: self.counts.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = counts.get_mut(&self.ip) {
            *c -= 1;
            if *c == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn connection_slots_are_counted_per_source_and_given_back() {
        let limits = ConnectionLimits::default();
        let a = limits.admit(ip("192.0.2.1"), 2).unwrap();
        let b = limits.admit(ip("192.0.2.1"), 2).unwrap();
        assert!(limits.admit(ip("192.0.2.1"), 2).is_none());
        assert!(limits.admit(ip("192.0.2.2"), 2).is_some());
        drop(a);
        assert!(limits.admit(ip("192.0.2.1"), 2).is_some());
        drop(b);
        assert!(
            limits.counts.lock().unwrap().is_empty(),
            "freed entries are removed"
        );
    }

    #[test]
    fn back_off_doubles_after_free_failures() {
        let t = Throttle::new();
        let t0 = Instant::now();
        let src = ip("192.0.2.1");
        for _ in 0..FREE_FAILURES {
            assert!(t.check("a@x.test", src, t0).is_ok());
            t.record_failure("a@x.test", src, t0);
        }
        // Exactly FREE_FAILURES failures: still free.
        assert!(t.check("a@x.test", src, t0).is_ok());
        t.record_failure("a@x.test", src, t0);
        assert_eq!(t.check("a@x.test", src, t0), Err(Duration::from_secs(1)));
        t.record_failure("a@x.test", src, t0);
        assert_eq!(t.check("a@x.test", src, t0), Err(Duration::from_secs(2)));
        t.record_failure("a@x.test", src, t0);
        assert_eq!(t.check("a@x.test", src, t0), Err(Duration::from_secs(4)));
        assert!(t
            .check("a@x.test", src, t0 + Duration::from_secs(4))
            .is_ok());
    }

    #[test]
    fn delay_is_capped() {
        let t = Throttle::new();
        let t0 = Instant::now();
        for _ in 0..100 {
            t.record_failure("a@x.test", ip("192.0.2.1"), t0);
        }
        assert_eq!(t.check("a@x.test", ip("192.0.2.1"), t0), Err(MAX_DELAY));
    }

    #[test]
    fn account_is_throttled_from_every_source_and_source_for_every_account() {
        let t = Throttle::new();
        let t0 = Instant::now();
        for i in 0..6 {
            t.record_failure("victim@x.test", ip(&format!("192.0.2.{i}")), t0);
        }
        assert!(t.check("victim@x.test", ip("198.51.100.7"), t0).is_err());
        let t = Throttle::new();
        for i in 0..6 {
            t.record_failure(&format!("user{i}@x.test"), ip("203.0.113.9"), t0);
        }
        assert!(t.check("fresh@x.test", ip("203.0.113.9"), t0).is_err());
        assert!(t.check("fresh@x.test", ip("203.0.113.10"), t0).is_ok());
    }

    #[test]
    fn success_clears_the_account_but_not_the_source() {
        let t = Throttle::new();
        let t0 = Instant::now();
        let src = ip("192.0.2.1");
        for _ in 0..6 {
            t.record_failure("a@x.test", src, t0);
        }
        t.record_success("a@x.test");
        assert!(t.check("a@x.test", ip("192.0.2.2"), t0).is_ok());
        assert!(t.check("a@x.test", src, t0).is_err());
    }

    #[test]
    fn reservations_count_before_the_password_is_checked() {
        let t = Throttle::new();
        let t0 = Instant::now();
        // Twenty guesses at once, from twenty addresses: only the free ones plus the first
        // delayed one get through, the others see them pending.
        let mut passed = Vec::new();
        let mut refused = 0;
        for i in 0..20 {
            match t.reserve("victim", ip(&format!("192.0.2.{i}")), t0) {
                Ok(a) => passed.push(a),
                Err(wait) => {
                    assert!(wait >= Duration::from_secs(1));
                    refused += 1;
                }
            }
        }
        assert_eq!(passed.len(), (FREE_FAILURES + 1) as usize);
        assert_eq!(refused, 20 - passed.len());
        for a in passed {
            a.failed(t0);
        }
        // Now failures proper: the account waits, whoever asks.
        assert!(t.check("victim", ip("198.51.100.1"), t0).is_err());
        assert!(t.reserve("victim", ip("198.51.100.1"), t0).is_err());
    }

    #[test]
    fn an_attempt_dropped_undecided_counts_for_nothing() {
        let t = Throttle::new();
        let t0 = Instant::now();
        let src = ip("192.0.2.1");
        for _ in 0..10 {
            drop(t.reserve("a", src, t0).unwrap());
        }
        assert!(t.lock().is_empty(), "nothing left behind");
        assert!(t.check("a", src, t0).is_ok());
    }

    #[test]
    fn a_success_forgives_the_account_and_withdraws_from_the_source() {
        let t = Throttle::new();
        let t0 = Instant::now();
        let src = ip("192.0.2.1");
        for _ in 0..FREE_FAILURES {
            t.reserve("a", src, t0).unwrap().failed(t0);
        }
        t.reserve("a", src, t0).unwrap().succeeded();
        let entries = t.lock();
        assert!(!entries.contains_key(&Key::Account("a".into())));
        let source = entries[&Key::Source(src)];
        assert_eq!((source.failures, source.pending), (FREE_FAILURES, 0));
        drop(entries);
        // Many users behind one address logging in one after the other are never throttled.
        for i in 0..50 {
            t.reserve(&format!("user{i}"), ip("192.0.2.9"), t0)
                .unwrap()
                .succeeded();
        }
        assert!(t.check("next", ip("192.0.2.9"), t0).is_ok());
    }

    #[test]
    fn reserved_attempts_back_off_like_failures() {
        let t = Throttle::new();
        let t0 = Instant::now();
        let src = ip("192.0.2.1");
        for _ in 0..FREE_FAILURES + 1 {
            t.reserve("a", src, t0).unwrap().failed(t0);
        }
        assert_eq!(t.check("a", src, t0), Err(Duration::from_secs(1)));
        // Once the delay is over one attempt goes through, and the next must wait for it.
        let later = t0 + Duration::from_secs(1);
        let attempt = t.reserve("a", src, later).unwrap();
        assert_eq!(
            t.reserve("a", src, later).err(),
            Some(Duration::from_secs(2))
        );
        attempt.failed(later);
        assert_eq!(t.check("a", src, later), Err(Duration::from_secs(2)));
    }

    /// Twenty devices of one account logging in together: beyond the attempts allowed in
    /// flight, the next one waits for one of them to be decided, and goes through once it is
    /// a success, instead of being told to retry.
    #[test]
    fn a_login_waits_behind_attempts_in_flight_instead_of_being_refused() {
        let t = std::sync::Arc::new(Throttle::new());
        let in_flight: Vec<Attempt<'_>> = (1..=FREE_FAILURES + 1)
            .map(|i| {
                t.reserve("org", ip(&format!("192.0.2.{i}")), Instant::now())
                    .unwrap()
            })
            .collect();
        // The plain check refuses: the attempts in flight count as failures.
        assert!(t.reserve("org", ip("192.0.2.50"), Instant::now()).is_err());
        let waiter = {
            let t = t.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let ok = t
                    .reserve_queued("org", ip("192.0.2.60"), Duration::from_secs(5))
                    .map(Attempt::succeeded)
                    .is_ok();
                (ok, started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        let mut in_flight = in_flight.into_iter();
        in_flight.next().unwrap().succeeded();
        let (ok, waited) = waiter.join().unwrap();
        assert!(ok, "served once an attempt in flight was decided");
        assert!(waited < Duration::from_secs(4), "{waited:?}");
        for a in in_flight {
            a.succeeded();
        }
    }

    /// Decided failures are refused at once, queue or not; and a queue that nothing
    /// decides gives up after its patience.
    #[test]
    fn decided_failures_refuse_at_once_and_the_queue_has_a_limit_in_time() {
        let t = Throttle::new();
        let src = ip("192.0.2.7");
        for _ in 0..=FREE_FAILURES {
            t.reserve("a", src, Instant::now())
                .unwrap()
                .failed(Instant::now());
        }
        let started = Instant::now();
        assert!(t
            .reserve_queued("a", ip("192.0.2.8"), Duration::from_secs(5))
            .is_err());
        assert!(started.elapsed() < Duration::from_secs(1));

        let held: Vec<Attempt<'_>> = (1..=FREE_FAILURES + 1)
            .map(|i| {
                t.reserve("b", ip(&format!("198.51.100.{i}")), Instant::now())
                    .unwrap()
            })
            .collect();
        let started = Instant::now();
        assert!(t
            .reserve_queued("b", ip("198.51.100.99"), Duration::from_millis(300))
            .is_err());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        drop(held);
    }
}
