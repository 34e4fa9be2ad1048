use std::path::PathBuf;

/// Everything the store can fail with. Each variant says what a person needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data directory {0} is in use by another mshub process (stop it first)")]
    InUse(PathBuf),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key-value backend error: {0}")]
    Backend(String),
    /// The store was written by a newer mshub: refused before anything is written.
    #[error(
        "the store's records are at format version {found}, newer than this mshub knows \
         ({known}): upgrade mshub, or restore a backup taken before the upgrade"
    )]
    FormatTooNew { found: u32, known: u32 },
    /// A flush to disk failed: the change is not stored, nor visible, and may be tried again.
    #[error("the key-value store could not write to disk, nothing of this change was kept: {0}")]
    NotWritten(String),
    #[error("stored record {what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("the master key does not open this data directory (wrong MSHUB_MASTER_KEY or master_key_file?)")]
    WrongMasterKey,
    #[error("the master key is too short: {0} characters, at least 32 are required")]
    WeakMasterKey(usize),
    #[error("encryption error: {0}")]
    Crypto(String),
    #[error("account {0} has no key in this store")]
    NoAccountKey(crate::AccountId),
    #[error("blob {0} does not exist")]
    NoSuchBlob(crate::BlobId),
    #[error("object storage error while {what}: {reason}")]
    ObjectStorage { what: String, reason: String },
    #[error("mailbox {0:?} does not exist")]
    NoSuchMailbox(String),
    #[error("mailbox {0:?} already exists")]
    MailboxExists(String),
    #[error("invalid mailbox name {name:?}: {reason}")]
    InvalidMailboxName { name: String, reason: &'static str },
    #[error("mailbox {0:?} is a special-use folder and cannot be deleted or renamed")]
    SpecialUseMailbox(String),
    #[error("message UID {uid} does not exist in mailbox {mailbox}")]
    NoSuchMessage { mailbox: crate::MailboxId, uid: u32 },
    #[error("invalid flag {0:?}")]
    InvalidFlag(String),
    #[error("the store was too busy to commit after {0} attempts")]
    Contention(u32),
    #[error("the audit chain is broken at record {seq}: {reason}")]
    AuditBroken { seq: u64, reason: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
