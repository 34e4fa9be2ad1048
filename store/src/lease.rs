//! Leases: a named duty (sending the agenda's reminders…) held by one node at a time when
//! several share the store, taken by compare-and-swap, with an expiry so that a dead holder's
//! duty passes to another node.

use serde::{Deserialize, Serialize};

use crate::backend::{Batch, Commit, Tree};
use crate::{Result, Store, StoreError};

/// duty name → [`Held`].
const LEASES: Tree = Tree("lease");

#[derive(Debug, Serialize, Deserialize)]
struct Held {
    holder: String,
    until: i64,
}

impl Store {
    /// Takes or extends the lease `name` for `holder` until `now + secs`, unless another holder
    /// has it and it has not expired. `true`: `holder` has the duty until then.
    pub fn lease(&self, name: &str, holder: &str, now: i64, secs: u64) -> Result<bool> {
        let raw = self.kv.get(LEASES, name.as_bytes())?;
        if let Some(raw) = &raw {
            let held: Held =
                serde_json::from_slice(raw).map_err(|e| StoreError::corrupt("lease", e))?;
            if held.holder != holder && held.until > now {
                return Ok(false);
            }
        }
        let held = Held {
            holder: holder.to_string(),
            until: now.saturating_add(secs as i64),
        };
        let mut batch = Batch::new();
        batch.check(LEASES, name.as_bytes(), raw);
        batch.put(LEASES, name.as_bytes(), crate::json(&held));
        Ok(self.kv.commit(&batch)? == Commit::Done)
    }

    /// Writes, in `batch`, the lease `name` held by `holder` until `until`: taken exactly when
    /// the batch's other writes land (e.g. with the record of the work it guards).
    pub fn lease_in(batch: &mut Batch, name: &str, holder: &str, until: i64) {
        let held = Held {
            holder: holder.to_string(),
            until,
        };
        batch.put(LEASES, name.as_bytes(), crate::json(&held));
    }

    /// Removes, in `batch`, the lease `name` (the work it guarded is done).
    pub fn release_in(batch: &mut Batch, name: &str) {
        batch.remove(LEASES, name.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use crate::{MasterKey, Store};

    #[test]
    fn one_holder_at_a_time_until_the_lease_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap();
        assert!(store.lease("reminders", "a", 100, 120).unwrap());
        assert!(
            !store.lease("reminders", "b", 150, 120).unwrap(),
            "held by a"
        );
        assert!(
            store.lease("other", "b", 150, 120).unwrap(),
            "leases are per name"
        );
        assert!(
            store.lease("reminders", "a", 160, 120).unwrap(),
            "a extends it"
        );
        assert!(!store.lease("reminders", "b", 279, 120).unwrap());
        assert!(
            store.lease("reminders", "b", 280, 120).unwrap(),
            "expired: b takes over"
        );
        assert!(!store.lease("reminders", "a", 281, 120).unwrap());
    }
}
