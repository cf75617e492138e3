//! `/v1/jobs`, `/v1/queues/{queue}/claim` and `/v1/schedules`: the job scheduler
//! (`girder_sched`) over HTTP — enqueue (idempotent with a key), inspect, list, cancel
//! and retry jobs; the external worker protocol (long-poll claim, heartbeat, complete,
//! fail, each fenced by the claim's token); recurring schedules.
//!
//! Every answer comes after the store committed. Times are RFC 3339 in responses and
//! `run_at`; durations are integer milliseconds (`*_ms`). Engine errors become problems
//! in one place, [`sched_error`]: a bad field is 422 naming it, a stale fencing token or
//! a state that does not allow the operation 409, a store failure 500.

use crate::pagination::PageLimits;
use crate::problem::{ApiError, ApiJson, ApiPath, ApiQuery, Problem, ProblemType};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use girder_sched::engine::{MAX_CLAIM, MAX_WAIT_MS};
use girder_sched::{
    BackoffSpec, EnqueueRequest, Job, JobKind, JobState, ListFilter, Misfire, SchedError, Schedule,
    ScheduleRequest, Scheduler,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::{IntoParams, OpenApi, ToSchema};

/// State of the scheduler routes.
#[derive(Debug, Clone)]
pub struct JobsState {
    sched: Arc<Scheduler>,
}

impl JobsState {
    /// Wraps the engine.
    pub fn new(sched: Arc<Scheduler>) -> Self {
        Self { sched }
    }
}

/// The routes, with their state applied.
pub fn router(state: JobsState) -> Router {
    Router::new()
        .route("/v1/jobs", post(enqueue).get(list_jobs))
        .route("/v1/jobs/batch", post(enqueue_batch))
        .route("/v1/jobs/complete", post(complete_batch))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/cancel", post(cancel))
        .route("/v1/jobs/{id}/retry", post(retry))
        .route("/v1/jobs/{id}/heartbeat", post(heartbeat))
        .route("/v1/jobs/{id}/complete", post(complete))
        .route("/v1/jobs/{id}/fail", post(fail))
        .route("/v1/queues/{queue}/claim", post(claim))
        .route("/v1/schedules", post(create_schedule).get(list_schedules))
        .route(
            "/v1/schedules/{id}",
            get(get_schedule).delete(delete_schedule),
        )
        .route("/v1/schedules/{id}/pause", post(pause))
        .route("/v1/schedules/{id}/resume", post(resume))
        .with_state(state)
}

/// The OpenAPI description of these routes, for `HttpApp::mount`.
#[derive(OpenApi)]
#[openapi(
    paths(
        enqueue,
        enqueue_batch,
        complete_batch,
        list_jobs,
        get_job,
        cancel,
        retry,
        heartbeat,
        complete,
        fail,
        claim,
        create_schedule,
        list_schedules,
        get_schedule,
        delete_schedule,
        pause,
        resume
    ),
    components(schemas(
        NewJobBody,
        BatchBody,
        BatchResponse,
        BatchItem,
        CompleteBatchBody,
        CompleteItem,
        CompleteBatchResponse,
        CompleteResult,
        BackoffBody,
        JobView,
        AttemptView,
        JobStateName,
        JobList,
        ClaimBody,
        ClaimResponse,
        ClaimedJob,
        TokenBody,
        HeartbeatBody,
        HeartbeatResponse,
        CompleteBody,
        FailBody,
        ScheduleBody,
        TemplateBody,
        MisfireBody,
        ScheduleView,
        ScheduleList
    )),
    tags((name = "jobs", description = "Delayed, recurring and on-demand jobs, run effectively once"))
)]
pub struct JobsApi;

/// The OpenAPI document of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    JobsApi::openapi()
}

/// The one place engine errors become problems.
fn sched_error(e: SchedError) -> ApiError {
    match e {
        SchedError::Invalid(message) => {
            let field = message.split(':').next().unwrap_or("body").to_owned();
            let reason = message
                .split_once(':')
                .map_or(message.as_str(), |(_, r)| r.trim())
                .to_owned();
            ApiError::invalid_value(&field, reason)
        }
        SchedError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, ProblemType::NotFound, m),
        SchedError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, ProblemType::Conflict, m),
        SchedError::Unavailable(e) => ApiError::internal(e.to_string()),
    }
}

const ID_PARAM: &str = "The job's id";

