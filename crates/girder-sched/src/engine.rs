//! The scheduler engine: validates requests, calls the store, wakes long-polling
//! claimers when jobs become due, and runs the background duties (lease reaping,
//! schedule ticks, pruning, depth gauges).
//!
//! Timing without polling the store every second: a claimer that finds nothing asks the
//! store for its queue's next due time and sleeps until then, or until an enqueue on
//! this node wakes it, or until its own deadline. The background task sleeps until the
//! next lease end or schedule tick. The only periodic store query is `poll_interval`
//! (default 1 s), which picks up what *other* nodes sharing the store enqueued.

use crate::cron::{time_zone, Cron};
use crate::model::{
    BackoffSpec, Claimed, Dedup, Enqueued, Job, JobId, JobKind, JobState, JobTemplate, Misfire,
    NewJob, NewSchedule, Refusal, Schedule,
};
use crate::schedule;
use crate::store::{ClaimSpec, Finish, Finished, ListFilter, Outcome, Store, StoreError};
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Longest queue name.
pub const MAX_QUEUE_LEN: usize = 128;
/// Most attempts a job may be given.
pub const MAX_ATTEMPTS: u32 = 1000;
/// Priority range.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;
/// Longest delay / farthest `run_at` (ten years).
pub const MAX_DELAY_MS: u64 = 10 * 366 * 24 * 3_600_000;
/// Longest lease, timeout and long-poll wait.
pub const MAX_LEASE_MS: u64 = 24 * 3_600_000;
/// Longest claim wait (SQS's long-poll limit, as topics' receive).
pub const MAX_WAIT_MS: u64 = 20_000;
/// Most jobs per claim.
pub const MAX_CLAIM: u32 = 1000;

/// Wall-clock time in ms. Tests substitute a virtual clock.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// Engine settings (the `[scheduler]` section of the node's configuration).
#[derive(Debug, Clone)]
pub struct SchedConfig {
    /// Lease when a claim names none.
    pub default_lease_ms: u64,
    /// Attempts when a job names none.
    pub default_max_attempts: u32,
    /// How long an `idempotency_key` holds when the job gives no `unique_for`.
    pub idempotency_window_ms: u64,
    /// A tick older than this when fired counts as missed (its schedule's misfire
    /// policy applies).
    pub misfire_threshold_ms: u64,
    /// Finished jobs are deleted this long after they finished.
    pub retention_ms: u64,
    /// How often claimers and the background task look at the store for work other
    /// nodes made.
    pub poll_interval_ms: u64,
    /// Per-queue limit on running jobs.
    pub concurrency: HashMap<String, u32>,
    /// Per-queue limit on attempts started, on this node (GCRA, burst = limit).
    pub rate_limits: HashMap<String, girder_limit::Quota>,
    /// The name recorded as the worker of the webhook executor's attempts.
    pub node_name: String,
}

