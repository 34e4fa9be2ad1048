//! IMAP sessions driven in memory (no socket, no TLS handshake): each test sends commands and
//! checks the exact replies, then what the store holds.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{
    AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf,
};

use mshub_directory::*;
use mshub_imap::session::{Connection, Session};
use mshub_imap::{Imap, ImapConfig};
use mshub_store::{MasterKey, SpecialUse, Store};

const MARTIN: &str = "dr.martin@hopital.mshub.test";
const CAMILLE: &str = "284057511204339@patient.mshub.test";

struct Hub {
    _dir: tempfile::TempDir,
    imap: Arc<Imap>,
    store: Arc<Store>,
    directory: Arc<Directory>,
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(c.signing_key.serialize_der()).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![c.cert.der().clone()], key)
        .unwrap(),
    )
}

fn hub() -> Hub {
    hub_with(ImapConfig::default())
}

fn hub_with(config: ImapConfig) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    let directory =
        Arc::new(Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap());
    directory
        .set_domain(
            DomainEntry {
                domain: Domain::try_from("hopital.mshub.test").unwrap(),
                role: DomainRole::Local,
            },
            "t",
        )
        .unwrap();
    directory
        .add_account(
            Address::try_from(MARTIN).unwrap(),
            AccountKind::Professional {
                rpps: Rpps::try_from("10003456786").unwrap(),
                given_name: "Jean".into(),
                family_name: "Martin".into(),
                profession: Profession::Physician,
                specialty: String::new(),
                city: String::new(),
            },
            Some("demo-martin"),
            "t",
        )
        .unwrap();
    directory
        .add_account(
            Address::try_from(CAMILLE).unwrap(),
            AccountKind::Patient {
                ins: Ins::try_from("284057511204339").unwrap(),
                given_name: "Camille".into(),
                family_name: "Durand".into(),
                birth_date: BirthDate::try_from("1984-05-12").unwrap(),
                sex: Sex::Female,
            },
            Some("demo-camille"),
            "t",
        )
        .unwrap();
    let imap = Imap::new(config, store.clone(), directory.clone(), tls_config());
    Hub {
        _dir: dir,
        imap,
        store,
        directory,
    }
}

struct Client {
    rd: BufReader<ReadHalf<DuplexStream>>,
    wr: WriteHalf<DuplexStream>,
    greeting: String,
}

impl Client {
    async fn connect(hub: &Hub, tls: bool) -> Client {
        Client::connect_holding(hub, tls, None).await
    }

    /// As [`Client::connect`], the session holding `slot` (a place among its source's
    /// connections not logged in) as the listener gives it one.
    async fn connect_holding(hub: &Hub, tls: bool, slot: Option<ConnectionSlot>) -> Client {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut session = Session::new(
            hub.imap.clone(),
            server,
            Connection {
                id: 1,
                peer: "127.0.0.1:4000".parse::<SocketAddr>().unwrap(),
                tls,
            },
        );
        if let Some(slot) = slot {
            session.hold_until_login(slot);
        }
        tokio::spawn(async move { session.run(true).await });
        let (rd, wr) = tokio::io::split(client);
        let mut c = Client {
            rd: BufReader::new(rd),
            wr,
            greeting: String::new(),
        };
        c.greeting = c.line().await;
        c
    }

    async fn login(hub: &Hub, user: &str, pass: &str) -> Client {
        let mut c = Client::connect(hub, true).await;
        let r = c.cmd("l", &format!("LOGIN {user} {pass}")).await;
        assert!(r.last().unwrap().starts_with("l OK "), "{r:?}");
        c
    }

    async fn line(&mut self) -> String {
        let mut s = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.rd.read_line(&mut s))
            .await
            .expect("a reply within 10 s")
            .unwrap();
        s.trim_end_matches(['\r', '\n']).to_string()
    }

    async fn send(&mut self, raw: &[u8]) {
        self.wr.write_all(raw).await.unwrap();
    }

    /// The server closed the connection: nothing more to read.
    async fn closed(&mut self) {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), self.rd.read_to_end(&mut rest))
            .await
            .expect("closed within 10 s")
            .unwrap();
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }

    /// Sends `tag line` and returns every line up to and including the tagged one.
    async fn cmd(&mut self, tag: &str, line: &str) -> Vec<String> {
        self.send(format!("{tag} {line}\r\n").as_bytes()).await;
        self.until(tag).await
    }

    async fn until(&mut self, tag: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let l = self.line().await;
            let done = l.starts_with(&format!("{tag} "));
            out.push(l);
            if done {
                return out;
            }
        }
    }

    async fn append(&mut self, tag: &str, mailbox: &str, flags: &str, msg: &[u8]) -> Vec<String> {
        self.send(format!("{tag} APPEND {mailbox} {flags} {{{}}}\r\n", msg.len()).as_bytes())
            .await;
        let cont = self.line().await;
        assert!(cont.starts_with("+ "), "{cont}");
        self.send(msg).await;
        self.send(b"\r\n").await;
        self.until(tag).await
    }
}

fn last(r: &[String]) -> &str {
    r.last().unwrap()
}

fn has(r: &[String], needle: &str) -> bool {
    r.iter().any(|l| l.contains(needle))
}

const MSG: &[u8] = b"From: Labo <labo@hopital.mshub.test>\r\nTo: dr.martin@hopital.mshub.test\r\nSubject: Resultats NFS\r\nDate: Mon, 2 Jun 2025 10:00:00 +0200\r\nMessage-ID: <r1@hopital.mshub.test>\r\n\r\nHemoglobine normale.\r\n";

