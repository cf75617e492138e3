//! `maxmemory` and eviction, against the real binary (its counting allocator is what the
//! limit is held to) with the `redis` crate:
//!
//! - `noeviction` refuses writes with Redis's OOM error, still serves reads and deletes,
//!   aborts a transaction that would write, and writes again once the limit is raised;
//! - every evicting policy holds `used_memory` to the limit and evicts only what it
//!   should (the volatile policies: keys with a TTL, then OOM);
//! - LRU keeps the keys in use, LFU the keys used often, volatile-ttl takes the soonest
//!   deadlines;
//! - filled ten times past the limit, RSS stays within 10% of `maxmemory` plus the
//!   process's baseline (its RSS before any data);
//! - OBJECT IDLETIME / FREQ, CONFIG GET / SET of the settings, and `evicted` keyspace
//!   events.

mod common;

use common::{spawn, Process, TempDir};
use redis::Commands;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

fn node(name: &str, maxmemory: &str, policy: &str) -> (TempDir, Process) {
    let dir = TempDir::new("eviction", name);
    let node = spawn(
        &dir.0,
        &[
            ("GIRDER_PERSISTENCE__MODE", "none"),
            ("GIRDER_MEMORY__MAXMEMORY", maxmemory),
            ("GIRDER_MEMORY__MAXMEMORY_POLICY", policy),
        ],
    );
    (dir, node)
}

fn connect(node: &Process) -> redis::Connection {
    redis::Client::open(format!("redis://{}/0", node.resp))
        .unwrap()
        .get_connection()
        .unwrap()
}

fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO {section} has no {field}: {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// Writes `count` keys `prefix:<i>` of `size` bytes (with `EX ttl` when given), in
/// pipelines of 500; returns the errors replied, in order.
fn fill(
    con: &mut redis::Connection,
    prefix: &str,
    count: usize,
    size: usize,
    ttl: Option<u64>,
) -> Vec<String> {
    let value = vec![b'x'; size];
    let mut errors = Vec::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for i in chunk {
            let cmd = pipe.cmd("SET").arg(format!("{prefix}:{i}")).arg(&value);
            if let Some(ttl) = ttl {
                cmd.arg("EX").arg(ttl);
            }
        }
        let replies: Vec<redis::RedisResult<redis::Value>> =
            pipe.ignore_errors().query(con).unwrap();
        for reply in replies {
            if let Err(e) = reply {
                errors.push(format!(
                    "{} {}",
                    e.code().unwrap_or("?"),
                    e.detail().unwrap_or("")
                ));
            }
        }
    }
    errors
}

fn exists(con: &mut redis::Connection, key: &str) -> bool {
    con.exists(key).unwrap()
}

/// How many of `prefix:0` .. `prefix:<n-1>` exist.
fn present(con: &mut redis::Connection, prefix: &str, n: usize) -> usize {
    (0..n)
        .filter(|i| exists(con, &format!("{prefix}:{i}")))
        .count()
}

fn config_set(con: &mut redis::Connection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(con)
        .unwrap();
}

/// GETs `prefix:0` .. `prefix:<n-1>` in one pipeline.
fn read_all(con: &mut redis::Connection, prefix: &str, n: usize) {
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("GET").arg(format!("{prefix}:{i}"));
    }
    let _: Vec<redis::Value> = pipe.query(con).unwrap();
}

/// `OBJECT <sub> <key>` (IDLETIME, FREQ), which looks at the key without using it.
fn object<T: redis::FromRedisValue>(con: &mut redis::Connection, sub: &str, key: &str) -> T {
    redis::cmd("OBJECT").arg(sub).arg(key).query(con).unwrap()
}

#[test]
fn noeviction_refuses_writes_with_the_oom_error_and_serves_reads_and_deletes() {
    let (_dir, node) = node("noeviction", "6mb", "noeviction");
    let mut con = connect(&node);
    let errors = fill(&mut con, "k", 20_000, 1000, None);
    assert!(!errors.is_empty(), "20 MB written under a 6 MB limit");
    assert!(errors.iter().all(|e| e == OOM), "{:?}", &errors[..1]);
    let keys: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(keys > 1000 && keys < 6000, "{keys}");
    // Reads and deletes run; writes that may grow memory do not.
    let value: Option<Vec<u8>> = con.get("k:0").unwrap();
    assert_eq!(value.map(|v| v.len()), Some(1000));
    // At the limit, writes are refused. (The fill's own request and reply buffers
    // count while they exist: once freed they leave a little room, so write until the
    // refusal comes.)
    let big = vec![b'y'; 1000];
    let err = (0..5_000)
        .find_map(|i| con.set::<_, _, ()>(format!("another:{i}"), &big).err())
        .expect("a SET refused at the limit");
    assert_eq!(err.code(), Some("OOM"), "{err}");
    assert!(err.to_string().contains(&OOM[4..]), "{err}");
    let err = (0..5_000)
        .find_map(|_| {
            redis::cmd("LPUSH")
                .arg("l")
                .arg(&big)
                .query::<()>(&mut con)
                .err()
        })
        .expect("an LPUSH refused at the limit");
    assert!(err.to_string().contains("OOM"), "{err}");
    // A transaction that would write is refused as a whole.
    let err = (0..5_000)
        .find_map(|i| {
            redis::pipe()
                .atomic()
                .set(format!("t:{i}"), &big)
                .query::<()>(&mut con)
                .err()
        })
        .expect("a transaction refused at the limit");
    assert!(err.to_string().contains("OOM"), "{err}");
    let deleted: u64 = con.del("k:0").unwrap();
    assert_eq!(deleted, 1);
    // Nothing was evicted, and the limit raised lets writes in again.
    assert_eq!(info_field(&mut con, "stats", "evicted_keys"), 0);
    config_set(&mut con, "maxmemory", "0");
    let _: () = con.set("another", "v").unwrap();
}

