//! The HTTP front end over a real socket with a real client: the conventions every route
//! shares (problem errors, request ids, body limits, metrics, readiness, OpenAPI) and the
//! `/v1/ids` endpoints.

use axum::routing::{get, post};
use axum::Router;
use girder_http::deprecation::Deprecation;
use girder_http::problem::ApiJson;
use girder_http::server::ConnectionLimits;
use girder_http::{Api, HttpApp, HttpOptions, HttpService, OpenApiDoc};
use girder_id::{Config, Generator, SystemClock};
use girder_runtime::{BuildInfo, CancellationToken, Metrics, Readiness, Service, ServiceContext};
use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

const BODY_LIMIT: usize = 1024;
const MAX_CONNECTIONS: usize = 8;

struct Server {
    base: String,
    readiness: Readiness,
    shutdown: CancellationToken,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(serde::Deserialize)]
struct Echo {
    #[allow(dead_code)]
    name: String,
}

/// Routes only these tests mount, through the same seam later systems use.
fn test_routes() -> Router {
    Router::new()
        .route(
            "/v1/test/echo",
            post(|ApiJson(e): ApiJson<Echo>| async move { e.name }),
        )
        .route(
            "/v1/test/panic",
            get(|| async {
                if true {
                    panic!("boom");
                }
                "unreachable"
            }),
        )
        .route(
            "/v1/test/old",
            Deprecation::new(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
                .apply(get(|| async { "old" })),
        )
}

async fn start() -> Server {
    start_with(HttpOptions {
        body_limit: BODY_LIMIT,
        rate_limit: None,
    })
    .await
}

async fn start_with(options: HttpOptions) -> Server {
    let metrics = Metrics::new(BuildInfo::default());
    let readiness = Readiness::default();
    let ids = Arc::new(
        Generator::new(
            Config {
                node_id: 42,
                ..Config::default()
            },
            SystemClock,
        )
        .unwrap(),
    );
    let router = HttpApp::new(Api {
        ids,
        readiness: readiness.clone(),
        metrics: metrics.clone(),
    })
    .mount(test_routes(), OpenApiDoc::default())
    .into_router(options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let ctx = ServiceContext {
        shutdown: shutdown.clone(),
        readiness: readiness.clone(),
        metrics,
    };
    let limits = ConnectionLimits {
        max_connections: MAX_CONNECTIONS,
        header_read_timeout: Duration::from_millis(300),
        write_timeout: Duration::from_millis(300),
    };
    tokio::spawn(Box::new(HttpService::new(listener, router, limits)).run(ctx));
    Server {
        base: format!("http://{addr}"),
        readiness,
        shutdown,
        client: reqwest::Client::new(),
    }
}

impl Server {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}

/// Asserts a problem document and returns it.
async fn problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], format!("urn:girder:problem:{code}"), "{body}");
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string());
    assert!(body["detail"].is_string(), "{body}");
    assert!(body["instance"].is_string());
    assert_eq!(
        body["request_id"], request_id,
        "problem quotes the request id"
    );
    body
}

