//! The PostgreSQL backend: the scale-out path, where several hub nodes share one database.
//!
//! Every tree lives in one table `kv(tree, key, value)` keyed by `(tree, key)`; `bytea`
//! compares byte by byte (shorter first on a common prefix), which is sled's key order, so
//! scans return the same entries in the same order on both backends.
//!
//! Invariants:
//! - A batch is one transaction (READ COMMITTED). Each check locks its row before it is
//!   compared: `SELECT … FOR UPDATE` for a key expected present; for a key expected absent a
//!   placeholder row (`value IS NULL`) is first inserted with `ON CONFLICT DO NOTHING`, which
//!   waits for any concurrent inserter of that key, then locked the same way. So from its
//!   checks to its commit a batch holds a lock on every key it checked: no other batch can
//!   change or create one of them meanwhile, and a check that holds at commit held all along.
//! - Placeholders are never visible: reads skip `value IS NULL`, and a batch deletes the
//!   placeholders it inserted for keys it does not write before it commits (a rolled-back one
//!   leaves none).
//! - Rows are locked in key order; a deadlock or serialisation failure that PostgreSQL still
//!   reports re-runs the whole batch (its checks re-evaluated), never reports a false
//!   [`Commit::Conflict`] (callers read a conflict as "someone else wrote first").
//! - `apply` returns after PostgreSQL committed with `synchronous_commit` on: every applied
//!   batch is already durable, so `sync` has nothing left to wait for.
//! - The trait is synchronous and is called from tokio workers, blocking threads and plain
//!   threads alike: the backend owns its own runtime on its own thread and hands each call
//!   over to it, the caller blocking on a channel. Nothing here ever enters a runtime from
//!   within another.
//! - Change events cross nodes by `NOTIFY mshub_changes` right after the commit they describe;
//!   each node `LISTEN`s on a connection of its own and re-publishes the other nodes' notices.
//!   A notice sent while a node's listener is reconnecting is lost to that node (it logs the
//!   reconnection); IMAP clients then see the change at their next command.

use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client, NoTls, Statement};

use crate::backend::{Applied, Backend, Batch, Entries, SyncTicket, Tree};
use crate::events::ChangeFeed;
use crate::{Result, StoreError};

/// The NOTIFY channel of change events.
pub const CHANNEL: &str = "mshub_changes";
/// Connections kept by default (the hub's concurrent store calls beyond it wait their turn).
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long a call waits for a free connection before failing.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Re-runs of a batch that PostgreSQL aborted for a deadlock or serialisation failure.
const MAX_RERUNS: u32 = 20;
/// Session key of the advisory lock that serialises schema migrations between nodes.
const MIGRATION_LOCK: i64 = 0x6d73_6875_625f_6d67;

/// The schema, one entry per version, applied in order at open and recorded in
/// `schema_version`. Never edit a released entry: add the next one.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE kv (
        tree text COLLATE \"C\" NOT NULL,
        key bytea NOT NULL,
        -- NULL: a placeholder held by a batch checking that the key is absent; never read.
        value bytea,
        PRIMARY KEY (tree, key)
    );",
)];

type PgConnection =
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>;

/// The SQL of every statement, prepared once per connection.
struct Statements {
    get: Statement,
    /// `[from inclusive / exclusive][with / without an upper bound]`.
    scan: [[Statement; 2]; 2],
    lock: Statement,
    placeholder: Statement,
    upsert: Statement,
    delete: Statement,
    notify: Statement,
}

const SCAN_TAIL: &str = "AND value IS NOT NULL ORDER BY key LIMIT $4";

