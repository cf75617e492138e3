//! Exactly-once consume-transform-produce over HTTP (`POST .../transact`), against the
//! real binary killed with SIGKILL at random moments while consumers — which themselves
//! "crash" now and then, abandoning their deliveries or their transaction request
//! mid-flight — turn every input message into one output message. At the end the output
//! topic holds exactly one output per input: none lost, none duplicated.
//!
//! Plus the route's answers to bad input, on an in-process node.

mod common;

use common::{call, problem_type, start, TempDir};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

async fn create(c: &reqwest::Client, base: &str, name: &str, partitions: u32) {
    let (s, body) = call(
        c.post(format!("{base}/v1/topics"))
            .json(&json!({"name": name, "partitions": partitions, "fsync": "always"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

async fn receive(c: &reqwest::Client, base: &str, max: u32, visibility: u64) -> Vec<Value> {
    let (s, body) = call(
        c.post(format!("{base}/v1/topics/in/groups/g/receive"))
            .json(&json!({"max_messages": max, "visibility_timeout_ms": visibility})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn transact_answers_bad_input_and_commits_all_or_nothing() {
    let dir = TempDir::new("txn", "bad-input");
    let node = start(&dir.0).await;
    let c = reqwest::Client::new();
    let base = &node.base;
    create(&c, base, "in", 2).await;
    create(&c, base, "out", 2).await;
    let batch: Vec<Value> = (0..4)
        .map(|i| json!({"key": format!("k{i}"), "value": format!("v{i}")}))
        .collect();
    let (s, _) = call(
        c.post(format!("{base}/v1/topics/in/messages"))
            .json(&json!({"messages": batch})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let got = receive(&c, base, 10, 60_000).await;
    assert_eq!(got.len(), 4);
    let r = |i: usize| got[i]["receipt"].as_str().unwrap().to_owned();
    let url = format!("{base}/v1/topics/in/groups/g/transact");

    // Bad input: each a problem, and nothing happens.
    let cases = [
        (json!({"ack": []}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"ack": ["nonsense"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"ack": [r(0), r(0)]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"ack": [r(0)], "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"ack": [r(0)], "produce": [{"topic": "out", "messages": []}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"ack": [r(0)], "produce": vec![json!({"topic": "out", "messages": [{"value": "m"}]}); 101]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"ack": [r(0)], "produce": [{"topic": "nope", "messages": [{"value": "x"}]}]}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"ack": [r(0)], "produce": [{"topic": "out", "messages": [{"value": "x".repeat(1 << 20 | 1)}]}]}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            json!({"ack": [r(0)], "produce": [{"topic": "out", "messages": vec![json!({"value": "m"}); 1001]}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, want) in cases {
        let (s, problem) = call(c.post(&url).json(&body)).await;
        assert_eq!(s, want, "{body:.200}: {problem}");
    }
    let (s, problem) = call(
        c.post(format!("{base}/v1/topics/in/groups/nobody/transact"))
            .json(&json!({"ack": [r(0)]})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{problem}");

    // One stale receipt: 410, and neither the good receipt nor the outputs are used.
    let (s, body) = call(
        c.post(format!("{base}/v1/topics/in/groups/g/ack"))
            .json(&json!({"receipts": [r(1)]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, problem) = call(c.post(&url).json(&json!({
        "ack": [r(0), r(1)],
        "produce": [{"topic": "out", "messages": [{"value": "never"}]}]
    })))
    .await;
    assert_eq!(s, StatusCode::GONE, "{problem}");
    assert!(
        problem_type(&problem).ends_with("receipt-expired"),
        "{problem}"
    );

    // A good one: acks and produces, in request order, to two topics at once.
    let (s, body) = call(c.post(&url).json(&json!({
        "ack": [r(0), r(2)],
        "produce": [
            {"topic": "out", "messages": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]},
            {"topic": "in", "messages": [{"value": "again"}]}
        ]
    })))
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["acked"], 2);
    let produced = body["produced"].as_array().unwrap();
    assert_eq!(produced.len(), 3);
    assert_eq!(produced[0]["topic"], "out");
    assert_eq!(produced[2]["topic"], "in");
    assert_eq!(produced[0]["partition"], produced[1]["partition"]);
    assert!(produced[0]["offset"].as_u64() < produced[1]["offset"].as_u64());
    // The receipts are spent; the one never used is still current.
    let (s, body) = call(
        c.post(format!("{base}/v1/topics/in/groups/g/ack"))
            .json(&json!({"receipts": [r(0), r(3)]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["results"][0]["acked"], false);
    assert_eq!(body["results"][1]["acked"], true);
    // Only the message the transaction produced to `in` is left to receive.
    let left = receive(&c, base, 10, 60_000).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["value"], "again");
    // What the metrics say about it.
    let text = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "girder_topics_messages_acked_total 4",
        "girder_topics_messages_received_total 5",
        "girder_topics_messages_redelivered_total 0",
        "girder_topic_in_flight{topic=\"in\",group=\"g\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    let lag: i64 = text
        .lines()
        .filter(|l| {
            l.starts_with("girder_topic_consumer_lag{topic=\"in\",group=\"g\",mode=\"queue\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(lag, 1, "the one message in flight\n{text}");
    node.stop().await;
}

/// Inputs to transform.
const INPUTS: u64 = 6000;
const CONSUMERS: usize = 4;

fn rounds() -> usize {
    std::env::var("CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

#[derive(Default)]
struct Stats {
    committed: AtomicU64,
    /// Outputs of transactions answered 200.
    outputs: AtomicU64,
    abandoned: AtomicU64,
    cut_off: AtomicU64,
    expired: AtomicU64,
}

/// One consumer: receive, transform `n` into `out-n`, commit with a transaction. Now
/// and then it "crashes": drops its deliveries without a word, or gives up on its
/// transaction request after a few milliseconds (the request may or may not commit).
async fn consume(base: Arc<RwLock<String>>, stop: Arc<AtomicBool>, stats: Arc<Stats>) {
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        let url = base.read().unwrap().clone();
        let got = c
            .post(format!("{url}/v1/topics/in/groups/g/receive"))
            .json(&json!({"max_messages": 10, "visibility_timeout_ms": 1500, "wait_ms": 500}))
            .send()
            .await;
        let Ok(resp) = got else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(body) = resp.json::<Value>().await else {
            continue;
        };
        let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
            continue;
        };
        if fastrand::u32(0..10) == 0 {
            stats.abandoned.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let receipts: Vec<&Value> = messages.iter().map(|m| &m["receipt"]).collect();
        let outputs: Vec<Value> = messages
            .iter()
            .map(|m| {
                let v = m["value"].as_str().unwrap();
                json!({"key": m["key"], "value": format!("out-{v}")})
            })
            .collect();
        let req = c
            .post(format!("{url}/v1/topics/in/groups/g/transact"))
            .json(&json!({"ack": receipts, "produce": [{"topic": "out", "messages": &outputs}]}));
        if fastrand::u32(0..10) == 0 {
            // Vanish mid-request: the transaction may commit or not.
            let _ =
                tokio::time::timeout(Duration::from_millis(fastrand::u64(0..5)), req.send()).await;
            stats.cut_off.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match req.send().await {
            Ok(r) if r.status() == StatusCode::OK => {
                stats.committed.fetch_add(1, Ordering::Relaxed);
                stats
                    .outputs
                    .fetch_add(outputs.len() as u64, Ordering::Relaxed);
            }
            Ok(r) if r.status() == StatusCode::GONE => {
                stats.expired.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                assert!(status.is_server_error(), "transact: {status} {text}");
            }
            Err(_) => {} // killed under us
        }
    }
}

/// Every output message, as value → count.
async fn outputs(c: &reqwest::Client, base: &str) -> BTreeMap<String, u32> {
    let mut seen = BTreeMap::new();
    for p in 0..3 {
        let mut offset = 0;
        loop {
            let (s, body) = call(c.get(format!(
                "{base}/v1/topics/out/partitions/{p}/messages?offset={offset}&limit=1000"
            )))
            .await;
            assert_eq!(s, StatusCode::OK, "{body}");
            let msgs = body["messages"].as_array().unwrap();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                *seen
                    .entry(m["value"].as_str().unwrap().to_owned())
                    .or_insert(0) += 1;
            }
            offset = body["next_offset"].as_u64().unwrap();
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_under_kill_9_of_consumers_and_server() {
    let dir = TempDir::new("txn", "chaos");
    let mut node = common::spawn(&dir.0, &[]);
    let c = reqwest::Client::new();
    create(&c, &node.base, "in", 3).await;
    create(&c, &node.base, "out", 3).await;
    for chunk in (0..INPUTS).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|n| json!({"key": format!("k{}", n % 97), "value": n.to_string()}))
            .collect();
        let (s, body) = call(
            c.post(format!("{}/v1/topics/in/messages", node.base))
                .json(&json!({"messages": batch})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    let base = Arc::new(RwLock::new(node.base.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::default());
    let workers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            tokio::spawn(consume(
                Arc::clone(&base),
                Arc::clone(&stop),
                Arc::clone(&stats),
            ))
        })
        .collect();
    let mut kills = 0;
    let mut kills_mid_work = 0;
    for _ in 0..rounds() {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(100..800))).await;
        if stats.outputs.load(Ordering::Relaxed) < INPUTS * 9 / 10 {
            kills_mid_work += 1;
        }
        // SIGKILL: no shutdown, no final fsync, no checkpoint.
        node.child.kill().unwrap();
        node.child.wait().unwrap();
        kills += 1;
        node = common::spawn(&dir.0, &[]);
        *base.write().unwrap() = node.base.clone();
    }
    // Then let the consumers finish: every input turned into an output.
    let deadline = Instant::now() + Duration::from_secs(120);
    let seen = loop {
        let seen = outputs(&c, &node.base).await;
        let total: u32 = seen.values().sum();
        if total as u64 >= INPUTS || Instant::now() > deadline {
            // Give late transactions a moment, then look once more.
            tokio::time::sleep(Duration::from_millis(2000)).await;
            break outputs(&c, &node.base).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let dup: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).take(10).collect();
    assert!(dup.is_empty(), "outputs produced twice: {dup:?}");
    let missing: Vec<u64> = (0..INPUTS)
        .filter(|n| !seen.contains_key(&format!("out-{n}")))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "inputs without output after {kills} kills: {missing:?} ({} outputs)",
        seen.len()
    );
    assert_eq!(seen.len() as u64, INPUTS);
    // Nothing is left to consume.
    let left = receive(&c, &node.base, 100, 1000).await;
    assert!(left.is_empty(), "{} inputs not acked", left.len());
    let (committed, abandoned, cut_off, expired) = (
        stats.committed.load(Ordering::Relaxed),
        stats.abandoned.load(Ordering::Relaxed),
        stats.cut_off.load(Ordering::Relaxed),
        stats.expired.load(Ordering::Relaxed),
    );
    eprintln!(
        "{kills} kills ({kills_mid_work} with work left); transactions committed {committed}, abandoned deliveries {abandoned}, requests cut off {cut_off}, 410s {expired}"
    );
    assert!(
        kills_mid_work >= rounds().min(3) && abandoned > 0 && cut_off > 0,
        "too few crashes while transactions were running ({kills_mid_work} kills): the test proved nothing"
    );
}
