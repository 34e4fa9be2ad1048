//! OAuth 2.0 for the referenced apps: the authorization-code grant (RFC 6749 §4.1) with PKCE
//! (RFC 7636, `S256` only), public clients. An app's `client_id` is its catalogue id and its
//! redirect URIs are those of its signed catalogue entry, compared exactly.
//!
//! `GET /oauth/authorize` shows the consent page to the signed-in patient (one checkbox per
//! scope, none ticked in advance); `POST /oauth/authorize` gives the code (or
//! `access_denied`) back to the app; `POST /oauth/token` exchanges the code and verifier for
//! a bearer token (and `grant_type=refresh_token` renews it, RFC 6749 §6). What is granted,
//! and what a token may do, is the catalogue's.
//!
//! Errors before the redirect URI is known to be the app's are shown to the patient, never
//! redirected (RFC 6749 §4.1.2.1): an open redirector is what an attacker would want.

// As in the pages: a helper fails with the response that explains the failure.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;

use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use maud::html;
use serde::Deserialize;

use mshub_catalogue::{App as CatalogueApp, Catalogue, Scope};

use crate::csrf::Posted;
use crate::frame::{blocking, error_page, internal, page, App, Area, SignedIn};

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct AuthorizeRequest {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
}

/// The app's redirect with `params` added to its query (RFC 6749 §4.1.2).
fn redirect_to(uri: &str, params: &[(&str, &str)]) -> Response {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if uri.contains('?') { '&' } else { '?' };
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{uri}{sep}{query}")) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

fn refuse(why: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, "Demande d'accès invalide", why)
}

/// A checked request: the app, its redirect URI, the scopes asked (all offered by the app).
struct Checked {
    app: CatalogueApp,
    scopes: Vec<Scope>,
}

/// Checks `req` with the catalogue (RFC 6749 §4.1.1, RFC 7636 §4.3). `Err` is the response to
/// give: a page while the redirect URI is not known to be the app's, a redirect after.
fn check(catalogue: &Catalogue, req: &AuthorizeRequest) -> Result<Checked, Response> {
    let app = match catalogue.app(&req.client_id) {
        Ok(Some(app)) => app,
        Ok(None) => {
            return Err(refuse(
                "Cette application n'est pas référencée dans le catalogue.",
            ))
        }
        Err(e) => return Err(internal("catalogue", &e)),
    };
    if !app.accepts_redirect(&req.redirect_uri) {
        return Err(refuse(
            "L'adresse de retour demandée n'est pas celle que le catalogue connaît pour cette application.",
        ));
    }
    let back = |error: &str, description: &str| {
        redirect_to(
            &req.redirect_uri,
            &[
                ("error", error),
                ("error_description", description),
                ("state", &req.state),
            ],
        )
    };
    if req.response_type != "code" {
        return Err(back("unsupported_response_type", "only response_type=code"));
    }
    if req.code_challenge_method != "S256" {
        return Err(back(
            "invalid_request",
            "PKCE is required: code_challenge with code_challenge_method=S256",
        ));
    }
    let scopes =
        Scope::parse_list(&req.scope).map_err(|e| back(e.oauth_error(), &e.to_string()))?;
    let app = catalogue
        .check_request(
            &app.id,
            &scopes,
            &req.redirect_uri,
            &req.code_challenge,
            mshub_store::now(),
        )
        .map_err(|e| back(e.oauth_error(), &e.to_string()))?;
    Ok(Checked { app, scopes })
}

/// The consent page may post to us and then send the browser to the app: its form-action must
/// allow the app's origin (browsers apply form-action to the redirect too).
fn consent_csp(redirect_uri: &str) -> Option<HeaderValue> {
    // CSP3 §2.3.1: a host-source for http(s), a scheme-source (`fr.app.example:`) for a
    // native app's private-use scheme (RFC 8252 §7.1).
    let source: String = match redirect_uri.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next()?;
            format!("{scheme}://{host}")
        }
        None => {
            let (scheme, _) = redirect_uri.split_once(':')?;
            format!("{scheme}:")
        }
    };
    let scheme_ok = |c: char| c.is_ascii_alphanumeric() || "+-.:/[]".contains(c);
    if source.is_empty() || !source.chars().all(scheme_ok) {
        return None;
    }
    HeaderValue::from_str(&crate::frame::PAGE_CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {source}"),
    ))
    .ok()
}

pub async fn authorize(
    State(app): App,
    who: SignedIn,
    Query(req): Query<AuthorizeRequest>,
) -> Response {
    if !who.is_owner() {
        return error_page(
            StatusCode::FORBIDDEN,
            "Réservé au titulaire",
            "Seul le titulaire de l'espace santé peut connecter une application.",
        );
    }
    let r = req.clone();
    let checked = match blocking(move || check(&app.catalogue, &r)).await {
        Ok(Ok(c)) => c,
        Ok(Err(r)) | Err(r) => return r,
    };
    let content = html! {
        p {
            strong { (checked.app.name) } " (" (checked.app.publisher) ") demande l'accès à votre espace santé. "
            "Cochez ce que vous acceptez de lui confier :"
        }
        form method="post" action="/oauth/authorize" {
            (who.csrf())
            @for (k, v) in [
                ("client_id", &req.client_id), ("redirect_uri", &req.redirect_uri),
                ("state", &req.state), ("code_challenge", &req.code_challenge),
                ("code_challenge_method", &req.code_challenge_method), ("response_type", &req.response_type),
            ] {
                input type="hidden" name=(k) value=(v);
            }
            fieldset {
                legend { "Accès demandés" }
                @for (i, s) in checked.scopes.iter().enumerate() {
                    p {
                        input type="checkbox" id={ "scope-" (i) } name="scope" value=(s.to_string());
                        label for={ "scope-" (i) } class="inline" { (s.label_fr()) }
                    }
                }
            }
            p class="hint" { "Vous pourrez retirer cet accès à tout moment depuis la page Applications." }
            div class="actions" {
                button type="submit" name="decision" value="allow" { "Autoriser" }
                button type="submit" name="decision" value="deny" class="secondary" { "Refuser" }
            }
        }
    };
    let mut r = page("Autoriser une application", Some(&who), Area::Apps, content);
    if let Some(csp) = consent_csp(&req.redirect_uri) {
        r.headers_mut().insert(CONTENT_SECURITY_POLICY, csp);
    }
    r
}

