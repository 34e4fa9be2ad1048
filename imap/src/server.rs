//! The listeners: accept, upgrade to TLS (implicit, or after STARTTLS on the plain port), run
//! sessions, each in a tracing span carrying a connection id. Thin on purpose: the protocol is
//! in `session`.
//!
//! Two counts per source address are checked at accept: all its connections
//! (`max_connections_per_source`) and those not logged in yet
//! (`max_unauthenticated_per_source`), whose place the session holds — across STARTTLS and
//! the TLS handshake — until login.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use mshub_directory::ConnectionSlot;
use mshub_metrics::{CONNECTIONS, CONNECTIONS_OPEN};

use crate::session::{Connection, Ended, Session};
use crate::Imap;

/// The two IMAP listeners, bound by the caller (so it knows and prints their addresses).
pub struct Listeners {
    /// Plain port: STARTTLS before anything else.
    pub imap: TcpListener,
    /// Implicit TLS.
    pub imaps: TcpListener,
}

const HANDSHAKE: Duration = Duration::from_secs(30);

impl Imap {
    /// Serves both listeners until `shutdown` turns true.
    pub async fn serve(self: Arc<Self>, listeners: Listeners, shutdown: watch::Receiver<bool>) {
        let plain = tokio::spawn(
            self.clone()
                .accept_loop(listeners.imap, false, shutdown.clone()),
        );
        let tls = tokio::spawn(self.accept_loop(listeners.imaps, true, shutdown));
        let _ = plain.await;
        let _ = tls.await;
    }

    async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        implicit_tls: bool,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
            let span = tracing::info_span!("imap", conn = id, %peer, implicit_tls);
            let imap = self.clone();
            tokio::spawn(
                async move {
                    let Some(slot) = imap
                        .sources
                        .admit(peer.ip(), imap.config.max_connections_per_source)
                    else {
                        tracing::info!("refused: too many connections from this source");
                        CONNECTIONS.inc(&["imap", "refused"]);
                        refuse(tcp, implicit_tls, "Too many connections").await;
                        return;
                    };
                    let Some(pre_auth) = imap
                        .unauthenticated
                        .admit(peer.ip(), imap.config.max_unauthenticated_per_source)
                    else {
                        tracing::info!(
                            "refused: too many connections not logged in from this source"
                        );
                        CONNECTIONS.inc(&["imap", "refused"]);
                        refuse(
                            tcp,
                            implicit_tls,
                            "Too many connections not logged in from your address",
                        )
                        .await;
                        return;
                    };
                    CONNECTIONS.inc(&["imap", "accepted"]);
                    let open = CONNECTIONS_OPEN.hold(&["imap"]);
                    imap.connection(tcp, peer, id, implicit_tls, pre_auth).await;
                    drop(open);
                    drop(slot);
                }
                .instrument(span),
            );
        }
    }

    async fn connection(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        id: u64,
        implicit: bool,
        pre_auth: ConnectionSlot,
    ) {
        let acceptor = TlsAcceptor::from(self.tls.clone());
        let conn = Connection {
            id,
            peer,
            tls: false,
        };
        let (tcp, pre_auth) = if implicit {
            (tcp, Some(pre_auth))
        } else {
            let mut session = Session::new(self.clone(), tcp, conn.clone());
            session.hold_until_login(pre_auth);
            let ended = session.run(true).await;
            if ended != Ended::StartTls {
                tracing::debug!(?ended, "session ended");
                return;
            }
            let pre_auth = session.take_pre_auth_slot();
            (session.into_io(), pre_auth)
        };
        match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                let ended = self.tls_session(tls, conn, implicit, pre_auth).await;
                tracing::debug!(?ended, "session ended");
            }
            Ok(Err(e)) => tracing::info!(error = %e, "TLS handshake failed"),
            Err(_) => tracing::info!("TLS handshake timed out"),
        }
    }

    async fn tls_session<S: AsyncRead + AsyncWrite + Unpin + Send>(
        self: Arc<Self>,
        tls: tokio_rustls::server::TlsStream<S>,
        mut conn: Connection,
        greet: bool,
        pre_auth: Option<ConnectionSlot>,
    ) -> Ended {
        conn.tls = true;
        let mut session = Session::new(self, tls, conn);
        if let Some(slot) = pre_auth {
            session.hold_until_login(slot);
        }
        let ended = session.run(greet).await;
        let mut io = session.into_io();
        let _ = io.shutdown().await;
        ended
    }
}

/// Refuses a connection over a per-source cap: a BYE on the plain port (RFC 9051 §7.1.5), not
/// even that on the TLS port, where a handshake first would make refusing expensive.
async fn refuse(mut tcp: TcpStream, implicit_tls: bool, reason: &str) {
    if !implicit_tls {
        let _ = tcp
            .write_all(format!("* BYE {reason}\r\n").as_bytes())
            .await;
    }
}
