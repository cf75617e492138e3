//! Engine tests over real directories, with an injected clock.

use super::*;
use std::sync::atomic::AtomicU64;

#[derive(Debug, Default)]
struct ManualClock(AtomicU64);

impl ManualClock {
    fn at(ms: u64) -> Arc<Self> {
        Arc::new(Self(AtomicU64::new(ms)))
    }
    fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn config(dir: &Path, clock: &Arc<ManualClock>) -> TopicsConfig {
    TopicsConfig {
        clock: Arc::clone(clock) as Arc<dyn Clock>,
        segment_bytes: 4096,
        ..TopicsConfig::new(dir)
    }
}

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Topics {
    Topics::open(config(dir, clock)).unwrap().0
}

fn msg(key: Option<&str>, value: &str, id: Option<&str>) -> Message {
    Message {
        key: key.map(str::to_owned),
        value: value.to_owned(),
        headers: BTreeMap::new(),
        id: id.map(str::to_owned),
    }
}

fn produce(topic: &Topic, messages: &[Message]) -> Vec<Produced> {
    block_on(topic.produce(messages)).unwrap()
}

/// A minimal executor: `produce` only awaits `wait_durable`, which needs no runtime.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Thread(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn all(topic: &Topic, partition: u32) -> Vec<StoredMessage> {
    let mut out = Vec::new();
    let mut offset = topic.partitions()[partition as usize].start_offset;
    loop {
        let page = topic.fetch(partition, offset, 7, 1 << 20).unwrap();
        if page.messages.is_empty() {
            return out;
        }
        offset = page.next_offset;
        out.extend(page.messages);
    }
}

#[test]
fn create_reopen_delete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_000_000);
    let topics = open(dir.path(), &clock);
    let mut spec = TopicSpec::new("orders.v1", 3);
    spec.retention_ms = Some(60_000);
    spec.fsync = TopicFsync::Never;
    let topic = topics.create(spec.clone()).unwrap();
    assert!(matches!(
        topics.create(TopicSpec::new("orders.v1", 1)),
        Err(TopicError::TopicExists(_))
    ));
    let mut headers = BTreeMap::new();
    headers.insert("h".to_owned(), "v".to_owned());
    let m = Message {
        headers,
        ..msg(Some("k"), "{\"a\":1}", Some("id-1"))
    };
    let r = produce(&topic, std::slice::from_ref(&m));
    assert!(!r[0].duplicate);
    topics.create(TopicSpec::new("a", 1)).unwrap();
    drop((topic, topics));

    let (topics, report) = Topics::open(config(dir.path(), &clock)).unwrap();
    assert_eq!(report.topics, 2);
    let names: Vec<String> = topics
        .list(None, 10)
        .iter()
        .map(|t| t.name().to_owned())
        .collect();
    assert_eq!(names, ["a", "orders.v1"]);
    assert_eq!(topics.list(Some("a"), 10).len(), 1);
    let topic = topics.get("orders.v1").unwrap();
    assert_eq!(topic.spec(), &spec);
    let got = all(&topic, r[0].partition);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, m);
    assert_eq!(got[0].timestamp_ms, 1_000_000);

    // A request still holds the topic: deletion hides it at once and waits for the
    // request to let go before moving its files.
    std::thread::scope(|s| {
        let deleting = s.spawn(|| topics.delete("orders.v1"));
        while topics.get("orders.v1").is_some() {
            std::thread::yield_now();
        }
        assert!(matches!(
            topic.fetch(0, 0, 1, 1),
            Err(TopicError::NoSuchTopic(_))
        ));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!deleting.is_finished());
        assert!(dir.path().join("orders.v1").exists());
        drop(topic);
        deleting.join().unwrap().unwrap();
    });
    assert!(matches!(
        topics.delete("orders.v1"),
        Err(TopicError::NoSuchTopic(_))
    ));
    assert!(!dir.path().join("orders.v1").exists());
    drop(topics);
    let topics = open(dir.path(), &clock);
    assert!(topics.get("orders.v1").is_none());
    // The name is free again, and the new topic starts empty.
    let topic = topics.create(TopicSpec::new("orders.v1", 2)).unwrap();
    assert!(topic.partitions().iter().all(|p| p.high_watermark == 0));
}

