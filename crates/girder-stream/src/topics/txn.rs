//! Exactly-once consume-transform-produce: one transaction acks deliveries of a
//! (topic, queue group) and produces messages to any topics, all or nothing.
//!
//! # Protocol
//! 1. **Prepare** ([`Topics::prepare_txn`], blocking): check everything that can be
//!    checked (topics, limits, receipts), take the acked deliveries out of circulation
//!    (hidden, receipts no longer current — so two transactions never ack one delivery),
//!    place every output message on its partition, and append one **commit record** —
//!    the acks, the placed outputs, and each output partition's end offset — to the
//!    transaction log `<topics dir>/~txn/` (a `girder-log`, `fsync = always`). A failure
//!    before that append gives the deliveries back; nothing happened.
//! 2. **Commit**: wait until the commit record is fsynced ([`PreparedTxn::committed`]).
//!    That fsync is the commit point: from then on the transaction happens, whatever
//!    crashes.
//! 3. **Apply** ([`Topics::apply_txn`], blocking): append the outputs to their partitions,
//!    each tagged with (commit offset, index) in its record (never shown to consumers),
//!    and ack the inputs in the group's log.
//! 4. **Answer** ([`AppliedTxn::durable`]) once outputs and acks are durable under their
//!    topics' own policies, as `produce` and `ack` answer.
//!
//! # Recovery
//! A **checkpoint** record `(upto, pending)` says: every transaction committed below
//! `upto`, except those in `pending`, is applied and its outputs and acks are fsynced.
//! [`Topics::checkpoint_transactions`] (every second, and at shutdown) takes the log's
//! end and the commits still being applied (or whose apply failed), fsyncs every
//! partition and group log that transactions touched since the last checkpoint, then
//! writes the checkpoint; so one failed apply does not hold back the checkpoints of all
//! later transactions. At open, every commit at or after the last checkpoint's `upto`,
//! or in its `pending`, is applied again, idempotently: acking an acked offset changes
//! nothing (acks of offsets a power loss took from the input partition are dropped),
//! and each output partition a pending commit names is scanned from the lowest end
//! offset those commits recorded (outputs are appended after the commit, so at or after
//! it) for tags; an output whose tag is found is not appended again. Then a checkpoint.
//!
//! # Invariants
//! - A transaction whose commit record is durable has all its outputs appended once and
//!   all its acks applied, after any number of crashes; one whose commit record is not
//!   has none (its deliveries come back, as every unacked delivery does after a
//!   restart).
//! - Before the commit point a delivery in a transaction is never delivered again (it is
//!   hidden, not acked); a receipt is in at most one transaction.
//! - Outputs of one transaction to one key keep request order (one partition, appended
//!   in order).
//!
//! What stays at-least-once: whatever the consumer does outside Girder while processing
//! (an email sent twice if the consumer dies after sending and before committing).

use super::queue::{Queue, QueueError};
use super::{lock, record, DurableWait, Message, Origin, Produced, Topic, TopicError, Topics};
use girder_log::{FsyncPolicy, Log, LogConfig, LogError};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The transaction log's directory under the topics directory (`~` is not allowed in
/// topic names).
pub const TXN_DIR: &str = "~txn";
/// Most receipts one transaction acks.
pub const MAX_TXN_ACKS: usize = 100;
/// Most messages one transaction produces.
pub const MAX_TXN_MESSAGES: usize = 1000;
/// Most bytes of messages ([`Message::size`]) one transaction produces.
pub const MAX_TXN_BYTES: usize = 16 << 20;
/// Most output entries (topics) in one transaction.
pub const MAX_TXN_OUTPUTS: usize = 100;
/// Records below a checkpoint before the log's start is moved past them.
const COMPACT_RECORDS: u64 = 64;

const VERSION: u8 = 1;
const KIND_COMMIT: u8 = 1;
const KIND_CHECKPOINT: u8 = 2;

/// Messages for one topic in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOutput {
    /// The topic.
    pub topic: String,
    /// Its messages, in order.
    pub messages: Vec<Message>,
}

