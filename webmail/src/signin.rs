//! Signing in, whatever the way (password, SAML, activation, a changed password): a new
//! session, its cookie, and the login page a refused account is sent back to.

use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use maud::html;

use mshub_directory::Account;

use crate::frame::{internal, page, see_other, Area};
use crate::session::{self, random_token};

pub fn add_cookie(r: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(SET_COOKIE, v);
    }
}

pub fn login_page(
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
pub fn start_session_to(
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
