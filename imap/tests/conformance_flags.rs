//! Conformance of the flags a session announces: keywords in `* FLAGS` / `PERMANENTFLAGS`
//! before any FETCH shows them, and IMAP4rev1's `\Recent` (each message recent for exactly one
//! session). Sessions driven in memory, exact replies checked.

use std::collections::BTreeSet;

mod common;

use common::*;
use mshub_store::{Flag, MailboxId, SpecialUse, Uid};

impl Hub {
    fn inbox(&self) -> MailboxId {
        self.mailbox(SpecialUse::Inbox)
    }

    /// A delivery, as the MTA makes it.
    fn deliver(&self) -> Uid {
        self.store
            .append(self.inbox(), MSG, BTreeSet::new(), 1_700_000_000)
            .unwrap()
            .uid
    }
}

impl Client {
    async fn append(&mut self, tag: &str, mailbox: &str, flags: &str) -> Vec<String> {
        self.append_with(tag, mailbox, flags, MSG).await
    }
}

fn has(r: &[String], needle: &str) -> bool {
    r.iter().any(|l| l.contains(needle))
}

/// Position of the first line starting with `prefix`.
fn at(r: &[String], prefix: &str) -> usize {
    r.iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {r:?}"))
}

const MSG: &[u8] = b"From: Labo <labo@hopital.mshub.test>\r\nTo: dr.martin@hopital.mshub.test\r\nSubject: Resultats NFS\r\nDate: Mon, 2 Jun 2025 10:00:00 +0200\r\nMessage-ID: <r1@hopital.mshub.test>\r\n\r\nHemoglobine normale.\r\n";

const SYSTEM: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

// ----- Keywords -----

/// RFC 3501 §7.2.6 / RFC 9051 §7.3.5 (FLAGS) and §7.1 (PERMANENTFLAGS): SELECT lists the
/// flags defined in the mailbox, system flags and every keyword in use, and `\*` since new
/// keywords may be created.
#[tokio::test]
async fn select_lists_the_keywords_in_use() {
    let hub = hub();
    let mut a = Client::login(&hub).await;
    a.append("a1", "INBOX", "($Label1 \\Seen)").await;
    a.append("a2", "INBOX", "(Important)").await;
    let r = a.cmd("s", "SELECT INBOX").await;
    assert!(
        r.contains(&format!("* FLAGS ({SYSTEM} $Label1 Important)")),
        "{r:?}"
    );
    assert!(
        r.contains(&format!(
            "* OK [PERMANENTFLAGS ({SYSTEM} $Label1 Important \\*)] Flags permitted"
        )),
        "{r:?}"
    );
    // EXAMINE lists them too; nothing is permanent in a read-only mailbox.
    let r = a.cmd("e", "EXAMINE INBOX").await;
    assert!(
        r.contains(&format!("* FLAGS ({SYSTEM} $Label1 Important)")),
        "{r:?}"
    );
    assert!(has(&r, "* OK [PERMANENTFLAGS ()]"), "{r:?}");
}

/// RFC 3501 §7.2.6 / RFC 9051 §7.3.5: a STORE that introduces a keyword is preceded, in the
/// storing session, by `* FLAGS` (and PERMANENTFLAGS) naming it, before the FETCH showing it;
/// a keyword already announced is not announced again.
#[tokio::test]
async fn the_storing_session_announces_a_new_keyword_before_its_fetch() {
    let hub = hub();
    let mut a = Client::login(&hub).await;
    a.append("a1", "INBOX", "()").await;
    a.append("a2", "INBOX", "()").await;
    let r = a.cmd("s", "SELECT INBOX").await;
    assert!(r.contains(&format!("* FLAGS ({SYSTEM})")), "{r:?}");
    let r = a.cmd("t", "STORE 1 +FLAGS ($Label1)").await;
    assert_eq!(r[0], format!("* FLAGS ({SYSTEM} $Label1)"), "{r:?}");
    assert_eq!(
        r[1],
        format!("* OK [PERMANENTFLAGS ({SYSTEM} $Label1 \\*)] Flags permitted"),
        "{r:?}"
    );
    assert!(r[2].starts_with("* 1 FETCH (FLAGS ("), "{r:?}");
    assert!(r[2].contains("$Label1"), "{r:?}");
    assert_eq!(last(&r), "t OK STORE completed");
    // Already known: no second announcement.
    let r = a.cmd("u", "STORE 2 +FLAGS ($Label1)").await;
    assert!(!has(&r, "* FLAGS"), "{r:?}");
    // Silent: the FETCH is not sent, the new keyword still is.
    let r = a.cmd("v", "STORE 2 +FLAGS.SILENT (Important)").await;
    assert_eq!(
        r,
        vec![
            format!("* FLAGS ({SYSTEM} $Label1 Important)"),
            format!("* OK [PERMANENTFLAGS ({SYSTEM} $Label1 Important \\*)] Flags permitted"),
            "v OK STORE completed".to_string(),
        ]
    );
}

