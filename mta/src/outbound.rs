//! The queue runner: delivers queued messages to peer operators, retries with exponential
//! back-off, gives up after the configured time, and returns DSNs to senders.
//!
//! Invariant: a recipient's state is saved after every attempt, before any DSN is sent; a
//! crash in between may send a DSN twice, never lose the state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsConnector;

use mshub_directory::{Directory, DomainRole, Route};

use crate::client::{self, AttemptError, Transaction};
use crate::config::QueueConfig;
use crate::dsn::{Action, DsnRecipient};
use crate::queue::{next_delay, Queue, QueuedMessage, RecipientState};
use crate::MtaError;

pub struct Outbound {
    pub(crate) queue: Arc<Queue>,
    pub(crate) delivery: Arc<crate::Delivery>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) config: QueueConfig,
    pub(crate) hostname: String,
    /// `None` when no peer CA is configured: nothing can be verified, so nothing is sent.
    pub(crate) connector: Option<TlsConnector>,
}

fn wants(notify: u64, flag: u64) -> bool {
    // RFC 3461 §4.1: without NOTIFY, failures are reported (and delays at our discretion).
    if notify == 0 {
        return flag != smtp_proto::RCPT_NOTIFY_SUCCESS;
    }
    notify & smtp_proto::RCPT_NOTIFY_NEVER == 0 && notify & flag != 0
}