/// Retry delays: `min(max_ms, base_ms × 2^(attempt−1))`, with equal jitter.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffBody {
    /// Delay before the first retry, 1 to 86400000 (default 1000).
    #[serde(deserialize_with = "crate::whole::u64")]
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub base_ms: u64,
    /// Cap on every delay, at least `base_ms` (default 3600000).
    #[serde(deserialize_with = "crate::whole::u64")]
    #[schema(minimum = 1, maximum = 316_224_000_000_i64)]
    pub max_ms: u64,
}

/// Body of `POST /v1/jobs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJobBody {
    /// Queue: 1 to 128 of `A-Z a-z 0-9 . _ - :`.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub queue: String,
    /// Any JSON, handed to the worker (or POSTed to `url`). Default `null`.
    #[serde(default)]
    pub payload: Value,
    /// Makes a webhook job: the node POSTs the payload here.
    #[schema(
        max_length = 2048,
        pattern = "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$"
    )]
    pub url: Option<String>,
    /// When it is due (RFC 3339 with offset). Not with `delay_ms`.
    pub run_at: Option<String>,
    /// Due this many ms from now. Not with `run_at`.
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    #[schema(maximum = 316_224_000_000_i64)]
    pub delay_ms: Option<u64>,
    /// Higher runs first among due jobs, -1000 to 1000 (default 0).
    #[serde(default, deserialize_with = "crate::whole::opt_i32")]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i32>,
    /// Attempts before the job is dead, 1 to 1000.
    #[serde(default, deserialize_with = "crate::whole::opt_u32")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_attempts: Option<u32>,
    /// Retry delays.
    pub backoff: Option<BackoffBody>,
    /// Time limit of each attempt: its lease never reaches past start + timeout.
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub timeout_ms: Option<u64>,
    /// Enqueuing again with this key (in this queue) within the window returns the
    /// existing job (200) instead of making another (201). 1 to 256 characters, no NUL.
    #[schema(min_length = 1, max_length = 256, pattern = "^[^\\x00]*$")]
    pub idempotency_key: Option<String>,
    /// The window of `idempotency_key` (default 24 h). Without a key, jobs with equal
    /// payloads in the queue are duplicates within it.
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    #[schema(minimum = 1, maximum = 316_224_000_000_i64)]
    pub unique_for_ms: Option<u64>,
}

/// A job's state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStateName {
    /// Waiting for its first run.
    Scheduled,
    /// Due; the next claim takes it.
    Available,
    /// A worker holds its lease.
    Running,
    /// An attempt failed; waiting for its retry.
    Failed,
    /// Committed success.
    Succeeded,
    /// Out of attempts (a dead letter).
    Dead,
    /// Cancelled.
    Cancelled,
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1-based; the fencing token it held.
    pub attempt: u32,
    /// Who ran it.
    pub worker: String,
    /// Claimed at.
    pub started_at: String,
    /// Ended at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// `succeeded`, `failed`, `lease_expired` or `cancelled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The error reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// Id.
    pub id: i64,
    /// Queue.
    pub queue: String,
    /// `external` (claimed by workers) or `http` (POSTed by the node).
    pub kind: String,
    /// The webhook target of an `http` job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Payload.
    pub payload: Value,
    /// State.
    #[schema(value_type = JobStateName)]
    pub state: String,
    /// Priority.
    pub priority: i32,
    /// Due at.
    pub run_at: String,
    /// Attempts started; while running, the current fencing token.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Retry delays.
    pub backoff: BackoffBody,
    /// Per-attempt limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Lease end while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<String>,
    /// The schedule that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<i64>,
    /// What the committing worker returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Created at.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Reached a final state at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Attempt history, oldest first (only on `GET /v1/jobs/{id}` and the answers of
    /// single-job operations).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptView>,
}

fn job_view(job: Job) -> JobView {
    let t = girder_sched::format_ms;
    let (kind, url) = match job.kind {
        JobKind::External => ("external", None),
        JobKind::Http { url } => ("http", Some(url)),
    };
    JobView {
        id: job.id,
        queue: job.queue,
        kind: kind.into(),
        url,
        payload: job.payload,
        state: job.state.as_str().into(),
        priority: job.priority,
        run_at: t(job.run_at_ms),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        backoff: BackoffBody {
            base_ms: job.backoff.base_ms,
            max_ms: job.backoff.max_ms,
        },
        timeout_ms: job.timeout_ms,
        lease_until: job.lease_until_ms.map(t),
        schedule_id: job.schedule_id,
        result: job.result,
        last_error: job.last_error,
        created_at: t(job.created_at_ms),
        updated_at: t(job.updated_at_ms),
        finished_at: job.finished_at_ms.map(t),
        attempts: job
            .attempts
            .into_iter()
            .map(|a| AttemptView {
                attempt: a.attempt,
                worker: a.worker,
                started_at: t(a.started_at_ms),
                ended_at: a.ended_at_ms.map(t),
                outcome: a.outcome,
                error: a.error,
            })
            .collect(),
    }
}

