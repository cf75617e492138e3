//! A keyed limiter with bounded memory: sharded maps, idle reclamation, a hard cap.
//!
//! Invariants this module keeps:
//! * **Never more than `capacity()` keys.** Each shard holds at most
//!   `max_keys / shards` entries; an insert into a full shard first reclaims idle
//!   keys, then applies the [`CapPolicy`]. Memory is bounded under any key churn,
//!   with no call the user must remember (unlike governor's `retain_recent`).
//! * **Reclaiming idle keys changes no decision.** A key is dropped only once
//!   `now >= fresh_at(state)`, from which point its state is equivalent to a new
//!   key's (see [`Algorithm`]). For GCRA that is "the TAT is in the past".
//! * **`min_fresh_at` is a lower bound** of the `fresh_at` of every entry in its
//!   shard (inserts lower it, and checks never lower an entry's `fresh_at`), so
//!   a shard is swept only when something may actually be reclaimable.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::algorithm::Algorithm;
use crate::{CachePadded, Clock, Decision, Gcra, LimitError, MonotonicClock};

/// What to do when a shard is full of keys that are all still active.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum CapPolicy {
    /// Evict the entries closest to becoming fresh (smallest `fresh_at`). A full
    /// shard first drops its idle keys, then evicts until 1/32 of it is free, so
    /// the O(shard) scan is paid once per batch of new keys, not once per key.
    ///
    /// The default because it keeps the service open to new clients during a
    /// key-churn flood, and it is the eviction that changes decisions the least:
    /// an evicted key regains only what it was closest to regaining anyway.
    #[default]
    EvictNearestFresh,
    /// Deny unknown keys until an entry becomes idle (fail closed). The denial's
    /// `retry_after` is the time until the shard's earliest entry turns fresh.
    ///
    /// Pick this when over-admission is worse than refusing new clients (paid
    /// quotas, abuse-prone endpoints); note a flood of new keys then locks out
    /// legitimate new clients too.
    RejectNewKeys,
}

/// Sizing and reclamation of a [`KeyedLimiter`]. Plain data; `Default` is sensible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct StoreConfig {
    /// Hard cap on tracked keys. The effective cap is `shards · (max_keys / shards)`,
    /// at most `max_keys` (see [`KeyedLimiter::capacity`]).
    pub max_keys: usize,
    /// Number of independently locked shards; rounded down to a power of two and
    /// to at most `max_keys`. More shards, less contention between threads.
    pub shards: usize,
    /// What a full shard does with a new key.
    pub when_full: CapPolicy,
    /// Minimum time between two idle sweeps of one shard. A sweep is O(shard) and
    /// runs inside a check on that shard, only when some entry may be idle.
    pub sweep_interval: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_keys: 100_000,
            shards: 64,
            when_full: CapPolicy::EvictNearestFresh,
            sweep_interval: Duration::from_secs(1),
        }
    }
}

/// Per-key limits over any `Hash + Eq + Clone` key, with bounded memory.
///
/// ```
/// use std::time::Duration;
/// use girder_limit::{Gcra, KeyedLimiter, ManualClock, Quota, StoreConfig};
///
/// let clock = ManualClock::new();
/// let config = StoreConfig { max_keys: 1_000, ..StoreConfig::default() };
/// let limiter = KeyedLimiter::with_clock(Gcra::new(Quota::per_second(1))?, config, clock.clone())?;
/// assert!(limiter.check(&"alice", 1).allowed);
/// assert!(!limiter.check(&"alice", 1).allowed);
/// assert!(limiter.check(&"bob", 1).allowed);
/// assert_eq!(limiter.len(), 2);
///
/// // Once their TATs are in the past the keys are indistinguishable from new
/// // ones, so the store forgets them.
/// clock.advance(Duration::from_secs(2));
/// limiter.sweep();
/// assert_eq!(limiter.len(), 0);
/// # Ok::<(), girder_limit::LimitError>(())
/// ```
pub struct KeyedLimiter<K, A: Algorithm = Gcra, C = MonotonicClock> {
    algorithm: A,
    clock: C,
    hasher: SeededState,
    shards: Box<[PaddedShard<K, A::State>]>,
    shard_mask: usize,
    shard_cap: usize,
    when_full: CapPolicy,
    sweep_interval: u64,
}

/// One shard: its lock, map and sweep bookkeeping, on cache lines of its own.
type PaddedShard<K, S> = CachePadded<Mutex<Shard<K, S>>>;

struct Shard<K, S> {
    map: HashMap<K, S, SeededState>,
    /// Lower bound on `fresh_at` of every entry (u64::MAX when empty).
    min_fresh_at: u64,
    /// When the last sweep ran.
    last_sweep: u64,
    /// `max(min_fresh_at, last_sweep + interval)`: the hot path's only sweep test.
    next_sweep_at: u64,
}

