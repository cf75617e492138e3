//! Queue mode against real topics in temporary directories, with virtual time.

use super::*;
use crate::topics::{Clock, Message, TopicSpec, Topics, TopicsConfig};
use std::collections::BTreeMap;
use std::future::Future;
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

// ---- Transactions (`txn`): ack and produce, all or nothing ----

fn txn_request(receipts: &[&str], out: &[Message]) -> crate::topics::TxnRequest {
    crate::topics::TxnRequest {
        topic: "q".into(),
        group: "g".into(),
        acks: receipts.iter().map(|r| (*r).to_owned()).collect(),
        produce: if out.is_empty() {
            Vec::new()
        } else {
            vec![crate::topics::TxnOutput {
                topic: "out".into(),
                messages: out.to_vec(),
            }]
        },
    }
}

fn transact(
    topics: &Topics,
    receipts: &[&str],
    out: &[Message],
) -> Result<crate::topics::TxnResult, QueueError> {
    let mut p = topics.prepare_txn(txn_request(receipts, out))?;
    block_on(p.committed())?;
    block_on(topics.apply_txn(p)?.durable())
}

/// Every message of `out`, all partitions, offset order per partition.
fn all_values(topics: &Topics, name: &str) -> Vec<String> {
    let t = topics.get(name).unwrap();
    let mut v = Vec::new();
    for p in 0..t.spec().partitions {
        let page = t.fetch(p, 0, 10_000, 64 << 20).unwrap();
        v.extend(page.messages.into_iter().map(|m| m.message.value));
    }
    v.sort();
    v
}

fn with_out(topics: &Topics, partitions: u32) {
    let mut spec = TopicSpec::new("out", partitions);
    spec.fsync = TopicFsync::Never;
    topics.create(spec).unwrap();
}

#[test]
fn a_transaction_acks_and_produces_together() {
    let (_dir, clock, topics, topic) = setup(2);
    with_out(&topics, 3);
    produce(
        &topic,
        &[msg(Some("k"), "a"), msg(None, "b"), msg(None, "c")],
    );
    let got = receive(&topic, 10, 1000);
    assert_eq!(got.len(), 3);
    let outs = [msg(Some("k"), "A1"), msg(Some("k"), "A2"), msg(None, "B")];
    let r = transact(&topics, &[&got[0].receipt, &got[1].receipt], &outs).unwrap();
    assert_eq!(r.acked, 2);
    assert_eq!(r.produced.len(), 1);
    assert_eq!(r.produced[0].len(), 3);
    // One key's outputs: one partition, request order.
    assert_eq!(r.produced[0][0].partition, r.produced[0][1].partition);
    assert!(r.produced[0][0].offset < r.produced[0][1].offset);
    assert_eq!(all_values(&topics, "out"), ["A1", "A2", "B"]);
    // Tags stay out of what consumers see.
    let out = topics.get("out").unwrap();
    let p = r.produced[0][0].partition;
    let page = out.fetch(p, 0, 10, 1 << 20).unwrap();
    assert!(page.messages.iter().all(|m| m.message.headers.is_empty()));
    // The acked receipts are spent; the third delivery is untouched.
    assert!(matches!(
        ack(&topic, &[&got[0].receipt])[0],
        Err(QueueError::ReceiptExpired)
    ));
    assert!(ack(&topic, &[&got[2].receipt])[0].is_ok());
    clock.advance(10_000);
    assert!(
        receive(&topic, 10, 1000).is_empty(),
        "acked by the transaction"
    );
}

#[test]
fn a_transaction_with_one_stale_receipt_does_nothing() {
    let (_dir, clock, topics, topic) = setup(1);
    with_out(&topics, 1);
    produce(&topic, &[msg(None, "a"), msg(None, "b")]);
    let got = receive(&topic, 10, 1000);
    assert!(ack(&topic, &[&got[1].receipt])[0].is_ok());
    let e = transact(
        &topics,
        &[&got[0].receipt, &got[1].receipt],
        &[msg(None, "x")],
    );
    assert!(matches!(e, Err(QueueError::ReceiptExpired)), "{e:?}");
    assert!(all_values(&topics, "out").is_empty());
    // The good receipt was given back, current as before.
    let e = transact(&topics, &[&got[0].receipt, &got[0].receipt], &[]);
    assert!(
        matches!(
            e,
            Err(QueueError::Topic(TopicError::InvalidSpec {
                field: "ack",
                ..
            }))
        ),
        "a receipt twice: {e:?}"
    );
    assert!(topic.extend("g", &got[0].receipt, 1000).is_ok());
    // Limits and unknown names, checked before anything is taken.
    assert!(matches!(
        transact(&topics, &[], &[]),
        Err(QueueError::Topic(TopicError::InvalidSpec {
            field: "ack",
            ..
        }))
    ));
    let mut req = txn_request(&[&got[0].receipt], &[msg(None, "x")]);
    req.produce[0].topic = "nope".into();
    assert!(matches!(
        topics.prepare_txn(req),
        Err(QueueError::Topic(TopicError::NoSuchTopic(n))) if n == "nope"
    ));
    let too_many: Vec<Message> = (0..=MAX_TXN_MESSAGES).map(|_| msg(None, "m")).collect();
    assert!(matches!(
        transact(&topics, &[&got[0].receipt], &too_many),
        Err(QueueError::Topic(TopicError::InvalidSpec {
            field: "produce",
            ..
        }))
    ));
    let mut req = txn_request(&[&got[0].receipt], &[]);
    req.group = "other".into();
    assert!(matches!(
        topics.prepare_txn(req),
        Err(QueueError::NoSuchGroup { .. })
    ));
    // While a transaction holds a delivery, it is neither redelivered nor ackable.
    let mut p = topics
        .prepare_txn(txn_request(&[&got[0].receipt], &[msg(None, "y")]))
        .unwrap();
    clock.advance(5_000);
    assert!(receive(&topic, 10, 1000).is_empty());
    assert!(matches!(
        ack(&topic, &[&got[0].receipt])[0],
        Err(QueueError::ReceiptExpired)
    ));
    block_on(p.committed()).unwrap();
    block_on(topics.apply_txn(p).unwrap().durable()).unwrap();
    assert_eq!(all_values(&topics, "out"), ["y"]);
}

