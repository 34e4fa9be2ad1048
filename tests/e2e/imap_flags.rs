//! Flags two real IMAP4rev1 clients see on one mailbox (Python's imaplib over implicit TLS,
//! against the real binary): a keyword another session stored is announced in `* FLAGS`
//! before the FETCH showing it (RFC 3501 §7.2.6), and `\Recent` goes to exactly one session
//! (RFC 3501 §2.3.2, §6.3.1, §7.3.2).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::*;

#[test]
fn two_imaplib_sessions_get_keywords_announced_and_recent_once() {
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/py/imap_flags.py");
    let out = Command::new("python3")
        .arg(script)
        .args([
            "--port",
            &imaps.to_string(),
            "--cafile",
            hub.ca.to_str().unwrap(),
            "--user",
            MARTIN.0,
            "--password",
            MARTIN.1,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.ends_with("DONE\n") && !stdout.contains("FAIL"),
        "imap_flags.py failed:\n{stdout}{}",
        text(&out.stderr)
    );
    for check in [
        "PASS examine-shows-recent",
        "PASS select-a-recent",
        "PASS select-b-not-recent",
        "PASS search-a-new",
        "PASS store-a-announces",
        "PASS noop-b-flags-before-fetch",
        "PASS append-a-recent",
        "PASS noop-b2-exists-not-recent",
    ] {
        assert!(stdout.contains(check), "{check} missing:\n{stdout}");
    }
    hub.stop();
}
