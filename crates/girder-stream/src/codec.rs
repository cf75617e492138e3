//! The journal's record format: one log record per change, versioned.
//!
//! ```text
//! record   := version:u8 (= 1) tag:u8 body
//! tag 1    Effects   db:u8 key:bytes count:varint effect*
//! tag 2    Replaced  db:u8 key:bytes expire:opt-varint stream
//! tag 3    Deleted   db:u8 key:bytes
//! tag 4    Expire    db:u8 key:bytes expire:opt-varint
//! tag 5    FlushedAll
//! tag 6    Swapped   a:u8 b:u8
//! tag 7    SnapshotBegin
//! tag 8    SnapshotEnd
//! tag 9    Entries   db:u8 key:bytes count:varint (id fields)*
//! tag 10   Pending   db:u8 key:bytes group:bytes count:varint (id consumer:bytes ms count)*
//! tag 11   Command   db:u8 count:varint arg:bytes*         (a replayable write command)
//! tag 12   Value     db:u8 key:bytes expire:opt-varint value  (a key's whole non-stream value)
//! tag 13   SetRemoved db:u8 key:bytes count:varint member:bytes*   (SPOP's choice)
//! tag 14   FlushedDb db:u8
//! tag 15   Batch     count:varint (timestamp:varint record:bytes)*  (a transaction, or a snapshot's values: whole or nothing)
//! tag 16   Compressed len:varint lz4-block   (another record, LZ4-compressed; `len` is its size)
//!
//! value    := 1 int:varint (two's complement) | 2 str:bytes | 3 raw:bytes
//!           | 4 count (field:bytes value:bytes)* | 5 count item:bytes*
//!           | 6 count member:bytes* | 7 count (member:bytes score:f64 LE)*
//! ```
//!
//! Tags 11–14 come from journaling every write (`persistence.mode = aof`, or while a
//! snapshot is taken); a `Command` is replayed through the front end that journaled it,
//! at the record's time.
//!
//! A large stream is written as `Replaced` with its metadata and the first entries, then
//! `Entries` and `Pending` records of at most [`CHUNK_BYTES`] each, all appended while the
//! key's shard is locked (nothing else about the key comes between them); so no record
//! grows with the stream, whatever its size.
//!
//! ```text
//! bytes    := len:varint data
//! id       := ms:varint seq:varint
//! opt-X    := 0 | 1 X
//! ```
//!
//! A snapshot writes a shard's values as `Batch` records of about a chunk each, and
//! compresses its larger records ([`compress`]): those batches, a stream's chunks and big values
//! take a fraction of the disk and of the fsyncs' bytes when their data repeats itself,
//! as Redis's RDB compresses strings with LZF. Live changes are never compressed. A
//! `Compressed` record holds any other record but a `Compressed` one.
//!
//! Integers are LEB128 varints. A reader takes a varint with padding (continuation bits
//! over zero groups): an `Entries` or `Pending` chunk's count is written as five bytes in
//! front of its items, which are encoded in place before the count is known.
//! The log under the journal checksums every record
//! (CRC32C), so this layer checks structure, not bits: a record that does not decode is
//! [`DecodeError`], never skipped.

use bytes::Bytes;
use girder_kv::streams::{
    Consumer, ConsumerGroup, Fields, PendingEntry, StreamEffect, StreamId, StreamValue,
};
use girder_kv::{Entry, Value};

/// The format version written by this build.
pub const VERSION: u8 = 1;

