//! The prescription as issued: who prescribed what to whom, and until when (ordonnance).

use serde::{Deserialize, Serialize};

use crate::{PrescriptionError, Result};

/// Crockford's base-32 alphabet: no I, L, O, U, so an id read aloud or typed is unambiguous.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters of an id: 16 base-32 digits, 80 random bits.
pub const ID_LEN: usize = 16;

/// The hub's number of an issued prescription: 80 random bits in Crockford base 32, so that
/// ids cannot be guessed from one another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PrescriptionId(String);

impl PrescriptionId {
    pub fn random() -> Result<Self> {
        use ring::rand::{SecureRandom, SystemRandom};
        let mut bytes = [0u8; 10];
        SystemRandom::new().fill(&mut bytes).map_err(|_| {
            PrescriptionError::Internal("the system random generator failed".into())
        })?;
        let mut bits: u128 = 0;
        for b in bytes {
            bits = (bits << 8) | u128::from(b);
        }
        let id = (0..ID_LEN)
            .rev()
            .map(|i| CROCKFORD[((bits >> (i * 5)) & 31) as usize] as char)
            .collect();
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for PrescriptionId {
    type Error = PrescriptionError;
    fn try_from(s: &str) -> Result<Self> {
        if s.len() == ID_LEN && s.bytes().all(|b| CROCKFORD.contains(&b)) {
            Ok(Self(s.to_string()))
        } else {
            Err(PrescriptionError::BadId)
        }
    }
}

impl TryFrom<String> for PrescriptionId {
    type Error = PrescriptionError;
    fn try_from(s: String) -> Result<Self> {
        Self::try_from(s.as_str())
    }
}

impl From<PrescriptionId> for String {
    fn from(id: PrescriptionId) -> String {
        id.0
    }
}

impl std::fmt::Display for PrescriptionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The prescriber as the directory knows it (prescripteur).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prescriber {
    /// Numéro RPPS.
    pub rpps: String,
    /// "Dr Jean Martin".
    pub name: String,
    /// French label of the profession, e.g. "Médecin".
    pub profession: String,
    /// Free text, e.g. "médecine générale".
    pub specialty: String,
    /// The prescriber's health mail address.
    pub address: String,
}

/// The patient as the directory knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    /// Identifiant National de Santé (INS).
    pub ins: String,
    pub name: String,
    /// YYYY-MM-DD.
    pub birth_date: String,
}

/// One line of the prescription: a drug, how to take it, for how long, how much per
/// dispensing and how many renewals (renouvellements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Drug name, strength and form, e.g. "Amoxicilline 1 g, comprimé".
    pub drug: String,
    /// Posology, e.g. "1 comprimé matin et soir".
    pub dose: String,
    /// Duration of the treatment, e.g. "7 jours".
    pub duration: String,
    /// Units (boxes) to deliver at each dispensing.
    pub quantity: u32,
    /// Dispensings allowed after the first one.
    pub renewals: u8,
}

impl Line {
    /// Dispensings this line allows: the first one and its renewals.
    pub fn fills(&self) -> u32 {
        1 + u32::from(self.renewals)
    }
}

/// An issued prescription: the content the hub signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prescription {
    pub id: PrescriptionId,
    /// Unix time of issuing.
    pub issued_at: i64,
    pub prescriber: Prescriber,
    pub patient: Patient,
    /// Date of the prescription, YYYY-MM-DD.
    pub date: String,
    /// Last day a dispensing is allowed, YYYY-MM-DD.
    pub valid_until: String,
    pub lines: Vec<Line>,
}

impl Prescription {
    /// The canonical encoding the signature covers (through its SHA-256): the JSON of this
    /// struct, fields in declaration order, no whitespace. Deterministic for given values.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a prescription serialises")
    }

    /// SHA-256 of [`Prescription::canonical`].
    pub fn content_hash(&self) -> [u8; 32] {
        let mut h = [0u8; 32];
        h.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &self.canonical()).as_ref());
        h
    }
}

/// A calendar day, for validity: days since 1970-01-01 and back (civil calendar, UTC).
pub mod day {
    /// Days since 1970-01-01 of a YYYY-MM-DD date, if it is a real date.
    pub fn parse(s: &str) -> Option<i64> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
            return None;
        }
        Some(from_civil(y, m, d))
    }

    fn days_in_month(y: i64, m: i64) -> i64 {
        match m {
            2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// Howard Hinnant's `days_from_civil`.
    fn from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// Howard Hinnant's `civil_from_days`.
    pub fn civil(days: i64) -> (i64, u32, u32) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d)
    }

    pub fn format(days: i64) -> String {
        let (y, m, d) = civil(days);
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// The day of a Unix time, in Paris (UTC+1, or UTC+2 from the last Sunday of March to the
    /// last Sunday of October, EU rule), where prescriptions are dated.
    pub fn of_unix(t: i64) -> i64 {
        let utc_day = t.div_euclid(86_400);
        let (y, _, _) = civil(utc_day);
        let last_sunday = |month: i64| {
            let end = from_civil(y, month, 31);
            // 1970-01-01 was a Thursday: weekday 0 = Sunday at day 3.
            end - (end - 3).rem_euclid(7)
        };
        let summer_start = last_sunday(3) * 86_400 + 3600;
        let summer_end = last_sunday(10) * 86_400 + 3600;
        let offset = if (summer_start..summer_end).contains(&t) {
            7200
        } else {
            3600
        };
        (t + offset).div_euclid(86_400)
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

    /// "26 novembre 2026" for "2026-11-26"; the input as it is if it is no date.
    pub fn french(date: &str) -> String {
        match parse(date) {
            Some(days) => {
                let (y, m, d) = civil(days);
                let day = if d == 1 {
                    "1er".to_string()
                } else {
                    d.to_string()
                };
                format!("{day} {} {y}", MONTHS[(m - 1) as usize])
            }
            None => date.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_crockford_and_checked() {
        let a = PrescriptionId::random().unwrap();
        let b = PrescriptionId::random().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), ID_LEN);
        assert!(PrescriptionId::try_from(a.as_str()).is_ok());
        assert!(
            PrescriptionId::try_from("0123456789ABCDEI").is_err(),
            "I is not Crockford"
        );
        assert!(PrescriptionId::try_from("0123456789abcdef").is_err());
        assert!(PrescriptionId::try_from("0123").is_err());
    }

    #[test]
    fn days_round_trip_and_reject_impossible_dates() {
        assert_eq!(day::parse("1970-01-01"), Some(0));
        assert_eq!(
            day::parse("2024-02-29").map(day::format).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(day::parse("2023-02-29"), None);
        assert_eq!(day::parse("2026-13-01"), None);
        assert_eq!(day::parse("26-11-2026"), None);
        assert_eq!(
            day::format(day::parse("2026-11-26").unwrap() + 90),
            "2027-02-24"
        );
        assert_eq!(day::french("2026-11-01"), "1er novembre 2026");
        assert_eq!(day::french("2026-08-15"), "15 août 2026");
    }

    #[test]
    fn paris_days_follow_summer_time() {
        // 2026-07-01 22:30 UTC is already 2 July in Paris (UTC+2).
        let t = day::parse("2026-07-01").unwrap() * 86_400 + 22 * 3600 + 1800;
        assert_eq!(day::format(day::of_unix(t)), "2026-07-02");
        // 2026-01-01 22:30 UTC is still 1 January (UTC+1).
        let t = day::parse("2026-01-01").unwrap() * 86_400 + 22 * 3600 + 1800;
        assert_eq!(day::format(day::of_unix(t)), "2026-01-01");
    }
}
