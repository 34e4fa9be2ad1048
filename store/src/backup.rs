//! Online backups of the embedded store: one file holding every record and every sealed blob
//! file as of one moment, taken while the hub runs, and restored into an empty data directory.
//!
//! The file: `MSHUB-BACKUP 1\n`, then entries — `1 ‖ tree ‖ key ‖ value` for a record,
//! `2 ‖ path ‖ bytes` for a blob file under `blobs/` (each field a big-endian u64 length and
//! its bytes) — then `0 ‖ SHA-256 of everything before`. Nothing in it is opened: records
//! hold what the store holds (account keys sealed under the master key, messages and
//! documents sealed under account keys), so a backup is as safe as the store and useless
//! without the master key.
//!
//! Consistency: records and blob files are copied while no batch applies
//! ([`Backend::snapshot`]); readers pause with writers during the copy. Blob files removed
//! during it were no longer referenced; files added were not yet: both are harmless. A store
//! on PostgreSQL is backed up with `pg_dump` and a copy of its bucket (docs/scale-out.md).

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::backend::{Backend, Batch, Tree};
use crate::sled_backend::SledBackend;
use crate::{Result, Store, StoreError};

const MAGIC: &[u8] = b"MSHUB-BACKUP 1\n";
const RECORD: u8 = 1;
const BLOB: u8 = 2;
const END: u8 = 0;
/// Longest field read back (a blob is at most the message size limit, far below).
const MAX_FIELD: u64 = 1 << 30;

/// What a backup holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupReport {
    pub records: u64,
    pub blob_files: u64,
    pub bytes: u64,
}

/// Writes through a SHA-256 and a byte count.
struct Hashing<'a> {
    out: &'a mut dyn Write,
    hash: Sha256,
    bytes: u64,
}

impl Hashing<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .map_err(|e| StoreError::io(Path::new("backup"), e))
    }

    fn field(&mut self, bytes: &[u8]) -> Result<()> {
        self.put(&(bytes.len() as u64).to_be_bytes())?;
        self.put(bytes)
    }
}

impl Store {
    /// Writes a backup of this (running) store to `out`. Refused on a backend that cannot take
    /// a consistent copy itself (PostgreSQL).
    pub fn backup(&self, out: &mut dyn Write) -> Result<BackupReport> {
        let mut w = Hashing {
            out,
            hash: Sha256::new(),
            bytes: 0,
        };
        w.put(MAGIC)?;
        let mut report = BackupReport::default();
        let blobs_dir = self.dir().join("blobs");
        let taken = {
            let w = std::cell::RefCell::new(&mut w);
            let report = std::cell::RefCell::new(&mut report);
            self.kv.snapshot(
                &mut |tree, key, value| {
                    let mut w = w.borrow_mut();
                    w.put(&[RECORD])?;
                    w.field(tree.as_bytes())?;
                    w.field(key)?;
                    w.field(value)?;
                    report.borrow_mut().records += 1;
                    Ok(())
                },
                &mut || {
                    let mut w = w.borrow_mut();
                    let mut report = report.borrow_mut();
                    copy_blob_files(&blobs_dir, &mut w, &mut report)
                },
            )
        };
        match taken {
            None => {
                return Err(StoreError::Backend(
                    "this store's backend takes its own backups (PostgreSQL: pg_dump and a copy \
                     of the bucket)"
                        .into(),
                ))
            }
            Some(r) => r?,
        }
        let digest = w.hash.clone().finalize();
        w.put(&[END])?;
        w.put(&digest)?;
        w.out
            .flush()
            .map_err(|e| StoreError::io(Path::new("backup"), e))?;
        report.bytes = w.bytes;
        Ok(report)
    }
}

/// Every blob file under `root` (`ab/abcdef…`), skipping temporary files and any that went
/// away meanwhile (no longer referenced).
fn copy_blob_files(root: &Path, w: &mut Hashing<'_>, report: &mut BackupReport) -> Result<()> {
    let Ok(dirs) = std::fs::read_dir(root) else {
        return Ok(());
    };
    let mut dirs: Vec<_> = dirs.flatten().collect();
    dirs.sort_by_key(|d| d.file_name());
    for dir in dirs {
        if !dir.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        let mut files: Vec<_> = files.flatten().collect();
        files.sort_by_key(|f| f.file_name());
        for file in files {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(bytes) = std::fs::read(file.path()) else {
                continue;
            };
            let path = format!("{}/{name}", dir.file_name().to_string_lossy());
            w.put(&[BLOB])?;
            w.field(path.as_bytes())?;
            w.field(&bytes)?;
            report.blob_files += 1;
        }
    }
    Ok(())
}

/// One entry of a backup as it is read.
enum Entry {
    Record {
        tree: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Blob {
        path: String,
        bytes: Vec<u8>,
    },
}

/// Reads through a SHA-256 and a byte count.
struct Reader<'a> {
    input: &'a mut dyn Read,
    hash: Sha256,
    bytes: u64,
}

fn bad(why: &str) -> StoreError {
    StoreError::corrupt("backup", why.to_string())
}

