//! Topics over HTTP against a real node on port 0, with reqwest: create, list with
//! cursors, produce (single, batch, deduplicated), fetch, commit offsets, every error
//! problem, then a restart on the same data directory that must give everything back.

mod common;

use common::{call, problem_type, start, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Every message of every partition, as (partition, offset, key, value, id).
async fn read_all(
    client: &Client,
    base: &str,
    topic: &str,
    partitions: u32,
) -> Vec<(u32, u64, Option<String>, String, Option<String>)> {
    let mut out = Vec::new();
    for p in 0..partitions {
        let mut offset = 0;
        loop {
            let (status, page) = call(client.get(format!(
                "{base}/v1/topics/{topic}/partitions/{p}/messages?offset={offset}&limit=3"
            )))
            .await;
            assert_eq!(status, 200, "{page}");
            let messages = page["messages"].as_array().unwrap();
            if messages.is_empty() {
                assert_eq!(page["next_offset"], offset);
                break;
            }
            for m in messages {
                out.push((
                    p,
                    m["offset"].as_u64().unwrap(),
                    m["key"].as_str().map(str::to_owned),
                    m["value"].as_str().unwrap().to_owned(),
                    m["id"].as_str().map(str::to_owned),
                ));
            }
            offset = page["next_offset"].as_u64().unwrap();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_over_http_survive_a_restart() {
    let dir = TempDir::new("topics", "restart");
    let node = start(&dir.0).await;
    let base = node.base.clone();
    let c = Client::new();

    // Create, and the errors of creating.
    let (status, body) = call(
        c.post(format!("{base}/v1/topics"))
            .json(&json!({"name": "orders", "partitions": 4, "dedup_window_ms": 600000})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["partitions"], 4);
    assert_eq!(body["fsync"], "always");
    let (status, body) = call(
        c.post(format!("{base}/v1/topics"))
            .json(&json!({"name": "orders", "partitions": 1})),
    )
    .await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::CONFLICT, "urn:girder:problem:conflict")
    );
    for (bad, param) in [
        (json!({"name": "x", "partitions": 0}), "partitions"),
        (json!({"name": "x", "partitions": 1025}), "partitions"),
        (json!({"name": "a b", "partitions": 1}), "name"),
        (json!({"name": "..", "partitions": 1}), "name"),
    ] {
        let (status, body) = call(c.post(format!("{base}/v1/topics")).json(&bad)).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["invalid-params"][0]["name"], param, "{body}");
    }
    let (status, _) = call(
        c.post(format!("{base}/v1/topics"))
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 422);

    // List with cursors.
    for name in ["a", "b", "c"] {
        let (status, _) = call(
            c.post(format!("{base}/v1/topics"))
                .json(&json!({"name": name, "partitions": 1})),
        )
        .await;
        assert_eq!(status, 201);
    }
    let mut names = Vec::new();
    let mut url = format!("{base}/v1/topics?limit=2");
    loop {
        let (status, page) = call(c.get(&url)).await;
        assert_eq!(status, 200);
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{base}/v1/topics?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(names, ["a", "b", "c", "orders"]);
    let (status, body) = call(c.get(format!("{base}/v1/topics?cursor=no%20pe"))).await;
    assert_eq!(
        (status, problem_type(&body)),
        (
            StatusCode::BAD_REQUEST,
            "urn:girder:problem:invalid-parameter"
        )
    );

    // Produce one message, then a batch, then retries.
    let (status, one) = call(
        c.post(format!("{base}/v1/topics/orders/messages"))
            .json(&json!({"key": "k0", "value": "first", "headers": {"h": "v"}, "id": "m-first"})),
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["duplicate"], false);
    let batch: Vec<Value> = (0..40)
        .map(|i| json!({"key": format!("k{}", i % 5), "value": format!("v{i}"), "id": format!("m{i}")}))
        .collect();
    let (status, results) = call(
        c.post(format!("{base}/v1/topics/orders/messages"))
            .json(&json!({ "messages": batch })),
    )
    .await;
    assert_eq!(status, 200, "{results}");
    let results = results["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 40);
    // One key, one partition.
    let mut key_partition: BTreeMap<String, u64> = BTreeMap::new();
    key_partition.insert("k0".into(), one["partition"].as_u64().unwrap());
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["duplicate"], false);
        let p = r["partition"].as_u64().unwrap();
        assert_eq!(*key_partition.entry(format!("k{}", i % 5)).or_insert(p), p);
    }
    // A retried message: the original's place, nothing appended.
    let (status, again) = call(
        c.post(format!("{base}/v1/topics/orders/messages"))
            .json(&json!({"key": "k3", "value": "retry", "id": "m7"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["partition"], results[7]["partition"]);
    assert_eq!(again["offset"], results[7]["offset"]);

    // Limits and bad input.
    let big = "x".repeat((1 << 20) + 1);
    let (status, body) = call(
        c.post(format!("{base}/v1/topics/orders/messages"))
            .json(&json!({ "value": big })),
    )
    .await;
    assert_eq!(
        (status, problem_type(&body)),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "urn:girder:problem:payload-too-large"
        )
    );
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"value": "v"})).collect();
    for bad in [
        json!({ "messages": too_many }),
        json!({ "messages": [] }),
        json!({ "key": "k" }),
        json!({ "value": 5 }),
        json!({ "value": "v", "vaule": "typo" }),
    ] {
        let (status, body) = call(
            c.post(format!("{base}/v1/topics/orders/messages"))
                .json(&bad),
        )
        .await;
        assert_eq!(status, 422, "{body}");
    }
    let (status, body) = call(
        c.post(format!("{base}/v1/topics/nope/messages"))
            .json(&json!({"value": "v"})),
    )
    .await;
    assert_eq!(
        (status, problem_type(&body)),
        (StatusCode::NOT_FOUND, "urn:girder:problem:not-found")
    );
    for url in [
        "/v1/topics/nope",
        "/v1/topics/nope/partitions/0/messages",
        "/v1/topics/orders/partitions/4/messages",
        "/v1/topics/orders/groups/nobody/offsets",
    ] {
        let (status, body) = call(c.get(format!("{base}{url}"))).await;
        assert_eq!(status, 404, "{url}: {body}");
    }
    let (status, body) = call(c.get(format!(
        "{base}/v1/topics/orders/partitions/0/messages?offset=1000"
    )))
    .await;
    // No message at that offset: a 404 naming the partition's range.
    assert_eq!(status, 404, "{body}");
    assert_eq!(problem_type(&body), "urn:girder:problem:not-found");
    assert!(
        body["detail"].as_str().unwrap().contains("out of range"),
        "{body}"
    );
    let (status, _) = call(c.get(format!(
        "{base}/v1/topics/orders/partitions/0/messages?limit=0"
    )))
    .await;
    assert_eq!(status, 422);
    let (status, _) = call(c.get(format!(
        "{base}/v1/topics/orders/partitions/0/messages?offset=x"
    )))
    .await;
    assert_eq!(status, 400);

    // Fetch everything: 41 messages, each key in produce order.
    let before = read_all(&c, &base, "orders", 4).await;
    assert_eq!(before.len(), 41);
    let mut per_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (p, _, key, value, _) in &before {
        let key = key.clone().unwrap();
        assert_eq!(key_partition[&key], u64::from(*p));
        per_key.entry(key).or_default().push(value.clone());
    }
    assert_eq!(per_key["k0"][..3], ["first", "v0", "v5"]);
    assert_eq!(
        per_key["k4"],
        (0..8)
            .map(|j| format!("v{}", 4 + 5 * j))
            .collect::<Vec<_>>()
    );

    // Commit offsets.
    let p0 = key_partition["k0"];
    let (status, body) = call(
        c.post(format!("{base}/v1/topics/orders/groups/billing/offsets"))
            .json(&json!({"partition": p0, "offset": 2})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(
        c.post(format!("{base}/v1/topics/orders/groups/billing/offsets"))
            .json(&json!({"partition": p0, "offset": 1_000_000})),
    )
    .await;
    assert_eq!(
        status, 404,
        "a commit past the high watermark names no message"
    );
    let (status, _) = call(
        c.post(format!("{base}/v1/topics/orders/groups/billing/offsets"))
            .json(&json!({"partition": 9, "offset": 0})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, offsets) =
        call(c.get(format!("{base}/v1/topics/orders/groups/billing/offsets"))).await;
    assert_eq!(status, 200);
    let hw = before.iter().filter(|m| u64::from(m.0) == p0).count() as u64;
    assert_eq!(
        offsets["offsets"],
        json!([{"partition": p0, "offset": 2, "high_watermark": hw, "lag": hw - 2}])
    );

    // The OpenAPI document describes the routes.
    let (_, doc) = call(c.get(format!("{base}/v1/openapi.json"))).await;
    for path in [
        "/v1/topics",
        "/v1/topics/{topic}",
        "/v1/topics/{topic}/messages",
        "/v1/topics/{topic}/partitions/{partition}/messages",
        "/v1/topics/{topic}/groups/{group}/offsets",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }

    // Delete one topic.
    let (status, _) = call(c.delete(format!("{base}/v1/topics/b"))).await;
    assert_eq!(status, 204);
    let (status, _) = call(c.delete(format!("{base}/v1/topics/b"))).await;
    assert_eq!(status, 404);

    // Restart on the same directory: everything comes back.
    node.stop().await;
    let node = start(&dir.0).await;
    let base = node.base.clone();
    assert_eq!(read_all(&c, &base, "orders", 4).await, before);
    let (status, info) = call(c.get(format!("{base}/v1/topics/orders"))).await;
    assert_eq!(status, 200);
    assert_eq!(info["dedup_window_ms"], 600000);
    assert_eq!(info["partition_offsets"].as_array().unwrap().len(), 4);
    let (_, list) = call(c.get(format!("{base}/v1/topics"))).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "c", "orders"]);
    let (status, after) =
        call(c.get(format!("{base}/v1/topics/orders/groups/billing/offsets"))).await;
    assert_eq!(status, 200);
    assert_eq!(after, offsets);
    // The dedup window was rebuilt from the log.
    let (_, again) = call(
        c.post(format!("{base}/v1/topics/orders/messages"))
            .json(&json!({"value": "retry", "id": "m-first"})),
    )
    .await;
    assert_eq!(
        again,
        one.as_object()
            .map(|o| {
                let mut o = o.clone();
                o.insert("duplicate".into(), json!(true));
                Value::Object(o)
            })
            .unwrap()
    );
    // New messages continue after the old ones.
    let (_, next) = call(
        c.post(format!("{base}/v1/topics/orders/messages"))
            .json(&json!({"key": "k0", "value": "after"})),
    )
    .await;
    assert_eq!(next["partition"], p0);
    assert_eq!(next["offset"], hw);
    node.stop().await;
}
