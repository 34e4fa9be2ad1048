//! The public pages of a space created from the roster, in process: activation (then signed
//! in, with what was filed while pending), opposition (then never opened), the refusals (bad
//! code, bad INS, short password, missing CSRF, throttling), and reopening a closed space from
//! the login page.

mod support;

use support::browser::{Browser, Page};

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::Router;

use mshub_directory::{
    Address, BirthDate, Directory, Domain, Ins, Lifecycle, RosterOutcome, RosterPatient, Sex,
};
use mshub_store::{MasterKey, SpecialUse, Store};
use mshub_webmail::{router, Webmail};

const BIRTH: &str = "1984-05-12";

struct Hub {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    directory: Arc<Directory>,
    router: Router,
}

fn ins(n: u32) -> Ins {
    let body = format!("28405751{:05}", n);
    let key = 97 - body.parse::<u64>().unwrap() % 97;
    Ins::try_from(format!("{body}{key:02}").as_str()).unwrap()
}

fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    let directory =
        Arc::new(Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap());
    let mta = support::mta(store.clone(), directory.clone());
    let router = router(Webmail::new(store.clone(), directory.clone(), mta));
    Hub {
        _dir: dir,
        store,
        directory,
        router,
    }
}

impl Hub {
    /// Imports patient `n` from a roster; its address and activation code.
    fn import(&self, n: u32) -> (Address, String) {
        let p = RosterPatient {
            ins: ins(n),
            given_name: "Camille".into(),
            family_name: "Durand".into(),
            birth_date: BirthDate::try_from(BIRTH).unwrap(),
            sex: Sex::Female,
        };
        match self
            .directory
            .import_patients(&[p], mshub_store::now(), "test")
            .unwrap()
            .remove(0)
        {
            RosterOutcome::Created { account, code, .. } => (account.address, code),
            other => panic!("{other:?}"),
        }
    }

    fn state(&self, a: &Address) -> Lifecycle {
        self.directory
            .account_by_address(a)
            .unwrap()
            .unwrap()
            .lifecycle
    }

    fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            cookies: HashMap::new(),
        }
    }
}

