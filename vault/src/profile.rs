//! The patient's medical profile ("profil médical"): antécédents (médicaux, chirurgicaux,
//! familiaux), allergies et intolérances, traitements en cours, vaccinations, directives
//! anticipées, personnes à prévenir. The patient writes it; professionals read it within a
//! care relationship ([`crate::care`]), each profession only the sections the access table
//! gives it (`[profile]` of `data/access.toml`); apps with `profile:read` read it.
//!
//! Sealed to the patient's key and versioned: every change is a new version with its date,
//! its author and what it changed, in French ("Allergie ajoutée : pénicilline"). A version can
//! be restored, which is itself a new version: nothing is ever lost, a change is undone by
//! restoring the version before it. A change made from a stale form (the profile moved since
//! the form was shown) is refused rather than merged.
//!
//! Storage: `vault-profile-head` patient → current version (u64 BE); `vault-profile` patient
//! ‖ version (u64 BE) → sealed [`ProfileVersion`]. The last [`MAX_VERSIONS`] are kept.

use std::collections::BTreeSet;

use mshub_agenda::NaiveDate;
use mshub_directory::{Account, AccountKind};
use mshub_store::{AccountId, AuditEvent, Batch, Commit, StoreError, Tree};
use serde::{Deserialize, Serialize};

use crate::care::Standing;
use crate::{Denial, DocumentRef, Result, Vault, VaultError};

const HEAD: Tree = Tree("vault-profile-head");
const VERSIONS: Tree = Tree("vault-profile");

/// Versions kept per patient (the oldest go first).
pub const MAX_VERSIONS: u64 = 200;
/// Entries per list at most.
pub const MAX_ENTRIES: usize = 30;
/// Characters of a short field (a substance, a name) at most.
pub const MAX_SHORT: usize = 200;
/// Characters of a description at most.
pub const MAX_TEXT: usize = 500;
/// Characters of the advance directives' text at most.
pub const MAX_DIRECTIVES: usize = 5000;

/// The sections of the profile, as the access table names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    /// Antécédents.
    History,
    /// Allergies et intolérances.
    Allergies,
    /// Traitements en cours.
    Treatments,
    /// Vaccinations.
    Vaccinations,
    /// Directives anticipées.
    Directives,
    /// Personnes à prévenir.
    Contacts,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::History,
        Section::Allergies,
        Section::Treatments,
        Section::Vaccinations,
        Section::Directives,
        Section::Contacts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::History => "history",
            Section::Allergies => "allergies",
            Section::Treatments => "treatments",
            Section::Vaccinations => "vaccinations",
            Section::Directives => "directives",
            Section::Contacts => "contacts",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Section::History => "Antécédents",
            Section::Allergies => "Allergies et intolérances",
            Section::Treatments => "Traitements en cours",
            Section::Vaccinations => "Vaccinations",
            Section::Directives => "Directives anticipées",
            Section::Contacts => "Personnes à prévenir",
        }
    }
}

impl TryFrom<&str> for Section {
    type Error = String;

    fn try_from(s: &str) -> std::result::Result<Self, String> {
        Section::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| format!("unknown profile section {s:?}"))
    }
}

/// Médical, chirurgical or familial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HistoryKind {
    Medical,
    Surgical,
    Family,
}

impl HistoryKind {
    pub const ALL: [HistoryKind; 3] = [
        HistoryKind::Medical,
        HistoryKind::Surgical,
        HistoryKind::Family,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HistoryKind::Medical => "medical",
            HistoryKind::Surgical => "surgical",
            HistoryKind::Family => "family",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            HistoryKind::Medical => "médical",
            HistoryKind::Surgical => "chirurgical",
            HistoryKind::Family => "familial",
        }
    }
}

