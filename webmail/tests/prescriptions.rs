//! E-prescriptions on the web, in process: the patient's pages (list, QR code, PDF, what was
//! dispensed) and the pharmacist's page the QR code opens (sign-in, checks, dispensing with
//! CSRF), over a real store, directory and signing key.

mod support;

use support::browser::{Browser, Page};

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::Router;

use mshub_directory::{
    Account, AccountKind, Address, BirthDate, Directory, Domain, DomainEntry, DomainRole, Ins,
    Profession, Rpps, Sex,
};
use mshub_prescription::{Prescriptions, SigningKey};
use mshub_store::{MasterKey, Store};
use mshub_webmail::{router, Webmail};

const PASSWORD: &str = "correct-horse-battery-staple";
const CAMILLE: &str = "284057511204339@patient.mshub.test";
const MARTIN: &str = "claire.martin@chu.mshub.test";
const PHARMA: &str = "paul.pharma@officine.mshub.test";
const NURSE: &str = "ines.leroy@chu.mshub.test";
/// Camille's mother, a patient too, to whom Camille delegates.
const HELENE: &str = "255081416802538@patient.mshub.test";

struct Hub {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    rx: Arc<Prescriptions>,
    camille: Account,
    martin: Account,
    router: Router,
}

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
    for domain in ["chu.mshub.test", "officine.mshub.test"] {
        directory
            .set_domain(
                DomainEntry {
                    domain: Domain::try_from(domain).unwrap(),
                    role: DomainRole::Local,
                },
                "test",
            )
            .unwrap();
    }
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
            ins: Ins::try_from("284057511204339").unwrap(),
            given_name: "Camille".into(),
            family_name: "Durand".into(),
            birth_date: BirthDate::try_from("1984-05-12").unwrap(),
            sex: Sex::Female,
        },
    );
    add(
        HELENE,
        AccountKind::Patient {
            ins: Ins::try_from("255081416802538").unwrap(),
            given_name: "Hélène".into(),
            family_name: "Durand".into(),
            birth_date: BirthDate::try_from("1955-08-14").unwrap(),
            sex: Sex::Female,
        },
    );
    let pro = |n, given: &str, family: &str, profession| AccountKind::Professional {
        rpps: rpps(n),
        given_name: given.into(),
        family_name: family.into(),
        profession,
        specialty: String::new(),
        city: String::new(),
    };
    let martin = add(MARTIN, pro(1, "Claire", "Martin", Profession::Physician));
    add(PHARMA, pro(2, "Paul", "Officine", Profession::Pharmacist));
    add(NURSE, pro(3, "Inès", "Leroy", Profession::Nurse));
    let mta = support::mta(store.clone(), directory.clone());
    let webmail = Webmail::new(store.clone(), directory.clone(), mta);
    let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
    let rx = Arc::new(Prescriptions::with_key(
        store.clone(),
        Some(key),
        "https://hub.test",
    ));
    webmail.enable_prescriptions(rx.clone());
    Hub {
        _dir: dir,
        store,
        rx,
        camille,
        martin,
        router: router(webmail),
    }
}

impl Hub {
    /// Dr Martin's prescription to Camille, dated today: one line of two boxes; the QR's path.
    fn issue(&self) -> (String, String) {
        let today = mshub_prescription::model::day::format(
            mshub_prescription::model::day::of_unix(mshub_store::now()),
        );
        let order = format!(
            r#"{{"version":1,"prescriber":{{"rpps":"{}"}},"patient":{{"ins":"284057511204339"}},
            "date":"{today}","lines":[{{"drug":"Amoxicilline 1 g, comprimé","dose":"1 comprimé matin et soir",
            "duration":"7 jours","quantity":2}}]}}"#,
            rpps(1)
        );
        let issued = self
            .rx
            .issue(
                &self.martin,
                &self.camille,
                order.as_bytes(),
                b"raw message",
                mshub_store::now(),
            )
            .unwrap();
        let path = issued
            .url
            .strip_prefix("https://hub.test")
            .unwrap()
            .to_string();
        (issued.record.prescription.id.to_string(), path)
    }

    fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            cookies: HashMap::new(),
        }
    }
}

