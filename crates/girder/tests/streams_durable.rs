//! Streams survive kill -9: the real binary with `persistence.fsync = "always"`, producers
//! and a consumer group under load, SIGKILL at a random moment, restart on the same data
//! directory, and a check of everything the clients were told:
//! - every XADD that got its id back is present, with its id and fields;
//! - no entry appears twice (each producer's sequence numbers are unique);
//! - every entry delivered by XREADGROUP and not acknowledged is pending for the
//!   consumer with a delivery count of at least what the clients saw;
//! - every entry whose XACK returned 1 is no longer pending;
//! - the group's last-delivered-id is at least the greatest id it delivered;
//! - every entry a plain reader (XREAD BLOCK) was shown is present: no client sees an
//!   entry before it is durable.
//!
//! Several rounds on one data directory, each checking the state left by all before it.
//!
//! And damage: a journal with a flipped byte refuses to start, naming the file and the
//! repair command; `girder log check` finds it; `girder log repair` makes it start again
//! with the records before the damage.

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const STREAM: &str = "orders";
const GROUP: &str = "billing";
const CONSUMER: &str = "worker-1";
const PRODUCERS: usize = 3;
const ROUNDS: usize = 6;

struct Node {
    child: Child,
    resp: SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path) -> Node {
    let mut child = common::serve_command()
        .args(["--log-format", "json"])
        .arg("--data-dir")
        .arg(data)
        .env("GIRDER_PERSISTENCE__FSYNC", "always")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn girder");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["fields"]["message"] == "listening" && v["fields"]["service"] == "resp" {
                    let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or("").to_owned());
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("girder did not start listening");
    Node {
        child,
        resp: addr.parse().expect("addr"),
    }
}

fn connect(addr: SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/0"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// What the clients were told.
#[derive(Default)]
struct Model {
    /// Acknowledged XADDs: id → (producer, sequence).
    added: BTreeMap<String, (usize, u64)>,
    /// Delivered to the consumer and not (yet) acknowledged: id → times delivered.
    delivered: BTreeMap<String, u64>,
    /// XACK returned 1 for these.
    acked: BTreeSet<String>,
    /// XACK sent, reply not seen: may or may not have happened.
    ack_unknown: BTreeSet<String>,
    /// Greatest id delivered.
    max_delivered: Option<(u64, u64)>,
    /// Ids a plain reader (XREAD, blocking or not) was shown.
    seen: BTreeSet<String>,
    /// Next sequence number per producer (continues across rounds).
    next_seq: [u64; PRODUCERS],
}

fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').expect("id has a dash");
    (ms.parse().expect("ms"), seq.parse().expect("seq"))
}

type Entries = Vec<(String, Vec<(String, String)>)>;

fn check(addr: SocketAddr, model: &Model, round: usize) {
    let mut c = connect(addr);
    // Every entry, in pages.
    let mut all: Entries = Vec::new();
    let mut start = "-".to_owned();
    loop {
        let page: Entries = redis::cmd("XRANGE")
            .arg(STREAM)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(1000)
            .query(&mut c)
            .expect("XRANGE");
        let Some(last) = page.last() else { break };
        start = format!("({}", last.0);
        all.extend(page);
    }
    let mut seen = BTreeSet::new();
    let mut by_id = BTreeMap::new();
    for (id, fields) in &all {
        let producer = fields
            .iter()
            .find(|(f, _)| f == "producer")
            .map(|f| f.1.clone());
        let seq = fields.iter().find(|(f, _)| f == "seq").map(|f| f.1.clone());
        let key = (producer.expect("producer field"), seq.expect("seq field"));
        assert!(
            seen.insert(key.clone()),
            "round {round}: entry {key:?} appears twice"
        );
        by_id.insert(id.clone(), key);
    }
    for (id, (producer, seq)) in &model.added {
        let Some((p, s)) = by_id.get(id) else {
            panic!(
                "round {round}: acknowledged XADD {id} (producer {producer}, seq {seq}) is missing after kill -9 ({} entries present)",
                all.len()
            );
        };
        assert_eq!(
            (p.as_str(), s.as_str()),
            (producer.to_string().as_str(), seq.to_string().as_str()),
            "round {round}: entry {id} has other fields"
        );
    }
    // The group's pending entries list.
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(1_000_000)
        .query(&mut c)
        .expect("XPENDING");
    let pending: BTreeMap<String, (String, u64)> = pending
        .into_iter()
        .map(|(id, consumer, _idle, count)| (id, (consumer, count)))
        .collect();
    for (id, times) in &model.delivered {
        if model.ack_unknown.contains(id) {
            continue;
        }
        let Some((consumer, count)) = pending.get(id) else {
            panic!(
                "round {round}: delivered, unacknowledged entry {id} is not pending after kill -9"
            );
        };
        assert_eq!(consumer, CONSUMER);
        assert!(
            count >= times,
            "round {round}: {id} delivered {times} times, pending shows {count}"
        );
    }
    for id in &model.seen {
        assert!(
            by_id.contains_key(id),
            "round {round}: entry {id} was shown to a reader, and is gone after kill -9"
        );
    }
    for id in &model.acked {
        assert!(
            !pending.contains_key(id),
            "round {round}: acknowledged entry {id} is pending again"
        );
    }
    if let Some(max) = model.max_delivered {
        let groups: Vec<Vec<redis::Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(STREAM)
            .query(&mut c)
            .expect("XINFO GROUPS");
        let group = groups.first().expect("the group exists after restart");
        let mut last = None;
        for pair in group.chunks(2) {
            let name: String = redis::from_redis_value(pair[0].clone()).unwrap_or_default();
            if name == "last-delivered-id" {
                let v: String = redis::from_redis_value(pair[1].clone()).expect("id");
                last = Some(parse_id(&v));
            }
        }
        let last = last.expect("last-delivered-id");
        assert!(
            last >= max,
            "round {round}: last-delivered-id {last:?} is below the delivered {max:?}"
        );
    }
}

