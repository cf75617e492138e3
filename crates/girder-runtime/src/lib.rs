//! The seam every Girder front end and engine plugs into.
//!
//! A [`Service`] is anything that runs for the life of the process: the HTTP front end, the
//! RESP server, the scheduler's timer loop. The binary builds a list of services and hands
//! them to [`supervise`], which runs them side by side and owns the shutdown sequence:
//!
//! 1. a shutdown is requested (signal) or a service fails;
//! 2. [`Readiness`] turns not-ready, so `/readyz` answers 503 and load balancers drain;
//! 3. after `drain_delay`, the shared [`CancellationToken`] is cancelled: each service stops
//!    accepting work and finishes what is in flight;
//! 4. the supervisor waits up to `grace_period` for all of them, then aborts the stragglers.
//!
//! Services share nothing but a [`ServiceContext`]: the shutdown token, readiness and the
//! metrics registry. They never reach into each other, so a new system plugs in without
//! touching the others.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod metrics;
mod readiness;
mod service;

pub use metrics::{BuildInfo, Metrics};
pub use readiness::{Readiness, ReadinessStatus};
pub use service::{supervise, BoxFuture, Service, ServiceContext, ShutdownPolicy, ShutdownReport};
pub use tokio_util::sync::CancellationToken;
