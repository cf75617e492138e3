//! Differential tests of MULTI/EXEC/DISCARD/WATCH against a real Redis 7: see
//! `common/mod.rs` for the harness.

mod common;

use common::{args, girder_addr, pair, redis_addr, Raw};

const REDIS_DB: &str = "14";

#[test]
fn queued_commands_run_at_exec() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["EXEC"],
        &["DISCARD"],
        &["MULTI"],
        &["SET", "a", "1"],
        &["INCR", "a"],
        &["LPUSH", "l", "x"],
        &["GET", "a"],
        &["MULTI"],
        &["WATCH", "a"],
        &["EXEC"],
        &["GET", "a"],
        &["MULTI"],
        &["SET", "b", "1"],
        &["DISCARD"],
        &["EXISTS", "b"],
        &["MULTI"],
        &["EXEC"],
    ]);
}

#[test]
fn runtime_errors_do_not_stop_the_transaction() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "s", "text"],
        &["MULTI"],
        &["INCR", "s"],
        &["LPUSH", "s", "x"],
        &["SET", "after", "ok"],
        &["EXEC"],
        &["GET", "after"],
    ]);
}

#[test]
fn refused_commands_abort_the_transaction() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["MULTI"],
        &["SET", "a", "1"],
        &["NOSUCHCOMMAND", "x"],
        &["GET"],
        &["EXEC"],
        &["EXISTS", "a"],
        &["MULTI"],
        &["GET"],
        &["DISCARD"],
        &["MULTI"],
        &["SET", "a", "2"],
        &["EXEC"],
        &["GET", "a"],
    ]);
}

#[test]
fn blocking_commands_do_not_block_inside_exec() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["MULTI"],
        &["BLPOP", "empty", "0"],
        &["RPUSH", "l", "a", "b"],
        &["BLPOP", "l", "0"],
        &["BRPOPLPUSH", "l", "m", "0"],
        &["EXEC"],
        &["LRANGE", "m", "0", "-1"],
    ]);
}

#[test]
fn transactions_switch_databases_and_flush() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["SET", "k", "v"],
        &["MULTI"],
        &["SELECT", "15"],
        &["FLUSHDB"],
        &["SET", "other", "x"],
        &["SELECT", REDIS_DB],
        &["MOVE", "k", "15"],
        &["EXEC"],
        &["EXISTS", "k"],
        &["SELECT", "15"],
        &["KEYS", "*"],
        &["FLUSHDB"],
        &["SELECT", REDIS_DB],
    ]);
}

/// WATCH needs a second client that modifies the key: each side gets one.
fn other_clients() -> (Raw, Raw) {
    let mut g = Raw::connect(girder_addr()).unwrap();
    let mut r = Raw::connect(redis_addr()).unwrap();
    for side in [&mut g, &mut r] {
        side.call(&args(&["SELECT", REDIS_DB]));
    }
    (g, r)
}

/// Runs a command on the second client of each side, ignoring the replies.
fn others() -> impl FnMut(&[&str]) {
    let (mut g, mut r) = other_clients();
    move |cmd| {
        g.call(&args(cmd));
        r.call(&args(cmd));
    }
}

#[test]
fn watch_aborts_exec_when_another_client_writes() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let mut both_others = others();
    p.run(&[&["SET", "balance", "100"], &["WATCH", "balance"]]);
    // Another client changes the watched key between WATCH and EXEC.
    both_others(&["INCRBY", "balance", "5"]);
    p.run(&[
        &["MULTI"],
        &["DECRBY", "balance", "30"],
        &["EXEC"],
        &["GET", "balance"],
        // After EXEC the watch is gone: the next transaction runs.
        &["MULTI"],
        &["DECRBY", "balance", "30"],
        &["EXEC"],
    ]);
    // A write by another client to a key that is not watched does not abort.
    p.run(&[&["WATCH", "balance"]]);
    both_others(&["SET", "unrelated", "1"]);
    p.run(&[&["MULTI"], &["INCR", "balance"], &["EXEC"]]);
    // Deleting, expiring and flushing count as writes.
    p.run(&[&["WATCH", "balance"]]);
    both_others(&["DEL", "balance"]);
    p.run(&[
        &["MULTI"],
        &["SET", "balance", "0"],
        &["EXEC"],
        &["EXISTS", "balance"],
    ]);
    p.run(&[&["SET", "t", "1"], &["WATCH", "t"]]);
    both_others(&["FLUSHDB"]);
    p.run(&[&["MULTI"], &["SET", "t", "2"], &["EXEC"]]);
    // UNWATCH and DISCARD release the watch.
    p.run(&[&["SET", "u", "1"], &["WATCH", "u"], &["UNWATCH"]]);
    both_others(&["SET", "u", "2"]);
    p.run(&[&["MULTI"], &["GET", "u"], &["EXEC"]]);
}

