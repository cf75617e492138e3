//! Set operations (SADD, SMEMBERS, SINTER, SPOP, SSCAN, ...).
//!
//! Invariants:
//! - A set stored in the keyspace is never empty: the operation that removes its last
//!   member removes the key.
//! - Like Redis 7.0, a set whose members are all canonical integers, at most
//!   [`MAX_INTSET_ENTRIES`] of them, is an `intset` (a sorted vector of i64: binary-search
//!   lookups, ascending iteration); the first other member, or one too many, turns it
//!   into a `hashtable` (`Table`) for good. Either way the encoding depends only on the
//!   members added, never on their order.
//! - Multi-key commands lock all their keys' shards at once (`write_many`), so they are
//!   atomic, and read one set at a time into an owned result.

use crate::hashes::{sample_distinct, ScanOptions, Table};
use crate::shard::{parse_canonical_i64, Str, Value};
use crate::{DbRef, Entry, KvError, Multi, Slot};
use bytes::Bytes;
use std::collections::HashSet;

/// Most members of an `intset` (`set-max-intset-entries`).
pub const MAX_INTSET_ENTRIES: usize = 512;

/// A set of members.
#[derive(Debug, Clone)]
pub struct SetValue {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// `intset`: sorted, distinct.
    Ints(Vec<i64>),
    /// `hashtable`.
    Table(Table<()>),
}

impl Default for SetValue {
    fn default() -> Self {
        Self {
            repr: Repr::Ints(Vec::new()),
        }
    }
}

impl PartialEq for SetValue {
    /// Same members, whatever the representation or order.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.members().all(|m| other.contains(&m))
    }
}

fn int_bytes(i: i64) -> Bytes {
    Bytes::copy_from_slice(itoa::Buffer::new().format(i).as_bytes())
}

impl SetValue {
    /// Redis 7.0's name for the representation (`OBJECT ENCODING`).
    pub(crate) fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Ints(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    /// A set of `members` (repeats collapse), encoded as Redis would after adding them.
    pub fn from_members(members: impl IntoIterator<Item = Bytes>) -> Self {
        let mut set = Self::default();
        for m in members {
            set.insert(m);
        }
        set
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => v.len(),
            Repr::Table(t) => t.len(),
        }
    }