impl Default for SchedConfig {
    fn default() -> Self {
        SchedConfig {
            default_lease_ms: 30_000,
            default_max_attempts: 20,
            idempotency_window_ms: 24 * 3_600_000,
            misfire_threshold_ms: 60_000,
            retention_ms: 7 * 24 * 3_600_000,
            poll_interval_ms: 1_000,
            concurrency: HashMap::new(),
            rate_limits: HashMap::new(),
            node_name: "girder".into(),
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SchedError {
    /// A field is wrong; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// No such job or schedule.
    #[error("{0}")]
    NotFound(String),
    /// The fencing token is stale, or the job's state does not allow the operation.
    #[error("{0}")]
    Conflict(String),
    /// The store failed; nothing was committed.
    #[error(transparent)]
    Unavailable(#[from] StoreError),
}

/// An enqueue request, before validation.
#[derive(Debug, Clone, Default)]
pub struct EnqueueRequest {
    /// Queue.
    pub queue: String,
    /// Payload.
    pub payload: serde_json::Value,
    /// Webhook target (makes an `http` job).
    pub url: Option<String>,
    /// Absolute due time (ms).
    pub run_at_ms: Option<u64>,
    /// Relative due time (ms).
    pub delay_ms: Option<u64>,
    /// Priority.
    pub priority: Option<i32>,
    /// Attempts.
    pub max_attempts: Option<u32>,
    /// Retry delays.
    pub backoff: Option<BackoffSpec>,
    /// Per-attempt limit.
    pub timeout_ms: Option<u64>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Uniqueness window (ms).
    pub unique_for_ms: Option<u64>,
}

/// A schedule request, before validation.
#[derive(Debug, Clone)]
pub struct ScheduleRequest {
    /// Unique name.
    pub name: String,
    /// Cron expression.
    pub cron: String,
    /// IANA zone (default UTC).
    pub time_zone: Option<String>,
    /// What each tick enqueues (its `run_at`/`delay`/keys are ignored).
    pub job: EnqueueRequest,
    /// After downtime.
    pub misfire: Misfire,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    queue: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DepthLabel {
    queue: String,
    state: String,
}

/// Most distinct queues that get their own metric labels; the rest are counted under
/// `queue="other"`. Queue names are client input: without a cap, a client enqueuing to
/// random queues would grow every series family without bound.
pub const MAX_QUEUE_LABELS: usize = 256;

/// The scheduler's metrics; register them with [`SchedMetrics::register`].
#[derive(Debug, Clone)]
pub struct SchedMetrics {
    labelled: Arc<Mutex<std::collections::HashSet<String>>>,
    enqueued: Family<QueueLabel, Counter>,
    claimed: Family<QueueLabel, Counter>,
    finished: Family<OutcomeLabel, Counter>,
    lateness: Histogram,
    depth: Family<DepthLabel, Gauge>,
}

impl Default for SchedMetrics {
    fn default() -> Self {
        SchedMetrics {
            labelled: Arc::default(),
            enqueued: Family::default(),
            claimed: Family::default(),
            finished: Family::default(),
            lateness: Histogram::new([
                0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
            ]),
            depth: Family::default(),
        }
    }
}

impl SchedMetrics {
    /// Registers every series with the node's registry.
    pub fn register(&self, registry: &girder_runtime::Metrics) {
        registry.register(
            "girder_sched_jobs_enqueued",
            "Jobs created (duplicates returned for an idempotency key not counted)",
            self.enqueued.clone(),
        );
        registry.register(
            "girder_sched_jobs_claimed",
            "Attempts started (claims by workers and by the webhook executor)",
            self.claimed.clone(),
        );
        registry.register(
            "girder_sched_attempts_finished",
            "Attempts ended, by outcome: succeeded, failed, dead, lease_expired",
            self.finished.clone(),
        );
        registry.register(
            "girder_sched_start_lateness_seconds",
            "Claim time minus due time of each started attempt",
            self.lateness.clone(),
        );
        registry.register(
            "girder_sched_jobs",
            "Jobs in the store per queue and state (refreshed every few seconds)",
            self.depth.clone(),
        );
    }

    /// The label value for `queue`: itself for the first [`MAX_QUEUE_LABELS`] queues
    /// seen, `other` after that.
    fn queue_label(&self, queue: &str) -> String {
        let mut seen = self.labelled.lock();
        if seen.contains(queue) {
            return queue.to_owned();
        }
        if seen.len() < MAX_QUEUE_LABELS {
            seen.insert(queue.to_owned());
            return queue.to_owned();
        }
        "other".to_owned()
    }

    fn queue(&self, queue: &str) -> QueueLabel {
        QueueLabel {
            queue: self.queue_label(queue),
        }
    }

    fn finished(&self, queue: &str, outcome: &str) {
        self.finished
            .get_or_create(&OutcomeLabel {
                queue: self.queue_label(queue),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

/// The scheduler.
pub struct Scheduler {
    store: Arc<dyn Store>,
    config: SchedConfig,
    clock: Arc<dyn Clock>,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Woken when a schedule is created or resumed, or a lease may end sooner.
    background: Notify,
    /// Rate-limited queues' limiters. The lock serializes claims on such a queue, so
    /// "read what is left, claim at most that, spend what was claimed" cannot race.
    limiters: HashMap<String, tokio::sync::Mutex<girder_limit::DirectLimiter>>,
    metrics: SchedMetrics,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn valid_queue(queue: &str) -> Result<(), SchedError> {
    if queue.is_empty()
        || queue.len() > MAX_QUEUE_LEN
        || !queue
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
    {
        return Err(SchedError::Invalid(format!(
            "queue: must be 1 to {MAX_QUEUE_LEN} characters of A-Z a-z 0-9 . _ - :"
        )));
    }
    Ok(())
}

/// `^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$`, at most 2048 bytes: the
/// pattern the OpenAPI document gives, checked exactly (a host that does not resolve or
/// a port above 65535 fails the attempt, not the enqueue).
pub fn valid_url(url: &str) -> bool {
    let rest = match url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    {
        Some(r) if url.len() <= 2048 => r,
        _ => return false,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        && path.bytes().all(|b| (b'!'..=b'~').contains(&b))
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &str,
    value: T,
    lo: T,
    hi: T,
) -> Result<T, SchedError> {
    if value < lo || value > hi {
        return Err(SchedError::Invalid(format!(
            "{field}: {value} is outside {lo}..={hi}"
        )));
    }
    Ok(value)
}

fn fenced(id: JobId, token: Option<u64>, refusal: Refusal) -> SchedError {
    match refusal {
        Refusal::NotFound => SchedError::NotFound(format!("no job {id}")),
        Refusal::Fenced { state, attempt } => {
            let state = state.as_str();
            let why = match token {
                Some(t) if t > u64::from(attempt) || t == 0 => {
                    format!("fencing token {t} was never issued for it")
                }
                Some(t) if state == "running" => format!(
                    "fencing token {t} is stale: the job was claimed again (attempt {attempt})"
                ),
                Some(t) => format!("fencing token {t} no longer holds it"),
                None => "it cannot be changed now".to_owned(),
            };
            SchedError::Conflict(format!("job {id} is {state} at attempt {attempt}: {why}"))
        }
        Refusal::LeaseExpired { lease_until_ms } => SchedError::Conflict(format!(
            "job {id}: the lease of this attempt ended at {}; the attempt is over and \
             the job will be retried",
            crate::format_ms(lease_until_ms)
        )),
        Refusal::WrongState(state) => {
            SchedError::Conflict(format!("job {id} is {}", state.as_str()))
        }
    }
}

impl Scheduler {
    /// An engine over `store`.
    pub fn new(store: Arc<dyn Store>, config: SchedConfig, clock: Arc<dyn Clock>) -> Arc<Self> {
        let limiters = config
            .rate_limits
            .iter()
            .filter_map(
                |(queue, quota)| match girder_limit::DirectLimiter::new(*quota) {
                    Ok(l) => Some((queue.clone(), tokio::sync::Mutex::new(l))),
                    Err(e) => {
                        tracing::error!(queue, error = %e, "invalid rate limit ignored");
                        None
                    }
                },
            )
            .collect();
        let sched = Arc::new(Scheduler {
            limiters,
            store,
            config,
            clock,
            wakers: Mutex::new(HashMap::new()),
            background: Notify::new(),
            metrics: SchedMetrics::default(),
        });
        // Other nodes' new jobs wake this node's claimers too (the webhook executor's
        // as well: `wake` covers it). Weak: the listener must not keep the engine alive.
        let weak = Arc::downgrade(&sched);
        sched.store.on_remote_change(Arc::new(move |queue: &str| {
            if let Some(s) = weak.upgrade() {
                s.wake(queue);
            }
        }));
        sched
    }

    /// The engine's metrics.
    pub fn metrics(&self) -> &SchedMetrics {
        &self.metrics
    }

    /// The configuration.
    pub fn config(&self) -> &SchedConfig {
        &self.config
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn waker(&self, queue: &str) -> Arc<Notify> {
        let mut wakers = self.wakers.lock();
        if let Some(w) = wakers.get(queue) {
            return Arc::clone(w);
        }
        let w = Arc::new(Notify::new());
        wakers.insert(queue.to_owned(), Arc::clone(&w));
        w
    }

    /// Forgets `queue`'s waker if nobody else holds it (the map must not keep one per
    /// queue name a client ever claimed from).
    fn release_waker(&self, queue: &str, waker: Arc<Notify>) {
        let mut wakers = self.wakers.lock();
        // Ours and the map's: nobody else is waiting.
        if Arc::strong_count(&waker) == 2 {
            wakers.remove(queue);
        }
    }

    fn wake(&self, queue: &str) {
        if let Some(w) = self.wakers.lock().get(queue) {
            w.notify_waiters();
        }
        // The webhook executor claims from every queue.
        if let Some(w) = self.wakers.lock().get("") {
            w.notify_waiters();
        }
    }

    fn new_job(&self, now: u64, req: &EnqueueRequest) -> Result<NewJob, SchedError> {
        valid_queue(&req.queue)?;
        let run_at_ms = match (req.run_at_ms, req.delay_ms) {
            (Some(_), Some(_)) => {
                return Err(SchedError::Invalid(
                    "run_at: give run_at or delay_ms, not both".into(),
                ))
            }
            (Some(at), None) => {
                let latest = now.saturating_add(MAX_DELAY_MS);
                if at > latest {
                    return Err(SchedError::Invalid(format!(
                        "run_at: must be no later than {} (ten years from now)",
                        crate::format_ms(latest)
                    )));
                }
                at
            }
            (None, Some(d)) => now + range("delay_ms", d, 0, MAX_DELAY_MS)?,
            (None, None) => now,
        };
        let kind = match &req.url {
            None => JobKind::External,
            Some(url) => {
                let ok = valid_url(url);
                if !ok {
                    return Err(SchedError::Invalid(
                        "url: must be an absolute http:// or https:// URL with a host".into(),
                    ));
                }
                JobKind::Http { url: url.clone() }
            }
        };
        let backoff = req.backoff.unwrap_or_default();
        range("backoff.base_ms", backoff.base_ms, 1, MAX_LEASE_MS)?;
        range(
            "backoff.max_ms",
            backoff.max_ms,
            backoff.base_ms,
            MAX_DELAY_MS,
        )?;
        let dedup = match (&req.idempotency_key, req.unique_for_ms) {
            (None, None) => None,
            (key, window) => {
                let window = match window {
                    Some(w) => range("unique_for_ms", w, 1, MAX_DELAY_MS)?,
                    None => self.config.idempotency_window_ms,
                };
                let key = match key {
                    Some(k) if k.is_empty() || k.chars().count() > 256 || k.contains('\0') => {
                        return Err(SchedError::Invalid(
                            "idempotency_key: must be 1 to 256 characters, none of them NUL".into(),
                        ))
                    }
                    Some(k) => format!("k:{k}"),
                    // `unique_for` alone: jobs are the same if their payloads are.
                    None => format!(
                        "p:{:032x}",
                        xxhash_rust::xxh3::xxh3_128(req.payload.to_string().as_bytes())
                    ),
                };
                Some(Dedup {
                    key,
                    until_ms: now.saturating_add(window),
                })
            }
        };
        Ok(NewJob {
            queue: req.queue.clone(),
            kind,
            payload: req.payload.clone(),
            run_at_ms,
            priority: range(
                "priority",
                req.priority.unwrap_or(0),
                *PRIORITY_RANGE.start(),
                *PRIORITY_RANGE.end(),
            )?,
            max_attempts: range(
                "max_attempts",
                req.max_attempts.unwrap_or(self.config.default_max_attempts),
                1,
                MAX_ATTEMPTS,
            )?,
            backoff,
            timeout_ms: req
                .timeout_ms
                .map(|t| range("timeout_ms", t, 1, MAX_LEASE_MS))
                .transpose()?,
            dedup,
            schedule_id: None,
        })
    }

    /// Creates a job (or returns the live one holding its idempotency key).
    pub async fn enqueue(&self, req: EnqueueRequest) -> Result<Enqueued, SchedError> {
        let mut one = self.enqueue_many(vec![req], false).await?;
        one.pop().ok_or(SchedError::Unavailable(StoreError::Closed))
    }

    /// Creates jobs in one transaction, all or none. A bad field is reported as
    /// `jobs[i].field` when `indexed`.
    pub async fn enqueue_many(
        &self,
        reqs: Vec<EnqueueRequest>,
        indexed: bool,
    ) -> Result<Vec<Enqueued>, SchedError> {
        let now = self.now();
        let jobs = reqs
            .iter()
            .enumerate()
            .map(|(i, req)| {
                self.new_job(now, req).map_err(|e| match e {
                    SchedError::Invalid(m) if indexed => {
                        SchedError::Invalid(format!("jobs[{i}].{m}"))
                    }
                    e => e,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let enqueued = self.store.enqueue(now, jobs).await?;
        let mut woken: Vec<&str> = Vec::new();
        for e in enqueued.iter().filter(|e| !e.duplicate) {
            self.metrics
                .enqueued
                .get_or_create(&self.metrics.queue(&e.job.queue))
                .inc();
            // A future job also wakes claimers: they re-read the next due time.
            if !woken.contains(&e.job.queue.as_str()) {
                woken.push(&e.job.queue);
                self.wake(&e.job.queue);
            }
        }
        Ok(enqueued)
    }

    /// One job with its attempts.
    pub async fn get(&self, id: JobId) -> Result<Job, SchedError> {
        self.store
            .get(self.now(), id)
            .await?
            .ok_or_else(|| SchedError::NotFound(format!("no job {id}")))
    }

    /// A page of jobs.
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<Job>, SchedError> {
        if let Some(q) = &filter.queue {
            valid_queue(q)?;
        }
        Ok(self.store.list(self.now(), filter).await?)
    }

    /// Cancels a job that has not finished.
    pub async fn cancel(&self, id: JobId) -> Result<Job, SchedError> {
        let job = self
            .store
            .cancel(self.now(), id)
            .await?
            .map_err(|r| fenced(id, None, r))?;
        self.metrics.finished(&job.queue, "cancelled");
        Ok(job)
    }

    /// Makes a dead or cancelled job available again.
    pub async fn retry(&self, id: JobId) -> Result<Job, SchedError> {
        let job = self
            .store
            .retry(self.now(), id)
            .await?
            .map_err(|r| fenced(id, None, r))?;
        self.wake(&job.queue);
        Ok(job)
    }

    /// Claims up to `max_jobs` due jobs of `queue`, waiting up to `wait_ms` for one.
    pub async fn claim(
        &self,
        queue: &str,
        max_jobs: u32,
        lease_ms: Option<u64>,
        wait_ms: u64,
        worker: &str,
    ) -> Result<Vec<Claimed>, SchedError> {
        valid_queue(queue)?;
        if worker.contains('\0') {
            return Err(SchedError::Invalid("worker: must not contain NUL".into()));
        }
        let spec = ClaimSpec {
            queue: Some(queue.to_owned()),
            http: false,
            max_jobs: range("max_jobs", max_jobs, 1, MAX_CLAIM)?,
            lease_ms: range(
                "lease_ms",
                lease_ms.unwrap_or(self.config.default_lease_ms),
                1,
                MAX_LEASE_MS,
            )?,
            worker: worker.to_owned(),
            concurrency: self.config.concurrency.get(queue).copied(),
        };
        range("wait_ms", wait_ms, 0, MAX_WAIT_MS)?;
        self.claim_spec(spec, wait_ms).await
    }

    /// The claim loop shared by workers and the webhook executor.
    pub(crate) async fn claim_spec(
        &self,
        spec: ClaimSpec,
        wait_ms: u64,
    ) -> Result<Vec<Claimed>, SchedError> {
        let key = spec.queue.clone().unwrap_or_default();
        let waker = self.waker(&key);
        let result = self.claim_loop(spec, wait_ms, &waker).await;
        self.release_waker(&key, waker);
        result
    }

    async fn claim_loop(
        &self,
        spec: ClaimSpec,
        wait_ms: u64,
        waker: &Notify,
    ) -> Result<Vec<Claimed>, SchedError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
        loop {
            // Register interest before looking, so an enqueue between the look and the
            // sleep still wakes us.
            let notified = waker.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let limiter = match spec.queue.as_deref() {
                Some(q) => match self.limiters.get(q) {
                    Some(l) => Some(l.lock().await),
                    None => None,
                },
                None => None,
            };
            let mut this_spec = spec.clone();
            let mut rate_wait = None;
            if let Some(l) = &limiter {
                let left = l.check(0).remaining.min(u64::from(spec.max_jobs)) as u32;
                if left == 0 {
                    rate_wait = Some(l.check(1).retry_after);
                }
                this_spec.max_jobs = left;
            }
            let now = self.now();
            let claimed = if rate_wait.is_some() {
                Vec::new()
            } else {
                self.store.claim(now, this_spec).await?
            };
            if let Some(l) = &limiter {
                if !claimed.is_empty() {
                    l.check(claimed.len() as u64);
                }
            }
            drop(limiter);
            if !claimed.is_empty() {
                for job in &claimed {
                    self.metrics
                        .claimed
                        .get_or_create(&self.metrics.queue(&job.queue))
                        .inc();
                    self.metrics
                        .lateness
                        .observe(now.saturating_sub(job.run_at_ms) as f64 / 1000.0);
                }
                return Ok(claimed);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(claimed);
            }
            // Sleep until the next due job or lease end (a lease end frees a job for
            // reclaim and a concurrency slot), the poll interval, or the deadline.
            let (due, lease) = self
                .store
                .next_events(spec.queue.clone(), spec.http)
                .await?;
            let mut sleep = left.min(Duration::from_millis(self.config.poll_interval_ms));
            let now = self.now();
            for at in [due, lease].into_iter().flatten() {
                sleep = sleep.min(Duration::from_millis(at.saturating_sub(now)));
            }
            if let Some(wait) = rate_wait {
                // Rate-limited: nothing may start before the limiter allows it.
                sleep = wait.max(Duration::from_millis(1)).min(left);
            } else if sleep.is_zero() {
                // Due but not claimable (concurrency limit full): back off briefly.
                sleep = Duration::from_millis(5).min(left);
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Extends a running job's lease.
    pub async fn heartbeat(
        &self,
        id: JobId,
        token: u64,
        lease_ms: Option<u64>,
    ) -> Result<u64, SchedError> {
        let lease = range(
            "lease_ms",
            lease_ms.unwrap_or(self.config.default_lease_ms),
            1,
            MAX_LEASE_MS,
        )?;
        self.store
            .heartbeat(self.now(), id, token, lease)
            .await?
            .map_err(|r| fenced(id, Some(token), r))
    }

    /// Commits success for the attempt holding `token`.
    pub async fn complete(
        &self,
        id: JobId,
        token: u64,
        result: Option<serde_json::Value>,
    ) -> Result<Job, SchedError> {
        let outcome = Outcome::Succeeded(result);
        self.finish_one(id, token, outcome).await
    }

    /// Commits failure for the attempt holding `token`; it retries after its backoff
    /// unless `retry` is false or the attempts are spent (then it is dead).
    pub async fn fail(
        &self,
        id: JobId,
        token: u64,
        error: String,
        retry: bool,
    ) -> Result<Job, SchedError> {
        // Text columns cannot hold NUL (PostgreSQL refuses it): a worker's report is
        // kept with NULs shown as U+FFFD rather than lost.
        let mut error = error.replace('\0', "\u{FFFD}");
        if error.len() > 4096 {
            let mut cut = 4096;
            while !error.is_char_boundary(cut) {
                cut -= 1;
            }
            error.truncate(cut);
        }
        let outcome = Outcome::Failed { error, retry };
        self.finish_one(id, token, outcome).await
    }

    async fn finish_one(&self, id: JobId, token: u64, outcome: Outcome) -> Result<Job, SchedError> {
        let item = Finish {
            id,
            token,
            outcome,
            want_job: true,
        };
        let finished = self
            .finish_many(vec![item])
            .await?
            .pop()
            .unwrap_or(Err(SchedError::Unavailable(StoreError::Closed)))?;
        finished
            .job
            .ok_or(SchedError::Unavailable(StoreError::Closed))
    }

    /// Commits several outcomes in one transaction; each answer is what happened to the
    /// job, or why its token was refused (the others still commit).
    pub async fn finish_many(
        &self,
        items: Vec<Finish>,
    ) -> Result<Vec<Result<Finished, SchedError>>, SchedError> {
        let ids: Vec<(JobId, u64)> = items.iter().map(|f| (f.id, f.token)).collect();
        let answers = self.store.finish(self.now(), items).await?;
        let mut woken: Vec<String> = Vec::new();
        let mut background = false;
        let answers = answers
            .into_iter()
            .zip(ids)
            .map(|(answer, (id, token))| {
                let done = answer.map_err(|r| fenced(id, Some(token), r))?;
                let outcome = match done.state {
                    JobState::Succeeded => "succeeded",
                    JobState::Dead => "dead",
                    _ => "failed",
                };
                self.metrics.finished(&done.queue, outcome);
                background |= outcome != "succeeded";
                // A concurrency slot is free; a retry may be due.
                if !woken.contains(&done.queue) {
                    self.wake(&done.queue);
                    woken.push(done.queue.clone());
                }
                Ok(done)
            })
            .collect();
        if background {
            self.background.notify_one();
        }
        Ok(answers)
    }

    fn template(&self, req: &EnqueueRequest) -> Result<JobTemplate, SchedError> {
        let job = self.new_job(self.now(), req).map_err(|e| match e {
            SchedError::Invalid(m) => SchedError::Invalid(format!("job.{m}")),
            e => e,
        })?;
        Ok(JobTemplate {
            queue: job.queue,
            kind: job.kind,
            payload: job.payload,
            priority: job.priority,
            max_attempts: job.max_attempts,
            backoff: job.backoff,
            timeout_ms: job.timeout_ms,
        })
    }

    /// Creates a schedule; its first tick is the first after now. `Err(Conflict)` if the
    /// name is taken by a different schedule; the same request again returns the
    /// existing one (`Ok((schedule, false))`).
    pub async fn create_schedule(
        &self,
        req: ScheduleRequest,
    ) -> Result<(Schedule, bool), SchedError> {
        if req.name.is_empty()
            || req.name.chars().count() > MAX_QUEUE_LEN
            || req.name.contains('\0')
        {
            return Err(SchedError::Invalid(format!(
                "name: must be 1 to {MAX_QUEUE_LEN} characters, none of them NUL"
            )));
        }
        let cron = Cron::parse(&req.cron).map_err(|e| SchedError::Invalid(format!("cron: {e}")))?;
        let zone_name = req.time_zone.clone().unwrap_or_else(|| "UTC".into());
        let tz =
            time_zone(&zone_name).map_err(|e| SchedError::Invalid(format!("time_zone: {e}")))?;
        if let Misfire::CatchUp { max } = req.misfire {
            range("misfire.max", max, 1, 1000)?;
        }
        let template = self.template(&req.job)?;
        let now = self.now();
        let next = schedule::next_tick(&cron, &tz, now)
            .ok_or_else(|| SchedError::Invalid("cron: never runs".into()))?;
        let new = NewSchedule {
            name: req.name,
            cron: cron.to_string(),
            time_zone: zone_name,
            template,
            misfire: req.misfire,
            next_run_at_ms: next,
        };
        match self.store.create_schedule(now, new.clone()).await? {
            Ok(s) => {
                self.background.notify_one();
                Ok((s, true))
            }
            Err(existing)
                if existing.cron == new.cron
                    && existing.time_zone == new.time_zone
                    && existing.template == new.template
                    && existing.misfire == new.misfire =>
            {
                Ok((existing, false))
            }
            Err(existing) => Err(SchedError::Conflict(format!(
                "a different schedule is named {:?} (id {})",
                existing.name, existing.id
            ))),
        }
    }

    /// One schedule.
    pub async fn get_schedule(&self, id: i64) -> Result<Schedule, SchedError> {
        self.store
            .get_schedule(id)
            .await?
            .ok_or_else(|| SchedError::NotFound(format!("no schedule {id}")))
    }

    /// A page of schedules.
    pub async fn list_schedules(
        &self,
        after_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Schedule>, SchedError> {
        Ok(self.store.list_schedules(after_id, limit).await?)
    }

    /// Deletes a schedule.
    pub async fn delete_schedule(&self, id: i64) -> Result<(), SchedError> {
        if self.store.delete_schedule(id).await? {
            Ok(())
        } else {
            Err(SchedError::NotFound(format!("no schedule {id}")))
        }
    }

    /// Pauses or resumes; a resumed schedule's next tick is the first after now (ticks
    /// while paused make no jobs).
    pub async fn set_paused(&self, id: i64, paused: bool) -> Result<Schedule, SchedError> {
        let current = self.get_schedule(id).await?;
        let cron = Cron::parse(&current.cron)
            .map_err(|e| SchedError::Invalid(format!("stored cron: {e}")))?;
        let tz = time_zone(&current.time_zone)
            .map_err(|e| SchedError::Invalid(format!("stored time_zone: {e}")))?;
        let next = schedule::next_tick(&cron, &tz, self.now()).unwrap_or(u64::MAX / 2);
        let s = self
            .store
            .set_paused(id, paused, next)
            .await?
            .ok_or_else(|| SchedError::NotFound(format!("no schedule {id}")))?;
        self.background.notify_one();
        Ok(s)
    }

    /// Fires every due schedule once; returns the earliest next tick.
    pub async fn fire_due_schedules(&self) -> Result<Option<u64>, SchedError> {
        let now = self.now();
        let (due, mut next) = self.store.due_schedules(now).await?;
        for s in due {
            let (Ok(cron), Ok(tz)) = (Cron::parse(&s.cron), time_zone(&s.time_zone)) else {
                tracing::error!(
                    schedule = s.id,
                    "stored schedule does not parse; pausing it"
                );
                let _ = self.store.set_paused(s.id, true, s.next_run_at_ms).await;
                continue;
            };
            let Some(plan) = schedule::plan(
                &cron,
                &tz,
                s.next_run_at_ms,
                now,
                s.misfire,
                self.config.misfire_threshold_ms,
            ) else {
                let _ = self.store.set_paused(s.id, true, s.next_run_at_ms).await;
                continue;
            };
            let t = &s.template;
            let jobs: Vec<NewJob> = plan
                .jobs
                .iter()
                .map(|tick| NewJob {
                    queue: t.queue.clone(),
                    kind: t.kind.clone(),
                    payload: t.payload.clone(),
                    run_at_ms: tick.run_at_ms,
                    priority: t.priority,
                    max_attempts: t.max_attempts,
                    backoff: t.backoff,
                    timeout_ms: t.timeout_ms,
                    dedup: Some(Dedup {
                        key: format!("s:{}:{}", s.id, tick.tick_ms),
                        until_ms: u64::MAX / 2,
                    }),
                    schedule_id: Some(s.id),
                })
                .collect();
            let made = jobs.len();
            let fired = self
                .store
                .fire_schedule(
                    now,
                    s.id,
                    s.next_run_at_ms,
                    plan.next_ms,
                    plan.last_tick_ms,
                    jobs,
                )
                .await?;
            if fired && made > 0 {
                self.metrics
                    .enqueued
                    .get_or_create(&self.metrics.queue(&t.queue))
                    .inc_by(made as u64);
                self.wake(&t.queue);
            }
            next = Some(next.map_or(plan.next_ms, |n: u64| n.min(plan.next_ms)));
        }
        Ok(next)
    }

    /// Reaps expired leases; wakes the queues whose jobs came back.
    pub async fn reap(&self) -> Result<usize, SchedError> {
        let reaped = self.store.reap(self.now()).await?;
        for r in &reaped {
            self.metrics.finished(&r.queue, "lease_expired");
            self.wake(&r.queue);
        }
        Ok(reaped.len())
    }

    async fn refresh_depth(&self) -> Result<(), SchedError> {
        let counts = self.store.counts(self.now()).await?;
        let mut depth: HashMap<DepthLabel, i64> = HashMap::new();
        for (queue, state, n) in counts {
            let label = DepthLabel {
                queue: self.metrics.queue_label(&queue),
                state: state.as_str().to_owned(),
            };
            *depth.entry(label).or_default() += n as i64;
        }
        self.metrics.depth.clear();
        for (label, n) in depth {
            self.metrics.depth.get_or_create(&label).set(n);
        }
        Ok(())
    }

    /// The background duties, until `shutdown`: schedule ticks (on time, woken by the
    /// next tick), lease reaping (woken by the next lease end), pruning and the depth
    /// gauges (every few seconds). A store error is logged and retried after a second.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last_housekeeping = tokio::time::Instant::now() - Duration::from_secs(60);
        loop {
            let notified = self.background.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut sleep = Duration::from_millis(self.config.poll_interval_ms);
            match self.tick_once(&mut last_housekeeping).await {
                Ok(Some(next)) => {
                    let now = self.now();
                    sleep = sleep.min(Duration::from_millis(next.saturating_sub(now)));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "scheduler background duty failed; retrying");
                    sleep = Duration::from_secs(1);
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = notified => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// One pass of the background duties; returns the earliest next event.
    async fn tick_once(
        &self,
        last_housekeeping: &mut tokio::time::Instant,
    ) -> Result<Option<u64>, SchedError> {
        let next_tick = self.fire_due_schedules().await?;
        self.reap().await?;
        let (_, next_lease) = self.store.next_events(None, false).await?;
        if last_housekeeping.elapsed() >= Duration::from_secs(5) {
            *last_housekeeping = tokio::time::Instant::now();
            let before = self.now().saturating_sub(self.config.retention_ms);
            let pruned = self.store.prune(before, 10_000).await?;
            if pruned > 0 {
                tracing::debug!(pruned, "pruned finished jobs");
            }
            self.refresh_depth().await?;
        }
        Ok([next_tick, next_lease].into_iter().flatten().min())
    }
}
