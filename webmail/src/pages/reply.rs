//! The patient's reply to a professional (a form with attachments, multipart). The rule "a
//! patient answers, never starts" is the MTA's: a reply goes through
//! [`mshub_mta::Mta::submit`], which refuses what the page should not have offered anyway.

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use mshub_store::{MailboxId, Uid};

use crate::frame::{blocking, error_page, internal, see_other, App, SignedIn};
use crate::mailbox_access::owned;
use crate::refusal::refusal_fr;
use crate::session::same_secret;
use crate::summary::Summary;

/// A reply with its attachments, at most (the MTA's own limit applies too).
pub const MAX_REPLY: usize = 20 * 1024 * 1024;

/// What the reply form posted.
struct ReplyForm {
    csrf: String,
    body: String,
    attachments: Vec<(String, String, Vec<u8>)>,
}

async fn read_reply_form(mut multipart: Multipart) -> Result<ReplyForm, String> {
    let mut form = ReplyForm {
        csrf: String::new(),
        body: String::new(),
        attachments: Vec::new(),
    };
    let mut total = 0usize;
    while let Some(field) = multipart.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let ctype = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_string();
        let bytes = field.bytes().await.map_err(|e| e.body_text())?;
        total += bytes.len();
        if total > MAX_REPLY {
            return Err("la réponse et ses pièces jointes dépassent 20 Mo".into());
        }
        match name.as_str() {
            "_csrf" => form.csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "body" => form.body = String::from_utf8_lossy(&bytes).into_owned(),
            "attachment" => {
                // A file input left empty still posts a part, without name or content.
                if let Some(file_name) = file_name.filter(|n| !n.is_empty()) {
                    if !bytes.is_empty() {
                        form.attachments.push((ctype, file_name, bytes.to_vec()));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(form)
}

/// The reply, as RFC 5322 bytes with CRLF line ends: threaded (In-Reply-To, References,
/// RFC 5322 §3.6.4) so the professional's client files it with the conversation.
fn compose_reply(
    who: &SignedIn,
    hub_domain: &str,
    original: &Summary,
    to: &str,
    form: &ReplyForm,
) -> Result<Vec<u8>, String> {
    let subject = if original.subject.to_ascii_lowercase().starts_with("re:") {
        original.subject.clone()
    } else {
        format!("Re: {}", original.subject)
    };
    let mut references: Vec<String> = original.references.clone();
    if let Some(id) = &original.message_id {
        references.push(id.clone());
    }
    let message_id = format!("{}@{hub_domain}", crate::session::random_token());
    let body = form.body.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut builder = mail_builder::MessageBuilder::new()
        .from((who.space.kind.display_name(), who.space.address.to_string()))
        .to(to.to_string())
        .subject(subject)
        .message_id(message_id)
        .date(mshub_store::now())
        .text_body(body);
    if let Some(id) = &original.message_id {
        builder = builder.in_reply_to(id.clone());
    }
    if !references.is_empty() {
        builder = builder.references(references);
    }
    for (ctype, name, bytes) in &form.attachments {
        builder = builder.attachment(ctype.clone(), name.clone(), bytes.clone());
    }
    builder.write_to_vec().map_err(|e| e.to_string())
}

/// The message answered, or why the reply was refused.
type Submitted = Result<(MailboxId, Uid), String>;

pub async fn reply(
    State(app): App,
    who: SignedIn,
    Path((mailbox, uid)): Path<(u64, u32)>,
    multipart: Multipart,
) -> Response {
    let form = match read_reply_form(multipart).await {
        Ok(f) => f,
        Err(reason) => return error_page(StatusCode::BAD_REQUEST, "Réponse non envoyée", &reason),
    };
    if !same_secret(&form.csrf, &who.session.csrf) {
        return crate::csrf::forbidden();
    }
    if !who.may_reply() {
        return error_page(
            StatusCode::FORBIDDEN,
            "Réponse non envoyée",
            "Votre délégation permet la lecture seulement.",
        );
    }
    if form.body.trim().is_empty() {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Réponse non envoyée",
            "La réponse est vide : écrivez un message avant de l'envoyer.",
        );
    }
    let sent = blocking(move || -> Result<Option<Submitted>, Response> {
        let Some((mailbox, uid, _)) = owned(&app, &who, mailbox, uid)? else {
            return Ok(None);
        };
        let raw = app
            .store
            .read_message(mailbox, uid)
            .map_err(|e| internal("message read", &e))?;
        let original = Summary::parse(&raw);
        let Some(to) = original.from_address.clone() else {
            return Ok(Some(Err("le message d'origine n'a pas d'expéditeur".into())));
        };
        let message = match compose_reply(&who, app.directory.hub_domain().as_str(), &original, &to, &form) {
            Ok(m) => m,
            Err(e) => return Ok(Some(Err(format!("la réponse n'a pas pu être composée ({e})")))),
        };
        match app.mta.submit(&who.space, &[to], &message) {
            Ok(_) => {
                tracing::info!(account = %who.space.id, delegated = !who.is_owner(), "reply submitted");
                Ok(Some(Ok((mailbox, uid))))
            }
            Err(refusal) => Ok(Some(Err(refusal_fr(&refusal)))),
        }
    })
    .await;
    match sent {
        Ok(Ok(Some(Ok((mailbox, uid))))) => see_other(&format!("/m/{mailbox}/{uid}?sent=1")),
        Ok(Ok(Some(Err(reason)))) => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Réponse non envoyée",
            &format!("Envoi refusé : {reason}"),
        ),
        Ok(Ok(None)) => crate::frame::not_found(),
        Ok(Err(r)) | Err(r) => r,
    }
}
