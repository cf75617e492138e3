//! Consumer-group operations: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM and
//! the group parts of XINFO, with Redis 7.0's semantics.
//!
//! Invariants (besides those of [`super`]):
//! - Every change is journaled inside the write closure, after the change, with effects
//!   that replay to the same value: XGROUP CREATE → `[Create?, GroupCursor]`, SETID →
//!   `GroupCursor`, DESTROY → `GroupDestroy`, CREATECONSUMER → `ConsumerSeen`,
//!   DELCONSUMER → `ConsumerDelete`, XREADGROUP → `[ConsumerSeen, GroupCursor?,
//!   Pending...]`, XACK → `Ack`, XCLAIM / XAUTOCLAIM → `[GroupCursor?, Ack?,
//!   ConsumerSeen?, Pending...]`. Times in effects are the command's time, never "now"
//!   at replay.
//! - A consumer's seen time moves when Redis 7.0 moves it: every XREADGROUP that is
//!   served (a history read, or `>` finding new entries; a `>` read finding nothing
//!   creates no consumer and journals nothing), and XCLAIM / XAUTOCLAIM only when they
//!   claim something. XPENDING and DELCONSUMER look consumers up without touching them.
//! - Entries deleted from the stream but still pending stay in the PEL until a history
//!   read shows them as `[id, nil]` or a claim drops them.
//!
//! # Redis internals reproduced
//! Redis keeps a `first_id` (XINFO's `recorded-first-entry-id`) that is the first entry's
//! id while the stream has entries; Girder derives it from the entries (`0-0` when
//! empty, which is what Redis 7.0.15 shows for an emptied stream too). The group
//! `entries-read` counter and the lag follow Redis's
//! `streamEstimateDistanceFromFirstEverEntry` and `streamRangeHasTombstones` (7.0.15's
//! versions, checked against the server; see [`StreamValue::lag`]).

use super::{ConsumerGroup, Fields, PendingEntry, StreamEffect, StreamId, StreamValue};
use crate::shard::Value;
use crate::{DbRef, Entry};
use bytes::Bytes;

/// Errors of group operations; the front end words each per command, as Redis does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The key holds another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// The key does not exist.
    #[error("no such key")]
    NoKey,
    /// The key exists but not the group.
    #[error("no such group")]
    NoGroup,
    /// XGROUP CREATE of a group that exists.
    #[error("BUSYGROUP Consumer Group name already exists")]
    BusyGroup,
}

/// Where a group's cursor starts (XGROUP CREATE / SETID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStart {
    /// `$`: the stream's last id (`0-0` for a stream MKSTREAM creates).
    Last,
    /// An explicit id.
    Id(StreamId),
}

/// What XREADGROUP reads from one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// `>`: entries never delivered to the group.
    New,
    /// An id: the consumer's own pending entries above it (its history).
    History(StreamId),
}

/// One entry as a group read or claim returns it: `None` fields for an entry deleted from
/// the stream while pending (history reads only).
pub type GroupEntry = (StreamId, Option<Fields>);

/// XREADGROUP's options for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadGroup<'a> {
    /// The group.
    pub group: &'a [u8],
    /// The consumer (created if absent).
    pub consumer: &'a [u8],
    /// What to read.
    pub from: ReadFrom,
    /// Most entries; 0 is no limit.
    pub count: usize,
    /// NOACK: new entries are not added to the PEL.
    pub noack: bool,
}

/// A claim's delivery time (XCLAIM IDLE / TIME).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryTime {
    /// The command's time.
    Now,
    /// IDLE ms: the command's time minus this.
    Idle(i64),
    /// TIME ms: this Unix time.
    At(i64),
}

/// XCLAIM's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim<'a> {
    /// The group.
    pub group: &'a [u8],
    /// The new owner.
    pub consumer: &'a [u8],
    /// Entries idle less than this (ms) are left alone; 0 claims any.
    pub min_idle: u64,
    /// The ids to claim, in the order given (repeats are claimed again).
    pub ids: Vec<StreamId>,
    /// The delivery time claimed entries get.
    pub delivery: DeliveryTime,
    /// RETRYCOUNT: the delivery count claimed entries get (else it is incremented,
    /// unless JUSTID).
    pub retry_count: Option<u64>,
    /// FORCE: ids not pending but in the stream are claimed too.
    pub force: bool,
    /// JUSTID: the delivery count is left alone and no fields are returned.
    pub justid: bool,
    /// LASTID: the group's cursor is raised to this id if it is below.
    pub last_id: Option<StreamId>,
}

/// XAUTOCLAIM's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoClaim<'a> {
    /// The group.
    pub group: &'a [u8],
    /// The new owner.
    pub consumer: &'a [u8],
    /// Entries idle less than this (ms) are skipped; 0 claims any.
    pub min_idle: u64,
    /// Where the scan of the PEL starts (inclusive).
    pub start: StreamId,
    /// Most entries claimed (and deleted entries dropped); at most `10 * count` pending
    /// entries are examined.
    pub count: u64,
    /// JUSTID: the delivery count is left alone and no fields are returned.
    pub justid: bool,
}

/// What XAUTOCLAIM did.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoClaimed {
    /// Where the next call should start; `0-0` when the scan reached the end.
    pub next: StreamId,
    /// The claimed entries (fields `None` with JUSTID).
    pub claimed: Vec<GroupEntry>,
    /// Pending ids whose entries were deleted: dropped from the PEL.
    pub deleted: Vec<StreamId>,
}

fn stream_of(entry: Option<&Entry>) -> Result<Option<&StreamValue>, GroupError> {
    match entry.map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(GroupError::WrongType),
    }
}

fn stream_mut(entry: Option<&mut Entry>) -> Result<Option<&mut StreamValue>, GroupError> {
    match entry.map(|e| &mut e.value) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(GroupError::WrongType),
    }
}

