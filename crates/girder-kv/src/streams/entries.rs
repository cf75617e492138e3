//! Operations on stream entries: XADD, XLEN, XRANGE / XREVRANGE, XDEL, XTRIM, XSETID and
//! the reads behind XREAD.
//!
//! Invariants (besides those of [`super`]):
//! - Every change is journaled inside the write closure, after the change, with effects
//!   that replay to the same value ([`StreamValue::apply`]): XADD → `[Create?, Add,
//!   TrimThrough?]`, XDEL → `Delete` (the ids actually removed), XTRIM → `TrimThrough`,
//!   XSETID → `SetId`. An operation that changes nothing journals nothing.
//! - A failed operation changes nothing, and creates no key.
//! - Trimming never raises `max_deleted_id`: Redis 7.0 records only XDEL's deletions
//!   there (trimming moves the first entry instead).
//!
//! # Approximate trimming (`~`)
//! Redis trims whole radix-tree nodes of up to `stream-node-max-entries` (100) entries.
//! Girder keeps no nodes; it behaves as if the live entries were cut into nodes of
//! [`NODE_ENTRIES`] from the oldest on (the last node possibly partial) and removes whole
//! nodes from the head while the rule allows: MAXLEN keeps at least the asked length,
//! MINID removes a node only when its newest entry is below the id, and LIMIT (0: no
//! limit) bounds the removed count, a node that would pass it stopping the trim. For a
//! stream only ever appended to and trimmed, that is exactly where Redis's nodes are,
//! so the results match; after XDEL (Redis's nodes keep their deleted slots) or with
//! entries over Redis's 4 KiB node size, Redis may cut at other places — both keep what
//! the `~` contract promises (at least MAXLEN entries, nothing at or above MINID
//! removed).

use super::{Fields, StreamEffect, StreamId, StreamValue};
use crate::shard::Value;
use crate::{DbRef, Entry, KvError};
use bytes::Bytes;
use std::ops::Bound;

/// Entries per node of approximate trimming (Redis's default `stream-node-max-entries`).
pub const NODE_ENTRIES: usize = 100;

/// Entries removed at most by an approximate trim without LIMIT (Redis: 100 nodes).
pub const DEFAULT_APPROX_LIMIT: u64 = 100 * NODE_ENTRIES as u64;

/// Errors of stream entry operations, worded as Redis 7.0 words them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A keyspace error (WRONGTYPE, no such key).
    #[error(transparent)]
    Kv(#[from] KvError),
    /// XADD with an id at or below the stream's last id.
    #[error("ERR The ID specified in XADD is equal or smaller than the target stream top item")]
    IdNotGreater,
    /// XADD with the id `0-0`.
    #[error("ERR The ID specified in XADD must be greater than 0-0")]
    IdZero,
    /// XADD on a stream whose last id is the greatest possible.
    #[error("ERR The stream has exhausted the last possible ID, unable to add more items")]
    Exhausted,
    /// XADD `<ms>-*` where `<ms>` is the last id's and its sequence is exhausted (Redis
    /// reports it with this unrelated-looking message).
    #[error("ERR Elements are too large to be stored")]
    SequenceExhausted,
    /// XSETID below the greatest entry id.
    #[error("ERR The ID specified in XSETID is smaller than the target stream top item")]
    SetIdBelowTop,
    /// XSETID ENTRIESADDED below the stream's length.
    #[error("ERR The entries_added specified in XSETID is smaller than the target stream length")]
    EntriesAddedBelowLength,
    /// XSETID MAXDELETEDID above the id.
    #[error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")]
    SetIdBelowMaxDeleted,
}

/// The id XADD asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRequest {
    /// `*`: the command's time, or after the last id when the clock is behind it.
    Auto,
    /// `<ms>-*`: the next sequence number in that millisecond.
    Ms(u64),
    /// `<ms>-<seq>` (or `<ms>`, sequence 0).
    Exact(StreamId),
}

/// What trimming keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimStrategy {
    /// MAXLEN: the newest `n` entries.
    MaxLen(u64),
    /// MINID: the entries at or above the id.
    MinId(StreamId),
}

/// A trim (XTRIM, or XADD's trimming options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trim {
    /// What to keep.
    pub strategy: TrimStrategy,
    /// `~`: trim whole nodes only (see the module documentation).
    pub approx: bool,
    /// Most entries removed; 0 is no limit. Redis allows a limit with `~` only, where
    /// its default is [`DEFAULT_APPROX_LIMIT`].
    pub limit: u64,
}

/// Options of [`add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOptions {
    /// The id to use.
    pub id: IdRequest,
    /// NOMKSTREAM: do nothing when the key does not exist.
    pub no_mkstream: bool,
    /// Trimming done after the entry is added.
    pub trim: Option<Trim>,
}

