//! Property tests over arbitrary sequences of (time advance, cost).

use std::collections::HashMap;
use std::time::Duration;

use girder_limit::{
    Algorithm, AlgorithmKind, AnyAlgorithm, Decision, FixedWindow, Gcra, KeyedLimiter, ManualClock,
    Quota, SlidingLog, SlidingWindow, StoreConfig,
};
use proptest::prelude::*;

const PERIOD_NS: u64 = 1_000_000;

fn quota_strategy() -> impl Strategy<Value = Quota> {
    (1u64..=20, 1u64..=25).prop_map(|(limit, burst)| {
        Quota::new(limit, Duration::from_nanos(PERIOD_NS)).with_burst(burst)
    })
}

fn steps_strategy() -> impl Strategy<Value = Vec<(u64, u64)>> {
    // Advances from 0 to half a period, costs 0..=4.
    prop::collection::vec((0..PERIOD_NS / 2, 0u64..=4), 1..300)
}

fn kind_strategy() -> impl Strategy<Value = AlgorithmKind> {
    prop_oneof![
        Just(AlgorithmKind::Gcra),
        Just(AlgorithmKind::FixedWindow),
        Just(AlgorithmKind::SlidingLog),
        Just(AlgorithmKind::SlidingWindow),
    ]
}

/// Runs `steps` on a fresh state; returns (time, decision) per step.
fn run<A: Algorithm>(algorithm: &A, steps: &[(u64, u64)]) -> Vec<(u64, u64, Decision)> {
    let mut state = algorithm.new_state();
    let mut now = 0;
    steps
        .iter()
        .map(|&(advance, cost)| {
            now += advance;
            (now, cost, algorithm.check(&mut state, now, cost))
        })
        .collect()
}

/// The most units admitted within any half-open interval `[t, t + period)`.
fn max_in_any_period(trace: &[(u64, u64, Decision)], period: u64) -> u64 {
    let admitted: Vec<(u64, u64)> = trace
        .iter()
        .filter(|(_, _, d)| d.allowed)
        .map(|&(t, c, _)| (t, c))
        .collect();
    admitted
        .iter()
        .map(|&(start, _)| {
            admitted
                .iter()
                .filter(|&&(t, _)| t >= start && t < start + period)
                .map(|&(_, c)| c)
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0)
}

proptest! {
    #[test]
    fn gcra_admits_at_most_limit_plus_burst_per_period(quota in quota_strategy(), steps in steps_strategy()) {
        let trace = run(&Gcra::new(quota).unwrap(), &steps);
        let max = max_in_any_period(&trace, PERIOD_NS);
        prop_assert!(max <= quota.limit + quota.burst, "{max} > {} + {}", quota.limit, quota.burst);
    }

    #[test]
    fn sliding_log_admits_at_most_limit_per_period(quota in quota_strategy(), steps in steps_strategy()) {
        let trace = run(&SlidingLog::new(quota).unwrap(), &steps);
        let max = max_in_any_period(&trace, PERIOD_NS);
        prop_assert!(max <= quota.limit, "{max} > {}", quota.limit);
    }

    #[test]
    fn window_algorithms_admit_at_most_twice_the_limit_per_period(quota in quota_strategy(), steps in steps_strategy()) {
        for trace in [run(&FixedWindow::new(quota).unwrap(), &steps), run(&SlidingWindow::new(quota).unwrap(), &steps)] {
            let max = max_in_any_period(&trace, PERIOD_NS);
            prop_assert!(max <= 2 * quota.limit, "{max} > 2 × {}", quota.limit);
        }
    }

    #[test]
    fn decisions_are_deterministic_and_remaining_within_capacity(
        kind in kind_strategy(), quota in quota_strategy(), steps in steps_strategy()
    ) {
        let algorithm = AnyAlgorithm::new(kind, quota).unwrap();
        let first = run(&algorithm, &steps);
        let second = run(&AnyAlgorithm::new(kind, quota).unwrap(), &steps);
        prop_assert_eq!(&first, &second);
        for (_, _, d) in &first {
            prop_assert!(d.remaining <= algorithm.capacity());
            prop_assert_eq!(d.allowed, d.retry_after.is_zero());
        }
    }

    /// `retry_after` is exact: one nanosecond earlier the same request is still
    /// denied, at `retry_after` it is admitted.
    #[test]
    fn retry_after_is_exact(kind in kind_strategy(), quota in quota_strategy(), steps in steps_strategy()) {
        let algorithm = AnyAlgorithm::new(kind, quota).unwrap();
        let mut state = algorithm.new_state();
        let mut now = 0;
        for (advance, cost) in steps {
            now += advance;
            let before = state.clone();
            let d = algorithm.check(&mut state, now, cost);
            if d.allowed || !d.can_succeed_later() {
                continue;
            }
            let wait = d.retry_after.as_nanos() as u64;
            prop_assert!(wait > 0);
            let mut early = before.clone();
            prop_assert!(!algorithm.check(&mut early, now + wait - 1, cost).allowed, "{kind:?} admitted 1 ns early");
            let mut on_time = before;
            prop_assert!(algorithm.check(&mut on_time, now + wait, cost).allowed, "{kind:?} denied at retry_after");
        }
    }

    /// `reset_after` is when the state becomes equivalent to a new key's: from
    /// then on, it decides like a fresh state.
    #[test]
    fn state_is_fresh_after_reset(kind in kind_strategy(), quota in quota_strategy(), steps in steps_strategy(), probe in 0u64..=4) {
        let algorithm = AnyAlgorithm::new(kind, quota).unwrap();
        let mut state = algorithm.new_state();
        let mut now = 0;
        for (advance, cost) in steps {
            now += advance;
            let d = algorithm.check(&mut state, now, cost);
            let at = now + d.reset_after.as_nanos() as u64;
            let mut aged = state.clone();
            let mut fresh = algorithm.new_state();
            prop_assert_eq!(algorithm.check(&mut aged, at, probe), algorithm.check(&mut fresh, at, probe));
        }
    }

    /// Idle reclamation and sweeping are invisible: a keyed store that forgets
    /// keys as eagerly as possible decides exactly like a map that never forgets.
    #[test]
    fn reclamation_changes_no_decision(
        kind in kind_strategy(),
        quota in quota_strategy(),
        steps in prop::collection::vec((0..PERIOD_NS / 2, 0u64..=4, 0u8..8), 1..300),
    ) {
        let algorithm = AnyAlgorithm::new(kind, quota).unwrap();
        let clock = ManualClock::new();
        let config = StoreConfig { sweep_interval: Duration::ZERO, shards: 2, ..StoreConfig::default() };
        let store = KeyedLimiter::with_clock(AnyAlgorithm::new(kind, quota).unwrap(), config, clock.clone()).unwrap();
        let mut model: HashMap<u8, _> = HashMap::new();
        for (advance, cost, key) in steps {
            clock.advance(Duration::from_nanos(advance));
            let now = girder_limit::Clock::now(&clock);
            let expected = algorithm.check(model.entry(key).or_insert_with(|| algorithm.new_state()), now, cost);
            prop_assert_eq!(store.check(&key, cost), expected);
        }
    }
}
