//! The medical profile ("Mon profil médical", [`mshub_vault::profile`]): antécédents,
//! allergies et intolérances, traitements en cours, vaccinations, directives anticipées,
//! personnes à prévenir, and the professionals who read it (the same list that grants access
//! to the documents). One form per addition and one button per removal, so it works without
//! script on a phone; every form carries the profile's version, and a form older than the
//! profile is refused rather than merged. Each change is kept: the history lists them and any
//! earlier version can be restored.
//!
//! Changes are the owner's; a delegate reads. The vaccinations also go to the agenda, which
//! counts the prevention calendar from them.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use mshub_agenda::NaiveDate;
use mshub_vault::profile::{
    Allergy, Contact, Directives, HistoryEntry, HistoryKind, Section, Severity, Treatment,
    Vaccination, MAX_DIRECTIVES, MAX_SHORT, MAX_TEXT,
};
use mshub_vault::{MedicalProfile, ProfileChange, ProfileVersion, VaultError};

use crate::csrf::Posted;
use crate::format::{date_fr, datetime_fr, day_fr, iso_utc};
use crate::frame::{blocking, internal, page, see_other, App, Area, SignedIn};
use crate::Webmail;

/// Changes listed in the history at most (the vault keeps more).
const HISTORY_SHOWN: usize = 30;

/// What the page shows besides the profile.
struct Loaded {
    version: u64,
    profile: MedicalProfile,
    history: Vec<ProfileVersion>,
    /// Names of the professionals who read the space now.
    readers: Vec<String>,
    /// The patient's documents (reference, title), for the directives' document.
    documents: Vec<(String, String)>,
}

fn load(app: &Webmail, who: &SignedIn) -> Result<Loaded, Response> {
    let (version, profile) = app
        .vault
        .medical_profile(who.space.id)
        .map_err(|e| internal("profile", &e))?;
    let history = app
        .vault
        .profile_history(who.space.id)
        .map_err(|e| internal("profile history", &e))?;
    let now = mshub_store::now();
    let readers = app
        .vault
        .care_team(&who.space)
        .map_err(|e| internal("care team", &e))?
        .into_iter()
        .filter(|e| e.reads_the_space(now))
        .map(|e| e.professional.kind.display_name())
        .collect();
    let documents = app
        .vault
        .documents_for_patient(&who.space)
        .map_err(|e| internal("documents", &e))?
        .into_iter()
        .map(|d| (d.reference.as_str().to_string(), d.title))
        .collect();
    Ok(Loaded {
        version,
        profile,
        history,
        readers,
        documents,
    })
}

/// A refusal to show at the top of the page, with what the patient had typed.
#[derive(Default)]
struct Flash<'a> {
    error: Option<String>,
    section: Option<Section>,
    entries: Option<&'a HashMap<String, String>>,
}

impl Flash<'_> {
    /// What the patient typed in `field` of the form of `section`, if it was refused.
    fn kept(&self, section: Section, field: &str) -> String {
        match (self.section, self.entries) {
            (Some(s), Some(e)) if s == section => e.get(field).cloned().unwrap_or_default(),
            _ => String::new(),
        }
    }
}

/// The refusal of a form of `section`, shown at that form's section (a phone's screen away
/// from the top of the page).
fn section_error(flash: &Flash<'_>, section: Section) -> Markup {
    html! {
        @if let (Some(e), Some(s)) = (&flash.error, flash.section) {
            @if s == section {
                p class="error" role="alert" id="profil-erreur" { (e) }
            }
        }
    }
}

fn version_field(version: u64) -> Markup {
    html! { input type="hidden" name="version" value=(version); }
}

fn remove_button(
    who: &SignedIn,
    version: u64,
    section: Section,
    index: usize,
    what: &str,
) -> Markup {
    html! {
        form method="post" action={ "/profile/medical/" (section.name()) "/remove" } class="inline-form" {
            (who.csrf())
            (version_field(version))
            input type="hidden" name="index" value=(index);
            button type="submit" class="secondary small" aria-label={ "Supprimer : " (what) } { "Supprimer" }
        }
    }
}

