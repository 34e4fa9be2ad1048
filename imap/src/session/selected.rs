//! The selected mailbox as this session's client knows it: the UIDs behind its sequence
//! numbers and the flags it was last told, kept in step with the store through untagged
//! responses (RFC 9051 §7.4.1, §7.5.1).
//!
//! Invariants:
//! - `uids` is ascending; sequence number n is `uids[n - 1]`;
//! - a UID leaves `uids` only when `* n EXPUNGE` is written, and is added only when
//!   `* N EXISTS` is written;
//! - EXPUNGE is never sent after FETCH, STORE or SEARCH (§7.5.1): those call `sync(false)`.

use std::collections::{BTreeSet, HashMap};

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_store::{Flag, Mailbox, MessageMeta, ModSeq, StoreError, Uid};

use super::Session;
use crate::codec::write::sequence_set;
use crate::codec::SeqSet;

pub(crate) struct Selected {
    pub mailbox: Mailbox,
    pub read_only: bool,
    pub uids: Vec<Uid>,
    /// Flags (and their MODSEQ) the client was last told, per UID.
    pub known: HashMap<Uid, (ModSeq, BTreeSet<Flag>)>,
    /// RFC 5182 SEARCHRES: what the last `SEARCH RETURN (SAVE)` found.
    pub saved: Vec<Uid>,
    /// The MODSEQ up to which the client was told of expunges (they wait while a command
    /// forbids EXPUNGE responses, RFC 9051 §7.5.1); `mailbox.highest_modseq` is the one up to
    /// which it was told of everything else.
    pub expunges_told: ModSeq,
}

pub(crate) fn flag_list(flags: &BTreeSet<Flag>) -> String {
    let list: Vec<String> = flags.iter().map(Flag::to_string).collect();
    format!("({})", list.join(" "))
}

impl Selected {
    pub fn new(mailbox: Mailbox, read_only: bool, messages: &[MessageMeta]) -> Self {
        let expunges_told = mailbox.highest_modseq;
        Self {
            mailbox,
            read_only,
            uids: messages.iter().map(|m| m.uid).collect(),
            known: messages
                .iter()
                .map(|m| (m.uid, (m.modseq, m.flags.clone())))
                .collect(),
            saved: Vec::new(),
            expunges_told,
        }
    }

    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(|i| i as u32 + 1)
    }

    /// The UIDs a sequence set or UID set names, ascending. Sequence numbers beyond the
    /// mailbox are an error (RFC 9051 §9 `seq-number`); absent UIDs are simply not there.
    pub fn resolve(&self, set: &SeqSet, uid: bool) -> Result<Vec<Uid>, String> {
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
            return Err("Invalid message sequence number".into());
        }
        Ok((1..=n)
            .filter(|&i| set.contains(i, n))
            .map(|i| self.uids[(i - 1) as usize])
            .collect())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// Tells the client what changed in its selected mailbox since it was last told: removed
    /// messages (if `expunge` is allowed), new ones, and flags changed by anyone.
    pub(crate) fn sync(&mut self, expunge: bool) -> Result<(), StoreError> {
        let Some(sel) = &self.selected else {
            return Ok(());
        };
        let id = sel.mailbox.id;
        let Some(mailbox) = self.imap.store.mailbox_by_id(id)? else {
            // Deleted by another session: nothing more to say about it.
            return Ok(());
        };
        // Nothing changed since the client was last told (the common case: one read of the
        // mailbox record).
        let told = sel.mailbox.highest_modseq;
        let pending_expunges = expunge && sel.expunges_told < told;
        if mailbox.highest_modseq == told && !pending_expunges {
            return Ok(());
        }
        // Only what changed: from the MODSEQ index and the expunge tombstones.
        let changed = self.imap.store.changed_since(id, told)?;
        let gone = if expunge {
            self.imap.store.expunged_since(id, sel.expunges_told)?
        } else {
            Vec::new()
        };
        let mut lines = Vec::new();
        let condstore = self.condstore;
        let qresync = self.qresync;
        let Some(sel) = &mut self.selected else {
            return Ok(());
        };
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
                sel.known.remove(&uid);
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
            if known.is_none_or(|(modseq, flags)| *modseq != meta.modseq && *flags != meta.flags) {
                let modseq = if condstore {
                    format!(" MODSEQ ({})", meta.modseq.0)
                } else {
                    String::new()
                };
                lines.push(format!(
                    "{} FETCH (FLAGS {} UID {}{modseq})",
                    seq + 1,
                    flag_list(&meta.flags),
                    meta.uid
                ));
            }
            sel.known
                .insert(meta.uid, (meta.modseq, meta.flags.clone()));
        }
        new.sort_by_key(|m| m.uid);
        if !new.is_empty() {
            for m in &new {
                sel.uids.push(m.uid);
                sel.known.insert(m.uid, (m.modseq, m.flags.clone()));
            }
            lines.push(format!("{} EXISTS", sel.uids.len()));
        }
        for line in lines {
            self.untagged(&line);
        }
        Ok(())
    }
}
