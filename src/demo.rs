//! `mshub demo`: the hub on the embedded store with a self-signed certificate, a generated
//! master key and the demo accounts of the demo contract. Idempotent: a second start on the
//! same directory reuses everything.
//!
//! Layout of the demo directory: `mshub.toml` (written once; edit it to change ports),
//! `master.key`, `tls/`, and `store/` (the encrypted data directory proper).

use std::path::Path;

use anyhow::Context;

use mshub_directory::{AccountKind, Address, BirthDate, Directory, Ins, Profession, Rpps, Sex};
use mshub_store::MasterKey;

use crate::config::{Config, ListenConfig};
use crate::hub::Hub;

pub const HUB_DOMAIN: &str = "mshub.test";
pub const PRO_DOMAIN: &str = "hopital.mshub.test";

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

pub fn print_banner(hub: &Hub, config_path: &Path) -> anyhow::Result<()> {
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
    Ok(())
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
