//! offlineimap (Debian's offlineimap3) against the real binary over implicit TLS, the hub's
//! certificate verified: every folder synced into a Maildir with its messages' flags, then
//! flags changed and a message moved to another folder in the Maildir, synced back to the
//! server; a third run has nothing to do. The server side is read and prepared with Python's
//! imaplib (tests/e2e/py/imap_mailboxes.py). offlineimap must be installed
//! (scripts/install-deps --tests): the test fails otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::imap_neomutt::{by_subject, mailbox_state, mailboxes_py, require};
use crate::support::*;

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

/// The file of the message with this subject in a Maildir folder (offlineimap writes lines
/// ending in LF, the server sends CRLF).
fn file_of(folder: &Path, subject: &str) -> PathBuf {
    let header = format!("Subject: {subject}");
    let found: Vec<PathBuf> = maildir_files(folder)
        .into_iter()
        .filter(|f| {
            text(&std::fs::read(f).unwrap())
                .lines()
                .any(|l| l.trim_end_matches('\r') == header)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{subject} in {}: {found:?}",
        folder.display()
    );
    found[0].clone()
}

/// The Maildir flags of a file name (after `:2,`).
fn maildir_flags(file: &Path) -> String {
    let name = file.file_name().unwrap().to_str().unwrap();
    name.split_once(":2,")
        .map(|(_, f)| f.to_string())
        .unwrap_or_default()
}

/// One-shot sync with the basic interface; panics on failure or on an ERROR or WARNING line.
/// Returns the output.
fn offlineimap(rc: &Path, home: &Path) -> String {
    let out = Command::new("offlineimap")
        .arg("-c")
        .arg(rc)
        .args(["-o", "-u", "basic"])
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("offlineimap runs");
    let log = text(&out.stdout) + &text(&out.stderr);
    assert!(
        out.status.success(),
        "offlineimap failed ({}):\n{log}",
        out.status
    );
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| {
            let l = l.to_ascii_uppercase();
            l.contains("ERROR") || l.contains("WARNING")
        })
        .collect();
    assert!(bad.is_empty(), "offlineimap complained: {bad:#?}\n{log}");
    log
}

