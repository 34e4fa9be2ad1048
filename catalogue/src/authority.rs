//! A referencing authority's side, for the demo and the tests: make an authority key, sign a
//! catalogue. A real authority signs with its own tooling, e.g.
//! `sq sign --signer-file authority.pgp --signature-file catalogue.toml.sig catalogue.toml`
//! (any detached OpenPGP signature of the file's bytes will do).

use std::time::{Duration, SystemTime};

use openpgp::cert::prelude::*;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::{Marshal, SerializeInto};
use openpgp::types::{KeyFlags, SignatureType};
use openpgp::Packet;
use sequoia_openpgp as openpgp;

const POLICY: &StandardPolicy = &StandardPolicy::new();

/// An authority's key: the secret part (armored TSK) and the public certificate (armored), the
/// one an operator configures.
pub struct AuthorityKey {
    pub secret: String,
    pub public: String,
    pub fingerprint: String,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A new authority key: a certification-only primary key and a signing subkey (Ed25519),
/// created at `created`, valid for `validity` if given.
pub fn generate(
    name: &str,
    created: SystemTime,
    validity: Option<Duration>,
) -> Result<AuthorityKey, String> {
    let (cert, _revocation) = CertBuilder::new()
        .add_userid(name)
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_creation_time(created)
        .set_validity_period(validity)
        .set_primary_key_flags(KeyFlags::empty().set_certification())
        .add_signing_subkey()
        .generate()
        .map_err(err)?;
    let secret = cert.as_tsk().armored().to_vec().map_err(err)?;
    let public = cert.armored().to_vec().map_err(err)?;
    Ok(AuthorityKey {
        secret: String::from_utf8(secret).map_err(err)?,
        public: String::from_utf8(public).map_err(err)?,
        fingerprint: cert.fingerprint().to_hex(),
    })
}

/// An armored detached signature of `data` by the authority's secret key, made now, with no
/// expiry.
pub fn sign(secret: &[u8], data: &[u8]) -> Result<String, String> {
    sign_at(secret, data, SystemTime::now(), None)
}

/// An armored detached signature of `data` made at `at`, expiring `validity` later if given.
pub fn sign_at(
    secret: &[u8],
    data: &[u8],
    at: SystemTime,
    validity: Option<Duration>,
) -> Result<String, String> {
    let cert = Cert::from_bytes(secret).map_err(err)?;
    let key = cert
        .keys()
        .with_policy(POLICY, at)
        .secret()
        .for_signing()
        .next()
        .ok_or("the key has no secret signing key valid at that time")?;
    let mut signer = key.key().clone().into_keypair().map_err(err)?;
    let mut builder = SignatureBuilder::new(SignatureType::Binary)
        .set_signature_creation_time(at)
        .map_err(err)?;
    if let Some(validity) = validity {
        builder = builder
            .set_signature_validity_period(validity)
            .map_err(err)?;
    }
    let sig = builder.sign_message(&mut signer, data).map_err(err)?;
    let mut out = Vec::new();
    {
        let mut w =
            openpgp::armor::Writer::new(&mut out, openpgp::armor::Kind::Signature).map_err(err)?;
        Packet::from(sig).serialize(&mut w).map_err(err)?;
        w.finalize().map_err(err)?;
    }
    String::from_utf8(out).map_err(err)
}
