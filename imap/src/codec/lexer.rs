//! The lexical layer of RFC 9051 §9: atoms, strings (quoted and literal), numbers,
//! sequence sets, flags, dates and parenthesised lists, over one framed command.

use std::collections::BTreeSet;

use super::Flag;

use super::{SeqRange, SeqSet, SyntaxError, MAX_DEPTH};
use crate::date;

pub(super) type R<T> = Result<T, SyntaxError>;

pub(super) fn err<T>(what: impl Into<String>) -> R<T> {
    Err(SyntaxError(what.into()))
}

/// RFC 9051 §9 ATOM-CHAR: not atom-specials.
pub(super) fn atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b)
}

fn astring_char(b: u8) -> bool {
    atom_char(b) || b == b']'
}

/// The tag of a (possibly unparsable) command line, for the tagged reply; `*` if none.
pub fn tag_of(line: &[u8]) -> String {
    let tag: Vec<u8> = line
        .iter()
        .copied()
        .take_while(|&b| atom_char(b) && b != b'+')
        .collect();
    if tag.is_empty() || tag.len() > 64 {
        "*".into()
    } else {
        String::from_utf8_lossy(&tag).into_owned()
    }
}

/// `{n}` or `{n+}` at the end of a line (without its CRLF): (n, non-synchronising).
pub fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let plus = digits.last() == Some(&b'+');
    if plus {
        digits = &digits[..digits.len() - 1];
    }
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse()
        .ok()
        .map(|n| (n, plus))
}

pub(super) struct P<'a> {
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> P<'a> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    pub(super) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, c: u8) -> R<()> {
        if self.eat(c) {
            Ok(())
        } else {
            err(format!("expected {:?} at offset {}", c as char, self.pos))
        }
    }

    pub(super) fn sp(&mut self) -> R<()> {
        self.expect(b' ')
    }

    pub(super) fn end(&self) -> R<()> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            err(format!("unexpected characters at offset {}", self.pos))
        }
    }

    pub(super) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.b[start..self.pos]
    }

    pub(super) fn atom(&mut self) -> R<String> {
        let a = self.take_while(atom_char);
        if a.is_empty() {
            return err(format!("expected an atom at offset {}", self.pos));
        }
        Ok(String::from_utf8_lossy(a).into_owned())
    }

    pub(super) fn number(&mut self) -> R<u64> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > 19 {
            return err("expected a number");
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or_else(|| err("number out of range"), Ok)
    }

    pub(super) fn nz_number(&mut self) -> R<u32> {
        match self.number()? {
            n @ 1..=0xffff_ffff => Ok(n as u32),
            _ => err("expected a non-zero 32-bit number"),
        }
    }

    pub(super) fn quoted(&mut self) -> R<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n') => return err("unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return err("invalid escape in quoted string"),
                    }
                    self.pos += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    pub(super) fn literal(&mut self) -> R<Vec<u8>> {
        self.expect(b'{')?;
        let n = self.number()?;
        self.eat(b'+');
        self.expect(b'}')?;
        self.expect(b'\r')?;
        self.expect(b'\n')?;
        let n = usize::try_from(n).map_err(|_| SyntaxError("literal too large".into()))?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| SyntaxError("literal shorter than announced".into()))?;
        let out = self.b[self.pos..end].to_vec();
        self.pos = end;
        Ok(out)
    }

    pub(super) fn string(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => err(format!("expected a string at offset {}", self.pos)),
        }
    }

    pub(super) fn astring_bytes(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let a = self.take_while(astring_char);
                if a.is_empty() {
                    return err(format!("expected a string at offset {}", self.pos));
                }
                Ok(a.to_vec())
            }
        }
    }

    pub(super) fn astring(&mut self) -> R<String> {
        String::from_utf8(self.astring_bytes()?).map_or_else(|_| err("invalid UTF-8"), Ok)
    }

    pub(super) fn mailbox(&mut self) -> R<String> {
        let name = self
            .astring()
            .map_err(|e| SyntaxError(format!("mailbox name: {e}")))?;
        Ok(if name.eq_ignore_ascii_case("INBOX") {
            "INBOX".into()
        } else {
            name
        })
    }

    /// RFC 9051 list-mailbox: an astring that may hold the wildcards `%` and `*`.
    pub(super) fn list_mailbox(&mut self) -> R<String> {
        let raw = match self.peek() {
            Some(b'"' | b'{') => self.string()?,
            _ => {
                let a = self.take_while(|b| astring_char(b) || b == b'%' || b == b'*');
                if a.is_empty() {
                    return err("expected a mailbox pattern");
                }
                a.to_vec()
            }
        };
        String::from_utf8(raw).map_or_else(|_| err("mailbox pattern: invalid UTF-8"), Ok)
    }

    pub(super) fn keyword(&mut self) -> R<String> {
        Ok(self.atom()?.to_ascii_uppercase())
    }

    pub(super) fn flag(&mut self) -> R<Flag> {
        let start = self.pos;
        self.eat(b'\\');
        self.take_while(atom_char);
        let s = std::str::from_utf8(&self.b[start..self.pos]).unwrap_or("");
        if s.starts_with('\\')
            && !["\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"]
                .contains(&s.to_ascii_lowercase().as_str())
        {
            return err(format!("unknown system flag {s}"));
        }
        Flag::parse(s).map_or_else(|| err(format!("invalid flag {s:?}")), Ok)
    }

    pub(super) fn flag_list(&mut self) -> R<BTreeSet<Flag>> {
        let mut flags = BTreeSet::new();
        self.expect(b'(')?;
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.insert(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    pub(super) fn seq_number(&mut self) -> R<Option<u32>> {
        if self.eat(b'*') {
            Ok(None)
        } else {
            self.nz_number().map(Some)
        }
    }

    pub(super) fn seq_set(&mut self) -> R<SeqSet> {
        if self.eat(b'$') {
            return Ok(SeqSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_number()?;
            let b = if self.eat(b':') {
                self.seq_number()?
            } else {
                a
            };
            ranges.push(SeqRange(a, b));
            if ranges.len() > 10_000 {
                return err("sequence set too long");
            }
            if !self.eat(b',') {
                return Ok(SeqSet::Ranges(ranges));
            }
        }
    }

    pub(super) fn date(&mut self) -> R<i64> {
        let raw = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-')
                .to_vec()
        };
        std::str::from_utf8(&raw)
            .ok()
            .and_then(date::parse_date)
            .map_or_else(|| err("invalid date (expected d-Mon-yyyy)"), Ok)
    }

    /// A parenthesised list of atoms (LIST selection and return options): skipped with a
    /// depth limit, returning the upper-cased atoms seen.
    pub(super) fn option_list(&mut self, depth: usize) -> R<Vec<String>> {
        if depth > MAX_DEPTH {
            return err("list nested too deeply");
        }
        self.expect(b'(')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b')') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b' ') => self.pos += 1,
                Some(b'(') => out.extend(self.option_list(depth + 1)?),
                Some(_) => out.push(String::from_utf8_lossy(&self.astring_bytes()?).to_uppercase()),
                None => return err("unterminated list"),
            }
        }
    }
}
