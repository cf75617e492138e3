//! Bounded memory of the keyed store: caps, idle reclamation, cap policies, threads.

use std::sync::Arc;
use std::time::Duration;

use girder_limit::{
    CapPolicy, DirectLimiter, Gcra, KeyedLimiter, LimitError, ManualClock, Quota, StoreConfig,
};

const MS: Duration = Duration::from_millis(1);

/// A million distinct keys, all still active (their TATs are in the future), go
/// through a store capped at 10 000: the tracked count never exceeds the cap.
#[test]
fn key_churn_never_exceeds_the_cap() {
    let clock = ManualClock::new();
    let config = StoreConfig {
        max_keys: 10_000,
        ..StoreConfig::default()
    };
    let gcra = Gcra::new(Quota::per_minute(1)).unwrap();
    let limiter = KeyedLimiter::with_clock(gcra, config, clock.clone()).unwrap();
    assert!(limiter.capacity() <= 10_000);
    let mut max_seen = 0;
    for key in 0..1_000_000u64 {
        clock.advance(Duration::from_micros(1));
        // A new key always has its quota: eviction must not break that.
        assert!(limiter.check(&key, 1).allowed, "new key {key} denied");
        if key % 1_009 == 0 {
            let len = limiter.len();
            assert!(
                len <= limiter.capacity(),
                "{len} keys tracked after key {key}"
            );
            max_seen = max_seen.max(len);
        }
    }
    assert!(limiter.len() <= limiter.capacity());
    // The cap is actually used (this is not a store that tracks nothing).
    assert!(
        max_seen > limiter.capacity() * 9 / 10,
        "max seen {max_seen}"
    );
}

/// Idle keys disappear without any explicit call, once their state equals a
/// new key's, and not before.
#[test]
fn idle_keys_are_reclaimed_automatically_and_only_when_fresh() {
    let clock = ManualClock::new();
    let config = StoreConfig {
        sweep_interval: Duration::from_secs(1),
        ..StoreConfig::default()
    };
    // 10 per second: one unit keeps a key's TAT 100 ms in the future.
    let limiter = KeyedLimiter::with_clock(
        Gcra::new(Quota::per_second(10)).unwrap(),
        config,
        clock.clone(),
    )
    .unwrap();
    for key in 0..10_000u64 {
        limiter.check(&key, 1);
    }
    assert_eq!(limiter.len(), 10_000);

    // Just before the TATs: nothing may go, even with an explicit sweep.
    clock.set(100_000_000 - 1);
    limiter.sweep();
    assert_eq!(limiter.len(), 10_000);

    // Past the TATs and the sweep interval: traffic on other keys reclaims them.
    clock.set(2_000_000_000);
    for key in 1_000_000..1_010_000u64 {
        limiter.check(&key, 1);
    }
    assert_eq!(limiter.len(), 10_000, "only the 10 000 new keys remain");
    assert_eq!(limiter.check(&0, 0).remaining, 10, "old key reads as fresh");
}

#[test]
fn cost_zero_and_denied_new_keys_are_not_stored() {
    let clock = ManualClock::new();
    let limiter = KeyedLimiter::with_clock(
        Gcra::new(Quota::per_second(2)).unwrap(),
        StoreConfig::default(),
        clock,
    )
    .unwrap();
    assert!(limiter.check(&"peek", 0).allowed);
    assert!(!limiter.check(&"too-big", 3).allowed);
    assert!(limiter.is_empty());
}

#[test]
fn evict_nearest_fresh_evicts_the_smallest_tats() {
    let clock = ManualClock::new();
    let config = StoreConfig {
        max_keys: 64,
        shards: 1,
        when_full: CapPolicy::EvictNearestFresh,
        ..StoreConfig::default()
    };
    // 100 per second: key i spends i+1 units, so its TAT is (i+1)·10 ms.
    let limiter =
        KeyedLimiter::with_clock(Gcra::new(Quota::per_second(100)).unwrap(), config, clock)
            .unwrap();
    for key in 0..64u64 {
        assert!(limiter.check(&key, key + 1).allowed);
    }
    assert_eq!(limiter.len(), 64);
    assert!(limiter.check(&1000, 50).allowed);
    // Batch = 64/32 = 2: keys 0 and 1 (nearest to fresh) went, the new key came in.
    assert_eq!(limiter.len(), 63);
    // Cost-0 checks read without storing: evicted keys read as fresh.
    assert_eq!(limiter.check(&0, 0).remaining, 100);
    assert_eq!(limiter.check(&1, 0).remaining, 100);
    assert_eq!(limiter.check(&2, 0).remaining, 97);
    assert_eq!(limiter.check(&63, 0).remaining, 36);
    assert_eq!(limiter.check(&1000, 0).remaining, 50);
}

