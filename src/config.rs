//! The one configuration tree (TOML). Every field has a default; unknown keys are refused with
//! their name, so a typo never silently falls back to a default.
//!
//! Environment, read here and nowhere else: `MSHUB_MASTER_KEY` overrides `master_key_file`;
//! `MSHUB_PG_PASSWORD` the password of `[store] url`; with `[blobs] backend = "s3"`, the
//! bucket's credentials come from `MSHUB_S3_ACCESS_KEY_ID` and `MSHUB_S3_SECRET_ACCESS_KEY`, or
//! else `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use mshub_agenda::AgendaConfig;
use mshub_imap::ImapConfig;
use mshub_mta::MtaConfig;
use mshub_prescription::PrescriptionConfig;
use mshub_store::{MasterKey, S3Options};
use mshub_webmail::WebmailConfig;

/// The environment variable that carries the master key.
pub const MASTER_KEY_ENV: &str = "MSHUB_MASTER_KEY";
/// The S3 credentials' variables, ours first, then the usual AWS ones.
pub const S3_CREDENTIAL_ENVS: [(&str, &str); 2] = [
    ("MSHUB_S3_ACCESS_KEY_ID", "MSHUB_S3_SECRET_ACCESS_KEY"),
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
];
/// The environment variable that carries the PostgreSQL password (`[store] backend = "postgres"`).
pub const PG_PASSWORD_ENV: &str = "MSHUB_PG_PASSWORD";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The hub's domain; patients live at `<INS>@patient.<hub_domain>`.
    pub hub_domain: String,
    /// Where the store keeps its data (sled database and sealed blobs).
    pub data_dir: PathBuf,
    /// File holding the master key that protects every account key. `MSHUB_MASTER_KEY`
    /// overrides it. Keep it outside `data_dir`.
    pub master_key_file: Option<PathBuf>,
    /// More local domains (organisations' domains hosted here), besides `hub_domain` and
    /// `patient.<hub_domain>`.
    pub local_domains: Vec<String>,
    /// The hub's public HTTPS address, as patients and pharmacists reach it: in the notices
    /// (letters, e-mails) and in the QR code of prescriptions. Empty: `https://<hub_domain>`.
    /// (`[accounts] public_url` and `[prescription] public_url`, which said it twice with
    /// different defaults, are still read when this one is not set.)
    pub public_url: String,
    pub store: StoreConfig,
    pub tls: TlsConfig,
    pub listen: ListenConfig,
    pub log: LogConfig,
    pub mta: MtaConfig,
    pub imap: ImapConfig,
    pub webmail: WebmailConfig,
    pub agenda: AgendaConfig,
    pub catalogue: CatalogueConfig,
    pub prescription: PrescriptionConfig,
    pub blobs: BlobsConfig,
    pub accounts: AccountsConfig,
}

/// Where the key-value records live (messages' metadata, accounts, queue, audit…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sled`: embedded, in `data_dir` (one process). `postgres`: a PostgreSQL database that
    /// several hub nodes may share.
    pub backend: StoreBackend,
    /// With `postgres`: `postgres://user@host:port/database`. The password may be in the URL
    /// or, better, in `MSHUB_PG_PASSWORD`, which overrides it.
    pub url: Option<String>,
    /// With `postgres`: connections this node keeps for queries (one more listens for the
    /// other nodes' changes).
    pub pool_size: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    #[default]
    Sled,
    Postgres,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sled,
            url: None,
            pool_size: mshub_store::PG_DEFAULT_POOL_SIZE,
        }
    }
}

/// The patient space's lifecycle (spaces created from a roster, closing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// How long a patient may oppose a space created from the roster, in days; without
    /// opposition it opens by itself at the end.
    pub opposition_days: u32,
    /// How long a closed space's content is kept (and the space reopenable), in days.
    pub retention_days: u32,
    /// The web inbox's public address, printed in the notices (letters and e-mails).
    /// Empty: `https://<hub_domain>`.
    pub public_url: String,
    /// How long a successful password check is remembered in memory, so that a client
    /// reconnecting does not cost a memory-hard hash each time (0: every login is hashed).
    pub auth_cache_secs: u64,
    /// Most logins remembered at once (oldest forgotten first).
    pub auth_cache_entries: usize,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            opposition_days: 30,
            retention_days: 90,
            public_url: String::new(),
            auth_cache_secs: 300,
            auth_cache_entries: 10_000,
        }
    }
}