fn enqueue_request(body: NewJobBody) -> Result<EnqueueRequest, ApiError> {
    let run_at_ms = body
        .run_at
        .as_deref()
        .map(|s| {
            girder_sched::parse_time(s).ok_or_else(|| {
                ApiError::invalid_value(
                    "run_at",
                    "must be an RFC 3339 timestamp with an offset, after 1970",
                )
            })
        })
        .transpose()?;
    Ok(EnqueueRequest {
        queue: body.queue,
        payload: body.payload,
        url: body.url,
        run_at_ms,
        delay_ms: body.delay_ms,
        priority: body.priority,
        max_attempts: body.max_attempts,
        backoff: body.backoff.map(|b| BackoffSpec {
            base_ms: b.base_ms,
            max_ms: b.max_ms,
        }),
        timeout_ms: body.timeout_ms,
        idempotency_key: body.idempotency_key,
        unique_for_ms: body.unique_for_ms,
    })
}

fn location(path: String) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&path).map_err(|_| ApiError::internal("location is not a header value"))
}

/// Enqueue a job.
///
/// 201 with the new job, or 200 with the existing one when `idempotency_key` (or
/// `unique_for_ms`) matches a job of the queue within its window. Answered once the job
/// is committed to the store.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    request_body = NewJobBody,
    responses(
        (status = 201, description = "Created", body = JobView),
        (status = 200, description = "The existing job holding the idempotency key", body = JobView),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than `http.body_limit`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is out of range; the problem names it", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed; nothing was committed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn enqueue(
    State(state): State<JobsState>,
    ApiJson(body): ApiJson<NewJobBody>,
) -> Result<Response, ApiError> {
    let req = enqueue_request(body)?;
    let enqueued = state.sched.enqueue(req).await.map_err(sched_error)?;
    let status = if enqueued.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let loc = location(format!("/v1/jobs/{}", enqueued.job.id))?;
    Ok((
        status,
        [(header::LOCATION, loc)],
        Json(job_view(enqueued.job)),
    )
        .into_response())
}

/// Most jobs in one batch request.
pub const MAX_BATCH: usize = 1000;

/// Body of `POST /v1/jobs/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// 1 to 1000 jobs, enqueued in one transaction: all or none.
    #[schema(min_items = 1, max_items = 1000)]
    pub jobs: Vec<NewJobBody>,
}

/// One job of a batch answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    /// The job.
    pub job: JobView,
    /// True if it is an existing job holding the idempotency key.
    pub duplicate: bool,
}

/// Answer of `POST /v1/jobs/batch`, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One per requested job.
    pub jobs: Vec<BatchItem>,
}

