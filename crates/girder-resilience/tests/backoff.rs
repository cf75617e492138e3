//! Backoff schedules: exact sequences against the formulas of "Exponential Backoff
//! and Jitter" (AWS Architecture Blog) and range invariants as properties.

use std::time::Duration;

use girder_resilience::{Backoff, Jitter};
use proptest::prelude::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn backoff(jitter: Jitter) -> Backoff {
    Backoff {
        base: ms(100),
        multiplier: 2.0,
        cap: ms(1_000),
        jitter,
    }
}

#[test]
fn no_jitter_is_capped_exponential() {
    let delays: Vec<_> = backoff(Jitter::None)
        .delays(fastrand::Rng::with_seed(1))
        .take(6)
        .collect();
    assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000].map(ms));
}

#[test]
fn multiplier_three_and_huge_attempt_numbers_saturate_at_cap() {
    let b = Backoff {
        base: ms(10),
        multiplier: 3.0,
        cap: ms(500),
        jitter: Jitter::None,
    };
    assert_eq!(b.exponential(0), ms(10));
    assert_eq!(b.exponential(1), ms(30));
    assert_eq!(b.exponential(3), ms(270));
    assert_eq!(b.exponential(4), ms(500));
    assert_eq!(b.exponential(u32::MAX), ms(500));
}

/// The blog's formulas written out directly, drawing from an RNG with the same
/// seed: the crate must produce exactly these nanosecond values.
fn reference(jitter: Jitter, seed: u64, n: usize) -> Vec<Duration> {
    let (base, cap) = (100_000_000u64, 1_000_000_000u64);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut sleep = base;
    (0..n)
        .map(|attempt| {
            let exp = (base << attempt).min(cap);
            sleep = match jitter {
                Jitter::None => exp,
                Jitter::Full => rng.u64(0..=exp),
                Jitter::Equal => exp / 2 + rng.u64(0..=exp - exp / 2),
                Jitter::Decorrelated => rng.u64(base..=sleep * 3).min(cap),
            };
            Duration::from_nanos(sleep)
        })
        .collect()
}

#[test]
fn seeded_jitter_matches_the_published_formulas_exactly() {
    for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
        for seed in [0, 7, 42, 0xdead_beef] {
            let got: Vec<_> = backoff(jitter)
                .delays(fastrand::Rng::with_seed(seed))
                .take(12)
                .collect();
            assert_eq!(got, reference(jitter, seed, 12), "{jitter:?} seed {seed}");
        }
    }
}

#[test]
fn same_seed_same_sequence_other_seed_other_sequence() {
    let run = |seed| -> Vec<_> {
        backoff(Jitter::Full)
            .delays(fastrand::Rng::with_seed(seed))
            .take(8)
            .collect()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

proptest! {
    #[test]
    fn every_mode_respects_its_range(
        base_us in 1u64..5_000_000,
        cap_us in 1u64..60_000_000,
        multiplier in 1.0f64..8.0,
        seed in any::<u64>(),
    ) {
        let mk = |jitter| Backoff {
            base: Duration::from_micros(base_us),
            multiplier,
            cap: Duration::from_micros(cap_us),
            jitter,
        };
        let cap = Duration::from_micros(cap_us);
        let base = Duration::from_micros(base_us);
        for jitter in [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
            let b = mk(jitter);
            for (n, d) in b.delays(fastrand::Rng::with_seed(seed)).take(40).enumerate() {
                let exp = b.exponential(n as u32);
                prop_assert!(d <= cap, "{jitter:?} {d:?} > cap {cap:?}");
                match jitter {
                    Jitter::None => prop_assert_eq!(d, exp),
                    Jitter::Full => prop_assert!(d <= exp),
                    Jitter::Equal => prop_assert!(d >= exp / 2 && d <= exp, "{d:?} vs {exp:?}"),
                    Jitter::Decorrelated => prop_assert!(d >= base.min(cap)),
                }
            }
        }
    }

    #[test]
    fn exponential_is_monotonic(base_us in 1u64..1_000_000, multiplier in 1.0f64..4.0) {
        let b = Backoff {
            base: Duration::from_micros(base_us),
            multiplier,
            cap: Duration::from_secs(30),
            jitter: Jitter::None,
        };
        for n in 0..64 {
            prop_assert!(b.exponential(n) <= b.exponential(n + 1));
        }
    }
}
