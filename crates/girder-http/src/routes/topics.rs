//! `/v1/topics`: partitioned topics over `girder_stream::topics` — create, list, get and
//! delete topics, produce (one message or a batch, optionally deduplicated by id), fetch a
//! partition by offset, and commit and read consumer groups' offsets (Kafka's log mode);
//! and queue mode: receive (long-poll) with a visibility timeout, ack, nack, extend (SQS
//! FIFO message groups; semantics in `girder_stream::topics::queue`); dead letters:
//! redrive and the `girder_topic_dlq_depth` gauge (`girder_stream::topics::dlq`).
//!
//! Values, keys, ids and headers are JSON strings. A produce is answered once its
//! messages are durable under the topic's `fsync` policy. Engine calls that touch files
//! (create, delete, fetch, commit) run on the blocking pool; produce only copies into
//! memory and then awaits the group-committed fsync. Engine errors become problems in one
//! place, [`topic_error`].

use crate::pagination::PageLimits;
use crate::problem::{ApiError, ApiJson, ApiPath, ApiQuery, Problem, ProblemType};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use girder_runtime::Metrics;
use girder_stream::topics::queue::{MAX_RECEIVE, MAX_VISIBILITY_MS};
use girder_stream::topics::{
    Message, QueueError, ReceiveOptions, TopicError, TopicFsync, TopicSpec, Topics, TxnOutput,
    TxnRequest, DEFAULT_DEDUP_WINDOW_MS, MAX_NAME_LEN, MAX_REDRIVE,
};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::MetricType;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, OpenApi, ToSchema};

/// Most messages in one produce request.
pub const MAX_BATCH: usize = 1000;
/// Most messages one fetch returns.
pub const MAX_FETCH: u32 = 1000;
/// Record bytes one fetch reads (at least one message is always returned).
const FETCH_MAX_BYTES: usize = 1 << 20;

/// State of the topic routes.
#[derive(Debug, Clone)]
pub struct TopicsState {
    topics: Arc<Topics>,
    produced: Counter,
    received: Counter,
    redelivered: Counter,
    acked: Counter,
}

impl TopicsState {
    /// Wraps the engine and registers the topic metrics: counters of messages produced,
    /// received, redelivered and acked; gauges of DLQ depth, consumer lag and in-flight
    /// deliveries (read from the engine at each scrape).
    pub fn new(topics: Arc<Topics>, metrics: &Metrics) -> Self {
        let produced = Counter::default();
        metrics.register(
            "girder_topics_messages_produced",
            "Messages appended to topics over HTTP (duplicates not counted)",
            produced.clone(),
        );
        let received = Counter::default();
        metrics.register(
            "girder_topics_messages_received",
            "Deliveries handed to queue-mode consumers (redeliveries included)",
            received.clone(),
        );
        let redelivered = Counter::default();
        metrics.register(
            "girder_topics_messages_redelivered",
            "Deliveries of a message delivered before (delivery_count above 1)",
            redelivered.clone(),
        );
        let acked = Counter::default();
        metrics.register(
            "girder_topics_messages_acked",
            "Deliveries acked, by ack or by transaction",
            acked.clone(),
        );
        metrics.register(
            "girder_topic_dlq_depth",
            "Dead letters of a topic not yet redriven",
            DlqDepth {
                topics: Arc::clone(&topics),
            },
        );
        metrics.register(
            "girder_topic_consumer_lag",
            "Messages below the high watermark a consumer group has not consumed, per partition",
            GroupGauge {
                topics: Arc::clone(&topics),
                kind: GroupGaugeKind::Lag,
            },
        );
        metrics.register(
            "girder_topic_in_flight",
            "Queue-mode deliveries hidden awaiting their ack, per group",
            GroupGauge {
                topics: Arc::clone(&topics),
                kind: GroupGaugeKind::InFlight,
            },
        );
        Self {
            topics,
            produced,
            received,
            redelivered,
            acked,
        }
    }
}

/// Most series one scrape of `girder_topic_consumer_lag` (topics × groups × partitions)
/// or `girder_topic_in_flight` reports; past it the rest is left out, so a scrape stays
/// bounded.
pub const MAX_LAG_SERIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
enum GroupGaugeKind {
    Lag,
    InFlight,
}

/// `girder_topic_consumer_lag{topic,group,mode,partition}` and
/// `girder_topic_in_flight{topic,group}`, read from the engine at each scrape.
#[derive(Debug)]
struct GroupGauge {
    topics: Arc<Topics>,
    kind: GroupGaugeKind,
}

