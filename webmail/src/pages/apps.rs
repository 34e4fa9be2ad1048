//! Connected health apps: the catalogue's page. The catalogue (referenced apps, consent,
//! revocation) is its own part; until it lands the page says so.

use axum::response::Response;
use maud::html;

use super::{page, Area, SignedIn};

pub async fn show(who: SignedIn) -> Response {
    page(
        "Applications",
        Some(&who),
        Area::Apps,
        html! {
            p { "Le catalogue des applications de santé référencées n'est pas encore ouvert sur ce service." }
        },
    )
}
