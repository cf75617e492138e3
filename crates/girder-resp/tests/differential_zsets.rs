//! Differential tests of the sorted set commands against a real Redis 7: see
//! `common/mod.rs` for the harness.

mod common;

use common::{args, pair};
use proptest::prelude::*;

const REDIS_DB: &str = "13";

#[test]
fn zadd_options_and_scores_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["ZADD", "z"],
        &["ZADD", "z", "1"],
        &["ZADD", "z", "CH"],
        &["ZADD", "z", "NX", "CH"],
        &["ZADD", "z", "CH", "1"],
        &["ZADD", "z", "1", "a", "2"],
        &["ZADD", "z", "nan", "a"],
        &["ZADD", "z", "abc", "a"],
        &["ZADD", "z", "", "a"],
        &["ZADD", "z", " 1", "a"],
        &["ZADD", "z", "1 ", "a"],
        &["ZADD", "z", "1e400", "a"],
        &["ZADD", "z", "1e-400", "a"],
        &["EXISTS", "z"],
        &["ZADD", "z", "1", "a", "x", "b"],
        &["EXISTS", "z"],
        &["ZADD", "z", "XX", "NX", "1", "a"],
        &["ZADD", "z", "GT", "LT", "1", "a"],
        &["ZADD", "z", "GT", "NX", "1", "a"],
        &["ZADD", "z", "LT", "NX", "1", "a"],
        &["ZADD", "z", "INCR", "1", "a", "2", "b"],
        &["ZADD", "z", "XX", "1", "a"],
        &["EXISTS", "z"],
        &[
            "ZADD", "z", "0.1", "a", "1.5", "b", "3", "c", "1e20", "d", "1e-5", "e",
        ],
        &[
            "ZADD",
            "z",
            "123456789012345678",
            "f",
            "-0",
            "g",
            "inf",
            "h",
            "-inf",
            "i",
        ],
        &[
            "ZADD", "z", "0x10", "j", "0x1p1", "k", "+5", "l", ".5", "m", "1.", "n",
        ],
        &["ZADD", "z", "INFINITY", "o", "-Inf", "p", "1e-310", "q"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZSCORE", "z", "a"],
        &["ZSCORE", "z", "g"],
        &["ZSCORE", "z", "missing"],
        &["ZSCORE", "nokey", "a"],
        &["ZMSCORE", "z", "a", "missing", "h", "a"],
        &["ZMSCORE", "nokey", "a", "b"],
        &["ZMSCORE", "z"],
        &["ZCARD", "z"],
        &["ZCARD", "nokey"],
        &["ZADD", "z", "1", "a", "1", "a", "2", "a"],
        &["ZSCORE", "z", "a"],
        &["ZADD", "z", "CH", "5", "a", "1.5", "b", "9", "new"],
        &["ZADD", "z", "NX", "CH", "7", "a", "8", "new2"],
        &["ZADD", "z", "XX", "CH", "7", "a", "8", "new3"],
        &["ZADD", "z", "GT", "CH", "6", "a", "100", "b", "1", "new4"],
        &["ZADD", "z", "LT", "CH", "0", "a", "200", "b"],
        &["ZADD", "z", "INCR", "0.2", "a"],
        &["ZADD", "z", "INCR", "NX", "1", "a"],
        &["ZADD", "z", "INCR", "XX", "1", "nobody"],
        &["ZADD", "z", "INCR", "GT", "0", "a"],
        &["ZADD", "z", "INCR", "LT", "0", "a"],
        &["ZADD", "z", "INCR", "GT", "1", "a"],
        &["ZADD", "z", "INCR", "LT", "-1", "a"],
        &["ZADD", "z", "INCR", "GT", "1", "brand"],
        &["ZADD", "z", "INCR", "inf", "a"],
        &["ZADD", "z", "INCR", "-inf", "a"],
        &["ZSCORE", "z", "a"],
        &["ZADD", "z", "nx", "xx", "gt", "ch", "incr"],
        &["ZINCRBY", "z", "1", "b"],
        &["ZINCRBY", "z", "0.1", "b"],
        &["ZINCRBY", "z", "x", "b"],
        &["ZINCRBY", "z", "nan", "b"],
        &["ZINCRBY", "z", "-0", "fresh"],
        &["ZINCRBY", "z2", "2.5", "m"],
        &["ZINCRBY", "z2", "1"],
        &["ZINCRBY", "h", "-inf", "i"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["SET", "s", "x"],
        &["ZADD", "s", "1", "a"],
        &["ZADD", "s", "nan", "a"],
        &["ZADD", "s", "XX", "1", "a"],
        &["ZINCRBY", "s", "1", "a"],
        &["ZSCORE", "s", "a"],
        &["ZMSCORE", "s", "a"],
        &["ZCARD", "s"],
        &["ZREM", "s", "a"],
        &["GET", "s"],
        &["ZADD", "t", "1", "a"],
        &["EXPIRE", "t", "100"],
        &["ZADD", "t", "2", "b"],
        &["ZINCRBY", "t", "1", "a"],
        &["ZREM", "t", "a"],
        &["TTL", "t"],
        &["TYPE", "t"],
        &["OBJECT", "ENCODING", "t"],
    ]);
}

