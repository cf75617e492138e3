//! The plain configuration of a limit, and the crate's one error type.

use std::time::Duration;

/// How much may be spent, and over what period.
///
/// A plain struct with public fields so that a configuration crate can build or
/// deserialize it (enable the `serde` feature for `Deserialize`). Call
/// [`Quota::validate`] (the algorithm constructors do) before use.
///
/// * `limit`: units admitted per `period` in the long run.
/// * `period`: the window length for the window algorithms, and the time over
///   which GCRA refills `limit` units.
/// * `burst`: GCRA only: the bucket capacity, i.e. the most units admitted at
///   one instant by a key that has been idle. The window algorithms ignore it
///   (their capacity is `limit` per window). [`Quota::new`] sets it to `limit`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use girder_limit::Quota;
///
/// let q = Quota::new(100, Duration::from_secs(60)).with_burst(10);
/// assert_eq!((q.limit, q.burst), (100, 10));
/// assert!(q.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Quota {
    /// Units admitted per `period`.
    pub limit: u64,
    /// The period over which `limit` applies.
    pub period: Duration,
    /// GCRA bucket capacity (most units at one instant); ignored by window algorithms.
    pub burst: u64,
}

impl Quota {
    /// `limit` units per `period`, with a burst capacity equal to `limit`.
    pub const fn new(limit: u64, period: Duration) -> Self {
        Self {
            limit,
            period,
            burst: limit,
        }
    }

    /// `limit` units per second.
    pub const fn per_second(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(1))
    }

    /// `limit` units per minute.
    pub const fn per_minute(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }

    /// The same quota with a different GCRA burst capacity.
    pub const fn with_burst(mut self, burst: u64) -> Self {
        self.burst = burst;
        self
    }

    /// Checks that the quota can be enforced exactly with nanosecond integer time.
    ///
    /// # Errors
    ///
    /// [`LimitError::InvalidQuota`] if `limit`, `burst` or `period` is zero, if the
    /// period does not fit in `u64` nanoseconds (~584 years), or if the GCRA
    /// emission interval times `burst` overflows it.
    pub fn validate(&self) -> Result<(), LimitError> {
        let invalid = |reason: &'static str| Err(LimitError::InvalidQuota { reason });
        if self.limit == 0 {
            return invalid("limit must be at least 1");
        }
        if self.burst == 0 {
            return invalid("burst must be at least 1");
        }
        let Ok(period) = u64::try_from(self.period.as_nanos()) else {
            return invalid("period must fit in u64 nanoseconds");
        };
        if period == 0 {
            return invalid("period must be positive");
        }
        if self
            .emission_interval_nanos()
            .checked_mul(self.burst)
            .is_none()
        {
            return invalid("burst times period/limit must fit in u64 nanoseconds");
        }
        Ok(())
    }

    /// The period in nanoseconds, saturating (valid quotas never saturate).
    pub(crate) fn period_nanos(&self) -> u64 {
        u64::try_from(self.period.as_nanos()).unwrap_or(u64::MAX)
    }

    /// GCRA's emission interval `T = period / limit`, rounded *up* so that the
    /// integer arithmetic never admits faster than the configured rate.
    pub(crate) fn emission_interval_nanos(&self) -> u64 {
        self.period_nanos().div_ceil(self.limit.max(1)).max(1)
    }
}

/// Errors reported by this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// A [`Quota`] that cannot be enforced.
    #[error("invalid quota: {reason}")]
    InvalidQuota {
        /// Which rule the quota breaks.
        reason: &'static str,
    },
    /// A [`StoreConfig`](crate::StoreConfig) that cannot be honoured.
    #[error("invalid store config: {reason}")]
    InvalidStoreConfig {
        /// Which rule the configuration breaks.
        reason: &'static str,
    },
    /// A policy name that is not a valid structured-field string (printable ASCII without `"` or `\`).
    #[error(
        "invalid rate-limit policy name {name:?}: must be printable ASCII without '\"' or '\\\\'"
    )]
    InvalidPolicyName {
        /// The rejected name.
        name: String,
    },
}
