//! One SMTP session: a state machine driven by the bytes the client sends, generic over its
//! stream so tests run it over an in-memory pipe.
//!
//! Invariants:
//! - `250` to the end of DATA/BDAT is written only after [`crate::Delivery::deliver`] made every
//!   copy durable; on any storage error the reply is `451` and nothing is acknowledged;
//! - replies are buffered while pipelined input remains and flushed before the next read
//!   (RFC 2920);
//! - after STARTTLS, input already buffered is discarded (RFC 3207 §6: no command injection)
//!   and the session starts over (the server makes a new one on the TLS stream).

mod auth;
mod data;
mod transaction;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{DummyDataReceiver, LineReceiver};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use mshub_directory::Account;

use crate::codec::{BdatReceiver, DataReceiver, Reply, Request, RequestReceiver, SyntaxError};
use crate::peer::PeerCertificate;
use crate::policy::{Client, Door};
use crate::refusal::Refusal;
use crate::sources::Tracked;
use crate::Mta;

pub use data::has_bare_lf;
pub use transaction::Transaction;

/// What the server knows of a connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: u64,
    pub peer: SocketAddr,
    pub door: Door,
    pub tls: bool,
    /// The client certificate the TLS handshake verified, if the client presented one.
    pub peer_certificate: Option<PeerCertificate>,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Quit,
    /// The client closed the connection or it broke.
    Closed,
    TimedOut,
    /// `220` to STARTTLS was sent: the server upgrades the stream and starts a new session.
    StartTls,
    /// The server closed it after a `421` (limits).
    Dropped,
}

enum State {
    Command,
    Data(DataReceiver),
    Bdat(BdatReceiver),
    /// Bytes to swallow (oversize DATA, or a BDAT chunk that will be refused), then `reply`.
    Discard {
        receiver: DummyDataReceiver,
        reply: Reply,
        finishes_transaction: bool,
    },
    Auth(auth::AuthState, LineReceiver<()>),
    /// The rest of an overlong command line, dropped up to its LF: it is not a command.
    SkipLine,
}

pub struct Session<S> {
    mta: Arc<Mta>,
    io: S,
    conn: Connection,
    helo: Option<String>,
    account: Option<Account>,
    tx: Option<Transaction>,
    receiver: RequestReceiver,
    state: State,
    commands: u32,
    auth_failures: u32,
    out: Vec<u8>,
    /// Bytes of the command line read so far (split across reads).
    partial_line: usize,
    /// Its place among the connections of its source address (none in-process).
    tracked: Option<Arc<Tracked>>,
}

/// Longest command line, CRLF included. RFC 5321 §4.5.3.1.4 sets 512 octets and invites
/// tolerance; parameters of extensions make real lines longer, so this follows smtp-proto's
/// buffer.
const MAX_COMMAND_LINE: usize = smtp_proto::request::receiver::MAX_LINE_LENGTH;

enum Flow {
    Continue,
    Stop(Ended),
}

