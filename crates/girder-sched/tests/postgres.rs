//! The shared store on the real PostgreSQL (`TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), each test in a fresh database.
//! Several engines over one database stand for several nodes: what one node's rules
//! guarantee must hold when they race. Skipped when the server is unreachable, unless
//! `PG_REQUIRED=1` (CI sets it).

use girder_sched::store::ListFilter;
use girder_sched::{
    Clock, EnqueueRequest, JobState, Misfire, PgOptions, PgStore, SchedConfig, SchedError,
    ScheduleRequest, Scheduler,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database, dropped at the end.
struct TestDb {
    url: String,
    name: String,
}

impl TestDb {
    fn create() -> Option<TestDb> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let admin = admin_url();
        let name = format!(
            "girder_sched_test_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let created = std::thread::spawn({
            let (admin, name) = (admin.clone(), name.clone());
            move || -> Result<(), postgres::Error> {
                let mut c = postgres::Client::connect(&admin, postgres::NoTls)?;
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))?;
                c.batch_execute(&format!("CREATE DATABASE {name}"))
            }
        })
        .join()
        .unwrap();
        if let Err(e) = created {
            if std::env::var("PG_REQUIRED").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL at {admin} is required (PG_REQUIRED=1): {e}");
            }
            eprintln!("skipped: PostgreSQL at {admin} is unreachable: {e}");
            return None;
        }
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Some(TestDb {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (admin_url(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

#[derive(Debug)]
struct VirtualClock(AtomicU64);

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// 2026-01-01T00:00:00Z
const T0: u64 = 1_767_225_600_000;

/// `n` engines ("nodes") over the database, on one virtual clock (the store decides by
/// the caller's time, so the test moves it).
fn nodes(db: &TestDb, n: usize, clock: &Arc<VirtualClock>) -> Vec<Arc<Scheduler>> {
    nodes_with(db, n, clock, SchedConfig::default())
}

fn nodes_with(
    db: &TestDb,
    n: usize,
    clock: &Arc<VirtualClock>,
    config: SchedConfig,
) -> Vec<Arc<Scheduler>> {
    (0..n)
        .map(|_| {
            let store = PgStore::connect(
                &db.url,
                PgOptions {
                    pool: 4,
                    database_time: false,
                },
            )
            .unwrap();
            Scheduler::new(Arc::new(store), config.clone(), clock.clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_hold_on_postgres() {
    let Some(db) = TestDb::create() else { return };
    let clock = Arc::new(VirtualClock(AtomicU64::new(T0)));
    let n = nodes(&db, 1, &clock).pop().unwrap();
    let id = n
        .enqueue(EnqueueRequest {
            queue: "q".into(),
            payload: json!({"a": 1}),
            idempotency_key: Some("k".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .job
        .id;
    let again = n
        .enqueue(EnqueueRequest {
            queue: "q".into(),
            idempotency_key: Some("k".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.job.id, id);
    let c = n.claim("q", 10, Some(1_000), 0, "w").await.unwrap();
    assert_eq!((c.len(), c[0].fencing_token), (1, 1));
    assert_eq!(c[0].payload, json!({"a": 1}));
    // The lease ends: the old token is refused before and after the reap.
    clock.0.fetch_add(1_000, Ordering::SeqCst);
    assert!(matches!(
        n.complete(id, 1, None).await.unwrap_err(),
        SchedError::Conflict(_)
    ));
    // The claim reaps it; it retries after its backoff (0.5..1 s).
    assert!(n
        .claim("q", 10, Some(1_000), 0, "w")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(n.get(id).await.unwrap().state, JobState::Failed);
    clock.0.fetch_add(1_000, Ordering::SeqCst);
    let c = n.claim("q", 10, Some(1_000), 0, "w").await.unwrap();
    assert_eq!(c[0].fencing_token, 2);
    let done = n.complete(id, 2, Some(json!("ok"))).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.attempts.len(), 2);
    assert_eq!(done.attempts[0].outcome.as_deref(), Some("lease_expired"));
    let page = n
        .list(ListFilter {
            state: Some(JobState::Succeeded),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    // Cancel, retry, dead letters.
    let j = n
        .enqueue(EnqueueRequest {
            queue: "q".into(),
            max_attempts: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .job
        .id;
    n.claim("q", 1, None, 0, "w").await.unwrap();
    assert_eq!(
        n.fail(j, 1, "no".into(), true).await.unwrap().state,
        JobState::Dead
    );
    assert_eq!(n.retry(j).await.unwrap().state, JobState::Available);
    assert_eq!(n.cancel(j).await.unwrap().state, JobState::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_never_hand_out_or_commit_a_job_twice() {
    let Some(db) = TestDb::create() else { return };
    let clock = Arc::new(VirtualClock(AtomicU64::new(T0)));
    let nodes = nodes(&db, 3, &clock);
    let reqs: Vec<EnqueueRequest> = (0..1500)
        .map(|i| EnqueueRequest {
            queue: "work".into(),
            payload: json!(i),
            ..Default::default()
        })
        .collect();
    nodes[0].enqueue_many(reqs, true).await.unwrap();
    // 9 workers spread over the 3 nodes claim and complete concurrently.
    let mut tasks = Vec::new();
    for w in 0..9 {
        let node = nodes[w % 3].clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = node.claim("work", 25, Some(60_000), 0, "w").await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                for job in got {
                    node.complete(job.id, job.fencing_token, None)
                        .await
                        .unwrap();
                    mine.push(job.id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 1500, "a job was handed out twice or lost");
    assert_eq!(distinct.len(), 1500);

    // A batch of completions commits together; a stale token or a repeated id in it is
    // refused alone.
    let reqs: Vec<EnqueueRequest> = (0..10)
        .map(|_| EnqueueRequest {
            queue: "batch".into(),
            ..Default::default()
        })
        .collect();
    nodes[0].enqueue_many(reqs, true).await.unwrap();
    let got = nodes[1].claim("batch", 10, None, 0, "w").await.unwrap();
    assert_eq!(got.len(), 10);
    let mut items: Vec<girder_sched::Finish> = got
        .iter()
        .map(|c| girder_sched::Finish {
            id: c.id,
            token: c.fencing_token,
            outcome: girder_sched::Outcome::Succeeded(Some(json!(c.id))),
            want_job: false,
        })
        .collect();
    items[3].token = 99;
    items.push(items[0].clone());
    let answers = nodes[2].finish_many(items).await.unwrap();
    let ok = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(ok, 9, "{answers:?}");
    assert!(matches!(answers[3], Err(SchedError::Conflict(_))));
    assert!(matches!(answers[10], Err(SchedError::Conflict(_))));
    let job = nodes[0].get(got[0].id).await.unwrap();
    assert_eq!(job.result, Some(json!(got[0].id)));
    assert_eq!(job.attempts[0].outcome.as_deref(), Some("succeeded"));

    // Racing completions of one attempt from three nodes: exactly one commits.
    let id = nodes[0]
        .enqueue(EnqueueRequest {
            queue: "race".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .job
        .id;
    nodes[1].claim("race", 1, None, 0, "w").await.unwrap();
    let (a, b, c) = tokio::join!(
        nodes[0].complete(id, 1, None),
        nodes[1].complete(id, 1, None),
        nodes[2].fail(id, 1, "x".into(), true)
    );
    let wins = [a.is_ok(), b.is_ok(), c.is_ok()]
        .iter()
        .filter(|w| **w)
        .count();
    assert_eq!(wins, 1);

    // One idempotency key enqueued from three nodes at once: one job.
    let mut racers = Vec::new();
    for i in 0..30 {
        let node = nodes[i % 3].clone();
        racers.push(tokio::spawn(async move {
            node.enqueue(EnqueueRequest {
                queue: "idem".into(),
                idempotency_key: Some("once".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .job
            .id
        }));
    }
    let mut ids = BTreeSet::new();
    for r in racers {
        ids.insert(r.await.unwrap());
    }
    assert_eq!(ids.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tick_makes_one_job_however_many_nodes_fire_it() {
    let Some(db) = TestDb::create() else { return };
    let clock = Arc::new(VirtualClock(AtomicU64::new(T0)));
    let nodes = nodes(&db, 3, &clock);
    let req = || ScheduleRequest {
        name: "every-second".into(),
        cron: "* * * * * *".into(),
        time_zone: None,
        job: EnqueueRequest {
            queue: "ticks".into(),
            ..Default::default()
        },
        misfire: Misfire::Skip,
    };
    // Created from three nodes at once: one schedule.
    let (a, b, c) = tokio::join!(
        nodes[0].create_schedule(req()),
        nodes[1].create_schedule(req()),
        nodes[2].create_schedule(req())
    );
    let ids: BTreeSet<i64> = [a, b, c].into_iter().map(|r| r.unwrap().0.id).collect();
    assert_eq!(ids.len(), 1);
    for _ in 0..30 {
        clock.0.fetch_add(1_000, Ordering::SeqCst);
        let (a, b, c) = tokio::join!(
            nodes[0].fire_due_schedules(),
            nodes[1].fire_due_schedules(),
            nodes[2].fire_due_schedules()
        );
        a.unwrap();
        b.unwrap();
        c.unwrap();
    }
    let jobs = nodes[0]
        .list(ListFilter {
            queue: Some("ticks".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let ticks: BTreeSet<u64> = jobs.iter().map(|j| j.run_at_ms).collect();
    assert_eq!(jobs.len(), 30, "one job per tick");
    assert_eq!(ticks.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_are_reopened_without_failing_requests() {
    let Some(db) = TestDb::create() else { return };
    let clock = Arc::new(VirtualClock(AtomicU64::new(T0)));
    let n = nodes(&db, 1, &clock).pop().unwrap();
    for round in 0..3 {
        // Warm every pooled connection, then cut them all, as a server restart would.
        for i in 0..8 {
            n.enqueue(EnqueueRequest {
                queue: "q".into(),
                payload: json!([round, i]),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        let (admin, name) = (admin_url(), db.name.clone());
        let cut = std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            c.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )
            .unwrap()
            .len()
        })
        .join()
        .unwrap();
        assert!(cut > 0);
        for i in 0..20 {
            n.enqueue(EnqueueRequest {
                queue: "q".into(),
                payload: json!(i),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("round {round}, request {i} after the cut: {e}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_keyed_batches_do_not_deadlock() {
    let Some(db) = TestDb::create() else { return };
    let clock = Arc::new(VirtualClock(AtomicU64::new(T0)));
    let nodes = nodes(&db, 2, &clock);
    let batch = |rev: bool| {
        let mut keys: Vec<u32> = (0..20).collect();
        if rev {
            keys.reverse();
        }
        keys.into_iter()
            .map(|k| EnqueueRequest {
                queue: "keyed".into(),
                idempotency_key: Some(format!("k{k}")),
                ..Default::default()
            })
            .collect::<Vec<_>>()
    };
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let (a, b, c, d) = tokio::join!(
            nodes[0].enqueue_many(batch(false), true),
            nodes[1].enqueue_many(batch(true), true),
            nodes[1].enqueue_many(batch(false), true),
            nodes[0].enqueue_many(batch(true), true)
        );
        for r in [a, b, c, d] {
            assert_eq!(r.unwrap().len(), 20);
        }
    }
    // Deadlocks would each cost PostgreSQL's deadlock_timeout (1 s) and a rerun.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_on_one_node_is_woken_by_an_enqueue_on_another() {
    let Some(db) = TestDb::create() else { return };
    let clock = Arc::new(VirtualClock(AtomicU64::new(T0)));
    // A 30 s poll: only the announcement can wake the claimer in time.
    let config = SchedConfig {
        poll_interval_ms: 30_000,
        ..Default::default()
    };
    let nodes = nodes_with(&db, 2, &clock, config);
    // Let the listeners connect.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for trial in 0..3 {
        let waiter = {
            let b = nodes[1].clone();
            tokio::spawn(async move { b.claim("cross", 1, None, 10_000, "w").await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let enqueued = std::time::Instant::now();
        nodes[0]
            .enqueue(EnqueueRequest {
                queue: "cross".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let got = waiter.await.unwrap().unwrap();
        let waited = enqueued.elapsed();
        assert_eq!(got.len(), 1, "trial {trial}");
        assert!(
            waited < std::time::Duration::from_millis(500),
            "trial {trial}: woken {waited:?} after the other node's enqueue"
        );
    }
}

#[test]
fn database_time_is_the_default() {
    assert!(PgOptions::default().database_time);
}
