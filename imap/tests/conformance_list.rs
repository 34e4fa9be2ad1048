//! LIST-EXTENDED (RFC 5258) and LSUB (RFC 3501 §6.3.9) conformance points an independent IMAP
//! test suite checked (each test names its RFC section): unknown options, subscribed names
//! that do not exist, RECURSIVEMATCH and CHILDINFO, the CHILDREN return option, several
//! patterns, and LSUB's `%` over an unsubscribed parent. Sessions are driven in memory, as in
//! `session.rs`.

mod common;

use common::*;
use mshub_directory::*;
use mshub_imap::{Imap, ImapConfig};

/// The untagged line naming `mailbox` (quoted), if any.
fn line_of<'a>(r: &'a [String], mailbox: &str) -> Option<&'a str> {
    let quoted = format!(" \"{mailbox}\"");
    r.iter().map(String::as_str).find(|l| {
        l.starts_with("* ") && (l.ends_with(&quoted) || l.contains(&format!("{quoted} (")))
    })
}

/// RFC 5258 §3 (and the §6 grammar): a selection or return option the server does not know
/// is a BAD command, as is RECURSIVEMATCH alone (or with REMOTE only). Known ones pass.
#[tokio::test]
async fn unknown_list_options_are_bad() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    for (tag, cmd) in [
        ("a", "LIST (FOO) \"\" \"*\""),
        ("b", "LIST (SUBSCRIBED FOO) \"\" \"*\""),
        ("c", "LIST \"\" \"*\" RETURN (FOO)"),
        ("d", "LIST \"\" \"*\" RETURN (SUBSCRIBED FOO)"),
        ("e", "LIST \"\" \"*\" RETURN (STATUS (MESSAGES FROB))"),
        ("f", "LIST (RECURSIVEMATCH) \"\" \"*\""),
        ("g", "LIST (REMOTE RECURSIVEMATCH) \"\" \"*\""),
    ] {
        let r = c.cmd(tag, cmd).await;
        assert_eq!(r.len(), 1, "{cmd}: {r:?}");
        assert!(last(&r).starts_with(&format!("{tag} BAD ")), "{cmd}: {r:?}");
    }
    for (tag, cmd) in [
        ("h", "LIST (REMOTE) \"\" \"*\""),
        ("i", "LIST () \"\" \"*\" RETURN ()"),
        (
            "j",
            "LIST (SUBSCRIBED REMOTE RECURSIVEMATCH) \"\" \"*\" RETURN (CHILDREN SUBSCRIBED \
             SPECIAL-USE STATUS (MESSAGES UIDNEXT))",
        ),
        ("k", "LIST (SPECIAL-USE) \"\" \"*\""),
    ] {
        let r = c.cmd(tag, cmd).await;
        assert_eq!(last(&r), format!("{tag} OK LIST completed"), "{cmd}: {r:?}");
    }
}

