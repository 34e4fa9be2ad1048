//! The professionals' guard: HTTP Basic (RFC 7617) over TLS, checked by the directory with
//! its login throttle, through the mail door (application passwords are accepted, like for a
//! mail client). Only health professionals pass.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use mshub_directory::{Account, AccountKind, DirectoryError, Door};

use crate::api::ApiError;
use crate::Webmail;

/// The authenticated caller of a route behind [`require_professional`]: a professional's
/// account, put in the request's extensions by the guard.
#[derive(Clone, Debug)]
pub struct Professional(pub Account);

/// `Authorization: Basic base64(login ":" password)`, RFC 7617 §2.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (login, password) = decoded.split_once(':')?;
    Some((login.to_string(), password.to_string()))
}

pub async fn require_professional(
    State(app): State<Arc<Webmail>>,
    mut req: Request,
    next: Next,
) -> Response {
    // The server puts the peer in every request; in-process tests may not.
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let Some((login, password)) = basic_credentials(req.headers()) else {
        return ApiError::unauthorized("HTTP Basic credentials are required").into_response();
    };
    let directory = app.directory.clone();
    // argon2 takes tens of milliseconds of CPU: not on the async workers.
    let checked = tokio::task::spawn_blocking(move || {
        directory.authenticate(&login, &password, source, Door::Mail)
    })
    .await;
    let account = match checked {
        Ok(Ok(account)) => account,
        Ok(Err(DirectoryError::BadCredentials)) => {
            return ApiError::unauthorized("wrong login or password").into_response()
        }
        Ok(Err(DirectoryError::Throttled { retry_after_secs })) => {
            return ApiError::throttled(retry_after_secs).into_response()
        }
        Ok(Err(DirectoryError::Busy(_))) => {
            return ApiError::busy(mshub_directory::hashing::RETRY_AFTER_SECS).into_response()
        }
        Ok(Err(DirectoryError::Disabled(_))) => {
            return ApiError::forbidden("account-disabled", "this account is disabled".into())
                .into_response()
        }
        Ok(Err(e)) => return ApiError::internal("authentication", &e).into_response(),
        Err(e) => return ApiError::internal("authentication task", &e).into_response(),
    };
    if !matches!(account.kind, AccountKind::Professional { .. }) {
        return ApiError::forbidden(
            "not-a-professional",
            "this API is for health professionals".into(),
        )
        .into_response();
    }
    req.extensions_mut().insert(Professional(account));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_decoded_and_split_at_the_first_colon() {
        // RFC 7617 §2: "Aladdin:open sesame"; a password may itself hold colons.
        assert_eq!(
            basic_credentials(&with("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")),
            Some(("Aladdin".into(), "open sesame".into()))
        );
        assert_eq!(
            basic_credentials(&with("basic YTpiOmM=")),
            Some(("a".into(), "b:c".into()))
        );
    }

    #[test]
    fn other_schemes_and_garbage_are_no_credentials() {
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
        assert_eq!(basic_credentials(&with("Bearer abc")), None);
        assert_eq!(basic_credentials(&with("Basic !!!")), None);
        // No colon.
        assert_eq!(basic_credentials(&with("Basic YWJj")), None);
    }
}
