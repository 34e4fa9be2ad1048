//! The patient's own appointments ("rendez-vous personnels"): the form to add or change one,
//! and the confirmation before deleting it. The space's owner only; a delegate reads the
//! agenda but changes nothing in it.
//!
//! Dates and times are entered as a phone shows them (`type="date"`, `type="time"`), in Paris
//! time. A refusal shows the form again with what was typed and the agenda's reason in French
//! (422); a success goes back to the agenda (POST/redirect/GET). The edit form carries the
//! SEQUENCE it was built from, so that a form older than the appointment is refused rather
//! than undoing a change made elsewhere.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{NaiveDate, NaiveTime};
use maud::html;
use serde::Deserialize;

use mshub_agenda::{AgendaError, Appointment, OwnAppointment, When};

use crate::appointment_time::{instant, local, when_fr};
use crate::csrf::Posted;
use crate::frame::{blocking, error_page, internal, page, see_other, App, Area, SignedIn};

/// How long an appointment lasts when no end time is given.
const DEFAULT_LENGTH_SECS: i64 = 3600;

/// The form's entries, kept as typed so that a refused form comes back as it was.
#[derive(Deserialize, Default, Clone)]
pub struct Entries {
    #[serde(default)]
    title: String,
    /// `YYYY-MM-DD`: the day, or the first day of an all-day appointment.
    #[serde(default)]
    date: String,
    /// `HH:MM`
    #[serde(default)]
    start: String,
    /// `HH:MM`, optional: one hour after the start.
    #[serde(default)]
    end: String,
    /// Optional: the last day of an all-day appointment, or the day a timed one ends.
    #[serde(default)]
    end_date: String,
    /// Present ("on") when "Toute la journée" is ticked.
    #[serde(default)]
    all_day: Option<String>,
    #[serde(default)]
    place: String,
    #[serde(default)]
    professional: String,
    #[serde(default)]
    notes: String,
    /// The appointment changed (edit form only).
    #[serde(default)]
    uid: String,
    /// The SEQUENCE the edit form was built from.
    #[serde(default)]
    sequence: String,
}

impl Entries {
    /// The form filled with a stored appointment.
    fn of(a: &Appointment) -> Entries {
        let mut e = Entries {
            title: a.summary.clone(),
            place: a.location.clone(),
            professional: a.professional.clone(),
            notes: a.description.clone(),
            uid: a.uid.clone(),
            sequence: a.sequence.to_string(),
            ..Entries::default()
        };
        match (a.all_day, local(a.start), local(a.end)) {
            (Some(span), _, _) => {
                e.all_day = Some("on".into());
                e.date = span.first.to_string();
                if span.last != span.first {
                    e.end_date = span.last.to_string();
                }
            }
            (None, Some((day, start)), Some((end_day, end))) => {
                e.date = day.to_string();
                e.start = start.format("%H:%M").to_string();
                e.end = end.format("%H:%M").to_string();
                if end_day != day {
                    e.end_date = end_day.to_string();
                }
            }
            _ => {}
        }
        e
    }

    /// What the agenda is asked to store; a form the agenda cannot even read (no date, a
    /// time that does not exist) is refused here, in French.
    fn appointment(&self) -> Result<OwnAppointment, String> {
        let date =
            day(&self.date)?.ok_or_else(|| "Indiquez la date du rendez-vous.".to_string())?;
        let end_date = day(&self.end_date)?;
        let when = if self.all_day.is_some() {
            When::AllDay {
                first: date,
                last: end_date.unwrap_or(date),
            }
        } else {
            let start_time = time(&self.start)?.ok_or_else(|| {
                "Indiquez l'heure de début, ou cochez « Toute la journée ».".to_string()
            })?;
            let start = instant(date, start_time)?;
            match time(&self.end)? {
                Some(end_time) => When::Timed {
                    start,
                    end: instant(end_date.unwrap_or(date), end_time)?,
                },
                None if end_date.is_some() => {
                    return Err("Indiquez l'heure de fin du rendez-vous.".into())
                }
                None => When::lasting(start, DEFAULT_LENGTH_SECS),
            }
        };
        Ok(OwnAppointment {
            title: self.title.clone(),
            when,
            place: self.place.clone(),
            professional: self.professional.clone(),
            notes: self.notes.clone(),
        })
    }
}

/// A `type="date"` value; browsers without the input send what was typed, so a French
/// `10/03/2027` is read too.
fn day(text: &str) -> Result<Option<NaiveDate>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(d) = text.parse::<NaiveDate>() {
        return Ok(Some(d));
    }
    let mut parts = text.split('/').map(|p| p.trim().parse::<u32>().ok());
    if let (Some(Some(d)), Some(Some(m)), Some(Some(y)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    {
        if let Some(date) = i32::try_from(y)
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, m, d))
        {
            return Ok(Some(date));
        }
    }
    Err(format!(
        "La date « {} » n'est pas valide : écrivez-la jj/mm/aaaa.",
        text.chars().take(20).collect::<String>()
    ))
}

