//! The SMTP client of the outbound queue: one transaction to a peer operator, TLS mandatory
//! (STARTTLS, certificate verified), per-recipient results.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use mshub_directory::{Address, Route};

/// A reply as read from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReply {
    pub code: u16,
    pub text: String,
}

impl PeerReply {
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
}

impl std::fmt::Display for PeerReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Why a whole attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// Try again later (connection refused, timeout, 4xx, TLS failure…).
    Temporary(String),
    /// The peer refused the transaction for good (5xx to MAIL FROM or DATA).
    Permanent(String),
}

fn temp(e: impl std::fmt::Display) -> AttemptError {
    AttemptError::Temporary(e.to_string())
}

pub struct Transaction<'a> {
    pub helo: &'a str,
    pub from: Option<&'a Address>,
    pub env_id: Option<&'a str>,
    pub ret_full: bool,
    /// Recipients with their NOTIFY flags and ORCPT.
    pub recipients: Vec<(&'a Address, u64, Option<&'a str>)>,
    pub message: &'a [u8],
}

const TIMEOUT: Duration = Duration::from_secs(60);

struct Conn<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn read_reply(&mut self) -> Result<PeerReply, AttemptError> {
        let mut text = Vec::new();
        for _ in 0..100 {
            let mut line = String::new();
            let n = tokio::time::timeout(TIMEOUT, (&mut self.io).take(4096).read_line(&mut line))
                .await
                .map_err(|_| temp("timeout waiting for the peer's reply"))?
                .map_err(temp)?;
            if n == 0 {
                return Err(temp("the peer closed the connection"));
            }
            let line = line.trim_end();
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| temp(format!("malformed reply from peer: {line:?}")))?;
            text.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(PeerReply {
                    code,
                    text: text.join(" / "),
                });
            }
        }
        Err(temp("reply from peer has too many lines"))
    }

    async fn command(&mut self, line: &str) -> Result<PeerReply, AttemptError> {
        tokio::time::timeout(TIMEOUT, async {
            self.io.get_mut().write_all(line.as_bytes()).await?;
            self.io.get_mut().write_all(b"\r\n").await?;
            self.io.get_mut().flush().await
        })
        .await
        .map_err(|_| temp("timeout writing to the peer"))?
        .map_err(temp)?;
        self.read_reply().await
    }
}

fn expect(reply: PeerReply, code: u16, what: &str) -> Result<PeerReply, AttemptError> {
    if reply.code == code || (code == 250 && (200..300).contains(&reply.code)) {
        Ok(reply)
    } else if reply.is_permanent() {
        Err(AttemptError::Permanent(format!("{what}: {reply}")))
    } else {
        Err(AttemptError::Temporary(format!("{what}: {reply}")))
    }
}

/// RFC 5321 §4.5.2: a line starting with "." gets one more.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// RFC 3461 §4: xtext for ENVID and ORCPT values.
fn xtext(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if (33..=126).contains(&b) && b != b'+' && b != b'=' {
                (b as char).to_string()
            } else {
                format!("+{b:02X}")
            }
        })
        .collect()
}