/// RFC 3501 §7.2.6 / RFC 9051 §7.3.5: a keyword another session introduced reaches this one as
/// `* FLAGS` + PERMANENTFLAGS before the unsolicited FETCH that shows it (the stress tool's
/// "keyword used without being in FLAGS").
#[tokio::test]
async fn another_sessions_new_keyword_is_announced_before_the_fetch() {
    let hub = hub();
    let mut a = Client::login(&hub).await;
    let mut b = Client::login(&hub).await;
    a.append("a1", "INBOX", "()").await;
    a.cmd("s", "SELECT INBOX").await;
    b.cmd("s", "SELECT INBOX").await;
    a.cmd("t", "STORE 1 +FLAGS ($Label1)").await;
    let r = b.cmd("n", "NOOP").await;
    assert_eq!(
        r,
        vec![
            format!("* FLAGS ({SYSTEM} $Label1)"),
            format!("* OK [PERMANENTFLAGS ({SYSTEM} $Label1 \\*)] Flags permitted"),
            "* 1 FETCH (FLAGS ($Label1) UID 1)".to_string(),
            "n OK NOOP completed".to_string(),
        ]
    );
}

/// RFC 3501 §7.2.6: the FETCH the client asked for shows the keyword only after `* FLAGS`
/// named it, even when no NOOP came in between.
#[tokio::test]
async fn a_fetch_right_after_another_sessions_store_announces_first() {
    let hub = hub();
    let mut a = Client::login(&hub).await;
    let mut b = Client::login(&hub).await;
    a.append("a1", "INBOX", "(\\Seen)").await;
    a.cmd("s", "SELECT INBOX").await;
    b.cmd("s", "SELECT INBOX").await;
    a.cmd("t", "STORE 1 +FLAGS (Important)").await;
    let r = b.cmd("f", "FETCH 1 (FLAGS)").await;
    let flags = at(&r, "* FLAGS (");
    let fetch = at(&r, "* 1 FETCH (FLAGS (\\Seen Important)");
    assert!(flags < fetch, "{r:?}");
    assert!(r[flags].contains("Important"), "{r:?}");
    // Told once: the update after the command does not repeat it.
    assert_eq!(r.iter().filter(|l| l.starts_with("* FLAGS")).count(), 1);
}

/// RFC 3501 §7.2.6 and §6.3.11 (APPEND): a message appended with a new keyword to the selected
/// mailbox is announced (FLAGS) to the appending session and to the others before any FETCH.
#[tokio::test]
async fn an_append_with_a_new_keyword_is_announced() {
    let hub = hub();
    let mut a = Client::login(&hub).await;
    let mut b = Client::login(&hub).await;
    a.cmd("s", "SELECT INBOX").await;
    b.cmd("s", "SELECT INBOX").await;
    let r = a.append("p", "INBOX", "($Label2)").await;
    assert!(r.contains(&format!("* FLAGS ({SYSTEM} $Label2)")), "{r:?}");
    assert!(at(&r, "* FLAGS") < at(&r, "* 1 EXISTS"), "{r:?}");
    let r = b.cmd("n", "NOOP").await;
    assert!(r.contains(&format!("* FLAGS ({SYSTEM} $Label2)")), "{r:?}");
    let r = b.cmd("f", "FETCH 1 FLAGS").await;
    assert!(!has(&r, "* FLAGS"), "{r:?}");
    assert!(r[0].contains("$Label2"), "{r:?}");
}

