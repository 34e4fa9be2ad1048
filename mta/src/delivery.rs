//! Delivery of an accepted message: into each local recipient's INBOX, into the outbound queue
//! for remote recipients; then the filing runner ([`crate::filing`]) and the hub's own delivery
//! reports ([`crate::reports`]).
//!
//! Invariants: [`Delivery::deliver`] returns `Ok` only when every local copy and the queue entry
//! are durable, which is what lets the session answer `250`; filers run afterwards and their
//! failures are recorded on the message, never lose it.

use std::collections::BTreeSet;
use std::sync::Arc;

use mshub_directory::{Account, Address, Directory};
use mshub_store::{Flag, MailboxId, MessageMeta, SpecialUse, Store, Uid};

use crate::conversation::Conversations;
use crate::dsn::DsnRequest;
use crate::filing::{filing_key, filing_lease, Filer, Origin, FILING_LEASE_SECS, FILING_PENDING};
use crate::peer::Authenticity;
use crate::policy::{MessageHeaders, Recipient};
use crate::queue::Queue;
use crate::MtaError;

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
    /// How the hub knows the envelope sender.
    pub authenticity: Authenticity,
}

impl Envelope {
    /// Who sent it, as the filing runner needs it.
    pub fn origin(&self) -> Origin {
        Origin {
            sender: self.from.clone(),
            authenticity: self.authenticity,
        }
    }
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
    pub(crate) hostname: String,
    pub(crate) store: Arc<Store>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) queue: Arc<Queue>,
    pub(crate) filers: Vec<Arc<dyn Filer>>,
    /// This process among the nodes sharing the store (random).
    pub(crate) node: String,
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
        self.deliver_with_sent(envelope, headers, message, None)
    }

    /// As [`Delivery::deliver`], and a copy (`\Seen`) in `sent`, the sender's Sent mailbox, in
    /// the same atomic write: a refusal means that neither the recipients nor the Sent folder
    /// have it, so that the sender's retry leaves one of each.
    pub fn deliver_with_sent(
        &self,
        envelope: &Envelope,
        headers: &MessageHeaders,
        message: &[u8],
        sent: Option<MailboxId>,
    ) -> Result<DeliveryReport, MtaError> {
        let now = mshub_store::now();
        // A message from a non-patient to a patient opens (or continues) a conversation the
        // patient may answer: recorded in the batch of the patient's copy.
        let correspondents = self.correspondents(envelope, headers);
        let has_filers = self.wants_filing(message);
        // Every local copy in one atomic batch: a failure leaves no recipient with a copy, so
        // that the refusal it becomes (451) is true and a retry doubles nothing.
        let mut copies: Vec<(&Account, MailboxId, &[Address])> = Vec::new();
        let mut remote = Vec::new();
        for (recipient, dsn) in &envelope.recipients {
            match recipient {
                Recipient::Local(account) => {
                    if copies.iter().any(|(a, _, _)| a.id == account.id) {
                        continue; // the same mailbox named twice gets one copy
                    }
                    let inbox = self.store.special_mailbox(account.id, SpecialUse::Inbox)?;
                    let answers: &[Address] = if account.kind.is_patient() {
                        &correspondents
                    } else {
                        &[]
                    };
                    copies.push((account, inbox.id, answers));
                }
                Recipient::Remote { address, .. } => remote.push((address.clone(), dsn.clone())),
            }
        }
        // The queue entry for the remote recipients rides in the batch of the local copies:
        // all or none, so that a 451 is true for every recipient.
        let entry = if remote.is_empty() {
            None
        } else {
            Some(self.queue.entry_in_batch(
                envelope.from.as_ref(),
                envelope.env_id.clone(),
                envelope.ret_full,
                remote,
                message,
            )?)
        };
        let origin = Self::pending_value(&envelope.origin());
        let extra = |i: usize, meta: &MessageMeta, batch: &mut mshub_store::Batch| {
            if i == 0 {
                if let Some((_, queued)) = &entry {
                    batch.writes.extend(queued.writes.iter().cloned());
                }
            }
            // Past the recipients' copies: the sender's Sent copy, with nothing of its own.
            let Some(&(account, inbox, answers)) = copies.get(i) else {
                return;
            };
            if has_filers {
                batch.put(FILING_PENDING, filing_key(inbox, meta.uid), origin.clone());
                Store::lease_in(
                    batch,
                    &filing_lease(inbox, meta.uid),
                    &self.node,
                    now + FILING_LEASE_SECS,
                );
            }
            for c in answers {
                Conversations::record_in(batch, account.id, c, headers.message_id.as_deref(), now);
            }
        };
        let mut targets: Vec<(MailboxId, BTreeSet<Flag>)> = copies
            .iter()
            .map(|(_, inbox, _)| (*inbox, BTreeSet::new()))
            .collect();
        if let Some(sent) = sent {
            targets.push((sent, BTreeSet::from([Flag::Seen])));
        }
        let stored = match targets.as_slice() {
            // Only remote recipients: the queue entry alone.
            [] => match &entry {
                Some((_, queued)) => self.store.kv().commit(queued).map(|_| Vec::new()),
                None => Ok(Vec::new()),
            },
            // One copy (the common case) under its mailbox's lane.
            [(mailbox, flags)] => self
                .store
                .append_with(*mailbox, message, flags.clone(), now, &|meta, batch| {
                    extra(0, meta, batch)
                })
                .map(|meta| vec![meta]),
            several => self.store.append_copies(several, message, now, &extra),
        };
        let metas = match stored {
            Ok(metas) => metas,
            Err(e) => {
                if let Some((_, queued)) = &entry {
                    self.queue.discard(queued);
                }
                return Err(e.into());
            }
        };
        let local: Vec<(Account, MailboxId, Uid)> = copies
            .iter()
            .zip(&metas)
            .map(|((account, inbox, _), meta)| ((*account).clone(), *inbox, meta.uid))
            .collect();
        let queued = entry.map(|(id, _)| {
            self.queue.wake();
            id
        });
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
}
