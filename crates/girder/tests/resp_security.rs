//! `requirepass`, AUTH, NOAUTH, protected mode, `timeout` and `maxclients` against a real
//! node, with raw RESP and the `redis` crate. Error texts are Redis 7.0's.

mod common;

use girder::config::Config;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PASSWORD: &str = "s3cret";

fn start(config: Config) -> SocketAddr {
    common::serve_on_thread(config)
}

fn config(name: &str) -> Config {
    common::local_config(name)
}

/// One node with a password for the tests that share it.
fn secured() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let mut c = config("security");
        c.resp.requirepass = PASSWORD.into();
        start(c)
    })
}

/// A RESP connection that returns each reply as one line of text (arrays flattened).
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    fn call(&mut self, args: &[&str]) -> String {
        let mut wire = format!("*{}\r\n", args.len());
        for a in args {
            wire.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.writer.write_all(wire.as_bytes()).unwrap();
        self.reply()
    }

    fn reply(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let line = line.trim_end().to_owned();
        match line.as_bytes().first() {
            Some(b'$') => {
                let n: i64 = line[1..].parse().unwrap();
                if n < 0 {
                    return "(nil)".into();
                }
                let mut data = vec![0; n as usize + 2];
                self.reader.read_exact(&mut data).unwrap();
                String::from_utf8_lossy(&data[..n as usize]).into_owned()
            }
            Some(b'*' | b'%') => {
                let n: usize = line[1..].parse().unwrap();
                let n = if line.starts_with('%') { 2 * n } else { n };
                (0..n).map(|_| self.reply()).collect::<Vec<_>>().join(" ")
            }
            _ => line,
        }
    }

    /// Whether the server closed the connection (EOF) within `within`.
    fn closed_within(&mut self, within: Duration) -> bool {
        self.writer.set_read_timeout(Some(within)).unwrap();
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

#[test]
fn nothing_runs_before_auth_and_errors_are_redis_s() {
    let mut c = Conn::open(secured());
    assert_eq!(c.call(&["PING"]), "-NOAUTH Authentication required.");
    assert_eq!(c.call(&["GET", "k"]), "-NOAUTH Authentication required.");
    assert_eq!(
        c.call(&["CONFIG", "GET", "requirepass"]),
        "-NOAUTH Authentication required."
    );
    assert_eq!(c.call(&["MULTI"]), "-NOAUTH Authentication required.");
    // Unknown commands and wrong arities are reported first, as Redis does.
    assert!(c.call(&["NOPE"]).starts_with("-ERR unknown command 'NOPE'"));
    assert_eq!(
        c.call(&["GET"]),
        "-ERR wrong number of arguments for 'get' command"
    );
    assert!(c
        .call(&["HELLO", "3"])
        .starts_with("-NOAUTH HELLO must be called"));
    let wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.";
    assert_eq!(c.call(&["AUTH", "wrong"]), wrongpass);
    assert_eq!(c.call(&["AUTH", "bob", PASSWORD]), wrongpass);
    assert_eq!(
        c.call(&["HELLO", "3", "AUTH", "default", "nope"]),
        wrongpass
    );
    assert_eq!(c.call(&["AUTH", "a", "b", "c"]), "-ERR syntax error");
    assert_eq!(c.call(&["PING"]), "-NOAUTH Authentication required.");
    assert_eq!(c.call(&["AUTH", PASSWORD]), "+OK");
    assert_eq!(c.call(&["PING"]), "+PONG");
    // RESET logs the default user out again; QUIT needs no login.
    assert_eq!(c.call(&["RESET"]), "+RESET");
    assert_eq!(c.call(&["PING"]), "-NOAUTH Authentication required.");
    let hello = c.call(&["HELLO", "3", "AUTH", "default", PASSWORD]);
    assert!(hello.contains("proto :3"), "{hello}");
    assert_eq!(c.call(&["SET", "k", "v"]), "+OK");
    let mut q = Conn::open(secured());
    assert_eq!(q.call(&["QUIT"]), "+OK");
}

/// Before AUTH a client may send only small commands (Redis's CVE-2021-32675 fix): more
/// than 10 arguments or an argument over 16 KB is a protocol error that closes the
/// connection as soon as its header arrives, so a stranger cannot make the server buffer
/// `proto-max-bulk-len` bytes. After AUTH the configured limits apply again.
#[test]
fn strangers_are_held_to_small_commands_until_they_authenticate() {
    let mut c = Conn::open(secured());
    c.writer.write_all(b"*11\r\n").unwrap();
    assert_eq!(
        c.reply(),
        "-ERR Protocol error: unauthenticated multibulk length"
    );
    assert!(c.closed_within(Duration::from_secs(5)));

    // Only the header of a 512 MB argument: refused without waiting for the data.
    let mut c = Conn::open(secured());
    c.writer.write_all(b"*1\r\n$536870912\r\n").unwrap();
    assert_eq!(
        c.reply(),
        "-ERR Protocol error: unauthenticated bulk length"
    );
    assert!(c.closed_within(Duration::from_secs(5)));

    // At the limits themselves, the command runs (and is refused for want of a login).
    let mut c = Conn::open(secured());
    let at_limit = "x".repeat(16 * 1024);
    let ten: Vec<&str> = std::iter::once("SET")
        .chain(std::iter::repeat_n(at_limit.as_str(), 9))
        .collect();
    assert_eq!(c.call(&ten), "-NOAUTH Authentication required.");
    // Logged in, the same connection sends what it likes.
    assert_eq!(c.call(&["AUTH", PASSWORD]), "+OK");
    let big = "y".repeat(100_000);
    assert_eq!(c.call(&["SET", "stranger:big", &big]), "+OK");
    let many: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD", "stranger:set"];
    sadd.extend(many.iter().map(String::as_str));
    assert_eq!(c.call(&sadd), ":40");
    assert_eq!(c.call(&["STRLEN", "stranger:big"]), ":100000");
    c.call(&["DEL", "stranger:big", "stranger:set"]);
}

#[test]
fn the_redis_crate_logs_in_with_the_url_password() {
    let addr = secured();
    let mut c = redis::Client::open(format!("redis://:{PASSWORD}@{addr}/0"))
        .unwrap()
        .get_connection()
        .unwrap();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let Err(err) = redis::Client::open(format!("redis://{addr}/0"))
        .unwrap()
        .get_connection()
        .and_then(|mut c| redis::cmd("GET").arg("k").query::<Option<String>>(&mut c))
    else {
        panic!("no password, yet a command ran")
    };
    assert!(err.to_string().contains("Authentication required"), "{err}");
}

#[test]
fn config_set_requirepass_changes_it_for_new_logins_only() {
    let addr = start({
        let mut c = config("repass");
        c.resp.requirepass = "first".into();
        c
    });
    let mut admin = Conn::open(addr);
    assert_eq!(admin.call(&["AUTH", "first"]), "+OK");
    assert_eq!(
        admin.call(&["CONFIG", "GET", "requirepass"]),
        // SHA-256("first"): the password itself is not kept.
        "requirepass #a7937b64b8caa58f03721bb6bacf5c78cb235febe0e70b1b84cd99541461a08e"
    );
    assert_eq!(
        admin.call(&["CONFIG", "SET", "requirepass", "second"]),
        "+OK"
    );
    assert_eq!(admin.call(&["PING"]), "+PONG", "logged-in clients stay in");
    let mut c = Conn::open(addr);
    assert!(c.call(&["AUTH", "first"]).starts_with("-WRONGPASS"));
    assert_eq!(c.call(&["AUTH", "second"]), "+OK");
    // Loopback listener: a password may be removed; new clients are then let in.
    assert_eq!(admin.call(&["CONFIG", "SET", "requirepass", ""]), "+OK");
    let mut open = Conn::open(addr);
    assert_eq!(open.call(&["PING"]), "+PONG");
    assert_eq!(
        open.call(&["AUTH", "x"]),
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
    assert_eq!(open.call(&["AUTH", "default", "anything"]), "+OK");
}

#[test]
fn idle_clients_are_closed_at_the_timeout_but_subscribers_are_not() {
    let addr = start(config("timeout"));
    let mut admin = Conn::open(addr);
    assert_eq!(
        admin.call(&["CONFIG", "SET", "timeout", "abc"]),
        "-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer"
    );
    assert_eq!(
        admin.call(&["CONFIG", "SET", "timeout", "-1"]),
        "-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive"
    );
    assert_eq!(admin.call(&["CONFIG", "SET", "timeout", "1"]), "+OK");
    assert_eq!(admin.call(&["CONFIG", "GET", "timeout"]), "timeout 1");
    let mut idle = Conn::open(addr);
    assert_eq!(idle.call(&["PING"]), "+PONG");
    let mut subscriber = Conn::open(addr);
    assert_eq!(subscriber.call(&["SUBSCRIBE", "news"]), "subscribe news :1");
    let started = Instant::now();
    assert!(
        idle.closed_within(Duration::from_secs(5)),
        "idle client closed"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "not before the timeout: {took:?}"
    );
    assert!(
        !subscriber.closed_within(Duration::from_millis(1500)),
        "a subscriber is exempt"
    );
    // The admin connection idled too, and was closed like any other.
    assert!(admin.closed_within(Duration::from_millis(100)));
    let mut admin = Conn::open(addr);
    assert_eq!(admin.call(&["CONFIG", "SET", "timeout", "0"]), "+OK");
}

#[test]
fn maxclients_is_settable_at_run_time() {
    let addr = start(config("maxclients"));
    let mut admin = Conn::open(addr);
    let _second = Conn::open(addr);
    assert_eq!(admin.call(&["PING"]), "+PONG");
    assert_eq!(
        admin.call(&["CONFIG", "SET", "maxclients", "0"]),
        "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 1000000 inclusive"
    );
    assert_eq!(admin.call(&["CONFIG", "SET", "maxclients", "2"]), "+OK");
    let mut refused = Conn::open(addr);
    assert_eq!(refused.reply(), "-ERR max number of clients reached");
    assert_eq!(admin.call(&["CONFIG", "SET", "maxclients", "10"]), "+OK");
    let mut third = Conn::open(addr);
    assert_eq!(third.call(&["PING"]), "+PONG");
}

#[test]
fn protected_mode_refuses_a_public_address_without_a_password() {
    let mut c = config("protected");
    c.resp.addr = "0.0.0.0:0".parse().unwrap();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("protected mode"), "{err}");
    assert!(err.contains("resp.requirepass"), "{err}");
    c.resp.requirepass = PASSWORD.into();
    c.validate().unwrap();
    c.resp.requirepass.clear();
    c.resp.protected_mode = false;
    c.validate().unwrap();

    // Listening publicly with a password, the password cannot be removed.
    let mut c = config("protected-run");
    c.resp.addr = "0.0.0.0:0".parse().unwrap();
    c.resp.requirepass = PASSWORD.into();
    let port = start(c).port();
    let mut admin = Conn::open(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(admin.call(&["AUTH", PASSWORD]), "+OK");
    assert_eq!(
        admin.call(&["CONFIG", "SET", "requirepass", ""]),
        "-ERR CONFIG SET failed (possibly related to argument 'requirepass') - protected mode: the server listens on a non-loopback address, so it keeps a password"
    );
    assert_eq!(
        admin.call(&["CONFIG", "GET", "protected-mode"]),
        "protected-mode yes"
    );
}

#[test]
fn acl_users_are_limited_to_their_commands_keys_and_channels() {
    let addr = start(config("acl"));
    let mut admin = Conn::open(addr);
    assert_eq!(
        admin.call(&[
            "ACL",
            "SETUSER",
            "alice",
            "on",
            ">pw1",
            "~cache:*",
            "+@all",
            "-@dangerous"
        ]),
        "+OK"
    );
    assert_eq!(
        admin.call(&["ACL", "SETUSER", "carol", "on", "nopass", "+get", "~x", "&news.*"]),
        "+OK"
    );
    assert_eq!(
        admin.call(&["ACL", "SETUSER", "alice", "badrule"]),
        "-ERR Error in ACL SETUSER modifier 'badrule': Syntax error"
    );
    assert_eq!(
        admin.call(&["ACL", "SETUSER", "alice", "+nosuchcmd"]),
        "-ERR Error in ACL SETUSER modifier '+nosuchcmd': Unknown command or category name in ACL"
    );
    assert_eq!(
        admin.call(&["ACL", "DELUSER", "default"]),
        "-ERR The 'default' user cannot be removed"
    );
    // SHA-256("pw1"): passwords are stored hashed, as Redis shows them.
    let list = admin.call(&["ACL", "LIST"]);
    assert_eq!(
        list,
        "user alice on #c592df4a86933b92addc9842402ddf198c638ea9be58916ee6e3734e1e3152f8 ~cache:* resetchannels +@all -@dangerous \
         user carol on nopass ~x resetchannels &news.* -@all +get \
         user default on nopass ~* &* +@all"
    );
    assert_eq!(admin.call(&["ACL", "USERS"]), "alice carol default");
    assert_eq!(admin.call(&["ACL", "WHOAMI"]), "default");

    let mut alice = Conn::open(addr);
    assert!(alice
        .call(&["AUTH", "alice", "wrong"])
        .starts_with("-WRONGPASS"));
    assert_eq!(alice.call(&["AUTH", "alice", "pw1"]), "+OK");
    assert_eq!(alice.call(&["ACL", "WHOAMI"]), "alice");
    assert_eq!(alice.call(&["SET", "cache:1", "v"]), "+OK");
    let nokey = "-NOPERM this user has no permissions to access one of the keys used as arguments";
    assert_eq!(alice.call(&["SET", "other", "v"]), nokey);
    assert_eq!(alice.call(&["MGET", "cache:1", "other"]), nokey);
    assert_eq!(
        alice.call(&["ZUNIONSTORE", "cache:dst", "2", "cache:a", "secret"]),
        nokey,
        "source keys are checked too"
    );
    assert_eq!(
        alice.call(&["FLUSHALL"]),
        "-NOPERM this user has no permissions to run the 'flushall' command"
    );
    assert_eq!(
        alice.call(&["KEYS", "*"]),
        "-NOPERM this user has no permissions to run the 'keys' command"
    );
    assert_eq!(
        alice.call(&["CONFIG", "GET", "maxclients"]),
        "-NOPERM this user has no permissions to run the 'config|get' command"
    );
    // A refused command inside MULTI aborts the transaction.
    assert_eq!(alice.call(&["MULTI"]), "+OK");
    assert_eq!(alice.call(&["SET", "other", "v"]), nokey);
    assert!(alice.call(&["EXEC"]).starts_with("-EXECABORT"));

    let mut carol = Conn::open(addr);
    assert_eq!(carol.call(&["AUTH", "carol", "anything"]), "+OK");
    assert_eq!(carol.call(&["GET", "x"]), "(nil)");
    assert_eq!(
        carol.call(&["SET", "x", "1"]),
        "-NOPERM this user has no permissions to run the 'set' command"
    );
    assert_eq!(carol.call(&["GET", "y"]), nokey);
    assert_eq!(
        admin.call(&["ACL", "SETUSER", "carol", "+publish"]),
        "+OK",
        "applies to connected clients at once"
    );
    assert_eq!(carol.call(&["PUBLISH", "news.today", "hi"]), ":0");
    assert_eq!(
        carol.call(&["PUBLISH", "gossip", "hi"]),
        "-NOPERM this user has no permissions to access one of the channels used as arguments"
    );
    // A deleted user's connections are closed.
    assert_eq!(admin.call(&["ACL", "DELUSER", "carol", "nobody"]), ":1");
    assert_eq!(
        carol.call(&["GET", "x"]),
        "-ERR the ACL user of this connection was deleted"
    );
    assert!(carol.closed_within(Duration::from_secs(2)));

    // An `off` user cannot log in; GETUSER describes a user.
    assert_eq!(admin.call(&["ACL", "SETUSER", "alice", "off"]), "+OK");
    let mut again = Conn::open(addr);
    assert!(again
        .call(&["AUTH", "alice", "pw1"])
        .starts_with("-WRONGPASS"));
    assert_eq!(
        admin.call(&["ACL", "GETUSER", "alice"]),
        "flags off passwords c592df4a86933b92addc9842402ddf198c638ea9be58916ee6e3734e1e3152f8 commands +@all -@dangerous keys ~cache:* channels  selectors "
    );
    assert_eq!(admin.call(&["ACL", "GETUSER", "nobody"]), "(nil)");
    assert!(admin
        .call(&["ACL", "CAT", "dangerous"])
        .contains("flushall"));
    assert_eq!(
        admin.call(&["ACL", "NOPE"]),
        "-ERR unknown subcommand 'NOPE'. Try ACL HELP."
    );
}

#[test]
fn clients_over_their_output_buffer_limit_are_disconnected() {
    let addr = start(config("output-limits"));
    let mut admin = Conn::open(addr);
    assert_eq!(
        admin.call(&["CONFIG", "GET", "client-output-buffer-limit"]),
        "client-output-buffer-limit normal 0 0 0 replica 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    assert_eq!(
        admin.call(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1x 0 0"]),
        "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Error in hard, soft or soft_seconds setting in buffer limit configuration."
    );
    assert_eq!(
        admin.call(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 64kb 0 0 pubsub 256kb 0 0"
        ]),
        "+OK"
    );
    // A subscriber that never reads: its queued messages pass 256 KiB and it is cut off;
    // the publisher and the server carry on.
    let mut subscriber = Conn::open(addr);
    assert_eq!(
        subscriber.call(&["SUBSCRIBE", "firehose"]),
        "subscribe firehose :1"
    );
    let payload = "p".repeat(4096);
    let mut receivers = Vec::new();
    for _ in 0..5000 {
        receivers.push(admin.call(&["PUBLISH", "firehose", &payload]));
        if receivers.last().is_some_and(|r| r == ":0") {
            break;
        }
    }
    assert_eq!(
        receivers.last().map(String::as_str),
        Some(":0"),
        "the subscriber was disconnected once it fell behind"
    );
    assert!(receivers.len() < 5000);
    // A reply bigger than the normal hard limit closes that client only.
    let items: Vec<String> = (0..2000)
        .map(|i| format!("item-{i:06}-{}", "x".repeat(40)))
        .collect();
    let mut push = vec!["RPUSH", "big"];
    push.extend(items.iter().map(String::as_str));
    assert_eq!(admin.call(&push), ":2000");
    let mut reader = Conn::open(addr);
    reader
        .writer
        .write_all(b"*4\r\n$6\r\nLRANGE\r\n$3\r\nbig\r\n$1\r\n0\r\n$2\r\n-1\r\n")
        .unwrap();
    let mut all = Vec::new();
    reader.reader.read_to_end(&mut all).unwrap();
    assert!(
        all.is_empty(),
        "no partial reply: the client was closed first"
    );
    assert_eq!(admin.call(&["LLEN", "big"]), ":2000", "the server is fine");
    // The pubsub soft limit: over it for longer than its seconds, a subscriber is cut
    // off; not before.
    assert_eq!(
        admin.call(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 0 64kb 3"
        ]),
        "+OK"
    );
    let mut slow = Conn::open(addr);
    assert_eq!(slow.call(&["SUBSCRIBE", "slow"]), "subscribe slow :1");
    // 8 MB: more than the sockets take, so the rest queues past 64 KiB.
    for _ in 0..2000 {
        assert_eq!(admin.call(&["PUBLISH", "slow", &payload]), ":1");
    }
    assert_eq!(
        admin.call(&["PUBLISH", "slow", "x"]),
        ":1",
        "over the soft limit for less than its 3 s: still subscribed"
    );
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let mut last = String::new();
    for _ in 0..100 {
        last = admin.call(&["PUBLISH", "slow", "x"]);
        if last == ":0" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(last, ":0", "over the soft limit for longer: disconnected");
    assert_eq!(
        admin.call(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 0 0 0"
        ]),
        "+OK"
    );
}
