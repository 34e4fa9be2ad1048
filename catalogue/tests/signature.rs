//! The signed catalogue: only a good signature by a referencing authority valid now is
//! accepted.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use mshub_catalogue::authority;
use mshub_catalogue::*;
use sequoia_openpgp as openpgp;

fn verify(data: &str, sig: &str, authorities: &str) -> Result<CatalogueFile> {
    Catalogue::verify(
        data.as_bytes(),
        sig.as_bytes(),
        authorities.as_bytes(),
        SystemTime::now(),
    )
}

#[test]
fn good_signature_is_accepted_and_names_the_authority() {
    let key = authority_key();
    let data = catalogue_text(0);
    let sig = authority::sign(key.secret.as_bytes(), data.as_bytes()).unwrap();
    let file = verify(&data, &sig, &key.public).unwrap();
    assert_eq!(file.apps.len(), 5);
    assert_eq!(file.signed_by, key.fingerprint);
    // Among several authorities, and with a binary (dearmored) signature too.
    let other = authority_key();
    let both = format!("{}{}", other.public, key.public);
    verify(&data, &sig, &both).unwrap();
    let mut binary = Vec::new();
    std::io::Read::read_to_end(
        &mut openpgp::armor::Reader::from_bytes(
            sig.as_bytes(),
            openpgp::armor::ReaderMode::Tolerant(None),
        ),
        &mut binary,
    )
    .unwrap();
    Catalogue::verify(data.as_bytes(), &binary, both.as_bytes(), SystemTime::now()).unwrap();
}

#[test]
fn tampered_catalogue_is_refused() {
    let key = authority_key();
    let data = catalogue_text(0);
    let sig = authority::sign(key.secret.as_bytes(), data.as_bytes()).unwrap();
    let tampered = data.replace(
        "\"measurements:write\"]",
        "\"measurements:write\", \"documents:read:all\"]",
    );
    assert_ne!(tampered, data);
    let err = verify(&tampered, &sig, &key.public).unwrap_err();
    assert!(matches!(err, CatalogueError::Tampered), "{err}");
    assert!(err.to_string().contains("modified after signing"), "{err}");
    // One byte is enough.
    let mut one = data.clone().into_bytes();
    one[10] ^= 1;
    let err = Catalogue::verify(
        &one,
        sig.as_bytes(),
        key.public.as_bytes(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, CatalogueError::Tampered), "{err}");
}

#[test]
fn signature_by_another_key_is_refused() {
    let authority = authority_key();
    let intruder = authority_key();
    let data = catalogue_text(0);
    let sig = authority::sign(intruder.secret.as_bytes(), data.as_bytes()).unwrap();
    let err = verify(&data, &sig, &authority.public).unwrap_err();
    assert!(matches!(err, CatalogueError::WrongKey(_)), "{err}");
    assert!(
        err.to_string().contains("not a referencing authority"),
        "{err}"
    );
}

#[test]
fn unsigned_or_garbage_signature_is_refused() {
    let key = authority_key();
    let data = catalogue_text(0);
    for sig in [
        "",
        "  \n",
        "not a signature at all",
        "-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n",
    ] {
        let err = verify(&data, sig, &key.public).unwrap_err();
        assert!(matches!(err, CatalogueError::Unsigned(_)), "{sig:?}: {err}");
    }
    // A certificate is not a signature.
    let err = verify(&data, &key.public, &key.public).unwrap_err();
    assert!(matches!(err, CatalogueError::Unsigned(_)), "{err}");
}

#[test]
fn no_usable_authority_is_a_clear_error() {
    let key = authority_key();
    let data = catalogue_text(0);
    let sig = authority::sign(key.secret.as_bytes(), data.as_bytes()).unwrap();
    for authorities in ["", "garbage"] {
        let err = verify(&data, &sig, authorities).unwrap_err();
        assert!(matches!(err, CatalogueError::NoAuthority(_)), "{err}");
    }
}

#[test]
fn expired_signature_is_refused() {
    let key = authority_key();
    let data = catalogue_text(0);
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let sig = authority::sign_at(
        key.secret.as_bytes(),
        data.as_bytes(),
        two_hours_ago,
        Some(Duration::from_secs(3600)),
    )
    .unwrap();
    let err = verify(&data, &sig, &key.public).unwrap_err();
    assert!(matches!(err, CatalogueError::SignatureExpired(_)), "{err}");
    // The same signature was fine while it lived.
    Catalogue::verify(
        data.as_bytes(),
        sig.as_bytes(),
        key.public.as_bytes(),
        two_hours_ago + Duration::from_secs(60),
    )
    .unwrap();
}

#[test]
fn signature_from_the_future_is_refused() {
    let key = authority_key();
    let data = catalogue_text(0);
    let sig = authority::sign_at(
        key.secret.as_bytes(),
        data.as_bytes(),
        SystemTime::now() + 2 * DAY,
        None,
    )
    .unwrap();
    let err = verify(&data, &sig, &key.public).unwrap_err();
    assert!(matches!(err, CatalogueError::SignatureExpired(_)), "{err}");
}

#[test]
fn expired_authority_key_is_refused_even_for_an_old_signature() {
    // Created 30 days ago for 10 days; it signed while valid.
    let key = authority::generate(
        "Autorité expirée",
        SystemTime::now() - 30 * DAY,
        Some(10 * DAY),
    )
    .unwrap();
    let data = catalogue_text(-25);
    let sig = authority::sign_at(
        key.secret.as_bytes(),
        data.as_bytes(),
        SystemTime::now() - 25 * DAY,
        None,
    )
    .unwrap();
    let err = verify(&data, &sig, &key.public).unwrap_err();
    assert!(matches!(err, CatalogueError::AuthorityExpired(_)), "{err}");
    assert!(err.to_string().contains("expired"), "{err}");
}

