//! Keyspace notifications against Redis 7: the same writes on both servers, with
//! `notify-keyspace-events` set the same way, must publish the same frames in the same
//! order to a `PSUBSCRIBE __key*@5__:*` subscriber.

mod common;

use common::{args, Pair, Raw};
use girder_kv::{Keyspace, SystemClock};
use girder_resp::{RespConfig, RespService};
use girder_runtime::{BuildInfo, CancellationToken, Metrics, Readiness, Service, ServiceContext};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const DB: &str = "5";
const PATTERN: &str = "__key*@5__:*";
/// Published after each script: every frame before it belongs to the script.
const END: &str = "__keyspace@5__:~end";

/// Restores `notify-keyspace-events` to off on both servers, even when a test fails:
/// the Redis is shared with other test binaries.
struct Reset {
    addrs: Vec<SocketAddr>,
}

impl Drop for Reset {
    fn drop(&mut self) {
        for addr in &self.addrs {
            if let Ok(mut c) = Raw::connect(*addr) {
                c.call(&args(&["CONFIG", "SET", "notify-keyspace-events", ""]));
            }
        }
    }
}

/// A writer pair, one subscriber per side, and flags set on both.
struct Notify {
    /// First, so it is dropped while `pair` still holds the database lock.
    _reset: Reset,
    pair: Pair,
    subs: [Raw; 2],
    /// Frames compared so far: a test checks it saw events at all.
    seen: usize,
}

fn setup(flags: &str, girder: Option<SocketAddr>) -> Option<Notify> {
    let mut pair = common::pair(DB)?;
    let girder = girder.unwrap_or_else(common::girder_addr);
    if girder != common::girder_addr() {
        pair.girder = Raw::connect(girder).unwrap();
        pair.girder.call(&args(&["SELECT", DB]));
    }
    let reset = Reset {
        addrs: vec![girder, common::redis_addr()],
    };
    pair.check(&args(&["CONFIG", "SET", "notify-keyspace-events", flags]));
    let subs = [girder, common::redis_addr()].map(|addr| {
        let mut s = Raw::connect(addr).unwrap();
        s.call(&args(&["PSUBSCRIBE", PATTERN]));
        s
    });
    Some(Notify {
        pair,
        subs,
        seen: 0,
        _reset: reset,
    })
}

impl Notify {
    /// Runs `script` on both sides (replies compared), then compares the frames each
    /// subscriber received.
    fn run(&mut self, script: &[&[&str]]) {
        self.pair.run(script);
        self.compare(script);
    }

    fn compare(&mut self, what: &[&[&str]]) {
        let [g, r] = &mut self.subs;
        self.pair.girder.call(&args(&["PUBLISH", END, "end"]));
        self.pair.redis.call(&args(&["PUBLISH", END, "end"]));
        let girder = frames(g);
        let redis = frames(r);
        assert_eq!(
            girder, redis,
            "events of {what:?} (left: Girder, right: Redis)"
        );
        self.seen += girder.len();
    }
}

/// Frames up to the end marker, as text.
fn frames(sub: &mut Raw) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let frame = String::from_utf8_lossy(&sub.read()).into_owned();
        if frame.contains(END) {
            return out;
        }
        out.push(frame);
    }
}

#[test]
fn config_flags_parse_and_print_as_redis() {
    let Some(mut p) = common::pair(DB) else {
        return;
    };
    let _reset = Reset {
        addrs: vec![common::girder_addr(), common::redis_addr()],
    };
    for flags in [
        "KEA", "Kgn$", "Enmlx", "An", "Anm", "mKE", "ztd$", "A", "g", "", "KEA", "Q", "KEz?",
        "hsKK",
    ] {
        p.check(&args(&["CONFIG", "SET", "notify-keyspace-events", flags]));
        p.check(&args(&["CONFIG", "GET", "notify-keyspace-events"]));
    }
    p.check(&args(&["CONFIG", "GET", "notify-*"]));
    p.check(&args(&[
        "CONFIG",
        "SET",
        "notify-keyspace-events",
        "K",
        "notify-keyspace-events",
        "E",
    ]));
    p.check(&args(&["CONFIG", "SET", "NOTIFY-KEYSPACE-EVENTS", "Eg"]));
    p.check(&args(&["CONFIG", "GET", "notify-keyspace-events"]));
}

