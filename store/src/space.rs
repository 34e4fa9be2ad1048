//! Free space on the file system of the data directory.
//!
//! sled 0.34 does not survive a write that meets a full disk: it keeps the error for good, and
//! its later flushes (including the one it makes when its handles are dropped) may wait for
//! ever. So the store never lets sled meet a full disk if it can help it: before each flush it
//! checks that [`RESERVE`] bytes stay free after the write, and refuses the write otherwise
//! (nothing of it is kept, see [`crate::SledBackend`]); the blob directory keeps the same
//! reserve, so that blobs fill the disk before the records that reference them would. Once
//! space is freed, the next write goes through: no restart.

use std::path::Path;

/// Bytes kept free on the data directory's file system: room for sled's log segments and
/// snapshots on top of the records being written.
pub const RESERVE: u64 = 8 * 1024 * 1024;

/// Bytes an unprivileged process may still write on the file system holding `dir`.
pub fn available(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string and `stat` a writable statvfs; statvfs only writes it.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    // Both are `fsblkcnt_t`/`c_ulong`: u64 on the 64-bit targets the hub runs on.
    #[allow(clippy::unnecessary_cast)]
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Whether `bytes` may be written in `dir` leaving [`RESERVE`] free; if not, why (no data in
/// the text, only sizes).
pub(crate) fn ensure_room(dir: &Path, bytes: u64) -> Result<(), String> {
    // A file system that cannot say (statvfs unsupported) is not refused on that ground.
    let Ok(free) = available(dir) else {
        return Ok(());
    };
    let needed = bytes.saturating_add(RESERVE);
    if free < needed {
        return Err(format!(
            "no space left on the data directory's file system: {} KiB free, {} KiB needed \
             (the write and a reserve of {} KiB)",
            free / 1024,
            needed / 1024,
            RESERVE / 1024
        ));
    }
    Ok(())
}
