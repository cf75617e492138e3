//! Differential tests of the set commands against a real Redis 7 (see `common/mod.rs`).
//! Replies whose order Redis leaves unspecified (SMEMBERS, SINTER, SUNION, SDIFF) are
//! compared sorted; random ones (SRANDMEMBER, SPOP) by shape, size and membership, after
//! which a SPOP's differing choices are undone on Girder's side so both hold the same
//! set again; SSCAN by the union of a full iteration (`unordered/mod.rs`).

mod common;
mod unordered;

use common::{args, pair, Pair};
use proptest::prelude::*;
use unordered::{check_random, check_scan, check_unordered, redis_members, Universe, R};

const REDIS_DB: &str = "11";

/// Sends `cmd`, comparing as the command requires.
fn check(p: &mut Pair, cmd: &[&str]) {
    let argv = args(cmd);
    let name = cmd[0].to_ascii_uppercase();
    match name.as_str() {
        _ if cmd.len() < 2 => {
            p.check(&argv);
        }
        "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF" => {
            check_unordered(p, &argv, 1);
        }
        "SRANDMEMBER" => {
            let universe = Universe::Members(redis_members(p, cmd[1]));
            let distinct = cmd
                .get(2)
                .and_then(|c| c.parse::<i64>().ok())
                .is_some_and(|c| c >= 0);
            check_random(p, &argv, &universe, distinct, false);
        }
        "SPOP" => spop(p, cmd),
        _ => {
            p.check(&argv);
        }
    }
}

/// SPOP picks at random: check the replies, then make Girder's set equal to Redis's by
/// putting back what Girder popped and removing what Redis popped.
fn spop(p: &mut Pair, cmd: &[&str]) {
    let universe = Universe::Members(redis_members(p, cmd[1]));
    let (g, r) = check_random(p, &args(cmd), &universe, true, false);
    let popped = |reply: &R| -> Vec<Vec<u8>> {
        match reply {
            R::Bulk(Some(b)) => vec![b.clone()],
            R::Agg(_, Some(items)) => items.iter().map(|m| m.bytes().to_vec()).collect(),
            _ => Vec::new(),
        }
    };
    let (mine, theirs) = (popped(&g), popped(&r));
    if mine != theirs && !mine.is_empty() {
        let key = cmd[1].as_bytes().to_vec();
        let mut add = vec![b"SADD".to_vec(), key.clone()];
        add.extend(mine);
        p.girder.call(&add);
        let mut rem = vec![b"SREM".to_vec(), key];
        rem.extend(theirs);
        p.girder.call(&rem);
    }
    check_unordered(p, &args(&["SMEMBERS", cmd[1]]), 1);
    p.check(&args(&["OBJECT", "ENCODING", cmd[1]]));
}

fn run(p: &mut Pair, script: &[&[&str]]) {
    for cmd in script {
        check(p, cmd);
    }
}

#[test]
fn add_remove_members() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    run(
        &mut p,
        &[
            &["SADD", "s", "b", "a", "c", "a"],
            &["SADD", "s", "a"],
            &["SADD", "s"],
            &["SMEMBERS", "s"],
            &["SMEMBERS", "nope"],
            &["SISMEMBER", "s", "a"],
            &["SISMEMBER", "s", "z"],
            &["SISMEMBER", "nope", "a"],
            &["SMISMEMBER", "s", "a", "z", "a", ""],
            &["SMISMEMBER", "nope", "a", "b"],
            &["SMISMEMBER", "s"],
            &["SCARD", "s"],
            &["SCARD", "nope"],
            &["SREM", "s", "a", "a", "z"],
            &["SREM", "s"],
            &["SREM", "nope", "a"],
            &["EXPIRE", "s", "100"],
            &["SADD", "s", "d"],
            &["SREM", "s", "d"],
            &["TTL", "s"],
            &["SREM", "s", "b", "c"],
            &["EXISTS", "s"],
            &["SADD", "s", ""],
            &["SISMEMBER", "s", ""],
            &["TYPE", "s"],
            &["SCARD", "s", "x"],
            &["SISMEMBER", "s"],
        ],
    );
}

