//! neomutt, a terminal mail client professionals use, against the real binary: over IMAP with
//! implicit TLS (the hub's certificate verified) it flags, marks read, copies, saves into a
//! folder it creates, deletes and expunges; over SMTP submission (implicit TLS and STARTTLS) it
//! sends to the demo patient. neomutt needs a terminal for its index: it runs in a detached
//! tmux session and a `push` of keys drives it, then it quits. The server side is read with
//! Python's imaplib (tests/e2e/py/imap_mailboxes.py) and the hub's store. neomutt's own
//! errors are read from its debug log (`<E>` lines): it exits 0 even when a login fails.
//! Both tools must be installed (scripts/install-deps --tests): the test fails otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// Panics, saying how to install it, unless `program` runs.
pub(crate) fn require(program: &str, version_flag: &str, package: &str) {
    let runs = Command::new(program)
        .arg(version_flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        runs,
        "{program} is missing (Debian package {package}): run scripts/install-deps --tests"
    );
}

/// Runs tests/e2e/py/imap_mailboxes.py as `who` against `imaps`; returns its stdout.
pub(crate) fn mailboxes_py(
    hub: &Instance,
    imaps: u16,
    who: (&str, &str),
    action: &[&str],
) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/py/imap_mailboxes.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["--port", &imaps.to_string()])
        .args(["--cafile", hub.ca.to_str().unwrap()])
        .args(["--user", who.0, "--password", who.1])
        .args(action)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.ends_with("DONE\n"),
        "imap_mailboxes.py {action:?} failed:\n{stdout}{}",
        text(&out.stderr)
    );
    stdout
}

/// One message as imaplib sees it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub uid: u32,
    pub subject: String,
    /// The flags, comma-separated (`-` when none).
    pub flags: String,
}

impl Seen {
    pub fn has(&self, flag: &str) -> bool {
        self.flags.split(',').any(|f| f == flag)
    }
}

/// The messages of `mailbox` (read-only), in order.
pub(crate) fn mailbox_state(
    hub: &Instance,
    imaps: u16,
    who: (&str, &str),
    mailbox: &str,
) -> Vec<Seen> {
    let out = mailboxes_py(hub, imaps, who, &["state", mailbox]);
    let count: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("COUNT "))
        .expect("a COUNT line")
        .parse()
        .unwrap();
    let messages: Vec<Seen> = out
        .lines()
        .filter_map(|l| l.strip_prefix("MSG "))
        .map(|l| {
            let mut words = l.split(' ');
            Seen {
                uid: words.next().unwrap().parse().unwrap(),
                subject: words.next().unwrap().to_string(),
                flags: words.next().unwrap_or("-").to_string(),
            }
        })
        .collect();
    assert_eq!(messages.len(), count, "one MSG line per message:\n{out}");
    messages
}

/// The one message of `state` with this subject.
pub(crate) fn by_subject<'a>(state: &'a [Seen], subject: &str) -> &'a Seen {
    let found: Vec<&Seen> = state.iter().filter(|m| m.subject == subject).collect();
    assert_eq!(found.len(), 1, "{subject} once in {state:?}");
    found[0]
}

/// A tmux server of its own (socket in the test's directory), killed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket);
        cmd.stdin(Stdio::null());
        cmd
    }

    fn pane(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-S", "-", "-t", "neomutt"])
            .output()
            .expect("tmux runs");
        text(&out.stdout)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
    }
}

/// Runs neomutt with `muttrc` in a detached 160×50 tmux pane until it exits (at most 90 s);
/// returns the pane's text and neomutt's `<E>` (error) log lines.
fn neomutt_in_tmux(work: &Path, muttrc: &Path) -> (String, Vec<String>) {
    let log = work.join("neomutt.log");
    let status = work.join("neomutt.status");
    let script = work.join("run-neomutt.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nneomutt -n -F '{}' -d 2 -l '{}'\necho $? > '{}'\n",
            muttrc.display(),
            log.display(),
            status.display()
        ),
    )
    .unwrap();
    // The pane keeps its text after neomutt exits (no alternate screen, the pane kept).
    let conf = work.join("tmux.conf");
    std::fs::write(
        &conf,
        "set -g default-terminal screen\n\
         set -g remain-on-exit on\n\
         set -g alternate-screen off\n\
         set -g history-limit 5000\n",
    )
    .unwrap();
    let tmux = Tmux {
        socket: work.join("tmux.sock"),
    };
    let out = tmux
        .command()
        .arg("-f")
        .arg(&conf)
        .args([
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "50",
            "-s",
            "neomutt",
        ])
        .arg(format!("sh '{}'", script.display()))
        .env("HOME", work)
        .output()
        .expect("tmux runs");
    assert!(
        out.status.success(),
        "tmux new-session: {}",
        text(&out.stderr)
    );
    let exited = poll(Duration::from_secs(90), Duration::from_millis(200), || {
        status.exists()
    });
    let pane = tmux.pane();
    assert!(
        exited,
        "neomutt did not finish within 90 s; its screen:\n{pane}"
    );
    let code = std::fs::read_to_string(&status).unwrap();
    assert_eq!(
        code.trim(),
        "0",
        "neomutt's exit status; its screen:\n{pane}"
    );
    // neomutt rotates its log: neomutt.log0 is this run's.
    let mut errors = Vec::new();
    for entry in std::fs::read_dir(work).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("neomutt.log") {
            let log = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            errors.extend(log.lines().filter(|l| l.contains("<E>")).map(String::from));
        }
    }
    (pane, errors)
}

