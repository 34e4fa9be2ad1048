//! TLS for the MTA: the relay port's server configuration (client certificates of the trust
//! space verified when presented) and the client configuration for peers (their certificate
//! verified against the trust space's CA; ours presented for mutual TLS).

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

use crate::MtaError;

/// The hub's certificate chain and key.
pub struct TlsIdentity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        Self {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn tls_err(e: impl std::fmt::Display) -> MtaError {
    MtaError::Tls(e.to_string())
}

pub fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, MtaError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path)
        .map_err(|e| MtaError::Tls(format!("cannot read {}: {e}", path.display())))?
    {
        roots
            .add(cert.map_err(tls_err)?)
            .map_err(|e| MtaError::Tls(format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(MtaError::Tls(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(Arc::new(roots))
}

/// The certificate the hub's TLS servers present, replaceable while they run: a renewed
/// certificate is presented to every new connection at once (connections already open keep
/// the one they got). One is shared by every server configuration built on it.
#[derive(Debug)]
pub struct ServedCertificate {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServedCertificate {
    pub fn new(identity: &TlsIdentity) -> Result<Arc<Self>, MtaError> {
        Ok(Arc::new(Self {
            current: RwLock::new(certified(identity)?),
        }))
    }

    /// Presents `identity` from now on; refused (the current one stays) if its key does not
    /// match its certificate.
    pub fn replace(&self, identity: &TlsIdentity) -> Result<(), MtaError> {
        let new = certified(identity)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(())
    }
}

impl ResolvesServerCert for ServedCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// The chain and its signing key, checked to belong together.
fn certified(identity: &TlsIdentity) -> Result<Arc<CertifiedKey>, MtaError> {
    if identity.certs.is_empty() {
        return Err(MtaError::Tls("no certificate".into()));
    }
    let key = CertifiedKey::from_der(
        identity.certs.clone(),
        identity.key.clone_key(),
        &provider(),
    )
    .map_err(tls_err)?;
    Ok(Arc::new(key))
}

/// Server side, presenting `identity` for good. With roots, a client certificate is optional
/// but verified when presented.
pub fn server_config(
    identity: &TlsIdentity,
    client_roots: Option<Arc<RootCertStore>>,
) -> Result<Arc<rustls::ServerConfig>, MtaError> {
    served_config(ServedCertificate::new(identity)?, client_roots)
}

/// Server side, presenting what `served` holds at each handshake.
pub fn served_config(
    served: Arc<ServedCertificate>,
    client_roots: Option<Arc<RootCertStore>>,
) -> Result<Arc<rustls::ServerConfig>, MtaError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(tls_err)?;
    let builder = match client_roots {
        Some(roots) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(roots, provider())
                .allow_unauthenticated()
                .build()
                .map_err(tls_err)?,
        ),
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(builder.with_cert_resolver(served)))
}

/// Client side, for deliveries to peers: their certificate must chain to `roots`.
pub fn client_config(
    roots: Arc<RootCertStore>,
    identity: &TlsIdentity,
) -> Result<Arc<rustls::ClientConfig>, MtaError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(tls_err)?
        .with_root_certificates(roots)
        .with_client_auth_cert(identity.certs.clone(), identity.key.clone_key())
        .map_err(tls_err)?;
    Ok(Arc::new(config))
}