/// One journal record.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalRecord {
    /// The effects of one stream operation.
    Effects {
        /// Database index.
        db: u8,
        /// The stream's key.
        key: Bytes,
        /// What the operation did.
        effects: Vec<StreamEffect>,
    },
    /// The key now holds this stream (RENAME, COPY, MOVE, creation, compaction).
    Replaced {
        /// Database index.
        db: u8,
        /// The key.
        key: Bytes,
        /// Its deadline.
        expire_at: Option<u64>,
        /// The whole stream.
        value: Box<StreamValue>,
    },
    /// The stream at the key was deleted or overwritten by another type.
    Deleted {
        /// Database index.
        db: u8,
        /// The key.
        key: Bytes,
    },
    /// The stream's deadline changed.
    Expire {
        /// Database index.
        db: u8,
        /// The key.
        key: Bytes,
        /// The new deadline.
        expire_at: Option<u64>,
    },
    /// FLUSHALL.
    FlushedAll,
    /// SWAPDB a b.
    Swapped {
        /// One database.
        a: u8,
        /// The other.
        b: u8,
    },
    /// A compaction snapshot starts: every stream follows as `Replaced`.
    SnapshotBegin,
    /// The compaction snapshot is complete.
    SnapshotEnd,
    /// More entries of the stream a `Replaced` record just began.
    Entries {
        /// Database index.
        db: u8,
        /// The key.
        key: Bytes,
        /// The entries, ascending.
        entries: Vec<(StreamId, Fields)>,
    },
    /// More pending entries of a group of the stream a `Replaced` record just began.
    Pending {
        /// Database index.
        db: u8,
        /// The key.
        key: Bytes,
        /// The group.
        group: Bytes,
        /// (id, owner, delivery time, delivery count).
        pending: Vec<(StreamId, Bytes, u64, u64)>,
    },
    /// One write command, replayed at the record's time.
    Command {
        /// Database index.
        db: u8,
        /// The command and its arguments.
        args: Vec<Bytes>,
    },
    /// The key now holds this (non-stream) value.
    Value {
        /// Database index.
        db: u8,
        /// The key.
        key: Bytes,
        /// The value and its deadline.
        entry: Entry,
    },
    /// These members left the set at the key (SPOP).
    SetRemoved {
        /// Database index.
        db: u8,
        /// The key.
        key: Bytes,
        /// The members.
        members: Vec<Bytes>,
    },
    /// FLUSHDB.
    FlushedDb {
        /// Database index.
        db: u8,
    },
    /// Records that are replayed together or not at all (MULTI/EXEC, or a snapshot's
    /// values from one shard, [`BatchBuilder`]), each with the time of its command.
    /// Never nested.
    Batch(Vec<(u64, JournalRecord)>),
}

/// The size a snapshot record aims at: a stream is split into records of about this
/// many bytes (each holds at least one entry).
pub const CHUNK_BYTES: usize = 1 << 20;

/// Records shorter than this are written as they are: LZ4's few bytes of framing and its
/// call cost buy nothing on a small record.
pub const COMPRESS_MIN: usize = 512;

/// A record that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable journal record: {0}")]
pub struct DecodeError(pub &'static str);

// ---------------------------------------------------------------------------------------
// Encoding

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_varint(out, id.ms);
    put_varint(out, id.seq);
}

fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_varint(out, v);
        }
    }
}

fn put_ids(out: &mut Vec<u8>, ids: &[StreamId]) {
    put_varint(out, ids.len() as u64);
    for id in ids {
        put_id(out, *id);
    }
}

/// Bytes of the count slot [`reserve_count`] leaves before the items it counts.
const COUNT_SLOT: usize = 5;

/// Leaves room in `out` for a count not known until its items are written, so they are
/// encoded in place instead of into a second buffer and copied; returns where the slot
/// is, for [`finish_count`].
fn reserve_count(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; COUNT_SLOT]);
    at
}

/// Writes `n` into the slot at `at` as a varint padded to [`COUNT_SLOT`] bytes (every
/// byte but the last with its continuation bit, which the reader takes like any other
/// varint); `None`, with `out` cleared, when `n` is 0: a chunk of nothing is no record.
fn finish_count(out: &mut Vec<u8>, at: usize, n: u64) -> Option<()> {
    if n == 0 {
        out.clear();
        return None;
    }
    assert!(n < 1 << (7 * COUNT_SLOT), "a chunk's count fits its slot");
    for (i, byte) in out[at..at + COUNT_SLOT].iter_mut().enumerate() {
        let part = ((n >> (7 * i)) & 0x7f) as u8;
        *byte = if i + 1 < COUNT_SLOT {
            part | 0x80
        } else {
            part
        };
    }
    Some(())
}

fn put_fields(out: &mut Vec<u8>, fields: &[Bytes]) {
    put_varint(out, fields.len() as u64);
    for f in fields {
        put_bytes(out, f);
    }
}

/// Appends the encoding of the effects of one operation on (`db`, `key`) to `out`.
pub fn encode_effects(out: &mut Vec<u8>, db: usize, key: &[u8], effects: &[StreamEffect]) {
    out.extend_from_slice(&[VERSION, 1, db as u8]);
    put_bytes(out, key);
    put_varint(out, effects.len() as u64);
    for effect in effects {
        encode_effect(out, effect);
    }
}

