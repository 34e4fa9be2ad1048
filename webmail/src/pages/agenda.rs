//! The patient's agenda: upcoming and past appointments from the professionals'
//! invitations, accept / decline (an iTIP REPLY sent through the MTA's submission path to
//! whoever sent the invitation), the prevention calendar, and the private calendar feed a phone
//! can subscribe to (a secret URL, renewable, served without a session).

use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use mshub_agenda::{Answer, Appointment, NaiveDate, PartStat, Status};
use mshub_directory::AccountKind;

use crate::csrf::Posted;
use crate::format::{date_fr, datetime_fr, iso_utc};
use crate::frame::{blocking, error_page, internal, page, see_other, App, Area, SignedIn};

/// Upcoming occurrences shown: the next year.
const AHEAD_SECS: i64 = 366 * 86_400;

#[derive(Deserialize, Default)]
pub struct Flash {
    #[serde(default)]
    done: Option<String>,
}

fn status_fr(a: &Appointment) -> &'static str {
    match (a.status, a.partstat) {
        (Status::Cancelled, _) => "Annulé par l'organisateur",
        (_, PartStat::Accepted) => "Vous avez accepté",
        (_, PartStat::Declined) => "Vous avez refusé",
        (Status::Proposed, _) => "Proposé par une application — à confirmer",
        (Status::Tentative, _) => "Provisoire — réponse attendue",
        (Status::Confirmed, PartStat::NeedsAction) => "Réponse attendue",
    }
}

fn today(now: i64) -> Option<NaiveDate> {
    mshub_agenda::day_of(now)
}

