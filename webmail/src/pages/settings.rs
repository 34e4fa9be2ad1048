//! Settings: password, application passwords (for a mail client), delegation to a relative,
//! notification preferences, export everything, close the space. All but the delegated spaces
//! list are the owner's alone.

use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use mshub_directory::{Address, DirectoryError, Door};
use mshub_store::AccountId;
use mshub_vault::Notices;

use crate::csrf::Posted;
use crate::delegation::Level;
use crate::format::date_fr;
use crate::frame::{blocking, error_page, internal, page, see_other, App, Area, SignedIn};
use crate::session;

/// Shortest password accepted (ANSSI recommends 12+ characters for a password alone).
pub const MIN_PASSWORD: usize = 12;

#[derive(Deserialize, Default)]
pub struct Flash {
    #[serde(default)]
    done: Option<String>,
}

fn done_text(code: &str) -> &'static str {
    match code {
        "password" => "Votre mot de passe a été changé. Vos autres sessions ont été fermées.",
        "app-revoked" => "Le mot de passe d'application a été révoqué.",
        "delegated" => "La délégation a été enregistrée.",
        "revoked" => "La délégation a été retirée.",
        "notifications" => "Vos préférences de notification ont été enregistrées.",
        _ => "C'est fait.",
    }
}

pub async fn show(State(app): App, who: SignedIn, Query(flash): Query<Flash>) -> Response {
    let w = who.clone();
    let loaded = blocking(move || -> Result<_, Response> {
        let given = app
            .delegations
            .given(w.me.id)
            .map_err(|e| internal("delegations", &e))?;
        let given: Vec<(AccountId, String, Level)> = given
            .into_iter()
            .filter_map(|g| {
                let a = app.directory.account(g.delegate).ok().flatten()?;
                Some((
                    a.id,
                    format!("{} ({})", a.kind.display_name(), a.address),
                    g.level,
                ))
            })
            .collect();
        let received: Vec<(AccountId, String)> = app
            .delegations
            .received(w.me.id)
            .map_err(|e| internal("delegations", &e))?
            .into_iter()
            .filter_map(|id| app.directory.account(id).ok().flatten())
            .filter(|a| a.is_usable())
            .map(|a| (a.id, a.kind.display_name()))
            .collect();
        let notices = app
            .vault
            .patient_settings(w.me.id)
            .map_err(|e| internal("settings", &e))?
            .notices;
        Ok((given, received, notices))
    })
    .await;
    let (given, received, notices) = match loaded {
        Ok(Ok(v)) => v,
        Ok(Err(r)) | Err(r) => return r,
    };
    let me = &who.me;
    let content = html! {
        @if let Some(code) = &flash.done {
            p class="notice" role="status" { (done_text(code)) }
        }
        @if !received.is_empty() {
            section aria-labelledby="h-received" {
                h2 id="h-received" { "Espaces qui vous sont délégués" }
                ul class="plain" {
                    @for (id, name) in &received {
                        li {
                            form method="post" action="/space" {
                                (who.csrf())
                                input type="hidden" name="space" value=(id);
                                button type="submit" class="secondary" { "Ouvrir l'espace de " (name) }
                            }
                        }
                    }
                }
            }
        }
        @if who.is_owner() {
            section aria-labelledby="h-account" {
                h2 id="h-account" { "Mon compte" }
                p { "Adresse de messagerie santé : " strong { (me.address) } }
            }
            section aria-labelledby="h-password" {
                h2 id="h-password" { "Mot de passe" }
                form method="post" action="/settings/password" {
                    (who.csrf())
                    label for="current" { "Mot de passe actuel" }
                    input type="password" id="current" name="current" autocomplete="current-password" required;
                    label for="new" { "Nouveau mot de passe" }
                    p class="hint" id="new-hint" { "Au moins " (MIN_PASSWORD) " caractères." }
                    input type="password" id="new" name="new" autocomplete="new-password" required minlength=(MIN_PASSWORD) aria-describedby="new-hint";
                    label for="confirm" { "Confirmer le nouveau mot de passe" }
                    input type="password" id="confirm" name="confirm" autocomplete="new-password" required;
                    p { button type="submit" { "Changer le mot de passe" } }
                }
            }
            section aria-labelledby="h-apps" {
                h2 id="h-apps" { "Mots de passe d'application" }
                p class="hint" { "Pour lire vos messages dans un logiciel de messagerie (IMAP et SMTP). Chaque mot de passe est affiché une seule fois et peut être révoqué à tout moment." }
                @if !me.app_passwords.is_empty() {
                    ul class="plain" {
                        @for p in &me.app_passwords {
                            li {
                                form method="post" action="/settings/app-passwords/revoke" {
                                    (who.csrf())
                                    input type="hidden" name="id" value=(p.id);
                                    (p.label) " — créé le " (date_fr(p.created)) " "
                                    button type="submit" class="secondary" { "Révoquer" span class="visually-hidden" { " " (p.label) } }
                                }
                            }
                        }
                    }
                }
                form method="post" action="/settings/app-passwords" {
                    (who.csrf())
                    label for="label" { "Nom de l'appareil ou du logiciel" }
                    input type="text" id="label" name="label" required maxlength="60";
                    p { button type="submit" { "Créer un mot de passe d'application" } }
                }
            }
            section aria-labelledby="h-delegation" {
                h2 id="h-delegation" { "Délégation à un proche" }
                p class="hint" { "Un proche disposant de son propre compte peut consulter votre espace, et s'il y est autorisé répondre à vos professionnels de santé. Ses consultations figurent dans l'historique des accès." }
                @if !given.is_empty() {
                    ul class="plain" {
                        @for (id, name, level) in &given {
                            li {
                                form method="post" action="/settings/delegations/revoke" {
                                    (who.csrf())
                                    input type="hidden" name="delegate" value=(id);
                                    (name) " — " (level.label_fr()) " "
                                    button type="submit" class="secondary" { "Retirer" span class="visually-hidden" { " la délégation de " (name) } }
                                }
                            }
                        }
                    }
                }
                form method="post" action="/settings/delegations" {
                    (who.csrf())
                    label for="delegate" { "Adresse de messagerie santé du proche" }
                    input type="email" id="delegate" name="address" required;
                    fieldset {
                        legend { "Droits" }
                        p {
                            input type="radio" id="level-read" name="level" value="read" checked;
                            label for="level-read" class="inline" { "Lecture seule" }
                        }
                        p {
                            input type="radio" id="level-reply" name="level" value="read-reply";
                            label for="level-reply" class="inline" { "Lecture et réponse aux professionnels" }
                        }
                    }
                    p { button type="submit" { "Inviter" } }
                }
            }
            section aria-labelledby="h-notices" {
                h2 id="h-notices" { "Notifications" }
                form method="post" action="/settings/notifications" {
                    (who.csrf())
                    p {
                        input type="checkbox" id="n-doc" name="new_document" value="on" checked[notices.new_document];
                        label for="n-doc" class="inline" { "Me prévenir d'un nouveau document" }
                    }
                    p {
                        input type="checkbox" id="n-access" name="first_access" value="on" checked[notices.first_access];
                        label for="n-access" class="inline" { "Me prévenir quand un professionnel consulte un document pour la première fois" }
                    }
                    p class="hint" { "Un document qui n'a pas pu être classé vous est toujours signalé." }
                    p { button type="submit" { "Enregistrer" } }
                }
            }
            section aria-labelledby="h-export" {
                h2 id="h-export" { "Exporter mes données" }
                p class="hint" { "Une archive zip avec tous vos messages (.eml), vos documents et votre agenda (.ics)." }
                form method="post" action="/settings/export" {
                    (who.csrf())
                    button type="submit" { "Télécharger l'archive" }
                }
            }
            section aria-labelledby="h-close" {
                h2 id="h-close" { "Fermer mon espace santé" }
                p class="hint" { "Exportez d'abord vos données (ci-dessus). Après la fermeture, vous ne pouvez plus vous connecter et le courrier qui vous est adressé est refusé ; vos données sont supprimées à l'issue du délai de conservation, pendant lequel vous pouvez rouvrir votre espace depuis la page de connexion." }
                form method="post" action="/settings/export" {
                    (who.csrf())
                    button type="submit" class="secondary" { "Exporter mes données avant de fermer" }
                }
                form method="post" action="/settings/close" {
                    (who.csrf())
                    label for="close-password" { "Mot de passe" }
                    input type="password" id="close-password" name="password" autocomplete="current-password" required;
                    p {
                        input type="checkbox" id="close-confirm" name="confirm" value="yes" required;
                        label for="close-confirm" class="inline" { "Je confirme vouloir fermer mon espace santé" }
                    }
                    button type="submit" class="danger" { "Fermer mon espace" }
                }
            }
        } @else {
            p { "Les paramètres de cet espace sont réservés à son titulaire." }
        }
    };
    page("Paramètres", Some(&who), Area::Settings, content)
}