#[test]
fn every_evicting_policy_holds_memory_to_the_limit() {
    let (_dir, node) = node("policies", "8mb", "allkeys-lru");
    let mut con = connect(&node);
    let limit = 8u64 << 20;
    for policy in [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
        config_set(&mut con, "maxmemory-policy", policy);
        let before = info_field(&mut con, "stats", "evicted_keys");
        let volatile = policy.starts_with("volatile");
        // 2 MB that must stay (for the volatile policies: no TTL), then 30 MB more.
        assert!(fill(&mut con, "keep", 2_000, 1000, None).is_empty());
        let errors = fill(&mut con, "more", 30_000, 1000, Some(3600));
        assert!(errors.is_empty(), "{policy}: {:?}", &errors[..1]);
        let used = info_field(&mut con, "memory", "used_memory");
        assert!(used <= limit + limit / 50, "{policy}: used {used}");
        let evicted = info_field(&mut con, "stats", "evicted_keys") - before;
        assert!(evicted > 20_000, "{policy}: evicted {evicted}");
        if volatile {
            let kept = present(&mut con, "keep", 2_000);
            assert_eq!(kept, 2_000, "{policy} evicted a key without a TTL");
            // Past what the keys with a TTL can free: OOM.
            let errors = fill(&mut con, "big", 10_000, 1000, None);
            assert!(
                errors.iter().any(|e| e == OOM),
                "{policy}: no OOM once only keys without a TTL are left"
            );
        }
    }
}

#[test]
fn lru_keeps_the_keys_in_use_lfu_the_keys_used_often_and_ttl_the_late_deadlines() {
    let (_dir, node) = node("choices", "8mb", "allkeys-lru");
    let mut con = connect(&node);
    // LRU: 1,000 keys read between every batch of new writes.
    fill(&mut con, "hot", 1_000, 1000, None);
    for round in 0..30 {
        fill(&mut con, &format!("cold{round}"), 1_000, 1000, None);
        read_all(&mut con, "hot", 1_000);
    }
    let hot = present(&mut con, "hot", 1_000);
    assert!(hot >= 990, "LRU kept {hot} of 1000 keys in use");

    // LFU: 1,000 keys read 20 times each, then never again.
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    config_set(&mut con, "maxmemory-policy", "allkeys-lfu");
    fill(&mut con, "hot", 1_000, 1000, None);
    for _ in 0..20 {
        read_all(&mut con, "hot", 1_000);
    }
    fill(&mut con, "cold", 30_000, 1000, None);
    let hot = present(&mut con, "hot", 1_000);
    assert!(hot >= 990, "LFU kept {hot} of 1000 keys used often");

    // volatile-ttl: keys due in a minute go before keys due in a day.
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    config_set(&mut con, "maxmemory-policy", "volatile-ttl");
    fill(&mut con, "late", 3_000, 1000, Some(86_400));
    fill(&mut con, "soon", 3_000, 1000, Some(60));
    fill(&mut con, "later", 3_000, 1000, Some(86_400));
    let late = present(&mut con, "late", 3_000);
    let soon = present(&mut con, "soon", 3_000);
    // The limit holds about 6,000 of these keys: the 3,000 due soon go first.
    assert!(
        soon < 1_000 && late >= 2_990,
        "volatile-ttl kept {soon} keys due soon and {late} due late"
    );
}

/// Resident memory of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

#[test]
fn filled_ten_times_past_the_limit_rss_stays_within_ten_percent_of_it() {
    let limit: u64 = 24 << 20;
    let (_dir, node) = node("rss", "24mb", "allkeys-lru");
    let mut con = connect(&node);
    let pid = node.child.id();
    let _: String = redis::cmd("PING").query(&mut con).unwrap();
    let baseline = rss(pid);
    // Small values are the hard case: the most keys, the most per-key overhead, the
    // most holes left in the heap by evicted values. 1.2M keys of 100 bytes take about
    // 280 MB: more than ten times the limit.
    assert!(fill(&mut con, "k", 1_200_000, 100, None).is_empty());
    let used = info_field(&mut con, "memory", "used_memory");
    let resident = rss(pid);
    let keys: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    eprintln!(
        "baseline {baseline}, rss {resident}, used {used}, keys {keys} (limit {limit}): rss - baseline = {:.3} × maxmemory",
        (resident - baseline) as f64 / limit as f64
    );
    assert!(used <= limit + limit / 50, "used {used}");
    assert!(
        resident <= baseline + limit + limit / 10,
        "rss {resident} over baseline {baseline} + 1.1 × {limit}"
    );
}