impl<K, S> Shard<K, S> {
    fn refresh_next_sweep(&mut self, interval: u64) {
        self.next_sweep_at = self
            .min_fresh_at
            .max(self.last_sweep.saturating_add(interval));
    }
}

impl<K: Hash + Eq + Clone, A: Algorithm> KeyedLimiter<K, A, MonotonicClock> {
    /// A keyed limiter on real monotonic time.
    ///
    /// # Errors
    ///
    /// [`LimitError::InvalidStoreConfig`] if `max_keys` or `shards` is zero.
    pub fn new(algorithm: A, config: StoreConfig) -> Result<Self, LimitError> {
        Self::with_clock(algorithm, config, MonotonicClock::new())
    }
}

impl<K: Hash + Eq + Clone, A: Algorithm, C: Clock> KeyedLimiter<K, A, C> {
    /// A keyed limiter on `clock`.
    ///
    /// # Errors
    ///
    /// [`LimitError::InvalidStoreConfig`] if `max_keys` or `shards` is zero.
    pub fn with_clock(algorithm: A, config: StoreConfig, clock: C) -> Result<Self, LimitError> {
        if config.max_keys == 0 {
            return Err(LimitError::InvalidStoreConfig {
                reason: "max_keys must be at least 1",
            });
        }
        if config.shards == 0 {
            return Err(LimitError::InvalidStoreConfig {
                reason: "shards must be at least 1",
            });
        }
        // Power of two so the shard index is a mask; never more shards than keys.
        let wanted = config.shards.min(config.max_keys).min(1 << 16);
        let shard_count = 1usize << (usize::BITS - 1 - wanted.leading_zeros());
        let shard_cap = config.max_keys / shard_count;
        let hasher = SeededState::random();
        let shards = (0..shard_count)
            .map(|_| {
                CachePadded(Mutex::new(Shard {
                    map: HashMap::with_hasher(hasher.clone()),
                    min_fresh_at: u64::MAX,
                    last_sweep: 0,
                    next_sweep_at: u64::MAX,
                }))
            })
            .collect();
        Ok(Self {
            algorithm,
            clock,
            hasher,
            shards,
            shard_mask: shard_count - 1,
            shard_cap,
            when_full: config.when_full,
            sweep_interval: u64::try_from(config.sweep_interval.as_nanos()).unwrap_or(u64::MAX),
        })
    }

    /// Spends `cost` units for `key` if its quota allows it now.
    #[inline]
    pub fn check(&self, key: &K, cost: u64) -> Decision {
        let now = self.clock.now();
        let mut shard = self.shard_for(key);
        if now >= shard.next_sweep_at {
            self.sweep_shard(&mut shard, now);
        }
        if let Some(state) = shard.map.get_mut(key) {
            return self.algorithm.check(state, now, cost);
        }
        self.check_new(&mut shard, key, now, cost)
    }

    /// The slow path: `key` is not tracked.
    #[cold]
    fn check_new(&self, shard: &mut Shard<K, A::State>, key: &K, now: u64, cost: u64) -> Decision {
        let mut state = self.algorithm.new_state();
        let decision = self.algorithm.check(&mut state, now, cost);
        let fresh_at = self.algorithm.fresh_at(&state);
        if fresh_at <= now {
            // Nothing was spent (denied, or cost 0): a new key says the same next time.
            return decision;
        }
        if shard.map.len() >= self.shard_cap {
            if now >= shard.min_fresh_at {
                self.sweep_shard(shard, now);
            }
            match self.when_full {
                CapPolicy::EvictNearestFresh => {
                    // Make room for a whole batch, so the O(shard) work above
                    // and below is paid once per batch of new keys, not per key.
                    let target = self.shard_cap - self.evict_batch();
                    if shard.map.len() > target {
                        self.evict_nearest_fresh(shard, shard.map.len() - target);
                    }
                }
                CapPolicy::RejectNewKeys if shard.map.len() >= self.shard_cap => {
                    // The sweep above left min_fresh_at > now, so this wait is positive.
                    let wait = shard.min_fresh_at.saturating_sub(now);
                    return Decision::deny(0, wait, wait);
                }
                CapPolicy::RejectNewKeys => {}
            }
        }
        shard.map.insert(key.clone(), state);
        shard.min_fresh_at = shard.min_fresh_at.min(fresh_at);
        shard.refresh_next_sweep(self.sweep_interval);
        decision
    }

