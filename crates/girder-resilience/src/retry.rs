//! Retry: run a call again after a backoff delay while a classifier says the
//! outcome is retryable, bounded by attempts, elapsed time and an optional budget.
//!
//! One decision function ([`Retry::next_step`]) serves both the plain async
//! wrapper ([`Retry::run`]) and the tower service ([`RetryService`]), so the two
//! cannot drift apart. The first attempt touches no lock, no clock (unless
//! `max_elapsed` is set) and no RNG; the per-call RNG is forked from the shared
//! seeded one only when a first retry is needed.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use crate::backoff::{Backoff, Delays};
use crate::budget::RetryBudget;
use crate::Error;

/// A classifier's verdict on one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Return this outcome to the caller.
    Accept,
    /// Try again (if attempts, time and budget allow).
    Retry,
}

/// Decides whether an outcome (error *or* response, e.g. an HTTP 503) is worth
/// retrying. Implemented for every `Fn(&Result<T, E>) -> Decision`.
pub trait Classify<T, E> {
    /// The verdict on `result`.
    fn classify(&self, result: &Result<T, E>) -> Decision;
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Decision,
{
    fn classify(&self, result: &Result<T, E>) -> Decision {
        self(result)
    }
}

/// The default classifier: retry every `Err`, accept every `Ok`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryOnError;

impl<T, E> Classify<T, E> for RetryOnError {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Decision {
        match result {
            Ok(_) => Decision::Accept,
            Err(_) => Decision::Retry,
        }
    }
}

/// Bounds and schedule of a retry policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// Delays between attempts.
    pub backoff: Backoff,
    /// Total attempts including the first (1 = never retry; 0 is treated as 1).
    pub max_attempts: u32,
    /// Do not start a retry whose delay would end later than this after the first
    /// attempt started. `None`: no time bound.
    pub max_elapsed: Option<Duration>,
}

