//! SAML 2.0 single sign-on (Web Browser SSO profile, SP-initiated): `GET /saml/metadata` (the
//! SP metadata, a stable URL), `GET /saml/login` (redirect to the IdP with an AuthnRequest),
//! `POST /saml/acs` (the IdP's signed response; the checks are [`crate::saml`]'s).
//!
//! The AuthnRequest's id is bound to the browser that started the login by a random cookie
//! (`__Host-mshub-saml`): a response is taken only from the browser it was asked for, which
//! stops a login CSRF where an attacker posts its own valid response. That cookie must come
//! back on the IdP's cross-site POST, so it is `SameSite=None` — it grants nothing by itself.
//! The session cookie set after the ACS is `SameSite=Strict`; a browser does not send it on
//! the redirect that ends a cross-site POST, so the ACS answers with a page that moves on to
//! the inbox from this site.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, DOCTYPE};
use serde::Deserialize;

use crate::frame::{blocking, error_page, internal, App};
use crate::saml::{SamlError, SamlSp};
use crate::session::{self, random_token};

/// The cookie that binds a pending login to its browser.
pub const COOKIE: &str = "__Host-mshub-saml";
/// A login not finished within this time is forgotten.
const PENDING_FOR: Duration = Duration::from_secs(10 * 60);
/// Pending logins kept at most (past it the oldest go).
const MAX_PENDING: usize = 50_000;

/// The service provider and the logins it is waiting for.
pub struct Sso {
    pub sp: SamlSp,
    pending: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sso {
    pub fn new(sp: SamlSp) -> Self {
        Self {
            sp,
            pending: Mutex::default(),
        }
    }

    fn remember(&self, browser: &str, request_id: String) {
        let now = Instant::now();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, (_, at)| now.duration_since(*at) < PENDING_FOR);
        if pending.len() >= MAX_PENDING {
            if let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            {
                pending.remove(&oldest);
            }
        }
        pending.insert(browser.to_string(), (request_id, now));
    }

    /// The request the browser is waiting on, taken (a response answers one request once).
    fn take(&self, browser: &str) -> Option<String> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let (id, at) = pending.remove(browser)?;
        (at.elapsed() < PENDING_FOR).then_some(id)
    }
}

fn cookie_header(value: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(value).ok()
}

pub async fn metadata(State(app): App) -> Response {
    match &app.sso {
        Some(sso) => (
            [(CONTENT_TYPE, "application/samlmetadata+xml")],
            sso.sp.metadata_xml(),
        )
            .into_response(),
        None => crate::frame::not_found(),
    }
}

pub async fn login(State(app): App) -> Response {
    let Some(sso) = &app.sso else {
        return crate::frame::not_found();
    };
    let request = match sso.sp.login_redirect("") {
        Ok(r) => r,
        Err(e) => return internal("SAML request", &e),
    };
    let browser = random_token();
    sso.remember(&browser, request.request_id);
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Some(v) = cookie_header(&request.url) {
        r.headers_mut().insert(LOCATION, v);
    }
    if let Some(v) = cookie_header(&format!(
        "{COOKIE}={browser}; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=600"
    )) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse", default)]
    saml_response: String,
}

fn refused(e: &SamlError) -> Response {
    tracing::info!(reason = ?e, "SAML login refused");
    error_page(
        StatusCode::FORBIDDEN,
        "Connexion refusée",
        &format!("La connexion par votre fournisseur d'identité a été refusée : {e}."),
    )
}

/// A pending space is activated with the code of its notice, not by single sign-on.
const NOT_OPEN: &str = "Cet espace santé n'est pas ouvert : en attente d'activation (activez-le avec \
                        le code reçu par courrier, page « Activer mon espace »), fermé ou désactivé.";

pub async fn acs(State(app): App, headers: HeaderMap, Form(form): Form<AcsForm>) -> Response {
    if app.sso.is_none() {
        return crate::frame::not_found();
    }
    let Some(browser) = session::cookie(&headers, COOKIE).map(str::to_string) else {
        return error_page(
            StatusCode::FORBIDDEN,
            "Connexion refusée",
            "Cette réponse de connexion n'a pas été demandée depuis ce navigateur. Recommencez la connexion.",
        );
    };
    let a = app.clone();
    let checked = blocking(move || {
        let Some(sso) = &a.sso else {
            return Err(SamlError::Unreadable);
        };
        let outstanding: Vec<String> = sso.take(&browser).into_iter().collect();
        sso.sp
            .consume(&form.saml_response, &outstanding, SystemTime::now())
    })
    .await;
    let identity = match checked {
        Ok(Ok(identity)) => identity,
        Ok(Err(e)) => return refused(&e),
        Err(r) => return r,
    };
    let Some(ins) = identity.ins else {
        return error_page(
            StatusCode::FORBIDDEN,
            "Connexion refusée",
            "Le fournisseur d'identité n'a pas transmis votre INS.",
        );
    };
    let address = app.directory.patient_address(&ins);
    let d = app.directory.clone();
    let account = match blocking(move || d.account_by_address(&address)).await {
        Ok(Ok(Some(a))) if a.is_usable() => a,
        Ok(Ok(Some(_))) => return error_page(StatusCode::FORBIDDEN, "Connexion refusée", NOT_OPEN),
        Ok(Ok(None)) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "Connexion refusée",
                "Aucun espace santé n'est ouvert pour cette identité sur ce service.",
            )
        }
        Ok(Err(e)) => return internal("directory", &e),
        Err(r) => return r,
    };
    let _ = app.store.audit(
        mshub_store::AuditEvent::new(
            account.address.as_str(),
            "account.login.saml",
            format!("account:{}", account.id),
        )
        .with_detail(format!(
            "idp:{}",
            app.sso.as_ref().map_or("", |s| s.sp.idp_entity_id())
        )),
    );
    let started = crate::signin::start_session(&app, &headers, &account, "saml");
    if started.status() != StatusCode::SEE_OTHER {
        return started;
    }
    // Same-site hop: see the module's comment on SameSite=Strict after a cross-site POST.
    let mut r = html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="0;url=/";
                title { "Connexion réussie — Mon espace santé" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                main id="contenu" {
                    h1 { "Connexion réussie" }
                    p { a href="/" { "Accéder à mon espace santé" } }
                }
            }
        }
    }
    .into_response();
    for c in started.headers().get_all(SET_COOKIE) {
        r.headers_mut().append(SET_COOKIE, c.clone());
    }
    if let Some(v) = cookie_header(&format!(
        "{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=0"
    )) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r.headers_mut().insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::frame::PAGE_CSP),
    );
    r
}
