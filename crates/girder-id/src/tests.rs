use super::*;
use proptest::prelude::*;
use std::sync::Arc;

const T0: u64 = DEFAULT_EPOCH_MS + 1_000_000;

fn generator(clock: &ManualClock) -> Generator<&ManualClock> {
    Generator::new(
        Config {
            node_id: 5,
            ..Config::default()
        },
        clock,
    )
    .unwrap()
}

/// A clock that moves forward one millisecond after every `every` reads: virtual time that
/// lets a test watch the generator wait out an exhausted millisecond without sleeping.
struct TickingClock {
    start: u64,
    every: u64,
    reads: AtomicU64,
}

impl Clock for TickingClock {
    fn now_ms(&self) -> u64 {
        let n = self.reads.fetch_add(1, Ordering::SeqCst);
        self.start + n / self.every
    }
}

#[test]
fn ids_in_one_millisecond_count_up_the_sequence() {
    let clock = ManualClock::new(T0);
    let g = generator(&clock);
    let mut prev = None;
    for seq in 0..=MAX_SEQUENCE {
        let id = g.next_id().unwrap();
        let p = g.decode(id);
        assert_eq!(p.unix_ms, T0);
        assert_eq!(p.node_id, 5);
        assert_eq!(u64::from(p.sequence), seq);
        assert!(prev.is_none_or(|prev| id > prev));
        prev = Some(id);
    }
}

#[test]
fn first_id_at_the_epoch_is_not_repeated() {
    let clock = ManualClock::new(DEFAULT_EPOCH_MS);
    let g = generator(&clock);
    let a = g.next_id().unwrap();
    let b = g.next_id().unwrap();
    assert!(b > a, "{a} then {b}");
}

#[test]
fn exhausted_millisecond_waits_for_the_clock() {
    // The clock ticks after 5000 reads: the generator uses 4096 of them issuing IDs at T0,
    // then must keep reading (waiting) until the tick instead of issuing early.
    let clock = TickingClock {
        start: T0,
        every: 5000,
        reads: AtomicU64::new(0),
    };
    let g = Generator::new(Config::default(), &clock).unwrap();
    for _ in 0..=MAX_SEQUENCE {
        assert_eq!(g.decode(g.next_id().unwrap()).unix_ms, T0);
    }
    let next = g.decode(g.next_id().unwrap());
    assert_eq!((next.unix_ms, next.sequence), (T0 + 1, 0));
    assert!(
        clock.reads.load(Ordering::SeqCst) > 5000,
        "it waited for the tick"
    );
}

#[test]
fn small_regression_keeps_issuing_from_the_last_timestamp() {
    let clock = ManualClock::new(T0);
    let g = generator(&clock);
    let before = g.next_id().unwrap();
    clock.set(T0 - 3_000);
    let after = g.next_id().unwrap();
    assert!(after > before);
    assert_eq!(g.decode(after).unix_ms, T0);
    assert_eq!(g.decode(after).sequence, 1);
    assert!(g.clock_regressions() >= 1);
}

#[test]
fn regression_that_exhausts_the_sequence_borrows_within_the_bound() {
    let clock = ManualClock::new(T0);
    let g = generator(&clock);
    g.next_id().unwrap();
    clock.set(T0 - 4_998);
    let mut last = 0;
    // Exhaust T0, T0+1, T0+2: borrowing moves the logical time ahead while the clock stays
    // put, up to exactly the bound (T0+2 is 5000 ms ahead of the clock).
    for _ in 0..(3 * 4096 - 1) {
        let id = g.next_id().unwrap();
        assert!(id > last);
        last = id;
    }
    assert_eq!(g.decode(last).unix_ms, T0 + 2);
    // The next borrow would put IDs 5001 ms ahead of the clock.
    let err = g.next_id().unwrap_err();
    assert_eq!(
        err,
        Error::ClockMovedBackwards {
            behind_ms: 5_001,
            max_ms: 5_000
        }
    );
    // Once the clock catches up, IDs continue above everything issued.
    clock.set(T0 + 3);
    let id = g.next_id().unwrap();
    assert!(id > last);
    assert_eq!(g.decode(id).unix_ms, T0 + 3);
}