#[test]
fn watched_keys_survive_their_own_client_writing_them() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    // A client's own write to its watched key also aborts its EXEC (Redis semantics).
    p.run(&[
        &["SET", "k", "1"],
        &["WATCH", "k"],
        &["SET", "k", "2"],
        &["MULTI"],
        &["GET", "k"],
        &["EXEC"],
        &["WATCH", "missing"],
        &["MULTI"],
        &["GET", "missing"],
        &["EXEC"],
    ]);
}

/// Writes that find no key change nothing WATCH sees, and FLUSHDB / SWAPDB change only
/// watched keys that exist on one side (Redis 7.0's `touchAllWatchedKeysInDb`).
#[test]
fn watch_ignores_writes_that_find_no_key() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let mut both_others = others();
    for miss in [
        &["LPOP", "nokey"][..],
        &["SREM", "nokey", "a"],
        &["HDEL", "nokey", "f"],
        &["ZREM", "nokey", "m"],
        &["PERSIST", "nokey"],
        &["EXPIRE", "nokey", "100"],
        &["INCRBY", "other", "1"],
    ] {
        p.run(&[&["WATCH", "nokey"]]);
        both_others(miss);
        p.run(&[&["MULTI"], &["PING"], &["EXEC"]]);
    }
    // FLUSHDB: a watched key that was not there is not modified; one that was, is.
    p.run(&[&["SET", "here", "1"], &["WATCH", "nokey", "gone"]]);
    both_others(&["FLUSHDB"]);
    p.run(&[&["MULTI"], &["PING"], &["EXEC"]]);
    p.run(&[&["SET", "here", "1"], &["WATCH", "here"]]);
    both_others(&["FLUSHDB"]);
    p.run(&[&["MULTI"], &["PING"], &["EXEC"]]);
    // SWAPDB: a watched key present in either database is modified.
    p.run(&[&["WATCH", "nokey"]]);
    both_others(&["SELECT", "15"]);
    both_others(&["FLUSHDB"]);
    both_others(&["SET", "nokey", "there"]);
    both_others(&["SWAPDB", "15", REDIS_DB]);
    p.run(&[&["MULTI"], &["GET", "nokey"], &["EXEC"]]);
    both_others(&["SWAPDB", "15", REDIS_DB]);
    both_others(&["FLUSHDB"]);
    both_others(&["SELECT", REDIS_DB]);
}

/// Redis 7 remembers that a watched key had already expired when WATCH ran: its removal
/// afterwards (by a read, by active expiry) is no modification. A key whose deadline
/// passes after WATCH is one.
#[test]
fn watch_of_an_expired_key_survives_its_removal() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let mut both_others = others();
    // Expired before WATCH, removed by another client's read after it.
    p.run(&[&["SET", "old", "v", "PX", "20"]]);
    std::thread::sleep(std::time::Duration::from_millis(60));
    p.run(&[&["WATCH", "old"]]);
    both_others(&["GET", "old"]);
    p.run(&[&["MULTI"], &["SET", "after", "1"], &["EXEC"]]);
    // Expired before WATCH, nobody touches it.
    p.run(&[&["SET", "old", "v", "PX", "20"]]);
    std::thread::sleep(std::time::Duration::from_millis(60));
    p.run(&[&["WATCH", "old"], &["MULTI"], &["PING"], &["EXEC"]]);
    // Live at WATCH, expired by EXEC: aborted.
    p.run(&[&["SET", "soon", "v", "PX", "50"], &["WATCH", "soon"]]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    p.run(&[&["MULTI"], &["PING"], &["EXEC"]]);
}
