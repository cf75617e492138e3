//! Prints the README's table: for 10 and 100 nodes and 1M keys, per algorithm, the lookup
//! cost, the balance and the fraction of keys moved when a node is added or removed.
//!
//! ```text
//! flock /tmp/cargo.lock cargo run --release -p girder-hash --example hashing_table
//! ```
//!
//! Everything is measured on this run; nothing is hard-coded. Lookup time is the median of
//! `RUNS` passes over all keys (each key is a separate heap allocation, as in a service),
//! including hashing the key. `GIRDER_HASH_KEYS` overrides the key count.

use std::collections::HashMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use girder_hash::{
    BoundedLoadConfig, BoundedLoadRing, JumpHash, KetamaConfig, KetamaRing, KeyHash, Maglev,
    MaglevConfig, Node, Placement, Rendezvous,
};

const RUNS: usize = 5;

fn node_name(i: usize) -> String {
    // Valid socket addresses, so pingora-ketama gets the same servers.
    format!("10.0.{}.{}:6379", i / 250, i % 250 + 1)
}

fn nodes(n: usize) -> Vec<Node> {
    (0..n).map(|i| Node::new(node_name(i))).collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median nanoseconds per call of `f` over all keys.
fn time_per_key(keys: &[Vec<u8>], mut f: impl FnMut(&[u8])) -> f64 {
    let runs = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for key in keys {
                f(black_box(key));
            }
            start.elapsed().as_nanos() as f64 / keys.len() as f64
        })
        .collect();
    median(runs)
}

/// The node name each key maps to, as an index into a name table shared across layouts.
fn assignment(
    keys: &[Vec<u8>],
    names: &mut HashMap<String, u32>,
    f: impl Fn(&[u8]) -> String,
) -> Vec<u32> {
    keys.iter()
        .map(|k| {
            let next = names.len() as u32;
            *names.entry(f(k)).or_insert(next)
        })
        .collect()
}

fn max_over_mean(assigned: &[u32], nodes: usize) -> f64 {
    let mut counts: HashMap<u32, u64> = HashMap::new();
    for &a in assigned {
        *counts.entry(a).or_default() += 1;
    }
    let max = *counts.values().max().unwrap() as f64;
    max / (assigned.len() as f64 / nodes as f64)
}

fn moved(a: &[u32], b: &[u32]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
}

struct Row {
    name: &'static str,
    nodes: usize,
    lookup_ns: f64,
    max_mean: f64,
    moved_add: Option<f64>,
    moved_remove: Option<f64>,
}

/// Measures one algorithm that implements [`Placement`].
fn measure(
    name: &'static str,
    n: usize,
    keys: &[Vec<u8>],
    build: impl Fn(Vec<Node>) -> Box<dyn Placement>,
) -> Row {
    let base = build(nodes(n));
    let lookup_ns = time_per_key(keys, |k| {
        black_box(base.node_for(k));
    });
    let mut names = HashMap::new();
    let before = assignment(keys, &mut names, |k| {
        base.node_for(k).unwrap().name().to_owned()
    });
    let mut grown = build(nodes(n));
    grown.add_node(Node::new(node_name(n))).unwrap();
    let after_add = assignment(keys, &mut names, |k| {
        grown.node_for(k).unwrap().name().to_owned()
    });
    let mut shrunk = build(nodes(n));
    shrunk.remove_node(&node_name(n / 2)).unwrap();
    let after_remove = assignment(keys, &mut names, |k| {
        shrunk.node_for(k).unwrap().name().to_owned()
    });
    Row {
        name,
        nodes: n,
        lookup_ns,
        max_mean: max_over_mean(&before, n),
        moved_add: Some(moved(&before, &after_add)),
        moved_remove: Some(moved(&before, &after_remove)),
    }
}

/// Bounded loads: the "lookup" is `assign`, and moves compare two full assignment passes
/// in the same key order.
fn measure_bounded(n: usize, keys: &[Vec<u8>]) -> Row {
    let config = BoundedLoadConfig::default();
    let mut ring = BoundedLoadRing::from_nodes(config, nodes(n)).unwrap();
    let runs = (0..RUNS)
        .map(|_| {
            ring.reset_loads();
            let start = Instant::now();
            for key in keys {
                black_box(ring.assign(black_box(key)));
            }
            start.elapsed().as_nanos() as f64 / keys.len() as f64
        })
        .collect();
    let lookup_ns = median(runs);
    let mut names = HashMap::new();
    let mut pass = |ring: &mut BoundedLoadRing| {
        ring.reset_loads();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let name = ring.assign(key).unwrap().name();
            let next = names.len() as u32;
            out.push(*names.entry(name.to_owned()).or_insert(next));
        }
        out
    };
    let before = pass(&mut ring);
    let mut grown = BoundedLoadRing::from_nodes(config, nodes(n)).unwrap();
    grown.add_node(Node::new(node_name(n))).unwrap();
    let after_add = pass(&mut grown);
    let mut shrunk = BoundedLoadRing::from_nodes(config, nodes(n)).unwrap();
    shrunk.remove_node(&node_name(n / 2)).unwrap();
    let after_remove = pass(&mut shrunk);
    Row {
        name: "bounded-load ring c=1.25 (assign)",
        nodes: n,
        lookup_ns,
        max_mean: max_over_mean(&before, n),
        moved_add: Some(moved(&before, &after_add)),
        moved_remove: Some(moved(&before, &after_remove)),
    }
}