#[test]
fn ranges_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["ZRANGE", "nokey", "0", "-1"],
        &["ZRANGE", "z", "0"],
        &[
            "ZADD", "z", "1", "a", "2", "b", "2", "c", "3", "d", "4.5", "e", "-inf", "lo", "inf",
            "hi",
        ],
        &["ZRANGE", "z", "0", "-1"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZRANGE", "z", "-3", "-2", "withscores"],
        &["ZRANGE", "z", "2", "1"],
        &["ZRANGE", "z", "-100", "100"],
        &["ZRANGE", "z", "7", "100"],
        &["ZRANGE", "z", "0", "-1", "REV", "WITHSCORES"],
        &["ZRANGE", "z", "x", "1"],
        &["ZRANGE", "z", "0", "1.5"],
        &["ZRANGE", "z", "0", "-1", "REV", "REV"],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-5"],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "x", "1", "foo"],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0"],
        &["ZRANGE", "z", "0", "-1", "BOGUS"],
        &["ZRANGE", "z", "(1", "3", "BYSCORE", "BYLEX"],
        &["ZRANGE", "z", "[a", "[c", "BYLEX", "WITHSCORES"],
        &["ZRANGE", "z", "(1", "(3", "BYSCORE"],
        &["ZRANGE", "z", "(1", "3", "BYSCORE", "WITHSCORES"],
        &["ZRANGE", "z", "-inf", "+inf", "BYSCORE"],
        &["ZRANGE", "z", "(-inf", "(+inf", "BYSCORE"],
        &["ZRANGE", "z", "3", "1", "BYSCORE", "REV", "WITHSCORES"],
        &["ZRANGE", "z", "1", "3", "BYSCORE", "REV"],
        &["ZRANGE", "z", "(2", "(2", "BYSCORE"],
        &["ZRANGE", "z", "2", "2", "BYSCORE"],
        &["ZRANGE", "z", "x", "2", "BYSCORE"],
        &["ZRANGE", "z", "1", "nan", "BYSCORE"],
        &["ZRANGE", "z", "-inf", "inf", "BYSCORE", "LIMIT", "1", "2"],
        &["ZRANGE", "z", "-inf", "inf", "BYSCORE", "LIMIT", "1", "-1"],
        &["ZRANGE", "z", "-inf", "inf", "BYSCORE", "LIMIT", "-1", "2"],
        &["ZRANGE", "z", "-inf", "inf", "BYSCORE", "LIMIT", "0", "0"],
        &["ZRANGE", "z", "-inf", "inf", "BYSCORE", "LIMIT", "100", "2"],
        &[
            "ZRANGE",
            "z",
            "inf",
            "-inf",
            "BYSCORE",
            "REV",
            "LIMIT",
            "1",
            "3",
            "WITHSCORES",
        ],
        &["ZRANGEBYSCORE", "z", "(", "3"],
        &["ZRANGEBYSCORE", "z", "", "3"],
        &["ZRANGEBYSCORE", "z", " 1", "3"],
        &["ZRANGEBYSCORE", "z", "1 ", "3"],
        &["ZRANGEBYSCORE", "z", "0x1", "3"],
        &["ZRANGEBYSCORE", "z", "1e999", "inf"],
        &["ZRANGEBYSCORE", "z", "-1e999", "(1e999"],
        &[
            "ZRANGEBYSCORE",
            "z",
            "1",
            "3",
            "WITHSCORES",
            "LIMIT",
            "1",
            "1",
        ],
        &["ZRANGEBYSCORE", "z", "1", "3", "REV"],
        &["ZRANGEBYSCORE", "z", "1", "3", "BYSCORE"],
        &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "1"],
        &["ZREVRANGEBYSCORE", "z", "1", "3"],
        &["ZREVRANGEBYSCORE", "z", "3", "1", "WITHSCORES"],
        &["ZREVRANGEBYSCORE", "z", "+inf", "(2", "LIMIT", "0", "2"],
        &["ZREVRANGE", "z", "0", "2", "WITHSCORES"],
        &["ZREVRANGE", "z", "0", "2", "LIMIT", "0", "1"],
        &["ZREVRANGE", "z", "-1", "-1"],
        &["ZCOUNT", "z", "-inf", "+inf"],
        &["ZCOUNT", "z", "(1", "(3"],
        &["ZCOUNT", "z", "2", "2"],
        &["ZCOUNT", "z", "3", "1"],
        &["ZCOUNT", "z", "a", "1"],
        &["ZCOUNT", "nokey", "a", "1"],
        &["ZCOUNT", "nokey", "0", "1"],
        &["ZRANK", "z", "a"],
        &["ZRANK", "z", "hi"],
        &["ZRANK", "z", "missing"],
        &["ZRANK", "nokey", "a"],
        &["ZREVRANK", "z", "a"],
        &["ZREVRANK", "z", "hi"],
        &["ZRANK", "z", "a", "WITHSCORE"],
        &["ZREVRANK", "z", "a", "WITHSCORE"],
        &[
            "ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "", "0", "ab",
        ],
        &["ZRANGEBYLEX", "lex", "-", "+"],
        &["ZRANGEBYLEX", "lex", "[b", "(d"],
        &["ZRANGEBYLEX", "lex", "(a", "[b"],
        &["ZRANGEBYLEX", "lex", "[", "[a"],
        &["ZRANGEBYLEX", "lex", "(", "+"],
        &["ZRANGEBYLEX", "lex", "+", "-"],
        &["ZRANGEBYLEX", "lex", "[d", "[b"],
        &["ZRANGEBYLEX", "lex", "(b", "(b"],
        &["ZRANGEBYLEX", "lex", "a", "+"],
        &["ZRANGEBYLEX", "lex", "", "+"],
        &["ZRANGEBYLEX", "lex", "-x", "+"],
        &["ZRANGEBYLEX", "lex", "-", "++"],
        &["ZRANGEBYLEX", "lex", "-", "+", "WITHSCORES"],
        &["ZRANGEBYLEX", "lex", "-", "+", "LIMIT", "2", "3"],
        &["ZRANGEBYLEX", "lex", "-", "+", "LIMIT", "-1", "3"],
        &["ZREVRANGEBYLEX", "lex", "+", "-"],
        &["ZREVRANGEBYLEX", "lex", "[d", "(a", "LIMIT", "1", "2"],
        &["ZREVRANGEBYLEX", "lex", "-", "+"],
        &["ZRANGE", "lex", "[e", "[b", "BYLEX", "REV"],
        &["ZRANGE", "lex", "[b", "[e", "BYLEX", "LIMIT", "1", "10"],
        &["ZLEXCOUNT", "lex", "-", "+"],
        &["ZLEXCOUNT", "lex", "[b", "(d"],
        &["ZLEXCOUNT", "lex", "b", "(d"],
        &["ZLEXCOUNT", "nokey", "-", "+"],
        // Mixed scores: the walk of the compact encoding defines the answer.
        &["ZRANGEBYLEX", "z", "[b", "[d"],
        &["ZREVRANGEBYLEX", "z", "[d", "[b"],
        &["ZLEXCOUNT", "z", "-", "+"],
        &["ZRANGESTORE", "dst", "z", "0", "-1"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &[
            "ZRANGESTORE",
            "dst",
            "z",
            "(1",
            "3",
            "BYSCORE",
            "REV",
            "LIMIT",
            "0",
            "1",
        ],
        &[
            "ZRANGESTORE",
            "dst",
            "z",
            "3",
            "(1",
            "BYSCORE",
            "REV",
            "LIMIT",
            "0",
            "1",
        ],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["ZRANGESTORE", "dst", "lex", "[b", "[c", "BYLEX"],
        &["ZRANGE", "dst", "0", "-1"],
        &["ZRANGESTORE", "dst", "z", "0", "-1", "WITHSCORES"],
        &["ZRANGESTORE", "dst", "z", "5", "1"],
        &["EXISTS", "dst"],
        &["SET", "str", "v"],
        &["ZRANGESTORE", "str", "z", "0", "0"],
        &["TYPE", "str"],
        &["ZRANGESTORE", "dst2", "str", "0", "-1"],
        &["ZRANGESTORE", "str", "nokey", "0", "-1"],
        &["EXISTS", "str"],
        &["ZRANGESTORE", "dst", "z"],
        &["SET", "str", "v"],
        &["ZRANGE", "str", "0", "-1"],
        &["ZRANGE", "str", "x", "-1"],
        &["ZRANGEBYSCORE", "str", "0", "1"],
        &["ZRANGEBYLEX", "str", "-", "+"],
        &["ZCOUNT", "str", "0", "1"],
        &["ZLEXCOUNT", "str", "-", "+"],
        &["ZRANK", "str", "a"],
    ]);
}

