//! Differential tests of the stream entry commands (XADD, XLEN, XRANGE, XREVRANGE, XDEL,
//! XTRIM, XSETID, XREAD) against a real Redis 7: see `common/mod.rs` for the harness.
//! Ids are explicit wherever replies are compared byte for byte; `*` ids (the server's
//! clock) are checked on each side against the local clock instead. Approximate trims
//! (`~`) are compared exactly only on streams that were only appended to (where Girder's
//! node model and Redis's nodes coincide), and by range elsewhere.

mod common;

use common::client::{server_addr, settle, Client};
use common::{args, pair, Pair};
use proptest::prelude::*;

const REDIS_DB: &str = "4";

/// Compares the whole state of `keys` on both sides.
fn check_state(p: &mut Pair, keys: &[&str]) {
    for key in keys {
        p.check(&args(&["XRANGE", key, "-", "+"]));
        p.check(&args(&["XLEN", key]));
        p.check(&args(&["TYPE", key]));
        p.check(&args(&["EXISTS", key]));
    }
}

/// Sends `cmd` to both sides; returns (Girder's reply, Redis's reply).
fn both(p: &mut Pair, cmd: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let cmd = args(cmd);
    (p.girder.call(&cmd), p.redis.call(&cmd))
}

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

#[test]
fn xadd_matches_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "str", "x"],
        &["XADD", "s", "1-1", "f", "v"],
        &["XADD", "s", "1-2", "f", "v", "g", "w"],
        &["XADD", "s", "5", "a", "b"],
        &["XADD", "s", "5-*", "a", "b"],
        &["XADD", "s", "5-*", "a", "b"],
        &["XADD", "s", "6-*", "a", "b"],
        &["XADD", "s", "6-0", "a", "b"],
        &["XADD", "s", "5-9", "a", "b"],
        &["XADD", "s", "4-*", "a", "b"],
        &["XADD", "s", "0-0", "a", "b"],
        &["XADD", "s", "0", "a", "b"],
        &["XADD", "str", "0-0", "a", "b"],
        &["XADD", "str", "1-0", "a", "b"],
        &["XADD", "new", "0-*", "a", "b"],
        &["XADD", "new2", "0-1", "a", "b"],
        &["XADD", "s", " 7", "a", "b"],
        &["XADD", "s", "+8-+1", "a", "b"],
        &["XADD", "s", "9--0", "a", "b"],
        &["XADD", "s", "010-02", "a", "b"],
        &["XADD", "s", "11-5 ", "a", "b"],
        &["XADD", "s", "0x10", "a", "b"],
        &["XADD", "s", "", "a", "b"],
        &["XADD", "s", "-", "a", "b"],
        &["XADD", "s", "+", "a", "b"],
        &["XADD", "s", "12-x", "a", "b"],
        &["XADD", "s", "18446744073709551616-1", "a", "b"],
        &["XADD", "s", "1-1-1", "a", "b"],
        // Arity and field counts.
        &["XADD", "s", "20-0", "a"],
        &["XADD", "s", "20-0", "a", "b", "c"],
        &["XADD", "s", "20-0"],
        &["XADD", "s", "MAXLEN", "1"],
        &["XADD", "s", "MAXLEN", "1", "20-0"],
        &["XADD", "s", "NOMKSTREAM", "MAXLEN", "5"],
        &["XADD", "s"],
        // NOMKSTREAM.
        &["XADD", "none", "NOMKSTREAM", "1-0", "a", "b"],
        &["XADD", "none", "nomkstream", "nomkstream", "*", "a", "b"],
        &["EXISTS", "none"],
        &["XADD", "s", "NOMKSTREAM", "20-0", "a", "b"],
        // Trimming options and their errors.
        &["XADD", "s", "MAXLEN", "-1", "*", "a", "b"],
        &["XADD", "s", "MAXLEN", "x", "*", "a", "b"],
        &["XADD", "s", "MAXLEN", "01", "*", "a", "b"],
        &["XADD", "s", "MAXLEN", "~", "*", "a", "b"],
        &[
            "XADD", "s", "MAXLEN", "=", "1", "LIMIT", "10", "*", "a", "b",
        ],
        &["XADD", "s", "MAXLEN", "1", "LIMIT", "10", "*", "a", "b"],
        &["XADD", "s", "MINID", "1", "LIMIT", "1", "*", "a", "b"],
        &[
            "XADD", "s", "MAXLEN", "~", "1", "LIMIT", "-1", "*", "a", "b",
        ],
        &["XADD", "s", "MAXLEN", "~", "1", "LIMIT", "x", "*", "a", "b"],
        &["XADD", "s", "LIMIT", "5", "*", "a", "b"],
        &["XADD", "s", "LIMIT", "0", "*", "a", "b"],
        &["XADD", "s", "MAXLEN", "1", "MINID", "3", "*", "a", "b"],
        &["XADD", "s", "MAXLEN", "1", "MAXLEN", "2", "*", "a", "b"],
        &["XADD", "s", "MINID", "~", "x", "*", "a", "b"],
        &["XADD", "s", "MINID", "-", "*", "a", "b"],
        &["XADD", "s", "FOO", "*", "a", "b"],
        &["XADD", "str", "MAXLEN", "-1", "*", "a", "b"],
        &["XADD", "str", "*", "a", "b"],
        // Exact trims.
        &["XADD", "s", "MAXLEN", "=", "3", "20-0", "a", "b"],
        &["XADD", "s", "MAXLEN", "3", "21-0", "a", "b"],
        &["XADD", "s", "MINID", "21", "22-0", "a", "b"],
        &["XADD", "s", "MINID", "=", "30", "23-0", "a", "b"],
        &["XADD", "s", "maxlen", "0", "24-0", "a", "b"],
        &["XLEN", "s"],
        &["XADD", "s", "24-0", "a", "b"],
        &["XADD", "s", "25-0", "a", "b"],
        // Exhausted ids.
        &["XADD", "e", "7-18446744073709551615", "a", "b"],
        &["XADD", "e", "7-*", "a", "b"],
        &[
            "XADD",
            "m",
            "18446744073709551615-18446744073709551615",
            "a",
            "b",
        ],
        &["XADD", "m", "*", "a", "b"],
        &["XADD", "m", "1-1", "a", "b"],
        &["XADD", "m", "5-*", "a", "b"],
        // Binary-safe fields, repeated field names.
        &["XADD", "b", "1-0", "", "", "f", "1", "f", "2"],
    ]);
    check_state(&mut p, &["s", "str", "new", "new2", "none", "e", "m", "b"]);
}

