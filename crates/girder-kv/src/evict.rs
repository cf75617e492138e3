//! The memory limit and eviction: Redis's `maxmemory` and `maxmemory-policy`.
//!
//! # Memory
//! The keyspace does not estimate its own size. A front end installs a probe
//! ([`Keyspace::set_memory_probe`]) that reports what the process's allocator holds (in
//! Girder, `girder-alloc`'s counting allocator): every byte counts, hash tables,
//! connection buffers and allocator rounding included, as Redis's `used_memory` does.
//!
//! # Eviction
//! Before a command runs, the front end calls [`Keyspace::make_room`]. While the probe
//! reads above `maxmemory`, it deletes keys chosen by the policy, each through the normal
//! write path (so the journal records the deletion and WATCH sees it). Under
//! `noeviction`, or with nothing left to evict, it reports
//! [`KvError::OutOfMemory`] and the front end refuses commands that may grow memory.
//!
//! The LRU and LFU policies are approximated as Redis approximates them: each round
//! samples `maxmemory-samples` keys per database from a random shard (O(1): a walk from
//! a random bucket of the shard's table), keeps the best candidates seen in a pool of
//! [`POOL_SIZE`], and evicts the best of the pool. Girder's stamps are finer than
//! Redis's: LRU time is kept in milliseconds (Redis: seconds), so keys used within the
//! same second are still told apart; a candidate's score is read again before it is
//! evicted, so a key used since it was sampled goes back to the pool instead of out.
//! `volatile-ttl` takes the soonest deadline of the sampled shards, read from the
//! shard's deadline index: exact per shard, where Redis samples.
//!
//! The LFU counter is Redis's: 8 bits, incremented on use with probability
//! `1 / ((counter - 5) * lfu-log-factor + 1)`, decremented by one per `lfu-decay-time`
//! minutes without use; a new key starts at 5.

use crate::shard::{Entry, Key};
use crate::{Keyspace, KvError};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which keys go when memory is over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// None: commands that may grow memory are refused.
    #[default]
    NoEviction,
    /// The least recently used of all keys.
    AllKeysLru,
    /// The least frequently used of all keys.
    AllKeysLfu,
    /// Any key.
    AllKeysRandom,
    /// The least recently used of the keys with a TTL.
    VolatileLru,
    /// The least frequently used of the keys with a TTL.
    VolatileLfu,
    /// Any key with a TTL.
    VolatileRandom,
    /// The key with the soonest deadline.
    VolatileTtl,
}

impl Policy {
    /// Every policy, in `u8` order.
    pub const ALL: [Policy; 8] = [
        Self::NoEviction,
        Self::AllKeysLru,
        Self::AllKeysLfu,
        Self::AllKeysRandom,
        Self::VolatileLru,
        Self::VolatileLfu,
        Self::VolatileRandom,
        Self::VolatileTtl,
    ];

