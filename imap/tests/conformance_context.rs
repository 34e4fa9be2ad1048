//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): `SEARCH RETURN (UPDATE)` and
//! `SORT RETURN (UPDATE)` keep the search while the mailbox stays selected and tell of the
//! messages that join or leave its result (ADDTO, REMOVEFROM, §4.3), CANCELUPDATE ends one
//! (§4.3, syntax in §5), the CONTEXT hint is accepted (§4.2), and the number of live
//! updates is bounded (`NO [LIMIT]`, RFC 5530 §3). One session keeps the search, another
//! changes the mailbox.

mod common;

use common::*;

/// A message with only a Subject: and a body of `body_len` octets.
fn subject_message(subject: &str, body_len: usize) -> Vec<u8> {
    message(&format!("Subject: {subject}"), body_len)
}

impl Client {
    async fn put(&mut self, flags: &str, body_len: usize) {
        let r = self
            .append_with("ap", "INBOX", flags, &subject_message("m", body_len))
            .await;
        assert!(last(&r).starts_with("ap OK "), "{r:?}");
    }

    async fn ok(&mut self, tag: &str, line: &str) -> Vec<String> {
        let r = self.cmd(tag, line).await;
        assert!(last(&r).starts_with(&format!("{tag} OK")), "{line}: {r:?}");
        r
    }

    /// The `* ESEARCH` lines a NOOP brings.
    async fn updates(&mut self) -> Vec<String> {
        let r = self.ok("n", "NOOP").await;
        r.into_iter()
            .filter(|l| l.starts_with("* ESEARCH"))
            .collect()
    }
}

/// Two sessions on INBOX, which holds messages of these body sizes (UIDs from 1), unseen.
async fn two_sessions(sizes: &[usize]) -> (Hub, Client, Client) {
    let hub = hub();
    let mut watcher = Client::login(&hub).await;
    for &len in sizes {
        watcher.put("()", len).await;
    }
    watcher.ok("s", "SELECT INBOX").await;
    let mut other = Client::login(&hub).await;
    other.ok("s", "SELECT INBOX").await;
    (hub, watcher, other)
}

/// RFC 5267 §4.1: CONTEXT=SEARCH and CONTEXT=SORT are advertised (with ESORT, §3).
#[tokio::test]
async fn capability_advertises_context_search_and_sort() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    let words = c.capabilities().await;
    assert!(words.iter().any(|w| w == "CONTEXT=SEARCH"), "{words:?}");
    assert!(words.iter().any(|w| w == "CONTEXT=SORT"), "{words:?}");
    assert!(words.iter().any(|w| w == "ESORT"), "{words:?}");
}

/// RFC 5267 §4.3: with UPDATE the server tells, at the moments it may send untagged
/// responses, of the messages that now match (ADDTO: position 0 for SEARCH, whose order is
/// the mailbox's) and of those that no longer match or were expunged (REMOVEFROM, at their
/// position in the result), always by UID, tagged with the search's tag.
#[tokio::test]
async fn search_update_tells_of_messages_added_and_removed() {
    let (_hub, mut c, mut other) = two_sessions(&[10, 20, 30]).await;
    let r = c.ok("A1", "SEARCH RETURN (ALL UPDATE) UNSEEN").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"A1\") ALL 1:3", "{r:?}");

    // A new unseen message joins the result, after EXISTS told of it.
    other.put("()", 40).await;
    let r = c.ok("n1", "NOOP").await;
    assert_eq!(
        r,
        vec![
            "* 4 EXISTS".to_string(),
            "* ESEARCH (TAG \"A1\") UID ADDTO (0 4)".to_string(),
            "n1 OK NOOP completed".to_string(),
        ]
    );
    // A seen one does not.
    other.put("(\\Seen)", 50).await;
    assert_eq!(c.updates().await, Vec::<String>::new());

    // \Seen set: the message leaves the result, at its position (2 of 1,2,3,4).
    other.ok("f1", "UID STORE 2 +FLAGS (\\Seen)").await;
    assert_eq!(
        c.updates().await,
        vec!["* ESEARCH (TAG \"A1\") UID REMOVEFROM (2 2)"]
    );
    // \Seen cleared: it comes back.
    other.ok("f2", "UID STORE 2 -FLAGS (\\Seen)").await;
    assert_eq!(
        c.updates().await,
        vec!["* ESEARCH (TAG \"A1\") UID ADDTO (0 2)"]
    );
    // A flag the search does not look at changes nothing.
    other.ok("f3", "UID STORE 3 +FLAGS (\\Deleted)").await;
    assert_eq!(c.updates().await, Vec::<String>::new());

    // Expunged: removed after the EXPUNGE, at its position (3 of 1,2,3,4).
    other.ok("x", "EXPUNGE").await;
    let r = c.ok("n2", "NOOP").await;
    assert_eq!(
        r,
        vec![
            "* 3 EXPUNGE".to_string(),
            "* ESEARCH (TAG \"A1\") UID REMOVEFROM (3 3)".to_string(),
            "n2 OK NOOP completed".to_string(),
        ]
    );

    // Several changes at once come in one response per search: removals (highest position
    // first, each against the result as the previous one left it), then additions.
    other.ok("f4", "UID STORE 1,4 +FLAGS (\\Seen)").await;
    other.ok("f5", "UID STORE 5 -FLAGS (\\Seen)").await;
    assert_eq!(
        c.updates().await,
        vec!["* ESEARCH (TAG \"A1\") UID REMOVEFROM (3 4 1 1) ADDTO (0 5)"]
    );

    // The session's own STORE counts too, told after its FETCH.
    let r = c.ok("f6", "UID STORE 5 +FLAGS (\\Seen)").await;
    assert_eq!(
        r[1..],
        [
            "* ESEARCH (TAG \"A1\") UID REMOVEFROM (2 5)".to_string(),
            "f6 OK UID STORE completed".to_string(),
        ],
        "{r:?}"
    );
}

