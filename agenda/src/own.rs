//! The patient's own appointments ("rendez-vous personnels"), and those that apps propose
//! ("à confirmer"): made in the agenda rather than received by mail, they are stored, sealed,
//! reminded and published in the feed exactly like invitations, as a VEVENT the agenda writes
//! itself (RFC 5545 §3.6.1, without ORGANIZER: nobody else is invited).
//!
//! Only these are edited here; an organiser's invitation changes only by the organiser's mail
//! (RFC 5546 §3.2). An edit names the version (SEQUENCE) its form was built from: a form older
//! than the stored appointment is refused rather than silently undoing the other change.

use chrono::NaiveDate;

use mshub_directory::Account;
use mshub_store::Batch;

use crate::appointments::{lane, paris_midnight, record_key, retry, Record, APPOINTMENTS};
use crate::reply::{dtstart_dtend, escape_text, fold, utc};
use crate::{Agenda, AgendaError, Appointment, DaySpan, Origin, PartStat, Result, Status};

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest place, in characters.
pub const MAX_PLACE: usize = 300;
/// Longest professional's name, in characters.
pub const MAX_PROFESSIONAL: usize = 200;
/// Longest notes, in characters.
pub const MAX_NOTES: usize = 4000;
/// How far ahead an appointment may be set: ten years (3,653 days).
pub const MAX_AHEAD_SECS: i64 = 3653 * 86_400;

/// When an own appointment takes place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// From `start` to `end`, Unix seconds.
    Timed { start: i64, end: i64 },
    /// Whole days in Paris, `first` to `last` included ("toute la journée").
    AllDay { first: NaiveDate, last: NaiveDate },
}

impl When {
    /// From `start`, for `seconds` (a form that asks for a duration).
    pub fn lasting(start: i64, seconds: i64) -> Self {
        When::Timed {
            start,
            end: start.saturating_add(seconds),
        }
    }

    /// One whole day.
    pub fn day(day: NaiveDate) -> Self {
        When::AllDay {
            first: day,
            last: day,
        }
    }
}

/// What the patient (or an app) writes in an appointment form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnAppointment {
    /// 1 to [`MAX_TITLE`] characters.
    pub title: String,
    pub when: When,
    /// At most [`MAX_PLACE`] characters.
    pub place: String,
    /// The professional seen, free text, at most [`MAX_PROFESSIONAL`] characters.
    pub professional: String,
    /// At most [`MAX_NOTES`] characters.
    pub notes: String,
}

/// 1 January 1900, 00:00 in Paris: no appointment begins earlier.
fn earliest() -> i64 {
    NaiveDate::from_ymd_opt(1900, 1, 1)
        .map(paris_midnight)
        .unwrap_or(i64::MIN)
}

/// The form, checked and trimmed; `now` bounds how far ahead it may be.
fn validate(
    form: &OwnAppointment,
    now: i64,
) -> Result<(OwnAppointment, i64, i64, Option<DaySpan>)> {
    let title = form.title.trim().to_string();
    let place = form.place.trim().to_string();
    let professional = form.professional.trim().to_string();
    let notes = form.notes.trim().to_string();
    let len = |s: &str| s.chars().count();
    if title.is_empty() {
        return Err(AgendaError::EmptyTitle);
    }
    if len(&title) > MAX_TITLE {
        return Err(AgendaError::TitleTooLong {
            len: len(&title),
            max: MAX_TITLE,
        });
    }
    if len(&place) > MAX_PLACE {
        return Err(AgendaError::PlaceTooLong {
            len: len(&place),
            max: MAX_PLACE,
        });
    }
    if len(&professional) > MAX_PROFESSIONAL {
        return Err(AgendaError::ProfessionalTooLong {
            len: len(&professional),
            max: MAX_PROFESSIONAL,
        });
    }
    if len(&notes) > MAX_NOTES {
        return Err(AgendaError::NotesTooLong {
            len: len(&notes),
            max: MAX_NOTES,
        });
    }
    let (start, end, all_day) = match form.when {
        When::Timed { start, end } => (start, end, None),
        When::AllDay { first, last } => {
            if last < first {
                return Err(AgendaError::EndNotAfterStart);
            }
            let span = DaySpan { first, last };
            let (start, end) = span.bounds();
            (start, end, Some(span))
        }
    };
    if end <= start {
        return Err(AgendaError::EndNotAfterStart);
    }
    if start < earliest() {
        return Err(AgendaError::TooEarly);
    }
    if end > now.saturating_add(MAX_AHEAD_SECS) {
        return Err(AgendaError::TooFarAhead);
    }
    Ok((
        OwnAppointment {
            title,
            when: form.when,
            place,
            professional,
            notes,
        },
        start,
        end,
        all_day,
    ))
}

