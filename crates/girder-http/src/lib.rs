//! Girder's HTTP front end: the `/v1` API, health and metrics routes, and the conventions
//! every endpoint shares.
//!
//! - Errors are RFC 9457 problem documents ([`problem`]), produced in one place.
//! - Every request has an `X-Request-Id` ([`request_id`]) that appears in its log lines.
//! - Every request is measured per route and status ([`observe`]) and joins an incoming
//!   W3C `traceparent`.
//! - List endpoints page with opaque cursors ([`pagination`]); retiring routes announce
//!   it with `Deprecation`/`Sunset` headers ([`deprecation`]).
//! - The OpenAPI 3.1 document at `/v1/openapi.json` is generated from the handlers'
//!   annotations; systems that add routes add their annotations with [`HttpApp::mount`].
//!
//! Architecture invariant: this crate knows nothing of storage. Handlers call engines
//! (`girder-id`, and later the keyspace, streams, scheduler) through their Rust APIs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod deprecation;
pub mod observe;
pub mod pagination;
pub mod problem;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod whole;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use girder_id::{Generator, SystemClock};
use girder_runtime::{BoxFuture, Metrics, Readiness, Service, ServiceContext};
use problem::{ApiError, InvalidParam, Problem, ProblemType};
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::OpenApi;

/// The OpenAPI document type that [`HttpApp::mount`] takes, re-exported so that callers
/// need not depend on utoipa directly.
pub use utoipa::openapi::OpenApi as OpenApiDoc;

/// Settings of the HTTP front end that shape the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Largest request body accepted, in bytes; larger ones get a 413.
    pub body_limit: usize,
    /// Per-client rate limit on the `/v1` API; `None` for no limit.
    pub rate_limit: Option<rate_limit::RateLimitOptions>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            rate_limit: None,
        }
    }
}

/// The OpenAPI document of the routes this crate serves itself.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Girder HTTP API",
        description = "The HTTP interface of a Girder node. Errors are RFC 9457 problem documents (`application/problem+json`) whose `type` is a stable URN `urn:girder:problem:<code>`. Every response carries `X-Request-Id`."
    ),
    paths(
        routes::ids::generate_ids,
        routes::ids::decode_id,
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        openapi_json,
    ),
    components(schemas(Problem, InvalidParam)),
    tags(
        (name = "ids", description = "Snowflake IDs"),
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "meta", description = "The API's own description"),
    )
)]
struct ApiDoc;

/// What the built-in routes need from the process.
#[derive(Debug, Clone)]
pub struct Api {
    /// This node's Snowflake generator.
    pub ids: Arc<Generator<SystemClock>>,
    /// Process readiness, for `/readyz`.
    pub readiness: Readiness,
    /// The metrics registry, for `/metrics` and the HTTP metrics.
    pub metrics: Metrics,
}

/// Builds the HTTP application: the built-in routes plus what other systems mount.
pub struct HttpApp {
    metrics: Metrics,
    /// The API: rate limited when configured.
    router: Router,
    /// Health, readiness and metrics: never rate limited, so probes and scrapes work
    /// whatever clients do.
    probes: Router,
    doc: utoipa::openapi::OpenApi,
}

impl HttpApp {
    /// The built-in routes: `/v1/ids`, `/healthz`, `/readyz`, `/metrics`, `/v1/openapi.json`.
    pub fn new(api: Api) -> Self {
        let router = Router::new().merge(routes::ids::router(routes::ids::IdsState::new(
            api.ids,
            &api.metrics,
        )));
        let probes = routes::health::router(routes::health::HealthState {
            readiness: api.readiness,
            metrics: api.metrics.clone(),
        });
        Self {
            metrics: api.metrics,
            router,
            probes,
            doc: ApiDoc::openapi(),
        }
    }

    /// Adds another system's routes and their OpenAPI paths. Routes get the same
    /// middleware (request ids, metrics, problem errors, body limit) as the built-in ones.
    #[must_use]
    pub fn mount(mut self, router: Router, doc: utoipa::openapi::OpenApi) -> Self {
        self.router = self.router.merge(router);
        self.doc.merge(doc);
        self
    }

    /// The finished router.
    pub fn into_router(self, options: HttpOptions) -> Router {
        // Rendered once: the document is fixed for the life of the process.
        let doc: Arc<str> = Arc::from(self.doc.to_json().unwrap_or_else(|_| "{}".into()));
        let http_metrics = observe::HttpMetrics::register(&self.metrics);
        let api = match &options.rate_limit {
            Some(limit) => rate_limit::apply(self.router, limit),
            None => self.router,
        };
        api.merge(self.probes)
            .route(
                "/v1/openapi.json",
                get(move || {
                    let doc = Arc::clone(&doc);
                    async move { openapi_json(doc) }
                }),
            )
            .fallback(not_found)
            // Layers run outermost-last: observe → finish → catch_panic → body limits.
            .layer(DefaultBodyLimit::max(options.body_limit))
            .layer(RequestBodyLimitLayer::new(options.body_limit))
            .layer(CatchPanicLayer::new())
            .layer(axum::middleware::from_fn(problem::finish))
            .layer(axum::middleware::from_fn_with_state(
                http_metrics,
                observe::observe,
            ))
    }
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
fn openapi_json(doc: Arc<str>) -> impl axum::response::IntoResponse {
    (
        [(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        )],
        doc.to_string(),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        http::StatusCode::NOT_FOUND,
        ProblemType::NotFound,
        "no route for this path",
    )
}

/// The HTTP front end as a [`Service`]: serves `router` on `listener` until shutdown, then
/// stops accepting and lets in-flight requests finish.
#[derive(Debug)]
pub struct HttpService {
    listener: tokio::net::TcpListener,
    router: Router,
    limits: server::ConnectionLimits,
}

impl HttpService {
    /// Serves `router` on an already bound `listener` (bound by the caller so that a busy
    /// port fails at start, and so that tests can bind port 0).
    pub fn new(
        listener: tokio::net::TcpListener,
        router: Router,
        limits: server::ConnectionLimits,
    ) -> Self {
        Self {
            listener,
            router,
            limits,
        }
    }
}

impl Service for HttpService {
    fn name(&self) -> &'static str {
        "http"
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async move {
            let addr = self.listener.local_addr()?;
            tracing::info!(service = "http", %addr, "listening");
            server::serve(self.listener, self.router, self.limits, ctx.shutdown).await?;
            tracing::info!(service = "http", "stopped");
            Ok(())
        })
    }
}