#[test]
fn removal_and_pops_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &[
            "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
        ],
        &["EXPIRE", "z", "100"],
        &["ZREM", "z", "a", "a", "missing"],
        &["ZREM", "z"],
        &["ZREM", "nokey", "a"],
        &["ZREMRANGEBYRANK", "z", "0", "0"],
        &["ZREMRANGEBYRANK", "z", "5", "10"],
        &["ZREMRANGEBYRANK", "z", "x", "1"],
        &["ZREMRANGEBYRANK", "nokey", "0", "1"],
        &["ZREMRANGEBYSCORE", "z", "(3", "4"],
        &["ZREMRANGEBYSCORE", "z", "x", "4"],
        &["ZREMRANGEBYLEX", "z", "x", "+"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["TTL", "z"],
        &["ZREMRANGEBYRANK", "z", "-100", "100"],
        &["EXISTS", "z"],
        &["ZADD", "lex", "0", "a", "0", "b", "0", "c"],
        &["ZREMRANGEBYLEX", "lex", "(a", "+"],
        &["ZREMRANGEBYLEX", "lex", "-", "+"],
        &["EXISTS", "lex"],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["ZREMRANGEBYSCORE", "z", "-inf", "+inf"],
        &["EXISTS", "z"],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
        &["ZPOPMIN", "z"],
        &["ZPOPMAX", "z"],
        &["ZPOPMIN", "z", "0"],
        &["ZPOPMIN", "z", "-1"],
        &["ZPOPMIN", "z", "x"],
        &["ZPOPMIN", "z", "1", "2"],
        &["ZPOPMAX", "z", "1"],
        &["ZPOPMIN", "z", "10"],
        &["EXISTS", "z"],
        &["ZPOPMIN", "nokey"],
        &["ZPOPMIN", "nokey", "2"],
        &["ZPOPMAX", "nokey", "0"],
        &["SET", "s", "x"],
        &["ZPOPMIN", "s"],
        &["ZPOPMIN", "s", "0"],
        &["ZPOPMIN", "s", "-1"],
        &["ZREMRANGEBYRANK", "s", "0", "1"],
        &["ZREMRANGEBYSCORE", "s", "0", "1"],
        &["ZREMRANGEBYLEX", "s", "-", "+"],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["ZMPOP", "0", "z", "MIN"],
        &["ZMPOP", "x", "z", "MIN"],
        &["ZMPOP", "-1", "z", "MIN"],
        &["ZMPOP", "1", "z"],
        &["ZMPOP", "1", "z", "foo"],
        &["ZMPOP", "5", "z", "MIN"],
        &["ZMPOP", "1", "z", "MIN", "COUNT", "0"],
        &["ZMPOP", "1", "z", "MIN", "COUNT", "x"],
        &["ZMPOP", "1", "z", "MIN", "COUNT", "1", "COUNT", "1"],
        &["ZMPOP", "1", "z", "MIN", "COUNT"],
        &["ZMPOP", "1", "z", "MIN", "EXTRA"],
        &["ZMPOP", "1", "nokey", "MIN"],
        &["ZMPOP", "2", "s", "z", "MIN"],
        &["ZMPOP", "2", "z", "s", "max"],
        &["ZMPOP", "2", "nokey", "z", "min", "count", "10"],
        &["EXISTS", "z"],
        &["ZMPOP", "1", "z", "MIN"],
    ]);
}