fn produce(addr: SocketAddr, producer: usize, model: Arc<Mutex<Model>>, stop: Arc<AtomicBool>) {
    let Ok(client) = redis::Client::open(format!("redis://{addr}/0")) else {
        return;
    };
    let Ok(mut c) = client.get_connection() else {
        return;
    };
    while !stop.load(Ordering::Relaxed) {
        let seq = {
            let mut m = model.lock().expect("model");
            let s = m.next_seq[producer];
            m.next_seq[producer] += 1;
            s
        };
        let reply: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(STREAM)
            .arg("*")
            .arg("producer")
            .arg(producer)
            .arg("seq")
            .arg(seq)
            .arg("payload")
            .arg("x".repeat(100))
            .query(&mut c);
        match reply {
            Ok(id) => {
                model
                    .lock()
                    .expect("model")
                    .added
                    .insert(id, (producer, seq));
            }
            Err(_) => return,
        }
    }
}

/// A plain reader following the stream with XREAD BLOCK: it is shown entries as soon as
/// they are added, served by the producers' XADDs.
fn watch(addr: SocketAddr, model: Arc<Mutex<Model>>, stop: Arc<AtomicBool>) {
    let Ok(client) = redis::Client::open(format!("redis://{addr}/0")) else {
        return;
    };
    let Ok(mut c) = client.get_connection() else {
        return;
    };
    let mut last = "$".to_owned();
    while !stop.load(Ordering::Relaxed) {
        type Reply = Option<Vec<(String, Entries)>>;
        let reply: redis::RedisResult<Reply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(50)
            .arg("BLOCK")
            .arg(100)
            .arg("STREAMS")
            .arg(STREAM)
            .arg(&last)
            .query(&mut c);
        let Ok(reply) = reply else { return };
        let ids: Vec<String> = reply
            .into_iter()
            .flatten()
            .flat_map(|(_, entries)| entries.into_iter().map(|(id, _)| id))
            .collect();
        if let Some(id) = ids.last() {
            last = id.clone();
        }
        model.lock().expect("model").seen.extend(ids);
    }
}

fn consume(addr: SocketAddr, model: Arc<Mutex<Model>>, stop: Arc<AtomicBool>) {
    let Ok(client) = redis::Client::open(format!("redis://{addr}/0")) else {
        return;
    };
    let Ok(mut c) = client.get_connection() else {
        return;
    };
    let mut flip = false;
    while !stop.load(Ordering::Relaxed) {
        type Reply = Option<Vec<(String, Entries)>>;
        let reply: redis::RedisResult<Reply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(CONSUMER)
            .arg("COUNT")
            .arg(20)
            .arg("BLOCK")
            .arg(100)
            .arg("STREAMS")
            .arg(STREAM)
            .arg(">")
            .query(&mut c);
        let Ok(reply) = reply else { return };
        let ids: Vec<String> = reply
            .into_iter()
            .flatten()
            .flat_map(|(_, entries)| entries.into_iter().map(|(id, _)| id))
            .collect();
        {
            let mut m = model.lock().expect("model");
            for id in &ids {
                *m.delivered.entry(id.clone()).or_default() += 1;
                let parsed = parse_id(id);
                if m.max_delivered.is_none_or(|max| parsed > max) {
                    m.max_delivered = Some(parsed);
                }
            }
        }
        // Acknowledge every other batch, so pending entries accumulate too.
        flip = !flip;
        if !flip || ids.is_empty() {
            continue;
        }
        model
            .lock()
            .expect("model")
            .ack_unknown
            .extend(ids.iter().cloned());
        let acked: redis::RedisResult<u64> = redis::cmd("XACK")
            .arg(STREAM)
            .arg(GROUP)
            .arg(&ids)
            .query(&mut c);
        let Ok(n) = acked else { return };
        assert_eq!(n as usize, ids.len(), "XACK of freshly delivered ids");
        let mut m = model.lock().expect("model");
        for id in ids {
            m.ack_unknown.remove(&id);
            m.delivered.remove(&id);
            m.acked.insert(id);
        }
    }
}

