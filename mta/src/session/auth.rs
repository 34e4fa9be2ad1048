//! AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN, only over TLS.

use base64::Engine as _;
use smtp_proto::request::receiver::LineReceiver;
use tokio::io::{AsyncRead, AsyncWrite};

use mshub_directory::{DirectoryError, Door as LoginDoor};

use super::{Flow, Session, State};
use crate::codec::Reply;
use crate::refusal::Refusal;

pub(super) enum AuthState {
    Plain,
    LoginUser,
    LoginPassword { user: String },
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn decode(text: &str) -> Option<String> {
    let text = text.trim();
    if text == "=" {
        return Some(String::new());
    }
    B64.decode(text)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// RFC 4616 §2: `[authzid] NUL authcid NUL passwd`.
fn split_plain(message: &str) -> Option<(String, String)> {
    let mut parts = message.split('\0');
    let authzid = parts.next()?;
    let authcid = parts.next()?;
    let password = parts.next()?;
    if parts.next().is_some() || authcid.is_empty() {
        return None;
    }
    // Acting as another identity is not offered.
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(authcid) {
        return None;
    }
    Some((authcid.to_string(), password.to_string()))
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn auth(&mut self, mechanism: u64, initial: String) -> Flow {
        if !self.conn.tls {
            return self.refuse(Refusal::AuthNeedsTls);
        }
        if self.account.is_some() {
            return self.refuse(Refusal::AuthAlreadyDone);
        }
        if self.tx.is_some() {
            return self.refuse(Refusal::NestedMail);
        }
        match mechanism {
            smtp_proto::AUTH_PLAIN if initial.is_empty() => {
                self.reply(Reply::plain(334, vec!["".into()]));
                self.state = State::Auth(AuthState::Plain, LineReceiver::new(()));
                Flow::Continue
            }
            smtp_proto::AUTH_PLAIN => self.finish_plain(&initial).await,
            smtp_proto::AUTH_LOGIN if initial.is_empty() => {
                self.reply(Reply::plain(334, vec!["VXNlcm5hbWU6".into()]));
                self.state = State::Auth(AuthState::LoginUser, LineReceiver::new(()));
                Flow::Continue
            }
            smtp_proto::AUTH_LOGIN => self.login_user(&initial),
            _ => self.refuse(Refusal::AuthMechanismUnsupported),
        }
    }

    /// A continuation line of an AUTH exchange; `None` while the line is incomplete.
    pub(super) async fn auth_line(&mut self, bytes: &mut std::slice::Iter<'_, u8>) -> Option<Flow> {
        let State::Auth(_, line) = &mut self.state else {
            return Some(Flow::Continue);
        };
        if !line.ingest(bytes) {
            return None;
        }
        let text = String::from_utf8_lossy(&line.buf).into_owned();
        let State::Auth(state, _) = std::mem::replace(&mut self.state, State::Command) else {
            return Some(Flow::Continue);
        };
        if text.trim() == "*" {
            return Some(self.refuse(Refusal::AuthCancelled));
        }
        Some(match state {
            AuthState::Plain => self.finish_plain(&text).await,
            AuthState::LoginUser => self.login_user(&text),
            AuthState::LoginPassword { user } => match decode(&text) {
                Some(password) => self.verify(user, password).await,
                None => self.refuse(Refusal::AuthMalformed),
            },
        })
    }

    /// LOGIN's user name (base64) is in: ask for the password ("Password:").
    fn login_user(&mut self, response: &str) -> Flow {
        match decode(response) {
            Some(user) => {
                self.reply(Reply::plain(334, vec!["UGFzc3dvcmQ6".into()]));
                self.state = State::Auth(AuthState::LoginPassword { user }, LineReceiver::new(()));
                Flow::Continue
            }
            None => self.refuse(Refusal::AuthMalformed),
        }
    }

    async fn finish_plain(&mut self, response: &str) -> Flow {
        match decode(response).as_deref().and_then(split_plain) {
            Some((user, password)) => self.verify(user, password).await,
            None => self.refuse(Refusal::AuthMalformed),
        }
    }

    async fn verify(&mut self, user: String, password: String) -> Flow {
        let directory = self.mta.directory.clone();
        let source = self.conn.peer.ip();
        // argon2 takes tens of milliseconds: off the async workers.
        let result = tokio::task::spawn_blocking(move || {
            directory.authenticate(&user, &password, source, LoginDoor::Mail)
        })
        .await;
        let refusal = match result {
            Ok(Ok(account)) => {
                tracing::info!(account = %account.id, "authenticated");
                self.account = Some(account);
                self.reply(Reply::new(235, "2.7.0", "Authentication successful"));
                return Flow::Continue;
            }
            Ok(Err(DirectoryError::Throttled { retry_after_secs })) => {
                Refusal::AuthThrottled { retry_after_secs }
            }
            Ok(Err(DirectoryError::Busy(_))) => Refusal::AuthBusy,
            Ok(Err(DirectoryError::Disabled(_))) => Refusal::AuthAccountDisabled,
            Ok(Err(DirectoryError::BadCredentials)) => Refusal::AuthFailed,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "authentication backend failed");
                Refusal::StorageFailed
            }
            Err(_) => Refusal::StorageFailed,
        };
        self.auth_failures += 1;
        let flow = self.refuse(refusal);
        if self.auth_failures >= self.mta.config.max_auth_failures {
            self.reply(Reply::new(
                421,
                "4.7.0",
                "Too many failed authentications, closing",
            ));
            return Flow::Stop(super::Ended::Dropped);
        }
        flow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_are_split_per_rfc_4616() {
        assert_eq!(
            split_plain("\0user@x.test\0pw"),
            Some(("user@x.test".into(), "pw".into()))
        );
        assert_eq!(
            split_plain("user@x.test\0user@x.test\0pw"),
            Some(("user@x.test".into(), "pw".into()))
        );
        assert_eq!(split_plain("admin@x.test\0user@x.test\0pw"), None);
        assert_eq!(split_plain("no-nuls"), None);
        assert_eq!(split_plain("\0\0pw"), None);
    }

    #[test]
    fn bad_base64_is_rejected() {
        assert_eq!(decode("%%%"), None);
        assert_eq!(decode("="), Some(String::new()));
        assert_eq!(decode("dXNlcg=="), Some("user".into()));
    }
}