/// Too many password hashes at once: nothing was done, the patient tries again shortly.
fn busy() -> Response {
    let mut r = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service très sollicité",
        "Trop de connexions en même temps : rien n'a été modifié. Réessayez dans quelques secondes.",
    );
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(mshub_directory::hashing::RETRY_AFTER_SECS),
    );
    r
}

fn bad(title: &str, why: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, title, why)
}

/// Checks the account's current password (throttled like a login).
async fn check_password(
    app: &std::sync::Arc<crate::Webmail>,
    who: &SignedIn,
    password: String,
    from: IpAddr,
) -> Result<(), Response> {
    let directory = app.directory.clone();
    let login = who.me.address.to_string();
    match blocking(move || directory.authenticate(&login, &password, from, Door::Web)).await? {
        Ok(_) => Ok(()),
        Err(DirectoryError::BadCredentials) => Err(error_page(
            StatusCode::FORBIDDEN,
            "Mot de passe incorrect",
            "Le mot de passe actuel saisi est incorrect.",
        )),
        Err(DirectoryError::Throttled { retry_after_secs }) => Err(error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de tentatives",
            &format!("Réessayez dans {retry_after_secs} secondes."),
        )),
        Err(DirectoryError::Busy(_)) => Err(busy()),
        Err(e) => Err(internal("password check", &e)),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

pub async fn password(
    State(app): App,
    crate::frame::Peer(peer): crate::frame::Peer,
    headers: HeaderMap,
    Posted(who, form): Posted<PasswordForm>,
) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    if form.new != form.confirm {
        return bad(
            "Mot de passe non changé",
            "Les deux saisies du nouveau mot de passe diffèrent.",
        );
    }
    if form.new.chars().count() < MIN_PASSWORD {
        return bad(
            "Mot de passe non changé",
            &format!("Le nouveau mot de passe doit compter au moins {MIN_PASSWORD} caractères."),
        );
    }
    if let Err(r) = check_password(&app, &who, form.current, peer).await {
        return r;
    }
    let (directory, address, new) = (app.directory.clone(), who.me.address.clone(), form.new);
    let actor = address.to_string();
    match blocking(move || directory.set_password(&address, &new, &actor)).await {
        Ok(Ok(())) => {}
        Ok(Err(DirectoryError::Busy(_))) => return busy(),
        Ok(Err(e)) => return internal("password change", &e),
        Err(r) => return r,
    }
    // Every session of the account ends; this browser gets a fresh one.
    app.sessions.close_all(who.me.id);
    let mut r = crate::signin::start_session(&app, &headers, &who.me, who.session.method);
    if r.status() == StatusCode::SEE_OTHER {
        r.headers_mut().insert(
            axum::http::header::LOCATION,
            HeaderValue::from_static("/settings?done=password"),
        );
    }
    r
}

