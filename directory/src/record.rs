//! Accounts at rest. What identifies a person — names, birth date, sex, RPPS, an organisation's
//! members — is sealed to the hub's own OpenPGP key ([`mshub_store::SYSTEM_ACCOUNT`]); what the
//! hub needs to route and authenticate (address, kind, password hashes, state) stays readable.
//! A copy of the data directory without the master key shows no patient's name or birth date.
//! (The address itself carries the patient's INS: it is the key mail is routed by.)
//!
//! Opening costs a public-key decryption, so decoded accounts are cached, keyed by id and
//! checked against the stored bytes: a record changed by anyone is never served stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use mshub_store::{AccountId, Store, StoreError, SYSTEM_ACCOUNT};

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
        Ok(Self {
            store,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn encode(&self, account: &Account) -> Result<Vec<u8>> {
        let identity = serde_json::to_vec(&account.kind).expect("serialisable");
        let stored = StoredAccount {
            id: account.id,
            address: account.address.clone(),
            kind: account.kind.label().to_string(),
            identity: hex(&self.store.seal(SYSTEM_ACCOUNT, &identity)?),
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
        let sealed = unhex(&stored.identity).ok_or_else(|| corrupt("identity is not hex"))?;
        let identity = self.store.open_sealed(SYSTEM_ACCOUNT, &sealed)?;
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

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
