//! The patient's agenda: appointments from the professionals' invitations, reminders, the
//! private calendar feed. Filled by the agenda part.

use axum::response::Response;
use maud::html;

use mshub_directory::Account;

use super::{page, Area, SignedIn};
use crate::export::Extra;
use crate::Webmail;

pub async fn show(who: SignedIn) -> Response {
    page(
        "Agenda",
        Some(&who),
        Area::Agenda,
        html! {
            p { "Aucun rendez-vous pour le moment." }
        },
    )
}

/// The agenda's files in the patient's export.
pub fn export_files(_app: &Webmail, _patient: &Account) -> Vec<Extra> {
    Vec::new()
}