/// XSETID's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetId {
    /// The new last id.
    pub last_id: StreamId,
    /// ENTRIESADDED.
    pub entries_added: Option<u64>,
    /// MAXDELETEDID (Redis ignores `0-0`, so does this).
    pub max_deleted_id: Option<StreamId>,
}

/// One entry as read: its id and fields (`field, value, ...`).
pub type StreamEntry = (StreamId, Fields);

/// What [`read`] found on a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// The stream's last id (XREAD's `$`, and a blocked reader's wake-up test).
    pub last_id: StreamId,
    /// The entries after the asked id, oldest first, at most the asked count.
    pub entries: Vec<StreamEntry>,
}

/// Parses a stream id argument as Redis's `streamParseID` does: `<ms>` or `<ms>-<seq>`
/// (split at the first `-`), each part read by Redis's `string2ull` (see [`parse_u64`]),
/// a missing sequence being `missing_seq`. With `allow_star_seq`, `<ms>-*` parses to
/// `(id, false)` (the sequence not given); otherwise the flag is `true`. `-` and `+`
/// are not handled here (only ranges accept them). At most 127 bytes, as in Redis.
pub fn parse_id(arg: &[u8], missing_seq: u64, allow_star_seq: bool) -> Option<(StreamId, bool)> {
    if arg.len() > 127 {
        return None;
    }
    let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
        None => return Some((StreamId::new(parse_u64(arg)?, missing_seq), true)),
        Some(dash) => (&arg[..dash], &arg[dash + 1..]),
    };
    let ms = parse_u64(ms)?;
    if allow_star_seq && seq == b"*" {
        return Some((StreamId::new(ms, 0), false));
    }
    Some((StreamId::new(ms, parse_u64(seq)?), true))
}

/// Redis's `string2ull`: a canonical i64 that is not negative, or else what C's
/// `strtoull(s, &end, 10)` reads when it consumes the whole text without overflow:
/// leading white space, an optional sign (a `-` negates modulo 2^64, as C does), then
/// decimal digits (leading zeros allowed). So ` 7`, `+8`, `007` and `-0` are ids parts
/// Redis accepts, and so does Girder.
pub fn parse_u64(text: &[u8]) -> Option<u64> {
    let mut rest = text;
    while let [b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r', tail @ ..] = rest {
        rest = tail;
    }
    let (negative, digits) = match rest {
        [b'-', tail @ ..] => (true, tail),
        [b'+', tail @ ..] => (false, tail),
        _ => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    if !negative {
        return Some(magnitude);
    }
    // string2ll reads canonical negatives (no space, no leading zero, within i64) first
    // and refuses them; the others ("-0", "-007", beyond i64) go to strtoull, which
    // negates.
    let canonical =
        rest.len() == text.len() && digits.first() != Some(&b'0') && magnitude <= 1 << 63;
    (!canonical).then_some(magnitude.wrapping_neg())
}

fn stream_of(entry: Option<&Entry>) -> Result<Option<&StreamValue>, KvError> {
    match entry.map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(KvError::WrongType),
    }
}

fn stream_mut(entry: Option<&mut Entry>) -> Result<Option<&mut StreamValue>, KvError> {
    match entry.map(|e| &mut e.value) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(KvError::WrongType),
    }
}

/// The id XADD gives an entry on a stream whose last id is `last`, at time `now_ms`.
fn next_id(last: StreamId, request: IdRequest, now_ms: u64) -> Result<StreamId, StreamError> {
    if last == StreamId::MAX {
        return Err(StreamError::Exhausted);
    }
    match request {
        IdRequest::Auto if now_ms > last.ms => Ok(StreamId::new(now_ms, 0)),
        // The clock went backwards (or several adds in one ms): continue from the last.
        IdRequest::Auto => last.next().ok_or(StreamError::Exhausted),
        IdRequest::Ms(ms) if ms == last.ms => match last.seq.checked_add(1) {
            Some(seq) => Ok(StreamId::new(ms, seq)),
            None => Err(StreamError::SequenceExhausted),
        },
        IdRequest::Ms(ms) if ms > last.ms => Ok(StreamId::new(ms, 0)),
        IdRequest::Exact(id) if id > last => Ok(id),
        IdRequest::Ms(_) | IdRequest::Exact(_) => Err(StreamError::IdNotGreater),
    }
}