impl StreamValue {
    /// Redis's `first_id`: the first entry's id, `0-0` when the stream is empty.
    pub fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or(StreamId::MIN)
    }

    /// Redis's `streamRangeHasTombstones(s, start, NULL)`: whether a deleted entry may lie
    /// at or after `start`.
    fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.entries.is_empty() || self.max_deleted_id == StreamId::MIN {
            return false;
        }
        if self.first_id() > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: the entries-read counter of a
    /// group whose cursor is `id`, when it can be known.
    fn estimate_entries_read(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.entries.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        let first = self.first_id();
        if self.max_deleted_id == StreamId::MIN || self.max_deleted_id < first {
            let len = self.entries.len() as u64;
            if id < first {
                return Some(self.entries_added.wrapping_sub(len));
            } else if id == first {
                return Some(self.entries_added.wrapping_sub(len).wrapping_add(1));
            }
        }
        None
    }

    /// The lag of `group` (XINFO GROUPS): entries not yet delivered to it, `None` when
    /// Redis 7.0 cannot tell (shown as nil). Negative when ENTRIESREAD was set above the
    /// entries ever added, as in Redis.
    pub fn lag(&self, group: &ConsumerGroup) -> Option<i64> {
        // Redis computes in `long long`: counters past i64::MAX wrap there too.
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = group.entries_read {
            if !self.has_tombstones_from(group.last_id) {
                return Some(added.wrapping_sub(read as i64));
            }
        }
        self.estimate_entries_read(group.last_id)
            .map(|read| added.wrapping_sub(read as i64))
    }

    /// Moves `group`'s cursor past a delivered `id`, keeping entries-read as Redis does.
    fn advance_cursor(&self, last_id: &mut StreamId, entries_read: &mut Option<u64>, id: StreamId) {
        if id <= *last_id {
            return;
        }
        match entries_read {
            Some(n) if !self.has_tombstones_from(id) => *n += 1,
            _ if self.entries_added != 0 => *entries_read = self.estimate_entries_read(id),
            _ => {}
        }
        *last_id = id;
    }
}

/// Runs `f` on the stream at `key` (read-only); `None` when the key does not exist. XINFO
/// and XPENDING build their replies from this view.
///
/// # Errors
/// [`GroupError::WrongType`].
pub fn view<R>(
    db: &DbRef<'_>,
    key: &[u8],
    f: impl FnOnce(&StreamValue) -> R,
) -> Result<Option<R>, GroupError> {
    db.read(key, |e| Ok(stream_of(e)?.map(f)))
}

/// Whether `key` holds a stream, and whether `group` exists in it: `Err(NoKey)`,
/// `Err(NoGroup)` or `Ok(())`. Commands that report a missing key or group before they
/// look at the rest of their arguments call this first.
///
/// # Errors
/// [`GroupError::WrongType`], [`GroupError::NoKey`], [`GroupError::NoGroup`].
pub fn probe(db: &DbRef<'_>, key: &[u8], group: Option<&[u8]>) -> Result<(), GroupError> {
    db.read(key, |e| {
        let stream = stream_of(e)?.ok_or(GroupError::NoKey)?;
        match group {
            Some(g) if !stream.groups.contains_key(g) => Err(GroupError::NoGroup),
            _ => Ok(()),
        }
    })
}

/// XGROUP CREATE: creates `group` with its cursor at `start`; with `mkstream` a missing
/// key becomes an empty stream first.
///
/// # Errors
/// WRONGTYPE, [`GroupError::NoKey`] (without `mkstream`), [`GroupError::BusyGroup`].
pub fn create(
    db: &DbRef<'_>,
    key: &[u8],
    group: &[u8],
    start: GroupStart,
    mkstream: bool,
    entries_read: Option<u64>,
) -> Result<(), GroupError> {
    db.write(key, |slot| {
        let mut effects = Vec::with_capacity(2);
        if stream_mut(slot.get_quiet())?.is_none() {
            if !mkstream {
                return Err(GroupError::NoKey);
            }
            slot.put(Value::Stream(Box::default()), None);
            effects.push(StreamEffect::Create);
        }
        let stream = stream_mut(slot.get_quiet())?.ok_or(GroupError::NoKey)?;
        if stream.groups.contains_key(group) {
            return Err(GroupError::BusyGroup);
        }
        let last_id = match start {
            GroupStart::Last => stream.last_id,
            GroupStart::Id(id) => id,
        };
        let name = Bytes::copy_from_slice(group);
        let g = stream.groups.entry(name.clone()).or_default();
        g.last_id = last_id;
        g.entries_read = entries_read;
        effects.push(StreamEffect::GroupCursor {
            group: name,
            last_id,
            entries_read,
        });
        db.journal_stream(key, &effects);
        Ok(())
    })
}

/// XGROUP SETID: moves `group`'s cursor and sets its entries-read counter.
///
/// # Errors
/// WRONGTYPE, [`GroupError::NoKey`], [`GroupError::NoGroup`].
pub fn set_id(
    db: &DbRef<'_>,
    key: &[u8],
    group: &[u8],
    start: GroupStart,
    entries_read: Option<u64>,
) -> Result<(), GroupError> {
    db.write(key, |slot| {
        let stream = stream_mut(slot.get_quiet())?.ok_or(GroupError::NoKey)?;
        let last_id = match start {
            GroupStart::Last => stream.last_id,
            GroupStart::Id(id) => id,
        };
        let (name, g) = group_mut(stream, group).ok_or(GroupError::NoGroup)?;
        g.last_id = last_id;
        g.entries_read = entries_read;
        let effect = StreamEffect::GroupCursor {
            group: name.clone(),
            last_id,
            entries_read,
        };
        db.journal_stream(key, &[effect]);
        Ok(())
    })
}

/// XGROUP DESTROY: true if the group existed.
///
/// # Errors
/// WRONGTYPE, [`GroupError::NoKey`].
pub fn destroy(db: &DbRef<'_>, key: &[u8], group: &[u8]) -> Result<bool, GroupError> {
    db.write(key, |slot| {
        let stream = stream_mut(slot.get_quiet())?.ok_or(GroupError::NoKey)?;
        let Some((name, _)) = stream.groups.remove_entry(group) else {
            return Ok(false);
        };
        db.journal_stream(key, &[StreamEffect::GroupDestroy { group: name }]);
        Ok(true)
    })
}

