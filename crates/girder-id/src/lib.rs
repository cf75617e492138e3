//! Snowflake IDs: 64-bit, roughly time-ordered, unique per node without coordination.
//!
//! Layout (most significant bit first):
//!
//! ```text
//! | 0 | 41 bits: ms since epoch | 10 bits: node | 12 bits: sequence |
//! ```
//!
//! The sign bit stays 0 so an ID fits every signed 64-bit column and JSON tool chain that
//! treats integers as `i64`. 41 bits of milliseconds last about 69.7 years from the epoch
//! (default 2026-01-01T00:00:00Z); 12 bits of sequence give 4096 IDs per millisecond per
//! node, so the layout's ceiling is 4,096,000 IDs/s per generator.
//!
//! # Guarantees of one [`Generator`]
//! - IDs are **strictly increasing** in the order calls return, across all threads.
//! - When the 4096 IDs of a millisecond are used up, the generator **waits** for the clock
//!   to reach the next millisecond.
//! - When the wall clock **moves backwards** (NTP step, VM migration), the generator never
//!   repeats or reorders an ID: it keeps issuing from the last timestamp it used. If that
//!   millisecond's sequence is used up while the clock is still behind, it moves its logical
//!   timestamp forward by one millisecond, so IDs may run ahead of the wall clock, but never
//!   by more than the configured bound. A regression larger than
//!   [`Config::max_clock_regression_ms`] (default 5 s) makes [`Generator::next_id`] return
//!   [`Error::ClockMovedBackwards`] instead of an ID that could collide.
//!
//! Uniqueness across processes relies on distinct node ids, and across restarts of one node
//! on the clock not having moved back past the last ID the previous process issued.
//!
//! # Example
//! ```
//! use girder_id::{Config, Generator, SystemClock};
//!
//! let generator = Generator::new(Config { node_id: 7, ..Config::default() }, SystemClock)?;
//! let a = generator.next_id()?;
//! let b = generator.next_id()?;
//! assert!(b > a);
//! let parts = generator.decode(b);
//! assert_eq!(parts.node_id, 7);
//! # Ok::<(), girder_id::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;

pub use clock::{Clock, ManualClock, SystemClock};

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of the millisecond timestamp.
pub const TIMESTAMP_BITS: u32 = 41;
/// Bits of the node id.
pub const NODE_BITS: u32 = 10;
/// Bits of the per-millisecond sequence.
pub const SEQUENCE_BITS: u32 = 12;
/// Largest node id (1023).
pub const MAX_NODE_ID: u16 = (1 << NODE_BITS) - 1;
/// Largest sequence number within one millisecond (4095).
pub const MAX_SEQUENCE: u64 = (1 << SEQUENCE_BITS) - 1;
/// Largest timestamp offset from the epoch, in milliseconds (about 69.7 years).
pub const MAX_TIMESTAMP: u64 = (1 << TIMESTAMP_BITS) - 1;
/// Default epoch: 2026-01-01T00:00:00Z, in milliseconds since the Unix epoch.
pub const DEFAULT_EPOCH_MS: u64 = 1_767_225_600_000;
/// Default bound on tolerated clock regression: 5 seconds.
pub const DEFAULT_MAX_CLOCK_REGRESSION_MS: u64 = 5_000;

const NODE_SHIFT: u32 = SEQUENCE_BITS;
/// Sentinel for "no ID issued yet": above any real `timestamp << 12 | sequence` (53 bits).
const NONE_ISSUED: u64 = u64::MAX;
const TIMESTAMP_SHIFT: u32 = SEQUENCE_BITS + NODE_BITS;

