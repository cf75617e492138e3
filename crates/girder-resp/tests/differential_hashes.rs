//! Differential tests of the hash commands against a real Redis 7 (see `common/mod.rs`).
//! Replies whose order Redis leaves unspecified (HGETALL, HKEYS, HVALS) are compared
//! sorted; random ones (HRANDFIELD) by shape, size and membership; HSCAN by the union
//! of a full iteration (`unordered/mod.rs`).

mod common;
mod unordered;

use common::{args, pair, Pair};
use proptest::prelude::*;
use unordered::{check_random, check_scan, check_unordered, redis_fields, Universe};

const REDIS_DB: &str = "10";

/// Sends `cmd`, comparing as the command requires.
fn check(p: &mut Pair, cmd: &[&str]) {
    let argv = args(cmd);
    match cmd[0].to_ascii_uppercase().as_str() {
        "HGETALL" => {
            check_unordered(p, &argv, 2);
        }
        "HKEYS" | "HVALS" => {
            check_unordered(p, &argv, 1);
        }
        "HRANDFIELD" => {
            let universe = Universe::Fields(redis_fields(p, cmd[1]));
            let count = cmd.get(2).and_then(|c| c.parse::<i64>().ok());
            let with_values = cmd.len() == 4;
            check_random(
                p,
                &argv,
                &universe,
                count.is_some_and(|c| c >= 0),
                with_values,
            );
        }
        _ => {
            p.check(&argv);
        }
    }
}

fn run(p: &mut Pair, script: &[&[&str]]) {
    for cmd in script {
        check(p, cmd);
    }
}

#[test]
fn set_get_delete() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    run(
        &mut p,
        &[
            &["HSET", "h", "a", "1"],
            &["HSET", "h", "a", "2", "b", "3", "a", "4"],
            &["HGET", "h", "a"],
            &["HGET", "h", "nope"],
            &["HGET", "nope", "a"],
            &["HSET", "h"],
            &["HSET", "h", "a"],
            &["HSET", "h", "a", "1", "b"],
            &["HMSET", "h", "c", "5", "d", ""],
            &["HMSET", "h", "c"],
            &["HMSET", "h", "c", "1", "d"],
            &["HSETNX", "h", "a", "x"],
            &["HSETNX", "h", "e", "x"],
            &["HSETNX", "h", "e"],
            &["HMGET", "h", "a", "nope", "d", "a"],
            &["HMGET", "nope", "a", "b"],
            &["HMGET", "h"],
            &["HEXISTS", "h", "a"],
            &["HEXISTS", "h", "nope"],
            &["HEXISTS", "nope", "a"],
            &["HLEN", "h"],
            &["HLEN", "nope"],
            &["HSTRLEN", "h", "a"],
            &["HSTRLEN", "h", "d"],
            &["HSTRLEN", "h", "nope"],
            &["HSTRLEN", "nope", "a"],
            &["HGETALL", "h"],
            &["HKEYS", "h"],
            &["HVALS", "h"],
            &["HGETALL", "nope"],
            &["HKEYS", "nope"],
            &["HVALS", "nope"],
            &["HDEL", "h", "a", "a", "nope"],
            &["HDEL", "h"],
            &["HDEL", "nope", "a"],
            &["EXPIRE", "h", "100"],
            &["HSET", "h", "z", "9"],
            &["HDEL", "h", "z"],
            &["TTL", "h"],
            &["HDEL", "h", "b", "c", "d", "e"],
            &["EXISTS", "h"],
            &["TYPE", "h"],
            &["HSET", "h", "", ""],
            &["HGET", "h", ""],
            &["HSTRLEN", "h", ""],
            &["TYPE", "h"],
            &["HGET", "h"],
            &["HLEN"],
            &["HGETALL", "h", "x"],
        ],
    );
}

#[test]
fn small_hashes_keep_redis_order() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    // A listpack keeps insertion order, and so does Girder's compact form: raw replies
    // are identical.
    p.run(&[
        &["HSET", "h", "c", "1", "a", "2", "b", "3"],
        &["HDEL", "h", "a"],
        &["HSET", "h", "a", "4", "c", "5"],
        &["HGETALL", "h"],
        &["HKEYS", "h"],
        &["HVALS", "h"],
        &["HSCAN", "h", "0"],
        &["HSCAN", "h", "0", "MATCH", "[ab]"],
        &["OBJECT", "ENCODING", "h"],
    ]);
}

