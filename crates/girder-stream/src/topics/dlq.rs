//! Dead letters: a topic with `max_deliveries = N` moves a message that queue mode
//! would hand to a group for the (N+1)-th time to its *dead-letter topic* instead, and
//! acks it in that group. The dead-letter topic is a normal topic named `<topic>.dlq`
//! (1 partition, the topic's fsync policy, no deduplication), created with the topic.
//! [`Topic::redrive`] moves dead letters back.
//!
//! A dead letter keeps the message's key, value, headers and id and gains the headers
//! `x-dlq-topic`, `x-dlq-partition`, `x-dlq-offset`, `x-dlq-delivery-count`,
//! `x-dlq-group` and `x-dlq-last-error` (the error of the latest nack, cut to
//! [`MAX_ERROR_BYTES`]; empty when the visibility timeout ran out instead).
//!
//! # Invariants
//! - **Nothing lost, at-least-once.** The dead letter is appended to the dead-letter
//!   topic and made durable (under the policy) *before* the ack is written to the
//!   group's log and made durable. A crash between the two leaves the message unacked:
//!   after the restart it is delivered again and may be dead-lettered a second time.
//!   Dead letters carry their origin (topic, partition, offset, group), so a consumer
//!   of the dead-letter topic can drop such duplicates.
//! - **Delivery counts are per process life** (see [`super`]): after a restart a
//!   message gets `max_deliveries` fresh deliveries before it is dead-lettered.
//! - **A dead letter is redriven once.** A redrive re-produces dead letters to the
//!   topic (same key, so the same partition, at a new offset; the `x-dlq-*` headers
//!   removed; its id kept but not deduplicated) and then commits the dead-letter
//!   topic's offset for the internal group [`REDRIVE_GROUP`]. Redrives of one topic
//!   are serialized. A crash between the re-produce and the commit redrives those
//!   messages again (at-least-once). A redriven message is a new message on the topic:
//!   every group sees it, not only the one that dead-lettered it.
//! - **Depth** ([`Topic::dlq_depth`]) is the dead letters not yet redriven: the
//!   dead-letter topic's high watermark minus [`REDRIVE_GROUP`]'s committed offset.

use super::{lock, Queue, QueueError, State, KIND_ACKS, VERSION};
use crate::topics::{
    Message, Origin, Produced, Topic, TopicError, TopicFsync, TopicSpec, MAX_NAME_LEN,
};
use std::collections::BTreeSet;

/// What a dead-letter topic's name adds to its topic's.
pub const DLQ_SUFFIX: &str = ".dlq";
/// The dead-letter topic's consumer group whose committed offset marks what was
/// redriven.
pub const REDRIVE_GROUP: &str = "__redrive";
/// Most messages one redrive moves.
pub const MAX_REDRIVE: usize = 10_000;
/// Longest `x-dlq-last-error`, in bytes (cut at a character boundary).
pub const MAX_ERROR_BYTES: usize = 1024;
/// Prefix of the headers a dead letter gains (removed again by a redrive).
pub const HEADER_PREFIX: &str = "x-dlq-";
/// Rounds one receive makes per partition while dead-lettering frees keys (each round
/// dead-letters at least one message, so this bounds a receive's extra work).
pub(super) const MAX_ROUNDS: usize = 4;
/// Messages one redrive step re-produces and commits.
const REDRIVE_PAGE: usize = 1000;
/// Record bytes one redrive step reads.
const REDRIVE_READ_BYTES: usize = 1 << 20;

// The name rule leaves room for the suffix on names of up to this many characters.
const _: () = assert!(DLQ_SUFFIX.len() < MAX_NAME_LEN);

/// `<topic>.dlq`.
pub fn dlq_name(topic: &str) -> String {
    format!("{topic}{DLQ_SUFFIX}")
}

/// The settings of `topic`'s dead-letter topic.
pub(crate) fn dlq_spec(topic: &TopicSpec) -> TopicSpec {
    let mut spec = TopicSpec::new(dlq_name(&topic.name), 1);
    spec.fsync = topic.fsync;
    // Dead letters keep their ids; two of one id are two failures, not a retry.
    spec.dedup_window_ms = 0;
    spec
}

/// `error` cut to at most [`MAX_ERROR_BYTES`] bytes, at a character boundary.
pub(crate) fn truncate_error(error: &str) -> String {
    let mut end = error.len().min(MAX_ERROR_BYTES);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    error[..end].to_owned()
}

impl Topic {
    /// True when a message delivered `deliveries` times is to be dead-lettered rather
    /// than delivered again.
    pub(super) fn dead_letter_due(&self, deliveries: u32) -> bool {
        self.dlq.get().is_some()
            && self
                .spec
                .max_deliveries
                .is_some_and(|max| deliveries >= max)
    }