impl Default for RetryConfig {
    /// Default backoff, 3 attempts, no time bound.
    fn default() -> Self {
        RetryConfig {
            backoff: Backoff::default(),
            max_attempts: 3,
            max_elapsed: None,
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Return the outcome as it is.
    Done,
    /// Retryable, but the budget refused: return the failure as
    /// [`Error::BudgetExhausted`].
    BudgetExhausted,
    /// Sleep this long, then try again.
    Sleep(Duration),
}

/// Per-call retry progress, owned by the call (not shared).
#[derive(Debug, Default)]
pub struct Attempts {
    /// Attempts made so far.
    made: u32,
    started: Option<Instant>,
    /// Boxed for the same reason as the sleep: only calls that retry pay for it.
    delays: Option<Box<Delays>>,
}

/// A retry policy, cheap to clone (clones share the budget and the RNG).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use girder_resilience::{Backoff, Error, Jitter, Retry, RetryConfig};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let retry = Retry::new(RetryConfig {
///     backoff: Backoff { base: Duration::from_millis(10), multiplier: 2.0,
///                        cap: Duration::from_secs(1), jitter: Jitter::Full },
///     max_attempts: 3,
///     max_elapsed: None,
/// });
/// let mut calls = 0;
/// let r = retry.run(|| { calls += 1; let n = calls; async move {
///     if n < 3 { Err("flaky") } else { Ok(n) }
/// }}).await;
/// assert_eq!(r, Ok(3));
/// # });
/// ```
#[derive(Debug)]
pub struct Retry<C = RetryOnError> {
    inner: Arc<RetryInner<C>>,
}

impl<C> Clone for Retry<C> {
    fn clone(&self) -> Self {
        Retry {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
struct RetryInner<C> {
    config: RetryConfig,
    classifier: C,
    budget: Option<RetryBudget>,
    /// Source of per-call RNGs. A std Mutex: locked once per retried call, briefly.
    rng: Mutex<fastrand::Rng>,
}

/// Builds a [`Retry`] with a classifier, a budget or a seeded RNG.
#[derive(Debug)]
pub struct RetryBuilder<C = RetryOnError> {
    config: RetryConfig,
    classifier: C,
    budget: Option<RetryBudget>,
    rng: Option<fastrand::Rng>,
}

impl<C> RetryBuilder<C> {
    /// Replaces the classifier (default [`RetryOnError`]).
    pub fn classifier<C2>(self, classifier: C2) -> RetryBuilder<C2> {
        RetryBuilder {
            config: self.config,
            classifier,
            budget: self.budget,
            rng: self.rng,
        }
    }

    /// Takes a token from `budget` before each retry and deposits one per call.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Draws jitter from `rng` (e.g. `fastrand::Rng::with_seed(42)`) so delay
    /// sequences are reproducible. Default: a randomly seeded RNG.
    pub fn rng(mut self, rng: fastrand::Rng) -> Self {
        self.rng = Some(rng);
        self
    }

    /// Finishes the policy.
    pub fn build(self) -> Retry<C> {
        Retry {
            inner: Arc::new(RetryInner {
                config: self.config,
                classifier: self.classifier,
                budget: self.budget,
                rng: Mutex::new(self.rng.unwrap_or_default()),
            }),
        }
    }
}

impl Retry<RetryOnError> {
    /// A policy retrying every error, randomly seeded, without a budget.
    pub fn new(config: RetryConfig) -> Self {
        Self::builder(config).build()
    }

    /// Starts a builder.
    pub fn builder(config: RetryConfig) -> RetryBuilder<RetryOnError> {
        RetryBuilder {
            config,
            classifier: RetryOnError,
            budget: None,
            rng: None,
        }
    }
}

impl<C> Retry<C> {
    /// The policy's bounds and schedule.
    pub fn config(&self) -> &RetryConfig {
        &self.inner.config
    }

    /// The budget, if any.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.inner.budget.as_ref()
    }

    /// Runs `f` and retries it per the policy.
    ///
    /// # Errors
    ///
    /// The last attempt's error as [`Error::Inner`] when it is not retryable or
    /// attempts or time ran out; as [`Error::BudgetExhausted`] when the budget
    /// refused the retry. A retryable `Ok` that runs out of attempts is returned
    /// as `Ok`.
    pub async fn run<T, E, F, Fut>(&self, mut f: F) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempts = self.start();
        loop {
            let result = f().await;
            match self.next_step(&result, &mut attempts) {
                Step::Done => return result.map_err(Error::Inner),
                Step::BudgetExhausted => return result.map_err(Error::BudgetExhausted),
                // Boxed so the timer's space is only paid when a retry happens:
                // inline, it would make every call's future several times larger
                // and every move of it a memcpy.
                Step::Sleep(delay) => Box::pin(tokio::time::sleep(delay)).await,
            }
        }
    }

    /// Starts one call's accounting: deposits into the budget and notes the start
    /// time if `max_elapsed` is set.
    #[inline]
    pub fn start(&self) -> Attempts {
        if let Some(budget) = &self.inner.budget {
            budget.deposit();
        }
        Attempts {
            made: 0,
            started: self.inner.config.max_elapsed.map(|_| Instant::now()),
            delays: None,
        }
    }

    /// Records one finished attempt and decides what happens next.
    #[inline]
    pub fn next_step<T, E>(&self, result: &Result<T, E>, attempts: &mut Attempts) -> Step
    where
        C: Classify<T, E>,
    {
        attempts.made = attempts.made.saturating_add(1);
        if self.inner.classifier.classify(result) == Decision::Accept {
            return Step::Done;
        }
        self.retry_step(attempts)
    }

    #[cold]
    fn retry_step(&self, attempts: &mut Attempts) -> Step {
        let config = &self.inner.config;
        if attempts.made >= config.max_attempts.max(1) {
            return Step::Done;
        }
        let delays = attempts.delays.get_or_insert_with(|| {
            let rng = self
                .inner
                .rng
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .fork();
            Box::new(config.backoff.delays(rng))
        });
        let delay = delays.next().unwrap_or(config.backoff.cap);
        if let (Some(max), Some(started)) = (config.max_elapsed, attempts.started) {
            if started.elapsed() + delay > max {
                return Step::Done;
            }
        }
        if let Some(budget) = &self.inner.budget {
            if !budget.try_withdraw() {
                return Step::BudgetExhausted;
            }
        }
        Step::Sleep(delay)
    }
}

/// Tower layer applying a [`Retry`] policy. Requests must be `Clone` (each attempt
/// sends a copy) and the service `Clone` (the response future keeps one to retry).
#[derive(Debug, Clone)]
pub struct RetryLayer<C = RetryOnError> {
    retry: Retry<C>,
}

impl<C> RetryLayer<C> {
    /// Wraps services with `retry`.
    pub fn new(retry: Retry<C>) -> Self {
        RetryLayer { retry }
    }
}

impl<S, C> Layer<S> for RetryLayer<C> {
    type Service = RetryService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner,
            retry: self.retry.clone(),
        }
    }
}

/// Tower service from [`RetryLayer`]. Readiness is the inner service's: retries
/// add no backpressure of their own (the budget bounds them instead).
#[derive(Debug, Clone)]
pub struct RetryService<S, C = RetryOnError> {
    inner: S,
    retry: Retry<C>,
}

impl<S, C> RetryService<S, C> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req> Service<Req> for RetryService<S, C>
where
    S: Service<Req> + Clone,
    Req: Clone,
    C: Classify<S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = RetryFuture<S, C, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let attempts = self.retry.start();
        let future = self.inner.call(request.clone());
        RetryFuture {
            // The clone that was just driven to readiness stays here; the future
            // keeps a fresh clone and drives it to readiness again before a retry.
            service: self.inner.clone(),
            retry: self.retry.clone(),
            request,
            attempts,
            state: RetryState::Calling { future },
        }
    }
}

pin_project! {
    /// Response future of [`RetryService`].
    pub struct RetryFuture<S, C, Req>
    where
        S: Service<Req>,
    {
        service: S,
        retry: Retry<C>,
        request: Req,
        attempts: Attempts,
        #[pin]
        state: RetryState<S::Future>,
    }
}

pin_project! {
    #[project = RetryStateProj]
    enum RetryState<F> {
        // An attempt is in flight.
        Calling { #[pin] future: F },
        // Waiting out the backoff delay; boxed so futures that never retry stay small.
        Sleeping { sleep: Pin<Box<Sleep>> },
        // Waiting for the service to be ready for the next attempt.
        Readying,
    }
}

impl<S, C, Req> Future for RetryFuture<S, C, Req>
where
    S: Service<Req>,
    Req: Clone,
    C: Classify<S::Response, S::Error>,
{
    type Output = Result<S::Response, Error<S::Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                RetryStateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    match this.retry.next_step(&result, this.attempts) {
                        Step::Done => return Poll::Ready(result.map_err(Error::Inner)),
                        Step::BudgetExhausted => {
                            return Poll::Ready(result.map_err(Error::BudgetExhausted))
                        }
                        Step::Sleep(delay) => this.state.set(RetryState::Sleeping {
                            sleep: Box::pin(tokio::time::sleep(delay)),
                        }),
                    }
                }
                RetryStateProj::Sleeping { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state.set(RetryState::Readying);
                }
                RetryStateProj::Readying => {
                    if let Err(e) = ready!(this.service.poll_ready(cx)) {
                        return Poll::Ready(Err(Error::Inner(e)));
                    }
                    let future = this.service.call(this.request.clone());
                    this.state.set(RetryState::Calling { future });
                }
            }
        }
    }
}
