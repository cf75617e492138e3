//! Differential tests of LCS against a real Redis 7: see `common/mod.rs` for the
//! harness.

mod common;

use common::{args, pair, Pair};
use proptest::prelude::*;

const REDIS_DB: &str = "7";

/// Switches both sides to RESP3 (HELLO's own reply names the server, so it is not
/// compared).
fn resp3(p: &mut Pair) {
    p.girder.call(&args(&["HELLO", "3"]));
    p.redis.call(&args(&["HELLO", "3"]));
}

/// The four reply forms of LCS for one pair of keys, plus a minimum-length variant.
fn all_forms(p: &mut Pair, k1: &str, k2: &str) {
    p.run(&[
        &["LCS", k1, k2],
        &["LCS", k1, k2, "LEN"],
        &["LCS", k1, k2, "IDX"],
        &["LCS", k1, k2, "IDX", "WITHMATCHLEN"],
        &["LCS", k1, k2, "IDX", "MINMATCHLEN", "2", "WITHMATCHLEN"],
    ]);
}

#[test]
fn documented_examples_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["MSET", "key1", "ohmytext", "key2", "mynewtext"],
        &["LCS", "key1", "key2"],
        &["LCS", "key1", "key2", "LEN"],
        &["LCS", "key1", "key2", "IDX"],
        &["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4"],
        &[
            "LCS",
            "key1",
            "key2",
            "IDX",
            "MINMATCHLEN",
            "4",
            "WITHMATCHLEN",
        ],
        &[
            "LCS",
            "key1",
            "key2",
            "idx",
            "withmatchlen",
            "minmatchlen",
            "0",
        ],
        &["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "-5"],
        &["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "100"],
        &[
            "LCS",
            "key1",
            "key2",
            "IDX",
            "MINMATCHLEN",
            "1",
            "MINMATCHLEN",
            "3",
        ],
        &[
            "LCS",
            "key1",
            "key2",
            "IDX",
            "IDX",
            "WITHMATCHLEN",
            "WITHMATCHLEN",
        ],
        // Options only meaningful with IDX are accepted and ignored without it.
        &["LCS", "key1", "key2", "WITHMATCHLEN"],
        &[
            "LCS",
            "key1",
            "key2",
            "LEN",
            "MINMATCHLEN",
            "3",
            "WITHMATCHLEN",
        ],
        &["LCS", "key2", "key1", "IDX", "WITHMATCHLEN"],
    ]);
    resp3(&mut p);
    all_forms(&mut p, "key1", "key2");
    p.run(&[&["LCS", "key1", "missing", "IDX"]]);
}

#[test]
fn edge_strings_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "empty", ""],
        &["SET", "same1", "abcabc"],
        &["SET", "same2", "abcabc"],
        &["SET", "x", "aaaa"],
        &["SET", "y", "bbbb"],
        &["SET", "n1", "12345"],
        &["SET", "n2", "2468"],
        &["SET", "one", "a"],
        &["SET", "bin", "a\u{0}b\u{0}c"],
        &["SET", "bin2", "\u{0}\u{0}"],
    ]);
    for (k1, k2) in [
        ("missing1", "missing2"),
        ("empty", "same1"),
        ("same1", "empty"),
        ("same1", "missing1"),
        ("same1", "same2"),
        ("same1", "same1"),
        ("x", "y"),
        ("n1", "n2"),
        ("one", "x"),
        ("x", "one"),
        ("bin", "bin2"),
    ] {
        all_forms(&mut p, k1, k2);
    }
    // LCS reads only: no key appears.
    p.run(&[&["EXISTS", "missing1", "missing2"]]);
}

#[test]
fn errors_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["LCS"],
        &["LCS", "a"],
        &["SET", "a", "hello"],
        &["SET", "b", "world"],
        &["RPUSH", "list", "x"],
        &["HSET", "hash", "f", "v"],
        &["LCS", "a", "list"],
        &["LCS", "list", "a"],
        &["LCS", "hash", "missing"],
        // The key types are checked before the options.
        &["LCS", "a", "list", "BOGUS"],
        &["LCS", "a", "list", "LEN", "IDX"],
        &["LCS", "a", "b", "BOGUS"],
        &["LCS", "a", "b", "LEN", "IDX"],
        &["LCS", "a", "b", "IDX", "LEN"],
        &["LCS", "a", "b", "IDX", "LEN", "BOGUS"],
        &["LCS", "a", "b", "MINMATCHLEN"],
        &["LCS", "a", "b", "IDX", "MINMATCHLEN"],
        &["LCS", "a", "b", "MINMATCHLEN", "x"],
        &["LCS", "a", "b", "MINMATCHLEN", "1.5", "IDX"],
        &["LCS", "a", "b", "MINMATCHLEN", "99999999999999999999"],
        &["LCS", "a", "b", "LEN", "LEN", "IDX"],
        &["LCS", "a", "b", ""],
    ]);
}

/// The table guard: 12001 * 12001 cells of four bytes exceed proto-max-bulk-len (512 MB
/// on both sides), for every form, LEN included.
#[test]
fn oversized_table_is_refused_like_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let big = "a".repeat(12_000);
    let small = "a".repeat(1_000);
    p.check(&args(&["SET", "big1", &big]));
    p.check(&args(&["SET", "big2", &big]));
    p.check(&args(&["SET", "small", &small]));
    p.run(&[
        &["LCS", "big1", "big2", "LEN"],
        &["LCS", "big1", "big2"],
        &["LCS", "big1", "big2", "IDX"],
        // Below the limit the same lengths still work.
        &["LCS", "big1", "small", "LEN"],
        &["LCS", "big1", "missing", "LEN"],
    ]);
}

fn short_string() -> impl Strategy<Value = String> {
    "[abc]{0,10}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random short strings over a small alphabet give identical replies in all forms,
    /// in RESP2 and RESP3.
    #[test]
    fn random_strings_match_redis(a in short_string(), b in short_string(), min in -1i64..4) {
        let Some(mut p) = pair(REDIS_DB) else { return Ok(()) };
        p.check(&args(&["MSET", "k1", &a, "k2", &b]));
        let min = min.to_string();
        for proto in ["2", "3"] {
            if proto == "3" {
                resp3(&mut p);
            }
            p.run(&[
                &["LCS", "k1", "k2"],
                &["LCS", "k1", "k2", "LEN"],
                &["LCS", "k1", "k2", "IDX"],
                &["LCS", "k1", "k2", "IDX", "MINMATCHLEN", &min, "WITHMATCHLEN"],
                &["LCS", "k2", "k1", "IDX", "WITHMATCHLEN"],
            ]);
        }
    }
}