#[tokio::test]
async fn before_tls_only_starttls_is_offered_and_login_is_refused() {
    let hub = hub();
    let mut c = Client::connect(&hub, false).await;
    assert!(
        c.greeting
            .starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 STARTTLS LOGINDISABLED"),
        "{}",
        c.greeting
    );
    let r = c.cmd("a", "CAPABILITY").await;
    assert!(!has(&r, "AUTH=PLAIN"), "{r:?}");
    let r = c
        .cmd("b", "LOGIN dr.martin@hopital.mshub.test demo-martin")
        .await;
    assert_eq!(
        last(&r),
        "b NO [PRIVACYREQUIRED] LOGIN is disabled before STARTTLS"
    );
    let r = c
        .cmd(
            "c",
            "AUTHENTICATE PLAIN AGRyLm1hcnRpbkBob3BpdGFsLm1zaHViLnRlc3QAZGVtby1tYXJ0aW4=",
        )
        .await;
    assert_eq!(
        last(&r),
        "c NO [PRIVACYREQUIRED] Authentication is disabled before STARTTLS"
    );
    let r = c.cmd("d", "SELECT INBOX").await;
    assert_eq!(last(&r), "d BAD Log in first");
    let r = c.cmd("e", "STARTTLS").await;
    assert_eq!(last(&r), "e OK Begin TLS negotiation now");
}

#[tokio::test]
async fn wrong_password_is_authenticationfailed_and_patients_log_in_too() {
    let hub = hub();
    let mut c = Client::connect(&hub, true).await;
    assert!(c.greeting.contains("AUTH=PLAIN SASL-IR"), "{}", c.greeting);
    let r = c.cmd("a", "LOGIN dr.martin@hopital.mshub.test wrong").await;
    assert_eq!(last(&r), "a NO [AUTHENTICATIONFAILED] Invalid credentials");
    let r = c
        .cmd(
            "b",
            "LOGIN \"284057511204339@patient.mshub.test\" demo-camille",
        )
        .await;
    assert!(last(&r).starts_with("b OK [CAPABILITY IMAP4rev1"), "{r:?}");
    let r = c.cmd("c", "LOGIN x y").await;
    assert_eq!(last(&r), "c BAD Already authenticated");
}

