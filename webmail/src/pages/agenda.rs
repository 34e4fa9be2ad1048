//! The patient's agenda: upcoming and past appointments from the professionals'
//! invitations, accept / decline (an iTIP REPLY sent through the MTA's submission path to
//! whoever sent the invitation), the prevention calendar, and the private calendar feed a phone
//! can subscribe to (a secret URL, renewable, served without a session).
//!
//! Each appointment says who created it: an organiser's invitation, the patient ("ajouté par
//! vous": changed and deleted through the form of [`crate::pages::appointment`]), or an app
//! ("proposé par l'application …", "à confirmer" until the patient accepts or refuses it).

use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use mshub_agenda::{AgendaError, Answer, Appointment, NaiveDate, Origin, PartStat, Status};
use mshub_directory::AccountKind;

use crate::appointment_time::{machine, when_fr};
use crate::csrf::Posted;
use crate::format::day_fr;
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

/// Who created an appointment that is not an organiser's invitation, and where it stands:
/// the app by its catalogue name (its id when the catalogue no longer lists it).
fn origin_fr(a: &Appointment, apps: &[(String, String)]) -> Option<String> {
    match &a.origin {
        Origin::Invitation => None,
        Origin::Patient => Some("Rendez-vous ajouté par vous".into()),
        Origin::App { app_id } => {
            let name = apps
                .iter()
                .find(|(id, _)| id == app_id)
                .map_or(app_id.as_str(), |(_, name)| name.as_str());
            Some(format!(
                "Rendez-vous proposé par l'application {name} · {}",
                if a.status == Status::Proposed {
                    "à confirmer"
                } else {
                    "confirmé par vous"
                }
            ))
        }
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
        // The catalogue names the apps that proposed appointments; without it, their ids do.
        let apps: Vec<(String, String)> = app
            .catalogue
            .apps()
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.id, a.name))
            .collect();
        Ok((now, appointments, upcoming, prevention, feed, apps))
    })
    .await;
    let (now, appointments, upcoming, prevention, feed, apps) = match loaded {
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
                    "added" => "Le rendez-vous a été ajouté à votre agenda.",
                    "changed" => "Le rendez-vous a été modifié.",
                    "deleted" => "Le rendez-vous a été supprimé.",
                    "proposal-accepted" => "Le rendez-vous proposé a été ajouté à votre agenda.",
                    "proposal-declined" => "Le rendez-vous proposé a été refusé ; il n'est plus dans votre agenda.",
                    _ => "C'est fait.",
                }
            }
        }
        section aria-labelledby="h-upcoming" {
            h2 id="h-upcoming" { "Prochains rendez-vous" }
            @if who.is_owner() {
                p { a class="button" href="/agenda/ajouter" { "Ajouter un rendez-vous" } }
            }
            @if upcoming.is_empty() {
                p { "Aucun rendez-vous à venir." }
            } @else {
                ul class="documents" {
                    @for o in &upcoming {
                        li {
                            strong { (o.summary) }
                            @if o.status == Status::Proposed { " " span class="tag unread" { "à confirmer" } }
                            div class="meta" {
                                time datetime=(machine(o.start, o.all_day)) { (when_fr(o.start, o.all_day)) }
                                @if !o.location.is_empty() { " · " (o.location) }
                                @if o.overridden { " · " span class="tag" { "modifié" } }
                            }
                            @if let Some(a) = by_uid(&o.uid) {
                                @if !a.professional.is_empty() {
                                    div class="meta" { "Avec " (a.professional) }
                                }
                                div class="meta" {
                                    @if let Some(by) = origin_fr(a, &apps) {
                                        (by)
                                    } @else {
                                        @if let Some(name) = a.organizer_name.as_deref().or(a.organizer.as_deref()) {
                                            "Organisé par " (name) " · "
                                        }
                                        (status_fr(a))
                                    }
                                }
                                @if a.is_own() {
                                    @if who.is_owner() {
                                        (own_actions(&who, a))
                                    }
                                } @else if who.may_reply() && a.status != Status::Cancelled {
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
                        li { (a.summary) " — " (when_fr(a.start, a.all_day)) " — annulé par l'organisateur" }
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
                                "À faire à partir du " (day_fr(r.due))
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
                        li { (a.summary) " — " time datetime=(machine(a.start, a.all_day)) { (when_fr(a.start, a.all_day)) } }
                    }
                }
            }
        }
        @if let Some(token) = &feed {
            section aria-labelledby="h-feed" {
                h2 id="h-feed" { "Abonnement pour votre téléphone" }
                p class="hint" { "Ajoutez ce lien privé comme « calendrier par abonnement » dans l'agenda de votre téléphone. Ne le partagez pas ; renouvelez-le s'il a été divulgué." }
                p class="feed-url" { code class="secret" { (base) "/agenda/feed/" (token) ".ics" } }
                form method="post" action="/agenda/feed/renew" {
                    (who.csrf())
                    button type="submit" class="secondary" { "Renouveler le lien" }
                }
            }
        }
    };
    page("Agenda", Some(&who), Area::Agenda, content)
}

/// The owner's buttons on an own appointment: accept or refuse an app's proposal; change or
/// delete the others (deleting asks for confirmation first).
fn own_actions(who: &SignedIn, a: &Appointment) -> maud::Markup {
    let query = serde_urlencoded::to_string([("uid", a.uid.as_str())]).unwrap_or_default();
    html! {
        div class="actions" {
            @if a.status == Status::Proposed {
                (proposal_form(who, &a.uid, "accept", "Accepter", "", &a.summary))
                (proposal_form(who, &a.uid, "decline", "Refuser", "secondary", &a.summary))
            } @else {
                a class="button secondary" href={ "/agenda/modifier?" (query) } {
                    "Modifier" span class="visually-hidden" { " : " (a.summary) }
                }
                a class="button secondary" href={ "/agenda/supprimer?" (query) } {
                    "Supprimer" span class="visually-hidden" { " : " (a.summary) }
                }
            }
        }
    }
}

fn proposal_form(
    who: &SignedIn,
    uid: &str,
    decision: &str,
    label: &str,
    class: &str,
    summary: &str,
) -> maud::Markup {
    html! {
        form method="post" action="/agenda/proposition" {
            (who.csrf())
            input type="hidden" name="uid" value=(uid);
            input type="hidden" name="decision" value=(decision);
            button type="submit" class=(class) { (label) span class="visually-hidden" { " : " (summary) } }
        }
    }
}

#[derive(Deserialize)]
pub struct ProposalForm {
    uid: String,
    decision: String,
}

/// `POST /agenda/proposition`: the owner accepts an app's proposal (it becomes an appointment
/// like the others, reminded) or refuses it (it is removed).
pub async fn proposal(State(app): App, Posted(who, form): Posted<ProposalForm>) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let accept = match form.decision.as_str() {
        "accept" => true,
        "decline" => false,
        _ => return crate::frame::not_found(),
    };
    let done = blocking(move || {
        if accept {
            app.agenda
                .accept_proposal(&who.space, &form.uid)
                .map(|_| ())
        } else {
            app.agenda.decline_proposal(&who.space, &form.uid)
        }
    })
    .await;
    match done {
        Ok(Ok(())) if accept => see_other("/agenda?done=proposal-accepted"),
        Ok(Ok(())) => see_other("/agenda?done=proposal-declined"),
        Ok(Err(
            e @ (AgendaError::Deleted(_) | AgendaError::NotProposed(_) | AgendaError::NotOwn(_)),
        )) => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Proposition non traitée",
            &e.to_string(),
        ),
        Ok(Err(e)) => internal("agenda proposal", &e),
        Err(r) => r,
    }
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
