//! LIST-EXTENDED (RFC 5258) and LSUB (RFC 3501 §6.3.9) over implicit TLS with Python's imaplib
//! (tests/e2e/py/imap_list.py), against the real binary: unknown options are BAD (§3, §6),
//! subscribed names without a mailbox are `\NonExistent` (§3.1), RECURSIVEMATCH gives
//! CHILDINFO (§3.5), RETURN (CHILDREN) (§4), several patterns (§3), and LSUB `%` returns an
//! unsubscribed parent as `\Noselect`.

use std::process::{Command, Stdio};

use crate::support::*;

#[test]
fn imaplib_sees_list_extended_and_lsub_conformance() {
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/py/imap_list.py");
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
        "imap_list.py failed:\n{stdout}{}",
        text(&out.stderr)
    );
    for check in [
        "PASS unknown-selection-bad",
        "PASS unknown-return-bad",
        "PASS recursivematch-alone-bad",
        "PASS nonexistent-subscribed-deleted",
        "PASS nonexistent-subscribed-never-created",
        "PASS recursivematch-childinfo",
        "PASS return-children",
        "PASS several-patterns",
        "PASS lsub-percent-noselect",
    ] {
        assert!(stdout.contains(check), "{check} missing:\n{stdout}");
    }
    hub.stop();
}
