//! The log: appends into an in-memory tail, one flusher thread that writes,
//! rolls and fsyncs, one syncer thread that runs the fsyncs the flusher need
//! not wait for (`Interval`'s, `sync`'s), readers over segments and the tail.
//!
//! Invariants:
//! * offsets are dense: `append` assigns `next_offset` under the `inner`
//!   mutex and the frames in `inflight` then `pending` are in offset order
//!   right after what the segments hold;
//! * every offset below `next_offset` is in a segment (below its `size`), in
//!   `inflight` or in `pending` — readers snapshot the segments while holding
//!   `inner`, and the flusher publishes new segment data before it drops
//!   `inflight`, so a reader never falls into a gap;
//! * lock order is `admin` → `inner` → `segments`; the flusher never holds
//!   `segments` while taking `inner`;
//! * `durable <= fsynced_end <= written_end <= next_offset` (under `Never`,
//!   `durable == written_end`); `durable` never moves backwards;
//! * a request handed to the syncer names the active segment's file and an end
//!   written to it before the request; a roll fsyncs the segment it seals on the
//!   flusher, so everything below the end is durable once the request's fsync
//!   returns;
//! * after a failed write or fsync `failed` is set for good: nothing more is
//!   written, every waiter and caller gets `LogError::Failed`.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::watch;

use crate::config::{FsyncPolicy, LogConfig, LogStats, Record, RecoveryReport, RetentionReport};
use crate::error::{IoContext, LogError};
use crate::format::{self, FRAME_HEADER, SEGMENT_HEADER};
use crate::fs::{Fs, FsFile, RealFs};
use crate::segment::{self, FrameCursor, SegView, Segment, Step};

/// A durable, segmented, append-only log of records. `Send + Sync`: share it
/// behind an `Arc`. See the crate docs for the model and the on-disk format.
pub struct Log {
    pub(crate) shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
    /// The thread that runs the fsyncs the flusher need not wait for (`run_syncer`).
    syncer: Option<JoinHandle<()>>,
}

pub(crate) struct Shared {
    dir: PathBuf,
    config: LogConfig,
    fs: Arc<dyn Fs>,
    inner: Mutex<Inner>,
    /// The flusher waits here for work.
    work_cv: Condvar,
    /// `sync` callers and back-pressured appenders wait here.
    done_cv: Condvar,
    /// The syncer waits here for a request (`Inner::sync_request`).
    sync_cv: Condvar,
    pub(crate) segments: RwLock<Vec<Segment>>,
    /// Serializes `delete_before` and `enforce_retention`.
    admin: Mutex<()>,
    durable: AtomicU64,
    end: AtomicU64,
    start: AtomicU64,
    durable_tx: watch::Sender<DurableState>,
    appends: AtomicU64,
    writes: AtomicU64,
    bytes_written: AtomicU64,
    fsyncs: AtomicU64,
    recycled_segments: AtomicU64,
    /// Files of deleted segments kept for later segments to write over.
    recycled: Mutex<Recycled>,
}

/// The recycled files waiting to become a segment (`recycled-<n>.seg`), and the
/// number for the next one.
#[derive(Default)]
struct Recycled {
    files: Vec<PathBuf>,
    next: u64,
}

struct Inner {
    next_offset: u64,
    /// Frames appended, not yet taken by the flusher; first offset `pending_base`.
    pending: Vec<u8>,
    pending_base: u64,
    /// Frames the flusher is writing; first offset `inflight_base`.
    inflight: Option<Arc<Vec<u8>>>,
    inflight_base: u64,
    /// A cleared buffer to swap in for `pending`.
    spare: Vec<u8>,
    written_end: u64,
    fsynced_end: u64,
    /// `sync` wants `fsynced_end >= sync_target`.
    sync_target: u64,
    /// An fsync for the syncer thread: the active segment's file, its path, and the end
    /// of what was written to it (durable once the fsync returns). A newer request
    /// replaces one not yet started.
    sync_request: Option<(Arc<dyn FsFile>, PathBuf, u64)>,
    /// The end of the last fsync handed to the syncer (running or waiting).
    handed_end: u64,
    /// The syncer stops (set at shutdown, after the flusher's last fsync).
    syncer_stop: bool,
    failed: bool,
    shutdown: bool,
    flusher_idle: bool,
    /// The flusher holds a small pending batch back for up to [`LINGER`] (not under
    /// `Always`), to write it with what follows in one system call.
    flusher_lingering: bool,
    waiters: usize,
    /// The fsync policy in force ([`Log::set_fsync`] changes it at run time).
    fsync: FsyncPolicy,
}

/// How long the flusher holds back a small pending batch under `Interval` and `Never`
/// before writing it: appends then cost one write per millisecond or per
/// [`EAGER_BYTES`], not one write (and one thread wake-up) each. The price: a process
/// crash (not only a power loss) may lose the last millisecond under those policies.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// Under `Interval`, the flusher hands the syncer an fsync once this much was written
/// since the last, besides once per interval: the fsyncs stay short, a roll's too. At
/// most a quarter of a segment (not under 1 MiB), so that a roll, whose fsync the
/// flusher waits for, finds at most that much unsynced.
pub(crate) const HAND_BYTES: usize = 32 << 20;

/// The most a log with this configuration can have written and not fsynced: the
/// bytes the flusher hands over at most between fsyncs, and a full buffer in flight.
fn unsynced_window(cfg: &LogConfig) -> u64 {
    (hand_bytes(cfg.segment_bytes) + cfg.max_buffered_bytes) as u64
}

fn hand_bytes(segment_bytes: u64) -> usize {
    HAND_BYTES.min(
        usize::try_from(segment_bytes / 4)
            .unwrap_or(usize::MAX)
            .max(1 << 20),
    )
}

/// Pending bytes the flusher writes at once, without lingering.
const EAGER_BYTES: usize = 64 * 1024;

impl Inner {
    /// `sync` asked for more than is fsynced or handed to the syncer.
    fn sync_unmet(&self) -> bool {
        self.sync_target > self.fsynced_end.max(self.handed_end)
    }

    fn buffered(&self) -> usize {
        self.pending.len() + self.inflight.as_ref().map_or(0, |b| b.len())
    }
}

#[derive(Debug, Clone, Copy)]
struct DurableState {
    durable: u64,
    failed: bool,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(PoisonError::into_inner)
}
fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(PoisonError::into_inner)
}

