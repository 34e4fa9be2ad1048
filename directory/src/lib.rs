//! # mshub-directory
//!
//! Who is who in the hub. Start with [`Directory`]: it creates accounts (patients by
//! [`Ins`], professionals by [`Rpps`], organisation and application mailboxes), finds them by
//! [`Address`], checks passwords (argon2id) behind the login [`Throttle`], and keeps the trust
//! space: local domains and trusted peer domains with their routes.
//!
//! Records live in the store's key-value backend (`account`, `account-address`, `domain`
//! trees); every change is written to the audit chain. Addresses are sealed in the records
//! and the indexes are keyed by a keyed hash of them (see `record`): the data directory does
//! not list the patients' INS.

mod account;
mod address;
pub mod auth_cache;
mod domain;
mod error;
pub mod hashing;
mod ins;
pub mod lifecycle;
pub mod password;
mod record;
mod rpps;
mod search;
pub mod throttle;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use mshub_store::{AccountId, AuditEvent, Batch, Commit, Store, Tree};

pub use account::{Account, AccountKind, AppPassword, BirthDate, Profession, Sex};
pub use address::{Address, Domain};
pub use auth_cache::{AuthCache, AuthCacheConfig, AuthCacheStats};
pub use domain::{DomainEntry, DomainRole, Route, TlsPolicy};
pub use error::{DirectoryError, Result};
pub use ins::Ins;
pub use lifecycle::{Lifecycle, LifecyclePolicy, Purger, RosterOutcome, RosterPatient, TickReport};
pub use rpps::Rpps;
pub use search::fold;
pub use throttle::{ConnectionLimits, ConnectionSlot, Throttle};

pub(crate) const ACCOUNT: Tree = Tree("account");
/// keyed hash of the address → account id.
pub(crate) const ACCOUNT_ADDRESS: Tree = Tree("account-address");
const DOMAIN: Tree = Tree("domain");
/// keyed hash of the member's address ‖ organisation id → (): who may send as which
/// organisation mailbox, without reading every account.
pub(crate) const ORGANISATION_MEMBER: Tree = Tree("organisation-member");

/// Which door a login comes through: mail clients may use application passwords, the web
/// inbox only the account's own password (or SSO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Mail,
    Web,
}

/// Logins by door (mail clients and the API, or the web inbox) and result.
static LOGINS: mshub_metrics::Family = mshub_metrics::Family::counter(
    "mshub_logins_total",
    "Logins by door (mail: IMAP, SMTP, API; web: the web inbox) and result.",
    &["door", "result"],
);

