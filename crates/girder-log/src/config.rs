//! Configuration and report types.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::LogError;
use crate::format::{FRAME_HEADER, SEGMENT_HEADER};

/// How the log is configured. `Default` gives Kafka-like values.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Roll to a new segment when the active one would grow past this many
    /// bytes (a single record bigger than this still goes into an empty segment).
    pub segment_bytes: u64,
    /// Roll when a record's timestamp is more than this many ms after the
    /// active segment's first record. `None`: never roll on time.
    pub segment_ms: Option<u64>,
    /// Add a sparse index entry every this many bytes of frames.
    pub index_interval_bytes: u32,
    /// When appended records are fsynced, and so when they count as durable.
    pub fsync: FsyncPolicy,
    /// What [`Log::enforce_retention`](crate::Log::enforce_retention) deletes.
    pub retention: Retention,
    /// Largest payload `append` accepts.
    pub max_record_bytes: u32,
    /// Bytes appended but not yet written to the OS before `append` blocks.
    ///
    /// Default 8 MiB, not 64: the kernel's copy into the page cache is the
    /// bottleneck of a fast appender, and it runs twice as fast when the
    /// buffer it copies from is still in the CPU cache. Measured with
    /// `examples/append_mbps` (1 KiB records, Interval(1s), 512 MiB, 32 MiB
    /// L3): 64 MiB ~1.0 GB/s, 4-8 MiB ~1.9-2.1 GB/s. 8 MiB still absorbs
    /// tens of milliseconds of fsync stall at hundreds of MB/s.
    pub max_buffered_bytes: usize,
    /// Segment files that deletion (`delete_before`, retention) keeps, renamed aside,
    /// for later segments to write over instead of growing new files (PostgreSQL
    /// recycles its WAL segments the same way). On ext4 an fdatasync after an
    /// append that grows a file also commits the file system's journal; one that
    /// overwrites blocks already written does not, which made `pwrite` + `fdatasync`
    /// of 16–64 KiB 1.4–2.4× faster on this project's test machine. Costs up to this
    /// many segment files of disk beyond what retention keeps. 0 turns it off.
    pub recycle_segments: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 128 << 20,
            segment_ms: None,
            index_interval_bytes: 4096,
            fsync: FsyncPolicy::Interval(Duration::from_millis(1000)),
            retention: Retention::default(),
            max_record_bytes: 16 << 20,
            max_buffered_bytes: 8 << 20,
            recycle_segments: 2,
        }
    }
}

impl LogConfig {
    pub(crate) fn validate(&self) -> Result<(), LogError> {
        let min = (SEGMENT_HEADER + FRAME_HEADER) as u64;
        if self.segment_bytes < min {
            return Err(LogError::Config(format!(
                "segment_bytes must be at least {min}"
            )));
        }
        // File positions in the offset index are u32.
        let limit = u64::from(u32::MAX) - u64::from(self.max_record_bytes) - FRAME_HEADER as u64;
        if self.segment_bytes > limit {
            return Err(LogError::Config(format!(
                "segment_bytes + max_record_bytes must stay under {}",
                u32::MAX
            )));
        }
        if self.max_record_bytes > 1 << 30 {
            return Err(LogError::Config(
                "max_record_bytes must be at most 1 GiB".into(),
            ));
        }
        if self.max_buffered_bytes == 0 {
            return Err(LogError::Config(
                "max_buffered_bytes must be positive".into(),
            ));
        }
        if let FsyncPolicy::Interval(d) = self.fsync {
            if d.is_zero() {
                return Err(LogError::Config(
                    "fsync interval must be positive (use Always)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// When the background flusher fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every write: a record is durable once fsynced. Concurrent
    /// appenders share fsyncs (group commit).
    Always,
    /// At most once per interval; records are durable once fsynced.
    Interval(std::time::Duration),
    /// Never (except on `sync`, `close` and when a segment is sealed): a
    /// record counts as durable once written to the OS.
    Never,
}

/// Which sealed segments [`Log::enforce_retention`](crate::Log::enforce_retention)
/// deletes. Oldest first; the active segment is never deleted. A segment goes
/// when any limit says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Delete the oldest segment while the log would still hold at least this
    /// many bytes without it (Kafka's `retention.bytes`).
    pub max_bytes: Option<u64>,
    /// Delete a segment whose newest record is older than `now - max_age_ms`.
    pub max_age_ms: Option<u64>,
    /// Delete the oldest segment while the log would still hold at least this
    /// many records without it.
    pub max_records: Option<u64>,
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its offset.
    pub offset: u64,
    /// The timestamp given to `append`.
    pub timestamp_ms: u64,
    /// The payload given to `append`.
    pub payload: bytes::Bytes,
}

/// What `Log::open` found and fixed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments in the log.
    pub segments: usize,
    /// Readable records (`end_offset - start_offset`).
    pub records: u64,
    /// First readable offset.
    pub start_offset: u64,
    /// Next offset to be assigned.
    pub end_offset: u64,
    /// Bytes of a torn tail cut off the active segment.
    pub truncated_bytes: u64,
    /// Index files that were missing or invalid and were rebuilt from the data.
    pub rebuilt_indexes: Vec<PathBuf>,
}

/// What `enforce_retention` deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// The deleted segments' `.log` files.
    pub deleted_segments: Vec<PathBuf>,
    /// Their total size.
    pub deleted_bytes: u64,
    /// The log's start offset afterwards.
    pub start_offset: u64,
}

/// Counters since the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Records appended.
    pub appends: u64,
    /// Batches written by the flusher (one `pwrite` each, more if a roll splits one).
    pub writes: u64,
    /// Bytes written to segment files.
    pub bytes_written: u64,
    /// fsyncs of segment data.
    pub fsyncs: u64,
    /// Segments started over a recycled file instead of a new one.
    pub recycled_segments: u64,
}

/// The first damage `check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The damaged file.
    pub path: PathBuf,
    /// Byte position in it.
    pub position: u64,
    /// What is wrong.
    pub reason: String,
}

/// What `check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Segments looked at.
    pub segments: usize,
    /// Valid records before the first damage.
    pub records: u64,
    /// Bytes of valid frames and headers.
    pub bytes: u64,
    /// The first damage, if any. Everything before it was verified.
    pub damage: Option<Damage>,
    /// Index files that are missing or do not match their segment (not data
    /// loss: `open` and `repair` rebuild them).
    pub invalid_indexes: Vec<PathBuf>,
}

/// What `repair` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// The damage it cut at, if there was any.
    pub damage: Option<Damage>,
    /// Bytes removed from the damaged segment.
    pub truncated_bytes: u64,
    /// Whole segments removed because they came after the damage.
    pub removed_segments: Vec<PathBuf>,
    /// Index files rebuilt.
    pub rebuilt_indexes: Vec<PathBuf>,
    /// Next offset after the repair.
    pub end_offset: u64,
}
