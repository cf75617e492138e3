//! The built-in webhook executor: jobs of kind `http` are POSTed by the node itself.
//!
//! It claims `http` jobs from every queue (the same claims, leases and fencing as
//! external workers; its worker name is the node's), and POSTs each job's payload as
//! JSON to the job's URL with
//! - `Idempotency-Key: girder-job-<id>` — the same on every attempt, so a target that
//!   honours it performs the side effect once even if an attempt is retried after the
//!   node crashed between the target's answer and the commit;
//! - `Girder-Job-Id`, `Girder-Attempt`, and `Girder-Fencing-Token` (the attempt).
//!
//! A 2xx answer commits success; anything else (another status, a refused connection,
//! the job's timeout) fails the attempt, which retries after its backoff. Each target
//! host has its own circuit breaker (`girder-resilience`, 5 failures in a row open it
//! for 30 s): while it is open, attempts for that host fail at once without a request.

use crate::engine::Scheduler;
use crate::model::{Claimed, JobKind};
use crate::store::ClaimSpec;
use girder_resilience::{BreakerConfig, CircuitBreaker};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Executor settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The lease (and request timeout) of an attempt whose job sets no `timeout`.
    pub default_timeout: Duration,
    /// Per-host breaker.
    pub breaker: BreakerConfig,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            concurrency: 64,
            default_timeout: Duration::from_secs(30),
            breaker: BreakerConfig::default(),
        }
    }
}

/// Runs webhook jobs until `shutdown`.
pub async fn run(sched: Arc<Scheduler>, config: WebhookConfig, shutdown: CancellationToken) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook executor: cannot build the HTTP client");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let breakers: Arc<Mutex<HashMap<String, Arc<CircuitBreaker>>>> = Arc::default();
    let lease_ms = config.default_timeout.as_millis() as u64;
    loop {
        // Claim only as many jobs as there are free request slots.
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                () = shutdown.cancelled() => return,
                p = Arc::clone(&permits).acquire_owned() => drop(p),
            }
            continue;
        }
        let spec = ClaimSpec {
            queue: None,
            http: true,
            max_jobs: free.min(100) as u32,
            lease_ms,
            worker: sched.config().node_name.clone(),
            concurrency: None,
        };
        let claimed = tokio::select! {
            () = shutdown.cancelled() => return,
            c = sched.claim_spec(spec, 5_000) => c,
        };
        let claimed = match claimed {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook executor: claim failed; retrying in 1 s");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
        };
        for job in claimed {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let (sched, client, breakers) = (sched.clone(), client.clone(), breakers.clone());
            let breaker_config = config.breaker;
            tokio::spawn(async move {
                execute(&sched, &client, &breakers, breaker_config, job).await;
                drop(permit);
            });
        }
    }
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
}

async fn execute(
    sched: &Scheduler,
    client: &reqwest::Client,
    breakers: &Mutex<HashMap<String, Arc<CircuitBreaker>>>,
    breaker_config: BreakerConfig,
    job: Claimed,
) {
    let JobKind::Http { url } = &job.kind else {
        return;
    };
    let host = host_of(url);
    let breaker = Arc::clone(
        breakers
            .lock()
            .entry(host.clone())
            .or_insert_with(|| Arc::new(CircuitBreaker::new(breaker_config))),
    );
    let timeout = Duration::from_millis(job.lease_until_ms.saturating_sub(now_ms()).max(1));
    let outcome: Result<u16, String> = match breaker.try_acquire() {
        None => Err(format!("circuit open for {host}: not called")),
        Some(permit) => {
            let sent = client
                .post(url)
                .timeout(timeout)
                .header("Idempotency-Key", format!("girder-job-{}", job.id))
                .header("Girder-Job-Id", job.id.to_string())
                .header("Girder-Attempt", job.attempt.to_string())
                .header("Girder-Fencing-Token", job.fencing_token.to_string())
                .json(&job.payload)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    permit.success();
                    Ok(r.status().as_u16())
                }
                Ok(r) => {
                    permit.failure();
                    Err(format!("{url} answered {}", r.status()))
                }
                Err(e) => {
                    permit.failure();
                    Err(format!("{url}: {e}"))
                }
            }
        }
    };
    let committed = match outcome {
        Ok(status) => {
            sched
                .complete(
                    job.id,
                    job.fencing_token,
                    Some(serde_json::json!({ "status": status })),
                )
                .await
        }
        Err(error) => sched.fail(job.id, job.fencing_token, error, true).await,
    };
    if let Err(e) = committed {
        // A conflict means the lease ran out meanwhile and the job was taken again.
        tracing::warn!(job = job.id, error = %e, "webhook outcome not committed");
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts() {
        assert_eq!(
            super::host_of("http://Example.com:8080/a/b"),
            "example.com:8080"
        );
        assert_eq!(super::host_of("https://x"), "x");
    }
}