#[tokio::test]
async fn authenticate_plain_with_initial_response_or_continuation() {
    let hub = hub();
    let mut c = Client::connect(&hub, true).await;
    // "\0dr.martin@hopital.mshub.test\0demo-martin"
    let plain = "AGRyLm1hcnRpbkBob3BpdGFsLm1zaHViLnRlc3QAZGVtby1tYXJ0aW4=";
    let r = c.cmd("a", &format!("AUTHENTICATE PLAIN {plain}")).await;
    assert!(last(&r).starts_with("a OK [CAPABILITY"), "{r:?}");
    let mut c = Client::connect(&hub, true).await;
    c.send(b"b AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    c.send(format!("{plain}\r\n").as_bytes()).await;
    let r = c.until("b").await;
    assert!(last(&r).starts_with("b OK "), "{r:?}");
    let mut c = Client::connect(&hub, true).await;
    let r = c.cmd("c", "AUTHENTICATE PLAIN AGZvbwBiYXI=").await;
    assert_eq!(last(&r), "c NO [AUTHENTICATIONFAILED] Invalid credentials");
    let r = c.cmd("d", "AUTHENTICATE PLAIN %%%").await;
    assert!(last(&r).starts_with("d BAD"), "{r:?}");
}

#[tokio::test]
async fn list_shows_special_use_and_children_and_mailboxes_are_managed() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    assert_eq!(
        last(&c.cmd("a", "CREATE Projets/2025").await),
        "a OK CREATE completed"
    );
    let r = c.cmd("b", "LIST \"\" \"*\"").await;
    assert!(
        r.contains(&"* LIST (\\HasNoChildren) \"/\" \"INBOX\"".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(&"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(&"* LIST (\\HasChildren) \"/\" \"Projets\"".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(&"* LIST (\\HasNoChildren) \"/\" \"Projets/2025\"".to_string()),
        "{r:?}"
    );
    let r = c.cmd("c", "LIST \"\" \"%\"").await;
    assert!(!has(&r, "Projets/2025"), "{r:?}");
    assert_eq!(
        last(&c.cmd("d", "CREATE inbox").await),
        "d NO [ALREADYEXISTS] INBOX always exists"
    );
    assert_eq!(
        last(&c.cmd("e", "RENAME Projets Archives2").await),
        "e OK RENAME completed"
    );
    let r = c.cmd("f", "LIST \"\" Archives2/*").await;
    assert!(has(&r, "\"Archives2/2025\""), "{r:?}");
    assert_eq!(
        last(&c.cmd("g", "DELETE Nope").await),
        "g NO [NONEXISTENT] No such mailbox"
    );
    assert!(last(&c.cmd("h", "DELETE Sent").await).starts_with("h NO [CANNOT]"));
    assert_eq!(
        last(&c.cmd("i", "UNSUBSCRIBE Archives2/2025").await),
        "i OK UNSUBSCRIBE completed"
    );
    let r = c.cmd("j", "LSUB \"\" \"*\"").await;
    assert!(
        !has(&r, "Archives2/2025") && has(&r, "* LSUB (\\HasChildren) \"/\" \"Archives2\""),
        "{r:?}"
    );
    let r = c
        .cmd(
            "k",
            "STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE HIGHESTMODSEQ)",
        )
        .await;
    assert!(
        r[0].starts_with("* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT 1 UNSEEN 0 SIZE 0 HIGHESTMODSEQ "),
        "{r:?}"
    );
    let r = c.cmd("l", "NAMESPACE").await;
    assert_eq!(r[0], "* NAMESPACE ((\"\" \"/\")) NIL NIL");
}

#[tokio::test]
async fn append_then_fetch_search_store_and_expunge() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    let r = c
        .append(
            "a",
            "INBOX",
            "(\\Flagged) \"02-Jun-2025 10:00:00 +0200\"",
            MSG,
        )
        .await;
    assert!(
        last(&r).starts_with("a OK [APPENDUID ") && last(&r).ends_with(" 1] APPEND completed"),
        "{r:?}"
    );
    let r = c.cmd("b", "SELECT INBOX").await;
    assert!(r.contains(&"* 1 EXISTS".to_string()), "{r:?}");
    assert!(has(&r, "* OK [UIDNEXT 2]"), "{r:?}");
    assert_eq!(last(&r), "b OK [READ-WRITE] SELECT completed");
    let r = c
        .cmd("c", "FETCH 1 (FLAGS UID INTERNALDATE RFC822.SIZE)")
        .await;
    assert_eq!(
        r[0],
        format!("* 1 FETCH (FLAGS (\\Flagged \\Recent) UID 1 INTERNALDATE \"02-Jun-2025 08:00:00 +0000\" RFC822.SIZE {})", MSG.len())
    );
    let r = c.cmd("d", "FETCH 1 ENVELOPE").await;
    assert_eq!(r[0], "* 1 FETCH (ENVELOPE (\"Mon, 2 Jun 2025 10:00:00 +0200\" \"Resultats NFS\" ((\"Labo\" NIL \"labo\" \"hopital.mshub.test\")) ((\"Labo\" NIL \"labo\" \"hopital.mshub.test\")) ((\"Labo\" NIL \"labo\" \"hopital.mshub.test\")) ((NIL NIL \"dr.martin\" \"hopital.mshub.test\")) NIL NIL NIL \"<r1@hopital.mshub.test>\"))");
    let r = c.cmd("e", "FETCH 1 BODYSTRUCTURE").await;
    assert_eq!(r[0], "* 1 FETCH (BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 22 1 NIL NIL NIL NIL))");
    let r = c
        .cmd("f", "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        .await;
    assert_eq!(r[0], "* 1 FETCH (BODY[HEADER.FIELDS (\"SUBJECT\")] {26}");
    assert_eq!(r[1], "Subject: Resultats NFS");
    let r = c.cmd("g", "SEARCH UNSEEN SUBJECT nfs").await;
    assert_eq!(r[0], "* SEARCH 1");
    let r = c.cmd("h", "FETCH 1 BODY[TEXT]<0.11>").await;
    assert_eq!(r[0], "* 1 FETCH (BODY[TEXT]<0> {11}");
    assert_eq!(r[1], "Hemoglobine FLAGS (\\Seen \\Flagged \\Recent))");
    let r = c.cmd("i", "SEARCH UNSEEN").await;
    assert_eq!(r[0], "* SEARCH");
    let r = c.cmd("j", "UID SEARCH SEEN FLAGGED LARGER 10 SINCE 1-Jun-2025 NOT BEFORE 1-Jan-2000 OR FROM labo TO nobody").await;
    assert_eq!(r[0], "* SEARCH 1");
    let r = c.cmd("k", "STORE 1 +FLAGS (\\Deleted $Urgent)").await;
    // A new keyword: announced first (RFC 3501 §7.2.6).
    assert_eq!(
        r[0],
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Urgent)"
    );
    assert_eq!(
        r[2],
        "* 1 FETCH (FLAGS (\\Seen \\Flagged \\Deleted \\Recent $Urgent))"
    );
    let r = c.cmd("l", "UID STORE 1 -FLAGS.SILENT (\\Flagged)").await;
    assert_eq!(r, vec!["l OK UID STORE completed".to_string()]);
    let r = c.cmd("m", "EXPUNGE").await;
    assert_eq!(
        r,
        vec![
            "* 1 EXPUNGE".to_string(),
            "m OK EXPUNGE completed".to_string()
        ]
    );
    let inbox = hub
        .store
        .special_mailbox(martin_id(&hub), SpecialUse::Inbox)
        .unwrap();
    assert_eq!(inbox.exists, 0);
    let r = c.cmd("n", "FETCH 1 FLAGS").await;
    assert_eq!(last(&r), "n BAD Invalid message sequence number");
    let r = c.cmd("o", "LOGOUT").await;
    assert_eq!(
        r,
        vec![
            "* BYE mshub logging out".to_string(),
            "o OK LOGOUT completed".to_string()
        ]
    );
}

fn martin_id(hub: &Hub) -> mshub_store::AccountId {
    hub.directory
        .account_by_address(&Address::try_from(MARTIN).unwrap())
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test]
async fn copy_and_move_report_copyuid() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    c.append("a", "INBOX", "()", MSG).await;
    c.append("b", "INBOX", "()", MSG).await;
    c.cmd("c", "SELECT INBOX").await;
    let r = c.cmd("d", "COPY 1:2 Archive").await;
    let v = hub
        .store
        .mailbox(martin_id(&hub), "Archive")
        .unwrap()
        .unwrap()
        .uid_validity
        .0;
    assert_eq!(
        last(&r),
        format!("d OK [COPYUID {v} 1:2 1:2] COPY completed")
    );
    let r = c.cmd("e", "UID MOVE 2 Trash").await;
    let t = hub
        .store
        .mailbox(martin_id(&hub), "Trash")
        .unwrap()
        .unwrap()
        .uid_validity
        .0;
    assert_eq!(
        r,
        vec![
            format!("* OK [COPYUID {t} 2 1] Moved"),
            "* 2 EXPUNGE".to_string(),
            "e OK MOVE completed".to_string()
        ]
    );
    let r = c.cmd("f", "COPY 1 Nowhere").await;
    assert_eq!(last(&r), "f NO [TRYCREATE] No such mailbox");
    let r = c.cmd("g", "SELECT Nowhere").await;
    assert_eq!(last(&r), "g NO [NONEXISTENT] No such mailbox");
    let r = c.cmd("h", "FETCH 1 FLAGS").await;
    assert_eq!(last(&r), "h BAD No mailbox selected");
}

