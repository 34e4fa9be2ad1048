//! The listeners: accept, enforce per-source limits, upgrade to TLS, run sessions, each in a
//! tracing span carrying a connection id. Thin on purpose: the protocol is in `session`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::peer::PeerCertificate;
use crate::policy::Door;
use crate::refusal::Refusal;
use crate::session::{Connection, Ended, Session};
use crate::sources::Tracked;
use crate::Mta;

/// The three SMTP listeners, bound by the caller (so it knows and prints their addresses).
pub struct Listeners {
    pub relay: TcpListener,
    pub submission: TcpListener,
    pub submissions: TcpListener,
}

impl Mta {
    /// Serves the three listeners and runs the outbound queue until `shutdown` turns true.
    pub async fn serve(self: Arc<Self>, listeners: Listeners, shutdown: watch::Receiver<bool>) {
        // Copies acknowledged before a stop may still be waiting for their filers.
        let delivery = self.delivery.clone();
        tokio::task::spawn_blocking(move || match delivery.resume_filings() {
            Ok(0) => {}
            Ok(resumed) => tracing::info!(
                resumed,
                "filings left pending by the last stop were resumed"
            ),
            Err(e) => tracing::error!(error = %e, "could not resume pending filings"),
        });
        let queue = tokio::spawn(self.outbound.clone().run(shutdown.clone()));
        let loops = [
            (listeners.relay, Door::Relay, false),
            (listeners.submission, Door::Submission, false),
            (listeners.submissions, Door::Submission, true),
        ]
        .map(|(l, door, implicit)| {
            tokio::spawn(
                self.clone()
                    .accept_loop(l, door, implicit, shutdown.clone()),
            )
        });
        for l in loops {
            let _ = l.await;
        }
        let _ = queue.await;
    }

    async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        door: Door,
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
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
            let span = tracing::info_span!("smtp", conn = id, %peer, ?door);
            let mta = self.clone();
            tokio::spawn(
                async move {
                    let Some(slot) =
                        mta.sources
                            .admit(peer.ip(), mta.config.max_connections_per_source, id)
                    else {
                        let mut tcp = tcp;
                        let _ = tcp
                            .write_all(&Refusal::TooManyConnections.reply().to_bytes())
                            .await;
                        tracing::info!("refused: too many connections from this source");
                        mshub_metrics::CONNECTIONS.inc(&["smtp", "refused"]);
                        return;
                    };
                    mshub_metrics::CONNECTIONS.inc(&["smtp", "accepted"]);
                    let open = mshub_metrics::CONNECTIONS_OPEN.hold(&["smtp"]);
                    let tracked = slot.tracked.clone();
                    mta.connection(tcp, peer, id, door, implicit_tls, tracked)
                        .await;
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
        door: Door,
        implicit_tls: bool,
        tracked: Arc<Tracked>,
    ) {
        let acceptor = TlsAcceptor::from(match door {
            Door::Relay => self.tls_relay.clone(),
            Door::Submission => self.tls_submission.clone(),
        });
        let conn = Connection {
            id,
            peer,
            door,
            tls: false,
            peer_certificate: None,
        };
        let handshake = Duration::from_secs(30);
        if implicit_tls {
            match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let ended = self.clone().tls_session(tls, conn, true, tracked).await;
                    tracing::debug!(?ended, "session ended");
                }
                Ok(Err(e)) => tracing::info!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::info!("TLS handshake timed out"),
            }
            return;
        }
        let mut session = Session::new(self.clone(), tcp, conn.clone());
        session.track(tracked.clone());
        let ended = session.run(true).await;
        if ended != Ended::StartTls {
            tracing::debug!(?ended, "session ended");
            return;
        }
        let tcp = session.into_io();
        match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                let ended = self.tls_session(tls, conn, false, tracked).await;
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
        tracked: Arc<Tracked>,
    ) -> Ended {
        conn.tls = true;
        // Verified by the handshake against the trust space's CA (the relay's verifier).
        conn.peer_certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| PeerCertificate::new(leaf.clone().into_owned()));
        let mut session = Session::new(self, tls, conn);
        session.track(tracked);
        let ended = session.run(greet).await;
        let mut io = session.into_io();
        let _ = io.shutdown().await;
        ended
    }
}
