//! NOTIFY (RFC 5465): the events asked for are told unsolicited, between commands and not
//! only in IDLE — for the selected mailbox as EXISTS, EXPUNGE and FETCH (with the attributes
//! asked for new messages), for the others as STATUS, and mailboxes created, renamed and
//! deleted as LIST; the rules of §5 between events; `NOTIFY NONE`; `selected-delayed`.
//! Sessions driven in memory, exact replies checked.

use std::collections::BTreeSet;
use std::time::Duration;

mod common;

use common::*;
use mshub_store::SpecialUse;

const MSG: &[u8] = b"From: Labo <labo@hopital.mshub.test>\r\nTo: dr.martin@hopital.mshub.test\r\nSubject: Resultats\r\n\r\nHemoglobine normale.\r\n";

impl Hub {
    /// A delivery, as the MTA makes it: the new UID.
    fn deliver(&self, special: SpecialUse) -> u32 {
        self.store
            .append(self.mailbox(special), MSG, BTreeSet::new(), 1_700_000_000)
            .unwrap()
            .uid
            .get()
    }
}

impl Client {
    async fn ok(&mut self, tag: &str, line: &str) -> Vec<String> {
        let r = self.cmd(tag, line).await;
        assert!(last(&r).starts_with(&format!("{tag} OK")), "{line}: {r:?}");
        r
    }

    /// The next line the server sends on its own, within 2 s.
    async fn told(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(2), self.line())
            .await
            .expect("an unsolicited response within 2 s")
    }

    /// Nothing arrives unsolicited for a while.
    async fn silent(&mut self) {
        if let Ok(line) = tokio::time::timeout(Duration::from_millis(300), self.line()).await {
            panic!("unexpected: {line}");
        }
    }
}

/// RFC 5465 §1: NOTIFY is advertised once logged in.
#[tokio::test]
async fn notify_is_advertised() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    assert!(c.capabilities().await.iter().any(|w| w == "NOTIFY"));
}

/// RFC 5465 §5 and §8: what may not be asked is BAD; an event not offered is
/// `NO [BADEVENT (the events offered)]`; NONE is fine.
#[tokio::test]
async fn the_rules_between_events_are_checked() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    for bad in [
        // MessageNew and MessageExpunge go together (§5.2, §5.3).
        "NOTIFY SET (selected (MessageNew))",
        "NOTIFY SET (personal (MessageExpunge))",
        // FlagChange needs both (§5.1).
        "NOTIFY SET (selected (FlagChange))",
        // Fetch attributes are for the selected mailbox only (§5.2), and never set \Seen.
        "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
        "NOTIFY SET (selected (MessageNew (BODY[]) MessageExpunge))",
        // One selected filter (§6).
        "NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew MessageExpunge))",
        "NOTIFY SET (personal (Foo))",
        "NOTIFY SET (elsewhere (MailboxName))",
        "NOTIFY SET ()",
        "NOTIFY",
    ] {
        let r = c.cmd("b", bad).await;
        assert!(last(&r).starts_with("b BAD "), "{bad}: {r:?}");
    }
    let r = c
        .cmd(
            "n",
            "NOTIFY SET (personal (MessageNew MessageExpunge AnnotationChange))",
        )
        .await;
    assert_eq!(
        last(&r),
        "n NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName)] Unsupported NOTIFY events"
    );
    let r = c
        .cmd("s", "NOTIFY SET (personal (SubscriptionChange))")
        .await;
    assert!(last(&r).starts_with("s NO [BADEVENT "), "{r:?}");
    c.ok("z", "NOTIFY NONE").await;
    c.ok(
        "m",
        "NOTIFY SET (subtree (INBOX Archives) (MessageNew MessageExpunge MailboxName)) (mailboxes Sent NONE)",
    )
    .await;
}

/// RFC 5465 §3: with STATUS, the mailboxes now watched for message events are each given a
/// STATUS before the tagged OK — not the selected one.
#[tokio::test]
async fn notify_set_status_gives_each_watched_mailbox_now() {
    let hub = hub();
    hub.deliver(SpecialUse::Sent);
    hub.deliver(SpecialUse::Sent);
    let mut c = Client::login(&hub).await;
    c.ok("s", "SELECT INBOX").await;
    let r = c
        .ok(
            "n",
            "NOTIFY SET STATUS (personal (MessageNew MessageExpunge))",
        )
        .await;
    let sent = r
        .iter()
        .find(|l| l.starts_with("* STATUS \"Sent\""))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(sent.contains("MESSAGES 2 UIDNEXT 3 UNSEEN 2"), "{sent}");
    assert!(sent.contains("UIDVALIDITY "), "{sent}");
    assert!(
        !r.iter().any(|l| l.starts_with("* STATUS \"INBOX\"")),
        "not the selected mailbox: {r:?}"
    );
    assert!(
        r.iter().any(|l| l.starts_with("* STATUS \"Drafts\"")),
        "{r:?}"
    );
}

