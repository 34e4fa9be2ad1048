//! Visibility and access rules (DESIGN §4 "Vault visibility"), audit of reads, and the
//! patient's notifications. Real store and directory in a temporary directory.

mod common;

use common::*;
use mshub_directory::Account;
use mshub_vault::*;

/// Files for Camille a lab result, an imaging report and a prescription, all authored by
/// Dr Martin; returns their ids in that order.
fn three_documents(hub: &Hub) -> [DocumentId; 3] {
    let docs = vec![
        XdmDoc::new("DOC0001.PDF", "11502-2", "Bilan sanguin", &pdf("bilan")),
        XdmDoc::new("DOC0002.PDF", "18748-4", "Radio du thorax", &pdf("radio")),
        XdmDoc::new("DOC0003.PDF", "57833-6", "Ordonnance", &pdf("ordo")),
    ];
    let raw = message(
        &format!("{CAMILLE_INS}@patient.mshub.test"),
        &[(
            "IHE_XDM.ZIP",
            "application/zip",
            &xdm_zip(&[("SUBSET01", docs)]),
        )],
        "",
    );
    let filed = hub.file_for_camille(&raw).documents();
    [filed[0], filed[1], filed[2]]
}

/// Camille names these professionals among those who follow her (a care relationship: without
/// one a professional reads only what it authored).
fn followed_by(hub: &Hub, professionals: &[&Account]) {
    for professional in professionals {
        hub.vault
            .add_relationship(&hub.camille, professional, Relationship::Follows, None)
            .unwrap();
    }
}

fn ids(docs: &[Document]) -> Vec<DocumentId> {
    docs.iter().map(|d| d.id).collect()
}

fn denial(result: Result<Vec<u8>>) -> Denial {
    match result {
        Err(VaultError::Denied { denial, .. }) => denial,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn a_pharmacist_sees_the_prescription_and_lab_result_but_not_the_imaging_report() {
    let hub = hub();
    let [bio, imaging, prescription] = three_documents(&hub);
    followed_by(&hub, &[&hub.pharmacist, &hub.radiology, &hub.dubois]);
    let seen = hub
        .vault
        .documents_for_professional(&hub.camille, &hub.pharmacist)
        .unwrap();
    assert_eq!(ids(&seen), [bio, prescription]);
    assert_eq!(
        hub.vault
            .read_document(&hub.pharmacist, prescription)
            .unwrap(),
        pdf("ordo")
    );
    assert_eq!(
        denial(hub.vault.read_document(&hub.pharmacist, imaging)),
        Denial::Matrix
    );
    let radio = hub
        .vault
        .documents_for_professional(&hub.camille, &hub.radiology)
        .unwrap();
    assert_eq!(ids(&radio), [imaging]);
    let physician = hub
        .vault
        .documents_for_professional(&hub.camille, &hub.dubois)
        .unwrap();
    assert_eq!(ids(&physician), [bio, imaging, prescription]);
}

#[test]
fn a_masked_document_is_hidden_from_other_professionals_but_not_its_author_or_the_referring_doctor()
{
    let hub = hub();
    let [bio, _, _] = three_documents(&hub);
    hub.vault
        .set_referring_doctor(&hub.camille, Some(&hub.bernard.address))
        .unwrap();
    // Professionals who follow Camille, but are neither the author nor her referring doctor.
    followed_by(&hub, &[&hub.dubois, &hub.nurse, &hub.pharmacist]);
    hub.vault.mask(&hub.camille, bio).unwrap();
    assert!(hub.vault.document(bio).unwrap().masked);

    for stranger in [&hub.dubois, &hub.nurse, &hub.pharmacist] {
        let seen = hub
            .vault
            .documents_for_professional(&hub.camille, stranger)
            .unwrap();
        assert!(!ids(&seen).contains(&bio), "{}", stranger.address);
        assert_eq!(
            denial(hub.vault.read_document(stranger, bio)),
            Denial::Masked
        );
    }
    assert!(hub.vault.read_document(&hub.martin, bio).is_ok(), "author");
    assert!(
        hub.vault.read_document(&hub.bernard, bio).is_ok(),
        "referring doctor"
    );
    assert!(
        hub.vault.read_document(&hub.camille, bio).is_ok(),
        "patient"
    );

    let grounds: Vec<String> = hub
        .audits("document.read")
        .into_iter()
        .map(|r| r.event.detail)
        .collect();
    assert!(
        grounds.iter().any(|d| d.contains("ground:author")),
        "{grounds:?}"
    );
    assert!(
        grounds
            .iter()
            .any(|d| d.contains("ground:referring-doctor")),
        "{grounds:?}"
    );

    hub.vault.unmask(&hub.camille, bio).unwrap();
    assert!(hub.vault.read_document(&hub.dubois, bio).is_ok());
    assert_eq!(hub.audits("document.mask").len(), 1);
    assert_eq!(hub.audits("document.unmask").len(), 1);
}

#[test]
fn only_the_patient_masks_and_deletes() {
    let hub = hub();
    let [bio, _, _] = three_documents(&hub);
    assert!(matches!(
        hub.vault.mask(&hub.martin, bio),
        Err(VaultError::Denied {
            denial: Denial::NotThePatient,
            ..
        })
    ));
    assert!(matches!(
        hub.vault.delete(&hub.paul, bio),
        Err(VaultError::Denied {
            denial: Denial::NotThePatient,
            ..
        })
    ));
    assert!(!hub.vault.document(bio).unwrap().masked);
}

#[test]
fn every_read_by_a_professional_is_audited_and_the_patients_own_reads_are_not() {
    let hub = hub();
    let [bio, imaging, _] = three_documents(&hub);
    followed_by(&hub, &[&hub.nurse]);
    hub.vault.read_document(&hub.camille, bio).unwrap();
    assert!(hub.audits("document.read").is_empty());

    hub.vault.read_document(&hub.nurse, bio).unwrap();
    hub.vault.read_document(&hub.nurse, bio).unwrap();
    let reads = hub.audits("document.read");
    assert_eq!(reads.len(), 2);
    assert_eq!(reads[0].event.actor, hub.nurse.address.as_str());
    assert_eq!(reads[0].event.subject, format!("document:{bio}"));
    assert!(
        reads[0]
            .event
            .detail
            .contains("ground:care:follows matrix:nurse×biologie"),
        "{}",
        reads[0].event.detail
    );

    // A refused read is audited too, with its ground.
    assert_eq!(
        denial(hub.vault.read_document(&hub.nurse, imaging)),
        Denial::Matrix
    );
    let denied = hub.audits("document.read.denied");
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].event.actor, hub.nurse.address.as_str());
    assert!(
        denied[0].event.detail.ends_with("ground:matrix"),
        "{}",
        denied[0].event.detail
    );

    // A lab's organisation mailbox is no professional.
    assert_eq!(
        denial(hub.vault.read_document(&hub.labo, bio)),
        Denial::NotAProfessional
    );
    // Another patient neither.
    assert_eq!(
        denial(hub.vault.read_document(&hub.paul, bio)),
        Denial::NotAProfessional
    );

    let history = hub.vault.access_history(hub.camille.id).unwrap();
    let actions: Vec<&str> = history.iter().map(|r| r.event.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "document.file",
            "document.file",
            "document.file",
            "vault.care.follows",
            "document.read",
            "document.read",
            "document.read.denied",
            "document.read.denied",
            "document.read.denied",
        ]
    );
    hub.store.verify_audit().unwrap();
}

