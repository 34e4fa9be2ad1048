//! Strict response headers, set on every response of the service.
//!
//! The API's Content-Security-Policy forbids everything (`default-src 'none'`); a page may set
//! its own (stricter or page-specific) policy and cache rule, which are then left as they are.
//!
//! Also here: the rate limit of form posts ([`PostLimits`]), per session or, before login, per
//! client address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
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

/// Limits POSTs: by session cookie when there is one, else by client address.
pub async fn limit_posts(
    State(limits): State<Arc<PostLimits>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let caller = match crate::session::cookie(req.headers(), crate::session::COOKIE) {
        Some(token) => [b"s:".as_slice(), token.as_bytes()].concat(),
        None => {
            let ip = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
            format!("a:{ip}").into_bytes()
        }
    };
    match limits.take(caller, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let mut r = crate::pages::error_page(
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
