//! SAML 2.0 Web Browser SSO (SAML Profiles §4.1) for the patient web inbox: the hub is the
//! service provider (SP), the operator's identity provider (IdP) authenticates the patient and
//! tells us the patient's INS.
//!
//! Pure logic, no HTTP: the routes call [`SamlSp::metadata_xml`] (`GET /saml/metadata`),
//! [`SamlSp::login_redirect`] (start of login: redirect the browser, remember the request id in
//! the browser's session) and [`SamlSp::consume`] (`POST /saml/acs` with `SAMLResponse`).
//!
//! What `consume` enforces, and who does it:
//! - samael 0.0.22 (`xmlsec`) verifies the XML signature(s) against the signing certificates of
//!   the IdP metadata only (a `KeyInfo` inside the response is ignored), reduces the document to
//!   what was signed, and then checks, *with the system clock*, Issuer, Destination (when the
//!   Response itself is signed), the bearer SubjectConfirmation (Recipient, NotOnOrAfter,
//!   InResponseTo), the Conditions' times and, *only when present*, the AudienceRestriction.
//!   It checks no signature at all when the metadata has no signing certificate: [`SamlSp::new`]
//!   refuses such metadata.
//! - This module adds: a signature is required (refused before samael with its own message),
//!   SHA-1 and other weak algorithms are refused, the Response's Destination, Status and Issuer
//!   are checked even when only the Assertion is signed, the AudienceRestriction is mandatory and
//!   every one of them must name us, an AuthnStatement is required, all times are checked again
//!   against the caller's `now`, and a replay cache refuses a second use of an assertion or a
//!   second answer to one request. Checks of unsigned parts only ever refuse; the identity is
//!   read from the signed assertion that samael returns, never from the raw document.
//! - Not supported: IdP-initiated (unsolicited) responses (SAML Profiles §4.1.5), encrypted
//!   assertions, signed AuthnRequests, single logout.

mod acs;
mod error;
mod replay;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::{
    EntityDescriptor, IndexedEndpoint, SpSsoDescriptor, HTTP_POST_BINDING, HTTP_REDIRECT_BINDING,
};
use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};
use samael::traits::ToXml;
use serde::{Deserialize, Serialize};

use mshub_directory::Ins;

pub use error::SamlError;
use replay::ReplayCache;

/// SAML Core §3.4.1 / Profiles §4.1.4.1: the SP's AuthnRequest is a protocol message.
const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// `identity_attribute` value that takes the INS from the Subject's NameID.
pub const NAME_ID: &str = "NameID";
/// How long after its IssueInstant a response is still taken (plus the clock skew): the
/// browser posts it within seconds of its issue.
const MAX_RESPONSE_AGE_SECS: u64 = 90;
/// Consumed assertion and request IDs remembered at once (see [`replay`]).
const REPLAY_CACHE_CAPACITY: usize = 100_000;

/// The `[webmail.saml]` section: single sign-on for patients through the operator's IdP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamlConfig {
    /// The IdP's SAML metadata (XML file, one `EntityDescriptor` with its signing certificate
    /// and an HTTP-Redirect SingleSignOnService). SAML login is disabled while this is unset.
    pub idp_metadata: Option<PathBuf>,
    /// This hub's SAML entity id, also the URL where its SP metadata is served; the IdP must put
    /// it in each assertion's Audience.
    pub sp_entity_id: String,
    /// Assertion Consumer Service: where the IdP posts its response (HTTP-POST binding). Must
    /// be the exact URL the browser posts to: responses whose Destination differs are refused.
    pub acs_url: String,
    /// The attribute (Name or FriendlyName) that carries the patient's INS, or `"NameID"` to
    /// take it from the Subject's NameID.
    pub identity_attribute: String,
    /// Clock difference tolerated with the IdP on every time check, in seconds.
    pub max_clock_skew_secs: u64,
}

impl Default for SamlConfig {
    fn default() -> Self {
        Self {
            idp_metadata: None,
            sp_entity_id: "https://localhost:8443/saml/metadata".into(),
            acs_url: "https://localhost:8443/saml/acs".into(),
            identity_attribute: "ins".into(),
            max_clock_skew_secs: 120,
        }
    }
}

