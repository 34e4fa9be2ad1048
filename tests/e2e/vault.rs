//! The document vault behind the MTA: a lab system relays an IHE XDM result to a patient with
//! swaks; the hub files it into the patient's vault.

use std::sync::Arc;

use mshub_directory::Address;
use mshub_vault::Vault;

use crate::support::*;

#[test]
fn a_lab_result_relayed_as_xdm_is_filed_in_the_patients_vault() {
    let mut hub = Instance::demo();
    relay_xdm(
        &hub,
        "IHE_XDM.ZIP",
        "11502-2",
        "Bilan sanguin du 20 novembre",
        "XDM-MARKER-77aa",
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