fn encode_effect(out: &mut Vec<u8>, effect: &StreamEffect) {
    match effect {
        StreamEffect::Create => out.push(1),
        StreamEffect::Add { id, fields } => {
            out.push(2);
            put_id(out, *id);
            put_fields(out, fields);
        }
        StreamEffect::Delete { ids } => {
            out.push(3);
            put_ids(out, ids);
        }
        StreamEffect::TrimThrough { through } => {
            out.push(4);
            put_id(out, *through);
        }
        StreamEffect::SetId {
            last_id,
            entries_added,
            max_deleted_id,
        } => {
            out.push(5);
            put_id(out, *last_id);
            put_opt(out, *entries_added);
            match max_deleted_id {
                None => out.push(0),
                Some(id) => {
                    out.push(1);
                    put_id(out, *id);
                }
            }
        }
        StreamEffect::GroupCursor {
            group,
            last_id,
            entries_read,
        } => {
            out.push(6);
            put_bytes(out, group);
            put_id(out, *last_id);
            put_opt(out, *entries_read);
        }
        StreamEffect::GroupDestroy { group } => {
            out.push(7);
            put_bytes(out, group);
        }
        StreamEffect::ConsumerSeen {
            group,
            consumer,
            seen_ms,
        } => {
            out.push(8);
            put_bytes(out, group);
            put_bytes(out, consumer);
            put_varint(out, *seen_ms);
        }
        StreamEffect::ConsumerDelete { group, consumer } => {
            out.push(9);
            put_bytes(out, group);
            put_bytes(out, consumer);
        }
        StreamEffect::Pending {
            group,
            id,
            consumer,
            delivery_ms,
            delivery_count,
        } => {
            out.push(10);
            put_bytes(out, group);
            put_id(out, *id);
            put_bytes(out, consumer);
            put_varint(out, *delivery_ms);
            put_varint(out, *delivery_count);
        }
        StreamEffect::Ack { group, ids } => {
            out.push(11);
            put_bytes(out, group);
            put_ids(out, ids);
        }
    }
}

/// Appends the encoding of a whole stream at (`db`, `key`) to `out`.
pub fn encode_replaced(
    out: &mut Vec<u8>,
    db: usize,
    key: &[u8],
    value: &StreamValue,
    expire_at: Option<u64>,
) {
    out.extend_from_slice(&[VERSION, 2, db as u8]);
    put_bytes(out, key);
    put_opt(out, expire_at);
    put_varint(out, value.entries.len() as u64);
    for (id, fields) in &value.entries {
        put_id(out, *id);
        put_fields(out, fields);
    }
    put_id(out, value.last_id);
    put_varint(out, value.entries_added);
    put_id(out, value.max_deleted_id);
    put_varint(out, value.groups.len() as u64);
    for (name, group) in &value.groups {
        put_bytes(out, name);
        put_id(out, group.last_id);
        put_opt(out, group.entries_read);
        put_varint(out, group.consumers.len() as u64);
        for (cname, consumer) in &group.consumers {
            put_bytes(out, cname);
            put_varint(out, consumer.seen_ms);
        }
        put_varint(out, group.pel.len() as u64);
        for (id, p) in &group.pel {
            put_id(out, *id);
            put_bytes(out, &p.consumer);
            put_varint(out, p.delivery_ms);
            put_varint(out, p.delivery_count);
        }
    }
}

/// Encodes the whole stream at (`db`, `key`) as one or more records of about
/// [`CHUNK_BYTES`] each, handing each to `emit`: a `Replaced` record with the stream's
/// metadata, its consumers and its first entries, then `Entries` and `Pending` records.
pub fn encode_stream(
    db: usize,
    key: &[u8],
    value: &StreamValue,
    expire_at: Option<u64>,
    chunk_bytes: usize,
    mut emit: impl FnMut(&[u8]),
) {
    let pending: usize = value.groups.values().map(|g| g.pel.len()).sum();
    let mut out = Vec::new();
    if value.entries.len() + pending <= 64 {
        encode_replaced(&mut out, db, key, value, expire_at);
        if out.len() <= chunk_bytes {
            emit(&out);
            return;
        }
        out.clear();
    }
    encode_head(&mut out, db, key, value, expire_at);
    emit(&out);
    let mut after = None;
    while let Some(last) = encode_entries_chunk(&mut out, db, key, value, after, chunk_bytes) {
        emit(&out);
        after = Some(last);
    }
    for name in value.groups.keys() {
        let mut after = None;
        while let Some(last) =
            encode_pending_chunk(&mut out, db, key, value, name, after, chunk_bytes)
        {
            emit(&out);
            after = Some(last);
        }
    }
}

