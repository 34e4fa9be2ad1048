//! Imaging (imagerie): a DICOM study of the vault — its series with thumbnails, a viewer per
//! series (one image at a time, previous / next, a number to go to, window presets), and the
//! original files to download, one by one or the whole study as a zip (the document's own
//! download). Plain links and forms: nothing needs JavaScript.
//!
//! A study is named in its URLs by its document's reference, never by its number (see
//! [`super::documents`]).
//!
//! Reads go through the vault like every document read ([`super::documents`]): it checks the
//! rules, and a relative reading by delegation is written to the audit chain under its own
//! address (the study page, each viewer page, each download). Images and thumbnails are parts
//! of the page that shows them and are not audited one by one.

use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use mshub_vault::dicom::render::Preset;
use mshub_vault::dicom::{iso_date, Series, Study};
use mshub_vault::{Document, DocumentRef, VaultError};

use crate::download::disposition;
use crate::format::{datetime_fr, human_size, iso_utc};
use crate::frame::{blocking, error_page, page, App, Area, SignedIn};
use crate::vault_read::{audit_delegate_read, own_document, study_path, vault_error};

fn imaging_error(e: VaultError) -> Response {
    match e {
        VaultError::NotAStudy(_) | VaultError::NoSuchImage { .. } => crate::frame::not_found(),
        VaultError::Undisplayable(reason) => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Image non affichable",
            &format!("Cette image ne peut pas être affichée : {reason}."),
        ),
        other => vault_error(other),
    }
}

/// The study of the document a URL names, if it is one of the space's; audited for a relative
/// as `part`.
fn load_study(
    app: &crate::Webmail,
    who: &SignedIn,
    reference: &str,
    part: &str,
) -> Result<(Document, Study), Response> {
    let doc = own_document(app, who, reference)?;
    let (doc, study) = app
        .vault
        .read_study(&who.space, doc.id)
        .map_err(imaging_error)?;
    audit_delegate_read(app, who, &doc, part)?;
    Ok((doc, study))
}

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// "12 novembre 2026" from a DICOM date (`YYYYMMDD`).
fn study_date_fr(da: &str) -> Option<String> {
    let iso = iso_date(da)?;
    let (y, rest) = iso.split_once('-')?;
    let (m, d) = rest.split_once('-')?;
    let month = MONTHS.get(m.parse::<usize>().ok()?.checked_sub(1)?)?;
    Some(format!("{} {month} {y}", d.trim_start_matches('0')))
}

/// French name of a BodyPartExamined code (DICOM PS3.16 Annex L), or the code.
fn body_part_fr(code: &str) -> String {
    let label = match code.to_ascii_uppercase().as_str() {
        "CHEST" | "THORAX" => "Thorax",
        "HEAD" | "BRAIN" => "Tête",
        "ABDOMEN" => "Abdomen",
        "PELVIS" => "Bassin",
        "SPINE" | "WHOLESPINE" => "Rachis",
        "CSPINE" => "Rachis cervical",
        "LSPINE" => "Rachis lombaire",
        "KNEE" => "Genou",
        "HAND" => "Main",
        "WRIST" => "Poignet",
        "FOOT" => "Pied",
        "ANKLE" => "Cheville",
        "SHOULDER" => "Épaule",
        "HIP" => "Hanche",
        "BREAST" => "Sein",
        "NECK" => "Cou",
        "HEART" => "Cœur",
        "EXTREMITY" => "Membre",
        _ => return code.to_string(),
    };
    label.to_string()
}

fn series_title(index: usize, s: &Series) -> String {
    let number = s.number.map_or((index + 1) as i64, i64::from);
    match &s.description {
        Some(d) => format!("Série {number} : {d}"),
        None => format!("Série {number}"),
    }
}

fn images_fr(n: u32) -> String {
    match n {
        0 => "aucune image".into(),
        1 => "1 image".into(),
        n => format!("{n} images"),
    }
}