    /// Whether there are no members (never true of a stored set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(v) => {
                parse_canonical_i64(member).is_some_and(|i| v.binary_search(&i).is_ok())
            }
            Repr::Table(t) => t.contains(member),
        }
    }

    /// The members: ascending for an intset, unspecified otherwise.
    pub fn members(&self) -> Box<dyn Iterator<Item = Bytes> + '_> {
        match &self.repr {
            Repr::Ints(v) => Box::new(v.iter().map(|&i| int_bytes(i))),
            Repr::Table(t) => Box::new(t.iter().map(|(k, ())| k.to_bytes())),
        }
    }

    /// The members, as [`SetValue::members`]; its `for_each` lends each one as `&Bytes`
    /// (for callers that only look, such as ZUNIONSTORE over sets).
    pub fn iter(&self) -> Members<'_> {
        Members(self.members())
    }

    /// Adds `member` (copied if new); true if it is new.
    pub fn add(&mut self, member: &[u8]) -> bool {
        if let Repr::Table(t) = &mut self.repr {
            return !t.contains(member) && t.insert(Str::copy(member), ());
        }
        if self.contains(member) {
            return false;
        }
        self.insert(Bytes::copy_from_slice(member))
    }

    fn insert(&mut self, member: Bytes) -> bool {
        if let Repr::Ints(v) = &mut self.repr {
            match parse_canonical_i64(&member) {
                Some(i) => {
                    let Err(at) = v.binary_search(&i) else {
                        return false;
                    };
                    v.insert(at, i);
                    if v.len() > MAX_INTSET_ENTRIES {
                        self.convert();
                    }
                    return true;
                }
                None => self.convert(),
            }
        }
        match &mut self.repr {
            Repr::Table(t) => t.insert(Str::from_bytes(member), ()),
            Repr::Ints(_) => unreachable!("converted above"),
        }
    }

    /// Removes `member`; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(v) => match parse_canonical_i64(member).map(|i| v.binary_search(&i)) {
                Some(Ok(at)) => {
                    v.remove(at);
                    true
                }
                _ => false,
            },
            Repr::Table(t) => t.remove(member).is_some(),
        }
    }

    fn convert(&mut self) {
        if let Repr::Ints(v) = &self.repr {
            let mut t = Table::default();
            for &i in v {
                t.insert(Str::copy(itoa::Buffer::new().format(i).as_bytes()), ());
            }
            self.repr = Repr::Table(t);
        }
    }

    /// Removes and returns the member at position `i` (ascending order for an intset).
    fn remove_at(&mut self, i: usize) -> Bytes {
        match &mut self.repr {
            Repr::Ints(v) => int_bytes(v.remove(i)),
            Repr::Table(t) => t.remove_at(i).0.to_bytes(),
        }
    }

    fn at(&self, i: usize) -> Bytes {
        self.with_at(i, Bytes::copy_from_slice)
    }

    /// `f` of the member at position `i`, without copying it out.
    fn with_at<R>(&self, i: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        match &self.repr {
            Repr::Ints(v) => f(itoa::Buffer::new().format(v[i]).as_bytes()),
            Repr::Table(t) => f(t.at(i).0.as_bytes()),
        }
    }

    /// Removes and returns `count` distinct random members (`count < len`).
    fn pop_some(&mut self, count: usize) -> Vec<Bytes> {
        let picks = sample_distinct(self.len(), count);
        match &mut self.repr {
            Repr::Ints(v) => {
                let mut chosen = vec![false; v.len()];
                let out = picks
                    .into_iter()
                    .map(|i| {
                        chosen[i] = true;
                        int_bytes(v[i])
                    })
                    .collect();
                let mut i = 0;
                v.retain(|_| {
                    i += 1;
                    !chosen[i - 1]
                });
                out
            }
            Repr::Table(t) => {
                let out: Vec<Bytes> = picks.into_iter().map(|i| t.at(i).0.to_bytes()).collect();
                for m in &out {
                    t.remove(m);
                }
                out
            }
        }
    }
}

/// An iterator over a set's members (see [`SetValue::iter`]).
pub struct Members<'a>(Box<dyn Iterator<Item = Bytes> + 'a>);

impl std::fmt::Debug for Members<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Members")
    }
}

impl Iterator for Members<'_> {
    type Item = Bytes;
    fn next(&mut self) -> Option<Bytes> {
        self.0.next()
    }
}

impl Members<'_> {
    /// Calls `f` on each member by reference (takes precedence over
    /// `Iterator::for_each`, whose items are owned).
    pub fn for_each(self, mut f: impl FnMut(&Bytes)) {
        for m in self.0 {
            f(&m);
        }
    }
}

fn set_of(entry: Option<&Entry>) -> Result<Option<&SetValue>, KvError> {
    match entry.map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(KvError::WrongType),
    }
}

/// The set at `slot` for modification; `Ok(None)` if missing.
fn set_mut<'s>(slot: &'s mut Slot<'_>) -> Result<Option<&'s mut SetValue>, KvError> {
    match slot.get() {
        None => Ok(None),
        Some(Entry {
            value: Value::Set(s),
            ..
        }) => Ok(Some(s)),
        Some(_) => Err(KvError::WrongType),
    }
}

/// Runs `f` on the set at `slot` and removes the key if `f` emptied it.
fn modify<R>(
    slot: &mut Slot<'_>,
    missing: R,
    f: impl FnOnce(&mut SetValue) -> R,
) -> Result<R, KvError> {
    let Some(set) = set_mut(slot)? else {
        return Ok(missing);
    };
    let r = f(set);
    if set.is_empty() {
        slot.remove();
    }
    Ok(r)
}

