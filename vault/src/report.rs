//! The filing report: what [`crate::Vault::file_message`] did with each attachment of a
//! message, in the form the delivery pipeline records on the message and reports to the
//! recipient and the sender.

use serde::{Deserialize, Serialize};

use mshub_store::FilingOutcome;

use crate::{DocumentId, Rejection};

/// What became of one attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum AttachmentOutcome {
    Filed { documents: Vec<DocumentId> },
    Failed { rejection: Rejection },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentFiling {
    /// The attachment's file name, or a description of it.
    pub name: String,
    pub outcome: AttachmentOutcome,
}

/// What [`Vault::file_message`] did with a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filing {
    /// One entry per attachment the vault looked at (PDF, image, CDA, XDM).
    pub attachments: Vec<AttachmentFiling>,
}

impl Filing {
    pub fn documents(&self) -> Vec<DocumentId> {
        self.attachments
            .iter()
            .flat_map(|a| match &a.outcome {
                AttachmentOutcome::Filed { documents } => documents.clone(),
                AttachmentOutcome::Failed { .. } => Vec::new(),
            })
            .collect()
    }

    pub fn failures(&self) -> impl Iterator<Item = (&str, &Rejection)> {
        self.attachments.iter().filter_map(|a| match &a.outcome {
            AttachmentOutcome::Failed { rejection } => Some((a.name.as_str(), rejection)),
            AttachmentOutcome::Filed { .. } => None,
        })
    }

    /// A French sentence for the recipient and the sender, e.g. "2 documents classés ;
    /// IHE_XDM.ZIP refusé : …".
    pub fn summary(&self) -> String {
        let filed = self.documents().len();
        let mut parts = Vec::new();
        if filed > 0 {
            parts.push(match filed {
                1 => "1 document classé dans le coffre-fort".to_string(),
                n => format!("{n} documents classés dans le coffre-fort"),
            });
        }
        for (name, rejection) in self.failures() {
            parts.push(format!("{name} refusé : {rejection}"));
        }
        parts.join(" ; ")
    }

    /// The outcome to record on the message: refusals win, so that the sender hears of them
    /// (the summary still lists what was filed).
    pub fn outcome(&self) -> FilingOutcome {
        if self.attachments.is_empty() {
            FilingOutcome::NotApplicable
        } else if self.failures().next().is_some() {
            FilingOutcome::Failed {
                reason: self.summary(),
            }
        } else {
            FilingOutcome::Filed {
                summary: self.summary(),
            }
        }
    }
}
