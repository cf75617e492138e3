//! Services and the supervisor that runs and stops them.

use crate::{Metrics, Readiness};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A boxed, sendable future: what [`Service::run`] returns, so services can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that runs for the life of the process.
///
/// `run` must return soon after `ctx.shutdown` is cancelled, having finished or handed off
/// the work it accepted. Returning before shutdown is treated as a failure of the process:
/// the supervisor shuts everything else down.
pub trait Service: Send + 'static {
    /// A short, stable name for logs, metrics and readiness (`"http"`, `"resp"`).
    fn name(&self) -> &'static str;

    /// Runs until `ctx.shutdown` is cancelled.
    fn run(self: Box<Self>, ctx: ServiceContext) -> BoxFuture<'static, anyhow::Result<()>>;
}

impl std::fmt::Debug for dyn Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What every service receives: the only state services share.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    /// Cancelled when the service must stop accepting work and drain.
    pub shutdown: CancellationToken,
    /// Process readiness; a service may mark itself not ready while it warms up.
    pub readiness: Readiness,
    /// The process-wide metrics registry.
    pub metrics: Metrics,
}

/// Timing of the shutdown sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownPolicy {
    /// How long to keep serving, not ready, after shutdown is requested, so that load
    /// balancers see `/readyz` fail before connections are refused.
    pub drain_delay: Duration,
    /// How long in-flight work may take to finish once services are told to stop.
    pub grace_period: Duration,
}

impl Default for ShutdownPolicy {
    fn default() -> Self {
        Self {
            drain_delay: Duration::ZERO,
            grace_period: Duration::from_secs(10),
        }
    }
}

/// How a supervised run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Services that had not finished when the grace period ran out and were aborted.
    pub aborted: Vec<&'static str>,
}

/// Runs `services` until `shutdown_requested` resolves or one of them stops, then shuts
/// all of them down following `policy`.
///
/// # Errors
/// The first service failure (an error, a panic, or returning before shutdown). Shutdown
/// still runs for the others before the error is returned.
pub async fn supervise(
    services: Vec<Box<dyn Service>>,
    ctx: ServiceContext,
    shutdown_requested: impl Future<Output = ()>,
    policy: ShutdownPolicy,
) -> anyhow::Result<ShutdownReport> {
    let mut tasks = JoinSet::new();
    let mut names = std::collections::HashMap::new();
    for service in services {
        let name = service.name();
        let handle = tasks.spawn(service.run(ctx.clone()));
        names.insert(handle.id(), name);
        tracing::debug!(service = name, "service started");
    }

    let mut failure: Option<anyhow::Error> = None;
    tokio::select! {
        () = shutdown_requested => tracing::info!("shutdown requested"),
        () = ctx.shutdown.cancelled() => tracing::info!("shutdown requested by a service"),
        Some(joined) = tasks.join_next_with_id() => {
            let (name, outcome) = describe(&mut names, joined);
            let err = match outcome {
                Ok(()) => anyhow::anyhow!("service {name} stopped before shutdown was requested"),
                Err(e) => e.context(format!("service {name} failed")),
            };
            tracing::error!(error = format!("{err:#}"), "shutting down");
            failure = Some(err);
        }
    }

    ctx.readiness.begin_drain();
    if failure.is_none() && !policy.drain_delay.is_zero() {
        tracing::info!(drain_delay = ?policy.drain_delay, "draining: readiness is now failing");
        tokio::time::sleep(policy.drain_delay).await;
    }
    ctx.shutdown.cancel();

    let deadline = tokio::time::Instant::now() + policy.grace_period;
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await {
            Ok(None) => break,
            Ok(Some(joined)) => {
                let (name, outcome) = describe(&mut names, joined);
                match outcome {
                    Ok(()) => tracing::debug!(service = name, "service stopped"),
                    Err(e) => {
                        let e = e.context(format!("service {name} failed during shutdown"));
                        tracing::error!(error = format!("{e:#}"));
                        failure.get_or_insert(e);
                    }
                }
            }
            Err(_elapsed) => break,
        }
    }
    // `describe` removes each finished task's name, so what is left is still running.
    let mut aborted: Vec<_> = names.into_values().collect();
    aborted.sort_unstable();
    if !aborted.is_empty() {
        tracing::warn!(
            services = ?aborted,
            grace_period = ?policy.grace_period,
            "grace period over; aborting what is still running"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(ShutdownReport { aborted }),
    }
}

