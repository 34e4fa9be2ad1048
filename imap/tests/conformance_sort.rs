//! SORT and UID SORT (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO): each criterion, REVERSE,
//! ties by sequence number, search keys, UIDs, and the errors. Sessions are driven in memory,
//! as in `conformance_misc.rs`.

mod common;

use common::*;

impl Client {
    async fn append(&mut self, mailbox: &str, flags: &str, msg: &[u8]) {
        let r = self.append_with("ap", mailbox, flags, msg).await;
        assert!(last(&r).starts_with("ap OK "), "{r:?}");
    }
}

/// The numbers of the `* SORT` line of a reply.
fn sorted(r: &[String]) -> String {
    assert!(last(r).contains(" OK "), "{r:?}");
    let lines: Vec<&String> = r.iter().filter(|l| l.starts_with("* SORT")).collect();
    assert_eq!(lines.len(), 1, "{r:?}");
    lines[0]["* SORT".len()..].trim().to_string()
}

/// Four messages, after one expunged so that UIDs are sequence numbers plus one:
///
/// | seq | arrival | Date: (UTC)       | base subject | From (mailbox, display) | To          | Cc | size  |
/// |-----|---------|-------------------|--------------|-------------------------|-------------|----|-------|
/// | 1   | 1 Jan   | 3 Jun 00:30       | banana       | alice, Zoé Bernard      | zed, Yves   | b  | 1000  |
/// | 2   | 3 Jan   | 1 Jun 10:00       | apple        | charlie, Anne Durand    | bob, bob@   |    | 100   |
/// | 3   | 2 Jan   | (none: 2 Jan)     | cherry       | bob, bob@…              | yann, Alice |    | 3000  |
/// | 4   | 4 Jan   | 3 Jun 01:00       | apple        | alain, Anne Durand      | (none)      |    | 2000  |
async fn mailbox() -> (Hub, Client) {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.append("INBOX", "()", &message("Subject: gone", 10)).await;
    let msgs = [
        (
            "01-Jan-2025 10:00:00 +0000",
            "From: =?UTF-8?Q?Zo=C3=A9_Bernard?= <alice@a.test>\nTo: Yves <zed@a.test>\nCc: b@a.test\nSubject: Re: banana\nDate: Tue, 3 Jun 2025 00:30:00 +0000",
            1000,
        ),
        (
            "03-Jan-2025 10:00:00 +0000",
            "From: \"Anne Durand\" <charlie@a.test>\nTo: <bob@a.test>\nSubject: apple\nDate: Sun, 1 Jun 2025 10:00:00 +0000",
            100,
        ),
        (
            "02-Jan-2025 10:00:00 +0000",
            "From: bob@a.test\nTo: Alice <yann@a.test>\nSubject: =?UTF-8?Q?=5Blabo=5D_Fwd=3A_cherry?=",
            3000,
        ),
        (
            "04-Jan-2025 10:00:00 +0000",
            "From: Anne Durand <alain@a.test>\nSubject: Fw: APPLE (fwd)\nDate: Mon, 2 Jun 2025 23:00:00 -0200",
            2000,
        ),
    ];
    for (date, headers, len) in msgs {
        c.append("INBOX", &format!("() \"{date}\""), &message(headers, len))
            .await;
    }
    c.select_inbox_without_the_first().await;
    (hub, c)
}

#[tokio::test]
async fn capability_advertises_sort_and_sort_display() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    let words = c.capabilities().await;
    assert!(words.iter().any(|w| w == "SORT"), "{words:?}");
    assert!(words.iter().any(|w| w == "SORT=DISPLAY"), "{words:?}");
}

