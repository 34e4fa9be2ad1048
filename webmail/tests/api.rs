//! The professionals' API in process: the router driven with `tower::ServiceExt::oneshot`
//! over a real store, directory and vault in a temporary directory.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use tower::ServiceExt as _;

use mshub_directory::{
    Account, AccountKind, Address, BirthDate, Directory, Domain, DomainEntry, DomainRole, Ins,
    Profession, Rpps, Sex,
};
use mshub_store::{MasterKey, Store};
use mshub_vault::{FilingOutcome, Relationship, Vault};
use mshub_webmail::{router, Webmail};

const CAMILLE_INS: &str = "284057511204339";
const PASSWORD: &str = "correct-horse-battery-staple";
const MARTIN: &str = "claire.martin@chu.mshub.test";
const PHARMACIST: &str = "pharma@chu.mshub.test";
const LABO: &str = "labo@chu.mshub.test";
const CAMILLE: &str = "284057511204339@patient.mshub.test";
/// A physician with no care relationship with Camille.
const STRANGER: &str = "paul.stranger@chu.mshub.test";

struct Hub {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    directory: Arc<Directory>,
    camille: Account,
    router: Router,
}

/// An 11-digit RPPS with its Luhn check digit.
fn rpps(body: u64) -> Rpps {
    let body = format!("{body:010}");
    (0..10)
        .find_map(|check| Rpps::try_from(format!("{body}{check}").as_str()).ok())
        .expect("one check digit fits")
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
        AccountKind::Patient {
            ins: Ins::try_from(CAMILLE_INS).unwrap(),
            given_name: "Camille".into(),
            family_name: "Durand".into(),
            birth_date: BirthDate::try_from("1984-05-12").unwrap(),
            sex: Sex::Female,
        },
    );
    let mut pros = Vec::new();
    for (addr, n, profession) in [
        (MARTIN, 1, Profession::Physician),
        (PHARMACIST, 2, Profession::Pharmacist),
        (STRANGER, 3, Profession::Physician),
    ] {
        pros.push(add(
            addr,
            AccountKind::Professional {
                rpps: rpps(n),
                given_name: "Test".into(),
                family_name: "Pro".into(),
                profession,
                specialty: String::new(),
                city: String::new(),
            },
        ));
    }
    // Camille names Dr Martin and the pharmacist among those who follow her.
    let vault = Vault::new(store.clone(), directory.clone());
    for pro in &pros[..2] {
        vault
            .add_relationship(&camille, pro, Relationship::Follows, None)
            .unwrap();
    }
    add(
        LABO,
        AccountKind::Organisation {
            name: "Laboratoire".into(),
            members: vec![],
        },
    );
    let router = router(Webmail::new(
        store.clone(),
        directory.clone(),
        support::mta(store.clone(), directory.clone()),
    ));
    Hub {
        _dir: dir,
        store,
        directory,
        camille,
        router,
    }
}

