//! The shared store: PostgreSQL, for several Girder nodes over one database
//! (`scheduler.store = "postgres://…"`).
//!
//! A pool of threads, each owning one connection, takes operations from one queue and
//! runs each in its own transaction (READ COMMITTED), answering after `COMMIT`. The
//! rules are `sql.rs`'s; what makes them safe with several writers: claims and reaps
//! read with `FOR UPDATE SKIP LOCKED` (two nodes never take the same job), fence checks
//! and cancels lock the job's row (two nodes never both commit an attempt), schedule
//! ticks are compare-and-set updates, keys and names are inserted with `ON CONFLICT DO
//! NOTHING`. Time is the database's clock (`clock_timestamp()`), so leases and due
//! times mean the same on every node whatever their clocks say. A deadlock or
//! serialization failure rolls the operation back and runs it again. Migrations run
//! at connect under an advisory lock, so nodes starting together migrate once.

use super::sql::{Arg, Cell, Dialect, Op, Row, Runner, Sql, SqlStore, NOTIFY_CHANNEL};
use super::{StoreError, StoreFuture};
use futures_util::FutureExt;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// The schema, one entry per version; `schema_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: jobs, attempts, schedules (as SQLite's, with 64-bit integers).
    "CREATE TABLE jobs (
        id BIGSERIAL PRIMARY KEY,
        queue TEXT NOT NULL,
        kind TEXT NOT NULL,
        url TEXT,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        priority BIGINT NOT NULL,
        run_at BIGINT NOT NULL,
        attempt BIGINT NOT NULL DEFAULT 0,
        max_attempts BIGINT NOT NULL,
        backoff_base_ms BIGINT NOT NULL,
        backoff_max_ms BIGINT NOT NULL,
        timeout_ms BIGINT,
        lease_until BIGINT,
        started_at BIGINT,
        dedup_key TEXT,
        dedup_until BIGINT,
        schedule_id BIGINT,
        result TEXT,
        last_error TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        finished_at BIGINT
    );
    CREATE INDEX jobs_claim ON jobs (queue, kind, priority DESC, run_at, id) WHERE state = 'pending';
    CREATE INDEX jobs_claim_any ON jobs (kind, priority DESC, run_at, id) WHERE state = 'pending';
    CREATE INDEX jobs_due ON jobs (kind, run_at) WHERE state = 'pending';
    CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';
    CREATE INDEX jobs_running ON jobs (queue) WHERE state = 'running';
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    CREATE INDEX jobs_queue ON jobs (queue, id);
    CREATE UNIQUE INDEX jobs_dedup ON jobs (queue, dedup_key) WHERE dedup_key IS NOT NULL;
    CREATE TABLE attempts (
        job_id BIGINT NOT NULL,
        attempt BIGINT NOT NULL,
        worker TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        ended_at BIGINT,
        outcome TEXT,
        error TEXT,
        PRIMARY KEY (job_id, attempt)
    );
    CREATE TABLE schedules (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        cron TEXT NOT NULL,
        time_zone TEXT NOT NULL,
        template TEXT NOT NULL,
        misfire TEXT NOT NULL,
        paused BIGINT NOT NULL DEFAULT 0,
        next_run_at BIGINT NOT NULL,
        last_tick BIGINT,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused = 0;",
];

/// Serializes migrations of nodes starting at once (an arbitrary constant).
const MIGRATION_LOCK: i64 = 0x6769_7264_6572; // "girder"

/// Runs of an operation after deadlocks or serialization failures.
const MAX_RUNS: usize = 10;

/// Settings of the shared store.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections (and threads) of this node.
    pub pool: usize,
    /// Decide by the database's clock (true, the default) or the caller's (tests with
    /// a virtual clock).
    pub database_time: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool: 8,
            database_time: true,
        }
    }
}

/// The shared store: [`SqlStore`] over a pool of PostgreSQL connections.
pub type PgStore = SqlStore<PgRunner>;

type Job = Box<dyn FnOnce(&mut PgConn) + Send>;

/// Runs operations on the pool.
pub struct PgRunner {
    sender: mpsc::Sender<Job>,
    url: String,
    own: OwnBackends,
}

