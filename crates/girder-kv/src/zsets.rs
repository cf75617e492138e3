//! Sorted set operations (ZADD, ZRANGE, ZUNION, ...).
//!
//! # Representation and invariants
//! A [`ZSetValue`] keeps every member twice: in a hash map `member → score` (ZSCORE,
//! membership in O(1)) and in an ordered set of `(score, member)` (ranges in O(log n + k)).
//! The two always hold exactly the same members with the same scores; members are
//! [`Str`]: a short member is held inline in both (no allocation, and no pointer to
//! follow when hashing or comparing it), a long one is shared `Bytes` (the second copy
//! is a reference count). Scores are
//! never NaN, and `-0` is stored as `0` (Redis's compact encoding reads `-0` back as `0`).
//! An empty sorted set never stays in the keyspace: every removal deletes the key when
//! the last member goes.
//!
//! # Known gaps
//! - Rank (ZRANK, ZRANGE by index, ZREMRANGEBYRANK) walks the ordered set: O(rank), where
//!   Redis's skiplist is O(log n). An order-statistic tree would close this.
//! - ZRANDMEMBER indexes the set first: O(n) per call, where Redis picks in O(1).
//! - ZSCAN returns every matching member in one reply with cursor 0 (what Redis does for
//!   its compact encoding), whatever the size: correct, but one large reply for big sets.
//! - `-0` always reads back as `0`; Redis keeps `-0` in a set already past its compact
//!   encoding.
//! - Lexicographic ranges over members of *different* scores follow Redis's compact
//!   encoding walk; on its skiplist encoding Redis's answer depends on node levels.
//! - Union and intersection add scores in the order of input size, as Redis does; inputs
//!   of equal size keep their given order (Redis's sort is unstable), which can change
//!   the last digit of a sum over three or more inputs.

use crate::shard::{Str, Value};
use crate::{DbRef, Entry, KvError};
use bytes::Bytes;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

/// Members with their scores, in reply order.
pub type Scored = Vec<(Bytes, f64)>;

/// A score in the ordered index: never NaN, so the order is total.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score(f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Removes the sign of zero so `0` and `-0` are one score, as Redis stores them.
fn canonical(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// A sorted set: members with scores, ordered by (score, member).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZSetValue {
    scores: HashMap<Str, f64, ahash::RandomState>,
    order: BTreeSet<(Score, Str)>,
}

