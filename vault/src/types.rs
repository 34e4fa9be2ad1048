//! Document types: LOINC code → French label → category, from `data/document-types.toml`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Result, VaultError};

/// The category a document is shown under, and what the access matrix is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Comptes rendus (consultation, hospital stay, surgery…)
    ComptesRendus,
    /// Imagerie
    Imagerie,
    /// Biologie
    Biologie,
    /// Prescriptions
    Prescriptions,
    /// Prévention (vaccinations, screening)
    Prevention,
    /// Certificats
    Certificats,
    /// Autres
    Autres,
    /// À classer: the type is unknown; the patient can set it.
    AClasser,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::ComptesRendus,
        Category::Imagerie,
        Category::Biologie,
        Category::Prescriptions,
        Category::Prevention,
        Category::Certificats,
        Category::Autres,
        Category::AClasser,
    ];

    /// The name used in the data files.
    pub fn name(self) -> &'static str {
        match self {
            Category::ComptesRendus => "comptes-rendus",
            Category::Imagerie => "imagerie",
            Category::Biologie => "biologie",
            Category::Prescriptions => "prescriptions",
            Category::Prevention => "prevention",
            Category::Certificats => "certificats",
            Category::Autres => "autres",
            Category::AClasser => "a-classer",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Category::ComptesRendus => "Comptes rendus",
            Category::Imagerie => "Imagerie",
            Category::Biologie => "Biologie",
            Category::Prescriptions => "Prescriptions",
            Category::Prevention => "Prévention",
            Category::Certificats => "Certificats",
            Category::Autres => "Autres",
            Category::AClasser => "À classer",
        }
    }
}

impl TryFrom<&str> for Category {
    type Error = VaultError;
    fn try_from(s: &str) -> Result<Self> {
        Category::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| VaultError::Data(format!("unknown document category {s:?}")))
    }
}

/// The label of a document whose type is unknown.
pub const UNCLASSIFIED_LABEL: &str = "À classer";

/// A document type of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentType {
    /// LOINC code, e.g. `11502-2`.
    pub code: String,
    /// French label, e.g. "CR d'examens biologiques".
    pub label: String,
    pub category: Category,
}

#[derive(Deserialize)]
struct TypeFile {
    #[serde(rename = "type")]
    types: Vec<RawType>,
}

#[derive(Deserialize)]
struct RawType {
    code: String,
    label: String,
    category: String,
}

/// The table of known document types.
#[derive(Debug, Clone)]
pub struct DocumentTypes {
    by_code: BTreeMap<String, DocumentType>,
}

const BUILTIN: &str = include_str!("../data/document-types.toml");

impl DocumentTypes {
    /// The table shipped with the crate.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN).expect("data/document-types.toml is valid (checked by a unit test)")
    }

    /// Parses a table in the format of `data/document-types.toml`.
    pub fn parse(text: &str) -> Result<Self> {
        let file: TypeFile =
            toml::from_str(text).map_err(|e| VaultError::Data(format!("document types: {e}")))?;
        let mut by_code = BTreeMap::new();
        for t in file.types {
            let category = Category::try_from(t.category.as_str())?;
            let code = t.code.trim().to_string();
            if by_code.contains_key(&code) {
                return Err(VaultError::Data(format!(
                    "document types: code {code} listed twice"
                )));
            }
            by_code.insert(
                code.clone(),
                DocumentType {
                    code,
                    label: t.label,
                    category,
                },
            );
        }
        Ok(Self { by_code })
    }

    pub fn get(&self, code: &str) -> Option<&DocumentType> {
        self.by_code.get(code.trim())
    }

    /// The type of a document given its code, or "à classer" (keeping the code) when the code
    /// is missing or not in the table.
    pub fn classify(&self, code: Option<&str>) -> DocumentType {
        let code = code.map(str::trim).filter(|c| !c.is_empty());
        match code.and_then(|c| self.get(c)) {
            Some(t) => t.clone(),
            None => DocumentType {
                code: code.unwrap_or_default().to_string(),
                label: UNCLASSIFIED_LABEL.to_string(),
                category: Category::AClasser,
            },
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &DocumentType> {
        self.by_code.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_has_the_common_codes() {
        let t = DocumentTypes::builtin();
        let cat = |c: &str| t.get(c).map(|d| d.category);
        assert_eq!(cat("11502-2"), Some(Category::Biologie));
        assert_eq!(cat("18748-4"), Some(Category::Imagerie));
        assert_eq!(cat("11490-0"), Some(Category::ComptesRendus));
        assert_eq!(cat("57833-6"), Some(Category::Prescriptions));
        assert_eq!(cat("34133-9"), Some(Category::ComptesRendus));
        assert_eq!(cat("11488-4"), Some(Category::ComptesRendus));
        assert_eq!(cat("60591-5"), Some(Category::ComptesRendus));
        assert_eq!(cat("11369-6"), Some(Category::Prevention));
        assert_eq!(cat("87273-9"), Some(Category::Prevention));
        assert_eq!(cat("34895-3"), Some(Category::Certificats));
        assert_eq!(t.get("11502-2").unwrap().label, "CR d'examens biologiques");
    }

    #[test]
    fn unknown_or_missing_codes_are_to_classify() {
        let t = DocumentTypes::builtin();
        let unknown = t.classify(Some("99999-9"));
        assert_eq!(unknown.category, Category::AClasser);
        assert_eq!(unknown.code, "99999-9");
        assert_eq!(unknown.label, UNCLASSIFIED_LABEL);
        assert_eq!(t.classify(None).category, Category::AClasser);
        assert_eq!(t.classify(Some(" ")).code, "");
    }

    #[test]
    fn a_bad_table_is_refused() {
        assert!(DocumentTypes::parse("[[type]]\ncode='1'\nlabel='x'\ncategory='nope'").is_err());
        let twice = "[[type]]\ncode='1'\nlabel='x'\ncategory='autres'\n".repeat(2);
        assert!(DocumentTypes::parse(&twice).is_err());
    }
}