/// Enqueue up to 1000 jobs in one transaction (all or none).
///
/// A bad field is 422 naming it as `jobs[i].field`, and nothing is enqueued.
#[utoipa::path(
    post,
    path = "/v1/jobs/batch",
    tag = "jobs",
    request_body = BatchBody,
    responses(
        (status = 200, description = "Enqueued (or existing, per idempotency key)", body = BatchResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than `http.body_limit`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A job's field is out of range; the problem names it", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed; nothing was committed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn enqueue_batch(
    State(state): State<JobsState>,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Json<BatchResponse>, ApiError> {
    if body.jobs.is_empty() || body.jobs.len() > MAX_BATCH {
        return Err(ApiError::invalid_value(
            "jobs",
            format!("must hold 1 to {MAX_BATCH} jobs (got {})", body.jobs.len()),
        ));
    }
    let reqs = body
        .jobs
        .into_iter()
        .enumerate()
        .map(|(i, j)| {
            enqueue_request(j).map_err(|_| {
                ApiError::invalid_value(
                    &format!("jobs[{i}].run_at"),
                    "must be an RFC 3339 timestamp with an offset, after 1970",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let enqueued = state
        .sched
        .enqueue_many(reqs, true)
        .await
        .map_err(sched_error)?;
    Ok(Json(BatchResponse {
        jobs: enqueued
            .into_iter()
            .map(|e| BatchItem {
                duplicate: e.duplicate,
                job: job_view(e.job),
            })
            .collect(),
    }))
}

/// One completion of a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteItem {
    /// The job.
    #[schema(minimum = 0)]
    pub id: i64,
    /// The claim's token.
    #[serde(deserialize_with = "crate::whole::u64")]
    #[schema(maximum = 9223372036854775807_i64)]
    pub fencing_token: u64,
    /// Any JSON, kept with the job.
    pub result: Option<Value>,
}

/// Body of `POST /v1/jobs/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBatchBody {
    /// 1 to 1000 completions, committed in one transaction.
    #[schema(min_items = 1, max_items = 1000)]
    pub jobs: Vec<CompleteItem>,
}

/// The outcome of one completion.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompleteResult {
    /// The job.
    pub id: i64,
    /// 200 committed; 404 no such job; 409 the token is stale (see the per-job
    /// `complete`).
    pub status: u16,
    /// Why, when not committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Answer of `POST /v1/jobs/complete`, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompleteBatchResponse {
    /// One per completion.
    pub results: Vec<CompleteResult>,
}

/// Commit success for up to 1000 claimed jobs in one transaction. Each is fenced by its
/// own token: a stale one is refused (409 in its result) and the others commit.
#[utoipa::path(
    post,
    path = "/v1/jobs/complete",
    tag = "jobs",
    request_body = CompleteBatchBody,
    responses(
        (status = 200, description = "Each completion's outcome", body = CompleteBatchResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than `http.body_limit`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is out of range", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed; nothing was committed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn complete_batch(
    State(state): State<JobsState>,
    ApiJson(body): ApiJson<CompleteBatchBody>,
) -> Result<Json<CompleteBatchResponse>, ApiError> {
    if body.jobs.is_empty() || body.jobs.len() > MAX_BATCH {
        return Err(ApiError::invalid_value(
            "jobs",
            format!(
                "must hold 1 to {MAX_BATCH} completions (got {})",
                body.jobs.len()
            ),
        ));
    }
    if let Some(i) = body.jobs.iter().position(|j| j.id < 0) {
        return Err(ApiError::invalid_value(
            &format!("jobs[{i}].id"),
            "must be a job id (0 or more)",
        ));
    }
    let ids: Vec<i64> = body.jobs.iter().map(|j| j.id).collect();
    let items = body
        .jobs
        .into_iter()
        .map(|j| girder_sched::Finish {
            id: j.id,
            token: j.fencing_token,
            outcome: girder_sched::Outcome::Succeeded(j.result),
            want_job: false,
        })
        .collect();
    let answers = state.sched.finish_many(items).await.map_err(sched_error)?;
    Ok(Json(CompleteBatchResponse {
        results: answers
            .into_iter()
            .zip(ids)
            .map(|(a, id)| match a {
                Ok(_) => CompleteResult {
                    id,
                    status: 200,
                    detail: None,
                },
                Err(e) => CompleteResult {
                    id,
                    status: match e {
                        SchedError::NotFound(_) => 404,
                        SchedError::Conflict(_) => 409,
                        SchedError::Invalid(_) => 422,
                        SchedError::Unavailable(_) => 500,
                    },
                    detail: Some(e.to_string()),
                },
            })
            .collect(),
    }))
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobPage {
    /// Only this queue.
    #[param(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub queue: Option<String>,
    /// Only this state.
    #[param(value_type = Option<JobStateName>)]
    pub state: Option<String>,
    /// Jobs per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,19}$")]
    pub cursor: Option<String>,
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// Jobs in id order.
    pub items: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limits = PageLimits::default();
    let limit = limit.unwrap_or(limits.default);
    if limit == 0 || limit > limits.max {
        return Err(ApiError::invalid_value(
            "limit",
            format!("must be between 1 and {} (got {limit})", limits.max),
        ));
    }
    Ok(limit)
}

fn id_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            c.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                ApiError::invalid_parameter("cursor", "is not a cursor this endpoint returned")
            })
        })
        .transpose()
}

/// List jobs by id, optionally of one queue and one state.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    params(JobPage),
    responses(
        (status = 200, description = "A page of jobs (without attempt histories)", body = JobList),
        (status = 400, description = "`cursor` or `state` is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` or `queue` is out of range", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_jobs(
    State(state): State<JobsState>,
    ApiQuery(params): ApiQuery<JobPage>,
) -> Result<Json<JobList>, ApiError> {
    let limit = page_limit(params.limit)?;
    let after_id = id_cursor(params.cursor.as_deref())?;
    let job_state = params
        .state
        .as_deref()
        .map(|s| {
            JobState::ALL
                .into_iter()
                .find(|st| st.as_str() == s)
                .ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "state",
                        "must be one of scheduled, available, running, failed, succeeded, dead, cancelled",
                    )
                })
        })
        .transpose()?;
    let mut jobs = state
        .sched
        .list(ListFilter {
            queue: params.queue,
            state: job_state,
            after_id,
            limit: limit + 1,
        })
        .await
        .map_err(sched_error)?;
    let more = jobs.len() > limit as usize;
    jobs.truncate(limit as usize);
    let next_cursor = more
        .then(|| jobs.last().map(|j| j.id.to_string()))
        .flatten();
    Ok(Json(JobList {
        items: jobs.into_iter().map(job_view).collect(),
        next_cursor,
    }))
}

