//! The store's rules, written once over a minimal SQL connection ([`Sql`]) that SQLite
//! (`sqlite.rs`) and PostgreSQL (`pg.rs`) each implement, and the one
//! [`Store`] implementation, [`SqlStore`], over a [`Runner`] that runs operations as
//! transactions.
//!
//! Statements use `?1`-style placeholders (PostgreSQL's adapter rewrites them to `$1`);
//! every integer column is a 64-bit integer and every other one text, so one set of
//! statements serves both. Where the databases must differ, the statement is chosen by
//! [`Dialect`]: SQLite names the claim index (its planner would sort the whole due
//! backlog); PostgreSQL locks what it reads (`FOR UPDATE`, and `SKIP LOCKED` for claims
//! and reaps), because several nodes write at once — SQLite has one writer.

use super::{
    derive_state, kind_column, ClaimSpec, Counts, DueSchedules, Finish, Finished, ListFilter,
    NextEvents, Outcome, Reaped, Store, StoreError, StoreFuture,
};
use crate::model::{
    Attempt, BackoffSpec, Claimed, Enqueued, Job, JobId, JobKind, JobState, JobTemplate, Misfire,
    NewJob, NewSchedule, Refusal, Schedule,
};

/// A statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// NULL.
    Null,
    /// A 64-bit integer.
    Int(i64),
    /// Text.
    Text(String),
    /// An array of nullable integers (PostgreSQL only: set-wise statements).
    Ints(Vec<Option<i64>>),
    /// An array of nullable texts (PostgreSQL only).
    Texts(Vec<Option<String>>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<u64> for Arg {
    fn from(v: u64) -> Self {
        Arg::Int(v.min(i64::MAX as u64) as i64)
    }
}

impl From<u32> for Arg {
    fn from(v: u32) -> Self {
        Arg::Int(i64::from(v))
    }
}

impl From<i32> for Arg {
    fn from(v: i32) -> Self {
        Arg::Int(i64::from(v))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

/// Builds a parameter list.
macro_rules! args {
    ($($e:expr),* $(,)?) => { &[$(Arg::from($e)),*][..] };
}

/// A result cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

/// A result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Cell>);

fn column_error(i: usize, want: &str, got: &Cell) -> StoreError {
    StoreError::Database(format!("column {i}: expected {want}, found {got:?}"))
}

impl Row {
    fn cell(&self, i: usize) -> &Cell {
        self.0.get(i).unwrap_or(&Cell::Null)
    }

    /// A non-null integer.
    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.cell(i) {
            Cell::Int(v) => Ok(*v),
            other => Err(column_error(i, "an integer", other)),
        }
    }

    /// A nullable integer.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(i) {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            other => Err(column_error(i, "an integer or null", other)),
        }
    }

    /// Non-null text.
    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.cell(i) {
            Cell::Text(v) => Ok(v.clone()),
            other => Err(column_error(i, "text", other)),
        }
    }

    /// Nullable text.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.cell(i) {
            Cell::Null => Ok(None),
            Cell::Text(v) => Ok(Some(v.clone())),
            other => Err(column_error(i, "text or null", other)),
        }
    }
}

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: one writer, no row locks needed.
    Sqlite,
    /// PostgreSQL: several nodes; rows read for update are locked.
    Postgres,
}

/// The connection an operation runs on, inside its transaction.
pub trait Sql {
    /// Which database.
    fn dialect(&self) -> Dialect;
    /// Runs a statement; returns the rows it changed.
    fn exec(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError>;
    /// Runs a query.
    fn query(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Row>, StoreError>;
    /// The time the operation decides by: the caller's, or the database's clock.
    fn now(&mut self, caller_ms: u64) -> Result<u64, StoreError>;

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, args: &[Arg]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }
}

/// An operation: re-runnable, because PostgreSQL may ask for a retry (deadlock,
/// serialization failure) after rolling it back.
pub type Op<T> = Box<dyn FnMut(&mut dyn Sql) -> Result<T, StoreError> + Send>;

/// Runs operations, each in a transaction, answering after the commit.
pub trait Runner: Send + Sync + 'static {
    /// Queues `op`; the future resolves once its transaction committed (or failed).
    fn run<T: Send + 'static>(&self, op: Op<T>) -> StoreFuture<T>;

    /// Runs a read-only `op` where it cannot hold up writes, if the store has such a
    /// place (SQLite: a reader connection beside the one writer); by default as `run`.
    fn run_read<T: Send + 'static>(&self, op: Op<T>) -> StoreFuture<T> {
        self.run(op)
    }

    /// See [`Store::on_remote_change`].
    fn on_remote_change(&self, wake: std::sync::Arc<dyn Fn(&str) + Send + Sync>) {
        let _ = wake;
    }
}

/// The channel on which PostgreSQL nodes announce claimable work (the payload is the
/// queue).
pub const NOTIFY_CHANNEL: &str = "girder_jobs";

/// Tells the other nodes (PostgreSQL, delivered at commit) that jobs of these queues
/// became claimable; nothing on SQLite, which has one node.
fn announce<'a>(
    db: &mut dyn Sql,
    queues: impl IntoIterator<Item = &'a str>,
) -> Result<(), StoreError> {
    if db.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let mut seen: Vec<&str> = Vec::new();
    for q in queues {
        if !seen.contains(&q) {
            seen.push(q);
            db.query(
                "SELECT 1 FROM (SELECT pg_notify('girder_jobs', ?1)) AS sent",
                args![q],
            )?;
        }
    }
    Ok(())
}

/// The store, over a runner.
pub struct SqlStore<R> {
    pub(crate) runner: R,
}

