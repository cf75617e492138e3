//! Dead letters over HTTP against a real node on port 0, with reqwest: a message that
//! runs out of deliveries (short visibility timeouts, one nack with an error) lands in
//! `<topic>.dlq` with its origin headers, `/metrics` shows the depth, redrive moves it
//! back once, and the 404s and 409s are problems. A restart keeps all of it.

mod common;

use common::{call, start, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn post(c: &Client, url: String, body: Value) -> (StatusCode, Value) {
    call(c.post(url).json(&body)).await
}

/// (value, receipt, delivery_count) of what one receive returned.
async fn receive(c: &Client, base: &str) -> Vec<(String, String, u64)> {
    let (status, body) = post(
        c,
        format!("{base}/v1/topics/jobs/groups/workers/receive"),
        json!({"max_messages": 10, "visibility_timeout_ms": 100}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut got: Vec<_> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["value"].as_str().unwrap().to_owned(),
                m["receipt"].as_str().unwrap().to_owned(),
                m["delivery_count"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort_unstable();
    got
}

async fn dead_letters(c: &Client, base: &str) -> Vec<Value> {
    let (status, body) = call(c.get(format!(
        "{base}/v1/topics/jobs.dlq/partitions/0/messages?offset=0&limit=100"
    )))
    .await;
    assert_eq!(status, 200, "{body}");
    body["messages"].as_array().unwrap().clone()
}

async fn depth(c: &Client, base: &str) -> Option<u64> {
    let text = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("girder_topic_dlq_depth{topic=\"jobs\"} "))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_redrive_and_metrics_over_http() {
    let dir = TempDir::new("dlq", "dlq");
    let node = start(&dir.0).await;
    let base = node.base.clone();
    let c = Client::new();
    let (status, body) = post(
        &c,
        format!("{base}/v1/topics"),
        json!({"name": "jobs", "partitions": 3, "max_deliveries": 2}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = call(c.get(format!("{base}/v1/topics/jobs.dlq"))).await;
    assert_eq!(status, 200, "the dead-letter topic exists with the topic");
    assert_eq!(depth(&c, &base).await, Some(0));
    for (key, value) in [("k1", "a"), ("k1", "b"), ("k2", "c")] {
        let (status, body) = post(
            &c,
            format!("{base}/v1/topics/jobs/messages"),
            json!({"key": key, "value": value, "headers": {"h": value}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    let first = receive(&c, &base).await;
    assert_eq!(
        first
            .iter()
            .map(|m| (m.0.as_str(), m.2))
            .collect::<Vec<_>>(),
        [("a", 1), ("c", 1)]
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = receive(&c, &base).await;
    assert_eq!(
        second
            .iter()
            .map(|m| (m.0.as_str(), m.2))
            .collect::<Vec<_>>(),
        [("a", 2), ("c", 2)]
    );
    let (status, body) = post(
        &c,
        format!("{base}/v1/topics/jobs/groups/workers/nack"),
        json!({"receipt": second[1].1, "error": "x".repeat(3000)}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Due a third delivery: both are dead-lettered, `b` (freed behind `a`) comes.
    let third = receive(&c, &base).await;
    assert_eq!(
        third
            .iter()
            .map(|m| (m.0.as_str(), m.2))
            .collect::<Vec<_>>(),
        [("b", 1)]
    );

    let dead = dead_letters(&c, &base).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    let a = dead.iter().find(|m| m["value"] == "a").unwrap();
    assert_eq!(a["key"], "k1");
    assert_eq!(a["headers"]["h"], "a");
    assert_eq!(a["headers"]["x-dlq-topic"], "jobs");
    assert_eq!(a["headers"]["x-dlq-offset"], "0");
    assert_eq!(a["headers"]["x-dlq-delivery-count"], "2");
    assert_eq!(a["headers"]["x-dlq-group"], "workers");
    assert_eq!(a["headers"]["x-dlq-last-error"], "");
    let c_dead = dead.iter().find(|m| m["value"] == "c").unwrap();
    assert_eq!(c_dead["headers"]["x-dlq-last-error"], "x".repeat(1024));
    let pa: u32 = a["headers"]["x-dlq-partition"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(depth(&c, &base).await, Some(2));

    // The 404, the 409s and the 422.
    let (status, _) = post(&c, format!("{base}/v1/topics/nope/dlq/redrive"), json!({})).await;
    assert_eq!(status, 404);
    let (status, body) = post(
        &c,
        format!("{base}/v1/topics"),
        json!({"name": "plain", "partitions": 1}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(&c, format!("{base}/v1/topics/plain/dlq/redrive"), json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("dead-letter"));
    let (status, _) = post(
        &c,
        format!("{base}/v1/topics/jobs/dlq/redrive"),
        json!({"max_messages": 0}),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = call(c.delete(format!("{base}/v1/topics/jobs.dlq"))).await;
    assert_eq!(status, 409);

    // Redrive: both back (`a` to its key's partition), once.
    let (status, body) = post(&c, format!("{base}/v1/topics/jobs/dlq/redrive"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["redriven"], 2);
    let (status, body) = call(c.get(format!(
        "{base}/v1/topics/jobs/partitions/{pa}/messages?offset=0&limit=100"
    )))
    .await;
    assert_eq!(status, 200, "{body}");
    let copies: Vec<&Value> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["value"] == "a")
        .collect();
    assert_eq!(copies.len(), 2, "the original and the redriven copy");
    assert_eq!(copies[1]["headers"], json!({"h": "a"}));
    let (status, body) = post(&c, format!("{base}/v1/topics/jobs/dlq/redrive"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["redriven"], 0);
    assert_eq!(depth(&c, &base).await, Some(0));
    node.stop().await;

    // A restart keeps the dead letters, the redrive mark and the metric.
    let node = start(&dir.0).await;
    let base = node.base.clone();
    assert_eq!(dead_letters(&c, &base).await.len(), 2);
    assert_eq!(depth(&c, &base).await, Some(0));
    let (status, body) = post(&c, format!("{base}/v1/topics/jobs/dlq/redrive"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["redriven"], 0);
    // Deleting the topic deletes its dead-letter topic.
    let (status, _) = call(c.delete(format!("{base}/v1/topics/jobs"))).await;
    assert_eq!(status, 204);
    let (status, _) = call(c.get(format!("{base}/v1/topics/jobs.dlq"))).await;
    assert_eq!(status, 404);
    assert_eq!(depth(&c, &base).await, None);
    node.stop().await;
}
