//! The engine over the SQLite store, with a virtual clock: every rule about time (due
//! times, lease expiry, backoff, dedup windows, misfires) is decided by the clock the
//! test moves, never by sleeping.

use girder_sched::engine::MAX_CLAIM;
use girder_sched::store::ListFilter;
use girder_sched::{
    BackoffSpec, Clock, EnqueueRequest, JobState, Misfire, SchedConfig, SchedError,
    ScheduleRequest, Scheduler, SqliteStore,
};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// 2026-01-01T00:00:00Z
const T0: u64 = 1_767_225_600_000;

#[derive(Debug)]
struct VirtualClock(AtomicU64);

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    clock: Arc<VirtualClock>,
    sched: Arc<Scheduler>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(SchedConfig::default())
    }

    fn with(config: SchedConfig) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sched.db");
        let clock = Arc::new(VirtualClock(AtomicU64::new(T0)));
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let sched = Scheduler::new(store, config, clock.clone());
        Fixture {
            _dir: dir,
            path,
            clock,
            sched,
        }
    }

    fn advance(&self, ms: u64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    async fn enqueue(&self, queue: &str, payload: serde_json::Value) -> i64 {
        self.sched
            .enqueue(EnqueueRequest {
                queue: queue.into(),
                payload,
                ..Default::default()
            })
            .await
            .unwrap()
            .job
            .id
    }
}

fn conflict(e: SchedError) -> bool {
    matches!(e, SchedError::Conflict(_))
}

#[tokio::test]
async fn claim_complete_and_history() {
    let f = Fixture::new();
    let id = f.enqueue("mail", json!({"to": "a@example.com"})).await;
    let job = f.sched.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Available);
    let claimed = f
        .sched
        .claim("mail", 10, Some(5_000), 0, "w1")
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, id);
    assert_eq!(claimed[0].attempt, 1);
    assert_eq!(claimed[0].fencing_token, 1);
    assert_eq!(claimed[0].payload, json!({"to": "a@example.com"}));
    assert_eq!(claimed[0].lease_until_ms, f.now() + 5_000);
    assert_eq!(f.sched.get(id).await.unwrap().state, JobState::Running);
    // Nothing else to claim.
    assert!(f
        .sched
        .claim("mail", 10, None, 0, "w2")
        .await
        .unwrap()
        .is_empty());
    f.advance(100);
    let done = f
        .sched
        .complete(id, 1, Some(json!({"sent": true})))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.result, Some(json!({"sent": true})));
    assert_eq!(done.attempts.len(), 1);
    assert_eq!(done.attempts[0].worker, "w1");
    assert_eq!(done.attempts[0].outcome.as_deref(), Some("succeeded"));
    assert_eq!(done.attempts[0].ended_at_ms, Some(T0 + 100));
    // A second completion is refused: the attempt already committed.
    assert!(conflict(f.sched.complete(id, 1, None).await.unwrap_err()));
}

#[tokio::test]
async fn expired_lease_fences_the_old_worker() {
    let f = Fixture::new();
    let id = f.enqueue("q", json!(1)).await;
    let first = f.sched.claim("q", 1, Some(1_000), 0, "slow").await.unwrap();
    assert_eq!(first[0].fencing_token, 1);
    // The heartbeat extends the lease while it holds.
    f.advance(900);
    let until = f.sched.heartbeat(id, 1, Some(1_000)).await.unwrap();
    assert_eq!(until, T0 + 1_900);
    // Then the worker stalls past its lease; the job is reaped and retried after its
    // backoff (default base 1 s, equal jitter: 0.5..1 s).
    f.advance(1_000);
    assert_eq!(f.sched.reap().await.unwrap(), 1);
    let job = f.sched.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert!(job.run_at_ms >= f.now() + 500 && job.run_at_ms <= f.now() + 1_000);
    assert_eq!(job.attempts[0].outcome.as_deref(), Some("lease_expired"));
    f.advance(1_000);
    let second = f.sched.claim("q", 1, Some(1_000), 0, "fast").await.unwrap();
    assert_eq!(second[0].fencing_token, 2);
    // The stale worker can neither heartbeat, nor complete, nor fail.
    assert!(conflict(f.sched.heartbeat(id, 1, None).await.unwrap_err()));
    assert!(conflict(f.sched.complete(id, 1, None).await.unwrap_err()));
    assert!(conflict(
        f.sched.fail(id, 1, "late".into(), true).await.unwrap_err()
    ));
    let done = f.sched.complete(id, 2, None).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.attempts.len(), 2);
}