#[derive(Deserialize)]
pub struct AppPasswordForm {
    label: String,
}

pub async fn add_app_password(
    State(app): App,
    Posted(who, form): Posted<AppPasswordForm>,
) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let label: String = form
        .label
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(60)
        .collect();
    if label.is_empty() {
        return bad(
            "Mot de passe non créé",
            "Donnez un nom à l'appareil ou au logiciel.",
        );
    }
    let (directory, address) = (app.directory.clone(), who.me.address.clone());
    let created = blocking(move || {
        let actor = address.to_string();
        directory.add_app_password(&address, &label, &actor)
    })
    .await;
    let (entry, clear) = match created {
        Ok(Ok(v)) => v,
        Ok(Err(DirectoryError::Busy(_))) => return busy(),
        Ok(Err(e)) => return internal("application password", &e),
        Err(r) => return r,
    };
    // Shown once, on this response only (never in a URL).
    page(
        "Mot de passe d'application créé",
        Some(&who),
        Area::Settings,
        html! {
            p class="notice" role="status" { "Mot de passe créé pour « " (entry.label) " »." }
            p { "Saisissez-le dans votre logiciel de messagerie avec l'identifiant " strong { (who.me.address) } ". Il ne sera plus affiché." }
            p { code class="secret" { (clear) } }
            p { a href="/settings" { "Retour aux paramètres" } }
        },
    )
}

#[derive(Deserialize)]
pub struct RevokeAppForm {
    id: u32,
}

