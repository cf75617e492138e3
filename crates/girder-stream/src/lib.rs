//! Durable streams: the journal that records every change to a stream on `girder-log`
//! and replays it into the keyspace at start.
//!
//! The stream type itself lives in the keyspace (`girder_kv::streams`), beside the other
//! Redis types, so `TYPE`, `DEL`, `RENAME`, `EXPIRE`, `MULTI` treat it like any key. What
//! makes it durable is this crate: the keyspace reports each change to a stream, while
//! the key's shard is locked, through the [`girder_kv::Journal`] seam — the exact effects
//! of a stream command (ids, times, deliveries, acknowledgements), or a key-level event
//! (replaced, deleted, deadline, flush, swap). [`StreamJournal`] encodes each report as
//! one record (`codec`) and appends it to a `girder_log::Log`, Kafka's storage model:
//! checksummed records in segments, group-committed fsyncs.
//!
//! # Durability
//! - `fsync = always`: a connection that journaled anything waits, before writing its
//!   replies, until the log has fsynced its records ([`girder_kv::Durability::Wait`]);
//!   concurrent connections share fsyncs (group commit). What was acknowledged survives
//!   a kill -9 or a power cut.
//! - `fsync = interval`: replies do not wait; the log fsyncs every interval (Redis's
//!   `appendfsync everysec`): a crash loses at most about one interval.
//! - `fsync = never`: the OS decides when data reaches the disk; survives a process
//!   crash, not a power cut.
//!
//! If the log fails (a write or fsync error), nothing journaled after that is
//! acknowledged: the connection that was waiting is closed instead of answered.
//!
//! # Recovery and compaction
//! [`StreamJournal::open`] replays the log from its start into the keyspace. The log
//! would grow forever, so [`StreamJournal::compact`] writes a snapshot — `SnapshotBegin`,
//! every stream as one `Replaced` record, each taken under its shard's lock, then
//! `SnapshotEnd` — and once that is durable, moves the log's start to `SnapshotBegin`.
//! The snapshot is fuzzy (writers keep going while it is taken) and still exact: a
//! `Replaced` record overrides whatever replay built for its key before it, and every
//! change after it in the log happened after it in the keyspace.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod topics;

use bytes::Bytes;
use codec::JournalRecord;
use girder_kv::streams::{restore, StreamEffect, StreamValue};
use girder_kv::{Durability, Keyspace, DATABASES};
use girder_log::{FsyncPolicy, Log, LogConfig, LogError};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// When journaled changes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before the reply: every acknowledged change survives a power cut.
    Always,
    /// At most this long after the reply.
    Interval(Duration),
    /// When the OS writes it back.
    Never,
}

/// The journal's settings.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// Directory of the log.
    pub dir: PathBuf,
    /// When changes reach the disk.
    pub fsync: Fsync,
    /// Log segment size.
    pub segment_bytes: u64,
    /// Compact when this many bytes were journaled since the last snapshot and they are
    /// more than the last snapshot's size.
    pub compact_min_bytes: u64,
    /// Segment files kept for reuse after the rewrite drops them
    /// ([`LogConfig::recycle_segments`]).
    pub recycle_segments: usize,
    /// Journal every write (the append-only file), not only streams and what happens
    /// while a snapshot is taken.
    pub journal_all: bool,
}

/// A journal that cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The log underneath failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A record in the log does not decode: the log is damaged or from a newer Girder.
    #[error("stream journal {dir}: the record at offset {offset} passed its checksum but is not a journal record this build can read ({source}); it was written by another Girder version, or by a bug. Start the version that wrote it, or move the directory aside to start empty")]
    Damaged {
        /// The log's directory.
        dir: PathBuf,
        /// The record's offset.
        offset: u64,
        /// Why it did not decode.
        source: codec::DecodeError,
    },
}

/// What [`StreamJournal::open`] found.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    /// Records replayed.
    pub records: u64,
    /// Streams present after the replay.
    pub streams: u64,
    /// Keys present after the replay (streams included).
    pub keys: u64,
    /// `Command` records replayed.
    pub commands: u64,
    /// Replayed commands that answered an error.
    pub commands_failed: u64,
    /// Bytes cut from a torn tail of the log.
    pub truncated_bytes: u64,
}

