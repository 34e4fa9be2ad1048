//! Identifiant National de Santé (INS): the patient's national health identifier, here in its
//! NIR-based form of 15 characters: 13 for the number and 2 for the key.

use serde::{Deserialize, Serialize};

use crate::{DirectoryError, Result};

/// Identifiant National de Santé (INS), validated: 13 characters (digits, or `2A`/`2B` for the
/// Corsican departments at positions 6–7) and a 2-digit key = 97 − (number mod 97), where
/// `2A` counts as 19 and `2B` as 18 in the number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ins(String);

impl Ins {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// 1 for men, 2 for women (3, 4, 7, 8 for provisional and foreign-born numbers).
    pub fn sex_digit(&self) -> u8 {
        self.0.as_bytes()[0] - b'0'
    }

    /// The two-digit year of birth (positions 2–3).
    pub fn birth_year_2(&self) -> u8 {
        self.0[1..3].parse().unwrap_or(0)
    }

    /// The month of birth (positions 4–5); 20–42 and 50+ mean unknown in real NIRs.
    pub fn birth_month(&self) -> u8 {
        self.0[3..5].parse().unwrap_or(0)
    }
}

impl std::fmt::Display for Ins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

/// The key of a 13-character NIR body, or `None` if it is not one.
pub fn ins_key(body: &str) -> Option<u8> {
    if body.len() != 13 || !body.is_ascii() {
        return None;
    }
    let department = &body[5..7];
    let digits = match department {
        "2A" | "2a" => format!("{}19{}", &body[..5], &body[7..]),
        "2B" | "2b" => format!("{}18{}", &body[..5], &body[7..]),
        _ => body.to_string(),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some((97 - n % 97) as u8)
}

impl TryFrom<&str> for Ins {
    type Error = DirectoryError;
    fn try_from(value: &str) -> Result<Self> {
        let invalid = |reason: &str| DirectoryError::InvalidIns {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let s = value.trim().to_ascii_uppercase();
        if s.len() != 15 || !s.is_ascii() {
            return Err(invalid("an INS has 15 characters (13 + a 2-digit key)"));
        }
        if !matches!(s.as_bytes()[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8') {
            return Err(invalid("the first digit (sex) must be 1, 2, 3, 4, 7 or 8"));
        }
        let (body, key) = s.split_at(13);
        let Some(expected) = ins_key(body) else {
            return Err(invalid(
                "characters 1-13 must be digits (2A or 2B allowed for the department)",
            ));
        };
        let key: u8 = key
            .parse()
            .map_err(|_| invalid("the last two characters (key) must be digits"))?;
        if key != expected {
            return Err(DirectoryError::InvalidIns {
                value: value.to_string(),
                reason: format!("wrong key {key:02}: the number gives {expected:02}"),
            });
        }
        Ok(Ins(s))
    }
}

impl TryFrom<String> for Ins {
    type Error = DirectoryError;
    fn try_from(value: String) -> Result<Self> {
        Ins::try_from(value.as_str())
    }
}

impl From<Ins> for String {
    fn from(i: Ins) -> String {
        i.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ins_are_accepted() {
        for ins in [
            "284057511204339", // the demo patient
            "185052A00412356", // Corse-du-Sud: 2A counts as 19
            "290092B01234569", // Haute-Corse: 2B counts as 18
            "185052a00412356", // lower case department is normalised
        ] {
            let parsed = Ins::try_from(ins).unwrap_or_else(|e| panic!("{ins}: {e}"));
            assert_eq!(parsed.as_str(), ins.to_ascii_uppercase());
        }
        let demo = Ins::try_from("284057511204339").unwrap();
        assert_eq!(
            (demo.sex_digit(), demo.birth_year_2(), demo.birth_month()),
            (2, 84, 5)
        );
    }

    #[test]
    fn wrong_key_is_refused_with_the_expected_key() {
        let err = Ins::try_from("284057511204338").unwrap_err().to_string();
        assert!(
            err.contains("wrong key 38") && err.contains("gives 39"),
            "{err}"
        );
    }

    #[test]
    fn corsica_key_uses_19_and_18_not_the_letters() {
        // Same body computed as if 2A were 20 gives another key, which must be refused.
        let as_if_20 = 97 - 1_850_520_004_123u64 % 97;
        assert_ne!(as_if_20, 56);
        assert!(Ins::try_from(format!("185052A004123{as_if_20:02}").as_str()).is_err());
        // 2A with the key of 2B's rule is refused too.
        assert!(Ins::try_from("185052B00412356").is_err());
    }

    #[test]
    fn malformed_ins_are_refused() {
        for bad in [
            "",
            "28405751120433",   // 14
            "2840575112043391", // 16
            "584057511204339",  // sex digit 5
            "28405751120X339",  // letter in the number
            "2840575112043AB",  // letters in the key
            "2840575112043３9", // non-ASCII digit
            "284052C11204339",  // 2C is no department
        ] {
            assert!(Ins::try_from(bad).is_err(), "{bad:?} accepted");
        }
    }
}
