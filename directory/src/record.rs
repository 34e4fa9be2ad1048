//! Accounts at rest. What identifies a person — names, birth date, sex, RPPS, an organisation's
//! members — and the account's address (a patient's holds the INS) are sealed to the hub
//! ([`Store::seal_field`]); what the hub needs to decide without them (kind, password hashes,
//! state) stays readable. The address index and the organisation-member index are keyed by
//! a keyed hash of the address ([`Store::index_tag`]), not by the address. A copy of the data
//! directory without the master key shows no patient's INS, name or birth date.
//!
//! The identity and the address are encrypted with AES-256-GCM under the hub's field key,
//! bound to the account's id; that key is itself sealed to the hub's OpenPGP key, so the
//! master key still guards everything. (Records written before that key existed hold an
//! OpenPGP message as identity, and are still read; records written before addresses were
//! sealed hold the address in clear, and are rewritten once when the directory opens: see
//! [`AccountRecords::migrate`].)
//!
//! Decoded accounts are cached, keyed by id and checked against the stored bytes: a record
//! changed by anyone is never served stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use mshub_store::{AccountId, Batch, Commit, Store, StoreError, Tree, SYSTEM_ACCOUNT};

use crate::{
    Account, AccountKind, Address, AppPassword, Result, ACCOUNT, ACCOUNT_ADDRESS,
    ORGANISATION_MEMBER,
};

/// Past this many cached accounts the cache starts over (bounded memory at national scale).
const CACHE_MAX: usize = 100_000;

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    id: AccountId,
    /// In clear: only in records written before addresses were sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<Address>,
    /// [`Store::seal_field`] of the address, bound to the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_address: Option<String>,
    /// `patient`, `professional`, … (readable: policy decisions need it).
    kind: String,
    /// The sealed JSON of the [`AccountKind`].
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

/// Marks a key of the address indexes made from a keyed hash. No address starts with this
/// byte: a key without it is an address in clear, written before (see `migrate`).
const HASHED: u8 = 1;
/// What the keyed hashes of each index are made for (one index's keys match no other's).
const ADDRESS_PURPOSE: &str = "account-address";
const MEMBER_PURPOSE: &str = "organisation-member";
/// Marks what a one-time rewrite of the directory has done.
pub(crate) const MIGRATION: Tree = Tree("directory-migration");
const ADDRESSES_SEALED: &[u8] = b"addresses-sealed-v1";
/// Entries read and rewritten at a time by the migration.
const MIGRATION_PAGE: usize = 1000;

pub(crate) struct AccountRecords {
    store: Arc<Store>,
    cache: Mutex<HashMap<AccountId, (Vec<u8>, Account)>>,
}