#[test]
fn large_regression_is_an_error_not_a_duplicate() {
    let clock = ManualClock::new(T0);
    let g = generator(&clock);
    let before = g.next_id().unwrap();
    clock.set(T0 - 5_001);
    assert_eq!(
        g.next_id(),
        Err(Error::ClockMovedBackwards {
            behind_ms: 5_001,
            max_ms: 5_000
        })
    );
    clock.set(T0);
    assert!(g.next_id().unwrap() > before);
}

#[test]
fn clock_outside_the_layout_is_an_error() {
    let clock = ManualClock::new(DEFAULT_EPOCH_MS - 1);
    let g = generator(&clock);
    assert!(matches!(g.next_id(), Err(Error::ClockBeforeEpoch { .. })));
    clock.set(DEFAULT_EPOCH_MS + MAX_TIMESTAMP + 1);
    assert_eq!(g.next_id(), Err(Error::TimestampOverflow));
}

#[test]
fn node_id_above_1023_is_rejected() {
    let err = Generator::new(
        Config {
            node_id: 1024,
            ..Config::default()
        },
        SystemClock,
    )
    .unwrap_err();
    assert_eq!(err, Error::InvalidNodeId(1024));
    assert_eq!(
        err.to_string(),
        "node id must be between 0 and 1023 (got 1024)"
    );
}

#[test]
fn decode_rejects_the_sign_bit() {
    assert_eq!(decode(1 << 63, 0), Err(Error::NotAnId(1 << 63)));
}

#[test]
fn four_threads_by_a_million_ids_are_unique_and_ordered_per_thread() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 1_000_000;
    let g = Arc::new(Generator::new(Config::default(), SystemClock).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let g = Arc::clone(&g);
            std::thread::spawn(move || {
                let mut ids = Vec::with_capacity(PER_THREAD);
                g.next_ids(PER_THREAD, &mut ids).unwrap();
                ids
            })
        })
        .collect();
    let mut all = Vec::with_capacity(THREADS * PER_THREAD);
    for h in handles {
        let ids = h.join().unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "per-thread order");
        all.extend(ids);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), THREADS * PER_THREAD, "no duplicates");
}

proptest! {
    #[test]
    fn compose_decode_round_trip(ts in 0..=MAX_TIMESTAMP, node in 0..=MAX_NODE_ID, seq in 0..=MAX_SEQUENCE as u16, epoch in 0u64..=DEFAULT_EPOCH_MS) {
        let id = compose(ts, node, seq);
        prop_assert!(id >> 63 == 0);
        let p = decode(id, epoch).unwrap();
        prop_assert_eq!((p.timestamp, p.node_id, p.sequence, p.unix_ms), (ts, node, seq, epoch + ts));
    }

    /// Whatever the clock does, the IDs that are issued are strictly increasing, and no ID
    /// runs further ahead of the latest clock reading than the regression bound.
    #[test]
    fn ids_stay_ordered_under_any_clock_walk(steps in prop::collection::vec((-6_000i64..2_000, 1usize..600), 1..40)) {
        let clock = ManualClock::new(T0);
        let g = generator(&clock);
        let mut last = 0u64;
        let mut now = T0;
        for (jump, burst) in steps {
            now = now.saturating_add_signed(jump).max(DEFAULT_EPOCH_MS);
            clock.set(now);
            for _ in 0..burst {
                match g.next_id() {
                    Ok(id) => {
                        prop_assert!(id > last, "{} after {}", id, last);
                        let ahead = g.decode(id).unix_ms.saturating_sub(now);
                        prop_assert!(ahead <= DEFAULT_MAX_CLOCK_REGRESSION_MS);
                        last = id;
                    }
                    Err(Error::ClockMovedBackwards { behind_ms, max_ms }) => {
                        prop_assert!(behind_ms > max_ms);
                        break;
                    }
                    Err(e) => prop_assert!(false, "unexpected error {e}"),
                }
            }
        }
    }
}
