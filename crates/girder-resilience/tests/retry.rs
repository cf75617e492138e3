//! Retry loop on paused tokio time: exact sleeps, bounds, classifier, budget, and
//! the tower layer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use girder_resilience::{
    Backoff, BudgetConfig, Decision, Error, Jitter, Retry, RetryBudget, RetryConfig, RetryLayer,
};
use tokio::time::Instant;
use tower::{service_fn, Layer, ServiceExt};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config(jitter: Jitter, max_attempts: u32) -> RetryConfig {
    RetryConfig {
        backoff: Backoff {
            base: ms(100),
            multiplier: 2.0,
            cap: ms(1_000),
            jitter,
        },
        max_attempts,
        max_elapsed: None,
    }
}

/// Runs an always-failing call and returns the gaps between its attempts.
async fn gaps(retry: &Retry) -> (Vec<Duration>, Result<(), Error<&'static str>>) {
    let times = Arc::new(Mutex::new(Vec::new()));
    let result = retry
        .run(|| {
            times.lock().unwrap().push(Instant::now());
            async { Err::<(), _>("down") }
        })
        .await;
    let times = times.lock().unwrap();
    let gaps = times.windows(2).map(|w| w[1] - w[0]).collect();
    (gaps, result)
}

#[tokio::test(start_paused = true)]
async fn sleeps_exactly_the_unjittered_schedule() {
    let retry = Retry::new(config(Jitter::None, 6));
    let (gaps, result) = gaps(&retry).await;
    assert_eq!(gaps, [100, 200, 400, 800, 1_000].map(ms));
    assert_eq!(result, Err(Error::Inner("down")));
}

#[tokio::test(start_paused = true)]
async fn seeded_jitter_sleeps_are_reproducible_and_follow_the_schedule() {
    let seed = 42;
    let build = || {
        Retry::builder(config(Jitter::Full, 8))
            .rng(fastrand::Rng::with_seed(seed))
            .build()
    };
    // The run forks its RNG from the policy's seeded one, so the schedule it must
    // follow is the backoff driven by the first fork of that seed.
    let schedule: Vec<Duration> = config(Jitter::Full, 8)
        .backoff
        .delays(fastrand::Rng::with_seed(seed).fork())
        .take(7)
        .collect();
    let (first, _) = gaps(&build()).await;
    let (second, _) = gaps(&build()).await;
    assert_eq!(first, second, "same seed, same sleeps");
    // tokio's timer has 1 ms resolution: a sleep ends on the next millisecond tick.
    let rounded: Vec<Duration> = schedule
        .iter()
        .map(|d| ms(d.as_nanos().div_ceil(1_000_000) as u64))
        .collect();
    assert_eq!(first, rounded);
    assert!(first.iter().all(|d| *d <= ms(1_000)));
}

#[tokio::test(start_paused = true)]
async fn next_step_yields_the_exact_nanosecond_delays() {
    let retry = Retry::builder(config(Jitter::Decorrelated, 10))
        .rng(fastrand::Rng::with_seed(9))
        .build();
    let expected: Vec<Duration> = retry
        .config()
        .backoff
        .delays(fastrand::Rng::with_seed(9).fork())
        .take(9)
        .collect();
    let mut attempts = retry.start();
    let mut got = Vec::new();
    loop {
        match retry.next_step(&Err::<(), ()>(()), &mut attempts) {
            girder_resilience::Step::Sleep(d) => got.push(d),
            other => {
                assert_eq!(other, girder_resilience::Step::Done);
                break;
            }
        }
    }
    assert_eq!(got, expected);
}