impl ZSetValue {
    /// Redis 7.0's name for the representation (`OBJECT ENCODING`): `listpack` for
    /// ≤ 128 members of ≤ 64 bytes, else `skiplist`.
    pub(crate) fn encoding(&self) -> &'static str {
        let small = self.scores.len() <= 128 && self.scores.keys().all(|m| m.len() <= 64);
        if small {
            "listpack"
        } else {
            "skiplist"
        }
    }

    /// A sorted set of these members and scores (a journal's replay).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Bytes, f64)>) -> Self {
        let mut z = Self::default();
        for (member, score) in pairs {
            z.insert_owned(member, score);
        }
        z
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score, inserting it if new; true if it was new.
    fn insert(&mut self, member: &[u8], score: f64) -> bool {
        let score = canonical(score);
        if let Some((m, old)) = self.scores.get_key_value(member) {
            let (m, old) = (m.clone(), *old);
            if old.total_cmp(&score) != Ordering::Equal {
                self.order.remove(&(Score(old), m.clone()));
                self.order.insert((Score(score), m.clone()));
                self.scores.insert(m, score);
            }
            return false;
        }
        let m = Str::copy(member);
        self.order.insert((Score(score), m.clone()));
        self.scores.insert(m, score);
        true
    }

    /// Inserts an owned member (from another sorted set); true if it was new.
    fn insert_owned(&mut self, member: Bytes, score: f64) -> bool {
        let score = canonical(score);
        if self.scores.contains_key(&member[..]) {
            return self.insert(&member, score);
        }
        let member = Str::from_bytes(member);
        self.order.insert((Score(score), member.clone()));
        self.scores.insert(member, score);
        true
    }

    fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.remove_entry(member) {
            Some((m, s)) => {
                self.order.remove(&(Score(s), m));
                true
            }
            None => false,
        }
    }

    /// Members in order, with scores.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Str, f64)> {
        self.order.iter().map(|(s, m)| (m, s.0))
    }

    /// 0-based rank of `member` in ascending order. O(rank): see the module docs.
    fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let key = (Score(score), Str::copy(member));
        Some(self.order.range(..key).count())
    }

    /// Members in `range` in order (reversed with `rev`), before offset and limit.
    fn walk<'s>(
        &'s self,
        range: &'s RangeSpec,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (&'s Str, f64)> + 's> {
        match range {
            RangeSpec::Rank(start, end) => match rank_window(*start, *end, self.len()) {
                None => Box::new(std::iter::empty()),
                Some((skip, take)) => {
                    if rev {
                        Box::new(self.iter().rev().skip(skip).take(take))
                    } else {
                        Box::new(self.iter().skip(skip).take(take))
                    }
                }
            },
            RangeSpec::Score(r) => self.walk_score(r, rev),
            RangeSpec::Lex(r) => self.walk_lex(r, rev),
        }
    }

    fn walk_score<'s>(
        &'s self,
        r: &'s ScoreRange,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (&'s Str, f64)> + 's> {
        if r.is_empty() {
            return Box::new(std::iter::empty());
        }
        // Bounds as (score, member) keys: the empty member sorts first among equal scores.
        let lower = if r.min_ex {
            if r.min == f64::INFINITY {
                return Box::new(std::iter::empty());
            }
            Bound::Included((Score(r.min.next_up()), Str::copy(b"")))
        } else {
            Bound::Included((Score(r.min), Str::copy(b"")))
        };
        let upper = if r.max_ex {
            Bound::Excluded((Score(r.max), Str::copy(b"")))
        } else if r.max == f64::INFINITY {
            Bound::Unbounded
        } else {
            Bound::Excluded((Score(r.max.next_up()), Str::copy(b"")))
        };
        if lower_after_upper(&lower, &upper) {
            return Box::new(std::iter::empty());
        }
        let it = self.order.range((lower, upper)).map(|(s, m)| (m, s.0));
        if rev {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }

    fn walk_lex<'s>(
        &'s self,
        r: &'s LexRange,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (&'s Str, f64)> + 's> {
        let (Some((first, _)), Some((last, _))) = (self.order.first(), self.order.last()) else {
            return Box::new(std::iter::empty());
        };
        if first == last {
            // One score throughout (the case lex ranges are meant for): a tree range.
            let s = *first;
            let lower = match &r.min {
                LexBound::NegInf => Bound::Included((s, Str::copy(b""))),
                LexBound::PosInf => return Box::new(std::iter::empty()),
                LexBound::Incl(m) => Bound::Included((s, Str::copy(m))),
                LexBound::Excl(m) => Bound::Excluded((s, Str::copy(m))),
            };
            let upper = match &r.max {
                LexBound::NegInf => return Box::new(std::iter::empty()),
                LexBound::PosInf => Bound::Unbounded,
                LexBound::Incl(m) => Bound::Included((s, Str::copy(m))),
                LexBound::Excl(m) => Bound::Excluded((s, Str::copy(m))),
            };
            if lower_after_upper(&lower, &upper) {
                return Box::new(std::iter::empty());
            }
            let it = self.order.range((lower, upper)).map(|(s, m)| (m, s.0));
            return if rev {
                Box::new(it.rev())
            } else {
                Box::new(it)
            };
        }
        // Mixed scores: Redis's answer is defined by its walk of the compact encoding —
        // nothing unless the last member is above `min` and the first below `max`; then,
        // from one end, skip members outside the near bound and take while inside the
        // far bound. Walk the same way.
        let in_range = self.order.last().is_some_and(|(_, m)| r.gte_min(m))
            && self.order.first().is_some_and(|(_, m)| r.lte_max(m));
        if !in_range {
            return Box::new(std::iter::empty());
        }
        if rev {
            Box::new(
                self.iter()
                    .rev()
                    .skip_while(move |(m, _)| !r.lte_max(m))
                    .take_while(move |(m, _)| r.gte_min(m)),
            )
        } else {
            Box::new(
                self.iter()
                    .skip_while(move |(m, _)| !r.gte_min(m))
                    .take_while(move |(m, _)| r.lte_max(m)),
            )
        }
    }

    /// Applies a query: range, direction, offset and limit.
    fn select(&self, q: &RangeQuery) -> Vec<(Bytes, f64)> {
        // A negative offset selects nothing (Redis counts it down past zero).
        if q.offset < 0 || q.limit == Some(0) {
            return Vec::new();
        }
        let it = self
            .walk(&q.range, q.rev)
            .skip(usize::try_from(q.offset).unwrap_or(usize::MAX));
        let it = it.map(|(m, s)| (m.to_bytes(), s));
        match q.limit {
            Some(n) => it.take(usize::try_from(n).unwrap_or(usize::MAX)).collect(),
            None => it.collect(),
        }
    }
}

