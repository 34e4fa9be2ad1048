//! Mail addresses and domain names of the trust space.

use serde::{Deserialize, Serialize};

use crate::{DirectoryError, Result};

/// A DNS domain name, lowercase, validated (RFC 1035 §2.3.1 letter-digit-hyphen labels).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

impl Domain {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `self` is `other` or one of its subdomains.
    pub fn is_within(&self, other: &Domain) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.ends_with(&other.0)
                && self.0.as_bytes()[self.0.len() - other.0.len() - 1] == b'.')
    }
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

impl TryFrom<&str> for Domain {
    type Error = DirectoryError;
    fn try_from(value: &str) -> Result<Self> {
        let invalid = |reason: &str| DirectoryError::InvalidDomain {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let d = value.trim().trim_end_matches('.').to_ascii_lowercase();
        if d.is_empty() || d.len() > 253 {
            return Err(invalid("a domain has 1 to 253 characters"));
        }
        if !d.contains('.') {
            return Err(invalid(
                "a domain of the trust space has at least two labels",
            ));
        }
        for label in d.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(invalid("each label has 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(invalid("labels hold only letters, digits and hyphens"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a label cannot start or end with a hyphen"));
            }
        }
        Ok(Domain(d))
    }
}

impl TryFrom<String> for Domain {
    type Error = DirectoryError;
    fn try_from(value: String) -> Result<Self> {
        Domain::try_from(value.as_str())
    }
}

impl From<Domain> for String {
    fn from(d: Domain) -> String {
        d.0
    }
}

/// A mailbox address `local@domain`, lowercase. The local part is an RFC 5321 §4.1.2
/// dot-string of atoms, UTF-8 allowed (RFC 6531); quoted local parts are not used in the trust
/// space. Domains are ASCII (an IDN is given in its A-label form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address {
    full: String,
    at: usize,
}

impl Address {
    pub fn as_str(&self) -> &str {
        &self.full
    }

    pub fn local_part(&self) -> &str {
        &self.full[..self.at]
    }

    pub fn domain(&self) -> Domain {
        Domain(self.full[self.at + 1..].to_string())
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.full)
    }
}

// RFC 5322 §3.2.3 atext, extended by RFC 6532 §3.2 with non-ASCII characters (SMTPUTF8).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
}

impl TryFrom<&str> for Address {
    type Error = DirectoryError;
    fn try_from(value: &str) -> Result<Self> {
        let invalid = |reason: &str| DirectoryError::InvalidAddress {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let s = value.trim();
        let s = s
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(s);
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(invalid("an address is local-part@domain"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(invalid("the local part has 1 to 64 characters"));
        }
        if local
            .split('.')
            .any(|atom| atom.is_empty() || !atom.chars().all(is_atext))
        {
            return Err(invalid(
                "the local part is dot-separated atoms of letters, digits and !#$%&'*+-/=?^_`{|}~",
            ));
        }
        let domain = Domain::try_from(domain).map_err(|e| match e {
            DirectoryError::InvalidDomain { reason, .. } => invalid(&reason),
            other => other,
        })?;
        // Local parts are matched case-insensitively here (RFC 5321 §2.4 leaves it to the
        // receiving host); non-ASCII ones too.
        let local = local.to_lowercase();
        Ok(Address {
            at: local.len(),
            full: format!("{local}@{domain}"),
        })
    }
}

impl TryFrom<String> for Address {
    type Error = DirectoryError;
    fn try_from(value: String) -> Result<Self> {
        Address::try_from(value.as_str())
    }
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_to_lowercase() {
        let a = Address::try_from("<Dr.Martin@Hopital.MSHUB.test>").unwrap();
        assert_eq!(a.as_str(), "dr.martin@hopital.mshub.test");
        assert_eq!(a.local_part(), "dr.martin");
        assert_eq!(a.domain().as_str(), "hopital.mshub.test");
    }

    #[test]
    fn utf8_local_parts_are_accepted_and_lowercased() {
        let a = Address::try_from("Élodie.Rousseau@hopital.mshub.test").unwrap();
        assert_eq!(a.as_str(), "élodie.rousseau@hopital.mshub.test");
        assert_eq!(a.local_part(), "élodie.rousseau");
        assert!(Address::try_from("é\u{0}x@hopital.mshub.test").is_err());
        assert!(Address::try_from("é x@hopital.mshub.test").is_err());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "no-at-sign",
            "@hopital.mshub.test",
            "a..b@hopital.mshub.test",
            ".a@hopital.mshub.test",
            "a b@hopital.mshub.test",
            "a@localhost",
            "a@-bad.test",
            "a@bad_.test",
            "a@b..test",
            "\"quoted\"@hopital.mshub.test",
        ] {
            assert!(Address::try_from(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn subdomains_are_within_their_parent() {
        let parent = Domain::try_from("mshub.test").unwrap();
        assert!(Domain::try_from("patient.mshub.test")
            .unwrap()
            .is_within(&parent));
        assert!(parent.is_within(&parent));
        assert!(!Domain::try_from("evilmshub.test")
            .unwrap()
            .is_within(&parent));
    }
}
