//! Exact decisions of each algorithm under virtual time.

use std::time::Duration;

use girder_limit::{
    Algorithm, DirectLimiter, FixedWindow, Gcra, KeyedLimiter, LimitError, ManualClock, Quota,
    SlidingLog, SlidingWindow, StoreConfig,
};

const MS: Duration = Duration::from_millis(1);

fn keyed<A: Algorithm>(
    algorithm: A,
    clock: &ManualClock,
) -> KeyedLimiter<&'static str, A, ManualClock> {
    KeyedLimiter::with_clock(algorithm, StoreConfig::default(), clock.clone()).unwrap()
}

/// Spends `units` one at a time and returns how many were admitted.
fn spend<A: Algorithm>(limiter: &KeyedLimiter<&'static str, A, ManualClock>, units: u64) -> u64 {
    (0..units)
        .filter(|_| limiter.check(&"k", 1).allowed)
        .count() as u64
}

/// The classic flaw: a fixed window admits `limit` at the end of one window and
/// `limit` again right after the boundary, i.e. 2×limit within 2 ms. The
/// sliding variants (and GCRA) keep the total within `limit` over any period.
#[test]
fn fixed_window_allows_double_limit_across_boundary_sliding_variants_do_not() {
    let limit = 100;
    let quota = Quota::new(limit, Duration::from_secs(1));
    let clock = ManualClock::new();
    let fixed = keyed(FixedWindow::new(quota).unwrap(), &clock);
    let log = keyed(SlidingLog::new(quota).unwrap(), &clock);
    let counter = keyed(SlidingWindow::new(quota).unwrap(), &clock);
    let gcra = keyed(Gcra::new(quota).unwrap(), &clock);

    // 1 ms before the boundary of the window [0 s, 1 s).
    clock.set(999_000_000);
    let before = [
        spend(&fixed, limit),
        spend(&log, limit),
        spend(&counter, limit),
        spend(&gcra, limit),
    ];
    assert_eq!(
        before, [limit; 4],
        "every algorithm admits a full quota when fresh"
    );

    // 1 ms after the boundary: 2 ms after the first burst.
    clock.advance(2 * MS);
    let fixed_after = spend(&fixed, limit);
    let log_after = spend(&log, limit);
    let counter_after = spend(&counter, limit);
    let gcra_after = spend(&gcra, limit);

    assert_eq!(
        limit + fixed_after,
        2 * limit,
        "fixed window: 2×limit within 2 ms"
    );
    assert!(
        limit + log_after <= limit,
        "sliding log admitted {log_after} more"
    );
    assert!(
        limit + counter_after <= limit,
        "sliding counter admitted {counter_after} more"
    );
    // GCRA refills smoothly: 2 ms at 10 ms per unit refills nothing yet.
    assert_eq!(gcra_after, 0);
}

#[test]
fn gcra_exact_decisions() {
    // 10 per second => one unit every 100 ms, bucket of 10.
    let clock = ManualClock::new();
    let limiter = keyed(Gcra::new(Quota::per_second(10)).unwrap(), &clock);
    for expected_remaining in (0..10).rev() {
        let d = limiter.check(&"k", 1);
        assert!(d.allowed);
        assert_eq!(d.remaining, expected_remaining);
        assert_eq!(d.retry_after, Duration::ZERO);
        // Each admission pushes the TAT 100 ms further away.
        assert_eq!(d.reset_after, MS * (100 * (10 - expected_remaining) as u32));
    }
    let d = limiter.check(&"k", 1);
    assert!(!d.allowed);
    assert_eq!(
        (d.remaining, d.retry_after, d.reset_after),
        (0, 100 * MS, 1000 * MS)
    );

    clock.advance(99 * MS);
    assert!(!limiter.check(&"k", 1).allowed);
    clock.advance(MS);
    let d = limiter.check(&"k", 1);
    assert!(d.allowed);
    assert_eq!(d.remaining, 0);

    // Cost 3 needs 300 ms of refill.
    let d = limiter.check(&"k", 3);
    assert_eq!((d.allowed, d.retry_after), (false, 300 * MS));
}

#[test]
fn gcra_burst_differs_from_limit() {
    // 60 per minute, but at most 5 at once.
    let clock = ManualClock::new();
    let limiter = keyed(
        Gcra::new(Quota::per_minute(60).with_burst(5)).unwrap(),
        &clock,
    );
    assert_eq!(spend(&limiter, 10), 5);
    clock.advance(Duration::from_secs(1));
    assert_eq!(spend(&limiter, 10), 1);
}

#[test]
fn fixed_window_exact_decisions() {
    let clock = ManualClock::new();
    let limiter = keyed(
        FixedWindow::new(Quota::new(3, Duration::from_secs(10))).unwrap(),
        &clock,
    );
    clock.set(4_000_000_000);
    let d = limiter.check(&"k", 2);
    assert_eq!(
        (d.allowed, d.remaining, d.reset_after),
        (true, 1, Duration::from_secs(6))
    );
    let d = limiter.check(&"k", 2);
    assert_eq!(
        (d.allowed, d.remaining, d.retry_after),
        (false, 1, Duration::from_secs(6))
    );
    let d = limiter.check(&"k", 1);
    assert_eq!((d.allowed, d.remaining), (true, 0));
    clock.set(10_000_000_000);
    let d = limiter.check(&"k", 3);
    assert_eq!(
        (d.allowed, d.remaining, d.reset_after),
        (true, 0, Duration::from_secs(10))
    );
}