#[test]
fn set_operations_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["ZADD", "a", "1", "x", "2", "y", "3", "z"],
        &["ZADD", "b", "10", "y", "20", "z", "30", "w", "inf", "i"],
        &["ZADD", "c", "-inf", "i", "0.5", "z"],
        &["SADD", "s", "x", "w", "plain"],
        &["SET", "str", "v"],
        &["ZUNION", "2", "a", "b"],
        &["ZUNION", "2", "a", "b", "WITHSCORES"],
        &["ZUNION", "3", "a", "b", "c", "WITHSCORES"],
        &["ZUNION", "2", "a", "s", "WITHSCORES"],
        &["ZUNION", "2", "a", "b", "WEIGHTS", "2", "0.5", "WITHSCORES"],
        &["ZUNION", "2", "b", "c", "WEIGHTS", "0", "1", "WITHSCORES"],
        &["ZUNION", "2", "a", "b", "AGGREGATE", "MIN", "WITHSCORES"],
        &["ZUNION", "2", "a", "b", "AGGREGATE", "max", "WITHSCORES"],
        &[
            "ZUNION",
            "2",
            "a",
            "b",
            "AGGREGATE",
            "sum",
            "WEIGHTS",
            "1",
            "-1",
            "WITHSCORES",
            "WITHSCORES",
        ],
        &[
            "ZUNION",
            "2",
            "a",
            "b",
            "WEIGHTS",
            "1",
            "2",
            "WEIGHTS",
            "3",
            "4",
            "WITHSCORES",
        ],
        &["ZUNION", "2", "a", "b", "WEIGHTS", "1"],
        &["ZUNION", "2", "a", "b", "WEIGHTS", "1", "x"],
        &["ZUNION", "2", "a", "b", "AGGREGATE", "avg"],
        &["ZUNION", "2", "a", "b", "AGGREGATE"],
        &["ZUNION", "2", "a", "b", "EXTRA"],
        &["ZUNION", "0", "a"],
        &["ZUNION", "-1", "a"],
        &["ZUNION", "x", "a"],
        &["ZUNION", "3", "a", "b"],
        &["ZUNION", "2", "a", "str"],
        &["ZUNION", "2", "a", "str", "WEIGHTS", "x"],
        &["ZUNION", "2", "nokey", "nokey2", "WITHSCORES"],
        &["ZINTER", "2", "a", "b", "WITHSCORES"],
        &["ZINTER", "3", "a", "b", "c", "WITHSCORES"],
        &["ZINTER", "2", "b", "c", "WITHSCORES"],
        &["ZINTER", "2", "b", "c", "AGGREGATE", "MAX", "WITHSCORES"],
        &["ZINTER", "2", "a", "s", "WITHSCORES"],
        &["ZINTER", "2", "a", "a", "WEIGHTS", "1", "2", "WITHSCORES"],
        &["ZINTER", "2", "a", "nokey"],
        &["ZINTER", "1", "s", "WITHSCORES"],
        &["ZINTER", "0", "a"],
        &["ZDIFF", "2", "a", "b", "WITHSCORES"],
        &["ZDIFF", "2", "b", "a", "WITHSCORES"],
        &["ZDIFF", "3", "b", "a", "c"],
        &["ZDIFF", "2", "a", "s"],
        &["ZDIFF", "1", "s", "WITHSCORES"],
        &["ZDIFF", "2", "nokey", "a"],
        &["ZDIFF", "2", "a", "b", "WEIGHTS", "1", "1"],
        &["ZDIFF", "1", "a", "AGGREGATE", "SUM"],
        &["ZDIFF", "0", "a"],
        &["ZUNIONSTORE", "dst", "2", "a", "b"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["ZUNIONSTORE", "dst", "2", "a", "b", "WITHSCORES"],
        &["ZUNIONSTORE", "dst", "0", "a"],
        &["ZUNIONSTORE", "dst", "2", "a", "str"],
        &[
            "ZUNIONSTORE",
            "dst",
            "2",
            "a",
            "s",
            "WEIGHTS",
            "2",
            "3",
            "AGGREGATE",
            "MAX",
        ],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["ZINTERSTORE", "dst", "2", "a", "b", "AGGREGATE", "MIN"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["ZINTERSTORE", "dst", "2", "a", "nokey"],
        &["EXISTS", "dst"],
        &["ZDIFFSTORE", "dst", "2", "b", "a"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["ZDIFFSTORE", "dst", "2", "a", "a"],
        &["EXISTS", "dst"],
        &["EXPIRE", "a", "100"],
        &["ZUNIONSTORE", "a", "2", "a", "b"],
        &["TTL", "a"],
        &["ZRANGE", "a", "0", "-1", "WITHSCORES"],
        &["ZUNIONSTORE", "str", "1", "b"],
        &["TYPE", "str"],
        &["ZINTERCARD", "2", "a", "b"],
        &["ZINTERCARD", "2", "a", "b", "LIMIT", "2"],
        &["ZINTERCARD", "2", "a", "b", "LIMIT", "0"],
        &["ZINTERCARD", "2", "a", "s"],
        &["ZINTERCARD", "2", "a", "nokey"],
        &["ZINTERCARD", "0", "a"],
        &["ZINTERCARD", "x", "a"],
        &["ZINTERCARD", "3", "a"],
        &["ZINTERCARD", "1", "a", "LIMIT", "-1"],
        &["ZINTERCARD", "1", "a", "LIMIT", "x"],
        &["ZINTERCARD", "1", "a", "LIMIT"],
        &["ZINTERCARD", "1", "a", "LIMIT", "0", "LIMIT", "1"],
        &["ZINTERCARD", "1", "a", "WITHSCORES"],
        &["ZINTERCARD", "1", "a", "WEIGHTS", "1"],
        &["SET", "str", "v"],
        &["ZINTERCARD", "1", "str"],
        &["ZINTERCARD", "1", "str", "LIMIT", "x"],
    ]);
}