#[test]
fn intsets_keep_redis_order() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    // An intset is sorted, and so is Girder's: raw replies are identical.
    p.run(&[
        &[
            "SADD",
            "i",
            "10",
            "-3",
            "7",
            "0",
            "9223372036854775807",
            "-9223372036854775808",
        ],
        &["SMEMBERS", "i"],
        &["SSCAN", "i", "0"],
        &["SSCAN", "i", "0", "MATCH", "*7"],
        &["OBJECT", "ENCODING", "i"],
        &["SREM", "i", "7"],
        &["SMEMBERS", "i"],
        &["SADD", "j", "3", "1"],
        &["SINTER", "i", "j"],
    ]);
}

#[test]
fn wrong_type() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[&["SET", "str", "x"], &["SADD", "s", "a", "b"]]);
    for cmd in [
        &["SADD", "str", "a"][..],
        &["SREM", "str", "a"],
        &["SMEMBERS", "str"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SCARD", "str"],
        &["SPOP", "str"],
        &["SPOP", "str", "2"],
        &["SPOP", "str", "0"],
        &["SRANDMEMBER", "str"],
        &["SRANDMEMBER", "str", "-2"],
        &["SMOVE", "str", "s", "a"],
        &["SMOVE", "s", "str", "a"],
        &["SMOVE", "nope", "str", "a"],
        &["SINTER", "s", "str"],
        &["SINTER", "nope", "str"],
        &["SUNION", "nope", "str"],
        &["SDIFF", "nope", "str"],
        &["SDIFF", "str", "s"],
        &["SINTERCARD", "1", "str"],
        &["SINTERCARD", "2", "nope", "str"],
        &["SINTERSTORE", "d", "nope", "str"],
        &["SUNIONSTORE", "d", "s", "str"],
        &["SDIFFSTORE", "d", "s", "str"],
        &["SSCAN", "str", "0"],
        &["SSCAN", "str", "0", "COUNT", "x"],
        &["SSCAN", "str", "x"],
        &["SMEMBERS", "s"],
        // A store replaces a value of any type.
        &["SINTERSTORE", "str", "s"],
        &["TYPE", "str"],
    ] {
        check(&mut p, cmd);
    }
}

#[test]
fn algebra() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    run(
        &mut p,
        &[
            &["SADD", "a", "1", "2", "3", "x", "y"],
            &["SADD", "b", "2", "3", "4", "y"],
            &["SADD", "c", "3", "y", "z"],
            &["SADD", "i", "1", "2", "3"],
            &["SINTER", "a"],
            &["SINTER", "a", "b"],
            &["SINTER", "a", "b", "c"],
            &["SINTER", "a", "a"],
            &["SINTER", "a", "nope"],
            &["SINTER", "nope"],
            &["SUNION", "a", "b", "c", "nope"],
            &["SUNION", "nope"],
            &["SUNION", "a", "a"],
            &["SDIFF", "a", "b"],
            &["SDIFF", "a", "b", "c"],
            &["SDIFF", "a", "nope"],
            &["SDIFF", "nope", "a"],
            &["SDIFF", "a", "a"],
            &["SDIFF", "b", "i", "c"],
            &["SINTERCARD", "2", "a", "b"],
            &["SINTERCARD", "3", "a", "b", "c"],
            &["SINTERCARD", "1", "nope"],
            &["SINTERCARD", "2", "a", "b", "LIMIT", "1"],
            &["SINTERCARD", "2", "a", "b", "LIMIT", "0"],
            &["SINTERCARD", "2", "a", "b", "LIMIT", "100"],
            &["SINTERCARD", "2", "a", "b", "limit", "1", "LIMIT", "5"],
            &["SINTERCARD", "2", "a", "b", "LIMIT"],
            &["SINTERCARD", "2", "a", "b", "LIMIT", "-1"],
            &["SINTERCARD", "2", "a", "b", "LIMIT", "x"],
            &["SINTERCARD", "2", "a", "b", "FOO", "1"],
            &["SINTERCARD", "0", "a"],
            &["SINTERCARD", "-1", "a"],
            &["SINTERCARD", "x", "a"],
            &["SINTERCARD", "3", "a", "b"],
            &["SINTERCARD", "1"],
            &["SINTERSTORE", "d", "a", "b"],
            &["SMEMBERS", "d"],
            &["OBJECT", "ENCODING", "d"],
            &["SINTERSTORE", "d", "a", "i"],
            &["OBJECT", "ENCODING", "d"],
            &["EXPIRE", "d", "100"],
            &["SUNIONSTORE", "d", "a", "b"],
            &["TTL", "d"],
            &["SMEMBERS", "d"],
            &["SDIFFSTORE", "d", "a", "b"],
            &["SMEMBERS", "d"],
            &["SDIFFSTORE", "a", "a", "c"],
            &["SMEMBERS", "a"],
            &["SINTERSTORE", "d", "a", "nope"],
            &["EXISTS", "d"],
            &["SET", "str", "v"],
            &["SUNIONSTORE", "str", "b"],
            &["TYPE", "str"],
            &["SDIFFSTORE", "str", "nope"],
            &["EXISTS", "str"],
            &["SUNIONSTORE", "d"],
            &["SINTER"],
        ],
    );
}