/// Writes into `out` (cleared first) the head of a stream split into chunks: a
/// `Replaced` record with the metadata, the groups and their consumers, and no entries
/// and no pending entries (those follow as [`encode_entries_chunk`] and
/// [`encode_pending_chunk`] records).
pub fn encode_head(
    out: &mut Vec<u8>,
    db: usize,
    key: &[u8],
    value: &StreamValue,
    expire_at: Option<u64>,
) {
    out.clear();
    out.extend_from_slice(&[VERSION, 2, db as u8]);
    put_bytes(out, key);
    put_opt(out, expire_at);
    put_varint(out, 0);
    put_id(out, value.last_id);
    put_varint(out, value.entries_added);
    put_id(out, value.max_deleted_id);
    put_varint(out, value.groups.len() as u64);
    for (name, group) in &value.groups {
        put_bytes(out, name);
        put_id(out, group.last_id);
        put_opt(out, group.entries_read);
        put_varint(out, group.consumers.len() as u64);
        for (cname, consumer) in &group.consumers {
            put_bytes(out, cname);
            put_varint(out, consumer.seen_ms);
        }
        put_varint(out, 0);
    }
}

/// Writes into `out` (cleared first) an `Entries` record of the entries after `after`
/// (from the first when `None`), about `chunk_bytes` of them (at least one); returns the
/// last id written, or `None` (and `out` empty) when there are no more.
pub fn encode_entries_chunk(
    out: &mut Vec<u8>,
    db: usize,
    key: &[u8],
    value: &StreamValue,
    after: Option<StreamId>,
    chunk_bytes: usize,
) -> Option<StreamId> {
    out.clear();
    let range = match after {
        None => value.entries.range(..),
        Some(id) => value
            .entries
            .range((std::ops::Bound::Excluded(id), std::ops::Bound::Unbounded)),
    };
    out.extend_from_slice(&[VERSION, 9, db as u8]);
    put_bytes(out, key);
    let count = reserve_count(out);
    let (mut n, mut last) = (0u64, None);
    for (id, fields) in range {
        put_id(out, *id);
        put_fields(out, fields);
        n += 1;
        last = Some(*id);
        if out.len() - count >= chunk_bytes {
            break;
        }
    }
    finish_count(out, count, n)?;
    last
}

/// As [`encode_entries_chunk`], for the pending entries of `group` (a `Pending`
/// record); `None` also when the group does not exist.
pub fn encode_pending_chunk(
    out: &mut Vec<u8>,
    db: usize,
    key: &[u8],
    value: &StreamValue,
    group: &[u8],
    after: Option<StreamId>,
    chunk_bytes: usize,
) -> Option<StreamId> {
    out.clear();
    let pel = &value.groups.get(group)?.pel;
    let range = match after {
        None => pel.range(..),
        Some(id) => pel.range((std::ops::Bound::Excluded(id), std::ops::Bound::Unbounded)),
    };
    out.extend_from_slice(&[VERSION, 10, db as u8]);
    put_bytes(out, key);
    put_bytes(out, group);
    let count = reserve_count(out);
    let (mut n, mut last) = (0u64, None);
    for (id, p) in range {
        put_id(out, *id);
        put_bytes(out, &p.consumer);
        put_varint(out, p.delivery_ms);
        put_varint(out, p.delivery_count);
        n += 1;
        last = Some(*id);
        if out.len() - count >= chunk_bytes {
            break;
        }
    }
    finish_count(out, count, n)?;
    last
}

/// Appends a `Command` record.
pub fn encode_command(out: &mut Vec<u8>, db: usize, args: &[Bytes]) {
    out.extend_from_slice(&[VERSION, 11, db as u8]);
    put_varint(out, args.len() as u64);
    for a in args {
        put_bytes(out, a);
    }
}

