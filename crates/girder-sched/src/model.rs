//! What the scheduler stores: jobs, their attempts, schedules. Times are milliseconds
//! since the Unix epoch (UTC), always passed in by the caller, so every rule about time
//! is testable with a virtual clock.

use serde::{Deserialize, Serialize};

/// A job's id, assigned by the store, increasing.
pub type JobId = i64;

/// Where a job stands, as clients see it.
///
/// The store keeps one state, `pending`, for a job waiting to run; whether it is
/// `scheduled`, `failed` (waiting for its retry) or `available` follows from its due
/// time and attempt count, so no timer has to move it between states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its first run, due in the future.
    Scheduled,
    /// Due: the next claim takes it.
    Available,
    /// Claimed; a worker holds its lease.
    Running,
    /// An attempt failed; waiting for the retry, due in the future.
    Failed,
    /// An attempt committed success.
    Succeeded,
    /// Ran out of attempts (a dead letter); `retry` makes it available again.
    Dead,
    /// Cancelled before it succeeded.
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 7] = [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Failed,
        JobState::Succeeded,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The name used in the API and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Failed => "failed",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether nothing more will happen to the job by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Dead | JobState::Cancelled
        )
    }
}

/// How a job is executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobKind {
    /// Claimed by an external worker over the worker protocol.
    External,
    /// POSTed by the node itself to `url` (the built-in webhook executor).
    Http {
        /// Where the payload is POSTed.
        url: String,
    },
}

/// Retry delays: `min(max_ms, base_ms * 2^(attempt-1))` with equal jitter (a delay
/// between half and all of that), so jobs that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackoffSpec {
    /// Delay before the first retry, before jitter.
    pub base_ms: u64,
    /// Cap on every delay.
    pub max_ms: u64,
}

impl Default for BackoffSpec {
    fn default() -> Self {
        BackoffSpec {
            base_ms: 1_000,
            max_ms: 3_600_000,
        }
    }
}

impl BackoffSpec {
    /// The delay before the retry that follows failed attempt `attempt` (1-based) of job
    /// `job`. Deterministic per (job, attempt): the jitter is seeded by both, so a
    /// replayed decision is the same decision.
    pub fn delay_ms(&self, job: JobId, attempt: u32) -> u64 {
        let backoff = girder_resilience::Backoff {
            base: std::time::Duration::from_millis(self.base_ms),
            multiplier: 2.0,
            cap: std::time::Duration::from_millis(self.max_ms.max(self.base_ms)),
            jitter: girder_resilience::Jitter::Equal,
        };
        let seed = (job as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(attempt);
        let retry = attempt.saturating_sub(1) as usize;
        backoff
            .delays(fastrand::Rng::with_seed(seed))
            .nth(retry.min(64))
            .map_or(self.max_ms, |d| d.as_millis() as u64)
    }
}

/// A job to enqueue, validated by the engine before it reaches a store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Queue name.
    pub queue: String,
    /// How it runs.
    pub kind: JobKind,
    /// Opaque JSON handed to the worker (or POSTed).
    pub payload: serde_json::Value,
    /// When it is due.
    pub run_at_ms: u64,
    /// Higher runs first among due jobs of one queue.
    pub priority: i32,
    /// Attempts before the job is dead.
    pub max_attempts: u32,
    /// Retry delays.
    pub backoff: BackoffSpec,
    /// Per-attempt time limit: a lease never reaches past start + timeout.
    pub timeout_ms: Option<u64>,
    /// Deduplication: while `dedup_until_ms` is in the future, enqueuing another job with
    /// the same (queue, key) returns this one.
    pub dedup: Option<Dedup>,
    /// The schedule whose tick made it.
    pub schedule_id: Option<i64>,
}

/// A deduplication key and how long it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dedup {
    /// The key, unique per queue while it holds.
    pub key: String,
    /// Until when (ms).
    pub until_ms: u64,
}