impl Hub {
    /// Files a PDF sent by the lab to Camille (no type hint: category "à classer", which a
    /// physician sees and a pharmacist does not). Returns its id.
    fn file_pdf(&self, marker: &str) -> String {
        let pdf = format!("%PDF-1.4\n% {marker}\n%%EOF\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(pdf);
        let message = format!(
            "From: <{LABO}>\r\nTo: <{CAMILLE}>\r\nSubject: Document\r\n\
             Message-ID: <{marker}@chu.mshub.test>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nVoici.\r\n\
             --b\r\nContent-Type: application/pdf; name=\"compte rendu.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"compte rendu.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
        );
        let vault = Vault::new(self.store.clone(), self.directory.clone());
        let filing = vault.file_message(
            &self.camille,
            Some(&Address::try_from(LABO).unwrap()),
            message.as_bytes(),
        );
        assert!(
            matches!(filing.outcome(), FilingOutcome::Filed { .. }),
            "{:?}",
            filing.outcome()
        );
        let martin = self
            .directory
            .account_by_address(&Address::try_from(MARTIN).unwrap())
            .unwrap()
            .unwrap();
        let docs = vault
            .documents_for_professional(&self.camille, &martin)
            .unwrap();
        docs.last().unwrap().reference.to_string()
    }

    async fn post_json(&self, path: &str, login: (&str, &str), json: &str) -> Response {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", login.0, login.1));
        let req = Request::post(path)
            .header(header::AUTHORIZATION, format!("Basic {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json.to_string()))
            .unwrap();
        self.router.clone().oneshot(req).await.unwrap()
    }

    async fn get(&self, path: &str, login: Option<(&str, &str)>) -> Response {
        let mut req = Request::get(path);
        if let Some((user, password)) = login {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            req = req.header(header::AUTHORIZATION, format!("Basic {token}"));
        }
        self.router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }
}

async fn body(response: Response) -> Vec<u8> {
    axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap()
        .to_vec()
}

async fn json(response: Response) -> serde_json::Value {
    serde_json::from_slice(&body(response).await).unwrap()
}

fn list_path() -> String {
    format!("/api/v1/patients/{CAMILLE_INS}/documents")
}

#[tokio::test]
async fn healthz_answers_without_credentials_with_strict_headers() {
    let hub = hub();
    let r = hub.get("/healthz", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    assert!(h["strict-transport-security"]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    assert_eq!(body(r).await, b"ok");
}

#[tokio::test]
async fn unknown_routes_are_404_json_under_the_api_and_a_page_elsewhere() {
    let hub = hub();
    let r = hub.get("/api/v1/nothing/here", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(json(r).await["error"], "not-found");
    let r = hub.get("/nothing/here", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(String::from_utf8(body(r).await)
        .unwrap()
        .contains("Page introuvable"));
}

#[tokio::test]
async fn no_or_wrong_credentials_get_401_with_a_basic_challenge() {
    let hub = hub();
    for login in [
        None,
        Some((PHARMACIST, "wrong password!")),
        Some(("nobody@chu.mshub.test", PASSWORD)),
    ] {
        let r = hub.get(&list_path(), login).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{login:?}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"mshub\", charset=\"UTF-8\""
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(json(r).await["error"], "unauthorized");
    }
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after() {
    let hub = hub();
    let mut last = StatusCode::OK;
    let mut retry_after = None;
    for _ in 0..8 {
        let r = hub
            .get(&list_path(), Some((PHARMACIST, "wrong password!")))
            .await;
        last = r.status();
        retry_after = r.headers().get("retry-after").cloned();
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!(secs >= 1);
}

#[tokio::test]
async fn patients_organisations_and_disabled_accounts_get_403() {
    let hub = hub();
    for who in [CAMILLE, LABO] {
        let r = hub.get(&list_path(), Some((who, PASSWORD))).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{who}");
        assert_eq!(json(r).await["error"], "not-a-professional");
    }
    hub.directory
        .set_disabled(&Address::try_from(PHARMACIST).unwrap(), true, "test")
        .unwrap();
    let r = hub.get(&list_path(), Some((PHARMACIST, PASSWORD))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(r).await["error"], "account-disabled");
}

#[tokio::test]
async fn an_invalid_ins_is_400_with_its_reason_and_an_unknown_patient_404() {
    let hub = hub();
    let r = hub
        .get(
            "/api/v1/patients/284057511204338/documents",
            Some((MARTIN, PASSWORD)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let j = json(r).await;
    assert_eq!(j["error"], "invalid-ins");
    assert!(j["reason"].as_str().unwrap().contains("INS"), "{j}");
    // A valid INS, but no account here.
    let r = hub
        .get(
            "/api/v1/patients/190017511200164/documents",
            Some((MARTIN, PASSWORD)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Not a reference, a number, a well-formed reference never issued: all simply not found.
    let made_up = "a".repeat(32);
    for id in ["abc", "999", "1", made_up.as_str()] {
        let r = hub
            .get(&format!("/api/v1/documents/{id}"), Some((MARTIN, PASSWORD)))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{id}");
        assert_eq!(json(r).await["error"], "not-found");
    }
}

#[tokio::test]
async fn a_physician_lists_and_fetches_what_a_pharmacist_may_not() {
    let hub = hub();
    let id = hub.file_pdf("PDF-MARKER-31");

    let r = hub.get(&list_path(), Some((MARTIN, PASSWORD))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let list = json(r).await;
    let docs = list.as_array().unwrap();
    assert_eq!(docs.len(), 1, "{list}");
    assert_eq!(docs[0]["id"], id);
    assert_eq!(docs[0]["mime"], "application/pdf");
    assert_eq!(docs[0]["category"], "a-classer");

    let r = hub
        .get(&format!("/api/v1/documents/{id}"), Some((MARTIN, PASSWORD)))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"compte_rendu.pdf\""
    );
    assert!(String::from_utf8_lossy(&body(r).await).contains("PDF-MARKER-31"));

    // The pharmacist sees nothing "à classer", and a fetch is refused with the reason.
    let r = hub.get(&list_path(), Some((PHARMACIST, PASSWORD))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await, serde_json::json!([]));
    let r = hub
        .get(
            &format!("/api/v1/documents/{id}"),
            Some((PHARMACIST, PASSWORD)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let j = json(r).await;
    assert_eq!(j["error"], "access-denied");
    assert!(!j["reason"].as_str().unwrap().is_empty());

    // Both the read and the refusal are in the audit chain.
    let audit = hub.store.audit_records(0, 10_000).unwrap();
    // The chain names documents by their number, which the reference hides.
    let vault = Vault::new(hub.store.clone(), hub.directory.clone());
    let number = vault
        .resolve(&mshub_vault::DocumentRef::try_from(id.as_str()).unwrap())
        .unwrap()
        .unwrap();
    let subject = format!("document:{number}");
    assert!(audit.iter().any(|r| r.event.action == "document.read"
        && r.event.actor == MARTIN
        && r.event.subject == subject));
    assert!(audit
        .iter()
        .any(|r| r.event.action == "document.read.denied" && r.event.actor == PHARMACIST));
}

#[tokio::test]
async fn a_professional_without_a_care_relationship_is_refused_in_both_languages() {
    let hub = hub();
    let id = hub.file_pdf("stranger-1");
    let r = hub.get(&list_path(), Some((STRANGER, PASSWORD))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let j = json(r).await;
    assert_eq!(j["error"], "no-care-relationship");
    let reason = j["reason"].as_str().unwrap();
    assert!(reason.contains("aucune relation de soin"), "{reason}");
    assert!(reason.contains("no care relationship"), "{reason}");
    let r = hub
        .get(
            &format!("/api/v1/documents/{id}"),
            Some((STRANGER, PASSWORD)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(r).await["error"], "no-care-relationship");
    let refusals: Vec<_> = hub
        .store
        .audit_records(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.actor == STRANGER)
        .map(|r| (r.event.action, r.event.detail))
        .collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert_eq!(refusals[0].0, "document.list.denied");
    assert_eq!(refusals[1].0, "document.read.denied");
    assert!(refusals
        .iter()
        .all(|(_, d)| d.ends_with("ground:no-relationship")));
}

#[tokio::test]
async fn emergency_access_needs_a_reason_and_opens_the_space() {
    let hub = hub();
    let id = hub.file_pdf("emergency-1");
    let path = format!("/api/v1/patients/{CAMILLE_INS}/emergency-access");
    let login = (STRANGER, PASSWORD);
    for bad in [
        r#"{"reason":"urgent"}"#,
        r#"{"reason":"   "}"#,
        r#"{}"#,
        "not json",
    ] {
        let r = hub.post_json(&path, login, bad).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = hub
        .post_json(
            &path,
            login,
            r#"{"reason":"Patiente inconsciente aux urgences"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let granted = json(r).await;
    let (since, until) = (
        granted["since"].as_i64().unwrap(),
        granted["until"].as_i64().unwrap(),
    );
    assert_eq!(until - since, 24 * 3600);
    assert_eq!(granted["reason"], "Patiente inconsciente aux urgences");
    let r = hub
        .get(&format!("/api/v1/documents/{id}"), Some(login))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let read = hub
        .store
        .audit_records(0, 10_000)
        .unwrap()
        .into_iter()
        .find(|r| r.event.actor == STRANGER && r.event.action == "document.read")
        .expect("the read is audited");
    assert!(
        read.event.detail.contains("ground:care:emergency")
            && read
                .event
                .detail
                .ends_with("reason:Patiente inconsciente aux urgences"),
        "{}",
        read.event.detail
    );
    // Forbidden by the patient: refused, with its own code.
    Vault::new(hub.store.clone(), hub.directory.clone())
        .set_emergency_allowed(&hub.camille, false)
        .unwrap();
    let r = hub
        .post_json(
            &path,
            (MARTIN, PASSWORD),
            r#"{"reason":"Avis urgent demandé"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(r).await["error"], "emergency-access-forbidden");
}