/// The muttrc lines common to both uses: the hub's CA, TLS required, nothing cached, no
/// question asked.
fn muttrc_base(hub: &Instance) -> String {
    format!(
        "set ssl_ca_certificates_file=\"{ca}\"\n\
         set ssl_force_tls=yes\n\
         set ssl_starttls=yes\n\
         set header_cache=\"\"\n\
         set message_cachedir=\"\"\n\
         set record=\"\"\n\
         set from=\"{user}\"\n\
         set realname=\"Dr Martin\"\n\
         set confirmappend=no\n\
         set confirmcreate=no\n\
         set wait_key=no\n\
         set beep=no\n\
         set sleep_time=0\n",
        ca = hub.ca.display(),
        user = MARTIN.0,
    )
}

#[test]
fn neomutt_flags_copies_saves_and_deletes_over_imaps() {
    require("neomutt", "-v", "neomutt");
    require("tmux", "-V", "tmux");
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let out = mailboxes_py(&hub, imaps, MARTIN, &["fill", "INBOX", "5", "nm"]);
    assert!(out.contains("APPENDED 5"), "{out}");

    let work = hub.dir.join("neomutt");
    std::fs::create_dir_all(&work).unwrap();
    // In mailbox order, each step on the message of its subject (tag-pattern ~s): nm-0
    // flagged, nm-1 copied to Archive, nm-2 saved to Kept (a new folder: neomutt creates it on
    // the server's TRYCREATE, then deletes the original), nm-3 deleted, nm-4 marked read;
    // then the mailbox synced (flags stored, deleted ones expunged) and neomutt quits.
    let keys = [
        "<tag-pattern>~s nm-0<enter><tag-prefix><flag-message><untag-pattern>~A<enter>",
        "<tag-pattern>~s nm-1<enter><tag-prefix><copy-message><kill-line>=Archive<enter>",
        "<untag-pattern>~A<enter>",
        "<tag-pattern>~s nm-2<enter><tag-prefix><save-message><kill-line>=Kept<enter>",
        "<untag-pattern>~A<enter>",
        "<delete-pattern>~s nm-3<enter>",
        "<tag-pattern>~s nm-4<enter><tag-prefix><toggle-new><untag-pattern>~A<enter>",
        "<sync-mailbox><quit>",
    ]
    .concat();
    let muttrc = work.join("muttrc");
    std::fs::write(
        &muttrc,
        format!(
            "{base}\
             set imap_user=\"{user}\"\n\
             set imap_pass=\"{pass}\"\n\
             set folder=\"imaps://localhost:{imaps}/\"\n\
             set spoolfile=\"+INBOX\"\n\
             set imap_check_subscribed=no\n\
             set mail_check=3600\n\
             set timeout=3600\n\
             set sort=mailbox-order\n\
             set delete=yes\n\
             set quit=yes\n\
             set move=no\n\
             set mark_old=no\n\
             set trash=\"\"\n\
             push \"{keys}\"\n",
            base = muttrc_base(&hub),
            user = MARTIN.0,
            pass = MARTIN.1,
        ),
    )
    .unwrap();
    let (pane, errors) = neomutt_in_tmux(&work, &muttrc);
    assert!(
        errors.is_empty(),
        "neomutt errors: {errors:#?}\nscreen:\n{pane}"
    );

    let inbox = mailbox_state(&hub, imaps, MARTIN, "INBOX");
    let subjects: Vec<&str> = inbox.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["nm-0", "nm-1", "nm-4"],
        "INBOX after neomutt (nm-2 moved, nm-3 expunged): {inbox:?}\nscreen:\n{pane}"
    );
    let flagged = by_subject(&inbox, "nm-0");
    assert!(
        flagged.has("\\Flagged") && !flagged.has("\\Seen"),
        "{flagged:?}"
    );
    let copied = by_subject(&inbox, "nm-1");
    assert!(
        !copied.has("\\Seen") && !copied.has("\\Deleted"),
        "{copied:?}"
    );
    assert!(by_subject(&inbox, "nm-4").has("\\Seen"), "{inbox:?}");

    let archive = mailbox_state(&hub, imaps, MARTIN, "Archive");
    assert_eq!(archive.len(), 1, "Archive: {archive:?}");
    by_subject(&archive, "nm-1");
    let list = mailboxes_py(&hub, imaps, MARTIN, &["list"]);
    assert!(list.contains("MAILBOX Kept\n"), "Kept not created:\n{list}");
    let kept = mailbox_state(&hub, imaps, MARTIN, "Kept");
    assert_eq!(kept.len(), 1, "Kept: {kept:?}");
    by_subject(&kept, "nm-2");
    // Deleted for good: not moved to the Trash behind the client's back either.
    for mailbox in ["Archive", "Kept", "Trash"] {
        let state = mailbox_state(&hub, imaps, MARTIN, mailbox);
        assert!(
            state.iter().all(|m| m.subject != "nm-3"),
            "nm-3 in {mailbox}: {state:?}"
        );
    }
    hub.stop();
}

