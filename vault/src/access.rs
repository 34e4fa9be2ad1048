//! The access matrix: which document categories each profession sees (`data/access.toml`),
//! refined per specialty (`[specialties.*]`: a radiologist is not a general practitioner).
//! The other visibility rules (author, masking, blocking) are in [`crate::rules`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use mshub_directory::{fold, Profession};

use crate::profile::Section;
use crate::{Category, Result, VaultError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    professions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    specialties: BTreeMap<String, RawSpecialty>,
    /// Profession → the sections of the medical profile it reads (`"*"` for all).
    #[serde(default)]
    profile: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpecialty {
    profession: String,
    code: String,
    label: String,
    #[serde(default)]
    names: Vec<String>,
    categories: Vec<String>,
}

/// A specialty row of the table: a specialty of one profession (code and label of the
/// nomenclature TRE_R38-SpecialiteOrdinale) and the categories it sees instead of its
/// profession's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Specialty {
    /// The row's key in the table, e.g. `radio-diagnostic`.
    pub slug: String,
    /// Code in TRE_R38-SpecialiteOrdinale, e.g. `SM44`.
    pub code: String,
    /// French label of the nomenclature, e.g. "Radio-diagnostic".
    pub label: String,
    pub profession: Profession,
    /// Other spellings the row is matched by (besides label, code and slug).
    names: Vec<String>,
    categories: BTreeSet<Category>,
}

impl Specialty {
    pub fn allows(&self, category: Category) -> bool {
        self.categories.contains(&category)
    }

    /// Every spelling the row is matched by, folded (see [`fold`]).
    fn keys(&self) -> BTreeSet<String> {
        [&self.label, &self.code, &self.slug]
            .into_iter()
            .chain(&self.names)
            .map(|s| fold(s))
            .collect()
    }
}

/// Profession × category: `true` where the profession may see the category; specialty rows
/// override their profession's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessMatrix {
    allowed: BTreeMap<Profession, BTreeSet<Category>>,
    /// Per profession, its specialty rows in label order.
    specialties: BTreeMap<Profession, Vec<Specialty>>,
    /// (profession, folded spelling) → index in `specialties[profession]`.
    by_name: BTreeMap<(Profession, String), usize>,
    /// Profession → the sections of the medical profile it reads.
    profile: BTreeMap<Profession, BTreeSet<Section>>,
}

const BUILTIN: &str = include_str!("../data/access.toml");

fn data_error(detail: impl std::fmt::Display) -> VaultError {
    VaultError::Data(format!("access matrix: {detail}"))
}

/// The categories of a row; `"*"` is all of them.
fn categories(names: &[String]) -> std::result::Result<BTreeSet<Category>, String> {
    let mut set = BTreeSet::new();
    for c in names {
        if c == "*" {
            set.extend(Category::ALL);
        } else {
            let category = Category::try_from(c.as_str())
                .map_err(|_| format!("unknown document category {c:?}"))?;
            set.insert(category);
        }
    }
    Ok(set)
}

