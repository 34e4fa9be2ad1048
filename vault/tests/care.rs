//! Care relationships (DESIGN §4 "Vault visibility", `vault/src/care.rs`): beyond what it
//! authored, a professional reads a patient's space only within a relationship — médecin
//! traitant, "me suit", a grant, correspondence, emergency access — and the patient decides.
//! Real store and directory in a temporary directory.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use mshub_directory::{Account, AccountKind, Address, Profession};
use mshub_store::{AccountId, Batch, Tree};
use mshub_vault::*;

const BIOLOGY: &str = "11502-2";
const IMAGING: &str = "18748-4";
const PRESCRIPTION: &str = "57833-6";
const CERTIFICATE: &str = "34895-3";

const REASON: &str = "Patiente inconsciente aux urgences, recherche d'allergies";

/// Files for Camille, as sent by `sender`, one XDM document per (LOINC code, title); returns
/// their ids in that order. Every document declares Dr Martin as its author: only the
/// authenticated sender counts.
fn file_from(hub: &Hub, sender: &Address, docs: &[(&str, &str)]) -> Vec<DocumentId> {
    let count = docs.len();
    let docs: Vec<XdmDoc> = docs
        .iter()
        .enumerate()
        .map(|(i, (code, title))| {
            XdmDoc::new(
                &format!("DOC{:04}.PDF", i + 1),
                code,
                title,
                &pdf(&format!("{sender} {title}")),
            )
        })
        .collect();
    let raw = message(
        &format!("{CAMILLE_INS}@patient.mshub.test"),
        &[(
            "IHE_XDM.ZIP",
            "application/zip",
            &xdm_zip(&[("SUBSET01", docs)]),
        )],
        "",
    );
    let filed = hub
        .vault
        .file_message(&hub.camille, Some(sender), &raw)
        .documents();
    assert_eq!(filed.len(), count, "all filed");
    filed
}

/// A lab result, an imaging report and a prescription, filed by the lab's mailbox.
fn three_documents(hub: &Hub) -> [DocumentId; 3] {
    let filed = file_from(
        hub,
        &hub.labo.address,
        &[
            (BIOLOGY, "Bilan sanguin"),
            (IMAGING, "Radio du thorax"),
            (PRESCRIPTION, "Ordonnance"),
        ],
    );
    [filed[0], filed[1], filed[2]]
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

/// Why the list of Camille's documents was refused to `professional`.
fn list_refusal(hub: &Hub, professional: &Account) -> Denial {
    match hub
        .vault
        .documents_for_professional(&hub.camille, professional)
    {
        Err(VaultError::Refused(denial)) => denial,
        other => panic!("expected the list refused, got {other:?}"),
    }
}

fn list(hub: &Hub, professional: &Account) -> Vec<DocumentId> {
    ids(&hub
        .vault
        .documents_for_professional(&hub.camille, professional)
        .unwrap())
}

/// The details of the audit records with this action and actor.
fn audited(hub: &Hub, action: &str, actor: &Account) -> Vec<String> {
    hub.audits(action)
        .into_iter()
        .filter(|r| r.event.actor == actor.address.as_str())
        .map(|r| r.event.detail)
        .collect()
}

fn standing(hub: &Hub, viewer: &Account, now: i64) -> Option<Standing> {
    let settings = hub.vault.patient_settings(hub.camille.id).unwrap();
    hub.vault
        .standing(hub.camille.id, viewer, &settings, now)
        .unwrap()
}

fn now() -> i64 {
    mshub_store::now()
}

/// Asserts `t` is within the span of the clock readings around it.
fn between(before: i64, t: i64, after: i64) {
    assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
}

/// The MTA's conversation index, as the hub hands it to the vault: (patient, who wrote,
/// when first).
#[derive(Default)]
struct Letters(Mutex<Vec<(AccountId, Address, i64)>>);

impl Letters {
    fn wrote(&self, patient: &Account, correspondent: &Address, at: i64) {
        self.0
            .lock()
            .unwrap()
            .push((patient.id, correspondent.clone(), at));
    }
}

impl Correspondence for Letters {
    fn first_written(
        &self,
        patient: AccountId,
        correspondent: &Address,
    ) -> std::result::Result<Option<i64>, String> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, a, _)| *p == patient && a == correspondent)
            .map(|(_, _, at)| *at)
            .min())
    }

    fn correspondents(
        &self,
        patient: AccountId,
    ) -> std::result::Result<Vec<(Address, i64)>, String> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _, _)| *p == patient)
            .map(|(_, a, at)| (a.clone(), *at))
            .collect())
    }
}

/// Rebuilds the hub's vault (same store and directory) through `f`.
fn rewire(hub: &mut Hub, f: impl FnOnce(Vault) -> Vault) {
    let vault = std::mem::replace(
        &mut hub.vault,
        Vault::new(hub.store.clone(), hub.directory.clone()),
    );
    hub.vault = f(vault);
}

/// Wires a conversation index into the hub's vault.
fn with_letters(hub: &mut Hub) -> Arc<Letters> {
    let letters = Arc::new(Letters::default());
    let c: Arc<dyn Correspondence> = letters.clone();
    rewire(hub, |v| v.with_correspondence(c));
    letters
}

fn address(text: &str) -> Address {
    Address::try_from(text).unwrap()
}

// --- No relationship ------------------------------------------------------------------------