#[tokio::test(start_paused = true)]
async fn success_is_returned_without_retrying() {
    let retry = Retry::new(config(Jitter::None, 5));
    let mut calls = 0;
    let start = Instant::now();
    let r = retry
        .run(|| {
            calls += 1;
            async { Ok::<_, ()>(7) }
        })
        .await;
    assert_eq!((r, calls), (Ok(7), 1));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn stops_after_max_attempts_and_returns_the_last_error() {
    let retry = Retry::new(config(Jitter::None, 3));
    let mut calls = 0;
    let r = retry
        .run(|| {
            calls += 1;
            let n = calls;
            async move { Err::<(), _>(n) }
        })
        .await;
    assert_eq!(r, Err(Error::Inner(3)));
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_stops_before_a_sleep_that_would_overrun() {
    // Sleeps would be 100, 200, 400 (cumulative 100, 300, 700): with 500 ms allowed,
    // the third sleep would end at 700 ms, so only three attempts happen.
    let retry = Retry::new(RetryConfig {
        max_elapsed: Some(ms(500)),
        ..config(Jitter::None, 10)
    });
    let start = Instant::now();
    let (gaps, _) = gaps(&retry).await;
    assert_eq!(gaps, [100, 200].map(ms));
    assert_eq!(start.elapsed(), ms(300));
}

#[tokio::test(start_paused = true)]
async fn classifier_decides_on_errors_and_responses() {
    #[derive(Debug, PartialEq)]
    enum Failure {
        Transient,
        Permanent,
    }
    // Retry transient errors and "503" responses; accept everything else.
    let classify = |r: &Result<u16, Failure>| match r {
        Ok(503) | Err(Failure::Transient) => Decision::Retry,
        _ => Decision::Accept,
    };
    let retry = Retry::builder(config(Jitter::None, 5))
        .classifier(classify)
        .build();

    let mut script = vec![Ok(200), Ok(503), Err(Failure::Transient)];
    let r = retry
        .run(|| std::future::ready(script.pop().unwrap()))
        .await;
    assert_eq!(r, Ok(200));
    assert!(script.is_empty(), "three attempts");

    let mut script = vec![Ok(200), Err(Failure::Permanent)];
    let r = retry
        .run(|| std::future::ready(script.pop().unwrap()))
        .await;
    assert_eq!(r, Err(Error::Inner(Failure::Permanent)));
    assert_eq!(script.len(), 1, "a permanent error is not retried");

    // A retryable response that runs out of attempts is returned as a response.
    let r = retry.run(|| std::future::ready(Ok(503))).await;
    assert_eq!(r, Ok(503));
}

#[tokio::test(start_paused = true)]
async fn budget_allows_retries_up_to_the_ratio() {
    // 20 %: every fifth request has saved enough for one retry.
    let budget = RetryBudget::new(BudgetConfig {
        ttl: Duration::from_secs(10),
        min_retries_per_sec: 0,
        retry_ratio: 0.2,
    });
    let retry = Retry::builder(config(Jitter::None, 2))
        .budget(budget.clone())
        .build();
    let mut outcomes = Vec::new();
    let mut attempts = 0;
    for _ in 0..10 {
        let r = retry
            .run(|| {
                attempts += 1;
                async { Err::<(), _>("down") }
            })
            .await;
        outcomes.push(r.unwrap_err());
    }
    let retried = outcomes
        .iter()
        .filter(|e| matches!(e, Error::Inner(_)))
        .count();
    assert_eq!(retried, 2);
    assert_eq!(attempts, 12);
    assert!(matches!(outcomes[3], Error::BudgetExhausted("down")));
    assert!(matches!(outcomes[4], Error::Inner("down")));
    assert!(matches!(outcomes[9], Error::Inner("down")));
}

#[tokio::test(start_paused = true)]
async fn exhausted_budget_recovers_after_the_window() {
    // No ratio: only the floor of 1 retry/s over 10 s, i.e. 10 retries per window.
    let budget = RetryBudget::new(BudgetConfig {
        ttl: Duration::from_secs(10),
        min_retries_per_sec: 1,
        retry_ratio: 0.0,
    });
    let start = Instant::now();
    let retry = Retry::builder(RetryConfig {
        backoff: Backoff {
            base: ms(1),
            multiplier: 1.0,
            cap: ms(1),
            jitter: Jitter::None,
        },
        max_attempts: 2,
        max_elapsed: None,
    })
    .budget(budget.clone())
    .build();
    let run_batch = || async {
        let mut exhausted = 0;
        for _ in 0..12 {
            if let Err(Error::BudgetExhausted(_)) =
                retry.run(|| async { Err::<(), _>("down") }).await
            {
                exhausted += 1;
            }
        }
        exhausted
    };
    assert_eq!(budget.balance(), 10);
    assert_eq!(run_batch().await, 2, "10 retried, 2 refused");
    assert_eq!(budget.balance(), 0);
    // The withdrawals sit in the first 1 s slice and expire when the 10 s ring wraps.
    tokio::time::advance(Duration::from_secs(10) - start.elapsed() - ms(1)).await;
    assert_eq!(budget.balance(), 0);
    tokio::time::advance(ms(1)).await;
    assert_eq!(budget.balance(), 10);
    assert_eq!(run_batch().await, 2, "recovered");
}

#[tokio::test(start_paused = true)]
async fn tower_layer_retries_with_the_same_schedule() {
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    let svc = service_fn(move |req: u32| {
        let t = t.clone();
        async move {
            let mut t = t.lock().unwrap();
            t.push(Instant::now());
            if t.len() < 4 {
                Err("busy")
            } else {
                Ok(req * 2)
            }
        }
    });
    let svc = RetryLayer::new(Retry::new(config(Jitter::None, 5))).layer(svc);
    let r = svc.oneshot(21).await;
    assert_eq!(r, Ok(42));
    let times = times.lock().unwrap();
    let gaps: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [100, 200, 400].map(ms));
}

#[tokio::test(start_paused = true)]
async fn tower_layer_gives_up_with_the_last_error() {
    let svc = service_fn(|_: ()| async { Err::<(), _>("down") });
    let svc = RetryLayer::new(Retry::new(config(Jitter::Equal, 3))).layer(svc);
    assert_eq!(svc.oneshot(()).await, Err(Error::Inner("down")));
}
