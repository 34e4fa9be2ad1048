//! `mshub demo`: the hub on the embedded store with a self-signed certificate, a generated
//! master key and the demo accounts of the demo contract. Idempotent: a second start on the
//! same directory reuses everything.
//!
//! Layout of the demo directory: `mshub.toml` (written once; edit it to change ports),
//! `master.key`, `tls/`, `store/` (the encrypted data directory proper), and the DEMO
//! referencing authority of the apps catalogue: `catalogue-authority.asc` (its certificate),
//! `catalogue-authority-DEMO-ONLY-secret-key.asc`, and the example catalogue it signed,
//! `catalogue.toml` and `catalogue.toml.sig` ([`DemoCatalogue`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use mshub_catalogue::{authority, file, Catalogue, Imported};
use mshub_directory::{AccountKind, Address, BirthDate, Directory, Ins, Profession, Rpps, Sex};
use mshub_store::MasterKey;

use crate::config::{CatalogueConfig, Config, ListenConfig};
use crate::hub::Hub;

pub const HUB_DOMAIN: &str = "mshub.test";
pub const PRO_DOMAIN: &str = "hopital.mshub.test";
/// The demo referencing authority's certificate, in the demo directory.
pub const CATALOGUE_AUTHORITY: &str = "catalogue-authority.asc";

/// The demo accounts: address, password, kind. Passwords for the demo only.
pub fn demo_accounts() -> anyhow::Result<Vec<(Address, &'static str, AccountKind)>> {
    Ok(vec![
        (
            Address::try_from("dr.martin@hopital.mshub.test")?,
            "demo-martin",
            AccountKind::Professional {
                rpps: Rpps::try_from("10003456786")?,
                given_name: "Jean".into(),
                family_name: "Martin".into(),
                profession: Profession::Physician,
                specialty: "médecine générale".into(),
                city: "Paris".into(),
            },
        ),
        (
            Address::try_from("labo@hopital.mshub.test")?,
            "demo-labo",
            AccountKind::Organisation {
                name: "Laboratoire de l'hôpital".into(),
                members: Vec::new(),
            },
        ),
        (
            Address::try_from("284057511204339@patient.mshub.test")?,
            "demo-camille",
            AccountKind::Patient {
                ins: Ins::try_from("284057511204339")?,
                given_name: "Camille".into(),
                family_name: "Durand".into(),
                birth_date: BirthDate::try_from("1984-05-12")?,
                sex: Sex::Female,
            },
        ),
    ])
}

/// Prepares the demo directory and returns the path of its configuration.
pub fn prepare(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config_path = dir.join("mshub.toml");
    if !config_path.exists() {
        let config = Config {
            hub_domain: HUB_DOMAIN.into(),
            data_dir: "store".into(),
            master_key_file: Some("master.key".into()),
            local_domains: vec![PRO_DOMAIN.into()],
            listen: ListenConfig::demo(),
            public_url: "https://localhost:8443".into(),
            catalogue: CatalogueConfig {
                authorities: vec![CATALOGUE_AUTHORITY.into()],
            },
            ..Config::default()
        };
        let text = format!(
            "# mshub demo configuration (see `mshub config example` for every key).\n{}",
            toml::to_string(&config).context("serialising the demo configuration")?
        );
        std::fs::write(&config_path, text)
            .with_context(|| format!("writing {}", config_path.display()))?;
    }
    let config = Config::load(&config_path)?;
    if let Some(key_file) = &config.master_key_file {
        if !key_file.exists() {
            crate::tls::write_private(key_file, MasterKey::generate().as_bytes())?;
        }
    }
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        HUB_DOMAIN.to_string(),
        format!("*.{HUB_DOMAIN}"),
        format!("patient.{HUB_DOMAIN}"),
        PRO_DOMAIN.to_string(),
    ];
    crate::tls::ensure_demo_certificate(&config.tls, &names)?;
    Ok(config_path)
}

/// Creates the demo accounts that do not exist yet.
pub fn seed(directory: &Directory) -> anyhow::Result<()> {
    for (address, password, kind) in demo_accounts()? {
        if directory.account_by_address(&address)?.is_none() {
            directory
                .add_account(address.clone(), kind, Some(password), "demo")
                .with_context(|| format!("creating the demo account {address}"))?;
        }
    }
    Ok(())
}

pub fn print_banner(hub: &Hub, config_path: &Path, apps: &Imported) -> anyhow::Result<()> {
    let l = &hub.config.listen;
    println!("mshub demo — hub domain {}", hub.config.hub_domain);
    println!("  configuration  {}", config_path.display());
    println!(
        "  certificate    {} (self-signed)",
        hub.config.tls.cert.display()
    );
    println!(
        "  data           {} (encrypted at rest)",
        hub.config.data_dir.display()
    );
    println!("  accounts (demo passwords):");
    for (address, password, kind) in demo_accounts()? {
        println!("    {address:<40} {password:<14} {}", kind.label());
    }
    println!(
        "  mail clients: IMAP {} (TLS) or {} (STARTTLS); SMTP {} (TLS) or {} (STARTTLS)",
        l.imaps, l.imap, l.submissions, l.submission
    );
    println!("  hospital systems: SMTP relay {}", l.smtp_relay);
    println!("  patients: https://{}/", l.https);
    println!(
        "  apps catalogue: {} referenced apps, signed by the DEMO authority {} ({CATALOGUE_AUTHORITY})",
        apps.file.apps.len(),
        apps.file.signed_by
    );
    Ok(())
}

