//! Password hashing (argon2id, RFC 9106) and application passwords.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::hashing::{self, Permit};
use crate::{DirectoryError, Result};

/// Shortest password accepted. Long passphrases are encouraged; complexity rules are not
/// imposed (NIST SP 800-63B §5.1.1.2).
pub const MIN_PASSWORD_LEN: usize = 8;

/// argon2id with the crate's defaults (m = 19 MiB, t = 2, p = 1: the OWASP baseline). Takes a
/// slot of the hashing gate first: [`DirectoryError::Busy`] if none comes free in time.
pub fn hash_password(password: &str) -> Result<String> {
    check_new_password(password)?;
    let permit = hashing::gate().enter().map_err(DirectoryError::from)?;
    hash_with(&permit, password)
}

fn check_new_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(DirectoryError::WeakPassword(
            "at least 8 characters are required",
        ));
    }
    if password.len() > 1024 {
        return Err(DirectoryError::WeakPassword("at most 1024 bytes"));
    }
    Ok(())
}

fn hash_with(_slot: &Permit<'_>, password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DirectoryError::Hashing(e.to_string()))
}

/// Checks `password` against a PHC string, in a slot of the hashing gate the caller holds (one
/// slot for all the verifications of a login: its password, then its application passwords).
pub fn verify_password(_slot: &Permit<'_>, password: &str, phc: &str) -> bool {
    // Bound the work an attacker can ask for: the hash is of at most 1 KiB of input.
    if password.len() > 1024 {
        return false;
    }
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Spends the time of one verification, so that an unknown account answers as slowly as a
/// wrong password (no account enumeration by timing).
pub fn burn_verification(slot: &Permit<'_>, password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    // In the slot already held: entering the gate again could wait for ourselves.
    let phc =
        DUMMY.get_or_init(|| hash_with(slot, "dummy-password-for-timing").unwrap_or_default());
    let _ = verify_password(slot, password, phc);
}

/// A random application password: 4 groups of 4 lowercase letters and digits (~82 bits),
/// easy to type into a phone's mail client.
pub fn generate_app_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        let slot = hashing::gate().enter().unwrap();
        assert!(verify_password(&slot, "correct horse", &phc));
        assert!(!verify_password(&slot, "correct horsf", &phc));
        assert!(!verify_password(&slot, "correct horse", "not a phc string"));
        // The dummy verification, made in the slot held, does not wait for another one.
        burn_verification(&slot, "anything");
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(
            hash_password("short"),
            Err(DirectoryError::WeakPassword(_))
        ));
    }

    #[test]
    fn app_passwords_are_random_and_well_formed() {
        let a = generate_app_password();
        let b = generate_app_password();
        assert_ne!(a, b);
        assert_eq!(a.len(), 19);
        assert_eq!(a.split('-').count(), 4);
    }
}
