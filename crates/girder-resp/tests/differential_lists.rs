//! Differential tests of the list commands against a real Redis 7: see `common/mod.rs`
//! for the harness. Every sequence ends with checks of the keys it touched (contents,
//! type, TTL) so a wrong state is caught even when the replies agree.

mod common;

use common::client::{server_addr, settle, Client};
use common::{args, pair, Pair};
use proptest::prelude::*;

const REDIS_DB: &str = "12";

/// Compares the whole state of `keys` on both sides.
fn check_state(p: &mut Pair, keys: &[&str]) {
    for key in keys {
        p.check(&args(&["LRANGE", key, "0", "-1"]));
        p.check(&args(&["TYPE", key]));
        p.check(&args(&["EXISTS", key]));
        p.check(&args(&["TTL", key]));
    }
}

#[test]
fn push_and_pop_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "s", "x"],
        &["LPUSH", "l", "a", "b", "c"],
        &["RPUSH", "l", "d", "e"],
        &["LPUSH", "l"],
        &["RPUSH", "l"],
        &["LPUSH", "s", "a"],
        &["RPUSH", "s", "a"],
        &["LPUSHX", "nol", "a"],
        &["RPUSHX", "nol", "a", "b"],
        &["LPUSHX", "l", "x", "y"],
        &["RPUSHX", "l", "z"],
        &["LPUSHX", "s", "a"],
        &["RPUSHX", "s", "a"],
        &["LPUSHX", "l"],
        &["EXISTS", "nol"],
        &["LPUSH", "e", ""],
        &["LPOP", "e"],
        &["EXISTS", "e"],
        &["LPOP", "l"],
        &["RPOP", "l"],
        &["LPOP", "l", "2"],
        &["RPOP", "l", "2"],
        &["LPOP", "l", "0"],
        &["RPOP", "l", "0"],
        &["LPOP", "l", "-1"],
        &["RPOP", "l", "abc"],
        &["LPOP", "l", "1.5"],
        &["LPOP", "l", "1", "2"],
        &["RPOP", "l", "1", "2"],
        &["LPOP"],
        &["LPOP", "nol"],
        &["RPOP", "nol"],
        &["LPOP", "nol", "0"],
        &["RPOP", "nol", "3"],
        &["LPOP", "nol", "-1"],
        &["LPOP", "s"],
        &["RPOP", "s", "0"],
        &["LPOP", "s", "-1"],
        &["RPOP", "l", "100"],
        &["EXISTS", "l"],
        &["RPUSH", "l", "1", "2", "3"],
        &["LPOP", "l", "9223372036854775807"],
        &["EXISTS", "l"],
        &["RPUSH", "n", "1", "2"],
        &["OBJECT", "ENCODING", "n"],
        &["LLEN", "n"],
        &["LLEN", "nol"],
        &["LLEN", "s"],
        &["LLEN"],
        &["lpush", "mixed", "A"],
        &["LpUsH", "mixed", "B"],
    ]);
    check_state(&mut p, &["l", "n", "e", "mixed", "s", "nol"]);
}

#[test]
fn ttl_is_kept_on_modification_and_new_keys_have_none() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["RPUSH", "l", "a", "b", "c", "d", "e"],
        &["EXPIRE", "l", "1000"],
        &["LPUSH", "l", "z"],
        &["RPUSHX", "l", "y"],
        &["LPOP", "l"],
        &["RPOP", "l", "1"],
        &["LSET", "l", "0", "q"],
        &["LINSERT", "l", "BEFORE", "q", "p"],
        &["LREM", "l", "1", "p"],
        &["LTRIM", "l", "0", "3"],
        &["LMOVE", "l", "l", "LEFT", "RIGHT"],
        &["LMOVE", "l", "fresh", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "l", "fresh"],
        &["LMPOP", "1", "l", "LEFT"],
        &["TTL", "fresh"],
        &["TTL", "l"],
        // Emptying a key with a TTL removes it (and its TTL): a new push starts clean.
        &["LPOP", "l", "10"],
        &["EXISTS", "l"],
        &["RPUSH", "l", "again"],
        &["TTL", "l"],
    ]);
    check_state(&mut p, &["l", "fresh"]);
}

