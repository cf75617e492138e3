//! Circuit breaker: stop calling a dependency that keeps failing, then probe it.
//!
//! States and transitions:
//!
//! * **Closed** — calls pass. Trips to Open on [`TripPolicy::ConsecutiveFailures`]
//!   (the N-th failure in a row) or [`TripPolicy::FailureRate`] (failure rate at or
//!   over the threshold in a sliding window holding at least `min_calls` calls).
//! * **Open** — calls are rejected with [`Error::CircuitOpen`] without running. The
//!   first call at or after `open_wait` moves the breaker to Half-open (the move is
//!   lazy: no timer task runs, so an idle breaker stays Open in [`CircuitBreaker::stats`]).
//! * **Half-open** — up to `half_open_probes` calls pass; more are rejected. Any probe
//!   failure re-opens (and restarts the wait); once every probe has succeeded the
//!   breaker closes with a fresh window. A probe dropped before finishing (cancelled)
//!   frees its slot for another caller.
//!
//! Invariants: the closed path touches only atomics (one load to admit; one
//! `fetch_add` plus a load per outcome in consecutive-failure mode), never the clock
//! or a lock. Every state change bumps a generation number packed with the state in
//! one `AtomicU64`; an outcome is only applied if the generation it was admitted
//! under is still current, so a slow call started before the breaker opened cannot
//! disturb the next period's counts.
//!
//! Time comes from tokio's clock, so `tokio::time::pause()` drives the open wait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::window::{CountWindow, TimeWindow};
use crate::Error;

/// The three breaker states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls pass; outcomes are counted.
    Closed,
    /// Calls are rejected until the wait has passed.
    Open,
    /// A limited number of probe calls pass.
    HalfOpen,
}

impl CircuitState {
    fn from_bits(bits: u64) -> Self {
        match bits & STATE_MASK {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }

    fn bits(self) -> u64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        })
    }
}

/// One state change, as given to the transition listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before the change.
    pub from: CircuitState,
    /// State after the change.
    pub to: CircuitState,
}

/// Which calls a failure-rate window looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `n` calls.
    Count(usize),
    /// Calls in the last span (kept in 10 slices, so a call counts for between 90 %
    /// and 100 % of the span).
    Time(Duration),
}

/// When a closed breaker opens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TripPolicy {
    /// Open on the N-th failure in a row (a success resets the run). The cheapest
    /// mode: no lock and no clock on the closed path.
    ConsecutiveFailures(u32),
    /// Open when `failures / calls >= threshold` over the window, once the window
    /// holds at least `min_calls` calls.
    FailureRate {
        /// Failure ratio in `(0, 1]`, e.g. 0.5.
        threshold: f64,
        /// Which calls count.
        window: SlidingWindow,
        /// Do not judge on fewer calls than this.
        min_calls: u32,
    },
}

/// Circuit breaker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// When to open.
    pub trip: TripPolicy,
    /// How long to stay open before letting probes through.
    pub open_wait: Duration,
    /// Probes allowed in half-open; all must succeed to close (at least 1).
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    /// 5 consecutive failures, 30 s open, 1 probe.
    fn default() -> Self {
        BreakerConfig {
            trip: TripPolicy::ConsecutiveFailures(5),
            open_wait: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

/// Counters to export as metrics; a snapshot from [`CircuitBreaker::stats`].
///
/// Counters only grow for the life of the breaker (they are not reset on
/// transitions), so they map directly to Prometheus counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Current state.
    pub state: CircuitState,
    /// Calls that ran and finished (`successes + failures`).
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Calls rejected without running.
    pub rejections: u64,
    /// Times the breaker went to Open (from Closed or Half-open).
    pub times_opened: u64,
}

const STATE_MASK: u64 = 0b11;

type Listener = Box<dyn Fn(Transition) + Send + Sync>;

/// A circuit breaker, shareable across tasks: cloning is cheap and clones share
/// the same state.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use girder_resilience::{BreakerConfig, CircuitBreaker, CircuitState, Error, TripPolicy};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let breaker = CircuitBreaker::new(BreakerConfig {
///     trip: TripPolicy::ConsecutiveFailures(2),
///     open_wait: Duration::from_secs(10),
///     half_open_probes: 1,
/// });
/// for _ in 0..2 {
///     let r = breaker.call(|| async { Err::<(), _>("down") }).await;
///     assert_eq!(r, Err(Error::Inner("down")));
/// }
/// assert_eq!(breaker.state(), CircuitState::Open);
/// let r = breaker.call(|| async { Ok::<_, &str>(1) }).await;
/// assert_eq!(r, Err(Error::CircuitOpen));
/// # });
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    /// `generation << 2 | state`. Read on every call; written only on transitions.
    word: AtomicU64,
    /// Current run of failures (consecutive mode only).
    consecutive: AtomicU32,
    successes: AtomicU64,
    failures: AtomicU64,
    rejections: AtomicU64,
    times_opened: AtomicU64,
    config: BreakerConfig,
    /// Everything off the closed fast path. A std Mutex: held for a few field
    /// updates, never across an await or a user callback.
    slow: Mutex<Slow>,
    listener: Option<Listener>,
}

