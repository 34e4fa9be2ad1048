//! "Accès des professionnels" (`/documents/acces`): who may read the patient's documents and
//! why — médecin traitant, professionals who follow the patient, explicit grants, those who
//! wrote, authors, emergency accesses — with the last access from the audit chain; and what
//! the patient decides: block and unblock, name or change the médecin traitant, add a
//! professional found in the directory (name, profession, specialty, city, RPPS), grant or
//! end an access, forbid emergency access. The vault records and audits every change
//! ([`mshub_vault::care`]); this page only shows and forwards. The owner's alone.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use mshub_directory::{Account, AccountKind, Profession};
use mshub_store::AccountId;
use mshub_vault::{CareEntry, Relationship, VaultError};

use crate::csrf::Posted;
use crate::format::{date_fr, datetime_fr, iso_utc};
use crate::frame::SignedIn;
use crate::frame::{blocking, error_page, internal, page, see_other, App, Area};

/// Most professionals a search shows.
const SEARCH_LIMIT: usize = 20;

#[derive(Deserialize, Default)]
pub struct Shown {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

fn done_text(code: &str) -> &'static str {
    match code {
        "follows" => "Le professionnel a été ajouté à ceux qui vous suivent : il peut consulter vos documents.",
        "grant" => "L'accès a été accordé.",
        "end" => "L'accès a été retiré. Il prend effet immédiatement.",
        "block" => "Le professionnel est bloqué : il ne voit plus aucun de vos documents.",
        "unblock" => "Le professionnel est débloqué.",
        "referring" => "Votre médecin traitant a été enregistré.",
        "referring-none" => "Vous n'avez plus de médecin traitant désigné.",
        "emergency-forbidden" => "L'accès d'urgence à votre espace est désormais interdit.",
        "emergency-allowed" => "L'accès d'urgence à votre espace est de nouveau autorisé.",
        _ => "C'est fait.",
    }
}

/// "Médecin — cardiologie — Lyon"
fn describe(account: &Account) -> String {
    match &account.kind {
        AccountKind::Professional {
            profession,
            specialty,
            city,
            ..
        } => [profession.label_fr(), specialty.as_str(), city.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" — "),
        AccountKind::Organisation { .. } => "Organisation (messagerie de service)".into(),
        _ => String::new(),
    }
}

fn rpps(account: &Account) -> Option<&str> {
    match &account.kind {
        AccountKind::Professional { rpps, .. } => Some(rpps.as_str()),
        _ => None,
    }
}

fn is_physician(account: &Account) -> bool {
    matches!(
        account.kind,
        AccountKind::Professional {
            profession: Profession::Physician,
            ..
        }
    )
}

/// One reason a professional reads, as the patient reads it.
fn link_text(link: &mshub_vault::Link, now: i64) -> String {
    let mut text = link.relationship.label_fr().to_string();
    if link.since > 0 {
        text.push_str(&format!(" depuis le {}", date_fr(link.since)));
    }
    match link.until {
        Some(until) if until <= now => {
            text.push_str(&format!(" (terminé le {})", datetime_fr(until)))
        }
        Some(until) => text.push_str(&format!(" jusqu'au {}", datetime_fr(until))),
        None => {}
    }
    if let Some(reason) = &link.reason {
        text.push_str(&format!(" — motif : « {reason} »"));
    }
    text
}