    /// Redis's name (`CONFIG GET maxmemory-policy`).
    pub fn name(self) -> &'static str {
        match self {
            Self::NoEviction => "noeviction",
            Self::AllKeysLru => "allkeys-lru",
            Self::AllKeysLfu => "allkeys-lfu",
            Self::AllKeysRandom => "allkeys-random",
            Self::VolatileLru => "volatile-lru",
            Self::VolatileLfu => "volatile-lfu",
            Self::VolatileRandom => "volatile-random",
            Self::VolatileTtl => "volatile-ttl",
        }
    }

    /// The policy named `name` (any case).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Whether only keys with a TTL are candidates.
    pub fn volatile(self) -> bool {
        matches!(
            self,
            Self::VolatileLru | Self::VolatileLfu | Self::VolatileRandom | Self::VolatileTtl
        )
    }

    /// Whether the access stamps are LFU counters (else LRU times).
    pub fn lfu(self) -> bool {
        matches!(self, Self::AllKeysLfu | Self::VolatileLfu)
    }

    fn random(self) -> bool {
        matches!(self, Self::AllKeysRandom | Self::VolatileRandom)
    }

    fn from_u8(v: u8) -> Self {
        Self::ALL[usize::from(v) % Self::ALL.len()]
    }

    fn as_u8(self) -> u8 {
        Self::ALL.iter().position(|p| *p == self).unwrap_or(0) as u8
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Reports the bytes the process's allocator holds; `None` when it cannot tell.
pub type MemoryProbe = Arc<dyn Fn() -> Option<usize> + Send + Sync>;

/// Best candidates kept between rounds (Redis's `EVPOOL_SIZE`).
pub const POOL_SIZE: usize = 16;

/// Longest one [`Keyspace::make_room`] call evicts before letting its command run
/// (the rest is evicted before the next command, or by the server's periodic cycle).
const TIME_LIMIT: Duration = Duration::from_millis(2);

/// A new key's LFU counter, so it is not the first to go (Redis's `LFU_INIT_VAL`).
const LFU_INIT: u64 = 5;

/// Settings and counters of the memory limit.
pub(crate) struct Eviction {
    maxmemory: AtomicU64,
    policy: AtomicU8,
    samples: AtomicU32,
    lfu_log_factor: AtomicU32,
    lfu_decay_time: AtomicU32,
    /// Read on every command while a limit is set: a plain load, no lock.
    probe: std::sync::OnceLock<MemoryProbe>,
    evicted: AtomicU64,
    /// Held for a whole `make_room` call, so one caller evicts at a time.
    state: Mutex<EvictionState>,
}

/// What one eviction call leaves to the next.
#[derive(Debug, Default)]
struct EvictionState {
    /// The candidate pool, ascending by score.
    pool: Vec<Candidate>,
    /// The databases holding candidates, as last counted (counting locks every shard,
    /// so it is not done for every command while memory is over the limit).
    dbs: Vec<usize>,
    /// When `dbs` was counted, and for which kind of policy (volatile or not).
    counted: Option<(Instant, bool)>,
}

/// How long a count of the candidate databases is used.
const RECOUNT: Duration = Duration::from_millis(100);

impl Default for Eviction {
    fn default() -> Self {
        Self {
            maxmemory: AtomicU64::new(0),
            policy: AtomicU8::new(Policy::NoEviction.as_u8()),
            samples: AtomicU32::new(5),
            lfu_log_factor: AtomicU32::new(10),
            lfu_decay_time: AtomicU32::new(1),
            probe: std::sync::OnceLock::new(),
            evicted: AtomicU64::new(0),
            state: Mutex::new(EvictionState::default()),
        }
    }
}

#[derive(Debug)]
struct Candidate {
    /// Higher goes first.
    score: u64,
    db: usize,
    key: Key,
}

/// How a key's access stamp moves when it is used: the command's time, and whether the
/// stamp is an LFU counter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clocking {
    now_ms: u64,
    lfu: Option<Lfu>,
    /// Uses leave stamps as they are (CLIENT NO-TOUCH).
    frozen: bool,
}

#[derive(Debug, Clone, Copy)]
struct Lfu {
    log_factor: u32,
    decay_minutes: u32,
}

/// An LFU stamp: the minute of the last decay in the high bits, the counter in the low 8.
fn lfu_stamp(now_ms: u64, counter: u64) -> u64 {
    ((now_ms / 60_000) << 8) | counter.min(255)
}

impl Lfu {
    /// The counter of `stamp` after the minutes since it was stamped took their toll.
    fn decayed(self, stamp: u64, now_ms: u64) -> u64 {
        let counter = stamp & 0xff;
        if self.decay_minutes == 0 {
            return counter;
        }
        let elapsed = (now_ms / 60_000).saturating_sub(stamp >> 8);
        counter.saturating_sub(elapsed / u64::from(self.decay_minutes))
    }

    /// One access: the counter grows, less likely the higher it is.
    fn incremented(self, counter: u64) -> u64 {
        if counter >= 255 {
            return 255;
        }
        let base = counter.saturating_sub(LFU_INIT) as f64;
        let p = 1.0 / (base * f64::from(self.log_factor) + 1.0);
        if fastrand::f64() < p {
            counter + 1
        } else {
            counter
        }
    }
}

impl Clocking {
    /// The stamp of a key created now.
    pub(crate) fn fresh(self) -> u64 {
        match self.lfu {
            None => self.now_ms,
            Some(_) => lfu_stamp(self.now_ms, LFU_INIT),
        }
    }

    /// The stamp of a key with stamp `old` given a new value: recent now, and as frequent
    /// as it was (the command that overwrites it used it already, as in Redis).
    pub(crate) fn overwritten(self, old: u64) -> u64 {
        match self.lfu {
            None => self.now_ms,
            Some(_) => old,
        }
    }

    /// The same clock, but uses leave stamps as they are.
    pub(crate) fn frozen(self) -> Self {
        Self {
            frozen: true,
            ..self
        }
    }

