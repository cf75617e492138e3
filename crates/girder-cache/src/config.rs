//! Cache configuration.

use std::time::Duration;

use crate::Error;

/// How the cache decides freshness, staleness and early recomputation.
///
/// All windows are measured from the value's expiry (`loaded_at + ttl`) on
/// the injected [`crate::Clock`].
///
/// ```text
/// loaded ──── fresh (XFetch may refresh early) ──── expiry ── SWR window ──┐
///                                                         └── SIE window ──┘
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Maximum number of entries held (moka's size bound; LFU-ish eviction).
    pub max_capacity: u64,
    /// How long a loaded value is fresh.
    pub ttl: Duration,
    /// XFetch β: larger recomputes earlier; `0.0` disables early
    /// recomputation. Default `1.0` (the paper's recommendation).
    pub beta: f64,
    /// Stale-while-revalidate: for this long after expiry a reader gets the
    /// old value at once while one background refresh runs. Zero disables.
    pub stale_while_revalidate: Duration,
    /// Stale-if-error: for this long after expiry, if the loader fails (or
    /// panics), readers get the old value instead of the error. Zero disables.
    pub stale_if_error: Duration,
    /// Negative caching: after a failed load, further loads of that key are
    /// held off for this long and callers get the cached error (or the old
    /// value within the stale-if-error or stale-while-revalidate window).
    /// Zero disables.
    pub negative_ttl: Duration,
    /// Seed for the XFetch random draws; `None` seeds from entropy.
    pub seed: Option<u64>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_capacity: 10_000,
            ttl: Duration::from_secs(60),
            beta: 1.0,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            negative_ttl: Duration::ZERO,
            seed: None,
        }
    }
}

impl CacheConfig {
    /// Checks ranges; the error names the offending field.
    pub fn validate<E>(&self) -> Result<(), Error<E>> {
        if self.max_capacity == 0 {
            return Err(Error::InvalidConfig("max_capacity must be > 0"));
        }
        if self.ttl.is_zero() {
            return Err(Error::InvalidConfig("ttl must be > 0"));
        }
        if !self.beta.is_finite() || self.beta < 0.0 {
            return Err(Error::InvalidConfig("beta must be finite and >= 0"));
        }
        Ok(())
    }

    /// How long moka may keep an entry (real time). Only a coarse upper bound
    /// for memory reclamation: freshness is decided on our own clock. Doubled
    /// plus a second of slack so a virtual clock running slightly ahead of
    /// real time never loses an entry moka should still hold.
    pub(crate) fn storage_ttl(&self) -> Duration {
        let window = self.stale_while_revalidate.max(self.stale_if_error);
        self.ttl
            .saturating_add(window)
            .saturating_add(self.negative_ttl)
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(1))
    }
}

/// What a write-behind [`crate::WriteBehind::write`] does when the queue holds
/// `capacity` distinct keys not yet written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Wait until the writer frees room (backpressure).
    #[default]
    Wait,
    /// Fail at once with [`Error::QueueFull`].
    Reject,
}

/// Write-behind queue settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBehindConfig {
    /// Maximum distinct keys queued or being written. A write to a key that is
    /// already queued (not yet taken by the writer) replaces its value and
    /// takes no extra room.
    pub capacity: usize,
    /// Maximum entries handed to the writer in one call.
    pub max_batch: usize,
    /// Behaviour when `capacity` is reached.
    pub when_full: WhenFull,
}

impl Default for WriteBehindConfig {
    fn default() -> Self {
        Self {
            capacity: 1024,
            max_batch: 64,
            when_full: WhenFull::Wait,
        }
    }
}

impl WriteBehindConfig {
    /// Checks ranges; the error names the offending field.
    pub fn validate<E>(&self) -> Result<(), Error<E>> {
        if self.capacity == 0 {
            return Err(Error::InvalidConfig("capacity must be > 0"));
        }
        if self.max_batch == 0 {
            return Err(Error::InvalidConfig("max_batch must be > 0"));
        }
        Ok(())
    }
}
