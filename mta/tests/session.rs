//! SMTP sessions driven in memory (no socket, no TLS handshake): each test feeds commands and
//! checks the exact replies, then what was stored.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

use mshub_directory::*;
use mshub_mta::policy::Door;
use mshub_mta::session::{Connection, Ended, Session};
use mshub_mta::{Delivered, Filer, FilingOutcome, Mta, MtaConfig, TlsIdentity};
use mshub_store::{MasterKey, SpecialUse, Store};

const MARTIN: &str = "dr.martin@hopital.mshub.test";
const LABO: &str = "labo@hopital.mshub.test";
const CAMILLE: &str = "284057511204339@patient.mshub.test";
const PAUL: &str = "190017511200164@patient.mshub.test";

struct Hub {
    _dir: tempfile::TempDir,
    mta: Arc<Mta>,
    store: Arc<Store>,
    directory: Arc<Directory>,
}

/// A filer that fails on every message with an attachment marker, to prove the message stays.
struct FailingFiler;

impl Filer for FailingFiler {
    fn name(&self) -> &'static str {
        "test-filer"
    }
    fn file(&self, delivered: &Delivered<'_>) -> FilingOutcome {
        if delivered.message.windows(8).any(|w| w == b"FILE-ME!") {
            FilingOutcome::Failed {
                reason: "broken attachment".into(),
            }
        } else {
            FilingOutcome::NotApplicable
        }
    }
}

fn identity() -> TlsIdentity {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    TlsIdentity {
        certs: vec![c.cert.der().clone()],
        key: rustls::pki_types::PrivateKeyDer::try_from(c.signing_key.serialize_der()).unwrap(),
    }
}

fn hub(config: MtaConfig) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    let directory =
        Arc::new(Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap());
    let local = |d: &str| DomainEntry {
        domain: Domain::try_from(d).unwrap(),
        role: DomainRole::Local,
    };
    directory
        .set_domain(local("hopital.mshub.test"), "t")
        .unwrap();
    directory
        .set_domain(
            DomainEntry {
                domain: Domain::try_from("autre-operateur.test").unwrap(),
                role: DomainRole::Trusted {
                    route: None,
                    tls: TlsPolicy::Required,
                    certificate_names: Vec::new(),
                },
            },
            "t",
        )
        .unwrap();
    let add = |addr: &str, kind: AccountKind, pw: &str| {
        directory
            .add_account(Address::try_from(addr).unwrap(), kind, Some(pw), "t")
            .unwrap();
    };
    add(
        MARTIN,
        AccountKind::Professional {
            rpps: Rpps::try_from("10003456786").unwrap(),
            given_name: "Jean".into(),
            family_name: "Martin".into(),
            profession: Profession::Physician,
            specialty: String::new(),
            city: String::new(),
        },
        "demo-martin",
    );
    add(
        LABO,
        AccountKind::Organisation {
            name: "Labo".into(),
            members: vec![Address::try_from(MARTIN).unwrap()],
        },
        "demo-labo",
    );
    add(
        CAMILLE,
        AccountKind::Patient {
            ins: Ins::try_from("284057511204339").unwrap(),
            given_name: "Camille".into(),
            family_name: "Durand".into(),
            birth_date: BirthDate::try_from("1984-05-12").unwrap(),
            sex: Sex::Female,
        },
        "demo-camille",
    );
    add(
        PAUL,
        AccountKind::Patient {
            ins: Ins::try_from("190017511200164").unwrap(),
            given_name: "Paul".into(),
            family_name: "Petit".into(),
            birth_date: BirthDate::try_from("1990-01-02").unwrap(),
            sex: Sex::Male,
        },
        "demo-paul-pw",
    );
    let mta = Mta::new(
        config,
        store.clone(),
        directory.clone(),
        &identity(),
        vec![Arc::new(FailingFiler)],
    )
    .unwrap();
    Hub {
        _dir: dir,
        mta,
        store,
        directory,
    }
}

struct Client {
    io: BufReader<DuplexStream>,
    session: tokio::task::JoinHandle<Ended>,
}

impl Client {
    async fn connect(hub: &Hub, door: Door, tls: bool) -> Client {
        let (client, server) = tokio::io::duplex(1 << 20);
        let conn = Connection {
            id: 1,
            peer: "127.0.0.1:40000".parse::<SocketAddr>().unwrap(),
            door,
            tls,
            peer_certificate: None,
        };
        let mut session = Session::new(hub.mta.clone(), server, conn);
        let task = tokio::spawn(async move { session.run(true).await });
        let mut c = Client {
            io: BufReader::new(client),
            session: task,
        };
        let greeting = c.reply().await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        c
    }