fn file_links(id: &DocumentRef, series: usize, s: &Series) -> Markup {
    html! {
        ul class="plain files" {
            @for (f, instance) in s.instances.iter().enumerate() {
                li {
                    a href={ "/imaging/" (id) "/series/" (series) "/files/" (f) } download {
                        "Télécharger " (instance.file)
                    }
                    " (" (human_size(instance.size as usize)) ")"
                }
            }
        }
    }
}

pub async fn study(State(app): App, who: SignedIn, Path(id): Path<String>) -> Response {
    let w = who.clone();
    let loaded = match blocking(move || load_study(&app, &w, &id, "study")).await {
        Ok(Ok(v)) => v,
        Ok(Err(r)) | Err(r) => return r,
    };
    let (doc, study) = loaded;
    let id = &doc.reference;
    let content = html! {
        p { a href="/documents" { "← Tous les documents" } }
        dl class="meta" {
            @if let Some(date) = study.date.as_deref().and_then(study_date_fr) {
                dt { "Date de l'examen" } dd { (date) }
            }
            @if let Some(d) = &study.description { dt { "Examen" } dd { (d) } }
            @if let Some(i) = &study.institution { dt { "Établissement" } dd { (i) } }
            @if let Some(a) = &study.accession { dt { "Numéro d'examen" } dd { (a) } }
            dt { "Envoyé par" } dd { (doc.author_display()) }
            dt { "Reçu le" } dd { time datetime=(iso_utc(doc.filed_at)) { (datetime_fr(doc.filed_at)) } }
            dt { "Visibilité" } dd {
                @if doc.masked { "Masqué : seuls son auteur et votre médecin traitant peuvent le voir." }
                @else { "Visible par les professionnels de santé autorisés." }
            }
        }
        p class="actions" {
            a class="button" href={ "/documents/" (id) "/file" } download {
                "Télécharger l'examen complet (zip, " (human_size(doc.size as usize)) ")"
            }
            a class="button secondary" href={ "/documents/" (id) } { "Fiche du document" }
        }
        h2 { "Séries (" (study.series.len()) ")" }
        ul class="series" {
            @for (index, s) in study.series.iter().enumerate() {
                li {
                    @if s.viewable() {
                        a href={ "/imaging/" (id) "/series/" (index) } {
                            img class="thumbnail" src={ "/imaging/" (id) "/series/" (index) "/thumbnail" }
                                alt={ "Aperçu de la " (series_title(index, s)) } width="160" height="160";
                        }
                    }
                    h3 { (series_title(index, s)) }
                    p class="meta" {
                        (s.modality_fr())
                        @if let Some(part) = &s.body_part { " · " (body_part_fr(part)) }
                        " · " (images_fr(s.images()))
                    }
                    @if s.viewable() {
                        p { a href={ "/imaging/" (id) "/series/" (index) } { "Voir les images de la " (series_title(index, s)) } }
                    } @else if let Some(reason) = s.instances.iter().find_map(|i| i.undecodable.as_deref()) {
                        p class="hint" { "Images non affichables ici : " (reason) "." }
                    } @else {
                        p class="hint" { "Objet sans image (" (s.modality_fr()) ") : téléchargez le fichier pour l'ouvrir avec un logiciel DICOM." }
                    }
                    details {
                        summary { "Fichiers d'origine (" (s.instances.len()) ")" }
                        (file_links(id, index, s))
                    }
                }
            }
        }
    };
    page(&doc.title, Some(&who), Area::Documents, content)
}

#[derive(Deserialize, Default)]
pub struct ViewQuery {
    /// The image, from 1.
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    fenetre: Option<String>,
}

