//! FETCH conformance over implicit TLS with Python's imaplib (tests/e2e/py/imap_fetch.py),
//! against the real binary: sections inside attached messages one and two levels deep
//! (RFC 9051 §6.4.5) and BINARY decoding of base64 and quoted-printable, a literal8 for NUL
//! bytes (RFC 3516 §4.2).

use std::process::{Command, Stdio};

use crate::support::*;

#[test]
fn imaplib_fetches_nested_message_sections_and_decoded_binary() {
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/py/imap_fetch.py");
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
        "imap_fetch.py failed:\n{stdout}{}",
        text(&out.stderr)
    );
    for check in [
        "PASS body-1.1.mime",
        "PASS body-1.2.text",
        "PASS body-1.header.fields",
        "PASS binary-2-literal8",
        "PASS binary-2-base64",
        "PASS binary-3-quoted-printable",
        "PASS binary-size-3",
        "PASS binary-partial",
    ] {
        assert!(stdout.contains(check), "{check} missing:\n{stdout}");
    }
    hub.stop();
}
