//! MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) over implicit TLS with Python's imaplib
//! (tests/e2e/py/imap_append.py), against the real binary: one APPENDUID set for several
//! messages, all or nothing, a message made of a TEXT literal and an IMAP URL (RFC 5092),
//! BADURL with the URL.

use crate::support::*;

#[test]
fn imaplib_multiappends_atomically_and_catenates_url_parts() {
    let mut hub = Instance::demo();
    imaplib_checks(
        &mut hub,
        "imap_append.py",
        &[
            "capability-multiappend",
            "capability-catenate",
            "multiappend-appenduid-set",
            "multiappend-all-or-nothing-no",
            "multiappend-all-or-nothing-none-kept",
            "multiappend-flags",
            "catenate-ok",
            "catenate-content",
            "catenate-badurl",
            "multiappend-with-catenate",
            "exists-after-append",
        ],
    );
    hub.stop();
}
