//! The HTTPS listener: accept TCP, TLS handshake (TLS 1.2+, the hub's identity, ALPN
//! `http/1.1`) under a timeout, then HTTP/1.1 with hyper over the router, each connection in a
//! tracing span carrying a connection id. Thin on purpose: the service is in [`crate::router`].
//!
//! Invariants: a few hundred slow or idle clients must not deny the web inbox to patients, so
//! every connection is bounded in number and in time (the settings are in `[webmail]`,
//! [`crate::WebmailConfig`]; defaults in brackets):
//! - at most `max_connections_per_source` [64] connections at once from one address (an IPv6
//!   client: its /64, [`crate::security::source_key`]) and [`MAX_CONNECTIONS`] in all; past
//!   either, a new connection is closed at accept, before any TLS work;
//! - the TLS handshake ends within [`HANDSHAKE_TIMEOUT`] [10 s] of the accept;
//! - a request's line and headers arrive within `header_timeout_secs` [20 s] of the handshake
//!   or of the previous response. This is hyper's header read timeout, one timer armed at the
//!   first read of a request head and not re-armed by the bytes that come in, so a client
//!   trickling its headers byte by byte is cut off as well; it also closes a kept-alive
//!   connection that stays idle that long. When it fires the connection is closed;
//! - a request's whole body arrives within `body_timeout_secs` [60 s] of its headers
//!   ([`Deadline`]); past it the handler's read fails and the client gets `408` with
//!   `Connection: close` ([`expire_slow_bodies`]). Bodies are bounded in size by their
//!   extractors: axum's default limit (2 MiB) and 64 KiB for the forms (`crate::csrf`), 20 MiB
//!   and a little for a reply with attachments;
//! - a response whose bytes cannot leave for [`WRITE_STALL_TIMEOUT`] [30 s] (the client reads
//!   nothing) ends its connection ([`WriteStall`]);
//! - when `shutdown` turns true the listener stops accepting and each connection finishes its
//!   request in flight, then closes.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request};
use axum::http::header::CONNECTION;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use mshub_directory::ConnectionLimits;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tracing::Instrument;

use crate::{Webmail, WebmailConfig};

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping connection may take to finish its request in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; past it new ones are closed at once (file descriptors and
/// memory stay bounded under a flood).
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a response may sit unsent because the client reads nothing: a slow download
/// progresses and is never cut, a client that stopped reading is.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The listener's bounds per client and per request, from `[webmail]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections at once from one address.
    pub per_source: usize,
    /// For a request's line and headers, and for a kept-alive connection's silence.
    pub header_timeout: Duration,
    /// For a request's whole body, once its headers are in.
    pub body_timeout: Duration,
    /// For a response's bytes to leave while the client reads nothing ([`WRITE_STALL_TIMEOUT`]).
    pub write_stall: Duration,
}