    /// Reads one (possibly multi-line) reply, returned as its lines joined by '\n'.
    async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.io.read_line(&mut line).await.unwrap();
            assert!(n > 0, "connection closed; got {lines:?}");
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    async fn send(&mut self, bytes: &str) {
        self.io.get_mut().write_all(bytes.as_bytes()).await.unwrap();
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    async fn expect(&mut self, line: &str, prefix: &str) {
        let reply = self.cmd(line).await;
        assert!(
            reply.starts_with(prefix),
            "{line:?} -> {reply:?}, expected {prefix:?}"
        );
    }

    async fn login(&mut self, user: &str, password: &str) {
        use base64::Engine as _;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        self.expect("EHLO client.test", "250").await;
        self.expect(&format!("AUTH PLAIN {token}"), "235 2.7.0")
            .await;
    }

    /// DATA with `message` (CRLF lines), returning the final reply.
    async fn data(&mut self, message: &str) -> String {
        self.expect("DATA", "354").await;
        self.send(&format!("{message}\r\n.\r\n")).await;
        self.reply().await
    }
}

fn message(from: &str, to: &str, extra: &str, body: &str) -> String {
    format!("From: {from}\r\nTo: {to}\r\nSubject: test\r\n{extra}\r\n{body}")
}

fn inbox(hub: &Hub, address: &str) -> Vec<Vec<u8>> {
    let account = hub
        .directory
        .account_by_address(&Address::try_from(address).unwrap())
        .unwrap()
        .unwrap();
    let inbox = hub
        .store
        .special_mailbox(account.id, SpecialUse::Inbox)
        .unwrap();
    hub.store
        .messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| hub.store.read_message(inbox.id, m.uid).unwrap())
        .collect()
}

#[tokio::test]
async fn auth_is_offered_only_over_tls_and_refused_before() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Submission, false).await;
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    c.expect(
        "AUTH PLAIN AGRyLm1hcnRpbkBob3BpdGFsLm1zaHViLnRlc3QAZGVtby1tYXJ0aW4=",
        "538 5.7.11",
    )
    .await;
    c.expect(&format!("MAIL FROM:<{MARTIN}>"), "530 5.7.0")
        .await;
    let mut t = Client::connect(&hub, Door::Submission, true).await;
    let ehlo = t.cmd("EHLO client.test").await;
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
}

#[tokio::test]
async fn relay_needs_starttls_before_mail() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Relay, false).await;
    c.expect("HELO old-hospital-system", "250").await;
    c.expect("MAIL FROM:<labo@autre-operateur.test>", "530 5.7.0")
        .await;
}

#[tokio::test]
async fn relay_policy_replies() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Relay, true).await;
    c.expect("EHLO peer.test", "250").await;
    c.expect("MAIL FROM:<x@untrusted.example>", "550 5.7.1")
        .await;
    c.expect(&format!("MAIL FROM:<{LABO}>"), "530 5.7.0").await;
    c.expect("MAIL FROM:<dr.x@autre-operateur.test>", "250 2.1.0")
        .await;
    c.expect("RCPT TO:<nobody@hopital.mshub.test>", "550 5.1.1")
        .await;
    c.expect("RCPT TO:<284057511204338@patient.mshub.test>", "553 5.1.3")
        .await;
    c.expect("RCPT TO:<190017511200119@patient.mshub.test>", "553 5.1.3")
        .await;
    c.expect("RCPT TO:<x@elsewhere.example>", "550 5.7.1").await;
    // No open relay: a peer cannot relay to another peer through us.
    c.expect("RCPT TO:<y@autre-operateur.test>", "550 5.7.1")
        .await;
    c.expect(&format!("RCPT TO:<{CAMILLE}>"), "250 2.1.5").await;
    let r = c
        .data(&message(
            "dr.x@autre-operateur.test",
            CAMILLE,
            "Message-ID: <peer-1@autre-operateur.test>\r\n",
            "Bonjour",
        ))
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let stored = inbox(&hub, CAMILLE);
    assert_eq!(stored.len(), 1);
    let text = String::from_utf8_lossy(&stored[0]);
    assert!(
        text.starts_with("Received: from peer.test ([127.0.0.1])"),
        "{text}"
    );
    assert!(text.ends_with("Bonjour\r\n"), "{text:?}");
}

