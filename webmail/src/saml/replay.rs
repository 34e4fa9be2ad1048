//! What was already consumed: assertion IDs and the request IDs they answered, each kept until
//! the assertion could no longer pass the time checks anyway.
//!
//! SAML Profiles §4.1.4.5: the SP must keep the ID of each used bearer assertion for as long as
//! it would be accepted, and refuse it a second time. Bounded: when full of unexpired entries
//! it refuses new logins rather than forget one (forgetting would let that assertion replay).

use std::collections::HashMap;

/// Consumed IDs with the instant (Unix milliseconds) after which they may be forgotten.
#[derive(Debug)]
pub(super) struct ReplayCache {
    entries: HashMap<String, i64>,
    capacity: usize,
}

/// Why [`ReplayCache::consume`] refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    Replayed,
    Full,
}

impl ReplayCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// Records every key until `expires_ms`, or refuses if any of them was already recorded.
    /// All-or-nothing: a refusal records nothing.
    pub(super) fn consume(
        &mut self,
        keys: &[String],
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        self.entries.retain(|_, expiry| *expiry > now_ms);
        if keys.iter().any(|k| self.entries.contains_key(k)) {
            return Err(Refusal::Replayed);
        }
        if self.entries.len() + keys.len() > self.capacity {
            return Err(Refusal::Full);
        }
        for key in keys {
            self.entries.insert(key.clone(), expires_ms);
        }
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_consumed_id_is_refused_until_it_expires() {
        let mut cache = ReplayCache::new(10);
        cache.consume(&keys(&["a:1", "r:1"]), 1_000, 0).unwrap();
        assert_eq!(
            cache.consume(&keys(&["a:1"]), 1_000, 500),
            Err(Refusal::Replayed)
        );
        assert_eq!(
            cache.consume(&keys(&["a:2", "r:1"]), 1_000, 500),
            Err(Refusal::Replayed)
        );
        // Past its expiry the entry is forgotten: the time checks refuse the assertion by then.
        cache.consume(&keys(&["a:1"]), 2_000, 1_000).unwrap();
    }

    #[test]
    fn a_refusal_records_nothing() {
        let mut cache = ReplayCache::new(10);
        cache.consume(&keys(&["a:1"]), 1_000, 0).unwrap();
        assert!(cache.consume(&keys(&["a:2", "a:1"]), 1_000, 0).is_err());
        cache.consume(&keys(&["a:2"]), 1_000, 0).unwrap();
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let mut cache = ReplayCache::new(2);
        cache.consume(&keys(&["a:1", "r:1"]), 1_000, 0).unwrap();
        assert_eq!(
            cache.consume(&keys(&["a:2", "r:2"]), 1_000, 10),
            Err(Refusal::Full)
        );
        assert_eq!(cache.len(), 2);
        // Once the first entries expire there is room again.
        cache.consume(&keys(&["a:2", "r:2"]), 3_000, 1_000).unwrap();
        assert_eq!(cache.len(), 2);
    }
}