#[test]
fn offlineimap_syncs_flags_and_moves_both_ways() {
    require("offlineimap", "--version", "offlineimap3");
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let out = mailboxes_py(&hub, imaps, MARTIN, &["fill", "INBOX", "6", "oi"]);
    assert!(out.contains("APPENDED 6"), "{out}");
    let out = mailboxes_py(
        &hub,
        imaps,
        MARTIN,
        &["fill", "Archive", "1", "oi-archived"],
    );
    assert!(out.contains("APPENDED 1"), "{out}");
    for (subject, flags) in [
        ("oi-0", &["\\Seen"][..]),
        ("oi-1", &["\\Flagged"]),
        ("oi-2", &["\\Seen", "\\Answered"]),
    ] {
        let mut args = vec!["flag", "INBOX", subject];
        args.extend_from_slice(flags);
        let out = mailboxes_py(&hub, imaps, MARTIN, &args);
        assert!(out.contains("FLAGGED 1"), "{out}");
    }

    let work = hub.dir.join("offlineimap");
    let mail = work.join("Mail");
    std::fs::create_dir_all(&work).unwrap();
    let rc = work.join("offlineimaprc");
    std::fs::write(
        &rc,
        format!(
            "[general]\n\
             accounts = hub\n\
             metadata = {meta}\n\
             \n\
             [Account hub]\n\
             localrepository = local\n\
             remoterepository = hub\n\
             \n\
             [Repository local]\n\
             type = Maildir\n\
             localfolders = {mail}\n\
             \n\
             [Repository hub]\n\
             type = IMAP\n\
             remotehost = localhost\n\
             remoteport = {imaps}\n\
             ssl = yes\n\
             sslcacertfile = {ca}\n\
             remoteuser = {user}\n\
             remotepass = {pass}\n",
            meta = work.join("metadata").display(),
            mail = mail.display(),
            ca = hub.ca.display(),
            user = MARTIN.0,
            pass = MARTIN.1,
        ),
    )
    .unwrap();

    // 1. Server to Maildir: every folder, every message of the INBOX with its flags.
    let log = offlineimap(&rc, &work);
    let list = mailboxes_py(&hub, imaps, MARTIN, &["list"]);
    for name in list.lines().filter_map(|l| l.strip_prefix("MAILBOX ")) {
        assert!(
            mail.join(name).join("cur").is_dir(),
            "folder {name} not created in the Maildir:\n{log}"
        );
    }
    let inbox_dir = mail.join("INBOX");
    let server = mailbox_state(&hub, imaps, MARTIN, "INBOX");
    assert_eq!(server.len(), 6, "{server:?}");
    assert_eq!(maildir_files(&inbox_dir).len(), 6, "{log}");
    let expected = |m: &crate::imap_neomutt::Seen| -> String {
        // Maildir's letters, in its (ASCII) order.
        let mut letters = String::new();
        for (flag, letter) in [("\\Flagged", 'F'), ("\\Answered", 'R'), ("\\Seen", 'S')] {
            if m.has(flag) {
                letters.push(letter);
            }
        }
        letters
    };
    for m in &server {
        let file = file_of(&inbox_dir, &m.subject);
        // offlineimap names each file with the server's UID.
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            name.contains(&format!(",U={},", m.uid)),
            "{} has UID {} on the server: {name}",
            m.subject,
            m.uid
        );
        assert_eq!(
            maildir_flags(&file),
            expected(m),
            "flags of {} ({}): {}",
            m.subject,
            m.flags,
            file.display()
        );
    }
    file_of(&mail.join("Archive"), "oi-archived-0");

    // 2. Maildir to server: oi-3 seen and flagged, oi-0 unseen again, oi-4 moved to Archive
    // (a plain `mv`, as a user or a local client does), then a sync.
    let rename_flags = |subject: &str, flags: &str| {
        let file = file_of(&inbox_dir, subject);
        let name = file.file_name().unwrap().to_str().unwrap();
        let base = name.split(":2,").next().unwrap();
        std::fs::rename(
            &file,
            inbox_dir.join("cur").join(format!("{base}:2,{flags}")),
        )
        .unwrap();
    };
    rename_flags("oi-3", "FS");
    rename_flags("oi-0", "");
    let moved = file_of(&inbox_dir, "oi-4");
    std::fs::rename(
        &moved,
        mail.join("Archive/cur").join(moved.file_name().unwrap()),
    )
    .unwrap();
    let log = offlineimap(&rc, &work);

    let inbox = mailbox_state(&hub, imaps, MARTIN, "INBOX");
    let subjects: Vec<&str> = inbox.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["oi-0", "oi-1", "oi-2", "oi-3", "oi-5"],
        "INBOX after the second sync:\n{log}"
    );
    let oi3 = by_subject(&inbox, "oi-3");
    assert!(oi3.has("\\Seen") && oi3.has("\\Flagged"), "{oi3:?}\n{log}");
    let oi0 = by_subject(&inbox, "oi-0");
    assert!(!oi0.has("\\Seen"), "{oi0:?}\n{log}");
    assert!(by_subject(&inbox, "oi-1").has("\\Flagged"), "{inbox:?}");
    let oi2 = by_subject(&inbox, "oi-2");
    assert!(oi2.has("\\Seen") && oi2.has("\\Answered"), "{oi2:?}");
    assert!(inbox.iter().all(|m| !m.has("\\Deleted")), "{inbox:?}");
    let archive = mailbox_state(&hub, imaps, MARTIN, "Archive");
    assert_eq!(archive.len(), 2, "Archive: {archive:?}\n{log}");
    by_subject(&archive, "oi-archived-0");
    by_subject(&archive, "oi-4");

    // The moved message's file got its new server UID in the Maildir; nothing left to do.
    assert_eq!(maildir_files(&inbox_dir).len(), 5);
    let log = offlineimap(&rc, &work);
    assert!(
        !log.contains("Copy message") && !log.contains("Deleting") && !log.contains("flag"),
        "a third sync found work to do:\n{log}"
    );
    assert_eq!(maildir_files(&mail.join("Archive")).len(), 2, "{log}");
    assert_eq!(mailbox_state(&hub, imaps, MARTIN, "INBOX").len(), 5);
    hub.stop();
}
