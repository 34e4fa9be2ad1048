use mshub_store::StoreError;

/// Everything the directory can refuse or fail with; the protocol layers map each variant to
/// exactly one reply.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("invalid INS {value:?}: {reason}")]
    InvalidIns { value: String, reason: String },
    #[error("invalid RPPS number {value:?}: {reason}")]
    InvalidRpps { value: String, reason: String },
    #[error("invalid address {value:?}: {reason}")]
    InvalidAddress { value: String, reason: String },
    #[error("invalid domain {value:?}: {reason}")]
    InvalidDomain { value: String, reason: String },
    #[error("invalid birth date {0:?}: expected YYYY-MM-DD")]
    InvalidBirthDate(String),
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("the address {0} is already taken")]
    AddressTaken(String),
    #[error("patient address {address} does not match the INS {ins}: a patient's address is <INS>@{patient_domain}")]
    PatientAddressMismatch {
        address: String,
        ins: String,
        patient_domain: String,
    },
    #[error("the identity does not match the INS {ins}: {reason}")]
    IdentityMismatch { ins: String, reason: String },
    #[error("the domain {0} is not a local domain of this hub")]
    NotLocalDomain(String),
    #[error("no account {0}")]
    NoSuchAccount(String),
    #[error("authentication failed")]
    BadCredentials,
    #[error("account {0} is disabled")]
    Disabled(String),
    #[error("the space of {address} is not open ({})", lifecycle.label())]
    NotOpen {
        address: String,
        lifecycle: crate::Lifecycle,
    },
    #[error("the space of {address} is {}: {action} is not possible", lifecycle.label())]
    WrongState {
        address: String,
        lifecycle: crate::Lifecycle,
        action: &'static str,
    },
    /// The same answer whatever was wrong (unknown INS, birth date, code), so that the public
    /// pages reveal nothing about who has a space.
    #[error("the INS, birth date or activation code is wrong")]
    BadActivationCode,
    #[error("too many failed logins: try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// Too many password hashes were already running or waiting: nothing was checked, the
    /// caller may try again shortly (a temporary failure, not a wrong password).
    #[error("too many logins at once ({0:?}): try again shortly")]
    Busy(crate::hashing::Busy),
    #[error("password too weak: {0}")]
    WeakPassword(&'static str),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::hashing::Busy> for DirectoryError {
    fn from(busy: crate::hashing::Busy) -> Self {
        DirectoryError::Busy(busy)
    }
}

pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;