/// A `type="time"` value (`HH:MM`, or `HH:MM:SS`); `9h30` is read too.
fn time(text: &str) -> Result<Option<NaiveTime>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let normal = text.replace(['h', 'H'], ":");
    let normal = if normal.ends_with(':') {
        format!("{normal}00")
    } else {
        normal
    };
    let mut parts = normal.split(':').map(|p| p.trim().parse::<u32>().ok());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Some(h)), Some(Some(m)), None | Some(Some(_)), None) => {
            NaiveTime::from_hms_opt(h, m, 0).map(Some).ok_or(())
        }
        _ => Err(()),
    }
    .map_err(|()| {
        format!(
            "L'heure « {} » n'est pas valide : écrivez-la hh:mm, par exemple 09:30.",
            text.chars().take(20).collect::<String>()
        )
    })
}

/// Whether the agenda's refusal is the patient's to read (its Display is French), rather than
/// a failure of the service.
fn for_the_patient(e: &AgendaError) -> bool {
    !matches!(
        e,
        AgendaError::Store(_)
            | AgendaError::Directory(_)
            | AgendaError::Random(_)
            | AgendaError::Data(_)
            | AgendaError::Mail(_)
            | AgendaError::NotAPatient(_)
    )
}

/// The add or edit form, with the reason of a refusal when there is one.
fn form_page(who: &SignedIn, e: &Entries, error: Option<&str>) -> Response {
    let editing = !e.uid.is_empty();
    let (title, action, submit) = if editing {
        (
            "Modifier un rendez-vous",
            "/agenda/modifier",
            "Enregistrer les modifications",
        )
    } else {
        (
            "Ajouter un rendez-vous",
            "/agenda/ajouter",
            "Ajouter le rendez-vous",
        )
    };
    let content = html! {
        @if let Some(error) = error {
            p class="error" role="alert" id="form-error" { (error) }
        }
        form method="post" action=(action) class="appointment" {
            (who.csrf())
            @if editing {
                input type="hidden" name="uid" value=(e.uid);
                input type="hidden" name="sequence" value=(e.sequence);
            }
            label for="title" { "Titre (obligatoire)" }
            input type="text" id="title" name="title" value=(e.title) required maxlength="200"
                placeholder="Dentiste, prise de sang…";
            label for="date" { "Date" }
            input type="date" id="date" name="date" value=(e.date) required;
            fieldset {
                legend { "Horaire" }
                div class="times" {
                    div {
                        label for="start" { "Heure de début" }
                        input type="time" id="start" name="start" value=(e.start);
                    }
                    div {
                        label for="end" { "Heure de fin" }
                        input type="time" id="end" name="end" value=(e.end) aria-describedby="end-hint";
                    }
                }
                p class="hint" id="end-hint" { "Sans heure de fin, le rendez-vous dure une heure." }
                p {
                    @if e.all_day.is_some() {
                        input type="checkbox" id="all_day" name="all_day" value="on" checked;
                    } @else {
                        input type="checkbox" id="all_day" name="all_day" value="on";
                    }
                    label class="inline" for="all_day" { "Toute la journée (les heures ne comptent pas)" }
                }
            }
            label for="end_date" { "Date de fin (facultatif)" }
            p class="hint" id="end-date-hint" { "Si le rendez-vous dure plusieurs jours : son dernier jour." }
            input type="date" id="end_date" name="end_date" value=(e.end_date) aria-describedby="end-date-hint";
            label for="place" { "Lieu" }
            input type="text" id="place" name="place" value=(e.place) maxlength="300";
            label for="professional" { "Professionnel de santé" }
            input type="text" id="professional" name="professional" value=(e.professional) maxlength="200"
                placeholder="Dr Dupont, cabinet infirmier…";
            label for="notes" { "Notes" }
            textarea id="notes" name="notes" maxlength="4000" { (e.notes) }
            div class="actions" {
                button type="submit" { (submit) }
                a class="button secondary" href="/agenda" { "Annuler" }
            }
        }
    };
    let mut r = page(title, Some(who), Area::Agenda, content);
    if error.is_some() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// `GET /agenda/ajouter`
pub async fn add_form(who: SignedIn) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    form_page(&who, &Entries::default(), None)
}

