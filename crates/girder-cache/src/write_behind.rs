//! Write-behind: update the cache now, write to the backing store later.
//!
//! Invariants:
//! - The queue holds at most `capacity` distinct keys, counting both keys
//!   waiting and keys in the batch the writer is currently writing. One
//!   semaphore permit stands for one such key, so the bound and the
//!   backpressure are the same mechanism.
//! - A key that is waiting (not yet taken by the writer) appears once; a new
//!   write to it replaces its value (coalescing: the store sees only the
//!   latest value, and intermediate values are never written).
//! - The worker drains everything queued before it exits, whether it is
//!   stopped by [`WriteBehind::shutdown`] or by dropping the [`WriteBehind`].
//!
//! # What a crash loses
//!
//! Everything queued but not yet acknowledged by the writer: all waiting
//! keys plus the batch being written (the writer may or may not have applied
//! it). Nothing is persisted locally. A batch whose writer call fails or
//! panics is dropped (counted in [`WriteBehindStats::failed`], error kept in
//! [`WriteBehind::last_error`]), not retried: retry inside the writer if the
//! store needs it. Use [`crate::Cache::write_through`] when a write must not
//! be lost.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::FutureExt;
use tokio::sync::{Notify, Semaphore, TryAcquireError};
use tokio::task::JoinHandle;

use crate::{Cache, Error, WhenFull, WriteBehindConfig};

/// Counters of a [`WriteBehind`] queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteBehindStats {
    /// Entries the writer acknowledged.
    pub written: u64,
    /// Entries in batches the writer failed (or panicked) on; dropped.
    pub failed: u64,
    /// Writer calls made (each with up to `max_batch` entries).
    pub batches: u64,
    /// Distinct keys waiting or being written right now.
    pub queued: usize,
}

struct Queue<K, V> {
    pending: HashMap<K, V>,
    /// Keys in arrival order, so older writes are written first.
    order: VecDeque<K>,
    /// Size of the batch the writer holds; still counts against capacity.
    in_flight: usize,
    closed: bool,
}

struct Shared<K, V, E> {
    // std Mutex: held for map operations only, never across an await.
    queue: Mutex<Queue<K, V>>,
    room: Semaphore,
    /// Wakes the worker (new entries, flush, close). `notify_one` stores a
    /// permit, so a wake-up sent while the worker is busy is not lost.
    work: Notify,
    /// Signalled after each batch and when the worker exits.
    progress: Notify,
    written: AtomicU64,
    failed: AtomicU64,
    batches: AtomicU64,
    last_error: Mutex<Option<Arc<E>>>,
}

impl<K, V, E> Shared<K, V, E> {
    fn lock(&self) -> MutexGuard<'_, Queue<K, V>> {
        // Each critical section leaves the queue consistent; ignore poison.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self) {
        self.lock().closed = true;
        // Writers blocked on a full queue get `Error::Closed`.
        self.room.close();
        self.work.notify_one();
    }
}

/// A bounded, coalescing write-behind queue in front of a [`Cache`].
///
/// [`write`](Self::write) updates the cache and queues the write; a tokio task
/// hands queued entries to the writer in batches. Dropping the `WriteBehind`
/// is the shutdown guard: it stops new writes and lets the worker drain what
/// is queued in the background. [`shutdown`](Self::shutdown) does the same
/// and waits for the drain.
pub struct WriteBehind<K, V, E> {
    cache: Cache<K, V, E>,
    shared: Arc<Shared<K, V, E>>,
    when_full: WhenFull,
    /// Taken by the first `shutdown` call, which awaits it.
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl<K, V, E> std::fmt::Debug for WriteBehind<K, V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBehind")
            .field("when_full", &self.when_full)
            .finish_non_exhaustive()
    }
}

