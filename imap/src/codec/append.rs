//! APPEND's arguments with MULTIAPPEND (RFC 3502 §6.3.11: several messages in one command) and
//! CATENATE (RFC 4469 §5: a message made of TEXT literals and IMAP URLs), and the relative IMAP
//! URLs of RFC 5092 that CATENATE's URL parts name.

use std::collections::BTreeSet;

use super::Flag;

use super::lexer::{err, P, R};
use super::Section;
use crate::date;

/// Most messages one APPEND may carry (RFC 3502 leaves the limit to the server).
pub const MAX_APPEND_MESSAGES: usize = 1000;

/// One message of an APPEND (RFC 3502 `append-message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: BTreeSet<Flag>,
    pub date: Option<i64>,
    pub data: AppendData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendData {
    /// A literal or a literal8 (RFC 3516 §4.4).
    Literal(Vec<u8>),
    /// RFC 4469 §5 `"CATENATE" SP "(" cat-part *(SP cat-part) ")"`.
    Catenate(Vec<CatPart>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    Text(Vec<u8>),
    /// The URL as sent (the session resolves it, and answers BADURL with it).
    Url(String),
}

/// A relative IMAP URL naming a message or one of its sections (RFC 5092 §9 `imessagepart`
/// in its absolute-path form: `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// The mailbox name, %-decoded (UTF-8, RFC 5092 §3).
    pub mailbox: String,
    pub uid_validity: Option<u32>,
    pub uid: u32,
    pub section: Option<Section>,
    /// RFC 5092 §9 `ipartial`: offset and optional length.
    pub partial: Option<(u64, Option<u64>)>,
}

impl P<'_> {
    /// After `APPEND mailbox`: ` append-message *(SP append-message)` (RFC 3502 §6.3.11).
    pub(super) fn append_messages(&mut self) -> R<Vec<AppendMessage>> {
        let mut messages = Vec::new();
        while self.eat(b' ') {
            if messages.len() == MAX_APPEND_MESSAGES {
                return err(format!(
                    "[LIMIT] At most {MAX_APPEND_MESSAGES} messages in one APPEND"
                ));
            }
            messages.push(self.append_message()?);
        }
        if messages.is_empty() {
            return err("APPEND needs a message");
        }
        Ok(messages)
    }

    fn append_message(&mut self) -> R<AppendMessage> {
        let mut flags = BTreeSet::new();
        let mut date = None;
        if self.peek() == Some(b'(') {
            flags = self.flag_list()?;
            self.sp()?;
        }
        if self.peek() == Some(b'"') {
            let raw = self.quoted()?;
            date = Some(
                std::str::from_utf8(&raw)
                    .ok()
                    .and_then(date::parse_date_time)
                    .map_or_else(|| err("invalid APPEND date-time"), Ok)?,
            );
            self.sp()?;
        }
        let data = if matches!(self.peek(), Some(b'c' | b'C')) {
            if self.keyword()? != "CATENATE" {
                return err("expected a literal or CATENATE");
            }
            self.sp()?;
            AppendData::Catenate(self.cat_parts()?)
        } else {
            // RFC 3516 §4.4: a literal8 (`~{n}`), binary content allowed, as BINARY is
            // advertised.
            self.eat(b'~');
            AppendData::Literal(self.literal()?)
        };
        Ok(AppendMessage { flags, date, data })
    }

    /// RFC 4469 §5: `"(" cat-part *(SP cat-part) ")"`, one part at least.
    fn cat_parts(&mut self) -> R<Vec<CatPart>> {
        self.expect(b'(')?;
        let mut parts = Vec::new();
        loop {
            match self.keyword()?.as_str() {
                "TEXT" => {
                    self.sp()?;
                    // RFC 9051 §4.3: a literal is CHAR8 (8-bit, no NUL); NUL needs a literal8
                    // (RFC 3516 §4.4, BINARY being advertised).
                    let literal8 = self.eat(b'~');
                    let text = self.literal()?;
                    if !literal8 && text.contains(&0) {
                        return err("NUL in a TEXT literal: send it as a literal8 (~{n})");
                    }
                    parts.push(CatPart::Text(text));
                }
                "URL" => {
                    self.sp()?;
                    let url = self.astring()?;
                    parts.push(CatPart::Url(url));
                }
                other => return err(format!("unknown CATENATE part {other}")),
            }
            if parts.len() > MAX_APPEND_MESSAGES {
                return err("[LIMIT] Too many CATENATE parts");
            }
            if self.eat(b')') {
                return Ok(parts);
            }
            self.sp()?;
        }
    }
}