#[tokio::test]
async fn ids_are_generated_as_increasing_decimal_strings() {
    let s = start().await;
    let r = s.get("/v1/ids").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ids"].as_array().unwrap().len(), 1);

    let r = s.get("/v1/ids?count=10000").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let ids: Vec<u64> = body["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 10_000);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let last = ids[9_999];
    let parts: Value = s
        .get(&format!("/v1/ids/{last}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(parts["id"], last.to_string());
    assert_eq!(parts["node_id"], 42);
    let ts = parts["timestamp_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        now.abs_diff(ts) < 60_000,
        "decoded time {ts} is now ({now})"
    );
    assert!(parts["time"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn bad_ids_requests_are_problems() {
    let s = start().await;
    let p = problem(s.get("/v1/ids?count=abc").await, 400, "invalid-parameter").await;
    assert_eq!(p["invalid-params"][0]["name"], "count");
    for bad in ["0", "10001", "4294967295", "-1"] {
        let p = problem(
            s.get(&format!("/v1/ids?count={bad}")).await,
            422,
            "invalid-value",
        )
        .await;
        assert_eq!(p["invalid-params"][0]["name"], "count", "{bad}");
    }
    problem(s.get("/v1/ids/abc").await, 400, "invalid-parameter").await;
    problem(s.get("/v1/ids/-5").await, 400, "invalid-parameter").await;
    // Above 2^63 - 1: an integer, but not an ID.
    problem(
        s.get("/v1/ids/9223372036854775808").await,
        422,
        "invalid-value",
    )
    .await;
    problem(
        s.get("/v1/ids/99999999999999999999").await,
        422,
        "invalid-value",
    )
    .await;
}

#[tokio::test]
async fn framework_errors_are_problems_too() {
    let s = start().await;
    problem(s.get("/no/such/route").await, 404, "not-found").await;

    let r = s
        .client
        .delete(format!("{}/v1/ids", s.base))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["allow"].to_str().unwrap().contains("GET"));
    problem(r, 405, "method-not-allowed").await;

    let echo = format!("{}/v1/test/echo", s.base);
    let r = s.client.post(&echo).body("{}").send().await.unwrap();
    problem(r, 415, "unsupported-media-type").await;

    let json = |body: &'static str| {
        s.client
            .post(&echo)
            .header("content-type", "application/json")
            .body(body)
    };
    problem(json("{not json").send().await.unwrap(), 400, "invalid-body").await;
    problem(
        json(r#"{"name": 5}"#).send().await.unwrap(),
        422,
        "invalid-body",
    )
    .await;
    let ok = json(r#"{"name": "x"}"#).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(BODY_LIMIT));
    let r = s
        .client
        .post(&echo)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    problem(r, 413, "payload-too-large").await;
    // Without Content-Length (chunked), the limit still holds while the body streams in.
    let stream = futures_body(big);
    let r = s
        .client
        .post(&echo)
        .header("content-type", "application/json")
        .body(stream)
        .send()
        .await
        .unwrap();
    problem(r, 413, "payload-too-large").await;

    let p = problem(s.get("/v1/test/panic").await, 500, "internal").await;
    assert!(
        !p["detail"].as_str().unwrap().contains("boom"),
        "no internals leak"
    );
    // The server survived the panic.
    assert_eq!(s.get("/healthz").await.status(), StatusCode::OK);
}

/// A body without a known length, so the client sends it chunked.
fn futures_body(text: String) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = text
        .into_bytes()
        .chunks(100)
        .map(|c| Ok(c.to_vec()))
        .collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let s = start().await;
    let r = s
        .client
        .get(format!("{}/healthz", s.base))
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-chosen-42");

    let a = s.get("/healthz").await.headers()["x-request-id"].clone();
    let b = s.get("/healthz").await.headers()["x-request-id"].clone();
    assert_ne!(a, b);
    assert_eq!(a.len(), 16);

    // An id that could forge log lines is replaced.
    let r = s
        .client
        .get(format!("{}/healthz", s.base))
        .header("x-request-id", "a b")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "a b");
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status() {
    let s = start().await;
    s.get("/v1/ids?count=3").await;
    s.get("/v1/ids?count=0").await;
    s.get("/v1/ids/123").await;
    s.get("/v1/ids/456").await;
    s.get("/nowhere/1").await;
    s.get("/nowhere/2").await;
    let r = s.get("/metrics").await;
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    for line in [
        r#"girder_http_requests_total{method="GET",route="/v1/ids",status="200"} 1"#,
        r#"girder_http_requests_total{method="GET",route="/v1/ids",status="422"} 1"#,
        r#"girder_http_requests_total{method="GET",route="/v1/ids/{id}",status="200"} 2"#,
        r#"girder_http_requests_total{method="GET",route="unmatched",status="404"} 2"#,
        r#"girder_http_request_duration_seconds_count{method="GET",route="/v1/ids",status="200"} 1"#,
        "girder_ids_generated_total 3",
        "girder_http_requests_in_flight 1",
        "# TYPE process_cpu_seconds_total counter",
        "girder_build_info{",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
}

#[tokio::test]
async fn readiness_fails_while_draining() {
    let s = start().await;
    let r = s.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    s.readiness.mark_not_ready("resp", "loading snapshot");
    let p = problem(s.get("/readyz").await, 503, "not-ready").await;
    assert!(p["detail"]
        .as_str()
        .unwrap()
        .contains("resp: loading snapshot"));
    s.readiness.mark_ready("resp");
    s.readiness.begin_drain();
    let p = problem(s.get("/readyz").await, 503, "not-ready").await;
    assert!(p["detail"].as_str().unwrap().contains("shutting down"));
    // Liveness is unaffected.
    assert_eq!(s.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn deprecated_routes_announce_it() {
    let s = start().await;
    let r = s.get("/v1/test/old").await;
    assert_eq!(r.headers()["deprecation"], "@1767225600");
    let r = s.get("/v1/ids").await;
    assert!(!r.headers().contains_key("deprecation"));
}

#[tokio::test]
async fn openapi_document_describes_the_routes() {
    let s = start().await;
    let r = s.get("/v1/openapi.json").await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/ids",
        "/v1/ids/{id}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/openapi.json",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} documented");
    }
    let count = &doc["paths"]["/v1/ids"]["get"]["parameters"][0];
    assert_eq!(count["name"], "count");
    assert_eq!(count["schema"]["maximum"], 10000);
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

/// Opens a raw TCP connection and sends `bytes` without completing the request.
async fn partial_request(base: &str, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Reads until the server closes the connection, or fails the test after `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut got))
        .await
        .expect("the server closes the connection")
        .ok();
    got
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let s = start().await;
    let mut slow = partial_request(&s.base, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    let reply = closed_within(&mut slow, Duration::from_secs(5)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "closed, at most with a 408: {reply}"
    );
    assert_eq!(s.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let s = start().await;
    // Fill every connection slot with clients that are slow to send their headers.
    let mut holders = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        holders.push(partial_request(&s.base, b"GET /healthz HTTP/1.1\r\n").await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let client = reqwest::Client::new();
    let url = format!("{}/healthz", s.base);
    let waiting = tokio::spawn(async move {
        let start = std::time::Instant::now();
        let status = client.get(url).send().await.unwrap().status();
        (status, start.elapsed())
    });
    // The header timeout (300 ms) frees the slots; then the waiting client is served.
    let (status, waited) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(
        waited >= Duration::from_millis(150),
        "it waited for a slot: {waited:?}"
    );
    drop(holders);
}

#[tokio::test]
async fn garbage_on_the_socket_gets_a_400_and_the_server_lives_on() {
    let s = start().await;
    let mut junk = partial_request(&s.base, b"\x00\xff NOT HTTP AT ALL\r\n\r\n").await;
    let reply = closed_within(&mut junk, Duration::from_secs(5)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 400"),
        "{reply}"
    );
    let mut huge = partial_request(
        &s.base,
        format!(
            "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(1 << 20)
        )
        .as_bytes(),
    )
    .await;
    let reply = closed_within(&mut huge, Duration::from_secs(5)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "{reply}"
    );
    assert_eq!(s.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn clients_that_stop_reading_are_disconnected() {
    use tokio::io::AsyncWriteExt;
    let s = start().await;
    let addr: SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    // Every slot taken by a client that asks for large responses and never reads them.
    let mut stalled = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let request = "GET /v1/ids?count=10000 HTTP/1.1\r\nHost: x\r\n\r\n".repeat(40);
        stream.write_all(request.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    // Once their writes have stalled for write_timeout, the slots free up.
    // A connection that arrives while every slot is still taken is closed at once, so
    // the client retries until one has freed up.
    let start = std::time::Instant::now();
    let r = loop {
        match s.client.get(format!("{}/healthz", s.base)).send().await {
            Ok(r) => break r,
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no slot freed up within 10 s: {e}"),
        }
    };
    assert_eq!(r.status(), StatusCode::OK);
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(stalled);
}

#[tokio::test]
async fn count_is_parsed_strictly() {
    let s = start().await;
    for bad in ["%2B1", "1e3", "0x10", "%201", "1.0", ""] {
        problem(
            s.get(&format!("/v1/ids?count={bad}")).await,
            400,
            "invalid-parameter",
        )
        .await;
    }
    for out_of_range in ["-1", "4294967296", "99999999999"] {
        problem(
            s.get(&format!("/v1/ids?count={out_of_range}")).await,
            422,
            "invalid-value",
        )
        .await;
    }
}

#[tokio::test]
async fn the_api_is_rate_limited_per_client_and_probes_are_not() {
    use girder_http::rate_limit::{ClientKey, RateLimitOptions};
    let s = start_with(HttpOptions {
        body_limit: BODY_LIMIT,
        rate_limit: Some(RateLimitOptions {
            quota: girder_limit::Quota {
                limit: 3,
                period: Duration::from_secs(60),
                burst: 3,
            },
            algorithm: girder_limit::AlgorithmKind::Gcra,
            key: ClientKey::Header(http::HeaderName::from_static("x-api-key")),
            max_keys: 1000,
        }),
    })
    .await;
    let call = |key: &'static str| {
        s.client
            .get(format!("{}/v1/ids", s.base))
            .header("x-api-key", key)
            .send()
    };
    for _ in 0..3 {
        let r = call("alice").await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().contains_key("ratelimit"), "{:?}", r.headers());
        assert!(r.headers().contains_key("ratelimit-policy"));
    }
    let denied = call("alice").await.unwrap();
    let retry_after: u64 = denied.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=20).contains(&retry_after),
        "one request per 20 s: {retry_after}"
    );
    let p = problem(denied, 429, "rate-limited").await;
    assert_eq!(p["instance"], "/v1/ids");
    // Another client has its own budget; probes are never limited.
    assert_eq!(call("bob").await.unwrap().status(), StatusCode::OK);
    for _ in 0..10 {
        assert_eq!(s.get("/healthz").await.status(), StatusCode::OK);
    }
    let metrics = s.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .contains(r#"girder_http_requests_total{method="GET",route="/v1/ids",status="429"} 1"#),
        "{metrics}"
    );
}