#[test]
fn lrange_and_lindex_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "s", "x"],
        &["RPUSH", "l", "a", "b", "c", "d", "e"],
        &["LRANGE", "l", "0", "-1"],
        &["LRANGE", "l", "1", "3"],
        &["LRANGE", "l", "-2", "-1"],
        &["LRANGE", "l", "-100", "100"],
        &["LRANGE", "l", "3", "1"],
        &["LRANGE", "l", "5", "10"],
        &["LRANGE", "l", "-1", "-2"],
        &["LRANGE", "l", "0", "0"],
        &["LRANGE", "l", "-6", "-6"],
        &["LRANGE", "l", "-9223372036854775808", "9223372036854775807"],
        &["LRANGE", "l", "9223372036854775807", "-9223372036854775808"],
        &["LRANGE", "l", "x", "1"],
        &["LRANGE", "l", "0", "1.0"],
        &["LRANGE", "l", "01", "2"],
        &["LRANGE", "l", "+1", "2"],
        &["LRANGE", "l", "-0", "2"],
        &["LRANGE", "l", " 1", "2"],
        &["LRANGE", "l", "99999999999999999999", "2"],
        &["LRANGE", "nol", "0", "-1"],
        &["LRANGE", "nol", "x", "-1"],
        &["LRANGE", "s", "0", "-1"],
        &["LRANGE", "s", "x", "-1"],
        &["LRANGE", "l", "0"],
        &["LINDEX", "l", "0"],
        &["LINDEX", "l", "4"],
        &["LINDEX", "l", "5"],
        &["LINDEX", "l", "-1"],
        &["LINDEX", "l", "-5"],
        &["LINDEX", "l", "-6"],
        &["LINDEX", "l", "9223372036854775807"],
        &["LINDEX", "l", "-9223372036854775808"],
        &["LINDEX", "l", "x"],
        &["LINDEX", "nol", "0"],
        &["LINDEX", "nol", "x"],
        &["LINDEX", "s", "0"],
        &["LINDEX", "s", "x"],
        &["LINDEX", "l"],
        &["LINDEX", "l", "0", "1"],
    ]);
}

#[test]
fn lset_lrem_ltrim_linsert_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "s", "x"],
        &["RPUSH", "l", "a", "b", "a", "c", "a", "b"],
        &["LSET", "l", "0", "A"],
        &["LSET", "l", "-1", "B"],
        &["LSET", "l", "6", "x"],
        &["LSET", "l", "-7", "x"],
        &["LSET", "l", "x", "v"],
        &["LSET", "nol", "0", "v"],
        &["LSET", "nol", "x", "v"],
        &["LSET", "s", "0", "v"],
        &["LSET", "s", "x", "v"],
        &["LSET", "l", "0"],
        &["LRANGE", "l", "0", "-1"],
        &["LREM", "l", "1", "a"],
        &["LREM", "l", "-1", "a"],
        &["LREM", "l", "0", "zz"],
        &["RPUSH", "l", "a", "a", "a", "x", "a"],
        &["LREM", "l", "-2", "a"],
        &["LRANGE", "l", "0", "-1"],
        &["LREM", "l", "2", "a"],
        &["LRANGE", "l", "0", "-1"],
        &["LREM", "l", "0", "a"],
        &["LREM", "l", "x", "a"],
        &["LREM", "nol", "1", "a"],
        &["LREM", "nol", "x", "a"],
        &["LREM", "s", "1", "a"],
        &["LREM", "s", "x", "a"],
        &["LREM", "l", "1"],
        &["RPUSH", "single", "v"],
        &["LREM", "single", "-9223372036854775808", "v"],
        &["EXISTS", "single"],
        &["RPUSH", "t", "0", "1", "2", "3", "4", "5", "6", "7"],
        &["LTRIM", "t", "1", "-2"],
        &["LRANGE", "t", "0", "-1"],
        &["LTRIM", "t", "-100", "100"],
        &["LTRIM", "t", "-3", "-1"],
        &["LRANGE", "t", "0", "-1"],
        &["LTRIM", "t", "x", "1"],
        &["LTRIM", "t", "0", "y"],
        &["LTRIM", "nol", "0", "1"],
        &["LTRIM", "nol", "x", "1"],
        &["LTRIM", "s", "0", "1"],
        &["LTRIM", "s", "x", "1"],
        &["LTRIM", "t", "2", "1"],
        &["EXISTS", "t"],
        &["RPUSH", "t", "a", "b"],
        &["LTRIM", "t", "5", "10"],
        &["EXISTS", "t"],
        &["RPUSH", "t", "a", "b"],
        &["LTRIM", "t", "-9223372036854775808", "9223372036854775807"],
        &["LTRIM", "t", "0"],
        &["RPUSH", "i", "a", "b", "a"],
        &["LINSERT", "i", "BEFORE", "a", "x"],
        &["LINSERT", "i", "after", "a", "y"],
        &["LINSERT", "i", "AfTeR", "b", "z"],
        &["LINSERT", "i", "BEFORE", "nope", "z"],
        &["LINSERT", "i", "MIDDLE", "a", "z"],
        &["LINSERT", "i", "MIDDLE", "nope", "z"],
        &["LINSERT", "nol", "BEFORE", "a", "z"],
        &["LINSERT", "nol", "MIDDLE", "a", "z"],
        &["LINSERT", "s", "BEFORE", "a", "z"],
        &["LINSERT", "s", "MIDDLE", "a", "z"],
        &["LINSERT", "i", "BEFORE", "a"],
        &["LINSERT", "i", "BEFORE", "", "empty"],
        &["RPUSH", "i", ""],
        &["LINSERT", "i", "BEFORE", "", "empty"],
    ]);
    check_state(&mut p, &["l", "t", "i", "single", "nol"]);
}

