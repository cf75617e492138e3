//! Differential tests of the connection, server, key and string commands against a real
//! Redis 7: see `common/mod.rs` for the harness.

mod common;

use common::{args, pair};
use proptest::prelude::*;

const REDIS_DB: &str = "9";

#[test]
fn strings_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["GET", "missing"],
        &["SET", "k", "v"],
        &["GET", "k"],
        &["SET", "k", "v2", "GET"],
        &["SET", "k", "v3", "NX"],
        &["SET", "k", "v3", "NX", "GET"],
        &["SET", "new", "x", "XX"],
        &["SET", "k", "x", "NX", "XX"],
        &["SET", "k", "x", "EX", "0"],
        &["SET", "k", "x", "EX", "-5"],
        &["SET", "k", "x", "EX", "abc"],
        &["SET", "k", "x", "EX", "10", "PX", "100"],
        &["SET", "k", "x", "KEEPTTL", "EX", "10"],
        &["SET", "k", "x", "EX"],
        &["SET", "k", "x", "BOGUS"],
        &["SET", "k", "x", "PX", "9223372036854775807"],
        &["SET", "k", "x", "EX", "9223372036854775"],
        &["SET", "e", "", "EX", "100"],
        &["GET", "e"],
        &["STRLEN", "e"],
        &["SETNX", "k", "y"],
        &["SETNX", "fresh", "y"],
        &["SETEX", "s", "100", "v"],
        &["SETEX", "s", "0", "v"],
        &["PSETEX", "s", "-1", "v"],
        &["GETSET", "s", "w"],
        &["GETSET", "none", "w"],
        &["GETDEL", "none2"],
        &["GETDEL", "s"],
        &["GET", "s"],
        &["GETEX", "k"],
        &["GETEX", "k", "PERSIST"],
        &["GETEX", "k", "EX", "0"],
        &["GETEX", "k", "EX", "100", "PX", "5"],
        &["GETEX", "k", "BAD"],
        &["MSET", "a", "1", "b", "2"],
        &["MSET", "a", "1", "b"],
        &["MGET", "a", "b", "nope", "a"],
        &["MSETNX", "a", "9", "c", "3"],
        &["MSETNX", "c", "3", "d", "4"],
        &["MGET", "a", "c", "d"],
        &["APPEND", "a", "23"],
        &["APPEND", "newa", "xyz"],
        &["STRLEN", "a"],
        &["STRLEN", "nope"],
        &["GETRANGE", "newa", "0", "-1"],
        &["GETRANGE", "newa", "-2", "-1"],
        &["GETRANGE", "newa", "5", "10"],
        &["GETRANGE", "newa", "-10", "1"],
        &["GETRANGE", "newa", "2", "1"],
        &["GETRANGE", "newa", "-1", "-2"],
        &["GETRANGE", "newa", "x", "1"],
        &["SETRANGE", "sr", "5", "hi"],
        &["GET", "sr"],
        &["SETRANGE", "sr", "0", "HELLO"],
        &["SETRANGE", "sr", "-1", "x"],
        &["SETRANGE", "sr2", "3", ""],
        &["EXISTS", "sr2"],
        &["GET", "sr"],
    ]);
}

#[test]
fn counters_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["INCR", "n"],
        &["INCRBY", "n", "41"],
        &["DECR", "n"],
        &["DECRBY", "n", "-10"],
        &["DECRBY", "n", "-9223372036854775808"],
        &["INCRBY", "n", "abc"],
        &["INCRBY", "n", "1.5"],
        &["INCRBY", "n", "+1"],
        &["INCRBY", "n", " 1"],
        &["INCRBY", "n", "01"],
        &["SET", "max", "9223372036854775807"],
        &["INCR", "max"],
        &["SET", "min", "-9223372036854775808"],
        &["DECR", "min"],
        &["SET", "text", "hello"],
        &["INCR", "text"],
        &["SET", "padded", " 1"],
        &["INCR", "padded"],
        &["SET", "zero", "007"],
        &["INCR", "zero"],
        &["SET", "neg0", "-0"],
        &["INCR", "neg0"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["INCRBYFLOAT", "f", "-0.25"],
        &["INCRBYFLOAT", "f", "abc"],
        &["INCRBYFLOAT", "f", "inf"],
        &["INCRBYFLOAT", "f", "1e3"],
        &["INCRBYFLOAT", "f", "5.0e-1"],
        &["INCRBYFLOAT", "text", "1"],
        &["SET", "i", "10"],
        &["INCRBYFLOAT", "i", "0.5"],
        &["INCRBYFLOAT", "i", "-10.5"],
        &["GET", "i"],
        &["OBJECT", "ENCODING", "i"],
        &["SET", "big", "12345678901234567890"],
        &["OBJECT", "ENCODING", "big"],
        &["OBJECT", "ENCODING", "text"],
        &["OBJECT", "ENCODING", "nope"],
        &["OBJECT", "HELP", "extra"],
        &["INFO", "nosuchsection"],
    ]);
}