/// XGROUP CREATECONSUMER: true if the consumer was created (seen now).
///
/// # Errors
/// WRONGTYPE, [`GroupError::NoKey`], [`GroupError::NoGroup`].
pub fn create_consumer(
    db: &DbRef<'_>,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
) -> Result<bool, GroupError> {
    db.write(key, |slot| {
        let now = slot.now_ms();
        let stream = stream_mut(slot.get_quiet())?.ok_or(GroupError::NoKey)?;
        let (name, g) = group_mut(stream, group).ok_or(GroupError::NoGroup)?;
        if g.consumers.contains_key(consumer) {
            return Ok(false);
        }
        let consumer = Bytes::copy_from_slice(consumer);
        g.consumers.entry(consumer.clone()).or_default().seen_ms = now;
        let effect = StreamEffect::ConsumerSeen {
            group: name,
            consumer,
            seen_ms: now,
        };
        db.journal_stream(key, &[effect]);
        Ok(true)
    })
}

/// XGROUP DELCONSUMER: deletes the consumer and its pending entries; returns how many
/// were pending (0 when it did not exist).
///
/// # Errors
/// WRONGTYPE, [`GroupError::NoKey`], [`GroupError::NoGroup`].
pub fn delete_consumer(
    db: &DbRef<'_>,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
) -> Result<usize, GroupError> {
    db.write(key, |slot| {
        let stream = stream_mut(slot.get_quiet())?.ok_or(GroupError::NoKey)?;
        let (name, g) = group_mut(stream, group).ok_or(GroupError::NoGroup)?;
        let Some((consumer, c)) = g.consumers.remove_entry(consumer) else {
            return Ok(0);
        };
        for id in &c.pel {
            g.pel.remove(id);
        }
        let effect = StreamEffect::ConsumerDelete {
            group: name.clone(),
            consumer,
        };
        db.journal_stream(key, &[effect]);
        Ok(c.pel.len())
    })
}

/// The group `name` of `stream`, with its stored name (shared by the effects).
fn group_mut<'s>(
    stream: &'s mut StreamValue,
    name: &[u8],
) -> Option<(Bytes, &'s mut ConsumerGroup)> {
    let stored = stream.groups.get_key_value(name)?.0.clone();
    let group = stream.groups.get_mut(name)?;
    Some((stored, group))
}

/// Records that `consumer` of `g` was seen at `now` (creating it).
fn seen(
    g: &mut ConsumerGroup,
    group: &Bytes,
    consumer: &[u8],
    now: u64,
    effects: &mut Vec<StreamEffect>,
) -> Bytes {
    // The stored name is reused: one allocation per consumer, not per read.
    let name = g
        .consumers
        .get_key_value(consumer)
        .map_or_else(|| Bytes::copy_from_slice(consumer), |(k, _)| k.clone());
    g.consumers.entry(name.clone()).or_default().seen_ms = now;
    effects.push(StreamEffect::ConsumerSeen {
        group: group.clone(),
        consumer: name.clone(),
        seen_ms: now,
    });
    name
}

/// Sets pending entry `id` of `g` to belong to `owner` with this time and count, moving
/// it from its previous owner; records the effect.
fn set_pending(
    g: &mut ConsumerGroup,
    group: &Bytes,
    id: StreamId,
    owner: &Bytes,
    delivery_ms: u64,
    delivery_count: u64,
    effects: &mut Vec<StreamEffect>,
) {
    let effect = StreamEffect::Pending {
        group: group.clone(),
        id,
        consumer: owner.clone(),
        delivery_ms,
        delivery_count,
    };
    if let Some(old) = g.pel.get(&id) {
        if old.consumer != *owner {
            if let Some(c) = g.consumers.get_mut(&old.consumer) {
                c.pel.remove(&id);
            }
        }
    }
    g.consumers.entry(owner.clone()).or_default().pel.insert(id);
    g.pel.insert(
        id,
        PendingEntry {
            consumer: owner.clone(),
            delivery_ms,
            delivery_count,
        },
    );
    effects.push(effect);
}

/// Removes pending entry `id` of `g` (from its owner too); true if it was pending.
fn drop_pending(g: &mut ConsumerGroup, id: StreamId) -> bool {
    let Some(p) = g.pel.remove(&id) else {
        return false;
    };
    if let Some(c) = g.consumers.get_mut(&p.consumer) {
        c.pel.remove(&id);
    }
    true
}

/// Whether XREADGROUP `>` would return entries now: the stream has an entry after the
/// group's cursor. A blocked reader retries when this turns true.
///
/// # Errors
/// WRONGTYPE, [`GroupError::NoKey`], [`GroupError::NoGroup`].
pub fn has_new(db: &DbRef<'_>, key: &[u8], group: &[u8]) -> Result<bool, GroupError> {
    db.read(key, |e| {
        let stream = stream_of(e)?.ok_or(GroupError::NoKey)?;
        let g = stream.groups.get(group).ok_or(GroupError::NoGroup)?;
        Ok(stream
            .entries
            .keys()
            .next_back()
            .is_some_and(|last| *last > g.last_id))
    })
}

