//! Append throughput on a temporary directory.
//!
//! `cargo bench -p girder-log --bench log -- --warm-up-time 1 --measurement-time 3`
//!
//! * `never` / `interval_100ms`: one thread appends `iters` records, timed
//!   until `sync()` returns (so the write and one fsync are included).
//! * `always_8_threads`: 8 threads each append and wait for durability,
//!   `iters / 8` times each (group commit); time per record is wall time /
//!   iters, the inverse of aggregate throughput.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use girder_log::{FsyncPolicy, Log, LogConfig};

fn open(policy: FsyncPolicy) -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(
        dir.path(),
        LogConfig {
            fsync: policy,
            ..LogConfig::default()
        },
    )
    .expect("open");
    (dir, log)
}

fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn appends(c: &mut Criterion) {
    for size in [100usize, 1024] {
        let payload = vec![0x5a; size];
        let mut g = c.benchmark_group(format!("append_{size}B"));
        g.throughput(Throughput::Bytes(size as u64));
        for (name, policy) in [
            ("never", FsyncPolicy::Never),
            (
                "interval_100ms",
                FsyncPolicy::Interval(Duration::from_millis(100)),
            ),
        ] {
            let (_dir, log) = open(policy);
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        log.append(0, &payload).expect("append");
                    }
                    log.sync().expect("sync");
                    t.elapsed()
                })
            });
        }
        let (_dir, log) = open(FsyncPolicy::Always);
        let log = Arc::new(log);
        g.bench_function("always_8_threads", |b| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(8);
                let barrier = Arc::new(Barrier::new(9));
                let threads: Vec<_> = (0..8)
                    .map(|_| {
                        let (log, barrier, payload) =
                            (log.clone(), barrier.clone(), payload.clone());
                        std::thread::spawn(move || {
                            barrier.wait();
                            for _ in 0..per {
                                let off = log.append(0, &payload).expect("append");
                                block_on(log.wait_durable(off)).expect("durable");
                            }
                        })
                    })
                    .collect();
                barrier.wait();
                let t = Instant::now();
                for th in threads {
                    th.join().expect("thread");
                }
                t.elapsed()
            })
        });
        let s = log.stats();
        eprintln!(
            "always_8_threads {size}B: {} appends, {} fsyncs",
            s.appends, s.fsyncs
        );
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = appends
}
criterion_main!(benches);
