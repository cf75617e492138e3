//! Configuration: one serde struct with defaults, filled from three layers.
//!
//! 1. `girder.toml` (or `--config FILE`), documented key by key in `girder.example.toml`;
//! 2. environment variables `GIRDER_<KEY>`, where `__` separates sections:
//!    `GIRDER_NODE_ID=3`, `GIRDER_HTTP__ADDR=0.0.0.0:7380`, `GIRDER_SHUTDOWN__GRACE_PERIOD=30s`;
//! 3. command-line flags (`--http-addr`, `--node-id`, ...).
//!
//! Later layers win. Every error names the dotted key (`http.addr`, `node_id`) and, for
//! range checks, the allowed range. Unknown keys are errors, so a typo never silently
//! falls back to a default.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The whole configuration of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This node's id, 0..=1023: the node bits of every Snowflake ID it issues. Wider than
    /// 10 bits here so that an out-of-range value gets the range error, not a type error.
    pub node_id: u64,
    /// Where the node keeps its data. Nothing is written elsewhere.
    pub data_dir: PathBuf,
    /// The HTTP front end.
    pub http: HttpConfig,
    /// The RESP (Redis protocol) front end.
    pub resp: RespSection,
    /// Persistence of the keyspace (the journal: snapshots and the append-only log).
    pub persistence: PersistenceConfig,
    /// The keyspace's memory limit and eviction.
    pub memory: MemoryConfig,
    /// The job scheduler.
    pub scheduler: SchedulerConfig,
    /// Logging.
    pub log: LogConfig,
    /// OpenTelemetry trace export.
    pub otlp: OtlpConfig,
    /// The shutdown sequence.
    pub shutdown: ShutdownConfig,
    /// Snowflake IDs.
    pub ids: IdsConfig,
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address the HTTP front end listens on.
    pub addr: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub body_limit: u64,
    /// Most HTTP connections open at once; beyond it new ones wait to be accepted.
    pub max_connections: u64,
    /// Time a client has to send a request's headers before the connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time a response write may make no progress (the client stopped reading) before
    /// the connection is closed.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Per-client rate limit of the `/v1` API.
    pub rate_limit: RateLimitSection,
}

/// `[http.rate_limit]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    /// Whether the `/v1` API is rate limited.
    pub enabled: bool,
    /// Requests allowed per `period` per client.
    pub limit: u64,
    /// The period of `limit`.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// Requests a client may send at once (GCRA bucket size); 0 means `limit`.
    pub burst: u64,
    /// `gcra`, `fixed_window`, `sliding_log` or `sliding_window`.
    pub algorithm: String,
    /// `ip` (the peer address) or `header:<Name>` (e.g. `header:X-Api-Key`).
    pub key: String,
    /// Most clients tracked at once; idle ones are forgotten.
    pub max_keys: u64,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        Self {
            enabled: false,
            limit: 100,
            period: Duration::from_secs(1),
            burst: 0,
            algorithm: "gcra".into(),
            key: "ip".into(),
            max_keys: 100_000,
        }
    }
}

impl RateLimitSection {
    /// The limiter settings, or `None` when disabled.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the `http.rate_limit` key at fault.
    pub fn options(
        &self,
    ) -> Result<Option<girder_http::rate_limit::RateLimitOptions>, ConfigError> {
        use girder_http::rate_limit::{ClientKey, RateLimitOptions};
        if !self.enabled {
            return Ok(None);
        }
        let algorithm = match self.algorithm.as_str() {
            "gcra" => girder_limit::AlgorithmKind::Gcra,
            "fixed_window" => girder_limit::AlgorithmKind::FixedWindow,
            "sliding_log" => girder_limit::AlgorithmKind::SlidingLog,
            "sliding_window" => girder_limit::AlgorithmKind::SlidingWindow,
            other => {
                return Err(error(format!(
                    "http.rate_limit.algorithm must be one of gcra, fixed_window, sliding_log, sliding_window (got {other:?})"
                )))
            }
        };
        let key = match self.key.as_str() {
            "ip" => ClientKey::PeerIp,
            k => match k.strip_prefix("header:").map(http::HeaderName::try_from) {
                Some(Ok(name)) => ClientKey::Header(name),
                _ => {
                    return Err(error(format!(
                        "http.rate_limit.key must be \"ip\" or \"header:<Name>\" (got {k:?})"
                    )))
                }
            },
        };
        if !(1..=1_000_000_000).contains(&self.limit) {
            return Err(error(format!(
                "http.rate_limit.limit must be between 1 and 1000000000 (got {})",
                self.limit
            )));
        }
        if self.period < Duration::from_millis(1) || self.period > Duration::from_secs(86_400) {
            return Err(error(format!(
                "http.rate_limit.period must be between 1ms and 24h (got {})",
                humantime::format_duration(self.period)
            )));
        }
        if !(1..=10_000_000).contains(&self.max_keys) {
            return Err(error(format!(
                "http.rate_limit.max_keys must be between 1 and 10000000 (got {})",
                self.max_keys
            )));
        }
        let burst = if self.burst == 0 {
            self.limit
        } else {
            self.burst
        };
        let options = RateLimitOptions {
            quota: girder_limit::Quota {
                limit: self.limit,
                period: self.period,
                burst,
            },
            algorithm,
            key,
            max_keys: usize::try_from(self.max_keys).unwrap_or(usize::MAX),
        };
        options
            .validate()
            .map_err(|e| error(format!("http.rate_limit: {e}")))?;
        Ok(Some(options))
    }
}

