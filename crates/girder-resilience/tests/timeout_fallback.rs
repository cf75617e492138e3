//! Timeout and fallback, alone and stacked with the breaker as tower layers.

use std::time::Duration;

use girder_resilience::{
    BreakerConfig, CircuitBreaker, CircuitBreakerLayer, Error, Fallback, FallbackLayer, Timeout,
    TimeoutLayer, TripPolicy,
};
use tower::{service_fn, Layer, ServiceBuilder, ServiceExt};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn takes(d: Duration) -> Result<&'static str, &'static str> {
    tokio::time::sleep(d).await;
    Ok("done")
}

#[tokio::test(start_paused = true)]
async fn timeout_fires_exactly_at_the_deadline() {
    let t = Timeout::new(ms(100));
    assert_eq!(t.run(takes(ms(99))).await, Ok("done"));
    let start = tokio::time::Instant::now();
    assert_eq!(t.run(takes(ms(101))).await, Err(Error::Timeout(ms(100))));
    assert_eq!(start.elapsed(), ms(100));
    // A call ready at the same instant as the deadline wins.
    assert_eq!(t.run(takes(ms(100))).await, Ok("done"));
    assert_eq!(
        t.run(async { Err::<(), _>("refused") }).await,
        Err(Error::Inner("refused"))
    );
}

#[test]
fn timeout_error_message_names_the_duration() {
    let e: Error<String> = Error::Timeout(ms(250));
    assert_eq!(e.to_string(), "call timed out after 250ms");
    let e: Error<String> = Error::BudgetExhausted("503".into());
    assert_eq!(e.to_string(), "retry budget exhausted; last error: 503");
}

#[tokio::test(start_paused = true)]
async fn timeout_layer() {
    let svc = TimeoutLayer::new(ms(50)).layer(service_fn(takes));
    assert_eq!(svc.clone().oneshot(ms(10)).await, Ok("done"));
    assert_eq!(svc.oneshot(ms(60)).await, Err(Error::Timeout(ms(50))));
}

#[tokio::test]
async fn fallback_serves_a_degraded_answer_only_when_asked_to() {
    let f = Fallback::new(|e: &&str| (*e == "down").then_some(vec!["cached"]));
    assert_eq!(f.run(async { Ok(vec!["fresh"]) }).await, Ok(vec!["fresh"]));
    assert_eq!(f.run(async { Err("down") }).await, Ok(vec!["cached"]));
    assert_eq!(
        f.run(async { Err("bad request") }).await,
        Err("bad request")
    );
}

#[tokio::test(start_paused = true)]
async fn stacked_layers_serve_top_ten_when_the_breaker_is_open() {
    let breaker = CircuitBreaker::new(BreakerConfig {
        trip: TripPolicy::ConsecutiveFailures(1),
        open_wait: Duration::from_secs(30),
        half_open_probes: 1,
    });
    // Only rejections fall back; a real failure still reaches the caller.
    let svc = ServiceBuilder::new()
        .layer(FallbackLayer::new(|e: &Error<Error<&str>>| {
            e.is_rejection().then_some("top-10")
        }))
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .layer(TimeoutLayer::new(ms(100)))
        .service(service_fn(|fail: bool| async move {
            if fail {
                Err("down")
            } else {
                Ok("personalised")
            }
        }));
    assert_eq!(svc.clone().oneshot(false).await, Ok("personalised"));
    assert_eq!(
        svc.clone().oneshot(true).await,
        Err(Error::Inner(Error::Inner("down")))
    );
    assert_eq!(svc.clone().oneshot(false).await, Ok("top-10"));
    assert_eq!(breaker.stats().rejections, 1);
}