/// How severe a reaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Mild,
    Moderate,
    Severe,
    Unknown,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Mild,
        Severity::Moderate,
        Severity::Severe,
        Severity::Unknown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Severity::Mild => "mild",
            Severity::Moderate => "moderate",
            Severity::Severe => "severe",
            Severity::Unknown => "unknown",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Severity::Mild => "légère",
            Severity::Moderate => "modérée",
            Severity::Severe => "sévère",
            Severity::Unknown => "non précisée",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub kind: HistoryKind,
    pub description: String,
    /// The year it happened or was diagnosed, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allergy {
    pub substance: String,
    #[serde(default)]
    pub reaction: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Treatment {
    pub name: String,
    #[serde(default)]
    pub dosage: String,
    /// `YYYY-MM-DD`, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vaccination {
    /// The vaccine as the patient names it; the prevention calendar recognises its keys
    /// ("dTcaP", "grippe"…) without regard to case.
    pub vaccine: String,
    pub date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    /// "fille", "conjoint", "voisine"…
    #[serde(default)]
    pub relation: String,
    pub phone: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directives {
    #[serde(default)]
    pub text: String,
    /// The reference ([`DocumentRef`]) of a document of the patient's vault holding them (a
    /// signed scan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// The profile itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedicalProfile {
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    #[serde(default)]
    pub allergies: Vec<Allergy>,
    #[serde(default)]
    pub treatments: Vec<Treatment>,
    #[serde(default)]
    pub vaccinations: Vec<Vaccination>,
    #[serde(default)]
    pub directives: Directives,
    #[serde(default)]
    pub contacts: Vec<Contact>,
}

impl MedicalProfile {
    pub fn is_empty(&self) -> bool {
        *self == MedicalProfile::default()
    }

    /// The profile with only `sections` (what a reader may see).
    pub fn only(&self, sections: &BTreeSet<Section>) -> MedicalProfile {
        let has = |s| sections.contains(&s);
        MedicalProfile {
            history: if has(Section::History) {
                self.history.clone()
            } else {
                Vec::new()
            },
            allergies: if has(Section::Allergies) {
                self.allergies.clone()
            } else {
                Vec::new()
            },
            treatments: if has(Section::Treatments) {
                self.treatments.clone()
            } else {
                Vec::new()
            },
            vaccinations: if has(Section::Vaccinations) {
                self.vaccinations.clone()
            } else {
                Vec::new()
            },
            directives: if has(Section::Directives) {
                self.directives.clone()
            } else {
                Directives::default()
            },
            contacts: if has(Section::Contacts) {
                self.contacts.clone()
            } else {
                Vec::new()
            },
        }
    }
}

/// One version of the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileVersion {
    pub version: u64,
    pub at: i64,
    /// Who made the change (the patient's address, or a delegate's).
    pub by: String,
    /// What changed, in French.
    pub change: String,
    pub profile: MedicalProfile,
}

/// What a professional reads of the profile: the version, the sections it may see, and the
/// profile with only those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRead {
    pub version: u64,
    pub sections: Vec<Section>,
    pub profile: MedicalProfile,
}

/// A change the patient makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileChange {
    AddHistory(HistoryEntry),
    AddAllergy(Allergy),
    AddTreatment(Treatment),
    AddVaccination(Vaccination),
    AddContact(Contact),
    /// Removes the entry at `index` of a list section.
    Remove {
        section: Section,
        index: usize,
    },
    SetDirectives(Directives),
    /// Makes an earlier version current again (as a new version).
    Restore(u64),
}

/// Why a change was refused: a French sentence that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileRefusal {
    #[error("Votre profil a été modifié entre-temps (dans un autre onglet ou par une personne de confiance) : rechargez la page et refaites la modification.")]
    Stale,
    #[error("Le champ « {0} » est vide : remplissez-le.")]
    Empty(&'static str),
    #[error("Le champ « {field} » dépasse {max} caractères : raccourcissez-le.")]
    TooLong { field: &'static str, max: usize },
    #[error("Le champ « {0} » contient des caractères de contrôle : retapez-le.")]
    Control(&'static str),
    #[error("La liste « {section} » compte déjà {max} entrées, le maximum : supprimez-en une avant d'en ajouter.")]
    TooMany { section: &'static str, max: usize },
    #[error("La date ({0}) est dans le futur : indiquez une date passée.")]
    FutureDate(String),
    #[error("La date ({0}) est antérieure à 1900 : vérifiez l'année.")]
    AncientDate(String),
    #[error("L'année {0} n'est pas possible : indiquez une année entre 1900 et cette année.")]
    BadYear(i32),
    #[error("Le numéro de téléphone « {0} » n'est pas valide : écrivez de 6 à 15 chiffres, avec + pour l'indicatif si besoin.")]
    BadPhone(String),
    #[error("Cette entrée n'existe plus : rechargez la page.")]
    NoSuchEntry,
    #[error("Cette version du profil n'est plus conservée : choisissez-en une de l'historique.")]
    NoSuchVersion,
    #[error("Le document choisi pour les directives anticipées n'est pas dans votre espace.")]
    NotYourDocument,
    #[error("Rien n'a changé.")]
    Unchanged,
}

fn text_field(
    value: &str,
    field: &'static str,
    max: usize,
    required: bool,
) -> std::result::Result<String, ProfileRefusal> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(ProfileRefusal::Empty(field));
    }
    if value.chars().count() > max {
        return Err(ProfileRefusal::TooLong { field, max });
    }
    // Line breaks are fine in the directives; nothing else below U+0020.
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(ProfileRefusal::Control(field));
    }
    Ok(value.to_string())
}

