//! ESORT (RFC 5267 §3) and PARTIAL (RFC 9394 §3, the return option of RFC 5267 §4.4): SORT
//! RETURN answered by ESEARCH in sort order, SEARCH and SORT RETURN (PARTIAL m:n) with
//! positive and negative ranges, SAVE of a page, and the errors. Sessions are driven in memory,
//! as in `conformance_sort.rs`.

mod common;

use common::*;

impl Client {
    async fn append(&mut self, mailbox: &str, flags: &str, msg: &[u8]) {
        let r = self.append_with("ap", mailbox, flags, msg).await;
        assert!(last(&r).starts_with("ap OK "), "{r:?}");
    }
}

/// A message with only a Subject: and a body of `body_len` octets.
fn subject_message(subject: &str, body_len: usize) -> Vec<u8> {
    message(&format!("Subject: {subject}"), body_len)
}

/// The one `* ESEARCH` line of a reply, after `* ESEARCH `.
fn esearch(r: &[String]) -> String {
    assert!(last(r).contains(" OK "), "{r:?}");
    assert!(!r.iter().any(|l| l.starts_with("* SORT")), "{r:?}");
    let lines: Vec<&String> = r.iter().filter(|l| l.starts_with("* ESEARCH")).collect();
    assert_eq!(lines.len(), 1, "{r:?}");
    lines[0]["* ESEARCH ".len()..].to_string()
}

/// Five messages, after one expunged so that UIDs are sequence numbers plus one. By SIZE:
/// 2 4 1 5 3 (UIDs 3 5 2 6 4).
async fn mailbox() -> (Hub, Client) {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.append("INBOX", "()", &subject_message("gone", 1)).await;
    for (subject, len) in [("a", 300), ("b", 100), ("c", 500), ("d", 200), ("e", 400)] {
        c.append("INBOX", "()", &subject_message(subject, len))
            .await;
    }
    c.select_inbox_without_the_first().await;
    (hub, c)
}

/// RFC 5267 §3 (ESORT), RFC 9394 §2 (PARTIAL); CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4)
/// are tested in `conformance_context.rs`.
#[tokio::test]
async fn capability_advertises_esort_and_partial() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    let words = c.capabilities().await;
    assert!(words.iter().any(|w| w == "ESORT"), "{words:?}");
    assert!(words.iter().any(|w| w == "PARTIAL"), "{words:?}");
}

/// RFC 5267 §3.1: MIN and MAX are the first and last messages in sort order, ALL lists them in
/// sort order (ranges only where numbers follow each other in that order).
#[tokio::test]
async fn sort_return_answers_esearch_in_sort_order() {
    let (_hub, mut c) = mailbox().await;
    let r = c
        .cmd("t1", "SORT RETURN (MIN MAX COUNT ALL) (SIZE) UTF-8 ALL")
        .await;
    assert_eq!(
        esearch(&r),
        "(TAG \"t1\") MIN 2 MAX 3 ALL 2,4,1,5,3 COUNT 5",
        "{r:?}"
    );
    let r = c.cmd("t2", "UID SORT RETURN (ALL) (SIZE) UTF-8 ALL").await;
    assert_eq!(esearch(&r), "(TAG \"t2\") UID ALL 3,5,2,6,4", "{r:?}");
    // RFC 4731 §3.1 as RFC 5267 §3.1 takes it: RETURN () is RETURN (ALL).
    let r = c.cmd("t3", "SORT RETURN () (ARRIVAL) UTF-8 ALL").await;
    assert_eq!(esearch(&r), "(TAG \"t3\") ALL 1:5", "{r:?}");
    let r = c
        .cmd("t4", "SORT RETURN (MAX MIN) (REVERSE SIZE) UTF-8 NOT 3")
        .await;
    assert_eq!(esearch(&r), "(TAG \"t4\") MIN 5 MAX 2", "{r:?}");
    // No match: MIN, MAX and ALL are left out, COUNT is 0.
    let r = c
        .cmd("t5", "SORT RETURN (MIN COUNT ALL) (SIZE) UTF-8 SUBJECT zzz")
        .await;
    assert_eq!(esearch(&r), "(TAG \"t5\") COUNT 0", "{r:?}");
    // Without RETURN, SORT answers `* SORT` as before.
    let r = c.cmd("t6", "SORT (SIZE) UTF-8 ALL").await;
    assert!(r.iter().any(|l| l == "* SORT 2 4 1 5 3"), "{r:?}");
}

