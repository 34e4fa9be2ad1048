//! A stored message as FETCH and SEARCH see it: its MIME tree (parsed with mail-parser, lazily
//! at the first FETCH that needs it — the header block alone needs no parse), ENVELOPE,
//! BODYSTRUCTURE and sections (RFC 9051 §6.4.5, §7.5.2). Nothing is precomputed at delivery:
//! the session keeps a few parsed messages, and the store keeps recently read ones opened.

mod structure;

use std::ops::Range;

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders, PartType};

use crate::codec::{Section, SectionText};
use structure::{write_envelope, write_part};

/// Encapsulated messages deeper than this are shown as opaque parts.
const MAX_NESTING: usize = 8;

pub struct Parsed {
    pub raw: Vec<u8>,
    /// End of the top-level header block: HEADER, HEADER.FIELDS and TEXT need no more.
    header_end: usize,
    /// The MIME tree, ENVELOPE included, built at the first FETCH that needs it.
    root: std::sync::OnceLock<MessageNode>,
    decoded: std::sync::OnceLock<Decoded>,
}

/// What SEARCH compares besides the raw bytes: header values and text bodies as mail-parser
/// decodes them (RFC 2047 encoded words, quoted-printable, base64, charsets).
#[derive(Default)]
pub struct Decoded {
    /// (lower-case header name, decoded value).
    pub headers: Vec<(String, String)>,
    pub text: String,
}

fn address_text(a: &Address<'_>) -> String {
    let one = |x: &mail_parser::Addr<'_>| {
        format!(
            "{} <{}>",
            x.name.as_deref().unwrap_or(""),
            x.address.as_deref().unwrap_or("")
        )
    };
    match a {
        Address::List(l) => l.iter().map(one).collect::<Vec<_>>().join(", "),
        Address::Group(g) => g
            .iter()
            .flat_map(|g| g.addresses.iter().map(one))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

pub struct MessageNode {
    pub header: Range<usize>,
    pub text: Range<usize>,
    pub envelope: Vec<u8>,
    pub body: Part,
}

pub struct Part {
    header: Range<usize>,
    body: Range<usize>,
    ctype: String,
    subtype: String,
    params: Vec<(String, String)>,
    id: Option<String>,
    description: Option<String>,
    encoding: String,
    disposition: Option<(String, Vec<(String, String)>)>,
    lines: usize,
    kind: Kind,
}

enum Kind {
    Leaf,
    Multipart(Vec<Part>),
    Message(Box<MessageNode>),
}

/// End of the header block: just after the empty line (or the whole input if there is none).
pub fn header_end(raw: &[u8]) -> usize {
    if raw.starts_with(b"\r\n") {
        return 2;
    }
    if raw.starts_with(b"\n") {
        return 1;
    }
    let mut i = 0;
    while let Some(p) = raw[i..].iter().position(|&b| b == b'\n') {
        let next = i + p + 1;
        match raw.get(next..) {
            Some([b'\r', b'\n', ..]) => return next + 2,
            Some([b'\n', ..]) => return next + 1,
            _ => i = next,
        }
    }
    raw.len()
}

impl Parsed {
    pub fn new(raw: Vec<u8>) -> Self {
        Parsed {
            header_end: header_end(&raw),
            raw,
            root: std::sync::OnceLock::new(),
            decoded: std::sync::OnceLock::new(),
        }
    }

    fn root(&self) -> &MessageNode {
        self.root.get_or_init(|| message_node(&self.raw, 0, 0))
    }

    /// Decoded headers and text, computed at the first SEARCH that needs them.
    pub fn decoded(&self) -> &Decoded {
        self.decoded.get_or_init(|| {
            let Some(m) = MessageParser::default().parse(&self.raw) else {
                return Decoded::default();
            };
            let headers = m
                .headers()
                .iter()
                .filter_map(|h| {
                    let value = match h.value() {
                        HeaderValue::Text(t) => t.to_string(),
                        HeaderValue::TextList(l) => l.join(" "),
                        HeaderValue::Address(a) => address_text(a),
                        _ => return None,
                    };
                    Some((h.name().to_ascii_lowercase(), value))
                })
                .collect();
            let mut text = String::new();
            for i in 0..m.text_body_count() {
                if let Some(t) = m.body_text(i) {
                    text.push_str(&t);
                    text.push('\n');
                }
            }
            Decoded { headers, text }
        })
    }

    pub fn header(&self) -> &[u8] {
        &self.raw[..self.header_end]
    }

    pub fn text(&self) -> &[u8] {
        &self.raw[self.header_end..]
    }

    pub fn envelope(&self) -> &[u8] {
        &self.root().envelope
    }

    pub fn body_structure(&self, extensible: bool) -> Vec<u8> {
        let mut out = Vec::new();
        write_part(&mut out, &self.root().body, extensible);
        out
    }

    /// The bytes of `BODY[section]`, or `None` if the section does not exist.
    pub fn section(&self, section: &Section) -> Option<Vec<u8>> {
        let raw = &self.raw;
        let message_text = |m: &MessageNode, text: &SectionText| -> Vec<u8> {
            match text {
                SectionText::Header | SectionText::Mime => raw[m.header.clone()].to_vec(),
                SectionText::Text => raw[m.text.clone()].to_vec(),
                SectionText::HeaderFields { not, fields } => {
                    header_fields(&raw[m.header.clone()], fields, *not)
                }
            }
        };
        if section.part.is_empty() {
            // The top level: from the header block's end, without building the MIME tree.
            return Some(match &section.text {
                None => raw.clone(),
                Some(SectionText::Header | SectionText::Mime) => self.header().to_vec(),
                Some(SectionText::Text) => self.text().to_vec(),
                Some(SectionText::HeaderFields { not, fields }) => {
                    header_fields(self.header(), fields, *not)
                }
            });
        }
        let part = find_part(self.root(), &section.part)?;
        match (&section.text, &part.kind) {
            (None, _) => Some(raw[part.body.clone()].to_vec()),
            (Some(SectionText::Mime), _) => Some(raw[part.header.clone()].to_vec()),
            (Some(t), Kind::Message(m)) => Some(message_text(m, t)),
            _ => None,
        }
    }
}

/// What FETCH ENVELOPE, BODYSTRUCTURE and BODY answer, ready to send: computed once for a
/// large message and kept sealed beside it by the store ([`Structure::KIND`]), so that a client
/// listing a mailbox does not make the hub decrypt and parse megabytes again.
pub struct Structure {
    pub envelope: Vec<u8>,
    pub extensible: Vec<u8>,
    pub basic: Vec<u8>,
}

impl Structure {
    /// The store's name for it. `-v2`: ENVELOPE with RFC 5322 groups and display names as
    /// written; `-v3`: a message/rfc822 part in base64 or quoted-printable is opaque. Structures
    /// cached under an earlier name are not read again (recomputed).
    pub const KIND: &'static str = "imap-structure-v3";

    pub fn of(parsed: &Parsed) -> Self {
        Self {
            envelope: parsed.envelope().to_vec(),
            extensible: parsed.body_structure(true),
            basic: parsed.body_structure(false),
        }
    }

    /// Three length-prefixed (u32, big-endian) byte strings.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [&self.envelope, &self.extensible, &self.basic] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut rest = bytes;
        let mut next = || -> Option<Vec<u8>> {
            let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let part = rest.get(4..4 + len)?.to_vec();
            rest = &rest[4 + len..];
            Some(part)
        };
        let (envelope, extensible, basic) = (next()?, next()?, next()?);
        Some(Self {
            envelope,
            extensible,
            basic,
        })
    }
}