#[test]
fn generic_and_string_events() {
    let Some(mut n) = setup("KEA", None) else {
        return;
    };
    n.run(&[
        &["SET", "a", "1"],
        &["SET", "a", "2", "NX"],
        &["SET", "a", "3", "XX", "EX", "100"],
        &["SET", "b", "x", "NX", "GET"],
        &["SETNX", "b", "y"],
        &["SETEX", "c", "100", "v"],
        &["MSET", "d", "1", "e", "2", "d", "3"],
        &["MSETNX", "d", "1", "f", "2"],
        &["INCR", "d"],
        &["INCRBY", "d", "5"],
        &["DECR", "d"],
        &["INCRBYFLOAT", "d", "1.5"],
        &["INCR", "b"],
        &["APPEND", "b", "zz"],
        &["SETRANGE", "b", "1", "q"],
        &["SETRANGE", "b", "1", ""],
        &["SETRANGE", "new", "0", ""],
        &["GETSET", "e", "9"],
        &["GETEX", "e", "EX", "100"],
        &["GETEX", "e", "PERSIST"],
        &["GETEX", "e", "PERSIST"],
        &["GETDEL", "e"],
        &["GETDEL", "e"],
        &["EXPIRE", "a", "100"],
        &["EXPIRE", "missing", "100"],
        &["PEXPIRE", "a", "100", "NX"],
        &["PERSIST", "a"],
        &["PERSIST", "a"],
        &["EXPIRE", "c", "-1"],
        &["RENAME", "a", "a2"],
        &["RENAME", "a2", "a2"],
        &["RENAME", "a2", "b"],
        &["RENAMENX", "b", "d"],
        &["DEL", "b", "missing", "d", "b"],
        &["SET", "m", "1"],
        &["COPY", "m", "m2"],
        &["COPY", "m", "m2", "REPLACE"],
        // A successful MOVE writes to another database, which other test binaries own.
        &["MOVE", "m", "5"],
        &["UNLINK", "m2", "f"],
    ]);
    assert_eq!(n.seen, 64, "frames compared");
}

#[test]
fn list_events() {
    let Some(mut n) = setup("KEA", None) else {
        return;
    };
    n.run(&[
        &["LPUSH", "l", "a", "b", "c"],
        &["RPUSH", "l", "d"],
        &["LPUSHX", "nol", "a"],
        &["RPUSHX", "l", "e"],
        &["LINSERT", "l", "BEFORE", "a", "x"],
        &["LINSERT", "l", "BEFORE", "zz", "x"],
        &["LSET", "l", "0", "y"],
        &["LREM", "l", "0", "x"],
        &["LREM", "l", "0", "nothing"],
        &["LTRIM", "l", "0", "3"],
        &["LTRIM", "nol", "0", "3"],
        &["LPOP", "l"],
        &["RPOP", "l", "0"],
        &["RPOP", "l", "1"],
        &["LMOVE", "l", "l2", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "l", "l2"],
        &["LMOVE", "l2", "l2", "LEFT", "LEFT"],
        &["BLPOP", "nol", "l2", "0"],
        &["BRPOP", "l2", "0"],
        &["LPOP", "nol"],
        &["RPUSH", "t", "a", "b"],
        &["LTRIM", "t", "5", "10"],
        &["SET", "s", "x"],
        &["LPUSH", "s", "x"],
        &["RPUSH", "m", "a", "b", "c"],
        &["LMPOP", "2", "nol", "m", "LEFT"],
        &["LMPOP", "1", "m", "RIGHT", "COUNT", "5"],
        &["LMPOP", "1", "m", "RIGHT"],
        &["RPUSH", "left", "a"],
        &["BLMPOP", "0", "2", "nol", "left", "RIGHT"],
    ]);
    assert_eq!(n.seen, 60, "frames compared");
}

