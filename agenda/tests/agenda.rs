//! The agenda end to end over a real store: invitations as Thunderbird, Outlook and Google
//! send them, the iTIP life cycle, recurrences, hostile calendars, replies, reminders, feed.

mod common;

use common::*;
use mshub_agenda::*;

const T2027_01_12_0900Z: i64 = 1_799_744_400;

#[test]
fn thunderbird_invitation_becomes_an_appointment_once() {
    let h = hub();
    let raw = fixture("thunderbird-request.eml");
    assert!(may_carry_invitation(&raw));
    let filing = h.agenda.file_message(&h.camille, Some(&addr(MARTIN)), &raw);
    let FilingOutcome::Filed { summary } = filing.outcome() else {
        panic!("{:?}", filing.outcome());
    };
    assert!(summary.contains("Consultation de suivi"), "{summary}");
    // The inline part and invite.ics are the same event: reported once.
    assert_eq!(filing.events.len(), 1);
    let all = h.agenda.appointments(h.camille.id).unwrap();
    assert_eq!(all.len(), 1);
    let a = &all[0];
    assert_eq!(a.summary, "Consultation de suivi");
    assert_eq!(a.location, "CHU, bâtiment B, 2e étage");
    assert_eq!(a.organizer.as_deref(), Some(MARTIN));
    assert_eq!(a.organizer_name.as_deref(), Some("Dr Claire Martin"));
    // 10:00 Paris in January = 09:00 UTC.
    assert_eq!(a.start, T2027_01_12_0900Z);
    assert_eq!(a.end - a.start, 1800);
    assert_eq!(a.tzid, "Europe/Paris");
    assert_eq!(a.status, Status::Confirmed);
    assert_eq!(a.partstat, PartStat::NeedsAction);
    assert!(!a.recurrent);
}

#[test]
fn professional_recipient_is_not_applicable() {
    let h = hub();
    let filing = h
        .agenda
        .file_message(&h.martin, None, &fixture("thunderbird-request.eml"));
    assert_eq!(filing.outcome(), FilingOutcome::NotApplicable);
}

#[test]
fn outlook_romance_standard_time_is_paris_and_reply_goes_to_the_sender() {
    let h = hub();
    let sender = addr("rdv@chu.mshub.test");
    let filing = h
        .agenda
        .file_message(&h.camille, Some(&sender), &fixture("outlook-request.eml"));
    assert!(
        matches!(filing.outcome(), FilingOutcome::Filed { .. }),
        "{filing:?}"
    );
    let a = &h.agenda.appointments(h.camille.id).unwrap()[0];
    // 14:30 Paris in July (CEST) = 12:30 UTC.
    assert_eq!(a.start, 1_814_445_000);
    assert_eq!(a.tzid, "Europe/Paris");
    assert_eq!(a.organizer.as_deref(), Some("marc.radio@chu.mshub.test"));
    assert_eq!(a.invited_by.as_deref(), Some("rdv@chu.mshub.test"));
    let reply = h
        .agenda
        .respond(&h.camille, &a.uid, Answer::Accept)
        .unwrap();
    assert_eq!(reply.to, "rdv@chu.mshub.test");
}

#[test]
fn google_recurrence_with_exdate_and_override() {
    let h = hub();
    let filing = h.agenda.file_message(
        &h.camille,
        Some(&addr("ines.soins@chu.mshub.test")),
        &fixture("google-request.eml"),
    );
    assert!(
        matches!(filing.outcome(), FilingOutcome::Filed { .. }),
        "{filing:?}"
    );
    let a = &h.agenda.appointments(h.camille.id).unwrap()[0];
    assert!(a.recurrent);
    let occ = h
        .agenda
        .occurrences(h.camille.id, 1_798_000_000, 1_830_000_000)
        .unwrap();
    // COUNT=6 Mondays from 11 Jan 2027, minus the EXDATE of 25 Jan: 5, one of them moved
    // from Monday 1 Feb 09:00 to Wednesday 3 Feb 14:00 (13:00 UTC).
    assert_eq!(occ.len(), 5, "{occ:?}");
    assert!(occ.iter().any(|o| o.overridden && o.start == 1_801_659_600));
    let starts: Vec<i64> = occ.iter().map(|o| o.start).collect();
    // 25 Jan 2027 08:00 UTC is excluded.
    assert!(!starts.contains(&1_801_036_800));
}