#[test]
fn keys_and_ttls_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["MSET", "a", "1", "b", "2", "c", "3"],
        &["EXISTS", "a", "b", "nope", "a"],
        &["TYPE", "a"],
        &["TYPE", "nope"],
        &["TTL", "a"],
        &["PTTL", "nope"],
        &["EXPIRE", "a", "100"],
        &["TTL", "a"],
        &["PTTL", "a"],
        &["EXPIRE", "a", "100", "NX"],
        &["EXPIRE", "a", "200", "XX"],
        &["EXPIRE", "a", "50", "GT"],
        &["EXPIRE", "a", "50", "LT"],
        &["EXPIRE", "b", "50", "GT"],
        &["EXPIRE", "b", "50", "XX", "LT"],
        &["EXPIRE", "b", "50", "LT"],
        &["EXPIRE", "a", "50", "NX", "XX"],
        &["EXPIRE", "a", "50", "GT", "LT"],
        &["EXPIRE", "a", "50", "YY"],
        &["EXPIRE", "a", "abc"],
        &["EXPIRE", "a", "9223372036854775807"],
        &["PEXPIRE", "a", "9223372036854775807"],
        &["EXPIRE", "nope", "10"],
        &["EXPIREAT", "c", "1"],
        &["EXISTS", "c"],
        &["PEXPIREAT", "b", "99999999999999"],
        &["PEXPIRETIME", "b"],
        &["EXPIRETIME", "b"],
        &["EXPIRETIME", "nope"],
        &["PERSIST", "b"],
        &["PERSIST", "b"],
        &["TTL", "b"],
        &["EXPIRE", "b", "-1"],
        &["EXISTS", "b"],
        &["SET", "r", "x", "EX", "100"],
        &["RENAME", "r", "r2"],
        &["TTL", "r2"],
        &["RENAME", "missing", "x"],
        &["RENAME", "r2", "r2"],
        &["RENAMENX", "r2", "r2"],
        &["SET", "other", "y"],
        &["RENAMENX", "r2", "other"],
        &["RENAMENX", "r2", "r3"],
        &["COPY", "r3", "r4"],
        &["COPY", "r3", "r4"],
        &["COPY", "r3", "r4", "REPLACE"],
        &["COPY", "r3", "r3"],
        &["COPY", "r3", "r5", "BOGUS"],
        &["TTL", "r4"],
        &["KEYS", "*"],
        &["KEYS", "r[34]"],
        &["KEYS", "o*"],
        &["DEL", "r3", "r4", "nope"],
        &["UNLINK", "other"],
        &["DBSIZE"],
        &["TOUCH", "a", "nope"],
        &["MOVE", "a", "9"],
        &["MOVE", "a", "99"],
        &["MOVE", "a", "x"],
    ]);
}

/// Redis's `stringmatchlen` corners: ranges that end in `]`, swapped ranges, empty and
/// unterminated classes, escapes, trailing backslashes.
#[test]
fn glob_corners_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let keys = [
        "a", "b", "-", "]", "^", "_", "\\", "[", "x", "ax", "a]", "A",
    ];
    let mut mset = vec!["MSET"];
    for k in &keys {
        mset.push(k);
        mset.push("v");
    }
    p.run(&[&mset]);
    for pattern in [
        "[a-]", "[a-]x", "[-a]", "[]]", "[]a]", "[a-", "[^a]", "[^]", "[\\]]", "[z-a]", "[a", "\\",
        "a\\", "*[", "[[]", "[\\", "?]", "[A-a]", "[!a]", "*\\*",
    ] {
        p.run(&[&["KEYS", pattern]]);
    }
}

