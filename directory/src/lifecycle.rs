//! The patient space's life: created from the insurer's roster without the patient asking
//! (*pending*, with a one-time activation code and an opposition period), then *opposed*
//! (never opened; kept as a tombstone so that a later import does not recreate it), or
//! *active* (activated by the patient, or opened by itself at the end of the period), then
//! *closed* by the patient (reopenable during the retention delay) and finally *destroyed*.
//!
//! ```text
//! pending ──oppose──▶ opposed
//!    │ activate / deadline
//!    ▼
//! active ──close──▶ closed ──delay over──▶ destroyed
//!    ▲                 │
//!    └─────reopen──────┘
//! ```
//!
//! Every transition takes `now` (the caller's clock, so that tests drive time), is one
//! compare-and-swap of the account record together with the `lifecycle-due` index, and is
//! written to the audit chain. The index (due time ‖ account id) lets the periodic
//! [`Directory::tick`] find the spaces whose deadline has come without reading every account.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use mshub_store::{AccountId, AuditEvent, Batch, Commit, Tree};

use crate::{
    password, Account, AccountKind, Address, BirthDate, Directory, DirectoryError, Ins, Result,
    Sex, ACCOUNT, ACCOUNT_ADDRESS,
};

/// due time (BE seconds) ‖ account id → nothing: pending spaces by the end of their
/// opposition period, closed ones by the end of their retention delay.
const DUE: Tree = Tree("lifecycle-due");

/// Shortest password a patient may choose when activating a space.
pub const ACTIVATION_PASSWORD_MIN: usize = 12;

/// Where a space stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Lifecycle {
    /// Open (the state of every account created otherwise than from a roster).
    #[default]
    Active,
    /// Created from a roster; opens by itself at `opposition_deadline` unless opposed.
    Pending { opposition_deadline: i64 },
    /// The patient refused the space: never opened, no content, no keys.
    Opposed { at: i64 },
    /// Closed by the patient; its content is destroyed at `destroy_after` unless reopened.
    Closed { at: i64, destroy_after: i64 },
    /// Content destroyed; only this record remains (and the audit chain).
    Destroyed { at: i64 },
}

impl Lifecycle {
    pub fn label(&self) -> &'static str {
        match self {
            Lifecycle::Active => "active",
            Lifecycle::Pending { .. } => "pending",
            Lifecycle::Opposed { .. } => "opposed",
            Lifecycle::Closed { .. } => "closed",
            Lifecycle::Destroyed { .. } => "destroyed",
        }
    }

    /// Mail is accepted for active and pending spaces (filed, waiting for the patient).
    pub fn accepts_mail(&self) -> bool {
        matches!(self, Lifecycle::Active | Lifecycle::Pending { .. })
    }

    fn due(&self) -> Option<i64> {
        match self {
            Lifecycle::Pending {
                opposition_deadline,
            } => Some(*opposition_deadline),
            Lifecycle::Closed { destroy_after, .. } => Some(*destroy_after),
            _ => None,
        }
    }
}

/// The delays of the lifecycle (`[accounts]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecyclePolicy {
    /// How long a patient may oppose a space created from a roster, in seconds.
    pub opposition_secs: i64,
    /// How long a closed space's content is kept (and the space reopenable), in seconds.
    pub retention_secs: i64,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        Self {
            opposition_secs: 30 * 86_400,
            retention_secs: 90 * 86_400,
        }
    }
}

/// What destroys an account's content (mailboxes, vault, agenda… and its key). The hub
/// installs one that knows every part; the default removes what the store itself keeps.
pub type Purger = Arc<dyn Fn(AccountId) -> Result<()> + Send + Sync>;

#[derive(Default)]
pub(crate) struct Settings {
    policy: RwLock<LifecyclePolicy>,
    purger: RwLock<Option<Purger>>,
}

/// One patient of a roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterPatient {
    pub ins: Ins,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: BirthDate,
    pub sex: Sex,
}

/// What became of one roster patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterOutcome {
    /// A pending space was created; the code is shown once (for the notice) and only its
    /// hash is kept.
    Created {
        account: Box<Account>,
        code: String,
        opposition_deadline: i64,
    },
    /// The same patient already has a space: nothing changed.
    Unchanged,
    /// Not created, with the reason (opposed space, identity that differs, bad identity…).
    Refused(String),
}

