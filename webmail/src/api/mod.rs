//! The professionals' JSON API onto the patient document vault (issue 6, "a query surface
//! for professionals"), under `/api/v1`, behind the professionals' guard.
//!
//! Errors are JSON `{"error": "<code>", "reason": "<sentence>"}` with the status that says
//! the same: 400 bad input, 401 (with `WWW-Authenticate`) no or wrong credentials, 403
//! refused, 404 unknown, 410 deleted, 429 (with `Retry-After`) throttled, 500 internal.

pub mod apps;
pub mod apps_agenda;
pub mod documents;
pub mod emergency;
pub mod profile;

use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// An API failure, answered as JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: &'static str,
    reason: String,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, reason: String) -> Self {
        Self {
            status,
            body: ErrorBody { error, reason },
            retry_after: None,
        }
    }

    pub fn unauthorized(reason: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", reason.into())
    }

    pub fn throttled(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            format!("too many failed logins: try again in {retry_after_secs} s"),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// Too many logins at once: nothing was checked (503, with `Retry-After`).
    pub fn busy(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("too many logins at once: try again in {retry_after_secs} s"),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    pub fn forbidden(error: &'static str, reason: String) -> Self {
        Self::new(StatusCode::FORBIDDEN, error, reason)
    }

    /// A refusal of the vault: its code, and its reason in French and English.
    pub fn denied(denial: mshub_vault::Denial) -> Self {
        let error = match denial {
            mshub_vault::Denial::NoRelationship => "no-care-relationship",
            mshub_vault::Denial::EmergencyForbidden => "emergency-access-forbidden",
            mshub_vault::Denial::Blocked => "blocked-by-patient",
            _ => "access-denied",
        };
        Self::new(StatusCode::FORBIDDEN, error, denial.to_string())
    }

    pub fn bad_request(error: &'static str, reason: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, reason)
    }

    pub fn not_found(reason: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", reason.into())
    }

    pub fn gone(reason: String) -> Self {
        Self::new(StatusCode::GONE, "deleted", reason)
    }

    /// Logged with its detail (store and directory errors name ids, not patient data); the
    /// client learns nothing of it.
    pub fn internal(what: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "{what} failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged".into(),
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        let h = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 7617 §2: the challenge; UTF-8 is what we decode.
            h.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mshub\", charset=\"UTF-8\""),
            );
        }
        if let Some(secs) = self.retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
