//! The access matrix: which document categories each profession sees (`data/access.toml`).
//! The other visibility rules (author, masking, blocking) are in [`crate::rules`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use mshub_directory::Profession;

use crate::{Category, Result, VaultError};

#[derive(Deserialize)]
struct AccessFile {
    professions: BTreeMap<String, Vec<String>>,
}

/// Profession × category: `true` where the profession may see the category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessMatrix {
    allowed: BTreeMap<Profession, BTreeSet<Category>>,
}

const BUILTIN: &str = include_str!("../data/access.toml");

impl AccessMatrix {
    /// The defaults shipped with the crate.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN).expect("data/access.toml is valid (checked by a unit test)")
    }

    /// Parses a matrix in the format of `data/access.toml`. A profession left out sees nothing.
    pub fn parse(text: &str) -> Result<Self> {
        let file: AccessFile =
            toml::from_str(text).map_err(|e| VaultError::Data(format!("access matrix: {e}")))?;
        let mut allowed = BTreeMap::new();
        for (name, categories) in file.professions {
            let profession = Profession::try_from(name.as_str())
                .map_err(|e| VaultError::Data(format!("access matrix: {e}")))?;
            let mut set = BTreeSet::new();
            for c in categories {
                if c == "*" {
                    set.extend(Category::ALL);
                } else {
                    set.insert(Category::try_from(c.as_str())?);
                }
            }
            allowed.insert(profession, set);
        }
        Ok(Self { allowed })
    }

    pub fn allows(&self, profession: Profession, category: Category) -> bool {
        self.allowed
            .get(&profession)
            .is_some_and(|s| s.contains(&category))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn unknown_names_are_refused() {
        assert!(AccessMatrix::parse("[professions]\nwizard = ['*']").is_err());
        assert!(AccessMatrix::parse("[professions]\nnurse = ['gossip']").is_err());
    }
}