#[test]
fn an_unrelated_physician_is_refused_every_read_and_the_list_and_each_refusal_is_audited() {
    let hub = hub();
    let docs = three_documents(&hub);
    assert_eq!(standing(&hub, &hub.dubois, now()), None);

    assert_eq!(list_refusal(&hub, &hub.dubois), Denial::NoRelationship);
    assert_eq!(
        audited(&hub, "document.list.denied", &hub.dubois),
        [format!("patient:{} ground:no-relationship", hub.camille.id)]
    );

    for id in docs {
        assert_eq!(
            denial(hub.vault.read_document(&hub.dubois, id)),
            Denial::NoRelationship
        );
        assert!(matches!(
            hub.vault.read_rendering(&hub.dubois, id),
            Err(VaultError::Denied {
                denial: Denial::NoRelationship,
                ..
            })
        ));
    }
    let denied = hub.audits("document.read.denied");
    assert_eq!(denied.len(), 6);
    for (r, id) in denied
        .iter()
        .zip([docs[0], docs[0], docs[1], docs[1], docs[2], docs[2]])
    {
        assert_eq!(r.event.actor, hub.dubois.address.as_str());
        assert_eq!(r.event.subject, format!("document:{id}"));
        assert_eq!(
            r.event.detail,
            format!("patient:{} ground:no-relationship", hub.camille.id)
        );
    }
    assert!(hub.audits("document.read").is_empty());
    // Refused reads are no access: the patient is not told of a "first read".
    assert_eq!(hub.inbox(&hub.camille).len(), 1, "the filing notice only");
    hub.store.verify_audit().unwrap();
}

// --- Relationships the patient records ----------------------------------------------------------

#[test]
fn a_follower_reads_until_the_patient_ends_the_relationship() {
    let hub = hub();
    let [bio, imaging, prescription] = three_documents(&hub);
    let before = now();
    let link = hub
        .vault
        .add_relationship(&hub.camille, &hub.dubois, Relationship::Follows, None)
        .unwrap();
    between(before, link.since, now());
    assert_eq!(
        (link.relationship, link.professional, link.until),
        (Relationship::Follows, hub.dubois.id, None)
    );
    assert_eq!(
        audited(&hub, "vault.care.follows", &hub.camille),
        [format!(
            "patient:{} professional:{}",
            hub.camille.id, hub.dubois.address
        )]
    );

    assert_eq!(list(&hub, &hub.dubois), [bio, imaging, prescription]);
    assert_eq!(
        hub.vault.read_document(&hub.dubois, bio).unwrap(),
        pdf(&format!("{} Bilan sanguin", hub.labo.address))
    );
    let reads = audited(&hub, "document.read", &hub.dubois);
    assert_eq!(reads.len(), 1);
    assert!(
        reads[0].contains("ground:care:follows matrix:physician×biologie"),
        "{}",
        reads[0]
    );

    hub.vault
        .end_relationship(&hub.camille, &hub.dubois, Relationship::Follows)
        .unwrap();
    assert_eq!(
        audited(&hub, "vault.care.end.follows", &hub.camille).len(),
        1
    );
    assert_eq!(standing(&hub, &hub.dubois, now()), None);
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, bio)),
        Denial::NoRelationship
    );
    assert_eq!(list_refusal(&hub, &hub.dubois), Denial::NoRelationship);
}

#[test]
fn a_grant_that_ended_refuses_and_none_is_granted_in_the_past() {
    let hub = hub();
    let [bio, _, _] = three_documents(&hub);
    // Granting until a past time is refused: nothing is recorded.
    assert!(hub
        .vault
        .add_relationship(
            &hub.camille,
            &hub.dubois,
            Relationship::Grant,
            Some(now() - 10),
        )
        .is_err());
    assert_eq!(standing(&hub, &hub.dubois, now()), None);
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, bio)),
        Denial::NoRelationship
    );
    assert_eq!(list_refusal(&hub, &hub.dubois), Denial::NoRelationship);
    // A grant for a minute: active now, over once the minute has passed.
    let link = hub
        .vault
        .add_relationship(
            &hub.camille,
            &hub.dubois,
            Relationship::Grant,
            Some(now() + 60),
        )
        .unwrap();
    assert!(link.is_active(now()));
    assert!(!link.is_active(now() + 61));
    assert!(standing(&hub, &hub.dubois, now()).is_some());
    assert_eq!(standing(&hub, &hub.dubois, now() + 61), None);
}

#[test]
fn a_grant_until_a_future_date_allows_until_then() {
    let hub = hub();
    let [bio, _, _] = three_documents(&hub);
    let until = now() + 3600;
    let link = hub
        .vault
        .add_relationship(&hub.camille, &hub.dubois, Relationship::Grant, Some(until))
        .unwrap();
    assert_eq!(link.until, Some(until));
    assert!(
        audited(&hub, "vault.care.grant", &hub.camille)[0].ends_with(&format!(" until:{until}"))
    );
    assert!(hub.vault.read_document(&hub.dubois, bio).is_ok());
    let reads = audited(&hub, "document.read", &hub.dubois);
    assert!(
        reads[0].contains("ground:care:grant matrix:physician×biologie"),
        "{}",
        reads[0]
    );
    // Its end is when the grant ends.
    assert_eq!(
        standing(&hub, &hub.dubois, until - 1).map(|s| s.relationship),
        Some(Relationship::Grant)
    );
    assert_eq!(standing(&hub, &hub.dubois, until), None);
}

