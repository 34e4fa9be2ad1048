//! Login throttling: exponential back-off per account and per source address, so that neither
//! guessing one account's password from many addresses nor many accounts' from one address
//! goes fast.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before any delay (typos happen).
const FREE_FAILURES: u32 = 3;
const BASE_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Past this many tracked keys, entries idle for longer than `MAX_DELAY` are pruned.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Source(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
}

impl Entry {
    fn blocked_until(&self) -> Option<Instant> {
        let over = self.failures.checked_sub(FREE_FAILURES + 1)?;
        let delay = BASE_DELAY
            .checked_mul(1u32 << over.min(20))
            .unwrap_or(MAX_DELAY)
            .min(MAX_DELAY);
        Some(self.last_failure + delay)
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Throttle {
    pub fn new() -> Self {
        Self::default()
    }

    /// `Err(wait)` while either the account or the source must wait.
    pub fn check(&self, account: &str, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let wait = [Key::Account(account.to_string()), Key::Source(source)]
            .iter()
            .filter_map(|k| entries.get(k)?.blocked_until())
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(w) => Err(w),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, account: &str, source: IpAddr, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > PRUNE_ABOVE {
            entries.retain(|_, e| now.saturating_duration_since(e.last_failure) < MAX_DELAY);
        }
        for key in [Key::Account(account.to_string()), Key::Source(source)] {
            let e = entries.entry(key).or_insert(Entry {
                failures: 0,
                last_failure: now,
            });
            // A quiet period as long as the maximum delay forgives the past.
            if now.saturating_duration_since(e.last_failure) >= MAX_DELAY {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last_failure = now;
        }
    }

    /// A success clears the account's record. The source's is kept: one valid login must not
    /// reset an address that is guessing other accounts.
    pub fn record_success(&self, account: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&Key::Account(account.to_string()));
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
}