impl<R> std::fmt::Debug for SqlStore<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").finish_non_exhaustive()
    }
}

const JOB_COLUMNS: &str = "id, queue, kind, url, payload, state, priority, run_at, attempt, \
    max_attempts, backoff_base_ms, backoff_max_ms, timeout_ms, lease_until, dedup_key, \
    schedule_id, result, last_error, created_at, updated_at, finished_at";

fn kind_of(kind: &str, url: Option<String>) -> JobKind {
    if kind == "http" {
        JobKind::Http {
            url: url.unwrap_or_default(),
        }
    } else {
        JobKind::External
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn job_from_row(row: &Row, now_ms: u64) -> Result<Job, StoreError> {
    let state = row.text(5)?;
    let run_at = row.int(7)? as u64;
    let attempt = row.int(8)? as u32;
    Ok(Job {
        id: row.int(0)?,
        queue: row.text(1)?,
        kind: kind_of(&row.text(2)?, row.opt_text(3)?),
        payload: json(&row.text(4)?),
        state: derive_state(&state, run_at, attempt, now_ms),
        priority: row.int(6)? as i32,
        run_at_ms: run_at,
        attempt,
        max_attempts: row.int(9)? as u32,
        backoff: BackoffSpec {
            base_ms: row.int(10)? as u64,
            max_ms: row.int(11)? as u64,
        },
        timeout_ms: row.opt_int(12)?.map(|v| v as u64),
        lease_until_ms: row.opt_int(13)?.map(|v| v as u64),
        dedup_key: row.opt_text(14)?,
        schedule_id: row.opt_int(15)?,
        result: row.opt_text(16)?.map(|r| json(&r)),
        last_error: row.opt_text(17)?,
        created_at_ms: row.int(18)? as u64,
        updated_at_ms: row.int(19)? as u64,
        finished_at_ms: row.opt_int(20)?.map(|v| v as u64),
        attempts: Vec::new(),
    })
}

/// Locks job `id`'s row for the rest of the transaction (PostgreSQL; SQLite has one
/// writer).
fn lock_job(db: &mut dyn Sql, id: JobId) -> Result<(), StoreError> {
    if db.dialect() == Dialect::Postgres {
        db.query("SELECT id FROM jobs WHERE id = ?1 FOR UPDATE", args![id])?;
    }
    Ok(())
}

fn load_job(db: &mut dyn Sql, now_ms: u64, id: JobId) -> Result<Option<Job>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
    let Some(row) = db.query_opt(&sql, args![id])? else {
        return Ok(None);
    };
    let mut job = job_from_row(&row, now_ms)?;
    job.attempts = db
        .query(
            "SELECT attempt, worker, started_at, ended_at, outcome, error FROM attempts \
             WHERE job_id = ?1 ORDER BY attempt",
            args![id],
        )?
        .iter()
        .map(|r| {
            Ok(Attempt {
                attempt: r.int(0)? as u32,
                worker: r.text(1)?,
                started_at_ms: r.int(2)? as u64,
                ended_at_ms: r.opt_int(3)?.map(|v| v as u64),
                outcome: r.opt_text(4)?,
                error: r.opt_text(5)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(job))
}

fn must_load(db: &mut dyn Sql, now_ms: u64, id: JobId) -> Result<Job, StoreError> {
    load_job(db, now_ms, id)?
        .ok_or_else(|| StoreError::Database(format!("job {id} vanished inside its transaction")))
}

fn insert_job(db: &mut dyn Sql, now_ms: u64, job: &NewJob) -> Result<Enqueued, StoreError> {
    // Three rounds at most: a concurrent insert of the same key (another node) makes
    // ours do nothing, and the next round finds theirs.
    for _ in 0..3 {
        if let Some(dedup) = &job.dedup {
            let existing = db.query_opt(
                "SELECT id, dedup_until FROM jobs WHERE queue = ?1 AND dedup_key = ?2",
                args![&job.queue, &dedup.key],
            )?;
            if let Some(row) = existing {
                let id = row.int(0)?;
                if row.opt_int(1)?.is_some_and(|u| u as u64 > now_ms) {
                    return Ok(Enqueued {
                        job: must_load(db, now_ms, id)?,
                        duplicate: true,
                    });
                }
                // The window passed: the old job gives the key up.
                db.exec(
                    "UPDATE jobs SET dedup_key = NULL, dedup_until = NULL WHERE id = ?1",
                    args![id],
                )?;
            }
        }
        let (kind, url) = kind_column(&job.kind);
        let inserted = db.query_opt(
            "INSERT INTO jobs (queue, kind, url, payload, state, priority, run_at, max_attempts, \
             backoff_base_ms, backoff_max_ms, timeout_ms, dedup_key, dedup_until, schedule_id, \
             created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14) \
             ON CONFLICT (queue, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING \
             RETURNING id",
            args![
                &job.queue,
                kind,
                url,
                job.payload.to_string(),
                job.priority,
                job.run_at_ms,
                job.max_attempts,
                job.backoff.base_ms,
                job.backoff.max_ms,
                job.timeout_ms,
                job.dedup.as_ref().map(|d| d.key.as_str()),
                job.dedup.as_ref().map(|d| d.until_ms),
                job.schedule_id,
                now_ms,
            ],
        )?;
        let Some(row) = inserted else { continue };
        // The new row is exactly what was inserted: no need to read it back.
        return Ok(Enqueued {
            job: Job {
                id: row.int(0)?,
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
        });
    }
    Err(StoreError::Retry(
        "the idempotency key kept changing hands".into(),
    ))
}

/// Inserts jobs without dedup keys with one statement (PostgreSQL: one round trip for
/// the batch instead of one per job).
fn insert_jobs_at_once(
    db: &mut dyn Sql,
    now_ms: u64,
    jobs: &[NewJob],
) -> Result<Vec<Enqueued>, StoreError> {
    let texts = |f: &dyn Fn(&NewJob) -> Option<String>| Arg::Texts(jobs.iter().map(f).collect());
    let ints = |f: &dyn Fn(&NewJob) -> Option<i64>| Arg::Ints(jobs.iter().map(f).collect());
    let rows = db.query(
        "INSERT INTO jobs (queue, kind, url, payload, state, priority, run_at, max_attempts, \
         backoff_base_ms, backoff_max_ms, timeout_ms, schedule_id, created_at, updated_at) \
         SELECT q, k, u, p, 'pending', pr, ra, ma, bb, bm, t, s, ?12, ?12 \
         FROM unnest(CAST(?1 AS TEXT[]), CAST(?2 AS TEXT[]), CAST(?3 AS TEXT[]), \
                     CAST(?4 AS TEXT[]), CAST(?5 AS BIGINT[]), CAST(?6 AS BIGINT[]), \
                     CAST(?7 AS BIGINT[]), CAST(?8 AS BIGINT[]), CAST(?9 AS BIGINT[]), \
                     CAST(?10 AS BIGINT[]), CAST(?11 AS BIGINT[])) \
              AS t(q, k, u, p, pr, ra, ma, bb, bm, t, s) \
         RETURNING id",
        &[
            texts(&|j| Some(j.queue.clone())),
            texts(&|j| Some(kind_column(&j.kind).0.to_owned())),
            texts(&|j| kind_column(&j.kind).1.map(str::to_owned)),
            texts(&|j| Some(j.payload.to_string())),
            ints(&|j| Some(i64::from(j.priority))),
            ints(&|j| Some(j.run_at_ms as i64)),
            ints(&|j| Some(i64::from(j.max_attempts))),
            ints(&|j| Some(j.backoff.base_ms as i64)),
            ints(&|j| Some(j.backoff.max_ms as i64)),
            ints(&|j| j.timeout_ms.map(|v| v as i64)),
            ints(&|j| j.schedule_id),
            Arg::from(now_ms),
        ],
    )?;
    // Ids come from one sequence in the order the rows were inserted, which is the
    // order of the arrays.
    let mut ids = rows
        .iter()
        .map(|r| r.int(0))
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort_unstable();
    if ids.len() != jobs.len() {
        return Err(StoreError::Database(format!(
            "inserted {} of {} jobs",
            ids.len(),
            jobs.len()
        )));
    }
    Ok(jobs
        .iter()
        .zip(ids)
        .map(|(job, id)| Enqueued {
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
                dedup_key: None,
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
        .collect())
}

/// Ends the running attempt `attempt` of job `id` as `outcome`, then moves the job to
/// `pending` (after backoff) or `dead`. Returns the new derived state.
fn end_attempt_with_retry(
    db: &mut dyn Sql,
    now_ms: u64,
    id: JobId,
    attempt: u32,
    outcome: &str,
    error: &str,
    retry: bool,
) -> Result<JobState, StoreError> {
    let row = db
        .query_opt(
            "SELECT max_attempts, backoff_base_ms, backoff_max_ms FROM jobs WHERE id = ?1",
            args![id],
        )?
        .ok_or_else(|| StoreError::Database(format!("job {id} vanished")))?;
    let (max_attempts, base, max) = (row.int(0)?, row.int(1)?, row.int(2)?);
    close_attempt(db, now_ms, id, attempt, outcome, Some(error))?;
    if retry && i64::from(attempt) < max_attempts {
        let delay = BackoffSpec {
            base_ms: base as u64,
            max_ms: max as u64,
        }
        .delay_ms(id, attempt);
        let run_at = now_ms.saturating_add(delay);
        db.exec(
            "UPDATE jobs SET state = 'pending', run_at = ?2, lease_until = NULL, \
             last_error = ?3, updated_at = ?4 WHERE id = ?1",
            args![id, run_at, error, now_ms],
        )?;
        Ok(if run_at > now_ms {
            JobState::Failed
        } else {
            JobState::Available
        })
    } else {
        db.exec(
            "UPDATE jobs SET state = 'dead', lease_until = NULL, last_error = ?2, \
             updated_at = ?3, finished_at = ?3 WHERE id = ?1",
            args![id, error, now_ms],
        )?;
        Ok(JobState::Dead)
    }
}

fn close_attempt(
    db: &mut dyn Sql,
    now_ms: u64,
    id: JobId,
    attempt: u32,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    db.exec(
        "UPDATE attempts SET ended_at = ?3, outcome = ?4, error = ?5 \
         WHERE job_id = ?1 AND attempt = ?2",
        args![id, attempt, now_ms, outcome, error],
    )?;
    Ok(())
}

/// Reaps expired leases (of one queue, or all).
fn reap_in(db: &mut dyn Sql, now_ms: u64, queue: Option<&str>) -> Result<Vec<Reaped>, StoreError> {
    let sql = match db.dialect() {
        Dialect::Sqlite => {
            "SELECT id, queue, attempt FROM jobs WHERE state = 'running' AND lease_until <= ?1 \
             AND (CAST(?2 AS TEXT) IS NULL OR queue = ?2)"
        }
        // Another node may be reaping (or completing) the same rows: take only the rows
        // nobody holds, and hold them.
        Dialect::Postgres => {
            "SELECT id, queue, attempt FROM jobs WHERE state = 'running' AND lease_until <= ?1 \
             AND (CAST(?2 AS TEXT) IS NULL OR queue = ?2) FOR UPDATE SKIP LOCKED"
        }
    };
    let expired = db.query(sql, args![now_ms, queue])?;
    let mut reaped = Vec::with_capacity(expired.len());
    for row in expired {
        let (id, queue, attempt) = (row.int(0)?, row.text(1)?, row.int(2)? as u32);
        let state = end_attempt_with_retry(
            db,
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

fn claim_in(db: &mut dyn Sql, now_ms: u64, spec: &ClaimSpec) -> Result<Vec<Claimed>, StoreError> {
    reap_in(db, now_ms, spec.queue.as_deref())?;
    let mut max = i64::from(spec.max_jobs);
    if let (Some(limit), Some(queue)) = (spec.concurrency, spec.queue.as_deref()) {
        if db.dialect() == Dialect::Postgres {
            // Nodes count a queue's running jobs one at a time.
            db.query(
                "SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext(?1))) AS locked",
                args![queue],
            )?;
        }
        let running = db
            .query_opt(
                "SELECT count(*) FROM jobs WHERE state = 'running' AND queue = ?1",
                args![queue],
            )?
            .map_or(Ok(0), |r| r.int(0))?;
        max = max.min(i64::from(limit) - running);
    }
    if max <= 0 {
        return Ok(Vec::new());
    }
    let kind = if spec.http { "http" } else { "external" };
    if db.dialect() == Dialect::Postgres {
        return claim_at_once(db, now_ms, spec, kind, max);
    }
    // Walk the claim index in claim order and stop at the limit: the cost is the jobs
    // taken (plus any not-yet-due ones of higher priority), not the backlog.
    let picked = match (db.dialect(), &spec.queue) {
        // Left to itself SQLite's planner picks the due-time index and sorts every due
        // job; name the claim index.
        (Dialect::Sqlite, Some(q)) => db.query(
            "SELECT id, attempt, timeout_ms FROM jobs INDEXED BY jobs_claim \
             WHERE state = 'pending' AND queue = ?1 AND kind = ?2 AND run_at <= ?3 \
             ORDER BY priority DESC, run_at, id LIMIT ?4",
            args![q, kind, now_ms, max],
        )?,
        (Dialect::Sqlite, None) => db.query(
            "SELECT id, attempt, timeout_ms FROM jobs INDEXED BY jobs_claim_any \
             WHERE state = 'pending' AND kind = ?1 AND run_at <= ?2 \
             ORDER BY priority DESC, run_at, id LIMIT ?3",
            args![kind, now_ms, max],
        )?,
        // Nodes claim concurrently: skip the rows another claim holds.
        (Dialect::Postgres, Some(q)) => db.query(
            "SELECT id, attempt, timeout_ms FROM jobs \
             WHERE state = 'pending' AND queue = ?1 AND kind = ?2 AND run_at <= ?3 \
             ORDER BY priority DESC, run_at, id LIMIT ?4 FOR UPDATE SKIP LOCKED",
            args![q, kind, now_ms, max],
        )?,
        (Dialect::Postgres, None) => db.query(
            "SELECT id, attempt, timeout_ms FROM jobs \
             WHERE state = 'pending' AND kind = ?1 AND run_at <= ?2 \
             ORDER BY priority DESC, run_at, id LIMIT ?3 FOR UPDATE SKIP LOCKED",
            args![kind, now_ms, max],
        )?,
    };
    let mut claimed = Vec::with_capacity(picked.len());
    for row in picked {
        let (id, attempt, timeout) = (row.int(0)?, row.int(1)? + 1, row.opt_int(2)?);
        let mut lease = spec.lease_ms;
        if let Some(t) = timeout {
            lease = lease.min(t as u64);
        }
        let lease_until = now_ms.saturating_add(lease);
        let job = db
            .query_opt(
                "UPDATE jobs SET state = 'running', attempt = ?2, lease_until = ?3, \
                 started_at = ?4, updated_at = ?4 WHERE id = ?1 \
                 RETURNING queue, payload, kind, url, max_attempts, run_at",
                args![id, attempt, lease_until, now_ms],
            )?
            .ok_or_else(|| StoreError::Database(format!("job {id} vanished")))?;
        db.exec(
            "INSERT INTO attempts (job_id, attempt, worker, started_at) VALUES (?1, ?2, ?3, ?4)",
            args![id, attempt, &spec.worker, now_ms],
        )?;
        claimed.push(Claimed {
            id,
            queue: job.text(0)?,
            payload: json(&job.text(1)?),
            kind: kind_of(&job.text(2)?, job.opt_text(3)?),
            attempt: attempt as u32,
            max_attempts: job.int(4)? as u32,
            fencing_token: attempt as u64,
            lease_until_ms: lease_until,
            run_at_ms: job.int(5)? as u64,
        });
    }
    Ok(claimed)
}

/// PostgreSQL's claim: pick (skipping rows other claims hold), start the attempts and
/// record them in one statement — one round trip per claim, not three per job.
fn claim_at_once(
    db: &mut dyn Sql,
    now_ms: u64,
    spec: &ClaimSpec,
    kind: &str,
    max: i64,
) -> Result<Vec<Claimed>, StoreError> {
    const STARTED: &str = "claimed AS ( \
            UPDATE jobs j SET state = 'running', attempt = j.attempt + 1, \
              lease_until = CAST(?3 AS BIGINT) + LEAST(CAST(?5 AS BIGINT), \
                                         COALESCE(j.timeout_ms, CAST(?5 AS BIGINT))), \
              started_at = ?3, updated_at = ?3 \
            FROM picked WHERE j.id = picked.id \
            RETURNING j.id, j.attempt, j.lease_until, j.queue, j.payload, j.kind, j.url, \
                      j.max_attempts, j.run_at, j.priority), \
          recorded AS ( \
            INSERT INTO attempts (job_id, attempt, worker, started_at) \
            SELECT id, attempt, ?6, ?3 FROM claimed) \
        SELECT id, attempt, lease_until, queue, payload, kind, url, max_attempts, run_at \
        FROM claimed ORDER BY priority DESC, run_at, id";
    let rows = match &spec.queue {
        Some(q) => db.query(
            &format!(
                "WITH picked AS (SELECT id FROM jobs WHERE state = 'pending' AND queue = ?1 \
                   AND kind = ?2 AND run_at <= ?3 ORDER BY priority DESC, run_at, id \
                   LIMIT ?4 FOR UPDATE SKIP LOCKED), {STARTED}"
            ),
            args![q, kind, now_ms, max, spec.lease_ms, &spec.worker],
        )?,
        None => db.query(
            &format!(
                "WITH picked AS (SELECT id FROM jobs WHERE state = 'pending' \
                   AND CAST(?1 AS TEXT) IS NULL AND kind = ?2 AND run_at <= ?3 \
                   ORDER BY priority DESC, run_at, id LIMIT ?4 FOR UPDATE SKIP LOCKED), \
                 {STARTED}"
            ),
            args![
                Option::<&str>::None,
                kind,
                now_ms,
                max,
                spec.lease_ms,
                &spec.worker
            ],
        )?,
    };
    rows.iter()
        .map(|r| {
            let attempt = r.int(1)?;
            Ok(Claimed {
                id: r.int(0)?,
                attempt: attempt as u32,
                fencing_token: attempt as u64,
                lease_until_ms: r.int(2)? as u64,
                queue: r.text(3)?,
                payload: json(&r.text(4)?),
                kind: kind_of(&r.text(5)?, r.opt_text(6)?),
                max_attempts: r.int(7)? as u32,
                run_at_ms: r.int(8)? as u64,
            })
        })
        .collect()
}

/// What the fence check reads of a running job.
struct Holder {
    attempt: u32,
    timeout_ms: Option<u64>,
    lease_until_ms: Option<u64>,
    started_at_ms: u64,
}

/// The running attempt of `id` if `token` is its fencing token and its lease holds (one
/// indexed read; on PostgreSQL it also locks the row, so two nodes cannot both commit).
fn fence(
    db: &mut dyn Sql,
    now_ms: u64,
    id: JobId,
    token: u64,
) -> Result<Result<Holder, Refusal>, StoreError> {
    let sql = match db.dialect() {
        Dialect::Sqlite => {
            "SELECT state, attempt, run_at, timeout_ms, lease_until, started_at FROM jobs \
             WHERE id = ?1"
        }
        Dialect::Postgres => {
            "SELECT state, attempt, run_at, timeout_ms, lease_until, started_at FROM jobs \
             WHERE id = ?1 FOR UPDATE"
        }
    };
    let Some(row) = db.query_opt(sql, args![id])? else {
        return Ok(Err(Refusal::NotFound));
    };
    let (state, attempt, run_at) = (row.text(0)?, row.int(1)? as u32, row.int(2)? as u64);
    if state != "running" || u64::from(attempt) != token {
        return Ok(Err(Refusal::Fenced {
            state: derive_state(&state, run_at, attempt, now_ms),
            attempt,
        }));
    }
    let lease = row.opt_int(4)?.map(|v| v as u64);
    // A lease that ended is over even before the reaper gets to it: a late worker
    // cannot heartbeat it back to life or commit past its time limit.
    if let Some(until) = lease.filter(|until| *until <= now_ms) {
        return Ok(Err(Refusal::LeaseExpired {
            lease_until_ms: until,
        }));
    }
    Ok(Ok(Holder {
        attempt,
        timeout_ms: row.opt_int(3)?.map(|v| v as u64),
        lease_until_ms: lease,
        started_at_ms: row.opt_int(5)?.unwrap_or(0) as u64,
    }))
}

fn finish_one(
    db: &mut dyn Sql,
    now_ms: u64,
    item: &Finish,
) -> Result<Result<Finished, Refusal>, StoreError> {
    let id = item.id;
    let holder = match fence(db, now_ms, id, item.token)? {
        Ok(h) => h,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let state = match &item.outcome {
        Outcome::Succeeded(result) => {
            close_attempt(db, now_ms, id, holder.attempt, "succeeded", None)?;
            db.exec(
                "UPDATE jobs SET state = 'succeeded', lease_until = NULL, result = ?2, \
                 updated_at = ?3, finished_at = ?3 WHERE id = ?1",
                args![id, result.as_ref().map(|r| r.to_string()), now_ms],
            )?;
            JobState::Succeeded
        }
        Outcome::Failed { error, retry } => {
            end_attempt_with_retry(db, now_ms, id, holder.attempt, "failed", error, *retry)?
        }
    };
    let queue = db
        .query_opt("SELECT queue FROM jobs WHERE id = ?1", args![id])?
        .map_or(Ok(String::new()), |r| r.text(0))?;
    let job = if item.want_job {
        Some(must_load(db, now_ms, id)?)
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

/// PostgreSQL's batch completion: every item whose token holds commits in one statement
/// (locking the rows, so a concurrent completion on another node waits and then sees
/// the job finished); the rest go one by one through the fence to learn why not.
fn complete_at_once(
    db: &mut dyn Sql,
    now_ms: u64,
    items: &[Finish],
) -> Result<Vec<Result<Finished, Refusal>>, StoreError> {
    let rows = db.query(
        "WITH input AS ( \
           SELECT * FROM unnest(CAST(?1 AS BIGINT[]), CAST(?2 AS BIGINT[]), \
                                CAST(?3 AS TEXT[])) AS t(id, token, result)), \
         ok AS ( \
           SELECT j.id, j.attempt, input.result FROM jobs j JOIN input ON j.id = input.id \
           WHERE j.state = 'running' AND j.attempt = input.token AND j.lease_until > ?4 \
           FOR UPDATE OF j), \
         closed AS ( \
           UPDATE attempts a SET ended_at = ?4, outcome = 'succeeded', error = NULL \
           FROM ok WHERE a.job_id = ok.id AND a.attempt = ok.attempt) \
         UPDATE jobs j SET state = 'succeeded', lease_until = NULL, result = ok.result, \
           updated_at = ?4, finished_at = ?4 \
         FROM ok WHERE j.id = ok.id RETURNING j.id, j.queue",
        &[
            Arg::Ints(items.iter().map(|i| Some(i.id)).collect()),
            Arg::Ints(
                items
                    .iter()
                    .map(|i| Some(i.token.min(i64::MAX as u64) as i64))
                    .collect(),
            ),
            Arg::Texts(
                items
                    .iter()
                    .map(|i| match &i.outcome {
                        Outcome::Succeeded(r) => r.as_ref().map(|r| r.to_string()),
                        Outcome::Failed { .. } => None,
                    })
                    .collect(),
            ),
            Arg::from(now_ms),
        ],
    )?;
    let mut done: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    for r in rows {
        done.insert(r.int(0)?, r.text(1)?);
    }
    items
        .iter()
        .map(|item| match done.remove(&item.id) {
            Some(queue) => Ok(Ok(Finished {
                id: item.id,
                queue,
                state: JobState::Succeeded,
                job: None,
            })),
            // Refused (or a repeat of an id already committed above): the fence says why.
            None => finish_one(db, now_ms, item),
        })
        .collect()
}

const SCHEDULE_COLUMNS: &str =
    "id, name, cron, time_zone, template, misfire, paused, next_run_at, last_tick, created_at";

fn schedule_from_row(row: &Row) -> Result<Schedule, StoreError> {
    let bad = |e: serde_json::Error| StoreError::Database(format!("stored schedule: {e}"));
    Ok(Schedule {
        id: row.int(0)?,
        name: row.text(1)?,
        cron: row.text(2)?,
        time_zone: row.text(3)?,
        template: serde_json::from_str::<JobTemplate>(&row.text(4)?).map_err(bad)?,
        misfire: serde_json::from_str::<Misfire>(&row.text(5)?).map_err(bad)?,
        paused: row.int(6)? != 0,
        next_run_at_ms: row.int(7)? as u64,
        last_tick_ms: row.opt_int(8)?.map(|v| v as u64),
        created_at_ms: row.int(9)? as u64,
    })
}

fn load_schedule(db: &mut dyn Sql, id: i64) -> Result<Option<Schedule>, StoreError> {
    let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ?1");
    db.query_opt(&sql, args![id])?
        .map(|r| schedule_from_row(&r))
        .transpose()
}

impl<R: Runner> SqlStore<R> {
    /// A read-only [`SqlStore::op`] that must not hold up writes (scans).
    fn read_op<T: Send + 'static>(
        &self,
        caller_ms: u64,
        mut f: impl FnMut(&mut dyn Sql, u64) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        self.runner.run_read(Box::new(move |db: &mut dyn Sql| {
            let now = db.now(caller_ms)?;
            f(db, now)
        }))
    }

    /// Runs `f` with the operation's time (the caller's, or the database's clock).
    fn op<T: Send + 'static>(
        &self,
        caller_ms: u64,
        mut f: impl FnMut(&mut dyn Sql, u64) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        self.runner.run(Box::new(move |db: &mut dyn Sql| {
            let now = db.now(caller_ms)?;
            f(db, now)
        }))
    }
}

impl<R: Runner> Store for SqlStore<R> {
    fn on_remote_change(&self, wake: std::sync::Arc<dyn Fn(&str) + Send + Sync>) {
        self.runner.on_remote_change(wake);
    }

    fn enqueue(&self, now_ms: u64, jobs: Vec<NewJob>) -> StoreFuture<Vec<Enqueued>> {
        self.op(now_ms, move |db, now| {
            announce(db, jobs.iter().map(|j| j.queue.as_str()))?;
            if db.dialect() == Dialect::Postgres
                && jobs.len() > 1
                && jobs.iter().all(|j| j.dedup.is_none())
            {
                return insert_jobs_at_once(db, now, &jobs);
            }
            // Keys in one order on every node: two batches sharing keys then wait for
            // each other instead of deadlocking (PostgreSQL would abort one after its
            // deadlock timeout, a second, and the batch would run again).
            let mut order: Vec<usize> = (0..jobs.len()).collect();
            order.sort_by(|&a, &b| {
                let key = |j: &NewJob| (j.queue.clone(), j.dedup.as_ref().map(|d| d.key.clone()));
                key(&jobs[a]).cmp(&key(&jobs[b]))
            });
            let mut done: Vec<Option<Enqueued>> = vec![None; jobs.len()];
            for i in order {
                done[i] = Some(insert_job(db, now, &jobs[i])?);
            }
            Ok(done.into_iter().flatten().collect())
        })
    }

    fn get(&self, now_ms: u64, id: JobId) -> StoreFuture<Option<Job>> {
        self.op(now_ms, move |db, now| load_job(db, now, id))
    }

    fn list(&self, now_ms: u64, filter: ListFilter) -> StoreFuture<Vec<Job>> {
        self.read_op(now_ms, move |db, now| {
            // The derived states are conditions on the stored state and due time.
            let state_sql = match filter.state {
                None => "1 = 1",
                Some(JobState::Scheduled) => "state = 'pending' AND run_at > ?3 AND attempt = 0",
                Some(JobState::Failed) => "state = 'pending' AND run_at > ?3 AND attempt > 0",
                Some(JobState::Available) => "state = 'pending' AND run_at <= ?3",
                Some(JobState::Running) => "state = 'running'",
                Some(JobState::Succeeded) => "state = 'succeeded'",
                Some(JobState::Dead) => "state = 'dead'",
                Some(JobState::Cancelled) => "state = 'cancelled'",
            };
            // `?3` appears in every variant (typed), so the parameter count is fixed.
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE (CAST(?1 AS TEXT) IS NULL OR queue = ?1) AND id > ?2 \
                 AND ({state_sql}) AND CAST(?3 AS BIGINT) >= 0 ORDER BY id LIMIT ?4"
            );
            let rows = db.query(
                &sql,
                args![
                    filter.queue.as_deref(),
                    filter.after_id.unwrap_or(0),
                    now,
                    filter.limit
                ],
            )?;
            rows.iter().map(|r| job_from_row(r, now)).collect()
        })
    }

    fn cancel(&self, now_ms: u64, id: JobId) -> StoreFuture<Result<Job, Refusal>> {
        self.op(now_ms, move |db, now| {
            lock_job(db, id)?;
            let Some(job) = load_job(db, now, id)? else {
                return Ok(Err(Refusal::NotFound));
            };
            if job.state.is_final() {
                return Ok(Err(Refusal::WrongState(job.state)));
            }
            if job.state == JobState::Running {
                close_attempt(db, now, id, job.attempt, "cancelled", Some("job cancelled"))?;
            }
            db.exec(
                "UPDATE jobs SET state = 'cancelled', lease_until = NULL, updated_at = ?2, \
                 finished_at = ?2 WHERE id = ?1",
                args![id, now],
            )?;
            Ok(Ok(must_load(db, now, id)?))
        })
    }

    fn retry(&self, now_ms: u64, id: JobId) -> StoreFuture<Result<Job, Refusal>> {
        self.op(now_ms, move |db, now| {
            lock_job(db, id)?;
            let Some(job) = load_job(db, now, id)? else {
                return Ok(Err(Refusal::NotFound));
            };
            if !matches!(job.state, JobState::Dead | JobState::Cancelled) {
                return Ok(Err(Refusal::WrongState(job.state)));
            }
            // A fresh budget of attempts on top of those made: the attempt number (the
            // fencing token) keeps growing.
            db.exec(
                "UPDATE jobs SET state = 'pending', run_at = ?2, \
                 max_attempts = attempt + max_attempts, updated_at = ?2, finished_at = NULL \
                 WHERE id = ?1",
                args![id, now],
            )?;
            announce(db, [job.queue.as_str()])?;
            Ok(Ok(must_load(db, now, id)?))
        })
    }

    fn claim(&self, now_ms: u64, spec: ClaimSpec) -> StoreFuture<Vec<Claimed>> {
        self.op(now_ms, move |db, now| claim_in(db, now, &spec))
    }

    fn heartbeat(
        &self,
        now_ms: u64,
        id: JobId,
        token: u64,
        lease_ms: u64,
    ) -> StoreFuture<Result<u64, Refusal>> {
        self.op(now_ms, move |db, now| {
            let holder = match fence(db, now, id, token)? {
                Ok(h) => h,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let mut until = now.saturating_add(lease_ms);
            if let Some(t) = holder.timeout_ms {
                until = until.min(holder.started_at_ms.saturating_add(t));
            }
            // Never shortens a lease.
            let until = until.max(holder.lease_until_ms.unwrap_or(0));
            db.exec(
                "UPDATE jobs SET lease_until = ?2, updated_at = ?3 WHERE id = ?1",
                args![id, until, now],
            )?;
            Ok(Ok(until))
        })
    }

    fn finish(
        &self,
        now_ms: u64,
        items: Vec<Finish>,
    ) -> StoreFuture<Vec<Result<Finished, Refusal>>> {
        self.op(now_ms, move |db, now| {
            let all_plain_successes = items
                .iter()
                .all(|i| matches!(i.outcome, Outcome::Succeeded(_)) && !i.want_job);
            if db.dialect() == Dialect::Postgres && items.len() > 1 && all_plain_successes {
                return complete_at_once(db, now, &items);
            }
            items.iter().map(|item| finish_one(db, now, item)).collect()
        })
    }

    fn reap(&self, now_ms: u64) -> StoreFuture<Vec<Reaped>> {
        self.op(now_ms, move |db, now| {
            let reaped = reap_in(db, now, None)?;
            announce(db, reaped.iter().map(|r| r.queue.as_str()))?;
            Ok(reaped)
        })
    }

    fn next_events(&self, queue: Option<String>, http: bool) -> StoreFuture<NextEvents> {
        self.op(0, move |db, _| {
            let kind = if http { "http" } else { "external" };
            let due = db
                .query_opt(
                    "SELECT min(run_at) FROM jobs WHERE state = 'pending' AND kind = ?2 \
                     AND (CAST(?1 AS TEXT) IS NULL OR queue = ?1)",
                    args![queue.as_deref(), kind],
                )?
                .map_or(Ok(None), |r| r.opt_int(0))?;
            let lease = db
                .query_opt(
                    "SELECT min(lease_until) FROM jobs WHERE state = 'running' \
                     AND (CAST(?1 AS TEXT) IS NULL OR queue = ?1)",
                    args![queue.as_deref()],
                )?
                .map_or(Ok(None), |r| r.opt_int(0))?;
            Ok((due.map(|v| v as u64), lease.map(|v| v as u64)))
        })
    }

    fn prune(&self, before_ms: u64, limit: u32) -> StoreFuture<u64> {
        self.op(0, move |db, _| {
            let ids = db.query(
                "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1 \
                 ORDER BY finished_at LIMIT ?2",
                args![before_ms, limit],
            )?;
            for row in &ids {
                let id = row.int(0)?;
                db.exec("DELETE FROM attempts WHERE job_id = ?1", args![id])?;
                db.exec("DELETE FROM jobs WHERE id = ?1", args![id])?;
            }
            Ok(ids.len() as u64)
        })
    }

    fn counts(&self, now_ms: u64) -> StoreFuture<Counts> {
        self.read_op(now_ms, move |db, now| {
            let rows = db.query(
                "SELECT queue, state, CASE WHEN run_at <= ?1 THEN 1 ELSE 0 END, \
                 CASE WHEN attempt > 0 THEN 1 ELSE 0 END, count(*) FROM jobs \
                 GROUP BY 1, 2, 3, 4",
                args![now],
            )?;
            let mut merged: std::collections::BTreeMap<(String, &'static str), (JobState, u64)> =
                Default::default();
            for r in rows {
                let due = r.int(2)? != 0;
                let derived = derive_state(
                    &r.text(1)?,
                    if due { 0 } else { u64::MAX },
                    u32::from(r.int(3)? != 0),
                    now,
                );
                merged
                    .entry((r.text(0)?, derived.as_str()))
                    .or_insert((derived, 0))
                    .1 += r.int(4)? as u64;
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
        self.op(now_ms, move |db, now| {
            let inserted = db.query_opt(
                "INSERT INTO schedules (name, cron, time_zone, template, misfire, next_run_at, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (name) DO NOTHING RETURNING id",
                args![
                    &schedule.name,
                    &schedule.cron,
                    &schedule.time_zone,
                    serde_json::to_string(&schedule.template).unwrap_or_default(),
                    serde_json::to_string(&schedule.misfire).unwrap_or_default(),
                    schedule.next_run_at_ms,
                    now
                ],
            )?;
            if let Some(row) = inserted {
                let id = row.int(0)?;
                return Ok(Ok(load_schedule(db, id)?.ok_or(StoreError::Closed)?));
            }
            let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = ?1");
            let existing = db
                .query_opt(&sql, args![&schedule.name])?
                .ok_or_else(|| StoreError::Retry("a schedule name changed hands".into()))?;
            Ok(Err(schedule_from_row(&existing)?))
        })
    }

    fn get_schedule(&self, id: i64) -> StoreFuture<Option<Schedule>> {
        self.op(0, move |db, _| load_schedule(db, id))
    }

    fn list_schedules(&self, after_id: Option<i64>, limit: u32) -> StoreFuture<Vec<Schedule>> {
        self.op(0, move |db, _| {
            let sql = format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id > ?1 ORDER BY id LIMIT ?2"
            );
            db.query(&sql, args![after_id.unwrap_or(0), limit])?
                .iter()
                .map(schedule_from_row)
                .collect()
        })
    }

    fn delete_schedule(&self, id: i64) -> StoreFuture<bool> {
        self.op(0, move |db, _| {
            Ok(db.exec("DELETE FROM schedules WHERE id = ?1", args![id])? > 0)
        })
    }

    fn set_paused(
        &self,
        id: i64,
        paused: bool,
        next_run_at_ms: u64,
    ) -> StoreFuture<Option<Schedule>> {
        self.op(0, move |db, _| {
            let n = if paused {
                db.exec("UPDATE schedules SET paused = 1 WHERE id = ?1", args![id])?
            } else {
                // Resuming an active schedule keeps its tick.
                db.exec(
                    "UPDATE schedules SET paused = 0, \
                     next_run_at = CASE WHEN paused = 1 THEN CAST(?2 AS BIGINT) ELSE next_run_at END \
                     WHERE id = ?1",
                    args![id, next_run_at_ms],
                )?
            };
            if n == 0 {
                return Ok(None);
            }
            load_schedule(db, id)
        })
    }

    fn due_schedules(&self, now_ms: u64) -> StoreFuture<DueSchedules> {
        self.op(now_ms, move |db, now| {
            let sql = format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE paused = 0 \
                 AND next_run_at <= ?1 ORDER BY next_run_at LIMIT 100"
            );
            let due = db
                .query(&sql, args![now])?
                .iter()
                .map(schedule_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            let next = db
                .query_opt(
                    "SELECT min(next_run_at) FROM schedules WHERE paused = 0",
                    &[],
                )?
                .map_or(Ok(None), |r| r.opt_int(0))?;
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
        self.op(now_ms, move |db, now| {
            let n = db.exec(
                "UPDATE schedules SET next_run_at = ?3, \
                 last_tick = coalesce(CAST(?4 AS BIGINT), last_tick) \
                 WHERE id = ?1 AND next_run_at = ?2 AND paused = 0",
                args![id, expected_ms, next_ms, last_tick_ms],
            )?;
            if n == 0 {
                return Ok(false);
            }
            for job in &jobs {
                insert_job(db, now, job)?;
            }
            announce(db, jobs.iter().map(|j| j.queue.as_str()))?;
            Ok(true)
        })
    }
}
