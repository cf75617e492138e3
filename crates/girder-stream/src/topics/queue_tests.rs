//! Queue mode against real topics in temporary directories, with virtual time.

use super::*;
use crate::topics::{Clock, Message, TopicSpec, Topics, TopicsConfig};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Default)]
struct ManualClock(AtomicU64);

impl ManualClock {
    fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Topics {
    let config = TopicsConfig {
        clock: Arc::clone(clock) as Arc<dyn Clock>,
        ..TopicsConfig::new(dir)
    };
    Topics::open(config).unwrap().0
}

fn setup(partitions: u32) -> (tempfile::TempDir, Arc<ManualClock>, Topics, Arc<Topic>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicU64::new(1_000_000)));
    let topics = open(dir.path(), &clock);
    let mut spec = TopicSpec::new("q", partitions);
    spec.fsync = TopicFsync::Never;
    let topic = topics.create(spec).unwrap();
    (dir, clock, topics, topic)
}

fn msg(key: Option<&str>, value: &str) -> Message {
    Message {
        key: key.map(str::to_owned),
        value: value.to_owned(),
        ..Message::default()
    }
}

/// A minimal executor: produce and ack await only the log's watch channel.
fn block_on<F: Future>(f: F) -> F::Output {
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

fn produce(topic: &Topic, messages: &[Message]) {
    block_on(topic.produce(messages)).unwrap();
}

fn receive(topic: &Topic, max: usize, visibility: u64) -> Vec<Delivery> {
    topic
        .receive(
            "g",
            ReceiveOptions {
                max_messages: max,
                visibility_timeout_ms: visibility,
            },
        )
        .unwrap()
}

fn ack(topic: &Topic, receipts: &[&str]) -> Vec<Result<(), QueueError>> {
    let receipts: Vec<String> = receipts.iter().map(|r| (*r).to_owned()).collect();
    block_on(topic.ack("g", &receipts).unwrap().durable()).unwrap()
}

fn values(ds: &[Delivery]) -> Vec<&str> {
    ds.iter().map(|d| d.stored.message.value.as_str()).collect()
}

#[test]
fn redelivery_after_the_visibility_timeout() {
    let (_dir, clock, _topics, topic) = setup(1);
    assert!(receive(&topic, 10, 1000).is_empty());
    produce(&topic, &[msg(None, "a")]);
    let first = receive(&topic, 10, 1000);
    assert_eq!(values(&first), ["a"]);
    assert_eq!(first[0].delivery_count, 1);
    clock.advance(999);
    assert!(receive(&topic, 10, 1000).is_empty(), "still hidden");
    clock.advance(1);
    let second = receive(&topic, 10, 1000);
    assert_eq!(values(&second), ["a"]);
    assert_eq!(second[0].delivery_count, 2);
    assert_eq!(second[0].stored.offset, first[0].stored.offset);
    // The first receipt names a delivery that is over.
    let r = ack(&topic, &[&first[0].receipt, &second[0].receipt]);
    assert!(matches!(r[0], Err(QueueError::ReceiptExpired)), "{r:?}");
    assert!(r[1].is_ok());
    assert!(matches!(
        topic.nack("g", &first[0].receipt, 0),
        Err(QueueError::ReceiptExpired)
    ));
    assert!(matches!(
        topic.extend("g", &second[0].receipt, 10),
        Err(QueueError::ReceiptExpired)
    ));
    clock.advance(10_000_000);
    assert!(
        receive(&topic, 10, 1000).is_empty(),
        "acked never comes back"
    );
}

#[test]
fn acks_survive_reopen_and_the_rest_comes_back() {
    let (dir, clock, topics, topic) = setup(2);
    let batch: Vec<Message> = (0..6).map(|i| msg(None, &format!("m{i}"))).collect();
    produce(&topic, &batch);
    let got = receive(&topic, 10, 60_000);
    assert_eq!(got.len(), 6);
    // Partitions take turns in the answer.
    assert_ne!(got[0].partition, got[1].partition);
    let acked: Vec<&str> = got.iter().step_by(2).map(|d| d.receipt.as_str()).collect();
    assert!(ack(&topic, &acked).iter().all(Result::is_ok));
    let mut rest: Vec<String> = got
        .iter()
        .skip(1)
        .step_by(2)
        .map(|d| d.stored.message.value.clone())
        .collect();
    rest.sort();
    let old = got[1].receipt.clone();
    drop((topic, topics));

    let topics = open(dir.path(), &clock);
    let topic = topics.get("q").unwrap();
    // In-flight state is not durable: the unacked ones are visible at once, counted anew.
    let again = receive(&topic, 10, 60_000);
    let mut back: Vec<String> = again
        .iter()
        .map(|d| d.stored.message.value.clone())
        .collect();
    back.sort();
    assert_eq!(back, rest);
    assert!(again.iter().all(|d| d.delivery_count == 1));
    // A receipt from before the restart is never taken for a new delivery.
    assert!(matches!(
        ack(&topic, &[&old])[0],
        Err(QueueError::ReceiptExpired)
    ));
    let receipts: Vec<&str> = again.iter().map(|d| d.receipt.as_str()).collect();
    assert!(ack(&topic, &receipts).iter().all(Result::is_ok));
    clock.advance(120_000);
    assert!(receive(&topic, 10, 1000).is_empty());
}

#[test]
fn nack_with_delay_and_extend() {
    let (_dir, clock, _topics, topic) = setup(1);
    produce(&topic, &[msg(None, "a"), msg(None, "b")]);
    let got = receive(&topic, 10, 1000);
    assert_eq!(values(&got), ["a", "b"]);
    topic.nack("g", &got[0].receipt, 500).unwrap();
    // A nacked delivery's receipt is spent.
    assert!(matches!(
        topic.nack("g", &got[0].receipt, 0),
        Err(QueueError::ReceiptExpired)
    ));
    clock.advance(300);
    topic.extend("g", &got[1].receipt, 1000).unwrap();
    clock.advance(199);
    assert!(receive(&topic, 10, 1000).is_empty());
    clock.advance(1);
    let a = receive(&topic, 10, 1000);
    assert_eq!(values(&a), ["a"]);
    assert_eq!(a[0].delivery_count, 2);
    // b: received at 0 for 1000, extended at 300 for 1000 → visible at 1300, not 1000.
    clock.advance(700);
    assert!(receive(&topic, 10, 1000).is_empty(), "extended");
    clock.advance(100);
    let b = receive(&topic, 10, 1000);
    assert_eq!(values(&b), ["b"]);
    assert_eq!(b[0].delivery_count, 2);
    // A nack with no delay is visible at once.
    topic.nack("g", &b[0].receipt, 0).unwrap();
    assert_eq!(receive(&topic, 10, 1000)[0].delivery_count, 3);
}

#[test]
fn errors() {
    let (_dir, _clock, _topics, topic) = setup(1);
    assert!(matches!(
        topic.ack("nobody", &[]),
        Err(QueueError::NoSuchGroup { .. })
    ));
    assert!(matches!(
        topic.nack("nobody", "1.0.0.1", 0),
        Err(QueueError::NoSuchGroup { .. })
    ));
    assert!(receive(&topic, 1, 1).is_empty());
    assert!(matches!(
        topic.ack("g", &["nonsense".to_owned()]),
        Err(QueueError::BadReceipt(_))
    ));
    // Partition 5 of a one-partition topic was never handed out.
    assert!(matches!(
        topic.extend("g", "1.5.0.1", 10),
        Err(QueueError::BadReceipt(_))
    ));
    assert!(matches!(
        topic.extend("g", "1.0.0.1", 10),
        Err(QueueError::ReceiptExpired)
    ));
    for (max, vis) in [(0, 1), (101, 1), (1, 0), (1, MAX_VISIBILITY_MS + 1)] {
        let r = topic.receive(
            "g",
            ReceiveOptions {
                max_messages: max,
                visibility_timeout_ms: vis,
            },
        );
        assert!(
            matches!(r, Err(QueueError::Topic(TopicError::InvalidSpec { .. }))),
            "{max} {vis}"
        );
    }
    assert!(matches!(
        topic.receive(
            "bad/name",
            ReceiveOptions {
                max_messages: 1,
                visibility_timeout_ms: 1
            }
        ),
        Err(QueueError::Topic(TopicError::InvalidSpec {
            field: "group",
            ..
        }))
    ));
}

#[test]
fn a_key_waits_for_its_head() {
    let (_dir, clock, _topics, topic) = setup(1);
    produce(
        &topic,
        &[
            msg(Some("a"), "a0"),
            msg(Some("a"), "a1"),
            msg(Some("b"), "b0"),
            msg(None, "n0"),
            msg(Some("a"), "a2"),
        ],
    );
    let got = receive(&topic, 10, 1000);
    assert_eq!(values(&got), ["a0", "b0", "n0"]);
    // a1 waits while a0 is in flight, and while it waits for redelivery.
    assert!(receive(&topic, 10, 1000).is_empty());
    clock.advance(1000);
    let again = receive(&topic, 10, 1000);
    assert_eq!(values(&again), ["a0", "b0", "n0"]);
    topic.nack("g", &again[0].receipt, 5000).unwrap();
    assert!(ack(&topic, &[&again[1].receipt, &again[2].receipt])
        .iter()
        .all(Result::is_ok));
    assert!(
        receive(&topic, 10, 1000).is_empty(),
        "a1 waits behind a delayed a0"
    );
    clock.advance(5000);
    let a0 = receive(&topic, 10, 1000);
    assert_eq!(values(&a0), ["a0"]);
    assert!(ack(&topic, &[&a0[0].receipt])[0].is_ok());
    assert_eq!(values(&receive(&topic, 10, 1000)), ["a1"]);
}

#[test]
fn a_produce_wakes_a_waiting_receiver() {
    let (_dir, _clock, _topics, topic) = setup(1);
    let notified = topic.queue_wake().notified();
    let mut notified = std::pin::pin!(notified);
    notified.as_mut().enable();
    assert!(receive(&topic, 1, 1000).is_empty());
    std::thread::scope(|s| {
        s.spawn(|| produce(&topic, &[msg(None, "x")]));
        block_on(notified);
    });
    assert_eq!(values(&receive(&topic, 1, 1000)), ["x"]);
}

#[test]
fn many_acks_compact_the_log_and_survive_reopen() {
    let (dir, clock, topics, topic) = setup(1);
    let n = COMPACT_MIN_RECORDS as usize + 300;
    let batch: Vec<Message> = (0..n).map(|i| msg(None, &format!("{i}"))).collect();
    for chunk in batch.chunks(1000) {
        produce(&topic, chunk);
    }
    // Leave offset 0 unacked so the snapshot carries offsets above the prefix.
    let first = receive(&topic, 1, 1_000_000);
    let mut acked = 0;
    loop {
        let got = receive(&topic, 100, 1_000_000);
        if got.is_empty() {
            break;
        }
        for d in &got {
            assert!(ack(&topic, &[&d.receipt])[0].is_ok());
            acked += 1;
        }
    }
    assert_eq!(acked, n - 1);
    drop((first, topic, topics));
    let gdir = dir.path().join("q").join(GROUPS_DIR).join("g");
    let (log, _) = Log::open(&gdir, LogConfig::default()).unwrap();
    assert!(log.start_offset() > 0, "compaction moved the log start");
    drop(log);
    let topics = open(dir.path(), &clock);
    let topic = topics.get("q").unwrap();
    let got = receive(&topic, 100, 1000);
    assert_eq!(values(&got), ["0"]);
    assert!(ack(&topic, &[&got[0].receipt])[0].is_ok());
    clock.advance(10_000);
    assert!(receive(&topic, 100, 1000).is_empty());
}

/// Many receivers on threads, random batch sizes, some nacks: a key is never in flight
/// twice, every delivery of a key is its lowest unacked offset (so offsets increase per
/// key), and every message is acked exactly once.
#[test]
fn per_key_order_with_many_concurrent_receivers() {
    let (_dir, _clock, _topics, topic) = setup(4);
    let keys = 25;
    let n = 2000;
    let batch: Vec<Message> = (0..n)
        .map(|i| {
            let key = (i % 5 != 0).then(|| format!("k{}", fastrand::usize(..keys)));
            msg(key.as_deref(), &format!("{i}"))
        })
        .collect();
    for chunk in batch.chunks(500) {
        produce(&topic, chunk);
    }
    // Per key, its offsets in order (all of a key's messages are in one partition).
    let mut order: BTreeMap<String, VecDeque<u64>> = BTreeMap::new();
    for p in 0..4 {
        let mut from = 0;
        loop {
            let page = topic.fetch(p, from, 1000, 1 << 20).unwrap();
            if page.messages.is_empty() {
                break;
            }
            from = page.next_offset;
            for m in page.messages {
                if let Some(k) = m.message.key {
                    order.entry(k).or_default().push_back(m.offset);
                }
            }
        }
    }
    struct Model {
        order: BTreeMap<String, VecDeque<u64>>,
        in_flight: BTreeSet<String>,
        acked: BTreeSet<(u32, u64)>,
        deliveries: usize,
    }
    let model = Mutex::new(Model {
        order,
        in_flight: BTreeSet::new(),
        acked: BTreeSet::new(),
        deliveries: 0,
    });
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| loop {
                if lock(&model).acked.len() == n {
                    return;
                }
                let got = receive(&topic, fastrand::usize(1..=10), MAX_VISIBILITY_MS);
                let mut m = lock(&model);
                m.deliveries += got.len();
                for d in &got {
                    assert!(
                        !m.acked.contains(&(d.partition, d.stored.offset)),
                        "an acked message came back"
                    );
                    if let Some(k) = &d.stored.message.key {
                        assert!(m.in_flight.insert(k.clone()), "key {k} in flight twice");
                        assert_eq!(
                            m.order[k].front(),
                            Some(&d.stored.offset),
                            "key {k} out of order"
                        );
                    }
                }
                drop(m);
                let mut acks = Vec::new();
                for d in &got {
                    let nack = fastrand::u8(..10) == 0;
                    let mut m = lock(&model);
                    if let Some(k) = &d.stored.message.key {
                        m.in_flight.remove(k);
                        if !nack {
                            m.order.get_mut(k).unwrap().pop_front();
                        }
                    }
                    if nack {
                        drop(m);
                        topic.nack("g", &d.receipt, 0).unwrap();
                    } else {
                        assert!(m.acked.insert((d.partition, d.stored.offset)));
                        acks.push(d.receipt.clone());
                    }
                }
                if !acks.is_empty() {
                    let results = block_on(topic.ack("g", &acks).unwrap().durable()).unwrap();
                    assert!(results.iter().all(Result::is_ok), "{results:?}");
                }
            });
        }
    });
    let m = lock(&model);
    assert_eq!(m.acked.len(), n);
    assert!(m.deliveries > n, "some nacks were redelivered");
    assert!(m.order.values().all(VecDeque::is_empty));
    drop(m);
    assert!(receive(&topic, 100, 1).is_empty());
}

