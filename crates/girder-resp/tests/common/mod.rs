//! The differential harness shared by the `differential*` test binaries: the same command
//! sequences go to Girder and to a real Redis 7, and the raw replies must be identical
//! byte for byte (type, value, error text).
//!
//! Redis is found at `DIFF_REDIS` (default `127.0.0.1:6379`). Each test binary uses its
//! own database there (9 and up), flushed before every sequence, so use a Redis whose
//! databases 9-15 you do not need. Without a reachable Redis the tests print a notice and
//! pass, unless `DIFF_REDIS_REQUIRED=1` (set by `.ci/run`): then a missing Redis fails.
#![allow(dead_code)]

pub mod client;

use girder_kv::{Keyspace, SystemClock};
use girder_resp::{RespConfig, RespService};
use girder_runtime::{BuildInfo, CancellationToken, Metrics, Readiness, Service, ServiceContext};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A RESP client that returns each reply's raw bytes.
pub struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    /// Opens a connection.
    pub fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    pub fn call(&mut self, args: &[Vec<u8>]) -> Vec<u8> {
        let mut wire = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            wire.extend_from_slice(a);
            wire.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&wire).unwrap();
        let mut out = Vec::new();
        self.read_reply(&mut out);
        out
    }

    /// Reads one reply without sending anything: a pushed frame (pub/sub message), or
    /// the next of several replies to one command.
    pub fn read(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_reply(&mut out);
        out
    }

    fn read_line(&mut self, out: &mut Vec<u8>) -> String {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).unwrap();
        assert!(line.ends_with(b"\r\n"), "truncated reply: {line:?}");
        out.extend_from_slice(&line);
        String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned()
    }

    fn read_reply(&mut self, out: &mut Vec<u8>) {
        let kind = {
            let buf = self.reader.fill_buf().unwrap();
            assert!(!buf.is_empty(), "connection closed");
            buf[0]
        };
        let header = self.read_line(out);
        match kind {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
            b'$' | b'=' | b'!' => {
                let len: i64 = header.parse().unwrap();
                if len >= 0 {
                    let mut data = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut data).unwrap();
                    out.extend_from_slice(&data);
                }
            }
            b'*' | b'~' | b'>' => {
                let n: i64 = header.parse().unwrap();
                for _ in 0..n.max(0) {
                    self.read_reply(out);
                }
            }
            b'%' => {
                let n: i64 = header.parse().unwrap();
                for _ in 0..n * 2 {
                    self.read_reply(out);
                }
            }
            other => panic!("unknown reply type {:?}", char::from(other)),
        }
    }
}

/// One Girder RESP server for the whole test binary, on its own runtime thread.
/// The shared Girder server of this test binary.
pub fn girder_addr() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
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
                let ctx = ServiceContext {
                    shutdown: CancellationToken::new(),
                    readiness: Readiness::default(),
                    metrics: Metrics::new(BuildInfo::default()),
                };
                Box::new(RespService::new(listener, keyspace, RespConfig::default()))
                    .run(ctx)
                    .await
                    .unwrap();
            });
        });
        rx.recv().unwrap()
    })
}

/// A pair of connections, Girder and Redis, both on a flushed database. Tests share one
/// database on each side, so a pair holds a lock for its whole test.
pub struct Pair {
    /// Girder's side.
    pub girder: Raw,
    /// Redis's side.
    pub redis: Raw,
    _exclusive: std::sync::MutexGuard<'static, ()>,
}

/// The Redis the tests compare with.
pub fn redis_addr() -> SocketAddr {
    std::env::var("DIFF_REDIS")
        .unwrap_or_else(|_| "127.0.0.1:6379".into())
        .parse()
        .expect("DIFF_REDIS is host:port")
}

/// Connections to Girder and Redis, both on database `db`, flushed.
pub fn pair(db: &str) -> Option<Pair> {
    let redis = match Raw::connect(redis_addr()) {
        Ok(r) => r,
        Err(e) => {
            assert!(
                std::env::var("DIFF_REDIS_REQUIRED").as_deref() != Ok("1"),
                "DIFF_REDIS_REQUIRED=1 but Redis at {} is unreachable: {e}",
                redis_addr()
            );
            eprintln!(
                "skipping differential test: no Redis at {} ({e})",
                redis_addr()
            );
            return None;
        }
    };
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let mut p = Pair {
        girder: Raw::connect(girder_addr()).unwrap(),
        redis,
        _exclusive: LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    };
    for side in [&mut p.girder, &mut p.redis] {
        side.call(&args(&["SELECT", db]));
        side.call(&args(&["FLUSHDB"]));
    }
    Some(p)
}

/// Owned arguments from string slices.
pub fn args(a: &[&str]) -> Vec<Vec<u8>> {
    a.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// Replies that legitimately differ between two servers are normalized before comparing.
pub fn normalize(cmd: &[Vec<u8>], reply: Vec<u8>) -> Vec<u8> {
    let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
    match name.as_str() {
        // Remaining time drifts by the milliseconds between the two calls.
        "TTL" | "PTTL" if reply.starts_with(b":") && !reply.starts_with(b":-") => {
            b":<positive>\r\n".to_vec()
        }
        // Order is unspecified: compare as sorted lines.
        "KEYS" => {
            let text = String::from_utf8_lossy(&reply).into_owned();
            let mut lines: Vec<&str> = text.split("\r\n").collect();
            let header = lines.remove(0).to_owned();
            let mut items: Vec<String> = lines
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| c.join("|"))
                .collect();
            items.sort();
            format!("{header}:{}", items.join(",")).into_bytes()
        }
        _ => reply,
    }
}

impl Pair {
    /// Sends `cmd` to both and asserts the same reply; returns it.
    pub fn check(&mut self, cmd: &[Vec<u8>]) -> Vec<u8> {
        let g = normalize(cmd, self.girder.call(cmd));
        let r = normalize(cmd, self.redis.call(cmd));
        assert_eq!(
            String::from_utf8_lossy(&g),
            String::from_utf8_lossy(&r),
            "reply to {:?} differs (left: Girder, right: Redis)",
            cmd.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        );
        g
    }

    pub fn run(&mut self, script: &[&[&str]]) {
        for cmd in script {
            self.check(&args(cmd));
        }
    }
}