// ----- \Recent (IMAP4rev1) -----

/// RFC 3501 §6.3.1, §7.3.2 and §2.3.2: SELECT reports how many messages arrived since the
/// mailbox was last selected, and claims them: they are `\Recent` in this session's FETCH and
/// SEARCH (RECENT, NEW = RECENT UNSEEN, OLD = NOT RECENT), and in no later session's.
#[tokio::test]
async fn select_reports_and_claims_the_recent_messages() {
    let hub = hub();
    hub.deliver();
    hub.deliver();
    let mut a = Client::login(&hub).await;
    let r = a.cmd("s", "SELECT INBOX").await;
    assert!(r.contains(&"* 2 RECENT".to_string()), "{r:?}");
    let r = a.cmd("f", "FETCH 1:* (FLAGS)").await;
    assert_eq!(r[0], "* 1 FETCH (FLAGS (\\Recent))");
    assert_eq!(r[1], "* 2 FETCH (FLAGS (\\Recent))");
    a.cmd("t", "STORE 1 +FLAGS.SILENT (\\Seen)").await;
    assert_eq!(a.cmd("r", "SEARCH RECENT").await[0], "* SEARCH 1 2");
    assert_eq!(a.cmd("n", "SEARCH NEW").await[0], "* SEARCH 2");
    assert_eq!(a.cmd("o", "SEARCH OLD").await[0], "* SEARCH");
    let r = a.cmd("u", "STORE 2 +FLAGS (\\Flagged)").await;
    assert_eq!(r[0], "* 2 FETCH (FLAGS (\\Flagged \\Recent))");

    let mut b = Client::login(&hub).await;
    let r = b.cmd("s", "SELECT INBOX").await;
    assert!(r.contains(&"* 0 RECENT".to_string()), "{r:?}");
    let r = b.cmd("f", "FETCH 1:* (FLAGS)").await;
    assert!(!has(&r, "\\Recent"), "{r:?}");
    assert_eq!(b.cmd("r", "SEARCH RECENT").await[0], "* SEARCH");
    assert_eq!(b.cmd("o", "SEARCH OLD").await[0], "* SEARCH 1 2");
    // Reselecting does not give them back: they were claimed.
    let r = a.cmd("s2", "SELECT INBOX").await;
    assert!(r.contains(&"* 0 RECENT".to_string()), "{r:?}");
}

/// RFC 3501 §6.3.2: EXAMINE reports the recent messages (and shows them `\Recent`) without
/// claiming them: the next SELECT still gets them.
#[tokio::test]
async fn examine_shows_recent_messages_without_claiming_them() {
    let hub = hub();
    hub.deliver();
    let mut a = Client::login(&hub).await;
    let r = a.cmd("e", "EXAMINE INBOX").await;
    assert!(r.contains(&"* 1 RECENT".to_string()), "{r:?}");
    assert_eq!(
        a.cmd("f", "FETCH 1 FLAGS").await[0],
        "* 1 FETCH (FLAGS (\\Recent))"
    );
    let mut b = Client::login(&hub).await;
    let r = b.cmd("s", "SELECT INBOX").await;
    assert!(r.contains(&"* 1 RECENT".to_string()), "{r:?}");
    let r = a.cmd("e2", "EXAMINE INBOX").await;
    assert!(r.contains(&"* 0 RECENT".to_string()), "{r:?}");
}