/// CONFIG GET names a plain setting as the client spelled it; CONFIG SET lists an enum's
/// values in Redis's order.
#[test]
fn config_replies_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["CONFIG", "GET", "TIMEOUT"],
        &["CONFIG", "GET", "Timeout", "timeout"],
        &["CONFIG", "GET", "appendONLY"],
        &["CONFIG", "GET", "appendon?y"],
        &["CONFIG", "SET", "appendfsync", "sometimes"],
    ]);
}

/// One counter of `INFO stats`.
fn info_stat(side: &mut common::Raw, name: &str) -> u64 {
    let info = side.call(&args(&["INFO", "stats"]));
    stat_of(&info, name).parse().unwrap()
}

/// Field `name` of an INFO reply.
fn stat_of(info: &[u8], name: &str) -> String {
    let info = String::from_utf8_lossy(info);
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("INFO stats shows {name}"))
        .trim()
        .to_owned()
}

/// INFO's `total_net_input_bytes` and `total_net_output_bytes` count the bytes of the
/// same exchange as Redis's do, and the `instantaneous_*` rates see a burst.
#[test]
fn info_counts_network_bytes_and_rates_as_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    // Girder folds a connection's counts after a command once 250 ms have passed since
    // it last did: after this, everything before the PING has been counted on both.
    let fold = |side: &mut common::Raw| {
        std::thread::sleep(std::time::Duration::from_millis(300));
        side.call(&args(&["PING"]));
    };
    let fields = ["total_net_input_bytes", "total_net_output_bytes"];
    let mut deltas = Vec::new();
    for side in [&mut p.girder, &mut p.redis] {
        fold(side);
        let first = side.call(&args(&["INFO", "stats"]));
        side.call(&args(&["SET", "k", &"v".repeat(1000)]));
        side.call(&args(&["GET", "k"]));
        side.call(&args(&["GET", "nope"]));
        side.call(&args(&["NOSUCHCOMMAND", "x"]));
        fold(side);
        let second = side.call(&args(&["INFO", "stats"]));
        let [input, output] = fields.map(|f| {
            stat_of(&second, f).parse::<u64>().unwrap() - stat_of(&first, f).parse::<u64>().unwrap()
        });
        // Both count the first INFO's reply, whose length differs between the two.
        deltas.push([input, output - first.len() as u64]);
    }
    assert_eq!(deltas[0], deltas[1], "[bytes in, bytes out]: Girder, Redis");
    // A burst of 2,000 commands shows in the rates of the next 1.6 s.
    for side in [&mut p.girder, &mut p.redis] {
        for _ in 0..2_000 {
            side.call(&args(&["PING"]));
        }
        fold(side);
        std::thread::sleep(std::time::Duration::from_millis(200));
        let info = side.call(&args(&["INFO", "stats"]));
        let ops: u64 = stat_of(&info, "instantaneous_ops_per_sec").parse().unwrap();
        let kbps: f64 = stat_of(&info, "instantaneous_input_kbps").parse().unwrap();
        assert!(
            ops > 0 && kbps > 0.0,
            "rates after a burst: {ops} ops/s, {kbps} KB/s in"
        );
    }
}

/// A client that goes quiet has its commands counted at once: Girder folds a
/// connection's counts into INFO's when it waits for input, where Redis counts each
/// command as it runs. (They used to wait for the connection's next command 250 ms
/// after its last fold.)
#[test]
fn a_quiet_clients_commands_are_counted_at_once() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    for (side, addr) in [
        (&mut p.girder, common::girder_addr()),
        (&mut p.redis, common::redis_addr()),
    ] {
        let before = info_stat(side, "total_commands_processed");
        let mut other = common::Raw::connect(addr).unwrap();
        for _ in 0..1_000 {
            other.call(&args(&["PING"]));
        }
        let after = info_stat(side, "total_commands_processed");
        // The first INFO and the 1,000 PINGs (and nothing else, unless another client
        // of this server was busy meanwhile).
        let counted = after - before;
        assert!(
            (1_001..1_100).contains(&counted),
            "{counted} commands counted on {addr}"
        );
    }
}

