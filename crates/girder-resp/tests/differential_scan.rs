//! Differential tests of the keyspace SCAN against a real Redis 7 (see `common/mod.rs`).
//! Errors and replies whose content is fixed are compared byte for byte; cursors and
//! batch sizes legitimately differ, so whole iterations are compared as sets of keys
//! (`unordered/mod.rs`). The SCAN guarantee (a key present for a whole iteration is
//! returned) is checked on both servers while keys come and go.

mod common;
mod unordered;

use common::{args, pair, Pair, Raw};
use std::collections::BTreeSet;
use unordered::{call, check_scan, R};

const REDIS_DB: &str = "8";

/// Sends the same command to both servers, ignoring the replies (setup).
fn both(p: &mut Pair, cmd: &[&str]) {
    let cmd = args(cmd);
    p.girder.call(&cmd);
    p.redis.call(&cmd);
}

/// `n` string keys `prefix0..`, set with MSETs of 1,000 keys.
fn populate(p: &mut Pair, prefix: &str, n: usize) {
    for start in (0..n).step_by(1_000) {
        let mut cmd = vec![b"MSET".to_vec()];
        for i in start..(start + 1_000).min(n) {
            cmd.push(format!("{prefix}{i}").into_bytes());
            cmd.push(b"v".to_vec());
        }
        assert_eq!(p.girder.call(&cmd), b"+OK\r\n");
        assert_eq!(p.redis.call(&cmd), b"+OK\r\n");
    }
}

/// One SCAN step on one side: the next cursor and the keys.
fn step(side: &mut Raw, cursor: &str, options: &[&str]) -> (String, Vec<Vec<u8>>) {
    let mut cmd = args(&["SCAN", cursor]);
    cmd.extend(args(options));
    let r = call(side, &cmd);
    let [next, keys] = r.items() else {
        panic!("scan reply {r:?}")
    };
    let next = String::from_utf8(next.bytes().to_vec()).unwrap();
    (
        next,
        keys.items().iter().map(|k| k.bytes().to_vec()).collect(),
    )
}

/// A whole iteration on one side: the distinct keys and the number of calls.
fn iterate(side: &mut Raw, options: &[&str]) -> (BTreeSet<Vec<u8>>, usize) {
    let (mut cursor, mut seen, mut calls) = ("0".to_owned(), BTreeSet::new(), 0);
    loop {
        let (next, keys) = step(side, &cursor, options);
        seen.extend(keys);
        calls += 1;
        if next == "0" {
            return (seen, calls);
        }
        cursor = next;
    }
}

#[test]
fn errors_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    both(&mut p, &["SET", "k", "v"]);
    p.run(&[
        &["SCAN"],
        &["SCAN", "abc"],
        &["SCAN", "1.5"],
        &["SCAN", " 1"],
        &["SCAN", "1 "],
        &["SCAN", "0x10"],
        &["SCAN", "-"],
        &["SCAN", "+"],
        &["SCAN", "--1"],
        &["SCAN", "18446744073709551616"],
        &["SCAN", "-18446744073709551616"],
        &["SCAN", "99999999999999999999999"],
        // The cursor is checked before the options.
        &["SCAN", "abc", "COUNT", "0"],
        &["SCAN", "abc", "BOGUS"],
        &["SCAN", "0", "COUNT"],
        &["SCAN", "0", "MATCH"],
        &["SCAN", "0", "TYPE"],
        &["SCAN", "0", "BOGUS"],
        &["SCAN", "0", "BOGUS", "x"],
        &["SCAN", "0", "COUNT", "0"],
        &["SCAN", "0", "COUNT", "-1"],
        &["SCAN", "0", "COUNT", "abc"],
        &["SCAN", "0", "COUNT", "007"],
        &["SCAN", "0", "COUNT", "+5"],
        &["SCAN", "0", "COUNT", "1.5"],
        &["SCAN", "0", "COUNT", "9223372036854775808"],
        &["SCAN", "0", "COUNT", "abc", "BOGUS"],
        &["SCAN", "0", "COUNT", "1", "BOGUS"],
        &["SCAN", "0", "MATCH", "*", "COUNT"],
        &["SCAN", "0", "COUNT", "0", "MATCH"],
        &["SCAN", "0", "TYPE", "string", "COUNT", "0"],
    ]);
}

