//! Répertoire Partagé des Professionnels de Santé (RPPS) number: the national identifier of a
//! health professional.

use serde::{Deserialize, Serialize};

use crate::{DirectoryError, Result};

/// Numéro RPPS: 11 digits, the last one a Luhn check digit over the first ten.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rpps(String);

impl Rpps {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Rpps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

/// Luhn (ISO/IEC 7812-1 annex B): doubling every second digit from the right.
fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

impl TryFrom<&str> for Rpps {
    type Error = DirectoryError;
    fn try_from(value: &str) -> Result<Self> {
        let invalid = |reason: &str| DirectoryError::InvalidRpps {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let s = value.trim();
        if s.len() != 11 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("an RPPS number has exactly 11 digits"));
        }
        if !luhn_valid(s) {
            return Err(invalid("the check digit (Luhn) is wrong"));
        }
        Ok(Rpps(s.to_string()))
    }
}

impl TryFrom<String> for Rpps {
    type Error = DirectoryError;
    fn try_from(value: String) -> Result<Self> {
        Rpps::try_from(value.as_str())
    }
}

impl From<Rpps> for String {
    fn from(r: Rpps) -> String {
        r.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_rpps_are_accepted() {
        for ok in ["10003456786", "10000000009", "81000000000", " 10003456786 "] {
            assert!(Rpps::try_from(ok).is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn wrong_check_digit_is_refused() {
        let err = Rpps::try_from("10003456787").unwrap_err().to_string();
        assert!(err.contains("check digit"), "{err}");
    }

    #[test]
    fn wrong_length_or_characters_are_refused() {
        for bad in [
            "",
            "1000345678",
            "100034567860",
            "1000345678A",
            "10003-56786",
        ] {
            let err = Rpps::try_from(bad).unwrap_err().to_string();
            assert!(err.contains("11 digits"), "{bad:?}: {err}");
        }
    }
}