#[test]
fn validation() {
    let dir = tempfile::tempdir().unwrap();
    let topics = open(dir.path(), &ManualClock::at(1));
    for bad in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(201)] {
        assert!(
            matches!(
                topics.create(TopicSpec::new(bad, 1)),
                Err(TopicError::InvalidName(_))
            ),
            "{bad:?}"
        );
    }
    topics.create(TopicSpec::new("x".repeat(200), 1)).unwrap();
    for bad in [0, 1025] {
        assert!(matches!(
            topics.create(TopicSpec::new("p", bad)),
            Err(TopicError::InvalidSpec {
                field: "partitions",
                ..
            })
        ));
    }
    let topic = topics.create(TopicSpec::new("p", 2)).unwrap();
    let big = msg(None, &"v".repeat(MAX_MESSAGE_BYTES), Some("i"));
    assert!(matches!(
        block_on(topic.produce(&[msg(None, "ok", None), big])),
        Err(TopicError::MessageTooLarge { .. })
    ));
    // The batch was refused whole.
    assert!(topic.partitions().iter().all(|p| p.high_watermark == 0));
    assert!(matches!(
        topic.fetch(2, 0, 1, 1),
        Err(TopicError::NoSuchPartition { partitions: 2, .. })
    ));
    assert!(matches!(
        topic.fetch(0, 1, 1, 1),
        Err(TopicError::OffsetOutOfRange { offset: 1, .. })
    ));
}

#[test]
fn a_key_always_goes_to_one_partition_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(5);
    let topics = open(dir.path(), &clock);
    let topic = topics.create(TopicSpec::new("t", 8)).unwrap();
    let keys: Vec<String> = (0..40).map(|k| format!("key-{k}")).collect();
    let mut placed: BTreeMap<String, u32> = BTreeMap::new();
    for round in 0..5 {
        let batch: Vec<Message> = keys
            .iter()
            .map(|k| msg(Some(k), &format!("{k}:{round}"), None))
            .collect();
        for (k, r) in keys.iter().zip(produce(&topic, &batch)) {
            assert_eq!(
                *placed.entry(k.clone()).or_insert(r.partition),
                r.partition,
                "{k}"
            );
            assert_eq!(r.partition, topic.partition_for_key(k.as_bytes()));
        }
    }
    // Keys spread over partitions.
    let used: std::collections::BTreeSet<u32> = placed.values().copied().collect();
    assert!(used.len() >= 6, "{used:?}");
    drop((topic, topics));
    // Same placement after a restart, and each key's messages in produce order.
    let topics = open(dir.path(), &clock);
    let topic = topics.get("t").unwrap();
    for (k, p) in &placed {
        assert_eq!(topic.partition_for_key(k.as_bytes()), *p);
    }
    let mut rounds: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for p in 0..8 {
        for m in all(&topic, p) {
            let key = m.message.key.clone().unwrap();
            assert_eq!(placed[&key], p);
            let (_, round) = m.message.value.split_once(':').unwrap();
            rounds.entry(key).or_default().push(round.parse().unwrap());
        }
    }
    assert_eq!(rounds.len(), 40);
    assert!(rounds.values().all(|r| *r == [0, 1, 2, 3, 4]));
    // Without a key: round-robin over every partition.
    let spread = produce(&topic, &vec![msg(None, "x", None); 16]);
    let used: std::collections::BTreeSet<u32> = spread.iter().map(|r| r.partition).collect();
    assert_eq!(used.len(), 8);
}

