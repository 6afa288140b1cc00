//! One handle over the two backends. SQL that both understand is written once (SQLite
//! accepts `$1` placeholders); what differs is written twice, side by side.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Executor, PgPool, Postgres, Sqlite, SqlitePool, TransactionManager};

use crate::error::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection pool to the store.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A pooled PostgreSQL connection idle longer than this is pinged before it is used.
pub const PING_WHEN_IDLE: Duration = Duration::from_secs(1);

/// Whether a PostgreSQL URL names this machine (or a Unix socket) and no `sslmode`.
pub fn loopback_without_sslmode(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    if u.query_pairs()
        .any(|(k, _)| k == "sslmode" || k == "ssl-mode")
    {
        return false;
    }
    let socket = u
        .query_pairs()
        .any(|(k, v)| k == "host" && v.starts_with('/'));
    // postgres:// is not a scheme the url crate knows, so its host comes as text.
    let host = u.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    socket
        || host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Options for opening the store.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// PostgreSQL: sessions idle inside a transaction longer than this are ended, so that
    /// no forgotten transaction holds the global log back.
    pub idle_in_transaction_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(60),
        }
    }
}

/// An open transaction on either backend.
pub enum Tx {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A SQLite transaction, holding this process's write lock of that database file when it
/// writes. SQLite lets one writer in at a time; waiting on an async lock here instead of in
/// SQLite's busy handler (which sleeps in growing steps) keeps latency low under load.
pub struct SqliteTx {
    tx: sqlx::Transaction<'static, Sqlite>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for SqliteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

type WriteLock = std::sync::Arc<tokio::sync::Mutex<()>>;

static SQLITE_WRITE_LOCKS: std::sync::Mutex<
    std::collections::BTreeMap<std::path::PathBuf, WriteLock>,
> = std::sync::Mutex::new(std::collections::BTreeMap::new());

fn sqlite_write_lock(pool: &SqlitePool) -> WriteLock {
    let path = pool.connect_options().get_filename().to_path_buf();
    SQLITE_WRITE_LOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(path)
        .or_default()
        .clone()
}

/// Runs the same code against whichever backend a [`Db`] holds; `$p` is bound to the pool.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($p) => $body,
            $crate::db::Db::Postgres($p) => $body,
        }
    };
}

/// Runs the same code against the connection of a [`Tx`]; `$c` is `&mut Connection`.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::db::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// Why a SQLite store did not open. SQLite says only "unable to open database file" when
/// the volume is read-only and the write-ahead log's files are gone (a clean shutdown
/// removes them); whether it was the volume is asked of the file system, so that the
/// operator reads the same sentence whichever way the last run ended.
fn sqlite_open_error(path: &str, e: sqlx::Error) -> StoreError {
    let read_only = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .err()
        .and_then(|io| io.raw_os_error())
        == Some(30);
    if read_only {
        StoreError::Storage {
            fault: crate::error::StorageFault::ReadOnly,
            detail: format!("cannot open the SQLite store at {path}: {e}"),
        }
    } else {
        StoreError::Unavailable(format!("cannot open the SQLite store at {path}: {e}"))
    }
}

