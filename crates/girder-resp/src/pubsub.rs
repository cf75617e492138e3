//! Pub/sub: the server-wide registry of channel and pattern subscriptions, and each
//! subscribed connection's message queue.
//!
//! A connection that subscribes gets one bounded queue for its whole life
//! ([`Subscriptions`]); the registry maps every channel and pattern to the queues of its
//! subscribers. PUBLISH copies the message once and hands each subscriber a cheap clone;
//! the subscriber's connection loop drains its queue and writes the frames.
//!
//! Invariants:
//! - The registry and the clients' own subscription sets agree: an entry exists exactly
//!   while its client is subscribed, and no channel or pattern is kept without
//!   subscribers. A client's sets change only on its own connection, together with its
//!   registry entries, and a closing connection releases them all ([`PubSub::release`]).
//! - Memory is bounded: a queue holds at most `pubsub_queue_limit` messages. A subscriber
//!   whose queue is full (it does not read its socket) is disconnected, as Redis does with
//!   `client-output-buffer-limit pubsub`, instead of buffering more.
//! - Per subscriber, messages arrive in the order they were published: publishing holds
//!   the registry lock while it enqueues.

use crate::codec::Reply;
use crate::output_limits::OutputLimits;
use bytes::Bytes;
use girder_kv::keys::glob_match;
use parking_lot::RwLock;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

/// One published message on its way to a subscriber.
#[derive(Debug, Clone)]
pub struct Message {
    /// The pattern that matched, for a pattern subscription (`pmessage`).
    pub pattern: Option<Bytes>,
    /// The channel it was published to.
    pub channel: Bytes,
    /// The payload.
    pub payload: Bytes,
}

impl Message {
    /// The frame Redis sends: `message channel payload` or
    /// `pmessage pattern channel payload` (a RESP3 push, a RESP2 array).
    pub fn into_reply(self) -> Reply {
        match self.pattern {
            None => Reply::Push(vec![
                Reply::bulk("message"),
                Reply::Bulk(self.channel),
                Reply::Bulk(self.payload),
            ]),
            Some(pattern) => Reply::Push(vec![
                Reply::bulk("pmessage"),
                Reply::Bulk(pattern),
                Reply::Bulk(self.channel),
                Reply::Bulk(self.payload),
            ]),
        }
    }
}

/// A subscribed connection as the registry sees it.
#[derive(Debug)]
struct Subscriber {
    id: u64,
    queue: mpsc::Sender<Message>,
    /// The connection's CLIENT KILL token: cancelled when its queue overflows.
    kill: CancellationToken,
    /// Bytes of the messages in its queue (`client-output-buffer-limit pubsub`).
    queued: AtomicU64,
    /// When its queue went over the soft limit (ms since [`epoch`], plus one), 0 while
    /// under it.
    soft_since: AtomicU64,
    limits: Arc<OutputLimits>,
}

/// The instant the soft-limit clocks count from.
fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

impl Message {
    /// What the message holds in memory while queued.
    fn size(&self) -> u64 {
        let pattern = self.pattern.as_ref().map_or(0, Bytes::len);
        (pattern + self.channel.len() + self.payload.len() + 64) as u64
    }
}