#[test]
fn a_grant_without_an_end_allows_until_revoked() {
    let hub = hub();
    let [bio, _, _] = three_documents(&hub);
    let link = hub
        .vault
        .add_relationship(&hub.camille, &hub.nurse, Relationship::Grant, None)
        .unwrap();
    assert_eq!(link.until, None);
    assert!(link.is_active(i64::MAX));
    assert!(hub.vault.read_document(&hub.nurse, bio).is_ok());
    hub.vault
        .end_relationship(&hub.camille, &hub.nurse, Relationship::Grant)
        .unwrap();
    assert_eq!(
        denial(hub.vault.read_document(&hub.nurse, bio)),
        Denial::NoRelationship
    );
}

#[test]
fn only_follows_and_grant_are_recorded_by_the_patient_and_only_for_professionals() {
    let hub = hub();
    for relationship in [
        Relationship::ReferringDoctor,
        Relationship::Correspondent,
        Relationship::Emergency,
    ] {
        assert!(matches!(
            hub.vault
                .add_relationship(&hub.camille, &hub.dubois, relationship, None),
            Err(VaultError::Data(_))
        ));
    }
    assert!(matches!(
        hub.vault
            .add_relationship(&hub.camille, &hub.labo, Relationship::Follows, None),
        Err(VaultError::NotAProfessional(_))
    ));
    assert!(matches!(
        hub.vault
            .add_relationship(&hub.dubois, &hub.bernard, Relationship::Follows, None),
        Err(VaultError::NotAPatient(_))
    ));
    assert_eq!(standing(&hub, &hub.dubois, now()), None);
}

// --- Médecin traitant and masking -----------------------------------------------------------

#[test]
fn the_referring_doctor_reads_masked_documents_and_a_follower_does_not() {
    let hub = hub();
    let [bio, imaging, _] = three_documents(&hub);
    let before = now();
    hub.vault
        .set_referring_doctor(&hub.camille, Some(&hub.bernard.address))
        .unwrap();
    let since = hub
        .vault
        .patient_settings(hub.camille.id)
        .unwrap()
        .referring_since
        .expect("dated");
    between(before, since, now());
    assert_eq!(
        standing(&hub, &hub.bernard, now()),
        Some(Standing {
            relationship: Relationship::ReferringDoctor,
            since,
            reason: None
        })
    );
    hub.vault
        .add_relationship(&hub.camille, &hub.dubois, Relationship::Follows, None)
        .unwrap();
    hub.vault.mask(&hub.camille, bio).unwrap();

    assert!(hub.vault.read_document(&hub.bernard, bio).is_ok());
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, bio)),
        Denial::Masked
    );
    assert!(!list(&hub, &hub.dubois).contains(&bio));
    assert!(list(&hub, &hub.bernard).contains(&bio));
    // What is not masked, both read.
    assert!(hub.vault.read_document(&hub.dubois, imaging).is_ok());
    assert!(hub.vault.read_document(&hub.bernard, imaging).is_ok());

    let bernard = audited(&hub, "document.read", &hub.bernard);
    assert!(
        bernard[0].contains("ground:referring-doctor "),
        "{bernard:?}"
    );
    assert!(
        bernard[1].contains("ground:care:referring-doctor matrix:physician×imagerie"),
        "{bernard:?}"
    );
    let refused = audited(&hub, "document.read.denied", &hub.dubois);
    assert_eq!(
        refused,
        [format!("patient:{} ground:masked", hub.camille.id)]
    );

    // No longer the médecin traitant: the masked document is closed to bernard too.
    hub.vault.set_referring_doctor(&hub.camille, None).unwrap();
    assert_eq!(
        hub.vault
            .patient_settings(hub.camille.id)
            .unwrap()
            .referring_since,
        None
    );
    assert_eq!(
        denial(hub.vault.read_document(&hub.bernard, bio)),
        Denial::NoRelationship
    );
}

// --- Blocking -------------------------------------------------------------------------------

#[test]
fn blocking_wins_over_every_relationship_and_over_emergency() {
    let mut hub = hub();
    let letters = with_letters(&mut hub);
    let [bio, _, _] = three_documents(&hub);
    letters.wrote(&hub.camille, &hub.bernard.address, now() - 100);
    hub.vault
        .set_referring_doctor(&hub.camille, Some(&hub.bernard.address))
        .unwrap();
    for (relationship, until) in [
        (Relationship::Follows, None),
        (Relationship::Grant, Some(now() + 3600)),
    ] {
        hub.vault
            .add_relationship(&hub.camille, &hub.bernard, relationship, until)
            .unwrap();
    }
    // An emergency access under way, then the block.
    hub.vault
        .emergency_access(&hub.dubois, &hub.camille, REASON)
        .unwrap();
    assert!(hub.vault.read_document(&hub.bernard, bio).is_ok());
    assert!(hub.vault.read_document(&hub.dubois, bio).is_ok());

    for blocked in [&hub.bernard, &hub.dubois] {
        hub.vault
            .block_professional(&hub.camille, &blocked.address)
            .unwrap();
        assert_eq!(
            denial(hub.vault.read_document(blocked, bio)),
            Denial::Blocked,
            "{}",
            blocked.address
        );
        assert_eq!(list_refusal(&hub, blocked), Denial::Blocked);
        assert!(matches!(
            hub.vault.emergency_access(blocked, &hub.camille, REASON),
            Err(VaultError::Refused(Denial::Blocked))
        ));
        assert_eq!(
            audited(&hub, "vault.emergency.denied", blocked),
            [format!("patient:{} ground:blocked", hub.camille.id)]
        );
        assert_eq!(
            audited(&hub, "document.read.denied", blocked),
            [format!("patient:{} ground:blocked", hub.camille.id)]
        );
    }
    // The care team says so.
    let team = hub.vault.care_team(&hub.camille).unwrap();
    let bernard = team
        .iter()
        .find(|e| e.professional.id == hub.bernard.id)
        .unwrap();
    assert!(bernard.blocked && !bernard.reads_the_space(now()));

    // Unblocked, the relationships hold again.
    hub.vault
        .unblock_professional(&hub.camille, &hub.bernard.address)
        .unwrap();
    assert!(hub.vault.read_document(&hub.bernard, bio).is_ok());
}

