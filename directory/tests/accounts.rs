//! The directory over a real embedded store: account rules, logins, the trust space.

use std::net::IpAddr;
use std::sync::Arc;

use mshub_directory::*;
use mshub_store::{AccountId, MasterKey, SpecialUse, Store};

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

fn addr(s: &str) -> Address {
    Address::try_from(s).unwrap()
}

fn camille() -> AccountKind {
    AccountKind::Patient {
        ins: Ins::try_from("284057511204339").unwrap(),
        given_name: "Camille".into(),
        family_name: "Durand".into(),
        birth_date: BirthDate::try_from("1984-05-12").unwrap(),
        sex: Sex::Female,
    }
}

fn martin() -> AccountKind {
    AccountKind::Professional {
        rpps: Rpps::try_from("10003456786").unwrap(),
        given_name: "Jean".into(),
        family_name: "Martin".into(),
        profession: Profession::Physician,
        specialty: "médecine générale".into(),
        city: String::new(),
    }
}

const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[test]
fn patient_lives_at_ins_on_the_patient_domain() {
    let (_d, dir) = directory();
    let err = dir
        .add_account(addr("camille@patient.mshub.test"), camille(), None, "test")
        .unwrap_err();
    assert!(
        matches!(err, DirectoryError::PatientAddressMismatch { .. }),
        "{err}"
    );
    let a = dir
        .add_account(
            addr("284057511204339@patient.mshub.test"),
            camille(),
            Some("demo-camille"),
            "test",
        )
        .unwrap();
    assert_eq!(dir.account_by_address(&a.address).unwrap().unwrap(), a);
    // Provisioned: keys and special-use folders exist.
    let inbox = dir
        .store()
        .special_mailbox(a.id, SpecialUse::Inbox)
        .unwrap();
    assert_eq!(inbox.name, "INBOX");
}

#[test]
fn patient_identity_must_agree_with_the_ins() {
    let (_d, dir) = directory();
    let with = |birth: &str, sex: Sex| AccountKind::Patient {
        ins: Ins::try_from("284057511204339").unwrap(),
        given_name: "Camille".into(),
        family_name: "Durand".into(),
        birth_date: BirthDate::try_from(birth).unwrap(),
        sex,
    };
    let address = addr("284057511204339@patient.mshub.test");
    for (birth, sex, word) in [
        ("1984-05-12", Sex::Male, "sex"),
        ("1985-05-12", Sex::Female, "year"),
        ("1984-06-12", Sex::Female, "month"),
    ] {
        let err = dir
            .add_account(address.clone(), with(birth, sex), None, "t")
            .unwrap_err();
        assert!(
            matches!(err, DirectoryError::IdentityMismatch { .. })
                && err.to_string().contains(word),
            "{birth} {sex:?}: {err}"
        );
    }
    dir.add_account(address, with("1984-05-30", Sex::Unknown), None, "t")
        .unwrap();
}

#[test]
fn professionals_cannot_live_on_the_patient_domain_nor_outside_local_domains() {
    let (_d, dir) = directory();
    assert!(matches!(
        dir.add_account(addr("dr.x@patient.mshub.test"), martin(), None, "t"),
        Err(DirectoryError::InvalidAddress { .. })
    ));
    assert!(matches!(
        dir.add_account(addr("dr.x@elsewhere.test"), martin(), None, "t"),
        Err(DirectoryError::NotLocalDomain(_))
    ));
}

#[test]
fn an_address_is_taken_once() {
    let (_d, dir) = directory();
    dir.add_account(addr("dr.martin@hopital.mshub.test"), martin(), None, "t")
        .unwrap();
    assert!(matches!(
        dir.add_account(addr("Dr.Martin@hopital.mshub.test"), martin(), None, "t"),
        Err(DirectoryError::AddressTaken(_))
    ));
    assert_eq!(dir.accounts().unwrap().len(), 1);
}

