//! The stream type (XADD, XRANGE, consumer groups, ...): Redis 7 Streams semantics.
//!
//! Layout: this file holds the data model ([`StreamValue`], [`ConsumerGroup`],
//! [`PendingEntry`]) and the journal seam ([`StreamEffect`], [`StreamValue::apply`]);
//! `entries.rs` holds the operations on entries (XADD, XRANGE, XDEL, XTRIM, XSETID, XREAD)
//! and `groups.rs` the consumer-group operations (XGROUP, XREADGROUP, XACK, XPENDING,
//! XCLAIM, XAUTOCLAIM, XINFO).
//!
//! Invariants:
//! - Unlike lists, a stream key survives becoming empty (XDEL of every entry, MKSTREAM).
//! - Entries are owned copies, never slices of a request buffer.
//! - `last_id` is never below the greatest entry id; a group's PEL and its consumers'
//!   PELs hold exactly the same ids (each pending id belongs to one consumer).
//! - **Every change to a stream is described by [`StreamEffect`]s**: the operation that
//!   changes a stream builds the effects of what it did and hands them to the journal hook
//!   while it still holds the key's lock. Replaying the effects with
//!   [`StreamValue::apply`] on the state before the operation gives a value equal (`==`)
//!   to the state after it — that is what makes streams durable (the journal is a log of
//!   effects, replayed at start).

pub mod entries;
pub mod groups;

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// A stream entry id: `<ms>-<seq>`, ordered by `ms` then `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// `18446744073709551615-18446744073709551615`.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// A new id.
    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// The next id (`None` past [`StreamId::MAX`]).
    pub fn next(self) -> Option<Self> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(Self { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| Self { ms, seq: 0 }),
        }
    }

    /// The previous id (`None` below [`StreamId::MIN`]).
    pub fn prev(self) -> Option<Self> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(Self { ms: self.ms, seq }),
            None => self.ms.checked_sub(1).map(|ms| Self { ms, seq: u64::MAX }),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// An entry's fields, flat: `field, value, field, value, ...` (always an even count,
/// never empty).
pub type Fields = Box<[Bytes]>;

/// A stream: its entries, its id bookkeeping, and its consumer groups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamValue {
    /// Entries by id.
    pub entries: BTreeMap<StreamId, Fields>,
    /// The greatest id ever added (or set by XSETID): new ids must be above it.
    pub last_id: StreamId,
    /// Entries ever added (XADD count, or as set by XSETID ENTRIESADDED).
    pub entries_added: u64,
    /// The greatest id ever deleted (XDEL, trimming), `0-0` if none.
    pub max_deleted_id: StreamId,
    /// Consumer groups by name (lexicographic, as Redis lists them).
    pub groups: BTreeMap<Bytes, ConsumerGroup>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumerGroup {
    /// The last id delivered to the group (`>` reads after it).
    pub last_id: StreamId,
    /// Entries the group has read, when known (Redis's `entries-read`; `None` is Redis's
    /// invalid counter, shown as nil with a nil lag).
    pub entries_read: Option<u64>,
    /// The pending entries list: delivered and not yet acknowledged.
    pub pel: BTreeMap<StreamId, PendingEntry>,
    /// Consumers by name.
    pub consumers: BTreeMap<Bytes, Consumer>,
}

/// One delivered, unacknowledged entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// The consumer that owns it.
    pub consumer: Bytes,
    /// When it was last delivered (ms since the epoch).
    pub delivery_ms: u64,
    /// How many times it was delivered.
    pub delivery_count: u64,
}

/// A consumer in a group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Consumer {
    /// When the consumer was last seen (any read or claim attempt), ms since the epoch.
    pub seen_ms: u64,
    /// The ids pending for this consumer (mirrors the group PEL's entries it owns).
    pub pel: BTreeSet<StreamId>,
}

