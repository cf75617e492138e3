//! Differential tests of the stream consumer-group commands (XGROUP, XREADGROUP, XACK,
//! XPENDING, XCLAIM, XAUTOCLAIM, XINFO) against a real Redis 7.0: see `common/mod.rs`.
//!
//! Times differ between the two servers by the milliseconds between the two calls, so
//! replies are parsed and time fields normalized before comparing: an idle time (XPENDING,
//! XINFO CONSUMERS) or the age of an absolute time (XINFO STREAM FULL's `seen-time` and
//! delivery times) must be within 5 s of a multiple of 10 s (the tests only create ages
//! near 0 s or near the 100 s they ask for with IDLE), and is replaced by that multiple.
//! XINFO STREAM's `radix-tree-keys` / `radix-tree-nodes` (Redis's storage internals) are
//! checked to be non-negative and blanked.

mod common;

use common::client::{server_addr, settle, Client};
use common::{args, pair, Pair, Raw};

const REDIS_DB: &str = "3";

/// A parsed reply.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Line(u8, String),
    Int(i64),
    Bulk(Option<String>),
    Agg(u8, Option<Vec<V>>),
}

fn parse(raw: &[u8]) -> V {
    fn one(raw: &[u8], at: &mut usize) -> V {
        let kind = raw[*at];
        let end = raw[*at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a complete line")
            + *at;
        let header = String::from_utf8_lossy(&raw[*at + 1..end]).into_owned();
        *at = end + 2;
        match kind {
            b':' => V::Int(header.parse().expect("an integer")),
            b'$' => {
                let len: i64 = header.parse().expect("a length");
                if len < 0 {
                    return V::Bulk(None);
                }
                let len = usize::try_from(len).expect("a length");
                let data = String::from_utf8_lossy(&raw[*at..*at + len]).into_owned();
                *at += len + 2;
                V::Bulk(Some(data))
            }
            b'*' | b'~' | b'%' | b'>' => {
                let n: i64 = header.parse().expect("a count");
                if n < 0 {
                    return V::Agg(kind, None);
                }
                let n = usize::try_from(n).expect("a count") * if kind == b'%' { 2 } else { 1 };
                V::Agg(kind, Some((0..n).map(|_| one(raw, at)).collect()))
            }
            _ => V::Line(kind, header),
        }
    }
    let mut at = 0;
    let v = one(raw, &mut at);
    assert_eq!(at, raw.len(), "one reply");
    v
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// An age in ms, rounded to its multiple of 10 s (it must be within 5 s after it).
fn age(ms: i64, what: &str) -> V {
    assert!(ms >= 0, "{what}: negative age {ms}");
    let rounded = ms / 10_000 * 10_000;
    assert!(
        ms - rounded <= 5_000,
        "{what}: age {ms} not near a multiple of 10 s"
    );
    V::Line(b'~', format!("<{what} ~{rounded}>"))
}

fn items(v: &mut V) -> Option<&mut Vec<V>> {
    match v {
        V::Agg(_, Some(items)) => Some(items),
        _ => None,
    }
}

/// Replaces the value after each field named `name` in a flat key-value list.
fn each_field(list: &mut [V], name: &str, mut f: impl FnMut(&mut V)) {
    let mut i = 0;
    while i + 1 < list.len() {
        if list[i] == V::Bulk(Some(name.to_owned())) {
            f(&mut list[i + 1]);
        }
        i += 2;
    }
}

fn int_of(v: &V) -> i64 {
    match v {
        V::Int(n) => *n,
        other => panic!("not an integer: {other:?}"),
    }
}

fn absolute(v: &mut V, what: &str) {
    let n = int_of(v);
    *v = age(now_ms() - n, what);
}

fn relative(v: &mut V, what: &str) {
    let n = int_of(v);
    *v = age(n, what);
}

fn normalize(cmd: &[&str], raw: &[u8]) -> V {
    let mut v = parse(raw);
    let name = cmd[0].to_ascii_uppercase();
    let sub = cmd
        .get(1)
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default();
    match (name.as_str(), sub.as_str()) {
        ("XPENDING", _) if cmd.len() > 3 => {
            for row in items(&mut v).into_iter().flatten() {
                if let Some(row) = items(row) {
                    relative(&mut row[2], "idle");
                }
            }
        }
        ("XINFO", "CONSUMERS") => {
            for c in items(&mut v).into_iter().flatten() {
                if let Some(c) = items(c) {
                    each_field(c, "idle", |x| relative(x, "idle"));
                }
            }
        }
        ("XINFO", "STREAM") => {
            if let Some(top) = items(&mut v) {
                for field in ["radix-tree-keys", "radix-tree-nodes"] {
                    each_field(top, field, |x| {
                        assert!(int_of(x) >= 0);
                        *x = V::Line(b'~', "<radix>".into());
                    });
                }
                each_field(top, "groups", |groups| {
                    for g in items(groups).into_iter().flatten() {
                        let Some(g) = items(g) else { continue };
                        each_field(g, "pending", |p| {
                            for row in items(p).into_iter().flatten() {
                                if let Some(row) = items(row) {
                                    absolute(&mut row[2], "delivery");
                                }
                            }
                        });
                        each_field(g, "consumers", |cs| {
                            for c in items(cs).into_iter().flatten() {
                                let Some(c) = items(c) else { continue };
                                each_field(c, "seen-time", |x| absolute(x, "seen"));
                                each_field(c, "pending", |p| {
                                    for row in items(p).into_iter().flatten() {
                                        if let Some(row) = items(row) {
                                            absolute(&mut row[1], "delivery");
                                        }
                                    }
                                });
                            }
                        });
                    }
                });
            }
        }
        _ => {}
    }
    v
}

/// Sends `cmd` to both servers and compares the normalized replies.
fn check(p: &mut Pair, cmd: &[&str]) -> V {
    let g = normalize(cmd, &p.girder.call(&args(cmd)));
    let r = normalize(cmd, &p.redis.call(&args(cmd)));
    assert_eq!(
        g, r,
        "reply to {cmd:?} differs (left: Girder, right: Redis)"
    );
    g
}

fn run(p: &mut Pair, script: &[&[&str]]) {
    for cmd in script {
        check(p, cmd);
    }
}

/// Everything observable about the group state of `key`.
fn check_state(p: &mut Pair, key: &str, groups: &[&str]) {
    check(p, &["XINFO", "STREAM", key, "FULL"]);
    check(p, &["XINFO", "GROUPS", key]);
    for g in groups {
        check(p, &["XPENDING", key, g]);
        check(p, &["XPENDING", key, g, "-", "+", "100"]);
        check(p, &["XINFO", "CONSUMERS", key, g]);
    }
}

fn in_both_protocols(test: impl Fn(&mut Pair)) {
    for protocol in ["2", "3"] {
        let Some(mut p) = pair(REDIS_DB) else { return };
        for side in [&mut p.girder, &mut p.redis] {
            let hello = side.call(&args(&["HELLO", protocol]));
            assert!(!hello.starts_with(b"-"));
        }
        test(&mut p);
    }
}

fn add_entries(p: &mut Pair, key: &str, n: u64) {
    for i in 1..=n {
        check(p, &["XADD", key, &format!("{i}-0"), "f", &i.to_string()]);
    }
}

#[test]
fn xgroup_matches_redis() {
    in_both_protocols(|p| {
        run(
            p,
            &[
                &["SET", "str", "x"],
                &["XGROUP", "CREATE", "s", "g", "$"],
                &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM", "foo"],
                &[
                    "XGROUP",
                    "CREATE",
                    "s",
                    "g",
                    "$",
                    "ENTRIESREAD",
                    "-2",
                    "MKSTREAM",
                ],
                &[
                    "XGROUP",
                    "CREATE",
                    "s",
                    "g",
                    "$",
                    "ENTRIESREAD",
                    "x",
                    "MKSTREAM",
                ],
                &["XGROUP", "CREATE", "s", "g", "bad", "MKSTREAM"],
                &["XGROUP", "CREATE", "nokey", "g", "bad"],
                &["EXISTS", "s"],
                &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
                &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
                &["XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "5"],
                &["XGROUP", "CREATE", "s", "g3", "$", "mkstream", "mkstream"],
                &[
                    "XGROUP", "CREATE", "s", "g4", "$", "mkstream", "mkstream", "mkstream",
                    "mkstream",
                ],
                &["XGROUP", "CREATE", "s", "g4", "$", "ENTRIESREAD", "-1"],
                &[
                    "XGROUP",
                    "CREATE",
                    "s",
                    "g5",
                    "18446744073709551615-18446744073709551615",
                ],
                &["XGROUP", "CREATE", "s", "g6", "-"],
                &["XGROUP", "CREATE", "s", "g6", "1-*"],
                &["XGROUP", "CrEaTe", "s", "g6", "$", "foo"],
                &["XGROUP", "CREATE", "str", "g", "0"],
                &["XGROUP", "CREATE", "str", "g", "0", "MKSTREAM"],
                &["XGROUP", "SETID", "s", "nog", "0"],
                &["XGROUP", "SETID", "s", "nog", "0", "ENTRIESREAD", "-5"],
                &["XGROUP", "SETID", "s", "g", "bad", "ENTRIESREAD", "-5"],
                &["XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD"],
                &["XGROUP", "SETID", "s", "g", "0", "FOO", "3"],
                &["XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "x"],
                &["XGROUP", "SETID", "s", "g", "5", "ENTRIESREAD", "3", "X"],
                &["XGROUP", "SETID", "s", "g", "5-bad"],
                &["XGROUP", "SETID", "s", "g", "5"],
                &["XGROUP", "SETID", "s", "g2", "-", "ENTRIESREAD", "2"],
                &["XGROUP", "SETID", "s", "g3", "+"],
                &["XGROUP", "SETID", "nokey", "g", "0"],
                &["XGROUP", "CREATECONSUMER", "s", "g", "c1"],
                &["XGROUP", "CREATECONSUMER", "s", "g", "c1"],
                &["XGROUP", "CREATECONSUMER", "s", "nog", "c1"],
                &["XGROUP", "CREATECONSUMER", "nokey", "g", "c1"],
                &["XGROUP", "DELCONSUMER", "s", "g", "c9"],
                &["XGROUP", "DELCONSUMER", "s", "nog", "c9"],
                &["XGROUP", "DESTROY", "s", "nog"],
                &["XGROUP", "DESTROY", "nokey", "g"],
                &["XGROUP", "DESTROY", "str", "g"],
                &["XGROUP", "DESTROY", "s", "g6"],
                &["XGROUP", "foo", "s", "g"],
                &["XGROUP", "foo"],
                &["XGROUP"],
                &["XGROUP", "CREATE", "s"],
                &["XGROUP", "DESTROY", "s", "g", "x"],
                &["XGROUP", "CREATECONSUMER", "s", "g"],
                &["XGROUP", "DELCONSUMER", "s", "g", "a", "b"],
                &["XGROUP", "SETID", "s", "g"],
                &["XGROUP", "HELP"],
                &["XGROUP", "help", "x"],
                &["PING"],
            ],
        );
        check_state(p, "s", &["g", "g2", "g3", "g4", "g5"]);
        // DELCONSUMER returns the consumer's pending count.
        add_entries(p, "s", 3);
        run(
            p,
            &[
                &["XREADGROUP", "GROUP", "g2", "c", "STREAMS", "s", ">"],
                &["XGROUP", "DELCONSUMER", "s", "g2", "c"],
                &["XGROUP", "DESTROY", "s", "g2"],
                &["XGROUP", "DESTROY", "s", "g2"],
            ],
        );
        check_state(p, "s", &["g", "g3"]);
    });
}

#[test]
fn xreadgroup_and_xack_match_redis() {
    in_both_protocols(|p| {
        add_entries(p, "s", 3);
        run(
            p,
            &[
                &["SET", "str", "x"],
                &["XGROUP", "CREATE", "s", "g", "0"],
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s"],
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">", "x"],
                &["XREADGROUP", "GROUP", "g", "STREAMS", "s", ">"],
                &["XREADGROUP", "COUNT", "1", "STREAMS", "s", ">", "s", ">"],
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "$"],
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "bad"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "STREAMS",
                    "s",
                    "nokey",
                    ">",
                    ">",
                ],
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "str", ">"],
                &["XREADGROUP", "GROUP", "nog", "c1", "STREAMS", "s", ">"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "COUNT",
                    "x",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "BLOCK",
                    "-1",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "BLOCK",
                    "x",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &["XREADGROUP", "GROUP", "g", "c1", "FOO", "STREAMS", "s", ">"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "COUNT",
                    "-5",
                    "STREAMS",
                    "s",
                    "0",
                ],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "COUNT",
                    "1",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"],
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0-0"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "NOACK",
                    "COUNT",
                    "1",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"],
                &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c2",
                    "BLOCK",
                    "10",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &["XDEL", "s", "2-0", "3-0"],
                &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", "0"],
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "1"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "STREAMS",
                    "s",
                    "18446744073709551615-18446744073709551615",
                ],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "COUNT",
                    "0",
                    "STREAMS",
                    "s",
                    "s",
                    "0",
                    "0",
                ],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "GROUP",
                    "g2",
                    "c3",
                    "STREAMS",
                    "s",
                    "0",
                ],
                &["XREADGROUP", "GROUP", "g", "c3", "STREAMS", "s", ">"],
            ],
        );
        check_state(p, "s", &["g"]);
        run(
            p,
            &[
                &["XACK", "s", "g"],
                &["XACK", "s", "g", "1-0", "bad"],
                &["XACK", "s", "nog", "1-0"],
                &["XACK", "nokey", "g", "1-0", "bad"],
                &["XACK", "str", "g", "1-0"],
                &["XACK", "s", "g", "1-0", "1-0", "3-0", "9-0"],
                &["XACK", "s", "g", "1-0"],
            ],
        );
        check_state(p, "s", &["g"]);
        // Two groups on two streams, and entries-read / lag across deletions.
        add_entries(p, "t", 5);
        run(
            p,
            &[
                &["XDEL", "t", "1-0"],
                &["XGROUP", "CREATE", "t", "a", "0", "ENTRIESREAD", "0"],
                &["XGROUP", "CREATE", "t", "b", "0"],
                &["XGROUP", "CREATE", "t", "c", "2-0"],
                &["XGROUP", "CREATE", "t", "d", "1-0"],
                &["XGROUP", "CREATE", "t", "e", "9-0"],
                &["XGROUP", "CREATE", "s", "a", "$"],
                &["XINFO", "GROUPS", "t"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "a",
                    "x",
                    "COUNT",
                    "1",
                    "STREAMS",
                    "t",
                    "s",
                    ">",
                    ">",
                ],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "b",
                    "x",
                    "COUNT",
                    "1",
                    "STREAMS",
                    "t",
                    ">",
                ],
                &["XINFO", "GROUPS", "t"],
                &["XDEL", "t", "4-0"],
                &["XREADGROUP", "GROUP", "a", "x", "STREAMS", "t", ">"],
                &["XINFO", "GROUPS", "t"],
                &["XADD", "s", "9-0", "f", "v"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "a",
                    "y",
                    "NOACK",
                    "STREAMS",
                    "t",
                    "s",
                    ">",
                    ">",
                ],
                &["XDEL", "t", "2-0", "3-0", "5-0"],
                &["XINFO", "GROUPS", "t"],
                &["XINFO", "STREAM", "t"],
                &["XSETID", "t", "5-0", "ENTRIESADDED", "9"],
                &["XINFO", "GROUPS", "t"],
                &["XADD", "t", "6-0", "f", "v"],
                &["XINFO", "GROUPS", "t"],
                &["XINFO", "STREAM", "t"],
            ],
        );
        // Nothing blocks inside a transaction; ENTRIESREAD above the entries added gives
        // a negative lag.
        run(
            p,
            &[
                &["XGROUP", "CREATE", "t", "big", "0", "ENTRIESREAD", "100"],
                &["MULTI"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "big",
                    "m",
                    "BLOCK",
                    "0",
                    "STREAMS",
                    "t",
                    ">",
                ],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "big",
                    "m",
                    "BLOCK",
                    "0",
                    "STREAMS",
                    "t",
                    ">",
                ],
                &["EXEC"],
                &["XINFO", "GROUPS", "t"],
            ],
        );
        check_state(p, "t", &["a", "b", "c", "d", "e", "big"]);
        check_state(p, "s", &["a", "g"]);
    });
}