impl EncodeMetric for GroupGauge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut series = 0;
        for topic in self.topics.list(None, usize::MAX) {
            for g in topic.consumer_lag() {
                match self.kind {
                    GroupGaugeKind::Lag => {
                        for (p, lag) in g.lag {
                            if series >= MAX_LAG_SERIES {
                                return Ok(());
                            }
                            series += 1;
                            let labels = [
                                ("topic", topic.name().to_owned()),
                                ("group", g.group.clone()),
                                ("mode", g.mode.to_owned()),
                                ("partition", p.to_string()),
                            ];
                            let lag = i64::try_from(lag).unwrap_or(i64::MAX);
                            encoder.encode_family(&labels)?.encode_gauge(&lag)?;
                        }
                    }
                    GroupGaugeKind::InFlight if g.mode == "queue" => {
                        if series >= MAX_LAG_SERIES {
                            return Ok(());
                        }
                        series += 1;
                        let labels = [
                            ("topic", topic.name().to_owned()),
                            ("group", g.group.clone()),
                        ];
                        let n = i64::try_from(g.in_flight).unwrap_or(i64::MAX);
                        encoder.encode_family(&labels)?.encode_gauge(&n)?;
                    }
                    GroupGaugeKind::InFlight => {}
                }
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// `girder_topic_dlq_depth{topic}`, read from the engine at each scrape. One series per
/// topic with a dead-letter topic: the label set is bounded by the topics operators
/// create (and a topic's series goes when it is deleted).
#[derive(Debug)]
struct DlqDepth {
    topics: Arc<Topics>,
}

impl EncodeMetric for DlqDepth {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for topic in self.topics.list(None, usize::MAX) {
            if let Some(depth) = topic.dlq_depth() {
                let labels = [("topic", topic.name())];
                let depth = i64::try_from(depth).unwrap_or(i64::MAX);
                encoder.encode_family(&labels)?.encode_gauge(&depth)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// The routes, with their state applied.
pub fn router(state: TopicsState) -> Router {
    Router::new()
        .route("/v1/topics", post(create_topic).get(list_topics))
        .route("/v1/topics/{topic}", get(get_topic).delete(delete_topic))
        .route("/v1/topics/{topic}/messages", post(produce))
        .route(
            "/v1/topics/{topic}/partitions/{partition}/messages",
            get(fetch),
        )
        .route(
            "/v1/topics/{topic}/groups/{group}/offsets",
            post(commit_offset).get(group_offsets),
        )
        .route("/v1/topics/{topic}/groups/{group}/receive", post(receive))
        .route("/v1/topics/{topic}/groups/{group}/ack", post(ack))
        .route("/v1/topics/{topic}/groups/{group}/nack", post(nack))
        .route("/v1/topics/{topic}/groups/{group}/extend", post(extend))
        .route("/v1/topics/{topic}/groups/{group}/transact", post(transact))
        .route("/v1/topics/{topic}/dlq/redrive", post(redrive))
        .with_state(state)
}

/// The OpenAPI description of these routes, for `HttpApp::mount`.
#[derive(OpenApi)]
#[openapi(
    paths(
        create_topic,
        list_topics,
        get_topic,
        delete_topic,
        produce,
        fetch,
        commit_offset,
        group_offsets,
        receive,
        ack,
        nack,
        extend,
        transact,
        redrive
    ),
    components(schemas(
        CreateTopic,
        Fsync,
        TopicInfo,
        PartitionOffsets,
        TopicList,
        MessageIn,
        ProduceBatch,
        ProduceResult,
        ProduceResults,
        MessageOut,
        FetchResponse,
        CommitOffset,
        CommittedOffset,
        GroupOffsets,
        GroupPartitionOffset,
        ReceiveRequest,
        ReceivedMessage,
        ReceiveResponse,
        AckRequest,
        AckResult,
        AckResponse,
        NackRequest,
        ExtendRequest,
        TransactRequest,
        TransactOutput,
        TransactResponse,
        TransactProduced,
        RedriveRequest,
        RedriveResponse
    )),
    tags((name = "topics", description = "Partitioned, durable topics (Kafka's log model)"))
)]
pub struct TopicsApi;

/// The OpenAPI description of these routes (so callers need not depend on utoipa).
pub fn openapi() -> utoipa::openapi::OpenApi {
    TopicsApi::openapi()
}

/// When a topic's messages reach the disk, and so when a produce is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// fsynced before the answer (group-committed across producers). The default.
    Always,
    /// Answered at once; fsynced at most every second.
    Interval,
    /// Answered once written to the OS.
    Never,
}

impl From<Fsync> for TopicFsync {
    fn from(f: Fsync) -> Self {
        match f {
            Fsync::Always => Self::Always,
            Fsync::Interval => Self::Interval,
            Fsync::Never => Self::Never,
        }
    }
}

impl From<TopicFsync> for Fsync {
    fn from(f: TopicFsync) -> Self {
        match f {
            TopicFsync::Always => Self::Always,
            TopicFsync::Interval => Self::Interval,
            TopicFsync::Never => Self::Never,
        }
    }
}

/// Body of `POST /v1/topics`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    /// 1 to 200 characters of `A-Z a-z 0-9 . _ -`, not `.` or `..`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,200}$")]
    pub name: String,
    /// Number of partitions, 1 to 1024; fixed for the topic's life.
    #[schema(minimum = 1, maximum = 1024)]
    #[serde(deserialize_with = "crate::whole::u32")]
    pub partitions: u32,
    /// Delete a partition's old segments whose newest message is older than this.
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    #[schema(maximum = 9223372036854775807_i64)]
    pub retention_ms: Option<u64>,
    /// Delete a partition's oldest segments while it holds more than this.
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    #[schema(maximum = 9223372036854775807_i64)]
    pub retention_bytes: Option<u64>,
    /// Durability of produce; `always` by default.
    pub fsync: Option<Fsync>,
    /// Stored for queue mode (not served yet).
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "crate::whole::opt_u32")]
    pub max_deliveries: Option<u32>,
    /// How long message ids are remembered for deduplicated produce (default 120000;
    /// 0 turns deduplication off).
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    #[schema(maximum = 9223372036854775807_i64)]
    pub dedup_window_ms: Option<u64>,
}

/// A topic's settings, and on `GET /v1/topics/{topic}` its partitions' offsets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicInfo {
    /// Its name.
    pub name: String,
    /// Number of partitions.
    pub partitions: u32,
    /// Retention by age, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
    /// Retention by size, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_bytes: Option<u64>,
    /// Durability of produce.
    pub fsync: Fsync,
    /// Deliveries before dead-lettering (queue mode, not served yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    /// The deduplication window.
    pub dedup_window_ms: u64,
    /// Each partition's offsets (on `GET /v1/topics/{topic}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_offsets: Option<Vec<PartitionOffsets>>,
}

/// A partition's offsets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartitionOffsets {
    /// The partition.
    pub partition: u32,
    /// First readable offset (retention moves it).
    pub start_offset: u64,
    /// Offsets below it are readable: the next offset a produce will get.
    pub high_watermark: u64,
}