#[test]
fn dedup_within_and_after_the_window_and_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(10_000);
    let topics = open(dir.path(), &clock);
    let mut spec = TopicSpec::new("d", 4);
    spec.dedup_window_ms = 1_000;
    let topic = topics.create(spec).unwrap();
    let first = produce(&topic, &[msg(Some("k"), "v1", Some("a"))])[0];
    let end = |t: &Topic| t.partitions().iter().map(|p| p.high_watermark).sum::<u64>();
    assert_eq!(end(&topic), 1);

    clock.advance(999);
    let again = produce(&topic, &[msg(Some("other"), "v2", Some("a"))])[0];
    assert_eq!(
        again,
        Produced {
            duplicate: true,
            ..first
        }
    );
    assert_eq!(end(&topic), 1, "a duplicate appends nothing");

    // In one batch: the second copy of a new id is a duplicate of the first.
    let batch = produce(
        &topic,
        &[
            msg(None, "x", Some("b")),
            msg(None, "y", Some("b")),
            msg(None, "z", None),
        ],
    );
    assert!(!batch[0].duplicate && batch[1].duplicate && !batch[2].duplicate);
    assert_eq!(
        (batch[1].partition, batch[1].offset),
        (batch[0].partition, batch[0].offset)
    );
    assert_eq!(end(&topic), 3);

    // Rebuilt at open from the log: still a duplicate within the window...
    drop((topic, topics));
    let topics = open(dir.path(), &clock);
    let topic = topics.get("d").unwrap();
    let r = produce(&topic, &[msg(None, "again", Some("b"))])[0];
    assert!(r.duplicate);
    assert_eq!(
        (r.partition, r.offset),
        (batch[0].partition, batch[0].offset)
    );

    // ...and appended again once the window has passed.
    clock.advance(1);
    let late = produce(&topic, &[msg(Some("k"), "v3", Some("a"))])[0];
    assert!(!late.duplicate);
    assert_eq!(late.partition, first.partition);
    assert!(late.offset > first.offset);
    assert_eq!(end(&topic), 4);
    drop((topic, topics));
    clock.advance(5_000);
    let topics = open(dir.path(), &clock);
    let topic = topics.get("d").unwrap();
    assert!(!produce(&topic, &[msg(None, "n", Some("b"))])[0].duplicate);
}

#[test]
fn concurrent_retries_of_one_id_append_once() {
    let dir = tempfile::tempdir().unwrap();
    let topics = open(dir.path(), &ManualClock::at(1));
    let topic = topics.create(TopicSpec::new("c", 4)).unwrap();
    let results: Vec<Produced> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let topic = &topic;
                s.spawn(move || produce(topic, &[msg(None, &i.to_string(), Some("same"))])[0])
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| !r.duplicate).count(), 1);
    assert!(results
        .windows(2)
        .all(|w| (w[0].partition, w[0].offset) == (w[1].partition, w[1].offset)));
    assert_eq!(
        topic
            .partitions()
            .iter()
            .map(|p| p.high_watermark)
            .sum::<u64>(),
        1
    );
}

#[test]
fn committed_offsets_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1);
    let topics = open(dir.path(), &clock);
    let topic = topics.create(TopicSpec::new("o", 2)).unwrap();
    produce(&topic, &vec![msg(None, "m", None); 6]);
    topic.commit_offset("g1", 0, 2).unwrap();
    topic.commit_offset("g1", 1, 3).unwrap();
    topic.commit_offset("g1", 0, 3).unwrap();
    topic.commit_offset("g2", 1, 0).unwrap();
    assert!(matches!(
        topic.commit_offset("g1", 0, 4),
        Err(TopicError::OffsetOutOfRange {
            offset: 4,
            end: 3,
            ..
        })
    ));
    assert!(matches!(
        topic.commit_offset("g1", 2, 0),
        Err(TopicError::NoSuchPartition { .. })
    ));
    assert!(matches!(
        topic.commit_offset("bad name", 0, 0),
        Err(TopicError::InvalidSpec { .. })
    ));
    assert!(matches!(
        topic.committed_offsets("none"),
        Err(TopicError::NoSuchGroup { .. })
    ));
    drop((topic, topics));
    let topics = open(dir.path(), &clock);
    let topic = topics.get("o").unwrap();
    assert_eq!(
        topic.committed_offsets("g1").unwrap(),
        BTreeMap::from([(0, 3), (1, 3)])
    );
    assert_eq!(
        topic.committed_offsets("g2").unwrap(),
        BTreeMap::from([(1, 0)])
    );
}

