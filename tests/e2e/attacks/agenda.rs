//! Finding 7: appointments moved by anyone. Dr Martin invites Camille; another professional of
//! the hub, who knows the UID, sends a REQUEST with a higher SEQUENCE and then a CANCEL. Only
//! the organizer may (RFC 5546 §3.2): both are refused, the appointment is unchanged, and the
//! sender is told why.

use std::sync::Arc;

use crate::support::*;

const UID: &str = "rdv-7f3c@hopital.mshub.test";
const NURSE: (&str, &str) = ("ines.leroy@hopital.mshub.test", "a-long-password");

/// An iMIP message from `from` to Camille: a text part and the calendar as `text/calendar`.
fn invitation(from: &str, method: &str, sequence: u32, day: u32, marker: &str) -> Vec<u8> {
    let status = if method == "CANCEL" {
        "STATUS:CANCELLED\r\n"
    } else {
        ""
    };
    let calendar = format!(
        "BEGIN:VCALENDAR\r\nPRODID:-//attack//EN\r\nVERSION:2.0\r\nMETHOD:{method}\r\n\
BEGIN:VEVENT\r\nUID:{UID}\r\nSEQUENCE:{sequence}\r\nDTSTAMP:20261201T0{sequence}0000Z\r\n\
DTSTART:202701{day:02}T090000Z\r\nDTEND:202701{day:02}T093000Z\r\n\
SUMMARY:Consultation\r\n{status}\
ORGANIZER;CN=Dr Martin:mailto:{martin}\r\n\
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{camille}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        martin = MARTIN.0,
        camille = CAMILLE.0,
    );
    format!(
        "From: <{from}>\r\nTo: <{camille}>\r\nSubject: Rendez-vous {marker}\r\n\
Message-ID: <{marker}@hopital.mshub.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nRendez-vous.\r\n\
--b\r\nContent-Type: text/calendar; charset=utf-8; method={method}\r\n\r\n{calendar}\r\n--b--\r\n",
        camille = CAMILLE.0,
    )
    .into_bytes()
}

#[test]
fn only_the_organizer_moves_or_cancels_an_appointment() {
    let mut hub = Instance::demo();
    hub.stop();
    let added = add_nurse(hub.config.to_str().unwrap());
    assert!(added.status.success(), "{}", text(&added.stderr));
    hub.start();

    submit(
        &hub,
        MARTIN,
        CAMILLE.0,
        &invitation(MARTIN.0, "REQUEST", 0, 12, "v0"),
    );
    submit(
        &hub,
        NURSE,
        CAMILLE.0,
        &invitation(NURSE.0, "REQUEST", 5, 20, "moved"),
    );
    submit(
        &hub,
        NURSE,
        CAMILLE.0,
        &invitation(NURSE.0, "CANCEL", 6, 20, "cancelled"),
    );
    // Filing runs after the 250: the intruder's two filing reports say it is done (read with
    // curl over IMAPS: `SEARCH ALL` on its INBOX).
    let (_, imaps) = hub.imap_ports();
    let mut found = String::new();
    let done = poll(
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(500),
        || {
            let out = std::process::Command::new("curl")
                .args(["-s", "--cacert", hub.ca.to_str().unwrap()])
                .args(["-u", &format!("{}:{}", NURSE.0, NURSE.1)])
                .arg(format!("imaps://localhost:{imaps}/INBOX?ALL"))
                .output()
                .unwrap();
            found = text(&out.stdout);
            found
                .split_whitespace()
                .filter(|w| w.parse::<u32>().is_ok())
                .count()
                >= 2
        },
    );
    assert!(done, "the sender is told: {found}");
    hub.stop();
    let reports = hub.inbox(NURSE.0);
    assert_eq!(reports.len(), 2);
    for report in &reports {
        assert!(contains(report, "organisateur"), "{}", text(report));
    }
    let (store, directory) = hub.open_store();
    let directory = Arc::new(directory);
    let camille = directory
        .account_by_address(&mshub_directory::Address::try_from(CAMILLE.0).unwrap())
        .unwrap()
        .unwrap();
    let agenda = mshub_agenda::Agenda::new(store, directory);
    let appointments = agenda.appointments(camille.id).unwrap();
    assert_eq!(appointments.len(), 1, "{appointments:?}");
    let a = &appointments[0];
    assert_eq!(
        a.sequence, 0,
        "moved by someone who is not the organizer: {a:?}"
    );
    assert_ne!(a.status, mshub_agenda::Status::Cancelled, "{a:?}");
}
