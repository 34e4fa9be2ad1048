use std::sync::Arc;

use mshub_directory::{Account, AccountKind, Address, BirthDate, Ins, Profession, Rpps, Sex};
use mshub_store::{AccountId, MasterKey, Store};

use super::*;
use crate::dispensing::Give;
use crate::order::tests::sample;

struct World {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    rx: Prescriptions,
    doctor: Account,
    patient: Account,
    pharmacist: Account,
    other_pharmacist: Account,
    nurse: Account,
}

fn professional(id: u64, address: &str, rpps: &str, profession: Profession) -> Account {
    Account {
        id: AccountId(id),
        address: Address::try_from(address).unwrap(),
        kind: AccountKind::Professional {
            rpps: Rpps::try_from(rpps).unwrap(),
            given_name: "Prénom".into(),
            family_name: format!("Nom{id}"),
            profession,
            specialty: String::new(),
            city: String::new(),
        },
        password_hash: None,
        app_passwords: Vec::new(),
        disabled: false,
        created: 0,
        lifecycle: mshub_directory::Lifecycle::Active,
        activation_code: None,
    }
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open(
            dir.path(),
            MasterKey::new("0123456789abcdef0123456789abcdef").unwrap(),
        )
        .unwrap(),
    );
    let patient = Account {
        id: AccountId(1),
        address: Address::try_from("284057511204339@patient.mshub.test").unwrap(),
        kind: AccountKind::Patient {
            ins: Ins::try_from("284057511204339").unwrap(),
            given_name: "Camille".into(),
            family_name: "Durand".into(),
            birth_date: BirthDate::try_from("1984-05-12").unwrap(),
            sex: Sex::Female,
        },
        password_hash: None,
        app_passwords: Vec::new(),
        disabled: false,
        created: 0,
        lifecycle: mshub_directory::Lifecycle::Active,
        activation_code: None,
    };
    for id in 1..=5 {
        store.provision_account(AccountId(id)).unwrap();
    }
    let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
    World {
        rx: Prescriptions::with_key(store.clone(), Some(key), "https://hub.test/"),
        doctor: professional(
            2,
            "dr.martin@hopital.mshub.test",
            "10003456786",
            Profession::Physician,
        ),
        pharmacist: professional(
            3,
            "pharma@officine.mshub.test",
            "10000000017",
            Profession::Pharmacist,
        ),
        other_pharmacist: professional(
            4,
            "autre@officine.mshub.test",
            "10000000025",
            Profession::Pharmacist,
        ),
        nurse: professional(
            5,
            "ines.leroy@hopital.mshub.test",
            "10000000009",
            Profession::Nurse,
        ),
        patient,
        store,
        _dir: dir,
    }
}

/// 2026-11-26 at noon UTC.
fn today() -> i64 {
    day::parse("2026-11-26").unwrap() * 86_400 + 12 * 3600
}

fn issue(w: &World) -> Issued {
    w.rx.issue(
        &w.doctor,
        &w.patient,
        sample("2026-11-26").as_bytes(),
        b"message-1",
        today(),
    )
    .unwrap()
}

fn parts(url: &str) -> (String, String, String) {
    let path = url.strip_prefix("https://hub.test/ordonnance/").unwrap();
    let (id, query) = path.split_once('?').unwrap();
    let (h, s) = query.split_once('&').unwrap();
    (
        id.to_string(),
        h.strip_prefix("h=").unwrap().to_string(),
        s.strip_prefix("s=").unwrap().to_string(),
    )
}

