//! `requirepass`, AUTH, NOAUTH, protected mode, `timeout` and `maxclients` against a real
//! node, with raw RESP and the `redis` crate. Error texts are Redis 7.0's.

use girder::config::Config;
use girder::Node;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PASSWORD: &str = "s3cret";

fn start(config: Config) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let node = Node::builder(config).bind().await.unwrap();
            tx.send(node.resp_addr()).unwrap();
            node.run(std::future::pending()).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

fn config(name: &str) -> Config {
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".parse().unwrap();
    config.resp.addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = std::env::temp_dir().join(format!("girder-{name}-{}", std::process::id()));
    config
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
