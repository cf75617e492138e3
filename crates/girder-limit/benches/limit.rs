//! girder-limit vs governor, in the same run.
//!
//! `cargo bench -p girder-limit --bench limit -- --warm-up-time 1 --measurement-time 3`
//!
//! Two-thread benches use `iter_custom`: two std threads each do `iters` checks
//! after a barrier; the reported time per iteration is wall time / (2 · iters),
//! i.e. the inverse of aggregate throughput (perfect scaling halves it).

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use girder_limit::{
    Algorithm, DirectLimiter, FixedWindow, Gcra, KeyedLimiter, Quota, SlidingLog, SlidingWindow,
    StoreConfig,
};

const KEYS: usize = 10_000;

/// A quota so large that every check is admitted (the CAS/write path).
fn girder_quota() -> Quota {
    Quota::per_second(u64::from(u32::MAX))
}

fn governor_quota() -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::MAX)
}

/// 10 000 keys in a fixed pseudo-random order, so both libraries see the same stream.
fn keys() -> Arc<Vec<u64>> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    Arc::new(
        (0..KEYS)
            .map(|_| {
                // xorshift64: cheap, deterministic, no dependency.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect(),
    )
}

/// Runs `work(thread, iters)` on two threads; returns wall time / 2 so criterion's
/// per-iteration figure is wall time per check.
fn two_threads<F>(iters: u64, work: F) -> Duration
where
    F: Fn(usize, u64) + Send + Sync + 'static,
{
    let work = Arc::new(work);
    let barrier = Arc::new(Barrier::new(3));
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let (work, barrier) = (Arc::clone(&work), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                work(t, iters);
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed() / 2
}

fn direct(c: &mut Criterion) {
    let mut group = c.benchmark_group("direct");
    let girder = Arc::new(DirectLimiter::new(girder_quota()).unwrap());
    let governor = Arc::new(governor::RateLimiter::direct(governor_quota()));

    group.bench_function("girder/1t", |b| {
        b.iter(|| black_box(girder.check(1).allowed))
    });
    group.bench_function("governor/1t", |b| {
        b.iter(|| black_box(governor.check().is_ok()))
    });

    let g = Arc::clone(&girder);
    group.bench_function("girder/2t", move |b| {
        b.iter_custom(|iters| {
            let g = Arc::clone(&g);
            two_threads(iters, move |_, n| {
                for _ in 0..n {
                    black_box(g.check(1).allowed);
                }
            })
        })
    });
    let gv = Arc::clone(&governor);
    group.bench_function("governor/2t", move |b| {
        b.iter_custom(|iters| {
            let gv = Arc::clone(&gv);
            two_threads(iters, move |_, n| {
                for _ in 0..n {
                    black_box(gv.check().is_ok());
                }
            })
        })
    });
    group.finish();
}

fn keyed(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed_10k");
    let keys = keys();
    let girder = Arc::new(
        KeyedLimiter::new(Gcra::new(girder_quota()).unwrap(), StoreConfig::default()).unwrap(),
    );
    let governor = Arc::new(governor::RateLimiter::keyed(governor_quota()));
    for k in keys.iter() {
        girder.check(k, 1);
        let _ = governor.check_key(k);
    }

    let mut i = 0;
    group.bench_function("girder/1t", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(girder.check(&keys[i], 1).allowed)
        })
    });
    group.bench_function("governor/1t", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(governor.check_key(&keys[i]).is_ok())
        })
    });

    let (g, k) = (Arc::clone(&girder), Arc::clone(&keys));
    group.bench_function("girder/2t", move |b| {
        b.iter_custom(|iters| {
            let (g, k) = (Arc::clone(&g), Arc::clone(&k));
            two_threads(iters, move |t, n| {
                let mut i = t * KEYS / 2;
                for _ in 0..n {
                    i = (i + 1) % KEYS;
                    black_box(g.check(&k[i], 1).allowed);
                }
            })
        })
    });
    let (gv, k) = (Arc::clone(&governor), Arc::clone(&keys));
    group.bench_function("governor/2t", move |b| {
        b.iter_custom(|iters| {
            let (gv, k) = (Arc::clone(&gv), Arc::clone(&k));
            two_threads(iters, move |t, n| {
                let mut i = t * KEYS / 2;
                for _ in 0..n {
                    i = (i + 1) % KEYS;
                    black_box(gv.check_key(&k[i]).is_ok());
                }
            })
        })
    });

    // Same store, but each thread owns half of the keys (as when connections
    // are spread over worker threads): only shard locks are shared, not entries.
    let (g, k) = (Arc::clone(&girder), Arc::clone(&keys));
    group.bench_function("girder/2t_disjoint", move |b| {
        b.iter_custom(|iters| {
            let (g, k) = (Arc::clone(&g), Arc::clone(&k));
            two_threads(iters, move |t, n| {
                let half = &k[t * KEYS / 2..(t + 1) * KEYS / 2];
                let mut i = 0;
                for _ in 0..n {
                    i = (i + 1) % half.len();
                    black_box(g.check(&half[i], 1).allowed);
                }
            })
        })
    });
    let (gv, k) = (Arc::clone(&governor), Arc::clone(&keys));
    group.bench_function("governor/2t_disjoint", move |b| {
        b.iter_custom(|iters| {
            let (gv, k) = (Arc::clone(&gv), Arc::clone(&k));
            two_threads(iters, move |t, n| {
                let half = &k[t * KEYS / 2..(t + 1) * KEYS / 2];
                let mut i = 0;
                for _ in 0..n {
                    i = (i + 1) % half.len();
                    black_box(gv.check_key(&half[i]).is_ok());
                }
            })
        })
    });
    group.finish();
}

fn bench_algorithm<A: Algorithm>(c: &mut Criterion, name: &str, algorithm: A) {
    let keys = keys();
    let limiter = KeyedLimiter::new(algorithm, StoreConfig::default()).unwrap();
    for k in keys.iter() {
        limiter.check(k, 1);
    }
    let mut i = 0;
    c.bench_function(&format!("algorithms_keyed_10k/{name}"), |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(limiter.check(&keys[i], 1).allowed)
        })
    });
}

fn algorithms(c: &mut Criterion) {
    // 1000 per ms: generous enough that (at ~10k keys) most checks are admitted,
    // and the sliding log keeps only a few entries per key.
    let quota = Quota::new(1_000, Duration::from_millis(1));
    bench_algorithm(c, "gcra", Gcra::new(quota).unwrap());
    bench_algorithm(c, "fixed_window", FixedWindow::new(quota).unwrap());
    bench_algorithm(c, "sliding_log", SlidingLog::new(quota).unwrap());
    bench_algorithm(c, "sliding_window", SlidingWindow::new(quota).unwrap());
}

criterion_group!(benches, direct, keyed, algorithms);
criterion_main!(benches);
