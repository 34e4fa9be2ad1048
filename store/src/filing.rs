//! What a filer (the vault, the agenda, the e-prescriptions) did with a delivered message: one
//! type for all of them, recorded on the message by the MTA's filing runner and shown beside
//! it in the web inbox. It lives here, below every crate that files or shows a filing.

use serde::{Deserialize, Serialize};

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
