//! Injectable time source.
//!
//! Every freshness, stale-window, negative-cache and XFetch decision reads
//! time through [`Clock`], never through `Instant::now()` directly, so tests
//! can run on virtual time. moka keeps its own (real) clock; we only use its
//! TTL as a coarse bound for reclaiming memory, never to decide freshness.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic time source.
pub trait Clock: Send + Sync + 'static {
    /// The current instant. Must never go backwards.
    fn now(&self) -> Instant;
}

/// The real monotonic clock (`std::time::Instant::now()`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// tokio's clock: honours `tokio::time::pause()` / `advance()` when tokio's
/// `test-util` feature is enabled, and is the real clock otherwise.
///
/// Use it when loaders themselves wait with `tokio::time::sleep`, so that
/// load durations (XFetch's `delta`) are measured in the same virtual time.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A clock that only moves when told to; for deterministic tests.
///
/// Clones share the same time.
#[derive(Clone)]
pub struct ManualClock {
    inner: std::sync::Arc<ManualInner>,
}

struct ManualInner {
    // A fixed real origin plus an atomic offset: `Instant` cannot be built
    // from a number, and an atomic offset keeps `now()` lock-free.
    origin: Instant,
    offset_nanos: AtomicU64,
}

impl ManualClock {
    /// A clock frozen at the moment of creation.
    pub fn new() -> Self {
        Self {
            inner: std::sync::Arc::new(ManualInner {
                origin: Instant::now(),
                offset_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.inner.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Time elapsed since the clock was created (virtual time).
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.offset_nanos.load(Ordering::SeqCst))
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.origin + self.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - t0, Duration::from_millis(1500));
        let shared = clock.clone();
        shared.advance(Duration::from_secs(1));
        assert_eq!(clock.now() - t0, Duration::from_millis(2500));
    }
}
