//! Differential tests of the blocking sorted set pops (BZPOPMIN, BZPOPMAX, BZMPOP)
//! against a real Redis 7: see `common/mod.rs` for the harness. Several raw clients per
//! side run the same script; the transcripts of every reply are compared byte for byte.

mod common;

use common::client::{server_addr, settle, Client};
use common::pair;

const REDIS_DB: &str = "6";

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
    let mut c = Client::connect(addr, REDIS_DB);
    record("set", main.call(&["SET", "str", "v"]));
    record("list", main.call(&["RPUSH", "list", "x"]));

    // Members present: served at once, as ZPOPMIN / ZPOPMAX / ZMPOP would.
    record(
        "zadd",
        main.call(&["ZADD", "z1", "1", "a", "2.5", "b", "3", "c", "-4", "d"]),
    );
    record("bzpopmin now", a.call(&["BZPOPMIN", "missing", "z1", "0"]));
    record("bzpopmax now", a.call(&["BZPOPMAX", "z1", "missing", "0"]));
    record(
        "bzmpop now",
        a.call(&["BZMPOP", "0", "2", "missing", "z1", "MAX", "COUNT", "5"]),
    );
    record("gone", main.call(&["EXISTS", "z1"]));
    record("zadd", main.call(&["ZADD", "z1", "1", "a", "2", "b"]));
    record("bzmpop now", a.call(&["BZMPOP", "0", "1", "z1", "MIN"]));
    record("bzpopmin twice", a.call(&["BZPOPMIN", "z1", "z1", "0"]));

    // Wrong types: an error when met before a non-empty sorted set.
    record("zadd", main.call(&["ZADD", "z2", "5", "m"]));
    for cmd in [
        &["BZPOPMIN", "missing", "str", "0"][..],
        &["BZPOPMAX", "list", "z2", "0"],
        &["BZMPOP", "0", "2", "str", "z2", "MIN"],
        &["BZMPOP", "0", "2", "missing", "list", "MAX", "COUNT", "3"],
        &["BZPOPMIN", "z2", "str", "0"],
    ] {
        record(&cmd.join(" "), a.call(cmd));
    }

    // Timeouts: a null array; no key is created.
    for cmd in [
        &["BZPOPMIN", "none", "0.05"][..],
        &["BZPOPMAX", "none", "none2", "0.01"],
        &["BZMPOP", "0.01", "2", "none", "none2", "MAX", "COUNT", "2"],
        &["BZPOPMIN", "none", "1e-300"],
        &["BZPOPMAX", "none", "+.01"],
    ] {
        record(&cmd.join(" "), a.call(cmd));
    }
    record("no key created", main.call(&["EXISTS", "none", "none2"]));

    // Argument errors: BZPOPMIN reads its timeout first, BZMPOP after the rest.
    for cmd in [
        &["BZPOPMIN", "k", "-1"][..],
        &["BZPOPMIN", "str", "x"],
        &["BZPOPMAX", "k", "nan"],
        &["BZPOPMAX", "k", "inf"],
        &["BZPOPMIN", "k", ""],
        &["BZPOPMIN", "k"],
        &["BZPOPMAX"],
        &["BZMPOP", "x", "1", "k", "MIN"],
        &["BZMPOP", "-1", "1", "k", "MIN"],
        &["BZMPOP", "x", "0", "k", "MIN"],
        &["BZMPOP", "0", "-1", "k", "MIN"],
        &["BZMPOP", "0", "2", "k", "MIN"],
        &["BZMPOP", "0", "1", "k", "MIDDLE"],
        &["BZMPOP", "0", "1", "k", "LEFT"],
        &["BZMPOP", "0", "1", "k", "MIN", "COUNT", "0"],
        &["BZMPOP", "0", "1", "k", "MIN", "COUNT", "-1"],
        &["BZMPOP", "0", "1", "k", "MIN", "COUNT", "x"],
        &["BZMPOP", "0", "1", "k", "MIN", "COUNT", "1", "COUNT", "1"],
        &["BZMPOP", "0", "1", "k", "MIN", "COUNT"],
        &["BZMPOP", "0", "1", "k", "MIN", "extra"],
        &["BZMPOP", "x", "1", "str", "MIN", "COUNT", "0"],
        &["BZMPOP", "0", "1", "k"],
    ] {
        record(&cmd.join(" "), a.call(cmd));
    }

    // A ZADD to the second key wakes a client blocked on two.
    a.send(&["BZPOPMIN", "q1", "q2", "0"]);
    settle();
    record(
        "zadd q2",
        main.call(&["ZADD", "q2", "2", "two", "1", "one"]),
    );
    record("woken", a.receive());
    record(
        "left",
        main.call(&["ZRANGE", "q2", "0", "-1", "WITHSCORES"]),
    );

    // Waiters are served oldest first across clients and commands, each with its own pop,
    // before the adder's next command.
    a.send(&["BZPOPMIN", "f", "0"]);
    settle();
    b.send(&["BZPOPMAX", "f", "0"]);
    settle();
    c.send(&["BZMPOP", "0", "1", "f", "MIN", "COUNT", "2"]);
    settle();
    record(
        "zadd f",
        main.call(&[
            "ZADD", "f", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
        ]),
    );
    record("left", main.call(&["ZRANGE", "f", "0", "-1", "WITHSCORES"]));
    record("first", a.receive());
    record("second", b.receive());
    record("third", c.receive());

    // More waiters than members: the rest keep waiting for the next addition.
    a.send(&["BZPOPMAX", "g", "0"]);
    settle();
    b.send(&["BZPOPMIN", "g", "0"]);
    settle();
    record("zadd g", main.call(&["ZADD", "g", "7", "only"]));
    record("first", a.receive());
    assert!(!b.has_reply(), "second waiter must still wait");
    record("zadd xx", main.call(&["ZADD", "g", "XX", "1", "x"]));
    record("zincrby g", main.call(&["ZINCRBY", "g", "1.5", "next"]));
    record("second", b.receive());
    record("gone", main.call(&["EXISTS", "g"]));

    // The store commands wake waiters on their destination; an empty result does not.
    record(
        "src",
        main.call(&["ZADD", "src", "1", "a", "2", "b", "3", "c"]),
    );
    a.send(&["BZPOPMAX", "dst", "0"]);
    settle();
    record(
        "zinterstore empty",
        main.call(&["ZINTERSTORE", "dst", "2", "src", "none"]),
    );
    assert!(!a.has_reply(), "an empty store wakes nobody");
    record(
        "zunionstore",
        main.call(&["ZUNIONSTORE", "dst", "1", "src", "WEIGHTS", "2"]),
    );
    record("served", a.receive());
    record("del", main.call(&["DEL", "dst"]));
    a.send(&["BZMPOP", "0", "1", "dst", "MIN", "COUNT", "10"]);
    settle();
    record(
        "zrangestore",
        main.call(&["ZRANGESTORE", "dst", "src", "0", "1"]),
    );
    record("served", a.receive());
    a.send(&["BZPOPMIN", "dst", "0"]);
    settle();
    record("zdiffstore", main.call(&["ZDIFFSTORE", "dst", "1", "src"]));
    record("served", a.receive());
    a.send(&["BZPOPMIN", "dst", "0"]);
    settle();
    record(
        "zinterstore",
        main.call(&["ZINTERSTORE", "dst", "1", "src"]),
    );
    record("served", a.receive());
    record(
        "left",
        main.call(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]),
    );

    // A list waiter and a sorted set waiter on one key: each is served by its own type.
    a.send(&["BLPOP", "mix", "0"]);
    settle();
    b.send(&["BZPOPMIN", "mix", "0"]);
    settle();
    record("zadd mix", main.call(&["ZADD", "mix", "1", "m"]));
    record("zset waiter", b.receive());
    assert!(!a.has_reply(), "the list waiter waits on");
    record("rpush mix", main.call(&["RPUSH", "mix", "e"]));
    record("list waiter", a.receive());

    // A key of another type wakes nobody; the wait then times out.
    a.send(&["BZPOPMIN", "t", "0.2"]);
    settle();
    record("other key", main.call(&["ZADD", "not-t", "1", "x"]));
    record("string", main.call(&["SET", "t", "x"]));
    record("del", main.call(&["DEL", "t"]));
    record("list", main.call(&["RPUSH", "t", "x"]));
    record("timed out", a.receive());
    record("del", main.call(&["DEL", "t"]));

    // A client that disconnects while blocked takes nothing.
    let mut gone = Client::connect(addr, REDIS_DB);
    gone.send(&["BZPOPMIN", "lost", "0"]);
    settle();
    drop(gone);
    settle();
    record("zadd lost", main.call(&["ZADD", "lost", "1", "x"]));
    record("kept", main.call(&["ZRANGE", "lost", "0", "-1"]));

    // Commands pipelined after a blocked one wait for it, then run in order.
    a.send(&["BZPOPMAX", "p", "0"]);
    a.send(&["ZCARD", "p"]);
    a.send(&["PING"]);
    settle();
    record("zadd p", main.call(&["ZADD", "p", "1", "x", "2", "y"]));
    record("served", a.receive());
    record("after", a.receive());
    record("ping", a.receive());

    // A timed wait served before its deadline gets the member.
    a.send(&["BZPOPMIN", "soon", "5"]);
    settle();
    record("zadd soon", main.call(&["ZADD", "soon", "inf", "v"]));
    record("served", a.receive());

    // Inside MULTI/EXEC nothing blocks: an empty key is a null array at once.
    record("multi", a.call(&["MULTI"]));
    for cmd in [
        &["BZPOPMIN", "none", "0"][..],
        &["BZMPOP", "0", "1", "none", "MAX"],
        &["ZADD", "none", "1", "x", "2", "y"],
        &["BZPOPMAX", "none", "0"],
        &["BZMPOP", "0", "1", "none", "MIN", "COUNT", "5"],
        &["BZPOPMIN", "none", "0"],
    ] {
        record(&cmd.join(" "), a.call(cmd));
    }
    record("exec", a.call(&["EXEC"]));

    // A transaction's additions are served to waiters once it is done: its own later
    // commands see the members first.
    b.send(&["BZPOPMIN", "tx", "0"]);
    settle();
    record("multi", main.call(&["MULTI"]));
    record("queued", main.call(&["ZADD", "tx", "1", "a", "2", "b"]));
    record("queued", main.call(&["ZCARD", "tx"]));
    record("queued", main.call(&["ZPOPMAX", "tx"]));
    record("exec", main.call(&["EXEC"]));
    record("served", b.receive());
    record("gone", main.call(&["EXISTS", "tx"]));
    // A transaction that empties the key again serves nobody.
    b.send(&["BZPOPMAX", "tx", "0.2"]);
    settle();
    record("multi", main.call(&["MULTI"]));
    record("queued", main.call(&["ZADD", "tx", "1", "a"]));
    record("queued", main.call(&["ZREM", "tx", "a"]));
    record("exec", main.call(&["EXEC"]));
    record("timed out", b.receive());

    // RESP3: scores are doubles, a timeout is a null.
    let hello = a.call(&["HELLO", "3"]);
    assert!(hello.starts_with(b"%"), "HELLO 3 replies with a map");
    record("resp3 timeout", a.call(&["BZPOPMIN", "none3", "0.01"]));
    record(
        "resp3 timeout",
        a.call(&["BZMPOP", "0.01", "1", "none3", "MIN"]),
    );
    record(
        "zadd r3",
        main.call(&["ZADD", "r3", "1", "a", "2.5", "b", "-3", "c"]),
    );
    record("resp3 now", a.call(&["BZPOPMAX", "r3", "0"]));
    record(
        "resp3 now",
        a.call(&["BZMPOP", "0", "1", "r3", "MIN", "COUNT", "9"]),
    );
    a.send(&["BZPOPMIN", "r3", "0"]);
    settle();
    record("zadd r3", main.call(&["ZADD", "r3", "1", "x"]));
    record("resp3 served", a.receive());
    a.send(&["BZMPOP", "0", "1", "r3", "MAX", "COUNT", "2"]);
    settle();
    record("zadd r3", main.call(&["ZADD", "r3", "-inf", "x", "4", "y"]));
    record("resp3 served", a.receive());
    record("multi", a.call(&["MULTI"]));
    record("queued", a.call(&["BZPOPMIN", "none3", "0"]));
    record("resp3 exec", a.call(&["EXEC"]));
    log
}

#[test]
fn blocking_zset_pops_match_redis() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let girder = blocking_script(&server_addr(&mut p.girder));
    let redis = blocking_script(&server_addr(&mut p.redis));
    for (g, r) in girder.iter().zip(&redis) {
        assert_eq!(g, r, "left: Girder, right: Redis");
    }
    assert_eq!(girder.len(), redis.len());
}
