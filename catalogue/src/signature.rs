//! Verification of the catalogue's detached OpenPGP signature (RFC 9580 §5.2.4, signature of a
//! binary document) against the referencing authorities' certificates.
//!
//! Sequoia's verifier checks the signature and that the signing key was valid *when it signed*
//! (its binding, expiry and revocation at the signature's creation time) and that the signature
//! is alive at `now`. The catalogue asks more: the authority's certificate must still be valid
//! *now* — a key that has since expired or been revoked signs nothing we accept.

use std::time::SystemTime;

use openpgp::cert::prelude::*;
use openpgp::parse::stream::{
    DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationError, VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::types::RevocationStatus;
use openpgp::{Cert, KeyHandle};
use sequoia_openpgp as openpgp;

use crate::{CatalogueError, Result};

const POLICY: &StandardPolicy = &StandardPolicy::new();

/// Reads the authorities' certificates (armored or binary, concatenated).
pub(crate) fn authorities(bytes: &[u8]) -> Result<Vec<Cert>> {
    let certs = CertParser::from_bytes(bytes)
        .map_err(|e| CatalogueError::NoAuthority(e.to_string()))?
        .collect::<openpgp::Result<Vec<Cert>>>()
        .map_err(|e| CatalogueError::NoAuthority(e.to_string()))?;
    if certs.is_empty() {
        return Err(CatalogueError::NoAuthority("no certificate given".into()));
    }
    Ok(certs)
}

/// Checks that `signature` is a good signature of `data` by one of `authorities` at `now`, and
/// returns the fingerprint of the authority's certificate.
pub(crate) fn verify(
    data: &[u8],
    signature: &[u8],
    authorities: Vec<Cert>,
    now: SystemTime,
) -> Result<String> {
    if signature.iter().all(u8::is_ascii_whitespace) {
        return Err(CatalogueError::Unsigned(
            "the signature file is empty".into(),
        ));
    }
    let helper = Helper {
        certs: authorities,
        now,
        outcome: None,
    };
    let mut verifier = DetachedVerifierBuilder::from_bytes(signature)
        .map_err(|e| CatalogueError::Unsigned(e.to_string()))?
        .with_policy(POLICY, Some(now), helper)
        .map_err(|e| CatalogueError::Unsigned(e.to_string()))?;
    let run = verifier.verify_bytes(data);
    match (verifier.into_helper().outcome, run) {
        (Some(outcome), _) => outcome,
        (None, Err(e)) => Err(CatalogueError::Unsigned(e.to_string())),
        (None, Ok(())) => Err(CatalogueError::Unsigned("no signature found".into())),
    }
}

struct Helper {
    certs: Vec<Cert>,
    now: SystemTime,
    outcome: Option<Result<String>>,
}

impl VerificationHelper for Helper {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.certs.clone())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        let mut refusal = None;
        for layer in structure.into_iter() {
            let MessageLayer::SignatureGroup { results } = layer else {
                continue;
            };
            for result in results {
                let verdict = match result {
                    Ok(good) => still_valid(good.ka.cert(), good.ka.key().key_handle(), self.now)
                        .map(|()| good.ka.cert().fingerprint().to_hex()),
                    Err(e) => Err(classify(e, self.now)),
                };
                match verdict {
                    Ok(fingerprint) => {
                        self.outcome = Some(Ok(fingerprint));
                        return Ok(());
                    }
                    Err(e) => {
                        refusal.get_or_insert(e);
                    }
                }
            }
        }
        self.outcome =
            Some(Err(refusal.unwrap_or_else(|| {
                CatalogueError::Unsigned("no signature found".into())
            })));
        Ok(())
    }
}

/// The authority's certificate and signing key, at `now`: not revoked, not expired.
fn still_valid(cert: &Cert, signing_key: KeyHandle, now: SystemTime) -> Result<()> {
    let fpr = cert.fingerprint().to_hex();
    let vc = cert
        .with_policy(POLICY, now)
        .map_err(|e| CatalogueError::AuthorityInvalid {
            key: fpr.clone(),
            reason: e.to_string(),
        })?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return Err(CatalogueError::AuthorityRevoked(fpr));
    }
    if vc.alive().is_err() {
        return Err(CatalogueError::AuthorityExpired(fpr));
    }
    let Some(ka) = vc.keys().key_handle(signing_key).next() else {
        return Err(CatalogueError::AuthorityInvalid {
            key: fpr,
            reason: "the signing key is no longer bound to the certificate".into(),
        });
    };
    if let RevocationStatus::Revoked(_) = ka.revocation_status() {
        return Err(CatalogueError::AuthorityRevoked(fpr));
    }
    if ka.alive().is_err() {
        return Err(CatalogueError::AuthorityExpired(fpr));
    }
    Ok(())
}

fn classify(e: VerificationError<'_>, now: SystemTime) -> CatalogueError {
    match e {
        VerificationError::MissingKey { sig } => CatalogueError::WrongKey(
            sig.get_issuers()
                .first()
                .map(|i| i.to_hex())
                .unwrap_or_else(|| "(unnamed)".into()),
        ),
        VerificationError::UnboundKey { cert, error, .. } => CatalogueError::AuthorityInvalid {
            key: cert.fingerprint().to_hex(),
            reason: error.to_string(),
        },
        VerificationError::BadKey { ka, error, .. } => {
            let fpr = ka.cert().fingerprint().to_hex();
            let revoked = matches!(
                ka.valid_cert().revocation_status(),
                RevocationStatus::Revoked(_)
            ) || matches!(ka.revocation_status(), RevocationStatus::Revoked(_));
            if revoked {
                CatalogueError::AuthorityRevoked(fpr)
            } else if ka.valid_cert().alive().is_err() || ka.alive().is_err() {
                CatalogueError::AuthorityExpired(fpr)
            } else {
                CatalogueError::AuthorityInvalid {
                    key: fpr,
                    reason: error.to_string(),
                }
            }
        }
        VerificationError::BadSignature { sig, error, .. } => {
            match sig.signature_alive(now, None) {
                Err(alive) => CatalogueError::SignatureExpired(alive.to_string()),
                // Alive and made by an authority's valid key, yet not matching: the data (or
                // the signature) was changed.
                Ok(()) => match error.downcast_ref::<openpgp::Error>() {
                    Some(openpgp::Error::PolicyViolation(what, _)) => {
                        CatalogueError::WeakSignature(what.clone())
                    }
                    _ => CatalogueError::Tampered,
                },
            }
        }
        VerificationError::MalformedSignature { error, .. } => {
            CatalogueError::Unsigned(error.to_string())
        }
        VerificationError::UnknownSignature { sig } => {
            CatalogueError::Unsigned(sig.error().to_string())
        }
        // VerificationError is non-exhaustive.
        other => CatalogueError::Unsigned(other.to_string()),
    }
}
