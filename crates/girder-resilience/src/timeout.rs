//! Timeout: give up on a call that takes longer than a fixed duration.
//!
//! The call's future is dropped when time runs out, which cancels it (tokio
//! semantics); the caller gets [`Error::Timeout`] carrying the configured duration.
//! The timer lives inline in the response future: no allocation per call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::{Layer, Service};

use crate::Error;

/// A per-call time limit.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use girder_resilience::{Error, Timeout};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let timeout = Timeout::new(Duration::from_millis(50));
/// let slow = async {
///     tokio::time::sleep(Duration::from_secs(1)).await;
///     Ok::<_, String>("late")
/// };
/// assert_eq!(timeout.run(slow).await, Err(Error::Timeout(Duration::from_millis(50))));
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    duration: Duration,
}

impl Timeout {
    /// A limit of `duration` per call.
    pub fn new(duration: Duration) -> Self {
        Timeout { duration }
    }

    /// The limit.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Runs `call`, failing with [`Error::Timeout`] if it has not finished in time.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] on expiry, [`Error::Inner`] with the call's own error.
    pub fn run<Fut, T, E>(&self, call: Fut) -> TimeoutFuture<Fut>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        TimeoutFuture {
            inner: call,
            sleep: tokio::time::sleep(self.duration),
            duration: self.duration,
        }
    }
}

/// Tower layer applying a [`Timeout`] to every call.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    timeout: Timeout,
}

impl TimeoutLayer {
    /// Every call gets at most `duration`.
    pub fn new(duration: Duration) -> Self {
        TimeoutLayer {
            timeout: Timeout::new(duration),
        }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimeoutService {
            inner,
            timeout: self.timeout,
        }
    }
}

/// Tower service from [`TimeoutLayer`]. No state between calls, so readiness is the
/// inner service's; the clock starts at `call`, not at `poll_ready`.
#[derive(Debug, Clone)]
pub struct TimeoutService<S> {
    inner: S,
    timeout: Timeout,
}

impl<S> TimeoutService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for TimeoutService<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        self.timeout.run(self.inner.call(request))
    }
}

pin_project! {
    /// A call racing its deadline; from [`Timeout::run`] and [`TimeoutService`].
    #[must_use = "futures do nothing unless polled"]
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
        duration: Duration,
    }
}

impl<F, T, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The call first: a call that is ready at the deadline still counts.
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result.map_err(Error::Inner));
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Error::Timeout(*this.duration))),
            Poll::Pending => Poll::Pending,
        }
    }
}
