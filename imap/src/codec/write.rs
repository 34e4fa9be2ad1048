//! Writing IMAP strings (RFC 9051 §4.3): quoted when that is safe, a literal otherwise.

/// `s` as a quoted string, or as a literal when it has CR, LF, NUL or 8-bit bytes.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter()
        .any(|&b| b == b'\r' || b == b'\n' || b == 0 || b >= 0x80)
    {
        literal(out, s);
        return;
    }
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// `NIL` for `None`.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// A string built for a response line (mailbox names, ID values…).
pub fn quoted(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    string(&mut out, s.as_bytes());
    out
}

/// Ascending numbers as a sequence set: `1:3,7`.
pub fn sequence_set(numbers: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j + 1] == numbers[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            numbers[i].to_string()
        } else {
            format!("{}:{}", numbers[i], numbers[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_or_literal() {
        assert_eq!(quoted("a \"b\\"), b"\"a \\\"b\\\\\"".to_vec());
        assert_eq!(quoted("é"), b"{2}\r\n\xc3\xa9".to_vec());
    }
}