/// What can go wrong when making or reading an ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The node id does not fit in 10 bits.
    #[error("node id must be between 0 and {MAX_NODE_ID} (got {0})")]
    InvalidNodeId(u64),
    /// The wall clock is further behind the last issued timestamp than the configured bound.
    #[error("clock moved backwards by {behind_ms} ms, more than the tolerated {max_ms} ms; refusing to issue IDs that could repeat")]
    ClockMovedBackwards {
        /// How far the clock is behind the last issued timestamp.
        behind_ms: u64,
        /// The configured bound.
        max_ms: u64,
    },
    /// The clock reads a time before the configured epoch.
    #[error("clock reads {now_ms} ms since the Unix epoch, before the ID epoch {epoch_ms}")]
    ClockBeforeEpoch {
        /// The clock's reading.
        now_ms: u64,
        /// The configured epoch.
        epoch_ms: u64,
    },
    /// 41 bits of milliseconds since the epoch are used up (about 69.7 years after it).
    #[error("timestamp overflow: more than 2^41 ms since the ID epoch")]
    TimestampOverflow,
    /// A value that cannot be an ID of this layout (its sign bit is set).
    #[error("{0} is not a snowflake id: the sign bit is set")]
    NotAnId(u64),
}

/// How a [`Generator`] lays out IDs. No bool parameters: every knob is a named field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// This node's id, 0..=1023. Two generators with the same node id and epoch may collide.
    pub node_id: u16,
    /// The epoch, in milliseconds since the Unix epoch.
    pub epoch_ms: u64,
    /// How far the clock may move backwards before [`Generator::next_id`] returns an error.
    pub max_clock_regression_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_id: 0,
            epoch_ms: DEFAULT_EPOCH_MS,
            max_clock_regression_ms: DEFAULT_MAX_CLOCK_REGRESSION_MS,
        }
    }
}

/// The parts of a decoded ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// Milliseconds since the Unix epoch (epoch + the ID's timestamp field).
    pub unix_ms: u64,
    /// Milliseconds since the generator's epoch: the raw 41-bit field.
    pub timestamp: u64,
    /// The node id field.
    pub node_id: u16,
    /// The sequence field.
    pub sequence: u16,
}

/// Builds an ID from its raw fields. Fields wider than their bit width are masked.
pub fn compose(timestamp: u64, node_id: u16, sequence: u16) -> u64 {
    ((timestamp & MAX_TIMESTAMP) << TIMESTAMP_SHIFT)
        | ((u64::from(node_id) & u64::from(MAX_NODE_ID)) << NODE_SHIFT)
        | (u64::from(sequence) & MAX_SEQUENCE)
}

/// Splits an ID into its parts, given the epoch it was made with.
///
/// # Errors
/// [`Error::NotAnId`] when the sign bit is set.
pub fn decode(id: u64, epoch_ms: u64) -> Result<Parts, Error> {
    if id >> 63 != 0 {
        return Err(Error::NotAnId(id));
    }
    let timestamp = id >> TIMESTAMP_SHIFT;
    Ok(Parts {
        unix_ms: epoch_ms.saturating_add(timestamp),
        timestamp,
        // Masked to 10 and 12 bits, so the casts cannot truncate.
        node_id: ((id >> NODE_SHIFT) & u64::from(MAX_NODE_ID)) as u16,
        sequence: (id & MAX_SEQUENCE) as u16,
    })
}

/// A Snowflake generator. Cheap to share: wrap it in an `Arc` and call from any thread.
///
/// The whole state is one `AtomicU64` holding the last issued `(timestamp << 12 | sequence)`,
/// advanced by compare-and-swap, so `next_id` takes no lock and never blocks other callers
/// except when a millisecond's sequence is exhausted.
#[derive(Debug)]
pub struct Generator<C = SystemClock> {
    config: Config,
    clock: C,
    /// Last issued `timestamp << SEQUENCE_BITS | sequence`, [`NONE_ISSUED`] before the first.
    last: AtomicU64,
    /// How many times a call observed the clock behind the last issued timestamp.
    regressions: AtomicU64,
}

impl<C: Clock> Generator<C> {
    /// Makes a generator.
    ///
    /// # Errors
    /// [`Error::InvalidNodeId`] when `config.node_id` is above 1023.
    pub fn new(config: Config, clock: C) -> Result<Self, Error> {
        if config.node_id > MAX_NODE_ID {
            return Err(Error::InvalidNodeId(u64::from(config.node_id)));
        }
        Ok(Self {
            config,
            clock,
            last: AtomicU64::new(NONE_ISSUED),
            regressions: AtomicU64::new(0),
        })
    }