use crate::topics::txn::MAX_TXN_MESSAGES;

#[test]
fn a_committed_transaction_is_completed_at_open_exactly_once() {
    let (dir, clock, topics, topic) = setup(2);
    with_out(&topics, 2);
    let inputs: Vec<Message> = (0..4).map(|i| msg(None, &format!("in{i}"))).collect();
    produce(&topic, &inputs);
    let got = receive(&topic, 10, 60_000);
    assert_eq!(got.len(), 4);
    // Transaction 1: committed, then the process "dies" before applying anything.
    let outs1: Vec<Message> = (0..3).map(|i| msg(None, &format!("one{i}"))).collect();
    let mut p1 = topics
        .prepare_txn(txn_request(&[&got[0].receipt, &got[1].receipt], &outs1))
        .unwrap();
    block_on(p1.committed()).unwrap();
    // Transaction 2: committed, and only its first output was appended before "death".
    let outs2: Vec<Message> = (0..3)
        .map(|i| msg(Some(&format!("k{i}")), &format!("two{i}")))
        .collect();
    let mut p2 = topics
        .prepare_txn(txn_request(&[&got[2].receipt], &outs2))
        .unwrap();
    block_on(p2.committed()).unwrap();
    {
        let out = topics.get("out").unwrap();
        let parts = p2.commit.outputs[0].partitions.clone();
        let tagged = crate::topics::txn::Tagged {
            txn: p2.txn,
            partitions: &parts[..1],
            indexes: &[0],
        };
        out.append_inner(&outs2[..1], super::super::Origin::Producer, Some(&tagged))
            .unwrap();
    }
    // Transaction 3: fully applied, never checkpointed.
    let mut p3 = topics
        .prepare_txn(txn_request(&[&got[3].receipt], &[msg(None, "three")]))
        .unwrap();
    block_on(p3.committed()).unwrap();
    block_on(topics.apply_txn(p3).unwrap().durable()).unwrap();
    // A checkpoint now lists 1 and 2 as pending below it: they are redone, 3 is not.
    topics.checkpoint_transactions().unwrap();
    drop((p1, p2, topic, topics));

    let (topics, report) = Topics::open(TopicsConfig {
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        ..TopicsConfig::new(dir.path())
    })
    .unwrap();
    assert_eq!(report.transactions, 2);
    let mut want: Vec<String> = ["one0", "one1", "one2", "two0", "two1", "two2", "three"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    want.sort();
    assert_eq!(all_values(&topics, "out"), want, "each output once");
    let topic = topics.get("q").unwrap();
    clock.advance(100_000);
    assert!(receive(&topic, 10, 1000).is_empty(), "every input acked");
    // The recovery checkpointed: a second open has nothing to redo.
    drop((topic, topics));
    let (topics, report) = Topics::open(TopicsConfig {
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        ..TopicsConfig::new(dir.path())
    })
    .unwrap();
    assert_eq!(report.transactions, 0);
    assert_eq!(all_values(&topics, "out"), want);
}

#[test]
fn checkpoints_bound_the_work_at_open() {
    let (dir, clock, topics, topic) = setup(1);
    with_out(&topics, 1);
    let inputs: Vec<Message> = (0..50).map(|i| msg(None, &format!("in{i}"))).collect();
    produce(&topic, &inputs);
    for (i, d) in receive(&topic, 50, 60_000).iter().enumerate() {
        transact(&topics, &[&d.receipt], &[msg(None, &format!("out{i}"))]).unwrap();
        if i == 39 {
            topics.checkpoint_transactions().unwrap();
        }
    }
    drop((topic, topics));
    let (topics, report) = Topics::open(TopicsConfig {
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        ..TopicsConfig::new(dir.path())
    })
    .unwrap();
    assert_eq!(report.transactions, 10, "only those after the checkpoint");
    assert_eq!(all_values(&topics, "out").len(), 50);
}

#[test]
fn consumer_lag_and_in_flight_per_group() {
    let (_dir, _clock, _topics, topic) = setup(1);
    let batch: Vec<Message> = (0..5).map(|i| msg(None, &format!("m{i}"))).collect();
    produce(&topic, &batch);
    assert!(topic.consumer_lag().is_empty(), "no group yet");
    let got = receive(&topic, 2, 60_000);
    assert!(ack(&topic, &[&got[1].receipt])[0].is_ok());
    topic.commit_offset("reader", 0, 3).unwrap();
    topic.commit_offset("__internal", 0, 0).unwrap();
    let lag = topic.consumer_lag();
    assert_eq!(
        lag,
        vec![
            GroupLag {
                group: "reader".into(),
                mode: "log",
                lag: vec![(0, 2)],
                in_flight: 0
            },
            GroupLag {
                group: "g".into(),
                mode: "queue",
                lag: vec![(0, 4)],
                in_flight: 1
            },
        ]
    );
}