#[tokio::test]
async fn a_peer_cannot_write_a_from_header_of_this_hub() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Relay, true).await;
    c.expect("EHLO peer.test", "250").await;
    c.expect("MAIL FROM:<dr.x@autre-operateur.test>", "250 2.1.0")
        .await;
    c.expect(&format!("RCPT TO:<{CAMILLE}>"), "250 2.1.5").await;
    // The patient's web inbox would show the local professional's identity.
    let r = c
        .data(&message(MARTIN, CAMILLE, "", "Je suis votre médecin"))
        .await;
    assert!(r.starts_with("550 5.7.1") && r.contains(MARTIN), "{r}");
    assert!(inbox(&hub, CAMILLE).is_empty());
}

#[tokio::test]
async fn submission_checks_envelope_and_from_header() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Submission, true).await;
    c.login(MARTIN, "demo-martin").await;
    c.expect("MAIL FROM:<someone.else@hopital.mshub.test>", "550 5.7.1")
        .await;
    // An organisation mailbox he belongs to is allowed.
    c.expect(&format!("MAIL FROM:<{LABO}>"), "250").await;
    c.expect("RSET", "250").await;
    c.expect(&format!("MAIL FROM:<{MARTIN}>"), "250").await;
    c.expect(&format!("RCPT TO:<{CAMILLE}>"), "250").await;
    let r = c
        .data(&message("ceo@hopital.mshub.test", CAMILLE, "", "spoof"))
        .await;
    assert!(
        r.starts_with("550 5.7.1") && r.contains("ceo@hopital.mshub.test"),
        "{r}"
    );
    assert!(inbox(&hub, CAMILLE).is_empty());
}

#[tokio::test]
async fn bad_password_then_throttling_then_close() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Submission, true).await;
    c.expect("EHLO client.test", "250").await;
    c.expect("AUTH PLAIN %%%notbase64", "501 5.5.2").await;
    // LOGIN, wrong password, three times: the third closes the connection.
    for i in 0..3 {
        c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6").await;
        c.expect(
            "ZHIubWFydGluQGhvcGl0YWwubXNodWIudGVzdA==",
            "334 UGFzc3dvcmQ6",
        )
        .await;
        let r = c.cmd("d3JvbmctcGFzc3dvcmQ=").await;
        assert!(r.starts_with("535 5.7.8"), "{r}");
        if i == 2 {
            let close = c.reply().await;
            assert!(close.starts_with("421"), "{close}");
        }
    }
    assert_eq!(c.session.await.unwrap(), Ended::Dropped);
}

#[tokio::test]
async fn a_patient_answers_but_never_starts() {
    let hub = hub(MtaConfig::default());
    let mut p = Client::connect(&hub, Door::Submission, true).await;
    p.login(CAMILLE, "demo-camille").await;
    p.expect(&format!("MAIL FROM:<{CAMILLE}>"), "250").await;
    p.expect(&format!("RCPT TO:<{MARTIN}>"), "550 5.7.1").await;
    p.expect(
        &format!("RCPT TO:<{PAUL}>"),
        "550 5.7.1 A patient cannot write to another patient",
    )
    .await;
    p.expect("RSET", "250").await;

    let mut d = Client::connect(&hub, Door::Submission, true).await;
    d.login(MARTIN, "demo-martin").await;
    d.expect(&format!("MAIL FROM:<{MARTIN}>"), "250").await;
    d.expect(&format!("RCPT TO:<{CAMILLE}>"), "250").await;
    let r = d
        .data(&message(
            MARTIN,
            CAMILLE,
            "Message-ID: <res-1@hopital.mshub.test>\r\n",
            "Vos résultats",
        ))
        .await;
    assert!(r.starts_with("250"), "{r}");

    p.expect(&format!("MAIL FROM:<{CAMILLE}>"), "250").await;
    p.expect(&format!("RCPT TO:<{MARTIN}>"), "250").await;
    let r = p
        .data(&message(CAMILLE, MARTIN, "", "Question hors fil"))
        .await;
    assert!(r.starts_with("550 5.7.1"), "{r}");
    p.expect(&format!("MAIL FROM:<{CAMILLE}>"), "250").await;
    p.expect(&format!("RCPT TO:<{MARTIN}>"), "250").await;
    let r = p
        .data(&message(
            CAMILLE,
            MARTIN,
            "In-Reply-To: <res-1@hopital.mshub.test>\r\n",
            "Merci",
        ))
        .await;
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(inbox(&hub, MARTIN).len(), 1);
}

