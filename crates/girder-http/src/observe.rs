//! Per-request observability: request id, tracing span (joined to an incoming W3C
//! `traceparent`), Prometheus metrics per route and status, and one access-log line.
//!
//! Metric labels are bounded: `route` is the matched route template (`/v1/ids/{id}`),
//! never the raw path, and `unmatched` for requests no route matched; `method` is one of
//! the standard methods or `other`.

use crate::request_id::{self, RequestId};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use girder_runtime::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::time::Instant;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// The HTTP metrics, registered once per router.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RequestLabels, Histogram>,
    in_flight: Gauge,
}

impl HttpMetrics {
    /// Registers `girder_http_*` metrics in `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        // 100 µs .. ~26 s in 19 doubling buckets.
        let duration = Family::<RequestLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0001, 2.0, 19))) as fn() -> Histogram,
        );
        let in_flight = Gauge::default();
        metrics.register(
            "girder_http_requests",
            "HTTP requests handled, by method, route and status",
            requests.clone(),
        );
        metrics.register(
            "girder_http_request_duration_seconds",
            "HTTP request latency from first byte in to response headers out",
            duration.clone(),
        );
        metrics.register(
            "girder_http_requests_in_flight",
            "HTTP requests being handled now",
            in_flight.clone(),
        );
        Self {
            requests,
            duration,
            in_flight,
        }
    }
}

/// Keeps the in-flight gauge right even if the request future is dropped mid-way.
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The middleware. See the module docs.
pub async fn observe(
    State(metrics): State<HttpMetrics>,
    mut request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let id = RequestId::from_header(
        request
            .headers()
            .get(request_id::HEADER)
            .map(HeaderValue::as_bytes),
    );
    let id_header =
        HeaderValue::from_str(id.as_str()).unwrap_or(HeaderValue::from_static("invalid"));
    request
        .headers_mut()
        .insert(request_id::HEADER, id_header.clone());
    request.extensions_mut().insert(id.clone());

    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %id.as_str(),
        method,
        route = %route,
        otel.kind = "server",
        otel.name = %format!("{method} {route}"),
        http.response.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(request.headers()))
    });
    // Fails only when no OpenTelemetry layer is installed, which is the no-exporter case.
    let _ = span.set_parent(parent);

    metrics.in_flight.inc();
    let guard = InFlight(metrics.in_flight.clone());
    let mut response = next.run(request).instrument(span.clone()).await;
    drop(guard);

    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    let labels = RequestLabels {
        method,
        route,
        status,
    };
    metrics.requests.get_or_create(&labels).inc();
    metrics
        .duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
    span.record("http.response.status_code", status);
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    response.headers_mut().insert(request_id::HEADER, id_header);
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Reads W3C trace context headers (`traceparent`, `tracestate`) from a request.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