impl Log {
    /// Opens (creating if needed) the log in `dir` and recovers it: the
    /// active segment is scanned and a torn tail cut off, missing or invalid
    /// indexes of sealed segments are rebuilt. Damage that is not a torn tail
    /// is `LogError::Corrupt` (see [`repair`](crate::repair)).
    pub fn open(dir: &Path, config: LogConfig) -> Result<(Log, RecoveryReport), LogError> {
        Self::open_with(Arc::new(RealFs), dir, config)
    }

    pub(crate) fn open_with(
        fs: Arc<dyn Fs>,
        dir: &Path,
        config: LogConfig,
    ) -> Result<(Log, RecoveryReport), LogError> {
        config.validate()?;
        let (segments, start, report) = recover(&*fs, dir, &config)?;
        let recycled = open_recycled(&*fs, dir, config.recycle_segments)?;
        let end = segments.last().map_or(start, |s| s.end);
        let (durable_tx, _) = watch::channel(DurableState {
            durable: end,
            failed: false,
            closed: false,
        });
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            fs,
            inner: Mutex::new(Inner {
                next_offset: end,
                pending: Vec::new(),
                pending_base: end,
                inflight: None,
                inflight_base: end,
                spare: Vec::new(),
                written_end: end,
                fsynced_end: end,
                sync_target: end,
                sync_request: None,
                handed_end: end,
                syncer_stop: false,
                failed: false,
                shutdown: false,
                flusher_idle: false,
                flusher_lingering: false,
                waiters: 0,
                fsync: config.fsync,
            }),
            work_cv: Condvar::new(),
            done_cv: Condvar::new(),
            sync_cv: Condvar::new(),
            segments: RwLock::new(segments),
            admin: Mutex::new(()),
            durable: AtomicU64::new(end),
            end: AtomicU64::new(end),
            start: AtomicU64::new(start),
            durable_tx,
            appends: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            recycled_segments: AtomicU64::new(0),
            recycled: Mutex::new(recycled),
            config,
        });
        let mut log = Log {
            shared,
            flusher: None,
            syncer: None,
        };
        // On an error the half-started log is dropped, which stops what did start.
        log.flusher = Some(spawn_worker(
            &log.shared,
            dir,
            "girder-log-flush",
            Shared::run_flusher,
        )?);
        log.syncer = Some(spawn_worker(
            &log.shared,
            dir,
            "girder-log-sync",
            Shared::run_syncer,
        )?);
        Ok((log, report))
    }

    /// Copies one record into the in-memory tail and returns its offset. Makes
    /// no system call except to wake an idle flusher (one futex wake); blocks
    /// only while more than `max_buffered_bytes` wait to be written.
    pub fn append(&self, timestamp_ms: u64, payload: &[u8]) -> Result<u64, LogError> {
        self.append_batch(timestamp_ms, &[payload]).map(|r| r.start)
    }

    /// Appends several records with consecutive offsets, atomically with
    /// respect to other appends.
    pub fn append_batch(
        &self,
        timestamp_ms: u64,
        payloads: &[&[u8]],
    ) -> Result<Range<u64>, LogError> {
        let max = self.shared.config.max_record_bytes;
        let mut bytes = 0;
        for p in payloads {
            if p.len() > max as usize {
                return Err(LogError::RecordTooLarge { size: p.len(), max });
            }
            bytes += FRAME_HEADER + p.len();
        }
        let sh = &*self.shared;
        let mut inner = lock(&sh.inner);
        loop {
            if inner.failed {
                return Err(LogError::Failed);
            }
            let buffered = inner.buffered();
            if buffered == 0 || buffered + bytes <= sh.config.max_buffered_bytes {
                break;
            }
            inner = sh.wait_done(inner);
        }
        let first = inner.next_offset;
        for (i, p) in payloads.iter().enumerate() {
            format::encode_frame(&mut inner.pending, first + i as u64, timestamp_ms, p);
        }
        inner.next_offset += payloads.len() as u64;
        sh.end.store(inner.next_offset, Ordering::Release);
        let wake = !payloads.is_empty()
            && (inner.flusher_idle
                || (inner.flusher_lingering && inner.pending.len() >= EAGER_BYTES));
        if wake {
            inner.flusher_idle = false;
            inner.flusher_lingering = false;
        }
        drop(inner);
        if wake {
            sh.work_cv.notify_one();
        }
        sh.appends
            .fetch_add(payloads.len() as u64, Ordering::Relaxed);
        Ok(first..first + payloads.len() as u64)
    }

    /// Changes the fsync policy from now on: the flusher applies it to what it writes
    /// next (switching to `Always` fsyncs what is unsynced at once). An offset reported
    /// durable stays so.
    pub fn set_fsync(&self, policy: FsyncPolicy) {
        let mut inner = lock(&self.shared.inner);
        inner.fsync = policy;
        inner.flusher_idle = false;
        inner.flusher_lingering = false;
        drop(inner);
        self.shared.work_cv.notify_all();
    }

    /// The fsync policy in force.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        lock(&self.shared.inner).fsync
    }

    /// Offsets below this are durable under the configured policy (`Always`,
    /// `Interval`: fsynced; `Never`: written to the OS).
    pub fn durable_offset(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// Resolves once `durable_offset() > offset`, or with `LogError::Failed`
    /// if the log stopped on an I/O error, or `LogError::Closed` if it was
    /// closed first. Needs no runtime: any executor can poll it. For an
    /// offset not yet appended it waits until that offset is appended and
    /// durable.
    pub fn wait_durable(
        &self,
        offset: u64,
    ) -> impl std::future::Future<Output = Result<(), LogError>> + Send + 'static {
        let mut rx = self.shared.durable_tx.subscribe();
        if matches!(lock(&self.shared.inner).fsync, FsyncPolicy::Never)
            && self.shared.durable.load(Ordering::Acquire) <= offset
        {
            // A lingering flusher writes at once for a waiter (see `run_flusher`); it
            // may have looked before this waiter subscribed.
            self.shared.work_cv.notify_one();
        }
        async move {
            loop {
                let s = *rx.borrow_and_update();
                if s.durable > offset {
                    return Ok(());
                }
                if s.failed {
                    return Err(LogError::Failed);
                }
                if s.closed {
                    return Err(LogError::Closed);
                }
                if rx.changed().await.is_err() {
                    let s = *rx.borrow();
                    return if s.durable > offset {
                        Ok(())
                    } else {
                        Err(LogError::Closed)
                    };
                }
            }
        }
    }

    /// Writes and fsyncs everything appended so far; blocks until done.
    pub fn sync(&self) -> Result<(), LogError> {
        let sh = &*self.shared;
        let mut inner = lock(&sh.inner);
        let target = inner.next_offset;
        if inner.sync_target < target {
            inner.sync_target = target;
        }
        loop {
            if inner.failed {
                return Err(LogError::Failed);
            }
            if inner.fsynced_end >= target {
                return Ok(());
            }
            if inner.flusher_idle || inner.flusher_lingering {
                inner.flusher_idle = false;
                inner.flusher_lingering = false;
                sh.work_cv.notify_one();
            }
            inner = sh.wait_done(inner);
        }
    }

    /// Blocks until `durable_offset() > offset` (see [`Log::wait_durable`]) without
    /// asking for a write or fsync sooner than the policy makes one.
    ///
    /// # Errors
    /// [`LogError::Failed`] if the log stopped on an I/O error, [`LogError::Closed`] if it
    /// was shut down first.
    pub fn wait_durable_blocking(&self, offset: u64) -> Result<(), LogError> {
        let sh = &*self.shared;
        let mut inner = lock(&sh.inner);
        loop {
            if sh.durable.load(Ordering::Acquire) > offset {
                return Ok(());
            }
            if inner.failed {
                return Err(LogError::Failed);
            }
            if inner.shutdown {
                return Err(LogError::Closed);
            }
            inner = sh.wait_done(inner);
        }
    }

    /// First readable offset.
    pub fn start_offset(&self) -> u64 {
        self.shared.start.load(Ordering::Acquire)
    }

    /// Next offset `append` will assign.
    pub fn end_offset(&self) -> u64 {
        self.shared.end.load(Ordering::Acquire)
    }

    /// Bytes appended and not yet written to the OS (the in-memory tail, plus the
    /// batch being written). A bulk appender (a snapshot) can pace itself on it, so the
    /// records of latency-sensitive appenders do not queue behind megabytes of its own.
    pub fn buffered_bytes(&self) -> usize {
        lock(&self.shared.inner).buffered()
    }

    /// Counters since open.
    pub fn stats(&self) -> LogStats {
        let sh = &*self.shared;
        LogStats {
            appends: sh.appends.load(Ordering::Relaxed),
            writes: sh.writes.load(Ordering::Relaxed),
            bytes_written: sh.bytes_written.load(Ordering::Relaxed),
            fsyncs: sh.fsyncs.load(Ordering::Relaxed),
            recycled_segments: sh.recycled_segments.load(Ordering::Relaxed),
        }
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Reads records from `from` on, until their payloads reach `max_bytes`
    /// (at least one record when `from < end_offset()`). Sees records not yet
    /// written to disk. `from == end_offset()` gives an empty vector.
    pub fn read(&self, from: u64, max_bytes: usize) -> Result<Vec<Record>, LogError> {
        let sh = &*self.shared;
        let (views, disk_end, memory) = {
            let inner = lock(&sh.inner);
            if inner.failed {
                return Err(LogError::Failed);
            }
            let start = sh.start.load(Ordering::Acquire);
            if from < start || from > inner.next_offset {
                return Err(LogError::OffsetOutOfRange {
                    offset: from,
                    start,
                    end: inner.next_offset,
                });
            }
            let segs = read(&sh.segments);
            let disk_end = segs.last().map_or(0, |s| s.end);
            // `start` moves before the segments below it go (`delete_before`), or
            // after (`enforce_retention`): under the segments' lock, the first one
            // says what is still there.
            if let Some(first) = segs.first().filter(|s| from < s.base) {
                return Err(LogError::OffsetOutOfRange {
                    offset: from,
                    start: first.base.max(sh.start.load(Ordering::Acquire)),
                    end: inner.next_offset,
                });
            }
            let mut views = Vec::new();
            if from < disk_end {
                let first = segs.partition_point(|s| s.end <= from);
                for s in &segs[first..] {
                    let pos = if views.is_empty() {
                        s.position_for(from)
                    } else {
                        SEGMENT_HEADER as u64
                    };
                    views.push((s.view(), pos));
                }
            }
            drop(segs);
            let mut memory = Vec::new();
            let mut budget = Budget::new(max_bytes);
            let from_mem = from.max(disk_end);
            if let Some(buf) = &inner.inflight {
                collect_frames(buf, from_mem, &mut budget, &mut memory, |_| true);
            }
            collect_frames(&inner.pending, from_mem, &mut budget, &mut memory, |_| true);
            (views, disk_end, memory)
        };
        let mut out = Vec::new();
        let mut budget = Budget::new(max_bytes);
        let mut next = from;
        for (view, pos) in views {
            if budget.done() {
                return Ok(out);
            }
            let got = read_segment(
                &view,
                pos,
                &mut next,
                &sh.config,
                &mut budget,
                &mut out,
                |_| true,
            );
            if let Err(e) = got {
                // Deleted while being read (and its file perhaps recycled and
                // written over): the records are gone, which is not damage.
                let start = sh.start.load(Ordering::Acquire);
                if view.end <= start {
                    return Err(LogError::OffsetOutOfRange {
                        offset: from,
                        start,
                        end: self.end_offset(),
                    });
                }
                return Err(e);
            }
        }
        debug_assert!(next >= disk_end || budget.done());
        for r in memory {
            if budget.done() {
                break;
            }
            budget.take(r.payload.len());
            out.push(r);
        }
        Ok(out)
    }

    /// The first offset whose timestamp is `>= ts_ms`, or `None`. Uses the
    /// time index to skip segments and to start scanning near the answer.
    pub fn offset_for_timestamp(&self, ts_ms: u64) -> Result<Option<u64>, LogError> {
        let sh = &*self.shared;
        let (candidates, memory) = {
            let inner = lock(&sh.inner);
            if inner.failed {
                return Err(LogError::Failed);
            }
            let start = sh.start.load(Ordering::Acquire);
            let segs = read(&sh.segments);
            let disk_end = segs.last().map_or(0, |s| s.end);
            let mut candidates = Vec::new();
            for s in segs
                .iter()
                .filter(|s| s.end > start && s.max_ts.is_some_and(|m| m >= ts_ms))
            {
                let from = s.scan_start_for_timestamp(ts_ms).max(start);
                candidates.push((s.view(), s.position_for(from), from));
            }
            drop(segs);
            let mut memory = Vec::new();
            let mut budget = Budget::new(0);
            let from = start.max(disk_end);
            let pick = |f: &format::Frame<'_>| f.timestamp_ms >= ts_ms;
            if let Some(buf) = &inner.inflight {
                collect_frames(buf, from, &mut budget, &mut memory, pick);
            }
            if memory.is_empty() {
                collect_frames(&inner.pending, from, &mut budget, &mut memory, pick);
            }
            (candidates, memory.first().map(|r| r.offset))
        };
        for (view, pos, from) in candidates {
            let mut budget = Budget::new(0);
            let mut out = Vec::new();
            let mut next = from;
            let got = read_segment(
                &view,
                pos,
                &mut next,
                &sh.config,
                &mut budget,
                &mut out,
                |f| f.timestamp_ms >= ts_ms,
            );
            match got {
                // Deleted while being read: the answer is in a later segment.
                Err(_) if view.end <= sh.start.load(Ordering::Acquire) => continue,
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            if let Some(r) = out.first() {
                return Ok(Some(r.offset));
            }
        }
        Ok(memory)
    }

    /// Makes `offset` the first readable offset, durably (a checksummed
    /// checkpoint written to a temporary file, fsynced, renamed, directory
    /// fsynced), then deletes the segments wholly below it. Records up to
    /// `offset` are synced first so the checkpoint never points past data a
    /// crash could lose.
    pub fn delete_before(&self, offset: u64) -> Result<(), LogError> {
        let sh = &*self.shared;
        let _admin = lock(&sh.admin);
        let start = sh.start.load(Ordering::Acquire);
        if offset <= start {
            return Ok(());
        }
        let end = self.end_offset();
        if offset > end {
            return Err(LogError::OffsetOutOfRange { offset, start, end });
        }
        if offset > lock(&sh.inner).fsynced_end {
            self.sync()?;
        }
        write_checkpoint(&*sh.fs, &sh.dir, offset)?;
        sh.start.store(offset, Ordering::Release);
        let removed = {
            let mut segs = write(&sh.segments);
            let n = segs[..segs.len() - 1].partition_point(|s| s.end <= offset);
            segs.drain(..n).collect::<Vec<_>>()
        };
        sh.delete_segments(&removed)
    }

    /// Applies the configured [`Retention`](crate::Retention) now: deletes
    /// whole sealed segments, oldest first, never the active one.
    pub fn enforce_retention(&self, now_ms: u64) -> Result<RetentionReport, LogError> {
        let sh = &*self.shared;
        let _admin = lock(&sh.admin);
        let r = &sh.config.retention;
        let removed = {
            let mut segs = write(&sh.segments);
            let start = sh.start.load(Ordering::Acquire);
            let end = segs.last().map_or(start, |s| s.end);
            let mut total_bytes: u64 = segs.iter().map(|s| s.size).sum();
            let mut n = 0;
            for s in &segs[..segs.len() - 1] {
                let after_bytes = total_bytes - s.size;
                let after_records = end - s.end.max(start);
                let by_bytes = r.max_bytes.is_some_and(|m| after_bytes >= m);
                let by_records = r.max_records.is_some_and(|m| after_records >= m);
                let by_age = r
                    .max_age_ms
                    .is_some_and(|m| s.max_ts.is_none_or(|t| t.saturating_add(m) < now_ms));
                if !(by_bytes || by_records || by_age) {
                    break;
                }
                total_bytes = after_bytes;
                n += 1;
            }
            let removed: Vec<Segment> = segs.drain(..n).collect();
            if let Some(first) = segs.first() {
                sh.start.fetch_max(first.base, Ordering::AcqRel);
            }
            removed
        };
        let report = RetentionReport {
            deleted_segments: removed.iter().map(|s| s.path.clone()).collect(),
            deleted_bytes: removed.iter().map(|s| s.size).sum(),
            start_offset: self.start_offset(),
        };
        sh.delete_segments(&removed)?;
        Ok(report)
    }

    /// Writes and fsyncs everything, stops the flusher. Errors if the log had
    /// failed or the final flush fails.
    pub fn close(mut self) -> Result<(), LogError> {
        self.shutdown();
        if lock(&self.shared.inner).failed {
            Err(LogError::Failed)
        } else {
            Ok(())
        }
    }

    fn shutdown(&mut self) {
        let Some(handle) = self.flusher.take() else {
            return;
        };
        {
            let mut inner = lock(&self.shared.inner);
            inner.shutdown = true;
            inner.flusher_idle = false;
            inner.flusher_lingering = false;
        }
        self.shared.work_cv.notify_one();
        if handle.join().is_err() {
            tracing::error!(dir = %self.shared.dir.display(), "girder-log flusher panicked");
            lock(&self.shared.inner).failed = true;
        }
        lock(&self.shared.inner).syncer_stop = true;
        self.shared.sync_cv.notify_one();
        if let Some(syncer) = self.syncer.take() {
            if syncer.join().is_err() {
                tracing::error!(dir = %self.shared.dir.display(), "girder-log syncer panicked");
                lock(&self.shared.inner).failed = true;
            }
        }
        let failed = lock(&self.shared.inner).failed;
        self.shared.durable_tx.send_modify(|s| {
            s.closed = true;
            s.failed |= failed;
        });
        self.shared.done_cv.notify_all();
    }
}

impl Drop for Log {
    /// Best effort: writes and fsyncs what is buffered, stops the flusher.
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts one of a log's threads. A panic in it would leave every waiter hanging: it
/// becomes the failed state instead.
fn spawn_worker(
    shared: &Arc<Shared>,
    dir: &Path,
    name: &str,
    run: fn(&Shared),
) -> Result<JoinHandle<()>, LogError> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let body = std::panic::AssertUnwindSafe(|| run(&shared));
            if std::panic::catch_unwind(body).is_err() {
                let mut inner = lock(&shared.inner);
                shared.fail(&mut inner, &LogError::Closed);
            }
        })
        .map_err(|e| LogError::io(dir, e))
}