/// RFC 5258 §3 and §3.1: the SUBSCRIBED selection returns subscribed names whose
/// mailbox does not exist, flagged `\NonExistent` and `\Subscribed`; RFC 3501 §6.3.6:
/// the server does not drop a name from the subscriptions when its mailbox goes.
#[tokio::test]
async fn subscribed_names_without_a_mailbox_are_nonexistent() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    assert_eq!(
        last(&c.cmd("a", "CREATE Parti").await),
        "a OK CREATE completed"
    );
    assert_eq!(
        last(&c.cmd("b", "SUBSCRIBE Parti").await),
        "b OK SUBSCRIBE completed"
    );
    assert_eq!(
        last(&c.cmd("c", "DELETE Parti").await),
        "c OK DELETE completed"
    );
    assert_eq!(
        last(&c.cmd("d", "SUBSCRIBE Ailleurs").await),
        "d OK SUBSCRIBE completed"
    );

    let r = c.cmd("e", "LIST (SUBSCRIBED) \"\" \"*\"").await;
    for name in ["Parti", "Ailleurs"] {
        let l = line_of(&r, name).unwrap_or_else(|| panic!("{name} missing: {r:?}"));
        assert!(
            l.contains("\\NonExistent") && l.contains("\\Subscribed"),
            "{l}"
        );
        assert!(!l.contains("\\HasNoChildren"), "{l}");
    }
    assert!(
        line_of(&r, "INBOX").is_some_and(|l| !l.contains("\\NonExistent")),
        "{r:?}"
    );
    // A plain LIST shows existing mailboxes only; LSUB flags the names \Noselect.
    let r = c.cmd("f", "LIST \"\" \"*\"").await;
    assert!(line_of(&r, "Parti").is_none(), "{r:?}");
    let r = c.cmd("g", "LSUB \"\" \"*\"").await;
    assert!(
        line_of(&r, "Parti").is_some_and(|l| l.contains("\\Noselect")),
        "{r:?}"
    );
    // LIST-STATUS skips a name without a mailbox (RFC 5819 §2).
    let r = c
        .cmd(
            "h",
            "LIST (SUBSCRIBED) \"\" Parti RETURN (STATUS (MESSAGES))",
        )
        .await;
    assert_eq!(r.len(), 2, "{r:?}");

    assert_eq!(
        last(&c.cmd("i", "UNSUBSCRIBE Parti").await),
        "i OK UNSUBSCRIBE completed"
    );
    assert_eq!(
        last(&c.cmd("j", "CREATE Ailleurs").await),
        "j OK CREATE completed"
    );
    let r = c.cmd("k", "LIST (SUBSCRIBED) \"\" \"*\"").await;
    assert!(line_of(&r, "Parti").is_none(), "{r:?}");
    let l = line_of(&r, "Ailleurs").unwrap_or_else(|| panic!("{r:?}"));
    assert_eq!(
        l,
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Ailleurs\""
    );
    assert_eq!(
        last(&c.cmd("l", "UNSUBSCRIBE Nulle/Part").await),
        "l NO [NONEXISTENT] No such mailbox"
    );
}

/// RFC 5258 §3.1 (RECURSIVEMATCH) and §3.5 (CHILDINFO): with SUBSCRIBED and
/// RECURSIVEMATCH, a parent that is not subscribed, whose subscribed child the pattern does
/// not match, is returned with `CHILDINFO ("SUBSCRIBED")`, whether or not it exists.
#[tokio::test]
async fn recursivematch_returns_parents_of_subscribed_children_with_childinfo() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.cmd("a", "CREATE Dossiers/Camille").await;
    assert_eq!(
        last(&c.cmd("b", "UNSUBSCRIBE Dossiers").await),
        "b OK UNSUBSCRIBE completed"
    );
    assert_eq!(
        last(&c.cmd("c", "SUBSCRIBE Fantome/Enfant").await),
        "c OK SUBSCRIBE completed"
    );
    let r = c
        .cmd("d", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"")
        .await;
    assert!(
        r.contains(
            &"* LIST (\\HasChildren) \"/\" \"Dossiers\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"
                .to_string()
        ),
        "{r:?}"
    );
    assert!(
        r.contains(
            &"* LIST (\\NonExistent) \"/\" \"Fantome\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"
                .to_string()
        ),
        "{r:?}"
    );
    assert!(line_of(&r, "Dossiers/Camille").is_none(), "{r:?}");
    // Without RECURSIVEMATCH, neither parent is selected.
    let r = c.cmd("e", "LIST (SUBSCRIBED) \"\" \"%\"").await;
    assert!(line_of(&r, "Dossiers").is_none(), "{r:?}");
    assert!(line_of(&r, "Fantome").is_none(), "{r:?}");
    // With `*` the children match themselves: the parents are not repeated (§3.5).
    let r = c
        .cmd("f", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"*\"")
        .await;
    assert!(line_of(&r, "Dossiers").is_none(), "{r:?}");
    assert!(
        line_of(&r, "Dossiers/Camille").is_some_and(|l| l.contains("\\Subscribed")),
        "{r:?}"
    );
    assert!(
        line_of(&r, "Fantome/Enfant")
            .is_some_and(|l| l.contains("\\NonExistent") && l.contains("\\Subscribed")),
        "{r:?}"
    );
}

/// RFC 5258 §4 and RFC 3348: the CHILDREN return option gives `\HasChildren` or
/// `\HasNoChildren` on every mailbox returned.
#[tokio::test]
async fn children_return_option_gives_child_attributes() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.cmd("a", "CREATE Dossiers/Camille").await;
    let r = c.cmd("b", "LIST \"\" \"*\" RETURN (CHILDREN)").await;
    assert_eq!(last(&r), "b OK LIST completed");
    assert!(
        r.contains(&"* LIST (\\HasChildren) \"/\" \"Dossiers\"".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(&"* LIST (\\HasNoChildren) \"/\" \"Dossiers/Camille\"".to_string()),
        "{r:?}"
    );
    for l in &r[..r.len() - 1] {
        assert!(
            l.contains("\\HasChildren") || l.contains("\\HasNoChildren"),
            "{l}"
        );
    }
    let r = c
        .cmd("c", "LIST (SUBSCRIBED) \"\" \"%\" RETURN (CHILDREN)")
        .await;
    assert!(
        r.contains(&"* LIST (\\HasChildren \\Subscribed) \"/\" \"Dossiers\"".to_string()),
        "{r:?}"
    );
}

