//! # mshub-webmail
//!
//! The hub's HTTPS service. Start with [`router`]: every route in one function, grouped by the
//! guard in front of it; then [`server`], which accepts TCP, does the TLS handshake and serves
//! the router over HTTP/1.1, one tracing span per connection.
//!
//! It serves the professionals' JSON API onto the patient document vault ([`api`]) and the
//! patient's web inbox ([`pages`]: server-rendered HTML, French, working without JavaScript),
//! whose browser sessions are in [`session`] and whose forms carry a CSRF token ([`csrf`]).
//!
//! Invariants:
//! - every response, errors and fallbacks included, carries the strict headers of
//!   [`security`] (HSTS, nosniff, no referrer, no framing, a CSP, `no-store`);
//! - every route but `/healthz`, the assets and the login pages sits behind a guard; the
//!   API's guard authenticates with HTTP Basic through [`Directory::authenticate`] (throttled,
//!   argon2 off the async runtime) and lets only health professionals through; the pages'
//!   guard is a session cookie, and every state-changing form is checked for its CSRF token;
//! - form posts are rate-limited per account of a live session, else per client address,
//!   never per cookie value as sent ([`security::limit_posts`]); the listener bounds
//!   connections per address and the time a request's headers and body may take ([`server`]);
//! - a professional's session (a pharmacist opening a prescription's QR code,
//!   [`pages::prescriptions`]) opens no patient page; the prescription page decides by
//!   profession, and the prescription crate checks and audits every scan and dispensing;
//! - a patient's reply goes through the MTA's submission path ([`Mta::submit`]), which
//!   enforces "a patient answers, never starts" whatever the page showed;
//! - access to documents is decided and audited by the vault alone
//!   ([`Vault::documents_for_professional`], [`Vault::read_document`]); handlers only map its
//!   answers to HTTP;
//! - no patient data (INS, titles) in logs above debug: requests are logged by route pattern
//!   and status.

pub mod api;
mod appointment_time;
mod auth;
pub mod config;
mod conversations;
mod correspondent;
mod csrf;
pub mod delegation;
mod document_types;
mod download;
mod export;
pub mod format;
pub mod frame;
mod listing;
mod mailbox_access;
pub mod oauth;
pub mod pages;
mod refusal;
pub mod saml;
pub mod security;
pub mod server;
pub mod session;
mod signin;
mod summary;
mod vault_read;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use mshub_directory::Directory;
use mshub_mta::Mta;
use mshub_store::Store;
use mshub_vault::Vault;

pub use auth::Professional;
pub use config::WebmailConfig;
pub use saml::{SamlConfig, SamlError, SamlIdentity, SamlSp};

/// What the handlers share: the store and directory, the vault (documents), the MTA (the
/// patient's replies go through its submission path) and the browser sessions.
pub struct Webmail {
    pub(crate) store: Arc<Store>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) vault: Vault,
    pub(crate) agenda: mshub_agenda::Agenda,
    pub(crate) catalogue: mshub_catalogue::Catalogue,
    pub(crate) mta: Arc<Mta>,
    pub(crate) sessions: session::Sessions,
    pub(crate) post_limits: Arc<security::PostLimits>,
    /// Calls per minute of each app token.
    pub(crate) app_limits: security::PostLimits,
    pub(crate) summaries: summary::Summaries,
    pub(crate) lists: listing::Lists,
    pub(crate) threads: conversations::ThreadCache,
    pub(crate) identities: summary::Identities,
    pub(crate) delegations: delegation::Delegations,
    /// Single sign-on, when an identity provider is configured.
    pub(crate) sso: Option<pages::sso::Sso>,
    /// E-prescriptions, once the binary hands them over ([`Webmail::enable_prescriptions`]).
    pub(crate) prescriptions: std::sync::OnceLock<Arc<mshub_prescription::Prescriptions>>,
    /// The HTTPS listener's bounds per client and per request.
    pub(crate) limits: server::Limits,
}

impl Webmail {
    /// The web inbox with the default configuration (no single sign-on).
    pub fn new(store: Arc<Store>, directory: Arc<Directory>, mta: Arc<Mta>) -> Arc<Self> {
        Self::build(WebmailConfig::default(), None, store, directory, mta)
    }

    /// The web inbox as configured; fails when the SAML identity provider's metadata is
    /// unreadable or unsafe.
    pub fn with_config(
        config: WebmailConfig,
        store: Arc<Store>,
        directory: Arc<Directory>,
        mta: Arc<Mta>,
    ) -> Result<Arc<Self>, SamlError> {
        let sp = SamlSp::from_config(&config.saml)?;
        Ok(Self::build(config, sp, store, directory, mta))
    }