/// Whether a range's lower bound lies above its upper one (BTreeSet::range panics then).
fn lower_after_upper(lower: &Bound<(Score, Str)>, upper: &Bound<(Score, Str)>) -> bool {
    match (lower, upper) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    }
}

/// Redis's index sanitizing for rank ranges: (skip, take), or None when empty.
fn rank_window(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, (end - start + 1) as usize))
}

/// A score interval; `min_ex`/`max_ex` make a bound exclusive (`(1.5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    /// Lower bound.
    pub min: f64,
    /// Whether the lower bound is excluded.
    pub min_ex: bool,
    /// Upper bound.
    pub max: f64,
    /// Whether the upper bound is excluded.
    pub max_ex: bool,
}

impl ScoreRange {
    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_ex || self.max_ex))
    }
}

/// One end of a lexicographic range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: before every member.
    NegInf,
    /// `+`: after every member.
    PosInf,
    /// `[member`.
    Incl(Bytes),
    /// `(member`.
    Excl(Bytes),
}

/// A lexicographic member interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    /// Lower end.
    pub min: LexBound,
    /// Upper end.
    pub max: LexBound,
}

impl LexRange {
    fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(b) => m >= &b[..],
            LexBound::Excl(b) => m > &b[..],
        }
    }

    fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(b) => m <= &b[..],
            LexBound::Excl(b) => m < &b[..],
        }
    }
}

/// Which members a range command selects.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeSpec {
    /// By 0-based index, negative from the end, both inclusive.
    Rank(i64, i64),
    /// By score.
    Score(ScoreRange),
    /// By member, for members of equal score.
    Lex(LexRange),
}

/// A ZRANGE query.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    /// The selection.
    pub range: RangeSpec,
    /// Walk from the highest member down.
    pub rev: bool,
    /// Members skipped first (`LIMIT offset`); negative selects nothing.
    pub offset: i64,
    /// At most this many (`LIMIT count`); `None` (a negative count) is no limit.
    pub limit: Option<i64>,
}

impl RangeQuery {
    /// All members selected by `range`, no LIMIT.
    pub fn new(range: RangeSpec, rev: bool) -> Self {
        Self {
            range,
            rev,
            offset: 0,
            limit: None,
        }
    }
}

fn zset_of(entry: Option<&Entry>) -> Result<Option<&ZSetValue>, KvError> {
    match entry.map(|e| &e.value) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(KvError::WrongType),
    }
}

/// Runs `f` on the sorted set at `key` (None when missing).
fn read<R>(
    db: &DbRef<'_>,
    key: &[u8],
    f: impl FnOnce(Option<&ZSetValue>) -> R,
) -> Result<R, KvError> {
    db.read(key, |e| zset_of(e).map(f))
}

/// Runs `f` on the existing sorted set at `key` (`None` when missing), then removes the
/// key if `f` emptied the set.
fn modify<R>(
    slot: &mut crate::Slot<'_>,
    f: impl FnOnce(&mut ZSetValue) -> R,
) -> Result<Option<R>, KvError> {
    let Some(entry) = slot.get() else {
        return Ok(None);
    };
    let Value::ZSet(z) = &mut entry.value else {
        return Err(KvError::WrongType);
    };
    let result = f(z);
    if z.is_empty() {
        slot.remove();
    }
    Ok(Some(result))
}