/// One change to a stream, as recorded in the journal. Effects are exact (explicit ids,
/// explicit times), so replaying them never depends on the clock or on randomness.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEffect {
    /// The key now holds an empty stream (XGROUP CREATE ... MKSTREAM, XADD on a new key
    /// is recorded as `Create` followed by `Add`).
    Create,
    /// An entry was added with this exact id: `last_id = id`, `entries_added += 1`.
    Add {
        /// The entry's id.
        id: StreamId,
        /// Its fields, flat.
        fields: Fields,
    },
    /// These entries were deleted (XDEL; only ids that existed are recorded): each is
    /// removed if present, and each raises `max_deleted_id` even if absent. Replaying a
    /// snapshot, the entry may not be there yet: XDEL ran after the snapshot's head was
    /// taken and before the chunk that would have held the entry, so no chunk holds it,
    /// but the deletion still happened.
    Delete {
        /// The ids, ascending.
        ids: Vec<StreamId>,
    },
    /// Every entry with an id `<= through` was trimmed (MAXLEN / MINID, exact or
    /// approximate — the effect records what was actually removed). Trimming leaves
    /// `max_deleted_id` alone: Redis 7.0 records only XDEL's deletions there.
    TrimThrough {
        /// The greatest removed id.
        through: StreamId,
    },
    /// XSETID: the stream's id bookkeeping was set.
    SetId {
        /// New `last_id`.
        last_id: StreamId,
        /// New `entries_added`, if given.
        entries_added: Option<u64>,
        /// New `max_deleted_id`, if given.
        max_deleted_id: Option<StreamId>,
    },
    /// A group was created, or its cursor set (XGROUP CREATE / SETID, and XREADGROUP `>`
    /// moving the cursor).
    GroupCursor {
        /// The group (created if absent).
        group: Bytes,
        /// Its new last-delivered id.
        last_id: StreamId,
        /// Its new entries-read counter.
        entries_read: Option<u64>,
    },
    /// A group was destroyed.
    GroupDestroy {
        /// The group.
        group: Bytes,
    },
    /// A consumer exists (created if absent) and was last seen at `seen_ms`.
    ConsumerSeen {
        /// The group.
        group: Bytes,
        /// The consumer.
        consumer: Bytes,
        /// Its new seen time.
        seen_ms: u64,
    },
    /// A consumer was deleted, with its pending entries.
    ConsumerDelete {
        /// The group.
        group: Bytes,
        /// The consumer.
        consumer: Bytes,
    },
    /// The exact state of one pending entry after a delivery or a claim: created, or
    /// moved to `consumer` (created if absent), with these times and count.
    Pending {
        /// The group.
        group: Bytes,
        /// The id.
        id: StreamId,
        /// Its owner now.
        consumer: Bytes,
        /// Its delivery time now.
        delivery_ms: u64,
        /// Its delivery count now.
        delivery_count: u64,
    },
    /// These pending entries were removed (XACK, claims of deleted entries).
    Ack {
        /// The group.
        group: Bytes,
        /// The ids.
        ids: Vec<StreamId>,
    },
}

/// Replay: rebuilding streams from a journal at start, before the journal is installed
/// (so nothing here is journaled again).
pub mod restore {
    use super::{Fields, PendingEntry, StreamEffect, StreamId, StreamValue};
    use crate::{DbRef, Value};
    use bytes::Bytes;

    /// Applies the effects of one journaled operation to the stream at `key`, creating it
    /// when absent (or when it expired since: the operation came after).
    pub fn effects(db: &DbRef<'_>, key: &[u8], effects: &[StreamEffect]) {
        db.write(key, |slot| {
            if let Some(entry) = slot.get() {
                if let Value::Stream(stream) = &mut entry.value {
                    for effect in effects {
                        stream.apply(effect);
                    }
                    return;
                }
            }
            let mut stream = StreamValue::default();
            for effect in effects {
                stream.apply(effect);
            }
            slot.put(Value::Stream(Box::new(stream)), None);
        });
    }

    /// Stores a whole stream at `key`.
    pub fn replaced(db: &DbRef<'_>, key: &[u8], value: StreamValue, expire_at: Option<u64>) {
        db.write(key, |slot| {
            slot.put(Value::Stream(Box::new(value)), expire_at)
        });
    }

    /// Adds entries to the stream at `key` as they are, bookkeeping untouched: the rest
    /// of a large stream whose metadata a `replaced` just stored. Nothing happens when
    /// the key holds no stream (it expired before the record's time).
    pub fn entries(db: &DbRef<'_>, key: &[u8], entries: Vec<(StreamId, Fields)>) {
        db.write(key, |slot| {
            if let Some(Value::Stream(stream)) = slot.get().map(|e| &mut e.value) {
                stream.entries.extend(entries);
            }
        });
    }

    /// Adds pending entries to a group of the stream at `key` (and to their owners'
    /// lists, creating the owners if needed), as they are.
    pub fn pending(
        db: &DbRef<'_>,
        key: &[u8],
        group: &[u8],
        pending: Vec<(StreamId, Bytes, u64, u64)>,
    ) {
        db.write(key, |slot| {
            let Some(Value::Stream(stream)) = slot.get().map(|e| &mut e.value) else {
                return;
            };
            let Some(g) = stream.groups.get_mut(group) else {
                return;
            };
            for (id, consumer, delivery_ms, delivery_count) in pending {
                g.consumers
                    .entry(consumer.clone())
                    .or_default()
                    .pel
                    .insert(id);
                g.pel.insert(
                    id,
                    PendingEntry {
                        consumer,
                        delivery_ms,
                        delivery_count,
                    },
                );
            }
        });
    }

    /// Deletes `key`.
    pub fn deleted(db: &DbRef<'_>, key: &[u8]) {
        db.write(key, |slot| {
            slot.remove();
        });
    }

    /// Sets `key`'s deadline.
    pub fn expire(db: &DbRef<'_>, key: &[u8], expire_at: Option<u64>) {
        db.write(key, |slot| {
            slot.set_expire(expire_at);
        });
    }

