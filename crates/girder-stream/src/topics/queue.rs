//! Queue mode: SQS FIFO message groups over a topic's partitions. A consumer group
//! `receive`s messages with a visibility timeout and a receipt, then `ack`s, `nack`s
//! (visible again after a delay) or `extend`s them; what is neither acked nor extended
//! in time is redelivered with its `delivery_count` one higher.
//!
//! Per (topic, group) the state is created on first receive: a small `girder-log` under
//! `<topic dir>/groups/<group>/` that holds the group's acks, and in memory, per
//! partition, the *window* of offsets read but not yet all acked.
//!
//! # Invariants
//! - **One key, one consumer, offset order.** Only the lowest unacked offset of a key
//!   (its *head*) is ever handed out; while it is in flight, delayed or waiting for
//!   redelivery, later messages of the key wait. So a key is never in flight to two
//!   consumers, and its messages are delivered in offset order (keys map to one
//!   partition, so per partition is enough). Unkeyed messages and different keys go in
//!   parallel.
//! - **Lowest offset first** within a partition; partitions take turns across receives.
//! - **Acks are durable before they are answered**: an ack is appended to the group's
//!   log and awaited under the topic's fsync policy (`always`: fsynced; `never`: written
//!   to the OS; `interval`: answered at once, as produce is). Replay at open rebuilds
//!   the acked offsets, so an acked message is never delivered again.
//! - **At-least-once across restarts.** In-flight state, delays and delivery counts live
//!   in memory only: after a restart every unacked message is visible again and its
//!   `delivery_count` starts over at 1. Receipts carry the queue's *epoch* (fresh at
//!   every open), so a receipt from before a restart is answered as expired, never
//!   matched to a new delivery.
//! - **A receipt is current** while it names the message's latest delivery and the
//!   message is neither acked nor nacked. A delivery whose visibility ran out but that
//!   nobody has received again may still be acked or extended (nobody else holds it, as
//!   in SQS); once redelivered, the old receipt is expired.
//! - **Dead letters.** With `max_deliveries = N`, a message due for its (N+1)-th
//!   delivery to a group is moved to the topic's dead-letter topic and acked in the
//!   group instead ([`dlq`]).
//!
//! # Bounds
//! At most [`MAX_IN_FLIGHT`] messages per group are tracked (in flight, delayed, or read
//! ahead behind a busy key); past it `receive` returns fewer. A partition's window (from
//! its oldest unacked offset to the newest offset read) is at most [`MAX_WINDOW`]
//! offsets, so one message that is never acked stalls its partition there, as Kafka's
//! committed offset would.
//!
//! # Ack log
//! Records (version 1, little-endian): `[1, 1, count u32, (partition u32, offset u64)*]`
//! for acks, and a snapshot `[1, 2, partitions u32, per partition: prefix u64, count
//! u32, offset u64 * count]` — the contiguous acked prefix and the acked offsets above
//! it. A snapshot overrides everything before it, so after one is written the log's
//! start moves to it (`delete_before`) and old segments go.

use super::{lock, meta, DurableWait, StoredMessage, Topic, TopicError, TopicFsync, MAX_GROUPS};
use girder_log::{FsyncPolicy, Log, LogConfig, LogError};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most messages a group tracks at once (in flight, delayed or read ahead).
pub const MAX_IN_FLIGHT: usize = 100_000;
/// Most offsets between a partition's oldest unacked message and the newest one read.
pub const MAX_WINDOW: u64 = 100_000;
/// Most messages one receive returns.
pub const MAX_RECEIVE: usize = 100;
/// Longest visibility timeout (12 hours, as SQS).
pub const MAX_VISIBILITY_MS: u64 = 43_200_000;
/// Ack records between snapshots, at least.
const COMPACT_MIN_RECORDS: u64 = 4096;
/// A snapshot is skipped while the acked offsets above the prefixes exceed this.
const MAX_SNAPSHOT_OFFSETS: usize = 1_000_000;
/// Record bytes one read of a partition takes at most while looking for messages to
/// deliver (at least one message is always read).
const READ_BYTES: usize = 1 << 20;
/// Messages one read of a partition takes at most.
const READ_MESSAGES: usize = 1000;
/// Bytes a read budgets per message it wants, so a page of small messages is not a
/// megabyte of records read and thrown away (larger messages take more reads: the
/// page doubles each time).
const PAGE_BYTES_PER_MESSAGE: usize = 512;

const VERSION: u8 = 1;
const KIND_ACKS: u8 = 1;
const KIND_SNAPSHOT: u8 = 2;
const GROUPS_DIR: &str = "groups";

#[path = "dlq.rs"]
pub mod dlq;