#[tokio::test]
async fn pipelined_commands_get_their_replies_in_order() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Submission, true).await;
    c.login(MARTIN, "demo-martin").await;
    c.send(&format!(
        "MAIL FROM:<{MARTIN}>\r\nRCPT TO:<nobody@hopital.mshub.test>\r\nRCPT TO:<{CAMILLE}>\r\nDATA\r\n"
    ))
    .await;
    for expected in ["250 2.1.0", "550 5.1.1", "250 2.1.5", "354"] {
        let r = c.reply().await;
        assert!(r.starts_with(expected), "{r} (expected {expected})");
    }
    c.send(&format!(
        "{}\r\n.\r\nQUIT\r\n",
        message(MARTIN, CAMILLE, "", "pipelined")
    ))
    .await;
    assert!(c.reply().await.starts_with("250 2.0.0"));
    assert!(c.reply().await.starts_with("221"));
    assert_eq!(c.session.await.unwrap(), Ended::Quit);
}

#[tokio::test]
async fn bdat_chunks_are_assembled_and_dot_lines_kept() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Submission, true).await;
    c.login(MARTIN, "demo-martin").await;
    c.expect(&format!("MAIL FROM:<{MARTIN}>"), "250").await;
    c.expect(&format!("RCPT TO:<{CAMILLE}>"), "250").await;
    let full = message(MARTIN, CAMILLE, "", ".leading dot kept as is\r\n");
    let (a, b) = full.split_at(20);
    c.send(&format!("BDAT {}\r\n{a}", a.len())).await;
    assert!(c.reply().await.starts_with("250"));
    c.send(&format!("BDAT {} LAST\r\n{b}", b.len())).await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let stored = String::from_utf8(inbox(&hub, CAMILLE).remove(0)).unwrap();
    assert!(stored.ends_with(&full), "{stored:?}");
    // BDAT without a transaction: refused, and its bytes are not read as commands.
    c.send("BDAT 6 LAST\r\nNOOP\r\n").await;
    assert!(c.reply().await.starts_with("503"));
    c.expect("NOOP", "250").await;
}

/// Every local copy is stored in one batch (all or none: a 451 means no recipient has it).
#[tokio::test]
async fn a_message_to_several_local_recipients_reaches_each_once() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Submission, true).await;
    c.login(MARTIN, "demo-martin").await;
    c.expect(&format!("MAIL FROM:<{MARTIN}>"), "250").await;
    c.expect(&format!("RCPT TO:<{CAMILLE}>"), "250").await;
    c.expect(&format!("RCPT TO:<{LABO}>"), "250").await;
    c.expect(&format!("RCPT TO:<{CAMILLE}>"), "250").await;
    let r = c.data(&message(MARTIN, CAMILLE, "", "for two")).await;
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(inbox(&hub, CAMILLE).len(), 1);
    assert_eq!(inbox(&hub, LABO).len(), 1);
    // The patient may answer: the conversation was recorded with the patient's copy.
    let mut p = Client::connect(&hub, Door::Submission, true).await;
    p.login(CAMILLE, "demo-camille").await;
    p.expect(&format!("MAIL FROM:<{CAMILLE}>"), "250").await;
    p.expect(&format!("RCPT TO:<{MARTIN}>"), "250").await;
}

#[tokio::test]
async fn limits_give_their_replies_and_the_session_goes_on() {
    let config = MtaConfig {
        max_message_size: 2000,
        max_recipients: 2,
        ..MtaConfig::default()
    };
    let hub = hub(config);
    let mut c = Client::connect(&hub, Door::Submission, true).await;
    c.login(MARTIN, "demo-martin").await;
    c.expect(&format!("MAIL FROM:<{MARTIN}> SIZE=5000"), "552 5.3.4")
        .await;
    c.expect(&format!("MAIL FROM:<{MARTIN}>"), "250").await;
    c.expect(&format!("RCPT TO:<{CAMILLE}>"), "250").await;
    c.expect(&format!("RCPT TO:<{LABO}>"), "250").await;
    c.expect(&format!("RCPT TO:<{PAUL}>"), "452 4.5.3").await;
    let r = c
        .data(&message(MARTIN, CAMILLE, "", &"x".repeat(5000)))
        .await;
    assert!(r.starts_with("552 5.3.4"), "{r}");
    c.expect(&format!("MAIL FROM:<{MARTIN}>"), "250").await;
    c.expect(&format!("RCPT TO:<{CAMILLE}>"), "250").await;
    let r = c.data(&message(MARTIN, CAMILLE, "", "bare\nLF")).await;
    assert!(r.starts_with("550 5.6.11"), "{r}");
    c.expect(&format!("MAIL FROM:<{MARTIN}>"), "250").await;
    c.expect(&format!("RCPT TO:<{CAMILLE}>"), "250").await;
    let r = c.data(&message(MARTIN, CAMILLE, "", "fine")).await;
    assert!(r.starts_with("250"), "{r}");
    c.expect(&format!("MAIL FROM:<{MARTIN}> SMTPUTF8"), "250")
        .await;
    c.expect("RSET", "250").await;
    c.expect(&format!("MAIL FROM:<{MARTIN}>"), "250").await;
    c.expect("RCPT TO:<élodie@hopital.mshub.test>", "553 5.6.7")
        .await;
    c.expect("FOO bar", "500 5.5.1").await;
    c.expect("VRFY dr.martin", "252").await;
    assert_eq!(inbox(&hub, CAMILLE).len(), 1);
}