    /// The configuration this generator was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many calls so far found the wall clock behind the last issued timestamp.
    pub fn clock_regressions(&self) -> u64 {
        self.regressions.load(Ordering::Relaxed)
    }

    /// Decodes an ID made with this generator's epoch.
    ///
    /// # Panics
    /// Never for IDs this generator made; use [`decode`] for untrusted input.
    pub fn decode(&self, id: u64) -> Parts {
        decode(id, self.config.epoch_ms).expect("an id from this generator has its sign bit clear")
    }

    /// Issues the next ID, waiting for the next millisecond if this one's 4096 are used up.
    ///
    /// # Errors
    /// [`Error::ClockMovedBackwards`] when the clock is behind the last issued timestamp by
    /// more than the configured bound; [`Error::ClockBeforeEpoch`] and
    /// [`Error::TimestampOverflow`] when the clock is outside the layout's range.
    pub fn next_id(&self) -> Result<u64, Error> {
        let mut spins = 0u32;
        loop {
            let now = self.now()?;
            let last = self.last.load(Ordering::Acquire);
            let last_ts = last >> SEQUENCE_BITS;
            let next = if last == NONE_ISSUED || now > last_ts {
                now << SEQUENCE_BITS
            } else {
                let behind = last_ts - now;
                if behind > 0 {
                    self.regressions.fetch_add(1, Ordering::Relaxed);
                }
                if behind > self.config.max_clock_regression_ms {
                    return Err(Error::ClockMovedBackwards {
                        behind_ms: behind,
                        max_ms: self.config.max_clock_regression_ms,
                    });
                }
                if last & MAX_SEQUENCE < MAX_SEQUENCE {
                    last + 1
                } else if behind == 0 {
                    // This millisecond is used up: wait for the clock to move on.
                    backoff(&mut spins);
                    continue;
                } else if behind < self.config.max_clock_regression_ms {
                    // Clock is behind and the sequence is used up: borrow the next
                    // millisecond, staying within the regression bound.
                    (last_ts + 1) << SEQUENCE_BITS
                } else {
                    return Err(Error::ClockMovedBackwards {
                        behind_ms: behind + 1,
                        max_ms: self.config.max_clock_regression_ms,
                    });
                }
            };
            if next >> SEQUENCE_BITS > MAX_TIMESTAMP {
                return Err(Error::TimestampOverflow);
            }
            if self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let ts = next >> SEQUENCE_BITS;
                let seq = next & MAX_SEQUENCE;
                return Ok((ts << TIMESTAMP_SHIFT)
                    | (u64::from(self.config.node_id) << NODE_SHIFT)
                    | seq);
            }
        }
    }

    /// Issues `n` IDs in increasing order into `out` (appending).
    ///
    /// # Errors
    /// As [`Generator::next_id`]; IDs issued before the error stay in `out`.
    pub fn next_ids(&self, n: usize, out: &mut Vec<u64>) -> Result<(), Error> {
        out.reserve(n);
        for _ in 0..n {
            out.push(self.next_id()?);
        }
        Ok(())
    }

    /// Milliseconds since the configured epoch, checked against the layout.
    fn now(&self) -> Result<u64, Error> {
        let now_ms = self.clock.now_ms();
        let offset = now_ms
            .checked_sub(self.config.epoch_ms)
            .ok_or(Error::ClockBeforeEpoch {
                now_ms,
                epoch_ms: self.config.epoch_ms,
            })?;
        if offset > MAX_TIMESTAMP {
            return Err(Error::TimestampOverflow);
        }
        Ok(offset)
    }
}

/// Waits a little for the clock to move: spin first (a millisecond is short), then yield
/// so a waiting thread does not starve the one that would advance the clock.
fn backoff(spins: &mut u32) {
    *spins = spins.saturating_add(1);
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests;
