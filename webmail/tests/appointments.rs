//! The patient's own appointments and the apps' agenda in process: the Agenda page's forms
//! (add, change, delete, accept or refuse an app's proposal) driven like a browser, and the
//! apps' API (`/api/apps/v1/appointments`, `/api/apps/v1/measurements`,
//! `/api/apps/v1/profile`) called with bearer tokens the catalogue issued.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use chrono::{Days, NaiveDate};
use tower::ServiceExt as _;

use mshub_agenda::{Agenda, Appointment, Status};
use mshub_catalogue::{Catalogue, Scope};
use mshub_directory::{Account, AccountKind, Address, BirthDate, Directory, Domain, Ins, Sex};
use mshub_store::{MasterKey, Store};
use mshub_webmail::{router, Webmail};
use support::browser::{Browser, Page};

const PASSWORD: &str = "correct-horse-battery-staple";
const CAMILLE: &str = "284057511204339@patient.mshub.test";
const HELENE: &str = "255081416802538@patient.mshub.test";
const VERIFIER: &str = "a-long-enough-code-verifier-of-the-test-app-0123456789";

struct Hub {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    directory: Arc<Directory>,
    camille: Account,
    router: Router,
}

fn patient(ins: &str, given: &str, birth: &str) -> AccountKind {
    AccountKind::Patient {
        ins: Ins::try_from(ins).unwrap(),
        given_name: given.into(),
        family_name: "Durand".into(),
        birth_date: BirthDate::try_from(birth).unwrap(),
        sex: Sex::Female,
    }
}

fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    let directory =
        Arc::new(Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap());
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
    let camille = add(CAMILLE, patient("284057511204339", "Camille", "1984-05-12"));
    add(HELENE, patient("255081416802538", "Hélène", "1955-08-14"));
    let mta = support::mta(store.clone(), directory.clone());
    let router = router(Webmail::new(store.clone(), directory.clone(), mta));
    Hub {
        _dir: dir,
        store,
        directory,
        camille,
        router,
    }
}

impl Hub {
    async fn signed_in(&self, who: &str) -> Browser {
        let mut b = Browser::new(self.router.clone());
        let form = b.get("/login").await;
        let p = b
            .post(
                "/login",
                &[
                    ("_csrf", &form.csrf()),
                    ("login", who),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
        b
    }

    fn appointments(&self) -> Vec<Appointment> {
        Agenda::new(self.store.clone(), self.directory.clone())
            .appointments(self.camille.id)
            .unwrap()
    }

    /// Imports the demo catalogue (dated today, signed by a throwaway authority) once, then
    /// gives `app_id` the scopes Camille consents to: its access token.
    fn token(&self, app_id: &str, scopes: &[&str], redirect: &str) -> String {
        let catalogue = Catalogue::new(self.store.clone(), self.directory.clone());
        if catalogue.current().unwrap().is_none() {
            let authority = mshub_catalogue::authority::generate(
                "Autorité de test",
                std::time::SystemTime::now(),
                None,
            )
            .unwrap();
            let today = chrono::Utc::now().date_naive();
            let data = mshub_catalogue::file::with_dates(
                mshub_catalogue::file::DEMO,
                today - Days::new(1),
                today + Days::new(365),
            );
            let signature =
                mshub_catalogue::authority::sign(authority.secret.as_bytes(), data.as_bytes())
                    .unwrap();
            catalogue
                .import(
                    data.as_bytes(),
                    signature.as_bytes(),
                    authority.public.as_bytes(),
                    "test",
                )
                .unwrap();
        }
        let scopes: Vec<Scope> = scopes.iter().map(|s| s.parse().unwrap()).collect();
        let now = mshub_store::now();
        let code = catalogue
            .authorize(
                self.camille.id,
                app_id,
                &scopes,
                redirect,
                &mshub_catalogue::oauth::s256(VERIFIER),
                now,
            )
            .unwrap();
        catalogue
            .exchange(app_id, &code, VERIFIER, redirect, now)
            .unwrap()
            .access_token
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: &str,
        token: &str,
    ) -> (StatusCode, String, serde_json::Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let r = self.router.clone().oneshot(request).await.unwrap();
        let status = r.status();
        let challenge = r
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map_or("", |v| v.to_str().unwrap())
            .to_string();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, challenge, json)
    }

    fn audited(&self, action: &str) -> usize {
        self.store
            .audit_records(0, 100_000)
            .unwrap()
            .iter()
            .filter(|r| r.event.action == action)
            .count()
    }
}

/// A day `days` from today (in the coming year, so that the agenda lists it as upcoming).
fn in_days(days: u64) -> NaiveDate {
    chrono::Utc::now().date_naive() + Days::new(days)
}

fn french(day: NaiveDate) -> String {
    // Noon UTC is the same day in Paris.
    mshub_agenda::french::date(day.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp())
}

/// The `uid=…` of the page's first link to `path`.
fn uid_linked(page: &Page, path: &str) -> String {
    let text = page.text();
    let at = text
        .find(&format!("{path}?uid="))
        .unwrap_or_else(|| panic!("no link to {path} in {text}"))
        + path.len()
        + 5;
    let raw = &text[at..at + text[at..].find('"').unwrap()];
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("uid={raw}"))
        .unwrap()
        .remove(0)
        .1
}