/// `[resp]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RespSection {
    /// Address the RESP front end listens on.
    pub addr: SocketAddr,
    /// Most clients connected at once (Redis `maxclients`).
    pub maxclients: u64,
    /// Largest bulk string a client may send, in bytes (Redis `proto-max-bulk-len`).
    pub proto_max_bulk_len: u64,
    /// Most arguments in one command.
    pub max_multibulk_len: u64,
    /// Largest unparsed input kept per client (Redis `client-query-buffer-limit`).
    pub client_query_buffer_limit: u64,
    /// Published messages queued per subscriber before it is disconnected as too slow.
    pub pubsub_queue_limit: u64,
    /// Keyspace notification classes, as Redis's `notify-keyspace-events` (`""` is off;
    /// `CONFIG SET` changes it at run time).
    pub notify_keyspace_events: String,
    /// Most keys `RL.CHECK` tracks per distinct quota; idle keys are reclaimed on their
    /// own, and at the cap the keys nearest to a fresh state are forgotten first.
    pub rate_limit_keys: u64,
    /// The default user's password (Redis `requirepass`); empty: none. Kept only as
    /// its SHA-256 once the node runs.
    pub requirepass: String,
    /// Seconds a client may stay idle before it is closed (Redis `timeout`); 0 is never.
    pub timeout: u64,
    /// Refuse to serve RESP on a non-loopback address without `requirepass`.
    pub protected_mode: bool,
    /// Output allowed to wait for a client before it is disconnected, in Redis's
    /// `client-output-buffer-limit` syntax (hard limits of `normal` and `pubsub` apply).
    pub client_output_buffer_limit: String,
    /// Event-loop threads serving RESP connections (1..=256). Each connection stays on
    /// one loop; with one, commands never contend with another thread for a shard (as
    /// Redis's single event loop), which measured fastest on a 2-core machine.
    pub threads: u64,
    /// Microseconds an event loop keeps polling its sockets after a batch of commands
    /// instead of sleeping (0..=10000; 0: sleep at once), once its last two batches came
    /// this close together. Requests that find the loop awake skip a cross-CPU wake-up;
    /// sparse traffic never starts the polling.
    pub busy_poll_us: u64,
    /// `[resp.tls]`: TLS on `resp.addr`.
    pub tls: RespTls,
}

/// `[resp.tls]`: with `cert` and `key` set, `resp.addr` speaks TLS only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RespTls {
    /// PEM certificate chain, the server's certificate first (Redis `tls-cert-file`).
    pub cert: Option<PathBuf>,
    /// PEM private key of that certificate (Redis `tls-key-file`).
    pub key: Option<PathBuf>,
    /// PEM CA certificates; when set, every client must present a certificate they
    /// signed (Redis `tls-ca-cert-file` with `tls-auth-clients yes`).
    pub client_ca: Option<PathBuf>,
}