/// Payload budget of a read: stop once `max` bytes are taken, but take at
/// least one record.
struct Budget {
    max: usize,
    taken: usize,
    records: usize,
}

impl Budget {
    fn new(max: usize) -> Self {
        Budget {
            max,
            taken: 0,
            records: 0,
        }
    }
    fn done(&self) -> bool {
        self.records > 0 && self.taken >= self.max
    }
    fn take(&mut self, n: usize) {
        self.taken += n;
        self.records += 1;
    }
    /// Payload bytes still wanted.
    fn remaining(&self) -> usize {
        self.max.saturating_sub(self.taken)
    }
}

/// Decodes in-memory frames with offsets `>= from` that `pick` accepts.
fn collect_frames(
    buf: &[u8],
    from: u64,
    budget: &mut Budget,
    out: &mut Vec<Record>,
    pick: impl Fn(&format::Frame<'_>) -> bool,
) {
    let mut pos = 0;
    while pos < buf.len() && !budget.done() {
        let len = format::frame_len_at(buf, pos);
        let offset = format::u64_at(buf, pos + 8);
        if offset >= from {
            let frame = format::Frame {
                offset,
                timestamp_ms: format::u64_at(buf, pos + 16),
                payload: &buf[pos + FRAME_HEADER..pos + len],
            };
            if pick(&frame) {
                budget.take(frame.payload.len());
                out.push(Record {
                    offset,
                    timestamp_ms: frame.timestamp_ms,
                    payload: Bytes::copy_from_slice(frame.payload),
                });
            }
        }
        pos += len;
    }
}

/// Reads frames of one segment from `pos`, keeping those with offset `>= *next`
/// that `pick` accepts. Every frame is CRC-checked; damage is `Corrupt`.
fn read_segment(
    view: &SegView,
    pos: u64,
    next: &mut u64,
    config: &LogConfig,
    budget: &mut Budget,
    out: &mut Vec<Record>,
    pick: impl Fn(&format::Frame<'_>) -> bool,
) -> Result<(), LogError> {
    // The sparse index puts `pos` up to one index interval before the first record
    // wanted: read that much more than the budget at first.
    let first = budget
        .remaining()
        .saturating_add(2 * config.index_interval_bytes as usize);
    let max_payload = config.max_record_bytes;
    let mut cursor = FrameCursor::with_first_chunk(&*view.file, pos, view.size, max_payload, first);
    let mut expected: Option<u64> = None;
    while !budget.done() {
        match cursor.next().at(&view.path)? {
            Step::End => break,
            Step::Frame { pos, frame } => {
                if expected.is_some_and(|e| e != frame.offset)
                    || frame.offset < view.base
                    || frame.offset >= view.end
                {
                    return Err(LogError::corrupt(
                        &view.path,
                        pos,
                        format!("frame offset {} out of sequence", frame.offset),
                    ));
                }
                expected = Some(frame.offset + 1);
                if frame.offset >= *next && pick(&frame) {
                    budget.take(frame.payload.len());
                    out.push(Record {
                        offset: frame.offset,
                        timestamp_ms: frame.timestamp_ms,
                        payload: Bytes::copy_from_slice(frame.payload),
                    });
                }
            }
            Step::Torn { pos } => {
                return Err(LogError::corrupt(
                    &view.path,
                    pos,
                    "frame runs past the end of the segment",
                ));
            }
            Step::Invalid { pos, reason } => {
                return Err(LogError::corrupt(&view.path, pos, reason))
            }
        }
    }
    if let Some(e) = expected {
        *next = e;
    }
    Ok(())
}

impl Shared {
    /// Waits on `done_cv` (the flusher finished a round, failed or stopped), counted in
    /// `waiters` so the flusher knows to notify.
    fn wait_done<'a>(&self, mut inner: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        inner.waiters += 1;
        let mut inner = self
            .done_cv
            .wait(inner)
            .unwrap_or_else(PoisonError::into_inner);
        inner.waiters -= 1;
        inner
    }

    fn run_flusher(&self) {
        let mut last_fsync = Instant::now();
        // Bytes written since the last fsync was made or handed over.
        let mut unsynced_bytes = 0usize;
        let hand_bytes = hand_bytes(self.config.segment_bytes);
        loop {
            let (batch, base, fsync_now, handed) = {
                let mut inner = lock(&self.inner);
                // When this batch started lingering (a small batch under Interval/Never).
                let mut linger_since: Option<Instant> = None;
                loop {
                    if inner.failed {
                        return;
                    }
                    let unsynced = inner.written_end > inner.fsynced_end;
                    let policy = inner.fsync;
                    let due = match policy {
                        FsyncPolicy::Always => unsynced,
                        FsyncPolicy::Interval(d) => unsynced && last_fsync.elapsed() >= d,
                        FsyncPolicy::Never => false,
                    };
                    let wanted = inner.sync_unmet() || (inner.shutdown && unsynced);
                    // Under `Never` a writer waiting in `wait_durable` waits for the
                    // write itself: lingering would add a millisecond to every such
                    // answer (and cap them at one batch per millisecond). What is
                    // appended meanwhile still joins the next write.
                    let awaited = matches!(policy, FsyncPolicy::Never)
                        && self.durable_tx.receiver_count() > 0;
                    let eager = matches!(policy, FsyncPolicy::Always)
                        || awaited
                        || inner.pending.len() >= EAGER_BYTES
                        || inner.shutdown
                        || linger_since.is_some_and(|t| t.elapsed() >= LINGER);
                    if (!inner.pending.is_empty() && eager) || due || wanted {
                        break;
                    }
                    if !inner.pending.is_empty() {
                        let since = *linger_since.get_or_insert_with(Instant::now);
                        inner.flusher_lingering = true;
                        inner = self
                            .work_cv
                            .wait_timeout(inner, LINGER.saturating_sub(since.elapsed()))
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                        inner.flusher_lingering = false;
                        continue;
                    }
                    if inner.shutdown {
                        return;
                    }
                    inner.flusher_idle = true;
                    inner = match policy {
                        FsyncPolicy::Interval(d) if unsynced => {
                            let left = d.saturating_sub(last_fsync.elapsed());
                            self.work_cv
                                .wait_timeout(inner, left)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0
                        }
                        _ => self
                            .work_cv
                            .wait(inner)
                            .unwrap_or_else(PoisonError::into_inner),
                    };
                    inner.flusher_idle = false;
                }
                let base = inner.pending_base;
                let fresh = std::mem::take(&mut inner.spare);
                let batch = Arc::new(std::mem::replace(&mut inner.pending, fresh));
                inner.pending_base = inner.next_offset;
                if !batch.is_empty() {
                    inner.inflight = Some(batch.clone());
                    inner.inflight_base = base;
                }
                // Fsynced here, before the next write: under `Always` (the group
                // commit's round), and at shutdown.
                let fsync_now = matches!(inner.fsync, FsyncPolicy::Always) || inner.shutdown;
                // Otherwise an fsync (`Interval`'s period, or one `sync` asked for) goes
                // to the syncer thread and the flusher goes on writing: an fsync after a
                // journal rewrite can carry hundreds of megabytes and take a second, and
                // appends block once `max_buffered_bytes` wait to be written (measured:
                // the RESP loop blocked about a second per rewrite in `append_batch`).
                // Also every `hand_bytes` written under `Interval`, so no fsync (a
                // roll's, which the flusher waits for, included) has more to flush.
                unsynced_bytes += batch.len();
                let handed = !fsync_now
                    && (inner.sync_unmet()
                        || matches!(inner.fsync, FsyncPolicy::Interval(d)
                            if last_fsync.elapsed() >= d || unsynced_bytes >= hand_bytes));
                (batch, base, fsync_now, handed)
            };
            let written_end = base + count_frames(&batch);
            let result = self.write_batch(&batch, base).and_then(|active| {
                if !fsync_now && !handed {
                    return Ok(None);
                }
                let path = read(&self.segments)
                    .last()
                    .map(|s| s.path.clone())
                    .unwrap_or_default();
                if fsync_now {
                    active.sync().at(&path)?;
                    self.fsyncs.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Some((active, path)))
            });
            if fsync_now || handed {
                last_fsync = Instant::now();
                unsynced_bytes = 0;
            }
            let mut inner = lock(&self.inner);
            let to_sync = match result {
                Ok(r) => r,
                Err(e) => {
                    self.fail(&mut inner, &e);
                    return;
                }
            };
            inner.written_end = written_end;
            if fsync_now {
                inner.fsynced_end = written_end;
            } else if let Some((active, path)) = to_sync.filter(|_| written_end > inner.fsynced_end)
            {
                inner.sync_request = Some((active, path, written_end));
                inner.handed_end = written_end;
                self.sync_cv.notify_one();
            }
            if let Some(buf) = inner.inflight.take() {
                drop(batch);
                if let Ok(mut v) = Arc::try_unwrap(buf) {
                    v.clear();
                    inner.spare = v;
                }
            }
            self.publish(&inner);
        }
    }

    /// Tells waiters what is durable now (after a write or an fsync).
    fn publish(&self, inner: &Inner) {
        let durable = match inner.fsync {
            FsyncPolicy::Never => inner.written_end,
            _ => inner.fsynced_end,
        };
        if durable > self.durable.load(Ordering::Relaxed) {
            self.durable.store(durable, Ordering::Release);
            self.durable_tx.send_modify(|s| s.durable = durable);
        }
        if inner.waiters > 0 {
            self.done_cv.notify_all();
        }
    }

    /// Runs the fsyncs the flusher hands over (`Interval`'s period, `sync`), so that it
    /// goes on writing while one runs. Everything below a request's end was written to
    /// that file before the request was made, and a roll fsyncs the segment it seals
    /// itself, so the end is durable once the fsync returns.
    fn run_syncer(&self) {
        loop {
            let (file, path, end) = {
                let mut inner = lock(&self.inner);
                loop {
                    if inner.failed || inner.syncer_stop {
                        return;
                    }
                    if let Some(request) = inner.sync_request.take() {
                        break request;
                    }
                    inner = self
                        .sync_cv
                        .wait(inner)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let result = file.sync().at(&path);
            let mut inner = lock(&self.inner);
            if let Err(e) = result {
                self.fail(&mut inner, &e);
                return;
            }
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            if end > inner.fsynced_end {
                inner.fsynced_end = end;
            }
            self.publish(&inner);
        }
    }

    fn fail(&self, inner: &mut Inner, error: &LogError) {
        self.sync_cv.notify_all();
        tracing::error!(dir = %self.dir.display(), %error, "girder-log stopped: a write or fsync failed; reopen to recover");
        inner.failed = true;
        inner.pending = Vec::new();
        inner.inflight = None;
        self.durable_tx.send_modify(|s| s.failed = true);
        self.done_cv.notify_all();
    }

    /// Writes a batch of frames to the active segment, rolling as needed.
    /// Returns the active segment's file (to fsync).
    fn write_batch(&self, batch: &[u8], base: u64) -> Result<Arc<dyn FsFile>, LogError> {
        let cfg = &self.config;
        let mut pos = 0;
        let mut offset = base;
        loop {
            let (file, path, mut size, seg_empty, first_ts) = {
                let segs = read(&self.segments);
                let a = segs.last().ok_or(LogError::Closed)?;
                (
                    a.file.clone(),
                    a.path.clone(),
                    a.size,
                    a.end == a.base,
                    a.first_ts,
                )
            };
            if pos == batch.len() {
                return Ok(file);
            }
            // How many frames fit in the active segment.
            let start = pos;
            let mut end = pos;
            let mut n = 0u64;
            let mut roll = false;
            let mut first_ts = first_ts;
            while end < batch.len() {
                let len = format::frame_len_at(batch, end) as u64;
                let ts = format::u64_at(batch, end + 16);
                let first = *first_ts.get_or_insert(ts);
                let too_big = size + len > cfg.segment_bytes;
                let too_old = cfg
                    .segment_ms
                    .is_some_and(|ms| ts.saturating_sub(first) > ms);
                // An empty segment takes at least one record, however big.
                if !(seg_empty && n == 0) && (too_big || too_old) {
                    roll = true;
                    break;
                }
                size += len;
                end += len as usize;
                n += 1;
            }
            if end > start {
                let chunk = &batch[start..end];
                let at = size - chunk.len() as u64;
                file.write_all_at(chunk, at).at(&path)?;
                self.writes.fetch_add(1, Ordering::Relaxed);
                self.bytes_written
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                let mut segs = write(&self.segments);
                let a = segs.last_mut().ok_or(LogError::Closed)?;
                let mut p = 0;
                while p < chunk.len() {
                    let len = format::frame_len_at(chunk, p);
                    a.on_append(
                        offset,
                        format::u64_at(chunk, p + 16),
                        len as u64,
                        cfg.index_interval_bytes,
                    );
                    offset += 1;
                    p += len;
                }
                pos = end;
            }
            if roll {
                self.roll(offset)?;
            }
        }
    }

    /// Seals the active segment (fsync, write its indexes) and starts a new one at `base`.
    fn roll(&self, base: u64) -> Result<(), LogError> {
        let (file, path, size) = {
            let segs = read(&self.segments);
            let a = segs.last().ok_or(LogError::Closed)?;
            (a.file.clone(), a.path.clone(), a.size)
        };
        // A recycled file holds its old frames past the segment's end: cut them,
        // since a sealed segment must end where its last record does.
        if file.len().at(&path)? > size {
            file.set_len(size).at(&path)?;
        }
        // Sealed segments are trusted on open without a scan, so their data
        // is fsynced before anything after them exists, under every policy.
        file.sync().at(&path)?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        let files = write(&self.segments)
            .last_mut()
            .ok_or(LogError::Closed)?
            .seal();
        files.write(&*self.fs, &self.dir)?;
        let recycled = lock(&self.recycled).files.pop();
        let seg = match recycled {
            Some(from) => {
                self.recycled_segments.fetch_add(1, Ordering::Relaxed);
                reuse_segment(&*self.fs, &self.dir, &from, base)?
            }
            None => create_segment(&*self.fs, &self.dir, base)?,
        };
        write(&self.segments).push(seg);
        Ok(())
    }

    /// Deletes the files of `removed`, or renames a `.log` aside for a later segment
    /// to write over while the pool of recycled files has room.
    fn delete_segments(&self, removed: &[Segment]) -> Result<(), LogError> {
        if removed.is_empty() {
            return Ok(());
        }
        // Callers hold `admin`, so nothing else adds to the pool meanwhile; the names
        // are taken under its lock, the renames made without it (a roll in the
        // flusher takes it).
        let (room, mut next) = {
            let mut pool = lock(&self.recycled);
            let room = self
                .config
                .recycle_segments
                .saturating_sub(pool.files.len());
            let next = pool.next;
            pool.next += room as u64;
            (room, next)
        };
        let mut kept = Vec::new();
        for s in removed {
            // The .log first: an index without its log is an orphan open removes.
            // A short segment (rolled on time) is not worth keeping.
            if kept.len() < room && s.size >= self.config.segment_bytes / 2 {
                let to = format::recycled_path(&self.dir, next);
                next += 1;
                self.fs.rename(&s.path, &to).at(&s.path)?;
                kept.push(to);
            } else {
                remove_if_exists(&*self.fs, &s.path)?;
            }
            for ext in ["index", "timeindex"] {
                remove_if_exists(&*self.fs, &format::segment_path(&self.dir, s.base, ext))?;
            }
        }
        self.fs.sync_dir(&self.dir).at(&self.dir)?;
        // Only once its rename is durable: a segment written over a recycled file
        // must never reappear under the old segment's name after a crash.
        lock(&self.recycled).files.extend(kept);
        Ok(())
    }
}

fn count_frames(buf: &[u8]) -> u64 {
    let mut pos = 0;
    let mut n = 0;
    while pos < buf.len() {
        pos += format::frame_len_at(buf, pos);
        n += 1;
    }
    n
}

fn remove_if_exists(fs: &dyn Fs, path: &Path) -> Result<(), LogError> {
    match fs.remove(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io(path, e)),
        _ => Ok(()),
    }
}

/// Creates an empty segment file with its header, fsynced, and fsyncs the directory.
pub(crate) fn create_segment(fs: &dyn Fs, dir: &Path, base: u64) -> Result<Segment, LogError> {
    let path = format::segment_path(dir, base, "log");
    let file = fs.open(&path, true).at(&path)?;
    file.set_len(0).at(&path)?;
    file.write_all_at(&format::encode_segment_header(base, 0), 0)
        .at(&path)?;
    file.sync().at(&path)?;
    fs.sync_dir(dir).at(dir)?;
    Ok(Segment::empty(base, path, file))
}

/// Starts the segment at `base` over the recycled file `from`: its header is
/// rewritten and fsynced before the rename makes it a segment, so the segment's
/// name and header always agree. Its old frames stay, to be written over; they all
/// lie below `base`, which is how recovery tells them from this segment's.
fn reuse_segment(fs: &dyn Fs, dir: &Path, from: &Path, base: u64) -> Result<Segment, LogError> {
    let path = format::segment_path(dir, base, "log");
    let file = fs.open(from, false).at(from)?;
    file.write_all_at(
        &format::encode_segment_header(base, format::SEGMENT_RECYCLED),
        0,
    )
    .at(from)?;
    file.sync().at(from)?;
    fs.rename(from, &path).at(&path)?;
    fs.sync_dir(dir).at(dir)?;
    Ok(Segment::empty(base, path, file))
}

/// The recycled files in `dir`, at most `keep` of them (the rest are removed).
fn open_recycled(fs: &dyn Fs, dir: &Path, keep: usize) -> Result<Recycled, LogError> {
    let mut found: Vec<u64> = fs
        .list(dir)
        .at(dir)?
        .iter()
        .filter_map(|n| format::parse_recycled_name(n))
        .collect();
    found.sort_unstable();
    let next = found.last().map_or(0, |n| n + 1);
    let mut files = Vec::new();
    for n in found {
        let path = format::recycled_path(dir, n);
        if files.len() < keep {
            files.push(path);
        } else {
            remove_if_exists(fs, &path)?;
        }
    }
    Ok(Recycled { files, next })
}

/// Writes the log-start-offset checkpoint atomically.
pub(crate) fn write_checkpoint(fs: &dyn Fs, dir: &Path, start: u64) -> Result<(), LogError> {
    let tmp = dir.join(format!("{}.tmp", format::CHECKPOINT_FILE));
    let path = dir.join(format::CHECKPOINT_FILE);
    segment::write_file(fs, &tmp, &format::encode_checkpoint(start))?;
    fs.rename(&tmp, &path).at(&path)?;
    fs.sync_dir(dir).at(dir)
}

/// Reads the checkpoint, if there is one.
pub(crate) fn read_checkpoint(fs: &dyn Fs, dir: &Path) -> Result<Option<u64>, LogError> {
    let path = dir.join(format::CHECKPOINT_FILE);
    if !fs.exists(&path).at(&path)? {
        return Ok(None);
    }
    let bytes = fs.open_read(&path).and_then(|f| f.read_all()).at(&path)?;
    format::decode_checkpoint(&bytes)
        .map(Some)
        .map_err(|reason| LogError::corrupt(&path, 0, reason))
}

/// Segment base offsets found in `dir`, ascending; removes leftovers
/// (temporary files, indexes without a log).
pub(crate) fn list_segments(fs: &dyn Fs, dir: &Path, tidy: bool) -> Result<Vec<u64>, LogError> {
    let names = fs.list(dir).at(dir)?;
    let mut bases: Vec<u64> = names
        .iter()
        .filter_map(|n| format::parse_segment_name(n))
        .filter(|(_, ext)| *ext == "log")
        .map(|(b, _)| b)
        .collect();
    bases.sort_unstable();
    if tidy {
        for n in &names {
            let orphan = match format::parse_segment_name(n) {
                Some((b, "index" | "timeindex")) => bases.binary_search(&b).is_err(),
                _ => n.ends_with(".tmp"),
            };
            if orphan {
                remove_if_exists(fs, &dir.join(n))?;
            }
        }
    }
    Ok(bases)
}

/// Opens every segment, trusting sealed ones through valid indexes
/// (rebuilding invalid ones), scanning the active one and cutting a torn tail.
fn recover(
    fs: &dyn Fs,
    dir: &Path,
    cfg: &LogConfig,
) -> Result<(Vec<Segment>, u64, RecoveryReport), LogError> {
    fs.create_dir_all(dir).at(dir)?;
    let mut report = RecoveryReport::default();
    let bases = list_segments(fs, dir, true)?;
    let checkpoint = read_checkpoint(fs, dir)?;
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
    for (i, &base) in bases.iter().enumerate() {
        let path = format::segment_path(dir, base, "log");
        let file = fs.open(&path, false).at(&path)?;
        let len = file.len().at(&path)?;
        let mut header = [0u8; SEGMENT_HEADER];
        let got = file.read_full_at(&mut header, 0).at(&path)?;
        let active = i + 1 == bases.len();
        let flags = match format::check_segment_header(&header[..got], base) {
            Ok(flags) => flags,
            Err(reason) => {
                // A crash while creating the active segment can leave it shorter
                // than its header: nothing was ever acknowledged in it.
                if active && len <= SEGMENT_HEADER as u64 {
                    tracing::warn!(path = %path.display(), len, "girder-log: rewriting a torn segment header");
                    report.truncated_bytes += len;
                    file.set_len(0).at(&path)?;
                    file.write_all_at(&format::encode_segment_header(base, 0), 0)
                        .at(&path)?;
                    file.sync().at(&path)?;
                    segments.push(Segment::empty(base, path, file));
                    continue;
                }
                return Err(LogError::corrupt(&path, 0, reason));
            }
        };
        if let Some(prev) = segments.last() {
            if prev.end != base {
                return Err(LogError::corrupt(
                    &path,
                    0,
                    format!(
                        "segment starts at offset {base} but the previous one ends at {}",
                        prev.end
                    ),
                ));
            }
        }
        if !active {
            let mut seg = Segment::empty(base, path.clone(), file.clone());
            match seg.load_indexes(fs, dir, len) {
                Ok(()) => segments.push(seg),
                Err(why) => {
                    tracing::warn!(path = %path.display(), why, "girder-log: rebuilding segment indexes");
                    let scan = segment::scan(
                        base,
                        path.clone(),
                        file,
                        len,
                        cfg.max_record_bytes,
                        cfg.index_interval_bytes,
                        false,
                    )?;
                    if let Some((pos, reason)) = scan.damage {
                        return Err(LogError::corrupt(&path, pos, reason));
                    }
                    let mut seg = scan.segment;
                    seg.seal().write(fs, dir)?;
                    report
                        .rebuilt_indexes
                        .push(format::segment_path(dir, base, "index"));
                    report
                        .rebuilt_indexes
                        .push(format::segment_path(dir, base, "timeindex"));
                    segments.push(seg);
                }
            }
            continue;
        }
        let recycled = flags & format::SEGMENT_RECYCLED != 0;
        let scan = segment::scan(
            base,
            path.clone(),
            file.clone(),
            len,
            cfg.max_record_bytes,
            cfg.index_interval_bytes,
            recycled,
        )?;
        let mut seg = scan.segment;
        if let Some(pos) = scan.recycled_from {
            // Not a torn tail: the rest is the recycled file's old content (or a frame
            // never made durable over it), left in place to be written over.
            tracing::debug!(path = %path.display(), position = pos, "girder-log: the active segment's records end where its recycled file's old content begins");
        }
        if let Some((pos, reason)) = scan.damage {
            // Over a recycled file a power loss can keep a later page of an unsynced
            // write and lose an earlier one (a growing file's size protects it from
            // that): valid frames within what could have been unsynced are a torn
            // tail; beyond it, damage.
            let from = if recycled {
                pos.saturating_add(unsynced_window(cfg))
            } else {
                pos
            };
            if segment::valid_frame_after(&*file, &path, from, len, seg.end, cfg.max_record_bytes)?
            {
                return Err(LogError::corrupt(
                    &path,
                    pos,
                    format!("{reason}, followed by valid records"),
                ));
            }
            tracing::warn!(
                path = %path.display(), position = pos, bytes = len - pos, reason,
                "girder-log: truncating a torn tail of the active segment"
            );
            file.set_len(pos).at(&path)?;
            file.sync().at(&path)?;
            report.truncated_bytes += len - pos;
            seg.size = pos;
        }
        // What the previous process wrote may still be only in the page
        // cache; everything recovered is reported durable, so make it so.
        file.sync().at(&path)?;
        // The active segment's indexes live in memory until it is sealed.
        for ext in ["index", "timeindex"] {
            remove_if_exists(fs, &format::segment_path(dir, base, ext))?;
        }
        segments.push(seg);
    }
    if segments.is_empty() {
        segments.push(create_segment(fs, dir, checkpoint.unwrap_or(0))?);
    }
    // Files the previous process created, and indexes rebuilt here, may not
    // be in the directory durably yet.
    fs.sync_dir(dir).at(dir)?;
    let first = segments[0].base;
    let end = segments.last().map_or(first, |s| s.end);
    let start = checkpoint.unwrap_or(first).max(first);
    if start > end {
        return Err(LogError::corrupt(
            dir.join(format::CHECKPOINT_FILE),
            0,
            format!("log start offset {start} is past the end of the log ({end})"),
        ));
    }
    report.segments = segments.len();
    report.start_offset = start;
    report.end_offset = end;
    report.records = end - start;
    Ok((segments, start, report))
}
