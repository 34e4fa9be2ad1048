//! The selected mailbox as this session's client knows it: the UIDs behind its sequence
//! numbers and the flags it was last told, kept in step with the store through untagged
//! responses (RFC 9051 §7.4.1, §7.5.1).
//!
//! Invariants:
//! - `uids` is ascending; sequence number n is `uids[n - 1]`;
//! - a UID leaves `uids` only when `* n EXPUNGE` is written, and is added only when
//!   `* N EXISTS` is written;
//! - EXPUNGE is never sent after FETCH, STORE or SEARCH (§7.5.1): those call `sync(false)`;
//! - no response shows a keyword before `* FLAGS` named it (RFC 3501 §7.2.6, RFC 9051
//!   §7.3.5): `keywords` holds those announced, and whatever writes flags announces the new
//!   ones first ([`Selected::announce`]);
//! - `recent` (IMAP4rev1's `\Recent`, RFC 3501 §2.3.2) holds only UIDs this session claimed
//!   in the store ([`mshub_store::Store::claim_recent`]) — or, read-only, UIDs nobody had
//!   claimed when it looked: a message is recent for at most one read-write session.
//! - `contexts` (RFC 5267 §4.3, searches kept with UPDATE) hold only UIDs in `uids`: they are
//!   updated, and their ADDTO and REMOVEFROM sent, after the EXISTS and EXPUNGE that add and
//!   remove messages; a new selection starts with none.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_store::{Flag, Mailbox, MailboxId, MessageMeta, ModSeq, StoreError, Uid};

use super::Session;
use crate::codec::write::sequence_set;
use crate::codec::{SearchKey, SeqSet, SortCriterion};
use crate::refusal::Refusal;

/// The most searches with UPDATE one selection keeps (RFC 5267 §4.3 leaves the bound to the
/// server; a further one is `NO [LIMIT]`, RFC 5530 §3).
pub(crate) const MAX_CONTEXTS: usize = 10;

/// The value one message has for one sort key (RFC 5256 §3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SortValue {
    Num(i64),
    Text(String),
}

/// One message of a kept result: its values for the sort criteria (none for SEARCH) and UID.
pub(crate) type Row = (Vec<SortValue>, Uid);

/// RFC 5256 §3 order: the criteria in turn, ties by sequence number, that is by UID.
pub(crate) fn compare_rows(criteria: &[SortCriterion], a: &Row, b: &Row) -> Ordering {
    for (i, c) in criteria.iter().enumerate() {
        let o = a.0[i].cmp(&b.0[i]);
        let o = if c.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.1.cmp(&b.1)
}

/// A search kept with RETURN (UPDATE) (RFC 5267 §4.3): what it looks for and what it found,
/// in result order (the mailbox's for SEARCH, the criteria's for SORT).
pub(crate) struct SearchContext {
    pub tag: String,
    pub key: SearchKey,
    /// SORT's criteria; none for SEARCH.
    pub criteria: Vec<SortCriterion>,
    pub rows: Vec<Row>,
}

impl SearchContext {
    /// Takes out the messages `left` and puts in those `joined`, and returns the ESEARCH
    /// response (without `* `) that tells of it, if anything changed (RFC 5267 §4.3). Always by
    /// UID. REMOVEFROM gives each message at its position, highest first, so that each
    /// position holds whether the client reads them against the result before the response
    /// or as the previous pair left it; ADDTO then gives each at its position in the new
    /// result, lowest first (each insertion leaves the earlier ones in place) — for SEARCH,
    /// whose order is the mailbox's, position 0 and one set (§4.3.1: the client places them).
    pub fn apply(&mut self, left: &BTreeSet<Uid>, joined: Vec<Row>) -> Option<String> {
        let mut removed = Vec::new();
        for (i, row) in self.rows.iter().enumerate().rev() {
            if left.contains(&row.1) {
                removed.push(format!("{} {}", i + 1, row.1));
            }
        }
        self.rows.retain(|r| !left.contains(&r.1));
        let mut added_uids = BTreeSet::new();
        for row in joined {
            if self.rows.iter().any(|r| r.1 == row.1) {
                continue;
            }
            let at = self
                .rows
                .partition_point(|r| compare_rows(&self.criteria, r, &row) == Ordering::Less);
            added_uids.insert(row.1);
            self.rows.insert(at, row);
        }
        if removed.is_empty() && added_uids.is_empty() {
            return None;
        }
        let mut line = format!("ESEARCH (TAG \"{}\") UID", self.tag);
        if !removed.is_empty() {
            line.push_str(&format!(" REMOVEFROM ({})", removed.join(" ")));
        }
        if !added_uids.is_empty() {
            let added: Vec<String> = if self.criteria.is_empty() {
                let uids: Vec<u32> = added_uids.iter().map(|u| u.get()).collect();
                vec![format!("0 {}", sequence_set(&uids))]
            } else {
                self.rows
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| added_uids.contains(&r.1))
                    .map(|(i, r)| format!("{} {}", i + 1, r.1))
                    .collect()
            };
            line.push_str(&format!(" ADDTO ({})", added.join(" ")));
        }
        Some(line)
    }
}