pub async fn show(State(app): App, who: SignedIn, Query(shown): Query<Shown>) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let w = who.clone();
    let query = shown.q.clone().unwrap_or_default();
    let q = query.clone();
    let loaded = blocking(move || -> Result<_, Response> {
        let team = app
            .vault
            .care_team(&w.me)
            .map_err(|e| internal("care team", &e))?;
        let settings = app
            .vault
            .patient_settings(w.me.id)
            .map_err(|e| internal("settings", &e))?;
        let found = if q.trim().is_empty() {
            None
        } else {
            Some(
                app.directory
                    .search_professionals(&q, SEARCH_LIMIT)
                    .map_err(|e| internal("directory search", &e))?,
            )
        };
        let hours = app.vault.emergency_duration() / 3600;
        Ok((team, settings, found, hours))
    })
    .await;
    let (team, settings, found, hours) = match loaded {
        Ok(Ok(v)) => v,
        Ok(Err(r)) | Err(r) => return r,
    };
    let now = mshub_store::now();
    let (readers, others): (Vec<&CareEntry>, Vec<&CareEntry>) =
        team.iter().partition(|e| e.reads_the_space(now));
    let content = html! {
        p { a href="/documents" { "← Tous les documents" } " · " a href="/documents/history" { "Historique des accès" } }
        @if let Some(code) = &shown.done {
            p class="notice" role="status" { (done_text(code)) }
        }
        p class="hint" {
            "Un professionnel de santé ne consulte vos documents que si vous l'avez désigné, s'il vous a écrit, si vous lui avez accordé un accès, ou en cas d'urgence. "
            "Il ne voit alors que les types de documents que sa profession et sa spécialité permettent, et jamais vos documents masqués (sauf votre médecin traitant). "
            "Un professionnel voit toujours les documents qu'il vous a lui-même envoyés, sauf si vous le bloquez."
        }
        section aria-labelledby="h-readers" {
            h2 id="h-readers" { "Qui peut consulter vos documents" }
            @if readers.is_empty() {
                p { "Aucun professionnel n'a accès à l'ensemble de vos documents." }
            } @else {
                ul class="plain care" {
                    @for entry in &readers {
                        li { (entry_markup(&who, entry, now)) }
                    }
                }
            }
        }
        @if !others.is_empty() {
            section aria-labelledby="h-others" {
                h2 id="h-others" { "Autres professionnels" }
                p class="hint" { "Ils ne voient que les documents qu'ils vous ont envoyés, ou plus rien s'ils sont bloqués ou si leur accès a pris fin." }
                ul class="plain care" {
                    @for entry in &others {
                        li { (entry_markup(&who, entry, now)) }
                    }
                }
            }
        }
        section aria-labelledby="h-add" {
            h2 id="h-add" { "Ajouter un professionnel" }
            form method="get" action="/documents/acces" role="search" {
                label for="q" { "Nom, profession, spécialité, ville ou numéro RPPS" }
                input type="search" id="q" name="q" value=(query) required maxlength="100" autocomplete="off";
                p { button type="submit" { "Rechercher" } }
            }
            @if let Some(found) = &found {
                @if found.is_empty() {
                    p role="status" { "Aucun professionnel ne correspond à « " (query) " »." }
                } @else {
                    p role="status" { (found.len()) " professionnel" @if found.len() > 1 { "s" } " trouvé" @if found.len() > 1 { "s" } "." }
                    ul class="plain care" {
                        @for pro in found {
                            li { (found_markup(&who, pro, settings.referring_doctor.as_ref() == Some(&pro.address))) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="h-emergency" {
            h2 id="h-emergency" { "Accès d'urgence (« bris de glace »)" }
            p class="hint" {
                "En cas d'urgence, un professionnel de santé peut ouvrir votre espace pour " (hours) " heures en indiquant un motif. "
                "Vous en êtes prévenu aussitôt dans votre messagerie, et chaque consultation figure à part dans l'historique des accès. Vos documents masqués restent masqués."
            }
            @if settings.emergency_forbidden {
                p { strong { "L'accès d'urgence à votre espace est interdit." } }
                form method="post" action="/documents/acces/emergency" {
                    (who.csrf())
                    input type="hidden" name="allowed" value="yes";
                    button type="submit" class="secondary" { "Autoriser de nouveau l'accès d'urgence" }
                }
            } @else {
                p { "L'accès d'urgence est autorisé." }
                form method="post" action="/documents/acces/emergency" {
                    (who.csrf())
                    input type="hidden" name="allowed" value="no";
                    button type="submit" class="danger" { "Interdire l'accès d'urgence" }
                }
            }
        }
    };
    page(
        "Accès des professionnels",
        Some(&who),
        Area::Documents,
        content,
    )
}

/// A hidden field naming the professional a form acts on.
fn professional_field(id: AccountId) -> Markup {
    html! { input type="hidden" name="professional" value=(id); }
}

fn entry_markup(who: &SignedIn, entry: &CareEntry, now: i64) -> Markup {
    let pro = &entry.professional;
    let name = pro.kind.display_name();
    html! {
        article class="card" aria-label=(name) {
            h3 { (name) }
            p { (describe(pro)) @if let Some(rpps) = rpps(pro) { " — RPPS " (rpps) } }
            ul {
                @if entry.blocked {
                    li { strong { "Bloqué : ne voit aucun de vos documents." } }
                }
                @for link in &entry.links {
                    li { (link_text(link, now)) }
                }
                @if entry.authored && matches!(pro.kind, AccountKind::Organisation { .. }) {
                    li { "a envoyé des documents ; ses membres les voient" }
                } @else if entry.authored {
                    li { "voit les documents qu'il vous a envoyés" }
                }
                @if let Some(organisation) = &entry.via {
                    li { "voit les documents envoyés par " (organisation) ", dont il est membre" }
                }
                li {
                    @if let Some(at) = entry.last_access {
                        "Dernier accès : " time datetime=(iso_utc(at)) { (datetime_fr(at)) }
                    } @else {
                        "Aucun accès à vos documents"
                    }
                }
            }
            div class="actions" {
                @for link in entry.links.iter().filter(|l| matches!(l.relationship, Relationship::Follows | Relationship::Grant | Relationship::Emergency) && l.is_active(now)) {
                    form method="post" action="/documents/acces/end" {
                        (who.csrf())
                        (professional_field(pro.id))
                        input type="hidden" name="relationship" value=(link.relationship.name());
                        button type="submit" class="secondary" {
                            (match link.relationship {
                                Relationship::Follows => "Retirer de ceux qui me suivent",
                                Relationship::Emergency => "Mettre fin à l'accès d'urgence",
                                _ => "Retirer l'accès accordé",
                            })
                            span class="visually-hidden" { " — " (name) }
                        }
                    }
                }
                @if entry.links.iter().any(|l| l.relationship == Relationship::ReferringDoctor) {
                    form method="post" action="/documents/acces/referring" {
                        (who.csrf())
                        input type="hidden" name="professional" value="";
                        button type="submit" class="secondary" { "Ne plus l'avoir comme médecin traitant" span class="visually-hidden" { " — " (name) } }
                    }
                }
                @if matches!(pro.kind, AccountKind::Professional { .. }) {
                    @if entry.blocked {
                        form method="post" action="/documents/acces/unblock" {
                            (who.csrf())
                            (professional_field(pro.id))
                            button type="submit" class="secondary" { "Débloquer" span class="visually-hidden" { " " (name) } }
                        }
                    } @else {
                        form method="post" action="/documents/acces/block" {
                            (who.csrf())
                            (professional_field(pro.id))
                            button type="submit" class="danger" { "Bloquer" span class="visually-hidden" { " " (name) } }
                        }
                    }
                }
            }
        }
    }
}

fn found_markup(who: &SignedIn, pro: &Account, is_referring: bool) -> Markup {
    let name = pro.kind.display_name();
    let grant_id = format!("grant-{}", pro.id);
    html! {
        article class="card" aria-label=(name) {
            h3 { (name) }
            p { (describe(pro)) @if let Some(rpps) = rpps(pro) { " — RPPS " (rpps) } }
            div class="actions" {
                form method="post" action="/documents/acces/follow" {
                    (who.csrf())
                    (professional_field(pro.id))
                    button type="submit" { "Ajouter à ceux qui me suivent" span class="visually-hidden" { " — " (name) } }
                }
                @if is_physician(pro) && !is_referring {
                    form method="post" action="/documents/acces/referring" {
                        (who.csrf())
                        (professional_field(pro.id))
                        button type="submit" class="secondary" { "Désigner comme médecin traitant" span class="visually-hidden" { " — " (name) } }
                    }
                }
                form method="post" action="/documents/acces/grant" {
                    (who.csrf())
                    (professional_field(pro.id))
                    label for=(grant_id) { "Accorder un accès pour " span class="visually-hidden" { (name) " " } }
                    select id=(grant_id) name="days" {
                        option value="1" { "1 jour" }
                        option value="7" selected { "7 jours" }
                        option value="30" { "30 jours" }
                        option value="365" { "1 an" }
                        option value="0" { "jusqu'à ce que je le retire" }
                    }
                    button type="submit" class="secondary" { "Accorder" span class="visually-hidden" { " l'accès à " (name) } }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct ProfessionalForm {
    /// The professional's account id; empty for "no médecin traitant".
    #[serde(default)]
    professional: String,
    #[serde(default)]
    days: Option<u32>,
    #[serde(default)]
    relationship: Option<String>,
    #[serde(default)]
    allowed: Option<String>,
}

fn refused(why: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, "Action non faite", why)
}

/// `POST /documents/acces/{action}`: follow, grant, end, block, unblock, referring, emergency.
pub async fn act(
    State(app): App,
    Path(action): Path<String>,
    Posted(who, form): Posted<ProfessionalForm>,
) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let me = who.me.clone();
    let outcome = blocking(
        move || -> Result<Result<&'static str, Response>, Response> {
            let vault = &app.vault;
            let fail = |e: VaultError| internal("care change", &e);
            // The professional the form names: a usable professional account of the directory.
            let professional = || -> Result<Result<Account, Response>, Response> {
                let Ok(id) = form.professional.trim().parse::<u64>() else {
                    return Ok(Err(refused("Aucun professionnel n'a été choisi.")));
                };
                match app.directory.account(AccountId(id)) {
                    Ok(Some(a)) if matches!(a.kind, AccountKind::Professional { .. }) => Ok(Ok(a)),
                    Ok(_) => Ok(Err(refused("Ce professionnel n'est pas dans l'annuaire."))),
                    Err(e) => Err(internal("directory", &e)),
                }
            };
            macro_rules! pro {
                () => {
                    match professional()? {
                        Ok(a) => a,
                        Err(r) => return Ok(Err(r)),
                    }
                };
            }
            Ok(Ok(match action.as_str() {
                "follow" => {
                    let pro = pro!();
                    vault
                        .add_relationship(&me, &pro, Relationship::Follows, None)
                        .map_err(fail)?;
                    "follows"
                }
                "grant" => {
                    let pro = pro!();
                    let until = match form.days {
                        Some(0) => None,
                        Some(days @ 1..=3660) => {
                            Some(mshub_store::now() + i64::from(days) * 86_400)
                        }
                        _ => return Ok(Err(refused("Choisissez une durée d'accès."))),
                    };
                    vault
                        .add_relationship(&me, &pro, Relationship::Grant, until)
                        .map_err(fail)?;
                    "grant"
                }
                "end" => {
                    let pro = pro!();
                    let relationship = match form.relationship.as_deref() {
                        Some("follows") => Relationship::Follows,
                        Some("grant") => Relationship::Grant,
                        Some("emergency") => Relationship::Emergency,
                        _ => return Ok(Err(refused("Cet accès ne se retire pas ici."))),
                    };
                    vault
                        .end_relationship(&me, &pro, relationship)
                        .map_err(fail)?;
                    "end"
                }
                "block" => {
                    let pro = pro!();
                    vault.block_professional(&me, &pro.address).map_err(fail)?;
                    "block"
                }
                "unblock" => {
                    let pro = pro!();
                    vault
                        .unblock_professional(&me, &pro.address)
                        .map_err(fail)?;
                    "unblock"
                }
                "referring" if form.professional.trim().is_empty() => {
                    vault.set_referring_doctor(&me, None).map_err(fail)?;
                    "referring-none"
                }
                "referring" => {
                    let pro = pro!();
                    if !is_physician(&pro) {
                        return Ok(Err(refused("Le médecin traitant est un médecin.")));
                    }
                    vault
                        .set_referring_doctor(&me, Some(&pro.address))
                        .map_err(fail)?;
                    "referring"
                }
                "emergency" => {
                    let allowed = match form.allowed.as_deref() {
                        Some("yes") => true,
                        Some("no") => false,
                        _ => return Ok(Err(refused("Choix non reconnu."))),
                    };
                    vault.set_emergency_allowed(&me, allowed).map_err(fail)?;
                    if allowed {
                        "emergency-allowed"
                    } else {
                        "emergency-forbidden"
                    }
                }
                _ => return Ok(Err(crate::frame::not_found())),
            }))
        },
    )
    .await;
    match outcome {
        Ok(Ok(Ok(done))) => see_other(&format!("/documents/acces?done={done}")),
        Ok(Ok(Err(r))) | Ok(Err(r)) | Err(r) => r,
    }
}