impl Default for RespSection {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 7379)),
            maxclients: 10_000,
            proto_max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            pubsub_queue_limit: 10_000,
            notify_keyspace_events: String::new(),
            rate_limit_keys: 1_000_000,
            requirepass: String::new(),
            timeout: 0,
            protected_mode: true,
            client_output_buffer_limit: girder_resp::output_limits::DEFAULT.to_owned(),
            threads: 1,
            busy_poll_us: 50,
            tls: RespTls::default(),
        }
    }
}

/// `[memory]`: Redis's `maxmemory` settings, by their Redis names (`CONFIG SET` changes
/// them at run time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Most memory the process's allocator may hold, as Redis writes it (`"0"`: no
    /// limit; `"256mb"`, `"2gb"`, or bytes).
    pub maxmemory: String,
    /// What goes when the limit is reached: `noeviction` (writes that may grow memory
    /// are refused), `allkeys-lru`, `allkeys-lfu`, `allkeys-random`, `volatile-lru`,
    /// `volatile-lfu`, `volatile-random`, `volatile-ttl`.
    pub maxmemory_policy: String,
    /// Keys sampled per database per eviction round (1..=64).
    pub maxmemory_samples: u32,
    /// How slowly the LFU counter grows with use.
    pub lfu_log_factor: u32,
    /// Minutes without use per unit the LFU counter loses (0: never).
    pub lfu_decay_time: u32,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            maxmemory: "0".to_owned(),
            maxmemory_policy: "noeviction".to_owned(),
            maxmemory_samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
        }
    }
}

impl MemoryConfig {
    /// The limit in bytes and the policy, as validated.
    ///
    /// # Errors
    /// A message naming the key and the accepted values.
    pub fn limit(&self) -> Result<(u64, girder_kv::Policy), String> {
        let bytes = girder_resp::memory::parse_bytes(&self.maxmemory)
            .map_err(|e| format!("memory.maxmemory: {e}"))?;
        let policy = girder_kv::Policy::parse(&self.maxmemory_policy).ok_or_else(|| {
            format!(
                "memory.maxmemory_policy must be one of {} (got {:?})",
                girder_kv::Policy::ALL.map(|p| p.name()).join(", "),
                self.maxmemory_policy
            )
        })?;
        Ok((bytes, policy))
    }

    /// Applies the settings to `keyspace` (validated first).
    pub fn apply(&self, keyspace: &girder_kv::Keyspace) {
        if let Ok((bytes, policy)) = self.limit() {
            keyspace.set_maxmemory(bytes);
            keyspace.set_eviction_policy(policy);
        }
        keyspace.set_eviction_samples(self.maxmemory_samples);
        keyspace.set_lfu_log_factor(self.lfu_log_factor);
        keyspace.set_lfu_decay_time(self.lfu_decay_time);
    }
}

/// `[persistence]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersistenceConfig {
    /// What is kept on disk besides streams (always journaled).
    pub mode: PersistenceMode,
    /// Snapshot rules in Redis's `save` syntax: "seconds changes" pairs; a snapshot is
    /// taken when, for one pair, that many seconds passed and at least that many
    /// changes were made since the last. Used by `snapshot` and `both`.
    pub save: String,
    /// When journaled changes reach the disk.
    pub fsync: PersistenceFsync,
    /// The fsync period under `fsync = "interval"`.
    #[serde(with = "humantime_serde")]
    pub fsync_interval: Duration,
    /// Size of one journal segment file, in bytes.
    pub segment_bytes: u64,
    /// Rewrite the journal (a snapshot, then the history before it is dropped) once
    /// this many bytes were written since the last snapshot (and more than its size).
    pub compact_min_bytes: u64,
    /// Journal segment files kept after the rewrite drops them, for later segments to
    /// write over instead of growing new files (cheaper fsyncs under `fsync = always`).
    pub recycle_segments: u64,
}

/// `persistence.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistenceMode {
    /// Only streams are kept; everything else is lost at restart.
    None,
    /// Snapshots on the `save` rules, on SAVE/BGSAVE and at shutdown (Redis's RDB).
    Snapshot,
    /// Every write journaled (Redis's `appendonly yes`), rewritten as it grows.
    Aof,
    /// Both.
    Both,
}

impl PersistenceMode {
    /// Whether every write is journaled.
    pub fn aof(self) -> bool {
        matches!(self, Self::Aof | Self::Both)
    }

    /// Whether the `save` rules apply.
    pub fn snapshots(self) -> bool {
        matches!(self, Self::Snapshot | Self::Both)
    }
}

