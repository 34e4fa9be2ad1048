//! IMAP conformance points over implicit TLS with Python's imaplib (tests/e2e/py/imap_misc.py):
//! COPYUID sets (RFC 4315 §3), NO for a name that is not modified UTF-7 (RFC 3501 §5.1.3) and
//! ENVELOPE groups (RFC 3501 §7.4.2), against the real binary.

use crate::support::*;

#[test]
fn imaplib_sees_copyuid_sets_no_for_invalid_names_and_envelope_groups() {
    let mut hub = Instance::demo();
    imaplib_checks(
        &mut hub,
        "imap_misc.py",
        &[
            "copyuid-source-set",
            "copyuid-destination-set",
            "invalid-name-no-0",
            "noop-after-invalid-names",
            "envelope-group",
            "envelope-empty-group",
        ],
    );
    hub.stop();
}
