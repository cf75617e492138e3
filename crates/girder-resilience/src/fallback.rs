//! Fallback: answer with a default or degraded value when a call fails — the
//! "serve the cached top-10 instead of an error page" case.
//!
//! The fallback function sees the error and chooses: `Some(value)` serves `value`
//! as a success, `None` passes the error on. It is synchronous on purpose: a
//! fallback should be something already at hand (a constant, a cached copy); an
//! async fallback that can itself fail belongs in its own resilient call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// A fallback function `Fn(&E) -> Option<T>`, shared cheaply by clones.
///
/// # Example
///
/// ```
/// use girder_resilience::{Error, Fallback};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // Serve a default list only when the breaker or bulkhead refused the call.
/// let fallback = Fallback::new(|e: &Error<String>| e.is_rejection().then(|| vec!["top-10"]));
/// let refused = async { Err::<Vec<&str>, _>(Error::CircuitOpen) };
/// assert_eq!(fallback.run(refused).await, Ok(vec!["top-10"]));
/// let failed = async { Err::<Vec<&str>, _>(Error::Inner("boom".to_string())) };
/// assert!(fallback.run(failed).await.is_err());
/// # });
/// ```
#[derive(Debug)]
pub struct Fallback<F> {
    f: Arc<F>,
}

impl<F> Clone for Fallback<F> {
    fn clone(&self) -> Self {
        Fallback {
            f: Arc::clone(&self.f),
        }
    }
}

impl<F> Fallback<F> {
    /// Wraps the fallback function.
    pub fn new(f: F) -> Self {
        Fallback { f: Arc::new(f) }
    }

    /// Runs `call`; on `Err(e)`, serves `f(&e)` if it is `Some`.
    ///
    /// # Errors
    ///
    /// The call's error when the fallback function returns `None`.
    pub async fn run<Fut, T, E>(&self, call: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        F: Fn(&E) -> Option<T>,
    {
        match call.await {
            Ok(v) => Ok(v),
            Err(e) => (self.f)(&e).ok_or(e),
        }
    }
}

/// Tower layer applying a [`Fallback`] to responses of the wrapped service.
#[derive(Debug)]
pub struct FallbackLayer<F> {
    fallback: Fallback<F>,
}

impl<F> Clone for FallbackLayer<F> {
    fn clone(&self) -> Self {
        FallbackLayer {
            fallback: self.fallback.clone(),
        }
    }
}

impl<F> FallbackLayer<F> {
    /// Uses `f` to turn errors into responses.
    pub fn new(f: F) -> Self {
        FallbackLayer {
            fallback: Fallback::new(f),
        }
    }
}

impl<S, F> Layer<S> for FallbackLayer<F> {
    type Service = FallbackService<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        FallbackService {
            inner,
            fallback: self.fallback.clone(),
        }
    }
}

/// Tower service from [`FallbackLayer`]. Stateless; readiness is the inner
/// service's (a `poll_ready` error is passed on, not replaced: the service itself
/// is broken, not one call).
#[derive(Debug)]
pub struct FallbackService<S, F> {
    inner: S,
    fallback: Fallback<F>,
}

impl<S: Clone, F> Clone for FallbackService<S, F> {
    fn clone(&self) -> Self {
        FallbackService {
            inner: self.inner.clone(),
            fallback: self.fallback.clone(),
        }
    }
}

impl<S, F, Req> Service<Req> for FallbackService<S, F>
where
    S: Service<Req>,
    F: Fn(&S::Error) -> Option<S::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = FallbackFuture<S::Future, F>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        FallbackFuture {
            inner: self.inner.call(request),
            f: Arc::clone(&self.fallback.f),
        }
    }
}

pin_project! {
    /// Response future of [`FallbackService`].
    pub struct FallbackFuture<Fut, F> {
        #[pin]
        inner: Fut,
        f: Arc<F>,
    }
}

impl<Fut, F, T, E> Future for FallbackFuture<Fut, F>
where
    Fut: Future<Output = Result<T, E>>,
    F: Fn(&E) -> Option<T>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        Poll::Ready(match ready!(this.inner.poll(cx)) {
            Ok(v) => Ok(v),
            Err(e) => (this.f)(&e).ok_or(e),
        })
    }
}
