//! Delivery of an accepted message: into each local recipient's INBOX, into the outbound queue
//! for remote recipients, then through the registered filers.
//!
//! Invariants: [`Delivery::deliver`] returns `Ok` only when every local copy and the queue entry
//! are durable, which is what lets the session answer `250`; filers run afterwards and their
//! failures are recorded on the message, never lose it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use mshub_directory::{Account, Address, Directory};
use mshub_store::{MailboxId, SpecialUse, Store, Tree, Uid};

use crate::conversation::Conversations;
use crate::dsn;
use crate::policy::{MessageHeaders, Recipient};
use crate::queue::Queue;
use crate::MtaError;

const FILING: Tree = Tree("filing");
/// mailbox ‖ UID → sender address: a delivered copy the filers have not finished with. Written
/// in the same atomic batch as the copy, removed with the filers' outcome, resumed at start.
const FILING_PENDING: Tree = Tree("filing-pending");
/// How long the node that delivered a copy keeps the right to file it. With several nodes on
/// one store, another node resumes the filing only after that (the first may be filing it).
const FILING_LEASE_SECS: i64 = 600;

/// DSN requests of one recipient (RFC 3461 §4.1, §4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsnRequest {
    /// NOTIFY flags as smtp-proto encodes them (SUCCESS, FAILURE, DELAY, NEVER).
    pub notify: u64,
    /// ORCPT, as given.
    pub orcpt: Option<String>,
}

/// The envelope of an accepted transaction.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `None`: the null reverse-path `<>`.
    pub from: Option<Address>,
    pub recipients: Vec<(Recipient, DsnRequest)>,
    /// RFC 3461 ENVID.
    pub env_id: Option<String>,
    /// RFC 3461 RET=FULL (else headers only).
    pub ret_full: bool,
    /// The authenticated sender, if any.
    pub sender_account: Option<Account>,
}

/// One local copy of a delivered message, as filers see it.
pub struct Delivered<'a> {
    pub recipient: &'a Account,
    pub mailbox: MailboxId,
    pub uid: Uid,
    pub message: &'a [u8],
    pub sender: Option<&'a Address>,
}

/// What a filer did with a delivered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum FilingOutcome {
    /// Nothing in the message is for this filer.
    NotApplicable,
    /// Filed; the summary is shown to the recipient (e.g. "2 documents added").
    Filed { summary: String },
    /// The filer could not file what it found; the reason is shown to the recipient and sender.
    Failed { reason: String },
}

/// A consumer of delivered messages (the vault, the agenda), registered by the binary.
pub trait Filer: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// A cheap look at the raw message: `false` when there is certainly nothing to file (e.g.
    /// plain text for the vault), so most mail costs no filing work at all.
    fn may_apply(&self, _message: &[u8]) -> bool {
        true
    }
    fn file(&self, delivered: &Delivered<'_>) -> FilingOutcome;
}

/// A filer's outcome as recorded on the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingRecord {
    pub filer: String,
    #[serde(flatten)]
    pub outcome: FilingOutcome,
}

/// What became of an accepted message.
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    /// An id for the `250` reply and the logs.
    pub id: String,
    pub local: Vec<(Account, MailboxId, Uid)>,
    pub queued: Option<u64>,
}

pub struct Delivery {
    hostname: String,
    store: Arc<Store>,
    directory: Arc<Directory>,
    queue: Arc<Queue>,
    filers: Vec<Arc<dyn Filer>>,
    /// This process among the nodes sharing the store (random).
    node: String,
}

