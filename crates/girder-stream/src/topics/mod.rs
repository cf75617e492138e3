//! Topics: Kafka's model on `girder-log`. A topic is a directory
//! `<data_dir>/topics/<name>/` holding `meta.json` (its [`TopicSpec`]), `offsets.json`
//! (its consumer groups' committed offsets) and one log per partition (`p0/`, `p1/`,
//! ...). A partition *is* a log and a message's offset is its log offset.
//!
//! # Invariants
//! - **Placement is stable.** A message with a key goes to
//!   `jump_consistent_hash(xxh3(key), partitions)` — a fixed function of the key bytes
//!   and the partition count, which never changes for a topic — so every message of one
//!   key lands in one partition, in produce order, across restarts. Messages without a
//!   key go round-robin.
//! - **Produce answers once durable** under the topic's fsync policy: `always` after the
//!   fsync (group-committed across producers), `never` once written to the OS,
//!   `interval` at once (Redis's `appendfsync everysec`).
//! - **Consumers see only what producers may have been told**: a fetch reads up to the
//!   partition's high watermark — the durable offset under `always` and `never`, the
//!   log's end under `interval` — so a committed offset never points past a message a
//!   crash can take back (under `always`).
//! - **Deduplicated produce.** A message id seen within the topic's `dedup_window_ms`
//!   is answered with the original partition and offset and appends nothing. Checking and
//!   appending happen under one lock, so concurrent retries of one id append it once.
//!   The map is bounded ([`TopicsConfig::dedup_max_entries`]) and rebuilt at open from
//!   the records of the last window (each record carries its id; the log frame its
//!   timestamp).
//! - **Creation is atomic.** `meta.json` is written (temp + fsync + rename) after the
//!   partitions exist; a topic directory without it is a creation cut short and is
//!   removed at open. Deletion renames the directory out of the namespace (`~deleted-*`,
//!   a name no topic can have) before removing it, so a crash never leaves half a topic.
//!
//! Queue mode (receive, ack, nack, extend; SQS FIFO message groups) is in [`queue`]
//! (module docs there); dead letters and redrive in [`dlq`]; exactly-once
//! consume-transform-produce transactions in [`txn`].
//!
//! - **A topic with `max_deliveries` has a dead-letter topic** `<name>.dlq`, created
//!   with it (and at open if a crash came between the two creations); deleting the
//!   topic deletes it, deleting the dead-letter topic alone is refused.

mod dedup;
mod meta;
pub mod queue;
pub mod record;
#[cfg(test)]
mod tests;
pub mod txn;

pub use meta::{
    validate_name, TopicFsync, TopicSpec, DEFAULT_DEDUP_WINDOW_MS, MAX_NAME_LEN, MAX_PARTITIONS,
};
pub use queue::dlq::{self, DLQ_SUFFIX, MAX_REDRIVE, REDRIVE_GROUP};
pub use queue::{Acked, Delivery, GroupLag, QueueError, ReceiveOptions};
pub use record::Message;
pub use txn::{
    AppliedTxn, PreparedTxn, TxnOutput, TxnRequest, TxnResult, MAX_TXN_ACKS, MAX_TXN_BYTES,
    MAX_TXN_MESSAGES, MAX_TXN_OUTPUTS,
};

use dedup::{Dedup, Placed};
use girder_log::{FsyncPolicy, Log, LogConfig, LogError, Retention};
use meta::Offsets;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::Duration;

/// Largest message (key + value + id + header names and values), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Most headers one message may carry.
pub const MAX_HEADERS: usize = 100;
/// Most consumer groups with committed offsets per topic.
pub const MAX_GROUPS: usize = 10_000;
/// Bytes of record framing beyond [`Message::size`]: version and flags (2), key, id
/// and header-count lengths (12), a transaction tag (12), and two lengths per header.
const RECORD_OVERHEAD: usize = 32 + 8 * MAX_HEADERS;
/// How long [`Topics::delete`] waits for requests still holding the topic.
pub const DELETE_WAIT: Duration = Duration::from_secs(5);
/// Prefix of a deleted topic's directory while it is being removed (`~` is not allowed
/// in topic names).
const TRASH_PREFIX: &str = "~deleted-";