/// A page of topics.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicList {
    /// Topics in name order.
    pub items: Vec<TopicInfo>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A message to produce. `{"messages": [...]}` produces a batch instead.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageIn {
    /// Messages with equal keys go to one partition, in order; without a key,
    /// partitions take turns.
    pub key: Option<String>,
    /// The payload.
    pub value: String,
    /// Free-form string headers.
    pub headers: Option<BTreeMap<String, String>>,
    /// A producer-chosen id: a retry with the same id within the topic's dedup window
    /// returns the original partition and offset and appends nothing.
    pub id: Option<String>,
}

impl From<MessageIn> for Message {
    fn from(m: MessageIn) -> Self {
        Message {
            key: m.key,
            value: m.value,
            headers: m.headers.unwrap_or_default(),
            id: m.id,
        }
    }
}

/// A batch to produce.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceBatch {
    /// 1 to 1000 messages.
    pub messages: Vec<MessageIn>,
}

/// Where a produced message is.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ProduceResult {
    /// Its partition.
    pub partition: u32,
    /// Its offset in the partition.
    pub offset: u64,
    /// True when its id was already seen within the dedup window: nothing was appended
    /// and `partition`/`offset` are the original's.
    pub duplicate: bool,
}

/// Where each message of a batch is, in the batch's order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProduceResults {
    /// One result per message.
    pub results: Vec<ProduceResult>,
}

/// A message read from a partition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageOut {
    /// Its offset.
    pub offset: u64,
    /// When it was produced, in ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Its key, if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The payload.
    pub value: String,
    /// Its headers (absent when none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Its producer-chosen id, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Query of the fetch route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FetchQuery {
    /// First offset to read; the partition's start by default.
    pub offset: Option<u64>,
    /// Most messages to return, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Messages of one partition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FetchResponse {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// Messages in offset order; empty at the end of the partition.
    pub messages: Vec<MessageOut>,
    /// The offset to fetch next (and to commit once these are processed).
    pub next_offset: u64,
    /// First readable offset.
    pub start_offset: u64,
    /// Offsets below it are readable.
    pub high_watermark: u64,
}

/// Body of a commit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitOffset {
    /// The partition.
    #[serde(deserialize_with = "crate::whole::u32")]
    pub partition: u32,
    /// The next offset the group will read (Kafka's convention): everything below it
    /// is processed. At most the partition's high watermark.
    #[serde(deserialize_with = "crate::whole::u64")]
    #[schema(maximum = 9223372036854775807_i64)]
    pub offset: u64,
}

/// A commit, as stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommittedOffset {
    /// The topic.
    pub topic: String,
    /// The group.
    pub group: String,
    /// The partition.
    pub partition: u32,
    /// The committed offset.
    pub offset: u64,
}

/// A group's committed offsets on a topic.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupOffsets {
    /// The topic.
    pub topic: String,
    /// The group.
    pub group: String,
    /// Per partition the group committed on.
    pub offsets: Vec<GroupPartitionOffset>,
}

/// A group's position in one partition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupPartitionOffset {
    /// The partition.
    pub partition: u32,
    /// The committed offset.
    pub offset: u64,
    /// The partition's high watermark now.
    pub high_watermark: u64,
    /// Messages not yet consumed: `high_watermark - offset`.
    pub lag: u64,
}

/// The one place engine errors become problems.
fn topic_error(e: TopicError) -> ApiError {
    match e {
        TopicError::NoSuchTopic(_)
        | TopicError::NoSuchPartition { .. }
        | TopicError::NoSuchGroup { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, ProblemType::NotFound, e.to_string())
        }
        // The topic exists; what it was created with refuses the operation (a 404 would
        // say the topic just created is gone).
        TopicError::NoDeadLetterTopic(_)
        | TopicError::TopicExists(_)
        | TopicError::TooManyGroups { .. }
        | TopicError::DeadLetterTopicInUse { .. } => {
            ApiError::new(StatusCode::CONFLICT, ProblemType::Conflict, e.to_string())
        }
        TopicError::InvalidName(_) => ApiError::invalid_value("name", e.to_string()),
        TopicError::InvalidSpec { field, reason } => ApiError::invalid_value(field, reason),
        TopicError::MessageTooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ProblemType::PayloadTooLarge,
            e.to_string(),
        ),
        TopicError::InvalidMessage(reason) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemType::InvalidValue,
            format!("invalid message: {reason}"),
        ),
        // No message has that offset (yet, or any more): a 404 naming the range, so a
        // consumer can reset to `start` or wait at `end`.
        TopicError::OffsetOutOfRange { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, ProblemType::NotFound, e.to_string())
        }
        TopicError::Log(_) | TopicError::Io { .. } | TopicError::Damaged { .. } => {
            tracing::error!(error = %e, "topic storage failed");
            ApiError::internal("the topic's storage failed; quote request_id when reporting it")
        }
    }
}

/// Runs blocking engine work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TopicError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal("the operation was interrupted"))?
        .map_err(topic_error)
}

fn topic_info(spec: &TopicSpec) -> TopicInfo {
    TopicInfo {
        name: spec.name.clone(),
        partitions: spec.partitions,
        retention_ms: spec.retention_ms,
        retention_bytes: spec.retention_bytes,
        fsync: spec.fsync.into(),
        max_deliveries: spec.max_deliveries,
        dedup_window_ms: spec.dedup_window_ms,
        partition_offsets: None,
    }
}