impl Delivery {
    pub fn new(
        hostname: String,
        store: Arc<Store>,
        directory: Arc<Directory>,
        queue: Arc<Queue>,
        filers: Vec<Arc<dyn Filer>>,
    ) -> Self {
        Self {
            hostname,
            store,
            directory,
            queue,
            filers,
            node: mshub_store::BlobId::random().to_string(),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Stores the message for every recipient, durably. Blocking: call it off the async
    /// runtime's worker threads.
    pub fn deliver(
        &self,
        envelope: &Envelope,
        headers: &MessageHeaders,
        message: &[u8],
    ) -> Result<DeliveryReport, MtaError> {
        let now = mshub_store::now();
        // A message from a non-patient to a patient opens (or continues) a conversation the
        // patient may answer: recorded in the batch of the patient's copy.
        let correspondents = self.correspondents(envelope, headers);
        let has_filers = self.wants_filing(message);
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for (recipient, dsn) in &envelope.recipients {
            match recipient {
                Recipient::Local(account) => {
                    if local
                        .iter()
                        .any(|(a, _, _): &(Account, _, _)| a.id == account.id)
                    {
                        continue; // the same mailbox named twice gets one copy
                    }
                    let inbox = self.store.special_mailbox(account.id, SpecialUse::Inbox)?;
                    let sender = envelope
                        .from
                        .as_ref()
                        .map(|a| a.as_str().as_bytes().to_vec())
                        .unwrap_or_default();
                    let answers: &[Address] = if account.kind.is_patient() {
                        &correspondents
                    } else {
                        &[]
                    };
                    let meta = self.store.append_with(
                        inbox.id,
                        message,
                        Default::default(),
                        now,
                        &|meta, batch| {
                            if has_filers {
                                batch.put(
                                    FILING_PENDING,
                                    filing_key(inbox.id, meta.uid),
                                    sender.clone(),
                                );
                                Store::lease_in(
                                    batch,
                                    &filing_lease(inbox.id, meta.uid),
                                    &self.node,
                                    now + FILING_LEASE_SECS,
                                );
                            }
                            for c in answers {
                                Conversations::record_in(
                                    batch,
                                    account.id,
                                    c,
                                    headers.message_id.as_deref(),
                                    now,
                                );
                            }
                        },
                    )?;
                    local.push((account.clone(), inbox.id, meta.uid));
                }
                Recipient::Remote { address, .. } => remote.push((address.clone(), dsn.clone())),
            }
        }
        let queued = if remote.is_empty() {
            None
        } else {
            Some(self.queue.enqueue(
                envelope.from.as_ref(),
                envelope.env_id.clone(),
                envelope.ret_full,
                remote,
                message,
            )?)
        };
        if let Err(e) = self.notify_success(envelope, message) {
            // The message is stored: a missing notification must not fail its delivery.
            tracing::error!(error = %e, "could not return a delivery notification");
        }
        let id = match (local.first(), queued) {
            (Some((_, mailbox, uid)), _) => format!("{mailbox}.{uid}"),
            (None, Some(q)) => format!("Q{q}"),
            (None, None) => "none".into(),
        };
        Ok(DeliveryReport { id, local, queued })
    }

    /// RFC 3461 NOTIFY=SUCCESS on local recipients: a "delivered" DSN to the sender.
    fn notify_success(&self, envelope: &Envelope, message: &[u8]) -> Result<(), MtaError> {
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
        let postmaster =
            Address::try_from(format!("postmaster@{}", self.directory.hub_domain()).as_str())?;
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

    /// Whom a patient receiving this message may answer (DESIGN §4): the envelope sender and
    /// the header From: addresses on its domain (or checked at submission); nobody when the
    /// sender is a patient.
    fn correspondents(&self, envelope: &Envelope, headers: &MessageHeaders) -> Vec<Address> {
        let Some(from) = &envelope.from else {
            return Vec::new();
        };
        if envelope
            .sender_account
            .as_ref()
            .is_some_and(|a| a.kind.is_patient())
            || from.domain() == self.directory.patient_domain()
        {
            return Vec::new();
        }
        // The header From: is whom a patient's client answers; it counts when it is on the
        // envelope sender's domain (or was checked at submission).
        let mut correspondents = vec![from.clone()];
        for h in &headers.from {
            if let Ok(a) = Address::try_from(h.as_str()) {
                if (a.domain() == from.domain() || envelope.sender_account.is_some())
                    && !correspondents.contains(&a)
                {
                    correspondents.push(a);
                }
            }
        }
        correspondents
    }

    /// Whether some filer may have work in this message.
    pub fn wants_filing(&self, message: &[u8]) -> bool {
        self.filers.iter().any(|f| f.may_apply(message))
    }

    /// Runs every filer on every local copy and records their outcomes. Blocking.
    pub fn run_filers(&self, report: &DeliveryReport, sender: Option<&Address>, message: &[u8]) {
        if !self.wants_filing(message) {
            return;
        }
        for (account, mailbox, uid) in &report.local {
            let delivered = Delivered {
                recipient: account,
                mailbox: *mailbox,
                uid: *uid,
                message,
                sender,
            };
            let records: Vec<FilingRecord> = self
                .filers
                .iter()
                .filter(|f| f.may_apply(message))
                .map(|f| {
                    // A panicking filer is a failed filing, not a lost message or a dead server.
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        f.file(&delivered)
                    }))
                    .unwrap_or_else(|_| FilingOutcome::Failed {
                        reason: format!("{} failed unexpectedly", f.name()),
                    });
                    FilingRecord {
                        filer: f.name().to_string(),
                        outcome,
                    }
                })
                .filter(|r| r.outcome != FilingOutcome::NotApplicable)
                .collect();
            if let Err(e) = self.record_filing(*mailbox, *uid, &records) {
                tracing::error!(%mailbox, %uid, error = %e, "could not record filing outcomes");
            }
            for r in &records {
                if let (FilingOutcome::Failed { reason }, Some(to)) = (&r.outcome, sender) {
                    if let Err(e) =
                        self.report_filing_failure(to, account, &r.filer, reason, message)
                    {
                        tracing::error!(error = %e, "could not send a filing report");
                    }
                }
            }
        }
    }

