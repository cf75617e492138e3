//! The seam between the engine and its storage: one trait, [`Store`], with an embedded
//! SQLite implementation ([`sqlite::SqliteStore`]). Every operation is one transaction
//! and takes the caller's `now`, so the rules about time (due, lease expiry, dedup
//! windows) are the store's, decided atomically, and testable with a virtual clock.
//!
//! The rules every store keeps:
//! - a claim takes due `pending` jobs of one queue (priority first, then due time, then
//!   id), sets them `running` with `attempt + 1` and a lease; the new attempt number is
//!   the fencing token;
//! - `complete`/`fail`/`heartbeat` apply only while the job is `running` under the
//!   presented token — a job whose lease expired and was reclaimed (or reaped back to
//!   `pending`, or cancelled) refuses the old token, so at most one attempt commits;
//! - a running job whose lease ended is reaped: its attempt ends as `lease_expired`,
//!   and the job goes back to `pending` after its backoff, or `dead` after its last
//!   attempt;
//! - a schedule's tick is fired by a compare-and-set on its `next_run_at`, in the same
//!   transaction that inserts the tick's jobs, so each tick makes its jobs once however
//!   many nodes race for it.

pub mod pg;
pub mod sql;
pub mod sqlite;

use crate::model::{
    Claimed, Enqueued, Job, JobId, JobKind, JobState, NewJob, NewSchedule, Refusal, Schedule,
};
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// A store failure (I/O, corruption, a closed store). The engine reports it as
/// unavailable; nothing was committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("scheduler store: {0}")]
    Database(String),
    /// The store is shut down.
    #[error("scheduler store is closed")]
    Closed,
    /// A transient conflict between nodes (deadlock, serialization failure, a key that
    /// changed hands): the operation was rolled back and may be run again.
    #[error("scheduler store: {0} (retry)")]
    Retry(String),
}

/// What every store operation returns: resolved once the transaction committed.
pub type StoreFuture<T> = BoxFuture<'static, Result<T, StoreError>>;

/// Per (queue, state) job counts.
pub type Counts = Vec<(String, JobState, u64)>;

/// The earliest due time among pending jobs, and the earliest lease end.
pub type NextEvents = (Option<u64>, Option<u64>);

/// The due schedules, and the earliest next tick of all active ones.
pub type DueSchedules = (Vec<Schedule>, Option<u64>);

/// What a claim asks for.
#[derive(Debug, Clone)]
pub struct ClaimSpec {
    /// Queue to claim from; `None` claims from every queue (the webhook executor).
    pub queue: Option<String>,
    /// Which kind of job: external workers claim `External`, the executor `Http`.
    pub http: bool,
    /// Most jobs to take.
    pub max_jobs: u32,
    /// Lease length (capped per job by its timeout).
    pub lease_ms: u64,
    /// Recorded in the attempt history.
    pub worker: String,
    /// Per-queue limit on running jobs (across all nodes sharing the store).
    pub concurrency: Option<u32>,
}

/// A list query.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this (derived) state.
    pub state: Option<JobState>,
    /// Keyset cursor: ids strictly greater.
    pub after_id: Option<JobId>,
    /// Page size.
    pub limit: u32,
}

/// What the reaper did to one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaped {
    /// Job.
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// `Failed` (retry scheduled) or `Dead`.
    pub state: JobState,
}

/// The outcome a worker reports.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Success, with an optional result.
    Succeeded(Option<serde_json::Value>),
    /// Failure; `retry: false` makes it dead at once.
    Failed {
        /// Message kept in the history.
        error: String,
        /// Whether the backoff/max_attempts rules apply (false: dead now).
        retry: bool,
    },
}

/// One outcome to commit.
#[derive(Debug, Clone)]
pub struct Finish {
    /// The job.
    pub id: JobId,
    /// The fencing token the worker holds.
    pub token: u64,
    /// What happened.
    pub outcome: Outcome,
    /// Read the whole job (with its history) back for the answer.
    pub want_job: bool,
}

/// A committed outcome.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The job.
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// Its state now: succeeded, failed (retry due later), available (retry due now)
    /// or dead.
    pub state: JobState,
    /// The whole job, if asked for.
    pub job: Option<Job>,
}