#[tokio::test]
async fn two_sessions_see_each_others_flags_and_expunges() {
    let hub = hub();
    let mut a = Client::login(&hub, MARTIN, "demo-martin").await;
    let mut b = Client::login(&hub, MARTIN, "demo-martin").await;
    a.append("a", "INBOX", "()", MSG).await;
    a.append("a", "INBOX", "()", MSG).await;
    a.cmd("s", "SELECT INBOX").await;
    b.cmd("s", "SELECT INBOX").await;
    a.cmd("t", "STORE 1 +FLAGS.SILENT (\\Seen)").await;
    let r = b.cmd("n", "NOOP").await;
    assert_eq!(
        r,
        vec![
            "* 1 FETCH (FLAGS (\\Seen) UID 1)".to_string(),
            "n OK NOOP completed".to_string()
        ]
    );
    a.cmd("u", "STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    a.cmd("v", "EXPUNGE").await;
    // No EXPUNGE after FETCH (RFC 9051 §7.5.1): sequence numbers stay as the client knows them.
    let r = b.cmd("f", "FETCH 2 UID").await;
    assert_eq!(
        r,
        vec![
            "* 2 FETCH (UID 2)".to_string(),
            "f OK FETCH completed".to_string()
        ]
    );
    let r = b.cmd("n2", "NOOP").await;
    assert_eq!(
        r,
        vec![
            "* 1 EXPUNGE".to_string(),
            "n2 OK NOOP completed".to_string()
        ]
    );
    a.append("a2", "INBOX", "()", MSG).await;
    let r = b.cmd("n3", "NOOP").await;
    assert_eq!(
        r,
        vec!["* 2 EXISTS".to_string(), "n3 OK NOOP completed".to_string()]
    );
}

#[tokio::test]
async fn idle_is_woken_by_a_delivery() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    c.cmd("s", "SELECT INBOX").await;
    c.send(b"i IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling");
    let inbox = hub
        .store
        .special_mailbox(martin_id(&hub), SpecialUse::Inbox)
        .unwrap();
    hub.store
        .append(inbox.id, MSG, BTreeSet::new(), 1_700_000_000)
        .unwrap();
    assert_eq!(c.line().await, "* 1 EXISTS");
    assert_eq!(c.line().await, "* 1 RECENT");
    let flags: BTreeSet<_> = [mshub_store::Flag::Flagged].into_iter().collect();
    hub.store
        .store_flags(
            inbox.id,
            &[mshub_store::Uid::MIN],
            mshub_store::FlagOp::Add,
            &flags,
            None,
        )
        .unwrap();
    assert_eq!(
        c.line().await,
        "* 1 FETCH (FLAGS (\\Flagged \\Recent) UID 1)"
    );
    c.send(b"DONE\r\n").await;
    assert_eq!(c.line().await, "i OK IDLE terminated");
}

#[tokio::test]
async fn garbage_gets_bad_or_no_and_the_session_stays_up() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    assert_eq!(
        last(&c.cmd("a", "FROBNICATE").await),
        "a BAD unknown command FROBNICATE"
    );
    let deep = format!("SEARCH {}ALL{}", "(".repeat(1000), ")".repeat(1000));
    c.cmd("s", "SELECT INBOX").await;
    assert_eq!(
        last(&c.cmd("b", &deep).await),
        "b BAD search keys nested too deeply"
    );
    c.send(b"c SELECT \"\xff\xfe\"\r\n").await;
    assert_eq!(
        last(&c.until("c").await),
        "c BAD mailbox name: invalid UTF-8"
    );
    c.send(b"d APPEND INBOX {99999999999}\r\n").await;
    assert_eq!(
        last(&c.until("d").await),
        "d NO [TOOBIG] Literal larger than APPENDLIMIT=20971520"
    );
    c.send(b"e APPEND INBOX {30000000+}\r\n").await;
    c.send(&vec![b'x'; 30_000_000]).await;
    c.send(b"\r\n").await;
    assert_eq!(
        last(&c.until("e").await),
        "e NO [TOOBIG] Literal larger than APPENDLIMIT=20971520"
    );
    c.send(b"\r\n").await;
    assert_eq!(c.line().await, "* BAD missing tag");
    c.send(&vec![b'A'; 100_000]).await;
    c.send(b"\r\n").await;
    let l = c.line().await;
    assert!(l.ends_with(" BAD Command line too long"), "{l}");
    assert_eq!(
        last(&c.cmd("f", "FETCH 1:* (FLAGS").await),
        "f BAD expected ' ' at offset 18"
    );
    assert_eq!(last(&c.cmd("g", "NOOP").await), "g OK NOOP completed");
    let mut buf = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(100), c.rd.read(&mut buf))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn search_matches_decoded_headers_and_bodies() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    let msg = b"From: =?UTF-8?Q?H=C3=B4pital?= <labo@hopital.mshub.test>\r\nSubject: =?UTF-8?Q?R=C3=A9sultats?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nH=C3=A9moglobine normale\r\n";
    c.append("a", "INBOX", "()", msg).await;
    c.append("b", "INBOX", "()", MSG).await;
    c.cmd("s", "SELECT INBOX").await;
    let r = c
        .cmd("c", "SEARCH CHARSET UTF-8 SUBJECT \"résultats\"")
        .await;
    assert_eq!(r[0], "* SEARCH 1");
    let r = c.cmd("d", "SEARCH BODY \"hémoglobine\"").await;
    assert_eq!(r[0], "* SEARCH 1");
    let r = c.cmd("e", "SEARCH FROM \"hôpital\"").await;
    assert_eq!(r[0], "* SEARCH 1");
    let r = c.cmd("f", "SEARCH TEXT hemoglobine").await;
    assert_eq!(r[0], "* SEARCH 2");
    let r = c.cmd("g", "SEARCH HEADER Message-ID r1@").await;
    assert_eq!(r[0], "* SEARCH 2");
    let r = c.cmd("h", "SEARCH CHARSET KOI8-R ALL").await;
    assert!(last(&r).starts_with("h BAD [BADCHARSET"), "{r:?}");
}

