//! Mailboxes and their messages, with IMAP's bookkeeping (RFC 9051 §2.3.1, RFC 7162).
//!
//! Records:
//! - `mailbox`: id → [`Mailbox`] (its counters: UIDNEXT, HIGHESTMODSEQ, EXISTS, size, and
//!   the unseen and deleted messages);
//! - `mailbox-name`: account ‖ name → id;
//! - `message`: mailbox id ‖ UID → [`MessageMeta`];
//! - `expunged`: mailbox id ‖ UID → MODSEQ of the expunge (for QRESYNC's VANISHED).
//!
//! Invariants: every change to a mailbox's messages rewrites its [`Mailbox`] record under a
//! compare-and-swap, so UIDs and MODSEQs are allocated exactly once even with concurrent
//! deliveries; UIDs only grow; each change gets a MODSEQ above every earlier one.
//!
//! UIDs and MODSEQs never go backwards, not even over a change that was never made durable.
//! A record is visible to readers as soon as it is applied, before its flush (see
//! [`crate::SledBackend`]): an IMAP client may see UID 247 and then the flush fail (the change
//! is taken back) or the process die. So UIDs and MODSEQs are *reserved* durably, in blocks of
//! [`RESERVE_BLOCK`], before any is used ([`Mailbox::uid_reserved`],
//! [`Mailbox::modseq_reserved`]), and a mailbox *resumes* above its reservation at its first
//! change in each process and after each failed write
//! ([`crate::Backend::write_failures`]): whatever a reader may have seen lies below. At most a
//! block of UIDs per mailbox is skipped per restart or failure; UIDVALIDITY never has to
//! change. A backend whose applied writes are durable at once (PostgreSQL) needs none of it
//! ([`crate::Backend::applied_is_durable`]).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::backend::{Batch, Tree};
use crate::events::{Change, ChangeKind};
use crate::{json, AccountId, BlobId, Result, SealedBlob, Store, StoreError};

pub(crate) const MAILBOX: Tree = Tree("mailbox");
pub(crate) const MAILBOX_NAME: Tree = Tree("mailbox-name");
/// account ‖ name → (): names subscribed without a mailbox (RFC 9051 §6.3.7 allows it, and a
/// subscription outlives its deleted mailbox, RFC 3501 §6.3.6); a mailbox's own subscription
/// is a field of its record.
const SUBSCRIPTION_NAME: Tree = Tree("subscription-name");
pub(crate) const MESSAGE: Tree = Tree("message");
pub(crate) const EXPUNGED: Tree = Tree("expunged");
/// mailbox ‖ MODSEQ ‖ UID → nothing: the messages by their last change, so that "what changed
/// since MODSEQ n" (an IMAP session's resynchronisation, RFC 7162) reads only the changes.
/// Kept from the version that added it on: older records show up once they change, which is
/// all a session that selected its mailbox later needs.
pub(crate) const BY_MODSEQ: Tree = Tree("message-modseq");
/// mailbox id → highest UID claimed as `\Recent` (u32, big-endian): IMAP4rev1's recent
/// messages (RFC 3501 §2.3.2) are those above it, each claimed by exactly one session.
pub(crate) const MAILBOX_RECENT: Tree = Tree("mailbox-recent");

/// IMAP's hierarchy delimiter for this store.
pub const DELIMITER: char = '/';

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MailboxId(pub u64);

impl std::fmt::Display for MailboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A message's unique identifier in its mailbox (RFC 9051 §2.3.1.1): never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Uid(u32);

impl Uid {
    pub const MIN: Uid = Uid(1);

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Uid {
    type Error = StoreError;
    fn try_from(v: u32) -> Result<Self> {
        if v == 0 {
            return Err(StoreError::corrupt("uid", "UIDs start at 1"));
        }
        Ok(Uid(v))
    }
}

impl From<Uid> for u32 {
    fn from(u: Uid) -> u32 {
        u.0
    }
}

impl std::fmt::Display for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A mod-sequence (RFC 7162 §3.1.1): a positive number that grows with every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModSeq(pub u64);

/// RFC 9051 §2.3.1.1: changes whenever UIDs of a mailbox name may have been reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UidValidity(pub u32);

/// RFC 6154 special-use attributes, plus the INBOX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpecialUse {
    Inbox,
    Sent,
    Drafts,
    Trash,
    Archive,
    Junk,
}

impl SpecialUse {
    /// The folders every account gets, with their default names.
    pub const DEFAULTS: [(SpecialUse, &'static str); 5] = [
        (SpecialUse::Inbox, "INBOX"),
        (SpecialUse::Sent, "Sent"),
        (SpecialUse::Drafts, "Drafts"),
        (SpecialUse::Trash, "Trash"),
        (SpecialUse::Archive, "Archive"),
    ];

    /// The RFC 6154 attribute (`None` for the INBOX, which has none).
    pub fn attribute(self) -> Option<&'static str> {
        match self {
            SpecialUse::Inbox => None,
            SpecialUse::Sent => Some("\\Sent"),
            SpecialUse::Drafts => Some("\\Drafts"),
            SpecialUse::Trash => Some("\\Trash"),
            SpecialUse::Archive => Some("\\Archive"),
            SpecialUse::Junk => Some("\\Junk"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub id: MailboxId,
    pub account: AccountId,
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub uid_validity: UidValidity,
    pub uid_next: Uid,
    pub highest_modseq: ModSeq,
    /// Number of messages (IMAP's EXISTS).
    pub exists: u32,
    /// Sum of the messages' sizes (RFC 8438 STATUS=SIZE).
    pub size: u64,
    /// Messages without `\Seen` and with `\Deleted` (STATUS UNSEEN and DELETED), kept with
    /// EXISTS in the same batches. `None` in a record written before they were counted:
    /// [`Store::flag_counts`] counts once and keeps the result.
    #[serde(default)]
    pub flag_counts: Option<FlagCounts>,
    pub subscribed: bool,
    /// UIDs below this one are reserved: durably written before any of them was used. 0 in a
    /// record written before reservations (none reserved).
    #[serde(default)]
    pub uid_reserved: u32,
    /// MODSEQs up to this one are reserved, as UIDs are.
    #[serde(default)]
    pub modseq_reserved: u64,
}

/// UIDs and MODSEQs reserved at once, beyond those a change needs: one durable write of the
/// mailbox record per this many changes, and at most this many skipped per restart.
pub const RESERVE_BLOCK: u32 = 32;

/// The mailboxes that resumed above their reservation in this process, with the
/// [`crate::Backend::write_failures`] count they resumed at.
#[derive(Default)]
pub(crate) struct Resumed(std::sync::Mutex<std::collections::HashMap<MailboxId, u64>>);

impl Resumed {
    fn at(&self, id: MailboxId) -> Option<u64> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied()
    }

    fn set(&self, id: MailboxId, failures: u64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, failures);
    }
}

/// How many messages of a mailbox are unseen and deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagCounts {
    pub unseen: u32,
    pub deleted: u32,
}

impl FlagCounts {
    fn of<'a>(flags: impl IntoIterator<Item = &'a BTreeSet<Flag>>) -> Self {
        let mut counts = Self::default();
        for f in flags {
            counts.add(f);
        }
        counts
    }

    fn add(&mut self, flags: &BTreeSet<Flag>) {
        self.unseen += u32::from(!flags.contains(&Flag::Seen));
        self.deleted += u32::from(flags.contains(&Flag::Deleted));
    }

    fn remove(&mut self, flags: &BTreeSet<Flag>) {
        self.unseen = self
            .unseen
            .saturating_sub(u32::from(!flags.contains(&Flag::Seen)));
        self.deleted = self
            .deleted
            .saturating_sub(u32::from(flags.contains(&Flag::Deleted)));
    }
}

impl Mailbox {
    /// Counts a message that enters the mailbox (EXISTS, size, flags).
    fn take_in(&mut self, meta: &MessageMeta) {
        self.exists += 1;
        self.size += meta.size;
        if let Some(c) = &mut self.flag_counts {
            c.add(&meta.flags);
        }
    }

    /// Counts a message that leaves the mailbox.
    fn let_go(&mut self, meta: &MessageMeta) {
        self.exists = self.exists.saturating_sub(1);
        self.size = self.size.saturating_sub(meta.size);
        if let Some(c) = &mut self.flag_counts {
            c.remove(&meta.flags);
        }
    }

    /// Counts a message whose flags change from `old` to `new`.
    fn reflag(&mut self, old: &BTreeSet<Flag>, new: &BTreeSet<Flag>) {
        if let Some(c) = &mut self.flag_counts {
            c.remove(old);
            c.add(new);
        }
    }
}

/// A message flag (RFC 9051 §2.3.2). `\Recent` is not stored: IMAP4rev2 dropped it and a
/// rev1 session derives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    /// A keyword: an IMAP atom, e.g. `$Forwarded`, `$MDNSent`.
    Keyword(String),
}

impl TryFrom<&str> for Flag {
    type Error = StoreError;
    fn try_from(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "\\seen" => Flag::Seen,
            "\\answered" => Flag::Answered,
            "\\flagged" => Flag::Flagged,
            "\\deleted" => Flag::Deleted,
            "\\draft" => Flag::Draft,
            _ => {
                // RFC 9051 §9: flag-keyword = atom; atom-specials excluded.
                let atom_ok = !s.is_empty()
                    && s.len() <= 255
                    && s.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b));
                if !atom_ok {
                    return Err(StoreError::InvalidFlag(s.to_string()));
                }
                Flag::Keyword(s.to_string())
            }
        })
    }
}

impl TryFrom<String> for Flag {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self> {
        Flag::try_from(s.as_str())
    }
}

impl From<Flag> for String {
    fn from(f: Flag) -> String {
        f.to_string()
    }
}

impl std::fmt::Display for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Keyword(k) => k,
        })
    }
}

/// How STORE combines flags (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// A message as its mailbox knows it; the content is the sealed blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    pub uid: Uid,
    pub blob: BlobId,
    pub flags: BTreeSet<Flag>,
    /// Unix time, seconds (IMAP's INTERNALDATE).
    pub internal_date: i64,
    /// Size of the raw message in octets (RFC822.SIZE).
    pub size: u64,
    pub modseq: ModSeq,
}

