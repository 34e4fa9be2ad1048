//! Documents' public references: what names a document outside the hub instead of its number.

mod common;

use common::*;
use mshub_vault::*;

fn three_documents(hub: &Hub) -> Vec<Document> {
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
    assert_eq!(hub.file_for_camille(&raw).documents().len(), 3);
    hub.vault.documents_for_patient(&hub.camille).unwrap()
}

#[test]
fn every_document_read_carries_a_reference_that_resolves_to_it() {
    let hub = hub();
    let docs = three_documents(&hub);
    for doc in &docs {
        let text = doc.reference.as_str();
        assert_eq!(text.len(), 32, "{text}");
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(DocumentRef::try_from(text).as_ref(), Ok(&doc.reference));
        assert_eq!(hub.vault.resolve(&doc.reference).unwrap(), Some(doc.id));
        assert_eq!(hub.vault.reference(doc.id).unwrap(), doc.reference);
        assert_eq!(hub.vault.document(doc.id).unwrap().reference, doc.reference);
    }
    // Consecutive numbers, unrelated references.
    for pair in docs.windows(2) {
        assert_eq!(pair[0].id.0 + 1, pair[1].id.0);
        let same = pair[0]
            .reference
            .as_str()
            .bytes()
            .zip(pair[1].reference.as_str().bytes())
            .filter(|(a, b)| a == b)
            .count();
        assert!(
            same < 12,
            "{:?} and {:?}",
            pair[0].reference,
            pair[1].reference
        );
    }
    // What a change to the record returns carries it too.
    hub.vault.mask(&hub.camille, docs[0].id).unwrap();
    let masked = hub.vault.documents_for_patient(&hub.camille).unwrap();
    assert_eq!(masked[0].reference, docs[0].reference);
}

#[test]
fn numbers_and_altered_references_name_no_document() {
    let hub = hub();
    let docs = three_documents(&hub);
    for text in ["1", "2", "0", "", "00000000000000000000000000000001"] {
        assert_eq!(
            DocumentRef::try_from(text),
            Err(InvalidDocumentRef),
            "{text}"
        );
    }
    let real = docs[1].reference.as_str();
    // One name per document: no upper case, no padding, nothing around it.
    for text in [
        real.to_ascii_uppercase(),
        format!("{real}="),
        format!(" {real}"),
        real[1..].to_string(),
    ] {
        assert!(DocumentRef::try_from(text.as_str()).is_err(), "{text}");
    }
    // Well-formed but altered, anywhere: not found, nothing else.
    for at in 0..real.len() {
        let mut bytes = real.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
        let altered = DocumentRef::try_from(std::str::from_utf8(&bytes).unwrap()).unwrap();
        assert_eq!(hub.vault.resolve(&altered).unwrap(), None, "{altered}");
    }
    let made_up = DocumentRef::try_from("a".repeat(32).as_str()).unwrap();
    assert_eq!(hub.vault.resolve(&made_up).unwrap(), None);
}

#[test]
fn every_vault_of_the_hub_gives_the_same_references() {
    let hub = hub();
    let docs = three_documents(&hub);
    // The binary runs several vaults over one store (filing, web): the key is the store's.
    let other = Vault::new(hub.store.clone(), hub.directory.clone());
    for doc in &docs {
        assert_eq!(other.reference(doc.id).unwrap(), doc.reference);
        assert_eq!(other.resolve(&doc.reference).unwrap(), Some(doc.id));
    }
    // A document never filed still has a reference, which names nothing.
    let unfiled = other.reference(DocumentId(docs[2].id.0 + 1)).unwrap();
    assert!(matches!(
        other.document(other.resolve(&unfiled).unwrap().unwrap()),
        Err(VaultError::NoSuchDocument(_))
    ));
}
