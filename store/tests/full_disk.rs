//! The key-value store on a file system that fills up, then is freed: a write refused is not
//! readable, a write acknowledged is, the store reports itself unhealthy meanwhile, and it
//! writes again on its own once space is back, without being reopened by its owner.
//!
//! A real full file system needs a small one: as root the test mounts a tmpfs of
//! [`FS_BYTES`] in a temporary directory (and unmounts it). Otherwise it says it did not run,
//! and the same sequence runs with the backend's fault hook.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mshub_store::{space, Backend, Batch, Commit, Health, SledBackend, Tree};

const T: Tree = Tree("t");
const FS_BYTES: u64 = 40 * 1024 * 1024;
/// What the store may write before the file system counts as full.
const ROOM: u64 = 4 * 1024 * 1024;
/// A value of the size of a small message with its records.
const VALUE_BYTES: usize = 16 * 1024;
/// The goal: writes succeed again within this long after space is freed.
const RECOVERY_GOAL: Duration = Duration::from_secs(5);

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { getuid() == 0 }
}

extern "C" {
    fn getuid() -> u32;
}

/// A tmpfs of `bytes` mounted on a fresh temporary directory, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(bytes: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs as root");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn record(i: usize) -> Batch {
    let mut batch = Batch::new();
    batch.put(T, format!("k{i:06}"), vec![(i % 251) as u8; VALUE_BYTES]);
    batch
}

#[derive(Debug, Default)]
struct Report {
    sent: usize,
    acknowledged: usize,
    refused: usize,
    found: usize,
    missing: usize,
    refused_but_readable: usize,
    recovery: Option<Duration>,
}

/// Writes records until `full()` makes writes fail, checks what is readable, frees space with
/// `free()`, and waits for writes to succeed again.
fn fill_then_free(
    kv: &SledBackend,
    mut full_now: impl FnMut(usize) -> bool,
    free: impl FnOnce(),
) -> Report {
    let mut report = Report::default();
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    let mut i = 0;
    // Until a few writes in a row are refused (the disk is full).
    while refused.len() < 5 && i < 100_000 {
        full_now(i);
        report.sent += 1;
        match kv.commit(&record(i)) {
            Ok(Commit::Done) => acked.push(i),
            Ok(Commit::Conflict) => unreachable!("no checks"),
            Err(_) => refused.push(i),
        }
        i += 1;
    }
    assert!(!refused.is_empty(), "the file system never filled");
    assert!(
        matches!(kv.health(), Health::WritesFailing { .. }),
        "unhealthy while writes fail"
    );
    report.acknowledged = acked.len();
    report.refused = refused.len();
    for &a in &acked {
        if kv.get(T, format!("k{a:06}").as_bytes()).unwrap().is_some() {
            report.found += 1;
        } else {
            report.missing += 1;
        }
    }
    for &r in &refused {
        if kv.get(T, format!("k{r:06}").as_bytes()).unwrap().is_some() {
            report.refused_but_readable += 1;
        }
    }
    free();
    let freed = Instant::now();
    while freed.elapsed() < Duration::from_secs(30) {
        report.sent += 1;
        if matches!(kv.commit(&record(i)), Ok(Commit::Done)) {
            report.acknowledged += 1;
            report.recovery = Some(freed.elapsed());
            break;
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        kv.health(),
        Health::Healthy,
        "healthy once a write succeeds"
    );
    report
}

fn check(report: &Report) {
    println!("full key-value store: {report:?}");
    assert_eq!(report.missing, 0, "an acknowledged write is readable");
    assert_eq!(report.refused_but_readable, 0, "a refused write is not");
    let recovery = report
        .recovery
        .expect("writes succeed again once space is freed");
    assert!(recovery < RECOVERY_GOAL, "recovered in {recovery:?}");
}

#[test]
fn a_full_file_system_refuses_writes_cleanly_and_the_store_recovers_when_freed() {
    if !is_root() {
        // Straight to the terminal: a passing test's printed output is captured, and a case that
        // did not run must not pass unseen.
        let _ = writeln!(
            std::io::stderr(),
            "NOT RUN: a_full_file_system_… needs root to mount a small tmpfs; \
             the fault-hook case below covers the same sequence"
        );
        return;
    }
    let fs = SmallFs::mount(FS_BYTES);
    let kv_dir = fs.path().join("kv");
    let filler = fs.path().join("filler");
    let report = {
        let kv = SledBackend::open(&kv_dir).unwrap();
        // Most of the space goes to a file first: the store fills the rest quickly.
        let free = space::available(fs.path()).unwrap();
        let ballast = vec![0u8; (free - space::RESERVE - ROOM) as usize];
        std::fs::write(&filler, &ballast).unwrap();
        let report = fill_then_free(&kv, |_| false, || std::fs::remove_file(&filler).unwrap());
        check(&report);
        report
    };
    // Reopened from disk: what was acknowledged is there, nothing refused came back.
    let kv = SledBackend::open(&kv_dir).unwrap();
    let stored = kv.scan(T, b"k", None, None).unwrap().len();
    assert_eq!(
        stored, report.acknowledged,
        "exactly the acknowledged writes"
    );
}

#[test]
fn with_the_fault_hook_writes_fail_cleanly_and_the_store_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let kv = SledBackend::open(dir.path()).unwrap();
    let report = fill_then_free(
        &kv,
        |i| {
            if i == 40 {
                kv.inject_write_faults(true);
            }
            false
        },
        || kv.inject_write_faults(false),
    );
    check(&report);
    assert_eq!(report.acknowledged, 41);
}
