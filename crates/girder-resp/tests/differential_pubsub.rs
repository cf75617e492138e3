//! Differential tests of pub/sub (SUBSCRIBE, PSUBSCRIBE, PUBLISH, PUBSUB, subscribe
//! mode) against a real Redis 7: see `common/mod.rs` for the harness.
//!
//! Pub/sub is server-wide, not per database: channel names carry a `gdiff:` prefix so
//! that other clients of the same Redis do not interfere, and every test holds a `Pair`
//! (its lock) so that the tests of this binary do not see each other's subscriptions.

mod common;

use common::{args, girder_addr, pair, redis_addr, Pair, Raw};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

const REDIS_DB: &str = "15";

/// A client on each side, outside the pair: subscribers and publishers.
struct Sides {
    girder: Raw,
    redis: Raw,
}

impl Sides {
    fn connect() -> Self {
        Self {
            girder: Raw::connect(girder_addr()).unwrap(),
            redis: Raw::connect(redis_addr()).unwrap(),
        }
    }

    /// Sends `cmd` to both sides and compares the `frames` replies it produces.
    fn check(&mut self, cmd: &[&str], frames: usize) {
        check_frames(&mut self.girder, &mut self.redis, cmd, frames);
    }

    /// Reads `frames` pushed frames on both sides (no command sent) and compares them.
    fn expect(&mut self, frames: usize, what: &str) {
        for i in 0..frames {
            let g = self.girder.read();
            let r = self.redis.read();
            same(&g, &r, &format!("{what}, frame {i}"));
        }
    }
}

fn same(girder: &[u8], redis: &[u8], what: &str) {
    assert_eq!(
        String::from_utf8_lossy(girder),
        String::from_utf8_lossy(redis),
        "{what} differs (left: Girder, right: Redis)"
    );
}

fn check_frames(girder: &mut Raw, redis: &mut Raw, cmd: &[&str], frames: usize) {
    let cmd_args = args(cmd);
    let mut g = girder.call(&cmd_args);
    let mut r = redis.call(&cmd_args);
    for _ in 1..frames {
        g.extend(girder.read());
        r.extend(redis.read());
    }
    same(&g, &r, &format!("reply to {cmd:?}"));
}

/// Like `Pair::run`, for commands answered with several frames: `(command, frames)`.
fn run_frames(p: &mut Pair, script: &[(&[&str], usize)]) {
    for (cmd, frames) in script {
        check_frames(&mut p.girder, &mut p.redis, cmd, *frames);
    }
}

#[test]
fn subscribe_confirmations_and_subscribe_mode() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    run_frames(
        &mut p,
        &[
            // Nothing to drop: one reply with a null name.
            (&["UNSUBSCRIBE"], 1),
            (&["PUNSUBSCRIBE"], 1),
            (&["UNSUBSCRIBE", "gdiff:never"], 1),
            (&["SUBSCRIBE"], 1),
            (&["PSUBSCRIBE"], 1),
            // One confirmation per argument; a repeated channel does not count twice.
            (&["SUBSCRIBE", "gdiff:a", "gdiff:b", "gdiff:a"], 3),
            // RESP2 subscribe mode: only (P)(UN)SUBSCRIBE, PING, QUIT, RESET.
            (&["GET", "x"], 1),
            (&["SET", "x", "1"], 1),
            (&["PUBLISH", "gdiff:a", "m"], 1),
            (&["CLIENT", "LIST"], 1),
            (&["PUBSUB", "NUMSUB", "gdiff:a"], 1),
            (&["MULTI"], 1),
            (&["HELLO", "3"], 1),
            // Unknown commands and wrong arity are reported first.
            (&["GET"], 1),
            (&["NOSUCHCOMMAND", "x"], 1),
            (&["PING"], 1),
            (&["PING", "hello"], 1),
            (&["PING", "a", "b"], 1),
            (&["PSUBSCRIBE", "gdiff:p*", "gdiff:q?"], 2),
            (&["PSUBSCRIBE", "gdiff:p*"], 1),
            (&["UNSUBSCRIBE", "gdiff:b", "gdiff:zz"], 2),
            (&["PUNSUBSCRIBE", "gdiff:zz"], 1),
            (&["PUNSUBSCRIBE", "gdiff:q?"], 1),
            // Patterns remain: still in subscribe mode.
            (&["UNSUBSCRIBE"], 1),
            (&["GET", "x"], 1),
            (&["PUNSUBSCRIBE"], 1),
            // Out of subscribe mode.
            (&["PING"], 1),
            (&["GET", "x"], 1),
            (&["UNSUBSCRIBE"], 1),
            // RESET leaves subscribe mode and drops every subscription silently.
            (&["SUBSCRIBE", "gdiff:r"], 1),
            (&["RESET"], 1),
            (&["PING"], 1),
            (&["PUBSUB", "NUMSUB", "gdiff:r"], 1),
            (&["UNSUBSCRIBE"], 1),
            // SUBSCRIBE inside MULTI runs at EXEC, and PING inside it sees the mode.
            (&["MULTI"], 1),
            (&["SUBSCRIBE", "gdiff:t"], 1),
            (&["PING"], 1),
            (&["EXEC"], 1),
            (&["UNSUBSCRIBE"], 1),
            // QUIT is allowed in subscribe mode.
            (&["SUBSCRIBE", "gdiff:q"], 1),
            (&["QUIT"], 1),
        ],
    );
}