/// Create a topic.
#[utoipa::path(
    post,
    path = "/v1/topics",
    tag = "topics",
    request_body = CreateTopic,
    responses(
        (status = 201, description = "Created; `Location` names it", body = TopicInfo),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A topic by that name exists", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_topic(
    State(state): State<TopicsState>,
    ApiJson(body): ApiJson<CreateTopic>,
) -> Result<Response, ApiError> {
    let spec = TopicSpec {
        name: body.name,
        partitions: body.partitions,
        retention_ms: body.retention_ms,
        retention_bytes: body.retention_bytes,
        fsync: body.fsync.map_or(TopicFsync::Always, Into::into),
        max_deliveries: body.max_deliveries,
        dedup_window_ms: body.dedup_window_ms.unwrap_or(DEFAULT_DEDUP_WINDOW_MS),
    };
    let topics = Arc::clone(&state.topics);
    let topic = blocking(move || topics.create(spec)).await?;
    let location = HeaderValue::from_str(&format!("/v1/topics/{}", topic.name()))
        .map_err(|_| ApiError::internal("topic name is not a header value"))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(topic_info(topic.spec())),
    )
        .into_response())
}

/// List topics, in name order.
#[utoipa::path(
    get,
    path = "/v1/topics",
    tag = "topics",
    params(TopicPage),
    responses(
        (status = 200, description = "A page of topics", body = TopicList),
        (status = 400, description = "`cursor` is not one this endpoint returned", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` is out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_topics(
    State(state): State<TopicsState>,
    ApiQuery(params): ApiQuery<TopicPage>,
) -> Result<Json<TopicList>, ApiError> {
    let limits = PageLimits::default();
    let limit = params.limit.unwrap_or(limits.default);
    if limit == 0 || limit > limits.max {
        return Err(ApiError::invalid_value(
            "limit",
            format!("must be between 1 and {} (got {limit})", limits.max),
        ));
    }
    // Any string of the names' alphabet is a place to continue after (names sort
    // lexicographically), including `.` and `..`, which no topic is called.
    if let Some(cursor) = &params.cursor {
        let alphabet = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if cursor.is_empty() || cursor.len() > MAX_NAME_LEN || !cursor.bytes().all(alphabet) {
            return Err(ApiError::invalid_parameter(
                "cursor",
                "is not a cursor this endpoint returned",
            ));
        }
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut topics = state.topics.list(params.cursor.as_deref(), limit + 1);
    let more = topics.len() > limit;
    topics.truncate(limit);
    let next_cursor = more
        .then(|| topics.last().map(|t| t.name().to_owned()))
        .flatten();
    Ok(Json(TopicList {
        items: topics.iter().map(|t| topic_info(t.spec())).collect(),
        next_cursor,
    }))
}

/// Query of `GET /v1/topics`. Topic names are unique and ordered, so the cursor is simply
/// the last name of the previous page: any name is a valid place to continue after.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopicPage {
    /// Topics per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page; absent for the first page.
    #[param(pattern = "^[A-Za-z0-9._-]{1,200}$")]
    pub cursor: Option<String>,
}

fn not_found(topic: &str) -> ApiError {
    topic_error(TopicError::NoSuchTopic(topic.to_owned()))
}

/// A topic's settings and partitions.
#[utoipa::path(
    get,
    path = "/v1/topics/{topic}",
    tag = "topics",
    params(("topic" = String, Path, description = "The topic's name")),
    responses(
        (status = 200, description = "The topic", body = TopicInfo),
        (status = 404, description = "No such topic", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_topic(
    State(state): State<TopicsState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<TopicInfo>, ApiError> {
    let topic = state.topics.get(&name).ok_or_else(|| not_found(&name))?;
    let mut info = topic_info(topic.spec());
    info.partition_offsets = Some(
        topic
            .partitions()
            .into_iter()
            .map(|p| PartitionOffsets {
                partition: p.partition,
                start_offset: p.start_offset,
                high_watermark: p.high_watermark,
            })
            .collect(),
    );
    Ok(Json(info))
}

/// Delete a topic with its messages and committed offsets (and its dead-letter topic).
#[utoipa::path(
    delete,
    path = "/v1/topics/{topic}",
    tag = "topics",
    params(("topic" = String, Path, description = "The topic's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such topic", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is the dead-letter topic of a topic that exists: delete that one", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_topic(
    State(state): State<TopicsState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let topics = Arc::clone(&state.topics);
    blocking(move || topics.delete(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Produce one message, or a batch as `{"messages": [...]}`.
///
/// Answered once the messages are durable under the topic's `fsync` policy. One message
/// gets `{partition, offset, duplicate}`; a batch gets `{"results": [...]}` in its order.
#[utoipa::path(
    post,
    path = "/v1/topics/{topic}/messages",
    tag = "topics",
    params(("topic" = String, Path, description = "The topic's name")),
    request_body(content = MessageIn, description = "One message, or `{\"messages\": [...]}` (ProduceBatch) for up to 1000"),
    responses(
        (status = 200, description = "One message's placement, or `{\"results\": [...]}` (ProduceResults) for a batch", body = ProduceResult),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A message is over 1 MiB, or the body over `http.body_limit`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed message, empty batch or more than 1000 messages", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The topic's storage failed; the messages may or may not be stored", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn produce(
    State(state): State<TopicsState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let topic = state.topics.get(&name).ok_or_else(|| not_found(&name))?;
    let batch = matches!(&body, Value::Object(o) if o.contains_key("messages"));
    let messages: Vec<Message> = if batch {
        let count = body["messages"].as_array().map_or(0, Vec::len);
        if count > MAX_BATCH {
            return Err(ApiError::invalid_value(
                "messages",
                format!("at most {MAX_BATCH} messages per request (got {count})"),
            ));
        }
        let parsed: ProduceBatch = serde_json::from_value(body).map_err(invalid_body)?;
        if parsed.messages.is_empty() {
            return Err(ApiError::invalid_value("messages", "must not be empty"));
        }
        parsed.messages.into_iter().map(Message::from).collect()
    } else {
        let parsed: MessageIn = serde_json::from_value(body).map_err(invalid_body)?;
        vec![parsed.into()]
    };
    for m in &messages {
        topic.check_message(m).map_err(topic_error)?;
    }
    let results = topic.produce(&messages).await.map_err(topic_error)?;
    let appended = results.iter().filter(|r| !r.duplicate).count();
    state.produced.inc_by(appended as u64);
    let mut results = results.into_iter().map(|r| ProduceResult {
        partition: r.partition,
        offset: r.offset,
        duplicate: r.duplicate,
    });
    Ok(if batch {
        Json(ProduceResults {
            results: results.collect(),
        })
        .into_response()
    } else {
        match results.next() {
            Some(one) => Json(one).into_response(),
            None => return Err(ApiError::internal("produce returned no result")),
        }
    })
}

fn invalid_body(e: serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ProblemType::InvalidBody,
        format!("invalid message: {e}"),
    )
}

/// Read a partition from an offset (Kafka's fetch).
///
/// Returns messages below the high watermark only: those whose produce could have been
/// acknowledged. An offset at the high watermark returns an empty page (poll again).
#[utoipa::path(
    get,
    path = "/v1/topics/{topic}/partitions/{partition}/messages",
    tag = "topics",
    params(
        ("topic" = String, Path, description = "The topic's name"),
        ("partition" = u32, Path, description = "The partition"),
        FetchQuery,
    ),
    responses(
        (status = 200, description = "Messages from `offset` on", body = FetchResponse),
        (status = 400, description = "A parameter is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic or partition, or no message at `offset` (the problem names the partition's range)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn fetch(
    State(state): State<TopicsState>,
    ApiPath((name, partition)): ApiPath<(String, u32)>,
    ApiQuery(query): ApiQuery<FetchQuery>,
) -> Result<Json<FetchResponse>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_FETCH).contains(&limit) {
        return Err(ApiError::invalid_value(
            "limit",
            format!("must be between 1 and {MAX_FETCH} (got {limit})"),
        ));
    }
    let topic = state.topics.get(&name).ok_or_else(|| not_found(&name))?;
    let fetched = blocking({
        let topic = Arc::clone(&topic);
        move || {
            let offset = match query.offset {
                Some(o) => o,
                None => topic
                    .partitions()
                    .get(partition as usize)
                    .map_or(0, |p| p.start_offset),
            };
            topic.fetch(partition, offset, limit as usize, FETCH_MAX_BYTES)
        }
    })
    .await?;
    Ok(Json(FetchResponse {
        topic: name,
        partition,
        messages: fetched
            .messages
            .into_iter()
            .map(|m| MessageOut {
                offset: m.offset,
                timestamp_ms: m.timestamp_ms,
                key: m.message.key,
                value: m.message.value,
                headers: m.message.headers,
                id: m.message.id,
            })
            .collect(),
        next_offset: fetched.next_offset,
        start_offset: fetched.start_offset,
        high_watermark: fetched.high_watermark,
    }))
}

/// Commit a consumer group's offset in one partition, durably.
#[utoipa::path(
    post,
    path = "/v1/topics/{topic}/groups/{group}/offsets",
    tag = "topics",
    params(
        ("topic" = String, Path, description = "The topic's name"),
        ("group" = String, Path, description = "The group: 1 to 200 of `A-Z a-z 0-9 . _ -`", pattern = "^[A-Za-z0-9._-]{1,200}$"),
    ),
    request_body = CommitOffset,
    responses(
        (status = 200, description = "Committed and fsynced", body = CommittedOffset),
        (status = 404, description = "No such topic or partition, or no message at `offset` (the problem names the partition's range)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The topic has too many groups", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn commit_offset(
    State(state): State<TopicsState>,
    ApiPath((name, group)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CommitOffset>,
) -> Result<Json<CommittedOffset>, ApiError> {
    let topic = state.topics.get(&name).ok_or_else(|| not_found(&name))?;
    let g = group.clone();
    blocking(move || topic.commit_offset(&g, body.partition, body.offset)).await?;
    Ok(Json(CommittedOffset {
        topic: name,
        group,
        partition: body.partition,
        offset: body.offset,
    }))
}

/// A consumer group's committed offsets and lag.
#[utoipa::path(
    get,
    path = "/v1/topics/{topic}/groups/{group}/offsets",
    tag = "topics",
    params(
        ("topic" = String, Path, description = "The topic's name"),
        ("group" = String, Path, description = "The group: 1 to 200 of `A-Z a-z 0-9 . _ -`", pattern = "^[A-Za-z0-9._-]{1,200}$"),
    ),
    responses(
        (status = 200, description = "The group's offsets", body = GroupOffsets),
        (status = 404, description = "No such topic, or the group committed nothing on it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn group_offsets(
    State(state): State<TopicsState>,
    ApiPath((name, group)): ApiPath<(String, String)>,
) -> Result<Json<GroupOffsets>, ApiError> {
    let topic = state.topics.get(&name).ok_or_else(|| not_found(&name))?;
    let committed = topic.committed_offsets(&group).map_err(topic_error)?;
    let partitions = topic.partitions();
    let offsets = committed
        .into_iter()
        .map(|(partition, offset)| {
            let hw = partitions
                .get(partition as usize)
                .map_or(offset, |p| p.high_watermark);
            GroupPartitionOffset {
                partition,
                offset,
                high_watermark: hw,
                lag: hw.saturating_sub(offset),
            }
        })
        .collect();
    Ok(Json(GroupOffsets {
        topic: name,
        group,
        offsets,
    }))
}

/// Longest long-poll of a receive.
pub const MAX_WAIT_MS: u64 = 20_000;
/// Most receipts in one ack.
pub const MAX_ACK: usize = 100;

/// Body of a receive.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    /// Most messages to return, 1 to 100 (default 10).
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "crate::whole::opt_u32")]
    pub max_messages: Option<u32>,
    /// How long the messages stay hidden from other receives, 1 to 43200000 ms
    /// (default 30000); unacked, they are delivered again after it.
    #[schema(minimum = 1, maximum = 43200000)]
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    pub visibility_timeout_ms: Option<u64>,
    /// With nothing to receive, wait up to this long (0 to 20000 ms, default 0) for a
    /// produce, then answer with what there is (maybe nothing).
    #[schema(minimum = 0, maximum = 20000)]
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    pub wait_ms: Option<u64>,
}

/// A delivered message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceivedMessage {
    /// Names this delivery in ack, nack and extend; opaque.
    pub receipt: String,
    /// Its partition.
    pub partition: u32,
    /// Its offset in the partition.
    pub offset: u64,
    /// When it was produced, in ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Its key, if it had one: messages of one key are never in flight to two consumers
    /// and arrive in offset order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The payload.
    pub value: String,
    /// Its headers (absent when none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Its producer-chosen id, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Deliveries since the server started, this one included (not kept across restarts).
    pub delivery_count: u32,
}

/// Messages received.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiveResponse {
    /// Lowest offset first within a partition, partitions taking turns; maybe empty.
    pub messages: Vec<ReceivedMessage>,
}

