//! The read-through cache.
//!
//! Invariants:
//! - Freshness, stale windows and negative caching are decided from the
//!   metadata stored *with* each value ([`Entry`]) on the injected clock;
//!   moka's own TTL is only a coarse bound for reclaiming memory.
//! - The hit path is one moka `get` (which clones the entry, i.e. the caller's
//!   `V` plus a few words of metadata, no extra allocation), one clock read and
//!   one comparison. It neither draws a random number (see
//!   `xfetch::HORIZON_MEANS`) nor touches the in-flight map.
//! - Every load runs under a [`FlightGuard`], so there is at most one loader
//!   call per key at a time in this process.

use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use crate::clock::{Clock, SystemClock};
use crate::flight::{self, FlightGuard, Flights, Join, Outcome};
use crate::xfetch::{self, SharedRng};
use crate::{CacheConfig, Error};

/// What is stored in moka for each key.
struct Entry<V, E> {
    /// The last successfully loaded value; `None` for a key whose only
    /// record is a cached failure.
    value: Option<V>,
    /// When `value` stops being fresh (`loaded_at + ttl`).
    expiry: Instant,
    /// Before this instant a fresh hit cannot trigger XFetch (no draw needed).
    early_from: Instant,
    /// How long the load that produced `value` took (XFetch's delta).
    delta: Duration,
    /// A recent failure that holds further loads off (negative caching).
    failure: Option<Failure<E>>,
    /// Bumped on every store; lets a new leader tell whether someone else
    /// wrote the key since it looked.
    generation: u64,
}

struct Failure<E> {
    error: Arc<E>,
    retry_after: Instant,
}

// Manual impls: neither needs `E: Clone`.
impl<V: Clone, E> Clone for Entry<V, E> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            expiry: self.expiry,
            early_from: self.early_from,
            delta: self.delta,
            failure: self.failure.clone(),
            generation: self.generation,
        }
    }
}

impl<E> Clone for Failure<E> {
    fn clone(&self) -> Self {
        Self {
            error: Arc::clone(&self.error),
            retry_after: self.retry_after,
        }
    }
}

/// What a read should do, decided from an entry and the time.
enum Plan<V, E> {
    /// Fresh: return it.
    Ready(V),
    /// Fresh, but XFetch fired: refresh now (single-flight) unless someone
    /// already is, in which case return `current`.
    Refresh { current: V, seen: u64 },
    /// Expired within the stale-while-revalidate window: return `stale` and
    /// refresh in the background.
    Revalidate { stale: V, seen: u64 },
    /// A failure is negatively cached: return it (or `stale`).
    Failed { error: Arc<E>, stale: Option<V> },
    /// Must load and wait; `stale` is the stale-if-error fallback.
    Load { stale: Option<V>, seen: Option<u64> },
}

/// Event counters, for tests and metrics. Not updated on fresh hits, so the
/// hit path writes no shared memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loader calls that returned a value.
    pub loads: u64,
    /// Loader calls that returned an error.
    pub load_failures: u64,
    /// Loader calls that panicked.
    pub loader_panics: u64,
    /// Reads that found no usable value and led a blocking load.
    pub misses: u64,
    /// Reads that found no usable value and waited for another caller's load.
    pub waits: u64,
    /// XFetch early recomputations started (the value was still fresh).
    pub early_refreshes: u64,
    /// Stale-while-revalidate background refreshes started.
    pub background_refreshes: u64,
    /// Reads answered with an expired value (stale-while-revalidate or
    /// stale-if-error).
    pub stale_served: u64,
    /// Reads answered from the negative cache without calling the loader.
    pub negative_hits: u64,
}

#[derive(Default)]
struct Counters {
    loads: AtomicU64,
    load_failures: AtomicU64,
    loader_panics: AtomicU64,
    misses: AtomicU64,
    waits: AtomicU64,
    early_refreshes: AtomicU64,
    background_refreshes: AtomicU64,
    stale_served: AtomicU64,
    negative_hits: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A stampede-safe read-through cache. Cheap to clone (shared state).
///
/// `K` is the key, `V` the value (cloned on every hit, so make it cheap:
/// typically `Arc<T>`), `E` the loader's error type.
pub struct Cache<K, V, E> {
    inner: Arc<Inner<K, V, E>>,
}

struct Inner<K, V, E> {
    store: moka::sync::Cache<K, Entry<V, E>>,
    flights: Arc<Flights<K, V, E>>,
    config: CacheConfig,
    clock: Arc<dyn Clock>,
    rng: SharedRng,
    generation: AtomicU64,
    counters: Counters,
}

impl<K, V, E> Clone for Cache<K, V, E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, E> std::fmt::Debug for Cache<K, V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl<K, V, E> Cache<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// A cache on the real clock.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `config` fails [`CacheConfig::validate`].
    pub fn new(config: CacheConfig) -> Result<Self, Error<E>> {
        Self::with_clock(config, SystemClock)
    }