#[test]
fn auto_ids_follow_the_clock_and_the_last_id() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let (g, r) = both(&mut p, &["XADD", "a", "*", "f", "v"]);
    for reply in [&g, &r] {
        let id = text(reply);
        let id = id.lines().nth(1).expect("a bulk id");
        let (ms, seq) = id.split_once('-').expect("ms-seq");
        let ms: u64 = ms.parse().unwrap();
        assert!(ms.abs_diff(now) < 5_000, "{id} is not now ({now})");
        assert_eq!(seq, "0");
    }
    // A last id in the future: `*` continues from it (same ms, next sequence), on both.
    p.run(&[
        &["XADD", "f", "99999999999999-5", "f", "v"],
        &["XADD", "f", "*", "f", "v"],
        &["XADD", "f", "*", "f", "v"],
        &["XADD", "f", "99999999999999-18446744073709551615", "f", "v"],
        &["XADD", "f", "*", "f", "v"],
        &["XADD", "f", "MAXLEN", "2", "*", "f", "v"],
    ]);
    check_state(&mut p, &["f"]);
}

#[test]
fn xrange_and_xrevrange_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "str", "x"],
        &["XADD", "s", "1-0", "a", "1"],
        &["XADD", "s", "1-1", "a", "2"],
        &["XADD", "s", "2-0", "a", "3"],
        &["XADD", "s", "3-5", "a", "4", "b", "5"],
        &["XADD", "s", "18446744073709551615-0", "a", "6"],
    ]);
    let ranges: &[(&str, &str)] = &[
        ("-", "+"),
        ("+", "-"),
        ("1", "1"),
        ("1-1", "3"),
        ("(1", "+"),
        ("(1-0", "(3-5"),
        ("-", "(2"),
        ("(-", "+"),
        ("-", "(+"),
        ("(", "+"),
        ("(18446744073709551615-18446744073709551615", "+"),
        ("-", "(0-0"),
        ("(18446744073709551615-18446744073709551614", "+"),
        ("(1-18446744073709551615", "+"),
        ("x", "+"),
        ("-", "y"),
        ("-1", "+"),
        ("01", "+"),
        (" 1", "+"),
        ("2", "1"),
        ("3-5", "3-5"),
        ("18446744073709551615", "+"),
    ];
    for (a, b) in ranges {
        p.check(&args(&["XRANGE", "s", a, b]));
        p.check(&args(&["XREVRANGE", "s", b, a]));
        p.check(&args(&["XRANGE", "s", a, b, "COUNT", "2"]));
        p.check(&args(&["XREVRANGE", "s", b, a, "COUNT", "2"]));
    }
    p.run(&[
        &["XRANGE", "s", "-", "+", "COUNT", "0"],
        &["XRANGE", "s", "-", "+", "COUNT", "-1"],
        &["XRANGE", "s", "-", "+", "COUNT", "1", "COUNT", "3"],
        &["XRANGE", "s", "-", "+", "COUNT"],
        &["XRANGE", "s", "-", "+", "COUNT", "x"],
        &["XRANGE", "s", "-", "+", "FOO", "1"],
        &["XRANGE", "s", "x", "+", "COUNT", "x"],
        &["XRANGE", "s", "-", "+", "COUNT", "9223372036854775807"],
        &["XREVRANGE", "s", "+", "-", "COUNT", "0"],
        &["XREVRANGE", "s", "x", "y"],
        &["XRANGE", "none", "-", "+"],
        &["XRANGE", "none", "-", "+", "COUNT", "0"],
        &["XRANGE", "str", "-", "+"],
        &["XRANGE", "str", "-", "+", "COUNT", "0"],
        &["XRANGE", "str", "x", "+"],
        &["XREVRANGE", "str", "+", "-"],
        &["XRANGE", "s", "-"],
        &["XREVRANGE", "s"],
        &["XLEN", "s"],
        &["XLEN", "none"],
        &["XLEN", "str"],
        &["XLEN"],
        &["XLEN", "s", "s"],
    ]);
}