#[test]
fn hash_and_set_events() {
    let Some(mut n) = setup("KEA", None) else {
        return;
    };
    n.run(&[
        &["HSET", "h", "f", "1", "g", "2"],
        &["HSET", "h", "f", "1"],
        &["HMSET", "h", "k", "3"],
        &["HSETNX", "h", "f", "1"],
        &["HSETNX", "h", "n", "1"],
        &["HINCRBY", "h", "f", "2"],
        &["HINCRBYFLOAT", "h", "f", "2.5"],
        &["HINCRBY", "h", "f", "2"],
        &["HDEL", "h", "nothing"],
        &["HDEL", "h", "f", "g", "k"],
        &["HDEL", "h", "n"],
        &["SADD", "s", "a", "b", "c"],
        &["SADD", "s", "a"],
        &["SREM", "s", "zz"],
        &["SREM", "s", "a"],
        &["SMOVE", "s", "s2", "b"],
        &["SMOVE", "s", "s", "c"],
        &["SMOVE", "s", "s2", "c"],
        &["SADD", "s4", "b", "e"],
        &["SMOVE", "s4", "s2", "b"],
        &["SMOVE", "s4", "s2", "zz"],
        &["SADD", "s3", "c", "d"],
        &["SINTERSTORE", "dst", "s2", "s3"],
        &["SUNIONSTORE", "dst", "s2", "s3"],
        &["SDIFFSTORE", "dst", "s2", "s2"],
        &["SREM", "s3", "d"],
        &["SPOP", "s3", "0"],
        &["SPOP", "s3"],
        &["SADD", "s3", "x"],
        &["SPOP", "s3", "5"],
        &["SREM", "s2", "b"],
        &["SPOP", "s2", "1"],
    ]);
    assert_eq!(n.seen, 62, "frames compared");
}

#[test]
fn zset_events() {
    let Some(mut n) = setup("KEA", None) else {
        return;
    };
    n.run(&[
        &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
        &["ZADD", "z", "1", "a"],
        &["ZADD", "z", "5", "a"],
        &["ZADD", "z", "NX", "6", "a"],
        &["ZADD", "z", "INCR", "1", "a"],
        &["ZINCRBY", "z", "2", "b"],
        &["ZREM", "z", "zz"],
        &["ZREM", "z", "b"],
        &["ZADD", "y", "1", "x", "2", "c"],
        &["ZUNIONSTORE", "u", "2", "z", "y"],
        &["ZINTERSTORE", "u", "2", "z", "y"],
        &["ZINTERSTORE", "u", "2", "z", "nothing"],
        &["ZRANGESTORE", "r", "z", "0", "-1"],
        &["ZREMRANGEBYSCORE", "r", "100", "200"],
        &["ZREMRANGEBYSCORE", "r", "0", "3"],
        &["ZREMRANGEBYRANK", "r", "0", "0"],
        &["ZREMRANGEBYLEX", "y", "-", "+"],
        &["ZPOPMIN", "z"],
        &["ZPOPMAX", "z", "10"],
        &["ZPOPMIN", "z"],
        &["BZPOPMIN", "r", "0"],
        &["ZADD", "m", "1", "a", "2", "b", "3", "c"],
        &["ZMPOP", "1", "m", "MAX"],
        &["ZMPOP", "2", "nothing", "m", "MIN", "COUNT", "5"],
        &["ZADD", "min", "1", "a"],
        &["BZMPOP", "0", "1", "min", "MAX"],
    ]);
    assert_eq!(n.seen, 52, "frames compared");
}

#[test]
fn only_selected_classes_and_channels() {
    let Some(mut n) = setup("Kl", None) else {
        return;
    };
    n.run(&[
        &["SET", "a", "1"],
        &["LPUSH", "l", "a"],
        &["DEL", "l"],
        &["HSET", "h", "f", "v"],
    ]);
    for flags in ["Eg", "g", "KEn", "KEA", "Ex$"] {
        n.pair
            .check(&args(&["CONFIG", "SET", "notify-keyspace-events", flags]));
        n.run(&[
            &["SET", "a", "1"],
            &["LPUSH", "l", "a"],
            &["DEL", "l", "a"],
            &["HSET", "h", "f", "v"],
            &["SADD", "s", "m"],
            &["ZADD", "z", "1", "m"],
            &["RENAME", "s", "s2"],
            &["FLUSHDB"],
        ]);
    }
    assert_eq!(n.seen, 36, "frames compared");
}

