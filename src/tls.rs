//! The TLS identity every service presents (rustls with the ring provider, TLS 1.2 and 1.3
//! only: rustls has no older version at all), and the demo's self-signed certificate.

use std::path::Path;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use mshub_mta::TlsIdentity;

use crate::config::TlsConfig;

/// Loads the certificate chain and key every service presents, and checks they form a
/// usable TLS server configuration (so a bad pair fails at start, not at the first client).
pub fn load_identity(tls: &TlsConfig) -> anyhow::Result<TlsIdentity> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .with_context(|| format!("cannot read the certificate {}", tls.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("invalid PEM in {}", tls.cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", tls.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .with_context(|| format!("cannot read the private key {}", tls.key.display()))?;
    let identity = TlsIdentity { certs, key };
    mshub_mta::tls::server_config(&identity, None).with_context(|| {
        format!(
            "{} and {} do not form a usable TLS identity",
            tls.cert.display(),
            tls.key.display()
        )
    })?;
    Ok(identity)
}

/// Writes a self-signed certificate for the demo (localhost, 127.0.0.1 and the demo domains)
/// unless one is already there.
pub fn ensure_demo_certificate(tls: &TlsConfig, names: &[String]) -> anyhow::Result<bool> {
    if tls.cert.exists() && tls.key.exists() {
        return Ok(false);
    }
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .context("generating the demo certificate")?;
    write_private(&tls.key, generated.signing_key.serialize_pem().as_bytes())?;
    write_file(&tls.cert, generated.cert.pem().as_bytes())?;
    Ok(true)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Writes a secret readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
