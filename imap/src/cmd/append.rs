//! APPEND (RFC 9051 §6.3.12) with RFC 4315 APPENDUID; the size limit (RFC 7889) is enforced
//! while framing the literal, before any byte is stored.

use std::collections::BTreeSet;

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_store::Flag;

use super::Done;
use crate::session::{Flow, Session};
use crate::APPEND_LIMIT;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn append(
        &mut self,
        tag: &str,
        name: &str,
        flags: BTreeSet<Flag>,
        date: Option<i64>,
        message: &[u8],
    ) -> Done {
        if message.len() as u64 > APPEND_LIMIT {
            return Done::no(
                tag,
                format!("[LIMIT] Message larger than APPENDLIMIT={APPEND_LIMIT}"),
            );
        }
        if message.is_empty() {
            return Done::no(tag, "[CANNOT] Empty message");
        }
        let account = self.account.as_ref().map(|a| a.id);
        let mailbox = match account.map(|a| self.imap.store.mailbox(a, name)) {
            Some(Ok(Some(m))) => m,
            Some(Ok(None)) | None => {
                return Done::no(tag, "[TRYCREATE] No such mailbox");
            }
            Some(Err(e)) => {
                self.store_failure(tag, &e);
                return Done::Flow(Flow::Continue);
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        match self
            .imap
            .store
            .append(mailbox.id, message, flags, date.unwrap_or(now))
        {
            Ok(meta) => Done::ok(
                tag,
                format!(
                    "[APPENDUID {} {}] APPEND completed",
                    mailbox.uid_validity.0, meta.uid
                ),
            ),
            Err(e) => {
                self.store_failure(tag, &e);
                Done::Flow(Flow::Continue)
            }
        }
    }
}