/// Milliseconds since the Unix epoch; injected so tests control time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now_ms(&self) -> u64;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Where topics live and the limits they share.
#[derive(Debug, Clone)]
pub struct TopicsConfig {
    /// The topics' root directory (see [`topics_dir`]).
    pub dir: PathBuf,
    /// Time source for message timestamps and the dedup window.
    pub clock: Arc<dyn Clock>,
    /// Segment size of each partition's log.
    pub segment_bytes: u64,
    /// Largest message accepted ([`Message::size`]).
    pub max_message_bytes: usize,
    /// Most message ids remembered per topic for deduplication.
    pub dedup_max_entries: usize,
    /// Most partitions the node serves across all its topics (dead-letter topics
    /// included). Each partition is a log with its own threads and files: creation past
    /// this fails with a clear error instead of running the process out of threads or
    /// memory mappings.
    pub max_partitions: u64,
}

/// [`TopicsConfig::max_partitions`] by default. Each partition's log runs two threads
/// (flusher and syncer), each with its stack mappings: at about 8,000 partitions this
/// machine's 65,530 memory mappings ran out and the process aborted when it started
/// a thread.
pub const DEFAULT_MAX_NODE_PARTITIONS: u64 = 2048;

impl TopicsConfig {
    /// Defaults: 64 MiB segments, 1 MiB messages, 100,000 remembered ids per topic,
    /// [`DEFAULT_MAX_NODE_PARTITIONS`] partitions.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            clock: Arc::new(SystemClock),
            segment_bytes: 64 << 20,
            max_message_bytes: MAX_MESSAGE_BYTES,
            dedup_max_entries: 100_000,
            max_partitions: DEFAULT_MAX_NODE_PARTITIONS,
        }
    }
}

/// `<data_dir>/topics`.
pub fn topics_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("topics")
}

/// Everything topics can fail with. The messages are what clients see.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// No topic by that name.
    #[error("no such topic '{0}'")]
    NoSuchTopic(String),
    /// A topic by that name exists.
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// The name breaks the naming rule.
    #[error(
        "invalid topic name '{0}': use 1 to 200 characters of A-Z a-z 0-9 . _ - (not '.' or '..')"
    )]
    InvalidName(String),
    /// A setting is out of range.
    #[error("invalid {field}: {reason}")]
    InvalidSpec {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The topic has no such partition.
    #[error("no such partition {partition} in topic '{topic}' (it has {partitions})")]
    NoSuchPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// How many it has.
        partitions: u32,
    },
    /// The group has committed no offsets on this topic.
    #[error("no such consumer group '{group}' on topic '{topic}'")]
    NoSuchGroup {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
    },
    /// A message over the size limit.
    #[error("message of {size} bytes is over the {max} byte limit")]
    MessageTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The topic has no dead-letter topic.
    #[error("topic '{0}' has no dead-letter topic (it was created without max_deliveries)")]
    NoDeadLetterTopic(String),
    /// The topic is another topic's dead-letter topic.
    #[error(
        "topic '{dlq}' is the dead-letter topic of '{topic}': delete '{topic}' to delete both"
    )]
    DeadLetterTopicInUse {
        /// The dead-letter topic.
        dlq: String,
        /// The topic it serves.
        topic: String,
    },
    /// A message that is malformed in some other way.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A fetch or commit outside the partition's offsets.
    #[error("offset {offset} out of range [{start}, {end}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: u64,
        /// First readable offset.
        start: u64,
        /// Next offset to be assigned.
        end: u64,
    },
    /// The topic has too many consumer groups.
    #[error("too many consumer groups on topic '{topic}' (at most {max})")]
    TooManyGroups {
        /// The topic.
        topic: String,
        /// The limit.
        max: usize,
    },
    /// A partition's log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A file operation failed.
    #[error("topic I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A stored file or record does not decode.
    #[error("topic data damaged in {path}: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl TopicError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A wait for records to be durable under their log's policy.
type DurableWait =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), LogError>> + Send>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a produced message is, and whether it was a duplicate of an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    /// Its partition.
    pub partition: u32,
    /// Its offset in the partition.
    pub offset: u64,
    /// True when its id was seen within the dedup window: nothing was appended and
    /// `partition`/`offset` are the original's.
    pub duplicate: bool,
}

/// A message read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its offset.
    pub offset: u64,
    /// When it was produced (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// What was produced.
    pub message: Message,
}

/// A page of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Messages from the requested offset on, in offset order.
    pub messages: Vec<StoredMessage>,
    /// The offset to fetch next.
    pub next_offset: u64,
    /// First readable offset (retention moves it).
    pub start_offset: u64,
    /// The high watermark: offsets below it are visible to consumers.
    pub high_watermark: u64,
}

/// A partition's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition.
    pub partition: u32,
    /// First readable offset.
    pub start_offset: u64,
    /// Offsets below it are visible to consumers.
    pub high_watermark: u64,
}

