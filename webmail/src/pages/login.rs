//! Log in (account password, argon2id, throttled by the directory), log out, and switching to
//! a space delegated to the signed-in account.
//!
//! The login form has no session yet: its CSRF token is a random value in a `__Host-` cookie,
//! echoed by the form (double submit), which stops login CSRF. A successful login always opens
//! a new session (rotation) and drops the login cookie.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::html;
use serde::Deserialize;

use mshub_directory::{DirectoryError, Door, Ins, Lifecycle};
use mshub_store::AccountId;

use crate::csrf::Posted;
use crate::frame::{blocking, internal, page, see_other, App, Area};
use crate::session::{self, random_token, same_secret};
use crate::signin::{add_cookie, login_page, start_session_to};

#[derive(Deserialize, Default)]
pub struct Next {
    #[serde(default)]
    next: String,
}

/// Longest `next` followed; the app's own (an OAuth authorization request) are far shorter.
const MAX_NEXT: usize = 2048;

/// Where to go after login: a path of this site only, or `""` (the inbox).
///
/// `next` comes from the query or the form, so from anyone: it is followed only when it is an
/// RFC 3986 `path-absolute` with an optional query (§3.3, §3.4; no fragment, no scheme, no
/// authority) written with the characters of those grammars alone, so no space, tab, CR, LF,
/// backslash or non-ASCII character. Browsers parse `Location` with the WHATWG URL rules,
/// which drop tabs and newlines and read `\` as `/`: `/<TAB>/evil.example` or `/\evil.example`
/// would leave the site. No layer of percent-decoding may hide a control character, a
/// backslash or a `//` start either, for whatever decodes the path again along the way.
fn safe_next(next: &str) -> &str {
    if is_local_path(next) {
        next
    } else {
        ""
    }
}

fn is_local_path(next: &str) -> bool {
    if next.len() > MAX_NEXT || !next.bytes().all(is_uri_char) || !percents_are_whole(next) {
        return false;
    }
    let path = |s: &str| s.split('?').next().unwrap_or_default().to_string();
    // Raw: one leading slash, and no empty segment anywhere in the path (`/a//b` is no path
    // of this app, and `//` is where an authority would start).
    let raw_path = path(next);
    if !raw_path.starts_with('/') || raw_path.contains("//") {
        return false;
    }
    // Each decoding: no control character or backslash anywhere, no `//` or `/\` start.
    let mut layer = next.to_string();
    for _ in 0..4 {
        let decoded = match percent_decode(&layer) {
            Some(d) => d,
            None => return false,
        };
        if decoded.chars().any(|c| c.is_control() || c == '\\') {
            return false;
        }
        let decoded_path = path(&decoded);
        if !decoded_path.starts_with('/') || decoded_path.starts_with("//") {
            return false;
        }
        if decoded == layer {
            return true;
        }
        layer = decoded;
    }
    // Still encoded after four decodings: nothing of this app looks like that.
    false
}

/// RFC 3986 `pchar` (unreserved, pct-encoded, sub-delims, `:` and `@`), plus `/` and `?` of
/// paths and queries.
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'?'
        )
}

