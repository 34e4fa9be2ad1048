//! A message of the space a session looks at, named by mailbox and UID in a URL: what the
//! message pages and the reply share to refuse anything outside the space.

// Helpers of the pages fail with the page that explains the failure (see `crate::frame`).
#![allow(clippy::result_large_err)]

use axum::response::Response;

use mshub_store::{MailboxId, MessageMeta, Uid};

use crate::frame::{internal, SignedIn};
use crate::Webmail;

/// The message `uid` of `mailbox`, if the mailbox belongs to the space being looked at.
pub fn owned(
    app: &Webmail,
    who: &SignedIn,
    mailbox: u64,
    uid: u32,
) -> Result<Option<(MailboxId, Uid, MessageMeta)>, Response> {
    let mailbox = MailboxId(mailbox);
    let Ok(uid) = Uid::try_from(uid) else {
        return Ok(None);
    };
    match app.store.mailbox_by_id(mailbox) {
        Ok(Some(m)) if m.account == who.space.id => {}
        Ok(_) => return Ok(None),
        Err(e) => return Err(internal("mailbox", &e)),
    }
    match app.store.message(mailbox, uid) {
        Ok(Some(meta)) => Ok(Some((mailbox, uid, meta))),
        Ok(None) => Ok(None),
        Err(e) => Err(internal("message", &e)),
    }
}
