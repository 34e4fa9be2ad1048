//! Recently used blobs, opened, in memory: what makes a second read of a message cost no
//! public-key decryption. IMAP clients fetch the same headers again and again (every client of a
//! mailbox, every resynchronisation), the webmail renders what IMAP fetched, and a message just
//! delivered is read by its filers and its reader soon after — so delivery puts its plaintext
//! here too.
//!
//! Only the process's memory holds these bytes, never the data directory (the at-rest rule is
//! about what a copy of the directory reveals). Entries are keyed by owner and blob: a read with
//! the wrong owner misses, as it would fail to decrypt. Bounded by bytes, oldest out first;
//! blobs larger than [`MAX_ENTRY`] are not kept (one attachment would push out thousands of
//! messages).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::{AccountId, BlobId};

/// Largest blob kept.
pub const MAX_ENTRY: usize = 256 * 1024;

#[derive(Default)]
struct Inner {
    /// Blob → its owner and plaintext.
    entries: HashMap<BlobId, (AccountId, Arc<[u8]>)>,
    order: VecDeque<BlobId>,
    bytes: usize,
}

pub(crate) struct PlainCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl PlainCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    pub(crate) fn get(&self, owner: AccountId, id: BlobId) -> Option<Arc<[u8]>> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .get(&id)
            .filter(|(o, _)| *o == owner)
            .map(|(_, plain)| plain.clone())
    }

    pub(crate) fn put(&self, owner: AccountId, id: BlobId, plain: &[u8]) {
        if plain.len() > MAX_ENTRY || plain.len() > self.capacity {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.entries.contains_key(&id) {
            return;
        }
        while inner.bytes + plain.len() > self.capacity {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some((_, bytes)) = inner.entries.remove(&old) {
                inner.bytes -= bytes.len();
            }
        }
        inner.bytes += plain.len();
        inner.entries.insert(id, (owner, Arc::from(plain)));
        inner.order.push_back(id);
        // Removed blobs leave their place in `order`; drop those now and then.
        if inner.order.len() > 2 * inner.entries.len() + 1024 {
            let Inner { entries, order, .. } = &mut *inner;
            order.retain(|k| entries.contains_key(k));
        }
    }

    pub(crate) fn remove(&self, id: BlobId) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, bytes)) = inner.entries.remove(&id) {
            inner.bytes -= bytes.len();
        }
        // Stale keys in `order` are skipped when they come up for eviction.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_bytes_oldest_out_first_and_keyed_by_owner() {
        let cache = PlainCache::new(10);
        let (a, b, c) = (BlobId::random(), BlobId::random(), BlobId::random());
        cache.put(AccountId(1), a, b"12345");
        cache.put(AccountId(1), b, b"12345");
        assert!(cache.get(AccountId(1), a).is_some());
        assert!(cache.get(AccountId(2), a).is_none(), "another owner misses");
        cache.put(AccountId(1), c, b"123");
        assert!(cache.get(AccountId(1), a).is_none(), "the oldest went");
        assert_eq!(&*cache.get(AccountId(1), c).unwrap(), b"123");
        cache.remove(c);
        assert!(cache.get(AccountId(1), c).is_none());
        cache.put(AccountId(1), a, &[0u8; 11]);
        assert!(
            cache.get(AccountId(1), a).is_none(),
            "larger than the whole cache"
        );
    }
}
