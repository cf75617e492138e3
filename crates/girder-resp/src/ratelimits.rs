//! The state behind `RL.CHECK`: one `girder-limit` keyed limiter per distinct quota.
//!
//! Each call names its algorithm and quota (as redis-cell's `CL.THROTTLE` does), so the
//! same key under two quotas is two independent limits. Limiters are created on first
//! use and bounded twice: at most [`MAX_QUOTAS`] distinct quotas at once, and at most
//! `keys_per_quota` keys per quota (girder-limit's store reclaims idle keys on its own
//! and, when full, forgets the keys nearest to fresh first). A limiter unused for longer
//! than its quota's reset horizon holds only fresh keys, so dropping it when the table
//! is full changes no decision.
//!
//! The state is not part of the keyspace: not in any database, not in DBSIZE or KEYS,
//! not flushed by FLUSHALL, and not persisted (a restart starts every key fresh).

use bytes::Bytes;
use girder_limit::{AlgorithmKind, AnyAlgorithm, Decision, KeyedLimiter, Quota, StoreConfig};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most distinct quotas tracked at once.
pub const MAX_QUOTAS: usize = 1024;

/// Largest `limit` the sliding log accepts: it keeps one timestamp per admitted unit.
pub const MAX_SLIDING_LOG_LIMIT: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct QuotaKey {
    kind: AlgorithmKind,
    limit: u64,
    period_ms: u64,
    burst: u64,
}

struct Limiter {
    keyed: KeyedLimiter<Bytes, AnyAlgorithm>,
    /// Milliseconds after the registry's start of the last check.
    last_used_ms: AtomicU64,
    /// After this long unused, every key is fresh: max(period, burst · period / limit).
    horizon_ms: u64,
}

/// Why a check was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitError {
    /// The quota is not valid (the message says why).
    InvalidQuota(String),
    /// [`MAX_QUOTAS`] quotas are in use.
    TooManyQuotas,
}

/// All `RL.CHECK` limiters.
pub struct RateLimits {
    limiters: RwLock<HashMap<QuotaKey, Arc<Limiter>>>,
    keys_per_quota: usize,
    started: Instant,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("quotas", &self.limiters.read().len())
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// An empty registry whose limiters each track at most `keys_per_quota` keys.
    pub fn new(keys_per_quota: usize) -> Self {
        Self {
            limiters: RwLock::new(HashMap::new()),
            keys_per_quota: keys_per_quota.max(1),
            started: Instant::now(),
        }
    }

    /// Number of quotas with a limiter.
    pub fn quotas(&self) -> usize {
        self.limiters.read().len()
    }

    /// Spends `cost` of `key`'s `limit` per `period_ms` (capacity `burst`) under `kind`.
    ///
    /// # Errors
    /// [`RateLimitError::InvalidQuota`] for a quota girder-limit refuses or a sliding
    /// log above [`MAX_SLIDING_LOG_LIMIT`]; [`RateLimitError::TooManyQuotas`] when the
    /// table is full of quotas in use.
    pub fn check(
        &self,
        key: &[u8],
        kind: AlgorithmKind,
        limit: u64,
        period_ms: u64,
        burst: u64,
        cost: u64,
    ) -> Result<Decision, RateLimitError> {
        let id = QuotaKey {
            kind,
            limit,
            period_ms,
            burst,
        };
        let now_ms = self.started.elapsed().as_millis() as u64;
        let found = self.limiters.read().get(&id).cloned();
        let limiter = match found {
            Some(l) => l,
            None => self.create(id, now_ms)?,
        };
        limiter.last_used_ms.fetch_max(now_ms, Ordering::Relaxed);
        // Owned bytes: a slice of the request buffer stored as a key would pin it.
        Ok(limiter.keyed.check(&Bytes::copy_from_slice(key), cost))
    }

    fn create(&self, id: QuotaKey, now_ms: u64) -> Result<Arc<Limiter>, RateLimitError> {
        if id.kind == AlgorithmKind::SlidingLog && id.limit > MAX_SLIDING_LOG_LIMIT {
            return Err(RateLimitError::InvalidQuota(format!(
                "sliding_log keeps one timestamp per unit: limit must be at most {MAX_SLIDING_LOG_LIMIT}"
            )));
        }
        let quota = Quota::new(id.limit, Duration::from_millis(id.period_ms)).with_burst(id.burst);
        let algorithm = AnyAlgorithm::new(id.kind, quota)
            .map_err(|e| RateLimitError::InvalidQuota(e.to_string()))?;
        let store = StoreConfig {
            max_keys: self.keys_per_quota,
            ..StoreConfig::default()
        };
        let keyed = KeyedLimiter::new(algorithm, store)
            .map_err(|e| RateLimitError::InvalidQuota(e.to_string()))?;
        let per_unit = id.period_ms.div_ceil(id.limit.max(1));
        let horizon_ms = id.period_ms.max(per_unit.saturating_mul(id.burst));
        let mut limiters = self.limiters.write();
        if let Some(existing) = limiters.get(&id) {
            return Ok(Arc::clone(existing));
        }
        if limiters.len() >= MAX_QUOTAS {
            limiters.retain(|_, l| {
                now_ms.saturating_sub(l.last_used_ms.load(Ordering::Relaxed)) <= l.horizon_ms
            });
            if limiters.len() >= MAX_QUOTAS {
                return Err(RateLimitError::TooManyQuotas);
            }
        }
        let limiter = Arc::new(Limiter {
            keyed,
            last_used_ms: AtomicU64::new(now_ms),
            horizon_ms,
        });
        limiters.insert(id, Arc::clone(&limiter));
        Ok(limiter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_are_independent_and_bounded() {
        let rl = RateLimits::new(100);
        let gcra = AlgorithmKind::Gcra;
        assert!(rl.check(b"k", gcra, 1, 60_000, 1, 1).unwrap().allowed);
        assert!(!rl.check(b"k", gcra, 1, 60_000, 1, 1).unwrap().allowed);
        // Another quota on the same key is another limit.
        assert!(rl.check(b"k", gcra, 2, 60_000, 2, 1).unwrap().allowed);
        for i in 2..MAX_QUOTAS as u64 {
            rl.check(b"k", gcra, 1, 60_000 + i, 1, 1).unwrap();
        }
        assert_eq!(rl.quotas(), MAX_QUOTAS);
        assert_eq!(
            rl.check(b"k", gcra, 7, 1, 1, 1),
            Err(RateLimitError::TooManyQuotas),
            "all in use within their horizon"
        );
        assert!(matches!(
            rl.check(b"k", AlgorithmKind::SlidingLog, 100_000, 1000, 100_000, 1),
            Err(RateLimitError::InvalidQuota(_))
        ));
        assert!(matches!(
            rl.check(b"k", gcra, 0, 1000, 1, 1),
            Err(RateLimitError::InvalidQuota(_))
        ));
    }

    #[test]
    fn idle_quotas_make_room() {
        let rl = RateLimits::new(100);
        for i in 0..MAX_QUOTAS as u64 {
            // 1 ms periods, burst 1: every key is fresh 1 ms after its last check.
            rl.check(b"k", AlgorithmKind::Gcra, 1 + i, 1, 1, 1).unwrap();
        }
        assert_eq!(rl.quotas(), MAX_QUOTAS);
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            rl.check(b"k", AlgorithmKind::Gcra, 5, 60_000, 5, 1)
                .unwrap()
                .allowed
        );
        assert!(rl.quotas() < MAX_QUOTAS);
    }
}
