//! The patient's own appointments and the proposals of apps: made in the agenda, sealed,
//! reminded and published like invitations; edited only by the patient, with French refusals.

mod common;

use common::*;
use mshub_agenda::*;

const DAY: i64 = 86_400;

fn now() -> i64 {
    mshub_store::now()
}

fn dentist(start: i64) -> OwnAppointment {
    OwnAppointment {
        title: "Dentiste — détartrage".into(),
        when: When::lasting(start, 45 * 60),
        place: "12 rue des Lilas, Lyon".into(),
        professional: "Dr Paul Dupont".into(),
        notes: "Apporter la carte Vitale.".into(),
    }
}

/// A start 30 days ahead, on a whole minute.
fn in_a_month() -> i64 {
    (now() + 30 * DAY) / 60 * 60
}

#[test]
fn own_appointment_is_listed_published_reminded_and_sealed() {
    let h = hub();
    let start = in_a_month();
    let a = h.agenda.add_own(&h.camille, &dentist(start)).unwrap();
    assert_eq!(a.origin, Origin::Patient);
    assert_eq!(a.status, Status::Confirmed);
    assert!(a.is_own());
    assert_eq!(
        (
            a.summary.as_str(),
            a.location.as_str(),
            a.professional.as_str()
        ),
        (
            "Dentiste — détartrage",
            "12 rue des Lilas, Lyon",
            "Dr Paul Dupont"
        )
    );
    assert_eq!(a.description, "Apporter la carte Vitale.");
    assert_eq!((a.start, a.end, a.all_day), (start, start + 45 * 60, None));
    assert_eq!(
        h.agenda.appointments(h.camille.id).unwrap(),
        vec![a.clone()]
    );
    let occ = h
        .agenda
        .occurrences(h.camille.id, now(), now() + 366 * DAY)
        .unwrap();
    assert_eq!(occ.len(), 1);
    assert_eq!((occ[0].uid.as_str(), occ[0].start), (a.uid.as_str(), start));
    assert_eq!(occ[0].origin, Origin::Patient);
    // The feed carries it, the professional as CONTACT (RFC 5545 §3.8.4.2).
    let feed = h
        .agenda
        .calendar_of(h.camille.id)
        .unwrap()
        .replace("\r\n ", "");
    assert!(feed.contains(&format!("UID:{}", a.uid)), "{feed}");
    assert!(feed.contains("SUMMARY:Dentiste — détartrage"), "{feed}");
    assert!(feed.contains("LOCATION:12 rue des Lilas\\, Lyon"), "{feed}");
    assert!(feed.contains("CONTACT:Dr Paul Dupont"), "{feed}");
    // Reminded like an invitation: 24 hours before.
    assert!(h
        .agenda
        .due_reminders(start - 25 * 3600)
        .unwrap()
        .is_empty());
    let due = h.agenda.due_reminders(start - 23 * 3600).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].uid, a.uid);
    // Sealed at rest: the title is nowhere in the clear.
    let rows = h
        .store
        .kv()
        .scan(mshub_store::Tree("agenda-appointment"), &[], None, None)
        .unwrap();
    assert_eq!(rows.len(), 1);
    let needle = "Lilas".as_bytes();
    assert!(!rows[0].1.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn own_all_day_appointment_keeps_its_days() {
    let h = hub();
    let first = day_of(now() + 40 * DAY).unwrap();
    let last = first.succ_opt().unwrap();
    let form = OwnAppointment {
        title: "Cure thermale".into(),
        when: When::AllDay { first, last },
        place: String::new(),
        professional: String::new(),
        notes: String::new(),
    };
    let a = h.agenda.add_own(&h.camille, &form).unwrap();
    assert_eq!(a.all_day, Some(DaySpan { first, last }));
    let occ = h
        .agenda
        .occurrences(h.camille.id, now(), now() + 366 * DAY)
        .unwrap();
    assert_eq!(occ[0].all_day, Some(DaySpan { first, last }));
    let feed = h.agenda.calendar_of(h.camille.id).unwrap();
    assert!(
        feed.contains(&format!("DTSTART;VALUE=DATE:{}", first.format("%Y%m%d"))),
        "{feed}"
    );
    // DTEND is the day after the last (RFC 5545 §3.6.1).
    let after = last.succ_opt().unwrap();
    assert!(
        feed.contains(&format!("DTEND;VALUE=DATE:{}", after.format("%Y%m%d"))),
        "{feed}"
    );
}

#[test]
fn update_own_changes_it_and_a_stale_form_is_refused() {
    let h = hub();
    let start = in_a_month();
    let a = h.agenda.add_own(&h.camille, &dentist(start)).unwrap();
    let mut form = dentist(start + DAY);
    form.title = "Dentiste".into();
    let b = h
        .agenda
        .update_own(&h.camille, &a.uid, a.sequence, &form)
        .unwrap();
    assert_eq!((b.summary.as_str(), b.start), ("Dentiste", start + DAY));
    assert_eq!(b.sequence, a.sequence + 1);
    // The reminder moved with it.
    assert!(h
        .agenda
        .due_reminders(start - 23 * 3600)
        .unwrap()
        .is_empty());
    assert_eq!(
        h.agenda
            .due_reminders(start + DAY - 23 * 3600)
            .unwrap()
            .len(),
        1
    );
    // A second tab still holds the form of the first version.
    let err = h
        .agenda
        .update_own(&h.camille, &a.uid, a.sequence, &dentist(start))
        .unwrap_err();
    assert!(matches!(err, AgendaError::StaleForm { .. }), "{err:?}");
    assert!(err.to_string().contains("modifié entre-temps"), "{err}");
    assert!(err.to_string().contains("rechargez l'agenda"), "{err}");
    let kept = h.agenda.appointment(h.camille.id, &a.uid).unwrap().unwrap();
    assert_eq!(kept, b);
}

#[test]
fn deleted_appointment_can_be_neither_edited_nor_deleted_again() {
    let h = hub();
    let start = in_a_month();
    let a = h.agenda.add_own(&h.camille, &dentist(start)).unwrap();
    h.agenda.delete_own(&h.camille, &a.uid).unwrap();
    assert!(h.agenda.appointments(h.camille.id).unwrap().is_empty());
    assert!(h.agenda.due_reminders(start).unwrap().is_empty());
    assert!(!h.agenda.calendar_of(h.camille.id).unwrap().contains(&a.uid));
    let again = h.agenda.delete_own(&h.camille, &a.uid).unwrap_err();
    let edit = h
        .agenda
        .update_own(&h.camille, &a.uid, a.sequence, &dentist(start))
        .unwrap_err();
    for err in [again, edit] {
        assert!(matches!(err, AgendaError::Deleted(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "Ce rendez-vous a été supprimé entre-temps ; rechargez l'agenda."
        );
    }
}

#[test]
fn an_invitation_is_not_editable_as_an_own_appointment() {
    let h = hub();
    h.agenda.file_message(
        &h.camille,
        Some(&addr(MARTIN)),
        &fixture("thunderbird-request.eml"),
    );
    let invited = &h.agenda.appointments(h.camille.id).unwrap()[0];
    assert_eq!(invited.origin, Origin::Invitation);
    assert!(!invited.is_own());
    let edit = h
        .agenda
        .update_own(
            &h.camille,
            &invited.uid,
            invited.sequence,
            &dentist(in_a_month()),
        )
        .unwrap_err();
    let delete = h.agenda.delete_own(&h.camille, &invited.uid).unwrap_err();
    for err in [edit, delete] {
        assert!(matches!(err, AgendaError::NotOwn(_)), "{err:?}");
        assert!(err.to_string().contains("seul"), "{err}");
    }
    let unchanged = &h.agenda.appointments(h.camille.id).unwrap()[0];
    assert_eq!(unchanged, invited);
}

#[test]
fn mail_cannot_overwrite_an_own_appointment() {
    let h = hub();
    let a = h
        .agenda
        .add_own(&h.camille, &dentist(in_a_month()))
        .unwrap();
    let hijack = calendar(
        "REQUEST",
        &[vevent(&a.uid, 9, "20270101T000000Z", "20270301T100000", "")],
    );
    let filing = h.agenda.file_message(
        &h.camille,
        Some(&addr(MARTIN)),
        &message(&hijack, "REQUEST"),
    );
    assert!(
        matches!(filing.outcome(), FilingOutcome::Failed { .. }),
        "{filing:?}"
    );
    assert_eq!(h.agenda.appointment(h.camille.id, &a.uid).unwrap(), Some(a));
}

#[test]
fn invalid_forms_are_refused_in_french() {
    let h = hub();
    let start = in_a_month();
    let with = |change: &dyn Fn(&mut OwnAppointment)| {
        let mut form = dentist(start);
        change(&mut form);
        h.agenda.add_own(&h.camille, &form).unwrap_err().to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        (with(&|f| f.title = "   ".into()), "Indiquez un titre"),
        (
            with(&|f| f.title = "é".repeat(201)),
            "titre est trop long (201 caractères) : 200 au plus",
        ),
        (
            with(&|f| f.notes = "x".repeat(4001)),
            "notes sont trop longues (4001 caractères) : 4000 au plus",
        ),
        (
            with(&|f| f.place = "x".repeat(301)),
            "lieu est trop long (301 caractères) : 300 au plus",
        ),
        (
            with(&|f| f.professional = "x".repeat(201)),
            "professionnel est trop long",
        ),
        (
            with(&|f| f.when = When::Timed { start, end: start }),
            "La fin du rendez-vous doit être après son début",
        ),
        (
            with(&|f| f.when = When::lasting(start, -60)),
            "La fin du rendez-vous doit être après son début",
        ),
        (
            with(&|f| {
                f.when = When::AllDay {
                    first: day_of(start).unwrap(),
                    last: day_of(start - DAY).unwrap(),
                }
            }),
            "La fin du rendez-vous doit être après son début",
        ),
        // August 1899.
        (
            with(&|f| f.when = When::lasting(-2_220_000_000, 3600)),
            "avant 1900",
        ),
        (
            with(&|f| f.when = When::lasting(now() + 11 * 366 * DAY, 3600)),
            "dix ans",
        ),
    ];
    for (message, expected) in cases {
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
    // The limits themselves are accepted.
    let mut form = dentist(start);
    form.title = "é".repeat(200);
    form.notes = "x".repeat(4000);
    form.place = "x".repeat(300);
    assert!(h.agenda.add_own(&h.camille, &form).is_ok());
    assert_eq!(h.agenda.appointments(h.camille.id).unwrap().len(), 1);
}

#[test]
fn a_proposal_waits_for_the_patient_without_reminder() {
    let h = hub();
    let start = in_a_month();
    let p = h
        .agenda
        .propose(&h.camille, "suivi-tension", &dentist(start))
        .unwrap();
    assert_eq!(p.status, Status::Proposed);
    assert_eq!(
        p.origin,
        Origin::App {
            app_id: "suivi-tension".into()
        }
    );
    // Shown, "à confirmer", and TENTATIVE in the feed; not reminded.
    let occ = h
        .agenda
        .occurrences(h.camille.id, now(), now() + 366 * DAY)
        .unwrap();
    assert_eq!(occ[0].status, Status::Proposed);
    assert!(h
        .agenda
        .calendar_of(h.camille.id)
        .unwrap()
        .contains("STATUS:TENTATIVE"));
    assert!(h.agenda.due_reminders(start).unwrap().is_empty());
    // Accepted: confirmed and reminded.
    let accepted = h.agenda.accept_proposal(&h.camille, &p.uid).unwrap();
    assert_eq!(accepted.status, Status::Confirmed);
    assert_eq!(accepted.partstat, PartStat::Accepted);
    assert!(h
        .agenda
        .calendar_of(h.camille.id)
        .unwrap()
        .contains("STATUS:CONFIRMED"));
    assert_eq!(h.agenda.due_reminders(start - 23 * 3600).unwrap().len(), 1);
    // Accepting twice says it is no longer a proposal.
    let err = h.agenda.accept_proposal(&h.camille, &p.uid).unwrap_err();
    assert!(matches!(err, AgendaError::NotProposed(_)), "{err:?}");
    assert!(err.to_string().contains("rechargez l'agenda"), "{err}");
    // The app that proposed it is still known.
    assert_eq!(
        h.agenda
            .appointment(h.camille.id, &p.uid)
            .unwrap()
            .unwrap()
            .origin,
        Origin::App {
            app_id: "suivi-tension".into()
        }
    );
}

#[test]
fn a_declined_proposal_is_removed() {
    let h = hub();
    let p = h
        .agenda
        .propose(&h.camille, "suivi-tension", &dentist(in_a_month()))
        .unwrap();
    h.agenda.decline_proposal(&h.camille, &p.uid).unwrap();
    assert!(h.agenda.appointments(h.camille.id).unwrap().is_empty());
    let err = h.agenda.decline_proposal(&h.camille, &p.uid).unwrap_err();
    assert!(matches!(err, AgendaError::Deleted(_)), "{err:?}");
    // The patient's own appointment is not a proposal to decline.
    let own = h
        .agenda
        .add_own(&h.camille, &dentist(in_a_month()))
        .unwrap();
    assert!(matches!(
        h.agenda.decline_proposal(&h.camille, &own.uid),
        Err(AgendaError::NotProposed(_))
    ));
}

#[test]
fn a_proposal_accepted_meanwhile_is_not_removed_by_a_stale_decline() {
    let h = hub();
    let p = h
        .agenda
        .propose(&h.camille, "suivi-tension", &dentist(in_a_month()))
        .unwrap();
    // Accepted in one tab; the other tab still shows the "Refuser" button.
    h.agenda.accept_proposal(&h.camille, &p.uid).unwrap();
    assert!(matches!(
        h.agenda.decline_proposal(&h.camille, &p.uid),
        Err(AgendaError::NotProposed(_))
    ));
    let kept = h.agenda.appointments(h.camille.id).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].status, Status::Confirmed);
}

#[test]
fn proposals_need_a_valid_app_and_a_patient() {
    let h = hub();
    for bad in ["", "une appli", "x/../y"] {
        assert!(matches!(
            h.agenda.propose(&h.camille, bad, &dentist(in_a_month())),
            Err(AgendaError::InvalidAppId(_))
        ));
    }
    assert!(matches!(
        h.agenda.add_own(&h.martin, &dentist(in_a_month())),
        Err(AgendaError::NotAPatient(_))
    ));
    assert!(h.agenda.appointments(h.camille.id).unwrap().is_empty());
}

#[test]
fn records_stored_before_these_fields_still_read_as_invitations() {
    let stored = r#"{"uid":"old@chu","summary":"Consultation","location":"","description":"",
        "organizer":"claire.martin@chu.mshub.test","organizer_name":null,"invited_by":null,
        "start":1799744400,"end":1799746200,"tzid":"Europe/Paris","status":"confirmed",
        "sequence":0,"dtstamp":0,"partstat":"needs-action","recurrent":false}"#;
    let a: Appointment = serde_json::from_str(stored).unwrap();
    assert_eq!(a.origin, Origin::Invitation);
    assert_eq!(a.all_day, None);
    assert!(a.professional.is_empty());
}
