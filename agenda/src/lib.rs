//! # mshub-agenda
//!
//! The patient's agenda (DESIGN §3): iCalendar invitations that professionals and hospital
//! systems send by mail become the patient's appointments. Start with
//! [`Agenda::file_message`] ([`filing`]): the delivery pipeline hands it a message durably in a
//! patient's INBOX; each `text/calendar` part or `.ics` file is read within bounds ([`ics`]),
//! and RFC 5546 decides ([`itip`]) whether it creates, updates (higher SEQUENCE, or later
//! DTSTAMP) or cancels the appointment of that UID. Appointments are sealed to the patient's
//! key at rest ([`appointments`]).
//!
//! Then what the webmail calls: [`Agenda::appointments`], [`Agenda::occurrences`] (bounded
//! expansion of recurrences, [`recurrence`]), [`Agenda::respond`] (accept or decline: records
//! the answer and builds the iTIP REPLY e-mail the webmail submits, [`reply`]), the private ICS
//! feed ([`feed`]), appointment reminders ([`Agenda::send_due_reminders`], [`reminders`]) and
//! the prevention calendar ([`prevention_reminders`], data in `data/prevention.toml`).
//!
//! The patient's own appointments ([`own`]): [`Agenda::add_own`], [`Agenda::update_own`],
//! [`Agenda::delete_own`]; and apps' proposals "à confirmer": [`Agenda::propose`],
//! [`Agenda::accept_proposal`], [`Agenda::decline_proposal`]. [`Appointment::origin`] says who
//! created an appointment.
//!
//! Like the vault, the crate does not know the MTA: the binary adapts
//! [`Agenda::file_message`] to the MTA's `Filer` trait with [`AgendaFiling::outcome`].

pub mod announce;
pub mod appointments;
mod error;
pub mod feed;
pub mod filing;
pub mod french;
pub mod ics;
pub mod itip;
pub mod own;
pub mod prevention;
pub mod recurrence;
pub mod reminders;
pub mod reply;
pub mod vaccinations;

use std::sync::Arc;

use mshub_directory::Directory;
use mshub_store::{AccountId, Store};

pub use announce::day_of;
pub use appointments::{Appointment, DaySpan, Origin, PartStat, Status};
pub use chrono::NaiveDate;
pub use error::{AgendaError, Rejection, Result};
pub use filing::{may_carry_invitation, AgendaFiling, EventFiling, EventOutcome};
pub use ics::IcsLimits;
pub use mshub_store::FilingOutcome;
pub use own::{OwnAppointment, When};
pub use prevention::{prevention_reminders, PreventionReminder};
pub use recurrence::{Occurrence, RecurrenceLimits};
pub use reminders::DueReminder;
pub use reply::{Answer, Reply};

use appointments::Records;

/// The `[agenda]` section of `mshub.toml`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgendaConfig {
    /// How long before an appointment the patient is reminded by mail, in seconds.
    pub reminder_lead_secs: i64,
}

impl Default for AgendaConfig {
    fn default() -> Self {
        Self {
            reminder_lead_secs: AgendaLimits::default().reminder_lead_secs,
        }
    }
}

impl From<&AgendaConfig> for AgendaLimits {
    fn from(config: &AgendaConfig) -> Self {
        Self {
            reminder_lead_secs: config.reminder_lead_secs.max(0),
            ..Self::default()
        }
    }
}

/// Bounds and settings of the agenda.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgendaLimits {
    pub ics: IcsLimits,
    pub recurrence: RecurrenceLimits,
    /// How long before an appointment the patient is reminded (default 24 h).
    pub reminder_lead_secs: i64,
}

impl Default for AgendaLimits {
    fn default() -> Self {
        Self {
            ics: IcsLimits::default(),
            recurrence: RecurrenceLimits::default(),
            reminder_lead_secs: 24 * 3600,
        }
    }
}

/// The agenda over the hub's store and directory.
pub struct Agenda {
    store: Arc<Store>,
    directory: Arc<Directory>,
    limits: AgendaLimits,
}

impl Agenda {
    pub fn new(store: Arc<Store>, directory: Arc<Directory>) -> Self {
        Self::with_limits(store, directory, AgendaLimits::default())
    }

    pub fn with_limits(store: Arc<Store>, directory: Arc<Directory>, limits: AgendaLimits) -> Self {
        Self {
            store,
            directory,
            limits,
        }
    }

    pub fn limits(&self) -> &AgendaLimits {
        &self.limits
    }

    fn records(&self) -> Records<'_> {
        Records { store: &self.store }
    }

    /// The patient's appointments (cancelled ones included, marked so), by start time.
    pub fn appointments(&self, patient: AccountId) -> Result<Vec<Appointment>> {
        Ok(self
            .records()
            .all(patient)?
            .into_iter()
            .map(|r| r.appointment)
            .collect())
    }

    /// One appointment by UID.
    pub fn appointment(&self, patient: AccountId, uid: &str) -> Result<Option<Appointment>> {
        Ok(self
            .records()
            .get(patient, uid)?
            .map(|(r, _)| r.appointment))
    }

    /// The occurrences of the patient's appointments (not cancelled; proposals included,
    /// marked [`Status::Proposed`]) overlapping `[from_unix, to_unix)`, by start, over a window
    /// of at most [`RecurrenceLimits::max_window_secs`] from `from_unix`. Each series gives at
    /// most [`RecurrenceLimits::max_per_series`] of them, so that one series never hides the
    /// other appointments. A moved occurrence (RECURRENCE-ID) appears once, at its new time,
    /// with its own title, place and notes when it has them.
    pub fn occurrences(
        &self,
        patient: AccountId,
        from_unix: i64,
        to_unix: i64,
    ) -> Result<Vec<Occurrence>> {
        let limits = &self.limits.recurrence;
        let mut all = Vec::new();
        for record in self.records().all(patient)? {
            let a = &record.appointment;
            if a.status == Status::Cancelled {
                continue;
            }
            let or_series = |own: String, series: &String| {
                if own.is_empty() {
                    series.clone()
                } else {
                    own
                }
            };
            for i in recurrence::expand(&record.ics, from_unix, to_unix, limits) {
                all.push(Occurrence {
                    uid: a.uid.clone(),
                    summary: or_series(i.summary, &a.summary),
                    location: or_series(i.location, &a.location),
                    description: or_series(i.description, &a.description),
                    start: i.start,
                    end: i.end,
                    all_day: i.all_day,
                    overridden: i.overridden,
                    status: a.status,
                    origin: a.origin.clone(),
                });
            }
        }
        all.sort_by(|x, y| (x.start, &x.uid).cmp(&(y.start, &y.uid)));
        Ok(all)
    }
}
