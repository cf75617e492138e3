//! Liveness, readiness and metrics: the routes an orchestrator and Prometheus call.

use crate::problem::{ApiError, Problem, ProblemType};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use girder_runtime::{Metrics, Readiness};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// State of the health routes.
#[derive(Debug, Clone)]
pub struct HealthState {
    /// Process readiness.
    pub readiness: Readiness,
    /// The registry `/metrics` renders.
    pub metrics: Metrics,
}

/// The routes, with their state applied.
pub fn router(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Status of a health probe.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` for liveness, `ready` for readiness.
    pub status: String,
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: whether to send traffic here. Fails while a service warms up and from the
/// moment shutdown begins.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready for traffic", body = Health),
        (status = 503, description = "Not ready: starting or draining", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<HealthState>) -> Result<Json<Health>, ApiError> {
    let status = state.readiness.status();
    if status.ready {
        return Ok(Json(Health {
            status: "ready".into(),
        }));
    }
    let mut reasons: Vec<String> = status
        .pending
        .iter()
        .map(|(service, reason)| format!("{service}: {reason}"))
        .collect();
    if status.draining {
        reasons.insert(0, "shutting down".into());
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ProblemType::NotReady,
        format!("not ready: {}", reasons.join("; ")),
    ))
}

/// Prometheus metrics in the text exposition format 0.0.4.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<HealthState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(Metrics::CONTENT_TYPE),
        )],
        state.metrics.encode(),
    )
}