/// RFC 5267 §4.3 with a search by sequence numbers: once an expunge shifts the numbers, `2:3`
/// names other messages, and the kept result follows them, not only the messages changed.
#[tokio::test]
async fn a_search_by_sequence_numbers_follows_the_renumbering() {
    let (_hub, mut c, mut other) = two_sessions(&[10, 20, 30, 40]).await;
    let r = c.ok("A1", "SEARCH RETURN (ALL UPDATE) 2:3").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"A1\") ALL 2:3", "{r:?}");

    // UID 1 goes: numbers 2:3 are now UIDs 3 and 4. UID 2 leaves the result (now number
    // 1), UID 4 joins it; UID 3 stays.
    other.ok("d", "UID STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    other.ok("x", "EXPUNGE").await;
    let r = c.ok("n1", "NOOP").await;
    assert_eq!(
        r,
        vec![
            "* 1 EXPUNGE".to_string(),
            "* ESEARCH (TAG \"A1\") UID REMOVEFROM (1 2) ADDTO (0 4)".to_string(),
            "n1 OK NOOP completed".to_string(),
        ]
    );
    let r = c.ok("s2", "UID SEARCH 2:3").await;
    assert_eq!(
        r[0], "* SEARCH 3 4",
        "the kept result is what a new search finds"
    );
}