/// A job with its attempt history.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = i64, Path, description = ID_PARAM, minimum = 0)),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 400, description = "`id` is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job (or pruned)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_job(
    State(state): State<JobsState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(job_view(
        state.sched.get(id).await.map_err(sched_error)?,
    )))
}

/// Cancel a job that has not finished; a running attempt can no longer commit.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = i64, Path, description = ID_PARAM, minimum = 0)),
    responses(
        (status = 200, description = "Cancelled", body = JobView),
        (status = 400, description = "`id` is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job already finished", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    State(state): State<JobsState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(job_view(
        state.sched.cancel(id).await.map_err(sched_error)?,
    )))
}

/// Retry a dead (or cancelled) job: available now, with a fresh budget of attempts.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/retry",
    tag = "jobs",
    params(("id" = i64, Path, description = ID_PARAM, minimum = 0)),
    responses(
        (status = 200, description = "Available again", body = JobView),
        (status = 400, description = "`id` is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not dead or cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry(
    State(state): State<JobsState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(job_view(
        state.sched.retry(id).await.map_err(sched_error)?,
    )))
}

/// Body of `POST /v1/queues/{queue}/claim`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    /// Most jobs to take, 1 to 1000 (default 1).
    #[serde(default, deserialize_with = "crate::whole::opt_u32")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_jobs: Option<u32>,
    /// Lease length, 1 to 86400000 ms (default `scheduler.default_lease`).
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub lease_ms: Option<u64>,
    /// Long-poll: wait up to this long for a job, 0 to 20000 ms (default 0).
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    #[schema(maximum = 20_000)]
    pub wait_ms: Option<u64>,
    /// Recorded in the attempt history (default `anonymous`); no NUL.
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\x00]*$")]
    pub worker: Option<String>,
}

/// A claimed job.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimedJob {
    /// Id.
    pub id: i64,
    /// Queue.
    pub queue: String,
    /// Payload.
    pub payload: Value,
    /// 1-based attempt.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Present it to heartbeat, complete and fail; a later claim of the same job holds a
    /// larger one, and the older is refused with 409.
    pub fencing_token: u64,
    /// Lease end: heartbeat before it, or the job is claimed again.
    pub lease_until: String,
    /// When it was due.
    pub run_at: String,
}

/// Answer of a claim.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimResponse {
    /// The jobs, maybe none.
    pub jobs: Vec<ClaimedJob>,
}