/// RFC 5545 §3.3.4 DATE value.
/// The VCALENDAR the agenda keeps (and publishes in the feed) for an own appointment.
fn own_ics(a: &Appointment) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".into(),
        "PRODID:-//mshub//agenda//FR".into(),
        "BEGIN:VEVENT".into(),
        format!("UID:{}", escape_text(&a.uid)),
        format!("SEQUENCE:{}", a.sequence),
        format!("DTSTAMP:{}", utc(a.dtstamp)),
    ];
    lines.extend(dtstart_dtend(a));
    lines.push(format!("SUMMARY:{}", escape_text(&a.summary)));
    if !a.location.is_empty() {
        lines.push(format!("LOCATION:{}", escape_text(&a.location)));
    }
    if !a.description.is_empty() {
        lines.push(format!("DESCRIPTION:{}", escape_text(&a.description)));
    }
    // RFC 5545 §3.8.4.2: CONTACT, the professional to see.
    if !a.professional.is_empty() {
        lines.push(format!("CONTACT:{}", escape_text(&a.professional)));
    }
    // RFC 5545 §3.8.1.11: a proposal is TENTATIVE until the patient confirms it.
    lines.push(
        match a.status {
            Status::Proposed | Status::Tentative => "STATUS:TENTATIVE",
            Status::Cancelled => "STATUS:CANCELLED",
            Status::Confirmed => "STATUS:CONFIRMED",
        }
        .into(),
    );
    lines.push("END:VEVENT".into());
    lines.push("END:VCALENDAR".into());
    let mut out = String::new();
    for line in lines {
        fold(&line, &mut out);
    }
    out
}

fn record_of(a: Appointment) -> Record {
    let ics = own_ics(&a);
    Record {
        appointment: a,
        ics,
    }
}