#[test]
fn resp3_subscribers_get_pushes_and_may_run_any_command() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    // HELLO's reply carries the client id, which differs: switch both, compare the rest.
    for side in [&mut p.girder, &mut p.redis] {
        assert!(side.call(&args(&["HELLO", "3"])).starts_with(b"%"));
    }
    run_frames(
        &mut p,
        &[
            (&["UNSUBSCRIBE"], 1),
            (&["SUBSCRIBE", "gdiff:a", "gdiff:b"], 2),
            (&["PSUBSCRIBE", "gdiff:*"], 1),
            (&["GET", "x"], 1),
            (&["SET", "x", "1"], 1),
            (&["PING"], 1),
            (&["PING", "x"], 1),
            (&["PUBSUB", "NUMSUB", "gdiff:a", "gdiff:b", "gdiff:c"], 1),
            (&["PUBSUB", "CHANNELS", "gdiff:[a]"], 1),
            (&["UNSUBSCRIBE", "gdiff:a"], 1),
            (&["PUNSUBSCRIBE"], 1),
        ],
    );
    // Back to RESP2 while subscribed: subscribe mode applies again.
    for side in [&mut p.girder, &mut p.redis] {
        assert!(side.call(&args(&["HELLO", "2"])).starts_with(b"*14\r\n"));
    }
    run_frames(
        &mut p,
        &[
            (&["GET", "x"], 1),
            (&["PING"], 1),
            (&["UNSUBSCRIBE"], 1),
            (&["UNSUBSCRIBE"], 1),
        ],
    );
}