struct Slow {
    opened_at: Instant,
    probes_issued: u32,
    probe_successes: u32,
    window: RateWindow,
}

enum RateWindow {
    None,
    Count(CountWindow),
    Time(TimeWindow),
}

/// What `acquire` hands out: the state word the call was admitted under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    word: u64,
}

#[derive(Clone, Copy)]
enum Outcome {
    Success,
    Failure,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl CircuitBreaker {
    /// Creates a closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self::build(config, None)
    }

    /// Creates a closed breaker that calls `listener` on every state change.
    ///
    /// The listener runs on the task whose call caused the change, after the
    /// breaker's lock is released (so it may call [`CircuitBreaker::stats`]); keep it
    /// short, e.g. log or bump a metric.
    pub fn with_listener<L>(config: BreakerConfig, listener: L) -> Self
    where
        L: Fn(Transition) + Send + Sync + 'static,
    {
        Self::build(config, Some(Box::new(listener)))
    }

    fn build(config: BreakerConfig, listener: Option<Listener>) -> Self {
        let window = match config.trip {
            TripPolicy::ConsecutiveFailures(_) => RateWindow::None,
            TripPolicy::FailureRate {
                window: SlidingWindow::Count(n),
                ..
            } => RateWindow::Count(CountWindow::new(n)),
            TripPolicy::FailureRate {
                window: SlidingWindow::Time(span),
                ..
            } => RateWindow::Time(TimeWindow::new(span, 10, Instant::now())),
        };
        CircuitBreaker {
            inner: Arc::new(Inner {
                word: AtomicU64::new(CircuitState::Closed.bits()),
                consecutive: AtomicU32::new(0),
                successes: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                rejections: AtomicU64::new(0),
                times_opened: AtomicU64::new(0),
                config,
                slow: Mutex::new(Slow {
                    opened_at: Instant::now(),
                    probes_issued: 0,
                    probe_successes: 0,
                    window,
                }),
                listener,
            }),
        }
    }

    /// The configuration this breaker was built with.
    pub fn config(&self) -> &BreakerConfig {
        &self.inner.config
    }

    /// Current state (Open stays Open until a call arrives after the wait).
    pub fn state(&self) -> CircuitState {
        CircuitState::from_bits(self.inner.word.load(Ordering::Acquire))
    }

    /// A snapshot of the counters and state.
    pub fn stats(&self) -> Stats {
        let i = &self.inner;
        let successes = i.successes.load(Ordering::Relaxed);
        let failures = i.failures.load(Ordering::Relaxed);
        Stats {
            state: self.state(),
            calls: successes + failures,
            successes,
            failures,
            rejections: i.rejections.load(Ordering::Relaxed),
            times_opened: i.times_opened.load(Ordering::Relaxed),
        }
    }