#[test]
fn reject_new_keys_fails_closed_until_an_entry_turns_fresh() {
    let clock = ManualClock::new();
    let config = StoreConfig {
        max_keys: 4,
        shards: 1,
        when_full: CapPolicy::RejectNewKeys,
        ..StoreConfig::default()
    };
    let limiter = KeyedLimiter::with_clock(
        Gcra::new(Quota::per_second(10)).unwrap(),
        config,
        clock.clone(),
    )
    .unwrap();
    for key in 0..4u64 {
        // TATs at 100, 200, 300, 400 ms.
        assert!(limiter.check(&key, key + 1).allowed);
    }
    let d = limiter.check(&99, 1);
    assert!(!d.allowed);
    assert_eq!(d.retry_after, 100 * MS, "key 0 turns fresh at 100 ms");
    // Known keys are unaffected.
    assert!(limiter.check(&3, 1).allowed);
    assert_eq!(limiter.len(), 4);

    clock.advance(100 * MS);
    assert!(
        limiter.check(&99, 1).allowed,
        "key 0 was idle and reclaimed"
    );
    assert_eq!(limiter.len(), 4);
}

#[test]
fn invalid_store_configs_are_rejected() {
    let gcra = || Gcra::new(Quota::per_second(1)).unwrap();
    for config in [
        StoreConfig {
            max_keys: 0,
            ..StoreConfig::default()
        },
        StoreConfig {
            shards: 0,
            ..StoreConfig::default()
        },
    ] {
        let result = KeyedLimiter::<u64, _, _>::with_clock(gcra(), config, ManualClock::new());
        assert!(matches!(result, Err(LimitError::InvalidStoreConfig { .. })));
    }
    // Fewer keys than shards: shards shrink, the cap holds exactly.
    let small = StoreConfig {
        max_keys: 3,
        shards: 64,
        ..StoreConfig::default()
    };
    let limiter = KeyedLimiter::<u64, _, _>::with_clock(gcra(), small, ManualClock::new()).unwrap();
    assert!(limiter.capacity() >= 1 && limiter.capacity() <= 3);
}

/// Two threads race for one key's bucket at a frozen instant: exactly `burst`
/// admissions in total, no lost or double updates.
#[test]
fn two_threads_admit_exactly_the_burst() {
    let clock = ManualClock::new();
    let quota = Quota::per_second(5_000);
    let keyed = Arc::new(
        KeyedLimiter::with_clock(
            Gcra::new(quota).unwrap(),
            StoreConfig::default(),
            clock.clone(),
        )
        .unwrap(),
    );
    let direct = Arc::new(DirectLimiter::with_clock(quota, clock).unwrap());
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (keyed, direct) = (Arc::clone(&keyed), Arc::clone(&direct));
            std::thread::spawn(move || {
                let mut admitted = (0, 0);
                for _ in 0..10_000 {
                    admitted.0 += u64::from(keyed.check(&"shared", 1).allowed);
                    admitted.1 += u64::from(direct.check(1).allowed);
                }
                admitted
            })
        })
        .collect();
    let totals = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(totals, (5_000, 5_000));
}

/// At the cap, idle keys are reclaimed first; active keys are evicted only if
/// that does not free enough room.
#[test]
fn full_shard_reclaims_idle_keys_before_evicting_active_ones() {
    let clock = ManualClock::new();
    let config = StoreConfig {
        max_keys: 64,
        shards: 1,
        ..StoreConfig::default()
    };
    let limiter = KeyedLimiter::with_clock(
        Gcra::new(Quota::per_second(100)).unwrap(),
        config,
        clock.clone(),
    )
    .unwrap();
    // Keys 0..32 spend 1 unit (TAT 10 ms); keys 32..64 spend 50 (TAT 500 ms).
    for key in 0..64u64 {
        let cost = if key < 32 { 1 } else { 50 };
        assert!(limiter.check(&key, cost).allowed);
    }
    clock.advance(20 * MS);
    assert!(limiter.check(&1000, 1).allowed);
    // The 32 idle keys went; all 32 active keys kept their state.
    assert_eq!(limiter.len(), 33);
    for key in 32..64u64 {
        assert_eq!(
            limiter.check(&key, 0).remaining,
            52,
            "key {key} lost its state"
        );
    }
}
