//! Test hub: a real store and directory in a temporary directory, with a patient and a
//! professional, and builders of invitation messages.

#![allow(dead_code)]

use std::sync::Arc;

use mshub_agenda::Agenda;
use mshub_directory::*;
use mshub_store::{MasterKey, Store};

pub const CAMILLE_INS: &str = "284057511204339";
pub const CAMILLE: &str = "284057511204339@patient.mshub.test";
pub const MARTIN: &str = "claire.martin@chu.mshub.test";

pub struct Hub {
    pub _dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub directory: Arc<Directory>,
    pub agenda: Agenda,
    pub camille: Account,
    pub martin: Account,
}

pub fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    let directory =
        Arc::new(Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap());
    directory
        .set_domain(
            DomainEntry {
                domain: Domain::try_from("chu.mshub.test").unwrap(),
                role: DomainRole::Local,
            },
            "test",
        )
        .unwrap();
    let camille = directory
        .add_account(
            Address::try_from(CAMILLE).unwrap(),
            AccountKind::Patient {
                ins: Ins::try_from(CAMILLE_INS).unwrap(),
                given_name: "Camille".into(),
                family_name: "Durand".into(),
                birth_date: BirthDate::try_from("1984-05-12").unwrap(),
                sex: Sex::Female,
            },
            None,
            "test",
        )
        .unwrap();
    let martin = directory
        .add_account(
            Address::try_from(MARTIN).unwrap(),
            AccountKind::Professional {
                rpps: (0..10)
                    .find_map(|c| Rpps::try_from(format!("1000345678{c}").as_str()).ok())
                    .unwrap(),
                given_name: "Claire".into(),
                family_name: "Martin".into(),
                profession: Profession::Physician,
                specialty: String::new(),
                city: String::new(),
            },
            None,
            "test",
        )
        .unwrap();
    let agenda = Agenda::new(store.clone(), directory.clone());
    Hub {
        _dir: dir,
        store,
        directory,
        agenda,
        camille,
        martin,
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub fn addr(a: &str) -> Address {
    Address::try_from(a).unwrap()
}

/// A VEVENT in a VCALENDAR with `method`.
pub fn calendar(method: &str, vevents: &[String]) -> String {
    let mut s =
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:{method}\r\n");
    for v in vevents {
        s.push_str(v);
    }
    s.push_str("END:VCALENDAR\r\n");
    s
}

pub fn vevent(uid: &str, seq: i64, dtstamp: &str, start: &str, extra: &str) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nSEQUENCE:{seq}\r\nDTSTAMP:{dtstamp}\r\n\
         DTSTART;TZID=Europe/Paris:{start}\r\nDURATION:PT30M\r\nSUMMARY:Consultation\r\n\
         ORGANIZER;CN=Dr Claire Martin:mailto:{MARTIN}\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{CAMILLE}\r\n{extra}END:VEVENT\r\n"
    )
}

/// A message with `ics` as its text/calendar part.
pub fn message(ics: &str, method: &str) -> Vec<u8> {
    format!(
        "From: <{MARTIN}>\r\nTo: <{CAMILLE}>\r\nSubject: rdv\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/calendar; charset=utf-8; method={method}\r\n\r\n{ics}"
    )
    .into_bytes()
}

/// A message as Thunderbird sends an invitation: multipart/mixed > multipart/alternative
/// (text/plain + `text/calendar; method=…`), and the same calendar again as `invite.ics`.
pub fn thunderbird_message(ics: &str, method: &str) -> Vec<u8> {
    format!(
        "From: Claire Martin <{MARTIN}>\r\nTo: <{CAMILLE}>\r\nSubject: Invitation\r\n\
         Message-ID: <tb-{}@chu.mshub.test>\r\nMIME-Version: 1.0\r\nUser-Agent: Mozilla Thunderbird\r\n\
         Content-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n--mixed\r\n\
         Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\nVous avez été invité(e) à un événement.\r\n\
         --alt\r\nContent-Type: text/calendar; charset=UTF-8; method={method}\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{ics}\r\n--alt--\r\n\r\n--mixed\r\n\
         Content-Type: application/ics; name=\"invite.ics\"\r\n\
         Content-Disposition: attachment; filename=\"invite.ics\"\r\n\r\n{ics}\r\n--mixed--\r\n",
        ics.len()
    )
    .into_bytes()
}
