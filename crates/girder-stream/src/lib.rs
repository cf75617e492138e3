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
    /// Bytes cut from a torn tail of the log.
    pub truncated_bytes: u64,
}

/// What [`StreamJournal::compact`] did.
#[derive(Debug, Clone, Default)]
pub struct CompactReport {
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
    wait: bool,
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
}

impl std::fmt::Debug for StreamJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamJournal")
            .field("dir", &self.dir)
            .finish()
    }
}

thread_local! {
    /// The greatest offset this thread appended and has not yet handed to its front end
    /// (`u64::MAX`: none).
    static PENDING: Cell<u64> = const { Cell::new(u64::MAX) };
    /// The first append error this thread has not yet reported.
    static FAILED: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Scratch space for encoding records.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl StreamJournal {
    /// Opens (or creates) the journal in `config.dir` and replays it into `keyspace`.
    ///
    /// # Errors
    /// The log cannot be opened (I/O, corruption in a sealed segment), or a record does
    /// not decode ([`JournalError::Damaged`]).
    pub fn open(
        config: &JournalConfig,
        keyspace: &Keyspace,
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
            ..LogConfig::default()
        };
        let (log, recovery) = Log::open(&config.dir, log_config)?;
        let journal = Arc::new(Self {
            log: Arc::new(log),
            dir: config.dir.clone(),
            wait: config.fsync == Fsync::Always,
            compact_min_bytes: config.compact_min_bytes,
            since_snapshot: AtomicU64::new(0),
            snapshot_bytes: AtomicU64::new(0),
            exclusive_events: AtomicU64::new(0),
            compacting: std::sync::Mutex::new(()),
            chunk_bytes: std::sync::atomic::AtomicUsize::new(codec::CHUNK_BYTES),
        });
        let mut report = journal.replay(keyspace)?;
        report.truncated_bytes = recovery.truncated_bytes;
        Ok((journal, report))
    }

    fn replay(&self, keyspace: &Keyspace) -> Result<RestoreReport, JournalError> {
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
                apply(keyspace, record.timestamp_ms, decoded);
                report.records += 1;
            }
        }
        self.since_snapshot.store(bytes, Ordering::Relaxed);
        for db in 0..DATABASES {
            if let Ok(db) = keyspace.db(db) {
                restore::for_each_stream(&db, |_, _, _| report.streams += 1);
            }
        }
        Ok(report)
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
            match self.log.append(now_ms, buf) {
                Ok(offset) => {
                    if self.wait {
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
                    tracing::error!(error = %e, dir = %self.dir.display(), "stream journal append failed");
                    FAILED.with_borrow_mut(|f| {
                        f.get_or_insert_with(|| format!("stream journal: {e}"));
                    });
                }
            }
        });
        // A large record leaves a large scratch buffer behind: give it back.
        SCRATCH.with_borrow_mut(|buf| {
            if buf.capacity() > 1 << 20 {
                *buf = Vec::new();
            }
        });
    }

    /// Whether enough was journaled since the last snapshot to compact.
    pub fn needs_compaction(&self) -> bool {
        let since = self.since_snapshot.load(Ordering::Relaxed);
        since >= self.compact_min_bytes && since > self.snapshot_bytes.load(Ordering::Relaxed)
    }

    /// Writes a snapshot of every stream and, once it is durable, drops the log before
    /// it. Blocking (fsync); run it off the async workers.
    ///
    /// # Errors
    /// The log failed.
    pub fn compact(&self, keyspace: &Keyspace) -> Result<CompactReport, JournalError> {
        let _one = self
            .compacting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let events = self.exclusive_events.load(Ordering::SeqCst);
        let begin = self
            .log
            .append(now_ms(), &codec::encode(&JournalRecord::SnapshotBegin))?;
        self.since_snapshot.store(0, Ordering::Relaxed);
        let mut report = CompactReport::default();
        let mut failed = None;
        for index in 0..DATABASES {
            let now = keyspace.now_ms();
            let Ok(db) = keyspace.db_at(index, now) else {
                continue;
            };
            for key in restore::stream_keys(&db) {
                report.streams += 1;
                self.snapshot_stream(&db, now, index, &key, &mut report, &mut failed);
                if failed.is_some() {
                    break;
                }
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
        report.applied = true;
        tracing::info!(
            streams = report.streams,
            bytes = report.bytes,
            start = begin,
            "stream journal compacted"
        );
        Ok(report)
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
        let chunk = self.chunk_bytes.load(Ordering::Relaxed);
        // Paced, outside the key's lock: a chunk is appended only once the log's tail is
        // down to about one chunk, so commands journaled meanwhile (and, under
        // `always`, their replies) wait behind at most that much of the snapshot.
        let pace = || {
            let mut waited = 0;
            while self.log.buffered_bytes() > 2 * chunk.max(64 << 10) && waited < 1000 {
                std::thread::sleep(std::time::Duration::from_micros(200));
                waited += 1;
            }
        };
        let mut append = |out: &[u8], report: &mut CompactReport| {
            report.bytes += out.len() as u64;
            if let Err(e) = self.log.append(now, out) {
                failed.get_or_insert(e);
                return false;
            }
            true
        };
        // The head; and the group names, whose pending entries follow the entries.
        let groups = restore::with_stream(db, key, |stream| {
            let (value, expire_at) = stream?;
            codec::encode_head(&mut out, index, key, value, expire_at);
            append(&out, report).then(|| value.groups.keys().cloned().collect::<Vec<_>>())
        });
        let Some(groups) = groups else { return };
        let mut after = None;
        loop {
            pace();
            let step = restore::with_stream(db, key, |stream| {
                let (value, _) = stream?;
                let last = codec::encode_entries_chunk(&mut out, index, key, value, after, chunk)?;
                append(&out, report).then_some(last)
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
                    append(&out, report).then_some(last)
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
fn apply(keyspace: &Keyspace, at_ms: u64, record: JournalRecord) {
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
        JournalRecord::SnapshotBegin | JournalRecord::SnapshotEnd => {}
    }
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

    fn stream_deleted(&self, db: usize, now_ms: u64, key: &[u8]) {
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
        if !self.wait {
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
    data_dir.join("streams").join("journal")
}

#[cfg(test)]
mod tests;