/// Body of an ack.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// 1 to 100 receipts.
    #[schema(min_items = 1, max_items = 100)]
    pub receipts: Vec<String>,
}

/// What happened to one receipt of an ack.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AckResult {
    /// The receipt.
    pub receipt: String,
    /// True when the message is acked (durably): it is never delivered to the group again.
    pub acked: bool,
    /// When not acked: the problem type (`urn:girder:problem:receipt-expired`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When not acked: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Per receipt, in the request's order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AckResponse {
    /// One result per receipt.
    pub results: Vec<AckResult>,
}

/// Body of a nack.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NackRequest {
    /// The delivery to give back.
    pub receipt: String,
    /// Visible again after this long (0 to 43200000 ms, default 0: at once). Later
    /// messages of its key keep waiting for it.
    #[schema(minimum = 0, maximum = 43200000)]
    #[serde(default, deserialize_with = "crate::whole::opt_u64")]
    pub delay_ms: Option<u64>,
    /// Why the consumer gave it back. If the message is dead-lettered before its next
    /// delivery, this (cut to 1024 bytes) is its `x-dlq-last-error` header.
    #[serde(default)]
    pub error: Option<String>,
}

/// Body of an extend.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// The delivery to keep.
    pub receipt: String,
    /// Hidden for this long from now, 1 to 43200000 ms.
    #[schema(minimum = 1, maximum = 43200000)]
    #[serde(deserialize_with = "crate::whole::u64")]
    pub visibility_timeout_ms: u64,
}