    fn shard_for(&self, key: &K) -> MutexGuard<'_, Shard<K, A::State>> {
        // Bits 32.. pick the shard: hashbrown uses the low bits for the bucket and
        // the top 7 for its tags, so the shard choice stays independent of both.
        let index = (self.hasher.hash_one(key) >> 32) as usize & self.shard_mask;
        // The algorithms do not panic while holding the lock, and even if one
        // did, the map is still structurally valid: keep serving.
        self.shards[index]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops every idle entry of `shard` and recomputes its lower bound.
    fn sweep_shard(&self, shard: &mut Shard<K, A::State>, now: u64) {
        let mut min = u64::MAX;
        shard.map.retain(|_, state| {
            let fresh_at = self.algorithm.fresh_at(state);
            let keep = fresh_at > now;
            if keep {
                min = min.min(fresh_at);
            }
            keep
        });
        shard.min_fresh_at = min;
        shard.last_sweep = now;
        shard.refresh_next_sweep(self.sweep_interval);
    }

    /// How many entries a full shard frees at once under [`CapPolicy::EvictNearestFresh`].
    fn evict_batch(&self) -> usize {
        (self.shard_cap / 32).max(1)
    }

    /// Evicts the `batch` entries with the smallest `fresh_at`.
    fn evict_nearest_fresh(&self, shard: &mut Shard<K, A::State>, batch: usize) {
        let batch = batch.min(shard.map.len());
        if batch == 0 {
            return;
        }
        let mut fresh: Vec<u64> = shard
            .map
            .values()
            .map(|s| self.algorithm.fresh_at(s))
            .collect();
        let (_, &mut threshold, _) = fresh.select_nth_unstable(batch - 1);
        let below = fresh.iter().filter(|&&f| f < threshold).count();
        // Ties at the threshold: evict only as many as the batch still needs.
        let mut at_threshold = batch - below;
        let mut min = u64::MAX;
        shard.map.retain(|_, state| {
            let f = self.algorithm.fresh_at(state);
            let evict = f < threshold || (f == threshold && at_threshold > 0);
            if evict && f == threshold {
                at_threshold -= 1;
            }
            if !evict {
                min = min.min(f);
            }
            !evict
        });
        shard.min_fresh_at = min;
        shard.refresh_next_sweep(self.sweep_interval);
    }

    /// Reclaims every idle key now, in all shards (checks also do this on their
    /// own; call it to release memory during quiet periods).
    pub fn sweep(&self) {
        let now = self.clock.now();
        for shard in self.shards.iter() {
            let mut shard = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
            self.sweep_shard(&mut shard, now);
        }
    }

    /// Number of keys currently tracked (locks each shard in turn).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().unwrap_or_else(PoisonError::into_inner).map.len())
            .sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K, A: Algorithm, C> KeyedLimiter<K, A, C> {
    /// The hard cap on tracked keys actually enforced (`<= StoreConfig::max_keys`).
    pub fn capacity(&self) -> usize {
        self.shard_cap * self.shards.len()
    }

    /// The algorithm being run.
    pub fn algorithm(&self) -> &A {
        &self.algorithm
    }

    /// The clock in use.
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

impl<K, A: Algorithm, C> std::fmt::Debug for KeyedLimiter<K, A, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("quota", self.algorithm.quota())
            .field("shards", &self.shards.len())
            .field("shard_cap", &self.shard_cap)
            .field("when_full", &self.when_full)
            .finish_non_exhaustive()
    }
}

/// A fast seeded hasher (folded multiply, as in foldhash/ahash's fallback).
///
/// std's SipHash costs more than the rest of a check for small keys. The seed is
/// random per limiter so an outsider cannot precompute colliding keys; it is not
/// a cryptographic defence, but the per-shard cap bounds what collisions cost.
#[derive(Clone)]
struct SeededState {
    seed: u64,
}

impl SeededState {
    fn random() -> Self {
        // std's RandomState is seeded from the OS once per thread and then
        // incremented; hashing a constant with it yields a distinct random seed.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        Self { seed: seed | 1 }
    }
}

impl BuildHasher for SeededState {
    type Hasher = FoldHasher;

    #[inline]
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher {
            acc: self.seed,
            seed: self.seed,
        }
    }
}

struct FoldHasher {
    acc: u64,
    seed: u64,
}

const MUL: u64 = 0x9E37_79B9_7F4A_7C15;
const MUL2: u64 = 0xD6E8_FEB8_6659_FD93;

#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length tag keeps "ab" and "ab\0" apart.
            self.write_u64(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.acc = folded_multiply(self.acc ^ n, MUL);
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        folded_multiply(self.acc, MUL2 ^ self.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hasher_spreads_sequential_keys_over_shards() {
        let state = SeededState::random();
        let mut counts = [0usize; 64];
        for key in 0u64..64_000 {
            counts[(state.hash_one(key) >> 32) as usize & 63] += 1;
        }
        // Each shard should get ~1000; a broken mix piles keys into a few shards.
        assert!(
            counts.iter().all(|&c| (700..1300).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn hasher_distinguishes_padding() {
        let state = SeededState::random();
        assert_ne!(state.hash_one("ab"), state.hash_one("ab\0"));
        assert_ne!(state.hash_one(1u64), state.hash_one(2u64));
    }
}
