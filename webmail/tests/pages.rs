//! The patient's pages in process: the router driven with `tower::ServiceExt::oneshot` over a
//! real store, directory, vault and MTA in a temporary directory, by a small cookie-keeping
//! client that fills the forms the pages render (CSRF token included).

mod support;

use support::browser::{Browser, Page};

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use tower::ServiceExt as _;

use mshub_directory::{
    Account, AccountKind, Address, BirthDate, Directory, Domain, DomainEntry, DomainRole, Ins,
    Profession, Rpps, Sex,
};
use mshub_mta::Mta;
use mshub_store::{Flag, MasterKey, SpecialUse, Store};
use mshub_vault::{FilingOutcome, Vault};
use mshub_webmail::{router, Webmail};

const PASSWORD: &str = "correct-horse-battery-staple";
const CAMILLE_INS: &str = "284057511204339";
const CAMILLE: &str = "284057511204339@patient.mshub.test";
/// Camille's mother: a patient too, to whom Camille delegates.
const HELENE_INS: &str = "255081416802538";
const HELENE: &str = "255081416802538@patient.mshub.test";
const MARTIN: &str = "claire.martin@chu.mshub.test";
const STRANGER: &str = "paul.autre@chu.mshub.test";
const LABO: &str = "labo@chu.mshub.test";

struct Hub {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    directory: Arc<Directory>,
    mta: Arc<Mta>,
    camille: Account,
    router: Router,
}

fn rpps(body: u64) -> Rpps {
    let body = format!("{body:010}");
    (0..10)
        .find_map(|check| Rpps::try_from(format!("{body}{check}").as_str()).ok())
        .expect("one check digit fits")
}

fn patient(ins: &str, given: &str, birth: &str, sex: Sex) -> AccountKind {
    AccountKind::Patient {
        ins: Ins::try_from(ins).unwrap(),
        given_name: given.into(),
        family_name: "Durand".into(),
        birth_date: BirthDate::try_from(birth).unwrap(),
        sex,
    }
}

fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    let directory =
        Arc::new(Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap());
    directory
        .set_domain(
            DomainEntry {
                domain: Domain::try_from("chu.mshub.test").unwrap(),
                role: DomainRole::Local,
            },
            "test",
        )
        .unwrap();
    let add = |addr: &str, kind: AccountKind| {
        directory
            .add_account(
                Address::try_from(addr).unwrap(),
                kind,
                Some(PASSWORD),
                "test",
            )
            .unwrap()
    };
    let camille = add(
        CAMILLE,
        patient(CAMILLE_INS, "Camille", "1984-05-12", Sex::Female),
    );
    add(
        HELENE,
        patient(HELENE_INS, "Hélène", "1955-08-14", Sex::Female),
    );
    for (addr, n) in [(MARTIN, 1), (STRANGER, 2)] {
        add(
            addr,
            AccountKind::Professional {
                rpps: rpps(n),
                given_name: "Claire".into(),
                family_name: "Martin".into(),
                profession: Profession::Physician,
                specialty: "cardiologie".into(),
                city: String::new(),
            },
        );
    }
    add(
        LABO,
        AccountKind::Organisation {
            name: "Laboratoire du CHU".into(),
            members: vec![],
        },
    );
    let mta = support::mta(store.clone(), directory.clone());
    let router = router(Webmail::new(store.clone(), directory.clone(), mta.clone()));
    Hub {
        _dir: dir,
        store,
        directory,
        mta,
        camille,
        router,
    }
}

fn account(h: &Hub, address: &str) -> Account {
    h.directory
        .account_by_address(&Address::try_from(address).unwrap())
        .unwrap()
        .unwrap()
}

/// The document a page's URL names.
fn document(vault: &Vault, reference: &str) -> mshub_vault::Document {
    let reference = mshub_vault::DocumentRef::try_from(reference).unwrap();
    vault
        .document(vault.resolve(&reference).unwrap().unwrap())
        .unwrap()
}

impl Hub {
    /// A message from `from` in Camille's INBOX, recorded as a conversation the way delivery
    /// does (only then may she answer). Returns its path.
    fn deliver(&self, from: &str, subject: &str, body: &str, opens_conversation: bool) -> String {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("m{n}@chu.mshub.test");
        let message = format!(
            "From: \"Dr Claire Martin\" <{from}>\r\nTo: <{CAMILLE}>\r\nSubject: {subject}\r\n\
             Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}>\r\n\
             MIME-Version: 1.0\r\n{body}"
        );
        if opens_conversation {
            self.mta
                .conversations()
                .record(
                    self.camille.id,
                    &Address::try_from(from).unwrap(),
                    Some(&id),
                )
                .unwrap();
        }
        let inbox = self
            .store
            .special_mailbox(self.camille.id, SpecialUse::Inbox)
            .unwrap();
        let meta = self
            .store
            .append(
                inbox.id,
                message.as_bytes(),
                Default::default(),
                mshub_store::now(),
            )
            .unwrap();
        format!("/m/{}/{}", inbox.id, meta.uid)
    }

    fn deliver_text(&self, from: &str, subject: &str) -> String {
        self.deliver(
            from,
            subject,
            "Content-Type: text/plain; charset=utf-8\r\n\r\nBonjour, vos résultats sont normaux.\r\n",
            true,
        )
    }