// --- Authorship through an organisation ------------------------------------------------------

#[test]
fn a_member_of_the_filing_organisation_reads_what_it_filed_and_nothing_else() {
    let hub = hub();
    let [bio, imaging, prescription] = three_documents(&hub);
    // Sent by Dr Bernard's own address (its document declares Dr Martin: not trusted).
    let other = file_from(&hub, &hub.bernard.address, &[(BIOLOGY, "Bilan de Bernard")])[0];
    assert_eq!(
        hub.vault.document(other).unwrap().author.address,
        Some(hub.bernard.address.clone())
    );
    assert_eq!(standing(&hub, &hub.martin, now()), None);

    assert_eq!(list(&hub, &hub.martin), [bio, imaging, prescription]);
    for id in [bio, imaging, prescription] {
        assert!(hub.vault.read_document(&hub.martin, id).is_ok());
    }
    let reads = audited(&hub, "document.read", &hub.martin);
    assert_eq!(reads.len(), 3);
    assert!(
        reads.iter().all(|d| d.contains("ground:author ")),
        "{reads:?}"
    );
    assert_eq!(
        denial(hub.vault.read_document(&hub.martin, other)),
        Denial::NoRelationship
    );
    // Membership is martin's only: another physician reads none of the lab's documents, and
    // the lab's mailbox itself is no professional.
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, bio)),
        Denial::NoRelationship
    );
    assert_eq!(
        denial(hub.vault.read_document(&hub.labo, bio)),
        Denial::NotAProfessional
    );
    assert_eq!(list_refusal(&hub, &hub.labo), Denial::NotAProfessional);
    // Bernard, author of the other one, reads it and not the lab's.
    assert_eq!(list(&hub, &hub.bernard), [other]);
}

// --- Correspondence -------------------------------------------------------------------------

#[test]
fn a_physician_who_wrote_to_the_patient_reads_the_space() {
    let mut hub = hub();
    let letters = with_letters(&mut hub);
    let [bio, imaging, prescription] = three_documents(&hub);
    assert_eq!(
        denial(hub.vault.read_document(&hub.bernard, bio)),
        Denial::NoRelationship
    );

    let at = now() - 3 * 86_400;
    letters.wrote(&hub.camille, &hub.bernard.address, at);
    letters.wrote(&hub.camille, &hub.bernard.address, at + 100);
    assert_eq!(
        standing(&hub, &hub.bernard, now()),
        Some(Standing {
            relationship: Relationship::Correspondent,
            since: at,
            reason: None
        })
    );
    assert_eq!(list(&hub, &hub.bernard), [bio, imaging, prescription]);
    assert!(hub.vault.read_document(&hub.bernard, bio).is_ok());
    let reads = audited(&hub, "document.read", &hub.bernard);
    assert!(
        reads[0].contains("ground:care:correspondent matrix:physician×biologie"),
        "{reads:?}"
    );
    // Writing to another patient gives nothing here.
    letters.wrote(&hub.paul, &hub.dubois.address, at);
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, bio)),
        Denial::NoRelationship
    );
}

#[test]
fn an_organisation_mailbox_that_wrote_gives_nothing_to_non_members_nor_more_to_members() {
    let mut hub = hub();
    let letters = with_letters(&mut hub);
    let [bio, _, _] = three_documents(&hub);
    let other = file_from(&hub, &hub.bernard.address, &[(BIOLOGY, "Bilan de Bernard")])[0];
    letters.wrote(&hub.camille, &hub.labo.address, now() - 100);

    // A physician outside the lab.
    assert_eq!(standing(&hub, &hub.dubois, now()), None);
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, bio)),
        Denial::NoRelationship
    );
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, other)),
        Denial::NoRelationship
    );
    assert_eq!(list_refusal(&hub, &hub.dubois), Denial::NoRelationship);
    // The lab's member: what the lab filed (author), not the rest of the space.
    assert_eq!(standing(&hub, &hub.martin, now()), None);
    assert_eq!(
        denial(hub.vault.read_document(&hub.martin, other)),
        Denial::NoRelationship
    );
    assert!(!list(&hub, &hub.martin).contains(&other));
    // The mailbox itself.
    assert_eq!(
        denial(hub.vault.read_document(&hub.labo, bio)),
        Denial::NotAProfessional
    );
    // The care team shows the lab as author, not as a correspondent.
    let team = hub.vault.care_team(&hub.camille).unwrap();
    let labo = team
        .iter()
        .find(|e| e.professional.id == hub.labo.id)
        .expect("the lab's entry");
    assert!(labo.authored);
    assert!(labo.links.is_empty(), "{:?}", labo.links);
}