    /// The stamp of a key with stamp `old`, used now.
    pub(crate) fn touched(self, old: u64) -> u64 {
        if self.frozen {
            return old;
        }
        match self.lfu {
            None => self.now_ms,
            Some(lfu) => {
                let counter = lfu.incremented(lfu.decayed(old, self.now_ms));
                lfu_stamp(self.now_ms, counter)
            }
        }
    }
}

/// What [`Keyspace::object_access`] reports for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Seconds since the key was last used (an LRU policy, or none).
    IdleSeconds(u64),
    /// Its LFU counter (an LFU policy).
    Frequency(u64),
}

impl Keyspace {
    pub(crate) fn clocking(&self, now_ms: u64) -> Clocking {
        let policy = Policy::from_u8(self.eviction.policy.load(Ordering::Relaxed));
        Clocking {
            now_ms,
            lfu: policy.lfu().then(|| self.lfu()),
            frozen: false,
        }
    }

    fn lfu(&self) -> Lfu {
        Lfu {
            log_factor: self.eviction.lfu_log_factor.load(Ordering::Relaxed),
            decay_minutes: self.eviction.lfu_decay_time.load(Ordering::Relaxed),
        }
    }

    /// Sets `maxmemory`, in bytes; 0 is no limit.
    pub fn set_maxmemory(&self, bytes: u64) {
        self.eviction.maxmemory.store(bytes, Ordering::Relaxed);
    }

    /// The memory limit, in bytes; 0 is none.
    pub fn maxmemory(&self) -> u64 {
        self.eviction.maxmemory.load(Ordering::Relaxed)
    }

    /// Sets `maxmemory-policy`. Switching between LRU and LFU reinterprets the stamps
    /// keys carry: they take a while to mean the new thing (as in Redis).
    pub fn set_eviction_policy(&self, policy: Policy) {
        self.eviction
            .policy
            .store(policy.as_u8(), Ordering::Relaxed);
    }

    /// The eviction policy.
    pub fn eviction_policy(&self) -> Policy {
        Policy::from_u8(self.eviction.policy.load(Ordering::Relaxed))
    }

    /// Sets `maxmemory-samples`: keys sampled per database per round (clamped to 1..=64).
    pub fn set_eviction_samples(&self, samples: u32) {
        self.eviction
            .samples
            .store(samples.clamp(1, 64), Ordering::Relaxed);
    }

    /// Keys sampled per database per eviction round.
    pub fn eviction_samples(&self) -> u32 {
        self.eviction.samples.load(Ordering::Relaxed)
    }

    /// Sets `lfu-log-factor` (how slowly the LFU counter grows).
    pub fn set_lfu_log_factor(&self, factor: u32) {
        self.eviction
            .lfu_log_factor
            .store(factor, Ordering::Relaxed);
    }

    /// The LFU counter's growth factor.
    pub fn lfu_log_factor(&self) -> u32 {
        self.eviction.lfu_log_factor.load(Ordering::Relaxed)
    }

    /// Sets `lfu-decay-time`: minutes without access per unit the LFU counter loses
    /// (0: never decays).
    pub fn set_lfu_decay_time(&self, minutes: u32) {
        self.eviction
            .lfu_decay_time
            .store(minutes, Ordering::Relaxed);
    }

    /// Minutes per unit of LFU decay.
    pub fn lfu_decay_time(&self) -> u32 {
        self.eviction.lfu_decay_time.load(Ordering::Relaxed)
    }

    /// Installs what reports the memory in use (once, before serving); without one,
    /// `maxmemory` cannot be held to and nothing is evicted. Returns false when a probe
    /// was installed already.
    pub fn set_memory_probe(&self, probe: MemoryProbe) -> bool {
        self.eviction.probe.set(probe).is_ok()
    }

    /// The memory in use, as the probe reports it.
    pub fn used_memory(&self) -> Option<usize> {
        self.eviction.probe.get().and_then(|probe| probe())
    }

    /// Keys evicted since the keyspace was created.
    pub fn evicted_keys(&self) -> u64 {
        self.eviction.evicted.load(Ordering::Relaxed)
    }

    /// Whether memory in use is over a set limit.
    pub fn over_maxmemory(&self) -> bool {
        let max = self.maxmemory();
        max != 0 && self.used_memory().is_some_and(|used| used as u64 > max)
    }