/// `POST /agenda/ajouter`
pub async fn add(State(app): App, Posted(who, e): Posted<Entries>) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let form = match e.appointment() {
        Ok(f) => f,
        Err(why) => return form_page(&who, &e, Some(&why)),
    };
    let space = who.space.clone();
    match blocking(move || app.agenda.add_own(&space, &form)).await {
        Ok(Ok(_)) => see_other("/agenda?done=added"),
        Ok(Err(e2)) if for_the_patient(&e2) => form_page(&who, &e, Some(&e2.to_string())),
        Ok(Err(e2)) => internal("own appointment", &e2),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct Which {
    #[serde(default)]
    uid: String,
}

/// The own appointment `uid`, or the page that says why it cannot be changed.
async fn own(app: &App, who: &SignedIn, uid: String) -> Result<Appointment, Response> {
    let a = app.0.clone();
    let space = who.space.id;
    let u = uid.clone();
    match blocking(move || a.agenda.appointment(space, &u)).await? {
        Ok(Some(a)) if a.is_own() => Ok(a),
        Ok(Some(_)) => Err(error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Rendez-vous non modifiable",
            &AgendaError::NotOwn(uid).to_string(),
        )),
        Ok(None) => Err(error_page(
            StatusCode::NOT_FOUND,
            "Rendez-vous introuvable",
            &AgendaError::Deleted(uid).to_string(),
        )),
        Err(e) => Err(internal("own appointment", &e)),
    }
}

/// `GET /agenda/modifier?uid=…`
pub async fn edit_form(app: App, who: SignedIn, Query(which): Query<Which>) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    match own(&app, &who, which.uid).await {
        Ok(a) => form_page(&who, &Entries::of(&a), None),
        Err(r) => r,
    }
}

/// `POST /agenda/modifier`
pub async fn edit(State(app): App, Posted(who, e): Posted<Entries>) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let form = match e.appointment() {
        Ok(f) => f,
        Err(why) => return form_page(&who, &e, Some(&why)),
    };
    let Ok(sequence) = e.sequence.trim().parse::<i64>() else {
        return form_page(
            &who,
            &e,
            Some("Ce formulaire est incomplet ; rechargez l'agenda puis refaites votre modification."),
        );
    };
    let space = who.space.clone();
    let uid = e.uid.clone();
    match blocking(move || app.agenda.update_own(&space, &uid, sequence, &form)).await {
        Ok(Ok(_)) => see_other("/agenda?done=changed"),
        Ok(Err(e2)) if for_the_patient(&e2) => form_page(&who, &e, Some(&e2.to_string())),
        Ok(Err(e2)) => internal("own appointment", &e2),
        Err(r) => r,
    }
}

/// `GET /agenda/supprimer?uid=…`: what is about to be deleted, and the button that does it.
pub async fn delete_form(app: App, who: SignedIn, Query(which): Query<Which>) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let a = match own(&app, &who, which.uid).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let content = html! {
        p { "Supprimer ce rendez-vous de votre agenda ? Il disparaîtra aussi de l'agenda de votre téléphone s'il est abonné." }
        p {
            strong { (a.summary) }
            br;
            (when_fr(a.start, a.all_day))
            @if !a.location.is_empty() { " · " (a.location) }
        }
        form method="post" action="/agenda/supprimer" class="actions" {
            (who.csrf())
            input type="hidden" name="uid" value=(a.uid);
            button type="submit" class="danger" { "Supprimer le rendez-vous" }
            a class="button secondary" href="/agenda" { "Annuler" }
        }
    };
    page(
        "Supprimer un rendez-vous",
        Some(&who),
        Area::Agenda,
        content,
    )
}

/// `POST /agenda/supprimer`
pub async fn delete(State(app): App, Posted(who, which): Posted<Which>) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let space = who.space.clone();
    match blocking(move || app.agenda.delete_own(&space, &which.uid)).await {
        Ok(Ok(())) => see_other("/agenda?done=deleted"),
        Ok(Err(e)) if for_the_patient(&e) => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Rendez-vous non supprimé",
            &e.to_string(),
        ),
        Ok(Err(e)) => internal("own appointment", &e),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_read_as_inputs_send_them_or_as_typed_in_french() {
        let d = NaiveDate::from_ymd_opt(2027, 3, 10).unwrap();
        assert_eq!(day("2027-03-10"), Ok(Some(d)));
        assert_eq!(day("10/03/2027"), Ok(Some(d)));
        assert_eq!(day(""), Ok(None));
        assert!(day("31/02/2027").is_err());
        let t = NaiveTime::from_hms_opt(9, 30, 0).unwrap();
        assert_eq!(time("09:30"), Ok(Some(t)));
        assert_eq!(time("09:30:00"), Ok(Some(t)));
        assert_eq!(time("9h30"), Ok(Some(t)));
        assert!(time("25:00").is_err());
    }

    #[test]
    fn an_all_day_form_ignores_its_hours_and_a_timed_one_lasts_an_hour_by_default() {
        let mut e = Entries {
            title: "Cure".into(),
            date: "2027-03-10".into(),
            end_date: "2027-03-11".into(),
            start: "09:00".into(),
            all_day: Some("on".into()),
            ..Entries::default()
        };
        assert!(matches!(
            e.appointment().unwrap().when,
            When::AllDay { first, last } if (last - first).num_days() == 1
        ));
        e.all_day = None;
        e.end_date.clear();
        let When::Timed { start, end } = e.appointment().unwrap().when else {
            panic!("timed");
        };
        assert_eq!(end - start, 3600);
        e.start.clear();
        assert!(e.appointment().unwrap_err().contains("Toute la journée"));
    }
}