/// Appends a `Value` record.
pub fn encode_value(out: &mut Vec<u8>, db: usize, key: &[u8], entry: &Entry) {
    out.extend_from_slice(&[VERSION, 12, db as u8]);
    put_bytes(out, key);
    put_opt(out, entry.expire_at);
    match &entry.value {
        Value::Int(i) => {
            out.push(1);
            put_varint(out, *i as u64);
        }
        // One record type for a string however it is held: the length decides.
        Value::Small(s) => {
            out.push(2);
            put_bytes(out, s.as_bytes());
        }
        Value::Str(b) => {
            out.push(2);
            put_bytes(out, b);
        }
        Value::Raw(b) => {
            out.push(3);
            put_bytes(out, b);
        }
        Value::Hash(h) => {
            out.push(4);
            put_varint(out, h.len() as u64);
            for (f, v) in h.pairs() {
                put_bytes(out, f);
                put_bytes(out, v);
            }
        }
        Value::List(l) => {
            out.push(5);
            put_varint(out, l.iter().len() as u64);
            for item in l.iter() {
                put_bytes(out, item);
            }
        }
        Value::Set(set) => {
            out.push(6);
            put_varint(out, set.len() as u64);
            set.iter().for_each(|m| put_bytes(out, m));
        }
        Value::ZSet(z) => {
            out.push(7);
            put_varint(out, z.len() as u64);
            for (m, score) in z.iter() {
                put_bytes(out, m);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        // Streams have records of their own; the journal never asks for this.
        Value::Stream(_) => unreachable!("a stream is journaled by its own records"),
    }
}

/// Appends a `Batch` record of already encoded records and their times.
pub fn encode_batch(out: &mut Vec<u8>, items: &[(u64, Vec<u8>)]) {
    out.extend_from_slice(&[VERSION, 15]);
    put_varint(out, items.len() as u64);
    for (ts, record) in items {
        put_batch_item(out, *ts, record);
    }
}

/// One item of a `Batch` record; returns where its record's bytes start in `out`.
fn put_batch_item(out: &mut Vec<u8>, ts: u64, record: &[u8]) -> usize {
    put_varint(out, ts);
    put_bytes(out, record);
    out.len() - record.len()
}

/// A `Batch` record built one encoded record at a time: a snapshot groups many small
/// values into one log record (one frame, one compression) instead of a frame each.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    /// The items so far: `(timestamp:varint record:bytes)*`.
    body: Vec<u8>,
    count: u64,
    /// Where the first item's record starts in `body` (a lone record is emitted bare,
    /// not as a batch of one).
    first: usize,
}

impl BatchBuilder {
    /// Adds the encoded `record`, stamped `ts`.
    pub fn push(&mut self, ts: u64, record: &[u8]) {
        let at = put_batch_item(&mut self.body, ts, record);
        if self.count == 0 {
            self.first = at;
        }
        self.count += 1;
    }

    /// Bytes of the items so far.
    pub fn bytes(&self) -> usize {
        self.body.len()
    }

    /// Whether nothing was pushed since the last [`BatchBuilder::finish`].
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Writes into `out` (cleared first) the record of what was pushed — the one record
    /// itself when there is one, a `Batch` of them when there are more — and starts over.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.clear();
        if self.count == 1 {
            out.extend_from_slice(&self.body[self.first..]);
        } else if self.count > 1 {
            out.extend_from_slice(&[VERSION, 15]);
            put_varint(out, self.count);
            out.extend_from_slice(&self.body);
        }
        self.body.clear();
        self.count = 0;
    }
}

/// Appends a `SetRemoved` record.
pub fn encode_set_removed(out: &mut Vec<u8>, db: usize, key: &[u8], members: &[Bytes]) {
    out.extend_from_slice(&[VERSION, 13, db as u8]);
    put_bytes(out, key);
    put_varint(out, members.len() as u64);
    for m in members {
        put_bytes(out, m);
    }
}

/// Appends the encoding of a key-level record (no stream body) to `out`.
pub fn encode_simple(out: &mut Vec<u8>, record: &JournalRecord) {
    match record {
        JournalRecord::Effects { db, key, effects } => {
            encode_effects(out, *db as usize, key, effects)
        }
        JournalRecord::Replaced {
            db,
            key,
            expire_at,
            value,
        } => encode_replaced(out, *db as usize, key, value, *expire_at),
        JournalRecord::Deleted { db, key } => {
            out.extend_from_slice(&[VERSION, 3, *db]);
            put_bytes(out, key);
        }
        JournalRecord::Expire { db, key, expire_at } => {
            out.extend_from_slice(&[VERSION, 4, *db]);
            put_bytes(out, key);
            put_opt(out, *expire_at);
        }
        JournalRecord::FlushedAll => out.extend_from_slice(&[VERSION, 5]),
        JournalRecord::Swapped { a, b } => out.extend_from_slice(&[VERSION, 6, *a, *b]),
        JournalRecord::SnapshotBegin => out.extend_from_slice(&[VERSION, 7]),
        JournalRecord::SnapshotEnd => out.extend_from_slice(&[VERSION, 8]),
        JournalRecord::Entries { db, key, entries } => {
            out.extend_from_slice(&[VERSION, 9, *db]);
            put_bytes(out, key);
            put_varint(out, entries.len() as u64);
            for (id, fields) in entries {
                put_id(out, *id);
                put_fields(out, fields);
            }
        }
        JournalRecord::Pending {
            db,
            key,
            group,
            pending,
        } => {
            out.extend_from_slice(&[VERSION, 10, *db]);
            put_bytes(out, key);
            put_bytes(out, group);
            put_varint(out, pending.len() as u64);
            for (id, consumer, ms, count) in pending {
                put_id(out, *id);
                put_bytes(out, consumer);
                put_varint(out, *ms);
                put_varint(out, *count);
            }
        }
        JournalRecord::Command { db, args } => encode_command(out, *db as usize, args),
        JournalRecord::Value { db, key, entry } => encode_value(out, *db as usize, key, entry),
        JournalRecord::SetRemoved { db, key, members } => {
            encode_set_removed(out, *db as usize, key, members)
        }
        JournalRecord::FlushedDb { db } => out.extend_from_slice(&[VERSION, 14, *db]),
        JournalRecord::Batch(items) => {
            let encoded: Vec<(u64, Vec<u8>)> =
                items.iter().map(|(ts, r)| (*ts, encode(r))).collect();
            encode_batch(out, &encoded);
        }
    }
}