#[test]
fn wrong_type() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[&["SET", "s", "x"]]);
    for cmd in [
        &["HSET", "s", "a", "1"][..],
        &["HMSET", "s", "a", "1"],
        &["HSETNX", "s", "a", "1"],
        &["HGET", "s", "a"],
        &["HMGET", "s", "a"],
        &["HDEL", "s", "a"],
        &["HEXISTS", "s", "a"],
        &["HLEN", "s"],
        &["HSTRLEN", "s", "a"],
        &["HGETALL", "s"],
        &["HKEYS", "s"],
        &["HVALS", "s"],
        &["HINCRBY", "s", "a", "1"],
        &["HINCRBYFLOAT", "s", "a", "1"],
        &["HRANDFIELD", "s"],
        &["HRANDFIELD", "s", "2"],
        &["HRANDFIELD", "s", "-2", "WITHVALUES"],
        &["HSCAN", "s", "0"],
        &["HSCAN", "s", "0", "COUNT", "0"],
        &["HSCAN", "s", "x"],
        &["GET", "s"],
    ] {
        check(&mut p, cmd);
    }
}

#[test]
fn counters() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    run(
        &mut p,
        &[
            &["HINCRBY", "h", "n", "5"],
            &["HINCRBY", "h", "n", "-7"],
            &["HINCRBY", "h", "n", "abc"],
            &["HINCRBY", "h", "n", "1.5"],
            &["HINCRBY", "h", "n", "+1"],
            &["HINCRBY", "h", "n", "-0"],
            &["HINCRBY", "h", "n", "01"],
            &["HINCRBY", "h", "n", "9223372036854775808"],
            &["HINCRBY", "h", "n", ""],
            &[
                "HSET",
                "h",
                "max",
                "9223372036854775807",
                "min",
                "-9223372036854775808",
            ],
            &["HINCRBY", "h", "max", "1"],
            &["HINCRBY", "h", "max", "0"],
            &["HINCRBY", "h", "min", "-1"],
            &["HINCRBY", "h", "min", "9223372036854775807"],
            &[
                "HSET", "h", "t", "abc", "z", "007", "neg", "-0", "sp", " 1", "f", "1.5",
            ],
            &["HINCRBY", "h", "t", "1"],
            &["HINCRBY", "h", "z", "1"],
            &["HINCRBY", "h", "neg", "1"],
            &["HINCRBY", "h", "sp", "1"],
            &["HINCRBY", "h", "f", "1"],
            &["HINCRBY", "h", "n"],
            &["HINCRBY", "fresh", "f", "0"],
            &["HGETALL", "fresh"],
            &["HINCRBYFLOAT", "h", "f", "1"],
            &["HINCRBYFLOAT", "h", "f", "-0.25"],
            &["HINCRBYFLOAT", "h", "f", "1e3"],
            &["HINCRBYFLOAT", "h", "f", "5.0e-1"],
            &["HINCRBYFLOAT", "h", "f", ".5"],
            &["HINCRBYFLOAT", "h", "f", "5."],
            &["HINCRBYFLOAT", "h", "f", "+3"],
            &["HINCRBYFLOAT", "h", "f", "abc"],
            &["HINCRBYFLOAT", "h", "f", ""],
            &["HINCRBYFLOAT", "h", "f", "1.5x"],
            &["HINCRBYFLOAT", "h", "f", " 1"],
            &["HINCRBYFLOAT", "h", "f", "nan"],
            &["HINCRBYFLOAT", "h", "f", "inf"],
            &["HINCRBYFLOAT", "h", "f", "-inf"],
            &["HINCRBYFLOAT", "h", "z", "1"],
            &["HINCRBYFLOAT", "h", "n", "0.5"],
            &["HINCRBYFLOAT", "h", "t", "1"],
            &["HINCRBYFLOAT", "h", "sp", "1"],
            &["HINCRBYFLOAT", "h", "neg", "-0"],
            &["HINCRBYFLOAT", "h", "tiny", "1e-20"],
            &["HINCRBYFLOAT", "h", "tiny2", "-1e-20"],
            &["HINCRBYFLOAT", "h", "frac", "12345678.125"],
            &["HSET", "h", "e", "1e3", "i", "inf"],
            &["HINCRBYFLOAT", "h", "e", "1"],
            &["HINCRBY", "h", "e", "1"],
            &["HINCRBYFLOAT", "h", "i", "1"],
            &["HINCRBYFLOAT", "h", "f"],
            &["HGETALL", "h"],
            &["OBJECT", "ENCODING", "h"],
        ],
    );
}