pub async fn revoke_app_password(
    State(app): App,
    Posted(who, form): Posted<RevokeAppForm>,
) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let (directory, address) = (app.directory.clone(), who.me.address.clone());
    match blocking(move || {
        let actor = address.to_string();
        directory.revoke_app_password(&address, form.id, &actor)
    })
    .await
    {
        Ok(Ok(())) => see_other("/settings?done=app-revoked"),
        Ok(Err(DirectoryError::InvalidField { .. })) => crate::frame::not_found(),
        Ok(Err(e)) => internal("application password", &e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct DelegateForm {
    address: String,
    level: String,
}

pub async fn delegate(State(app): App, Posted(who, form): Posted<DelegateForm>) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let level = match form.level.as_str() {
        "read" => Level::Read,
        "read-reply" => Level::ReadReply,
        _ => return bad("Délégation non faite", "Choisissez les droits du proche."),
    };
    let address = match Address::try_from(form.address.trim()) {
        Ok(a) => a,
        Err(e) => return bad("Délégation non faite", &format!("Adresse invalide : {e}.")),
    };
    let w = who.clone();
    let done = blocking(move || -> Result<Result<(), String>, Response> {
        let Some(relative) = app.directory.account_by_address(&address).map_err(|e| internal("directory", &e))? else {
            return Ok(Err("aucun compte ne porte cette adresse ; votre proche doit d'abord ouvrir son propre espace".into()));
        };
        if !relative.kind.is_patient() {
            return Ok(Err("la délégation se fait à un proche disposant d'un espace santé, pas à un professionnel".into()));
        }
        if relative.id == w.me.id {
            return Ok(Err("vous ne pouvez pas vous déléguer votre propre espace".into()));
        }
        app.delegations
            .grant(w.me.id, w.me.address.as_str(), relative.id, level)
            .map_err(|e| internal("delegation", &e))?;
        // A lowered level applies to open sessions too: it is read on every request.
        Ok(Ok(()))
    })
    .await;
    match done {
        Ok(Ok(Ok(()))) => see_other("/settings?done=delegated"),
        Ok(Ok(Err(why))) => bad(
            "Délégation non faite",
            &format!("Délégation impossible : {why}."),
        ),
        Ok(Err(r)) | Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct RevokeDelegationForm {
    delegate: u64,
}

pub async fn revoke_delegation(
    State(app): App,
    Posted(who, form): Posted<RevokeDelegationForm>,
) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let delegate = AccountId(form.delegate);
    let a = app.clone();
    let (me, actor) = (who.me.id, who.me.address.to_string());
    match blocking(move || a.delegations.revoke(me, &actor, delegate)).await {
        Ok(Ok(())) => {
            app.sessions.close_delegated(who.me.id, delegate);
            see_other("/settings?done=revoked")
        }
        Ok(Err(e)) => internal("delegation", &e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct NoticesForm {
    #[serde(default)]
    new_document: Option<String>,
    #[serde(default)]
    first_access: Option<String>,
}

pub async fn notifications(State(app): App, Posted(who, form): Posted<NoticesForm>) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let notices = Notices {
        new_document: form.new_document.is_some(),
        first_access: form.first_access.is_some(),
    };
    let me = who.me.clone();
    match blocking(move || app.vault.set_notices(&me, notices)).await {
        Ok(Ok(())) => see_other("/settings?done=notifications"),
        Ok(Err(e)) => internal("notices", &e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct Plain {}

pub async fn export(State(app): App, Posted(who, _): Posted<Plain>) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let me = who.me.clone();
    let extra = crate::export::agenda_files(&app, &me);
    match blocking(move || crate::export::export(&app, &me, &extra)).await {
        Ok(Ok(bytes)) => (
            [
                (CONTENT_TYPE, "application/zip".to_string()),
                (
                    CONTENT_DISPOSITION,
                    crate::download::disposition("attachment", "mon-espace-sante.zip"),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => internal("export", &e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct CloseForm {
    password: String,
    #[serde(default)]
    confirm: String,
}

/// Closing: the space is closed at once (no more logins, no more mail accepted for it),
/// delegations end, and the closure is in the audit chain. The content is destroyed after the
/// retention delay (`[accounts] retention_days`) unless the patient reopens it meanwhile
/// from the login page.
pub async fn close(
    State(app): App,
    crate::frame::Peer(peer): crate::frame::Peer,
    Posted(who, form): Posted<CloseForm>,
) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    if form.confirm != "yes" {
        return bad(
            "Espace non fermé",
            "Cochez la case de confirmation pour fermer votre espace.",
        );
    }
    if let Err(r) = check_password(&app, &who, form.password, peer).await {
        return r;
    }
    let a = app.clone();
    let me = who.me.clone();
    let closed = blocking(move || -> Result<i64, String> {
        let actor = me.address.to_string();
        let account = a
            .directory
            .close(&me.address, mshub_store::now(), &actor)
            .map_err(|e| e.to_string())?;
        a.delegations
            .forget(me.id, &actor)
            .map_err(|e| e.to_string())?;
        match account.lifecycle {
            mshub_directory::Lifecycle::Closed { destroy_after, .. } => Ok(destroy_after),
            _ => Err("the space did not close".into()),
        }
    })
    .await;
    match closed {
        Ok(Ok(destroy_after)) => {
            app.sessions.close_all(who.me.id);
            let mut r = page(
                "Espace fermé",
                None,
                Area::None,
                html! {
                    p class="notice" role="status" {
                        "Votre espace santé est fermé. Ses données seront définitivement supprimées le "
                        (crate::format::date_fr(destroy_after))
                        ". D'ici là, vous pouvez le rouvrir en vous connectant avec votre mot de passe."
                    }
                },
            );
            if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(session::COOKIE)) {
                r.headers_mut().append(SET_COOKIE, v);
            }
            r
        }
        Ok(Err(e)) => internal("closing", &e),
        Err(r) => r,
    }
}