#[test]
fn zscan_matches_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &[
            "ZADD", "z", "1", "a", "2.5", "b", "0.1", "c", "3", "ab", "-inf", "n",
        ],
        &["ZSCAN", "z", "0"],
        &["ZSCAN", "z", "0", "MATCH", "a*"],
        &[
            "ZSCAN", "z", "0", "MATCH", "a*", "COUNT", "1", "MATCH", "b*",
        ],
        &["ZSCAN", "z", "0", "COUNT", "100"],
        &["ZSCAN", "z", "0", "COUNT", "0"],
        &["ZSCAN", "z", "0", "COUNT", "x"],
        &["ZSCAN", "z", "0", "MATCH"],
        &["ZSCAN", "z", "0", "BOGUS", "x"],
        &["ZSCAN", "z", "abc"],
        &["ZSCAN", "z", "-1"],
        &["ZSCAN", "z", "+5"],
        &["ZSCAN", "z", " 5"],
        &["ZSCAN", "z", "18446744073709551616"],
        &["ZSCAN", "nokey", "0"],
        &["ZSCAN", "nokey", "0", "COUNT", "0"],
        &["SET", "s", "x"],
        &["ZSCAN", "s", "0", "COUNT", "x"],
        &["ZSCAN", "z"],
    ]);
}

#[test]
fn large_sets_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    // Past 128 members Redis switches to its skiplist encoding; replies must not change.
    for i in 0..300 {
        let (score, member) = (format!("{}", i % 7), format!("m{i}"));
        p.check(&args(&["ZADD", "big", &score, &member]));
        p.check(&args(&["ZADD", "flat", "0", &member]));
    }
    p.run(&[
        &["OBJECT", "ENCODING", "big"],
        &["ZCARD", "big"],
        &["ZRANGE", "big", "100", "110", "WITHSCORES"],
        &["ZRANGE", "big", "-5", "-1", "REV"],
        &["ZRANK", "big", "m150"],
        &["ZREVRANK", "big", "m150"],
        &["ZRANGEBYSCORE", "big", "(2", "3", "LIMIT", "5", "5"],
        &["ZREVRANGEBYSCORE", "big", "3", "(2", "LIMIT", "5", "5"],
        &["ZCOUNT", "big", "1", "(3"],
        &["ZRANGEBYLEX", "flat", "[m20", "(m21", "LIMIT", "0", "5"],
        &["ZREVRANGEBYLEX", "flat", "(m3", "-", "LIMIT", "2", "4"],
        &["ZLEXCOUNT", "flat", "[m1", "(m2"],
        &["ZRANDMEMBER", "big", "1000", "WITHSCORES"],
        &["ZRANDMEMBER", "flat", "300"],
        &["ZPOPMAX", "big", "3"],
        &["ZPOPMIN", "big", "3"],
        &["ZREMRANGEBYRANK", "big", "10", "20"],
        &["ZREMRANGEBYSCORE", "big", "(5", "+inf"],
        &["ZREMRANGEBYLEX", "flat", "[m1", "(m2"],
        &[
            "ZUNIONSTORE",
            "u",
            "2",
            "big",
            "flat",
            "WEIGHTS",
            "2",
            "0.5",
        ],
        &["ZRANGE", "u", "0", "-1", "WITHSCORES"],
        &[
            "ZINTER",
            "2",
            "big",
            "flat",
            "AGGREGATE",
            "MAX",
            "WITHSCORES",
        ],
        &["ZDIFF", "2", "flat", "big"],
        &["ZINTERCARD", "2", "big", "flat", "LIMIT", "50"],
        &[
            "ZRANGESTORE",
            "r",
            "big",
            "(1",
            "4",
            "BYSCORE",
            "LIMIT",
            "3",
            "30",
        ],
        &["ZRANGE", "r", "0", "-1", "WITHSCORES"],
        &["ZRANGE", "big", "0", "-1", "WITHSCORES"],
        &["ZRANGE", "flat", "0", "-1"],
    ]);
}