fn corrupt(reason: impl std::fmt::Display) -> crate::DirectoryError {
    StoreError::Corrupt {
        what: "account".into(),
        reason: reason.to_string(),
    }
    .into()
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

/// What an account's address is sealed with: its id, and that it is the address (so that the
/// identity, sealed with the id alone, cannot stand in for it).
fn address_context(id: AccountId) -> Vec<u8> {
    let mut c = b"address ".to_vec();
    c.extend_from_slice(&id.to_key());
    c
}

impl AccountRecords {
    pub(crate) fn new(store: Arc<Store>) -> Result<Self> {
        store.provision_account(SYSTEM_ACCOUNT)?;
        let records = Self {
            store,
            cache: Mutex::new(HashMap::new()),
        };
        records.migrate()?;
        Ok(records)
    }

    /// The key of `address` in the address index (`account-address`).
    pub(crate) fn address_key(&self, address: &Address) -> Result<Vec<u8>> {
        self.hashed_key(ADDRESS_PURPOSE, address.as_str().as_bytes())
    }

    /// The prefix of `member`'s entries in the organisation-member index; an entry is the
    /// prefix ‖ the organisation's id.
    pub(crate) fn member_prefix(&self, member: &Address) -> Result<Vec<u8>> {
        self.hashed_key(MEMBER_PURPOSE, member.as_str().as_bytes())
    }

    fn hashed_key(&self, purpose: &str, address: &[u8]) -> Result<Vec<u8>> {
        let mut key = vec![HASHED];
        key.extend_from_slice(&self.store.index_tag(purpose, address)?);
        Ok(key)
    }

    fn open_identity(&self, id: AccountId, stored: &str) -> Result<Vec<u8>> {
        if stored.starts_with(mshub_store::SEALED_FIELD) {
            return Ok(self.store.open_field(&id.to_key(), stored)?);
        }
        let sealed = unhex(stored).ok_or_else(|| corrupt("identity is not hex"))?;
        Ok(self.store.open_sealed(SYSTEM_ACCOUNT, &sealed)?)
    }

    fn open_address(&self, stored: &StoredAccount) -> Result<Address> {
        match (&stored.sealed_address, &stored.address) {
            (Some(sealed), _) => {
                let plain = self.store.open_field(&address_context(stored.id), sealed)?;
                let text = String::from_utf8(plain).map_err(corrupt)?;
                Ok(Address::try_from(text.as_str())?)
            }
            (None, Some(address)) => Ok(address.clone()),
            (None, None) => Err(corrupt(format!("account {} has no address", stored.id))),
        }
    }

    pub(crate) fn encode(&self, account: &Account) -> Result<Vec<u8>> {
        let identity = serde_json::to_vec(&account.kind).expect("serialisable");
        let stored = StoredAccount {
            id: account.id,
            address: None,
            sealed_address: Some(self.store.seal_field(
                &address_context(account.id),
                account.address.as_str().as_bytes(),
            )?),
            kind: account.kind.label().to_string(),
            identity: self.store.seal_field(&account.id.to_key(), &identity)?,
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
    /// a change of state alone needs no public-key cryptography (the sealed identity is kept
    /// as is).
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
        let address = self.open_address(&stored)?;
        Ok(Some((
            address,
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
        let address = self.open_address(&stored)?;
        let identity = self.open_identity(stored.id, &stored.identity)?;
        let kind: AccountKind = serde_json::from_slice(&identity).map_err(corrupt)?;
        let account = Account {
            id: stored.id,
            address,
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

    /// Rewrites, once, what was written before addresses were sealed: the address index and
    /// the organisation-member index keyed by addresses in clear, account records holding
    /// their address in clear. Safe to interrupt and to run again (each entry is rewritten
    /// in one atomic batch, its new key written with the removal of the old one; records
    /// under compare-and-swap), and on several nodes at once. A marker says it is done, so
    /// that opening a migrated store costs one read.
    pub(crate) fn migrate(&self) -> Result<()> {
        let kv = self.store.kv();
        if kv.get(MIGRATION, ADDRESSES_SEALED)?.is_some() {
            return Ok(());
        }
        let mut rewritten = 0usize;
        // The indexes: every key that does not start with `HASHED` is an address in clear
        // (for members: member ‖ NUL ‖ organisation id).
        rewritten += self.rekey(ACCOUNT_ADDRESS, |key| self.hashed_key(ADDRESS_PURPOSE, key))?;
        rewritten += self.rekey(ORGANISATION_MEMBER, |key| {
            let split = key.len().checked_sub(9).filter(|&i| key[i] == 0);
            let Some(split) = split else {
                return Err(corrupt(
                    "an organisation-member key without an organisation",
                ));
            };
            let mut new = self.hashed_key(MEMBER_PURPOSE, &key[..split])?;
            new.extend_from_slice(&key[split + 1..]);
            Ok(new)
        })?;
        // The records.
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = kv.scan(ACCOUNT, &[], after.as_deref(), Some(MIGRATION_PAGE))?;
            let Some((last, _)) = page.last() else {
                break;
            };
            after = Some(last.clone());
            for (key, raw) in page {
                rewritten += usize::from(self.seal_address_of(key, raw)?);
            }
        }
        let mut batch = Batch::new();
        batch.put(
            MIGRATION,
            ADDRESSES_SEALED,
            mshub_store::now().to_be_bytes(),
        );
        let _ = kv.commit(&batch)?;
        if rewritten > 0 {
            tracing::info!(rewritten, "addresses sealed and indexed by keyed hash");
        }
        Ok(())
    }

    /// Moves every entry of `tree` whose key is in clear to the key `new_key` makes of it.
    fn rekey(&self, tree: Tree, new_key: impl Fn(&[u8]) -> Result<Vec<u8>>) -> Result<usize> {
        let kv = self.store.kv();
        let mut moved = 0;
        // Keys in clear sort after every hashed one (`HASHED` is below any address's first
        // byte, and a hashed key is at most 41 bytes long): start past them.
        let mut after = Some([vec![HASHED], vec![0xff; 64]].concat());
        loop {
            let page = kv.scan(tree, &[], after.as_deref(), Some(MIGRATION_PAGE))?;
            let Some((last, _)) = page.last() else {
                return Ok(moved);
            };
            after = Some(last.clone());
            let mut batch = Batch::new();
            for (key, value) in page {
                if key.first() == Some(&HASHED) {
                    continue;
                }
                batch.put(tree, new_key(&key)?, value);
                batch.remove(tree, key);
                moved += 1;
            }
            let _ = kv.commit(&batch)?;
        }
    }

    /// Seals the address of one record that holds it in clear; whether it did.
    fn seal_address_of(&self, key: Vec<u8>, mut raw: Vec<u8>) -> Result<bool> {
        loop {
            let mut stored: StoredAccount = serde_json::from_slice(&raw).map_err(corrupt)?;
            let Some(address) = stored.address.take() else {
                return Ok(false);
            };
            stored.sealed_address = Some(
                self.store
                    .seal_field(&address_context(stored.id), address.as_str().as_bytes())?,
            );
            let mut batch = Batch::new();
            batch.check(ACCOUNT, key.clone(), Some(raw));
            batch.put(
                ACCOUNT,
                key.clone(),
                serde_json::to_vec(&stored).expect("serialisable"),
            );
            if self.store.kv().commit(&batch)? == Commit::Done {
                return Ok(true);
            }
            // Changed meanwhile (another node migrating, or a write): read it again.
            match self.store.kv().get(ACCOUNT, &key)? {
                Some(now) => raw = now,
                None => return Ok(false),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "0123456789abcdef0123456789abcdef";

    fn store(dir: &std::path::Path) -> Arc<Store> {
        Arc::new(Store::open(dir, mshub_store::MasterKey::new(MASTER).unwrap()).unwrap())
    }

    fn camille() -> Account {
        Account {
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
        }
    }

    fn records() -> (tempfile::TempDir, AccountRecords, Account) {
        let dir = tempfile::tempdir().unwrap();
        let records = AccountRecords::new(store(dir.path())).unwrap();
        (dir, records, camille())
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The record as it was written before addresses were sealed: the address in clear.
    fn legacy(records: &AccountRecords, account: &Account) -> Vec<u8> {
        let mut stored: StoredAccount =
            serde_json::from_slice(&records.encode(account).unwrap()).unwrap();
        stored.sealed_address = None;
        stored.address = Some(account.address.clone());
        serde_json::to_vec(&stored).unwrap()
    }

    #[test]
    fn identities_and_addresses_are_sealed_bound_to_their_account_and_read_back() {
        let (_dir, records, account) = records();
        let raw = records.encode(&account).unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        for clear in ["Durand", "1984", "284057511204339", "patient.mshub.test"] {
            assert!(!text.contains(clear), "{clear} in {text}");
        }
        assert!(text.contains(mshub_store::SEALED_FIELD));
        assert_eq!(records.decode(&raw).unwrap(), account);
        // The same identity and address moved onto another account's record do not open.
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
        // Nor does the identity standing in for the address.
        let mut stored: StoredAccount = serde_json::from_slice(&raw).unwrap();
        stored.sealed_address = Some(stored.identity.clone());
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
    fn records_with_the_address_in_clear_still_open() {
        let (_dir, records, account) = records();
        let raw = legacy(&records, &account);
        assert!(String::from_utf8_lossy(&raw).contains("284057511204339@"));
        assert_eq!(records.decode(&raw).unwrap(), account);
        let (address, _) = records
            .restate(&raw, |_| Some(crate::Lifecycle::Active))
            .unwrap()
            .unwrap();
        assert_eq!(address, account.address);
    }

    #[test]
    fn the_keys_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let account = camille();
        let (raw, key) = {
            let records = AccountRecords::new(store(dir.path())).unwrap();
            (
                records.encode(&account).unwrap(),
                records.address_key(&account.address).unwrap(),
            )
        };
        let records = AccountRecords::new(store(dir.path())).unwrap();
        assert_eq!(records.decode(&raw).unwrap(), account);
        assert_eq!(records.address_key(&account.address).unwrap(), key);
    }

    #[test]
    fn index_keys_are_keyed_hashes_not_addresses() {
        let (_dir, records, account) = records();
        let key = records.address_key(&account.address).unwrap();
        assert_eq!(key.len(), 1 + mshub_store::INDEX_TAG_LEN);
        assert_eq!(key[0], HASHED);
        assert!(!String::from_utf8_lossy(&key).contains("284057511204339"));
        assert_ne!(key, records.member_prefix(&account.address).unwrap());
        let other = Address::try_from("185037505612356@patient.mshub.test").unwrap();
        assert_ne!(key, records.address_key(&other).unwrap());
        // Another data directory (another master key's store) has other keys.
        let (_other_dir, other_records, _) = self::records();
        assert_ne!(key, other_records.address_key(&account.address).unwrap());
    }

    #[test]
    fn the_migration_seals_addresses_and_rekeys_the_indexes_once() {
        let dir = tempfile::tempdir().unwrap();
        let account = camille();
        let organisation = AccountId(9);
        let clear = account.address.as_str().as_bytes().to_vec();
        let mut member_key = clear.clone();
        member_key.push(0);
        member_key.extend_from_slice(&organisation.to_key());
        {
            // A store as written before: records, index and members by address in clear.
            let store = store(dir.path());
            let records = AccountRecords::new(store.clone()).unwrap();
            let mut batch = Batch::new();
            batch.put(ACCOUNT, account.id.to_key(), legacy(&records, &account));
            batch.put(ACCOUNT_ADDRESS, clear.clone(), account.id.to_key());
            batch.put(ORGANISATION_MEMBER, member_key.clone(), Vec::new());
            batch.remove(MIGRATION, ADDRESSES_SEALED);
            assert_eq!(store.kv().commit(&batch).unwrap(), Commit::Done);
        }
        let store = store(dir.path());
        let records = AccountRecords::new(store.clone()).unwrap();
        let kv = store.kv();
        let raw = kv.get(ACCOUNT, &account.id.to_key()).unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("284057511204339"));
        assert_eq!(records.decode(&raw).unwrap(), account);
        assert!(kv.get(ACCOUNT_ADDRESS, &clear).unwrap().is_none());
        assert_eq!(
            kv.get(
                ACCOUNT_ADDRESS,
                &records.address_key(&account.address).unwrap()
            )
            .unwrap(),
            Some(account.id.to_key().to_vec())
        );
        assert!(kv.get(ORGANISATION_MEMBER, &member_key).unwrap().is_none());
        let mut hashed_member = records.member_prefix(&account.address).unwrap();
        hashed_member.extend_from_slice(&organisation.to_key());
        assert!(kv
            .get(ORGANISATION_MEMBER, &hashed_member)
            .unwrap()
            .is_some());
        // Nothing is left in clear in these trees.
        for tree in [ACCOUNT, ACCOUNT_ADDRESS, ORGANISATION_MEMBER] {
            for (k, v) in kv.scan(tree, &[], None, None).unwrap() {
                let both = [k, v].concat();
                assert!(!String::from_utf8_lossy(&both).contains("284057511204339"));
            }
        }
        // Running it again (an interrupted migration restarted) changes nothing.
        let before: Vec<_> = [ACCOUNT, ACCOUNT_ADDRESS, ORGANISATION_MEMBER]
            .iter()
            .map(|t| kv.scan(*t, &[], None, None).unwrap())
            .collect();
        let mut batch = Batch::new();
        batch.remove(MIGRATION, ADDRESSES_SEALED);
        assert_eq!(kv.commit(&batch).unwrap(), Commit::Done);
        records.migrate().unwrap();
        let after: Vec<_> = [ACCOUNT, ACCOUNT_ADDRESS, ORGANISATION_MEMBER]
            .iter()
            .map(|t| kv.scan(*t, &[], None, None).unwrap())
            .collect();
        assert_eq!(before, after);
    }

    #[test]
    fn an_interrupted_migration_finishes_on_the_next_opening() {
        let dir = tempfile::tempdir().unwrap();
        let account = camille();
        let clear = account.address.as_str().as_bytes().to_vec();
        {
            let store = store(dir.path());
            let records = AccountRecords::new(store.clone()).unwrap();
            // As if stopped half-way: the index entry moved, the record not rewritten yet,
            // and no marker.
            let mut batch = Batch::new();
            batch.put(ACCOUNT, account.id.to_key(), legacy(&records, &account));
            batch.put(
                ACCOUNT_ADDRESS,
                records.address_key(&account.address).unwrap(),
                account.id.to_key(),
            );
            batch.remove(MIGRATION, ADDRESSES_SEALED);
            assert_eq!(store.kv().commit(&batch).unwrap(), Commit::Done);
        }
        let store = store(dir.path());
        let records = AccountRecords::new(store.clone()).unwrap();
        let raw = store
            .kv()
            .get(ACCOUNT, &account.id.to_key())
            .unwrap()
            .unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("284057511204339"));
        assert_eq!(records.decode(&raw).unwrap(), account);
        assert!(store.kv().get(ACCOUNT_ADDRESS, &clear).unwrap().is_none());
        assert_eq!(
            store
                .kv()
                .scan(ACCOUNT_ADDRESS, &[], None, None)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn unhex_rejects_garbage() {
        assert_eq!(
            unhex(&hex(&[0u8, 1, 0xab, 0xff])).unwrap(),
            [0u8, 1, 0xab, 0xff]
        );
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
