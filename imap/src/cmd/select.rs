//! SELECT and EXAMINE, CLOSE and UNSELECT (RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315).

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_store::{AccountId, Flag, ModSeq, Uid};

use super::Done;
use crate::codec::write::sequence_set;
use crate::codec::{Qresync, SeqSet};
use crate::refusal::Refusal;
use crate::session::selected::{flags_responses, recent_among, RecentMode};
use crate::session::{Flow, Selected, Session};

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn select(
        &mut self,
        tag: &str,
        account: AccountId,
        name: &str,
        read_only: bool,
        qresync: Option<&Qresync>,
    ) -> Done {
        // RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected.
        if self.selected.take().is_some() {
            self.untagged("OK [CLOSED] Previous mailbox closed");
        }
        let mailbox = match self.imap.store.mailbox(account, name) {
            Ok(Some(m)) => m,
            Ok(None) => return Done::refused(tag, Refusal::NoSuchMailbox),
            Err(e) => {
                self.store_failure(tag, &e);
                return Done::Flow(Flow::Continue);
            }
        };
        let messages = match self.imap.store.messages(mailbox.id) {
            Ok(m) => m,
            Err(e) => {
                self.store_failure(tag, &e);
                return Done::Flow(Flow::Continue);
            }
        };
        // RFC 3501 §2.3.2: a rev1 SELECT claims the messages that arrived since the mailbox
        // was last selected; EXAMINE only looks (§6.3.2); IMAP4rev2 has no `\Recent`.
        let recent_mode = match (self.rev2, read_only) {
            (true, _) => RecentMode::Off,
            (false, true) => RecentMode::Look,
            (false, false) => RecentMode::Claim,
        };
        let recent = recent_among(
            &self.imap.store,
            mailbox.id,
            recent_mode,
            messages.iter().map(|m| m.uid),
            messages.last().map(|m| m.uid),
        );
        let sel = Selected::new(mailbox.clone(), read_only, &messages, recent_mode, recent);
        // RFC 3501 §7.2.6: the system flags and every keyword in use in the mailbox.
        for line in flags_responses(&sel.keywords, read_only) {
            self.untagged(&line);
        }
        self.untagged(&format!("{} EXISTS", messages.len()));
        if !self.rev2 {
            self.untagged(&format!("{} RECENT", sel.recent.len()));
            if let Some(i) = messages.iter().position(|m| !m.flags.contains(&Flag::Seen)) {
                self.untagged(&format!("OK [UNSEEN {}] First unseen message", i + 1));
            }
        }
        self.untagged(&format!(
            "OK [UIDVALIDITY {}] UIDs valid",
            mailbox.uid_validity.0
        ));
        self.untagged(&format!(
            "OK [UIDNEXT {}] Predicted next UID",
            mailbox.uid_next
        ));
        self.untagged(&format!(
            "OK [HIGHESTMODSEQ {}] Highest",
            mailbox.highest_modseq.0
        ));
        let mut list = b"LIST () \"/\" ".to_vec();
        list.extend_from_slice(&self.wire_name(&mailbox.name));
        if self.rev2 {
            self.untagged_bytes(&list);
        }
        // RFC 7162 §3.2.5.1: what changed since the client's last visit, if the UIDs it
        // remembers are still valid.
        if let Some(q) = qresync.filter(|q| q.uid_validity == mailbox.uid_validity.0) {
            let max = mailbox.uid_next.get().saturating_sub(1);
            let known = |u: Uid| {
                q.known_uids
                    .as_ref()
                    .is_none_or(|k| k.contains(u.get(), max))
            };
            match self.imap.store.expunged_since(mailbox.id, ModSeq(q.modseq)) {
                Ok(gone) => {
                    let mut gone: Vec<u32> = gone
                        .into_iter()
                        .filter(|u| known(*u))
                        .map(|u| u.get())
                        .collect();
                    gone.sort_unstable();
                    if !gone.is_empty() {
                        self.untagged(&format!("VANISHED (EARLIER) {}", sequence_set(&gone)));
                    }
                }
                Err(e) => {
                    self.store_failure(tag, &e);
                    return Done::Flow(Flow::Continue);
                }
            }
            for (i, m) in messages.iter().enumerate() {
                if m.modseq.0 > q.modseq && known(m.uid) {
                    self.untagged(&format!(
                        "{} FETCH (UID {} FLAGS {} MODSEQ ({}))",
                        i + 1,
                        m.uid,
                        sel.flag_list(m.uid, &m.flags),
                        m.modseq.0
                    ));
                }
            }
        }
        self.selected = Some(sel);
        if read_only {
            Done::ok(tag, "[READ-ONLY] EXAMINE completed")
        } else {
            Done::ok(tag, "[READ-WRITE] SELECT completed")
        }
    }

    /// CLOSE expunges silently (unless read-only); UNSELECT does not.
    /// The selection is given up whatever happens (RFC 9051 §6.4.1).
    pub(super) fn close(&mut self, tag: &str, sel: Selected, expunge: bool) -> Done {
        if expunge && sel.writable().is_ok() {
            let deleted = self.deleted_among(&sel, None);
            if let Err(e) = self.imap.store.expunge(sel.mailbox.id, &deleted) {
                self.store_failure(tag, &e);
                return Done::Flow(Flow::Continue);
            }
        }
        Done::ok(
            tag,
            if expunge {
                "CLOSE completed"
            } else {
                "UNSELECT completed"
            },
        )
    }

    /// RFC 7162 §3.2.6: `* VANISHED (EARLIER)` for the UIDs of `set` expunged after `since`.
    pub(super) fn vanished_earlier(&mut self, sel: &Selected, set: &SeqSet, since: u64) {
        let max = sel.mailbox.uid_next.get().saturating_sub(1);
        match self
            .imap
            .store
            .expunged_since(sel.mailbox.id, ModSeq(since))
        {
            Ok(gone) => {
                let mut gone: Vec<u32> = gone
                    .into_iter()
                    .map(|u| u.get())
                    .filter(|&u| set.contains(u, max))
                    .collect();
                gone.sort_unstable();
                if !gone.is_empty() {
                    self.untagged(&format!("VANISHED (EARLIER) {}", sequence_set(&gone)));
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read expunged UIDs"),
        }
    }

    fn deleted_among(&self, sel: &Selected, only: Option<&[Uid]>) -> Vec<Uid> {
        match self.imap.store.messages(sel.mailbox.id) {
            Ok(all) => all
                .into_iter()
                .filter(|m| m.flags.contains(&Flag::Deleted))
                .filter(|m| only.is_none_or(|o| o.contains(&m.uid)))
                .map(|m| m.uid)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    pub(super) fn expunge(&mut self, tag: &str, sel: &Selected, uids: Option<&SeqSet>) -> Done {
        if let Err(refusal) = sel.writable() {
            return Done::refused(tag, refusal);
        }
        let only = match uids {
            Some(set) => match sel.resolve(set, true) {
                Ok(u) => Some(u),
                Err(e) => return Done::refused(tag, e),
            },
            None => None,
        };
        let deleted = self.deleted_among(sel, only.as_deref());
        if let Err(e) = self.imap.store.expunge(sel.mailbox.id, &deleted) {
            self.store_failure(tag, &e);
            return Done::Flow(Flow::Continue);
        }
        // The EXPUNGE responses are written by the update that precedes the tagged OK.
        Done::ok(tag, "EXPUNGE completed")
    }
}