/// What [`StreamJournal::compact`] did.
#[derive(Debug, Clone, Default)]
pub struct CompactReport {
    /// Keys written to the snapshot (streams included).
    pub keys: u64,
    /// Streams written to the snapshot.
    pub streams: u64,
    /// The snapshot's size in bytes.
    pub bytes: u64,
    /// Whether the log's start moved (false when a FLUSHALL or SWAPDB ran meanwhile: the
    /// snapshot is not used and the next compaction tries again).
    pub applied: bool,
}

/// The stream journal. Install it in the keyspace with [`Keyspace::set_journal`] after
/// [`StreamJournal::open`] has replayed it.
pub struct StreamJournal {
    log: Arc<Log>,
    dir: PathBuf,
    /// Replies wait for fsync.
    wait: std::sync::atomic::AtomicBool,
    compact_min_bytes: u64,
    /// Bytes appended since the last snapshot began.
    since_snapshot: AtomicU64,
    /// The last snapshot's size.
    snapshot_bytes: AtomicU64,
    /// FLUSHALL and SWAPDB records appended: a snapshot that saw one is not used.
    exclusive_events: AtomicU64,
    compacting: std::sync::Mutex<()>,
    /// Snapshot record size ([`codec::CHUNK_BYTES`]; tests make it small).
    chunk_bytes: std::sync::atomic::AtomicUsize,
    /// Every write is journaled (`appendonly yes`), not only during snapshots.
    all: std::sync::atomic::AtomicBool,
    /// When the last snapshot was applied (ms since the epoch; LASTSAVE), or the open.
    last_save_ms: AtomicU64,
    /// The keyspace's change count when the last snapshot began.
    changes_at_save: AtomicU64,
    /// The fsync policy (CONFIG GET appendfsync).
    fsync: std::sync::Mutex<Fsync>,
}

impl std::fmt::Debug for StreamJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamJournal")
            .field("dir", &self.dir)
            .finish()
    }
}

/// Encoded records of one atomic unit, with the times of their commands.
type Batch = Vec<(u64, Vec<u8>)>;

