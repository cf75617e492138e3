//! The job scheduler engine: delayed, recurring and on-demand jobs, each run effectively
//! once. It knows nothing of HTTP; `girder-http` serves it at `/v1/jobs`,
//! `/v1/queues/{q}/claim` and `/v1/schedules`.
//!
//! # The guarantee
//!
//! "Exactly once" here means:
//! - **not zero times**: an acknowledged enqueue is committed to the store (SQLite with
//!   `synchronous = FULL`) before it is answered, and a job leaves the store's waiting
//!   states only by a committed outcome; a worker that dies holding a job loses its
//!   lease, and the job runs again;
//! - **at most one commit**: each claim increments the job's attempt number, and that
//!   number is the claim's *fencing token*; `complete`, `fail` and `heartbeat` are
//!   accepted only with the current token while the job is running, so a worker whose
//!   lease expired and whose job was reclaimed cannot commit (it gets a conflict);
//! - a handler may still be *started* more than once (a worker that crashes after its
//!   side effect but before `complete`): side effects outside the store need the
//!   job's stable identity — the webhook executor sends `Idempotency-Key` (the job id),
//!   the same on every attempt.
//!
//! # Map
//! - [`cron`]: 5/6-field cron expressions on a time zone's wall clock, with the DST rule.
//! - [`schedule`]: which jobs a schedule's due ticks make (misfire policies).
//! - [`model`]: jobs, attempts, schedules.
//! - [`store`]: the [`store::Store`] trait and its SQLite implementation.
//! - [`engine`]: the [`Scheduler`]: validation, long-poll claims, background duties.
//! - [`webhook`]: the built-in executor of `http` jobs, a circuit breaker per host.

pub mod cron;
pub mod engine;
pub mod model;
pub mod schedule;
pub mod store;
pub mod webhook;

pub use engine::{
    Clock, EnqueueRequest, SchedConfig, SchedError, SchedMetrics, ScheduleRequest, Scheduler,
    SystemClock,
};
pub use model::{
    Attempt, BackoffSpec, Claimed, Enqueued, Job, JobId, JobKind, JobState, Misfire, Schedule,
};
pub use store::pg::{PgOptions, PgStore};
pub use store::sqlite::SqliteStore;
pub use store::{Finish, Finished, ListFilter, Outcome, Store, StoreError};

/// Formats milliseconds since the epoch as RFC 3339 UTC (`2026-11-28T14:00:00.123Z`).
pub fn format_ms(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms.min(i64::MAX as u64) as i64)
        .map_or_else(|_| "9999-12-31T23:59:59Z".into(), |t| t.to_string())
}

/// Parses an RFC 3339 timestamp with an offset (`2026-11-28T15:00:00+01:00`) into
/// milliseconds since the epoch; `None` if it is not one or is before 1970.
pub fn parse_time(text: &str) -> Option<u64> {
    let t: jiff::Timestamp = text.parse().ok()?;
    u64::try_from(t.as_millisecond()).ok()
}