fn today_iso() -> String {
    mshub_agenda::day_of(mshub_store::now())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn render(who: &SignedIn, l: &Loaded, flash: &Flash<'_>) -> Markup {
    let p = &l.profile;
    let owner = who.is_owner();
    let v = l.version;
    let today = today_iso();
    html! {
        p { a href="/profile" { "← Mon profil" } }
        p { "Ces informations aident les professionnels qui vous soignent. Elles sont chiffrées ; seuls les professionnels de la liste ci-dessous les lisent, chacun selon sa profession, et chaque consultation est tracée." }
        @if let (Some(e), None) = (&flash.error, flash.section) {
            p class="error" role="alert" id="profil-erreur" { (e) }
        }
        section aria-labelledby="h-history" {
            h2 id="h-history" { (Section::History.label_fr()) }
            (section_error(flash, Section::History))
            @if p.history.is_empty() { p { "Aucun antécédent renseigné." } }
            ul class="entries" {
                @for (i, e) in p.history.iter().enumerate() {
                    li {
                        strong { (e.description) }
                        " — " (e.kind.label_fr())
                        @if let Some(y) = e.year { " (" (y) ")" }
                        @if owner { (remove_button(who, v, Section::History, i, &e.description)) }
                    }
                }
            }
            @if owner {
                form method="post" action="/profile/medical/history/add" {
                    (who.csrf()) (version_field(v))
                    label for="h-kind" { "Type d'antécédent" }
                    select id="h-kind" name="kind" {
                        @for k in HistoryKind::ALL {
                            option value=(k.name()) selected[flash.kept(Section::History, "kind") == k.name()] { (k.label_fr()) }
                        }
                    }
                    label for="h-desc" { "Antécédent (maladie, opération…)" }
                    input type="text" id="h-desc" name="description" required maxlength=(MAX_TEXT) value=(flash.kept(Section::History, "description"));
                    label for="h-year" { "Année (facultatif)" }
                    input type="number" id="h-year" name="year" min="1900" max=(&today[..4.min(today.len())]) value=(flash.kept(Section::History, "year"));
                    p { button type="submit" { "Ajouter l'antécédent" } }
                }
            }
        }
        section aria-labelledby="h-allergies" {
            h2 id="h-allergies" { (Section::Allergies.label_fr()) }
            (section_error(flash, Section::Allergies))
            @if p.allergies.is_empty() { p { "Aucune allergie renseignée." } }
            ul class="entries" {
                @for (i, a) in p.allergies.iter().enumerate() {
                    li {
                        strong { (a.substance) }
                        @if !a.reaction.is_empty() { " — " (a.reaction) }
                        " (gravité " (a.severity.label_fr()) ")"
                        @if owner { (remove_button(who, v, Section::Allergies, i, &a.substance)) }
                    }
                }
            }
            @if owner {
                form method="post" action="/profile/medical/allergies/add" {
                    (who.csrf()) (version_field(v))
                    label for="a-subst" { "Substance (médicament, aliment…)" }
                    input type="text" id="a-subst" name="substance" required maxlength=(MAX_SHORT) value=(flash.kept(Section::Allergies, "substance"));
                    label for="a-react" { "Réaction (facultatif)" }
                    input type="text" id="a-react" name="reaction" maxlength=(MAX_TEXT) value=(flash.kept(Section::Allergies, "reaction"));
                    label for="a-sev" { "Gravité" }
                    select id="a-sev" name="severity" {
                        @for s in Severity::ALL {
                            option value=(s.name()) selected[flash.kept(Section::Allergies, "severity") == s.name()] { (s.label_fr()) }
                        }
                    }
                    p { button type="submit" { "Ajouter l'allergie" } }
                }
            }
        }
        section aria-labelledby="h-treatments" {
            h2 id="h-treatments" { (Section::Treatments.label_fr()) }
            (section_error(flash, Section::Treatments))
            @if p.treatments.is_empty() { p { "Aucun traitement renseigné." } }
            ul class="entries" {
                @for (i, t) in p.treatments.iter().enumerate() {
                    li {
                        strong { (t.name) }
                        @if !t.dosage.is_empty() { " — " (t.dosage) }
                        @if let Some(d) = t.since { " (depuis le " (day_fr(d)) ")" }
                        @if owner { (remove_button(who, v, Section::Treatments, i, &t.name)) }
                    }
                }
            }
            @if owner {
                form method="post" action="/profile/medical/treatments/add" {
                    (who.csrf()) (version_field(v))
                    label for="t-name" { "Médicament" }
                    input type="text" id="t-name" name="name" required maxlength=(MAX_SHORT) value=(flash.kept(Section::Treatments, "name"));
                    label for="t-dose" { "Posologie (facultatif)" }
                    input type="text" id="t-dose" name="dosage" maxlength=(MAX_SHORT) value=(flash.kept(Section::Treatments, "dosage"));
                    label for="t-since" { "Depuis le (facultatif)" }
                    input type="date" id="t-since" name="since" max=(today) value=(flash.kept(Section::Treatments, "since"));
                    p { button type="submit" { "Ajouter le traitement" } }
                }
            }
        }
        section aria-labelledby="h-vaccinations" {
            h2 id="h-vaccinations" { (Section::Vaccinations.label_fr()) }
            (section_error(flash, Section::Vaccinations))
            p class="meta" { "Les rappels de vaccination de votre agenda tiennent compte des dates indiquées ici." }
            @if p.vaccinations.is_empty() { p { "Aucune vaccination renseignée." } }
            ul class="entries" {
                @for (i, x) in p.vaccinations.iter().enumerate() {
                    li {
                        strong { (x.vaccine) } " — le " (day_fr(x.date))
                        @if owner { (remove_button(who, v, Section::Vaccinations, i, &x.vaccine)) }
                    }
                }
            }
            @if owner {
                form method="post" action="/profile/medical/vaccinations/add" {
                    (who.csrf()) (version_field(v))
                    label for="v-name" { "Vaccin" }
                    input type="text" id="v-name" name="vaccine" required maxlength=(MAX_SHORT) list="vaccins" value=(flash.kept(Section::Vaccinations, "vaccine"));
                    datalist id="vaccins" {
                        @for name in ["dTcaP", "grippe", "COVID-19", "ROR", "hépatite B", "pneumocoque", "zona", "HPV", "méningocoque"] {
                            option value=(name) {}
                        }
                    }
                    label for="v-date" { "Date" }
                    input type="date" id="v-date" name="date" required max=(today) min="1900-01-01" value=(flash.kept(Section::Vaccinations, "date"));
                    p { button type="submit" { "Ajouter la vaccination" } }
                }
            }
        }
        section aria-labelledby="h-directives" {
            h2 id="h-directives" { (Section::Directives.label_fr()) }
            (section_error(flash, Section::Directives))
            @if p.directives.text.is_empty() && p.directives.document.is_none() {
                p { "Aucune directive anticipée renseignée." }
            } @else {
                @if !p.directives.text.is_empty() { p class="directives" { (p.directives.text) } }
                @if let Some(r) = &p.directives.document {
                    p { "Document : " a href={ "/documents/" (r) } {
                        (l.documents.iter().find(|(d, _)| d == r).map_or("document de votre espace", |(_, t)| t.as_str()))
                    } }
                }
            }
            @if owner {
                form method="post" action="/profile/medical/directives" {
                    (who.csrf()) (version_field(v))
                    label for="d-text" { "Vos directives anticipées (ce que vous souhaitez pour votre fin de vie si vous ne pouvez plus l'exprimer)" }
                    textarea id="d-text" name="text" rows="5" maxlength=(MAX_DIRECTIVES) {
                        @if flash.section == Some(Section::Directives) { (flash.kept(Section::Directives, "text")) } @else { (p.directives.text) }
                    }
                    label for="d-doc" { "ou un document de votre espace qui les contient" }
                    select id="d-doc" name="document" {
                        option value="" selected[p.directives.document.is_none()] { "Aucun" }
                        @for (r, t) in &l.documents {
                            option value=(r) selected[p.directives.document.as_deref() == Some(r.as_str())] { (t) }
                        }
                    }
                    p { button type="submit" { "Enregistrer les directives" } }
                }
            }
        }
        section aria-labelledby="h-contacts" {
            h2 id="h-contacts" { (Section::Contacts.label_fr()) }
            (section_error(flash, Section::Contacts))
            @if p.contacts.is_empty() { p { "Aucune personne à prévenir renseignée." } }
            ul class="entries" {
                @for (i, c) in p.contacts.iter().enumerate() {
                    li {
                        strong { (c.name) }
                        @if !c.relation.is_empty() { " (" (c.relation) ")" }
                        " — " a href={ "tel:" (c.phone.replace(' ', "")) } { (c.phone) }
                        @if owner { (remove_button(who, v, Section::Contacts, i, &c.name)) }
                    }
                }
            }
            @if owner {
                form method="post" action="/profile/medical/contacts/add" {
                    (who.csrf()) (version_field(v))
                    label for="c-name" { "Nom" }
                    input type="text" id="c-name" name="name" required maxlength=(MAX_SHORT) autocomplete="off" value=(flash.kept(Section::Contacts, "name"));
                    label for="c-rel" { "Lien (facultatif : fille, conjoint, voisine…)" }
                    input type="text" id="c-rel" name="relation" maxlength=(MAX_SHORT) value=(flash.kept(Section::Contacts, "relation"));
                    label for="c-phone" { "Téléphone" }
                    input type="tel" id="c-phone" name="phone" required autocomplete="off" value=(flash.kept(Section::Contacts, "phone"));
                    p { button type="submit" { "Ajouter la personne" } }
                }
            }
        }
        section aria-labelledby="h-readers" {
            h2 id="h-readers" { "Professionnels qui me suivent" }
            @if l.readers.is_empty() {
                p { "Aucun professionnel n'a accès à votre espace en ce moment." }
            } @else {
                ul { @for name in &l.readers { li { (name) } } }
            }
            p { a href="/documents/acces" { "Gérer l'accès des professionnels" } }
        }
        section aria-labelledby="h-versions" {
            h2 id="h-versions" { "Historique des modifications" }
            @if l.history.is_empty() { p { "Aucune modification pour le moment." } }
            ol class="entries" reversed {
                @for h in l.history.iter().take(HISTORY_SHOWN) {
                    li {
                        time datetime=(iso_utc(h.at)) { (datetime_fr(h.at)) } " — " (h.change)
                        @if owner && h.version < l.version {
                            form method="post" action="/profile/medical/restore" class="inline-form" {
                                (who.csrf()) (version_field(v))
                                input type="hidden" name="target" value=(h.version);
                                button type="submit" class="secondary small" { "Revenir à cette version" }
                            }
                        }
                    }
                }
            }
            @if let Some(first) = l.history.last() {
                p class="meta" { "Profil tenu depuis le " (date_fr(first.at)) "." }
            }
        }
    }
}

fn show_page(who: &SignedIn, l: &Loaded, flash: &Flash<'_>, status: StatusCode) -> Response {
    let mut r = page(
        "Mon profil médical",
        Some(who),
        Area::Profile,
        render(who, l, flash),
    );
    *r.status_mut() = status;
    r
}

pub async fn show(State(app): App, who: SignedIn) -> Response {
    let w = who.clone();
    match blocking(move || load(&app, &w)).await {
        Ok(Ok(l)) => show_page(&who, &l, &Flash::default(), StatusCode::OK),
        Ok(Err(r)) | Err(r) => r,
    }
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", String::as_str)
}

/// A date field as the form's `type="date"` sends it.
fn date_field(form: &HashMap<String, String>, name: &str) -> Result<Option<NaiveDate>, String> {
    let v = field(form, name).trim();
    if v.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(v, "%d/%m/%Y"))
        .map(Some)
        .map_err(|_| {
            format!(
                "La date « {} » n'est pas valide : choisissez-la dans le calendrier.",
                v.chars().take(20).collect::<String>()
            )
        })
}