#[test]
fn retention_drops_deleted_messages_from_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(AtomicU64::new(1_000_000)));
    let config = TopicsConfig {
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        segment_bytes: 4096,
        ..TopicsConfig::new(dir.path())
    };
    let topics = Topics::open(config).unwrap().0;
    let mut spec = TopicSpec::new("q", 1);
    spec.fsync = TopicFsync::Never;
    spec.retention_bytes = Some(4096);
    let topic = topics.create(spec).unwrap();
    let batch: Vec<Message> = (0..200)
        .map(|i| msg(Some("k"), &format!("{i:0>100}")))
        .collect();
    produce(&topic, &batch);
    let first = receive(&topic, 10, 1000);
    assert_eq!(first.len(), 1, "one key: only its head");
    assert_eq!(first[0].stored.offset, 0);
    topics.enforce_retention().unwrap();
    let start = topic.partitions()[0].start_offset;
    assert!(start > 0, "retention deleted segments");
    // The deleted head no longer holds the key: the first kept offset is next.
    let next = receive(&topic, 10, 1000);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].stored.offset, start);
    assert!(matches!(
        ack(&topic, &[&first[0].receipt])[0],
        Err(QueueError::ReceiptExpired)
    ));
    assert!(ack(&topic, &[&next[0].receipt])[0].is_ok());
    assert_eq!(receive(&topic, 10, 1000)[0].stored.offset, start + 1);
}
