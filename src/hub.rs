//! Opening the hub's shared parts from a configuration: the store, then the directory.

use std::sync::Arc;

use anyhow::Context;

use mshub_directory::{Directory, Domain, DomainEntry, DomainRole};
use mshub_prescription::Prescriptions;
use mshub_store::{S3BlobStore, Store};

use crate::config::Config;

/// Cheap to clone: the configuration and shared handles.
#[derive(Clone)]
pub struct Hub {
    pub config: Config,
    pub store: Arc<Store>,
    pub directory: Arc<Directory>,
    /// E-prescriptions, signed with the key of `[prescription]` (if any).
    pub prescriptions: Arc<Prescriptions>,
}

impl Hub {
    pub fn open(config: Config) -> anyhow::Result<Self> {
        let hub_domain = Domain::try_from(config.hub_domain.as_str()).context("hub_domain")?;
        let master = config.master_key()?;
        let store = Arc::new(match config.blobs.s3_options()? {
            None => Store::open(&config.data_dir, master)?,
            Some(s3) => {
                let blobs = S3BlobStore::open(&s3).context("[blobs] backend = \"s3\"")?;
                Store::open_with_blobs(&config.data_dir, Arc::new(blobs), master)?
            }
        });
        let directory = Arc::new(Directory::open(store.clone(), hub_domain)?);
        for name in &config.local_domains {
            let domain = Domain::try_from(name.as_str()).context("local_domains")?;
            if !directory.is_local(&domain)? {
                directory.set_domain(
                    DomainEntry {
                        domain,
                        role: DomainRole::Local,
                    },
                    "config",
                )?;
            }
        }
        let prescriptions = Arc::new(
            Prescriptions::new(store.clone(), &config.prescription).context("[prescription]")?,
        );
        Ok(Self {
            config,
            store,
            directory,
            prescriptions,
        })
    }
}