#[test]
fn xdel_xtrim_and_xsetid_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.check(&args(&["SET", "str", "x"]));
    for ms in 1..=10 {
        p.check(&args(&["XADD", "s", &format!("{ms}-0"), "f", "v"]));
    }
    p.run(&[
        &["XDEL", "s", "2-0", "2", "3-0", "99-0"],
        &["XDEL", "s", "4-0", "x"],
        &["XDEL", "s", "-"],
        &["XDEL", "s", "4-1"],
        &["XDEL", "none", "1-0"],
        &["XDEL", "str", "1-0"],
        &["XDEL", "str", "x"],
        &["XDEL", "none", "x"],
        &["XDEL", "s"],
        &["EXISTS", "none"],
        &["XTRIM", "s", "MAXLEN", "6"],
        &["XTRIM", "s", "MAXLEN", "=", "5"],
        &["XTRIM", "s", "MINID", "6"],
        &["XTRIM", "s", "MINID", "=", "7-1"],
        &["XTRIM", "s", "MINID", "0"],
        &["XTRIM", "s", "MAXLEN", "100"],
        &["XTRIM", "s", "MAXLEN"],
        &["XTRIM", "s", "FOO", "1"],
        &["XTRIM", "s", "MAXLEN", "-1"],
        &["XTRIM", "s", "MAXLEN", "x"],
        &["XTRIM", "s", "MINID", "x"],
        &["XTRIM", "s", "MINID", "+"],
        &["XTRIM", "s", "MAXLEN", "1", "LIMIT", "1"],
        &["XTRIM", "s", "MAXLEN", "=", "1", "LIMIT", "0"],
        &["XTRIM", "s", "LIMIT", "5"],
        &["XTRIM", "s", "LIMIT", "0"],
        &["XTRIM", "s", "LIMIT", "0", "MAXLEN", "1"],
        &["XTRIM", "s", "MAXLEN", "1", "MINID", "1"],
        &["XTRIM", "s", "MAXLEN", "1", "FOO"],
        &["XTRIM", "s", "NOMKSTREAM", "MAXLEN", "1"],
        &["XTRIM", "s", "MAXLEN", "~", "1", "LIMIT", "-1"],
        &["XTRIM", "none", "MAXLEN", "0"],
        &["XTRIM", "str", "MAXLEN", "0"],
        &["XTRIM", "str", "MAXLEN", "x"],
        &["XTRIM", "s", "MAXLEN", "~", "0"],
        &["XTRIM", "s", "MAXLEN", "0"],
        &["XLEN", "s"],
        &["EXISTS", "s"],
        // XSETID.
        &["XSETID", "none", "1-0"],
        &["XSETID", "str", "1-0"],
        &["XSETID", "s", "x"],
        &["XSETID", "s", "-"],
        &["XSETID", "s", "5"],
        &["XADD", "s", "20-0", "f", "v"],
        &["XSETID", "s", "19-0"],
        &["XSETID", "s", "20-0", "ENTRIESADDED", "0"],
        &["XSETID", "s", "20-0", "ENTRIESADDED", "-1"],
        &["XSETID", "s", "20-0", "ENTRIESADDED", "x"],
        &["XSETID", "s", "20-0", "MAXDELETEDID", "21-0"],
        &["XSETID", "s", "20-0", "MAXDELETEDID", "x"],
        &[
            "XSETID",
            "s",
            "20-0",
            "MAXDELETEDID",
            "21-0",
            "ENTRIESADDED",
            "-1",
        ],
        &[
            "XSETID",
            "s",
            "20-0",
            "ENTRIESADDED",
            "-1",
            "MAXDELETEDID",
            "21-0",
        ],
        &["XSETID", "s", "20-0", "FOO", "1"],
        &["XSETID", "s", "20-0", "ENTRIESADDED"],
        &["XSETID", "none", "20-0", "ENTRIESADDED", "-1"],
        &[
            "XSETID",
            "s",
            "25-0",
            "ENTRIESADDED",
            "100",
            "MAXDELETEDID",
            "22-0",
        ],
        &["XADD", "s", "24-0", "f", "v"],
        &["XADD", "s", "25-*", "f", "v"],
        &["XSETID", "s", "25-1", "MAXDELETEDID", "0-0"],
        &["XSETID", "s", "18446744073709551615-18446744073709551615"],
        &["XADD", "s", "*", "f", "v"],
        &["XADD", "s", "MAXLEN", "0", "1-0", "f", "v"],
        &["XSETID", "s"],
        &["XDEL", "s", "25-0", "25-1"],
        &["XSETID", "s", "1-0"],
        &["XADD", "s", "1-*", "f", "v"],
    ]);
    check_state(&mut p, &["s", "str", "none"]);
}