impl Reader<'_> {
    fn exact(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.input
            .read_exact(&mut buf)
            .map_err(|_| bad("cut short: not a whole backup"))?;
        self.hash.update(&buf);
        self.bytes += n as u64;
        Ok(buf)
    }

    fn field(&mut self) -> Result<Vec<u8>> {
        let len = u64::from_be_bytes(self.exact(8)?.try_into().expect("8 bytes"));
        if len > MAX_FIELD {
            return Err(bad("a field longer than any the store holds"));
        }
        self.exact(len as usize)
    }

    fn text(&mut self) -> Result<String> {
        String::from_utf8(self.field()?).map_err(|_| bad("a name that is not UTF-8"))
    }
}

/// Reads a backup through, checking its form and, at the end, its SHA-256; `each` sees every
/// entry before the SHA-256 is checked (restore writes aside and keeps nothing if it fails).
fn read_backup(
    input: &mut dyn Read,
    each: &mut dyn FnMut(Entry) -> Result<()>,
) -> Result<BackupReport> {
    let mut r = Reader {
        input,
        hash: Sha256::new(),
        bytes: 0,
    };
    if r.exact(MAGIC.len())? != MAGIC {
        return Err(bad("not an mshub backup (or of another version)"));
    }
    let mut report = BackupReport::default();
    loop {
        let digest_so_far = r.hash.clone().finalize();
        match r.exact(1)?[0] {
            RECORD => {
                let tree = r.text()?;
                let key = r.field()?;
                let value = r.field()?;
                report.records += 1;
                each(Entry::Record { tree, key, value })?;
            }
            BLOB => {
                let path = r.text()?;
                let bytes = r.field()?;
                let safe = path.split('/').count() == 2
                    && path
                        .split('/')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
                if !safe {
                    return Err(bad("a blob file name outside the blob directory"));
                }
                report.blob_files += 1;
                each(Entry::Blob { path, bytes })?;
            }
            END => {
                let digest = r.exact(32)?;
                if digest.as_slice() != digest_so_far.as_slice() {
                    return Err(bad(
                        "its SHA-256 does not match: the file was changed or damaged",
                    ));
                }
                let mut rest = [0u8; 1];
                if r.input
                    .read(&mut rest)
                    .map_err(|e| StoreError::io(Path::new("backup"), e))?
                    != 0
                {
                    return Err(bad("bytes after its end"));
                }
                report.bytes = r.bytes;
                return Ok(report);
            }
            _ => return Err(bad("an entry of an unknown kind")),
        }
    }
}

/// Checks a backup whole (form, SHA-256) without restoring it.
pub fn verify(input: &mut dyn Read) -> Result<BackupReport> {
    read_backup(input, &mut |_| Ok(()))
}

/// Restores a backup into `dir`, which must not hold a store yet: written aside in
/// `dir.restoring`, renamed to `dir` only once the whole file was read and its SHA-256
/// matched, so a damaged backup leaves nothing behind.
pub fn restore(input: &mut dyn Read, dir: &Path) -> Result<BackupReport> {
    if dir.join("kv").exists() {
        return Err(StoreError::Backend(format!(
            "{} already holds a store: restore into an empty data directory",
            dir.display()
        )));
    }
    let aside = dir.with_extension("restoring");
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(|e| StoreError::io(&aside, e))?;
    }
    std::fs::create_dir_all(aside.join("blobs")).map_err(|e| StoreError::io(&aside, e))?;
    let report = {
        let kv = SledBackend::open(&aside.join("kv"))?;
        let mut batch = Batch::new();
        // Tree names are few: each is made 'static once.
        let mut trees: std::collections::HashMap<String, &'static str> = Default::default();
        let mut result = read_backup(input, &mut |entry| {
            match entry {
                Entry::Record { tree, key, value } => {
                    let tree = *trees
                        .entry(tree)
                        .or_insert_with_key(|t| Box::leak(t.clone().into_boxed_str()));
                    batch.put(Tree(tree), key, value);
                    if batch.writes.len() >= 1000 {
                        commit(&kv, std::mem::take(&mut batch))?;
                    }
                }
                Entry::Blob { path, bytes } => {
                    let file = aside.join("blobs").join(&path);
                    if let Some(parent) = file.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
                    }
                    write_synced(&file, &bytes)?;
                }
            }
            Ok(())
        });
        if result.is_ok() {
            result = commit(&kv, batch).and_then(|()| kv.close()).and(result);
        }
        drop(kv);
        result
    };
    match report {
        Ok(report) => {
            std::fs::rename(&aside, dir).map_err(|e| StoreError::io(dir, e))?;
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&aside);
            Err(e)
        }
    }
}

fn commit(kv: &SledBackend, batch: Batch) -> Result<()> {
    if batch.writes.is_empty() {
        return Ok(());
    }
    match kv.apply(&batch)? {
        crate::Applied::Done(ticket) => kv.sync(ticket),
        crate::Applied::Conflict => Err(StoreError::Contention(1)),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| StoreError::io(path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| StoreError::io(path, e))
}
