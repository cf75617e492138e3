//! tower middleware: per-client limits for HTTP services.
//!
//! [`RateLimitLayer`] wraps any `Service<http::Request<B>>` whose response body
//! is `From<String>` (axum's `Body`, `http_body_util::Full<Bytes>`, ...). For each
//! request it extracts a key ([`PeerIp`], [`HeaderKey`], or any closure via
//! [`KeyFn`]), checks the [`KeyedLimiter`], and then either
//! * calls the inner service and adds the `RateLimit-Policy` and `RateLimit`
//!   fields to its response, or
//! * answers at once with 429, `Retry-After` (whole seconds, rounded up), the
//!   same two fields, and a body built by a [`RejectionResponse`]; the default,
//!   [`ProblemJson`], is an RFC 9457 `application/problem+json` document.
//!
//! Header syntax follows **draft-ietf-httpapi-ratelimit-headers-10** (September
//! 2025; the field syntax is unchanged since -08):
//! `RateLimit-Policy: "default";q=100;w=60` (quota units `q` per window of `w`
//! seconds) and `RateLimit: "default";r=42;t=17` (`r` units remaining, full quota
//! back in `t` seconds, rounded up). `q` is [`Quota::limit`](crate::Quota) and `w` its
//! period in whole seconds (rounded up).
//!
//! Requests for which the extractor finds no key pass through unlimited and
//! without the fields. To fail closed instead, make the extractor return a
//! shared fallback key.
//!
//! Unlike tower's `RateLimit`, `poll_ready` cannot apply backpressure here: the
//! key, and so the limit that applies, is only known in `call`. A denied request
//! is answered immediately rather than queued, which is what an HTTP client
//! expects from 429 + `Retry-After`.

use std::future::Future;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::algorithm::Algorithm;
use crate::{Clock, Decision, KeyedLimiter, LimitError};

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-10 §5.1).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10 §5.2).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Finds the key a request is limited under.
pub trait KeyExtractor<B> {
    /// The key type stored in the [`KeyedLimiter`].
    type Key: Hash + Eq + Clone;

    /// The request's key, or `None` to let it pass unlimited.
    fn extract(&self, request: &Request<B>) -> Option<Self::Key>;
}

/// Keys by the client's IP address: axum's `ConnectInfo<SocketAddr>` extension
/// (from `into_make_service_with_connect_info`), else a bare `SocketAddr` extension.
///
/// Behind a reverse proxy this is the proxy's address; use [`HeaderKey`] or
/// [`KeyFn`] on a header the proxy sets instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerIp;

impl<B> KeyExtractor<B> for PeerIp {
    type Key = IpAddr;

    fn extract(&self, request: &Request<B>) -> Option<IpAddr> {
        let extensions = request.extensions();
        extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .or_else(|| extensions.get::<SocketAddr>().map(SocketAddr::ip))
    }
}

/// Keys by the value of one request header (an API key, a tenant id...).
/// Requests without the header pass unlimited.
#[derive(Debug, Clone)]
pub struct HeaderKey {
    name: HeaderName,
}

impl HeaderKey {
    /// Keys by header `name`.
    pub fn new(name: HeaderName) -> Self {
        Self { name }
    }
}

impl<B> KeyExtractor<B> for HeaderKey {
    type Key = HeaderValue;

    fn extract(&self, request: &Request<B>) -> Option<HeaderValue> {
        request.headers().get(&self.name).cloned()
    }
}

/// Keys by a closure over the request.
///
/// ```
/// use girder_limit::http::{KeyExtractor, KeyFn};
///
/// let by_path = KeyFn(|req: &http::Request<()>| Some(req.uri().path().to_owned()));
/// let req = http::Request::get("/a").body(()).unwrap();
/// assert_eq!(by_path.extract(&req).as_deref(), Some("/a"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct KeyFn<F>(pub F);

impl<B, K, F> KeyExtractor<B> for KeyFn<F>
where
    F: Fn(&Request<B>) -> Option<K>,
    K: Hash + Eq + Clone,
{
    type Key = K;

    fn extract(&self, request: &Request<B>) -> Option<K> {
        (self.0)(request)
    }
}

/// What a [`RejectionResponse`] knows about a denied request.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Rejected<'a> {
    /// The limiter's decision (`allowed == false`).
    pub decision: &'a Decision,
    /// The policy name used in the RateLimit fields.
    pub policy: &'a str,
}