/// Resolves when the connection was told to make room (never for an untracked session).
async fn evicted(tracked: Option<&Tracked>) {
    match tracked {
        Some(t) => t.evicted().await,
        None => std::future::pending().await,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub fn new(mta: Arc<Mta>, io: S, conn: Connection) -> Self {
        Self {
            mta,
            io,
            conn,
            helo: None,
            account: None,
            tx: None,
            receiver: RequestReceiver::default(),
            state: State::Command,
            commands: 0,
            auth_failures: 0,
            out: Vec::with_capacity(1024),
            partial_line: 0,
            tracked: None,
        }
    }

    /// Ties the session to its place among its source's connections: it says when the client
    /// greeted, and closes the session when a newer connection takes the place of a silent
    /// one (see [`crate::sources`]).
    pub(crate) fn track(&mut self, tracked: Arc<Tracked>) {
        self.tracked = Some(tracked);
    }

    /// How long to wait for the client's next bytes: shorter until it has shown what it is
    /// (EHLO on the relay port, AUTH or a transaction on the submission ports).
    fn read_timeout(&self) -> Duration {
        let idle = Duration::from_secs(self.mta.config.idle_timeout_secs);
        let shown = self.account.is_some()
            || self.tx.is_some()
            || (self.conn.door == Door::Relay && self.helo.is_some());
        if shown {
            idle
        } else {
            idle.min(Duration::from_secs(
                self.mta.config.unauthenticated_timeout_secs,
            ))
        }
    }

    pub fn into_io(self) -> S {
        self.io
    }

    fn client(&self) -> Client<'_> {
        Client {
            door: self.conn.door,
            tls: self.conn.tls,
            peer_certificate: self.conn.peer_certificate.as_ref(),
            account: self.account.as_ref(),
            plaintext_allowed: self.mta.config.bench_plaintext_loopback
                && self.conn.door == Door::Relay
                && self.conn.peer.ip().is_loopback(),
        }
    }

    fn reply(&mut self, reply: Reply) {
        reply.encode(&mut self.out);
    }

    fn refuse(&mut self, refusal: Refusal) -> Flow {
        let reply = refusal.reply();
        let door = match self.conn.door {
            Door::Relay => "relay",
            Door::Submission => "submission",
        };
        REFUSALS.inc(&[door, &reply.code.to_string(), reply.enhanced.unwrap_or("")]);
        // The reply's text can name a patient address (an INS): only its codes above debug.
        tracing::info!(
            code = reply.code,
            status = reply.enhanced.unwrap_or(""),
            "refused"
        );
        tracing::debug!(text = %reply.lines[0], "refused");
        let closes = refusal.closes();
        self.reply(reply);
        if closes {
            Flow::Stop(Ended::Dropped)
        } else {
            Flow::Continue
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.io.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Sends the greeting (not after STARTTLS, RFC 3207 §4.2) and runs until the session ends.
    pub async fn run(&mut self, greet: bool) -> Ended {
        if greet {
            self.reply(Reply::plain(
                220,
                vec![format!("{} ESMTP mshub", self.mta.hostname).into()],
            ));
            if self.flush().await.is_err() {
                return Ended::Closed;
            }
        }
        let tracked = self.tracked.clone();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let wait = self.read_timeout();
            let read = tokio::select! {
                r = tokio::time::timeout(wait, self.io.read(&mut buf)) => r,
                () = evicted(tracked.as_deref()) => {
                    self.reply(Reply::new(
                        421,
                        "4.4.2",
                        format!("{} idle timeout, closing", self.mta.hostname),
                    ));
                    let _ = self.flush().await;
                    tracing::info!("closed: silent, and a newer connection needed the place");
                    return Ended::TimedOut;
                }
            };
            let n = match read {
                Err(_) => {
                    self.reply(Reply::new(
                        421,
                        "4.4.2",
                        format!("{} timeout waiting for input, closing", self.mta.hostname),
                    ));
                    let _ = self.flush().await;
                    return Ended::TimedOut;
                }
                Ok(Err(_)) | Ok(Ok(0)) => return Ended::Closed,
                Ok(Ok(n)) => n,
            };
            let mut bytes = buf[..n].iter();
            let flow = self.ingest(&mut bytes).await;
            if let (Some(t), true) = (&tracked, self.helo.is_some() || self.account.is_some()) {
                t.greeted();
            }
            if self.flush().await.is_err() {
                return Ended::Closed;
            }
            if let Flow::Stop(ended) = flow {
                return ended;
            }
        }
    }

    async fn ingest(&mut self, bytes: &mut std::slice::Iter<'_, u8>) -> Flow {
        loop {
            let flow = match &mut self.state {
                State::Command => {
                    let available = bytes.as_slice();
                    let parsed = self.receiver.ingest(bytes).map(Request::into_owned);
                    let consumed = &available[..available.len() - bytes.as_slice().len()];
                    if matches!(parsed, Err(SyntaxError::NeedsMoreData { .. })) {
                        self.partial_line += consumed.len();
                        return Flow::Continue;
                    }
                    let line_len = std::mem::take(&mut self.partial_line) + consumed.len();
                    self.commands += 1;
                    if self.commands > self.mta.config.max_commands {
                        return self.refuse(Refusal::TooManyCommands);
                    }
                    match parsed {
                        // RFC 5321 §4.5.3.1.4: however the line was split across reads, an
                        // overlong line gets the one same reply and is never executed.
                        _ if line_len > MAX_COMMAND_LINE && consumed.contains(&b'\n') => {
                            self.refuse(Refusal::LineTooLong)
                        }
                        Ok(request) => self.command(request).await,
                        Err(SyntaxError::ResponseTooLong) => {
                            // One reply per line: if the line's LF has not been read yet, what
                            // follows up to it is still that line.
                            if !consumed.contains(&b'\n') {
                                self.state = State::SkipLine;
                            }
                            self.refuse(Refusal::LineTooLong)
                        }
                        Err(e) => self.syntax_error(e),
                    }
                }
                State::SkipLine => {
                    let rest = bytes.as_slice();
                    match rest.iter().position(|b| *b == b'\n') {
                        Some(lf) => {
                            *bytes = rest[lf + 1..].iter();
                            self.state = State::Command;
                            Flow::Continue
                        }
                        None => {
                            *bytes = [].iter();
                            return Flow::Continue;
                        }
                    }
                }
                State::Data(receiver) => {
                    let Some(tx) = self.tx.as_mut() else {
                        self.state = State::Command;
                        continue;
                    };
                    let done = receiver.ingest(bytes, &mut tx.data);
                    let max = self.mta.config.max_message_size;
                    if tx.data.len() > max {
                        tx.data = Vec::new();
                        if done {
                            self.tx = None;
                            self.state = State::Command;
                            self.refuse(Refusal::MessageTooBig(max))
                        } else {
                            // Keep reading to the end of the data, without keeping it.
                            self.state = State::Discard {
                                receiver: DummyDataReceiver::new_data(receiver),
                                reply: Refusal::MessageTooBig(max).reply(),
                                finishes_transaction: true,
                            };
                            continue;
                        }
                    } else if !done {
                        return Flow::Continue;
                    } else {
                        self.state = State::Command;
                        self.finish_message().await
                    }
                }
                State::Bdat(receiver) => {
                    let Some(tx) = self.tx.as_mut() else {
                        self.state = State::Command;
                        continue;
                    };
                    if !receiver.ingest(bytes, &mut tx.data) {
                        return Flow::Continue;
                    }
                    let last = receiver.is_last;
                    self.state = State::Command;
                    if last {
                        self.finish_message().await
                    } else {
                        let size = tx.data.len();
                        self.reply(Reply::new(
                            250,
                            "2.0.0",
                            format!("{size} octets received so far"),
                        ));
                        Flow::Continue
                    }
                }
                State::Discard {
                    receiver,
                    reply,
                    finishes_transaction,
                } => {
                    if !receiver.ingest(bytes) {
                        return Flow::Continue;
                    }
                    let reply = reply.clone();
                    if *finishes_transaction {
                        self.tx = None;
                    }
                    self.state = State::Command;
                    self.reply(reply);
                    Flow::Continue
                }
                State::Auth(..) => match self.auth_line(bytes).await {
                    Some(flow) => flow,
                    None => return Flow::Continue,
                },
            };
            if let Flow::Stop(e) = flow {
                return Flow::Stop(e);
            }
        }
    }

    fn syntax_error(&mut self, e: SyntaxError) -> Flow {
        let reply = match e {
            SyntaxError::UnknownCommand => Refusal::UnknownCommand.reply(),
            SyntaxError::ResponseTooLong => Refusal::LineTooLong.reply(),
            SyntaxError::InvalidSenderAddress => {
                Reply::new(501, "5.1.7", "Invalid sender address syntax")
            }
            SyntaxError::InvalidRecipientAddress => {
                Reply::new(501, "5.1.3", "Invalid recipient address syntax")
            }
            SyntaxError::SyntaxError { syntax } => Refusal::Syntax(syntax).reply(),
            SyntaxError::InvalidParameter { param } => {
                Reply::new(501, "5.5.4", format!("Invalid value for parameter {param}"))
            }
            SyntaxError::UnsupportedParameter { param } => {
                Reply::new(555, "5.5.4", format!("Unsupported parameter {param}"))
            }
            _ => Refusal::UnknownCommand.reply(),
        };
        self.reply(reply);
        Flow::Continue
    }

    async fn command(&mut self, request: Request<String>) -> Flow {
        match request {
            Request::Ehlo { host } => self.ehlo(host, true),
            Request::Helo { host } => self.ehlo(host, false),
            Request::Lhlo { .. } => self.refuse(Refusal::NotImplemented("LHLO")),
            Request::StartTls => {
                if self.conn.tls {
                    return self.refuse(Refusal::AlreadyTls);
                }
                self.reply(Reply::new(220, "2.0.0", "Ready to start TLS"));
                Flow::Stop(Ended::StartTls)
            }
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response).await,
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to),
            Request::Data => self.data(),
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last),
            Request::Rset => {
                self.tx = None;
                self.reply(Reply::new(250, "2.0.0", "Reset"));
                Flow::Continue
            }
            Request::Noop { .. } => {
                self.reply(Reply::new(250, "2.0.0", "OK"));
                Flow::Continue
            }
            Request::Quit => {
                self.reply(Reply::new(
                    221,
                    "2.0.0",
                    format!("{} closing", self.mta.hostname),
                ));
                Flow::Stop(Ended::Quit)
            }
            // RFC 5321 §3.5.3: do not reveal who exists.
            Request::Vrfy { .. } => {
                self.reply(Reply::new(
                    252,
                    "2.5.0",
                    "Cannot VRFY user, but will accept message and attempt delivery",
                ));
                Flow::Continue
            }
            Request::Expn { .. } => self.refuse(Refusal::NotImplemented("EXPN")),
            Request::Help { .. } => {
                self.reply(Reply::new(214, "2.0.0", "mshub: see RFC 5321"));
                Flow::Continue
            }
            Request::Etrn { .. } => self.refuse(Refusal::NotImplemented("ETRN")),
            Request::Atrn { .. } => self.refuse(Refusal::NotImplemented("ATRN")),
            Request::Burl { .. } => self.refuse(Refusal::NotImplemented("BURL")),
        }
    }

    fn ehlo(&mut self, host: String, extended: bool) -> Flow {
        // RFC 5321 §4.1.4: EHLO also resets any transaction.
        self.tx = None;
        self.helo = Some(host.clone());
        if !extended {
            self.reply(Reply::plain(250, vec![self.mta.hostname.clone().into()]));
            return Flow::Continue;
        }
        let mut lines: Vec<std::borrow::Cow<'static, str>> = vec![
            format!("{} greets {}", self.mta.hostname, host).into(),
            "PIPELINING".into(),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            format!("SIZE {}", self.mta.config.max_message_size).into(),
            "ENHANCEDSTATUSCODES".into(),
        ];
        if self.conn.tls {
            lines.push("AUTH PLAIN LOGIN".into());
        } else {
            lines.push("STARTTLS".into());
        }
        lines.push("DSN".into());
        lines.push("CHUNKING".into());
        self.reply(Reply::plain(250, lines));
        Flow::Continue
    }
}

/// SMTP refusals by door and reply code: what senders are told no for.
static REFUSALS: mshub_metrics::Family = mshub_metrics::Family::counter(
    "mshub_smtp_refusals_total",
    "SMTP refusals by door (relay, submission), reply code and enhanced status code.",
    &["door", "code", "status"],
);