pub(crate) struct Selected {
    pub mailbox: Mailbox,
    pub read_only: bool,
    pub uids: Vec<Uid>,
    /// Each message as the client was last told of it (its flags and MODSEQ), per UID; with
    /// what changed since `mailbox.highest_modseq` and what was expunged since
    /// `expunges_told`, what the store holds now (SEARCH reads it so).
    pub known: HashMap<Uid, MessageMeta>,
    /// RFC 5182 SEARCHRES: what the last `SEARCH RETURN (SAVE)` found.
    pub saved: Vec<Uid>,
    /// The MODSEQ up to which the client was told of expunges (they wait while a command
    /// forbids EXPUNGE responses, RFC 9051 §7.5.1); `mailbox.highest_modseq` is the one up to
    /// which it was told of everything else.
    pub expunges_told: ModSeq,
    /// The keywords `* FLAGS` told the client of (RFC 3501 §7.2.6).
    pub keywords: BTreeSet<String>,
    /// How this session takes part in IMAP4rev1's `\Recent`.
    pub recent_mode: RecentMode,
    /// The messages recent for this session (RFC 3501 §2.3.2).
    pub recent: BTreeSet<Uid>,
    /// The number of recent messages the client was last told (`* n RECENT`).
    pub recent_told: usize,
    /// The searches kept with UPDATE (RFC 5267 §4.3), at most [`MAX_CONTEXTS`].
    pub contexts: Vec<SearchContext>,
}

/// A session's part in `\Recent` (RFC 3501 §2.3.2), which IMAP4rev2 dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecentMode {
    /// IMAP4rev2: no `\Recent`, no RECENT response, nothing claimed.
    Off,
    /// IMAP4rev1 EXAMINE: shows the messages nobody claimed, claims none (RFC 3501 §6.3.2).
    Look,
    /// IMAP4rev1 SELECT: claims the messages nobody claimed, as they arrive.
    Claim,
}

const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

pub(crate) fn flag_list(flags: &BTreeSet<Flag>) -> String {
    let list: Vec<String> = flags.iter().map(Flag::to_string).collect();
    format!("({})", list.join(" "))
}

/// The `* FLAGS` and `* OK [PERMANENTFLAGS]` responses (without `* `) for these keywords.
pub(crate) fn flags_responses(keywords: &BTreeSet<String>, read_only: bool) -> [String; 2] {
    let mut list = String::from(SYSTEM_FLAGS);
    for k in keywords {
        list.push(' ');
        list.push_str(k);
    }
    let permanent = if read_only {
        "OK [PERMANENTFLAGS ()] Read-only mailbox".to_string()
    } else {
        format!("OK [PERMANENTFLAGS ({list} \\*)] Flags permitted")
    };
    [format!("FLAGS ({list})"), permanent]
}