#[tokio::test]
async fn claim_reaps_expired_leases_itself() {
    let f = Fixture::new();
    let id = f
        .sched
        .enqueue(EnqueueRequest {
            queue: "q".into(),
            backoff: Some(BackoffSpec {
                base_ms: 10,
                max_ms: 10,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .job
        .id;
    f.sched.claim("q", 1, Some(100), 0, "a").await.unwrap();
    f.advance(100);
    // No background reaper ran: the claim itself reaps the expired lease, and the job
    // waits out its backoff (5..10 ms).
    let again = f.sched.claim("q", 1, Some(100), 0, "b").await.unwrap();
    assert!(again.is_empty(), "the retry is 5..10 ms away");
    assert_eq!(f.sched.get(id).await.unwrap().state, JobState::Failed);
    f.advance(10);
    let again = f.sched.claim("q", 1, Some(100), 0, "b").await.unwrap();
    assert_eq!(again[0].id, id);
    assert_eq!(again[0].fencing_token, 2);
}

#[tokio::test]
async fn backoff_sequence_then_dead_then_retry_endpoint() {
    let f = Fixture::new();
    let id = f
        .sched
        .enqueue(EnqueueRequest {
            queue: "q".into(),
            max_attempts: Some(4),
            backoff: Some(BackoffSpec {
                base_ms: 1_000,
                max_ms: 3_000,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .job
        .id;
    let mut delays = Vec::new();
    for attempt in 1..=4u64 {
        let c = f.sched.claim("q", 1, None, 0, "w").await.unwrap();
        assert_eq!(c.len(), 1, "attempt {attempt}");
        assert_eq!(c[0].fencing_token, attempt);
        let job = f
            .sched
            .fail(id, attempt, format!("boom {attempt}"), true)
            .await
            .unwrap();
        if attempt < 4 {
            assert_eq!(job.state, JobState::Failed);
            let delay = job.run_at_ms - f.now();
            delays.push(delay);
            // Not yet due.
            assert!(f
                .sched
                .claim("q", 1, None, 0, "w")
                .await
                .unwrap()
                .is_empty());
            f.advance(delay);
        } else {
            assert_eq!(job.state, JobState::Dead);
            assert_eq!(job.last_error.as_deref(), Some("boom 4"));
        }
    }
    // Equal jitter around 1 s, 2 s, 3 s (capped): each in [exp/2, exp].
    for (d, exp) in delays.iter().zip([1_000u64, 2_000, 3_000]) {
        assert!(*d >= exp / 2 && *d <= exp, "{delays:?}");
    }
    // The same decisions on replay: the jitter is seeded by (job, attempt).
    let spec = BackoffSpec {
        base_ms: 1_000,
        max_ms: 3_000,
    };
    assert_eq!(delays, [1, 2, 3].map(|a| spec.delay_ms(id, a)));
    // Dead jobs are dead letters: listed, and retried on request.
    let dead = f
        .sched
        .list(ListFilter {
            state: Some(JobState::Dead),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    let revived = f.sched.retry(id).await.unwrap();
    assert_eq!(revived.state, JobState::Available);
    let c = f.sched.claim("q", 1, None, 0, "w").await.unwrap();
    assert_eq!(c[0].fencing_token, 5, "tokens keep growing across a retry");
    // fail with retry=false: dead at once.
    let job = f.sched.fail(id, 5, "fatal".into(), false).await.unwrap();
    assert_eq!(job.state, JobState::Dead);
}

#[tokio::test]
async fn idempotency_key_and_unique_for() {
    let f = Fixture::new();
    let req = |key: Option<&str>, unique: Option<u64>, payload| EnqueueRequest {
        queue: "q".into(),
        payload,
        idempotency_key: key.map(Into::into),
        unique_for_ms: unique,
        ..Default::default()
    };
    let a = f
        .sched
        .enqueue(req(Some("k1"), None, json!(1)))
        .await
        .unwrap();
    let b = f
        .sched
        .enqueue(req(Some("k1"), None, json!(2)))
        .await
        .unwrap();
    assert!(!a.duplicate && b.duplicate);
    assert_eq!(a.job.id, b.job.id);
    // Another queue is another key space.
    let other = f
        .sched
        .enqueue(EnqueueRequest {
            queue: "other".into(),
            idempotency_key: Some("k1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!other.duplicate);
    // unique_for alone: same payload = same job, within the window.
    let u1 = f
        .sched
        .enqueue(req(None, Some(1_000), json!({"x": 1})))
        .await
        .unwrap();
    let u2 = f
        .sched
        .enqueue(req(None, Some(1_000), json!({"x": 1})))
        .await
        .unwrap();
    let u3 = f
        .sched
        .enqueue(req(None, Some(1_000), json!({"x": 2})))
        .await
        .unwrap();
    assert!(u2.duplicate && !u3.duplicate);
    assert_eq!(u1.job.id, u2.job.id);
    f.advance(1_000);
    let u4 = f
        .sched
        .enqueue(req(None, Some(1_000), json!({"x": 1})))
        .await
        .unwrap();
    assert!(!u4.duplicate, "the window passed");
    // The default idempotency window is 24 h.
    f.advance(24 * 3_600_000 - 1_001);
    assert!(
        f.sched
            .enqueue(req(Some("k1"), None, json!(3)))
            .await
            .unwrap()
            .duplicate
    );
    f.advance(1);
    assert!(
        !f.sched
            .enqueue(req(Some("k1"), None, json!(3)))
            .await
            .unwrap()
            .duplicate
    );
}

#[tokio::test]
async fn priority_then_due_time_then_id() {
    let f = Fixture::new();
    let mk = |priority, delay| EnqueueRequest {
        queue: "q".into(),
        priority: Some(priority),
        delay_ms: Some(delay),
        ..Default::default()
    };
    let low = f.sched.enqueue(mk(0, 0)).await.unwrap().job.id;
    let high = f.sched.enqueue(mk(5, 10)).await.unwrap().job.id;
    let future = f.sched.enqueue(mk(9, 60_000)).await.unwrap().job.id;
    let low2 = f.sched.enqueue(mk(0, 0)).await.unwrap().job.id;
    f.advance(10);
    let got: Vec<i64> = f
        .sched
        .claim("q", 10, None, 0, "w")
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(got, [high, low, low2]);
    assert_eq!(
        f.sched.get(future).await.unwrap().state,
        JobState::Scheduled
    );
}

#[tokio::test]
async fn timeout_caps_lease_and_heartbeat() {
    let f = Fixture::new();
    let id = f
        .sched
        .enqueue(EnqueueRequest {
            queue: "q".into(),
            timeout_ms: Some(2_000),
            ..Default::default()
        })
        .await
        .unwrap()
        .job
        .id;
    let c = f.sched.claim("q", 1, Some(60_000), 0, "w").await.unwrap();
    assert_eq!(c[0].lease_until_ms, T0 + 2_000);
    f.advance(1_500);
    assert_eq!(
        f.sched.heartbeat(id, 1, Some(60_000)).await.unwrap(),
        T0 + 2_000
    );
    // At the time limit the attempt is over, reaped or not: no heartbeat brings it
    // back, and it cannot commit.
    f.advance(500);
    for e in [
        f.sched.heartbeat(id, 1, Some(60_000)).await.unwrap_err(),
        f.sched.complete(id, 1, None).await.unwrap_err(),
        f.sched.fail(id, 1, "late".into(), true).await.unwrap_err(),
    ] {
        assert!(e.to_string().contains("lease of this attempt ended"), "{e}");
    }
    // The reaper then ends it as lease_expired and the job retries.
    assert_eq!(f.sched.reap().await.unwrap(), 1);
    let job = f.sched.get(id).await.unwrap();
    assert_eq!(job.attempts[0].outcome.as_deref(), Some("lease_expired"));
}

#[tokio::test]
async fn cancel_fences_a_running_attempt() {
    let f = Fixture::new();
    let id = f.enqueue("q", json!(null)).await;
    f.sched.claim("q", 1, None, 0, "w").await.unwrap();
    let job = f.sched.cancel(id).await.unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert!(conflict(f.sched.complete(id, 1, None).await.unwrap_err()));
    assert!(conflict(f.sched.cancel(id).await.unwrap_err()));
    assert!(matches!(
        f.sched.cancel(999_999).await.unwrap_err(),
        SchedError::NotFound(_)
    ));
}

#[tokio::test]
async fn concurrency_limit_per_queue() {
    let mut config = SchedConfig::default();
    config.concurrency.insert("limited".into(), 2);
    let f = Fixture::with(config);
    for i in 0..5 {
        f.enqueue("limited", json!(i)).await;
    }
    let first = f.sched.claim("limited", 10, None, 0, "w").await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(f
        .sched
        .claim("limited", 10, None, 0, "w")
        .await
        .unwrap()
        .is_empty());
    f.sched.complete(first[0].id, 1, None).await.unwrap();
    assert_eq!(
        f.sched
            .claim("limited", 10, None, 0, "w")
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn validation_names_the_field() {
    let f = Fixture::new();
    let cases: Vec<(EnqueueRequest, &str)> = vec![
        (EnqueueRequest::default(), "queue"),
        (
            EnqueueRequest {
                queue: "bad queue".into(),
                ..Default::default()
            },
            "queue",
        ),
        (
            EnqueueRequest {
                queue: "q".into(),
                run_at_ms: Some(1),
                delay_ms: Some(1),
                ..Default::default()
            },
            "run_at",
        ),
        (
            EnqueueRequest {
                queue: "q".into(),
                max_attempts: Some(0),
                ..Default::default()
            },
            "max_attempts",
        ),
        (
            EnqueueRequest {
                queue: "q".into(),
                priority: Some(5_000),
                ..Default::default()
            },
            "priority",
        ),
        (
            EnqueueRequest {
                queue: "q".into(),
                url: Some("ftp://x".into()),
                ..Default::default()
            },
            "url",
        ),
        (
            EnqueueRequest {
                queue: "q".into(),
                idempotency_key: Some(String::new()),
                ..Default::default()
            },
            "idempotency_key",
        ),
    ];
    for (req, field) in cases {
        match f.sched.enqueue(req).await.unwrap_err() {
            SchedError::Invalid(m) => assert!(m.starts_with(field), "{m}"),
            e => panic!("{e}"),
        }
    }
    assert!(f.sched.claim("q", 0, None, 0, "w").await.is_err());
    assert!(f
        .sched
        .claim("q", MAX_CLAIM + 1, None, 0, "w")
        .await
        .is_err());
}

#[tokio::test]
async fn prune_keeps_unfinished_jobs() {
    let f = Fixture::with(SchedConfig {
        retention_ms: 1_000,
        ..Default::default()
    });
    let done = f.enqueue("q", json!(1)).await;
    let waiting = f
        .sched
        .enqueue(EnqueueRequest {
            queue: "q".into(),
            delay_ms: Some(3_600_000),
            ..Default::default()
        })
        .await
        .unwrap()
        .job
        .id;
    f.sched.claim("q", 1, None, 0, "w").await.unwrap();
    f.sched.complete(done, 1, None).await.unwrap();
    f.advance(2_000);
    // The background pass prunes (its first pass does housekeeping at once).
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(f.sched.clone().run(shutdown.clone()));
    for _ in 0..200 {
        if f.sched.get(done).await.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    assert!(matches!(
        f.sched.get(done).await.unwrap_err(),
        SchedError::NotFound(_)
    ));
    assert_eq!(
        f.sched.get(waiting).await.unwrap().state,
        JobState::Scheduled
    );
}

#[tokio::test]
async fn survives_reopen() {
    let f = Fixture::new();
    let id = f.enqueue("q", json!({"k": "v"})).await;
    f.sched.claim("q", 1, None, 0, "w").await.unwrap();
    let path = f.path.clone();
    let clock = f.clock.clone();
    drop(f.sched);
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let sched = Scheduler::new(store, SchedConfig::default(), clock);
    let job = sched.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.payload, json!({"k": "v"}));
    sched.complete(id, 1, None).await.unwrap();
}

#[tokio::test]
async fn schedules_make_one_job_per_tick_and_misfire() {
    let f = Fixture::new();
    let (s, created) = f
        .sched
        .create_schedule(ScheduleRequest {
            name: "hourly-report".into(),
            cron: "0 * * * *".into(),
            time_zone: Some("Europe/Berlin".into()),
            job: EnqueueRequest {
                queue: "reports".into(),
                payload: json!({"report": "hourly"}),
                ..Default::default()
            },
            misfire: Misfire::CatchUp { max: 2 },
        })
        .await
        .unwrap();
    assert!(created);
    assert_eq!(s.next_run_at_ms, T0 + 3_600_000);
    // The same request again is the same schedule; a different one under the name is a
    // conflict.
    let (again, created) = f
        .sched
        .create_schedule(ScheduleRequest {
            name: "hourly-report".into(),
            cron: "0 * * * *".into(),
            time_zone: Some("Europe/Berlin".into()),
            job: EnqueueRequest {
                queue: "reports".into(),
                payload: json!({"report": "hourly"}),
                ..Default::default()
            },
            misfire: Misfire::CatchUp { max: 2 },
        })
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, s.id);
    // Not due yet.
    f.sched.fire_due_schedules().await.unwrap();
    assert!(f
        .sched
        .claim("reports", 10, None, 0, "w")
        .await
        .unwrap()
        .is_empty());
    // On time.
    f.advance(3_600_000 + 3);
    f.sched.fire_due_schedules().await.unwrap();
    f.sched.fire_due_schedules().await.unwrap(); // again: nothing new
    let jobs = f.sched.claim("reports", 10, None, 0, "w").await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].run_at_ms, T0 + 3_600_000);
    f.sched.complete(jobs[0].id, 1, None).await.unwrap();
    // Down for 5 hours: catch-up makes the newest 2 missed ticks plus none on time.
    f.advance(5 * 3_600_000 + 120_000);
    f.sched.fire_due_schedules().await.unwrap();
    let jobs = f.sched.claim("reports", 10, None, 0, "w").await.unwrap();
    assert_eq!(jobs.len(), 2);
    for j in &jobs {
        f.sched.complete(j.id, 1, None).await.unwrap();
    }
    // Pause: ticks make nothing; resume starts from the next tick after now.
    f.sched.set_paused(s.id, true).await.unwrap();
    f.advance(3 * 3_600_000);
    f.sched.fire_due_schedules().await.unwrap();
    assert!(f
        .sched
        .claim("reports", 10, None, 0, "w")
        .await
        .unwrap()
        .is_empty());
    let resumed = f.sched.set_paused(s.id, false).await.unwrap();
    assert!(resumed.next_run_at_ms > f.now());
    assert!(!resumed.paused);
    // Bad requests name the field.
    for (cron, tz, field) in [
        ("61 * * * *", "UTC", "cron"),
        ("0 * * * *", "Nowhere/Land", "time_zone"),
    ] {
        let e = f
            .sched
            .create_schedule(ScheduleRequest {
                name: format!("bad-{field}"),
                cron: cron.into(),
                time_zone: Some(tz.into()),
                job: EnqueueRequest {
                    queue: "q".into(),
                    ..Default::default()
                },
                misfire: Misfire::Skip,
            })
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with(field), "{e}");
    }
}

#[tokio::test]
async fn racing_schedulers_fire_each_tick_once() {
    // Two engines (two "nodes") over one database file fire the same schedule.
    let f = Fixture::new();
    let (s, _) = f
        .sched
        .create_schedule(ScheduleRequest {
            name: "every-second".into(),
            cron: "* * * * * *".into(),
            time_zone: None,
            job: EnqueueRequest {
                queue: "ticks".into(),
                ..Default::default()
            },
            misfire: Misfire::Skip,
        })
        .await
        .unwrap();
    let other = Scheduler::new(
        Arc::new(SqliteStore::open(&f.path).unwrap()),
        SchedConfig::default(),
        f.clock.clone(),
    );
    for _ in 0..20 {
        f.advance(1_000);
        let (a, b) = tokio::join!(f.sched.fire_due_schedules(), other.fire_due_schedules());
        a.unwrap();
        b.unwrap();
    }
    let jobs = f
        .sched
        .list(ListFilter {
            queue: Some("ticks".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(jobs.len(), 20, "one job per tick");
    assert!(jobs.iter().all(|j| j.schedule_id == Some(s.id)));
    let mut ticks: Vec<u64> = jobs.iter().map(|j| j.run_at_ms).collect();
    ticks.dedup();
    assert_eq!(ticks.len(), 20);
}

#[tokio::test(start_paused = true)]
async fn long_poll_claim_wakes_on_enqueue_and_on_due_time() {
    // Real wall clock for the store, paused tokio time for the waits: the claim must
    // be woken by the enqueue, not by polling.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let sched = Scheduler::new(
        store,
        SchedConfig::default(),
        Arc::new(girder_sched::SystemClock),
    );
    let waiter = {
        let sched = sched.clone();
        tokio::spawn(async move { sched.claim("q", 1, None, 20_000, "w").await })
    };
    tokio::task::yield_now().await;
    let id = sched
        .enqueue(EnqueueRequest {
            queue: "q".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .job
        .id;
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
    // An empty wait returns empty at its deadline.
    let none = sched.claim("q", 1, None, 2_000, "w").await.unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn rate_limit_per_queue() {
    // Real time for the limiter: 2 starts per second, burst 2.
    let mut config = SchedConfig::default();
    config
        .rate_limits
        .insert("limited".into(), girder_limit::Quota::per_second(2));
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let sched = Scheduler::new(store, config, Arc::new(girder_sched::SystemClock));
    for _ in 0..5 {
        sched
            .enqueue(EnqueueRequest {
                queue: "limited".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    assert_eq!(
        sched
            .claim("limited", 10, None, 0, "w")
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(sched
        .claim("limited", 10, None, 0, "w")
        .await
        .unwrap()
        .is_empty());
    // The next start is allowed 500 ms later: a long-poll waits for it.
    let started = std::time::Instant::now();
    let next = sched.claim("limited", 10, None, 2_000, "w").await.unwrap();
    assert_eq!(next.len(), 1);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(400),
        "{waited:?}"
    );
    assert!(
        waited < std::time::Duration::from_millis(1_500),
        "{waited:?}"
    );
}

#[tokio::test]
async fn metric_labels_are_bounded_whatever_queues_clients_name() {
    let f = Fixture::new();
    let metrics = girder_runtime::Metrics::new(girder_runtime::BuildInfo::default());
    f.sched.metrics().register(&metrics);
    let reqs: Vec<EnqueueRequest> = (0..400)
        .map(|i| EnqueueRequest {
            queue: format!("q{i}"),
            ..Default::default()
        })
        .collect();
    f.sched.enqueue_many(reqs, true).await.unwrap();
    let text = metrics.encode();
    let series = text
        .lines()
        .filter(|l| l.starts_with("girder_sched_jobs_enqueued_total{"))
        .count();
    assert_eq!(series, girder_sched::engine::MAX_QUEUE_LABELS + 1, "{text}");
    assert!(text.contains("girder_sched_jobs_enqueued_total{queue=\"other\"} 144"));
}
