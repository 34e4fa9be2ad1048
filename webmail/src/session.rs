//! Signed-in browser sessions of the web inbox.
//!
//! A session is a random 256-bit token in a `__Host-` cookie (`Secure; HttpOnly;
//! SameSite=Strict; Path=/`); the server keeps only the SHA-256 of the token, so a memory dump of
//! the table does not hand out live sessions. Each session has its own CSRF token (synchronizer
//! pattern, OWASP), an idle expiry and an absolute one. A login always creates a new session
//! (rotation: a token set before login is never promoted).
//!
//! Sessions live in memory: a restart signs everyone out, which is the safe failure. Several hub
//! nodes behind a load balancer need them in the shared store (the scale-out issue).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use mshub_store::AccountId;

/// The session cookie. `__Host-` (RFC 6265bis §4.1.3.2): only set over HTTPS, for this host
/// only, path `/`.
pub const COOKIE: &str = "__Host-mshub";
/// The cookie of the login form's CSRF token, before any session exists.
pub const LOGIN_COOKIE: &str = "__Host-mshub-login";

/// Sessions kept at most; past it the oldest are dropped (memory stays bounded).
const MAX_SESSIONS: usize = 100_000;

/// A fresh random token, URL-safe (43 characters of base64url).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system generator failing is not something a request can recover from; an empty
    // token would be worse than an error, so fall back to no session at all upstream.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return String::new();
    }
    base64url(&bytes)
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn key(token: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    k
}

/// Constant-time equality of two secrets (CSRF tokens).
pub fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && {
        let mut diff = 0u8;
        for (x, y) in a.bytes().zip(b.bytes()) {
            diff |= x ^ y;
        }
        diff == 0
    }
}

/// What a request learns from its session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The account that logged in.
    pub account: AccountId,
    /// The space being looked at: the account's own, or one delegated to it.
    pub acting_for: AccountId,
    pub csrf: String,
    /// How the account logged in ("password" or "saml"), shown in the settings.
    pub method: &'static str,
    created: Instant,
    last_seen: Instant,
}

impl Session {
    /// Whether the signed-in account looks at someone else's space (a delegation).
    pub fn is_delegate(&self) -> bool {
        self.account != self.acting_for
    }
}

pub struct Sessions {
    table: Mutex<HashMap<[u8; 32], Session>>,
    /// A session ends after this long without a request…
    idle: Duration,
    /// …and in any case this long after login.
    absolute: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new(Duration::from_secs(30 * 60), Duration::from_secs(12 * 3600))
    }
}

impl Sessions {
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        Self {
            table: Mutex::default(),
            idle,
            absolute,
        }
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.idle && now.duration_since(s.created) < self.absolute
    }

    /// Opens a session for `account`; returns its token (for the cookie) and the session.
    pub fn open(&self, account: AccountId, method: &'static str) -> Option<(String, Session)> {
        let token = random_token();
        if token.is_empty() {
            return None;
        }
        let now = Instant::now();
        let session = Session {
            account,
            acting_for: account,
            csrf: random_token(),
            method,
            created: now,
            last_seen: now,
        };
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= MAX_SESSIONS {
            table.retain(|_, s| {
                now.duration_since(s.last_seen) < self.idle
                    && now.duration_since(s.created) < self.absolute
            });
            if table.len() >= MAX_SESSIONS {
                if let Some(oldest) = table
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(k, _)| *k)
                {
                    table.remove(&oldest);
                }
            }
        }
        table.insert(key(&token), session.clone());
        Some((token, session))
    }

    /// The live session of `token`, its idle clock restarted; `None` if unknown or expired.
    pub fn get(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let k = key(token);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let session = table.get_mut(&k)?;
        if !self.alive(session, now) {
            table.remove(&k);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Switches the space a session looks at (the caller checked the delegation).
    /// The session of `token` if it is alive, without counting this as activity (what a
    /// long-lived stream checks: an open tab does not keep an idle session alive).
    pub fn peek(&self, token: &str) -> Option<Session> {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table
            .get(&key(token))
            .filter(|s| self.alive(s, Instant::now()))
            .cloned()
    }

    pub fn act_for(&self, token: &str, space: AccountId) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = table.get_mut(&key(token)) {
            s.acting_for = space;
        }
    }

    pub fn close(&self, token: &str) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key(token));
    }

    /// Ends every session of an account, or looking at its space (password change, closing,
    /// a delegation revoked).
    pub fn close_all(&self, account: AccountId) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.account != account && s.acting_for != account);
    }

    /// Ends the sessions of `delegate` looking at `space`.
    pub fn close_delegated(&self, space: AccountId, delegate: AccountId) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| !(s.account == delegate && s.acting_for == space));
    }
}

/// `Set-Cookie` for a session token (RFC 6265 §4.1): strict, and no Max-Age, so it dies with
/// the browser as well as on the server.
pub fn set_cookie(name: &str, token: &str) -> String {
    format!("{name}={token}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// `Set-Cookie` that removes a cookie.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The value of cookie `name` in a `Cookie:` header (RFC 6265 §5.4).
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_url_safe() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn a_session_is_found_by_its_token_only_and_closes() {
        let sessions = Sessions::default();
        let (token, s) = sessions.open(AccountId(7), "password").unwrap();
        assert_eq!(sessions.get(&token).unwrap().account, AccountId(7));
        assert!(sessions.get("forged").is_none());
        assert_eq!(sessions.get(&token).unwrap().csrf, s.csrf);
        sessions.close(&token);
        assert!(sessions.get(&token).is_none());
    }

    #[test]
    fn closing_all_sessions_of_an_account_spares_others() {
        let sessions = Sessions::default();
        let (a, _) = sessions.open(AccountId(1), "password").unwrap();
        let (b, _) = sessions.open(AccountId(2), "password").unwrap();
        sessions.act_for(&b, AccountId(1));
        sessions.close_all(AccountId(1));
        assert!(sessions.get(&a).is_none());
        assert!(
            sessions.get(&b).is_none(),
            "a delegate looking at the space too"
        );
        let (c, _) = sessions.open(AccountId(2), "password").unwrap();
        sessions.close_all(AccountId(1));
        assert!(sessions.get(&c).is_some());
    }

    #[test]
    fn idle_sessions_expire() {
        let sessions = Sessions::new(Duration::from_millis(30), Duration::from_secs(60));
        let (token, _) = sessions.open(AccountId(1), "password").unwrap();
        assert!(sessions.get(&token).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(sessions.get(&token).is_none());
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_millis(30));
        let (token, _) = sessions.open(AccountId(1), "password").unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            sessions.get(&token).is_none(),
            "absolute expiry despite activity"
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", ""));
    }

    #[test]
    fn cookies_are_read_among_others() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; __Host-mshub=tok; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(set_cookie(COOKIE, "t").contains("SameSite=Strict"));
    }
}
