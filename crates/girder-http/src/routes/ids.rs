//! `/v1/ids`: Snowflake IDs from this node's generator.
//!
//! IDs travel as decimal strings: JSON numbers lose precision above 2^53 in most clients,
//! and an ID uses up to 63 bits.

use crate::problem::{ApiError, ApiPath, ApiQuery, Problem, ProblemType};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use girder_id::{Generator, SystemClock};
use girder_runtime::Metrics;
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use utoipa::{IntoParams, ToSchema};

/// Most IDs one request may ask for.
pub const MAX_COUNT: u32 = 10_000;

/// Above this many IDs, generation moves off the async workers: 10,000 IDs span at least
/// three milliseconds of the layout, and waiting them out must not stall other requests.
const BLOCKING_THRESHOLD: u32 = 1_024;

/// State of the ID routes.
#[derive(Debug, Clone)]
pub struct IdsState {
    generator: Arc<Generator<SystemClock>>,
    generated: Counter,
}

impl IdsState {
    /// Wraps `generator` and registers `girder_ids_generated_total`.
    pub fn new(generator: Arc<Generator<SystemClock>>, metrics: &Metrics) -> Self {
        let generated = Counter::default();
        metrics.register(
            "girder_ids_generated",
            "Snowflake IDs issued over HTTP",
            generated.clone(),
        );
        Self {
            generator,
            generated,
        }
    }
}

/// The routes, with their state applied.
pub fn router(state: IdsState) -> Router {
    Router::new()
        .route("/v1/ids", get(generate_ids))
        .route("/v1/ids/{id}", get(decode_id))
        .with_state(state)
}

/// Query of `GET /v1/ids`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdsQuery {
    /// How many IDs to generate.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10000, default = 1)]
    count: Option<String>,
}

/// A batch of IDs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IdList {
    /// Strictly increasing IDs, as decimal strings.
    #[schema(inline, value_type = Vec<String>)]
    pub ids: Vec<String>,
}

/// The parts of an ID.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct IdParts {
    /// The ID, as a decimal string.
    pub id: String,
    /// When it was issued, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// When it was issued, as an RFC 3339 UTC time with milliseconds.
    pub time: String,
    /// The node that issued it (0..=1023).
    pub node_id: u16,
    /// Its sequence number within the millisecond (0..=4095).
    pub sequence: u16,
}

/// Generate Snowflake IDs.
///
/// Returns `count` IDs, strictly increasing, unique across nodes with distinct node ids.
#[utoipa::path(
    get,
    path = "/v1/ids",
    tag = "ids",
    params(IdsQuery),
    responses(
        (status = 200, description = "The IDs", body = IdList),
        (status = 400, description = "`count` is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`count` is out of range", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited (when `http.rate_limit` is enabled); see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The clock moved backwards beyond the tolerated bound; retry later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn generate_ids(
    State(state): State<IdsState>,
    ApiQuery(query): ApiQuery<IdsQuery>,
) -> Result<Json<IdList>, ApiError> {
    let count = match query.count.as_deref() {
        None => 1,
        Some(text) => parse_decimal(text)
            .ok_or_else(|| ApiError::invalid_parameter("count", "must be a decimal integer"))?,
    };
    if !(1..=i128::from(MAX_COUNT)).contains(&count) {
        return Err(ApiError::invalid_value(
            "count",
            format!("must be between 1 and {MAX_COUNT} (got {count})"),
        ));
    }
    // In range 1..=10_000, checked above.
    let count = u32::try_from(count).unwrap_or(1);
    let n = count as usize;
    let generator = Arc::clone(&state.generator);
    let generate = move || {
        let mut ids = Vec::with_capacity(n);
        generator.next_ids(n, &mut ids).map(|()| ids)
    };
    let ids = if count > BLOCKING_THRESHOLD {
        tokio::task::spawn_blocking(generate)
            .await
            .map_err(|_| ApiError::internal("id generation was interrupted"))?
    } else {
        generate()
    }
    .map_err(generation_error)?;
    state.generated.inc_by(u64::from(count));
    Ok(Json(IdList {
        ids: ids.iter().map(u64::to_string).collect(),
    }))
}

/// A decimal integer, optionally negative: digits only, no `+`, no spaces, no exponent.
/// Wide enough that any integer a client sends is either in range or reported as out of
/// range (422), never confused with a malformed value (400).
fn parse_decimal(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || digits.len() > 30 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn generation_error(e: girder_id::Error) -> ApiError {
    match e {
        girder_id::Error::ClockMovedBackwards { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ProblemType::ClockRegression,
            e.to_string(),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")),
        other => ApiError::internal(other.to_string()),
    }
}

/// Decode an ID into its timestamp, node and sequence.
#[utoipa::path(
    get,
    path = "/v1/ids/{id}",
    tag = "ids",
    params(("id" = String, Path, description = "An ID as a decimal string", pattern = "^[0-9]{1,20}$")),
    responses(
        (status = 200, description = "The decoded parts", body = IdParts),
        (status = 400, description = "`id` is not a decimal integer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`id` is an integer but not a Snowflake ID", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited (when `http.rate_limit` is enabled); see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn decode_id(
    State(state): State<IdsState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<IdParts>, ApiError> {
    if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_parameter(
            "id",
            "must be a decimal integer of at most 20 digits",
        ));
    }
    let value: u64 = id
        .parse()
        .map_err(|_| ApiError::invalid_value("id", "does not fit in 64 bits"))?;
    let epoch_ms = state.generator.config().epoch_ms;
    let parts = girder_id::decode(value, epoch_ms)
        .map_err(|_| ApiError::invalid_value("id", "above 2^63 - 1, so not a Snowflake ID"))?;
    let time = UNIX_EPOCH + Duration::from_millis(parts.unix_ms);
    Ok(Json(IdParts {
        id: value.to_string(),
        timestamp_ms: parts.unix_ms,
        time: humantime::format_rfc3339_millis(time).to_string(),
        node_id: parts.node_id,
        sequence: parts.sequence,
    }))
}