#[test]
fn lpos_matches_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "s", "x"],
        &["RPUSH", "l", "a", "b", "a", "c", "a", "b", "a"],
        &["LPOS", "l", "a"],
        &["LPOS", "l", "b"],
        &["LPOS", "l", "zz"],
        &["LPOS", "l", "a", "RANK", "2"],
        &["LPOS", "l", "a", "RANK", "-1"],
        &["LPOS", "l", "a", "RANK", "-3"],
        &["LPOS", "l", "a", "RANK", "5"],
        &["LPOS", "l", "a", "RANK", "-5"],
        &["LPOS", "l", "a", "RANK", "0"],
        &["LPOS", "l", "a", "RANK", "x"],
        &["LPOS", "l", "a", "RANK", "9223372036854775807"],
        &["LPOS", "l", "a", "RANK", "-9223372036854775807"],
        &["LPOS", "l", "a", "RANK", "-9223372036854775808"],
        &[
            "LPOS",
            "l",
            "a",
            "RANK",
            "-9223372036854775808",
            "COUNT",
            "2",
        ],
        &[
            "LPOS",
            "l",
            "a",
            "RANK",
            "-9223372036854775808",
            "COUNT",
            "0",
        ],
        &["LPOS", "l", "a", "COUNT", "0"],
        &["LPOS", "l", "a", "COUNT", "2"],
        &["LPOS", "l", "a", "COUNT", "100"],
        &["LPOS", "l", "zz", "COUNT", "0"],
        &["LPOS", "l", "a", "COUNT", "-1"],
        &["LPOS", "l", "a", "COUNT", "x"],
        &["LPOS", "l", "a", "RANK", "2", "COUNT", "2"],
        &["LPOS", "l", "a", "RANK", "-2", "COUNT", "0"],
        &["LPOS", "l", "a", "MAXLEN", "3"],
        &["LPOS", "l", "c", "MAXLEN", "3"],
        &["LPOS", "l", "a", "COUNT", "0", "MAXLEN", "3"],
        &["LPOS", "l", "a", "RANK", "-1", "COUNT", "0", "MAXLEN", "2"],
        &["LPOS", "l", "a", "RANK", "2", "MAXLEN", "2"],
        &["LPOS", "l", "a", "MAXLEN", "0"],
        &["LPOS", "l", "a", "MAXLEN", "-1"],
        &["LPOS", "l", "a", "MAXLEN", "x"],
        &["LPOS", "l", "a", "COUNT", "1", "COUNT", "0"],
        &["LPOS", "l", "a", "rank", "1", "count", "0", "maxlen", "0"],
        &["LPOS", "l", "a", "RANK"],
        &["LPOS", "l", "a", "COUNT"],
        &["LPOS", "l", "a", "BOGUS", "1"],
        &["LPOS", "l", "a", "RANK", "1", "extra"],
        &["LPOS", "l"],
        &["LPOS", "nol", "a"],
        &["LPOS", "nol", "a", "COUNT", "0"],
        &["LPOS", "nol", "a", "RANK", "0"],
        &["LPOS", "nol", "a", "BOGUS"],
        &["LPOS", "s", "a"],
        &["LPOS", "s", "a", "COUNT", "1"],
        &["LPOS", "s", "a", "RANK", "0"],
        &["LPOS", "s", "a", "COUNT", "-1"],
    ]);
}

