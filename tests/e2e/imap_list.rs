//! LIST-EXTENDED (RFC 5258) and LSUB (RFC 3501 §6.3.9) over implicit TLS with Python's imaplib
//! (tests/e2e/py/imap_list.py), against the real binary: unknown options are BAD (§3, §6),
//! subscribed names without a mailbox are `\NonExistent` (§3.1), RECURSIVEMATCH gives
//! CHILDINFO (§3.5), RETURN (CHILDREN) (§4), several patterns (§3), and LSUB `%` returns an
//! unsubscribed parent as `\Noselect`.

use crate::support::*;

#[test]
fn imaplib_sees_list_extended_and_lsub_conformance() {
    let mut hub = Instance::demo();
    imaplib_checks(
        &mut hub,
        "imap_list.py",
        &[
            "unknown-selection-bad",
            "unknown-return-bad",
            "recursivematch-alone-bad",
            "nonexistent-subscribed-deleted",
            "nonexistent-subscribed-never-created",
            "recursivematch-childinfo",
            "return-children",
            "several-patterns",
            "lsub-percent-noselect",
        ],
    );
    hub.stop();
}