impl Statements {
    async fn prepare(client: &Client) -> std::result::Result<Self, tokio_postgres::Error> {
        let scan = |from: &str, upper: bool| {
            let upper = if upper {
                "AND key < $3"
            } else {
                "AND $3::bytea IS NULL"
            };
            format!(
                "SELECT key, value FROM kv WHERE tree = $1 AND key {from} $2 {upper} {SCAN_TAIL}"
            )
        };
        Ok(Self {
            get: client
                .prepare("SELECT value FROM kv WHERE tree = $1 AND key = $2 AND value IS NOT NULL")
                .await?,
            scan: [
                [
                    client.prepare(&scan(">=", true)).await?,
                    client.prepare(&scan(">=", false)).await?,
                ],
                [
                    client.prepare(&scan(">", true)).await?,
                    client.prepare(&scan(">", false)).await?,
                ],
            ],
            lock: client
                .prepare("SELECT value FROM kv WHERE tree = $1 AND key = $2 FOR UPDATE")
                .await?,
            placeholder: client
                .prepare(
                    "INSERT INTO kv (tree, key, value) VALUES ($1, $2, NULL) \
                     ON CONFLICT DO NOTHING",
                )
                .await?,
            upsert: client
                .prepare(
                    "INSERT INTO kv (tree, key, value) \
                     SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[]) \
                     ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value",
                )
                .await?,
            delete: client
                .prepare(
                    "DELETE FROM kv WHERE (tree, key) IN \
                     (SELECT * FROM unnest($1::text[], $2::bytea[]))",
                )
                .await?,
            notify: client.prepare("SELECT pg_notify($1, $2)").await?,
        })
    }
}

/// One pooled connection and its prepared statements.
struct Conn {
    client: Client,
    st: Statements,
}

/// Where to connect, and the runtime that drives every connection.
struct Link {
    config: tokio_postgres::Config,
    handle: Handle,
}