impl AccessMatrix {
    /// The defaults shipped with the crate.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN).expect("data/access.toml is valid (checked by a unit test)")
    }

    /// Parses a matrix in the format of `data/access.toml`. A profession left out sees nothing.
    /// Refused: an unknown profession or category, a specialty row with an empty code or label
    /// or an empty name, and two specialty rows of one profession matched by the same spelling.
    pub fn parse(text: &str) -> Result<Self> {
        let file: AccessFile = toml::from_str(text).map_err(data_error)?;
        let mut allowed = BTreeMap::new();
        for (name, names) in file.professions {
            let profession = Profession::try_from(name.as_str()).map_err(data_error)?;
            let set = categories(&names).map_err(|e| data_error(format!("{name}: {e}")))?;
            allowed.insert(profession, set);
        }

        let mut specialties: BTreeMap<Profession, Vec<Specialty>> = BTreeMap::new();
        for (slug, raw) in file.specialties {
            let profession = Profession::try_from(raw.profession.as_str())
                .map_err(|e| data_error(format!("specialty {slug}: {e}")))?;
            let code = raw.code.trim().to_string();
            let label = raw.label.trim().to_string();
            if code.is_empty() || label.is_empty() {
                return Err(data_error(format!("specialty {slug}: empty code or label")));
            }
            if fold(&slug).is_empty() || raw.names.iter().any(|n| fold(n).is_empty()) {
                return Err(data_error(format!("specialty {slug}: empty name")));
            }
            let categories = categories(&raw.categories)
                .map_err(|e| data_error(format!("specialty {slug}: {e}")))?;
            specialties.entry(profession).or_default().push(Specialty {
                slug,
                code,
                label,
                profession,
                names: raw.names,
                categories,
            });
        }

        let mut by_name = BTreeMap::new();
        for (profession, rows) in &mut specialties {
            rows.sort_by(|a, b| {
                (fold(&a.label), &a.label, &a.slug).cmp(&(fold(&b.label), &b.label, &b.slug))
            });
            for (i, row) in rows.iter().enumerate() {
                for key in row.keys() {
                    if let Some(&j) = by_name.get(&(*profession, key.clone())) {
                        let other: &Specialty = &rows[j];
                        return Err(data_error(format!(
                            "specialties {} and {} of {} are both matched by {key:?}",
                            other.slug,
                            row.slug,
                            profession.name()
                        )));
                    }
                    by_name.insert((*profession, key), i);
                }
            }
        }

        let mut profile = BTreeMap::new();
        for (name, sections) in file.profile {
            let profession = Profession::try_from(name.as_str()).map_err(data_error)?;
            let mut set = BTreeSet::new();
            for s in sections {
                if s == "*" {
                    set.extend(Section::ALL);
                } else {
                    set.insert(
                        Section::try_from(s.as_str())
                            .map_err(|e| data_error(format!("profile of {name}: {e}")))?,
                    );
                }
            }
            profile.insert(profession, set);
        }

        Ok(Self {
            allowed,
            specialties,
            by_name,
            profile,
        })
    }

    /// The sections of a patient's medical profile `profession` reads (within a care
    /// relationship); none for a profession the `[profile]` table leaves out.
    pub fn profile_sections(&self, profession: Profession) -> BTreeSet<Section> {
        self.profile.get(&profession).cloned().unwrap_or_default()
    }

    /// Whether `profession` may see `category`, by the profession's row alone.
    pub fn allows(&self, profession: Profession, category: Category) -> bool {
        self.allowed
            .get(&profession)
            .is_some_and(|s| s.contains(&category))
    }

    /// The specialty row for `profession` practising `specialty` (free text as in an account,
    /// compared case- and accent-insensitively and trimmed, against the label, the names, the
    /// code and the slug; a trailing parenthesised qualifier such as the nomenclature's "(SM)"
    /// is ignored), if the table has one.
    pub fn specialty(&self, profession: Profession, specialty: &str) -> Option<&Specialty> {
        let key = fold(specialty);
        if key.is_empty() {
            return None;
        }
        let index = self.by_name.get(&(profession, key.clone())).or_else(|| {
            let bare = strip_qualifier(&key)?;
            self.by_name.get(&(profession, bare.to_string()))
        })?;
        self.specialties.get(&profession)?.get(*index)
    }

    /// The specialty's row when the table has one for this profession, else the profession's row.
    pub fn allows_with(&self, profession: Profession, specialty: &str, category: Category) -> bool {
        match self.specialty(profession, specialty) {
            Some(row) => row.allows(category),
            None => self.allows(profession, category),
        }
    }

    /// Every specialty row of `profession`, in label order (for a search form's choices).
    pub fn specialties(&self, profession: Profession) -> Vec<&Specialty> {
        self.specialties
            .get(&profession)
            .map(|rows| rows.iter().collect())
            .unwrap_or_default()
    }
}