#[tokio::test]
async fn activation_signs_in_and_shows_what_was_filed_while_pending() {
    let h = hub();
    let (address, code) = h.import(1);
    // A message filed while pending (mailboxes are made on first need).
    let account = h.directory.account_by_address(&address).unwrap().unwrap();
    let inbox = h
        .store
        .special_mailbox(account.id, SpecialUse::Inbox)
        .unwrap();
    h.store
        .append(
            inbox.id,
            b"From: <labo@mshub.test>\r\nSubject: Resultats en attente\r\n\r\nBonjour\r\n",
            Default::default(),
            mshub_store::now(),
        )
        .unwrap();
    let ins = ins(1).to_string();
    let mut b = h.browser();
    let form = b.get("/activation").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.text().contains("Activer mon espace"),
        "{}",
        form.text()
    );
    // Refusals, each with a precise reason and nothing changed.
    let wrong = b
        .submit(
            "/activation",
            &[
                ("ins", &ins),
                ("birth_date", BIRTH),
                ("code", "AAAA-BBBB-CCCC"),
                ("password", "a good long password"),
                ("password_again", "a good long password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.text().contains("ne correspondent à aucun espace"),
        "{}",
        wrong.text()
    );
    let bad_ins = b
        .submit(
            "/activation",
            &[
                ("ins", "284057511204300"),
                ("birth_date", BIRTH),
                ("code", &code),
                ("password", "a good long password"),
                ("password_again", "a good long password"),
            ],
        )
        .await;
    assert_eq!(bad_ins.status, StatusCode::BAD_REQUEST);
    assert!(bad_ins.text().contains("INS n'est pas valide"));
    let short = b
        .submit(
            "/activation",
            &[
                ("ins", &ins),
                ("birth_date", BIRTH),
                ("code", &code),
                ("password", "too short"),
                ("password_again", "too short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.text().contains("12 caractères"));
    let differ = b
        .submit(
            "/activation",
            &[
                ("ins", &ins),
                ("birth_date", BIRTH),
                ("code", &code),
                ("password", "a good long password"),
                ("password_again", "another long password"),
            ],
        )
        .await;
    assert!(differ.text().contains("différents"));
    // No CSRF cookie: refused.
    let mut stranger = h.browser();
    let forged = stranger
        .post(
            "/activation",
            &[
                ("_csrf", "forged"),
                ("ins", &ins),
                ("birth_date", BIRTH),
                ("code", &code),
                ("password", "a good long password"),
                ("password_again", "a good long password"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(matches!(h.state(&address), Lifecycle::Pending { .. }));

    let done = b
        .submit(
            "/activation",
            &[
                ("ins", &ins),
                ("birth_date", BIRTH),
                ("code", &code.to_lowercase()),
                ("password", "a good long password"),
                ("password_again", "a good long password"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert_eq!(done.headers[header::LOCATION], "/");
    assert_eq!(h.state(&address), Lifecycle::Active);
    let inbox_page = b.get("/").await;
    assert_eq!(inbox_page.status, StatusCode::OK);
    assert!(
        inbox_page.text().contains("Resultats en attente"),
        "{}",
        inbox_page.text()
    );
    // The code was single use.
    let again = h
        .browser()
        .submit(
            "/activation",
            &[
                ("ins", &ins),
                ("birth_date", BIRTH),
                ("code", &code),
                ("password", "a good long password"),
                ("password_again", "a good long password"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn opposition_closes_the_door_for_good_and_answers_the_same_for_unknown_ins() {
    let h = hub();
    let (address, code) = h.import(2);
    let ins2 = ins(2).to_string();
    let mut b = h.browser();
    // An INS without a space and a wrong code get the very same answer.
    let unknown = b
        .submit(
            "/opposition",
            &[
                ("ins", &ins(3).to_string()),
                ("birth_date", BIRTH),
                ("code", &code),
                ("confirm", "yes"),
            ],
        )
        .await;
    let wrong_code = b
        .submit(
            "/opposition",
            &[
                ("ins", &ins2),
                ("birth_date", BIRTH),
                ("code", "ZZZZ-ZZZZ-ZZZZ"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_code.status, StatusCode::UNAUTHORIZED);
    let msg = |p: &Page| {
        let at = p.text().find("role=\"alert\"").unwrap();
        p.text()[at..at + 120].to_string()
    };
    assert_eq!(msg(&unknown), msg(&wrong_code));
    let unconfirmed = b
        .submit(
            "/opposition",
            &[("ins", &ins2), ("birth_date", BIRTH), ("code", &code)],
        )
        .await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    let done = b
        .submit(
            "/opposition",
            &[
                ("ins", &ins2),
                ("birth_date", BIRTH),
                ("code", &code),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(done.text().contains("opposition est enregistrée"));
    assert!(matches!(h.state(&address), Lifecycle::Opposed { .. }));
    // It cannot be activated afterwards.
    let late = b
        .submit(
            "/activation",
            &[
                ("ins", &ins2),
                ("birth_date", BIRTH),
                ("code", &code),
                ("password", "a good long password"),
                ("password_again", "a good long password"),
            ],
        )
        .await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn guessing_codes_is_throttled() {
    let h = hub();
    let (_, _) = h.import(4);
    let ins4 = ins(4).to_string();
    let mut b = h.browser();
    let mut throttled = false;
    for _ in 0..30 {
        let p = b
            .submit(
                "/opposition",
                &[
                    ("ins", &ins4),
                    ("birth_date", BIRTH),
                    ("code", "AAAA-AAAA-AAAA"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        if p.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(p.text().contains("Trop de tentatives"));
            assert!(p.headers.contains_key(header::RETRY_AFTER));
            throttled = true;
            break;
        }
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    }
    assert!(throttled, "30 wrong codes in a row were never throttled");
}

#[tokio::test]
async fn a_closed_space_is_reopened_from_the_login_page() {
    let h = hub();
    let (address, code) = h.import(5);
    let birth = BirthDate::try_from(BIRTH).unwrap();
    let local = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    h.directory
        .activate(&ins(5), &birth, &code, "a good long password", 0, local)
        .unwrap();
    h.directory
        .close(&address, mshub_store::now(), "test")
        .unwrap();
    let mut b = h.browser();
    let login = b
        .submit(
            "/login",
            &[
                ("login", &ins(5).to_string()),
                ("password", "a good long password"),
            ],
        )
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    assert!(
        login.text().contains("Votre espace santé est fermé"),
        "{}",
        login.text()
    );
    assert!(login.text().contains("Rouvrir mon espace"));
    assert!(matches!(h.state(&address), Lifecycle::Closed { .. }));
    // The page's own form reopens it.
    let token = login.csrf();
    let reopened = b
        .post(
            "/login",
            &[
                ("_csrf", &token),
                ("reopen", "yes"),
                ("login", &ins(5).to_string()),
                ("password", "a good long password"),
            ],
        )
        .await;
    assert_eq!(
        reopened.status,
        StatusCode::SEE_OTHER,
        "{}",
        reopened.text()
    );
    assert_eq!(h.state(&address), Lifecycle::Active);
    assert_eq!(b.get("/").await.status, StatusCode::OK);
}