/// ZADD's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddOptions {
    /// Only add new members (`NX`).
    pub nx: bool,
    /// Only update existing members (`XX`).
    pub xx: bool,
    /// Update only when the new score is greater (`GT`).
    pub gt: bool,
    /// Update only when the new score is less (`LT`).
    pub lt: bool,
    /// Add the given score to the current one (`INCR`, ZINCRBY).
    pub incr: bool,
}

/// What [`add`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AddOutcome {
    /// Members added.
    pub added: usize,
    /// Existing members whose score changed.
    pub updated: usize,
    /// Members not skipped by NX/XX/GT/LT.
    pub processed: usize,
    /// The last member's resulting score (the INCR reply).
    pub score: f64,
    /// An increment produced NaN (`inf + -inf`): the command fails with that error.
    pub nan: bool,
}

/// ZADD / ZINCRBY.
///
/// # Errors
/// WRONGTYPE.
pub fn add(
    db: &DbRef<'_>,
    key: &[u8],
    pairs: &[(f64, &[u8])],
    opts: AddOptions,
) -> Result<AddOutcome, KvError> {
    db.write(key, |slot| {
        let mut out = AddOutcome {
            added: 0,
            updated: 0,
            processed: 0,
            score: 0.0,
            nan: false,
        };
        let exists = match slot.get() {
            None => false,
            Some(Entry {
                value: Value::ZSet(_),
                ..
            }) => true,
            Some(_) => return Err(KvError::WrongType),
        };
        if !exists {
            if opts.xx {
                return Ok(out);
            }
            slot.put(Value::ZSet(Box::default()), None);
        }
        let Some(Entry {
            value: Value::ZSet(z),
            ..
        }) = slot.get()
        else {
            unreachable!("the sorted set was just checked or created");
        };
        for &(given, member) in pairs {
            match z.score(member) {
                Some(current) => {
                    if opts.nx {
                        continue;
                    }
                    let score = if opts.incr { given + current } else { given };
                    if score.is_nan() {
                        out.nan = true;
                        break;
                    }
                    if (opts.lt && score >= current) || (opts.gt && score <= current) {
                        continue;
                    }
                    out.processed += 1;
                    out.score = score;
                    if score != current {
                        z.insert(member, score);
                        out.updated += 1;
                    }
                }
                None => {
                    if opts.xx {
                        continue;
                    }
                    z.insert(member, given);
                    out.added += 1;
                    out.processed += 1;
                    out.score = given;
                }
            }
        }
        Ok(out)
    })
}

/// ZREM: members removed.
///
/// # Errors
/// WRONGTYPE.
pub fn remove(db: &DbRef<'_>, key: &[u8], members: &[&[u8]]) -> Result<usize, KvError> {
    db.write(key, |slot| {
        modify(slot, |z| members.iter().filter(|m| z.remove(m)).count())
            .map(Option::unwrap_or_default)
    })
}

/// ZSCORE.
///
/// # Errors
/// WRONGTYPE.
pub fn score(db: &DbRef<'_>, key: &[u8], member: &[u8]) -> Result<Option<f64>, KvError> {
    read(db, key, |z| z.and_then(|z| z.score(member)))
}

/// ZMSCORE.
///
/// # Errors
/// WRONGTYPE.
pub fn scores(db: &DbRef<'_>, key: &[u8], members: &[&[u8]]) -> Result<Vec<Option<f64>>, KvError> {
    read(db, key, |z| {
        members.iter().map(|m| z.and_then(|z| z.score(m))).collect()
    })
}

/// ZCARD.
///
/// # Errors
/// WRONGTYPE.
pub fn card(db: &DbRef<'_>, key: &[u8]) -> Result<usize, KvError> {
    read(db, key, |z| z.map_or(0, ZSetValue::len))
}

/// ZCOUNT and ZLEXCOUNT: members in `range` (a score or lex range).
///
/// # Errors
/// WRONGTYPE.
pub fn count(db: &DbRef<'_>, key: &[u8], range: &RangeSpec) -> Result<usize, KvError> {
    read(db, key, |z| z.map_or(0, |z| z.walk(range, false).count()))
}