#[test]
fn smove() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    run(
        &mut p,
        &[
            &["SADD", "a", "1", "x"],
            &["SADD", "b", "2"],
            &["SMOVE", "a", "b", "1"],
            &["SMOVE", "a", "b", "nope"],
            &["SMOVE", "nope", "b", "1"],
            &["SMOVE", "a", "a", "x"],
            &["SMOVE", "a", "a", "nope"],
            &["SMOVE", "b", "a", "1"],
            &["EXPIRE", "b", "100"],
            &["SMOVE", "a", "b", "1"],
            &["TTL", "b"],
            &["SMOVE", "a", "fresh", "x"],
            &["EXISTS", "a"],
            &["OBJECT", "ENCODING", "fresh"],
            &["SMOVE", "b", "fresh2", "2"],
            &["OBJECT", "ENCODING", "fresh2"],
            &["SMEMBERS", "b"],
            &["SMEMBERS", "fresh"],
            &["SMOVE", "b", "fresh"],
        ],
    );
}

#[test]
fn encodings() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let ints: Vec<String> = (0..513).map(|i| (i * 7 - 1000).to_string()).collect();
    let mut many = vec!["SADD", "big"];
    many.extend(ints[..512].iter().map(String::as_str));
    run(
        &mut p,
        &[
            &["SADD", "s", "1", "-0"],
            &["OBJECT", "ENCODING", "s"],
            &["SADD", "t", "1", "007"],
            &["OBJECT", "ENCODING", "t"],
            &["SADD", "u", "1", "+1"],
            &["OBJECT", "ENCODING", "u"],
            &["SADD", "v", "1", "9223372036854775808"],
            &["OBJECT", "ENCODING", "v"],
            &["SADD", "w", "1", "a"],
            &["SREM", "w", "a"],
            &["OBJECT", "ENCODING", "w"],
            &many,
            &["OBJECT", "ENCODING", "big"],
            &["SMEMBERS", "big"],
            &["SADD", "big", &ints[512]],
            &["OBJECT", "ENCODING", "big"],
            &["SCARD", "big"],
            &["SMEMBERS", "big"],
            &["SINTERSTORE", "d", "big", "big"],
            &["OBJECT", "ENCODING", "d"],
            &["SREM", "d", "-1000"],
            &["OBJECT", "ENCODING", "d"],
            &["SUNIONSTORE", "d2", "s", "t"],
            &["OBJECT", "ENCODING", "d2"],
            &["SDIFFSTORE", "d3", "t", "w"],
            &["OBJECT", "ENCODING", "d3"],
        ],
    );
}

