//! # mshub-webmail
//!
//! The hub's HTTPS service. Start with [`router`]: every route in one function, grouped by the
//! guard in front of it; then [`server`], which accepts TCP, does the TLS handshake and serves
//! the router over HTTP/1.1, one tracing span per connection.
//!
//! Today it serves the professionals' JSON API onto the patient document vault ([`api`]);
//! the patient's web inbox (axum + maud pages, issue 7) grows beside it on the same router and
//! server.
//!
//! Invariants:
//! - every response, errors and fallbacks included, carries the strict headers of
//!   [`security`] (HSTS, nosniff, no referrer, no framing, a CSP, `no-store`);
//! - every route but `/healthz` sits behind a guard; the API's guard authenticates with HTTP
//!   Basic through [`Directory::authenticate`] (throttled, argon2 off the async runtime) and
//!   lets only health professionals through;
//! - access to documents is decided and audited by the vault alone
//!   ([`Vault::documents_for_professional`], [`Vault::read_document`]); handlers only map its
//!   answers to HTTP;
//! - no patient data (INS, titles) in logs above debug: requests are logged by route pattern
//!   and status.

pub mod api;
mod auth;
pub mod saml;
pub mod security;
pub mod server;

use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use mshub_directory::Directory;
use mshub_store::Store;
use mshub_vault::Vault;

pub use auth::Professional;
pub use saml::{SamlConfig, SamlError, SamlIdentity, SamlSp};

/// What the handlers share: the directory (logins) and the vault (documents).
pub struct Webmail {
    pub(crate) directory: Arc<Directory>,
    pub(crate) vault: Vault,
}

impl Webmail {
    pub fn new(store: Arc<Store>, directory: Arc<Directory>) -> Arc<Self> {
        Arc::new(Self {
            vault: Vault::new(store, directory.clone()),
            directory,
        })
    }
}

/// Every route of the HTTPS service, grouped by guard.
pub fn router(app: Arc<Webmail>) -> Router {
    // No guard: probes.
    let public = Router::new().route("/healthz", get(healthz));

    // Health professionals, HTTP Basic (account or application password, Door::Mail).
    let professionals = Router::new()
        .route(
            "/api/v1/patients/{ins}/documents",
            get(api::documents::list),
        )
        .route("/api/v1/documents/{id}", get(api::documents::fetch))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            auth::require_professional,
        ));

    public
        .merge(professionals)
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .layer(middleware::from_fn(security::headers))
        .with_state(app)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> Response {
    api::ApiError::not_found("no such resource").into_response()
}

/// Logs the route pattern (never the path itself: it may hold an INS) and the status.
async fn log_request(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(no route)".to_string(), |p| p.as_str().to_string());
    let method = req.method().clone();
    let response = next.run(req).await;
    tracing::info!(%method, %route, status = response.status().as_u16(), "request");
    response
}
