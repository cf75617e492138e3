//! Capped exponential backoff with the four jitter modes of Marc Brooker's
//! "Exponential Backoff and Jitter" (AWS Architecture Blog, 2015).
//!
//! With `exp(n) = min(cap, base * multiplier^n)` for the `n`-th retry (`n` from 0):
//!
//! | [`Jitter`] | sleep before retry `n` | range |
//! | --- | --- | --- |
//! | `None` | `exp(n)` | exactly `exp(n)` |
//! | `Full` | `random_between(0, exp(n))` | `[0, exp(n)]` |
//! | `Equal` | `exp(n)/2 + random_between(0, exp(n)/2)` | `[exp(n)/2, exp(n)]` |
//! | `Decorrelated` | `min(cap, random_between(base, prev * 3))`, `prev` starting at `base` | `[min(base, cap), cap]` |
//!
//! Invariant kept by [`Delays`]: no delay ever exceeds `cap`. Randomness comes from
//! a [`fastrand::Rng`] the caller hands in, so a fixed seed gives a fixed sequence.

use std::time::Duration;

/// How randomness is mixed into the exponential delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// No randomness: `min(cap, base * multiplier^n)`. Deterministic, but clients
    /// that failed together retry together.
    None,
    /// Uniform in `[0, exp]`. The blog's recommendation: least total work.
    #[default]
    Full,
    /// Uniform in `[exp/2, exp]`: keeps a floor of half the exponential delay.
    Equal,
    /// `min(cap, random_between(base, previous * 3))`: each delay grows from the
    /// previous one rather than from the attempt number (the multiplier is unused).
    Decorrelated,
}

/// Backoff schedule: base delay, growth multiplier, cap and jitter mode.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use girder_resilience::{Backoff, Jitter};
///
/// let backoff = Backoff {
///     base: Duration::from_millis(100),
///     multiplier: 2.0,
///     cap: Duration::from_millis(500),
///     jitter: Jitter::None,
/// };
/// let delays: Vec<_> = backoff.delays(fastrand::Rng::with_seed(7)).take(4).collect();
/// assert_eq!(delays, [100, 200, 400, 500].map(Duration::from_millis));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Growth factor per retry; values below 1 are treated as 1.
    pub multiplier: f64,
    /// Upper bound on every delay.
    pub cap: Duration,
    /// Randomisation mode.
    pub jitter: Jitter,
}

impl Default for Backoff {
    /// 100 ms base, doubling, 10 s cap, full jitter.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            multiplier: 2.0,
            cap: Duration::from_secs(10),
            jitter: Jitter::Full,
        }
    }
}

impl Backoff {
    /// The un-jittered delay before retry `n` (0-based): `min(cap, base * multiplier^n)`.
    pub fn exponential(&self, retry: u32) -> Duration {
        Duration::from_nanos(self.exp_nanos(retry))
    }

    fn exp_nanos(&self, retry: u32) -> u64 {
        let base = nanos(self.base);
        let cap = nanos(self.cap);
        let multiplier = if self.multiplier.is_finite() && self.multiplier > 1.0 {
            self.multiplier
        } else {
            1.0
        };
        // Computed in f64 so large `retry` values overflow to infinity and get capped,
        // instead of wrapping; exact for power-of-two multipliers.
        let exp = base as f64 * multiplier.powi(retry.min(i32::MAX as u32) as i32);
        if exp >= cap as f64 {
            cap
        } else {
            exp as u64
        }
    }

    /// The infinite sequence of delays, drawing randomness from `rng`.
    pub fn delays(&self, rng: fastrand::Rng) -> Delays {
        Delays {
            backoff: *self,
            rng,
            retry: 0,
            prev: nanos(self.base),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Iterator over successive backoff delays; never ends. See [`Backoff::delays`].
#[derive(Debug, Clone)]
pub struct Delays {
    backoff: Backoff,
    rng: fastrand::Rng,
    retry: u32,
    /// The previous sleep, which decorrelated jitter grows from.
    prev: u64,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let b = &self.backoff;
        let exp = b.exp_nanos(self.retry);
        let sleep = match b.jitter {
            Jitter::None => exp,
            Jitter::Full => self.rng.u64(0..=exp),
            Jitter::Equal => {
                let half = exp / 2;
                // `exp - half` rather than `half` so odd nanosecond counts still reach `exp`.
                half + self.rng.u64(0..=exp - half)
            }
            Jitter::Decorrelated => {
                let base = nanos(b.base);
                let hi = self.prev.saturating_mul(3).max(base);
                self.rng.u64(base..=hi).min(nanos(b.cap))
            }
        };
        self.prev = sleep;
        self.retry = self.retry.saturating_add(1);
        Some(Duration::from_nanos(sleep))
    }
}