/// Claim due jobs of a queue (external workers), long-polling up to `wait_ms`.
///
/// Each job is leased to the caller until `lease_until`; its `fencing_token` is the
/// attempt number. Jobs due in the future are handed out when they are due (a waiting
/// claim is woken at the due time, not by polling).
#[utoipa::path(
    post,
    path = "/v1/queues/{queue}/claim",
    tag = "jobs",
    params(("queue" = String, Path, description = "The queue", pattern = "^[A-Za-z0-9._:-]{1,128}$")),
    request_body = ClaimBody,
    responses(
        (status = 200, description = "Jobs, maybe none", body = ClaimResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than `http.body_limit`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field or the queue name is out of range", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn claim(
    State(state): State<JobsState>,
    ApiPath(queue): ApiPath<String>,
    ApiJson(body): ApiJson<ClaimBody>,
) -> Result<Json<ClaimResponse>, ApiError> {
    let max = body.max_jobs.unwrap_or(1);
    if !(1..=MAX_CLAIM).contains(&max) {
        return Err(ApiError::invalid_value(
            "max_jobs",
            format!("must be between 1 and {MAX_CLAIM} (got {max})"),
        ));
    }
    let wait = body.wait_ms.unwrap_or(0);
    if wait > MAX_WAIT_MS {
        return Err(ApiError::invalid_value(
            "wait_ms",
            format!("must be between 0 and {MAX_WAIT_MS} (got {wait})"),
        ));
    }
    let worker = body.worker.unwrap_or_else(|| "anonymous".into());
    if worker.is_empty() || worker.chars().count() > 200 {
        return Err(ApiError::invalid_value(
            "worker",
            "must be 1 to 200 characters",
        ));
    }
    let jobs = state
        .sched
        .claim(&queue, max, body.lease_ms, wait, &worker)
        .await
        .map_err(sched_error)?;
    Ok(Json(ClaimResponse {
        jobs: jobs
            .into_iter()
            .map(|c| ClaimedJob {
                id: c.id,
                queue: c.queue,
                payload: c.payload,
                attempt: c.attempt,
                max_attempts: c.max_attempts,
                fencing_token: c.fencing_token,
                lease_until: girder_sched::format_ms(c.lease_until_ms),
                run_at: girder_sched::format_ms(c.run_at_ms),
            })
            .collect(),
    }))
}

/// A fencing token alone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The claim's token.
    #[serde(deserialize_with = "crate::whole::u64")]
    #[schema(maximum = 9223372036854775807_i64)]
    pub fencing_token: u64,
}

/// Body of `POST /v1/jobs/{id}/heartbeat`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    /// The claim's token.
    #[serde(deserialize_with = "crate::whole::u64")]
    #[schema(maximum = 9223372036854775807_i64)]
    pub fencing_token: u64,
    /// New lease length from now (never past the job's timeout; never shortens).
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub lease_ms: Option<u64>,
}

/// Answer of a heartbeat.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatResponse {
    /// The lease's new end.
    pub lease_until: String,
}

const FENCED: &str =
    "The token does not hold the job: its lease ended, it was claimed again, or it was cancelled or finished";

/// Extend a running job's lease.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/heartbeat",
    tag = "jobs",
    params(("id" = i64, Path, description = ID_PARAM, minimum = 0)),
    request_body = HeartbeatBody,
    responses(
        (status = 200, description = "Extended", body = HeartbeatResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = FENCED, body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than `http.body_limit`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is out of range", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn heartbeat(
    State(state): State<JobsState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<HeartbeatBody>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let until = state
        .sched
        .heartbeat(id, body.fencing_token, body.lease_ms)
        .await
        .map_err(sched_error)?;
    Ok(Json(HeartbeatResponse {
        lease_until: girder_sched::format_ms(until),
    }))
}

/// Body of `POST /v1/jobs/{id}/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    /// The claim's token.
    #[serde(deserialize_with = "crate::whole::u64")]
    #[schema(maximum = 9223372036854775807_i64)]
    pub fencing_token: u64,
    /// Any JSON, kept with the job.
    pub result: Option<Value>,
}

/// Commit success. Accepted only with the current fencing token; exactly one attempt of
/// a job can commit.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/complete",
    tag = "jobs",
    params(("id" = i64, Path, description = ID_PARAM, minimum = 0)),
    request_body = CompleteBody,
    responses(
        (status = 200, description = "Committed", body = JobView),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = FENCED, body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than `http.body_limit`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is out of range", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed; nothing was committed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn complete(
    State(state): State<JobsState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CompleteBody>,
) -> Result<Json<JobView>, ApiError> {
    let job = state
        .sched
        .complete(id, body.fencing_token, body.result)
        .await
        .map_err(sched_error)?;
    Ok(Json(job_view(job)))
}

/// Body of `POST /v1/jobs/{id}/fail`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailBody {
    /// The claim's token.
    #[serde(deserialize_with = "crate::whole::u64")]
    #[schema(maximum = 9223372036854775807_i64)]
    pub fencing_token: u64,
    /// What went wrong (kept, up to 4 KiB).
    #[serde(default)]
    pub error: String,
    /// `false`: dead now, no more attempts (default `true`).
    pub retry: Option<bool>,
}

/// Commit failure: the job retries after its backoff, or is dead when its attempts are
/// spent (or `retry` is false).
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/fail",
    tag = "jobs",
    params(("id" = i64, Path, description = ID_PARAM, minimum = 0)),
    request_body = FailBody,
    responses(
        (status = 200, description = "Committed", body = JobView),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = FENCED, body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than `http.body_limit`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is out of range", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed; nothing was committed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn fail(
    State(state): State<JobsState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<FailBody>,
) -> Result<Json<JobView>, ApiError> {
    let job = state
        .sched
        .fail(
            id,
            body.fencing_token,
            body.error,
            body.retry.unwrap_or(true),
        )
        .await
        .map_err(sched_error)?;
    Ok(Json(job_view(job)))
}