// --- Profession and specialty ---------------------------------------------------------------

#[test]
fn a_radiologist_reads_what_its_specialty_allows_and_not_certificates() {
    let hub = hub();
    let matrix = AccessMatrix::builtin();
    let row = matrix
        .specialty(Profession::Physician, "Radiologue")
        .expect("a radiology row");
    assert_eq!(row.slug, "radio-diagnostic");
    assert!(row.allows(Category::Imagerie) && !row.allows(Category::Certificats));
    // A physician without specialty sees certificates: the refusal is the specialty's.
    assert!(matrix.allows_with(Profession::Physician, "", Category::Certificats));

    let radiologist = hub
        .directory
        .add_account(
            address("jeanne.imagerie@chu.mshub.test"),
            AccountKind::Professional {
                rpps: rpps(1000345690),
                given_name: "Jeanne".into(),
                family_name: "Imagerie".into(),
                profession: Profession::Physician,
                specialty: "Radiologue".into(),
                city: String::new(),
            },
            None,
            "test",
        )
        .unwrap();
    let filed = file_from(
        &hub,
        &hub.labo.address,
        &[
            (IMAGING, "Radio du thorax"),
            (BIOLOGY, "Créatinine"),
            (CERTIFICATE, "Certificat de sport"),
        ],
    );
    let [imaging, bio, certificate] = [filed[0], filed[1], filed[2]];
    assert_eq!(
        hub.vault.document(certificate).unwrap().category,
        Category::Certificats
    );
    for pro in [&radiologist, &hub.dubois] {
        hub.vault
            .add_relationship(&hub.camille, pro, Relationship::Follows, None)
            .unwrap();
    }

    assert_eq!(list(&hub, &radiologist), [imaging, bio]);
    assert!(hub.vault.read_document(&radiologist, imaging).is_ok());
    assert!(hub.vault.read_document(&radiologist, bio).is_ok());
    assert_eq!(
        denial(hub.vault.read_document(&radiologist, certificate)),
        Denial::Matrix
    );
    let reads = audited(&hub, "document.read", &radiologist);
    assert!(
        reads[0].contains("ground:care:follows matrix:physician×imagerie"),
        "{reads:?}"
    );
    assert_eq!(
        audited(&hub, "document.read.denied", &radiologist),
        [format!("patient:{} ground:matrix", hub.camille.id)]
    );
    // The same relationship without the specialty: the certificate is read.
    assert!(hub.vault.read_document(&hub.dubois, certificate).is_ok());

    // Named médecin traitant, the radiologist still does not see the certificate, masked or
    // not: masking narrows what the table allows, never widens it.
    hub.vault
        .set_referring_doctor(&hub.camille, Some(&radiologist.address))
        .unwrap();
    hub.vault.mask(&hub.camille, certificate).unwrap();
    assert_eq!(
        denial(hub.vault.read_document(&radiologist, certificate)),
        Denial::Matrix
    );
    assert_eq!(list(&hub, &radiologist), [imaging, bio]);
    hub.vault.mask(&hub.camille, imaging).unwrap();
    assert!(hub.vault.read_document(&radiologist, imaging).is_ok());
}

#[test]
fn a_pharmacist_with_a_relationship_is_refused_imaging() {
    let hub = hub();
    let [bio, imaging, prescription] = three_documents(&hub);
    hub.vault
        .add_relationship(&hub.camille, &hub.pharmacist, Relationship::Follows, None)
        .unwrap();
    assert_eq!(list(&hub, &hub.pharmacist), [bio, prescription]);
    assert!(hub
        .vault
        .read_document(&hub.pharmacist, prescription)
        .is_ok());
    assert_eq!(
        denial(hub.vault.read_document(&hub.pharmacist, imaging)),
        Denial::Matrix
    );
    assert_eq!(
        audited(&hub, "document.read.denied", &hub.pharmacist),
        [format!("patient:{} ground:matrix", hub.camille.id)]
    );
}

// --- Emergency access -----------------------------------------------------------------------

#[test]
fn an_emergency_access_needs_a_reason_of_10_to_500_characters() {
    let hub = hub();
    let [bio, _, _] = three_documents(&hub);
    let long = "x".repeat(501);
    for reason in [
        "",
        "urgence",
        // Nine characters once white space is collapsed.
        "  a  b\n c\t d   e  ",
        "Patiente\u{7} inconsciente",
        long.as_str(),
    ] {
        assert!(
            matches!(
                hub.vault
                    .emergency_access(&hub.dubois, &hub.camille, reason),
                Err(VaultError::InvalidReason { min: 10, max: 500 })
            ),
            "{reason:?}"
        );
    }
    assert_eq!(standing(&hub, &hub.dubois, now()), None);
    assert!(hub.audits("vault.emergency").is_empty());
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, bio)),
        Denial::NoRelationship
    );
    // The bounds themselves are accepted.
    assert!(hub
        .vault
        .emergency_access(&hub.dubois, &hub.camille, &"y".repeat(500))
        .is_ok());
    assert!(hub
        .vault
        .emergency_access(&hub.bernard, &hub.camille, " Tachycardie ")
        .is_ok());
    // Only a professional asks, about a patient.
    assert!(matches!(
        hub.vault.emergency_access(&hub.labo, &hub.camille, REASON),
        Err(VaultError::NotAProfessional(_))
    ));
    assert!(matches!(
        hub.vault
            .emergency_access(&hub.dubois, &hub.bernard, REASON),
        Err(VaultError::NotAPatient(_))
    ));
}