#[test]
fn the_patient_is_notified_of_the_first_read_by_each_professional_only() {
    let hub = hub();
    let [bio, _, prescription] = three_documents(&hub);
    followed_by(&hub, &[&hub.pharmacist, &hub.nurse]);
    assert_eq!(hub.inbox(&hub.camille).len(), 1, "the filing notice");
    hub.vault.read_document(&hub.pharmacist, bio).unwrap();
    hub.vault
        .read_document(&hub.pharmacist, prescription)
        .unwrap();
    hub.vault.read_document(&hub.pharmacist, bio).unwrap();
    let inbox = hub.inbox(&hub.camille);
    assert_eq!(inbox.len(), 2);
    assert!(
        inbox[1].contains("Test Pharma (Pharmacien, anne.pharma@chu.mshub.test)"),
        "{}",
        inbox[1]
    );
    assert!(
        inbox[1].contains("a consulté pour la première fois"),
        "{}",
        inbox[1]
    );
    hub.vault.read_document(&hub.nurse, bio).unwrap();
    assert_eq!(hub.inbox(&hub.camille).len(), 3);
    // The patient's own reads notify nobody.
    hub.vault.read_document(&hub.camille, bio).unwrap();
    assert_eq!(hub.inbox(&hub.camille).len(), 3);
}

#[test]
fn a_document_not_yet_visible_to_the_patient_appears_when_its_author_releases_it() {
    let hub = hub();
    let mut doc = XdmDoc::new("DOC0001.PDF", "18748-4", "IRM cérébrale", &pdf("irm"));
    doc.confidentiality = "INVISIBLE_PATIENT".into();
    let raw = message(
        &format!("{CAMILLE_INS}@patient.mshub.test"),
        &[(
            "IHE_XDM.ZIP",
            "application/zip",
            &xdm_zip(&[("SUBSET01", vec![doc])]),
        )],
        "",
    );
    // Sent by a physician: the access table lets its profession keep a document from the
    // patient until it is announced (from the lab's mailbox it would be visible at once).
    let id = hub
        .vault
        .file_message(&hub.camille, Some(&hub.martin.address), &raw)
        .documents()[0];
    assert!(hub
        .vault
        .documents_for_patient(&hub.camille)
        .unwrap()
        .is_empty());
    assert_eq!(
        denial(hub.vault.read_document(&hub.camille, id)),
        Denial::NotYetVisible
    );
    assert!(
        hub.inbox(&hub.camille).is_empty(),
        "no notice of a hidden document"
    );
    // Professionals (with a care relationship) still see it.
    followed_by(&hub, &[&hub.dubois]);
    assert!(hub.vault.read_document(&hub.dubois, id).is_ok());

    assert!(matches!(
        hub.vault.release(&hub.dubois, id),
        Err(VaultError::Denied {
            denial: Denial::NotTheAuthor,
            ..
        })
    ));
    hub.vault.release(&hub.martin, id).unwrap();
    assert_eq!(
        ids(&hub.vault.documents_for_patient(&hub.camille).unwrap()),
        [id]
    );
    assert!(hub
        .inbox(&hub.camille)
        .iter()
        .any(|m| m.contains("IRM cérébrale") && m.contains("Un nouveau document est disponible")));
    assert_eq!(hub.audits("document.release").len(), 1);
}