/// The change a posted form asks for.
fn change_of(
    section: Section,
    action: &str,
    form: &HashMap<String, String>,
) -> Result<ProfileChange, String> {
    let bad = || "Ce formulaire n'est pas reconnu : rechargez la page.".to_string();
    if action == "remove" {
        let index = field(form, "index").parse().map_err(|_| bad())?;
        return Ok(ProfileChange::Remove { section, index });
    }
    if action != "add" {
        return Err(bad());
    }
    Ok(match section {
        Section::History => ProfileChange::AddHistory(HistoryEntry {
            kind: HistoryKind::ALL
                .into_iter()
                .find(|k| k.name() == field(form, "kind"))
                .ok_or_else(bad)?,
            description: field(form, "description").to_string(),
            year: match field(form, "year").trim() {
                "" => None,
                y => Some(y.parse().map_err(|_| {
                    format!("L'année « {} » n'est pas un nombre : écrivez-la en chiffres (par exemple 2015).", y.chars().take(10).collect::<String>())
                })?),
            },
        }),
        Section::Allergies => ProfileChange::AddAllergy(Allergy {
            substance: field(form, "substance").to_string(),
            reaction: field(form, "reaction").to_string(),
            severity: Severity::ALL
                .into_iter()
                .find(|s| s.name() == field(form, "severity"))
                .unwrap_or(Severity::Unknown),
        }),
        Section::Treatments => ProfileChange::AddTreatment(Treatment {
            name: field(form, "name").to_string(),
            dosage: field(form, "dosage").to_string(),
            since: date_field(form, "since")?,
        }),
        Section::Vaccinations => ProfileChange::AddVaccination(Vaccination {
            vaccine: field(form, "vaccine").to_string(),
            date: date_field(form, "date")?
                .ok_or_else(|| "Indiquez la date de la vaccination.".to_string())?,
        }),
        Section::Contacts => ProfileChange::AddContact(Contact {
            name: field(form, "name").to_string(),
            relation: field(form, "relation").to_string(),
            phone: field(form, "phone").to_string(),
        }),
        Section::Directives => return Err(bad()),
    })
}