#[test]
fn random_members() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let strs: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let mut big = vec!["SADD", "big"];
    big.extend(strs.iter().map(String::as_str));
    run(
        &mut p,
        &[
            &["SADD", "i", "1", "2", "3"],
            &["SADD", "s", "a", "b", "c", "d"],
            &big,
        ],
    );
    for key in ["i", "s", "big", "nope"] {
        for tail in [
            &[][..],
            &["1"],
            &["2"],
            &["4"],
            &["100"],
            &["299"],
            &["1000"],
            &["0"],
            &["-1"],
            &["-7"],
            &["-1000"],
            &["x"],
            &["1.5"],
            &["-9223372036854775808"],
            &["1", "2"],
        ] {
            let mut cmd = vec!["SRANDMEMBER", key];
            cmd.extend_from_slice(tail);
            check(&mut p, &cmd);
        }
    }
    for cmd in [
        &["SPOP", "nope"][..],
        &["SPOP", "nope", "3"],
        &["SPOP", "s", "0"],
        &["SPOP", "s", "-1"],
        &["SPOP", "s", "x"],
        &["SPOP", "s", "1", "2"],
        &["SPOP", "s"],
        &["SPOP", "s", "2"],
        &["SPOP", "s", "5"],
        &["EXISTS", "s"],
        &["SPOP", "i", "1"],
        &["SPOP", "i", "2"],
        &["EXISTS", "i"],
        &["SPOP", "big", "10"],
        &["SPOP", "big", "200"],
        &["SPOP", "big"],
        &["SPOP", "big", "89"],
        &["SPOP", "big", "1000"],
        &["EXISTS", "big"],
        &["SPOP"],
    ] {
        check(&mut p, cmd);
    }
    // RESP3: SPOP with a count is a set, SRANDMEMBER with a count an array.
    for side in [&mut p.girder, &mut p.redis] {
        side.call(&args(&["HELLO", "3"]));
    }
    run(
        &mut p,
        &[
            &["SADD", "s", "a", "b", "c", "d"],
            &["SRANDMEMBER", "s", "2"],
            &["SRANDMEMBER", "s", "-6"],
            &["SRANDMEMBER", "s", "10"],
            &["SPOP", "s", "2"],
            &["SPOP", "s", "0"],
            &["SPOP", "nope", "2"],
            &["SPOP", "nope"],
            &["SRANDMEMBER", "nope"],
            &["SMEMBERS", "s"],
            &["SINTER", "s", "nope"],
            &["SMISMEMBER", "s", "a"],
        ],
    );
}

#[test]
fn scan() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let strs: Vec<String> = (0..500).map(|i| format!("m{i}")).collect();
    let mut big = vec!["SADD", "big"];
    big.extend(strs.iter().map(String::as_str));
    let ints: Vec<String> = (0..400).map(|i| i.to_string()).collect();
    let mut ibig = vec!["SADD", "ibig"];
    ibig.extend(ints.iter().map(String::as_str));
    p.run(&[
        &["SADD", "s", "a", "b", "ab"],
        &big,
        &ibig,
        &["SET", "str", "x"],
    ]);
    p.run(&[
        &["SSCAN", "ibig", "0"],
        &["SSCAN", "ibig", "0", "MATCH", "1?", "COUNT", "2"],
        &["SSCAN", "nope", "0", "BOGUS"],
        &["SSCAN", "nope", "x"],
        &["SSCAN", "big", "0", "COUNT", "0"],
        &["SSCAN", "big", "0", "COUNT", "x"],
        &["SSCAN", "big", "0", "MATCH"],
        &["SSCAN", "big", "0", "TYPE", "set"],
        &["SSCAN", "big", "x"],
        &["SSCAN", "big", "18446744073709551616"],
        &["SSCAN", "big"],
    ]);
    for options in [
        &[][..],
        &["COUNT", "1"],
        &["COUNT", "13"],
        &["MATCH", "m1*"],
        &["MATCH", "*", "COUNT", "1000"],
        &["MATCH", "nothing", "COUNT", "3"],
    ] {
        for key in ["s", "big", "ibig", "nope"] {
            check_scan(&mut p, &["SSCAN", key], options, 1);
        }
    }
}

