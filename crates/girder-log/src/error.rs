//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Everything the log can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An operating-system call failed.
    #[error("log I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Data on disk is damaged. Opening refuses; `repair` truncates at the damage.
    #[error(
        "log corrupt: {path} at byte {position}: {reason} (run repair to truncate at the damage)"
    )]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte position of the damage in that file.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record bigger than `LogConfig::max_record_bytes`.
    #[error("log record of {size} bytes is over the {max} byte limit")]
    RecordTooLarge {
        /// Payload size asked for.
        size: usize,
        /// The configured limit.
        max: u32,
    },
    /// A read asked for an offset outside `[start_offset, end_offset]`.
    #[error("log offset {offset} out of range [{start}, {end}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: u64,
        /// First readable offset.
        start: u64,
        /// Next offset to be assigned.
        end: u64,
    },
    /// The configuration cannot work.
    #[error("log config: {0}")]
    Config(String),
    /// An earlier write or fsync failed: nothing written since can be trusted
    /// (a failed fsync may have dropped dirty pages the cache still shows), so
    /// the log accepts nothing more. Reopen to recover from what is on disk.
    #[error("log stopped after a write or fsync error; reopen to recover")]
    Failed,
    /// The log was closed or dropped before the operation could complete.
    #[error("log closed")]
    Closed,
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        position: u64,
        reason: impl Into<String>,
    ) -> Self {
        LogError::Corrupt {
            path: path.into(),
            position,
            reason: reason.into(),
        }
    }
}

/// Attaches a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, LogError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, LogError> {
        self.map_err(|e| LogError::io(path, e))
    }
}
