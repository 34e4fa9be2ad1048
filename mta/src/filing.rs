//! The filing runner: after a copy is durably in a recipient's INBOX, the registered
//! [`Filer`]s (the vault, the agenda, the e-prescriptions, plugged in by the binary) look at
//! it, and what they did is recorded on the message.
//!
//! Invariants:
//! - only authenticated content is filed (DESIGN §4): a sender that logged in, or a peer
//!   operator whose client certificate names the sender's domain. Anything else is delivered
//!   and never reaches a filer; the recipient and the sender see why;
//! - delivery reports (the null sender) are delivered and never filed;
//! - a filer's failure (or panic) is recorded on the message, never loses it;
//! - a copy whose filing did not finish before a stop is filed at the next start, with the
//!   origin recorded in the batch of the copy itself.

use serde::{Deserialize, Serialize};

use mshub_directory::{Account, Address};
use mshub_store::{MailboxId, Store, Tree, Uid};

pub use mshub_store::FilingOutcome;

use crate::delivery::{Delivery, DeliveryReport};
use crate::peer::Authenticity;
use crate::MtaError;

const FILING: Tree = Tree("filing");
/// mailbox ‖ UID → [`Origin`] (JSON): a delivered copy the filers have not finished with.
/// Written in the same atomic batch as the copy, removed with the filers' outcome, resumed at
/// start. (Entries written before origins were recorded hold the bare sender address.)
pub(crate) const FILING_PENDING: Tree = Tree("filing-pending");
/// How long the node that delivered a copy keeps the right to file it. With several nodes on
/// one store, another node resumes the filing only after that (the first may be filing it).
pub(crate) const FILING_LEASE_SECS: i64 = 600;

/// What filers are told when nothing vouches for the sender.
pub const UNAUTHENTICATED_SENDER: &str = "l'expéditeur n'a pas été authentifié (ni identifiant \
     ni certificat de son domaine) : seul un contenu authentifié est classé / the sender was not \
     authenticated; only authenticated content is filed";

/// Who sent a delivered copy, and how the hub knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The envelope sender; `None` for the null sender (a delivery report).
    pub sender: Option<Address>,
    pub authenticity: Authenticity,
}

impl Origin {
    fn decode(raw: &[u8]) -> Origin {
        if let Ok(origin) = serde_json::from_slice(raw) {
            return origin;
        }
        // Written before origins were recorded: nothing says how the sender was known.
        Origin {
            sender: std::str::from_utf8(raw)
                .ok()
                .and_then(|s| Address::try_from(s).ok()),
            authenticity: Authenticity::Unauthenticated,
        }
    }
}

/// One local copy of a delivered message, as filers see it.
pub struct Delivered<'a> {
    pub recipient: &'a Account,
    pub mailbox: MailboxId,
    pub uid: Uid,
    pub message: &'a [u8],
    /// The authenticated sender (filers never see any other): what a filed document's author
    /// is taken from, whatever the document itself declares.
    pub sender: &'a Address,
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

impl Delivery {
    /// Whether some filer may have work in this message.
    pub fn wants_filing(&self, message: &[u8]) -> bool {
        self.filers.iter().any(|f| f.may_apply(message))
    }

    /// The value recorded with a copy that waits for its filers.
    pub(crate) fn pending_value(origin: &Origin) -> Vec<u8> {
        serde_json::to_vec(origin).expect("serialisable")
    }

    /// Runs every filer on every local copy and records their outcomes. Blocking.
    pub fn run_filers(&self, report: &DeliveryReport, origin: &Origin, message: &[u8]) {
        if !self.wants_filing(message) {
            return;
        }
        for (account, mailbox, uid) in &report.local {
            let records = self.file_copy(account, *mailbox, *uid, origin, message);
            if let Err(e) = self.record_filing(*mailbox, *uid, &records) {
                tracing::error!(%mailbox, %uid, error = %e, "could not record filing outcomes");
            }
            let Some(to) = &origin.sender else { continue };
            for r in &records {
                if let FilingOutcome::Failed { reason } = &r.outcome {
                    if let Err(e) =
                        self.report_filing_failure(to, account, &r.filer, reason, message)
                    {
                        tracing::error!(error = %e, "could not send a filing report");
                    }
                }
            }
        }
    }

    fn file_copy(
        &self,
        account: &Account,
        mailbox: MailboxId,
        uid: Uid,
        origin: &Origin,
        message: &[u8],
    ) -> Vec<FilingRecord> {
        let applicable = self.filers.iter().filter(|f| f.may_apply(message));
        let sender = match (&origin.sender, origin.authenticity.is_authenticated()) {
            // A delivery report: delivered, never filed.
            (None, _) => return Vec::new(),
            (Some(_), false) => {
                tracing::info!(%mailbox, %uid, "not filed: unauthenticated sender");
                return counted(
                    applicable
                        .map(|f| FilingRecord {
                            filer: f.name().to_string(),
                            outcome: FilingOutcome::Failed {
                                reason: UNAUTHENTICATED_SENDER.into(),
                            },
                        })
                        .collect(),
                );
            }
            (Some(sender), true) => sender,
        };
        let delivered = Delivered {
            recipient: account,
            mailbox,
            uid,
            message,
            sender,
        };
        counted(
            applicable
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
                .collect(),
        )
    }

    /// Runs the filers on copies delivered before a stop that came before their filing
    /// finished, except those another node delivered less than [`FILING_LEASE_SECS`] ago (it
    /// may be filing them now). Blocking; called when the MTA starts.
    pub fn resume_filings(&self) -> Result<usize, MtaError> {
        let now = mshub_store::now();
        let pending = self.store.kv().scan(FILING_PENDING, &[], None, None)?;
        let mut resumed = 0;
        for (key, origin) in pending {
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
            let report = DeliveryReport {
                id: format!("{mailbox}.{uid}"),
                local: vec![(account, mailbox, uid)],
                queued: None,
            };
            self.run_filers(&report, &Origin::decode(&origin), &message);
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
pub(crate) fn filing_lease(mailbox: MailboxId, uid: Uid) -> String {
    format!("filing:{mailbox}:{uid}")
}

pub(crate) fn filing_key(mailbox: MailboxId, uid: Uid) -> Vec<u8> {
    let mut k = mailbox.0.to_be_bytes().to_vec();
    k.extend_from_slice(&uid.get().to_be_bytes());
    k
}

/// Filings by filer (vault, agenda, prescription) and result.
static FILINGS: mshub_metrics::Family = mshub_metrics::Family::counter(
    "mshub_filings_total",
    "Attachments and invitations filed from delivered mail, by filer and result.",
    &["filer", "result"],
);

fn counted(records: Vec<FilingRecord>) -> Vec<FilingRecord> {
    for r in &records {
        let result = match r.outcome {
            FilingOutcome::NotApplicable => continue,
            FilingOutcome::Filed { .. } => "filed",
            FilingOutcome::Failed { .. } => "failed",
        };
        FILINGS.inc(&[&r.filer, result]);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_written_before_they_were_recorded_are_unauthenticated() {
        let legacy = Origin::decode(b"labo@hopital.example");
        assert_eq!(legacy.authenticity, Authenticity::Unauthenticated);
        assert_eq!(legacy.sender.unwrap().as_str(), "labo@hopital.example");
        let now = Origin {
            sender: None,
            authenticity: Authenticity::PeerCertificate,
        };
        assert_eq!(Origin::decode(&Delivery::pending_value(&now)), now);
    }
}