/// Queue-mode failures. The messages are what clients see.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The string is not a receipt this server hands out.
    #[error("invalid receipt handle '{0}'")]
    BadReceipt(String),
    /// The receipt names a delivery that is no longer current.
    #[error(
        "receipt handle expired: the message was acked, nacked or redelivered since, or the server restarted"
    )]
    ReceiptExpired,
    /// The group never received from this topic.
    #[error("no such queue group '{group}' on topic '{topic}'")]
    NoSuchGroup {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
    },
    /// Anything the topic itself reports (deleted topic, bad argument, storage).
    #[error(transparent)]
    Topic(#[from] TopicError),
}

impl From<LogError> for QueueError {
    fn from(e: LogError) -> Self {
        Self::Topic(TopicError::Log(e))
    }
}

/// How to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveOptions {
    /// 1..=[`MAX_RECEIVE`].
    pub max_messages: usize,
    /// 1..=[`MAX_VISIBILITY_MS`]: how long the messages stay hidden from other receives.
    pub visibility_timeout_ms: u64,
}

/// A message handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Names this delivery in `ack`, `nack` and `extend`.
    pub receipt: String,
    /// Its partition.
    pub partition: u32,
    /// How many times it has been delivered since the server started, this one included.
    pub delivery_count: u32,
    /// The message.
    pub stored: StoredMessage,
}

/// A message's place: (partition, offset).
pub(crate) type PartitionOffset = (u32, u64);

/// Acks applied in memory, and the wait for them to be durable.
pub struct Acked {
    /// Per receipt, in request order.
    pub results: Vec<Result<(), QueueError>>,
    durable: Option<DurableWait>,
}

impl fmt::Debug for Acked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acked")
            .field("results", &self.results)
            .finish_non_exhaustive()
    }
}

impl Acked {
    /// Waits until the acks are durable under the topic's policy; then the results.
    ///
    /// # Errors
    /// The group's log failed: the acks may not survive a restart (the messages then
    /// come back: at-least-once).
    pub async fn durable(self) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        if let Some(wait) = self.durable {
            wait.await?;
        }
        Ok(self.results)
    }
}

/// A receipt: which delivery of which message, in which life of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Receipt {
    epoch: u64,
    partition: u32,
    offset: u64,
    delivery: u32,
}

impl Receipt {
    fn encode(self) -> String {
        format!(
            "{:x}.{}.{}.{}",
            self.epoch, self.partition, self.offset, self.delivery
        )
    }

    fn parse(s: &str) -> Result<Self, QueueError> {
        let bad = || QueueError::BadReceipt(s.chars().take(100).collect());
        let mut parts = s.split('.');
        let mut next = || parts.next().filter(|p| !p.is_empty() && p.len() <= 20);
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        let epoch = next()
            .filter(|p| {
                p.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            })
            .and_then(|p| u64::from_str_radix(p, 16).ok());
        let partition = next().filter(|p| digits(p)).and_then(|p| p.parse().ok());
        let offset = next().filter(|p| digits(p)).and_then(|p| p.parse().ok());
        let delivery = next().filter(|p| digits(p)).and_then(|p| p.parse().ok());
        match (epoch, partition, offset, delivery, next()) {
            (Some(epoch), Some(partition), Some(offset), Some(delivery), None) if delivery > 0 => {
                Ok(Self {
                    epoch,
                    partition,
                    offset,
                    delivery,
                })
            }
            _ => Err(bad()),
        }
    }
}

/// Where a message read into the window stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Never delivered (read ahead behind a busy key, or not handed out yet).
    Ready,
    /// Delivered; hidden until `deadline`, then visible again.
    InFlight { deadline: u64 },
    /// Nacked; visible from `until`.
    Delayed { until: u64 },
    /// Acked by a transaction that is committing (see [`super::txn`]): hidden, and its
    /// receipt no longer current. Back to `InFlight { deadline }` if the transaction
    /// fails before its commit record is written; acked once it is applied.
    Committing { deadline: u64 },
}

#[derive(Debug)]
struct Entry {
    key: Option<String>,
    deliveries: u32,
    slot: Slot,
    /// The error the latest nack gave; cleared by each delivery (so a visibility
    /// timeout leaves none). Carried into the dead-letter topic.
    last_error: Option<String>,
}

impl Entry {
    fn visible(&self, now: u64) -> bool {
        match self.slot {
            Slot::Ready => true,
            Slot::InFlight { deadline } => deadline <= now,
            Slot::Delayed { until } => until <= now,
            Slot::Committing { .. } => false,
        }
    }
}

/// One partition's window.
#[derive(Debug, Default)]
struct Part {
    /// Every offset below it is acked (or gone to retention).
    prefix: u64,
    /// Acked offsets at or above `prefix`.
    acked: BTreeSet<u64>,
    /// The next offset to read from the log; every offset in `prefix..scan` is in
    /// `acked` or in `pending`.
    scan: u64,
    /// Unacked offsets read from the log.
    pending: BTreeMap<u64, Entry>,
    /// Per key, its pending offsets in order; the front is the only one deliverable.
    keys: HashMap<String, VecDeque<u64>>,
}

impl Part {
    fn is_head(&self, offset: u64, key: Option<&String>) -> bool {
        key.is_none_or(|k| self.keys.get(k).and_then(|q| q.front()) == Some(&offset))
    }

