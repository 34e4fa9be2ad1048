//! Documents: the patient's vault by category and date; a document's page (CDA rendered, PDF
//! and images inline), download; mask / unmask, delete and classify (the owner only); and the
//! access history (who saw what, when) from the audit chain.
//!
//! Reads go through the vault, which decides and audits. A relative reading through a
//! delegation reads as the patient would, and the read is written to the audit chain under the
//! relative's own address (ground `delegate`), so the patient sees it in the history.
//!
//! Documents are named in URLs by their reference ([`DocumentRef`]), never by their number;
//! anything else, or another space's document, is "not found".

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use mshub_vault::{Category, Document, DocumentId, DocumentRef, VaultError};

use crate::csrf::Posted;
use crate::document_types::{self, type_and_category};
use crate::download::disposition;
use crate::format::{date_fr, datetime_fr, human_size, iso_utc};
use crate::frame::{blocking, error_page, page, see_other, App, Area, SignedIn};
use crate::vault_read::{audit_delegate_read, own_document, study_path, vault_error};
use crate::Webmail;

fn document_date(d: &Document) -> i64 {
    d.filed_at
}

pub async fn list(State(app): App, who: SignedIn) -> Response {
    let space = who.space.clone();
    let docs = match blocking(move || app.vault.documents_for_patient(&space)).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return vault_error(e),
        Err(r) => return r,
    };
    let mut by_category: BTreeMap<Category, Vec<&Document>> = BTreeMap::new();
    for d in &docs {
        by_category.entry(d.category).or_default().push(d);
    }
    for list in by_category.values_mut() {
        list.sort_by_key(|d| std::cmp::Reverse(document_date(d)));
    }
    let content = html! {
        p class="actions" { a href="/documents/history" { "Historique des accès" } " · " a href="/documents/acces" { "Accès des professionnels" } }
        @if who.is_owner() {
            p { a class="button" href="/documents/ajouter" { "Ajouter un document" } }
        }
        @if docs.is_empty() {
            p { "Aucun document pour le moment. Les documents que vos professionnels de santé vous envoient apparaîtront ici ; vous pouvez aussi ajouter les vôtres." }
        }
        @for category in Category::ALL {
            @if let Some(list) = by_category.get(&category) {
                section aria-labelledby={ "cat-" (category.name()) } {
                    h2 id={ "cat-" (category.name()) } { (category.label_fr()) " (" (list.len()) ")" }
                    ul class="documents" {
                        @for d in list {
                            li {
                                @if d.study.is_some() {
                                    a href=(study_path(&d.reference)) { (d.title) }
                                    " " span class="tag" { "Images" }
                                } @else {
                                    a href={ "/documents/" (d.reference) } { (d.title) }
                                }
                                @if d.masked { " " span class="tag" { "Masqué aux professionnels" } }
                                div class="meta" {
                                    (d.type_label) " · " (d.author_display()) " · "
                                    time datetime=(iso_utc(document_date(d))) { (date_fr(document_date(d))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page("Mes documents", Some(&who), Area::Documents, content)
}

pub async fn view(State(app): App, who: SignedIn, Path(id): Path<String>) -> Response {
    let w = who.clone();
    let loaded = blocking(move || -> Result<_, Response> {
        let doc = own_document(&app, &w, &id)?;
        let rendering = match app.vault.read_rendering(&w.space, doc.id) {
            Ok(r) => r,
            Err(e) => return Err(vault_error(e)),
        };
        if rendering.is_some() {
            audit_delegate_read(&app, &w, &doc, "rendering")?;
        }
        Ok((doc, rendering, app.vault.types().clone()))
    })
    .await;
    let (doc, rendering, types) = match loaded {
        Ok(Ok(v)) => v,
        Ok(Err(r)) | Err(r) => return r,
    };
    let inline_kind = if doc.mime == "application/pdf" {
        "pdf"
    } else if doc.mime.starts_with("image/") && doc.mime != "image/svg+xml" {
        "image"
    } else {
        ""
    };
    let content = html! {
        p { a href="/documents" { "← Tous les documents" } }
        dl class="meta" {
            dt { "Type" } dd { (type_and_category(&doc.type_label, doc.category)) }
            dt { "Auteur" } dd { (doc.author_display()) }
            dt { "Reçu le" } dd { time datetime=(iso_utc(doc.filed_at)) { (datetime_fr(doc.filed_at)) } }
            dt { "Fichier" } dd { (doc.file_name.as_deref().unwrap_or("document")) " (" (doc.mime) ", " (human_size(doc.size as usize)) ")" }
            dt { "Visibilité" } dd {
                @if doc.masked { "Masqué : seuls son auteur et votre médecin traitant peuvent le voir." }
                @else { "Visible par les professionnels de santé autorisés." }
            }
        }
        @if let Some(text) = &rendering {
            h2 { "Contenu" }
            div class="rendering" { (text) }
        }
        @if inline_kind == "image" {
            p { img src={ "/documents/" (doc.reference) "/file?inline=1" } alt={ "Image : " (doc.title) }; }
        }
        @if doc.study.is_some() {
            p { a class="button" href=(study_path(&doc.reference)) { "Voir les images de l'examen" } }
        }
        p class="actions" {
            @if inline_kind == "pdf" {
                a class="button" href={ "/documents/" (doc.reference) "/file?inline=1" } { "Ouvrir le PDF" }
            }
            a class="button secondary" href={ "/documents/" (doc.reference) "/file" } download { "Télécharger" }
        }
        @if who.is_owner() {
            h2 { "Gérer ce document" }
            div class="actions" {
                @if doc.masked {
                    (action_form(&who, &doc.reference, "unmask", "Ne plus masquer", "secondary"))
                } @else {
                    (action_form(&who, &doc.reference, "mask", "Masquer aux professionnels", "secondary"))
                }
            }
            form method="post" action={ "/documents/" (doc.reference) "/classify" } {
                (who.csrf())
                label for="type" { "Type du document" }
                (document_types::select(&types, "type", "code", &doc.type_code))
                p { button type="submit" class="secondary" { "Classer" } }
            }
            form method="post" action={ "/documents/" (doc.reference) "/delete" } {
                (who.csrf())
                p {
                    input type="checkbox" id="confirm" name="confirm" value="yes" required;
                    label for="confirm" class="inline" { "Je confirme la suppression définitive de ce document" }
                }
                button type="submit" class="danger" { "Supprimer" }
            }
        }
    };
    page(&doc.title, Some(&who), Area::Documents, content)
}

fn action_form(
    who: &SignedIn,
    reference: &DocumentRef,
    action: &str,
    label: &str,
    class: &str,
) -> Markup {
    html! {
        form method="post" action={ "/documents/" (reference) "/" (action) } {
            (who.csrf())
            button type="submit" class=(class) { (label) }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct FileQuery {
    #[serde(default)]
    inline: Option<String>,
}

pub async fn file(
    State(app): App,
    who: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
) -> Response {
    let loaded = blocking(move || -> Result<_, Response> {
        let doc = own_document(&app, &who, &id)?;
        let bytes = app
            .vault
            .read_document(&who.space, doc.id)
            .map_err(vault_error)?;
        audit_delegate_read(&app, &who, &doc, "original")?;
        Ok((doc, bytes))
    })
    .await;
    let (doc, bytes) = match loaded {
        Ok(Ok(v)) => v,
        Ok(Err(r)) | Err(r) => return r,
    };
    let inline_ok = doc.mime == "application/pdf"
        || matches!(doc.mime.as_str(), "image/png" | "image/jpeg" | "image/gif");
    let (ctype, kind) = if q.inline.is_some() && inline_ok {
        (doc.mime.clone(), "inline")
    } else if inline_ok {
        (doc.mime.clone(), "attachment")
    } else {
        ("application/octet-stream".to_string(), "attachment")
    };
    let name = doc
        .file_name
        .clone()
        .unwrap_or_else(|| format!("document-{}", doc.reference));
    (
        [
            (CONTENT_TYPE, ctype),
            (CONTENT_DISPOSITION, disposition(kind, &name)),
        ],
        bytes,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct Plain {}

async fn act(
    app: std::sync::Arc<Webmail>,
    who: SignedIn,
    id: String,
    f: impl FnOnce(&Webmail, &SignedIn, DocumentId) -> Result<(), VaultError> + Send + 'static,
    then: &'static str,
) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let done = blocking(move || -> Result<DocumentRef, Response> {
        let doc = own_document(&app, &who, &id)?;
        f(&app, &who, doc.id).map_err(vault_error)?;
        Ok(doc.reference)
    })
    .await;
    match done {
        Ok(Ok(reference)) => see_other(&then.replace("{id}", reference.as_str())),
        Ok(Err(r)) | Err(r) => r,
    }
}

pub async fn mask(
    State(app): App,
    Path(id): Path<String>,
    Posted(who, _): Posted<Plain>,
) -> Response {
    act(
        app,
        who,
        id,
        |a, w, d| a.vault.mask(&w.space, d),
        "/documents/{id}",
    )
    .await
}

pub async fn unmask(
    State(app): App,
    Path(id): Path<String>,
    Posted(who, _): Posted<Plain>,
) -> Response {
    act(
        app,
        who,
        id,
        |a, w, d| a.vault.unmask(&w.space, d),
        "/documents/{id}",
    )
    .await
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

pub async fn delete(
    State(app): App,
    Path(id): Path<String>,
    Posted(who, form): Posted<DeleteForm>,
) -> Response {
    if form.confirm != "yes" {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Suppression non faite",
            "Cochez la case de confirmation pour supprimer le document.",
        );
    }
    act(
        app,
        who,
        id,
        |a, w, d| a.vault.delete(&w.space, d),
        "/documents",
    )
    .await
}

#[derive(Deserialize)]
pub struct ClassifyForm {
    code: String,
}

pub async fn classify(
    State(app): App,
    Path(id): Path<String>,
    Posted(who, form): Posted<ClassifyForm>,
) -> Response {
    act(
        app,
        who,
        id,
        move |a, w, d| a.vault.reclassify(&w.space, d, &form.code).map(|_| ()),
        "/documents/{id}",
    )
    .await
}

fn action_fr(action: &str, detail: &str) -> String {
    let ground = detail
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ground:"))
        .unwrap_or("");
    match action {
        "document.file" => "a déposé le document".into(),
        "document.read" if ground == "delegate" => "a consulté le document (délégation)".into(),
        "document.read" if ground == "care:emergency" => {
            "a consulté le document (accès d'urgence)".into()
        }
        "document.read" => "a consulté le document".into(),
        "document.read.denied" | "document.denied" => "s'est vu refuser l'accès".into(),
        "document.mask" => "a masqué le document".into(),
        "document.unmask" => "a rendu le document visible".into(),
        "document.delete" => "a supprimé le document".into(),
        "document.reclassify" => "a classé le document".into(),
        "document.release" => "a rendu le document visible pour vous".into(),
        "vault.block" => "a bloqué un professionnel".into(),
        "vault.unblock" => "a débloqué un professionnel".into(),
        "vault.referring-doctor" => "a désigné le médecin traitant".into(),
        "document.list.denied" => "s'est vu refuser l'accès à vos documents".into(),
        "vault.emergency" => "a ouvert un accès d'urgence".into(),
        "vault.emergency.denied" => "s'est vu refuser un accès d'urgence".into(),
        "vault.emergency-access" => "a changé l'autorisation des accès d'urgence".into(),
        "vault.care.follows" => "a ajouté un professionnel qui vous suit".into(),
        "vault.care.grant" => "a accordé un accès à un professionnel".into(),
        "vault.care.end.follows" => "a retiré un professionnel qui vous suit".into(),
        "vault.care.end.grant" => "a retiré un accès accordé".into(),
        "vault.care.end.emergency" => "a mis fin à un accès d'urgence".into(),
        other => other.to_string(),
    }
}

pub async fn history(State(app): App, who: SignedIn) -> Response {
    let w = who.clone();
    let loaded = blocking(move || -> Result<_, Response> {
        let records = app.vault.access_history(w.space.id).map_err(vault_error)?;
        let titles: BTreeMap<u64, String> = app
            .vault
            .documents_for_patient(&w.space)
            .map_err(vault_error)?
            .into_iter()
            .map(|d| (d.id.0, d.title))
            .collect();
        // The audit chain names documents by number: shown by title, never by number.
        // Emergency accesses (their opening and every read under them) are shown apart.
        let mut emergency = Vec::new();
        let mut rows = Vec::new();
        for r in records.into_iter().rev().take(500) {
            let actor = if r.event.actor == w.space.address.as_str() {
                "Vous".to_string()
            } else {
                let name = mshub_directory::Address::try_from(r.event.actor.as_str())
                    .ok()
                    .and_then(|a| app.directory.account_by_address(&a).ok().flatten())
                    .map(|a| format!("{} ({})", a.kind.display_name(), r.event.actor));
                name.unwrap_or_else(|| r.event.actor.clone())
            };
            let title = r
                .event
                .subject
                .strip_prefix("document:")
                .and_then(|n| n.parse::<u64>().ok())
                .map(|n| {
                    titles
                        .get(&n)
                        .cloned()
                        .unwrap_or_else(|| "document supprimé ou non visible".into())
                })
                .unwrap_or_default();
            let row = (
                r.at,
                actor,
                action_fr(&r.event.action, &r.event.detail),
                title,
            );
            if r.event.action == "vault.emergency"
                || r.event.detail.contains("ground:care:emergency")
            {
                let reason = r
                    .event
                    .detail
                    .split_once("reason:")
                    .map_or(String::new(), |(_, reason)| reason.to_string());
                emergency.push((row, reason));
            } else {
                rows.push(row);
            }
        }
        Ok((emergency, rows))
    })
    .await;
    let (emergency, rows) = match loaded {
        Ok(Ok(r)) => r,
        Ok(Err(r)) | Err(r) => return r,
    };
    let content = html! {
        p { a href="/documents" { "← Tous les documents" } " · " a href="/documents/acces" { "Accès des professionnels" } }
        @if !emergency.is_empty() {
            section aria-labelledby="h-emergency" {
                h2 id="h-emergency" { "Accès d'urgence" }
                p class="hint" { "Un professionnel peut ouvrir votre espace en cas d'urgence en donnant un motif. Vous pouvez l'interdire depuis la page « Accès des professionnels »." }
                table {
                    caption class="visually-hidden" { "Accès d'urgence à vos documents" }
                    thead { tr { th scope="col" { "Date" } th scope="col" { "Qui" } th scope="col" { "Action" } th scope="col" { "Document" } th scope="col" { "Motif" } } }
                    tbody {
                        @for ((at, actor, action, title), reason) in &emergency {
                            tr {
                                td { time datetime=(iso_utc(*at)) { (datetime_fr(*at)) } }
                                td { (actor) }
                                td { (action) }
                                td { (title) }
                                td { (reason) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Toutes les consultations" }
        p class="hint" { "Chaque consultation de vos documents par un professionnel de santé ou un proche est enregistrée ici, la plus récente en premier." }
        @if rows.is_empty() {
            p { "Aucun accès enregistré." }
        } @else {
            table {
                caption class="visually-hidden" { "Historique des accès à vos documents" }
                thead { tr { th scope="col" { "Date" } th scope="col" { "Qui" } th scope="col" { "Action" } th scope="col" { "Document" } } }
                tbody {
                    @for (at, actor, action, title) in &rows {
                        tr {
                            td { time datetime=(iso_utc(*at)) { (datetime_fr(*at)) } }
                            td { (actor) }
                            td { (action) }
                            td { (title) }
                        }
                    }
                }
            }
        }
    };
    page("Historique des accès", Some(&who), Area::Documents, content)
}
