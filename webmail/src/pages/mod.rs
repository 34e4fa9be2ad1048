//! The patient's web inbox: server-rendered HTML (maud), in French, that works without
//! JavaScript, phone first. One module per area, each with its handlers, forms and pieces;
//! every route of the pages is declared in [`router`].
//!
//! Guards: [`crate::frame::SignedIn`] (an extractor) turns away requests without a live
//! session, and [`crate::csrf::Posted`] is the only way a handler receives a form. Every page
//! is sent by [`crate::frame::page`], which sets the pages' Content-Security-Policy: no inline
//! script or style, nothing from elsewhere. No page imports another: the frame, formatting,
//! downloads and the vault's reads they share are modules of their own.

// Page helpers fail with the page that explains the failure: a `Response` (128 bytes) as the
// error is what axum handlers return anyway; boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

pub mod agenda;
pub mod appointment;
pub mod apps;
pub mod assets;
pub mod care;
pub mod document_add;
pub mod documents;
pub mod events;
pub mod imaging;
mod lifecycle;
pub mod login;
pub mod medical_profile;
pub mod messages;
pub mod prescriptions;
pub mod profile;
pub mod reply;
pub mod settings;
pub mod sso;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::Webmail;

pub fn router() -> Router<Arc<Webmail>> {
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route(
            "/activation",
            get(lifecycle::activation_form).post(lifecycle::activate),
        )
        .route(
            "/opposition",
            get(lifecycle::opposition_form).post(lifecycle::oppose),
        )
        .route("/saml/metadata", get(sso::metadata))
        .route("/saml/login", get(sso::login))
        .route("/saml/acs", post(sso::acs))
        .route("/logout", post(login::logout))
        .route("/space", post(login::switch_space))
        .route("/", get(messages::inbox))
        .route("/sent", get(messages::sent))
        .route("/events", get(events::events))
        .route("/m/{mailbox}/{uid}", get(messages::read))
        .route("/m/{mailbox}/{uid}/part/{index}", get(messages::attachment))
        .route(
            "/m/{mailbox}/{uid}/reply",
            post(reply::reply).layer(DefaultBodyLimit::max(reply::MAX_REPLY + 64 * 1024)),
        )
        .route("/documents", get(documents::list))
        .route("/documents/history", get(documents::history))
        .route(
            "/documents/ajouter",
            get(document_add::show)
                .post(document_add::submit)
                .layer(DefaultBodyLimit::max(document_add::MAX_BODY)),
        )
        .route("/documents/acces", get(care::show))
        .route("/documents/acces/{action}", post(care::act))
        .route("/documents/{id}", get(documents::view))
        .route("/documents/{id}/file", get(documents::file))
        .route("/documents/{id}/mask", post(documents::mask))
        .route("/documents/{id}/unmask", post(documents::unmask))
        .route("/documents/{id}/delete", post(documents::delete))
        .route("/documents/{id}/classify", post(documents::classify))
        .route("/imaging/{id}", get(imaging::study))
        .route("/imaging/{id}/series/{series}", get(imaging::viewer))
        .route("/imaging/{id}/series/{series}/image", get(imaging::image))
        .route(
            "/imaging/{id}/series/{series}/thumbnail",
            get(imaging::thumbnail),
        )
        .route(
            "/imaging/{id}/series/{series}/files/{file}",
            get(imaging::file),
        )
        .route("/settings", get(settings::show))
        .route("/settings/password", post(settings::password))
        .route("/settings/app-passwords", post(settings::add_app_password))
        .route(
            "/settings/app-passwords/revoke",
            post(settings::revoke_app_password),
        )
        .route("/settings/delegations", post(settings::delegate))
        .route(
            "/settings/delegations/revoke",
            post(settings::revoke_delegation),
        )
        .route("/settings/notifications", post(settings::notifications))
        .route("/settings/export", post(settings::export))
        .route("/settings/close", post(settings::close))
        .route("/agenda", get(agenda::show))
        .route("/agenda/respond", post(agenda::respond))
        .route("/agenda/proposition", post(agenda::proposal))
        .route(
            "/agenda/ajouter",
            get(appointment::add_form).post(appointment::add),
        )
        .route(
            "/agenda/modifier",
            get(appointment::edit_form).post(appointment::edit),
        )
        .route(
            "/agenda/supprimer",
            get(appointment::delete_form).post(appointment::delete),
        )
        .route("/agenda/prevention", post(agenda::prevention_done))
        .route("/agenda/feed/renew", post(agenda::renew_feed))
        .route("/agenda/feed/{file}", get(agenda::feed))
        .route("/apps", get(apps::show))
        .route("/apps/{id}", get(apps::detail))
        .route("/apps/{id}/revoke", post(apps::revoke))
        .route("/profile", get(profile::show))
        .route("/profile/medical", get(medical_profile::show))
        .route(
            "/profile/medical/directives",
            post(medical_profile::directives),
        )
        .route("/profile/medical/restore", post(medical_profile::restore))
        .route(
            "/profile/medical/{section}/{action}",
            post(medical_profile::section_action),
        )
        .route("/ordonnances", get(prescriptions::list))
        .route("/ordonnances/{id}", get(prescriptions::detail))
        .route("/ordonnances/{id}/pdf", get(prescriptions::pdf))
        .route(
            "/ordonnance/{id}",
            get(prescriptions::scan).post(prescriptions::dispense),
        )
        .route(
            "/oauth/authorize",
            get(crate::oauth::authorize).post(crate::oauth::consent),
        )
        .route("/oauth/token", post(crate::oauth::token))
}
