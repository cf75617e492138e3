//! The scheduler benchmark, over Girder's HTTP API.
//!
//! **Throughput** (`phase = "throughput"`): `producers` tasks enqueue `jobs` jobs
//! (`POST /v1/jobs`, each answered after its commit) while `workers` tasks loop on
//! `POST /v1/queues/<q>/claim` (`max_jobs = batch`, long-poll) and `POST
//! /v1/jobs/<id>/complete` for every job they got. The clock runs from the first enqueue
//! to the last completion: end-to-end jobs/s through enqueue → claim → complete.
//!
//! **Lateness** (`phase = "lateness"`): on the now idle node, `late_jobs` jobs are
//! enqueued at a gentle pace with delays spread over 0.2–2 s; `workers` long-poll for
//! them. Lateness = the time the claim's answer arrived minus the job's `run_at` (one
//! machine, one clock), reported as p50/p99/max.
//!
//! Checks, each a failure rather than a number: every enqueue answered 201; every job
//! claimed and completed exactly once (a completion answered 409 or a job seen twice is
//! counted and fails the run); the queue is empty at the end.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// `http://host:port` of the node.
    pub base: String,
    /// Jobs in the throughput phase.
    pub jobs: u64,
    /// Concurrent enqueuers.
    pub producers: usize,
    /// Concurrent workers.
    pub workers: usize,
    /// `max_jobs` per claim.
    pub batch: u32,
    /// Jobs per enqueue request: 1 uses `POST /v1/jobs`, more `POST /v1/jobs/batch`.
    pub enqueue_batch: u64,
    /// Complete each claim's jobs with one `POST /v1/jobs/complete` instead of one
    /// request per job.
    pub complete_batch: bool,
    /// Jobs in the lateness phase (0 skips it).
    pub late_jobs: u64,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobsError(String);

fn fail(m: impl Into<String>) -> JobsError {
    JobsError(m.into())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    // `YYYY-MM-DDTHH:MM:SS[.fff]Z`, as Girder writes it.
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = if b.get(19) == Some(&b'.') {
        let digits = &s[20..s.len() - 1];
        let mut v: i64 = digits.parse().ok()?;
        for _ in digits.len()..3 {
            v *= 10;
        }
        v
    } else {
        0
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from((((days * 24 + h) * 60 + mi) * 60 + sec) * 1000 + frac).ok()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Runs both phases and prints one JSON line per phase (then a `#` line for people).
pub async fn run(config: &Config) -> Result<(), JobsError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| fail(format!("client: {e}")))?;
    let queue = format!("bench-{}-{}", std::process::id(), now_ms());
    throughput(config, &client, &queue).await?;
    if config.late_jobs > 0 {
        lateness(config, &client, &format!("{queue}-late")).await?;
    }
    Ok(())
}