#[test]
fn an_emergency_access_lasts_24_hours_and_every_read_is_audited_with_its_reason() {
    let hub = hub();
    let [bio, imaging, _] = three_documents(&hub);
    assert_eq!(hub.vault.emergency_duration(), 24 * 3600);
    let before = now();
    let link = hub
        .vault
        .emergency_access(
            &hub.dubois,
            &hub.camille,
            &format!("  {}\n\t ", REASON.replace(' ', "   ")),
        )
        .unwrap();
    let after = now();
    assert_eq!(link.relationship, Relationship::Emergency);
    assert_eq!(link.professional, hub.dubois.id);
    assert_eq!(
        link.reason.as_deref(),
        Some(REASON),
        "white space collapsed"
    );
    assert_eq!(link.by, hub.dubois.address.as_str());
    between(before, link.since, after);
    assert_eq!(link.until, Some(link.since + 24 * 3600));
    assert!(link.is_active(link.since + 24 * 3600 - 1));
    assert!(!link.is_active(link.since + 24 * 3600));

    let opened = audited(&hub, "vault.emergency", &hub.dubois);
    assert_eq!(opened.len(), 1);
    assert!(
        opened[0].starts_with(&format!("patient:{} ", hub.camille.id))
            && opened[0].ends_with(&format!("reason:{REASON}")),
        "{}",
        opened[0]
    );
    assert_eq!(
        standing(&hub, &hub.dubois, now()),
        Some(Standing {
            relationship: Relationship::Emergency,
            since: link.since,
            reason: Some(REASON.into()),
        })
    );

    hub.vault.read_document(&hub.dubois, bio).unwrap();
    hub.vault.read_document(&hub.dubois, imaging).unwrap();
    let reads = audited(&hub, "document.read", &hub.dubois);
    assert_eq!(reads.len(), 2);
    for (detail, category) in reads.iter().zip(["biologie", "imagerie"]) {
        assert!(
            detail.contains(&format!(
                "ground:care:emergency matrix:physician×{category}"
            )) && detail.ends_with(&format!(" reason:{REASON}")),
            "{detail}"
        );
    }
    // In the patient's access history, apart.
    let history = hub.vault.access_history(hub.camille.id).unwrap();
    assert!(history.iter().any(|r| r.event.action == "vault.emergency"));
}

#[test]
fn the_patient_is_told_at_once_of_an_emergency_access_who_and_why() {
    let hub = hub();
    three_documents(&hub);
    let before = hub.inbox(&hub.camille).len();
    hub.vault
        .emergency_access(&hub.dubois, &hub.camille, REASON)
        .unwrap();
    let inbox = hub.inbox(&hub.camille);
    assert_eq!(inbox.len(), before + 1);
    let notice = inbox.last().unwrap();
    assert!(
        notice.contains("Test Dubois (Médecin, luc.dubois@chu.mshub.test)"),
        "{notice}"
    );
    assert!(
        notice.contains(&format!("Motif donné : {REASON}")),
        "{notice}"
    );
    assert!(notice.contains("pour 24 heures"), "{notice}");
    // Subject: "Accès d'urgence à votre espace santé", RFC 2047-encoded.
    assert!(notice.contains("Subject: =?UTF-8?B?"), "{notice}");
}

#[test]
fn an_emergency_access_does_not_open_a_masked_document() {
    let hub = hub();
    let [bio, imaging, _] = three_documents(&hub);
    hub.vault.mask(&hub.camille, bio).unwrap();
    hub.vault
        .emergency_access(&hub.dubois, &hub.camille, REASON)
        .unwrap();
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, bio)),
        Denial::Masked
    );
    assert!(!list(&hub, &hub.dubois).contains(&bio));
    assert!(hub.vault.read_document(&hub.dubois, imaging).is_ok());
}

#[test]
fn a_patient_who_forbids_emergency_access_refuses_it_and_that_is_audited() {
    let hub = hub();
    let [bio, _, _] = three_documents(&hub);
    hub.vault
        .set_emergency_allowed(&hub.camille, false)
        .unwrap();
    assert!(
        hub.vault
            .patient_settings(hub.camille.id)
            .unwrap()
            .emergency_forbidden
    );
    let inbox = hub.inbox(&hub.camille).len();
    assert!(matches!(
        hub.vault
            .emergency_access(&hub.dubois, &hub.camille, REASON),
        Err(VaultError::Refused(Denial::EmergencyForbidden))
    ));
    assert_eq!(
        audited(&hub, "vault.emergency.denied", &hub.dubois),
        [format!(
            "patient:{} ground:emergency-forbidden",
            hub.camille.id
        )]
    );
    assert!(hub.audits("vault.emergency").is_empty());
    assert_eq!(hub.inbox(&hub.camille).len(), inbox, "no notice");
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, bio)),
        Denial::NoRelationship
    );

    hub.vault.set_emergency_allowed(&hub.camille, true).unwrap();
    hub.vault
        .emergency_access(&hub.dubois, &hub.camille, REASON)
        .unwrap();
    assert!(hub.vault.read_document(&hub.dubois, bio).is_ok());
    // Forbidding again ends the access under way, at once.
    hub.vault
        .set_emergency_allowed(&hub.camille, false)
        .unwrap();
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, bio)),
        Denial::NoRelationship
    );
}