pub struct Directory {
    store: Arc<Store>,
    hub_domain: Domain,
    throttle: Throttle,
    /// Passwords verified in the last minutes, in memory only (see [`auth_cache`]).
    auth_cache: AuthCache,
    records: record::AccountRecords,
    lifecycle: lifecycle::Settings,
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|e| {
        mshub_store::StoreError::Corrupt {
            what: what.into(),
            reason: e.to_string(),
        }
        .into()
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("directory records serialise")
}

/// The INS encodes sex and year and month of birth: the identity traits must agree with it.
pub(crate) fn check_identity(ins: &Ins, birth: &BirthDate, sex: Sex) -> Result<()> {
    let mismatch = |reason: String| DirectoryError::IdentityMismatch {
        ins: ins.to_string(),
        reason,
    };
    let ins_sex = match ins.sex_digit() {
        1 | 3 | 7 => Some(Sex::Male),
        2 | 4 | 8 => Some(Sex::Female),
        _ => None,
    };
    if sex != Sex::Unknown && ins_sex.is_some_and(|s| s != sex) {
        return Err(mismatch(format!(
            "its sex digit {} contradicts sex {sex:?}",
            ins.sex_digit()
        )));
    }
    if u16::from(ins.birth_year_2()) != birth.year % 100 {
        return Err(mismatch(format!(
            "it gives a birth year ending in {:02}, not {}",
            ins.birth_year_2(),
            birth.year
        )));
    }
    // Months 20-42 and above 50 stand for an unknown month in a NIR: nothing to compare.
    if (1..=12).contains(&ins.birth_month()) && ins.birth_month() != birth.month {
        return Err(mismatch(format!(
            "it gives birth month {:02}, not {:02}",
            ins.birth_month(),
            birth.month
        )));
    }
    Ok(())
}

impl Directory {
    /// The hub's own domain and its patient domain are local from the start.
    pub fn open(store: Arc<Store>, hub_domain: Domain) -> Result<Self> {
        let dir = Self {
            records: record::AccountRecords::new(store.clone())?,
            store,
            hub_domain,
            throttle: Throttle::new(),
            auth_cache: AuthCache::new(AuthCacheConfig::default()),
            lifecycle: lifecycle::Settings::default(),
        };
        for d in [dir.hub_domain.clone(), dir.patient_domain()] {
            if dir.domain(&d)?.is_none() {
                dir.set_domain(
                    DomainEntry {
                        domain: d,
                        role: DomainRole::Local,
                    },
                    "system",
                )?;
            }
        }
        dir.index_professionals()?;
        Ok(dir)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The authentication cache: its settings ([`AuthCache::configure`]), counters, and
    /// [`AuthCache::forget`] for a change made elsewhere than through this directory.
    pub fn auth_cache(&self) -> &AuthCache {
        &self.auth_cache
    }

    pub fn hub_domain(&self) -> &Domain {
        &self.hub_domain
    }

    /// `patient.<hub domain>`: where patients' addresses live.
    pub fn patient_domain(&self) -> Domain {
        Domain::try_from(format!("patient.{}", self.hub_domain).as_str())
            .expect("a valid domain with one more label is valid")
    }

    /// The address a patient with this INS has on this hub.
    pub fn patient_address(&self, ins: &Ins) -> Address {
        Address::try_from(format!("{ins}@{}", self.patient_domain()).as_str())
            .expect("an INS is a valid local part")
    }

    // ----- accounts -----

    /// Creates an account, its keys and mailboxes. `actor` is recorded in the audit chain.
    pub fn add_account(
        &self,
        address: Address,
        kind: AccountKind,
        password: Option<&str>,
        actor: &str,
    ) -> Result<Account> {
        self.check_address_for(&address, &kind)?;
        let password_hash = password.map(password::hash_password).transpose()?;
        if self.account_id(&address)?.is_some() {
            return Err(DirectoryError::AddressTaken(address.to_string()));
        }
        let id = AccountId(self.store.next_counter("account", 1)?);
        let account = Account {
            id,
            address: address.clone(),
            kind,
            password_hash,
            app_passwords: Vec::new(),
            disabled: false,
            created: mshub_store::now(),
            lifecycle: Lifecycle::Active,
            activation_code: None,
        };
        // Keys and mailboxes first: an account that exists is always usable.
        self.store.provision_account(id)?;
        let mut batch = Batch::new();
        let address_key = self.records.address_key(&address)?;
        batch.check(ACCOUNT_ADDRESS, address_key.clone(), None);
        batch.put(ACCOUNT_ADDRESS, address_key, id.to_key());
        batch.put(ACCOUNT, id.to_key(), self.records.encode(&account)?);
        if let AccountKind::Professional { .. } = &account.kind {
            batch.put(search::PROFESSIONALS, id.to_key(), Vec::new());
        }
        if let AccountKind::Organisation { members, .. } = &account.kind {
            for member in members {
                let mut key = self.records.member_prefix(member)?;
                key.extend_from_slice(&id.to_key());
                batch.put(ORGANISATION_MEMBER, key, Vec::new());
            }
        }
        if self.store.kv().commit(&batch)? == Commit::Conflict {
            return Err(DirectoryError::AddressTaken(address.to_string()));
        }
        self.store.audit(
            AuditEvent::new(actor, "account.create", address.as_str())
                .with_detail(account.kind.label()),
        )?;
        tracing::info!(account = %id, kind = account.kind.label(), "account created");
        Ok(account)
    }

    /// DESIGN §4: patients at `<INS>@patient.<hub>`, everyone else on another local domain.
    fn check_address_for(&self, address: &Address, kind: &AccountKind) -> Result<()> {
        let domain = address.domain();
        if self.domain(&domain)?.map(|d| d.role) != Some(DomainRole::Local) {
            return Err(DirectoryError::NotLocalDomain(domain.to_string()));
        }
        match kind {
            AccountKind::Patient {
                ins,
                birth_date,
                sex,
                ..
            } => {
                check_identity(ins, birth_date, *sex)?;
                if *address != self.patient_address(ins) {
                    return Err(DirectoryError::PatientAddressMismatch {
                        address: address.to_string(),
                        ins: ins.to_string(),
                        patient_domain: self.patient_domain().to_string(),
                    });
                }
            }
            _ if domain == self.patient_domain() => {
                return Err(DirectoryError::InvalidAddress {
                    value: address.to_string(),
                    reason: format!("only patients have addresses on {domain}"),
                });
            }
            AccountKind::Organisation { members, .. } => {
                for m in members {
                    if self.account_id(m)?.is_none() {
                        return Err(DirectoryError::NoSuchAccount(m.to_string()));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn account_id(&self, address: &Address) -> Result<Option<AccountId>> {
        Ok(self
            .store
            .kv()
            .get(ACCOUNT_ADDRESS, &self.records.address_key(address)?)?
            .and_then(|raw| raw.as_slice().try_into().ok().map(u64::from_be_bytes))
            .map(AccountId))
    }

    pub fn account(&self, id: AccountId) -> Result<Option<Account>> {
        self.store
            .kv()
            .get(ACCOUNT, &id.to_key())?
            .map(|raw| self.records.decode(&raw))
            .transpose()
    }

    pub fn account_by_address(&self, address: &Address) -> Result<Option<Account>> {
        match self.account_id(address)? {
            Some(id) => self.account(id),
            None => Ok(None),
        }
    }

    /// The accounts of several addresses, in their order (two reads of the store in all).
    pub fn accounts_by_addresses(&self, addresses: &[Address]) -> Result<Vec<Option<Account>>> {
        let keys: Vec<Vec<u8>> = addresses
            .iter()
            .map(|a| self.records.address_key(a))
            .collect::<Result<_>>()?;
        let ids: Vec<Option<AccountId>> = self
            .store
            .kv()
            .get_many(ACCOUNT_ADDRESS, &keys)?
            .into_iter()
            .map(|raw| {
                raw.and_then(|raw| raw.as_slice().try_into().ok().map(u64::from_be_bytes))
                    .map(AccountId)
            })
            .collect();
        let present: Vec<Vec<u8>> = ids
            .iter()
            .flatten()
            .map(|id| id.to_key().to_vec())
            .collect();
        let mut records = self.store.kv().get_many(ACCOUNT, &present)?.into_iter();
        ids.into_iter()
            .map(|id| match id {
                None => Ok(None),
                Some(_) => records
                    .next()
                    .flatten()
                    .map(|raw| self.records.decode(&raw))
                    .transpose(),
            })
            .collect()
    }

    pub(crate) fn required(&self, address: &Address) -> Result<(Account, Vec<u8>)> {
        let id = self
            .account_id(address)?
            .ok_or_else(|| DirectoryError::NoSuchAccount(address.to_string()))?;
        let raw = self
            .store
            .kv()
            .get(ACCOUNT, &id.to_key())?
            .ok_or_else(|| DirectoryError::NoSuchAccount(address.to_string()))?;
        Ok((self.records.decode(&raw)?, raw))
    }

    /// Every account, by id.
    pub fn accounts(&self) -> Result<Vec<Account>> {
        self.store
            .kv()
            .scan(ACCOUNT, &[], None, None)?
            .into_iter()
            .map(|(_, v)| self.records.decode(&v))
            .collect()
    }

    /// The organisation mailboxes `address` is a member of.
    pub fn organisations_of(&self, address: &Address) -> Result<Vec<Account>> {
        let mut out = Vec::new();
        let prefix = self.records.member_prefix(address)?;
        for (key, _) in self
            .store
            .kv()
            .scan(ORGANISATION_MEMBER, &prefix, None, None)?
        {
            let Some(id) = key
                .get(key.len().saturating_sub(8)..)
                .and_then(|b| b.try_into().ok())
                .map(|b| AccountId(u64::from_be_bytes(b)))
            else {
                continue;
            };
            // The index says where to look; the account itself says whether it still holds.
            if let Some(org) = self.account(id)? {
                if matches!(&org.kind, AccountKind::Organisation { members, .. } if members.contains(address))
                {
                    out.push(org);
                }
            }
        }
        Ok(out)
    }

    /// Read-modify-write of one account under compare-and-swap, audited. Whatever changed
    /// (password, application passwords, disabling), the passwords remembered for the
    /// account are forgotten once it is written.
    fn update(
        &self,
        address: &Address,
        actor: &str,
        action: &str,
        change: impl Fn(&mut Account) -> Result<()>,
    ) -> Result<Account> {
        loop {
            let (mut account, raw) = self.required(address)?;
            change(&mut account)?;
            let mut batch = Batch::new();
            batch.check(ACCOUNT, account.id.to_key(), Some(raw));
            batch.put(ACCOUNT, account.id.to_key(), self.records.encode(&account)?);
            if self.store.kv().commit(&batch)? == Commit::Done {
                self.auth_cache.forget(account.id);
                self.store
                    .audit(AuditEvent::new(actor, action, address.as_str()))?;
                return Ok(account);
            }
        }
    }

    /// Adds `member` to (or, with `present` false, removes it from) the members of the
    /// organisation mailbox `organisation`: who may send as it, and who reads the documents it
    /// filed. Audited `account.member.add` / `account.member.remove`.
    pub fn set_member(
        &self,
        organisation: &Address,
        member: &Address,
        present: bool,
        actor: &str,
    ) -> Result<()> {
        if present && self.account_id(member)?.is_none() {
            return Err(DirectoryError::NoSuchAccount(member.to_string()));
        }
        loop {
            let (mut account, raw) = self.required(organisation)?;
            let AccountKind::Organisation { members, .. } = &mut account.kind else {
                return Err(DirectoryError::InvalidField {
                    field: "organisation",
                    reason: format!("{organisation} is not an organisation mailbox"),
                });
            };
            let had = members.contains(member);
            if had == present {
                return Ok(());
            }
            if present {
                members.push(member.clone());
            } else {
                members.retain(|m| m != member);
            }
            let mut index_key = self.records.member_prefix(member)?;
            index_key.extend_from_slice(&account.id.to_key());
            let mut batch = Batch::new();
            batch.check(ACCOUNT, account.id.to_key(), Some(raw));
            batch.put(ACCOUNT, account.id.to_key(), self.records.encode(&account)?);
            if present {
                batch.put(ORGANISATION_MEMBER, index_key, Vec::new());
            } else {
                batch.remove(ORGANISATION_MEMBER, index_key);
            }
            if self.store.kv().commit(&batch)? == Commit::Done {
                let action = if present {
                    "account.member.add"
                } else {
                    "account.member.remove"
                };
                self.store.audit(
                    AuditEvent::new(actor, action, organisation.as_str())
                        .with_detail(format!("member:{member}")),
                )?;
                return Ok(());
            }
        }
    }

    pub fn set_password(&self, address: &Address, password: &str, actor: &str) -> Result<()> {
        let hash = password::hash_password(password)?;
        self.update(address, actor, "account.password", |a| {
            a.password_hash = Some(hash.clone());
            Ok(())
        })?;
        Ok(())
    }

    pub fn set_disabled(&self, address: &Address, disabled: bool, actor: &str) -> Result<()> {
        let action = if disabled {
            "account.disable"
        } else {
            "account.enable"
        };
        self.update(address, actor, action, |a| {
            a.disabled = disabled;
            Ok(())
        })?;
        Ok(())
    }

    /// Creates an application password; the clear text is returned once and never stored.
    pub fn add_app_password(
        &self,
        address: &Address,
        label: &str,
        actor: &str,
    ) -> Result<(AppPassword, String)> {
        let clear = password::generate_app_password();
        let hash = password::hash_password(&clear)?;
        let account = self.update(address, actor, "account.app-password.create", |a| {
            let id = a.app_passwords.iter().map(|p| p.id).max().unwrap_or(0) + 1;
            a.app_passwords.push(AppPassword {
                id,
                label: label.to_string(),
                hash: hash.clone(),
                created: mshub_store::now(),
            });
            Ok(())
        })?;
        let created = account.app_passwords.last().cloned().expect("just pushed");
        Ok((created, clear))
    }

    pub fn revoke_app_password(&self, address: &Address, id: u32, actor: &str) -> Result<()> {
        self.update(address, actor, "account.app-password.revoke", |a| {
            let before = a.app_passwords.len();
            a.app_passwords.retain(|p| p.id != id);
            if a.app_passwords.len() == before {
                return Err(DirectoryError::InvalidField {
                    field: "application password",
                    reason: format!("no application password {id}"),
                });
            }
            Ok(())
        })?;
        Ok(())
    }

    /// What a login names, normalised: without surrounding spaces, in lower case, without a
    /// trailing dot on the domain, and a patient's INS alone for the patient's address (the
    /// web login offers it). `Err` holds the normalised text of a login that is no address.
    fn login_address(&self, login: &str) -> std::result::Result<Address, String> {
        let login = login.trim();
        if let Ok(ins) = Ins::try_from(login) {
            return Ok(self.patient_address(&ins));
        }
        Address::try_from(login).map_err(|_| login.to_lowercase())
    }

    /// Checks a login. Throttled per account (whatever the spelling of its address) and per
    /// source; failures say nothing about whether the account exists. The attempt is counted
    /// before the password is checked, and the check waits for a slot of the hashing gate:
    /// [`DirectoryError::Busy`] if none comes free in time (nothing was checked).
    ///
    /// A password verified for the same account and door in the last minutes is not hashed
    /// again (see [`auth_cache`]): no slot is taken. The throttle, the account's state and
    /// the door are checked all the same, against the record read for this login.
    pub fn authenticate(
        &self,
        login: &str,
        password: &str,
        source: IpAddr,
        door: Door,
    ) -> Result<Account> {
        let outcome = self.check_login(login, password, source, door);
        let result = match &outcome {
            Ok(_) => "ok",
            Err(DirectoryError::BadCredentials) => "bad_credentials",
            Err(DirectoryError::Throttled { .. }) => "throttled",
            Err(DirectoryError::Busy(_)) => "busy",
            Err(DirectoryError::Disabled(_) | DirectoryError::NotOpen { .. }) => "not_usable",
            Err(_) => "error",
        };
        let door = match door {
            Door::Mail => "mail",
            Door::Web => "web",
        };
        LOGINS.inc(&[door, result]);
        outcome
    }

    /// [`Directory::authenticate`], uncounted.
    fn check_login(
        &self,
        login: &str,
        password: &str,
        source: IpAddr,
        door: Door,
    ) -> Result<Account> {
        let address = self.login_address(login);
        let account = match &address {
            Ok(address) => self.account_by_address(address)?,
            Err(_) => None,
        };
        // A login that names no account is throttled by its normalised text, and still costs a
        // whole verification below (no account enumeration).
        let key = match (&account, &address) {
            (Some(a), _) => format!("account:{}", a.id),
            (None, Ok(address)) => format!("login:{address}"),
            (None, Err(text)) => format!("login:{text}"),
        };
        // First, even for a remembered password: a lockout in force stops it too.
        // Attempts of the same account still in flight (its other devices logging in) are
        // waited for, not taken as failures; decided failures are refused at once.
        let attempt = self
            .throttle
            .reserve_queued(&key, source, hashing::PATIENCE)
            .map_err(|wait| DirectoryError::Throttled {
                retry_after_secs: wait.as_secs().max(1),
            })?;
        let tag = account
            .as_ref()
            .and_then(|a| self.auth_cache.tag(a.id, door, password));
        let cached = match (&account, &tag) {
            (Some(a), Some(tag)) => self.auth_cache.check(tag, a, door),
            _ => false,
        };
        let matched = if cached {
            true
        } else {
            match self.verify(account.as_ref(), password, door)? {
                Some(credential) => {
                    if let (Some(a), Some(tag)) = (&account, &tag) {
                        // Only a login that goes through is remembered.
                        if a.is_usable() {
                            self.auth_cache.remember(tag, a, credential);
                        }
                    }
                    true
                }
                None => false,
            }
        };
        match account {
            Some(a) if matched => {
                // The right password: whatever follows, it was no failed guess.
                attempt.succeeded();
                if cached {
                    tracing::debug!(account = %a.id, "login from the authentication cache");
                }
                if a.disabled {
                    return Err(DirectoryError::Disabled(a.address.to_string()));
                }
                if a.lifecycle != Lifecycle::Active {
                    // Mail clients only learn that the account cannot be used; the web inbox
                    // says why and what the patient can do (reopen a closed space).
                    return Err(match door {
                        Door::Mail => DirectoryError::Disabled(a.address.to_string()),
                        Door::Web => DirectoryError::NotOpen {
                            address: a.address.to_string(),
                            lifecycle: a.lifecycle.clone(),
                        },
                    });
                }
                debug_assert!(a.is_usable());
                Ok(a)
            }
            _ => {
                attempt.failed(Instant::now());
                tracing::info!(%source, "authentication failed");
                Err(DirectoryError::BadCredentials)
            }
        }
    }

    /// The hashing part of a login, in one slot of the gate: which credential of `account`
    /// the password matches (its own password, then, at the mail door, its application
    /// passwords), or `None`. An unknown account, or one without a password yet, costs one
    /// verification all the same. [`DirectoryError::Busy`] if no slot came free.
    fn verify(
        &self,
        account: Option<&Account>,
        password: &str,
        door: Door,
    ) -> Result<Option<auth_cache::Credential>> {
        // Busy drops the caller's attempt undecided: withdrawn, it counts for nothing.
        let slot = hashing::gate().enter()?;
        let Some(a) = account else {
            password::burn_verification(&slot, password);
            return Ok(None);
        };
        match a.password_hash.as_deref() {
            Some(h) => {
                if password::verify_password(&slot, password, h) {
                    return Ok(Some(auth_cache::Credential::Password));
                }
            }
            // No password yet (a pending space): as slow as a wrong one.
            None => password::burn_verification(&slot, password),
        }
        if door != Door::Mail {
            return Ok(None);
        }
        Ok(a.app_passwords
            .iter()
            .find(|p| password::verify_password(&slot, password, &p.hash))
            .map(|p| auth_cache::Credential::App(p.id)))
    }

    // ----- trust space -----

    pub fn domain(&self, domain: &Domain) -> Result<Option<DomainEntry>> {
        self.store
            .kv()
            .get(DOMAIN, domain.as_str().as_bytes())?
            .map(|raw| decode("domain", &raw))
            .transpose()
    }

    /// Adds or replaces a domain of the trust space.
    pub fn set_domain(&self, entry: DomainEntry, actor: &str) -> Result<()> {
        let mut batch = Batch::new();
        batch.put(DOMAIN, entry.domain.as_str().as_bytes(), encode(&entry));
        let _ = self.store.kv().commit(&batch)?;
        let detail = match &entry.role {
            DomainRole::Local => "local".to_string(),
            DomainRole::Trusted { route, tls, .. } => format!(
                "trusted, route {}, tls {tls:?}",
                route.as_ref().map_or("by MX".into(), |r| r.to_string())
            ),
        };
        self.store.audit(
            AuditEvent::new(actor, "domain.set", entry.domain.as_str()).with_detail(detail),
        )?;
        Ok(())
    }

    pub fn domains(&self) -> Result<Vec<DomainEntry>> {
        self.store
            .kv()
            .scan(DOMAIN, &[], None, None)?
            .into_iter()
            .map(|(_, v)| decode("domain", &v))
            .collect()
    }

    pub fn is_local(&self, domain: &Domain) -> Result<bool> {
        Ok(matches!(
            self.domain(domain)?,
            Some(DomainEntry {
                role: DomainRole::Local,
                ..
            })
        ))
    }

    /// A domain from which mail is accepted and to which it is relayed: local or trusted.
    pub fn is_in_trust_space(&self, domain: &Domain) -> Result<bool> {
        Ok(self.domain(domain)?.is_some())
    }
}