#[test]
fn lmove_and_rpoplpush_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "s", "x"],
        &["RPUSH", "a", "1", "2", "3"],
        &["LMOVE", "a", "b", "LEFT", "LEFT"],
        &["LMOVE", "a", "b", "RIGHT", "RIGHT"],
        &["LMOVE", "b", "a", "left", "right"],
        &["LMOVE", "b", "a", "RiGhT", "LeFt"],
        &["LRANGE", "a", "0", "-1"],
        &["EXISTS", "b"],
        &["LMOVE", "a", "a", "LEFT", "RIGHT"],
        &["LMOVE", "a", "a", "RIGHT", "LEFT"],
        &["LMOVE", "a", "a", "LEFT", "LEFT"],
        &["LRANGE", "a", "0", "-1"],
        &["LMOVE", "nol", "a", "LEFT", "LEFT"],
        &["LMOVE", "nol", "s", "LEFT", "LEFT"],
        &["LMOVE", "s", "a", "LEFT", "LEFT"],
        &["LMOVE", "a", "s", "LEFT", "LEFT"],
        &["LMOVE", "a", "b", "UP", "LEFT"],
        &["LMOVE", "a", "b", "LEFT", "DOWN"],
        &["LMOVE", "nol", "b", "UP", "LEFT"],
        &["LMOVE", "s", "b", "UP", "LEFT"],
        &["LMOVE", "a", "b", "LEFT"],
        &["LRANGE", "a", "0", "-1"],
        &["RPOPLPUSH", "a", "c"],
        &["RPOPLPUSH", "a", "c"],
        &["RPOPLPUSH", "a", "a"],
        &["RPOPLPUSH", "nol", "c"],
        &["RPOPLPUSH", "s", "c"],
        &["RPOPLPUSH", "c", "s"],
        &["RPOPLPUSH", "nol", "s"],
        &["RPOPLPUSH", "a"],
        &["RPUSH", "one", "x"],
        &["RPOPLPUSH", "one", "one"],
        &["LMOVE", "one", "other", "LEFT", "LEFT"],
        &["EXISTS", "one"],
    ]);
    check_state(&mut p, &["a", "b", "c", "one", "other", "s", "nol"]);
}

#[test]
fn lmpop_matches_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "s", "x"],
        &["RPUSH", "a", "1", "2", "3"],
        &["RPUSH", "b", "x", "y"],
        &["LMPOP", "1", "a", "LEFT"],
        &["LMPOP", "1", "a", "RIGHT"],
        &["LMPOP", "2", "nol", "b", "LEFT", "COUNT", "5"],
        &["EXISTS", "b"],
        &["LMPOP", "2", "nol", "a", "right", "count", "1"],
        &["LMPOP", "2", "nol", "nol2", "LEFT"],
        &["LMPOP", "2", "nol", "nol2", "LEFT", "COUNT", "3"],
        &["RPUSH", "a", "4", "5", "6"],
        &["LMPOP", "3", "nol", "a", "s", "LEFT", "COUNT", "2"],
        &["LMPOP", "2", "s", "a", "LEFT"],
        &["LMPOP", "2", "nol", "s", "LEFT"],
        &["LMPOP", "2", "a", "a", "LEFT"],
        &["LMPOP", "0", "a", "LEFT"],
        &["LMPOP", "-1", "a", "LEFT"],
        &["LMPOP", "x", "a", "LEFT"],
        &["LMPOP", "2", "a", "LEFT"],
        &["LMPOP", "3", "a", "LEFT"],
        &["LMPOP", "100", "a", "LEFT"],
        &["LMPOP", "1", "a", "MIDDLE"],
        &["LMPOP", "1", "a", "LEFT", "COUNT"],
        &["LMPOP", "1", "a", "LEFT", "COUNT", "0"],
        &["LMPOP", "1", "a", "LEFT", "COUNT", "-1"],
        &["LMPOP", "1", "a", "LEFT", "COUNT", "x"],
        &["LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "2"],
        &["LMPOP", "1", "a", "LEFT", "EXTRA"],
        &["LMPOP", "1", "a", "LEFT", "EXTRA", "1"],
        &["LMPOP", "1", "nol", "MIDDLE", "COUNT", "0"],
        &["LMPOP", "1", "a"],
        &["LMPOP", "1"],
        &["LMPOP", "1", "a", "LEFT", "COUNT", "9223372036854775807"],
        &["EXISTS", "a"],
    ]);
    check_state(&mut p, &["a", "b", "s"]);
}

#[test]
fn wrong_arity_matches_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["LPUSH", "k"],
        &["RPUSH"],
        &["LPUSHX", "k"],
        &["RPUSHX", "k"],
        &["RPOP"],
        &["LRANGE", "k"],
        &["LRANGE", "k", "0", "1", "2"],
        &["LSET", "k", "0"],
        &["LREM", "k"],
        &["LTRIM", "k", "0", "1", "2"],
        &["LINSERT", "k", "BEFORE", "a", "b", "c"],
        &["LPOS", "k"],
        &["LMOVE", "a", "b", "LEFT", "LEFT", "x"],
        &["RPOPLPUSH", "a", "b", "c"],
        &["LMPOP", "1", "a"],
        &["LLEN", "a", "b"],
    ]);
}

