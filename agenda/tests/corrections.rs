//! Corrections found with invitations from real calendar software: an occurrence moved by an
//! override listed twice, all-day events read as midnight, and rules that never end.

mod common;

use common::*;
use mshub_agenda::*;

/// 2027-03-01T09:00:00Z: Monday 1 March 2027, 10:00 in Paris (CET).
const MON_1_MARCH_10H: i64 = 1_803_891_600;
const WEEK: i64 = 7 * 86_400;
const MARCH_2027: (i64, i64) = (1_803_600_000, 1_806_500_000);

/// The master of a weekly physiotherapy series (four Mondays from 1 March 2027, 10:00 Paris)
/// as Thunderbird writes it.
fn weekly_master(sequence: i64) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:kine@chu\r\nSEQUENCE:{sequence}\r\nDTSTAMP:20270201T080000Z\r\n\
         DTSTART;TZID=Europe/Paris:20270301T100000\r\nDTEND;TZID=Europe/Paris:20270301T103000\r\n\
         RRULE:FREQ=WEEKLY;COUNT=4\r\nSUMMARY:Kinésithérapie\r\nLOCATION:Cabinet 1\r\n\
         ORGANIZER;CN=Dr Claire Martin:mailto:{MARTIN}\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{CAMILLE}\r\nEND:VEVENT\r\n"
    )
}

/// The second occurrence (Monday 8 March, 10:00) moved to Wednesday 10 March 16:00 for 45
/// minutes, elsewhere, under its own title: Thunderbird and Outlook raise its SEQUENCE.
fn moved_second(recurrence_id: &str, extra: &str) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:kine@chu\r\nSEQUENCE:1\r\nDTSTAMP:20270205T080000Z\r\n\
         RECURRENCE-ID{recurrence_id}\r\n\
         DTSTART;TZID=Europe/Paris:20270310T160000\r\nDTEND;TZID=Europe/Paris:20270310T164500\r\n\
         SUMMARY:Kinésithérapie (déplacée)\r\nLOCATION:Cabinet 2\r\nDESCRIPTION:Salle du fond.\r\n\
         ORGANIZER;CN=Dr Claire Martin:mailto:{MARTIN}\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{CAMILLE}\r\n{extra}END:VEVENT\r\n"
    )
}

fn file(h: &Hub, ics: &str, method: &str) -> AgendaFiling {
    h.agenda.file_message(
        &h.camille,
        Some(&addr(MARTIN)),
        &thunderbird_message(ics, method),
    )
}

fn march(h: &Hub) -> Vec<Occurrence> {
    h.agenda
        .occurrences(h.camille.id, MARCH_2027.0, MARCH_2027.1)
        .unwrap()
}

fn assert_moved(occ: &[Occurrence]) {
    assert_eq!(occ.len(), 4, "{occ:#?}");
    let starts: Vec<i64> = occ.iter().map(|o| o.start).collect();
    // Not at its old time any more (RFC 5545 §3.8.4.4: the override replaces the instance).
    assert!(!starts.contains(&(MON_1_MARCH_10H + WEEK)), "{occ:#?}");
    // Wednesday 10 March 16:00 Paris = 15:00 UTC.
    let moved = occ
        .iter()
        .find(|o| o.start == MON_1_MARCH_10H + 9 * 86_400 + 6 * 3600)
        .expect("the moved occurrence");
    assert!(moved.overridden);
    assert_eq!(moved.summary, "Kinésithérapie (déplacée)");
    assert_eq!(moved.location, "Cabinet 2");
    assert_eq!(moved.end - moved.start, 45 * 60);
    for o in occ.iter().filter(|o| !o.overridden) {
        assert_eq!(
            (o.summary.as_str(), o.location.as_str()),
            ("Kinésithérapie", "Cabinet 1")
        );
        assert_eq!(o.end - o.start, 30 * 60);
    }
}

#[test]
fn moved_occurrence_sent_with_its_series_replaces_the_original() {
    let h = hub();
    let ics = calendar(
        "REQUEST",
        &[
            weekly_master(0),
            moved_second(";TZID=Europe/Paris:20270308T100000", ""),
        ],
    );
    let filing = file(&h, &ics, "REQUEST");
    assert!(
        matches!(filing.outcome(), FilingOutcome::Filed { .. }),
        "{filing:?}"
    );
    assert_moved(&march(&h));
}