#[test]
fn encodings() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let long = "f".repeat(65);
    let edge = "e".repeat(64);
    let mut many = vec!["HSET", "big"];
    let fields: Vec<String> = (0..513).map(|i| format!("f{i}")).collect();
    for f in &fields[..512] {
        many.push(f);
        many.push("v");
    }
    run(
        &mut p,
        &[
            &["HSET", "edge", &edge, &edge],
            &["OBJECT", "ENCODING", "edge"],
            &["HSET", "edge", "x", &long],
            &["OBJECT", "ENCODING", "edge"],
            &["HDEL", "edge", "x"],
            &["OBJECT", "ENCODING", "edge"],
            &["HINCRBY", "lf", &long, "1"],
            &["OBJECT", "ENCODING", "lf"],
            &["HSET", "nx", "a", "1"],
            &["HSETNX", "nx", "a", &long],
            &["OBJECT", "ENCODING", "nx"],
            &["HSET", "fl", "a", "1"],
            &["HINCRBYFLOAT", "fl", &long, "1.5"],
            &["OBJECT", "ENCODING", "fl"],
            &many,
            &["OBJECT", "ENCODING", "big"],
            &["HSET", "big", &fields[512], "v"],
            &["OBJECT", "ENCODING", "big"],
            &["HLEN", "big"],
            &["HGETALL", "big"],
            &["HKEYS", "big"],
            &["HVALS", "big"],
            &["HDEL", "big", "f1", "f2"],
            &["OBJECT", "ENCODING", "big"],
            &["HMGET", "big", "f0", "f1", "f512"],
        ],
    );
}

#[test]
fn random_fields() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let mut big = vec!["HSET".to_owned(), "big".to_owned()];
    for i in 0..600 {
        big.push(format!("f{i}"));
        big.push(format!("v{i}"));
    }
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    run(
        &mut p,
        &[&["HSET", "h", "a", "1", "b", "2", "c", "3"], &big],
    );
    for key in ["h", "big", "nope"] {
        for tail in [
            &[][..],
            &["1"],
            &["2"],
            &["3"],
            &["5"],
            &["100"],
            &["599"],
            &["600"],
            &["1000"],
            &["0"],
            &["-1"],
            &["-5"],
            &["-1000"],
            &["2", "WITHVALUES"],
            &["-4", "withvalues"],
            &["1000", "WITHVALUES"],
            &["0", "WITHVALUES"],
            &["x"],
            &["1.5"],
            &["-9223372036854775808"],
            &["9223372036854775807", "WITHVALUES"],
            &["-4611686018427387904", "WITHVALUES"],
            &["x", "FOO"],
            &["2", "FOO"],
            &["2", "WITHVALUES", "x"],
        ] {
            let mut cmd = vec!["HRANDFIELD", key];
            cmd.extend_from_slice(tail);
            check(&mut p, &cmd);
        }
    }
    // RESP3: WITHVALUES gives [field, value] pairs.
    for side in [&mut p.girder, &mut p.redis] {
        side.call(&args(&["HELLO", "3"]));
    }
    for tail in [
        &["2", "WITHVALUES"][..],
        &["-3", "WITHVALUES"],
        &["10", "WITHVALUES"],
    ] {
        let mut cmd = vec!["HRANDFIELD", "h"];
        cmd.extend_from_slice(tail);
        check(&mut p, &cmd);
    }
    p.run(&[&["HRANDFIELD", "nope"], &["HGET", "h", "nope"]]);
    check_unordered(&mut p, &args(&["HGETALL", "h"]), 2);
}

