//! DATA and BDAT (RFC 3030), and the end of a transaction: checks on the message itself, the
//! trace header, durable delivery, then `250`.

use smtp_proto::request::receiver::DummyDataReceiver;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Flow, Session, State};
use crate::codec::{BdatReceiver, DataReceiver, Reply};
use crate::delivery::Envelope;
use crate::policy::{Door, MessageHeaders};
use crate::refusal::Refusal;

/// A LF not preceded by CR: refused, as such lines are how SMTP smuggling works.
pub fn has_bare_lf(data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'))
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn data(&mut self) -> Flow {
        match &self.tx {
            None => self.refuse(Refusal::NeedMail),
            Some(tx) if tx.recipients.is_empty() => self.refuse(Refusal::NeedRcpt),
            Some(tx) if tx.chunking => self.refuse(Refusal::BadBdatSequence),
            Some(_) => {
                self.reply(Reply::plain(
                    354,
                    vec!["Start mail input; end with <CRLF>.<CRLF>".into()],
                ));
                self.state = State::Data(DataReceiver::new());
                Flow::Continue
            }
        }
    }

    pub(super) fn bdat(&mut self, chunk_size: usize, is_last: bool) -> Flow {
        let max = self.mta.config.max_message_size;
        let refusal = match &self.tx {
            None => Some((Refusal::BadBdatSequence, false)),
            Some(tx) if tx.recipients.is_empty() => Some((Refusal::NeedRcpt, false)),
            Some(tx) if tx.data.len().saturating_add(chunk_size) > max => {
                Some((Refusal::MessageTooBig(max), true))
            }
            Some(_) => None,
        };
        // The chunk's bytes follow the command whatever we answer: swallow them first.
        if let Some((refusal, ends_tx)) = refusal {
            self.state = State::Discard {
                receiver: DummyDataReceiver::new_bdat(chunk_size),
                reply: refusal.reply(),
                finishes_transaction: ends_tx,
            };
            return Flow::Continue;
        }
        if let Some(tx) = self.tx.as_mut() {
            tx.chunking = true;
            tx.data.reserve(chunk_size.min(max));
        }
        self.state = State::Bdat(BdatReceiver::new(chunk_size, is_last));
        Flow::Continue
    }

    /// The message is complete: check it, store it durably, then answer.
    pub(super) async fn finish_message(&mut self) -> Flow {
        let Some(tx) = self.tx.take() else {
            return self.refuse(Refusal::NeedMail);
        };
        if has_bare_lf(&tx.data) {
            return self.refuse(Refusal::BareLineFeed);
        }
        let headers = MessageHeaders::parse(&tx.data);
        let recipients: Vec<_> = tx.recipients.iter().map(|(r, _)| r.clone()).collect();
        if let Err(refusal) =
            self.mta
                .policy
                .check_message(self.client(), tx.from.is_none(), &headers, &recipients)
        {
            return self.refuse(refusal);
        }
        let message = self.with_trace_header(&tx.data);
        let envelope = Envelope {
            from: tx.from,
            recipients: tx.recipients,
            env_id: tx.env_id,
            ret_full: tx.ret_full,
            sender_account: self.account.clone(),
            authenticity: tx.authenticity,
        };
        let delivery = self.mta.delivery.clone();
        let result = tokio::task::spawn_blocking(move || {
            let report = delivery.deliver(&envelope, &headers, &message);
            (report, envelope, message, delivery)
        })
        .await;
        match result {
            Ok((Ok(report), envelope, message, delivery)) => {
                tracing::info!(id = %report.id, recipients = envelope.recipients.len(), size = message.len(), "accepted");
                let door = match self.conn.door {
                    Door::Relay => "relay",
                    Door::Submission => "submission",
                };
                MESSAGES.inc(&[door]);
                DELIVERED.add(&[door, "local"], report.local.len() as f64);
                if report.queued.is_some() {
                    DELIVERED.inc(&[door, "queued"]);
                }
                self.reply(Reply::new(
                    250,
                    "2.0.0",
                    format!("OK: queued as {}", report.id),
                ));
                // Filers run after the acknowledgement; their outcome is recorded on the message.
                if !report.local.is_empty() && delivery.wants_filing(&message) {
                    tokio::task::spawn_blocking(move || {
                        delivery.run_filers(&report, &envelope.origin(), &message)
                    });
                }
                Flow::Continue
            }
            Ok((Err(e), ..)) => {
                tracing::error!(error = %e, "delivery failed, nothing acknowledged");
                self.refuse(Refusal::StorageFailed)
            }
            Err(e) => {
                tracing::error!(error = %e, "delivery task failed, nothing acknowledged");
                self.refuse(Refusal::StorageFailed)
            }
        }
    }

    /// RFC 5321 §4.4: a Received: line on top. No "for <recipient>": it would reveal Bcc.
    fn with_trace_header(&self, data: &[u8]) -> Vec<u8> {
        let protocol = match (self.conn.tls, self.account.is_some()) {
            (true, true) => "ESMTPSA",
            (true, false) => "ESMTPS",
            (false, true) => "ESMTPA",
            (false, false) => "ESMTP",
        };
        let helo: String = self
            .helo
            .as_deref()
            .unwrap_or("unknown")
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        let door = match self.conn.door {
            Door::Relay => "relay",
            Door::Submission => "submission",
        };
        let header = format!(
            "Received: from {helo} ([{ip}])\r\n\tby {host} (mshub {door}) with {protocol} id {id};\r\n\t{date}\r\n",
            ip = self.conn.peer.ip(),
            host = self.mta.hostname,
            id = self.conn.id,
            date = crate::date::rfc5322(mshub_store::now()),
        );
        let mut out = Vec::with_capacity(header.len() + data.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }
}

/// Messages acknowledged (`250` after DATA or the last BDAT), by door.
static MESSAGES: mshub_metrics::Family = mshub_metrics::Family::counter(
    "mshub_smtp_messages_total",
    "Messages accepted (stored durably, then 250) by door (relay, submission).",
    &["door"],
);

/// Where they went: a copy in each local recipient's mailbox, one entry in the outbound queue
/// for all the recipients at peer operators.
static DELIVERED: mshub_metrics::Family = mshub_metrics::Family::counter(
    "mshub_smtp_delivered_total",
    "Accepted messages by door: copies stored in local mailboxes (local), entries put in the outbound queue for peer operators (queued).",
    &["door", "to"],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf_is_found_anywhere() {
        assert!(!has_bare_lf(b"a\r\nb\r\n"));
        assert!(has_bare_lf(b"a\nb\r\n"));
        assert!(has_bare_lf(b"\n"));
        assert!(has_bare_lf(b"a\r\n\n"));
    }
}
