//! The embedded store: one SQLite database file (WAL, `synchronous = FULL`) owned by
//! one writer thread.
//!
//! Every operation is a closure sent to that thread. The thread takes everything
//! queued, runs it in one transaction — each operation inside its own savepoint, so one
//! failing operation rolls back alone — commits once (one fsync for the whole batch:
//! group commit), and only then answers each caller. An answer therefore always means
//! "committed and durable", and many concurrent enqueues, claims and completions cost
//! one fsync between them.

use super::{
    derive_state, kind_column, ClaimSpec, Counts, DueSchedules, Finish, Finished, ListFilter,
    NextEvents, Outcome, Reaped, Store, StoreError, StoreFuture,
};
use crate::model::{
    Attempt, BackoffSpec, Claimed, Enqueued, Job, JobId, JobKind, JobState, JobTemplate, Misfire,
    NewJob, NewSchedule, Refusal, Schedule,
};
use futures_util::FutureExt;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most operations one transaction takes.
const MAX_BATCH: usize = 512;

type Reply = Box<dyn FnOnce(Option<StoreError>) + Send>;
type Op = Box<dyn FnOnce(&Connection) -> Reply + Send>;

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

/// The embedded store. Dropping it stops the writer thread after the queued work.
pub struct SqliteStore {
    sender: mpsc::Sender<Op>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

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
        let (sender, receiver) = mpsc::channel::<Op>();
        std::thread::Builder::new()
            .name("girder-sched-sqlite".into())
            .spawn(move || writer(conn, receiver))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore { sender })
    }

    /// Runs `f` in the writer's next transaction; answers after the commit.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        let (tx, rx) = oneshot::channel();
        let op: Op = Box::new(move |conn| {
            let result = match conn.execute_batch("SAVEPOINT op") {
                Err(e) => Err(db(e)),
                Ok(()) => {
                    let r = f(conn);
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
        let sent = self.sender.send(op).is_ok();
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

fn writer(conn: Connection, receiver: mpsc::Receiver<Op>) {
    let mut batch: Vec<Op> = Vec::new();
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let e = db(e);
            // Nothing ran: every caller hears why.
            for op in batch.drain(..) {
                drop(op);
            }
            tracing::error!(error = %e, "scheduler store: cannot begin a transaction");
            continue;
        }
        let replies: Vec<Reply> = batch.drain(..).map(|op| op(&conn)).collect();
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

const JOB_COLUMNS: &str = "id, queue, kind, url, payload, state, priority, run_at, attempt, \
    max_attempts, backoff_base_ms, backoff_max_ms, timeout_ms, lease_until, dedup_key, \
    schedule_id, result, last_error, created_at, updated_at, finished_at";

fn job_from_row(row: &Row<'_>, now_ms: u64) -> rusqlite::Result<Job> {
    let kind: String = row.get(2)?;
    let url: Option<String> = row.get(3)?;
    let payload: String = row.get(4)?;
    let state: String = row.get(5)?;
    let run_at: i64 = row.get(7)?;
    let attempt: i64 = row.get(8)?;
    let result: Option<String> = row.get(16)?;
    Ok(Job {
        id: row.get(0)?,
        queue: row.get(1)?,
        kind: if kind == "http" {
            JobKind::Http {
                url: url.unwrap_or_default(),
            }
        } else {
            JobKind::External
        },
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        state: derive_state(&state, run_at as u64, attempt as u32, now_ms),
        priority: row.get(6)?,
        run_at_ms: run_at as u64,
        attempt: attempt as u32,
        max_attempts: row.get::<_, i64>(9)? as u32,
        backoff: BackoffSpec {
            base_ms: row.get::<_, i64>(10)? as u64,
            max_ms: row.get::<_, i64>(11)? as u64,
        },
        timeout_ms: row.get::<_, Option<i64>>(12)?.map(|v| v as u64),
        lease_until_ms: row.get::<_, Option<i64>>(13)?.map(|v| v as u64),
        dedup_key: row.get(14)?,
        schedule_id: row.get(15)?,
        result: result.and_then(|r| serde_json::from_str(&r).ok()),
        last_error: row.get(17)?,
        created_at_ms: row.get::<_, i64>(18)? as u64,
        updated_at_ms: row.get::<_, i64>(19)? as u64,
        finished_at_ms: row.get::<_, Option<i64>>(20)?.map(|v| v as u64),
        attempts: Vec::new(),
    })
}

fn load_job(conn: &Connection, now_ms: u64, id: JobId) -> Result<Option<Job>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))
        .map_err(db)?;
    let Some(mut job) = stmt
        .query_row([id], |r| job_from_row(r, now_ms))
        .optional()
        .map_err(db)?
    else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT attempt, worker, started_at, ended_at, outcome, error FROM attempts \
             WHERE job_id = ?1 ORDER BY attempt",
        )
        .map_err(db)?;
    job.attempts = stmt
        .query_map([id], |r| {
            Ok(Attempt {
                attempt: r.get::<_, i64>(0)? as u32,
                worker: r.get(1)?,
                started_at_ms: r.get::<_, i64>(2)? as u64,
                ended_at_ms: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                outcome: r.get(4)?,
                error: r.get(5)?,
            })
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    Ok(Some(job))
}

fn must_load(conn: &Connection, now_ms: u64, id: JobId) -> Result<Job, StoreError> {
    load_job(conn, now_ms, id)?
        .ok_or_else(|| StoreError::Database(format!("job {id} vanished inside its transaction")))
}

fn insert_job(conn: &Connection, now_ms: u64, job: &NewJob) -> Result<Enqueued, StoreError> {
    if let Some(dedup) = &job.dedup {
        let existing: Option<(i64, Option<i64>)> = conn
            .prepare_cached("SELECT id, dedup_until FROM jobs WHERE queue = ?1 AND dedup_key = ?2")
            .map_err(db)?
            .query_row(params![job.queue, dedup.key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(db)?;
        if let Some((id, until)) = existing {
            if until.is_some_and(|u| u as u64 > now_ms) {
                return Ok(Enqueued {
                    job: must_load(conn, now_ms, id)?,
                    duplicate: true,
                });
            }
            // The window passed: the old job gives the key up.
            conn.prepare_cached(
                "UPDATE jobs SET dedup_key = NULL, dedup_until = NULL WHERE id = ?1",
            )
            .map_err(db)?
            .execute([id])
            .map_err(db)?;
        }
    }
    let (kind, url) = kind_column(&job.kind);
    conn.prepare_cached(
        "INSERT INTO jobs (queue, kind, url, payload, state, priority, run_at, max_attempts, \
         backoff_base_ms, backoff_max_ms, timeout_ms, dedup_key, dedup_until, schedule_id, \
         created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
    )
    .map_err(db)?
    .execute(params![
        job.queue,
        kind,
        url,
        job.payload.to_string(),
        job.priority,
        job.run_at_ms as i64,
        job.max_attempts as i64,
        job.backoff.base_ms as i64,
        job.backoff.max_ms as i64,
        job.timeout_ms.map(|v| v as i64),
        job.dedup.as_ref().map(|d| d.key.as_str()),
        job.dedup.as_ref().map(|d| d.until_ms as i64),
        job.schedule_id,
        now_ms as i64,
    ])
    .map_err(db)?;
    // The new row is exactly what was inserted: no need to read it back.
    let id = conn.last_insert_rowid();
    Ok(Enqueued {
        job: Job {
            id,
            queue: job.queue.clone(),
            kind: job.kind.clone(),
            payload: job.payload.clone(),
            state: derive_state("pending", job.run_at_ms, 0, now_ms),
            priority: job.priority,
            run_at_ms: job.run_at_ms,
            attempt: 0,
            max_attempts: job.max_attempts,
            backoff: job.backoff,
            timeout_ms: job.timeout_ms,
            lease_until_ms: None,
            dedup_key: job.dedup.as_ref().map(|d| d.key.clone()),
            schedule_id: job.schedule_id,
            result: None,
            last_error: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            finished_at_ms: None,
            attempts: Vec::new(),
        },
        duplicate: false,
    })
}

/// Ends the running attempt `attempt` of job `id` as `outcome`, then moves the job to
/// `pending` (after backoff) or `dead`. Returns the new derived state.
fn end_attempt_with_retry(
    conn: &Connection,
    now_ms: u64,
    id: JobId,
    attempt: u32,
    outcome: &str,
    error: &str,
    retry: bool,
) -> Result<JobState, StoreError> {
    let (max_attempts, base, max): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT max_attempts, backoff_base_ms, backoff_max_ms FROM jobs WHERE id = ?1",
        )
        .map_err(db)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(db)?;
    close_attempt(conn, now_ms, id, attempt, outcome, Some(error))?;
    if retry && (attempt as i64) < max_attempts {
        let delay = BackoffSpec {
            base_ms: base as u64,
            max_ms: max as u64,
        }
        .delay_ms(id, attempt);
        let run_at = now_ms.saturating_add(delay);
        conn.prepare_cached(
            "UPDATE jobs SET state = 'pending', run_at = ?2, lease_until = NULL, \
             last_error = ?3, updated_at = ?4 WHERE id = ?1",
        )
        .map_err(db)?
        .execute(params![id, run_at as i64, error, now_ms as i64])
        .map_err(db)?;
        Ok(if run_at > now_ms {
            JobState::Failed
        } else {
            JobState::Available
        })
    } else {
        conn.prepare_cached(
            "UPDATE jobs SET state = 'dead', lease_until = NULL, last_error = ?2, \
             updated_at = ?3, finished_at = ?3 WHERE id = ?1",
        )
        .map_err(db)?
        .execute(params![id, error, now_ms as i64])
        .map_err(db)?;
        Ok(JobState::Dead)
    }
}

fn close_attempt(
    conn: &Connection,
    now_ms: u64,
    id: JobId,
    attempt: u32,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE attempts SET ended_at = ?3, outcome = ?4, error = ?5 \
         WHERE job_id = ?1 AND attempt = ?2",
    )
    .map_err(db)?
    .execute(params![id, attempt as i64, now_ms as i64, outcome, error])
    .map_err(db)?;
    Ok(())
}

/// Reaps expired leases (of one queue, or all).
fn reap_in(conn: &Connection, now_ms: u64, queue: Option<&str>) -> Result<Vec<Reaped>, StoreError> {
    let expired: Vec<(JobId, String, u32)> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, queue, attempt FROM jobs WHERE state = 'running' AND lease_until <= ?1 \
                 AND (?2 IS NULL OR queue = ?2)",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![now_ms as i64, queue], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u32))
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    let mut reaped = Vec::with_capacity(expired.len());
    for (id, queue, attempt) in expired {
        let state = end_attempt_with_retry(
            conn,
            now_ms,
            id,
            attempt,
            "lease_expired",
            "lease expired before the worker completed the attempt",
            true,
        )?;
        reaped.push(Reaped { id, queue, state });
    }
    Ok(reaped)
}

fn claim_in(conn: &Connection, now_ms: u64, spec: &ClaimSpec) -> Result<Vec<Claimed>, StoreError> {
    reap_in(conn, now_ms, spec.queue.as_deref())?;
    let mut max = spec.max_jobs as i64;
    if let (Some(limit), Some(queue)) = (spec.concurrency, spec.queue.as_deref()) {
        let running: i64 = conn
            .prepare_cached("SELECT count(*) FROM jobs WHERE state = 'running' AND queue = ?1")
            .map_err(db)?
            .query_row([queue], |r| r.get(0))
            .map_err(db)?;
        max = max.min(i64::from(limit) - running);
    }
    if max <= 0 {
        return Ok(Vec::new());
    }
    let kind = if spec.http { "http" } else { "external" };
    let picked: Vec<(JobId, i64, Option<i64>)> = {
        // Walk the claim index in claim order and stop at the limit: the cost is the
        // jobs taken (plus any not-yet-due ones of higher priority), not the backlog.
        // (Left to itself the planner picks the due-time index and sorts every due job.)
        let mut stmt = match spec.queue {
            Some(_) => conn.prepare_cached(
                "SELECT id, attempt, timeout_ms FROM jobs INDEXED BY jobs_claim \
                 WHERE state = 'pending' AND queue = ?1 AND kind = ?2 AND run_at <= ?3 \
                 ORDER BY priority DESC, run_at, id LIMIT ?4",
            ),
            None => conn.prepare_cached(
                "SELECT id, attempt, timeout_ms FROM jobs INDEXED BY jobs_claim_any \
                 WHERE state = 'pending' AND ?1 IS NULL AND kind = ?2 AND run_at <= ?3 \
                 ORDER BY priority DESC, run_at, id LIMIT ?4",
            ),
        }
        .map_err(db)?;
        let rows = stmt
            .query_map(params![spec.queue, kind, now_ms as i64, max], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    let mut claimed = Vec::with_capacity(picked.len());
    for (id, attempt, timeout) in picked {
        let attempt = attempt + 1;
        let mut lease = spec.lease_ms;
        if let Some(t) = timeout {
            lease = lease.min(t as u64);
        }
        let lease_until = now_ms.saturating_add(lease);
        let job = conn
            .prepare_cached(
                "UPDATE jobs SET state = 'running', attempt = ?2, lease_until = ?3, \
                 started_at = ?4, updated_at = ?4 WHERE id = ?1 \
                 RETURNING queue, payload, kind, url, max_attempts, run_at",
            )
            .map_err(db)?
            .query_row(
                params![id, attempt, lease_until as i64, now_ms as i64],
                claimed_row,
            )
            .map_err(db)?;
        conn.prepare_cached(
            "INSERT INTO attempts (job_id, attempt, worker, started_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db)?
        .execute(params![id, attempt, spec.worker, now_ms as i64])
        .map_err(db)?;
        claimed.push(Claimed {
            id,
            queue: job.0,
            payload: job.1,
            kind: job.2,
            attempt: attempt as u32,
            max_attempts: job.3,
            fencing_token: attempt as u64,
            lease_until_ms: lease_until,
            run_at_ms: job.4,
        });
    }
    Ok(claimed)
}

/// The fields a claim returns (its `RETURNING` row).
type ClaimedRow = (String, serde_json::Value, JobKind, u32, u64);

fn claimed_row(r: &Row<'_>) -> rusqlite::Result<ClaimedRow> {
    let payload: String = r.get(1)?;
    let kind: String = r.get(2)?;
    let url: Option<String> = r.get(3)?;
    Ok((
        r.get(0)?,
        serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        if kind == "http" {
            JobKind::Http {
                url: url.unwrap_or_default(),
            }
        } else {
            JobKind::External
        },
        r.get::<_, i64>(4)? as u32,
        r.get::<_, i64>(5)? as u64,
    ))
}

/// What the fence check reads of a running job.
struct Holder {
    attempt: u32,
    timeout_ms: Option<u64>,
    lease_until_ms: Option<u64>,
    started_at_ms: u64,
}

/// A stored job's fence-relevant columns.
type FenceRow = (String, i64, i64, Option<i64>, Option<i64>, Option<i64>);

/// The running attempt of `id` if `token` is its fencing token (one indexed read).
fn fence(
    conn: &Connection,
    now_ms: u64,
    id: JobId,
    token: u64,
) -> Result<Result<Holder, Refusal>, StoreError> {
    let row: Option<FenceRow> = conn
        .prepare_cached(
            "SELECT state, attempt, run_at, timeout_ms, lease_until, started_at FROM jobs \
             WHERE id = ?1",
        )
        .map_err(db)?
        .query_row([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()
        .map_err(db)?;
    let Some((state, attempt, run_at, timeout, lease, started)) = row else {
        return Ok(Err(Refusal::NotFound));
    };
    let attempt = attempt as u32;
    if state != "running" || u64::from(attempt) != token {
        return Ok(Err(Refusal::Fenced {
            state: derive_state(&state, run_at as u64, attempt, now_ms),
            attempt,
        }));
    }
    // A lease that ended is over even before the reaper gets to it: a late worker
    // cannot heartbeat it back to life or commit past its time limit.
    if let Some(until) = lease.map(|v| v as u64).filter(|until| *until <= now_ms) {
        return Ok(Err(Refusal::LeaseExpired {
            lease_until_ms: until,
        }));
    }
    Ok(Ok(Holder {
        attempt,
        timeout_ms: timeout.map(|v| v as u64),
        lease_until_ms: lease.map(|v| v as u64),
        started_at_ms: started.unwrap_or(0) as u64,
    }))
}

fn finish_one(
    conn: &Connection,
    now_ms: u64,
    item: Finish,
) -> Result<Result<Finished, Refusal>, StoreError> {
    let Finish {
        id,
        token,
        outcome,
        want_job,
    } = item;
    let holder = match fence(conn, now_ms, id, token)? {
        Ok(h) => h,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let state = match outcome {
        Outcome::Succeeded(result) => {
            close_attempt(conn, now_ms, id, holder.attempt, "succeeded", None)?;
            conn.prepare_cached(
                "UPDATE jobs SET state = 'succeeded', lease_until = NULL, result = ?2, \
                 updated_at = ?3, finished_at = ?3 WHERE id = ?1",
            )
            .map_err(db)?
            .execute(params![id, result.map(|r| r.to_string()), now_ms as i64])
            .map_err(db)?;
            JobState::Succeeded
        }
        Outcome::Failed { error, retry } => {
            end_attempt_with_retry(conn, now_ms, id, holder.attempt, "failed", &error, retry)?
        }
    };
    let queue: String = conn
        .prepare_cached("SELECT queue FROM jobs WHERE id = ?1")
        .map_err(db)?
        .query_row([id], |r| r.get(0))
        .map_err(db)?;
    let job = if want_job {
        Some(must_load(conn, now_ms, id)?)
    } else {
        None
    };
    Ok(Ok(Finished {
        id,
        queue,
        state,
        job,
    }))
}

fn schedule_from_row(row: &Row<'_>) -> rusqlite::Result<Schedule> {
    let template: String = row.get(4)?;
    let misfire: String = row.get(5)?;
    let bad = |e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
    };
    Ok(Schedule {
        id: row.get(0)?,
        name: row.get(1)?,
        cron: row.get(2)?,
        time_zone: row.get(3)?,
        template: serde_json::from_str::<JobTemplate>(&template).map_err(bad)?,
        misfire: serde_json::from_str::<Misfire>(&misfire).map_err(bad)?,
        paused: row.get::<_, i64>(6)? != 0,
        next_run_at_ms: row.get::<_, i64>(7)? as u64,
        last_tick_ms: row.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        created_at_ms: row.get::<_, i64>(9)? as u64,
    })
}

const SCHEDULE_COLUMNS: &str =
    "id, name, cron, time_zone, template, misfire, paused, next_run_at, last_tick, created_at";

fn load_schedule(conn: &Connection, id: i64) -> Result<Option<Schedule>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ?1"
    ))
    .map_err(db)?
    .query_row([id], schedule_from_row)
    .optional()
    .map_err(db)
}

impl Store for SqliteStore {
    fn enqueue(&self, now_ms: u64, jobs: Vec<NewJob>) -> StoreFuture<Vec<Enqueued>> {
        self.call(move |conn| {
            jobs.iter()
                .map(|job| insert_job(conn, now_ms, job))
                .collect()
        })
    }

    fn get(&self, now_ms: u64, id: JobId) -> StoreFuture<Option<Job>> {
        self.call(move |conn| load_job(conn, now_ms, id))
    }

    fn list(&self, now_ms: u64, filter: ListFilter) -> StoreFuture<Vec<Job>> {
        self.call(move |conn| {
            // The derived states are conditions on the stored state and due time.
            let state_sql = match filter.state {
                None => "1",
                Some(JobState::Scheduled) => "state = 'pending' AND run_at > ?3 AND attempt = 0",
                Some(JobState::Failed) => "state = 'pending' AND run_at > ?3 AND attempt > 0",
                Some(JobState::Available) => "state = 'pending' AND run_at <= ?3",
                Some(JobState::Running) => "state = 'running'",
                Some(JobState::Succeeded) => "state = 'succeeded'",
                Some(JobState::Dead) => "state = 'dead'",
                Some(JobState::Cancelled) => "state = 'cancelled'",
            };
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR queue = ?1) AND id > ?2 \
                 AND ({state_sql}) AND ?3 = ?3 ORDER BY id LIMIT ?4"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
            let rows = stmt
                .query_map(
                    params![
                        filter.queue,
                        filter.after_id.unwrap_or(0),
                        now_ms as i64,
                        filter.limit as i64
                    ],
                    |r| job_from_row(r, now_ms),
                )
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn cancel(&self, now_ms: u64, id: JobId) -> StoreFuture<Result<Job, Refusal>> {
        self.call(move |conn| {
            let Some(job) = load_job(conn, now_ms, id)? else {
                return Ok(Err(Refusal::NotFound));
            };
            if job.state.is_final() {
                return Ok(Err(Refusal::WrongState(job.state)));
            }
            if job.state == JobState::Running {
                close_attempt(
                    conn,
                    now_ms,
                    id,
                    job.attempt,
                    "cancelled",
                    Some("job cancelled"),
                )?;
            }
            conn.prepare_cached(
                "UPDATE jobs SET state = 'cancelled', lease_until = NULL, updated_at = ?2, \
                 finished_at = ?2 WHERE id = ?1",
            )
            .map_err(db)?
            .execute(params![id, now_ms as i64])
            .map_err(db)?;
            Ok(Ok(must_load(conn, now_ms, id)?))
        })
    }

    fn retry(&self, now_ms: u64, id: JobId) -> StoreFuture<Result<Job, Refusal>> {
        self.call(move |conn| {
            let Some(job) = load_job(conn, now_ms, id)? else {
                return Ok(Err(Refusal::NotFound));
            };
            if !matches!(job.state, JobState::Dead | JobState::Cancelled) {
                return Ok(Err(Refusal::WrongState(job.state)));
            }
            // A fresh budget of attempts on top of those made: the attempt number (the
            // fencing token) keeps growing.
            conn.prepare_cached(
                "UPDATE jobs SET state = 'pending', run_at = ?2, \
                 max_attempts = attempt + max_attempts, updated_at = ?2, finished_at = NULL \
                 WHERE id = ?1",
            )
            .map_err(db)?
            .execute(params![id, now_ms as i64])
            .map_err(db)?;
            Ok(Ok(must_load(conn, now_ms, id)?))
        })
    }

    fn claim(&self, now_ms: u64, spec: ClaimSpec) -> StoreFuture<Vec<Claimed>> {
        self.call(move |conn| claim_in(conn, now_ms, &spec))
    }

    fn heartbeat(
        &self,
        now_ms: u64,
        id: JobId,
        token: u64,
        lease_ms: u64,
    ) -> StoreFuture<Result<u64, Refusal>> {
        self.call(move |conn| {
            let holder = match fence(conn, now_ms, id, token)? {
                Ok(h) => h,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let mut until = now_ms.saturating_add(lease_ms);
            if let Some(t) = holder.timeout_ms {
                until = until.min(holder.started_at_ms.saturating_add(t));
            }
            // Never shortens a lease.
            let until = until.max(holder.lease_until_ms.unwrap_or(0));
            conn.prepare_cached("UPDATE jobs SET lease_until = ?2, updated_at = ?3 WHERE id = ?1")
                .map_err(db)?
                .execute(params![id, until as i64, now_ms as i64])
                .map_err(db)?;
            Ok(Ok(until))
        })
    }

    fn finish(
        &self,
        now_ms: u64,
        items: Vec<Finish>,
    ) -> StoreFuture<Vec<Result<Finished, Refusal>>> {
        self.call(move |conn| {
            items
                .into_iter()
                .map(|item| finish_one(conn, now_ms, item))
                .collect()
        })
    }

    fn reap(&self, now_ms: u64) -> StoreFuture<Vec<Reaped>> {
        self.call(move |conn| reap_in(conn, now_ms, None))
    }

    fn next_events(&self, queue: Option<String>, http: bool) -> StoreFuture<NextEvents> {
        self.call(move |conn| {
            let kind = if http { "http" } else { "external" };
            let due: Option<i64> = conn
                .prepare_cached(
                    "SELECT min(run_at) FROM jobs WHERE state = 'pending' AND kind = ?2 \
                     AND (?1 IS NULL OR queue = ?1)",
                )
                .map_err(db)?
                .query_row(params![queue, kind], |r| r.get(0))
                .map_err(db)?;
            let lease: Option<i64> = conn
                .prepare_cached(
                    "SELECT min(lease_until) FROM jobs WHERE state = 'running' \
                     AND (?1 IS NULL OR queue = ?1)",
                )
                .map_err(db)?
                .query_row(params![queue], |r| r.get(0))
                .map_err(db)?;
            Ok((due.map(|v| v as u64), lease.map(|v| v as u64)))
        })
    }

    fn prune(&self, before_ms: u64, limit: u32) -> StoreFuture<u64> {
        self.call(move |conn| {
            let ids: Vec<i64> = {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1 \
                         ORDER BY finished_at LIMIT ?2",
                    )
                    .map_err(db)?;
                let rows = stmt
                    .query_map(params![before_ms as i64, limit as i64], |r| r.get(0))
                    .map_err(db)?;
                rows.collect::<Result<_, _>>().map_err(db)?
            };
            for id in &ids {
                conn.prepare_cached("DELETE FROM attempts WHERE job_id = ?1")
                    .map_err(db)?
                    .execute([id])
                    .map_err(db)?;
                conn.prepare_cached("DELETE FROM jobs WHERE id = ?1")
                    .map_err(db)?
                    .execute([id])
                    .map_err(db)?;
            }
            Ok(ids.len() as u64)
        })
    }

    fn counts(&self, now_ms: u64) -> StoreFuture<Counts> {
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT queue, state, run_at <= ?1, attempt > 0, count(*) FROM jobs \
                     GROUP BY 1, 2, 3, 4",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([now_ms as i64], |r| {
                    let state: String = r.get(1)?;
                    let due: bool = r.get(2)?;
                    let retried: bool = r.get(3)?;
                    let derived = derive_state(
                        &state,
                        if due { 0 } else { u64::MAX },
                        u32::from(retried),
                        now_ms,
                    );
                    Ok((r.get::<_, String>(0)?, derived, r.get::<_, i64>(4)? as u64))
                })
                .map_err(db)?;
            let mut merged: std::collections::BTreeMap<(String, &'static str), (JobState, u64)> =
                Default::default();
            for row in rows {
                let (queue, state, n) = row.map_err(db)?;
                merged
                    .entry((queue, state.as_str()))
                    .or_insert((state, 0))
                    .1 += n;
            }
            Ok(merged
                .into_iter()
                .map(|((q, _), (s, n))| (q, s, n))
                .collect())
        })
    }

    fn create_schedule(
        &self,
        now_ms: u64,
        schedule: NewSchedule,
    ) -> StoreFuture<Result<Schedule, Schedule>> {
        self.call(move |conn| {
            let existing: Option<i64> = conn
                .prepare_cached("SELECT id FROM schedules WHERE name = ?1")
                .map_err(db)?
                .query_row([&schedule.name], |r| r.get(0))
                .optional()
                .map_err(db)?;
            if let Some(id) = existing {
                return Ok(Err(load_schedule(conn, id)?.ok_or(StoreError::Closed)?));
            }
            conn.prepare_cached(
                "INSERT INTO schedules (name, cron, time_zone, template, misfire, next_run_at, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(db)?
            .execute(params![
                schedule.name,
                schedule.cron,
                schedule.time_zone,
                serde_json::to_string(&schedule.template).unwrap_or_default(),
                serde_json::to_string(&schedule.misfire).unwrap_or_default(),
                schedule.next_run_at_ms as i64,
                now_ms as i64
            ])
            .map_err(db)?;
            let id = conn.last_insert_rowid();
            Ok(Ok(load_schedule(conn, id)?.ok_or(StoreError::Closed)?))
        })
    }

    fn get_schedule(&self, id: i64) -> StoreFuture<Option<Schedule>> {
        self.call(move |conn| load_schedule(conn, id))
    }

    fn list_schedules(&self, after_id: Option<i64>, limit: u32) -> StoreFuture<Vec<Schedule>> {
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id > ?1 ORDER BY id LIMIT ?2"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map(
                    params![after_id.unwrap_or(0), limit as i64],
                    schedule_from_row,
                )
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn delete_schedule(&self, id: i64) -> StoreFuture<bool> {
        self.call(move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM schedules WHERE id = ?1")
                .map_err(db)?
                .execute([id])
                .map_err(db)?;
            Ok(n > 0)
        })
    }

    fn set_paused(
        &self,
        id: i64,
        paused: bool,
        next_run_at_ms: u64,
    ) -> StoreFuture<Option<Schedule>> {
        self.call(move |conn| {
            let n = if paused {
                conn.prepare_cached("UPDATE schedules SET paused = 1 WHERE id = ?1")
                    .map_err(db)?
                    .execute([id])
                    .map_err(db)?
            } else {
                // Resuming an active schedule keeps its tick.
                conn.prepare_cached(
                    "UPDATE schedules SET paused = 0, \
                     next_run_at = CASE WHEN paused = 1 THEN ?2 ELSE next_run_at END WHERE id = ?1",
                )
                .map_err(db)?
                .execute(params![id, next_run_at_ms as i64])
                .map_err(db)?
            };
            if n == 0 {
                return Ok(None);
            }
            load_schedule(conn, id)
        })
    }

    fn due_schedules(&self, now_ms: u64) -> StoreFuture<DueSchedules> {
        self.call(move |conn| {
            let due: Vec<Schedule> = {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE paused = 0 \
                         AND next_run_at <= ?1 ORDER BY next_run_at LIMIT 100"
                    ))
                    .map_err(db)?;
                let rows = stmt
                    .query_map([now_ms as i64], schedule_from_row)
                    .map_err(db)?;
                rows.collect::<Result<_, _>>().map_err(db)?
            };
            let next: Option<i64> = conn
                .prepare_cached("SELECT min(next_run_at) FROM schedules WHERE paused = 0")
                .map_err(db)?
                .query_row([], |r| r.get(0))
                .map_err(db)?;
            Ok((due, next.map(|v| v as u64)))
        })
    }

    fn fire_schedule(
        &self,
        now_ms: u64,
        id: i64,
        expected_ms: u64,
        next_ms: u64,
        last_tick_ms: Option<u64>,
        jobs: Vec<NewJob>,
    ) -> StoreFuture<bool> {
        self.call(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE schedules SET next_run_at = ?3, last_tick = coalesce(?4, last_tick) \
                     WHERE id = ?1 AND next_run_at = ?2 AND paused = 0",
                )
                .map_err(db)?
                .execute(params![
                    id,
                    expected_ms as i64,
                    next_ms as i64,
                    last_tick_ms.map(|v| v as i64)
                ])
                .map_err(db)?;
            if n == 0 {
                return Ok(false);
            }
            for job in &jobs {
                insert_job(conn, now_ms, job)?;
            }
            Ok(true)
        })
    }
}