/// SADD: how many members were added.
///
/// # Errors
/// WRONGTYPE.
pub fn sadd(db: &DbRef<'_>, key: &[u8], members: &[&[u8]]) -> Result<usize, KvError> {
    db.write(key, |slot| {
        if let Some(set) = set_mut(slot)? {
            return Ok(members.iter().filter(|m| set.add(m)).count());
        }
        let mut set = SetValue::default();
        let added = members.iter().filter(|m| set.add(m)).count();
        slot.put(Value::Set(Box::new(set)), None);
        Ok(added)
    })
}

/// SREM: how many members were removed. Removing the last member removes the key.
///
/// # Errors
/// WRONGTYPE.
pub fn srem(db: &DbRef<'_>, key: &[u8], members: &[&[u8]]) -> Result<usize, KvError> {
    db.write(key, |slot| {
        modify(slot, 0, |set| {
            members.iter().filter(|m| set.remove(m)).count()
        })
    })
}

/// SMEMBERS.
///
/// # Errors
/// WRONGTYPE.
pub fn smembers(db: &DbRef<'_>, key: &[u8]) -> Result<Vec<Bytes>, KvError> {
    db.read(key, |e| {
        Ok(set_of(e)?.map_or_else(Vec::new, |s| s.members().collect()))
    })
}

/// SISMEMBER.
///
/// # Errors
/// WRONGTYPE.
pub fn sismember(db: &DbRef<'_>, key: &[u8], member: &[u8]) -> Result<bool, KvError> {
    db.read(key, |e| Ok(set_of(e)?.is_some_and(|s| s.contains(member))))
}

/// SMISMEMBER: membership of each of `members`.
///
/// # Errors
/// WRONGTYPE.
pub fn smismember(db: &DbRef<'_>, key: &[u8], members: &[&[u8]]) -> Result<Vec<bool>, KvError> {
    db.read(key, |e| {
        let set = set_of(e)?;
        Ok(members
            .iter()
            .map(|m| set.is_some_and(|s| s.contains(m)))
            .collect())
    })
}

/// SCARD.
///
/// # Errors
/// WRONGTYPE.
pub fn scard(db: &DbRef<'_>, key: &[u8]) -> Result<usize, KvError> {
    db.read(key, |e| Ok(set_of(e)?.map_or(0, SetValue::len)))
}

/// SPOP without a count: a random member, removed.
///
/// # Errors
/// WRONGTYPE.
pub fn spop(db: &DbRef<'_>, key: &[u8]) -> Result<Option<Bytes>, KvError> {
    db.write(key, |slot| {
        let popped = modify(slot, None, |set| {
            Some(set.remove_at(fastrand::usize(..set.len())))
        })?;
        if let Some(m) = &popped {
            slot.journal_set_removed(std::slice::from_ref(m));
        }
        Ok(popped)
    })
}

/// SPOP with a count: up to `count` distinct random members, removed (the whole set,
/// and the key, when `count` reaches its size).
///
/// # Errors
/// WRONGTYPE.
pub fn spop_count(db: &DbRef<'_>, key: &[u8], count: usize) -> Result<Vec<Bytes>, KvError> {
    db.write(key, |slot| {
        if count == 0 {
            return set_mut(slot).map(|_| Vec::new());
        }
        let popped = modify(slot, Vec::new(), |set| {
            if count >= set.len() {
                std::mem::take(set).members().collect()
            } else {
                set.pop_some(count)
            }
        })?;
        slot.journal_set_removed(&popped);
        Ok(popped)
    })
}

/// SRANDMEMBER without a count.
///
/// # Errors
/// WRONGTYPE.
pub fn srandmember(db: &DbRef<'_>, key: &[u8]) -> Result<Option<Bytes>, KvError> {
    db.read(key, |e| {
        Ok(set_of(e)?.map(|s| s.at(fastrand::usize(..s.len()))))
    })
}