/// `persistence.fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistenceFsync {
    /// Every change is fsynced before its reply (concurrent clients share fsyncs).
    Always,
    /// Fsync every `fsync_interval`; a crash loses at most about that much.
    Interval,
    /// Leave it to the OS: survives a process crash, not a power cut.
    Never,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        Self {
            mode: PersistenceMode::Snapshot,
            save: "3600 1 300 100 60 10000".to_owned(),
            fsync: PersistenceFsync::Interval,
            fsync_interval: Duration::from_secs(1),
            // Small enough that the first rewrite frees whole segments to recycle
            // (`recycle_segments`): under `fsync = always` the 1 KiB XADD cell ran
            // 1.11-1.16x faster than with 128 MiB segments (bench/streams.md).
            segment_bytes: 32 * 1024 * 1024,
            compact_min_bytes: 64 * 1024 * 1024,
            recycle_segments: 2,
        }
    }
}

/// `[scheduler]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Where jobs are kept: empty for the embedded SQLite database
    /// `<data_dir>/scheduler/jobs.db`, or a `postgres://` URL for a database several
    /// nodes share.
    pub store: String,
    /// The lease a claim gets when it names none.
    #[serde(with = "humantime_serde")]
    pub default_lease: Duration,
    /// Attempts a job gets when it names none.
    pub default_max_attempts: u32,
    /// How long an `idempotency_key` holds when the job gives no `unique_for_ms`.
    #[serde(with = "humantime_serde")]
    pub idempotency_window: Duration,
    /// A schedule tick fired later than this counts as missed (its misfire policy
    /// applies).
    #[serde(with = "humantime_serde")]
    pub misfire_threshold: Duration,
    /// Finished jobs (succeeded, dead, cancelled) are deleted this long after they
    /// finished.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Per-queue limits on running jobs: `{ emails = 10 }`.
    pub concurrency: std::collections::BTreeMap<String, u32>,
    /// Per-queue limits on attempts started per period, on each node:
    /// `emails = { limit = 100, period = "1s" }`.
    pub rate_limits: std::collections::BTreeMap<String, QueueRate>,
}

/// `scheduler.rate_limits.<queue>`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueRate {
    /// Attempts started per `period`.
    pub limit: u64,
    /// The period.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            store: String::new(),
            default_lease: Duration::from_secs(30),
            default_max_attempts: 20,
            idempotency_window: Duration::from_secs(24 * 3600),
            misfire_threshold: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
            concurrency: Default::default(),
            rate_limits: Default::default(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A level (`info`) or per-target directives (`info,girder_http=debug`).
    pub level: String,
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the current span's fields (such as `request_id`).
    Json,
}

/// `[otlp]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// OTLP/HTTP endpoint (`http://collector:4318`). Unset: no exporter runs.
    pub endpoint: Option<String>,
    /// `service.name` of exported spans.
    pub service_name: String,
}

/// `[shutdown]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// How long in-flight work may take after a stop is requested.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
    /// How long to keep serving with `/readyz` failing before refusing connections.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
}

/// `[ids]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdsConfig {
    /// The Snowflake epoch, an RFC 3339 UTC time.
    #[serde(with = "humantime_serde")]
    pub epoch: SystemTime,
    /// How far the clock may move backwards before ID generation fails instead.
    #[serde(with = "humantime_serde")]
    pub max_clock_regression: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_id: 0,
            data_dir: PathBuf::from("./girder-data"),
            http: HttpConfig::default(),
            resp: RespSection::default(),
            persistence: PersistenceConfig::default(),
            memory: MemoryConfig::default(),
            scheduler: SchedulerConfig::default(),
            log: LogConfig::default(),
            otlp: OtlpConfig::default(),
            shutdown: ShutdownConfig::default(),
            ids: IdsConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 7380)),
            body_limit: 1024 * 1024,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            rate_limit: RateLimitSection::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            service_name: "girder".into(),
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(10),
            drain_delay: Duration::ZERO,
        }
    }
}

