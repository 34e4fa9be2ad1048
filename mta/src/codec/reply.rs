//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463).

use std::borrow::Cow;

/// One reply: a 3-digit code, an enhanced status code (`None` for the greeting and EHLO, which
/// carry none, RFC 2034 §3), and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<&'static str>,
    pub lines: Vec<Cow<'static, str>>,
}

impl Reply {
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    pub fn plain(code: u16, lines: Vec<Cow<'static, str>>) -> Self {
        Self {
            code,
            enhanced: None,
            lines,
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// `250-first`, …, `250 last`, each line CRLF-terminated. Text is sanitised: control
    /// characters (from a client-supplied value, e.g. an EHLO name) become spaces, so that a CR
    /// or LF cannot inject a reply and no NUL reaches the client.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let n = self.lines.len().max(1);
        for i in 0..n {
            let sep = if i + 1 == n { ' ' } else { '-' };
            let text = self.lines.get(i).map(|l| l.as_ref()).unwrap_or("");
            out.extend_from_slice(format!("{}{}", self.code, sep).as_bytes());
            if let Some(e) = self.enhanced {
                out.extend_from_slice(e.as_bytes());
                out.push(b' ');
            }
            out.extend(
                text.bytes()
                    .map(|b| if b < 0x20 || b == 0x7f { b' ' } else { b }),
            );
            out.extend_from_slice(b"\r\n");
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(String::from_utf8_lossy(&self.to_bytes()).trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line_replies() {
        assert_eq!(
            Reply::new(250, "2.1.0", "sender ok").to_bytes(),
            b"250 2.1.0 sender ok\r\n"
        );
        let ehlo = Reply::plain(
            250,
            vec!["mx.test".into(), "PIPELINING".into(), "SIZE 10".into()],
        );
        assert_eq!(
            ehlo.to_bytes(),
            b"250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
    }

    #[test]
    fn control_characters_in_text_cannot_inject_replies() {
        let r = Reply::new(550, "5.1.1", "no such user: a\r\n250 ok");
        assert_eq!(r.to_bytes(), b"550 5.1.1 no such user: a  250 ok\r\n");
        let r = Reply::plain(250, vec!["greets a\0b\x7f".into()]);
        assert_eq!(r.to_bytes(), b"250 greets a b \r\n");
    }
}