/// SRANDMEMBER with a count: `count > 0` distinct members (all if fewer), or `-count`
/// members picked independently (repeats possible).
///
/// # Errors
/// WRONGTYPE.
pub fn srandmember_count(db: &DbRef<'_>, key: &[u8], count: i64) -> Result<Vec<Bytes>, KvError> {
    let want = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    if count < 0 {
        let mut picks = Vec::new();
        srandmember_repeating(db, key, want, &mut picks)?;
        return Ok(picks);
    }
    db.read(key, |e| {
        let Some(s) = set_of(e)? else {
            return Ok(Vec::new());
        };
        let n = s.len();
        Ok(if want >= n {
            s.members().collect()
        } else {
            sample_distinct(n, want)
                .into_iter()
                .map(|i| s.at(i))
                .collect()
        })
    })
}

/// SRANDMEMBER with a negative count: `picks` independent draws (repeats possible),
/// each handed to `out` under the key's lock.
///
/// # Errors
/// WRONGTYPE.
pub fn srandmember_repeating(
    db: &DbRef<'_>,
    key: &[u8],
    picks: usize,
    out: &mut dyn crate::Picks<()>,
) -> Result<(), KvError> {
    db.read(key, |e| {
        let Some(s) = set_of(e)? else {
            out.count(0);
            return Ok(());
        };
        out.count(picks);
        for _ in 0..picks {
            s.with_at(fastrand::usize(..s.len()), |m| out.pick(m, &()));
        }
        Ok(())
    })
}

/// SMOVE: whether `member` moved from `src` to `dst` (a missing `src` is 0 whatever
/// `dst` holds; `src == dst` only checks membership).
///
/// # Errors
/// WRONGTYPE when either key holds another type.
pub fn smove(db: &DbRef<'_>, src: &[u8], dst: &[u8], member: &[u8]) -> Result<bool, KvError> {
    db.write_many(&[src, dst], |multi| {
        let Some(present) = read_set(multi, src, |s| s.map(|s| s.contains(member)))? else {
            return Ok(false);
        };
        read_set(multi, dst, |_| ())?;
        if src == dst || !present {
            return Ok(present);
        }
        modify(&mut multi.slot(src), (), |s| {
            s.remove(member);
        })?;
        let mut slot = multi.slot(dst);
        match set_mut(&mut slot)? {
            Some(s) => {
                s.add(member);
            }
            None => {
                let set = SetValue::from_members([Bytes::copy_from_slice(member)]);
                slot.put(Value::Set(Box::new(set)), None);
            }
        }
        Ok(true)
    })
}

fn read_set<R>(
    multi: &mut Multi<'_, '_>,
    key: &[u8],
    f: impl FnOnce(Option<&SetValue>) -> R,
) -> Result<R, KvError> {
    let mut slot = multi.slot(key);
    Ok(f(set_of(slot.get().map(|e| &*e))?))
}

/// The algebra of SINTER, SUNION and SDIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    /// Members in every set (a missing key is the empty set).
    Inter,
    /// Members in any set.
    Union,
    /// Members of the first set in none of the others.
    Diff,
}

