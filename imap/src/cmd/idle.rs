//! IDLE (RFC 2177, RFC 9051 §6.3.13): woken by the store's change events for the selected
//! mailbox, which are reported as untagged EXISTS / EXPUNGE / FETCH until the client's DONE.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::RecvError;

use mshub_store::AccountId;

use super::Done;
use crate::refusal::Refusal;
use crate::session::{Ended, Flow, Session};

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn idle(&mut self, tag: &str, account: AccountId) -> Done {
        // Subscribed before the continuation: a change right after it is not missed.
        let mut changes = self.imap.store.events().subscribe();
        if let Err(e) = self.sync(true) {
            tracing::error!(error = %e, "cannot read the selected mailbox");
        }
        self.continuation("idling");
        if self.flush().await.is_err() {
            return Done::Flow(Flow::Stop(Ended::Closed));
        }
        loop {
            if let Some(line) = self.take_line() {
                if line.eq_ignore_ascii_case(b"DONE") {
                    return Done::ok(tag, "IDLE terminated");
                }
                return Done::refused(tag, Refusal::ExpectedDone);
            }
            let selected = self.selected.as_ref().map(|s| s.mailbox.id);
            tokio::select! {
                read = self.read_more() => {
                    if let Err(ended) = read {
                        return Done::Flow(Flow::Stop(ended));
                    }
                }
                change = changes.recv() => {
                    let relevant = match &change {
                        Ok(c) => c.account == account && Some(c.mailbox) == selected,
                        Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => false,
                    };
                    if relevant {
                        if let Err(e) = self.sync(true) {
                            tracing::error!(error = %e, "cannot read the selected mailbox");
                        }
                        if self.flush().await.is_err() {
                            return Done::Flow(Flow::Stop(Ended::Closed));
                        }
                    } else if matches!(change, Err(RecvError::Closed)) {
                        // No more events (the store is going away): wait for DONE only.
                        changes = self.imap.store.events().subscribe();
                    }
                }
            }
        }
    }
}
