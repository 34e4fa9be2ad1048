//! Writing what FETCH shows of a parsed message: BODY / BODYSTRUCTURE (RFC 9051 §7.5.2
//! `body`) and ENVELOPE (`envelope`).

use mail_parser::{Address, HeaderValue};

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

fn write_addresses(out: &mut Vec<u8>, a: Option<&Address<'_>>) {
    let one = |out: &mut Vec<u8>, name: Option<&str>, addr: Option<&str>| {
        out.push(b'(');
        nstring(out, name.map(str::as_bytes));
        out.extend_from_slice(b" NIL ");
        let (local, host) = match addr {
            Some(a) => match a.rsplit_once('@') {
                Some((l, h)) => (Some(l), Some(h)),
                None => (Some(a), None),
            },
            None => (None, None),
        };
        nstring(out, local.map(str::as_bytes));
        out.push(b' ');
        nstring(out, host.map(str::as_bytes));
        out.push(b')');
    };
    let start = out.len();
    out.push(b'(');
    match a {
        Some(Address::List(list)) => {
            for addr in list {
                one(out, addr.name.as_deref(), addr.address.as_deref());
            }
        }
        Some(Address::Group(groups)) => {
            for g in groups {
                if let Some(name) = &g.name {
                    // RFC 9051 §7.5.2: a group is (NIL NIL name NIL) … (NIL NIL NIL NIL).
                    out.extend_from_slice(b"(NIL NIL ");
                    string(out, name.as_bytes());
                    out.extend_from_slice(b" NIL)");
                }
                for addr in &g.addresses {
                    one(out, addr.name.as_deref(), addr.address.as_deref());
                }
                if g.name.is_some() {
                    out.extend_from_slice(b"(NIL NIL NIL NIL)");
                }
            }
        }
        None => {}
    }
    if out.len() == start + 1 {
        out.truncate(start);
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b')');
    }
}

fn address<'m, 'x>(
    m: Option<&'m mail_parser::Message<'x>>,
    name: &'x str,
) -> Option<&'m Address<'x>> {
    m.and_then(|m| match m.header(name) {
        Some(HeaderValue::Address(a)) => Some(a),
        _ => None,
    })
}

pub(super) fn write_envelope(
    out: &mut Vec<u8>,
    header: &[u8],
    m: Option<&mail_parser::Message<'_>>,
) {
    let raw = |name: &str| header_value(header, name);
    let addr = |name: &'static str| address(m, name);
    out.push(b'(');
    nstring(out, raw("Date").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, raw("Subject").as_deref().map(str::as_bytes));
    let from = addr("From");
    // RFC 9051 §7.5.2: Sender and Reply-To default to From.
    for a in [
        from,
        addr("Sender").or(from),
        addr("Reply-To").or(from),
        addr("To"),
        addr("Cc"),
        addr("Bcc"),
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
