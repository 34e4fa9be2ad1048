//! What the webmail's test binaries share.
#![allow(dead_code)] // each test binary uses its own part of it

pub mod browser;

use std::sync::Arc;

use mshub_directory::Directory;
use mshub_mta::{Mta, MtaConfig, TlsIdentity};
use mshub_store::Store;

/// An MTA over the test's store, with a throwaway certificate and no filers: the webmail's
/// submission path (the patient's replies).
pub fn mta(store: Arc<Store>, directory: Arc<Directory>) -> Arc<Mta> {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let identity = TlsIdentity {
        certs: vec![c.cert.der().clone()],
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(c.signing_key.serialize_der().into()),
    };
    Mta::new(
        MtaConfig::default(),
        store,
        directory,
        &identity,
        Vec::new(),
    )
    .unwrap()
}