#[test]
fn organisation_members_must_exist() {
    let (_d, dir) = directory();
    let lab = AccountKind::Organisation {
        name: "Laboratoire".into(),
        members: vec![addr("dr.martin@hopital.mshub.test")],
    };
    assert!(matches!(
        dir.add_account(addr("labo@hopital.mshub.test"), lab.clone(), None, "t"),
        Err(DirectoryError::NoSuchAccount(_))
    ));
    dir.add_account(addr("dr.martin@hopital.mshub.test"), martin(), None, "t")
        .unwrap();
    dir.add_account(addr("labo@hopital.mshub.test"), lab, None, "t")
        .unwrap();
    let orgs = dir
        .organisations_of(&addr("dr.martin@hopital.mshub.test"))
        .unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].address.as_str(), "labo@hopital.mshub.test");
}

#[test]
fn login_checks_password_and_is_throttled() {
    let (_d, dir) = directory();
    dir.add_account(
        addr("dr.martin@hopital.mshub.test"),
        martin(),
        Some("demo-martin"),
        "t",
    )
    .unwrap();
    let ok = dir
        .authenticate(
            "DR.MARTIN@hopital.mshub.test",
            "demo-martin",
            HOME,
            Door::Mail,
        )
        .unwrap();
    assert_eq!(ok.address.as_str(), "dr.martin@hopital.mshub.test");
    for _ in 0..4 {
        assert!(matches!(
            dir.authenticate(
                "dr.martin@hopital.mshub.test",
                "wrong-pass",
                HOME,
                Door::Mail
            ),
            Err(DirectoryError::BadCredentials)
        ));
    }
    // Now even the right password must wait.
    assert!(matches!(
        dir.authenticate(
            "dr.martin@hopital.mshub.test",
            "demo-martin",
            HOME,
            Door::Mail
        ),
        Err(DirectoryError::Throttled { .. })
    ));
}

#[test]
fn unknown_account_fails_like_a_wrong_password() {
    let (_d, dir) = directory();
    assert!(matches!(
        dir.authenticate(
            "nobody@hopital.mshub.test",
            "whatever-pass",
            HOME,
            Door::Web
        ),
        Err(DirectoryError::BadCredentials)
    ));
}

#[test]
fn app_passwords_open_mail_but_not_the_web_and_can_be_revoked() {
    let (_d, dir) = directory();
    let a = addr("dr.martin@hopital.mshub.test");
    dir.add_account(a.clone(), martin(), Some("demo-martin"), "t")
        .unwrap();
    let (app, clear) = dir.add_app_password(&a, "Thunderbird", "t").unwrap();
    assert!(dir
        .authenticate(a.as_str(), &clear, HOME, Door::Mail)
        .is_ok());
    assert!(dir
        .authenticate(a.as_str(), &clear, HOME, Door::Web)
        .is_err());
    dir.revoke_app_password(&a, app.id, "t").unwrap();
    assert!(dir
        .authenticate(a.as_str(), &clear, "192.0.2.4".parse().unwrap(), Door::Mail)
        .is_err());
}

#[test]
fn disabled_account_cannot_log_in() {
    let (_d, dir) = directory();
    let a = addr("dr.martin@hopital.mshub.test");
    dir.add_account(a.clone(), martin(), Some("demo-martin"), "t")
        .unwrap();
    dir.set_disabled(&a, true, "operator").unwrap();
    assert!(matches!(
        dir.authenticate(a.as_str(), "demo-martin", HOME, Door::Mail),
        Err(DirectoryError::Disabled(_))
    ));
    dir.set_password(&a, "a-new-password", "operator").unwrap();
    dir.set_disabled(&a, false, "operator").unwrap();
    assert!(dir
        .authenticate(a.as_str(), "a-new-password", HOME, Door::Mail)
        .is_ok());
}

