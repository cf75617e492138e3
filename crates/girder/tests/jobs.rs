//! The scheduler over HTTP: a real node on port 0 and reqwest. The worker protocol with
//! fencing, long-poll claims, bad input, restarts; and kill -9 of the real binary while
//! producers enqueue and workers complete: every acknowledged enqueue is present after
//! restart, every acknowledged completion stays committed, and no job commits twice.

mod common;

use common::{call, start, TempDir};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn worker_protocol_with_fencing() {
    let dir = TempDir::new("jobs", "fencing");
    let node = start(&dir.0).await;
    let c = client();
    let base = &node.base;
    let (status, job) = call(c.post(format!("{base}/v1/jobs")).json(&json!({
        "queue": "billing", "payload": {"invoice": 7}, "max_attempts": 3,
        "backoff": {"base_ms": 1, "max_ms": 1}
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_i64().unwrap();
    assert_eq!(job["state"], "available");

    // Worker A claims with a short lease and stalls.
    let (_, a) = call(
        c.post(format!("{base}/v1/queues/billing/claim"))
            .json(&json!({"max_jobs": 10, "lease_ms": 200, "worker": "a"})),
    )
    .await;
    let a = &a["jobs"][0];
    assert_eq!(a["id"], id);
    assert_eq!(a["fencing_token"], 1);
    assert_eq!(a["payload"], json!({"invoice": 7}));

    // Worker B long-polls; it gets the job once A's lease ends (and the 1 ms backoff).
    let started = Instant::now();
    let (_, b) = call(
        c.post(format!("{base}/v1/queues/billing/claim"))
            .json(&json!({"wait_ms": 5000, "worker": "b"})),
    )
    .await;
    let b = &b["jobs"][0];
    assert_eq!(b["id"], id);
    assert_eq!(b["fencing_token"], 2);
    assert!(started.elapsed() < Duration::from_secs(3));

    // A wakes up and tries to commit: refused, as are its heartbeat and fail.
    for (op, body) in [
        ("complete", json!({"fencing_token": 1})),
        ("heartbeat", json!({"fencing_token": 1})),
        ("fail", json!({"fencing_token": 1, "error": "late"})),
    ] {
        let (status, problem) = call(c.post(format!("{base}/v1/jobs/{id}/{op}")).json(&body)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{op}: {problem}");
        assert_eq!(problem["type"], "urn:girder:problem:conflict");
    }
    let (status, hb) = call(
        c.post(format!("{base}/v1/jobs/{id}/heartbeat"))
            .json(&json!({"fencing_token": 2, "lease_ms": 60000})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{hb}");
    let (status, done) = call(
        c.post(format!("{base}/v1/jobs/{id}/complete"))
            .json(&json!({"fencing_token": 2, "result": {"paid": true}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["state"], "succeeded");
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["outcome"], "lease_expired");
    assert_eq!(attempts[0]["worker"], "a");
    assert_eq!(attempts[1]["outcome"], "succeeded");
    assert_eq!(attempts[1]["worker"], "b");
    node.stop().await;
}

#[tokio::test]
async fn idempotent_enqueue_list_cancel_retry_and_restart() {
    let dir = TempDir::new("jobs", "lifecycle");
    let node = start(&dir.0).await;
    let c = client();
    let base = node.base.clone();
    let body = json!({"queue": "mail", "payload": 1, "idempotency_key": "order-1"});
    let (s1, j1) = call(c.post(format!("{base}/v1/jobs")).json(&body)).await;
    let (s2, j2) = call(c.post(format!("{base}/v1/jobs")).json(&body)).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(j1["id"], j2["id"]);
    // A delayed job, and a dead one.
    let (_, later) = call(
        c.post(format!("{base}/v1/jobs"))
            .json(&json!({"queue": "mail", "delay_ms": 3_600_000})),
    )
    .await;
    assert_eq!(later["state"], "scheduled");
    let (_, dead) = call(
        c.post(format!("{base}/v1/jobs"))
            .json(&json!({"queue": "dlq-test", "max_attempts": 1})),
    )
    .await;
    let dead_id = dead["id"].as_i64().unwrap();
    call(
        c.post(format!("{base}/v1/queues/dlq-test/claim"))
            .json(&json!({})),
    )
    .await;
    let (_, failed) = call(
        c.post(format!("{base}/v1/jobs/{dead_id}/fail"))
            .json(&json!({"fencing_token": 1, "error": "smtp 550"})),
    )
    .await;
    assert_eq!(failed["state"], "dead");
    let (_, page) = call(c.get(format!("{base}/v1/jobs?state=dead"))).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    // Pages by cursor.
    let (_, p1) = call(c.get(format!("{base}/v1/jobs?limit=2"))).await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    let (_, p2) = call(c.get(format!("{base}/v1/jobs?limit=2&cursor={cursor}"))).await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert!(p2.get("next_cursor").is_none());
    // Cancel the delayed one; retry the dead one.
    let later_id = later["id"].as_i64().unwrap();
    let (s, cancelled) = call(c.post(format!("{base}/v1/jobs/{later_id}/cancel"))).await;
    assert_eq!(
        (s, cancelled["state"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (s, _) = call(c.post(format!("{base}/v1/jobs/{later_id}/cancel"))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, revived) = call(c.post(format!("{base}/v1/jobs/{dead_id}/retry"))).await;
    assert_eq!(
        (s, revived["state"].as_str()),
        (StatusCode::OK, Some("available"))
    );
    node.stop().await;

    // Everything is still there after a restart.
    let node = start(&dir.0).await;
    let base = node.base.clone();
    let (_, j) = call(c.get(format!("{base}/v1/jobs/{}", j1["id"]))).await;
    assert_eq!(j["state"], "available");
    let (_, j) = call(c.get(format!("{base}/v1/jobs/{later_id}"))).await;
    assert_eq!(j["state"], "cancelled");
    let (s, again) = call(c.post(format!("{base}/v1/jobs")).json(&body)).await;
    assert_eq!(s, StatusCode::OK, "the idempotency key survives a restart");
    assert_eq!(again["id"], j1["id"]);
    node.stop().await;
}

#[tokio::test]
async fn batch_enqueue_and_batch_complete() {
    let dir = TempDir::new("jobs", "batch");
    let node = start(&dir.0).await;
    let c = client();
    let base = &node.base;
    let jobs: Vec<Value> = (0..50)
        .map(|i| json!({"queue": "bulk", "payload": i, "idempotency_key": format!("k{}", i % 40)}))
        .collect();
    let (status, out) = call(
        c.post(format!("{base}/v1/jobs/batch"))
            .json(&json!({"jobs": jobs})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let out = out["jobs"].as_array().unwrap();
    assert_eq!(out.len(), 50);
    assert_eq!(out.iter().filter(|j| j["duplicate"] == true).count(), 10);
    // All or nothing: one bad job refuses the batch, naming it.
    let (status, problem) = call(c.post(format!("{base}/v1/jobs/batch")).json(&json!({
        "jobs": [{"queue": "bulk"}, {"queue": "bulk", "max_attempts": 0}]
    })))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem.to_string().contains("jobs[1].max_attempts"),
        "{problem}"
    );
    let (_, claimed) = call(
        c.post(format!("{base}/v1/queues/bulk/claim"))
            .json(&json!({"max_jobs": 100})),
    )
    .await;
    let claimed = claimed["jobs"].as_array().unwrap().clone();
    assert_eq!(claimed.len(), 40, "the batch of 2 enqueued nothing");
    let mut items: Vec<Value> = claimed
        .iter()
        .map(|j| json!({"id": j["id"], "fencing_token": j["fencing_token"]}))
        .collect();
    // One stale token and one unknown job: refused alone, the rest commit.
    items[0]["fencing_token"] = json!(7);
    items.push(json!({"id": 987654, "fencing_token": 1}));
    let (status, res) = call(
        c.post(format!("{base}/v1/jobs/complete"))
            .json(&json!({"jobs": items})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let res = res["results"].as_array().unwrap();
    assert_eq!(res[0]["status"], 409);
    assert_eq!(res[40]["status"], 404);
    assert_eq!(res.iter().filter(|r| r["status"] == 200).count(), 39);
    let (_, page) = call(c.get(format!(
        "{base}/v1/jobs?queue=bulk&state=succeeded&limit=1000"
    )))
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 39);
    node.stop().await;
}

/// A webhook target: the first attempt of each job answers 500, later ones 200; it
/// records every request's headers.
async fn webhook_target() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>,
) {
    use axum::routing::post;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>> = Default::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(
            move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
                let s = s.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let attempt = h("girder-attempt");
                    s.lock()
                        .unwrap()
                        .push((h("idempotency-key"), attempt.clone(), body.0));
                    if attempt == "1" {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::NO_CONTENT
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), seen)
}

#[tokio::test]
async fn webhook_jobs_are_posted_with_a_stable_idempotency_key() {
    let dir = TempDir::new("jobs", "webhook");
    let node = start(&dir.0).await;
    let (url, seen) = webhook_target().await;
    let c = client();
    let base = &node.base;
    let (status, job) = call(c.post(format!("{base}/v1/jobs")).json(&json!({
        "queue": "hooks", "url": url, "payload": {"order": 42},
        "backoff": {"base_ms": 10, "max_ms": 10}
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["kind"], "http");
    let id = job["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        let (_, job) = call(c.get(format!("{base}/v1/jobs/{id}"))).await;
        if job["state"] == "succeeded" || Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"], json!({"status": 204}));
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts[0]["error"].as_str().unwrap().contains("500"),
        "{job}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let key = format!("girder-job-{id}");
    assert!(seen
        .iter()
        .all(|(k, _, body)| *k == key && *body == json!({"order": 42})));
    assert_eq!((seen[0].1.as_str(), seen[1].1.as_str()), ("1", "2"));
    // External workers never see http jobs.
    let (_, got) = call(
        c.post(format!("{base}/v1/queues/hooks/claim"))
            .json(&json!({})),
    )
    .await;
    assert!(got["jobs"].as_array().unwrap().is_empty());
    node.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_problems() {
    let dir = TempDir::new("jobs", "bad-input");
    let node = start(&dir.0).await;
    let c = client();
    let base = &node.base;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (c.post(format!("{base}/v1/jobs")).json(&json!({})), StatusCode::UNPROCESSABLE_ENTITY, "queue"),
        (c.post(format!("{base}/v1/jobs")).json(&json!({"queue": "a b"})), StatusCode::UNPROCESSABLE_ENTITY, "queue"),
        (c.post(format!("{base}/v1/jobs")).json(&json!({"queue": "q", "priority": 1.5})), StatusCode::UNPROCESSABLE_ENTITY, "priority"),
        (c.post(format!("{base}/v1/jobs")).json(&json!({"queue": "q", "priority": -5000})), StatusCode::UNPROCESSABLE_ENTITY, "priority"),
        (c.post(format!("{base}/v1/jobs")).json(&json!({"queue": "q", "run_at": "tomorrow"})), StatusCode::UNPROCESSABLE_ENTITY, "run_at"),
        (c.post(format!("{base}/v1/jobs")).json(&json!({"queue": "q", "run_at": "2030-01-01T00:00:00Z", "delay_ms": 5})), StatusCode::UNPROCESSABLE_ENTITY, "run_at"),
        (c.post(format!("{base}/v1/jobs")).json(&json!({"queue": "q", "backoff": {"base_ms": 10, "max_ms": 5}})), StatusCode::UNPROCESSABLE_ENTITY, "backoff.max_ms"),
        (c.post(format!("{base}/v1/jobs")).json(&json!({"queue": "q", "surprise": 1})), StatusCode::UNPROCESSABLE_ENTITY, "surprise"),
        (c.post(format!("{base}/v1/jobs")).json(&json!({"queue": "q", "url": "file:///etc/passwd"})), StatusCode::UNPROCESSABLE_ENTITY, "url"),
        (c.post(format!("{base}/v1/queues/q/claim")).json(&json!({"max_jobs": 0})), StatusCode::UNPROCESSABLE_ENTITY, "max_jobs"),
        (c.post(format!("{base}/v1/queues/q/claim")).json(&json!({"wait_ms": 20001})), StatusCode::UNPROCESSABLE_ENTITY, "wait_ms"),
        (c.post(format!("{base}/v1/jobs/1/complete")).json(&json!({"fencing_token": -1})), StatusCode::UNPROCESSABLE_ENTITY, "fencing_token"),
        (c.post(format!("{base}/v1/jobs/99999/complete")).json(&json!({"fencing_token": 1})), StatusCode::NOT_FOUND, "99999"),
        (c.get(format!("{base}/v1/jobs/abc")), StatusCode::BAD_REQUEST, "id"),
        (c.post(format!("{base}/v1/jobs/complete")).json(&json!({"jobs": [{"id": -1, "fencing_token": 1}]})), StatusCode::UNPROCESSABLE_ENTITY, "jobs[0].id"),
        (c.get(format!("{base}/v1/jobs?state=sleeping")), StatusCode::BAD_REQUEST, "state"),
        (c.get(format!("{base}/v1/jobs?cursor=-3")), StatusCode::BAD_REQUEST, "cursor"),
        (c.post(format!("{base}/v1/schedules")).json(&json!({"name": "x", "cron": "* * *", "job": {"queue": "q"}})), StatusCode::UNPROCESSABLE_ENTITY, "cron"),
        (c.post(format!("{base}/v1/schedules")).json(&json!({"name": "x", "cron": "@daily", "time_zone": "Moon/Base", "job": {"queue": "q"}})), StatusCode::UNPROCESSABLE_ENTITY, "time_zone"),
        (c.post(format!("{base}/v1/schedules")).json(&json!({"name": "x", "cron": "@daily", "job": {"queue": "q"}, "misfire": {"policy": "whenever"}})), StatusCode::UNPROCESSABLE_ENTITY, "misfire.policy"),
    ];
    for (req, want, needle) in cases {
        let (status, problem) = call(req).await;
        assert_eq!(status, want, "{problem}");
        assert!(problem.to_string().contains(needle), "{needle}: {problem}");
    }
    // Fields are named as the request spells them, schedule template fields with `job.`.
    for (body, field) in [
        (
            json!({"queue": "q", "delay_ms": 316_224_000_001_u64}),
            "delay_ms",
        ),
        (json!({"queue": "q", "timeout_ms": 0}), "timeout_ms"),
        (json!({"queue": "q", "unique_for_ms": 0}), "unique_for_ms"),
    ] {
        let (status, problem) = call(c.post(format!("{base}/v1/jobs")).json(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["invalid-params"][0]["name"], field, "{problem}");
    }
    let (_, problem) = call(c.post(format!("{base}/v1/schedules")).json(&json!({
        "name": "x", "cron": "@daily", "job": {"queue": "q", "priority": 5000}
    })))
    .await;
    assert_eq!(
        problem["invalid-params"][0]["name"], "job.priority",
        "{problem}"
    );
    // NUL cannot be stored in a text column: refused where it names something, kept as
    // U+FFFD in a worker's error report (which must not be lost).
    let (status, problem) = call(c.post(format!("{base}/v1/jobs")).json(&json!({
        "queue": "q", "idempotency_key": "k\u{0}"
    })))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (_, claimed) = call(
        c.post(format!("{base}/v1/queues/nul/claim"))
            .json(&json!({"worker": "w\u{0}"})),
    )
    .await;
    assert_eq!(claimed["invalid-params"][0]["name"], "worker", "{claimed}");
    let (_, job) = call(
        c.post(format!("{base}/v1/jobs"))
            .json(&json!({"queue": "nul"})),
    )
    .await;
    let (_, got) = call(
        c.post(format!("{base}/v1/queues/nul/claim"))
            .json(&json!({})),
    )
    .await;
    let token = &got["jobs"][0]["fencing_token"];
    let (status, failed) = call(
        c.post(format!("{base}/v1/jobs/{}/fail", job["id"]))
            .json(&json!({"fencing_token": token, "error": "bad\u{0}byte"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(failed["last_error"], "bad\u{FFFD}byte");
    // Lengths are in characters: 256 two-byte characters are a valid key.
    let (status, _) = call(c.post(format!("{base}/v1/jobs")).json(&json!({
        "queue": "q", "idempotency_key": "é".repeat(256)
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // The node is fine afterwards.
    let (status, _) = call(
        c.post(format!("{base}/v1/jobs"))
            .json(&json!({"queue": "q"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    node.stop().await;
}

#[tokio::test]
async fn schedule_ticks_make_jobs_on_time() {
    let dir = TempDir::new("jobs", "schedule");
    let node = start(&dir.0).await;
    let c = client();
    let base = &node.base;
    let (status, s) = call(c.post(format!("{base}/v1/schedules")).json(&json!({
        "name": "every-second", "cron": "* * * * * *", "time_zone": "America/New_York",
        "job": {"queue": "ticks", "payload": {"k": 1}}
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    let id = s["id"].as_i64().unwrap();
    // A worker long-polls the ticks: each arrives within a few ms of its second.
    let mut lateness = Vec::new();
    for _ in 0..3 {
        let (_, got) = call(
            c.post(format!("{base}/v1/queues/ticks/claim"))
                .json(&json!({"wait_ms": 3000})),
        )
        .await;
        let job = &got["jobs"][0];
        let run_at = girder_sched::parse_time(job["run_at"].as_str().unwrap()).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        lateness.push(now.saturating_sub(run_at));
        call(
            c.post(format!("{base}/v1/jobs/{}/complete", job["id"]))
                .json(&json!({"fencing_token": job["fencing_token"]})),
        )
        .await;
    }
    assert!(lateness.iter().all(|l| *l < 500), "{lateness:?}");
    let (_, paused) = call(c.post(format!("{base}/v1/schedules/{id}/pause"))).await;
    assert_eq!(paused["paused"], true);
    let (s, _) = call(c.delete(format!("{base}/v1/schedules/{id}"))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(c.get(format!("{base}/v1/schedules/{id}"))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    node.stop().await;
}

// ---- kill -9 of the real binary -------------------------------------------------

type Child9 = common::Process;

fn spawn(data: &Path, store: Option<&str>) -> Child9 {
    match store {
        Some(url) => common::spawn(data, &[("GIRDER_SCHEDULER__STORE", url)]),
        None => common::spawn(data, &[]),
    }
}

/// The nodes' current addresses, each replaced at its node's restart; clients send to
/// any of them and retry.
type Base = std::sync::Arc<std::sync::RwLock<Vec<String>>>;

fn base_of(b: &Base) -> String {
    let nodes = b.read().unwrap();
    nodes[fastrand::usize(0..nodes.len())].clone()
}

/// Sends until the node answers (it may be down between a kill and its restart).
async fn send_retrying(
    c: &reqwest::Client,
    base: &Base,
    stop: &std::sync::atomic::AtomicBool,
    make: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> Option<(StatusCode, Value)> {
    loop {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let url = base_of(base);
        if let Ok(r) = make(c, &url).send().await {
            let status = r.status();
            if let Ok(v) = r.json::<Value>().await {
                return Some((status, v));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const CHAOS_JOBS: u64 = 10_000;

/// The chaos test: 10,000 jobs enqueued (in batches, with idempotency keys,
/// retried until acknowledged) while 4 workers claim with 1 s leases and complete — each
/// worker "crashing" now and then by abandoning the jobs it holds — and nodes are killed
/// with SIGKILL at random moments and restarted on the same data. A schedule ticks every
/// second throughout. At the end: every job succeeded, exactly one attempt of each
/// committed, no job was enqueued twice, every completion a worker was told about is
/// committed, and every tick from the schedule's first to its last made exactly one
/// job. Single node on SQLite; three nodes sharing PostgreSQL.
///
/// `CHAOS_ROUNDS=n` repeats each (default 1; every round starts from empty stores).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_single_node_sqlite() {
    for round in 0..chaos_rounds() {
        chaos(&format!("chaos-sqlite-{round}"), 1, None).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_three_nodes_postgres() {
    for _ in 0..chaos_rounds() {
        let Some(db) = TestPg::create() else { return };
        chaos("chaos-pg", 3, Some(&db.url)).await;
    }
}

fn chaos_rounds() -> usize {
    std::env::var("CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// A fresh PostgreSQL database for one test (`TEST_POSTGRES_URL`, default the local
/// server), dropped at the end. `None` (skip) when unreachable, unless `PG_REQUIRED=1`.
struct TestPg {
    url: String,
    name: String,
}

fn pg_admin() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestPg {
    fn create() -> Option<TestPg> {
        let admin = pg_admin();
        let name = format!("girder_chaos_{}", std::process::id());
        let made = std::thread::spawn({
            let (admin, name) = (admin.clone(), name.clone());
            move || -> Result<(), postgres::Error> {
                let mut c = postgres::Client::connect(&admin, postgres::NoTls)?;
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))?;
                c.batch_execute(&format!("CREATE DATABASE {name}"))
            }
        })
        .join()
        .unwrap();
        if let Err(e) = made {
            if std::env::var("PG_REQUIRED").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL at {admin} is required (PG_REQUIRED=1): {e}");
            }
            eprintln!("skipped: PostgreSQL at {admin} is unreachable: {e}");
            return None;
        }
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Some(TestPg {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        let (admin, name) = (pg_admin(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

async fn chaos(name: &str, node_count: usize, store: Option<&str>) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    let dirs: Vec<TempDir> = (0..node_count)
        .map(|i| TempDir::new("jobs", &format!("{name}-{i}")))
        .collect();
    let mut nodes: Vec<Child9> = dirs.iter().map(|d| spawn(&d.0, store)).collect();
    let base: Base = Arc::new(std::sync::RwLock::new(
        nodes.iter().map(|n| n.base.clone()).collect(),
    ));
    let c = client();
    let (status, schedule) = call(c.post(format!("{}/v1/schedules", base_of(&base))).json(
        &json!({
            "name": "heartbeat", "cron": "* * * * * *", "job": {"queue": "ticks"},
            "misfire": {"policy": "catch_up", "max": 1000}
        }),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{schedule}");
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(Mutex::new(BTreeSet::<i64>::new()));
    let enqueued = Arc::new(AtomicU64::new(0));

    // 2 producers, batches of 50 with idempotency keys: a batch resent after a kill
    // returns the jobs it already made.
    let mut tasks = Vec::new();
    for p in 0..2u64 {
        let (c, base, stop, enqueued) = (c.clone(), base.clone(), stop.clone(), enqueued.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = p * 50;
            while n < CHAOS_JOBS {
                let jobs: Vec<Value> = (n..(n + 50).min(CHAOS_JOBS))
                    .map(|i| {
                        json!({"queue": "work", "payload": {"seq": i},
                                    "idempotency_key": format!("job-{i}")})
                    })
                    .collect();
                let body = json!({ "jobs": jobs });
                let Some((status, v)) = send_retrying(&c, &base, &stop, |c, b| {
                    c.post(format!("{b}/v1/jobs/batch")).json(&body)
                })
                .await
                else {
                    return;
                };
                if status != StatusCode::OK {
                    continue; // e.g. the node shutting down under us: send again
                }
                enqueued.fetch_add(
                    v["jobs"].as_array().unwrap().len() as u64,
                    Ordering::Relaxed,
                );
                n += 100;
            }
        }));
    }
    // 4 workers; each claim is abandoned (a worker crash) with probability 1/20.
    for w in 0..4 {
        let (c, base, stop, committed) = (c.clone(), base.clone(), stop.clone(), committed.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"max_jobs": 50, "lease_ms": 1000, "wait_ms": 500, "worker": format!("w{w}")});
            loop {
                let Some((status, v)) = send_retrying(&c, &base, &stop, |c, b| {
                    c.post(format!("{b}/v1/queues/work/claim")).json(&body)
                })
                .await
                else {
                    return;
                };
                if status != StatusCode::OK {
                    continue;
                }
                let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
                if jobs.is_empty() || fastrand::u32(0..20) == 0 {
                    continue; // crashed: the leases will run out
                }
                let items: Vec<Value> = jobs
                    .iter()
                    .map(|j| json!({"id": j["id"], "fencing_token": j["fencing_token"]}))
                    .collect();
                let done = json!({ "jobs": items });
                let Ok(r) = c.post(format!("{}/v1/jobs/complete", base_of(&base))).json(&done).send().await else {
                    continue; // the node died: unknown outcome, the leases will tell
                };
                let Ok(v) = r.json::<Value>().await else { continue };
                for res in v["results"].as_array().into_iter().flatten() {
                    match res["status"].as_u64() {
                        Some(200) => {
                            let id = res["id"].as_i64().unwrap();
                            assert!(committed.lock().unwrap().insert(id), "job {id} committed twice");
                        }
                        Some(409) => {} // lease ran out while we held it: someone else's now
                        other => panic!("complete answered {other:?}: {res}"),
                    }
                }
            }
        }));
    }
    // Kill -9 a node and restart it at random moments, five times.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300 + fastrand::u64(0..900))).await;
        let victim = fastrand::usize(0..node_count);
        drop(nodes.remove(victim));
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..300))).await;
        let again = spawn(&dirs[victim].0, store);
        base.write().unwrap()[victim] = again.base.clone();
        nodes.insert(victim, again);
    }
    let node = &nodes[0];
    // Then let it finish: until the store holds every job as succeeded. (A completion
    // whose answer was lost to a kill is committed but unknown to its worker.)
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, page) = call(c.get(format!(
            "{}/v1/jobs?queue=work&state=succeeded&limit=1000&cursor=0",
            node.base
        )))
        .await;
        let mut n = page["items"].as_array().unwrap().len();
        let mut next = page["next_cursor"].as_str().map(str::to_owned);
        while let Some(k) = next {
            let (_, page) = call(c.get(format!(
                "{}/v1/jobs?queue=work&state=succeeded&limit=1000&cursor={k}",
                node.base
            )))
            .await;
            n += page["items"].as_array().unwrap().len();
            next = page["next_cursor"].as_str().map(str::to_owned);
        }
        if n as u64 == CHAOS_JOBS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {CHAOS_JOBS} jobs succeeded"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let _ = call(c.post(format!(
        "{}/v1/schedules/{}/pause",
        node.base, schedule["id"]
    )))
    .await;

    // Everything the store holds.
    let mut all: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(k) => format!("{}/v1/jobs?limit=1000&cursor={k}", node.base),
            None => format!("{}/v1/jobs?limit=1000", node.base),
        };
        let (_, page) = call(c.get(url)).await;
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(k) => cursor = Some(k.to_owned()),
            None => break,
        }
    }
    let work: Vec<&Value> = all.iter().filter(|j| j["queue"] == "work").collect();
    let seqs: BTreeSet<u64> = work
        .iter()
        .map(|j| j["payload"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        work.len() as u64,
        CHAOS_JOBS,
        "a job was enqueued twice or lost"
    );
    assert_eq!(seqs.len() as u64, CHAOS_JOBS);
    assert!(work.iter().all(|j| j["state"] == "succeeded"));
    // Every completion a worker was told about is committed (the others were completed
    // by a request whose answer the kill swallowed).
    let committed = committed.lock().unwrap().clone();
    let ids: BTreeSet<i64> = work.iter().map(|j| j["id"].as_i64().unwrap()).collect();
    let unknown = ids.difference(&committed).count();
    assert!(
        committed.is_subset(&ids),
        "a completion was acknowledged for no job"
    );
    assert!(unknown < 2_000, "{unknown} completions unacknowledged");
    // Exactly one committed attempt per job, in the stored history (sampled: 300 jobs,
    // with every job that needed more than one attempt among them when there are few).
    let mut retried = 0;
    for j in work
        .iter()
        .filter(|j| j["attempt"].as_u64() > Some(1))
        .take(200)
        .chain(work.iter().take(100))
    {
        let (_, job) = call(c.get(format!("{}/v1/jobs/{}", node.base, j["id"]))).await;
        let outcomes: Vec<&str> = job["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["outcome"].as_str())
            .collect();
        assert_eq!(
            outcomes.iter().filter(|o| **o == "succeeded").count(),
            1,
            "{job}"
        );
        retried += usize::from(outcomes.len() > 1);
    }
    assert!(
        retried > 0,
        "no worker crash or kill made a job run twice: the test proved nothing"
    );
    // Every tick from the first to the last made exactly one job.
    let mut ticks: Vec<u64> = all
        .iter()
        .filter(|j| j["queue"] == "ticks")
        .map(|j| girder_sched::parse_time(j["run_at"].as_str().unwrap()).unwrap())
        .collect();
    ticks.sort_unstable();
    assert!(ticks.len() >= 3, "{ticks:?}");
    // The node was never down for longer than the misfire threshold (60 s), so every
    // tick was on time and runs at its own second: consecutive seconds, none twice.
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1000,
            "ticks {pair:?}: a tick was lost or made twice"
        );
    }
    drop(nodes);
}