impl Browser {
    async fn login(&mut self, login: &str) {
        let form = self.get("/login").await;
        let p = self
            .post(
                "/login",
                &[
                    ("_csrf", &form.field("_csrf")),
                    ("login", login),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
    }

    /// Follows the QR's link signed out: the login page, then back to the link.
    async fn login_via(&mut self, link: &str, login: &str) -> Page {
        let first = self.get(link).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER);
        let login_path = first.location().to_string();
        assert!(login_path.starts_with("/login?next="), "{login_path}");
        let form = self.get(&login_path).await;
        assert_eq!(form.status, StatusCode::OK);
        let next = form.field("next");
        assert_eq!(next, link);
        let done = self
            .post(
                "/login",
                &[
                    ("_csrf", &form.field("_csrf")),
                    ("next", &next),
                    ("login", login),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
        assert_eq!(done.location(), link);
        self.get(link).await
    }
}

#[tokio::test]
async fn a_pharmacist_dispenses_partially_then_fully_and_the_patient_sees_it() {
    let h = hub();
    let (id, link) = h.issue();

    // The patient: the list, the page with its QR code (inline SVG, no style), the PDF.
    let mut patient = h.browser();
    let form = patient.get("/login").await;
    let p = patient
        .post(
            "/login",
            &[
                ("_csrf", &form.field("_csrf")),
                ("login", CAMILLE),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let list = patient.get("/ordonnances").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text().contains("Dr Claire Martin"), "{}", list.text());
    assert!(list.text().contains("à délivrer"));
    let detail = patient.get(&format!("/ordonnances/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    let text = detail.text();
    assert!(
        text.contains("<svg") && text.contains("class=\"qr\""),
        "{text}"
    );
    assert!(!text.contains("style="), "nothing a strict CSP blocks");
    assert!(text.contains("Rien n'a encore été délivré"));
    let pdf = patient.get(&format!("/ordonnances/{id}/pdf")).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.headers[header::CONTENT_TYPE], "application/pdf");
    assert!(pdf.body.starts_with(b"%PDF-"));
    // A patient who opens the pharmacist's link is refused.
    let p = patient.get(&link).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.text().contains("réservé aux pharmaciens"));

    // The pharmacist: signed out, the link leads through the login and back.
    let mut pharma = h.browser();
    let page = pharma.login_via(&link, PHARMA).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("Ordonnance authentique"));
    assert!(page.text().contains("Amoxicilline 1 g, comprimé"));
    let csrf = page.field("_csrf");
    let (hh, ss) = (page.field("h"), page.field("s"));
    assert_eq!(page.field("version"), "0");
    // The pharmacist's session opens no patient page.
    assert_eq!(pharma.get("/").await.status, StatusCode::FORBIDDEN);
    // Signed in already, the login page sends it straight on to the next prescription.
    let p = pharma
        .get(&format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", link.as_str())]).unwrap()
        ))
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), link);

