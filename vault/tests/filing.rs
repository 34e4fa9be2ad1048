//! Filing of delivered messages: XDM archives, CDA documents, PDFs and images, and each
//! defence of the XDM reader. Real store and directory in a temporary directory.

mod common;

use common::*;
use mshub_directory::Address;
use mshub_vault::*;

fn xdm_message(zip: &[u8]) -> Vec<u8> {
    message(
        &format!("{CAMILLE_INS}@patient.mshub.test"),
        &[("IHE_XDM.ZIP", "application/zip", zip)],
        "",
    )
}

fn bilan() -> XdmDoc {
    XdmDoc::new(
        "DOC0001.PDF",
        "11502-2",
        "Bilan sanguin du 14/01",
        &pdf("bilan"),
    )
}

#[test]
fn a_single_document_xdm_is_filed_with_its_type_author_and_an_audit_record() {
    let hub = hub();
    let filing = hub.file_for_camille(&xdm_message(&xdm_zip(&[("SUBSET01", vec![bilan()])])));
    assert_eq!(filing.documents().len(), 1, "{filing:?}");
    assert!(matches!(filing.outcome(), FilingOutcome::Filed { .. }));

    let docs = hub.vault.documents_for_patient(&hub.camille).unwrap();
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d.type_code, "11502-2");
    assert_eq!(d.type_label, "CR d'examens biologiques");
    assert_eq!(d.category, Category::Biologie);
    assert_eq!(d.title, "Bilan sanguin du 14/01");
    // Filed by the lab's mailbox: the author is the lab; the archive's author stays declared.
    assert_eq!(d.author.institution.as_deref(), Some("Laboratoire du CHU"));
    assert_eq!(d.author.address.as_ref().map(|a| a.as_str()), Some(LABO));
    let declared = d
        .declared_author
        .as_ref()
        .expect("the archive's author is kept");
    assert_eq!(declared.person.as_deref(), Some("Dr Claire MARTIN"));
    assert_eq!(declared.address.as_ref().map(|a| a.as_str()), Some(MARTIN));
    assert_eq!(d.created.as_deref(), Some("20240115103000"));
    assert_eq!(d.service_start.as_deref(), Some("20240114080000"));
    assert_eq!(d.service_stop.as_deref(), Some("20240114090000"));
    assert_eq!(d.mime, "application/pdf");
    assert_eq!(d.class_code.as_deref(), Some("11502-2"));
    assert_eq!(
        d.format_code.as_deref(),
        Some("urn:ihe:iti:xds-sd:pdf:2008")
    );
    assert_eq!(d.confidentiality, ["N"]);
    assert_eq!(d.source, Source::Xdm);
    assert_eq!(d.sha1, sha1_hex(&pdf("bilan")));
    assert!(!d.masked && d.visible_to_patient && !d.deleted);
    assert_eq!(
        hub.vault.read_document(&hub.camille, d.id).unwrap(),
        pdf("bilan")
    );

    let filed = hub.audits("document.file");
    assert_eq!(filed.len(), 1);
    assert_eq!(filed[0].event.actor, LABO);
    assert_eq!(filed[0].event.subject, format!("document:{}", d.id));
    assert!(filed[0].event.detail.contains("type:11502-2"));
    hub.store.verify_audit().unwrap();
}

#[test]
fn several_documents_in_one_subset_are_all_filed() {
    let hub = hub();
    let docs = vec![
        bilan(),
        XdmDoc::new("DOC0002.PDF", "18748-4", "Radio du thorax", &pdf("radio")),
        XdmDoc::new("DOC0003.PDF", "57833-6", "Ordonnance", &pdf("ordo")),
    ];
    let filing = hub.file_for_camille(&xdm_message(&xdm_zip(&[("SUBSET01", docs)])));
    assert_eq!(filing.documents().len(), 3, "{filing:?}");
    let categories: Vec<Category> = hub
        .vault
        .documents_for_patient(&hub.camille)
        .unwrap()
        .iter()
        .map(|d| d.category)
        .collect();
    assert_eq!(
        categories,
        [
            Category::Biologie,
            Category::Imagerie,
            Category::Prescriptions
        ]
    );
}