/// Replaces `record`, a complete encoded record of at least [`COMPRESS_MIN`] bytes, by a
/// `Compressed` record holding it, if LZ4 makes it at least an eighth smaller; returns
/// whether it did. `scratch` is working space, kept between calls to save allocations.
///
/// A record over four [`COMPRESS_SAMPLE`]s is compressed only if its first sample
/// compresses: a snapshot compresses under the key's lock, and LZ4 goes through
/// incompressible bytes at a few hundred MB/s (measured: trying every 1 MiB chunk of
/// random 1 KiB entries made XADD 6–10% slower during rewrites and their p99 1.4–1.6×).
pub fn compress(record: &mut Vec<u8>, scratch: &mut Vec<u8>) -> bool {
    if record.len() < COMPRESS_MIN
        || (record.len() > 4 * COMPRESS_SAMPLE
            && shrinks(&record[..COMPRESS_SAMPLE], 0, scratch).is_none())
    {
        return false;
    }
    let Some(len) = shrinks(record, record.len(), scratch) else {
        return false;
    };
    scratch.truncate(len);
    std::mem::swap(record, scratch);
    true
}

/// The bytes of a record's first part that [`compress`] tries before the whole of it.
pub const COMPRESS_SAMPLE: usize = 8 << 10;

/// If LZ4 makes `bytes` at least an eighth smaller, the length of the `Compressed`
/// record of them, saying it holds `len` bytes, left at the start of `scratch`.
///
/// `scratch` is grown, never cleared: the compressor overwrites what it uses, so only
/// bytes the buffer never held are zeroed (zeroing a chunk's worst case each time was
/// 1% of the CPU of a journal rewrite).
fn shrinks(bytes: &[u8], len: usize, scratch: &mut Vec<u8>) -> Option<usize> {
    let mut head = Vec::with_capacity(12);
    head.extend_from_slice(&[VERSION, 16]);
    put_varint(&mut head, len as u64);
    let end = head.len() + lz4_flex::block::get_maximum_output_size(bytes.len());
    if scratch.len() < end {
        scratch.resize(end, 0);
    }
    scratch[..head.len()].copy_from_slice(&head);
    let n = lz4_flex::block::compress_into(bytes, &mut scratch[head.len()..end]).ok()?;
    let total = head.len() + n;
    (total <= bytes.len() - bytes.len() / 8).then_some(total)
}

/// The encoding of `record`.
pub fn encode(record: &JournalRecord) -> Vec<u8> {
    let mut out = Vec::new();
    encode_simple(&mut out, record);
    out
}

// ---------------------------------------------------------------------------------------
// Decoding