#[test]
fn pubsub_introspection() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["PUBSUB"],
        &["PUBSUB", "HELP"],
        &["PUBSUB", "help", "x"],
        &["PUBSUB", "NOSUCH"],
        &["PUBSUB", "NUMPAT", "x"],
        &["PUBSUB", "channels", "a", "b"],
        &["PUBSUB", "NUMSUB"],
        &["PUBSUB", "NUMSUB", "gdiff:a", "gdiff:a"],
        &["PUBSUB", "CHANNELS", "gdiff:*"],
        &["PUBSUB", "SHARDCHANNELS"],
        &["PUBSUB", "SHARDNUMSUB", "gdiff:a"],
        &["PUBLISH", "gdiff:a"],
        &["PUBLISH", "gdiff:a", "nobody"],
    ]);
    let numpat_before = p.check(&args(&["PUBSUB", "NUMPAT"]));
    let mut one = Sides::connect();
    let mut two = Sides::connect();
    one.check(&["SUBSCRIBE", "gdiff:a", "gdiff:b"], 2);
    one.check(&["PSUBSCRIBE", "gdiff:*", "gdiff:x?"], 2);
    two.check(&["SUBSCRIBE", "gdiff:a"], 1);
    // The same pattern from two clients counts once.
    two.check(&["PSUBSCRIBE", "gdiff:*"], 1);
    p.run(&[
        &[
            "PUBSUB", "NUMSUB", "gdiff:a", "gdiff:b", "gdiff:c", "gdiff:*",
        ],
        &["PUBSUB", "CHANNELS", "gdiff:[a]"],
        &["PUBSUB", "CHANNELS", "gdiff:b"],
        &["PUBSUB", "CHANNELS", "gdiff:nothing*"],
        &["PUBSUB", "NUMPAT"],
    ]);
    two.check(&["UNSUBSCRIBE"], 1);
    two.check(&["PUNSUBSCRIBE"], 1);
    one.check(&["PUNSUBSCRIBE", "gdiff:x?"], 1);
    p.run(&[
        &["PUBSUB", "NUMSUB", "gdiff:a", "gdiff:b"],
        &["PUBSUB", "NUMPAT"],
    ]);
    one.check(&["PUNSUBSCRIBE"], 1);
    one.check(&["UNSUBSCRIBE", "gdiff:a", "gdiff:b"], 2);
    assert_eq!(p.check(&args(&["PUBSUB", "NUMPAT"])), numpat_before);
    p.run(&[
        &["PUBSUB", "NUMSUB", "gdiff:a", "gdiff:b"],
        &["PUBSUB", "CHANNELS", "gdiff:*"],
    ]);
}

#[test]
fn published_messages_reach_subscribers_byte_for_byte() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let mut sub = Sides::connect();
    let mut sub3 = Sides::connect();
    for side in [&mut sub3.girder, &mut sub3.redis] {
        side.call(&args(&["HELLO", "3"]));
    }
    sub.check(&["SUBSCRIBE", "gdiff:news", "gdiff:other"], 2);
    sub.check(&["PSUBSCRIBE", "gdiff:n*"], 1);
    sub3.check(&["SUBSCRIBE", "gdiff:news"], 1);

    // Channel subscribers first, then pattern ones: 3 deliveries, 2 to `sub`.
    p.run(&[&["PUBLISH", "gdiff:news", "hello"]]);
    sub.expect(2, "message then pmessage");
    sub3.expect(1, "RESP3 push message");

    p.run(&[&["PUBLISH", "gdiff:nope", "pattern only"]]);
    sub.expect(1, "pmessage");
    p.run(&[&["PUBLISH", "gdiff:zzz", "nobody"]]);

    // Binary-safe payloads, empty ones included.
    p.check(&[
        b"PUBLISH".to_vec(),
        b"gdiff:other".to_vec(),
        b"a\r\nb\0c".to_vec(),
    ]);
    sub.expect(1, "binary message");
    p.run(&[&["PUBLISH", "gdiff:other", ""]]);
    sub.expect(1, "empty message");

    // A RESP3 subscriber can run commands between messages; a message published before
    // a command comes before its reply.
    p.run(&[&["PUBLISH", "gdiff:news", "2"]]);
    sub3.check(&["GET", "missing"], 2);
    sub.expect(2, "second news");
    sub3.check(&["ECHO", "after"], 1);

    // Many messages in a row arrive in order, interleaved with nothing else.
    for i in 0..200 {
        p.run(&[&["PUBLISH", "gdiff:other", &format!("m{i}")]]);
    }
    sub.expect(200, "burst");

    sub.check(&["UNSUBSCRIBE", "gdiff:news"], 1);
    p.run(&[&["PUBLISH", "gdiff:news", "pattern still"]]);
    sub.expect(1, "pmessage after unsubscribe");
    sub3.expect(1, "RESP3 push after the other unsubscribed");
    sub.check(&["UNSUBSCRIBE"], 1);
    sub.check(&["PUNSUBSCRIBE"], 1);
    p.run(&[&["PUBLISH", "gdiff:news", "only resp3"]]);
    sub.check(&["PING"], 1);
    sub3.expect(1, "the last message");
    sub3.check(&["UNSUBSCRIBE"], 1);
}