#[test]
fn moved_occurrence_sent_alone_later_replaces_the_original() {
    let h = hub();
    file(&h, &calendar("REQUEST", &[weekly_master(0)]), "REQUEST");
    assert_eq!(march(&h).len(), 4);
    // Outlook sends only the changed instance, its RECURRENCE-ID in UTC.
    let filing = file(
        &h,
        &calendar("REQUEST", &[moved_second(":20270308T090000Z", "")]),
        "REQUEST",
    );
    assert!(
        matches!(filing.outcome(), FilingOutcome::Filed { .. }),
        "{filing:?}"
    );
    assert_moved(&march(&h));
}

#[test]
fn cancelled_override_removes_the_occurrence() {
    let h = hub();
    let ics = calendar(
        "REQUEST",
        &[
            weekly_master(0),
            moved_second(";TZID=Europe/Paris:20270308T100000", "STATUS:CANCELLED\r\n"),
        ],
    );
    file(&h, &ics, "REQUEST");
    let occ = march(&h);
    assert_eq!(occ.len(), 3, "{occ:#?}");
    assert!(occ.iter().all(|o| !o.overridden));
    assert!(!occ.iter().any(|o| o.start == MON_1_MARCH_10H + WEEK));
}

#[test]
fn cancel_of_one_occurrence_at_a_higher_sequence_removes_it() {
    let h = hub();
    file(&h, &calendar("REQUEST", &[weekly_master(0)]), "REQUEST");
    let cancel = calendar(
        "CANCEL",
        &[format!(
            "BEGIN:VEVENT\r\nUID:kine@chu\r\nSEQUENCE:1\r\nDTSTAMP:20270206T080000Z\r\n\
             RECURRENCE-ID;TZID=Europe/Paris:20270315T100000\r\n\
             ORGANIZER:mailto:{MARTIN}\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n"
        )],
    );
    let filing = file(&h, &cancel, "CANCEL");
    assert!(
        matches!(filing.outcome(), FilingOutcome::Filed { .. }),
        "{filing:?}"
    );
    let occ = march(&h);
    assert_eq!(occ.len(), 3, "{occ:#?}");
    assert!(!occ.iter().any(|o| o.start == MON_1_MARCH_10H + 2 * WEEK));
}

/// A message from Martin carrying one VEVENT with `rule`.
fn series(uid: &str, rule: &str) -> String {
    calendar(
        "REQUEST",
        &[vevent(uid, 0, "20270101T000000Z", "20270301T100000", rule)],
    )
}

#[test]
fn endless_secondly_rule_is_refused_with_a_reason_and_stores_nothing() {
    let h = hub();
    for rule in [
        "RRULE:FREQ=SECONDLY\r\n",
        "RRULE:FREQ=MINUTELY;INTERVAL=30\r\n",
        "RRULE:FREQ=HOURLY\r\n",
    ] {
        let filing = file(&h, &series("flood@chu", rule), "REQUEST");
        let FilingOutcome::Failed { reason } = filing.outcome() else {
            panic!("{rule} was filed: {filing:?}");
        };
        assert!(
            reason.contains("sans fin") && reason.contains("COUNT") && reason.contains("UNTIL"),
            "{reason}"
        );
    }
    assert!(h.agenda.appointments(h.camille.id).unwrap().is_empty());
}

#[test]
fn rule_denser_than_the_bound_within_a_year_is_refused() {
    let h = hub();
    // Every hour for ten thousand hours, and four times a day forever.
    for rule in [
        "RRULE:FREQ=HOURLY;COUNT=10000\r\n",
        "RRULE:FREQ=DAILY;BYHOUR=8,12,16,20\r\n",
    ] {
        let filing = file(&h, &series("dense@chu", rule), "REQUEST");
        let FilingOutcome::Failed { reason } = filing.outcome() else {
            panic!("{rule} was filed: {filing:?}");
        };
        assert!(reason.contains("occurrences en un an"), "{reason}");
    }
    assert!(h.agenda.appointments(h.camille.id).unwrap().is_empty());
    // Denser than daily but short, or daily forever: ordinary care, filed.
    for (uid, rule) in [
        ("short@chu", "RRULE:FREQ=HOURLY;COUNT=10\r\n"),
        ("daily@chu", "RRULE:FREQ=DAILY\r\n"),
        ("twice@chu", "RRULE:FREQ=DAILY;BYHOUR=8,20\r\n"),
    ] {
        let filing = file(&h, &series(uid, rule), "REQUEST");
        assert!(
            matches!(filing.outcome(), FilingOutcome::Filed { .. }),
            "{rule}: {filing:?}"
        );
    }
}