impl Db {
    /// Opens the store named by a URL: `sqlite:PATH` (created if missing) or
    /// `postgres://…`.
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Db, StoreError> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::Config("the sqlite URL names no file".into()));
            }
            if path != ":memory:" {
                if let Some(parent) = Path::new(path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            StoreError::Config(format!(
                                "cannot create the data directory {}: {e}",
                                parent.display()
                            ))
                        })?;
                    }
                }
            }
            let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
                .map_err(|e| StoreError::Config(format!("bad sqlite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL can lose the last committed transactions on power loss; a record
                // of mediation must not.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(15))
                .foreign_keys(true)
                .pragma("temp_store", "memory")
                .log_slow_statements(tracing::log::LevelFilter::Off, Duration::from_secs(1));
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.clamp(2, 16))
                .acquire_timeout(options.acquire_timeout)
                // A connection whose transaction could not be ended (a COMMIT that failed on
                // a full disk, then a ROLLBACK of a transaction SQLite had already undone)
                // is never handed out again: it is closed and replaced.
                .before_acquire(|conn, _| {
                    Box::pin(async move {
                        let depth =
                            <Sqlite as sqlx::Database>::TransactionManager::get_transaction_depth(
                                conn,
                            );
                        if depth > 0 {
                            tracing::warn!(
                                depth,
                                "dropping a pooled connection left inside a transaction"
                            );
                        }
                        Ok(depth == 0)
                    })
                })
                .connect_with(opts)
                .await
                .map_err(|e| sqlite_open_error(path, e))?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("bad postgres URL: {e}")))?
                .application_name("tiaojie")
                .log_slow_statements(tracing::log::LevelFilter::Off, Duration::from_secs(1));
            if loopback_without_sslmode(url) {
                // TLS to a server on this machine protects nothing (the bytes never leave
                // the kernel) and costs a TLS record per round trip; a URL that names an
                // sslmode is followed as written.
                opts = opts.ssl_mode(sqlx::postgres::PgSslMode::Disable);
            }
            let idle = options.idle_in_transaction_timeout.as_millis();
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(4))
                .acquire_timeout(options.acquire_timeout)
                // A connection in steady use is not pinged before each use (a round trip
                // per query, half the database's work under load); one that sat idle
                // is, so that one left broken by a restart or a failover is replaced
                // before it fails a command.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        let depth =
                            <Postgres as sqlx::Database>::TransactionManager::get_transaction_depth(
                                conn,
                            );
                        if depth > 0 {
                            tracing::warn!(
                                depth,
                                "dropping a pooled connection left inside a transaction"
                            );
                            return Ok(false);
                        }
                        if meta.idle_for > PING_WHEN_IDLE {
                            return Ok(sqlx::Connection::ping(conn).await.is_ok());
                        }
                        Ok(true)
                    })
                })
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        conn.execute(
                            format!("SET idle_in_transaction_session_timeout = {idle}").as_str(),
                        )
                        .await?;
                        Ok(())
                    })
                })
                .connect_with(opts)
                .await
                .map_err(|e| {
                    StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}"))
                })?;
            Ok(Db::Postgres(pool))
        } else {
            Err(StoreError::Config(format!(
                "the database URL must start with sqlite: or postgres:// (got {:?})",
                url.split(':').next().unwrap_or("")
            )))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// A transaction on PostgreSQL, begun in a task of its own so that the `BEGIN` round trip
    /// always completes. sqlx 0.8's `begin` is not cancel-safe on PostgreSQL: dropped while
    /// `BEGIN` is in flight (a client that disconnects, a time-out), it returns the connection
    /// to the pool inside a transaction nothing will end, and the next borrower's statements run
    /// in it (transact-rs/sqlx#4393). Begun in its own task, a transaction whose caller went
    /// away is dropped with its `BEGIN` answered, which queues the `ROLLBACK`.
    async fn pg_begin(
        pool: &sqlx::PgPool,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let pool = pool.clone();
        match tokio::spawn(async move { pool.begin().await }).await {
            Ok(tx) => Ok(tx?),
            Err(e) => Err(StoreError::Unavailable(format!(
                "beginning a transaction failed: {e}"
            ))),
        }
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`),
    /// so that a transaction that reads and then writes cannot fail half-way.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite(p) => {
                let guard = sqlite_write_lock(p).lock_owned().await;
                Tx::Sqlite(SqliteTx {
                    tx: p.begin_with("BEGIN IMMEDIATE").await?,
                    _guard: Some(guard),
                })
            }
            Db::Postgres(p) => Tx::Postgres(Self::pg_begin(p).await?),
        })
    }

    /// A read-only transaction (a consistent snapshot; takes no write lock).
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(SqliteTx {
                tx: p.begin().await?,
                _guard: None,
            }),
            Db::Postgres(p) => Tx::Postgres(Self::pg_begin(p).await?),
        })
    }

    /// This process's write lock of a SQLite store (None on PostgreSQL), for writes that do
    /// not go through [`Db::begin`] (the cqrs-es repository's own transactions).
    pub fn write_lock(&self) -> Option<WriteLock> {
        match self {
            Db::Sqlite(p) => Some(sqlite_write_lock(p)),
            Db::Postgres(_) => None,
        }
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_db!(self, p => { sqlx::query("SELECT 1").execute(p).await?; });
        Ok(())
    }

    pub async fn close(&self) {
        on_db!(self, p => p.close().await)
    }

    /// Pool use: (connections open, idle).
    pub fn pool_stats(&self) -> (u32, usize) {
        on_db!(self, p => (p.size(), p.num_idle()))
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.tx.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.tx.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }
}

/// A typed SQL value, for statements built at run time (bulk upserts).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    I(Option<i64>),
    F(Option<f64>),
    T(Option<String>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::I(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::I(v)
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Self {
        Val::F(Some(v))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::T(Some(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::T(Some(v.to_string()))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::T(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::I(Some(i64::from(v)))
    }
}

pub type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;
pub type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

pub fn bind_sqlite<'q>(q: SqliteQuery<'q>, v: &Val) -> SqliteQuery<'q> {
    match v {
        Val::I(x) => q.bind(*x),
        Val::F(x) => q.bind(*x),
        Val::T(x) => q.bind(x.clone()),
    }
}

pub fn bind_pg<'q>(q: PgQuery<'q>, v: &Val) -> PgQuery<'q> {
    match v {
        Val::I(x) => q.bind(*x),
        Val::F(x) => q.bind(*x),
        Val::T(x) => q.bind(x.clone()),
    }
}

/// `INSERT … VALUES (…), (…) ON CONFLICT (keys) DO UPDATE SET …` in chunks that stay under
/// both backends' parameter limits. With no `keys`, a plain insert.
pub async fn upsert(
    tx: &mut Tx,
    table: &str,
    columns: &[&str],
    keys: &[&str],
    rows: Vec<Vec<Val>>,
) -> Result<(), StoreError> {
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !keys.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let conflict = if keys.is_empty() {
        String::new()
    } else if updates.is_empty() {
        format!(" ON CONFLICT ({}) DO NOTHING", keys.join(", "))
    } else {
        format!(
            " ON CONFLICT ({}) DO UPDATE SET {}",
            keys.join(", "),
            updates.join(", ")
        )
    };
    insert_rows(tx, table, columns, &conflict, rows).await
}

/// A multi-row INSERT followed by `conflict` (an `ON CONFLICT …` clause or nothing).
///
/// SQLite gets anonymous `?` placeholders: it resolves named ones (`$1`) by a linear
/// search, which makes a statement with thousands of them quadratic.
pub async fn insert_rows(
    tx: &mut Tx,
    table: &str,
    columns: &[&str],
    conflict: &str,
    rows: Vec<Vec<Val>>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    if let Tx::Postgres(t) = tx {
        return insert_unnest(t, table, columns, conflict, rows).await;
    }
    let per_row = columns.len();
    let chunk = (30_000 / per_row).clamp(1, 1000);
    let sqlite = tx.backend() == Backend::Sqlite;
    for part in rows.chunks(chunk) {
        let mut sql = String::with_capacity(64 + part.len() * per_row * 6);
        sql.push_str("INSERT INTO ");
        sql.push_str(table);
        sql.push_str(" (");
        sql.push_str(&columns.join(", "));
        sql.push_str(") VALUES ");
        let mut n = 0;
        for i in 0..part.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for j in 0..per_row {
                if j > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                if sqlite {
                    sql.push('?');
                } else {
                    sql.push('$');
                    sql.push_str(&n.to_string());
                }
            }
            sql.push(')');
        }
        sql.push_str(conflict);
        match tx {
            Tx::Sqlite(t) => {
                let mut q = sqlx::query(&sql).persistent(false);
                for row in part {
                    for v in row {
                        q = bind_sqlite(q, v);
                    }
                }
                q.execute(&mut **t).await?;
            }
            Tx::Postgres(t) => {
                let mut q = sqlx::query(&sql).persistent(false);
                for row in part {
                    for v in row {
                        q = bind_pg(q, v);
                    }
                }
                q.execute(&mut **t).await?;
            }
        }
    }
    Ok(())
}

/// PostgreSQL: one array per column and `INSERT … SELECT FROM UNNEST(…)`, which parses and
/// plans once however many rows there are.
async fn insert_unnest(
    t: &mut sqlx::Transaction<'static, Postgres>,
    table: &str,
    columns: &[&str],
    conflict: &str,
    rows: Vec<Vec<Val>>,
) -> Result<(), StoreError> {
    enum Col {
        I(Vec<Option<i64>>),
        F(Vec<Option<f64>>),
        T(Vec<Option<String>>),
    }
    for part in rows.chunks(5000) {
        let mut cols: Vec<Col> = part[0]
            .iter()
            .map(|v| match v {
                Val::I(_) => Col::I(Vec::with_capacity(part.len())),
                Val::F(_) => Col::F(Vec::with_capacity(part.len())),
                Val::T(_) => Col::T(Vec::with_capacity(part.len())),
            })
            .collect();
        for row in part {
            for (c, v) in cols.iter_mut().zip(row) {
                match (c, v) {
                    (Col::I(a), Val::I(x)) => a.push(*x),
                    (Col::F(a), Val::F(x)) => a.push(*x),
                    (Col::T(a), Val::T(x)) => a.push(x.clone()),
                    _ => {
                        return Err(StoreError::Database(format!(
                            "mixed value types in a column of {table}"
                        )))
                    }
                }
            }
        }
        let args: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let ty = match c {
                    Col::I(_) => "bigint",
                    Col::F(_) => "double precision",
                    Col::T(_) => "text",
                };
                format!("${}::{ty}[]", i + 1)
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) SELECT * FROM UNNEST({}){conflict}",
            columns.join(", "),
            args.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for c in cols {
            q = match c {
                Col::I(a) => q.bind(a),
                Col::F(a) => q.bind(a),
                Col::T(a) => q.bind(a),
            };
        }
        q.execute(&mut **t).await?;
    }
    Ok(())
}

/// `$first, $first+1, …` for an IN list.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A pool of its own beside `pool`, of at most `max` connections opened as needed, with
/// the same settings, for work on another runtime: a connection answers on the runtime
/// that opened it, so this is called on that runtime.
pub fn companion(pool: &PgPool, max: u32) -> PgPool {
    pool.options()
        .clone()
        .max_connections(max)
        .min_connections(0)
        .connect_lazy_with((*pool.connect_options()).clone())
}

#[cfg(test)]
mod tests {
    use super::loopback_without_sslmode as plain;

    #[test]
    fn tls_is_left_out_only_on_this_machine_and_only_when_the_url_is_silent() {
        assert!(plain("postgres://u@127.0.0.1:5432/db"));
        assert!(plain("postgres://u@localhost/db"));
        assert!(plain("postgres://u@[::1]:5432/db"));
        assert!(plain("postgres://u@ignored/db?host=/var/run/postgresql"));
        assert!(!plain("postgres://u@127.0.0.1/db?sslmode=require"));
        assert!(!plain("postgres://u@db.internal:5432/db"));
        assert!(!plain("postgres://u@10.0.0.5/db"));
        assert!(!plain("not a url"));
    }
}
