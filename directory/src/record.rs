//! Accounts at rest. What identifies a person — names, birth date, sex, RPPS, an organisation's
//! members — is sealed to the hub's own OpenPGP key ([`mshub_store::SYSTEM_ACCOUNT`]); what the
//! hub needs to route and authenticate (address, kind, password hashes, state) stays readable.
//! A copy of the data directory without the master key shows no patient's name or birth date.
//! (The address itself carries the patient's INS: it is the key mail is routed by.)
//!
//! The identity is encrypted with AES-256-GCM under the directory's identity key, bound to the
//! account's id; that key is itself sealed to the hub's OpenPGP key, so the master key still
//! guards everything. (Records written before this key existed hold an OpenPGP message, and
//! are still read.) A symmetric seal costs about a microsecond where a public-key one costs a
//! key agreement: importing a national roster is bound by the store, not by sealing.
//!
//! Decoded accounts are cached, keyed by id and checked against the stored bytes: a record
//! changed by anyone is never served stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use mshub_store::{AccountId, Batch, Commit, Store, StoreError, Tree, SYSTEM_ACCOUNT};

use crate::{Account, AccountKind, Address, AppPassword, Result};

/// Past this many cached accounts the cache starts over (bounded memory at national scale).
const CACHE_MAX: usize = 100_000;

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    id: AccountId,
    address: Address,
    /// `patient`, `professional`, … (readable: policy decisions need it).
    kind: String,
    /// Hex of the sealed JSON of the [`AccountKind`].
    identity: String,
    password_hash: Option<String>,
    #[serde(default)]
    app_passwords: Vec<AppPassword>,
    disabled: bool,
    created: i64,
    /// Absent in records written before spaces had a lifecycle: those are active.
    #[serde(default)]
    lifecycle: crate::Lifecycle,
    #[serde(default)]
    activation_code: Option<String>,
}

/// The identity key, sealed to the hub's own key.
const DIRECTORY_KEY: Tree = Tree("directory-key");
const IDENTITY_KEY: &[u8] = b"identity-v1";
/// Marks an identity encrypted under the identity key (else: an OpenPGP message, older).
const IDENTITY_V1: &str = "k1:";

pub(crate) struct AccountRecords {
    store: Arc<Store>,
    identity_key: LessSafeKey,
    random: SystemRandom,
    cache: Mutex<HashMap<AccountId, (Vec<u8>, Account)>>,
}

/// The directory's identity key: made on first use (random), kept sealed to the hub's key.
/// Several nodes opening at once agree on one by compare-and-swap.
fn identity_key(store: &Store, random: &SystemRandom) -> Result<LessSafeKey> {
    let raw = loop {
        if let Some(sealed) = store.kv().get(DIRECTORY_KEY, IDENTITY_KEY)? {
            break store.open_sealed(SYSTEM_ACCOUNT, &sealed)?;
        }
        let mut key = vec![0u8; 32];
        random
            .fill(&mut key)
            .map_err(|_| corrupt("the system random generator failed"))?;
        let mut batch = Batch::new();
        batch.check(DIRECTORY_KEY, IDENTITY_KEY, None);
        batch.put(
            DIRECTORY_KEY,
            IDENTITY_KEY,
            store.seal(SYSTEM_ACCOUNT, &key)?,
        );
        if store.kv().commit(&batch)? == Commit::Done {
            break key;
        }
    };
    let key = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| corrupt("identity key length"))?;
    Ok(LessSafeKey::new(key))
}