/// The keywords among `flags`.
fn keywords_of(flags: &BTreeSet<Flag>) -> impl Iterator<Item = &String> {
    flags.iter().filter_map(|f| match f {
        Flag::Keyword(k) => Some(k),
        _ => None,
    })
}

/// The UIDs of `uids` recent for a session in `mode` that sees them for the first time, the
/// highest being `up_to`: claimed in the store (SELECT), or not yet claimed by anyone
/// (EXAMINE).
pub(crate) fn recent_among(
    store: &mshub_store::Store,
    mailbox: MailboxId,
    mode: RecentMode,
    uids: impl Iterator<Item = Uid>,
    up_to: Option<Uid>,
) -> BTreeSet<Uid> {
    let Some(up_to) = up_to else {
        return BTreeSet::new();
    };
    let before = match mode {
        RecentMode::Off => return BTreeSet::new(),
        RecentMode::Look => store.recent_uid(mailbox),
        RecentMode::Claim => store.claim_recent(mailbox, up_to),
    };
    match before {
        Ok(before) => uids.filter(|u| u.get() > before && *u <= up_to).collect(),
        Err(e) => {
            // Without the claim no message is recent here: never one shown to two sessions.
            tracing::error!(error = %e, "cannot claim the recent messages");
            BTreeSet::new()
        }
    }
}

impl Selected {
    /// The mailbox as SELECT or EXAMINE showed it: `messages`, the keywords in use among them,
    /// and `recent` (`* n RECENT`).
    pub fn new(
        mailbox: Mailbox,
        read_only: bool,
        messages: &[MessageMeta],
        recent_mode: RecentMode,
        recent: BTreeSet<Uid>,
    ) -> Self {
        let expunges_told = mailbox.highest_modseq;
        let recent_told = recent.len();
        Self {
            keywords: messages
                .iter()
                .flat_map(|m| keywords_of(&m.flags))
                .cloned()
                .collect(),
            recent_mode,
            recent,
            recent_told,
            mailbox,
            read_only,
            uids: messages.iter().map(|m| m.uid).collect(),
            known: messages.iter().map(|m| (m.uid, m.clone())).collect(),
            saved: Vec::new(),
            expunges_told,
            contexts: Vec::new(),
        }
    }

    /// Is `uid` `\Recent` for this session (RFC 3501 §2.3.2)?
    pub fn is_recent(&self, uid: Uid) -> bool {
        self.recent.contains(&uid)
    }

    /// The FLAGS of message `uid` as this session shows them: `flags`, with `\Recent` after
    /// the system flags if the message is recent for it.
    pub fn flag_list(&self, uid: Uid, flags: &BTreeSet<Flag>) -> String {
        if !self.is_recent(uid) {
            return flag_list(flags);
        }
        let mut list: Vec<String> = flags
            .iter()
            .filter(|f| !matches!(f, Flag::Keyword(_)))
            .map(Flag::to_string)
            .collect();
        list.push("\\Recent".into());
        list.extend(keywords_of(flags).cloned());
        format!("({})", list.join(" "))
    }