#[test]
fn revoked_authority_key_is_refused() {
    use openpgp::cert::prelude::*;
    use openpgp::parse::Parse;
    use openpgp::serialize::SerializeInto;
    use openpgp::types::ReasonForRevocation;

    let key = authority_key();
    let data = catalogue_text(0);
    let sig = authority::sign(key.secret.as_bytes(), data.as_bytes()).unwrap();
    let cert = openpgp::Cert::from_bytes(key.secret.as_bytes()).unwrap();
    let mut primary = cert
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .unwrap()
        .into_keypair()
        .unwrap();
    let revocation = CertRevocationBuilder::new()
        .set_reason_for_revocation(ReasonForRevocation::KeyRetired, b"retired")
        .unwrap()
        .build(&mut primary, &cert, None)
        .unwrap();
    let (revoked, _) = cert.insert_packets(vec![revocation]).unwrap();
    let public = String::from_utf8(
        revoked
            .strip_secret_key_material()
            .armored()
            .to_vec()
            .unwrap(),
    )
    .unwrap();
    let err = verify(&data, &sig, &public).unwrap_err();
    assert!(matches!(err, CatalogueError::AuthorityRevoked(_)), "{err}");
}

#[test]
fn catalogue_past_valid_until_is_refused() {
    let key = authority_key();
    let today = chrono::Utc::now().date_naive();
    let data = mshub_catalogue::file::with_dates(
        mshub_catalogue::file::DEMO,
        today - chrono::Days::new(400),
        today - chrono::Days::new(1),
    );
    let sig = authority::sign(key.secret.as_bytes(), data.as_bytes()).unwrap();
    let err = verify(&data, &sig, &key.public).unwrap_err();
    assert!(matches!(err, CatalogueError::CatalogueExpired(_)), "{err}");
    // Its last day is still fine.
    let data = mshub_catalogue::file::with_dates(mshub_catalogue::file::DEMO, today, today);
    let sig = authority::sign(key.secret.as_bytes(), data.as_bytes()).unwrap();
    verify(&data, &sig, &key.public).unwrap();
}

#[test]
fn catalogue_issued_in_the_future_is_refused() {
    let key = authority_key();
    let data = catalogue_text(3);
    let sig = authority::sign(key.secret.as_bytes(), data.as_bytes()).unwrap();
    let err = verify(&data, &sig, &key.public).unwrap_err();
    assert!(err.to_string().contains("in the future"), "{err}");
}

#[test]
fn signed_but_invalid_file_is_refused_with_the_reason() {
    let key = authority_key();
    let data = catalogue_text(0).replace(
        "https://pharmaclair.example/auth/callback",
        "http://evil.example/cb",
    );
    let sig = authority::sign(key.secret.as_bytes(), data.as_bytes()).unwrap();
    let err = verify(&data, &sig, &key.public).unwrap_err();
    assert!(matches!(err, CatalogueError::InvalidFile(_)), "{err}");
    assert!(err.to_string().contains("pharmaclair"), "{err}");
}

#[test]
fn import_replaces_the_catalogue_but_never_with_an_older_one() {
    let h = hub();
    assert_eq!(h.catalogue.apps().unwrap().len(), 5);
    let newer = catalogue_text(1).replace(
        "[[app]]\nid = \"pharmaclair\"",
        "[[app]]\nid = \"pharmaclair-2\"",
    );
    let sig = authority::sign(h.authority.secret.as_bytes(), newer.as_bytes()).unwrap();
    // Same day is allowed too; a later one replaces.
    h.catalogue
        .import(
            newer.as_bytes(),
            sig.as_bytes(),
            h.authority.public.as_bytes(),
            "operator",
        )
        .unwrap();
    assert!(h.catalogue.app("pharmaclair").unwrap().is_none());
    assert!(h.catalogue.app("pharmaclair-2").unwrap().is_some());
    // Another instance over the same store sees it.
    let other = Catalogue::new(h.store.clone(), h.directory.clone());
    assert!(other.app("pharmaclair-2").unwrap().is_some());
    let older = catalogue_text(0);
    let sig = authority::sign(h.authority.secret.as_bytes(), older.as_bytes()).unwrap();
    let err = h
        .catalogue
        .import(
            older.as_bytes(),
            sig.as_bytes(),
            h.authority.public.as_bytes(),
            "operator",
        )
        .unwrap_err();
    assert!(matches!(err, CatalogueError::Older { .. }), "{err}");
    // Apps are listed by name; the import is in the audit chain.
    let names: Vec<String> = h
        .catalogue
        .apps()
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted);
    let imports = h
        .store
        .audit_records(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == "catalogue.import")
        .count();
    assert_eq!(imports, 2);
}

#[test]
fn a_failed_import_keeps_the_previous_catalogue() {
    let h = hub();
    let data = catalogue_text(1);
    let err = h
        .catalogue
        .import(
            data.as_bytes(),
            b"",
            h.authority.public.as_bytes(),
            "operator",
        )
        .unwrap_err();
    assert!(matches!(err, CatalogueError::Unsigned(_)), "{err}");
    assert_eq!(h.catalogue.apps().unwrap().len(), 5);
}