    /// How recently or how often `key` was used (OBJECT IDLETIME / FREQ), without using
    /// it; `None` when it does not exist.
    ///
    /// # Errors
    /// [`KvError::DbIndexOutOfRange`].
    pub fn object_access(&self, db: usize, key: &[u8]) -> Result<Option<Access>, KvError> {
        let now = self.now_ms();
        let policy = self.eviction_policy();
        let lfu = self.lfu();
        let db = self.db(db)?;
        Ok(db.peek(key, |entry| {
            entry.map(|e| {
                if policy.lfu() {
                    Access::Frequency(lfu.decayed(e.access, now))
                } else {
                    Access::IdleSeconds(now.saturating_sub(e.access) / 1000)
                }
            })
        }))
    }

    /// Evicts keys until the memory in use is within `maxmemory` (or for at most a few
    /// milliseconds), calling `on_evicted(db, key)` for each; returns how many went.
    ///
    /// # Errors
    /// [`KvError::OutOfMemory`] when memory is over the limit and the policy is
    /// `noeviction` or no key is left to evict: the caller refuses commands that may
    /// grow memory.
    pub fn make_room(&self, on_evicted: &mut dyn FnMut(usize, &[u8])) -> Result<usize, KvError> {
        let max = self.maxmemory();
        if max == 0 {
            return Ok(0);
        }
        let Some(probe) = self.eviction.probe.get() else {
            return Ok(0);
        };
        let over = || probe().is_some_and(|used| used as u64 > max);
        if !over() {
            return Ok(0);
        }
        let policy = self.eviction_policy();
        if policy == Policy::NoEviction {
            return Err(KvError::OutOfMemory);
        }
        let mut state = self.eviction.state.lock();
        let EvictionState { pool, dbs, counted } = &mut *state;
        // The clocks are read once per call (at most `TIME_LIMIT` long), not per victim:
        // with every write evicting, four reads a victim were 3.5% of the server (perf).
        let started = Instant::now();
        let now = self.now_ms();
        let volatile = policy.volatile();
        let mut fresh = false;
        if counted
            .is_none_or(|(at, v)| v != volatile || started.saturating_duration_since(at) > RECOUNT)
        {
            *dbs = self.candidate_dbs(volatile);
            *counted = Some((started, volatile));
            fresh = true;
        }
        let mut evicted = 0;
        let mut rounds = 0u32;
        while over() {
            let mut victim = self.victim(pool, dbs, policy, now);
            if victim.is_none() && !fresh {
                // The count may be stale (keys moved to another database): count again.
                *dbs = self.candidate_dbs(volatile);
                *counted = Some((Instant::now(), volatile));
                fresh = true;
                victim = self.victim(pool, dbs, policy, now);
            }
            let Some((index, key)) = victim else {
                return Err(KvError::OutOfMemory);
            };
            // The pooled policies evicted their victim already.
            let gone = !policy.random() || {
                let db = self.db_at(index, now)?;
                db.write(key.as_slice(), |slot| slot.remove().is_some())
            };
            if gone {
                evicted += 1;
                self.eviction.evicted.fetch_add(1, Ordering::Relaxed);
                on_evicted(index, key.as_slice());
            }
            rounds = rounds.wrapping_add(1);
            if rounds.is_multiple_of(8) && started.elapsed() > TIME_LIMIT {
                break;
            }
        }
        Ok(evicted)
    }

    /// The databases that hold candidates (keys; for a volatile policy, keys with a TTL).
    fn candidate_dbs(&self, volatile: bool) -> Vec<usize> {
        self.db_sizes()
            .into_iter()
            .enumerate()
            .filter(|(_, (keys, with_ttl))| if volatile { *with_ttl > 0 } else { *keys > 0 })
            .map(|(i, _)| i)
            .collect()
    }

    /// A random policy's victim (still to be removed), or a pooled policy's (removed),
    /// judged at `now` (ms since the epoch).
    fn victim(
        &self,
        pool: &mut Vec<Candidate>,
        dbs: &[usize],
        policy: Policy,
        now: u64,
    ) -> Option<(usize, Key)> {
        if policy.random() {
            self.random_victim(dbs, policy.volatile())
        } else {
            self.pooled_victim(pool, dbs, policy, now)
        }
    }