/// ZRANK / ZREVRANK.
///
/// # Errors
/// WRONGTYPE.
pub fn rank(
    db: &DbRef<'_>,
    key: &[u8],
    member: &[u8],
    rev: bool,
) -> Result<Option<usize>, KvError> {
    read(db, key, |z| {
        let z = z?;
        let r = z.rank(member)?;
        Some(if rev { z.len() - 1 - r } else { r })
    })
}

/// ZRANGE and its older forms: the selected members with scores.
///
/// # Errors
/// WRONGTYPE.
pub fn range(db: &DbRef<'_>, key: &[u8], q: &RangeQuery) -> Result<Scored, KvError> {
    read(db, key, |z| z.map_or_else(Vec::new, |z| z.select(q)))
}

/// Replaces `dst` with a sorted set of `items` (no TTL), or deletes it when empty.
fn store(slot: &mut crate::Slot<'_>, items: impl IntoIterator<Item = (Bytes, f64)>) -> usize {
    let mut z = ZSetValue::default();
    for (m, s) in items {
        z.insert_owned(m, s);
    }
    let n = z.len();
    if n == 0 {
        slot.remove();
    } else {
        slot.put(Value::ZSet(Box::new(z)), None);
    }
    n
}

/// ZRANGESTORE: the size of the stored result (0 deletes `dst`).
///
/// # Errors
/// WRONGTYPE when `src` is not a sorted set (`dst` is left alone).
pub fn range_store(
    db: &DbRef<'_>,
    dst: &[u8],
    src: &[u8],
    q: &RangeQuery,
) -> Result<usize, KvError> {
    db.write_many(&[dst, src], |multi| {
        let items = {
            let mut slot = multi.slot(src);
            match zset_of(slot.get().map(|e| &*e))? {
                Some(z) => z.select(q),
                None => Vec::new(),
            }
        };
        Ok(store(&mut multi.slot(dst), items))
    })
}

/// ZREMRANGEBYRANK / BYSCORE / BYLEX: members removed.
///
/// # Errors
/// WRONGTYPE.
pub fn remove_range(db: &DbRef<'_>, key: &[u8], range: &RangeSpec) -> Result<usize, KvError> {
    db.write(key, |slot| {
        modify(slot, |z| {
            let doomed: Vec<Str> = z.walk(range, false).map(|(m, _)| m.clone()).collect();
            for m in &doomed {
                z.remove(m);
            }
            doomed.len()
        })
        .map(Option::unwrap_or_default)
    })
}

/// ZPOPMIN / ZPOPMAX: up to `count` members from the low (or high, `max`) end.
///
/// # Errors
/// WRONGTYPE.
pub fn pop(db: &DbRef<'_>, key: &[u8], max: bool, count: usize) -> Result<Scored, KvError> {
    db.write(key, |slot| {
        modify(slot, |z| pop_from(z, max, count)).map(Option::unwrap_or_default)
    })
}

fn pop_from(z: &mut ZSetValue, max: bool, count: usize) -> Vec<(Bytes, f64)> {
    let mut out = Vec::with_capacity(count.min(z.len()));
    while out.len() < count {
        let next = if max {
            z.order.pop_last()
        } else {
            z.order.pop_first()
        };
        let Some((s, m)) = next else { break };
        z.scores.remove(&m[..]);
        out.push((m.to_bytes(), s.0));
    }
    out
}

/// ZMPOP: pops from the first key holding a sorted set; None when none does.
///
/// # Errors
/// WRONGTYPE for a key of another type met before a sorted set.
pub fn mpop(
    db: &DbRef<'_>,
    keys: &[&[u8]],
    max: bool,
    count: usize,
) -> Result<Option<(Bytes, Scored)>, KvError> {
    db.write_many(keys, |multi| {
        for key in keys {
            let mut slot = multi.slot(key);
            if let Some(items) = modify(&mut slot, |z| pop_from(z, max, count))? {
                return Ok(Some((Bytes::copy_from_slice(key), items)));
            }
        }
        Ok(None)
    })
}

