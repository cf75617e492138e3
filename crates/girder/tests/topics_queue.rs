//! Queue mode over HTTP against a real node on port 0, with reqwest: long-poll receive,
//! per-key holding, ack, nack, extend, every error problem, redelivery after the
//! visibility timeout, and a restart where acked messages stay acked and unacked ones
//! come back.

mod common;

use common::{call, start, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

struct Queue {
    c: Client,
    url: String,
}

impl Queue {
    async fn post(&self, verb: &str, body: Value) -> (StatusCode, Value) {
        call(self.c.post(format!("{}/{verb}", self.url)).json(&body)).await
    }

    /// Receives and returns the messages, as (value, receipt, delivery_count).
    async fn receive(&self, body: Value) -> Vec<(String, String, u64)> {
        let (status, body) = self.post("receive", body).await;
        assert_eq!(status, 200, "{body}");
        body["messages"]
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
            .collect()
    }

    async fn produce(&self, base: &str, key: Option<&str>, value: &str) {
        let (status, body) = call(
            self.c
                .post(format!("{base}/v1/topics/jobs/messages"))
                .json(&json!({"key": key, "value": value})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

fn sorted(ms: &[(String, String, u64)]) -> Vec<&str> {
    let mut v: Vec<&str> = ms.iter().map(|m| m.0.as_str()).collect();
    v.sort_unstable();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_mode_over_http_survives_a_restart() {
    let dir = TempDir::new("queue", "restart");
    let node = start(&dir.0).await;
    let base = node.base.clone();
    let c = Client::new();
    let (status, body) = call(
        c.post(format!("{base}/v1/topics"))
            .json(&json!({"name": "jobs", "partitions": 2})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let q = Queue {
        c: c.clone(),
        url: format!("{base}/v1/topics/jobs/groups/workers"),
    };

    // Nothing yet: an immediate empty answer (and the group now exists).
    assert!(q.receive(json!({})).await.is_empty());

    // A long-poll is answered by the produce, well before its wait runs out.
    let started = Instant::now();
    let waiting = {
        let q = Queue {
            c: c.clone(),
            url: q.url.clone(),
        };
        tokio::spawn(async move { q.receive(json!({"wait_ms": 10000})).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    q.produce(&base, Some("k1"), "a").await;
    let a = waiting.await.unwrap();
    assert_eq!(sorted(&a), ["a"]);
    assert_eq!(a[0].2, 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // k1 is held by `a`: its next message waits; other keys and unkeyed ones do not.
    q.produce(&base, Some("k1"), "b").await;
    q.produce(&base, Some("k2"), "c").await;
    q.produce(&base, None, "d").await;
    let cd = q
        .receive(json!({"max_messages": 10, "visibility_timeout_ms": 60000}))
        .await;
    assert_eq!(sorted(&cd), ["c", "d"]);
    let receipt =
        |ms: &[(String, String, u64)], v: &str| ms.iter().find(|m| m.0 == v).unwrap().1.clone();
    let (ra, rc, rd) = (receipt(&a, "a"), receipt(&cd, "c"), receipt(&cd, "d"));

    // Ack: one bad receipt refuses the request; then per-receipt results.
    let (status, body) = q.post("ack", json!({"receipts": [ra, "garbage"]})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["type"], "urn:girder:problem:invalid-value");
    let (status, body) = q.post("ack", json!({"receipts": [ra, rc]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["acked"], true);
    assert_eq!(body["results"][1]["acked"], true);
    let (status, body) = q.post("ack", json!({"receipts": [ra]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["acked"], false);
    assert_eq!(
        body["results"][0]["error"],
        "urn:girder:problem:receipt-expired"
    );
    let (status, _) = q.post("ack", json!({"receipts": []})).await;
    assert_eq!(status, 422);

    // `a` acked: `b` is k1's head now.
    let b = q
        .receive(json!({"max_messages": 10, "visibility_timeout_ms": 60000}))
        .await;
    assert_eq!(sorted(&b), ["b"]);
    let rb = b[0].1.clone();
    let (status, body) = q
        .post(
            "extend",
            json!({"receipt": rb, "visibility_timeout_ms": 120000}),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    // Nack: visible again at once, counted; the spent receipt is Gone.
    let (status, body) = q.post("nack", json!({"receipt": rd})).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = q.post("nack", json!({"receipt": rd, "delay_ms": 0})).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["type"], "urn:girder:problem:receipt-expired");
    let d = q.receive(json!({"visibility_timeout_ms": 60000})).await;
    assert_eq!(sorted(&d), ["d"]);
    assert_eq!(d[0].2, 2);

    // Redelivery after the visibility timeout (1 ms here; the engine tests use virtual
    // time).
    q.produce(&base, None, "e").await;
    let e1 = q.receive(json!({"visibility_timeout_ms": 1})).await;
    assert_eq!(sorted(&e1), ["e"]);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let e2 = q.receive(json!({"visibility_timeout_ms": 60000})).await;
    assert_eq!(sorted(&e2), ["e"]);
    assert_eq!(e2[0].2, 2);
    let (status, body) = q
        .post(
            "extend",
            json!({"receipt": e1[0].1, "visibility_timeout_ms": 10}),
        )
        .await;
    assert_eq!(status, 410, "{body}");

    // The other problems.
    let nobody = format!("{base}/v1/topics/jobs/groups/nobody");
    for verb in ["ack", "nack", "extend"] {
        let (status, body) = call(
            c.post(format!("{nobody}/{verb}"))
                .json(&json!({"receipts": [rb], "receipt": rb, "visibility_timeout_ms": 1})),
        )
        .await;
        // `ack` refuses the unknown fields first; the others find no group.
        assert!(status == 404 || status == 422, "{verb}: {status} {body}");
    }
    let (status, body) = call(
        c.post(format!("{nobody}/ack"))
            .json(&json!({"receipts": [rb]})),
    )
    .await;
    assert_eq!(
        (status, body["type"].as_str()),
        (StatusCode::NOT_FOUND, Some("urn:girder:problem:not-found"))
    );
    let (status, _) = call(
        c.post(format!("{base}/v1/topics/nope/groups/g/receive"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 404);
    for (verb, bad, param) in [
        ("receive", json!({"max_messages": 0}), "max_messages"),
        ("receive", json!({"max_messages": 101}), "max_messages"),
        (
            "receive",
            json!({"visibility_timeout_ms": 0}),
            "visibility_timeout_ms",
        ),
        ("receive", json!({"wait_ms": 20001}), "wait_ms"),
        ("nack", json!({"receipt": "zzz"}), "receipt"),
        (
            "extend",
            json!({"receipt": rb, "visibility_timeout_ms": 0}),
            "visibility_timeout_ms",
        ),
    ] {
        let (status, body) = q.post(verb, bad.clone()).await;
        assert_eq!(status, 422, "{verb} {bad}: {body}");
        assert_eq!(body["invalid-params"][0]["name"], param, "{body}");
    }

    // Restart: a and c stay acked; b, d, e come back at once, counted from 1, and the
    // receipts from before the restart are Gone.
    node.stop().await;
    let node = start(&dir.0).await;
    let base = node.base.clone();
    let q = Queue {
        c: c.clone(),
        url: format!("{base}/v1/topics/jobs/groups/workers"),
    };
    let (status, body) = q
        .post(
            "extend",
            json!({"receipt": rb, "visibility_timeout_ms": 10}),
        )
        .await;
    assert_eq!(status, 410, "{body}");
    let back = q.receive(json!({"max_messages": 10})).await;
    assert_eq!(sorted(&back), ["b", "d", "e"]);
    assert!(back.iter().all(|m| m.2 == 1), "{back:?}");
    let receipts: Vec<&str> = back.iter().map(|m| m.1.as_str()).collect();
    let (status, body) = q.post("ack", json!({"receipts": receipts})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["acked"] == true));
    assert!(q.receive(json!({"wait_ms": 100})).await.is_empty());
    node.stop().await;
}