#[tokio::test]
async fn the_patient_adds_changes_and_deletes_an_own_appointment() {
    let h = hub();
    let mut b = h.signed_in(CAMILLE).await;
    let day = in_days(30);
    let agenda = b.get("/agenda").await;
    assert!(agenda.text().contains("href=\"/agenda/ajouter\""));

    // A form the agenda refuses comes back with what was typed and the reason.
    let refused = b
        .submit(
            "/agenda/ajouter",
            &[
                ("title", "  "),
                ("date", &day.to_string()),
                ("start", "09:30"),
                ("place", "Cabinet du Dr Dupont"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = refused.text();
    assert!(text.contains("role=\"alert\""), "{text}");
    assert!(
        text.contains("Indiquez un titre pour le rendez-vous."),
        "{text}"
    );
    assert!(text.contains("value=\"Cabinet du Dr Dupont\""), "{text}");
    assert!(text.contains("value=\"09:30\""), "{text}");
    // An end before the start, likewise.
    let refused = b
        .submit(
            "/agenda/ajouter",
            &[
                ("title", "Dentiste"),
                ("date", &day.to_string()),
                ("start", "10:00"),
                ("end", "09:00"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused
        .text()
        .contains("La fin du rendez-vous doit être après son début."));

    let added = b
        .submit(
            "/agenda/ajouter",
            &[
                ("title", "Dentiste"),
                ("date", &day.to_string()),
                ("start", "09:30"),
                ("end", "10:15"),
                ("place", "Cabinet du Dr Dupont"),
                ("professional", "Dr Dupont"),
                ("notes", "Apporter la radio"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text());
    assert_eq!(added.location(), "/agenda?done=added");
    let agenda = b.get(added.location()).await;
    let text = agenda.text();
    assert!(text.contains("Le rendez-vous a été ajouté"), "{text}");
    assert!(text.contains("Dentiste"));
    assert!(
        text.contains(&format!("{} à 09:30", french(day))),
        "Paris time: {text}"
    );
    assert!(text.contains("Rendez-vous ajouté par vous"), "{text}");
    assert!(text.contains("Avec Dr Dupont"), "{text}");
    let uid = uid_linked(&agenda, "/agenda/modifier");
    let stored = h.appointments();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].uid, uid);
    assert_eq!(stored[0].end - stored[0].start, 45 * 60);

    // The edit form holds the appointment as entered, and its version.
    let edit_path = format!(
        "/agenda/modifier?{}",
        serde_urlencoded::to_string([("uid", &uid)]).unwrap()
    );
    let form = b.get(&edit_path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.field("sequence"), "0");
    assert_eq!(form.field("start"), "09:30");
    assert_eq!(form.field("end"), "10:15");
    assert_eq!(form.field("date"), day.to_string());
    let csrf = form.csrf();
    let change = |title: &'static str, sequence: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("uid", uid.clone()),
            ("sequence", sequence.to_string()),
            ("title", title.to_string()),
            ("date", day.to_string()),
            ("start", "11:00".to_string()),
            ("end", "11:30".to_string()),
            ("place", "Cabinet du Dr Dupont".to_string()),
        ]
    };
    let fields = change("Dentiste (contrôle)", "0");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/agenda/modifier", &pairs).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    let text = b.get("/agenda").await.text();
    assert!(text.contains("Dentiste (contrôle)"), "{text}");
    assert!(text.contains(&format!("{} à 11:00", french(day))), "{text}");

    // The same form again (another tab, built from version 0): refused, entries kept.
    let fields = change("Dentiste (autre onglet)", "0");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let stale = b.post("/agenda/modifier", &pairs).await;
    assert_eq!(stale.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = stale.text();
    assert!(text.contains("modifié entre-temps"), "{text}");
    assert!(text.contains("value=\"Dentiste (autre onglet)\""), "{text}");
    assert_eq!(h.appointments()[0].summary, "Dentiste (contrôle)");

    // Deleting asks first, then deletes.
    let delete_path = format!(
        "/agenda/supprimer?{}",
        serde_urlencoded::to_string([("uid", &uid)]).unwrap()
    );
    let confirm = b.get(&delete_path).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.text().contains("Dentiste (contrôle)"));
    assert!(h.appointments().len() == 1, "nothing deleted by asking");
    let p = b
        .post(
            "/agenda/supprimer",
            &[("_csrf", &confirm.csrf()), ("uid", &uid)],
        )
        .await;
    assert_eq!(p.location(), "/agenda?done=deleted");
    assert!(h.appointments().is_empty());
    assert!(!b.get("/agenda").await.text().contains("Dentiste"));

    // Changing or deleting it again (a tab left open): refused, it was deleted.
    let fields = change("Dentiste", "1");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gone = b.post("/agenda/modifier", &pairs).await;
    assert_eq!(gone.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(gone.text().contains("supprimé entre-temps"));
    let gone = b
        .post("/agenda/supprimer", &[("_csrf", &csrf), ("uid", &uid)])
        .await;
    assert_eq!(gone.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(gone.text().contains("supprimé entre-temps"));
    assert_eq!(b.get(&edit_path).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_all_day_appointment_reads_with_its_days_never_at_midnight() {
    let h = hub();
    let mut b = h.signed_in(CAMILLE).await;
    let first = in_days(40);
    let last = first + Days::new(1);
    let p = b
        .submit(
            "/agenda/ajouter",
            &[
                ("title", "Cure thermale"),
                ("date", &first.to_string()),
                ("end_date", &last.to_string()),
                ("start", "09:00"),
                ("all_day", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    let one = in_days(50);
    let p = b
        .submit(
            "/agenda/ajouter",
            &[
                ("title", "Bilan de santé"),
                ("date", &one.to_string()),
                ("all_day", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    let agenda = b.get("/agenda").await;
    let text = agenda.text();
    assert!(!text.contains("à 00:00"), "{text}");
    assert!(text.contains("(toute la journée)"), "{text}");
    let span = h.appointments()[0].all_day.unwrap();
    assert_eq!((span.first, span.last), (first, last));
    assert!(text.contains(&format!("datetime=\"{first}\"")), "{text}");
    assert!(text.contains(" au "), "du … au …: {text}");

    // Its edit form says all day, with its last day.
    let uid = uid_linked(&agenda, "/agenda/modifier");
    let form = b
        .get(&format!(
            "/agenda/modifier?{}",
            serde_urlencoded::to_string([("uid", &uid)]).unwrap()
        ))
        .await;
    let form_text = form.text();
    assert!(
        form_text.contains("name=\"all_day\" value=\"on\" checked"),
        "{form_text}"
    );
    assert_eq!(form.field("end_date"), last.to_string());
}

#[tokio::test]
async fn a_relative_reads_the_agenda_but_adds_changes_and_deletes_nothing() {
    let h = hub();
    let mut camille = h.signed_in(CAMILLE).await;
    let p = camille
        .submit(
            "/agenda/ajouter",
            &[
                ("title", "Kiné"),
                ("date", &in_days(10).to_string()),
                ("start", "18:00"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    // Even a relative who may answer professionals on Camille's behalf.
    let token = camille.get("/settings").await.csrf();
    let p = camille
        .post(
            "/settings/delegations",
            &[
                ("_csrf", &token),
                ("address", HELENE),
                ("level", "read-reply"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    let uid = h.appointments()[0].uid.clone();

    let mut helene = h.signed_in(HELENE).await;
    let token = helene.get("/settings").await.csrf();
    let p = helene
        .post(
            "/space",
            &[("_csrf", &token), ("space", &h.camille.id.0.to_string())],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let agenda = helene.get("/agenda").await.text();
    assert!(agenda.contains("Kiné"), "{agenda}");
    assert!(!agenda.contains("/agenda/ajouter"));
    assert!(!agenda.contains("/agenda/modifier"));
    assert_eq!(
        helene.get("/agenda/ajouter").await.status,
        StatusCode::FORBIDDEN
    );
    let token = helene.get("/agenda").await.csrf();
    let p = helene
        .post("/agenda/supprimer", &[("_csrf", &token), ("uid", &uid)])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = helene
        .post(
            "/agenda/ajouter",
            &[
                ("_csrf", &token),
                ("title", "Intrus"),
                ("date", &in_days(11).to_string()),
                ("start", "10:00"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(h.appointments().len(), 1);
}

#[tokio::test]
async fn an_app_proposes_appointments_that_the_patient_accepts_or_refuses() {
    let h = hub();
    let token = h.token(
        "rdv-sante",
        &["agenda:read", "agenda:write"],
        "https://rdv-sante-facile.example/connexion/retour",
    );
    let day = in_days(20);
    let proposal = |title: &str| {
        serde_json::json!({
            "title": title,
            "start": format!("{day}T14:00:00+01:00"),
            "end": format!("{day}T14:30:00+01:00"),
            "place": "Centre de santé",
            "professional": "Dr Leroy",
            "notes": "Réservé en ligne",
        })
        .to_string()
    };
    let (status, _, created) = h
        .call(
            "POST",
            "/api/apps/v1/appointments",
            &proposal("Ophtalmologie"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "proposed");
    assert_eq!(created["origin"], "this-app");
    assert_eq!(created["start"], format!("{day}T13:00:00Z"));
    assert_eq!(created["notes"], "Réservé en ligne");
    let accepted_uid = created["uid"].as_str().unwrap().to_string();
    let (status, _, second) = h
        .call(
            "POST",
            "/api/apps/v1/appointments",
            &proposal("Audiogramme"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");

    // Refusals say why in French, as the agenda does.
    for (body, why) in [
        (
            serde_json::json!({"title": "", "all_day": {"first": day.to_string()}}),
            "Indiquez un titre",
        ),
        (
            serde_json::json!({"title": "X", "start": format!("{day}T15:00:00Z"), "end": format!("{day}T14:00:00Z")}),
            "après son début",
        ),
        (serde_json::json!({"title": "X"}), "Indiquez quand"),
        (
            serde_json::json!({"title": "X", "start": "demain", "end": "après-demain"}),
            "RFC 3339",
        ),
    ] {
        let (status, _, e) = h
            .call(
                "POST",
                "/api/apps/v1/appointments",
                &body.to_string(),
                &token,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(e["error"], "invalid_appointment");
        assert!(
            e["error_description"].as_str().unwrap().contains(why),
            "{body}: {e}"
        );
    }
    assert!(h.audited("app.appointment.invalid") >= 4);
    assert_eq!(h.audited("app.appointment.propose"), 2);

    // The patient sees them "à confirmer", from the app named as the catalogue names it.
    let mut b = h.signed_in(CAMILLE).await;
    let agenda = b.get("/agenda").await.text();
    assert!(agenda.contains("à confirmer"), "{agenda}");
    assert!(
        agenda.contains("Rendez-vous proposé par l'application RDV Santé Facile"),
        "{agenda}"
    );
    let token_csrf = b.get("/agenda").await.csrf();
    let p = b
        .post(
            "/agenda/proposition",
            &[
                ("_csrf", &token_csrf),
                ("uid", &accepted_uid),
                ("decision", "accept"),
            ],
        )
        .await;
    assert_eq!(p.location(), "/agenda?done=proposal-accepted");
    let p = b
        .post(
            "/agenda/proposition",
            &[
                ("_csrf", &token_csrf),
                ("uid", second["uid"].as_str().unwrap()),
                ("decision", "decline"),
            ],
        )
        .await;
    assert_eq!(p.location(), "/agenda?done=proposal-declined");
    let stored = h.appointments();
    assert_eq!(stored.len(), 1, "the refused one is gone");
    assert_eq!(stored[0].status, Status::Confirmed);
    // Accepting again: it is no longer a proposal.
    let p = b
        .post(
            "/agenda/proposition",
            &[
                ("_csrf", &token_csrf),
                ("uid", &accepted_uid),
                ("decision", "accept"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The app reads the agenda back: its own appointment with its notes, the patient's
    // without theirs.
    let p = b
        .submit(
            "/agenda/ajouter",
            &[
                ("title", "Pédicure"),
                ("date", &in_days(21).to_string()),
                ("start", "08:00"),
                ("notes", "Note privée"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let (status, _, list) = h.call("GET", "/api/apps/v1/appointments", "", &token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["title"], "Ophtalmologie");
    assert_eq!(list[0]["status"], "confirmed");
    assert_eq!(list[0]["notes"], "Réservé en ligne");
    assert_eq!(list[1]["origin"], "patient");
    assert!(list[1].get("notes").is_none(), "{list:?}");
    assert!(list[1]["all_day"].is_null());
    let (status, _, list) = h
        .call(
            "GET",
            &format!("/api/apps/v1/appointments?from={day}T00:00:00Z&to={day}T23:59:59Z"),
            "",
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "the window: {list}");
    let (status, _, _) = h
        .call("GET", "/api/apps/v1/appointments?from=hier", "", &token)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(h.audited("app.appointment.list") >= 2);
}

#[tokio::test]
async fn each_scope_opens_its_endpoint_only_and_measurements_read_back() {
    let h = hub();
    let token = h.token(
        "souffle-libre",
        &["measurements:write", "measurements:read"],
        "http://127.0.0.1/callback",
    );
    let now = mshub_store::now();
    let (status, _, m) = h
        .call(
            "POST",
            "/api/apps/v1/measurements",
            &format!(r#"{{"kind":"heart-rate","value":72,"unit":"bpm","at":{now}}}"#),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    let (status, _, read) = h.call("GET", "/api/apps/v1/measurements", "", &token).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read[0]["kind"], "heart-rate");
    assert_eq!(read[0]["value"], 72.0);
    assert_eq!(read[0]["by_this_app"], true);
    assert!(read[0].get("app_id").is_none());
    assert_eq!(h.audited("app.measurement.list"), 1);

    for (method, path) in [
        ("GET", "/api/apps/v1/appointments"),
        ("POST", "/api/apps/v1/appointments"),
    ] {
        let (status, challenge, e) = h.call(method, path, "{}", &token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {e}");
        assert_eq!(e["error"], "insufficient_scope");
        assert!(challenge.contains("insufficient_scope"), "{challenge}");
    }
    assert!(h.appointments().is_empty());

    // rdv-sante reads and proposes appointments, but measurements are not its to read.
    let agenda_only = h.token(
        "rdv-sante",
        &["agenda:read"],
        "https://rdv-sante-facile.example/connexion/retour",
    );
    let (status, _, _) = h
        .call("GET", "/api/apps/v1/measurements", "", &agenda_only)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, e) = h
        .call(
            "POST",
            "/api/apps/v1/appointments",
            r#"{"title":"X","all_day":{"first":"2030-01-01"}}"#,
            &agenda_only,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "agenda:read is not agenda:write: {e}"
    );
    assert!(h.audited("app.refused") >= 4);
    let (status, _, _) = h
        .call("GET", "/api/apps/v1/appointments", "", "not-a-token")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn profile_read_gives_the_identity_and_the_medical_profile_and_nothing_without_the_scope() {
    use mshub_vault::profile::{Allergy, Severity};
    let h = hub();
    let vault = mshub_vault::Vault::new(h.store.clone(), h.directory.clone());
    vault
        .change_profile(
            &h.camille,
            &h.camille,
            0,
            mshub_vault::ProfileChange::AddAllergy(Allergy {
                substance: "Pénicilline".into(),
                reaction: "urticaire".into(),
                severity: Severity::Severe,
            }),
        )
        .unwrap();
    let redirect = "https://app.consultadom.example/oauth/callback";
    let token = h.token("consultadom", &["profile:read"], redirect);
    let (status, _, json) = h.call("GET", "/api/apps/v1/profile", "", &token).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["given_name"], "Camille");
    assert_eq!(json["birth_date"], "1984-05-12");
    assert_eq!(json["medical"]["version"], 1);
    assert_eq!(json["medical"]["allergies"][0]["substance"], "Pénicilline");
    assert_eq!(json["medical"]["allergies"][0]["severity"], "severe");
    assert_eq!(h.audited("app.profile.read"), 1);

    // The same app, granted only its documents: no profile.
    let documents_only = h.token("consultadom", &["documents:read:comptes-rendus"], redirect);
    let (status, challenge, e) = h
        .call("GET", "/api/apps/v1/profile", "", &documents_only)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"], "insufficient_scope");
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert_eq!(h.audited("app.profile.read"), 1);
}