#[test]
fn changes_are_audited_and_the_chain_verifies() {
    let (_d, dir) = directory();
    let a = addr("dr.martin@hopital.mshub.test");
    dir.add_account(a.clone(), martin(), Some("demo-martin"), "operator")
        .unwrap();
    dir.set_disabled(&a, true, "operator").unwrap();
    let records = dir.store().audit_records(0, 100).unwrap();
    let actions: Vec<&str> = records.iter().map(|r| r.event.action.as_str()).collect();
    assert!(actions.contains(&"account.create"), "{actions:?}");
    assert!(actions.contains(&"account.disable"), "{actions:?}");
    assert_eq!(
        dir.store().verify_audit().unwrap().records,
        records.len() as u64
    );
}

#[test]
fn trust_space_holds_local_and_trusted_domains() {
    let (_d, dir) = directory();
    let peer = Domain::try_from("autre-operateur.test").unwrap();
    assert!(!dir.is_in_trust_space(&peer).unwrap());
    dir.set_domain(
        DomainEntry {
            domain: peer.clone(),
            role: DomainRole::Trusted {
                route: Some(Route::try_from("127.0.0.1:3525").unwrap()),
                tls: TlsPolicy::MutualTls,
                certificate_names: Vec::new(),
            },
        },
        "operator",
    )
    .unwrap();
    assert!(dir.is_in_trust_space(&peer).unwrap());
    assert!(!dir.is_local(&peer).unwrap());
    assert!(dir
        .is_local(&Domain::try_from("patient.mshub.test").unwrap())
        .unwrap());
    assert_eq!(dir.domains().unwrap().len(), 4);
}

#[test]
fn names_and_birth_dates_are_not_readable_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let marker = format!("Zoé-{}", &MasterKey::generate()[..12]);
    {
        let store = Store::open(dir.path(), MasterKey::new(&key).unwrap()).unwrap();
        let directory =
            Directory::open(Arc::new(store), Domain::try_from("mshub.test").unwrap()).unwrap();
        let kind = AccountKind::Patient {
            ins: Ins::try_from("284057511204339").unwrap(),
            given_name: marker.clone(),
            family_name: format!("{marker}-Durand"),
            birth_date: BirthDate::try_from("1984-05-29").unwrap(),
            sex: Sex::Female,
        };
        let a = directory
            .add_account(
                addr("284057511204339@patient.mshub.test"),
                kind.clone(),
                None,
                "t",
            )
            .unwrap();
        // Read back (through the cache) and changed (re-sealed).
        assert_eq!(directory.account(a.id).unwrap().unwrap().kind, kind);
        directory.set_disabled(&a.address, true, "t").unwrap();
    }
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        for needle in [marker.as_bytes(), b"1984-05-29".as_slice()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} found in {}",
                String::from_utf8_lossy(needle),
                p.display()
            );
        }
    }
    // Reopened with the master key (no cache), the identity is intact.
    let store = Store::open(dir.path(), MasterKey::new(&key).unwrap()).unwrap();
    let directory =
        Directory::open(Arc::new(store), Domain::try_from("mshub.test").unwrap()).unwrap();
    let a = directory
        .account_by_address(&addr("284057511204339@patient.mshub.test"))
        .unwrap()
        .unwrap();
    assert!(a.disabled);
    assert!(matches!(a.kind, AccountKind::Patient { ref given_name, .. } if *given_name == marker));
}