fn past_date(date: NaiveDate, today: NaiveDate) -> std::result::Result<NaiveDate, ProfileRefusal> {
    let shown = mshub_agenda::french::day(date);
    if date > today {
        return Err(ProfileRefusal::FutureDate(shown));
    }
    if date < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) {
        return Err(ProfileRefusal::AncientDate(shown));
    }
    Ok(date)
}

fn phone(value: &str) -> std::result::Result<String, ProfileRefusal> {
    let value = value.trim();
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let allowed = value
        .chars()
        .all(|c| c.is_ascii_digit() || " .-()+".contains(c));
    let plus_first = value.find('+').is_none_or(|i| i == 0) && value.matches('+').count() <= 1;
    if !(6..=15).contains(&digits) || !allowed || !plus_first {
        let shown: String = value.chars().filter(|c| !c.is_control()).take(40).collect();
        return Err(ProfileRefusal::BadPhone(shown));
    }
    Ok(value.to_string())
}

fn room<T>(list: &[T], section: Section) -> std::result::Result<(), ProfileRefusal> {
    if list.len() >= MAX_ENTRIES {
        return Err(ProfileRefusal::TooMany {
            section: section.label_fr(),
            max: MAX_ENTRIES,
        });
    }
    Ok(())
}

/// Applies `change` to `profile` (checked), and says what it did, in French.
fn apply(
    profile: &mut MedicalProfile,
    change: ProfileChange,
    today: NaiveDate,
) -> std::result::Result<String, ProfileRefusal> {
    use ProfileChange::*;
    Ok(match change {
        AddHistory(e) => {
            room(&profile.history, Section::History)?;
            let description = text_field(&e.description, "antécédent", MAX_TEXT, true)?;
            if let Some(year) = e.year {
                if year < 1900 || year > today.format("%Y").to_string().parse().unwrap_or(9999) {
                    return Err(ProfileRefusal::BadYear(year));
                }
            }
            let said = format!("Antécédent {} ajouté : {description}", e.kind.label_fr());
            profile.history.push(HistoryEntry {
                kind: e.kind,
                description,
                year: e.year,
            });
            said
        }
        AddAllergy(a) => {
            room(&profile.allergies, Section::Allergies)?;
            let substance = text_field(&a.substance, "substance", MAX_SHORT, true)?;
            let reaction = text_field(&a.reaction, "réaction", MAX_TEXT, false)?;
            let said = format!("Allergie ajoutée : {substance}");
            profile.allergies.push(Allergy {
                substance,
                reaction,
                severity: a.severity,
            });
            said
        }
        AddTreatment(t) => {
            room(&profile.treatments, Section::Treatments)?;
            let name = text_field(&t.name, "médicament", MAX_SHORT, true)?;
            let dosage = text_field(&t.dosage, "posologie", MAX_SHORT, false)?;
            let since = t.since.map(|d| past_date(d, today)).transpose()?;
            let said = format!("Traitement ajouté : {name}");
            profile.treatments.push(Treatment {
                name,
                dosage,
                since,
            });
            said
        }
        AddVaccination(v) => {
            room(&profile.vaccinations, Section::Vaccinations)?;
            let vaccine = text_field(&v.vaccine, "vaccin", MAX_SHORT, true)?;
            let date = past_date(v.date, today)?;
            let said = format!(
                "Vaccination ajoutée : {vaccine} le {}",
                mshub_agenda::french::day(date)
            );
            profile.vaccinations.push(Vaccination { vaccine, date });
            said
        }
        AddContact(c) => {
            room(&profile.contacts, Section::Contacts)?;
            let name = text_field(&c.name, "nom", MAX_SHORT, true)?;
            let relation = text_field(&c.relation, "lien", MAX_SHORT, false)?;
            let phone = phone(&c.phone)?;
            let said = format!("Personne à prévenir ajoutée : {name}");
            profile.contacts.push(Contact {
                name,
                relation,
                phone,
            });
            said
        }
        Remove { section, index } => {
            fn take<T>(list: &mut Vec<T>, index: usize) -> std::result::Result<T, ProfileRefusal> {
                if index < list.len() {
                    Ok(list.remove(index))
                } else {
                    Err(ProfileRefusal::NoSuchEntry)
                }
            }
            match section {
                Section::History => {
                    let e = take(&mut profile.history, index)?;
                    format!("Antécédent supprimé : {}", e.description)
                }
                Section::Allergies => {
                    let a = take(&mut profile.allergies, index)?;
                    format!("Allergie supprimée : {}", a.substance)
                }
                Section::Treatments => {
                    let t = take(&mut profile.treatments, index)?;
                    format!("Traitement supprimé : {}", t.name)
                }
                Section::Vaccinations => {
                    let v = take(&mut profile.vaccinations, index)?;
                    format!(
                        "Vaccination supprimée : {} du {}",
                        v.vaccine,
                        mshub_agenda::french::day(v.date)
                    )
                }
                Section::Contacts => {
                    let c = take(&mut profile.contacts, index)?;
                    format!("Personne à prévenir supprimée : {}", c.name)
                }
                Section::Directives => {
                    profile.directives = Directives::default();
                    "Directives anticipées supprimées".into()
                }
            }
        }
        SetDirectives(d) => {
            let text = text_field(&d.text, "directives anticipées", MAX_DIRECTIVES, false)?;
            let new = Directives {
                text,
                document: d.document,
            };
            if new == profile.directives {
                return Err(ProfileRefusal::Unchanged);
            }
            profile.directives = new;
            "Directives anticipées modifiées".into()
        }
        // Needs the stored versions: [`Vault::change_profile`] does it.
        Restore(_) => return Err(ProfileRefusal::NoSuchVersion),
    })
}