    /// The `* FLAGS` and PERMANENTFLAGS responses (without `* `) to send before anything
    /// showing `flags`, if they hold keywords the client was not told of; they are told now.
    pub fn announce<'a>(
        &mut self,
        flags: impl IntoIterator<Item = &'a BTreeSet<Flag>>,
    ) -> Option<[String; 2]> {
        let mut new = false;
        for flags in flags {
            for k in keywords_of(flags) {
                if !self.keywords.contains(k) {
                    self.keywords.insert(k.clone());
                    new = true;
                }
            }
        }
        new.then(|| flags_responses(&self.keywords, self.read_only))
    }

    /// The one check of the commands that change a mailbox: not one EXAMINEd (RFC 9051
    /// §6.3.3).
    pub fn writable(&self) -> Result<(), Refusal> {
        if self.read_only {
            Err(Refusal::ReadOnly)
        } else {
            Ok(())
        }
    }

    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(|i| i as u32 + 1)
    }

    /// The UIDs a sequence set or UID set names, ascending. Sequence numbers beyond the
    /// mailbox are an error (RFC 9051 §9 `seq-number`); absent UIDs are simply not there.
    pub fn resolve(&self, set: &SeqSet, uid: bool) -> Result<Vec<Uid>, Refusal> {
        if *set == SeqSet::Saved {
            // RFC 5182 §2.1: `$` names the same messages in UID and sequence forms.
            return Ok(self
                .uids
                .iter()
                .copied()
                .filter(|u| self.saved.binary_search(u).is_ok())
                .collect());
        }
        if uid {
            let max = self.uids.last().map_or(0, |u| u.get());
            return Ok(self
                .uids
                .iter()
                .copied()
                .filter(|u| set.contains(u.get(), max))
                .collect());
        }
        let n = self.uids.len() as u32;
        if set.max_explicit() > n {
            return Err(Refusal::InvalidSequenceNumber);
        }
        Ok((1..=n)
            .filter(|&i| set.contains(i, n))
            .map(|i| self.uids[(i - 1) as usize])
            .collect())
    }
}

