//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3), which IMAP4rev1 clients use; the store and
//! IMAP4rev2 clients use UTF-8 (RFC 9051 §5.1).

use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

fn engine() -> Option<GeneralPurpose> {
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").ok()?;
    Some(GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    ))
}

/// UTF-8 to modified UTF-7.
pub fn encode(name: &str) -> String {
    let Some(engine) = engine() else {
        return name.to_string();
    };
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&engine.encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Modified UTF-7 (UTF-8 outside `&…-` is accepted as is) to UTF-8; `None` if invalid.
pub fn decode(name: &str) -> Option<String> {
    if !name.contains('&') {
        return Some(name.to_string());
    }
    let engine = engine()?;
    let mut out = String::new();
    let mut rest = name;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('-')?;
        let b64 = &after[..end];
        if b64.is_empty() {
            out.push('&');
        } else {
            let bytes = engine.decode(b64).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            let decoded = String::from_utf16(&units).ok()?;
            // RFC 3501: printable ASCII must not be base64-encoded.
            if decoded.chars().any(|c| (' '..='~').contains(&c)) {
                return None;
            }
            out.push_str(&decoded);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc_examples() {
        assert_eq!(encode("Résultats"), "R&AOk-sultats");
        assert_eq!(decode("R&AOk-sultats").as_deref(), Some("Résultats"));
        assert_eq!(encode("A & B"), "A &- B");
        assert_eq!(decode("A &- B").as_deref(), Some("A & B"));
        assert_eq!(encode("台北"), "&U,BTFw-");
        assert_eq!(decode("&U,BTFw-").as_deref(), Some("台北"));
        assert_eq!(decode("bad&AOk"), None);
        assert_eq!(decode("&AGE-"), None);
    }
}
