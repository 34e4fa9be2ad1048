//! Writing what FETCH shows of a parsed message: BODY / BODYSTRUCTURE (RFC 9051 §7.5.2
//! `body`) and ENVELOPE (`envelope`).

use super::{header_value, Kind, Part};
use crate::codec::write::{nstring, string};

fn write_params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (n, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, n.as_bytes());
        out.push(b' ');
        string(out, v.as_bytes());
    }
    out.push(b')');
}

fn write_disposition(out: &mut Vec<u8>, d: &Option<(String, Vec<(String, String)>)>) {
    match d {
        None => out.extend_from_slice(b"NIL"),
        Some((kind, params)) => {
            out.push(b'(');
            string(out, kind.as_bytes());
            out.push(b' ');
            write_params(out, params);
            out.push(b')');
        }
    }
}

pub(super) fn write_part(out: &mut Vec<u8>, p: &Part, ext: bool) {
    out.push(b'(');
    if let Kind::Multipart(children) = &p.kind {
        for c in children {
            write_part(out, c, ext);
        }
        if children.is_empty() {
            // RFC 9051 body-type-mpart needs one part at least.
            out.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
        }
        out.push(b' ');
        string(out, p.subtype.as_bytes());
        if ext {
            out.push(b' ');
            write_params(out, &p.params);
            out.push(b' ');
            write_disposition(out, &p.disposition);
            out.extend_from_slice(b" NIL NIL");
        }
        out.push(b')');
        return;
    }
    string(out, p.ctype.as_bytes());
    out.push(b' ');
    string(out, p.subtype.as_bytes());
    out.push(b' ');
    write_params(out, &p.params);
    out.push(b' ');
    nstring(out, p.id.as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, p.description.as_deref().map(str::as_bytes));
    out.push(b' ');
    string(out, p.encoding.as_bytes());
    out.extend_from_slice(format!(" {}", p.body.len()).as_bytes());
    if let Kind::Message(m) = &p.kind {
        out.push(b' ');
        out.extend_from_slice(&m.envelope);
        out.push(b' ');
        write_part(out, &m.body, ext);
        out.extend_from_slice(format!(" {}", p.lines).as_bytes());
    } else if p.ctype == "text" {
        out.extend_from_slice(format!(" {}", p.lines).as_bytes());
    }
    if ext {
        out.extend_from_slice(b" NIL ");
        write_disposition(out, &p.disposition);
        out.extend_from_slice(b" NIL NIL");
    }
    out.push(b')');
}

/// One element of an ENVELOPE address list (RFC 9051 §7.5.2 `address`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AddressItem {
    Mailbox {
        name: Option<String>,
        adl: Option<String>,
        mailbox: String,
        host: String,
    },
    /// RFC 5322 group syntax `name: ...;`: `(NIL NIL name NIL)` …
    GroupStart(String),
    /// … `(NIL NIL NIL NIL)`.
    GroupEnd,
}

/// What a missing part of an address becomes: a NIL host would read as a group start.
const MISSING_MAILBOX: &str = "MISSING_MAILBOX";
const MISSING_DOMAIN: &str = "MISSING_DOMAIN";

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// An atom or a dot-atom (`.` included), or a domain literal `[...]`.
    Atom(String),
    /// A quoted string, unescaped.
    Quoted(String),
    Special(char),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Atom(s) | Token::Quoted(s) => s.clone(),
            Token::Special(c) => c.to_string(),
        }
    }
}

/// RFC 5322 §3.2-3.4 tokens, comments dropped. Never fails: stray characters are atoms.
fn tokens(value: &str) -> Vec<Token> {
    let chars: Vec<char> = value.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                let mut depth = 0usize;
                while i < chars.len() {
                    match chars[i] {
                        '\\' => i += 1,
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    s.push(chars[i]);
                    i += 1;
                }
                i += 1;
                out.push(Token::Quoted(s));
            }
            '[' => {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == ']')
                    .map_or(chars.len(), |p| i + p + 1);
                out.push(Token::Atom(chars[i..end].iter().collect()));
                i = end;
            }
            '<' | '>' | '@' | ',' | ':' | ';' => {
                out.push(Token::Special(c));
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !"()\"[<>@,:;".contains(chars[i])
                {
                    i += 1;
                }
                out.push(Token::Atom(chars[start..i].iter().collect()));
            }
        }
    }
    out
}

/// A display name: its words joined by one space, encoded words left as they are (as the
/// ENVELOPE subject is).
fn phrase(words: &[Token]) -> Option<String> {
    let name = words.iter().map(Token::text).collect::<Vec<_>>().join(" ");
    (!name.trim().is_empty()).then(|| name.trim().to_string())
}

/// `local@domain` (and its obsolete forms) to mailbox and host.
fn addr_spec(spec: &[Token]) -> (String, String) {
    let at = spec.iter().rposition(|t| *t == Token::Special('@'));
    let (local, domain) = match at {
        Some(at) => (&spec[..at], Some(&spec[at + 1..])),
        None => (spec, None),
    };
    let join = |ts: &[Token]| -> String {
        let mut s = String::new();
        for (i, t) in ts.iter().enumerate() {
            let text = t.text();
            let glued = i == 0 || text.starts_with('.') || s.ends_with('.');
            if !glued {
                s.push(' ');
            }
            s.push_str(&text);
        }
        s
    };
    let mailbox = join(local);
    let host = domain.map(join).unwrap_or_default();
    (
        if mailbox.is_empty() {
            MISSING_MAILBOX.into()
        } else {
            mailbox
        },
        if host.is_empty() {
            MISSING_DOMAIN.into()
        } else {
            host
        },
    )
}