fn refused<T: std::fmt::Debug>(r: std::result::Result<T, Outcome>) -> Refusal {
    match r {
        Err(Outcome::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn issuing_signs_stores_sealed_and_audits() {
    let w = world();
    let issued = issue(&w);
    assert!(!issued.again);
    assert!(issued.url.len() <= 300, "{}", issued.url);
    assert!(issued.pdf.starts_with(b"%PDF-"));
    let p = &issued.record.prescription;
    assert_eq!(p.valid_until, "2027-02-24");
    assert_eq!(p.prescriber.name, "Dr Prénom Nom2");
    assert_eq!(p.patient.ins, "284057511204339");
    // Nothing of the content is readable in the store.
    let raw = w
        .store
        .kv()
        .get(RECORDS, p.id.as_str().as_bytes())
        .unwrap()
        .unwrap();
    assert!(!raw.windows(11).any(|x| x == b"Amoxicillin"), "sealed");
    assert_eq!(w.rx.of_patient(w.patient.id).unwrap().len(), 1);
    assert!(w.rx.of_patient(w.doctor.id).unwrap().is_empty());
    // The same message again (a filer run after a crash) issues nothing new.
    let again =
        w.rx.issue(
            &w.doctor,
            &w.patient,
            sample("2026-11-26").as_bytes(),
            b"message-1",
            today(),
        )
        .unwrap();
    assert!(again.again);
    assert_eq!(again.record.prescription.id, p.id);
    assert_eq!(w.rx.of_patient(w.patient.id).unwrap().len(), 1);
    let audit = w.store.audit_records(0, 100).unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|r| r.event.action == "prescription.issue")
            .count(),
        1
    );
    assert!(audit
        .iter()
        .all(|r| !r.event.detail.contains("Amoxicilline")));
}

#[test]
fn only_the_authenticated_prescriber_for_the_recipient_is_issued() {
    let w = world();
    let order = sample("2026-11-26");
    let r =
        w.rx.issue(&w.nurse, &w.patient, order.as_bytes(), b"m", today());
    assert!(matches!(refused(r), Refusal::Prescriber(_)));
    let other_rpps = order.replace("10003456786", "10000000017");
    let r =
        w.rx.issue(&w.doctor, &w.patient, other_rpps.as_bytes(), b"m", today());
    assert!(refused(r).to_string().contains("RPPS"));
    let other_ins = order.replace("284057511204339", "184057511204312");
    let r =
        w.rx.issue(&w.doctor, &w.patient, other_ins.as_bytes(), b"m", today());
    assert!(matches!(refused(r), Refusal::Patient(_)));
    let r =
        w.rx.issue(&w.doctor, &w.doctor, order.as_bytes(), b"m", today());
    assert!(matches!(refused(r), Refusal::Patient(_)));
    let future = sample("2026-12-01");
    let r =
        w.rx.issue(&w.doctor, &w.patient, future.as_bytes(), b"m", today());
    assert!(refused(r).to_string().contains("futur"));
    let old = sample("2026-01-02");
    let r =
        w.rx.issue(&w.doctor, &w.patient, old.as_bytes(), b"m", today());
    assert!(refused(r).to_string().contains("expiré"));
    let off = Prescriptions::with_key(w.store.clone(), None, "https://hub.test");
    let r = off.issue(&w.doctor, &w.patient, order.as_bytes(), b"m", today());
    assert_eq!(refused(r), Refusal::Disabled);
    assert!(w.rx.of_patient(w.patient.id).unwrap().is_empty());
}

#[test]
fn partial_then_complete_dispensing_counts_renewals() {
    let w = world();
    let issued = issue(&w);
    let (id, h, s) = parts(&issued.url);
    let record = w.rx.scan(&w.pharmacist, &id, &h, &s, today()).unwrap();
    assert_eq!(record.status(today()), Status::ToDispense);
    assert_eq!(record.remaining_in_fill(0), 2);
    assert_eq!(record.fills_left(1), 2);

    // Line 1: one box of two (partial); line 2: its first dispensing.
    let (record, d) =
        w.rx.dispense(
            &w.pharmacist,
            &id,
            &h,
            &s,
            0,
            &[(0, Give::Units(1)), (1, Give::Rest)],
            today(),
        )
        .unwrap();
    assert_eq!(d.lines.len(), 2);
    assert!(!d.lines[0].completed && d.lines[1].completed);
    assert_eq!(record.remaining_in_fill(0), 1);
    assert_eq!(record.lines[1].fills_done, 1);
    assert_eq!(record.status(today()), Status::Partial);

    // More than what is left is refused, and changes nothing.
    let r = w.rx.dispense(
        &w.pharmacist,
        &id,
        &h,
        &s,
        1,
        &[(0, Give::Units(2))],
        today(),
    );
    assert!(matches!(refused(r), Refusal::Quantity(_)));
    let r = w.rx.dispense(
        &w.pharmacist,
        &id,
        &h,
        &s,
        1,
        &[(0, Give::Units(0))],
        today(),
    );
    assert_eq!(refused(r), Refusal::Nothing);
    let r =
        w.rx.dispense(&w.pharmacist, &id, &h, &s, 1, &[(7, Give::Rest)], today());
    assert!(matches!(refused(r), Refusal::Quantity(_)));

    // The rest: line 1 done; line 2's two renewals one after the other.
    w.rx.dispense(
        &w.pharmacist,
        &id,
        &h,
        &s,
        1,
        &[(0, Give::Rest), (1, Give::Rest)],
        today(),
    )
    .unwrap();
    let r = w.rx.dispense(
        &w.pharmacist,
        &id,
        &h,
        &s,
        2,
        &[(0, Give::Units(1))],
        today(),
    );
    assert!(refused(r).to_string().contains("renouvellements compris"));
    let (record, d) =
        w.rx.dispense(
            &w.other_pharmacist,
            &id,
            &h,
            &s,
            2,
            &[(1, Give::Rest)],
            today(),
        )
        .unwrap();
    assert_eq!(d.lines[0].fill, 3, "the second renewal");
    assert!(record.fully_dispensed());
    assert_eq!(record.history.len(), 3);
    assert_eq!(record.history[2].pharmacist, "autre@officine.mshub.test");

    // A further scan is refused as fully dispensed; the patient still sees the history.
    let r = w.rx.scan(&w.pharmacist, &id, &h, &s, today());
    assert_eq!(refused(r), Refusal::FullyDispensed);
    let r =
        w.rx.dispense(&w.pharmacist, &id, &h, &s, 3, &[(1, Give::Rest)], today());
    assert_eq!(refused(r), Refusal::FullyDispensed);
    let mine = w.rx.of_patient_by_id(w.patient.id, &id).unwrap().unwrap();
    assert_eq!(mine.status(today()), Status::Dispensed);
    assert!(w.rx.of_patient_by_id(w.doctor.id, &id).unwrap().is_none());

    let audit = w.store.audit_records(0, 100).unwrap();
    let scans: Vec<_> = audit
        .iter()
        .filter(|r| r.event.action == "prescription.scan")
        .collect();
    assert_eq!(scans.len(), 2);
    assert_eq!(scans[1].event.detail, "outcome:fully-dispensed");
    assert!(audit
        .iter()
        .any(|r| r.event.action == "prescription.dispense"
            && r.event.detail == "outcome:ok lines:1x1p,2x1"));
    w.store.verify_audit().unwrap();
}

#[test]
fn a_form_read_before_another_dispensing_is_refused() {
    let w = world();
    let (id, h, s) = parts(&issue(&w).url);
    // Two pharmacies read the prescription at version 0…
    w.rx.scan(&w.pharmacist, &id, &h, &s, today()).unwrap();
    w.rx.scan(&w.other_pharmacist, &id, &h, &s, today())
        .unwrap();
    // …the first records the dispensing of line 2, the second then tries the same.
    w.rx.dispense(&w.pharmacist, &id, &h, &s, 0, &[(1, Give::Rest)], today())
        .unwrap();
    let r = w.rx.dispense(
        &w.other_pharmacist,
        &id,
        &h,
        &s,
        0,
        &[(1, Give::Rest)],
        today(),
    );
    assert_eq!(refused(r), Refusal::Conflict);
    let record = w.rx.of_patient_by_id(w.patient.id, &id).unwrap().unwrap();
    assert_eq!(record.lines[1].fills_done, 1, "delivered once");
}

#[test]
fn concurrent_dispensings_of_the_last_renewal_deliver_it_once() {
    let w = Arc::new(world());
    let (id, h, s) = parts(&issue(&w).url);
    // Line 1 done, line 2 down to its last dispensing.
    w.rx.dispense(
        &w.pharmacist,
        &id,
        &h,
        &s,
        0,
        &[(0, Give::Rest), (1, Give::Rest)],
        today(),
    )
    .unwrap();
    w.rx.dispense(&w.pharmacist, &id, &h, &s, 1, &[(1, Give::Rest)], today())
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let w = w.clone();
            let (id, h, s) = (id.clone(), h.clone(), s.clone());
            std::thread::spawn(move || {
                let who = if n % 2 == 0 {
                    &w.pharmacist
                } else {
                    &w.other_pharmacist
                };
                w.rx.dispense(who, &id, &h, &s, 2, &[(1, Give::Rest)], today())
                    .is_ok()
            })
        })
        .collect();
    let ok = threads
        .into_iter()
        .filter(|_| true)
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(ok, 1, "one pharmacy delivers the last renewal");
    let record = w.rx.of_patient_by_id(w.patient.id, &id).unwrap().unwrap();
    assert_eq!(record.history.len(), 3);
    assert!(record.fully_dispensed());
}