type Joined = Result<(tokio::task::Id, anyhow::Result<()>), tokio::task::JoinError>;

/// Names the task that finished and forgets it, so `names` ends up holding only the tasks
/// still running.
fn describe(
    names: &mut std::collections::HashMap<tokio::task::Id, &'static str>,
    joined: Joined,
) -> (&'static str, anyhow::Result<()>) {
    match joined {
        Ok((id, outcome)) => (names.remove(&id).unwrap_or("?"), outcome),
        Err(join_error) => {
            let name = names.remove(&join_error.id()).unwrap_or("?");
            (
                name,
                Err(anyhow::anyhow!("task ended abnormally: {join_error}")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Waits for shutdown, then takes `drain` to finish its in-flight work.
    struct Worker {
        drain: Duration,
        finished: Arc<AtomicBool>,
    }

    impl Service for Worker {
        fn name(&self) -> &'static str {
            "worker"
        }
        fn run(self: Box<Self>, ctx: ServiceContext) -> BoxFuture<'static, anyhow::Result<()>> {
            Box::pin(async move {
                ctx.shutdown.cancelled().await;
                tokio::time::sleep(self.drain).await;
                self.finished.store(true, Ordering::SeqCst);
                Ok(())
            })
        }
    }

    struct Failing;

    impl Service for Failing {
        fn name(&self) -> &'static str {
            "failing"
        }
        fn run(self: Box<Self>, _ctx: ServiceContext) -> BoxFuture<'static, anyhow::Result<()>> {
            Box::pin(async { anyhow::bail!("port in use") })
        }
    }

    fn ctx() -> ServiceContext {
        ServiceContext {
            shutdown: CancellationToken::new(),
            readiness: Readiness::default(),
            metrics: Metrics::new(crate::BuildInfo::default()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_work_finishes_within_the_grace_period() {
        let finished = Arc::new(AtomicBool::new(false));
        let ctx = ctx();
        let report = supervise(
            vec![Box::new(Worker {
                drain: Duration::from_secs(3),
                finished: finished.clone(),
            })],
            ctx.clone(),
            tokio::time::sleep(Duration::from_secs(1)),
            ShutdownPolicy {
                drain_delay: Duration::from_secs(2),
                grace_period: Duration::from_secs(10),
            },
        )
        .await
        .unwrap();
        assert!(report.aborted.is_empty());
        assert!(finished.load(Ordering::SeqCst));
        assert!(ctx.readiness.status().draining);
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_fails_during_the_drain_delay_before_services_are_told_to_stop() {
        let ctx = ctx();
        let probe = ctx.clone();
        let watcher = tokio::spawn(async move {
            // Shutdown is requested at t=1s; the drain delay holds cancellation until t=3s.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            (
                probe.readiness.status().ready,
                probe.shutdown.is_cancelled(),
            )
        });
        let finished = Arc::new(AtomicBool::new(false));
        supervise(
            vec![Box::new(Worker {
                drain: Duration::ZERO,
                finished,
            })],
            ctx,
            tokio::time::sleep(Duration::from_secs(1)),
            ShutdownPolicy {
                drain_delay: Duration::from_secs(2),
                grace_period: Duration::from_secs(1),
            },
        )
        .await
        .unwrap();
        assert_eq!(watcher.await.unwrap(), (false, false));
    }

    #[tokio::test(start_paused = true)]
    async fn stragglers_are_aborted_when_the_grace_period_runs_out() {
        let finished = Arc::new(AtomicBool::new(false));
        let start = tokio::time::Instant::now();
        let report = supervise(
            vec![Box::new(Worker {
                drain: Duration::from_secs(60),
                finished: finished.clone(),
            })],
            ctx(),
            std::future::ready(()),
            ShutdownPolicy {
                drain_delay: Duration::ZERO,
                grace_period: Duration::from_secs(10),
            },
        )
        .await
        .unwrap();
        assert_eq!(report.aborted, vec!["worker"]);
        assert!(!finished.load(Ordering::SeqCst));
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_service_stops_the_others_and_is_reported() {
        let finished = Arc::new(AtomicBool::new(false));
        let err = supervise(
            vec![
                Box::new(Worker {
                    drain: Duration::from_millis(10),
                    finished: finished.clone(),
                }),
                Box::new(Failing),
            ],
            ctx(),
            std::future::pending(),
            ShutdownPolicy::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(format!("{err:#}"), "service failing failed: port in use");
        assert!(
            finished.load(Ordering::SeqCst),
            "the healthy service drained"
        );
    }
}