/// Computes `op` over `keys`, whose shards `multi` holds. Every key is type-checked first,
/// as Redis does, so a wrong type anywhere is an error even when the result is known.
fn combine(multi: &mut Multi<'_, '_>, keys: &[&[u8]], op: SetOp) -> Result<Vec<Bytes>, KvError> {
    let mut sizes = Vec::with_capacity(keys.len());
    for k in keys {
        sizes.push(read_set(multi, k, |s| s.map(SetValue::len))?);
    }
    match op {
        SetOp::Inter => {
            if sizes.iter().any(Option::is_none) {
                return Ok(Vec::new());
            }
            // Start from the smallest set: the work is O(smallest × keys).
            let smallest = (0..keys.len()).min_by_key(|&i| sizes[i]).unwrap_or(0);
            let mut result: Vec<Bytes> = read_set(multi, keys[smallest], |s| {
                s.map_or_else(Vec::new, |s| s.members().collect())
            })?;
            for k in keys {
                if result.is_empty() {
                    break;
                }
                if *k != keys[smallest] {
                    read_set(multi, k, |s| {
                        result.retain(|m| s.is_some_and(|s| s.contains(m)));
                    })?;
                }
            }
            Ok(result)
        }
        SetOp::Union => {
            let mut result: HashSet<Bytes, ahash::RandomState> = HashSet::default();
            for k in keys {
                read_set(multi, k, |s| {
                    result.extend(s.into_iter().flat_map(|s| s.members()))
                })?;
            }
            Ok(result.into_iter().collect())
        }
        SetOp::Diff => {
            let Some(first) = keys.first() else {
                return Ok(Vec::new());
            };
            let mut result: HashSet<Bytes, ahash::RandomState> = read_set(multi, first, |s| {
                s.into_iter().flat_map(|s| s.members()).collect()
            })?;
            for k in &keys[1..] {
                if result.is_empty() {
                    break;
                }
                if k == first {
                    result.clear();
                    continue;
                }
                // Whichever is cheaper: look up our members there, or remove theirs here.
                read_set(multi, k, |s| {
                    let Some(s) = s else { return };
                    if result.len() <= s.len() {
                        result.retain(|m| !s.contains(m));
                    } else {
                        for m in s.members() {
                            result.remove(&m);
                        }
                    }
                })?;
            }
            Ok(result.into_iter().collect())
        }
    }
}

/// SINTER / SUNION / SDIFF.
///
/// # Errors
/// WRONGTYPE when any key holds another type.
pub fn combine_sets(db: &DbRef<'_>, keys: &[&[u8]], op: SetOp) -> Result<Vec<Bytes>, KvError> {
    db.write_many(keys, |multi| combine(multi, keys, op))
}

/// SINTERCARD: the size of the intersection, capped at `limit` (0: no cap).
///
/// # Errors
/// WRONGTYPE when any key holds another type.
pub fn sintercard(db: &DbRef<'_>, keys: &[&[u8]], limit: usize) -> Result<usize, KvError> {
    let n = combine_sets(db, keys, SetOp::Inter)?.len();
    Ok(if limit == 0 { n } else { n.min(limit) })
}

/// SINTERSTORE / SUNIONSTORE / SDIFFSTORE: stores the result at `dst` (replacing any
/// value and deadline; an empty result deletes `dst`) and returns its size.
///
/// # Errors
/// WRONGTYPE when any source key holds another type (`dst` is left alone).
pub fn combine_store(
    db: &DbRef<'_>,
    dst: &[u8],
    keys: &[&[u8]],
    op: SetOp,
) -> Result<usize, KvError> {
    let mut all = Vec::with_capacity(keys.len() + 1);
    all.push(dst);
    all.extend_from_slice(keys);
    db.write_many(&all, |multi| {
        let result = combine(multi, keys, op)?;
        let n = result.len();
        let mut slot = multi.slot(dst);
        if n == 0 {
            slot.remove();
        } else {
            slot.put(Value::Set(Box::new(SetValue::from_members(result))), None);
        }
        Ok(n)
    })
}