#[test]
fn request_update_stale_update_then_cancel() {
    let h = hub();
    let file = |ics: String, method: &str| {
        h.agenda
            .file_message(&h.camille, Some(&addr(MARTIN)), &message(&ics, method))
    };
    let uid = "life@chu";
    let v0 = calendar(
        "REQUEST",
        &[vevent(uid, 0, "20270101T000000Z", "20270301T100000", "")],
    );
    assert!(matches!(
        file(v0.clone(), "REQUEST").outcome(),
        FilingOutcome::Filed { .. }
    ));
    h.agenda.respond(&h.camille, uid, Answer::Accept).unwrap();
    // The feed carries the answer as recorded, not as invited.
    let feed = h
        .agenda
        .calendar_of(h.camille.id)
        .unwrap()
        .replace("\r\n ", "");
    assert!(feed.contains("PARTSTAT=ACCEPTED"), "{feed}");
    // Same version again: unchanged, still filed.
    let again = file(v0, "REQUEST");
    assert_eq!(again.events[0].outcome, EventOutcome::Unchanged);
    // Later DTSTAMP, same SEQUENCE: minor update, the answer stays.
    let v0b = calendar(
        "REQUEST",
        &[vevent(
            uid,
            0,
            "20270102T000000Z",
            "20270301T100000",
            "LOCATION:Salle 2\r\n",
        )],
    );
    assert_eq!(
        file(v0b, "REQUEST").events[0].outcome,
        EventOutcome::Updated
    );
    let a = h.agenda.appointment(h.camille.id, uid).unwrap().unwrap();
    assert_eq!(
        (a.location.as_str(), a.partstat),
        ("Salle 2", PartStat::Accepted)
    );
    // Higher SEQUENCE: rescheduled, the patient answers again.
    let v1 = calendar(
        "REQUEST",
        &[vevent(uid, 1, "20270103T000000Z", "20270302T110000", "")],
    );
    assert_eq!(file(v1, "REQUEST").events[0].outcome, EventOutcome::Updated);
    let a = h.agenda.appointment(h.camille.id, uid).unwrap().unwrap();
    assert_eq!((a.sequence, a.partstat), (1, PartStat::NeedsAction));
    // A stale version (SEQUENCE 0) arriving late is reported and not applied.
    let stale = calendar(
        "REQUEST",
        &[vevent(uid, 0, "20270104T000000Z", "20270305T100000", "")],
    );
    let filing = file(stale, "REQUEST");
    let FilingOutcome::Failed { reason } = filing.outcome() else {
        panic!()
    };
    assert!(
        reason.contains("périmée") && reason.contains("stale"),
        "{reason}"
    );
    assert_eq!(
        h.agenda
            .appointment(h.camille.id, uid)
            .unwrap()
            .unwrap()
            .sequence,
        1
    );
    // CANCEL: kept, marked cancelled, gone from occurrences.
    let cancel = calendar(
        "CANCEL",
        &[vevent(
            uid,
            2,
            "20270105T000000Z",
            "20270302T110000",
            "STATUS:CANCELLED\r\n",
        )],
    );
    assert_eq!(
        file(cancel, "CANCEL").events[0].outcome,
        EventOutcome::Cancelled
    );
    let a = h.agenda.appointment(h.camille.id, uid).unwrap().unwrap();
    assert_eq!(a.status, Status::Cancelled);
    // The feed shows the cancellation at its own SEQUENCE.
    let feed = h.agenda.calendar_of(h.camille.id).unwrap();
    assert!(
        feed.contains("STATUS:CANCELLED") && feed.contains("SEQUENCE:2"),
        "{feed}"
    );
    assert!(h
        .agenda
        .occurrences(h.camille.id, 1_790_000_000, 1_900_000_000)
        .unwrap()
        .is_empty());
    assert!(matches!(
        h.agenda.respond(&h.camille, uid, Answer::Accept),
        Err(AgendaError::Cancelled(_))
    ));
}