/// How many of the oldest entries `trim` removes from `stream` (see the module
/// documentation for `~`).
fn trim_count(stream: &StreamValue, trim: &Trim) -> usize {
    let len = stream.entries.len();
    let limit = match usize::try_from(trim.limit) {
        Ok(0) | Err(_) => usize::MAX,
        Ok(n) => n,
    };
    if !trim.approx {
        let wanted = match trim.strategy {
            TrimStrategy::MaxLen(n) => len.saturating_sub(usize::try_from(n).unwrap_or(usize::MAX)),
            TrimStrategy::MinId(min) => stream.entries.range(..min).count(),
        };
        return wanted.min(limit);
    }
    let mut removed = 0usize;
    let mut ids = stream.entries.keys();
    while removed < len {
        let node = NODE_ENTRIES.min(len - removed);
        if removed + node > limit {
            break;
        }
        let whole = match trim.strategy {
            TrimStrategy::MaxLen(n) => u64::try_from(len - removed - node).unwrap_or(u64::MAX) >= n,
            // The node's newest entry decides.
            TrimStrategy::MinId(min) => ids.nth(node - 1).is_some_and(|last| *last < min),
        };
        if !whole {
            break;
        }
        removed += node;
    }
    removed
}

/// Removes the `n` oldest entries; returns the greatest removed id (`None` for 0).
fn remove_oldest(stream: &mut StreamValue, n: usize) -> Option<StreamId> {
    let through = *stream.entries.keys().nth(n.checked_sub(1)?)?;
    stream.entries = match through.next() {
        Some(next) => stream.entries.split_off(&next),
        None => Default::default(),
    };
    Some(through)
}

/// Trims `stream`; returns the effect to journal, if anything was removed, and the count.
fn trim_stream(stream: &mut StreamValue, trim: &Trim) -> (Option<StreamEffect>, usize) {
    let n = trim_count(stream, trim);
    match remove_oldest(stream, n) {
        Some(through) => (Some(StreamEffect::TrimThrough { through }), n),
        None => (None, 0),
    }
}

/// XADD: appends an entry of `fields` (flat `field, value, ...`; the caller checks the
/// count is even and not 0) with the requested id, then trims. `None` when NOMKSTREAM and
/// the key does not exist.
///
/// # Errors
/// [`StreamError::IdZero`] (checked before the key is looked at, as in Redis), WRONGTYPE,
/// then the id errors; nothing is created or changed on error.
pub fn add<F: AsRef<[u8]>>(
    db: &DbRef<'_>,
    key: &[u8],
    fields: &[F],
    options: &AddOptions,
) -> Result<Option<StreamId>, StreamError> {
    if options.id == IdRequest::Exact(StreamId::MIN) {
        return Err(StreamError::IdZero);
    }
    db.write(key, |slot| {
        let now = slot.now_ms();
        let mut effects = Vec::with_capacity(3);
        let created = stream_mut(slot.get_quiet())?.is_none();
        if created {
            if options.no_mkstream {
                return Ok(None);
            }
            next_id(StreamId::MIN, options.id, now)?;
            slot.put(Value::Stream(Box::default()), None);
            effects.push(StreamEffect::Create);
        }
        let Some(stream) = stream_mut(slot.get_quiet())? else {
            return Ok(None);
        };
        let id = next_id(stream.last_id, options.id, now)?;
        let fields: Fields = fields
            .iter()
            .map(|f| Bytes::copy_from_slice(f.as_ref()))
            .collect();
        stream.entries.insert(id, fields.clone());
        stream.last_id = id;
        stream.entries_added += 1;
        effects.push(StreamEffect::Add { id, fields });
        if let Some(trim) = &options.trim {
            if let (Some(effect), _) = trim_stream(stream, trim) {
                effects.push(effect);
            }
        }
        // WATCH sees changes to entries (XADD, XDEL, XTRIM), not to groups: Redis's rule.
        slot.touch();
        db.journal_stream(key, &effects);
        Ok(Some(id))
    })
}

/// XLEN: 0 for a missing key.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn len(db: &DbRef<'_>, key: &[u8]) -> Result<usize, KvError> {
    db.read(key, |e| Ok(stream_of(e)?.map_or(0, |s| s.entries.len())))
}

/// Whether `key` holds a stream (`Ok(false)`: missing).
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn exists(db: &DbRef<'_>, key: &[u8]) -> Result<bool, KvError> {
    db.read(key, |e| Ok(stream_of(e)?.is_some()))
}

/// The stream's last id (XREAD's `$`); `None` when the key is missing.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn last_id(db: &DbRef<'_>, key: &[u8]) -> Result<Option<StreamId>, KvError> {
    db.read(key, |e| Ok(stream_of(e)?.map(|s| s.last_id)))
}

/// XRANGE (`rev` false) / XREVRANGE (`rev` true): the entries with ids in
/// `start..=end`, oldest first (newest first when `rev`), at most `count` (`None`: all).
/// `None` when the key is missing.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn range(
    db: &DbRef<'_>,
    key: &[u8],
    start: StreamId,
    end: StreamId,
    count: Option<usize>,
    rev: bool,
) -> Result<Option<Vec<StreamEntry>>, KvError> {
    db.read(key, |e| {
        let Some(stream) = stream_of(e)? else {
            return Ok(None);
        };
        if start > end {
            return Ok(Some(Vec::new()));
        }
        let limit = count.unwrap_or(usize::MAX);
        let items = stream.entries.range(start..=end);
        let clone = |(id, fields): (&StreamId, &Fields)| (*id, fields.clone());
        Ok(Some(if rev {
            items.rev().take(limit).map(clone).collect()
        } else {
            items.take(limit).map(clone).collect()
        }))
    })
}