impl Subscriber {
    /// The soft limit and its seconds when the queue has been over it for longer than
    /// that (Redis counts from the first time it saw the queue over, and forgets when it
    /// sees it under).
    fn over_soft_for_too_long(&self, queued: u64) -> Option<(u64, u64)> {
        let (soft, secs) = self.limits.pubsub_soft();
        if soft == 0 || queued <= soft {
            self.soft_since.store(0, Ordering::Relaxed);
            return None;
        }
        let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let since =
            match self
                .soft_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => now,
                Err(since) => since,
            };
        (now - since > secs.saturating_mul(1000)).then_some((soft, secs))
    }

    fn deliver(&self, message: Message, limit: usize) {
        let size = message.size();
        let hard = self.limits.pubsub_hard();
        let queued = self.queued.fetch_add(size, Ordering::Relaxed) + size;
        let outcome = if hard > 0 && queued > hard {
            Err(format!(
                "its {queued} queued bytes are over client-output-buffer-limit pubsub ({hard})"
            ))
        } else if let Some((soft, secs)) = self.over_soft_for_too_long(queued) {
            Err(format!(
                "its queued bytes ({queued}) stayed over the soft client-output-buffer-limit pubsub ({soft}) for more than {secs} s"
            ))
        } else {
            match self.queue.try_send(message) {
                Ok(()) => return,
                Err(TrySendError::Closed(_)) => Ok(()),
                Err(TrySendError::Full(_)) => Err(format!(
                    "its queue holds pubsub_queue_limit ({limit}) messages"
                )),
            }
        };
        self.queued.fetch_sub(size, Ordering::Relaxed);
        if let Err(why) = outcome {
            if !self.kill.is_cancelled() {
                tracing::warn!(
                    service = "resp",
                    client = self.id,
                    "closing a subscriber that is not reading: {why}"
                );
                self.kill.cancel();
            }
        }
    }
}

/// Subscribers of one channel or pattern, in subscription order (the delivery order).
type Subscribers = Vec<Arc<Subscriber>>;

#[derive(Debug, Default)]
struct Registry {
    channels: HashMap<Bytes, Subscribers>,
    patterns: HashMap<Bytes, Subscribers>,
}

/// The server-wide registry of subscriptions.
#[derive(Debug)]
pub struct PubSub {
    registry: RwLock<Registry>,
    /// Most messages queued per subscriber.
    queue_limit: usize,
    limits: Arc<OutputLimits>,
}

/// Whether a subscription is to a channel or a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE.
    Channel,
    /// PSUBSCRIBE.
    Pattern,
}

/// A connection's own subscriptions.
#[derive(Debug, Default)]
pub struct Subscriptions {
    /// Subscribed channels.
    pub channels: BTreeSet<Bytes>,
    /// Subscribed patterns.
    pub patterns: BTreeSet<Bytes>,
    /// This connection's registry entry, created by its first subscription.
    me: Option<Arc<Subscriber>>,
    /// The receiving end of its queue, drained by the connection loop.
    pub queue: Option<mpsc::Receiver<Message>>,
}

impl Subscriptions {
    /// Channels plus patterns: the count Redis reports in confirmations.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Whether the connection is in subscribe mode.
    pub fn active(&self) -> bool {
        self.count() > 0
    }