#[test]
fn cancel_of_one_occurrence_removes_only_it() {
    let h = hub();
    let uid = "series@chu";
    let series = calendar(
        "REQUEST",
        &[vevent(
            uid,
            0,
            "20270101T000000Z",
            "20270301T100000",
            "RRULE:FREQ=DAILY;COUNT=3\r\n",
        )],
    );
    h.agenda.file_message(
        &h.camille,
        Some(&addr(MARTIN)),
        &message(&series, "REQUEST"),
    );
    let one = calendar(
        "CANCEL",
        &[format!(
            "BEGIN:VEVENT\r\nUID:{uid}\r\nSEQUENCE:0\r\nDTSTAMP:20270102T000000Z\r\n\
         RECURRENCE-ID;TZID=Europe/Paris:20270302T100000\r\nEND:VEVENT\r\n"
        )],
    );
    let filing = h
        .agenda
        .file_message(&h.camille, Some(&addr(MARTIN)), &message(&one, "CANCEL"));
    assert!(
        matches!(filing.outcome(), FilingOutcome::Filed { .. }),
        "{filing:?}"
    );
    let occ = h
        .agenda
        .occurrences(h.camille.id, 1_790_000_000, 1_900_000_000)
        .unwrap();
    assert_eq!(occ.len(), 2, "{occ:?}");
}