/// `"radio-diagnostic (sm)"` → `"radio-diagnostic"`: a folded spelling without its trailing
/// parenthesised qualifier, if it has one (and something before it).
fn strip_qualifier(key: &str) -> Option<&str> {
    let open = key.strip_suffix(')')?.rfind(" (")?;
    let bare = key[..open].trim_end();
    (!bare.is_empty()).then_some(bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The categories a row (or fallback) allows, for exact comparisons.
    fn seen(m: &AccessMatrix, p: Profession, specialty: &str) -> Vec<Category> {
        Category::ALL
            .into_iter()
            .filter(|&c| m.allows_with(p, specialty, c))
            .collect()
    }

    #[test]
    fn builtin_matrix_has_the_documented_defaults() {
        let m = AccessMatrix::builtin();
        for c in Category::ALL {
            assert!(m.allows(Profession::Physician, c), "physician {c:?}");
        }
        assert!(m.allows(Profession::Pharmacist, Category::Prescriptions));
        assert!(m.allows(Profession::Pharmacist, Category::Biologie));
        assert!(!m.allows(Profession::Pharmacist, Category::Imagerie));
        assert!(!m.allows(Profession::Pharmacist, Category::ComptesRendus));
        assert!(m.allows(Profession::Nurse, Category::ComptesRendus));
        assert!(!m.allows(Profession::Nurse, Category::Imagerie));
        assert!(m.allows(Profession::LabTechnician, Category::Biologie));
        assert!(!m.allows(Profession::LabTechnician, Category::Prescriptions));
        assert!(m.allows(Profession::RadiologyTechnician, Category::Imagerie));
        assert!(!m.allows(Profession::RadiologyTechnician, Category::Biologie));
        assert!(m.allows(Profession::Physiotherapist, Category::Prescriptions));
        assert!(!m.allows(Profession::Physiotherapist, Category::Biologie));
        assert!(m.allows(Profession::Dentist, Category::Imagerie));
        assert!(!m.allows(Profession::Dentist, Category::Biologie));
        assert!(m.allows(Profession::Midwife, Category::Imagerie));
        assert!(!m.allows(Profession::Midwife, Category::Certificats));
        for p in Profession::ALL {
            if p != Profession::Physician {
                assert!(!m.allows(p, Category::AClasser), "{p:?} sees unclassified");
            }
        }
    }

    #[test]
    fn builtin_specialty_rows_have_the_documented_categories() {
        use Category::*;
        let m = AccessMatrix::builtin();
        let doctor = Profession::Physician;
        assert_eq!(
            seen(&m, doctor, "médecine générale"),
            Category::ALL.to_vec()
        );
        assert_eq!(seen(&m, doctor, "SM26"), Category::ALL.to_vec());
        assert_eq!(seen(&m, doctor, "SM53"), Category::ALL.to_vec());
        let radiology = vec![ComptesRendus, Imagerie, Biologie, Prescriptions];
        for s in ["radiologue", "SM74", "SM94", "SM55"] {
            assert_eq!(seen(&m, doctor, s), radiology, "{s}");
        }
        // A treating specialist: the whole record, unclassified documents included.
        for s in ["cardiologue", "SM73", "SM79", "SM80", "SM81"] {
            assert_eq!(seen(&m, doctor, s), Category::ALL.to_vec(), "{s}");
        }
        let biology = vec![ComptesRendus, Biologie, Prescriptions];
        for s in ["biologiste", "SM63", "SM64", "SM65", "SM66", "SM67"] {
            assert_eq!(seen(&m, doctor, s), biology, "{s}");
        }
        assert_eq!(
            seen(&m, doctor, "anatomopathologiste"),
            vec![ComptesRendus, Biologie]
        );
        assert_eq!(
            seen(&m, doctor, "médecin du travail"),
            vec![ComptesRendus, Prevention, Certificats]
        );
        // Only treating physicians (general practice, cardiology) keep unclassified documents.
        for row in m.specialties(doctor) {
            let treating = [
                "SM26", "SM53", "SM54", "SM04", "SM73", "SM79", "SM80", "SM81",
            ]
            .contains(&row.code.as_str());
            assert_eq!(row.allows(AClasser), treating, "{}", row.slug);
        }
    }

    #[test]
    fn a_radiologist_is_refused_certificates_and_sees_imaging() {
        let m = AccessMatrix::builtin();
        let doctor = Profession::Physician;
        let row = m.specialty(doctor, "Radiologie").expect("radiology row");
        assert_eq!(row.code, "SM44");
        assert_eq!(row.label, "Radio-diagnostic");
        assert_eq!(row.profession, doctor);
        assert!(row.allows(Category::Imagerie));
        assert!(!row.allows(Category::Certificats));
        assert!(m.allows_with(doctor, "Radiologie", Category::Imagerie));
        assert!(m.allows_with(doctor, "Radiologie", Category::Biologie));
        assert!(!m.allows_with(doctor, "Radiologie", Category::Certificats));
        assert!(!m.allows_with(doctor, "Radiologie", Category::AClasser));
        assert!(!m.allows_with(doctor, "Radiologie", Category::Prevention));
        // The profession's row is unchanged.
        assert!(m.allows(doctor, Category::Certificats));
        for spelling in [
            "Radiologie",
            "radiologue",
            "RADIOLOGUE",
            "SM44",
            "sm44",
            " SM44 ",
            "Radio-diagnostic",
            "radio-diagnostic",
            "Radio-diagnostic (SM)",
            "  Radio-Diagnostic   (SM) ",
            "Radiodiagnostic",
            "Médecin  radiologue",
            "medecin radiologue",
        ] {
            let found = m.specialty(doctor, spelling).map(|s| s.slug.as_str());
            assert_eq!(found, Some("radio-diagnostic"), "{spelling:?}");
        }
    }

    #[test]
    fn general_practice_matches_its_label_code_and_names() {
        let m = AccessMatrix::builtin();
        let doctor = Profession::Physician;
        for (spelling, code) in [
            ("Qualifié en Médecine Générale", "SM26"),
            ("QUALIFIE EN MEDECINE GENERALE", "SM26"),
            ("Qualifié en Médecine générale (SM)", "SM26"),
            ("SM26", "SM26"),
            ("Spécialiste en Médecine Générale", "SM53"),
            ("médecine générale", "SM54"),
            ("Medecine   Generale", "SM54"),
            ("généraliste", "SM54"),
            ("medecine-generale", "SM54"),
        ] {
            let row = m.specialty(doctor, spelling);
            assert_eq!(row.map(|r| r.code.as_str()), Some(code), "{spelling:?}");
        }
    }

    #[test]
    fn an_unknown_or_empty_specialty_keeps_the_profession_row() {
        let m = AccessMatrix::builtin();
        for p in Profession::ALL {
            for s in ["", "   ", "astrologie", "SM99", "(SM)", "médecine"] {
                assert_eq!(m.specialty(p, s), None, "{p:?} {s:?}");
                for c in Category::ALL {
                    assert_eq!(m.allows_with(p, s, c), m.allows(p, c), "{p:?} {s:?} {c:?}");
                }
            }
        }
    }

    #[test]
    fn a_specialty_row_does_not_apply_to_another_profession() {
        let m = AccessMatrix::builtin();
        // A pharmacist or nurse typing a physician's specialty keeps its own row.
        assert_eq!(m.specialty(Profession::Pharmacist, "radiologue"), None);
        assert_eq!(m.specialty(Profession::Pharmacist, "biologiste"), None);
        assert_eq!(m.specialty(Profession::Nurse, "médecine du travail"), None);
        assert!(!m.allows_with(Profession::Pharmacist, "radiologue", Category::Imagerie));
        assert!(m.allows_with(Profession::Pharmacist, "radiologue", Category::Prevention));
        assert!(!m.allows_with(
            Profession::Pharmacist,
            "biologiste",
            Category::ComptesRendus
        ));
        assert!(m.allows_with(Profession::Nurse, "médecine du travail", Category::Biologie));
        assert!(m.allows_with(Profession::Midwife, "médecine générale", Category::Imagerie));
        assert!(!m.allows_with(Profession::Midwife, "SM26", Category::Certificats));
        assert!(!m.allows_with(
            Profession::RadiologyTechnician,
            "radiologie",
            Category::Biologie
        ));
    }

    #[test]
    fn specialties_are_listed_per_profession_in_label_order() {
        let m = AccessMatrix::builtin();
        let rows = m.specialties(Profession::Physician);
        let slugs: Vec<&str> = rows.iter().map(|r| r.slug.as_str()).collect();
        for slug in [
            "qualifie-medecine-generale",
            "radio-diagnostic",
            "cardiologie",
            "biologie-medicale",
            "anatomie-cytologie-pathologiques",
            "medecine-du-travail",
        ] {
            assert!(slugs.contains(&slug), "{slug} missing from {slugs:?}");
        }
        let labels: Vec<String> = rows.iter().map(|r| fold(&r.label)).collect();
        let mut sorted = labels.clone();
        sorted.sort();
        assert_eq!(labels, sorted);
        assert_eq!(rows[0].label, "Anatomie et Cytologie pathologiques");
        let mut codes = BTreeSet::new();
        for row in &rows {
            assert_eq!(row.profession, Profession::Physician);
            assert!(
                row.code.starts_with("SM") && row.code.len() == 4,
                "{}",
                row.code
            );
            assert!(!row.label.contains("(SM)"), "{}", row.label);
            assert!(codes.insert(row.code.clone()), "{} twice", row.code);
        }
        for p in Profession::ALL {
            if p != Profession::Physician {
                assert!(m.specialties(p).is_empty(), "{p:?}");
            }
        }
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!(AccessMatrix::parse("[professions]\nwizard = ['*']").is_err());
        assert!(AccessMatrix::parse("[professions]\nnurse = ['gossip']").is_err());
    }

    const ROW: &str = "[professions]\nphysician = ['*']\nnurse = ['biologie']\n\
        [specialties.radio]\nprofession = 'physician'\ncode = 'SM44'\nlabel = 'Radio-diagnostic'\n\
        names = ['radiologue']\ncategories = ['imagerie']\n";

    #[test]
    fn a_valid_specialty_table_parses() {
        let m = AccessMatrix::parse(ROW).unwrap();
        assert!(m.allows_with(Profession::Physician, "radiologue", Category::Imagerie));
        assert!(!m.allows_with(Profession::Physician, "radiologue", Category::Biologie));
        assert!(m.allows_with(Profession::Physician, "dermatologue", Category::Biologie));
        // `names` may be left out; a profession without a row sees nothing.
        let m = AccessMatrix::parse(
            "[professions]\n[specialties.x]\nprofession = 'dentist'\ncode = 'SCD02'\n\
             label = 'Chirurgie orale'\ncategories = ['biologie']\n",
        )
        .unwrap();
        assert!(m.allows_with(Profession::Dentist, "chirurgie orale", Category::Biologie));
        assert!(!m.allows_with(Profession::Dentist, "", Category::Biologie));
        // The same spelling for two professions is not a conflict.
        let two = format!(
            "{ROW}[specialties.other]\nprofession = 'nurse'\ncode = 'SM44'\n\
             label = 'Radio-diagnostic'\nnames = ['radiologue']\ncategories = []\n"
        );
        let m = AccessMatrix::parse(&two).unwrap();
        assert_eq!(
            m.specialty(Profession::Nurse, "radiologue").unwrap().slug,
            "other"
        );
        assert_eq!(
            m.specialty(Profession::Physician, "radiologue")
                .unwrap()
                .slug,
            "radio"
        );
    }

    #[test]
    fn bad_specialty_rows_are_refused() {
        let dup = |names: &str, code: &str| {
            format!(
                "{ROW}[specialties.radio2]\nprofession = 'physician'\ncode = '{code}'\n\
                 label = 'Radiologie'\nnames = [{names}]\ncategories = []\n"
            )
        };
        let bad = [
            (
                ROW.replace("profession = 'physician'", "profession = 'wizard'"),
                "specialty radio: invalid profession",
            ),
            (
                ROW.replace("categories = ['imagerie']", "categories = ['gossip']"),
                "specialty radio: unknown document category \"gossip\"",
            ),
            (
                ROW.replace("code = 'SM44'", "code = ''"),
                "empty code or label",
            ),
            (
                ROW.replace("code = 'SM44'", "code = '  '"),
                "empty code or label",
            ),
            (
                ROW.replace("label = 'Radio-diagnostic'", "label = ''"),
                "empty code or label",
            ),
            // An empty name would match an empty specialty.
            (
                ROW.replace("names = ['radiologue']", "names = ['radiologue', ' ']"),
                "empty name",
            ),
            (ROW.replace("code = 'SM44'\n", ""), "missing field `code`"),
            (
                ROW.replace("categories = ['imagerie']", "categorie = ['imagerie']"),
                "unknown field `categorie`",
            ),
            (
                ROW.replace("[specialties.radio]", "[specialites.radio]"),
                "unknown field `specialites`",
            ),
            // Two rows of one profession matched by the same name, label, code or slug.
            (dup("'Radiologue'", "SM74"), "matched by \"radiologue\""),
            (
                dup("'radio-diagnostic'", "SM74"),
                "matched by \"radio-diagnostic\"",
            ),
            (dup("", "sm44"), "matched by \"sm44\""),
            (dup("'Radio'", "SM74"), "matched by \"radio\""),
        ];
        assert!(AccessMatrix::parse(ROW).is_ok());
        for (text, reason) in &bad {
            match AccessMatrix::parse(text) {
                Ok(_) => panic!("accepted:\n{text}"),
                Err(e) => assert!(e.to_string().contains(reason), "{e} lacks {reason:?}"),
            }
        }
    }

    #[test]
    fn fold_ignores_case_accents_and_spacing() {
        assert_eq!(fold("  Œdème   À\tl’Écoute "), "oedeme a l'ecoute");
        assert_eq!(fold("ÉÈÊËàâäîïôöùûüÇæ"), "eeeeaaaiioouuucae");
        assert_eq!(fold("Chirurgie Orthopédique"), "chirurgie orthopedique");
        assert_eq!(fold(" \t "), "");
        assert_eq!(
            strip_qualifier("radio-diagnostic (sm)"),
            Some("radio-diagnostic")
        );
        assert_eq!(strip_qualifier("(sm)"), None);
        assert_eq!(strip_qualifier("radio-diagnostic"), None);
    }
}