#[tokio::test]
async fn too_many_commands_close_the_connection() {
    let hub = hub(MtaConfig {
        max_commands: 5,
        ..MtaConfig::default()
    });
    let mut c = Client::connect(&hub, Door::Submission, true).await;
    for _ in 0..5 {
        c.expect("NOOP", "250").await;
    }
    c.expect("NOOP", "421 4.7.0").await;
    assert_eq!(c.session.await.unwrap(), Ended::Dropped);
}

#[tokio::test]
async fn a_failing_filer_never_loses_the_message_and_its_outcome_is_recorded() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Submission, true).await;
    c.login(MARTIN, "demo-martin").await;
    c.expect(&format!("MAIL FROM:<{MARTIN}>"), "250").await;
    c.expect(&format!("RCPT TO:<{CAMILLE}>"), "250").await;
    let r = c
        .data(&message(MARTIN, CAMILLE, "", "FILE-ME! please"))
        .await;
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(inbox(&hub, CAMILLE).len(), 1);
    let account = hub
        .directory
        .account_by_address(&Address::try_from(CAMILLE).unwrap())
        .unwrap()
        .unwrap();
    let inbox = hub
        .store
        .special_mailbox(account.id, SpecialUse::Inbox)
        .unwrap();
    let uid = hub.store.messages(inbox.id).unwrap()[0].uid;
    // Filers run after the 250: wait for the outcome (bounded).
    let mut outcomes = Vec::new();
    for _ in 0..100 {
        outcomes = hub.mta.delivery().filing_outcomes(inbox.id, uid).unwrap();
        if !outcomes.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(
        outcomes[0].outcome,
        FilingOutcome::Failed {
            reason: "broken attachment".into()
        }
    );
    // The sender gets a filing report naming the reason (sent right after the outcome).
    let mut reports = Vec::new();
    for _ in 0..100 {
        reports = self::inbox(&hub, MARTIN);
        if !reports.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(reports.len(), 1);
    let report = String::from_utf8_lossy(&reports[0]);
    assert!(
        report.contains("Subject: Rapport de dépôt / Filing report"),
        "{report}"
    );
    assert!(
        report.contains("broken attachment") && report.contains(CAMILLE),
        "{report}"
    );
}

#[tokio::test]
async fn remote_recipients_are_queued_durably() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Submission, true).await;
    c.login(MARTIN, "demo-martin").await;
    c.expect(&format!("MAIL FROM:<{MARTIN}> RET=HDRS ENVID=abc"), "250")
        .await;
    c.expect(
        "RCPT TO:<dr.x@autre-operateur.test> NOTIFY=FAILURE,DELAY",
        "250",
    )
    .await;
    let r = c
        .data(&message(
            MARTIN,
            "dr.x@autre-operateur.test",
            "",
            "to a peer",
        ))
        .await;
    assert!(r.starts_with("250 2.0.0 OK: queued as Q"), "{r}");
    // The queue entry is in the store (nothing runs the queue in this test).
    let entries = mshub_mta::queue::Queue::open(hub.store.clone())
        .unwrap()
        .list()
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].env_id.as_deref(), Some("abc"));
    assert_eq!(
        entries[0].recipients[0].address.as_str(),
        "dr.x@autre-operateur.test"
    );
    assert_ne!(entries[0].recipients[0].dsn.notify, 0);
}