/// Where to send the browser to log in, and the request id to remember for [`SamlSp::consume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    /// The IdP's SSO URL with `SAMLRequest` (and `RelayState`), HTTP-Redirect binding.
    pub url: String,
    /// The AuthnRequest's ID: the response must answer it (InResponseTo).
    pub request_id: String,
}

/// Who the IdP says logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlIdentity {
    /// The Subject's NameID as the IdP sent it.
    pub name_id: String,
    /// Identifiant National de Santé (INS) of the patient, validated, from `identity_attribute`;
    /// `None` when the IdP sent no such attribute.
    pub ins: Option<Ins>,
    /// Every attribute of the assertion, by Name (FriendlyName when it has no Name).
    pub attributes: BTreeMap<String, Vec<String>>,
    /// The earliest SessionNotOnOrAfter of the AuthnStatements (Unix seconds): the web session
    /// must not outlive it (SAML Core §2.7.2).
    pub session_not_on_or_after: Option<i64>,
    /// The request this response answered: drop it from the browser's outstanding requests.
    pub in_response_to: String,
}

/// The hub as a SAML service provider for one IdP. Shared by all requests (`Sync`).
pub struct SamlSp {
    sp: ServiceProvider,
    idp_entity_id: String,
    sso_url: String,
    sp_entity_id: String,
    acs_url: String,
    identity_attribute: String,
    skew_ms: i64,
    metadata_xml: String,
    replay: Mutex<ReplayCache>,
}

impl std::fmt::Debug for SamlSp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlSp")
            .field("idp_entity_id", &self.idp_entity_id)
            .field("sp_entity_id", &self.sp_entity_id)
            .finish_non_exhaustive()
    }
}

impl SamlSp {
    /// Reads the IdP metadata file named in the configuration; `Ok(None)` when SAML is off.
    pub fn from_config(config: &SamlConfig) -> Result<Option<Self>, SamlError> {
        let Some(path) = &config.idp_metadata else {
            return Ok(None);
        };
        let xml = std::fs::read_to_string(path)
            .map_err(|e| SamlError::IdpMetadata(format!("{}: {e}", path.display())))?;
        Self::new(config, &xml).map(Some)
    }

