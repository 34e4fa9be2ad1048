//! The crate's error (something broke) and its refusals (the request is wrong, with a reason a
//! person can act on).

use mshub_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PrescriptionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("prescription signing key: {0}")]
    Key(String),
    #[error("prescription record {id}: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("not a prescription id")]
    BadId,
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = PrescriptionError> = std::result::Result<T, E>;

/// Why a prescription is not issued, shown, or dispensed. Each has a stable [`Refusal::code`]
/// (what the audit chain records) and a French sentence for the person in front of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The structured part is malformed or out of bounds.
    #[error("ordonnance invalide : {0}")]
    Invalid(String),
    /// The sender may not prescribe, or is not the prescriber the structured part names.
    #[error("prescripteur refusé : {0}")]
    Prescriber(String),
    /// The structured part names another patient than the recipient.
    #[error("patient refusé : {0}")]
    Patient(String),
    /// This hub has no signing key: it issues no prescription.
    #[error("les ordonnances sécurisées ne sont pas activées sur ce service")]
    Disabled,
    /// The QR code's signature is not this hub's, or the link is not one the hub made.
    #[error("ordonnance falsifiée : la signature du QR code n'est pas celle de ce service")]
    Forged,
    /// A valid signature over an id this hub has no record of.
    #[error("ordonnance inconnue : aucune ordonnance de ce service ne porte ce numéro")]
    UnknownId,
    /// The record no longer matches what was signed.
    #[error("ordonnance altérée : son contenu ne correspond plus à celui qui a été signé")]
    Altered,
    #[error("ordonnance expirée : elle n'était valable que jusqu'au {valid_until}")]
    Expired { valid_until: String },
    #[error(
        "ordonnance entièrement délivrée : plus rien ne peut être délivré sur cette ordonnance"
    )]
    FullyDispensed,
    /// The page was read before another dispensing was recorded.
    #[error(
        "une autre délivrance a été enregistrée entre-temps (peut-être par une autre pharmacie) : \
         rechargez l'ordonnance et vérifiez ce qui reste à délivrer"
    )]
    Conflict,
    #[error("quantité refusée : {0}")]
    Quantity(String),
    #[error("rien à délivrer : indiquez au moins une quantité")]
    Nothing,
    /// The account is not a pharmacist.
    #[error(
        "réservé aux pharmaciens : seul un pharmacien peut vérifier et délivrer une ordonnance"
    )]
    NotPharmacist,
}

impl Refusal {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Refusal::Invalid(reason.into())
    }

    /// Stable and free of personal data: what the audit chain records.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Invalid(_) => "invalid",
            Refusal::Prescriber(_) => "prescriber",
            Refusal::Patient(_) => "patient",
            Refusal::Disabled => "disabled",
            Refusal::Forged => "forged",
            Refusal::UnknownId => "unknown-id",
            Refusal::Altered => "altered",
            Refusal::Expired { .. } => "expired",
            Refusal::FullyDispensed => "fully-dispensed",
            Refusal::Conflict => "conflict",
            Refusal::Quantity(_) => "quantity",
            Refusal::Nothing => "nothing",
            Refusal::NotPharmacist => "not-pharmacist",
        }
    }
}

/// What a call that may be refused returns: refused with a reason, or failed.
#[derive(Debug, thiserror::Error)]
pub enum Outcome {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Failed(#[from] PrescriptionError),
}

impl From<StoreError> for Outcome {
    fn from(e: StoreError) -> Self {
        Outcome::Failed(e.into())
    }
}