/// A transaction: ack `acks` (receipts of `group` on `topic`) and produce `produce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRequest {
    /// The topic the acked messages came from.
    pub topic: String,
    /// The queue group that received them.
    pub group: String,
    /// 1 to [`MAX_TXN_ACKS`] receipts.
    pub acks: Vec<String>,
    /// What to produce (at most [`MAX_TXN_MESSAGES`] messages in all).
    pub produce: Vec<TxnOutput>,
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResult {
    /// Deliveries acked.
    pub acked: usize,
    /// Per output topic of the request, per message: where it is (or, for an id seen in
    /// the topic's dedup window, the original's place, with `duplicate`).
    pub produced: Vec<Vec<Produced>>,
}

/// How a tagged append places and marks messages (see [`Topic::append_inner`]).
#[derive(Debug)]
pub(crate) struct Tagged<'a> {
    /// The commit record's offset.
    pub txn: u64,
    /// Per message, its partition.
    pub partitions: &'a [u32],
    /// Per message, its index among the transaction's outputs.
    pub indexes: &'a [u32],
}

/// A decoded commit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Commit {
    topic: String,
    group: String,
    acks: Vec<(u32, u64)>,
    pub(crate) outputs: Vec<CommitOutput>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitOutput {
    topic: String,
    /// Each partition written to, with its end offset before the commit.
    hints: Vec<(u32, u64)>,
    /// Per message, its partition.
    pub(crate) partitions: Vec<u32>,
    messages: Vec<Message>,
}

impl Commit {
    /// Per output topic, the outputs' indexes in the transaction.
    fn indexes(&self) -> Vec<Vec<u32>> {
        let mut next = 0u32;
        self.outputs
            .iter()
            .map(|o| {
                let ix: Vec<u32> = (next..next + o.messages.len() as u32).collect();
                next += o.messages.len() as u32;
                ix
            })
            .collect()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode_commit(c: &Commit) -> Vec<u8> {
    let mut out = vec![VERSION, KIND_COMMIT];
    put_str(&mut out, &c.topic);
    put_str(&mut out, &c.group);
    out.extend_from_slice(&(c.acks.len() as u32).to_le_bytes());
    for (p, o) in &c.acks {
        out.extend_from_slice(&p.to_le_bytes());
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&(c.outputs.len() as u32).to_le_bytes());
    let mut buf = Vec::new();
    for o in &c.outputs {
        put_str(&mut out, &o.topic);
        out.extend_from_slice(&(o.hints.len() as u32).to_le_bytes());
        for (p, end) in &o.hints {
            out.extend_from_slice(&p.to_le_bytes());
            out.extend_from_slice(&end.to_le_bytes());
        }
        out.extend_from_slice(&(o.messages.len() as u32).to_le_bytes());
        for (m, p) in o.messages.iter().zip(&o.partitions) {
            buf.clear();
            record::encode(m, &mut buf);
            out.extend_from_slice(&p.to_le_bytes());
            out.extend_from_slice(&(buf.len() as u32).to_le_bytes());
            out.extend_from_slice(&buf);
        }
    }
    out
}

/// A transaction-log record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TxnRecord {
    Commit(Commit),
    /// `upto` and the commits below it still pending.
    Checkpoint(u64, Vec<u64>),
}

fn encode_checkpoint(upto: u64, pending: &BTreeSet<u64>) -> Vec<u8> {
    let mut rec = vec![VERSION, KIND_CHECKPOINT];
    rec.extend_from_slice(&upto.to_le_bytes());
    rec.extend_from_slice(&(pending.len() as u32).to_le_bytes());
    for p in pending {
        rec.extend_from_slice(&p.to_le_bytes());
    }
    rec
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated transaction record");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self) -> Result<String, &'static str> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a name is not UTF-8")
    }
    /// A count of items at least `min_bytes` long each, checked against what is left.
    fn count(&mut self, min_bytes: usize) -> Result<usize, &'static str> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_bytes) > self.0.len() {
            return Err("count larger than the record");
        }
        Ok(n)
    }
}

