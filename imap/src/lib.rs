//! # mshub-imap
//!
//! IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) over the store's mailboxes, for the
//! professionals' mail clients and patients who prefer one. Start with [`Imap::new`] then
//! [`Imap::serve`]: two listeners (STARTTLS on the plain port, implicit TLS), each connection
//! a [`session::Session`] — a state machine over any stream (NotAuthenticated → Authenticated →
//! Selected → Logout) — whose commands live one family per file in `cmd/`, parsed by
//! [`codec`] (a hand parser) and answered from the store; [`message`] parses stored messages
//! lazily for FETCH and SEARCH.
//!
//! Beyond the base protocol: IDLE (woken by the store's change events), UIDPLUS, MOVE,
//! UNSELECT, LITERAL+, SPECIAL-USE, CONDSTORE and QRESYNC (on the store's MODSEQs and
//! expunge records), ESEARCH, SEARCHRES, SORT and SORT=DISPLAY, THREAD=ORDEREDSUBJECT and
//! THREAD=REFERENCES, ESORT, CONTEXT=SEARCH and CONTEXT=SORT (searches kept with UPDATE, told
//! of messages joining or leaving their results), PARTIAL (paged SEARCH and SORT results),
//! BINARY, STATUS=SIZE,
//! APPENDLIMIT, MULTIAPPEND (several messages in one atomic APPEND), CATENATE (messages made of
//! TEXT literals and IMAP URLs of the
//! user's own messages), ENABLE, ID, NAMESPACE; modified UTF-7 mailbox names for IMAP4rev1
//! clients.
//!
//! Invariants:
//! - no credentials before TLS: LOGINDISABLED and no AUTH= until STARTTLS or on the TLS port;
//! - a selected session's view (sequence numbers ↔ UIDs, flags it was told) changes only when
//!   it writes the matching untagged EXISTS / EXPUNGE (or VANISHED) / FETCH, never silently;
//! - every refusal is an exact tagged `NO [CODE]` or `BAD`, except before login where going
//!   over a size limit ends the connection with `* BYE [LIMIT]`; no input panics or ends the
//!   server. Every reason to refuse is one variant of [`refusal::Refusal`], and
//!   [`refusal::Refusal::answer`] alone gives its status, response code (RFC 5530) and text:
//!   handlers return `Done::refused(tag, Refusal::…)` and write no NO or BAD themselves;
//! - the dispatcher (`cmd/mod.rs`) checks the session's state once per command; the handlers
//!   of selected-state commands receive the `Selected` mailbox itself, so none can run
//!   without one, and the read-only check is `Selected::writable` alone;
//! - before login a connection is cheap and short-lived: an 8 KiB command, 4 KiB literals, a
//!   one-minute idle timeout and a per-source cap on connections not logged in (all in
//!   [`ImapConfig`]); once logged in, the usual limits apply;
//! - logs carry account ids and command names, never addresses, arguments or content;
//! - `codec` knows nothing of the store: it is IMAP syntax only.

mod cmd;
pub mod codec;
mod date;
pub mod message;
pub mod refusal;
pub mod server;
pub mod session;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use mshub_directory::Directory;
use mshub_store::Store;

pub use server::Listeners;

/// RFC 7889 APPENDLIMIT: the largest message APPEND accepts (20 MiB).
pub const APPEND_LIMIT: u64 = 20 * 1024 * 1024;

/// The most one APPEND may carry in all, its messages together (RFC 3502 MULTIAPPEND, each
/// message within [`APPEND_LIMIT`], at most [`codec::MAX_APPEND_MESSAGES`] of them): a command
/// is held in memory until it is complete.
pub const APPEND_MAX_TOTAL: u64 = 64 * 1024 * 1024;

/// The IMAP part of the configuration tree (`[imap]` in `mshub.toml`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    /// Seconds of silence before a connection is closed (RFC 9051 §5.4: at least 30 minutes).
    pub idle_timeout_secs: u64,
    /// Largest command line, literals excluded, in bytes.
    pub max_line: usize,
    /// Most simultaneous connections from one IP address (IMAP connections are long-lived
    /// and a hospital's users may share one address).
    pub max_connections_per_source: usize,
    /// Seconds of silence before a connection that has not logged in is closed. RFC 9051
    /// §5.4's 30 minutes are for authenticated sessions; a client logs in right after the
    /// greeting (or STARTTLS), so a minute is plenty.
    pub pre_auth_idle_timeout_secs: u64,
    /// Largest command before login, its line and literals together, in bytes. RFC 7162 §4
    /// asks servers to accept command lines of at least 8192 octets; LOGIN with RFC 4616's
    /// 255-octet names and passwords quoted, or AUTHENTICATE PLAIN with an initial response
    /// (RFC 4959), takes about 1 KiB.
    pub pre_auth_max_line: usize,
    /// Largest literal before login, in bytes (a user name or password sent as a literal,
    /// RFC 9051 §4.3).
    pub pre_auth_max_literal: u64,
    /// Largest response to AUTHENTICATE's continuation request (RFC 9051 §6.2.2), in bytes:
    /// base64 SASL data, a few hundred bytes for PLAIN.
    pub max_sasl_response: usize,
    /// Most simultaneous connections from one IP address that have not logged in yet, within
    /// `max_connections_per_source`; a connection gives its place back when it logs in. Raise
    /// it for many users behind one address who all start their mail client at once.
    pub max_unauthenticated_per_source: usize,
}

impl Default for ImapConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            max_line: 64 * 1024,
            max_connections_per_source: 500,
            pre_auth_idle_timeout_secs: 60,
            pre_auth_max_line: 8 * 1024,
            pre_auth_max_literal: 4 * 1024,
            max_sasl_response: 16 * 1024,
            max_unauthenticated_per_source: 20,
        }
    }
}

/// Everything the IMAP sessions share.
pub struct Imap {
    pub(crate) config: ImapConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) tls: Arc<rustls::ServerConfig>,
    pub(crate) next_connection: AtomicU64,
    pub(crate) sources: mshub_directory::ConnectionLimits,
    /// Connections that have not logged in yet, per source (a second count beside `sources`).
    pub(crate) unauthenticated: mshub_directory::ConnectionLimits,
}

impl Imap {
    /// `tls` is the server configuration of both ports (the binary builds it from the hub's
    /// certificate, as the MTA's submission ports do).
    pub fn new(
        config: ImapConfig,
        store: Arc<Store>,
        directory: Arc<Directory>,
        tls: Arc<rustls::ServerConfig>,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            store,
            directory,
            tls,
            next_connection: AtomicU64::new(1),
            sources: Default::default(),
            unauthenticated: Default::default(),
        })
    }
}
