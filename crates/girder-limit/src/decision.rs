//! The answer every algorithm gives.

use std::time::Duration;

/// The outcome of one `check(key, cost)`.
///
/// All four algorithms fill it the same way, so callers (and the HTTP layer)
/// never care which one is behind the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    /// Whether the `cost` units were admitted (and consumed).
    pub allowed: bool,
    /// Units that could still be admitted right now, after this decision.
    /// Never more than the algorithm's capacity (`burst` for GCRA, `limit` for windows).
    pub remaining: u64,
    /// Time until the key's state is equivalent to a fresh key's: full capacity
    /// is available again, and a keyed store may forget the key.
    pub reset_after: Duration,
    /// When denied: the wait after which the same `cost` would be admitted if
    /// nothing else is spent meanwhile. [`Duration::ZERO`] when allowed.
    /// [`Duration::MAX`] when `cost` exceeds the capacity and can never be admitted.
    pub retry_after: Duration,
}

impl Decision {
    /// An admitted decision.
    pub(crate) fn allow(remaining: u64, reset_after_nanos: u64) -> Self {
        Self {
            allowed: true,
            remaining,
            reset_after: Duration::from_nanos(reset_after_nanos),
            retry_after: Duration::ZERO,
        }
    }

    /// A denied decision; `retry_after_nanos == u64::MAX` means "never".
    pub(crate) fn deny(remaining: u64, reset_after_nanos: u64, retry_after_nanos: u64) -> Self {
        Self {
            allowed: false,
            remaining,
            reset_after: Duration::from_nanos(reset_after_nanos),
            retry_after: if retry_after_nanos == u64::MAX {
                Duration::MAX
            } else {
                Duration::from_nanos(retry_after_nanos)
            },
        }
    }

    /// Whether a denial can ever turn into an admission for the same cost.
    pub fn can_succeed_later(&self) -> bool {
        self.allowed || self.retry_after != Duration::MAX
    }
}
