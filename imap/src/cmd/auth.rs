//! STARTTLS, LOGIN and AUTHENTICATE PLAIN (RFC 4616, with RFC 4959 SASL-IR). Credentials are
//! refused before TLS; the directory's argon2 check runs on a blocking thread.

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite};

use mshub_directory::{DirectoryError, Door};

use super::Done;
use crate::refusal::{Refusal, Status};
use crate::session::{Ended, Flow, Session};

/// Failed logins on one connection before it is closed (the directory also throttles).
const MAX_AUTH_FAILURES: u32 = 3;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn starttls(&mut self, tag: &str) -> Done {
        if self.conn.tls {
            return Done::refused(tag, Refusal::AlreadyTls);
        }
        self.tagged(tag, Status::Ok, "Begin TLS negotiation now");
        Done::Flow(Flow::Stop(Ended::StartTls))
    }

    pub(super) async fn login(&mut self, tag: &str, user: String, password: String) -> Done {
        if !self.conn.tls {
            return Done::refused(tag, Refusal::LoginBeforeTls);
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
            return Done::refused(tag, Refusal::AuthenticateBeforeTls);
        }
        if mechanism != "PLAIN" {
            return Done::refused(tag, Refusal::MechanismUnsupported);
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
                    Ok(None) => return Done::refused(tag, Refusal::AuthResponseTooLong),
                    Err(ended) => return Done::Flow(Flow::Stop(ended)),
                }
            }
        };
        if response.trim() == "*" {
            return Done::refused(tag, Refusal::AuthCancelled);
        }
        // RFC 4959: "=" is an empty initial response.
        let decoded = if response.trim() == "=" {
            Ok(Vec::new())
        } else {
            base64::engine::general_purpose::STANDARD.decode(response.trim())
        };
        let Ok(decoded) = decoded else {
            return Done::refused(tag, Refusal::AuthInvalidBase64);
        };
        let fields: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
        let [authz, user, pass] = fields.as_slice() else {
            return Done::refused(tag, Refusal::AuthInvalidPlain);
        };
        let (Ok(authz), Ok(user), Ok(pass)) = (
            std::str::from_utf8(authz),
            std::str::from_utf8(user),
            std::str::from_utf8(pass),
        ) else {
            return Done::refused(tag, Refusal::AuthInvalidUtf8);
        };
        if !authz.is_empty() && !authz.eq_ignore_ascii_case(user) {
            return Done::refused(tag, Refusal::CannotActAsAnotherUser);
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
                    self.refuse(tag, &Refusal::AuthenticationFailed);
                    self.untagged("BYE Too many failed logins");
                    return Done::Flow(Flow::Stop(Ended::Dropped));
                }
                Done::refused(tag, Refusal::AuthenticationFailed)
            }
            Ok(Err(DirectoryError::Throttled { retry_after_secs })) => {
                Done::refused(tag, Refusal::LoginThrottled { retry_after_secs })
            }
            Ok(Err(DirectoryError::Busy(_))) => Done::refused(tag, Refusal::LoginBusy),
            Ok(Err(DirectoryError::Disabled(_))) => Done::refused(tag, Refusal::AccountDisabled),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "authentication error");
                Done::refused(tag, Refusal::AuthenticationUnavailable)
            }
            Err(e) => {
                tracing::error!(error = %e, "authentication task failed");
                Done::refused(tag, Refusal::AuthenticationUnavailable)
            }
        }
    }
}