    /// Moves the pending message `stored` of partition `p` to the dead-letter topic,
    /// durably, then acks it in `q`'s group, durably (see the module docs). On an error
    /// the message stays pending and unacked.
    pub(super) fn dead_letter(
        &self,
        q: &Queue,
        st: &mut State,
        p: usize,
        stored: crate::topics::StoredMessage,
    ) -> Result<(), QueueError> {
        let Some(dlq) = self.dlq.get() else {
            return Ok(());
        };
        let offset = stored.offset;
        let Some(entry) = st.parts[p].pending.get(&offset) else {
            return Ok(());
        };
        let mut message = stored.message;
        let h = &mut message.headers;
        h.insert(format!("{HEADER_PREFIX}topic"), self.spec.name.clone());
        h.insert(format!("{HEADER_PREFIX}partition"), p.to_string());
        h.insert(format!("{HEADER_PREFIX}offset"), offset.to_string());
        h.insert(
            format!("{HEADER_PREFIX}delivery-count"),
            entry.deliveries.to_string(),
        );
        h.insert(format!("{HEADER_PREFIX}group"), q.group.clone());
        h.insert(
            format!("{HEADER_PREFIX}last-error"),
            entry.last_error.clone().unwrap_or_default(),
        );
        dlq.append_durable(std::slice::from_ref(&message))?;

        let mut record = vec![VERSION, KIND_ACKS, 1, 0, 0, 0];
        record.extend_from_slice(&(p as u32).to_le_bytes());
        record.extend_from_slice(&offset.to_le_bytes());
        q.log.append(self.clock.now_ms(), &record)?;
        if self.spec.fsync != TopicFsync::Interval {
            q.log.sync()?;
        }
        let part = &mut st.parts[p];
        if let Some(e) = part.pending.remove(&offset) {
            if let Some(k) = e.key {
                if let Some(qk) = part.keys.get_mut(&k) {
                    qk.retain(|o| *o != offset);
                    if qk.is_empty() {
                        part.keys.remove(&k);
                    }
                }
            }
            st.pending -= 1;
        }
        let part = &mut st.parts[p];
        part.acked.insert(offset);
        part.settle_prefix();
        st.since_snapshot += 1;
        // The key's next message may be deliverable now.
        self.wake.notify_waiters();
        Ok(())
    }

    /// Appends messages that were checked when first produced (no limits, no dedup) and
    /// waits, blocking, until they are durable under the topic's policy.
    fn append_durable(&self, messages: &[Message]) -> Result<Vec<Produced>, TopicError> {
        let produced = self.append_as(messages, Origin::Internal)?;
        if self.spec.fsync != TopicFsync::Interval {
            let partitions: BTreeSet<u32> = produced.iter().map(|r| r.partition).collect();
            for p in partitions {
                self.log(p)?.sync()?;
            }
        }
        self.wake.notify_waiters();
        Ok(produced)
    }

    /// The dead-letter topic, when the topic has one.
    pub fn dead_letter_topic(&self) -> Option<&std::sync::Arc<Topic>> {
        self.dlq.get()
    }

    /// Dead letters not yet redriven; `None` without a dead-letter topic.
    pub fn dlq_depth(&self) -> Option<u64> {
        let dlq = self.dlq.get()?;
        let log = dlq.logs.first()?;
        let hw = dlq.high_watermark(log);
        let from = redriven_to(dlq).max(log.start_offset());
        Some(hw.saturating_sub(from))
    }

    /// Moves up to `max_messages` dead letters back to this topic, oldest first, and
    /// returns how many. Blocking (appends, fsyncs, writes the offsets file).
    ///
    /// # Errors
    /// [`TopicError::NoDeadLetterTopic`], `max_messages` outside 1..=[`MAX_REDRIVE`], a
    /// deleted topic, or storage (then the messages re-produced so far may be redriven
    /// again by the next redrive).
    pub fn redrive(&self, max_messages: usize) -> Result<usize, TopicError> {
        self.check_live()?;
        let dlq = self
            .dlq
            .get()
            .ok_or_else(|| TopicError::NoDeadLetterTopic(self.spec.name.clone()))?;
        if !(1..=MAX_REDRIVE).contains(&max_messages) {
            return Err(TopicError::InvalidSpec {
                field: "max_messages",
                reason: format!("must be between 1 and {MAX_REDRIVE} (got {max_messages})"),
            });
        }
        let _one_at_a_time = lock(&self.redrive);
        let start = dlq.logs.first().map_or(0, girder_log::Log::start_offset);
        let mut from = redriven_to(dlq).max(start);
        let mut moved = 0;
        while moved < max_messages {
            let want = (max_messages - moved).min(REDRIVE_PAGE);
            let page = dlq.fetch(0, from, want, REDRIVE_READ_BYTES)?;
            if page.messages.is_empty() {
                break;
            }
            let messages: Vec<Message> = page
                .messages
                .into_iter()
                .map(|m| {
                    let mut message = m.message;
                    message.headers.retain(|k, _| !k.starts_with(HEADER_PREFIX));
                    message
                })
                .collect();
            self.append_durable(&messages)?;
            from = page.next_offset;
            dlq.commit_offset(REDRIVE_GROUP, 0, from)?;
            moved += messages.len();
        }
        Ok(moved)
    }
}

