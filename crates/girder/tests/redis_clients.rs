//! The clients users already have, against a real node: the `redis` crate and redis-py.
//!
//! redis-py must be importable (`pip install redis`); without it the Python test prints a
//! notice and passes, unless `REDIS_PY_REQUIRED=1` (set by `.ci/run`).

mod common;

use redis::Commands;
use std::net::SocketAddr;
use std::sync::OnceLock;

/// One node for the whole test binary, on its own runtime thread.
fn resp_addr() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| common::serve_on_thread(common::local_config("clients")))
}

fn client(db: u8) -> redis::Connection {
    let addr = resp_addr();
    redis::Client::open(format!("redis://{addr}/{db}"))
        .unwrap()
        .get_connection()
        .unwrap()
}

#[test]
fn the_redis_crate_reads_and_writes() {
    let mut c = client(1);
    let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    let _: () = c.set_ex("session:1", "alice", 60).unwrap();
    let name: String = c.get("session:1").unwrap();
    assert_eq!(name, "alice");
    let ttl: i64 = c.ttl("session:1").unwrap();
    assert!((1..=60).contains(&ttl));
    let missing: Option<String> = c.get("nope").unwrap();
    assert_eq!(missing, None);
    let n: i64 = c.incr("hits", 5).unwrap();
    assert_eq!(n, 5);
    let values: Vec<Option<String>> = c.mget(&["session:1", "nope", "hits"]).unwrap();
    assert_eq!(values, vec![Some("alice".into()), None, Some("5".into())]);
    let err = c.incr::<_, _, i64>("session:1", 1).unwrap_err();
    assert_eq!(err.code(), Some("ERR"));
    assert!(err.to_string().contains("not an integer"), "{err}");
}

#[test]
fn the_redis_crate_pipelines() {
    let mut c = client(2);
    let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    let mut pipe = redis::pipe();
    for i in 0..1_000 {
        pipe.set(format!("k{i}"), i).ignore();
    }
    for i in 0..1_000 {
        pipe.get(format!("k{i}"));
    }
    let values: Vec<i64> = pipe.query(&mut c).unwrap();
    assert_eq!(values, (0..1_000).collect::<Vec<_>>());
    let size: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(size, 1_000);
}

#[test]
fn the_redis_crate_speaks_resp3() {
    let addr = resp_addr();
    let mut c = redis::Client::open(format!("redis://{addr}/4?protocol=resp3"))
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = c.set("k", "v").unwrap();
    let v: String = c.get("k").unwrap();
    assert_eq!(v, "v");
    let hello: redis::Value = redis::cmd("HELLO").arg(3).query(&mut c).unwrap();
    assert!(matches!(hello, redis::Value::Map(_)), "{hello:?}");
}

#[test]
fn redis_py_works_unchanged() {
    let import = std::process::Command::new("python3")
        .args(["-c", "import redis"])
        .output();
    if !import.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("REDIS_PY_REQUIRED").as_deref() != Ok("1"),
            "REDIS_PY_REQUIRED=1 but redis-py is not importable"
        );
        eprintln!("skipping: redis-py is not installed (pip install redis)");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/redis_py_smoke.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(resp_addr().port().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-py smoke failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn huge_negative_random_counts_are_refused_not_fatal() {
    // Redis 7.0 builds the whole reply and dies of memory exhaustion here.
    let mut c = client(5);
    let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    let _: () = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SADD").arg("s").arg("m").query(&mut c).unwrap();
    let _: () = redis::cmd("ZADD")
        .arg("z")
        .arg(1)
        .arg("m")
        .query(&mut c)
        .unwrap();
    for (cmd, key) in [
        ("HRANDFIELD", "h"),
        ("SRANDMEMBER", "s"),
        ("ZRANDMEMBER", "z"),
    ] {
        let err = redis::cmd(cmd)
            .arg(key)
            .arg(-9_223_372_036_854_775_807i64)
            .query::<redis::Value>(&mut c)
            .unwrap_err();
        assert!(
            err.to_string().contains("count is out of range"),
            "{cmd}: {err}"
        );
        let ok: Vec<String> = redis::cmd(cmd).arg(key).arg(-3).query(&mut c).unwrap();
        assert_eq!(ok.len(), 3, "{cmd}: small negative counts still repeat");
    }
}

#[test]
fn the_redis_crate_iterates_with_scan() {
    let mut c = client(6);
    let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    let mut pipe = redis::pipe();
    for i in 0..5_000 {
        pipe.set(format!("user:{i}"), i).ignore();
    }
    for i in 0..100 {
        pipe.rpush(format!("queue:{i}"), "job").ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let users: std::collections::HashSet<String> = c
        .scan_match::<_, String>("user:*")
        .unwrap()
        .collect::<redis::RedisResult<_>>()
        .unwrap();
    assert_eq!(users, (0..5_000).map(|i| format!("user:{i}")).collect());
    let options = redis::ScanOptions::default()
        .with_count(7)
        .with_type("list");
    let queues: Vec<String> = c
        .scan_options::<String>(options)
        .unwrap()
        .collect::<redis::RedisResult<_>>()
        .unwrap();
    let mut sorted = queues.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), queues.len(), "a key returned twice");
    assert_eq!(queues.len(), 100);
    let all = c.scan::<String>().unwrap().count();
    assert_eq!(all, 5_100);
}

#[test]
fn long_pipelines_of_large_replies_arrive_whole_and_in_order() {
    // 200 replies of 100 KB: the server writes them out as they accumulate rather than
    // buffering 20 MB; the client must still see every byte, in order.
    let mut c = client(7);
    let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    let big = "x".repeat(100 * 1024);
    let _: () = c.set("big", &big).unwrap();
    let mut pipe = redis::pipe();
    for i in 0..200 {
        pipe.get("big").incr("n", 1);
        if i % 50 == 0 {
            pipe.strlen("big");
        }
    }
    let replies: Vec<redis::Value> = pipe.query(&mut c).unwrap();
    assert_eq!(replies.len(), 200 * 2 + 4);
    let values: Vec<&redis::Value> = replies.iter().collect();
    assert!(matches!(values[0], redis::Value::BulkString(b) if b.len() == big.len()));
    let counts: Vec<i64> = replies
        .iter()
        .filter_map(|v| match v {
            redis::Value::Int(n) if *n != big.len() as i64 => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(
        counts,
        (1..=200).collect::<Vec<_>>(),
        "replies stay in order"
    );
}