/// One `mailbox` (RFC 5322 §3.4): `name <addr>`, `<@route:addr>` or a bare `addr`.
fn mailbox(seg: &[Token]) -> Option<AddressItem> {
    if seg.is_empty() {
        return None;
    }
    if let Some(open) = seg.iter().position(|t| *t == Token::Special('<')) {
        let close = seg[open..]
            .iter()
            .position(|t| *t == Token::Special('>'))
            .map_or(seg.len(), |p| open + p);
        let inner = &seg[open + 1..close];
        let name = phrase(&seg[..open]);
        // Obsolete routes: `<@a,@b:user@host>` (RFC 5322 §4.4).
        let (adl, spec) = match inner.iter().position(|t| *t == Token::Special(':')) {
            Some(colon) => {
                let route: String = inner[..colon].iter().map(Token::text).collect();
                (Some(route), &inner[colon + 1..])
            }
            None => (None, inner),
        };
        if name.is_none() && adl.is_none() && spec.is_empty() {
            // `<>`: no address at all.
            return None;
        }
        let (mailbox, host) = addr_spec(spec);
        return Some(AddressItem::Mailbox {
            name,
            adl,
            mailbox,
            host,
        });
    }
    let (mailbox, host) = addr_spec(seg);
    Some(AddressItem::Mailbox {
        name: None,
        adl: None,
        mailbox,
        host,
    })
}

/// An address list header value (RFC 5322 §3.4 `address-list`, groups included) as the
/// ENVELOPE shows it. Never fails: anything odd still gives well-formed addresses.
pub(crate) fn address_list(value: &str) -> Vec<AddressItem> {
    let toks = tokens(value);
    let mut out = Vec::new();
    let mut seg: Vec<Token> = Vec::new();
    let mut in_group = false;
    let mut angle = false;
    for t in toks {
        match t {
            Token::Special('<') if !angle => {
                angle = true;
                seg.push(t);
            }
            Token::Special('>') if angle => {
                angle = false;
                seg.push(t);
            }
            _ if angle => seg.push(t),
            Token::Special(':') if !in_group && !seg.is_empty() => {
                out.push(AddressItem::GroupStart(
                    phrase(&seg).unwrap_or_else(|| seg.iter().map(Token::text).collect()),
                ));
                seg.clear();
                in_group = true;
            }
            Token::Special(',') => out.extend(mailbox(&std::mem::take(&mut seg))),
            Token::Special(';') => {
                out.extend(mailbox(&std::mem::take(&mut seg)));
                if in_group {
                    out.push(AddressItem::GroupEnd);
                    in_group = false;
                }
            }
            t => seg.push(t),
        }
    }
    out.extend(mailbox(&seg));
    if in_group {
        out.push(AddressItem::GroupEnd);
    }
    out
}

fn write_addresses(out: &mut Vec<u8>, items: &[AddressItem]) {
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for item in items {
        match item {
            AddressItem::Mailbox {
                name,
                adl,
                mailbox,
                host,
            } => {
                out.push(b'(');
                nstring(out, name.as_deref().map(str::as_bytes));
                out.push(b' ');
                nstring(out, adl.as_deref().map(str::as_bytes));
                out.push(b' ');
                string(out, mailbox.as_bytes());
                out.push(b' ');
                string(out, host.as_bytes());
                out.push(b')');
            }
            AddressItem::GroupStart(name) => {
                out.extend_from_slice(b"(NIL NIL ");
                string(out, name.as_bytes());
                out.extend_from_slice(b" NIL)");
            }
            AddressItem::GroupEnd => out.extend_from_slice(b"(NIL NIL NIL NIL)"),
        }
    }
    out.push(b')');
}

/// ENVELOPE (RFC 9051 §7.5.2, RFC 3501 §7.4.2) from the raw header block: the strings as
/// written (encoded words are the client's to decode), address lists parsed here so that
/// groups and odd addresses keep a well-formed shape.
pub(super) fn write_envelope(out: &mut Vec<u8>, header: &[u8]) {
    let raw = |name: &str| header_value(header, name);
    let list = |name: &str| raw(name).map(|v| address_list(&v)).unwrap_or_default();
    out.push(b'(');
    nstring(out, raw("Date").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, raw("Subject").as_deref().map(str::as_bytes));
    let from = list("From");
    // RFC 3501 §7.4.2: Sender and Reply-To, absent or empty, default to From.
    let or_from = |l: Vec<AddressItem>| if l.is_empty() { None } else { Some(l) };
    let sender = or_from(list("Sender"));
    let reply_to = or_from(list("Reply-To"));
    for a in [
        &from,
        sender.as_ref().unwrap_or(&from),
        reply_to.as_ref().unwrap_or(&from),
        &list("To"),
        &list("Cc"),
        &list("Bcc"),
    ] {
        out.push(b' ');
        write_addresses(out, a);
    }
    out.push(b' ');
    nstring(out, raw("In-Reply-To").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, raw("Message-ID").as_deref().map(str::as_bytes));
    out.push(b')');
}