#[test]
fn destinations_and_ttls_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
        &["EXPIRE", "z", "100"],
        &["ZPOPMIN", "z"],
        &["ZMPOP", "2", "z", "z", "MAX", "COUNT", "1"],
        &["ZREMRANGEBYSCORE", "z", "0", "0"],
        &["ZADD", "z", "GT", "0", "b"],
        &["TTL", "z"],
        &["ZRANGESTORE", "z", "z", "0", "0"],
        &["TTL", "z"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["SET", "str", "v"],
        &["ZINTERSTORE", "str", "2", "z", "nokey"],
        &["EXISTS", "str"],
        &["SET", "str", "v"],
        &["EXPIRE", "str", "100"],
        &["ZDIFFSTORE", "str", "1", "z"],
        &["TYPE", "str"],
        &["TTL", "str"],
        &["ZADD", "w", "1.5", "a", "0.1", "b"],
        &["ZUNIONSTORE", "w", "2", "w", "z", "WEIGHTS", "0.3", "-2.5"],
        &["ZRANGE", "w", "0", "-1", "WITHSCORES"],
        &["ZINTERSTORE", "w", "1", "w", "WEIGHTS", "inf"],
        &["ZRANGE", "w", "0", "-1", "WITHSCORES"],
        &["ZINTERSTORE", "w", "1", "w", "WEIGHTS", "0"],
        &["ZRANGE", "w", "0", "-1", "WITHSCORES"],
        &["ZADD", "bin", "1", "a\u{0}b", "1", "a", "2", "é"],
        &["ZRANGE", "bin", "0", "-1"],
        &["ZRANGEBYLEX", "bin", "(a", "+"],
    ]);
}

/// Parses a RESP2 array of bulk strings (as ZRANDMEMBER replies) into its items.
fn bulk_items(reply: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(reply);
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(lines[0].starts_with('*'), "not an array: {text}");
    lines[1..]
        .chunks(2)
        .filter(|c| c.len() == 2 && c[0].starts_with('$'))
        .map(|c| c[1].to_owned())
        .collect()
}

#[test]
fn zrandmember_matches_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["ZRANDMEMBER", "nokey"],
        &["ZRANDMEMBER", "nokey", "5"],
        &["ZRANDMEMBER", "nokey", "0", "WITHSCORES"],
        &["ZADD", "z", "1", "a", "2", "b", "3.5", "c"],
        &["ZRANDMEMBER", "z", "0"],
        &["ZRANDMEMBER", "z", "x"],
        &["ZRANDMEMBER", "z", "1", "foo"],
        &["ZRANDMEMBER", "z", "1", "WITHSCORES", "x"],
        &["ZRANDMEMBER", "z", "-9223372036854775808"],
        &["ZRANDMEMBER", "z", "9223372036854775807", "WITHSCORES"],
        &["ZRANDMEMBER", "z", "-9223372036854775807", "WITHSCORES"],
        &["ZRANDMEMBER", "z", "5000000000000000000", "WITHSCORES"],
        &["ZRANDMEMBER", "z", "3"],
        &["ZRANDMEMBER", "z", "100", "WITHSCORES"],
        &["SET", "s", "x"],
        &["ZRANDMEMBER", "s"],
        &["ZRANDMEMBER", "s", "0"],
    ]);
    let members = ["a", "b", "c"];
    let call = |p: &mut common::Pair, cmd: &[&str]| {
        let a = args(cmd);
        (p.girder.call(&a), p.redis.call(&a))
    };
    // A single member: one of them, as a bulk string.
    let (g, r) = call(&mut p, &["ZRANDMEMBER", "z"]);
    for reply in [&g, &r] {
        let text = String::from_utf8_lossy(reply);
        assert!(
            members.iter().any(|m| text == format!("$1\r\n{m}\r\n")),
            "{text}"
        );
    }
    // Positive counts: distinct members, min(count, size) of them.
    for n in ["1", "2"] {
        let (g, r) = call(&mut p, &["ZRANDMEMBER", "z", n]);
        let (g, r) = (bulk_items(&g), bulk_items(&r));
        assert_eq!(g.len(), r.len());
        let mut distinct = g.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), g.len(), "repeated member in {g:?}");
        assert!(g.iter().all(|m| members.contains(&m.as_str())));
    }
    // Negative counts: exactly |count| members, repeats allowed.
    let (g, r) = call(&mut p, &["ZRANDMEMBER", "z", "-20"]);
    let (g, r) = (bulk_items(&g), bulk_items(&r));
    assert_eq!((g.len(), r.len()), (20, 20));
    assert!(g.iter().all(|m| members.contains(&m.as_str())));
    // With scores: each member followed by its own score.
    let (g, _) = call(&mut p, &["ZRANDMEMBER", "z", "-6", "WITHSCORES"]);
    let g = bulk_items(&g);
    assert_eq!(g.len(), 12);
    for pair in g.chunks(2) {
        let expected = match pair[0].as_str() {
            "a" => "1",
            "b" => "2",
            _ => "3.5",
        };
        assert_eq!(pair[1], expected);
    }
}

