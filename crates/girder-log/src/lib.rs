//! A durable, segmented, append-only log — Kafka's storage model — used as
//! the journal under Girder's streams.
//!
//! * **Appends are memory copies.** [`Log::append`] encodes the record into an
//!   in-memory tail under one mutex and returns its offset; it makes no
//!   system call (beyond waking an idle flusher) and blocks only when more
//!   than [`LogConfig::max_buffered_bytes`] wait to be written.
//! * **One flusher thread per log** writes the tail with one `pwrite`, rolls
//!   segments, and fsyncs per [`FsyncPolicy`] (under `Interval`, and for
//!   [`Log::sync`], a second thread runs the fsync while the flusher goes on
//!   writing). Under `Always` it fsyncs as
//!   soon as data is pending, so appenders that arrive during an fsync share
//!   the next one (group commit). [`Log::wait_durable`] is the future a
//!   caller awaits before acknowledging a write.
//! * **After a failed write or fsync the log stops** ([`LogError::Failed`]
//!   for every waiter and every later call): after a failed fsync the page
//!   cache may show data the disk lost, so nothing more is trusted until the
//!   log is reopened from disk (PostgreSQL's "fsyncgate" lesson).
//! * **Recovery** scans the active segment and cuts a torn tail; sealed
//!   segments are trusted through their checksummed indexes (rebuilt when
//!   missing or invalid). Any other damage is [`LogError::Corrupt`] naming the
//!   file and byte; [`check`] verifies everything, [`repair`] truncates at the
//!   first damage.
//!
//! The file format is described in the crate's README.md.
//!
//! # Example
//!
//! ```
//! use girder_log::{FsyncPolicy, Log, LogConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let config = LogConfig { fsync: FsyncPolicy::Always, ..LogConfig::default() };
//! let (log, report) = Log::open(dir.path(), config.clone())?;
//! assert_eq!(report.records, 0);
//!
//! let first = log.append(1_700_000_000_000, b"hello")?;
//! let range = log.append_batch(1_700_000_000_005, &[b"big", b"world"])?;
//! assert_eq!((first, range), (0, 1..3));
//! log.sync()?; // or `log.wait_durable(2).await` from async code
//! assert!(log.durable_offset() >= 3);
//!
//! let records = log.read(1, 1 << 20)?;
//! assert_eq!(records.len(), 2);
//! assert_eq!(&records[1].payload[..], b"world");
//! assert_eq!(log.offset_for_timestamp(1_700_000_000_001)?, Some(1));
//! log.close()?;
//!
//! // Reopening finds everything that was synced.
//! let (log, report) = Log::open(dir.path(), config)?;
//! assert_eq!((report.records, report.truncated_bytes), (3, 0));
//! assert_eq!(log.end_offset(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod check;
mod config;
mod error;
mod format;
mod fs;
mod log;
mod segment;
#[cfg(test)]
mod tests;

pub use check::{check, repair};
pub use config::{
    CheckReport, Damage, FsyncPolicy, LogConfig, LogStats, Record, RecoveryReport, RepairReport,
    Retention, RetentionReport,
};
pub use error::LogError;
pub use log::Log;