/// The dead-letter offset below which everything was redriven.
fn redriven_to(dlq: &Topic) -> u64 {
    lock(&dlq.offsets)
        .get(REDRIVE_GROUP)
        .and_then(|g| g.get(&0))
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::{Clock, Delivery, ReceiveOptions, Topics, TopicsConfig};
    use std::collections::BTreeMap;
    use std::future::Future;
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[derive(Debug)]
    struct ManualClock(AtomicU64);

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

    fn spec(name: &str, partitions: u32, max_deliveries: Option<u32>) -> TopicSpec {
        let mut spec = TopicSpec::new(name, partitions);
        spec.fsync = TopicFsync::Always;
        spec.max_deliveries = max_deliveries;
        spec
    }

    /// A minimal executor: produce awaits only the log's watch channel.
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

    fn msg(key: &str, value: &str) -> Message {
        Message {
            key: Some(key.to_owned()),
            value: value.to_owned(),
            headers: BTreeMap::from([("h".to_owned(), value.to_owned())]),
            id: Some(format!("id-{value}")),
        }
    }

    fn receive(topic: &Topic) -> Vec<Delivery> {
        let opts = ReceiveOptions {
            max_messages: 10,
            visibility_timeout_ms: 1000,
        };
        topic.receive("g", opts).unwrap()
    }

    fn values(ds: &[Delivery]) -> Vec<(&str, u32)> {
        let mut v: Vec<(&str, u32)> = ds
            .iter()
            .map(|d| (d.stored.message.value.as_str(), d.delivery_count))
            .collect();
        v.sort_unstable();
        v
    }

    fn all(topic: &Topic) -> Vec<(u32, crate::topics::StoredMessage)> {
        let mut out = Vec::new();
        for p in 0..topic.spec().partitions {
            for m in topic.fetch(p, 0, 1000, 1 << 20).unwrap().messages {
                out.push((p, m));
            }
        }
        out
    }

    #[test]
    fn dead_letters_after_max_deliveries_and_redrive_once() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicU64::new(1_000_000)));
        let topics = open(dir.path(), &clock);
        let topic = topics.create(spec("q", 4, Some(2))).unwrap();
        let dlq = topics.get("q.dlq").expect("created with the topic");
        assert_eq!(dlq.spec().partitions, 1);
        assert_eq!(dlq.spec().fsync, TopicFsync::Always);
        block_on(topic.produce(&[msg("k1", "a"), msg("k1", "b"), msg("k2", "c")])).unwrap();
        let pa = topic.partition_for_key(b"k1");

        // Delivery 1 of the heads, visibility runs out; delivery 2, `c` nacked with an error.
        assert_eq!(values(&receive(&topic)), [("a", 1), ("c", 1)]);
        clock.0.fetch_add(1000, Ordering::SeqCst);
        let second = receive(&topic);
        assert_eq!(values(&second), [("a", 2), ("c", 2)]);
        let c = second
            .iter()
            .find(|d| d.stored.message.value == "c")
            .unwrap();
        topic
            .nack_with_error("g", &c.receipt, 0, Some("boom"))
            .unwrap();
        clock.0.fetch_add(1000, Ordering::SeqCst);
        // A third delivery is due: both go to the dead-letter topic, `b` (behind `a`) is next.
        assert_eq!(values(&receive(&topic)), [("b", 1)]);
        assert_eq!(topic.dlq_depth(), Some(2));

        let dead = all(&dlq);
        assert_eq!(dead.len(), 2);
        let by_value: BTreeMap<&str, &Message> = dead
            .iter()
            .map(|(_, m)| (m.message.value.as_str(), &m.message))
            .collect();
        let a = by_value["a"];
        assert_eq!(a.key.as_deref(), Some("k1"));
        assert_eq!(a.id.as_deref(), Some("id-a"));
        let h = |m: &Message, k: &str| m.headers.get(k).cloned().unwrap_or_default();
        assert_eq!(h(a, "h"), "a");
        assert_eq!(h(a, "x-dlq-topic"), "q");
        assert_eq!(h(a, "x-dlq-partition"), pa.to_string());
        assert_eq!(h(a, "x-dlq-offset"), "0");
        assert_eq!(h(a, "x-dlq-delivery-count"), "2");
        assert_eq!(h(a, "x-dlq-group"), "g");
        assert!(a.headers.contains_key("x-dlq-last-error"));
        assert_eq!(h(a, "x-dlq-last-error"), "", "the visibility timed out");
        assert_eq!(h(by_value["c"], "x-dlq-last-error"), "boom");

        // Never delivered a third time, however long we wait.
        clock.0.fetch_add(1000, Ordering::SeqCst);
        assert_eq!(values(&receive(&topic)), [("b", 2)]);

        // Redrive: back to the key's partition at a new offset, x-dlq headers gone.
        let before = all(&topic).len();
        assert_eq!(topic.redrive(1000).unwrap(), 2);
        assert_eq!(topic.dlq_depth(), Some(0));
        let after = all(&topic);
        assert_eq!(after.len(), before + 2);
        let back: Vec<_> = after
            .iter()
            .filter(|(_, m)| m.message.value == "a" && m.offset > 0)
            .collect();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].0, pa);
        assert_eq!(back[0].1.message, msg("k1", "a"));
        assert_eq!(topic.redrive(1000).unwrap(), 0, "redriven once");

        // Reopen: dead letters, the redrive mark and the acks all survive.
        drop((topic, dlq));
        drop(topics);
        let topics = open(dir.path(), &clock);
        let topic = topics.get("q").unwrap();
        let dlq = topics.get("q.dlq").unwrap();
        assert_eq!(all(&dlq).len(), 2);
        assert_eq!(topic.dlq_depth(), Some(0));
        assert_eq!(topic.redrive(1000).unwrap(), 0);
        // The dead-lettered originals stay acked; `b` and the two redriven copies come.
        let got = receive(&topic);
        let offsets: Vec<(&str, u64)> = {
            let mut v: Vec<_> = got
                .iter()
                .map(|d| (d.stored.message.value.as_str(), d.stored.offset))
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(offsets.len(), 2, "{offsets:?}");
        assert_eq!(offsets[0].0, "b");
        assert_eq!(offsets[1].0, "c");
        assert!(offsets[1].1 > 0, "the redriven copy, not the original");
    }

    #[test]
    fn a_crash_between_the_topic_and_its_dlq_is_repaired_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicU64::new(1_000_000)));
        let topics = open(dir.path(), &clock);
        topics.create(spec("q", 1, Some(1))).unwrap();
        drop(topics);
        std::fs::remove_dir_all(dir.path().join("q.dlq")).unwrap();
        let topics = open(dir.path(), &clock);
        let dlq = topics.get("q.dlq").expect("recreated");
        let topic = topics.get("q").unwrap();
        assert!(Arc::ptr_eq(topic.dead_letter_topic().unwrap(), &dlq));
    }

    #[test]
    fn names_deletion_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicU64::new(1_000_000)));
        let topics = open(dir.path(), &clock);
        let plain = topics.create(spec("plain", 1, None)).unwrap();
        assert!(topics.get("plain.dlq").is_none());
        assert!(matches!(
            plain.redrive(10),
            Err(TopicError::NoDeadLetterTopic(_))
        ));
        assert_eq!(plain.dlq_depth(), None);

        topics.create(spec("x.dlq", 1, None)).unwrap();
        assert!(matches!(
            topics.create(spec("x", 1, Some(3))),
            Err(TopicError::TopicExists(n)) if n == "x.dlq"
        ));
        assert!(topics.get("x").is_none(), "nothing half-created");
        assert!(matches!(
            topics.create(spec(&"n".repeat(MAX_NAME_LEN), 1, Some(3))),
            Err(TopicError::InvalidSpec { field: "name", .. })
        ));

        let q = topics.create(spec("q", 2, Some(1))).unwrap();
        for bad in [0, MAX_REDRIVE + 1] {
            assert!(matches!(
                q.redrive(bad),
                Err(TopicError::InvalidSpec {
                    field: "max_messages",
                    ..
                })
            ));
        }
        drop(q);
        assert!(matches!(
            topics.delete("q.dlq"),
            Err(TopicError::DeadLetterTopicInUse { .. })
        ));
        topics.delete("q").unwrap();
        assert!(topics.get("q").is_none() && topics.get("q.dlq").is_none());
        assert!(!dir.path().join("q.dlq").exists());
        // Without its topic, a former dead-letter name is an ordinary topic.
        topics.delete("x.dlq").unwrap();
    }

    #[test]
    fn errors_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_BYTES);
        let cut = truncate_error(&long);
        assert_eq!(cut.len(), MAX_ERROR_BYTES);
        let odd = format!("a{long}");
        let cut = truncate_error(&odd);
        assert_eq!(cut.len(), MAX_ERROR_BYTES - 1);
        assert!(odd.starts_with(&cut));
        assert_eq!(truncate_error("short"), "short");
    }
}
