//! Sliding window counter: two fixed-window counters, the previous one weighted.
//!
//! The estimate at elapsed time `e` into the current window is
//! `prev · (period − e) / period + curr`, i.e. it assumes the previous window's
//! units were spread evenly. O(1) memory like the fixed window, and it removes
//! the boundary burst: right after a boundary the previous window still weighs
//! almost fully. It is an approximation: an adversary who spends late in a
//! window can exceed `limit` within some interval of length `period` (at most
//! by a factor < 2); use [`SlidingLog`](super::SlidingLog) when exactness matters.
//!
//! All arithmetic is integer (`u128`), so results are exact and reproducible.
//! A state is fresh once both counters have aged out.

use super::Algorithm;
use crate::{Decision, LimitError, Quota};

/// Sliding-window counter (weighted previous window), O(1) memory per key.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    quota: Quota,
    period: u64,
}

/// Per-key state of [`SlidingWindow`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlidingWindowState {
    /// Index of the current window.
    window: u64,
    /// Units spent in window `window - 1`.
    prev: u64,
    /// Units spent in window `window`.
    curr: u64,
}

impl SlidingWindow {
    /// A sliding-window counter admitting about `quota.limit` units per `quota.period` (`burst` is ignored).
    ///
    /// # Errors
    ///
    /// [`LimitError::InvalidQuota`] if [`Quota::validate`] fails.
    pub fn new(quota: Quota) -> Result<Self, LimitError> {
        quota.validate()?;
        Ok(Self {
            period: quota.period_nanos(),
            quota,
        })
    }

    /// `limit·P − prev·(P − e) − curr·P`: remaining capacity scaled by `P` (may be negative).
    fn slack_scaled(&self, s: &SlidingWindowState, elapsed: u64) -> i128 {
        let p = i128::from(self.period);
        i128::from(self.quota.limit) * p
            - i128::from(s.prev) * (p - i128::from(elapsed))
            - i128::from(s.curr) * p
    }

    /// Smallest elapsed time `e'` in a window with previous count `prev` such that
    /// `prev·(P − e') <= budget·P`; `P` means "at the next boundary".
    fn elapsed_needed(&self, prev: u64, budget: u64) -> u64 {
        if prev == 0 {
            return 0;
        }
        let p = u128::from(self.period);
        let fits = (u128::from(budget) * p) / u128::from(prev);
        // fits < P whenever this is called for a denial; min() keeps it total.
        self.period - (fits.min(p) as u64)
    }
}

impl Algorithm for SlidingWindow {
    type State = SlidingWindowState;

    fn new_state(&self) -> SlidingWindowState {
        SlidingWindowState::default()
    }

    fn check(&self, s: &mut SlidingWindowState, now: u64, cost: u64) -> Decision {
        let limit = self.quota.limit;
        let window = (now / self.period).max(s.window);
        if window == s.window + 1 {
            *s = SlidingWindowState {
                window,
                prev: s.curr,
                curr: 0,
            };
        } else if window != s.window {
            *s = SlidingWindowState {
                window,
                prev: 0,
                curr: 0,
            };
        }
        let start = window.saturating_mul(self.period);
        let elapsed = now.saturating_sub(start).min(self.period - 1);
        let remaining = |s: &SlidingWindowState| {
            (self.slack_scaled(s, elapsed).max(0) / i128::from(self.period)) as u64
        };
        let reset = |s: &SlidingWindowState| self.fresh_at(s).saturating_sub(now);
        if cost > limit {
            return Decision::deny(remaining(s), reset(s), u64::MAX);
        }
        if self.slack_scaled(s, elapsed) >= i128::from(cost) * i128::from(self.period) {
            s.curr += cost;
            return Decision::allow(remaining(s), reset(s));
        }
        let until_boundary = self.period - elapsed;
        let retry = if s.curr + cost <= limit {
            // Only the previous window's weight is in the way; it decays linearly.
            self.elapsed_needed(s.prev, limit - s.curr - cost) - elapsed
        } else {
            // Must wait for the next window, where `curr` becomes the weighted one.
            until_boundary + self.elapsed_needed(s.curr, limit - cost)
        };
        Decision::deny(remaining(s), reset(s), retry)
    }

    fn fresh_at(&self, s: &SlidingWindowState) -> u64 {
        if s.curr > 0 {
            (s.window + 2).saturating_mul(self.period)
        } else if s.prev > 0 {
            (s.window + 1).saturating_mul(self.period)
        } else {
            0
        }
    }

    fn quota(&self) -> &Quota {
        &self.quota
    }

    fn capacity(&self) -> u64 {
        self.quota.limit
    }
}
