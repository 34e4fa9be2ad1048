//! The MTA's part of the configuration tree (`[mta]` in `mshub.toml`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtaConfig {
    /// The name this MTA gives in its greeting, EHLO reply and Received: headers
    /// (default: `mx.<hub_domain>`).
    pub hostname: Option<String>,
    /// Largest message accepted, in bytes (SIZE, RFC 1870).
    pub max_message_size: usize,
    /// Most recipients in one transaction (RFC 5321 §4.5.3.1.8 asks for at least 100).
    pub max_recipients: usize,
    /// Most commands in one connection before it is closed (a runaway or abusive client).
    pub max_commands: u32,
    /// Seconds a connection may stay silent (RFC 5321 §4.5.3.2: 5 minutes).
    pub idle_timeout_secs: u64,
    /// Seconds a connection that has not yet shown what it is may stay silent: on the relay
    /// port until EHLO/HELO, on the submission ports until AUTH succeeds (or a transaction
    /// starts). Shorter than `idle_timeout_secs`, so that stuck or idle clients do not hold
    /// the per-source places of their neighbours (see `sources`).
    pub unauthenticated_timeout_secs: u64,
    /// Most simultaneous connections from one IP address.
    pub max_connections_per_source: usize,
    /// Failed AUTH attempts before the connection is closed.
    pub max_auth_failures: u32,
    /// PEM file of the certification authority that signs the trust space's certificates:
    /// peers' server certificates are verified against it, and so are client certificates
    /// presented on the relay port. Without it, the system's web roots are used for peers and
    /// no client certificate can be verified (so `mutual-tls` peers are refused).
    pub peer_ca: Option<PathBuf>,
    /// Benchmarks only: allow MAIL without STARTTLS on the relay port from loopback clients.
    /// Never enable in production.
    pub bench_plaintext_loopback: bool,
    pub queue: QueueConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// First retry after this many seconds; each later one waits twice as long.
    pub retry_initial_secs: u64,
    /// Longest wait between two attempts.
    pub retry_max_secs: u64,
    /// After this many seconds without delivery, give up and send a failure DSN.
    pub give_up_secs: u64,
    /// After this many seconds without delivery, send a "delayed" DSN once.
    pub delay_notice_secs: u64,
    /// A node delivering a queued message holds it this many seconds at most; when several
    /// nodes share the store, a message whose node died mid-delivery is taken up by another
    /// after that. Longer than any one delivery attempt.
    pub lease_secs: u64,
}

impl Default for MtaConfig {
    fn default() -> Self {
        Self {
            hostname: None,
            max_message_size: 20 * 1024 * 1024,
            max_recipients: 100,
            max_commands: 10_000,
            idle_timeout_secs: 300,
            unauthenticated_timeout_secs: 30,
            max_connections_per_source: 50,
            max_auth_failures: 3,
            peer_ca: None,
            bench_plaintext_loopback: false,
            queue: QueueConfig::default(),
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            retry_initial_secs: 60,
            retry_max_secs: 3600,
            give_up_secs: 48 * 3600,
            delay_notice_secs: 4 * 3600,
            lease_secs: 600,
        }
    }
}
