//! Conversations: the messages of a mailbox grouped by the thread they belong to (the root of
//! their References, RFC 5322 §3.6.4, else their own Message-ID), newest conversation first.
//! Built from the cached summaries and kept per mailbox until its HIGHESTMODSEQ moves, like the
//! message list it is made from ([`crate::listing`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mshub_store::{Mailbox, MailboxId, ModSeq, Uid};

use crate::listing::List;

/// Mailboxes whose conversations are kept at most; past it the cache starts over.
const MAX_MAILBOXES: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Conversation {
    /// Oldest first.
    pub uids: Vec<Uid>,
    pub unread: usize,
    /// Arrival of the newest message.
    pub arrived: i64,
}

impl Conversation {
    pub fn latest(&self) -> Uid {
        self.uids.last().copied().unwrap_or(Uid::MIN)
    }
}

#[derive(Debug)]
pub struct Threads {
    modseq: ModSeq,
    /// Newest conversation first.
    pub list: Vec<Conversation>,
    by_key: HashMap<String, usize>,
}

impl Threads {
    pub fn of_key(&self, key: &str) -> Option<&Conversation> {
        self.by_key.get(key).map(|&i| &self.list[i])
    }
}

/// The thread key of a message: the first of its References (the conversation's root), else
/// its own Message-ID, normalised; `None` when it has neither.
pub fn thread_key(references: &[String], message_id: Option<&str>) -> Option<String> {
    references
        .first()
        .map(String::as_str)
        .or(message_id)
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_ascii_lowercase()
        })
        .filter(|k| !k.is_empty())
}

#[derive(Default)]
pub struct ThreadCache {
    cache: Mutex<HashMap<MailboxId, Arc<Threads>>>,
}

impl ThreadCache {
    /// The conversations of `mailbox` if they are current; never reads the store.
    pub fn cached(&self, mailbox: &Mailbox) -> Option<Arc<Threads>> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&mailbox.id)
            .filter(|t| t.modseq == mailbox.highest_modseq)
            .cloned()
    }

    /// Groups `list` (the mailbox's messages as of `list.modseq`) by `key_of` each UID.
    pub fn build(
        &self,
        mailbox: MailboxId,
        list: &List,
        key_of: impl Fn(Uid) -> Option<String>,
    ) -> Arc<Threads> {
        let mut list_out: Vec<Conversation> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        for e in &list.entries {
            let key = key_of(e.uid).unwrap_or_else(|| format!("uid:{}", e.uid));
            let i = *by_key.entry(key.clone()).or_insert_with(|| {
                list_out.push(Conversation {
                    uids: Vec::new(),
                    unread: 0,
                    arrived: e.arrived,
                });
                keys.push(key);
                list_out.len() - 1
            });
            let c = &mut list_out[i];
            c.uids.push(e.uid);
            c.unread += usize::from(!e.seen);
            c.arrived = c.arrived.max(e.arrived);
        }
        let mut order: Vec<usize> = (0..list_out.len()).collect();
        order.sort_by(|&a, &b| {
            (list_out[b].arrived, list_out[b].latest())
                .cmp(&(list_out[a].arrived, list_out[a].latest()))
        });
        let mut sorted = Vec::with_capacity(order.len());
        let mut by_key = HashMap::with_capacity(order.len());
        for (new_i, old_i) in order.into_iter().enumerate() {
            by_key.insert(keys[old_i].clone(), new_i);
            sorted.push(list_out[old_i].clone());
        }
        let threads = Arc::new(Threads {
            modseq: list.modseq,
            list: sorted,
            by_key,
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_MAILBOXES {
            cache.clear();
        }
        match cache.get(&mailbox) {
            Some(current) if current.modseq > threads.modseq => {}
            _ => {
                cache.insert(mailbox, threads.clone());
            }
        }
        threads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::Entry;

    fn uid(n: u32) -> Uid {
        Uid::try_from(n).unwrap()
    }

    #[test]
    fn messages_group_by_their_root_newest_conversation_first() {
        let list = List {
            modseq: ModSeq(9),
            entries: vec![
                Entry {
                    uid: uid(1),
                    seen: true,
                    arrived: 100,
                },
                Entry {
                    uid: uid(2),
                    seen: false,
                    arrived: 200,
                },
                Entry {
                    uid: uid(3),
                    seen: false,
                    arrived: 300,
                },
                Entry {
                    uid: uid(4),
                    seen: true,
                    arrived: 150,
                },
            ],
            unread: 2,
        };
        // 1 and 3 are one conversation (3 answers 1), 2 and 4 stand alone.
        let keys = |u: Uid| match u.get() {
            1 | 3 => Some("a@x".to_string()),
            2 => Some("b@x".to_string()),
            _ => None,
        };
        let t = ThreadCache::default().build(MailboxId(1), &list, keys);
        let order: Vec<Vec<u32>> = t
            .list
            .iter()
            .map(|c| c.uids.iter().map(|u| u.get()).collect())
            .collect();
        assert_eq!(order, vec![vec![1, 3], vec![2], vec![4]]);
        assert_eq!(t.list[0].unread, 1);
        assert_eq!(t.of_key("a@x").unwrap().latest(), uid(3));
        assert_eq!(t.of_key("b@x").unwrap().uids, vec![uid(2)]);
    }

    #[test]
    fn the_thread_key_is_the_root_of_the_references() {
        assert_eq!(
            thread_key(&["<Root@X>".into(), "<b@x>".into()], Some("<c@x>")).as_deref(),
            Some("root@x")
        );
        assert_eq!(thread_key(&[], Some("<c@x>")).as_deref(), Some("c@x"));
        assert_eq!(thread_key(&[], None), None);
    }
}