#[test]
fn large_lists_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let mut push = vec!["RPUSH".to_string(), "big".to_string()];
    push.extend((0..1000).map(|i| format!("e{}", i % 37)));
    let push: Vec<&str> = push.iter().map(String::as_str).collect();
    p.run(&[&push]);
    p.run(&[
        &["LLEN", "big"],
        &["LRANGE", "big", "500", "520"],
        &["LRANGE", "big", "-20", "-1"],
        &["LINDEX", "big", "777"],
        &["LPOS", "big", "e5", "RANK", "-3", "COUNT", "4"],
        &["LPOS", "big", "e5", "COUNT", "0", "MAXLEN", "100"],
        &["LREM", "big", "-10", "e3"],
        &["LREM", "big", "5", "e4"],
        &["LINSERT", "big", "AFTER", "e36", "new"],
        &["LTRIM", "big", "100", "-100"],
        &["LPOP", "big", "50"],
        &["RPOP", "big", "50"],
        &["LMPOP", "1", "big", "RIGHT", "COUNT", "30"],
        &["OBJECT", "ENCODING", "big"],
    ]);
    check_state(&mut p, &["big"]);
    // Girder keeps a list in blocks of 128: grow it at the head past several blocks, then
    // read, set and insert across the boundaries.
    let mut push = vec!["LPUSH".to_string(), "big".to_string()];
    push.extend((0..300).map(|i| format!("h{}", i % 11)));
    let push: Vec<&str> = push.iter().map(String::as_str).collect();
    p.run(&[&push]);
    p.run(&[
        &["LINDEX", "big", "127"],
        &["LINDEX", "big", "128"],
        &["LINDEX", "big", "-129"],
        &["LSET", "big", "128", "set128"],
        &["LSET", "big", "-200", "setm200"],
        &["LRANGE", "big", "120", "400"],
        &["LINSERT", "big", "BEFORE", "h10", "ins"],
        &["LINSERT", "big", "AFTER", "set128", "ins2"],
        &["LPOS", "big", "ins2"],
        &["LREM", "big", "0", "h3"],
        // LREM with a count: a few matches are removed one by one (near either end,
        // across blocks), many in one pass.
        &["LREM", "big", "1", "h5"],
        &["LREM", "big", "-1", "h7"],
        &["LREM", "big", "3", "e9"],
        &["LREM", "big", "20", "e5"],
        &["LREM", "big", "-20", "e6"],
        &["LREM", "big", "-2", "e7"],
        &["LRANGE", "big", "-300", "-250"],
        &["LTRIM", "big", "129", "-129"],
        &["LLEN", "big"],
    ]);
    check_state(&mut p, &["big"]);
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
    record("set", main.call(&["SET", "str", "v"]));

    // Elements present: served at once, as the non-blocking pops would.
    record("push", main.call(&["RPUSH", "k1", "x", "y", "z"]));
    record("blpop now", a.call(&["BLPOP", "missing", "k1", "0"]));
    record("brpop now", a.call(&["BRPOP", "k1", "0"]));
    record(
        "blmpop now",
        a.call(&["BLMPOP", "0", "1", "k1", "LEFT", "COUNT", "5"]),
    );
    record("gone", main.call(&["EXISTS", "k1"]));
    record("push", main.call(&["RPUSH", "k1", "a", "b"]));
    record(
        "blmove now",
        a.call(&["BLMOVE", "k1", "k2", "LEFT", "RIGHT", "0"]),
    );
    record(
        "brpoplpush now",
        a.call(&["BRPOPLPUSH", "k1", "k2", "0x10"]),
    );
    record("moved", main.call(&["LRANGE", "k2", "0", "-1"]));
    record("wrongtype", a.call(&["BLPOP", "missing", "str", "0"]));
    record(
        "wrongtype",
        a.call(&["BLMPOP", "0", "2", "str", "k2", "LEFT"]),
    );
    record(
        "wrongtype src",
        a.call(&["BLMOVE", "str", "k2", "LEFT", "LEFT", "0"]),
    );
    record(
        "wrongtype dst",
        a.call(&["BLMOVE", "k2", "str", "LEFT", "LEFT", "0"]),
    );
    record("wrongtype dst", a.call(&["BRPOPLPUSH", "k2", "str", "0"]));

    // Timeouts: a null array for every command, even BLMOVE.
    for cmd in [
        &["BLPOP", "none", "0.05"][..],
        &["BRPOP", "none", "none2", "0.01"],
        &["BLMOVE", "none", "str", "LEFT", "LEFT", "0.01"],
        &["BRPOPLPUSH", "none", "d", "0.01"],
        &[
            "BLMPOP", "0.01", "2", "none", "none2", "RIGHT", "COUNT", "2",
        ],
        &["BLPOP", "none", "0.0001"],
        &["BLPOP", "none", "1e-300"],
        &["BLPOP", "none", "+.01"],
        &["BLPOP", "none", "1.5e-3"],
    ] {
        record(&cmd.join(" "), a.call(cmd));
    }
    record("no key created", main.call(&["EXISTS", "none", "d"]));

    // Argument errors, before any key is looked at.
    for cmd in [
        &["BLPOP", "k", "-1"][..],
        &["BLPOP", "str", "x"],
        &["BLPOP", "k", "nan"],
        &["BLPOP", "k", "inf"],
        &["BLPOP", "k", "-inf"],
        &["BLPOP", "k", ""],
        &["BLPOP", "k", " 1"],
        &["BLPOP", "k", "1e16"],
        &["BLPOP", "k", "9223372036854776"],
        &["BLPOP", "k", "0.1e1", "extra"],
        &["BRPOP", "k", "-0.001x"],
        &["BLPOP", "k", "0x"],
        &["BLPOP", "k", "-0x1"],
        &["BLPOP", "k", "--1"],
        &["BLPOP", "k", "+-1"],
        &["BLPOP", "k"],
        &["BRPOP"],
        &["BLMOVE", "a", "b", "UP", "LEFT", "x"],
        &["BLMOVE", "a", "b", "LEFT", "DOWN", "0"],
        &["BLMOVE", "str", "b", "LEFT", "LEFT", "x"],
        &["BLMOVE", "a", "b", "LEFT", "LEFT"],
        &["BRPOPLPUSH", "a", "b", "-1"],
        &["BRPOPLPUSH", "a", "b"],
        &["BLMPOP", "x", "1", "k", "LEFT"],
        &["BLMPOP", "-1", "0", "k", "LEFT"],
        &["BLMPOP", "0", "2", "k", "LEFT"],
        &["BLMPOP", "0", "1", "k", "MIDDLE"],
        &["BLMPOP", "0", "1", "k", "LEFT", "COUNT", "0"],
        &["BLMPOP", "0", "1", "k", "LEFT", "COUNT", "1", "COUNT", "1"],
        &["BLMPOP", "-1", "1", "k", "LEFT"],
        &["BLMPOP", "0", "1", "k"],
    ] {
        record(&cmd.join(" "), a.call(cmd));
    }

    // A push to the second key wakes a client blocked on two.
    a.send(&["BLPOP", "q1", "q2", "0"]);
    settle();
    record("push q2", main.call(&["RPUSH", "q2", "v1", "v2"]));
    record("woken", a.receive());
    record("left", main.call(&["LRANGE", "q2", "0", "-1"]));

    // Waiters are served oldest first, each with its own pop, before the pusher's next
    // command.
    a.send(&["BRPOP", "f", "0"]);
    settle();
    b.send(&["BLPOP", "f", "0"]);
    settle();
    record("push f", main.call(&["RPUSH", "f", "1", "2", "3"]));
    record("left", main.call(&["LRANGE", "f", "0", "-1"]));
    record("first", a.receive());
    record("second", b.receive());

    // More waiters than elements: the rest keep waiting for the next push.
    a.send(&["BLPOP", "g", "0"]);
    settle();
    b.send(&["BLPOP", "g", "0"]);
    settle();
    record("push g", main.call(&["LPUSH", "g", "only"]));
    record("first", a.receive());
    assert!(!b.has_reply(), "second waiter must still wait");
    record("pushx g", main.call(&["RPUSHX", "g", "late"]));
    record("push g", main.call(&["RPUSH", "g", "next"]));
    record("second", b.receive());
    record("left", main.call(&["LRANGE", "g", "0", "-1"]));

    // A served BLMOVE pushes in turn and wakes the waiter on its destination.
    a.send(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]);
    settle();
    b.send(&["BLPOP", "dst", "0"]);
    settle();
    record("push src", main.call(&["RPUSH", "src", "m"]));
    record("mover", a.receive());
    record("popper", b.receive());
    record("both gone", main.call(&["EXISTS", "src", "dst"]));

    // LMOVE and RPOPLPUSH feed waiters too; so does BRPOPLPUSH when served at once.
    a.send(&["BRPOP", "fed", "0"]);
    settle();
    record("push", main.call(&["RPUSH", "feeder", "1", "2", "3"]));
    record(
        "lmove",
        main.call(&["LMOVE", "feeder", "fed", "LEFT", "LEFT"]),
    );
    record("fed", a.receive());
    a.send(&["BLPOP", "fed", "0"]);
    settle();
    record("rpoplpush", main.call(&["RPOPLPUSH", "feeder", "fed"]));
    record("fed", a.receive());
    a.send(&["BLPOP", "fed", "0"]);
    settle();
    record(
        "brpoplpush",
        main.call(&["BRPOPLPUSH", "feeder", "fed", "0"]),
    );
    record("fed", a.receive());

    // BLMPOP served with a count takes up to count from the key that was pushed.
    a.send(&["BLMPOP", "0", "2", "m1", "m2", "RIGHT", "COUNT", "2"]);
    settle();
    record("push m2", main.call(&["RPUSH", "m2", "a", "b", "c"]));
    record("blmpop", a.receive());
    record("left", main.call(&["LRANGE", "m2", "0", "-1"]));

    // BLMOVE whose destination became a string: the waiter gets the error, the element
    // stays.
    a.send(&["BLMOVE", "w", "str", "LEFT", "LEFT", "0"]);
    settle();
    record("push w", main.call(&["RPUSH", "w", "x"]));
    record("error", a.receive());
    record("left", main.call(&["LRANGE", "w", "0", "-1"]));

    // A push to a key the waiter does not watch, or of another type, wakes nobody; a
    // timeout after that still ends the wait.
    a.send(&["BLPOP", "t", "0.2"]);
    settle();
    record("other key", main.call(&["RPUSH", "not-t", "x"]));
    record("string", main.call(&["SET", "t", "x"]));
    record("del", main.call(&["DEL", "t"]));
    record("timed out", a.receive());

    // A client that disconnects while blocked takes nothing.
    let mut gone = Client::connect(addr, REDIS_DB);
    gone.send(&["BLPOP", "lost", "0"]);
    settle();
    drop(gone);
    settle();
    record("push lost", main.call(&["RPUSH", "lost", "x"]));
    record("kept", main.call(&["LRANGE", "lost", "0", "-1"]));

    // A client killed while blocked takes nothing either.
    let mut victim = Client::connect(addr, REDIS_DB);
    let id = String::from_utf8(victim.call(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim_end();
    victim.send(&["BLPOP", "killed", "0"]);
    settle();
    record("kill", main.call(&["CLIENT", "KILL", "ID", id]));
    settle();
    record("push killed", main.call(&["RPUSH", "killed", "x"]));
    record("kept", main.call(&["LRANGE", "killed", "0", "-1"]));

    // CLIENT UNBLOCK: as a timeout (the default and TIMEOUT), or with an error (ERROR),
    // for a blocked pop and a blocked XREADGROUP; 0 for a client that is not blocked,
    // and the reason is checked.
    let mut blocked = Client::connect(addr, REDIS_DB);
    let id = String::from_utf8(blocked.call(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim_end().to_owned();
    record("not blocked", main.call(&["CLIENT", "UNBLOCK", &id]));
    record(
        "bad reason",
        main.call(&["CLIENT", "UNBLOCK", &id, "LATER"]),
    );
    record("bad id", main.call(&["CLIENT", "UNBLOCK", "x"]));
    for mode in [None, Some("TIMEOUT"), Some("ERROR")] {
        blocked.send(&["BLPOP", "never", "0"]);
        settle();
        let mut cmd = vec!["CLIENT", "UNBLOCK", id.as_str()];
        cmd.extend(mode);
        record("unblock", main.call(&cmd));
        record("unblocked pop", blocked.receive());
    }
    record(
        "group",
        main.call(&["XGROUP", "CREATE", "ustream", "g", "$", "MKSTREAM"]),
    );
    blocked.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "ustream",
        ">",
    ]);
    settle();
    record("unblock", main.call(&["CLIENT", "UNBLOCK", &id, "ERROR"]));
    record("unblocked group read", blocked.receive());
    record("still serves", blocked.call(&["PING"]));

    // Commands pipelined after a blocked one wait for it, then run in order.
    a.send(&["BLPOP", "p", "0"]);
    a.send(&["LLEN", "p"]);
    a.send(&["PING"]);
    settle();
    record("push p", main.call(&["RPUSH", "p", "x", "y"]));
    record("served", a.receive());
    record("after", a.receive());
    record("ping", a.receive());

    // A timed wait that is served before its deadline gets the element.
    a.send(&["BRPOP", "soon", "5"]);
    settle();
    record("push soon", main.call(&["LPUSH", "soon", "v"]));
    record("served", a.receive());

    // The same key twice is one wait, served once.
    a.send(&["BLPOP", "twice", "twice", "0"]);
    settle();
    record("push twice", main.call(&["RPUSH", "twice", "1", "2"]));
    record("served", a.receive());
    record("left", main.call(&["LRANGE", "twice", "0", "-1"]));

    // RESP3: a timeout is a null, a served pop an array.
    let hello = a.call(&["HELLO", "3"]);
    assert!(hello.starts_with(b"%"), "HELLO 3 replies with a map");
    record("resp3 timeout", a.call(&["BLPOP", "none", "0.01"]));
    record(
        "resp3 timeout",
        a.call(&["BLMOVE", "none", "x", "LEFT", "LEFT", "0.01"]),
    );
    a.send(&["BLPOP", "r3", "0"]);
    settle();
    record("push r3", main.call(&["RPUSH", "r3", "x"]));
    record("resp3 served", a.receive());
    log
}

#[test]
fn blocking_commands_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let girder = blocking_script(&server_addr(&mut p.girder));
    let redis = blocking_script(&server_addr(&mut p.redis));
    for (g, r) in girder.iter().zip(&redis) {
        assert_eq!(g, r, "left: Girder, right: Redis");
    }
    assert_eq!(girder.len(), redis.len());
}