/// ZRANDMEMBER: without `count` one member; with a positive count up to that many
/// distinct members; with a negative count exactly |count| members, repeats allowed.
///
/// # Errors
/// WRONGTYPE.
pub fn random_members(db: &DbRef<'_>, key: &[u8], count: i64) -> Result<Scored, KvError> {
    if count < 0 {
        // Independent draws.
        let mut picks = Vec::new();
        let want = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        random_members_repeating(db, key, want, &mut picks)?;
        return Ok(picks);
    }
    read(db, key, |z| {
        let Some(z) = z else { return Vec::new() };
        // The ordered set has no random access: index it once (O(n), see the module docs).
        let mut all: Vec<(&Str, f64)> = z.iter().collect();
        let len = all.len();
        let owned = |(m, s): (&Str, f64)| (m.to_bytes(), s);
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        if n >= len {
            // The whole set, highest first: Redis iterates it from the tail.
            return all.into_iter().rev().map(owned).collect();
        }
        // Distinct draws: a partial Fisher-Yates shuffle.
        for i in 0..n {
            all.swap(i, fastrand::usize(i..len));
        }
        all.into_iter().take(n).map(owned).collect()
    })
}

/// ZRANDMEMBER with a negative count: `picks` independent draws (repeats possible),
/// each member and its score handed to `out` under the key's lock.
///
/// # Errors
/// WRONGTYPE.
pub fn random_members_repeating(
    db: &DbRef<'_>,
    key: &[u8],
    picks: usize,
    out: &mut dyn crate::Picks<f64>,
) -> Result<(), KvError> {
    read(db, key, |z| {
        let Some(z) = z else {
            out.count(0);
            return;
        };
        // The ordered set has no random access: index it once (O(n), see the module docs).
        let all: Vec<(&Str, f64)> = z.iter().collect();
        out.count(picks);
        for _ in 0..picks {
            let (m, s) = all[fastrand::usize(..all.len())];
            out.pick(m.as_bytes(), &s);
        }
    })
}

/// ZSCAN: every member whose name matches `pattern` (all when None), in order.
///
/// # Errors
/// WRONGTYPE.
pub fn scan(db: &DbRef<'_>, key: &[u8], pattern: Option<&[u8]>) -> Result<Scored, KvError> {
    read(db, key, |z| {
        z.map_or_else(Vec::new, |z| {
            z.iter()
                .filter(|(m, _)| pattern.is_none_or(|p| crate::keys::glob_match(p, m, false)))
                .map(|(m, s)| (m.to_bytes(), s))
                .collect()
        })
    })
}

/// The set operation of ZUNION / ZINTER / ZDIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    /// Members in any input.
    Union,
    /// Members in every input.
    Inter,
    /// Members of the first input in no other.
    Diff,
}

/// How scores of a member found in several inputs combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregate {
    /// Add them.
    #[default]
    Sum,
    /// Keep the least.
    Min,
    /// Keep the greatest.
    Max,
}

fn aggregate(target: &mut f64, value: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += value;
            // inf + -inf: Redis makes it 0 rather than store NaN.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if value < *target {
                *target = value;
            }
        }
        Aggregate::Max => {
            if value > *target {
                *target = value;
            }
        }
    }
}

/// One input of a set operation: a sorted set, a plain set (every score 1) or nothing.
enum Source<'e> {
    Missing,
    Z(&'e ZSetValue),
    S(&'e crate::sets::SetValue),
}

impl Source<'_> {
    fn of(entry: Option<&Entry>) -> Result<Source<'_>, KvError> {
        match entry.map(|e| &e.value) {
            None => Ok(Source::Missing),
            Some(Value::ZSet(z)) => Ok(Source::Z(z)),
            Some(Value::Set(s)) => Ok(Source::S(s)),
            Some(_) => Err(KvError::WrongType),
        }
    }

    fn len(&self) -> usize {
        match self {
            Source::Missing => 0,
            Source::Z(z) => z.len(),
            Source::S(s) => s.len(),
        }
    }

    fn get(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Missing => None,
            Source::Z(z) => z.score(member),
            Source::S(s) => s.contains(member).then_some(1.0),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Source::Missing => {}
            Source::Z(z) => z.iter().for_each(|(m, s)| f(m, s)),
            Source::S(s) => s.members().for_each(|m| f(&m, 1.0)),
        }
    }
}

