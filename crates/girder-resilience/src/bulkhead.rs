//! Bulkhead: cap the calls in flight to one dependency so that a slow dependency
//! ties up a bounded share of the caller's capacity.
//!
//! Up to `max_concurrent` calls run; up to `max_queue` more wait (first come, first
//! served: tokio's semaphore is fair); any further caller is rejected at once with
//! [`Error::BulkheadFull`]. A waiter that has waited `max_wait` gives up with the
//! same error. Invariant: `queued() <= max_queue` at all times; a waiter's queue
//! slot is released by a guard, so cancelled waiters never leak slots.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use crate::Error;

/// Bulkhead limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadConfig {
    /// Calls allowed to run at once (at least 1).
    pub max_concurrent: usize,
    /// Callers allowed to wait for a slot; 0 = reject as soon as all slots are busy.
    pub max_queue: usize,
    /// Longest a caller waits in the queue; `None` = wait as long as it takes.
    pub max_wait: Option<Duration>,
}

impl Default for BulkheadConfig {
    /// 25 concurrent calls, no queue.
    fn default() -> Self {
        BulkheadConfig {
            max_concurrent: 25,
            max_queue: 0,
            max_wait: None,
        }
    }
}

/// A snapshot of a bulkhead's occupancy and rejections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadStats {
    /// Calls running now.
    pub in_flight: usize,
    /// Callers waiting now.
    pub queued: usize,
    /// Callers rejected so far (queue full or waited too long).
    pub rejections: u64,
}

/// A bulkhead, cheap to clone; clones share the same slots.
///
/// # Example
///
/// ```
/// use girder_resilience::{Bulkhead, BulkheadConfig};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let bulkhead = Bulkhead::new(BulkheadConfig { max_concurrent: 2, max_queue: 0, max_wait: None });
/// let r = bulkhead.run(async { Ok::<_, std::io::Error>(42) }).await;
/// assert_eq!(r.unwrap(), 42);
/// # });
/// ```
#[derive(Clone)]
pub struct Bulkhead {
    inner: Arc<Inner>,
}

struct Inner {
    config: BulkheadConfig,
    semaphore: Arc<Semaphore>,
    queued: AtomicUsize,
    rejections: AtomicU64,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A running call's slot; the slot frees when this drops.
#[derive(Debug)]
pub struct BulkheadPermit {
    _permit: OwnedSemaphorePermit,
}

/// Holds one queue place; gives it back on drop, including on cancellation.
struct QueueSlot {
    bulkhead: Bulkhead,
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.bulkhead.inner.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Bulkhead {
    /// Creates a bulkhead with every slot free.
    pub fn new(config: BulkheadConfig) -> Self {
        let max = config.max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Bulkhead {
            inner: Arc::new(Inner {
                config,
                semaphore: Arc::new(Semaphore::new(max)),
                queued: AtomicUsize::new(0),
                rejections: AtomicU64::new(0),
            }),
        }
    }

    /// The limits this bulkhead was built with.
    pub fn config(&self) -> &BulkheadConfig {
        &self.inner.config
    }

    /// Current occupancy and rejections.
    pub fn stats(&self) -> BulkheadStats {
        let max = self
            .inner
            .config
            .max_concurrent
            .clamp(1, Semaphore::MAX_PERMITS);
        BulkheadStats {
            in_flight: max - self.inner.semaphore.available_permits(),
            queued: self.inner.queued.load(Ordering::Acquire),
            rejections: self.inner.rejections.load(Ordering::Relaxed),
        }
    }

    /// Runs `call` once a slot is free, holding the slot until it finishes.
    ///
    /// # Errors
    ///
    /// [`Error::BulkheadFull`] if the queue is full or the wait exceeded
    /// `max_wait` (`call` is then dropped unpolled); [`Error::Inner`] with the
    /// call's own error.
    pub async fn run<Fut, T, E>(&self, call: Fut) -> Result<T, Error<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let _permit = self.acquire().await.map_err(|_| Error::BulkheadFull)?;
        call.await.map_err(Error::Inner)
    }

    /// Waits for a slot per the configured queue and wait bounds.
    ///
    /// # Errors
    ///
    /// [`Error::BulkheadFull`] when rejected.
    pub async fn acquire(&self) -> Result<BulkheadPermit, Error<std::convert::Infallible>> {
        if let Some(permit) = self.try_acquire() {
            return Ok(permit);
        }
        let Some(_slot) = self.enqueue() else {
            return Err(self.reject());
        };
        let acquire = Arc::clone(&self.inner.semaphore).acquire_owned();
        let acquired = match self.inner.config.max_wait {
            Some(wait) => match tokio::time::timeout(wait, acquire).await {
                Ok(acquired) => acquired,
                Err(_elapsed) => return Err(self.reject()),
            },
            None => acquire.await,
        };
        match acquired {
            Ok(permit) => Ok(BulkheadPermit { _permit: permit }),
            // The semaphore is never closed; treat the impossible as a rejection.
            Err(AcquireError { .. }) => Err(self.reject()),
        }
    }

    /// Takes a free slot without waiting; `None` when all are busy (not counted as
    /// a rejection: the caller may still queue).
    pub fn try_acquire(&self) -> Option<BulkheadPermit> {
        Arc::clone(&self.inner.semaphore)
            .try_acquire_owned()
            .ok()
            .map(|permit| BulkheadPermit { _permit: permit })
    }