pub async fn show(
    State(app): App,
    who: SignedIn,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Response {
    let w = who.clone();
    let loaded = blocking(move || -> Result<_, String> {
        let now = mshub_store::now();
        let appointments = app
            .agenda
            .appointments(w.space.id)
            .map_err(|e| e.to_string())?;
        let upcoming = app
            .agenda
            .occurrences(w.space.id, now, now + AHEAD_SECS)
            .map_err(|e| e.to_string())?;
        let prevention = match (&w.space.kind, today(now)) {
            (
                AccountKind::Patient {
                    birth_date, sex, ..
                },
                Some(today),
            ) => {
                let done = app
                    .agenda
                    .vaccinations(w.space.id)
                    .map_err(|e| e.to_string())?;
                mshub_agenda::prevention_reminders(*birth_date, *sex, &done, today)
            }
            _ => Vec::new(),
        };
        let feed = if w.is_owner() {
            Some(
                app.agenda
                    .feed_token(w.space.id)
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        Ok((now, appointments, upcoming, prevention, feed))
    })
    .await;
    let (now, appointments, upcoming, prevention, feed) = match loaded {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return internal("agenda", &e),
        Err(r) => return r,
    };
    let by_uid = |uid: &str| appointments.iter().find(|a| a.uid == uid);
    let past: Vec<&Appointment> = appointments
        .iter()
        .filter(|a| a.end < now && !a.recurrent)
        .rev()
        .take(50)
        .collect();
    let base = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(String::new, |h| format!("https://{h}"));
    let content = html! {
        @if let Some(done) = &flash.done {
            p class="notice" role="status" {
                @match done.as_str() {
                    "accepted" => "Votre acceptation a été envoyée à l'organisateur.",
                    "declined" => "Votre refus a été envoyé à l'organisateur.",
                    "feed" => "Un nouveau lien d'abonnement a été créé ; l'ancien ne fonctionne plus.",
                    "vaccination" => "C'est noté.",
                    _ => "C'est fait.",
                }
            }
        }
        section aria-labelledby="h-upcoming" {
            h2 id="h-upcoming" { "Prochains rendez-vous" }
            @if upcoming.is_empty() {
                p { "Aucun rendez-vous à venir." }
            } @else {
                ul class="documents" {
                    @for o in &upcoming {
                        li {
                            strong { (o.summary) }
                            div class="meta" {
                                time datetime=(iso_utc(o.start)) { (datetime_fr(o.start)) }
                                @if !o.location.is_empty() { " · " (o.location) }
                                @if o.overridden { " · " span class="tag" { "modifié" } }
                            }
                            @if let Some(a) = by_uid(&o.uid) {
                                div class="meta" {
                                    @if let Some(name) = a.organizer_name.as_deref().or(a.organizer.as_deref()) {
                                        "Organisé par " (name) " · "
                                    }
                                    (status_fr(a))
                                }
                                @if who.may_reply() && a.status != Status::Cancelled {
                                    div class="actions" {
                                        @if a.partstat != PartStat::Accepted {
                                            (answer_form(&who, &a.uid, "accept", "Accepter", ""))
                                        }
                                        @if a.partstat != PartStat::Declined {
                                            (answer_form(&who, &a.uid, "decline", "Refuser", "secondary"))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @let cancelled: Vec<&Appointment> = appointments.iter().filter(|a| a.status == Status::Cancelled && a.end >= now).collect();
        @if !cancelled.is_empty() {
            section aria-labelledby="h-cancelled" {
                h2 id="h-cancelled" { "Rendez-vous annulés" }
                ul class="plain" {
                    @for a in cancelled {
                        li { (a.summary) " — " (datetime_fr(a.start)) " — annulé par l'organisateur" }
                    }
                }
            }
        }
        section aria-labelledby="h-prevention" {
            h2 id="h-prevention" { "Prévention" }
            @if prevention.is_empty() {
                p { "Aucun rappel de vaccination ou de dépistage pour le moment." }
            } @else {
                ul class="documents" {
                    @for r in &prevention {
                        li {
                            strong { (r.label) }
                            div class="meta" {
                                @if r.overdue { span class="tag unread" { "En retard" } " " }
                                "À faire à partir du " (r.due.format("%d/%m/%Y"))
                            }
                            @if who.is_owner() {
                                form method="post" action="/agenda/prevention" class="actions" {
                                    (who.csrf())
                                    input type="hidden" name="key" value=(r.key);
                                    button type="submit" class="secondary" { "C'est fait aujourd'hui" span class="visually-hidden" { " : " (r.label) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !past.is_empty() {
            section aria-labelledby="h-past" {
                h2 id="h-past" { "Rendez-vous passés" }
                ul class="plain" {
                    @for a in &past {
                        li { (a.summary) " — " time datetime=(iso_utc(a.start)) { (date_fr(a.start)) } }
                    }
                }
            }
        }
        @if let Some(token) = &feed {
            section aria-labelledby="h-feed" {
                h2 id="h-feed" { "Abonnement pour votre téléphone" }
                p class="hint" { "Ajoutez ce lien privé comme « calendrier par abonnement » dans l'agenda de votre téléphone. Ne le partagez pas ; renouvelez-le s'il a été divulgué." }
                p { code class="secret" { (base) "/agenda/feed/" (token) ".ics" } }
                form method="post" action="/agenda/feed/renew" {
                    (who.csrf())
                    button type="submit" class="secondary" { "Renouveler le lien" }
                }
            }
        }
    };
    page("Agenda", Some(&who), Area::Agenda, content)
}

fn answer_form(who: &SignedIn, uid: &str, answer: &str, label: &str, class: &str) -> maud::Markup {
    html! {
        form method="post" action="/agenda/respond" {
            (who.csrf())
            input type="hidden" name="uid" value=(uid);
            input type="hidden" name="answer" value=(answer);
            button type="submit" class=(class) { (label) }
        }
    }
}

#[derive(Deserialize)]
pub struct RespondForm {
    uid: String,
    answer: String,
}

pub async fn respond(State(app): App, Posted(who, form): Posted<RespondForm>) -> Response {
    if !who.may_reply() {
        return error_page(
            StatusCode::FORBIDDEN,
            "Réponse non envoyée",
            "Votre délégation permet la lecture seulement.",
        );
    }
    let answer = match form.answer.as_str() {
        "accept" => Answer::Accept,
        "decline" => Answer::Decline,
        _ => return crate::frame::not_found(),
    };
    let done = blocking(move || -> Result<(), String> {
        let reply = app
            .agenda
            .respond(&who.space, &form.uid, answer)
            .map_err(|e| e.to_string())?;
        app.mta
            .submit(&who.space, &[reply.to], &reply.message)
            .map_err(|r| crate::refusal::refusal_fr(&r))?;
        Ok(())
    })
    .await;
    match done {
        Ok(Ok(())) => see_other(match answer {
            Answer::Accept => "/agenda?done=accepted",
            Answer::Decline => "/agenda?done=declined",
        }),
        Ok(Err(why)) => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Réponse non envoyée",
            &format!("Votre réponse n'a pas pu être envoyée : {why}."),
        ),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct Plain {}

pub async fn renew_feed(State(app): App, Posted(who, _): Posted<Plain>) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    match blocking(move || app.agenda.revoke_feed(who.space.id)).await {
        Ok(Ok(_)) => see_other("/agenda?done=feed"),
        Ok(Err(e)) => internal("agenda feed", &e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct PreventionForm {
    key: String,
}

pub async fn prevention_done(
    State(app): App,
    Posted(who, form): Posted<PreventionForm>,
) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let Some(today) = today(mshub_store::now()) else {
        return internal("date", &"out of range");
    };
    match blocking(move || {
        app.agenda
            .record_vaccination(who.space.id, &form.key, today)
    })
    .await
    {
        Ok(Ok(())) => see_other("/agenda?done=vaccination"),
        Ok(Err(e)) => internal("prevention", &e),
        Err(r) => r,
    }
}

/// `GET /agenda/feed/{token}.ics`: the patient's calendar for a phone's subscription. The
/// secret token is the credential (RFC 5545 feeds have no other); an unknown or renewed
/// token is a plain 404.
pub async fn feed(State(app): App, Path(file): Path<String>) -> Response {
    let token = file.strip_suffix(".ics").unwrap_or(&file).to_string();
    match blocking(move || app.agenda.feed(&token)).await {
        Ok(Ok(Some(ics))) => (
            [
                (CONTENT_TYPE, "text/calendar; charset=utf-8"),
                (CACHE_CONTROL, "private, no-store"),
            ],
            ics,
        )
            .into_response(),
        Ok(Ok(None)) => StatusCode::NOT_FOUND.into_response(),
        Ok(Err(e)) => internal("agenda feed", &e),
        Err(r) => r,
    }
}