#[test]
fn unfinished_creations_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1);
    std::fs::create_dir_all(dir.path().join("half/p0")).unwrap();
    std::fs::create_dir_all(dir.path().join("~deleted-x-1-0/p0")).unwrap();
    std::fs::create_dir_all(dir.path().join("not a topic")).unwrap();
    let (topics, report) = Topics::open(config(dir.path(), &clock)).unwrap();
    assert_eq!(report.topics, 0);
    assert_eq!(report.removed.len(), 2);
    assert!(!dir.path().join("half").exists());
    assert!(dir.path().join("not a topic").exists(), "left alone");
    // The name is usable.
    topics.create(TopicSpec::new("half", 1)).unwrap();
}

#[test]
fn fetch_pages_respect_limit_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let topics = open(dir.path(), &ManualClock::at(1));
    let topic = topics.create(TopicSpec::new("f", 1)).unwrap();
    let batch: Vec<Message> = (0..50)
        .map(|i| msg(None, &format!("{i:03}"), None))
        .collect();
    produce(&topic, &batch);
    let page = topic.fetch(0, 10, 5, 1 << 20).unwrap();
    let values: Vec<&str> = page
        .messages
        .iter()
        .map(|m| m.message.value.as_str())
        .collect();
    assert_eq!(values, ["010", "011", "012", "013", "014"]);
    assert_eq!((page.next_offset, page.high_watermark), (15, 50));
    // A tiny byte budget still returns one message.
    assert_eq!(topic.fetch(0, 49, 100, 1).unwrap().messages.len(), 1);
    let tail = topic.fetch(0, 50, 100, 1 << 20).unwrap();
    assert!(tail.messages.is_empty());
    assert_eq!(tail.next_offset, 50);
    assert_eq!(all(&topic, 0).len(), 50);
}

#[test]
fn the_rebuilt_dedup_map_keeps_the_newest_ids() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(100);
    let mut config = config(dir.path(), &clock);
    config.dedup_max_entries = 3;
    let topics = Topics::open(config.clone()).unwrap().0;
    let topic = topics.create(TopicSpec::new("b", 2)).unwrap();
    for id in ["a", "b", "c", "d", "e"] {
        produce(&topic, &[msg(None, id, Some(id))]);
        clock.advance(1);
    }
    drop((topic, topics));
    let topics = Topics::open(config).unwrap().0;
    let topic = topics.get("b").unwrap();
    for (id, duplicate) in [("e", true), ("d", true), ("c", true), ("b", false)] {
        assert_eq!(
            produce(&topic, &[msg(None, "x", Some(id))])[0].duplicate,
            duplicate,
            "{id}"
        );
    }
}

/// The node's partitions are bounded across topics (dead-letter topics count): creation
/// past the bound is refused with a reason that names it, nothing of the refused topic is
/// left, and deleting a topic makes room again.
#[test]
fn partitions_are_bounded_across_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_000);
    let topics = Topics::open(TopicsConfig {
        max_partitions: 10,
        ..config(dir.path(), &clock)
    })
    .unwrap()
    .0;
    topics.create(TopicSpec::new("a", 6)).unwrap();
    let refused = topics.create(TopicSpec::new("b", 5)).unwrap_err();
    let text = refused.to_string();
    assert!(
        matches!(
            refused,
            TopicError::InvalidSpec {
                field: "partitions",
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("at most 10 partitions") && text.contains("6 are in use"),
        "{text}"
    );
    assert!(topics.get("b").is_none() && !dir.path().join("b").exists());
    // A dead-letter topic takes partitions too: the pair must fit.
    let mut with_dlq = TopicSpec::new("c", 4);
    with_dlq.max_deliveries = Some(3);
    assert!(
        topics.create(with_dlq).is_err(),
        "4 + its dead-letter topic's over 10"
    );
    assert!(topics.get("c").is_none() && topics.get("c.dlq").is_none());
    topics.create(TopicSpec::new("b", 4)).unwrap();
    topics.delete("a").unwrap();
    topics.create(TopicSpec::new("d", 6)).unwrap();
}