#[test]
fn an_emergency_access_ends_after_the_configured_duration() {
    let mut hub = hub();
    rewire(&mut hub, |v| v.with_emergency_duration(10));
    assert_eq!(hub.vault.emergency_duration(), 60, "a minute at least");
    rewire(&mut hub, |v| v.with_emergency_duration(60));
    three_documents(&hub);
    let link = hub
        .vault
        .emergency_access(&hub.dubois, &hub.camille, REASON)
        .unwrap();
    let now = now();
    assert_eq!(link.until, Some(link.since + 60));
    assert!(link.is_active(now));
    assert!(!link.is_active(now + 61));
    assert_eq!(
        standing(&hub, &hub.dubois, now).map(|s| s.relationship),
        Some(Relationship::Emergency)
    );
    assert_eq!(standing(&hub, &hub.dubois, now + 61), None);
    // The care team keeps it, no longer reading the space.
    let team = hub.vault.care_team(&hub.camille).unwrap();
    let dubois = team
        .iter()
        .find(|e| e.professional.id == hub.dubois.id)
        .unwrap();
    assert!(dubois.reads_the_space(now) && !dubois.reads_the_space(now + 61));
}

#[test]
fn the_patient_ends_an_emergency_access_under_way() {
    let hub = hub();
    let [bio, _, _] = three_documents(&hub);
    hub.vault
        .emergency_access(&hub.dubois, &hub.camille, REASON)
        .unwrap();
    assert!(hub.vault.read_document(&hub.dubois, bio).is_ok());
    hub.vault
        .end_relationship(&hub.camille, &hub.dubois, Relationship::Emergency)
        .unwrap();
    assert_eq!(
        denial(hub.vault.read_document(&hub.dubois, bio)),
        Denial::NoRelationship
    );
}

// --- The patient's page "Accès des professionnels" -------------------------------------------

#[test]
fn the_care_team_lists_everyone_who_reads_and_why() {
    let mut hub = hub();
    let letters = with_letters(&mut hub);
    let [bio, _, _] = three_documents(&hub);
    let before = now();
    hub.vault
        .add_relationship(&hub.camille, &hub.dubois, Relationship::Follows, None)
        .unwrap();
    let until = now() + 7 * 86_400;
    hub.vault
        .add_relationship(
            &hub.camille,
            &hub.pharmacist,
            Relationship::Grant,
            Some(until),
        )
        .unwrap();
    hub.vault
        .set_referring_doctor(&hub.camille, Some(&hub.bernard.address))
        .unwrap();
    let wrote = now() - 86_400;
    letters.wrote(&hub.camille, &hub.nurse.address, wrote);
    // The lab's mailbox wrote too: an organisation is no correspondent.
    letters.wrote(&hub.camille, &hub.labo.address, wrote);
    hub.vault
        .block_professional(&hub.camille, &hub.radiology.address)
        .unwrap();
    hub.vault.read_document(&hub.dubois, bio).unwrap();
    let after = now();

    let team = hub.vault.care_team(&hub.camille).unwrap();
    let entry = |who: &Account| -> &CareEntry {
        team.iter()
            .find(|e| e.professional.id == who.id)
            .unwrap_or_else(|| panic!("no entry for {}", who.address))
    };
    let relationships =
        |e: &CareEntry| -> Vec<Relationship> { e.links.iter().map(|l| l.relationship).collect() };
    assert!(team.iter().all(|e| e.professional.id != hub.camille.id));

    let dubois = entry(&hub.dubois);
    assert_eq!(relationships(dubois), [Relationship::Follows]);
    between(before, dubois.links[0].since, after);
    assert_eq!(dubois.links[0].by, hub.camille.address.as_str());
    let last = dubois.last_access.expect("dubois read");
    between(before, last, after);
    assert!(dubois.reads_the_space(after) && !dubois.blocked && !dubois.authored);

    let pharmacist = entry(&hub.pharmacist);
    assert_eq!(relationships(pharmacist), [Relationship::Grant]);
    assert_eq!(pharmacist.links[0].until, Some(until));
    assert!(pharmacist.reads_the_space(until - 1) && !pharmacist.reads_the_space(until));
    assert_eq!(pharmacist.last_access, None);

    let bernard = entry(&hub.bernard);
    assert_eq!(relationships(bernard), [Relationship::ReferringDoctor]);
    assert_eq!(bernard.links[0].professional, hub.bernard.id);
    between(before, bernard.links[0].since, after);
    assert_eq!(
        Some(bernard.links[0].since),
        hub.vault
            .patient_settings(hub.camille.id)
            .unwrap()
            .referring_since
    );

    let nurse = entry(&hub.nurse);
    assert_eq!(relationships(nurse), [Relationship::Correspondent]);
    assert_eq!(nurse.links[0].since, wrote);
    assert_eq!(nurse.links[0].professional, hub.nurse.id);

    let labo = entry(&hub.labo);
    assert!(labo.authored, "the lab's mailbox filed the documents");
    assert!(labo.links.is_empty(), "{:?}", labo.links);
    assert!(!labo.reads_the_space(after));

    let radiology = entry(&hub.radiology);
    assert!(radiology.blocked && radiology.links.is_empty());
    assert!(!radiology.reads_the_space(after));

    // Dr Martin, a member of the lab that filed the documents, reads those: listed with the
    // organisation he reads them through (and so can be blocked from the page).
    let martin = entry(&hub.martin);
    assert_eq!(martin.via.as_deref(), Some("Laboratoire du CHU"));
    assert!(!martin.reads_the_space(after));

    assert_eq!(
        team.len(),
        7,
        "{:?}",
        team.iter()
            .map(|e| &e.professional.address)
            .collect::<Vec<_>>()
    );
    assert!(matches!(
        hub.vault.care_team(&hub.dubois),
        Err(VaultError::NotAPatient(_))
    ));
}

