//! The message list of a mailbox as the pages need it (UID, seen, arrival), cached per mailbox
//! and rebuilt only when the mailbox's HIGHESTMODSEQ has moved: every append, flag change,
//! expunge, copy or move raises it (RFC 7162 §3.1.1), so a cached list with the same value is
//! exactly the list in the store. A page of the inbox then costs one mailbox read, not a scan
//! of every message record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mshub_store::{Flag, Mailbox, MailboxId, ModSeq, Store, Uid};

/// Mailboxes whose list is kept at most; past it the cache starts over.
const MAX_MAILBOXES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub uid: Uid,
    pub seen: bool,
    /// INTERNALDATE, unix seconds.
    pub arrived: i64,
}

#[derive(Debug)]
pub struct List {
    pub modseq: ModSeq,
    /// By UID, oldest first.
    pub entries: Vec<Entry>,
    pub unread: usize,
}

#[derive(Default)]
pub struct Lists {
    cache: Mutex<HashMap<MailboxId, Arc<List>>>,
}

impl Lists {
    /// The cached list of `mailbox` if it is current; never reads the store.
    pub fn cached(&self, mailbox: &Mailbox) -> Option<Arc<List>> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&mailbox.id)
            .filter(|l| l.modseq == mailbox.highest_modseq)
            .cloned()
    }

    /// The list of `mailbox` as of its current HIGHESTMODSEQ.
    pub fn get(&self, store: &Store, mailbox: &Mailbox) -> mshub_store::Result<Arc<List>> {
        if let Some(list) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&mailbox.id)
            .filter(|l| l.modseq == mailbox.highest_modseq)
        {
            return Ok(list.clone());
        }
        let entries: Vec<Entry> = store
            .messages(mailbox.id)?
            .into_iter()
            .map(|m| Entry {
                uid: m.uid,
                seen: m.flags.contains(&Flag::Seen),
                arrived: m.internal_date,
            })
            .collect();
        let list = Arc::new(List {
            modseq: mailbox.highest_modseq,
            unread: entries.iter().filter(|e| !e.seen).count(),
            entries,
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_MAILBOXES {
            cache.clear();
        }
        // A slower concurrent rebuild of an older state must not replace a newer one.
        match cache.get(&mailbox.id) {
            Some(current) if current.modseq > list.modseq => {}
            _ => {
                cache.insert(mailbox.id, list.clone());
            }
        }
        Ok(list)
    }
}
