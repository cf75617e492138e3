//! The embedded store: one SQLite database file (WAL, `synchronous = FULL`) owned by
//! one writer thread.
//!
//! Every operation is a closure sent to that thread. The thread takes everything
//! queued, runs it in one transaction — each operation inside its own savepoint, so one
//! failing operation rolls back alone — commits once (one fsync for the whole batch:
//! group commit), and only then answers each caller. An answer therefore always means
//! "committed and durable", and many concurrent enqueues, claims and completions cost
//! one fsync between them.

use super::sql::{Arg, Cell, Dialect, Op, Row, Runner, Sql, SqlStore};
use super::{StoreError, StoreFuture};
use futures_util::FutureExt;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most operations one transaction takes.
const MAX_BATCH: usize = 512;

type Reply = Box<dyn FnOnce(Option<StoreError>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;

/// The schema, one entry per version; `schema_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: jobs, attempts, schedules.
    "CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        kind TEXT NOT NULL,
        url TEXT,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        backoff_base_ms INTEGER NOT NULL,
        backoff_max_ms INTEGER NOT NULL,
        timeout_ms INTEGER,
        lease_until INTEGER,
        started_at INTEGER,
        dedup_key TEXT,
        dedup_until INTEGER,
        schedule_id INTEGER,
        result TEXT,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        finished_at INTEGER
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
        job_id INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        worker TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        outcome TEXT,
        error TEXT,
        PRIMARY KEY (job_id, attempt)
    ) WITHOUT ROWID;
    CREATE TABLE schedules (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        cron TEXT NOT NULL,
        time_zone TEXT NOT NULL,
        template TEXT NOT NULL,
        misfire TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        next_run_at INTEGER NOT NULL,
        last_tick INTEGER,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused = 0;",
];

/// The embedded store: [`SqlStore`] over SQLite's writer thread.
pub type SqliteStore = SqlStore<SqliteRunner>;

/// Runs operations on the writer thread, group-committing each batch; scans (lists,
/// counts) on a reader thread with its own connection, which WAL lets read the last
/// committed state while the writer writes.
pub struct SqliteRunner {
    sender: mpsc::Sender<Job>,
    reader: mpsc::Sender<Read>,
}

type Read = Box<dyn FnOnce(&Connection) + Send>;

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating) the database at `path`, runs pending migrations, and starts the
    /// writer thread. Fails if the file is not a database or is from a newer Girder.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = OFF;
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -65536;
             PRAGMA mmap_size = 268435456;
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(db)?;
        migrate(&conn)?;
        let read_conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        read_conn
            .execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -16384;")
            .map_err(db)?;
        let (sender, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("girder-sched-sqlite".into())
            .spawn(move || writer(conn, receiver))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        let (reader, reads) = mpsc::channel::<Read>();
        std::thread::Builder::new()
            .name("girder-sched-sqlite-read".into())
            .spawn(move || {
                while let Ok(read) = reads.recv() {
                    read(&read_conn);
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start the reader thread: {e}")))?;
        Ok(SqlStore {
            runner: SqliteRunner { sender, reader },
        })
    }
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Arg::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Arg::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Arg::Ints(_) | Arg::Texts(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "arrays are bound only on PostgreSQL".into(),
                ))
            }
        })
    }
}

/// The writer's connection as an operation sees it.
struct SqliteConn<'a>(&'a Connection);

impl Sql for SqliteConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn exec(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(db)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(args.iter()))
            .map_err(db)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(db)?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(db)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db)? {
            let mut cells = Vec::with_capacity(columns);
            for i in 0..columns {
                cells.push(match row.get_ref(i).map_err(db)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Real(f) => Cell::Int(f as i64),
                    ValueRef::Blob(b) => Cell::Text(String::from_utf8_lossy(b).into_owned()),
                });
            }
            out.push(Row(cells));
        }
        Ok(out)
    }

    fn now(&mut self, caller_ms: u64) -> Result<u64, StoreError> {
        Ok(caller_ms)
    }
}

impl Runner for SqliteRunner {
    /// Runs `op` in the writer's next transaction (in its own savepoint); answers after
    /// the commit.
    fn run<T: Send + 'static>(&self, mut op: Op<T>) -> StoreFuture<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn.execute_batch("SAVEPOINT op") {
                Err(e) => Err(db(e)),
                Ok(()) => {
                    let r = op(&mut SqliteConn(conn));
                    let end = if r.is_ok() {
                        conn.execute_batch("RELEASE op")
                    } else {
                        conn.execute_batch("ROLLBACK TO op; RELEASE op")
                    };
                    match end {
                        Ok(()) => r,
                        Err(e) => Err(db(e)),
                    }
                }
            };
            Box::new(move |commit_failed: Option<StoreError>| {
                let _ = tx.send(match commit_failed {
                    Some(e) => Err(e),
                    None => result,
                });
            })
        });
        let sent = self.sender.send(job).is_ok();
        Self::reply_later(sent, rx)
    }

    fn run_read<T: Send + 'static>(&self, mut op: Op<T>) -> StoreFuture<T> {
        let (tx, rx) = oneshot::channel();
        let read: Read = Box::new(move |conn| {
            let _ = tx.send(op(&mut SqliteConn(conn)));
        });
        let sent = self.reader.send(read).is_ok();
        Self::reply_later(sent, rx)
    }
}

impl SqliteRunner {
    fn reply_later<T: Send + 'static>(
        sent: bool,
        rx: oneshot::Receiver<Result<T, StoreError>>,
    ) -> StoreFuture<T> {
        async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.unwrap_or(Err(StoreError::Closed))
        }
        .boxed()
    }
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(db)?;
    let version: Option<i64> = conn
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .map_err(db)?;
    let version = version.unwrap_or(0) as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Database(format!(
            "the scheduler database is at schema version {version}, newer than this \
             Girder knows ({}); use a newer Girder",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.unchecked_transaction().map_err(db)?;
        tx.execute_batch(sql).map_err(db)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i as i64 + 1],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        tracing::info!(version = i + 1, "scheduler store migrated");
    }
    Ok(())
}

fn writer(conn: Connection, receiver: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::new();
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let e = db(e);
            // Nothing ran: dropping the jobs tells every caller the store failed.
            batch.clear();
            tracing::error!(error = %e, "scheduler store: cannot begin a transaction");
            continue;
        }
        let replies: Vec<Reply> = batch.drain(..).map(|job| job(&conn)).collect();
        let failed = conn.execute_batch("COMMIT").err().map(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "scheduler store: commit failed");
            db(e)
        });
        for reply in replies {
            reply(failed.clone());
        }
    }
}
