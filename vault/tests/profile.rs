//! The medical profile (`vault/src/profile.rs`): versioned changes that a stale form cannot
//! overwrite, restoring an earlier version, and professionals reading only within a care
//! relationship and only the sections of their profession, audited. Real store and directory
//! in a temporary directory.

mod common;

use common::*;
use mshub_agenda::NaiveDate;
use mshub_vault::profile::{Allergy, Contact, Section, Severity, Vaccination};
use mshub_vault::*;

fn allergy(substance: &str) -> ProfileChange {
    ProfileChange::AddAllergy(Allergy {
        substance: substance.into(),
        reaction: "urticaire".into(),
        severity: Severity::Severe,
    })
}

#[test]
fn each_change_is_a_version_a_stale_form_is_refused_and_an_old_version_comes_back() {
    let hub = hub();
    assert_eq!(
        hub.vault.medical_profile(hub.camille.id).unwrap(),
        (0, MedicalProfile::default())
    );
    let v1 = hub
        .vault
        .change_profile(&hub.camille, &hub.camille, 0, allergy("pénicilline"))
        .unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.change, "Allergie ajoutée : pénicilline");
    assert_eq!(v1.by, hub.camille.address.as_str());
    let v2 = hub
        .vault
        .change_profile(
            &hub.camille,
            &hub.camille,
            1,
            ProfileChange::AddVaccination(Vaccination {
                vaccine: "dTcaP".into(),
                date: NaiveDate::from_ymd_opt(2020, 5, 4).unwrap(),
            }),
        )
        .unwrap();
    assert_eq!(v2.version, 2);

    // A form shown at version 1, posted now: refused, nothing written.
    assert!(matches!(
        hub.vault
            .change_profile(&hub.camille, &hub.camille, 1, allergy("arachide")),
        Err(VaultError::Profile(ProfileRefusal::Stale))
    ));
    let (version, now) = hub.vault.medical_profile(hub.camille.id).unwrap();
    assert_eq!(version, 2);
    assert_eq!(now.allergies.len(), 1);
    assert_eq!(now.vaccinations.len(), 1);

    // Undo the vaccination: version 1 comes back as version 3.
    let v3 = hub
        .vault
        .change_profile(&hub.camille, &hub.camille, 2, ProfileChange::Restore(1))
        .unwrap();
    assert_eq!(v3.version, 3);
    assert!(v3.change.starts_with("Version du "), "{}", v3.change);
    assert_eq!(v3.profile, v1.profile);
    let history = hub.vault.profile_history(hub.camille.id).unwrap();
    assert_eq!(
        history.iter().map(|h| h.version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert_eq!(hub.audits("profile.change").len(), 3);
    hub.store.verify_audit().unwrap();
}

#[test]
fn absurd_entries_are_refused_in_french_and_nothing_is_half_saved() {
    let hub = hub();
    let refusals = [
        (
            ProfileChange::AddVaccination(Vaccination {
                vaccine: "grippe".into(),
                date: NaiveDate::from_ymd_opt(2999, 1, 1).unwrap(),
            }),
            "dans le futur",
        ),
        (
            ProfileChange::AddAllergy(Allergy {
                substance: "x".repeat(10 * 1024),
                reaction: String::new(),
                severity: Severity::Unknown,
            }),
            "raccourcissez",
        ),
        (allergy("   "), "est vide"),
        (
            ProfileChange::AddContact(Contact {
                name: "Léa".into(),
                relation: String::new(),
                phone: "12".into(),
            }),
            "téléphone",
        ),
        (
            ProfileChange::Remove {
                section: Section::Allergies,
                index: 3,
            },
            "n'existe plus",
        ),
        (ProfileChange::Restore(7), "n'est plus conservée"),
    ];
    for (change, expected) in refusals {
        match hub
            .vault
            .change_profile(&hub.camille, &hub.camille, 0, change.clone())
        {
            Err(VaultError::Profile(r)) => {
                assert!(r.to_string().contains(expected), "{change:?}: {r}")
            }
            other => panic!("{change:?}: {other:?}"),
        }
    }
    assert_eq!(hub.vault.medical_profile(hub.camille.id).unwrap().0, 0);
    assert!(hub.audits("profile.change").is_empty());
    // Only a patient has a profile.
    assert!(matches!(
        hub.vault
            .change_profile(&hub.martin, &hub.martin, 0, allergy("pollen")),
        Err(VaultError::NotAPatient(_))
    ));
}

#[test]
fn professionals_read_within_a_relationship_the_sections_of_their_profession() {
    let hub = hub();
    let mut v = 0;
    for change in [
        allergy("pénicilline"),
        ProfileChange::AddContact(Contact {
            name: "Léa Durand".into(),
            relation: "fille".into(),
            phone: "06 12 34 56 78".into(),
        }),
    ] {
        v = hub
            .vault
            .change_profile(&hub.camille, &hub.camille, v, change)
            .unwrap()
            .version;
    }
    // No relationship: refused and audited.
    assert!(matches!(
        hub.vault
            .profile_for_professional(&hub.camille, &hub.dubois),
        Err(VaultError::Refused(Denial::NoRelationship))
    ));
    let denied = hub.audits("profile.read.denied");
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].event.actor, hub.dubois.address.as_str());

    // A physician who follows her reads everything.
    hub.vault
        .add_relationship(&hub.camille, &hub.martin, Relationship::Follows, None)
        .unwrap();
    let ProfileRead {
        sections, profile, ..
    } = hub
        .vault
        .profile_for_professional(&hub.camille, &hub.martin)
        .unwrap();
    assert_eq!(sections.len(), Section::ALL.len());
    assert_eq!(profile.allergies[0].substance, "pénicilline");
    assert_eq!(profile.contacts[0].name, "Léa Durand");
    let read = hub.audits("profile.read");
    assert_eq!(read.len(), 1);
    assert_eq!(
        read[0].event.detail,
        format!("patient:{} ground:follows", hub.camille.id)
    );

    // A pharmacist she granted access reads allergies, not whom to call.
    hub.vault
        .add_relationship(&hub.camille, &hub.pharmacist, Relationship::Grant, None)
        .unwrap();
    let ProfileRead {
        sections, profile, ..
    } = hub
        .vault
        .profile_for_professional(&hub.camille, &hub.pharmacist)
        .unwrap();
    assert!(sections.contains(&Section::Allergies));
    assert!(!sections.contains(&Section::Contacts));
    assert_eq!(profile.allergies.len(), 1);
    assert!(profile.contacts.is_empty());

    // Blocked: nothing, whatever the relationship.
    hub.vault
        .block_professional(&hub.camille, &hub.martin.address)
        .unwrap();
    assert!(matches!(
        hub.vault
            .profile_for_professional(&hub.camille, &hub.martin),
        Err(VaultError::Refused(Denial::Blocked))
    ));
    hub.store.verify_audit().unwrap();
}
