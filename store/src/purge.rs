//! Destroying an account's content at the end of a closed space's retention delay: every
//! mailbox and message with its blob (inline or file) and derived data, the records other
//! parts keep under the account's id, and last the account's key pair, so that anything
//! sealed to it that a backup still holds can never be opened again.

use crate::backend::{Batch, Tree};
use crate::mailbox::{modseq_key, name_key, EXPUNGED, MAILBOX, MAILBOX_NAME, MESSAGE};
use crate::{AccountId, BlobId, Result, SealedBlob, Store};

/// What [`Store::purge_account`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub mailboxes: usize,
    pub messages: usize,
    /// Other records (of the trees the caller named).
    pub records: usize,
}

/// Writes per batch: a large mailbox is removed in several atomic steps.
const CHUNK: usize = 1000;

impl Store {
    /// Removes everything of `account`: its mailboxes, messages and their blobs, the entries
    /// of `owned_trees` whose key starts with the account's id, the entries of
    /// `mailbox_trees` whose key starts with one of its mailboxes' ids (records other parts
    /// keep per message), then its key pair. `blobs` are
    /// further blobs of the account that the caller's records referenced (vault documents):
    /// deleted too. Idempotent: a purge interrupted half-way is finished by the next one.
    pub fn purge_account(
        &self,
        account: AccountId,
        owned_trees: &[Tree],
        mailbox_trees: &[Tree],
        blobs: &[BlobId],
    ) -> Result<PurgeReport> {
        let mut report = PurgeReport::default();
        for (_, raw_id) in self.kv.scan(MAILBOX_NAME, &account.to_key(), None, None)? {
            let Ok(bytes) = <[u8; 8]>::try_from(raw_id.as_slice()) else {
                continue;
            };
            let id = crate::MailboxId(u64::from_be_bytes(bytes));
            loop {
                let messages = self
                    .kv
                    .scan(MESSAGE, &id.0.to_be_bytes(), None, Some(CHUNK))?;
                if messages.is_empty() {
                    break;
                }
                let mut batch = Batch::new();
                let mut files = Vec::new();
                for (key, value) in &messages {
                    batch.remove(MESSAGE, key.clone());
                    if let Ok(meta) = serde_json::from_slice::<crate::MessageMeta>(value) {
                        batch.remove(BY_MODSEQ_TREE, modseq_key(id, meta.modseq, meta.uid));
                        SealedBlob::remove_from(meta.blob, &mut batch);
                        files.push(meta.blob);
                    }
                }
                report.messages += messages.len();
                let _ = self.kv.commit(&batch)?;
                self.delete_blob_files(files)?;
            }
            for tree in mailbox_trees {
                self.remove_prefix(*tree, &id.0.to_be_bytes(), &mut report)?;
            }
            let mut batch = Batch::new();
            for (k, _) in self.kv.scan(EXPUNGED, &id.0.to_be_bytes(), None, None)? {
                batch.remove(EXPUNGED, k);
            }
            for (k, _) in self
                .kv
                .scan(BY_MODSEQ_TREE, &id.0.to_be_bytes(), None, None)?
            {
                batch.remove(BY_MODSEQ_TREE, k);
            }
            if let Some(raw) = self.kv.get(MAILBOX, &id.0.to_be_bytes())? {
                if let Ok(m) = serde_json::from_slice::<crate::Mailbox>(&raw) {
                    batch.remove(MAILBOX_NAME, name_key(account, &m.name));
                }
            }
            batch.remove(MAILBOX, id.0.to_be_bytes());
            let _ = self.kv.commit(&batch)?;
            report.mailboxes += 1;
        }
        // Index entries whose mailbox record was already gone (an interrupted purge).
        let mut batch = Batch::new();
        for (k, _) in self.kv.scan(MAILBOX_NAME, &account.to_key(), None, None)? {
            batch.remove(MAILBOX_NAME, k);
        }
        let _ = self.kv.commit(&batch)?;
        for blob in blobs {
            self.delete_blob(*blob)?;
        }
        for tree in owned_trees {
            self.remove_prefix(*tree, &account.to_key(), &mut report)?;
        }
        self.keyring.forget(account)?;
        Ok(report)
    }
}

impl Store {
    fn remove_prefix(&self, tree: Tree, prefix: &[u8], report: &mut PurgeReport) -> Result<()> {
        loop {
            let entries = self.kv.scan(tree, prefix, None, Some(CHUNK))?;
            if entries.is_empty() {
                return Ok(());
            }
            let mut batch = Batch::new();
            for (k, _) in &entries {
                batch.remove(tree, k.clone());
            }
            report.records += entries.len();
            let _ = self.kv.commit(&batch)?;
        }
    }
}

const BY_MODSEQ_TREE: Tree = crate::mailbox::BY_MODSEQ;
