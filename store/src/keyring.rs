//! Encryption at rest (DESIGN §5). Every blob is an OpenPGP message encrypted to the key of the
//! account that owns it; each account's secret key is itself sealed with the operator's master
//! key. A copy of the data directory without the master key reveals no message or document.
//!
//! Unsealed account keys are cached in memory: unsealing costs a key derivation and parsing,
//! opening a blob should cost one public-key decryption.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::crypto::{Password, SessionKey};
use openpgp::packet::key::{SecretParts, UnspecifiedRole};
use openpgp::packet::{Key, PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageStructure, VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Compressor, Encryptor, LiteralWriter, Message};
use openpgp::serialize::SerializeInto;
use openpgp::types::{CompressionAlgorithm, SymmetricAlgorithm};
use openpgp::{Cert, KeyHandle};
use sequoia_openpgp as openpgp;

use crate::backend::{Backend, Batch, Commit, Tree};
use crate::{AccountId, Result, StoreError};

const POLICY: &StandardPolicy = &StandardPolicy::new();
const KEYS: Tree = Tree("account-key");
const META: Tree = Tree("meta");
const MASTER_CHECK: &[u8] = b"master-key-check";
const MASTER_CHECK_PLAINTEXT: &[u8] = b"mshub master key check v1";
/// Blobs smaller than this are sealed without compression (see `write_literal`).
const COMPRESS_FROM: usize = 32 * 1024;

/// The operator's master key: protects every account's secret key. Its `Debug` is redacted.
#[derive(Clone)]
pub struct MasterKey(Password);

/// Room for the sealed form of `plain_len` bytes when it does not compress (a PDF, a photo):
/// OpenPGP's framing and tags add well under 2 %. A buffer that starts smaller is copied as it
/// grows (twice for a 10 MiB PDF); one that is too large for compressible text costs only
/// address space, as untouched pages are never committed.
fn sealed_capacity(plain_len: usize) -> usize {
    plain_len + plain_len / 64 + 1024
}

impl MasterKey {
    /// Fewer than 32 characters is refused: the master key is not a human password but the
    /// root of every encryption at rest, and is expected to be random (`mshub demo` makes one).
    pub fn new(secret: &str) -> Result<Self> {
        let secret = secret.trim();
        if secret.chars().count() < 32 {
            return Err(StoreError::WeakMasterKey(secret.chars().count()));
        }
        Ok(Self(Password::from(secret)))
    }

