//! Circuit breaker transitions on paused tokio time: the exact failure that
//! opens it, the exact wait, the exact number of probes, and the tower layer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use girder_resilience::{
    BreakerConfig, CircuitBreaker, CircuitBreakerLayer, CircuitState, Error, SlidingWindow,
    Transition, TripPolicy,
};
use tower::{service_fn, Layer, Service, ServiceExt};

use CircuitState::{Closed, HalfOpen, Open};

const WAIT: Duration = Duration::from_secs(30);

/// Every transition the listener saw, in order.
type Log = Arc<Mutex<Vec<(CircuitState, CircuitState)>>>;

fn recorded(config: BreakerConfig) -> (CircuitBreaker, Log) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let breaker = CircuitBreaker::with_listener(config, move |t: Transition| {
        l.lock().unwrap().push((t.from, t.to));
    });
    (breaker, log)
}

fn consecutive(n: u32, probes: u32) -> BreakerConfig {
    BreakerConfig {
        trip: TripPolicy::ConsecutiveFailures(n),
        open_wait: WAIT,
        half_open_probes: probes,
    }
}

async fn fail(b: &CircuitBreaker) -> Result<(), Error<&'static str>> {
    b.call(|| async { Err("down") }).await
}

async fn succeed(b: &CircuitBreaker) -> Result<(), Error<&'static str>> {
    b.call(|| async { Ok(()) }).await
}

