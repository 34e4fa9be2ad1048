//! STARTTLS, LOGIN and AUTHENTICATE PLAIN (RFC 4616, with RFC 4959 SASL-IR). Credentials are
//! refused before TLS; the directory's argon2 check runs on a blocking thread.

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite};

use mshub_directory::{DirectoryError, Door};

use super::Done;
use crate::session::{Ended, Flow, Session};

/// Failed logins on one connection before it is closed (the directory also throttles).
const MAX_AUTH_FAILURES: u32 = 3;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn starttls(&mut self, tag: &str) -> Done {
        if self.conn.tls {
            return Done::Reply {
                tag: tag.into(),
                status: "BAD",
                text: "TLS is already active".into(),
            };
        }
        self.tagged(tag, "OK", "Begin TLS negotiation now");
        Done::Flow(Flow::Stop(Ended::StartTls))
    }

    pub(super) async fn login(&mut self, tag: &str, user: String, password: String) -> Done {
        if !self.conn.tls {
            return Done::no(tag, "[PRIVACYREQUIRED] LOGIN is disabled before STARTTLS");
        }
        self.check_credentials(tag, user, password).await
    }

    pub(super) async fn authenticate(
        &mut self,
        tag: &str,
        mechanism: String,
        initial: Option<String>,
    ) -> Done {
        if !self.conn.tls {
            return Done::no(
                tag,
                "[PRIVACYREQUIRED] Authentication is disabled before STARTTLS",
            );
        }
        if mechanism != "PLAIN" {
            return Done::no(tag, "[CANNOT] Unsupported mechanism (AUTH=PLAIN only)");
        }
        let response = match initial {
            Some(r) => r,
            None => {
                self.continuation("");
                if self.flush().await.is_err() {
                    return Done::Flow(Flow::Stop(Ended::Closed));
                }
                match self.read_line().await {
                    Ok(Some(line)) => String::from_utf8_lossy(&line).into_owned(),
                    Ok(None) => return bad(tag, "Authentication response too long"),
                    Err(ended) => return Done::Flow(Flow::Stop(ended)),
                }
            }
        };
        if response.trim() == "*" {
            return bad(tag, "Authentication cancelled");
        }
        // RFC 4959: "=" is an empty initial response.
        let decoded = if response.trim() == "=" {
            Ok(Vec::new())
        } else {
            base64::engine::general_purpose::STANDARD.decode(response.trim())
        };
        let Ok(decoded) = decoded else {
            return bad(tag, "Invalid base64 in authentication response");
        };
        let fields: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
        let [authz, user, pass] = fields.as_slice() else {
            return bad(tag, "Invalid PLAIN message");
        };
        let (Ok(authz), Ok(user), Ok(pass)) = (
            std::str::from_utf8(authz),
            std::str::from_utf8(user),
            std::str::from_utf8(pass),
        ) else {
            return bad(tag, "Invalid UTF-8 in PLAIN message");
        };
        if !authz.is_empty() && !authz.eq_ignore_ascii_case(user) {
            return Done::no(tag, "[AUTHORIZATIONFAILED] Cannot act as another user");
        }
        self.check_credentials(tag, user.to_string(), pass.to_string())
            .await
    }

    async fn check_credentials(&mut self, tag: &str, user: String, password: String) -> Done {
        let directory = self.imap.directory.clone();
        let source = self.conn.peer.ip();
        let result = tokio::task::spawn_blocking(move || {
            directory.authenticate(&user, &password, source, Door::Mail)
        })
        .await;
        match result {
            Ok(Ok(account)) => {
                // The id, not the address: a patient's address is their INS (patient data).
                tracing::info!(account = %account.id, "logged in");
                self.account = Some(account);
                let caps = self.capabilities();
                Done::ok(tag, format!("[CAPABILITY {caps}] Logged in"))
            }
            Ok(Err(DirectoryError::BadCredentials)) => {
                self.auth_failures += 1;
                if self.auth_failures >= MAX_AUTH_FAILURES {
                    self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Invalid credentials");
                    self.untagged("BYE Too many failed logins");
                    return Done::Flow(Flow::Stop(Ended::Dropped));
                }
                Done::no(tag, "[AUTHENTICATIONFAILED] Invalid credentials")
            }
            Ok(Err(DirectoryError::Throttled { retry_after_secs })) => Done::no(
                tag,
                format!("[UNAVAILABLE] Too many failed logins, try again in {retry_after_secs} s"),
            ),
            // RFC 5530 §3: UNAVAILABLE is temporary; nothing was checked, the client may retry.
            Ok(Err(DirectoryError::Busy(_))) => Done::no(
                tag,
                "[UNAVAILABLE] Too many logins at once, try again in a few seconds",
            ),
            Ok(Err(DirectoryError::Disabled(_))) => {
                Done::no(tag, "[CONTACTADMIN] This account is disabled")
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "authentication error");
                Done::no(
                    tag,
                    "[UNAVAILABLE] Authentication is unavailable, try again later",
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "authentication task failed");
                Done::no(
                    tag,
                    "[UNAVAILABLE] Authentication is unavailable, try again later",
                )
            }
        }
    }
}

pub(super) fn bad(tag: &str, text: &str) -> Done {
    Done::Reply {
        tag: tag.into(),
        status: "BAD",
        text: text.into(),
    }
}
