//! The web part of the configuration tree (`[webmail]` in `mshub.toml`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebmailConfig {
    /// A patient's session ends after this many seconds without a request.
    pub session_idle_secs: u64,
    /// And in any case this many seconds after login.
    pub session_max_secs: u64,
    /// Form posts (replies, settings, logins…) accepted per minute from one session, or from
    /// one address before login; past it, `429` with `Retry-After`. Reading is not limited.
    pub posts_per_minute: u32,
    /// Calls per minute accepted from one referenced app's token (`/api/apps/v1`).
    pub app_calls_per_minute: u32,
    /// Most simultaneous HTTPS connections from one client address (an IPv6 client: its /64);
    /// past it, new ones are closed unanswered. Browsers open about six per site, so a few
    /// patients behind one NAT fit; a single address cannot hold the whole listener.
    pub max_connections_per_source: usize,
    /// Seconds a client has to send a request's line and headers, counted from the end of the
    /// TLS handshake or, on a kept-alive connection, from the previous response: a connection
    /// idle or trickling its headers that long is closed.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's whole body once its headers are in; past it,
    /// `408` and the connection is closed. At the default a 20 MB reply with attachments
    /// needs an upload of about 3 Mbit/s.
    pub body_timeout_secs: u64,
    /// How long an emergency access ("bris de glace") opens a patient's space to the
    /// professional who asked for it, in hours.
    pub emergency_access_hours: u32,
    /// Single sign-on through the operator's SAML identity provider (off until
    /// `idp_metadata` is set).
    pub saml: crate::saml::SamlConfig,
    /// The agenda's settings, which the binary copies here from `[agenda]` (the agenda page's
    /// answers move reminders).
    #[serde(skip)]
    pub agenda: mshub_agenda::AgendaConfig,
}

impl Default for WebmailConfig {
    fn default() -> Self {
        Self {
            session_idle_secs: 30 * 60,
            session_max_secs: 12 * 3600,
            posts_per_minute: 60,
            app_calls_per_minute: 120,
            max_connections_per_source: 64,
            header_timeout_secs: 20,
            body_timeout_secs: 60,
            emergency_access_hours: 24,
            saml: crate::saml::SamlConfig::default(),
            agenda: mshub_agenda::AgendaConfig::default(),
        }
    }
}