/// RFC 3501 §2.3.2 and §7.3.2: a message arriving while two sessions have the mailbox selected
/// is recent for exactly one of them (the first told of it), which gets `* n RECENT` with the
/// EXISTS; the other sees it without `\Recent`.
#[tokio::test]
async fn a_new_message_is_recent_for_exactly_one_session() {
    let hub = hub();
    let mut a = Client::login(&hub).await;
    let mut b = Client::login(&hub).await;
    a.cmd("s", "SELECT INBOX").await;
    b.cmd("s", "SELECT INBOX").await;
    hub.deliver();
    let r = a.cmd("n", "NOOP").await;
    assert_eq!(
        r,
        vec![
            "* 1 EXISTS".to_string(),
            "* 1 RECENT".to_string(),
            "n OK NOOP completed".to_string()
        ]
    );
    let r = b.cmd("n", "NOOP").await;
    assert_eq!(
        r,
        vec!["* 1 EXISTS".to_string(), "n OK NOOP completed".to_string()]
    );
    assert_eq!(
        a.cmd("f", "FETCH 1 FLAGS").await[0],
        "* 1 FETCH (FLAGS (\\Recent))"
    );
    assert_eq!(b.cmd("f", "FETCH 1 FLAGS").await[0], "* 1 FETCH (FLAGS ())");
    assert_eq!(a.cmd("r", "SEARCH RECENT").await[0], "* SEARCH 1");
    assert_eq!(b.cmd("r", "SEARCH RECENT").await[0], "* SEARCH");
}

