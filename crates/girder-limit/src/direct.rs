//! A single-key GCRA limiter whose whole state is one `AtomicU64`.
//!
//! The hot path is a compare-and-swap loop (like governor's direct limiter): no
//! lock, no allocation; concurrent callers only retry when another admission
//! changed the TAT between their load and their CAS.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::algorithm::Algorithm;
use crate::{CachePadded, Clock, Decision, Gcra, LimitError, MonotonicClock, Quota};

/// One GCRA bucket shared by all callers (e.g. a global limit on an outbound API).
///
/// ```
/// use std::time::Duration;
/// use girder_limit::{DirectLimiter, ManualClock, Quota};
///
/// let clock = ManualClock::new();
/// let limiter = DirectLimiter::with_clock(Quota::per_second(2), clock.clone())?;
/// assert!(limiter.check(1).allowed);
/// assert!(limiter.check(1).allowed);
/// let denied = limiter.check(1);
/// assert!(!denied.allowed);
/// assert_eq!(denied.retry_after, Duration::from_millis(500));
/// clock.advance(Duration::from_millis(500));
/// assert!(limiter.check(1).allowed);
/// # Ok::<(), girder_limit::LimitError>(())
/// ```
#[derive(Debug)]
pub struct DirectLimiter<C = MonotonicClock> {
    gcra: Gcra,
    clock: C,
    /// The theoretical arrival time, ns on `clock`. Padded: it is the one datum
    /// every caller writes; sharing its line with the read-only fields above
    /// made each check on another core miss on those too.
    tat: CachePadded<AtomicU64>,
}

impl DirectLimiter<MonotonicClock> {
    /// A limiter for `quota` on real monotonic time.
    ///
    /// # Errors
    ///
    /// [`LimitError::InvalidQuota`] if [`Quota::validate`] fails.
    pub fn new(quota: Quota) -> Result<Self, LimitError> {
        Self::with_clock(quota, MonotonicClock::new())
    }
}

impl<C: Clock> DirectLimiter<C> {
    /// A limiter for `quota` on `clock`.
    ///
    /// # Errors
    ///
    /// [`LimitError::InvalidQuota`] if [`Quota::validate`] fails.
    pub fn with_clock(quota: Quota, clock: C) -> Result<Self, LimitError> {
        Ok(Self {
            gcra: Gcra::new(quota)?,
            clock,
            tat: CachePadded(AtomicU64::new(0)),
        })
    }

    /// Spends `cost` units if the quota allows it now.
    #[inline]
    pub fn check(&self, cost: u64) -> Decision {
        let now = self.clock.now();
        // Relaxed is enough: the TAT is the only shared datum and the CAS orders
        // all writers to it; nothing else is published through it.
        let mut current = self.tat.0.load(Ordering::Relaxed);
        loop {
            // Cost 0 only reads; a write would needlessly contend the line.
            let next = match self.gcra.admit(current, now, cost) {
                Some(next) if cost > 0 => next,
                _ => return self.gcra.denied(current, now, cost),
            };
            match self.tat.0.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return self.gcra.allowed(next, now),
                Err(actual) => current = actual,
            }
        }
    }

    /// The quota being enforced.
    pub fn quota(&self) -> &Quota {
        self.gcra.quota()
    }
}