/// One topic: its settings, its partitions' logs, its dedup map and committed offsets.
pub struct Topic {
    spec: TopicSpec,
    dir: PathBuf,
    logs: Vec<Log>,
    clock: Arc<dyn Clock>,
    max_message_bytes: usize,
    dedup_max_entries: usize,
    round_robin: AtomicU64,
    dedup: Mutex<Dedup>,
    /// Committed offsets; the lock is held across the file write so commits land on
    /// disk in the order they are applied.
    offsets: Mutex<Offsets>,
    deleted: AtomicBool,
    /// Queue-mode groups opened so far (see [`queue`]).
    groups: Mutex<HashMap<String, Arc<queue::Queue>>>,
    /// Fired when messages may have become receivable (see [`Topic::queue_wake`]).
    wake: tokio::sync::Notify,
    /// The dead-letter topic, linked by [`Topics`] when `max_deliveries` is set.
    dlq: OnceLock<Arc<Topic>>,
    /// Serializes redrives, so a dead letter is redriven once (see [`dlq`]).
    redrive: Mutex<()>,
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("spec", &self.spec)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Topic {
    fn open(dir: PathBuf, spec: TopicSpec, config: &TopicsConfig) -> Result<Self, TopicError> {
        let log_config = LogConfig {
            segment_bytes: config.segment_bytes,
            fsync: match spec.fsync {
                TopicFsync::Always => FsyncPolicy::Always,
                TopicFsync::Interval => FsyncPolicy::Interval(Duration::from_secs(1)),
                TopicFsync::Never => FsyncPolicy::Never,
            },
            retention: Retention {
                max_bytes: spec.retention_bytes,
                max_age_ms: spec.retention_ms,
                max_records: None,
            },
            max_record_bytes: u32::try_from(config.max_message_bytes + RECORD_OVERHEAD)
                .unwrap_or(u32::MAX),
            ..LogConfig::default()
        };
        let mut logs = Vec::with_capacity(spec.partitions as usize);
        for p in 0..spec.partitions {
            let pdir = dir.join(format!("p{p}"));
            std::fs::create_dir_all(&pdir).map_err(|e| TopicError::io(&pdir, e))?;
            let (log, _report) = Log::open(&pdir, log_config.clone())?;
            logs.push(log);
        }
        let offsets = meta::read_offsets(&dir)?;
        let topic = Topic {
            dedup: Mutex::new(Dedup::new(spec.dedup_window_ms, config.dedup_max_entries)),
            spec,
            dir,
            logs,
            clock: Arc::clone(&config.clock),
            max_message_bytes: config.max_message_bytes,
            dedup_max_entries: config.dedup_max_entries,
            round_robin: AtomicU64::new(0),
            offsets: Mutex::new(offsets),
            deleted: AtomicBool::new(false),
            groups: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            dlq: OnceLock::new(),
            redrive: Mutex::new(()),
        };
        topic.rebuild_dedup()?;
        Ok(topic)
    }

    /// Refills the dedup map from the records of the last window, oldest first.
    fn rebuild_dedup(&self) -> Result<(), TopicError> {
        let window = self.spec.dedup_window_ms;
        if window == 0 {
            return Ok(());
        }
        let since = self.clock.now_ms().saturating_sub(window);
        let mut seen: Vec<(u64, u32, u64, String)> = Vec::new();
        for (p, log) in self.logs.iter().enumerate() {
            let Some(mut from) = log.offset_for_timestamp(since)? else {
                continue;
            };
            let end = log.end_offset();
            while from < end {
                let records = log.read(from, 1 << 20)?;
                let Some(last) = records.last() else { break };
                from = last.offset + 1;
                for r in records {
                    let id = record::decode_id(&r.payload).map_err(|e| TopicError::Damaged {
                        path: log.dir().to_owned(),
                        reason: format!("offset {}: {e}", r.offset),
                    })?;
                    if let Some(id) = id {
                        seen.push((r.timestamp_ms, p as u32, r.offset, id));
                    }
                }
                // Only the newest `dedup_max_entries` ids survive the insertions below:
                // keep memory bounded while scanning a long window.
                if seen.len() > 2 * self.dedup_max_entries.max(1) {
                    newest(&mut seen, self.dedup_max_entries);
                }
            }
        }
        newest(&mut seen, self.dedup_max_entries);
        let mut dedup = lock(&self.dedup);
        for (ts, partition, offset, id) in seen {
            dedup.insert(id, Placed { partition, offset }, ts);
        }
        Ok(())
    }

    /// The topic's settings.
    pub fn spec(&self) -> &TopicSpec {
        &self.spec
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The partition a key goes to: jump hash of the key's XXH3-64.
    pub fn partition_for_key(&self, key: &[u8]) -> u32 {
        girder_hash::jump_consistent_hash(girder_hash::hash_key(key), self.spec.partitions)
    }

    fn log(&self, partition: u32) -> Result<&Log, TopicError> {
        self.logs
            .get(partition as usize)
            .ok_or_else(|| TopicError::NoSuchPartition {
                topic: self.spec.name.clone(),
                partition,
                partitions: self.spec.partitions,
            })
    }

    fn check_live(&self) -> Result<(), TopicError> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(TopicError::NoSuchTopic(self.spec.name.clone()));
        }
        Ok(())
    }

