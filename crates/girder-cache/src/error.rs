//! The crate's single error type.

use std::sync::Arc;

/// Errors returned by the cache and the write helpers.
///
/// `E` is the caller's loader / writer error type. Loader errors are shared
/// between every caller that waited on the same load (and with callers served
/// from the negative cache), hence `Arc<E>`.
#[derive(Debug, thiserror::Error)]
pub enum Error<E> {
    /// The loader returned an error (possibly served from the negative cache).
    #[error("loader failed: {0}")]
    Load(Arc<E>),
    /// The loader panicked; the panic was contained and shared with waiters.
    #[error("loader panicked")]
    LoaderPanicked,
    /// A write-through writer returned an error; the cache was not updated.
    #[error("write failed: {0}")]
    Write(E),
    /// The write-behind queue is full and the policy is [`crate::WhenFull::Reject`].
    #[error("write-behind queue is full")]
    QueueFull,
    /// The write-behind queue is shut down and accepts no more writes.
    #[error("write-behind queue is closed")]
    Closed,
    /// A configuration value is out of range; the field is named.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// A background task needs a tokio runtime and none is running.
    #[error("no tokio runtime is running")]
    NoRuntime,
}