/// XREADGROUP on one stream. The consumer is created (or its seen time moved) when the
/// read is served: always for a history read, for `>` only when there are new entries
/// (Redis 7.0 creates no consumer for a `>` read that finds nothing). Returns `None` when `>` finds nothing new (the stream is not part of the
/// reply), else the entries: new ones (added to the consumer's PEL unless NOACK, the
/// group's cursor moved past them), or the consumer's history above the id (each entry
/// still in the stream redelivered: delivery time now, count + 1; deleted ones `None`).
///
/// # Errors
/// WRONGTYPE, [`GroupError::NoKey`], [`GroupError::NoGroup`].
pub fn read_group(
    db: &DbRef<'_>,
    key: &[u8],
    read: &ReadGroup<'_>,
) -> Result<Option<Vec<GroupEntry>>, GroupError> {
    db.write(key, |slot| {
        let now = slot.now_ms();
        let stream = stream_mut(slot.get_quiet())?.ok_or(GroupError::NoKey)?;
        let (group, mut g) = match stream.groups.remove_entry(read.group) {
            Some(found) => found,
            None => return Err(GroupError::NoGroup),
        };
        let mut effects = Vec::new();
        let limit = if read.count == 0 {
            usize::MAX
        } else {
            read.count
        };
        let out = match read.from {
            ReadFrom::History(after) => {
                let consumer = seen(&mut g, &group, read.consumer, now, &mut effects);
                let mut out = Vec::new();
                // The id is exclusive (Redis increments it); the greatest id is `>`.
                if let Some(start) = after.next() {
                    let ids: Vec<StreamId> =
                        g.consumers.get(&consumer).map_or_else(Vec::new, |c| {
                            c.pel.range(start..).take(limit).copied().collect()
                        });
                    for id in ids {
                        match stream.entries.get(&id) {
                            Some(fields) => {
                                let count = g.pel.get(&id).map_or(0, |p| p.delivery_count) + 1;
                                set_pending(
                                    &mut g,
                                    &group,
                                    id,
                                    &consumer,
                                    now,
                                    count,
                                    &mut effects,
                                );
                                out.push((id, Some(fields.clone())));
                            }
                            None => out.push((id, None)),
                        }
                    }
                }
                Some(out)
            }
            ReadFrom::New => {
                let newer = stream
                    .entries
                    .keys()
                    .next_back()
                    .is_some_and(|last| *last > g.last_id);
                if newer {
                    let consumer = seen(&mut g, &group, read.consumer, now, &mut effects);
                    let start = g.last_id.next().unwrap_or(StreamId::MAX);
                    let delivered: Vec<(StreamId, Fields)> = stream
                        .entries
                        .range(start..)
                        .take(limit)
                        .map(|(id, f)| (*id, f.clone()))
                        .collect();
                    let (mut last_id, mut entries_read) = (g.last_id, g.entries_read);
                    for (id, _) in &delivered {
                        stream.advance_cursor(&mut last_id, &mut entries_read, *id);
                    }
                    g.last_id = last_id;
                    g.entries_read = entries_read;
                    effects.push(StreamEffect::GroupCursor {
                        group: group.clone(),
                        last_id,
                        entries_read,
                    });
                    if !read.noack {
                        for (id, _) in &delivered {
                            set_pending(&mut g, &group, *id, &consumer, now, 1, &mut effects);
                        }
                    }
                    Some(delivered.into_iter().map(|(id, f)| (id, Some(f))).collect())
                } else {
                    None
                }
            }
        };
        stream.groups.insert(group, g);
        db.journal_stream(key, &effects);
        Ok(out)
    })
}

/// XACK: removes these ids from the group's PEL; returns how many were pending. A
/// missing key or group acknowledges nothing.
///
/// # Errors
/// WRONGTYPE.
pub fn ack(
    db: &DbRef<'_>,
    key: &[u8],
    group: &[u8],
    ids: &[StreamId],
) -> Result<usize, GroupError> {
    db.write(key, |slot| {
        let Some(stream) = stream_mut(slot.get_quiet())? else {
            return Ok(0);
        };
        let Some((name, g)) = group_mut(stream, group) else {
            return Ok(0);
        };
        let acked: Vec<StreamId> = ids
            .iter()
            .copied()
            .filter(|id| drop_pending(g, *id))
            .collect();
        let n = acked.len();
        if n > 0 {
            let effect = StreamEffect::Ack {
                group: name.clone(),
                ids: acked,
            };
            db.journal_stream(key, &[effect]);
        }
        Ok(n)
    })
}

/// XCLAIM: gives the listed pending entries idle at least `min_idle` to the consumer.
/// Ids whose entries were deleted from the stream are dropped from the PEL (and not
/// returned); ids not pending are skipped unless FORCE and the entry exists. Returns the
/// claimed entries in the order given (fields `None` with JUSTID).
///
/// # Errors
/// WRONGTYPE, [`GroupError::NoKey`], [`GroupError::NoGroup`].
pub fn claim(db: &DbRef<'_>, key: &[u8], claim: &Claim<'_>) -> Result<Vec<GroupEntry>, GroupError> {
    db.write(key, |slot| {
        let now = slot.now_ms();
        let stream = stream_mut(slot.get_quiet())?.ok_or(GroupError::NoKey)?;
        let (group, mut g) = stream
            .groups
            .remove_entry(claim.group)
            .ok_or(GroupError::NoGroup)?;
        let mut effects = Vec::new();
        if let Some(last_id) = claim.last_id {
            if last_id > g.last_id {
                g.last_id = last_id;
                effects.push(StreamEffect::GroupCursor {
                    group: group.clone(),
                    last_id,
                    entries_read: g.entries_read,
                });
            }
        }
        let now_i = i64::try_from(now).unwrap_or(i64::MAX);
        let delivery = match claim.delivery {
            DeliveryTime::Now => now_i,
            DeliveryTime::Idle(ms) => now_i.saturating_sub(ms),
            DeliveryTime::At(ms) => ms,
        };
        let delivery = if delivery < 0 || delivery > now_i {
            now
        } else {
            // Non-negative: checked just above.
            delivery.unsigned_abs()
        };
        let mut owner: Option<Bytes> = None;
        let mut out = Vec::new();
        let mut deleted = Vec::new();
        for &id in &claim.ids {
            let Some(fields) = stream.entries.get(&id) else {
                if drop_pending(&mut g, id) {
                    deleted.push(id);
                }
                continue;
            };
            // FORCE creates a missing entry as Redis's NACK: count 1, no idle check.
            let (current_count, last_delivery) = match g.pel.get(&id) {
                Some(p) => (p.delivery_count, Some(p.delivery_ms)),
                None if claim.force => (1, None),
                None => continue,
            };
            if let (Some(at), true) = (last_delivery, claim.min_idle > 0) {
                let idle = now_i.saturating_sub(i64::try_from(at).unwrap_or(i64::MAX));
                if idle < i64::try_from(claim.min_idle).unwrap_or(i64::MAX) {
                    continue;
                }
            }
            if owner.is_none() {
                owner = Some(seen(&mut g, &group, claim.consumer, now, &mut effects));
            }
            let count = match claim.retry_count {
                Some(n) => n,
                None if claim.justid => current_count,
                None => current_count + 1,
            };
            if let Some(owner) = &owner {
                set_pending(&mut g, &group, id, owner, delivery, count, &mut effects);
            }
            out.push((id, (!claim.justid).then(|| fields.clone())));
        }
        if !deleted.is_empty() {
            effects.push(StreamEffect::Ack {
                group: group.clone(),
                ids: deleted,
            });
        }
        stream.groups.insert(group, g);
        db.journal_stream(key, &effects);
        Ok(out)
    })
}

