//! One IMAP session: a state machine (NotAuthenticated → Authenticated → Selected → Logout)
//! driven by the commands the client sends, generic over its stream so tests run it over an
//! in-memory pipe.
//!
//! Invariants:
//! - a command is executed only once it is complete: its line and every literal (RFC 9051
//!   §4.3; `+` continuation for synchronising literals, none for RFC 7888 `{n+}`);
//! - after STARTTLS, input already buffered is discarded (no command injection) and the server
//!   makes a new session on the TLS stream;
//! - before login, nothing makes the session buffer more than `pre_auth_max_line` (or
//!   `max_sasl_response` for an AUTHENTICATE response) nor wait longer than
//!   `pre_auth_idle_timeout_secs`: over a limit, `* BYE [LIMIT]` and the connection ends, as
//!   Dovecot does (`* BYE Too long argument.`) — no tagged reply, nothing skipped;
//! - the selected mailbox's view changes only through the untagged responses `selected`
//!   writes (see its invariants).

pub(crate) mod selected;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use mshub_directory::{Account, ConnectionSlot};
use mshub_store::{MailboxId, StoreError, Uid};

use crate::codec::{literal_at_end, parse_command, tag_of};
use crate::message::Parsed;
use crate::refusal::{Refusal, Status};
use crate::{Imap, APPEND_LIMIT, APPEND_MAX_TOTAL};

pub(crate) use selected::Selected;

/// What the server knows of a connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: u64,
    pub peer: SocketAddr,
    pub tls: bool,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Logout,
    /// The client closed the connection or it broke.
    Closed,
    TimedOut,
    /// `OK` to STARTTLS was sent: the server upgrades the stream and starts a new session.
    StartTls,
    /// The server ended it (too many errors).
    Dropped,
}

pub(crate) enum Flow {
    Continue,
    Stop(Ended),
}

/// A complete command as read from the wire, or why it could not be.
enum Frame {
    Command(Vec<u8>),
    /// Line over the limit after login (dropped up to its end).
    TooLong(String),
    /// A literal over APPENDLIMIT, or literals over `APPEND_MAX_TOTAL` in all, after login
    /// (their bytes, if non-synchronising, were skipped): the tag and the refusal.
    TooBig(String, Refusal),
}

/// Parsed messages kept by a session (decrypting and parsing is what FETCH costs).
const CACHE: usize = 8;
/// Largest message the cache keeps.
const CACHE_MESSAGE_MAX: usize = 1024 * 1024;
/// Largest oversized non-synchronising literal skipped rather than closing the connection.
const MAX_SKIP: u64 = 64 * 1024 * 1024;
/// Consecutive syntax errors before the server gives up on a client.
const MAX_BAD: u32 = 50;

pub struct Session<S> {
    pub(crate) imap: Arc<Imap>,
    io: S,
    pub(crate) conn: Connection,
    pub(crate) account: Option<Account>,
    pub(crate) selected: Option<Selected>,
    /// RFC 9051 §6.3.1: the client enabled IMAP4rev2 (ESEARCH replies, no RECENT).
    pub(crate) rev2: bool,
    /// RFC 7162 §3.1: CONDSTORE is on (FETCH responses carry MODSEQ).
    pub(crate) condstore: bool,
    /// RFC 7162 §3.2: QRESYNC is on (VANISHED instead of EXPUNGE).
    pub(crate) qresync: bool,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    cache: Vec<(MailboxId, Uid, Arc<Parsed>)>,
    bad_in_a_row: u32,
    pub(crate) auth_failures: u32,
    overflow: Option<Vec<u8>>,
    /// The connection's place among its source's connections not logged in, given back at
    /// login.
    pre_auth_slot: Option<ConnectionSlot>,
    /// RFC 5465 NOTIFY settings, once the client gave some.
    pub(crate) notify: Option<crate::cmd::notify::Notify>,
}