#[test]
fn new_keys() {
    let Some(mut n) = setup("KEAn", None) else {
        return;
    };
    n.run(&[
        &["SET", "a", "1"],
        &["SET", "a", "2"],
        &["LPUSH", "l", "x"],
        &["LMOVE", "l", "l2", "LEFT", "LEFT"],
        &["SADD", "s", "a"],
        &["SMOVE", "s", "s2", "a"],
        &["ZADD", "z", "1", "a"],
        &["HSET", "h", "f", "v"],
        &["INCR", "i"],
        &["RENAME", "i", "a"],
        &["COPY", "a", "c"],
        &["SUNIONSTORE", "u", "s2"],
    ]);
    assert_eq!(n.seen, 56, "frames compared");
}

#[test]
fn lazy_expiry_publishes_expired() {
    let Some(mut n) = setup("KEA", None) else {
        return;
    };
    // Whether Redis's active expiry or the access removes the key, one `expired` event
    // comes before the write's events. One key per round: Redis's active expiry picks
    // keys in no fixed order.
    n.run(&[&["SET", "k", "v", "PX", "1"]]);
    std::thread::sleep(Duration::from_millis(20));
    n.run(&[&["GET", "k"]]);
    n.run(&[&["LPUSH", "l", "a"], &["PEXPIRE", "l", "1"]]);
    std::thread::sleep(Duration::from_millis(20));
    n.run(&[&["LPUSH", "l", "b"]]);
    assert_eq!(n.seen, 14, "frames compared");
}

/// A Girder server whose keyspace the test holds, to run the active expiry itself.
fn server_with_keyspace() -> (SocketAddr, Arc<Keyspace>) {
    let keyspace = Arc::new(Keyspace::new(Arc::new(SystemClock), 512 << 20));
    let (tx, rx) = std::sync::mpsc::channel();
    let served = Arc::clone(&keyspace);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let ctx = ServiceContext {
                shutdown: CancellationToken::new(),
                readiness: Readiness::default(),
                metrics: Metrics::new(BuildInfo::default()),
            };
            Box::new(RespService::new(listener, served, RespConfig::default()))
                .run(ctx)
                .await
                .unwrap();
        });
    });
    (rx.recv().unwrap(), keyspace)
}

#[test]
fn active_expiry_publishes_expired() {
    let (addr, keyspace) = server_with_keyspace();
    let Some(mut n) = setup("Ex", Some(addr)) else {
        return;
    };
    n.run(&[
        &["SET", "k", "v", "PX", "1"],
        &["SET", "k2", "v", "PX", "1"],
    ]);
    // Redis's active expiry runs 10 times a second; Girder's when the node's expiry
    // service calls it, done here by hand.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(keyspace.expire_cycle(100), 2);
    let [g, r] = &mut n.subs;
    let mut girder = [g.read(), g.read()].map(|f| String::from_utf8_lossy(&f).into_owned());
    let mut redis = [r.read(), r.read()].map(|f| String::from_utf8_lossy(&f).into_owned());
    // The two keys expire in either order on either server.
    girder.sort();
    redis.sort();
    assert_eq!(girder, redis);
    n.compare(&[]);
}