    /// First offset a consumer cannot see yet; see the module docs.
    fn high_watermark(&self, log: &Log) -> u64 {
        match self.spec.fsync {
            TopicFsync::Interval => log.end_offset(),
            TopicFsync::Always | TopicFsync::Never => log.durable_offset().min(log.end_offset()),
        }
    }

    /// Checks a message against the limits.
    ///
    /// # Errors
    /// [`TopicError::MessageTooLarge`] or [`TopicError::InvalidMessage`].
    pub fn check_message(&self, m: &Message) -> Result<(), TopicError> {
        let size = m.size();
        if size > self.max_message_bytes {
            return Err(TopicError::MessageTooLarge {
                size,
                max: self.max_message_bytes,
            });
        }
        if m.headers.len() > MAX_HEADERS {
            return Err(TopicError::InvalidMessage(format!(
                "{} headers, at most {MAX_HEADERS} allowed",
                m.headers.len()
            )));
        }
        Ok(())
    }

    /// Appends `messages` and waits until they are durable under the topic's policy.
    /// Results are in the order of `messages`. Messages of one key keep their order.
    ///
    /// # Errors
    /// Limits (checked for the whole batch before anything is appended), a deleted topic,
    /// or a failed log (then nothing from that partition is acknowledged).
    pub async fn produce(&self, messages: &[Message]) -> Result<Vec<Produced>, TopicError> {
        let results = self.append(messages)?;
        for wait in self.durable_waits(&results) {
            wait.await?;
        }
        // Now visible to consumers (below the high watermark): wake long-polling receives.
        self.wake.notify_waiters();
        Ok(results)
    }

    /// The waits for `results` (duplicates included: their originals may be another
    /// producer's append, not yet durable) to be durable under the topic's policy, one
    /// per partition; none under `interval`, which answers at once.
    fn durable_waits(&self, results: &[Produced]) -> Vec<DurableWait> {
        if self.spec.fsync == TopicFsync::Interval {
            return Vec::new();
        }
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for r in results {
            let e = last.entry(r.partition).or_insert(r.offset);
            *e = (*e).max(r.offset);
        }
        last.into_iter()
            .filter_map(|(p, o)| {
                let log = self.logs.get(p as usize)?;
                Some(Box::pin(log.wait_durable(o)) as DurableWait)
            })
            .collect()
    }

    /// The synchronous half of `produce`: place, deduplicate, append.
    fn append(&self, messages: &[Message]) -> Result<Vec<Produced>, TopicError> {
        self.append_as(messages, Origin::Producer)
    }

    /// Place, deduplicate (producers only), append.
    fn append_as(&self, messages: &[Message], origin: Origin) -> Result<Vec<Produced>, TopicError> {
        self.append_inner(messages, origin, None)
    }

    /// Where message `m` goes: its key's partition, or the next in round-robin order.
    fn place(&self, m: &Message) -> u32 {
        match &m.key {
            Some(key) => self.partition_for_key(key.as_bytes()),
            None => {
                let n = self.round_robin.fetch_add(1, Ordering::Relaxed);
                (n % u64::from(self.spec.partitions)) as u32
            }
        }
    }