/// Builds the response for a denied request.
///
/// The layer then sets the status to 429 unless the builder chose another
/// 4xx/5xx status, and adds `Retry-After`, `RateLimit-Policy` and `RateLimit`, so
/// a custom builder only decides the body and its own headers. Closures
/// `Fn(&Rejected) -> Response<String>` implement it.
pub trait RejectionResponse {
    /// The response to send (body as a `String`, converted to the service's body type).
    fn response(&self, rejected: &Rejected<'_>) -> Response<String>;
}

impl<F: Fn(&Rejected<'_>) -> Response<String>> RejectionResponse for F {
    fn response(&self, rejected: &Rejected<'_>) -> Response<String> {
        self(rejected)
    }
}

/// The default rejection: an RFC 9457 problem document,
/// `{"type":…,"title":"Too Many Requests","status":429,"detail":…}` served as
/// `application/problem+json`.
///
/// The problem `type` defaults to `about:blank` (RFC 9457 §4.2.1: the problem is
/// just what the status code says); an application sets its own stable URI with
/// [`ProblemJson::with_type`].
#[derive(Debug, Clone)]
pub struct ProblemJson {
    type_uri: String,
}

impl Default for ProblemJson {
    fn default() -> Self {
        Self::with_type("about:blank")
    }
}

impl ProblemJson {
    /// A problem document whose `type` member is `type_uri`.
    pub fn with_type(type_uri: impl Into<String>) -> Self {
        Self {
            type_uri: type_uri.into(),
        }
    }
}

impl RejectionResponse for ProblemJson {
    fn response(&self, rejected: &Rejected<'_>) -> Response<String> {
        let detail = if rejected.decision.can_succeed_later() {
            format!(
                "Rate limit of policy \"{}\" exceeded; retry in {} s.",
                rejected.policy,
                ceil_secs(rejected.decision.retry_after)
            )
        } else {
            format!(
                "Request cost exceeds the capacity of policy \"{}\".",
                rejected.policy
            )
        };
        let body = format!(
            "{{\"type\":{},\"title\":\"Too Many Requests\",\"status\":429,\"detail\":{}}}",
            json_string(&self.type_uri),
            json_string(&detail)
        );
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// A JSON string literal for `s` (quotes, backslashes and controls escaped).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whole seconds, rounded up (a client told "0" would retry too early).
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Everything the layer and its services share.
struct Settings<K, A: Algorithm, E, C, R> {
    limiter: Arc<KeyedLimiter<K, A, C>>,
    extractor: E,
    rejection: R,
    policy: String,
    /// The constant `RateLimit-Policy` value, built once.
    policy_field: HeaderValue,
    cost: u64,
}

impl<K, A: Algorithm, E, C, R> Settings<K, A, E, C, R> {
    fn ratelimit_field(&self, decision: &Decision) -> HeaderValue {
        let value = format!(
            "\"{}\";r={};t={}",
            self.policy,
            decision.remaining,
            ceil_secs(decision.reset_after)
        );
        // The policy name was validated as sf-string-safe ASCII; the rest is digits.
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

fn policy_field<A: Algorithm>(policy: &str, algorithm: &A) -> Result<HeaderValue, LimitError> {
    let quota = algorithm.quota();
    let value = format!(
        "\"{}\";q={};w={}",
        policy,
        quota.limit,
        ceil_secs(quota.period).max(1)
    );
    HeaderValue::from_str(&value).map_err(|_| LimitError::InvalidPolicyName {
        name: policy.to_owned(),
    })
}

fn validate_policy_name(name: &str) -> Result<(), LimitError> {
    let ok = name
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(LimitError::InvalidPolicyName {
            name: name.to_owned(),
        })
    }
}

/// Applies a [`KeyedLimiter`] to every request; see the [module docs](self).
///
/// ```
/// use std::sync::Arc;
/// use girder_limit::http::{PeerIp, RateLimitLayer};
/// use girder_limit::{Gcra, KeyedLimiter, Quota, StoreConfig};
///
/// let limiter: KeyedLimiter<std::net::IpAddr> =
///     KeyedLimiter::new(Gcra::new(Quota::per_minute(100))?, StoreConfig::default())?;
/// let limiter = Arc::new(limiter);
/// let layer = RateLimitLayer::new(limiter, PeerIp).policy_name("per-ip")?;
/// # let _ = layer;
/// # Ok::<(), girder_limit::LimitError>(())
/// ```
pub struct RateLimitLayer<K, A: Algorithm, E, C, R = ProblemJson> {
    limiter: Arc<KeyedLimiter<K, A, C>>,
    extractor: E,
    rejection: R,
    policy: String,
    policy_field: HeaderValue,
    cost: u64,
}

impl<K, A: Algorithm, E: Clone, C, R: Clone> Clone for RateLimitLayer<K, A, E, C, R> {
    fn clone(&self) -> Self {
        Self {
            limiter: Arc::clone(&self.limiter),
            extractor: self.extractor.clone(),
            rejection: self.rejection.clone(),
            policy: self.policy.clone(),
            policy_field: self.policy_field.clone(),
            cost: self.cost,
        }
    }
}

impl<K, A: Algorithm, E, C> RateLimitLayer<K, A, E, C, ProblemJson> {
    /// Limits requests by `extractor`'s key with `limiter`; policy name
    /// `"default"`, cost 1 per request, [`ProblemJson`] rejections.
    pub fn new(limiter: Arc<KeyedLimiter<K, A, C>>, extractor: E) -> Self {
        let policy = "default".to_owned();
        // "default" is a valid name, so this cannot fail.
        let policy_field = policy_field(&policy, limiter.algorithm())
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        Self {
            limiter,
            extractor,
            rejection: ProblemJson::default(),
            policy,
            policy_field,
            cost: 1,
        }
    }
}

impl<K, A: Algorithm, E, C, R> RateLimitLayer<K, A, E, C, R> {
    /// Names the policy in the RateLimit fields (default `"default"`).
    ///
    /// # Errors
    ///
    /// [`LimitError::InvalidPolicyName`] unless `name` is printable ASCII without `"` or `\`.
    pub fn policy_name(mut self, name: &str) -> Result<Self, LimitError> {
        validate_policy_name(name)?;
        self.policy_field = policy_field(name, self.limiter.algorithm())?;
        self.policy = name.to_owned();
        Ok(self)
    }

    /// Units each request spends (default 1).
    pub fn cost(mut self, cost: u64) -> Self {
        self.cost = cost;
        self
    }

    /// Replaces the rejection builder.
    pub fn rejection<R2>(self, rejection: R2) -> RateLimitLayer<K, A, E, C, R2> {
        RateLimitLayer {
            limiter: self.limiter,
            extractor: self.extractor,
            rejection,
            policy: self.policy,
            policy_field: self.policy_field,
            cost: self.cost,
        }
    }
}

impl<S, K, A: Algorithm, E: Clone, C, R: Clone> Layer<S> for RateLimitLayer<K, A, E, C, R> {
    type Service = RateLimit<S, K, A, E, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            settings: Arc::new(Settings {
                limiter: Arc::clone(&self.limiter),
                extractor: self.extractor.clone(),
                rejection: self.rejection.clone(),
                policy: self.policy.clone(),
                policy_field: self.policy_field.clone(),
                cost: self.cost,
            }),
        }
    }
}

/// The service [`RateLimitLayer`] produces.
pub struct RateLimit<S, K, A: Algorithm, E, C, R> {
    inner: S,
    settings: Arc<Settings<K, A, E, C, R>>,
}

impl<S: Clone, K, A: Algorithm, E, C, R> Clone for RateLimit<S, K, A, E, C, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            settings: Arc::clone(&self.settings),
        }
    }
}

