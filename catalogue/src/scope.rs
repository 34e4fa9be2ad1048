//! Scopes: what an application may do in the patient's space. Written as in OAuth 2.0
//! (RFC 6749 §3.3: space-separated tokens), e.g. `measurements:write documents:read:prescriptions`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::CatalogueError;

/// The document categories of the vault (`mshub_vault::Category::name`), which
/// `documents:read:<category>` may name, plus `all`. A test checks the list against the vault.
pub const DOCUMENT_CATEGORIES: [&str; 8] = [
    "comptes-rendus",
    "imagerie",
    "biologie",
    "prescriptions",
    "prevention",
    "certificats",
    "autres",
    "a-classer",
];

/// One right an application asks for and the patient grants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `measurements:write`: add measurements (weight, glucose, blood pressure…).
    MeasurementsWrite,
    /// `measurements:read`: read the measurements of the patient's profile.
    MeasurementsRead,
    /// `documents:read:<category>`: read the vault's documents of one category (or `all`),
    /// within the vault's visibility rules.
    DocumentsRead(String),
    /// `agenda:read`: read the patient's appointments.
    AgendaRead,
    /// `agenda:write`: propose appointments in the patient's agenda.
    AgendaWrite,
    /// `profile:read`: the patient's name and birth date, and the medical profile.
    ProfileRead,
}

impl Scope {
    /// What the patient reads on the consent page, in plain French.
    pub fn label_fr(&self) -> String {
        match self {
            Scope::MeasurementsWrite => {
                "Ajouter des mesures (poids, glycémie, tension, pouls, pas) à votre profil".into()
            }
            Scope::MeasurementsRead => {
                "Consulter les mesures (poids, glycémie, tension…) de votre profil".into()
            }
            Scope::DocumentsRead(c) if c == "all" => {
                "Lire tous vos documents de santé (selon leurs règles de visibilité)".into()
            }
            Scope::DocumentsRead(c) => format!(
                "Lire vos documents de la catégorie « {} »",
                category_label_fr(c)
            ),
            Scope::AgendaRead => "Consulter vos rendez-vous".into(),
            Scope::AgendaWrite => "Ajouter des rendez-vous à votre agenda".into(),
            Scope::ProfileRead => {
                "Connaître votre identité (nom, prénom, date de naissance) et lire votre profil médical (antécédents, allergies, traitements, vaccinations, directives anticipées, personnes à prévenir)".into()
            }
        }
    }

    /// Whether a grant of `self` allows what `needed` asks (`documents:read:all` covers every
    /// category).
    pub fn covers(&self, needed: &Scope) -> bool {
        match (self, needed) {
            (Scope::DocumentsRead(a), Scope::DocumentsRead(_)) if a == "all" => true,
            _ => self == needed,
        }
    }

    /// Parses an OAuth `scope` parameter (space-separated, RFC 6749 §3.3), without duplicates.
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, CatalogueError> {
        let mut scopes = Vec::new();
        for word in s.split(' ').filter(|w| !w.is_empty()) {
            let scope: Scope = word.parse()?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Ok(scopes)
    }

    /// The OAuth `scope` string of a list.
    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn category_label_fr(name: &str) -> &str {
    match name {
        "comptes-rendus" => "Comptes rendus",
        "imagerie" => "Imagerie",
        "biologie" => "Biologie",
        "prescriptions" => "Prescriptions",
        "prevention" => "Prévention",
        "certificats" => "Certificats",
        "autres" => "Autres",
        "a-classer" => "À classer",
        other => other,
    }
}

impl FromStr for Scope {
    type Err = CatalogueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "measurements:write" => Scope::MeasurementsWrite,
            "measurements:read" => Scope::MeasurementsRead,
            "agenda:read" => Scope::AgendaRead,
            "agenda:write" => Scope::AgendaWrite,
            "profile:read" => Scope::ProfileRead,
            _ => match s.strip_prefix("documents:read:") {
                Some(c) if c == "all" || DOCUMENT_CATEGORIES.contains(&c) => {
                    Scope::DocumentsRead(c.to_string())
                }
                _ => return Err(CatalogueError::UnknownScope(s.chars().take(80).collect())),
            },
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::MeasurementsWrite => f.write_str("measurements:write"),
            Scope::MeasurementsRead => f.write_str("measurements:read"),
            Scope::DocumentsRead(c) => write!(f, "documents:read:{c}"),
            Scope::AgendaRead => f.write_str("agenda:read"),
            Scope::AgendaWrite => f.write_str("agenda:write"),
            Scope::ProfileRead => f.write_str("profile:read"),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_unknown_ones_are_refused() {
        for s in [
            "measurements:write",
            "measurements:read",
            "documents:read:prescriptions",
            "documents:read:all",
            "agenda:read",
            "agenda:write",
            "profile:read",
        ] {
            assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }
        for bad in [
            "",
            "documents:read",
            "documents:read:secret",
            "admin",
            "MEASUREMENTS:WRITE",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
    }

    #[test]
    fn all_documents_covers_each_category() {
        let all = Scope::DocumentsRead("all".into());
        assert!(all.covers(&Scope::DocumentsRead("biologie".into())));
        assert!(!Scope::DocumentsRead("biologie".into()).covers(&all));
        assert!(!all.covers(&Scope::MeasurementsWrite));
    }

    #[test]
    fn labels_are_french() {
        assert_eq!(
            Scope::DocumentsRead("prescriptions".into()).label_fr(),
            "Lire vos documents de la catégorie « Prescriptions »"
        );
        assert!(Scope::MeasurementsWrite
            .label_fr()
            .starts_with("Ajouter des mesures"));
    }

    #[test]
    fn scope_lists_parse_like_oauth() {
        let list =
            Scope::parse_list("measurements:write  agenda:write measurements:write").unwrap();
        assert_eq!(list, vec![Scope::MeasurementsWrite, Scope::AgendaWrite]);
        assert_eq!(Scope::join(&list), "measurements:write agenda:write");
    }
}