/// RFC 5256 §3 and RFC 5957 §3: each criterion alone, ties by sequence number.
#[tokio::test]
async fn each_criterion_orders_the_messages() {
    let (_hub, mut c) = mailbox().await;
    for (criteria, expected) in [
        ("ARRIVAL", "1 3 2 4"),
        // §2.2: the Date: header in UTC, else the internal date.
        ("DATE", "3 2 1 4"),
        // §2.1: base subjects, decoded, case-insensitive.
        ("SUBJECT", "2 4 1 3"),
        // The addr-mailbox of the first address; none sorts first.
        ("FROM", "4 1 3 2"),
        ("TO", "4 2 3 1"),
        ("CC", "2 3 4 1"),
        ("SIZE", "2 1 4 3"),
        // RFC 5957: the display name, else the address.
        ("DISPLAYFROM", "2 4 3 1"),
        ("DISPLAYTO", "4 3 2 1"),
    ] {
        let r = c.cmd("t", &format!("SORT ({criteria}) UTF-8 ALL")).await;
        assert_eq!(sorted(&r), expected, "{criteria}: {r:?}");
    }
}

#[tokio::test]
async fn reverse_and_several_criteria() {
    let (_hub, mut c) = mailbox().await;
    for (criteria, expected) in [
        ("REVERSE SIZE", "3 4 1 2"),
        // Ties stay in sequence order under REVERSE (RFC 5256 §3).
        ("REVERSE SUBJECT", "3 1 2 4"),
        ("DISPLAYFROM REVERSE DATE", "4 2 3 1"),
        ("SUBJECT REVERSE ARRIVAL", "4 2 1 3"),
        ("reverse arrival", "4 2 3 1"),
    ] {
        let r = c.cmd("t", &format!("SORT ({criteria}) UTF-8 ALL")).await;
        assert_eq!(sorted(&r), expected, "{criteria}: {r:?}");
    }
}

#[tokio::test]
async fn uid_sort_answers_uids() {
    let (_hub, mut c) = mailbox().await;
    let r = c.cmd("u", "UID SORT (ARRIVAL) UTF-8 ALL").await;
    assert_eq!(sorted(&r), "2 4 3 5", "{r:?}");
    let r = c.cmd("u", "UID SORT (REVERSE DATE) US-ASCII UID 3:5").await;
    assert_eq!(sorted(&r), "5 3 4", "{r:?}");
}

/// The search keys are SEARCH's.
#[tokio::test]
async fn search_keys_select_the_messages() {
    let (_hub, mut c) = mailbox().await;
    let r = c
        .cmd("k", "SORT (REVERSE SUBJECT) UTF-8 FROM \"anne\"")
        .await;
    assert_eq!(sorted(&r), "2 4", "{r:?}");
    let r = c.cmd("k", "SORT (ARRIVAL) US-ASCII NOT 1").await;
    assert_eq!(sorted(&r), "3 2 4", "{r:?}");
    let r = c
        .cmd("k", "SORT (SIZE) utf-8 LARGER 1500 SMALLER 2500")
        .await;
    assert_eq!(sorted(&r), "4", "{r:?}");
    let r = c.cmd("k", "SORT (DATE) UTF-8 SUBJECT nothing").await;
    assert_eq!(sorted(&r), "", "{r:?}");
}

#[tokio::test]
async fn errors() {
    let (_hub, mut c) = mailbox().await;
    let r = c.cmd("b", "SORT () UTF-8 ALL").await;
    assert!(last(&r).starts_with("b BAD"), "{r:?}");
    let r = c.cmd("b", "SORT (SUBJECT REVERSE) UTF-8 ALL").await;
    assert!(last(&r).starts_with("b BAD"), "{r:?}");
    let r = c.cmd("b", "SORT (THREAD) UTF-8 ALL").await;
    assert!(last(&r).starts_with("b BAD"), "{r:?}");
    let r = c.cmd("b", "SORT (DATE) UTF-8").await;
    assert!(last(&r).starts_with("b BAD"), "{r:?}");
    let r = c.cmd("n", "SORT (DATE) ISO-8859-1 ALL").await;
    assert!(
        last(&r).starts_with("n NO [BADCHARSET (UTF-8 US-ASCII)]"),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.starts_with("* SORT")), "{r:?}");
    // Not in the selected state.
    let r = c.cmd("x", "UNSELECT").await;
    assert!(last(&r).starts_with("x OK"), "{r:?}");
    let r = c.cmd("b", "SORT (DATE) UTF-8 ALL").await;
    assert!(last(&r).starts_with("b BAD"), "{r:?}");
}
