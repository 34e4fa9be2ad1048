//! Wiring of the patient space's lifecycle (see `mshub_directory::lifecycle`): what destroys a
//! space's content across every part of the hub, and the periodic tick that opens pending
//! spaces and destroys closed ones when their delay is over.

use std::sync::Arc;
use std::time::Duration;

use mshub_directory::{DirectoryError, Purger};
use mshub_store::{AccountId, BlobId, Store, Tree};

use crate::hub::Hub;

/// Records the parts keep under the patient's id (key prefix): removed with the space.
const PATIENT_TREES: [Tree; 19] = [
    Tree("conversation"),
    Tree("vault-care"),
    Tree("subscription-name"),
    Tree("vault-patient-document"),
    Tree("vault-filed-message"),
    Tree("vault-patient-settings"),
    Tree("vault-first-access"),
    Tree("vault-profile"),
    Tree("vault-profile-head"),
    Tree("agenda-appointment"),
    Tree("agenda-reminder-of"),
    Tree("agenda-prevention-announced"),
    Tree("agenda-prevention-done"),
    Tree("agenda-profile-vaccinations"),
    Tree("agenda-feed-owner"),
    Tree("catalogue-measurement"),
    Tree("catalogue-consent"),
    Tree("webmail-delegation"),
    Tree("webmail-delegation-received"),
];
/// Records the MTA keeps per delivered message (mailbox id ‖ UID): the filing outcomes.
const MAILBOX_TREES: [Tree; 3] = [
    Tree("filing"),
    Tree("filing-pending"),
    Tree("mailbox-recent"),
];
/// document id → patient id ‖ sealed record (the vault's own layout).
const VAULT_DOCUMENTS: Tree = Tree("vault-document");
const VAULT_BY_PATIENT: Tree = Tree("vault-patient-document");

/// The vault's documents of `patient`: their blobs (original and rendering), and removes
/// their records. Read before the key goes, since the records are sealed to it.
fn vault_blobs(store: &Store, patient: AccountId) -> mshub_store::Result<Vec<BlobId>> {
    let mut blobs = Vec::new();
    let mut batch = mshub_store::Batch::new();
    for (key, _) in store
        .kv()
        .scan(VAULT_BY_PATIENT, &patient.to_key(), None, None)?
    {
        let Some(doc) = key.get(8..16) else { continue };
        if let Some(raw) = store.kv().get(VAULT_DOCUMENTS, doc)? {
            if let Some(sealed) = raw.get(8..) {
                if let Ok(plain) = store.open_sealed(patient, sealed) {
                    if let Ok(record) = serde_json::from_slice::<serde_json::Value>(&plain) {
                        for field in ["blob", "rendering"] {
                            if let Some(id) = record.get(field).and_then(|v| v.as_str()) {
                                if let Ok(id) = BlobId::try_from(id) {
                                    blobs.push(id);
                                }
                            }
                        }
                    }
                }
            }
        }
        batch.remove(VAULT_DOCUMENTS, doc.to_vec());
    }
    let _ = store.kv().commit(&batch)?;
    Ok(blobs)
}

/// Destroys everything of an account: vault documents and their files, the agenda's,
/// catalogue's and delegation records, mailboxes, messages, blobs, and last its key.
pub fn purger(store: Arc<Store>) -> Purger {
    Arc::new(move |account: AccountId| -> Result<(), DirectoryError> {
        let blobs = vault_blobs(&store, account)?;
        let prescriptions = mshub_prescription::Prescriptions::purge_patient(&store, account)
            .map_err(|e| {
                DirectoryError::Store(mshub_store::StoreError::Backend(format!(
                    "prescriptions: {e}"
                )))
            })?;
        let report = store.purge_account(account, &PATIENT_TREES, &MAILBOX_TREES, &blobs)?;
        tracing::info!(
            %account,
            mailboxes = report.mailboxes,
            messages = report.messages,
            records = report.records,
            documents = blobs.len(),
            prescriptions,
            "space content destroyed"
        );
        Ok(())
    })
}

/// How often the lifecycle looks for deadlines.
pub const TICK_PERIOD: Duration = Duration::from_secs(60);
/// Spaces handled per tick at most (the next tick takes the rest).
pub const TICK_LIMIT: usize = 10_000;

/// Runs [`mshub_directory::Directory::tick`] every [`TICK_PERIOD`] until stopped; at once
/// again while a tick had more to do than [`TICK_LIMIT`] (a whole roster reaching its
/// deadline on the same day).
pub async fn run(hub: Hub, mut stopped: tokio::sync::watch::Receiver<bool>) {
    loop {
        let directory = hub.directory.clone();
        let done =
            tokio::task::spawn_blocking(move || directory.tick(mshub_store::now(), TICK_LIMIT))
                .await;
        let mut more = false;
        match done {
            Ok(Ok(r)) if r.opened.is_empty() && r.destroyed.is_empty() => {}
            Ok(Ok(r)) => {
                more = r.opened.len() + r.destroyed.len() >= TICK_LIMIT;
                tracing::info!(
                    opened = r.opened.len(),
                    destroyed = r.destroyed.len(),
                    "space lifecycle"
                );
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "space lifecycle"),
            Err(e) => tracing::warn!(error = %e, "space lifecycle task"),
        }
        if *stopped.borrow() {
            return;
        }
        if more {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK_PERIOD) => {}
            _ = stopped.changed() => return,
        }
    }
}