#[test]
fn stream_entry_events() {
    let Some(mut n) = setup("KEAn", None) else {
        return;
    };
    n.run(&[
        &["XADD", "s", "1-1", "a", "1"],
        &["XADD", "s", "2-1", "a", "1"],
        &["XADD", "s", "NOMKSTREAM", "3-1", "a", "1"],
        &["XADD", "nos", "NOMKSTREAM", "3-1", "a", "1"],
        &["XADD", "s", "0-0", "a", "1"],
        &["XADD", "nos", "0-0", "a", "1"],
        &["XADD", "s", "1-0", "a", "1"],
        &["XADD", "s", "MAXLEN", "5", "4-1", "a", "1"],
        &["XADD", "s", "MAXLEN", "2", "5-1", "a", "1"],
        &["XADD", "s", "MAXLEN", "~", "1", "6-1", "a", "1"],
        &["XADD", "s", "MINID", "6-0", "7-1", "a", "1"],
        &["XADD", "s", "MINID", "=", "6-0", "8-1", "a", "1"],
        &["XADD", "new", "MAXLEN", "0", "1-1", "a", "1"],
        &["XADD", "new", "MAXLEN", "0", "2-1", "a", "1"],
        &["SET", "str", "x"],
        &["XADD", "str", "1-1", "a", "1"],
        &["XTRIM", "s", "MAXLEN", "10"],
        &["XTRIM", "s", "MAXLEN", "1"],
        &["XTRIM", "nos", "MAXLEN", "1"],
        &["XTRIM", "s", "MINID", "0-1"],
        &["XDEL", "s", "1-1"],
        &["XDEL", "nos", "1-1"],
        &["XADD", "s", "9-1", "a", "1"],
        &["XDEL", "s", "8-1", "9-9"],
        &["XDEL", "s", "8-1"],
        &["XSETID", "s", "100-1"],
        &["XSETID", "s", "100-1"],
        &["XSETID", "s", "1-1"],
        &["XSETID", "nos", "1-1"],
        &[
            "XSETID",
            "s",
            "200-1",
            "ENTRIESADDED",
            "50",
            "MAXDELETEDID",
            "100-0",
        ],
        &["XLEN", "s"],
        &["XRANGE", "s", "-", "+"],
        &["XREAD", "STREAMS", "s", "new", "0", "0"],
        &["DEL", "s"],
        &["XADD", "s", "1-1", "a", "1"],
        &["RENAME", "s", "s2"],
        &["EXPIRE", "s2", "100"],
    ]);
    assert_eq!(n.seen, 62, "frames compared");
    // Only the selected classes and channel: `t` on keyevent, then `g` and `n` on keyspace.
    for flags in ["Et", "Kgn"] {
        n.pair
            .check(&args(&["CONFIG", "SET", "notify-keyspace-events", flags]));
        n.run(&[
            &["XADD", "t", "MAXLEN", "0", "1-1", "a", "1"],
            &["XGROUP", "CREATE", "t2", "g", "$", "MKSTREAM"],
            &["DEL", "t", "t2"],
        ]);
    }
    assert_eq!(n.seen, 62 + 3 + 4, "frames compared");
}

#[test]
fn stream_group_events() {
    let Some(mut n) = setup("KEAn", None) else {
        return;
    };
    n.run(&[
        &["XADD", "s", "1-1", "a", "1"],
        &["XADD", "s", "2-1", "a", "1"],
        &["XADD", "s", "3-1", "a", "1"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XGROUP", "CREATE", "mk", "g", "$", "MKSTREAM"],
        &["XGROUP", "CREATE", "mk2", "g", "1-x", "MKSTREAM"],
        &["XGROUP", "CREATE", "nos", "g", "0"],
        &["XGROUP", "HELP"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "c1"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "c1"],
        &["XGROUP", "CREATECONSUMER", "s", "nog", "c1"],
        &["XGROUP", "DELCONSUMER", "s", "g", "nobody"],
        &["XGROUP", "DELCONSUMER", "s", "g", "c1"],
        &["XGROUP", "DELCONSUMER", "s", "nog", "c1"],
        &["XGROUP", "SETID", "s", "g", "0"],
        &["XGROUP", "SETID", "s", "g", "$", "ENTRIESREAD", "3"],
        &["XGROUP", "SETID", "s", "nog", "0"],
        // `>` with nothing new creates no consumer; a history read does.
        &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c2",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            "0",
        ],
        &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", "0"],
        &["XREADGROUP", "GROUP", "nog", "c2", "STREAMS", "s", "0"],
        &["XGROUP", "SETID", "s", "g", "0"],
        &["XGROUP", "CREATE", "mk", "streams", "0"],
        &["XADD", "mk", "1-1", "a", "1"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c3",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            "s",
            ">",
            ">",
        ],
        &[
            "XREADGROUP",
            "GROUP",
            "streams",
            "streams",
            "NOACK",
            "STREAMS",
            "mk",
            ">",
        ],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c4",
            "BLOCK",
            "10",
            "STREAMS",
            "s",
            ">",
        ],
        &["XACK", "s", "g", "1-1"],
        &["XACK", "s", "g", "1-1", "9-9"],
        &["XACK", "s", "nog", "1-1"],
        &["XCLAIM", "s", "g", "c5", "0", "1-1"],
        &["XCLAIM", "s", "g", "c5", "99999999", "2-1"],
        &["XCLAIM", "s", "g", "c6", "0", "2-1", "JUSTID"],
        &["XCLAIM", "s", "g", "c6", "0", "3-1"],
        &[
            "XCLAIM", "s", "g", "c7", "0", "3-1", "FORCE", "LASTID", "3-1",
        ],
        &["XCLAIM", "s", "g", "c8", "0", "9-9"],
        &["XAUTOCLAIM", "s", "g", "c9", "99999999", "0"],
        &["XAUTOCLAIM", "s", "g", "c9", "0", "0", "COUNT", "1"],
        &["XAUTOCLAIM", "s", "g", "c9", "0", "0", "JUSTID"],
        &["XDEL", "s", "2-1", "3-1"],
        &["XAUTOCLAIM", "s", "g", "c10", "0", "0"],
        &["XCLAIM", "s", "g", "c10", "0", "1-1"],
        &["XGROUP", "DELCONSUMER", "s", "g", "c6"],
        &["XGROUP", "DESTROY", "s", "nog"],
        &["XGROUP", "DESTROY", "s", "g"],
        &["XGROUP", "DESTROY", "nos", "g"],
    ]);
    assert_eq!(n.seen, 46, "frames compared");
}

