//! The per-client rate limit of the `/v1` API (`http.rate_limit`), built on `girder-limit`.
//!
//! Denied requests get `429` with `Retry-After`, the IETF `RateLimit-Policy` and
//! `RateLimit` fields, and a problem document of type `urn:girder:problem:rate-limited`;
//! allowed ones carry the two RateLimit fields too. Health, readiness and metrics routes
//! are never limited. Memory stays bounded: at most `max_keys` clients are tracked, idle
//! ones are forgotten as soon as forgetting them changes no decision.

use crate::problem::ProblemType;
use axum::extract::ConnectInfo;
use axum::Router;
use girder_limit::http::{KeyFn, ProblemJson, RateLimitLayer};
use girder_limit::{AlgorithmKind, AnyAlgorithm, KeyedLimiter, LimitError, Quota, StoreConfig};
use http::{HeaderName, HeaderValue, Request};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What identifies a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKey {
    /// The peer's IP address.
    PeerIp,
    /// The value of a request header (an API key, a tenant id); requests without it are
    /// limited together as one anonymous client.
    Header(HeaderName),
}

/// Settings of the limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitOptions {
    /// Requests per `period` and the burst allowed at once.
    pub quota: Quota,
    /// Which algorithm applies the quota.
    pub algorithm: AlgorithmKind,
    /// How clients are told apart.
    pub key: ClientKey,
    /// Most clients tracked at once.
    pub max_keys: usize,
}

impl RateLimitOptions {
    /// Checks the quota and the key store settings.
    ///
    /// # Errors
    /// The limiter's own error, naming what is wrong.
    pub fn validate(&self) -> Result<(), LimitError> {
        build_limiter(self).map(|_| ())
    }
}

/// A client as the limiter sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Client {
    Ip(IpAddr),
    Header(HeaderValue),
    Anonymous,
}

fn build_limiter(
    options: &RateLimitOptions,
) -> Result<KeyedLimiter<Client, AnyAlgorithm>, LimitError> {
    KeyedLimiter::new(
        AnyAlgorithm::new(options.algorithm, options.quota)?,
        StoreConfig {
            max_keys: options.max_keys,
            ..StoreConfig::default()
        },
    )
}

/// Wraps `router` in the rate limit.
///
/// # Panics
/// If `options` does not validate: [`RateLimitOptions::validate`] is checked at startup.
pub fn apply(router: Router, options: &RateLimitOptions) -> Router {
    let limiter =
        Arc::new(build_limiter(options).expect("rate limit options are validated at startup"));
    let key = options.key.clone();
    let extractor = KeyFn(move |request: &Request<axum::body::Body>| {
        Some(match &key {
            ClientKey::PeerIp => request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(Client::Anonymous, |info| Client::Ip(info.0.ip())),
            ClientKey::Header(name) => request
                .headers()
                .get(name)
                .map_or(Client::Anonymous, |v| Client::Header(v.clone())),
        })
    });
    let layer = RateLimitLayer::new(limiter, extractor)
        .rejection(ProblemJson::with_type(ProblemType::RateLimited.uri()));
    router.layer(layer)
}
