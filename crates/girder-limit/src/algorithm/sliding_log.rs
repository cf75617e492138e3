//! Sliding window log: remembers when each admitted unit was spent.
//!
//! Exact: in every interval of length `period` at most `limit` units are
//! admitted. The price is memory proportional to the admissions in the last
//! period (entries at the same instant are merged). A state is fresh once its
//! newest entry is older than `period`.

use std::collections::VecDeque;

use super::Algorithm;
use crate::{Decision, LimitError, Quota};

/// Sliding-window log: exact, memory O(admissions per period) per key.
#[derive(Debug, Clone)]
pub struct SlidingLog {
    quota: Quota,
    period: u64,
}

/// Per-key state of [`SlidingLog`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlidingLogState {
    /// `(instant, units)` of admissions still inside the window, oldest first.
    entries: VecDeque<(u64, u64)>,
    /// Sum of the units in `entries`.
    total: u64,
}

impl SlidingLog {
    /// A sliding log admitting `quota.limit` units in any `quota.period` (`burst` is ignored).
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

impl Algorithm for SlidingLog {
    type State = SlidingLogState;

    fn new_state(&self) -> SlidingLogState {
        SlidingLogState::default()
    }

    fn check(&self, s: &mut SlidingLogState, now: u64, cost: u64) -> Decision {
        let limit = self.quota.limit;
        // An entry at `t` counts while `now < t + period`.
        while let Some(&(t, c)) = s.entries.front() {
            if t.saturating_add(self.period) > now {
                break;
            }
            s.entries.pop_front();
            s.total -= c;
        }
        // A clock that steps back is treated as not having moved.
        let now = s.entries.back().map_or(now, |&(t, _)| now.max(t));
        let reset = |s: &SlidingLogState| {
            s.entries
                .back()
                .map_or(0, |&(t, _)| t.saturating_add(self.period) - now)
        };
        if cost > limit {
            return Decision::deny(limit - s.total, reset(s), u64::MAX);
        }
        if s.total + cost <= limit {
            if cost > 0 {
                match s.entries.back_mut() {
                    Some((t, c)) if *t == now => *c += cost,
                    _ => s.entries.push_back((now, cost)),
                }
                s.total += cost;
            }
            return Decision::allow(limit - s.total, reset(s));
        }
        // Wait until enough of the oldest entries have slid out.
        let need = s.total + cost - limit;
        let mut freed = 0;
        let mut retry = 0;
        for &(t, c) in &s.entries {
            freed += c;
            if freed >= need {
                retry = t.saturating_add(self.period) - now;
                break;
            }
        }
        Decision::deny(limit - s.total, reset(s), retry)
    }

    fn fresh_at(&self, s: &SlidingLogState) -> u64 {
        s.entries
            .back()
            .map_or(0, |&(t, _)| t.saturating_add(self.period))
    }

    fn quota(&self) -> &Quota {
        &self.quota
    }

    fn capacity(&self) -> u64 {
        self.quota.limit
    }
}