/// RFC 3463 status from a reply text like `550 5.1.1 …`, else from its class.
fn status_of(reply: &str, permanent: bool) -> String {
    reply
        .split_whitespace()
        .nth(1)
        .filter(|s| {
            let p: Vec<&str> = s.split('.').collect();
            p.len() == 3
                && p.iter()
                    .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
        .unwrap_or_else(|| {
            if permanent {
                "5.0.0".into()
            } else {
                "4.0.0".into()
            }
        })
}

impl Outbound {
    /// Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.run_due().await {
                tracing::error!(error = %e, "queue run failed");
            }
            tokio::select! {
                _ = self.queue.wait(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    async fn run_due(&self) -> Result<(), MtaError> {
        let now = mshub_store::now();
        let queue = self.queue.clone();
        let due: Vec<QueuedMessage> = tokio::task::spawn_blocking(move || queue.list())
            .await
            .map_err(|e| MtaError::Internal(e.to_string()))??
            .into_iter()
            .filter(|m| m.next_attempt <= now)
            .collect();
        for entry in due {
            let id = entry.id;
            // Another node sharing the store may be delivering it, or have just done so.
            let entry = match self.take(id, now) {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(queue_id = id, error = %e, "queue lease not taken");
                    continue;
                }
            };
            if let Err(e) = self.attempt(entry).await {
                tracing::error!(queue_id = id, error = %e, "queue entry could not be processed");
            }
            if let Err(e) = self.queue.release(id) {
                tracing::warn!(queue_id = id, error = %e, "queue lease not released");
            }
        }
        Ok(())
    }

    /// The entry, re-read under this node's lease, if it is still due here.
    fn take(&self, id: u64, now: i64) -> Result<Option<QueuedMessage>, MtaError> {
        if !self.queue.lease(id, now, self.config.lease_secs)? {
            return Ok(None);
        }
        match self.queue.get(id)? {
            Some(entry) if entry.next_attempt <= now => Ok(Some(entry)),
            _ => {
                self.queue.release(id)?;
                Ok(None)
            }
        }
    }

    fn route_for(&self, domain: &mshub_directory::Domain) -> Result<Option<Route>, MtaError> {
        Ok(match self.directory.domain(domain)?.map(|d| d.role) {
            Some(DomainRole::Trusted { route, .. }) => Some(route.unwrap_or(Route {
                host: domain.to_string(),
                port: 25,
            })),
            _ => None,
        })
    }

    async fn attempt(&self, mut entry: QueuedMessage) -> Result<(), MtaError> {
        let span = tracing::info_span!("queue", id = entry.id);
        let _enter = span.enter();
        let message = self.queue.message(&entry)?;
        let mut by_domain: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, r) in entry.recipients.iter().enumerate() {
            if matches!(r.state, RecipientState::Pending { .. }) {
                by_domain
                    .entry(r.address.domain().to_string())
                    .or_default()
                    .push(i);
            }
        }
        let mut newly_failed = Vec::new();
        for (domain, indexes) in by_domain {
            // Each domain may take minutes (a minute per SMTP step at most): the lease is
            // renewed before each, so that no other node takes the entry meanwhile.
            if !self
                .queue
                .lease(entry.id, mshub_store::now(), self.config.lease_secs)?
            {
                return Err(MtaError::Internal(
                    "another node took this entry's lease: mta.queue.lease_secs is too short"
                        .into(),
                ));
            }
            let domain = mshub_directory::Domain::try_from(domain.as_str())?;
            let outcome = match (self.route_for(&domain)?, &self.connector) {
                (None, _) => Err(AttemptError::Permanent(format!(
                    "550 5.7.1 {domain} is no longer in the health messaging trust space"
                ))),
                (Some(_), None) => Err(AttemptError::Temporary(
                    "no peer CA configured (mta.peer_ca): peer certificates cannot be verified"
                        .into(),
                )),
                (Some(route), Some(connector)) => {
                    let tx = Transaction {
                        helo: &self.hostname,
                        from: entry.from.as_ref(),
                        env_id: entry.env_id.as_deref(),
                        ret_full: entry.ret_full,
                        recipients: indexes
                            .iter()
                            .map(|&i| {
                                let r = &entry.recipients[i];
                                (&r.address, r.dsn.notify, r.dsn.orcpt.as_deref())
                            })
                            .collect(),
                        message: &message,
                    };
                    client::deliver(&route, connector, &tx).await
                }
            };
            match outcome {
                Ok(replies) => {
                    for (&i, reply) in indexes.iter().zip(replies) {
                        let r = &mut entry.recipients[i];
                        r.state = if reply.code < 300 {
                            tracing::info!(code = reply.code, "delivered to peer");
                            RecipientState::Delivered {
                                reply: reply.to_string(),
                            }
                        } else if reply.is_permanent() {
                            newly_failed.push(i);
                            RecipientState::Failed {
                                reply: reply.to_string(),
                            }
                        } else {
                            RecipientState::Pending {
                                last_error: Some(reply.to_string()),
                            }
                        };
                    }
                }
                Err(AttemptError::Permanent(reason)) => {
                    for &i in &indexes {
                        entry.recipients[i].state = RecipientState::Failed {
                            reply: reason.clone(),
                        };
                        newly_failed.push(i);
                    }
                }
                Err(AttemptError::Temporary(reason)) => {
                    // The reason may quote the peer's reply about a recipient: debug only
                    // (`mshub queue list` shows it to the operator).
                    tracing::info!(%domain, "delivery deferred");
                    tracing::debug!(%domain, %reason, "delivery deferred");
                    for &i in &indexes {
                        entry.recipients[i].state = RecipientState::Pending {
                            last_error: Some(reason.clone()),
                        };
                    }
                }
            }
        }

        let now = mshub_store::now();
        entry.attempts += 1;
        let age = now - entry.created;
        let mut expired = Vec::new();
        if age >= self.config.give_up_secs as i64 {
            for (i, r) in entry.recipients.iter_mut().enumerate() {
                if let RecipientState::Pending { last_error } = &r.state {
                    let reason = format!(
                        "4.4.7 delivery time expired after {} attempts; last error: {}",
                        entry.attempts,
                        last_error.as_deref().unwrap_or("none")
                    );
                    r.state = RecipientState::Failed { reply: reason };
                    expired.push(i);
                }
            }
        }
        let delay_due = !entry.delay_notified
            && age >= self.config.delay_notice_secs as i64
            && entry.pending().next().is_some();
        if delay_due {
            entry.delay_notified = true;
        }
        entry.next_attempt = now
            + next_delay(
                entry.attempts,
                self.config.retry_initial_secs,
                self.config.retry_max_secs,
            ) as i64;
        let finished = entry.pending().next().is_none();
        self.queue.save(&entry)?;

        let mut report: Vec<DsnRecipient> = Vec::new();
        for &i in newly_failed.iter().chain(&expired) {
            let r = &entry.recipients[i];
            if !wants(r.dsn.notify, smtp_proto::RCPT_NOTIFY_FAILURE) {
                continue;
            }
            let RecipientState::Failed { reply } = &r.state else {
                continue;
            };
            let expired_here = expired.contains(&i);
            report.push(DsnRecipient {
                address: r.address.clone(),
                orcpt: r.dsn.orcpt.clone(),
                action: Action::Failed,
                status: if expired_here {
                    "4.4.7".into()
                } else {
                    status_of(reply, true)
                },
                diagnostic: reply.clone(),
            });
        }
        if delay_due {
            for r in entry.pending() {
                if wants(r.dsn.notify, smtp_proto::RCPT_NOTIFY_DELAY) {
                    let last = match &r.state {
                        RecipientState::Pending { last_error } => last_error.clone(),
                        _ => None,
                    };
                    report.push(DsnRecipient {
                        address: r.address.clone(),
                        orcpt: r.dsn.orcpt.clone(),
                        action: Action::Delayed,
                        status: "4.4.1".into(),
                        diagnostic: last.unwrap_or_else(|| "not yet delivered".into()),
                    });
                }
            }
        }
        if !report.is_empty() {
            self.send_dsn(&entry, &report, &message)?;
        }
        if finished {
            self.queue.remove(&entry)?;
        }
        Ok(())
    }

    /// Returns a DSN to the sender (never for a message with the null sender, RFC 3461 §6.2).
    fn send_dsn(
        &self,
        entry: &QueuedMessage,
        recipients: &[DsnRecipient],
        original: &[u8],
    ) -> Result<(), MtaError> {
        let Some(to) = &entry.from else {
            return Ok(());
        };
        let bytes = self.delivery.report(
            to,
            entry.env_id.as_deref(),
            entry.created,
            recipients,
            original,
            entry.ret_full,
        )?;
        self.delivery.return_to_sender(to, &bytes)?;
        tracing::info!(queue_id = entry.id, "DSN returned to the sender");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_defaults_to_failures_and_never_means_never() {
        use smtp_proto::*;
        assert!(wants(0, RCPT_NOTIFY_FAILURE));
        assert!(!wants(0, RCPT_NOTIFY_SUCCESS));
        assert!(!wants(RCPT_NOTIFY_NEVER, RCPT_NOTIFY_FAILURE));
        assert!(wants(RCPT_NOTIFY_DELAY, RCPT_NOTIFY_DELAY));
        assert!(!wants(RCPT_NOTIFY_SUCCESS, RCPT_NOTIFY_FAILURE));
    }

    #[test]
    fn status_is_taken_from_the_reply_when_present() {
        assert_eq!(status_of("550 5.1.1 no such user", true), "5.1.1");
        assert_eq!(status_of("550 no such user", true), "5.0.0");
        assert_eq!(status_of("cannot connect", false), "4.0.0");
    }
}
