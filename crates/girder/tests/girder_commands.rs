//! Girder's own RESP commands against a real node, with the `redis` crate:
//! `CACHE.GET` / `CACHE.FILL` / `CACHE.RELEASE` leases, `RL.CHECK`, `ID.NEXT`.

mod common;

use redis::{Commands, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

/// The node id the test node runs with, visible in every id it issues.
const NODE_ID: u64 = 37;

fn resp_addr() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let mut config = common::local_config("own-commands");
        config.node_id = NODE_ID;
        common::serve_on_thread(config)
    })
}

fn client(db: u8) -> redis::Connection {
    redis::Client::open(format!("redis://{}/{db}", resp_addr()))
        .unwrap()
        .get_connection()
        .unwrap()
}

fn error_of(result: redis::RedisResult<Value>) -> String {
    match result {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// What CACHE.GET answered.
#[derive(Debug, PartialEq)]
enum Read {
    Hit(String),
    Lease(i64),
    Wait(i64),
}

fn cache_get(c: &mut redis::Connection, key: &str) -> Read {
    let (kind, value): (String, Value) = redis::cmd("CACHE.GET").arg(key).query(c).unwrap();
    match (kind.as_str(), value) {
        ("hit", Value::BulkString(v)) => Read::Hit(String::from_utf8(v).unwrap()),
        ("lease", Value::Int(t)) => Read::Lease(t),
        ("wait", Value::Int(ms)) => Read::Wait(ms),
        other => panic!("unexpected CACHE.GET reply {other:?}"),
    }
}

#[test]
fn two_hundred_clients_miss_together_and_the_database_is_asked_once() {
    const CLIENTS: usize = 200;
    let mut admin = client(2);
    let _: () = redis::cmd("FLUSHDB").query(&mut admin).unwrap();
    let database_calls = Arc::new(AtomicUsize::new(0));
    let leases = Arc::new(AtomicUsize::new(0));
    let waits = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (database_calls, leases, waits, barrier) = (
                Arc::clone(&database_calls),
                Arc::clone(&leases),
                Arc::clone(&waits),
                Arc::clone(&barrier),
            );
            std::thread::spawn(move || {
                let mut c = client(2);
                barrier.wait();
                loop {
                    match cache_get(&mut c, "user:42") {
                        Read::Hit(v) => return v,
                        Read::Lease(token) => {
                            leases.fetch_add(1, Ordering::SeqCst);
                            // The slow database query the lease protects.
                            database_calls.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(200));
                            let stored: i64 = redis::cmd("CACHE.FILL")
                                .arg("user:42")
                                .arg(token)
                                .arg("alice")
                                .arg("EX")
                                .arg(60)
                                .query(&mut c)
                                .unwrap();
                            assert_eq!(stored, 1);
                        }
                        Read::Wait(left) => {
                            assert!((1..=10_000).contains(&left), "{left}");
                            waits.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "alice");
    }
    assert_eq!(database_calls.load(Ordering::SeqCst), 1);
    assert_eq!(leases.load(Ordering::SeqCst), 1);
    assert!(
        waits.load(Ordering::SeqCst) >= CLIENTS - 1,
        "the others were told to wait"
    );
    let ttl: i64 = admin.ttl("user:42").unwrap();
    assert!((1..=60).contains(&ttl), "{ttl}");
}

#[test]
fn a_delete_between_lease_and_fill_voids_the_token() {
    let mut c = client(3);
    let mut other = client(3);
    let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    let Read::Lease(token) = cache_get(&mut c, "k") else {
        panic!("first miss gets the lease")
    };
    // Another client writes and deletes the key: the filler's value may be stale.
    let _: () = other.set("k", "newer").unwrap();
    let _: () = other.del("k").unwrap();
    let stored: i64 = redis::cmd("CACHE.FILL")
        .arg("k")
        .arg(token)
        .arg("stale")
        .query(&mut c)
        .unwrap();
    assert_eq!(stored, 0);
    let value: Option<String> = c.get("k").unwrap();
    assert_eq!(value, None, "no stale set");

    // Release hands the lease on at once; the released token is dead.
    let Read::Lease(t1) = cache_get(&mut c, "k") else {
        panic!("lease after the void one")
    };
    assert!(matches!(cache_get(&mut other, "k"), Read::Wait(_)));
    let released: i64 = redis::cmd("CACHE.RELEASE")
        .arg("k")
        .arg(t1)
        .query(&mut c)
        .unwrap();
    assert_eq!(released, 1);
    let Read::Lease(t2) = cache_get(&mut other, "k") else {
        panic!("released lease goes to the next reader")
    };
    let late: i64 = redis::cmd("CACHE.FILL")
        .arg("k")
        .arg(t1)
        .arg("x")
        .query(&mut c)
        .unwrap();
    assert_eq!(late, 0);
    let ok: i64 = redis::cmd("CACHE.FILL")
        .arg("k")
        .arg(t2)
        .arg("fresh")
        .query(&mut other)
        .unwrap();
    assert_eq!(ok, 1);
    assert_eq!(cache_get(&mut c, "k"), Read::Hit("fresh".into()));
}

#[test]
fn cache_commands_refuse_bad_input_and_the_connection_survives() {
    let mut c = client(4);
    let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    let _: () = c.rpush("list", "x").unwrap();
    let cases: Vec<(redis::Cmd, &str)> = vec![
        (
            redis::cmd("CACHE.GET"),
            "wrong number of arguments for 'cache.get'",
        ),
        (
            redis::cmd("CACHE.GET").arg("list").clone(),
            "Operation against a key holding the wrong kind of value",
        ),
        (
            redis::cmd("CACHE.GET").arg("k").arg("LEASE").arg(0).clone(),
            "lease must be between 1 and 3600000 ms",
        ),
        (
            redis::cmd("CACHE.GET").arg("k").arg("LEASE").clone(),
            "syntax error",
        ),
        (
            redis::cmd("CACHE.FILL")
                .arg("k")
                .arg("abc")
                .arg("v")
                .clone(),
            "invalid lease token",
        ),
        (
            redis::cmd("CACHE.FILL").arg("k").arg(-5).arg("v").clone(),
            "invalid lease token",
        ),
        (
            redis::cmd("CACHE.FILL")
                .arg("k")
                .arg(5)
                .arg("v")
                .arg("EX")
                .arg(0)
                .clone(),
            "invalid expire time in 'cache.fill' command",
        ),
        (
            redis::cmd("CACHE.FILL")
                .arg("k")
                .arg(5)
                .arg("v")
                .arg("KEEPTTL")
                .clone(),
            "syntax error",
        ),
        (
            redis::cmd("CACHE.RELEASE").arg("k").clone(),
            "wrong number of arguments for 'cache.release'",
        ),
    ];
    for (cmd, want) in cases {
        let err = error_of(cmd.query(&mut c));
        assert!(err.contains(want), "{err:?} should contain {want:?}");
    }
    // An unknown token is not an error: the fill simply does not happen.
    let stored: i64 = redis::cmd("CACHE.FILL")
        .arg("k")
        .arg(12345)
        .arg("v")
        .query(&mut c)
        .unwrap();
    assert_eq!(stored, 0);
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

fn rl_check(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Vec<i64>> {
    redis::cmd("RL.CHECK").arg(args).query(c)
}

#[test]
fn rl_check_replies_and_refuses_bad_input() {
    let mut c = client(5);
    // 2 per 10 s: allowed, allowed, then denied with a retry-after.
    let first = rl_check(&mut c, &["api:alice", "gcra", "2", "10000"]).unwrap();
    assert_eq!(first[..2], [1, 1]);
    assert!((4_990..=5_000).contains(&first[2]), "reset {first:?}");
    assert_eq!(first[3], 0);
    let second = rl_check(&mut c, &["api:alice", "gcra", "2", "10000"]).unwrap();
    assert_eq!(second[..2], [1, 0]);
    let denied = rl_check(&mut c, &["api:alice", "gcra", "2", "10000"]).unwrap();
    assert_eq!(denied[..2], [0, 0]);
    assert!((4_990..=5_000).contains(&denied[3]), "retry {denied:?}");
    // Cost 0 reads without spending; a cost above the burst can never pass.
    let read = rl_check(&mut c, &["api:bob", "gcra", "2", "10000", "2", "0"]).unwrap();
    assert_eq!(read, vec![1, 2, 0, 0]);
    let never = rl_check(&mut c, &["api:bob", "gcra", "2", "10000", "2", "3"]).unwrap();
    assert_eq!((never[0], never[3]), (0, -1));

    for (args, want) in [
        (
            vec!["k", "leaky", "1", "1000"],
            "unknown rate limit algorithm 'leaky'",
        ),
        (vec!["k", "gcra", "0", "1000"], "limit must be at least 1"),
        (vec!["k", "gcra", "1", "-5"], "period must be at least 1"),
        (vec!["k", "gcra", "x", "1000"], "value is not an integer"),
        (
            vec!["k", "gcra", "1", "1000", "0"],
            "burst must be at least 1",
        ),
        (
            vec!["k", "gcra", "1", "1000", "1", "-1"],
            "cost must not be negative",
        ),
        (
            vec!["k", "gcra", "1", "1000", "1", "1", "x"],
            "syntax error",
        ),
        (
            vec!["k", "sliding_log", "100000", "1000"],
            "limit must be at most 10000",
        ),
        (
            vec!["k", "gcra", "1"],
            "wrong number of arguments for 'rl.check'",
        ),
    ] {
        let err = error_of(redis::cmd("RL.CHECK").arg(&args).query(&mut c));
        assert!(
            err.contains(want),
            "{args:?}: {err:?} should contain {want:?}"
        );
    }
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn rl_check_is_exact_across_connections() {
    const THREADS: usize = 8;
    const CALLS: usize = 60;
    for algorithm in ["gcra", "fixed_window", "sliding_log", "sliding_window"] {
        // 100 per hour, shared by 8 connections making 480 calls at once.
        let key = format!("shared:{algorithm}");
        let barrier = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (key, barrier) = (key.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let mut c = client(5);
                    barrier.wait();
                    (0..CALLS)
                        .filter(|_| {
                            rl_check(&mut c, &[&key, algorithm, "100", "3600000"]).unwrap()[0] == 1
                        })
                        .count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 100, "{algorithm}");
    }
}

#[test]
fn id_next_comes_from_the_nodes_generator() {
    let mut c = client(6);
    let one: i64 = redis::cmd("ID.NEXT").query(&mut c).unwrap();
    let many: Vec<i64> = redis::cmd("ID.NEXT").arg(1000).query(&mut c).unwrap();
    assert_eq!(many.len(), 1000);
    assert!(one < many[0]);
    assert!(many.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
    for id in std::iter::once(one).chain(many) {
        // Snowflake layout: 41 bits of time, 10 of node, 12 of sequence.
        assert_eq!((id >> 12) & 0x3FF, NODE_ID as i64);
    }
    for (arg, want) in [
        ("0", "count must be between 1 and 10000"),
        ("10001", "count must be between 1 and 10000"),
        ("many", "value is not an integer"),
    ] {
        let err = error_of(redis::cmd("ID.NEXT").arg(arg).query(&mut c));
        assert!(err.contains(want), "{err:?}");
    }
    let err = error_of(redis::cmd("ID.NEXT").arg(1).arg(2).query(&mut c));
    assert!(err.contains("syntax error"), "{err:?}");
}
