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
mod feed;
mod pool;

use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};

use crate::backend::{Applied, Backend, Batch, Entries, Health, SyncTicket, Tree};
use crate::events::ChangeFeed;
use crate::{Result, StoreError};
use feed::PgFeed;
use pool::{start_runtime, Link, Pool};

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
    get_many: Statement,
    /// `[from inclusive / exclusive][with / without an upper bound]`.
    scan: [[Statement; 2]; 2],
    lock: Statement,
    /// The same, giving up at once (no row) when another transaction holds the row.
    lock_or_skip: Statement,
    /// Placeholders for many keys at once (in key order); returns the ones it inserted.
    placeholders: Statement,
    /// Locks many rows at once, in key order; `[wait, skip locked]`.
    lock_many: [Statement; 2],
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
            get_many: client
                .prepare(
                    "SELECT key, value FROM kv \
                     WHERE tree = $1 AND key = ANY($2::bytea[]) AND value IS NOT NULL",
                )
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
            lock_or_skip: client
                .prepare("SELECT value FROM kv WHERE tree = $1 AND key = $2 FOR UPDATE SKIP LOCKED")
                .await?,
            placeholders: client
                .prepare(
                    "INSERT INTO kv (tree, key, value) \
                     SELECT t, k, NULL FROM unnest($1::text[], $2::bytea[]) AS u(t, k) \
                     ORDER BY t, k ON CONFLICT DO NOTHING RETURNING tree, key",
                )
                .await?,
            lock_many: [
                client.prepare(&lock_many("")).await?,
                client.prepare(&lock_many(" SKIP LOCKED")).await?,
            ],
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
pub struct PgBackend {
    link: Arc<Link>,
    pool: Pool,
    feed: Arc<PgFeed>,
    /// Since when and why the database cannot be reached or refuses writes; cleared by the
    /// next call that goes through. What [`Backend::health`] reports.
    trouble: std::sync::Mutex<Option<(std::time::SystemTime, String)>>,
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
    pg_error_ref(&e)
}