/// What [`Session::sync`] told of: the messages changed (new ones included) and the UIDs
/// removed.
type Synced = (Vec<MessageMeta>, Vec<Uid>);

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// Tells the client what changed in its selected mailbox since it was last told: removed
    /// messages (if `expunge` is allowed), new ones, and flags changed by anyone; then what
    /// that changed in the results of the searches kept with UPDATE (RFC 5267 §4.3), which
    /// only the messages changed or removed are looked at again for.
    pub(crate) fn sync(&mut self, expunge: bool) -> Result<(), StoreError> {
        let Some((changed, gone)) = self.sync_view(expunge)? else {
            return Ok(());
        };
        if let Some(mut sel) = self.selected.take() {
            self.update_contexts(&mut sel, &changed, &gone);
            self.selected = Some(sel);
        }
        Ok(())
    }

    /// The untagged updates of [`Session::sync`]; returns the messages changed and the UIDs
    /// removed, if anything changed.
    fn sync_view(&mut self, expunge: bool) -> Result<Option<Synced>, StoreError> {
        let Some(sel) = &self.selected else {
            return Ok(None);
        };
        let id = sel.mailbox.id;
        let Some(mailbox) = self.imap.store.mailbox_by_id(id)? else {
            // Deleted by another session: nothing more to say about it.
            return Ok(None);
        };
        // Nothing changed since the client was last told (the common case: one read of the
        // mailbox record).
        let told = sel.mailbox.highest_modseq;
        let pending_expunges = expunge && sel.expunges_told < told;
        if mailbox.highest_modseq == told && !pending_expunges {
            return Ok(None);
        }
        // Only what changed: from the MODSEQ index and the expunge tombstones.
        let changed = self.imap.store.changed_since(id, told)?;
        let gone = if expunge {
            self.imap.store.expunged_since(id, sel.expunges_told)?
        } else {
            Vec::new()
        };
        let mut lines = Vec::new();
        let mut removed = Vec::new();
        let condstore = self.condstore;
        let qresync = self.qresync;
        let rev2 = self.rev2;
        let store = self.imap.store.clone();
        let Some(sel) = &mut self.selected else {
            return Ok(None);
        };
        if rev2 {
            // IMAP4rev2 enabled while selected: no more `\Recent` (RFC 9051 §2.3.2).
            sel.recent_mode = RecentMode::Off;
            sel.recent.clear();
        }
        // RFC 3501 §7.2.6: new keywords first, before any FETCH shows them.
        if let Some(announce) = sel.announce(changed.iter().map(|m| &m.flags)) {
            lines.extend(announce);
        }
        if expunge {
            sel.expunges_told = mailbox.highest_modseq;
            // Highest position first, so that each number is right when the client reads it.
            let mut positions: Vec<usize> = gone
                .iter()
                .filter_map(|uid| sel.uids.binary_search(uid).ok())
                .collect();
            positions.sort_unstable_by(|a, b| b.cmp(a));
            positions.dedup();
            let mut vanished = Vec::new();
            for i in positions {
                let uid = sel.uids.remove(i);
                removed.push(uid);
                sel.known.remove(&uid);
                if sel.recent.remove(&uid) {
                    sel.recent_told = sel.recent_told.saturating_sub(1);
                }
                if qresync {
                    vanished.push(uid.get());
                } else {
                    lines.push(format!("{} EXPUNGE", i + 1));
                }
            }
            // RFC 7162 §3.2.10: with QRESYNC, VANISHED replaces EXPUNGE.
            if !vanished.is_empty() {
                vanished.reverse();
                lines.push(format!("VANISHED {}", sequence_set(&vanished)));
            }
        }
        sel.mailbox = mailbox;
        let last = sel.uids.last().copied();
        let mut new: Vec<&MessageMeta> = Vec::new();
        for meta in &changed {
            if last.is_none_or(|l| meta.uid > l) {
                new.push(meta);
                continue;
            }
            let Ok(seq) = sel.uids.binary_search(&meta.uid) else {
                continue;
            };
            let known = sel.known.get(&meta.uid);
            if known.is_none_or(|k| k.modseq != meta.modseq && k.flags != meta.flags) {
                let modseq = if condstore {
                    format!(" MODSEQ ({})", meta.modseq.0)
                } else {
                    String::new()
                };
                lines.push(format!(
                    "{} FETCH (FLAGS {} UID {}{modseq})",
                    seq + 1,
                    sel.flag_list(meta.uid, &meta.flags),
                    meta.uid
                ));
            }
            sel.known.insert(meta.uid, meta.clone());
        }
        new.sort_by_key(|m| m.uid);
        if !new.is_empty() {
            for m in &new {
                sel.uids.push(m.uid);
                sel.known.insert(m.uid, (*m).clone());
            }
            lines.push(format!("{} EXISTS", sel.uids.len()));
            // RFC 3501 §2.3.2: the first session told of a message has it recent.
            let up_to = new.last().map(|m| m.uid);
            let recent = recent_among(
                &store,
                id,
                sel.recent_mode,
                new.iter().map(|m| m.uid),
                up_to,
            );
            sel.recent.extend(recent);
            // RFC 3501 §7.3.2: with the new size, the number of recent messages if it changed
            // (after an expunge the client counts down itself, as with EXISTS).
            if sel.recent_mode != RecentMode::Off && sel.recent.len() != sel.recent_told {
                sel.recent_told = sel.recent.len();
                lines.push(format!("{} RECENT", sel.recent_told));
            }
        }
        for line in lines {
            self.untagged(&line);
        }
        Ok(Some((changed, removed)))
    }

    /// STATUS RECENT (RFC 3501 §6.3.10): the messages of `mailbox` no session claimed yet;
    /// none for an IMAP4rev2 session.
    pub(crate) fn status_recent(&self, mailbox: MailboxId) -> Result<u32, StoreError> {
        if self.rev2 {
            return Ok(0);
        }
        self.imap.store.recent_count(mailbox)
    }

    /// Writes `* FLAGS` and PERMANENTFLAGS before anything showing `flags`, if they hold
    /// keywords the client was not told of (RFC 3501 §7.2.6).
    pub(crate) fn announce_keywords<'a>(
        &mut self,
        sel: &mut Selected,
        flags: impl IntoIterator<Item = &'a BTreeSet<Flag>>,
    ) {
        let Some(lines) = sel.announce(flags) else {
            return;
        };
        for line in lines {
            self.untagged(&line);
        }
    }
}