    fn build(
        config: WebmailConfig,
        sp: Option<SamlSp>,
        store: Arc<Store>,
        directory: Arc<Directory>,
        mta: Arc<Mta>,
    ) -> Arc<Self> {
        Arc::new(Self {
            limits: server::Limits::from(&config),
            sso: sp.map(pages::sso::Sso::new),
            sessions: session::Sessions::new(
                Duration::from_secs(config.session_idle_secs),
                Duration::from_secs(config.session_max_secs),
            ),
            post_limits: Arc::new(security::PostLimits::new(config.posts_per_minute)),
            vault: Vault::new(store.clone(), directory.clone())
                .with_correspondence(Arc::new(MtaCorrespondence(mta.clone())))
                .with_emergency_duration(config.emergency_access_hours as i64 * 3600),
            agenda: mshub_agenda::Agenda::with_limits(
                store.clone(),
                directory.clone(),
                (&config.agenda).into(),
            ),
            catalogue: mshub_catalogue::Catalogue::new(store.clone(), directory.clone()),
            app_limits: security::PostLimits::new(config.app_calls_per_minute),
            delegations: delegation::Delegations::new(store.clone()),
            store,
            directory,
            mta,
            summaries: summary::Summaries::default(),
            lists: listing::Lists::default(),
            threads: conversations::ThreadCache::default(),
            identities: summary::Identities::default(),
            prescriptions: std::sync::OnceLock::new(),
        })
    }

    /// Serves the prescription pages (the patient's, and the pharmacist's that the QR code
    /// opens) over these prescriptions. Without it they answer that the service is off.
    pub fn enable_prescriptions(&self, prescriptions: Arc<mshub_prescription::Prescriptions>) {
        let _ = self.prescriptions.set(prescriptions);
    }
}

/// The MTA's conversation index, as the vault's care relationships read it ("wrote to the
/// patient").
struct MtaCorrespondence(Arc<Mta>);

impl mshub_vault::Correspondence for MtaCorrespondence {
    fn first_written(
        &self,
        patient: mshub_store::AccountId,
        correspondent: &mshub_directory::Address,
    ) -> Result<Option<i64>, String> {
        self.0
            .conversations()
            .first_written(patient, correspondent)
            .map_err(|e| e.to_string())
    }

    fn correspondents(
        &self,
        patient: mshub_store::AccountId,
    ) -> Result<Vec<(mshub_directory::Address, i64)>, String> {
        self.0
            .conversations()
            .correspondents_since(patient)
            .map_err(|e| e.to_string())
    }
}

/// Every route of the HTTPS service, grouped by guard.
pub fn router(app: Arc<Webmail>) -> Router {
    // No guard: probes and the page assets.
    let public = Router::new()
        .route("/healthz", get(healthz))
        .route("/static/app.css", get(pages::assets::css))
        .route("/static/live.js", get(pages::assets::js))
        .route("/static/icon.svg", get(pages::assets::icon))
        .route("/favicon.ico", get(pages::assets::icon));

    // Health professionals, HTTP Basic (account or application password, Door::Mail).
    let professionals = Router::new()
        .route(
            "/api/v1/patients/{ins}/documents",
            get(api::documents::list),
        )
        .route(
            "/api/v1/patients/{ins}/emergency-access",
            axum::routing::post(api::emergency::open),
        )
        .route(
            "/api/v1/patients/{ins}/profile",
            get(api::profile::for_professional),
        )
        .route("/api/v1/documents/{id}", get(api::documents::fetch))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            auth::require_professional,
        ));

    // Referenced apps, with a bearer token bound to (app, patient, scopes).
    let apps = Router::new()
        .route(
            "/api/apps/v1/measurements",
            axum::routing::post(api::apps::add_measurement).get(api::apps::measurements),
        )
        .route(
            "/api/apps/v1/appointments",
            get(api::apps_agenda::list).post(api::apps_agenda::propose),
        )
        .route("/api/apps/v1/profile", get(api::profile::for_app))
        .route("/api/apps/v1/documents", get(api::apps::documents))
        .route("/api/apps/v1/documents/{id}", get(api::apps::document))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            api::apps::require_app,
        ));

    // Patients in a browser: the pages check their session (and CSRF on every POST) through
    // the `SignedIn` and `Form` extractors.
    let patients = pages::router();

    public
        .merge(professionals)
        .merge(apps)
        .merge(patients)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            app.clone(),
            security::limit_posts,
        ))
        .layer(middleware::from_fn(server::expire_slow_bodies))
        .layer(middleware::from_fn(log_request))
        .layer(middleware::from_fn(security::headers))
        .with_state(app)
}

async fn healthz() -> &'static str {
    "ok"
}

/// JSON under `/api/`, a page anywhere else.
async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        api::ApiError::not_found("no such resource").into_response()
    } else {
        frame::not_found().into_response()
    }
}

/// HTTPS requests by route pattern, method and status class, and how long they took.
static REQUESTS: mshub_metrics::Family = mshub_metrics::Family::histogram(
    "mshub_http_request_duration_seconds",
    "HTTPS requests by route pattern (never the path: it may hold an INS), method and status class (2xx, 3xx, 4xx, 5xx), and their duration.",
    &["route", "method", "status"],
);

/// Logs and times the route pattern (never the path itself: it may hold an INS) and the
/// status.
async fn log_request(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(no route)".to_string(), |p| p.as_str().to_string());
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    tracing::info!(%method, %route, status, "request");
    let class = format!("{}xx", status / 100);
    REQUESTS.observe(&[&route, method.as_str(), &class], started.elapsed());
    response
}