fn corrupt(reason: impl std::fmt::Display) -> crate::DirectoryError {
    StoreError::Corrupt {
        what: "account".into(),
        reason: reason.to_string(),
    }
    .into()
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

impl AccountRecords {
    pub(crate) fn new(store: Arc<Store>) -> Result<Self> {
        store.provision_account(SYSTEM_ACCOUNT)?;
        let random = SystemRandom::new();
        Ok(Self {
            identity_key: identity_key(&store, &random)?,
            random,
            store,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// `k1:` ‖ hex(nonce ‖ AES-256-GCM(identity)), the account id as associated data: an
    /// identity copied onto another account's record does not open.
    fn seal_identity(&self, id: AccountId, identity: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| corrupt("the system random generator failed"))?;
        let mut sealed = identity.to_vec();
        self.identity_key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.to_key()),
                &mut sealed,
            )
            .map_err(|_| corrupt("could not seal the identity"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{IDENTITY_V1}{}", hex(&out)))
    }

    fn open_identity(&self, id: AccountId, stored: &str) -> Result<Vec<u8>> {
        let Some(text) = stored.strip_prefix(IDENTITY_V1) else {
            let sealed = unhex(stored).ok_or_else(|| corrupt("identity is not hex"))?;
            return Ok(self.store.open_sealed(SYSTEM_ACCOUNT, &sealed)?);
        };
        let raw = unhex(text).ok_or_else(|| corrupt("identity is not hex"))?;
        if raw.len() < NONCE_LEN {
            return Err(corrupt("identity too short"));
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt("nonce"))?;
        let mut buf = sealed.to_vec();
        let plain = self
            .identity_key
            .open_in_place(nonce, Aad::from(id.to_key()), &mut buf)
            .map_err(|_| corrupt("the identity does not open (altered, or another account's)"))?;
        Ok(plain.to_vec())
    }

    pub(crate) fn encode(&self, account: &Account) -> Result<Vec<u8>> {
        let identity = serde_json::to_vec(&account.kind).expect("serialisable");
        let stored = StoredAccount {
            id: account.id,
            address: account.address.clone(),
            kind: account.kind.label().to_string(),
            identity: self.seal_identity(account.id, &identity)?,
            password_hash: account.password_hash.clone(),
            app_passwords: account.app_passwords.clone(),
            disabled: account.disabled,
            created: account.created,
            lifecycle: account.lifecycle.clone(),
            activation_code: account.activation_code.clone(),
        };
        Ok(serde_json::to_vec(&stored).expect("serialisable"))
    }

    /// The address and state of a stored record, and the record with `lifecycle` instead:
    /// a change of state alone needs no cryptography (the sealed identity is kept as is).
    pub(crate) fn restate(
        &self,
        raw: &[u8],
        lifecycle: impl FnOnce(&crate::Lifecycle) -> Option<crate::Lifecycle>,
    ) -> Result<Option<(Address, Vec<u8>)>> {
        let mut stored: StoredAccount = serde_json::from_slice(raw).map_err(corrupt)?;
        let Some(next) = lifecycle(&stored.lifecycle) else {
            return Ok(None);
        };
        stored.lifecycle = next;
        Ok(Some((
            stored.address.clone(),
            serde_json::to_vec(&stored).expect("serialisable"),
        )))
    }

    pub(crate) fn decode(&self, raw: &[u8]) -> Result<Account> {
        let stored: StoredAccount = serde_json::from_slice(raw).map_err(corrupt)?;
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((bytes, account)) = cache.get(&stored.id) {
                if bytes.as_slice() == raw {
                    return Ok(account.clone());
                }
            }
        }
        let identity = self.open_identity(stored.id, &stored.identity)?;
        let kind: AccountKind = serde_json::from_slice(&identity).map_err(corrupt)?;
        let account = Account {
            id: stored.id,
            address: stored.address,
            kind,
            password_hash: stored.password_hash,
            app_passwords: stored.app_passwords,
            disabled: stored.disabled,
            created: stored.created,
            lifecycle: stored.lifecycle,
            activation_code: stored.activation_code,
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(account.id, (raw.to_vec(), account.clone()));
        Ok(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> (tempfile::TempDir, AccountRecords, Account) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open(
                dir.path(),
                mshub_store::MasterKey::new("0123456789abcdef0123456789abcdef").unwrap(),
            )
            .unwrap(),
        );
        let records = AccountRecords::new(store).unwrap();
        let account = Account {
            id: AccountId(7),
            address: Address::try_from("284057511204339@patient.mshub.test").unwrap(),
            kind: AccountKind::Patient {
                ins: crate::Ins::try_from("284057511204339").unwrap(),
                given_name: "Camille".into(),
                family_name: "Durand".into(),
                birth_date: crate::BirthDate::try_from("1984-05-12").unwrap(),
                sex: crate::Sex::Female,
            },
            password_hash: None,
            app_passwords: Vec::new(),
            disabled: false,
            created: 0,
            lifecycle: crate::Lifecycle::Active,
            activation_code: None,
        };
        (dir, records, account)
    }

    #[test]
    fn identities_are_sealed_bound_to_their_account_and_read_back() {
        let (_dir, records, account) = records();
        let raw = records.encode(&account).unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(!text.contains("Durand") && !text.contains("1984"), "{text}");
        assert!(text.contains(IDENTITY_V1));
        assert_eq!(records.decode(&raw).unwrap(), account);
        // The same identity moved onto another account's record does not open.
        let mut stored: StoredAccount = serde_json::from_slice(&raw).unwrap();
        stored.id = AccountId(8);
        let moved = serde_json::to_vec(&stored).unwrap();
        assert!(records.decode(&moved).is_err());
        // Nor does an altered one.
        let mut stored: StoredAccount = serde_json::from_slice(&raw).unwrap();
        let last = stored.identity.pop().unwrap();
        stored.identity.push(if last == '0' { '1' } else { '0' });
        assert!(records
            .decode(&serde_json::to_vec(&stored).unwrap())
            .is_err());
    }

    #[test]
    fn records_sealed_with_openpgp_before_the_identity_key_still_open() {
        let (_dir, records, account) = records();
        let mut stored: StoredAccount =
            serde_json::from_slice(&records.encode(&account).unwrap()).unwrap();
        let identity = serde_json::to_vec(&account.kind).unwrap();
        stored.identity = hex(&records.store.seal(SYSTEM_ACCOUNT, &identity).unwrap());
        let legacy = serde_json::to_vec(&stored).unwrap();
        assert_eq!(records.decode(&legacy).unwrap(), account);
    }

    #[test]
    fn the_identity_key_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            Arc::new(
                Store::open(
                    dir.path(),
                    mshub_store::MasterKey::new("0123456789abcdef0123456789abcdef").unwrap(),
                )
                .unwrap(),
            )
        };
        let (_other, first, account) = records();
        drop(first);
        let raw = {
            let records = AccountRecords::new(open()).unwrap();
            records.encode(&account).unwrap()
        };
        let records = AccountRecords::new(open()).unwrap();
        assert_eq!(records.decode(&raw).unwrap(), account);
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