async fn throughput(
    config: &Config,
    client: &reqwest::Client,
    queue: &str,
) -> Result<(), JobsError> {
    let next = Arc::new(AtomicU64::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(HashSet::<i64>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..config.producers {
        let (client, next, errors) = (client.clone(), next.clone(), errors.clone());
        let url = format!("{}/v1/jobs", config.base);
        let (queue, total) = (queue.to_owned(), config.jobs);
        let per = config.enqueue_batch.max(1);
        let batch_url = format!("{}/v1/jobs/batch", config.base);
        tasks.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(per, Ordering::Relaxed);
                if first >= total {
                    break;
                }
                let last = (first + per).min(total);
                let job = |n: u64| serde_json::json!({"queue": queue, "payload": {"n": n}});
                let (target, body, want) = if per == 1 {
                    (&url, job(first), reqwest::StatusCode::CREATED)
                } else {
                    let jobs: Vec<_> = (first..last).map(job).collect();
                    (
                        &batch_url,
                        serde_json::json!({"jobs": jobs}),
                        reqwest::StatusCode::OK,
                    )
                };
                match client.post(target).json(&body).send().await {
                    Ok(r) if r.status() == want => {
                        let _ = r.bytes().await;
                    }
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        errors
                            .lock()
                            .unwrap()
                            .push(format!("enqueue answered {status}: {text}"));
                        break;
                    }
                    Err(e) => {
                        errors.lock().unwrap().push(format!("enqueue: {e}"));
                        break;
                    }
                }
            }
        }));
    }
    let mut last_done = Arc::new(Mutex::new(Instant::now()));
    for w in 0..config.workers {
        let (client, completed, seen, errors) = (
            client.clone(),
            completed.clone(),
            seen.clone(),
            errors.clone(),
        );
        let last_done = last_done.clone();
        let claim_url = format!("{}/v1/queues/{queue}/claim", config.base);
        let base = config.base.clone();
        let (total, batch, complete_batch) = (config.jobs, config.batch, config.complete_batch);
        tasks.push(tokio::spawn(async move {
            let body = serde_json::json!({"max_jobs": batch, "lease_ms": 60000, "wait_ms": 1000,
                                          "worker": format!("bench-{w}")});
            while completed.load(Ordering::Relaxed) < total {
                if !errors.lock().unwrap().is_empty() {
                    return;
                }
                let v: serde_json::Value = match client.post(&claim_url).json(&body).send().await {
                    Ok(r) if r.status().is_success() => match r.json().await {
                        Ok(v) => v,
                        Err(e) => {
                            errors.lock().unwrap().push(format!("claim body: {e}"));
                            return;
                        }
                    },
                    Ok(r) => {
                        errors.lock().unwrap().push(format!("claim answered {}", r.status()));
                        return;
                    }
                    Err(e) => {
                        errors.lock().unwrap().push(format!("claim: {e}"));
                        return;
                    }
                };
                let jobs: Vec<serde_json::Value> = v["jobs"].as_array().cloned().unwrap_or_default();
                for job in &jobs {
                    let id = job["id"].as_i64().unwrap_or(-1);
                    if !seen.lock().unwrap().insert(id) {
                        errors.lock().unwrap().push(format!("job {id} was claimed twice"));
                    }
                }
                if jobs.is_empty() {
                    continue;
                }
                if complete_batch {
                    let items: Vec<_> = jobs
                        .iter()
                        .map(|j| serde_json::json!({"id": j["id"], "fencing_token": j["fencing_token"]}))
                        .collect();
                    let r = client
                        .post(format!("{base}/v1/jobs/complete"))
                        .json(&serde_json::json!({"jobs": items}))
                        .send()
                        .await;
                    let v: serde_json::Value = match r {
                        Ok(r) if r.status() == reqwest::StatusCode::OK => r.json().await.unwrap_or_default(),
                        Ok(r) => {
                            errors.lock().unwrap().push(format!("complete answered {}", r.status()));
                            return;
                        }
                        Err(e) => {
                            errors.lock().unwrap().push(format!("complete: {e}"));
                            return;
                        }
                    };
                    for res in v["results"].as_array().into_iter().flatten() {
                        if res["status"] == 200 {
                            completed.fetch_add(1, Ordering::Relaxed);
                        } else {
                            errors.lock().unwrap().push(format!("complete: {res}"));
                        }
                    }
                    *last_done.lock().unwrap() = Instant::now();
                    continue;
                }
                for job in &jobs {
                    let id = job["id"].as_i64().unwrap_or(-1);
                    let done = serde_json::json!({"fencing_token": job["fencing_token"]});
                    match client
                        .post(format!("{base}/v1/jobs/{id}/complete"))
                        .json(&done)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == reqwest::StatusCode::OK => {
                            let _ = r.bytes().await;
                            completed.fetch_add(1, Ordering::Relaxed);
                            *last_done.lock().unwrap() = Instant::now();
                        }
                        Ok(r) => {
                            errors
                                .lock()
                                .unwrap()
                                .push(format!("complete {id} answered {}", r.status()));
                        }
                        Err(e) => errors.lock().unwrap().push(format!("complete: {e}")),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| fail(format!("task: {e}")))?;
    }
    if let Some(e) = errors.lock().unwrap().first() {
        return Err(fail(e.clone()));
    }
    let done = completed.load(Ordering::Relaxed);
    if done != config.jobs {
        return Err(fail(format!("{done} of {} jobs completed", config.jobs)));
    }
    let elapsed = last_done
        .lock()
        .map(|t| t.duration_since(started))
        .unwrap_or_default();
    let _ = &mut last_done;
    // Nothing may be left: no available, running or failed job in the queue.
    for state in ["available", "running", "failed", "scheduled"] {
        let v: serde_json::Value = client
            .get(format!(
                "{}/v1/jobs?queue={queue}&state={state}&limit=1",
                config.base
            ))
            .send()
            .await
            .map_err(|e| fail(format!("list: {e}")))?
            .json()
            .await
            .map_err(|e| fail(format!("list: {e}")))?;
        if v["items"].as_array().is_some_and(|a| !a.is_empty()) {
            return Err(fail(format!("a job is still {state} after the run")));
        }
    }
    let rate = config.jobs as f64 / elapsed.as_secs_f64();
    println!(
        "{{\"phase\":\"throughput\",\"jobs\":{},\"producers\":{},\"workers\":{},\"batch\":{},\"enqueue_batch\":{},\"complete_batch\":{},\"seconds\":{:.3},\"jobs_per_sec\":{:.0},\"errors\":0}}",
        config.jobs, config.producers, config.workers, config.batch, config.enqueue_batch, config.complete_batch, elapsed.as_secs_f64(), rate
    );
    println!(
        "# throughput: {} jobs enqueued by {} producers, claimed (batch {}) and completed by {} workers in {:.2} s = {:.0} jobs/s",
        config.jobs, config.producers, config.batch, config.workers, elapsed.as_secs_f64(), rate
    );
    Ok(())
}

async fn lateness(config: &Config, client: &reqwest::Client, queue: &str) -> Result<(), JobsError> {
    let total = config.late_jobs;
    let late = Arc::new(Mutex::new(Vec::<u64>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let got = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..config.workers {
        let (client, late, errors, got) =
            (client.clone(), late.clone(), errors.clone(), got.clone());
        let claim_url = format!("{}/v1/queues/{queue}/claim", config.base);
        let base = config.base.clone();
        workers.push(tokio::spawn(async move {
            let body =
                serde_json::json!({"max_jobs": 10, "wait_ms": 2000, "worker": format!("late-{w}")});
            while got.load(Ordering::Relaxed) < total {
                let r = client.post(&claim_url).json(&body).send().await;
                let arrived = now_ms();
                let v: serde_json::Value = match r {
                    Ok(r) => match r.json().await {
                        Ok(v) => v,
                        Err(e) => {
                            errors.lock().unwrap().push(format!("claim body: {e}"));
                            return;
                        }
                    },
                    Err(e) => {
                        errors.lock().unwrap().push(format!("claim: {e}"));
                        return;
                    }
                };
                for job in v["jobs"].as_array().into_iter().flatten() {
                    let run_at = job["run_at"]
                        .as_str()
                        .and_then(parse_rfc3339_ms)
                        .unwrap_or(0);
                    late.lock().unwrap().push(arrived.saturating_sub(run_at));
                    got.fetch_add(1, Ordering::Relaxed);
                    let id = job["id"].as_i64().unwrap_or(-1);
                    let _ = client
                        .post(format!("{base}/v1/jobs/{id}/complete"))
                        .json(&serde_json::json!({"fencing_token": job["fencing_token"]}))
                        .send()
                        .await;
                }
            }
        }));
    }
    // Enqueue at ~200/s with delays over 0.2–2 s, so jobs fall due one by one.
    let url = format!("{}/v1/jobs", config.base);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for n in 0..total {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = 200 + rng % 1800;
        let body = serde_json::json!({"queue": queue, "payload": {"n": n}, "delay_ms": delay});
        let r = client
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| fail(format!("enqueue: {e}")))?;
        if r.status() != reqwest::StatusCode::CREATED {
            return Err(fail(format!("enqueue answered {}", r.status())));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for w in workers {
        w.await.map_err(|e| fail(format!("task: {e}")))?;
    }
    if let Some(e) = errors.lock().unwrap().first() {
        return Err(fail(e.clone()));
    }
    let mut l = late.lock().unwrap().clone();
    l.sort_unstable();
    let (p50, p99, max) = (
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(0),
    );
    println!(
        "{{\"phase\":\"lateness\",\"jobs\":{},\"p50_ms\":{p50},\"p99_ms\":{p99},\"max_ms\":{max},\"errors\":0}}",
        l.len()
    );
    println!(
        "# start lateness over {} delayed jobs: p50 {p50} ms, p99 {p99} ms, max {max} ms",
        l.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            super::parse_rfc3339_ms("2026-01-01T00:00:00.5Z"),
            Some(1_767_225_600_500)
        );
        assert_eq!(
            super::parse_rfc3339_ms("2026-11-28T15:02:44.827Z"),
            Some(1_795_878_164_827)
        );
    }
}