impl AccountsConfig {
    pub fn policy(&self) -> mshub_directory::LifecyclePolicy {
        mshub_directory::LifecyclePolicy {
            opposition_secs: i64::from(self.opposition_days) * 86_400,
            retention_secs: i64::from(self.retention_days) * 86_400,
        }
    }

    pub fn auth_cache(&self) -> mshub_directory::AuthCacheConfig {
        mshub_directory::AuthCacheConfig {
            ttl: std::time::Duration::from_secs(self.auth_cache_secs),
            capacity: self.auth_cache_entries,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain presented by every service.
    pub cert: PathBuf,
    /// PEM private key of that certificate.
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// SMTP relay for hospital systems and peer operators (STARTTLS required).
    pub smtp_relay: SocketAddr,
    /// SMTP submission with STARTTLS.
    pub submission: SocketAddr,
    /// SMTP submission over implicit TLS.
    pub submissions: SocketAddr,
    /// IMAP with STARTTLS.
    pub imap: SocketAddr,
    /// IMAP over implicit TLS.
    pub imaps: SocketAddr,
    /// HTTPS: the patients' web inbox and the catalogue API.
    pub https: SocketAddr,
    /// Plain HTTP for monitoring: `/metrics`, `/healthz`, `/readyz` (loopback by default;
    /// it shows counts only, never patient data).
    pub admin: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `info,mshub_mta=debug`. Message content and patient
    /// data are only ever logged at `debug` or below. An invalid one is an error at start.
    pub filter: String,
    /// `text` (one readable line per event) or `json` (one JSON object per line, for a SIEM).
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogueConfig {
    /// OpenPGP certificates (armored or binary) of the referencing authorities: a catalogue of
    /// health apps is imported only with a valid detached signature by one of them.
    pub authorities: Vec<PathBuf>,
}

/// Where sealed blobs (messages and documents larger than what rides inline in the key-value
/// store) are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobsConfig {
    /// `fs`: files under `data_dir`; `s3`: a bucket of an S3-compatible store, shared by the
    /// nodes of a scaled-out hub.
    pub backend: BlobBackend,
    /// S3 only: base URL of the S3 API (`https://…`; `http://` only on a trusted network).
    pub endpoint: Option<String>,
    /// S3 only: the bucket, which must exist and be writable with the credentials.
    pub bucket: Option<String>,
    /// S3 only: the region the store signs for (Garage: its `s3_region`).
    pub region: Option<String>,
    /// S3 only: prefix of every object name (`<prefix>/ab/abcdef…`).
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackend {
    #[default]
    Fs,
    S3,
}

impl Default for BlobsConfig {
    fn default() -> Self {
        Self {
            backend: BlobBackend::Fs,
            endpoint: None,
            bucket: None,
            region: None,
            prefix: "blobs".into(),
        }
    }
}

impl BlobsConfig {
    /// The bucket to use, with its credentials from the environment; `None` for `fs`.
    pub fn s3_options(&self) -> anyhow::Result<Option<S3Options>> {
        self.s3_options_from(|name| std::env::var(name).ok())
    }

    fn s3_options_from(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<S3Options>> {
        if self.backend == BlobBackend::Fs {
            return Ok(None);
        }
        let required = |value: &Option<String>, key: &str| match value {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ => Err(anyhow::anyhow!(
                "[blobs] backend = \"s3\" needs `{key}` in the configuration"
            )),
        };
        let endpoint = required(&self.endpoint, "endpoint")?;
        let bucket = required(&self.bucket, "bucket")?;
        let region = required(&self.region, "region")?;
        let set = |name: &str| env(name).filter(|v| !v.is_empty());
        let mut credentials = None;
        for (id_var, secret_var) in S3_CREDENTIAL_ENVS {
            match (set(id_var), set(secret_var)) {
                (Some(id), Some(secret)) => {
                    credentials = Some((id, secret));
                    break;
                }
                (None, None) => {}
                (Some(_), None) => bail!("{id_var} is set but {secret_var} is not"),
                (None, Some(_)) => bail!("{secret_var} is set but {id_var} is not"),
            }
        }
        let Some((access_key_id, secret_access_key)) = credentials else {
            bail!(
                "[blobs] backend = \"s3\" needs the bucket's credentials in the environment: \
                 MSHUB_S3_ACCESS_KEY_ID and MSHUB_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID \
                 and AWS_SECRET_ACCESS_KEY)"
            );
        };
        Ok(Some(S3Options {
            endpoint,
            bucket,
            region,
            prefix: self.prefix.clone(),
            access_key_id,
            secret_access_key,
        }))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            hub_domain: "mshub.test".into(),
            data_dir: "data".into(),
            master_key_file: None,
            local_domains: Vec::new(),
            public_url: String::new(),
            store: StoreConfig::default(),
            tls: TlsConfig::default(),
            listen: ListenConfig::default(),
            log: LogConfig::default(),
            mta: MtaConfig::default(),
            imap: ImapConfig::default(),
            webmail: WebmailConfig::default(),
            agenda: AgendaConfig::default(),
            catalogue: CatalogueConfig::default(),
            prescription: PrescriptionConfig::default(),
            blobs: BlobsConfig::default(),
            accounts: AccountsConfig::default(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: "tls/cert.pem".into(),
            key: "tls/key.pem".into(),
        }
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("valid literal socket address")
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            smtp_relay: addr("0.0.0.0:25"),
            submission: addr("0.0.0.0:587"),
            submissions: addr("0.0.0.0:465"),
            imap: addr("0.0.0.0:143"),
            imaps: addr("0.0.0.0:993"),
            https: addr("0.0.0.0:443"),
            admin: addr("127.0.0.1:9925"),
        }
    }
}

impl ListenConfig {
    /// The demo contract's ports, on loopback.
    pub fn demo() -> Self {
        Self {
            smtp_relay: addr("127.0.0.1:2525"),
            submission: addr("127.0.0.1:2587"),
            submissions: addr("127.0.0.1:2465"),
            imap: addr("127.0.0.1:2143"),
            imaps: addr("127.0.0.1:2993"),
            https: addr("127.0.0.1:8443"),
            admin: addr("127.0.0.1:9925"),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// The commented sample printed by `mshub config example`; a test checks that it parses to
/// exactly the defaults.
pub const EXAMPLE: &str = r#"# mshub configuration. Every key is optional: the values shown are the defaults.
# Relative paths are relative to the directory of this file.

# The hub's domain; patients live at <INS>@patient.<hub_domain>.
hub_domain = "mshub.test"

# Where the store keeps its data: the sled database and the sealed (encrypted) blobs.
data_dir = "data"

# File holding the master key that protects every account's key (at least 32 characters,
# e.g. 64 random hex digits). The environment variable MSHUB_MASTER_KEY overrides it.
# Keep it outside data_dir: a copy of data_dir without it reveals no message or document.
# master_key_file = "/etc/mshub/master.key"

# More local domains hosted here (organisations), besides hub_domain and patient.<hub_domain>.
local_domains = []
# The hub's public HTTPS address, as patients and pharmacists reach it: printed in the notices
# (letters, e-mails) and in the QR code of prescriptions. Empty: https://<hub_domain>.
public_url = ""

[store]
# "sled": the embedded store in data_dir, for one process. "postgres": a PostgreSQL database
# (15 or later) that several hub nodes share; each node keeps its own data_dir (control socket)
# and the sealed blobs must be shared too (the same directory at data_dir/blobs on every node).
backend = "sled"
# With "postgres": where the database is. The password is better given in the environment
# variable MSHUB_PG_PASSWORD, which overrides one in the URL. The schema is created or
# upgraded at start.
# url = "postgres://mshub@db.example:5432/mshub"
# With "postgres": connections this node keeps for queries (one more listens for changes).
pool_size = 16

[tls]
# PEM certificate chain and private key presented by every service (TLS 1.2 and 1.3 only).
cert = "tls/cert.pem"
key = "tls/key.pem"

[listen]
# SMTP relay for hospital systems and peer operators (STARTTLS required before MAIL).
smtp_relay = "0.0.0.0:25"
# SMTP submission for mail clients: STARTTLS, and implicit TLS.
submission = "0.0.0.0:587"
submissions = "0.0.0.0:465"
# IMAP for mail clients: STARTTLS, and implicit TLS.
imap = "0.0.0.0:143"
imaps = "0.0.0.0:993"
# HTTPS: the patients' web inbox and the catalogue API.
https = "0.0.0.0:443"
# Plain HTTP for monitoring: /metrics (Prometheus), /healthz, /readyz. Counts only, no
# patient data; keep it on loopback or a management network.
admin = "127.0.0.1:9925"

[log]
# A tracing filter such as "info" or "info,mshub_mta=debug". Message content and patient
# data are only logged at debug level or below.
filter = "info"
# "text", or "json": one JSON object per line (time, level, target, fields, spans) for a SIEM.
format = "text"

[mta]
# The name given in the SMTP greeting and in Received: headers (default: mx.<hub_domain>).
# hostname = "mx.mshub.test"
# Largest message accepted, in bytes.
max_message_size = 20971520
# Most recipients per message.
max_recipients = 100
# Most commands in one connection.
max_commands = 10000
# Seconds a connection may stay silent.
idle_timeout_secs = 300
# Seconds a connection may stay silent before it has shown what it is (EHLO on the relay
# port, AUTH on the submission ports): stuck clients then free their places sooner.
unauthenticated_timeout_secs = 30
# Most simultaneous connections from one IP address. At the limit, a new connection takes the
# place of the oldest one that has said nothing since its greeting; it is refused only when
# all of them have spoken.
max_connections_per_source = 50
# Failed AUTH attempts before the connection is closed.
max_auth_failures = 3
# PEM file of the trust space's certification authority: peers' certificates are verified
# against it, and so are client certificates on the relay port. Without it nothing is relayed.
# peer_ca = "/etc/mshub/trust-space-ca.pem"
# Benchmarks only: MAIL without STARTTLS on the relay port from loopback. Never in production.
bench_plaintext_loopback = false

[mta.queue]
# First retry after this many seconds, then twice as long each time, at most retry_max_secs.
retry_initial_secs = 60
retry_max_secs = 3600
# Give up (and return a failure DSN) after this many seconds.
give_up_secs = 172800
# Send a "delayed" DSN once after this many seconds.
delay_notice_secs = 14400
# A node delivering a queued message holds it this many seconds at most: with several nodes
# on one store, a message whose node died mid-delivery is delivered by another after that.
lease_secs = 600

[imap]
# Seconds of silence before a connection is closed (RFC 9051: at least 30 minutes).
idle_timeout_secs = 1800
# Largest command line, literals excluded, in bytes.
max_line = 65536
# Most simultaneous connections from one IP address.
max_connections_per_source = 500
# Before login (RFC 9051 asks 30 minutes of idle time only for logged-in sessions): seconds
# of silence before the connection is closed...
pre_auth_idle_timeout_secs = 60
# ...largest command, literals included (RFC 7162: at least 8192 octets), and largest literal,
# in bytes; over either, the connection is closed...
pre_auth_max_line = 8192
pre_auth_max_literal = 4096
# ...largest response to AUTHENTICATE's continuation, in bytes...
max_sasl_response = 16384
# ...and most connections from one IP address not logged in yet (within the cap above).
max_unauthenticated_per_source = 20

[webmail]
# A patient's session ends after this many seconds without a request...
session_idle_secs = 1800
# ...and in any case this many seconds after login.
session_max_secs = 43200
# Form posts accepted per minute from one session (or one address before login).
posts_per_minute = 60
# Calls per minute accepted from one referenced app's token.
app_calls_per_minute = 120
# Most simultaneous HTTPS connections from one IP address (an IPv6 client: its /64).
max_connections_per_source = 64
# Seconds to send a request's headers; also how long an idle kept-alive connection stays.
header_timeout_secs = 20
# Seconds to send a request's whole body once its headers are in (then 408).
body_timeout_secs = 60
# Hours an emergency access ("bris de glace") opens a patient's space to the professional
# who asked for it with a reason (the patient is told at once and may forbid it).
emergency_access_hours = 24

[webmail.saml]
# The identity provider's SAML metadata (XML: its signing certificate and an HTTP-Redirect
# SingleSignOnService). Single sign-on is off while this is unset.
# idp_metadata = "/etc/mshub/idp-metadata.xml"
# This hub's entity id, also the URL of its SP metadata (GET /saml/metadata).
sp_entity_id = "https://localhost:8443/saml/metadata"
# Where the identity provider posts its responses; responses to another address are refused.
acs_url = "https://localhost:8443/saml/acs"
# The attribute carrying the patient's INS, or "NameID".
identity_attribute = "ins"
# Clock difference tolerated with the identity provider, in seconds.
max_clock_skew_secs = 120

[agenda]
# How long before an appointment the patient is reminded by mail, in seconds (24 h).
reminder_lead_secs = 86400

[catalogue]
# OpenPGP certificates of the referencing authorities (files, armored or binary).
# `mshub catalogue import FILE SIGNATURE` accepts a catalogue of health apps only with a valid
# detached signature by one of them, whose key is neither expired nor revoked.
# authorities = ["/etc/mshub/referencing-authority.asc"]
authorities = []

[prescription]
# PEM file of the hub's Ed25519 key that signs e-prescriptions (PKCS#8, e.g. made with
# `openssl genpkey -algorithm ed25519 -out prescription-signing-key.pem`). Unset: the hub
# issues no prescription (an ordonnance.json is refused with that reason; the mail is delivered).
# `mshub demo` generates one in its data directory.
# signing_key = "/etc/mshub/prescription-signing-key.pem"
[blobs]
# Where sealed (encrypted) messages and documents are kept: "fs" for files under data_dir, or
# "s3" for a bucket of an S3-compatible store (Garage, MinIO, Ceph…), which several hub nodes
# can share. The bucket only ever receives sealed data. Its credentials are read from the
# environment: MSHUB_S3_ACCESS_KEY_ID and MSHUB_S3_SECRET_ACCESS_KEY, or else
# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
backend = "fs"
# endpoint = "https://s3.example.org"
# bucket = "mshub"
# region = "garage"
# Prefix of every object name: <prefix>/ab/abcdef…
prefix = "blobs"

[accounts]
# Spaces created from the roster (`mshub account import`) are pending: the patient may oppose
# during this many days; without opposition the space opens by itself at the end.
opposition_days = 30
# A closed space's content is destroyed this many days after closing; until then the patient
# may reopen it.
retention_days = 90
# A successful password check is remembered in memory this many seconds (never stored, dropped
# at once on a password change, disabling or closing; failures are never remembered), so that
# a phone reconnecting does not cost a memory-hard hash each time. 0: hash every login.
auth_cache_secs = 300
# Most logins remembered at once.
auth_cache_entries = 10000
"#;

/// The older public address keys a configuration file sets, non-empty, with their values.
fn legacy_public_urls(text: &str) -> Vec<(&'static str, String)> {
    let Ok(doc) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    [
        ("[accounts] public_url", "accounts"),
        ("[prescription] public_url", "prescription"),
    ]
    .into_iter()
    .filter_map(|(key, table)| {
        let value = doc.get(table)?.get("public_url")?.as_str()?;
        (!value.is_empty()).then(|| (key, value.to_string()))
    })
    .collect()
}

/// `MSHUB_PG_PASSWORD`, if set.
pub fn pg_password_from_env() -> Option<String> {
    std::env::var(PG_PASSWORD_ENV).ok()
}

impl Config {
    /// Reads `path` and resolves its relative paths against the file's directory.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        let mut config: Config = toml::from_str(&text)
            .with_context(|| format!("invalid configuration {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        let written = legacy_public_urls(&text);
        config
            .settle_public_url(&written)
            .with_context(|| format!("invalid configuration {}", path.display()))?;
        tracing_subscriber::EnvFilter::try_new(&config.log.filter).with_context(|| {
            format!(
                "invalid configuration {}: [log] filter {:?} is not a tracing filter \
                 (e.g. \"info\" or \"info,mshub_mta=debug\")",
                path.display(),
                config.log.filter
            )
        })?;
        Ok(config)
    }

    /// The hub's public HTTPS address: `public_url`, or `https://<hub_domain>`.
    pub fn public_address(&self) -> String {
        if self.public_url.is_empty() {
            format!("https://{}", self.hub_domain)
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }

    /// The one public address, given to every part that prints it ([`Config::public_address`]);
    /// `written`: the older keys the file sets, with their values. Two different addresses are
    /// an error, not a choice.
    pub fn settle_public_url(&mut self, written: &[(&'static str, String)]) -> anyhow::Result<()> {
        let trim = |s: &str| s.trim_end_matches('/').to_string();
        let url = match written.first() {
            Some((_, first)) if self.public_url.is_empty() => trim(first),
            _ => self.public_address(),
        };
        for (key, value) in written {
            if trim(value) != url {
                bail!(
                    "{key} is {value:?} but the public address is {url:?}: set public_url \
                     once, at the top of the file"
                );
            }
        }
        self.public_url = url.clone();
        self.accounts.public_url = url.clone();
        self.prescription.public_url = url;
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.data_dir);
        abs(&mut self.tls.cert);
        abs(&mut self.tls.key);
        if let Some(p) = self.master_key_file.as_mut() {
            abs(p);
        }
        if let Some(p) = self.mta.peer_ca.as_mut() {
            abs(p);
        }
        self.catalogue.authorities.iter_mut().for_each(abs);
        if let Some(p) = self.prescription.signing_key.as_mut() {
            abs(p);
        }
    }

    /// The PostgreSQL URL and password (`MSHUB_PG_PASSWORD`, if set, overrides the URL's).
    pub fn postgres(&self) -> anyhow::Result<(&str, Option<String>)> {
        let Some(url) = self.store.url.as_deref() else {
            bail!("[store] backend = \"postgres\" needs [store] url = \"postgres://user@host/db\"");
        };
        Ok((url, pg_password_from_env()))
    }

    /// The master key: `MSHUB_MASTER_KEY` if set, else the content of `master_key_file`.
    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        if let Ok(secret) = std::env::var(MASTER_KEY_ENV) {
            return MasterKey::new(&secret)
                .with_context(|| format!("{MASTER_KEY_ENV} is unusable"));
        }
        let Some(file) = &self.master_key_file else {
            bail!(
                "no master key: set {MASTER_KEY_ENV} or master_key_file in the configuration \
                 (`mshub demo` generates one for the demo)"
            );
        };
        let secret = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the master key file {}", file.display()))?;
        MasterKey::new(&secret).with_context(|| format!("{} is unusable", file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_to_exactly_the_defaults() {
        let parsed: Config = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn store_backend_is_sled_unless_postgres_is_asked_for() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.store.backend, StoreBackend::Sled);
        let c: Config = toml::from_str(
            "[store]\nbackend = \"postgres\"\nurl = \"postgres://mshub@127.0.0.1/mshub\"",
        )
        .unwrap();
        assert_eq!(c.store.backend, StoreBackend::Postgres);
        assert_eq!(c.postgres().unwrap().0, "postgres://mshub@127.0.0.1/mshub");
        let err = toml::from_str::<Config>("[store]\nbackend = \"mysql\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql"), "{err}");
        let c: Config = toml::from_str("[store]\nbackend = \"postgres\"").unwrap();
        assert!(c
            .postgres()
            .unwrap_err()
            .to_string()
            .contains("[store] url"));
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = toml::from_str::<Config>("hub_domian = \"x.test\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hub_domian"), "{err}");
        let err = toml::from_str::<Config>("[listen]\nimapz = \"127.0.0.1:1\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("imapz"), "{err}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mshub.toml");
        std::fs::write(
            &path,
            "data_dir = \"store\"\n[tls]\ncert = \"/abs/cert.pem\"\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.data_dir, dir.path().join("store"));
        assert_eq!(c.tls.cert, PathBuf::from("/abs/cert.pem"));
        assert_eq!(c.tls.key, dir.path().join("tls/key.pem"));
    }

    /// One public address for the notices and the prescriptions' QR codes: the top-level key,
    /// else an older key the file sets, else `https://<hub_domain>`; two that differ are an
    /// error naming the key.
    #[test]
    fn one_public_address_for_notices_and_prescriptions() {
        let load = |text: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("mshub.toml");
            std::fs::write(&path, text).unwrap();
            Config::load(&path)
        };
        let both = |c: &Config| {
            (
                c.accounts.public_url.clone(),
                c.prescription.public_url.clone(),
            )
        };
        let c = load("hub_domain = \"hopital.example\"\n").unwrap();
        let expected = "https://hopital.example".to_string();
        assert_eq!(both(&c), (expected.clone(), expected));
        let c = load("public_url = \"https://mail.hopital.example/\"\n").unwrap();
        let expected = "https://mail.hopital.example".to_string();
        assert_eq!(both(&c), (expected.clone(), expected));
        // An older file: its one key holds for both.
        let c = load("[prescription]\npublic_url = \"https://localhost:8443\"\n").unwrap();
        let expected = "https://localhost:8443".to_string();
        assert_eq!(both(&c), (expected.clone(), expected));
        let c = load(
            "public_url = \"https://a.example\"\n[accounts]\npublic_url = \"https://a.example/\"\n",
        )
        .unwrap();
        assert_eq!(c.public_address(), "https://a.example");
        let e = load(
            "public_url = \"https://a.example\"\n[prescription]\npublic_url = \"https://b.example\"\n",
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("[prescription] public_url"),
            "{e:#}"
        );
        let e = load(
            "[accounts]\npublic_url = \"https://a.example\"\n[prescription]\npublic_url = \"https://b.example\"\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("set public_url once"), "{e:#}");
    }

    #[test]
    fn catalogue_authorities_follow_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mshub.toml");
        std::fs::write(
            &path,
            "[catalogue]\nauthorities = [\"authority.asc\", \"/etc/other.asc\"]\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(
            c.catalogue.authorities,
            [
                dir.path().join("authority.asc"),
                PathBuf::from("/etc/other.asc")
            ]
        );
    }

    fn s3_blobs(extra: &str) -> BlobsConfig {
        let text = format!(
            "[blobs]\nbackend = \"s3\"\nendpoint = \"http://127.0.0.1:3900\"\n\
             bucket = \"mshub\"\nregion = \"garage\"\n{extra}"
        );
        toml::from_str::<Config>(&text).unwrap().blobs
    }

    #[test]
    fn fs_blobs_need_nothing_from_the_environment() {
        let none = |_: &str| -> Option<String> { panic!("the environment was read") };
        assert_eq!(Config::default().blobs.s3_options_from(none).unwrap(), None);
    }

    #[test]
    fn s3_credentials_come_from_ours_then_the_aws_variables() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let blobs = s3_blobs("prefix = \"node-a\"");
        let aws = blobs
            .s3_options_from(env(&[
                ("AWS_ACCESS_KEY_ID", "GKaws"),
                ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ]))
            .unwrap()
            .unwrap();
        assert_eq!(aws.access_key_id, "GKaws");
        assert_eq!(aws.secret_access_key, "aws-secret");
        assert_eq!(aws.endpoint, "http://127.0.0.1:3900");
        assert_eq!(aws.bucket, "mshub");
        assert_eq!(aws.region, "garage");
        assert_eq!(aws.prefix, "node-a");
        let ours = blobs
            .s3_options_from(env(&[
                ("AWS_ACCESS_KEY_ID", "GKaws"),
                ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
                ("MSHUB_S3_ACCESS_KEY_ID", "GKours"),
                ("MSHUB_S3_SECRET_ACCESS_KEY", "our-secret"),
            ]))
            .unwrap()
            .unwrap();
        assert_eq!(ours.access_key_id, "GKours");
        assert_eq!(ours.secret_access_key, "our-secret");
    }

    #[test]
    fn incomplete_s3_settings_are_refused_with_what_is_missing() {
        let nothing = |_: &str| None;
        let err = s3_blobs("")
            .s3_options_from(nothing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("MSHUB_S3_ACCESS_KEY_ID"), "{err}");
        let half = |name: &str| (name == "MSHUB_S3_ACCESS_KEY_ID").then(|| "GK1".to_string());
        let err = s3_blobs("").s3_options_from(half).unwrap_err().to_string();
        assert!(err.contains("MSHUB_S3_SECRET_ACCESS_KEY is not"), "{err}");
        let no_bucket: Config =
            toml::from_str("[blobs]\nbackend = \"s3\"\nendpoint = \"https://s3.test\"\n").unwrap();
        let err = no_bucket
            .blobs
            .s3_options_from(nothing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`bucket`"), "{err}");
        let err = toml::from_str::<Config>("[blobs]\nbackend = \"ceph\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ceph"), "{err}");
    }
}