    /// A fresh random master key (64 hex digits).
    pub fn generate() -> String {
        let mut bytes = [0u8; 32];
        openpgp::crypto::random(&mut bytes).expect("the system random generator is available");
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

struct Unsealed {
    cert: Cert,
    secret: Key<SecretParts, UnspecifiedRole>,
}

pub(crate) struct Keyring {
    kv: Arc<dyn Backend>,
    master: MasterKey,
    cache: Mutex<HashMap<AccountId, Arc<Unsealed>>>,
}

fn crypto(e: impl std::fmt::Display) -> StoreError {
    StoreError::Crypto(e.to_string())
}

impl Keyring {
    /// Checks the master key against the data directory (a small sealed record written on first
    /// use), so a wrong key fails at start with a clear error rather than on the first read.
    pub(crate) fn load(kv: Arc<dyn Backend>, master: MasterKey) -> Result<Self> {
        let ring = Self {
            kv,
            master,
            cache: Mutex::new(HashMap::new()),
        };
        match ring.kv.get(META, MASTER_CHECK)? {
            Some(sealed) => match ring.open_with_master(&sealed) {
                Ok(plain) if plain == MASTER_CHECK_PLAINTEXT => {}
                _ => return Err(StoreError::WrongMasterKey),
            },
            None => {
                let sealed = ring.seal_with_master(MASTER_CHECK_PLAINTEXT)?;
                let mut batch = Batch::new();
                batch.check(META, MASTER_CHECK, None);
                batch.put(META, MASTER_CHECK, sealed);
                if ring.kv.commit(&batch)? == Commit::Conflict {
                    // Another opener raced us: verify against what it wrote.
                    return Self::load(ring.kv, ring.master);
                }
            }
        }
        Ok(ring)
    }

    /// Gives the account a key pair if it has none yet. Idempotent.
    pub(crate) fn ensure_account_key(&self, account: AccountId) -> Result<()> {
        if self.kv.get(KEYS, &account.to_key())?.is_some() {
            return Ok(());
        }
        let (cert, _revocation) = CertBuilder::new()
            .add_userid(format!("mshub account {}", account.0))
            .set_cipher_suite(CipherSuite::Cv25519)
            .add_storage_encryption_subkey()
            .generate()
            .map_err(crypto)?;
        let tsk = cert.as_tsk().to_vec().map_err(crypto)?;
        let sealed = self.seal_with_master(&tsk)?;
        let mut batch = Batch::new();
        batch.check(KEYS, account.to_key(), None);
        batch.put(KEYS, account.to_key(), sealed);
        // A conflict means a concurrent caller created the key first: theirs stands.
        let _ = self.kv.commit(&batch)?;
        Ok(())
    }

    /// Whether the account has a key pair.
    pub(crate) fn has_key(&self, account: AccountId) -> Result<bool> {
        Ok(self.kv.get(KEYS, &account.to_key())?.is_some())
    }

    /// Destroys the account's key pair: whatever was sealed to it can never be opened again.
    pub(crate) fn forget(&self, account: AccountId) -> Result<()> {
        self.cache.lock().map_err(crypto)?.remove(&account);
        let mut batch = Batch::new();
        batch.remove(KEYS, account.to_key());
        let _ = self.kv.commit(&batch)?;
        Ok(())
    }

    fn unsealed(&self, account: AccountId) -> Result<Arc<Unsealed>> {
        if let Some(u) = self.cache.lock().map_err(crypto)?.get(&account) {
            return Ok(u.clone());
        }
        let sealed = self
            .kv
            .get(KEYS, &account.to_key())?
            .ok_or(StoreError::NoAccountKey(account))?;
        let tsk = self.open_with_master(&sealed)?;
        let cert = Cert::from_bytes(&tsk).map_err(crypto)?;
        let secret = cert
            .keys()
            .unencrypted_secret()
            .with_policy(POLICY, None)
            .supported()
            .for_storage_encryption()
            .next()
            .ok_or_else(|| StoreError::Crypto(format!("account {account} has no storage key")))?
            .key()
            .clone()
            .role_into_unspecified();
        let unsealed = Arc::new(Unsealed { cert, secret });
        self.cache
            .lock()
            .map_err(crypto)?
            .insert(account, unsealed.clone());
        Ok(unsealed)
    }

    /// Encrypts `plain` to the account's key. An account without a key yet (a space created
    /// from a roster, whose keys are made on first need) gets one now.
    pub(crate) fn seal(&self, account: AccountId, plain: &[u8]) -> Result<Vec<u8>> {
        let keys = match self.unsealed(account) {
            Err(StoreError::NoAccountKey(_)) => {
                self.ensure_account_key(account)?;
                self.unsealed(account)?
            }
            other => other?,
        };
        let recipients = keys
            .cert
            .keys()
            .with_policy(POLICY, None)
            .supported()
            .for_storage_encryption();
        let mut sink = Vec::with_capacity(sealed_capacity(plain.len()));
        let message = Encryptor::for_recipients(Message::new(&mut sink), recipients)
            .build()
            .map_err(crypto)?;
        write_literal(message, plain)?;
        Ok(sink)
    }

    /// Decrypts a blob sealed for the account.
    pub(crate) fn open(&self, account: AccountId, sealed: &[u8]) -> Result<Vec<u8>> {
        let keys = self.unsealed(account)?;
        read_message(
            sealed,
            Helper {
                secret: Some(&keys.secret),
                password: None,
            },
        )
    }

    fn seal_with_master(&self, plain: &[u8]) -> Result<Vec<u8>> {
        let mut sink = Vec::with_capacity(sealed_capacity(plain.len()));
        let message =
            Encryptor::with_passwords(Message::new(&mut sink), Some(self.master.0.clone()))
                .build()
                .map_err(crypto)?;
        write_literal(message, plain)?;
        Ok(sink)
    }

    fn open_with_master(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        read_message(
            sealed,
            Helper {
                secret: None,
                password: Some(&self.master.0),
            },
        )
    }
}

/// Large blobs are compressed, except formats that are compressed already (PDF, zip,
/// images, …): deflating them costs time and saves nothing.
fn worth_compressing(plain: &[u8]) -> bool {
    const COMPRESSED: [&[u8]; 8] = [
        b"%PDF",               // PDF (its streams are deflated)
        b"PK\x03\x04",         // zip, IHE XDM, office documents
        b"\xff\xd8\xff",       // JPEG
        b"\x89PNG",            // PNG
        b"GIF8",               // GIF
        b"\x1f\x8b",           // gzip
        b"\x28\xb5\x2f\xfd",   // zstd
        b"\x00\x00\x00\x0cjP", // JPEG 2000
    ];
    plain.len() >= COMPRESS_FROM && !COMPRESSED.iter().any(|magic| plain.starts_with(magic))
}

/// Writes `plain` (compressed if worth it) into an encrypting message stack, then closes it.
fn write_literal(message: Message<'_>, plain: &[u8]) -> Result<()> {
    // Setting up a deflate stream costs more CPU than compressing a small message saves disk:
    // only larger blobs (attachments, documents) are compressed.
    let message = if worth_compressing(plain) {
        Compressor::new(message)
            .algo(CompressionAlgorithm::Zip)
            .build()
            .map_err(crypto)?
    } else {
        message
    };
    let mut literal = LiteralWriter::new(message).build().map_err(crypto)?;
    literal.write_all(plain).map_err(crypto)?;
    literal.finalize().map_err(crypto)
}

fn read_message(sealed: &[u8], helper: Helper<'_>) -> Result<Vec<u8>> {
    let mut decryptor = DecryptorBuilder::from_bytes(sealed)
        .map_err(crypto)?
        .with_policy(POLICY, None, helper)
        .map_err(crypto)?;
    let mut plain = Vec::new();
    std::io::copy(&mut decryptor, &mut plain).map_err(crypto)?;
    Ok(plain)
}

/// Decrypts with either an account's secret key or the master password, never both.
struct Helper<'k> {
    secret: Option<&'k Key<SecretParts, UnspecifiedRole>>,
    password: Option<&'k Password>,
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        if let Some(secret) = self.secret {
            let mut pair = secret.clone().into_keypair()?;
            for pkesk in pkesks {
                if let Some((algo, key)) = pkesk.decrypt(&mut pair, sym_algo) {
                    if decrypt(algo, &key) {
                        return Ok(None);
                    }
                }
            }
        }
        if let Some(password) = self.password {
            for skesk in skesks {
                if let Ok((algo, key)) = skesk.decrypt(password) {
                    if decrypt(algo, &key) {
                        return Ok(None);
                    }
                }
            }
        }
        Err(openpgp::Error::InvalidOperation("no key opens this message".into()).into())
    }
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(Vec::new())
    }

    // Blobs are not signed: integrity comes from the encryption's MDC/AEAD, which the
    // decryptor checks before the last byte is released.
    fn check(&mut self, _structure: MessageStructure) -> openpgp::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod compression_tests {
    use super::*;

    #[test]
    fn only_large_blobs_of_uncompressed_formats_are_compressed() {
        let text = vec![b'a'; COMPRESS_FROM];
        assert!(worth_compressing(&text));
        assert!(!worth_compressing(&text[..COMPRESS_FROM - 1]));
        let mut pdf = b"%PDF-1.7\n".to_vec();
        pdf.resize(COMPRESS_FROM * 2, 0);
        assert!(!worth_compressing(&pdf));
        let mut zip = b"PK\x03\x04".to_vec();
        zip.resize(COMPRESS_FROM * 2, 0);
        assert!(!worth_compressing(&zip));
    }
}