impl Default for IdsConfig {
    fn default() -> Self {
        Self {
            epoch: SystemTime::UNIX_EPOCH + Duration::from_millis(girder_id::DEFAULT_EPOCH_MS),
            max_clock_regression: Duration::from_millis(girder_id::DEFAULT_MAX_CLOCK_REGRESSION_MS),
        }
    }
}

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the bad value came from (`girder.toml`, `environment`, ...), if known.
    pub source: Option<String>,
    /// The message, starting with the dotted key.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "invalid configuration ({source}): {}", self.message),
            None => write!(f, "invalid configuration: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

fn error(message: impl Into<String>) -> ConfigError {
    ConfigError {
        source: None,
        message: message.into(),
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--http-addr`
    pub http_addr: Option<String>,
    /// `--resp-addr`
    pub resp_addr: Option<String>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--node-id`
    pub node_id: Option<i64>,
    /// `--log-level`
    pub log_level: Option<String>,
    /// `--log-format`
    pub log_format: Option<LogFormat>,
    /// `--otlp-endpoint`
    pub otlp_endpoint: Option<String>,
}

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "girder.toml";

/// The prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "GIRDER_";

/// Largest configuration file read: a config is a few KB; this refuses `/dev/zero`.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

fn read_limited(path: &Path, max: u64) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if text.len() as u64 > max {
        return Err(format!("the file is larger than {max} bytes"));
    }
    Ok(text)
}

/// The `GIRDER_*` environment variables, as UTF-8. Variables of other programs are
/// ignored whatever their encoding; a `GIRDER_*` one that is not UTF-8 is an error.
///
/// # Errors
/// A [`ConfigError`] naming the variable.
pub fn environment() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|n| n.starts_with(ENV_PREFIX)) else {
            continue;
        };
        let value = value
            .into_string()
            .map_err(|_| error(format!("{name} is not valid UTF-8")))?;
        vars.push((name.to_owned(), value));
    }
    Ok(vars)
}