#[test]
fn two_subsets_are_both_filed() {
    let hub = hub();
    let zip = xdm_zip(&[
        ("SUBSET01", vec![bilan()]),
        (
            "SUBSET02",
            vec![XdmDoc::new(
                "DOC0001.PDF",
                "11490-0",
                "Lettre de sortie",
                &pdf("sortie"),
            )],
        ),
    ]);
    let filing = hub.file_for_camille(&xdm_message(&zip));
    assert_eq!(filing.documents().len(), 2, "{filing:?}");
    let docs = hub.vault.documents_for_patient(&hub.camille).unwrap();
    let titles: Vec<&str> = docs.iter().map(|d| d.title.as_str()).collect();
    assert!(titles.contains(&"Lettre de sortie"), "{titles:?}");
    assert!(titles.contains(&"Bilan sanguin du 14/01"), "{titles:?}");
}

#[test]
fn a_cda_with_a_pdf_body_inside_xdm_is_filed_with_a_rendering() {
    let hub = hub();
    let body = pdf("compte rendu");
    let cda = cda(CAMILLE_INS, "11490-0", "Lettre de liaison", Some(&body));
    let zip = xdm_zip(&[(
        "SUBSET01",
        vec![XdmDoc::new(
            "DOC0001.XML",
            "11490-0",
            "Lettre de liaison",
            &cda,
        )],
    )]);
    let filing = hub.file_for_camille(&xdm_message(&zip));
    assert_eq!(filing.documents().len(), 1, "{filing:?}");
    let id = filing.documents()[0];
    let doc = hub.vault.document(id).unwrap();
    assert_eq!(doc.category, Category::ComptesRendus);
    assert_eq!(hub.vault.read_document(&hub.camille, id).unwrap(), cda);
    let rendering = hub.vault.read_rendering(&hub.camille, id).unwrap().unwrap();
    assert!(rendering.contains("Lettre de liaison"), "{rendering}");
    assert!(rendering.contains("application/pdf"), "{rendering}");
    let parsed = cda::parse_cda(&cda, "DOC0001.XML").unwrap();
    assert_eq!(
        parsed.body,
        cda::Body::NonXml {
            media_type: "application/pdf".into(),
            content: Some(body)
        }
    );
}