    fn settle_prefix(&mut self) {
        while self.acked.remove(&self.prefix) {
            self.prefix += 1;
        }
        self.scan = self.scan.max(self.prefix);
    }

    /// Forgets what retention deleted: offsets below `start` count as done.
    fn trim_to(&mut self, start: u64) -> usize {
        if self.prefix >= start {
            return 0;
        }
        let kept = self.pending.split_off(&start);
        let gone = std::mem::replace(&mut self.pending, kept);
        for (offset, e) in &gone {
            if let Some(k) = &e.key {
                if let Some(q) = self.keys.get_mut(k) {
                    q.retain(|o| o != offset);
                    if q.is_empty() {
                        self.keys.remove(k);
                    }
                }
            }
        }
        self.acked = self.acked.split_off(&start);
        self.prefix = start;
        self.settle_prefix();
        gone.len()
    }
}

/// Mutable state of one group.
#[derive(Debug)]
struct State {
    parts: Vec<Part>,
    /// Entries in every part's `pending`.
    pending: usize,
    /// The partition the next receive starts with.
    rr: usize,
    /// Ack records since the last snapshot.
    since_snapshot: u64,
}

/// One (topic, group) queue.
pub(crate) struct Queue {
    /// The group's name.
    group: String,
    log: Log,
    epoch: u64,
    state: Mutex<State>,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("dir", &self.log.dir())
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// fsyncs the group's ack log.
    pub(crate) fn sync(&self) -> Result<(), LogError> {
        self.log.sync()
    }
}

/// Distinguishes queues opened in the same millisecond.
static EPOCH_SEQ: AtomicU64 = AtomicU64::new(0);

fn damaged(log: &Log, reason: String) -> QueueError {
    QueueError::Topic(TopicError::Damaged {
        path: log.dir().to_owned(),
        reason,
    })
}

impl Queue {
    fn open(topic: &Topic, dir: PathBuf) -> Result<Self, QueueError> {
        let config = LogConfig {
            segment_bytes: 1 << 20,
            fsync: match topic.spec.fsync {
                TopicFsync::Always => FsyncPolicy::Always,
                TopicFsync::Interval => FsyncPolicy::Interval(Duration::from_secs(1)),
                TopicFsync::Never => FsyncPolicy::Never,
            },
            ..LogConfig::default()
        };
        let (log, _report) = Log::open(&dir, config)?;
        let partitions = topic.spec.partitions as usize;
        let mut parts: Vec<Part> = (0..partitions).map(|_| Part::default()).collect();
        let mut from = log.start_offset();
        let end = log.end_offset();
        while from < end {
            let records = log.read(from, 4 << 20)?;
            let Some(last) = records.last() else { break };
            from = last.offset + 1;
            for r in &records {
                replay(&mut parts, &r.payload)
                    .map_err(|e| damaged(&log, format!("offset {}: {e}", r.offset)))?;
            }
        }
        for part in &mut parts {
            part.settle_prefix();
        }
        let seq = EPOCH_SEQ.fetch_add(1, Ordering::Relaxed);
        let epoch = (topic.clock.now_ms() << 12) ^ (seq & 0xfff);
        let group = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            group,
            log,
            epoch,
            state: Mutex::new(State {
                parts,
                pending: 0,
                rr: 0,
                since_snapshot: 0,
            }),
        })
    }
}

/// Applies one ack-log record.
fn replay(parts: &mut [Part], payload: &[u8]) -> Result<(), &'static str> {
    let mut r = payload;
    let mut take = |n: usize| -> Result<&[u8], &'static str> {
        if r.len() < n {
            return Err("truncated ack record");
        }
        let (head, rest) = r.split_at(n);
        r = rest;
        Ok(head)
    };
    let head = take(2)?;
    if head[0] != VERSION {
        return Err("unknown ack record version");
    }
    let kind = head[1];
    let u32_of = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let u64_of = |b: &[u8]| {
        let mut a = [0; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    };
    match kind {
        KIND_ACKS => {
            let count = u32_of(take(4)?);
            for _ in 0..count {
                let p = u32_of(take(4)?) as usize;
                let o = u64_of(take(8)?);
                let part = parts
                    .get_mut(p)
                    .ok_or("ack of a partition the topic lacks")?;
                if o >= part.prefix {
                    part.acked.insert(o);
                }
            }
        }
        KIND_SNAPSHOT => {
            let n = u32_of(take(4)?) as usize;
            if n != parts.len() {
                return Err("snapshot of another partition count");
            }
            for part in parts.iter_mut() {
                let prefix = u64_of(take(8)?);
                let count = u32_of(take(4)?);
                let mut acked = BTreeSet::new();
                for _ in 0..count {
                    acked.insert(u64_of(take(8)?));
                }
                *part = Part {
                    prefix,
                    acked,
                    scan: prefix,
                    ..Part::default()
                };
            }
        }
        _ => return Err("unknown ack record kind"),
    }
    if !r.is_empty() {
        return Err("trailing bytes in ack record");
    }
    Ok(())
}