/// RFC 5267 §4.3: a SORT's updates give each message's position in sort order: ADDTO where
/// it goes, REMOVEFROM where it was.
#[tokio::test]
async fn sort_update_gives_positions_in_sort_order() {
    let (_hub, mut c, mut other) = two_sessions(&[300, 100, 500]).await;
    let r = c
        .ok("S1", "UID SORT RETURN (ALL UPDATE) (SIZE) UTF-8 ALL")
        .await;
    assert_eq!(r[0], "* ESEARCH (TAG \"S1\") UID ALL 2,1,3", "{r:?}");

    // Size 200 goes between 100 and 300: position 2 of 2,4,1,3.
    other.put("()", 200).await;
    assert_eq!(
        c.updates().await,
        vec!["* ESEARCH (TAG \"S1\") UID ADDTO (2 4)"]
    );
    // Size 600 and 50: at the end (5) and at the start (1); in ascending positions, each
    // against the result the previous one left: 5,2,4,1,3,6.
    other.put("()", 600).await;
    other.put("()", 50).await;
    assert_eq!(
        c.updates().await,
        vec!["* ESEARCH (TAG \"S1\") UID ADDTO (1 6 6 5)"]
    );
    // UID 1 (size 300) is 4th of 6,2,4,1,3,5.
    other.ok("d", "UID STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    other.ok("x", "EXPUNGE").await;
    let r = c.ok("n", "NOOP").await;
    assert!(r.contains(&"* 1 EXPUNGE".to_string()), "{r:?}");
    let esearch: Vec<&String> = r.iter().filter(|l| l.starts_with("* ESEARCH")).collect();
    assert_eq!(esearch, vec!["* ESEARCH (TAG \"S1\") UID REMOVEFROM (4 1)"]);

    // In reverse order the positions follow that order.
    let r = c
        .ok("S2", "SORT RETURN (COUNT UPDATE) (REVERSE SIZE) UTF-8 ALL")
        .await;
    assert_eq!(r[0], "* ESEARCH (TAG \"S2\") COUNT 5", "{r:?}");
    // Size 250: position 3 of 5,3,4,2,6 (sizes 600 500 200 100 50), 4 of 6,2,4,3,5.
    other.put("()", 250).await;
    let mut u = c.updates().await;
    u.sort();
    assert_eq!(
        u,
        vec![
            "* ESEARCH (TAG \"S1\") UID ADDTO (4 7)",
            "* ESEARCH (TAG \"S2\") UID ADDTO (3 7)",
        ]
    );
}

/// RFC 5267 §4.3: updates are sent while IDLE too (RFC 2177), as EXISTS is.
#[tokio::test]
async fn updates_arrive_during_idle() {
    let (_hub, mut c, mut other) = two_sessions(&[10]).await;
    c.ok("A1", "UID SEARCH RETURN (UPDATE) UNSEEN").await;
    c.send(b"i IDLE\r\n").await;
    assert!(c.line().await.starts_with("+ "));
    other.put("()", 20).await;
    assert_eq!(c.line().await, "* 2 EXISTS");
    assert_eq!(c.line().await, "* ESEARCH (TAG \"A1\") UID ADDTO (0 2)");
    c.send(b"DONE\r\n").await;
    let r = c.until("i").await;
    assert!(last(&r).starts_with("i OK"), "{r:?}");
}

/// RFC 5267 §4.3: UPDATE alone answers only what RFC 4731 asks (no result option: the TAG,
/// and UID for UID SEARCH); CONTEXT (§4.2) is a hint, accepted with any option.
#[tokio::test]
async fn update_alone_and_the_context_hint() {
    let (_hub, mut c, _other) = two_sessions(&[10, 20]).await;
    let r = c.ok("A1", "UID SEARCH RETURN (UPDATE) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"A1\") UID", "{r:?}");
    let r = c.ok("A2", "SEARCH RETURN (CONTEXT COUNT) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"A2\") COUNT 2", "{r:?}");
    let r = c
        .ok("A3", "SORT RETURN (CONTEXT MIN) (SIZE) UTF-8 ALL")
        .await;
    assert_eq!(r[0], "* ESEARCH (TAG \"A3\") MIN 1", "{r:?}");
    // The hint alone: no result option, as UPDATE alone.
    let r = c.ok("A4", "SEARCH RETURN (CONTEXT) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"A4\")", "{r:?}");
}

/// RFC 5267 §4.3 (CANCELUPDATE, formal syntax §5): the named updates stop, the others go on;
/// a new SELECT (or CLOSE, UNSELECT) ends them all.
#[tokio::test]
async fn cancelupdate_and_reselect_end_updates() {
    let (_hub, mut c, mut other) = two_sessions(&[10]).await;
    c.ok("A1", "UID SEARCH RETURN (UPDATE) UNSEEN").await;
    c.ok("A2", "UID SEARCH RETURN (UPDATE) ALL").await;
    c.ok("A3", "UID SEARCH RETURN (UPDATE) UNDELETED").await;
    c.ok("c", "CANCELUPDATE \"A1\" \"A3\"").await;
    other.put("()", 20).await;
    assert_eq!(
        c.updates().await,
        vec!["* ESEARCH (TAG \"A2\") UID ADDTO (0 2)"]
    );

    c.ok("s", "SELECT INBOX").await;
    other.put("()", 30).await;
    assert_eq!(c.updates().await, Vec::<String>::new());
    c.ok("A4", "UID SEARCH RETURN (UPDATE) ALL").await;
    c.ok("u", "UNSELECT").await;
    c.ok("s2", "SELECT INBOX").await;
    other.put("()", 40).await;
    assert_eq!(c.updates().await, Vec::<String>::new());

    // CANCELUPDATE belongs to the selected state; it needs at least one tag.
    let r = c.cmd("b", "CANCELUPDATE").await;
    assert!(last(&r).starts_with("b BAD"), "{r:?}");
    c.ok("u2", "UNSELECT").await;
    let r = c.cmd("b2", "CANCELUPDATE \"A4\"").await;
    assert!(last(&r).starts_with("b2 BAD"), "{r:?}");
}

/// RFC 5530 §3 LIMIT: at most 10 live updates per selection; the 11th search with UPDATE is
/// refused (and not run); cancelling one makes room again.
#[tokio::test]
async fn live_updates_are_bounded() {
    let (_hub, mut c, _other) = two_sessions(&[10]).await;
    for i in 0..10 {
        c.ok(&format!("U{i}"), "UID SEARCH RETURN (UPDATE) ALL")
            .await;
    }
    let r = c.cmd("U10", "UID SEARCH RETURN (ALL UPDATE) ALL").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(last(&r).starts_with("U10 NO [LIMIT]"), "{r:?}");
    let r = c.cmd("S10", "SORT RETURN (UPDATE) (SIZE) UTF-8 ALL").await;
    assert!(last(&r).starts_with("S10 NO [LIMIT]"), "{r:?}");
    // The same tag again replaces its update rather than adding one.
    c.ok("U3", "UID SEARCH RETURN (UPDATE) ALL").await;
    // A search without UPDATE is not counted.
    c.ok("plain", "SEARCH RETURN (ALL) ALL").await;
    c.ok("c", "CANCELUPDATE \"U0\"").await;
    c.ok("U10", "UID SEARCH RETURN (UPDATE) ALL").await;
}
