//! Independent IMAP clients against the real binary over implicit TLS, the hub's certificate
//! verified: `mbsync` (isync) syncing a 1,000-message INBOX both ways, and `fetchmail`
//! retrieving and deleting messages. The server side is read and changed with Python's imaplib
//! (tests/e2e/py/imap_interop.py). Each test is skipped, saying so, when its client is missing
//! (scripts/install-deps --tests installs both).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::*;

fn installed(program: &str, version_flag: &str) -> bool {
    Command::new(program)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs tests/e2e/py/imap_interop.py as dr.martin against `imaps`; returns its stdout.
fn interop_py(hub: &Instance, imaps: u16, action: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/py/imap_interop.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["--port", &imaps.to_string()])
        .args(["--cafile", hub.ca.to_str().unwrap()])
        .args(["--user", MARTIN.0, "--password", MARTIN.1])
        .args(action)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.ends_with("DONE\n"),
        "imap_interop.py {action:?} failed:\n{stdout}{}",
        text(&out.stderr)
    );
    stdout
}

/// The INBOX as imaplib sees it: (uid, subject, flags) per message.
fn server_state(hub: &Instance, imaps: u16) -> Vec<(u32, String, String)> {
    let out = interop_py(hub, imaps, &["state"]);
    let count: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("COUNT "))
        .expect("a COUNT line")
        .parse()
        .unwrap();
    let messages: Vec<(u32, String, String)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("MSG "))
        .map(|l| {
            let mut words = l.split(' ');
            let uid = words.next().unwrap().parse().unwrap();
            let subject = words.next().unwrap().to_string();
            let flags = words.next().unwrap_or("-").to_string();
            (uid, subject, flags)
        })
        .collect();
    assert_eq!(messages.len(), count, "one MSG line per message:\n{out}");
    messages
}

fn output_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Every message file of a Maildir folder (new/ and cur/).
fn maildir_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(folder.join(sub)) {
            files.extend(entries.map(|e| e.unwrap().path()));
        }
    }
    files.sort();
    files
}

fn mbsync(rc: &Path, home: &Path) -> Output {
    Command::new("mbsync")
        .args(["-c", rc.to_str().unwrap(), "-a"])
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("mbsync runs")
}

#[test]
fn mbsync_syncs_a_thousand_messages_both_ways() {
    if !installed("mbsync", "--version") {
        println!("SKIPPED mbsync_syncs_a_thousand_messages_both_ways: mbsync (isync) is missing");
        return;
    }
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let out = interop_py(&hub, imaps, &["fill", "1000", "srv"]);
    assert!(out.contains("APPENDED 1000"), "{out}");

    let work = hub.dir.join("mbsync");
    let maildir = work.join("Mail");
    std::fs::create_dir_all(&maildir).unwrap();
    let rc = work.join("mbsyncrc");
    // mbsync checks the certificate's names against Host: the demo certificate names both
    // localhost and the IP address 127.0.0.1, and both work (checked by hand with mbsync 1.4.4).
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount hub\n\
             Host localhost\n\
             Port {imaps}\n\
             User {user}\n\
             Pass {pass}\n\
             SSLType IMAPS\n\
             CertificateFile {cert}\n\
             \n\
             IMAPStore hub-remote\n\
             Account hub\n\
             \n\
             MaildirStore local\n\
             Path {mail}/\n\
             Inbox {mail}/INBOX\n\
             \n\
             Channel inbox\n\
             Far :hub-remote:INBOX\n\
             Near :local:INBOX\n\
             Create Both\n\
             Expunge Both\n\
             SyncState *\n",
            user = MARTIN.0,
            pass = MARTIN.1,
            cert = hub.ca.display(),
            mail = maildir.display(),
        ),
    )
    .unwrap();

    // 1. Server to client: the 1,000 messages land in the Maildir.
    output_ok("first mbsync", &mbsync(&rc, &work));
    let inbox = maildir.join("INBOX");
    let files = maildir_files(&inbox);
    assert_eq!(files.len(), 1000, "files after the first sync");
    let sample = std::fs::read(&files[0]).unwrap();
    assert!(contains(&sample, "Subject: srv-"), "{}", text(&sample));

    // 2. Client to server: 50 new local messages, one seen and one flagged.
    for i in 0..50 {
        let m = message(
            MARTIN.0,
            MARTIN.0,
            &format!("local-{i}"),
            &[],
            "written locally",
        );
        std::fs::write(inbox.join(format!("new/1764000000.M{i}P1.client")), m).unwrap();
    }
    let files = maildir_files(&inbox);
    let flag = |file: &Path, flags: &str| -> String {
        let name = file.file_name().unwrap().to_str().unwrap();
        let base = name.split(":2,").next().unwrap();
        let renamed = inbox.join("cur").join(format!("{base}:2,{flags}"));
        std::fs::rename(file, &renamed).unwrap();
        let m = std::fs::read(&renamed).unwrap();
        text(&m)
            .lines()
            .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            .unwrap()
    };
    let srv: Vec<&PathBuf> = files
        .iter()
        .filter(|f| contains(&std::fs::read(f).unwrap(), "Subject: srv-"))
        .collect();
    let seen_subject = flag(srv[0], "S");
    let flagged_subject = flag(srv[1], "F");
    output_ok("second mbsync", &mbsync(&rc, &work));
    let state = server_state(&hub, imaps);
    assert_eq!(state.len(), 1050, "INBOX after the second sync");
    assert_eq!(
        state
            .iter()
            .filter(|(_, s, _)| s.starts_with("local-"))
            .count(),
        50
    );
    let flags_of = |subject: &str| -> String {
        state
            .iter()
            .find(|(_, s, _)| s == subject)
            .map(|(_, _, f)| f.clone())
            .unwrap_or_else(|| panic!("no {subject} on the server"))
    };
    assert!(flags_of(&seen_subject).contains("\\Seen"), "{seen_subject}");
    assert!(
        flags_of(&flagged_subject).contains("\\Flagged"),
        "{flagged_subject}"
    );
    assert_eq!(maildir_files(&inbox).len(), 1050);

    // 3. Deleted on the server: the third sync removes them locally too.
    let doomed: Vec<String> = state
        .iter()
        .take(10)
        .map(|(u, _, _)| u.to_string())
        .collect();
    let gone: Vec<String> = state.iter().take(10).map(|(_, s, _)| s.clone()).collect();
    let mut args = vec!["delete"];
    args.extend(doomed.iter().map(String::as_str));
    let out = interop_py(&hub, imaps, &args);
    assert!(out.contains("DELETED 10"), "{out}");
    output_ok("third mbsync", &mbsync(&rc, &work));
    let files = maildir_files(&inbox);
    assert_eq!(files.len(), 1040, "files after the third sync");
    for f in &files {
        let m = text(&std::fs::read(f).unwrap());
        for s in &gone {
            assert!(
                !m.contains(&format!("Subject: {s}\r\n")),
                "{s} is still in the Maildir"
            );
        }
    }
    assert_eq!(server_state(&hub, imaps).len(), 1040);
    hub.stop();
}