    /// [`Topic::append_as`]; with `tagged`, each message goes to the partition chosen
    /// when its transaction committed and carries the transaction's tag (see [`txn`]).
    fn append_inner(
        &self,
        messages: &[Message],
        origin: Origin,
        tagged: Option<&txn::Tagged<'_>>,
    ) -> Result<Vec<Produced>, TopicError> {
        self.check_live()?;
        if origin == Origin::Producer {
            for m in messages {
                self.check_message(m)?;
            }
        }
        let now = self.clock.now_ms();
        let dedup_on = origin == Origin::Producer
            && self.spec.dedup_window_ms > 0
            && messages.iter().any(|m| m.id.is_some());
        // Held from the check to the insert, so one id is appended once however many
        // producers retry it at the same time. Appends are memory copies.
        let mut dedup = dedup_on.then(|| lock(&self.dedup));
        let mut results: Vec<Option<Produced>> = vec![None; messages.len()];
        // Ids first met in this batch → the index of the message that carries them.
        let mut batch_ids: HashMap<&str, usize> = HashMap::new();
        let mut copies: Vec<(usize, usize)> = Vec::new();
        let mut per_partition: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, m) in messages.iter().enumerate() {
            if let (Some(d), Some(id)) = (dedup.as_mut(), m.id.as_deref()) {
                if let Some(placed) = d.get(id, now) {
                    results[i] = Some(Produced {
                        partition: placed.partition,
                        offset: placed.offset,
                        duplicate: true,
                    });
                    continue;
                }
                if let Some(&first) = batch_ids.get(id) {
                    copies.push((i, first));
                    continue;
                }
                batch_ids.insert(id, i);
            }
            let partition = match tagged {
                Some(t) => t.partitions[i],
                None => self.place(m),
            };
            per_partition.entry(partition).or_default().push(i);
        }
        let mut buf = Vec::new();
        for (partition, indexes) in per_partition {
            buf.clear();
            let mut ends = Vec::with_capacity(indexes.len());
            for &i in &indexes {
                let tag = tagged.map(|t| (t.txn, t.indexes[i]));
                record::encode_tagged(&messages[i], tag, &mut buf);
                ends.push(buf.len());
            }
            let mut payloads = Vec::with_capacity(indexes.len());
            let mut start = 0;
            for end in ends {
                payloads.push(&buf[start..end]);
                start = end;
            }
            let range = self.log(partition)?.append_batch(now, &payloads)?;
            for (&i, offset) in indexes.iter().zip(range) {
                results[i] = Some(Produced {
                    partition,
                    offset,
                    duplicate: false,
                });
                if let (Some(d), Some(id)) = (dedup.as_mut(), &messages[i].id) {
                    d.insert(id.clone(), Placed { partition, offset }, now);
                }
            }
        }
        drop(dedup);
        for (i, first) in copies {
            results[i] = results[first].map(|r| Produced {
                duplicate: true,
                ..r
            });
        }
        // Every slot was filled above: appended, a duplicate, or a copy of one appended.
        Ok(results.into_iter().flatten().collect())
    }

    /// Reads up to `limit` messages (and about `max_bytes` of records) of `partition`
    /// from `offset`, never past the high watermark. `offset` at or past the watermark
    /// (up to the log's end) gives an empty page.
    ///
    /// # Errors
    /// An unknown partition, an offset outside `[start, end]`, a failed log, or a record
    /// that does not decode.
    pub fn fetch(
        &self,
        partition: u32,
        offset: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Fetched, TopicError> {
        self.check_live()?;
        let log = self.log(partition)?;
        let hw = self.high_watermark(log);
        let (start, end) = (log.start_offset(), log.end_offset());
        if offset < start || offset > end {
            return Err(TopicError::OffsetOutOfRange { offset, start, end });
        }
        let mut messages = Vec::new();
        if offset < hw && limit > 0 {
            let records = match log.read(offset, max_bytes) {
                Err(LogError::OffsetOutOfRange { offset, start, end }) => {
                    // Retention moved the start since we looked.
                    return Err(TopicError::OffsetOutOfRange { offset, start, end });
                }
                other => other?,
            };
            for r in records
                .into_iter()
                .take_while(|r| r.offset < hw)
                .take(limit)
            {
                let message = record::decode(&r.payload).map_err(|e| TopicError::Damaged {
                    path: log.dir().to_owned(),
                    reason: format!("offset {}: {e}", r.offset),
                })?;
                messages.push(StoredMessage {
                    offset: r.offset,
                    timestamp_ms: r.timestamp_ms,
                    message,
                });
            }
        }
        Ok(Fetched {
            next_offset: messages.last().map_or(offset, |m| m.offset + 1),
            messages,
            start_offset: log.start_offset(),
            high_watermark: hw,
        })
    }

    /// Every partition's offsets.
    pub fn partitions(&self) -> Vec<PartitionInfo> {
        self.logs
            .iter()
            .enumerate()
            .map(|(p, log)| PartitionInfo {
                partition: p as u32,
                start_offset: log.start_offset(),
                high_watermark: self.high_watermark(log),
            })
            .collect()
    }

    /// Records that `group` has consumed `partition` up to (not including) `offset`,
    /// durably (the offsets file is replaced and fsynced before this returns). Blocking.
    ///
    /// # Errors
    /// A bad group name, an unknown partition, an offset past the high watermark, too
    /// many groups, or a failed write (then the commit is not applied).
    pub fn commit_offset(
        &self,
        group: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), TopicError> {
        self.check_live()?;
        validate_name(group).map_err(|_| TopicError::InvalidSpec {
            field: "group",
            reason: "use 1 to 200 characters of A-Z a-z 0-9 . _ -".into(),
        })?;
        let log = self.log(partition)?;
        let hw = self.high_watermark(log);
        if offset > hw {
            return Err(TopicError::OffsetOutOfRange {
                offset,
                start: log.start_offset(),
                end: hw,
            });
        }
        let mut offsets = lock(&self.offsets);
        if !offsets.contains_key(group) && offsets.len() >= MAX_GROUPS {
            return Err(TopicError::TooManyGroups {
                topic: self.spec.name.clone(),
                max: MAX_GROUPS,
            });
        }
        let mut next = offsets.clone();
        next.entry(group.to_owned())
            .or_default()
            .insert(partition, offset);
        meta::write_offsets(&self.dir, &next)?;
        *offsets = next;
        Ok(())
    }

    /// `group`'s committed offsets, by partition.
    ///
    /// # Errors
    /// [`TopicError::NoSuchGroup`] when it committed nothing on this topic.
    pub fn committed_offsets(&self, group: &str) -> Result<BTreeMap<u32, u64>, TopicError> {
        self.check_live()?;
        lock(&self.offsets)
            .get(group)
            .cloned()
            .ok_or_else(|| TopicError::NoSuchGroup {
                topic: self.spec.name.clone(),
                group: group.to_owned(),
            })
    }

    /// fsyncs every partition.
    ///
    /// # Errors
    /// The first partition that fails.
    pub fn sync(&self) -> Result<(), TopicError> {
        for log in &self.logs {
            log.sync()?;
        }
        Ok(())
    }
}