impl Config {
    /// Loads the file (if any), then `env` (the `GIRDER_*` pairs of the environment), then
    /// `overrides`, and validates the result.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key when a value has the wrong type, is out of range, or
    /// the key is unknown; or when `file` cannot be read or parsed.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut tree = toml::Table::new();
        if let Some(path) = file {
            let text = read_limited(path, MAX_FILE_BYTES).map_err(|message| ConfigError {
                source: Some(path.display().to_string()),
                message,
            })?;
            tree = text.parse::<toml::Table>().map_err(|e| ConfigError {
                source: Some(path.display().to_string()),
                message: e.to_string().trim_end().to_owned(),
            })?;
            // Check the file alone first, so its errors name the file.
            deserialize(tree.clone()).map_err(|mut e| {
                e.source = Some(path.display().to_string());
                e
            })?;
        }
        let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
        let mut from_env = Vec::new();
        for (name, value) in env {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if key.is_empty() || key.split("__").any(str::is_empty) {
                return Err(error(format!(
                    "{name} does not name a setting: use GIRDER_<KEY>, with __ between a section and its key"
                )));
            }
            let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
            from_env.push(name.clone());
            let typed = env_value(&value, lookup(&defaults, &path));
            set(&mut tree, &path, typed);
        }
        let o = overrides;
        let flags: [(&[&str], Option<toml::Value>); 7] = [
            (
                &["http", "addr"],
                o.http_addr.clone().map(toml::Value::String),
            ),
            (
                &["resp", "addr"],
                o.resp_addr.clone().map(toml::Value::String),
            ),
            (
                &["data_dir"],
                o.data_dir
                    .as_ref()
                    .map(|p| toml::Value::String(p.display().to_string())),
            ),
            (&["node_id"], o.node_id.map(toml::Value::Integer)),
            (
                &["log", "level"],
                o.log_level.clone().map(toml::Value::String),
            ),
            (
                &["log", "format"],
                o.log_format.map(|f| {
                    toml::Value::String(
                        match f {
                            LogFormat::Text => "text",
                            LogFormat::Json => "json",
                        }
                        .into(),
                    )
                }),
            ),
            (
                &["otlp", "endpoint"],
                o.otlp_endpoint.clone().map(toml::Value::String),
            ),
        ];
        for (path, value) in flags {
            if let Some(value) = value {
                let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
                set(&mut tree, &path, value);
            }
        }
        let config = deserialize(tree).map_err(|mut e| {
            if !from_env.is_empty() {
                e.source = Some(format!(
                    "after applying the environment ({}) and flags",
                    from_env.join(", ")
                ));
            }
            e
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    ///
    /// # Errors
    /// The first invalid value, named by its dotted key with the allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id > u64::from(girder_id::MAX_NODE_ID) {
            return Err(error(format!(
                "node_id must be between 0 and {} (got {})",
                girder_id::MAX_NODE_ID,
                self.node_id
            )));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(error("data_dir must not be empty"));
        }
        const MAX_BODY: u64 = 1 << 30;
        if !(1..=MAX_BODY).contains(&self.http.body_limit) {
            return Err(error(format!(
                "http.body_limit must be between 1 and {MAX_BODY} bytes (got {})",
                self.http.body_limit
            )));
        }
        if !(1..=1_000_000).contains(&self.http.max_connections) {
            return Err(error(format!(
                "http.max_connections must be between 1 and 1000000 (got {})",
                self.http.max_connections
            )));
        }
        let ranges: [(&str, u64, u64, u64); 11] = [
            (
                "persistence.recycle_segments",
                self.persistence.recycle_segments,
                0,
                64,
            ),
            (
                "persistence.segment_bytes",
                self.persistence.segment_bytes,
                1024 * 1024,
                1 << 40,
            ),
            (
                "persistence.compact_min_bytes",
                self.persistence.compact_min_bytes,
                1024 * 1024,
                1 << 50,
            ),
            (
                "resp.pubsub_queue_limit",
                self.resp.pubsub_queue_limit,
                1,
                10_000_000,
            ),
            ("resp.maxclients", self.resp.maxclients, 1, 1_000_000),
            (
                "resp.rate_limit_keys",
                self.resp.rate_limit_keys,
                1,
                100_000_000,
            ),
            (
                "resp.proto_max_bulk_len",
                self.resp.proto_max_bulk_len,
                1024 * 1024,
                1 << 32,
            ),
            (
                "resp.max_multibulk_len",
                self.resp.max_multibulk_len,
                1024,
                i32::MAX as u64,
            ),
            ("resp.threads", self.resp.threads, 1, 256),
            ("resp.busy_poll_us", self.resp.busy_poll_us, 0, 10_000),
            (
                "resp.client_query_buffer_limit",
                self.resp.client_query_buffer_limit,
                1024 * 1024,
                1 << 32,
            ),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(error(format!(
                    "{key} must be between {min} and {max} (got {value})"
                )));
            }
        }
        let tls = &self.resp.tls;
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(error(
                "resp.tls.cert and resp.tls.key must be set together".to_owned(),
            ));
        }
        if tls.client_ca.is_some() && tls.cert.is_none() {
            return Err(error(
                "resp.tls.client_ca needs resp.tls.cert and resp.tls.key".to_owned(),
            ));
        }
        if self.resp.timeout > i32::MAX as u64 {
            return Err(error(format!(
                "resp.timeout must be between 0 and {} seconds (got {})",
                i32::MAX,
                self.resp.timeout
            )));
        }
        if self.resp.protected_mode
            && self.resp.requirepass.is_empty()
            && !self.resp.addr.ip().is_loopback()
        {
            return Err(error(format!(
                "resp.addr {} is not a loopback address and resp.requirepass is empty: set a password, or resp.protected_mode = false to serve without one (protected mode)",
                self.resp.addr
            )));
        }
        if let Err(e) = girder_resp::output_limits::parse(&self.resp.client_output_buffer_limit) {
            return Err(error(format!(
                "resp.client_output_buffer_limit must be \"class hard soft seconds\" groups, as Redis's client-output-buffer-limit ({e}; got {:?})",
                self.resp.client_output_buffer_limit
            )));
        }
        if girder_resp::notify::parse(self.resp.notify_keyspace_events.as_bytes()).is_none() {
            return Err(error(format!(
                "resp.notify_keyspace_events must be made of the characters Ag$lshzxeKEtmdn (got {:?})",
                self.resp.notify_keyspace_events
            )));
        }
        let interval = self.persistence.fsync_interval;
        if interval < Duration::from_millis(1) || interval > Duration::from_secs(3600) {
            return Err(error(format!(
                "persistence.fsync_interval must be between 1ms and 1h (got {})",
                humantime::format_duration(interval)
            )));
        }
        if let Err(e) = girder_resp::persistence::parse_save_rules(&self.persistence.save) {
            return Err(error(format!(
                "persistence.save must be pairs of \"seconds changes\", seconds above 0 ({e}; got {:?})",
                self.persistence.save
            )));
        }
        self.memory.limit().map_err(error)?;
        if !(1..=64).contains(&self.memory.maxmemory_samples) {
            return Err(error(format!(
                "memory.maxmemory_samples must be between 1 and 64 (got {})",
                self.memory.maxmemory_samples
            )));
        }
        let sched = &self.scheduler;
        for (key, value, min, max) in [
            (
                "scheduler.default_lease",
                sched.default_lease,
                Duration::from_millis(1),
                Duration::from_secs(86_400),
            ),
            (
                "scheduler.idempotency_window",
                sched.idempotency_window,
                Duration::from_millis(1),
                Duration::from_secs(366 * 86_400),
            ),
            (
                "scheduler.misfire_threshold",
                sched.misfire_threshold,
                Duration::ZERO,
                Duration::from_secs(3600),
            ),
            (
                "scheduler.retention",
                sched.retention,
                Duration::from_secs(1),
                Duration::from_secs(3660 * 86_400),
            ),
        ] {
            if value < min || value > max {
                return Err(error(format!(
                    "{key} must be between {} and {} (got {})",
                    humantime::format_duration(min),
                    humantime::format_duration(max),
                    humantime::format_duration(value)
                )));
            }
        }
        if !(1..=girder_sched::engine::MAX_ATTEMPTS).contains(&sched.default_max_attempts) {
            return Err(error(format!(
                "scheduler.default_max_attempts must be between 1 and {} (got {})",
                girder_sched::engine::MAX_ATTEMPTS,
                sched.default_max_attempts
            )));
        }
        let postgres =
            sched.store.starts_with("postgres://") || sched.store.starts_with("postgresql://");
        if !sched.store.is_empty() && !postgres {
            return Err(error(format!(
                "scheduler.store must be empty (the embedded SQLite store) or a \
                 postgres:// URL (got {:?})",
                sched.store
            )));
        }
        for (queue, rate) in &sched.rate_limits {
            let period_ok = rate.period >= Duration::from_millis(1)
                && rate.period <= Duration::from_secs(86_400);
            if !(1..=1_000_000_000).contains(&rate.limit) || !period_ok {
                return Err(error(format!(
                    "scheduler.rate_limits.{queue} must have limit 1..=1000000000 and period \
                     1ms..=1day (got {} per {})",
                    rate.limit,
                    humantime::format_duration(rate.period)
                )));
            }
        }
        for (queue, limit) in &sched.concurrency {
            if *limit == 0 {
                return Err(error(format!(
                    "scheduler.concurrency.{queue} must be at least 1 (got 0)"
                )));
            }
        }
        for (key, timeout) in [
            ("http.header_read_timeout", self.http.header_read_timeout),
            ("http.write_timeout", self.http.write_timeout),
        ] {
            if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(3600) {
                return Err(error(format!(
                    "{key} must be between 100ms and 1h (got {})",
                    humantime::format_duration(timeout)
                )));
            }
        }
        self.http.rate_limit.options()?;
        // A bare word must be a level: EnvFilter would read `verbose` as a target name
        // and silently log nothing else.
        const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
        // Validated exactly as telemetry will use it: no trimming, and at least one
        // non-empty directive (`,` alone parses as "no directives" and would log nothing).
        let level = self.log.level.as_str();
        let bare_word = !level.contains(['=', ',', '[', ':']);
        let valid = if bare_word {
            LEVELS.contains(&level.to_ascii_lowercase().as_str())
        } else {
            level.split(',').all(|d| !d.trim().is_empty())
                && !level.contains(char::is_whitespace)
                && tracing_subscriber::EnvFilter::builder()
                    .parse(level)
                    .is_ok()
        };
        if !valid {
            return Err(error(format!(
                "log.level must be one of {} or filter directives like \"info,girder_http=debug\" (got {:?})",
                LEVELS.join(", "),
                self.log.level
            )));
        }
        if let Some(endpoint) = &self.otlp.endpoint {
            let ok = endpoint.parse::<http::Uri>().is_ok_and(|uri| {
                matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.authority().is_some_and(|a| !a.host().is_empty())
            });
            if !ok {
                return Err(error(format!(
                    "otlp.endpoint must be an http:// or https:// URL (got {endpoint:?})"
                )));
            }
        }
        if self.otlp.service_name.trim().is_empty() {
            return Err(error("otlp.service_name must not be empty"));
        }
        let max_grace = Duration::from_secs(3600);
        if self.shutdown.grace_period.is_zero() || self.shutdown.grace_period > max_grace {
            return Err(error(format!(
                "shutdown.grace_period must be between 1ms and 1h (got {})",
                humantime::format_duration(self.shutdown.grace_period)
            )));
        }
        if self.shutdown.drain_delay > max_grace {
            return Err(error(format!(
                "shutdown.drain_delay must be between 0s and 1h (got {})",
                humantime::format_duration(self.shutdown.drain_delay)
            )));
        }
        let epoch_ms = self.epoch_ms();
        if epoch_ms.is_none_or(|ms| ms > unix_ms(SystemTime::now())) {
            return Err(error(format!(
                "ids.epoch must be between 1970-01-01T00:00:00Z and now (got {})",
                humantime::format_rfc3339(self.ids.epoch)
            )));
        }
        let max_regression = Duration::from_secs(3600);
        if self.ids.max_clock_regression > max_regression {
            return Err(error(format!(
                "ids.max_clock_regression must be between 0s and 1h (got {})",
                humantime::format_duration(self.ids.max_clock_regression)
            )));
        }
        Ok(())
    }

    /// The Snowflake generator settings this configuration describes.
    pub fn sched_config(&self) -> girder_sched::SchedConfig {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let s = &self.scheduler;
        girder_sched::SchedConfig {
            default_lease_ms: ms(s.default_lease),
            default_max_attempts: s.default_max_attempts,
            idempotency_window_ms: ms(s.idempotency_window),
            misfire_threshold_ms: ms(s.misfire_threshold),
            retention_ms: ms(s.retention),
            poll_interval_ms: 1_000,
            concurrency: s.concurrency.clone().into_iter().collect(),
            rate_limits: s
                .rate_limits
                .iter()
                .map(|(q, r)| (q.clone(), girder_limit::Quota::new(r.limit, r.period)))
                .collect(),
            node_name: format!("girder-node-{}", self.node_id),
        }
    }

    /// The engine settings of `[ids]`.
    pub fn id_config(&self) -> girder_id::Config {
        girder_id::Config {
            // Validated to be at most 1023.
            node_id: u16::try_from(self.node_id).unwrap_or(girder_id::MAX_NODE_ID),
            epoch_ms: self.epoch_ms().unwrap_or(girder_id::DEFAULT_EPOCH_MS),
            max_clock_regression_ms: u64::try_from(self.ids.max_clock_regression.as_millis())
                .unwrap_or(u64::MAX),
        }
    }

    /// The effective configuration as TOML, as `girder config check` prints it.
    ///
    /// # Panics
    /// Never: every field serializes to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the configuration serializes to TOML")
    }

    fn epoch_ms(&self) -> Option<u64> {
        self.ids
            .epoch
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn deserialize(tree: toml::Table) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(tree)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // toml appends "in `section`" on a second line; the path already says where.
        let inner = inner.lines().next().unwrap_or_default().trim_end();
        if path == "." || path.is_empty() {
            error(inner.to_owned())
        } else {
            error(format!("{path}: {inner}"))
        }
    })
}

/// An environment value as TOML. A key whose default is a string stays a string
/// (`GIRDER_DATA_DIR=2024` is a path); otherwise integers and booleans are recognised.
fn env_value(raw: &str, default: Option<&toml::Value>) -> toml::Value {
    if default.is_some_and(toml::Value::is_str) {
        toml::Value::String(raw.to_owned())
    } else if let Ok(i) = raw.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.to_owned())
    }
}

fn lookup<'a>(tree: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (first, rest) = path.split_first()?;
    let value = tree.get(first)?;
    if rest.is_empty() {
        Some(value)
    } else {
        lookup(value.as_table()?, rest)
    }
}

/// Sets `path` in `tree`, creating tables on the way (a non-table in the way is replaced,
/// and the type error surfaces when the result is deserialized).
fn set(tree: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut table = tree;
    for key in parents {
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        table = entry.as_table_mut().expect("just made a table");
    }
    table.insert(last.clone(), value);
}

#[cfg(test)]
mod tests;