/// Outcome of a conditional STORE (RFC 7162 §3.1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagUpdate {
    /// Messages whose flags were set (changed or not), with their flags and MODSEQ after.
    pub updated: Vec<MessageMeta>,
    /// Messages not touched because their MODSEQ was above UNCHANGEDSINCE.
    pub modified: Vec<Uid>,
}

pub(crate) fn name_key(account: AccountId, name: &str) -> Vec<u8> {
    let mut k = account.to_key().to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

pub(crate) fn modseq_key(mailbox: MailboxId, modseq: ModSeq, uid: Uid) -> Vec<u8> {
    let mut k = mailbox.0.to_be_bytes().to_vec();
    k.extend_from_slice(&modseq.0.to_be_bytes());
    k.extend_from_slice(&uid.0.to_be_bytes());
    k
}

fn message_key(mailbox: MailboxId, uid: Uid) -> Vec<u8> {
    let mut k = mailbox.0.to_be_bytes().to_vec();
    k.extend_from_slice(&uid.0.to_be_bytes());
    k
}

/// RFC 9051 §5.1: INBOX is case-insensitive; other names are kept as given.
fn canonical_name(name: &str) -> Result<String> {
    let invalid = |reason| StoreError::InvalidMailboxName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > 512 {
        return Err(invalid("it is longer than 512 bytes"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(invalid("it contains a control character"));
    }
    if name.contains(['*', '%']) {
        return Err(invalid("it contains a LIST wildcard (* or %)"));
    }
    if name.starts_with(DELIMITER) || name.ends_with(DELIMITER) || name.contains("//") {
        return Err(invalid("it has an empty hierarchy level"));
    }
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok("INBOX".into());
    }
    Ok(name.to_string())
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|e| StoreError::corrupt(what, e))
}

impl Store {
    pub(crate) fn ensure_default_mailboxes(&self, account: AccountId) -> Result<()> {
        for (special, name) in SpecialUse::DEFAULTS {
            if self.mailbox(account, name)?.is_none() {
                match self.create_mailbox(account, name, Some(special)) {
                    Ok(_) | Err(StoreError::MailboxExists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    pub fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        let name = canonical_name(name)?;
        if self
            .kv
            .get(MAILBOX_NAME, &name_key(account, &name))?
            .is_some()
        {
            return Err(StoreError::MailboxExists(name));
        }
        let id = MailboxId(self.next_counter("mailbox", 1)?);
        // Seeded with the clock so that a mailbox recreated in a new data directory does not
        // reuse a UIDVALIDITY a client may have cached.
        let validity = self.next_counter("uidvalidity", crate::now() as u64)? as u32;
        let mailbox = Mailbox {
            id,
            account,
            name: name.clone(),
            special_use,
            uid_validity: UidValidity(validity),
            uid_next: Uid::MIN,
            highest_modseq: ModSeq(1),
            uid_reserved: 0,
            modseq_reserved: 0,
            exists: 0,
            size: 0,
            flag_counts: Some(FlagCounts::default()),
            subscribed: true,
        };
        let mut batch = Batch::new();
        batch.check(MAILBOX_NAME, name_key(account, &name), None);
        batch.put(MAILBOX_NAME, name_key(account, &name), id.0.to_be_bytes());
        batch.put(MAILBOX, id.0.to_be_bytes(), json(&mailbox));
        if self.kv.commit(&batch)? == crate::Commit::Conflict {
            return Err(StoreError::MailboxExists(name));
        }
        self.events.publish(Change {
            account,
            mailbox: id,
            kind: ChangeKind::MailboxCreated,
        });
        Ok(mailbox)
    }

    /// The account's mailboxes, ordered by name.
    pub fn mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        let ids = self.kv.scan(MAILBOX_NAME, &account.to_key(), None, None)?;
        ids.into_iter()
            .filter_map(|(_, id)| {
                let id = MailboxId(u64::from_be_bytes(id.as_slice().try_into().ok()?));
                self.mailbox_by_id(id).transpose()
            })
            .collect()
    }

    pub fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        let Ok(name) = canonical_name(name) else {
            return Ok(None);
        };
        match self.kv.get(MAILBOX_NAME, &name_key(account, &name))? {
            Some(id) => {
                let id = u64::from_be_bytes(
                    id.as_slice()
                        .try_into()
                        .map_err(|_| StoreError::corrupt("mailbox name index", "bad id"))?,
                );
                self.mailbox_by_id(MailboxId(id))
            }
            None => Ok(None),
        }
    }

    pub fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>> {
        self.kv
            .get(MAILBOX, &id.0.to_be_bytes())?
            .map(|raw| decode("mailbox", &raw))
            .transpose()
    }

    /// The mailbox of `account` with this special use (e.g. the INBOX for delivery).
    pub fn special_mailbox(&self, account: AccountId, use_: SpecialUse) -> Result<Mailbox> {
        // Delivery asks for the INBOX on every message: try the default name first.
        if let Some((_, name)) = SpecialUse::DEFAULTS.iter().find(|(u, _)| *u == use_) {
            if let Some(m) = self.mailbox(account, name)? {
                if m.special_use == Some(use_) {
                    return Ok(m);
                }
            }
        }
        if let Some(m) = self
            .mailboxes(account)?
            .into_iter()
            .find(|m| m.special_use == Some(use_))
        {
            return Ok(m);
        }
        // A space created from a roster gets its mailboxes on first need (the first mail).
        self.ensure_default_mailboxes(account)?;
        self.mailboxes(account)?
            .into_iter()
            .find(|m| m.special_use == Some(use_))
            .ok_or_else(|| StoreError::NoSuchMailbox(format!("{use_:?}")))
    }

    /// The mailbox record for a change that takes `uids` UIDs and `modseqs` MODSEQs, with the
    /// raw record to check against: resumed above its reservation if it has not since this
    /// process started or since the last failed write, and with enough reserved for the
    /// change, durably (a commit of its own when the reservation runs out).
    fn mailbox_for_change(
        &self,
        id: MailboxId,
        uids: u32,
        modseqs: u64,
    ) -> Result<(Mailbox, Vec<u8>)> {
        if self.kv.applied_is_durable() {
            // Nothing a reader sees can be taken back: no reservation needed.
            return self.mailbox_required(id);
        }
        for _ in 0..crate::MAX_ATTEMPTS {
            // The record first, then the failure count: a record read before a failure that
            // took it back fails its compare-and-swap, one read after is resumed.
            let (mut mb, raw) = self.mailbox_required(id)?;
            let failures = self.kv.write_failures();
            let resumed = self.resumed.at(id) == Some(failures);
            let uid_end = u64::from(mb.uid_next.0) + u64::from(uids);
            if resumed
                && uid_end <= u64::from(mb.uid_reserved)
                && mb.highest_modseq.0 + modseqs <= mb.modseq_reserved
            {
                return Ok((mb, raw));
            }
            if !resumed {
                mb.uid_next = mb.uid_next.max(Uid(mb.uid_reserved.max(1)));
                mb.highest_modseq = mb.highest_modseq.max(ModSeq(mb.modseq_reserved));
            }
            let exhausted = || StoreError::corrupt("mailbox", "UID space exhausted");
            mb.uid_reserved = mb
                .uid_next
                .0
                .checked_add(uids)
                .and_then(|u| u.checked_add(RESERVE_BLOCK))
                .ok_or_else(exhausted)?;
            mb.modseq_reserved = mb.highest_modseq.0 + modseqs + u64::from(RESERVE_BLOCK);
            let record = json(&mb);
            let mut batch = Batch::new();
            batch.check(MAILBOX, id.0.to_be_bytes(), Some(raw));
            batch.put(MAILBOX, id.0.to_be_bytes(), record.clone());
            if self.kv.commit(&batch)? == crate::Commit::Done {
                self.resumed.set(id, failures);
                return Ok((mb, record));
            }
        }
        Err(StoreError::Contention(crate::MAX_ATTEMPTS))
    }

    fn mailbox_required(&self, id: MailboxId) -> Result<(Mailbox, Vec<u8>)> {
        let raw = self
            .kv
            .get(MAILBOX, &id.0.to_be_bytes())?
            .ok_or_else(|| StoreError::NoSuchMailbox(id.to_string()))?;
        Ok((decode("mailbox", &raw)?, raw))
    }

    /// The names `account` subscribed to that have no mailbox.
    pub fn subscribed_names(&self, account: AccountId) -> Result<BTreeSet<String>> {
        Ok(self
            .kv
            .scan(SUBSCRIPTION_NAME, &account.to_key(), None, None)?
            .into_iter()
            .filter_map(|(k, _)| String::from_utf8(k[8..].to_vec()).ok())
            .collect())
    }

    /// Records `now` as the names `account` subscribed to without a mailbox, given `before`
    /// as read: only the difference is written, in one batch.
    pub fn set_subscribed_names(
        &self,
        account: AccountId,
        before: &BTreeSet<String>,
        now: &BTreeSet<String>,
    ) -> Result<()> {
        let mut batch = Batch::new();
        for name in before.difference(now) {
            batch.remove(SUBSCRIPTION_NAME, name_key(account, name));
        }
        for name in now.difference(before) {
            batch.put(SUBSCRIPTION_NAME, name_key(account, name), Vec::new());
        }
        let _ = self.kv.commit(&batch)?;
        Ok(())
    }

    pub fn set_subscribed(&self, id: MailboxId, subscribed: bool) -> Result<()> {
        self.retry(id.0, || {
            let (mut mailbox, raw) = self.mailbox_required(id)?;
            mailbox.subscribed = subscribed;
            let mut batch = Batch::new();
            batch.check(MAILBOX, id.0.to_be_bytes(), Some(raw));
            batch.put(MAILBOX, id.0.to_be_bytes(), json(&mailbox));
            Ok((batch, ()))
        })
    }

    /// Renames a mailbox (special-use folders, INBOX included, keep their names).
    pub fn rename_mailbox(&self, id: MailboxId, new_name: &str) -> Result<Mailbox> {
        let new_name = canonical_name(new_name)?;
        let mailbox = self.retry(id.0, || {
            let (mut mailbox, raw) = self.mailbox_required(id)?;
            if mailbox.special_use.is_some() {
                return Err(StoreError::SpecialUseMailbox(mailbox.name));
            }
            if self
                .kv
                .get(MAILBOX_NAME, &name_key(mailbox.account, &new_name))?
                .is_some()
            {
                return Err(StoreError::MailboxExists(new_name.clone()));
            }
            let mut batch = Batch::new();
            batch.check(MAILBOX, id.0.to_be_bytes(), Some(raw));
            batch.check(MAILBOX_NAME, name_key(mailbox.account, &new_name), None);
            batch.remove(MAILBOX_NAME, name_key(mailbox.account, &mailbox.name));
            batch.put(
                MAILBOX_NAME,
                name_key(mailbox.account, &new_name),
                id.0.to_be_bytes(),
            );
            mailbox.name = new_name.clone();
            batch.put(MAILBOX, id.0.to_be_bytes(), json(&mailbox));
            Ok((batch, mailbox))
        });
        let mailbox = mailbox?;
        self.events.publish(Change {
            account: mailbox.account,
            mailbox: id,
            kind: ChangeKind::MailboxRenamed,
        });
        Ok(mailbox)
    }

    /// Deletes a mailbox and its messages.
    pub fn delete_mailbox(&self, id: MailboxId) -> Result<()> {
        // Serialised with the mailbox's other writers: mail arriving meanwhile is either in
        // the batch or refused by its compare-and-swap (and retried here).
        let (mailbox, messages) = self.retry(id.0, || {
            let (mailbox, raw) = self.mailbox_required(id)?;
            if mailbox.special_use.is_some() {
                return Err(StoreError::SpecialUseMailbox(mailbox.name));
            }
            let messages = self.messages(id)?;
            let mut batch = Batch::new();
            batch.check(MAILBOX, id.0.to_be_bytes(), Some(raw));
            batch.remove(MAILBOX, id.0.to_be_bytes());
            batch.remove(MAILBOX_NAME, name_key(mailbox.account, &mailbox.name));
            for m in &messages {
                batch.remove(MESSAGE, message_key(id, m.uid));
                batch.remove(BY_MODSEQ, modseq_key(id, m.modseq, m.uid));
                SealedBlob::remove_from(m.blob, &mut batch);
            }
            for (k, _) in self.kv.scan(EXPUNGED, &id.0.to_be_bytes(), None, None)? {
                batch.remove(EXPUNGED, k);
            }
            batch.remove(MAILBOX_RECENT, id.0.to_be_bytes());
            Ok((batch, (mailbox, messages)))
        })?;
        self.delete_blob_files(messages.iter().map(|m| m.blob))?;
        self.events.publish(Change {
            account: mailbox.account,
            mailbox: id,
            kind: ChangeKind::MailboxDeleted,
        });
        Ok(())
    }

    /// Stores a message durably in a mailbox of its owner and returns its record.
    pub fn append(
        &self,
        mailbox: MailboxId,
        raw_message: &[u8],
        flags: BTreeSet<Flag>,
        internal_date: i64,
    ) -> Result<MessageMeta> {
        self.append_with(mailbox, raw_message, flags, internal_date, &|_, _| {})
    }

    /// As [`Store::append`], with more writes of the caller's in the same atomic batch, made
    /// from the message's record (its UID): e.g. a marker that work on the message is pending,
    /// durable exactly when the message is.
    pub fn append_with(
        &self,
        mailbox: MailboxId,
        raw_message: &[u8],
        flags: BTreeSet<Flag>,
        internal_date: i64,
        extra: &dyn Fn(&MessageMeta, &mut Batch),
    ) -> Result<MessageMeta> {
        let (owner, _) = self.mailbox_required(mailbox)?;
        let sealed = self.place_sealed(self.keyring.seal(owner.account, raw_message)?)?;
        let meta = self
            .insert_message(
                mailbox,
                &sealed,
                flags,
                internal_date,
                raw_message.len() as u64,
                extra,
            )
            .inspect_err(|_| {
                let _ = self.blobs.delete(sealed.id);
            })?;
        // Its reader and the filers read it soon: no need to decrypt what was just sealed.
        self.plain.put(owner.account, sealed.id, raw_message);
        Ok(meta)
    }

    /// Stores several messages in one mailbox, all or nothing (IMAP MULTIAPPEND, RFC 3502): the
    /// records of all of them are committed in one batch under the mailbox's compare-and-swap,
    /// with consecutive UIDs and one MODSEQ. On any error nothing is referenced and the blobs
    /// already written are deleted.
    pub fn append_many(
        &self,
        mailbox: MailboxId,
        messages: &[(&[u8], BTreeSet<Flag>, i64)],
    ) -> Result<Vec<MessageMeta>> {
        let (owner, _) = self.mailbox_required(mailbox)?;
        let mut sealed = Vec::with_capacity(messages.len());
        let discard = |sealed: &[SealedBlob]| {
            for s in sealed {
                let _ = self.blobs.delete(s.id);
            }
        };
        for (raw, _, _) in messages {
            match self
                .keyring
                .seal(owner.account, raw)
                .and_then(|s| self.place_sealed(s))
            {
                Ok(s) => sealed.push(s),
                Err(e) => {
                    discard(&sealed);
                    return Err(e);
                }
            }
        }
        let committed = self.retry(mailbox.0, || {
            let (mut mb, raw) = self.mailbox_for_change(mailbox, messages.len() as u32, 1)?;
            let modseq = ModSeq(mb.highest_modseq.0 + 1);
            let mut batch = Batch::new();
            batch.check(MAILBOX, mailbox.0.to_be_bytes(), Some(raw));
            let mut metas = Vec::with_capacity(messages.len());
            for ((bytes, flags, internal_date), blob) in messages.iter().zip(&sealed) {
                let meta = MessageMeta {
                    uid: mb.uid_next,
                    blob: blob.id,
                    flags: flags.clone(),
                    internal_date: *internal_date,
                    size: bytes.len() as u64,
                    modseq,
                };
                mb.uid_next = Uid(mb
                    .uid_next
                    .0
                    .checked_add(1)
                    .ok_or_else(|| StoreError::corrupt("mailbox", "UID space exhausted"))?);
                mb.take_in(&meta);
                batch.put(MESSAGE, message_key(mailbox, meta.uid), json(&meta));
                batch.put(BY_MODSEQ, modseq_key(mailbox, modseq, meta.uid), Vec::new());
                blob.add_to(&mut batch);
                metas.push(meta);
            }
            mb.highest_modseq = modseq;
            batch.put(MAILBOX, mailbox.0.to_be_bytes(), json(&mb));
            Ok((batch, metas))
        });
        let metas = match committed {
            Ok(metas) => metas,
            Err(e) => {
                discard(&sealed);
                return Err(e);
            }
        };
        for (meta, (raw, _, _)) in metas.iter().zip(messages) {
            self.plain.put(owner.account, meta.blob, raw);
            self.events.publish(Change {
                account: owner.account,
                mailbox,
                kind: ChangeKind::Appended {
                    uid: meta.uid,
                    modseq: meta.modseq,
                },
            });
        }
        Ok(metas)
    }

    /// Stores one message in several mailboxes, a copy in each (sealed to each owner), in one
    /// atomic batch: all copies or none. For a message to several local recipients, answered
    /// once: a refusal must mean that no recipient has it. `extra` adds the caller's writes
    /// for copy `i` (of `mailboxes[i]`) to the batch. On any error nothing is referenced and
    /// the blobs already written are deleted.
    pub fn append_each(
        &self,
        mailboxes: &[MailboxId],
        raw_message: &[u8],
        internal_date: i64,
        extra: &dyn Fn(usize, &MessageMeta, &mut Batch),
    ) -> Result<Vec<MessageMeta>> {
        let copies: Vec<(MailboxId, BTreeSet<Flag>)> =
            mailboxes.iter().map(|&id| (id, BTreeSet::new())).collect();
        self.append_copies(&copies, raw_message, internal_date, extra)
    }

    /// As [`Store::append_each`], each copy with its own flags: e.g. the recipients' copies
    /// and the sender's Sent copy (`\Seen`) of one submission, all or none.
    pub fn append_copies(
        &self,
        copies: &[(MailboxId, BTreeSet<Flag>)],
        raw_message: &[u8],
        internal_date: i64,
        extra: &dyn Fn(usize, &MessageMeta, &mut Batch),
    ) -> Result<Vec<MessageMeta>> {
        let mailboxes: Vec<MailboxId> = copies.iter().map(|(id, _)| *id).collect();
        let mailboxes = mailboxes.as_slice();
        let distinct: BTreeSet<_> = mailboxes.iter().collect();
        if distinct.len() != mailboxes.len() {
            return Err(StoreError::corrupt(
                "append_each",
                "a mailbox named twice gets one copy: name it once",
            ));
        }
        let mut sealed = Vec::with_capacity(mailboxes.len());
        let mut owners = Vec::with_capacity(mailboxes.len());
        let discard = |sealed: &[SealedBlob]| {
            for s in sealed {
                let _ = self.blobs.delete(s.id);
            }
        };
        for id in mailboxes {
            let placed = self.mailbox_required(*id).and_then(|(owner, _)| {
                let s = self.place_sealed(self.keyring.seal(owner.account, raw_message)?)?;
                Ok((owner.account, s))
            });
            match placed {
                Ok((owner, s)) => {
                    owners.push(owner);
                    sealed.push(s);
                }
                Err(e) => {
                    discard(&sealed);
                    return Err(e);
                }
            }
        }
        let committed = (|| {
            for _ in 0..crate::MAX_ATTEMPTS {
                let mut batch = Batch::new();
                let mut metas = Vec::with_capacity(mailboxes.len());
                for (i, ((id, flags), blob)) in copies.iter().zip(&sealed).enumerate() {
                    let id = *id;
                    let (mut mb, raw) = self.mailbox_for_change(id, 1, 1)?;
                    let meta = MessageMeta {
                        uid: mb.uid_next,
                        blob: blob.id,
                        flags: flags.clone(),
                        internal_date,
                        size: raw_message.len() as u64,
                        modseq: ModSeq(mb.highest_modseq.0 + 1),
                    };
                    mb.uid_next =
                        Uid(mb.uid_next.0.checked_add(1).ok_or_else(|| {
                            StoreError::corrupt("mailbox", "UID space exhausted")
                        })?);
                    mb.highest_modseq = meta.modseq;
                    mb.take_in(&meta);
                    batch.check(MAILBOX, id.0.to_be_bytes(), Some(raw));
                    batch.put(MAILBOX, id.0.to_be_bytes(), json(&mb));
                    batch.put(MESSAGE, message_key(id, meta.uid), json(&meta));
                    batch.put(BY_MODSEQ, modseq_key(id, meta.modseq, meta.uid), Vec::new());
                    blob.add_to(&mut batch);
                    extra(i, &meta, &mut batch);
                    metas.push(meta);
                }
                // No lane is held across several mailboxes: a concurrent change to one of them
                // fails the compare-and-swap, and the copies are made again.
                if let crate::Applied::Done(ticket) = self.kv.apply(&batch)? {
                    self.kv.sync(ticket)?;
                    return Ok(metas);
                }
            }
            Err(StoreError::Contention(crate::MAX_ATTEMPTS))
        })();
        let metas = committed.inspect_err(|_| discard(&sealed))?;
        for ((meta, &id), owner) in metas.iter().zip(mailboxes).zip(&owners) {
            self.plain.put(*owner, meta.blob, raw_message);
            self.events.publish(Change {
                account: *owner,
                mailbox: id,
                kind: ChangeKind::Appended {
                    uid: meta.uid,
                    modseq: meta.modseq,
                },
            });
        }
        Ok(metas)
    }

    /// Commits the message record (and an inline blob) under the mailbox's compare-and-swap.
    fn insert_message(
        &self,
        mailbox: MailboxId,
        sealed: &SealedBlob,
        flags: BTreeSet<Flag>,
        internal_date: i64,
        size: u64,
        extra: &dyn Fn(&MessageMeta, &mut Batch),
    ) -> Result<MessageMeta> {
        let (meta, account) = self.retry(mailbox.0, || {
            let (mut mb, raw) = self.mailbox_for_change(mailbox, 1, 1)?;
            let meta = MessageMeta {
                uid: mb.uid_next,
                blob: sealed.id,
                flags: flags.clone(),
                internal_date,
                size,
                modseq: ModSeq(mb.highest_modseq.0 + 1),
            };
            mb.uid_next = Uid(mb
                .uid_next
                .0
                .checked_add(1)
                .ok_or_else(|| StoreError::corrupt("mailbox", "UID space exhausted"))?);
            mb.highest_modseq = meta.modseq;
            mb.take_in(&meta);
            let mut batch = Batch::new();
            batch.check(MAILBOX, mailbox.0.to_be_bytes(), Some(raw));
            batch.put(MAILBOX, mailbox.0.to_be_bytes(), json(&mb));
            batch.put(MESSAGE, message_key(mailbox, meta.uid), json(&meta));
            batch.put(
                BY_MODSEQ,
                modseq_key(mailbox, meta.modseq, meta.uid),
                Vec::new(),
            );
            sealed.add_to(&mut batch);
            extra(&meta, &mut batch);
            Ok((batch, (meta, mb.account)))
        })?;
        self.events.publish(Change {
            account,
            mailbox,
            kind: ChangeKind::Appended {
                uid: meta.uid,
                modseq: meta.modseq,
            },
        });
        Ok(meta)
    }

    /// All messages of a mailbox, by UID.
    pub fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        self.kv
            .scan(MESSAGE, &mailbox.0.to_be_bytes(), None, None)?
            .into_iter()
            .map(|(_, v)| decode("message", &v))
            .collect()
    }

    /// The unseen and deleted messages of `mailbox` (STATUS UNSEEN, DELETED) from its record;
    /// a record written before they were counted is counted once, and the count kept unless
    /// the mailbox changed meanwhile (then the next call counts again).
    pub fn flag_counts(&self, mailbox: &Mailbox) -> Result<FlagCounts> {
        if let Some(c) = mailbox.flag_counts {
            return Ok(c);
        }
        let (mut mb, raw) = self.mailbox_required(mailbox.id)?;
        if let Some(c) = mb.flag_counts {
            return Ok(c);
        }
        let counts = FlagCounts::of(self.messages(mailbox.id)?.iter().map(|m| &m.flags));
        mb.flag_counts = Some(counts);
        let mut batch = Batch::new();
        batch.check(MAILBOX, mailbox.id.0.to_be_bytes(), Some(raw));
        batch.put(MAILBOX, mailbox.id.0.to_be_bytes(), json(&mb));
        // Lost to a concurrent change: that change's count is the true one, nothing to keep.
        let _ = self.kv.commit(&batch)?;
        Ok(counts)
    }

    pub fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageMeta>> {
        self.kv
            .get(MESSAGE, &message_key(mailbox, uid))?
            .map(|raw| decode("message", &raw))
            .transpose()
    }

    /// The raw message, decrypted.
    pub fn read_message(&self, mailbox: MailboxId, uid: Uid) -> Result<Vec<u8>> {
        let (mb, _) = self.mailbox_required(mailbox)?;
        let meta = self
            .message(mailbox, uid)?
            .ok_or(StoreError::NoSuchMessage {
                mailbox,
                uid: uid.0,
            })?;
        self.read_blob(mb.account, meta.blob)
    }

    /// STORE: changes the flags of `uids` (missing UIDs are ignored, as RFC 9051 §6.4.6 has
    /// it), except those modified after `unchanged_since` (RFC 7162 §3.1.3).
    pub fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &BTreeSet<Flag>,
        unchanged_since: Option<ModSeq>,
    ) -> Result<FlagUpdate> {
        let (update, account, modseq) = self.retry(mailbox.0, || {
            let (mut mb, raw) = self.mailbox_for_change(mailbox, 0, 1)?;
            let modseq = ModSeq(mb.highest_modseq.0 + 1);
            let mut batch = Batch::new();
            let mut update = FlagUpdate::default();
            let mut changed_any = false;
            for &uid in uids {
                let Some(mut meta) = self.message(mailbox, uid)? else {
                    continue;
                };
                if unchanged_since.is_some_and(|u| meta.modseq > u) {
                    update.modified.push(uid);
                    continue;
                }
                let new: BTreeSet<Flag> = match op {
                    FlagOp::Replace => flags.clone(),
                    FlagOp::Add => meta.flags.union(flags).cloned().collect(),
                    FlagOp::Remove => meta.flags.difference(flags).cloned().collect(),
                };
                if new != meta.flags {
                    mb.reflag(&meta.flags, &new);
                    batch.remove(BY_MODSEQ, modseq_key(mailbox, meta.modseq, uid));
                    batch.put(BY_MODSEQ, modseq_key(mailbox, modseq, uid), Vec::new());
                    meta.flags = new;
                    meta.modseq = modseq;
                    batch.put(MESSAGE, message_key(mailbox, uid), json(&meta));
                    changed_any = true;
                }
                update.updated.push(meta);
            }
            if changed_any {
                mb.highest_modseq = modseq;
                batch.check(MAILBOX, mailbox.0.to_be_bytes(), Some(raw));
                batch.put(MAILBOX, mailbox.0.to_be_bytes(), json(&mb));
            }
            Ok((batch, (update, mb.account, changed_any.then_some(modseq))))
        })?;
        if let Some(modseq) = modseq {
            let uids = update
                .updated
                .iter()
                .filter(|m| m.modseq == modseq)
                .map(|m| m.uid)
                .collect();
            self.events.publish(Change {
                account,
                mailbox,
                kind: ChangeKind::FlagsChanged { uids, modseq },
            });
        }
        Ok(update)
    }

    /// Removes `uids` from the mailbox (the caller chose them, e.g. those flagged `\Deleted`)
    /// and returns those that were there.
    pub fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>> {
        let (removed, account, modseq) = self.retry(mailbox.0, || {
            let (mut mb, raw) = self.mailbox_for_change(mailbox, 0, 1)?;
            let modseq = ModSeq(mb.highest_modseq.0 + 1);
            let mut batch = Batch::new();
            let mut removed = Vec::new();
            for &uid in uids {
                let Some(meta) = self.message(mailbox, uid)? else {
                    continue;
                };
                batch.remove(MESSAGE, message_key(mailbox, uid));
                batch.remove(BY_MODSEQ, modseq_key(mailbox, meta.modseq, uid));
                SealedBlob::remove_from(meta.blob, &mut batch);
                batch.put(EXPUNGED, message_key(mailbox, uid), modseq.0.to_be_bytes());
                mb.let_go(&meta);
                removed.push(meta);
            }
            if !removed.is_empty() {
                mb.highest_modseq = modseq;
                batch.check(MAILBOX, mailbox.0.to_be_bytes(), Some(raw));
                batch.put(MAILBOX, mailbox.0.to_be_bytes(), json(&mb));
            }
            Ok((batch, (removed, mb.account, modseq)))
        })?;
        if removed.is_empty() {
            return Ok(Vec::new());
        }
        // After the commit: a crash here leaves an unreferenced sealed blob, never a
        // reference to a missing one.
        self.delete_blob_files(removed.iter().map(|m| m.blob))?;
        let uids: Vec<Uid> = removed.iter().map(|m| m.uid).collect();
        self.events.publish(Change {
            account,
            mailbox,
            kind: ChangeKind::Expunged {
                uids: uids.clone(),
                modseq,
            },
        });
        Ok(uids)
    }

    /// The messages of `mailbox` changed (appended, copied in, flags set) after `since`, by
    /// MODSEQ: what a session that knew the mailbox at `since` has to learn, read from the
    /// MODSEQ index without going through every message.
    pub fn changed_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<Vec<MessageMeta>> {
        let after = modseq_key(mailbox, since, Uid(u32::MAX));
        let mut out = Vec::new();
        for (k, _) in self
            .kv
            .scan(BY_MODSEQ, &mailbox.0.to_be_bytes(), Some(&after), None)?
        {
            let uid = k
                .get(16..20)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| StoreError::corrupt("modseq index", "bad key"))?;
            // Gone or changed again since the scan: the record says what is true now.
            if let Some(meta) = self.message(mailbox, Uid::try_from(uid)?)? {
                if meta.modseq > since {
                    out.push(meta);
                }
            }
        }
        Ok(out)
    }

    /// The highest UID of `mailbox` some session claimed as `\Recent` (0: none yet). The
    /// messages above it arrived since a session last selected the mailbox (RFC 3501 §2.3.2).
    pub fn recent_uid(&self, mailbox: MailboxId) -> Result<u32> {
        Ok(self
            .kv
            .get(MAILBOX_RECENT, &mailbox.0.to_be_bytes())?
            .and_then(|raw| <[u8; 4]>::try_from(raw.as_slice()).ok())
            .map_or(0, u32::from_be_bytes))
    }

    /// How many messages of `mailbox` no session claimed as `\Recent` yet (IMAP4rev1's STATUS
    /// RECENT, RFC 3501 §6.3.10).
    pub fn recent_count(&self, mailbox: MailboxId) -> Result<u32> {
        let after = message_key(mailbox, Uid(self.recent_uid(mailbox)?));
        Ok(self
            .kv
            .scan(MESSAGE, &mailbox.0.to_be_bytes(), Some(&after), None)?
            .len() as u32)
    }

    /// Claims for one session the messages of `mailbox` with UIDs above those claimed so far,
    /// up to `up_to`, and returns the highest UID claimed before: that session's recent
    /// messages are those in (returned, `up_to`], and no other claim ever gets them (a
    /// compare-and-swap, also between nodes sharing the store).
    pub fn claim_recent(&self, mailbox: MailboxId, up_to: Uid) -> Result<u32> {
        const ATTEMPTS: u32 = 16;
        let key = mailbox.0.to_be_bytes();
        for _ in 0..ATTEMPTS {
            let raw = self.kv.get(MAILBOX_RECENT, &key)?;
            let before = raw
                .as_deref()
                .and_then(|r| <[u8; 4]>::try_from(r).ok())
                .map_or(0, u32::from_be_bytes);
            if before >= up_to.0 {
                return Ok(before);
            }
            let mut batch = Batch::new();
            batch.check(MAILBOX_RECENT, key, raw);
            batch.put(MAILBOX_RECENT, key, up_to.0.to_be_bytes());
            if self.kv.commit(&batch)? == crate::Commit::Done {
                return Ok(before);
            }
        }
        Err(StoreError::Contention(ATTEMPTS))
    }

    /// UIDs expunged after `since` (QRESYNC's VANISHED (EARLIER), RFC 7162 §3.2.10).
    pub fn expunged_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<Vec<Uid>> {
        let mut out = Vec::new();
        for (k, v) in self
            .kv
            .scan(EXPUNGED, &mailbox.0.to_be_bytes(), None, None)?
        {
            let modseq = u64::from_be_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| StoreError::corrupt("expunged", "bad modseq"))?,
            );
            if modseq > since.0 {
                let uid = u32::from_be_bytes(
                    k.get(8..12)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| StoreError::corrupt("expunged", "bad key"))?,
                );
                out.push(Uid::try_from(uid)?);
            }
        }
        Ok(out)
    }

    /// COPY (RFC 9051 §6.4.7) within one account: returns (source UID, new UID) pairs. All or
    /// nothing: the copies are committed in one batch.
    pub fn copy_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>> {
        self.transfer(from, uids, to, false)
    }

    /// MOVE (RFC 6851): the messages leave `from` and arrive in `to` in one atomic batch (no
    /// duplicate after a crash), keeping their sealed blobs. Onto their own mailbox, they get
    /// new UIDs and the old ones are expunged (RFC 6851 §3.3: MOVE is COPY then expunge of the
    /// originals, and a copy is a new message).
    pub fn move_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>> {
        self.transfer(from, uids, to, true)
    }

    fn messages_among(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<MessageMeta>> {
        let mut out = Vec::with_capacity(uids.len());
        for &uid in uids {
            if let Some(m) = self.message(mailbox, uid)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    fn transfer(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
        moving: bool,
    ) -> Result<Vec<(Uid, Uid)>> {
        let (src, _) = self.mailbox_required(from)?;
        let (dst, _) = self.mailbox_required(to)?;
        if src.account != dst.account {
            return Err(StoreError::NoSuchMailbox(dst.name));
        }
        // A copy gets its own blob (same owner, same key: the sealed bytes are copied without
        // being opened); a move keeps the blob it has.
        let mut copies = std::collections::HashMap::new();
        if !moving {
            for m in self.messages_among(from, uids)? {
                copies.insert(m.uid, self.place_sealed(self.sealed_bytes(m.blob)?)?);
            }
        }
        let (pairs, dst_modseq, src_modseq) = self.retry(to.0, || {
            let (mut dmb, draw) = self.mailbox_for_change(to, uids.len() as u32, 1)?;
            let mut batch = Batch::new();
            batch.check(MAILBOX, to.0.to_be_bytes(), Some(draw));
            // A move within one mailbox changes one record: the destination's.
            let source = if moving && from != to {
                let (smb, sraw) = self.mailbox_for_change(from, 0, 1)?;
                batch.check(MAILBOX, from.0.to_be_bytes(), Some(sraw));
                Some(smb)
            } else {
                None
            };
            let dst_modseq = ModSeq(dmb.highest_modseq.0 + 1);
            let src_modseq = moving.then(|| {
                source
                    .as_ref()
                    .map_or(dst_modseq, |m| ModSeq(m.highest_modseq.0 + 1))
            });
            let mut smb = source;
            let mut pairs = Vec::new();
            for &uid in uids {
                let Some(raw) = self.kv.get(MESSAGE, &message_key(from, uid))? else {
                    continue;
                };
                let meta: MessageMeta = decode("message", &raw)?;
                let blob = match copies.get(&uid) {
                    Some(sealed) => {
                        sealed.add_to(&mut batch);
                        sealed.id
                    }
                    None if moving => meta.blob,
                    // Appeared since the blobs were copied: not part of this COPY.
                    None => continue,
                };
                let new = MessageMeta {
                    uid: dmb.uid_next,
                    blob,
                    flags: meta.flags.clone(),
                    internal_date: meta.internal_date,
                    size: meta.size,
                    modseq: dst_modseq,
                };
                dmb.uid_next = Uid(dmb
                    .uid_next
                    .0
                    .checked_add(1)
                    .ok_or_else(|| StoreError::corrupt("mailbox", "UID space exhausted"))?);
                dmb.take_in(&new);
                batch.put(MESSAGE, message_key(to, new.uid), json(&new));
                batch.put(BY_MODSEQ, modseq_key(to, new.modseq, new.uid), Vec::new());
                if let Some(modseq) = src_modseq {
                    batch.check(MESSAGE, message_key(from, uid), Some(raw));
                    batch.remove(MESSAGE, message_key(from, uid));
                    batch.remove(BY_MODSEQ, modseq_key(from, meta.modseq, uid));
                    batch.put(EXPUNGED, message_key(from, uid), modseq.0.to_be_bytes());
                    let smb = match smb.as_mut() {
                        Some(smb) => smb,
                        None => &mut dmb,
                    };
                    smb.let_go(&meta);
                }
                pairs.push((uid, new.uid));
            }
            if !pairs.is_empty() {
                dmb.highest_modseq = dst_modseq;
                batch.put(MAILBOX, to.0.to_be_bytes(), json(&dmb));
                if let (Some(mut smb), Some(modseq)) = (smb, src_modseq) {
                    smb.highest_modseq = modseq;
                    batch.put(MAILBOX, from.0.to_be_bytes(), json(&smb));
                }
            }
            Ok((batch, (pairs, dst_modseq, src_modseq)))
        })?;
        for (_, uid) in &pairs {
            self.events.publish(Change {
                account: dst.account,
                mailbox: to,
                kind: ChangeKind::Appended {
                    uid: *uid,
                    modseq: dst_modseq,
                },
            });
        }
        if let (true, Some(modseq)) = (moving && !pairs.is_empty(), src_modseq) {
            self.events.publish(Change {
                account: src.account,
                mailbox: from,
                kind: ChangeKind::Expunged {
                    uids: pairs.iter().map(|(u, _)| *u).collect(),
                    modseq,
                },
            });
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use tokio::sync::broadcast::error::TryRecvError;

    use super::*;
    use crate::MasterKey;

    const ALICE: AccountId = AccountId(1);
    const BOB: AccountId = AccountId(2);

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::new(&MasterKey::generate()).unwrap();
        let store = Store::open(dir.path(), master).unwrap();
        store.provision_account(ALICE).unwrap();
        (dir, store)
    }

    fn inbox(store: &Store) -> Mailbox {
        store.special_mailbox(ALICE, SpecialUse::Inbox).unwrap()
    }

    fn flags(list: &[Flag]) -> BTreeSet<Flag> {
        list.iter().cloned().collect()
    }

    fn raw(n: u32) -> Vec<u8> {
        format!("From: a@example.org\r\nSubject: message {n}\r\n\r\nbody of message {n}\r\n")
            .into_bytes()
    }

    fn append(store: &Store, mailbox: MailboxId, n: u32) -> MessageMeta {
        store
            .append(mailbox, &raw(n), BTreeSet::new(), 1_700_000_000)
            .unwrap()
    }

    fn uids(list: &[u32]) -> Vec<Uid> {
        list.iter().map(|&u| Uid(u)).collect()
    }

    fn flags_of(store: &Store, mailbox: MailboxId, uid: u32) -> BTreeSet<Flag> {
        store.message(mailbox, Uid(uid)).unwrap().unwrap().flags
    }

    #[test]
    fn provisioning_creates_the_special_use_mailboxes_once() {
        let (_dir, store) = open();
        let first = store.mailboxes(ALICE).unwrap();
        let names: Vec<&str> = first.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["Archive", "Drafts", "INBOX", "Sent", "Trash"]);
        for (special, name) in SpecialUse::DEFAULTS {
            let m = store.special_mailbox(ALICE, special).unwrap();
            assert_eq!(m.name, name);
            assert_eq!(m.account, ALICE);
            assert_eq!(m.uid_next, Uid(1));
            assert_eq!(m.exists, 0);
            assert!(m.subscribed);
        }
        let validities: BTreeSet<_> = first.iter().map(|m| m.uid_validity).collect();
        assert_eq!(validities.len(), 5, "each mailbox gets its own UIDVALIDITY");

        store.provision_account(ALICE).unwrap();
        assert_eq!(
            store.mailboxes(ALICE).unwrap(),
            first,
            "second provisioning changed nothing"
        );
        assert!(
            store.mailboxes(BOB).unwrap().is_empty(),
            "other accounts are untouched"
        );
        // An account provisioned lazily (created from a roster) gets its mailboxes on first
        // need: the first delivery.
        let inbox = store.special_mailbox(BOB, SpecialUse::Inbox).unwrap();
        assert_eq!((inbox.account, inbox.name.as_str()), (BOB, "INBOX"));
        assert_eq!(store.mailboxes(BOB).unwrap().len(), 5);
    }

    #[test]
    fn inbox_lookup_is_case_insensitive_and_other_names_are_not() {
        let (_dir, store) = open();
        let inbox = inbox(&store);
        for spelling in ["INBOX", "inbox", "InBoX", "Inbox"] {
            assert_eq!(
                store.mailbox(ALICE, spelling).unwrap().unwrap().id,
                inbox.id,
                "{spelling}"
            );
        }
        assert!(matches!(
            store.create_mailbox(ALICE, "inbox", None),
            Err(StoreError::MailboxExists(name)) if name == "INBOX"
        ));
        let projects = store.create_mailbox(ALICE, "Projects", None).unwrap();
        assert_eq!(
            store.mailbox(ALICE, "Projects").unwrap().unwrap().id,
            projects.id
        );
        assert!(store.mailbox(ALICE, "projects").unwrap().is_none());
        assert!(
            store.mailbox(BOB, "INBOX").unwrap().is_none(),
            "names are per account"
        );
    }

    /// IMAP MULTIAPPEND (RFC 3502): one commit, consecutive UIDs, one MODSEQ, the counters and
    /// the contents of every message; into a missing mailbox nothing at all.
    #[test]
    fn append_many_commits_all_messages_at_once() {
        let (_dir, store) = open();
        let before = inbox(&store);
        let (one, two) = (raw(1), raw(2));
        let metas = store
            .append_many(
                before.id,
                &[
                    (&one, flags(&[Flag::Seen]), 1_700_000_001),
                    (&two, BTreeSet::new(), 1_700_000_002),
                ],
            )
            .unwrap();
        assert_eq!(
            metas.iter().map(|m| m.uid.get()).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(metas[0].modseq, metas[1].modseq);
        assert!(metas[0].modseq > before.highest_modseq);
        let after = inbox(&store);
        assert_eq!((after.exists, after.uid_next.get()), (2, 3));
        assert_eq!(after.highest_modseq, metas[0].modseq);
        assert_eq!(after.size, (one.len() + two.len()) as u64);
        assert_eq!(store.read_message(before.id, metas[1].uid).unwrap(), two);
        assert_eq!(
            store.messages(before.id).unwrap()[0].flags,
            flags(&[Flag::Seen])
        );
        assert!(store
            .append_many(MailboxId(999), &[(&one, BTreeSet::new(), 0)])
            .is_err());
    }

    #[test]
    fn append_allocates_uids_from_one_and_increasing_modseqs() {
        let (_dir, store) = open();
        let before = inbox(&store);
        let metas: Vec<MessageMeta> = (1..=3)
            .map(|n| {
                store
                    .append(
                        before.id,
                        &raw(n),
                        flags(&[Flag::Seen]),
                        1_700_000_000 + i64::from(n),
                    )
                    .unwrap()
            })
            .collect();
        assert_eq!(
            metas.iter().map(|m| m.uid.get()).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(metas[0].modseq > before.highest_modseq);
        assert!(
            metas.windows(2).all(|w| w[0].modseq < w[1].modseq),
            "{metas:?}"
        );

        let after = inbox(&store);
        assert_eq!(after.uid_next, Uid(4));
        assert_eq!(after.exists, 3);
        assert_eq!(
            after.size,
            (1..=3).map(|n| raw(n).len() as u64).sum::<u64>()
        );
        assert_eq!(after.highest_modseq, metas[2].modseq);
        assert_eq!(after.uid_validity, before.uid_validity);

        assert_eq!(store.messages(before.id).unwrap(), metas);
        for (n, meta) in (1..=3).zip(&metas) {
            assert_eq!(meta.size, raw(n).len() as u64);
            assert_eq!(meta.internal_date, 1_700_000_000 + i64::from(n));
            assert_eq!(meta.flags, flags(&[Flag::Seen]));
            assert_eq!(store.read_message(before.id, meta.uid).unwrap(), raw(n));
        }
        assert!(matches!(
            store.read_message(before.id, Uid(4)),
            Err(StoreError::NoSuchMessage { uid: 4, .. })
        ));
    }

    #[test]
    fn changed_since_reads_only_what_changed_after_a_modseq() {
        let (_dir, store) = open();
        let mb = inbox(&store).id;
        for n in 1..=4 {
            append(&store, mb, n);
        }
        let known = inbox(&store).highest_modseq;
        assert!(store.changed_since(mb, known).unwrap().is_empty());
        store
            .store_flags(mb, &uids(&[2]), FlagOp::Add, &flags(&[Flag::Seen]), None)
            .unwrap();
        store.expunge(mb, &uids(&[3])).unwrap();
        append(&store, mb, 5);
        let changed: Vec<u32> = store
            .changed_since(mb, known)
            .unwrap()
            .iter()
            .map(|m| m.uid.get())
            .collect();
        assert_eq!(changed, [2, 5]);
        // A second change of the same message: listed once, as it is now.
        store
            .store_flags(mb, &uids(&[2]), FlagOp::Add, &flags(&[Flag::Flagged]), None)
            .unwrap();
        let again = store.changed_since(mb, known).unwrap();
        assert_eq!(again.iter().filter(|m| m.uid.get() == 2).count(), 1);
        assert_eq!(store.expunged_since(mb, known).unwrap(), uids(&[3]));
        // Moved away: gone from the source's changes, in the destination's.
        let drafts = store.mailbox(ALICE, "Drafts").unwrap().unwrap().id;
        let dknown = store.mailbox_by_id(drafts).unwrap().unwrap().highest_modseq;
        store.move_messages(mb, &uids(&[5]), drafts).unwrap();
        assert!(store
            .changed_since(mb, known)
            .unwrap()
            .iter()
            .all(|m| m.uid.get() != 5));
        assert_eq!(store.changed_since(drafts, dknown).unwrap().len(), 1);
    }

    #[test]
    fn store_flags_adds_removes_and_replaces() {
        let (_dir, store) = open();
        let mb = inbox(&store).id;
        for n in 1..=3 {
            append(&store, mb, n);
        }
        let start = inbox(&store).highest_modseq;

        let added = store
            .store_flags(
                mb,
                &uids(&[1, 2, 99]),
                FlagOp::Add,
                &flags(&[Flag::Seen, Flag::Flagged]),
                None,
            )
            .unwrap();
        assert_eq!(
            added
                .updated
                .iter()
                .map(|m| m.uid.get())
                .collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(added.modified.is_empty());
        let m1 = inbox(&store).highest_modseq;
        assert!(m1 > start);
        assert!(added.updated.iter().all(|m| m.modseq == m1));
        assert_eq!(flags_of(&store, mb, 1), flags(&[Flag::Seen, Flag::Flagged]));
        assert_eq!(flags_of(&store, mb, 2), flags(&[Flag::Seen, Flag::Flagged]));
        assert_eq!(flags_of(&store, mb, 3), flags(&[]));

        store
            .store_flags(
                mb,
                &uids(&[1]),
                FlagOp::Remove,
                &flags(&[Flag::Flagged]),
                None,
            )
            .unwrap();
        let m2 = inbox(&store).highest_modseq;
        assert!(m2 > m1);
        assert_eq!(flags_of(&store, mb, 1), flags(&[Flag::Seen]));
        assert_eq!(store.message(mb, Uid(1)).unwrap().unwrap().modseq, m2);
        assert_eq!(
            store.message(mb, Uid(2)).unwrap().unwrap().modseq,
            m1,
            "untouched"
        );

        let forwarded = flags(&[Flag::try_from("$Forwarded").unwrap()]);
        store
            .store_flags(mb, &uids(&[2, 3]), FlagOp::Replace, &forwarded, None)
            .unwrap();
        assert_eq!(flags_of(&store, mb, 2), forwarded);
        assert_eq!(flags_of(&store, mb, 3), forwarded);
        assert!(inbox(&store).highest_modseq > m2);
    }

    #[test]
    fn store_flags_that_changes_nothing_keeps_the_modseq() {
        let (_dir, store) = open();
        let mb = inbox(&store).id;
        append(&store, mb, 1);
        store
            .store_flags(mb, &uids(&[1]), FlagOp::Add, &flags(&[Flag::Seen]), None)
            .unwrap();
        let before = inbox(&store);
        let meta = store.message(mb, Uid(1)).unwrap().unwrap();

        // Adding a flag that is already set, and touching only missing UIDs, change nothing.
        let same = store
            .store_flags(mb, &uids(&[1]), FlagOp::Add, &flags(&[Flag::Seen]), None)
            .unwrap();
        assert_eq!(same.updated, vec![meta.clone()]);
        let none = store
            .store_flags(mb, &uids(&[7]), FlagOp::Remove, &flags(&[Flag::Seen]), None)
            .unwrap();
        assert_eq!(none, FlagUpdate::default());
        assert_eq!(inbox(&store), before);
        assert_eq!(store.message(mb, Uid(1)).unwrap().unwrap(), meta);
    }

    #[test]
    fn unchanged_since_reports_messages_modified_after_it() {
        let (_dir, store) = open();
        let mb = inbox(&store).id;
        let one = append(&store, mb, 1);
        let two = append(&store, mb, 2);
        store
            .store_flags(mb, &uids(&[2]), FlagOp::Add, &flags(&[Flag::Flagged]), None)
            .unwrap();
        // Message 1 is at its append MODSEQ, message 2 has been changed since.
        let since = two.modseq;
        assert!(one.modseq <= since);

        let update = store
            .store_flags(
                mb,
                &uids(&[1, 2]),
                FlagOp::Add,
                &flags(&[Flag::Seen]),
                Some(since),
            )
            .unwrap();
        assert_eq!(update.modified, uids(&[2]));
        assert_eq!(
            update
                .updated
                .iter()
                .map(|m| m.uid.get())
                .collect::<Vec<_>>(),
            [1]
        );
        assert_eq!(flags_of(&store, mb, 1), flags(&[Flag::Seen]));
        assert_eq!(
            flags_of(&store, mb, 2),
            flags(&[Flag::Flagged]),
            "not touched"
        );

        // A MODSEQ equal to UNCHANGEDSINCE is not "modified since".
        let now = store.message(mb, Uid(2)).unwrap().unwrap().modseq;
        let update = store
            .store_flags(
                mb,
                &uids(&[2]),
                FlagOp::Add,
                &flags(&[Flag::Seen]),
                Some(now),
            )
            .unwrap();
        assert!(update.modified.is_empty());
        assert_eq!(flags_of(&store, mb, 2), flags(&[Flag::Seen, Flag::Flagged]));
    }

    #[test]
    fn expunge_updates_counters_and_records_vanished_uids() {
        let (_dir, store) = open();
        let mb = inbox(&store).id;
        let metas: Vec<_> = (1..=3).map(|n| append(&store, mb, n)).collect();
        let before = inbox(&store);

        let removed = store.expunge(mb, &uids(&[1, 3, 99])).unwrap();
        assert_eq!(removed, uids(&[1, 3]));
        let after = inbox(&store);
        assert_eq!(after.exists, 1);
        assert_eq!(after.size, metas[1].size);
        assert_eq!(after.uid_next, Uid(4), "UIDNEXT does not go back");
        assert!(after.highest_modseq > before.highest_modseq);
        assert_eq!(store.messages(mb).unwrap(), vec![metas[1].clone()]);
        assert!(matches!(
            store.read_message(mb, Uid(1)),
            Err(StoreError::NoSuchMessage { uid: 1, .. })
        ));
        assert!(matches!(
            store.read_blob(ALICE, metas[0].blob),
            Err(StoreError::NoSuchBlob(_))
        ));
        assert_eq!(store.read_message(mb, Uid(2)).unwrap(), raw(2));

        assert_eq!(
            store.expunged_since(mb, before.highest_modseq).unwrap(),
            uids(&[1, 3])
        );
        assert!(store
            .expunged_since(mb, after.highest_modseq)
            .unwrap()
            .is_empty());

        // Expunging what is not there changes nothing.
        assert!(store.expunge(mb, &uids(&[1, 42])).unwrap().is_empty());
        assert_eq!(inbox(&store), after);

        // UIDs are never reused.
        assert_eq!(append(&store, mb, 4).uid, Uid(4));
    }

    /// STATUS UNSEEN and DELETED come from the mailbox record, kept by every change; they
    /// must equal a count over the messages after each one.
    #[test]
    fn unseen_and_deleted_counts_follow_every_change() {
        let (_dir, store) = open();
        let inbox_id = inbox(&store).id;
        let projects = store.create_mailbox(ALICE, "Projects", None).unwrap().id;
        let counted = |id: MailboxId| {
            let mb = store.mailbox_by_id(id).unwrap().unwrap();
            let kept = mb.flag_counts.expect("a new mailbox counts its flags");
            let scan = FlagCounts::of(store.messages(id).unwrap().iter().map(|m| &m.flags));
            assert_eq!(kept, scan, "kept counts of {id} equal a scan");
            (kept.unseen, kept.deleted)
        };
        assert_eq!(counted(inbox_id), (0, 0));
        store
            .append(inbox_id, &raw(1), flags(&[Flag::Seen]), 1_700_000_001)
            .unwrap();
        append(&store, inbox_id, 2);
        store
            .append_many(
                inbox_id,
                &[
                    (&raw(3), flags(&[Flag::Deleted]), 1),
                    (&raw(4), flags(&[Flag::Seen, Flag::Deleted]), 1),
                ],
            )
            .unwrap();
        assert_eq!(counted(inbox_id), (2, 2));
        let seen = flags(&[Flag::Seen]);
        store
            .store_flags(inbox_id, &uids(&[2, 3]), FlagOp::Add, &seen, None)
            .unwrap();
        assert_eq!(counted(inbox_id), (0, 2));
        store
            .store_flags(inbox_id, &uids(&[1, 4]), FlagOp::Replace, &flags(&[]), None)
            .unwrap();
        assert_eq!(counted(inbox_id), (2, 1));
        store
            .copy_messages(inbox_id, &uids(&[1, 3]), projects)
            .unwrap();
        assert_eq!(counted(projects), (1, 1));
        store
            .move_messages(inbox_id, &uids(&[1, 2]), projects)
            .unwrap();
        assert_eq!((counted(inbox_id), counted(projects)), ((1, 1), (2, 1)));
        store
            .move_messages(projects, &uids(&[1]), projects)
            .unwrap();
        assert_eq!(
            counted(projects),
            (2, 1),
            "a move within a mailbox counts the same"
        );
        store.expunge(inbox_id, &uids(&[3, 4])).unwrap();
        assert_eq!(counted(inbox_id), (0, 0));
    }

    /// A record written before the counts existed is counted once, then kept up to date.
    #[test]
    fn a_mailbox_recorded_without_counts_is_counted_once() {
        let (_dir, store) = open();
        let id = inbox(&store).id;
        append(&store, id, 1);
        append(&store, id, 2);
        let mut old = inbox(&store);
        old.flag_counts = None;
        let mut batch = Batch::new();
        batch.put(MAILBOX, id.0.to_be_bytes(), json(&old));
        assert_eq!(store.kv.commit(&batch).unwrap(), crate::Commit::Done);
        // Kept as None by a change (nothing to add to), counted on demand.
        append(&store, id, 3);
        assert_eq!(inbox(&store).flag_counts, None);
        let counts = store.flag_counts(&inbox(&store)).unwrap();
        assert_eq!((counts.unseen, counts.deleted), (3, 0));
        assert_eq!(inbox(&store).flag_counts, Some(counts), "the count is kept");
        store
            .store_flags(id, &uids(&[1]), FlagOp::Add, &flags(&[Flag::Seen]), None)
            .unwrap();
        assert_eq!(inbox(&store).flag_counts.unwrap().unseen, 2);
    }

    #[test]
    fn copy_and_move_between_mailboxes() {
        let (_dir, store) = open();
        let inbox_id = inbox(&store).id;
        let projects = store.create_mailbox(ALICE, "Projects", None).unwrap().id;
        let archive = store
            .special_mailbox(ALICE, SpecialUse::Archive)
            .unwrap()
            .id;
        let one = store
            .append(inbox_id, &raw(1), flags(&[Flag::Seen]), 1_700_000_001)
            .unwrap();
        append(&store, inbox_id, 2);

        let copied = store
            .copy_messages(inbox_id, &uids(&[1, 2, 9]), projects)
            .unwrap();
        assert_eq!(copied, vec![(Uid(1), Uid(1)), (Uid(2), Uid(2))]);
        let copy = store.message(projects, Uid(1)).unwrap().unwrap();
        assert_eq!(copy.flags, one.flags);
        assert_eq!(copy.internal_date, one.internal_date);
        assert_eq!(copy.size, one.size);
        assert_ne!(copy.blob, one.blob, "a copy has its own blob");
        assert_eq!(store.read_message(projects, Uid(1)).unwrap(), raw(1));
        assert_eq!(store.read_message(projects, Uid(2)).unwrap(), raw(2));
        assert_eq!(inbox(&store).exists, 2, "copy leaves the source alone");
        assert_eq!(store.mailbox_by_id(projects).unwrap().unwrap().exists, 2);

        let moved = store.move_messages(inbox_id, &uids(&[1]), archive).unwrap();
        assert_eq!(moved, vec![(Uid(1), Uid(1))]);
        assert_eq!(store.read_message(archive, Uid(1)).unwrap(), raw(1));
        assert!(store.message(inbox_id, Uid(1)).unwrap().is_none());
        assert_eq!(inbox(&store).exists, 1);
        assert_eq!(
            store.expunged_since(inbox_id, ModSeq(0)).unwrap(),
            uids(&[1])
        );
        // The earlier copy does not share the moved message's (now deleted) blob.
        assert_eq!(store.read_message(projects, Uid(1)).unwrap(), raw(1));

        store.provision_account(BOB).unwrap();
        let bobs = store.special_mailbox(BOB, SpecialUse::Inbox).unwrap().id;
        assert!(matches!(
            store.copy_messages(inbox_id, &uids(&[2]), bobs),
            Err(StoreError::NoSuchMailbox(_))
        ));
        assert!(store.messages(bobs).unwrap().is_empty());
    }

    #[test]
    fn move_keeps_the_sealed_blob_in_one_commit_and_copy_takes_all_or_nothing() {
        let (_dir, store) = open();
        let inbox_id = inbox(&store).id;
        let archive = store
            .special_mailbox(ALICE, SpecialUse::Archive)
            .unwrap()
            .id;
        let a = append(&store, inbox_id, 1);
        append(&store, inbox_id, 2);
        let mut events = store.events().subscribe();
        let moved = store
            .move_messages(inbox_id, &uids(&[1, 2]), archive)
            .unwrap();
        assert_eq!(moved, vec![(Uid(1), Uid(1)), (Uid(2), Uid(2))]);
        let there = store.message(archive, Uid(1)).unwrap().unwrap();
        assert_eq!(there.blob, a.blob, "a move keeps its blob: nothing copied");
        assert_eq!(store.read_message(archive, Uid(1)).unwrap(), raw(1));
        let (src, dst) = (
            inbox(&store),
            store.mailbox_by_id(archive).unwrap().unwrap(),
        );
        assert_eq!((src.exists, dst.exists), (0, 2));
        assert_eq!(src.size, 0);
        // Two appended events in the destination, one expunge event in the source.
        let mut kinds = Vec::new();
        while let Ok(change) = events.try_recv() {
            kinds.push((change.mailbox, change.kind));
        }
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(
            matches!(&kinds[2], (m, ChangeKind::Expunged { uids, .. }) if *m == inbox_id && uids.len() == 2)
        );
        // Moving onto the same mailbox gives a new UID and expunges the old one.
        assert_eq!(
            store.move_messages(archive, &uids(&[1]), archive).unwrap(),
            vec![(Uid(1), Uid(3))]
        );
        let after = store.mailbox_by_id(archive).unwrap().unwrap();
        assert_eq!((after.exists, after.uid_next), (2, Uid(4)));
        assert!(store.message(archive, Uid(1)).unwrap().is_none());
        assert_eq!(store.read_message(archive, Uid(3)).unwrap(), raw(1));
        assert_eq!(
            store.expunged_since(archive, ModSeq(0)).unwrap(),
            vec![Uid(1)]
        );
        // A copy of UIDs none of which exist commits nothing.
        let before = store.mailbox_by_id(archive).unwrap().unwrap();
        assert!(store
            .copy_messages(inbox_id, &uids(&[7, 8]), archive)
            .unwrap()
            .is_empty());
        assert_eq!(store.mailbox_by_id(archive).unwrap().unwrap(), before);
    }

    #[test]
    fn rename_refuses_special_use_and_taken_names() {
        let (_dir, store) = open();
        let projects = store.create_mailbox(ALICE, "Projects", None).unwrap();
        store.create_mailbox(ALICE, "Work", None).unwrap();
        append(&store, projects.id, 1);

        assert!(matches!(
            store.rename_mailbox(projects.id, "Work"),
            Err(StoreError::MailboxExists(n)) if n == "Work"
        ));
        assert!(matches!(
            store.rename_mailbox(projects.id, "inbox"),
            Err(StoreError::MailboxExists(n)) if n == "INBOX"
        ));
        assert!(matches!(
            store.rename_mailbox(projects.id, "a//b"),
            Err(StoreError::InvalidMailboxName { .. })
        ));
        for special in [SpecialUse::Inbox, SpecialUse::Sent] {
            let m = store.special_mailbox(ALICE, special).unwrap();
            assert!(matches!(
                store.rename_mailbox(m.id, "Elsewhere"),
                Err(StoreError::SpecialUseMailbox(_))
            ));
            assert_eq!(store.mailbox_by_id(m.id).unwrap().unwrap().name, m.name);
        }
        assert!(store.mailbox(ALICE, "Elsewhere").unwrap().is_none());
        assert_eq!(
            store.mailbox(ALICE, "Projects").unwrap().unwrap().id,
            projects.id
        );

        let renamed = store.rename_mailbox(projects.id, "Clients/2024").unwrap();
        assert_eq!(renamed.name, "Clients/2024");
        assert_eq!(renamed.uid_validity, projects.uid_validity);
        assert!(store.mailbox(ALICE, "Projects").unwrap().is_none());
        assert_eq!(
            store.mailbox(ALICE, "Clients/2024").unwrap().unwrap().id,
            projects.id
        );
        assert_eq!(store.read_message(projects.id, Uid(1)).unwrap(), raw(1));
        // The old name is free again.
        store.create_mailbox(ALICE, "Projects", None).unwrap();
    }

    #[test]
    fn delete_mailbox_removes_its_messages() {
        let (_dir, store) = open();
        let old = store.create_mailbox(ALICE, "Old", None).unwrap();
        let metas: Vec<_> = (1..=3).map(|n| append(&store, old.id, n)).collect();
        store.expunge(old.id, &uids(&[3])).unwrap();

        store.delete_mailbox(old.id).unwrap();
        assert!(store.mailbox_by_id(old.id).unwrap().is_none());
        assert!(store.mailbox(ALICE, "Old").unwrap().is_none());
        assert!(store.messages(old.id).unwrap().is_empty());
        assert!(store.expunged_since(old.id, ModSeq(0)).unwrap().is_empty());
        for meta in &metas {
            assert!(matches!(
                store.read_blob(ALICE, meta.blob),
                Err(StoreError::NoSuchBlob(_))
            ));
        }
        assert!(matches!(
            store.delete_mailbox(old.id),
            Err(StoreError::NoSuchMailbox(_))
        ));

        let trash = store.special_mailbox(ALICE, SpecialUse::Trash).unwrap();
        assert!(matches!(
            store.delete_mailbox(trash.id),
            Err(StoreError::SpecialUseMailbox(_))
        ));
        assert!(store.mailbox_by_id(trash.id).unwrap().is_some());

        let again = store.create_mailbox(ALICE, "Old", None).unwrap();
        assert_ne!(again.id, old.id);
        assert_ne!(
            again.uid_validity, old.uid_validity,
            "UIDs of the name were reused"
        );
        assert!(store.messages(again.id).unwrap().is_empty());
    }

    #[test]
    fn invalid_mailbox_names_are_refused() {
        let (_dir, store) = open();
        let long = "x".repeat(513);
        for name in [
            "",
            "a*b",
            "a%",
            "/a",
            "a/",
            "a//b",
            "a\u{7}b",
            "tab\there",
            long.as_str(),
        ] {
            assert!(
                matches!(
                    store.create_mailbox(ALICE, name, None),
                    Err(StoreError::InvalidMailboxName { .. })
                ),
                "{name:?} was accepted"
            );
            assert!(store.mailbox(ALICE, name).unwrap().is_none());
        }
        assert_eq!(store.mailboxes(ALICE).unwrap().len(), 5);
        for name in ["a/b/c", "Ünïcödé", "x".repeat(512).as_str()] {
            store.create_mailbox(ALICE, name, None).unwrap();
        }
    }

    #[test]
    fn concurrent_appends_get_distinct_uids() {
        let (_dir, store) = open();
        let mb = inbox(&store).id;
        let mut got: Vec<MessageMeta> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4u32)
                .map(|t| {
                    let store = &store;
                    s.spawn(move || {
                        (0..25u32)
                            .map(|i| append(store, mb, t * 100 + i))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        got.sort_by_key(|m| m.uid);
        assert_eq!(
            got.iter().map(|m| m.uid.get()).collect::<Vec<_>>(),
            (1..=100).collect::<Vec<_>>()
        );
        let modseqs: BTreeSet<_> = got.iter().map(|m| m.modseq).collect();
        assert_eq!(modseqs.len(), 100, "each append has its own MODSEQ");
        assert!(
            got.windows(2).all(|w| w[0].modseq < w[1].modseq),
            "MODSEQ follows UID order"
        );

        let after = inbox(&store);
        assert_eq!(after.exists, 100);
        assert_eq!(after.uid_next, Uid(101));
        assert_eq!(after.size, got.iter().map(|m| m.size).sum::<u64>());
        assert_eq!(store.messages(mb).unwrap(), got);
        for m in got.iter().step_by(10) {
            let content = store.read_message(mb, m.uid).unwrap();
            assert_eq!(content.len() as u64, m.size);
        }
    }

    #[test]
    fn subscribers_see_each_committed_change() {
        let (_dir, store) = open();
        let mb = inbox(&store).id;
        let mut rx = store.events().subscribe();
        let change = |kind| Change {
            account: ALICE,
            mailbox: mb,
            kind,
        };

        let one = append(&store, mb, 1);
        assert_eq!(
            rx.try_recv().unwrap(),
            change(ChangeKind::Appended {
                uid: Uid(1),
                modseq: one.modseq
            })
        );
        append(&store, mb, 2);
        assert!(matches!(
            rx.try_recv().unwrap().kind,
            ChangeKind::Appended { uid: Uid(2), .. }
        ));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

        store
            .store_flags(mb, &uids(&[1, 2]), FlagOp::Add, &flags(&[Flag::Seen]), None)
            .unwrap();
        store
            .store_flags(mb, &uids(&[1]), FlagOp::Add, &flags(&[Flag::Flagged]), None)
            .unwrap();
        let first = inbox(&store).highest_modseq;
        assert_eq!(
            rx.try_recv().unwrap().kind,
            ChangeKind::FlagsChanged {
                uids: uids(&[1, 2]),
                modseq: ModSeq(first.0 - 1),
            }
        );
        assert_eq!(
            rx.try_recv().unwrap(),
            change(ChangeKind::FlagsChanged {
                uids: uids(&[1]),
                modseq: first
            })
        );
        // Setting flags that are already set is no change: no event.
        store
            .store_flags(mb, &uids(&[1]), FlagOp::Add, &flags(&[Flag::Seen]), None)
            .unwrap();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

        store.expunge(mb, &uids(&[2, 5])).unwrap();
        assert_eq!(
            rx.try_recv().unwrap(),
            change(ChangeKind::Expunged {
                uids: uids(&[2]),
                modseq: inbox(&store).highest_modseq
            })
        );
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

        let other = store.create_mailbox(ALICE, "Other", None).unwrap().id;
        store.rename_mailbox(other, "Renamed").unwrap();
        store.delete_mailbox(other).unwrap();
        let kinds: Vec<_> = (0..3).map(|_| rx.try_recv().unwrap()).collect();
        assert!(kinds
            .iter()
            .all(|c| c.mailbox == other && c.account == ALICE));
        assert_eq!(
            kinds.into_iter().map(|c| c.kind).collect::<Vec<_>>(),
            [
                ChangeKind::MailboxCreated,
                ChangeKind::MailboxRenamed,
                ChangeKind::MailboxDeleted
            ]
        );
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn a_subscriber_woken_by_an_append_finds_the_message() {
        let (_dir, store) = open();
        let mb = inbox(&store).id;
        let mut rx = store.events().subscribe();
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut seen = Vec::new();
                while seen.len() < 20 {
                    let change = rx.blocking_recv().unwrap();
                    if let ChangeKind::Appended { uid, .. } = change.kind {
                        // Published after the commit: the message must already be readable.
                        let meta = store.message(mb, uid).unwrap();
                        assert!(meta.is_some(), "event for UID {uid} came before its commit");
                        seen.push(uid);
                    }
                }
                seen
            });
            for n in 1..=20 {
                append(&store, mb, n);
            }
            let seen = reader.join().unwrap();
            assert_eq!(seen, (1..=20).map(Uid).collect::<Vec<_>>());
        });
    }
}