/// A random list command over a small key set (`s` is a string key), with arguments
/// drawn from small indexes, the edges of i64, and junk.
fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let key = prop::sample::select(vec!["a", "b", "c", "s"]);
    let elem = prop::sample::select(vec!["x", "y", "z", "", "1"]);
    let int = prop::sample::select(vec![
        "0",
        "1",
        "2",
        "3",
        "-1",
        "-2",
        "-3",
        "10",
        "-10",
        "x",
        "9223372036854775807",
        "-9223372036854775808",
    ]);
    let end = prop::sample::select(vec!["LEFT", "RIGHT", "left", "up"]);
    let name = prop::sample::select(vec![
        "LPUSH",
        "RPUSH",
        "LPUSHX",
        "RPUSHX",
        "LPOP",
        "RPOP",
        "LPOPN",
        "RPOPN",
        "LLEN",
        "LRANGE",
        "LINDEX",
        "LSET",
        "LREM",
        "LTRIM",
        "LINSERT",
        "LPOS",
        "LMOVE",
        "RPOPLPUSH",
        "LMPOP",
        "DEL",
        "SET",
        "EXPIRE",
    ]);
    (
        name,
        (key.clone(), key),
        (elem.clone(), elem),
        (int.clone(), int),
        (end.clone(), end),
    )
        .prop_map(|(name, (k1, k2), (e1, e2), (i1, i2), (d1, d2))| {
            let parts: Vec<&str> = match name {
                "LPUSH" | "RPUSH" | "LPUSHX" | "RPUSHX" => vec![name, k1, e1, e2],
                "LPOP" | "RPOP" | "LLEN" | "DEL" => vec![name, k1],
                "LPOPN" => vec!["LPOP", k1, i1],
                "RPOPN" => vec!["RPOP", k1, i1],
                "LRANGE" | "LTRIM" => vec![name, k1, i1, i2],
                "LINDEX" => vec![name, k1, i1],
                "LSET" | "LREM" => vec![name, k1, i1, e1],
                "LINSERT" if i1.starts_with('-') => vec![name, k1, "BEFORE", e1, e2],
                "LINSERT" => vec![name, k1, "AFTER", e1, e2],
                "LPOS" => vec![name, k1, e1, "RANK", i1, "COUNT", i2],
                "LMOVE" => vec![name, k1, k2, d1, d2],
                "RPOPLPUSH" => vec![name, k1, k2],
                "LMPOP" => vec![name, "2", k1, k2, d1, "COUNT", i1],
                "SET" => vec![name, "s", e1],
                "EXPIRE" => vec![name, k1, "100"],
                _ => unreachable!(),
            };
            parts.into_iter().map(|s| s.as_bytes().to_vec()).collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Generated sequences of list commands give identical replies and leave identical
    /// lists behind.
    #[test]
    fn generated_sequences_match_redis(cmds in prop::collection::vec(command(), 1..40)) {
        let Some(mut p) = pair(REDIS_DB) else { return Ok(()) };
        p.check(&args(&["SET", "s", "string"]));
        for cmd in &cmds {
            p.check(cmd);
        }
        check_state(&mut p, &["a", "b", "c", "s"]);
    }
}