/// Makes the change, or shows the page again with the reason and what was typed.
async fn change(
    app: std::sync::Arc<Webmail>,
    who: SignedIn,
    section: Option<Section>,
    form: HashMap<String, String>,
    change: Result<ProfileChange, String>,
) -> Response {
    if let Err(r) = who.owner_only() {
        return r;
    }
    let expected: u64 = field(&form, "version").parse().unwrap_or(u64::MAX);
    let w = who.clone();
    let done = blocking(move || -> Result<Result<(), (String, Loaded)>, Response> {
        let refused = |reason: String| -> Result<Result<(), (String, Loaded)>, Response> {
            Ok(Err((reason, load(&app, &w)?)))
        };
        let change = match change {
            Ok(c) => c,
            Err(reason) => return refused(reason),
        };
        // Only these can change the vaccinations the agenda counts reminders from.
        let vaccinations_may_change = matches!(
            change,
            ProfileChange::AddVaccination(_)
                | ProfileChange::Restore(_)
                | ProfileChange::Remove {
                    section: Section::Vaccinations,
                    ..
                }
        );
        match app.vault.change_profile(&w.space, &w.me, expected, change) {
            Ok(_) if !vaccinations_may_change => Ok(Ok(())),
            Ok(v) => {
                let list: Vec<(String, NaiveDate)> = v
                    .profile
                    .vaccinations
                    .iter()
                    .map(|x| (x.vaccine.clone(), x.date))
                    .collect();
                app.agenda
                    .set_profile_vaccinations(w.space.id, &list)
                    .map_err(|e| internal("prevention vaccinations", &e))?;
                Ok(Ok(()))
            }
            Err(VaultError::Profile(refusal)) => refused(refusal.to_string()),
            Err(e) => Err(internal("profile change", &e)),
        }
    })
    .await;
    match done {
        Ok(Ok(Ok(()))) => see_other("/profile/medical"),
        Ok(Ok(Err((reason, loaded)))) => {
            let flash = Flash {
                error: Some(reason),
                section,
                entries: Some(&form),
            };
            show_page(&who, &loaded, &flash, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Ok(Err(r)) | Err(r) => r,
    }
}

pub async fn section_action(
    State(app): App,
    Path((section, action)): Path<(String, String)>,
    Posted(who, form): Posted<HashMap<String, String>>,
) -> Response {
    let Ok(section) = Section::try_from(section.as_str()) else {
        return crate::frame::not_found();
    };
    let c = change_of(section, &action, &form);
    change(app, who, Some(section), form, c).await
}

pub async fn directives(
    State(app): App,
    Posted(who, form): Posted<HashMap<String, String>>,
) -> Response {
    let document = Some(field(&form, "document").trim().to_string()).filter(|d| !d.is_empty());
    let c = Ok(ProfileChange::SetDirectives(Directives {
        text: field(&form, "text").to_string(),
        document,
    }));
    change(app, who, Some(Section::Directives), form, c).await
}

pub async fn restore(
    State(app): App,
    Posted(who, form): Posted<HashMap<String, String>>,
) -> Response {
    let c = field(&form, "target")
        .parse()
        .map(ProfileChange::Restore)
        .map_err(|_| "Cette version n'est pas reconnue : rechargez la page.".to_string());
    change(app, who, None, form, c).await
}