/// The reads of XREAD: the stream's last id and up to `count` entries after `after`.
/// `None` when the key is missing.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn read(
    db: &DbRef<'_>,
    key: &[u8],
    after: StreamId,
    count: Option<usize>,
) -> Result<Option<Read>, KvError> {
    db.read(key, |e| {
        let Some(stream) = stream_of(e)? else {
            return Ok(None);
        };
        let entries = stream
            .entries
            .range((Bound::Excluded(after), Bound::Unbounded))
            .take(count.unwrap_or(usize::MAX))
            .map(|(id, fields)| (*id, fields.clone()))
            .collect();
        Ok(Some(Read {
            last_id: stream.last_id,
            entries,
        }))
    })
}

/// XDEL: removes the entries with these ids; returns how many existed.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn delete(db: &DbRef<'_>, key: &[u8], ids: &[StreamId]) -> Result<usize, KvError> {
    db.write(key, |slot| {
        let Some(stream) = stream_mut(slot.get_quiet())? else {
            return Ok(0);
        };
        let mut removed: Vec<StreamId> = Vec::new();
        for id in ids {
            if stream.entries.remove(id).is_some() {
                removed.push(*id);
                if *id > stream.max_deleted_id {
                    stream.max_deleted_id = *id;
                }
            }
        }
        let n = removed.len();
        if n > 0 {
            removed.sort_unstable();
            slot.touch();
            db.journal_stream(key, &[StreamEffect::Delete { ids: removed }]);
        }
        Ok(n)
    })
}

/// XTRIM: returns how many entries were removed (0 for a missing key).
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn trim(db: &DbRef<'_>, key: &[u8], trim: &Trim) -> Result<usize, KvError> {
    db.write(key, |slot| {
        let Some(stream) = stream_mut(slot.get_quiet())? else {
            return Ok(0);
        };
        let (effect, n) = trim_stream(stream, trim);
        if let Some(effect) = effect {
            slot.touch();
            db.journal_stream(key, &[effect]);
        }
        Ok(n)
    })
}