impl Link {
    /// Runs `f` on the backend's runtime and blocks this thread until it is done. Safe from any
    /// thread, a tokio worker included: the caller only waits on a channel.
    fn block<T, Fut>(&self, f: impl FnOnce() -> Fut + Send + 'static) -> Result<T>
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

    async fn connect(
        config: tokio_postgres::Config,
    ) -> std::result::Result<(Client, PgConnection), String> {
        match tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls)).await {
            Ok(Ok(pair)) => Ok(pair),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
        }
    }

    /// A new connection with its statements prepared; its I/O is driven by a task.
    fn open_conn(&self) -> Result<Conn> {
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
struct Pool {
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
    fn take(&self, link: &Link) -> Result<Conn> {
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

    fn give_back(&self, conn: Conn) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if conn.client.is_closed() {
            st.open -= 1;
        } else {
            st.idle.push(conn);
        }
        self.freed.notify_one();
    }

    /// A lent connection that will not come back.
    fn lost(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.open -= 1;
        self.freed.notify_one();
    }
}

pub struct PgBackend {
    link: Arc<Link>,
    pool: Pool,
    feed: Arc<PgFeed>,
    /// Stops the runtime's thread when the backend goes.
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Error text with PostgreSQL's own message (the `Display` of a server error is only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn pg(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(format!("PostgreSQL: {}", describe(&e)))
}

/// A batch PostgreSQL aborted only because of concurrency: running it again is correct.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// The least key greater than every key starting with `prefix`, if there is one.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl PgBackend {
    /// Connects to `url` (`postgres://user@host:port/db`; `password`, if given, overrides the
    /// URL's), brings the schema up to date, and starts the change-event listener's runtime.
    /// `pool_size` bounds the connections this node opens for queries (one more listens).
    pub fn open(url: &str, password: Option<&str>, pool_size: usize) -> Result<Self> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        if let Some(password) = password {
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name("mshub");
        }
        // The store's promise (a returned commit is durable) must not depend on the server's
        // or the role's defaults.
        let options = match config.get_options() {
            Some(o) => format!("{o} -c synchronous_commit=on"),
            None => "-c synchronous_commit=on".to_string(),
        };
        config.options(options);
        let (handle, stop) = start_runtime()?;
        let link = Arc::new(Link { config, handle });
        let backend = Self {
            pool: Pool {
                state: Mutex::new(PoolState {
                    idle: Vec::new(),
                    open: 0,
                }),
                freed: Condvar::new(),
                max: pool_size.max(1),
            },
            feed: Arc::new(PgFeed::new(link.clone())),
            link,
            _stop: stop,
        };
        backend.migrate()?;
        Ok(backend)
    }

    /// Applies the migrations this database lacks, under an advisory lock so that nodes
    /// starting together apply each one once.
    fn migrate(&self) -> Result<()> {
        let config = self.link.config.clone();
        // On a connection of its own: pooled ones prepare statements on tables this creates.
        let outcome = self.link.block(move || async move {
            let (mut client, connection) = Link::connect(config)
                .await
                .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
            tokio::spawn(connection);
            let migrated = async {
                let tx = client.transaction().await?;
                // "already exists, skipping" is the normal case, not news for the log.
                tx.batch_execute("SET LOCAL client_min_messages = warning")
                    .await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                    .await?;
                tx.batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (
                        version integer PRIMARY KEY,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )",
                )
                .await?;
                let current: i32 = tx
                    .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
                    .await?
                    .get(0);
                let known = MIGRATIONS.last().map_or(0, |m| m.0);
                if current > known {
                    return Ok(Some(current));
                }
                for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
                    tx.batch_execute(sql).await?;
                    tx.execute(
                        "INSERT INTO schema_version (version) VALUES ($1)",
                        &[version],
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok(None)
            }
            .await;
            migrated.map_err(|e: tokio_postgres::Error| {
                format!(
                    "cannot bring the PostgreSQL schema up to date: {}",
                    describe(&e)
                )
            })
        })?;
        match outcome.map_err(StoreError::Backend)? {
            None => Ok(()),
            Some(found) => Err(StoreError::Backend(format!(
                "the PostgreSQL schema is at version {found}, newer than this mshub knows \
                 ({}): upgrade mshub",
                MIGRATIONS.last().map_or(0, |m| m.0)
            ))),
        }
    }

    /// Runs `f` with a pooled connection on the backend's runtime; `f` gives it back.
    fn with_conn<T, Fut>(&self, f: impl FnOnce(Conn) -> Fut + Send + 'static) -> Result<T>
    where
        T: Send + 'static,
        Fut: Future<Output = (Conn, T)> + Send + 'static,
    {
        let conn = self.pool.take(&self.link)?;
        match self.link.block(move || f(conn)) {
            Ok((conn, out)) => {
                self.pool.give_back(conn);
                Ok(out)
            }
            Err(e) => {
                self.pool.lost();
                Err(e)
            }
        }
    }
    /// A read, run once more on a fresh connection if its connection turned out to be dead
    /// (the server restarted since it was pooled): reads are safe to repeat, writes are not.
    fn read<T, Fut>(&self, f: impl Fn(Conn) -> Fut + Send + Sync + 'static) -> Result<T>
    where
        T: Send + 'static,
        Fut:
            Future<Output = (Conn, std::result::Result<T, tokio_postgres::Error>)> + Send + 'static,
    {
        let f = Arc::new(f);
        let again = f.clone();
        match self.with_conn(move |conn| f(conn))? {
            Err(e) if e.is_closed() => self.with_conn(move |conn| again(conn))?.map_err(pg),
            other => other.map_err(pg),
        }
    }
}

/// Starts the backend's runtime on a thread of its own, so that it is never dropped inside
/// another runtime: dropping the returned sender ends the thread, which drops the runtime.
fn start_runtime() -> Result<(Handle, tokio::sync::oneshot::Sender<()>)> {
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

/// What a batch did inside its transaction.
enum Outcome {
    Committed,
    Conflict,
}

async fn run_batch(
    conn: &mut Conn,
    batch: &Batch,
) -> std::result::Result<Outcome, tokio_postgres::Error> {
    let st = &conn.st;
    let tx = conn.client.transaction().await?;
    // Key order, so that two batches locking the same rows cannot wait on each other.
    let mut checks: Vec<_> = batch.checks.iter().collect();
    checks.sort_by(|a, b| (a.tree, &a.key).cmp(&(b.tree, &b.key)));
    let mut placeholders = Vec::new();
    for check in checks {
        if check.expected.is_none() {
            tx.execute(&st.placeholder, &[&check.tree.0, &check.key])
                .await?;
            placeholders.push((check.tree, check.key.as_slice()));
        }
        let current: Option<Vec<u8>> = tx
            .query_opt(&st.lock, &[&check.tree.0, &check.key])
            .await?
            .and_then(|row| row.get(0));
        if current != check.expected {
            // Rolled back on drop: placeholders included.
            return Ok(Outcome::Conflict);
        }
    }
    // The last write of a key wins, as in one sled batch.
    let mut last: BTreeMap<(Tree, &[u8]), Option<&[u8]>> = BTreeMap::new();
    for w in &batch.writes {
        last.insert((w.tree, &w.key), w.value.as_deref());
    }
    for key in placeholders {
        last.entry(key).or_insert(None);
    }
    let (mut put_trees, mut put_keys, mut put_values) = (Vec::new(), Vec::new(), Vec::new());
    let (mut del_trees, mut del_keys) = (Vec::new(), Vec::new());
    for ((tree, key), value) in last {
        match value {
            Some(v) => {
                put_trees.push(tree.0);
                put_keys.push(key);
                put_values.push(v);
            }
            None => {
                del_trees.push(tree.0);
                del_keys.push(key);
            }
        }
    }
    if !put_keys.is_empty() {
        tx.execute(&st.upsert, &[&put_trees, &put_keys, &put_values])
            .await?;
    }
    if !del_keys.is_empty() {
        tx.execute(&st.delete, &[&del_trees, &del_keys]).await?;
    }
    tx.commit().await?;
    Ok(Outcome::Committed)
}

impl Backend for PgBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = Arc::new(key.to_vec());
        self.read(move |conn| {
            let key = key.clone();
            async move {
                let r = conn.client.query_opt(&conn.st.get, &[&tree.0, &*key]).await;
                (conn, r)
            }
        })
        .map(|row| row.and_then(|r| r.get(0)))
    }

    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: Option<usize>,
    ) -> Result<Entries> {
        let upper = prefix_end(prefix);
        // Strictly after `after` when that is within or past the prefix, else from the prefix.
        let (from, exclusive) = match after {
            Some(a) if a >= prefix => (a.to_vec(), true),
            _ => (prefix.to_vec(), false),
        };
        if limit == Some(0) || upper.as_deref().is_some_and(|u| from.as_slice() >= u) {
            return Ok(Vec::new());
        }
        let limit = limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let bounds = Arc::new((from, upper));
        self.read(move |conn| {
            let bounds = bounds.clone();
            async move {
                let (from, upper) = &*bounds;
                let st = &conn.st.scan[usize::from(exclusive)][usize::from(upper.is_none())];
                let r = conn.client.query(st, &[&tree.0, from, upper, &limit]).await;
                (conn, r)
            }
        })
        .map(|rows| {
            rows.into_iter()
                .filter_map(|r| Some((r.get::<_, Vec<u8>>(0), r.get::<_, Option<Vec<u8>>>(1)?)))
                .collect()
        })
    }

    fn apply(&self, batch: &Batch) -> Result<Applied> {
        if batch.writes.is_empty() && batch.checks.is_empty() {
            return Ok(Applied::Done(SyncTicket(0)));
        }
        let batch = batch.clone();
        let outcome = self.with_conn(move |mut conn| async move {
            let mut reruns = 0;
            let r = loop {
                match run_batch(&mut conn, &batch).await {
                    Err(e) if is_transient(&e) && reruns < MAX_RERUNS => reruns += 1,
                    other => break other,
                }
            };
            (conn, r)
        })?;
        match outcome.map_err(pg)? {
            // Committed with synchronous_commit on: already durable.
            Outcome::Committed => Ok(Applied::Done(SyncTicket(0))),
            Outcome::Conflict => Ok(Applied::Conflict),
        }
    }

    fn sync(&self, _ticket: SyncTicket) -> Result<()> {
        Ok(())
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        self.with_conn(|conn| async move {
            let r = conn
                .client
                .query(
                    "SELECT DISTINCT tree FROM kv WHERE value IS NOT NULL ORDER BY tree",
                    &[],
                )
                .await;
            (conn, r)
        })?
        .map_err(pg)
        .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
        Some(self.feed.clone())
    }
}

/// Change events over `LISTEN/NOTIFY`: notices go out in order on one connection, and come
/// in on another that this node keeps listening (reconnecting when it drops).
struct PgFeed {
    link: Arc<Link>,
    outbox: tokio::sync::mpsc::UnboundedSender<String>,
    inbox: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>,
}

impl PgFeed {
    fn new(link: Arc<Link>) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_least_key_past_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