#[test]
fn approximate_trims_match_redis_on_appended_streams() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let fill = |p: &mut Pair, key: &str, n: u64| {
        for ms in 1..=n {
            p.check(&args(&["XADD", key, &format!("{ms}-0"), "f", "v"]));
        }
    };
    fill(&mut p, "a", 250);
    p.run(&[
        &["XTRIM", "a", "MAXLEN", "~", "0", "LIMIT", "99"],
        &["XTRIM", "a", "MAXLEN", "~", "0", "LIMIT", "150"],
        &["XTRIM", "a", "MAXLEN", "~", "30"],
        &["XTRIM", "a", "MINID", "~", "240"],
        &["XTRIM", "a", "MINID", "~", "251"],
        &["XLEN", "a"],
    ]);
    fill(&mut p, "b", 250);
    p.run(&[
        &["XTRIM", "b", "MAXLEN", "~", "0", "LIMIT", "0"],
        &["XLEN", "b"],
    ]);
    // XADD with MAXLEN ~ as a capped log: the same lengths step by step.
    for ms in 1..=330 {
        p.check(&args(&[
            "XADD",
            "c",
            "MAXLEN",
            "~",
            "120",
            &format!("{ms}-0"),
            "f",
            "v",
        ]));
        if ms % 10 == 0 {
            p.check(&args(&["XLEN", "c"]));
        }
    }
    p.check(&args(&["XRANGE", "c", "-", "+", "COUNT", "1"]));
    // After deletions Redis's nodes keep their deleted slots: compare by the contract.
    for ms in (1..=330).step_by(3) {
        p.check(&args(&["XDEL", "c", &format!("{ms}-0")]));
    }
    let (g, r) = both(&mut p, &["XTRIM", "c", "MAXLEN", "~", "50"]);
    for reply in [&g, &r] {
        assert!(text(reply).starts_with(':'), "{}", text(reply));
    }
    for side in [&mut p.girder, &mut p.redis] {
        let len = text(&side.call(&args(&["XLEN", "c"])));
        let len: u64 = len.trim_start_matches(':').trim().parse().unwrap();
        assert!(len >= 50, "MAXLEN ~ 50 kept {len}");
    }
}