/// RFC 5465 §5.2-§5.4: without any command from the client, a new message in the selected
/// mailbox is told with the attributes asked, one in another mailbox as STATUS, flags changed
/// there too, an expunge at once, and mailboxes created, renamed and deleted as LIST.
#[tokio::test]
async fn changes_are_told_between_commands() {
    let hub = hub();
    hub.deliver(SpecialUse::Inbox);
    let mut c = Client::login(&hub).await;
    c.ok("s", "SELECT INBOX").await;
    c.ok(
        "n",
        "NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange)) \
         (personal (MessageNew MessageExpunge FlagChange MailboxName))",
    )
    .await;

    let uid = hub.deliver(SpecialUse::Inbox);
    assert_eq!(c.told().await, "* 2 EXISTS");
    assert_eq!(c.told().await, "* 2 RECENT", "an IMAP4rev1 session");
    assert_eq!(
        c.told().await,
        format!("* 2 FETCH (UID {uid} FLAGS (\\Recent))")
    );

    hub.deliver(SpecialUse::Sent);
    assert_eq!(
        c.told().await,
        "* STATUS \"Sent\" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)"
    );

    let mut other = Client::login(&hub).await;
    other.ok("s", "SELECT Sent").await;
    other.ok("f", "STORE 1 +FLAGS (\\Seen)").await;
    assert_eq!(
        c.told().await,
        "* STATUS \"Sent\" (MESSAGES 1 UIDNEXT 2 UNSEEN 0)"
    );
    other.ok("s2", "SELECT INBOX").await;
    other.ok("d", "UID STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(
        c.told().await,
        "* 1 FETCH (FLAGS (\\Deleted \\Recent) UID 1)"
    );
    other.ok("x", "EXPUNGE").await;
    assert_eq!(c.told().await, "* 1 EXPUNGE");

    other.ok("c", "CREATE Projets").await;
    assert_eq!(c.told().await, "* LIST () \"/\" \"Projets\"");
    other.ok("r", "RENAME Projets Dossiers").await;
    assert_eq!(
        c.told().await,
        "* LIST () \"/\" \"Dossiers\" (\"OLDNAME\" (\"Projets\"))"
    );
    other.ok("x2", "DELETE Dossiers").await;
    assert_eq!(c.told().await, "* LIST (\\NonExistent) \"/\" \"Dossiers\"");
    c.silent().await;
    // The session goes on as before.
    let r = c.ok("u", "UID SEARCH ALL").await;
    assert_eq!(r[0], format!("* SEARCH {uid}"));
}

/// RFC 5465 §3: NOTIFY NONE stops them; the base protocol's updates come with the next
/// command as before.
#[tokio::test]
async fn notify_none_stops_them() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.ok("s", "SELECT INBOX").await;
    c.ok(
        "n",
        "NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge))",
    )
    .await;
    c.ok("z", "NOTIFY NONE").await;
    hub.deliver(SpecialUse::Inbox);
    hub.deliver(SpecialUse::Sent);
    c.silent().await;
    let r = c.ok("p", "NOOP").await;
    assert_eq!(r[0], "* 1 EXISTS");
}

/// RFC 5465 §6.1: with `selected-delayed`, an expunge waits for a command that allows it; new
/// messages are told at once.
#[tokio::test]
async fn selected_delayed_keeps_expunges_for_later() {
    let hub = hub();
    hub.deliver(SpecialUse::Inbox);
    hub.deliver(SpecialUse::Inbox);
    let mut c = Client::login(&hub).await;
    c.ok("s", "SELECT INBOX").await;
    c.ok(
        "n",
        "NOTIFY SET (selected-delayed (MessageNew MessageExpunge))",
    )
    .await;
    let mut other = Client::login(&hub).await;
    other.ok("s", "SELECT INBOX").await;
    other.ok("d", "STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    other.ok("x", "EXPUNGE").await;
    c.silent().await;
    hub.deliver(SpecialUse::Inbox);
    assert_eq!(c.told().await, "* 3 EXISTS");
    assert_eq!(c.told().await, "* 3 RECENT");
    // A FETCH by number may not see the expunge; NOOP may.
    let r = c.ok("f", "FETCH 2 (UID)").await;
    assert_eq!(r[0], "* 2 FETCH (UID 2)");
    let r = c.ok("p", "NOOP").await;
    assert_eq!(r[0], "* 1 EXPUNGE");
}

/// RFC 5465 §4: in IDLE, what NOTIFY asks for is told, other mailboxes included.
#[tokio::test]
async fn idle_tells_what_notify_asks() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.ok("s", "SELECT INBOX").await;
    c.ok("n", "NOTIFY SET (selected (MessageNew MessageExpunge)) (inboxes NONE) (mailboxes Sent (MessageNew MessageExpunge))")
        .await;
    c.send(b"i IDLE\r\n").await;
    assert!(c.line().await.starts_with("+ "));
    hub.deliver(SpecialUse::Sent);
    assert_eq!(
        c.told().await,
        "* STATUS \"Sent\" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)"
    );
    hub.deliver(SpecialUse::Drafts);
    c.silent().await;
    hub.deliver(SpecialUse::Inbox);
    assert_eq!(c.told().await, "* 1 EXISTS");
    assert_eq!(c.told().await, "* 1 RECENT");
    c.send(b"DONE\r\n").await;
    let r = c.until("i").await;
    assert!(last(&r).starts_with("i OK"), "{r:?}");
}
