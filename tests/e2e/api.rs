//! The professionals' HTTPS API onto the vault (issue 6): a lab relays a prescription and an
//! imaging report to the demo patient as IHE XDM archives; a pharmacist and a physician query
//! the patient's documents with curl over TLS.

use std::path::Path;
use std::time::Duration;

use crate::support::*;

const CAMILLE_INS: &str = "284057511204339";
const PHARMACIST: (&str, &str) = ("pharma@hopital.mshub.test", "demo-pharma-42");

fn list(ca: &Path, port: u16, login: (&str, &str)) -> serde_json::Value {
    let reply = curl(
        ca,
        port,
        &format!("/api/v1/patients/{CAMILLE_INS}/documents"),
        Some(login),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()
}

fn titles(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap().to_string())
        .collect()
}

fn id_of(list: &serde_json::Value, type_code: &str) -> String {
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["type_code"] == type_code)
        .and_then(|d| d["id"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no {type_code} in {list}"))
}

#[test]
fn a_pharmacist_sees_the_prescription_but_not_the_imaging_report() {
    let mut hub = Instance::demo();
    hub.stop();
    hub.cli(
        &[
            "account",
            "add",
            PHARMACIST.0,
            "professional",
            "--rpps",
            "10000000009",
            "--given-name",
            "Paul",
            "--family-name",
            "Officine",
            "--profession",
            "pharmacist",
            "--password-stdin",
        ],
        &format!("{}\n", PHARMACIST.1),
    );
    hub.start();
    let port = hub.https_port();
    let ca = hub.ca.clone();
    // Professionals read a patient's documents within a care relationship: dr.martin writes
    // to Camille, and Camille names her pharmacist on her page "Accès des professionnels".
    writes_to_camille(&hub, port, MARTIN);
    let camille = signed_in(&hub, port, CAMILLE);
    name_professional(&camille, PHARMACIST.0, "follow", &[]);

    relay_xdm(
        &hub,
        "prescription.zip",
        "57833-6",
        "Ordonnance du 20 novembre",
        "RX-MARKER-5a1",
    );
    relay_xdm(
        &hub,
        "imaging.zip",
        "18748-4",
        "Radiographie thoracique",
        "IMG-MARKER-9c3",
    );
    // Filing runs after the 250: wait (bounded) until the physician sees both.
    let filed = poll(Duration::from_secs(30), Duration::from_millis(500), || {
        list(&ca, port, MARTIN).as_array().unwrap().len() == 2
    });
    assert!(filed, "not filed: {}", list(&ca, port, MARTIN));

    let physician = list(&ca, port, MARTIN);
    let mut seen = titles(&physician);
    seen.sort();
    assert_eq!(
        seen,
        ["Ordonnance du 20 novembre", "Radiographie thoracique"]
    );
    let pharmacist = list(&ca, port, PHARMACIST);
    assert_eq!(titles(&pharmacist), ["Ordonnance du 20 novembre"]);
    assert_eq!(pharmacist[0]["category"], "prescriptions");
    let prescription = id_of(&pharmacist, "57833-6");
    let imaging = id_of(&physician, "18748-4");

    // The pharmacist fetches the prescription's bytes…
    let fetched = curl(
        &ca,
        port,
        &format!("/api/v1/documents/{prescription}"),
        Some(PHARMACIST),
    );
    assert_eq!(fetched.status, 200, "{fetched:?}");
    assert_eq!(fetched.header("content-type"), Some("application/pdf"));
    assert!(fetched
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment; filename=")));
    assert_eq!(fetched.header("x-content-type-options"), Some("nosniff"));
    assert!(fetched.header("strict-transport-security").is_some());
    assert!(contains(&fetched.body, "RX-MARKER-5a1"));

    // …but not the imaging report.
    let refused = curl(
        &ca,
        port,
        &format!("/api/v1/documents/{imaging}"),
        Some(PHARMACIST),
    );
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.json()["error"], "access-denied");

    // No credentials, a wrong password: 401 with the Basic challenge.
    let path = format!("/api/v1/documents/{prescription}");
    for login in [None, Some((PHARMACIST.0, "not-the-password"))] {
        let reply = curl(&ca, port, &path, login);
        assert_eq!(reply.status, 401, "{login:?}: {reply:?}");
        assert!(reply
            .header("www-authenticate")
            .is_some_and(|c| c.starts_with("Basic realm=\"mshub\"")));
    }
    let health = curl(&ca, port, "/healthz", None);
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok"[..]));

    hub.stop();
    let (store, directory) = hub.open_store();
    let audit = store.audit_records(0, 10_000).unwrap();
    // The audit chain names a document by its number, which the API's id does not show.
    let vault = mshub_vault::Vault::new(store.clone(), std::sync::Arc::new(directory));
    let number = vault
        .resolve(&mshub_vault::DocumentRef::try_from(prescription.as_str()).unwrap())
        .unwrap()
        .expect("the API's id names a document");
    let subject = format!("document:{number}");
    let imaging = vault
        .resolve(&mshub_vault::DocumentRef::try_from(imaging.as_str()).unwrap())
        .unwrap()
        .expect("the API's id names a document");
    assert!(
        audit.iter().any(|r| r.event.action == "document.read"
            && r.event.actor == PHARMACIST.0
            && r.event.subject == subject),
        "no document.read record for the pharmacist's fetch"
    );
    assert!(
        audit
            .iter()
            .any(|r| r.event.action == "document.read.denied"
                && r.event.actor == PHARMACIST.0
                && r.event.subject == format!("document:{imaging}")),
        "no document.read.denied record for the refused fetch"
    );
    store.verify_audit().unwrap();
}