/// Polls PUBSUB NUMSUB until `channel` has no subscriber (the close is asynchronous on
/// both servers); returns the final reply.
fn numsub_drops_to_zero(client: &mut Raw, channel: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = client.call(&args(&["PUBSUB", "NUMSUB", channel]));
        if reply.ends_with(b":0\r\n") || Instant::now() > deadline {
            return reply;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_closed_connection_leaves_no_subscription() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    let numpat_before = p.check(&args(&["PUBSUB", "NUMPAT"]));
    let mut sub = Sides::connect();
    sub.check(&["SUBSCRIBE", "gdiff:gone", "gdiff:gone2"], 2);
    sub.check(&["PSUBSCRIBE", "gdiff:gone*"], 1);
    p.run(&[
        &["PUBSUB", "NUMSUB", "gdiff:gone", "gdiff:gone2"],
        &["PUBSUB", "CHANNELS", "gdiff:gone"],
    ]);
    drop(sub);
    let g = numsub_drops_to_zero(&mut p.girder, "gdiff:gone");
    let r = numsub_drops_to_zero(&mut p.redis, "gdiff:gone");
    same(&g, &r, "NUMSUB after the subscriber closed");
    p.run(&[
        &["PUBSUB", "NUMSUB", "gdiff:gone", "gdiff:gone2"],
        &["PUBSUB", "CHANNELS", "gdiff:gone*"],
        &["PUBLISH", "gdiff:gone", "anyone?"],
    ]);
    assert_eq!(p.check(&args(&["PUBSUB", "NUMPAT"])), numpat_before);
}

/// A Girder server of its own with a small `pubsub_queue_limit`.
fn small_queue_server(limit: usize) -> std::net::SocketAddr {
    use girder_kv::{Keyspace, SystemClock};
    use girder_resp::{RespConfig, RespService};
    use girder_runtime::{BuildInfo, CancellationToken, Metrics, Readiness, Service};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let keyspace = Arc::new(Keyspace::new(Arc::new(SystemClock), 512 << 20));
            let ctx = girder_runtime::ServiceContext {
                shutdown: CancellationToken::new(),
                readiness: Readiness::default(),
                metrics: Metrics::new(BuildInfo::default()),
            };
            let config = RespConfig {
                pubsub_queue_limit: limit,
                ..RespConfig::default()
            };
            Box::new(RespService::new(listener, keyspace, config))
                .run(ctx)
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}

#[test]
fn a_subscriber_that_never_reads_is_disconnected() {
    let addr = small_queue_server(8);
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.write_all(b"SUBSCRIBE gdiff:flood\r\n").unwrap();
    let mut publisher = Raw::connect(addr).unwrap();
    // Wait for the subscription, without reading the slow client's socket.
    let deadline = Instant::now() + Duration::from_secs(5);
    while publisher.call(&args(&["PUBSUB", "NUMSUB", "gdiff:flood"]))
        != b"*2\r\n$11\r\ngdiff:flood\r\n:1\r\n"
    {
        assert!(Instant::now() < deadline, "SUBSCRIBE never took effect");
        std::thread::sleep(Duration::from_millis(5));
    }
    // 1 MiB messages fill the socket buffers quickly, then the 8-message queue; from
    // then on the subscriber is dropped and PUBLISH reaches nobody.
    let payload = vec![b'x'; 1 << 20];
    let mut published = 0;
    loop {
        let reply = publisher.call(&[
            b"PUBLISH".to_vec(),
            b"gdiff:flood".to_vec(),
            payload.clone(),
        ]);
        if reply == b":0\r\n" {
            break;
        }
        assert_eq!(reply, b":1\r\n");
        published += 1;
        assert!(
            published < 2000,
            "the slow subscriber was never disconnected"
        );
    }
    assert!(
        published > 8,
        "disconnected after only {published} messages"
    );
    // The server is healthy, and the slow client's stream ends after what was written.
    assert_eq!(publisher.call(&args(&["PING"])), b"+PONG\r\n");
    assert_eq!(
        publisher.call(&args(&["PUBSUB", "NUMSUB", "gdiff:flood"])),
        b"*2\r\n$11\r\ngdiff:flood\r\n:0\r\n"
    );
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = Vec::new();
    slow.read_to_end(&mut received).unwrap();
    assert!(received.starts_with(b"*3\r\n$9\r\nsubscribe\r\n"));
    assert!(
        received.len() < published << 20,
        "every message was delivered"
    );
}

/// CLIENT KILL and CLIENT LIST filters (TYPE, USER, ID) and their errors. Kills are
/// scoped by the subscriber's own id: the reference Redis is shared with other clients.
#[test]
fn client_kill_and_list_filters() {
    let Some(mut p) = pair(REDIS_DB) else { return };
    p.run(&[
        &["CLIENT", "KILL", "TYPE", "foo"],
        &["CLIENT", "KILL", "USER", "nosuch"],
        &["CLIENT", "KILL", "ID", "0"],
        &["CLIENT", "KILL", "ID", "-1"],
        &["CLIENT", "KILL", "ID", "abc"],
        &["CLIENT", "KILL", "TYPE", "master"],
        &["CLIENT", "KILL", "TYPE", "replica"],
        &["CLIENT", "KILL", "TYPE", "slave"],
        &["CLIENT", "KILL", "TYPE"],
        &["CLIENT", "KILL", "SKIPME", "maybe"],
        &["CLIENT", "LIST", "TYPE", "foo"],
        &["CLIENT", "LIST", "TYPE", "master"],
        &["CLIENT", "LIST", "ID", "abc"],
        &["CLIENT", "LIST", "ID"],
        &["CLIENT", "LIST", "ID", "-5"],
        &["CLIENT", "LIST", "BOGUS"],
        &["CLIENT", "LIST", "TYPE", "normal", "ID", "1"],
    ]);
    let mut subs = Sides::connect();
    let id = |c: &mut Raw| {
        let reply = c.call(&args(&["CLIENT", "ID"]));
        String::from_utf8_lossy(&reply[1..reply.len() - 2]).into_owned()
    };
    let ids = [id(&mut subs.girder), id(&mut subs.redis)];
    subs.check(&["SUBSCRIBE", "gdiff:kill"], 1);
    let each = |p: &mut Pair, cmd: &dyn Fn(&str) -> Vec<String>| {
        let g = p.girder.call(
            &cmd(&ids[0])
                .iter()
                .map(|s| s.clone().into_bytes())
                .collect::<Vec<_>>(),
        );
        let r = p.redis.call(
            &cmd(&ids[1])
                .iter()
                .map(|s| s.clone().into_bytes())
                .collect::<Vec<_>>(),
        );
        (
            String::from_utf8_lossy(&g).into_owned(),
            String::from_utf8_lossy(&r).into_owned(),
        )
    };
    // The subscriber's line shows it in subscribe mode, on both sides.
    let (g, r) = each(&mut p, &|id| {
        vec!["CLIENT".into(), "LIST".into(), "ID".into(), id.into()]
    });
    for line in [&g, &r] {
        assert!(
            line.contains(" flags=P ") && line.contains(" sub=1 psub=0 "),
            "{line}"
        );
        assert!(line.contains(" user=default "), "{line}");
    }
    // An id given twice is listed twice, as Redis lists it.
    let (g, r) = each(&mut p, &|id| {
        ["CLIENT", "LIST", "ID", id, "999999999", id]
            .map(str::to_owned)
            .to_vec()
    });
    for list in [&g, &r] {
        assert_eq!(list.matches(" flags=P ").count(), 2, "{list}");
    }
    fn kill(t: &'static str) -> impl Fn(&str) -> Vec<String> {
        move |id: &str| {
            ["CLIENT", "KILL", "ID", id, "TYPE", t, "USER", "default"]
                .map(str::to_owned)
                .to_vec()
        }
    }
    // A normal-type kill does not reach a subscriber; a pubsub-type one does.
    let (g, r) = each(&mut p, &kill("normal"));
    assert_eq!((g.as_str(), r.as_str()), (":0\r\n", ":0\r\n"));
    let (g, r) = each(&mut p, &kill("pubsub"));
    assert_eq!((g.as_str(), r.as_str()), (":1\r\n", ":1\r\n"));
}