/// The scheduler's storage. Implementations are cheap to share (`Arc`).
pub trait Store: Send + Sync + 'static {
    /// Inserts jobs in one transaction (all or none); each is new or the live job
    /// holding its dedup key.
    fn enqueue(&self, now_ms: u64, jobs: Vec<NewJob>) -> StoreFuture<Vec<Enqueued>>;
    /// One job with its attempt history.
    fn get(&self, now_ms: u64, id: JobId) -> StoreFuture<Option<Job>>;
    /// A page of jobs, by id.
    fn list(&self, now_ms: u64, filter: ListFilter) -> StoreFuture<Vec<Job>>;
    /// Cancels a job that has not finished; a running attempt can no longer commit.
    fn cancel(&self, now_ms: u64, id: JobId) -> StoreFuture<Result<Job, Refusal>>;
    /// Makes a dead (or cancelled) job available again with a fresh attempt budget.
    fn retry(&self, now_ms: u64, id: JobId) -> StoreFuture<Result<Job, Refusal>>;
    /// Reaps the spec's queue's expired leases, then claims due jobs.
    fn claim(&self, now_ms: u64, spec: ClaimSpec) -> StoreFuture<Vec<Claimed>>;
    /// Extends a running job's lease (never past its timeout); returns the new end.
    fn heartbeat(
        &self,
        now_ms: u64,
        id: JobId,
        token: u64,
        lease_ms: u64,
    ) -> StoreFuture<Result<u64, Refusal>>;
    /// Commits outcomes, each for the attempt holding its token, in one transaction;
    /// each answer is the job after its outcome, or why its token was refused.
    fn finish(
        &self,
        now_ms: u64,
        items: Vec<Finish>,
    ) -> StoreFuture<Vec<Result<Finished, Refusal>>>;
    /// Ends every running attempt whose lease ended at or before `now_ms`.
    fn reap(&self, now_ms: u64) -> StoreFuture<Vec<Reaped>>;
    /// The earliest due time among pending jobs of `queue` (all queues: `None`) of the
    /// given kind, and the earliest lease end among running jobs.
    fn next_events(&self, queue: Option<String>, http: bool) -> StoreFuture<NextEvents>;
    /// Deletes up to `limit` jobs that finished before `before_ms`; returns how many.
    fn prune(&self, before_ms: u64, limit: u32) -> StoreFuture<u64>;
    /// Jobs per (queue, derived state).
    fn counts(&self, now_ms: u64) -> StoreFuture<Counts>;

    /// Creates a schedule; `Ok(Err(existing))` if the name is taken.
    fn create_schedule(
        &self,
        now_ms: u64,
        schedule: NewSchedule,
    ) -> StoreFuture<Result<Schedule, Schedule>>;
    /// One schedule.
    fn get_schedule(&self, id: i64) -> StoreFuture<Option<Schedule>>;
    /// A page of schedules by id.
    fn list_schedules(&self, after_id: Option<i64>, limit: u32) -> StoreFuture<Vec<Schedule>>;
    /// Deletes a schedule (its jobs stay); false if there was none.
    fn delete_schedule(&self, id: i64) -> StoreFuture<bool>;
    /// Pauses, or resumes with the given next tick.
    fn set_paused(
        &self,
        id: i64,
        paused: bool,
        next_run_at_ms: u64,
    ) -> StoreFuture<Option<Schedule>>;
    /// Active schedules whose next tick is at or before `now_ms`, and the earliest next
    /// tick of all active schedules.
    fn due_schedules(&self, now_ms: u64) -> StoreFuture<DueSchedules>;
    /// Calls `wake(queue)` when another node makes a job of `queue` claimable (stores
    /// several nodes share); by default never: one node's own changes wake its
    /// claimers directly.
    fn on_remote_change(&self, wake: Arc<dyn Fn(&str) + Send + Sync>) {
        let _ = wake;
    }

    /// Fires a tick: if the schedule's next tick is still `expected_ms`, moves it to
    /// `next_ms` and enqueues `jobs` (each with its own dedup key), all or nothing.
    /// False if another node fired it first (or it was paused or deleted).
    fn fire_schedule(
        &self,
        now_ms: u64,
        id: i64,
        expected_ms: u64,
        next_ms: u64,
        last_tick_ms: Option<u64>,
        jobs: Vec<NewJob>,
    ) -> StoreFuture<bool>;
}

/// The state a stored job shows at `now_ms`.
pub(crate) fn derive_state(stored: &str, run_at_ms: u64, attempt: u32, now_ms: u64) -> JobState {
    match stored {
        "pending" if run_at_ms <= now_ms => JobState::Available,
        "pending" if attempt == 0 => JobState::Scheduled,
        "pending" => JobState::Failed,
        "running" => JobState::Running,
        "succeeded" => JobState::Succeeded,
        "dead" => JobState::Dead,
        _ => JobState::Cancelled,
    }
}

/// The kind column's value.
pub(crate) fn kind_column(kind: &JobKind) -> (&'static str, Option<&str>) {
    match kind {
        JobKind::External => ("external", None),
        JobKind::Http { url } => ("http", Some(url.as_str())),
    }
}
