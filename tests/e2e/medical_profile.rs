//! The medical profile end to end over HTTPS with curl: the patient fills it in with the
//! page's forms (a stale form and an absurd entry refused in French, nothing half-saved), a
//! recorded dTcaP moves the agenda's prevention reminder, a change is undone from the history,
//! and a physician reads it through the API only once in a care relationship.

use crate::support::*;

const CAMILLE_INS: &str = "284057511204339";

/// The profile page's current version (every form carries it).
fn version(page: &HttpReply) -> String {
    let html = text(&page.body);
    form_field(&html, "/profile/medical/allergies/add", "version")
        .unwrap_or_else(|| panic!("no version field in:\n{html}"))
}

fn post(web: &CurlSession, action: &str, fields: &[(&str, &str)]) -> HttpReply {
    let page = web.request("/profile/medical", None);
    assert_eq!(page.status, 200, "{page:?}");
    let csrf = csrf_field(&page);
    let v = version(&page);
    let mut form: Vec<(&str, &str)> = vec![("_csrf", &csrf), ("version", &v)];
    form.extend_from_slice(fields);
    web.request(action, Some(&form))
}

#[test]
fn a_patient_fills_her_medical_profile_and_a_physician_reads_it_within_a_relationship() {
    let mut hub = Instance::demo();
    let port = hub.https_port();
    let camille = signed_in(&hub, port, CAMILLE);

    let profile = text(&camille.request("/profile", None).body);
    assert!(
        profile.contains("12 mai 1984"),
        "birth date in French: {profile}"
    );
    assert!(profile.contains(r#"href="/profile/medical""#));

    // Before any vaccination is recorded, the dTcaP booster due at 25 is overdue.
    let agenda = || text(&camille.request("/agenda", None).body);
    assert!(agenda().contains("(dTcaP)"), "{}", agenda());

    let added = post(
        &camille,
        "/profile/medical/allergies/add",
        &[
            ("substance", "Pénicilline"),
            ("reaction", "urticaire géante"),
            ("severity", "severe"),
        ],
    );
    assert_eq!(added.status, 303, "{}", text(&added.body));
    let added = post(
        &camille,
        "/profile/medical/vaccinations/add",
        &[("vaccine", "dTcaP"), ("date", "2020-05-04")],
    );
    assert_eq!(added.status, 303, "{}", text(&added.body));
    let page = text(&camille.request("/profile/medical", None).body);
    assert!(
        page.contains("Pénicilline") && page.contains("4 mai 2020"),
        "{page}"
    );
    // Recorded in 2020 (at 36), the next dTcaP is at 45: no reminder now.
    assert!(!agenda().contains("(dTcaP)"), "{}", agenda());

    // A future date: refused in French, what was typed is kept, nothing saved.
    let refused = post(
        &camille,
        "/profile/medical/vaccinations/add",
        &[("vaccine", "grippe"), ("date", "2999-01-01")],
    );
    assert_eq!(refused.status, 422);
    let html = text(&refused.body);
    assert!(html.contains("dans le futur"), "{html}");
    assert!(html.contains(r#"value="grippe""#), "{html}");

    // A form shown before the last change: refused rather than merged.
    let stale_page = camille.request("/profile/medical", None);
    let stale_version = version(&stale_page);
    let csrf = csrf_field(&stale_page);
    assert_eq!(
        post(
            &camille,
            "/profile/medical/treatments/add",
            &[("name", "Levothyrox"), ("dosage", "75 µg le matin")],
        )
        .status,
        303
    );
    let stale = camille.request(
        "/profile/medical/allergies/add",
        Some(&[
            ("_csrf", &csrf),
            ("version", &stale_version),
            ("substance", "Arachide"),
            ("severity", "mild"),
        ]),
    );
    assert_eq!(stale.status, 422);
    assert!(text(&stale.body).contains("modifié entre-temps"));
    assert!(!text(&camille.request("/profile/medical", None).body).contains("Arachide"));

    // The physician, a stranger for now, is refused; once he writes to her, he reads it.
    let api = format!("/api/v1/patients/{CAMILLE_INS}/profile");
    let denied = curl(&hub.ca, port, &api, Some(MARTIN));
    assert_eq!(denied.status, 403, "{denied:?}");
    assert_eq!(denied.json()["error"], "no-care-relationship");
    writes_to_camille(&hub, port, MARTIN);
    let read = curl(&hub.ca, port, &api, Some(MARTIN));
    assert_eq!(read.status, 200, "{read:?}");
    let json = read.json();
    assert_eq!(json["allergies"][0]["substance"], "Pénicilline", "{json}");
    assert_eq!(json["allergies"][0]["severity"], "severe");
    assert_eq!(json["vaccinations"][0]["date"], "2020-05-04");
    assert_eq!(json["treatments"][0]["name"], "Levothyrox");
    assert!(json["sections"].as_array().unwrap().len() >= 5);

    // Undo the treatment from the history: the version before it comes back.
    let page = camille.request("/profile/medical", None);
    let html = text(&page.body);
    let current = version(&page);
    let previous = (current.parse::<u64>().unwrap() - 1).to_string();
    assert!(html.contains("Traitement ajouté : Levothyrox"), "{html}");
    let csrf = csrf_field(&page);
    let undone = camille.request(
        "/profile/medical/restore",
        Some(&[
            ("_csrf", &csrf),
            ("version", &current),
            ("target", &previous),
        ]),
    );
    assert_eq!(undone.status, 303, "{}", text(&undone.body));
    let json = curl(&hub.ca, port, &api, Some(MARTIN)).json();
    assert_eq!(json["treatments"].as_array().unwrap().len(), 0, "{json}");
    assert_eq!(json["allergies"].as_array().unwrap().len(), 1, "{json}");

    // Every read is in the audit chain.
    hub.stop();
    let (store, _) = hub.open_store();
    store.verify_audit().unwrap();
    let reads = store
        .audit_records(0, 100_000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == "profile.read" && r.event.actor == MARTIN.0)
        .count();
    assert_eq!(reads, 2);
}