/// Marks `offset` of partition `p` acked in memory: out of the window (freeing its key's
/// next message) and into the acked set.
fn settle_acked(st: &mut State, p: u32, offset: u64) {
    let part = &mut st.parts[p as usize];
    if let Some(e) = part.pending.remove(&offset) {
        if let Some(k) = e.key {
            if let Some(qk) = part.keys.get_mut(&k) {
                // Only a key's head is delivered, so it is almost always the front.
                if qk.front() == Some(&offset) {
                    qk.pop_front();
                } else {
                    qk.retain(|&o| o != offset);
                }
                if qk.is_empty() {
                    part.keys.remove(&k);
                }
            }
        }
        st.pending -= 1;
    }
    let part = &mut st.parts[p as usize];
    if offset >= part.prefix {
        part.acked.insert(offset);
        part.settle_prefix();
    }
}

fn snapshot_record(parts: &[Part]) -> Vec<u8> {
    let mut out = vec![VERSION, KIND_SNAPSHOT];
    out.extend_from_slice(&(parts.len() as u32).to_le_bytes());
    for part in parts {
        out.extend_from_slice(&part.prefix.to_le_bytes());
        out.extend_from_slice(&(part.acked.len() as u32).to_le_bytes());
        for o in &part.acked {
            out.extend_from_slice(&o.to_le_bytes());
        }
    }
    out
}

impl Topic {
    /// Fired when something may have become receivable: a produce is visible to
    /// consumers, or an ack or nack freed a key. Long-polling receivers wait on it.
    pub fn queue_wake(&self) -> &tokio::sync::Notify {
        &self.wake
    }

    /// The group's queue: opened from disk if it has a directory, else created when
    /// `create` (receive) or [`QueueError::NoSuchGroup`].
    fn queue(&self, group: &str, create: bool) -> Result<Arc<Queue>, QueueError> {
        self.check_live()?;
        super::validate_name(group).map_err(|_| TopicError::InvalidSpec {
            field: "group",
            reason: "use 1 to 200 characters of A-Z a-z 0-9 . _ -".into(),
        })?;
        let mut groups = lock(&self.groups);
        if let Some(q) = groups.get(group) {
            return Ok(Arc::clone(q));
        }
        let root = self.dir.join(GROUPS_DIR);
        let dir = root.join(group);
        if !dir.exists() {
            if !create {
                return Err(QueueError::NoSuchGroup {
                    topic: self.spec.name.clone(),
                    group: group.to_owned(),
                });
            }
            let existing = match std::fs::read_dir(&root) {
                Ok(entries) => entries.count(),
                Err(_) => 0,
            };
            if existing >= MAX_GROUPS {
                return Err(TopicError::TooManyGroups {
                    topic: self.spec.name.clone(),
                    max: MAX_GROUPS,
                }
                .into());
            }
            std::fs::create_dir_all(&dir).map_err(|e| TopicError::io(&dir, e))?;
            meta::sync_dir(&root)?;
            meta::sync_dir(&self.dir)?;
        }
        let q = Arc::new(Queue::open(self, dir)?);
        groups.insert(group.to_owned(), Arc::clone(&q));
        Ok(q)
    }

