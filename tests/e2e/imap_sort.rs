//! SORT and UID SORT (RFC 5256 §3, RFC 5957 SORT=DISPLAY) over implicit TLS with Python's
//! imaplib (tests/e2e/py/imap_sort.py), against the real binary.

use crate::support::*;

#[test]
fn imaplib_sorts_by_each_criterion_with_search_keys_and_uids() {
    let mut hub = Instance::demo();
    imaplib_checks(
        &mut hub,
        "imap_sort.py",
        &[
            "capability-sort-display",
            "sort-subject-order",
            "sort-date-order",
            "sort-reverse-size-order",
            "sort-from-order",
            "sort-displayfrom-order",
            "sort-search-keys-order",
            "uid-sort-order",
            "badcharset",
        ],
    );
    hub.stop();
}
