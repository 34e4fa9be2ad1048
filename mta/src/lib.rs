//! # mshub-mta
//!
//! The hub's mail transfer agent. Start with [`Mta::new`] then [`Mta::serve`]: three listeners
//! (relay, submission with STARTTLS, submission over TLS), each connection a
//! [`session::Session`] — a state machine over any stream — that asks the [`policy::Policy`]
//! about every sender, recipient and message (DESIGN §4) and hands accepted messages to
//! [`delivery::Delivery`]: local INBOXes, the outbound [`queue`], then the registered
//! [`delivery::Filer`]s.
//!
//! Invariants:
//! - `250` at the end of a message only after it is durably stored (fsync'd) for every
//!   recipient; any storage error answers `451` and acknowledges nothing;
//! - TLS before any transaction or authentication, on every port;
//! - every refusal is a [`refusal::Refusal`] variant with exactly one reply;
//! - `codec` knows nothing of the store: it is the SMTP syntax only.

pub mod client;
pub mod codec;
pub mod config;
pub mod conversation;
mod date;
pub mod delivery;
pub mod dsn;
pub mod filing;
pub mod outbound;
pub mod peer;
pub mod policy;
pub mod queue;
pub mod refusal;
mod reports;
pub mod server;
pub mod session;
mod sources;
mod submit;
pub mod tls;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use mshub_directory::{Directory, DirectoryError};
use mshub_store::{Store, StoreError};

pub use config::{MtaConfig, QueueConfig};
pub use conversation::Conversations;
pub use delivery::{Delivery, Envelope};
pub use filing::{Delivered, Filer, FilingOutcome, FilingRecord, Origin};
pub use peer::{Authenticity, PeerCertificate};
pub use server::Listeners;
pub use tls::TlsIdentity;

#[derive(Debug, thiserror::Error)]
pub enum MtaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Everything the sessions and the queue runner share.
pub struct Mta {
    pub(crate) config: MtaConfig,
    pub(crate) hostname: String,
    pub(crate) directory: Arc<Directory>,
    pub(crate) policy: policy::Policy,
    pub(crate) delivery: Arc<Delivery>,
    pub(crate) outbound: Arc<outbound::Outbound>,
    pub(crate) tls_relay: Arc<rustls::ServerConfig>,
    pub(crate) tls_submission: Arc<rustls::ServerConfig>,
    pub(crate) sources: sources::Sources,
    pub(crate) next_connection: AtomicU64,
    conversations: Arc<Conversations>,
}

impl Mta {
    pub fn new(
        config: MtaConfig,
        store: Arc<Store>,
        directory: Arc<Directory>,
        identity: &TlsIdentity,
        filers: Vec<Arc<dyn Filer>>,
    ) -> Result<Arc<Self>, MtaError> {
        Self::with_served_certificate(
            config,
            store,
            directory,
            identity,
            tls::ServedCertificate::new(identity)?,
            filers,
        )
    }

    /// As [`Mta::new`], the servers presenting what `served` holds (replaceable while they
    /// run); `identity` is what deliveries to peers present.
    pub fn with_served_certificate(
        config: MtaConfig,
        store: Arc<Store>,
        directory: Arc<Directory>,
        identity: &TlsIdentity,
        served: Arc<tls::ServedCertificate>,
        filers: Vec<Arc<dyn Filer>>,
    ) -> Result<Arc<Self>, MtaError> {
        let hostname = config
            .hostname
            .clone()
            .unwrap_or_else(|| format!("mx.{}", directory.hub_domain()));
        let roots = config.peer_ca.as_deref().map(tls::load_roots).transpose()?;
        let tls_relay = tls::served_config(served.clone(), roots.clone())?;
        let tls_submission = tls::served_config(served, None)?;
        let connector = roots
            .map(|r| tls::client_config(r, identity).map(tokio_rustls::TlsConnector::from))
            .transpose()?;
        let conversations = Arc::new(Conversations::new(store.clone()));
        let queue = Arc::new(queue::Queue::open(store.clone())?);
        let delivery = Arc::new(Delivery::new(
            hostname.clone(),
            store.clone(),
            directory.clone(),
            queue.clone(),
            filers,
        ));
        let outbound = Arc::new(outbound::Outbound {
            queue,
            delivery: delivery.clone(),
            directory: directory.clone(),
            config: config.queue.clone(),
            hostname: hostname.clone(),
            connector,
        });
        Ok(Arc::new(Self {
            policy: policy::Policy::new(directory.clone(), conversations.clone()),
            config,
            hostname,
            directory,
            delivery,
            outbound,
            tls_relay,
            tls_submission,
            sources: Default::default(),
            next_connection: AtomicU64::new(1),
            conversations,
        }))
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    pub fn delivery(&self) -> &Arc<Delivery> {
        &self.delivery
    }

    pub fn conversations(&self) -> &Arc<Conversations> {
        &self.conversations
    }
}