/// Options of [`combine`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CombineOptions {
    /// One weight per input (`WEIGHTS`); empty means all 1.
    pub weights: Vec<f64>,
    /// How scores combine (`AGGREGATE`).
    pub aggregate: Aggregate,
    /// Stop counting at this many members (ZINTERCARD's `LIMIT`; 0 is no limit).
    pub limit: usize,
}

/// Computes `op` over `keys` with every key's shard locked (atomic). The result is
/// unordered; callers sort or store it.
fn compute(
    multi: &mut crate::Multi<'_, '_>,
    op: SetOp,
    keys: &[&[u8]],
    opts: &CombineOptions,
) -> Result<HashMap<Bytes, f64, ahash::RandomState>, KvError> {
    // Types are checked for every input before any work, as Redis does.
    let mut lens = Vec::with_capacity(keys.len());
    for k in keys {
        let mut slot = multi.slot(k);
        lens.push(Source::of(slot.get().map(|e| &*e))?.len());
    }
    let weight = |i: usize| opts.weights.get(i).copied().unwrap_or(1.0);
    let weighted = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    // Union and intersection visit the inputs smallest first, like Redis (it decides
    // the order in which sums round); a difference keeps the first input first.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    if op != SetOp::Diff {
        order.sort_by_key(|&i| lens[i]);
    }
    let mut acc: HashMap<Bytes, f64, ahash::RandomState> = HashMap::default();
    match op {
        SetOp::Union => {
            for &i in &order {
                let w = weight(i);
                let mut slot = multi.slot(keys[i]);
                Source::of(slot.get().map(|e| &*e))?.for_each(|m, s| {
                    let v = weighted(s, w);
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, v, opts.aggregate),
                        None => {
                            acc.insert(Bytes::copy_from_slice(m), v);
                        }
                    }
                });
            }
        }
        SetOp::Inter | SetOp::Diff => {
            let first = order[0];
            if lens[first] == 0 {
                return Ok(acc);
            }
            {
                let w = weight(first);
                let mut slot = multi.slot(keys[first]);
                Source::of(slot.get().map(|e| &*e))?.for_each(|m, s| {
                    acc.insert(Bytes::copy_from_slice(m), weighted(s, w));
                });
            }
            for &i in &order[1..] {
                if acc.is_empty() {
                    break;
                }
                let w = weight(i);
                let mut slot = multi.slot(keys[i]);
                let src = Source::of(slot.get().map(|e| &*e))?;
                if op == SetOp::Diff {
                    acc.retain(|m, _| src.get(m).is_none());
                } else {
                    acc.retain(|m, t| match src.get(m) {
                        Some(s) => {
                            aggregate(t, weighted(s, w), opts.aggregate);
                            true
                        }
                        None => false,
                    });
                }
            }
        }
    }
    Ok(acc)
}

fn sorted(acc: HashMap<Bytes, f64, ahash::RandomState>) -> Vec<(Bytes, f64)> {
    let mut items: Vec<(Bytes, f64)> = acc.into_iter().map(|(m, s)| (m, canonical(s))).collect();
    items.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    items
}

/// ZUNION / ZINTER / ZDIFF: the result in (score, member) order.
///
/// # Errors
/// WRONGTYPE when an input is neither a sorted set nor a set.
pub fn combine(
    db: &DbRef<'_>,
    op: SetOp,
    keys: &[&[u8]],
    opts: &CombineOptions,
) -> Result<Scored, KvError> {
    db.write_many(keys, |multi| compute(multi, op, keys, opts).map(sorted))
}

/// ZUNIONSTORE / ZINTERSTORE / ZDIFFSTORE: the size of the stored result (0 deletes
/// `dst`).
///
/// # Errors
/// WRONGTYPE when an input is neither a sorted set nor a set (`dst` is left alone).
pub fn combine_store(
    db: &DbRef<'_>,
    dst: &[u8],
    op: SetOp,
    keys: &[&[u8]],
    opts: &CombineOptions,
) -> Result<usize, KvError> {
    let mut all: Vec<&[u8]> = keys.to_vec();
    all.push(dst);
    db.write_many(&all, |multi| {
        let acc = compute(multi, op, keys, opts)?;
        Ok(store(&mut multi.slot(dst), acc))
    })
}