#[test]
fn neomutt_sends_to_the_patient_through_submission() {
    require("neomutt", "-v", "neomutt");
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let work = hub.dir.join("neomutt-send");
    std::fs::create_dir_all(&work).unwrap();
    // Implicit TLS (smtps, port `submissions`) and STARTTLS (smtp, port `submission`, TLS
    // required by ssl_force_tls): one message each, in neomutt's batch mode (no terminal).
    let ways = [
        ("smtps", hub.ports.submissions, "nm-smtps"),
        ("smtp", hub.ports.submission, "nm-starttls"),
    ];
    for (scheme, port, subject) in ways {
        let muttrc = work.join(format!("muttrc-{scheme}"));
        std::fs::write(
            &muttrc,
            format!(
                "{base}\
                 set smtp_url=\"{scheme}://{user}@localhost:{port}/\"\n\
                 set smtp_pass=\"{pass}\"\n",
                base = muttrc_base(&hub),
                user = MARTIN.0.replace('@', "%40"),
                pass = MARTIN.1,
            ),
        )
        .unwrap();
        let log = work.join(format!("neomutt-{scheme}.log"));
        let mut child = Command::new("neomutt")
            .arg("-n")
            .arg("-F")
            .arg(&muttrc)
            .args(["-d", "2", "-l"])
            .arg(&log)
            .args(["-s", subject, CAMILLE.0])
            .env("HOME", &work)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("neomutt runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("Bonjour, vos resultats ({subject}) sont normaux.\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let mut logs = String::new();
        for entry in std::fs::read_dir(&work).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(&format!("neomutt-{scheme}.log")) {
                logs.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
        let errors: Vec<&str> = logs.lines().filter(|l| l.contains("<E>")).collect();
        assert!(
            out.status.success() && errors.is_empty(),
            "neomutt over {scheme} ({}): {errors:#?}\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            logs.contains("235 ") && logs.contains("250 "),
            "no AUTH and no accepted message in neomutt's {scheme} log:\n{logs}"
        );
    }

    let arrived = poll(Duration::from_secs(20), Duration::from_millis(200), || {
        mailbox_state(&hub, imaps, CAMILLE, "INBOX").len() >= 2
    });
    let inbox = mailbox_state(&hub, imaps, CAMILLE, "INBOX");
    assert!(arrived, "the patient's INBOX: {inbox:?}");
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    for (_, _, subject) in ways {
        by_subject(&inbox, subject);
    }
    hub.stop();
    let stored: Vec<String> = hub.inbox(CAMILLE.0).iter().map(|m| text(m)).collect();
    for (_, _, subject) in ways {
        let m = stored
            .iter()
            .find(|m| m.contains(&format!("Subject: {subject}")))
            .unwrap_or_else(|| panic!("{subject} not in the store: {stored:#?}"));
        assert!(
            m.contains(&format!("From: Dr Martin <{}>", MARTIN.0)),
            "{m}"
        );
        assert!(m.contains(&format!("To: {}", CAMILLE.0)), "{m}");
        assert!(
            m.contains(&format!("Bonjour, vos resultats ({subject}) sont normaux.")),
            "{m}"
        );
    }
}