    /// Tells the sender what could not be filed (the message itself was delivered).
    fn report_filing_failure(
        &self,
        to: &Address,
        recipient: &Account,
        filer: &str,
        reason: &str,
        message: &[u8],
    ) -> Result<(), MtaError> {
        let postmaster =
            Address::try_from(format!("postmaster@{}", self.directory.hub_domain()).as_str())?;
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

    /// Runs the filers on copies delivered before a stop that came before their filing
    /// finished, except those another node delivered less than [`FILING_LEASE_SECS`] ago (it
    /// may be filing them now). Blocking; called when the MTA starts.
    pub fn resume_filings(&self) -> Result<usize, MtaError> {
        let now = mshub_store::now();
        let pending = self.store.kv().scan(FILING_PENDING, &[], None, None)?;
        let mut resumed = 0;
        for (key, sender) in pending {
            let (Some(mailbox), Some(uid)) = (
                key.get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(|b| MailboxId(u64::from_be_bytes(b))),
                key.get(8..12)
                    .and_then(|b| b.try_into().ok())
                    .and_then(|b| Uid::try_from(u32::from_be_bytes(b)).ok()),
            ) else {
                continue;
            };
            if !self.store.lease(
                &filing_lease(mailbox, uid),
                &self.node,
                now,
                FILING_LEASE_SECS as u64,
            )? {
                continue;
            }
            let copy = self.store.mailbox_by_id(mailbox)?.and_then(|mb| {
                let account = self.directory.account(mb.account).ok()??;
                let message = self.store.read_message(mailbox, uid).ok()?;
                Some((account, message))
            });
            let Some((account, message)) = copy else {
                // The copy is gone (expunged, account removed): nothing left to file.
                let mut batch = mshub_store::Batch::new();
                batch.remove(FILING_PENDING, key);
                Store::release_in(&mut batch, &filing_lease(mailbox, uid));
                let _ = self.store.kv().commit(&batch)?;
                continue;
            };
            let sender = std::str::from_utf8(&sender)
                .ok()
                .and_then(|s| Address::try_from(s).ok());
            let report = DeliveryReport {
                id: format!("{mailbox}.{uid}"),
                local: vec![(account, mailbox, uid)],
                queued: None,
            };
            self.run_filers(&report, sender.as_ref(), &message);
            resumed += 1;
        }
        if resumed > 0 {
            tracing::info!(resumed, "filings resumed after a stop");
        }
        Ok(resumed)
    }

    /// Records the filers' outcomes (if any says more than "not applicable") and clears the
    /// copy's pending marker, in one batch.
    fn record_filing(
        &self,
        mailbox: MailboxId,
        uid: Uid,
        records: &[FilingRecord],
    ) -> Result<(), MtaError> {
        let mut batch = mshub_store::Batch::new();
        if !records.is_empty() {
            batch.put(
                FILING,
                filing_key(mailbox, uid),
                serde_json::to_vec(records).expect("serialisable"),
            );
        }
        batch.remove(FILING_PENDING, filing_key(mailbox, uid));
        Store::release_in(&mut batch, &filing_lease(mailbox, uid));
        if records.is_empty() {
            // Nothing to keep: losing this removal in a crash only re-runs the filers on the
            // message at the next start, which they answer the same way. No flush to wait for.
            let _ = self.store.kv().apply(&batch)?;
        } else {
            let _ = self.store.kv().commit(&batch)?;
        }
        Ok(())
    }

    /// What the filers did with a message (shown beside it in the webmail).
    pub fn filing_outcomes(
        &self,
        mailbox: MailboxId,
        uid: Uid,
    ) -> Result<Vec<FilingRecord>, MtaError> {
        Ok(self
            .store
            .kv()
            .get(FILING, &filing_key(mailbox, uid))?
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .unwrap_or_default())
    }
}

/// The name of the lease on filing a delivered copy.
fn filing_lease(mailbox: MailboxId, uid: Uid) -> String {
    format!("filing:{mailbox}:{uid}")
}

fn filing_key(mailbox: MailboxId, uid: Uid) -> Vec<u8> {
    let mut k = mailbox.0.to_be_bytes().to_vec();
    k.extend_from_slice(&uid.get().to_be_bytes());
    k
}