    fn set(&mut self, kind: Kind) -> &mut BTreeSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
        }
    }

    /// The next queued message, if one is already there.
    pub fn try_next(&mut self) -> Option<Message> {
        let message = self.queue.as_mut()?.try_recv().ok()?;
        self.taken(&message);
        Some(message)
    }

    fn taken(&self, message: &Message) {
        if let Some(me) = &self.me {
            me.queued.fetch_sub(message.size(), Ordering::Relaxed);
        }
    }

    /// Waits for the next message; never completes for a connection that has not
    /// subscribed (so it can sit in a `select!`).
    pub async fn next(&mut self) -> Message {
        match self.queue.as_mut() {
            // The registry entry in `me` keeps a sender alive, so `recv` cannot end.
            Some(queue) => match queue.recv().await {
                Some(message) => {
                    if let Some(me) = &self.me {
                        me.queued.fetch_sub(message.size(), Ordering::Relaxed);
                    }
                    message
                }
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}

impl PubSub {
    /// An empty registry whose subscribers may each queue `queue_limit` messages.
    pub fn new(queue_limit: usize, limits: Arc<OutputLimits>) -> Self {
        Self {
            registry: RwLock::default(),
            queue_limit: queue_limit.max(1),
            limits,
        }
    }

    fn map(registry: &mut Registry, kind: Kind) -> &mut HashMap<Bytes, Subscribers> {
        match kind {
            Kind::Channel => &mut registry.channels,
            Kind::Pattern => &mut registry.patterns,
        }
    }

    /// Subscribes `client` to `name`; returns false if it already was.
    pub fn subscribe(
        &self,
        client: &mut crate::state::ClientState,
        kind: Kind,
        name: &[u8],
    ) -> bool {
        let subs = &mut client.pubsub;
        if subs.set(kind).contains(name) {
            return false;
        }
        let me = match &subs.me {
            Some(me) => Arc::clone(me),
            None => {
                let (tx, rx) = mpsc::channel(self.queue_limit);
                let me = Arc::new(Subscriber {
                    id: client.id,
                    queue: tx,
                    kill: client.handle.kill.clone(),
                    queued: AtomicU64::new(0),
                    soft_since: AtomicU64::new(0),
                    limits: Arc::clone(&self.limits),
                });
                subs.me = Some(Arc::clone(&me));
                subs.queue = Some(rx);
                me
            }
        };
        // Owned copy: the name must not pin the connection's read buffer.
        let name = Bytes::copy_from_slice(name);
        let mut registry = self.registry.write();
        Self::map(&mut registry, kind)
            .entry(name.clone())
            .or_default()
            .push(me);
        subs.set(kind).insert(name);
        true
    }

    /// Unsubscribes `client` from `name`; returns false if it was not subscribed.
    pub fn unsubscribe(
        &self,
        client: &mut crate::state::ClientState,
        kind: Kind,
        name: &[u8],
    ) -> bool {
        if !client.pubsub.set(kind).remove(name) {
            return false;
        }
        remove_entry(&mut self.registry.write(), kind, name, client.id);
        true
    }

    /// Drops every subscription of `client` without replies (connection closed, RESET).
    pub fn release(&self, client: &mut crate::state::ClientState) {
        let channels = std::mem::take(&mut client.pubsub.channels);
        let patterns = std::mem::take(&mut client.pubsub.patterns);
        if channels.is_empty() && patterns.is_empty() {
            return;
        }
        let mut registry = self.registry.write();
        for (kind, names) in [(Kind::Channel, channels), (Kind::Pattern, patterns)] {
            for name in names {
                remove_entry(&mut registry, kind, &name, client.id);
            }
        }
    }

    /// Delivers `payload` to the subscribers of `channel` and of every matching pattern;
    /// returns how many deliveries there were (Redis's PUBLISH reply).
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> usize {
        let registry = self.registry.read();
        if registry.channels.is_empty() && registry.patterns.is_empty() {
            return 0;
        }
        // One owned copy, shared by every subscriber's queue.
        let channel_bytes = Bytes::copy_from_slice(channel);
        let payload = Bytes::copy_from_slice(payload);
        let mut receivers = 0;
        if let Some(subscribers) = registry.channels.get(channel) {
            for s in subscribers {
                let message = Message {
                    pattern: None,
                    channel: channel_bytes.clone(),
                    payload: payload.clone(),
                };
                s.deliver(message, self.queue_limit);
            }
            receivers += subscribers.len();
        }
        for (pattern, subscribers) in &registry.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            for s in subscribers {
                let message = Message {
                    pattern: Some(pattern.clone()),
                    channel: channel_bytes.clone(),
                    payload: payload.clone(),
                };
                s.deliver(message, self.queue_limit);
            }
            receivers += subscribers.len();
        }
        receivers
    }

    /// Channels with at least one subscriber, matching `pattern` if given (PUBSUB
    /// CHANNELS).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.registry
            .read()
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel`, pattern subscriptions excluded (PUBSUB NUMSUB).
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.registry
            .read()
            .channels
            .get(channel)
            .map_or(0, Vec::len)
    }

    /// Distinct patterns subscribed to (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.registry.read().patterns.len()
    }
}

/// Removes client `id` from the subscribers of `name`, and `name` once nobody is left.
fn remove_entry(registry: &mut Registry, kind: Kind, name: &[u8], id: u64) {
    let map = PubSub::map(registry, kind);
    if let Some(subscribers) = map.get_mut(name) {
        subscribers.retain(|s| s.id != id);
        if subscribers.is_empty() {
            map.remove(name);
        }
    }
}
