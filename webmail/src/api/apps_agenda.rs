//! The patient's agenda in the apps' API, behind the guard of [`crate::api::apps`]:
//! - `GET /api/apps/v1/appointments?from=…&to=…` (`agenda:read`): the occurrences of the
//!   patient's appointments in a window (RFC 3339 instants; by default the coming 366 days;
//!   the agenda cuts a window wider than five years), cancelled ones left out;
//! - `POST /api/apps/v1/appointments` (`agenda:write`): the app proposes an appointment; the
//!   patient sees it "à confirmer" on the Agenda page until accepting or refusing it.
//!
//! What an app reads is what it needs to know when the patient is busy, and no more (data
//! minimisation, GDPR art. 5(1)(c)): title, times, place, the professional the patient noted,
//! status, and who created it — "invitation", "patient", "this-app" or "other-app", never the
//! other app's name. Notes are given only for the appointments this app proposed: an
//! invitation's notes are the professional's words to the patient, the patient's own notes are
//! theirs.
//!
//! A proposal the agenda refuses (empty title, end before start, more than ten years ahead…)
//! is 422 `invalid_appointment` with the agenda's reason in French, which the app may show to
//! the patient as is. Every call is audited under `app:<id>`, refusals included.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use mshub_agenda::{
    AgendaError, Appointment, NaiveDate, Occurrence, Origin, OwnAppointment, PartStat, Status, When,
};
use mshub_catalogue::{AppGrant, Scope};

use crate::api::apps::{audit, error, refused};
use crate::appointment_time::{parse_rfc3339, rfc3339_utc};
use crate::Webmail;

/// The window listed when the app gives none: the coming 366 days.
const DEFAULT_WINDOW_SECS: i64 = 366 * 86_400;

#[derive(Deserialize)]
pub struct Window {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// An all-day appointment's days in Paris, both included (`YYYY-MM-DD`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Days {
    first: String,
    /// Defaults to `first` in a proposal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<String>,
}

/// One occurrence, as an app reads it.
#[derive(Serialize)]
pub struct AppointmentRead {
    uid: String,
    title: String,
    /// RFC 3339, UTC. For an all-day appointment, Paris midnight of its first day.
    start: String,
    /// RFC 3339, UTC. For an all-day appointment, Paris midnight after its last day.
    end: String,
    /// The days of an all-day appointment: read them rather than `start` and `end`.
    all_day: Option<Days>,
    place: String,
    professional: String,
    /// `confirmed`, `tentative`, `proposed` (waiting for the patient), or `declined` (an
    /// invitation the patient refused).
    status: &'static str,
    /// `invitation`, `patient`, `this-app` or `other-app`.
    origin: &'static str,
    /// Only on the appointments this app proposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
}

fn origin_of(origin: &Origin, app_id: &str) -> &'static str {
    match origin {
        Origin::Invitation => "invitation",
        Origin::Patient => "patient",
        Origin::App { app_id: by } if by == app_id => "this-app",
        Origin::App { .. } => "other-app",
    }
}

fn status_of(status: Status, partstat: Option<PartStat>) -> &'static str {
    match (status, partstat) {
        (Status::Cancelled, _) => "cancelled",
        (Status::Proposed, _) => "proposed",
        (_, Some(PartStat::Declined)) => "declined",
        (Status::Tentative, _) => "tentative",
        (Status::Confirmed, _) => "confirmed",
    }
}

fn days_of(all_day: Option<mshub_agenda::DaySpan>) -> Option<Days> {
    all_day.map(|span| Days {
        first: span.first.to_string(),
        last: Some(span.last.to_string()),
    })
}

impl AppointmentRead {
    fn of(o: &Occurrence, a: Option<&Appointment>, app_id: &str) -> Self {
        let origin = origin_of(&o.origin, app_id);
        AppointmentRead {
            uid: o.uid.clone(),
            title: o.summary.clone(),
            start: rfc3339_utc(o.start),
            end: rfc3339_utc(o.end),
            all_day: days_of(o.all_day),
            place: o.location.clone(),
            professional: a.map(|a| a.professional.clone()).unwrap_or_default(),
            status: status_of(o.status, a.map(|a| a.partstat)),
            origin,
            notes: (origin == "this-app").then(|| o.description.clone()),
        }
    }

    fn of_appointment(a: &Appointment, app_id: &str) -> Self {
        let origin = origin_of(&a.origin, app_id);
        AppointmentRead {
            uid: a.uid.clone(),
            title: a.summary.clone(),
            start: rfc3339_utc(a.start),
            end: rfc3339_utc(a.end),
            all_day: days_of(a.all_day),
            place: a.location.clone(),
            professional: a.professional.clone(),
            status: status_of(a.status, Some(a.partstat)),
            origin,
            notes: (origin == "this-app").then(|| a.description.clone()),
        }
    }
}