/// Who appends: a producer (limits checked, ids deduplicated) or the topics themselves
/// moving a message that was checked when first produced (dead-lettering, redrive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Producer,
    Internal,
}

/// Sorts `(timestamp, partition, offset, id)` oldest first and keeps the newest `keep`.
fn newest(seen: &mut Vec<(u64, u32, u64, String)>, keep: usize) {
    seen.sort_unstable_by_key(|(ts, p, o, _)| (*ts, *p, *o));
    let excess = seen.len().saturating_sub(keep);
    seen.drain(..excess);
}

/// What [`Topics::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicsReport {
    /// Topics reopened.
    pub topics: usize,
    /// Directories removed: creations cut short and deletions not finished.
    pub removed: Vec<PathBuf>,
    /// Transactions committed after the last checkpoint, completed again.
    pub transactions: usize,
}

/// The registry of topics under one directory.
pub struct Topics {
    config: TopicsConfig,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serializes creations and deletions (they do file I/O); produce and fetch never
    /// take it.
    admin: Mutex<()>,
    trash_seq: AtomicU64,
    /// The transaction log (see [`txn`]).
    txn: txn::TxnLog,
}

impl fmt::Debug for Topics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topics")
            .field("dir", &self.config.dir)
            .finish_non_exhaustive()
    }
}

impl Topics {
    /// Opens every topic under `config.dir` (creating the directory).
    ///
    /// # Errors
    /// A directory that cannot be read, a damaged `meta.json` or offsets file, or a
    /// partition log that does not open (`LogError::Corrupt` names the file and byte).
    pub fn open(config: TopicsConfig) -> Result<(Self, TopicsReport), TopicError> {
        let root = config.dir.clone();
        std::fs::create_dir_all(&root).map_err(|e| TopicError::io(&root, e))?;
        let mut report = TopicsReport::default();
        let mut topics = BTreeMap::new();
        let entries = std::fs::read_dir(&root).map_err(|e| TopicError::io(&root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| TopicError::io(&root, e))?;
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == txn::TXN_DIR {
                continue;
            }
            let trash = name.starts_with(TRASH_PREFIX);
            if !trash && validate_name(&name).is_err() {
                tracing::warn!(dir = %path.display(), "ignoring a directory that is not a topic");
                continue;
            }
            let unfinished = trash || !path.join(meta::META_FILE).exists();
            if unfinished {
                tracing::warn!(dir = %path.display(), "removing an unfinished topic creation or deletion");
                std::fs::remove_dir_all(&path).map_err(|e| TopicError::io(&path, e))?;
                report.removed.push(path);
                continue;
            }
            let spec = meta::read_meta(&path)?;
            if spec.name != name {
                return Err(TopicError::Damaged {
                    path: path.join(meta::META_FILE),
                    reason: format!("names topic '{}' but is in directory '{name}'", spec.name),
                });
            }
            let topic = Topic::open(path, spec, &config)?;
            topics.insert(name, Arc::new(topic));
        }
        let this = Self {
            txn: txn::TxnLog::open(&root)?,
            config,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            trash_seq: AtomicU64::new(0),
        };
        for topic in this.list(None, usize::MAX) {
            if topic.spec.max_deliveries.is_some() {
                // Creates it when a crash came between the topic's creation and its own.
                this.link_dlq(&topic)?;
            }
        }
        report.transactions = this.recover_transactions()?;
        report.topics = this.list(None, usize::MAX).len();
        Ok((this, report))
    }