fn decode(payload: &[u8]) -> Result<TxnRecord, &'static str> {
    let mut r = Reader(payload);
    let head = r.take(2)?;
    if head[0] != VERSION {
        return Err("unknown transaction record version");
    }
    let rec = match head[1] {
        KIND_COMMIT => {
            let topic = r.string()?;
            let group = r.string()?;
            let n = r.count(12)?;
            let mut acks = Vec::with_capacity(n);
            for _ in 0..n {
                acks.push((r.u32()?, r.u64()?));
            }
            let n = r.count(12)?;
            let mut outputs = Vec::with_capacity(n);
            for _ in 0..n {
                let topic = r.string()?;
                let h = r.count(12)?;
                let mut hints = Vec::with_capacity(h);
                for _ in 0..h {
                    hints.push((r.u32()?, r.u64()?));
                }
                let m = r.count(8)?;
                let mut partitions = Vec::with_capacity(m);
                let mut messages = Vec::with_capacity(m);
                for _ in 0..m {
                    partitions.push(r.u32()?);
                    let len = r.u32()? as usize;
                    let bytes = r.take(len)?;
                    messages.push(record::decode(bytes).map_err(|e| e.0)?);
                }
                outputs.push(CommitOutput {
                    topic,
                    hints,
                    partitions,
                    messages,
                });
            }
            TxnRecord::Commit(Commit {
                topic,
                group,
                acks,
                outputs,
            })
        }
        KIND_CHECKPOINT => {
            let upto = r.u64()?;
            let n = r.count(8)?;
            let mut pending = Vec::with_capacity(n);
            for _ in 0..n {
                pending.push(r.u64()?);
            }
            TxnRecord::Checkpoint(upto, pending)
        }
        _ => return Err("unknown transaction record kind"),
    };
    if !r.0.is_empty() {
        return Err("trailing bytes in transaction record");
    }
    Ok(rec)
}

/// What the transaction log tracks between checkpoints.
#[derive(Debug, Default)]
struct TxnState {
    /// The last checkpoint's `pending`.
    checkpoint_pending: BTreeSet<u64>,
    /// Commits appended whose apply has not finished.
    in_progress: BTreeSet<u64>,
    /// Partitions `(topic, partition)` transactions appended to since the last checkpoint.
    parts: BTreeSet<(String, u32)>,
    /// Groups `(topic, group)` transactions acked in since the last checkpoint.
    groups: BTreeSet<(String, String)>,
    /// The last checkpoint's `upto`.
    checkpoint: u64,
}

/// The transaction log of a [`Topics`].
pub(crate) struct TxnLog {
    log: Log,
    state: Mutex<TxnState>,
    /// Held through a whole checkpoint, so two never interleave their syncs and records.
    checkpointing: Mutex<()>,
}

impl fmt::Debug for TxnLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxnLog")
            .field("dir", &self.log.dir())
            .finish_non_exhaustive()
    }
}

impl TxnLog {
    pub(crate) fn open(topics_dir: &Path) -> Result<Self, TopicError> {
        let dir = topics_dir.join(TXN_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| TopicError::io(&dir, e))?;
        let config = LogConfig {
            segment_bytes: 8 << 20,
            max_record_bytes: (MAX_TXN_BYTES + (4 << 20)) as u32,
            fsync: FsyncPolicy::Always,
            ..LogConfig::default()
        };
        let (log, _report) = Log::open(&dir, config)?;
        // The directory entry itself must survive a power loss.
        super::meta::sync_dir(topics_dir)?;
        Ok(Self {
            log,
            state: Mutex::new(TxnState::default()),
            checkpointing: Mutex::new(()),
        })
    }

    fn damaged(&self, offset: u64, reason: &str) -> TopicError {
        TopicError::Damaged {
            path: self.log.dir().to_owned(),
            reason: format!("offset {offset}: {reason}"),
        }
    }
}

/// A transaction whose commit record is appended; see the module docs. Drive it to
/// [`Topics::apply_txn`]: dropped before, its deliveries stay hidden and its outputs
/// unwritten until the next start completes it (callers that may be cancelled, like an
/// HTTP handler, run the steps in a task of their own).
pub struct PreparedTxn {
    pub(crate) txn: u64,
    input: Arc<Topic>,
    queue: Arc<Queue>,
    pub(crate) commit: Commit,
    outputs: Vec<Arc<Topic>>,
    durable: Option<DurableWait>,
}

impl fmt::Debug for PreparedTxn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedTxn")
            .field("txn", &self.txn)
            .finish_non_exhaustive()
    }
}