    /// Asks to make a call. `None` means rejected (counted in
    /// [`Stats::rejections`]); otherwise report the outcome on the [`Permit`].
    /// Dropping the permit without reporting counts as neither outcome.
    #[inline]
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.acquire().map(|ticket| Permit {
            breaker: self,
            ticket: Some(ticket),
        })
    }

    /// Runs the call made by `f` if the breaker admits it, and records its outcome
    /// (`Err` is a failure).
    ///
    /// # Errors
    ///
    /// [`Error::CircuitOpen`] when rejected (`f` is not called), [`Error::Inner`]
    /// with the call's error otherwise.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let Some(permit) = self.try_acquire() else {
            return Err(Error::CircuitOpen);
        };
        match f().await {
            Ok(v) => {
                permit.success();
                Ok(v)
            }
            Err(e) => {
                permit.failure();
                Err(Error::Inner(e))
            }
        }
    }

    #[inline]
    pub(crate) fn acquire(&self) -> Option<Ticket> {
        let word = self.inner.word.load(Ordering::Acquire);
        if word & STATE_MASK == CircuitState::Closed.bits() {
            return Some(Ticket { word });
        }
        self.acquire_slow()
    }

    #[cold]
    fn acquire_slow(&self) -> Option<Ticket> {
        let mut transition = None;
        let admitted = {
            let mut slow = self.lock();
            let mut word = self.inner.word.load(Ordering::Acquire);
            if CircuitState::from_bits(word) == CircuitState::Open {
                let now = Instant::now();
                if now.saturating_duration_since(slow.opened_at) >= self.inner.config.open_wait {
                    transition = Some(self.transition(&mut slow, CircuitState::HalfOpen, now));
                    word = self.inner.word.load(Ordering::Acquire);
                }
            }
            match CircuitState::from_bits(word) {
                CircuitState::Closed => Some(Ticket { word }),
                CircuitState::Open => None,
                CircuitState::HalfOpen => {
                    if slow.probes_issued < self.inner.config.half_open_probes.max(1) {
                        slow.probes_issued += 1;
                        Some(Ticket { word })
                    } else {
                        None
                    }
                }
            }
        };
        if admitted.is_none() {
            self.inner.rejections.fetch_add(1, Ordering::Relaxed);
        }
        self.notify(transition);
        admitted
    }

    #[inline]
    pub(crate) fn record_success(&self, ticket: Ticket) {
        self.record(ticket, Outcome::Success);
    }

    #[inline]
    pub(crate) fn record_failure(&self, ticket: Ticket) {
        self.record(ticket, Outcome::Failure);
    }

    #[inline]
    fn record(&self, ticket: Ticket, outcome: Outcome) {
        let i = &self.inner;
        match outcome {
            Outcome::Success => i.successes.fetch_add(1, Ordering::Relaxed),
            Outcome::Failure => i.failures.fetch_add(1, Ordering::Relaxed),
        };
        let current = i.word.load(Ordering::Acquire);
        if current != ticket.word {
            // Admitted under an earlier period: counted above, but it must not
            // move the current period's state.
            return;
        }
        match (CircuitState::from_bits(ticket.word), i.config.trip, outcome) {
            (CircuitState::Closed, TripPolicy::ConsecutiveFailures(_), Outcome::Success) => {
                // Load before store: in the common all-success case the cache line
                // stays shared between cores instead of bouncing on every call.
                if i.consecutive.load(Ordering::Relaxed) != 0 {
                    i.consecutive.store(0, Ordering::Relaxed);
                }
            }
            (CircuitState::Closed, TripPolicy::ConsecutiveFailures(n), Outcome::Failure) => {
                let run = i.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
                if run >= n.max(1) {
                    self.slow_record(ticket, outcome);
                }
            }
            _ => self.slow_record(ticket, outcome),
        }
    }

    #[cold]
    fn slow_record(&self, ticket: Ticket, outcome: Outcome) {
        let transition = {
            let mut slow = self.lock();
            if self.inner.word.load(Ordering::Acquire) != ticket.word {
                return;
            }
            let now = Instant::now();
            let next = match (CircuitState::from_bits(ticket.word), outcome) {
                (CircuitState::Closed, _) => match self.inner.config.trip {
                    TripPolicy::ConsecutiveFailures(_) => Some(CircuitState::Open),
                    TripPolicy::FailureRate {
                        threshold,
                        min_calls,
                        ..
                    } => {
                        let failed = matches!(outcome, Outcome::Failure);
                        let (calls, failures) = match &mut slow.window {
                            RateWindow::None => (0, 0),
                            RateWindow::Count(w) => {
                                w.push(failed);
                                w.totals()
                            }
                            RateWindow::Time(w) => {
                                w.add(now, 1, i64::from(failed));
                                let (c, f) = w.sum(now);
                                (c.max(0) as u64, f.max(0) as u64)
                            }
                        };
                        let over = calls > 0
                            && calls >= u64::from(min_calls)
                            && failures as f64 / calls as f64 >= threshold;
                        over.then_some(CircuitState::Open)
                    }
                },
                (CircuitState::HalfOpen, Outcome::Failure) => Some(CircuitState::Open),
                (CircuitState::HalfOpen, Outcome::Success) => {
                    slow.probe_successes += 1;
                    (slow.probe_successes >= self.inner.config.half_open_probes.max(1))
                        .then_some(CircuitState::Closed)
                }
                (CircuitState::Open, _) => None,
            };
            next.map(|to| self.transition(&mut slow, to, now))
        };
        self.notify(transition);
    }

    /// A permit was dropped without an outcome: give a probe slot back.
    #[inline]
    pub(crate) fn release(&self, ticket: Ticket) {
        if CircuitState::from_bits(ticket.word) == CircuitState::HalfOpen {
            self.release_probe(ticket);
        }
    }

    #[cold]
    fn release_probe(&self, ticket: Ticket) {
        let mut slow = self.lock();
        if self.inner.word.load(Ordering::Acquire) == ticket.word && slow.probes_issued > 0 {
            slow.probes_issued -= 1;
        }
    }

    /// Moves to `to` under the lock, starting a new generation.
    fn transition(&self, slow: &mut Slow, to: CircuitState, now: Instant) -> Transition {
        let i = &self.inner;
        let old = i.word.load(Ordering::Acquire);
        let generation = (old >> 2).wrapping_add(1);
        match to {
            CircuitState::Open => {
                slow.opened_at = now;
                i.times_opened.fetch_add(1, Ordering::Relaxed);
            }
            CircuitState::HalfOpen => {
                slow.probes_issued = 0;
                slow.probe_successes = 0;
            }
            CircuitState::Closed => {
                i.consecutive.store(0, Ordering::Relaxed);
                match &mut slow.window {
                    RateWindow::None => {}
                    RateWindow::Count(w) => w.clear(),
                    RateWindow::Time(w) => w.clear(),
                }
            }
        }
        i.word.store(generation << 2 | to.bits(), Ordering::Release);
        Transition {
            from: CircuitState::from_bits(old),
            to,
        }
    }

    fn notify(&self, transition: Option<Transition>) {
        if let (Some(t), Some(listener)) = (transition, &self.inner.listener) {
            listener(t);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slow> {
        // The guarded data is plain counters that are valid after any panic.
        self.inner
            .slow
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Permission to make one call, from [`CircuitBreaker::try_acquire`]. Report the
/// outcome with [`Permit::success`] or [`Permit::failure`].
#[derive(Debug)]
#[must_use = "report the call's outcome with success() or failure()"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    ticket: Option<Ticket>,
}

impl Permit<'_> {
    /// The call succeeded.
    #[inline]
    pub fn success(mut self) {
        if let Some(t) = self.ticket.take() {
            self.breaker.record_success(t);
        }
    }

    /// The call failed.
    #[inline]
    pub fn failure(mut self) {
        if let Some(t) = self.ticket.take() {
            self.breaker.record_failure(t);
        }
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.breaker.release(t);
        }
    }
}