thread_local! {
    /// The greatest offset this thread appended and has not yet handed to its front end
    /// (`u64::MAX`: none).
    static PENDING: Cell<u64> = const { Cell::new(u64::MAX) };
    /// The first append error this thread has not yet reported.
    static FAILED: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Scratch space for encoding records.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Records of the atomic unit this thread is in (`begin_atomic`), with their times.
    static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Snapshot record size under `fsync = always` (see `StreamJournal::pace`).
pub(crate) const ALWAYS_CHUNK_BYTES: usize = 128 << 10;

/// Keys a snapshot records per hold of a shard's lock (about; the parts are slices of
/// the shard's hash space).
const PART_KEYS: usize = 2048;

impl StreamJournal {
    /// Opens (or creates) the journal in `config.dir` and replays it into `keyspace`.
    ///
    /// # Errors
    /// The log cannot be opened (I/O, corruption in a sealed segment), or a record does
    /// not decode ([`JournalError::Damaged`]).
    pub fn open(
        config: &JournalConfig,
        keyspace: &Keyspace,
        replayer: &mut Replayer<'_>,
    ) -> Result<(Arc<Self>, RestoreReport), JournalError> {
        let log_config = LogConfig {
            segment_bytes: config.segment_bytes,
            fsync: match config.fsync {
                Fsync::Always => FsyncPolicy::Always,
                Fsync::Interval(d) => FsyncPolicy::Interval(d),
                Fsync::Never => FsyncPolicy::Never,
            },
            // A record holds one command's changes (a snapshot is split into
            // `codec::CHUNK_BYTES` records): an XADD of large fields is one record.
            max_record_bytes: 1 << 30,
            recycle_segments: config.recycle_segments,
            ..LogConfig::default()
        };
        let (log, recovery) = Log::open(&config.dir, log_config)?;
        let journal = Arc::new(Self {
            log: Arc::new(log),
            dir: config.dir.clone(),
            wait: std::sync::atomic::AtomicBool::new(config.fsync == Fsync::Always),
            compact_min_bytes: config.compact_min_bytes,
            since_snapshot: AtomicU64::new(0),
            snapshot_bytes: AtomicU64::new(0),
            exclusive_events: AtomicU64::new(0),
            compacting: std::sync::Mutex::new(()),
            chunk_bytes: std::sync::atomic::AtomicUsize::new(codec::CHUNK_BYTES),
            all: std::sync::atomic::AtomicBool::new(config.journal_all),
            last_save_ms: AtomicU64::new(now_ms()),
            changes_at_save: AtomicU64::new(0),
            fsync: std::sync::Mutex::new(config.fsync),
        });
        let mut report = journal.replay(keyspace, replayer)?;
        report.truncated_bytes = recovery.truncated_bytes;
        Ok((journal, report))
    }

    fn replay(
        &self,
        keyspace: &Keyspace,
        replayer: &mut Replayer<'_>,
    ) -> Result<RestoreReport, JournalError> {
        let mut report = RestoreReport::default();
        let mut offset = self.log.start_offset();
        let end = self.log.end_offset();
        let mut bytes = 0u64;
        while offset < end {
            let batch = self.log.read(offset, 4 << 20)?;
            let Some(last) = batch.last() else { break };
            offset = last.offset + 1;
            for record in batch {
                bytes += record.payload.len() as u64;
                let decoded =
                    codec::decode(&record.payload).map_err(|source| JournalError::Damaged {
                        dir: self.dir.clone(),
                        offset: record.offset,
                        source,
                    })?;
                let command = matches!(decoded, JournalRecord::Command { .. });
                if let Err(e) = apply(keyspace, replayer, record.timestamp_ms, decoded) {
                    // Expected inside a snapshot: a command journaled before its key's
                    // snapshot record ran on what replay had built so far, and the
                    // snapshot record puts the key right.
                    report.commands_failed += 1;
                    tracing::debug!(offset = record.offset, error = %e, "a journaled command failed on replay");
                }
                report.commands += u64::from(command);
                report.records += 1;
            }
        }
        self.since_snapshot.store(bytes, Ordering::Relaxed);
        for db in 0..DATABASES {
            if let Ok(db) = keyspace.db(db) {
                restore::for_each_stream(&db, |_, _, _| report.streams += 1);
            }
        }
        report.keys = keyspace
            .db_sizes()
            .iter()
            .map(|(keys, _)| *keys as u64)
            .sum();
        Ok(report)
    }

    /// Installs the journal in `keyspace` (after [`StreamJournal::open`] replayed it).
    ///
    /// # Errors
    /// The keyspace already has a journal.
    pub fn install(
        self: &Arc<Self>,
        keyspace: &Keyspace,
    ) -> Result<(), girder_kv::JournalAlreadySet> {
        keyspace.set_journal(Arc::clone(self) as Arc<dyn girder_kv::Journal>)?;
        keyspace.set_journal_all(self.all.load(Ordering::SeqCst));
        Ok(())
    }

    /// Turns journaling of every write on (`appendonly yes`) or off. Turning it on takes
    /// a snapshot first, so the log holds what was written while it was off; blocking.
    ///
    /// # Errors
    /// The snapshot failed (journaling stays off).
    pub fn set_journal_all(&self, keyspace: &Keyspace, on: bool) -> Result<(), JournalError> {
        if !on {
            self.all.store(false, Ordering::SeqCst);
            keyspace.set_journal_all(false);
            return Ok(());
        }
        if self.all.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.all.store(true, Ordering::SeqCst);
        match self.compact(keyspace) {
            Ok(r) if r.applied => Ok(()),
            Ok(_) => self.compact(keyspace).map(|_| ()),
            Err(e) => {
                self.all.store(false, Ordering::SeqCst);
                keyspace.set_journal_all(false);
                Err(e)
            }
        }
    }

    /// Whether every write is journaled.
    pub fn journals_all(&self) -> bool {
        self.all.load(Ordering::SeqCst)
    }

    /// When the last snapshot was applied, in ms since the epoch (the open, before any).
    pub fn last_save_ms(&self) -> u64 {
        self.last_save_ms.load(Ordering::Relaxed)
    }

    /// Changes made since the last snapshot began (Redis's `rdb_changes_since_last_save`).
    pub fn changes_since_save(&self, keyspace: &Keyspace) -> u64 {
        keyspace
            .changes()
            .saturating_sub(self.changes_at_save.load(Ordering::Relaxed))
    }

    /// The fsync policy.
    pub fn fsync(&self) -> Fsync {
        *self
            .fsync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the fsync policy from now on (`CONFIG SET appendfsync`): under `Always`,
    /// replies to what is journaled after this wait for its fsync.
    pub fn set_fsync(&self, fsync: Fsync) {
        let mut current = self
            .fsync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.log.set_fsync(match fsync {
            Fsync::Always => FsyncPolicy::Always,
            Fsync::Interval(d) => FsyncPolicy::Interval(d),
            Fsync::Never => FsyncPolicy::Never,
        });
        self.wait.store(fsync == Fsync::Always, Ordering::SeqCst);
        *current = fsync;
    }

    /// The log underneath (for metrics and tests).
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Appends one record stamped with `now_ms`, the time of the command that made the
    /// change (replay runs each record at its time, so expiry decides as it did).
    fn append(&self, now_ms: u64, encode: impl FnOnce(&mut Vec<u8>)) {
        SCRATCH.with_borrow_mut(|buf| {
            buf.clear();
            encode(buf);
            self.since_snapshot
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            let batched = BATCH.with_borrow_mut(|batch| match batch {
                Some(items) => {
                    items.push((now_ms, buf.clone()));
                    true
                }
                None => false,
            });
            if !batched {
                self.append_now(now_ms, buf);
            }
        });
        // A large record leaves a large scratch buffer behind: give it back.
        SCRATCH.with_borrow_mut(|buf| {
            if buf.capacity() > 1 << 20 {
                *buf = Vec::new();
            }
        });
    }

    /// Appends one encoded record to the log, noting its offset for the front end.
    fn append_now(&self, now_ms: u64, buf: &[u8]) {
        match self.log.append(now_ms, buf) {
            Ok(offset) => {
                if self.wait.load(Ordering::Relaxed) {
                    PENDING.with(|p| {
                        let prev = p.get();
                        p.set(if prev == u64::MAX {
                            offset
                        } else {
                            prev.max(offset)
                        });
                    });
                }
            }
            Err(e) => {
                tracing::error!(error = %e, dir = %self.dir.display(), "journal append failed");
                FAILED.with_borrow_mut(|f| {
                    f.get_or_insert_with(|| format!("journal: {e}"));
                });
            }
        }
    }

    /// Whether enough was journaled since the last snapshot to compact.
    pub fn needs_compaction(&self) -> bool {
        let since = self.since_snapshot.load(Ordering::Relaxed);
        since >= self.compact_min_bytes && since > self.snapshot_bytes.load(Ordering::Relaxed)
    }

    /// Writes a snapshot of every key and, once it is durable, drops the log before it:
    /// the AOF rewrite, and in `snapshot` mode the snapshot itself. Blocking (fsync); run
    /// it off the async workers.
    ///
    /// While it runs every write is journaled (multi-key ones as the state they left), so
    /// the log from `SnapshotBegin` to `SnapshotEnd` replays to the keyspace as it was at
    /// `SnapshotEnd`: a point-in-time image taken without stopping the writers.
    ///
    /// # Errors
    /// The log failed.
    pub fn compact(&self, keyspace: &Keyspace) -> Result<CompactReport, JournalError> {
        let _one = self
            .compacting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Every write journaled from here on; then wait out the writes that started
        // before (they journaled as the old switches said, before `SnapshotBegin`).
        keyspace.set_exact(true);
        keyspace.set_journal_all(true);
        keyspace.quiesce();
        let result = self.write_snapshot(keyspace);
        keyspace.set_exact(false);
        keyspace.set_journal_all(self.all.load(Ordering::SeqCst));
        let report = result?;
        if report.applied {
            self.last_save_ms.store(now_ms(), Ordering::Relaxed);
        }
        Ok(report)
    }

    fn write_snapshot(&self, keyspace: &Keyspace) -> Result<CompactReport, JournalError> {
        let changes = keyspace.changes();
        let events = self.exclusive_events.load(Ordering::SeqCst);
        let begin = self
            .log
            .append(now_ms(), &codec::encode(&JournalRecord::SnapshotBegin))?;
        self.since_snapshot.store(0, Ordering::Relaxed);
        let mut report = CompactReport::default();
        let mut failed = None;
        let chunk = self.snapshot_chunk();
        let (mut out, mut scratch, mut one) = (Vec::new(), Vec::new(), Vec::new());
        let mut batch = codec::BatchBuilder::default();
        for index in 0..DATABASES {
            let now = keyspace.now_ms();
            let Ok(db) = keyspace.db_at(index, now) else {
                continue;
            };
            // Other types: each shard's keys under its lock, one record per key, so
            // later changes to those keys follow them in the log. A large shard goes in
            // parts of about PART_KEYS keys (slices of its hash space), the lock taken
            // for one part at a time: commands on the shard wait for one part's
            // encoding (measured: holding a shard of 15,600 keys for its whole encoding
            // was a 5-6 ms stall for every client of the event loop).
            'shards: for shard in 0..girder_kv::SHARDS {
                let parts = (db.shard_len(shard) / PART_KEYS + 1) as u64;
                for part in 0..parts {
                    self.pace(chunk);
                    db.visit_shard_part(shard, part, parts, |entries| {
                        // The part's values go as `Batch` records of about a chunk each,
                        // compressed: one frame and one LZ4 block for many small values
                        // instead of a 24-byte frame each.
                        let mut flush =
                            |batch: &mut codec::BatchBuilder, report: &mut CompactReport| {
                                batch.finish(&mut out);
                                self.append_snapshot(
                                    now,
                                    &mut out,
                                    &mut scratch,
                                    report,
                                    &mut failed,
                                )
                            };
                        for (key, entry) in entries {
                            if matches!(entry.value, girder_kv::Value::Stream(_)) {
                                continue;
                            }
                            report.keys += 1;
                            one.clear();
                            codec::encode_value(&mut one, index, key, entry);
                            if !batch.is_empty()
                                && batch.bytes() + one.len() > chunk
                                && !flush(&mut batch, &mut report)
                            {
                                return;
                            }
                            batch.push(now, &one);
                        }
                        if !batch.is_empty() {
                            flush(&mut batch, &mut report);
                        }
                    });
                    if failed.is_some() {
                        break 'shards;
                    }
                }
            }
            for key in restore::stream_keys(&db) {
                if failed.is_some() {
                    break;
                }
                report.streams += 1;
                report.keys += 1;
                self.snapshot_stream(&db, now, index, &key, &mut report, &mut failed);
            }
            if failed.is_some() {
                break;
            }
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        self.log
            .append(now_ms(), &codec::encode(&JournalRecord::SnapshotEnd))?;
        self.log.sync()?;
        self.snapshot_bytes.store(report.bytes, Ordering::Relaxed);
        if self.exclusive_events.load(Ordering::SeqCst) != events {
            return Ok(report);
        }
        self.log.delete_before(begin)?;
        self.changes_at_save.store(changes, Ordering::Relaxed);
        report.applied = true;
        tracing::info!(
            keys = report.keys,
            streams = report.streams,
            bytes = report.bytes,
            start = begin,
            "keyspace snapshot written"
        );
        Ok(report)
    }

    /// Waits until the log's unwritten tail is down to about one chunk: commands
    /// journaled meanwhile (and, under `always`, their replies) wait behind at most that
    /// much of the snapshot. Never called with a lock held.
    ///
    /// Under `always` it also waits until what the log held when it was called is
    /// durable, so each fsync the clients wait for carries at most one chunk of the
    /// snapshot (chunks are then at most [`ALWAYS_CHUNK_BYTES`]): the snapshot's bytes
    /// are spread over the clients' fsyncs instead of arriving a megabyte at a time.
    fn pace(&self, chunk: usize) {
        let mut waited = 0;
        while self.log.buffered_bytes() > 2 * chunk.max(64 << 10) && waited < 1000 {
            std::thread::sleep(std::time::Duration::from_micros(200));
            waited += 1;
        }
        let appended = self.log.end_offset();
        if self.wait.load(Ordering::Relaxed) && appended > 0 {
            // An error here is the log's: the next append reports it.
            let _ = self.log.wait_durable_blocking(appended - 1);
        }
    }

    /// Bytes per snapshot record: smaller under `always` (see [`StreamJournal::pace`]).
    fn snapshot_chunk(&self) -> usize {
        let chunk = self.chunk_bytes.load(Ordering::Relaxed);
        if self.wait.load(Ordering::Relaxed) {
            chunk.min(ALWAYS_CHUNK_BYTES)
        } else {
            chunk
        }
    }

    /// Appends one snapshot record, `out`, compressed when that pays
    /// ([`codec::compress`]; `scratch` is its working space), and counts its bytes;
    /// returns whether it was appended (else the log's error is in `failed`).
    fn append_snapshot(
        &self,
        now: u64,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
        report: &mut CompactReport,
        failed: &mut Option<LogError>,
    ) -> bool {
        codec::compress(out, scratch);
        report.bytes += out.len() as u64;
        if let Err(e) = self.log.append(now, out) {
            failed.get_or_insert(e);
            return false;
        }
        true
    }

    /// Writes one stream into the snapshot, a chunk at a time, taking the key's lock for
    /// each chunk only: writers to the stream wait for one chunk's encoding, never for
    /// the whole stream's.
    ///
    /// Exact although the stream changes between chunks: the head carries the metadata
    /// and groups as they were when it was taken, and every later change to the key is
    /// journaled after it. A chunk records entries (or pending entries) that exist when
    /// it is taken, in a range of ids no earlier chunk covered; replaying it inserts them
    /// into a state that already holds every change made since the head, and that lacks
    /// exactly the entries of not-yet-written ranges that existed at the head and still
    /// do. Inserting an entry that is already there (added after the head) changes
    /// nothing. If the key stops holding a stream, the rest is skipped: its deletion or
    /// replacement is in the log.
    fn snapshot_stream(
        &self,
        db: &girder_kv::DbRef<'_>,
        now: u64,
        index: usize,
        key: &[u8],
        report: &mut CompactReport,
        failed: &mut Option<LogError>,
    ) {
        let mut out = Vec::new();
        let chunk = self.snapshot_chunk();
        // Paced, outside the key's lock: a chunk is appended only once the log's tail is
        // down to about one chunk, so commands journaled meanwhile (and, under
        // `always`, their replies) wait behind at most that much of the snapshot.
        let pace = || self.pace(chunk);
        let mut scratch = Vec::new();
        let mut append = |out: &mut Vec<u8>, report: &mut CompactReport| {
            self.append_snapshot(now, out, &mut scratch, report, failed)
        };
        // The head; and the group names, whose pending entries follow the entries.
        let groups = restore::with_stream(db, key, |stream| {
            let (value, expire_at) = stream?;
            codec::encode_head(&mut out, index, key, value, expire_at);
            append(&mut out, report).then(|| value.groups.keys().cloned().collect::<Vec<_>>())
        });
        let Some(groups) = groups else { return };
        let mut after = None;
        loop {
            pace();
            let step = restore::with_stream(db, key, |stream| {
                let (value, _) = stream?;
                let last = codec::encode_entries_chunk(&mut out, index, key, value, after, chunk)?;
                append(&mut out, report).then_some(last)
            });
            match step {
                Some(last) => after = Some(last),
                None => break,
            }
        }
        for group in groups {
            let mut after = None;
            loop {
                pace();
                let step = restore::with_stream(db, key, |stream| {
                    let (value, _) = stream?;
                    let last = codec::encode_pending_chunk(
                        &mut out, index, key, value, &group, after, chunk,
                    )?;
                    append(&mut out, report).then_some(last)
                });
                match step {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
        }
    }

    /// Writes and fsyncs everything journaled so far (shutdown).
    ///
    /// # Errors
    /// The log failed.
    pub fn sync(&self) -> Result<(), JournalError> {
        Ok(self.log.sync()?)
    }
}

/// Applies one record as of `at_ms`, the time of the command that wrote it: a key that
/// was live for that command is live for its replay, whatever the time is now.
///
/// # Errors
/// A replayed command's error reply.
fn apply(
    keyspace: &Keyspace,
    replayer: &mut Replayer<'_>,
    at_ms: u64,
    record: JournalRecord,
) -> Result<(), String> {
    let db_of = |db: u8| keyspace.db_at(usize::from(db), at_ms);
    match record {
        JournalRecord::Effects { db, key, effects } => {
            if let Ok(db) = db_of(db) {
                restore::effects(&db, &key, &effects);
            }
        }
        JournalRecord::Replaced {
            db,
            key,
            expire_at,
            value,
        } => {
            if let Ok(db) = db_of(db) {
                restore::replaced(&db, &key, *value, expire_at);
            }
        }
        JournalRecord::Deleted { db, key } => {
            if let Ok(db) = db_of(db) {
                restore::deleted(&db, &key);
            }
        }
        JournalRecord::Expire { db, key, expire_at } => {
            if let Ok(db) = db_of(db) {
                restore::expire(&db, &key, expire_at);
            }
        }
        JournalRecord::FlushedAll => keyspace.exclusive().flush_all(),
        JournalRecord::Swapped { a, b } => {
            let _ = keyspace.exclusive().swap_db(usize::from(a), usize::from(b));
        }
        JournalRecord::Entries { db, key, entries } => {
            if let Ok(db) = db_of(db) {
                restore::entries(&db, &key, entries);
            }
        }
        JournalRecord::Pending {
            db,
            key,
            group,
            pending,
        } => {
            if let Ok(db) = db_of(db) {
                restore::pending(&db, &key, &group, pending);
            }
        }
        JournalRecord::Command { db, args } => {
            replayer(keyspace, usize::from(db), at_ms, &args)?;
        }
        JournalRecord::Value { db, key, entry } => {
            if let Ok(db) = db_of(db) {
                girder_kv::replay::put(&db, &key, entry);
            }
        }
        JournalRecord::SetRemoved { db, key, members } => {
            if let Ok(db) = db_of(db) {
                girder_kv::replay::set_removed(&db, &key, &members);
            }
        }
        JournalRecord::FlushedDb { db } => {
            let _ = keyspace.exclusive().flush_db(usize::from(db));
        }
        JournalRecord::Batch(items) => {
            let mut first_error = Ok(());
            for (ts, record) in items {
                if let Err(e) = apply(keyspace, replayer, ts, record) {
                    first_error = first_error.and(Err(e));
                }
            }
            return first_error;
        }
        JournalRecord::SnapshotBegin | JournalRecord::SnapshotEnd => {}
    }
    Ok(())
}

/// Runs journaled commands again at start: the front end that journaled them knows what
/// they mean (`girder_resp::replay::Replayer::replay` has this shape). Called with
/// database `db` and the command's time `at_ms`; an error is the command's own reply (it
/// failed when it ran too, or it ran before its key's snapshot record): replay goes on
/// and counts it.
pub type Replayer<'a> = dyn FnMut(&Keyspace, usize, u64, &[Bytes]) -> Result<(), String> + 'a;

/// A replayer for journals that hold no commands (tests of stream-only journals): any
/// command is an error.
///
/// # Errors
/// Always.
pub fn no_commands(_: &Keyspace, _: usize, _: u64, args: &[Bytes]) -> Result<(), String> {
    Err(format!(
        "this journal holds a command ({}) and nothing here can replay it",
        String::from_utf8_lossy(args.first().map_or(&b""[..], |a| a))
    ))
}

impl girder_kv::Journal for StreamJournal {
    fn stream(&self, db: usize, now_ms: u64, key: &[u8], effects: &[StreamEffect]) {
        self.append(now_ms, |buf| codec::encode_effects(buf, db, key, effects));
    }

    fn stream_replaced(
        &self,
        db: usize,
        now_ms: u64,
        key: &[u8],
        value: &StreamValue,
        expire_at: Option<u64>,
    ) {
        // A large stream (RENAME, COPY, MOVE) is several records, appended here, under
        // the key's lock, with nothing of this key between them.
        codec::encode_stream(db, key, value, expire_at, codec::CHUNK_BYTES, |record| {
            self.append(now_ms, |buf| buf.extend_from_slice(record));
        });
    }

    fn command(&self, db: usize, now_ms: u64, args: &[Bytes]) {
        self.append(now_ms, |buf| codec::encode_command(buf, db, args));
    }

    fn value(&self, db: usize, now_ms: u64, key: &[u8], entry: &girder_kv::Entry) {
        self.append(now_ms, |buf| codec::encode_value(buf, db, key, entry));
    }

    fn set_removed(&self, db: usize, now_ms: u64, key: &[u8], members: &[Bytes]) {
        self.append(now_ms, |buf| {
            codec::encode_set_removed(buf, db, key, members)
        });
    }

    fn begin_atomic(&self) {
        BATCH.with_borrow_mut(|b| *b = Some(Vec::new()));
    }

    fn end_atomic(&self) {
        let Some(items) = BATCH.with_borrow_mut(Option::take) else {
            return;
        };
        match items.as_slice() {
            [] => {}
            [(ts, record)] => self.append_now(*ts, record),
            _ => {
                let mut buf = Vec::new();
                codec::encode_batch(&mut buf, &items);
                let ts = items.last().map_or(0, |(ts, _)| *ts);
                self.append_now(ts, &buf);
            }
        }
    }

    fn flushed_db(&self, db: usize) {
        self.exclusive_events.fetch_add(1, Ordering::SeqCst);
        self.append(now_ms(), |buf| {
            codec::encode_simple(buf, &JournalRecord::FlushedDb { db: db as u8 })
        });
    }

    fn deleted(&self, db: usize, now_ms: u64, key: &[u8]) {
        self.append(now_ms, |buf| {
            codec::encode_simple(
                buf,
                &JournalRecord::Deleted {
                    db: db as u8,
                    key: Bytes::copy_from_slice(key),
                },
            );
        });
    }

    fn stream_expire(&self, db: usize, now_ms: u64, key: &[u8], expire_at: Option<u64>) {
        self.append(now_ms, |buf| {
            codec::encode_simple(
                buf,
                &JournalRecord::Expire {
                    db: db as u8,
                    key: Bytes::copy_from_slice(key),
                    expire_at,
                },
            );
        });
    }

    fn flushed_all(&self) {
        self.exclusive_events.fetch_add(1, Ordering::SeqCst);
        self.append(now_ms(), |buf| {
            codec::encode_simple(buf, &JournalRecord::FlushedAll)
        });
    }

    fn swapped(&self, a: usize, b: usize) {
        self.exclusive_events.fetch_add(1, Ordering::SeqCst);
        self.append(now_ms(), |buf| {
            codec::encode_simple(
                buf,
                &JournalRecord::Swapped {
                    a: a as u8,
                    b: b as u8,
                },
            );
        });
    }

    fn barrier(&self) -> Durability {
        if !self.wait.load(Ordering::Relaxed) {
            return Durability::Nothing;
        }
        let end = self.log.end_offset();
        if end == 0 || self.log.durable_offset() >= end {
            return Durability::Nothing;
        }
        let wait = self.log.wait_durable(end - 1);
        Durability::Wait(Box::pin(async move {
            wait.await.map_err(|e| format!("stream journal: {e}"))
        }))
    }

    fn take_pending(&self) -> Durability {
        if let Some(e) = FAILED.with_borrow_mut(Option::take) {
            PENDING.with(|p| p.set(u64::MAX));
            return Durability::Failed(e);
        }
        let offset = PENDING.with(|p| p.replace(u64::MAX));
        if offset == u64::MAX || self.log.durable_offset() > offset {
            return Durability::Nothing;
        }
        let wait = self.log.wait_durable(offset);
        Durability::Wait(Box::pin(async move {
            wait.await.map_err(|e| format!("stream journal: {e}"))
        }))
    }
}

/// The journal's directory under a node's data directory.
pub fn journal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("journal")
}

/// Where versions before the whole keyspace was journaled kept it (streams only).
pub fn legacy_journal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("streams").join("journal")
}

#[cfg(test)]
mod tests;