#[test]
fn a_standalone_cda_is_filed_and_rendered_with_header_and_narrative() {
    let hub = hub();
    let cda = cda(CAMILLE_INS, "11502-2", "Compte rendu de biologie", None);
    let raw = message(
        &format!("{CAMILLE_INS}@patient.mshub.test"),
        &[("CR-BIO.XML", "text/xml", &cda)],
        "",
    );
    let filing = hub.file_for_camille(&raw);
    assert_eq!(filing.documents().len(), 1, "{filing:?}");
    let id = filing.documents()[0];
    let doc = hub.vault.document(id).unwrap();
    assert_eq!(doc.source, Source::Cda);
    assert_eq!(doc.category, Category::Biologie);
    assert_eq!(doc.title, "Compte rendu de biologie");
    assert_eq!(doc.created.as_deref(), Some("20240115103000+0100"));
    assert_eq!(
        doc.declared_author
            .as_ref()
            .and_then(|d| d.person.as_deref()),
        Some("Dr Claire MARTIN")
    );
    let text = hub.vault.read_rendering(&hub.camille, id).unwrap().unwrap();
    for expected in [
        "Compte rendu de biologie",
        "Type : CR d'examens biologiques (LOINC 11502-2)",
        "Date : 15/01/2024 10:30",
        &format!("Patient : INS {CAMILLE_INS}"),
        "Auteur : Dr Claire MARTIN, Laboratoire du CHU",
        "## Résultats",
        "Hémoglobine : 13,5 g/dL\nLeucocytes : 6,2 G/L",
        "## Conclusion",
        "Bilan normal.",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn a_pdf_takes_the_senders_type_hint_and_an_image_without_one_is_to_classify() {
    let hub = hub();
    let to = format!("{CAMILLE_INS}@patient.mshub.test");
    let with_hint = message(
        &to,
        &[("ordonnance.pdf", "application/pdf", &pdf("ordo"))],
        "X-Mshub-Document-Type: 57833-6\r\n",
    );
    let filing = hub.file_for_camille(&with_hint);
    let doc = hub.vault.document(filing.documents()[0]).unwrap();
    assert_eq!(doc.category, Category::Prescriptions);
    assert_eq!(doc.title, "ordonnance.pdf");
    assert_eq!(doc.source, Source::Attachment);
    assert_eq!(doc.author.address.as_ref().map(|a| a.as_str()), Some(LABO));

    let image = message(
        &to,
        &[("photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0 jpeg")],
        "",
    );
    let filing = hub.file_for_camille(&image);
    let doc = hub.vault.document(filing.documents()[0]).unwrap();
    assert_eq!(doc.category, Category::AClasser);
    assert_eq!(doc.type_label, "À classer");
    assert_eq!(doc.mime, "image/jpeg");
}

#[test]
fn a_message_to_a_professional_or_without_attachments_files_nothing() {
    let hub = hub();
    let raw = xdm_message(&xdm_zip(&[("SUBSET01", vec![bilan()])]));
    let filing = hub.vault.file_message(&hub.martin, None, &raw);
    assert_eq!(filing, Filing::default());
    assert_eq!(filing.outcome(), FilingOutcome::NotApplicable);
    let plain = b"From: a@chu.mshub.test\r\nSubject: x\r\n\r\nBonjour\r\n";
    assert_eq!(
        hub.file_for_camille(plain).outcome(),
        FilingOutcome::NotApplicable
    );
    assert!(hub.audits("document.file").is_empty());
}

#[test]
fn filing_the_same_message_twice_files_it_once() {
    let hub = hub();
    let raw = xdm_message(&xdm_zip(&[("SUBSET01", vec![bilan()])]));
    let first = hub.file_for_camille(&raw);
    let second = hub.file_for_camille(&raw);
    assert_eq!(first, second);
    assert_eq!(
        hub.vault.documents_for_patient(&hub.camille).unwrap().len(),
        1
    );
    assert_eq!(hub.inbox(&hub.camille).len(), 1);
}

#[test]
fn the_patient_is_notified_in_the_inbox_of_new_documents() {
    let hub = hub();
    hub.file_for_camille(&xdm_message(&xdm_zip(&[("SUBSET01", vec![bilan()])])));
    let inbox = hub.inbox(&hub.camille);
    assert_eq!(inbox.len(), 1);
    let note = &inbox[0];
    assert!(note.contains(&format!("To: <{CAMILLE_INS}@patient.mshub.test>")));
    assert!(note.contains("Subject: =?UTF-8?B?"), "{note}");
    assert!(note.contains("Un nouveau document a été ajouté"), "{note}");
    assert!(
        note.contains("CR d'examens biologiques : Bilan sanguin du 14/01 (Laboratoire du CHU — auteur déclaré : Dr Claire MARTIN, Laboratoire du CHU) — Biologie"),
        "{note}"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(note.as_bytes())
        .unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Nouveau document dans votre espace santé")
    );
}

// ----- defences -----

fn refused(hub: &Hub, zip: &[u8]) -> Rejection {
    let filing = hub.file_for_camille(&xdm_message(zip));
    assert!(filing.documents().is_empty(), "{filing:?}");
    assert!(matches!(filing.outcome(), FilingOutcome::Failed { .. }));
    assert!(hub
        .vault
        .documents_for_patient(&hub.camille)
        .unwrap()
        .is_empty());
    failure(&filing)
}

#[test]
fn a_zip_bomb_by_ratio_is_refused() {
    let hub = hub();
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let mut doc = bilan();
    doc.content = zeros;
    let zip = xdm_zip(&[("SUBSET01", vec![doc])]);
    assert!(
        zip.len() < 100 * 1024,
        "the fixture is a bomb: {}",
        zip.len()
    );
    let rejection = refused(&hub, &zip);
    assert!(
        matches!(rejection, Rejection::ZipRatio { limit: 100, .. }),
        "{rejection}"
    );
    assert!(rejection.to_string().contains("bombe zip"));
}

#[test]
fn an_archive_over_the_total_limit_is_refused() {
    let hub = hub_with_limits(XdmLimits {
        max_total: 2000,
        ..XdmLimits::default()
    });
    let mut doc = bilan();
    doc.content = (0..3000u32).flat_map(|i| i.to_le_bytes()).collect();
    let rejection = refused(&hub, &xdm_zip(&[("SUBSET01", vec![doc])]));
    assert_eq!(rejection, Rejection::ZipTooLarge { limit: 2000 });
}

#[test]
fn an_archive_with_too_many_entries_is_refused() {
    let hub = hub_with_limits(XdmLimits {
        max_entries: 3,
        ..XdmLimits::default()
    });
    let rejection = refused(&hub, &xdm_zip(&[("SUBSET01", vec![bilan()])]));
    assert_eq!(
        rejection,
        Rejection::ZipTooManyEntries { count: 4, limit: 3 }
    );
}

#[test]
fn path_traversal_in_an_entry_name_is_refused() {
    let hub = hub();
    let doc = bilan();
    let zip = zip_of(&[
        (
            "IHE_XDM/SUBSET01/METADATA.XML",
            metadata_xml(std::slice::from_ref(&doc)).into_bytes(),
        ),
        ("IHE_XDM/SUBSET01/DOC0001.PDF", doc.content.clone()),
        (
            "IHE_XDM/../../etc/cron.d/evil",
            b"* * * * * root sh".to_vec(),
        ),
    ]);
    let rejection = refused(&hub, &zip);
    assert!(
        matches!(rejection, Rejection::PathTraversal { .. }),
        "{rejection}"
    );
}

#[test]
fn path_traversal_in_a_metadata_uri_is_refused() {
    let hub = hub();
    let mut doc = bilan();
    doc.uri = "../SUBSET02/DOC0001.PDF".into();
    let zip = zip_of(&[
        (
            "IHE_XDM/SUBSET01/METADATA.XML",
            metadata_xml(std::slice::from_ref(&doc)).into_bytes(),
        ),
        ("IHE_XDM/SUBSET02/DOC0001.PDF", doc.content.clone()),
    ]);
    let rejection = refused(&hub, &zip);
    assert!(
        matches!(rejection, Rejection::PathTraversal { .. }),
        "{rejection}"
    );
}

#[test]
fn a_nested_zip_is_refused() {
    let hub = hub();
    let inner = zip_of(&[("x.txt", b"hello".to_vec())]);
    let mut doc = bilan();
    doc.uri = "INNER.ZIP".into();
    doc.content = inner;
    let rejection = refused(&hub, &xdm_zip(&[("SUBSET01", vec![doc])]));
    assert_eq!(
        rejection,
        Rejection::NestedZip {
            entry: "IHE_XDM/SUBSET01/INNER.ZIP".into()
        }
    );
}

#[test]
fn an_archive_without_metadata_is_refused() {
    let hub = hub();
    let zip = zip_of(&[("IHE_XDM/SUBSET01/DOC0001.PDF", pdf("x"))]);
    assert_eq!(refused(&hub, &zip), Rejection::MissingMetadata);
}

#[test]
fn a_dtd_in_metadata_is_refused() {
    let hub = hub();
    let doc = bilan();
    let xml = metadata_xml(std::slice::from_ref(&doc)).replacen(
        "<lcm:SubmitObjectsRequest",
        "<!DOCTYPE lcm:SubmitObjectsRequest [<!ENTITY lol \"lol\"><!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<lcm:SubmitObjectsRequest",
        1,
    );
    let zip = zip_of(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", xml.into_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.PDF", doc.content.clone()),
    ]);
    let rejection = refused(&hub, &zip);
    assert!(matches!(rejection, Rejection::XmlDtd { .. }), "{rejection}");
}

