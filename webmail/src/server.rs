//! The HTTPS listener: accept TCP, TLS handshake (TLS 1.2+, the hub's identity, ALPN
//! `http/1.1`) under a timeout, then HTTP/1.1 with hyper over the router, each connection in a
//! tracing span carrying a connection id. Thin on purpose: the service is in [`crate::router`].
//!
//! Invariants: a connection that does not finish its handshake in [`HANDSHAKE_TIMEOUT`], or
//! its request headers in [`HEADER_TIMEOUT`], is dropped; past [`MAX_CONNECTIONS`] at once,
//! new connections are closed unanswered; when `shutdown` turns true the
//! listener stops accepting and each connection finishes its request in flight, then closes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tracing::Instrument;

use crate::Webmail;

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping connection may take to finish its request in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; past it new ones are closed at once (file descriptors and
/// memory stay bounded under a flood).
pub const MAX_CONNECTIONS: usize = 1024;

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
        let router = crate::router(self);
        let acceptor = TlsAcceptor::from(tls_config(&tls));
        let next_connection = AtomicU64::new(1);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
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
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                span.in_scope(|| tracing::warn!("refused: too many connections"));
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let served = connection(
                tcp,
                peer,
                acceptor.clone(),
                router.clone(),
                shutdown.clone(),
            );
            connections.spawn(
                async move {
                    served.await;
                    drop(slot);
                }
                .instrument(span),
            );
            // Reap finished connections so the set does not grow without bound.
            while connections.try_join_next().is_some() {}
        }
        while connections.join_next().await.is_some() {}
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return tracing::info!(error = %e, "TLS handshake failed"),
        Err(_) => return tracing::info!("TLS handshake timed out"),
    };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(tls), service);
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
