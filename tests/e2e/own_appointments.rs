//! The patient's own appointments and the apps' agenda end to end, over HTTPS against the real
//! `mshub` binary: the patient is curl on the web inbox (add, change — a stale form refused —
//! and delete an appointment); the apps are curl with bearer tokens obtained through the OAuth
//! flow (consent posted by the patient's session, code exchanged at `/oauth/token`): an app
//! with `agenda:write` proposes an appointment that the patient accepts, `agenda:read` lists
//! it, an app without the scope is refused 403, and `measurements:read` reads back what
//! `measurements:write` added.

use std::time::{SystemTime, UNIX_EPOCH};

use mshub_agenda::NaiveDate;

use crate::support::*;

const VERIFIER: &str = "an-end-to-end-code-verifier-long-enough-for-rfc-7636-0123456789";

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The UTC day `days` from now (in the coming year: the agenda lists it as upcoming).
fn in_days(days: i64) -> NaiveDate {
    mshub_agenda::day_of(now_unix() + days * 86_400).unwrap()
}

/// "10 mars 2027", as the pages write `day`.
fn french(day: NaiveDate) -> String {
    // Noon UTC is the same day in Paris.
    mshub_agenda::french::date(day.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp())
}

/// The query (`uid=…`, as the page encoded it) of the first link to `path` in `html`.
fn link_query(html: &str, path: &str) -> String {
    let at = html
        .find(&format!("{path}?"))
        .unwrap_or_else(|| panic!("no link to {path} in:\n{html}"))
        + path.len()
        + 1;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

/// Posts a page's form: its CSRF token, then `fields`.
fn post_form(web: &CurlSession, page: &str, action: &str, fields: &[(&str, &str)]) -> HttpReply {
    let form = web.request(page, None);
    assert_eq!(form.status, 200, "{page}: {}", text(&form.body));
    let csrf = csrf_field(&form);
    let mut all = vec![("_csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    web.request(action, Some(&all))
}

#[test]
fn the_patient_adds_changes_and_deletes_an_appointment_and_a_stale_edit_is_refused() {
    let mut hub = Instance::demo();
    let port = hub.https_port();
    let web = signed_in(&hub, port, CAMILLE);
    let day = in_days(30);
    let date = day.to_string();

    // A refusal: the form again, entries kept, the reason in French.
    let refused = post_form(
        &web,
        "/agenda/ajouter",
        "/agenda/ajouter",
        &[
            ("title", ""),
            ("date", &date),
            ("start", "09:30"),
            ("place", "Cabinet dentaire"),
        ],
    );
    assert_eq!(refused.status, 422, "{}", text(&refused.body));
    let html = text(&refused.body);
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(html.contains("Indiquez un titre"), "{html}");
    assert!(html.contains("value=\"Cabinet dentaire\""), "{html}");

    let added = post_form(
        &web,
        "/agenda/ajouter",
        "/agenda/ajouter",
        &[
            ("title", "Dentiste"),
            ("date", &date),
            ("start", "09:30"),
            ("end", "10:00"),
            ("place", "Cabinet dentaire"),
            ("professional", "Dr Dupont"),
        ],
    );
    assert_eq!(added.status, 303, "{}", text(&added.body));
    assert_eq!(added.header("location"), Some("/agenda?done=added"));
    let agenda = text(&web.request("/agenda", None).body);
    assert!(agenda.contains("Dentiste"), "{agenda}");
    assert!(
        agenda.contains(&format!("{} à 09:30", french(day))),
        "in Paris time: {agenda}"
    );
    assert!(agenda.contains("Rendez-vous ajouté par vous"), "{agenda}");

    // Changed from its form, which carries its version.
    let query = link_query(&agenda, "/agenda/modifier");
    let edit_page = format!("/agenda/modifier?{query}");
    let form = web.request(&edit_page, None);
    assert_eq!(form.status, 200);
    let form_html = text(&form.body);
    let uid = form_field(&form_html, "/agenda/modifier", "uid").expect("the uid field");
    assert_eq!(
        form_field(&form_html, "/agenda/modifier", "sequence").as_deref(),
        Some("0")
    );
    let edit = |title: &str| {
        post_form(
            &web,
            &edit_page,
            "/agenda/modifier",
            &[
                ("uid", &uid),
                ("sequence", "0"),
                ("title", title),
                ("date", &date),
                ("start", "11:00"),
                ("end", "11:45"),
                ("place", "Cabinet dentaire"),
            ],
        )
    };
    let changed = edit("Dentiste, contrôle");
    assert_eq!(changed.status, 303, "{}", text(&changed.body));
    let agenda = text(&web.request("/agenda", None).body);
    assert!(agenda.contains("Dentiste, contrôle"), "{agenda}");
    assert!(
        agenda.contains(&format!("{} à 11:00", french(day))),
        "{agenda}"
    );

    // The same version-0 form again, as from a second tab: refused, nothing undone.
    let stale = edit("Dentiste, autre onglet");
    assert_eq!(stale.status, 422, "{}", text(&stale.body));
    let html = text(&stale.body);
    assert!(html.contains("modifié entre-temps"), "{html}");
    assert!(html.contains("value=\"Dentiste, autre onglet\""), "{html}");
    assert!(text(&web.request("/agenda", None).body).contains("Dentiste, contrôle"));

    // Deleted after a confirmation page; a second deletion says it is gone.
    let confirm_page = format!("/agenda/supprimer?{query}");
    let deleted = post_form(&web, &confirm_page, "/agenda/supprimer", &[("uid", &uid)]);
    assert_eq!(deleted.status, 303, "{}", text(&deleted.body));
    assert_eq!(deleted.header("location"), Some("/agenda?done=deleted"));
    assert!(!text(&web.request("/agenda", None).body).contains("Dentiste"));
    let again = post_form(
        &web,
        "/agenda/ajouter",
        "/agenda/supprimer",
        &[("uid", &uid)],
    );
    assert_eq!(again.status, 422);
    assert!(text(&again.body).contains("supprimé entre-temps"));
    assert_eq!(
        web.request(&edit_page, None).status,
        404,
        "its edit form is gone too"
    );

    // An all-day appointment reads with its day, not "à 00:00".
    let p = post_form(
        &web,
        "/agenda/ajouter",
        "/agenda/ajouter",
        &[
            ("title", "Bilan de santé"),
            ("date", &date),
            ("all_day", "on"),
        ],
    );
    assert_eq!(p.status, 303, "{}", text(&p.body));
    let agenda = text(&web.request("/agenda", None).body);
    assert!(agenda.contains("(toute la journée)"), "{agenda}");
    assert!(!agenda.contains("à 00:00"), "{agenda}");
    hub.stop();
}

/// The OAuth flow of `client_id` for `scope`, Camille consenting from her web session: the
/// access token.
fn token(
    hub: &Instance,
    port: u16,
    web: &CurlSession,
    client_id: &str,
    redirect: &str,
    scope: &str,
) -> String {
    let challenge = mshub_catalogue::oauth::s256(VERIFIER);
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("scope", scope),
        ("state", "etat-e2e"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent(v)))
        .collect();
    let page = web.request(&format!("/oauth/authorize?{}", query.join("&")), None);
    assert_eq!(page.status, 200, "{}", text(&page.body));
    let csrf = csrf_field(&page);
    let mut consent: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| *k != "scope")
        .copied()
        .collect();
    consent.push(("_csrf", &csrf));
    for s in scope.split(' ') {
        consent.push(("scope", s));
    }
    consent.push(("decision", "allow"));
    let answer = web.request("/oauth/authorize", Some(&consent));
    assert_eq!(answer.status, 303, "{}", text(&answer.body));
    let location = answer.header("location").unwrap().to_string();
    assert!(location.starts_with(redirect), "{location}");
    let code = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap_or_else(|| panic!("no code in {location}"))
        .to_string();
    let app = CurlSession::new(hub, port);
    let issued = app.request(
        "/oauth/token",
        Some(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", client_id),
            ("code_verifier", VERIFIER),
        ]),
    );
    assert_eq!(issued.status, 200, "{}", text(&issued.body));
    issued.json()["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

/// RFC 3986 percent-encoding of a query value.
fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A call of the apps' API with `token`: a GET, or a POST of the JSON `body`.
fn api(hub: &Instance, port: u16, token: &str, path: &str, body: Option<&str>) -> HttpReply {
    let auth = format!("Authorization: Bearer {token}");
    let client = CurlSession::new(hub, port);
    match body {
        Some(json) => client.request_with(
            path,
            Post::Raw(json),
            &["-H", &auth, "-H", "Content-Type: application/json"],
        ),
        None => client.request_with(path, Post::Nothing, &["-H", &auth]),
    }
}

#[test]
fn an_app_proposes_an_appointment_the_patient_accepts_and_scopes_are_enforced() {
    let mut hub = Instance::demo();
    let port = hub.https_port();
    let web = signed_in(&hub, port, CAMILLE);

    let rdv = token(
        &hub,
        port,
        &web,
        "rdv-sante",
        "https://rdv-sante-facile.example/connexion/retour",
        "agenda:read agenda:write",
    );
    let day = in_days(25);
    let proposal = serde_json::json!({
        "title": "Ophtalmologie",
        "start": format!("{day}T13:00:00Z"),
        "end": format!("{day}T13:30:00Z"),
        "place": "Centre de santé",
        "professional": "Dr Leroy",
        "notes": "Réservé en ligne",
    })
    .to_string();
    let created = api(
        &hub,
        port,
        &rdv,
        "/api/apps/v1/appointments",
        Some(&proposal),
    );
    assert_eq!(created.status, 201, "{}", text(&created.body));
    let created = created.json();
    assert_eq!(created["status"], "proposed", "{created}");
    assert_eq!(created["origin"], "this-app", "{created}");
    let uid = created["uid"].as_str().unwrap().to_string();

    // Refused with the agenda's reason, in French.
    let invalid = api(
        &hub,
        port,
        &rdv,
        "/api/apps/v1/appointments",
        Some(&format!(
            r#"{{"title":"X","start":"{day}T15:00:00Z","end":"{day}T14:00:00Z"}}"#
        )),
    );
    assert_eq!(invalid.status, 422, "{}", text(&invalid.body));
    assert_eq!(invalid.json()["error"], "invalid_appointment");
    assert!(invalid.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("après son début"));

    // The patient sees it "à confirmer", from the app by its name, and accepts it.
    let agenda = web.request("/agenda", None);
    let html = text(&agenda.body);
    assert!(html.contains("à confirmer"), "{html}");
    assert!(
        html.contains("proposé par l'application RDV Santé Facile"),
        "{html}"
    );
    let accepted = web.request(
        "/agenda/proposition",
        Some(&[
            ("_csrf", &csrf_field(&agenda)),
            ("uid", &uid),
            ("decision", "accept"),
        ]),
    );
    assert_eq!(accepted.status, 303, "{}", text(&accepted.body));
    let html = text(&web.request("/agenda", None).body);
    assert!(html.contains("confirmé par vous"), "{html}");

    // agenda:read lists it, confirmed, with the app's own notes.
    let listed = api(&hub, port, &rdv, "/api/apps/v1/appointments", None);
    assert_eq!(listed.status, 200, "{}", text(&listed.body));
    let listed = listed.json();
    let item = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["uid"] == uid.as_str())
        .unwrap_or_else(|| panic!("not listed: {listed}"));
    assert_eq!(item["status"], "confirmed", "{item}");
    assert_eq!(item["start"], format!("{day}T13:00:00Z"), "{item}");
    assert_eq!(item["notes"], "Réservé en ligne", "{item}");
    assert!(item["all_day"].is_null(), "{item}");

    // Souffle Libre writes and reads measurements, and has no agenda scope.
    let souffle = token(
        &hub,
        port,
        &web,
        "souffle-libre",
        &format!("http://127.0.0.1:{}/callback", free_port()),
        "measurements:write measurements:read",
    );
    let at = now_unix() - 60;
    let pushed = api(
        &hub,
        port,
        &souffle,
        "/api/apps/v1/measurements",
        Some(&format!(
            r#"{{"kind":"heart-rate","value":64,"unit":"bpm","at":{at}}}"#
        )),
    );
    assert_eq!(pushed.status, 201, "{}", text(&pushed.body));
    let read = api(&hub, port, &souffle, "/api/apps/v1/measurements", None);
    assert_eq!(read.status, 200, "{}", text(&read.body));
    let read = read.json();
    let m = read
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "heart-rate" && m["at"] == at)
        .unwrap_or_else(|| panic!("not read back: {read}"));
    assert_eq!(m["value"], 64.0, "{m}");
    assert_eq!(m["by_this_app"], true, "{m}");
    for body in [None, Some(proposal.as_str())] {
        let refused = api(&hub, port, &souffle, "/api/apps/v1/appointments", body);
        assert_eq!(refused.status, 403, "{}", text(&refused.body));
        assert_eq!(refused.json()["error"], "insufficient_scope");
        assert!(refused
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("insufficient_scope"));
    }
    // And rdv-sante reads no measurements.
    let refused = api(&hub, port, &rdv, "/api/apps/v1/measurements", None);
    assert_eq!(refused.status, 403, "{}", text(&refused.body));
    hub.stop();

    // Every call is in the audit chain under the app, refusals included.
    let (store, _) = hub.open_store();
    let actions: Vec<(String, String)> = store
        .audit_records(0, 100_000)
        .unwrap()
        .into_iter()
        .map(|r| (r.event.actor, r.event.action))
        .collect();
    for (actor, action) in [
        ("app:rdv-sante", "app.appointment.propose"),
        ("app:rdv-sante", "app.appointment.invalid"),
        ("app:rdv-sante", "app.appointment.list"),
        ("app:rdv-sante", "app.refused"),
        ("app:souffle-libre", "app.measurement.list"),
        ("app:souffle-libre", "app.refused"),
    ] {
        assert!(
            actions.iter().any(|(a, b)| a == actor && b == action),
            "{actor} {action} not audited"
        );
    }
}
