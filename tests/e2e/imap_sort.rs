//! SORT and UID SORT (RFC 5256 §3, RFC 5957 SORT=DISPLAY) over implicit TLS with Python's
//! imaplib (tests/e2e/py/imap_sort.py), against the real binary.

use std::process::{Command, Stdio};

use crate::support::*;

#[test]
fn imaplib_sorts_by_each_criterion_with_search_keys_and_uids() {
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/py/imap_sort.py");
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
        "imap_sort.py failed:\n{stdout}{}",
        text(&out.stderr)
    );
    for check in [
        "PASS capability-sort-display",
        "PASS sort-subject-order",
        "PASS sort-date-order",
        "PASS sort-reverse-size-order",
        "PASS sort-from-order",
        "PASS sort-displayfrom-order",
        "PASS sort-search-keys-order",
        "PASS uid-sort-order",
        "PASS badcharset",
    ] {
        assert!(stdout.contains(check), "{check} missing:\n{stdout}");
    }
    hub.stop();
}
