//! Rate limiting: four algorithms behind one interface, keyed stores with
//! bounded memory, and a tower layer that speaks the IETF RateLimit headers.
//!
//! * **One interface.** Every algorithm answers `check(key, cost)` with a
//!   [`Decision`] `{ allowed, remaining, reset_after, retry_after }`:
//!   [`Gcra`] (token bucket), [`FixedWindow`], [`SlidingLog`], [`SlidingWindow`]
//!   (counter). [`AnyAlgorithm`] picks one from configuration.
//! * **Injected time.** Limiters take a [`Clock`]; [`ManualClock`] (and
//!   [`TokioClock`] under tokio's paused clock) make tests exact.
//! * **Bounded memory.** [`KeyedLimiter`] forgets a key as soon as its state is
//!   equivalent to a new key's (for GCRA: once its TAT is in the past), which
//!   changes no decision, and never tracks more than [`StoreConfig::max_keys`]
//!   keys; what happens at the cap is a [`CapPolicy`].
//! * **Fast.** [`DirectLimiter`] is one `AtomicU64` CAS loop; [`KeyedLimiter`]
//!   is sharded `Mutex<HashMap>`s with a seeded fast hasher.
//! * **HTTP** (feature `http`, default): [`http::RateLimitLayer`] answers 429
//!   with `Retry-After`, an RFC 9457 problem document (customisable) and the
//!   `RateLimit-Policy` / `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-10.
//!
//! | Algorithm | State per key | Boundary burst | Exact per rolling period |
//! |---|---|---|---|
//! | [`Gcra`] | 8 bytes | no (smooth refill, `burst` at once) | `<= limit + burst` |
//! | [`FixedWindow`] | 16 bytes | **2 × limit** | no |
//! | [`SlidingLog`] | one entry per admission instant | no | `<= limit` |
//! | [`SlidingWindow`] | 24 bytes | no | approximate (< 2 × limit) |
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use girder_limit::{FixedWindow, KeyedLimiter, ManualClock, Quota, SlidingLog, StoreConfig};
//!
//! let quota = Quota::new(10, Duration::from_secs(1));
//! let clock = ManualClock::new();
//! let fixed = KeyedLimiter::with_clock(FixedWindow::new(quota)?, StoreConfig::default(), clock.clone())?;
//! let sliding = KeyedLimiter::with_clock(SlidingLog::new(quota)?, StoreConfig::default(), clock.clone())?;
//!
//! // Spend the whole quota just before a window boundary...
//! clock.set(999_000_000);
//! assert!(fixed.check(&"client", 10).allowed);
//! assert!(sliding.check(&"client", 10).allowed);
//! // ...and again 2 ms later: the fixed window has reset, the sliding log has not.
//! clock.advance(Duration::from_millis(2));
//! assert!(fixed.check(&"client", 10).allowed);
//! let denied = sliding.check(&"client", 10);
//! assert!(!denied.allowed);
//! assert_eq!(denied.retry_after, Duration::from_millis(998));
//! # Ok::<(), girder_limit::LimitError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod algorithm;
mod clock;
mod decision;
mod direct;
#[cfg(feature = "http")]
pub mod http;
mod keyed;
mod quota;

pub use algorithm::{
    Algorithm, AlgorithmKind, AnyAlgorithm, FixedWindow, Gcra, SlidingLog, SlidingWindow,
};
#[cfg(feature = "http")]
pub use clock::TokioClock;
pub use clock::{Clock, ManualClock, MonotonicClock};
pub use decision::Decision;
pub use direct::DirectLimiter;
pub use keyed::{CapPolicy, KeyedLimiter, StoreConfig};
pub use quota::{LimitError, Quota};

/// Gives a value cache lines of its own (128 bytes: two 64-byte lines, since
/// Intel's adjacent-line prefetcher pulls pairs), so that a hot atomic or lock
/// written by one core does not evict read-mostly data another core is using.
#[repr(align(128))]
#[derive(Debug, Default)]
pub(crate) struct CachePadded<T>(pub(crate) T);