#[tokio::test]
async fn in_process_submission_applies_the_policy_and_saves_to_sent() {
    let hub = hub(MtaConfig::default());
    let camille = hub
        .directory
        .account_by_address(&Address::try_from(CAMILLE).unwrap())
        .unwrap()
        .unwrap();
    let refused = hub
        .mta
        .submit(
            &camille,
            &[MARTIN.to_string()],
            message(CAMILLE, MARTIN, "", "first").as_bytes(),
        )
        .unwrap_err();
    assert_eq!(refused.reply().code, 550);
    let martin = hub
        .directory
        .account_by_address(&Address::try_from(MARTIN).unwrap())
        .unwrap()
        .unwrap();
    hub.mta
        .submit(
            &martin,
            &[CAMILLE.to_string()],
            message(
                MARTIN,
                CAMILLE,
                "Message-ID: <w1@hopital.mshub.test>\r\n",
                "hello",
            )
            .as_bytes(),
        )
        .unwrap();
    hub.mta
        .submit(
            &camille,
            &[MARTIN.to_string()],
            message(
                CAMILLE,
                MARTIN,
                "In-Reply-To: <w1@hopital.mshub.test>\r\n",
                "merci",
            )
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(inbox(&hub, MARTIN).len(), 1);
    let sent = hub
        .store
        .special_mailbox(camille.id, SpecialUse::Sent)
        .unwrap();
    let copies = hub.store.messages(sent.id).unwrap();
    assert_eq!(copies.len(), 1);
    assert!(copies[0].flags.contains(&mshub_store::Flag::Seen));
}

/// A real server on loopback (plain TCP is enough to see greetings and limits).
async fn serve(hub: &Hub) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    let bind = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() };
    let listeners = mshub_mta::Listeners {
        relay: bind().await,
        submission: bind().await,
        submissions: bind().await,
    };
    let relay = listeners.relay.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(hub.mta.clone().serve(listeners, stopped));
    (relay, stop)
}

async fn first_line(stream: &mut tokio::net::TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    line
}

#[tokio::test]
async fn connections_per_source_are_limited_and_freed() {
    let hub = hub(MtaConfig {
        max_connections_per_source: 2,
        ..MtaConfig::default()
    });
    let (addr, stop) = serve(&hub).await;
    let mut one = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut two = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(first_line(&mut one).await.starts_with("220 "));
    assert!(first_line(&mut two).await.starts_with("220 "));
    // Greeted connections keep their places (silent ones would make room: see below).
    ehlo(&mut one).await;
    ehlo(&mut two).await;
    let mut three = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(first_line(&mut three).await.starts_with("421 4.7.0"));
    drop(one);
    // The slot is freed when the session ends (bounded wait for the server to notice).
    let mut greeted = false;
    for _ in 0..50 {
        let mut again = tokio::net::TcpStream::connect(addr).await.unwrap();
        if first_line(&mut again).await.starts_with("220 ") {
            greeted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(greeted, "the freed slot was never given back");
    let _ = stop.send(true);
}

/// Says EHLO and reads the whole reply.
async fn ehlo(stream: &mut tokio::net::TcpStream) {
    stream
        .write_all(b"EHLO client.example.org\r\n")
        .await
        .unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).await.unwrap() > 0, "closed");
        assert!(line.starts_with("250"), "{line:?}");
        if line.starts_with("250 ") {
            return;
        }
    }
}

/// Issue 24: silent connections from one address (stuck clients behind a hospital's NAT)
/// must not lock out the other clients of that address.
#[tokio::test]
async fn at_the_per_source_limit_a_new_client_takes_the_place_of_the_oldest_silent_one() {
    let hub = hub(MtaConfig {
        max_connections_per_source: 2,
        ..MtaConfig::default()
    });
    let (addr, stop) = serve(&hub).await;
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(first_line(&mut silent).await.starts_with("220 "));
    let mut greeted = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(first_line(&mut greeted).await.starts_with("220 "));
    ehlo(&mut greeted).await;
    // The limit is reached; the newcomer is greeted, and the silent one is told and closed.
    let mut newcomer = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(first_line(&mut newcomer).await.starts_with("220 "));
    let mut reader = BufReader::new(&mut silent);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .expect("the silent connection was never closed")
        .unwrap();
    assert!(line.starts_with("421 4.4.2"), "{line:?}");
    line.clear();
    assert_eq!(reader.read_line(&mut line).await.unwrap(), 0, "still open");
    // The greeted one kept its place and still works.
    ehlo(&mut greeted).await;
    // Both places are held by clients that spoke: the next one is refused.
    ehlo(&mut newcomer).await;
    let mut refused = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(first_line(&mut refused).await.starts_with("421 4.7.0"));
    let _ = stop.send(true);
}