#[test]
fn an_undeclared_entity_in_metadata_is_refused() {
    let hub = hub();
    let doc = bilan();
    let xml = metadata_xml(std::slice::from_ref(&doc)).replacen("Bilan sanguin", "&xxe; Bilan", 1);
    let zip = zip_of(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", xml.into_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.PDF", doc.content.clone()),
    ]);
    let rejection = refused(&hub, &zip);
    assert!(matches!(rejection, Rejection::XmlDtd { .. }), "{rejection}");
}

#[test]
fn a_hash_mismatch_is_refused() {
    let hub = hub();
    let mut doc = bilan();
    doc.hash = Some(sha1_hex(b"another document"));
    let rejection = refused(&hub, &xdm_zip(&[("SUBSET01", vec![doc])]));
    assert!(
        matches!(rejection, Rejection::HashMismatch { .. }),
        "{rejection}"
    );
}

#[test]
fn a_size_mismatch_is_refused() {
    let hub = hub();
    let mut doc = bilan();
    doc.size = Some(doc.content.len() as u64 + 1);
    let rejection = refused(&hub, &xdm_zip(&[("SUBSET01", vec![doc.clone()])]));
    assert_eq!(
        rejection,
        Rejection::SizeMismatch {
            uri: "DOC0001.PDF".into(),
            expected: doc.content.len() as u64 + 1,
            actual: doc.content.len() as u64,
        }
    );
}