impl<S, B, ResBody, K, A, E, C, R> Service<Request<B>> for RateLimit<S, K, A, E, C, R>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<String>,
    K: Hash + Eq + Clone,
    A: Algorithm,
    E: KeyExtractor<B, Key = K>,
    C: Clock,
    R: RejectionResponse,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // No backpressure of our own: see the module docs.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let settings = &*self.settings;
        let Some(key) = settings.extractor.extract(&request) else {
            return ResponseFuture::inner(self.inner.call(request), None);
        };
        let decision = settings.limiter.check(&key, settings.cost);
        let fields = (
            settings.policy_field.clone(),
            settings.ratelimit_field(&decision),
        );
        if decision.allowed {
            return ResponseFuture::inner(self.inner.call(request), Some(fields));
        }
        let mut response = settings.rejection.response(&Rejected {
            decision: &decision,
            policy: &settings.policy,
        });
        if !(response.status().is_client_error() || response.status().is_server_error()) {
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        }
        let headers = response.headers_mut();
        if decision.can_succeed_later() {
            headers.insert(
                RETRY_AFTER,
                HeaderValue::from(ceil_secs(decision.retry_after)),
            );
        }
        headers.insert(RATELIMIT_POLICY, fields.0);
        headers.insert(RATELIMIT, fields.1);
        ResponseFuture::rejected(response.map(ResBody::from))
    }
}

pin_project! {
    /// The future of [`RateLimit`]'s response.
    pub struct ResponseFuture<F, ResBody> {
        #[pin]
        state: State<F, ResBody>,
    }
}

pin_project! {
    /// Either the inner service is answering, or we already have the 429.
    #[project = StateProj]
    enum State<F, ResBody> {
        Inner {
            #[pin]
            future: F,
            // (RateLimit-Policy, RateLimit) to add; None for unkeyed requests.
            fields: Option<(HeaderValue, HeaderValue)>,
        },
        Rejected {
            // Taken on the first poll.
            response: Option<Response<ResBody>>,
        },
    }
}

impl<F, ResBody> ResponseFuture<F, ResBody> {
    fn inner(future: F, fields: Option<(HeaderValue, HeaderValue)>) -> Self {
        Self {
            state: State::Inner { future, fields },
        }
    }

    fn rejected(response: Response<ResBody>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<F, ResBody, Error> Future for ResponseFuture<F, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, Error>>,
{
    type Output = Result<Response<ResBody>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future, fields } => {
                let mut response = ready!(future.poll(cx))?;
                if let Some((policy, ratelimit)) = fields.take() {
                    let headers = response.headers_mut();
                    headers.insert(RATELIMIT_POLICY, policy);
                    headers.insert(RATELIMIT, ratelimit);
                }
                Poll::Ready(Ok(response))
            }
            StateProj::Rejected { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}