impl<K, V, E> WriteBehind<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// Starts the queue and its worker task on the current tokio runtime.
    ///
    /// `writer` receives batches of `(key, latest value)`, oldest first.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad `config`; [`Error::NoRuntime`] if
    /// called outside a tokio runtime.
    pub fn new<W, Fut>(
        cache: Cache<K, V, E>,
        config: WriteBehindConfig,
        writer: W,
    ) -> Result<Self, Error<E>>
    where
        W: Fn(Vec<(K, V)>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        config.validate()?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                pending: HashMap::new(),
                order: VecDeque::new(),
                in_flight: 0,
                closed: false,
            }),
            room: Semaphore::new(config.capacity),
            work: Notify::new(),
            progress: Notify::new(),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let worker = handle.spawn(run_worker(Arc::clone(&shared), config.max_batch, writer));
        Ok(Self {
            cache,
            shared,
            when_full: config.when_full,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Updates the cache and queues `value` for the writer.
    ///
    /// If `key` is already waiting, its queued value is replaced and no room
    /// is used. Otherwise one slot is needed: with [`WhenFull::Wait`] this
    /// waits for room; with [`WhenFull::Reject`] it fails at once. The cache
    /// is updated only once the write is queued.
    ///
    /// # Errors
    /// [`Error::QueueFull`] (reject policy), [`Error::Closed`] after shutdown.
    pub async fn write(&self, key: K, value: V) -> Result<(), Error<E>> {
        let shared = &*self.shared;
        if !self.coalesce(&key, &value)? {
            let permit = match self.when_full {
                WhenFull::Wait => shared.room.acquire().await.map_err(|_| Error::Closed)?,
                WhenFull::Reject => shared.room.try_acquire().map_err(|e| match e {
                    TryAcquireError::Closed => Error::Closed,
                    TryAcquireError::NoPermits => Error::QueueFull,
                })?,
            };
            let mut queue = shared.lock();
            if queue.closed {
                return Err(Error::Closed);
            }
            // Re-check: another writer may have queued this key meanwhile;
            // then our permit goes back when dropped.
            if let Some(slot) = queue.pending.get_mut(&key) {
                *slot = value.clone();
            } else {
                queue.pending.insert(key.clone(), value.clone());
                queue.order.push_back(key.clone());
                // The slot is released by the worker once the key is written.
                permit.forget();
            }
        }
        shared.work.notify_one();
        self.cache.insert(key, value);
        Ok(())
    }

    /// Replaces a waiting key's value; `Ok(false)` if it is not waiting.
    fn coalesce(&self, key: &K, value: &V) -> Result<bool, Error<E>> {
        let mut queue = self.shared.lock();
        if queue.closed {
            return Err(Error::Closed);
        }
        Ok(match queue.pending.get_mut(key) {
            Some(slot) => {
                *slot = value.clone();
                true
            }
            None => false,
        })
    }

    /// Waits until the queue is empty: everything queued so far is written
    /// (or failed). Under a continuous stream of new writes this waits for a
    /// moment when nothing is queued.
    pub async fn flush(&self) {
        wait_until_empty(&self.shared).await;
    }

    /// Stops accepting writes (later and currently blocked [`write`](Self::write)s
    /// fail with [`Error::Closed`]), writes everything queued and waits for
    /// the worker to finish. Returns the final counters. Idempotent.
    pub async fn shutdown(&self) -> WriteBehindStats {
        self.shared.close();
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match worker {
            // The worker contains writer panics itself; a JoinError here can
            // only be runtime shutdown, and then there is nothing to wait for.
            Some(worker) => {
                let _ = worker.await;
            }
            // Another caller is awaiting the worker; the queue draining is
            // what matters to us.
            None => wait_until_empty(&self.shared).await,
        }
        self.stats()
    }

    /// Current counters.
    pub fn stats(&self) -> WriteBehindStats {
        let s = &*self.shared;
        let queued = {
            let q = s.lock();
            q.pending.len() + q.in_flight
        };
        WriteBehindStats {
            written: s.written.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            queued,
        }
    }

    /// The error of the most recent failed batch, if any.
    pub fn last_error(&self) -> Option<Arc<E>> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl<K, V, E> Drop for WriteBehind<K, V, E> {
    fn drop(&mut self) {
        // The guard: stop intake; the detached worker drains what is queued.
        self.shared.close();
    }
}

async fn wait_until_empty<K, V, E>(shared: &Shared<K, V, E>) {
    loop {
        let progress = shared.progress.notified();
        tokio::pin!(progress);
        // Register before checking, so a batch finishing in between is seen.
        progress.as_mut().enable();
        {
            let q = shared.lock();
            if q.pending.is_empty() && q.in_flight == 0 {
                return;
            }
        }
        shared.work.notify_one();
        progress.await;
    }
}

async fn run_worker<K, V, E, W, Fut>(shared: Arc<Shared<K, V, E>>, max_batch: usize, writer: W)
where
    K: Hash + Eq + Clone,
    W: Fn(Vec<(K, V)>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    loop {
        let (batch, closed) = {
            let mut q = shared.lock();
            let n = max_batch.min(q.order.len());
            let keys: Vec<K> = q.order.drain(..n).collect();
            let batch: Vec<(K, V)> = keys
                .into_iter()
                .filter_map(|k| q.pending.remove(&k).map(|v| (k, v)))
                .collect();
            q.in_flight = batch.len();
            (batch, q.closed)
        };
        if batch.is_empty() {
            if closed {
                shared.progress.notify_waiters();
                return;
            }
            shared.work.notified().await;
            continue;
        }
        let n = batch.len();
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| writer(batch))) {
            Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        shared.batches.fetch_add(1, Ordering::Relaxed);
        let n64 = n as u64;
        match result {
            Ok(Ok(())) => {
                shared.written.fetch_add(n64, Ordering::Relaxed);
            }
            Ok(Err(error)) => {
                shared.failed.fetch_add(n64, Ordering::Relaxed);
                tracing::warn!(
                    entries = n,
                    "girder-cache: write-behind batch failed; dropped"
                );
                *shared
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(error));
            }
            Err(_panic) => {
                shared.failed.fetch_add(n64, Ordering::Relaxed);
                tracing::error!(
                    entries = n,
                    "girder-cache: write-behind writer panicked; batch dropped"
                );
            }
        }
        shared.lock().in_flight = 0;
        shared.room.add_permits(n);
        shared.progress.notify_waiters();
    }
}
