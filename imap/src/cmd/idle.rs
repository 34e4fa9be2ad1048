//! IDLE (RFC 2177, RFC 9051 §6.3.13): woken by the store's change events for the selected
//! mailbox, which are reported as untagged EXISTS / EXPUNGE / FETCH until the client's DONE.
//! After NOTIFY (RFC 5465 §4), IDLE tells what the NOTIFY settings ask for instead.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::{self, error::RecvError};

use mshub_store::{AccountId, Change};

use super::Done;
use crate::refusal::Refusal;
use crate::session::{Ended, Flow, Session};

/// What an IDLE tells of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Telling {
    /// No NOTIFY: the selected mailbox's changes.
    Selected,
    /// NOTIFY SET: what its settings ask for.
    Notify,
    /// NOTIFY NONE (or after an overflow): nothing.
    Nothing,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn idle(&mut self, tag: &str, account: AccountId) -> Done {
        let (mut changes, telling) = match (self.notify_receiver(), &self.notify) {
            (Some(rx), _) => (rx, Telling::Notify),
            // Subscribed before the continuation: a change right after it is not missed.
            (None, None) => (self.imap.store.events().subscribe(), Telling::Selected),
            (None, Some(_)) => (self.imap.store.events().subscribe(), Telling::Nothing),
        };
        let done = self
            .idle_until_done(tag, account, &mut changes, telling)
            .await;
        if telling == Telling::Notify && self.notify.is_some() {
            self.notify_resume(changes);
        }
        done
    }

    async fn idle_until_done(
        &mut self,
        tag: &str,
        account: AccountId,
        changes: &mut broadcast::Receiver<Change>,
        mut telling: Telling,
    ) -> Done {
        if telling == Telling::Selected {
            if let Err(e) = self.sync(true) {
                tracing::error!(error = %e, "cannot read the selected mailbox");
            }
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
                    match (telling, &change) {
                        (Telling::Notify, Ok(c)) => self.notified(c),
                        (Telling::Notify, Err(RecvError::Lagged(_))) => {
                            self.notification_overflow();
                            telling = Telling::Nothing;
                        }
                        (Telling::Selected, Ok(c))
                            if c.account == account && Some(c.mailbox) == selected =>
                        {
                            if let Err(e) = self.sync(true) {
                                tracing::error!(error = %e, "cannot read the selected mailbox");
                            }
                        }
                        (Telling::Selected, Err(RecvError::Lagged(_))) => {
                            if let Err(e) = self.sync(true) {
                                tracing::error!(error = %e, "cannot read the selected mailbox");
                            }
                        }
                        (_, Err(RecvError::Closed)) => {
                            // No more events (the store is going away): wait for DONE only.
                            *changes = self.imap.store.events().subscribe();
                            telling = Telling::Nothing;
                        }
                        _ => {}
                    }
                    if self.flush().await.is_err() {
                        return Done::Flow(Flow::Stop(Ended::Closed));
                    }
                }
            }
        }
    }
}