/// The consent form, as repeated pairs: the request again (checked again), one `scope` per
/// ticked box, and the decision.
fn consent_request(pairs: &[(String, String)]) -> (AuthorizeRequest, String) {
    let first = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let ticked: BTreeSet<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let request = AuthorizeRequest {
        response_type: first("response_type"),
        client_id: first("client_id"),
        redirect_uri: first("redirect_uri"),
        scope: ticked.into_iter().collect::<Vec<_>>().join(" "),
        state: first("state"),
        code_challenge: first("code_challenge"),
        code_challenge_method: first("code_challenge_method"),
    };
    (request, first("decision"))
}

pub async fn consent(
    State(app): App,
    Posted(who, pairs): Posted<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let (req, decision) = consent_request(&pairs);
    if decision != "allow" || req.scope.is_empty() {
        // Refused, or nothing ticked: nothing is granted. The redirect URI is checked first.
        let id = req.client_id.clone();
        let a = app.clone();
        return match blocking(move || a.catalogue.app(&id)).await {
            Ok(Ok(Some(found))) if found.accepts_redirect(&req.redirect_uri) => redirect_to(
                &req.redirect_uri,
                &[("error", "access_denied"), ("state", &req.state)],
            ),
            Ok(Ok(_)) => refuse("Cette demande d'accès ne vient pas d'une application référencée."),
            Ok(Err(e)) => internal("catalogue", &e),
            Err(r) => r,
        };
    }
    let a = app.clone();
    let r = req.clone();
    let checked = match blocking(move || check(&a.catalogue, &r)).await {
        Ok(Ok(c)) => c,
        Ok(Err(r)) | Err(r) => return r,
    };
    let patient = who.space.id;
    let (app_id, redirect_uri, challenge) = (
        checked.app.id.clone(),
        req.redirect_uri.clone(),
        req.code_challenge.clone(),
    );
    let scopes = checked.scopes;
    let code = blocking(move || {
        app.catalogue.authorize(
            patient,
            &app_id,
            &scopes,
            &redirect_uri,
            &challenge,
            mshub_store::now(),
        )
    })
    .await;
    match code {
        Ok(Ok(code)) => redirect_to(&req.redirect_uri, &[("code", &code), ("state", &req.state)]),
        Ok(Err(e)) => redirect_to(
            &req.redirect_uri,
            &[
                ("error", e.oauth_error()),
                ("error_description", &e.to_string()),
                ("state", &req.state),
            ],
        ),
        Err(r) => r,
    }
}

/// The token request (RFC 6749 §4.1.3), form-encoded.
#[derive(Deserialize, Default)]
pub struct TokenRequest {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    refresh_token: String,
}

/// RFC 6749 §5.2: `{"error": …, "error_description": …}` with 400.
fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = (
        status,
        Json(serde_json::json!({ "error": error, "error_description": description })),
    )
        .into_response();
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub async fn token(State(app): App, Form(req): Form<TokenRequest>) -> Response {
    let issued = match req.grant_type.as_str() {
        "authorization_code" => {
            blocking(move || {
                app.catalogue.exchange(
                    &req.client_id,
                    &req.code,
                    &req.code_verifier,
                    &req.redirect_uri,
                    mshub_store::now(),
                )
            })
            .await
        }
        // RFC 6749 §6.
        "refresh_token" => {
            blocking(move || {
                app.catalogue
                    .refresh(&req.client_id, &req.refresh_token, mshub_store::now())
            })
            .await
        }
        _ => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )
        }
    };
    match issued {
        Ok(Ok(t)) => {
            let mut r = Json(serde_json::json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "scope": t.scope,
                "refresh_token": t.refresh_token,
            }))
            .into_response();
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(Err(e)) => token_error(StatusCode::BAD_REQUEST, e.oauth_error(), &e.to_string()),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_consent_page_may_send_the_browser_to_the_app_only() {
        let csp = |uri: &str| super::consent_csp(uri).map(|v| v.to_str().unwrap().to_string());
        assert!(csp("http://127.0.0.1:5555/callback")
            .unwrap()
            .contains("form-action 'self' http://127.0.0.1:5555;"));
        assert!(csp("fr.pharmaclair.app:/auth")
            .unwrap()
            .contains("form-action 'self' fr.pharmaclair.app:;"));
        // Only the origin is taken: what follows it never reaches the policy.
        assert!(!csp("https://a.example/cb' 'unsafe-inline")
            .unwrap()
            .contains("unsafe-inline"));
        assert!(csp("https://a.example' 'unsafe-inline/cb").is_none());
        assert!(csp("x; script-src *:/").is_none());
    }
}
