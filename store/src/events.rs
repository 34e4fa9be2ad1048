//! Change events: what IMAP IDLE and the webmail wait on. Published only after the change is
//! committed, so a woken reader always finds what it was told about.

use tokio::sync::broadcast;

use crate::{AccountId, MailboxId, ModSeq, Uid};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub account: AccountId,
    pub mailbox: MailboxId,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Appended { uid: Uid, modseq: ModSeq },
    FlagsChanged { uids: Vec<Uid>, modseq: ModSeq },
    Expunged { uids: Vec<Uid>, modseq: ModSeq },
    MailboxCreated,
    MailboxRenamed,
    MailboxDeleted,
}

/// A fan-out of [`Change`]s to every subscriber. A subscriber that falls more than the
/// channel's capacity behind gets `RecvError::Lagged` and must resynchronise from the store.
pub struct Events {
    sender: broadcast::Sender<Change>,
}

impl Events {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }

    pub(crate) fn publish(&self, change: Change) {
        // No subscriber is not an error: nobody is waiting.
        let _ = self.sender.send(change);
    }
}
