//! Logins against the throttle: one account whatever the spelling of its address, and every
//! attempt counted before its password is checked.

use std::net::IpAddr;
use std::sync::Arc;

use mshub_directory::*;
use mshub_store::{MasterKey, Store};

fn directory() -> (tempfile::TempDir, Directory) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap();
    let directory =
        Directory::open(Arc::new(store), Domain::try_from("mshub.test").unwrap()).unwrap();
    directory
        .set_domain(
            DomainEntry {
                domain: Domain::try_from("hopital.mshub.test").unwrap(),
                role: DomainRole::Local,
            },
            "test",
        )
        .unwrap();
    (dir, directory)
}

fn source(i: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, i])
}

fn with_martin() -> (tempfile::TempDir, Directory) {
    let (d, dir) = directory();
    dir.add_account(
        Address::try_from("dr.martin@hopital.mshub.test").unwrap(),
        AccountKind::Professional {
            rpps: Rpps::try_from("10003456786").unwrap(),
            given_name: "Jean".into(),
            family_name: "Martin".into(),
            profession: Profession::Physician,
            specialty: "médecine générale".into(),
            city: String::new(),
        },
        Some("demo-martin"),
        "t",
    )
    .unwrap();
    (d, dir)
}

/// Four wrong passwords from four addresses: the account (not an address) is locked.
fn lock(dir: &Directory, login: &str) {
    for i in 0..4 {
        assert!(matches!(
            dir.authenticate(login, "wrong-pass", source(200 + i), Door::Mail),
            Err(DirectoryError::BadCredentials)
        ));
    }
}

#[test]
fn every_spelling_of_a_locked_account_is_throttled() {
    let (_d, dir) = with_martin();
    lock(&dir, "dr.martin@hopital.mshub.test");
    for (i, login) in [
        "dr.martin@hopital.mshub.test",
        "dr.martin@hopital.mshub.test.",
        "DR.Martin@HOPITAL.mshub.test.",
        "  dr.martin@hopital.mshub.test  ",
        "<dr.martin@hopital.mshub.test>",
    ]
    .into_iter()
    .enumerate()
    {
        let from = source(10 + i as u8);
        assert!(
            matches!(
                dir.authenticate(login, "demo-martin", from, Door::Mail),
                Err(DirectoryError::Throttled { .. })
            ),
            "{login:?} got past the lock"
        );
    }
}

#[test]
fn a_patient_logs_in_with_the_ins_alone_and_is_throttled_by_it_too() {
    let (_d, dir) = directory();
    let ins = Ins::try_from("284057511204339").unwrap();
    dir.add_account(
        dir.patient_address(&ins),
        AccountKind::Patient {
            ins: ins.clone(),
            given_name: "Camille".into(),
            family_name: "Durand".into(),
            birth_date: BirthDate::try_from("1984-05-12").unwrap(),
            sex: Sex::Female,
        },
        Some("demo-camille"),
        "t",
    )
    .unwrap();
    let a = dir
        .authenticate(" 284057511204339 ", "demo-camille", source(100), Door::Web)
        .unwrap();
    assert_eq!(a.address, dir.patient_address(&ins));
    lock(&dir, "284057511204339@patient.mshub.test");
    assert!(matches!(
        dir.authenticate("284057511204339", "demo-camille", source(2), Door::Web),
        Err(DirectoryError::Throttled { .. })
    ));
}

#[test]
fn unknown_logins_are_throttled_by_their_normalised_text() {
    let (_d, dir) = directory();
    lock(&dir, "nobody@hopital.mshub.test");
    assert!(matches!(
        dir.authenticate(
            "NOBODY@hopital.mshub.test.",
            "whatever",
            source(2),
            Door::Mail
        ),
        Err(DirectoryError::Throttled { .. })
    ));
    lock(&dir, "not an address");
    assert!(matches!(
        dir.authenticate(" NOT AN ADDRESS ", "whatever", source(3), Door::Mail),
        Err(DirectoryError::Throttled { .. })
    ));
}

#[test]
fn simultaneous_wrong_passwords_are_all_counted() {
    let (_d, dir) = with_martin();
    let dir = Arc::new(dir);
    let barrier = Arc::new(std::sync::Barrier::new(12));
    let threads: Vec<_> = (0..12u8)
        .map(|i| {
            let (dir, barrier) = (dir.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                dir.authenticate(
                    "dr.martin@hopital.mshub.test",
                    "wrong-pass",
                    source(i),
                    Door::Mail,
                )
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let checked = results
        .iter()
        .filter(|r| matches!(r, Err(DirectoryError::BadCredentials)))
        .count();
    let throttled = results
        .iter()
        .filter(|r| matches!(r, Err(DirectoryError::Throttled { .. })))
        .count();
    // 3 free failures and the one that starts the delays.
    assert!(checked <= 4, "{checked} guesses checked at once");
    assert_eq!(checked + throttled, 12, "{results:?}");
    assert!(matches!(
        dir.authenticate(
            "dr.martin@hopital.mshub.test",
            "demo-martin",
            source(99),
            Door::Mail
        ),
        Err(DirectoryError::Throttled { .. })
    ));
}