#[test]
fn resp3_replies_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    for side in [&mut p.girder, &mut p.redis] {
        side.call(&args(&["HELLO", "3"]));
    }
    // Scores whose shortest form is also their %.17g form, so RESP3 doubles agree.
    p.run(&[
        &["ZADD", "z", "1", "a", "2.5", "b", "3", "c", "inf", "d"],
        &["ZSCORE", "z", "b"],
        &["ZSCORE", "z", "d"],
        &["ZSCORE", "z", "missing"],
        &["ZMSCORE", "z", "a", "missing"],
        &["ZINCRBY", "z", "1", "a"],
        &["ZADD", "z", "INCR", "1", "a"],
        &["ZADD", "z", "INCR", "NX", "1", "a"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZRANGE", "z", "0", "-1"],
        &["ZRANGEBYSCORE", "z", "-inf", "inf", "WITHSCORES"],
        &["ZUNION", "1", "z", "WITHSCORES"],
        &["ZSCAN", "z", "0"],
        &["ZRANDMEMBER", "nokey"],
        &["ZRANDMEMBER", "nokey", "2"],
        &["ZPOPMIN", "z"],
        &["ZPOPMAX", "z", "1"],
        &["ZMPOP", "1", "z", "MIN", "COUNT", "5"],
        &["ZMPOP", "1", "z", "MIN"],
        &["ZPOPMIN", "z"],
    ]);
}

fn member() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("c".to_owned()),
        Just("d".to_owned()),
        Just("".to_owned()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("k1".to_owned()),
        Just("k2".to_owned()),
        Just("k3".to_owned()),
        Just("str".to_owned()),
    ]
}

fn score() -> impl Strategy<Value = String> {
    prop_oneof![
        (-3i32..4).prop_map(|n| n.to_string()),
        Just("0.5".to_owned()),
        Just("-inf".to_owned()),
        Just("+inf".to_owned()),
        Just("(1".to_owned()),
        Just("x".to_owned()),
    ]
}

fn index() -> impl Strategy<Value = String> {
    (-5i32..6).prop_map(|n| n.to_string())
}

fn lex() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-".to_owned()),
        Just("+".to_owned()),
        Just("[b".to_owned()),
        Just("(b".to_owned()),
        Just("[c".to_owned()),
        Just("a".to_owned()),
    ]
}

