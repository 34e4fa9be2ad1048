//! FETCH conformance over implicit TLS with Python's imaplib (tests/e2e/py/imap_fetch.py),
//! against the real binary: sections inside attached messages one and two levels deep
//! (RFC 9051 §6.4.5) and BINARY decoding of base64 and quoted-printable, a literal8 for NUL
//! bytes (RFC 3516 §4.2).

use crate::support::*;

#[test]
fn imaplib_fetches_nested_message_sections_and_decoded_binary() {
    let mut hub = Instance::demo();
    imaplib_checks(
        &mut hub,
        "imap_fetch.py",
        &[
            "body-1.1.mime",
            "body-1.2.text",
            "body-1.header.fields",
            "binary-2-literal8",
            "binary-2-base64",
            "binary-3-quoted-printable",
            "binary-size-3",
            "binary-partial",
        ],
    );
    hub.stop();
}
