//! Who a relay client is, as the hub can prove it (DESIGN §4 "Sender authenticity", "Only
//! authenticated content is filed"): an account that logged in, or a peer operator whose client
//! certificate (verified against the trust space's CA during the handshake) names the sender's
//! domain. A certificate proves only the names it carries: any certificate of the CA is not a
//! pass for every domain of the trust space.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};

use mshub_directory::{DomainEntry, DomainRole};
use mshub_store::AccountId;

/// The end-entity certificate a client presented and the handshake verified.
#[derive(Debug, Clone)]
pub struct PeerCertificate(Arc<CertificateDer<'static>>);

impl PeerCertificate {
    pub fn new(der: CertificateDer<'static>) -> Self {
        Self(Arc::new(der))
    }

    /// Whether it may speak for `entry`'s domain: the domain is among its names, or the
    /// operator configured one of its names for that domain (`domain trust --certificate-name`).
    /// Names are matched as RFC 6125 §6.4.3 says (wildcards included); the certificate is
    /// parsed once for all of them.
    pub fn vouches_for(&self, entry: &DomainEntry) -> bool {
        let DomainRole::Trusted {
            certificate_names, ..
        } = &entry.role
        else {
            return false;
        };
        let Ok(cert) = webpki::EndEntityCert::try_from(self.0.as_ref()) else {
            return false;
        };
        std::iter::once(entry.domain.as_str())
            .chain(certificate_names.iter().map(String::as_str))
            .any(|name| {
                ServerName::try_from(name)
                    .is_ok_and(|n| cert.verify_is_valid_for_subject_name(&n).is_ok())
            })
    }
}

/// How the hub knows who sent a message: recorded with each delivered copy, read by the
/// filing runner. Only an authenticated sender's content reaches a filer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Authenticity {
    /// Nothing vouches for the envelope sender (a relay client without AUTH, or whose
    /// certificate does not name the sender's domain).
    Unauthenticated,
    /// The sender logged in (SMTP AUTH, or the web inbox's in-process submission).
    Account { id: AccountId },
    /// A peer operator's client certificate names the sender's domain.
    PeerCertificate,
}

impl Authenticity {
    pub fn is_authenticated(self) -> bool {
        !matches!(self, Authenticity::Unauthenticated)
    }
}