/// What each tick of a schedule enqueues.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// Queue.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub queue: String,
    /// Payload.
    #[serde(default)]
    pub payload: Value,
    /// Webhook target.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 2048,
        pattern = "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$"
    )]
    pub url: Option<String>,
    /// Priority.
    #[serde(default, deserialize_with = "crate::whole::opt_i32")]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i32>,
    /// Attempts.
    #[serde(default, deserialize_with = "crate::whole::opt_u32")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_attempts: Option<u32>,
    /// Retry delays.
    pub backoff: Option<BackoffBody>,
    /// Per-attempt limit.
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub timeout_ms: Option<u64>,
}

/// What a schedule does about ticks missed while no node ran it.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MisfireBody {
    /// `skip` (default): missed ticks make nothing. `run_once`: one job for all of
    /// them. `catch_up`: one job per missed tick, the newest `max`.
    #[schema(pattern = "^(skip|run_once|catch_up)$")]
    pub policy: String,
    /// For `catch_up`: 1 to 1000 (default 10).
    #[serde(default, deserialize_with = "crate::whole::opt_u32")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max: Option<u32>,
}

/// Body of `POST /v1/schedules`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// Unique name, 1 to 128 characters, no NUL. Creating the same schedule again
    /// returns it (200); a different one under a taken name is 409.
    #[schema(min_length = 1, max_length = 128, pattern = "^[^\\x00]*$")]
    pub name: String,
    /// Cron: `min hour dom mon dow`, or with seconds first; `@hourly` etc.
    pub cron: String,
    /// IANA zone the expression is read in (default `UTC`).
    pub time_zone: Option<String>,
    /// The job each tick enqueues.
    pub job: TemplateBody,
    /// Misfire policy (default skip).
    pub misfire: Option<MisfireBody>,
}

/// A schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Cron expression.
    pub cron: String,
    /// Zone.
    pub time_zone: String,
    /// The job each tick enqueues.
    pub job: TemplateBody,
    /// Misfire policy.
    pub misfire: MisfireBody,
    /// Paused schedules make no jobs.
    pub paused: bool,
    /// The next tick.
    pub next_run_at: String,
    /// The last tick that made a job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_tick_at: Option<String>,
    /// Created at.
    pub created_at: String,
}

fn schedule_view(s: Schedule) -> ScheduleView {
    let t = girder_sched::format_ms;
    let (policy, max) = match s.misfire {
        Misfire::Skip => ("skip", None),
        Misfire::RunOnce => ("run_once", None),
        Misfire::CatchUp { max } => ("catch_up", Some(max)),
    };
    let tpl = s.template;
    ScheduleView {
        id: s.id,
        name: s.name,
        cron: s.cron,
        time_zone: s.time_zone,
        job: TemplateBody {
            queue: tpl.queue,
            payload: tpl.payload,
            url: match tpl.kind {
                JobKind::External => None,
                JobKind::Http { url } => Some(url),
            },
            priority: Some(tpl.priority),
            max_attempts: Some(tpl.max_attempts),
            backoff: Some(BackoffBody {
                base_ms: tpl.backoff.base_ms,
                max_ms: tpl.backoff.max_ms,
            }),
            timeout_ms: tpl.timeout_ms,
        },
        misfire: MisfireBody {
            policy: policy.into(),
            max,
        },
        paused: s.paused,
        next_run_at: t(s.next_run_at_ms),
        last_tick_at: s.last_tick_ms.map(t),
        created_at: t(s.created_at_ms),
    }
}