fn command() -> impl Strategy<Value = Vec<String>> {
    let key = prop_oneof![Just("s1"), Just("s2"), Just("s3"), Just("str")];
    let member = prop_oneof![
        Just("1"),
        Just("2"),
        Just("3"),
        Just("-5"),
        Just("007"),
        Just("a"),
        Just("b"),
        Just(""),
    ];
    let members = prop::collection::vec(member.clone(), 1..4);
    let keys = prop::collection::vec(key.clone(), 1..4);
    let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
    prop_oneof![
        (key.clone(), members.clone()).prop_map(move |(k, ms)| {
            let mut c = vec!["SADD", k];
            c.extend(ms);
            owned(c)
        }),
        (
            key.clone(),
            prop_oneof![Just(10usize), Just(600)],
            any::<bool>()
        )
            .prop_map(|(k, n, text)| {
                let mut c = vec!["SADD".to_owned(), k.to_owned()];
                c.extend((0..n).map(|i| if text { format!("m{i}") } else { i.to_string() }));
                c
            }),
        (key.clone(), members.clone()).prop_map(move |(k, ms)| {
            let mut c = vec!["SREM", k];
            c.extend(ms);
            owned(c)
        }),
        (key.clone(), member.clone()).prop_map(move |(k, m)| owned(vec!["SISMEMBER", k, m])),
        (key.clone(), members).prop_map(move |(k, ms)| {
            let mut c = vec!["SMISMEMBER", k];
            c.extend(ms);
            owned(c)
        }),
        key.clone().prop_map(move |k| owned(vec!["SMEMBERS", k])),
        key.clone().prop_map(move |k| owned(vec!["SCARD", k])),
        key.clone()
            .prop_map(move |k| owned(vec!["OBJECT", "ENCODING", k])),
        (
            key.clone(),
            prop_oneof![
                Just(vec![]),
                Just(vec!["1"]),
                Just(vec!["3"]),
                Just(vec!["1000"])
            ]
        )
            .prop_map(move |(k, tail)| {
                let mut c = vec!["SPOP", k];
                c.extend(tail);
                owned(c)
            }),
        (
            key.clone(),
            prop_oneof![
                Just(vec![]),
                Just(vec!["2"]),
                Just(vec!["-3"]),
                Just(vec!["1000"])
            ]
        )
            .prop_map(move |(k, tail)| {
                let mut c = vec!["SRANDMEMBER", k];
                c.extend(tail);
                owned(c)
            }),
        (key.clone(), key.clone(), member).prop_map(move |(a, b, m)| owned(vec!["SMOVE", a, b, m])),
        (
            prop_oneof![Just("SINTER"), Just("SUNION"), Just("SDIFF")],
            keys.clone()
        )
            .prop_map(move |(op, ks)| {
                let mut c = vec![op];
                c.extend(ks);
                owned(c)
            }),
        (
            prop_oneof![Just("SINTERSTORE"), Just("SUNIONSTORE"), Just("SDIFFSTORE")],
            key.clone(),
            keys.clone()
        )
            .prop_map(move |(op, dst, ks)| {
                let mut c = vec![op, dst];
                c.extend(ks);
                owned(c)
            }),
        (keys, prop_oneof![Just(vec![]), Just(vec!["LIMIT", "1"])]).prop_map(move |(ks, tail)| {
            let mut c = vec!["SINTERCARD".to_owned(), ks.len().to_string()];
            c.extend(ks.into_iter().map(str::to_owned));
            c.extend(tail.into_iter().map(str::to_owned));
            c
        }),
        (
            key.clone(),
            prop_oneof![
                Just(vec![]),
                Just(vec!["COUNT", "7"]),
                Just(vec!["MATCH", "m1*"])
            ]
        )
            .prop_map(move |(k, tail)| {
                let mut c = vec!["SCAN-ALL", k];
                c.extend(tail);
                owned(c)
            }),
        key.clone().prop_map(move |k| owned(vec!["DEL", k])),
        key.clone()
            .prop_map(move |k| owned(vec!["EXPIRE", k, "100"])),
        key.prop_map(move |k| owned(vec!["TTL", k])),
        Just(owned(vec!["SET", "str", "x"])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Generated sequences of set commands give the same replies and leave the same sets
    /// behind.
    #[test]
    fn generated_sequences_match_redis(cmds in prop::collection::vec(command(), 1..40)) {
        let Some(mut p) = pair(REDIS_DB) else { return Ok(()) };
        for cmd in &cmds {
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            if cmd[0] == "SCAN-ALL" {
                check_scan(&mut p, &["SSCAN", cmd[1]], &cmd[2..], 1);
            } else {
                check(&mut p, &cmd);
            }
        }
        for key in ["s1", "s2", "s3", "str"] {
            check(&mut p, &["SMEMBERS", key]);
            check(&mut p, &["TYPE", key]);
            check(&mut p, &["TTL", key]);
            check(&mut p, &["OBJECT", "ENCODING", key]);
        }
    }
}