#[test]
fn xpending_matches_redis() {
    in_both_protocols(|p| {
        add_entries(p, "s", 4);
        run(
            p,
            &[
                &["SET", "str", "x"],
                &["XGROUP", "CREATE", "s", "g", "0"],
                &["XPENDING", "s", "g"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "COUNT",
                    "2",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"],
                &["XPENDING", "s", "nog"],
                &["XPENDING", "nokey", "g"],
                &["XPENDING", "str", "g"],
                &["XPENDING", "s", "g", "-", "+"],
                &["XPENDING", "s", "g", "-", "+", "x"],
                &["XPENDING", "s", "g", "-", "+", "-1"],
                &["XPENDING", "s", "g", "-", "+", "0"],
                &["XPENDING", "s", "g", "IDLE", "0", "-", "+", "10"],
                &["XPENDING", "s", "g", "IDLE", "x", "-", "+", "10"],
                &["XPENDING", "s", "g", "IDLE", "-5", "-", "+", "10"],
                &["XPENDING", "s", "g", "IDLE", "100000", "-", "+", "10"],
                &["XPENDING", "s", "g", "IDLE", "0", "-", "+", "10", "c1"],
                &["XPENDING", "s", "g", "-", "+", "10", "c9"],
                &["XPENDING", "s", "g", "-", "+", "10", "c1", "extra"],
                &["XPENDING", "s", "g", "-", "+", "1", "c2"],
                &["XPENDING", "s", "g", "bad", "+", "10"],
                &["XPENDING", "s", "g", "(1-0", "+", "10"],
                &[
                    "XPENDING",
                    "s",
                    "g",
                    "(18446744073709551615-18446744073709551615",
                    "+",
                    "10",
                ],
                &["XPENDING", "s", "g", "-", "(0-0", "10"],
                &["XPENDING", "s", "g", "-", "(3", "10"],
                &["XPENDING", "s", "g", "+", "-", "10"],
                &["XPENDING", "s", "g", "2", "3", "10"],
                &["XPENDING", "s", "g", "IDLE", "5"],
                &["XPENDING", "s", "g", "IDLE"],
                &["XPENDING", "s", "g", "foo"],
                &["XPENDING", "s", "g", "-", "+", "10", "c1", "a", "b"],
                &["XPENDING", "nokey", "g", "-", "+", "10"],
                &["XPENDING", "s"],
            ],
        );
        check_state(p, "s", &["g"]);
    });
}

#[test]
fn xclaim_matches_redis() {
    in_both_protocols(|p| {
        add_entries(p, "s", 5);
        run(
            p,
            &[
                &["SET", "str", "x"],
                &["XGROUP", "CREATE", "s", "g", "0"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "COUNT",
                    "3",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &["XDEL", "s", "2-0"],
                &["XCLAIM", "s", "g", "c2", "100000", "1-0", "2-0", "9-0"],
                &["XCLAIM", "s", "g", "c2", "0", "1-0", "2-0", "9-0"],
                &["XCLAIM", "s", "g", "c2", "0"],
                &["XCLAIM", "s", "g", "c2", "x", "1-0"],
                &["XCLAIM", "s", "g", "c2", "-5", "1-0", "JUSTID"],
                &["XCLAIM", "s", "g", "c2", "0", "1-0", "IDLE", "x"],
                &["XCLAIM", "s", "g", "c2", "0", "1-0", "TIME", "x"],
                &["XCLAIM", "s", "g", "c2", "0", "1-0", "RETRYCOUNT", "x"],
                &["XCLAIM", "s", "g", "c2", "0", "1-0", "LASTID", "x"],
                &["XCLAIM", "s", "g", "c2", "0", "1-0", "foo"],
                &["XCLAIM", "s", "g", "c2", "0", "1-0", "IDLE"],
                &["XCLAIM", "s", "g", "c2", "0", "1-0", "bad", "3-0"],
                &["XCLAIM", "s", "nog", "c2", "0", "1-0"],
                &["XCLAIM", "nokey", "g", "c2", "0", "1-0"],
                &["XCLAIM", "str", "g", "c2", "0", "1-0"],
                &["XCLAIM", "s", "nog", "c2", "x", "1-0"],
                &["XCLAIM", "s", "g", "c3", "0", "4-0", "FORCE", "JUSTID"],
                &["XCLAIM", "s", "g", "c3", "0", "5-0", "FORCE"],
                &["XCLAIM", "s", "g", "c3", "0", "9-0", "FORCE", "JUSTID"],
                &[
                    "XCLAIM",
                    "s",
                    "g",
                    "c3",
                    "0",
                    "3-0",
                    "RETRYCOUNT",
                    "7",
                    "IDLE",
                    "100000",
                    "JUSTID",
                ],
                &[
                    "XCLAIM", "s", "g", "c4", "50000", "3-0", "5-0", "LASTID", "4-5",
                ],
                &["XCLAIM", "s", "g", "c4", "0", "1-0", "IDLE", "-5", "JUSTID"],
                &[
                    "XCLAIM",
                    "s",
                    "g",
                    "c4",
                    "0",
                    "1-0",
                    "TIME",
                    "99999999999999",
                    "JUSTID",
                ],
                &[
                    "XCLAIM",
                    "s",
                    "g",
                    "c4",
                    "0",
                    "1-0",
                    "RETRYCOUNT",
                    "-5",
                    "JUSTID",
                ],
                &[
                    "XCLAIM", "s", "g", "c4", "0", "1-0", "1-0", "JUSTID", "LASTID", "1-0",
                ],
            ],
        );
        check_state(p, "s", &["g"]);
    });
}

#[test]
fn xautoclaim_matches_redis() {
    in_both_protocols(|p| {
        add_entries(p, "s", 7);
        run(
            p,
            &[
                &["SET", "str", "x"],
                &["XGROUP", "CREATE", "s", "g", "0"],
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"],
                &["XDEL", "s", "2-0", "3-0", "6-0"],
                &["XAUTOCLAIM", "s", "g", "c2", "100000", "0"],
                &["XAUTOCLAIM", "s", "g", "c2", "0", "0", "COUNT", "1"],
                &[
                    "XAUTOCLAIM",
                    "s",
                    "g",
                    "c2",
                    "0",
                    "0",
                    "COUNT",
                    "2",
                    "JUSTID",
                ],
                &["XAUTOCLAIM", "s", "g", "c2", "0", "0"],
                &["XAUTOCLAIM", "s", "g", "c2", "0", "(4-0", "COUNT", "1"],
                &["XAUTOCLAIM", "s", "g", "c2", "x", "0"],
                &["XAUTOCLAIM", "s", "g", "c2", "0", "x"],
                &["XAUTOCLAIM", "s", "g", "c2", "0", "0", "COUNT", "0"],
                &["XAUTOCLAIM", "s", "g", "c2", "0", "0", "COUNT", "x"],
                &["XAUTOCLAIM", "s", "g", "c2", "0", "0", "COUNT"],
                &["XAUTOCLAIM", "s", "g", "c2", "0", "0", "foo"],
                &["XAUTOCLAIM", "s", "nog", "c2", "0", "0"],
                &["XAUTOCLAIM", "nokey", "g", "c2", "0", "0"],
                &["XAUTOCLAIM", "str", "g", "c2", "0", "0"],
                &["XAUTOCLAIM", "nokey", "g", "c2", "x", "0"],
                &[
                    "XAUTOCLAIM",
                    "s",
                    "g",
                    "c2",
                    "0",
                    "(18446744073709551615-18446744073709551615",
                ],
                &["XAUTOCLAIM", "s", "g", "c3", "100000", "0"],
                &["XCLAIM", "s", "g", "c9", "0", "4-0", "FORCE"],
                &["XAUTOCLAIM", "s", "g", "c2", "0", "-", "COUNT", "1"],
                &["XAUTOCLAIM", "s", "g", "c2", "0", "+", "COUNT", "1"],
                &[
                    "XAUTOCLAIM",
                    "s",
                    "g",
                    "c2",
                    "-10",
                    "5",
                    "COUNT",
                    "2",
                    "JUSTID",
                ],
            ],
        );
        check_state(p, "s", &["g"]);
        // At most 10 * COUNT pending entries are examined per call: the cursor says where
        // the scan stopped.
        add_entries(p, "m", 30);
        run(
            p,
            &[
                &["XGROUP", "CREATE", "m", "g", "0"],
                &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "m", ">"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "COUNT",
                    "2",
                    "STREAMS",
                    "m",
                    "5",
                ],
                &["XAUTOCLAIM", "m", "g", "c2", "100000", "0", "COUNT", "1"],
                &[
                    "XAUTOCLAIM",
                    "m",
                    "g",
                    "c2",
                    "100000",
                    "0",
                    "COUNT",
                    "2",
                    "JUSTID",
                ],
                &["XAUTOCLAIM", "m", "g", "c2", "100000", "25", "COUNT", "3"],
                &[
                    "XCLAIM", "m", "g", "c3", "0", "3", "IDLE", "200000", "JUSTID",
                ],
                &[
                    "XAUTOCLAIM",
                    "m",
                    "g",
                    "c2",
                    "100000",
                    "0",
                    "COUNT",
                    "1",
                    "JUSTID",
                ],
            ],
        );
        check_state(p, "m", &["g"]);
    });
}

#[test]
fn xinfo_matches_redis() {
    in_both_protocols(|p| {
        run(
            p,
            &[
                &["SET", "str", "x"],
                &["XGROUP", "CREATE", "e", "g", "$", "MKSTREAM"],
                &["XINFO", "STREAM", "e"],
                &["XINFO", "STREAM", "e", "FULL"],
                &["XINFO", "HELP"],
                &["XINFO", "STREAM", "nokey"],
                &["XINFO", "GROUPS", "nokey"],
                &["XINFO", "CONSUMERS", "nokey", "g"],
                &["XINFO", "CONSUMERS", "e", "nog"],
                &["XINFO", "STREAM", "str"],
                &["XINFO", "GROUPS", "str"],
                &["XINFO", "foo", "e"],
                &["XINFO"],
                &["XINFO", "help", "x"],
                &["XINFO", "GROUPS"],
                &["XINFO", "GROUPS", "e", "x"],
                &["XINFO", "STREAM", "e", "foo"],
                &["XINFO", "STREAM", "e", "FULL", "foo"],
                &["XINFO", "STREAM", "e", "FULL", "COUNT"],
                &["XINFO", "STREAM", "e", "FULL", "COUNT", "1", "x"],
                &["XINFO", "STREAM", "e", "FULL", "COUNT", "x"],
            ],
        );
        add_entries(p, "s", 12);
        run(
            p,
            &[
                &["XGROUP", "CREATE", "s", "g", "0"],
                &["XGROUP", "CREATE", "s", "h", "$"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c1",
                    "COUNT",
                    "11",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"],
                &["XGROUP", "CREATECONSUMER", "s", "h", "idle"],
                &["XDEL", "s", "1-0", "5-0"],
                &["XINFO", "STREAM", "s"],
                &["XINFO", "STREAM", "s", "FULL"],
                &["XINFO", "STREAM", "s", "full", "count", "1"],
                &["XINFO", "STREAM", "s", "FULL", "COUNT", "0"],
                &["XINFO", "STREAM", "s", "FULL", "COUNT", "-1"],
                &["XINFO", "GROUPS", "s"],
                &["XINFO", "CONSUMERS", "s", "g"],
                &["XINFO", "CONSUMERS", "s", "h"],
                &["XTRIM", "s", "MAXLEN", "0"],
                &["XINFO", "STREAM", "s"],
                &["XINFO", "GROUPS", "s"],
            ],
        );
    });
}

/// The same blocking scenario on one server: its transcript.
fn blocking_script(addr: &str) -> Vec<String> {
    let mut log = Vec::new();
    let mut record = |what: &str, reply: Vec<u8>| {
        log.push(format!("{what}: {}", String::from_utf8_lossy(&reply)));
    };
    let mut main = Client::connect(addr, REDIS_DB);
    let mut a = Client::connect(addr, REDIS_DB);
    let mut b = Client::connect(addr, REDIS_DB);
    record(
        "create",
        main.call(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]),
    );
    record(
        "timeout",
        a.call(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "BLOCK",
            "20",
            "STREAMS",
            "s",
            ">",
        ]),
    );
    // Two consumers of one group blocked: the first gets the entry, the second waits.
    a.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "a",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    settle();
    b.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "b",
        "COUNT",
        "5",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    settle();
    record("xadd", main.call(&["XADD", "s", "1-0", "f", "1"]));
    record("first served", a.receive());
    settle();
    assert!(!b.has_reply(), "the second consumer keeps waiting");
    record("xadd", main.call(&["XADD", "s", "2-0", "f", "2"]));
    record("second served", b.receive());
    record("pending", main.call(&["XPENDING", "s", "g"]));
    // History ids never block; a NOACK read served when blocked adds nothing pending.
    record(
        "history",
        a.call(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            "0",
        ]),
    );
    a.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "a",
        "NOACK",
        "BLOCK",
        "0",
        "STREAMS",
        "other",
        "s",
        ">",
        ">",
    ]);
    settle();
    record(
        "other group create",
        main.call(&["XGROUP", "CREATE", "other", "g", "$", "MKSTREAM"]),
    );
    record("xadd", main.call(&["XADD", "s", "3-0", "f", "3"]));
    record("noack served", a.receive());
    record("pending", main.call(&["XPENDING", "s", "g"]));
    // DESTROY of the group unblocks its readers with an error.
    b.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "b",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    settle();
    record("destroy", main.call(&["XGROUP", "DESTROY", "s", "g"]));
    record("unblocked", b.receive());
    record("ping", b.call(&["PING"]));
    // The key deleted, or overwritten by another type, while a group reader waits on
    // it: `-UNBLOCKED` (a plain XREAD keeps waiting and times out).
    for (name, change) in [
        ("del", vec!["DEL", "s"]),
        ("set", vec!["SET", "s", "now a string"]),
        ("rename over", vec!["RENAME", "t", "s"]),
        ("flushdb", vec!["FLUSHDB"]),
    ] {
        record("recreate", main.call(&["DEL", "s", "t"]));
        record(
            "create",
            main.call(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]),
        );
        record("string t", main.call(&["SET", "t", "x"]));
        b.send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "b",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ]);
        a.send(&["XREAD", "BLOCK", "300", "STREAMS", "s", "$"]);
        settle();
        record(name, main.call(&change));
        record("group reader", b.receive());
        record("plain reader", a.receive());
    }
    log
}

