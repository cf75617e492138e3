//! Criterion benchmarks of the lookup hot paths.
//!
//! ```text
//! flock /tmp/cargo.lock cargo bench -p girder-hash --bench hashing
//! ```
//!
//! Groups: `key_hash` (MD5 as ketama uses it, XXH3, and a hand-written FNV-1a for
//! comparison), `lookup/<algorithm>/<nodes>` (hash + place one key, keys cycling through a
//! 4,096-key working set), and `build/<algorithm>/100` (constructing a placement).
//! `examples/hashing_table.rs` prints balance and movement next to lookup cost.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use girder_hash::{
    hash_key, ketama_hash, BoundedLoadConfig, BoundedLoadRing, JumpHash, KetamaConfig, KetamaRing,
    KeyHash, Maglev, MaglevConfig, Node, Placement, Rendezvous,
};

const WORKING_SET: usize = 4096;

fn keys() -> Vec<Vec<u8>> {
    (0..WORKING_SET)
        .map(|i| format!("user:{:07}", i * 7919).into_bytes())
        .collect()
}

fn node_name(i: usize) -> String {
    format!("10.0.{}.{}:6379", i / 250, i % 250 + 1)
}

fn nodes(n: usize) -> Vec<Node> {
    (0..n).map(|i| Node::new(node_name(i))).collect()
}

/// FNV-1a 64, the usual hand-written alternative, for the `key_hash` comparison.
fn fnv1a(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn key_hash(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("key_hash");
    let mut i = 0;
    group.bench_function("md5_ketama", |b| {
        b.iter(|| {
            i = (i + 1) % WORKING_SET;
            ketama_hash(black_box(&keys[i]))
        })
    });
    group.bench_function("xxh3_64", |b| {
        b.iter(|| {
            i = (i + 1) % WORKING_SET;
            hash_key(black_box(&keys[i]))
        })
    });
    group.bench_function("fnv1a_64", |b| {
        b.iter(|| {
            i = (i + 1) % WORKING_SET;
            fnv1a(black_box(&keys[i]))
        })
    });
    group.finish();
}

fn bench_placement(c: &mut Criterion, name: &str, n: usize, p: &dyn Placement, keys: &[Vec<u8>]) {
    let mut i = 0;
    c.bench_with_input(BenchmarkId::new(format!("lookup/{name}"), n), &n, |b, _| {
        b.iter(|| {
            i = (i + 1) % WORKING_SET;
            p.node_for(black_box(&keys[i])).map(Node::weight)
        })
    });
}

fn lookup(c: &mut Criterion) {
    let keys = keys();
    for n in [10, 100] {
        let md5_ring = KetamaRing::from_nodes(KetamaConfig::default(), nodes(n)).unwrap();
        bench_placement(c, "ketama_md5", n, &md5_ring, &keys);
        let xxh3 = KetamaConfig {
            key_hash: KeyHash::Xxh3,
            ..KetamaConfig::default()
        };
        let xxh3_ring = KetamaRing::from_nodes(xxh3, nodes(n)).unwrap();
        bench_placement(c, "ketama_xxh3", n, &xxh3_ring, &keys);

        // The binary search alone, on hashes computed beforehand.
        let hashes: Vec<u32> = keys.iter().map(|k| md5_ring.hash(k)).collect();
        let mut i = 0;
        c.bench_with_input(
            BenchmarkId::new("lookup/ketama_prehashed", n),
            &n,
            |b, _| {
                b.iter(|| {
                    i = (i + 1) % WORKING_SET;
                    md5_ring.node_index_for_hash(black_box(hashes[i]))
                })
            },
        );

        let buckets: Vec<pingora_ketama::Bucket> = (0..n)
            .map(|i| pingora_ketama::Bucket::new(node_name(i).parse::<SocketAddr>().unwrap(), 1))
            .collect();
        let pingora = pingora_ketama::Continuum::new(&buckets);
        let mut i = 0;
        c.bench_with_input(BenchmarkId::new("lookup/pingora_ketama", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % WORKING_SET;
                pingora.node(black_box(&keys[i]))
            })
        });

        let jump = JumpHash::from_nodes(nodes(n)).unwrap();
        bench_placement(c, "jump", n, &jump, &keys);
        let hrw = Rendezvous::from_nodes(nodes(n)).unwrap();
        bench_placement(c, "rendezvous", n, &hrw, &keys);
        let maglev = Maglev::from_nodes(MaglevConfig::default(), nodes(n)).unwrap();
        bench_placement(c, "maglev", n, &maglev, &keys);

        // Assigning, with loads near the steady state of WORKING_SET keys.
        let mut bounded =
            BoundedLoadRing::from_nodes(BoundedLoadConfig::default(), nodes(n)).unwrap();
        let mut i = 0;
        c.bench_with_input(BenchmarkId::new("lookup/bounded_assign", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % WORKING_SET;
                if i == 0 {
                    bounded.reset_loads();
                }
                bounded.assign(black_box(&keys[i])).map(Node::weight)
            })
        });
    }
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group.bench_function("ketama/100", |b| {
        b.iter(|| KetamaRing::from_nodes(KetamaConfig::default(), nodes(100)).unwrap())
    });
    group.bench_function("maglev/100", |b| {
        b.iter(|| Maglev::from_nodes(MaglevConfig::default(), nodes(100)).unwrap())
    });
    group.finish();
}

fn config() -> Criterion {
    // Short runs: the shared 2-core machine is noisy either way; repeat runs and take
    // medians rather than lengthening one run.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = key_hash, lookup, build
}
criterion_main!(benches);