fn pg_error_ref(e: &tokio_postgres::Error) -> StoreError {
    StoreError::Backend(format!("PostgreSQL: {}", describe(e)))
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
            pool: Pool::new(pool_size),
            feed: Arc::new(PgFeed::new(link.clone())),
            link,
            trouble: std::sync::Mutex::new(None),
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

    /// Runs `f` with a pooled connection on the backend's runtime; `f` gives it back. A
    /// connection that cannot be opened, or that died under the call, makes the backend
    /// unhealthy; a call on a live connection makes it healthy again.
    fn with_conn<T, Fut>(&self, f: impl FnOnce(Conn) -> Fut + Send + 'static) -> Result<T>
    where
        T: Send + 'static,
        Fut: Future<Output = (Conn, T)> + Send + 'static,
    {
        let conn = self
            .pool
            .take(&self.link)
            .inspect_err(|e| self.in_trouble(e))?;
        match self.link.block(move || f(conn)) {
            Ok((conn, out)) => {
                if conn.client.is_closed() {
                    self.in_trouble(&StoreError::Backend(
                        "the connection to PostgreSQL was lost".into(),
                    ));
                } else {
                    self.out_of_trouble();
                }
                self.pool.give_back(conn);
                Ok(out)
            }
            Err(e) => {
                self.pool.lost();
                self.in_trouble(&e);
                Err(e)
            }
        }
    }

    fn in_trouble(&self, e: &StoreError) {
        let reason = match e {
            StoreError::Backend(reason) => reason.clone(),
            other => other.to_string(),
        };
        let mut trouble = self.trouble.lock().unwrap_or_else(|p| p.into_inner());
        if trouble.is_none() {
            tracing::error!(%reason, "PostgreSQL cannot be used: every change is refused until it answers");
            *trouble = Some((std::time::SystemTime::now(), reason));
        }
    }

    fn out_of_trouble(&self) {
        let mut trouble = self.trouble.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((since, _)) = trouble.take() {
            let secs = since.elapsed().map_or(0.0, |d| d.as_secs_f64());
            tracing::info!("PostgreSQL answers again, after {secs:.1} s");
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
/// Locks the rows of many keys in key order (rows are locked as the sorted rows are returned,
/// so two batches cannot wait on each other), returning their values.
fn lock_many(skip: &str) -> String {
    format!(
        "SELECT tree, key, value FROM kv WHERE (tree, key) IN \
         (SELECT * FROM unnest($1::text[], $2::bytea[])) ORDER BY tree, key FOR UPDATE{skip}"
    )
}

/// Checks at or above this count are evaluated with one statement each for the placeholders
/// and the locks, instead of two per check (a roster import checks 2,000 keys per batch).
const MANY_CHECKS: usize = 8;

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
    if checks.len() >= MANY_CHECKS {
        let absent: Vec<_> = checks.iter().filter(|c| c.expected.is_none()).collect();
        let mut inserted = std::collections::HashSet::new();
        if !absent.is_empty() {
            let trees: Vec<&str> = absent.iter().map(|c| c.tree.0).collect();
            let keys: Vec<&[u8]> = absent.iter().map(|c| c.key.as_slice()).collect();
            for row in tx.query(&st.placeholders, &[&trees, &keys]).await? {
                inserted.insert((row.get::<_, String>(0), row.get::<_, Vec<u8>>(1)));
            }
        }
        let trees: Vec<&str> = checks.iter().map(|c| c.tree.0).collect();
        let keys: Vec<&[u8]> = checks.iter().map(|c| c.key.as_slice()).collect();
        let rows = tx
            .query(
                &st.lock_many[usize::from(batch.skip_locked)],
                &[&trees, &keys],
            )
            .await?;
        let mut current: std::collections::HashMap<(String, Vec<u8>), Option<Vec<u8>>> = rows
            .into_iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect();
        for check in checks {
            let id = (check.tree.0.to_string(), check.key.clone());
            let ours = inserted.contains(&id);
            if ours {
                placeholders.push((check.tree, check.key.as_slice()));
            }
            let row = current.remove(&id);
            // A row that exists (expected present, or not inserted by us) but was not returned
            // is held by another transaction (skip locked) or gone: either way not as expected.
            let exists = check.expected.is_some() || !ours;
            if batch.skip_locked && row.is_none() && exists {
                return Ok(Outcome::Conflict);
            }
            if row.flatten() != check.expected {
                return Ok(Outcome::Conflict);
            }
        }
        return finish_batch(tx, st, batch, placeholders).await;
    }
    for check in checks {
        // Whether the row exists for sure (then a skipped lock means "someone else has it").
        let mut exists = check.expected.is_some();
        if check.expected.is_none() {
            let inserted = tx
                .execute(&st.placeholder, &[&check.tree.0, &check.key])
                .await?;
            if inserted == 1 {
                placeholders.push((check.tree, check.key.as_slice()));
            } else {
                exists = true;
            }
        }
        let lock = if batch.skip_locked {
            &st.lock_or_skip
        } else {
            &st.lock
        };
        let row = tx.query_opt(lock, &[&check.tree.0, &check.key]).await?;
        if batch.skip_locked && row.is_none() && exists {
            // Locked by another node's batch (or gone): not ours to take now.
            return Ok(Outcome::Conflict);
        }
        let current: Option<Vec<u8>> = row.and_then(|row| row.get(0));
        if current != check.expected {
            // Rolled back on drop: placeholders included.
            return Ok(Outcome::Conflict);
        }
    }
    finish_batch(tx, st, batch, placeholders).await
}

/// The writes of a batch whose checks held, then the commit.
async fn finish_batch(
    tx: tokio_postgres::Transaction<'_>,
    st: &Statements,
    batch: &Batch,
    placeholders: Vec<(Tree, &[u8])>,
) -> std::result::Result<Outcome, tokio_postgres::Error> {
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

    fn get_many(&self, tree: Tree, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = Arc::new(keys.to_vec());
        let rows = self.read(move |conn| {
            let wanted = wanted.clone();
            async move {
                let r = conn
                    .client
                    .query(&conn.st.get_many, &[&tree.0, &*wanted])
                    .await;
                (conn, r)
            }
        })?;
        let found: std::collections::HashMap<Vec<u8>, Vec<u8>> = rows
            .into_iter()
            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
            .collect();
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
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
        // A write the server refused (its disk full, read-only, shutting down…) is trouble
        // too, unlike a conflict or a bad statement's error that only this batch meets.
        if let Err(e) = &outcome {
            if e.as_db_error()
                .is_some_and(|db| matches!(&db.code().code()[..2], "53" | "57" | "58" | "25"))
            {
                self.in_trouble(&pg_error_ref(e));
            }
        }
        match outcome.map_err(pg)? {
            // Committed with synchronous_commit on: already durable.
            Outcome::Committed => Ok(Applied::Done(SyncTicket(0))),
            Outcome::Conflict => Ok(Applied::Conflict),
        }
    }

    fn sync(&self, _ticket: SyncTicket) -> Result<()> {
        Ok(())
    }

    fn applied_is_durable(&self) -> bool {
        true
    }

    fn health(&self) -> Health {
        match &*self.trouble.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Health::Healthy,
            Some((since, reason)) => Health::WritesFailing {
                since: *since,
                reason: reason.clone(),
            },
        }
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
