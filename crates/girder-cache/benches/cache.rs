//! Hit-path cost against bare moka, measured in the same run.
//!
//! - `bare_moka_sync_get` vs `girder_get_if_fresh`: the sync fast path.
//! - `bare_moka_future_get` vs `girder_get_or_load`: the async API, each
//!   polled once with `now_or_never` (like for like: both futures are ready).
//!
//! Values are `Arc<u64>` in both, keys `u64`, 10,000 keys, cycling through
//! them so the hash table is exercised rather than one hot slot.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use girder_cache::{Cache, CacheConfig};

const KEYS: u64 = 10_000;
const TTL: Duration = Duration::from_secs(3600);

fn hits(c: &mut Criterion) {
    let moka_sync: moka::sync::Cache<u64, Arc<u64>> = moka::sync::Cache::builder()
        .max_capacity(KEYS * 2)
        .time_to_live(TTL)
        .build();
    let moka_future: moka::future::Cache<u64, Arc<u64>> = moka::future::Cache::builder()
        .max_capacity(KEYS * 2)
        .time_to_live(TTL)
        .build();
    let girder: Cache<u64, Arc<u64>, std::io::Error> = Cache::new(CacheConfig {
        max_capacity: KEYS * 2,
        ttl: TTL,
        ..CacheConfig::default()
    })
    .expect("valid config");
    for k in 0..KEYS {
        moka_sync.insert(k, Arc::new(k));
        moka_future
            .insert(k, Arc::new(k))
            .now_or_never()
            .expect("ready");
        girder.insert(k, Arc::new(k));
    }

    let mut g = c.benchmark_group("hit");
    let mut k = 0u64;
    g.bench_function("bare_moka_sync_get", |b| {
        b.iter(|| {
            k = (k + 1) % KEYS;
            black_box(moka_sync.get(black_box(&k)))
        })
    });
    g.bench_function("girder_get_if_fresh", |b| {
        b.iter(|| {
            k = (k + 1) % KEYS;
            black_box(girder.get_if_fresh(black_box(&k)))
        })
    });
    g.bench_function("bare_moka_future_get", |b| {
        b.iter(|| {
            k = (k + 1) % KEYS;
            black_box(moka_future.get(black_box(&k)).now_or_never())
        })
    });
    g.bench_function("girder_get_or_load", |b| {
        b.iter(|| {
            k = (k + 1) % KEYS;
            black_box(
                girder
                    .get_or_load(black_box(&k), || async {
                        unreachable!("all keys are fresh")
                    })
                    .now_or_never(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, hits);
criterion_main!(benches);