#[test]
fn object_idletime_and_freq_follow_the_policy() {
    let (_dir, node) = node("object", "0", "noeviction");
    let mut con = connect(&node);
    let _: () = con.set("k", "v").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let idle: i64 = object(&mut con, "IDLETIME", "k");
    assert!(idle >= 1, "{idle}");
    // TYPE, TTL and OBJECT look without using the key; GET uses it.
    let _: String = redis::cmd("TYPE").arg("k").query(&mut con).unwrap();
    let again: i64 = object(&mut con, "IDLETIME", "k");
    assert!(again >= 1, "{again}");
    // Under CLIENT NO-TOUCH, GET leaves the key's stamp; TOUCH still touches.
    let _: () = redis::cmd("CLIENT")
        .arg("NO-TOUCH")
        .arg("ON")
        .query(&mut con)
        .unwrap();
    let _: String = con.get("k").unwrap();
    let untouched: i64 = object(&mut con, "IDLETIME", "k");
    assert!(untouched >= 1, "{untouched}");
    let touched: i64 = redis::cmd("TOUCH").arg("k").query(&mut con).unwrap();
    assert_eq!(touched, 1);
    let idle: i64 = object(&mut con, "IDLETIME", "k");
    assert_eq!(idle, 0);
    let _: () = redis::cmd("CLIENT")
        .arg("NO-TOUCH")
        .arg("OFF")
        .query(&mut con)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let _: String = con.get("k").unwrap();
    let used: i64 = object(&mut con, "IDLETIME", "k");
    assert_eq!(used, 0);
    let err = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("k")
        .query::<i64>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("An LFU maxmemory policy is not selected"),
        "{err}"
    );
    config_set(&mut con, "maxmemory-policy", "allkeys-lfu");
    let _: () = con.set("f", "v").unwrap();
    let freq: i64 = object(&mut con, "FREQ", "f");
    assert_eq!(freq, 5, "a new key starts at Redis's LFU_INIT_VAL");
    let err = redis::cmd("OBJECT")
        .arg("IDLETIME")
        .arg("f")
        .query::<i64>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("An LFU maxmemory policy is selected"),
        "{err}"
    );
    let missing: Option<i64> = object(&mut con, "FREQ", "nope");
    assert_eq!(missing, None);
}

#[test]
fn config_names_the_settings_as_redis_does_and_refuses_bad_values() {
    let (_dir, node) = node("config", "0", "noeviction");
    let mut con = connect(&node);
    let set = |con: &mut redis::Connection, name: &str, value: &str| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query::<()>(con)
    };
    let get = |con: &mut redis::Connection, name: &str| -> String {
        let pairs: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(con)
            .unwrap();
        pairs[1].clone()
    };
    set(&mut con, "maxmemory", "10mb").unwrap();
    assert_eq!(get(&mut con, "maxmemory"), "10485760");
    set(&mut con, "maxmemory", "1g").unwrap();
    assert_eq!(get(&mut con, "maxmemory"), "1000000000");
    set(&mut con, "maxmemory-policy", "VOLATILE-TTL").unwrap();
    assert_eq!(get(&mut con, "maxmemory-policy"), "volatile-ttl");
    set(&mut con, "maxmemory-samples", "10").unwrap();
    assert_eq!(get(&mut con, "maxmemory-samples"), "10");
    for (name, value) in [
        ("maxmemory", "lots"),
        ("maxmemory", "-1"),
        ("maxmemory-policy", "lru"),
        ("maxmemory-samples", "0"),
        ("lfu-decay-time", "x"),
    ] {
        let err = set(&mut con, name, value).unwrap_err();
        assert!(
            err.to_string().contains("CONFIG SET failed") && err.to_string().contains(name),
            "{name} {value}: {err}"
        );
    }
    assert_eq!(get(&mut con, "maxmemory-policy"), "volatile-ttl");
    let info: String = redis::cmd("INFO").arg("memory").query(&mut con).unwrap();
    for field in [
        "used_memory:",
        "used_memory_rss:",
        "maxmemory:1000000000",
        "maxmemory_policy:volatile-ttl",
        "mem_fragmentation_ratio:",
    ] {
        assert!(info.contains(field), "{field} in {info}");
    }
}

#[test]
fn evictions_are_announced_as_keyspace_events() {
    let (_dir, node) = node("events", "6mb", "allkeys-random");
    let mut con = connect(&node);
    config_set(&mut con, "notify-keyspace-events", "Ee");
    let mut sub = connect(&node);
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe("__keyevent@0__:evicted").unwrap();
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    fill(&mut con, "k", 12_000, 1000, None);
    let message = pubsub.get_message().expect("an evicted event");
    let key: String = message.get_payload().unwrap();
    assert!(key.starts_with("k:"), "{key}");
    assert!(!exists(&mut con, &key));
}