#[test]
fn generic_commands_work_on_streams() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["XADD", "s", "1-0", "f", "v"],
        &["XADD", "s", "2-0", "g", "w"],
        &["TYPE", "s"],
        &["OBJECT", "ENCODING", "s"],
        &["COPY", "s", "c"],
        &["XADD", "c", "3-0", "h", "x"],
        &["XRANGE", "s", "-", "+"],
        &["XRANGE", "c", "-", "+"],
        &["RENAME", "c", "r"],
        &["EXISTS", "c"],
        &["XRANGE", "r", "-", "+"],
        &["XADD", "r", "3-0", "again", "x"],
        &["XDEL", "s", "1-0", "2-0"],
        &["EXISTS", "s"],
        &["TYPE", "s"],
        &["XADD", "s", "2-0", "f", "v"],
        &["XADD", "s", "2-1", "f", "v"],
        &["EXPIRE", "s", "100"],
        &["TTL", "s"],
        &["XADD", "s", "3-0", "f", "v"],
        &["TTL", "s"],
        &["LPUSH", "s", "x"],
        &["GET", "s"],
        &["DEL", "s", "r"],
        &["EXISTS", "s", "r"],
        &["TYPE", "s"],
    ]);
}

#[test]
fn xread_matches_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "str", "x"],
        &["XADD", "a", "1-0", "f", "1"],
        &["XADD", "a", "2-0", "f", "2"],
        &["XADD", "a", "3-0", "f", "3"],
        &["XADD", "b", "5-0", "g", "1"],
        &["XREAD", "STREAMS", "a", "0"],
        &["XREAD", "STREAMS", "a", "b", "0", "0"],
        &["XREAD", "COUNT", "2", "STREAMS", "a", "b", "1", "0-0"],
        &["XREAD", "COUNT", "0", "STREAMS", "a", "1"],
        &["XREAD", "COUNT", "-1", "STREAMS", "a", "1"],
        &["XREAD", "count", "1", "count", "2", "streams", "a", "0"],
        &["XREAD", "STREAMS", "a", "b", "3", "5"],
        &["XREAD", "STREAMS", "a", "b", "$", "$"],
        &["XREAD", "STREAMS", "a", "none", "2-0", "0"],
        &["XREAD", "STREAMS", "none", "$"],
        &["XREAD", "STREAMS", "a", "a", "0", "2"],
        &["XREAD", "STREAMS", "a", " 1"],
        &["XREAD", "STREAMS", "a", "1-18446744073709551615"],
        &[
            "XREAD",
            "STREAMS",
            "a",
            "18446744073709551615-18446744073709551615",
        ],
        // Errors, in Redis's order.
        &["XREAD", "STREAMS", "a"],
        &["XREAD", "STREAMS", "a", "b", "0"],
        &["XREAD", "STREAMS"],
        &["XREAD", "COUNT", "1"],
        &["XREAD", "COUNT", "1", "a", "0"],
        &["XREAD", "COUNT", "x", "STREAMS", "a", "0"],
        &["XREAD", "BLOCK", "x", "STREAMS", "a", "0"],
        &["XREAD", "BLOCK", "-1", "STREAMS", "a", "0"],
        &["XREAD", "BLOCK", "1.5", "STREAMS", "a", "0"],
        &["XREAD", "BLOCK", "9223372036854775807", "STREAMS", "a", "0"],
        &["XREAD", "FOO", "STREAMS", "a", "0"],
        &["XREAD", "GROUP", "g", "c", "STREAMS", "a", "0"],
        &["XREAD", "NOACK", "STREAMS", "a", "0"],
        &["XREAD", "STREAMS", "a", "x"],
        &["XREAD", "STREAMS", "a", "-"],
        &["XREAD", "STREAMS", "a", "+"],
        &["XREAD", "STREAMS", "a", ">"],
        &["XREAD", "STREAMS", "str", "0"],
        &["XREAD", "STREAMS", "str", "x"],
        &["XREAD", "STREAMS", "a", "str", "x", "0"],
        &["XREAD", "STREAMS", "str", "a", "0", "x"],
        &["XREAD", "STREAMS", "none", "str", "0", "0"],
        &["XREAD", "BLOCK", "10", "STREAMS", "str", "$"],
        &["XREAD", "BLOCK", "0", "STREAMS", "a", "0"],
        &["XREAD", "BLOCK", "10", "STREAMS", "a", "$"],
        &["XREAD", "BLOCK", "10", "STREAMS", "none", "0"],
        // RESP3: a map of keys, and `_` for nothing.
    ]);
    both(&mut p, &["HELLO", "3"]);
    p.run(&[
        &["XREAD", "STREAMS", "a", "b", "0", "0"],
        &["XREAD", "COUNT", "1", "STREAMS", "a", "b", "2", "4"],
        &["XREAD", "STREAMS", "a", "$"],
        &["XREAD", "BLOCK", "10", "STREAMS", "a", "$"],
        &["XRANGE", "a", "-", "+", "COUNT", "1"],
        &["XRANGE", "a", "-", "+", "COUNT", "0"],
        &["XADD", "none", "NOMKSTREAM", "*", "f", "v"],
    ]);
    both(&mut p, &["HELLO", "2"]);
    // Inside MULTI, BLOCK does not block: a null array at once, or the entries.
    p.run(&[
        &["MULTI"],
        &["XREAD", "BLOCK", "0", "STREAMS", "a", "$"],
        &["XREAD", "BLOCK", "0", "STREAMS", "a", "2"],
        &["XADD", "a", "4-0", "f", "4"],
        &["XREAD", "BLOCK", "0", "STREAMS", "a", "3"],
        &["EXEC"],
    ]);
}