#[test]
fn scan() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let mut big = vec!["HSET".to_owned(), "big".to_owned()];
    for i in 0..600 {
        big.push(format!("f{i}"));
        big.push(format!("v{i}"));
    }
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    p.run(&[
        &["HSET", "h", "a", "1", "b", "2", "ab", "3"],
        &big,
        &["SET", "s", "x"],
    ]);
    p.run(&[
        &["HSCAN", "h", "0"],
        &["HSCAN", "h", "0", "MATCH", "a*"],
        &["HSCAN", "h", "0", "match", "*"],
        &["HSCAN", "h", "0", "COUNT", "1"],
        &["HSCAN", "h", "0", "COUNT", "1", "MATCH", "b", "COUNT", "5"],
        &["HSCAN", "h", "123"],
        &["HSCAN", "h", "-1"],
        &["HSCAN", "h", "+5"],
        &["HSCAN", "h", ""],
        &["HSCAN", "h", " 5"],
        &["HSCAN", "h", "5x"],
        &["HSCAN", "h", "18446744073709551615"],
        &["HSCAN", "h", "18446744073709551616"],
        &["HSCAN", "h", "0", "COUNT", "0"],
        &["HSCAN", "h", "0", "COUNT", "-1"],
        &["HSCAN", "h", "0", "COUNT", "x"],
        &["HSCAN", "h", "0", "COUNT"],
        &["HSCAN", "h", "0", "MATCH"],
        &["HSCAN", "h", "0", "TYPE", "string"],
        &["HSCAN", "h", "0", "BOGUS", "1"],
        &["HSCAN", "nope", "0", "BOGUS"],
        &["HSCAN", "nope", "0", "COUNT", "0"],
        &["HSCAN", "nope", "x"],
        &["HSCAN", "s", "0", "COUNT", "0"],
        &["HSCAN", "h"],
    ]);
    for options in [
        &[][..],
        &["COUNT", "1"],
        &["COUNT", "7"],
        &["COUNT", "1000"],
        &["MATCH", "f1*"],
        &["MATCH", "f1?", "COUNT", "3"],
        &["MATCH", "nothing"],
    ] {
        check_scan(&mut p, &["HSCAN", "big"], options, 2);
        check_scan(&mut p, &["HSCAN", "h"], options, 2);
    }
}