    let post_path = format!("/ordonnance/{id}");
    // Without the session's CSRF token: refused.
    let p = pharma
        .post(
            &post_path,
            &[
                ("_csrf", "forged"),
                ("h", &hh),
                ("s", &ss),
                ("version", "0"),
                ("q0", "1"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // Too many boxes: refused with the reason.
    let p = pharma
        .post(
            &post_path,
            &[
                ("_csrf", &csrf),
                ("h", &hh),
                ("s", &ss),
                ("version", "0"),
                ("q0", "3"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.text().contains("il en reste 2"), "{}", p.text());
    // Partial: one box of two.
    let p = pharma
        .post(
            &post_path,
            &[
                ("_csrf", &csrf),
                ("h", &hh),
                ("s", &ss),
                ("version", "0"),
                ("q0", "1"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text());
    assert!(p.text().contains("Il reste à délivrer"));
    assert!(p.text().contains("délivrance partielle"));
    // The same form posted again (read before that dispensing): refused, nothing doubled.
    let p = pharma
        .post(
            &post_path,
            &[
                ("_csrf", &csrf),
                ("h", &hh),
                ("s", &ss),
                ("version", "0"),
                ("q0", "1"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::CONFLICT);
    assert!(p.text().contains("entre-temps"));
    // The rest.
    let page = pharma.get(&link).await;
    assert_eq!(page.field("version"), "1");
    let p = pharma
        .post(
            &post_path,
            &[
                ("_csrf", &csrf),
                ("h", &hh),
                ("s", &ss),
                ("version", "1"),
                ("c0", "1"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text());
    assert!(p.text().contains("entièrement délivrée"));
    // A further scan: refused as fully dispensed.
    let p = pharma.get(&link).await;
    assert_eq!(p.status, StatusCode::GONE);
    assert!(p.text().contains("entièrement délivrée"));

    // The patient sees what was dispensed, when and by whom.
    let detail = patient.get(&format!("/ordonnances/{id}")).await.text();
    assert!(detail.contains("Paul Officine"), "{detail}");
    assert!(detail.contains(PHARMA));
    assert!(detail.contains("délivrance partielle") && detail.contains("délivrance complète"));
    assert!(patient
        .get("/ordonnances")
        .await
        .text()
        .contains("entièrement délivrée"));

    let audit = h.store.audit_records(0, 1000).unwrap();
    let count = |action: &str| audit.iter().filter(|r| r.event.action == action).count();
    assert_eq!(count("prescription.issue"), 1);
    assert!(count("prescription.scan") >= 4, "every scan");
    assert_eq!(
        count("prescription.dispense"),
        4,
        "each attempt, refused ones too"
    );
}

#[tokio::test]
async fn tampered_links_and_other_professions_are_refused() {
    let h = hub();
    let (id, link) = h.issue();
    let mut pharma = h.browser();
    assert_eq!(pharma.login_via(&link, PHARMA).await.status, StatusCode::OK);

    // One character of the signature changed.
    let at = link.len() - 5;
    let c = &link[at..at + 1];
    let tampered = format!(
        "{}{}{}",
        &link[..at],
        if c == "A" { "B" } else { "A" },
        &link[at + 1..]
    );
    let p = pharma.get(&tampered).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.text().contains("ordonnance falsifiée"), "{}", p.text());
    // One character of the id changed.
    let other = if id.starts_with('0') { "1" } else { "0" };
    let p = pharma.get(&link.replacen(&id[..1], other, 1)).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.text().contains("falsifiée"));
    // A link without its signature.
    let p = pharma.get(&format!("/ordonnance/{id}")).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    // A nurse signs in through the link but is refused, with the reason.
    let mut nurse = h.browser();
    let p = nurse.login_via(&link, NURSE).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.text().contains("réservé aux pharmaciens"), "{}", p.text());
    // A professional without a prescription to open is still sent to its mail client.
    let mut doctor = h.browser();
    let form = doctor.get("/login").await;
    let p = doctor
        .post(
            "/login",
            &[
                ("_csrf", &form.field("_csrf")),
                ("login", MARTIN),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(!doctor.cookies.contains_key("__Host-mshub"));

    let scans: Vec<String> = h
        .store
        .audit_records(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == "prescription.scan")
        .map(|r| format!("{} {}", r.event.actor, r.event.detail))
        .collect();
    assert!(
        scans.contains(&format!("{PHARMA} outcome:forged")),
        "{scans:?}"
    );
    assert!(
        scans.contains(&format!("{NURSE} outcome:not-pharmacist")),
        "{scans:?}"
    );
}

#[tokio::test]
async fn a_relative_reads_a_prescription_by_delegation_and_the_read_is_audited() {
    let h = hub();
    let (id, _) = h.issue();
    let mut camille = h.browser();
    camille.login(CAMILLE).await;
    let token = camille.get("/settings").await.field("_csrf");
    let p = camille
        .post(
            "/settings/delegations",
            &[("_csrf", &token), ("address", HELENE), ("level", "read")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    // Camille's own reads are not in her access history.
    assert_eq!(
        camille.get(&format!("/ordonnances/{id}")).await.status,
        StatusCode::OK
    );

    let mut helene = h.browser();
    helene.login(HELENE).await;
    // In her own space, Camille's prescription is not found.
    assert_eq!(
        helene.get(&format!("/ordonnances/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let token = helene.get("/settings").await.field("_csrf");
    let p = helene
        .post(
            "/space",
            &[("_csrf", &token), ("space", &h.camille.id.0.to_string())],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let page = helene.get(&format!("/ordonnances/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("Amoxicilline"));
    assert_eq!(
        helene.get(&format!("/ordonnances/{id}/pdf")).await.status,
        StatusCode::OK
    );
    let reads: Vec<String> = h
        .store
        .audit_records(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == "prescription.read")
        .map(|r| format!("{} {}", r.event.actor, r.event.detail))
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(reads[0].starts_with(HELENE) && reads[0].ends_with("ground:delegate part:page"));
    assert!(reads[1].ends_with("part:pdf"));
}