/// Create a recurring schedule. Each tick makes exactly one job, even with several
/// nodes sharing the store.
#[utoipa::path(
    post,
    path = "/v1/schedules",
    tag = "jobs",
    request_body = ScheduleBody,
    responses(
        (status = 201, description = "Created", body = ScheduleView),
        (status = 200, description = "The same schedule already exists", body = ScheduleView),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A different schedule has this name", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field (cron, time_zone, …) is not valid; the problem names it", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_schedule(
    State(state): State<JobsState>,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> Result<Response, ApiError> {
    let misfire = match body.misfire {
        None => Misfire::Skip,
        Some(m) => match (m.policy.as_str(), m.max) {
            ("skip", None) => Misfire::Skip,
            ("run_once", None) => Misfire::RunOnce,
            ("catch_up", max) => Misfire::CatchUp {
                max: max.unwrap_or(10),
            },
            ("skip" | "run_once", Some(_)) => {
                return Err(ApiError::invalid_value(
                    "misfire.max",
                    "applies only to the catch_up policy",
                ))
            }
            _ => {
                return Err(ApiError::invalid_value(
                    "misfire.policy",
                    "must be skip, run_once or catch_up",
                ))
            }
        },
    };
    let tpl = body.job;
    let req = ScheduleRequest {
        name: body.name,
        cron: body.cron,
        time_zone: body.time_zone,
        job: EnqueueRequest {
            queue: tpl.queue,
            payload: tpl.payload,
            url: tpl.url,
            priority: tpl.priority,
            max_attempts: tpl.max_attempts,
            backoff: tpl.backoff.map(|b| BackoffSpec {
                base_ms: b.base_ms,
                max_ms: b.max_ms,
            }),
            timeout_ms: tpl.timeout_ms,
            ..Default::default()
        },
        misfire,
    };
    let (schedule, created) = state
        .sched
        .create_schedule(req)
        .await
        .map_err(sched_error)?;
    let loc = location(format!("/v1/schedules/{}", schedule.id))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [(header::LOCATION, loc)],
        Json(schedule_view(schedule)),
    )
        .into_response())
}

/// Query of `GET /v1/schedules`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SchedulePage {
    /// Schedules per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,19}$")]
    pub cursor: Option<String>,
}

/// A page of schedules.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    /// Schedules by id.
    pub items: Vec<ScheduleView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// List schedules.
#[utoipa::path(
    get,
    path = "/v1/schedules",
    tag = "jobs",
    params(SchedulePage),
    responses(
        (status = 200, description = "A page of schedules", body = ScheduleList),
        (status = 400, description = "`cursor` is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` is out of range", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_schedules(
    State(state): State<JobsState>,
    ApiQuery(params): ApiQuery<SchedulePage>,
) -> Result<Json<ScheduleList>, ApiError> {
    let limit = page_limit(params.limit)?;
    let after = id_cursor(params.cursor.as_deref())?;
    let mut items = state
        .sched
        .list_schedules(after, limit + 1)
        .await
        .map_err(sched_error)?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = more
        .then(|| items.last().map(|s| s.id.to_string()))
        .flatten();
    Ok(Json(ScheduleList {
        items: items.into_iter().map(schedule_view).collect(),
        next_cursor,
    }))
}

/// One schedule.
#[utoipa::path(
    get,
    path = "/v1/schedules/{id}",
    tag = "jobs",
    params(("id" = i64, Path, description = "The schedule's id", minimum = 0)),
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        (status = 400, description = "`id` is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_schedule(
    State(state): State<JobsState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ScheduleView>, ApiError> {
    Ok(Json(schedule_view(
        state.sched.get_schedule(id).await.map_err(sched_error)?,
    )))
}

/// Delete a schedule (the jobs it made stay).
#[utoipa::path(
    delete,
    path = "/v1/schedules/{id}",
    tag = "jobs",
    params(("id" = i64, Path, description = "The schedule's id", minimum = 0)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`id` is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_schedule(
    State(state): State<JobsState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.sched.delete_schedule(id).await.map_err(sched_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pause a schedule: its ticks make no jobs until it is resumed.
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/pause",
    tag = "jobs",
    params(("id" = i64, Path, description = "The schedule's id", minimum = 0)),
    responses(
        (status = 200, description = "Paused", body = ScheduleView),
        (status = 400, description = "`id` is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn pause(
    State(state): State<JobsState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ScheduleView>, ApiError> {
    Ok(Json(schedule_view(
        state
            .sched
            .set_paused(id, true)
            .await
            .map_err(sched_error)?,
    )))
}

/// Resume a paused schedule from its next tick after now.
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/resume",
    tag = "jobs",
    params(("id" = i64, Path, description = "The schedule's id", minimum = 0)),
    responses(
        (status = 200, description = "Resumed", body = ScheduleView),
        (status = 400, description = "`id` is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resume(
    State(state): State<JobsState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ScheduleView>, ApiError> {
    Ok(Json(schedule_view(
        state
            .sched
            .set_paused(id, false)
            .await
            .map_err(sched_error)?,
    )))
}
