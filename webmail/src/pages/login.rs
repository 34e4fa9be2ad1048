//! Log in (account password, argon2id, throttled by the directory), log out, and switching to
//! a space delegated to the signed-in account.
//!
//! The login form has no session yet: its CSRF token is a random value in a `__Host-` cookie,
//! echoed by the form (double submit), which stops login CSRF. A successful login always opens
//! a new session (rotation) and drops the login cookie.

use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::html;
use serde::Deserialize;

use mshub_directory::{Account, DirectoryError, Door, Ins, Lifecycle};
use mshub_store::AccountId;

use super::{blocking, internal, page, see_other, App, Area};
use crate::csrf::Posted;
use crate::session::{self, random_token, same_secret};

fn add_cookie(r: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(SET_COOKIE, v);
    }
}

fn login_page(
    sso: bool,
    status: StatusCode,
    error: Option<&str>,
    login: &str,
    next: &str,
) -> Response {
    let token = random_token();
    let mut r = page(
        "Connexion",
        None,
        Area::None,
        html! {
            @if let Some(e) = error {
                p class="error" role="alert" id="login-error" { (e) }
            }
            form method="post" action="/login" {
                (crate::csrf::field(&token))
                @if !next.is_empty() { input type="hidden" name="next" value=(next); }
                label for="login" { "Identifiant (INS ou adresse de messagerie)" }
                input type="text" id="login" name="login" value=(login) autocomplete="username"
                    required autocapitalize="none" spellcheck="false"
                    aria-describedby=[error.map(|_| "login-error")];
                label for="password" { "Mot de passe" }
                input type="password" id="password" name="password"
                    autocomplete="current-password" required;
                p { button type="submit" { "Se connecter" } }
            }
            @if sso {
                p { a class="button secondary" href="/saml/login" { "Se connecter avec mon fournisseur d'identité" } }
            }
            p class="hint" {
                "Votre identifiant est votre INS (15 caractères, sur votre carte Vitale ou votre "
                "attestation de droits) ou votre adresse de messagerie santé."
            }
            p class="hint" {
                "Vous avez reçu un courrier avec un code d'activation ? "
                a href="/activation" { "Activez votre espace" }
                " (ou " a href="/opposition" { "opposez-vous à sa création" } ")."
            }
        },
    );
    *r.status_mut() = status;
    add_cookie(&mut r, &session::set_cookie(session::LOGIN_COOKIE, &token));
    r
}

#[derive(Deserialize, Default)]
pub struct Next {
    #[serde(default)]
    next: String,
}

/// Where to go after login: a path of this site only (never `//host` or a scheme).
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        ""
    }
}