/// pingora-ketama (nginx-compatible CRC32 ring, 160 points per weight): the alternative a
/// Rust user would otherwise reach for.
fn measure_pingora(n: usize, keys: &[Vec<u8>]) -> Row {
    use pingora_ketama::{Bucket, Continuum};
    let buckets = |n: usize| -> Vec<Bucket> {
        (0..n)
            .map(|i| Bucket::new(node_name(i).parse::<SocketAddr>().unwrap(), 1))
            .collect()
    };
    let base = Continuum::new(&buckets(n));
    let lookup_ns = time_per_key(keys, |k| {
        black_box(base.node(k));
    });
    let mut names = HashMap::new();
    let before = assignment(keys, &mut names, |k| base.node(k).unwrap().to_string());
    let grown = Continuum::new(&buckets(n + 1));
    let after_add = assignment(keys, &mut names, |k| grown.node(k).unwrap().to_string());
    let mut fewer = buckets(n);
    fewer.remove(n / 2);
    let shrunk = Continuum::new(&fewer);
    let after_remove = assignment(keys, &mut names, |k| shrunk.node(k).unwrap().to_string());
    Row {
        name: "pingora-ketama 0.9 (CRC32 ring)",
        nodes: n,
        lookup_ns,
        max_mean: max_over_mean(&before, n),
        moved_add: Some(moved(&before, &after_add)),
        moved_remove: Some(moved(&before, &after_remove)),
    }
}

/// The ring's binary search alone, on hashes computed beforehand.
fn measure_ring_search(n: usize, keys: &[Vec<u8>]) -> Row {
    let ring = KetamaRing::from_nodes(KetamaConfig::default(), nodes(n)).unwrap();
    let hashes: Vec<u32> = keys.iter().map(|k| ring.hash(k)).collect();
    let runs = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for &h in &hashes {
                black_box(ring.node_index_for_hash(black_box(h)));
            }
            start.elapsed().as_nanos() as f64 / hashes.len() as f64
        })
        .collect();
    Row {
        name: "ketama ring, search only (pre-hashed)",
        nodes: n,
        lookup_ns: median(runs),
        max_mean: f64::NAN,
        moved_add: None,
        moved_remove: None,
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn fmt_moved(frac: Option<f64>, ideal: f64) -> String {
    match frac {
        Some(f) => format!("{:.4} ({:.4}, {:.2}x)", f, ideal, f / ideal),
        None => "-".to_owned(),
    }
}

fn main() {
    let key_count: usize = std::env::var("GIRDER_HASH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let keys: Vec<Vec<u8>> = (0..key_count)
        .map(|i| format!("key:{i}").into_bytes())
        .collect();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "girder-hash placement table: {key_count} keys, {} ({cores} cores), lookup = median of {RUNS} passes\n",
        cpu_model()
    );
    println!("| algorithm | nodes | lookup ns/key | max/mean load | moved on add (ideal 1/(n+1), ratio) | moved on remove (ideal 1/n, ratio) |");
    println!("| --- | ---: | ---: | ---: | --- | --- |");
    let xxh3_ring = KetamaConfig {
        key_hash: KeyHash::Xxh3,
        ..KetamaConfig::default()
    };
    for n in [10, 100] {
        let rows = [
            measure("ketama ring, MD5 keys (compatible)", n, &keys, |v| {
                Box::new(KetamaRing::from_nodes(KetamaConfig::default(), v).unwrap())
            }),
            measure("ketama ring, XXH3 keys", n, &keys, |v| {
                Box::new(KetamaRing::from_nodes(xxh3_ring, v).unwrap())
            }),
            measure_ring_search(n, &keys),
            measure_pingora(n, &keys),
            measure("jump", n, &keys, |v| {
                Box::new(JumpHash::from_nodes(v).unwrap())
            }),
            measure("rendezvous (HRW)", n, &keys, |v| {
                Box::new(Rendezvous::from_nodes(v).unwrap())
            }),
            measure("maglev M=65537", n, &keys, |v| {
                Box::new(Maglev::from_nodes(MaglevConfig::default(), v).unwrap())
            }),
            measure_bounded(n, &keys),
        ];
        for r in rows {
            let max_mean = if r.max_mean.is_nan() {
                "-".to_owned()
            } else {
                format!("{:.3}", r.max_mean)
            };
            println!(
                "| {} | {} | {:.1} | {} | {} | {} |",
                r.name,
                r.nodes,
                r.lookup_ns,
                max_mean,
                fmt_moved(r.moved_add, 1.0 / (r.nodes + 1) as f64),
                fmt_moved(r.moved_remove, 1.0 / r.nodes as f64),
            );
        }
    }
    println!("\nRemove = node {{n/2}} (a middle node; jump leaves a tombstone). Bounded-load moves compare two assignment passes in the same key order.");
}
