//! Accounts: who may send, receive and log in.

use serde::{Deserialize, Serialize};

use mshub_store::AccountId;

use crate::{Address, DirectoryError, Ins, Result, Rpps};

/// A health profession, with its code in the national nomenclature (MOS/NOS "Profession",
/// TRE_G15) and its French label. The vault's access matrix is keyed by these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profession {
    /// Médecin
    Physician,
    /// Pharmacien
    Pharmacist,
    /// Chirurgien-dentiste
    Dentist,
    /// Sage-femme
    Midwife,
    /// Infirmier
    Nurse,
    /// Masseur-kinésithérapeute
    Physiotherapist,
    /// Manipulateur d'électroradiologie médicale
    RadiologyTechnician,
    /// Technicien de laboratoire médical
    LabTechnician,
}

impl Profession {
    pub const ALL: [Profession; 8] = [
        Profession::Physician,
        Profession::Pharmacist,
        Profession::Dentist,
        Profession::Midwife,
        Profession::Nurse,
        Profession::Physiotherapist,
        Profession::RadiologyTechnician,
        Profession::LabTechnician,
    ];

    /// Code of the profession in TRE_G15-ProfessionSante.
    pub fn code(self) -> &'static str {
        match self {
            Profession::Physician => "10",
            Profession::Pharmacist => "21",
            Profession::Dentist => "40",
            Profession::Midwife => "50",
            Profession::Nurse => "60",
            Profession::Physiotherapist => "70",
            Profession::RadiologyTechnician => "81",
            Profession::LabTechnician => "96",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Profession::Physician => "Médecin",
            Profession::Pharmacist => "Pharmacien",
            Profession::Dentist => "Chirurgien-dentiste",
            Profession::Midwife => "Sage-femme",
            Profession::Nurse => "Infirmier",
            Profession::Physiotherapist => "Masseur-kinésithérapeute",
            Profession::RadiologyTechnician => "Manipulateur d'électroradiologie médicale",
            Profession::LabTechnician => "Technicien de laboratoire médical",
        }
    }

    /// The kebab-case name used in the CLI and config (`physician`, `nurse`, …).
    pub fn name(self) -> &'static str {
        match self {
            Profession::Physician => "physician",
            Profession::Pharmacist => "pharmacist",
            Profession::Dentist => "dentist",
            Profession::Midwife => "midwife",
            Profession::Nurse => "nurse",
            Profession::Physiotherapist => "physiotherapist",
            Profession::RadiologyTechnician => "radiology-technician",
            Profession::LabTechnician => "lab-technician",
        }
    }
}

impl TryFrom<&str> for Profession {
    type Error = DirectoryError;
    fn try_from(s: &str) -> Result<Self> {
        Profession::ALL
            .into_iter()
            .find(|p| p.name() == s || p.code() == s)
            .ok_or_else(|| DirectoryError::InvalidField {
                field: "profession",
                reason: format!(
                    "{s:?} is none of: {}",
                    Profession::ALL.map(|p| p.name()).join(", ")
                ),
            })
    }
}

/// Sex as recorded with the INS (traits d'identité).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sex {
    #[serde(rename = "F")]
    Female,
    #[serde(rename = "M")]
    Male,
    #[serde(rename = "I")]
    Unknown,
}

impl TryFrom<&str> for Sex {
    type Error = DirectoryError;
    fn try_from(s: &str) -> Result<Self> {
        match s {
            "F" | "f" => Ok(Sex::Female),
            "M" | "m" => Ok(Sex::Male),
            "I" | "i" => Ok(Sex::Unknown),
            _ => Err(DirectoryError::InvalidField {
                field: "sex",
                reason: format!("{s:?}: expected F, M or I (indéterminé)"),
            }),
        }
    }
}

/// A calendar date of birth, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BirthDate {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl TryFrom<&str> for BirthDate {
    type Error = DirectoryError;
    fn try_from(s: &str) -> Result<Self> {
        let bad = || DirectoryError::InvalidBirthDate(s.to_string());
        let mut parts = s.trim().splitn(3, '-');
        let mut next = |len: usize| {
            parts
                .next()
                .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(bad)
        };
        let (year, month, day) = (next(4)?, next(2)?, next(2)?);
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return Err(bad()),
        };
        if !(1850..=2200).contains(&year) || day == 0 || day > days_in_month {
            return Err(bad());
        }
        Ok(BirthDate {
            year,
            month: month as u8,
            day: day as u8,
        })
    }
}

impl TryFrom<String> for BirthDate {
    type Error = DirectoryError;
    fn try_from(s: String) -> Result<Self> {
        BirthDate::try_from(s.as_str())
    }
}

impl From<BirthDate> for String {
    fn from(d: BirthDate) -> String {
        d.to_string()
    }
}

impl std::fmt::Display for BirthDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// What an account is, with what the kind requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AccountKind {
    /// A patient, identified by INS; address `<INS>@patient.<hub domain>`.
    Patient {
        ins: Ins,
        given_name: String,
        family_name: String,
        birth_date: BirthDate,
        sex: Sex,
    },
    /// A health professional identified by RPPS.
    Professional {
        rpps: Rpps,
        given_name: String,
        family_name: String,
        profession: Profession,
        /// Free text, e.g. "médecine générale" (or a code of the national nomenclature).
        specialty: String,
        /// Where they practise (for patients searching the directory); empty if not given.
        #[serde(default)]
        city: String,
    },
    /// A shared mailbox of an organisation (a lab's system, a service), used by its members.
    Organisation { name: String, members: Vec<Address> },
    /// The mailbox of an application referenced in the catalogue.
    Application { name: String },
}

impl AccountKind {
    pub fn label(&self) -> &'static str {
        match self {
            AccountKind::Patient { .. } => "patient",
            AccountKind::Professional { .. } => "professional",
            AccountKind::Organisation { .. } => "organisation",
            AccountKind::Application { .. } => "application",
        }
    }

    pub fn is_patient(&self) -> bool {
        matches!(self, AccountKind::Patient { .. })
    }

    pub fn display_name(&self) -> String {
        match self {
            AccountKind::Patient {
                given_name,
                family_name,
                ..
            }
            | AccountKind::Professional {
                given_name,
                family_name,
                ..
            } => format!("{given_name} {family_name}"),
            AccountKind::Organisation { name, .. } | AccountKind::Application { name } => {
                name.clone()
            }
        }
    }
}

/// A password for a mail client, shown once at creation, revocable on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPassword {
    pub id: u32,
    pub label: String,
    /// argon2id PHC string.
    pub hash: String,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub address: Address,
    pub kind: AccountKind,
    /// argon2id PHC string; `None` until a password is set (an account may be SSO-only).
    pub password_hash: Option<String>,
    #[serde(default)]
    pub app_passwords: Vec<AppPassword>,
    pub disabled: bool,
    pub created: i64,
    /// Where the space stands in its life (patients created from a roster start pending).
    pub lifecycle: crate::Lifecycle,
    /// SHA-256 of the one-time activation code (hex), while the patient has not activated
    /// the space (see [`crate::lifecycle`]).
    pub activation_code: Option<String>,
}

impl Account {
    /// Whether the account may log in and be used: not disabled, and its space open.
    pub fn is_usable(&self) -> bool {
        !self.disabled && self.lifecycle == crate::Lifecycle::Active
    }
}