/// An owned permit for futures that outlive a borrow (the tower service).
#[derive(Debug)]
pub(crate) struct OwnedTicket {
    breaker: CircuitBreaker,
    ticket: Option<Ticket>,
}

impl OwnedTicket {
    pub(crate) fn new(breaker: CircuitBreaker, ticket: Ticket) -> Self {
        OwnedTicket {
            breaker,
            ticket: Some(ticket),
        }
    }

    pub(crate) fn finish<T, E>(mut self, result: &Result<T, E>) {
        if let Some(t) = self.ticket.take() {
            match result {
                Ok(_) => self.breaker.record_success(t),
                Err(_) => self.breaker.record_failure(t),
            }
        }
    }
}

impl Drop for OwnedTicket {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.breaker.release(t);
        }
    }
}

/// Tower layer putting a shared [`CircuitBreaker`] in front of a service; every
/// `Err` from the service counts as a failure.
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer {
    breaker: CircuitBreaker,
}

impl CircuitBreakerLayer {
    /// All services built by this layer share `breaker` (e.g. one per host).
    pub fn new(breaker: CircuitBreaker) -> Self {
        CircuitBreakerLayer { breaker }
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(inner, self.breaker.clone())
    }
}

/// Admission decided in `poll_ready`, used by the next `call`.
#[derive(Debug)]
enum Admission {
    /// Not asked yet.
    Unchecked,
    /// Admitted; the ticket goes into the response future.
    Admitted(OwnedTicket),
    /// Refused; the next call fails fast.
    Rejected,
}

