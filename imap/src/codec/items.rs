//! Fetch items and sections, search keys and STATUS items (RFC 9051 §6.4.4-5, §6.3.11).

use super::Flag;

use super::lexer::{err, P, R};
use super::*;

impl P<'_> {
    pub(super) fn section(&mut self) -> R<Section> {
        self.expect(b'[')?;
        let mut part = Vec::new();
        let mut text = None;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            part.push(self.nz_number()?);
            if !self.eat(b'.') {
                break;
            }
        }
        if self.peek() != Some(b']') {
            let word = self
                .take_while(|b| b.is_ascii_alphabetic() || b == b'.')
                .to_ascii_uppercase();
            text = Some(match word.as_slice() {
                b"HEADER" => SectionText::Header,
                b"TEXT" => SectionText::Text,
                b"MIME" if !part.is_empty() => SectionText::Mime,
                b"HEADER.FIELDS" | b"HEADER.FIELDS.NOT" => {
                    self.sp()?;
                    self.expect(b'(')?;
                    let mut fields = Vec::new();
                    loop {
                        fields.push(self.astring()?);
                        if self.eat(b')') {
                            break;
                        }
                        self.sp()?;
                    }
                    SectionText::HeaderFields {
                        not: word.len() > 13,
                        fields,
                    }
                }
                _ => return err("invalid section"),
            });
        }
        self.expect(b']')?;
        Ok(Section { part, text })
    }

    pub(super) fn fetch_item(&mut self) -> R<FetchItem> {
        let name = self
            .take_while(|b| b.is_ascii_alphanumeric() || b == b'.')
            .to_ascii_uppercase();
        Ok(match name.as_slice() {
            b"FLAGS" => FetchItem::Flags,
            b"UID" => FetchItem::Uid,
            b"INTERNALDATE" => FetchItem::InternalDate,
            b"RFC822.SIZE" => FetchItem::Rfc822Size,
            b"RFC822" => FetchItem::Rfc822,
            b"RFC822.HEADER" => FetchItem::Rfc822Header,
            b"RFC822.TEXT" => FetchItem::Rfc822Text,
            b"ENVELOPE" => FetchItem::Envelope,
            b"BODYSTRUCTURE" => FetchItem::BodyStructure,
            b"MODSEQ" => FetchItem::ModSeq,
            b"BODY" if self.peek() != Some(b'[') => FetchItem::Body,
            b"BODY" | b"BODY.PEEK" => {
                let section = self.section()?;
                FetchItem::BodySection {
                    section,
                    peek: name.len() > 4,
                    partial: self.partial()?,
                }
            }
            // RFC 3516: section-binary is part numbers only.
            b"BINARY" | b"BINARY.PEEK" | b"BINARY.SIZE" => {
                let section = self.section()?;
                if section.text.is_some() {
                    return err("BINARY sections are part numbers only");
                }
                if name.as_slice() == b"BINARY.SIZE" {
                    FetchItem::BinarySize { part: section.part }
                } else {
                    FetchItem::Binary {
                        part: section.part,
                        peek: name.len() > 6,
                        partial: self.partial()?,
                    }
                }
            }
            _ => {
                return err(format!(
                    "unknown FETCH item {}",
                    String::from_utf8_lossy(&name)
                ))
            }
        })
    }

    fn partial(&mut self) -> R<Option<(u32, u32)>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let start = self.number()?;
        self.expect(b'.')?;
        let len = self.nz_number()?;
        self.expect(b'>')?;
        let start = u32::try_from(start).map_err(|_| SyntaxError("partial".into()))?;
        Ok(Some((start, len)))
    }

    pub(super) fn fetch_items(&mut self) -> R<Vec<FetchItem>> {
        use FetchItem::*;
        if self.eat(b'(') {
            let mut items = Vec::new();
            loop {
                items.push(self.fetch_item()?);
                if self.eat(b')') {
                    return Ok(items);
                }
                self.sp()?;
            }
        }
        let save = self.pos;
        let word = self
            .take_while(|b| b.is_ascii_alphabetic())
            .to_ascii_uppercase();
        match word.as_slice() {
            b"ALL" => Ok(vec![Flags, InternalDate, Rfc822Size, Envelope]),
            b"FAST" => Ok(vec![Flags, InternalDate, Rfc822Size]),
            b"FULL" => Ok(vec![Flags, InternalDate, Rfc822Size, Envelope, Body]),
            _ => {
                self.pos = save;
                Ok(vec![self.fetch_item()?])
            }
        }
    }

    pub(super) fn search_keys(&mut self, depth: usize) -> R<SearchKey> {
        let mut keys = vec![self.search_key(depth)?];
        while self.eat(b' ') {
            keys.push(self.search_key(depth)?);
        }
        Ok(if keys.len() == 1 {
            keys.remove(0)
        } else {
            SearchKey::And(keys)
        })
    }

    pub(super) fn search_key(&mut self, depth: usize) -> R<SearchKey> {
        use SearchKey as K;
        if depth > MAX_DEPTH {
            return err("search keys nested too deeply");
        }
        if self.eat(b'(') {
            let k = self.search_keys(depth + 1)?;
            self.expect(b')')?;
            return Ok(k);
        }
        if self
            .peek()
            .is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$')
        {
            return Ok(K::Seq(self.seq_set()?));
        }
        let word = self.keyword()?;
        let string = |p: &mut Self| -> R<String> {
            p.sp()?;
            Ok(String::from_utf8_lossy(&p.astring_bytes()?).into_owned())
        };
        Ok(match word.as_str() {
            "ALL" => K::All,
            "ANSWERED" => K::Flag(Flag::Answered, true),
            "DELETED" => K::Flag(Flag::Deleted, true),
            "DRAFT" => K::Flag(Flag::Draft, true),
            "FLAGGED" => K::Flag(Flag::Flagged, true),
            "SEEN" => K::Flag(Flag::Seen, true),
            "UNANSWERED" => K::Flag(Flag::Answered, false),
            "UNDELETED" => K::Flag(Flag::Deleted, false),
            "UNDRAFT" => K::Flag(Flag::Draft, false),
            "UNFLAGGED" => K::Flag(Flag::Flagged, false),
            "UNSEEN" => K::Flag(Flag::Seen, false),
            "NEW" => K::New,
            "OLD" => K::Old,
            "RECENT" => K::Recent,
            "KEYWORD" | "UNKEYWORD" => {
                self.sp()?;
                let flag = self.flag()?;
                K::Flag(flag, word == "KEYWORD")
            }
            "FROM" | "TO" | "CC" | "BCC" | "SUBJECT" => {
                let v = string(self)?;
                K::Header(word.to_ascii_lowercase(), v)
            }
            "HEADER" => {
                let name = string(self)?;
                let v = string(self)?;
                K::Header(name.to_ascii_lowercase(), v)
            }
            "BODY" => K::Body(string(self)?),
            "TEXT" => K::Text(string(self)?),
            "SINCE" | "BEFORE" | "ON" | "SENTSINCE" | "SENTBEFORE" | "SENTON" => {
                self.sp()?;
                let d = self.date()?;
                match word.as_str() {
                    "SINCE" => K::Since(d),
                    "BEFORE" => K::Before(d),
                    "ON" => K::On(d),
                    "SENTSINCE" => K::SentSince(d),
                    "SENTBEFORE" => K::SentBefore(d),
                    _ => K::SentOn(d),
                }
            }
            "LARGER" | "SMALLER" => {
                self.sp()?;
                let n = self.number()?;
                if word == "LARGER" {
                    K::Larger(n)
                } else {
                    K::Smaller(n)
                }
            }
            "UID" => {
                self.sp()?;
                K::Uid(self.seq_set()?)
            }
            "MODSEQ" => {
                self.sp()?;
                if self.peek() == Some(b'"') {
                    // entry-name SP entry-type-req: per-flag MODSEQs are not kept, the
                    // message's own is compared (RFC 7162 §3.1.5 allows it).
                    self.quoted()?;
                    self.sp()?;
                    self.atom()?;
                    self.sp()?;
                }
                K::ModSeq(self.number()?)
            }
            "NOT" => {
                self.sp()?;
                K::Not(Box::new(self.search_key(depth + 1)?))
            }
            "OR" => {
                self.sp()?;
                let a = self.search_key(depth + 1)?;
                self.sp()?;
                let b = self.search_key(depth + 1)?;
                K::Or(Box::new(a), Box::new(b))
            }
            other => return err(format!("unknown search key {other}")),
        })
    }

    pub(super) fn status_items(&mut self) -> R<Vec<StatusItem>> {
        self.expect(b'(')?;
        let mut items = Vec::new();
        loop {
            let word = self.keyword()?;
            match status_item(&word) {
                Some(item) => items.push(item),
                None => return err(format!("unknown STATUS item {word}")),
            }
            if self.eat(b')') {
                return Ok(items);
            }
            self.sp()?;
        }
    }
}

/// A STATUS data item by its (upper-case) name.
pub(super) fn status_item(name: &str) -> Option<StatusItem> {
    Some(match name {
        "MESSAGES" => StatusItem::Messages,
        "UIDNEXT" => StatusItem::UidNext,
        "UIDVALIDITY" => StatusItem::UidValidity,
        "UNSEEN" => StatusItem::Unseen,
        "SIZE" => StatusItem::Size,
        "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
        "RECENT" => StatusItem::Recent,
        "DELETED" => StatusItem::Deleted,
        _ => return None,
    })
}