/// Runs one transaction; `Ok` holds each recipient's reply (2xx accepted, else refused).
pub async fn deliver(
    route: &Route,
    connector: &TlsConnector,
    tx: &Transaction<'_>,
) -> Result<Vec<PeerReply>, AttemptError> {
    let tcp = tokio::time::timeout(
        TIMEOUT,
        TcpStream::connect((route.host.as_str(), route.port)),
    )
    .await
    .map_err(|_| temp(format!("timeout connecting to {route}")))?
    .map_err(|e| temp(format!("cannot connect to {route}: {e}")))?;
    let mut plain = Conn {
        io: BufReader::new(tcp),
    };
    expect(plain.read_reply().await?, 220, "greeting")?;
    let ehlo = expect(
        plain.command(&format!("EHLO {}", tx.helo)).await?,
        250,
        "EHLO",
    )?;
    if !ehlo.text.to_ascii_uppercase().contains("STARTTLS") {
        return Err(temp(format!(
            "{route} does not offer STARTTLS: TLS is mandatory in the trust space"
        )));
    }
    expect(plain.command("STARTTLS").await?, 220, "STARTTLS")?;
    if !plain.io.buffer().is_empty() {
        return Err(temp("the peer sent data before the TLS handshake"));
    }
    let name = rustls::pki_types::ServerName::try_from(route.host.clone())
        .map_err(|e| temp(format!("invalid host name {}: {e}", route.host)))?;
    let tls = tokio::time::timeout(TIMEOUT, connector.connect(name, plain.io.into_inner()))
        .await
        .map_err(|_| temp("timeout in the TLS handshake"))?
        .map_err(|e| temp(format!("TLS with {route} failed: {e}")))?;
    let mut conn = Conn {
        io: BufReader::new(tls),
    };
    let ehlo = expect(
        conn.command(&format!("EHLO {}", tx.helo)).await?,
        250,
        "EHLO",
    )?;
    let caps = ehlo.text.to_ascii_uppercase();
    let dsn = caps.split(" / ").any(|c| c == "DSN");
    let utf8 = caps.split(" / ").any(|c| c == "SMTPUTF8");

    let from = tx.from.map(|a| a.to_string()).unwrap_or_default();
    let mut mail = format!("MAIL FROM:<{from}>");
    if dsn {
        mail.push_str(if tx.ret_full {
            " RET=FULL"
        } else {
            " RET=HDRS"
        });
        if let Some(id) = tx.env_id {
            mail.push_str(&format!(" ENVID={}", xtext(id)));
        }
    }
    if utf8 && !tx.message.is_ascii() {
        mail.push_str(" SMTPUTF8");
    }
    expect(conn.command(&mail).await?, 250, "MAIL FROM")?;

    let mut results = Vec::with_capacity(tx.recipients.len());
    for (rcpt, notify, orcpt) in &tx.recipients {
        let mut line = format!("RCPT TO:<{rcpt}>");
        if dsn {
            let mut n = Vec::new();
            if notify & smtp_proto::RCPT_NOTIFY_NEVER != 0 {
                n.push("NEVER");
            } else {
                if notify & smtp_proto::RCPT_NOTIFY_SUCCESS != 0 {
                    n.push("SUCCESS");
                }
                if notify & smtp_proto::RCPT_NOTIFY_FAILURE != 0 {
                    n.push("FAILURE");
                }
                if notify & smtp_proto::RCPT_NOTIFY_DELAY != 0 {
                    n.push("DELAY");
                }
            }
            if !n.is_empty() {
                line.push_str(&format!(" NOTIFY={}", n.join(",")));
            }
            if let Some(o) = orcpt {
                line.push_str(&format!(" ORCPT={}", xtext(o)));
            }
        }
        results.push(conn.command(&line).await?);
    }
    if results.iter().all(|r| r.code >= 300) {
        let _ = conn.command("QUIT").await;
        return Ok(results);
    }
    expect(conn.command("DATA").await?, 354, "DATA")?;
    let body = dot_stuff(tx.message);
    tokio::time::timeout(TIMEOUT * 5, async {
        conn.io.get_mut().write_all(&body).await?;
        conn.io.get_mut().flush().await
    })
    .await
    .map_err(|_| temp("timeout sending the message"))?
    .map_err(temp)?;
    let end = conn.read_reply().await?;
    let end = expect(end, 250, "end of DATA")?;
    let _ = conn.command("QUIT").await;
    Ok(results
        .into_iter()
        .map(|r| if r.code < 300 { end.clone() } else { r })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(
            dot_stuff(b"a\r\n.b\r\n..c\r\n"),
            b"a\r\n..b\r\n...c\r\n.\r\n"
        );
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
    }

    #[test]
    fn xtext_encodes_plus_equals_and_controls() {
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
    }
}