#[tokio::test]
async fn examine_is_read_only_and_uid_expunge_removes_only_the_named() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    for t in ["a1", "a2", "a3"] {
        c.append(t, "INBOX", "(\\Deleted)", MSG).await;
    }
    let r = c.cmd("b", "EXAMINE INBOX").await;
    assert_eq!(last(&r), "b OK [READ-ONLY] EXAMINE completed");
    assert_eq!(
        last(&c.cmd("c", "STORE 1 +FLAGS (\\Seen)").await),
        "c NO [READ-ONLY] The mailbox is read-only"
    );
    assert_eq!(
        last(&c.cmd("d", "EXPUNGE").await),
        "d NO [READ-ONLY] The mailbox is read-only"
    );
    let r = c.cmd("e", "FETCH 1 BODY[TEXT]").await;
    assert!(!has(&r, "\\Seen"), "{r:?}");
    c.cmd("f", "SELECT INBOX").await;
    let r = c.cmd("g", "UID EXPUNGE 2").await;
    assert_eq!(
        r,
        vec![
            "* 2 EXPUNGE".to_string(),
            "g OK EXPUNGE completed".to_string()
        ]
    );
    let r = c.cmd("h", "CLOSE").await;
    assert_eq!(r, vec!["h OK CLOSE completed".to_string()]);
    let inbox = hub
        .store
        .special_mailbox(martin_id(&hub), SpecialUse::Inbox)
        .unwrap();
    assert_eq!(inbox.exists, 0, "CLOSE expunged the rest");
}

#[tokio::test]
async fn enabling_imap4rev2_gives_esearch() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    let r = c.cmd("a", "ENABLE IMAP4rev2 CONDSTORE").await;
    assert_eq!(
        r,
        vec![
            "* ENABLED IMAP4rev2 CONDSTORE".to_string(),
            "a OK ENABLE completed".to_string()
        ]
    );
    c.append("b", "INBOX", "()", MSG).await;
    let r = c.cmd("c", "SELECT INBOX").await;
    assert!(!has(&r, "RECENT"), "{r:?}");
    let r = c.cmd("d", "UID SEARCH ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"d\") UID ALL 1");
    let r = c.cmd("e", "SEARCH DELETED").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"e\")");
}

#[tokio::test]
async fn big_literals_are_refused_before_login_and_the_connection_closed() {
    let hub = hub();
    // Over 4 KiB, synchronising or not: no continuation, a BYE, the end.
    for literal in ["{100000}", "{100000+}", "{4097}"] {
        let mut c = Client::connect(&hub, true).await;
        c.send(format!("a LOGIN {literal}\r\n").as_bytes()).await;
        assert_eq!(
            c.line().await,
            "* BYE [LIMIT] Literal too large before login",
            "{literal}"
        );
        c.closed().await;
    }
    // Credentials as small literals are fine.
    let mut c = Client::connect(&hub, true).await;
    c.send(format!("b LOGIN {{{}}}\r\n", MARTIN.len()).as_bytes())
        .await;
    assert_eq!(c.line().await, "+ Ready for literal data");
    c.send(format!("{MARTIN} {{11}}\r\n").as_bytes()).await;
    assert_eq!(c.line().await, "+ Ready for literal data");
    c.send(b"demo-martin\r\n").await;
    assert!(c.line().await.starts_with("b OK "));
    // Small literals cannot add up to more than the 8 KiB of a command before login.
    let mut c = Client::connect(&hub, true).await;
    c.send(b"c ID (\"a\" {4000}\r\n").await;
    assert_eq!(c.line().await, "+ Ready for literal data");
    c.send(&[b'x'; 4000]).await;
    c.send(b" \"b\" {4000}\r\n").await;
    assert_eq!(c.line().await, "+ Ready for literal data");
    c.send(&[b'x'; 4000]).await;
    c.send(b" \"c\" {200}\r\n").await;
    assert_eq!(
        c.line().await,
        "* BYE [LIMIT] Literal too large before login"
    );
    c.closed().await;
}

#[tokio::test]
async fn a_long_line_before_login_ends_the_connection_at_once() {
    let hub = hub();
    for tls in [false, true] {
        // No line end: the server does not wait for one past 8 KiB.
        let mut c = Client::connect(&hub, tls).await;
        c.send(b"a LOGIN ").await;
        c.send(&[b'A'; 9000]).await;
        assert_eq!(
            c.line().await,
            "* BYE [LIMIT] Command too long before login"
        );
        c.closed().await;
        // A whole line in one write, just as long.
        let mut c = Client::connect(&hub, tls).await;
        let long = "x".repeat(8200);
        c.send(format!("a LOGIN \"{long}\" y\r\n").as_bytes()).await;
        assert_eq!(
            c.line().await,
            "* BYE [LIMIT] Command too long before login"
        );
        c.closed().await;
    }
    // Just under the limit, a long LOGIN is answered.
    let mut c = Client::connect(&hub, true).await;
    let long = "x".repeat(8000);
    let r = c.cmd("b", &format!("LOGIN \"{long}\" y")).await;
    assert_eq!(last(&r), "b NO [AUTHENTICATIONFAILED] Invalid credentials");
    // Once logged in, the usual 64 KiB limit.
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    let long = "x".repeat(20_000);
    let r = c.cmd("c", &format!("SELECT \"{long}\"")).await;
    assert!(last(&r).starts_with("c NO "), "{r:?}");
    assert_eq!(last(&c.cmd("d", "NOOP").await), "d OK NOOP completed");
}

