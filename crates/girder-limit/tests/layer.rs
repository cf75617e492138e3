//! The tower layer, driven with `oneshot` under tokio's paused clock.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use girder_limit::http::{HeaderKey, KeyFn, PeerIp, ProblemJson, RateLimitLayer, Rejected};
use girder_limit::{Gcra, KeyedLimiter, LimitError, Quota, SlidingLog, StoreConfig, TokioClock};
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};

type Inner = tower::util::ServiceFn<
    fn(Request<Body>) -> std::future::Ready<Result<Response<Body>, Infallible>>,
>;

fn ok_service() -> Inner {
    fn handle(_: Request<Body>) -> std::future::Ready<Result<Response<Body>, Infallible>> {
        std::future::ready(Ok(Response::new(Body::from("ok"))))
    }
    tower::service_fn(handle as fn(_) -> _)
}

fn from_ip(last_octet: u8) -> Request<Body> {
    let mut req = Request::get("/").body(Body::empty()).unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from((
        [10, 0, 0, last_octet],
        40_000,
    ))));
    req
}

async fn call<S>(service: &S, req: Request<Body>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    service.clone().oneshot(req).await.unwrap()
}

fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

async fn body_json(response: Response<Body>) -> serde_json::Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// 2 requests per 10 s per client IP.
fn per_ip_layer() -> RateLimitLayer<std::net::IpAddr, Gcra, PeerIp, TokioClock> {
    let gcra = Gcra::new(Quota::new(2, Duration::from_secs(10))).unwrap();
    let limiter =
        KeyedLimiter::with_clock(gcra, StoreConfig::default(), TokioClock::new()).unwrap();
    RateLimitLayer::new(Arc::new(limiter), PeerIp)
}

#[tokio::test(start_paused = true)]
async fn allows_then_429_with_retry_after_and_ratelimit_fields() {
    let service = per_ip_layer().layer(ok_service());

    let first = call(&service, from_ip(1)).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        header(&first, "ratelimit-policy"),
        Some("\"default\";q=2;w=10")
    );
    // One unit spent: 1 left, bucket full again in 5 s.
    assert_eq!(header(&first, "ratelimit"), Some("\"default\";r=1;t=5"));

    let second = call(&service, from_ip(1)).await;
    assert_eq!(header(&second, "ratelimit"), Some("\"default\";r=0;t=10"));

    let third = call(&service, from_ip(1)).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&third, "retry-after"), Some("5"));
    assert_eq!(header(&third, "ratelimit"), Some("\"default\";r=0;t=10"));
    assert_eq!(
        header(&third, "ratelimit-policy"),
        Some("\"default\";q=2;w=10")
    );
    assert_eq!(
        header(&third, "content-type"),
        Some("application/problem+json")
    );
    let problem = body_json(third).await;
    assert_eq!(problem["type"], "about:blank");
    assert_eq!(problem["title"], "Too Many Requests");
    assert_eq!(problem["status"], 429);
    assert!(problem["detail"].as_str().unwrap().contains("retry in 5 s"));

    // Another client is unaffected.
    assert_eq!(call(&service, from_ip(2)).await.status(), StatusCode::OK);

    // Virtual time: one unit refills after exactly 5 s.
    tokio::time::advance(Duration::from_millis(4_999)).await;
    assert_eq!(
        call(&service, from_ip(1)).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(call(&service, from_ip(1)).await.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn problem_type_is_configurable() {
    let layer = per_ip_layer().rejection(ProblemJson::with_type("urn:girder:problem:rate-limited"));
    let service = layer.layer(ok_service());
    call(&service, from_ip(1)).await;
    call(&service, from_ip(1)).await;
    let problem = body_json(call(&service, from_ip(1)).await).await;
    assert_eq!(
        problem,
        serde_json::json!({
            "type": "urn:girder:problem:rate-limited",
            "title": "Too Many Requests",
            "status": 429,
            "detail": "Rate limit of policy \"default\" exceeded; retry in 5 s."
        })
    );
}

#[tokio::test(start_paused = true)]
async fn custom_rejection_and_policy_name() {
    let layer =
        per_ip_layer()
            .policy_name("per-ip")
            .unwrap()
            .rejection(|rejected: &Rejected<'_>| {
                Response::new(format!(
                    "slow down, {} s",
                    rejected.decision.retry_after.as_secs()
                ))
            });
    let service = layer.layer(ok_service());
    call(&service, from_ip(1)).await;
    let second = call(&service, from_ip(1)).await;
    assert_eq!(header(&second, "ratelimit"), Some("\"per-ip\";r=0;t=10"));
    let denied = call(&service, from_ip(1)).await;
    // The builder left the status at 200; the layer makes it a 429.
    assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&denied, "retry-after"), Some("5"));
    assert_eq!(
        header(&denied, "ratelimit-policy"),
        Some("\"per-ip\";q=2;w=10")
    );
    let body = denied.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"slow down, 5 s");

    assert!(matches!(
        per_ip_layer().policy_name("bad\"name"),
        Err(LimitError::InvalidPolicyName { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn requests_without_a_key_pass_unlimited() {
    let service = per_ip_layer().layer(ok_service());
    for _ in 0..5 {
        let response = call(&service, Request::get("/").body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("ratelimit").is_none());
    }
}

#[tokio::test(start_paused = true)]
async fn keyed_by_header_and_by_closure() {
    let quota = Quota::new(1, Duration::from_secs(60));
    fn limiter<K: std::hash::Hash + Eq + Clone>(
        q: Quota,
    ) -> Arc<KeyedLimiter<K, SlidingLog, TokioClock>> {
        Arc::new(
            KeyedLimiter::with_clock(
                SlidingLog::new(q).unwrap(),
                StoreConfig::default(),
                TokioClock::new(),
            )
            .unwrap(),
        )
    }
    let by_header = RateLimitLayer::new(
        limiter(quota),
        HeaderKey::new(HeaderName::from_static("x-api-key")),
    )
    .layer(ok_service());
    let with_key = |k: &str| {
        Request::get("/")
            .header("x-api-key", k)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        call(&by_header, with_key("a")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        call(&by_header, with_key("b")).await.status(),
        StatusCode::OK
    );
    let denied = call(&by_header, with_key("a")).await;
    assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&denied, "retry-after"), Some("60"));

    let by_path = RateLimitLayer::new(
        limiter(quota),
        KeyFn(|req: &Request<Body>| Some(req.uri().path().to_owned())),
    )
    .cost(1)
    .layer(ok_service());
    let get = |p: &str| Request::get(p).body(Body::empty()).unwrap();
    assert_eq!(call(&by_path, get("/x")).await.status(), StatusCode::OK);
    assert_eq!(call(&by_path, get("/y")).await.status(), StatusCode::OK);
    assert_eq!(
        call(&by_path, get("/x")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(call(&by_path, get("/x")).await.status(), StatusCode::OK);
}