/// The one place queue errors become problems (topic errors go on to [`topic_error`]).
fn queue_error(e: QueueError) -> ApiError {
    match e {
        QueueError::BadReceipt(_) => ApiError::invalid_value("receipt", e.to_string()),
        QueueError::ReceiptExpired => {
            ApiError::new(StatusCode::GONE, ProblemType::ReceiptExpired, e.to_string())
        }
        QueueError::NoSuchGroup { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, ProblemType::NotFound, e.to_string())
        }
        QueueError::Topic(e) => topic_error(e),
    }
}

/// Runs blocking queue work off the async workers.
async fn blocking_queue<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, QueueError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal("the operation was interrupted"))?
        .map_err(queue_error)
}

const GROUP_PARAM: &str = "The group: 1 to 200 of `A-Z a-z 0-9 . _ -`";

/// Receive messages for a group (queue mode), long-polling up to `wait_ms`.
///
/// The group is created on first receive. Each message stays hidden from other receives
/// for the visibility timeout; ack it before then, or it is delivered again with
/// `delivery_count` one higher.
#[utoipa::path(
    post,
    path = "/v1/topics/{topic}/groups/{group}/receive",
    tag = "topics",
    params(
        ("topic" = String, Path, description = "The topic's name"),
        ("group" = String, Path, description = GROUP_PARAM, pattern = "^[A-Za-z0-9._-]{1,200}$"),
    ),
    request_body = ReceiveRequest,
    responses(
        (status = 200, description = "Messages, maybe none", body = ReceiveResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The topic has too many groups", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field or the group name is out of range", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The topic's storage failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn receive(
    State(state): State<TopicsState>,
    ApiPath((name, group)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ReceiveRequest>,
) -> Result<Json<ReceiveResponse>, ApiError> {
    let max = body.max_messages.unwrap_or(10);
    if !(1..=MAX_RECEIVE as u32).contains(&max) {
        return Err(ApiError::invalid_value(
            "max_messages",
            format!("must be between 1 and {MAX_RECEIVE} (got {max})"),
        ));
    }
    let visibility = body.visibility_timeout_ms.unwrap_or(30_000);
    if !(1..=MAX_VISIBILITY_MS).contains(&visibility) {
        return Err(ApiError::invalid_value(
            "visibility_timeout_ms",
            format!("must be between 1 and {MAX_VISIBILITY_MS} (got {visibility})"),
        ));
    }
    let wait = body.wait_ms.unwrap_or(0);
    if wait > MAX_WAIT_MS {
        return Err(ApiError::invalid_value(
            "wait_ms",
            format!("must be between 0 and {MAX_WAIT_MS} (got {wait})"),
        ));
    }
    let opts = ReceiveOptions {
        max_messages: max as usize,
        visibility_timeout_ms: visibility,
    };
    let topic = state.topics.get(&name).ok_or_else(|| not_found(&name))?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait);
    let delivered = loop {
        // Registered before looking, so a produce between the look and the wait wakes it.
        let mut wake = std::pin::pin!(topic.queue_wake().notified());
        wake.as_mut().enable();
        let t = Arc::clone(&topic);
        let g = group.clone();
        let got = blocking_queue(move || t.receive(&g, opts)).await?;
        if !got.is_empty() || tokio::time::Instant::now() >= deadline {
            break got;
        }
        let _ = tokio::time::timeout_at(deadline, wake).await;
    };
    state.received.inc_by(delivered.len() as u64);
    state
        .redelivered
        .inc_by(delivered.iter().filter(|d| d.delivery_count > 1).count() as u64);
    Ok(Json(ReceiveResponse {
        messages: delivered
            .into_iter()
            .map(|d| ReceivedMessage {
                receipt: d.receipt,
                partition: d.partition,
                offset: d.stored.offset,
                timestamp_ms: d.stored.timestamp_ms,
                key: d.stored.message.key,
                value: d.stored.message.value,
                headers: d.stored.message.headers,
                id: d.stored.message.id,
                delivery_count: d.delivery_count,
            })
            .collect(),
    }))
}

/// Ack deliveries: each acked message is never delivered to the group again.
///
/// Answered once the acks are durable under the topic's `fsync` policy. A receipt that
/// is no longer current (acked, nacked, redelivered, or from before a restart) is
/// reported in its result as `receipt-expired`; the others are acked.
#[utoipa::path(
    post,
    path = "/v1/topics/{topic}/groups/{group}/ack",
    tag = "topics",
    params(
        ("topic" = String, Path, description = "The topic's name"),
        ("group" = String, Path, description = GROUP_PARAM, pattern = "^[A-Za-z0-9._-]{1,200}$"),
    ),
    request_body = AckRequest,
    responses(
        (status = 200, description = "Per receipt, whether it was acked", body = AckResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic or group", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No receipts, more than 100, or one that is not a receipt (then nothing is acked)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The group's storage failed; the acks may not survive a restart", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ack(
    State(state): State<TopicsState>,
    ApiPath((name, group)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<AckRequest>,
) -> Result<Json<AckResponse>, ApiError> {
    let count = body.receipts.len();
    if count == 0 || count > MAX_ACK {
        return Err(ApiError::invalid_value(
            "receipts",
            format!("must hold 1 to {MAX_ACK} receipts (got {count})"),
        ));
    }
    let topic = state.topics.get(&name).ok_or_else(|| not_found(&name))?;
    let receipts = body.receipts;
    let acked = blocking_queue({
        let receipts = receipts.clone();
        move || topic.ack(&group, &receipts)
    })
    .await?;
    let results = acked.durable().await.map_err(queue_error)?;
    state
        .acked
        .inc_by(results.iter().filter(|r| r.is_ok()).count() as u64);
    Ok(Json(AckResponse {
        results: receipts
            .into_iter()
            .zip(results)
            .map(|(receipt, r)| match r {
                Ok(()) => AckResult {
                    receipt,
                    acked: true,
                    error: None,
                    detail: None,
                },
                Err(e) => AckResult {
                    receipt,
                    acked: false,
                    error: Some(match e {
                        QueueError::ReceiptExpired => ProblemType::ReceiptExpired.uri(),
                        _ => ProblemType::ClientError.uri(),
                    }),
                    detail: Some(e.to_string()),
                },
            })
            .collect(),
    }))
}

/// Give a delivery back: it is visible again after `delay_ms`.
#[utoipa::path(
    post,
    path = "/v1/topics/{topic}/groups/{group}/nack",
    tag = "topics",
    params(
        ("topic" = String, Path, description = "The topic's name"),
        ("group" = String, Path, description = GROUP_PARAM, pattern = "^[A-Za-z0-9._-]{1,200}$"),
    ),
    request_body = NackRequest,
    responses(
        (status = 204, description = "Nacked"),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic or group", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The receipt is no longer current (acked, nacked, redelivered, or from before a restart)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a receipt, or a field out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn nack(
    State(state): State<TopicsState>,
    ApiPath((name, group)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<NackRequest>,
) -> Result<StatusCode, ApiError> {
    let delay = body.delay_ms.unwrap_or(0);
    if delay > MAX_VISIBILITY_MS {
        return Err(ApiError::invalid_value(
            "delay_ms",
            format!("must be between 0 and {MAX_VISIBILITY_MS} (got {delay})"),
        ));
    }
    let topic = state.topics.get(&name).ok_or_else(|| not_found(&name))?;
    blocking_queue(move || {
        topic.nack_with_error(&group, &body.receipt, delay, body.error.as_deref())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Keep a delivery hidden for `visibility_timeout_ms` from now.
#[utoipa::path(
    post,
    path = "/v1/topics/{topic}/groups/{group}/extend",
    tag = "topics",
    params(
        ("topic" = String, Path, description = "The topic's name"),
        ("group" = String, Path, description = GROUP_PARAM, pattern = "^[A-Za-z0-9._-]{1,200}$"),
    ),
    request_body = ExtendRequest,
    responses(
        (status = 204, description = "Extended; the receipt stays current"),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic or group", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The receipt is no longer current (acked, nacked, redelivered, or from before a restart)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a receipt, or a field out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn extend(
    State(state): State<TopicsState>,
    ApiPath((name, group)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ExtendRequest>,
) -> Result<StatusCode, ApiError> {
    let topic = state.topics.get(&name).ok_or_else(|| not_found(&name))?;
    blocking_queue(move || topic.extend(&group, &body.receipt, body.visibility_timeout_ms)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a redrive.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    /// Most dead letters to move back, 1 to 10000 (default 1000).
    #[schema(minimum = 1, maximum = 10000)]
    #[serde(default, deserialize_with = "crate::whole::opt_u32")]
    pub max_messages: Option<u32>,
}

/// What a redrive moved.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RedriveResponse {
    /// Dead letters re-produced to the topic.
    pub redriven: u64,
}

/// Move dead letters back to their topic.
///
/// Oldest first, each dead letter of `<topic>.dlq` not redriven before is re-produced
/// to the topic (same key, so the same partition, at a new offset; the `x-dlq-*`
/// headers removed) and marked redriven. Answered once the re-produced messages are
/// durable under the topic's `fsync` policy. At-least-once: a crash mid-redrive may
/// redrive some messages twice.
#[utoipa::path(
    post,
    path = "/v1/topics/{topic}/dlq/redrive",
    tag = "topics",
    params(("topic" = String, Path, description = "The topic's name")),
    request_body = RedriveRequest,
    responses(
        (status = 200, description = "How many dead letters were moved back (maybe 0)", body = RedriveResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The topic has no dead-letter topic (it was created without `max_deliveries`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`max_messages` out of range", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Storage failed; the messages moved so far may be redriven again", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn redrive(
    State(state): State<TopicsState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<RedriveRequest>,
) -> Result<Json<RedriveResponse>, ApiError> {
    let max = body.max_messages.unwrap_or(1000);
    if !(1..=MAX_REDRIVE as u32).contains(&max) {
        return Err(ApiError::invalid_value(
            "max_messages",
            format!("must be between 1 and {MAX_REDRIVE} (got {max})"),
        ));
    }
    let topic = state.topics.get(&name).ok_or_else(|| not_found(&name))?;
    let redriven = blocking(move || topic.redrive(max as usize)).await?;
    Ok(Json(RedriveResponse {
        redriven: redriven as u64,
    }))
}

/// Body of a transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactRequest {
    /// 1 to 100 receipts of this group's deliveries to ack, each naming another
    /// message.
    #[schema(value_type = std::collections::BTreeSet<String>, min_items = 1, max_items = 100)]
    pub ack: Vec<String>,
    /// Messages to produce, per topic (at most 100 entries, each with at least one
    /// message; at most 1000 messages and 16 MiB in all).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub produce: Vec<TransactOutput>,
}

/// Messages for one topic in a transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactOutput {
    /// The topic (any existing topic, the input topic included).
    pub topic: String,
    /// Its messages, in order (one key's messages keep this order).
    #[schema(min_items = 1)]
    pub messages: Vec<MessageIn>,
}

/// Where one produced message of a transaction is.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TransactProduced {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// Its offset in the partition.
    pub offset: u64,
    /// True when its id was already seen within the topic's dedup window: nothing was
    /// appended and `partition`/`offset` are the original's.
    pub duplicate: bool,
}

/// What a transaction did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransactResponse {
    /// Deliveries acked (all of `ack`).
    pub acked: u32,
    /// Every produced message, in request order.
    pub produced: Vec<TransactProduced>,
}

/// Ack deliveries and produce messages atomically (exactly-once consume-transform-produce).
///
/// Either every receipt in `ack` is acked and every message in `produce` is appended
/// once, or nothing happens — whatever crashes, client or server. A receipt that is not
/// current (acked, nacked, redelivered, in another transaction, or from before a restart)
/// fails the whole transaction with 410 and nothing happens; a consumer that gets 410 or
/// loses the answer drops its work: if the transaction committed its inputs are acked,
/// and if not they are delivered again. Answered once outputs and acks are durable under
/// their topics' `fsync` policies. What stays at-least-once: side effects the consumer
/// causes outside Girder.
#[utoipa::path(
    post,
    path = "/v1/topics/{topic}/groups/{group}/transact",
    tag = "topics",
    params(
        ("topic" = String, Path, description = "The topic the acked messages came from"),
        ("group" = String, Path, description = GROUP_PARAM, pattern = "^[A-Za-z0-9._-]{1,200}$"),
    ),
    request_body = TransactRequest,
    responses(
        (status = 200, description = "Committed: acked and produced", body = TransactResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such topic (input or output) or group; nothing happened. (Also when an output topic is deleted while the transaction commits: then the acks are applied and that topic's messages went with it.)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "A receipt is not current; nothing happened", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A message is over 1 MiB, or the body over `http.body_limit`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No receipts or more than 100, a receipt listed twice or not a receipt, more than 1000 messages or 16 MiB, or a malformed message; nothing happened", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Storage failed: whether the transaction committed is known at the next start (its inputs stay hidden until then)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn transact(
    State(state): State<TopicsState>,
    ApiPath((name, group)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<TransactRequest>,
) -> Result<Json<TransactResponse>, ApiError> {
    let topics: Vec<String> = body.produce.iter().map(|o| o.topic.clone()).collect();
    let request = TxnRequest {
        topic: name,
        group,
        acks: body.ack,
        produce: body
            .produce
            .into_iter()
            .map(|o| TxnOutput {
                topic: o.topic,
                messages: o.messages.into_iter().map(Message::from).collect(),
            })
            .collect(),
    };
    let engine = Arc::clone(&state.topics);
    // A task of its own: a client that goes away mid-request must not stop a transaction
    // between its commit point and its apply (its inputs would stay hidden until a
    // restart completed it).
    let run = tokio::spawn(async move {
        let e = Arc::clone(&engine);
        let mut prepared = blocking_queue(move || e.prepare_txn(request)).await?;
        prepared.committed().await.map_err(queue_error)?;
        let applied = blocking_queue(move || engine.apply_txn(prepared)).await?;
        applied.durable().await.map_err(queue_error)
    });
    let result = run
        .await
        .map_err(|_| ApiError::internal("the transaction was interrupted"))??;
    state.acked.inc_by(result.acked as u64);
    let mut produced = Vec::new();
    for (topic, results) in topics.into_iter().zip(result.produced) {
        state
            .produced
            .inc_by(results.iter().filter(|r| !r.duplicate).count() as u64);
        produced.extend(results.into_iter().map(|r| TransactProduced {
            topic: topic.clone(),
            partition: r.partition,
            offset: r.offset,
            duplicate: r.duplicate,
        }));
    }
    Ok(Json(TransactResponse {
        acked: result.acked as u32,
        produced,
    }))
}
