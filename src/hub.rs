//! Opening the hub's shared parts from a configuration: the store, then the directory.

use std::sync::Arc;

use anyhow::Context;

use mshub_directory::{Directory, Domain, DomainEntry, DomainRole};
use mshub_store::Store;

use crate::config::Config;

/// Cheap to clone: the configuration and shared handles.
#[derive(Clone)]
pub struct Hub {
    pub config: Config,
    pub store: Arc<Store>,
    pub directory: Arc<Directory>,
}

impl Hub {
    pub fn open(config: Config) -> anyhow::Result<Self> {
        let hub_domain = Domain::try_from(config.hub_domain.as_str()).context("hub_domain")?;
        let master = config.master_key()?;
        let store = Arc::new(Store::open(&config.data_dir, master)?);
        let directory = Arc::new(Directory::open(store.clone(), hub_domain)?);
        directory.set_lifecycle_policy(config.accounts.policy());
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
        Ok(Self {
            config,
            store,
            directory,
        })
    }
}