/// Why `BINARY[part]` cannot be served.
pub enum BinaryError {
    NoSuchPart,
    /// RFC 3516 §4.3 UNKNOWN-CTE.
    UnknownEncoding,
}

impl Parsed {
    /// `BINARY[part]` (RFC 3516): the part's content with its transfer encoding undone.
    pub fn binary(&self, part: &[u32]) -> Result<Vec<u8>, BinaryError> {
        if part.is_empty() {
            return Ok(self.raw.clone());
        }
        let p = find_part(self.root(), part).ok_or(BinaryError::NoSuchPart)?;
        let body = &self.raw[p.body.clone()];
        if !matches!(p.kind, Kind::Leaf) {
            return Ok(body.to_vec());
        }
        match p.encoding.as_str() {
            "7bit" | "8bit" | "binary" => Ok(body.to_vec()),
            "base64" => Ok(base64_decode(body)),
            "quoted-printable" => Ok(quoted_printable(body)),
            _ => Err(BinaryError::UnknownEncoding),
        }
    }
}

/// RFC 2045 §6.7, line by line: white space at the end of an encoded line is removed (rule
/// 3, transports may add it), an `=` then ending the line is a soft line break (rule 5), `=XX`
/// in either case is an octet (rule 1; upper case is the canonical form, lower case is accepted
/// as RFC 2045 §6.7 recommends), and hard line breaks are kept as they are. Bad escapes are
/// kept as they are.
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let (line, eol, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) if i > 0 && rest[i - 1] == b'\r' => (&rest[..i - 1], &rest[i - 1..=i], i + 1),
            Some(i) => (&rest[..i], &rest[i..=i], i + 1),
            None => (rest, &rest[rest.len()..], rest.len()),
        };
        rest = &rest[next..];
        let line = match line.iter().rposition(|&b| b != b' ' && b != b'\t') {
            Some(last) => &line[..=last],
            None => &line[..0],
        };
        let (line, soft) = match line.strip_suffix(b"=") {
            Some(l) => (l, true),
            None => (line, false),
        };
        let mut i = 0;
        while i < line.len() {
            if line[i] == b'=' {
                if let (Some(h), Some(l)) = (
                    line.get(i + 1).copied().and_then(hex),
                    line.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
            out.push(line[i]);
            i += 1;
        }
        if !soft {
            out.extend_from_slice(eol);
        }
    }
    out
}