fn command() -> impl Strategy<Value = Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    prop_oneof![
        (
            key(),
            score(),
            member(),
            prop::sample::select(vec!["", "NX", "XX", "GT", "LT", "CH", "INCR"])
        )
            .prop_map(move |(k, sc, m, opt)| {
                let mut v = s(&["ZADD", &k]);
                if !opt.is_empty() {
                    v.push(opt.to_owned());
                }
                v.extend([sc, m]);
                v
            }),
        (key(), score(), member()).prop_map(move |(k, sc, m)| s(&["ZINCRBY", &k, &sc, &m])),
        (key(), member(), member()).prop_map(move |(k, a, b)| s(&["ZREM", &k, &a, &b])),
        (key(), member()).prop_map(move |(k, m)| s(&["ZSCORE", &k, &m])),
        (key(), member()).prop_map(move |(k, m)| s(&["ZRANK", &k, &m])),
        (key(), member()).prop_map(move |(k, m)| s(&["ZREVRANK", &k, &m])),
        key().prop_map(move |k| s(&["ZCARD", &k])),
        (key(), index(), index(), any::<bool>()).prop_map(move |(k, a, b, rev)| {
            let mut v = s(&["ZRANGE", &k, &a, &b, "WITHSCORES"]);
            if rev {
                v.push("REV".into());
            }
            v
        }),
        (key(), score(), score(), index(), index()).prop_map(move |(k, a, b, o, l)| s(&[
            "ZRANGEBYSCORE",
            &k,
            &a,
            &b,
            "WITHSCORES",
            "LIMIT",
            &o,
            &l
        ])),
        (key(), score(), score()).prop_map(move |(k, a, b)| s(&["ZREVRANGEBYSCORE", &k, &a, &b])),
        (key(), lex(), lex()).prop_map(move |(k, a, b)| s(&["ZRANGEBYLEX", &k, &a, &b])),
        (key(), lex(), lex()).prop_map(move |(k, a, b)| s(&["ZLEXCOUNT", &k, &a, &b])),
        (key(), score(), score()).prop_map(move |(k, a, b)| s(&["ZCOUNT", &k, &a, &b])),
        (key(), index(), index()).prop_map(move |(k, a, b)| s(&["ZREMRANGEBYRANK", &k, &a, &b])),
        (key(), score(), score()).prop_map(move |(k, a, b)| s(&["ZREMRANGEBYSCORE", &k, &a, &b])),
        (key(), lex(), lex()).prop_map(move |(k, a, b)| s(&["ZREMRANGEBYLEX", &k, &a, &b])),
        (
            key(),
            prop::sample::select(vec!["ZPOPMIN", "ZPOPMAX"]),
            prop::option::of(0u8..4)
        )
            .prop_map(move |(k, c, n)| {
                let mut v = s(&[c, &k]);
                if let Some(n) = n {
                    v.push(n.to_string());
                }
                v
            }),
        (key(), key(), prop::sample::select(vec!["MIN", "MAX"]))
            .prop_map(move |(a, b, w)| s(&["ZMPOP", "2", &a, &b, w, "COUNT", "2"])),
        (
            prop::sample::select(vec!["ZUNION", "ZINTER", "ZDIFF"]),
            key(),
            key()
        )
            .prop_map(move |(c, a, b)| s(&[c, "2", &a, &b, "WITHSCORES"])),
        (
            prop::sample::select(vec!["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]),
            key(),
            key(),
            key()
        )
            .prop_map(move |(c, d, a, b)| s(&[c, &d, "2", &a, &b])),
        (key(), key(), index(), index()).prop_map(move |(d, src, a, b)| s(&[
            "ZRANGESTORE",
            &d,
            &src,
            &a,
            &b
        ])),
        (key(), key()).prop_map(move |(a, b)| s(&["ZINTERCARD", "2", &a, &b])),
        key().prop_map(move |k| s(&["SET", &k, "v"])),
        key().prop_map(move |k| s(&["DEL", &k])),
        (key(), member(), member()).prop_map(move |(k, a, b)| s(&["SADD", &k, &a, &b])),
        (
            key(),
            prop::collection::vec((score(), member()), 1..4),
            prop::sample::subsequence(vec!["NX", "XX", "GT", "LT", "CH"], 0..3)
        )
            .prop_map(move |(k, pairs, opts)| {
                let mut v = s(&["ZADD", &k]);
                v.extend(opts.iter().map(|o| (*o).to_owned()));
                for (sc, m) in pairs {
                    v.extend([sc, m]);
                }
                v
            }),
        (key(), member(), member()).prop_map(move |(k, a, b)| s(&["ZMSCORE", &k, &a, &b])),
        (key(), lex(), lex(), any::<bool>(), index(), index()).prop_map(
            move |(k, a, b, rev, o, l)| {
                let mut v = s(&["ZRANGE", &k, &a, &b, "BYLEX", "LIMIT", &o, &l]);
                if rev {
                    v.push("REV".into());
                }
                v
            }
        ),
        (key(), score(), score(), any::<bool>()).prop_map(move |(k, a, b, rev)| {
            let mut v = s(&["ZRANGE", &k, &a, &b, "BYSCORE", "WITHSCORES"]);
            if rev {
                v.push("REV".into());
            }
            v
        }),
        (
            key(),
            key(),
            key(),
            score(),
            score(),
            prop::sample::select(vec!["SUM", "MIN", "MAX"])
        )
            .prop_map(move |(d, a, b, w1, w2, agg)| s(&[
                "ZUNIONSTORE",
                &d,
                "2",
                &a,
                &b,
                "WEIGHTS",
                &w1,
                &w2,
                "AGGREGATE",
                agg
            ])),
        (
            key(),
            key(),
            prop::sample::select(vec!["SUM", "MIN", "MAX"])
        )
            .prop_map(move |(a, b, agg)| s(&[
                "ZINTER",
                "2",
                &a,
                &b,
                "AGGREGATE",
                agg,
                "WITHSCORES"
            ])),
        key().prop_map(move |k| s(&["ZSCAN", &k, "0", "MATCH", "*"])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Generated sequences of sorted set commands give identical replies, and leave
    /// identical sorted sets behind.
    #[test]
    fn generated_sequences_match_redis(cmds in prop::collection::vec(command(), 1..40)) {
        let Some(mut p) = pair(REDIS_DB) else { return Ok(()) };
        for cmd in &cmds {
            let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
            p.check(&args(&refs));
        }
        for key in ["k1", "k2", "k3", "str"] {
            p.check(&args(&["TYPE", key]));
            p.check(&args(&["ZRANGE", key, "0", "-1", "WITHSCORES"]));
        }
    }
}

/// Random reads with a negative count (encoded as drawn) have Redis's reply shapes in
/// both protocols: one-element collections make the picks deterministic.
#[test]
fn repeated_random_picks_have_redis_shapes() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SADD", "s1", "only"],
        &["SADD", "si", "42"],
        &["HSET", "h1", "f", "v"],
        &["ZADD", "z1", "1.5", "m"],
        &["ZADD", "zi", "7", "n"],
    ]);
    for proto in ["2", "3"] {
        for side in [&mut p.girder, &mut p.redis] {
            side.call(&args(&["HELLO", proto]));
        }
        p.run(&[
            &["SRANDMEMBER", "s1", "-3"],
            &["SRANDMEMBER", "si", "-2"],
            &["SRANDMEMBER", "nokey", "-2"],
            &["HRANDFIELD", "h1", "-3"],
            &["HRANDFIELD", "h1", "-3", "WITHVALUES"],
            &["HRANDFIELD", "nokey", "-3", "WITHVALUES"],
            &["ZRANDMEMBER", "z1", "-3"],
            &["ZRANDMEMBER", "z1", "-3", "WITHSCORES"],
            &["ZRANDMEMBER", "zi", "-2", "WITHSCORES"],
            &["ZRANDMEMBER", "nokey", "-2", "WITHSCORES"],
        ]);
    }
}
