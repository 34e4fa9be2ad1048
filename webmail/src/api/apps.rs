//! The referenced apps' JSON API (`/api/apps/v1`), behind a bearer token (RFC 6750) that the
//! catalogue issued for one app, one patient and the scopes the patient ticked:
//! - `POST /api/apps/v1/measurements` (`measurements:write`): a measurement, validated by the
//!   catalogue, added to the patient's profile;
//! - `GET /api/apps/v1/measurements` (`measurements:read`): the profile's measurements, oldest
//!   first, whichever app added them (without naming the other apps);
//! - `GET` and `POST /api/apps/v1/appointments` (`agenda:read`, `agenda:write`): the agenda,
//!   in [`crate::api::apps_agenda`];
//! - `GET /api/apps/v1/documents` and `GET /api/apps/v1/documents/{id}`
//!   (`documents:read:<category>` or `documents:read:all`): the patient's documents of those
//!   categories, never a masked one. A document's `id` is its reference ([`DocumentRef`]);
//!   anything else names no document (404).
//!
//! Every call is audited under `app:<id>`, refusals included; calls are rate limited per token.
//! A missing or dead token is 401 with `WWW-Authenticate: Bearer error="invalid_token"`, a call
//! outside the scopes 403 `insufficient_scope` (RFC 6750 §3.1).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::header::{
    AUTHORIZATION, CONTENT_DISPOSITION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use mshub_catalogue::{AppGrant, NewMeasurement, Scope};
use mshub_store::AuditEvent;
use mshub_vault::{Document, DocumentRef};

use crate::api::documents::DocumentSummary;
use crate::Webmail;

pub(crate) fn error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut r = (
        status,
        Json(serde_json::json!({ "error": code, "error_description": description })),
    )
        .into_response();
    let challenge = match code {
        "invalid_token" | "insufficient_scope" => {
            format!(
                "Bearer error=\"{code}\", error_description=\"{}\"",
                description.replace('"', "'")
            )
        }
        _ => "Bearer".to_string(),
    };
    if status == StatusCode::UNAUTHORIZED || code == "insufficient_scope" {
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
    }
    r
}

pub(crate) fn audit(app: &Webmail, grant: &AppGrant, action: &str, subject: &str) {
    let event = AuditEvent::new(grant.actor(), action, subject)
        .with_detail(mshub_catalogue::audit_detail(grant.patient, &grant.app_id));
    if let Err(e) = app.store.audit(event) {
        tracing::error!(error = %e, "audit of an app call failed");
    }
}

/// The guard: a live bearer token, within its rate; puts the [`AppGrant`] in the request.
pub async fn require_app(
    State(app): State<Arc<Webmail>>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    let Some(token) = token else {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "a bearer token is required",
        );
    };
    if let Err(wait) = app.app_limits.take(
        [b"t:".as_slice(), token.as_bytes()].concat(),
        Instant::now(),
    ) {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many calls",
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(RETRY_AFTER, v);
        }
        return r;
    }
    let a = app.clone();
    let checked =
        tokio::task::spawn_blocking(move || a.catalogue.authenticate(&token, mshub_store::now()))
            .await;
    match checked {
        Ok(Ok(grant)) => {
            req.extensions_mut().insert(grant);
            next.run(req).await
        }
        Ok(Err(e)) => error(StatusCode::UNAUTHORIZED, "invalid_token", &e.to_string()),
        Err(e) => crate::api::ApiError::internal("app token", &e).into_response(),
    }
}

pub(crate) fn refused(app: &Webmail, grant: &AppGrant, needed: &str) -> Response {
    audit(app, grant, "app.refused", needed);
    error(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        &format!("this call needs the scope {needed}, which the patient did not grant"),
    )
}

pub async fn add_measurement(
    State(app): State<Arc<Webmail>>,
    Extension(grant): Extension<AppGrant>,
    body: axum::body::Bytes,
) -> Response {
    if !grant.scopes.contains(&Scope::MeasurementsWrite) {
        return refused(&app, &grant, "measurements:write");
    }
    let new: NewMeasurement = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            audit(&app, &grant, "app.measurement.invalid", "measurement");
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the body is not a measurement: {e}"),
            );
        }
    };
    let a = app.clone();
    let g = grant.clone();
    match tokio::task::spawn_blocking(move || a.catalogue.add_measurement(&g, new)).await {
        Ok(Ok(m)) => (StatusCode::CREATED, Json(m)).into_response(),
        Ok(Err(e)) => {
            audit(&app, &grant, "app.measurement.invalid", "measurement");
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                e.oauth_error(),
                &e.to_string(),
            )
        }
        Err(e) => crate::api::ApiError::internal("measurement", &e).into_response(),
    }
}

/// A measurement as an app reads it back. Which other app added it is not said: an app learns
/// nothing of the patient's other apps (data minimisation, GDPR art. 5(1)(c)).
#[derive(serde::Serialize)]
struct MeasurementRead {
    id: u64,
    kind: &'static str,
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    value2: Option<f64>,
    unit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mmol_per_l: Option<f64>,
    at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    /// Whether the calling app added it.
    by_this_app: bool,
}