#[tokio::test]
async fn a_client_silent_since_its_greeting_is_timed_out_sooner_than_an_idle_one() {
    let hub = hub(MtaConfig {
        idle_timeout_secs: 300,
        unauthenticated_timeout_secs: 1,
        ..MtaConfig::default()
    });
    let (addr, stop) = serve(&hub).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(first_line(&mut stream).await.starts_with("220 "));
    let started = std::time::Instant::now();
    let line = tokio::time::timeout(Duration::from_secs(10), first_line(&mut stream))
        .await
        .expect("a silent client holds its connection for the whole idle timeout");
    assert!(line.starts_with("421 4.4.2"), "{line:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let _ = stop.send(true);
}

#[tokio::test]
async fn a_silent_client_is_told_and_disconnected() {
    let hub = hub(MtaConfig {
        idle_timeout_secs: 1,
        ..MtaConfig::default()
    });
    let (addr, stop) = serve(&hub).await;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).await.unwrap();
    let mut line = String::new();
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reader.read_line(&mut line),
    )
    .await
    .expect("the server never timed the client out")
    .unwrap();
    assert!(n > 0 && line.starts_with("421 4.4.2"), "{line:?}");
    let mut rest = String::new();
    assert_eq!(reader.read_line(&mut rest).await.unwrap(), 0, "still open");
    let _ = stop.send(true);
}

/// A small deterministic generator (xorshift), so a failure is reproducible from its seed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test]
async fn random_input_never_panics_a_session_and_a_clean_session_follows() {
    let hub = hub(MtaConfig {
        max_message_size: 4096,
        ..MtaConfig::default()
    });
    let words: &[&[u8]] = &[
        b"EHLO x\r\n",
        b"HELO x\r\n",
        b"MAIL FROM:<dr.martin@hopital.mshub.test>\r\n",
        b"RCPT TO:<284057511204339@patient.mshub.test>\r\n",
        b"DATA\r\n",
        b"BDAT 7\r\n",
        b"BDAT 3 LAST\r\n",
        b"AUTH PLAIN\r\n",
        b"AUTH LOGIN\r\n",
        b"STARTTLS\r\n",
        b"RSET\r\n",
        b"\r\n.\r\n",
        b".\r\n",
        b"\0",
        b"\n",
        b"\r",
        b"<>",
        b"=",
        b"*\r\n",
        b"\xff\xfe",
        b"MAIL FROM:<",
        b"SIZE=99999999999999999999",
        b"NOTIFY=SUCCESS,FAILURE",
        b"VRFY\r\n",
    ];
    for seed in 1..=200u64 {
        let mut noise = Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut input = Vec::new();
        for _ in 0..(noise.next() % 40) {
            if noise.next() % 3 == 0 {
                let n = (noise.next() % 64) as usize;
                input.extend((0..n).map(|_| noise.next() as u8));
            } else {
                input.extend_from_slice(words[(noise.next() % words.len() as u64) as usize]);
            }
        }
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let conn = Connection {
            id: seed,
            peer: "127.0.0.1:40000".parse().unwrap(),
            door: if seed % 2 == 0 {
                Door::Relay
            } else {
                Door::Submission
            },
            tls: seed % 3 != 0,
            peer_certificate: None,
        };
        let mut session = Session::new(hub.mta.clone(), server, conn);
        let task = tokio::spawn(async move { session.run(true).await });
        // Writes may fail once the session has closed: that is an allowed outcome.
        let _ = client.write_all(&input).await;
        drop(client);
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: session hung"));
        assert!(ended.is_ok(), "seed {seed}: session panicked");
    }
    let mut c = Client::connect(&hub, Door::Submission, true).await;
    c.login(MARTIN, "demo-martin").await;
    c.expect(&format!("MAIL FROM:<{MARTIN}>"), "250").await;
}