#[tokio::test]
async fn an_authenticate_response_is_bounded_too() {
    let hub = hub();
    let mut c = Client::connect(&hub, true).await;
    c.send(b"a AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    // Longer than a command may be before login, within the 16 KiB of a SASL response.
    c.send(&[b'A'; 10_000]).await;
    c.send(b"\r\n").await;
    assert_eq!(c.line().await, "a BAD Invalid PLAIN message");
    c.send(b"b AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    c.send(&[b'A'; 17_000]).await;
    assert_eq!(
        c.line().await,
        "* BYE [LIMIT] Authentication response too long"
    );
    c.closed().await;
}

#[tokio::test]
async fn before_login_the_idle_timeout_is_short_and_after_login_unchanged() {
    let hub = hub_with(ImapConfig {
        pre_auth_idle_timeout_secs: 1,
        ..ImapConfig::default()
    });
    let mut logged_in = Client::login(&hub, MARTIN, "demo-martin").await;
    for tls in [false, true] {
        let mut c = Client::connect(&hub, tls).await;
        let start = std::time::Instant::now();
        assert_eq!(c.line().await, "* BYE Autologout; idle for too long");
        c.closed().await;
        assert!(start.elapsed() >= Duration::from_millis(900));
    }
    // Halfway through AUTHENTICATE is still before login.
    let mut c = Client::connect(&hub, true).await;
    c.send(b"a AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    assert_eq!(c.line().await, "* BYE Autologout; idle for too long");
    c.closed().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        last(&logged_in.cmd("n", "NOOP").await),
        "n OK NOOP completed"
    );
}

#[tokio::test]
async fn a_session_gives_its_place_among_those_not_logged_in_back_at_login() {
    let hub = hub();
    let limits = ConnectionLimits::default();
    let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let slot = limits.admit(ip, 1).unwrap();
    let mut c = Client::connect_holding(&hub, true, Some(slot)).await;
    assert!(limits.admit(ip, 1).is_none());
    let r = c.cmd("a", &format!("LOGIN {MARTIN} wrong")).await;
    assert_eq!(last(&r), "a NO [AUTHENTICATIONFAILED] Invalid credentials");
    assert!(limits.admit(ip, 1).is_none());
    let r = c.cmd("b", &format!("LOGIN {MARTIN} demo-martin")).await;
    assert!(last(&r).starts_with("b OK "), "{r:?}");
    assert!(limits.admit(ip, 1).is_some());
}

#[tokio::test]
async fn the_listener_caps_connections_not_logged_in_per_source() {
    let hub = hub_with(ImapConfig {
        max_unauthenticated_per_source: 2,
        ..ImapConfig::default()
    });
    let listeners = mshub_imap::Listeners {
        imap: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        imaps: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let (plain, tls) = (
        listeners.imap.local_addr().unwrap(),
        listeners.imaps.local_addr().unwrap(),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(hub.imap.clone().serve(listeners, stopped));
    async fn first_line(addr: SocketAddr) -> (BufReader<tokio::net::TcpStream>, String) {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut rd = BufReader::new(tcp);
        let mut l = String::new();
        tokio::time::timeout(Duration::from_secs(10), rd.read_line(&mut l))
            .await
            .expect("a line or the end within 10 s")
            .unwrap();
        (rd, l)
    }
    let (first, l) = first_line(plain).await;
    assert!(l.starts_with("* OK "), "{l}");
    let (_second, l) = first_line(plain).await;
    assert!(l.starts_with("* OK "), "{l}");
    let (mut third, l) = first_line(plain).await;
    assert_eq!(
        l,
        "* BYE Too many connections not logged in from your address\r\n"
    );
    let mut rest = Vec::new();
    third.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    // On the TLS port, closed without a word (no handshake for a refusal).
    let (_, l) = first_line(tls).await;
    assert_eq!(l, "");
    // A connection that goes away frees its place.
    drop(first);
    let mut admitted = false;
    for _ in 0..50 {
        if first_line(plain).await.1.starts_with("* OK ") {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(admitted);
    stop.send(true).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn rev1_clients_name_mailboxes_in_modified_utf7() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    assert_eq!(
        last(&c.cmd("a", "CREATE R&AOk-sultats").await),
        "a OK CREATE completed"
    );
    assert!(hub
        .store
        .mailbox(martin_id(&hub), "Résultats")
        .unwrap()
        .is_some());
    let r = c.cmd("b", "LIST \"\" R*").await;
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" \"R&AOk-sultats\"");
    assert_eq!(
        last(&c.cmd("c", "CREATE bad&AOk").await),
        "c NO [CANNOT] Invalid modified UTF-7 mailbox name"
    );
    c.cmd("d", "ENABLE IMAP4rev2").await;
    let r = c.cmd("e", "LIST \"\" R*").await;
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" {10}");
    assert_eq!(r[1], "Résultats");
}

#[tokio::test]
async fn condstore_reports_and_filters_by_modseq() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    assert!(c.cmd("a", "CAPABILITY").await[0].contains(" CONDSTORE "));
    c.append("b", "INBOX", "()", MSG).await;
    c.append("b", "INBOX", "()", MSG).await;
    let r = c.cmd("c", "SELECT INBOX (CONDSTORE)").await;
    assert!(
        r.contains(&"* OK [HIGHESTMODSEQ 3] Highest".to_string()),
        "{r:?}"
    );
    let r = c.cmd("d", "STORE 2 +FLAGS (\\Flagged)").await;
    assert_eq!(r[0], "* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (4))");
    let r = c.cmd("e", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 3)").await;
    assert_eq!(
        r,
        vec![
            "* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (4) UID 2)".to_string(),
            "e OK UID FETCH completed".to_string()
        ]
    );
    let r = c.cmd("f", "SEARCH MODSEQ 4").await;
    assert_eq!(r[0], "* SEARCH 2 (MODSEQ 4)");
    let r = c
        .cmd("g", "UID STORE 1:2 (UNCHANGEDSINCE 3) +FLAGS (\\Seen)")
        .await;
    assert_eq!(r[0], "* 1 FETCH (FLAGS (\\Seen \\Recent) UID 1 MODSEQ (5))");
    assert_eq!(last(&r), "g OK [MODIFIED 2] Conditional STORE failed");
    let r = c.cmd("h", "SELECT Sent").await;
    assert_eq!(r[0], "* OK [CLOSED] Previous mailbox closed");
}

#[tokio::test]
async fn three_failed_logins_close_the_connection() {
    let hub = hub();
    let mut c = Client::connect(&hub, true).await;
    for tag in ["a", "b"] {
        let r = c.cmd(tag, "LOGIN nobody@hopital.mshub.test wrong").await;
        assert_eq!(
            last(&r),
            format!("{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
        );
    }
    let r = c.cmd("c", "LOGIN nobody@hopital.mshub.test wrong").await;
    assert_eq!(last(&r), "c NO [AUTHENTICATIONFAILED] Invalid credentials");
    assert_eq!(c.line().await, "* BYE Too many failed logins");
    assert_eq!(c.line().await, "", "then the connection is closed");
}

#[tokio::test]
async fn esearch_return_options_and_list_status() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    for t in ["a1", "a2", "a3", "a4"] {
        c.append(t, "INBOX", "()", MSG).await;
    }
    c.cmd("s", "SELECT INBOX").await;
    c.cmd("t", "STORE 3 +FLAGS (\\Seen)").await;
    let r = c.cmd("b", "SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"b\") MIN 1 MAX 4 ALL 1:2,4 COUNT 3");
    let r = c.cmd("c", "UID SEARCH RETURN () ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"c\") UID ALL 1:4");
    let r = c.cmd("d", "SEARCH RETURN (COUNT) DRAFT").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"d\") COUNT 0");
    let r = c.cmd("e", "SEARCH RETURN (SAVE) UNSEEN").await;
    assert_eq!(r, vec!["e OK SEARCH completed".to_string()]);
    let r = c.cmd("e2", "FETCH $ (FLAGS)").await;
    assert_eq!(r.len(), 4, "{r:?}");
    assert_eq!(r[2], "* 4 FETCH (FLAGS (\\Recent))");
    let r = c.cmd("e3", "UID SEARCH $ 2:*").await;
    assert_eq!(r[0], "* SEARCH 2 4");
    // An unknown RETURN option is BAD; RFC 9394 PARTIAL is offered.
    let r = c.cmd("e4", "SEARCH RETURN (NOTIFY) ALL").await;
    assert_eq!(last(&r), "e4 BAD unsupported RETURN option NOTIFY");
    let r = c.cmd("e5", "SEARCH RETURN (PARTIAL 1:5) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"e5\") PARTIAL (1:5 1:4)");
    let r = c
        .cmd("f", "LIST \"\" INBOX RETURN (STATUS (MESSAGES UNSEEN))")
        .await;
    assert_eq!(
        r,
        vec![
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"".to_string(),
            "* STATUS \"INBOX\" (MESSAGES 4 UNSEEN 3)".to_string(),
            "f OK LIST completed".to_string()
        ]
    );
}

#[tokio::test]
async fn binary_undoes_the_transfer_encoding() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    let msg = b"Subject: b\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nH=C3=A9mo=\r\nglobine\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--B\r\nContent-Type: application/x-y\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nzzz\r\n--B--\r\n";
    c.append("a", "INBOX", "()", msg).await;
    c.cmd("s", "SELECT INBOX").await;
    let r = c.cmd("b", "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[2])").await;
    assert_eq!(r[0], "* 1 FETCH (BINARY[1] {12}");
    assert_eq!(r[1], "Hémoglobine BINARY.SIZE[2] 3)");
    let r = c.cmd("c", "FETCH 1 BINARY.PEEK[2]").await;
    assert_eq!(r[0], "* 1 FETCH (BINARY[2] ~{3}");
    let r = c.cmd("d", "FETCH 1 BINARY.PEEK[3]").await;
    assert_eq!(
        last(&r),
        "d NO [UNKNOWN-CTE] A part has a transfer encoding this server cannot decode"
    );
}

/// The commands Thunderbird sends when it opens an account (from its IMAP logs).
#[tokio::test]
async fn a_thunderbird_like_session_parses_and_succeeds() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    c.append("a", "INBOX", "()", MSG).await;
    for (tag, cmd) in [
        ("t1", "ID (\"name\" \"Thunderbird\" \"version\" \"115.0\")"),
        ("t2", "namespace"),
        ("t3", "list (SUBSCRIBED) \"\" \"*\" RETURN (SPECIAL-USE)"),
        ("t4", "lsub \"\" \"*\""),
        ("t5", "STATUS \"Sent\" (UIDNEXT MESSAGES UNSEEN RECENT)"),
        ("t6", "select \"INBOX\" (CONDSTORE)"),
        ("t7", "UID fetch 1:* (FLAGS) (CHANGEDSINCE 1)"),
        ("t8", "UID fetch 1 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])"),
        ("t9", "UID fetch 1 (UID RFC822.SIZE BODY.PEEK[])"),
        ("t10", "UID store 1 +Flags (\\Seen)"),
        ("t11", "UID copy 1 \"Trash\""),
        ("t12", "UID store 1 +Flags (\\Deleted)"),
        ("t13", "UID expunge 1"),
        ("t14", "noop"),
    ] {
        let r = c.cmd(tag, cmd).await;
        assert!(last(&r).starts_with(&format!("{tag} OK")), "{cmd}: {r:?}");
    }
}

