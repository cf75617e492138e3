//! Choosing the algorithm at run time, from configuration.

use super::{Algorithm, FixedWindow, FixedWindowState, Gcra, SlidingLog, SlidingLogState};
use super::{SlidingWindow, SlidingWindowState};
use crate::{Decision, LimitError, Quota};

/// Which algorithm to run; the serializable half of [`AnyAlgorithm`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum AlgorithmKind {
    /// [`Gcra`]: smooth, allows `burst` at once, O(1) state. The usual choice.
    #[default]
    Gcra,
    /// [`FixedWindow`]: simplest; allows 2×limit across a window boundary.
    FixedWindow,
    /// [`SlidingLog`]: exact per rolling period; memory grows with the limit.
    SlidingLog,
    /// [`SlidingWindow`]: O(1) approximation of the sliding log.
    SlidingWindow,
}

/// Any of the four algorithms, picked by an [`AlgorithmKind`] at run time.
///
/// Costs one `match` per check over using the concrete type directly.
#[derive(Debug, Clone)]
pub enum AnyAlgorithm {
    /// See [`Gcra`].
    Gcra(Gcra),
    /// See [`FixedWindow`].
    FixedWindow(FixedWindow),
    /// See [`SlidingLog`].
    SlidingLog(SlidingLog),
    /// See [`SlidingWindow`].
    SlidingWindow(SlidingWindow),
}

/// Per-key state of [`AnyAlgorithm`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyState {
    /// GCRA's TAT.
    Gcra(u64),
    /// See [`FixedWindowState`].
    FixedWindow(FixedWindowState),
    /// See [`SlidingLogState`].
    SlidingLog(SlidingLogState),
    /// See [`SlidingWindowState`].
    SlidingWindow(SlidingWindowState),
}

impl AnyAlgorithm {
    /// Builds the algorithm `kind` for `quota`.
    ///
    /// # Errors
    ///
    /// [`LimitError::InvalidQuota`] if [`Quota::validate`] fails.
    pub fn new(kind: AlgorithmKind, quota: Quota) -> Result<Self, LimitError> {
        Ok(match kind {
            AlgorithmKind::Gcra => Self::Gcra(Gcra::new(quota)?),
            AlgorithmKind::FixedWindow => Self::FixedWindow(FixedWindow::new(quota)?),
            AlgorithmKind::SlidingLog => Self::SlidingLog(SlidingLog::new(quota)?),
            AlgorithmKind::SlidingWindow => Self::SlidingWindow(SlidingWindow::new(quota)?),
        })
    }
}

/// Runs `$body` with `$a`/`$s` bound to the matching algorithm and state.
macro_rules! dispatch {
    ($self:ident, $state:expr, |$a:ident, $s:ident| $body:expr) => {
        match ($self, $state) {
            (AnyAlgorithm::Gcra($a), AnyState::Gcra($s)) => $body,
            (AnyAlgorithm::FixedWindow($a), AnyState::FixedWindow($s)) => $body,
            (AnyAlgorithm::SlidingLog($a), AnyState::SlidingLog($s)) => $body,
            (AnyAlgorithm::SlidingWindow($a), AnyState::SlidingWindow($s)) => $body,
            // States only come from `new_state` of the same value, so kinds always match.
            _ => unreachable!("AnyState of a different kind than its AnyAlgorithm"),
        }
    };
}

impl Algorithm for AnyAlgorithm {
    type State = AnyState;

    fn new_state(&self) -> AnyState {
        match self {
            Self::Gcra(a) => AnyState::Gcra(a.new_state()),
            Self::FixedWindow(a) => AnyState::FixedWindow(a.new_state()),
            Self::SlidingLog(a) => AnyState::SlidingLog(a.new_state()),
            Self::SlidingWindow(a) => AnyState::SlidingWindow(a.new_state()),
        }
    }

    fn check(&self, state: &mut AnyState, now: u64, cost: u64) -> Decision {
        dispatch!(self, state, |a, s| a.check(s, now, cost))
    }

    fn fresh_at(&self, state: &AnyState) -> u64 {
        dispatch!(self, state, |a, s| a.fresh_at(s))
    }

    fn quota(&self) -> &Quota {
        match self {
            Self::Gcra(a) => a.quota(),
            Self::FixedWindow(a) => a.quota(),
            Self::SlidingLog(a) => a.quota(),
            Self::SlidingWindow(a) => a.quota(),
        }
    }

    fn capacity(&self) -> u64 {
        match self {
            Self::Gcra(a) => a.capacity(),
            Self::FixedWindow(a) => a.capacity(),
            Self::SlidingLog(a) => a.capacity(),
            Self::SlidingWindow(a) => a.capacity(),
        }
    }
}