#[tokio::test]
async fn filings_interrupted_by_a_stop_are_resumed() {
    use mshub_mta::delivery::Envelope;
    use mshub_mta::dsn::DsnRequest;
    use mshub_mta::policy::{MessageHeaders, Recipient};
    let hub = hub(MtaConfig::default());
    let camille = hub
        .directory
        .account_by_address(&Address::try_from(CAMILLE).unwrap())
        .unwrap()
        .unwrap();
    let envelope = Envelope {
        from: Some(Address::try_from(MARTIN).unwrap()),
        recipients: vec![(
            Recipient::Local(Box::new(camille.clone())),
            DsnRequest::default(),
        )],
        env_id: None,
        ret_full: false,
        sender_account: None,
        authenticity: mshub_mta::Authenticity::PeerCertificate,
    };
    let raw = message(MARTIN, CAMILLE, "", "FILE-ME! after a crash");
    // Delivered (acknowledged), then "stopped" before the filers ran.
    let report = hub
        .mta
        .delivery()
        .deliver(&envelope, &MessageHeaders::default(), raw.as_bytes())
        .unwrap();
    let (_, mailbox, uid) = report.local[0].clone();
    assert!(hub
        .mta
        .delivery()
        .filing_outcomes(mailbox, uid)
        .unwrap()
        .is_empty());
    assert_eq!(hub.mta.delivery().resume_filings().unwrap(), 1);
    let outcomes = hub.mta.delivery().filing_outcomes(mailbox, uid).unwrap();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    // Done once: nothing left to resume.
    assert_eq!(hub.mta.delivery().resume_filings().unwrap(), 0);
}

#[tokio::test]
async fn another_node_leaves_a_fresh_filing_to_the_node_that_delivered_it() {
    use mshub_mta::delivery::Envelope;
    use mshub_mta::dsn::DsnRequest;
    use mshub_mta::policy::{MessageHeaders, Recipient};
    let hub = hub(MtaConfig::default());
    let camille = hub
        .directory
        .account_by_address(&Address::try_from(CAMILLE).unwrap())
        .unwrap()
        .unwrap();
    let envelope = Envelope {
        from: Some(Address::try_from(MARTIN).unwrap()),
        recipients: vec![(Recipient::Local(Box::new(camille)), DsnRequest::default())],
        env_id: None,
        ret_full: false,
        sender_account: None,
        authenticity: mshub_mta::Authenticity::PeerCertificate,
    };
    let raw = message(MARTIN, CAMILLE, "", "FILE-ME! while another node starts");
    let report = hub
        .mta
        .delivery()
        .deliver(&envelope, &MessageHeaders::default(), raw.as_bytes())
        .unwrap();
    let (_, mailbox, uid) = report.local[0].clone();
    // A second node on the same store starts while the first is (say) still filing.
    let other = mshub_mta::Delivery::new(
        "mx2.mshub.test".into(),
        hub.store.clone(),
        hub.directory.clone(),
        Arc::new(mshub_mta::queue::Queue::open(hub.store.clone()).unwrap()),
        vec![Arc::new(FailingFiler)],
    );
    assert_eq!(other.resume_filings().unwrap(), 0, "not its copy to file");
    assert!(hub
        .mta
        .delivery()
        .filing_outcomes(mailbox, uid)
        .unwrap()
        .is_empty());
    // The node that delivered it files it (here: resumes), once.
    assert_eq!(hub.mta.delivery().resume_filings().unwrap(), 1);
    assert_eq!(
        hub.mta
            .delivery()
            .filing_outcomes(mailbox, uid)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(other.resume_filings().unwrap(), 0);
}

#[tokio::test]
async fn notify_success_returns_a_delivered_dsn_to_the_sender() {
    let hub = hub(MtaConfig::default());
    let mut c = Client::connect(&hub, Door::Submission, true).await;
    c.login(MARTIN, "demo-martin").await;
    c.expect(&format!("MAIL FROM:<{MARTIN}> ENVID=env-7"), "250")
        .await;
    c.expect(&format!("RCPT TO:<{CAMILLE}> NOTIFY=SUCCESS"), "250")
        .await;
    c.expect(&format!("RCPT TO:<{LABO}>"), "250").await;
    let r = c
        .data(&message(
            MARTIN,
            CAMILLE,
            "Message-ID: <ok-1@hopital.mshub.test>\r\n",
            "hi",
        ))
        .await;
    assert!(r.starts_with("250"), "{r}");
    let martin = inbox(&hub, MARTIN);
    assert_eq!(martin.len(), 1, "one DSN for the one recipient who asked");
    let dsn = String::from_utf8_lossy(&martin[0]);
    assert!(dsn.contains("Action: delivered\r\nStatus: 2.0.0"), "{dsn}");
    assert!(
        dsn.contains(&format!("Final-Recipient: rfc822;{CAMILLE}")),
        "{dsn}"
    );
    assert!(
        !dsn.contains(&format!("Final-Recipient: rfc822;{LABO}")),
        "{dsn}"
    );
    assert!(dsn.contains("Original-Envelope-Id: env-7"), "{dsn}");
}