/// An app id as the catalogue gives them: 1 to 100 letters, digits, `-`, `_` or `.`.
fn valid_app_id(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Agenda {
    fn new_uid(&self) -> Result<String> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).map_err(|e| AgendaError::Random(e.to_string()))?;
        Ok(format!(
            "{}@{}",
            crate::reminders::hex(&bytes),
            self.directory.hub_domain().as_str()
        ))
    }

    /// Stores a new own appointment (or proposal) made from `form`.
    fn create(
        &self,
        patient: &Account,
        form: &OwnAppointment,
        origin: Origin,
        status: Status,
    ) -> Result<Appointment> {
        if !patient.kind.is_patient() {
            return Err(AgendaError::NotAPatient(patient.address.to_string()));
        }
        let now = mshub_store::now();
        let (form, start, end, all_day) = validate(form, now)?;
        let record = record_of(Appointment {
            uid: self.new_uid()?,
            summary: form.title,
            location: form.place,
            description: form.notes,
            organizer: None,
            organizer_name: None,
            invited_by: None,
            invitation_id: None,
            start,
            end,
            all_day,
            tzid: crate::ics::DEFAULT_TZ.name().to_string(),
            status,
            sequence: 0,
            dtstamp: now,
            // The patient takes part in what they set; a proposal is theirs to answer.
            partstat: match status {
                Status::Proposed => PartStat::NeedsAction,
                _ => PartStat::Accepted,
            },
            recurrent: false,
            origin,
            professional: form.professional,
        });
        let records = self.records();
        retry(&self.store, lane(patient.id), || {
            let mut batch = Batch::new();
            let due = self.next_reminder(&record, mshub_store::now());
            // A fresh random UID: the check that nothing is there only guards a collision.
            records.put(&mut batch, patient.id, &record, None, due)?;
            Ok((batch, ()))
        })?;
        Ok(record.appointment)
    }

    /// Adds an appointment the patient makes themselves. Refused with a French message
    /// (its Display) when the form is invalid: title 1–200 characters, place ≤ 300,
    /// professional ≤ 200, notes ≤ 4000, end after start, not before 1900 nor more than ten
    /// years ahead.
    pub fn add_own(&self, patient: &Account, form: &OwnAppointment) -> Result<Appointment> {
        self.create(patient, form, Origin::Patient, Status::Confirmed)
    }

    /// An app proposes an appointment to the patient: stored "à confirmer"
    /// ([`Status::Proposed`]), shown but not reminded until [`Agenda::accept_proposal`].
    pub fn propose(
        &self,
        patient: &Account,
        app_id: &str,
        form: &OwnAppointment,
    ) -> Result<Appointment> {
        if !valid_app_id(app_id) {
            return Err(AgendaError::InvalidAppId(app_id.to_string()));
        }
        self.create(
            patient,
            form,
            Origin::App {
                app_id: app_id.to_string(),
            },
            Status::Proposed,
        )
    }

    /// Applies `change` to the own appointment `uid` (which must exist and be the patient's
    /// own), raising its SEQUENCE so that feed subscribers take the new version (RFC 5545
    /// §3.8.7.4).
    fn change_own(
        &self,
        patient: &Account,
        uid: &str,
        change: &dyn Fn(&mut Appointment) -> Result<()>,
    ) -> Result<Appointment> {
        if !patient.kind.is_patient() {
            return Err(AgendaError::NotAPatient(patient.address.to_string()));
        }
        let records = self.records();
        retry(&self.store, lane(patient.id), || {
            let (record, raw) = records
                .get(patient.id, uid)?
                .ok_or_else(|| AgendaError::Deleted(uid.to_string()))?;
            if !record.appointment.is_own() {
                return Err(AgendaError::NotOwn(uid.to_string()));
            }
            let mut a = record.appointment;
            change(&mut a)?;
            a.sequence += 1;
            a.dtstamp = mshub_store::now();
            let record = record_of(a);
            let mut batch = Batch::new();
            let due = self.next_reminder(&record, mshub_store::now());
            records.put(&mut batch, patient.id, &record, Some(raw), due)?;
            Ok((batch, record.appointment))
        })
    }

    /// Changes an own appointment. `expected_sequence` is the [`Appointment::sequence`] the
    /// form was built from: if the appointment changed since, [`AgendaError::StaleForm`]; if
    /// it was deleted, [`AgendaError::Deleted`]; an invitation is [`AgendaError::NotOwn`].
    pub fn update_own(
        &self,
        patient: &Account,
        uid: &str,
        expected_sequence: i64,
        form: &OwnAppointment,
    ) -> Result<Appointment> {
        let (form, start, end, all_day) = validate(form, mshub_store::now())?;
        self.change_own(patient, uid, &|a| {
            if a.sequence != expected_sequence {
                return Err(AgendaError::StaleForm {
                    uid: a.uid.clone(),
                    expected: expected_sequence,
                    current: a.sequence,
                });
            }
            a.summary = form.title.clone();
            a.location = form.place.clone();
            a.description = form.notes.clone();
            a.professional = form.professional.clone();
            (a.start, a.end, a.all_day) = (start, end, all_day);
            Ok(())
        })
    }

    /// Deletes an own appointment (and its reminder): nothing of it is kept.
    pub fn delete_own(&self, patient: &Account, uid: &str) -> Result<()> {
        self.remove_own(patient, uid, |_| Ok(()))
    }

    /// Removes an own appointment if `allowed` says so of the record as it is when removed
    /// (checked and removed in one compare-and-swap).
    fn remove_own(
        &self,
        patient: &Account,
        uid: &str,
        allowed: impl Fn(&Appointment) -> Result<()>,
    ) -> Result<()> {
        if !patient.kind.is_patient() {
            return Err(AgendaError::NotAPatient(patient.address.to_string()));
        }
        let records = self.records();
        retry(&self.store, lane(patient.id), || {
            let (record, raw) = records
                .get(patient.id, uid)?
                .ok_or_else(|| AgendaError::Deleted(uid.to_string()))?;
            if !record.appointment.is_own() {
                return Err(AgendaError::NotOwn(uid.to_string()));
            }
            allowed(&record.appointment)?;
            let key = record_key(patient.id, uid);
            let mut batch = Batch::new();
            batch.check(APPOINTMENTS, key.clone(), Some(raw));
            batch.remove(APPOINTMENTS, key.clone());
            records.move_reminder(&mut batch, &key, None)?;
            Ok((batch, ()))
        })
    }

    /// The patient confirms an app's proposal: it becomes an appointment like the others,
    /// reminded.
    pub fn accept_proposal(&self, patient: &Account, uid: &str) -> Result<Appointment> {
        self.change_own(patient, uid, &|a| {
            if a.status != Status::Proposed {
                return Err(AgendaError::NotProposed(a.uid.clone()));
            }
            a.status = Status::Confirmed;
            a.partstat = PartStat::Accepted;
            Ok(())
        })
    }

    /// The patient declines an app's proposal: it is removed, as if never proposed.
    pub fn decline_proposal(&self, patient: &Account, uid: &str) -> Result<()> {
        // Checked on the record the removal swaps out: a proposal accepted meanwhile (in
        // another tab) stays.
        self.remove_own(patient, uid, |a| {
            if a.status == Status::Proposed {
                Ok(())
            } else {
                Err(AgendaError::NotProposed(uid.to_string()))
            }
        })
        .map_err(|e| match e {
            AgendaError::NotOwn(uid) => AgendaError::NotProposed(uid),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(start: i64, end: i64) -> OwnAppointment {
        OwnAppointment {
            title: "Dentiste".into(),
            when: When::Timed { start, end },
            place: String::new(),
            professional: String::new(),
            notes: String::new(),
        }
    }

    #[test]
    fn dates_before_1900_and_beyond_ten_years_are_refused() {
        let now = 1_800_000_000;
        assert!(matches!(
            validate(&form(-2_300_000_000, -2_299_990_000), now),
            Err(AgendaError::TooEarly)
        ));
        assert!(matches!(
            validate(&form(now + MAX_AHEAD_SECS, now + MAX_AHEAD_SECS + 60), now),
            Err(AgendaError::TooFarAhead)
        ));
        assert!(validate(&form(now, now + 60), now).is_ok());
    }

    #[test]
    fn own_ics_reads_back_as_an_all_day_event() {
        let first = NaiveDate::from_ymd_opt(2027, 3, 10).unwrap();
        let span = DaySpan {
            first,
            last: first + chrono::Days::new(1),
        };
        let (start, end) = span.bounds();
        let a = Appointment {
            uid: "x@mshub.test".into(),
            summary: "Cure; thermale, Dax".into(),
            location: String::new(),
            description: String::new(),
            organizer: None,
            organizer_name: None,
            invited_by: None,
            invitation_id: None,
            start,
            end,
            all_day: Some(span),
            tzid: "Europe/Paris".into(),
            status: Status::Confirmed,
            sequence: 0,
            dtstamp: 0,
            partstat: PartStat::Accepted,
            recurrent: false,
            origin: Origin::Patient,
            professional: "Dr Dupont".into(),
        };
        let ics = own_ics(&a);
        let read = crate::ics::read_invitation(ics.as_bytes(), &Default::default()).unwrap();
        let facts = read.groups[0].main().unwrap();
        assert_eq!(facts.all_day, Some(span));
        assert_eq!((facts.start, facts.end), (start, end));
        assert_eq!(facts.summary, "Cure; thermale, Dax");
    }
}