#[test]
fn stream_blocked_group_read_served_by_xadd() {
    use common::client::{settle, Client};
    let Some(mut n) = setup("KEA", None) else {
        return;
    };
    n.run(&[
        &["XADD", "s", "1-1", "a", "1"],
        &["XGROUP", "CREATE", "s", "g", "$"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "known"],
    ]);
    // Per side: a consumer the served read creates, one that exists, a plain reader.
    let mut readers = [common::girder_addr(), common::redis_addr()].map(|addr| {
        let addr = addr.to_string();
        let mut fresh = Client::connect(&addr, DB);
        let mut known = Client::connect(&addr, DB);
        let mut plain = Client::connect(&addr, DB);
        let read = |consumer| {
            [
                "XREADGROUP",
                "GROUP",
                "g",
                consumer,
                "BLOCK",
                "0",
                "STREAMS",
                "s",
                ">",
            ]
        };
        fresh.send(&read("fresh"));
        settle();
        known.send(&read("known"));
        settle();
        plain.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
        settle();
        [fresh, known, plain]
    });
    // `xadd`, `xtrim`, then the consumer the served read created; `known` keeps waiting
    // (the first reader took the entry).
    n.run(&[&["XADD", "s", "MAXLEN", "1", "2-1", "a", "1"]]);
    let [g, r] = &mut readers;
    for i in [0, 2] {
        assert_eq!(g[i].receive(), r[i].receive(), "reader {i}");
    }
    n.run(&[&["XADD", "s", "3-1", "a", "1"]]);
    assert_eq!(g[1].receive(), r[1].receive(), "reader known");
    assert_eq!(n.seen, 6 + 6 + 2, "frames compared");
}

#[test]
fn stream_reads_publish_lazy_expiry() {
    let Some(mut n) = setup("KEA", None) else {
        return;
    };
    // One key per round, as in `lazy_expiry_publishes_expired`.
    n.run(&[
        &["XADD", "e", "1-1", "a", "1"],
        &["XGROUP", "CREATE", "e", "g", "0"],
        &["PEXPIRE", "e", "1"],
    ]);
    std::thread::sleep(Duration::from_millis(20));
    n.run(&[&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "e", ">"]]);
    n.run(&[&["XADD", "e", "1-1", "a", "1"], &["PEXPIRE", "e", "1"]]);
    std::thread::sleep(Duration::from_millis(20));
    n.run(&[&["XREAD", "COUNT", "1", "STREAMS", "e", "0"]]);
    assert_eq!(n.seen, 14, "frames compared");
}