    fn enqueue(&self) -> Option<QueueSlot> {
        let max = self.inner.config.max_queue;
        self.inner
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q < max).then_some(q + 1)
            })
            .ok()
            .map(|_| QueueSlot {
                bulkhead: self.clone(),
            })
    }

    fn reject<E>(&self) -> Error<E> {
        self.inner.rejections.fetch_add(1, Ordering::Relaxed);
        Error::BulkheadFull
    }
}

/// Tower layer applying a shared [`Bulkhead`].
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl BulkheadLayer {
    /// All services built by this layer share `bulkhead`'s slots.
    pub fn new(bulkhead: Bulkhead) -> Self {
        BulkheadLayer { bulkhead }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService::new(inner, self.bulkhead.clone())
    }
}

type AcquireFuture =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send + Sync>>;

/// Where a [`BulkheadService`] is between `poll_ready` and `call`.
enum State {
    /// Nothing reserved yet.
    Idle,
    /// In the queue, waiting for a slot (boxed: only on this slow path).
    Waiting {
        acquire: AcquireFuture,
        _slot: QueueSlot,
    },
    /// A slot is held for the next `call`.
    Admitted(OwnedSemaphorePermit),
    /// The next `call` fails fast with [`Error::BulkheadFull`].
    Rejected,
}

/// Tower service from [`BulkheadLayer`].
///
/// `poll_ready` reserves a slot, staying `Pending` while queued (backpressure, as
/// tower's `ConcurrencyLimit`). When the queue is full or the wait times out it
/// returns ready and the next `call` fails fast with [`Error::BulkheadFull`]
/// (as tower's `LoadShed`), because a `poll_ready` error would tell the caller to
/// discard the service.
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
    state: State,
    /// Reused across waits, as tower's `RateLimit` reuses its `Sleep`, and created
    /// on the first wait so building the service needs no runtime.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S: fmt::Debug> fmt::Debug for BulkheadService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle => "idle",
            State::Waiting { .. } => "waiting",
            State::Admitted(_) => "admitted",
            State::Rejected => "rejected",
        };
        f.debug_struct("BulkheadService")
            .field("inner", &self.inner)
            .field("bulkhead", &self.bulkhead)
            .field("state", &state)
            .finish()
    }
}

impl<S: Clone> Clone for BulkheadService<S> {
    /// A clone shares the bulkhead but holds no reservation.
    fn clone(&self) -> Self {
        BulkheadService::new(self.inner.clone(), self.bulkhead.clone())
    }
}

impl<S> BulkheadService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, bulkhead: Bulkhead) -> Self {
        BulkheadService {
            inner,
            bulkhead,
            state: State::Idle,
            deadline: None,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, Req> Service<Req> for BulkheadService<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = BulkheadFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            match &mut self.state {
                State::Idle => {
                    self.state = if let Some(p) = self.bulkhead.try_acquire() {
                        State::Admitted(p._permit)
                    } else if let Some(slot) = self.bulkhead.enqueue() {
                        if let Some(wait) = self.bulkhead.inner.config.max_wait {
                            let at = Instant::now() + wait;
                            match &mut self.deadline {
                                Some(sleep) => sleep.as_mut().reset(at),
                                None => {
                                    self.deadline = Some(Box::pin(tokio::time::sleep_until(at)))
                                }
                            }
                        }
                        State::Waiting {
                            acquire: Box::pin(
                                Arc::clone(&self.bulkhead.inner.semaphore).acquire_owned(),
                            ),
                            _slot: slot,
                        }
                    } else {
                        self.bulkhead
                            .inner
                            .rejections
                            .fetch_add(1, Ordering::Relaxed);
                        State::Rejected
                    };
                }
                State::Waiting { acquire, .. } => {
                    if let Poll::Ready(acquired) = acquire.as_mut().poll(cx) {
                        // Dropping `Waiting` releases the queue place.
                        self.state = match acquired {
                            Ok(permit) => State::Admitted(permit),
                            Err(_) => State::Rejected,
                        };
                        continue;
                    }
                    let timed_out = self.bulkhead.inner.config.max_wait.is_some()
                        && self
                            .deadline
                            .as_mut()
                            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                    if !timed_out {
                        return Poll::Pending;
                    }
                    self.bulkhead
                        .inner
                        .rejections
                        .fetch_add(1, Ordering::Relaxed);
                    self.state = State::Rejected;
                }
                State::Admitted(_) => return self.inner.poll_ready(cx).map_err(Error::Inner),
                State::Rejected => return Poll::Ready(Ok(())),
            }
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Admitted(permit) => BulkheadFuture {
                kind: Kind::Running {
                    future: self.inner.call(request),
                    _permit: permit,
                },
            },
            State::Rejected => BulkheadFuture {
                kind: Kind::Rejected,
            },
            State::Idle | State::Waiting { .. } => {
                panic!("BulkheadService::call without poll_ready returning Ready first")
            }
        }
    }
}

pin_project! {
    /// Response future of [`BulkheadService`]; holds the slot until the call ends.
    pub struct BulkheadFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Running { #[pin] future: F, _permit: OwnedSemaphorePermit },
        Rejected,
    }
}

impl<F, T, E> Future for BulkheadFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Running { future, .. } => {
                Poll::Ready(ready!(future.poll(cx)).map_err(Error::Inner))
            }
            KindProj::Rejected => Poll::Ready(Err(Error::BulkheadFull)),
        }
    }
}