/// CLIENT LIST shows a client's protocol, its MULTI queue and its last command, as
/// Redis does (they were fixed text: `resp=2`, `multi=-1`, no `cmd`).
#[test]
fn client_list_shows_resp_multi_and_last_command() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let field = |line: &str, name: &str| -> String {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("CLIENT LIST shows {name}: {line}"))
            .to_owned()
    };
    let mut seen = Vec::new();
    for (side, addr) in [
        (&mut p.girder, common::girder_addr()),
        (&mut p.redis, common::redis_addr()),
    ] {
        let mut other = common::Raw::connect(addr).unwrap();
        other.call(&args(&["HELLO", "3"]));
        other.call(&args(&["CLIENT", "SETNAME", "girder-test-observed"]));
        other.call(&args(&["MULTI"]));
        other.call(&args(&["SET", "a", "1"]));
        other.call(&args(&["INCR", "a"]));
        let list = side.call(&args(&["CLIENT", "LIST"]));
        let list = String::from_utf8_lossy(&list).into_owned();
        let line = list
            .lines()
            .find(|l| l.contains("name=girder-test-observed "))
            .unwrap_or_else(|| panic!("the observed client in {list}"))
            .to_owned();
        seen.push(["resp", "multi", "cmd"].map(|f| field(&line, f)));
        other.call(&args(&["DISCARD"]));
    }
    assert_eq!(seen[0], seen[1], "[resp, multi, cmd]: Girder, Redis");
    assert_eq!(seen[0], ["3", "2", "incr"].map(String::from));
}

/// INFO commandstats: a line per command called since CONFIG RESETSTAT, in Redis's
/// format, with the same call counts; not part of plain INFO, part of INFO all.
#[test]
fn info_commandstats_counts_calls_as_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let mut seen = Vec::new();
    for side in [&mut p.girder, &mut p.redis] {
        side.call(&args(&["CONFIG", "RESETSTAT"]));
        for _ in 0..3 {
            side.call(&args(&["SET", "cs", "1"]));
        }
        side.call(&args(&["GET", "cs"]));
        side.call(&args(&["GET", "cs"]));
        side.call(&args(&["INCR", "cs"]));
        let info = side.call(&args(&["INFO", "commandstats"]));
        let info = String::from_utf8_lossy(&info).into_owned();
        assert!(info.contains("# Commandstats"), "{info}");
        let line = |cmd: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:")))
                .unwrap_or_else(|| panic!("cmdstat_{cmd} in {info}"))
                .to_owned()
        };
        let fields = |cmd: &str| -> Vec<(String, String)> {
            line(cmd)
                .split(',')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("key=value");
                    (k.to_owned(), v.to_owned())
                })
                .collect()
        };
        let calls = |cmd: &str| {
            let f = fields(cmd);
            let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(
                names,
                [
                    "calls",
                    "usec",
                    "usec_per_call",
                    "rejected_calls",
                    "failed_calls"
                ]
            );
            f[0].1.clone()
        };
        seen.push(["set", "get", "incr"].map(calls));
        let plain = side.call(&args(&["INFO"]));
        assert!(!String::from_utf8_lossy(&plain).contains("cmdstat_"));
        let all = side.call(&args(&["INFO", "all"]));
        assert!(String::from_utf8_lossy(&all).contains("cmdstat_set:calls=3,"));
    }
    assert_eq!(seen[0], seen[1], "[set, get, incr] calls: Girder, Redis");
    assert_eq!(seen[0], ["3", "2", "1"].map(String::from));
}

