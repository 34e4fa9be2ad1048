//! The trust space (DESIGN §4): the hub's local domains, and the peer operators' domains with
//! the route and TLS policy to reach them.

use serde::{Deserialize, Serialize};

use crate::{DirectoryError, Domain, Result};

/// How a peer operator is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub host: String,
    pub port: u16,
}

impl TryFrom<&str> for Route {
    type Error = DirectoryError;
    fn try_from(s: &str) -> Result<Self> {
        let bad = |reason: &str| DirectoryError::InvalidField {
            field: "route",
            reason: format!("{s:?}: {reason}"),
        };
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| bad("expected host:port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port is a number from 1 to 65535"))?;
        Ok(Route {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// TLS with a peer is always required; the policy says how much is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsPolicy {
    /// TLS 1.2+, the peer's certificate checked against the configured CA.
    Required,
    /// As `Required`, and the peer must also present a client certificate from that CA.
    MutualTls,
}

impl TryFrom<&str> for TlsPolicy {
    type Error = DirectoryError;
    fn try_from(s: &str) -> Result<Self> {
        match s {
            "required" => Ok(TlsPolicy::Required),
            "mutual-tls" => Ok(TlsPolicy::MutualTls),
            _ => Err(DirectoryError::InvalidField {
                field: "tls policy",
                reason: format!("{s:?}: expected required or mutual-tls"),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum DomainRole {
    /// Mail for it is delivered here.
    Local,
    /// A peer operator of the trust space: mail from it is accepted, mail to it is relayed.
    Trusted {
        route: Option<Route>,
        tls: TlsPolicy,
        /// Names of the peer's client certificate that may send for this domain besides the
        /// domain itself (an operator's one certificate serving several domains). Empty: the
        /// certificate must name the domain.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        certificate_names: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEntry {
    pub domain: Domain,
    #[serde(flatten)]
    pub role: DomainRole,
}
