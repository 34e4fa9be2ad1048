//! In-process submission, for the webmail: the same policy as the submission port for an
//! account already authenticated by the caller, durable delivery, and — unlike SMTP submission,
//! where mail clients append their own copy — a copy in the sender's Sent folder.

use mshub_directory::Account;
use mshub_store::SpecialUse;

use crate::delivery::{DeliveryReport, Envelope};
use crate::dsn::DsnRequest;
use crate::policy::{Client, Door, MessageHeaders};
use crate::refusal::Refusal;
use crate::session::has_bare_lf;
use crate::Mta;

impl Mta {
    /// Submits `message` from `account` to `recipients`. Blocking (storage and filers): call it
    /// off the async workers. Returns the refusal, with its SMTP reply, when policy says no.
    pub fn submit(
        &self,
        account: &Account,
        recipients: &[String],
        message: &[u8],
    ) -> Result<DeliveryReport, Refusal> {
        let client = Client {
            door: Door::Submission,
            tls: true,
            peer_certificate: None,
            account: Some(account),
            plaintext_allowed: false,
        };
        let authenticity = self.policy.check_sender(client, Some(&account.address))?;
        if recipients.is_empty() {
            return Err(Refusal::NeedRcpt);
        }
        if recipients.len() > self.config.max_recipients {
            return Err(Refusal::TooManyRecipients(self.config.max_recipients));
        }
        let mut accepted = Vec::with_capacity(recipients.len());
        for r in recipients {
            accepted.push((
                self.policy.check_recipient(client, authenticity, r)?,
                DsnRequest::default(),
            ));
        }
        if message.len() > self.config.max_message_size {
            return Err(Refusal::MessageTooBig(self.config.max_message_size));
        }
        if has_bare_lf(message) {
            return Err(Refusal::BareLineFeed);
        }
        let headers = MessageHeaders::parse(message);
        let plain: Vec<_> = accepted.iter().map(|(r, _)| r.clone()).collect();
        self.policy.check_message(client, false, &headers, &plain)?;
        let envelope = Envelope {
            from: Some(account.address.clone()),
            recipients: accepted,
            env_id: None,
            ret_full: false,
            sender_account: Some(account.clone()),
            authenticity,
        };
        let storage = |e: crate::MtaError| {
            tracing::error!(error = %e, "in-process submission failed");
            Refusal::StorageFailed
        };
        // The Sent copy is in the same atomic write as the recipients' copies: a refusal means
        // nobody has the message, and the retry leaves one copy in Sent.
        let sent = self
            .delivery
            .store()
            .special_mailbox(account.id, SpecialUse::Sent)
            .map_err(|e| storage(e.into()))?;
        let report = self
            .delivery
            .deliver_with_sent(&envelope, &headers, message, Some(sent.id))
            .map_err(storage)?;
        self.delivery
            .run_filers(&report, &envelope.origin(), message);
        Ok(report)
    }
}