/// `GET /api/apps/v1/measurements`
pub async fn measurements(
    State(app): State<Arc<Webmail>>,
    Extension(grant): Extension<AppGrant>,
) -> Response {
    if !grant.allows(&Scope::MeasurementsRead) {
        return refused(&app, &grant, "measurements:read");
    }
    let a = app.clone();
    let patient = grant.patient;
    match tokio::task::spawn_blocking(move || a.catalogue.measurements(patient)).await {
        Ok(Ok(all)) => {
            audit(&app, &grant, "app.measurement.list", "measurements");
            let shown: Vec<MeasurementRead> = all
                .into_iter()
                .map(|m| MeasurementRead {
                    id: m.id,
                    kind: m.kind.name(),
                    value: m.value,
                    value2: m.value2,
                    unit: m.unit,
                    mmol_per_l: m.mmol_per_l,
                    at: m.at,
                    device: m.device,
                    by_this_app: m.app_id == grant.app_id,
                })
                .collect();
            Json(shown).into_response()
        }
        Ok(Err(e)) => crate::api::ApiError::internal("app measurements", &e).into_response(),
        Err(e) => crate::api::ApiError::internal("app measurements", &e).into_response(),
    }
}

/// Whether the grant lets the app read documents of `doc`'s category; masked ones never.
fn readable(grant: &AppGrant, doc: &Document) -> bool {
    !doc.masked && grant.allows(&Scope::DocumentsRead(doc.category.name().to_string()))
}

fn has_document_scope(grant: &AppGrant) -> bool {
    grant
        .scopes
        .iter()
        .any(|s| matches!(s, Scope::DocumentsRead(_)))
}

pub async fn documents(
    State(app): State<Arc<Webmail>>,
    Extension(grant): Extension<AppGrant>,
) -> Response {
    if !has_document_scope(&grant) {
        return refused(&app, &grant, "documents:read:<category>");
    }
    let a = app.clone();
    let g = grant.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let patient = a
            .directory
            .account(g.patient)?
            .ok_or(mshub_vault::VaultError::NotAPatient(g.patient.to_string()))?;
        a.vault.documents_for_patient(&patient)
    })
    .await;
    match listed {
        Ok(Ok(docs)) => {
            audit(&app, &grant, "app.document.list", "documents");
            let shown: Vec<DocumentSummary> = docs
                .iter()
                .filter(|d| readable(&grant, d))
                .map(DocumentSummary::from)
                .collect();
            Json(shown).into_response()
        }
        Ok(Err(e)) => crate::api::ApiError::internal("app documents", &e).into_response(),
        Err(e) => crate::api::ApiError::internal("app documents", &e).into_response(),
    }
}

pub async fn document(
    State(app): State<Arc<Webmail>>,
    Extension(grant): Extension<AppGrant>,
    Path(id): Path<String>,
) -> Response {
    if !has_document_scope(&grant) {
        return refused(&app, &grant, "documents:read:<category>");
    }
    let Ok(reference) = DocumentRef::try_from(id.as_str()) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such document");
    };
    let a = app.clone();
    let g = grant.clone();
    let read =
        tokio::task::spawn_blocking(move || -> Result<Option<(Document, Vec<u8>)>, String> {
            let Some(id) = a.vault.resolve(&reference).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let doc = match a.vault.document(id) {
                Ok(d) => d,
                Err(mshub_vault::VaultError::NoSuchDocument(_)) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            if doc.patient != g.patient || doc.deleted || !doc.visible_to_patient {
                return Ok(None);
            }
            if !readable(&g, &doc) {
                return Err("scope".into());
            }
            let patient = a
                .directory
                .account(g.patient)
                .map_err(|e| e.to_string())?
                .ok_or("no patient")?;
            let bytes = a
                .vault
                .read_document(&patient, doc.id)
                .map_err(|e| e.to_string())?;
            Ok(Some((doc, bytes)))
        })
        .await;
    match read {
        Ok(Ok(Some((doc, bytes)))) => {
            audit(
                &app,
                &grant,
                "app.document.read",
                &format!("document:{}", doc.id),
            );
            let name = doc
                .file_name
                .clone()
                .unwrap_or_else(|| format!("document-{}", doc.reference));
            (
                [
                    (CONTENT_TYPE, doc.mime.clone()),
                    (
                        CONTENT_DISPOSITION,
                        crate::download::disposition("attachment", &name),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "not_found", "no such document"),
        Ok(Err(e)) if e == "scope" => {
            refused(&app, &grant, "documents:read:<category of this document>")
        }
        Ok(Err(e)) => crate::api::ApiError::internal("app document", &e).into_response(),
        Err(e) => crate::api::ApiError::internal("app document", &e).into_response(),
    }
}
