//! The document vault behind the MTA: a lab system relays an IHE XDM result to a patient with
//! swaks; the hub files it into the patient's vault.

use std::process::{Command, Stdio};
use std::sync::Arc;

use mshub_directory::Address;
use mshub_vault::Vault;

use crate::support::*;

#[test]
fn a_lab_result_relayed_as_xdm_is_filed_in_the_patients_vault() {
    let mut hub = Instance::demo();
    let zip = hub.dir.join("IHE_XDM.ZIP");
    let made = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/py/make_xdm.py"
        ))
        .arg(&zip)
        .args([
            "284057511204339",
            "11502-2",
            "Bilan sanguin du 20 novembre",
            LABO.0,
            "XDM-MARKER-77aa",
        ])
        .status()
        .unwrap();
    assert!(made.success());
    // The lab system: relay port, STARTTLS, then AUTH (it sends as a local address).
    let relay = hub.ports.relay.to_string();
    let attach = format!("@{}", zip.display());
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &relay,
            "--tls",
            "--ehlo",
            "sil.hopital.test",
            "--auth",
            "PLAIN",
            "--auth-user",
            LABO.0,
            "--auth-password",
            LABO.1,
            "--from",
            LABO.0,
            "--to",
            CAMILLE.0,
            "--header",
            "Subject: Résultats de laboratoire",
            "--attach-type",
            "application/zip",
            "--attach-name",
            "IHE_XDM.ZIP",
            "--attach",
            &attach,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let transcript = text(&out.stdout);
    assert!(
        transcript.contains("250 2.0.0 OK: queued as"),
        "{transcript}"
    );
    // Filing runs after the 250: give it a moment (bounded) before stopping the hub.
    std::thread::sleep(std::time::Duration::from_secs(2));
    hub.stop();
    let inbox = hub.inbox(CAMILLE.0);
    assert_eq!(inbox.len(), 2, "the lab's message and the vault's notice");
    assert!(
        inbox
            .iter()
            .any(|m| contains(m, "Bilan sanguin du 20 novembre") && !contains(m, "IHE_XDM.ZIP")),
        "no notice naming the new document"
    );

    let (store, directory) = hub.open_store();
    let directory = Arc::new(directory);
    let camille = directory
        .account_by_address(&Address::try_from(CAMILLE.0).unwrap())
        .unwrap()
        .unwrap();
    let vault = Vault::new(store.clone(), directory.clone());
    let docs = vault.documents_for_patient(&camille).unwrap();
    assert_eq!(docs.len(), 1, "{docs:?}");
    let doc = &docs[0];
    assert_eq!(doc.type_code, "11502-2");
    assert_eq!(doc.title, "Bilan sanguin du 20 novembre");
    assert_eq!(
        doc.author.address.as_ref().map(|a| a.as_str()),
        Some(LABO.0)
    );
    let bytes = vault.read_document(&camille, doc.id).unwrap();
    assert!(contains(&bytes, "XDM-MARKER-77aa"));
    // The filing is in the audit chain.
    let audit = store.audit_records(0, 10_000).unwrap();
    assert!(
        audit.iter().any(|r| r.event.action == "document.file"),
        "no document.file record"
    );
    store.verify_audit().unwrap();
}