    /// Builds the SP from its configuration and the IdP's metadata (SAML Metadata §2.3.2, §2.4.3).
    pub fn new(config: &SamlConfig, idp_metadata_xml: &str) -> Result<Self, SamlError> {
        if config.sp_entity_id.is_empty() || config.acs_url.is_empty() {
            return Err(SamlError::Config(
                "sp_entity_id et acs_url sont obligatoires".into(),
            ));
        }
        if config.identity_attribute.is_empty() {
            return Err(SamlError::Config(
                "identity_attribute est obligatoire".into(),
            ));
        }
        let idp: EntityDescriptor = idp_metadata_xml
            .parse()
            .map_err(|e| SamlError::IdpMetadata(format!("{e}")))?;
        let idp_entity_id = idp
            .entity_id
            .clone()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| SamlError::IdpMetadata("entityID manquant".into()))?;
        if idp.idp_sso_descriptors.as_ref().is_none_or(Vec::is_empty) {
            return Err(SamlError::IdpMetadata(
                "aucun IDPSSODescriptor : ce n'est pas un fournisseur d'identité".into(),
            ));
        }
        let skew = chrono_secs(config.max_clock_skew_secs);
        let sp = ServiceProviderBuilder::default()
            .entity_id(config.sp_entity_id.clone())
            .acs_url(config.acs_url.clone())
            .idp_metadata(idp)
            .max_clock_skew(skew)
            .max_issue_delay(chrono_secs(MAX_RESPONSE_AGE_SECS) + skew)
            // The SHA-2 family only: XML Signature 1.1 discourages SHA-1, and samael allows
            // every algorithm unless told otherwise.
            .allowed_signature_algorithms(Some(vec![
                AllowedSignatureAlgorithm::RsaSha256,
                AllowedSignatureAlgorithm::RsaSha384,
                AllowedSignatureAlgorithm::RsaSha512,
                AllowedSignatureAlgorithm::EcdsaSha256,
                AllowedSignatureAlgorithm::EcdsaSha384,
                AllowedSignatureAlgorithm::EcdsaSha512,
            ]))
            .build()
            .map_err(|e| SamlError::Config(e.to_string()))?;
        // samael verifies nothing when it finds no signing certificate: refuse to run so.
        match sp.idp_signing_certs() {
            Ok(Some(certs)) if !certs.is_empty() => {}
            Ok(_) => return Err(SamlError::IdpNoSigningCertificate),
            Err(e) => return Err(SamlError::IdpMetadata(e.to_string())),
        }
        // SAML Bindings §3.4: the AuthnRequest goes by HTTP-Redirect.
        let sso_url = sp
            .sso_binding_location(HTTP_REDIRECT_BINDING)
            .ok_or(SamlError::IdpNoRedirectSso)?;
        let metadata_xml = sp_metadata(config)?;
        Ok(Self {
            sp,
            idp_entity_id,
            sso_url,
            sp_entity_id: config.sp_entity_id.clone(),
            acs_url: config.acs_url.clone(),
            identity_attribute: config.identity_attribute.clone(),
            skew_ms: secs_to_ms(config.max_clock_skew_secs),
            metadata_xml,
            replay: Mutex::new(ReplayCache::new(REPLAY_CACHE_CAPACITY)),
        })
    }

    /// This SP's metadata (SAML Metadata §2.4.4), for `GET /saml/metadata` at `sp_entity_id`.
    pub fn metadata_xml(&self) -> String {
        self.metadata_xml.clone()
    }

    /// The IdP's entity id, from its metadata.
    pub fn idp_entity_id(&self) -> &str {
        &self.idp_entity_id
    }

    /// Starts a login: an AuthnRequest (SAML Core §3.4.1) sent by HTTP-Redirect (SAML Bindings
    /// §3.4.4.1: DEFLATE, base64, URL-encoded), asking for the answer by HTTP-POST at `acs_url`.
    /// `relay_state` comes back unchanged with the response (at most 80 bytes, Bindings §3.4.3).
    pub fn login_redirect(&self, relay_state: &str) -> Result<LoginRequest, SamlError> {
        if relay_state.len() > 80 {
            return Err(SamlError::RelayStateTooLong);
        }
        let mut request = self
            .sp
            .make_authentication_request(&self.sso_url)
            .map_err(|_| SamlError::Request)?;
        // samael's ids carry 32 random bits; SAML Core §1.3.4 wants at least 128.
        request.id = new_request_id();
        let url = request
            .redirect(relay_state)
            .map_err(|_| SamlError::Request)?
            .ok_or(SamlError::Request)?;
        Ok(LoginRequest {
            url: url.to_string(),
            request_id: request.id,
        })
    }
}

/// The SP's metadata: entity id, one ACS (HTTP-POST), signed assertions wanted; no signing or
/// encryption key, as the hub neither signs its requests nor reads encrypted assertions.
fn sp_metadata(config: &SamlConfig) -> Result<String, SamlError> {
    let descriptor = EntityDescriptor {
        entity_id: Some(config.sp_entity_id.clone()),
        sp_sso_descriptors: Some(vec![SpSsoDescriptor {
            protocol_support_enumeration: Some(PROTOCOL_NS.into()),
            authn_requests_signed: Some(false),
            want_assertions_signed: Some(true),
            assertion_consumer_services: vec![IndexedEndpoint {
                binding: HTTP_POST_BINDING.into(),
                location: config.acs_url.clone(),
                response_location: None,
                index: 0,
                is_default: Some(true),
            }],
            ..SpSsoDescriptor::default()
        }]),
        ..EntityDescriptor::default()
    };
    descriptor
        .to_string()
        .map_err(|e| SamlError::Config(format!("métadonnées SP : {e}")))
}

/// SAML Core §1.3.4: an xs:ID (an NCName, so not starting with a digit) with 160 random bits.
fn new_request_id() -> String {
    let bytes: [u8; 20] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("_{hex}")
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1000)
}

fn chrono_secs(secs: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_ncnames_with_160_random_bits() {
        let a = new_request_id();
        assert_eq!(a.len(), 41);
        assert!(a.starts_with('_'));
        assert_ne!(a, new_request_id());
    }

    #[test]
    fn an_sp_is_shared_between_requests() {
        fn shared<T: Send + Sync>() {}
        shared::<SamlSp>();
    }

    #[test]
    fn metadata_without_a_signing_certificate_is_refused() {
        let idp = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.test/">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#;
        let err = SamlSp::new(&SamlConfig::default(), idp).unwrap_err();
        assert_eq!(err, SamlError::IdpNoSigningCertificate);
    }
}