/// RFC 2045 §6.8: characters outside the base64 alphabet (line breaks, white space) are
/// ignored; `=` pads the last quantum (the bits it completes are kept, as for a missing pad),
/// and decoding goes on after it should the part concatenate several encoded pieces.
fn base64_decode(body: &[u8]) -> Vec<u8> {
    let value = |b: u8| -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(body.len() / 4 * 3);
    let (mut acc, mut n) = (0u32, 0);
    let flush = |out: &mut Vec<u8>, acc: u32, n: usize| {
        // n sextets (2 or 3) in a partial quantum carry n - 1 whole octets.
        let bytes = (acc << (6 * (4 - n))).to_be_bytes();
        out.extend_from_slice(&bytes[1..n]);
    };
    for &b in body {
        if let Some(v) = value(b) {
            acc = acc << 6 | v;
            n += 1;
            if n == 4 {
                out.extend_from_slice(&acc.to_be_bytes()[1..]);
                (acc, n) = (0, 0);
            }
        } else if b == b'=' && n > 0 {
            if n > 1 {
                flush(&mut out, acc, n);
            }
            (acc, n) = (0, 0);
        }
    }
    if n > 1 {
        flush(&mut out, acc, n);
    }
    out
}

/// The part a non-empty part number names (RFC 9051 §6.4.5): the first number is counted in
/// the message's body (1 alone if it is not multipart: the body itself, even a message/rfc822
/// one), the next ones in the part reached.
fn find_part<'a>(root: &'a MessageNode, part: &[u32]) -> Option<&'a Part> {
    let (&first, rest) = part.split_first()?;
    let mut p = message_child(root, first as usize)?;
    for &n in rest {
        p = child(p, n as usize)?;
    }
    Some(p)
}

/// Part `n` of a message: of its body's parts if multipart, else 1 is the body.
fn message_child(m: &MessageNode, n: usize) -> Option<&Part> {
    match &m.body.kind {
        Kind::Multipart(children) => children.get(n.checked_sub(1)?),
        _ => (n == 1).then_some(&m.body),
    }
}

/// RFC 9051 §6.4.5: part numbers inside an encapsulated message name its body's parts.
fn child(part: &Part, n: usize) -> Option<&Part> {
    match &part.kind {
        Kind::Multipart(children) => children.get(n.checked_sub(1)?),
        Kind::Message(m) => message_child(m, n),
        Kind::Leaf => (n == 1).then_some(part),
    }
}