#[test]
fn fetchmail_retrieves_over_imaps() {
    if !installed("fetchmail", "--version") {
        println!("SKIPPED fetchmail_retrieves_over_imaps: fetchmail is missing");
        return;
    }
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let out = interop_py(&hub, imaps, &["fill", "3", "fetchmail-marker"]);
    assert!(out.contains("APPENDED 3"), "{out}");

    // fetchmail takes the password only from a run-control file (mode 0600) or a terminal; it
    // keeps its state under HOME, so both live in the test's directory.
    let home = hub.dir.join("fetchmail");
    std::fs::create_dir_all(&home).unwrap();
    let mbox = home.join("fetched.mbox");
    let rc = home.join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "set no syslog\n\
             poll localhost protocol IMAP port {imaps}\n\
             \x20 user \"{user}\" password \"{pass}\"\n\
             \x20 ssl sslcertck sslcertfile \"{cert}\"\n\
             \x20 mda \"cat >> {mbox}\"\n",
            user = MARTIN.0,
            pass = MARTIN.1,
            cert = hub.ca.display(),
            mbox = mbox.display(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("fetchmail")
        .args(["-f", rc.to_str().unwrap(), "-v", "--nodetach", "--nokeep"])
        .env("HOME", &home)
        .env("FETCHMAILHOME", &home)
        .stdin(Stdio::null())
        .output()
        .expect("fetchmail runs");
    output_ok("fetchmail", &out);
    let log = text(&out.stdout) + &text(&out.stderr);
    assert!(log.contains("3 messages"), "{log}");
    let fetched = std::fs::read(&mbox).unwrap_or_default();
    for i in 0..3 {
        assert!(
            contains(&fetched, &format!("Subject: fetchmail-marker-{i}")),
            "message {i} not delivered by fetchmail:\n{}\n{log}",
            text(&fetched)
        );
    }
    // Without --keep, fetchmail flags them \Deleted and expunges: the INBOX is empty again.
    assert_eq!(server_state(&hub, imaps), vec![], "{log}");
    hub.stop();
}

/// Issue 5's memory goal is 10,000 idle connections under 300 MiB, about 30 KiB each: 30
/// logged-in IDLE sessions must not add more than 30 MiB (1 MiB each, very generous).
#[test]
fn idle_sessions_cost_little_memory() {
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let pid = hub.pid().to_string();
    let out = interop_py(&hub, imaps, &["hold", "30", &pid]);
    let kib = |key: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
            .trim()
            .parse()
            .unwrap()
    };
    let grown = kib("RSS_AFTER ").saturating_sub(kib("RSS_BEFORE "));
    assert!(
        grown < 30 * 1024,
        "30 idle sessions added {} MiB of RSS",
        grown / 1024
    );
    hub.stop();
}
