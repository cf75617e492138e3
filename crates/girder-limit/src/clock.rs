//! Injectable time.
//!
//! Every algorithm works on `u64` nanoseconds since the clock's own epoch, so a
//! test can drive a limiter with [`ManualClock`] (or tokio's paused clock via
//! [`TokioClock`]) and get exact, reproducible decisions. Clocks must be
//! monotonic: a `now()` smaller than a previous one is treated as "no time has
//! passed" by the algorithms (they saturate), never as an error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A monotonic source of time, in nanoseconds since an arbitrary epoch.
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since this clock's epoch.
    fn now(&self) -> u64;
}

/// Real monotonic time, epoch = construction.
///
/// Backed by [`quanta`]: on x86-64/aarch64 with an invariant TSC it reads the
/// CPU counter (a few ns) instead of `clock_gettime` (~20 ns), which matters
/// when the clock read is half of a check; elsewhere quanta falls back to the OS
/// monotonic clock. A counter that appears to step back between cores reads as
/// "no time passed" (see the module docs).
#[derive(Debug, Clone)]
pub struct MonotonicClock {
    clock: quanta::Clock,
    start: u64,
}

impl MonotonicClock {
    /// A clock whose epoch is now. (The first one calibrates quanta, ~ms once per process.)
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let start = clock.raw();
        Self { clock, start }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        self.clock.delta_as_nanos(self.start, self.clock.raw())
    }
}

/// Virtual time for tests: starts at 0 and moves only when told to.
///
/// Clones share the same time, so a test keeps one handle and gives another to
/// the limiter.
///
/// ```
/// use std::time::Duration;
/// use girder_limit::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let handle = clock.clone();
/// handle.advance(Duration::from_millis(5));
/// assert_eq!(clock.now(), 5_000_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos
            .fetch_add(by.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Sets the absolute time (must not go backwards, see the module docs).
    pub fn set(&self, nanos: u64) {
        self.nanos.store(nanos, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> u64 {
        self.nanos.load(Ordering::Relaxed)
    }
}

/// Tokio's clock ([`tokio::time::Instant`]), epoch = construction.
///
/// Under `tokio::time::pause()` it is virtual time that `tokio::time::advance`
/// moves, which makes middleware tests exact.
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

#[cfg(feature = "http")]
impl TokioClock {
    /// A clock whose epoch is tokio's now.
    pub fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

#[cfg(feature = "http")]
impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "http")]
impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}
