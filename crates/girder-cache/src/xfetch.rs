//! Probabilistic early recomputation (XFetch).
//!
//! Vattani, Chierichetti & Lowenstein, "Optimal Probabilistic Cache Stampede
//! Prevention", VLDB 2015. Each value is stored with `delta` (how long its
//! last recomputation took) and its `expiry`. A reader recomputes early when
//!
//! ```text
//! now - delta * beta * ln(rand()) >= expiry        rand() uniform in (0, 1]
//! ```
//!
//! i.e. when an exponential variate with mean `delta * beta` reaches the
//! time left. `beta > 1` favours earlier recomputation, `beta < 1` later,
//! `beta = 0` disables it.
//!
//! Invariant kept here: the random source is seeded and lock-free, so runs
//! with the same seed and the same (single-threaded) call order draw the same
//! numbers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Beyond this many means (`delta * beta`) before expiry the early-refresh
/// probability is `exp(-40) ≈ 4e-18`, below the resolution of a 53-bit
/// uniform draw, so skipping the draw there changes nothing observable and
/// keeps the hit path free of RNG and `ln`.
const HORIZON_MEANS: f64 = 40.0;

/// A seeded, lock-free SplitMix64 stream shared by all readers.
///
/// SplitMix64 advances its state by a constant, so `fetch_add` is the whole
/// update and no lock or CAS loop is needed.
#[derive(Debug)]
pub(crate) struct SharedRng {
    state: AtomicU64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SharedRng {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(GOLDEN_GAMMA, Ordering::Relaxed)
            .wrapping_add(GOLDEN_GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: zero is excluded because `ln(0)` is `-inf`.
    pub(crate) fn next_open_unit(&self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The instant from which early recomputation may trigger (see
/// [`HORIZON_MEANS`]); before it a fresh hit needs no draw at all. Clamped to
/// `stored_at`, which every later reader's `now` is at or after.
pub(crate) fn horizon(stored_at: Instant, expiry: Instant, delta: Duration, beta: f64) -> Instant {
    let mean = delta.as_secs_f64() * beta;
    if mean <= 0.0 {
        // XFetch disabled or a zero-cost loader: never early.
        return expiry;
    }
    let lead = Duration::try_from_secs_f64(mean * HORIZON_MEANS).unwrap_or(Duration::MAX);
    expiry
        .checked_sub(lead)
        .map_or(stored_at, |h| h.max(stored_at))
}

/// The paper's test: `now - delta * beta * ln(r) >= expiry`, with `r` drawn
/// in (0, 1]. Written as `-delta * beta * ln(r) >= expiry - now` to stay in
/// non-negative durations.
pub(crate) fn should_recompute_early(
    now: Instant,
    expiry: Instant,
    delta: Duration,
    beta: f64,
    r: f64,
) -> bool {
    if now >= expiry {
        return true;
    }
    let left = (expiry - now).as_secs_f64();
    -(delta.as_secs_f64() * beta * r.ln()) >= left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_in_open_unit_interval_and_seeded() {
        let a = SharedRng::new(7);
        let b = SharedRng::new(7);
        let c = SharedRng::new(8);
        let xs: Vec<f64> = (0..1000).map(|_| a.next_open_unit()).collect();
        let ys: Vec<f64> = (0..1000).map(|_| b.next_open_unit()).collect();
        let zs: Vec<f64> = (0..1000).map(|_| c.next_open_unit()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!(xs.iter().all(|&x| x > 0.0 && x <= 1.0));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.05, "mean {mean}");
    }

    #[test]
    fn formula_matches_paper_at_known_points() {
        let t0 = Instant::now();
        let expiry = t0 + Duration::from_secs(10);
        let delta = Duration::from_secs(1);
        // r = e^-k gives -delta*beta*ln(r) = k * delta * beta exactly.
        let r = (-2.0f64).exp();
        // 2s of "lead" with beta = 1: triggers at 8s left? no; at 2s left, yes.
        assert!(!should_recompute_early(t0, expiry, delta, 1.0, r));
        assert!(should_recompute_early(
            t0 + Duration::from_secs(8),
            expiry,
            delta,
            1.0,
            r
        ));
        // beta scales the lead: beta = 5 gives 10s of lead, so it triggers at t0.
        assert!(should_recompute_early(t0, expiry, delta, 5.0, r));
        // beta = 0 never triggers before expiry, always at/after it.
        assert!(!should_recompute_early(
            t0 + Duration::from_millis(9999),
            expiry,
            delta,
            0.0,
            f64::MIN_POSITIVE
        ));
        assert!(should_recompute_early(expiry, expiry, delta, 0.0, 0.5));
    }

    #[test]
    fn empirical_probability_matches_exponential_tail() {
        // P(trigger with `left` remaining) = exp(-left / (delta * beta)).
        let rng = SharedRng::new(42);
        let t0 = Instant::now();
        let delta = Duration::from_millis(100);
        let expiry = t0 + Duration::from_millis(100); // left = delta
        let n = 100_000;
        let hits = (0..n)
            .filter(|_| should_recompute_early(t0, expiry, delta, 1.0, rng.next_open_unit()))
            .count();
        let p = hits as f64 / n as f64;
        let expected = (-1.0f64).exp();
        assert!((p - expected).abs() < 0.01, "p {p} expected {expected}");
    }

    #[test]
    fn horizon_is_forty_means_before_expiry() {
        let t0 = Instant::now() + Duration::from_secs(1000);
        let stored = t0 - Duration::from_secs(5);
        let h = horizon(stored, t0, Duration::from_millis(10), 2.0);
        assert_eq!(t0 - h, Duration::from_millis(800));
        assert_eq!(horizon(stored, t0, Duration::ZERO, 1.0), t0);
        assert_eq!(horizon(stored, t0, Duration::from_secs(1), 0.0), t0);
        // A horizon before the store time is clamped to it.
        assert_eq!(horizon(stored, t0, Duration::from_secs(1), 1.0), stored);
    }
}