/// `GET /api/apps/v1/appointments`
pub async fn list(
    State(app): State<Arc<Webmail>>,
    Extension(grant): Extension<AppGrant>,
    Query(window): Query<Window>,
) -> Response {
    if !grant.allows(&Scope::AgendaRead) {
        return refused(&app, &grant, "agenda:read");
    }
    let now = mshub_store::now();
    let bound = |text: &Option<String>, default: i64, name: &str| match text {
        None => Ok(default),
        Some(t) => parse_rfc3339(t).ok_or_else(|| {
            format!("{name} is not an RFC 3339 date-time (e.g. 2027-03-15T09:00:00+01:00)")
        }),
    };
    let window = bound(&window.from, now, "from").and_then(|from| {
        let to = bound(&window.to, from.saturating_add(DEFAULT_WINDOW_SECS), "to")?;
        if to <= from {
            return Err("to must be after from".to_string());
        }
        Ok((from, to))
    });
    let (from, to) = match window {
        Ok(w) => w,
        Err(why) => {
            audit(&app, &grant, "app.appointment.invalid", "appointments");
            return error(StatusCode::BAD_REQUEST, "invalid_request", &why);
        }
    };
    let a = app.clone();
    let patient = grant.patient;
    let listed = tokio::task::spawn_blocking(move || {
        Ok::<_, AgendaError>((
            a.agenda.occurrences(patient, from, to)?,
            a.agenda.appointments(patient)?,
        ))
    })
    .await;
    match listed {
        Ok(Ok((occurrences, appointments))) => {
            audit(&app, &grant, "app.appointment.list", "appointments");
            let shown: Vec<AppointmentRead> = occurrences
                .iter()
                .map(|o| {
                    let a = appointments.iter().find(|a| a.uid == o.uid);
                    AppointmentRead::of(o, a, &grant.app_id)
                })
                .collect();
            Json(shown).into_response()
        }
        Ok(Err(e)) => crate::api::ApiError::internal("app appointments", &e).into_response(),
        Err(e) => crate::api::ApiError::internal("app appointments", &e).into_response(),
    }
}

/// What an app posts to propose an appointment: `start` and `end` (RFC 3339), or `all_day`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAppointment {
    #[serde(default)]
    title: String,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    all_day: Option<Days>,
    #[serde(default)]
    place: String,
    #[serde(default)]
    professional: String,
    #[serde(default)]
    notes: String,
}

fn day(text: &str, name: &str) -> Result<NaiveDate, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{name} n'est pas une date AAAA-MM-JJ (par exemple 2027-03-15)."))
}

fn instant(text: &str, name: &str) -> Result<i64, String> {
    parse_rfc3339(text).ok_or_else(|| {
        format!(
            "{name} n'est pas une date et heure RFC 3339 (par exemple 2027-03-15T09:00:00+01:00)."
        )
    })
}

impl NewAppointment {
    /// The proposal for the agenda, or why it is not one, in French.
    fn checked(self) -> Result<OwnAppointment, String> {
        let when = match (&self.start, &self.end, &self.all_day) {
            (None, None, Some(days)) => {
                let first = day(&days.first, "all_day.first")?;
                let last = match &days.last {
                    Some(l) => day(l, "all_day.last")?,
                    None => first,
                };
                When::AllDay { first, last }
            }
            (Some(start), Some(end), None) => When::Timed {
                start: instant(start, "start")?,
                end: instant(end, "end")?,
            },
            (_, _, Some(_)) => {
                return Err(
                    "Donnez soit start et end, soit all_day (toute la journée), pas les deux."
                        .into(),
                )
            }
            _ => {
                return Err(
                    "Indiquez quand a lieu le rendez-vous : start et end (RFC 3339), \
                            ou all_day pour un rendez-vous sur la journée."
                        .into(),
                )
            }
        };
        Ok(OwnAppointment {
            title: self.title,
            when,
            place: self.place,
            professional: self.professional,
            notes: self.notes,
        })
    }
}

/// A refused proposal: audited, and 422 with its reason in French.
fn invalid(app: &Webmail, grant: &AppGrant, why: &str) -> Response {
    audit(app, grant, "app.appointment.invalid", "appointment");
    error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_appointment", why)
}

/// `POST /api/apps/v1/appointments`
pub async fn propose(
    State(app): State<Arc<Webmail>>,
    Extension(grant): Extension<AppGrant>,
    body: axum::body::Bytes,
) -> Response {
    if !grant.allows(&Scope::AgendaWrite) {
        return refused(&app, &grant, "agenda:write");
    }
    let new: NewAppointment = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            audit(&app, &grant, "app.appointment.invalid", "appointment");
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the body is not an appointment: {e}"),
            );
        }
    };
    let form = match new.checked() {
        Ok(f) => f,
        Err(why) => return invalid(&app, &grant, &why),
    };
    let a = app.clone();
    let g = grant.clone();
    let proposed = tokio::task::spawn_blocking(move || -> Result<_, AgendaError> {
        let patient = a
            .directory
            .account(g.patient)?
            .ok_or_else(|| AgendaError::NotAPatient(g.patient.to_string()))?;
        a.agenda.propose(&patient, &g.app_id, &form)
    })
    .await;
    match proposed {
        Ok(Ok(appointment)) => {
            audit(
                &app,
                &grant,
                "app.appointment.propose",
                &format!("appointment:{}", appointment.uid),
            );
            (
                StatusCode::CREATED,
                Json(AppointmentRead::of_appointment(&appointment, &grant.app_id)),
            )
                .into_response()
        }
        Ok(Err(
            e @ (AgendaError::Store(_)
            | AgendaError::Directory(_)
            | AgendaError::Random(_)
            | AgendaError::NotAPatient(_)),
        )) => crate::api::ApiError::internal("app proposal", &e).into_response(),
        Ok(Err(e)) => invalid(&app, &grant, &e.to_string()),
        Err(e) => crate::api::ApiError::internal("app proposal", &e).into_response(),
    }
}
