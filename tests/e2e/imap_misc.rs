//! IMAP conformance points over implicit TLS with Python's imaplib (tests/e2e/py/imap_misc.py):
//! COPYUID sets (RFC 4315 §3), NO for a name that is not modified UTF-7 (RFC 3501 §5.1.3) and
//! ENVELOPE groups (RFC 3501 §7.4.2), against the real binary.

use std::process::{Command, Stdio};

use crate::support::*;

#[test]
fn imaplib_sees_copyuid_sets_no_for_invalid_names_and_envelope_groups() {
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/py/imap_misc.py");
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
        "imap_misc.py failed:\n{stdout}{}",
        text(&out.stderr)
    );
    for check in [
        "PASS copyuid-source-set",
        "PASS copyuid-destination-set",
        "PASS invalid-name-no-0",
        "PASS noop-after-invalid-names",
        "PASS envelope-group",
        "PASS envelope-empty-group",
    ] {
        assert!(stdout.contains(check), "{check} missing:\n{stdout}");
    }
    hub.stop();
}