impl From<&WebmailConfig> for Limits {
    fn from(c: &WebmailConfig) -> Self {
        // Zero would refuse every connection or time every request out at once.
        Self {
            per_source: c.max_connections_per_source.max(1),
            header_timeout: Duration::from_secs(c.header_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(c.body_timeout_secs.max(1)),
            write_stall: WRITE_STALL_TIMEOUT,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from(&WebmailConfig::default())
    }
}

/// Adds ALPN to the hub's TLS server configuration: this server speaks HTTP/1.1 only.
pub fn tls_config(shared: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut config = shared.clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl Webmail {
    /// Serves HTTPS on `listener` until `shutdown` turns true. `tls` is the hub's server
    /// configuration (see [`tls_config`]).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let limits = self.limits;
        let router = crate::router(self);
        let acceptor = TlsAcceptor::from(tls_config(&tls));
        let next_connection = AtomicU64::new(1);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let sources = ConnectionLimits::default();
        let mut connections = tokio::task::JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => break,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let id = next_connection.fetch_add(1, Ordering::Relaxed);
            let span = tracing::info_span!("https", conn = id, %peer);
            // Dropping `tcp` closes it: no TLS work for a refused client.
            let source = crate::security::source_key(peer.ip());
            let Some(from_source) = sources.admit(source, limits.per_source) else {
                span.in_scope(|| tracing::info!("refused: too many connections from this address"));
                mshub_metrics::CONNECTIONS.inc(&["https", "refused"]);
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                span.in_scope(|| tracing::warn!("refused: too many connections"));
                mshub_metrics::CONNECTIONS.inc(&["https", "refused"]);
                continue;
            };
            mshub_metrics::CONNECTIONS.inc(&["https", "accepted"]);
            let open = mshub_metrics::CONNECTIONS_OPEN.hold(&["https"]);
            let _ = tcp.set_nodelay(true);
            let served = connection(
                tcp,
                peer,
                acceptor.clone(),
                router.clone(),
                limits,
                shutdown.clone(),
            );
            connections.spawn(
                async move {
                    served.await;
                    drop(open);
                    drop(slot);
                    drop(from_source);
                }
                .instrument(span),
            );
            // Reap finished connections so the set does not grow without bound.
            while connections.try_join_next().is_some() {}
        }
        while connections.join_next().await.is_some() {}
    }
}

/// HTTP/1.1 with the header read timeout, on hyper's Tokio timer (without a timer hyper has
/// no timeout at all).
fn http1(limits: Limits) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return tracing::info!(error = %e, "TLS handshake failed"),
        Err(_) => return tracing::info!("TLS handshake timed out"),
    };
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        let body = Deadline::new(body, limits.body_timeout);
        parts.extensions.insert(body.expired());
        router
            .clone()
            .oneshot(hyper::Request::from_parts(parts, body))
    });
    let io = WriteStall::new(tls, limits.write_stall);
    let conn = http1(limits).serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(DRAIN_TIMEOUT, conn.as_mut()).await {
                Ok(ended) => ended,
                Err(_) => return tracing::debug!("connection dropped at shutdown"),
            }
        }
    };
    match ended {
        Ok(()) => tracing::debug!("connection closed"),
        Err(e) => tracing::debug!(error = %e, "connection ended"),
    }
}

/// A connection whose writes fail once they have made no progress for `stall`: a client
/// that sends requests and reads no answer would otherwise hold its connection for ever.
pub struct WriteStall<T> {
    io: T,
    stall: Duration,
    /// Running while a write or flush waits.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteStall<T> {
    pub fn new(io: T, stall: Duration) -> Self {
        Self {
            io,
            stall,
            timer: None,
        }
    }

    /// `ready` went through: the timer stops. Still waiting: the timer runs, and once it is
    /// over the wait ends in an error.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        ready: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if ready.is_ready() {
            self.timer = None;
            return ready;
        }
        let stall = self.stall;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        if timer.as_mut().poll(cx).is_ready() {
            self.timer = None;
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client reads nothing",
            )));
        }
        Poll::Pending
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteStall<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteStall<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let ready = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(cx, ready)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let ready = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(cx, ready)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let ready = Pin::new(&mut this.io).poll_shutdown(cx);
        this.watch(cx, ready)
    }
}

/// A request body that must be whole by a deadline, counted from the request's headers.
pub struct Deadline<B> {
    body: B,
    /// `None` for a request without a body.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: BodyExpired,
}

/// Set once a request's body missed its deadline; in the request's extensions for
/// [`expire_slow_bodies`].
#[derive(Debug, Clone, Default)]
pub struct BodyExpired(Arc<AtomicBool>);

impl BodyExpired {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B: Body> Deadline<B> {
    pub fn new(body: B, within: Duration) -> Self {
        let timer = (!body.is_end_stream()).then(|| Box::pin(tokio::time::sleep(within)));
        Self {
            body,
            timer,
            expired: BodyExpired::default(),
        }
    }