    /// Hands out up to `opts.max_messages` visible messages to `group` (created on first
    /// use), hiding each for the visibility timeout. Returns at once, maybe with none;
    /// long-polling is the caller's loop around [`Topic::queue_wake`]. Blocking (reads
    /// the partitions).
    ///
    /// # Errors
    /// A bad group name or option, a deleted topic, too many groups, or storage.
    pub fn receive(&self, group: &str, opts: ReceiveOptions) -> Result<Vec<Delivery>, QueueError> {
        if !(1..=MAX_RECEIVE).contains(&opts.max_messages) {
            return Err(TopicError::InvalidSpec {
                field: "max_messages",
                reason: format!(
                    "must be between 1 and {MAX_RECEIVE} (got {})",
                    opts.max_messages
                ),
            }
            .into());
        }
        if !(1..=MAX_VISIBILITY_MS).contains(&opts.visibility_timeout_ms) {
            return Err(TopicError::InvalidSpec {
                field: "visibility_timeout_ms",
                reason: format!(
                    "must be between 1 and {MAX_VISIBILITY_MS} (got {})",
                    opts.visibility_timeout_ms
                ),
            }
            .into());
        }
        let q = self.queue(group, true)?;
        let now = self.clock.now_ms();
        let deadline = now.saturating_add(opts.visibility_timeout_ms);
        let mut st = lock(&q.state);
        let n = self.logs.len();
        let first = st.rr % n;
        st.rr = (first + 1) % n;
        let quota = opts.max_messages.div_ceil(n);
        let mut got: Vec<Vec<Delivery>> = (0..n).map(|_| Vec::new()).collect();
        let mut total = 0;
        // First pass: a fair share from each partition; second: fill up from any.
        for pass in 0..2 {
            for i in 0..n {
                let p = (first + i) % n;
                let want = if pass == 0 {
                    quota.min(opts.max_messages - total)
                } else {
                    opts.max_messages - total
                };
                if want == 0 || (pass == 1 && got[p].len() < quota) {
                    continue;
                }
                let more = self.deliver_from(&q, &mut st, p, want, now, deadline)?;
                total += more.len();
                got[p].extend(more);
            }
        }
        drop(st);
        // Interleave: partitions take turns in the answer too.
        let mut out = Vec::with_capacity(total);
        let mut iters: Vec<_> = (0..n)
            .map(|i| std::mem::take(&mut got[(first + i) % n]).into_iter())
            .collect();
        while out.len() < total {
            for it in &mut iters {
                if let Some(d) = it.next() {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Up to `want` deliveries from partition `p`: visible window entries that head
    /// their key, lowest offset first, then new messages from the log. A message due
    /// for dead-lettering is moved instead (see [`dlq`]), which may free its key's next
    /// message: then a few more rounds look again.
    fn deliver_from(
        &self,
        q: &Queue,
        st: &mut State,
        p: usize,
        want: usize,
        now: u64,
        deadline: u64,
    ) -> Result<Vec<Delivery>, QueueError> {
        let mut out = Vec::new();
        for _ in 0..dlq::MAX_ROUNDS {
            let mut dead = 0;
            let more = self.deliver_round(q, st, p, want - out.len(), now, deadline, &mut dead)?;
            out.extend(more);
            if dead == 0 || out.len() >= want {
                break;
            }
        }
        Ok(out)
    }

    /// One round of [`Topic::deliver_from`]; counts dead-lettered messages in `dead`.
    #[allow(clippy::too_many_arguments)]
    fn deliver_round(
        &self,
        q: &Queue,
        st: &mut State,
        p: usize,
        want: usize,
        now: u64,
        deadline: u64,
        dead: &mut usize,
    ) -> Result<Vec<Delivery>, QueueError> {
        let log = &self.logs[p];
        let dropped = st.parts[p].trim_to(log.start_offset());
        st.pending -= dropped;
        let part = &st.parts[p];
        let mut chosen: Vec<(u64, Option<StoredMessage>)> = part
            .pending
            .iter()
            .filter(|(o, e)| e.visible(now) && part.is_head(**o, e.key.as_ref()))
            .map(|(o, _)| (*o, None))
            .take(want)
            .collect();
        // Read on from the log while more are wanted and the bounds allow. Pages start
        // at what is wanted (what a page holds past the first `want` heads is read again
        // by the next receive, so a large page is mostly wasted decoding) and double
        // while messages behind busy keys fill them.
        let mut page_len = (want - chosen.len()).max(1);
        'read: while chosen.len() < want {
            let part = &st.parts[p];
            if st.pending >= MAX_IN_FLIGHT || part.scan - part.prefix >= MAX_WINDOW {
                break;
            }
            let limit = page_len.min(READ_MESSAGES);
            page_len = page_len.saturating_mul(2);
            let max_bytes = limit.saturating_mul(PAGE_BYTES_PER_MESSAGE).min(READ_BYTES);
            let page = match self.fetch(p as u32, part.scan, limit, max_bytes) {
                Ok(page) => page,
                // Retention moved the start since the trim above; the next receive trims.
                Err(TopicError::OffsetOutOfRange { .. }) => break,
                Err(e) => return Err(e.into()),
            };
            if page.messages.is_empty() {
                break;
            }
            for m in page.messages {
                let part = &mut st.parts[p];
                part.scan = m.offset + 1;
                if part.acked.contains(&m.offset) {
                    continue;
                }
                let key = m.message.key.clone();
                if let Some(k) = &key {
                    part.keys.entry(k.clone()).or_default().push_back(m.offset);
                }
                let head = part.is_head(m.offset, key.as_ref());
                part.pending.insert(
                    m.offset,
                    Entry {
                        key,
                        deliveries: 0,
                        slot: Slot::Ready,
                        last_error: None,
                    },
                );
                st.pending += 1;
                if head {
                    chosen.push((m.offset, Some(m)));
                }
                let part = &st.parts[p];
                if chosen.len() >= want
                    || st.pending >= MAX_IN_FLIGHT
                    || part.scan - part.prefix >= MAX_WINDOW
                {
                    break 'read;
                }
            }
        }
        let mut out = Vec::with_capacity(chosen.len());
        for (offset, stored) in chosen {
            let stored = match stored {
                Some(s) => s,
                None => match self.fetch(p as u32, offset, 1, READ_BYTES) {
                    Ok(page) => match page.messages.into_iter().next() {
                        Some(s) if s.offset == offset => s,
                        _ => continue,
                    },
                    // Retention removed it since the trim above; the next receive trims.
                    Err(TopicError::OffsetOutOfRange { .. }) => continue,
                    Err(e) => return Err(e.into()),
                },
            };
            let Some(entry) = st.parts[p].pending.get(&offset) else {
                continue;
            };
            if self.dead_letter_due(entry.deliveries) {
                self.dead_letter(q, st, p, stored)?;
                *dead += 1;
                continue;
            }
            let Some(entry) = st.parts[p].pending.get_mut(&offset) else {
                continue;
            };
            entry.deliveries = entry.deliveries.saturating_add(1);
            entry.slot = Slot::InFlight { deadline };
            entry.last_error = None;
            out.push(Delivery {
                receipt: Receipt {
                    epoch: q.epoch,
                    partition: p as u32,
                    offset,
                    delivery: entry.deliveries,
                }
                .encode(),
                partition: p as u32,
                delivery_count: entry.deliveries,
                stored,
            });
        }
        Ok(out)
    }

    /// Finds the current delivery a receipt names, or why it is not current.
    fn current<'a>(
        &self,
        q: &Queue,
        st: &'a mut State,
        receipt: &str,
    ) -> Result<(Receipt, &'a mut Entry), QueueError> {
        let r = Receipt::parse(receipt)?;
        if r.partition as usize >= self.logs.len() {
            return Err(QueueError::BadReceipt(receipt.chars().take(100).collect()));
        }
        if r.epoch != q.epoch {
            return Err(QueueError::ReceiptExpired);
        }
        match st.parts[r.partition as usize].pending.get_mut(&r.offset) {
            Some(e) if e.deliveries == r.delivery && matches!(e.slot, Slot::InFlight { .. }) => {
                Ok((r, e))
            }
            _ => Err(QueueError::ReceiptExpired),
        }
    }

    /// Acks deliveries: each current receipt's message is never delivered to `group`
    /// again. Applied at once in memory; await [`Acked::durable`] before answering.
    /// Blocking (may compact the group's log).
    ///
    /// # Errors
    /// An unknown group, a receipt that does not parse (then nothing is acked), or a
    /// failed log. A receipt that is not current is reported in its result.
    pub fn ack(&self, group: &str, receipts: &[String]) -> Result<Acked, QueueError> {
        let q = self.queue(group, false)?;
        for r in receipts {
            Receipt::parse(r)?;
        }
        let mut st = lock(&q.state);
        let mut results = Vec::with_capacity(receipts.len());
        let mut offsets = Vec::with_capacity(receipts.len());
        for receipt in receipts {
            match self.current(&q, &mut st, receipt) {
                Ok((r, _)) => {
                    // Taken out at once, so the same receipt twice acks once.
                    settle_acked(&mut st, r.partition, r.offset);
                    offsets.push((r.partition, r.offset));
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let durable = self.record_acks(&q, st, &offsets)?;
        Ok(Acked { results, durable })
    }

    /// Appends an ack record for `offsets` (already settled in `st`), snapshots the
    /// group's log when due, wakes receivers; the wait for the record to be durable
    /// under the topic's policy (`None`: nothing to wait for).
    fn record_acks(
        &self,
        q: &Queue,
        mut st: std::sync::MutexGuard<'_, State>,
        offsets: &[(u32, u64)],
    ) -> Result<Option<DurableWait>, QueueError> {
        if offsets.is_empty() {
            return Ok(None);
        }
        let mut record = Vec::with_capacity(6 + 12 * offsets.len());
        record.extend_from_slice(&[VERSION, KIND_ACKS]);
        record.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
        for (p, o) in offsets {
            record.extend_from_slice(&p.to_le_bytes());
            record.extend_from_slice(&o.to_le_bytes());
        }
        let now = self.clock.now_ms();
        let mut last = q.log.append(now, &record)?;
        st.since_snapshot += 1;
        let acked_above: usize = st.parts.iter().map(|p| p.acked.len()).sum();
        let mut snapshot_at = None;
        if st.since_snapshot >= COMPACT_MIN_RECORDS.max(acked_above as u64)
            && acked_above <= MAX_SNAPSHOT_OFFSETS
        {
            last = q.log.append(now, &snapshot_record(&st.parts))?;
            st.since_snapshot = 0;
            snapshot_at = Some(last);
        }
        drop(st);
        self.wake.notify_waiters();
        if let Some(at) = snapshot_at {
            // Everything before the snapshot is overridden by it, once it is on disk
            // (`delete_before` itself syncs only the records before it).
            q.log.sync()?;
            q.log.delete_before(at)?;
        }
        Ok(match self.spec.fsync {
            TopicFsync::Interval => None,
            TopicFsync::Always | TopicFsync::Never => Some(Box::pin(q.log.wait_durable(last))),
        })
    }

    /// Takes the deliveries `receipts` name out of circulation for a transaction: all
    /// of them, or none (then the error names why). They stay hidden, their receipts
    /// stop being current, and nothing is written yet: [`Topic::abort_commit`] gives
    /// them back, [`Topic::finish_commit`] acks them.
    ///
    /// # Errors
    /// An unknown group, a receipt that does not parse or is listed twice, or one that
    /// is not current.
    pub(crate) fn begin_commit(
        &self,
        group: &str,
        receipts: &[String],
    ) -> Result<(Arc<Queue>, Vec<PartitionOffset>), QueueError> {
        let q = self.queue(group, false)?;
        let mut seen = std::collections::HashSet::with_capacity(receipts.len());
        for r in receipts {
            let parsed = Receipt::parse(r)?;
            if !seen.insert((parsed.partition, parsed.offset)) {
                return Err(TopicError::InvalidSpec {
                    field: "ack",
                    reason: format!("receipt '{r}' names a message another receipt names"),
                }
                .into());
            }
        }
        let mut st = lock(&q.state);
        for receipt in receipts {
            self.current(&q, &mut st, receipt)?;
        }
        let mut offsets = Vec::with_capacity(receipts.len());
        for receipt in receipts {
            let (r, entry) = self.current(&q, &mut st, receipt)?;
            let Slot::InFlight { deadline } = entry.slot else {
                unreachable!("current() only returns in-flight deliveries");
            };
            entry.slot = Slot::Committing { deadline };
            offsets.push((r.partition, r.offset));
        }
        drop(st);
        Ok((q, offsets))
    }

    /// Gives back deliveries [`Topic::begin_commit`] took: in flight again until their
    /// old deadline, under their old receipts.
    pub(crate) fn abort_commit(&self, q: &Queue, offsets: &[(u32, u64)]) {
        let mut st = lock(&q.state);
        for &(p, o) in offsets {
            if let Some(e) = st.parts[p as usize].pending.get_mut(&o) {
                if let Slot::Committing { deadline } = e.slot {
                    e.slot = Slot::InFlight { deadline };
                }
            }
        }
        drop(st);
        // A deadline that passed meanwhile makes them receivable now.
        self.wake.notify_waiters();
    }

    /// Acks what [`Topic::begin_commit`] took (or, at recovery, any offsets): settles
    /// them and appends one ack record; the wait for it to be durable.
    ///
    /// # Errors
    /// The group's log failed.
    pub(crate) fn finish_commit(
        &self,
        q: &Queue,
        offsets: &[(u32, u64)],
    ) -> Result<Option<DurableWait>, QueueError> {
        let mut st = lock(&q.state);
        let n = st.parts.len();
        let offsets: Vec<(u32, u64)> = offsets
            .iter()
            .copied()
            .filter(|&(p, _)| (p as usize) < n)
            .collect();
        for &(p, o) in &offsets {
            settle_acked(&mut st, p, o);
        }
        self.record_acks(q, st, &offsets)
    }

    /// The group's queue if it exists (on disk or open).
    pub(crate) fn existing_queue(&self, group: &str) -> Result<Arc<Queue>, QueueError> {
        self.queue(group, false)
    }

    /// Makes a delivery visible again after `delay_ms` (0: at once). Its key stays held
    /// until it is acked, so later messages of the key still wait.
    ///
    /// # Errors
    /// An unknown group, a receipt that does not parse or is not current.
    pub fn nack(&self, group: &str, receipt: &str, delay_ms: u64) -> Result<(), QueueError> {
        self.nack_with_error(group, receipt, delay_ms, None)
    }

    /// [`Topic::nack`], recording why the consumer gave the message back: if it is
    /// dead-lettered before its next delivery, `error` (cut to
    /// [`dlq::MAX_ERROR_BYTES`]) goes with it as `x-dlq-last-error`.
    ///
    /// # Errors
    /// As [`Topic::nack`].
    pub fn nack_with_error(
        &self,
        group: &str,
        receipt: &str,
        delay_ms: u64,
        error: Option<&str>,
    ) -> Result<(), QueueError> {
        let q = self.queue(group, false)?;
        let mut st = lock(&q.state);
        let (_, entry) = self.current(&q, &mut st, receipt)?;
        entry.last_error = error.map(dlq::truncate_error);
        entry.slot = if delay_ms == 0 {
            Slot::Ready
        } else {
            Slot::Delayed {
                until: self.clock.now_ms().saturating_add(delay_ms),
            }
        };
        drop(st);
        self.wake.notify_waiters();
        Ok(())
    }

    /// Hides a delivery for `visibility_timeout_ms` from now; the receipt stays current.
    ///
    /// # Errors
    /// An unknown group, a timeout out of range, a receipt that does not parse or is not
    /// current.
    pub fn extend(
        &self,
        group: &str,
        receipt: &str,
        visibility_timeout_ms: u64,
    ) -> Result<(), QueueError> {
        if !(1..=MAX_VISIBILITY_MS).contains(&visibility_timeout_ms) {
            return Err(TopicError::InvalidSpec {
                field: "visibility_timeout_ms",
                reason: format!(
                    "must be between 1 and {MAX_VISIBILITY_MS} (got {visibility_timeout_ms})"
                ),
            }
            .into());
        }
        let q = self.queue(group, false)?;
        let mut st = lock(&q.state);
        let (_, entry) = self.current(&q, &mut st, receipt)?;
        entry.slot = Slot::InFlight {
            deadline: self.clock.now_ms().saturating_add(visibility_timeout_ms),
        };
        Ok(())
    }
}

/// One consumer group's position on a topic, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    /// The group.
    pub group: String,
    /// `"queue"` (receive/ack) or `"log"` (fetch and committed offsets): the two are
    /// separate groups even under one name.
    pub mode: &'static str,
    /// Per partition, messages below the high watermark the group has not consumed:
    /// not acked (queue mode), or at or past the committed offset (log mode; only
    /// partitions with a committed offset).
    pub lag: Vec<(u32, u64)>,
    /// Queue mode: deliveries hidden awaiting their ack (in flight, or in a committing
    /// transaction). Log mode: 0.
    pub in_flight: u64,
}

impl Topic {
    /// Every consumer group's lag: queue groups used since the topic was opened (a group
    /// nobody has received from or acked for since the start is not loaded), and every
    /// group with committed offsets. Internal groups (`__…`) are left out.
    pub fn consumer_lag(&self) -> Vec<GroupLag> {
        let hws: Vec<u64> = self.logs.iter().map(|l| self.high_watermark(l)).collect();
        let now = self.clock.now_ms();
        let queues: Vec<Arc<Queue>> = lock(&self.groups).values().cloned().collect();
        let mut out = Vec::with_capacity(queues.len());
        for q in queues {
            let st = lock(&q.state);
            let lag = st
                .parts
                .iter()
                .zip(&hws)
                .enumerate()
                .map(|(p, (part, &hw))| {
                    // Acked offsets at or past the watermark are rare (none under
                    // `always`): counting those is the short walk.
                    let acked_below = (part.acked.len() - part.acked.range(hw..).count()) as u64;
                    (
                        p as u32,
                        hw.saturating_sub(part.prefix).saturating_sub(acked_below),
                    )
                })
                .collect();
            let in_flight = st
                .parts
                .iter()
                .flat_map(|p| p.pending.values())
                .filter(|e| match e.slot {
                    Slot::InFlight { deadline } => deadline > now,
                    Slot::Committing { .. } => true,
                    Slot::Ready | Slot::Delayed { .. } => false,
                })
                .count() as u64;
            out.push(GroupLag {
                group: q.group.clone(),
                mode: "queue",
                lag,
                in_flight,
            });
        }
        for (group, committed) in lock(&self.offsets).iter() {
            if group.starts_with("__") {
                continue;
            }
            let lag = committed
                .iter()
                .filter_map(|(&p, &o)| Some((p, hws.get(p as usize)?.saturating_sub(o))))
                .collect();
            out.push(GroupLag {
                group: group.clone(),
                mode: "log",
                lag,
                in_flight: 0,
            });
        }
        out.sort_by(|a, b| (a.mode, &a.group).cmp(&(b.mode, &b.group)));
        out
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod engine_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip_and_refuse_anything_else() {
        let r = Receipt {
            epoch: 0xdead_beef,
            partition: 3,
            offset: u64::MAX,
            delivery: 7,
        };
        assert_eq!(Receipt::parse(&r.encode()).unwrap(), r);
        for bad in [
            "",
            "x",
            "1.2.3",
            "1.2.3.4.5",
            "g.1.2.3",
            "A.1.2.3",
            "1.-1.2.3",
            "1.1.2.0",
            "1..2.3",
            "1.1.2.+3",
            "1.99999999999.2.3",
        ] {
            assert!(
                matches!(Receipt::parse(bad), Err(QueueError::BadReceipt(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ack_records_replay_and_snapshots_override() {
        let mut parts: Vec<Part> = (0..2).map(|_| Part::default()).collect();
        let mut rec = vec![VERSION, KIND_ACKS, 3, 0, 0, 0];
        for (p, o) in [(0u32, 0u64), (0, 2), (1, 5)] {
            rec.extend_from_slice(&p.to_le_bytes());
            rec.extend_from_slice(&o.to_le_bytes());
        }
        replay(&mut parts, &rec).unwrap();
        for p in &mut parts {
            p.settle_prefix();
        }
        assert_eq!((parts[0].prefix, parts[0].acked.len()), (1, 1));
        assert_eq!((parts[1].prefix, parts[1].acked.len()), (0, 1));
        let snap = snapshot_record(&parts);
        let mut fresh: Vec<Part> = (0..2).map(|_| Part::default()).collect();
        replay(&mut fresh, &snap).unwrap();
        assert_eq!(fresh[0].prefix, 1);
        assert!(fresh[0].acked.contains(&2) && fresh[1].acked.contains(&5));
        assert!(replay(&mut fresh[..1], &snap).is_err());
        assert!(replay(&mut fresh, &rec[..rec.len() - 1]).is_err());
        assert!(replay(&mut fresh, &[2, 1]).is_err());
    }
}
