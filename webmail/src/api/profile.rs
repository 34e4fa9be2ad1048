//! The medical profile through the APIs:
//! - `GET /api/v1/patients/{ins}/profile` for a professional within a care relationship: the
//!   sections its profession reads (`[profile]` of the access table), audited by the vault
//!   (`profile.read`, or `profile.read.denied` with the reason, answered 403 as for documents);
//! - `GET /api/apps/v1/profile` for an app granted `profile:read`: identity (name, birth date)
//!   and the whole profile, audited under the app.
//!
//! JSON: `{"version", "sections": [...], "history": [{"kind", "description", "year"}],
//! "allergies": [{"substance", "reaction", "severity"}], "treatments": [{"name", "dosage",
//! "since"}], "vaccinations": [{"vaccine", "date"}], "directives": {"text", "document"},
//! "contacts": [{"name", "relation", "phone"}]}`; dates `YYYY-MM-DD`; a section the reader may
//! not see is absent from `sections` and empty.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use mshub_catalogue::{AppGrant, Scope};
use mshub_directory::AccountKind;
use mshub_vault::profile::Section;
use mshub_vault::MedicalProfile;

use crate::api::documents::{blocking, patient_by_ins, vault_error};
use crate::api::ApiError;
use crate::{Professional, Webmail};

#[derive(Serialize)]
pub struct ProfileJson {
    pub version: u64,
    /// The sections given (the others are empty because the reader may not see them).
    pub sections: Vec<&'static str>,
    #[serde(flatten)]
    pub profile: MedicalProfile,
}

/// What an app with `profile:read` gets.
#[derive(Serialize)]
pub struct AppProfileJson {
    pub given_name: String,
    pub family_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    pub medical: ProfileJson,
}

pub async fn for_professional(
    State(app): State<Arc<Webmail>>,
    Extension(Professional(caller)): Extension<Professional>,
    Path(ins): Path<String>,
) -> Result<Json<ProfileJson>, ApiError> {
    blocking(move || {
        let patient = patient_by_ins(&app, &ins)?;
        let read = app
            .vault
            .profile_for_professional(&patient, &caller)
            .map_err(vault_error)?;
        Ok(Json(ProfileJson {
            version: read.version,
            sections: read.sections.iter().map(|s| s.name()).collect(),
            profile: read.profile,
        }))
    })
    .await
}

pub async fn for_app(
    State(app): State<Arc<Webmail>>,
    Extension(grant): Extension<AppGrant>,
) -> Response {
    if !grant.scopes.contains(&Scope::ProfileRead) {
        return crate::api::apps::refused(&app, &grant, "profile:read");
    }
    let a = app.clone();
    let g = grant.clone();
    let read = blocking(move || {
        let patient = a
            .directory
            .account(g.patient)
            .map_err(|e| ApiError::internal("directory", &e))?
            .filter(|p| p.is_usable())
            .ok_or_else(|| ApiError::not_found("the patient's space is closed"))?;
        let AccountKind::Patient {
            given_name,
            family_name,
            birth_date,
            ..
        } = &patient.kind
        else {
            return Err(ApiError::not_found("not a patient"));
        };
        let (version, profile) = a.vault.medical_profile(patient.id).map_err(vault_error)?;
        Ok(AppProfileJson {
            given_name: given_name.clone(),
            family_name: family_name.clone(),
            birth_date: birth_date.to_string(),
            medical: ProfileJson {
                version,
                sections: Section::ALL.iter().map(|s| s.name()).collect(),
                profile,
            },
        })
    })
    .await;
    match read {
        Ok(body) => {
            crate::api::apps::audit(&app, &grant, "app.profile.read", "profile");
            Json(body).into_response()
        }
        Err(e) => e.into_response(),
    }
}
