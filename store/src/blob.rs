//! Blobs: raw messages and documents, written once and addressed by a random id. What the blob
//! store holds is already sealed (see [`crate::keyring`]); it never sees plaintext.
//!
//! Invariants:
//! - `put` returns only after the bytes and the directory entry are fsync'd;
//! - a blob is first written under a temporary name (`.<id>.tmp`), removed if the write fails;
//!   those a crash left behind are removed when the store opens (the data directory is then
//!   this process's alone: sled's lock);
//! - a blob is refused, before anything is written, when it would leave less than
//!   [`crate::space::RESERVE`] free: the key-value store's records need that room.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Result, StoreError};

/// A blob's address: 128 random bits, in lowercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobId([u8; 16]);

impl BlobId {
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub fn random() -> Self {
        let mut b = [0u8; 16];
        sequoia_openpgp::crypto::random(&mut b).expect("the system random generator is available");
        Self(b)
    }
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl TryFrom<&str> for BlobId {
    type Error = StoreError;
    fn try_from(s: &str) -> Result<Self> {
        let bad = || StoreError::corrupt("blob id", format!("{s:?} is not 32 hex digits"));
        if s.len() != 32 {
            return Err(bad());
        }
        let mut b = [0u8; 16];
        for (i, out) in b.iter_mut().enumerate() {
            *out = u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(Self(b))
    }
}

impl TryFrom<String> for BlobId {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self> {
        Self::try_from(s.as_str())
    }
}

impl From<BlobId> for String {
    fn from(id: BlobId) -> String {
        id.to_string()
    }
}

/// Where sealed blobs live. The embedded default is a directory ([`FsBlobStore`]); an
/// S3-compatible store implements the same trait for the scale-out path.
pub trait BlobStore: Send + Sync + 'static {
    /// Stores the bytes under `id`, durably, before returning.
    fn put(&self, id: BlobId, bytes: &[u8]) -> Result<()>;
    fn get(&self, id: BlobId) -> Result<Vec<u8>>;
    /// Removing a blob that does not exist is not an error.
    fn delete(&self, id: BlobId) -> Result<()>;
}

/// Blobs as files `blobs/ab/abcdef…`, fanned out on the first byte.
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Opens the blob directory, and removes the temporary files an earlier run left.
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).map_err(|e| StoreError::io(root, e))?;
        let store = Self {
            root: root.to_path_buf(),
        };
        let swept = store.sweep_temporary(std::time::SystemTime::now())?;
        if swept > 0 {
            tracing::info!(
                files = swept,
                "removed temporary blob files left by an interrupted write"
            );
        }
        Ok(store)
    }

    /// Removes the temporary files (`.<id>.tmp`) last written before `started`; returns how
    /// many. A later one may be a write in progress.
    fn sweep_temporary(&self, started: std::time::SystemTime) -> Result<usize> {
        let mut swept = 0;
        let dirs = fs::read_dir(&self.root).map_err(|e| StoreError::io(&self.root, e))?;
        for dir in dirs.flatten() {
            if !dir.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(files) = fs::read_dir(dir.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                if !(name.starts_with('.') && name.ends_with(".tmp")) {
                    continue;
                }
                let older = file
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m < started);
                if older && fs::remove_file(file.path()).is_ok() {
                    swept += 1;
                }
            }
        }
        Ok(swept)
    }

    fn path(&self, id: BlobId) -> PathBuf {
        let name = id.to_string();
        self.root.join(&name[..2]).join(name)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

impl BlobStore for FsBlobStore {
    fn put(&self, id: BlobId, bytes: &[u8]) -> Result<()> {
        let path = self.path(id);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
            sync_dir(&self.root)?;
        }
        crate::space::ensure_room(&self.root, bytes.len() as u64).map_err(|reason| {
            StoreError::io(
                &dir,
                std::io::Error::new(std::io::ErrorKind::StorageFull, reason),
            )
        })?;
        // Write to a temporary name, fsync, rename, fsync the directory: a crash leaves either
        // no blob or the whole blob, never a torn one under its final name.
        let tmp = dir.join(format!(".{id}.tmp"));
        let written = fs::File::create(&tmp)
            .and_then(|mut file| {
                file.write_all(bytes)?;
                file.sync_all()
            })
            .map_err(|e| StoreError::io(&tmp, e))
            .and_then(|()| fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e)));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        sync_dir(&dir)
    }

    fn get(&self, id: BlobId) -> Result<Vec<u8>> {
        let path = self.path(id);
        fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NoSuchBlob(id),
            _ => StoreError::io(&path, e),
        })
    }

    fn delete(&self, id: BlobId) -> Result<()> {
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_id_round_trips_through_its_text_form() {
        let id = BlobId::random();
        assert_eq!(BlobId::try_from(id.to_string().as_str()).unwrap(), id);
        assert!(BlobId::try_from("zz").is_err());
        assert!(BlobId::try_from("g".repeat(32).as_str()).is_err());
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file_and_opening_sweeps_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobStore::open(dir.path()).unwrap();
        let id = BlobId::random();
        // The rename fails: a directory holds the blob's final name.
        let path = blobs.path(id);
        fs::create_dir_all(path.join("in-the-way")).unwrap();
        assert!(blobs.put(id, b"sealed bytes").is_err());
        let fan_out = path.parent().unwrap();
        let names = |d: &Path| -> Vec<String> {
            let mut n: Vec<String> = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(fan_out), [id.to_string()], "no .tmp left");
        // Left by a crash: removed at the next open; a blob proper is kept.
        let kept = BlobId::random();
        blobs.put(kept, b"kept").unwrap();
        let stale = blobs
            .path(kept)
            .with_file_name(format!(".{}.tmp", BlobId::random()));
        fs::write(&stale, b"torn").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let reopened = FsBlobStore::open(dir.path()).unwrap();
        assert!(!stale.exists());
        assert_eq!(reopened.get(kept).unwrap(), b"kept");
    }

    #[test]
    fn put_get_delete() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobStore::open(dir.path()).unwrap();
        let id = BlobId::random();
        blobs.put(id, b"sealed bytes").unwrap();
        assert_eq!(blobs.get(id).unwrap(), b"sealed bytes");
        blobs.delete(id).unwrap();
        assert!(matches!(blobs.get(id), Err(StoreError::NoSuchBlob(_))));
        blobs.delete(id).unwrap();
    }
}