/// RFC 3501 §2.3.2: whoever claims concurrently (sessions on several nodes share the store),
/// each UID is claimed by exactly one.
#[tokio::test]
async fn concurrent_claims_never_share_a_message() {
    let hub = hub();
    let inbox = hub.inbox();
    let mut uids = Vec::new();
    for _ in 0..20 {
        uids.push(hub.deliver());
    }
    let store = hub.store.clone();
    let claims: Vec<(u32, u32)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let up_to = uids[5 + i * 2];
                s.spawn(move || (store.claim_recent(inbox, up_to).unwrap(), up_to.get()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut seen = BTreeSet::new();
    for (before, up_to) in claims {
        for uid in before + 1..=up_to {
            assert!(seen.insert(uid), "UID {uid} claimed twice");
        }
    }
    assert_eq!(store.recent_uid(inbox).unwrap(), uids[19].get());
}

/// RFC 9051 §2.3.2 and Appendix E: IMAP4rev2 has no `\Recent`; a session that enabled it gets
/// no RECENT response nor flag, and claims nothing (a rev1 session still sees the messages
/// recent).
#[tokio::test]
async fn imap4rev2_sessions_neither_see_nor_claim_recent() {
    let hub = hub();
    hub.deliver();
    let mut a = Client::login(&hub).await;
    a.cmd("e", "ENABLE IMAP4rev2").await;
    let r = a.cmd("s", "SELECT INBOX").await;
    assert!(!has(&r, "RECENT"), "{r:?}");
    assert_eq!(a.cmd("f", "FETCH 1 FLAGS").await[0], "* 1 FETCH (FLAGS ())");
    hub.deliver();
    let r = a.cmd("n", "NOOP").await;
    assert_eq!(
        r,
        vec!["* 2 EXISTS".to_string(), "n OK NOOP completed".to_string()]
    );
    let mut b = Client::login(&hub).await;
    let r = b.cmd("s", "SELECT INBOX").await;
    assert!(r.contains(&"* 2 RECENT".to_string()), "{r:?}");
}

/// RFC 3501 §2.3.2: `\Recent` cannot be set by STORE nor APPEND; a rev1 session's FETCH after
/// STORE keeps showing it while the message is recent for it.
#[tokio::test]
async fn recent_is_not_a_stored_flag() {
    let hub = hub();
    hub.deliver();
    let mut a = Client::login(&hub).await;
    a.cmd("s", "SELECT INBOX").await;
    let r = a.cmd("t", "STORE 1 FLAGS (\\Seen)").await;
    assert_eq!(r[0], "* 1 FETCH (FLAGS (\\Seen \\Recent))");
    let meta = hub.store.message(hub.inbox(), Uid::MIN).unwrap().unwrap();
    assert_eq!(meta.flags, [Flag::Seen].into_iter().collect());
}

/// RFC 3501 §6.3.10: STATUS RECENT counts the messages no session has claimed yet; a SELECT
/// that claims them brings it to 0. An IMAP4rev2 session is told none.
#[tokio::test]
async fn status_counts_the_recent_messages_until_a_select_claims_them() {
    let hub = hub();
    hub.deliver();
    hub.deliver();
    let mut a = Client::login(&hub).await;
    let r = a.cmd("s", "STATUS INBOX (MESSAGES RECENT)").await;
    assert!(
        r.iter().any(|l| l.ends_with("(MESSAGES 2 RECENT 2)")),
        "{r:?}"
    );
    let mut b = Client::login(&hub).await;
    b.cmd("sel", "SELECT INBOX").await;
    let r = a.cmd("s2", "STATUS INBOX (RECENT)").await;
    assert!(r.iter().any(|l| l.ends_with("(RECENT 0)")), "{r:?}");
    hub.deliver();
    let mut c = Client::login(&hub).await;
    c.cmd("en", "ENABLE IMAP4rev2").await;
    let r = c.cmd("s3", "STATUS INBOX (RECENT)").await;
    assert!(r.iter().any(|l| l.ends_with("(RECENT 0)")), "{r:?}");
}

// ----- Searching what another session changed -----

/// RFC 9051 §6.4.4: SEARCH matches the messages as they are, even when this session was not
/// yet told of another session's changes (§7.5.1: no EXPUNGE after a SEARCH by number, so a
/// message expunged meanwhile keeps its number and is simply not found); STATUS counts them
/// as they are too (§6.3.11).
#[tokio::test]
async fn search_and_status_see_other_sessions_changes_before_they_are_told() {
    let hub = hub();
    for _ in 0..4 {
        hub.deliver();
    }
    let mut a = Client::login(&hub).await;
    let r = a.cmd("s", "SELECT INBOX").await;
    assert!(has(&r, "* 4 EXISTS"), "{r:?}");
    let r = a.cmd("u0", "SEARCH UNSEEN").await;
    assert!(r.contains(&"* SEARCH 1 2 3 4".to_string()), "{r:?}");

    let mut b = Client::login(&hub).await;
    b.cmd("s", "SELECT INBOX").await;
    let r = b.cmd("f", "STORE 1 +FLAGS.SILENT (\\Seen)").await;
    assert!(last(&r).starts_with("f OK"), "{r:?}");
    let r = b.cmd("d", "STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    assert!(last(&r).starts_with("d OK"), "{r:?}");
    let r = b.cmd("e", "EXPUNGE").await;
    assert!(has(&r, "* 2 EXPUNGE"), "{r:?}");
    let r = b.cmd("f2", "UID STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    assert!(last(&r).starts_with("f2 OK"), "{r:?}");

    // A still numbers the messages 1-4: 1 is seen now, 2 is gone, 3 and 4 are unseen.
    let r = a.cmd("u1", "SEARCH UNSEEN").await;
    assert!(r.contains(&"* SEARCH 3 4".to_string()), "{r:?}");
    assert!(
        !has(&r, "EXPUNGE"),
        "no EXPUNGE after SEARCH by number: {r:?}"
    );
    let r = a.cmd("u2", "SEARCH SEEN").await;
    assert!(r.contains(&"* SEARCH 1".to_string()), "{r:?}");
    let r = a.cmd("u3", "SEARCH DELETED").await;
    assert!(r.contains(&"* SEARCH 3".to_string()), "{r:?}");
    let st = a.cmd("st", "STATUS INBOX (MESSAGES UNSEEN DELETED)").await;
    assert!(
        has(&st, "* STATUS \"INBOX\" (MESSAGES 3 UNSEEN 2 DELETED 1)"),
        "{st:?}"
    );
    // Told now (after STATUS or NOOP); the numbers move down and the next search uses them.
    let n = a.cmd("n", "NOOP").await;
    assert!(
        has(&st, "* 2 EXPUNGE") || has(&n, "* 2 EXPUNGE"),
        "{st:?} {n:?}"
    );
    let r = a.cmd("u4", "SEARCH UNSEEN").await;
    assert!(r.contains(&"* SEARCH 2 3".to_string()), "{r:?}");
    let r = a.cmd("u5", "UID SEARCH UNDELETED").await;
    assert!(r.contains(&"* SEARCH 1 4".to_string()), "{r:?}");
}
