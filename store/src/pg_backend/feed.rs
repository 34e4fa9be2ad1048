//! Change events between nodes over PostgreSQL's `LISTEN/NOTIFY`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::AsyncMessage;

use super::pool::Link;
use super::{describe, Conn, Statements, CHANNEL, CONNECT_TIMEOUT};
use crate::events::ChangeFeed;
use crate::{Result, StoreError};

/// Change events over `LISTEN/NOTIFY`: notices go out in order on one connection, and come
/// in on another that this node keeps listening (reconnecting when it drops).
pub(super) struct PgFeed {
    link: Arc<Link>,
    outbox: tokio::sync::mpsc::UnboundedSender<String>,
    inbox: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>,
}

impl PgFeed {
    pub(super) fn new(link: Arc<Link>) -> Self {
        let (outbox, inbox) = tokio::sync::mpsc::unbounded_channel();
        Self {
            link,
            outbox,
            inbox: Mutex::new(Some(inbox)),
        }
    }

    /// Sends the queued notices, in order, reconnecting as needed.
    async fn send_notices(
        config: tokio_postgres::Config,
        mut inbox: tokio::sync::mpsc::UnboundedReceiver<String>,
    ) {
        let mut conn: Option<Conn> = None;
        while let Some(notice) = inbox.recv().await {
            for attempt in 0..2 {
                if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
                    conn = match Link::connect(config.clone()).await {
                        Ok((client, connection)) => {
                            tokio::spawn(async move {
                                let _ = connection.await;
                            });
                            match Statements::prepare(&client).await {
                                Ok(st) => Some(Conn { client, st }),
                                Err(e) => {
                                    tracing::warn!(error = %describe(&e), "change notices: cannot prepare");
                                    None
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "change notices: cannot connect to PostgreSQL");
                            None
                        }
                    };
                }
                let Some(c) = &conn else { break };
                match c.client.execute(&c.st.notify, &[&CHANNEL, &notice]).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %describe(&e), attempt, "change notice not sent");
                        conn = None;
                    }
                }
            }
        }
    }
}

impl ChangeFeed for PgFeed {
    fn announce(&self, notice: String) {
        let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(inbox) = inbox.take() {
            self.link
                .handle
                .spawn(Self::send_notices(self.link.config.clone(), inbox));
        }
        // The sender task only ends with the runtime: nothing to tell anyone then.
        let _ = self.outbox.send(notice);
    }

    fn listen(&self, deliver: Box<dyn Fn(&str) + Send + Sync>) -> Result<()> {
        let (ready_tx, ready_rx) =
            std::sync::mpsc::sync_channel::<std::result::Result<(), String>>(1);
        let config = self.link.config.clone();
        self.link
            .handle
            .spawn(listen_loop(config, deliver, ready_tx));
        match ready_rx.recv_timeout(CONNECT_TIMEOUT + Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Backend(format!(
                "cannot listen for other nodes' changes on PostgreSQL: {e}"
            ))),
            Err(_) => Err(StoreError::Backend(
                "cannot listen for other nodes' changes on PostgreSQL: no answer".into(),
            )),
        }
    }
}

/// Keeps one connection listening on [`CHANNEL`], reconnecting with a growing pause.
async fn listen_loop(
    config: tokio_postgres::Config,
    deliver: Box<dyn Fn(&str) + Send + Sync>,
    ready: std::sync::mpsc::SyncSender<std::result::Result<(), String>>,
) {
    let mut ready = Some(ready);
    let mut pause = Duration::from_millis(100);
    loop {
        let failure = match Link::connect(config.clone()).await {
            Ok((client, mut connection)) => {
                let (note_tx, mut note_rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    use futures_util::StreamExt as _;
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                let _ = note_tx.send(n.payload().to_string());
                            }
                            Ok(_) => {}
                            Err(e) => return describe(&e),
                        }
                    }
                    "the connection closed".to_string()
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Ok(()));
                        } else {
                            tracing::info!("listening again for other nodes' changes");
                        }
                        pause = Duration::from_millis(100);
                        while let Some(payload) = note_rx.recv().await {
                            deliver(&payload);
                        }
                        let why = driver.await.unwrap_or_else(|e| e.to_string());
                        drop(client);
                        why
                    }
                    Err(e) => describe(&e),
                }
            }
            Err(e) => e,
        };
        if let Some(r) = ready.take() {
            let _ = r.send(Err(failure));
            return;
        }
        tracing::warn!(error = %failure, "lost the PostgreSQL change listener; reconnecting");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