/// `%XX` escapes undone (RFC 3986 §2.1); `None` for a broken escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn nz_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| n != 0)
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a relative IMAP URL of a message or section (RFC 5092 §9; its parameter names are
/// case-insensitive, §6). Anything else — an absolute `imap://` URL, a mailbox or search URL,
/// URLAUTH parameters — is `None`: only the user's own messages can be named here.
pub fn parse_imap_url(url: &str) -> Option<ImapUrl> {
    let rest = url.strip_prefix('/')?;
    let mut segments = rest.split("/;");
    let mailbox_ref = segments.next()?;
    let (enc_mailbox, uid_validity) = match mailbox_ref.split_once(';') {
        Some((m, v)) => {
            let (key, value) = v.split_once('=')?;
            if !key.eq_ignore_ascii_case("UIDVALIDITY") {
                return None;
            }
            (m, Some(nz_u32(value)?))
        }
        None => (mailbox_ref, None),
    };
    if enc_mailbox.is_empty() {
        return None;
    }
    let mailbox = String::from_utf8(percent_decode(enc_mailbox)?).ok()?;
    let mailbox = if mailbox.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_string()
    } else {
        mailbox
    };
    let mut uid = None;
    let mut section = None;
    let mut partial = None;
    for (i, segment) in segments.enumerate() {
        let (key, value) = segment.split_once('=')?;
        match (i, key.to_ascii_uppercase().as_str()) {
            (0, "UID") => uid = Some(nz_u32(value)?),
            (1, "SECTION") if section.is_none() => {
                let text = String::from_utf8(percent_decode(value)?).ok()?;
                section = Some(parse_section(&text)?);
            }
            (1 | 2, "PARTIAL") if partial.is_none() => {
                partial = Some(match value.split_once('.') {
                    Some((o, l)) => (number(o)?, Some(nz_u32(l)?.into())),
                    None => (number(value)?, None),
                });
            }
            _ => return None,
        }
    }
    Some(ImapUrl {
        mailbox,
        uid_validity,
        uid: uid?,
        section,
        partial,
    })
}

/// An RFC 5092 section (RFC 9051 §9 `section-spec`), read with FETCH's section grammar.
fn parse_section(text: &str) -> Option<Section> {
    let framed = format!("[{text}]");
    let mut p = P {
        b: framed.as_bytes(),
        pos: 0,
    };
    let section = p.section().ok()?;
    p.end().ok()?;
    Some(section)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::SectionText;

    #[test]
    fn parses_relative_imap_urls() {
        let u =
            parse_imap_url("/Dossiers%20patients;UIDVALIDITY=9/;UID=12/;section=1.MIME").unwrap();
        assert_eq!(u.mailbox, "Dossiers patients");
        assert_eq!((u.uid_validity, u.uid), (Some(9), 12));
        assert_eq!(
            u.section,
            Some(Section {
                part: vec![1],
                text: Some(SectionText::Mime)
            })
        );
        let u = parse_imap_url("/inbox/;UID=1/;PARTIAL=0.4").unwrap();
        assert_eq!(
            (u.mailbox.as_str(), u.partial),
            ("INBOX", Some((0, Some(4))))
        );
        let u = parse_imap_url("/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(From%20To)").unwrap();
        assert!(matches!(
            u.section,
            Some(Section {
                text: Some(SectionText::HeaderFields { not: false, .. }),
                ..
            })
        ));
        for bad in [
            "imap://u@h/INBOX/;UID=1",
            "/INBOX",
            "/INBOX/;UID=0",
            "/INBOX;UID=1",
            "/INBOX/;UID=1/;URLAUTH=anonymous",
            "/INBOX/;UID=1/;SECTION=1.BOGUS",
            "/IN%ZZBOX/;UID=1",
            "//;UID=1",
        ] {
            assert_eq!(parse_imap_url(bad), None, "{bad}");
        }
    }
}