/// Girder alone: fields present for a whole HSCAN are returned even when others come and
/// go between the calls.
#[test]
fn scan_under_churn() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let mut big = vec!["HSET".to_owned(), "big".to_owned()];
    for i in 0..600 {
        big.push(format!("f{i}"));
        big.push("v".to_owned());
    }
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    p.girder.call(&args(&big));
    assert_eq!(
        p.girder.call(&args(&["OBJECT", "ENCODING", "big"])),
        b"$9\r\nhashtable\r\n"
    );
    let mut cursor = "0".to_owned();
    let mut seen = std::collections::BTreeSet::new();
    let mut step = 0;
    loop {
        let r = unordered::call(
            &mut p.girder,
            &args(&["HSCAN", "big", &cursor, "COUNT", "9"]),
        );
        let [next, items] = r.items() else { panic!() };
        seen.extend(items.items().chunks(2).map(|c| c[0].bytes().to_vec()));
        // Delete the highest fields, add new ones.
        p.girder
            .call(&args(&["HDEL", "big", &format!("f{}", 599 - step)]));
        p.girder
            .call(&args(&["HSET", "big", &format!("n{step}"), "v"]));
        step += 1;
        cursor = String::from_utf8(next.bytes().to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    for i in 0..600 - step {
        assert!(seen.contains(format!("f{i}").as_bytes()), "f{i} missed");
    }
}

fn command() -> impl Strategy<Value = Vec<String>> {
    let key = prop_oneof![Just("h1"), Just("h2"), Just("s")];
    let field = prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("c".to_owned()),
        Just("".to_owned()),
        Just("f".repeat(65)),
        (0u16..530).prop_map(|i| format!("f{i}")),
    ];
    let value = prop_oneof![
        Just("1".to_owned()),
        Just("-3".to_owned()),
        Just("007".to_owned()),
        Just("abc".to_owned()),
        Just("2.5".to_owned()),
        Just("".to_owned()),
        Just("v".repeat(65)),
    ];
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    prop_oneof![
        (
            key.clone(),
            prop::collection::vec((field.clone(), value.clone()), 1..4)
        )
            .prop_map(|(k, pairs)| {
                let mut c = vec!["HSET".to_owned(), k.to_owned()];
                for (f, v) in pairs {
                    c.push(f);
                    c.push(v);
                }
                c
            }),
        (key.clone(), prop_oneof![Just(3usize), Just(520)]).prop_map(move |(k, n)| {
            let mut c = vec!["HMSET".to_owned(), k.to_owned()];
            for i in 0..n {
                c.push(format!("f{i}"));
                c.push(format!("{i}"));
            }
            c
        }),
        (key.clone(), field.clone(), value.clone()).prop_map(|(k, f, v)| vec![
            "HSETNX".into(),
            k.into(),
            f,
            v
        ]),
        (key.clone(), field.clone()).prop_map(|(k, f)| vec!["HGET".into(), k.into(), f]),
        (key.clone(), prop::collection::vec(field.clone(), 1..4)).prop_map(|(k, fs)| {
            let mut c = vec!["HMGET".to_owned(), k.to_owned()];
            c.extend(fs);
            c
        }),
        (key.clone(), prop::collection::vec(field.clone(), 1..4)).prop_map(|(k, fs)| {
            let mut c = vec!["HDEL".to_owned(), k.to_owned()];
            c.extend(fs);
            c
        }),
        (key.clone(), field.clone()).prop_map(|(k, f)| vec!["HEXISTS".into(), k.into(), f]),
        (key.clone(), field.clone()).prop_map(|(k, f)| vec!["HSTRLEN".into(), k.into(), f]),
        key.clone().prop_map(move |k| s(&["HLEN", k])),
        key.clone().prop_map(move |k| s(&["HGETALL", k])),
        key.clone().prop_map(move |k| s(&["HKEYS", k])),
        key.clone().prop_map(move |k| s(&["HVALS", k])),
        key.clone().prop_map(move |k| s(&["OBJECT", "ENCODING", k])),
        (
            key.clone(),
            field.clone(),
            prop_oneof![
                Just("1"),
                Just("-2"),
                Just("x"),
                Just("9223372036854775807")
            ]
        )
            .prop_map(|(k, f, d)| vec!["HINCRBY".into(), k.into(), f, d.into()]),
        (
            key.clone(),
            field.clone(),
            prop_oneof![
                Just("1"),
                Just("-1"),
                Just("0.5"),
                Just("-2.25"),
                Just("1e3"),
                Just("x")
            ]
        )
            .prop_map(|(k, f, d)| vec!["HINCRBYFLOAT".into(), k.into(), f, d.into()]),
        (
            key.clone(),
            prop_oneof![
                Just(vec![]),
                Just(vec!["2"]),
                Just(vec!["-3"]),
                Just(vec!["200"]),
                Just(vec!["3", "WITHVALUES"]),
                Just(vec!["-2", "WITHVALUES"])
            ]
        )
            .prop_map(|(k, tail)| {
                let mut c = vec!["HRANDFIELD".to_owned(), k.to_owned()];
                c.extend(tail.into_iter().map(str::to_owned));
                c
            }),
        (
            key.clone(),
            prop_oneof![
                Just(vec![]),
                Just(vec!["COUNT", "5"]),
                Just(vec!["MATCH", "f1*"])
            ]
        )
            .prop_map(|(k, tail)| {
                let mut c = vec!["SCAN-ALL".to_owned(), k.to_owned()];
                c.extend(tail.into_iter().map(str::to_owned));
                c
            }),
        key.clone().prop_map(move |k| s(&["DEL", k])),
        key.clone().prop_map(move |k| s(&["EXPIRE", k, "100"])),
        key.prop_map(move |k| s(&["TTL", k])),
        Just(s(&["SET", "s", "x"])),
    ]
}

/// Whether an HINCRBYFLOAT compares exactly: the field's current value must be a number
/// both f64 and long double hold exactly (the increments generated are all exact).
fn exact_float(p: &mut Pair, key: &str, field: &str) -> bool {
    let current = unordered::call(&mut p.redis, &args(&["HGET", key, field]));
    match current {
        unordered::R::Bulk(Some(b)) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .is_none_or(|v| (v * 4.0).fract() == 0.0 && v.abs() < 1e12),
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Generated sequences of hash commands give the same replies and leave the same
    /// hashes behind.
    #[test]
    fn generated_sequences_match_redis(cmds in prop::collection::vec(command(), 1..40)) {
        let Some(mut p) = pair(REDIS_DB) else { return Ok(()) };
        for cmd in &cmds {
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            match cmd[0] {
                "SCAN-ALL" => check_scan(&mut p, &["HSCAN", cmd[1]], &cmd[2..], 2),
                "HINCRBYFLOAT" if !exact_float(&mut p, cmd[1], cmd[2]) => {}
                _ => check(&mut p, &cmd),
            }
        }
        for key in ["h1", "h2", "s"] {
            check(&mut p, &["HGETALL", key]);
            check(&mut p, &["TYPE", key]);
            check(&mut p, &["TTL", key]);
            check(&mut p, &["OBJECT", "ENCODING", key]);
        }
    }
}
