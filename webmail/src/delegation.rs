//! Delegation of a patient's space to a relative (DESIGN §4 "Delegation"): read, or read and
//! reply; revocable at once. The relative signs in with its own account and switches to the
//! space it was given; what it may do there is checked on every request, not only at the
//! switch, so a revocation takes effect immediately.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use mshub_store::{AccountId, AuditEvent, Batch, Result, Store, Tree};

/// owner ‖ delegate → [`Grant`] (JSON): who the owner gave access to.
const GIVEN: Tree = Tree("webmail-delegation");
/// delegate ‖ owner → nothing: the spaces a delegate may open.
const RECEIVED: Tree = Tree("webmail-delegation-received");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Read,
    ReadReply,
}

impl Level {
    pub fn label_fr(self) -> &'static str {
        match self {
            Level::Read => "lecture",
            Level::ReadReply => "lecture et réponse",
        }
    }

    pub fn may_reply(self) -> bool {
        self == Level::ReadReply
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub owner: AccountId,
    pub delegate: AccountId,
    pub level: Level,
    pub since: i64,
}

fn pair(a: AccountId, b: AccountId) -> Vec<u8> {
    let mut k = a.to_key().to_vec();
    k.extend_from_slice(&b.to_key());
    k
}

fn id_at(key: &[u8], at: usize) -> Option<AccountId> {
    Some(AccountId(u64::from_be_bytes(
        key.get(at..at + 8)?.try_into().ok()?,
    )))
}

pub struct Delegations {
    store: Arc<Store>,
}

impl Delegations {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Gives (or changes) `delegate`'s access to `owner`'s space; durable and audited.
    pub fn grant(
        &self,
        owner: AccountId,
        actor: &str,
        delegate: AccountId,
        level: Level,
    ) -> Result<()> {
        let grant = Grant {
            owner,
            delegate,
            level,
            since: mshub_store::now(),
        };
        let mut batch = Batch::new();
        batch.put(
            GIVEN,
            pair(owner, delegate),
            serde_json::to_vec(&grant).unwrap_or_default(),
        );
        batch.put(RECEIVED, pair(delegate, owner), Vec::new());
        let _ = self.store.kv().commit(&batch)?;
        self.store.audit(
            AuditEvent::new(actor, "delegation.grant", format!("account:{delegate}"))
                .with_detail(format!("patient:{owner} level:{level:?}")),
        )?;
        Ok(())
    }

    pub fn revoke(&self, owner: AccountId, actor: &str, delegate: AccountId) -> Result<()> {
        let mut batch = Batch::new();
        batch.remove(GIVEN, pair(owner, delegate));
        batch.remove(RECEIVED, pair(delegate, owner));
        let _ = self.store.kv().commit(&batch)?;
        self.store.audit(
            AuditEvent::new(actor, "delegation.revoke", format!("account:{delegate}"))
                .with_detail(format!("patient:{owner}")),
        )?;
        Ok(())
    }

    /// The access `delegate` has to `owner`'s space, if any.
    pub fn level(&self, owner: AccountId, delegate: AccountId) -> Result<Option<Level>> {
        Ok(self
            .store
            .kv()
            .get(GIVEN, &pair(owner, delegate))?
            .and_then(|raw| serde_json::from_slice::<Grant>(&raw).ok())
            .map(|g| g.level))
    }

    /// The grants `owner` gave.
    pub fn given(&self, owner: AccountId) -> Result<Vec<Grant>> {
        Ok(self
            .store
            .kv()
            .scan(GIVEN, &owner.to_key(), None, None)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// The spaces `delegate` may open.
    pub fn received(&self, delegate: AccountId) -> Result<Vec<AccountId>> {
        Ok(self
            .store
            .kv()
            .scan(RECEIVED, &delegate.to_key(), None, None)?
            .into_iter()
            .filter_map(|(k, _)| id_at(&k, 8))
            .collect())
    }

    /// Removes everything given to or by `account` (the space is closed).
    pub fn forget(&self, account: AccountId, actor: &str) -> Result<()> {
        for g in self.given(account)? {
            self.revoke(account, actor, g.delegate)?;
        }
        for owner in self.received(account)? {
            self.revoke(owner, actor, account)?;
        }
        Ok(())
    }
}