// --- Dating the médecin traitant --------------------------------------------------------------

#[test]
fn naming_a_referring_doctor_records_since_when() {
    let hub = hub();
    let before = now();
    hub.vault
        .set_referring_doctor(&hub.camille, Some(&hub.bernard.address))
        .unwrap();
    let since = hub
        .vault
        .patient_settings(hub.camille.id)
        .unwrap()
        .referring_since
        .expect("dated");
    between(before, since, now());
    // Naming the same doctor again keeps the date.
    hub.vault
        .set_referring_doctor(&hub.camille, Some(&hub.bernard.address))
        .unwrap();
    assert_eq!(
        hub.vault
            .patient_settings(hub.camille.id)
            .unwrap()
            .referring_since,
        Some(since)
    );
}

#[test]
fn deriving_care_dates_on_a_store_without_old_choices_does_nothing_once_and_for_all() {
    let hub = hub();
    assert_eq!(hub.vault.derive_care_dates().unwrap(), 0);
    hub.vault
        .set_referring_doctor(&hub.camille, Some(&hub.bernard.address))
        .unwrap();
    assert_eq!(hub.vault.derive_care_dates().unwrap(), 0);
    assert!(hub.audits("vault.referring-doctor.dated").is_empty());
}

/// Writes Camille's settings as a store from before dates were kept holds them: a médecin
/// traitant and no `referring_since`. (The vault keeps no API for this: the record is written
/// as the vault seals it — owner id ‖ JSON sealed to the owner — in its tree.)
fn forget_referring_since(hub: &Hub) {
    let mut settings =
        serde_json::to_value(hub.vault.patient_settings(hub.camille.id).unwrap()).unwrap();
    let fields = settings.as_object_mut().unwrap();
    fields.remove("referring_since").expect("the field");
    fields.remove("emergency_forbidden");
    let json = serde_json::to_vec(&settings).unwrap();
    let mut sealed = hub.camille.id.to_key().to_vec();
    sealed.extend(hub.store.seal(hub.camille.id, &json).unwrap());
    let mut batch = Batch::new();
    batch.put(
        Tree("vault-patient-settings"),
        hub.camille.id.to_key(),
        sealed,
    );
    let _ = hub.store.kv().commit(&batch).unwrap();
    let settings = hub.vault.patient_settings(hub.camille.id).unwrap();
    assert_eq!(
        (settings.referring_doctor.as_ref(), settings.referring_since),
        (Some(&hub.bernard.address), None)
    );
}

#[test]
fn an_old_referring_doctor_is_dated_from_the_audit_chain_once() {
    let hub = hub();
    // Dubois first, then Bernard: the date is Bernard's naming, the latest.
    hub.vault
        .set_referring_doctor(&hub.camille, Some(&hub.dubois.address))
        .unwrap();
    hub.vault
        .set_referring_doctor(&hub.camille, Some(&hub.bernard.address))
        .unwrap();
    // Another patient, named earlier and dated: left alone.
    hub.vault
        .set_referring_doctor(&hub.paul, Some(&hub.dubois.address))
        .unwrap();
    let paul_since = hub
        .vault
        .patient_settings(hub.paul.id)
        .unwrap()
        .referring_since;
    let named = hub.audits("vault.referring-doctor");
    assert_eq!(named.len(), 3);
    let at = named[1].at;
    forget_referring_since(&hub);
    assert_eq!(
        standing(&hub, &hub.bernard, now()).map(|s| (s.relationship, s.since)),
        Some((Relationship::ReferringDoctor, 0)),
        "an undated médecin traitant still reads"
    );

    assert_eq!(hub.vault.derive_care_dates().unwrap(), 1);
    let settings = hub.vault.patient_settings(hub.camille.id).unwrap();
    assert_eq!(settings.referring_since, Some(at));
    assert_eq!(settings.referring_doctor, Some(hub.bernard.address.clone()));
    assert_eq!(
        hub.vault
            .patient_settings(hub.paul.id)
            .unwrap()
            .referring_since,
        paul_since
    );
    assert_eq!(hub.audits("vault.referring-doctor.dated").len(), 1);

    // Once per store: a second run does nothing.
    forget_referring_since(&hub);
    assert_eq!(hub.vault.derive_care_dates().unwrap(), 0);
    assert_eq!(
        hub.vault
            .patient_settings(hub.camille.id)
            .unwrap()
            .referring_since,
        None
    );
    hub.store.verify_audit().unwrap();
}