/// RFC 9394 §3.1: positions in the results in mailbox order, 1 the first, -1 the last; the
/// range as the client wrote it, then the messages in it, NIL if none.
#[tokio::test]
async fn search_return_partial_pages_the_results() {
    let (_hub, mut c) = mailbox().await;
    for (command, expected) in [
        ("SEARCH RETURN (PARTIAL 1:2) ALL", "PARTIAL (1:2 1:2)"),
        (
            "UID SEARCH RETURN (PARTIAL -1:-2) ALL",
            "UID PARTIAL (-1:-2 5:6)",
        ),
        ("SEARCH RETURN (PARTIAL 4:10) ALL", "PARTIAL (4:10 4:5)"),
        ("SEARCH RETURN (PARTIAL 10:20) ALL", "PARTIAL (10:20 NIL)"),
        ("SEARCH RETURN (PARTIAL -3:-1) ALL", "PARTIAL (-3:-1 3:5)"),
        // Reversed bounds are the same range (RFC 9394 §4 `partial-range-first`).
        (
            "SEARCH RETURN (COUNT PARTIAL 2:1) LARGER 150",
            "PARTIAL (2:1 1,3) COUNT 4",
        ),
        (
            "SEARCH RETURN (MIN PARTIAL 1:1) SUBJECT zzz",
            "PARTIAL (1:1 NIL)",
        ),
    ] {
        let r = c.cmd("p", command).await;
        assert_eq!(esearch(&r), format!("(TAG \"p\") {expected}"), "{command}");
    }
}

/// RFC 5267 §4.4 with RFC 9394: PARTIAL with SORT counts positions in sort order.
#[tokio::test]
async fn sort_return_partial_pages_in_sort_order() {
    let (_hub, mut c) = mailbox().await;
    let r = c
        .cmd("q", "SORT RETURN (PARTIAL 1:3) (SIZE) UTF-8 ALL")
        .await;
    assert_eq!(esearch(&r), "(TAG \"q\") PARTIAL (1:3 2,4,1)", "{r:?}");
    let r = c
        .cmd(
            "q",
            "UID SORT RETURN (COUNT PARTIAL -1:-2) (SIZE) UTF-8 ALL",
        )
        .await;
    assert_eq!(
        esearch(&r),
        "(TAG \"q\") UID PARTIAL (-1:-2 6,4) COUNT 5",
        "{r:?}"
    );
}

/// RFC 9394 §3.2 (with RFC 5182): SAVE with PARTIAL saves the page, which `$` then names.
#[tokio::test]
async fn save_with_partial_saves_the_page() {
    let (_hub, mut c) = mailbox().await;
    let r = c.cmd("v", "SEARCH RETURN (SAVE PARTIAL -1:-2) ALL").await;
    assert_eq!(esearch(&r), "(TAG \"v\") PARTIAL (-1:-2 4:5)", "{r:?}");
    let r = c.cmd("f", "FETCH $ (UID)").await;
    assert!(last(&r).starts_with("f OK"), "{r:?}");
    let fetched: Vec<&String> = r
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH "))
        .collect();
    assert_eq!(fetched.len(), 2, "{r:?}");
    assert!(r.iter().any(|l| l == "* 4 FETCH (UID 5)"), "{r:?}");
    assert!(r.iter().any(|l| l == "* 5 FETCH (UID 6)"), "{r:?}");
}

/// RFC 5182 §2.4: SAVE with MIN and MAX alone keeps only the two messages they return; with
/// COUNT as well, every match.
#[tokio::test]
async fn save_with_min_max_saves_only_what_they_return() {
    let (_hub, mut c) = mailbox().await;
    let r = c.cmd("v", "SEARCH RETURN (SAVE MIN MAX) ALL").await;
    assert!(last(&r).starts_with("v OK"), "{r:?}");
    let r = c.cmd("f", "FETCH $ (UID)").await;
    let fetched = r
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH "))
        .count();
    assert_eq!(fetched, 2, "{r:?}");
    let r = c.cmd("w", "SEARCH RETURN (SAVE MIN COUNT) ALL").await;
    assert!(last(&r).starts_with("w OK"), "{r:?}");
    let r = c.cmd("g", "FETCH $ (UID)").await;
    let fetched = r
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH "))
        .count();
    assert!(fetched > 2, "{r:?}");
}

/// RFC 9394 §3.1: one PARTIAL or one ALL, not both; ranges of non-zero numbers of one sign;
/// an unknown RETURN option is BAD.
#[tokio::test]
async fn bad_return_options() {
    let (_hub, mut c) = mailbox().await;
    for command in [
        "SEARCH RETURN (ALL PARTIAL 1:2) ALL",
        "SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
        "SEARCH RETURN (PARTIAL 0:5) ALL",
        "SEARCH RETURN (PARTIAL 1:-5) ALL",
        "SEARCH RETURN (PARTIAL 1:*) ALL",
        "SEARCH RETURN (PARTIAL) ALL",
        "SEARCH RETURN (NOTIFY) ALL",
        "SORT RETURN (CONTEXTS) (SIZE) UTF-8 ALL",
        "SORT RETURN (ALL PARTIAL 1:2) (SIZE) UTF-8 ALL",
        "SORT RETURN (SIZE) UTF-8 ALL",
    ] {
        let r = c.cmd("b", command).await;
        assert!(last(&r).starts_with("b BAD"), "{command}: {r:?}");
    }
}