impl PreparedTxn {
    /// Waits for the commit point: the commit record fsynced.
    ///
    /// # Errors
    /// The transaction log failed. Whether the transaction happened is then unknown
    /// until a restart: its deliveries stay hidden, and recovery applies it if its
    /// record reached the disk (else they come back).
    pub async fn committed(&mut self) -> Result<(), QueueError> {
        if let Some(wait) = self.durable.take() {
            wait.await?;
        }
        Ok(())
    }
}

/// A transaction applied; [`AppliedTxn::durable`] waits for its outputs and acks.
pub struct AppliedTxn {
    result: TxnResult,
    waits: Vec<DurableWait>,
    wake: Vec<Arc<Topic>>,
}

impl fmt::Debug for AppliedTxn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppliedTxn")
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}

impl AppliedTxn {
    /// Waits until outputs and acks are durable under their topics' policies, wakes
    /// receivers of the output topics, and gives the result.
    ///
    /// # Errors
    /// A log failed after the commit point: the transaction still happens (recovery
    /// completes it at the next start), but this answer cannot say it is durable.
    pub async fn durable(self) -> Result<TxnResult, QueueError> {
        for w in self.waits {
            w.await?;
        }
        for t in &self.wake {
            t.queue_wake().notify_waiters();
        }
        Ok(self.result)
    }
}

impl Topics {
    /// Steps 1 of the protocol (module docs): checks, takes the deliveries, appends the
    /// commit record. Blocking.
    ///
    /// # Errors
    /// Unknown topics or group (404), limits and malformed receipts (422), a receipt that
    /// is not current (410; then nothing happened), or the transaction log failing.
    pub fn prepare_txn(&self, req: TxnRequest) -> Result<PreparedTxn, QueueError> {
        if req.acks.is_empty() || req.acks.len() > MAX_TXN_ACKS {
            return Err(TopicError::InvalidSpec {
                field: "ack",
                reason: format!(
                    "must hold 1 to {MAX_TXN_ACKS} receipts (got {})",
                    req.acks.len()
                ),
            }
            .into());
        }
        if req.produce.len() > MAX_TXN_OUTPUTS {
            return Err(TopicError::InvalidSpec {
                field: "produce",
                reason: format!(
                    "at most {MAX_TXN_OUTPUTS} entries (got {})",
                    req.produce.len()
                ),
            }
            .into());
        }
        if let Some(o) = req.produce.iter().find(|o| o.messages.is_empty()) {
            return Err(TopicError::InvalidSpec {
                field: "produce",
                reason: format!("the entry for topic '{}' has no messages", o.topic),
            }
            .into());
        }
        let count: usize = req.produce.iter().map(|o| o.messages.len()).sum();
        if count > MAX_TXN_MESSAGES {
            return Err(TopicError::InvalidSpec {
                field: "produce",
                reason: format!("at most {MAX_TXN_MESSAGES} messages in all (got {count})"),
            }
            .into());
        }
        let input = self
            .get(&req.topic)
            .ok_or_else(|| TopicError::NoSuchTopic(req.topic.clone()))?;
        let mut outputs = Vec::with_capacity(req.produce.len());
        let mut bytes = 0usize;
        for o in &req.produce {
            let t = self
                .get(&o.topic)
                .ok_or_else(|| TopicError::NoSuchTopic(o.topic.clone()))?;
            for m in &o.messages {
                t.check_message(m)?;
                bytes += m.size();
            }
            outputs.push(t);
        }
        if bytes > MAX_TXN_BYTES {
            return Err(TopicError::InvalidSpec {
                field: "produce",
                reason: format!("at most {MAX_TXN_BYTES} bytes of messages in all (got {bytes})"),
            }
            .into());
        }
        let (queue, acks) = input.begin_commit(&req.group, &req.acks)?;
        let commit_outputs = req
            .produce
            .into_iter()
            .zip(&outputs)
            .map(|(o, t)| {
                let partitions: Vec<u32> = o.messages.iter().map(|m| t.place(m)).collect();
                let hints = partitions
                    .iter()
                    .copied()
                    .collect::<BTreeSet<u32>>()
                    .into_iter()
                    .map(|p| (p, t.logs[p as usize].end_offset()))
                    .collect();
                CommitOutput {
                    topic: o.topic,
                    hints,
                    partitions,
                    messages: o.messages,
                }
            })
            .collect();
        let commit = Commit {
            topic: req.topic,
            group: req.group,
            acks,
            outputs: commit_outputs,
        };
        let record = encode_commit(&commit);
        let appended = {
            let mut st = lock(&self.txn.state);
            let r = self.txn.log.append(self.config.clock.now_ms(), &record);
            if let Ok(at) = r {
                st.in_progress.insert(at);
            }
            r
        };
        let txn = match appended {
            Ok(at) => at,
            Err(e) => {
                input.abort_commit(&queue, &commit.acks);
                return Err(e.into());
            }
        };
        Ok(PreparedTxn {
            txn,
            input,
            queue,
            durable: Some(Box::pin(self.txn.log.wait_durable(txn))),
            commit,
            outputs,
        })
    }