/// The image (from 0) and preset a query asks for, or why it is wrong.
fn parse_view(q: &ViewQuery, images: u32) -> Result<(u32, Preset), String> {
    let image = match q.image.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(n) => match n.parse::<u32>() {
            Ok(n) if (1..=images).contains(&n) => n - 1,
            _ => {
                return Err(format!(
                    "Le numéro d'image doit être un nombre entre 1 et {images}."
                ))
            }
        },
    };
    let preset = match q.fenetre.as_deref() {
        None | Some("") => Preset::Default,
        Some(name) => Preset::from_name(name)
            .ok_or_else(|| format!("Le réglage de fenêtre « {name} » n'existe pas."))?,
    };
    Ok((image, preset))
}

fn presets_for(s: &Series) -> Vec<Preset> {
    if s.modality == "CT" {
        Preset::ALL.to_vec()
    } else {
        vec![Preset::Default, Preset::Auto]
    }
}

fn view_href(id: &DocumentRef, series: usize, image: u32, preset: Preset) -> String {
    format!(
        "/imaging/{id}/series/{series}?image={}&fenetre={}",
        image + 1,
        preset.name()
    )
}

pub async fn viewer(
    State(app): App,
    who: SignedIn,
    Path((id, series)): Path<(String, usize)>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let w = who.clone();
    let (doc, study) = match blocking(move || load_study(&app, &w, &id, "viewer")).await {
        Ok(Ok(v)) => v,
        Ok(Err(r)) | Err(r) => return r,
    };
    let id = &doc.reference;
    let Some(s) = study.series.get(series) else {
        return crate::frame::not_found();
    };
    let images = s.images();
    if !s.viewable() {
        return error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Images non affichables",
            &s.instances
                .iter()
                .find_map(|i| i.undecodable.clone())
                .map(|r| format!("Les images de cette série ne peuvent pas être affichées : {r}."))
                .unwrap_or_else(|| "Cette série ne contient pas d'image.".into()),
        );
    }
    let (image, preset) = match parse_view(&q, images) {
        Ok(v) => v,
        Err(reason) => return error_page(StatusCode::BAD_REQUEST, "Demande incorrecte", &reason),
    };
    let title = series_title(series, s);
    let undecodable = s
        .locate(image)
        .and_then(|(f, _)| s.instances[f].undecodable.clone());
    let content = html! {
        p {
            a href=(study_path(id)) { "← " (doc.title) }
        }
        p class="meta" {
            (s.modality_fr())
            @if let Some(part) = &s.body_part { " · " (body_part_fr(part)) }
            " · " (images_fr(images))
        }
        nav class="viewer-nav" aria-label="Images de la série" {
            @if image > 0 {
                a href=(view_href(id, series, image - 1, preset)) rel="prev" { "← Image précédente" }
            }
            span aria-live="polite" { "Image " (image + 1) " sur " (images) }
            @if image + 1 < images {
                a href=(view_href(id, series, image + 1, preset)) rel="next" { "Image suivante →" }
            }
        }
        figure class="viewer" {
            @if let Some(reason) = &undecodable {
                p class="error" { "Cette image ne peut pas être affichée : " (reason) "." }
            } @else {
                img src={ "/imaging/" (id) "/series/" (series) "/image?image=" (image + 1) "&fenetre=" (preset.name()) }
                    alt={ "Image " (image + 1) " sur " (images) " de la " (title) ", réglage " (preset.label_fr()) };
            }
            figcaption { (title) " — réglage : " (preset.label_fr()) }
        }
        form method="get" action={ "/imaging/" (id) "/series/" (series) } class="goto" {
            input type="hidden" name="fenetre" value=(preset.name());
            label for="image" { "Aller à l'image (1 à " (images) ")" }
            input type="number" id="image" name="image" min="1" max=(images) value=(image + 1) required;
            button type="submit" { "Afficher" }
        }
        h2 { "Réglage du contraste (fenêtre)" }
        ul class="presets" {
            @for p in presets_for(s) {
                li {
                    @if p == preset {
                        a href=(view_href(id, series, image, p)) aria-current="true" { (p.label_fr()) }
                    } @else {
                        a href=(view_href(id, series, image, p)) { (p.label_fr()) }
                    }
                }
            }
        }
        @if s.modality == "CT" {
            p class="hint" { "Os, poumon, cerveau et tissus mous sont les fenêtres habituelles du scanner, en unités Hounsfield." }
        }
        details {
            summary { "Fichiers d'origine de la série (" (s.instances.len()) ")" }
            (file_links(id, series, s))
        }
    };
    page(&title, Some(&who), Area::Documents, content)
}