/// XSETID: sets the last id and, optionally, the entries-added counter and the greatest
/// deleted id.
///
/// # Errors
/// [`StreamError::SetIdBelowMaxDeleted`] (before the key is looked at), no such key,
/// WRONGTYPE, [`StreamError::SetIdBelowTop`], [`StreamError::EntriesAddedBelowLength`].
pub fn set_id(db: &DbRef<'_>, key: &[u8], set: &SetId) -> Result<(), StreamError> {
    if set.max_deleted_id.is_some_and(|m| m > set.last_id) {
        return Err(StreamError::SetIdBelowMaxDeleted);
    }
    let max_deleted_id = set.max_deleted_id.filter(|m| *m != StreamId::MIN);
    db.write(key, |slot| {
        let stream = stream_mut(slot.get_quiet())?.ok_or(KvError::NoSuchKey)?;
        if let Some((top, _)) = stream.entries.last_key_value() {
            if set.last_id < *top {
                return Err(StreamError::SetIdBelowTop);
            }
            let len = u64::try_from(stream.entries.len()).unwrap_or(u64::MAX);
            if set.entries_added.is_some_and(|n| n < len) {
                return Err(StreamError::EntriesAddedBelowLength);
            }
        }
        let effect = StreamEffect::SetId {
            last_id: set.last_id,
            entries_added: set.entries_added,
            max_deleted_id,
        };
        stream.apply(&effect);
        db.journal_stream(key, &[effect]);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::StreamValue;
    use crate::{keys, strings, Journal, Keyspace, ManualClock};
    use parking_lot::Mutex;
    use proptest::prelude::*;
    use std::sync::Arc;

    const T0: u64 = 1_800_000_000_000;

    fn keyspace() -> (Arc<ManualClock>, Keyspace) {
        let clock = Arc::new(ManualClock::new(T0));
        (clock.clone(), Keyspace::new(clock, 1 << 20))
    }

    fn opts(id: IdRequest) -> AddOptions {
        AddOptions {
            id,
            no_mkstream: false,
            trim: None,
        }
    }

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    fn ids(db: &DbRef<'_>, key: &[u8]) -> Vec<StreamId> {
        range(db, key, StreamId::MIN, StreamId::MAX, None, false)
            .unwrap()
            .unwrap_or_default()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    fn stored(db: &DbRef<'_>, key: &[u8]) -> Option<StreamValue> {
        db.read(key, |e| match e.map(|e| &e.value) {
            Some(Value::Stream(s)) => Some((**s).clone()),
            _ => None,
        })
    }

    /// A snapshot's replay may meet an XDEL of an entry before the chunk that would have
    /// held it, and no chunk holds it (it was deleted before its chunk was taken): the
    /// deletion still raises `max_deleted_id`, as it did live. Found by the journal's
    /// snapshot race test (seed 3 in one CI run): replay gave 1777 where 1946 was live.
    #[test]
    fn a_replayed_xdel_of_an_entry_not_yet_restored_raises_max_deleted_id() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        for ms in 1..=3 {
            add(
                &db,
                b"s",
                &[b"f".as_slice(), b"v"],
                &opts(IdRequest::Exact(id(ms, 0))),
            )
            .unwrap();
        }
        assert_eq!(delete(&db, b"s", &[id(3, 0)]).unwrap(), 1);
        let live = stored(&db, b"s").unwrap();
        // The state a replay has reached: entry 3 not restored yet.
        let mut replayed = live.clone();
        replayed.max_deleted_id = StreamId::MIN;
        replayed.apply(&StreamEffect::Delete {
            ids: vec![id(3, 0)],
        });
        assert_eq!(replayed, live);
        assert_eq!(replayed.max_deleted_id, id(3, 0));
    }

    #[test]
    fn streams_parse_ids_as_redis_does() {
        assert_eq!(parse_id(b"5", 0, false), Some((id(5, 0), true)));
        assert_eq!(
            parse_id(b"5", u64::MAX, false),
            Some((id(5, u64::MAX), true))
        );
        assert_eq!(parse_id(b"01-002", 0, false), Some((id(1, 2), true)));
        assert_eq!(parse_id(b"5-*", 0, true), Some((id(5, 0), false)));
        assert_eq!(parse_id(b"5-*", 0, false), None);
        // strtoull's leniency, as Redis 7.0.15 showed it.
        assert_eq!(parse_id(b" 7", 0, false), Some((id(7, 0), true)));
        assert_eq!(parse_id(b"+8-+1", 0, false), Some((id(8, 1), true)));
        assert_eq!(parse_id(b"9--0", 0, false), Some((id(9, 0), true)));
        assert_eq!(
            parse_id(b"10--18446744073709551615", 0, false),
            Some((id(10, 1), true))
        );
        assert_eq!(parse_id(b"11- 5", 0, false), Some((id(11, 5), true)));
        for bad in [
            &b""[..],
            b"-",
            b"+",
            b"-1",
            b"1-",
            b"1-x",
            b"1-1-1",
            b"1--5",
            b"12-5 ",
            b"0x10",
            b"18446744073709551616",
            b"*",
        ] {
            assert_eq!(parse_id(bad, 0, true), None, "{bad:?}");
        }
        assert_eq!(
            parse_id(b"18446744073709551615-18446744073709551615", 0, false),
            Some((StreamId::MAX, true))
        );
    }

    #[test]
    fn streams_add_assigns_ids_like_redis() {
        let (clock, ks) = keyspace();
        let db = ks.db(0).unwrap();
        let f = ["f", "v"];
        assert_eq!(
            add(&db, b"s", &f, &opts(IdRequest::Auto)),
            Ok(Some(id(T0, 0)))
        );
        assert_eq!(
            add(&db, b"s", &f, &opts(IdRequest::Auto)),
            Ok(Some(id(T0, 1)))
        );
        assert_eq!(
            add(&db, b"s", &f, &opts(IdRequest::Exact(id(T0 + 5, 0)))),
            Ok(Some(id(T0 + 5, 0)))
        );
        // The clock is behind the last id: continue from it.
        assert_eq!(
            add(&db, b"s", &f, &opts(IdRequest::Auto)),
            Ok(Some(id(T0 + 5, 1)))
        );
        assert_eq!(
            add(&db, b"s", &f, &opts(IdRequest::Ms(T0 + 5))),
            Ok(Some(id(T0 + 5, 2)))
        );
        assert_eq!(
            add(&db, b"s", &f, &opts(IdRequest::Ms(T0 + 4))),
            Err(StreamError::IdNotGreater)
        );
        assert_eq!(
            add(&db, b"s", &f, &opts(IdRequest::Exact(id(T0 + 5, 2)))),
            Err(StreamError::IdNotGreater)
        );
        drop(db);
        clock.advance(10);
        let db = ks.db(0).unwrap();
        assert_eq!(
            add(&db, b"s", &f, &opts(IdRequest::Auto)),
            Ok(Some(id(T0 + 10, 0)))
        );
        assert_eq!(len(&db, b"s"), Ok(6));
        // 0-* on a new stream is 0-1; 0-0 is refused before the key is looked at.
        assert_eq!(
            add(&db, b"z", &f, &opts(IdRequest::Ms(0))),
            Ok(Some(id(0, 1)))
        );
        strings::set(&db, b"str", b"x", Default::default()).unwrap();
        assert_eq!(
            add(&db, b"str", &f, &opts(IdRequest::Exact(StreamId::MIN))),
            Err(StreamError::IdZero)
        );
        assert_eq!(
            add(&db, b"str", &f, &opts(IdRequest::Auto)),
            Err(StreamError::Kv(KvError::WrongType))
        );
        // NOMKSTREAM on a missing key: nothing.
        let nomk = AddOptions {
            no_mkstream: true,
            ..opts(IdRequest::Auto)
        };
        assert_eq!(add(&db, b"none", &f, &nomk), Ok(None));
        assert_eq!(keys::exists(&db, &[b"none"]), 0);
        // Exhaustion.
        let max = opts(IdRequest::Exact(id(7, u64::MAX)));
        assert_eq!(add(&db, b"e", &f, &max), Ok(Some(id(7, u64::MAX))));
        assert_eq!(
            add(&db, b"e", &f, &opts(IdRequest::Ms(7))),
            Err(StreamError::SequenceExhausted)
        );
        assert_eq!(
            add(&db, b"e", &f, &opts(IdRequest::Auto)),
            Ok(Some(id(T0 + 10, 0)))
        );
        assert_eq!(
            add(&db, b"m", &f, &opts(IdRequest::Exact(StreamId::MAX))),
            Ok(Some(StreamId::MAX))
        );
        for request in [
            IdRequest::Auto,
            IdRequest::Ms(1),
            IdRequest::Exact(id(1, 1)),
        ] {
            assert_eq!(
                add(&db, b"m", &f, &opts(request)),
                Err(StreamError::Exhausted)
            );
        }
        // A failed add on a new key creates nothing.
        assert_eq!(keys::exists(&db, &[b"s2"]), 0);
        assert_eq!(keys::encoding(&db, b"s"), Some("stream"));
    }

    #[test]
    fn streams_ranges_reads_and_deletes() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        for ms in 1..=5 {
            add(&db, b"s", &["f", "v"], &opts(IdRequest::Exact(id(ms, 0)))).unwrap();
        }
        let got = |start, end, count, rev| -> Vec<StreamId> {
            range(&db, b"s", start, end, count, rev)
                .unwrap()
                .unwrap()
                .into_iter()
                .map(|(i, _)| i)
                .collect()
        };
        assert_eq!(
            got(id(2, 0), id(4, 0), None, false),
            [id(2, 0), id(3, 0), id(4, 0)]
        );
        assert_eq!(got(id(2, 0), id(4, 0), Some(2), true), [id(4, 0), id(3, 0)]);
        assert_eq!(got(id(4, 0), id(2, 0), None, false), []);
        assert_eq!(
            range(&db, b"none", StreamId::MIN, StreamId::MAX, None, false),
            Ok(None)
        );
        assert_eq!(delete(&db, b"s", &[id(2, 0), id(2, 0), id(9, 0)]), Ok(1));
        assert_eq!(stored(&db, b"s").unwrap().max_deleted_id, id(2, 0));
        let r = read(&db, b"s", id(3, 0), Some(1)).unwrap().unwrap();
        assert_eq!(r.last_id, id(5, 0));
        assert_eq!(
            r.entries.iter().map(|e| e.0).collect::<Vec<_>>(),
            [id(4, 0)]
        );
        // Deleting every entry keeps the key.
        delete(&db, b"s", &[id(1, 0), id(3, 0), id(4, 0), id(5, 0)]).unwrap();
        assert_eq!(len(&db, b"s"), Ok(0));
        assert_eq!(keys::exists(&db, &[b"s"]), 1);
        assert_eq!(read(&db, b"none", StreamId::MIN, None), Ok(None));
    }

    fn filled(db: &DbRef<'_>, key: &[u8], n: u64) {
        for ms in 1..=n {
            add(db, key, &["f", "v"], &opts(IdRequest::Exact(id(ms, 0)))).unwrap();
        }
    }

    fn approx(strategy: TrimStrategy, limit: u64) -> Trim {
        Trim {
            strategy,
            approx: true,
            limit,
        }
    }

    /// The counts Redis 7.0.15 gave for the same sequences on a 250-entry stream.
    #[test]
    fn streams_approximate_trim_removes_whole_nodes() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        filled(&db, b"s", 250);
        assert_eq!(
            trim(&db, b"s", &approx(TrimStrategy::MaxLen(0), 0)),
            Ok(250)
        );
        filled(&db, b"t", 250);
        let t = b"t".as_slice();
        assert_eq!(trim(&db, t, &approx(TrimStrategy::MaxLen(0), 99)), Ok(0));
        assert_eq!(trim(&db, t, &approx(TrimStrategy::MaxLen(0), 150)), Ok(100));
        assert_eq!(
            trim(&db, t, &approx(TrimStrategy::MaxLen(30), 10_000)),
            Ok(100)
        );
        assert_eq!(
            trim(&db, t, &approx(TrimStrategy::MinId(id(240, 0)), 10_000)),
            Ok(0)
        );
        assert_eq!(
            trim(&db, t, &approx(TrimStrategy::MinId(id(251, 0)), 10_000)),
            Ok(50)
        );
        assert_eq!(len(&db, t), Ok(0));
        // Trimming does not record deleted ids (Redis's max-deleted-entry-id stays 0-0).
        assert_eq!(stored(&db, t).unwrap().max_deleted_id, StreamId::MIN);
        filled(&db, b"u", 10);
        let exact = |strategy| Trim {
            strategy,
            approx: false,
            limit: 0,
        };
        assert_eq!(trim(&db, b"u", &exact(TrimStrategy::MaxLen(7))), Ok(3));
        assert_eq!(
            trim(&db, b"u", &exact(TrimStrategy::MinId(id(6, 0)))),
            Ok(2)
        );
        assert_eq!(
            ids(&db, b"u"),
            (6..=10).map(|ms| id(ms, 0)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn streams_set_id_checks_like_redis() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        let set = |last_id, entries_added, max_deleted_id| SetId {
            last_id,
            entries_added,
            max_deleted_id,
        };
        assert_eq!(
            set_id(&db, b"s", &set(id(1, 0), None, None)),
            Err(StreamError::Kv(KvError::NoSuchKey))
        );
        filled(&db, b"s", 3);
        assert_eq!(
            set_id(&db, b"s", &set(id(2, 0), None, None)),
            Err(StreamError::SetIdBelowTop)
        );
        assert_eq!(
            set_id(&db, b"s", &set(id(9, 0), Some(2), None)),
            Err(StreamError::EntriesAddedBelowLength)
        );
        assert_eq!(
            set_id(&db, b"s", &set(id(9, 0), None, Some(id(9, 1)))),
            Err(StreamError::SetIdBelowMaxDeleted)
        );
        assert_eq!(
            set_id(&db, b"s", &set(id(9, 0), Some(3), Some(id(8, 0)))),
            Ok(())
        );
        let s = stored(&db, b"s").unwrap();
        assert_eq!(
            (s.last_id, s.entries_added, s.max_deleted_id),
            (id(9, 0), 3, id(8, 0))
        );
        // MAXDELETEDID 0-0 leaves the recorded id alone.
        assert_eq!(
            set_id(&db, b"s", &set(id(9, 0), None, Some(StreamId::MIN))),
            Ok(())
        );
        assert_eq!(stored(&db, b"s").unwrap().max_deleted_id, id(8, 0));
        // An empty stream accepts any id.
        trim(&db, b"s", &approx(TrimStrategy::MaxLen(0), 0)).unwrap();
        assert_eq!(set_id(&db, b"s", &set(id(1, 0), Some(0), None)), Ok(()));
    }

    /// What the journal was told about the key, in order.
    #[derive(Debug, Clone)]
    enum Event {
        Effects(Vec<StreamEffect>),
        Replaced(StreamValue),
        Deleted,
    }

    /// Records every journaled event.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(Vec<u8>, Event)>>);

    impl Journal for Recorder {
        fn stream(&self, _: usize, _: u64, key: &[u8], effects: &[StreamEffect]) {
            self.0
                .lock()
                .push((key.to_vec(), Event::Effects(effects.to_vec())));
        }
        fn stream_replaced(
            &self,
            _: usize,
            _: u64,
            key: &[u8],
            value: &StreamValue,
            _: Option<u64>,
        ) {
            self.0
                .lock()
                .push((key.to_vec(), Event::Replaced(value.clone())));
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

    #[derive(Debug, Clone)]
    enum Op {
        Add(IdRequest, Option<Trim>, bool),
        Delete(Vec<StreamId>),
        Trim(Trim),
        SetId(SetId),
        Tick(u64),
    }

    fn small_id() -> impl Strategy<Value = StreamId> {
        (0u64..12, 0u64..3).prop_map(|(ms, seq)| StreamId::new(ms, seq))
    }

    fn trim_arg() -> impl Strategy<Value = Trim> {
        let strategy = prop_oneof![
            (0u64..250).prop_map(TrimStrategy::MaxLen),
            small_id().prop_map(TrimStrategy::MinId),
        ];
        (strategy, any::<bool>(), prop_oneof![Just(0u64), 0u64..300]).prop_map(
            |(strategy, approx, limit)| Trim {
                strategy,
                approx,
                limit,
            },
        )
    }

    fn op() -> impl Strategy<Value = Op> {
        let request = prop_oneof![
            Just(IdRequest::Auto),
            (0u64..12).prop_map(IdRequest::Ms),
            small_id().prop_map(IdRequest::Exact),
        ];
        prop_oneof![
            6 => (request, prop::option::of(trim_arg()), any::<bool>())
                .prop_map(|(r, t, n)| Op::Add(r, t, n)),
            2 => prop::collection::vec(small_id(), 1..4).prop_map(Op::Delete),
            1 => trim_arg().prop_map(Op::Trim),
            1 => (small_id(), prop::option::of(0u64..400), prop::option::of(small_id()))
                .prop_map(|(last_id, entries_added, max_deleted_id)| Op::SetId(SetId {
                    last_id,
                    entries_added,
                    max_deleted_id,
                })),
            1 => (0u64..3).prop_map(Op::Tick),
        ]
    }

    proptest! {
        /// The journal law: replaying the recorded effects on an empty stream gives the
        /// stored value, whatever sequence of operations (successful or not) ran.
        #[test]
        fn streams_journal_replays_to_the_stored_value(
            ops in prop::collection::vec(op(), 1..80),
            bulk in 0u64..300,
        ) {
            let clock = Arc::new(ManualClock::new(5));
            let ks = Keyspace::new(clock.clone(), 1 << 20);
            let recorder = Arc::new(Recorder::default());
            assert!(ks.set_journal(recorder.clone()).is_ok());
            {
                let db = ks.db(0).unwrap();
                // Sometimes start from a long stream, so node-sized trims happen.
                for _ in 0..bulk {
                    add(&db, b"s", &["f", "v"], &opts(IdRequest::Auto)).unwrap();
                }
            }
            for op in ops {
                let db = ks.db(0).unwrap();
                let before = stored(&db, b"s");
                let journaled = recorder.0.lock().len();
                let result = match &op {
                    Op::Add(request, trim, no_mkstream) => add(&db, b"s", &["a", "1"], &AddOptions {
                        id: *request,
                        no_mkstream: *no_mkstream,
                        trim: *trim,
                    }).map(|_| ()),
                    Op::Delete(ids) => delete(&db, b"s", ids).map(|_| ()).map_err(Into::into),
                    Op::Trim(t) => trim(&db, b"s", t).map(|_| ()).map_err(Into::into),
                    Op::SetId(set) => set_id(&db, b"s", set),
                    Op::Tick(ms) => { clock.advance(*ms); Ok(()) }
                };
                let after = stored(&db, b"s");
                if result.is_err() {
                    prop_assert_eq!(&before, &after, "a failed {:?} changed the stream", op);
                    prop_assert_eq!(recorder.0.lock().len(), journaled);
                }
                if let Some(s) = &after {
                    prop_assert!(s.entries.keys().all(|id| *id <= s.last_id));
                }
            }
            let db = ks.db(0).unwrap();
            let mut replayed: Option<StreamValue> = None;
            for (key, event) in recorder.0.lock().iter() {
                prop_assert_eq!(key.as_slice(), b"s");
                match event {
                    Event::Replaced(value) => replayed = Some(value.clone()),
                    Event::Deleted => replayed = None,
                    Event::Effects(effects) => {
                        prop_assert!(!effects.is_empty(), "an empty record");
                        for effect in effects {
                            if *effect == StreamEffect::Create {
                                replayed.get_or_insert_with(StreamValue::default);
                            }
                            match replayed.as_mut() {
                                Some(s) => s.apply(effect),
                                None => prop_assert!(false, "{:?} before Create", effect),
                            }
                        }
                    }
                }
            }
            prop_assert_eq!(replayed, stored(&db, b"s"));
        }

        /// Exact trims agree with a model on a sorted list of ids.
        #[test]
        fn streams_exact_trim_matches_a_model(
            n in 0u64..40,
            t in trim_arg(),
        ) {
            let (_, ks) = keyspace();
            let db = ks.db(0).unwrap();
            filled(&db, b"s", n);
            let t = Trim { approx: false, ..t };
            let mut model: Vec<StreamId> = (1..=n).map(|ms| id(ms, 0)).collect();
            let mut cut = match t.strategy {
                TrimStrategy::MaxLen(k) => model.len().saturating_sub(k as usize),
                TrimStrategy::MinId(min) => model.iter().filter(|i| **i < min).count(),
            };
            if t.limit > 0 {
                cut = cut.min(t.limit as usize);
            }
            model.drain(..cut);
            prop_assert_eq!(trim(&db, b"s", &t), Ok(cut));
            prop_assert_eq!(ids(&db, b"s"), model);
        }
    }
}
