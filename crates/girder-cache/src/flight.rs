//! Single-flight bookkeeping: at most one load per key at a time.
//!
//! Invariants:
//! - A key is in the map exactly while its leader's [`FlightGuard`] is alive.
//!   The guard removes it in `Drop`, so a panicking loader or a cancelled
//!   (dropped) leader future cannot leak an entry.
//! - The leader stores its result in the cache *before* the guard removes the
//!   map entry; a caller that finds no flight therefore re-reads the cache
//!   before loading (see `Cache::lead`) and cannot start a second load for a
//!   result that is already stored.
//! - A guard dropped without a result closes the channel; waiters see that as
//!   "abandoned" and retry from the top, one of them becoming the new leader.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// What a finished flight tells its waiters.
pub(crate) enum Outcome<V, E> {
    Value(V),
    Failed(Arc<E>),
    Panicked,
}

// Manual impl: `E` need not be `Clone`, it is behind an `Arc`.
impl<V: Clone, E> Clone for Outcome<V, E> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Value(v) => Outcome::Value(v.clone()),
            Outcome::Failed(e) => Outcome::Failed(Arc::clone(e)),
            Outcome::Panicked => Outcome::Panicked,
        }
    }
}

type Slot<V, E> = Option<Outcome<V, E>>;

/// Key -> (flight id, receiver new waiters subscribe with).
type FlightMap<K, V, E> = HashMap<K, (u64, watch::Receiver<Slot<V, E>>)>;

pub(crate) struct Flights<K, V, E> {
    // A std Mutex, not tokio's: it is held only for a map operation, never
    // across an await, and is off the hit path.
    map: Mutex<FlightMap<K, V, E>>,
    next_id: AtomicU64,
}

pub(crate) enum Join<K: Hash + Eq + Clone, V, E> {
    Lead(FlightGuard<K, V, E>),
    Wait(watch::Receiver<Slot<V, E>>),
}

impl<K: Hash + Eq + Clone, V, E> Flights<K, V, E> {
    pub(crate) fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FlightMap<K, V, E>> {
        // The map stays consistent even if a holder panicked (each critical
        // section is a single insert/remove), so poisoning is ignored.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the flight for `key`, or starts one if there is none.
    pub(crate) fn join_or_lead(self: &Arc<Self>, key: &K) -> Join<K, V, E> {
        let mut map = self.lock();
        if let Some((_, rx)) = map.get(key) {
            return Join::Wait(rx.clone());
        }
        Join::Lead(self.start(&mut map, key))
    }

    /// Starts a flight only if none is running (for background / early
    /// refreshes, whose callers keep serving the current value otherwise).
    pub(crate) fn try_lead(self: &Arc<Self>, key: &K) -> Option<FlightGuard<K, V, E>> {
        let mut map = self.lock();
        if map.contains_key(key) {
            return None;
        }
        Some(self.start(&mut map, key))
    }

    fn start(self: &Arc<Self>, map: &mut FlightMap<K, V, E>, key: &K) -> FlightGuard<K, V, E> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        map.insert(key.clone(), (id, rx));
        FlightGuard {
            flights: Arc::clone(self),
            key: key.clone(),
            id,
            tx,
            outcome: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Proof of leadership for one key; removes the flight when dropped.
pub(crate) struct FlightGuard<K: Hash + Eq + Clone, V, E> {
    flights: Arc<Flights<K, V, E>>,
    key: K,
    id: u64,
    tx: watch::Sender<Slot<V, E>>,
    outcome: Option<Outcome<V, E>>,
}

impl<K: Hash + Eq + Clone, V, E> FlightGuard<K, V, E> {
    /// Publishes the result to waiters (the cache must already hold it).
    pub(crate) fn complete(mut self, outcome: Outcome<V, E>) {
        self.outcome = Some(outcome);
        // Drop does the removal and the send, in that order.
    }
}

impl<K: Hash + Eq + Clone, V, E> Drop for FlightGuard<K, V, E> {
    fn drop(&mut self) {
        {
            let mut map = self.flights.lock();
            // Only remove our own flight: ids guard against ever removing a
            // successor's entry.
            if map.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
                map.remove(&self.key);
            }
        }
        if let Some(outcome) = self.outcome.take() {
            self.tx.send_replace(Some(outcome));
        }
        // Without an outcome (panic unwinding through us, or the leader's
        // future dropped) `tx` drops here and waiters see the channel closed.
    }
}

/// Waits for a flight; `None` means the leader went away without a result.
pub(crate) async fn wait<V: Clone, E>(
    mut rx: watch::Receiver<Slot<V, E>>,
) -> Option<Outcome<V, E>> {
    match rx.wait_for(Option::is_some).await {
        Ok(slot) => (*slot).clone(),
        Err(_) => None,
    }
}
