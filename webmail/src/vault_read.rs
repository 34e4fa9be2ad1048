//! What the document pages share to read the vault for a patient: a document of the space by
//! its reference, the pages' answer to a vault error, a delegate's read in the access history,
//! and where a study is shown.

// Helpers of the pages fail with the page that explains the failure (see `crate::frame`).
#![allow(clippy::result_large_err)]

use axum::http::StatusCode;
use axum::response::Response;

use mshub_store::AuditEvent;
use mshub_vault::{Document, DocumentRef, VaultError};

use crate::frame::{error_page, internal, not_found, SignedIn};
use crate::Webmail;

pub fn vault_error(e: VaultError) -> Response {
    match e {
        VaultError::NoSuchDocument(_) => not_found(),
        VaultError::Deleted(_) => error_page(
            StatusCode::GONE,
            "Document supprimé",
            "Ce document a été supprimé ; son contenu n'est plus conservé.",
        ),
        VaultError::UnknownDocumentType(code) if code.trim().is_empty() => error_page(
            StatusCode::BAD_REQUEST,
            "Type à choisir",
            "Choisissez un type dans la liste avant de classer le document.",
        ),
        VaultError::UnknownDocumentType(code) => error_page(
            StatusCode::BAD_REQUEST,
            "Type inconnu",
            &format!("Le type de document {code} ne fait pas partie de la liste."),
        ),
        other => internal("vault", &other),
    }
}

/// The document named `reference` in a URL if it is one of the space's, visible to its
/// patient; "not found" for anything else, whether the reference is malformed, made up or
/// another patient's.
pub fn own_document(app: &Webmail, who: &SignedIn, reference: &str) -> Result<Document, Response> {
    let Ok(reference) = DocumentRef::try_from(reference) else {
        return Err(not_found());
    };
    let id = match app.vault.resolve(&reference) {
        Ok(Some(id)) => id,
        Ok(None) => return Err(not_found()),
        Err(e) => return Err(vault_error(e)),
    };
    match app.vault.document(id) {
        Ok(d) if d.patient == who.space.id && d.visible_to_patient => Ok(d),
        Ok(_) | Err(VaultError::NoSuchDocument(_)) => Err(not_found()),
        Err(e) => Err(vault_error(e)),
    }
}

/// A delegate's read, in the patient's access history.
pub fn audit_delegate_read(
    app: &Webmail,
    who: &SignedIn,
    doc: &Document,
    part: &str,
) -> Result<(), Response> {
    if who.is_owner() {
        return Ok(());
    }
    app.store
        .audit(
            AuditEvent::new(
                who.me.address.as_str(),
                "document.read",
                format!("document:{}", doc.id),
            )
            .with_detail(format!(
                "patient:{} ground:delegate part:{part}",
                doc.patient
            )),
        )
        .map(|_| ())
        .map_err(|e| internal("audit", &e))
}

/// Where a study is shown.
pub fn study_path(reference: &DocumentRef) -> String {
    format!("/imaging/{reference}")
}