    /// A PDF from the lab filed into Camille's vault; its id.
    fn file_pdf(&self, marker: &str) -> String {
        let pdf = format!("%PDF-1.4\n% {marker}\n%%EOF\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(pdf);
        let message = format!(
            "From: <{LABO}>\r\nTo: <{CAMILLE}>\r\nSubject: Document\r\n\
             Message-ID: <{marker}@chu.mshub.test>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nVoici.\r\n\
             --b\r\nContent-Type: application/pdf; name=\"bilan.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"bilan.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
        );
        let vault = Vault::new(self.store.clone(), self.directory.clone());
        let filing = vault.file_message(
            &self.camille,
            Some(&Address::try_from(LABO).unwrap()),
            message.as_bytes(),
        );
        assert!(matches!(filing.outcome(), FilingOutcome::Filed { .. }));
        vault
            .documents_for_patient(&self.camille)
            .unwrap()
            .last()
            .unwrap()
            .reference
            .to_string()
    }

    fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            cookies: HashMap::new(),
        }
    }
}

impl Browser {
    async fn post_multipart(&mut self, path: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Page {
        let mut body = Vec::new();
        for (name, file, bytes) in parts {
            body.extend_from_slice(b"--XyZ\r\n");
            match file {
                Some(f) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                         Content-Type: text/plain\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XyZ--\r\n");
        self.send(
            Request::post(path).header(header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ"),
            Body::from(body),
        )
        .await
    }

    async fn login(&mut self, login: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let token = form.csrf();
        self.post(
            "/login",
            &[("_csrf", &token), ("login", login), ("password", password)],
        )
        .await
    }

    /// The CSRF token of the session, read from a page that has forms.
    async fn token(&mut self) -> String {
        self.get("/settings").await.csrf()
    }
}

#[tokio::test]
async fn pages_need_a_session_and_login_needs_its_token() {
    let h = hub();
    let mut b = h.browser();
    for path in [
        "/",
        "/documents",
        "/settings",
        "/m/1/1",
        "/agenda",
        "/events",
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert!(p.location().starts_with("/login"), "{path}");
    }
    // A login post without the login page's cookie and token (login CSRF) is refused.
    let p = b
        .post(
            "/login",
            &[
                ("_csrf", "forged"),
                ("login", CAMILLE),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("__Host-mshub"));
}

#[tokio::test]
async fn a_patient_logs_in_with_its_ins_and_gets_a_strict_fresh_session() {
    let h = hub();
    let mut b = h.browser();
    let bad = b.login(CAMILLE_INS, "wrong password!").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.text().contains("Identifiant ou mot de passe incorrect"));

    let form = b.get("/login").await;
    let page_csp = form.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(page_csp.contains("script-src 'self'") && !page_csp.contains("unsafe-inline"));
    assert!(form.text().contains("<html lang=\"fr\">"));
    let ok = b
        .post(
            "/login",
            &[
                ("_csrf", &form.csrf()),
                ("login", CAMILLE_INS),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), "/");
    let set: Vec<&str> = ok
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = set.iter().find(|c| c.starts_with("__Host-mshub=")).unwrap();
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attribute), "{session}");
    }
    let first = b.cookies["__Host-mshub"].clone();
    let inbox = b.get("/").await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert!(inbox.text().contains("Messages reçus"));

    // A new login rotates: the session the browser carried is closed, and a token the server
    // never issued (fixation) is never adopted.
    let mut c = h.browser();
    let form = c.get("/login").await;
    c.cookies.insert("__Host-mshub".into(), first.clone());
    let p = c
        .post(
            "/login",
            &[
                ("_csrf", &form.csrf()),
                ("login", CAMILLE),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_ne!(c.cookies["__Host-mshub"], first);
    assert_eq!(
        b.get("/").await.status,
        StatusCode::SEE_OTHER,
        "old session closed"
    );
    let mut d = h.browser();
    let form = d.get("/login").await;
    d.cookies
        .insert("__Host-mshub".into(), "chosen-by-an-attacker".into());
    d.post(
        "/login",
        &[
            ("_csrf", &form.csrf()),
            ("login", CAMILLE),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_ne!(d.cookies["__Host-mshub"], "chosen-by-an-attacker");
}

#[tokio::test]
async fn professionals_are_sent_to_their_mail_client() {
    let h = hub();
    let mut b = h.browser();
    let p = b.login(MARTIN, PASSWORD).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.text().contains("réservé aux patients"));
    assert!(!b.cookies.contains_key("__Host-mshub"));
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled() {
    let h = hub();
    let mut b = h.browser();
    let mut last = StatusCode::OK;
    for _ in 0..8 {
        last = b.login(CAMILLE, "not the password").await.status;
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    // Even the right password waits its turn.
    let p = b.login(CAMILLE, PASSWORD).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(p.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn the_inbox_shows_sender_identity_unread_marks_and_pages() {
    let h = hub();
    for n in 0..30 {
        h.deliver_text(MARTIN, &format!("Message {n:02}"));
    }
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let first = b.get("/").await.text();
    assert!(first.contains("Message 29"), "newest first");
    assert!(!first.contains("Message 04"), "only one page");
    assert!(first.contains("Non lu"));
    assert!(first.contains("Claire Martin</strong>, Médecin, cardiologie"));
    assert!(first.contains("30 messages, dont 30 non lus"));
    let second = b.get("/?page=1").await.text();
    assert!(second.contains("Message 04") && second.contains("Message 00"));
    assert!(!second.contains("Message 29"));
}

#[tokio::test]
async fn reading_marks_seen_and_html_is_sanitized() {
    let h = hub();
    let path = h.deliver(
        MARTIN,
        "HTML",
        "Content-Type: text/html; charset=utf-8\r\n\r\n<p>Bonjour <b>Camille</b></p>\
         <script>alert(1)</script><img src=\"https://tracker.example/p.gif\">\
         <a href=\"javascript:steal()\">x</a>\r\n",
        true,
    );
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    assert!(text.contains("<b>Camille</b>"));
    assert!(!text.contains("alert(1)"));
    assert!(!text.contains("tracker.example"));
    assert!(!text.contains("javascript:"));
    assert!(text.contains("contenus distants de ce message ont été bloqués"));
    let inbox = h
        .store
        .special_mailbox(h.camille.id, SpecialUse::Inbox)
        .unwrap();
    let meta = &h.store.messages(inbox.id).unwrap()[0];
    assert!(meta.flags.contains(&Flag::Seen));
}

#[tokio::test]
async fn another_patients_message_is_not_found() {
    let h = hub();
    let path = h.deliver_text(MARTIN, "Pour Camille");
    let mut b = h.browser();
    b.login(HELENE, PASSWORD).await;
    assert_eq!(b.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        b.get(&format!("{path}/part/0")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_reply_reaches_the_professional_and_lands_in_sent() {
    let h = hub();
    let path = h.deliver_text(MARTIN, "Résultats");
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let page = b.get(&path).await;
    assert!(page.text().contains("Envoyer la réponse"));
    let token = page.csrf();
    // Without its token the reply is refused.
    let forged = b
        .post_multipart(
            &format!("{path}/reply"),
            &[("_csrf", None, b"nope"), ("body", None, b"Merci")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let sent = b
        .post_multipart(
            &format!("{path}/reply"),
            &[
                ("_csrf", None, token.as_bytes()),
                ("body", None, "Merci docteur, à jeudi.".as_bytes()),
                ("attachment", Some("note.txt"), b"tension 12/8"),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    assert_eq!(sent.location(), format!("{path}?sent=1"));
    assert!(b
        .get(sent.location())
        .await
        .text()
        .contains("Votre réponse a été envoyée"));

    let martin = account(&h, MARTIN);
    let inbox = h
        .store
        .special_mailbox(martin.id, SpecialUse::Inbox)
        .unwrap();
    let metas = h.store.messages(inbox.id).unwrap();
    assert_eq!(metas.len(), 1);
    let raw = String::from_utf8(h.store.read_message(inbox.id, metas[0].uid).unwrap()).unwrap();
    assert!(
        raw.contains("Subject: =?utf-8?Q?Re:_R=C3=A9sultats?="),
        "{raw}"
    );
    assert!(raw.contains("In-Reply-To: <"));
    assert!(raw.contains("note.txt"));
    assert!(raw.contains(CAMILLE));
    let sent_box = h
        .store
        .special_mailbox(h.camille.id, SpecialUse::Sent)
        .unwrap();
    assert_eq!(h.store.messages(sent_box.id).unwrap().len(), 1);
    assert!(b.get("/sent").await.text().contains("Claire Martin"));
}

#[tokio::test]
async fn a_patient_cannot_start_a_conversation_even_by_forging_the_form() {
    let h = hub();
    // A message that did not open a conversation (no record): the page offers no reply and
    // the MTA refuses one anyway.
    let path = h.deliver(
        STRANGER,
        "Info",
        "Content-Type: text/plain\r\n\r\nBonjour\r\n",
        false,
    );
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let page = b.get(&path).await;
    assert!(!page.text().contains("Envoyer la réponse"));
    let token = b.token().await;
    let p = b
        .post_multipart(
            &format!("{path}/reply"),
            &[
                ("_csrf", None, token.as_bytes()),
                ("body", None, b"Bonjour"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.text().contains("qui vous a écrit"), "{}", p.text());
    let stranger = account(&h, STRANGER);
    let inbox = h
        .store
        .special_mailbox(stranger.id, SpecialUse::Inbox)
        .unwrap();
    assert!(h.store.messages(inbox.id).unwrap().is_empty());
}

#[tokio::test]
async fn documents_are_listed_viewed_masked_classified_and_deleted() {
    let h = hub();
    let id = h.file_pdf("bilan");
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let list = b.get("/documents").await.text();
    assert!(list.contains("À classer"));
    assert!(list.contains(&format!("/documents/{id}")));
    assert_eq!(id.len(), 32, "{id}");
    // The document's number, or its reference altered, names nothing.
    let mut altered = id.clone().into_bytes();
    altered[5] = if altered[5] == b'a' { b'b' } else { b'a' };
    let altered = String::from_utf8(altered).unwrap();
    for other in ["1", "0", altered.as_str()] {
        for path in [
            format!("/documents/{other}"),
            format!("/documents/{other}/file"),
        ] {
            assert_eq!(b.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
    }
    let doc = b.get(&format!("/documents/{id}")).await;
    assert!(doc.text().contains("Ouvrir le PDF"));
    let file = b.get(&format!("/documents/{id}/file?inline=1")).await;
    assert_eq!(file.headers[header::CONTENT_TYPE], "application/pdf");
    assert!(file.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("inline"));
    assert!(file.body.starts_with(b"%PDF-1.4\n% bilan"));

    let token = doc.csrf();
    assert_eq!(
        b.post(&format!("/documents/{id}/mask"), &[]).await.status,
        StatusCode::FORBIDDEN,
        "no token"
    );
    let masked = b
        .post(&format!("/documents/{id}/mask"), &[("_csrf", &token)])
        .await;
    assert_eq!(masked.status, StatusCode::SEE_OTHER);
    let vault = Vault::new(h.store.clone(), h.directory.clone());
    assert!(document(&vault, &id).masked);
    assert!(b
        .get("/documents")
        .await
        .text()
        .contains("Masqué aux professionnels"));
    b.post(&format!("/documents/{id}/unmask"), &[("_csrf", &token)])
        .await;
    assert!(!document(&vault, &id).masked);

    // Classify as a biology report (LOINC 11502-2), then a code outside the table is refused.
    let p = b
        .post(
            &format!("/documents/{id}/classify"),
            &[("_csrf", &token), ("code", "11502-2")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(b.get("/documents").await.text().contains("Biologie"));
    let p = b
        .post(
            &format!("/documents/{id}/classify"),
            &[("_csrf", &token), ("code", "00000-0")],
        )
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);

    // Delete needs its confirmation.
    let p = b
        .post(&format!("/documents/{id}/delete"), &[("_csrf", &token)])
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    let p = b
        .post(
            &format!("/documents/{id}/delete"),
            &[("_csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(
        b.get(&format!("/documents/{id}")).await.status,
        StatusCode::GONE
    );
    assert!(!b
        .get("/documents")
        .await
        .text()
        .contains(&format!("/documents/{id}\"")));
    assert!(b
        .get("/documents/history")
        .await
        .text()
        .contains("a supprimé le document"));
}

#[tokio::test]
async fn the_access_history_names_the_professional_who_read() {
    let h = hub();
    let id = h.file_pdf("ecg");
    let vault = Vault::new(h.store.clone(), h.directory.clone());
    vault
        .add_relationship(
            &h.camille,
            &account(&h, MARTIN),
            mshub_vault::Relationship::Follows,
            None,
        )
        .unwrap();
    vault
        .read_document(&account(&h, MARTIN), document(&vault, &id).id)
        .unwrap();
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let history = b.get("/documents/history").await.text();
    assert!(
        history.contains("Claire Martin (claire.martin@chu.mshub.test)"),
        "{history}"
    );
    assert!(history.contains("a consulté le document"));
    assert!(history.contains("bilan.pdf") || history.contains("Document"));
}

#[tokio::test]
async fn a_relative_reads_by_delegation_but_changes_nothing_and_is_audited() {
    let h = hub();
    let path = h.deliver_text(MARTIN, "Pour Camille");
    let id = h.file_pdf("delegation");
    let mut camille = h.browser();
    camille.login(CAMILLE, PASSWORD).await;
    let token = camille.token().await;
    let p = camille
        .post(
            "/settings/delegations",
            &[("_csrf", &token), ("address", HELENE), ("level", "read")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    // Delegating to a professional is refused.
    let p = camille
        .post(
            "/settings/delegations",
            &[("_csrf", &token), ("address", MARTIN), ("level", "read")],
        )
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);

    let helene_account = account(&h, HELENE);
    let mut helene = h.browser();
    helene.login(HELENE, PASSWORD).await;
    let settings = helene.get("/settings").await.text();
    assert!(settings.contains("Ouvrir l'espace de Camille Durand"));
    let token = helene.token().await;
    let p = helene
        .post(
            "/space",
            &[("_csrf", &token), ("space", &h.camille.id.0.to_string())],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let inbox = helene.get("/").await.text();
    assert!(inbox.contains("Vous consultez l'espace de"));
    assert!(inbox.contains("Pour Camille"));
    let message = helene.get(&path).await.text();
    assert!(!message.contains("Envoyer la réponse"));
    assert!(message.contains("lecture seulement"));
    // The relative's read leaves the message unread for Camille.
    let camille_inbox = h
        .store
        .special_mailbox(h.camille.id, SpecialUse::Inbox)
        .unwrap();
    assert!(!h.store.messages(camille_inbox.id).unwrap()[0]
        .flags
        .contains(&Flag::Seen));
    // Reading a document is audited under the relative's address.
    helene.get(&format!("/documents/{id}/file")).await;
    let history = camille.get("/documents/history").await.text();
    assert!(
        history.contains(HELENE) && history.contains("(délégation)"),
        "{history}"
    );
    // Owner-only actions are refused.
    let p = helene
        .post(&format!("/documents/{id}/mask"), &[("_csrf", &token)])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = helene
        .post_multipart(
            &format!("{path}/reply"),
            &[
                ("_csrf", None, token.as_bytes()),
                ("body", None, b"Bonjour"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    // Revoked: the relative's very next request is back in its own space.
    let token = camille.token().await;
    let p = camille
        .post(
            "/settings/delegations/revoke",
            &[
                ("_csrf", &token),
                ("delegate", &helene_account.id.0.to_string()),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let after = helene.get(&path).await;
    assert_ne!(after.status, StatusCode::OK);
    assert!(!helene.get("/").await.text().contains("Pour Camille"));
}

#[tokio::test]
async fn password_change_needs_the_current_one_and_ends_other_sessions() {
    let h = hub();
    let mut b = h.browser();
    let mut other = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    other.login(CAMILLE, PASSWORD).await;
    let token = b.token().await;
    let new = "a-much-longer-new-secret";
    let p = b
        .post(
            "/settings/password",
            &[
                ("_csrf", &token),
                ("current", "wrong"),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = b
        .post(
            "/settings/password",
            &[
                ("_csrf", &token),
                ("current", PASSWORD),
                ("new", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    let p = b
        .post(
            "/settings/password",
            &[
                ("_csrf", &token),
                ("current", PASSWORD),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(
        b.get("/").await.status,
        StatusCode::OK,
        "this browser got a new session"
    );
    assert_eq!(
        other.get("/").await.status,
        StatusCode::SEE_OTHER,
        "others are signed out"
    );
    let mut again = h.browser();
    assert_eq!(
        again.login(CAMILLE, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        again.login(CAMILLE, new).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_application_password_is_shown_once_and_revocable() {
    let h = hub();
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let token = b.token().await;
    let p = b
        .post(
            "/settings/app-passwords",
            &[("_csrf", &token), ("label", "Thunderbird")],
        )
        .await;
    assert_eq!(p.status, StatusCode::OK);
    let text = p.text();
    let at = text.find("<code class=\"secret\">").unwrap() + 20;
    let clear = &text[at..at + text[at..].find('<').unwrap()];
    assert!(clear.len() >= 16);
    let settings = b.get("/settings").await.text();
    assert!(settings.contains("Thunderbird"));
    assert!(!settings.contains(clear), "shown once only");
    let stored = account(&h, CAMILLE).app_passwords;
    assert_eq!(stored.len(), 1);
    let p = b
        .post(
            "/settings/app-passwords/revoke",
            &[("_csrf", &token), ("id", &stored[0].id.to_string())],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(account(&h, CAMILLE).app_passwords.is_empty());
}

#[tokio::test]
async fn notification_preferences_are_kept_and_honoured() {
    let h = hub();
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let token = b.token().await;
    // Unchecked boxes are absent from the form: both off.
    let p = b
        .post("/settings/notifications", &[("_csrf", &token)])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let vault = Vault::new(h.store.clone(), h.directory.clone());
    let notices = vault.patient_settings(h.camille.id).unwrap().notices;
    assert!(!notices.new_document && !notices.first_access);
    let inbox = h
        .store
        .special_mailbox(h.camille.id, SpecialUse::Inbox)
        .unwrap();
    let before = h.store.messages(inbox.id).unwrap().len();
    h.file_pdf("silent");
    assert_eq!(
        h.store.messages(inbox.id).unwrap().len(),
        before,
        "no new-document notice"
    );
}

#[tokio::test]
async fn the_export_holds_messages_and_documents() {
    let h = hub();
    h.deliver_text(MARTIN, "Exporté");
    h.file_pdf("export");
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let token = b.token().await;
    let p = b.post("/settings/export", &[("_csrf", &token)]).await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(p.headers[header::CONTENT_TYPE], "application/zip");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(p.body)).unwrap();
    let names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().to_string())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("messages/INBOX/") && n.ends_with(".eml")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("documents/a-classer/") && n.ends_with("bilan.pdf")),
        "{names:?}"
    );
    assert!(names.contains(&"LISEZMOI.txt".to_string()));
}

#[tokio::test]
async fn closing_the_space_signs_out_and_refuses_later_logins() {
    let h = hub();
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let token = b.token().await;
    let p = b
        .post(
            "/settings/close",
            &[("_csrf", &token), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "confirmation needed");
    let p = b
        .post(
            "/settings/close",
            &[
                ("_csrf", &token),
                ("password", PASSWORD),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(matches!(
        account(&h, CAMILLE).lifecycle,
        mshub_directory::Lifecycle::Closed { .. }
    ));
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        h.browser().login(CAMILLE, PASSWORD).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let h = hub();
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let stolen = b.cookies["__Host-mshub"].clone();
    let token = b.token().await;
    assert_eq!(
        b.post("/logout", &[("_csrf", "bad")]).await.status,
        StatusCode::FORBIDDEN
    );
    let p = b.post("/logout", &[("_csrf", &token)]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), "/login");
    let mut replay = h.browser();
    replay.cookies.insert("__Host-mshub".into(), stolen);
    assert_eq!(replay.get("/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn new_mail_is_announced_as_a_server_sent_event() {
    use http_body_util::BodyExt as _;
    let h = hub();
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let cookie = format!("__Host-mshub={}", b.cookies["__Host-mshub"]);
    let response = h
        .router
        .clone()
        .oneshot(
            Request::get("/events")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    h.deliver_text(MARTIN, "En direct");
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .unwrap();
    let data = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(data.contains("event: message"), "{data}");
}

#[tokio::test]
async fn form_posts_are_rate_limited_per_session() {
    let h = hub();
    let config = mshub_webmail::WebmailConfig {
        posts_per_minute: 3,
        ..Default::default()
    };
    let router = router(
        Webmail::with_config(config, h.store.clone(), h.directory.clone(), h.mta.clone()).unwrap(),
    );
    let mut b = Browser {
        router,
        cookies: HashMap::new(),
    };
    b.login(CAMILLE, PASSWORD).await; // one post, by address
    let token = b.token().await;
    for _ in 0..3 {
        let p = b
            .post(
                "/settings/notifications",
                &[("_csrf", &token), ("new_document", "on")],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
    }
    let p = b
        .post(
            "/settings/notifications",
            &[("_csrf", &token), ("new_document", "on")],
        )
        .await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(p.headers.contains_key(header::RETRY_AFTER));
    // Reading is not limited.
    assert_eq!(b.get("/").await.status, StatusCode::OK);
}

/// An invitation from Dr Martin for 2027-03-15 09:00 Paris time, as a simple client sends it.
fn invitation(sequence: u32, method: &str) -> String {
    format!(
        "From: <{MARTIN}>\r\nTo: <{CAMILLE}>\r\nSubject: Consultation\r\n\
         Message-ID: <invite-{sequence}@chu.mshub.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/calendar; charset=utf-8; method={method}\r\n\r\n\
         BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:{method}\r\n\
         BEGIN:VEVENT\r\nUID:rdv-cardio-1@chu.mshub.test\r\nSEQUENCE:{sequence}\r\n\
         DTSTAMP:20261120T100000Z\r\nDTSTART;TZID=Europe/Paris:20270315T090000\r\n\
         DTEND;TZID=Europe/Paris:20270315T093000\r\nSUMMARY:Consultation de cardiologie\r\n\
         LOCATION:CHU, bâtiment B\r\n\
         ORGANIZER;CN=Dr Claire Martin:mailto:{MARTIN}\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{CAMILLE}\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

#[tokio::test]
async fn an_invitation_is_in_the_agenda_and_accepting_replies_to_the_organizer() {
    let h = hub();
    let agenda = mshub_agenda::Agenda::new(h.store.clone(), h.directory.clone());
    let martin = Address::try_from(MARTIN).unwrap();
    h.mta
        .conversations()
        .record(h.camille.id, &martin, Some("invite-0@chu.mshub.test"))
        .unwrap();
    let filed = agenda.file_message(
        &h.camille,
        Some(&martin),
        invitation(0, "REQUEST").as_bytes(),
    );
    assert!(
        matches!(filed.outcome(), mshub_agenda::FilingOutcome::Filed { .. }),
        "{:?}",
        filed.outcome()
    );
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let page = b.get("/agenda").await;
    let text = page.text();
    assert!(text.contains("Consultation de cardiologie"), "{text}");
    assert!(text.contains("15 mars 2027 à 09:00"), "Paris time: {text}");
    assert!(text.contains("Organisé par Dr Claire Martin"));
    assert!(text.contains("Réponse attendue"));
    let token = page.csrf();
    let p = b
        .post(
            "/agenda/respond",
            &[
                ("_csrf", &token),
                ("uid", "rdv-cardio-1@chu.mshub.test"),
                ("answer", "accept"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    assert!(b.get("/agenda").await.text().contains("Vous avez accepté"));
    let inbox = h
        .store
        .special_mailbox(account(&h, MARTIN).id, SpecialUse::Inbox)
        .unwrap();
    let metas = h.store.messages(inbox.id).unwrap();
    assert_eq!(metas.len(), 1);
    let raw = String::from_utf8(h.store.read_message(inbox.id, metas[0].uid).unwrap()).unwrap();
    assert!(raw.contains("METHOD:REPLY"), "{raw}");
    assert!(raw.contains("PARTSTAT=ACCEPTED"), "{raw}");

    // A cancellation shows as such and can no longer be answered.
    agenda.file_message(
        &h.camille,
        Some(&martin),
        invitation(1, "CANCEL").as_bytes(),
    );
    let text = b.get("/agenda").await.text();
    assert!(text.contains("annulé par l'organisateur"), "{text}");
    let p = b
        .post(
            "/agenda/respond",
            &[
                ("_csrf", &token),
                ("uid", "rdv-cardio-1@chu.mshub.test"),
                ("answer", "decline"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_calendar_feed_is_served_by_its_secret_url_until_renewed() {
    let h = hub();
    let agenda = mshub_agenda::Agenda::new(h.store.clone(), h.directory.clone());
    agenda.file_message(
        &h.camille,
        Some(&Address::try_from(MARTIN).unwrap()),
        invitation(0, "REQUEST").as_bytes(),
    );
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let text = b.get("/agenda").await.text();
    let at = text.find("/agenda/feed/").unwrap();
    let url = &text[at..at + text[at..].find('<').unwrap()];
    assert!(url.ends_with(".ics"));
    // No session needed: a phone's calendar fetches it.
    let mut phone = h.browser();
    let feed = phone.get(url).await;
    assert_eq!(feed.status, StatusCode::OK);
    assert!(feed.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/calendar"));
    assert!(feed.text().contains("Consultation de cardiologie"));
    assert_eq!(
        phone.get("/agenda/feed/guess.ics").await.status,
        StatusCode::NOT_FOUND
    );
    let token = b.token().await;
    let p = b.post("/agenda/feed/renew", &[("_csrf", &token)]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(phone.get(url).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn prevention_reminders_follow_age_and_what_was_done() {
    let h = hub();
    let mut b = h.browser();
    // Hélène, born 1955: influenza every year from 65, among others.
    b.login(HELENE, PASSWORD).await;
    let text = b.get("/agenda").await.text();
    assert!(text.to_lowercase().contains("grippe"), "{text}");
    let token = b.token().await;
    let key_at = text.find("name=\"key\" value=\"").unwrap() + 18;
    let key = &text[key_at..key_at + text[key_at..].find('"').unwrap()];
    let before = text.matches("name=\"key\"").count();
    let p = b
        .post("/agenda/prevention", &[("_csrf", &token), ("key", key)])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let after = b
        .get("/agenda")
        .await
        .text()
        .matches("name=\"key\"")
        .count();
    assert_eq!(after, before - 1, "{key} done today is no longer due");
}

/// Imports the demo catalogue, dated today, signed by a throwaway authority.
fn import_catalogue(h: &Hub) {
    let authority = mshub_catalogue::authority::generate(
        "Autorité de test",
        std::time::SystemTime::now(),
        None,
    )
    .unwrap();
    let today = chrono::Utc::now().date_naive();
    let data = mshub_catalogue::file::with_dates(
        mshub_catalogue::file::DEMO,
        today - chrono::Days::new(1),
        today + chrono::Days::new(365),
    );
    let signature =
        mshub_catalogue::authority::sign(authority.secret.as_bytes(), data.as_bytes()).unwrap();
    mshub_catalogue::Catalogue::new(h.store.clone(), h.directory.clone())
        .import(
            data.as_bytes(),
            signature.as_bytes(),
            authority.public.as_bytes(),
            "test",
        )
        .unwrap();
}

const VERIFIER: &str = "a-long-enough-code-verifier-of-the-test-app-0123456789";
const CALLBACK: &str = "http://127.0.0.1:5555/callback";

fn authorize_path(scope: &str, redirect: &str) -> String {
    format!(
        "/oauth/authorize?{}",
        serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", "balance-gluco"),
            ("redirect_uri", redirect),
            ("scope", scope),
            ("state", "etat-42"),
            ("code_challenge", &mshub_catalogue::oauth::s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ])
        .unwrap()
    )
}

fn query_of(location: &str) -> HashMap<String, String> {
    let q = location.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(q).unwrap()
}

#[tokio::test]
async fn an_app_is_connected_by_consent_pushes_measurements_and_dies_when_revoked() {
    let h = hub();
    import_catalogue(&h);
    let mut b = h.browser();

    // Not signed in: the consent page comes back after login.
    let wanted = authorize_path("measurements:write", CALLBACK);
    let p = b.get(&wanted).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(p.location().starts_with("/login?next="), "{}", p.location());
    let form = b.get(p.location()).await;
    let p = b
        .post(
            "/login",
            &[
                ("_csrf", &form.csrf()),
                ("login", CAMILLE),
                ("password", PASSWORD),
                ("next", &wanted),
            ],
        )
        .await;
    assert_eq!(p.location(), wanted);

    // The catalogue and the app's page, in French.
    let apps = b.get("/apps?q=balance").await.text();
    assert!(apps.contains("/apps/balance-gluco"), "{apps}");
    assert!(!apps.contains("/apps/pharmaclair"));
    let detail = b.get("/apps/balance-gluco").await;
    assert_eq!(detail.status, StatusCode::OK);

    // A redirect URI the catalogue does not know: a page, never a redirect.
    let p = b
        .get(&authorize_path(
            "measurements:write",
            "https://evil.example/cb",
        ))
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    // A scope the app is not referenced for: back to the app with invalid_scope.
    let p = b.get(&authorize_path("documents:read:all", CALLBACK)).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(query_of(p.location())["error"], "invalid_scope");

    // The consent page: one box per scope, none ticked.
    let consent = b.get(&wanted).await;
    assert_eq!(consent.status, StatusCode::OK);
    let text = consent.text();
    assert!(text.contains("name=\"scope\" value=\"measurements:write\""));
    assert!(!text.contains("checked"));
    let csp = consent.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:5555"),
        "{csp}"
    );
    let hidden = |name: &str| {
        let at = text.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
        text[at..at + text[at..].find('"').unwrap()].replace("&amp;", "&")
    };
    let fields = [
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "response_type",
    ]
    .map(|k| (k, hidden(k)));
    let mut post: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let token = consent.csrf();
    post.push(("_csrf", &token));
    post.push(("scope", "measurements:write"));
    post.push(("decision", "allow"));
    let p = b.post("/oauth/authorize", &post).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    assert!(p.location().starts_with(CALLBACK));
    let back = query_of(p.location());
    assert_eq!(back["state"], "etat-42");
    let code = back["code"].clone();

    // The app exchanges the code (no cookies), once.
    let mut app_client = h.browser();
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", "balance-gluco"),
        ("code_verifier", VERIFIER),
    ];
    let p = app_client.post("/oauth/token", &exchange).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text());
    assert_eq!(p.headers[header::CACHE_CONTROL], "no-store");
    let json: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    let first_access = json["access_token"].as_str().unwrap().to_string();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["scope"], "measurements:write");
    // The code again: invalid_grant (and what it gave dies, RFC 6749 §4.1.2) — so the flow
    // is run a second time for the rest of the test.
    let p = app_client.post("/oauth/token", &exchange).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.text().contains("invalid_grant"));
    let p = b.post("/oauth/authorize", &post).await;
    let code = query_of(p.location())["code"].clone();
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", "balance-gluco"),
        ("code_verifier", VERIFIER),
    ];
    let p = app_client.post("/oauth/token", &exchange).await;
    let json: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    let access = json["access_token"].as_str().unwrap().to_string();

    let call = |method: &str, path: &str, body: &str, token: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let now = mshub_store::now();
    let r = h
        .router
        .clone()
        .oneshot(call(
            "POST",
            "/api/apps/v1/measurements",
            &format!(r#"{{"kind":"weight","value":70,"unit":"kg","at":{now}}}"#),
            &first_access,
        ))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a reused code's token is dead"
    );
    for (i, kg) in [71.5, 70.9].iter().enumerate() {
        let body = format!(
            r#"{{"kind":"weight","value":{kg},"unit":"kg","at":{},"device":"Balance test"}}"#,
            now - 86_400 * (2 - i as i64)
        );
        let r = h
            .router
            .clone()
            .oneshot(call("POST", "/api/apps/v1/measurements", &body, &access))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = h
        .router
        .clone()
        .oneshot(call(
            "POST",
            "/api/apps/v1/measurements",
            &format!(r#"{{"kind":"weight","value":5000,"unit":"kg","at":{now}}}"#),
            &access,
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = h
        .router
        .clone()
        .oneshot(call("GET", "/api/apps/v1/documents", "", &access))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "out of scope");
    let profile = b.get("/profile").await.text();
    assert!(
        profile.contains("70,9 kg") && profile.contains("<svg"),
        "{profile}"
    );
    let apps = b.get("/apps").await.text();
    assert!(
        apps.contains("Mes applications connectées") && apps.contains("/apps/balance-gluco/revoke")
    );

    // Revoked: the very next call is refused.
    let token = b.token().await;
    let p = b
        .post("/apps/balance-gluco/revoke", &[("_csrf", &token)])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let r = h
        .router
        .clone()
        .oneshot(call(
            "POST",
            "/api/apps/v1/measurements",
            &format!(r#"{{"kind":"weight","value":70,"unit":"kg","at":{now}}}"#),
            &access,
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

#[tokio::test]
async fn the_inbox_groups_a_conversation_and_the_message_shows_its_thread() {
    let h = hub();
    let first = h.deliver_text(MARTIN, "Bilan");
    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    // Camille answers (Sent), then the doctor answers her answer (References: the root).
    let token = b.get(&first).await.csrf();
    let p = b
        .post_multipart(
            &format!("{first}/reply"),
            &[("_csrf", None, token.as_bytes()), ("body", None, b"Merci")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let root = {
        let inbox = h
            .store
            .special_mailbox(h.camille.id, SpecialUse::Inbox)
            .unwrap();
        let m = &h.store.messages(inbox.id).unwrap()[0];
        let raw = String::from_utf8(h.store.read_message(inbox.id, m.uid).unwrap()).unwrap();
        let at = raw.find("Message-ID: <").unwrap() + 12;
        raw[at..at + raw[at..].find('>').unwrap() + 1].to_string()
    };
    let second = h.deliver(
        MARTIN,
        "Re: Bilan",
        &format!(
            "References: {root} <reponse@patient.mshub.test>\r\n\
             Content-Type: text/plain\r\n\r\nRendez-vous jeudi.\r\n"
        ),
        false,
    );
    h.deliver_text(STRANGER, "Autre sujet");
    let inbox = b.get("/").await.text();
    assert!(
        inbox.contains("3 messages, dont 2 non lus, en 2 conversations"),
        "{inbox}"
    );
    assert!(inbox.contains("2 messages"), "{inbox}");
    assert!(
        inbox.contains(&format!("href=\"{second}\"")),
        "the conversation opens on its newest"
    );
    let page = b.get(&second).await.text();
    assert!(page.contains("Dans cette conversation"), "{page}");
    assert!(page.contains(&format!("href=\"{first}\"")));
    assert!(
        page.contains("Vous"),
        "the patient's own answer, from Sent: {page}"
    );
}

#[tokio::test]
async fn the_patient_finds_names_blocks_and_unnames_a_professional_on_the_access_page() {
    let h = hub();
    let stranger = account(&h, STRANGER);
    let vault = Vault::new(h.store.clone(), h.directory.clone());
    let settings = vault.patient_settings(h.camille.id).unwrap();
    let standing = |vault: &Vault| {
        let settings = vault.patient_settings(h.camille.id).unwrap();
        vault
            .standing(h.camille.id, &stranger, &settings, mshub_store::now())
            .unwrap()
    };
    assert_eq!(standing(&vault), None);
    drop(settings);

    let mut b = h.browser();
    b.login(CAMILLE, PASSWORD).await;
    let page = b.get("/documents/acces?q=autre").await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    assert!(text.contains("1 professionnel trouvé"), "{text}");
    assert!(text.contains("Ajouter à ceux qui me suivent"));
    assert!(text.contains("Désigner comme médecin traitant"));
    // Patients are never offered.
    let page = b.get("/documents/acces?q=Hélène").await.text();
    assert!(page.contains("Aucun professionnel ne correspond"), "{page}");

    let token = b.token().await;
    let id = stranger.id.0.to_string();
    // Without the form's token nothing happens.
    let p = b
        .post("/documents/acces/follow", &[("professional", &id)])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(standing(&vault), None);
    let p = b
        .post(
            "/documents/acces/follow",
            &[("_csrf", &token), ("professional", &id)],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    assert_eq!(
        standing(&vault).map(|s| s.relationship),
        Some(mshub_vault::Relationship::Follows)
    );
    let page = b.get("/documents/acces?done=follows").await.text();
    let readers = page
        .split("Qui peut consulter vos documents")
        .nth(1)
        .unwrap();
    let readers = readers.split("Ajouter un professionnel").next().unwrap();
    assert!(
        readers.contains(STRANGER) || readers.contains("Claire Martin"),
        "{readers}"
    );
    assert!(readers.contains("professionnel qui vous suit depuis le"));

    // Blocking refuses every read at once; the page says so.
    let p = b
        .post(
            "/documents/acces/block",
            &[("_csrf", &token), ("professional", &id)],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(vault
        .patient_settings(h.camille.id)
        .unwrap()
        .blocked
        .contains(&stranger.address));
    let page = b.get("/documents/acces").await.text();
    assert!(
        page.contains("Bloqué : ne voit aucun de vos documents."),
        "{page}"
    );
    assert!(page.contains("Débloquer"));

    // Ending the relationship, forbidding emergency access.
    let p = b
        .post(
            "/documents/acces/end",
            &[
                ("_csrf", &token),
                ("professional", &id),
                ("relationship", "follows"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(standing(&vault), None);
    let p = b
        .post(
            "/documents/acces/emergency",
            &[("_csrf", &token), ("allowed", "no")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(
        vault
            .patient_settings(h.camille.id)
            .unwrap()
            .emergency_forbidden
    );
    // A médecin traitant must be a physician of the directory; a made-up id is refused.
    let p = b
        .post(
            "/documents/acces/referring",
            &[("_csrf", &token), ("professional", "999999")],
        )
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_relatives_live_stream_ends_when_the_delegation_is_revoked() {
    use http_body_util::BodyExt as _;
    let h = hub();
    let helene_account = account(&h, HELENE);
    let mut camille = h.browser();
    camille.login(CAMILLE, PASSWORD).await;
    let token = camille.token().await;
    camille
        .post(
            "/settings/delegations",
            &[("_csrf", &token), ("address", HELENE), ("level", "read")],
        )
        .await;
    let mut helene = h.browser();
    helene.login(HELENE, PASSWORD).await;
    let helene_token = helene.token().await;
    helene
        .post(
            "/space",
            &[
                ("_csrf", &helene_token),
                ("space", &h.camille.id.0.to_string()),
            ],
        )
        .await;
    // The access page is the owner's alone.
    assert_eq!(
        helene.get("/documents/acces").await.status,
        StatusCode::FORBIDDEN
    );
    let cookie = format!("__Host-mshub={}", helene.cookies["__Host-mshub"]);
    let response = h
        .router
        .clone()
        .oneshot(
            Request::get("/events")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = response.into_body();
    // Before the revocation, new mail is announced to the relative.
    h.deliver_text(MARTIN, "Avant");
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&frame.into_data().unwrap()).contains("event: message"));
    camille
        .post(
            "/settings/delegations/revoke",
            &[
                ("_csrf", &token),
                ("delegate", &helene_account.id.0.to_string()),
            ],
        )
        .await;
    h.deliver_text(MARTIN, "Après");
    // The stream ends without announcing the new message.
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
        .await
        .expect("the stream ends within 10 s");
    assert!(next.is_none(), "announced after revocation: {next:?}");
}