#[test]
fn a_document_about_another_patient_of_the_hub_is_refused() {
    let hub = hub();
    let mut doc = bilan();
    doc.patient_id = format!("{PAUL_INS}^^^&{INS_OID}&ISO");
    let rejection = refused(&hub, &xdm_zip(&[("SUBSET01", vec![doc])]));
    assert_eq!(
        rejection,
        Rejection::InsMismatch {
            recipient: CAMILLE_INS.into(),
            document: PAUL_INS.into()
        }
    );
    assert!(hub
        .vault
        .documents_for_patient(&hub.paul)
        .unwrap()
        .is_empty());
}

#[test]
fn a_document_about_an_unknown_patient_is_refused() {
    let hub = hub();
    let stranger = ins_with_key("1850775123456");
    let mut doc = bilan();
    doc.patient_id = format!("{stranger}^^^&1.2.250.1.213.1.4.10&ISO");
    let rejection = refused(&hub, &xdm_zip(&[("SUBSET01", vec![doc])]));
    assert_eq!(rejection, Rejection::UnknownPatient { ins: stranger });
}

#[test]
fn a_patient_id_from_another_authority_is_refused() {
    let hub = hub();
    let mut doc = bilan();
    doc.patient_id = format!("{CAMILLE_INS}^^^&1.2.250.1.999&ISO");
    let rejection = refused(&hub, &xdm_zip(&[("SUBSET01", vec![doc])]));
    assert!(
        matches!(rejection, Rejection::BadPatientId { .. }),
        "{rejection}"
    );
}

#[test]
fn a_refused_attachment_is_reported_beside_a_filed_one_and_to_the_patient() {
    let hub = hub();
    let mut bad = bilan();
    bad.hash = Some("0".repeat(40));
    let raw = message(
        &format!("{CAMILLE_INS}@patient.mshub.test"),
        &[
            (
                "IHE_XDM.ZIP",
                "application/zip",
                &xdm_zip(&[("SUBSET01", vec![bad])]),
            ),
            ("ordonnance.pdf", "application/pdf", &pdf("ordo")),
        ],
        "",
    );
    let filing = hub.file_for_camille(&raw);
    assert_eq!(filing.documents().len(), 1);
    let FilingOutcome::Failed { reason } = filing.outcome() else {
        panic!("{filing:?}")
    };
    assert!(reason.contains("1 document classé"), "{reason}");
    assert!(reason.contains("IHE_XDM.ZIP refusé"), "{reason}");
    assert!(reason.contains("SHA-1"), "{reason}");
    let inbox = hub.inbox(&hub.camille);
    assert!(
        inbox[0].contains("n'ont pas pu être classées"),
        "{}",
        inbox[0]
    );
}

#[test]
fn a_sender_is_the_author_when_the_metadata_names_none() {
    let hub = hub();
    let mut doc = bilan();
    doc.author_email = None;
    let filing = hub.vault.file_message(
        &hub.camille,
        Some(&Address::try_from(LABO).unwrap()),
        &xdm_message(&xdm_zip(&[("SUBSET01", vec![doc])])),
    );
    let doc = hub.vault.document(filing.documents()[0]).unwrap();
    assert_eq!(doc.author.address.as_ref().map(|a| a.as_str()), Some(LABO));
}

#[test]
fn a_cda_inside_xdm_about_another_patient_is_refused_even_if_the_metadata_agrees() {
    let hub = hub();
    let cda = cda(PAUL_INS, "11502-2", "Bilan", None);
    let zip = xdm_zip(&[(
        "SUBSET01",
        vec![XdmDoc::new("DOC0001.XML", "11502-2", "Bilan", &cda)],
    )]);
    assert_eq!(
        refused(&hub, &zip),
        Rejection::InsMismatch {
            recipient: CAMILLE_INS.into(),
            document: PAUL_INS.into()
        }
    );
}

#[test]
fn a_standalone_cda_about_another_patient_is_refused() {
    let hub = hub();
    let cda = cda(PAUL_INS, "11502-2", "Bilan", None);
    let raw = message(
        &format!("{CAMILLE_INS}@patient.mshub.test"),
        &[("CR.XML", "application/xml", &cda)],
        "",
    );
    let filing = hub.file_for_camille(&raw);
    assert!(matches!(failure(&filing), Rejection::InsMismatch { .. }));
    assert!(hub
        .vault
        .documents_for_patient(&hub.paul)
        .unwrap()
        .is_empty());
}