fn pg(e: postgres::Error) -> StoreError {
    let code = e.code().map(|c| c.code().to_owned());
    match code.as_deref() {
        // deadlock_detected, serialization_failure: rolled back, safe to run again.
        Some("40P01" | "40001") => StoreError::Retry(e.to_string()),
        // The connection was cut (the server restarted, an administrator terminated it,
        // a network fault): whatever the transaction did is gone; run it again on a new
        // connection. (A failed COMMIT is the exception; see `transaction`.)
        Some(c) if c.starts_with("08") || c.starts_with("57P") => {
            StoreError::Retry(format!("connection lost: {e}"))
        }
        None if e.is_closed() || io_error(&e) => StoreError::Retry(format!("connection lost: {e}")),
        _ => StoreError::Database(match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        }),
    }
}

/// Whether `e` is the socket failing ("error communicating with the server").
fn io_error(e: &postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

impl PgStore {
    /// Connects to `url`, runs pending migrations, and starts the pool. Blocking; call
    /// it outside an async runtime's threads (or from `spawn_blocking`).
    pub fn connect(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let url = url.to_owned();
        // The sync client runs its own small runtime: keep it off the caller's thread,
        // which may be inside tokio.
        let own: OwnBackends = Arc::default();
        let first = {
            let (url, own) = (url.clone(), Arc::clone(&own));
            std::thread::spawn(move || -> Result<Client, StoreError> {
                let mut client = Client::connect(&url, NoTls).map_err(pg)?;
                migrate(&mut client)?;
                if let (Some(pid), Ok(mut set)) = (backend_pid(&mut client), own.lock()) {
                    set.insert(pid);
                }
                Ok(client)
            })
            .join()
            .map_err(|_| StoreError::Database("the connecting thread panicked".into()))??
        };
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut first = Some(first);
        for i in 0..options.pool.max(1) {
            let receiver = Arc::clone(&receiver);
            let url = url.clone();
            let client = first.take();
            let database_time = options.database_time;
            let own = Arc::clone(&own);
            std::thread::Builder::new()
                .name(format!("girder-sched-pg-{i}"))
                .spawn(move || {
                    let mut conn = PgConn {
                        client,
                        url,
                        statements: HashMap::new(),
                        database_time,
                        own,
                    };
                    loop {
                        let job = match receiver.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut conn),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| StoreError::Database(format!("cannot start a pool thread: {e}")))?;
        }
        Ok(SqlStore {
            runner: PgRunner { sender, url, own },
        })
    }
}

fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .map_err(pg)?;
    let version: Option<i64> = tx
        .query_one("SELECT max(version) FROM schema_version", &[])
        .map_err(pg)?
        .get(0);
    let version = version.unwrap_or(0) as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Database(format!(
            "the scheduler database is at schema version {version}, newer than this \
             Girder knows ({}); use a newer Girder",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.batch_execute(sql).map_err(pg)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(i as i64 + 1)],
        )
        .map_err(pg)?;
        tracing::info!(version = i + 1, "scheduler store migrated");
    }
    tx.commit().map_err(pg)
}