#[test]
fn professionals_are_found_by_name_profession_specialty_city_or_rpps_never_patients() {
    let (_d, dir) = directory();
    dir.add_account(
        addr("284057511204339@patient.mshub.test"),
        camille(),
        None,
        "test",
    )
    .unwrap();
    let martin = dir
        .add_account(
            addr("jean.martin@hopital.mshub.test"),
            martin(),
            None,
            "test",
        )
        .unwrap();
    let lefevre = dir
        .add_account(
            addr("a.lefevre@hopital.mshub.test"),
            AccountKind::Professional {
                rpps: Rpps::try_from("10003456794").unwrap(),
                given_name: "Agnès".into(),
                family_name: "Lefèvre".into(),
                profession: Profession::Physician,
                specialty: "Cardiologie".into(),
                city: "Saint-Étienne".into(),
            },
            None,
            "test",
        )
        .unwrap();
    let found = |q: &str| -> Vec<AccountId> {
        dir.search_professionals(q, 10)
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect()
    };
    // Accents and case ignored; every word must match; sorted by family name.
    assert_eq!(found("LEFEVRE"), [lefevre.id]);
    assert_eq!(found("cardiologie saint-etienne"), [lefevre.id]);
    assert_eq!(found("médecin"), [lefevre.id, martin.id]);
    assert_eq!(found("10003456786"), [martin.id]);
    assert_eq!(found("martin cardiologie"), Vec::<AccountId>::new());
    // Patients are never found, nor is anyone by an empty query.
    assert!(found("Camille").is_empty());
    assert!(found("284057511204339").is_empty());
    assert!(found("   ").is_empty());
    assert_eq!(dir.search_professionals("médecin", 1).unwrap().len(), 1);
    // A disabled professional is not offered.
    dir.set_disabled(&lefevre.address, true, "test").unwrap();
    assert_eq!(found("médecin"), [martin.id]);
}

#[test]
fn a_store_written_before_the_professionals_index_is_indexed_once_at_open() {
    use mshub_store::{Batch, Tree};
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    let directory =
        Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap();
    directory
        .set_domain(
            DomainEntry {
                domain: Domain::try_from("hopital.mshub.test").unwrap(),
                role: DomainRole::Local,
            },
            "test",
        )
        .unwrap();
    let martin = directory
        .add_account(
            addr("jean.martin@hopital.mshub.test"),
            martin(),
            None,
            "test",
        )
        .unwrap();
    // As an older store: no index, no marker.
    let index = Tree("directory-professional");
    let mut batch = Batch::new();
    for (k, _) in store.kv().scan(index, &[], None, None).unwrap() {
        batch.remove(index, k);
    }
    batch.remove(
        Tree("directory-migration"),
        b"professional-index-v1".to_vec(),
    );
    let _ = store.kv().commit(&batch).unwrap();
    assert!(directory
        .search_professionals("martin", 5)
        .unwrap()
        .is_empty());
    let reopened = Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap();
    let found: Vec<AccountId> = reopened
        .search_professionals("martin", 5)
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(found, [martin.id]);
    assert_eq!(store.kv().scan(index, &[], None, None).unwrap().len(), 1);
}

#[test]
fn an_organisations_members_change_and_its_index_follows() {
    let (_d, dir) = directory();
    let martin = dir
        .add_account(
            addr("jean.martin@hopital.mshub.test"),
            martin(),
            None,
            "test",
        )
        .unwrap();
    let labo = dir
        .add_account(
            addr("labo@hopital.mshub.test"),
            AccountKind::Organisation {
                name: "Laboratoire".into(),
                members: Vec::new(),
            },
            None,
            "test",
        )
        .unwrap();
    let members = |dir: &Directory| match dir.account(labo.id).unwrap().unwrap().kind {
        AccountKind::Organisation { members, .. } => members,
        other => panic!("{other:?}"),
    };
    assert!(dir.organisations_of(&martin.address).unwrap().is_empty());
    dir.set_member(&labo.address, &martin.address, true, "op")
        .unwrap();
    // Twice is once.
    dir.set_member(&labo.address, &martin.address, true, "op")
        .unwrap();
    assert_eq!(members(&dir), std::slice::from_ref(&martin.address));
    assert_eq!(
        dir.organisations_of(&martin.address).unwrap()[0].id,
        labo.id
    );
    dir.set_member(&labo.address, &martin.address, false, "op")
        .unwrap();
    assert!(members(&dir).is_empty());
    assert!(dir.organisations_of(&martin.address).unwrap().is_empty());
    // Unknown members and non-organisations are refused.
    assert!(matches!(
        dir.set_member(
            &labo.address,
            &addr("nobody@hopital.mshub.test"),
            true,
            "op"
        ),
        Err(DirectoryError::NoSuchAccount(_))
    ));
    assert!(dir
        .set_member(&martin.address, &labo.address, true, "op")
        .is_err());
}