fn png(bytes: Vec<u8>) -> Response {
    (
        [
            (CONTENT_TYPE, "image/png"),
            // Patient data: the browser may keep it for the session's back and forth only.
            (CACHE_CONTROL, "private, max-age=600"),
        ],
        bytes,
    )
        .into_response()
}

pub async fn image(
    State(app): App,
    who: SignedIn,
    Path((id, series)): Path<(String, usize)>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let done = blocking(move || -> Result<Vec<u8>, Response> {
        let doc = own_document(&app, &who, &id)?;
        let images = doc
            .study
            .as_ref()
            .and_then(|s| s.series.get(series))
            .map(Series::images)
            .ok_or_else(crate::frame::not_found)?;
        let (image, preset) = parse_view(&q, images)
            .map_err(|reason| error_page(StatusCode::BAD_REQUEST, "Demande incorrecte", &reason))?;
        app.vault
            .study_image(&who.space, doc.id, series, image, preset)
            .map_err(imaging_error)
    })
    .await;
    match done {
        Ok(Ok(bytes)) => png(bytes),
        Ok(Err(r)) | Err(r) => r,
    }
}

pub async fn thumbnail(
    State(app): App,
    who: SignedIn,
    Path((id, series)): Path<(String, usize)>,
) -> Response {
    let done = blocking(move || -> Result<Vec<u8>, Response> {
        let doc = own_document(&app, &who, &id)?;
        app.vault
            .study_thumbnail(&who.space, doc.id, series)
            .map_err(imaging_error)
    })
    .await;
    match done {
        Ok(Ok(bytes)) => png(bytes),
        Ok(Err(r)) | Err(r) => r,
    }
}

pub async fn file(
    State(app): App,
    who: SignedIn,
    Path((id, series, index)): Path<(String, usize, usize)>,
) -> Response {
    let done = blocking(move || -> Result<_, Response> {
        let doc = own_document(&app, &who, &id)?;
        let (instance, bytes) = app
            .vault
            .read_study_file(&who.space, doc.id, series, index)
            .map_err(imaging_error)?;
        audit_delegate_read(&app, &who, &doc, "dicom-file")?;
        Ok((instance, bytes))
    })
    .await;
    match done {
        Ok(Ok((instance, bytes))) => (
            [
                (CONTENT_TYPE, "application/dicom".to_string()),
                (
                    CONTENT_DISPOSITION,
                    disposition("attachment", &instance.file),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(r)) | Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_queries_are_read_strictly() {
        assert_eq!(
            study_date_fr("20261112").as_deref(),
            Some("12 novembre 2026")
        );
        assert_eq!(study_date_fr("2026111"), None);
        let q = |image: Option<&str>, fenetre: Option<&str>| ViewQuery {
            image: image.map(str::to_string),
            fenetre: fenetre.map(str::to_string),
        };
        assert_eq!(parse_view(&q(None, None), 3), Ok((0, Preset::Default)));
        assert_eq!(
            parse_view(&q(Some("3"), Some("os")), 3),
            Ok((2, Preset::Bone))
        );
        assert!(parse_view(&q(Some("4"), None), 3).is_err());
        assert!(parse_view(&q(Some("0"), None), 3).is_err());
        assert!(parse_view(&q(Some("x"), None), 3).is_err());
        assert!(parse_view(&q(None, Some("<script>")), 3).is_err());
    }
}