pub async fn form(app: App, headers: HeaderMap, Query(next): Query<Next>) -> Response {
    if let Some(token) = session::cookie(&headers, session::COOKIE) {
        if app.sessions.get(token).is_some() {
            // Already signed in: straight on (a pharmacist to the prescription it scanned).
            let next = safe_next(&next.next);
            return see_other(if next.is_empty() { "/" } else { next });
        }
    }
    login_page(
        app.sso.is_some(),
        StatusCode::OK,
        None,
        "",
        safe_next(&next.next),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    /// "yes": reopen the space if it is closed (offered after a login to a closed space).
    #[serde(default)]
    reopen: String,
}

/// A closed space: say until when it can be reopened, and offer to reopen it with the
/// same credentials.
fn closed_page(login: &str, lifecycle: &Lifecycle) -> Response {
    let token = random_token();
    let until = match lifecycle {
        Lifecycle::Closed { destroy_after, .. } => Some(super::date_fr(*destroy_after)),
        _ => None,
    };
    let mut r = page(
        "Espace fermé",
        None,
        Area::None,
        html! {
            @if let Some(until) = &until {
                p class="error" role="alert" {
                    "Votre espace santé est fermé. Ses données seront définitivement supprimées le "
                    (until) ". D'ici là, vous pouvez le rouvrir."
                }
                form method="post" action="/login" {
                    (crate::csrf::field(&token))
                    input type="hidden" name="reopen" value="yes";
                    label for="login" { "Identifiant (INS ou adresse de messagerie)" }
                    input type="text" id="login" name="login" value=(login) autocomplete="username" required;
                    label for="password" { "Mot de passe" }
                    input type="password" id="password" name="password" autocomplete="current-password" required;
                    p { button type="submit" { "Rouvrir mon espace et me connecter" } }
                }
            } @else {
                p class="error" role="alert" {
                    "Cet espace santé n'est pas ouvert. S'il est en attente d'activation, "
                    a href="/activation" { "activez-le avec le code reçu par courrier" } "."
                }
            }
        },
    );
    *r.status_mut() = StatusCode::FORBIDDEN;
    add_cookie(&mut r, &session::set_cookie(session::LOGIN_COOKIE, &token));
    r
}

/// A patient may type its INS instead of its address.
fn login_address(app: &crate::Webmail, login: &str) -> String {
    let login = login.trim();
    match Ins::try_from(login) {
        Ok(ins) => app.directory.patient_address(&ins).to_string(),
        Err(_) => login.to_string(),
    }
}

pub async fn submit(
    State(app): App,
    super::Peer(peer): super::Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let cookie = session::cookie(&headers, session::LOGIN_COOKIE).unwrap_or("");
    if !same_secret(cookie, &form.csrf) {
        return login_page(
            app.sso.is_some(),
            StatusCode::FORBIDDEN,
            Some("Le formulaire a expiré. Saisissez à nouveau vos identifiants."),
            &form.login,
            safe_next(&form.next),
        );
    }
    let source = peer;
    let login = login_address(&app, &form.login);
    let directory = app.directory.clone();
    let password = form.password;
    let reopen = form.reopen == "yes";
    let checked = match blocking(move || {
        if reopen {
            directory.reopen_with_password(&login, &password, mshub_store::now(), source)
        } else {
            directory.authenticate(&login, &password, source, Door::Web)
        }
    })
    .await
    {
        Ok(c) => c,
        Err(r) => return r,
    };
    let account = match checked {
        Ok(a) => a,
        Err(DirectoryError::BadCredentials) => {
            return login_page(
                app.sso.is_some(),
                StatusCode::UNAUTHORIZED,
                Some("Identifiant ou mot de passe incorrect."),
                &form.login,
                safe_next(&form.next),
            )
        }
        Err(DirectoryError::Throttled { retry_after_secs }) => {
            let mut r = login_page(
                app.sso.is_some(),
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!(
                    "Trop de tentatives de connexion. Réessayez dans {retry_after_secs} secondes."
                )),
                &form.login,
                safe_next(&form.next),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            return r;
        }
        Err(DirectoryError::Busy(_)) => {
            let mut r = login_page(
                app.sso.is_some(),
                StatusCode::SERVICE_UNAVAILABLE,
                Some("Trop de connexions en même temps. Réessayez dans quelques secondes."),
                &form.login,
                safe_next(&form.next),
            );
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(mshub_directory::hashing::RETRY_AFTER_SECS),
            );
            return r;
        }
        Err(DirectoryError::NotOpen { lifecycle, .. }) => {
            return closed_page(&form.login, &lifecycle);
        }
        Err(DirectoryError::Disabled(_)) => {
            return login_page(
                app.sso.is_some(),
                StatusCode::FORBIDDEN,
                Some("Ce compte est désactivé ou l'espace santé est fermé."),
                &form.login,
                safe_next(&form.next),
            )
        }
        Err(e) => return internal("login", &e),
    };
    let next = safe_next(&form.next);
    let mut r = start_session_to(&app, &headers, &account, "password", next);
    if r.status() == StatusCode::SEE_OTHER && !next.is_empty() {
        if let Ok(v) = HeaderValue::from_str(next) {
            r.headers_mut().insert(axum::http::header::LOCATION, v);
        }
    }
    r
}

