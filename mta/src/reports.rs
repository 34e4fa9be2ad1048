//! Delivery reports the hub itself writes (RFC 3464): "delivered" when a sender asked for it
//! (NOTIFY=SUCCESS), and the notice that an attachment could not be filed. Each goes back to
//! the sender: into its INBOX when it is local, else through the outbound queue with the null
//! sender.

use mshub_directory::{Account, Address};
use mshub_store::SpecialUse;

use crate::delivery::{Delivery, Envelope};
use crate::dsn::{self, DsnRequest};
use crate::policy::{MessageHeaders, Recipient};
use crate::MtaError;

impl Delivery {
    /// RFC 3461 NOTIFY=SUCCESS on local recipients: a "delivered" DSN to the sender.
    pub(crate) fn notify_success(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), MtaError> {
        let Some(to) = &envelope.from else {
            return Ok(());
        };
        let delivered: Vec<dsn::DsnRecipient> = envelope
            .recipients
            .iter()
            .filter(|(r, d)| {
                matches!(r, Recipient::Local(_))
                    && d.notify & smtp_proto::RCPT_NOTIFY_SUCCESS != 0
                    && d.notify & smtp_proto::RCPT_NOTIFY_NEVER == 0
            })
            .map(|(r, d)| dsn::DsnRecipient {
                address: r.address().clone(),
                orcpt: d.orcpt.clone(),
                action: dsn::Action::Delivered,
                status: "2.0.0".into(),
                diagnostic: "250 2.0.0 delivered to the recipient's mailbox".into(),
            })
            .collect();
        if delivered.is_empty() {
            return Ok(());
        }
        let bytes = self.report(
            to,
            envelope.env_id.as_deref(),
            mshub_store::now(),
            &delivered,
            message,
            envelope.ret_full,
        )?;
        self.return_to_sender(to, &bytes)
    }

    /// A DSN (RFC 3464) from this hub's postmaster.
    pub(crate) fn report(
        &self,
        to: &Address,
        env_id: Option<&str>,
        arrival: i64,
        recipients: &[dsn::DsnRecipient],
        original: &[u8],
        ret_full: bool,
    ) -> Result<Vec<u8>, MtaError> {
        let postmaster = self.postmaster()?;
        Ok(dsn::build(&dsn::Report {
            reporting_mta: &self.hostname,
            postmaster: &postmaster,
            to,
            env_id,
            arrival,
            recipients,
            original,
            ret_full,
        }))
    }

    /// Tells the sender what could not be filed (the message itself was delivered).
    pub(crate) fn report_filing_failure(
        &self,
        to: &Address,
        recipient: &Account,
        filer: &str,
        reason: &str,
        message: &[u8],
    ) -> Result<(), MtaError> {
        let postmaster = self.postmaster()?;
        let headers = MessageHeaders::parse(message);
        let report = dsn::filing_report(&dsn::FilingReport {
            reporting_mta: &self.hostname,
            postmaster: &postmaster,
            to,
            recipient: &recipient.address,
            message_id: headers.message_id.as_deref(),
            filer,
            reason,
        });
        self.return_to_sender(to, &report)
    }

    fn postmaster(&self) -> Result<Address, MtaError> {
        Ok(Address::try_from(
            format!("postmaster@{}", self.directory.hub_domain()).as_str(),
        )?)
    }

    /// Delivers a DSN to the sender of the original: into its INBOX when local, else queued
    /// with the null sender and NOTIFY=NEVER (RFC 3461 §6.2: a DSN never causes another).
    pub(crate) fn return_to_sender(&self, to: &Address, dsn: &[u8]) -> Result<(), MtaError> {
        if self.directory.is_local(&to.domain())? {
            match self.directory.account_by_address(to)? {
                Some(account) => {
                    let inbox = self.store.special_mailbox(account.id, SpecialUse::Inbox)?;
                    self.store
                        .append(inbox.id, dsn, Default::default(), mshub_store::now())?;
                }
                None => tracing::warn!("DSN dropped: the sender no longer exists"),
            }
        } else {
            let never = DsnRequest {
                notify: smtp_proto::RCPT_NOTIFY_NEVER,
                orcpt: None,
            };
            self.queue
                .enqueue(None, None, false, vec![(to.clone(), never)], dsn)?;
        }
        Ok(())
    }
}