fn version_key(patient: AccountId, version: u64) -> Vec<u8> {
    let mut key = patient.to_key().to_vec();
    key.extend_from_slice(&version.to_be_bytes());
    key
}

impl Vault {
    fn profile_head(&self, patient: AccountId) -> Result<(u64, Option<Vec<u8>>)> {
        let raw = self.store.kv().get(HEAD, &patient.to_key())?;
        let version = match &raw {
            Some(b) => {
                u64::from_be_bytes(b.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                    what: "profile head".into(),
                    reason: format!("{} bytes", b.len()),
                })?)
            }
            None => 0,
        };
        Ok((version, raw))
    }

    fn profile_version(&self, patient: AccountId, version: u64) -> Result<Option<ProfileVersion>> {
        let Some(sealed) = self
            .store
            .kv()
            .get(VERSIONS, &version_key(patient, version))?
        else {
            return Ok(None);
        };
        let plain = self.store.open_sealed(patient, &sealed)?;
        let v = serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt {
            what: "medical profile".into(),
            reason: e.to_string(),
        })?;
        Ok(Some(v))
    }

    /// The current profile and its version (0 and an empty profile before the first change).
    pub fn medical_profile(&self, patient: AccountId) -> Result<(u64, MedicalProfile)> {
        let (version, _) = self.profile_head(patient)?;
        if version == 0 {
            return Ok((0, MedicalProfile::default()));
        }
        let current = self
            .profile_version(patient, version)?
            .ok_or_else(|| VaultError::Data(format!("profile version {version} is missing")))?;
        Ok((version, current.profile))
    }

    /// The versions kept, newest first, each with what it changed.
    pub fn profile_history(&self, patient: AccountId) -> Result<Vec<ProfileVersion>> {
        let entries = self
            .store
            .kv()
            .scan(VERSIONS, &patient.to_key(), None, None)?;
        let mut out = Vec::with_capacity(entries.len());
        for (_, sealed) in entries {
            let plain = self.store.open_sealed(patient, &sealed)?;
            out.push(
                serde_json::from_slice::<ProfileVersion>(&plain).map_err(|e| {
                    StoreError::Corrupt {
                        what: "medical profile".into(),
                        reason: e.to_string(),
                    }
                })?,
            );
        }
        out.reverse();
        Ok(out)
    }

    /// Makes `change` to the profile of `patient`, by `by` (the patient, or a delegate acting
    /// for them), if the profile is still at `expected` (the version the form showed). Durable
    /// and audited when it returns; refused ([`VaultError::Profile`]) without writing anything.
    pub fn change_profile(
        &self,
        patient: &Account,
        by: &Account,
        expected: u64,
        change: ProfileChange,
    ) -> Result<ProfileVersion> {
        if !patient.kind.is_patient() {
            return Err(VaultError::NotAPatient(patient.address.to_string()));
        }
        let (version, head) = self.profile_head(patient.id)?;
        if version != expected {
            return Err(ProfileRefusal::Stale.into());
        }
        let mut profile = if version == 0 {
            MedicalProfile::default()
        } else {
            self.profile_version(patient.id, version)?
                .ok_or_else(|| VaultError::Data(format!("profile version {version} is missing")))?
                .profile
        };
        let today = mshub_agenda::day_of(mshub_store::now())
            .ok_or_else(|| VaultError::Data("today's date is out of range".into()))?;
        let said = match change {
            ProfileChange::Restore(v) => {
                let old = self
                    .profile_version(patient.id, v)?
                    .filter(|_| v < version)
                    .ok_or(ProfileRefusal::NoSuchVersion)?;
                if old.profile == profile {
                    return Err(ProfileRefusal::Unchanged.into());
                }
                profile = old.profile;
                format!(
                    "Version du {} rétablie",
                    mshub_agenda::french::datetime(old.at)
                )
            }
            ProfileChange::SetDirectives(Directives {
                document: Some(ref reference),
                ..
            }) if !self.owns_document(patient, reference)? => {
                return Err(ProfileRefusal::NotYourDocument.into());
            }
            other => apply(&mut profile, other, today)?,
        };
        let next = ProfileVersion {
            version: version + 1,
            at: mshub_store::now(),
            by: by.address.to_string(),
            change: said,
            profile,
        };
        let plain = serde_json::to_vec(&next).map_err(|e| VaultError::Data(e.to_string()))?;
        let sealed = self.store.seal(patient.id, &plain)?;
        let mut batch = Batch::new();
        batch.check(HEAD, patient.id.to_key().to_vec(), head);
        batch.put(
            HEAD,
            patient.id.to_key().to_vec(),
            next.version.to_be_bytes().to_vec(),
        );
        batch.put(VERSIONS, version_key(patient.id, next.version), sealed);
        if next.version > MAX_VERSIONS {
            batch.remove(
                VERSIONS,
                version_key(patient.id, next.version - MAX_VERSIONS),
            );
        }
        if self.store.kv().commit(&batch)? == Commit::Conflict {
            return Err(ProfileRefusal::Stale.into());
        }
        self.store.audit(
            AuditEvent::new(by.address.as_str(), "profile.change", "profile")
                .with_detail(format!("patient:{} version:{}", patient.id, next.version)),
        )?;
        Ok(next)
    }

    fn owns_document(&self, patient: &Account, reference: &str) -> Result<bool> {
        let Ok(reference) = DocumentRef::try_from(reference) else {
            return Ok(false);
        };
        let Some(id) = self.resolve(&reference)? else {
            return Ok(false);
        };
        match self.document(id) {
            Ok(d) => Ok(d.patient == patient.id && !d.deleted && d.visible_to_patient),
            Err(VaultError::NoSuchDocument(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The sections of the profile `viewer` may read: none for a professional the patient
    /// blocked or without a care relationship, else those its profession's `[profile]` row of
    /// the access table lists.
    pub fn profile_sections(
        &self,
        patient: &Account,
        viewer: &Account,
    ) -> Result<std::result::Result<(BTreeSet<Section>, Standing), Denial>> {
        let AccountKind::Professional { profession, .. } = &viewer.kind else {
            return Ok(Err(Denial::NotAProfessional));
        };
        let settings = self.patient_settings(patient.id)?;
        if settings.blocked.contains(&viewer.address) {
            return Ok(Err(Denial::Blocked));
        }
        let Some(standing) = self.standing(patient.id, viewer, &settings, mshub_store::now())?
        else {
            return Ok(Err(Denial::NoRelationship));
        };
        let sections = self.access_matrix().profile_sections(*profession);
        if sections.is_empty() {
            return Ok(Err(Denial::Matrix));
        }
        Ok(Ok((sections, standing)))
    }

    /// The profile as `professional` may read it, audited (`profile.read`, or
    /// `profile.read.denied` with the reason).
    pub fn profile_for_professional(
        &self,
        patient: &Account,
        professional: &Account,
    ) -> Result<ProfileRead> {
        if !patient.kind.is_patient() {
            return Err(VaultError::NotAPatient(patient.address.to_string()));
        }
        match self.profile_sections(patient, professional)? {
            Err(denial) => {
                self.store.audit(
                    AuditEvent::new(
                        professional.address.as_str(),
                        "profile.read.denied",
                        "profile",
                    )
                    .with_detail(format!(
                        "patient:{} ground:{}",
                        patient.id,
                        denial.code()
                    )),
                )?;
                Err(VaultError::Refused(denial))
            }
            Ok((sections, standing)) => {
                let (version, profile) = self.medical_profile(patient.id)?;
                self.store.audit(
                    AuditEvent::new(professional.address.as_str(), "profile.read", "profile")
                        .with_detail(format!(
                            "patient:{} ground:{}",
                            patient.id,
                            standing.relationship.name()
                        )),
                )?;
                Ok(ProfileRead {
                    version,
                    profile: profile.only(&sections),
                    sections: sections.into_iter().collect(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
    }

    #[test]
    fn each_addition_is_checked_and_said_in_french() {
        let mut p = MedicalProfile::default();
        let said = apply(
            &mut p,
            ProfileChange::AddAllergy(Allergy {
                substance: " pénicilline ".into(),
                reaction: "urticaire".into(),
                severity: Severity::Severe,
            }),
            today(),
        )
        .unwrap();
        assert_eq!(said, "Allergie ajoutée : pénicilline");
        assert_eq!(p.allergies[0].substance, "pénicilline");
        assert_eq!(
            apply(
                &mut p,
                ProfileChange::AddVaccination(Vaccination {
                    vaccine: "dTcaP".into(),
                    date: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
                }),
                today()
            ),
            Err(ProfileRefusal::FutureDate("1 janvier 2027".into()))
        );
        assert!(matches!(
            apply(
                &mut p,
                ProfileChange::AddContact(Contact {
                    name: "Léa".into(),
                    relation: "fille".into(),
                    phone: "appelez-moi".into(),
                }),
                today()
            ),
            Err(ProfileRefusal::BadPhone(_))
        ));
        assert!(apply(
            &mut p,
            ProfileChange::AddContact(Contact {
                name: "Léa".into(),
                relation: "fille".into(),
                phone: "+33 6 12 34 56 78".into(),
            }),
            today()
        )
        .is_ok());
        assert_eq!(
            apply(
                &mut p,
                ProfileChange::Remove {
                    section: Section::Treatments,
                    index: 0
                },
                today()
            ),
            Err(ProfileRefusal::NoSuchEntry)
        );
    }

    #[test]
    fn forty_allergies_of_ten_kilobytes_are_refused() {
        let mut p = MedicalProfile::default();
        let big = Allergy {
            substance: "x".repeat(10 * 1024),
            reaction: String::new(),
            severity: Severity::Unknown,
        };
        assert_eq!(
            apply(&mut p, ProfileChange::AddAllergy(big), today()),
            Err(ProfileRefusal::TooLong {
                field: "substance",
                max: MAX_SHORT
            })
        );
        for i in 0..MAX_ENTRIES {
            apply(
                &mut p,
                ProfileChange::AddAllergy(Allergy {
                    substance: format!("substance {i}"),
                    reaction: String::new(),
                    severity: Severity::Unknown,
                }),
                today(),
            )
            .unwrap();
        }
        assert!(matches!(
            apply(
                &mut p,
                ProfileChange::AddAllergy(Allergy {
                    substance: "une de trop".into(),
                    reaction: String::new(),
                    severity: Severity::Unknown,
                }),
                today()
            ),
            Err(ProfileRefusal::TooMany { .. })
        ));
        assert_eq!(p.allergies.len(), MAX_ENTRIES);
    }
}
