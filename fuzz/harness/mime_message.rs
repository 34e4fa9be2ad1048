//! The MIME parse of a delivered message, as the vault walks it when filing
//! (vault/src/filing.rs, `Vault::file_message`): mail-parser's `MessageParser`, then every
//! attachment's content, content type and name, into attached messages too.
//!
//! The cheap prefilters of the delivery pipeline run on the same bytes in the fuzz target
//! (`mime_message.rs`); each crate's replay test runs its own.

use mail_parser::{Message, MessageParser, MimeHeaders};

/// Attached messages are walked this deep (mail-parser bounds its own nesting too).
const DEPTH: usize = 4;

pub fn walk_parts(data: &[u8]) {
    if let Some(message) = MessageParser::default().parse(data) {
        walk(&message, 0);
    }
}

fn walk(message: &Message<'_>, depth: usize) {
    let _ = message.header_raw("X-Mshub-Document-Type");
    let _ = (message.from(), message.message_id(), message.subject());
    for part in message.attachments() {
        if let Some(inner) = part.message() {
            if depth < DEPTH {
                walk(inner, depth + 1);
            }
            continue;
        }
        let bytes = part.contents();
        let _ = part.content_type().map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        });
        let _ = part.attachment_name().map(str::to_string);
        let _ = (bytes.len(), bytes.get(128..132));
    }
    for n in 0..message.text_body_count() {
        let _ = message.body_text(n);
    }
    for n in 0..message.html_body_count() {
        let _ = message.body_html(n);
    }
}
