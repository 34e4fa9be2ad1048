//! TLS for the MTA: the relay port's server configuration (client certificates of the trust
//! space verified when presented) and the client configuration for peers (their certificate
//! verified against the trust space's CA; ours presented for mutual TLS).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
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

/// Server side. With roots, a client certificate is optional but verified when presented.
pub fn server_config(
    identity: &TlsIdentity,
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
    let config = builder
        .with_single_cert(identity.certs.clone(), identity.key.clone_key())
        .map_err(tls_err)?;
    Ok(Arc::new(config))
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