#[test]
fn a_truncated_or_fake_archive_is_refused_as_unreadable() {
    let hub = hub();
    let zip = xdm_zip(&[("SUBSET01", vec![bilan()])]);
    let rejection = refused(&hub, &zip[..zip.len() / 2]);
    assert!(
        matches!(rejection, Rejection::ZipUnreadable { .. }),
        "{rejection}"
    );
    let rejection = refused(&hub, b"this is not a zip at all");
    assert!(
        matches!(rejection, Rejection::ZipUnreadable { .. }),
        "{rejection}"
    );
}

/// DESIGN §4: a filed document's author is the authenticated sender, from the directory; the
/// author the document names is kept apart, as declared, when it is someone else.
#[test]
fn the_author_is_the_authenticated_sender_and_a_different_claim_stays_declared() {
    let hub = hub();
    let cda = cda(CAMILLE_INS, "11502-2", "CR de biologie", None);
    // One message per sender (the vault files a message once).
    let raw = |n: u32| {
        message(
            &hub.camille.address.to_string(),
            &[("cr.xml", "text/xml", &cda)],
            &format!("X-Test: {n}\r\n"),
        )
    };
    // From the lab's mailbox: the CDA names Dr Martin (a member, but the mailbox vouches for
    // the organisation, not for a person): the organisation files, Martin is declared.
    let filing = hub.file_for_camille(&raw(1));
    let doc = hub.vault.document(filing.documents()[0]).unwrap();
    assert_eq!(doc.author.address.as_ref().unwrap().as_str(), LABO);
    assert_eq!(
        doc.author.institution.as_deref(),
        Some("Laboratoire du CHU")
    );
    assert_eq!(doc.author.person, None);
    let declared = doc.declared_author.clone().expect("the claim is kept");
    assert_eq!(declared.address.unwrap().as_str(), MARTIN);
    assert!(
        doc.author_display().contains("déclaré"),
        "{}",
        doc.author_display()
    );
    // From Dr Martin himself: the claim names the sender, nothing is left as declared.
    let filing = hub
        .vault
        .file_message(&hub.camille, Some(&hub.martin.address), &raw(2));
    let doc = hub.vault.document(filing.documents()[0]).unwrap();
    assert_eq!(doc.author.address.as_ref(), Some(&hub.martin.address));
    assert_eq!(doc.author.person, Some(hub.martin.kind.display_name()));
    assert_eq!(doc.declared_author, None);
    // From another physician: the claim that Martin wrote it does not make it Martin's.
    let filing = hub
        .vault
        .file_message(&hub.camille, Some(&hub.dubois.address), &raw(3));
    let doc = hub.vault.document(filing.documents()[0]).unwrap();
    assert_eq!(doc.author.address.as_ref(), Some(&hub.dubois.address));
    assert_eq!(
        doc.declared_author.and_then(|d| d.address),
        Some(hub.martin.address.clone())
    );
}

/// DESIGN §4: who may keep a document from the patient follows the access table, never the
/// document alone: INVISIBLE_PATIENT holds from a professional whose profession sees the
/// category, not from an organisation's mailbox nor a profession that does not see it.
#[test]
fn only_a_professional_who_sees_the_category_keeps_a_document_from_the_patient() {
    let hub = hub();
    let cda = String::from_utf8(cda(CAMILLE_INS, "11502-2", "CR de biologie", None))
        .unwrap()
        .replace(
            r#"<confidentialityCode code="N""#,
            r#"<confidentialityCode code="INVISIBLE_PATIENT""#,
        );
    let visible = |sender: &Address| {
        // One message per sender (the vault files a message once).
        let raw = message(
            &hub.camille.address.to_string(),
            &[("cr.xml", "text/xml", cda.as_bytes())],
            &format!("X-Sender: {sender}\r\n"),
        );
        let filing = hub.vault.file_message(&hub.camille, Some(sender), &raw);
        hub.vault
            .document(filing.documents()[0])
            .unwrap()
            .visible_to_patient
    };
    // A physician sees every category: the document waits for its announcement.
    assert!(!visible(&hub.martin.address));
    // Biology is in the nurse's row of the table too.
    assert!(!visible(&hub.nurse.address));
    // A radiology technician sees imaging only: it cannot hide a lab report.
    assert!(visible(&hub.radiology.address));
    // An organisation's mailbox has no profession.
    assert!(visible(&Address::try_from(LABO).unwrap()));
}