/// The demo's referencing authority: a key made for the demo only, its certificate configured
/// as the authority, and the example catalogue signed with it.
/// The demo's prescription signing key, generated on first start beside the configuration
/// when the configuration names none.
pub fn prepare_prescription_key(config: &mut Config) -> anyhow::Result<()> {
    if config.prescription.signing_key.is_some() {
        return Ok(());
    }
    let path = config
        .data_dir
        .parent()
        .unwrap_or(Path::new("."))
        .join(PRESCRIPTION_KEY);
    if !path.exists() {
        mshub_prescription::SigningKey::generate_file(&path)
            .with_context(|| format!("generating {}", path.display()))?;
    }
    config.prescription.signing_key = Some(path);
    Ok(())
}

/// File name of the demo's prescription signing key.
pub const PRESCRIPTION_KEY: &str = "prescription-signing-key.pem";

pub struct DemoCatalogue {
    /// The authority's public certificate (the file `[catalogue] authorities` lists).
    pub certificate: PathBuf,
    /// The DEMO secret key: never an authority outside the demo.
    pub secret_key: PathBuf,
    /// The signed example catalogue and its detached signature.
    pub file: PathBuf,
    pub signature: PathBuf,
}

impl DemoCatalogue {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            certificate: dir.join(CATALOGUE_AUTHORITY),
            secret_key: dir.join("catalogue-authority-DEMO-ONLY-secret-key.asc"),
            file: dir.join("catalogue.toml"),
            signature: dir.join("catalogue.toml.sig"),
        }
    }

    /// Creates the demo authority key once, and makes `config` trust it (also for a demo
    /// configuration written before the catalogue existed).
    pub fn prepare(&self, config: &mut Config) -> anyhow::Result<()> {
        if !self.certificate.exists() || !self.secret_key.exists() {
            let key = authority::generate(
                "Autorité de référencement DÉMO — clé de démonstration, sans valeur",
                SystemTime::now() - Duration::from_secs(3600),
                Some(Duration::from_secs(5 * 365 * 24 * 3600)),
            )
            .map_err(|e| anyhow::anyhow!("generating the demo authority key: {e}"))?;
            crate::tls::write_private(&self.secret_key, key.secret.as_bytes())?;
            std::fs::write(&self.certificate, key.public.as_bytes())
                .with_context(|| format!("writing {}", self.certificate.display()))?;
            // A new key: any catalogue signed by an earlier one is stale.
            let _ = std::fs::remove_file(&self.signature);
        }
        if !config.catalogue.authorities.contains(&self.certificate) {
            config.catalogue.authorities.push(self.certificate.clone());
        }
        Ok(())
    }

    /// Imports the example catalogue, signed by the demo authority, unless a valid catalogue is
    /// already in use. Returns the current catalogue.
    pub fn seed(&self, hub: &Hub) -> anyhow::Result<Arc<Imported>> {
        let catalogue = Catalogue::new(hub.store.clone(), hub.directory.clone());
        let today = mshub_store::now();
        if let Some(current) = catalogue.current()? {
            let authorities = crate::operate::authorities(hub)?;
            if current.reverify(&authorities, SystemTime::now()).is_ok() {
                return Ok(current);
            }
        }
        let text = file::demo_issued_at(today);
        let secret = std::fs::read(&self.secret_key)
            .with_context(|| format!("reading {}", self.secret_key.display()))?;
        let signature = authority::sign(&secret, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("signing the demo catalogue: {e}"))?;
        std::fs::write(&self.file, &text)
            .with_context(|| format!("writing {}", self.file.display()))?;
        std::fs::write(&self.signature, &signature)
            .with_context(|| format!("writing {}", self.signature.display()))?;
        catalogue
            .import(
                text.as_bytes(),
                signature.as_bytes(),
                &crate::operate::authorities(hub)?,
                "demo",
            )
            .context("importing the demo catalogue")?;
        catalogue
            .current()?
            .context("the demo catalogue is not in the store after its import")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_writes_the_demo_contract_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = prepare(tmp.path()).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.hub_domain, "mshub.test");
        assert_eq!(config.listen, ListenConfig::demo());
        assert_eq!(config.listen.imaps.port(), 2993);
        assert_eq!(config.listen.https.port(), 8443);
        let files = ["mshub.toml", "master.key", "tls/cert.pem", "tls/key.pem"];
        let before: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(tmp.path().join(f)).unwrap())
            .collect();
        prepare(tmp.path()).unwrap();
        for (f, b) in files.iter().zip(before) {
            assert_eq!(
                std::fs::read(tmp.path().join(f)).unwrap(),
                b,
                "{f} rewritten"
            );
        }
        // The generated certificate and key load into a TLS server configuration.
        crate::tls::load_identity(&config.tls).unwrap();
    }
}
