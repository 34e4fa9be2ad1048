//! THREAD and UID THREAD (RFC 5256 §4–5): ORDEREDSUBJECT, REFERENCES (a missing parent, a
//! reference loop, a duplicate Message-ID, "Re:" subjects gathered under their original), the
//! nesting of §5, search keys, UIDs and the errors. Sessions are driven in memory, as in
//! `conformance_sort.rs`.

mod common;

use common::*;

impl Client {
    async fn append(&mut self, mailbox: &str, flags: &str, msg: &[u8]) {
        let r = self.append_with("ap", mailbox, flags, msg).await;
        assert!(last(&r).starts_with("ap OK "), "{r:?}");
    }
}

fn message(headers: &str) -> Vec<u8> {
    format!("{headers}\n\nbody\n")
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

/// What follows `* THREAD` in a reply (exactly one such line).
fn threads(r: &[String]) -> String {
    assert!(last(r).contains(" OK "), "{r:?}");
    let lines: Vec<&String> = r.iter().filter(|l| l.starts_with("* THREAD")).collect();
    assert_eq!(lines.len(), 1, "{r:?}");
    lines[0]["* THREAD".len()..].trim_start().to_string()
}

/// Fourteen messages, after one expunged so that UIDs are sequence numbers plus one:
///
/// | seq | Message-ID | References / In-Reply-To      | Subject          | Date (June 2025) |
/// |-----|------------|-------------------------------|------------------|------------------|
/// | 1   | a          |                               | Résultats        | 1 10:00          |
/// | 2   | b          | In-Reply-To: a                | Re: Résultats    | 2 10:00          |
/// | 3   | c          | a b                           | Re: Résultats    | 3 10:00          |
/// | 4   | d          | a                             | RE: résultats    | 2 12:00          |
/// | 5   | e          | missing (never delivered)     | Re: Rendez-vous  | 4                |
/// | 6   | f          | missing                       | Re: Rendez-vous  | 5                |
/// | 7   | g          | h                             | boucle           | 6                |
/// | 8   | h          | g (a loop: not linked)        | Re: boucle       | 7                |
/// | 9   | i          |                               | Re: Ordonnance   | 8                |
/// | 10  | j          |                               | Ordonnance       | 9                |
/// | 11  | (none)     |                               | Sans identifiant | 10               |
/// | 12  | a (again)  |                               | doublon          | 11               |
/// | 13  | m          |                               | Compte rendu     | 12               |
/// | 14  | n          |                               | Compte rendu     | 13               |
async fn mailbox() -> (Hub, Client) {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.append("INBOX", "()", &message("Subject: gone")).await;
    let msgs: [(&str, &str, &str, &str); 14] = [
        (
            "<a@x.test>",
            "",
            "Résultats",
            "Sun, 1 Jun 2025 10:00:00 +0000",
        ),
        (
            "<b@x.test>",
            "In-Reply-To: <a@x.test>",
            "Re: Résultats",
            "Mon, 2 Jun 2025 10:00:00 +0000",
        ),
        (
            "<c@x.test>",
            "References: <a@x.test>\n <b@x.test>",
            "Re: Résultats",
            "Tue, 3 Jun 2025 10:00:00 +0000",
        ),
        (
            "<d@x.test>",
            "References: <a@x.test>",
            "RE: résultats",
            "Mon, 2 Jun 2025 12:00:00 +0000",
        ),
        (
            "<e@x.test>",
            "References: <missing@x.test>",
            "Re: Rendez-vous",
            "Wed, 4 Jun 2025 10:00:00 +0000",
        ),
        (
            "<f@x.test>",
            "References: <missing@x.test>",
            "Re: Rendez-vous",
            "Thu, 5 Jun 2025 10:00:00 +0000",
        ),
        (
            "<g@x.test>",
            "References: <h@x.test>",
            "boucle",
            "Fri, 6 Jun 2025 10:00:00 +0000",
        ),
        (
            "<h@x.test>",
            "References: <g@x.test>",
            "Re: boucle",
            "Sat, 7 Jun 2025 10:00:00 +0000",
        ),
        (
            "<i@x.test>",
            "",
            "Re: Ordonnance",
            "Sun, 8 Jun 2025 10:00:00 +0000",
        ),
        (
            "<j@x.test>",
            "",
            "Ordonnance",
            "Mon, 9 Jun 2025 10:00:00 +0000",
        ),
        (
            "",
            "",
            "Sans identifiant",
            "Tue, 10 Jun 2025 10:00:00 +0000",
        ),
        (
            "<a@x.test>",
            "",
            "doublon",
            "Wed, 11 Jun 2025 10:00:00 +0000",
        ),
        (
            "<m@x.test>",
            "",
            "Compte rendu",
            "Thu, 12 Jun 2025 10:00:00 +0000",
        ),
        (
            "<n@x.test>",
            "",
            "Compte rendu",
            "Fri, 13 Jun 2025 10:00:00 +0000",
        ),
    ];
    for (id, refs, subject, date) in msgs {
        let mut headers = format!("From: a@x.test\nSubject: {subject}\nDate: {date}");
        if !id.is_empty() {
            headers.push_str(&format!("\nMessage-ID: {id}"));
        }
        if !refs.is_empty() {
            headers.push('\n');
            headers.push_str(refs);
        }
        c.append("INBOX", "()", &message(&headers)).await;
    }
    c.select_inbox_without_the_first().await;
    (hub, c)
}

/// RFC 5256 §3 and §4: one capability per algorithm.
#[tokio::test]
async fn capability_advertises_both_thread_algorithms() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    let words = c.capabilities().await;
    assert!(
        words.iter().any(|w| w == "THREAD=ORDEREDSUBJECT"),
        "{words:?}"
    );
    assert!(words.iter().any(|w| w == "THREAD=REFERENCES"), "{words:?}");
}

