//! Adding a document ("Ajouter un document"): a PDF or a photo from a computer, or a photo
//! taken with the phone's camera (`capture`, HTML Living Standard §4.10.5.1.18), with its type,
//! title, date and, if the patient wants, masked at once. The vault checks the bytes and
//! stores ([`mshub_vault::upload`]); a refusal shows the form again, with the patient's
//! entries kept and the reason in French. The owner of the space only, like every change to
//! the documents.

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use mshub_vault::upload::MAX_UPLOAD;
use mshub_vault::{Upload, VaultError};

use crate::document_types;
use crate::frame::{blocking, internal, page, see_other, App, Area, SignedIn};
use crate::session::same_secret;

/// The request around the file: the form's other fields and the multipart framing.
pub const MAX_BODY: usize = MAX_UPLOAD + 256 * 1024;

/// What the form posted, besides the file.
#[derive(Default)]
struct Entries {
    csrf: String,
    type_code: String,
    title: String,
    date: String,
    masked: bool,
}

fn form(
    who: &SignedIn,
    types: &mshub_vault::DocumentTypes,
    e: &Entries,
    error: Option<&str>,
) -> maud::Markup {
    let today = mshub_agenda::day_of(mshub_store::now())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    html! {
        p { a href="/documents" { "← Mes documents" } }
        @if let Some(error) = error {
            p class="error" role="alert" id="ajout-erreur" { (error) }
        }
        form method="post" action="/documents/ajouter" enctype="multipart/form-data" {
            (who.csrf())
            fieldset {
                legend { "Le document" }
                label for="fichier" { "Choisir un fichier (PDF, photo JPEG ou PNG, " (MAX_UPLOAD / (1024 * 1024)) " Mo au plus)" }
                input type="file" id="fichier" name="file"
                    accept="application/pdf,image/jpeg,image/png,.pdf,.jpg,.jpeg,.png";
                label for="photo" { "ou prendre une photo du document (téléphone)" }
                input type="file" id="photo" name="photo" accept="image/jpeg,image/png" capture="environment";
            }
            label for="type" { "Type du document" }
            (document_types::select(types, "type", "type", &e.type_code))
            label for="titre" { "Titre" }
            input type="text" id="titre" name="title" maxlength="200" value=(e.title)
                placeholder="Ex. : échographie";
            label for="date" { "Date du document (facultatif)" }
            input type="date" id="date" name="date" max=(today) min="1900-01-01" value=(e.date);
            p {
                input type="checkbox" id="masque" name="masked" value="yes" checked[e.masked];
                label for="masque" class="inline" { "Masquer ce document aux professionnels de santé (seul votre médecin traitant le verra)" }
            }
            p { button type="submit" { "Ajouter le document" } }
        }
    }
}

pub async fn show(State(app): App, who: SignedIn) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let types = app.vault.types().clone();
    page(
        "Ajouter un document",
        Some(&who),
        Area::Documents,
        form(&who, &types, &Entries::default(), None),
    )
}

/// The posted form: its fields, and the one file chosen (from the computer or the camera).
async fn read(
    mut multipart: Multipart,
) -> Result<(Entries, Option<(String, Vec<u8>)>), (StatusCode, String)> {
    let mut e = Entries::default();
    let mut file: Option<(String, Vec<u8>)> = None;
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            mshub_vault::UploadRefusal::TooLarge {
                max_mb: MAX_UPLOAD / (1024 * 1024),
            }
            .to_string(),
        )
    };
    let bad = |text: &str| (StatusCode::BAD_REQUEST, text.to_string());
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(_) => {
                return Err(bad(
                    "Le formulaire n'a pas pu être lu : recommencez l'envoi.",
                ))
            }
        };
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(_) => {
                return Err(bad(
                    "Le fichier n'a pas été reçu en entier : recommencez l'envoi.",
                ))
            }
        };
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "_csrf" => e.csrf = text(),
            "type" => e.type_code = text(),
            "title" => e.title = text(),
            "date" => e.date = text(),
            "masked" => e.masked = bytes.as_ref() == b"yes",
            "file" | "photo" => {
                // An input left empty still posts a part, without name or content.
                let file_name = file_name.unwrap_or_default();
                if !file_name.is_empty() || !bytes.is_empty() {
                    if file.is_some() {
                        return Err(bad(
                            "Choisissez un seul fichier : un fichier ou une photo, pas les deux.",
                        ));
                    }
                    file = Some((file_name, bytes.to_vec()));
                }
            }
            _ => {}
        }
    }
    Ok((e, file))
}

pub async fn submit(State(app): App, who: SignedIn, multipart: Multipart) -> Response {
    let types = app.vault.types().clone();
    let refused = |status: StatusCode, e: &Entries, reason: &str| {
        let mut r = page(
            "Ajouter un document",
            Some(&who),
            Area::Documents,
            form(&who, &types, e, Some(reason)),
        );
        *r.status_mut() = status;
        r
    };
    let (entries, file) = match read(multipart).await {
        Ok(v) => v,
        Err((status, reason)) => return refused(status, &Entries::default(), &reason),
    };
    if !same_secret(&entries.csrf, &who.session.csrf) {
        return crate::csrf::forbidden();
    }
    if let Err(r) = who.owner_only() {
        return r;
    }
    let (file_name, bytes) = file.unwrap_or_default();
    let upload = Upload {
        bytes,
        file_name,
        type_code: entries.type_code.clone(),
        title: entries.title.clone(),
        date: entries.date.clone(),
        masked: entries.masked,
    };
    let space = who.space.clone();
    let added = blocking({
        let app = app.clone();
        move || app.vault.add_patient_document(&space, upload)
    })
    .await;
    match added {
        Ok(Ok(doc)) => see_other(&format!("/documents/{}", doc.reference)),
        Ok(Err(VaultError::Upload(refusal))) => {
            let status = match refusal {
                mshub_vault::UploadRefusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            refused(status, &entries, &refusal.to_string())
        }
        Ok(Err(e)) => internal("document upload", &e),
        Err(r) => r,
    }
}