#[tokio::test]
async fn qresync_reports_vanished_and_changed_messages() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    let r = c.cmd("a", "SELECT INBOX (QRESYNC (1 1))").await;
    assert_eq!(last(&r), "a BAD QRESYNC is not enabled");
    let r = c.cmd("b", "ENABLE QRESYNC").await;
    assert_eq!(r[0], "* ENABLED QRESYNC");
    for t in ["c1", "c2", "c3"] {
        c.append(t, "INBOX", "()", MSG).await;
    }
    let r = c.cmd("d", "SELECT INBOX").await;
    assert!(
        r.contains(&"* OK [HIGHESTMODSEQ 4] Highest".to_string()),
        "{r:?}"
    );
    let v = hub
        .store
        .mailbox(martin_id(&hub), "INBOX")
        .unwrap()
        .unwrap()
        .uid_validity
        .0;
    c.cmd("e", "STORE 1 +FLAGS.SILENT (\\Seen)").await;
    c.cmd("f", "STORE 2:3 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.cmd("g", "EXPUNGE").await;
    assert_eq!(
        r,
        vec![
            "* VANISHED 2:3".to_string(),
            "g OK EXPUNGE completed".to_string()
        ]
    );
    c.cmd("h", "UNSELECT").await;
    let r = c
        .cmd("i", &format!("SELECT INBOX (QRESYNC ({v} 4 1:3))"))
        .await;
    let n = r.len();
    assert_eq!(r[n - 3], "* VANISHED (EARLIER) 2:3");
    assert_eq!(r[n - 2], "* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (5))");
    let r = c
        .cmd("j", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4 VANISHED)")
        .await;
    assert_eq!(
        r,
        vec![
            "* VANISHED (EARLIER) 2:3".to_string(),
            "* 1 FETCH (FLAGS (\\Seen) MODSEQ (5) UID 1)".to_string(),
            "j OK UID FETCH completed".to_string()
        ]
    );
    let r = c
        .cmd("k", "FETCH 1 (FLAGS) (CHANGEDSINCE 4 VANISHED)")
        .await;
    assert_eq!(last(&r), "k BAD VANISHED needs UID FETCH with CHANGEDSINCE");
}