/// RFC 5258 §3: a parenthesised list of patterns; a mailbox matched by several is returned
/// once.
#[tokio::test]
async fn several_patterns_in_one_list() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    let r = c.cmd("a", "LIST \"\" (\"INBOX\" \"Sent*\")").await;
    assert_eq!(
        r,
        vec![
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"".to_string(),
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"".to_string(),
            "a OK LIST completed".to_string(),
        ]
    );
    let r = c.cmd("b", "LIST \"\" (inbox \"IN*\" %X)").await;
    assert_eq!(
        r,
        vec![
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"".to_string(),
            "b OK LIST completed".to_string(),
        ]
    );
    let r = c.cmd("c", "LIST \"\" ()").await;
    assert!(last(&r).starts_with("c BAD "), "{r:?}");
}

/// RFC 3501 §6.3.9: with `foo/bar` subscribed and `foo` not, LSUB with `%` returns `foo`,
/// flagged `\Noselect`; with `*` the child itself is returned instead.
#[tokio::test]
async fn lsub_percent_returns_an_unsubscribed_parent_as_noselect() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.cmd("a", "CREATE Dossiers/Camille").await;
    c.cmd("b", "UNSUBSCRIBE Dossiers").await;
    let r = c.cmd("c", "LSUB \"\" \"%\"").await;
    let l = line_of(&r, "Dossiers").unwrap_or_else(|| panic!("{r:?}"));
    assert!(l.starts_with("* LSUB (") && l.contains("\\Noselect"), "{l}");
    assert!(line_of(&r, "Dossiers/Camille").is_none(), "{r:?}");
    assert!(
        line_of(&r, "INBOX").is_some_and(|l| !l.contains("\\Noselect")),
        "{r:?}"
    );
    let r = c.cmd("d", "LSUB \"\" \"*\"").await;
    assert!(line_of(&r, "Dossiers").is_none(), "{r:?}");
    assert!(line_of(&r, "Dossiers/Camille").is_some(), "{r:?}");
    let r = c.cmd("e", "LSUB \"\" \"Dossiers/%\"").await;
    assert!(
        line_of(&r, "Dossiers/Camille").is_some_and(|l| !l.contains("\\Noselect")),
        "{r:?}"
    );
}

/// RFC 3501 §6.3.6: the server MUST NOT drop a subscription on its own. A name subscribed
/// without a mailbox is kept by the store: another server instance on the same store (a
/// restart, another node) still lists it.
#[tokio::test]
async fn a_subscription_without_a_mailbox_outlives_the_server_instance() {
    let mut hub = hub();
    let mut c = Client::login(&hub).await;
    assert_eq!(
        last(&c.cmd("a", "SUBSCRIBE Archives/2027").await),
        "a OK SUBSCRIBE completed"
    );
    drop(c);
    // In the store, not in the server's memory.
    let martin = hub
        .directory
        .account_by_address(&Address::try_from(MARTIN).unwrap())
        .unwrap()
        .unwrap();
    assert!(hub
        .store
        .subscribed_names(martin.id)
        .unwrap()
        .contains("Archives/2027"));
    hub.imap = Imap::new(
        ImapConfig::default(),
        hub.store.clone(),
        hub.directory.clone(),
        tls_config(),
    );
    let mut c = Client::login(&hub).await;
    let r = c.cmd("b", "LSUB \"\" \"*\"").await;
    assert!(
        line_of(&r, "Archives/2027").is_some_and(|l| l.contains("\\Noselect")),
        "{r:?}"
    );
    assert_eq!(
        last(&c.cmd("c", "UNSUBSCRIBE Archives/2027").await),
        "c OK UNSUBSCRIBE completed"
    );
    let r = c.cmd("d", "LSUB \"\" \"*\"").await;
    assert!(line_of(&r, "Archives/2027").is_none(), "{r:?}");
}
