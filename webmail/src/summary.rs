//! What a message list shows of each message (sender, subject, date, attachments), parsed once
//! from the decrypted message and kept in a bounded in-memory cache: a page of the inbox then
//! costs no decryption. Messages are immutable, so an entry never goes stale; an expunged
//! message's entry is simply never asked for again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mail_parser::{Address as MimeAddress, MessageParser, MimeHeaders};

use mshub_store::{MailboxId, Uid};

/// Entries kept at most (a few hundred bytes each); past it the cache starts over.
const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    /// The Date header, unix seconds; `None` when missing or unreadable.
    pub date: Option<i64>,
    pub attachments: Vec<String>,
    pub message_id: Option<String>,
    pub references: Vec<String>,
    /// The conversation this message belongs to ([`crate::conversations::thread_key`]).
    pub thread: Option<String>,
}

impl Summary {
    pub fn parse(raw: &[u8]) -> Summary {
        let Some(m) = MessageParser::default().parse(raw) else {
            return Summary {
                subject: "(message illisible)".into(),
                ..Summary::default()
            };
        };
        let first = |a: Option<&MimeAddress>| {
            a.and_then(|a| a.first()).map(|a| {
                (
                    a.address().map(str::to_string),
                    a.name().map(str::to_string),
                )
            })
        };
        let (from_address, from_name) = first(m.from()).unwrap_or((None, None));
        let to = m
            .to()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.address().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let attachments = m
            .attachments()
            .map(|p| {
                p.attachment_name()
                    .map_or_else(|| "pièce jointe".to_string(), str::to_string)
            })
            .collect();
        let ids = |v: &mail_parser::HeaderValue<'_>| -> Vec<String> {
            match v {
                mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
                mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
                _ => Vec::new(),
            }
        };
        let references = ids(m.references());
        // A reply with In-Reply-To but no References (RFC 5322 §3.6.4 allows it) still joins
        // its parent's conversation.
        let root_chain = if references.is_empty() {
            ids(m.in_reply_to())
        } else {
            references.clone()
        };
        let thread = crate::conversations::thread_key(&root_chain, m.message_id());
        Summary {
            from_address,
            from_name,
            to,
            subject: m.subject().unwrap_or("(sans objet)").to_string(),
            date: m.date().map(|d| d.to_timestamp()),
            attachments,
            message_id: m.message_id().map(str::to_string),
            references,
            thread,
        }
    }
}

#[derive(Default)]
pub struct Summaries {
    cache: Mutex<HashMap<(MailboxId, Uid), Arc<Summary>>>,
}

impl Summaries {
    pub fn get(&self, mailbox: MailboxId, uid: Uid) -> Option<Arc<Summary>> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(mailbox, uid))
            .cloned()
    }

    pub fn put(&self, mailbox: MailboxId, uid: Uid, summary: Summary) -> Arc<Summary> {
        let summary = Arc::new(summary);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert((mailbox, uid), summary.clone());
        summary
    }
}

/// Directory identities of correspondents, kept a minute: a renamed professional shows under
/// the new name within a minute, and an inbox page costs no directory reads.
#[derive(Default)]
pub struct Identities {
    cache: Mutex<HashMap<String, (Arc<crate::correspondent::Correspondent>, Instant)>>,
}

/// How long an identity is reused.
const IDENTITY_TTL: Duration = Duration::from_secs(60);
/// Identities kept at most; past it the cache starts over.
const MAX_IDENTITIES: usize = 10_000;

impl Identities {
    pub fn get(&self, address: &str) -> Option<Arc<crate::correspondent::Correspondent>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (c, at) = cache.get(address)?;
        (at.elapsed() < IDENTITY_TTL).then(|| c.clone())
    }

    pub fn put(&self, address: &str, c: Arc<crate::correspondent::Correspondent>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_IDENTITIES {
            cache.clear();
        }
        cache.insert(address.to_string(), (c, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_summarised() {
        let raw = b"From: \"Dr Claire Martin\" <claire.martin@chu.test>\r\nTo: p@patient.test\r\n\
Subject: =?UTF-8?Q?R=C3=A9sultats?=\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <a@b>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n\
--x\r\nContent-Type: text/plain\r\n\r\nBonjour\r\n--x\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=cr.pdf\r\n\r\n%PDF-1.4\r\n--x--\r\n";
        let s = Summary::parse(raw);
        assert_eq!(s.subject, "Résultats");
        assert_eq!(s.from_address.as_deref(), Some("claire.martin@chu.test"));
        assert_eq!(s.from_name.as_deref(), Some("Dr Claire Martin"));
        assert_eq!(s.attachments, vec!["cr.pdf".to_string()]);
        assert_eq!(s.date, Some(1_795_514_400));
        assert_eq!(s.message_id.as_deref(), Some("a@b"));
    }

    #[test]
    fn garbage_is_summarised_without_failing() {
        let s = Summary::parse(b"\x00\xff\xfe not a message");
        assert!(!s.subject.is_empty());
    }
}
