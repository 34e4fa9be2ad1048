//! Connected health apps: the signed catalogue of referenced services (by category, with a
//! search), each app's page with the data it asks for in plain French, the patient's connected
//! apps with what each did (from the audit chain), and revocation — the app's tokens die at
//! once. Connecting happens through the app's OAuth request and the consent page
//! ([`crate::oauth`]).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use mshub_catalogue::App as CatalogueApp;

use crate::csrf::Posted;
use crate::format::{date_fr, datetime_fr, iso_utc};
use crate::frame::{blocking, error_page, internal, page, see_other, Area, SignedIn};
use crate::Webmail;

#[derive(Deserialize, Default)]
pub struct Browse {
    #[serde(default)]
    q: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    done: Option<String>,
}

fn matches(app: &CatalogueApp, q: &str) -> bool {
    let q = q.trim().to_lowercase();
    q.is_empty()
        || [&app.name, &app.publisher, &app.description, &app.category]
            .iter()
            .any(|f| f.to_lowercase().contains(&q))
}

/// What an app did in the patient's space, newest first (the catalogue reads the audit chain).
pub(crate) fn activity(
    app: &Webmail,
    patient: mshub_store::AccountId,
    app_id: &str,
) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = app
        .catalogue
        .activity(patient, Some(app_id))
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.at, activity_fr(&r.event.action, &r.event.subject)))
        .collect();
    out.reverse();
    out.truncate(50);
    out
}

fn activity_fr(action: &str, subject: &str) -> String {
    match action {
        "app.consent" => "Vous avez autorisé l'application".into(),
        "app.revoke" => "Vous avez retiré l'autorisation".into(),
        "app.token" => "L'application a obtenu un accès".into(),
        "app.measurement" => "L'application a ajouté une mesure".into(),
        "app.document.read" => format!("L'application a lu un document ({subject})"),
        "app.document.list" => "L'application a consulté la liste de vos documents".into(),
        "app.refused" => "Une demande de l'application a été refusée".into(),
        other => other.to_string(),
    }
}

pub async fn show(
    State(app): crate::frame::App,
    who: SignedIn,
    Query(q): Query<Browse>,
) -> Response {
    let w = who.clone();
    let loaded = blocking(move || -> Result<_, String> {
        let apps = app.catalogue.apps().map_err(|e| e.to_string())?;
        let connections = app
            .catalogue
            .connections(w.space.id)
            .map_err(|e| e.to_string())?;
        let connected: Vec<_> = connections
            .into_iter()
            .map(|c| {
                let name = apps
                    .iter()
                    .find(|a| a.id == c.app_id)
                    .map_or_else(|| c.app_id.clone(), |a| a.name.clone());
                let did = activity(&app, w.space.id, &c.app_id);
                (c, name, did)
            })
            .collect();
        Ok((apps, connected))
    })
    .await;
    let (apps, connected) = match loaded {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return internal("catalogue", &e),
        Err(r) => return r,
    };
    let categories: Vec<String> = {
        let mut c: Vec<String> = apps.iter().map(|a| a.category.clone()).collect();
        c.sort();
        c.dedup();
        c
    };
    let mut shown: BTreeMap<&str, Vec<&CatalogueApp>> = BTreeMap::new();
    for a in apps
        .iter()
        .filter(|a| q.category.is_empty() || a.category == q.category)
        .filter(|a| matches(a, &q.q))
    {
        shown.entry(a.category.as_str()).or_default().push(a);
    }
    let content = html! {
        @if q.done.as_deref() == Some("revoked") {
            p class="notice" role="status" { "L'autorisation a été retirée : l'application n'a plus accès à votre espace." }
        }
        section aria-labelledby="h-connected" {
            h2 id="h-connected" { "Mes applications connectées" }
            @if connected.is_empty() {
                p { "Aucune application n'est connectée à votre espace." }
            } @else {
                ul class="documents" {
                    @for (c, name, did) in &connected {
                        li {
                            strong { (name) }
                            div class="meta" { "Connectée le " (date_fr(c.since)) }
                            ul {
                                @for s in &c.scopes { li { (s.label_fr()) } }
                            }
                            @if !did.is_empty() {
                                details {
                                    summary { "Ce que l'application a fait" }
                                    ul class="plain" {
                                        @for (at, what) in did.iter().take(20) {
                                            li { time datetime=(iso_utc(*at)) { (datetime_fr(*at)) } " — " (what) }
                                        }
                                    }
                                }
                            }
                            @if who.is_owner() {
                                form method="post" action={ "/apps/" (c.app_id) "/revoke" } class="actions" {
                                    (who.csrf())
                                    button type="submit" class="danger" { "Retirer l'accès" span class="visually-hidden" { " de " (name) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="h-catalogue" {
            h2 id="h-catalogue" { "Catalogue des services référencés" }
            form method="get" action="/apps" role="search" {
                label for="q" { "Rechercher un service" }
                input type="text" id="q" name="q" value=(q.q);
                label for="category" { "Catégorie" }
                select id="category" name="category" {
                    option value="" { "Toutes" }
                    @for c in &categories {
                        option value=(c) selected[*c == q.category] { (c) }
                    }
                }
                p { button type="submit" class="secondary" { "Rechercher" } }
            }
            @if shown.is_empty() {
                p { "Aucun service ne correspond à votre recherche." }
            }
            @for (category, list) in &shown {
                h3 { (category) }
                ul class="documents" {
                    @for a in list {
                        li {
                            a href={ "/apps/" (a.id) } { (a.name) }
                            div class="meta" { (a.publisher) }
                            p { (a.description) }
                        }
                    }
                }
            }
        }
    };
    page("Applications", Some(&who), Area::Apps, content)
}

pub async fn detail(
    State(app): crate::frame::App,
    who: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let loaded = blocking(move || app.catalogue.app(&id)).await;
    let a = match loaded {
        Ok(Ok(Some(a))) => a,
        Ok(Ok(None)) => return crate::frame::not_found(),
        Ok(Err(e)) => return internal("catalogue", &e),
        Err(r) => return r,
    };
    let content = html! {
        p { a href="/apps" { "← Tout le catalogue" } }
        dl class="meta" {
            dt { "Éditeur" } dd { (a.publisher) }
            dt { "Catégorie" } dd { (a.category) }
            dt { "Référencé le" } dd { (a.referenced_on) }
            dt { "Site" } dd { a href=(a.website) rel="noopener noreferrer" { (a.website) } }
        }
        p { (a.description) }
        h2 { "Ce que ce service peut demander" }
        ul {
            @for s in &a.scopes { li { (s.label_fr()) } }
        }
        p class="hint" {
            "Pour connecter ce service, ouvrez-le et choisissez « Se connecter avec Mon espace santé » : "
            "vous autoriserez chaque accès un par un, et pourrez le retirer à tout moment."
        }
    };
    page(&a.name, Some(&who), Area::Apps, content)
}

#[derive(Deserialize)]
pub struct Plain {}

pub async fn revoke(
    State(app): crate::frame::App,
    Path(id): Path<String>,
    Posted(who, _): Posted<Plain>,
) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let actor = who.me.address.to_string();
    let patient = who.space.id;
    match blocking(move || app.catalogue.revoke(patient, &id, &actor)).await {
        Ok(Ok(())) => see_other("/apps?done=revoked"),
        Ok(Err(e)) => error_page(StatusCode::BAD_REQUEST, "Accès non retiré", &e.to_string()),
        Err(r) => r,
    }
}
