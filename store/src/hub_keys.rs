//! The hub's keys for its own small records, in one place:
//!
//! - the *field key* (AES-256-GCM) seals what identifies a person inside a record that must
//!   stay cheap to read — an account's identity and address, an audit event;
//! - the *index key* (HMAC-SHA256) turns an identifier (an address, which for a patient holds
//!   the INS) into the key it is looked up by. A keyed hash, not a plain one: the INS has
//!   too few possible values for a hash without a secret to hide it.
//!
//! Both are random, made on first use and kept sealed to the hub's own OpenPGP key
//! ([`crate::SYSTEM_ACCOUNT`]), so the master key still guards everything; several nodes
//! opening at once agree on one by compare-and-swap. The field key was the directory's
//! "identity key" first: it keeps that record (`directory-key` / `identity-v1`) so that what
//! it sealed still opens. A symmetric seal costs about a microsecond where a public-key one
//! costs a key agreement: sealing every audit event or a national roster stays cheap.

use std::sync::{Arc, OnceLock};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::backend::{Batch, Commit, Tree};
use crate::{Result, Store, StoreError, SYSTEM_ACCOUNT};

/// Where the keys are kept, each sealed to the hub's key.
const KEYS: Tree = Tree("directory-key");
const FIELD_KEY: &[u8] = b"identity-v1";
const INDEX_KEY: &[u8] = b"index-v1";
/// Marks a field sealed under the field key (`k1:` ‖ hex(nonce ‖ ciphertext ‖ tag)).
pub const SEALED_FIELD: &str = "k1:";
/// Length of an index tag.
pub const INDEX_TAG_LEN: usize = 32;

struct Loaded {
    field: LessSafeKey,
    index: hmac::Key,
}

/// Loaded on first use: a store that never seals a field (a test, `mshub migrate`) never
/// pays for unsealing them.
#[derive(Default)]
pub(crate) struct HubKeys {
    loaded: OnceLock<Arc<Loaded>>,
}

fn failed(reason: impl std::fmt::Display) -> StoreError {
    StoreError::Crypto(reason.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The raw key stored under `name`, made (random) if there is none yet.
fn raw_key(store: &Store, name: &[u8], random: &SystemRandom) -> Result<Vec<u8>> {
    loop {
        if let Some(sealed) = store.kv().get(KEYS, name)? {
            return store.open_sealed(SYSTEM_ACCOUNT, &sealed);
        }
        let mut key = vec![0u8; 32];
        random
            .fill(&mut key)
            .map_err(|_| failed("the system random generator failed"))?;
        let mut batch = Batch::new();
        batch.check(KEYS, name, None);
        batch.put(KEYS, name, store.seal(SYSTEM_ACCOUNT, &key)?);
        if store.kv().commit(&batch)? == Commit::Done {
            return Ok(key);
        }
    }
}

impl HubKeys {
    fn get(&self, store: &Store) -> Result<Arc<Loaded>> {
        if let Some(loaded) = self.loaded.get() {
            return Ok(loaded.clone());
        }
        let random = SystemRandom::new();
        let field = raw_key(store, FIELD_KEY, &random)?;
        let index = raw_key(store, INDEX_KEY, &random)?;
        let field = UnboundKey::new(&AES_256_GCM, &field)
            .map_err(|_| StoreError::corrupt("the hub's field key", "not 32 bytes"))?;
        let loaded = Arc::new(Loaded {
            field: LessSafeKey::new(field),
            index: hmac::Key::new(hmac::HMAC_SHA256, &index),
        });
        // Two threads loading at once read the same stored keys: either result will do.
        Ok(self.loaded.get_or_init(|| loaded).clone())
    }
}

impl Store {
    /// Seals a small field of a record to the hub, bound to `context` (e.g. the record's id
    /// and the field's name): a field copied into another record, or another field, does not
    /// open. Returns `k1:` ‖ hex(nonce ‖ AES-256-GCM(plain)).
    pub fn seal_field(&self, context: &[u8], plain: &[u8]) -> Result<String> {
        let keys = self.hub_keys.get(self)?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| failed("the system random generator failed"))?;
        let mut sealed = plain.to_vec();
        keys.field
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut sealed,
            )
            .map_err(|_| failed("could not seal a field"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_FIELD}{}", hex(&out)))
    }

    /// Opens what [`Store::seal_field`] sealed with the same `context`.
    pub fn open_field(&self, context: &[u8], sealed: &str) -> Result<Vec<u8>> {
        let corrupt = |reason: &str| StoreError::corrupt("sealed field", reason);
        let text = sealed
            .strip_prefix(SEALED_FIELD)
            .ok_or_else(|| corrupt("not a sealed field"))?;
        let raw = unhex(text).ok_or_else(|| corrupt("not hex"))?;
        if raw.len() < NONCE_LEN {
            return Err(corrupt("too short"));
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt("nonce"))?;
        let keys = self.hub_keys.get(self)?;
        let mut buf = sealed.to_vec();
        let plain = keys
            .field
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| corrupt("it does not open (altered, or another record's)"))?;
        Ok(plain.to_vec())
    }

    /// The key an identifier is indexed by: HMAC-SHA256 under the hub's index key of
    /// `purpose` ‖ NUL ‖ `value`. The same value gives the same tag (a lookup works); without
    /// the key, nobody can tell which value a tag stands for, even by trying all of them.
    /// `purpose` keeps the tags of one index from matching another's.
    pub fn index_tag(&self, purpose: &str, value: &[u8]) -> Result<[u8; INDEX_TAG_LEN]> {
        let keys = self.hub_keys.get(self)?;
        let mut context = hmac::Context::with_key(&keys.index);
        context.update(purpose.as_bytes());
        context.update(&[0]);
        context.update(value);
        let mut tag = [0u8; INDEX_TAG_LEN];
        tag.copy_from_slice(context.sign().as_ref());
        Ok(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    const MASTER: &str = "0123456789abcdef0123456789abcdef";

    fn open(dir: &std::path::Path) -> Store {
        Store::open(dir, MasterKey::new(MASTER).unwrap()).unwrap()
    }

    #[test]
    fn fields_open_only_in_their_context_and_unaltered() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let sealed = store.seal_field(b"account 7", b"Camille Durand").unwrap();
        assert!(sealed.starts_with(SEALED_FIELD));
        assert!(!sealed.contains("Camille"));
        assert_eq!(
            store.open_field(b"account 7", &sealed).unwrap(),
            b"Camille Durand"
        );
        assert!(store.open_field(b"account 8", &sealed).is_err());
        let mut altered = sealed.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == '0' { '1' } else { '0' });
        assert!(store.open_field(b"account 7", &altered).is_err());
        assert!(store.open_field(b"account 7", "k1:zz").is_err());
        assert!(store.open_field(b"account 7", "plain").is_err());
    }

    #[test]
    fn tags_are_stable_keyed_and_per_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let (tag, sealed) = {
            let store = open(dir.path());
            let tag = store.index_tag("address", b"284057511204339").unwrap();
            assert_ne!(tag, store.index_tag("member", b"284057511204339").unwrap());
            assert_ne!(tag, store.index_tag("address", b"284057511204338").unwrap());
            (tag, store.seal_field(b"c", b"p").unwrap())
        };
        // The keys survive reopening: tags and sealed fields still match.
        let store = open(dir.path());
        assert_eq!(store.index_tag("address", b"284057511204339").unwrap(), tag);
        assert_eq!(store.open_field(b"c", &sealed).unwrap(), b"p");
        // Another data directory has other keys.
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            open(other.path())
                .index_tag("address", b"284057511204339")
                .unwrap(),
            tag
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