fn failed_reason(h: &Hub, raw: &[u8]) -> String {
    match h.agenda.file_message(&h.camille, None, raw).outcome() {
        FilingOutcome::Failed { reason } => reason,
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_calendars_are_bounded_and_reported() {
    let h = hub();
    // 10,000 nested BEGIN: lines.
    let deep = format!(
        "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\n{}",
        "BEGIN:VEVENT\r\n".repeat(10_000)
    );
    assert!(failed_reason(&h, &message(&deep, "REQUEST")).contains("nested deeper"));
    // 5 MiB.
    let big = calendar(
        "REQUEST",
        &[vevent(
            "big",
            0,
            "20270101T000000Z",
            "20270301T100000",
            &format!("DESCRIPTION:{}\r\n", "x".repeat(5 * 1024 * 1024)),
        )],
    );
    assert!(failed_reason(&h, &message(&big, "REQUEST")).contains("bytes, more than"));
    // Bad dates.
    let bad = calendar(
        "REQUEST",
        &[vevent("bad", 0, "20270101T000000Z", "20271345T250000", "")],
    );
    let reason = failed_reason(&h, &message(&bad, "REQUEST"));
    assert!(reason.contains("DTSTART"), "{reason}");
    // Not a calendar at all.
    let reason = failed_reason(&h, &message("hello", "REQUEST"));
    assert!(reason.contains("illisible"), "{reason}");
    // FREQ=SECONDLY without COUNT: refused at filing (RFC 5545 §3.3.10), nothing stored.
    let secondly = calendar(
        "REQUEST",
        &[vevent(
            "sec",
            0,
            "20270101T000000Z",
            "20270301T100000",
            "RRULE:FREQ=SECONDLY\r\n",
        )],
    );
    let reason = failed_reason(&h, &message(&secondly, "REQUEST"));
    assert!(reason.contains("sans fin"), "{reason}");
    assert!(h
        .agenda
        .occurrences(h.camille.id, 1_790_000_000, i64::MAX)
        .unwrap()
        .is_empty());
    assert!(h.agenda.send_due_reminders(1_800_000_000).is_ok());
}

fn parse_reply(message: &[u8]) -> (String, String) {
    let msg = mail_parser::MessageParser::default()
        .parse(message)
        .unwrap();
    let part = msg
        .parts
        .iter()
        .find(|p| {
            mail_parser::MimeHeaders::content_type(*p).is_some_and(|c| {
                c.subtype() == Some("calendar") && c.attribute("method") == Some("REPLY")
            })
        })
        .expect("a text/calendar; method=REPLY part");
    let ctype = msg.parts[0]
        .headers
        .iter()
        .find(|h| h.name.as_str() == "Content-Type")
        .map(|h| format!("{:?}", h.value))
        .unwrap_or_default();
    (String::from_utf8(part.contents().to_vec()).unwrap(), ctype)
}

#[test]
fn reply_is_rfc5546_and_reads_back() {
    let h = hub();
    h.agenda.file_message(
        &h.camille,
        Some(&addr(MARTIN)),
        &fixture("thunderbird-request.eml"),
    );
    let uid = "5c2d1b7e-3f0a-4a7e-9d1e-tb0001@chu.mshub.test";
    let reply = h.agenda.respond(&h.camille, uid, Answer::Decline).unwrap();
    assert_eq!(reply.to, MARTIN);
    let (ics, top) = parse_reply(&reply.message);
    let unfolded = ics.replace("\r\n ", "");
    assert!(top.contains("alternative"), "{top}");
    let cal = ics::read_invitation(ics.as_bytes(), &IcsLimits::default());
    // Our reader files REQUEST/CANCEL/PUBLISH; a REPLY is read as unsupported, by method.
    assert!(matches!(cal, Err(Rejection::UnsupportedMethod { ref method }) if method == "REPLY"));
    let parsed = ics::parse_calendar(&ics).unwrap();
    assert_eq!(parsed.uids().collect::<Vec<_>>(), vec![uid]);
    assert!(unfolded.contains("ATTENDEE;CN=\"Camille Durand\";PARTSTAT=DECLINED:mailto:284057511204339@patient.mshub.test"));
    assert!(
        unfolded.contains("ORGANIZER;CN=\"Dr Claire Martin\":mailto:claire.martin@chu.mshub.test")
    );
    assert_eq!(ics.matches("ATTENDEE").count(), 1);
    let a = h.agenda.appointment(h.camille.id, uid).unwrap().unwrap();
    assert_eq!(a.partstat, PartStat::Declined);
}

#[test]
fn reply_reads_back_with_python_icalendar() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import icalendar"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 cannot import icalendar: run scripts/install-deps --tests"
    );
    let h = hub();
    h.agenda.file_message(
        &h.camille,
        Some(&addr(MARTIN)),
        &fixture("thunderbird-request.eml"),
    );
    let uid = "5c2d1b7e-3f0a-4a7e-9d1e-tb0001@chu.mshub.test";
    let reply = h.agenda.respond(&h.camille, uid, Answer::Accept).unwrap();
    let (ics, _) = parse_reply(&reply.message);
    let script = r#"
import sys, icalendar
cal = icalendar.Calendar.from_ical(sys.stdin.read())
assert str(cal['METHOD']) == 'REPLY', cal['METHOD']
ev = [c for c in cal.walk('VEVENT')][0]
att = ev['ATTENDEE']
assert not isinstance(att, list), 'exactly one ATTENDEE'
print(ev['UID'], att.params['PARTSTAT'], str(att), str(ev['ORGANIZER']), int(ev['SEQUENCE']))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{uid} ACCEPTED mailto:{CAMILLE} mailto:{MARTIN} 0")
    );
}