/// CONFIG RESETSTAT starts INFO's counters again (it is not Redis's OK alone).
#[test]
fn config_resetstat_resets_info_counters() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let processed = |side: &mut common::Raw| info_stat(side, "total_commands_processed");
    // A connection folds its counts into the shared ones after a command, once 250 ms
    // have passed since it last did.
    let fold = |side: &mut common::Raw| {
        std::thread::sleep(std::time::Duration::from_millis(300));
        side.call(&args(&["PING"]));
    };
    for _ in 0..200 {
        p.girder.call(&args(&["PING"]));
    }
    fold(&mut p.girder);
    assert!(processed(&mut p.girder) >= 200);
    assert_eq!(p.girder.call(&args(&["CONFIG", "RESETSTAT"])), b"+OK\r\n");
    fold(&mut p.girder);
    let after = processed(&mut p.girder);
    assert!(after < 10, "{after} commands counted after RESETSTAT");
}

/// INFO's `keyspace_hits`, `keyspace_misses` and `expired_keys` move as Redis's do over
/// the same reads (compared as differences, both servers having a past).
#[test]
fn info_counts_hits_misses_and_expiries_as_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let stats = |side: &mut common::Raw| {
        ["keyspace_hits", "keyspace_misses", "expired_keys"].map(|name| info_stat(side, name))
    };
    let before = (stats(&mut p.girder), stats(&mut p.redis));
    p.run(&[
        &["SET", "a", "1"],
        &["HSET", "h", "f", "v"],
        &["RPUSH", "l", "x"],
        &["GET", "a"],
        &["GET", "a"],
        &["GET", "nope"],
        &["MGET", "a", "nope", "a"],
        &["HGET", "h", "f"],
        &["HGET", "nope", "f"],
        &["LRANGE", "l", "0", "-1"],
        &["STRLEN", "nope"],
        &["EXISTS", "a", "nope"],
        &["TYPE", "h"],
        &["TTL", "nope"],
        &["SMEMBERS", "nope"],
        &["ZSCORE", "nope", "m"],
        &["SET", "t", "v", "PX", "10"],
    ]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    // Lazily expired by the read (or already by an active cycle): one expiry, one miss.
    p.run(&[&["GET", "t"]]);
    let after = (stats(&mut p.girder), stats(&mut p.redis));
    let delta = |a: [u64; 3], b: [u64; 3]| [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    assert_eq!(
        delta(before.0, after.0),
        delta(before.1, after.1),
        "[hits, misses, expired] since the start of the test: Girder, Redis"
    );
}

#[test]
fn connection_and_errors_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let many_args: Vec<&str> = std::iter::once("NOSUCHCOMMAND")
        .chain(std::iter::repeat_n("a", 29))
        .collect();
    p.run(&[
        &["PING"],
        &["PING", "hello"],
        &["PING", "a", "b"],
        &["ECHO", "x"],
        &["ECHO"],
        &["GET"],
        &["GET", "a", "b"],
        &["SET", "k"],
        &["NOSUCHCOMMAND"],
        &["NOSUCHCOMMAND", "with", "args"],
        // The error quotes at most 128 bytes of arguments, counted apart from the text
        // before them: all 29 short ones, and 128 bytes of a long one.
        &many_args,
        &["NOSUCHCOMMAND", &"x".repeat(300), "y"],
        &["get", "lowercase"],
        &["SELECT", "16"],
        &["SELECT", "-1"],
        &["SELECT", "abc"],
        &["SELECT", REDIS_DB],
        &["CLIENT", "SETNAME", "has space"],
        &["CLIENT", "SETNAME", "ok-name"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "NOSUCH"],
        &["CLIENT", "SETNAME"],
        &["OBJECT", "NOSUCH", "k"],
        &["FLUSHDB", "BOGUS"],
        &["FLUSHDB", "ASYNC"],
        &["SWAPDB", "0", "x"],
        &["SWAPDB", "x", "0"],
        &["SWAPDB", "0", "99"],
        &["CONFIG", "GET", "maxmemory"],
        &["AUTH", "nopass"],
    ]);
}