#[test]
fn blocking_xreadgroup_matches_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let girder = server_addr(&mut p.girder);
    let redis = server_addr(&mut p.redis);
    drop::<Raw>(p.girder);
    let g = blocking_script(&girder);
    let r = blocking_script(&redis);
    assert_eq!(g, r, "left: Girder, right: Redis");
}

/// WATCH sees what Redis counts as a modification of a stream: its entries (XADD, an
/// XDEL or XTRIM that removed something), not group state (XGROUP, XREADGROUP, XACK,
/// XCLAIM, XAUTOCLAIM) nor XSETID.
fn watch_script(addr: &str) -> Vec<String> {
    let mut log = Vec::new();
    let mut a = Client::connect(addr, REDIS_DB);
    let mut b = Client::connect(addr, REDIS_DB);
    let base: &[&[&str]] = &[
        &["XADD", "s", "1-0", "a", "1"],
        &["XADD", "s", "2-0", "a", "2"],
        &["XGROUP", "CREATE", "s", "g", "0"],
    ];
    let read: &[&str] = &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"];
    let cases: &[(&str, bool, &[&str])] = &[
        (
            "xgroup create",
            false,
            &["XGROUP", "CREATE", "s", "g2", "0"],
        ),
        (
            "createconsumer",
            false,
            &["XGROUP", "CREATECONSUMER", "s", "g", "c9"],
        ),
        (
            "delconsumer",
            true,
            &["XGROUP", "DELCONSUMER", "s", "g", "c"],
        ),
        ("setid", false, &["XGROUP", "SETID", "s", "g", "1-0"]),
        ("destroy", false, &["XGROUP", "DESTROY", "s", "g"]),
        ("readgroup", false, read),
        ("readgroup nothing", true, read),
        (
            "readgroup history",
            true,
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"],
        ),
        ("xack", true, &["XACK", "s", "g", "1-0"]),
        ("xack none", true, &["XACK", "s", "g", "9-0"]),
        ("xclaim", true, &["XCLAIM", "s", "g", "d", "0", "1-0"]),
        ("xautoclaim", true, &["XAUTOCLAIM", "s", "g", "d", "0", "0"]),
        ("xdel", false, &["XDEL", "s", "1-0"]),
        ("xdel none", false, &["XDEL", "s", "9-0"]),
        ("xtrim", false, &["XTRIM", "s", "MAXLEN", "1"]),
        ("xtrim none", false, &["XTRIM", "s", "MAXLEN", "5"]),
        ("xsetid", false, &["XSETID", "s", "5-0"]),
        ("xadd", false, &["XADD", "s", "3-0", "a", "3"]),
    ];
    for (name, after_read, command) in cases {
        a.call(&["DEL", "s"]);
        for c in base {
            a.call(c);
        }
        if *after_read {
            a.call(read);
        }
        a.call(&["WATCH", "s"]);
        b.call(command);
        a.call(&["MULTI"]);
        a.call(&["XLEN", "s"]);
        log.push(format!(
            "{name}: {}",
            String::from_utf8_lossy(&a.call(&["EXEC"]))
        ));
    }
    log
}

#[test]
fn watch_counts_entry_changes_only() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let girder = server_addr(&mut p.girder);
    let redis = server_addr(&mut p.redis);
    drop::<Raw>(p.girder);
    assert_eq!(
        watch_script(&girder),
        watch_script(&redis),
        "left: Girder, right: Redis"
    );
}