#[test]
fn a_refused_series_in_a_calendar_refuses_the_whole_calendar() {
    let h = hub();
    let ics = calendar(
        "REQUEST",
        &[
            vevent("fine@chu", 0, "20270101T000000Z", "20270301T100000", ""),
            vevent(
                "flood@chu",
                0,
                "20270101T000000Z",
                "20270301T100000",
                "RRULE:FREQ=SECONDLY\r\n",
            ),
        ],
    );
    let filing = file(&h, &ics, "REQUEST");
    assert!(matches!(filing.outcome(), FilingOutcome::Failed { .. }));
    assert!(h.agenda.appointments(h.camille.id).unwrap().is_empty());
}

#[test]
fn a_long_daily_series_does_not_hide_a_later_appointment() {
    let h = hub();
    file(&h, &series("daily@chu", "RRULE:FREQ=DAILY\r\n"), "REQUEST");
    // A surgery two years later.
    let later = calendar(
        "REQUEST",
        &[vevent(
            "surgery@chu",
            0,
            "20270101T000000Z",
            "20290305T080000",
            "",
        )],
    );
    file(&h, &later, "REQUEST");
    let occ = h
        .agenda
        .occurrences(h.camille.id, MARCH_2027.0, MARCH_2027.0 + 4 * 366 * 86_400)
        .unwrap();
    assert!(occ.iter().any(|o| o.uid == "surgery@chu"), "{}", occ.len());
    let daily = occ.iter().filter(|o| o.uid == "daily@chu").count();
    assert!(daily <= 732, "{daily}");
}

/// 2027-03-10T00:00 in Paris (23:00 UTC the day before).
const WED_10_MARCH_PARIS_MIDNIGHT: i64 = 1_804_633_200;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn all_day_event(uid: &str, dates: &str) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nSEQUENCE:0\r\nDTSTAMP:20270201T080000Z\r\n{dates}\
         SUMMARY:Hospitalisation de jour\r\nORGANIZER;CN=Dr Claire Martin:mailto:{MARTIN}\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{CAMILLE}\r\nEND:VEVENT\r\n"
    )
}

#[test]
fn all_day_event_keeps_its_paris_days() {
    let h = hub();
    let ics = calendar(
        "REQUEST",
        &[all_day_event(
            "hdj@chu",
            "DTSTART;VALUE=DATE:20270310\r\nDTEND;VALUE=DATE:20270312\r\n",
        )],
    );
    let filing = file(&h, &ics, "REQUEST");
    assert!(
        matches!(filing.outcome(), FilingOutcome::Filed { .. }),
        "{filing:?}"
    );
    let a = h
        .agenda
        .appointment(h.camille.id, "hdj@chu")
        .unwrap()
        .unwrap();
    // DTEND is exclusive (RFC 5545 §3.6.1): the 10th and the 11th.
    let span = DaySpan {
        first: day(2027, 3, 10),
        last: day(2027, 3, 11),
    };
    assert_eq!(a.all_day, Some(span));
    assert_eq!(span.days(), 2);
    // The instants are Paris midnights; the UTC day of the start is the 9th, which is why
    // the dates, not the instants, are what to display.
    assert_eq!(a.start, WED_10_MARCH_PARIS_MIDNIGHT);
    assert_eq!(a.end, WED_10_MARCH_PARIS_MIDNIGHT + 2 * 86_400);
    assert_eq!(day_of(a.start), Some(day(2027, 3, 9)));
    let occ = march(&h);
    assert_eq!(occ.len(), 1);
    assert_eq!(occ[0].all_day, Some(span));
    // The organizer's software gets its dates back as dates, not UTC midnights of the 9th.
    let reply = h
        .agenda
        .respond(&h.camille, "hdj@chu", Answer::Accept)
        .unwrap();
    let ics = String::from_utf8_lossy(&reply.message).into_owned();
    assert!(ics.contains("DTSTART;VALUE=DATE:20270310\r\n"), "{ics}");
    assert!(ics.contains("DTEND;VALUE=DATE:20270312\r\n"), "{ics}");
    // A timed appointment is not all-day.
    let timed = calendar(
        "REQUEST",
        &[vevent(
            "timed@chu",
            0,
            "20270101T000000Z",
            "20270301T100000",
            "",
        )],
    );
    file(&h, &timed, "REQUEST");
    let timed = h
        .agenda
        .appointment(h.camille.id, "timed@chu")
        .unwrap()
        .unwrap();
    assert_eq!(timed.all_day, None);
}

