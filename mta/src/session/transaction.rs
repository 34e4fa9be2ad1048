//! MAIL FROM and RCPT TO: the envelope of a transaction, each step checked by the policy.

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_directory::Address;

use super::{Flow, Session};
use crate::codec::{MailFrom, RcptTo, Reply};
use crate::dsn::DsnRequest;
use crate::peer::Authenticity;
use crate::policy::Recipient;
use crate::refusal::Refusal;

/// The transaction in progress, from MAIL FROM to the end of the message.
pub struct Transaction {
    pub from: Option<Address>,
    /// How the hub knows `from` (decided at MAIL FROM).
    pub authenticity: Authenticity,
    pub smtputf8: bool,
    pub ret_full: bool,
    pub env_id: Option<String>,
    pub recipients: Vec<(Recipient, DsnRequest)>,
    pub data: Vec<u8>,
    /// BDAT chunks have started: DATA is no longer allowed (RFC 3030 §2).
    pub chunking: bool,
}

const NOTIFY_MASK: u64 = smtp_proto::RCPT_NOTIFY_SUCCESS
    | smtp_proto::RCPT_NOTIFY_FAILURE
    | smtp_proto::RCPT_NOTIFY_DELAY
    | smtp_proto::RCPT_NOTIFY_NEVER;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn mail(&mut self, from: MailFrom<String>) -> Flow {
        if self.helo.is_none() {
            return self.refuse(Refusal::HeloFirst);
        }
        if self.tx.is_some() {
            return self.refuse(Refusal::NestedMail);
        }
        if from.size > self.mta.config.max_message_size {
            return self.refuse(Refusal::MessageTooBig(self.mta.config.max_message_size));
        }
        let smtputf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
        let reverse_path = if from.address.is_empty() {
            None
        } else {
            if !from.address.is_ascii() && !smtputf8 {
                self.reply(Reply::new(
                    553,
                    "5.6.7",
                    "Non-ASCII address: add the SMTPUTF8 parameter (RFC 6531)",
                ));
                return Flow::Continue;
            }
            match Address::try_from(from.address.as_str()) {
                Ok(a) => Some(a),
                Err(e) => {
                    self.reply(Reply::new(
                        553,
                        "5.1.7",
                        format!("Invalid sender address: {e}"),
                    ));
                    return Flow::Continue;
                }
            }
        };
        let authenticity = match self
            .mta
            .policy
            .check_sender(self.client(), reverse_path.as_ref())
        {
            Ok(a) => a,
            Err(refusal) => return self.refuse(refusal),
        };
        self.tx = Some(Transaction {
            from: reverse_path,
            authenticity,
            smtputf8,
            ret_full: from.flags & smtp_proto::MAIL_RET_FULL != 0,
            env_id: from.env_id,
            recipients: Vec::new(),
            data: Vec::new(),
            chunking: false,
        });
        self.reply(Reply::new(250, "2.1.0", "Sender OK"));
        Flow::Continue
    }

    pub(super) fn rcpt(&mut self, to: RcptTo<String>) -> Flow {
        let Some(tx) = &self.tx else {
            return self.refuse(Refusal::NeedMail);
        };
        if tx.recipients.len() >= self.mta.config.max_recipients {
            return self.refuse(Refusal::TooManyRecipients(self.mta.config.max_recipients));
        }
        if !to.address.is_ascii() && !tx.smtputf8 {
            self.reply(Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address: the transaction needs the SMTPUTF8 parameter (RFC 6531)",
            ));
            return Flow::Continue;
        }
        let authenticity = tx.authenticity;
        match self
            .mta
            .policy
            .check_recipient(self.client(), authenticity, &to.address)
        {
            Ok(recipient) => {
                let dsn = DsnRequest {
                    notify: to.flags & NOTIFY_MASK,
                    orcpt: to.orcpt,
                };
                if let Some(tx) = self.tx.as_mut() {
                    tx.recipients.push((recipient, dsn));
                }
                self.reply(Reply::new(250, "2.1.5", "Recipient OK"));
                Flow::Continue
            }
            Err(refusal) => self.refuse(refusal),
        }
    }
}
