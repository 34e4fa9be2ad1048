//! The public pages of a space created from the roster: activating it (`/activation`: INS,
//! birth date and the code of the notice, then a password) and opposing its creation
//! (`/opposition`). No session: like the login form, their CSRF token is a random value in
//! the login cookie echoed by the form (double submit). Attempts are throttled like logins,
//! and every mismatch (unknown INS, birth date, code) gets the same answer.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use mshub_directory::{BirthDate, DirectoryError, Ins};

use crate::frame::{blocking, internal, page, App, Area};
use crate::session::{self, random_token, same_secret};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Activation,
    Opposition,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Activation => "/activation",
            Kind::Opposition => "/opposition",
        }
    }
}

#[derive(Deserialize, Default)]
pub struct CodeForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    ins: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
    #[serde(default)]
    confirm: String,
}

fn identity_fields(form: &CodeForm) -> Markup {
    html! {
        label for="ins" { "Votre INS (15 caractères, sur votre carte Vitale)" }
        input type="text" id="ins" name="ins" value=(form.ins) required autocomplete="off"
            autocapitalize="characters" spellcheck="false" inputmode="text" maxlength="20";
        label for="birth_date" { "Votre date de naissance" }
        input type="date" id="birth_date" name="birth_date" value=(form.birth_date) required
            autocomplete="bday";
        label for="code" { "Code d'activation (sur le courrier reçu, par exemple ABCD-EFGH-JKLM)" }
        input type="text" id="code" name="code" required autocomplete="one-time-code"
            autocapitalize="characters" spellcheck="false" maxlength="20";
    }
}

fn form_page(kind: Kind, status: StatusCode, error: Option<&str>, form: &CodeForm) -> Response {
    let token = random_token();
    let (title, body) = match kind {
        Kind::Activation => (
            "Activer mon espace santé",
            html! {
                p { "Saisissez les informations du courrier qui vous annonce la création de votre espace, puis choisissez votre mot de passe." }
                @if let Some(e) = error { p class="error" role="alert" id="form-error" { (e) } }
                form method="post" action="/activation" {
                    (crate::csrf::field(&token))
                    (identity_fields(form))
                    label for="password" { "Mot de passe (12 caractères au moins)" }
                    input type="password" id="password" name="password" required minlength="12"
                        autocomplete="new-password";
                    label for="password_again" { "Mot de passe, à nouveau" }
                    input type="password" id="password_again" name="password_again" required
                        minlength="12" autocomplete="new-password";
                    p { button type="submit" { "Activer mon espace" } }
                }
                p { a href="/opposition" { "Je ne veux pas de cet espace" } }
            },
        ),
        Kind::Opposition => (
            "M'opposer à la création de mon espace santé",
            html! {
                p { "Pendant la période d'opposition indiquée sur votre courrier, vous pouvez refuser la création de votre espace. Il ne sera jamais ouvert, et les documents qui y auraient été déposés seront détruits. Ce choix est définitif." }
                @if let Some(e) = error { p class="error" role="alert" id="form-error" { (e) } }
                form method="post" action="/opposition" {
                    (crate::csrf::field(&token))
                    (identity_fields(form))
                    p {
                        input type="checkbox" id="confirm" name="confirm" value="yes" required;
                        label for="confirm" class="inline" { "Je refuse la création de mon espace santé" }
                    }
                    p { button type="submit" class="danger" { "M'opposer" } }
                }
                p { a href="/activation" { "Activer mon espace plutôt" } }
            },
        ),
    };
    let mut r = page(title, None, Area::None, body);
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(session::LOGIN_COOKIE, &token)) {
        r.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
    r
}

pub async fn activation_form() -> Response {
    form_page(Kind::Activation, StatusCode::OK, None, &CodeForm::default())
}

pub async fn opposition_form() -> Response {
    form_page(Kind::Opposition, StatusCode::OK, None, &CodeForm::default())
}

