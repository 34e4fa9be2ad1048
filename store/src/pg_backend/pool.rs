//! The backend's own runtime, its connections, and the blocking hand-off between them.

use std::future::Future;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_postgres::{Client, NoTls};

use super::{describe, Conn, PgConnection, Statements, CONNECT_TIMEOUT, POOL_WAIT};
use crate::{Result, StoreError};

/// Where to connect, and the runtime that drives every connection.
pub(super) struct Link {
    pub(super) config: tokio_postgres::Config,
    pub(super) handle: Handle,
}

impl Link {
    /// Runs `f` on the backend's runtime and blocks this thread until it is done. Safe from any
    /// thread, a tokio worker included: the caller only waits on a channel.
    pub(super) fn block<T, Fut>(&self, f: impl FnOnce() -> Fut + Send + 'static) -> Result<T>
    where
        T: Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(f().await);
        });
        rx.recv()
            .map_err(|_| StoreError::Backend("the PostgreSQL runtime stopped".into()))
    }

    pub(super) async fn connect(
        config: tokio_postgres::Config,
    ) -> std::result::Result<(Client, PgConnection), String> {
        match tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls)).await {
            Ok(Ok(pair)) => Ok(pair),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
        }
    }

    /// A new connection with its statements prepared; its I/O is driven by a task.
    pub(super) fn open_conn(&self) -> Result<Conn> {
        let config = self.config.clone();
        self.block(move || async move {
            let (client, connection) = Self::connect(config).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "PostgreSQL connection ended");
                }
            });
            let st = Statements::prepare(&client)
                .await
                .map_err(|e| describe(&e))?;
            Ok(Conn { client, st })
        })?
        .map_err(|e: String| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))
    }
}

/// A bounded pool of connections, taken and given back by blocking callers.
pub(super) struct Pool {
    state: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

struct PoolState {
    idle: Vec<Conn>,
    /// Connections in existence (idle, lent, or being opened).
    open: usize,
}

impl Pool {
    pub(super) fn new(max: usize) -> Self {
        Self {
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            max: max.max(1),
        }
    }

    pub(super) fn take(&self, link: &Link) -> Result<Conn> {
        let deadline = std::time::Instant::now() + POOL_WAIT;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = st.idle.pop() {
                if !conn.client.is_closed() {
                    return Ok(conn);
                }
                st.open -= 1;
                continue;
            }
            if st.open < self.max {
                st.open += 1;
                drop(st);
                return link.open_conn().inspect_err(|_| self.lost());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(StoreError::Backend(format!(
                    "all {} PostgreSQL connections stayed busy for {} s",
                    self.max,
                    POOL_WAIT.as_secs()
                )));
            }
            st = self
                .freed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub(super) fn give_back(&self, conn: Conn) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if conn.client.is_closed() {
            st.open -= 1;
        } else {
            st.idle.push(conn);
        }
        self.freed.notify_one();
    }

    /// A lent connection that will not come back.
    pub(super) fn lost(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.open -= 1;
        self.freed.notify_one();
    }
}
/// Starts the backend's runtime on a thread of its own, so that it is never dropped inside
/// another runtime: dropping the returned sender ends the thread, which drops the runtime.
pub(super) fn start_runtime() -> Result<(Handle, tokio::sync::oneshot::Sender<()>)> {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("mshub-postgres".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("mshub-postgres-io")
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    rt.block_on(async {
                        let _ = stop_rx.await;
                    });
                    rt.shutdown_timeout(Duration::from_secs(1));
                }
                Err(e) => {
                    let _ = handle_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| StoreError::Backend(format!("cannot start the PostgreSQL thread: {e}")))?;
    let handle = handle_rx
        .recv()
        .map_err(|_| StoreError::Backend("the PostgreSQL thread ended at start".into()))?
        .map_err(|e| StoreError::Backend(format!("cannot start the PostgreSQL runtime: {e}")))?;
    Ok((handle, stop_tx))
}