/// XAUTOCLAIM: scans the PEL from `start`, claiming entries idle at least `min_idle`
/// and dropping entries deleted from the stream, until `count` of them are done or
/// `10 * count` pending entries were examined.
///
/// # Errors
/// WRONGTYPE, [`GroupError::NoKey`], [`GroupError::NoGroup`].
pub fn auto_claim(
    db: &DbRef<'_>,
    key: &[u8],
    claim: &AutoClaim<'_>,
) -> Result<AutoClaimed, GroupError> {
    db.write(key, |slot| {
        let now = slot.now_ms();
        let stream = stream_mut(slot.get_quiet())?.ok_or(GroupError::NoKey)?;
        let (group, mut g) = stream
            .groups
            .remove_entry(claim.group)
            .ok_or(GroupError::NoGroup)?;
        let mut effects = Vec::new();
        let mut attempts = claim.count.saturating_mul(10);
        let mut count = claim.count;
        let mut cursor = Some(claim.start);
        let mut owner: Option<Bytes> = None;
        let mut claimed = Vec::new();
        let mut deleted = Vec::new();
        let mut exhausted = false;
        while attempts > 0 && count > 0 {
            attempts -= 1;
            let Some(from) = cursor else {
                exhausted = true;
                break;
            };
            let Some((id, delivery_ms, delivery_count)) = g
                .pel
                .range(from..)
                .next()
                .map(|(id, p)| (*id, p.delivery_ms, p.delivery_count))
            else {
                exhausted = true;
                break;
            };
            cursor = id.next();
            let Some(fields) = stream.entries.get(&id) else {
                drop_pending(&mut g, id);
                deleted.push(id);
                count -= 1;
                continue;
            };
            if claim.min_idle > 0 {
                let idle = i64::try_from(now)
                    .unwrap_or(i64::MAX)
                    .saturating_sub(i64::try_from(delivery_ms).unwrap_or(i64::MAX));
                if idle < i64::try_from(claim.min_idle).unwrap_or(i64::MAX) {
                    continue;
                }
            }
            let delivery_count = delivery_count + u64::from(!claim.justid);
            if owner.is_none() {
                owner = Some(seen(&mut g, &group, claim.consumer, now, &mut effects));
            }
            if let Some(owner) = &owner {
                set_pending(&mut g, &group, id, owner, now, delivery_count, &mut effects);
            }
            claimed.push((id, (!claim.justid).then(|| fields.clone())));
            count -= 1;
        }
        let next = match (exhausted, cursor) {
            (false, Some(from)) => g
                .pel
                .range(from..)
                .next()
                .map_or(StreamId::MIN, |(id, _)| *id),
            _ => StreamId::MIN,
        };
        if !deleted.is_empty() {
            effects.push(StreamEffect::Ack {
                group: group.clone(),
                ids: deleted.clone(),
            });
        }
        stream.groups.insert(group, g);
        db.journal_stream(key, &effects);
        Ok(AutoClaimed {
            next,
            claimed,
            deleted,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::entries::{self, AddOptions, IdRequest};
    use crate::{Journal, Keyspace, ManualClock};
    use parking_lot::Mutex;
    use proptest::prelude::*;
    use std::sync::Arc;

    const T0: u64 = 1_800_000_000_000;

    /// What the journal was told about a key.
    #[derive(Debug, Clone)]
    enum Event {
        Effects(Vec<StreamEffect>),
        Replaced(StreamValue),
        Deleted,
    }

    /// Records every journaled event, per key, in order.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(Vec<u8>, Event)>>);

    impl Journal for Recorder {
        fn stream(&self, _db: usize, _: u64, key: &[u8], effects: &[StreamEffect]) {
            let event = Event::Effects(effects.to_vec());
            self.0.lock().push((key.to_vec(), event));
        }
        fn stream_replaced(
            &self,
            _: usize,
            _: u64,
            key: &[u8],
            value: &StreamValue,
            _: Option<u64>,
        ) {
            let event = Event::Replaced(value.clone());
            self.0.lock().push((key.to_vec(), event));
        }
        fn deleted(&self, _: usize, _: u64, key: &[u8]) {
            self.0.lock().push((key.to_vec(), Event::Deleted));
        }
        fn command(&self, _: usize, _: u64, _: &[bytes::Bytes]) {}
        fn value(&self, _: usize, _: u64, _: &[u8], _: &crate::Entry) {}
        fn set_removed(&self, _: usize, _: u64, _: &[u8], _: &[bytes::Bytes]) {}
        fn flushed_db(&self, _: usize) {}
        fn begin_atomic(&self) {}
        fn end_atomic(&self) {}
        fn stream_expire(&self, _: usize, _: u64, _: &[u8], _: Option<u64>) {}
        fn flushed_all(&self) {}
        fn swapped(&self, _: usize, _: usize) {}
        fn take_pending(&self) -> crate::Durability {
            crate::Durability::Nothing
        }

        fn barrier(&self) -> crate::Durability {
            crate::Durability::Nothing
        }
    }

    fn setup() -> (Arc<ManualClock>, Keyspace, Arc<Recorder>) {
        let clock = Arc::new(ManualClock::new(T0));
        let ks = Keyspace::new(clock.clone(), 1 << 20);
        let recorder = Arc::new(Recorder::default());
        assert!(ks.set_journal(recorder.clone()).is_ok());
        (clock, ks, recorder)
    }

    fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    fn add(db: &DbRef<'_>, key: &[u8], ms: u64) {
        let options = AddOptions {
            id: IdRequest::Exact(id(ms)),
            no_mkstream: false,
            trim: None,
        };
        entries::add(db, key, &[b"f".as_slice(), b"v".as_slice()], &options).unwrap();
    }

    fn stream(db: &DbRef<'_>, key: &[u8]) -> StreamValue {
        view(db, key, Clone::clone).unwrap().unwrap()
    }

    fn new_read<'a>(group: &'a [u8], consumer: &'a [u8], count: usize) -> ReadGroup<'a> {
        ReadGroup {
            group,
            consumer,
            from: ReadFrom::New,
            count,
            noack: false,
        }
    }

    /// The lag and entries-read values Redis 7.0.15 gives for a stream of 1..=3 whose
    /// first entry was deleted (checked against the real server).
    #[test]
    fn groups_lag_follows_redis_estimates() {
        let (_, ks, _) = setup();
        let db = ks.db(0).unwrap();
        for ms in 1..=3 {
            add(&db, b"f", ms);
        }
        entries::delete(&db, b"f", &[id(1)]).unwrap();
        let start = |g: &[u8], at: u64, read: Option<u64>| {
            create(&db, b"f", g, GroupStart::Id(id(at)), false, read).unwrap();
        };
        start(b"g", 0, Some(0));
        start(b"g2", 0, None);
        start(b"g3", 2, None);
        start(b"g4", 1, None);
        start(b"g6", 9, None);
        let lags =
            |s: &StreamValue| -> Vec<Option<i64>> { s.groups.values().map(|g| s.lag(g)).collect() };
        let s = stream(&db, b"f");
        assert_eq!(lags(&s), vec![Some(3), Some(2), Some(1), Some(2), None]);
        for g in [b"g2".as_slice(), b"g"] {
            read_group(&db, b"f", &new_read(g, b"c", 1)).unwrap();
        }
        let s = stream(&db, b"f");
        assert_eq!(s.groups[b"g".as_slice()].entries_read, Some(1));
        assert_eq!(s.groups[b"g2".as_slice()].entries_read, Some(2));
        assert_eq!(lags(&s)[..2], [Some(2), Some(1)]);
    }

    #[test]
    fn groups_history_reads_redeliver_and_show_deleted_entries() {
        let (clock, ks, _) = setup();
        let db = ks.db(0).unwrap();
        for ms in 1..=3 {
            add(&db, b"s", ms);
        }
        create(&db, b"s", b"g", GroupStart::Id(StreamId::MIN), false, None).unwrap();
        let got = read_group(&db, b"s", &new_read(b"g", b"c", 0))
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            read_group(&db, b"s", &new_read(b"g", b"c", 0)).unwrap(),
            None
        );
        entries::delete(&db, b"s", &[id(2)]).unwrap();
        clock.advance(50);
        let db = ks.db(0).unwrap();
        let history = ReadGroup {
            from: ReadFrom::History(id(1)),
            ..new_read(b"g", b"c", 0)
        };
        let got = read_group(&db, b"s", &history).unwrap().unwrap();
        assert_eq!(
            got.iter().map(|e| (e.0, e.1.is_some())).collect::<Vec<_>>(),
            vec![(id(2), false), (id(3), true)]
        );
        let s = stream(&db, b"s");
        let pel = &s.groups[b"g".as_slice()].pel;
        assert_eq!(pel[&id(1)].delivery_count, 1, "1-0 is not above the id");
        assert_eq!(pel[&id(2)].delivery_count, 1, "deleted: untouched");
        assert_eq!(
            (pel[&id(3)].delivery_count, pel[&id(3)].delivery_ms),
            (2, T0 + 50)
        );
    }

    #[test]
    fn groups_autoclaim_counts_deleted_entries_and_returns_a_cursor() {
        let (_, ks, _) = setup();
        let db = ks.db(0).unwrap();
        for ms in 1..=7 {
            add(&db, b"s", ms);
        }
        create(&db, b"s", b"g", GroupStart::Id(StreamId::MIN), false, None).unwrap();
        read_group(&db, b"s", &new_read(b"g", b"c1", 0)).unwrap();
        entries::delete(&db, b"s", &[id(2), id(3), id(6)]).unwrap();
        let auto = |start: u64, count: u64, justid: bool| {
            auto_claim(
                &db,
                b"s",
                &AutoClaim {
                    group: b"g",
                    consumer: b"c2",
                    min_idle: 0,
                    start: id(start),
                    count,
                    justid,
                },
            )
            .unwrap()
        };
        let first = auto(0, 1, false);
        assert_eq!(
            (first.next, first.claimed.len(), first.deleted.len()),
            (id(2), 1, 0)
        );
        let second = auto(0, 2, true);
        assert_eq!(second.next, id(3));
        assert_eq!(second.claimed, vec![(id(1), None)]);
        assert_eq!(second.deleted, vec![id(2)]);
        let rest = auto(0, 100, false);
        assert_eq!(rest.next, StreamId::MIN);
        assert_eq!(
            rest.claimed.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![id(1), id(4), id(5), id(7)]
        );
        assert_eq!(rest.deleted, vec![id(3), id(6)]);
        let s = stream(&db, b"s");
        let g = &s.groups[b"g".as_slice()];
        assert_eq!(
            g.pel[&id(1)].delivery_count,
            3,
            "claimed twice, once JUSTID"
        );
        assert!(g.consumers[b"c1".as_slice()].pel.is_empty());
    }

    #[test]
    fn groups_claim_force_idle_and_lastid() {
        let (clock, ks, _) = setup();
        let db = ks.db(0).unwrap();
        for ms in 1..=3 {
            add(&db, b"s", ms);
        }
        create(&db, b"s", b"g", GroupStart::Id(StreamId::MIN), false, None).unwrap();
        read_group(&db, b"s", &new_read(b"g", b"c1", 1)).unwrap();
        clock.advance(100);
        let db = ks.db(0).unwrap();
        let base = Claim {
            group: b"g",
            consumer: b"c2",
            min_idle: 500,
            ids: vec![id(1), id(3), id(9)],
            delivery: DeliveryTime::Now,
            retry_count: None,
            force: false,
            justid: false,
            last_id: Some(id(2)),
        };
        assert_eq!(
            claim(&db, b"s", &base).unwrap(),
            vec![],
            "not idle long enough"
        );
        let s = stream(&db, b"s");
        assert!(
            !s.groups[b"g".as_slice()]
                .consumers
                .contains_key(b"c2".as_slice()),
            "nothing claimed: not created"
        );
        assert_eq!(
            s.groups[b"g".as_slice()].last_id,
            id(2),
            "LASTID applies anyway"
        );
        let forced = Claim {
            min_idle: 0,
            force: true,
            delivery: DeliveryTime::Idle(40),
            ..base.clone()
        };
        let got = claim(&db, b"s", &forced).unwrap();
        assert_eq!(
            got.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![id(1), id(3)]
        );
        let s = stream(&db, b"s");
        let pel = &s.groups[b"g".as_slice()].pel;
        assert_eq!(
            (pel[&id(1)].delivery_count, pel[&id(1)].delivery_ms),
            (2, T0 + 60)
        );
        assert_eq!(
            pel[&id(3)].delivery_count,
            2,
            "FORCE creates with 1, then counts the claim"
        );
        assert_eq!(pel[&id(3)].consumer, "c2");
        let future = Claim {
            delivery: DeliveryTime::At(i64::MAX),
            retry_count: Some(7),
            ids: vec![id(3)],
            ..forced
        };
        claim(&db, b"s", &future).unwrap();
        let p = &stream(&db, b"s").groups[b"g".as_slice()].pel[&id(3)];
        assert_eq!(
            (p.delivery_ms, p.delivery_count),
            (T0 + 100, 7),
            "a future time is now"
        );
    }

    #[test]
    fn groups_errors_and_consumers() {
        let (_, ks, _) = setup();
        let db = ks.db(0).unwrap();
        let start = GroupStart::Last;
        assert_eq!(
            create(&db, b"s", b"g", start, false, None),
            Err(GroupError::NoKey)
        );
        assert_eq!(create(&db, b"s", b"g", start, true, None), Ok(()));
        assert_eq!(
            create(&db, b"s", b"g", start, true, None),
            Err(GroupError::BusyGroup)
        );
        assert_eq!(
            set_id(&db, b"s", b"x", start, None),
            Err(GroupError::NoGroup)
        );
        assert_eq!(create_consumer(&db, b"s", b"g", b"c"), Ok(true));
        assert_eq!(create_consumer(&db, b"s", b"g", b"c"), Ok(false));
        assert_eq!(delete_consumer(&db, b"s", b"g", b"c"), Ok(0));
        assert_eq!(ack(&db, b"nokey", b"g", &[id(1)]), Ok(0));
        assert_eq!(destroy(&db, b"s", b"g"), Ok(true));
        assert_eq!(destroy(&db, b"s", b"g"), Ok(false));
        crate::strings::set(&db, b"str", b"x", Default::default()).unwrap();
        assert_eq!(probe(&db, b"str", None), Err(GroupError::WrongType));
        assert_eq!(probe(&db, b"s", Some(b"g")), Err(GroupError::NoGroup));
    }

    /// One random operation on the streams `a` and `b`. Ids are selectors, resolved at
    /// run time against the ids the stream has or had pending (see `pick`), so operations
    /// meet existing, deleted-but-pending and absent entries often.
    #[derive(Debug, Clone)]
    enum Op {
        Add(bool),
        Del(bool, usize),
        Create(bool, u8, Option<usize>, bool, Option<u64>),
        SetId(bool, u8, Option<usize>, Option<u64>),
        Destroy(bool, u8),
        CreateConsumer(bool, u8, u8),
        DelConsumer(bool, u8, u8),
        Read(bool, u8, u8, Option<usize>, usize, bool),
        Ack(bool, u8, Vec<usize>),
        Claim(bool, u8, u8, u64, Vec<usize>, u8, bool, bool, Option<usize>),
        AutoClaim(bool, u8, u8, u64, usize, u64, bool),
        Tick(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = any::<bool>();
        let g = 0u8..2;
        let c = 0u8..3;
        let sel = any::<usize>();
        let opt = proptest::option::of(any::<usize>());
        prop_oneof![
            5 => key.prop_map(Op::Add),
            2 => (key, sel).prop_map(|(k, i)| Op::Del(k, i)),
            2 => (key, g.clone(), opt.clone(), any::<bool>(), proptest::option::of(0u64..10))
                .prop_map(|(k, g, i, mk, r)| Op::Create(k, g, i, mk, r)),
            1 => (key, g.clone(), opt.clone(), proptest::option::of(0u64..10))
                .prop_map(|(k, g, i, r)| Op::SetId(k, g, i, r)),
            1 => (key, g.clone()).prop_map(|(k, g)| Op::Destroy(k, g)),
            1 => (key, g.clone(), c.clone()).prop_map(|(k, g, c)| Op::CreateConsumer(k, g, c)),
            1 => (key, g.clone(), c.clone()).prop_map(|(k, g, c)| Op::DelConsumer(k, g, c)),
            5 => (key, g.clone(), c.clone(), opt.clone(), 0usize..4, any::<bool>())
                .prop_map(|(k, g, c, h, n, na)| Op::Read(k, g, c, h, n, na)),
            2 => (key, g.clone(), proptest::collection::vec(sel, 0..4))
                .prop_map(|(k, g, ids)| Op::Ack(k, g, ids)),
            3 => (
                (key, g.clone(), c.clone(), 0u64..3),
                proptest::collection::vec(sel, 1..4),
                (0u8..4, any::<bool>(), any::<bool>(), opt),
            )
                .prop_map(|((k, g, c, idle), ids, (d, f, j, l))| Op::Claim(k, g, c, idle, ids, d, f, j, l)),
            3 => (key, g, c, 0u64..3, sel, 1u64..4, any::<bool>())
                .prop_map(|(k, g, c, idle, s, n, j)| Op::AutoClaim(k, g, c, idle, s, n, j)),
            1 => (0u64..3).prop_map(Op::Tick),
        ]
    }

    /// Resolves a selector to an id: one of the stream's entries, of the ids pending in
    /// any group (deleted entries included), or an id nothing has.
    fn pick(db: &DbRef<'_>, key: &[u8], selector: usize) -> StreamId {
        let mut ids: Vec<StreamId> = view(db, key, |s| {
            let mut ids: Vec<StreamId> = s.entries.keys().copied().collect();
            for g in s.groups.values() {
                ids.extend(g.pel.keys());
            }
            ids
        })
        .ok()
        .flatten()
        .unwrap_or_default();
        ids.push(StreamId::new(1, 0));
        ids.sort_unstable();
        ids.dedup();
        ids[selector % ids.len()]
    }

    fn run(clock: &ManualClock, ks: &Keyspace, op: &Op) {
        let db = ks.db(0).unwrap();
        let key = |k: bool| if k { b"a".as_slice() } else { b"b".as_slice() };
        let group = |g: u8| [b'g', b'0' + g];
        let consumer = |c: u8| [b'c', b'0' + c];
        let at = |k: bool, i: usize| pick(&db, key(k), i);
        // Errors (a missing group, an id not above the top) are outcomes like any other:
        // they must change nothing and journal nothing, which the replay checks.
        match op {
            Op::Add(k) => {
                let options = AddOptions {
                    id: IdRequest::Auto,
                    no_mkstream: false,
                    trim: None,
                };
                let _ = entries::add(&db, key(*k), &[b"f".as_slice(), b"v".as_slice()], &options);
            }
            Op::Del(k, i) => {
                let _ = entries::delete(&db, key(*k), &[at(*k, *i)]);
            }
            Op::Create(k, g, i, mk, read) => {
                let start = i.map_or(GroupStart::Last, |i| GroupStart::Id(at(*k, i)));
                let _ = create(&db, key(*k), &group(*g), start, *mk, *read);
            }
            Op::SetId(k, g, i, read) => {
                let start = i.map_or(GroupStart::Last, |i| GroupStart::Id(at(*k, i)));
                let _ = set_id(&db, key(*k), &group(*g), start, *read);
            }
            Op::Destroy(k, g) => {
                let _ = destroy(&db, key(*k), &group(*g));
            }
            Op::CreateConsumer(k, g, c) => {
                let _ = create_consumer(&db, key(*k), &group(*g), &consumer(*c));
            }
            Op::DelConsumer(k, g, c) => {
                let _ = delete_consumer(&db, key(*k), &group(*g), &consumer(*c));
            }
            Op::Read(k, g, c, history, count, noack) => {
                let (g, c) = (group(*g), consumer(*c));
                let read = ReadGroup {
                    group: &g,
                    consumer: &c,
                    from: history.map_or(ReadFrom::New, |i| ReadFrom::History(at(*k, i))),
                    count: *count,
                    noack: *noack,
                };
                let _ = read_group(&db, key(*k), &read);
            }
            Op::Ack(k, g, ids) => {
                let ids: Vec<StreamId> = ids.iter().map(|i| at(*k, *i)).collect();
                let _ = ack(&db, key(*k), &group(*g), &ids);
            }
            Op::Claim(k, g, c, idle, ids, delivery, force, justid, last) => {
                let (g, c) = (group(*g), consumer(*c));
                let claim_args = Claim {
                    group: &g,
                    consumer: &c,
                    min_idle: *idle,
                    ids: ids.iter().map(|i| at(*k, *i)).collect(),
                    delivery: match delivery {
                        0 => DeliveryTime::Now,
                        1 => DeliveryTime::Idle(1),
                        2 => DeliveryTime::At(T0 as i64),
                        _ => DeliveryTime::Idle(-5),
                    },
                    retry_count: (*delivery == 3).then_some(9),
                    force: *force,
                    justid: *justid,
                    last_id: last.map(|i| at(*k, i)),
                };
                let _ = claim(&db, key(*k), &claim_args);
            }
            Op::AutoClaim(k, g, c, idle, start, count, justid) => {
                let (g, c) = (group(*g), consumer(*c));
                let args = AutoClaim {
                    group: &g,
                    consumer: &c,
                    min_idle: *idle,
                    start: at(*k, *start),
                    count: *count,
                    justid: *justid,
                };
                let _ = auto_claim(&db, key(*k), &args);
            }
            Op::Tick(ms) => clock.advance(*ms),
        }
    }

    /// The PEL invariant of the module: the group PEL and the consumers' PELs hold the
    /// same ids, each owned by the consumer that lists it.
    fn check_pels(s: &StreamValue) {
        for g in s.groups.values() {
            let mut owned = 0;
            for (name, c) in &g.consumers {
                for id in &c.pel {
                    assert_eq!(&g.pel[id].consumer, name);
                }
                owned += c.pel.len();
            }
            assert_eq!(owned, g.pel.len());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// The journal law: replaying what was journaled rebuilds every stream exactly.
        #[test]
        fn groups_journal_replays_to_the_same_streams(ops in proptest::collection::vec(op(), 1..80)) {
            let (clock, ks, recorder) = setup();
            for op in &ops {
                run(&clock, &ks, op);
            }
            let db = ks.db(0).unwrap();
            for key in [b"a".as_slice(), b"b"] {
                let mut replayed: Option<StreamValue> = None;
                for (k, event) in recorder.0.lock().iter() {
                    if k.as_slice() != key {
                        continue;
                    }
                    match event {
                        Event::Effects(effects) => {
                            let value = replayed.get_or_insert_with(StreamValue::default);
                            for effect in effects {
                                value.apply(effect);
                            }
                        }
                        Event::Replaced(value) => replayed = Some(value.clone()),
                        Event::Deleted => replayed = None,
                    }
                }
                let stored = view(&db, key, Clone::clone).unwrap();
                if let Some(s) = &stored {
                    check_pels(s);
                }
                prop_assert_eq!(replayed, stored);
            }
        }
    }
}
