//! Durability: a write the store acknowledged survives the process being killed (SIGKILL)
//! right after. The test re-executes its own binary as the child that writes; the parent
//! kills it mid-stream and reopens the data directory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mshub_store::{AccountId, AuditEvent, MasterKey, SpecialUse, Store, Uid};

const CHILD_DIR: &str = "MSHUB_CRASH_CHILD_DIR";
const CHILD_KEY: &str = "MSHUB_CRASH_CHILD_KEY";
const TEST_NAME: &str = "acknowledged_writes_survive_kill_9";
const ACCOUNT: AccountId = AccountId(1);
/// Acknowledged appends the parent waits for before killing the child.
const ACKS_BEFORE_KILL: usize = 20;
/// The child stops on its own after this many, should the parent never kill it.
const CHILD_ITERATIONS: u64 = 10_000;
/// Generous: a debug build on a loaded 2-core machine. Only reached if the child is stuck.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);

/// The content of the message the child appends with `marker`; the parent rebuilds it.
fn message(marker: &str) -> Vec<u8> {
    let mut m = format!(
        "From: lab@example.org\r\nTo: patient@example.org\r\nSubject: result {marker}\r\n\r\n"
    );
    for line in 0..40 {
        m.push_str(&format!(
            "{marker} line {line}: value {}\r\n",
            line * 7 % 13
        ));
    }
    m.into_bytes()
}

fn audit_subject(uid: Uid) -> String {
    format!("message:{uid}")
}

/// The child: appends (and audits) until killed, acknowledging each write on stdout.
fn run_child(dir: &Path) {
    let secret = std::env::var(CHILD_KEY).expect("the parent passes the master key");
    let store = Store::open(dir, MasterKey::new(&secret).unwrap()).unwrap();
    store.provision_account(ACCOUNT).unwrap();
    let inbox = store.special_mailbox(ACCOUNT, SpecialUse::Inbox).unwrap();
    let mut out = std::io::stdout().lock();
    // Ends the line libtest may have started ("test … ... ") so that acks start lines.
    out.write_all(b"\nchild ready\n").unwrap();
    out.flush().unwrap();
    for i in 0..CHILD_ITERATIONS {
        let marker = format!("m{}-{i}", std::process::id());
        let meta = store
            .append(inbox.id, &message(&marker), BTreeSet::new(), 1_700_000_000)
            .unwrap();
        // One write per line: a line shorter than PIPE_BUF reaches the pipe whole or not at all.
        let ack = format!("acked {} {marker}\n", meta.uid);
        out.write_all(ack.as_bytes())
            .and_then(|()| out.flush())
            .unwrap();
        let record = store
            .audit(AuditEvent::new(
                "crash-child",
                "message.append",
                audit_subject(meta.uid),
            ))
            .unwrap();
        let ack = format!("audited {} {}\n", record.seq, meta.uid);
        // A write error means the parent is gone: the panic ends the child.
        out.write_all(ack.as_bytes())
            .and_then(|()| out.flush())
            .unwrap();
    }
}

/// Kills (SIGKILL) and reaps the child when dropped, so a failing parent leaves no orphan.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Debug, Default)]
struct Acks {
    /// UID → marker of each acknowledged append, in order.
    appended: Vec<(Uid, String)>,
    /// Sequence number → UID of each acknowledged audit record.
    audited: BTreeMap<u64, Uid>,
}

impl Acks {
    /// Records one complete line of the child's output.
    fn record(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["acked", uid, marker] => self.appended.push((uid_of(uid), marker.to_string())),
            ["audited", seq, uid] => {
                self.audited.insert(seq.parse().unwrap(), uid_of(uid));
            }
            _ => {}
        }
    }
}

fn uid_of(s: &str) -> Uid {
    Uid::try_from(s.parse::<u32>().unwrap()).unwrap()
}

/// Which acknowledgement the parent kills the child right after: the newest write is then
/// an append in one round, an audit record in the other.
#[derive(Debug, Clone, Copy)]
enum KillAfter {
    Append,
    Audit,
}

