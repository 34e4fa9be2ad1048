//! Documents the patient adds (`vault/src/upload.rs`): checked by their bytes, authored by the
//! patient, stored and audited like filed ones, read by professionals within the same rules,
//! and a refusal stores nothing. Real store and directory in a temporary directory.

mod common;

use common::*;
use mshub_vault::*;

const BIOLOGY: &str = "11502-2";

fn upload(bytes: Vec<u8>, name: &str) -> Upload {
    Upload {
        bytes,
        file_name: name.into(),
        type_code: BIOLOGY.into(),
        title: "Prise de sang de mars".into(),
        date: "2026-03-04".into(),
        masked: false,
    }
}

fn jpeg() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    j.extend_from_slice(b"JFIF\0");
    j.extend_from_slice(&[0u8; 64]);
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

#[test]
fn a_patient_adds_a_pdf_that_professionals_see_as_added_by_the_patient() {
    let hub = hub();
    hub.vault
        .add_relationship(&hub.camille, &hub.martin, Relationship::Follows, None)
        .unwrap();
    let content = pdf("Résultats rapportés par la patiente");
    let doc = hub
        .vault
        .add_patient_document(&hub.camille, upload(content.clone(), "sang.pdf"))
        .unwrap();
    assert_eq!(doc.source, Source::Patient);
    assert_eq!(doc.mime, "application/pdf");
    assert_eq!(doc.type_code, BIOLOGY);
    assert_eq!(doc.title, "Prise de sang de mars");
    assert_eq!(doc.created.as_deref(), Some("20260304"));
    assert_eq!(doc.author.address.as_ref(), Some(&hub.camille.address));
    assert!(doc.visible_to_patient && !doc.masked);
    assert!(
        doc.author_display().ends_with("ajouté par le patient"),
        "{}",
        doc.author_display()
    );

    // The patient's list and the follower's.
    let mine = hub.vault.documents_for_patient(&hub.camille).unwrap();
    assert!(mine.iter().any(|d| d.id == doc.id));
    let theirs = hub
        .vault
        .documents_for_professional(&hub.camille, &hub.martin)
        .unwrap();
    assert!(theirs.iter().any(|d| d.id == doc.id));
    assert_eq!(
        hub.vault.read_document(&hub.martin, doc.id).unwrap(),
        content
    );
    // An unrelated physician sees nothing of it.
    assert!(hub.vault.read_document(&hub.dubois, doc.id).is_err());

    // Audited as filed by the patient.
    let filed = hub.audits("document.file");
    let last = filed.last().unwrap();
    assert_eq!(last.event.actor, hub.camille.address.as_str());
    assert_eq!(last.event.subject, format!("document:{}", doc.id));
    assert!(
        last.event.detail.ends_with("source:patient"),
        "{}",
        last.event.detail
    );
    hub.store.verify_audit().unwrap();

    // Deletable like any other.
    hub.vault.delete(&hub.camille, doc.id).unwrap();
    assert!(hub.vault.read_document(&hub.martin, doc.id).is_err());
}

#[test]
fn masked_at_once_only_the_referring_doctor_sees_it() {
    let hub = hub();
    hub.vault
        .set_referring_doctor(&hub.camille, Some(&hub.bernard.address))
        .unwrap();
    hub.vault
        .add_relationship(&hub.camille, &hub.martin, Relationship::Follows, None)
        .unwrap();
    let mut photo = upload(jpeg(), "ordonnance.jpg");
    photo.masked = true;
    photo.date = String::new();
    photo.title = String::new();
    let doc = hub.vault.add_patient_document(&hub.camille, photo).unwrap();
    assert!(doc.masked);
    assert_eq!(doc.mime, "image/jpeg");
    assert_eq!(doc.created, None);
    // No title: the type's label.
    assert!(!doc.title.is_empty());
    assert!(hub.vault.read_document(&hub.bernard, doc.id).is_ok());
    assert!(matches!(
        hub.vault.read_document(&hub.martin, doc.id),
        Err(VaultError::Denied { .. })
    ));
}

#[test]
fn a_refused_file_stores_nothing_and_says_why_in_french() {
    let hub = hub();
    let before = hub.vault.documents_for_patient(&hub.camille).unwrap().len();
    let files_before = hub.audits("document.file").len();
    let cases: Vec<(Upload, &str)> = vec![
        (upload(Vec::new(), "vide.pdf"), "Aucun fichier"),
        (
            upload(vec![b'%'; mshub_vault::upload::MAX_UPLOAD + 1], "gros.pdf"),
            "dépasse 20 Mo",
        ),
        (upload(jpeg(), "compte-rendu.pdf"), "extension .pdf"),
        (
            upload(b"MZ\x90\0 not a document".to_vec(), "scan.exe"),
            "ni un PDF ni une photo",
        ),
        (
            upload(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec(), "IMG_1.HEIC"),
            "HEIC",
        ),
        (
            Upload {
                type_code: "00000-0".into(),
                ..upload(pdf("x"), "a.pdf")
            },
            "ne fait pas partie de la liste",
        ),
        (
            Upload {
                date: "2999-01-01".into(),
                ..upload(pdf("x"), "a.pdf")
            },
            "dans le futur",
        ),
        (
            Upload {
                title: "x".repeat(201),
                ..upload(pdf("x"), "a.pdf")
            },
            "raccourcissez",
        ),
    ];
    for (u, expected) in cases {
        let name = u.file_name.clone();
        match hub.vault.add_patient_document(&hub.camille, u) {
            Err(VaultError::Upload(refusal)) => {
                let text = refusal.to_string();
                assert!(text.contains(expected), "{name}: {text}");
            }
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(
        hub.vault.documents_for_patient(&hub.camille).unwrap().len(),
        before
    );
    assert_eq!(hub.audits("document.file").len(), files_before);
    // Only a patient adds documents to a space of their own.
    assert!(matches!(
        hub.vault
            .add_patient_document(&hub.martin, upload(pdf("x"), "a.pdf")),
        Err(VaultError::NotAPatient(_))
    ));
}
