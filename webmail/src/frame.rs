//! The frame every page shares: the [`SignedIn`] guard (an extractor that turns away requests
//! without a live session), the [`page`] wrapper that sets the pages' Content-Security-Policy,
//! the error pages, and the small pieces every handler uses ([`blocking`], [`see_other`]).
//! No page imports another: what two pages share lives here or in a module of its own.

// Page helpers fail with the page that explains the failure: a `Response` (128 bytes) as the
// error is what axum handlers return anyway; boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use mshub_directory::Account;

use crate::delegation::Level;
use crate::session::{self, Session};
use crate::Webmail;

/// The pages' policy (CSP Level 3): own scripts and styles only, no inline code, no frames,
/// forms post only here.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A live session, the account signed in, and the space it looks at (its own, or a
/// delegated one: then `level` says what it may do there).
#[derive(Clone)]
pub struct SignedIn {
    pub token: String,
    pub session: Session,
    pub me: Account,
    pub space: Account,
    pub level: Option<Level>,
}

impl SignedIn {
    /// May answer professionals in this space.
    pub fn may_reply(&self) -> bool {
        self.level.is_none_or(Level::may_reply)
    }

    /// May change the space itself (documents, settings): the owner only.
    pub fn is_owner(&self) -> bool {
        self.level.is_none()
    }

    pub fn csrf(&self) -> Markup {
        crate::csrf::field(&self.session.csrf)
    }

    /// What a delegate gets when it tries what only the owner may do.
    pub fn owner_only(&self) -> Result<(), Response> {
        if self.is_owner() {
            Ok(())
        } else {
            Err(error_page(
                StatusCode::FORBIDDEN,
                "Réservé au titulaire",
                "Cette action est réservée au titulaire de l'espace santé.",
            ))
        }
    }
}

impl FromRequestParts<Arc<Webmail>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<Webmail>) -> Result<Self, Response> {
        // A page asked for without a session comes back after login (GET only: a form post
        // is never replayed).
        let wanted = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| parts.method == axum::http::Method::GET && p != "/" && p != "/events");
        let to_login = || match &wanted {
            Some(p) => see_other(&format!(
                "/login?{}",
                serde_urlencoded::to_string([("next", p.as_str())]).unwrap_or_default()
            )),
            None => see_other("/login"),
        };
        let Some(token) = session::cookie(&parts.headers, session::COOKIE) else {
            return Err(to_login());
        };
        let Some(session) = app.sessions.get(token) else {
            return Err(to_login());
        };
        let token = token.to_string();
        let load = |id| {
            app.directory
                .account(id)
                .map_err(|e| internal("session account", &e))
        };
        let Some(me) = load(session.account)?.filter(|a| a.is_usable()) else {
            app.sessions.close(&token);
            return Err(to_login());
        };
        // A professional signs in only to check a prescription (`prescriptions::Counter`): its
        // session opens no patient page, and may only sign out.
        if !me.kind.is_patient() && parts.uri.path() != "/logout" {
            return Err(error_page(
                StatusCode::FORBIDDEN,
                "Réservé aux patients",
                "Ces pages sont celles de l'espace santé des patients. Les professionnels de \
                 santé n'y ouvrent que les ordonnances qu'on leur présente (QR code).",
            ));
        }
        let (space, level) = if session.is_delegate() {
            let level = app
                .delegations
                .level(session.acting_for, me.id)
                .map_err(|e| internal("delegation", &e))?;
            match (load(session.acting_for)?, level) {
                (Some(space), Some(level)) if space.is_usable() => (space, Some(level)),
                // Revoked or closed meanwhile: back to the account's own space.
                _ => {
                    app.sessions.act_for(&token, me.id);
                    return Err(see_other("/"));
                }
            }
        } else {
            (me.clone(), None)
        };
        Ok(SignedIn {
            token,
            session,
            me,
            space,
            level,
        })
    }
}

/// The areas of the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Messages,
    Documents,
    Agenda,
    Prescriptions,
    Apps,
    Profile,
    Settings,
    None,
}

const NAV: [(Area, &str, &str); 7] = [
    (Area::Messages, "/", "Messages"),
    (Area::Documents, "/documents", "Documents"),
    (Area::Agenda, "/agenda", "Agenda"),
    (Area::Prescriptions, "/ordonnances", "Ordonnances"),
    (Area::Apps, "/apps", "Applications"),
    (Area::Profile, "/profile", "Profil"),
    (Area::Settings, "/settings", "Paramètres"),
];

/// A whole page: the frame, the navigation when signed in, and `content`.
pub fn page(title: &str, who: Option<&SignedIn>, area: Area, content: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Mon espace santé" }
                link rel="stylesheet" href="/static/app.css";
                link rel="icon" href="/static/icon.svg" type="image/svg+xml";
                script src="/static/live.js" defer {}
            }
            body {
                a class="skip" href="#contenu" { "Aller au contenu" }
                header class="top" {
                    p class="brand" { "Mon espace santé" }
                    @if let Some(who) = who {
                        nav aria-label="Navigation principale" {
                            ul {
                                @for (a, href, label) in NAV {
                                    li {
                                        @if a == area {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form method="post" action="/logout" class="logout" {
                            (who.csrf())
                            button type="submit" { "Se déconnecter" }
                        }
                    }
                }
                @if let Some(who) = who {
                    @if let Some(level) = who.level {
                        div class="delegation" role="note" {
                            p {
                                "Vous consultez l'espace de " strong { (who.space.kind.display_name()) }
                                " (délégation : " (level.label_fr()) ")."
                            }
                            form method="post" action="/space" {
                                (who.csrf())
                                input type="hidden" name="space" value="own";
                                button type="submit" { "Revenir à mon espace" }
                            }
                        }
                    }
                }
                main id="contenu" tabindex="-1" {
                    h1 { (title) }
                    (content)
                }
            }
        }
    };
    let mut response = markup.into_response();
    response
        .headers_mut()
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    response
}

/// A page that explains a failure, with its status.
pub fn error_page(status: StatusCode, title: &str, explanation: &str) -> Response {
    let mut r = page(
        title,
        None,
        Area::None,
        html! {
            p class="error" role="alert" { (explanation) }
            p { a href="/" { "Retour à l'accueil" } }
        },
    );
    *r.status_mut() = status;
    r
}

pub fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Page introuvable",
        "Cette page n'existe pas ou n'est plus disponible.",
    )
}

/// Logged with its detail (ids, never patient data); the patient gets a plain apology.
pub fn internal(what: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "{what} failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Erreur du service",
        "Une erreur est survenue de notre côté ; elle a été enregistrée. Réessayez dans un instant.",
    )
}

/// 303 See Other: the answer to a form post (POST/redirect/GET).
pub fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// Runs blocking store, directory or crypto work off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| internal("blocking task", &e))
}

/// The client's address, as the server recorded it (unspecified in in-process tests): what
/// login throttling counts per source.
pub struct Peer(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| {
                    c.0.ip()
                }),
        ))
    }
}

/// `State` for handlers, re-exported so the page modules read alike.
pub type App = State<Arc<Webmail>>;
