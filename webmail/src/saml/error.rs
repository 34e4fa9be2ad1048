//! Why a SAML login was refused, in words a patient can read.

use thiserror::Error;

/// One variant per reason to refuse a login or to refuse the configuration. The messages are
/// shown to the patient as they are: no XML, no identifiers, no INS.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SamlError {
    // --- configuration (operator) ---
    /// The IdP metadata file could not be read or parsed.
    #[error("les métadonnées du fournisseur d'identité sont illisibles : {0}")]
    IdpMetadata(String),
    /// The IdP metadata has no certificate to check its signatures: without one, samael would
    /// accept responses without checking any signature, so we refuse to start.
    #[error("les métadonnées du fournisseur d'identité ne donnent aucun certificat de signature")]
    IdpNoSigningCertificate,
    /// The IdP metadata has no `SingleSignOnService` with the HTTP-Redirect binding.
    #[error("le fournisseur d'identité n'offre pas de connexion par redirection (HTTP-Redirect)")]
    IdpNoRedirectSso,
    /// The `[webmail.saml]` section is inconsistent (e.g. an empty entity id).
    #[error("la configuration SAML est invalide : {0}")]
    Config(String),

    // --- login request ---
    /// The AuthnRequest could not be built or encoded.
    #[error("la demande de connexion n'a pas pu être préparée")]
    Request,
    /// SAML Bindings §3.4.3: RelayState must not exceed 80 bytes.
    #[error("l'adresse de retour après connexion est trop longue")]
    RelayStateTooLong,

    // --- response ---
    /// Not base64, not UTF-8, not a SAML Response, too large, or carrying a DTD.
    #[error("la réponse du fournisseur d'identité est illisible")]
    Unreadable,
    /// Neither the Response nor its Assertion carries an XML signature.
    #[error("la réponse du fournisseur d'identité n'est pas signée")]
    NotSigned,
    /// A signature is there but does not verify with the IdP's certificate from its metadata
    /// (tampered response, another signer, or a refused algorithm such as SHA-1).
    #[error("la signature de la réponse du fournisseur d'identité n'est pas valide")]
    BadSignature,
    /// The IdP answered with a StatusCode other than Success.
    #[error("le fournisseur d'identité n'a pas pu vous authentifier")]
    IdpRefused,
    /// The Response's Destination is not this hub's ACS URL.
    #[error("cette réponse de connexion était destinée à une autre adresse")]
    WrongDestination,
    /// The Issuer is not the IdP named in the configured metadata.
    #[error("cette réponse ne vient pas du fournisseur d'identité attendu")]
    WrongIssuer,
    /// The Assertion's AudienceRestriction does not name this hub.
    #[error("cette réponse de connexion était destinée à un autre service")]
    WrongAudience,
    /// The bearer SubjectConfirmationData's Recipient is not this hub's ACS URL.
    #[error("cette réponse de connexion était destinée à un autre destinataire")]
    WrongRecipient,
    /// InResponseTo names no login that this browser started (or none at all).
    #[error("cette réponse ne correspond à aucune demande de connexion en cours ; recommencez la connexion")]
    UnknownRequest,
    /// NotBefore (or IssueInstant) lies in the future beyond the allowed clock skew.
    #[error("la réponse du fournisseur d'identité n'est pas encore valable ; vérifiez l'heure de votre appareil et recommencez")]
    NotYetValid,
    /// NotOnOrAfter (or the response's age) is past.
    #[error("la réponse du fournisseur d'identité a expiré ; recommencez la connexion")]
    Expired,
    /// This assertion, or another answer to the same request, was already used.
    #[error("cette réponse de connexion a déjà été utilisée ; recommencez la connexion")]
    Replayed,
    /// The assertion lacks what Web Browser SSO requires (bearer confirmation, AuthnStatement,
    /// NameID, or the AudienceRestriction itself).
    #[error("la réponse du fournisseur d'identité est incomplète")]
    Incomplete,
    /// Encrypted assertions: this hub publishes no encryption key, so it cannot read them.
    #[error("la réponse du fournisseur d'identité est chiffrée et ne peut pas être lue ici")]
    Encrypted,
    /// The identity attribute carries several different values.
    #[error("le fournisseur d'identité a transmis plusieurs identifiants de santé différents")]
    AmbiguousIns,
    /// The identity attribute is not a valid INS (15 characters with a correct key).
    #[error("l'identifiant national de santé (INS) transmis est invalide")]
    InvalidIns,
    /// Too many logins are in flight to remember them all; refusing is safer than forgetting.
    #[error("trop de connexions en cours ; réessayez dans quelques minutes")]
    Busy,
}

impl From<samael::service_provider::Error> for SamlError {
    /// Maps samael's own refusals (it checks with the system clock) to ours.
    fn from(e: samael::service_provider::Error) -> Self {
        use samael::service_provider::Error as E;
        match e {
            E::FailedToValidateSignature => Self::BadSignature,
            E::DestinationValidationError { .. } => Self::WrongDestination,
            E::AssertionExpired { .. }
            | E::ResponseExpired { .. }
            | E::AssertionConditionExpired { .. }
            | E::AssertionSubjectConfirmationExpired { .. } => Self::Expired,
            E::AssertionConditionExpiredBefore { .. }
            | E::AssertionSubjectConfirmationExpiredBefore { .. } => Self::NotYetValid,
            E::AssertionIssuerMismatch { .. } | E::ResponseIssuerMismatch { .. } => {
                Self::WrongIssuer
            }
            E::AssertionConditionAudienceRestrictionFailed { .. } => Self::WrongAudience,
            E::AssertionRecipientMismatch { .. } => Self::WrongRecipient,
            E::AssertionInResponseToInvalid { .. } | E::ResponseInResponseToInvalid { .. } => {
                Self::UnknownRequest
            }
            E::ResponseBadStatusCode { .. } => Self::IdpRefused,
            E::AssertionBearerSubjectConfirmationMissing
            | E::AssertionSubjectConfirmationMissing => Self::Incomplete,
            E::EncryptedAssertionsNotYetSupported
            | E::MissingPrivateKeySP
            | E::MissingEncryptedKeyInfo
            | E::MissingEncryptedValueInfo
            | E::EncryptedAssertionKeyMethodUnsupported { .. }
            | E::EncryptedAssertionValueMethodUnsupported { .. }
            | E::EncryptedAssertionInvalid
            | E::FailedToDecryptAssertion => Self::Encrypted,
            _ => Self::Unreadable,
        }
    }
}
