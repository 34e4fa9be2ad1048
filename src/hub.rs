//! Opening the hub's shared parts from a configuration: the store, then the directory.

use std::sync::Arc;

use anyhow::Context;

use mshub_directory::{Directory, Domain, DomainEntry, DomainRole};
use mshub_prescription::Prescriptions;
use mshub_store::{Backend, BlobStore, FsBlobStore, PgBackend, S3BlobStore, SledBackend, Store};

use crate::config::{Config, StoreBackend};

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
        let store = Arc::new(open_store(&config, master)?);
        let directory = Arc::new(Directory::open(store.clone(), hub_domain)?);
        directory.set_lifecycle_policy(config.accounts.policy());
        directory
            .auth_cache()
            .configure(config.accounts.auth_cache());
        directory.set_purger(crate::lifecycle::purger(store.clone()));
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

/// The store from `[store]` (records) and the blob directory in `data_dir` (sealed blobs).
fn open_store(config: &Config, master: mshub_store::MasterKey) -> anyhow::Result<Store> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let kv: Arc<dyn Backend> = match config.store.backend {
        StoreBackend::Sled => Arc::new(SledBackend::open(&dir.join("kv"))?),
        StoreBackend::Postgres => {
            let (url, password) = config.postgres()?;
            Arc::new(
                PgBackend::open(url, password.as_deref(), config.store.pool_size)
                    .context("[store] backend = \"postgres\"")?,
            )
        }
    };
    // Blobs: the directory in data_dir, or a bucket ([blobs] backend = "s3") that several
    // nodes share.
    let blobs: Arc<dyn BlobStore> = match config.blobs.s3_options()? {
        None => Arc::new(FsBlobStore::open(&dir.join("blobs"))?),
        Some(s3) => Arc::new(S3BlobStore::open(&s3).context("[blobs] backend = \"s3\"")?),
    };
    Ok(Store::with_backends(dir, kv, blobs, master)?)
}