#[test]
fn reminder_is_sent_once_into_the_inbox() {
    let h = hub();
    h.agenda.file_message(
        &h.camille,
        Some(&addr(MARTIN)),
        &fixture("thunderbird-request.eml"),
    );
    let inbox = h
        .store
        .special_mailbox(h.camille.id, mshub_store::SpecialUse::Inbox)
        .unwrap();
    let before = h.store.messages(inbox.id).unwrap().len();
    // Two days before: nothing. 23 hours before: due.
    assert!(h
        .agenda
        .due_reminders(T2027_01_12_0900Z - 48 * 3600)
        .unwrap()
        .is_empty());
    let now = T2027_01_12_0900Z - 23 * 3600;
    assert_eq!(h.agenda.due_reminders(now).unwrap().len(), 1);
    assert_eq!(h.agenda.send_due_reminders(now).unwrap(), 1);
    assert_eq!(h.agenda.send_due_reminders(now + 60).unwrap(), 0);
    let messages = h.store.messages(inbox.id).unwrap();
    assert_eq!(messages.len(), before + 1);
    let raw = h
        .store
        .read_message(inbox.id, messages.last().unwrap().uid)
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("Rappel"), "{text}");
}

#[test]
fn the_reminder_lead_comes_from_the_configuration() {
    let h = hub();
    let config = mshub_agenda::AgendaConfig {
        reminder_lead_secs: 2 * 3600,
    };
    let agenda =
        mshub_agenda::Agenda::with_limits(h.store.clone(), h.directory.clone(), (&config).into());
    agenda.file_message(
        &h.camille,
        Some(&addr(MARTIN)),
        &fixture("thunderbird-request.eml"),
    );
    // With a 2 h lead: nothing 23 h before, due 1 h before.
    assert!(agenda
        .due_reminders(T2027_01_12_0900Z - 23 * 3600)
        .unwrap()
        .is_empty());
    assert_eq!(
        agenda
            .due_reminders(T2027_01_12_0900Z - 3600)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn feed_token_serves_the_calendar_until_revoked() {
    let h = hub();
    h.agenda.file_message(
        &h.camille,
        Some(&addr(MARTIN)),
        &fixture("google-request.eml"),
    );
    let token = h.agenda.feed_token(h.camille.id).unwrap();
    assert_eq!(token.len(), 43);
    assert_eq!(h.agenda.feed_token(h.camille.id).unwrap(), token);
    let body = h.agenda.feed(&token).unwrap().unwrap();
    assert!(
        body.contains("METHOD:PUBLISH") && body.contains("7kukuqrfedlm2f9t0vr42q2ubo@google.com")
    );
    assert!(h.agenda.feed("not-a-token").unwrap().is_none());
    let new = h.agenda.revoke_feed(h.camille.id).unwrap();
    assert_ne!(new, token);
    assert!(h.agenda.feed(&token).unwrap().is_none());
    assert!(h.agenda.feed(&new).unwrap().is_some());
}

#[test]
fn recurring_appointment_is_reminded_before_each_occurrence() {
    let h = hub();
    // Daily at 10:00 Paris (09:00 UTC in March before DST), three times from 1 March 2027.
    let series = calendar(
        "REQUEST",
        &[vevent(
            "daily@chu",
            0,
            "20270101T000000Z",
            "20270301T100000",
            "RRULE:FREQ=DAILY;COUNT=3\r\n",
        )],
    );
    h.agenda.file_message(
        &h.camille,
        Some(&addr(MARTIN)),
        &message(&series, "REQUEST"),
    );
    let first = 1_803_891_600; // 2027-03-01T09:00:00Z
    let mut sent = 0;
    for day in 0..4 {
        let now = first + day * 86_400 - 12 * 3600;
        let due = h.agenda.due_reminders(now).unwrap();
        if day < 3 {
            assert_eq!(due.len(), 1, "day {day}");
            assert_eq!(due[0].start, first + day * 86_400);
        }
        sent += h.agenda.send_due_reminders(now).unwrap();
    }
    assert_eq!(sent, 3);
}

#[test]
fn calendar_file_without_method_is_filed_as_a_publication() {
    let h = hub();
    let ics = calendar(
        "REQUEST",
        &[vevent(
            "plain@chu",
            0,
            "20270101T000000Z",
            "20270301T100000",
            "",
        )],
    )
    .replace("METHOD:REQUEST\r\n", "");
    let raw = format!(
        "From: <{MARTIN}>\r\nTo: <{CAMILLE}>\r\nSubject: rdv\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         Voir la pièce jointe.\r\n--b\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"rdv.ics\"\r\n\r\n{ics}\r\n--b--\r\n"
    );
    let filing = h.agenda.file_message(&h.camille, None, raw.as_bytes());
    assert!(
        matches!(filing.outcome(), FilingOutcome::Filed { .. }),
        "{filing:?}"
    );
    assert_eq!(h.agenda.appointments(h.camille.id).unwrap().len(), 1);
}

#[test]
fn prevention_steps_due_are_announced_once_by_mail() {
    let h = hub();
    let today = mshub_agenda::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let inbox = h
        .store
        .special_mailbox(h.camille.id, mshub_store::SpecialUse::Inbox)
        .unwrap();
    let count = || h.store.messages(inbox.id).unwrap().len();
    // Camille, 42: cervical screening (25-65) has never been recorded.
    assert_eq!(
        h.agenda.announce_prevention(today, 1_795_650_000).unwrap(),
        1
    );
    assert_eq!(count(), 1);
    let raw = h
        .store
        .read_message(inbox.id, h.store.messages(inbox.id).unwrap()[0].uid)
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_lowercase();
    assert!(
        text.contains("pr=c3=a9vention") || text.contains("prévention"),
        "{text}"
    );
    // The same day again, or the next: nothing new to say.
    assert_eq!(
        h.agenda.announce_prevention(today, 1_795_650_000).unwrap(),
        0
    );
    let tomorrow = today.succ_opt().unwrap();
    assert_eq!(
        h.agenda
            .announce_prevention(tomorrow, 1_795_736_400)
            .unwrap(),
        0
    );
    assert_eq!(count(), 1);
}

/// RFC 5546 §3.2: only the organizer updates or cancels. Another professional's REQUEST with
/// the same UID and a higher SEQUENCE, or its CANCEL, is refused and changes nothing; without
/// an authenticated sender nothing is changed either.
#[test]
fn only_the_organizer_moves_or_cancels_an_appointment() {
    let h = hub();
    let uid = "consult@chu";
    let v0 = calendar(
        "REQUEST",
        &[vevent(uid, 0, "20270101T000000Z", "20270301T100000", "")],
    );
    let first = h
        .agenda
        .file_message(&h.camille, Some(&addr(MARTIN)), &message(&v0, "REQUEST"));
    assert!(
        matches!(first.outcome(), FilingOutcome::Filed { .. }),
        "{first:?}"
    );
    let intruder = addr("someone.else@chu.mshub.test");
    let moved = calendar(
        "REQUEST",
        &[vevent(uid, 5, "20270102T000000Z", "20270305T180000", "")],
    );
    for (method, ics) in [("REQUEST", &moved), ("CANCEL", &moved)] {
        for sender in [Some(&intruder), None] {
            let filing = h
                .agenda
                .file_message(&h.camille, sender, &message(ics, method));
            let FilingOutcome::Failed { reason } = filing.outcome() else {
                panic!("{method} from {sender:?} was not refused: {filing:?}");
            };
            assert!(reason.contains("organisateur"), "{reason}");
        }
    }
    let a = &h.agenda.appointments(h.camille.id).unwrap()[0];
    assert_eq!(a.sequence, 0, "the appointment did not move");
    assert_ne!(a.status, mshub_agenda::Status::Cancelled);
    // The organizer itself still can.
    let filing = h
        .agenda
        .file_message(&h.camille, Some(&addr(MARTIN)), &message(&moved, "CANCEL"));
    assert!(
        matches!(filing.outcome(), FilingOutcome::Filed { .. }),
        "{filing:?}"
    );
}