/// `?1` placeholders to PostgreSQL's `$1`.
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl ToSql for Arg {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(v) => match *ty {
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => v.to_string().to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Arg::Text(s) => s.as_str().to_sql(ty, out),
            Arg::Ints(v) => v.to_sql(ty, out),
            Arg::Texts(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// One pool thread's connection (reopened after it breaks).
struct PgConn {
    client: Option<Client>,
    url: String,
    statements: HashMap<String, Statement>,
    database_time: bool,
    /// The server processes of this node's pool: the listener ignores their
    /// announcements, whose queues this node already woke itself.
    own: OwnBackends,
}

/// Backend process ids of this node's pool connections.
type OwnBackends = Arc<Mutex<std::collections::HashSet<i32>>>;

fn backend_pid(client: &mut Client) -> Option<i32> {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .ok()
        .map(|r| r.get(0))
}

impl PgConn {
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.statements.clear();
            self.client = None;
            let mut client = Client::connect(&self.url, NoTls).map_err(pg)?;
            if let (Some(pid), Ok(mut own)) = (backend_pid(&mut client), self.own.lock()) {
                own.insert(pid);
            }
            self.client = Some(client);
        }
        self.client.as_mut().ok_or(StoreError::Closed)
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let text = placeholders(sql);
        let statement = self.client()?.prepare(&text).map_err(pg)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Runs `op` in a transaction, again after a deadlock, a serialization failure or a
    /// lost connection (on a new one) — never after a failed `COMMIT`, whose outcome is
    /// unknown.
    fn transaction<T>(&mut self, op: &mut Op<T>) -> Result<T, StoreError> {
        let mut runs = 0;
        loop {
            runs += 1;
            let result = match self
                .client()
                .and_then(|c| c.batch_execute("BEGIN").map_err(pg))
            {
                Err(e) => Err(e),
                Ok(()) => match op(self) {
                    Ok(v) => match self.client()?.batch_execute("COMMIT") {
                        Ok(()) => return Ok(v),
                        Err(e) => {
                            return Err(StoreError::Database(format!(
                                "the commit's outcome is unknown: {e}"
                            )))
                        }
                    },
                    Err(e) => {
                        let _ = self.client().map(|c| c.batch_execute("ROLLBACK"));
                        Err(e)
                    }
                },
            };
            match result {
                Err(StoreError::Retry(why)) if runs < MAX_RUNS => {
                    if self.client.as_ref().is_some_and(Client::is_closed) {
                        self.client = None;
                    }
                    tracing::debug!(why, runs, "scheduler store: operation retried");
                    std::thread::sleep(Duration::from_millis(fastrand::u64(1..=5 * runs as u64)));
                }
                other => return other,
            }
        }
    }
}

fn cell(row: &postgres::Row, i: usize) -> Result<Cell, StoreError> {
    let ty = row.columns()[i].type_();
    let bad = |e: postgres::Error| StoreError::Database(format!("column {i}: {e}"));
    Ok(match *ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, Cell::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, |v| Cell::Int(i64::from(v))),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, |v| Cell::Int(i64::from(v))),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, |v| Cell::Int(i64::from(v))),
        Type::TEXT | Type::VARCHAR | Type::NAME => row
            .try_get::<_, Option<String>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, Cell::Text),
        ref other => {
            return Err(StoreError::Database(format!(
                "column {i}: unexpected type {other}"
            )))
        }
    })
}

impl Sql for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        self.client()?.execute(&statement, &params).map_err(pg)
    }

    fn query(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        let rows = self.client()?.query(&statement, &params).map_err(pg)?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| cell(r, i))
                    .collect::<Result<_, _>>()
                    .map(Row)
            })
            .collect()
    }

    fn now(&mut self, caller_ms: u64) -> Result<u64, StoreError> {
        if !self.database_time {
            return Ok(caller_ms);
        }
        let row = self
            .query_opt(
                "SELECT CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)",
                &[],
            )?
            .ok_or_else(|| StoreError::Database("the database has no clock".into()))?;
        Ok(row.int(0)?.max(0) as u64)
    }
}

/// Listens on [`NOTIFY_CHANNEL`] on a connection of its own and calls `wake` with each
/// queue another node announced (reconnecting after a second if the connection breaks).
fn listen(url: &str, own: &OwnBackends, wake: &(dyn Fn(&str) + Send + Sync)) {
    loop {
        let connected = Client::connect(url, NoTls).and_then(|mut c| {
            c.batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))?;
            Ok(c)
        });
        let mut client = match connected {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler store: cannot listen for other nodes' jobs; retrying");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        loop {
            let next = {
                let mut notifications = client.notifications();
                let mut iter = notifications.timeout_iter(Duration::from_secs(5));
                iter.next()
            };
            match next {
                Ok(Some(n)) => {
                    // This node's own announcements: it woke its claimers already.
                    let mine = own.lock().is_ok_and(|o| o.contains(&n.process_id()));
                    if !mine {
                        wake(n.payload());
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler store: listening connection lost");
                    break;
                }
                // Quiet for a while: check the connection is still there.
                Ok(None) => {
                    if client.is_closed() || client.simple_query("SELECT 1").is_err() {
                        break;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

impl Runner for PgRunner {
    fn on_remote_change(&self, wake: Arc<dyn Fn(&str) + Send + Sync>) {
        let (url, own) = (self.url.clone(), Arc::clone(&self.own));
        let spawned = std::thread::Builder::new()
            .name("girder-sched-pg-listen".into())
            .spawn(move || listen(&url, &own, &*wake));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "scheduler store: cannot start the listener thread");
        }
    }

    fn run<T: Send + 'static>(&self, mut op: Op<T>) -> StoreFuture<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut PgConn| {
            let _ = tx.send(conn.transaction(&mut op));
        });
        let sent = self.sender.send(job).is_ok();
        async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.unwrap_or(Err(StoreError::Closed))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders() {
        assert_eq!(
            super::placeholders("SELECT ?1, ?12 WHERE a = '?' AND ?"),
            "SELECT $1, $12 WHERE a = '?' AND ?"
        );
    }
}
