//! The hub's Ed25519 signature of prescriptions, and the link the QR code carries.
//!
//! Signed message: `"mshub-ordonnance-v1" NUL id NUL SHA-256(canonical content)` (32 raw
//! bytes), so that the signature binds the id to exactly the content issued. The link is
//! `<public_url>/ordonnance/<id>?h=<hash>&s=<signature>`, both base64url without padding:
//! about 190 characters, a QR code of version 9 or so that any phone camera reads.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use crate::{PrescriptionError, PrescriptionId, Refusal, Result};

const DOMAIN: &[u8] = b"mshub-ordonnance-v1";
const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// The hub's prescription signing key (Ed25519), from `[prescription] signing_key`.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

fn signed_message(id: &PrescriptionId, hash: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 2 + id.as_str().len() + 32);
    m.extend_from_slice(DOMAIN);
    m.push(0);
    m.extend_from_slice(id.as_str().as_bytes());
    m.push(0);
    m.extend_from_slice(hash);
    m
}

impl SigningKey {
    /// Reads a PEM `PRIVATE KEY` (PKCS#8, as `openssl genpkey -algorithm ed25519` or
    /// [`SigningKey::generate_file`] write it).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PrescriptionError::Key(format!("cannot read {}: {e}", path.display())))?;
        Self::from_pem(&text)
            .map_err(|e| PrescriptionError::Key(format!("{}: {e}", path.display())))
    }

    pub fn from_pem(text: &str) -> std::result::Result<Self, String> {
        let body = text
            .split_once(PEM_BEGIN)
            .and_then(|(_, rest)| rest.split_once(PEM_END))
            .map(|(b64, _)| b64)
            .ok_or("not a PEM PRIVATE KEY")?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .map_err(|e| format!("bad base64: {e}"))?;
        Self::from_pkcs8(&der)
    }

    pub fn from_pkcs8(der: &[u8]) -> std::result::Result<Self, String> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(|pair| Self { pair })
            .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))
    }

    /// A new key as PEM (PKCS#8 v2).
    pub fn generate_pem() -> Result<String> {
        let rng = ring::rand::SystemRandom::new();
        let der = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| PrescriptionError::Key("the system random generator failed".into()))?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let mut pem = String::from(PEM_BEGIN);
        pem.push('\n');
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str(PEM_END);
        pem.push('\n');
        Ok(pem)
    }

    /// Writes a new key to `path` (mode 0600, never over an existing file).
    pub fn generate_file(path: &Path) -> Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let pem = Self::generate_pem()?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                PrescriptionError::Key(format!("cannot create {}: {e}", path.display()))
            })?;
        file.write_all(pem.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| PrescriptionError::Key(format!("cannot write {}: {e}", path.display())))
    }

    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    pub fn sign(&self, id: &PrescriptionId, hash: &[u8; 32]) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(self.pair.sign(&signed_message(id, hash)).as_ref());
        sig
    }

    pub fn verify(&self, link: &Link) -> bool {
        UnparsedPublicKey::new(&ED25519, self.public_key())
            .verify(&signed_message(&link.id, &link.hash), &link.signature)
            .is_ok()
    }
}

/// What the QR code carries: the id, the content hash and the hub's signature over both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: PrescriptionId,
    pub hash: [u8; 32],
    pub signature: [u8; 64],
}

impl Link {
    /// The path and query the QR's URL opens on the hub.
    pub fn path_and_query(&self) -> String {
        format!(
            "/ordonnance/{}?h={}&s={}",
            self.id,
            URL_SAFE_NO_PAD.encode(self.hash),
            URL_SAFE_NO_PAD.encode(self.signature)
        )
    }

    /// The whole URL, on the hub's public address (`https://host[:port]`).
    pub fn url(&self, public_url: &str) -> String {
        format!(
            "{}{}",
            public_url.trim_end_matches('/'),
            self.path_and_query()
        )
    }

    /// Reads the parts of a scanned link. Anything the hub did not write is a forgery.
    pub fn parse(id: &str, hash: &str, signature: &str) -> std::result::Result<Self, Refusal> {
        let id = PrescriptionId::try_from(id).map_err(|_| Refusal::Forged)?;
        let decode = |s: &str, len: usize| {
            URL_SAFE_NO_PAD
                .decode(s)
                .ok()
                .filter(|b| b.len() == len)
                .ok_or(Refusal::Forged)
        };
        let h = decode(hash, 32)?;
        let s = decode(signature, 64)?;
        let mut link = Link {
            id,
            hash: [0; 32],
            signature: [0; 64],
        };
        link.hash.copy_from_slice(&h);
        link.signature.copy_from_slice(&s);
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_verifies_only_unchanged() {
        let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        let id = PrescriptionId::random().unwrap();
        let hash = [7u8; 32];
        let link = Link {
            id: id.clone(),
            hash,
            signature: key.sign(&id, &hash),
        };
        assert!(key.verify(&link));
        let url = link.url("https://hub.example:8443/");
        assert!(
            url.starts_with("https://hub.example:8443/ordonnance/"),
            "{url}"
        );
        assert!(url.len() <= 300, "{} characters", url.len());

        let mut other_hash = link.clone();
        other_hash.hash[0] ^= 1;
        assert!(!key.verify(&other_hash));
        let mut other_sig = link.clone();
        other_sig.signature[10] ^= 1;
        assert!(!key.verify(&other_sig));
        let other_id = Link {
            id: PrescriptionId::random().unwrap(),
            ..link.clone()
        };
        assert!(!key.verify(&other_id));
        let other_key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        assert!(!other_key.verify(&link));
    }

    #[test]
    fn malformed_links_are_forgeries() {
        assert_eq!(Link::parse("nope", "", ""), Err(Refusal::Forged));
        let id = PrescriptionId::random().unwrap();
        assert_eq!(
            Link::parse(id.as_str(), "AAAA", &"A".repeat(86)),
            Err(Refusal::Forged)
        );
    }

    #[test]
    fn a_key_file_is_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rx.pem");
        SigningKey::generate_file(&path).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(SigningKey::load(&path).is_ok());
        assert!(SigningKey::generate_file(&path).is_err());
        std::fs::write(&path, "garbage").unwrap();
        assert!(SigningKey::load(&path).is_err());
    }
}
