//! CSRF protection of the pages' forms (synchronizer token, OWASP CSRF cheat sheet): every
//! state-changing request is a POST whose form carries `_csrf`, the token of the session that
//! rendered it, compared in constant time. `SameSite=Strict` cookies are the second line.
//!
//! [`Posted`] is the one way a page handler receives a form: it yields the signed-in caller
//! and the decoded form only when the session is live and the token matches.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::frame::{self, SignedIn};
use crate::session::same_secret;
use crate::Webmail;

/// Forms are small; attachments come through the multipart reply form, which has its own limit.
const MAX_FORM: usize = 64 * 1024;

#[derive(Deserialize)]
struct Token {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// The token field every form renders.
pub fn field(token: &str) -> maud::Markup {
    maud::html! { input type="hidden" name="_csrf" value=(token); }
}

/// A checked form post: the caller and its form.
pub struct Posted<T>(pub SignedIn, pub T);

impl<T: DeserializeOwned + Send> FromRequest<Arc<Webmail>> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<Webmail>) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let who = SignedIn::from_request_parts(&mut parts, app).await?;
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, app)
            .await
            .map_err(IntoResponse::into_response)?;
        if bytes.len() > MAX_FORM {
            return Err(frame::error_page(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "Formulaire trop volumineux",
                "Le formulaire envoyé dépasse la taille autorisée.",
            ));
        }
        let token: Token = serde_urlencoded::from_bytes(&bytes).unwrap_or(Token {
            csrf: String::new(),
        });
        if !same_secret(&token.csrf, &who.session.csrf) {
            return Err(forbidden());
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            frame::error_page(
                axum::http::StatusCode::BAD_REQUEST,
                "Formulaire invalide",
                &format!("Le formulaire n'a pas pu être lu : {e}."),
            )
        })?;
        Ok(Posted(who, form))
    }
}

/// What a post with a missing or wrong token gets.
pub fn forbidden() -> Response {
    frame::error_page(
        axum::http::StatusCode::FORBIDDEN,
        "Action refusée",
        "Ce formulaire a expiré ou ne vient pas de cette page. Rechargez la page et recommencez.",
    )
}
