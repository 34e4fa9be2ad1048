//! The filers the delivery pipeline runs after a message is in a recipient's INBOX
//! (DESIGN §3): the MTA defines the trait and knows no filer; the binary plugs them in.

use std::sync::Arc;

use mshub_agenda::Agenda;
use mshub_mta::{Delivered, Filer, FilingOutcome};
use mshub_vault::{FilingStatus, Vault};

use crate::hub::Hub;

/// Attachments to a patient (IHE XDM, CDA, PDF, images) into the patient's document vault.
struct VaultFiler(Vault);

impl Filer for VaultFiler {
    fn name(&self) -> &'static str {
        "vault"
    }

    fn may_apply(&self, message: &[u8]) -> bool {
        mshub_vault::may_carry_documents(message)
    }

    fn file(&self, d: &Delivered<'_>) -> FilingOutcome {
        match self
            .0
            .file_message(d.recipient, d.sender, d.message)
            .outcome()
        {
            FilingStatus::NotApplicable => FilingOutcome::NotApplicable,
            FilingStatus::Filed { summary } => FilingOutcome::Filed { summary },
            FilingStatus::Failed { reason } => FilingOutcome::Failed { reason },
        }
    }
}

/// Invitations (text/calendar, .ics) to a patient into the patient's agenda.
struct AgendaFiler(Agenda);

impl Filer for AgendaFiler {
    fn name(&self) -> &'static str {
        "agenda"
    }

    fn may_apply(&self, message: &[u8]) -> bool {
        mshub_agenda::may_carry_invitation(message)
    }

    fn file(&self, d: &Delivered<'_>) -> FilingOutcome {
        match self
            .0
            .file_message(d.recipient, d.sender, d.message)
            .outcome()
        {
            mshub_agenda::FilingStatus::NotApplicable => FilingOutcome::NotApplicable,
            mshub_agenda::FilingStatus::Filed { summary } => FilingOutcome::Filed { summary },
            mshub_agenda::FilingStatus::Failed { reason } => FilingOutcome::Failed { reason },
        }
    }
}

/// Every filer of the hub, in the order they run.
pub fn filers(hub: &Hub) -> Vec<Arc<dyn Filer>> {
    vec![
        Arc::new(VaultFiler(Vault::new(
            hub.store.clone(),
            hub.directory.clone(),
        ))),
        Arc::new(AgendaFiler(Agenda::with_limits(
            hub.store.clone(),
            hub.directory.clone(),
            (&hub.config.agenda).into(),
        ))),
    ]
}