/// Opens a new session for `account` (rotation: any session the browser had is ended) and
/// sends the browser to its inbox. Patients (and relatives, who are patients too) only.
pub fn start_session(
    app: &crate::Webmail,
    headers: &HeaderMap,
    account: &Account,
    method: &'static str,
) -> Response {
    start_session_to(app, headers, account, method, "")
}

/// [`start_session`], knowing where the login goes next: a health professional may sign in
/// only on its way to a prescription's page (`/ordonnance/…`, the pharmacist's door), which
/// decides by profession.
fn start_session_to(
    app: &crate::Webmail,
    headers: &HeaderMap,
    account: &Account,
    method: &'static str,
    next: &str,
) -> Response {
    let to_prescription = next.starts_with("/ordonnance/")
        && matches!(
            account.kind,
            mshub_directory::AccountKind::Professional { .. }
        );
    if !account.kind.is_patient() && !to_prescription {
        return login_page(
            app.sso.is_some(),
            StatusCode::FORBIDDEN,
            Some(
                "L'espace web est réservé aux patients. Les professionnels de santé utilisent \
                 leur logiciel de messagerie (IMAP et SMTP).",
            ),
            "",
            "",
        );
    }
    if let Some(old) = session::cookie(headers, session::COOKIE) {
        app.sessions.close(old);
    }
    let Some((token, _)) = app.sessions.open(account.id, method) else {
        return internal("session", &"the system random generator failed");
    };
    tracing::info!(account = %account.id, method, "signed in");
    let mut r = see_other("/");
    add_cookie(&mut r, &session::set_cookie(session::COOKIE, &token));
    add_cookie(&mut r, &session::clear_cookie(session::LOGIN_COOKIE));
    r
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn logout(State(app): App, Posted(who, _): Posted<Empty>) -> Response {
    app.sessions.close(&who.token);
    tracing::info!(account = %who.me.id, "signed out");
    let mut r = see_other("/login");
    add_cookie(&mut r, &session::clear_cookie(session::COOKIE));
    r
}

#[derive(Deserialize)]
pub struct SpaceForm {
    space: String,
}

/// Switches to a space delegated to the signed-in account ("own": back to its own).
pub async fn switch_space(State(app): App, Posted(who, form): Posted<SpaceForm>) -> Response {
    let target = if form.space == "own" {
        who.me.id
    } else {
        let Ok(id) = form.space.parse::<u64>().map(AccountId) else {
            return super::not_found();
        };
        match app.delegations.level(id, who.me.id) {
            Ok(Some(_)) => id,
            Ok(None) => {
                return super::error_page(
                    StatusCode::FORBIDDEN,
                    "Accès refusé",
                    "Cet espace ne vous est pas (ou plus) délégué.",
                )
            }
            Err(e) => return internal("delegation", &e),
        }
    };
    app.sessions.act_for(&who.token, target);
    if target != who.me.id {
        let _ = app.store.audit(
            mshub_store::AuditEvent::new(
                who.me.address.as_str(),
                "delegation.open",
                format!("account:{target}"),
            )
            .with_detail(format!("patient:{target}")),
        );
    }
    see_other("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn after_login_only_paths_of_this_site_are_followed() {
        assert_eq!(
            super::safe_next("/oauth/authorize?x=1"),
            "/oauth/authorize?x=1"
        );
        assert_eq!(super::safe_next("//evil.example/"), "");
        assert_eq!(super::safe_next("https://evil.example/"), "");
        assert_eq!(super::safe_next("/\\evil.example"), "");
        assert_eq!(super::safe_next(""), "");
    }

    #[test]
    fn the_login_page_is_french_and_labelled() {
        let r = super::login_page(false, axum::http::StatusCode::OK, None, "", "");
        assert!(r
            .headers()
            .get_all(axum::http::header::SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-mshub-login=")));
    }
}