    /// Links `topic` to its dead-letter topic, creating that when missing. Called with
    /// the admin lock held (or before anyone else can see `self`).
    fn link_dlq(&self, topic: &Topic) -> Result<(), TopicError> {
        let spec = dlq::dlq_spec(&topic.spec);
        let dlq = match self.get(&spec.name) {
            Some(d) => d,
            None => {
                if let Err(e) = spec.validate() {
                    // Only a topic stored before the name rule for dead letters existed.
                    tracing::warn!(topic = %topic.spec.name, error = %e, "no dead-letter topic: messages are not dead-lettered");
                    return Ok(());
                }
                self.create_locked(spec)?
            }
        };
        // Set once per topic object; a second link names the same topic.
        let _ = topic.dlq.set(dlq);
        Ok(())
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Creates a topic. Blocking (creates and fsyncs files).
    ///
    /// # Errors
    /// An invalid spec, an existing name, or a failed file operation (then nothing is
    /// left behind that a restart would take for a topic).
    pub fn create(&self, spec: TopicSpec) -> Result<Arc<Topic>, TopicError> {
        spec.validate()?;
        let _admin = lock(&self.admin);
        if self.get(&spec.name).is_some() {
            return Err(TopicError::TopicExists(spec.name));
        }
        // Checked here, not where a topic is made: recovery at open may create a
        // missing dead-letter topic whatever the bound.
        let wanted = u64::from(spec.partitions)
            + spec
                .max_deliveries
                .map_or(0, |_| u64::from(dlq::dlq_spec(&spec).partitions));
        let in_use: u64 = self
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|t| u64::from(t.spec.partitions))
            .sum();
        if in_use + wanted > self.config.max_partitions {
            return Err(TopicError::InvalidSpec {
                field: "partitions",
                reason: format!(
                    "this node serves at most {} partitions across its topics and {in_use} are in use; this topic needs {wanted}{}",
                    self.config.max_partitions,
                    if spec.max_deliveries.is_some() { " with its dead-letter topic" } else { "" }
                ),
            });
        }
        if spec.max_deliveries.is_none() {
            return self.create_locked(spec);
        }
        let dlq_name = dlq::dlq_name(&spec.name);
        validate_name(&dlq_name).map_err(|_| TopicError::InvalidSpec {
            field: "name",
            reason: format!(
                "a topic with max_deliveries needs a name of at most {} characters (its dead-letter topic adds '{DLQ_SUFFIX}')",
                MAX_NAME_LEN - DLQ_SUFFIX.len()
            ),
        })?;
        if self.get(&dlq_name).is_some() {
            return Err(TopicError::TopicExists(dlq_name));
        }
        let topic = self.create_locked(spec)?;
        if let Err(e) = self.link_dlq(&topic) {
            let name = topic.spec.name.clone();
            drop(topic);
            if let Err(undo) = self.delete_locked(&name) {
                tracing::warn!(topic = %name, error = %undo, "topic without its dead-letter topic left behind; linked at next start");
            }
            return Err(e);
        }
        Ok(topic)
    }

    /// [`Topics::create`] with the admin lock held and the spec validated.
    fn create_locked(&self, spec: TopicSpec) -> Result<Arc<Topic>, TopicError> {
        if self.get(&spec.name).is_some() {
            return Err(TopicError::TopicExists(spec.name));
        }
        let dir = self.config.dir.join(&spec.name);
        if dir.exists() {
            // Left by a failed creation in this process.
            std::fs::remove_dir_all(&dir).map_err(|e| TopicError::io(&dir, e))?;
        }
        std::fs::create_dir(&dir).map_err(|e| TopicError::io(&dir, e))?;
        let created = Topic::open(dir.clone(), spec.clone(), &self.config).and_then(|topic| {
            topic.sync()?;
            meta::write_meta(&dir, &spec)?;
            meta::sync_dir(&self.config.dir)?;
            Ok(topic)
        });
        let topic = match created {
            Ok(topic) => Arc::new(topic),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        self.topics
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(spec.name, Arc::clone(&topic));
        Ok(topic)
    }

    /// The topic named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Up to `limit` topics in name order, starting after `after`.
    pub fn list(&self, after: Option<&str>, limit: usize) -> Vec<Arc<Topic>> {
        use std::ops::Bound;
        let map = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        map.range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(_, t)| Arc::clone(t))
            .collect()
    }

