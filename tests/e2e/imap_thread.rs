//! THREAD and UID THREAD (RFC 5256 §4–5), ESORT and CONTEXT (RFC 5267 §3–4) and PARTIAL (RFC 9394) over
//! implicit TLS with Python's imaplib (tests/e2e/py/imap_thread.py), against the real binary.

use crate::support::*;

#[test]
fn imaplib_threads_by_references_and_subject_and_pages_sorted_results() {
    let mut hub = Instance::demo();
    imaplib_checks(
        &mut hub,
        "imap_thread.py",
        &[
            "capability-thread",
            "capability-esort-partial",
            "capability-context",
            "thread-references-tree",
            "thread-orderedsubject-tree",
            "uid-thread-tree",
            "thread-search-keys-tree",
            "thread-badcharset",
            "esort-in-sort-order",
            "esort-partial-page",
            "search-partial-last-page",
            "search-update",
        ],
    );
    hub.stop();
}