struct Reader<'a> {
    buf: &'a [u8],
    /// The record being decoded, so byte strings are zero-copy slices of it.
    whole: &'a Bytes,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.buf.split_first().ok_or(DecodeError("truncated"))?;
        self.buf = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(DecodeError("varint overflows u64"));
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint too long"))
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        // Every element takes at least one byte: a count above the bytes left is damage,
        // and refusing it keeps a damaged count from allocating.
        if n > self.buf.len() as u64 {
            return Err(DecodeError("count exceeds the record"));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.len()?;
        let start = self.whole.len() - self.buf.len();
        self.buf = &self.buf[n..];
        Ok(self.whole.slice(start..start + n))
    }

    /// A byte string copied out of the record: values stored in the keyspace must not
    /// pin the buffer the log was read into.
    fn owned(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.len()?;
        let (b, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(Bytes::copy_from_slice(b))
    }

    fn value(&mut self) -> Result<Value, DecodeError> {
        Ok(match self.u8()? {
            1 => Value::Int(self.varint()? as i64),
            2 => Value::string_from(self.owned()?),
            3 => Value::Raw(self.owned()?),
            4 => {
                let n = self.len()?;
                let mut h = girder_kv::hashes::HashValue::default();
                for _ in 0..n {
                    let f = self.owned()?;
                    h.set(&f, self.owned()?);
                }
                Value::Hash(Box::new(h))
            }
            5 => {
                let n = self.len()?;
                let items = (0..n)
                    .map(|_| self.owned())
                    .collect::<Result<Vec<_>, _>>()?;
                Value::List(Box::new(girder_kv::lists::ListValue::from_items(items)))
            }
            6 => {
                let n = self.len()?;
                let members = (0..n)
                    .map(|_| self.owned())
                    .collect::<Result<Vec<_>, _>>()?;
                Value::Set(Box::new(girder_kv::sets::SetValue::from_members(members)))
            }
            7 => {
                let n = self.len()?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let m = self.owned()?;
                    if self.buf.len() < 8 {
                        return Err(DecodeError("truncated"));
                    }
                    let (score, rest) = self.buf.split_at(8);
                    self.buf = rest;
                    let score = f64::from_le_bytes(score.try_into().expect("8 bytes"));
                    if score.is_nan() {
                        return Err(DecodeError("NaN score"));
                    }
                    pairs.push((m, score));
                }
                Value::ZSet(Box::new(girder_kv::zsets::ZSetValue::from_pairs(pairs)))
            }
            _ => return Err(DecodeError("unknown value kind")),
        })
    }

    fn id(&mut self) -> Result<StreamId, DecodeError> {
        Ok(StreamId::new(self.varint()?, self.varint()?))
    }

    fn opt(&mut self) -> Result<Option<u64>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.varint()?)),
            _ => Err(DecodeError("bad option tag")),
        }
    }

    fn ids(&mut self) -> Result<Vec<StreamId>, DecodeError> {
        let n = self.len()?;
        (0..n).map(|_| self.id()).collect()
    }

    fn fields(&mut self) -> Result<Box<[Bytes]>, DecodeError> {
        let n = self.len()?;
        (0..n).map(|_| self.bytes()).collect()
    }

    fn effect(&mut self) -> Result<StreamEffect, DecodeError> {
        Ok(match self.u8()? {
            1 => StreamEffect::Create,
            2 => StreamEffect::Add {
                id: self.id()?,
                fields: self.fields()?,
            },
            3 => StreamEffect::Delete { ids: self.ids()? },
            4 => StreamEffect::TrimThrough {
                through: self.id()?,
            },
            5 => StreamEffect::SetId {
                last_id: self.id()?,
                entries_added: self.opt()?,
                max_deleted_id: match self.u8()? {
                    0 => None,
                    1 => Some(self.id()?),
                    _ => return Err(DecodeError("bad option tag")),
                },
            },
            6 => StreamEffect::GroupCursor {
                group: self.bytes()?,
                last_id: self.id()?,
                entries_read: self.opt()?,
            },
            7 => StreamEffect::GroupDestroy {
                group: self.bytes()?,
            },
            8 => StreamEffect::ConsumerSeen {
                group: self.bytes()?,
                consumer: self.bytes()?,
                seen_ms: self.varint()?,
            },
            9 => StreamEffect::ConsumerDelete {
                group: self.bytes()?,
                consumer: self.bytes()?,
            },
            10 => StreamEffect::Pending {
                group: self.bytes()?,
                id: self.id()?,
                consumer: self.bytes()?,
                delivery_ms: self.varint()?,
                delivery_count: self.varint()?,
            },
            11 => StreamEffect::Ack {
                group: self.bytes()?,
                ids: self.ids()?,
            },
            _ => return Err(DecodeError("unknown effect tag")),
        })
    }

    fn stream(&mut self) -> Result<StreamValue, DecodeError> {
        let mut value = StreamValue::default();
        let n = self.len()?;
        for _ in 0..n {
            let id = self.id()?;
            let fields = self.fields()?;
            value.entries.insert(id, fields);
        }
        value.last_id = self.id()?;
        value.entries_added = self.varint()?;
        value.max_deleted_id = self.id()?;
        let groups = self.len()?;
        for _ in 0..groups {
            let name = self.bytes()?;
            let mut group = ConsumerGroup {
                last_id: self.id()?,
                entries_read: self.opt()?,
                ..ConsumerGroup::default()
            };
            let consumers = self.len()?;
            for _ in 0..consumers {
                let cname = self.bytes()?;
                let seen_ms = self.varint()?;
                group.consumers.insert(
                    cname,
                    Consumer {
                        seen_ms,
                        ..Consumer::default()
                    },
                );
            }
            let pending = self.len()?;
            for _ in 0..pending {
                let id = self.id()?;
                let consumer = self.bytes()?;
                let delivery_ms = self.varint()?;
                let delivery_count = self.varint()?;
                group
                    .consumers
                    .get_mut(&consumer)
                    .ok_or(DecodeError("pending entry of an unknown consumer"))?
                    .pel
                    .insert(id);
                group.pel.insert(
                    id,
                    PendingEntry {
                        consumer,
                        delivery_ms,
                        delivery_count,
                    },
                );
            }
            value.groups.insert(name, group);
        }
        Ok(value)
    }
}

