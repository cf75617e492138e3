//! `girder serve` as a user runs it: the real binary on port 0, a real HTTP client, real
//! signals. Plus an in-process node for what needs a route only tests have.

mod common;

use axum::routing::get;
use axum::Router;
use girder::config::Config;
use girder::Node;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `girder serve` whose stderr (JSON logs) is collected line by line.
struct Girder {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    http: SocketAddr,
    _data: TempDir,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "girder-serve-test-{}-{name}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Girder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real binary, with no `GIRDER_*` variable inherited from the test's environment.
fn girder() -> Command {
    common::girder_command()
}

impl Girder {
    fn start(name: &str, extra: &[&str]) -> Self {
        Self::start_with_env(name, extra, &[])
    }

    fn start_with_env(name: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let data = TempDir::new(name);
        let mut child = common::serve_command()
            .args(["--log-format", "json"])
            .arg("--data-dir")
            .arg(data.0.join("data"))
            .args(extra)
            .envs(env.iter().copied())
            .current_dir(&data.0)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["fields"]["message"] == "listening" && v["fields"]["service"] == "http" {
                        let _ = tx.send(v["fields"]["addr"].as_str().unwrap().to_owned());
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no listening line; stderr: {:?}", lines.lock().unwrap()));
        Self {
            child,
            lines,
            http: addr.parse().unwrap(),
            _data: data,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "girder did not exit in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn logs(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

#[test]
fn serves_ids_and_logs_the_request_id_on_every_line_of_the_request() {
    let mut g = Girder::start("ids", &["--node-id", "7"]);
    let client = reqwest::blocking::Client::new();
    let r = client
        .get(g.url("/v1/ids?count=5"))
        .header("x-request-id", "trace-me-123")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "trace-me-123");
    let body: Value = r.json().unwrap();
    let id = body["ids"][4].as_str().unwrap().to_owned();
    let parts: Value = client
        .get(g.url(&format!("/v1/ids/{id}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(parts["node_id"], 7);

    g.signal("TERM");
    assert!(
        g.wait(Duration::from_secs(15)).success(),
        "exit 0 on SIGTERM"
    );

    let logs = g.logs();
    let of_request: Vec<&Value> = logs
        .iter()
        .filter(|l| l["span"]["request_id"] == "trace-me-123")
        .collect();
    let finished = of_request
        .iter()
        .find(|l| l["fields"]["message"] == "request finished")
        .expect("the access log line carries the request id");
    assert_eq!(finished["fields"]["status"], 200);
    assert_eq!(finished["span"]["route"], "/v1/ids");
    assert!(logs
        .iter()
        .any(|l| l["fields"]["message"] == "girder stopped"));
}

#[test]
fn sigterm_turns_readiness_off_during_the_drain_then_exits_zero() {
    // drain_delay from the environment layer, to exercise it end to end.
    let mut g = Girder::start_with_env("drain", &[], &[("GIRDER_SHUTDOWN__DRAIN_DELAY", "1500ms")]);
    let client = reqwest::blocking::Client::new();
    assert_eq!(client.get(g.url("/readyz")).send().unwrap().status(), 200);
    g.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    let r = client.get(g.url("/readyz")).send().unwrap();
    assert_eq!(r.status(), 503, "not ready while draining");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // Still serving other requests during the drain.
    assert_eq!(client.get(g.url("/v1/ids")).send().unwrap().status(), 200);
    assert!(g.wait(Duration::from_secs(15)).success());
    // After exit nothing listens.
    assert!(client.get(g.url("/healthz")).send().is_err());
}

#[tokio::test]
async fn in_flight_requests_finish_before_the_node_stops() {
    let dir = TempDir::new("inflight");
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".parse().unwrap();
    config.resp.addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.0.join("data");
    let slow = Router::new().route(
        "/v1/test/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            "done"
        }),
    );
    let node = Node::builder(config)
        .mount_http(slow, Default::default())
        .bind()
        .await
        .unwrap();
    let addr = node.http_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(node.run(async {
        let _ = stopped.await;
    }));

    let request = tokio::spawn(async move {
        reqwest::get(format!("http://{addr}/v1/test/slow"))
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // New connections are refused while the slow request is still running...
    assert!(reqwest::get(format!("http://{addr}/healthz"))
        .await
        .is_err());
    // ...and the slow one completes.
    let response = request.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    let report = running.await.unwrap().unwrap();
    assert!(report.aborted.is_empty());
}

#[test]
fn invalid_configuration_fails_at_start_naming_the_key() {
    let out = girder()
        .args(["serve", "--node-id", "5000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("node_id must be between 0 and 1023 (got 5000)"),
        "{stderr}"
    );

    let out = girder()
        .args(["config", "check"])
        .env("GIRDER_HTTP__ADDR", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http.addr:"), "{stderr}");
    assert!(stderr.contains("GIRDER_HTTP__ADDR"), "{stderr}");

    // Other programs' variables may hold any bytes; ours must be UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let not_utf8 = std::ffi::OsStr::from_bytes(b"\xff");
    let out = girder()
        .args(["config", "check"])
        .env("X_OTHER", not_utf8)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = girder()
        .args(["config", "check"])
        .env("GIRDER_NODE_ID", not_utf8)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GIRDER_NODE_ID is not valid UTF-8"));

    let out = girder()
        .args(["serve", "--config", "/nonexistent/girder.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/girder.toml"));
}

#[test]
fn config_check_prints_the_effective_configuration() {
    let dir = TempDir::new("check");
    std::fs::write(
        dir.0.join("girder.toml"),
        "node_id = 3\n[shutdown]\ngrace_period = \"20s\"\n",
    )
    .unwrap();
    let out = girder()
        .args(["config", "check", "--log-level", "debug"])
        .env("GIRDER_HTTP__BODY_LIMIT", "2048")
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: toml::Table = String::from_utf8(out.stdout).unwrap().parse().unwrap();
    assert_eq!(printed["node_id"].as_integer(), Some(3), "from girder.toml");
    assert_eq!(printed["shutdown"]["grace_period"].as_str(), Some("20s"));
    assert_eq!(
        printed["http"]["body_limit"].as_integer(),
        Some(2048),
        "from env"
    );
    assert_eq!(printed["log"]["level"].as_str(), Some("debug"), "from flag");
    assert_eq!(
        printed["http"]["addr"].as_str(),
        Some("127.0.0.1:7380"),
        "default"
    );
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new("busy");
    let out = girder()
        .args(["serve", "--http-addr", &addr, "--resp-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.0.join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on http.addr {addr}")),
        "{stderr}"
    );
}

/// A stand-in OpenTelemetry collector: records the bodies POSTed to `/v1/traces`.
fn start_collector() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&bodies);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new().route(
                "/v1/traces",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let sink = Arc::clone(&sink);
                    async move {
                        sink.lock().unwrap().push(body.to_vec());
                        ""
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), bodies)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn spans_are_exported_over_otlp_as_children_of_the_incoming_traceparent() {
    let (collector, bodies) = start_collector();
    let endpoint = format!("http://{collector}");
    let mut g = Girder::start("otlp", &["--otlp-endpoint", &endpoint]);
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let parent_span = "b7ad6b7169203331";
    let r = reqwest::blocking::Client::new()
        .get(g.url("/v1/ids"))
        .header("traceparent", format!("00-{trace_id}-{parent_span}-01"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    g.signal("TERM");
    assert!(g.wait(Duration::from_secs(15)).success());

    // Spans are flushed at exit. OTLP/protobuf carries ids as raw bytes.
    let bodies = bodies.lock().unwrap();
    let all: Vec<u8> = bodies.concat();
    let contains = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(!bodies.is_empty(), "the collector received spans");
    assert!(
        contains(&hex(trace_id)),
        "the request's span joined the caller's trace"
    );
    assert!(
        contains(&hex(parent_span)),
        "with the caller's span as parent"
    );
    assert!(contains(b"GET /v1/ids"), "span named by method and route");
    assert!(contains(b"girder"), "service.name");
}

/// CPU seconds (user + system) the thread named `name` of process `pid` has used.
fn thread_cpu(pid: u32, name: &str) -> Option<f64> {
    let tick = 100.0; // USER_HZ, 100 on every Linux target
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        // Fields after the parenthesised command name: state is the 3rd, utime the 14th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields[11].parse().ok()?;
        let stime: f64 = fields[12].parse().ok()?;
        return Some((utime + stime) / tick);
    }
    None
}

/// With busy polling on, a loop that served dense traffic polls only for its window
/// after it: once the client goes quiet the loop sleeps and uses no CPU, and it serves
/// the next request as before. (A 2 ms window, so that a debug build's round trips
/// count as dense.)
#[test]
fn an_event_loop_stops_polling_when_its_clients_go_quiet() {
    use std::io::{Read, Write};
    let data = common::TempDir::new("serve", "busy-poll");
    let node = common::spawn(
        &data.0,
        &[
            ("GIRDER_PERSISTENCE__MODE", "none"),
            ("GIRDER_RESP__BUSY_POLL_US", "2000"),
        ],
    );
    let pid = node.child.id();
    let mut stream = std::net::TcpStream::connect(node.resp).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reply = [0u8; 7];
    let mut ping = |stream: &mut std::net::TcpStream| {
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"+PONG\r\n");
    };
    // Dense request-response traffic: back-to-back round trips.
    for _ in 0..5_000 {
        ping(&mut stream);
    }
    std::thread::sleep(Duration::from_millis(100));
    let before = thread_cpu(pid, "girder-resp-0").expect("the loop thread");
    std::thread::sleep(Duration::from_millis(600));
    let after = thread_cpu(pid, "girder-resp-0").unwrap();
    // A loop still polling would have used the whole 0.6 s; a sleeping one uses a
    // clock tick or two at most.
    assert!(
        after - before <= 0.06,
        "the quiet loop used {:.3} s of CPU in 0.6 s",
        after - before
    );
    ping(&mut stream);
}