/// Runs one child on `data` until it has acknowledged [`ACKS_BEFORE_KILL`] appends and audit
/// records, kills it with SIGKILL right after the acknowledgement `kill_after`, and returns
/// every acknowledgement it printed.
fn crash_round(data: &Path, secret: &str, kill_after: KillAfter) -> Acks {
    let logs = tempfile::tempdir().unwrap();
    let stderr_path = logs.path().join("child.stderr");
    let child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, data)
        .env(CHILD_KEY, secret)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let child_stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();

    // Lines come through a thread so that a stuck child fails the test instead of hanging it.
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match stdout.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                // A line cut short by the kill has no newline: it was never acknowledged.
                Ok(_) if line.ends_with('\n') => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
            }
        }
    });

    let mut acks = Acks::default();
    let deadline = Instant::now() + CHILD_DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(e) => panic!(
                "the child stopped acknowledging ({e}) after {acks:?}; its stderr:\n{}",
                child_stderr()
            ),
        };
        acks.record(&line);
        let enough =
            acks.appended.len() >= ACKS_BEFORE_KILL && acks.audited.len() >= ACKS_BEFORE_KILL;
        let just_acked = match kill_after {
            KillAfter::Append => line.starts_with("acked "),
            KillAfter::Audit => line.starts_with("audited "),
        };
        if enough && just_acked {
            break;
        }
    }

    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(
        !status.success(),
        "the child finished instead of being killed: {status}"
    );
    // Everything the child printed before it died was acknowledged too.
    reader.join().unwrap();
    for line in rx.try_iter() {
        acks.record(&line);
    }

    let uids: Vec<u32> = acks.appended.iter().map(|(u, _)| u.get()).collect();
    assert!(
        uids.windows(2).all(|w| w[1] == w[0] + 1),
        "one appender gets consecutive UIDs: {uids:?}"
    );
    let seqs: Vec<u64> = acks.audited.keys().copied().collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    acks
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        return run_child(Path::new(&dir));
    }

    let data = tempfile::tempdir().unwrap();
    let secret = MasterKey::generate();
    // Two crashes of the same directory: the second child recovers from the first crash
    // and continues from there.
    let first = crash_round(data.path(), &secret, KillAfter::Append);
    let second = crash_round(data.path(), &secret, KillAfter::Audit);
    assert!(
        second.appended[0].0 > first.appended.last().unwrap().0,
        "the second child reused UIDs acknowledged by the first"
    );
    let appended: Vec<&(Uid, String)> = first.appended.iter().chain(&second.appended).collect();
    let mut audited = first.audited.clone();
    audited.extend(second.audited.iter().map(|(s, u)| (*s, *u)));

    let store = Store::open(data.path(), MasterKey::new(&secret).unwrap()).unwrap();
    let inbox = store.special_mailbox(ACCOUNT, SpecialUse::Inbox).unwrap();
    let messages = store.messages(inbox.id).unwrap();
    for (uid, marker) in &appended {
        let meta = store.message(inbox.id, *uid).unwrap();
        assert!(meta.is_some(), "acknowledged UID {uid} ({marker}) was lost");
        assert_eq!(
            store.read_message(inbox.id, *uid).unwrap(),
            message(marker),
            "UID {uid} came back with other content"
        );
    }
    // At most the one append in flight at each kill can be present without its ack.
    assert!(
        (appended.len()..=appended.len() + 2).contains(&messages.len()),
        "{} acknowledged, {} present",
        appended.len(),
        messages.len()
    );
    for meta in &messages {
        assert!(
            meta.uid < inbox.uid_next,
            "UID {} ≥ UIDNEXT {}",
            meta.uid,
            inbox.uid_next
        );
        assert!(meta.modseq <= inbox.highest_modseq);
        // Committed but unacknowledged is fine; committed but unreadable is not.
        store.read_message(inbox.id, meta.uid).unwrap();
    }
    assert_eq!(inbox.exists as usize, messages.len());
    assert_eq!(inbox.size, messages.iter().map(|m| m.size).sum::<u64>());
    // UIDs are reserved durably in blocks before use, and each process resumes above its
    // mailbox's reservation (a UID shown before the kill is never given again): each of the
    // two children may have skipped at most a block.
    let skipped = inbox.uid_next.get() as usize - (messages.len() + 1);
    assert!(
        skipped <= 2 * (mshub_store::mailbox::RESERVE_BLOCK as usize + 1),
        "{skipped} UIDs skipped"
    );

    // audit_record_acknowledged_survives_kill_9, folded in: the chain is intact and holds
    // every acknowledged record.
    let report = store.verify_audit().unwrap();
    let last_acked = *audited.keys().last().unwrap();
    assert!(
        report.records >= last_acked,
        "{} audit records, {last_acked} acknowledged",
        report.records
    );
    assert!(
        report.records <= last_acked + 1,
        "at most one record is in flight at the kill"
    );
    let records = store.audit_records(0, report.records as usize).unwrap();
    for (seq, uid) in &audited {
        let record = &records[*seq as usize - 1];
        assert_eq!(record.seq, *seq);
        assert_eq!(
            record.event.subject,
            audit_subject(*uid),
            "audit record {seq}"
        );
    }
}