/// Decodes one record. Byte strings in the result share `record`'s memory.
///
/// # Errors
/// [`DecodeError`] for an unknown version or tag, a truncated record, or trailing bytes.
pub fn decode(record: &Bytes) -> Result<JournalRecord, DecodeError> {
    let mut r = Reader {
        buf: record,
        whole: record,
    };
    if r.u8()? != VERSION {
        return Err(DecodeError("unknown format version"));
    }
    let out = match r.u8()? {
        1 => {
            let db = r.u8()?;
            let key = r.bytes()?;
            let n = r.len()?;
            let effects = (0..n).map(|_| r.effect()).collect::<Result<_, _>>()?;
            JournalRecord::Effects { db, key, effects }
        }
        2 => {
            let db = r.u8()?;
            let key = r.bytes()?;
            let expire_at = r.opt()?;
            let value = Box::new(r.stream()?);
            JournalRecord::Replaced {
                db,
                key,
                expire_at,
                value,
            }
        }
        3 => JournalRecord::Deleted {
            db: r.u8()?,
            key: r.bytes()?,
        },
        4 => JournalRecord::Expire {
            db: r.u8()?,
            key: r.bytes()?,
            expire_at: r.opt()?,
        },
        5 => JournalRecord::FlushedAll,
        6 => JournalRecord::Swapped {
            a: r.u8()?,
            b: r.u8()?,
        },
        7 => JournalRecord::SnapshotBegin,
        8 => JournalRecord::SnapshotEnd,
        9 => {
            let db = r.u8()?;
            let key = r.bytes()?;
            let n = r.len()?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.id()?;
                entries.push((id, r.fields()?));
            }
            JournalRecord::Entries { db, key, entries }
        }
        10 => {
            let db = r.u8()?;
            let key = r.bytes()?;
            let group = r.bytes()?;
            let n = r.len()?;
            let mut pending = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.id()?;
                let consumer = r.bytes()?;
                pending.push((id, consumer, r.varint()?, r.varint()?));
            }
            JournalRecord::Pending {
                db,
                key,
                group,
                pending,
            }
        }
        11 => {
            let db = r.u8()?;
            let n = r.len()?;
            let args = (0..n).map(|_| r.owned()).collect::<Result<_, _>>()?;
            JournalRecord::Command { db, args }
        }
        12 => {
            let db = r.u8()?;
            let key = r.bytes()?;
            let expire_at = r.opt()?;
            let value = r.value()?;
            JournalRecord::Value {
                db,
                key,
                entry: Entry::new(value, expire_at),
            }
        }
        13 => {
            let db = r.u8()?;
            let key = r.bytes()?;
            let n = r.len()?;
            let members = (0..n).map(|_| r.bytes()).collect::<Result<_, _>>()?;
            JournalRecord::SetRemoved { db, key, members }
        }
        14 => JournalRecord::FlushedDb { db: r.u8()? },
        15 => {
            let n = r.len()?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                let ts = r.varint()?;
                let record = decode(&r.bytes()?)?;
                if matches!(record, JournalRecord::Batch(_)) {
                    return Err(DecodeError("nested batch"));
                }
                items.push((ts, record));
            }
            JournalRecord::Batch(items)
        }
        16 => {
            let len = r.varint()?;
            // An LZ4 block expands at most 255 times (plus a little): a larger length is
            // damage, refused before it is allocated.
            if len > (r.buf.len() as u64).saturating_mul(255) + 16 {
                return Err(DecodeError("compressed length exceeds the record"));
            }
            let mut raw = vec![0; len as usize];
            match lz4_flex::block::decompress_into(r.buf, &mut raw) {
                Ok(n) if n == raw.len() => {}
                _ => return Err(DecodeError("bad compressed data")),
            }
            r.buf = &[];
            let raw = Bytes::from(raw);
            if raw.get(1) == Some(&16) {
                return Err(DecodeError("nested compressed record"));
            }
            decode(&raw)?
        }
        _ => return Err(DecodeError("unknown record tag")),
    };
    if !r.buf.is_empty() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
