//! Flags two real IMAP4rev1 clients see on one mailbox (Python's imaplib over implicit TLS,
//! against the real binary): a keyword another session stored is announced in `* FLAGS`
//! before the FETCH showing it (RFC 3501 §7.2.6), and `\Recent` goes to exactly one session
//! (RFC 3501 §2.3.2, §6.3.1, §7.3.2).

use crate::support::*;

#[test]
fn two_imaplib_sessions_get_keywords_announced_and_recent_once() {
    let mut hub = Instance::demo();
    imaplib_checks(
        &mut hub,
        "imap_flags.py",
        &[
            "examine-shows-recent",
            "select-a-recent",
            "select-b-not-recent",
            "search-a-new",
            "store-a-announces",
            "noop-b-flags-before-fetch",
            "append-a-recent",
            "noop-b2-exists-not-recent",
        ],
    );
    hub.stop();
}
