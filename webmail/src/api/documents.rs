//! `GET /api/v1/patients/{ins}/documents` and `GET /api/v1/documents/{id}`: what a
//! professional may see of a patient's vault, and one document's original bytes. The vault
//! decides (and audits the reads); this module maps its answers to HTTP.
//!
//! A document's `id` here is its public reference ([`DocumentRef`]), never its number: an id
//! that is not one the hub issued — a number, a reference altered or made up — is 404, the
//! same answer as for a document that does not exist, so that guessing tells nothing.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use mshub_directory::Ins;
use mshub_vault::{Document, DocumentRef, VaultError};

use crate::api::ApiError;
use crate::{Professional, Webmail};

/// One entry of a patient's document list.
#[derive(Debug, Serialize)]
pub struct DocumentSummary {
    /// The document's reference: what `GET /api/v1/documents/{id}` takes.
    pub id: DocumentRef,
    pub title: String,
    /// LOINC code; empty when the type is not set yet.
    pub type_code: String,
    pub type_label: String,
    /// comptes-rendus, imagerie, biologie, prescriptions, prevention, certificats, autres,
    /// a-classer.
    pub category: &'static str,
    /// "Dr Claire MARTIN, CHU X", or what is known of the author: who filed it, then the
    /// author the document declares when that is someone else ("auteur déclaré …").
    pub author: String,
    /// Added by the patient ("ajouté par le patient"), not sent by a professional or a system.
    pub added_by_patient: bool,
    /// HL7 DTM as the sender (or the patient) gave it.
    pub created: Option<String>,
    pub mime: String,
    pub size: u64,
}

impl From<&Document> for DocumentSummary {
    fn from(d: &Document) -> Self {
        Self {
            id: d.reference.clone(),
            title: d.title.clone(),
            type_code: d.type_code.clone(),
            type_label: d.type_label.clone(),
            category: d.category.name(),
            author: d.author_display(),
            added_by_patient: d.source == mshub_vault::Source::Patient,
            created: d.created.clone(),
            mime: d.mime.clone(),
            size: d.size,
        }
    }
}

/// Runs blocking vault work (store reads, decryption) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal("vault task", &e)))
}

pub(crate) fn vault_error(e: VaultError) -> ApiError {
    match e {
        VaultError::NoSuchDocument(_) => ApiError::not_found("no such document"),
        VaultError::Deleted(_) => ApiError::gone("the patient deleted this document".into()),
        VaultError::Denied { denial, .. } | VaultError::Refused(denial) => ApiError::denied(denial),
        e @ VaultError::InvalidReason { .. } => {
            ApiError::bad_request("invalid-reason", e.to_string())
        }
        other => ApiError::internal("vault", &other),
    }
}

/// The patient the INS names on this hub, or the API's answer why not.
pub(crate) fn patient_by_ins(
    app: &Webmail,
    ins: &str,
) -> Result<mshub_directory::Account, ApiError> {
    let ins =
        Ins::try_from(ins).map_err(|e| ApiError::bad_request("invalid-ins", e.to_string()))?;
    let address = app.directory.patient_address(&ins);
    app.directory
        .account_by_address(&address)
        .map_err(|e| ApiError::internal("directory", &e))?
        .filter(|a| a.kind.is_patient())
        .ok_or_else(|| ApiError::not_found("no patient with this INS on this hub"))
}

/// The documents of the patient `ins` that the caller may see, in filing order. Listing is not
/// a read: the vault audits the fetches.
pub async fn list(
    State(app): State<Arc<Webmail>>,
    Extension(Professional(caller)): Extension<Professional>,
    Path(ins): Path<String>,
) -> Result<Json<Vec<DocumentSummary>>, ApiError> {
    blocking(move || {
        let patient = patient_by_ins(&app, &ins)?;
        let docs = app
            .vault
            .documents_for_professional(&patient, &caller)
            .map_err(vault_error)?;
        Ok(Json(docs.iter().map(DocumentSummary::from).collect()))
    })
    .await
}

/// A document's original bytes, if the vault lets the caller read it (audited either way).
pub async fn fetch(
    State(app): State<Arc<Webmail>>,
    Extension(Professional(caller)): Extension<Professional>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let no_such = || ApiError::not_found("no such document");
    let reference = DocumentRef::try_from(id.as_str()).map_err(|_| no_such())?;
    let (doc, bytes) = blocking(move || {
        let id = app
            .vault
            .resolve(&reference)
            .map_err(vault_error)?
            .ok_or_else(no_such)?;
        let bytes = app.vault.read_document(&caller, id).map_err(vault_error)?;
        // The read was allowed: the record's metadata (type, name) goes with the bytes.
        let doc = app.vault.document(id).map_err(vault_error)?;
        Ok((doc, bytes))
    })
    .await?;
    let content_type = HeaderValue::from_str(&doc.mime)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        attachment_name(&doc)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        StatusCode::OK,
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// The file name to save a document as: the sender's, else `document-<reference>`, reduced to
/// characters safe in a quoted header value and in any file system.
fn attachment_name(doc: &Document) -> String {
    let name = doc
        .file_name
        .as_deref()
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n))
        .filter(|n| !n.is_empty())
        .map_or_else(|| format!("document-{}", doc.reference), str::to_string);
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe.trim_start_matches('.') {
        "" => format!("document-{}", doc.reference),
        s => s.to_string(),
    }
}