/// Blocking scenarios with several clients against one server; returns the transcript of
/// every reply, to be compared between Girder and Redis.
fn blocking_script(addr: &str) -> Vec<String> {
    let mut log = Vec::new();
    let mut record = |what: &str, reply: Vec<u8>| {
        log.push(format!("{what}: {}", String::from_utf8_lossy(&reply)));
    };
    let mut main = Client::connect(addr, REDIS_DB);
    let mut a = Client::connect(addr, REDIS_DB);
    let mut b = Client::connect(addr, REDIS_DB);
    record("set", main.call(&["SET", "str", "x"]));
    record("xadd", main.call(&["XADD", "s", "1-0", "f", "1"]));

    // Entries already there: served at once.
    record("now", a.call(&["XREAD", "BLOCK", "0", "STREAMS", "s", "0"]));

    // `$` waits for the next entry; the adder's next command sees the reader served.
    a.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    settle();
    b.send(&["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "1-0"]);
    settle();
    assert!(!a.has_reply() && !b.has_reply(), "both wait");
    record("xadd", main.call(&["XADD", "s", "2-0", "f", "2"]));
    record("a", a.receive());
    record("b", b.receive());

    // Several keys: only the key that got entries is in the reply.
    a.send(&[
        "XREAD", "BLOCK", "0", "STREAMS", "x", "s", "y", "0", "$", "$",
    ]);
    settle();
    record("xadd y", main.call(&["XADD", "y", "3-0", "f", "3"]));
    record("a", a.receive());

    // A key of another type, or a list push, wakes nobody; a timeout is a null array.
    a.send(&["XREAD", "BLOCK", "300", "STREAMS", "t", "$"]);
    settle();
    record("list", main.call(&["RPUSH", "t", "x"]));
    record("del", main.call(&["DEL", "t"]));
    record("set", main.call(&["SET", "t", "x"]));
    record("del", main.call(&["DEL", "t"]));
    record("timed out", a.receive());

    // An id above what XADD adds keeps waiting.
    a.send(&["XREAD", "BLOCK", "300", "STREAMS", "u", "10-0"]);
    settle();
    record("xadd u", main.call(&["XADD", "u", "5-0", "f", "5"]));
    assert!(!a.has_reply(), "5-0 is not after 10-0");
    record("xadd u", main.call(&["XADD", "u", "11-0", "f", "11"]));
    record("a", a.receive());

    // WRONGTYPE before blocking.
    record(
        "wrongtype",
        a.call(&["XREAD", "BLOCK", "0", "STREAMS", "s", "str", "$", "$"]),
    );

    // Entries added inside a transaction are served after EXEC, with every entry of it
    // (up to the reader's COUNT).
    a.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    settle();
    b.send(&["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "$"]);
    settle();
    record("multi", main.call(&["MULTI"]));
    record("q", main.call(&["XADD", "s", "5-0", "f", "5"]));
    record("q", main.call(&["XADD", "s", "6-0", "f", "6"]));
    assert!(!a.has_reply(), "nothing is served before EXEC");
    record("exec", main.call(&["EXEC"]));
    record("a", a.receive());
    record("b", b.receive());

    // Added then deleted inside one transaction: the reader is served an empty list.
    a.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    settle();
    record("multi", main.call(&["MULTI"]));
    record("q", main.call(&["XADD", "s", "7-0", "f", "7"]));
    record("q", main.call(&["XDEL", "s", "7-0"]));
    record("exec", main.call(&["EXEC"]));
    record("a", a.receive());

    // RESP3: a map when served, `_` on timeout.
    record(
        "hello",
        a.call(&["HELLO", "3"])
            .starts_with(b"%")
            .to_string()
            .into_bytes(),
    );
    a.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    settle();
    record("xadd", main.call(&["XADD", "s", "8-0", "f", "8"]));
    record("a resp3", a.receive());
    record(
        "a resp3 timeout",
        a.call(&["XREAD", "BLOCK", "20", "STREAMS", "s", "$"]),
    );
    record(
        "hello",
        a.call(&["HELLO", "2"])
            .starts_with(b"*")
            .to_string()
            .into_bytes(),
    );
    record(
        "a resp2 timeout",
        a.call(&["XREAD", "BLOCK", "20", "STREAMS", "s", "$"]),
    );

    // Twenty readers on one stream: all served by one XADD, before its next command.
    let mut readers: Vec<Client> = (0..20).map(|_| Client::connect(addr, REDIS_DB)).collect();
    for (i, r) in readers.iter_mut().enumerate() {
        let count = (i % 3 + 1).to_string();
        r.send(&[
            "XREAD", "COUNT", &count, "BLOCK", "0", "STREAMS", "many", "0",
        ]);
    }
    settle();
    record(
        "xadd many",
        main.call(&["XADD", "many", "1-0", "f", "1", "g", "2"]),
    );
    record("xadd many", main.call(&["XADD", "many", "2-0", "f", "2"]));
    for (i, r) in readers.iter_mut().enumerate() {
        assert!(r.has_reply(), "reader {i} was not served by the first XADD");
        record(&format!("reader {i}"), r.receive());
    }

    // Readers that disconnect while blocked leave no waiter behind that could take
    // anything: the next reader is served normally.
    for mut r in readers.drain(..5) {
        r.send(&["XREAD", "BLOCK", "0", "STREAMS", "gone", "$"]);
        settle();
        drop(r);
    }
    settle();
    b.send(&["XREAD", "BLOCK", "0", "STREAMS", "gone", "$"]);
    settle();
    record("xadd gone", main.call(&["XADD", "gone", "1-0", "f", "1"]));
    record("b", b.receive());
    log
}

#[test]
fn blocking_xread_matches_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let girder = blocking_script(&server_addr(&mut p.girder));
    let redis = blocking_script(&server_addr(&mut p.redis));
    for (g, r) in girder.iter().zip(&redis) {
        assert_eq!(g, r, "left: Girder, right: Redis");
    }
    assert_eq!(girder.len(), redis.len());
}

/// A random stream command over two stream keys and a string key, with explicit ids
/// from a small space (so collisions, deletions and trims interact).
fn command() -> impl Strategy<Value = Vec<String>> {
    let key = prop::sample::select(vec!["a", "b", "str"]);
    let id = (0u64..8, 0u64..3).prop_map(|(ms, seq)| match seq {
        2 => ms.to_string(),
        _ => format!("{ms}-{seq}"),
    });
    let star_id = (0u64..8).prop_map(|ms| format!("{ms}-*"));
    let n = prop::sample::select(vec!["0", "1", "2", "3", "5", "-1", "x"]);
    let bound = prop::sample::select(vec!["-", "+", "0", "2", "(2", "3-1", "(5-0", "7"]);
    let trim = prop::sample::select(vec!["MAXLEN", "MINID"]);
    let name = prop::sample::select(vec![
        "XADD",
        "XADD",
        "XADD",
        "XADDTRIM",
        "XADDSTAR",
        "XDEL",
        "XTRIM",
        "XRANGE",
        "XREVRANGE",
        "XLEN",
        "XREAD",
        "XSETID",
        "DEL",
    ]);
    (
        name,
        key,
        (id.clone(), id, star_id),
        (n.clone(), n),
        (bound.clone(), bound),
        trim,
    )
        .prop_map(|(name, key, (i1, i2, star), (n1, n2), (b1, b2), trim)| {
            let key = key.to_owned();
            let v: Vec<String> = match name {
                "XADD" => vec!["XADD".into(), key, i1, "f".into(), n1.into()],
                "XADDSTAR" => vec!["XADD".into(), key, star, "f".into(), "v".into()],
                "XADDTRIM" if trim == "MAXLEN" => vec![
                    "XADD".into(),
                    key,
                    "MAXLEN".into(),
                    n1.into(),
                    i1,
                    "f".into(),
                    "v".into(),
                ],
                "XADDTRIM" => vec![
                    "XADD".into(),
                    key,
                    "MINID".into(),
                    i2,
                    i1,
                    "f".into(),
                    "v".into(),
                ],
                "XDEL" => vec!["XDEL".into(), key, i1, i2],
                "XTRIM" if trim == "MAXLEN" => vec!["XTRIM".into(), key, trim.into(), n1.into()],
                "XTRIM" => vec!["XTRIM".into(), key, trim.into(), "=".into(), i1],
                "XRANGE" | "XREVRANGE" => {
                    vec![
                        name.into(),
                        key,
                        b1.into(),
                        b2.into(),
                        "COUNT".into(),
                        n1.into(),
                    ]
                }
                "XLEN" | "DEL" => vec![name.into(), key],
                "XREAD" => vec![
                    "XREAD".into(),
                    "COUNT".into(),
                    n2.into(),
                    "STREAMS".into(),
                    key,
                    "b".into(),
                    i1,
                    i2,
                ],
                "XSETID" => vec!["XSETID".into(), key, i1, "ENTRIESADDED".into(), n1.into()],
                _ => unreachable!(),
            };
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Generated sequences of stream commands give identical replies and leave identical
    /// streams behind.
    #[test]
    fn generated_sequences_match_redis(cmds in prop::collection::vec(command(), 1..40)) {
        let Some(mut p) = pair(REDIS_DB) else { return Ok(()) };
        p.check(&args(&["SET", "str", "string"]));
        for cmd in &cmds {
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            p.check(&args(&cmd));
        }
        check_state(&mut p, &["a", "b", "str"]);
    }
}
