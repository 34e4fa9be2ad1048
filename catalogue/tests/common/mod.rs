//! A real store and directory in a temporary directory, a patient, a referencing authority
//! key, and the demo catalogue made current and signed by it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mshub_catalogue::authority::{self, AuthorityKey};
use mshub_catalogue::file::{with_dates, DEMO};
use mshub_catalogue::*;
use mshub_directory::*;
use mshub_store::{MasterKey, Store};

pub const CAMILLE: &str = "284057511204339@patient.mshub.test";
pub const DAY: Duration = Duration::from_secs(24 * 3600);

pub struct Hub {
    pub _dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub directory: Arc<Directory>,
    pub catalogue: Catalogue,
    pub camille: Account,
    pub authority: AuthorityKey,
}

/// An authority key created a week ago, valid for years.
pub fn authority_key() -> AuthorityKey {
    authority::generate(
        "Autorité de test",
        SystemTime::now() - 7 * DAY,
        Some(3650 * DAY),
    )
    .unwrap()
}

/// The demo catalogue, issued today (+ `shift` days), valid a year.
pub fn catalogue_text(shift: i64) -> String {
    let today = chrono::Utc::now().date_naive();
    let issued = today
        .checked_add_signed(chrono::TimeDelta::days(shift))
        .unwrap();
    with_dates(DEMO, issued, issued + chrono::Days::new(365))
}

pub fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    let directory =
        Arc::new(Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap());
    let camille = directory
        .add_account(
            Address::try_from(CAMILLE).unwrap(),
            AccountKind::Patient {
                ins: Ins::try_from("284057511204339").unwrap(),
                given_name: "Camille".into(),
                family_name: "Durand".into(),
                birth_date: BirthDate::try_from("1984-05-12").unwrap(),
                sex: Sex::Female,
            },
            None,
            "test",
        )
        .unwrap();
    let catalogue = Catalogue::new(store.clone(), directory.clone());
    let authority = authority_key();
    let data = catalogue_text(0);
    let sig = authority::sign(authority.secret.as_bytes(), data.as_bytes()).unwrap();
    let n = catalogue
        .import(
            data.as_bytes(),
            sig.as_bytes(),
            authority.public.as_bytes(),
            "operator",
        )
        .unwrap();
    assert_eq!(n, 5);
    Hub {
        _dir: dir,
        store,
        directory,
        catalogue,
        camille,
        authority,
    }
}

pub fn now() -> i64 {
    mshub_store::now()
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce(seed: char) -> (String, String) {
    let verifier: String = std::iter::repeat_n(seed, 50).collect();
    let challenge = oauth::s256(&verifier);
    (verifier, challenge)
}
