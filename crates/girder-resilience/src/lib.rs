//! Failing gracefully: retry, circuit breaker, bulkhead, timeout and fallback.
//!
//! Each pattern comes twice: as a plain async wrapper around a closure or future,
//! and as a tower [`Layer`](tower::Layer) + [`Service`](tower::Service) with the
//! same behaviour. All of them return one error type, [`Error`].
//!
//! | pattern | plain wrapper | tower layer | use it to |
//! | --- | --- | --- | --- |
//! | [`Retry`] + [`Backoff`] + [`RetryBudget`] | [`Retry::run`] | [`RetryLayer`] | ride out transient failures without amplifying an outage |
//! | [`CircuitBreaker`] | [`CircuitBreaker::call`] | [`CircuitBreakerLayer`] | stop calling a dependency that keeps failing, then probe it |
//! | [`Bulkhead`] | [`Bulkhead::run`] | [`BulkheadLayer`] | bound the calls in flight (and waiting) to one dependency |
//! | [`Timeout`] | [`Timeout::run`] | [`TimeoutLayer`] | bound how long one call may take |
//! | [`Fallback`] | [`Fallback::run`] | [`FallbackLayer`] | serve a default or degraded answer instead of an error |
//!
//! Time comes from tokio's clock (`tokio::time::Instant`, `tokio::time::sleep`), so
//! tests run on paused virtual time and are exact. Jitter comes from a
//! [`fastrand::Rng`] the caller may seed. The crate has no opinion about any
//! particular server or protocol.
//!
//! # Example
//!
//! A call guarded by a timeout, retried with backoff, behind a circuit breaker,
//! with a fallback answer when the breaker is open:
//!
//! ```
//! use std::time::Duration;
//! use girder_resilience::{
//!     Backoff, BreakerConfig, CircuitBreaker, Error, Fallback, Jitter, Retry, RetryConfig,
//!     Timeout, TripPolicy,
//! };
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let breaker = CircuitBreaker::new(BreakerConfig {
//!     trip: TripPolicy::ConsecutiveFailures(3),
//!     open_wait: Duration::from_secs(30),
//!     half_open_probes: 1,
//! });
//! let retry = Retry::builder(RetryConfig {
//!     backoff: Backoff {
//!         base: Duration::from_millis(50),
//!         multiplier: 2.0,
//!         cap: Duration::from_secs(2),
//!         jitter: Jitter::Full,
//!     },
//!     max_attempts: 3,
//!     max_elapsed: Some(Duration::from_secs(5)),
//! })
//! .rng(fastrand::Rng::with_seed(7))
//! .build();
//! let timeout = Timeout::new(Duration::from_millis(200));
//! let fallback = Fallback::new(|e: &Error<&str>| e.is_rejection().then(|| "cached top-10"));
//!
//! // A dependency that is down.
//! let fetch = || async { Err::<&str, _>("connection refused") };
//!
//! // One failed request: three attempts, each counted by the breaker, which opens.
//! let first = retry
//!     .run(|| breaker.call(|| timeout.run(fetch())))
//!     .await
//!     .map_err(|e| e.flatten().flatten());
//! assert_eq!(first, Err(Error::Inner("connection refused")));
//!
//! // The next request is refused by the open breaker and served from the fallback.
//! let second = fallback
//!     .run(async { breaker.call(|| timeout.run(fetch())).await.map_err(Error::flatten) })
//!     .await;
//! assert_eq!(second, Ok("cached top-10"));
//! # });
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
mod breaker;
mod budget;
mod bulkhead;
mod error;
mod fallback;
mod retry;
mod timeout;
mod window;

pub use backoff::{Backoff, Delays, Jitter};
pub use breaker::{
    BreakerConfig, BreakerFuture, CircuitBreaker, CircuitBreakerLayer, CircuitBreakerService,
    CircuitState, Permit, SlidingWindow, Stats, Transition, TripPolicy,
};
pub use budget::{BudgetConfig, RetryBudget, SCALE as BUDGET_SCALE, WINDOW_SLICES};
pub use bulkhead::{
    Bulkhead, BulkheadConfig, BulkheadFuture, BulkheadLayer, BulkheadPermit, BulkheadService,
    BulkheadStats,
};
pub use error::Error;
pub use fallback::{Fallback, FallbackFuture, FallbackLayer, FallbackService};
pub use retry::{
    Attempts, Classify, Decision, Retry, RetryBuilder, RetryConfig, RetryFuture, RetryLayer,
    RetryOnError, RetryService, Step,
};
pub use timeout::{Timeout, TimeoutFuture, TimeoutLayer, TimeoutService};