    /// Step 3 (module docs), after [`PreparedTxn::committed`]: appends the outputs and
    /// acks the inputs. Blocking.
    ///
    /// # Errors
    /// A log failed, or an output topic was deleted since the prepare
    /// ([`TopicError::NoSuchTopic`]: its outputs are gone with it; the rest is applied). The transaction is committed either way;
    /// recovery completes what a failed log left undone.
    pub fn apply_txn(&self, p: PreparedTxn) -> Result<AppliedTxn, QueueError> {
        let mut waits = Vec::new();
        let mut produced = Vec::with_capacity(p.outputs.len());
        let mut deleted = None;
        for ((o, t), ix) in p
            .commit
            .outputs
            .iter()
            .zip(&p.outputs)
            .zip(p.commit.indexes())
        {
            let tagged = Tagged {
                txn: p.txn,
                partitions: &o.partitions,
                indexes: &ix,
            };
            match t.append_inner(&o.messages, Origin::Producer, Some(&tagged)) {
                Ok(results) => {
                    waits.extend(t.durable_waits(&results));
                    produced.push(results);
                }
                Err(TopicError::NoSuchTopic(name)) => {
                    deleted = Some(name);
                    produced.push(Vec::new());
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(w) = p.input.finish_commit(&p.queue, &p.commit.acks)? {
            waits.push(w);
        }
        {
            let mut st = lock(&self.txn.state);
            for (o, t) in p.commit.outputs.iter().zip(&p.outputs) {
                for &(part, _) in &o.hints {
                    st.parts.insert((t.spec.name.clone(), part));
                }
            }
            st.groups
                .insert((p.commit.topic.clone(), p.commit.group.clone()));
            st.in_progress.remove(&p.txn);
        }
        if let Some(name) = deleted {
            // Committed and applied, but one output topic's messages went with it.
            return Err(TopicError::NoSuchTopic(name).into());
        }
        Ok(AppliedTxn {
            result: TxnResult {
                acked: p.commit.acks.len(),
                produced,
            },
            waits,
            wake: p.outputs,
        })
    }

    /// Writes a checkpoint (module docs) if transactions finished since the last one.
    /// Blocking (fsyncs what they touched).
    ///
    /// # Errors
    /// A log that fails to sync (then no checkpoint is written, and the next try syncs
    /// the same logs again).
    pub fn checkpoint_transactions(&self) -> Result<(), TopicError> {
        let _one = lock(&self.txn.checkpointing);
        let (upto, pending, parts, groups) = {
            let mut st = lock(&self.txn.state);
            let upto = self.txn.log.end_offset();
            if upto == st.checkpoint
                && st.parts.is_empty()
                && st.groups.is_empty()
                && st.in_progress == st.checkpoint_pending
            {
                return Ok(());
            }
            (
                upto,
                st.in_progress.clone(),
                std::mem::take(&mut st.parts),
                std::mem::take(&mut st.groups),
            )
        };
        let synced = self.sync_touched(&parts, &groups).and_then(|()| {
            let rec = encode_checkpoint(upto, &pending);
            self.txn.log.append(self.config.clock.now_ms(), &rec)?;
            self.txn.log.sync()?;
            Ok(())
        });
        let mut st = lock(&self.txn.state);
        if let Err(e) = synced {
            st.parts.extend(parts);
            st.groups.extend(groups);
            return Err(e);
        }
        st.checkpoint = st.checkpoint.max(upto);
        let keep_from = pending.first().copied().unwrap_or(upto).min(upto);
        st.checkpoint_pending = pending;
        drop(st);
        if keep_from >= self.txn.log.start_offset() + COMPACT_RECORDS {
            self.txn.log.delete_before(keep_from)?;
        }
        Ok(())
    }

    fn sync_touched(
        &self,
        parts: &BTreeSet<(String, u32)>,
        groups: &BTreeSet<(String, String)>,
    ) -> Result<(), TopicError> {
        for (name, p) in parts {
            if let Some(t) = self.get(name) {
                match t.logs.get(*p as usize).map(Log::sync) {
                    Some(Err(LogError::Closed)) | None => {}
                    Some(r) => r?,
                }
            }
        }
        for (name, g) in groups {
            if let Some(t) = self.get(name) {
                match t.existing_queue(g) {
                    Ok(q) => q.sync()?,
                    Err(
                        QueueError::NoSuchGroup { .. }
                        | QueueError::Topic(TopicError::NoSuchTopic(_)),
                    ) => {}
                    Err(QueueError::Topic(e)) => return Err(e),
                    Err(e) => return Err(TopicError::InvalidMessage(e.to_string())),
                }
            }
        }
        Ok(())
    }

    /// Applies again every commit at or after the last checkpoint (module docs), then
    /// checkpoints. Called by [`Topics::open`]; returns how many commits it looked at.
    pub(crate) fn recover_transactions(&self) -> Result<usize, TopicError> {
        let log = &self.txn.log;
        // Pass 1: the last checkpoint, from the record kinds alone (commits can be big).
        let mut upto = 0;
        let mut pending_below: BTreeSet<u64> = BTreeSet::new();
        let mut from = log.start_offset();
        let end = log.end_offset();
        while from < end {
            let records = log.read(from, 4 << 20)?;
            let Some(last) = records.last() else { break };
            from = last.offset + 1;
            for r in records {
                if r.payload.get(1) == Some(&KIND_CHECKPOINT) {
                    if let TxnRecord::Checkpoint(u, pending) =
                        decode(&r.payload).map_err(|e| self.txn.damaged(r.offset, e))?
                    {
                        if u >= upto {
                            upto = u;
                            pending_below = pending.into_iter().collect();
                        }
                    }
                }
            }
        }
        // Pass 2: decode the commits to redo.
        let mut commits: Vec<(u64, Commit)> = Vec::new();
        let mut from = pending_below
            .first()
            .copied()
            .unwrap_or(upto)
            .min(upto)
            .max(log.start_offset());
        while from < end {
            let records = log.read(from, 4 << 20)?;
            let Some(last) = records.last() else { break };
            from = last.offset + 1;
            for r in records {
                let wanted = r.offset >= upto || pending_below.contains(&r.offset);
                if !wanted || r.payload.get(1) != Some(&KIND_COMMIT) {
                    continue;
                }
                if let TxnRecord::Commit(c) =
                    decode(&r.payload).map_err(|e| self.txn.damaged(r.offset, e))?
                {
                    commits.push((r.offset, c));
                }
            }
        }
        {
            let mut st = lock(&self.txn.state);
            st.checkpoint = upto;
            st.checkpoint_pending = pending_below;
        }
        if commits.is_empty() {
            return Ok(0);
        }
        // Per output partition, the lowest end offset any pending commit recorded.
        let mut scan: BTreeMap<(String, u32), u64> = BTreeMap::new();
        for (_, c) in &commits {
            for o in &c.outputs {
                for &(p, hint) in &o.hints {
                    let e = scan.entry((o.topic.clone(), p)).or_insert(hint);
                    *e = (*e).min(hint);
                }
            }
        }
        let pending: HashSet<u64> = commits.iter().map(|(at, _)| *at).collect();
        let mut found: HashMap<u64, HashSet<u32>> = HashMap::new();
        for ((name, p), hint) in &scan {
            let Some(t) = self.get(name) else { continue };
            let Some(plog) = t.logs.get(*p as usize) else {
                continue;
            };
            let mut from = (*hint).max(plog.start_offset());
            let end = plog.end_offset();
            while from < end {
                let records = plog.read(from, 1 << 20)?;
                let Some(last) = records.last() else { break };
                from = last.offset + 1;
                for r in records {
                    let tag = record::decode_tag(&r.payload).map_err(|e| TopicError::Damaged {
                        path: plog.dir().to_owned(),
                        reason: format!("offset {}: {e}", r.offset),
                    })?;
                    if let Some((txn, index)) = tag.filter(|(txn, _)| pending.contains(txn)) {
                        found.entry(txn).or_default().insert(index);
                    }
                }
            }
        }
        let looked = commits.len();
        for (at, c) in commits {
            let done = found.remove(&at).unwrap_or_default();
            for (o, ix) in c.outputs.iter().zip(c.indexes()) {
                let Some(t) = self.get(&o.topic) else {
                    continue;
                };
                let mut messages = Vec::new();
                let mut partitions = Vec::new();
                let mut indexes = Vec::new();
                for ((m, p), i) in o.messages.iter().zip(&o.partitions).zip(&ix) {
                    if !done.contains(i) && (*p as usize) < t.logs.len() {
                        messages.push(m.clone());
                        partitions.push(*p);
                        indexes.push(*i);
                    }
                }
                if !messages.is_empty() {
                    let tagged = Tagged {
                        txn: at,
                        partitions: &partitions,
                        indexes: &indexes,
                    };
                    // One output that cannot be appended (limits changed, a failed log)
                    // must not keep the node from starting: it is reported, loudly.
                    if let Err(e) = t.append_inner(&messages, Origin::Producer, Some(&tagged)) {
                        tracing::error!(transaction = at, topic = %o.topic, error = %e, outputs = messages.len(), "a committed transaction's outputs could not be appended at recovery");
                    }
                }
                let mut st = lock(&self.txn.state);
                for &(p, _) in &o.hints {
                    st.parts.insert((o.topic.clone(), p));
                }
            }
            if let Some(t) = self.get(&c.topic) {
                match t.existing_queue(&c.group) {
                    Ok(q) => {
                        // Offsets a power loss took from the input partition (under
                        // `interval`) are not acked: new messages will take them.
                        let acks: Vec<(u32, u64)> = c
                            .acks
                            .iter()
                            .copied()
                            .filter(|&(p, o)| {
                                t.logs.get(p as usize).is_some_and(|l| o < l.end_offset())
                            })
                            .collect();
                        // The wait is covered by the checkpoint's sync below.
                        if let Err(e) = t.finish_commit(&q, &acks) {
                            tracing::error!(transaction = at, topic = %c.topic, group = %c.group, error = %e, "a committed transaction's acks could not be applied at recovery");
                        }
                        lock(&self.txn.state)
                            .groups
                            .insert((c.topic.clone(), c.group.clone()));
                    }
                    Err(QueueError::NoSuchGroup { .. }) => {}
                    Err(e) => {
                        tracing::error!(transaction = at, topic = %c.topic, group = %c.group, error = %e, "a committed transaction's group could not be opened at recovery");
                    }
                }
            }
        }
        self.checkpoint_transactions()?;
        tracing::info!(
            transactions = looked,
            "transactions after the last checkpoint completed"
        );
        Ok(looked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_refuse_damage() {
        let c = Commit {
            topic: "in".into(),
            group: "g".into(),
            acks: vec![(0, 5), (3, u64::MAX)],
            outputs: vec![CommitOutput {
                topic: "out".into(),
                hints: vec![(1, 10)],
                partitions: vec![1, 1],
                messages: vec![
                    Message {
                        key: Some("k".into()),
                        value: "v".into(),
                        ..Message::default()
                    },
                    Message::default(),
                ],
            }],
        };
        let bytes = encode_commit(&c);
        assert_eq!(decode(&bytes), Ok(TxnRecord::Commit(c.clone())));
        assert_eq!(c.indexes(), vec![vec![0, 1]]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long).is_err());
        let cp = encode_checkpoint(7, &[3, 5].into());
        assert_eq!(decode(&cp), Ok(TxnRecord::Checkpoint(7, vec![3, 5])));
        assert!(decode(&cp[..cp.len() - 1]).is_err());
        assert!(decode(&[VERSION, 9]).is_err());
        assert!(decode(&[2, KIND_CHECKPOINT]).is_err());
        // A count that claims more than the record holds is refused before allocating.
        let mut huge = vec![VERSION, KIND_COMMIT, 0, 0, 0, 0, 0, 0, 0, 0];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
    }
}