/// Every `%` starts a `%HH` (RFC 3986 §2.1).
fn percents_are_whole(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, c)| {
        *c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// One round of percent-decoding (a `%` not followed by two hex digits stays as it is);
/// `None` when the bytes decoded are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

pub async fn form(app: App, headers: HeaderMap, Query(next): Query<Next>) -> Response {
    if let Some(token) = session::cookie(&headers, session::COOKIE) {
        if app.sessions.get(token).is_some() {
            // Already signed in: straight on (a pharmacist to the prescription it scanned).
            let next = safe_next(&next.next);
            return see_other(if next.is_empty() { "/" } else { next });
        }
    }
    login_page(
        app.sso.is_some(),
        StatusCode::OK,
        None,
        "",
        safe_next(&next.next),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    /// "yes": reopen the space if it is closed (offered after a login to a closed space).
    #[serde(default)]
    reopen: String,
}

/// A closed space: say until when it can be reopened, and offer to reopen it with the
/// same credentials.
fn closed_page(login: &str, lifecycle: &Lifecycle) -> Response {
    let token = random_token();
    let until = match lifecycle {
        Lifecycle::Closed { destroy_after, .. } => Some(crate::format::date_fr(*destroy_after)),
        _ => None,
    };
    let mut r = page(
        "Espace fermé",
        None,
        Area::None,
        html! {
            @if let Some(until) = &until {
                p class="error" role="alert" {
                    "Votre espace santé est fermé. Ses données seront définitivement supprimées le "
                    (until) ". D'ici là, vous pouvez le rouvrir."
                }
                form method="post" action="/login" {
                    (crate::csrf::field(&token))
                    input type="hidden" name="reopen" value="yes";
                    label for="login" { "Identifiant (INS ou adresse de messagerie)" }
                    input type="text" id="login" name="login" value=(login) autocomplete="username" required;
                    label for="password" { "Mot de passe" }
                    input type="password" id="password" name="password" autocomplete="current-password" required;
                    p { button type="submit" { "Rouvrir mon espace et me connecter" } }
                }
            } @else {
                p class="error" role="alert" {
                    "Cet espace santé n'est pas ouvert. S'il est en attente d'activation, "
                    a href="/activation" { "activez-le avec le code reçu par courrier" } "."
                }
            }
        },
    );
    *r.status_mut() = StatusCode::FORBIDDEN;
    add_cookie(&mut r, &session::set_cookie(session::LOGIN_COOKIE, &token));
    r
}

/// A patient may type its INS instead of its address.
fn login_address(app: &crate::Webmail, login: &str) -> String {
    let login = login.trim();
    match Ins::try_from(login) {
        Ok(ins) => app.directory.patient_address(&ins).to_string(),
        Err(_) => login.to_string(),
    }
}

pub async fn submit(
    State(app): App,
    crate::frame::Peer(peer): crate::frame::Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let cookie = session::cookie(&headers, session::LOGIN_COOKIE).unwrap_or("");
    if !same_secret(cookie, &form.csrf) {
        return login_page(
            app.sso.is_some(),
            StatusCode::FORBIDDEN,
            Some("Le formulaire a expiré. Saisissez à nouveau vos identifiants."),
            &form.login,
            safe_next(&form.next),
        );
    }
    let source = peer;
    let login = login_address(&app, &form.login);
    let directory = app.directory.clone();
    let password = form.password;
    let reopen = form.reopen == "yes";
    let checked = match blocking(move || {
        if reopen {
            directory.reopen_with_password(&login, &password, mshub_store::now(), source)
        } else {
            directory.authenticate(&login, &password, source, Door::Web)
        }
    })
    .await
    {
        Ok(c) => c,
        Err(r) => return r,
    };
    let account = match checked {
        Ok(a) => a,
        Err(DirectoryError::BadCredentials) => {
            return login_page(
                app.sso.is_some(),
                StatusCode::UNAUTHORIZED,
                Some("Identifiant ou mot de passe incorrect."),
                &form.login,
                safe_next(&form.next),
            )
        }
        Err(DirectoryError::Throttled { retry_after_secs }) => {
            let mut r = login_page(
                app.sso.is_some(),
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!(
                    "Trop de tentatives de connexion. Réessayez dans {retry_after_secs} secondes."
                )),
                &form.login,
                safe_next(&form.next),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            return r;
        }
        Err(DirectoryError::Busy(_)) => {
            let mut r = login_page(
                app.sso.is_some(),
                StatusCode::SERVICE_UNAVAILABLE,
                Some("Trop de connexions en même temps. Réessayez dans quelques secondes."),
                &form.login,
                safe_next(&form.next),
            );
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(mshub_directory::hashing::RETRY_AFTER_SECS),
            );
            return r;
        }
        Err(DirectoryError::NotOpen { lifecycle, .. }) => {
            return closed_page(&form.login, &lifecycle);
        }
        Err(DirectoryError::Disabled(_)) => {
            return login_page(
                app.sso.is_some(),
                StatusCode::FORBIDDEN,
                Some("Ce compte est désactivé ou l'espace santé est fermé."),
                &form.login,
                safe_next(&form.next),
            )
        }
        Err(e) => return internal("login", &e),
    };
    let next = safe_next(&form.next);
    let mut r = start_session_to(&app, &headers, &account, "password", next);
    if r.status() == StatusCode::SEE_OTHER && !next.is_empty() {
        if let Ok(v) = HeaderValue::from_str(next) {
            r.headers_mut().insert(axum::http::header::LOCATION, v);
        }
    }
    r
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn logout(State(app): App, Posted(who, _): Posted<Empty>) -> Response {
    app.sessions.close(&who.token);
    tracing::info!(account = %who.me.id, "signed out");
    let mut r = see_other("/login");
    add_cookie(&mut r, &session::clear_cookie(session::COOKIE));
    r
}

#[derive(Deserialize)]
pub struct SpaceForm {
    space: String,
}

/// Switches to a space delegated to the signed-in account ("own": back to its own).
pub async fn switch_space(State(app): App, Posted(who, form): Posted<SpaceForm>) -> Response {
    let target = if form.space == "own" {
        who.me.id
    } else {
        let Ok(id) = form.space.parse::<u64>().map(AccountId) else {
            return crate::frame::not_found();
        };
        match app.delegations.level(id, who.me.id) {
            Ok(Some(_)) => id,
            Ok(None) => {
                return crate::frame::error_page(
                    StatusCode::FORBIDDEN,
                    "Accès refusé",
                    "Cet espace ne vous est pas (ou plus) délégué.",
                )
            }
            Err(e) => return internal("delegation", &e),
        }
    };
    app.sessions.act_for(&who.token, target);
    if target != who.me.id {
        let _ = app.store.audit(
            mshub_store::AuditEvent::new(
                who.me.address.as_str(),
                "delegation.open",
                format!("account:{target}"),
            )
            .with_detail(format!("patient:{target}")),
        );
    }
    see_other("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn after_login_only_paths_of_this_site_are_followed() {
        // The app's own: an OAuth authorization request (as the browser sent it, and as the
        // login redirect encodes it), a prescription's QR code, a message, a search.
        for ok in [
            "/",
            "/oauth/authorize?x=1",
            "/oauth/authorize?response_type=code&client_id=app&redirect_uri=https://app.example/cb&scope=documents%20measurements&state=a.b~c&code_challenge=E9Mel-_x&code_challenge_method=S256",
            "/oauth/authorize?redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=x%2By",
            "/ordonnance/0123456789ABCDEF?h=aGFzaA-_&s=c2lnbmF0dXJl",
            "/m/INBOX/3",
            "/m/Envoy%C3%A9s/3",
            "/?q=r%C3%A9sultat+sanguin",
            "/agenda?done=feed",
            "/a:b@c,d;e!f$g'h(i)j*k",
        ] {
            assert_eq!(super::safe_next(ok), ok, "{ok:?} refused");
        }
    }

    #[test]
    fn a_next_that_a_browser_could_read_as_another_site_is_dropped() {
        for hostile in [
            "",
            "evil.example",
            "//evil.example/",
            "///evil.example",
            "/\\evil.example",
            "/\\/evil.example",
            "\\\\evil.example",
            // WHATWG URL parsing drops tabs and newlines: `/<TAB>/x` is `//x`.
            "/\t/evil.example",
            "/\r\n/evil.example",
            "/\n/evil.example",
            "\t//evil.example",
            " //evil.example",
            "/ /evil.example",
            // Percent-encoded, once or twice.
            "/%09/evil.example",
            "/%0d%0a/evil.example",
            "/%2509/evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "%2F%2Fevil.example",
            "/%252F%252Fevil.example",
            "/%5Cevil.example",
            "/%5c%5cevil.example",
            "/%255Cevil.example",
            "/%25255Cevil.example",
            "/%00",
            "/%7F",
            "/%C2%85/evil.example",
            "/%FF",
            "/%",
            "/%2",
            "/%zz",
            "/a//b",
            "/a?b=%0A",
            // Non-ASCII (fullwidth solidus, no-break space): never raw.
            "/\u{ff0f}evil.example",
            "/\u{a0}/evil.example",
            "/é",
            // Schemes and fragments.
            "https://evil.example/",
            "https:evil.example",
            "javascript:alert(1)",
            "/#//evil.example",
            "/[::1]",
            "/<script>",
            "/\"",
            "/`",
        ] {
            assert_eq!(super::safe_next(hostile), "", "{hostile:?} followed");
        }
        let long = format!("/{}", "a".repeat(super::MAX_NEXT));
        assert_eq!(super::safe_next(&long), "");
        // `//evil.example` encoded five times over.
        let deep = format!("/%{}2Fevil.example", "25".repeat(4));
        assert_eq!(super::safe_next(&deep), "", "{deep} followed");
    }

    #[test]
    fn the_login_page_is_french_and_labelled() {
        let r = crate::signin::login_page(false, axum::http::StatusCode::OK, None, "", "");
        assert!(r
            .headers()
            .get_all(axum::http::header::SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-mshub-login=")));
    }
}
