//! The store's record format version, on either backend: what an upgrade reads at open.
//!
//! `meta/format` holds the version (u32, big-endian) of the records' encoding. At open:
//! - none (a store written before versions were kept, or a new one): this release's records
//!   are a superset of what came before — every field added since is optional and filled on
//!   first use (e.g. a mailbox's flag counts, its UID reservation) — so the version is
//!   recorded as is;
//! - older: each migration after it runs in order, then the version is recorded;
//! - the same: nothing to do;
//! - newer: refused, before anything is written — an older mshub would misread records it
//!   does not know (a downgrade goes through a backup).
//!
//! A migration must be idempotent (a crash may run it twice) and never edit a released
//! entry of [`MIGRATIONS`]: add the next one. `tests/fixtures/store-v1/` is a store written
//! by the release that introduced version 1; every later release must open it.

use crate::backend::{Backend, Batch, Tree};
use crate::{Result, Store, StoreError};

const META: Tree = Tree("meta");
const FORMAT: &[u8] = b"format";

/// The record format this release writes.
pub const FORMAT_VERSION: u32 = 1;

/// Migrations by the version they bring the store to, in order.
type Migration = fn(&Store) -> Result<()>;
const MIGRATIONS: &[(u32, Migration)] = &[
    // 1: the first version recorded; earlier stores read as they are.
    (1, |_| Ok(())),
];

/// The version recorded in `kv` (0: none yet).
fn recorded(kv: &dyn Backend) -> Result<u32> {
    Ok(kv
        .get(META, FORMAT)?
        .and_then(|raw| <[u8; 4]>::try_from(raw.as_slice()).ok())
        .map_or(0, u32::from_be_bytes))
}

/// Refuses a store written by a newer release, before anything is read or written.
pub(crate) fn refuse_newer(kv: &dyn Backend) -> Result<()> {
    match recorded(kv)? {
        found if found > FORMAT_VERSION => Err(StoreError::FormatTooNew {
            found,
            known: FORMAT_VERSION,
        }),
        _ => Ok(()),
    }
}

impl Store {
    /// The record format version recorded in the store (0: none yet).
    pub fn format_version(&self) -> Result<u32> {
        recorded(&*self.kv)
    }

    /// Brings the store to [`FORMAT_VERSION`], or refuses a newer one (see the module doc).
    pub(crate) fn upgrade_format(&self) -> Result<()> {
        refuse_newer(&*self.kv)?;
        let found = self.format_version()?;
        if found == FORMAT_VERSION {
            return Ok(());
        }
        for (version, migrate) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
            migrate(self)?;
            tracing::info!(from = found, to = version, "store records migrated");
        }
        // Several nodes may open together: whoever records it first, the value is the same.
        let raw = self.kv.get(META, FORMAT)?;
        let mut batch = Batch::new();
        batch.check(META, FORMAT, raw);
        batch.put(META, FORMAT, FORMAT_VERSION.to_be_bytes());
        let _ = self.kv.commit(&batch)?;
        self.upgrade_checked()
    }

    /// After recording: what is recorded now is this release's (or a newer node's, refused).
    fn upgrade_checked(&self) -> Result<()> {
        match self.format_version()? {
            v if v == FORMAT_VERSION => Ok(()),
            found => Err(StoreError::FormatTooNew {
                found,
                known: FORMAT_VERSION,
            }),
        }
    }
}