/// SSCAN: the next cursor and the members of this step. An intset is returned whole,
/// with cursor 0, as Redis does.
///
/// # Errors
/// WRONGTYPE.
pub fn sscan(
    db: &DbRef<'_>,
    key: &[u8],
    cursor: u64,
    options: ScanOptions<'_>,
) -> Result<(u64, Vec<Bytes>), KvError> {
    db.read(key, |e| {
        let Some(s) = set_of(e)? else {
            return Ok((0, Vec::new()));
        };
        let keep = |m: &[u8]| {
            options
                .pattern
                .is_none_or(|p| crate::keys::glob_match(p, m, false))
        };
        let mut out = Vec::new();
        let next = match &s.repr {
            Repr::Ints(_) => {
                out.extend(s.members().filter(|m| keep(m)));
                0
            }
            Repr::Table(t) => t.scan(cursor, options.count, |m, ()| {
                if keep(m) {
                    out.push(m.to_bytes());
                }
            }),
        };
        Ok((next, out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keyspace, ManualClock};
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::sync::Arc;

    fn keyspace() -> Keyspace {
        Keyspace::new(Arc::new(ManualClock::new(1_000)), 1 << 20)
    }

    fn sorted(v: Vec<Bytes>) -> Vec<Bytes> {
        let mut v = v;
        v.sort();
        v
    }

    #[test]
    fn intset_until_a_string_or_too_many() {
        let ks = keyspace();
        let db = ks.db(0).unwrap();
        sadd(&db, b"s", &[b"3", b"-1", b"2"]).unwrap();
        assert_eq!(crate::keys::encoding(&db, b"s"), Some("intset"));
        assert_eq!(smembers(&db, b"s").unwrap(), vec!["-1", "2", "3"]);
        sadd(&db, b"s", &[b"007"]).unwrap();
        assert_eq!(crate::keys::encoding(&db, b"s"), Some("hashtable"));
        srem(&db, b"s", &[b"007"]).unwrap();
        assert_eq!(crate::keys::encoding(&db, b"s"), Some("hashtable"));

        let many: Vec<Vec<u8>> = (0..=MAX_INTSET_ENTRIES)
            .map(|i| i.to_string().into_bytes())
            .collect();
        let refs: Vec<&[u8]> = many.iter().map(|m| &m[..]).collect();
        sadd(&db, b"big", &refs[..MAX_INTSET_ENTRIES]).unwrap();
        assert_eq!(crate::keys::encoding(&db, b"big"), Some("intset"));
        sadd(&db, b"big", &refs[MAX_INTSET_ENTRIES..]).unwrap();
        assert_eq!(crate::keys::encoding(&db, b"big"), Some("hashtable"));
    }

    #[test]
    fn algebra_and_store() {
        let ks = keyspace();
        let db = ks.db(0).unwrap();
        sadd(&db, b"a", &[b"1", b"2", b"3", b"x"]).unwrap();
        sadd(&db, b"b", &[b"2", b"3", b"4"]).unwrap();
        let inter = combine_sets(&db, &[b"a", b"b"], SetOp::Inter).unwrap();
        assert_eq!(sorted(inter), vec!["2", "3"]);
        let union = combine_sets(&db, &[b"a", b"b", b"none"], SetOp::Union).unwrap();
        assert_eq!(sorted(union), vec!["1", "2", "3", "4", "x"]);
        let diff = combine_sets(&db, &[b"a", b"b"], SetOp::Diff).unwrap();
        assert_eq!(sorted(diff), vec!["1", "x"]);
        assert!(combine_sets(&db, &[b"a", b"a"], SetOp::Diff)
            .unwrap()
            .is_empty());
        assert!(combine_sets(&db, &[b"a", b"none"], SetOp::Inter)
            .unwrap()
            .is_empty());
        assert_eq!(sintercard(&db, &[b"a", b"b"], 1).unwrap(), 1);

        assert_eq!(
            combine_store(&db, b"d", &[b"a", b"b"], SetOp::Inter).unwrap(),
            2
        );
        assert_eq!(crate::keys::encoding(&db, b"d"), Some("intset"));
        assert_eq!(
            combine_store(&db, b"a", &[b"a", b"b"], SetOp::Diff).unwrap(),
            2
        );
        assert_eq!(sorted(smembers(&db, b"a").unwrap()), vec!["1", "x"]);
        assert_eq!(
            combine_store(&db, b"d", &[b"none"], SetOp::Union).unwrap(),
            0
        );
        assert_eq!(crate::keys::exists(&db, &[b"d"]), 0);

        crate::strings::set(&db, b"str", b"v", Default::default()).unwrap();
        assert_eq!(
            combine_sets(&db, &[b"none", b"str"], SetOp::Inter),
            Err(KvError::WrongType)
        );
    }

    #[test]
    fn smove_rules() {
        let ks = keyspace();
        let db = ks.db(0).unwrap();
        sadd(&db, b"s", &[b"a"]).unwrap();
        crate::strings::set(&db, b"str", b"v", Default::default()).unwrap();
        assert_eq!(smove(&db, b"none", b"str", b"a"), Ok(false));
        assert_eq!(smove(&db, b"s", b"str", b"a"), Err(KvError::WrongType));
        assert_eq!(smove(&db, b"s", b"s", b"a"), Ok(true));
        assert_eq!(smove(&db, b"s", b"t", b"a"), Ok(true));
        assert_eq!(
            crate::keys::exists(&db, &[b"s"]),
            0,
            "emptied source is removed"
        );
        assert_eq!(smembers(&db, b"t").unwrap(), vec!["a"]);
    }

    #[test]
    fn pops_are_distinct_and_remove() {
        let ks = keyspace();
        let db = ks.db(0).unwrap();
        for (key, prefix) in [(&b"ints"[..], ""), (&b"strs"[..], "m")] {
            let members: Vec<Vec<u8>> = (0..100)
                .map(|i| format!("{prefix}{i}").into_bytes())
                .collect();
            let refs: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
            sadd(&db, key, &refs).unwrap();
            let popped = spop_count(&db, key, 30).unwrap();
            let distinct: BTreeSet<_> = popped.iter().cloned().collect();
            assert_eq!(distinct.len(), 30);
            assert_eq!(scard(&db, key).unwrap(), 70);
            assert!(popped.iter().all(|m| !sismember(&db, key, m).unwrap()));
            let one = spop(&db, key).unwrap().unwrap();
            assert!(!sismember(&db, key, &one).unwrap());
            assert_eq!(spop_count(&db, key, 1000).unwrap().len(), 69);
            assert_eq!(crate::keys::exists(&db, &[key]), 0);
        }
    }

    #[test]
    fn scan_returns_every_member_present_throughout() {
        let ks = keyspace();
        let db = ks.db(0).unwrap();
        let members: Vec<Vec<u8>> = (0..300).map(|i| format!("m{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
        sadd(&db, b"s", &refs).unwrap();
        let options = ScanOptions {
            pattern: Some(b"m1*"),
            count: 5,
        };
        let (mut cursor, mut seen, mut step) = (0, BTreeSet::new(), 0);
        loop {
            let (next, items) = sscan(&db, b"s", cursor, options).unwrap();
            seen.extend(items);
            srem(&db, b"s", &[format!("m{step}").as_bytes()]).unwrap();
            sadd(&db, b"s", &[format!("n{step}").as_bytes()]).unwrap();
            step += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for i in step..300 {
            let m = format!("m{i}");
            assert_eq!(seen.contains(m.as_bytes()), m.starts_with("m1"), "{m}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// SADD/SREM/SPOP against a BTreeSet model, across the intset/table boundary.
        #[test]
        fn matches_a_set_model(ops in prop::collection::vec((0u8..3, 0u16..600, any::<bool>()), 1..300)) {
            let ks = keyspace();
            let db = ks.db(0).unwrap();
            let mut model = BTreeSet::new();
            for (op, n, text) in ops {
                let member = if text { format!("m{n}") } else { n.to_string() }.into_bytes();
                match op {
                    0 => {
                        let added = sadd(&db, b"s", &[&member]).unwrap();
                        prop_assert_eq!(added == 1, model.insert(Bytes::from(member)));
                    }
                    1 => {
                        let removed = srem(&db, b"s", &[&member]).unwrap();
                        prop_assert_eq!(removed == 1, model.remove(&member[..]));
                    }
                    _ => {
                        if let Some(m) = spop(&db, b"s").unwrap() {
                            prop_assert!(model.remove(&m));
                        } else {
                            prop_assert!(model.is_empty());
                        }
                    }
                }
                prop_assert_eq!(scard(&db, b"s").unwrap(), model.len());
                prop_assert_eq!(crate::keys::exists(&db, &[b"s"]), usize::from(!model.is_empty()));
            }
            let all: Vec<Bytes> = model.into_iter().collect();
            prop_assert_eq!(sorted(smembers(&db, b"s").unwrap()), all);
        }
    }
}