#[test]
fn fixed_replies_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    // An empty database: every valid cursor ends the iteration at once.
    p.run(&[
        &["SCAN", "0"],
        &["SCAN", ""],
        &["SCAN", "+0"],
        &["SCAN", "-0"],
        &["SCAN", "00"],
        &["SCAN", "-1"],
        &["SCAN", "18446744073709551615"],
        &["SCAN", "-18446744073709551615"],
        &["SCAN", "0", "COUNT", "1", "MATCH", "x", "TYPE", "hash"],
    ]);
    // One key: one step returns it, whatever the options that keep it.
    both(&mut p, &["RPUSH", "list", "a"]);
    p.run(&[
        &["SCAN", "0"],
        &["SCAN", "0", "count", "100"],
        &["SCAN", "0", "COUNT", "9223372036854775807"],
        &["SCAN", "0", "MATCH", "l*"],
        &["SCAN", "0", "MATCH", "x*"],
        &["SCAN", "0", "TYPE", "LIST"],
        &["SCAN", "0", "TYPE", "string"],
        &["SCAN", "0", "TYPE", "nosuchtype"],
        // A repeated option: the last one wins.
        &["SCAN", "0", "MATCH", "x*", "MATCH", "l*"],
        &["SCAN", "0", "TYPE", "list", "TYPE", "set"],
        &["SCAN", "0", "COUNT", "1", "COUNT", "100"],
    ]);
}

#[test]
fn full_iterations_return_the_same_keys_as_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    populate(&mut p, "str:", 300);
    for i in 0..60 {
        let key = |kind: &str| format!("{kind}:{i}");
        both(&mut p, &["RPUSH", &key("list"), "a", "b"]);
        both(&mut p, &["SADD", &key("set"), "m"]);
        both(&mut p, &["HSET", &key("hash"), "f", "v"]);
        both(&mut p, &["ZADD", &key("zset"), "1", "m"]);
    }
    both(&mut p, &["SET", "weird[key]*?", "v"]);
    // Expired keys are never returned.
    for i in 0..20 {
        both(&mut p, &["SET", &format!("doomed:{i}"), "v", "PX", "1"]);
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let options: &[&[&str]] = &[
        &[],
        &["COUNT", "1"],
        &["COUNT", "3"],
        &["COUNT", "1000"],
        &["MATCH", "*"],
        &["MATCH", "str:1*"],
        &["MATCH", "*:[1-3]?"],
        &["MATCH", "weird\\[*"],
        &["MATCH", "doomed:*"],
        &["MATCH", "nothing*", "COUNT", "7"],
        &["TYPE", "string"],
        &["TYPE", "LIST"],
        &["TYPE", "set"],
        &["TYPE", "hash"],
        &["TYPE", "zset"],
        &["TYPE", "stream"],
        &["TYPE", "nosuchtype"],
        &["MATCH", "*1*", "TYPE", "hash", "COUNT", "5"],
    ];
    for opts in options {
        check_scan(&mut p, &["SCAN"], opts, 1);
    }
}

#[test]
fn keys_present_throughout_are_returned_while_others_come_and_go() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    populate(&mut p, "stable:", 2_000);
    populate(&mut p, "gone:", 2_000);
    for side in [&mut p.girder, &mut p.redis] {
        let (mut cursor, mut seen, mut calls) = ("0".to_owned(), BTreeSet::new(), 0);
        loop {
            let (next, keys) = step(side, &cursor, &["COUNT", "20"]);
            seen.extend(keys);
            // Between steps, delete 30 keys and add 60: the keyspace grows (Redis's
            // table rehashes) while the stable keys stay put.
            let mut add = vec![b"MSET".to_vec()];
            let mut del = vec![b"DEL".to_vec()];
            for i in 0..60 {
                add.push(format!("new:{calls}:{i}").into_bytes());
                add.push(b"v".to_vec());
            }
            for i in 0..30 {
                del.push(format!("gone:{}", calls * 30 + i).into_bytes());
            }
            side.call(&add);
            side.call(&del);
            calls += 1;
            if next == "0" {
                break;
            }
            cursor = next;
        }
        let missing: Vec<usize> = (0..2_000)
            .filter(|i| !seen.contains(format!("stable:{i}").as_bytes()))
            .collect();
        assert!(
            missing.is_empty(),
            "stable keys never returned: {missing:?}"
        );
    }
}

#[test]
fn a_hundred_thousand_keys_in_a_bounded_number_of_calls() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let n = 100_000;
    populate(&mut p, "key:", n);
    let (redis_keys, _) = iterate(&mut p.redis, &["COUNT", "1000"]);
    assert_eq!(redis_keys.len(), n);
    for (count, most_calls) in [(10, 64 * 64), (1_000, 2 * n / 1_000 + 64), (1_000_000, 1)] {
        let (keys, calls) = iterate(&mut p.girder, &["COUNT", &count.to_string()]);
        assert!(keys == redis_keys, "COUNT {count}: not the keys Redis has");
        assert!(calls <= most_calls, "COUNT {count}: {calls} calls");
    }
    // Each step returns about COUNT keys: the iteration is not one key per call nor
    // everything at once.
    let (next, keys) = step(&mut p.girder, "0", &["COUNT", "1000"]);
    assert_ne!(next, "0");
    assert!((500..2_000).contains(&keys.len()), "{} keys", keys.len());
    let r = call(&mut p.girder, &args(&["DBSIZE"]));
    assert_eq!(r, R::Line(format!(":{n}").into_bytes()));
}