/// Checks that every input is a sorted set, a set or missing (Redis reports a wrong
/// type before it looks at the options).
///
/// # Errors
/// WRONGTYPE.
pub fn check_inputs(db: &DbRef<'_>, keys: &[&[u8]]) -> Result<(), KvError> {
    keys.iter()
        .try_for_each(|k| db.read(k, |e| Source::of(e).map(|_| ())))
}

/// ZINTERCARD: the size of the intersection, counting stopped at `limit` (0: none).
///
/// # Errors
/// WRONGTYPE when an input is neither a sorted set nor a set.
pub fn inter_card(db: &DbRef<'_>, keys: &[&[u8]], limit: usize) -> Result<usize, KvError> {
    let opts = CombineOptions::default();
    let n = db
        .write_many(keys, |multi| compute(multi, SetOp::Inter, keys, &opts))?
        .len();
    Ok(if limit > 0 { n.min(limit) } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn check_invariants(z: &ZSetValue) {
        assert_eq!(z.scores.len(), z.order.len());
        for (s, m) in &z.order {
            assert_eq!(z.scores.get(m).map(|v| v.to_bits()), Some(s.0.to_bits()));
            assert!(!s.0.is_nan());
        }
    }

    #[test]
    fn negative_zero_is_stored_as_zero() {
        let mut z = ZSetValue::default();
        z.insert(b"a", -0.0);
        assert!(z.score(b"a").unwrap().is_sign_positive());
        check_invariants(&z);
    }

    #[test]
    fn rank_window_matches_redis_sanitizing() {
        assert_eq!(rank_window(0, -1, 3), Some((0, 3)));
        assert_eq!(rank_window(-100, 100, 3), Some((0, 3)));
        assert_eq!(rank_window(2, 1, 3), None);
        assert_eq!(rank_window(3, 5, 3), None);
        assert_eq!(rank_window(-1, -1, 3), Some((2, 1)));
        assert_eq!(rank_window(0, 0, 0), None);
    }

    #[test]
    fn exclusive_score_bounds() {
        let mut z = ZSetValue::default();
        for (m, s) in [("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 3.0)] {
            z.insert(m.as_bytes(), s);
        }
        let q = |min, min_ex, max, max_ex, rev| {
            let r = RangeSpec::Score(ScoreRange {
                min,
                min_ex,
                max,
                max_ex,
            });
            z.select(&RangeQuery::new(r, rev))
                .into_iter()
                .map(|(m, _)| String::from_utf8(m.to_vec()).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(q(1.0, true, 3.0, true, false), ["b", "c"]);
        assert_eq!(q(2.0, false, 2.0, false, true), ["c", "b"]);
        assert_eq!(q(2.0, true, 2.0, false, false), Vec::<String>::new());
        assert_eq!(
            q(f64::NEG_INFINITY, false, f64::INFINITY, false, false).len(),
            4
        );
        assert_eq!(q(3.0, false, 1.0, false, false), Vec::<String>::new());
    }

    proptest! {
        /// Random inserts and removals keep both indexes in step, and the order equals a
        /// model sorted by (score, member).
        #[test]
        fn matches_a_model(ops in prop::collection::vec((0u8..3, 0u8..8, -3i8..3), 1..200)) {
            let mut z = ZSetValue::default();
            let mut model: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
            for (op, member, score) in ops {
                let m = [b'm', b'0' + member];
                if op == 0 {
                    prop_assert!(z.remove(&m) == model.remove(&m[..]).is_some());
                } else {
                    let s = f64::from(score) / 2.0;
                    prop_assert_eq!(z.insert(&m, s), model.insert(m.to_vec(), s).is_none());
                }
                check_invariants(&z);
            }
            let mut expected: Vec<(Vec<u8>, f64)> = model.into_iter().collect();
            expected.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            let got: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
            prop_assert_eq!(&got, &expected);
            for (i, (m, _)) in expected.iter().enumerate() {
                prop_assert_eq!(z.rank(m), Some(i));
            }
        }
    }
}