    pub fn expired(&self) -> BodyExpired {
        self.expired.clone()
    }
}

impl<B> Body for Deadline<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        // The timer first: a body that keeps coming, too slowly, is cut off too.
        if this.expired.is_set()
            || this
                .timer
                .as_mut()
                .is_some_and(|t| t.as_mut().poll(cx).is_ready())
        {
            this.expired.0.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        Pin::new(&mut this.body)
            .poll_frame(cx)
            .map(|frame| frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request whose body missed its deadline is answered `408 Request Timeout` (RFC 9110
/// §15.5.9) whatever its handler made of the failed read, and the connection is closed: what
/// is left of the body would be read as the next request.
pub async fn expire_slow_bodies(req: Request, next: Next) -> Response {
    let expired = req.extensions().get::<BodyExpired>().cloned();
    let api = req.uri().path().starts_with("/api/");
    let response = next.run(req).await;
    if !expired.is_some_and(|e| e.is_set()) {
        return response;
    }
    tracing::info!("request body timed out");
    let mut r = if api {
        (
            StatusCode::REQUEST_TIMEOUT,
            axum::Json(serde_json::json!({
                "error": "timeout",
                "reason": "the request body did not arrive in time",
            })),
        )
            .into_response()
    } else {
        crate::frame::error_page(
            StatusCode::REQUEST_TIMEOUT,
            "Délai dépassé",
            "Votre envoi est arrivé trop lentement et n'a pas été pris en compte. Vérifiez \
             votre connexion puis réessayez.",
        )
    };
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    use axum::routing::post;
    use http_body_util::{BodyExt as _, Full, StreamBody};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    type Never = std::convert::Infallible;

    /// A body whose client announced it and sends nothing more.
    fn stalled() -> StreamBody<futures_util::stream::Pending<Result<Frame<Bytes>, Never>>> {
        StreamBody::new(futures_util::stream::pending())
    }

    #[tokio::test]
    async fn a_body_that_does_not_come_fails_at_its_deadline() {
        let started = Instant::now();
        let body = Deadline::new(stalled(), Duration::from_millis(100));
        let expired = body.expired();
        let read = body.collect().await;
        assert!(read.is_err(), "the read fails");
        assert!(expired.is_set());
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_body_in_time_is_read_whole() {
        let body = Deadline::new(
            Full::new(Bytes::from_static(b"a=1")),
            Duration::from_secs(5),
        );
        let expired = body.expired();
        let read = body.collect().await.map(|c| c.to_bytes());
        assert_eq!(read.ok().as_deref(), Some(&b"a=1"[..]));
        assert!(!expired.is_set());
        // No body at all: no timer either.
        let empty = Deadline::new(http_body_util::Empty::<Bytes>::new(), Duration::ZERO);
        assert!(empty.timer.is_none());
    }

    #[tokio::test]
    async fn a_timed_out_body_is_answered_408_and_the_connection_closed() {
        let app = Router::new()
            .route("/login", post(|_: Bytes| async { "read" }))
            .route("/api/x", post(|_: Bytes| async { "read" }))
            .layer(axum::middleware::from_fn(expire_slow_bodies));
        for path in ["/login", "/api/x"] {
            let body = Deadline::new(stalled(), Duration::from_millis(50));
            let expired = body.expired();
            let mut req = hyper::Request::post(path)
                .body(axum::body::Body::new(body))
                .unwrap();
            req.extensions_mut().insert(expired);
            let r = app.clone().oneshot(req).await.unwrap();
            assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT, "{path}");
            assert_eq!(r.headers().get(CONNECTION).unwrap(), "close");
        }
        // In time: the handler's answer.
        let body = Deadline::new(Full::new(Bytes::from_static(b"x")), Duration::from_secs(5));
        let expired = body.expired();
        let mut req = hyper::Request::post("/login")
            .body(axum::body::Body::new(body))
            .unwrap();
        req.extensions_mut().insert(expired);
        let r = app.oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// A client of [`http1`] over an in-memory pipe: how long until the server ends the
    /// connection while the client trickles `head` a byte every `every`, then stays silent.
    async fn served_for(limits: Limits, first: &[u8], head: &[u8], every: Duration) -> Duration {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let service = hyper::service::service_fn(|_req: hyper::Request<Incoming>| async {
            Ok::<_, Never>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
        let served = tokio::spawn(http1(limits).serve_connection(TokioIo::new(server), service));
        let (mut read, mut write) = tokio::io::split(client);
        let started = Instant::now();
        write.write_all(first).await.unwrap();
        let head = head.to_vec();
        let writer = tokio::spawn(async move {
            for b in head {
                tokio::time::sleep(every).await;
                if write.write_all(&[b]).await.is_err() {
                    break;
                }
            }
            // Keep the pipe open: silence, not end of file.
            std::future::pending::<()>().await;
        });
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut sink)).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), served).await;
        writer.abort();
        started.elapsed()
    }

    fn quick(header: Duration) -> Limits {
        Limits {
            per_source: 1,
            header_timeout: header,
            body_timeout: Duration::from_secs(5),
            write_stall: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn a_client_that_reads_no_answer_loses_its_connection() {
        // A pipe of 4 KiB each way, an answer of 1 MiB the client never reads.
        let (client, server) = tokio::io::duplex(4096);
        let service = hyper::service::service_fn(|_req: hyper::Request<Incoming>| async {
            let big = Bytes::from(vec![b'x'; 1 << 20]);
            Ok::<_, Never>(hyper::Response::new(Full::new(big)))
        });
        let limits = Limits {
            write_stall: Duration::from_millis(300),
            ..quick(Duration::from_secs(5))
        };
        let io = WriteStall::new(server, limits.write_stall);
        let served = tokio::spawn(http1(limits).serve_connection(TokioIo::new(io), service));
        let (_read, mut write) = tokio::io::split(client);
        let started = Instant::now();
        write
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), served).await;
        assert!(ended.is_ok(), "still served after {:?}", started.elapsed());
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_reading_gets_the_whole_answer() {
        let (client, server) = tokio::io::duplex(4096);
        let service = hyper::service::service_fn(|_req: hyper::Request<Incoming>| async {
            let big = Bytes::from(vec![b'x'; 64 * 1024]);
            Ok::<_, Never>(hyper::Response::new(Full::new(big)))
        });
        let limits = Limits {
            write_stall: Duration::from_millis(300),
            ..quick(Duration::from_secs(5))
        };
        let io = WriteStall::new(server, limits.write_stall);
        tokio::spawn(http1(limits).serve_connection(TokioIo::new(io), service));
        let (mut read, mut write) = tokio::io::split(client);
        write
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        // 4 KiB every 100 ms: the whole takes well over the stall time, never stalls that long.
        let started = Instant::now();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
        assert!(started.elapsed() > Duration::from_millis(300));
        assert!(got.ends_with(&[b'x'; 1024]), "{} bytes", got.len());
        assert!(got.len() > 64 * 1024, "{} bytes", got.len());
    }

    #[tokio::test]
    async fn headers_trickled_byte_by_byte_are_cut_at_the_header_timeout() {
        // A byte every 50 ms keeps the connection busy: each would re-arm a per-read timer.
        let head = [b'a'; 200];
        let took = served_for(
            quick(Duration::from_millis(300)),
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            &head,
            Duration::from_millis(50),
        )
        .await;
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(3), "not cut off: {took:?}");
    }

    #[tokio::test]
    async fn a_silent_connection_and_an_idle_kept_alive_one_are_closed() {
        let took = served_for(quick(Duration::from_millis(300)), b"", b"", Duration::ZERO).await;
        assert!(took < Duration::from_secs(3), "silent: {took:?}");
        let took = served_for(
            quick(Duration::from_millis(300)),
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"",
            Duration::ZERO,
        )
        .await;
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(3), "kept alive: {took:?}");
    }

    #[test]
    fn limits_follow_the_configuration_and_never_reach_zero() {
        let limits = Limits::default();
        assert_eq!(limits.per_source, 64);
        assert_eq!(limits.header_timeout, Duration::from_secs(20));
        assert_eq!(limits.body_timeout, Duration::from_secs(60));
        let zero = WebmailConfig {
            max_connections_per_source: 0,
            header_timeout_secs: 0,
            body_timeout_secs: 0,
            ..WebmailConfig::default()
        };
        let limits = Limits::from(&zero);
        assert_eq!(limits.per_source, 1);
        assert_eq!(limits.header_timeout, Duration::from_secs(1));
    }
}