/// What [`Directory::tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Pending spaces opened at the end of their opposition period.
    pub opened: Vec<Address>,
    /// Closed spaces whose content was destroyed at the end of the retention delay.
    pub destroyed: Vec<Address>,
}

/// 32 characters without look-alikes (no 0/O, 1/I).
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A one-time activation code: 12 characters (60 bits), shown as `XXXX-XXXX-XXXX`.
pub fn generate_code() -> String {
    let mut bytes = [0u8; 12];
    OsRng.fill_bytes(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| CODE_ALPHABET[usize::from(*b) % 32] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The stored form of a code: SHA-256 over the account id and the code as typed without
/// separators or case. 60 random bits make it too costly to find from the hash.
fn code_hash(account: AccountId, code: &str) -> String {
    let normalised: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let mut h = Sha256::new();
    h.update(b"mshub-activation-v1\0");
    h.update(account.to_key());
    h.update(normalised.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn due_key(at: i64, id: AccountId) -> Vec<u8> {
    let mut k = at.max(0).to_be_bytes().to_vec();
    k.extend_from_slice(&id.to_key());
    k
}

/// Nothing of a refused or destroyed patient is kept but the address: the identity traits
/// go (the sealed record keeps empty names).
fn blank_identity(account: &mut Account) {
    if let AccountKind::Patient {
        given_name,
        family_name,
        ..
    } = &mut account.kind
    {
        given_name.clear();
        family_name.clear();
    }
    account.password_hash = None;
    account.app_passwords.clear();
    account.activation_code = None;
}

/// How many accounts one write of an import holds.
pub const IMPORT_BATCH: usize = 2000;

impl Directory {
    pub fn set_lifecycle_policy(&self, policy: LifecyclePolicy) {
        *self
            .lifecycle
            .policy
            .write()
            .unwrap_or_else(|p| p.into_inner()) = policy;
    }

    pub fn lifecycle_policy(&self) -> LifecyclePolicy {
        *self
            .lifecycle
            .policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Installs what destroys an account's content (see [`Purger`]).
    pub fn set_purger(&self, purger: Purger) {
        *self
            .lifecycle
            .purger
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(purger);
    }

    fn purge(&self, id: AccountId) -> Result<()> {
        let purger = self
            .lifecycle
            .purger
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match purger {
            Some(p) => p(id),
            None => {
                self.store.purge_account(id, &[], &[], &[])?;
                Ok(())
            }
        }
    }

    /// Creates pending spaces for the patients of a roster, many per write. Each outcome is
    /// in the order of `patients`. A patient who already has a space is left alone
    /// (`Unchanged` when the identity is the same); an opposed or destroyed space is never
    /// recreated. Keys and mailboxes are made on first need (first mail, activation).
    pub fn import_patients(
        &self,
        patients: &[RosterPatient],
        now: i64,
        actor: &str,
    ) -> Result<Vec<RosterOutcome>> {
        let policy = self.lifecycle_policy();
        let deadline = now + policy.opposition_secs;
        let mut outcomes: Vec<Option<RosterOutcome>> = vec![None; patients.len()];
        let mut fresh = Vec::new();
        let mut seen = HashSet::new();
        let mut candidates = Vec::new();
        for (i, p) in patients.iter().enumerate() {
            if let Err(e) = crate::check_identity(&p.ins, &p.birth_date, p.sex) {
                outcomes[i] = Some(RosterOutcome::Refused(e.to_string()));
                continue;
            }
            if !seen.insert(p.ins.clone()) {
                outcomes[i] = Some(RosterOutcome::Refused(format!(
                    "INS {} appears twice in the same batch",
                    p.ins
                )));
                continue;
            }
            candidates.push(i);
        }
        // One lookup for the whole batch: on a remote store, a round trip per line would be
        // what the import waits on.
        let addresses: Vec<Address> = candidates
            .iter()
            .map(|&i| self.patient_address(&patients[i].ins))
            .collect();
        let found = self.accounts_by_addresses(&addresses)?;
        for (&i, existing) in candidates.iter().zip(found) {
            let p = &patients[i];
            match existing {
                None => fresh.push(i),
                Some(existing) => {
                    outcomes[i] = Some(match &existing.lifecycle {
                        Lifecycle::Opposed { .. } => RosterOutcome::Refused(
                            "the patient opposed the creation of the space: not recreated".into(),
                        ),
                        Lifecycle::Destroyed { .. } => RosterOutcome::Refused(
                            "the patient closed this space, whose content was destroyed: not \
                             recreated"
                                .into(),
                        ),
                        _ if existing.kind == patient_kind(p) => RosterOutcome::Unchanged,
                        _ => RosterOutcome::Refused(
                            "a space exists for this INS with other identity traits: left as it is"
                                .into(),
                        ),
                    });
                }
            }
        }
        if !fresh.is_empty() {
            let first = self.store.reserve_counter("account", fresh.len() as u64)?;
            let prepared: Vec<(Account, String)> = fresh
                .iter()
                .enumerate()
                .map(|(n, &i)| {
                    let p = &patients[i];
                    let id = AccountId(first + n as u64);
                    let code = generate_code();
                    let account = Account {
                        id,
                        address: self.patient_address(&p.ins),
                        kind: patient_kind(p),
                        password_hash: None,
                        app_passwords: Vec::new(),
                        disabled: false,
                        created: now,
                        lifecycle: Lifecycle::Pending {
                            opposition_deadline: deadline,
                        },
                        activation_code: Some(code_hash(id, &code)),
                    };
                    (account, code)
                })
                .collect();
            // Sealing each identity costs a public-key encryption: spread it over the cores.
            let encoded = self.encode_parallel(prepared.iter().map(|(a, _)| a).collect())?;
            let mut batch = Batch::new();
            for ((account, _), raw) in prepared.iter().zip(encoded) {
                let address = self.records.address_key(&account.address)?;
                batch.check(ACCOUNT_ADDRESS, address.clone(), None);
                batch.put(ACCOUNT_ADDRESS, address, account.id.to_key());
                batch.put(ACCOUNT, account.id.to_key(), raw);
                batch.put(DUE, due_key(deadline, account.id), Vec::new());
            }
            if self.store.kv().commit(&batch)? == Commit::Conflict {
                // Someone created one of these spaces meanwhile: one by one, then.
                return self.import_one_by_one(patients, now, actor);
            }
            let events: Vec<AuditEvent> = prepared
                .iter()
                .map(|(a, _)| {
                    AuditEvent::new(actor, "account.create", a.address.as_str())
                        .with_detail("patient, pending (roster)")
                })
                .collect();
            self.store.audit_many(&events)?;
            for (&i, (account, code)) in fresh.iter().zip(prepared) {
                outcomes[i] = Some(RosterOutcome::Created {
                    account: Box::new(account),
                    code,
                    opposition_deadline: deadline,
                });
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(RosterOutcome::Unchanged))
            .collect())
    }

    fn import_one_by_one(
        &self,
        patients: &[RosterPatient],
        now: i64,
        actor: &str,
    ) -> Result<Vec<RosterOutcome>> {
        let mut out = Vec::with_capacity(patients.len());
        for p in patients {
            out.extend(self.import_patients(std::slice::from_ref(p), now, actor)?);
        }
        Ok(out)
    }

    fn encode_parallel(&self, accounts: Vec<&Account>) -> Result<Vec<Vec<u8>>> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        if threads <= 1 || accounts.len() < 64 {
            return accounts.iter().map(|a| self.records.encode(a)).collect();
        }
        let chunk = accounts.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = accounts
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|a| self.records.encode(a))
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(accounts.len());
            for h in handles {
                all.extend(h.join().map_err(|_| DirectoryError::InvalidField {
                    field: "import",
                    reason: "a sealing thread panicked".into(),
                })??);
            }
            Ok(all)
        })
    }

    /// One transition: read, change, write the record and move its due-index entry under
    /// compare-and-swap, then audit.
    fn transition(
        &self,
        address: &Address,
        actor: &str,
        action: &str,
        change: impl Fn(&mut Account) -> Result<()>,
    ) -> Result<Account> {
        loop {
            let (mut account, raw) = self.required(address)?;
            let before = account.lifecycle.clone();
            change(&mut account)?;
            let mut batch = Batch::new();
            batch.check(ACCOUNT, account.id.to_key(), Some(raw));
            batch.put(ACCOUNT, account.id.to_key(), self.records.encode(&account)?);
            if let Some(at) = before.due() {
                batch.remove(DUE, due_key(at, account.id));
            }
            if let Some(at) = account.lifecycle.due() {
                batch.put(DUE, due_key(at, account.id), Vec::new());
            }
            if self.store.kv().commit(&batch)? == Commit::Done {
                // Closed, opposed, destroyed, reactivated with a new password: the passwords
                // remembered for the space are forgotten at once.
                self.auth_cache.forget(account.id);
                self.store.audit(
                    AuditEvent::new(actor, action, address.as_str()).with_detail(format!(
                        "{} -> {}",
                        before.label(),
                        account.lifecycle.label()
                    )),
                )?;
                tracing::info!(account = %account.id, action, "space lifecycle");
                return Ok(account);
            }
        }
    }

    /// The operator records a patient's opposition (by letter, by phone…): the pending space
    /// is never opened, what was filed meanwhile is destroyed.
    pub fn oppose(&self, address: &Address, now: i64, actor: &str) -> Result<Account> {
        let account =
            self.transition(address, actor, "space.oppose", |a| {
                match &a.lifecycle {
                    Lifecycle::Pending { .. } => {}
                    other => return Err(DirectoryError::WrongState {
                        address: address.to_string(),
                        lifecycle: other.clone(),
                        action:
                            "opposing (only a pending space can be opposed; an open one is closed)",
                    }),
                }
                a.lifecycle = Lifecycle::Opposed { at: now };
                blank_identity(a);
                Ok(())
            })?;
        self.purge(account.id)?;
        Ok(account)
    }

    /// Checks INS + birth date + code for the public pages, throttled like a login. Any
    /// mismatch gives the same [`DirectoryError::BadActivationCode`].
    fn check_code(
        &self,
        ins: &Ins,
        birth_date: &BirthDate,
        code: &str,
        source: IpAddr,
    ) -> Result<Account> {
        let key = format!("activation:{ins}");
        if let Err(wait) = self.throttle.check(&key, source, Instant::now()) {
            return Err(DirectoryError::Throttled {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        let account = self.account_by_address(&self.patient_address(ins))?;
        let ok = account.as_ref().is_some_and(|a| {
            matches!(&a.kind, AccountKind::Patient { birth_date: b, .. } if b == birth_date)
                && a.activation_code.as_deref() == Some(code_hash(a.id, code).as_str())
        });
        match account {
            Some(a) if ok => {
                self.throttle.record_success(&key);
                Ok(a)
            }
            _ => {
                self.throttle.record_failure(&key, source, Instant::now());
                Err(DirectoryError::BadActivationCode)
            }
        }
    }

    /// The patient opposes from the public page, with the code of the notice.
    pub fn oppose_with_code(
        &self,
        ins: &Ins,
        birth_date: &BirthDate,
        code: &str,
        now: i64,
        source: IpAddr,
    ) -> Result<Account> {
        let account = self.check_code(ins, birth_date, code, source)?;
        self.oppose(&account.address, now, account.address.as_str())
    }

    /// The patient activates the space (before the deadline, or after it opened by itself
    /// as long as no password was chosen) and chooses a password of at least
    /// [`ACTIVATION_PASSWORD_MIN`] characters. Keys and mailboxes are made now.
    pub fn activate(
        &self,
        ins: &Ins,
        birth_date: &BirthDate,
        code: &str,
        new_password: &str,
        _now: i64,
        source: IpAddr,
    ) -> Result<Account> {
        if new_password.chars().count() < ACTIVATION_PASSWORD_MIN {
            return Err(DirectoryError::WeakPassword(
                "at least 12 characters are required",
            ));
        }
        let account = self.check_code(ins, birth_date, code, source)?;
        let hash = password::hash_password(new_password)?;
        self.store.provision_account(account.id)?;
        self.transition(
            &account.address,
            account.address.as_str(),
            "space.activate",
            |a| {
                let unused = a.lifecycle == Lifecycle::Active && a.password_hash.is_none();
                if !matches!(a.lifecycle, Lifecycle::Pending { .. }) && !unused {
                    return Err(DirectoryError::BadActivationCode);
                }
                a.lifecycle = Lifecycle::Active;
                a.password_hash = Some(hash.clone());
                a.activation_code = None;
                Ok(())
            },
        )
    }

    /// The patient (webmail) or the operator closes the space: nobody can log in, mail is
    /// refused, the content is destroyed after the retention delay unless reopened.
    pub fn close(&self, address: &Address, now: i64, actor: &str) -> Result<Account> {
        let policy = self.lifecycle_policy();
        self.transition(address, actor, "space.close", |a| {
            if !matches!(a.lifecycle, Lifecycle::Active | Lifecycle::Pending { .. }) {
                return Err(DirectoryError::WrongState {
                    address: address.to_string(),
                    lifecycle: a.lifecycle.clone(),
                    action: "closing",
                });
            }
            a.lifecycle = Lifecycle::Closed {
                at: now,
                destroy_after: now + policy.retention_secs,
            };
            Ok(())
        })
    }

    /// Reopens a closed space during the retention delay.
    pub fn reopen(&self, address: &Address, now: i64, actor: &str) -> Result<Account> {
        self.transition(address, actor, "space.reopen", |a| match a.lifecycle {
            Lifecycle::Closed { destroy_after, .. } if now < destroy_after => {
                a.lifecycle = Lifecycle::Active;
                Ok(())
            }
            _ => Err(DirectoryError::WrongState {
                address: address.to_string(),
                lifecycle: a.lifecycle.clone(),
                action: "reopening (only a closed space, during its retention delay)",
            }),
        })
    }

    /// The patient reopens a closed space from the login page, with its password.
    pub fn reopen_with_password(
        &self,
        login: &str,
        password: &str,
        now: i64,
        source: IpAddr,
    ) -> Result<Account> {
        match self.authenticate(login, password, source, crate::Door::Web) {
            Err(DirectoryError::NotOpen { address, .. }) => {
                let address = Address::try_from(address.as_str())?;
                self.reopen(&address, now, address.as_str())
            }
            other => other,
        }
    }

    /// Does what is due at `now`: opens the pending spaces whose opposition period is over,
    /// destroys the content of closed spaces whose retention delay is over. At most `limit`
    /// of each per call; run it periodically.
    pub fn tick(&self, now: i64, limit: usize) -> Result<TickReport> {
        let mut report = TickReport::default();
        let mut after: Option<Vec<u8>> = None;
        let mut done = 0;
        'scan: while done < limit {
            let page = self
                .store
                .kv()
                .scan(DUE, &[], after.as_deref(), Some(IMPORT_BATCH))?;
            if page.is_empty() {
                break;
            }
            let mut opening = Vec::new();
            for (key, _) in &page {
                after = Some(key.clone());
                let (Some(at), Some(id)) = (key.get(..8), key.get(8..16)) else {
                    continue;
                };
                let at = i64::from_be_bytes(at.try_into().unwrap_or_default());
                if at > now || done >= limit {
                    self.open_all(&opening, now, &mut report)?;
                    break 'scan;
                }
                done += 1;
                let id = AccountId(u64::from_be_bytes(id.try_into().unwrap_or_default()));
                let raw = self.store.kv().get(ACCOUNT, &id.to_key())?;
                let state = match &raw {
                    Some(raw) => serde_json::from_slice::<StateOnly>(raw)
                        .map(|s| s.lifecycle)
                        .unwrap_or_default(),
                    None => Lifecycle::Active,
                };
                match (raw, state) {
                    (Some(raw), Lifecycle::Pending { .. }) => opening.push((key.clone(), id, raw)),
                    (Some(_), Lifecycle::Closed { destroy_after, .. }) if destroy_after <= now => {
                        if let Some(account) = self.account(id)? {
                            self.destroy(&account.address, now)?;
                            report.destroyed.push(account.address);
                        }
                    }
                    _ => {
                        // A stale entry (the space is gone or its state moved on): drop it.
                        let mut batch = Batch::new();
                        batch.remove(DUE, key.clone());
                        let _ = self.store.kv().commit(&batch)?;
                    }
                }
            }
            self.open_all(&opening, now, &mut report)?;
        }
        Ok(report)
    }

    /// Opens pending spaces whose deadline has come, many per write: the state changes, the
    /// sealed identity is kept as is. A space changed meanwhile is taken alone.
    fn open_all(
        &self,
        due: &[(Vec<u8>, AccountId, Vec<u8>)],
        now: i64,
        report: &mut TickReport,
    ) -> Result<()> {
        if due.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        let mut opened = Vec::new();
        for (key, id, raw) in due {
            let restated = self.records.restate(raw, |l| {
                matches!(l, Lifecycle::Pending { opposition_deadline } if *opposition_deadline <= now)
                    .then_some(Lifecycle::Active)
            })?;
            batch.remove(DUE, key.clone());
            if let Some((address, record)) = restated {
                batch.check(ACCOUNT, id.to_key(), Some(raw.clone()));
                batch.put(ACCOUNT, id.to_key(), record);
                opened.push(address);
            }
        }
        if self.store.kv().commit(&batch)? == Commit::Conflict {
            // The code stays valid to choose a password (see `activate`).
            for (_, id, _) in due {
                let Some(account) = self.account(*id)? else {
                    continue;
                };
                let opened_one = self.transition(&account.address, "system", "space.open", |a| {
                    match a.lifecycle {
                        Lifecycle::Pending {
                            opposition_deadline,
                        } if opposition_deadline <= now => {
                            a.lifecycle = Lifecycle::Active;
                            Ok(())
                        }
                        _ => Err(DirectoryError::WrongState {
                            address: a.address.to_string(),
                            lifecycle: a.lifecycle.clone(),
                            action: "opening",
                        }),
                    }
                });
                if opened_one.is_ok() {
                    report.opened.push(account.address);
                }
            }
            return Ok(());
        }
        let events: Vec<AuditEvent> = opened
            .iter()
            .map(|a| {
                AuditEvent::new("system", "space.open", a.as_str()).with_detail("pending -> active")
            })
            .collect();
        self.store.audit_many(&events)?;
        report.opened.extend(opened);
        Ok(())
    }

    /// Destroys a closed space's content; the record becomes a tombstone.
    fn destroy(&self, address: &Address, now: i64) -> Result<()> {
        let (account, _) = self.required(address)?;
        // Content first: if the purge fails half-way, the space is still closed and the
        // next tick finishes the work.
        self.purge(account.id)?;
        self.transition(address, "system", "space.destroy", |a| {
            if !matches!(a.lifecycle, Lifecycle::Closed { .. }) {
                return Err(DirectoryError::WrongState {
                    address: address.to_string(),
                    lifecycle: a.lifecycle.clone(),
                    action: "destroying",
                });
            }
            a.lifecycle = Lifecycle::Destroyed { at: now };
            blank_identity(a);
            Ok(())
        })?;
        Ok(())
    }
}

/// The state of a stored account record, read without opening its sealed identity.
#[derive(Deserialize)]
struct StateOnly {
    #[serde(default)]
    lifecycle: Lifecycle,
}

fn patient_kind(p: &RosterPatient) -> AccountKind {
    AccountKind::Patient {
        ins: p.ins.clone(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        birth_date: p.birth_date,
        sex: p.sex,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_and_hash_without_separators_or_case() {
        let a = generate_code();
        assert_eq!(a.len(), 14);
        assert_ne!(a, generate_code());
        let id = AccountId(7);
        assert_eq!(
            code_hash(id, &a),
            code_hash(id, &a.replace('-', "").to_lowercase())
        );
        assert_ne!(code_hash(id, &a), code_hash(AccountId(8), &a));
    }

    #[test]
    fn old_records_without_a_state_read_as_active() {
        let l: Lifecycle = serde_json::from_str(r#"{"state":"active"}"#).unwrap();
        assert_eq!(l, Lifecycle::Active);
        assert_eq!(Lifecycle::default(), Lifecycle::Active);
    }
}