/// The header lines (with their continuations) whose names are (not) in `fields`, then CRLF.
pub fn header_fields(header: &[u8], fields: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for line in header_lines(header) {
        let name = line.split(|&b| b == b':').next().unwrap_or(b"");
        let name = String::from_utf8_lossy(name);
        let listed = fields.iter().any(|f| f.eq_ignore_ascii_case(name.trim()));
        if listed != not && line.contains(&b':') {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Each header field of a header block, with its folded continuation lines.
pub fn header_lines(header: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < header.len() {
        let end = header[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |p| i + p + 1);
        let continuation = i > start && matches!(header.get(i), Some(b' ' | b'\t'));
        if !continuation && i > start {
            lines.push(&header[start..i]);
            start = i;
        }
        i = end;
    }
    if start < header.len() {
        lines.push(&header[start..]);
    }
    lines
        .into_iter()
        .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
        .collect()
}

/// The unfolded value of the first header `name`, if any.
pub fn header_value(header: &[u8], name: &str) -> Option<String> {
    header_lines(header).into_iter().find_map(|line| {
        let (n, v) = line.split_at(line.iter().position(|&b| b == b':')?);
        String::from_utf8_lossy(n)
            .trim()
            .eq_ignore_ascii_case(name)
            .then(|| {
                String::from_utf8_lossy(&v[1..])
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
    })
}

fn message_node(raw: &[u8], base: usize, depth: usize) -> MessageNode {
    let split = header_end(raw);
    let header = base..base + split;
    let text = base + split..base + raw.len();
    let parsed = MessageParser::default().parse(raw);
    let mut envelope = Vec::new();
    write_envelope(&mut envelope, &raw[..split]);
    let body = match &parsed {
        Some(m) if !m.parts.is_empty() => build_part(m, 0, raw, base, depth),
        _ => Part {
            header: header.clone(),
            body: text.clone(),
            ctype: "text".into(),
            subtype: "plain".into(),
            params: vec![("charset".into(), "us-ascii".into())],
            id: None,
            description: None,
            encoding: "7bit".into(),
            disposition: None,
            lines: count_lines(&raw[split..]),
            kind: Kind::Leaf,
        },
    };
    MessageNode {
        header,
        text,
        envelope,
        body,
    }
}

fn count_lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fn build_part(
    m: &mail_parser::Message<'_>,
    id: usize,
    raw: &[u8],
    base: usize,
    depth: usize,
) -> Part {
    let p = &m.parts[id];
    let clamp = |a: u32, b: u32| {
        let a = (a as usize).min(raw.len());
        a..(b as usize).clamp(a, raw.len())
    };
    let header = clamp(p.offset_header, p.offset_body);
    let body = clamp(p.offset_body, p.offset_end);
    let (mut ctype, mut subtype, mut params) = ("text".to_string(), "plain".to_string(), vec![]);
    if let Some(ct) = p.content_type() {
        ctype = ct.ctype().to_ascii_lowercase();
        subtype = ct
            .subtype()
            .unwrap_or(if ctype == "text" {
                "plain"
            } else {
                "octet-stream"
            })
            .to_ascii_lowercase();
        params = ct
            .attributes()
            .unwrap_or_default()
            .iter()
            .map(|a| (a.name.to_string(), a.value.to_string()))
            .collect();
    }
    if ctype == "text"
        && !params
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("charset"))
    {
        params.push(("charset".into(), "us-ascii".into()));
    }
    let disposition = p.content_disposition().map(|d| {
        (
            d.ctype().to_string(),
            d.attributes()
                .unwrap_or_default()
                .iter()
                .map(|a| (a.name.to_string(), a.value.to_string()))
                .collect(),
        )
    });
    let encoding = p
        .content_transfer_encoding()
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    // RFC 2046 §5.2.1: "No encoding other than "7bit", "8bit", or "binary" is permitted for
    // the body of a "message/rfc822" entity." One in base64 or quoted-printable (sent anyway by
    // some) is not opened: its sections are byte ranges of the stored message (RFC 9051
    // §6.4.5), which a decoded message would not be, so it is an opaque part, described below as
    // application/octet-stream; BINARY[n] decodes it for a client that wants it.
    let identity = matches!(encoding.as_str(), "7bit" | "8bit" | "binary");
    let kind = match &p.body {
        // Nested multiparts are bounded too (mail-parser bounds them; this is the backstop).
        PartType::Multipart(children) if depth < MAX_NESTING * 8 => Kind::Multipart(
            children
                .iter()
                .filter(|&&c| (c as usize) < m.parts.len() && c as usize != id)
                .map(|&c| build_part(m, c as usize, raw, base, depth + 1))
                .collect(),
        ),
        PartType::Message(_) if depth < MAX_NESTING && identity => Kind::Message(Box::new(
            message_node(&raw[body.clone()], base + body.start, depth + 1),
        )),
        _ => Kind::Leaf,
    };
    // A message/rfc822 part mail-parser did not open is described as opaque bytes.
    if ctype == "message" && subtype == "rfc822" && !matches!(kind, Kind::Message(_)) {
        ctype = "application".into();
        subtype = "octet-stream".into();
    }
    if ctype == "multipart" && !matches!(kind, Kind::Multipart(_)) {
        ctype = "application".into();
        subtype = "octet-stream".into();
    }
    Part {
        header: base + header.start..base + header.end,
        lines: count_lines(&raw[body.clone()]),
        body: base + body.start..base + body.end,
        ctype,
        subtype,
        params,
        id: p.content_id().map(|s| format!("<{s}>")),
        description: p.content_description().map(str::to_string),
        encoding,
        disposition,
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &[u8] = b"From: A <a@x.test>\r\nTo: b@y.test\r\nSubject: hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BB\"\r\n\r\npre\r\n--BB\r\nContent-Type: text/plain\r\n\r\nhello\r\n--BB\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--BB--\r\n";

    #[test]
    fn structure_and_sections_of_a_multipart() {
        let p = Parsed::new(MULTI.to_vec());
        let bs = String::from_utf8(p.body_structure(true)).unwrap();
        assert!(bs.starts_with("((\"text\" \"plain\""), "{bs}");
        assert!(bs.contains("\"mixed\" (\"boundary\" \"BB\")"), "{bs}");
        assert!(
            bs.contains("(\"attachment\" (\"filename\" \"r.pdf\"))"),
            "{bs}"
        );
        let one = Section {
            part: vec![1],
            text: None,
        };
        assert!(String::from_utf8(p.section(&one).unwrap())
            .unwrap()
            .starts_with("hello"));
        let env = String::from_utf8(p.envelope().to_vec()).unwrap();
        assert_eq!(
            env,
            "(NIL \"hi\" ((\"A\" NIL \"a\" \"x.test\")) ((\"A\" NIL \"a\" \"x.test\")) ((\"A\" NIL \"a\" \"x.test\")) ((NIL NIL \"b\" \"y.test\")) NIL NIL NIL NIL)"
        );
        assert_eq!(
            header_fields(p.header(), &["subject".into()], false),
            b"Subject: hi\r\n\r\n".to_vec()
        );
        assert!(p
            .section(&Section {
                part: vec![3],
                text: None
            })
            .is_none());
    }

    /// Truncations and corruptions of a multipart message never panic.
    #[test]
    fn every_prefix_and_corruption_of_a_message_is_served() {
        let sections = [
            Section {
                part: vec![],
                text: Some(SectionText::Header),
            },
            Section {
                part: vec![2],
                text: Some(SectionText::Mime),
            },
            Section {
                part: vec![1, 1],
                text: None,
            },
            Section {
                part: vec![2],
                text: Some(SectionText::Text),
            },
        ];
        for end in 0..MULTI.len() {
            for raw in [MULTI[..end].to_vec(), {
                let mut m = MULTI.to_vec();
                m[end] = b'-';
                m
            }] {
                let p = Parsed::new(raw);
                let _ = p.body_structure(true);
                let _ = p.decoded();
                for s in &sections {
                    let _ = p.section(s);
                }
            }
        }
    }

    /// RFC 2045 §6.7 as RFC 3516 §4.2 decodes it: soft breaks (even with white space after
    /// the `=`), trailing white space removed (rule 3), hex in either case, bad escapes kept.
    #[test]
    fn quoted_printable_is_decoded_exactly() {
        for (encoded, decoded) in [
            (&b"a=\r\nb"[..], &b"ab"[..]),
            (b"a= \t\r\nb", b"ab"),
            (b"a \t\r\nb  ", b"a\r\nb"),
            (b"=3d=3D=c3=A9", b"==\xc3\xa9"),
            (b"x=\ny\nz", b"xy\nz"),
            (b"=G1 =4", b"=G1 =4"),
            (b"a=09\r\n", b"a\t\r\n"),
            (b"", b""),
            (b"=", b""),
        ] {
            assert_eq!(
                quoted_printable(encoded),
                decoded,
                "{}",
                String::from_utf8_lossy(encoded)
            );
        }
    }

    /// RFC 2045 §6.8: line breaks and other characters outside the alphabet ignored, padding
    /// optional, pieces concatenated after padding decoded too.
    #[test]
    fn base64_is_decoded_exactly() {
        for (encoded, decoded) in [
            (&b"aGVs\r\nbG8=\r\n"[..], &b"hello"[..]),
            (b"aGVsbG8", b"hello"),
            (b"aGk=\r\naGk=", b"hihi"),
            (b"AAEC/wBo\r\n ZWxsbw==", b"\x00\x01\x02\xff\x00hello"),
            (b"aA==", b"h"),
            (b"!a*G-k", b"hi"),
            (b"", b""),
            (b"a", b""),
        ] {
            assert_eq!(
                base64_decode(encoded),
                decoded,
                "{}",
                String::from_utf8_lossy(encoded)
            );
        }
    }

    #[test]
    fn garbage_still_has_a_structure() {
        for raw in [
            &b""[..],
            b"no header at all",
            b"\xff\xfe\r\n\r\n",
            b"Content-Type: multipart/mixed\r\n\r\n",
        ] {
            let p = Parsed::new(raw.to_vec());
            assert!(!p.body_structure(true).is_empty());
        }
    }
}
