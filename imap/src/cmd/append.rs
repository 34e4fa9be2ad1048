//! APPEND (RFC 9051 §6.3.12) with RFC 4315 APPENDUID, MULTIAPPEND (RFC 3502: several messages,
//! all or nothing) and CATENATE (RFC 4469: a message made of TEXT literals and URLs of the
//! user's own messages or their sections, RFC 5092). The size limit of a literal (RFC 7889) is
//! enforced while framing it, before any byte is stored; a catenated message is checked once
//! put together (TOOBIG).

use std::collections::BTreeSet;

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_store::{AccountId, Flag, Uid};

use super::Done;
use crate::codec::write::sequence_set;
use crate::codec::{parse_imap_url, AppendData, AppendMessage, CatPart};
use crate::refusal::Refusal;
use crate::session::{store_flags, Flow, Session};
use crate::{APPEND_LIMIT, APPEND_MAX_TOTAL};

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn append(
        &mut self,
        tag: &str,
        account: AccountId,
        name: &str,
        messages: Vec<AppendMessage>,
    ) -> Done {
        let mailbox = match self.imap.store.mailbox(account, name) {
            Ok(Some(m)) => m,
            Ok(None) => return Done::refused(tag, Refusal::NoSuchTarget),
            Err(e) => {
                self.store_failure(tag, &e);
                return Done::Flow(Flow::Continue);
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        // Every message is put together and checked before any is stored (RFC 3502 §6.3.11:
        // if one cannot be appended, none is).
        let mut ready: Vec<(Vec<u8>, BTreeSet<Flag>, i64)> = Vec::with_capacity(messages.len());
        let mut total: u64 = 0;
        for m in messages {
            let bytes = match m.data {
                AppendData::Literal(bytes) => {
                    if bytes.len() as u64 > APPEND_LIMIT {
                        return Done::refused(
                            tag,
                            Refusal::MessageOverLimit {
                                limit: APPEND_LIMIT,
                            },
                        );
                    }
                    bytes
                }
                AppendData::Catenate(parts) => match self.catenate(account, &parts) {
                    Ok(bytes) => bytes,
                    Err(refusal) => return Done::refused(tag, refusal),
                },
            };
            if bytes.is_empty() {
                return Done::refused(tag, Refusal::EmptyMessage);
            }
            total += bytes.len() as u64;
            if total > APPEND_MAX_TOTAL {
                return Done::refused(
                    tag,
                    Refusal::MessagesOverTotal {
                        limit: APPEND_MAX_TOTAL,
                    },
                );
            }
            ready.push((bytes, store_flags(&m.flags), m.date.unwrap_or(now)));
        }
        let batch: Vec<(&[u8], BTreeSet<Flag>, i64)> = ready
            .iter()
            .map(|(b, f, d)| (b.as_slice(), f.clone(), *d))
            .collect();
        match self.imap.store.append_many(mailbox.id, &batch) {
            Ok(metas) => {
                let uids: Vec<u32> = metas.iter().map(|m| m.uid.get()).collect();
                Done::ok(
                    tag,
                    format!(
                        "[APPENDUID {} {}] APPEND completed",
                        mailbox.uid_validity.0,
                        sequence_set(&uids)
                    ),
                )
            }
            Err(e) => {
                self.store_failure(tag, &e);
                Done::Flow(Flow::Continue)
            }
        }
    }

    /// RFC 4469 §3: the parts joined in order, a URL part being the message or section it
    /// names (as FETCH BODY[section] returns it) in one of the user's mailboxes; a URL that
    /// names nothing is BADURL, a result over APPENDLIMIT TOOBIG (§6).
    fn catenate(&mut self, account: AccountId, parts: &[CatPart]) -> Result<Vec<u8>, Refusal> {
        let mut out = Vec::new();
        for part in parts {
            match part {
                CatPart::Text(text) => out.extend_from_slice(text),
                CatPart::Url(url) => out.extend_from_slice(&self.url_part(account, url)?),
            }
            if out.len() as u64 > APPEND_LIMIT {
                return Err(Refusal::CatenatedTooBig {
                    limit: APPEND_LIMIT,
                });
            }
        }
        Ok(out)
    }

    fn url_part(&mut self, account: AccountId, url: &str) -> Result<Vec<u8>, Refusal> {
        // RFC 4469 §5 (erratum 4046): the URL in the code is bare text, without `]` or
        // controls.
        let shown: String = url
            .chars()
            .filter(|c| *c != ']' && !c.is_control())
            .take(300)
            .collect();
        let bad = |why: &'static str| Refusal::BadUrl {
            url: shown.clone(),
            why,
        };
        let Some(u) = parse_imap_url(url) else {
            return Err(bad("Not a URL of this user's messages"));
        };
        let mailbox = match self.imap.store.mailbox(account, &u.mailbox) {
            Ok(Some(m)) => m,
            Ok(None) => return Err(bad("No such mailbox")),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a mailbox for CATENATE");
                return Err(Refusal::ServerBug);
            }
        };
        if u.uid_validity.is_some_and(|v| v != mailbox.uid_validity.0) {
            return Err(bad("UIDVALIDITY changed"));
        }
        let uid = Uid::try_from(u.uid).map_err(|_| bad("No such message"))?;
        match self.imap.store.message(mailbox.id, uid) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(bad("No such message")),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a message for CATENATE");
                return Err(Refusal::ServerBug);
            }
        }
        let parsed = self.parsed(mailbox.id, uid).map_err(|e| {
            tracing::error!(error = %e, "cannot read a message for CATENATE");
            Refusal::ServerBug
        })?;
        let bytes = match &u.section {
            None => parsed.raw.clone(),
            Some(section) => parsed
                .section(section)
                .ok_or_else(|| bad("No such section"))?,
        };
        Ok(match u.partial {
            // RFC 5092 §9 `;PARTIAL=offset[.length]`, as FETCH's `<offset.length>`.
            Some((offset, length)) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = length.map_or(bytes.len(), |l| {
                    start
                        .saturating_add(usize::try_from(l).unwrap_or(usize::MAX))
                        .min(bytes.len())
                });
                bytes[start..end].to_vec()
            }
            None => bytes,
        })
    }
}
