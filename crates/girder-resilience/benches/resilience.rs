//! Overhead of the resilience wrappers on a call that succeeds at once.
//!
//! Every case is driven by the same minimal executor, `FutureExt::now_or_never`
//! (one poll, no runtime), so differences between cases are the wrappers' cost:
//! `wrapped - bare` is the overhead. Target: breaker + non-retrying retry within
//! 50 ns of the bare call.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use girder_resilience::{
    Backoff, BreakerConfig, BudgetConfig, CircuitBreaker, CircuitBreakerLayer, Jitter, Retry,
    RetryBudget, RetryConfig, RetryLayer, TripPolicy,
};
use tower::{service_fn, Service, ServiceBuilder};

/// The "dependency": an async call that succeeds immediately.
async fn bare(x: u64) -> Result<u64, &'static str> {
    Ok(black_box(x).wrapping_add(1))
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig {
        trip: TripPolicy::ConsecutiveFailures(5),
        open_wait: Duration::from_secs(30),
        half_open_probes: 1,
    })
}

fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: Backoff {
            base: Duration::from_millis(100),
            multiplier: 2.0,
            cap: Duration::from_secs(10),
            jitter: Jitter::Full,
        },
        max_attempts: 3,
        max_elapsed: None,
    }
}

fn plain(c: &mut Criterion) {
    let mut g = c.benchmark_group("plain");
    g.bench_function("bare", |b| {
        b.iter(|| black_box(bare(black_box(1)).now_or_never()))
    });

    let cb = breaker();
    g.bench_function("breaker", |b| {
        b.iter(|| black_box(cb.call(|| bare(black_box(1))).now_or_never()))
    });

    let retry = Retry::new(retry_config());
    g.bench_function("retry", |b| {
        b.iter(|| black_box(retry.run(|| bare(black_box(1))).now_or_never()))
    });

    g.bench_function("breaker+retry", |b| {
        b.iter(|| black_box(retry.run(|| cb.call(|| bare(black_box(1)))).now_or_never()))
    });

    let budgeted = Retry::builder(retry_config())
        .budget(RetryBudget::new(BudgetConfig::default()))
        .build();
    g.bench_function("breaker+retry+budget", |b| {
        b.iter(|| {
            black_box(
                budgeted
                    .run(|| cb.call(|| bare(black_box(1))))
                    .now_or_never(),
            )
        })
    });

    let rate = CircuitBreaker::new(BreakerConfig {
        trip: TripPolicy::FailureRate {
            threshold: 0.5,
            window: girder_resilience::SlidingWindow::Count(100),
            min_calls: 20,
        },
        open_wait: Duration::from_secs(30),
        half_open_probes: 1,
    });
    g.bench_function("breaker(rate,count)+retry", |b| {
        b.iter(|| {
            black_box(
                retry
                    .run(|| rate.call(|| bare(black_box(1))))
                    .now_or_never(),
            )
        })
    });
    g.finish();
}

fn tower_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("tower");
    let mut svc = service_fn(bare);
    g.bench_function("bare", |b| {
        b.iter(|| {
            let _ = black_box(svc.ready_now());
            black_box(svc.call(black_box(1)).now_or_never())
        })
    });

    let mut wrapped = ServiceBuilder::new()
        .layer(RetryLayer::new(Retry::new(retry_config())))
        .layer(CircuitBreakerLayer::new(breaker()))
        .service(service_fn(bare));
    g.bench_function("breaker+retry", |b| {
        b.iter(|| {
            let _ = black_box(wrapped.ready_now());
            black_box(wrapped.call(black_box(1)).now_or_never())
        })
    });
    g.finish();
}

/// `poll_ready` once with a no-op waker (every service here is always ready).
trait ReadyNow<R> {
    fn ready_now(&mut self) -> bool;
}

impl<S: Service<R>, R> ReadyNow<R> for S {
    fn ready_now(&mut self) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        matches!(self.poll_ready(&mut cx), std::task::Poll::Ready(Ok(())))
    }
}

criterion_group!(benches, plain, tower_path);
criterion_main!(benches);
