use mshub_store::StoreError;

/// Every refusal of the catalogue, worded for the patient's page or the app developer's log.
/// [`CatalogueError::oauth_error`] gives the OAuth 2.0 error code of each (RFC 6749 §5.2,
/// §4.1.2.1; RFC 6750 §3.1 for bearer tokens).
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    // ----- the signed file -----
    #[error("no referencing authority certificate could be read ({0})")]
    NoAuthority(String),
    #[error("the catalogue is not signed: no OpenPGP signature could be read ({0})")]
    Unsigned(String),
    #[error("the catalogue was signed by key {0}, which is not a referencing authority's")]
    WrongKey(String),
    #[error("the signature does not match the catalogue: the file was modified after signing")]
    Tampered,
    #[error("the signature uses {0}, which is no longer accepted (OpenPGP standard policy)")]
    WeakSignature(String),
    #[error("the catalogue's signature has expired or is not valid yet ({0})")]
    SignatureExpired(String),
    #[error("the referencing authority's key {0} has expired")]
    AuthorityExpired(String),
    #[error("the referencing authority's key {0} is revoked")]
    AuthorityRevoked(String),
    #[error("the referencing authority's key {key} is not valid: {reason}")]
    AuthorityInvalid { key: String, reason: String },
    #[error("the catalogue is out of date: it was valid until {0}")]
    CatalogueExpired(String),
    #[error("the catalogue is older ({new}) than the one in use ({current}): refused")]
    Older { new: String, current: String },
    #[error("the catalogue file is invalid: {0}")]
    InvalidFile(String),
    #[error("no catalogue has been imported yet")]
    NoCatalogue,

    // ----- OAuth -----
    #[error("no referenced application has the id {0:?}")]
    UnknownApp(String),
    #[error("redirect_uri {0:?} is not one of the application's registered addresses")]
    RedirectUri(String),
    #[error("scope {0:?} is unknown")]
    UnknownScope(String),
    #[error("the application is not referenced for the scope {0}")]
    ScopeNotOffered(String),
    #[error("no scope requested")]
    NoScope,
    #[error(
        "code_challenge must be the base64url SHA-256 of the verifier (43 characters, method S256)"
    )]
    BadChallenge,
    #[error(
        "code_verifier must be 43 to 128 characters among A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)"
    )]
    BadVerifier,
    #[error("the authorization code is unknown")]
    UnknownCode,
    #[error("the authorization code has expired")]
    CodeExpired,
    #[error("the authorization code was already used: the tokens it gave are revoked")]
    CodeReused,
    #[error("the authorization code was issued to another application or redirect_uri")]
    CodeMismatch,
    #[error("code_verifier does not match the code_challenge")]
    VerifierMismatch,
    #[error("the patient has withdrawn this application's access")]
    ConsentWithdrawn,
    #[error("the access token is invalid, expired or revoked")]
    InvalidToken,
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("account {0} is not an active patient")]
    NotAPatient(mshub_store::AccountId),
    #[error("this call needs the scope {0}, which the patient did not grant")]
    InsufficientScope(String),

    // ----- measurements -----
    #[error("invalid measurement: {0}")]
    InvalidMeasurement(String),

    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] mshub_directory::DirectoryError),
}

pub type Result<T, E = CatalogueError> = std::result::Result<T, E>;

impl CatalogueError {
    /// The OAuth 2.0 `error` code to answer with (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1).
    /// `server_error` is for failures of the hub itself.
    pub fn oauth_error(&self) -> &'static str {
        use CatalogueError::*;
        match self {
            UnknownApp(_) => "invalid_client",
            RedirectUri(_) | BadChallenge | BadVerifier | NoScope | InvalidMeasurement(_) => {
                "invalid_request"
            }
            UnknownScope(_) | ScopeNotOffered(_) => "invalid_scope",
            UnknownCode | CodeExpired | CodeReused | CodeMismatch | VerifierMismatch
            | ConsentWithdrawn | InvalidRefreshToken | NotAPatient(_) => "invalid_grant",
            InvalidToken => "invalid_token",
            InsufficientScope(_) => "insufficient_scope",
            CatalogueExpired(_) | NoCatalogue => "temporarily_unavailable",
            NoAuthority(_)
            | Unsigned(_)
            | WrongKey(_)
            | Tampered
            | WeakSignature(_)
            | SignatureExpired(_)
            | AuthorityExpired(_)
            | AuthorityRevoked(_)
            | AuthorityInvalid { .. }
            | Older { .. }
            | InvalidFile(_) => "invalid_request",
            Store(_) | Directory(_) => "server_error",
        }
    }

    /// Whether the hub, not the caller, failed (answer 500, log it).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            CatalogueError::Store(_) | CatalogueError::Directory(_)
        )
    }
}
