//! The four algorithms, behind one trait.
//!
//! An [`Algorithm`] is immutable configuration plus pure functions over a
//! per-key `State`; storage and concurrency live elsewhere ([`DirectLimiter`](crate::DirectLimiter),
//! [`KeyedLimiter`](crate::KeyedLimiter)). Time is `u64` nanoseconds from an
//! injected [`Clock`](crate::Clock).
//!
//! Invariants every implementation keeps (the keyed store relies on them):
//! * **Fresh equivalence.** Once `now >= fresh_at(state)`, `check(state, now, c)`
//!   returns exactly what `check(new_state(), now, c)` returns, for every later
//!   `now` and cost. So a store may drop the key without changing any decision.
//! * **Monotone `fresh_at`.** A check on a state that is not yet fresh never
//!   lowers its `fresh_at`, so a lower bound a store caches stays a lower bound.

mod any;
mod fixed_window;
mod gcra;
mod sliding_log;
mod sliding_window;

pub use any::{AlgorithmKind, AnyAlgorithm, AnyState};
pub use fixed_window::{FixedWindow, FixedWindowState};
pub use gcra::Gcra;
pub use sliding_log::{SlidingLog, SlidingLogState};
pub use sliding_window::{SlidingWindow, SlidingWindowState};

use crate::{Decision, Quota};

/// A rate-limiting algorithm: configuration plus pure functions on a per-key state.
///
/// See the [module docs](self) for the invariants an implementation must keep.
pub trait Algorithm: Send + Sync + 'static {
    /// What is remembered per key.
    type State: Send + 'static;

    /// The state of a key never seen before.
    fn new_state(&self) -> Self::State;

    /// Decides whether `cost` units are admitted at `now`, updating `state` if so.
    fn check(&self, state: &mut Self::State, now: u64, cost: u64) -> Decision;

    /// The instant (ns) from which `state` is equivalent to [`Algorithm::new_state`].
    fn fresh_at(&self, state: &Self::State) -> u64;

    /// The quota this algorithm enforces.
    fn quota(&self) -> &Quota;

    /// The most units a fresh key may spend at one instant (`burst` for GCRA, `limit` otherwise).
    fn capacity(&self) -> u64;
}