/// RFC 5256 §4 ORDEREDSUBJECT: threads of one base subject, sorted by sent date inside; the
/// first message is the parent of all the others (no grandchildren), and threads are ordered
/// by the sent date of their first message. §5: one child is written flat, several nested.
#[tokio::test]
async fn orderedsubject_groups_by_base_subject_then_sent_date() {
    let (_hub, mut c) = mailbox().await;
    let r = c.cmd("t", "THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    assert_eq!(
        threads(&r),
        "(1 (2)(4)(3))(5 6)(7 8)(9 10)(11)(12)(13 14)",
        "{r:?}"
    );
}

/// RFC 5256 §4 REFERENCES: parents from References (or In-Reply-To), children sorted by sent
/// date (step 6); the two replies to a message never delivered stay under a dummy at the top
/// (step 3: several children are not promoted to the root); the reference loop is not linked
/// (step 1A); "Re: Ordonnance" goes under "Ordonnance" (step 5C), two messages of one subject
/// that are not replies go under a new dummy; a duplicate Message-ID is a message of its own.
#[tokio::test]
async fn references_builds_threads_as_the_algorithm_says() {
    let (_hub, mut c) = mailbox().await;
    let r = c.cmd("t", "THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(
        threads(&r),
        "(1 (2 3)(4))((5)(6))(8 7)(10 9)(11)(12)((13)(14))",
        "{r:?}"
    );
}

/// RFC 5256 §4 step 3: a dummy (a parent not among the messages searched) with one child is
/// replaced by that child, even at the top; below the top, a dummy's children are promoted.
#[tokio::test]
async fn references_prunes_dummies_of_messages_not_searched() {
    let (_hub, mut c) = mailbox().await;
    for (set, expected) in [
        // 1 is not searched: its two replies stay under a dummy.
        ("2:6", "((2 3)(4))((5)(6))"),
        // Neither 1 nor 2: 3's dummy parent (2) is promoted away, 3 and 4 under 1's dummy,
        // by sent date.
        ("3:4", "((4)(3))"),
        // One child alone is promoted to the top.
        ("3", "(3)"),
        ("5", "(5)"),
    ] {
        let r = c.cmd("t", &format!("THREAD REFERENCES UTF-8 {set}")).await;
        assert_eq!(threads(&r), expected, "{set}: {r:?}");
    }
}

/// RFC 5256 §4: the search keys are SEARCH's; UID THREAD answers UIDs; no match is an empty
/// `* THREAD` (§5 `thread-data`).
#[tokio::test]
async fn search_keys_uids_and_no_match() {
    let (_hub, mut c) = mailbox().await;
    let r = c.cmd("u", "UID THREAD ORDEREDSUBJECT UTF-8 UID 2:5").await;
    assert_eq!(threads(&r), "(2 (3)(5)(4))", "{r:?}");
    let r = c
        .cmd("u", "UID THREAD REFERENCES US-ASCII SUBJECT boucle")
        .await;
    assert_eq!(threads(&r), "(9 8)", "{r:?}");
    let r = c.cmd("n", "THREAD REFERENCES UTF-8 SUBJECT nothing").await;
    assert!(last(&r).starts_with("n OK"), "{r:?}");
    assert!(r.iter().any(|l| l == "* THREAD"), "{r:?}");
}

#[tokio::test]
async fn errors() {
    let (_hub, mut c) = mailbox().await;
    let r = c.cmd("b", "THREAD SUBJECT UTF-8 ALL").await;
    assert!(last(&r).starts_with("b BAD"), "{r:?}");
    let r = c.cmd("b", "THREAD REFERENCES UTF-8").await;
    assert!(last(&r).starts_with("b BAD"), "{r:?}");
    let r = c.cmd("b", "THREAD (REFERENCES) UTF-8 ALL").await;
    assert!(last(&r).starts_with("b BAD"), "{r:?}");
    let r = c.cmd("n", "THREAD REFERENCES ISO-8859-1 ALL").await;
    assert!(
        last(&r).starts_with("n NO [BADCHARSET (UTF-8 US-ASCII)]"),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.starts_with("* THREAD")), "{r:?}");
    let r = c.cmd("x", "UNSELECT").await;
    assert!(last(&r).starts_with("x OK"), "{r:?}");
    let r = c.cmd("b", "THREAD REFERENCES UTF-8 ALL").await;
    assert!(last(&r).starts_with("b BAD"), "{r:?}");
}