#[tokio::test]
async fn list_extended_selection_return_and_multiple_patterns() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    c.cmd("a", "CREATE Dossiers/Camille").await;
    c.cmd("b", "UNSUBSCRIBE Dossiers").await;
    let r = c
        .cmd("c", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" Dossiers")
        .await;
    assert_eq!(
        r[0],
        "* LIST (\\HasChildren) \"/\" \"Dossiers\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"
    );
    let r = c
        .cmd("d", "LIST \"\" (Sent Trash) RETURN (SUBSCRIBED)")
        .await;
    assert_eq!(
        r,
        vec![
            "* LIST (\\HasNoChildren \\Sent \\Subscribed) \"/\" \"Sent\"".to_string(),
            "* LIST (\\HasNoChildren \\Trash \\Subscribed) \"/\" \"Trash\"".to_string(),
            "d OK LIST completed".to_string()
        ]
    );
    let r = c.cmd("e", "LIST (RECURSIVEMATCH) \"\" *").await;
    assert_eq!(
        last(&r),
        "e BAD RECURSIVEMATCH needs another selection option"
    );
    let r = c
        .cmd("f", "RENAME Dossiers/Camille Patients/2025/Camille")
        .await;
    assert_eq!(last(&r), "f OK RENAME completed");
    let r = c.cmd("g", "LIST \"\" Patients*").await;
    assert_eq!(r.len(), 4, "the superior names were created: {r:?}");
    let r = c.cmd("h", "RENAME INBOX Boite/INBOX").await;
    assert_eq!(
        last(&r),
        "h NO [CANNOT] Special-use mailboxes keep their names"
    );
    let r = c.cmd("i", "RENAME Patients Patients/x").await;
    assert_eq!(
        last(&r),
        "i NO [CANNOT] A mailbox cannot move inside itself"
    );
}

#[tokio::test]
async fn a_large_message_keeps_its_structure_and_loses_it_with_the_message() {
    let hub = hub();
    let mut c = Client::login(&hub, MARTIN, "demo-martin").await;
    let pdf = "JVBERi0xLjQK".repeat(30_000); // 360 KB of base64
    let msg = format!(
        "From: <labo@hopital.mshub.test>\r\nSubject: Gros compte rendu\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         Voici.\r\n--b\r\nContent-Type: application/pdf; name=cr.pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--b--\r\n"
    );
    c.append("a", "INBOX", "()", msg.as_bytes()).await;
    c.cmd("s", "SELECT INBOX").await;
    let first = c.cmd("f", "FETCH 1 (ENVELOPE BODYSTRUCTURE)").await;
    assert!(
        first[0].contains("\"APPLICATION\" \"PDF\"")
            || first[0].contains("\"application\" \"pdf\""),
        "{first:?}"
    );
    // Kept beside the message, sealed: a second session answers the same from it.
    let inbox = hub
        .store
        .special_mailbox(martin_id(&hub), SpecialUse::Inbox)
        .unwrap();
    let meta = hub.store.messages(inbox.id).unwrap()[0].clone();
    assert!(hub
        .store
        .derived(
            martin_id(&hub),
            meta.blob,
            mshub_imap::message::Structure::KIND
        )
        .unwrap()
        .is_some());
    let mut d = Client::login(&hub, MARTIN, "demo-martin").await;
    d.cmd("s", "SELECT INBOX").await;
    assert_eq!(
        d.cmd("f", "FETCH 1 (ENVELOPE BODYSTRUCTURE)").await[0],
        first[0]
    );
    // Expunged: the stored structure goes with the message.
    c.cmd("d", "STORE 1 +FLAGS (\\Deleted)").await;
    c.cmd("e", "EXPUNGE").await;
    assert!(hub
        .store
        .derived(
            martin_id(&hub),
            meta.blob,
            mshub_imap::message::Structure::KIND
        )
        .unwrap()
        .is_none());
}