#[test]
fn sliding_log_exact_decisions() {
    let clock = ManualClock::new();
    let limiter = keyed(
        SlidingLog::new(Quota::new(3, Duration::from_secs(10))).unwrap(),
        &clock,
    );
    assert!(limiter.check(&"k", 1).allowed); // t = 0
    clock.set(2_000_000_000);
    assert!(limiter.check(&"k", 2).allowed); // t = 2 s
    clock.set(5_000_000_000);
    let d = limiter.check(&"k", 1);
    // The unit from t=0 slides out at 10 s; the log is empty at 12 s.
    assert_eq!(
        (d.allowed, d.remaining, d.retry_after, d.reset_after),
        (false, 0, Duration::from_secs(5), Duration::from_secs(7))
    );
    // Two units need the t=2 s entry gone too.
    assert_eq!(limiter.check(&"k", 2).retry_after, Duration::from_secs(7));
    clock.set(10_000_000_000);
    let d = limiter.check(&"k", 1);
    assert_eq!((d.allowed, d.remaining), (true, 0));
}

#[test]
fn sliding_window_counter_exact_decisions() {
    let clock = ManualClock::new();
    let limiter = keyed(
        SlidingWindow::new(Quota::new(10, Duration::from_secs(10))).unwrap(),
        &clock,
    );
    assert!(limiter.check(&"k", 10).allowed); // window 0 full
                                              // 2.5 s into window 1 the previous window weighs 75% => 7.5 used, 2 admissible.
    clock.set(12_500_000_000);
    let d = limiter.check(&"k", 3);
    assert!(!d.allowed);
    assert_eq!(d.remaining, 2);
    // 3 fit once prev·(10 − e)/10 <= 7, i.e. at e = 3 s: 0.5 s from now.
    assert_eq!(d.retry_after, Duration::from_millis(500));
    let d = limiter.check(&"k", 2);
    assert_eq!((d.allowed, d.remaining), (true, 0));
    // Fresh once the units spent in window 1 [10 s, 20 s) stop weighing, i.e.
    // at the end of window 2 (30 s): 17.5 s from now.
    assert_eq!(d.reset_after, Duration::from_millis(17_500));
}

#[test]
fn cost_above_capacity_is_never_admitted() {
    let clock = ManualClock::new();
    let quota = Quota::per_second(5);
    let gcra = keyed(Gcra::new(quota).unwrap(), &clock);
    let fixed = keyed(FixedWindow::new(quota).unwrap(), &clock);
    let log = keyed(SlidingLog::new(quota).unwrap(), &clock);
    let counter = keyed(SlidingWindow::new(quota).unwrap(), &clock);
    for d in [
        gcra.check(&"k", 6),
        fixed.check(&"k", 6),
        log.check(&"k", 6),
        counter.check(&"k", 6),
    ] {
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::MAX);
        assert!(!d.can_succeed_later());
        assert_eq!(d.remaining, 5);
    }
}

#[test]
fn direct_limiter_matches_keyed_gcra() {
    let clock = ManualClock::new();
    let quota = Quota::new(7, Duration::from_millis(700)).with_burst(3);
    let direct = DirectLimiter::with_clock(quota, clock.clone()).unwrap();
    let keyed = keyed(Gcra::new(quota).unwrap(), &clock);
    for step in 0..500u64 {
        // A fixed pseudo-random walk of advances and costs.
        let advance = MS * ((step * 37 % 13) * 9) as u32;
        let cost = step * 7 % 4;
        clock.advance(advance);
        assert_eq!(direct.check(cost), keyed.check(&"k", cost), "step {step}");
    }
}

#[test]
fn a_clock_that_steps_back_reads_as_no_time_passed() {
    // A TSC read on another core can be earlier than the last admission's.
    let clock = ManualClock::new();
    let quota = Quota::new(2, Duration::from_secs(1)).with_burst(2);
    let direct = DirectLimiter::with_clock(quota, clock.clone()).unwrap();
    clock.set(10_000_000_000);
    assert!(direct.check(2).allowed);
    clock.set(9_000_000_000);
    let read = direct.check(0);
    assert_eq!(read.remaining, 0);
    let denied = direct.check(1);
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 0);
    assert_eq!(denied.retry_after, Duration::from_millis(1500));
}

#[test]
fn invalid_quotas_are_rejected() {
    let cases = [
        Quota::new(0, Duration::from_secs(1)),
        Quota::new(1, Duration::ZERO),
        Quota::per_second(1).with_burst(0),
        Quota::new(1, Duration::from_secs(u64::MAX)),
        Quota::new(1, Duration::from_secs(1_000_000_000)).with_burst(u64::MAX / 2),
    ];
    for quota in cases {
        assert!(
            matches!(Gcra::new(quota), Err(LimitError::InvalidQuota { .. })),
            "{quota:?} accepted"
        );
    }
    assert!(Gcra::new(Quota::per_second(1)).is_ok());
}