    /// A key of a random candidate database, sampled from a random shard.
    fn random_victim(&self, dbs: &[usize], volatile: bool) -> Option<(usize, Key)> {
        if dbs.is_empty() {
            return None;
        }
        for _ in 0..64 {
            let index = dbs[fastrand::usize(..dbs.len())];
            let mut found = None;
            self.with_some_shard(index, volatile, |shard| {
                shard.table().sample(1, |k, e| {
                    if volatile && e.expire_at.is_none() {
                        return false;
                    }
                    found = Some(k.clone());
                    true
                });
                if found.is_none() && volatile {
                    found = shard.soonest_deadline().map(|(_, k)| k.clone());
                }
            });
            if let Some(key) = found {
                return Some((index, key));
            }
        }
        None
    }

    /// Samples every candidate database into the pool, then evicts the best candidate
    /// whose score still holds; returns it.
    fn pooled_victim(
        &self,
        pool: &mut Vec<Candidate>,
        dbs: &[usize],
        policy: Policy,
        now: u64,
    ) -> Option<(usize, Key)> {
        let samples = self.eviction_samples() as usize;
        let lfu = self.lfu();
        let score = |e: &Entry| -> Option<u64> {
            if policy.volatile() && e.expire_at.is_none() {
                return None;
            }
            Some(match policy {
                Policy::VolatileTtl => u64::MAX - e.expire_at.unwrap_or(u64::MAX),
                p if p.lfu() => 255 - lfu.decayed(e.access, now),
                _ => now.saturating_sub(e.access),
            })
        };
        for _round in 0..8 {
            for &index in dbs {
                if policy == Policy::VolatileTtl {
                    for _ in 0..samples {
                        self.with_some_shard(index, true, |shard| {
                            if let Some((t, k)) = shard.soonest_deadline() {
                                offer(pool, u64::MAX - t, index, k);
                            }
                        });
                    }
                    continue;
                }
                self.with_some_shard(index, policy.volatile(), |shard| {
                    shard.table().sample(samples, |k, e| match score(e) {
                        Some(s) => {
                            offer(pool, s, index, k);
                            true
                        }
                        None => false,
                    });
                    if policy.volatile() {
                        // Few keys with a TTL among many: the walk may miss them all.
                        if let Some((_, k)) = shard.soonest_deadline() {
                            if let Some(e) = shard.table().get(k.as_slice()) {
                                if let Some(s) = score(e) {
                                    offer(pool, s, index, k);
                                }
                            }
                        }
                    }
                });
            }
            // The best candidate goes if it is still there and still as good; the check
            // and the removal are one write call (one shard lock, one lookup).
            while let Some(best) = pool.pop() {
                let next = pool.last().map(|c| c.score);
                let Ok(db) = self.db_at(best.db, now) else {
                    continue;
                };
                let outcome = db.write(best.key.as_slice(), |slot| {
                    match slot.peek().and_then(&score) {
                        None => None,
                        Some(s) if next.is_some_and(|next| s < next) => Some(Some(s)),
                        Some(_) => {
                            slot.remove();
                            Some(None)
                        }
                    }
                });
                match outcome {
                    None => {}
                    Some(Some(rescored)) => offer(pool, rescored, best.db, &best.key),
                    Some(None) => return Some((best.db, best.key)),
                }
            }
        }
        None
    }

    /// Runs `f` on a shard of database `index` that holds candidates (keys; for a
    /// volatile policy, keys with a TTL): a random one, or the next such after it.
    fn with_some_shard(&self, index: usize, volatile: bool, f: impl FnOnce(&crate::shard::Shard)) {
        let shards = &self.dbs[index].shards;
        let start = fastrand::usize(..shards.len());
        for i in 0..shards.len() {
            let shard = shards[(start + i) % shards.len()].lock();
            let candidates = if volatile {
                shard.volatile_len()
            } else {
                shard.len()
            };
            if candidates > 0 {
                f(&shard);
                return;
            }
        }
    }
}

/// Puts a candidate in the pool (ascending by score, at most [`POOL_SIZE`]); a key
/// already there takes the new score.
fn offer(pool: &mut Vec<Candidate>, score: u64, db: usize, key: &Key) {
    if let Some(at) = pool
        .iter()
        .position(|c| c.db == db && c.key.as_slice() == key.as_slice())
    {
        pool.remove(at);
    } else if pool.len() >= POOL_SIZE && pool.first().is_some_and(|c| c.score >= score) {
        return;
    }
    let at = pool.partition_point(|c| c.score < score);
    pool.insert(
        at,
        Candidate {
            score,
            db,
            key: key.clone(),
        },
    );
    if pool.len() > POOL_SIZE {
        pool.remove(0);
    }
}

#[cfg(test)]
mod tests;