#[tokio::test(start_paused = true)]
async fn opens_at_exactly_the_nth_consecutive_failure() {
    let (b, log) = recorded(consecutive(3, 1));
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    succeed(&b).await.unwrap(); // resets the run
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), Closed, "two in a row after a success");
    assert_eq!(fail(&b).await, Err(Error::Inner("down")), "the 3rd runs");
    assert_eq!(b.state(), Open);
    assert_eq!(*log.lock().unwrap(), [(Closed, Open)]);

    let mut ran = false;
    let r = b
        .call(|| {
            ran = true;
            async { Ok::<_, &str>(()) }
        })
        .await;
    assert_eq!(r, Err(Error::CircuitOpen));
    assert!(!ran, "an open breaker does not run the call");

    let s = b.stats();
    assert_eq!(
        (
            s.state,
            s.calls,
            s.successes,
            s.failures,
            s.rejections,
            s.times_opened
        ),
        (Open, 6, 1, 5, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn stays_open_for_exactly_the_wait_then_admits_exactly_k_probes() {
    let (b, log) = recorded(consecutive(1, 2));
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), Open);

    tokio::time::advance(WAIT - Duration::from_nanos(1)).await;
    assert!(b.try_acquire().is_none(), "1 ns before the wait ends");
    tokio::time::advance(Duration::from_nanos(1)).await;

    let p1 = b.try_acquire().expect("first probe");
    assert_eq!(b.state(), HalfOpen);
    let p2 = b.try_acquire().expect("second probe");
    assert!(b.try_acquire().is_none(), "a third caller is rejected");

    p1.success();
    assert_eq!(b.state(), HalfOpen, "one of two probes is not enough");
    assert!(
        b.try_acquire().is_none(),
        "a finished probe does not free a slot"
    );
    p2.success();
    assert_eq!(b.state(), Closed);
    assert_eq!(
        *log.lock().unwrap(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
    assert_eq!(b.stats().rejections, 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_and_restarts_the_wait() {
    let (b, log) = recorded(consecutive(2, 1));
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    tokio::time::advance(WAIT).await;
    assert_eq!(fail(&b).await, Err(Error::Inner("down")), "the probe runs");
    assert_eq!(b.state(), Open);

    tokio::time::advance(WAIT - Duration::from_millis(1)).await;
    assert_eq!(succeed(&b).await, Err(Error::CircuitOpen));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(succeed(&b).await, Ok(()));
    assert_eq!(b.state(), Closed);
    assert_eq!(
        *log.lock().unwrap(),
        [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed)
        ]
    );
    assert_eq!(b.stats().times_opened, 2);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_frees_its_slot() {
    let b = CircuitBreaker::new(consecutive(1, 1));
    fail(&b).await.unwrap_err();
    tokio::time::advance(WAIT).await;
    let probe = b.try_acquire().expect("probe");
    assert!(b.try_acquire().is_none());
    drop(probe); // e.g. the caller's future was cancelled
    assert!(b.try_acquire().is_some(), "slot given back");
}

#[tokio::test(start_paused = true)]
async fn an_outcome_from_an_earlier_period_does_not_move_the_state() {
    let b = CircuitBreaker::new(consecutive(2, 1));
    let slow_call = b.try_acquire().expect("closed");
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    tokio::time::advance(WAIT).await;
    succeed(&b).await.unwrap();
    assert_eq!(b.state(), Closed);
    // Admitted before the breaker opened; now one failure of the new period.
    fail(&b).await.unwrap_err();
    slow_call.failure();
    assert_eq!(
        b.state(),
        Closed,
        "the stale failure is not the 2nd in a row"
    );
    assert_eq!(b.stats().failures, 4, "but it is still counted");
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_a_count_window_with_minimum_calls() {
    let (b, log) = recorded(BreakerConfig {
        trip: TripPolicy::FailureRate {
            threshold: 0.5,
            window: SlidingWindow::Count(8),
            min_calls: 6,
        },
        open_wait: WAIT,
        half_open_probes: 1,
    });
    for _ in 0..5 {
        fail(&b).await.unwrap_err();
    }
    assert_eq!(b.state(), Closed, "100 % failures but only 5 calls");
    // The 6th call reaches the minimum: 5 of 6 failed, so even a success trips it.
    succeed(&b).await.unwrap();
    assert_eq!(b.state(), Open);
    assert_eq!(succeed(&b).await, Err(Error::CircuitOpen));
    assert_eq!(b.stats().calls, 6);
    assert_eq!(*log.lock().unwrap(), [(Closed, Open)]);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_counts_only_the_last_n_calls() {
    let b = CircuitBreaker::new(BreakerConfig {
        trip: TripPolicy::FailureRate {
            threshold: 0.75,
            window: SlidingWindow::Count(4),
            min_calls: 4,
        },
        open_wait: WAIT,
        half_open_probes: 1,
    });
    for _ in 0..4 {
        succeed(&b).await.unwrap();
    }
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), Closed, "window S S F F = 50 %");
    fail(&b).await.unwrap_err();
    // Window S F F F = 75 %. Counting every call (3 of 7 = 43 %) would not trip.
    assert_eq!(b.state(), Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_a_time_window_forgets_old_failures() {
    let b = CircuitBreaker::new(BreakerConfig {
        trip: TripPolicy::FailureRate {
            threshold: 0.5,
            window: SlidingWindow::Time(Duration::from_secs(10)),
            min_calls: 4,
        },
        open_wait: WAIT,
        half_open_probes: 1,
    });
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(10)).await;
    fail(&b).await.unwrap_err();
    assert_eq!(
        b.state(),
        Closed,
        "the first three expired: 1 call in the window"
    );
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), Closed);
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), Open, "4 failures within 10 s");
}

#[tokio::test(start_paused = true)]
async fn tower_layer_fails_fast_when_open_and_probes_after_the_wait() {
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    let inner = service_fn(move |ok: bool| {
        *c.lock().unwrap() += 1;
        async move {
            if ok {
                Ok("fresh")
            } else {
                Err("down")
            }
        }
    });
    let breaker = CircuitBreaker::new(consecutive(2, 1));
    let mut svc = CircuitBreakerLayer::new(breaker.clone()).layer(inner);

    for _ in 0..2 {
        let r = svc.ready().await.unwrap().call(false).await;
        assert_eq!(r, Err(Error::Inner("down")));
    }
    assert_eq!(breaker.state(), Open);
    let r = svc.ready().await.unwrap().call(true).await;
    assert_eq!(r, Err(Error::CircuitOpen));
    assert_eq!(
        *calls.lock().unwrap(),
        2,
        "the inner service was not called"
    );

    tokio::time::advance(WAIT).await;
    let r = svc.ready().await.unwrap().call(true).await;
    assert_eq!(r, Ok("fresh"));
    assert_eq!(breaker.state(), Closed);
}
