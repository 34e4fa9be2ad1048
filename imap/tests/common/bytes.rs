//! A client that keeps a reply's bytes as they came (literals and literal8s inline, NUL
//! octets included), for the conformance tests that look at FETCH data byte by byte.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::io::{ReadHalf, WriteHalf};

use super::{connect, hub, Hub, MARTIN};

pub struct Client {
    rd: BufReader<ReadHalf<DuplexStream>>,
    wr: WriteHalf<DuplexStream>,
}

/// A reply as bytes: every line up to and including the tagged one, literals inline.
pub struct Reply {
    pub raw: Vec<u8>,
    pub tagged: String,
}

impl Reply {
    /// The value of the FETCH item `label` (e.g. `BODY[1.MIME]`): a literal's or literal8's
    /// bytes, a quoted string's content, or `None` for NIL or no such item.
    pub fn item(&self, label: &str) -> Option<Vec<u8>> {
        let needle = format!("{label} ");
        let at = self
            .raw
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .unwrap_or_else(|| panic!("{label} missing in {}", self.text()));
        let mut rest = &self.raw[at + needle.len()..];
        if rest.starts_with(b"NIL") {
            return None;
        }
        if let Some(r) = rest.strip_prefix(b"~") {
            rest = r;
        }
        if let Some(r) = rest.strip_prefix(b"{") {
            let close = r.iter().position(|&b| b == b'}').unwrap();
            let n: usize = std::str::from_utf8(&r[..close]).unwrap().parse().unwrap();
            let body = &r[close + 3..];
            return Some(body[..n].to_vec());
        }
        let r = rest
            .strip_prefix(b"\"")
            .expect("a literal, a quoted string or NIL");
        let close = r.iter().position(|&b| b == b'"').unwrap();
        Some(r[..close].to_vec())
    }

    /// The raw bytes just after `label ` (to see the literal's form or a number).
    pub fn after(&self, label: &str) -> String {
        let needle = format!("{label} ");
        let at = self
            .raw
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .unwrap_or_else(|| panic!("{label} missing in {}", self.text()));
        let rest = &self.raw[at + needle.len()..];
        let end = rest
            .iter()
            .position(|&b| b == b' ' || b == b')' || b == b'\r')
            .unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

impl Client {
    pub async fn login() -> (Hub, Client) {
        let hub = hub();
        let (rd, wr) = connect(&hub);
        let mut c = Client {
            rd: BufReader::new(rd),
            wr,
        };
        let greeting = c.line().await;
        assert!(greeting.starts_with(b"* OK"));
        let r = c.cmd("l", &format!("LOGIN {MARTIN} demo-martin")).await;
        assert!(r.tagged.starts_with("l OK "), "{}", r.text());
        (hub, c)
    }

    pub async fn line(&mut self) -> Vec<u8> {
        let mut s = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), self.rd.read_until(b'\n', &mut s))
            .await
            .expect("a reply within 10 s")
            .unwrap();
        s
    }

    pub async fn send(&mut self, raw: &[u8]) {
        self.wr.write_all(raw).await.unwrap();
    }

    pub async fn cmd(&mut self, tag: &str, line: &str) -> Reply {
        self.send(format!("{tag} {line}\r\n").as_bytes()).await;
        self.until(tag).await
    }

    pub async fn until(&mut self, tag: &str) -> Reply {
        let mut raw = Vec::new();
        loop {
            let l = self.line().await;
            raw.extend_from_slice(&l);
            let trimmed = l.strip_suffix(b"\r\n").unwrap_or(&l);
            if let Some(n) = literal_at_end(trimmed) {
                let mut buf = vec![0; n];
                self.rd.read_exact(&mut buf).await.unwrap();
                raw.extend_from_slice(&buf);
                continue;
            }
            if l.starts_with(format!("{tag} ").as_bytes()) {
                let tagged = String::from_utf8_lossy(trimmed).into_owned();
                return Reply { raw, tagged };
            }
        }
    }

    /// APPEND with a literal (`{n}`) or a literal8 (`~{n}`); the tagged reply.
    pub async fn append(&mut self, msg: &[u8], literal8: bool) -> String {
        let tilde = if literal8 { "~" } else { "" };
        self.send(format!("ap APPEND INBOX {tilde}{{{}}}\r\n", msg.len()).as_bytes())
            .await;
        let cont = self.line().await;
        assert!(
            cont.starts_with(b"+ "),
            "{}",
            String::from_utf8_lossy(&cont)
        );
        self.send(msg).await;
        self.send(b"\r\n").await;
        self.until("ap").await.tagged
    }
}

pub fn literal_at_end(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&inner[open + 1..]).ok()?.parse().ok()
}

pub fn crlf(s: &str) -> Vec<u8> {
    s.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}
