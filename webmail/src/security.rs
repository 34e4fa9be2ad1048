//! Strict response headers, set on every response of the service.
//!
//! The API's Content-Security-Policy forbids everything (`default-src 'none'`); a page may set
//! its own (stricter or page-specific) policy and cache rule, which are then left as they are.
//!
//! Also here: the rate limit of form posts ([`PostLimits`]), per signed-in account or, without
//! a live session, per client address ([`source_key`]). A session cookie counts only once the
//! session table knows it: a made-up cookie value is no caller of its own, or every post could
//! bring a fresh one and a fresh bucket.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;

/// The policy of responses that set none: nothing may load, nothing may frame.
pub const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

pub async fn headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    // Two years: the service is HTTPS only.
    h.insert(
        STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=63072000; includeSubDomains"),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        h.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        );
    }
    // Health data must not stay in shared or browser caches.
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A token bucket per caller: `per_minute` posts a minute, bursts of up to as many.
pub struct PostLimits {
    per_minute: u32,
    buckets: Mutex<HashMap<Vec<u8>, (f64, Instant)>>,
}

/// Callers tracked at most; past it the table starts over (an attacker cycling addresses
/// gains a fresh bucket, which the login throttle backs up).
const MAX_CALLERS: usize = 100_000;

impl PostLimits {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for `caller`; `Err(seconds to wait)` when its bucket is empty.
    pub fn take(&self, caller: Vec<u8>, now: Instant) -> Result<(), u64> {
        let rate = f64::from(self.per_minute) / 60.0;
        let burst = f64::from(self.per_minute);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(&caller) {
            buckets.clear();
        }
        let (tokens, last) = buckets.entry(caller).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil() as u64)
        }
    }
}

/// The address a client is counted under: an IPv4 address as it is (an IPv4-mapped IPv6 one
/// as its IPv4 address), an IPv6 address by its /64, the smallest prefix a site is given
/// (RFC 6177): one subscriber picks any address inside it at will.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

/// Whom a post is counted against: the account of a live session, else the client address.
/// The cookie is looked up in the session table first; a value that maps to no live session
/// is the address's post like any other.
fn caller(sessions: &crate::session::Sessions, headers: &HeaderMap, peer: IpAddr) -> Vec<u8> {
    let account = crate::session::cookie(headers, crate::session::COOKIE)
        .and_then(|token| sessions.get(token))
        .map(|session| session.account);
    match account {
        Some(account) => format!("u:{account}").into_bytes(),
        None => format!("a:{}", source_key(peer)).into_bytes(),
    }
}

/// Limits POSTs: by signed-in account when the session is live, else by client address.
pub async fn limit_posts(
    State(app): State<Arc<crate::Webmail>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let caller = caller(&app.sessions, req.headers(), peer);
    match app.post_limits.take(caller, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let mut r = crate::frame::error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Trop de demandes",
                &format!("Trop d'envois en peu de temps. Réessayez dans {wait} secondes."),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_str(&format!("{}={value}", crate::session::COOKIE)).unwrap(),
        );
        h
    }

    #[test]
    fn a_made_up_session_cookie_counts_as_its_address() {
        let sessions = crate::session::Sessions::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let bare = caller(&sessions, &HeaderMap::new(), ip);
        assert_eq!(bare, b"a:192.0.2.7");
        for forged in ["forged-1", "forged-2", ""] {
            assert_eq!(caller(&sessions, &with_cookie(forged), ip), bare);
        }
        let (token, _) = sessions
            .open(mshub_store::AccountId(42), "password")
            .unwrap();
        let signed_in = caller(&sessions, &with_cookie(&token), ip);
        assert_eq!(signed_in, b"u:42".to_vec(), "a live session is its account");
        let (again, _) = sessions
            .open(mshub_store::AccountId(42), "password")
            .unwrap();
        assert_eq!(
            caller(
                &sessions,
                &with_cookie(&again),
                "198.51.100.1".parse().unwrap()
            ),
            signed_in,
            "a second session of the account shares its bucket"
        );
        sessions.close(&token);
        assert_eq!(caller(&sessions, &with_cookie(&token), ip), bare);
    }

    #[test]
    fn the_posts_of_forged_cookies_share_one_bucket() {
        let sessions = crate::session::Sessions::default();
        let limits = PostLimits::new(5);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let t0 = Instant::now();
        let refused = (0..20)
            .filter(|i| {
                let who = caller(&sessions, &with_cookie(&format!("forged-{i}")), ip);
                limits.take(who, t0).is_err()
            })
            .count();
        assert_eq!(refused, 15);
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let key = |s: &str| source_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_eq!(
            key("2001:db8:1:2::1"),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_eq!(key("192.0.2.7"), "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limits = PostLimits::new(60);
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(limits.take(b"a".to_vec(), t0).is_ok());
        }
        assert_eq!(limits.take(b"a".to_vec(), t0), Err(1));
        assert!(limits.take(b"b".to_vec(), t0).is_ok(), "callers are apart");
        assert!(limits
            .take(b"a".to_vec(), t0 + Duration::from_secs(1))
            .is_ok());
    }
}
