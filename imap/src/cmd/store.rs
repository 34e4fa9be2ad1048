//! STORE and UID STORE (RFC 9051 §6.4.6), with RFC 7162 UNCHANGEDSINCE.

use std::collections::BTreeSet;

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_store::{Flag, FlagOp, ModSeq};

use super::Done;
use crate::codec::{SeqSet, StoreOp};
use crate::session::{Flow, Selected, Session};

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn store(
        &mut self,
        tag: &str,
        sel: &mut Selected,
        set: &SeqSet,
        op: StoreOp,
        silent: bool,
        flags: &BTreeSet<Flag>,
        unchanged_since: Option<u64>,
        uid: bool,
    ) -> Done {
        if let Err(refusal) = sel.writable() {
            return Done::refused(tag, refusal);
        }
        let uids = match sel.resolve(set, uid) {
            Ok(u) => u,
            Err(e) => return Done::refused(tag, e),
        };
        let op = match op {
            StoreOp::Add => FlagOp::Add,
            StoreOp::Remove => FlagOp::Remove,
            StoreOp::Replace => FlagOp::Replace,
        };
        let update = match self.imap.store.store_flags(
            sel.mailbox.id,
            &uids,
            op,
            flags,
            unchanged_since.map(ModSeq),
        ) {
            Ok(u) => u,
            Err(e) => {
                self.store_failure(tag, &e);
                return Done::Flow(Flow::Continue);
            }
        };
        // RFC 3501 §7.2.6: a keyword this STORE introduced is announced before its FETCH
        // (even a silent one: the mailbox's flags changed).
        self.announce_keywords(sel, update.updated.iter().map(|m| &m.flags));
        for meta in &update.updated {
            let Some(seq) = sel.seq_of(meta.uid) else {
                continue;
            };
            sel.known.insert(meta.uid, meta.clone());
            if silent {
                continue;
            }
            let mut line = format!(
                "{seq} FETCH (FLAGS {}",
                sel.flag_list(meta.uid, &meta.flags)
            );
            if uid {
                line.push_str(&format!(" UID {}", meta.uid));
            }
            if self.condstore {
                line.push_str(&format!(" MODSEQ ({})", meta.modseq.0));
            }
            line.push(')');
            self.untagged(&line);
        }
        if !update.modified.is_empty() {
            let list: Vec<String> = update.modified.iter().map(|u| u.to_string()).collect();
            return Done::ok(
                tag,
                format!("[MODIFIED {}] Conditional STORE failed", list.join(",")),
            );
        }
        Done::ok(
            tag,
            if uid {
                "UID STORE completed"
            } else {
                "STORE completed"
            },
        )
    }
}