/// The checks both forms share; on failure, the page to answer with.
fn checked(kind: Kind, headers: &HeaderMap, form: &CodeForm) -> Result<(Ins, BirthDate), Response> {
    let cookie = session::cookie(headers, session::LOGIN_COOKIE).unwrap_or("");
    if !same_secret(cookie, &form.csrf) {
        return Err(form_page(
            kind,
            StatusCode::FORBIDDEN,
            Some("Le formulaire a expiré. Saisissez à nouveau vos informations."),
            form,
        ));
    }
    let Ok(ins) = Ins::try_from(form.ins.trim()) else {
        return Err(form_page(
            kind,
            StatusCode::BAD_REQUEST,
            Some("Cet INS n'est pas valide : il a 15 caractères, dont une clé de contrôle de 2 chiffres. Vérifiez-le sur votre carte Vitale."),
            form,
        ));
    };
    let Ok(birth) = BirthDate::try_from(form.birth_date.trim()) else {
        return Err(form_page(
            kind,
            StatusCode::BAD_REQUEST,
            Some("La date de naissance n'est pas valide."),
            form,
        ));
    };
    Ok((ins, birth))
}

fn refused(kind: Kind, e: DirectoryError, form: &CodeForm) -> Response {
    match e {
        DirectoryError::BadActivationCode => form_page(
            kind,
            StatusCode::UNAUTHORIZED,
            Some("Ces informations ne correspondent à aucun espace en attente. Vérifiez l'INS, la date de naissance et le code du courrier (un espace déjà activé ou refusé n'a plus de code)."),
            form,
        ),
        DirectoryError::Throttled { retry_after_secs } => {
            let mut r = form_page(
                kind,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!(
                    "Trop de tentatives. Réessayez dans {retry_after_secs} secondes."
                )),
                form,
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            r
        }
        DirectoryError::WeakPassword(_) => form_page(
            kind,
            StatusCode::BAD_REQUEST,
            Some("Le mot de passe doit compter au moins 12 caractères."),
            form,
        ),
        DirectoryError::WrongState { .. } => form_page(
            kind,
            StatusCode::CONFLICT,
            Some("Cet espace est déjà ouvert : pour ne plus l'utiliser, fermez-le depuis ses paramètres."),
            form,
        ),
        DirectoryError::Busy(_) => {
            let mut r = form_page(
                kind,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("Trop de demandes en même temps. Réessayez dans quelques secondes."),
                form,
            );
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(mshub_directory::hashing::RETRY_AFTER_SECS),
            );
            r
        }
        other => internal(kind.path(), &other),
    }
}

pub async fn activate(
    State(app): App,
    crate::frame::Peer(peer): crate::frame::Peer,
    headers: HeaderMap,
    Form(mut form): Form<CodeForm>,
) -> Response {
    let (ins, birth) = match checked(Kind::Activation, &headers, &form) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if form.password != form.password_again {
        return form_page(
            Kind::Activation,
            StatusCode::BAD_REQUEST,
            Some("Les deux mots de passe saisis sont différents."),
            &form,
        );
    }
    let directory = app.directory.clone();
    let (code, password) = (form.code.clone(), std::mem::take(&mut form.password));
    let done = blocking(move || {
        directory.activate(&ins, &birth, &code, &password, mshub_store::now(), peer)
    })
    .await;
    match done {
        Ok(Ok(account)) => crate::signin::start_session(&app, &headers, &account, "activation"),
        Ok(Err(e)) => refused(Kind::Activation, e, &form),
        Err(r) => r,
    }
}

pub async fn oppose(
    State(app): App,
    crate::frame::Peer(peer): crate::frame::Peer,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let (ins, birth) = match checked(Kind::Opposition, &headers, &form) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if form.confirm != "yes" {
        return form_page(
            Kind::Opposition,
            StatusCode::BAD_REQUEST,
            Some("Cochez la case pour confirmer votre opposition."),
            &form,
        );
    }
    let directory = app.directory.clone();
    let code = form.code.clone();
    let done =
        blocking(move || directory.oppose_with_code(&ins, &birth, &code, mshub_store::now(), peer))
            .await;
    match done {
        Ok(Ok(_)) => {
            let mut r = page(
                "Opposition enregistrée",
                None,
                Area::None,
                html! {
                    p class="notice" role="status" {
                        "Votre opposition est enregistrée : votre espace santé ne sera pas ouvert, et les documents qui y avaient été déposés sont détruits. Le courrier qui lui serait adressé est refusé."
                    }
                },
            );
            if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(session::LOGIN_COOKIE)) {
                r.headers_mut().append(axum::http::header::SET_COOKIE, v);
            }
            r
        }
        Ok(Err(e)) => refused(Kind::Opposition, e, &form),
        Err(r) => r,
    }
}
