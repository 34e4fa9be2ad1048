//! `POST /api/v1/patients/{ins}/emergency-access`: emergency access ("bris de glace"). The
//! professional states a reason (JSON `{"reason": "…"}`, 10 to 500 characters); the vault opens
//! the patient's space to them for the configured time, audits it with the reason and tells
//! the patient at once. `201` with the access's end; `400` without a valid reason; `403` when
//! the patient forbade emergency access or blocked the professional.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use crate::api::documents::{blocking, patient_by_ins, vault_error};
use crate::api::ApiError;
use crate::{Professional, Webmail};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyRequest {
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct EmergencyGranted {
    /// Unix times.
    pub since: i64,
    pub until: i64,
    /// `YYYY-MM-DDTHH:MMZ`, UTC.
    pub until_utc: String,
    pub reason: String,
}

pub async fn open(
    State(app): State<Arc<Webmail>>,
    Extension(Professional(caller)): Extension<Professional>,
    Path(ins): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<EmergencyGranted>), ApiError> {
    let request: EmergencyRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid-request",
            format!(
                "corps JSON attendu : {{\"reason\": \"…\"}} — expected a JSON body {{\"reason\": \"…\"}}: {e}"
            ),
        )
    })?;
    blocking(move || {
        let patient = patient_by_ins(&app, &ins)?;
        let link = app
            .vault
            .emergency_access(&caller, &patient, &request.reason)
            .map_err(vault_error)?;
        let until = link.until.unwrap_or(link.since);
        Ok((
            StatusCode::CREATED,
            Json(EmergencyGranted {
                since: link.since,
                until,
                until_utc: crate::format::iso_utc(until),
                reason: link.reason.unwrap_or_default(),
            }),
        ))
    })
    .await
}