/// One execution of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// 1-based; also the fencing token the worker held.
    pub attempt: u32,
    /// Who ran it.
    pub worker: String,
    /// When it was claimed (ms).
    pub started_at_ms: u64,
    /// When it ended (ms), if it has.
    pub ended_at_ms: Option<u64>,
    /// `succeeded`, `failed`, `lease_expired`, `cancelled`, or none while running.
    pub outcome: Option<String>,
    /// The error the worker reported, or why the node ended it.
    pub error: Option<String>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Id.
    pub id: JobId,
    /// Queue.
    pub queue: String,
    /// Kind.
    pub kind: JobKind,
    /// Payload.
    pub payload: serde_json::Value,
    /// State, derived at `now` for waiting jobs.
    pub state: JobState,
    /// Priority.
    pub priority: i32,
    /// When it is (or was) due.
    pub run_at_ms: u64,
    /// Attempts started so far; the current fencing token while running.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Retry delays.
    pub backoff: BackoffSpec,
    /// Per-attempt limit.
    pub timeout_ms: Option<u64>,
    /// Lease end while running.
    pub lease_until_ms: Option<u64>,
    /// The dedup key, if any.
    pub dedup_key: Option<String>,
    /// The schedule that made it, if any.
    pub schedule_id: Option<i64>,
    /// The result the committing worker gave.
    pub result: Option<serde_json::Value>,
    /// Last error.
    pub last_error: Option<String>,
    /// Created (ms).
    pub created_at_ms: u64,
    /// Last change (ms).
    pub updated_at_ms: u64,
    /// When it reached a final state (ms).
    pub finished_at_ms: Option<u64>,
    /// Attempt history, oldest first (filled by `get`, empty in lists).
    pub attempts: Vec<Attempt>,
}

/// What enqueue did.
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueued {
    /// The job (new or the existing duplicate).
    pub job: Job,
    /// True if an existing job was returned for the dedup key.
    pub duplicate: bool,
}

/// A job handed to a worker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claimed {
    /// Id.
    pub id: JobId,
    /// Queue.
    pub queue: String,
    /// Payload.
    pub payload: serde_json::Value,
    /// Kind.
    pub kind: JobKind,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The token `complete`/`fail`/`heartbeat` must present: the attempt number, which
    /// only grows, so a later claim always holds a larger token.
    pub fencing_token: u64,
    /// Lease end (ms).
    pub lease_until_ms: u64,
    /// When it was due (ms): claim time minus this is the start lateness.
    pub run_at_ms: u64,
}

/// Why a worker's call on a job was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such job.
    NotFound,
    /// The token is not the current attempt's, or the job is no longer running under
    /// it (its lease expired and it was reclaimed or rescheduled, or it was cancelled).
    Fenced {
        /// The job's current state.
        state: JobState,
        /// The job's current attempt.
        attempt: u32,
    },
    /// The token is the current attempt's, but its lease ended at `lease_until_ms`:
    /// the attempt is over (the job will be reaped and retried) and cannot commit.
    LeaseExpired {
        /// When the lease ended (ms).
        lease_until_ms: u64,
    },
    /// The job is not in a state the operation applies to.
    WrongState(JobState),
}

/// A recurring schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The cron expression as given.
    pub cron: String,
    /// IANA zone name the expression is read in.
    pub time_zone: String,
    /// What each tick enqueues.
    pub template: JobTemplate,
    /// After downtime.
    pub misfire: Misfire,
    /// Paused schedules make no jobs; resuming starts from the next tick after now.
    pub paused: bool,
    /// The next tick (ms).
    pub next_run_at_ms: u64,
    /// The last tick that produced a job (ms).
    pub last_tick_ms: Option<u64>,
    /// Created (ms).
    pub created_at_ms: u64,
}

/// The job each tick produces (run at the tick).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobTemplate {
    /// Queue.
    pub queue: String,
    /// Kind.
    pub kind: JobKind,
    /// Payload.
    pub payload: serde_json::Value,
    /// Priority.
    pub priority: i32,
    /// Attempts.
    pub max_attempts: u32,
    /// Retry delays.
    pub backoff: BackoffSpec,
    /// Per-attempt limit.
    pub timeout_ms: Option<u64>,
}

/// What a schedule does about ticks it missed while no node was running (or it was
/// late by more than the misfire threshold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum Misfire {
    /// Missed ticks make no jobs; the schedule resumes at its next tick.
    Skip,
    /// All missed ticks together make one job, now.
    RunOnce,
    /// Each missed tick makes its job, the most recent `max` of them.
    CatchUp {
        /// Bound on the jobs made for missed ticks.
        max: u32,
    },
}

/// A new schedule, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    /// Unique name.
    pub name: String,
    /// Expression.
    pub cron: String,
    /// Zone.
    pub time_zone: String,
    /// What each tick makes.
    pub template: JobTemplate,
    /// Misfire policy.
    pub misfire: Misfire,
    /// First tick (ms).
    pub next_run_at_ms: u64,
}