#[test]
fn acknowledged_stream_writes_survive_kill_9() {
    let dir = std::env::temp_dir().join(format!("girder-stream-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data: PathBuf = dir.join("data");
    let model = Arc::new(Mutex::new(Model::default()));
    let mut rng = fastrand::Rng::with_seed(0x5eed ^ u64::from(std::process::id()));
    let mut total_added = 0;
    for round in 0..ROUNDS {
        let mut node = start(&data);
        if round == 0 {
            let mut c = connect(node.resp);
            let _: () = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(STREAM)
                .arg(GROUP)
                .arg("$")
                .arg("MKSTREAM")
                .query(&mut c)
                .expect("XGROUP CREATE");
        } else {
            check(node.resp, &model.lock().expect("model"), round);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for p in 0..PRODUCERS {
            let (m, s, addr) = (Arc::clone(&model), Arc::clone(&stop), node.resp);
            threads.push(std::thread::spawn(move || produce(addr, p, m, s)));
        }
        {
            let (m, s, addr) = (Arc::clone(&model), Arc::clone(&stop), node.resp);
            threads.push(std::thread::spawn(move || consume(addr, m, s)));
        }
        for _ in 0..2 {
            let (m, s, addr) = (Arc::clone(&model), Arc::clone(&stop), node.resp);
            threads.push(std::thread::spawn(move || watch(addr, m, s)));
        }
        let before = model.lock().expect("model").added.len();
        std::thread::sleep(Duration::from_millis(300 + rng.u64(0..900)));
        // SIGKILL: no shutdown sequence, no final fsync.
        node.child.kill().expect("kill -9");
        let killed_at = Instant::now();
        let _ = node.child.wait();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("client thread");
        }
        let after = model.lock().expect("model").added.len();
        assert!(
            after > before,
            "round {round}: no XADD was acknowledged in the load window"
        );
        total_added = after;
        assert!(killed_at.elapsed() < Duration::from_secs(30));
    }
    let node = start(&data);
    check(node.resp, &model.lock().expect("model"), ROUNDS);
    drop(node);
    assert!(total_added > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_journal_refuses_to_start_until_repaired() {
    let dir = std::env::temp_dir().join(format!("girder-stream-damage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    {
        let node = start(&data);
        let mut c = connect(node.resp);
        for i in 0..200 {
            let _: String = redis::cmd("XADD")
                .arg("s")
                .arg(format!("{}-1", i + 1))
                .arg("n")
                .arg(i)
                .arg("pad")
                .arg("y".repeat(200))
                .query(&mut c)
                .expect("XADD");
        }
        // Under the default interval policy the last second may still be in the
        // process: let it reach the file before the kill.
        std::thread::sleep(Duration::from_millis(1500));
    }
    let journal = data.join("journal");
    let segment = std::fs::read_dir(&journal)
        .expect("journal dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .expect("a segment file");
    let mut bytes = std::fs::read(&segment).expect("read segment");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&segment, &bytes).expect("write segment");

    common::assert_refuses_damaged_journal(&data, &segment);

    let check = common::girder_command()
        .arg("log")
        .arg("check")
        .arg(&journal)
        .output()
        .expect("check");
    assert_eq!(check.status.code(), Some(1), "check reports damage");
    assert!(String::from_utf8_lossy(&check.stdout).contains("DAMAGED"));
    let repair = common::girder_command()
        .arg("log")
        .arg("repair")
        .arg(&journal)
        .output()
        .expect("repair");
    assert!(
        repair.status.success(),
        "{}",
        String::from_utf8_lossy(&repair.stderr)
    );
    let check = common::girder_command()
        .arg("log")
        .arg("check")
        .arg(&journal)
        .output()
        .expect("check");
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let node = start(&data);
    let mut c = connect(node.resp);
    let entries: Entries = redis::cmd("XRANGE")
        .arg("s")
        .arg("-")
        .arg("+")
        .query(&mut c)
        .expect("XRANGE");
    // The entries before the damage are back, in order, and none after a gap.
    assert!(
        !entries.is_empty() && entries.len() < 200,
        "{} entries",
        entries.len()
    );
    for (i, (id, fields)) in entries.iter().enumerate() {
        assert_eq!(id, &format!("{}-1", i + 1));
        assert_eq!(fields[0], ("n".to_owned(), i.to_string()));
    }
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