    /// Deletes a topic: its messages, offsets and settings. Blocking. Requests already
    /// holding the topic fail with [`TopicError::NoSuchTopic`]; the deletion waits (up
    /// to [`DELETE_WAIT`]) for them to let go, so its logs are closed before its
    /// directory moves and a new topic of the same name never shares a file with it.
    ///
    /// # Errors
    /// [`TopicError::NoSuchTopic`], or a failed rename (then the topic is reopened and
    /// stays).
    pub fn delete(&self, name: &str) -> Result<(), TopicError> {
        let _admin = lock(&self.admin);
        if let Some(parent) = name.strip_suffix(DLQ_SUFFIX).and_then(|p| self.get(p)) {
            if parent.spec.max_deliveries.is_some() {
                return Err(TopicError::DeadLetterTopicInUse {
                    dlq: name.to_owned(),
                    topic: parent.spec.name.clone(),
                });
            }
        }
        let has_dlq = self
            .get(name)
            .is_some_and(|t| t.spec.max_deliveries.is_some());
        self.delete_locked(name)?;
        if has_dlq {
            // The topic (and its link) is gone; its dead-letter topic goes with it.
            match self.delete_locked(&dlq::dlq_name(name)) {
                Ok(()) | Err(TopicError::NoSuchTopic(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// [`Topics::delete`] of one topic, with the admin lock held.
    fn delete_locked(&self, name: &str) -> Result<(), TopicError> {
        let mut topic = {
            let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
            let topic = topics
                .remove(name)
                .ok_or_else(|| TopicError::NoSuchTopic(name.to_owned()))?;
            // Marked before the table is unlocked: once `get` misses the topic, no
            // request on a handle taken earlier succeeds either.
            topic.deleted.store(true, Ordering::Release);
            topic
        };
        // Long-polling receives look again, see the deletion and let go of the topic.
        topic.wake.notify_waiters();
        let dir = topic.dir.clone();
        let deadline = std::time::Instant::now() + DELETE_WAIT;
        loop {
            match Arc::try_unwrap(topic) {
                // Dropping it closes the logs: flushers stop, buffered data is fsynced.
                Ok(owned) => {
                    drop(owned);
                    break;
                }
                Err(shared) if std::time::Instant::now() < deadline => {
                    topic = shared;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(_) => {
                    tracing::warn!(topic = name, "deleting a topic still in use by a request");
                    break;
                }
            }
        }
        let seq = self.trash_seq.fetch_add(1, Ordering::Relaxed);
        let trash = self
            .config
            .dir
            .join(format!("{TRASH_PREFIX}{name}-{}-{seq}", std::process::id()));
        if let Err(e) = std::fs::rename(&dir, &trash) {
            let err = TopicError::io(&dir, e);
            let spec = meta::read_meta(&dir)?;
            let reopened = Topic::open(dir, spec, &self.config)?;
            self.topics
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_owned(), Arc::new(reopened));
            return Err(err);
        }
        meta::sync_dir(&self.config.dir)?;
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            tracing::warn!(dir = %trash.display(), error = %e, "deleted topic's files not removed; removed at next start");
        }
        Ok(())
    }

    /// Applies every topic's retention now.
    ///
    /// # Errors
    /// The first log that fails.
    pub fn enforce_retention(&self) -> Result<(), TopicError> {
        let now = self.config.clock.now_ms();
        for topic in self.list(None, usize::MAX) {
            if topic.spec.retention_ms.is_some() || topic.spec.retention_bytes.is_some() {
                for log in &topic.logs {
                    log.enforce_retention(now)?;
                }
            }
        }
        Ok(())
    }

    /// fsyncs every partition of every topic and checkpoints the transactions (at
    /// shutdown).
    ///
    /// # Errors
    /// The first that fails.
    pub fn sync(&self) -> Result<(), TopicError> {
        for topic in self.list(None, usize::MAX) {
            topic.sync()?;
        }
        self.checkpoint_transactions()
    }
}