/// Tower service from [`CircuitBreakerLayer`].
///
/// `poll_ready` asks the breaker for admission. A refusal does not make
/// `poll_ready` fail or pend: it returns ready and the next `call` resolves at once
/// to [`Error::CircuitOpen`] (as tower's `LoadShed` does), because an open circuit
/// should fail fast, and a `poll_ready` error would tell the caller to discard the
/// service. When admitted, readiness is the inner service's.
#[derive(Debug)]
pub struct CircuitBreakerService<S> {
    inner: S,
    breaker: CircuitBreaker,
    state: Admission,
}

impl<S: Clone> Clone for CircuitBreakerService<S> {
    /// A clone shares the breaker but holds no admission.
    fn clone(&self) -> Self {
        CircuitBreakerService::new(self.inner.clone(), self.breaker.clone())
    }
}

impl<S> CircuitBreakerService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, breaker: CircuitBreaker) -> Self {
        CircuitBreakerService {
            inner,
            breaker,
            state: Admission::Unchecked,
        }
    }

    /// The breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, Req> Service<Req> for CircuitBreakerService<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = BreakerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if let Admission::Unchecked = self.state {
            self.state = match self.breaker.acquire() {
                Some(ticket) => Admission::Admitted(OwnedTicket::new(self.breaker.clone(), ticket)),
                None => Admission::Rejected,
            };
        }
        match self.state {
            Admission::Admitted(_) => self.inner.poll_ready(cx).map_err(Error::Inner),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match std::mem::replace(&mut self.state, Admission::Unchecked) {
            Admission::Admitted(ticket) => BreakerFuture {
                kind: BreakerKind::Running {
                    future: self.inner.call(request),
                    ticket: Some(ticket),
                },
            },
            Admission::Rejected => BreakerFuture {
                kind: BreakerKind::Rejected,
            },
            Admission::Unchecked => {
                panic!("CircuitBreakerService::call without poll_ready returning Ready first")
            }
        }
    }
}

pin_project! {
    /// Response future of [`CircuitBreakerService`]; records the outcome.
    pub struct BreakerFuture<F> {
        #[pin]
        kind: BreakerKind<F>,
    }
}

pin_project! {
    #[project = BreakerKindProj]
    enum BreakerKind<F> {
        // If dropped before finishing, the ticket's Drop gives a probe slot back.
        Running { #[pin] future: F, ticket: Option<OwnedTicket> },
        Rejected,
    }
}

impl<F, T, E> Future for BreakerFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            BreakerKindProj::Running { future, ticket } => {
                let result = ready!(future.poll(cx));
                if let Some(ticket) = ticket.take() {
                    ticket.finish(&result);
                }
                Poll::Ready(result.map_err(Error::Inner))
            }
            BreakerKindProj::Rejected => Poll::Ready(Err(Error::CircuitOpen)),
        }
    }
}
