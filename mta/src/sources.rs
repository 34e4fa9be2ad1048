//! Connections per source address, weighed by what they have done.
//!
//! A hospital reaches the hub from one NAT address: a few stuck clients holding their
//! connections open without a word must not lock out every other client behind it. So at the
//! per-source limit, a new connection is not refused while one of that address has sent
//! nothing since its greeting: the oldest such *silent* connection is closed instead
//! (`421 4.4.2`, as an idle timeout), and the new one takes its place. Connections that
//! greeted (EHLO/HELO), authenticated or sent mail keep theirs; only when all of them did is
//! a new one refused (`421 4.7.0`). Silent and unauthenticated connections also time out
//! sooner than the others ([`crate::config::MtaConfig::unauthenticated_timeout_secs`]).
//!
//! Invariant: at most `max` connections of an address that have not been told to close are
//! open at once; one told to close leaves as soon as its session sees it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// One open connection, as its session and the limiter share it.
#[derive(Debug, Default)]
pub(crate) struct Tracked {
    /// Accepted in this order (older first).
    order: u64,
    greeted: AtomicBool,
    evicted: AtomicBool,
    evict: Notify,
}

impl Tracked {
    /// The client said EHLO or HELO (or more): no longer silent.
    pub(crate) fn greeted(&self) {
        self.greeted.store(true, Ordering::Relaxed);
    }

    /// Resolves when a newer connection from the same address took this one's place.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

type Table = Arc<Mutex<HashMap<IpAddr, Vec<Arc<Tracked>>>>>;

#[derive(Debug, Default)]
pub(crate) struct Sources {
    table: Table,
}

/// A connection's place, given back on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    table: Table,
    ip: IpAddr,
    pub(crate) tracked: Arc<Tracked>,
}

impl Sources {
    /// A place for connection `order` from `ip`, or `None` when `max` connections of it are
    /// open and none of them is silent. At the limit, the oldest silent one is told to close.
    pub(crate) fn admit(&self, ip: IpAddr, max: usize, order: u64) -> Option<Slot> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let open = table.entry(ip).or_default();
        let staying = || open.iter().filter(|t| !t.evicted.load(Ordering::Relaxed));
        if staying().count() >= max {
            let victim = staying()
                .filter(|t| !t.greeted.load(Ordering::Relaxed))
                .min_by_key(|t| t.order)?
                .clone();
            victim.evicted.store(true, Ordering::Relaxed);
            // A stored permit if its session is not waiting right now: it sees it next.
            victim.evict.notify_one();
            tracing::info!("a silent connection from this source was closed for a new one");
        }
        let tracked = Arc::new(Tracked {
            order,
            ..Tracked::default()
        });
        open.push(tracked.clone());
        Some(Slot {
            table: self.table.clone(),
            ip,
            tracked,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = table.get_mut(&self.ip) {
            open.retain(|t| !Arc::ptr_eq(t, &self.tracked));
            if open.is_empty() {
                table.remove(&self.ip);
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
    fn at_the_limit_the_oldest_silent_connection_makes_room_and_greeted_ones_stay() {
        let sources = Sources::default();
        let a = sources.admit(ip("192.0.2.1"), 2, 1).unwrap();
        let b = sources.admit(ip("192.0.2.1"), 2, 2).unwrap();
        a.tracked.greeted();
        // b is silent: it goes, c comes.
        let c = sources.admit(ip("192.0.2.1"), 2, 3).unwrap();
        assert!(b.tracked.evicted.load(Ordering::Relaxed));
        assert!(!a.tracked.evicted.load(Ordering::Relaxed));
        c.tracked.greeted();
        // Both staying ones greeted: refused.
        assert!(sources.admit(ip("192.0.2.1"), 2, 4).is_none());
        assert!(sources.admit(ip("192.0.2.2"), 2, 5).is_some(), "per source");
        drop((a, b, c));
        assert!(sources.table.lock().unwrap().is_empty(), "all given back");
    }
}