/// One generated command over a small key space, with awkward values.
fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let key = prop::sample::select(vec!["a", "b", "c", "", "k:1"]);
    let value = prop::sample::select(vec![
        "",
        "0",
        "1",
        "-1",
        "-0",
        "+1",
        " 1",
        "007",
        "abc",
        "1.5",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "inf",
        "-inf",
        "nan",
        "1e3",
    ]);
    let int = prop::sample::select(vec![
        "0",
        "1",
        "-1",
        "2",
        "-2",
        "100",
        "-100",
        "abc",
        "9223372036854775807",
        "-9223372036854775808",
        "",
    ]);
    let name = prop::sample::select(vec![
        "SET",
        "GET",
        "INCR",
        "INCRBY",
        "DECRBY",
        "APPEND",
        "STRLEN",
        "GETRANGE",
        "SETRANGE",
        "DEL",
        "EXISTS",
        "TYPE",
        "EXPIRE",
        "PERSIST",
        "GETDEL",
        "SETNX",
        "MSETNX",
        "RENAME",
        "INCRBYFLOAT",
        "GETSET",
        "MGET",
    ]);
    (name, key.clone(), key, value, int.clone(), int).prop_map(|(name, k1, k2, v, i1, i2)| {
        let parts: Vec<&str> = match name {
            "SET" | "APPEND" | "GETSET" | "SETNX" => vec![name, k1, v],
            "GET" | "INCR" | "STRLEN" | "TYPE" | "PERSIST" | "GETDEL" => vec![name, k1],
            "INCRBY" | "DECRBY" => vec![name, k1, i1],
            "INCRBYFLOAT" => vec![name, k1, v],
            "GETRANGE" => vec![name, k1, i1, i2],
            "SETRANGE" => vec![name, k1, i1, v],
            "DEL" | "EXISTS" | "MGET" => vec![name, k1, k2],
            "EXPIRE" => vec![name, k1, "100"],
            "MSETNX" => vec![name, k1, v, k2, v],
            "RENAME" => vec![name, k1, k2],
            _ => unreachable!(),
        };
        parts.into_iter().map(|s| s.as_bytes().to_vec()).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Generated sequences of string and key commands give identical replies, and leave
    /// identical values behind.
    #[test]
    fn generated_sequences_match_redis(cmds in prop::collection::vec(command(), 1..40)) {
        let Some(mut p) = pair(REDIS_DB) else { return Ok(()) };
        for cmd in &cmds {
            p.check(cmd);
        }
        for key in ["a", "b", "c", "", "k:1"] {
            p.check(&args(&["GET", key]));
            p.check(&args(&["TTL", key]));
        }
    }

    /// INCRBYFLOAT and HINCRBYFLOAT sequences over decimal, exponent, hex and integer
    /// operands give Redis's replies digit for digit: Girder computes in emulated 80-bit
    /// long double as Redis does (girder-kv `long_double.rs`).
    #[test]
    fn float_increments_match_redis_digit_for_digit(
        steps in prop::collection::vec((float_text(), any::<bool>()), 1..25)
    ) {
        let Some(mut p) = pair(REDIS_DB) else { return Ok(()) };
        for (delta, in_hash) in &steps {
            if *in_hash {
                p.check(&args(&["HINCRBYFLOAT", "h", "f", delta]));
            } else {
                p.check(&args(&["INCRBYFLOAT", "x", delta]));
            }
        }
        p.check(&args(&["GET", "x"]));
        p.check(&args(&["HGET", "h", "f"]));
    }
}

/// Operands as users and programs write them: short and long decimals, exponents, hex
/// floats, integers, signs, and now and then an unreadable or infinite one.
fn float_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (-100_000i64..100_000, 0u32..6).prop_map(|(n, scale)| {
            let sign = if n < 0 { "-" } else { "" };
            let d = 10u64.pow(scale);
            let a = n.unsigned_abs();
            if scale == 0 {
                format!("{sign}{a}")
            } else {
                format!("{sign}{}.{:0w$}", a / d, a % d, w = scale as usize)
            }
        }),
        2 => (any::<u64>(), 0u32..20).prop_map(|(n, shift)| format!("0.{n}{}", "0".repeat(shift as usize % 3))),
        2 => (-9i64..10, -30i32..40).prop_map(|(m, e)| format!("{m}.5e{e}")),
        1 => (0u32..4096, -8i32..8).prop_map(|(m, e)| format!("0x{m:x}p{e}")),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec!["inf", "-inf", "abc", "1e", "", " 1", "1e5000", "1e-5000", ".5", "5.", "+3"])
            .prop_map(str::to_owned),
    ]
}