#[test]
fn forged_altered_unknown_and_expired_are_refused_each_with_its_reason() {
    let w = world();
    let (id, h, s) = parts(&issue(&w).url);

    // One character of the signature changed.
    let mut forged = s.clone().into_bytes();
    forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
    let r = w.rx.scan(
        &w.pharmacist,
        &id,
        &h,
        std::str::from_utf8(&forged).unwrap(),
        today(),
    );
    assert_eq!(refused(r), Refusal::Forged);
    // One character of the id changed: the signature no longer covers it.
    let mut other_id = id.clone().into_bytes();
    other_id[3] = if other_id[3] == b'0' { b'1' } else { b'0' };
    let r = w.rx.scan(
        &w.pharmacist,
        std::str::from_utf8(&other_id).unwrap(),
        &h,
        &s,
        today(),
    );
    assert_eq!(refused(r), Refusal::Forged);
    // Garbage.
    let r = w.rx.scan(&w.pharmacist, "<script>", "x", "y", today());
    assert_eq!(refused(r), Refusal::Forged);
    // Another hub's key signed it.
    let other = Prescriptions::with_key(
        w.store.clone(),
        Some(SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap()),
        "https://hub.test",
    );
    let r = other.scan(&w.pharmacist, &id, &h, &s, today());
    assert_eq!(refused(r), Refusal::Forged);

    // A genuine signature over an id this hub does not have.
    let key = w.rx.key.as_ref().unwrap();
    let ghost = PrescriptionId::random().unwrap();
    let hash = [9u8; 32];
    let link = Link {
        signature: key.sign(&ghost, &hash),
        id: ghost,
        hash,
    };
    let ghost_url = link.url("https://hub.test");
    let (gid, gh, gs) = parts(&ghost_url);
    let r = w.rx.scan(&w.pharmacist, &gid, &gh, &gs, today());
    assert_eq!(refused(r), Refusal::UnknownId);

    // The record altered at rest (a line changed, re-sealed): no longer what was signed.
    let pid = PrescriptionId::try_from(id.as_str()).unwrap();
    let (owner, mut record, _) = w.rx.load(&pid).unwrap().unwrap();
    record.prescription.lines[0].quantity = 20;
    let mut batch = Batch::new();
    batch.put(RECORDS, id.as_bytes(), w.rx.encode(owner, &record).unwrap());
    assert_eq!(w.store.kv().commit(&batch).unwrap(), Commit::Done);
    let r = w.rx.scan(&w.pharmacist, &id, &h, &s, today());
    assert_eq!(refused(r), Refusal::Altered);

    // Expired: a fresh prescription scanned after its last valid day.
    let (id, h, s) = parts(
        &w.rx
            .issue(
                &w.doctor,
                &w.patient,
                sample("2026-11-26").as_bytes(),
                b"message-2",
                today(),
            )
            .unwrap()
            .url,
    );
    let later = today() + 91 * 86_400;
    let r = w.rx.scan(&w.pharmacist, &id, &h, &s, later);
    assert!(matches!(refused(r), Refusal::Expired { .. }));
    let r =
        w.rx.dispense(&w.pharmacist, &id, &h, &s, 0, &[(0, Give::Rest)], later);
    assert!(matches!(refused(r), Refusal::Expired { .. }));
    assert!(
        w.rx.scan(&w.pharmacist, &id, &h, &s, today() + 90 * 86_400)
            .is_ok(),
        "last day valid"
    );

    // A nurse may not scan; the refusal is audited too.
    let r = w.rx.scan(&w.nurse, &id, &h, &s, today());
    assert_eq!(refused(r), Refusal::NotPharmacist);
    let r =
        w.rx.dispense(&w.nurse, &id, &h, &s, 0, &[(0, Give::Rest)], today());
    assert_eq!(refused(r), Refusal::NotPharmacist);

    let codes: Vec<String> = w
        .store
        .audit_records(0, 100)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == "prescription.scan")
        .map(|r| format!("{} {}", r.event.subject, r.event.detail))
        .collect();
    for code in [
        "forged",
        "unknown-id",
        "altered",
        "expired",
        "not-pharmacist",
        "ok",
    ] {
        assert!(
            codes
                .iter()
                .any(|c| c.ends_with(&format!("outcome:{code}"))),
            "{code}: {codes:?}"
        );
    }
    assert!(
        codes
            .iter()
            .any(|c| c.starts_with("prescription:malformed")),
        "{codes:?}"
    );
}

#[test]
fn a_destroyed_space_takes_its_prescriptions_with_it() {
    let w = world();
    let (id, h, s) = parts(&issue(&w).url);
    assert_eq!(w.rx.of_patient(w.patient.id).unwrap().len(), 1);
    assert_eq!(
        Prescriptions::purge_patient(&w.store, w.patient.id).unwrap(),
        1
    );
    assert!(w.rx.of_patient(w.patient.id).unwrap().is_empty());
    let r = w.rx.scan(&w.pharmacist, &id, &h, &s, today());
    assert_eq!(refused(r), Refusal::UnknownId);
    // The same message again is a new prescription, not the destroyed one.
    let again = issue(&w);
    assert_ne!(parts(&again.url).0, id);
}
