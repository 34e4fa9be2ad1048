//! Change events: what IMAP IDLE and the webmail wait on. Published only after the change is
//! committed, so a woken reader always finds what it was told about.
//!
//! On one node they stay in the process. When several nodes share a backend that carries
//! changes (PostgreSQL: [`ChangeFeed`]), each published change is also announced to the other
//! nodes, and theirs are re-published here: a client idling on one node is woken by mail
//! delivered on another.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::{AccountId, MailboxId, ModSeq, Result, Uid};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub account: AccountId,
    pub mailbox: MailboxId,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    Appended { uid: Uid, modseq: ModSeq },
    FlagsChanged { uids: Vec<Uid>, modseq: ModSeq },
    Expunged { uids: Vec<Uid>, modseq: ModSeq },
    MailboxCreated,
    MailboxRenamed,
    MailboxDeleted,
}

/// Carries change notices between the nodes that share a backend.
pub trait ChangeFeed: Send + Sync + 'static {
    /// Tells the other nodes, without waiting for the network (notices go out in order).
    fn announce(&self, notice: String);
    /// Starts handing every notice announced by any node to `deliver`; returns once listening,
    /// so that nothing announced after it is missed.
    fn listen(&self, deliver: Box<dyn Fn(&str) + Send + Sync>) -> Result<()>;
}

/// Largest notice sent whole (PostgreSQL's NOTIFY payload limit is 8000 bytes).
const MAX_NOTICE: usize = 7000;

/// A fan-out of [`Change`]s to every subscriber. A subscriber that falls more than the
/// channel's capacity behind gets `RecvError::Lagged` and must resynchronise from the store.
pub struct Events {
    sender: broadcast::Sender<Change>,
    feed: Option<(Arc<dyn ChangeFeed>, String)>,
}

impl Events {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
            feed: None,
        }
    }

    /// Events also carried to and from the other nodes over `feed`.
    pub(crate) fn across_nodes(feed: Arc<dyn ChangeFeed>) -> Result<Self> {
        let node = node_id();
        let sender = broadcast::channel(1024).0;
        let local = sender.clone();
        let me = node.clone();
        feed.listen(Box::new(move |notice| {
            let Some((from, change)) = notice.split_once(':') else {
                return;
            };
            if from == me {
                return;
            }
            match serde_json::from_str::<Change>(change) {
                Ok(change) => {
                    let _ = local.send(change);
                }
                Err(e) => tracing::warn!(error = %e, "unreadable change notice from another node"),
            }
        }))?;
        Ok(Self {
            sender,
            feed: Some((feed, node)),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }

    pub(crate) fn publish(&self, change: Change) {
        if let Some((feed, node)) = &self.feed {
            feed.announce(notice(node, &change));
        }
        // No subscriber is not an error: nobody is waiting.
        let _ = self.sender.send(change);
    }
}

/// `node:json`. A change too large for one notice loses its UID list: receivers resynchronise
/// from the store anyway, the notice is what wakes them.
fn notice(node: &str, change: &Change) -> String {
    let text = serde_json::to_string(change).expect("changes serialise");
    if text.len() <= MAX_NOTICE {
        return format!("{node}:{text}");
    }
    let mut short = change.clone();
    if let ChangeKind::FlagsChanged { uids, .. } | ChangeKind::Expunged { uids, .. } =
        &mut short.kind
    {
        uids.clear();
    }
    format!(
        "{node}:{}",
        serde_json::to_string(&short).expect("changes serialise")
    )
}

/// This process's name among the nodes: random, so two nodes never take one for the other.
fn node_id() -> String {
    let mut b = [0u8; 8];
    sequoia_openpgp::crypto::random(&mut b).expect("the system random generator is available");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_notice_drops_its_uids_but_still_names_the_mailbox() {
        let uids: Vec<Uid> = (1..5000).map(|n| Uid::try_from(n).unwrap()).collect();
        let change = Change {
            account: AccountId(7),
            mailbox: MailboxId(9),
            kind: ChangeKind::Expunged {
                uids,
                modseq: ModSeq(12),
            },
        };
        let n = notice("abcd", &change);
        assert!(n.len() <= MAX_NOTICE + 5, "{}", n.len());
        let (node, json) = n.split_once(':').unwrap();
        assert_eq!(node, "abcd");
        let back: Change = serde_json::from_str(json).unwrap();
        assert_eq!(back.mailbox, MailboxId(9));
        assert_eq!(
            back.kind,
            ChangeKind::Expunged {
                uids: vec![],
                modseq: ModSeq(12)
            }
        );
    }
}