#[test]
fn a_blocked_professional_sees_nothing_until_unblocked() {
    let hub = hub();
    let [bio, _, _] = three_documents(&hub);
    hub.vault
        .block_professional(&hub.camille, &hub.martin.address)
        .unwrap();
    // Even the author of every document: the list is refused, and that is audited.
    assert!(matches!(
        hub.vault
            .documents_for_professional(&hub.camille, &hub.martin),
        Err(VaultError::Refused(Denial::Blocked))
    ));
    let refused = hub.audits("document.list.denied");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event.actor, hub.martin.address.as_str());
    assert_eq!(
        refused[0].event.detail,
        format!("patient:{} ground:blocked", hub.camille.id)
    );
    assert_eq!(
        denial(hub.vault.read_document(&hub.martin, bio)),
        Denial::Blocked
    );
    hub.vault
        .unblock_professional(&hub.camille, &hub.martin.address)
        .unwrap();
    assert_eq!(
        hub.vault
            .documents_for_professional(&hub.camille, &hub.martin)
            .unwrap()
            .len(),
        3
    );
    assert_eq!(hub.audits("vault.block").len(), 1);
    assert_eq!(hub.audits("vault.unblock").len(), 1);
}

#[test]
fn a_deleted_document_loses_its_content_but_keeps_its_audit_trail() {
    let hub = hub();
    let [bio, _, _] = three_documents(&hub);
    followed_by(&hub, &[&hub.dubois]);
    hub.vault.read_document(&hub.dubois, bio).unwrap();
    let blob = hub.vault.document(bio).unwrap().blob.unwrap();
    hub.vault.delete(&hub.camille, bio).unwrap();

    let doc = hub.vault.document(bio).unwrap();
    assert!(doc.deleted && doc.blob.is_none());
    assert!(
        hub.store.read_blob(hub.camille.id, blob).is_err(),
        "content removed"
    );
    assert_eq!(
        hub.vault.documents_for_patient(&hub.camille).unwrap().len(),
        2
    );
    assert!(matches!(
        hub.vault.read_document(&hub.dubois, bio),
        Err(VaultError::Deleted(_))
    ));
    assert_eq!(hub.audits("document.delete").len(), 1);
    assert_eq!(hub.audits("document.read").len(), 1);
    hub.store.verify_audit().unwrap();
}

#[test]
fn a_masked_document_from_the_sender_stays_masked() {
    let hub = hub();
    let mut doc = XdmDoc::new("DOC0001.PDF", "11502-2", "Sérologie", &pdf("sero"));
    doc.confidentiality = "MASQUE_PS".into();
    let raw = message(
        &format!("{CAMILLE_INS}@patient.mshub.test"),
        &[(
            "IHE_XDM.ZIP",
            "application/zip",
            &xdm_zip(&[("SUBSET01", vec![doc])]),
        )],
        "",
    );
    let id = hub.file_for_camille(&raw).documents()[0];
    assert!(hub.vault.document(id).unwrap().masked);
    followed_by(&hub, &[&hub.dubois]);
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, id)),
        Denial::Masked
    );
    assert!(hub.vault.read_document(&hub.martin, id).is_ok());
}

#[test]
fn the_patient_classifies_a_document_to_classify_and_the_matrix_follows() {
    let hub = hub();
    let raw = message(
        &format!("{CAMILLE_INS}@patient.mshub.test"),
        &[("scan.pdf", "application/pdf", &pdf("scan"))],
        // Not a LOINC code: ignored, the document is to classify.
        "X-Mshub-Document-Type: <script>\r\n",
    );
    let id = hub.file_for_camille(&raw).documents()[0];
    assert_eq!(hub.vault.document(id).unwrap().category, Category::AClasser);
    followed_by(&hub, &[&hub.pharmacist]);
    assert_eq!(
        denial(hub.vault.read_document(&hub.pharmacist, id)),
        Denial::Matrix
    );
    assert!(matches!(
        hub.vault.reclassify(&hub.camille, id, "00000-0"),
        Err(VaultError::UnknownDocumentType(_))
    ));
    assert!(matches!(
        hub.vault.reclassify(&hub.martin, id, "57833-6"),
        Err(VaultError::Denied { .. })
    ));
    let doc = hub.vault.reclassify(&hub.camille, id, "57833-6").unwrap();
    assert_eq!(doc.category, Category::Prescriptions);
    assert_eq!(doc.type_label, "Prescription de produits de santé");
    assert!(hub.vault.read_document(&hub.pharmacist, id).is_ok());
    assert_eq!(hub.audits("document.reclassify").len(), 1);
}