    /// The keys of the database's live streams (compaction visits them one by one).
    pub fn stream_keys(db: &DbRef<'_>) -> Vec<Bytes> {
        let mut keys = Vec::new();
        db.for_each_shard(|_, view| {
            for (key, entry) in view.live_entries() {
                if matches!(entry.value, Value::Stream(_)) {
                    keys.push(Bytes::copy_from_slice(key));
                }
            }
            true
        });
        keys
    }

    /// Runs `f` on the stream at `key` and its deadline (`None`: the key holds no live
    /// stream) under the key's shard lock: what `f` journals is ordered with the key's
    /// changes.
    pub fn with_stream<R>(
        db: &DbRef<'_>,
        key: &[u8],
        f: impl FnOnce(Option<(&StreamValue, Option<u64>)>) -> R,
    ) -> R {
        db.read(key, |entry| match entry {
            Some(e) => match &e.value {
                Value::Stream(stream) => f(Some((stream, e.expire_at))),
                _ => f(None),
            },
            None => f(None),
        })
    }

    /// Visits every live stream of the database, each under its shard's lock (a
    /// compaction snapshot records each one there, so later changes follow it in order).
    pub fn for_each_stream(db: &DbRef<'_>, mut f: impl FnMut(&[u8], &StreamValue, Option<u64>)) {
        db.for_each_shard(|_, view| {
            for (key, entry) in view.live_entries() {
                if let Value::Stream(stream) = &entry.value {
                    f(key, stream, entry.expire_at);
                }
            }
            true
        });
    }
}

impl StreamValue {
    /// Applies one effect (replay). Effects naming a group that does not exist are
    /// ignored except `GroupCursor`, which creates it.
    pub fn apply(&mut self, effect: &StreamEffect) {
        match effect {
            StreamEffect::Create => {}
            StreamEffect::Add { id, fields } => {
                // An id not above `last_id` cannot be a new entry (XADD refuses it): the
                // effect is already in this state (an operation that created its key
                // is journaled as the replaced value followed by its effects).
                if *id <= self.last_id {
                    return;
                }
                self.entries.insert(*id, fields.clone());
                self.last_id = *id;
                self.entries_added += 1;
            }
            StreamEffect::Delete { ids } => {
                for id in ids {
                    self.entries.remove(id);
                    if *id > self.max_deleted_id {
                        self.max_deleted_id = *id;
                    }
                }
            }
            StreamEffect::TrimThrough { through } => {
                let kept = match through.next() {
                    Some(next) => self.entries.split_off(&next),
                    None => BTreeMap::new(),
                };
                self.entries = kept;
            }
            StreamEffect::SetId {
                last_id,
                entries_added,
                max_deleted_id,
            } => {
                self.last_id = *last_id;
                if let Some(n) = entries_added {
                    self.entries_added = *n;
                }
                if let Some(id) = max_deleted_id {
                    self.max_deleted_id = *id;
                }
            }
            StreamEffect::GroupCursor {
                group,
                last_id,
                entries_read,
            } => {
                let g = self.groups.entry(group.clone()).or_default();
                g.last_id = *last_id;
                g.entries_read = *entries_read;
            }
            StreamEffect::GroupDestroy { group } => {
                self.groups.remove(group);
            }
            StreamEffect::ConsumerSeen {
                group,
                consumer,
                seen_ms,
            } => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.consumers.entry(consumer.clone()).or_default().seen_ms = *seen_ms;
                }
            }
            StreamEffect::ConsumerDelete { group, consumer } => {
                if let Some(g) = self.groups.get_mut(group) {
                    if let Some(c) = g.consumers.remove(consumer) {
                        for id in c.pel {
                            g.pel.remove(&id);
                        }
                    }
                }
            }
            StreamEffect::Pending {
                group,
                id,
                consumer,
                delivery_ms,
                delivery_count,
            } => {
                if let Some(g) = self.groups.get_mut(group) {
                    if let Some(old) = g.pel.get(id) {
                        if old.consumer != *consumer {
                            if let Some(c) = g.consumers.get_mut(&old.consumer) {
                                c.pel.remove(id);
                            }
                        }
                    }
                    g.consumers
                        .entry(consumer.clone())
                        .or_default()
                        .pel
                        .insert(*id);
                    g.pel.insert(
                        *id,
                        PendingEntry {
                            consumer: consumer.clone(),
                            delivery_ms: *delivery_ms,
                            delivery_count: *delivery_count,
                        },
                    );
                }
            }
            StreamEffect::Ack { group, ids } => {
                if let Some(g) = self.groups.get_mut(group) {
                    for id in ids {
                        if let Some(p) = g.pel.remove(id) {
                            if let Some(c) = g.consumers.get_mut(&p.consumer) {
                                c.pel.remove(id);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Redis 7.0's name for the representation (`OBJECT ENCODING`): always `stream`.
    pub(crate) fn encoding(&self) -> &'static str {
        "stream"
    }
}