#[test]
fn all_day_event_without_end_is_one_paris_day_even_when_the_clocks_change() {
    let h = hub();
    // Sunday 28 March 2027: summer time, a day of 23 hours.
    let ics = calendar(
        "REQUEST",
        &[all_day_event("dst@chu", "DTSTART;VALUE=DATE:20270328\r\n")],
    );
    file(&h, &ics, "REQUEST");
    let a = h
        .agenda
        .appointment(h.camille.id, "dst@chu")
        .unwrap()
        .unwrap();
    let span = DaySpan {
        first: day(2027, 3, 28),
        last: day(2027, 3, 28),
    };
    assert_eq!(a.all_day, Some(span));
    // 00:00 CET (23:00 UTC on the 27th) to 00:00 CEST (22:00 UTC on the 28th).
    assert_eq!((a.start, a.end), (1_806_188_400, 1_806_188_400 + 23 * 3600));
}

#[test]
fn weekly_all_day_series_stays_on_its_days_across_the_clock_change() {
    let h = hub();
    let ics = calendar(
        "REQUEST",
        &[all_day_event(
            "weekly-day@chu",
            "DTSTART;VALUE=DATE:20270322\r\nDTEND;VALUE=DATE:20270323\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\n",
        )],
    );
    file(&h, &ics, "REQUEST");
    let occ = h
        .agenda
        .occurrences(h.camille.id, MARCH_2027.0, MARCH_2027.1 + 30 * 86_400)
        .unwrap();
    let days: Vec<Option<DaySpan>> = occ.iter().map(|o| o.all_day).collect();
    let one = |d: NaiveDate| Some(DaySpan { first: d, last: d });
    assert_eq!(
        days,
        vec![
            one(day(2027, 3, 22)),
            one(day(2027, 3, 29)),
            one(day(2027, 4, 5))
        ]
    );
    // Monday 29 March begins at 22:00 UTC on the 28th (CEST).
    assert_eq!(occ[1].start, 1_806_188_400 + 23 * 3600);
}

#[test]
fn all_day_appointment_is_reminded_the_evening_before() {
    let h = hub();
    let ics = calendar(
        "REQUEST",
        &[all_day_event(
            "hdj@chu",
            "DTSTART;VALUE=DATE:20270310\r\nDTEND;VALUE=DATE:20270312\r\n",
        )],
    );
    file(&h, &ics, "REQUEST");
    // Tuesday 9 March, 18:00 in Paris = 17:00 UTC.
    let eve = WED_10_MARCH_PARIS_MIDNIGHT - 6 * 3600;
    assert!(h.agenda.due_reminders(eve - 60).unwrap().is_empty());
    let due = h.agenda.due_reminders(eve).unwrap();
    assert_eq!(due.len(), 1);
    assert!(due[0].all_day);
    assert_eq!(h.agenda.send_due_reminders(eve).unwrap(), 1);
    let inbox = h
        .store
        .special_mailbox(h.camille.id, mshub_store::SpecialUse::Inbox)
        .unwrap();
    let last = h.store.messages(inbox.id).unwrap().last().unwrap().uid;
    let raw = h.store.read_message(inbox.id, last).unwrap();
    let text = mail_parser::MessageParser::default()
        .parse(&raw)
        .unwrap()
        .body_text(0)
        .unwrap()
        .to_string();
    assert!(
        text.contains("mercredi 10 mars 2027 (toute la journée)"),
        "{text}"
    );
    assert!(!text.contains("00h00"), "{text}");
}
