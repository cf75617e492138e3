//! What the topic tests share: a node on port 0 with its own data directory, and an
//! HTTP call that checks every error is problem+json.
#![allow(dead_code)]

use girder::config::Config;
use girder::node::Node;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory named after the test binary (`prefix`) and the test (`name`).
    pub fn new(prefix: &str, name: &str) -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "girder-{prefix}-test-{}-{name}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Defaults with both front ends on port 0 and data under the temp directory, named
/// after `name` and this process.
pub fn local_config(name: &str) -> Config {
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".parse().unwrap();
    config.resp.addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = std::env::temp_dir().join(format!("girder-{name}-{}", std::process::id()));
    config
}

/// Starts a node with `config` on a runtime thread of its own, for tests with blocking
/// clients; returns its RESP address. The node runs until the test process ends.
pub fn serve_on_thread(config: Config) -> std::net::SocketAddr {
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

/// A node serving in this process.
pub struct Running {
    /// `http://addr` of its HTTP front end.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<girder_runtime::ShutdownReport>>,
}

/// Starts a node on port 0 keeping its data in `data`.
pub async fn start(data: &Path) -> Running {
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".parse().unwrap();
    config.resp.addr = "127.0.0.1:0".parse().unwrap();
    // Above the 1 MiB message limit, so the topic's own limit answers.
    config.http.body_limit = 4 << 20;
    config.data_dir = data.to_owned();
    let node = Node::builder(config).bind().await.unwrap();
    let base = format!("http://{}", node.http_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(node.run(async {
        let _ = stopped.await;
    }));
    Running { base, stop, task }
}

impl Running {
    /// Stops the node; it must stop cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let report = self.task.await.unwrap().unwrap();
        assert!(report.aborted.is_empty(), "{report:?}");
    }
}

/// Sends `req`; returns the status and the JSON body (`Null` when empty). Every 4xx/5xx
/// must be `application/problem+json`.
pub async fn call(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/problem+json");
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    if status.is_client_error() || status.is_server_error() {
        assert!(is_problem, "{status} without problem+json: {body}");
    }
    (status, body)
}

/// A problem's `type`.
pub fn problem_type(body: &Value) -> &str {
    body["type"].as_str().unwrap_or("")
}

/// The real binary, killed (SIGKILL) when dropped.
pub struct Process {
    /// The child process.
    pub child: std::process::Child,
    /// `http://addr` of its HTTP front end.
    pub base: String,
    /// Its RESP front end.
    pub resp: std::net::SocketAddr,
    /// Every line it logged so far (JSON).
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real binary, with no `GIRDER_*` variable inherited from the test's environment.
pub fn girder_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_girder"));
    for (key, _) in std::env::vars() {
        if key.starts_with("GIRDER_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// `girder serve` of the real binary with both front ends on port 0 (callers add
/// `--data-dir` and the rest).
pub fn serve_command() -> std::process::Command {
    let mut cmd = girder_command();
    cmd.args([
        "serve",
        "--http-addr",
        "127.0.0.1:0",
        "--resp-addr",
        "127.0.0.1:0",
    ]);
    cmd
}

/// Runs `girder serve` on `data` and checks that it refuses to start because of the
/// damaged journal `segment`, naming the file and the repair command.
pub fn assert_refuses_damaged_journal(data: &Path, segment: &Path) {
    let out = serve_command()
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run girder");
    assert!(!out.status.success(), "a damaged journal must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&segment.display().to_string()) && stderr.contains("girder log repair"),
        "the error names the file and the repair command: {stderr}"
    );
}

/// Starts `girder serve` on port 0 with its data in `data` and the given environment
/// (no inherited `GIRDER_*`), and waits until its HTTP front end listens.
pub fn spawn(data: &Path, env: &[(&str, &str)]) -> Process {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut cmd = serve_command();
    cmd.envs(env.iter().copied());
    let mut child = cmd
        .args(["--log-format", "json"])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn girder");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = std::sync::Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["fields"]["message"] == "listening" {
                    let service = v["fields"]["service"].as_str().unwrap_or("").to_owned();
                    let addr = v["fields"]["addr"].as_str().unwrap_or("").to_owned();
                    let _ = tx.send((service, addr));
                }
            }
            kept.lock().unwrap().push(line);
        }
    });
    let (mut http, mut resp) = (None, None);
    while http.is_none() || resp.is_none() {
        let (service, addr) = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("girder did not start listening");
        match service.as_str() {
            "http" => http = Some(addr),
            "resp" => resp = Some(addr.parse().expect("resp addr")),
            _ => {}
        }
    }
    Process {
        child,
        base: format!("http://{}", http.unwrap()),
        resp: resp.unwrap(),
        lines,
    }
}
