//! Snowflake generation against `uuid::Uuid::now_v7()`, the ID a Rust user would otherwise pick.
//!
//! Two questions, two groups:
//! - `sustained`: IDs per second from one generator called back to back. The layout caps a
//!   Snowflake generator at 4096 IDs per millisecond (4,096,000/s); the target is ≥ 4,000,000/s.
//! - `per_id_cost`: what one call costs when the layout does not make it wait. Each timed burst
//!   of 2,048 IDs starts just after a millisecond boundary, so it stays within one
//!   millisecond's sequence space; uuid is timed in the same bursts.
//!
//! Run: `cargo bench -p girder-id --bench ids`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use girder_id::{Clock, Config, Generator, SystemClock};
use std::hint::black_box;
use std::time::{Duration, Instant};

const BURST: u64 = 2_048;

fn sustained(c: &mut Criterion) {
    let mut group = c.benchmark_group("sustained");
    group.throughput(Throughput::Elements(1));
    let generator = Generator::new(Config::default(), SystemClock).unwrap();
    group.bench_function("girder_snowflake", |b| {
        b.iter(|| black_box(generator.next_id().unwrap()))
    });
    group.bench_function("uuid_now_v7", |b| {
        b.iter(|| black_box(uuid::Uuid::now_v7()))
    });
    group.finish();
}

/// Spins until the wall clock enters a new millisecond.
fn wait_for_fresh_millisecond() {
    let start = SystemClock.now_ms();
    while SystemClock.now_ms() == start {
        std::hint::spin_loop();
    }
}

/// Times `iters` calls of `f` in bursts that each start on a fresh millisecond.
fn in_bursts(iters: u64, mut f: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BURST);
        wait_for_fresh_millisecond();
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

fn per_id_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_id_cost");
    group.throughput(Throughput::Elements(1));
    let generator = Generator::new(Config::default(), SystemClock).unwrap();
    group.bench_function("girder_snowflake", |b| {
        b.iter_custom(|iters| {
            in_bursts(iters, || {
                black_box(generator.next_id().unwrap());
            })
        })
    });
    group.bench_function("uuid_now_v7", |b| {
        b.iter_custom(|iters| {
            in_bursts(iters, || {
                black_box(uuid::Uuid::now_v7());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, sustained, per_id_cost);
criterion_main!(benches);