    /// A cache whose every time decision reads `clock`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `config` fails [`CacheConfig::validate`].
    pub fn with_clock(config: CacheConfig, clock: impl Clock) -> Result<Self, Error<E>> {
        config.validate()?;
        let store = moka::sync::Cache::builder()
            .max_capacity(config.max_capacity)
            .time_to_live(config.storage_ttl())
            .build();
        let seed = config.seed.unwrap_or_else(|| fastrand::u64(..));
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                flights: Arc::new(Flights::new()),
                rng: SharedRng::new(seed),
                config,
                clock: Arc::new(clock),
                generation: AtomicU64::new(0),
                counters: Counters::default(),
            }),
        })
    }

    /// The value if it is present and fresh; never loads, never waits, never
    /// triggers a refresh. The synchronous hit fast path.
    #[inline]
    pub fn get_if_fresh(&self, key: &K) -> Option<V> {
        let entry = self.inner.store.get(key)?;
        if self.inner.clock.now() < entry.expiry {
            entry.value
        } else {
            None
        }
    }

    /// Returns the cached value, loading it with `loader` if needed.
    ///
    /// - Fresh: returned at once. Near expiry, XFetch may pick this caller
    ///   to recompute early (one at a time; others keep the current value).
    /// - Expired within the stale-while-revalidate window: the old value is
    ///   returned at once and one background refresh is spawned.
    /// - Otherwise: one caller runs its `loader`, concurrent callers for the
    ///   same key wait for that result (value or shared error). If that
    ///   caller's future is dropped, a waiter takes over with its own loader.
    /// - On failure: the old value within the stale-if-error window, else
    ///   [`Error::Load`]; with `negative_ttl`, later calls get the same error
    ///   without calling the loader until it elapses.
    ///
    /// The loader is `'static + Send` because a stale-while-revalidate
    /// refresh runs it on a spawned tokio task (inline if no runtime runs).
    ///
    /// # Errors
    /// [`Error::Load`] with the loader's error, or [`Error::LoaderPanicked`].
    pub async fn get_or_load<F, Fut>(&self, key: &K, loader: F) -> Result<V, Error<E>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let entry = self.inner.store.get(key);
        let now = self.inner.clock.now();
        // Hit path: fresh and too far from expiry for XFetch to fire. The
        // value is moved out of the entry moka cloned for us: no extra clone.
        match entry {
            Some(Entry {
                value: Some(value),
                early_from,
                ..
            }) if now < early_from => Ok(value),
            entry => self.slow_path(key, entry, now, loader).await,
        }
    }

    async fn slow_path<F, Fut>(
        &self,
        key: &K,
        mut entry: Option<Entry<V, E>>,
        mut now: Instant,
        loader: F,
    ) -> Result<V, Error<E>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let c = &self.inner.counters;
        loop {
            match self.plan(entry, now, Draw::Yes) {
                Plan::Ready(value) => return Ok(value),
                Plan::Failed { error, stale } => {
                    bump(&c.negative_hits);
                    return self.fallback(stale, Error::Load(error));
                }
                Plan::Refresh { current, seen } => {
                    let Some(guard) = self.inner.flights.try_lead(key) else {
                        return Ok(current);
                    };
                    bump(&c.early_refreshes);
                    // The value is still fresh, so a failed refresh returns it.
                    return self
                        .lead(key, guard, loader, Some(seen), Some(current))
                        .await;
                }
                Plan::Revalidate { stale, seen } => {
                    bump(&c.stale_served);
                    let Some(guard) = self.inner.flights.try_lead(key) else {
                        return Ok(stale);
                    };
                    bump(&c.background_refreshes);
                    match tokio::runtime::Handle::try_current() {
                        Ok(handle) => {
                            let this = self.clone();
                            let key = key.clone();
                            handle.spawn(async move {
                                // The outcome reaches readers through the cache
                                // and the flight's waiters.
                                let _ = this.lead(&key, guard, loader, Some(seen), None).await;
                            });
                            return Ok(stale);
                        }
                        // No runtime to refresh in the background: refresh
                        // inline, still serving the stale value on failure.
                        Err(_) => {
                            return self.lead(key, guard, loader, Some(seen), Some(stale)).await
                        }
                    }
                }
                Plan::Load { stale, seen } => match self.inner.flights.join_or_lead(key) {
                    Join::Lead(guard) => {
                        bump(&c.misses);
                        return self.lead(key, guard, loader, seen, stale).await;
                    }
                    Join::Wait(rx) => {
                        bump(&c.waits);
                        match flight::wait(rx).await {
                            Some(Outcome::Value(value)) => return Ok(value),
                            Some(Outcome::Failed(error)) => {
                                return self.fallback(stale, Error::Load(error))
                            }
                            Some(Outcome::Panicked) => {
                                return self.fallback(stale, Error::LoaderPanicked)
                            }
                            // The leader was cancelled: start over; one of the
                            // waiters becomes the new leader.
                            None => {
                                entry = self.inner.store.get(key);
                                now = self.inner.clock.now();
                            }
                        }
                    }
                },
            }
        }
    }

    fn fallback(&self, stale: Option<V>, error: Error<E>) -> Result<V, Error<E>> {
        match stale {
            Some(value) => {
                bump(&self.inner.counters.stale_served);
                Ok(value)
            }
            None => Err(error),
        }
    }

    fn plan(&self, entry: Option<Entry<V, E>>, now: Instant, draw: Draw) -> Plan<V, E> {
        let Some(entry) = entry else {
            return Plan::Load {
                stale: None,
                seen: None,
            };
        };
        let cfg = &self.inner.config;
        let held_off = entry.failure.filter(|f| now < f.retry_after);
        let Some(value) = entry.value else {
            return match held_off {
                Some(f) => Plan::Failed {
                    error: f.error,
                    stale: None,
                },
                None => Plan::Load {
                    stale: None,
                    seen: Some(entry.generation),
                },
            };
        };
        if now < entry.expiry {
            // A negatively cached failed refresh also holds XFetch off.
            let early = matches!(draw, Draw::Yes)
                && held_off.is_none()
                && now >= entry.early_from
                && xfetch::should_recompute_early(
                    now,
                    entry.expiry,
                    entry.delta,
                    cfg.beta,
                    self.inner.rng.next_open_unit(),
                );
            return if early {
                Plan::Refresh {
                    current: value,
                    seen: entry.generation,
                }
            } else {
                Plan::Ready(value)
            };
        }
        let expired_for = now - entry.expiry;
        let in_stale_if_error = expired_for < cfg.stale_if_error;
        let in_stale_while_revalidate = expired_for < cfg.stale_while_revalidate;
        if let Some(f) = held_off {
            // A failed refresh is negatively cached: no new load yet. A caller
            // that accepts stale data in either window still gets it rather
            // than the error.
            return Plan::Failed {
                error: f.error,
                stale: (in_stale_if_error || in_stale_while_revalidate).then_some(value),
            };
        }
        if in_stale_while_revalidate {
            return Plan::Revalidate {
                stale: value,
                seen: entry.generation,
            };
        }
        Plan::Load {
            stale: in_stale_if_error.then_some(value),
            seen: Some(entry.generation),
        }
    }

    /// Runs one load as the key's leader and publishes the outcome.
    ///
    /// `seen` is the generation the caller planned from; `fallback` is what
    /// to return instead of an error (a still-fresh or stale-if-error value).
    async fn lead<F, Fut>(
        &self,
        key: &K,
        guard: FlightGuard<K, V, E>,
        loader: F,
        seen: Option<u64>,
        fallback: Option<V>,
    ) -> Result<V, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let inner = &*self.inner;
        // Double-check: a flight that finished between our read and taking
        // leadership has already stored its result; do not load it again.
        if let Some(current) = inner.store.get(key) {
            if Some(current.generation) != seen {
                match self.plan(Some(current), inner.clock.now(), Draw::No) {
                    Plan::Ready(value) => {
                        guard.complete(Outcome::Value(value.clone()));
                        return Ok(value);
                    }
                    Plan::Failed { error, stale } => {
                        guard.complete(Outcome::Failed(Arc::clone(&error)));
                        return self.fallback(stale.or(fallback), Error::Load(error));
                    }
                    _ => {}
                }
            }
        }

        let start = inner.clock.now();
        // Catch panics both from calling the closure and from polling its
        // future, so they are shared with waiters instead of killing the
        // caller's task with waiters left to retry one by one.
        let result = match std::panic::catch_unwind(AssertUnwindSafe(loader)) {
            Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        let end = inner.clock.now();
        match result {
            Ok(Ok(value)) => {
                bump(&inner.counters.loads);
                self.store_value(key.clone(), value.clone(), end, end - start);
                guard.complete(Outcome::Value(value.clone()));
                Ok(value)
            }
            Ok(Err(error)) => {
                bump(&inner.counters.load_failures);
                let error = Arc::new(error);
                self.store_failure(key, Arc::clone(&error), end);
                guard.complete(Outcome::Failed(Arc::clone(&error)));
                self.fallback(fallback, Error::Load(error))
            }
            Err(_panic) => {
                bump(&inner.counters.loader_panics);
                tracing::error!("girder-cache: loader panicked; waiters get LoaderPanicked");
                guard.complete(Outcome::Panicked);
                self.fallback(fallback, Error::LoaderPanicked)
            }
        }
    }

    fn next_generation(&self) -> u64 {
        self.inner.generation.fetch_add(1, Ordering::Relaxed)
    }

    fn store_value(&self, key: K, value: V, now: Instant, delta: Duration) {
        let inner = &*self.inner;
        let expiry = now + inner.config.ttl;
        let entry = Entry {
            value: Some(value),
            expiry,
            early_from: xfetch::horizon(now, expiry, delta, inner.config.beta),
            delta,
            failure: None,
            generation: self.next_generation(),
        };
        inner.store.insert(key, entry);
    }

    fn store_failure(&self, key: &K, error: Arc<E>, now: Instant) {
        let inner = &*self.inner;
        if inner.config.negative_ttl.is_zero() {
            return;
        }
        let failure = Some(Failure {
            error,
            retry_after: now + inner.config.negative_ttl,
        });
        // Keep the last good value: it is still needed for stale-if-error.
        let entry = match inner.store.get(key) {
            Some(previous) => Entry {
                failure,
                generation: self.next_generation(),
                ..previous
            },
            None => Entry {
                value: None,
                expiry: now,
                early_from: now,
                delta: Duration::ZERO,
                failure,
                generation: self.next_generation(),
            },
        };
        inner.store.insert(key.clone(), entry);
    }

    /// Stores `value` as freshly loaded now (e.g. after the caller wrote it to
    /// the backing store). Keeps the key's last measured load time for XFetch.
    pub fn insert(&self, key: K, value: V) {
        let delta = self
            .inner
            .store
            .get(&key)
            .map_or(Duration::ZERO, |e| e.delta);
        self.store_value(key, value, self.inner.clock.now(), delta);
    }

    /// Removes `key` (value and any cached failure). A load already running
    /// for it still stores its result when it finishes.
    pub fn invalidate(&self, key: &K) {
        self.inner.store.invalidate(key);
    }

    /// Write-through: calls `writer` with the key and value, and only if it
    /// succeeds stores the value in the cache. On failure the cache keeps
    /// whatever it held before (the store's state is then unknown to us).
    ///
    /// # Errors
    /// [`Error::Write`] with the writer's error.
    pub async fn write_through<W, Fut>(&self, key: K, value: V, writer: W) -> Result<(), Error<E>>
    where
        W: FnOnce(K, V) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        writer(key.clone(), value.clone())
            .await
            .map_err(Error::Write)?;
        self.insert(key, value);
        Ok(())
    }

    /// A snapshot of the event counters.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheStats {
            loads: get(&c.loads),
            load_failures: get(&c.load_failures),
            loader_panics: get(&c.loader_panics),
            misses: get(&c.misses),
            waits: get(&c.waits),
            early_refreshes: get(&c.early_refreshes),
            background_refreshes: get(&c.background_refreshes),
            stale_served: get(&c.stale_served),
            negative_hits: get(&c.negative_hits),
        }
    }

    /// Number of loads in progress. Diagnostic: it returns to zero once
    /// every loader has finished, panicked or been cancelled.
    pub fn in_flight(&self) -> usize {
        self.inner.flights.len()
    }
}

/// Whether a plan may draw for XFetch (not when re-checking as leader).
#[derive(Clone, Copy)]
enum Draw {
    Yes,
    No,
}