/// Room made in the input buffer before each read.
const READ_CHUNK: usize = 4096;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub fn new(imap: Arc<Imap>, io: S, conn: Connection) -> Self {
        Self {
            imap,
            io,
            conn,
            account: None,
            selected: None,
            rev2: false,
            condstore: false,
            qresync: false,
            inbuf: Vec::new(),
            out: Vec::with_capacity(4096),
            cache: Vec::new(),
            bad_in_a_row: 0,
            auth_failures: 0,
            overflow: None,
            pre_auth_slot: None,
            notify: None,
        }
    }

    pub fn into_io(self) -> S {
        self.io
    }

    /// Keeps `slot` (a place among the source's connections not logged in) until login.
    pub fn hold_until_login(&mut self, slot: ConnectionSlot) {
        if self.account.is_none() {
            self.pre_auth_slot = Some(slot);
        }
    }

    /// The place still held: after STARTTLS it goes on to the session on the TLS stream.
    pub fn take_pre_auth_slot(&mut self) -> Option<ConnectionSlot> {
        self.pre_auth_slot.take()
    }

    pub(crate) fn capabilities(&self) -> String {
        let mut caps = String::from("IMAP4rev1 IMAP4rev2");
        if !self.conn.tls {
            caps.push_str(" STARTTLS LOGINDISABLED");
        } else if self.account.is_none() {
            caps.push_str(" AUTH=PLAIN SASL-IR");
        }
        caps.push_str(
            " ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT LITERAL+ SPECIAL-USE STATUS=SIZE \
             CONDSTORE QRESYNC ESEARCH SEARCHRES SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT \
             THREAD=REFERENCES ESORT CONTEXT=SEARCH CONTEXT=SORT PARTIAL BINARY LIST-EXTENDED \
             LIST-STATUS MULTIAPPEND CATENATE NOTIFY APPENDLIMIT=",
        );
        caps.push_str(&APPEND_LIMIT.to_string());
        caps
    }

    /// A mailbox name as this client reads it: UTF-8 for IMAP4rev2, else modified UTF-7.
    pub(crate) fn wire_name(&self, name: &str) -> Vec<u8> {
        if self.rev2 {
            crate::codec::write::quoted(name)
        } else {
            crate::codec::write::quoted(&crate::codec::mutf7::encode(name))
        }
    }

    pub(crate) fn untagged(&mut self, line: &str) {
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// An untagged response whose body is already encoded (it may hold literals).
    pub(crate) fn untagged_bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(bytes);
        self.out.extend_from_slice(b"\r\n");
    }

    pub(crate) fn tagged(&mut self, tag: &str, status: Status, text: &str) {
        self.out
            .extend_from_slice(format!("{tag} {status} {text}\r\n").as_bytes());
    }

    pub(crate) fn continuation(&mut self, text: &str) {
        self.out
            .extend_from_slice(format!("+ {text}\r\n").as_bytes());
    }

    /// The exact refusal for a store error (RFC 5530 response codes), answered at once.
    pub(crate) fn store_failure(&mut self, tag: &str, e: &StoreError) {
        self.refuse(tag, &Refusal::from_store(e));
    }

    /// Answers a refusal at once: a NO, or a BAD counted towards `MAX_BAD`.
    pub(crate) fn refuse(&mut self, tag: &str, refusal: &Refusal) -> Flow {
        let answer = refusal.answer();
        match answer.status {
            Status::Bad => self.bad(tag, &answer.to_string()),
            status => {
                self.tagged(tag, status, &answer.to_string());
                Flow::Continue
            }
        }
    }

    /// The BAD before `* BYE` when a literal is too large even to skip.
    async fn refuse_literal_and_close(&mut self, tag: &str) -> Ended {
        let answer = Refusal::LiteralTooLargeClosing.answer();
        self.tagged(tag, answer.status, &answer.to_string());
        self.untagged("BYE Literal too large");
        let _ = self.flush().await;
        Ended::Dropped
    }

    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.io.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads more input into the buffer, with the idle timeout; `Err` ends the session.
    pub(crate) async fn read_more(&mut self) -> Result<(), Ended> {
        // Straight into the input buffer's spare room: a waiting read then holds no buffer of
        // its own (a 16 KiB array here lived in every idle session's future). After a large
        // literal the buffer goes back to a small one.
        if self.inbuf.is_empty() && self.inbuf.capacity() > 16 * READ_CHUNK {
            self.inbuf = Vec::new();
        }
        if self.inbuf.capacity() - self.inbuf.len() < READ_CHUNK {
            self.inbuf.reserve(READ_CHUNK);
        }
        // RFC 9051 §5.4: the 30-minute autologout timer is for authenticated sessions.
        let idle = if self.account.is_some() {
            self.imap.config.idle_timeout_secs
        } else {
            self.imap.config.pre_auth_idle_timeout_secs
        };
        match tokio::time::timeout(Duration::from_secs(idle), self.io.read_buf(&mut self.inbuf))
            .await
        {
            Err(_) => {
                self.untagged("BYE Autologout; idle for too long");
                let _ = self.flush().await;
                Err(Ended::TimedOut)
            }
            Ok(Err(_)) | Ok(Ok(0)) => Err(Ended::Closed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// A complete line from the buffer, without its line end, if one is there.
    pub(crate) fn take_line(&mut self) -> Option<Vec<u8>> {
        let nl = self.inbuf.iter().position(|&b| b == b'\n')?;
        let mut line: Vec<u8> = self.inbuf.drain(..=nl).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(line)
    }

    /// Reads one line outside a command (a response to AUTHENTICATE's continuation), within
    /// `max_line`, or `max_sasl_response` before login.
    pub(crate) async fn read_line(&mut self) -> Result<Option<Vec<u8>>, Ended> {
        let max = if self.account.is_some() {
            self.imap.config.max_line
        } else {
            self.imap.config.max_sasl_response
        };
        self.read_line_within(max, "Authentication response too long")
            .await
    }

    /// Reads one line of at most `max` bytes; `Ok(None)` if it was longer (it was dropped,
    /// and its start kept in `overflow` for the tag of the reply). Before login a longer line
    /// ends the connection (`* BYE [LIMIT] {too_long}`) as soon as the limit is passed.
    async fn read_line_within(
        &mut self,
        max: usize,
        too_long: &str,
    ) -> Result<Option<Vec<u8>>, Ended> {
        self.overflow = None;
        loop {
            if let Some(line) = self.take_line() {
                // A whole line may arrive in one read, longer than the limit all the same.
                if line.len() > max && self.overflow.is_none() {
                    if self.account.is_none() {
                        return Err(self.refuse_before_login(too_long).await);
                    }
                    self.overflow = Some(line[..64.min(max)].to_vec());
                }
                return Ok(match self.overflow {
                    Some(_) => None,
                    None => Some(line),
                });
            }
            if self.inbuf.len() > max {
                if self.account.is_none() {
                    return Err(self.refuse_before_login(too_long).await);
                }
                if self.overflow.is_none() {
                    self.overflow = Some(self.inbuf[..64.min(max)].to_vec());
                }
                self.inbuf.clear();
            }
            self.read_more().await?;
        }
    }

    /// Ends a connection that went over a size limit before login: nothing of it is read
    /// further, skipped or answered (RFC 9051 §7.1.5, BYE when the server closes).
    async fn refuse_before_login(&mut self, text: &str) -> Ended {
        tracing::info!(reason = text, "closed before login: over a size limit");
        self.inbuf.clear();
        self.untagged(&format!("BYE [LIMIT] {text}"));
        let _ = self.flush().await;
        Ended::Dropped
    }

    async fn read_exact_into(
        &mut self,
        n: usize,
        keep: bool,
        frame: &mut Vec<u8>,
    ) -> Result<(), Ended> {
        let mut left = n;
        loop {
            let take = left.min(self.inbuf.len());
            if keep {
                frame.extend_from_slice(&self.inbuf[..take]);
            }
            self.inbuf.drain(..take);
            left -= take;
            if left == 0 {
                return Ok(());
            }
            self.read_more().await?;
        }
    }

    async fn read_frame(&mut self) -> Result<Frame, Ended> {
        let mut frame = Vec::new();
        let config = &self.imap.config;
        let (max_line, pre_auth_max_literal) = (config.max_line, config.pre_auth_max_literal);
        let pre_auth_max = config.pre_auth_max_line;
        loop {
            // Before login the whole command, literals included, stays within one small
            // budget: many small literals cannot add up to more.
            let (max, too_long) = if self.account.is_some() {
                (max_line, "Command line too long")
            } else {
                (
                    pre_auth_max.saturating_sub(frame.len()),
                    "Command too long before login",
                )
            };
            let Some(line) = self.read_line_within(max, too_long).await? else {
                let start = if frame.is_empty() {
                    self.overflow.take().unwrap_or_default()
                } else {
                    frame
                };
                return Ok(Frame::TooLong(tag_of(&start)));
            };
            let literal = literal_at_end(&line);
            frame.extend_from_slice(&line);
            let Some((n, non_sync)) = literal else {
                return Ok(Frame::Command(frame));
            };
            if self.account.is_none() {
                // Only small literals (credentials) before login, and refused before any
                // `+` continuation: a synchronising literal's bytes are never asked for.
                if n > pre_auth_max_literal || frame.len() as u64 + n > pre_auth_max as u64 {
                    return Err(self
                        .refuse_before_login("Literal too large before login")
                        .await);
                }
            }
            let tag = tag_of(&frame);
            // One literal within APPENDLIMIT; several (MULTIAPPEND, RFC 3502) within
            // APPEND_MAX_TOTAL in all, command lines aside.
            let over_total = frame.len() as u64 + n > APPEND_MAX_TOTAL + 1024 * 1024;
            if n > APPEND_LIMIT || over_total {
                let refusal = if n > APPEND_LIMIT {
                    Refusal::LiteralOverLimit {
                        limit: APPEND_LIMIT,
                    }
                } else {
                    Refusal::LiteralsOverTotal {
                        limit: APPEND_MAX_TOTAL,
                    }
                };
                if non_sync {
                    // RFC 7888 §4: the client sends the bytes anyway. Skipped if they are
                    // reasonably few, else the connection is closed.
                    if n > MAX_SKIP {
                        return Err(self.refuse_literal_and_close(&tag).await);
                    }
                    self.read_exact_into(n as usize, false, &mut frame).await?;
                    self.skip_rest_of_command(n).await?;
                }
                return Ok(Frame::TooBig(tag, refusal));
            }
            if !non_sync {
                self.continuation("Ready for literal data");
                self.flush().await.map_err(|_| Ended::Closed)?;
            }
            frame.extend_from_slice(b"\r\n");
            self.read_exact_into(n as usize, true, &mut frame).await?;
        }
    }

    /// Drops what is left of a command after a non-synchronising literal too large to keep
    /// (`skipped` octets so far): its line, and the literals that follow it — with MULTIAPPEND
    /// (RFC 3502) more messages may — as long as they are non-synchronising (RFC 7888 §4) and
    /// `MAX_SKIP` is not passed. A synchronising literal is not waited for: the client gets
    /// the NO instead of its `+` (RFC 9051 §7.5).
    async fn skip_rest_of_command(&mut self, mut skipped: u64) -> Result<(), Ended> {
        loop {
            let Some(line) = self.read_line().await? else {
                return Ok(());
            };
            match literal_at_end(&line) {
                Some((n, true)) if skipped.saturating_add(n) <= MAX_SKIP => {
                    self.read_exact_into(n as usize, false, &mut Vec::new())
                        .await?;
                    skipped += n;
                }
                Some((_, true)) => {
                    return Err(self.refuse_literal_and_close(&tag_of(&line)).await);
                }
                _ => return Ok(()),
            }
        }
    }

    /// Sends the greeting (not after STARTTLS) and runs until the session ends.
    pub async fn run(&mut self, greet: bool) -> Ended {
        if greet {
            let caps = self.capabilities();
            self.untagged(&format!("OK [CAPABILITY {caps}] mshub IMAP ready"));
            if self.flush().await.is_err() {
                return Ended::Closed;
            }
        }
        loop {
            if let Err(ended) = self.notify_until_command().await {
                return ended;
            }
            let frame = match self.read_frame().await {
                Ok(f) => f,
                Err(ended) => return ended,
            };
            let flow = match frame {
                Frame::TooLong(tag) => self.refuse(&tag, &Refusal::LineTooLong),
                Frame::TooBig(tag, refusal) => self.refuse(&tag, &refusal),
                Frame::Command(bytes) => match parse_command(&bytes) {
                    Ok(tagged) => {
                        self.bad_in_a_row = 0;
                        let flow = self.dispatch(tagged).await;
                        if self.account.is_some() {
                            // Logged in: no longer counted among the source's connections
                            // waiting to log in.
                            self.pre_auth_slot = None;
                        }
                        flow
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "syntax error");
                        let tag = tag_of(&bytes);
                        self.refuse(&tag, &Refusal::Syntax(e.0))
                    }
                },
            };
            if self.flush().await.is_err() {
                return Ended::Closed;
            }
            if let Flow::Stop(ended) = flow {
                if ended == Ended::StartTls {
                    // RFC 9051 §6.2.1: nothing sent before the handshake is a command.
                    self.inbuf.clear();
                }
                return ended;
            }
        }
    }

    /// After NOTIFY (RFC 5465 §1): while no command line is in, tells of the store's
    /// changes as they come, not only at the next command. Returns at once otherwise.
    async fn notify_until_command(&mut self) -> Result<(), Ended> {
        loop {
            if self.inbuf.contains(&b'\n') {
                return Ok(());
            }
            let Some(mut changes) = self.notify_receiver() else {
                return Ok(());
            };
            tokio::select! {
                read = self.read_more() => {
                    self.notify_resume(changes);
                    read?;
                }
                change = changes.recv() => {
                    match change {
                        Ok(change) => {
                            self.notify_resume(changes);
                            self.notified(&change);
                            // What else came meanwhile, in the same write.
                            self.notify_pending();
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            self.notify_resume(changes);
                            self.notification_overflow();
                        }
                        // The store is going away: nothing more to tell.
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {}
                    }
                    if self.flush().await.is_err() {
                        return Err(Ended::Closed);
                    }
                }
            }
        }
    }

    pub(crate) fn bad(&mut self, tag: &str, text: &str) -> Flow {
        self.bad_in_a_row += 1;
        let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
        self.tagged(tag, Status::Bad, &text);
        if self.bad_in_a_row >= MAX_BAD {
            self.untagged("BYE Too many errors");
            return Flow::Stop(Ended::Dropped);
        }
        Flow::Continue
    }

    /// The raw message `uid` of `mailbox`, decrypted and parsed (from the session's cache).
    pub(crate) fn parsed(
        &mut self,
        mailbox: MailboxId,
        uid: Uid,
    ) -> Result<Arc<Parsed>, StoreError> {
        if let Some(i) = self
            .cache
            .iter()
            .position(|(m, u, _)| *m == mailbox && *u == uid)
        {
            let entry = self.cache.remove(i);
            let parsed = entry.2.clone();
            self.cache.push(entry);
            return Ok(parsed);
        }
        let raw = self.imap.store.read_message(mailbox, uid)?;
        let parsed = Arc::new(Parsed::new(raw));
        // Big messages are not kept: a session must not hold many of them in memory.
        if parsed.raw.len() <= CACHE_MESSAGE_MAX {
            if self.cache.len() >= CACHE {
                self.cache.remove(0);
            }
            self.cache.push((mailbox, uid, parsed.clone()));
        }
        Ok(parsed)
    }
}

/// The store's flag for one a command named: the codec knows nothing of the store.
pub(crate) fn store_flag(flag: &crate::codec::Flag) -> mshub_store::Flag {
    use crate::codec::Flag as F;
    use mshub_store::Flag;
    match flag {
        F::Seen => Flag::Seen,
        F::Answered => Flag::Answered,
        F::Flagged => Flag::Flagged,
        F::Deleted => Flag::Deleted,
        F::Draft => Flag::Draft,
        F::Keyword(k) => Flag::Keyword(k.clone()),
    }
}

/// The store's flags for those a command named.
pub(crate) fn store_flags(
    flags: &std::collections::BTreeSet<crate::codec::Flag>,
) -> std::collections::BTreeSet<mshub_store::Flag> {
    flags.iter().map(store_flag).collect()
}
