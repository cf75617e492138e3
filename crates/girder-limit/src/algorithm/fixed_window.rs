//! Fixed window: a counter per window `[k·period, (k+1)·period)` of clock time.
//!
//! Cheap and easy to explain, but a client can spend `limit` at the end of one
//! window and `limit` again at the start of the next: up to `2·limit` within an
//! instant across the boundary. The sliding variants exist to prevent that.
//!
//! A state is fresh once its window is over: the next check starts a new count.

use super::Algorithm;
use crate::{Decision, LimitError, Quota};

/// Fixed-window counter, windows aligned to the clock's epoch.
#[derive(Debug, Clone)]
pub struct FixedWindow {
    quota: Quota,
    period: u64,
}

/// Per-key state of [`FixedWindow`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixedWindowState {
    /// Index of the window `count` belongs to.
    window: u64,
    /// Units spent in that window.
    count: u64,
}

impl FixedWindow {
    /// A fixed window of `quota.period` admitting `quota.limit` units (`burst` is ignored).
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
}

impl Algorithm for FixedWindow {
    type State = FixedWindowState;

    fn new_state(&self) -> FixedWindowState {
        FixedWindowState::default()
    }

    fn check(&self, s: &mut FixedWindowState, now: u64, cost: u64) -> Decision {
        let limit = self.quota.limit;
        // max(): a clock that steps back stays in the newest window seen.
        let window = (now / self.period).max(s.window);
        if window != s.window {
            *s = FixedWindowState { window, count: 0 };
        }
        let until_end = (window + 1).saturating_mul(self.period).saturating_sub(now);
        let reset = |count: u64| if count == 0 { 0 } else { until_end };
        if cost > limit {
            return Decision::deny(limit - s.count, reset(s.count), u64::MAX);
        }
        if s.count + cost <= limit {
            s.count += cost;
            Decision::allow(limit - s.count, reset(s.count))
        } else {
            Decision::deny(limit - s.count, until_end, until_end)
        }
    }

    fn fresh_at(&self, s: &FixedWindowState) -> u64 {
        if s.count == 0 {
            0
        } else {
            (s.window + 1).saturating_mul(self.period)
        }
    }

    fn quota(&self) -> &Quota {
        &self.quota
    }

    fn capacity(&self) -> u64 {
        self.quota.limit
    }
}
