//! Hash operations (HSET, HGET, HINCRBY, HRANDFIELD, HSCAN, ...).
//!
//! Invariants:
//! - A hash stored in the keyspace is never empty: the operation that removes its last
//!   field removes the key.
//! - Like Redis 7.0, a hash starts compact (`listpack`: a vector in insertion order, at
//!   most [`MAX_SMALL_ENTRIES`] fields and values of at most [`MAX_SMALL_LEN`] bytes) and
//!   becomes a `Table` (`hashtable`) the first time it outgrows those limits; it never
//!   goes back. So `OBJECT ENCODING`, and the order of small hashes, are Redis's.
//! - A `Table` keeps its entries dense in a vector, so a random pick is O(1) and a scan
//!   cursor is an index (see `Table::scan`).

use crate::long_double::{Invalid, LongDouble};
use crate::shard::{Str, Value};
use crate::{DbRef, Entry, KvError, Slot};
use bytes::Bytes;

/// Most fields a compact hash holds (`hash-max-listpack-entries`).
///
/// 512: Redis 7.0's built-in default (`CONFIG GET hash-max-listpack-entries`).
pub const MAX_SMALL_ENTRIES: usize = 512;
/// Longest field or value of a compact hash (`hash-max-listpack-value`).
pub const MAX_SMALL_LEN: usize = 64;

/// Entries in a dense vector plus an index from key to position.
///
/// Keys are [`Str`]: a short key is inline in its entry, so a lookup reads the index and
/// the entry, not a third allocation. The index holds positions only, hashed by the key
/// they point at: a key is stored once (in `entries`), and an index bucket is 8 bytes. (Keyed by a clone of the key's
/// `Bytes`, each insert also allocated the clone's shared refcount, and each bucket was
/// 40 bytes.)
///
/// Removal swaps the last entry into the hole, so positions only ever move down: a scan
/// that walks positions from the top down sees every entry present for its whole
/// duration (an entry it has not visited can only move to a lower, still unvisited,
/// position).
#[derive(Debug, Clone)]
pub(crate) struct Table<V> {
    entries: Vec<(Str, V)>,
    index: hashbrown::HashTable<usize>,
    hasher: ahash::RandomState,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            index: hashbrown::HashTable::new(),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl<V> Table<V> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn position(&self, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(self.hasher.hash_one(key), |&i| entries[i].0[..] == *key)
            .copied()
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.position(key).is_some()
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.position(key).map(|i| &mut self.entries[i].1)
    }

    /// Inserts or replaces; true if the key is new.
    pub(crate) fn insert(&mut self, key: Str, value: V) -> bool {
        if let Some(i) = self.position(&key) {
            self.entries[i].1 = value;
            return false;
        }
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index
            .insert_unique(hasher.hash_one(&key[..]), entries.len(), |&i| {
                hasher.hash_one(&entries[i].0[..])
            });
        self.entries.push((key, value));
        true
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<V> {
        let i = self.position(key)?;
        Some(self.remove_at(i).1)
    }

    /// Removes the entry at position `i` (a random pick needs no second lookup).
    pub(crate) fn remove_at(&mut self, i: usize) -> (Str, V) {
        let hash = self.hasher.hash_one(self.entries[i].0.as_bytes());
        if let Ok(found) = self.index.find_entry(hash, |&j| j == i) {
            found.remove();
        }
        let removed = self.entries.swap_remove(i);
        if let Some((moved, _)) = self.entries.get(i) {
            // The last entry moved from position `len` down to `i`.
            let from = self.entries.len();
            *self
                .index
                .find_mut(self.hasher.hash_one(moved.as_bytes()), |&j| j == from)
                .expect("indexed") = i;
        }
        // Give memory back once mostly empty (amortized: at most one shrink per halving).
        if self.entries.capacity() > 64 && self.entries.len() * 4 < self.entries.capacity() {
            self.entries.shrink_to(self.entries.len() * 2);
            let (entries, hasher) = (&self.entries, &self.hasher);
            self.index.shrink_to(entries.len() * 2, |&i| {
                hasher.hash_one(entries[i].0.as_bytes())
            });
        }
        removed
    }

    pub(crate) fn at(&self, i: usize) -> &(Str, V) {
        &self.entries[i]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(Str, V)> {
        self.entries.iter()
    }

    /// Visits up to `count` entries below position `cursor` (0: start from the top), top
    /// down; returns the next cursor, 0 when done.
    pub(crate) fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&Str, &V)) -> u64 {
        let len = self.entries.len();
        let top = match usize::try_from(cursor) {
            Ok(0) | Err(_) => len,
            Ok(c) => c.min(len),
        };
        let bottom = top.saturating_sub(count.max(1));
        for (k, v) in self.entries[bottom..top].iter().rev() {
            f(k, v);
        }
        bottom as u64
    }
}

/// `k` distinct positions in `0..n` (`k < n`), uniformly chosen (Floyd's algorithm: O(k)).
pub(crate) fn sample_distinct(n: usize, k: usize) -> Vec<usize> {
    let mut chosen =
        std::collections::HashSet::with_capacity_and_hasher(k, ahash::RandomState::default());
    let mut out = Vec::with_capacity(k);
    for j in n - k..n {
        let t = fastrand::usize(..=j);
        let pick = if chosen.contains(&t) { j } else { t };
        chosen.insert(pick);
        out.push(pick);
    }
    out
}

/// A hash: field → value.
#[derive(Debug, Clone)]
pub struct HashValue {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// `listpack`: insertion order, linear lookups over at most 512 short entries.
    Small(Vec<(Bytes, Bytes)>),
    /// `hashtable`.
    Large(Table<Str>),
}

impl Default for HashValue {
    fn default() -> Self {
        Self {
            repr: Repr::Small(Vec::new()),
        }
    }
}

impl PartialEq for HashValue {
    /// Same fields with the same values, whatever the representation or order.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.pairs().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl HashValue {
    /// Redis's name for the representation (`OBJECT ENCODING`).
    pub(crate) fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Small(_) => "listpack",
            Repr::Large(_) => "hashtable",
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(v) => v.len(),
            Repr::Large(t) => t.len(),
        }
    }

    /// Whether there are no fields (never true of a stored hash).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Small(v) => v.iter().find(|(k, _)| k[..] == *field).map(|(_, v)| &v[..]),
            Repr::Large(t) => t.get(field).map(Str::as_bytes),
        }
    }

    /// Field/value pairs, in insertion order for compact hashes.
    pub fn pairs(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match &self.repr {
            Repr::Small(v) => Box::new(v.iter().map(|(k, v)| (&k[..], &v[..]))),
            Repr::Large(t) => Box::new(t.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()))),
        }
    }

    /// Sets `field` (copied); true if it is new.
    pub fn set(&mut self, field: &[u8], value: Bytes) -> bool {
        if let Repr::Small(v) = &mut self.repr {
            if field.len() > MAX_SMALL_LEN || value.len() > MAX_SMALL_LEN {
                self.convert();
            } else if let Some(slot) = v.iter_mut().find(|(k, _)| k[..] == *field) {
                slot.1 = value;
                return false;
            } else {
                v.push((Bytes::copy_from_slice(field), value));
                if v.len() > MAX_SMALL_ENTRIES {
                    self.convert();
                }
                return true;
            }
        }
        match &mut self.repr {
            Repr::Large(t) => {
                if let Some(old) = t.get_mut(field) {
                    *old = Str::from_bytes(value);
                    false
                } else {
                    t.insert(Str::copy(field), Str::from_bytes(value))
                }
            }
            Repr::Small(_) => unreachable!("converted above"),
        }
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Small(v) => match v.iter().position(|(k, _)| k[..] == *field) {
                // Keeps the order, as a listpack deletion does.
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            Repr::Large(t) => t.remove(field).is_some(),
        }
    }

    fn convert(&mut self) {
        if let Repr::Small(v) = &mut self.repr {
            let mut t = Table::default();
            for (k, val) in v.drain(..) {
                t.insert(Str::from_bytes(k), Str::from_bytes(val));
            }
            self.repr = Repr::Large(t);
        }
    }

    /// The field and value at position `i`, borrowed.
    fn pair_at(&self, i: usize) -> (&[u8], &[u8]) {
        match &self.repr {
            Repr::Small(v) => (&v[i].0, &v[i].1),
            Repr::Large(t) => {
                let (k, v) = t.at(i);
                (k.as_bytes(), v.as_bytes())
            }
        }
    }

    fn at(&self, i: usize) -> (Bytes, Bytes) {
        match &self.repr {
            Repr::Small(v) => (v[i].0.clone(), v[i].1.clone()),
            Repr::Large(t) => {
                let (k, v) = t.at(i);
                (k.to_bytes(), v.to_bytes())
            }
        }
    }
}

fn hash_of(entry: Option<&Entry>) -> Result<Option<&HashValue>, KvError> {
    match entry.map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(KvError::WrongType),
    }
}

/// Runs `f` on the hash at `slot`, created empty if missing (and stored only if `f`
/// leaves it non-empty).
fn with_hash_mut<R>(
    slot: &mut Slot<'_>,
    f: impl FnOnce(&mut HashValue) -> Result<R, KvError>,
) -> Result<R, KvError> {
    match slot.get() {
        Some(Entry {
            value: Value::Hash(h),
            ..
        }) => f(h),
        Some(_) => Err(KvError::WrongType),
        None => {
            let mut h = HashValue::default();
            let r = f(&mut h)?;
            if !h.is_empty() {
                slot.put(Value::Hash(Box::new(h)), None);
            }
            Ok(r)
        }
    }
}

/// HSET / HMSET: how many fields were created. Later pairs win for repeated fields.
///
/// # Errors
/// WRONGTYPE.
pub fn hset(db: &DbRef<'_>, key: &[u8], pairs: &[(&[u8], &[u8])]) -> Result<usize, KvError> {
    db.write(key, |slot| {
        with_hash_mut(slot, |h| {
            Ok(pairs
                .iter()
                .filter(|(f, v)| h.set(f, Bytes::copy_from_slice(v)))
                .count())
        })
    })
}

/// HSETNX: whether the field was set.
///
/// # Errors
/// WRONGTYPE.
pub fn hsetnx(db: &DbRef<'_>, key: &[u8], field: &[u8], value: &[u8]) -> Result<bool, KvError> {
    db.write(key, |slot| {
        with_hash_mut(slot, |h| {
            if h.get(field).is_some() {
                return Ok(false);
            }
            Ok(h.set(field, Bytes::copy_from_slice(value)))
        })
    })
}

/// HGET.
///
/// # Errors
/// WRONGTYPE.
pub fn hget(db: &DbRef<'_>, key: &[u8], field: &[u8]) -> Result<Option<Bytes>, KvError> {
    db.read(key, |e| {
        Ok(hash_of(e)?.and_then(|h| h.get(field).map(Bytes::copy_from_slice)))
    })
}

/// HMGET: one value (or `None`) per field.
///
/// # Errors
/// WRONGTYPE.
pub fn hmget(db: &DbRef<'_>, key: &[u8], fields: &[&[u8]]) -> Result<Vec<Option<Bytes>>, KvError> {
    db.read(key, |e| {
        let h = hash_of(e)?;
        Ok(fields
            .iter()
            .map(|f| h.and_then(|h| h.get(f).map(Bytes::copy_from_slice)))
            .collect())
    })
}

/// HDEL: how many fields were removed. Removing the last field removes the key.
///
/// # Errors
/// WRONGTYPE.
pub fn hdel(db: &DbRef<'_>, key: &[u8], fields: &[&[u8]]) -> Result<usize, KvError> {
    db.write(key, |slot| {
        let (removed, empty) = match slot.get() {
            None => return Ok(0),
            Some(Entry {
                value: Value::Hash(h),
                ..
            }) => {
                let n = fields.iter().filter(|f| h.remove(f)).count();
                (n, h.is_empty())
            }
            Some(_) => return Err(KvError::WrongType),
        };
        if empty {
            slot.remove();
        }
        Ok(removed)
    })
}

/// HEXISTS.
///
/// # Errors
/// WRONGTYPE.
pub fn hexists(db: &DbRef<'_>, key: &[u8], field: &[u8]) -> Result<bool, KvError> {
    db.read(key, |e| {
        Ok(hash_of(e)?.is_some_and(|h| h.get(field).is_some()))
    })
}

/// HLEN.
///
/// # Errors
/// WRONGTYPE.
pub fn hlen(db: &DbRef<'_>, key: &[u8]) -> Result<usize, KvError> {
    db.read(key, |e| Ok(hash_of(e)?.map_or(0, HashValue::len)))
}

/// HSTRLEN: the length of the field's value (0 if missing).
///
/// # Errors
/// WRONGTYPE.
pub fn hstrlen(db: &DbRef<'_>, key: &[u8], field: &[u8]) -> Result<usize, KvError> {
    db.read(key, |e| {
        Ok(hash_of(e)?
            .and_then(|h| h.get(field))
            .map_or(0, <[u8]>::len))
    })
}

/// HGETALL: every field/value pair.
///
/// # Errors
/// WRONGTYPE.
pub fn hgetall(db: &DbRef<'_>, key: &[u8]) -> Result<Vec<(Bytes, Bytes)>, KvError> {
    db.read(key, |e| {
        Ok(hash_of(e)?.map_or_else(Vec::new, |h| {
            h.pairs()
                .map(|(k, v)| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))
                .collect()
        }))
    })
}

/// HKEYS.
///
/// # Errors
/// WRONGTYPE.
pub fn hkeys(db: &DbRef<'_>, key: &[u8]) -> Result<Vec<Bytes>, KvError> {
    db.read(key, |e| {
        Ok(hash_of(e)?.map_or_else(Vec::new, |h| {
            h.pairs().map(|(k, _)| Bytes::copy_from_slice(k)).collect()
        }))
    })
}

/// HVALS.
///
/// # Errors
/// WRONGTYPE.
pub fn hvals(db: &DbRef<'_>, key: &[u8]) -> Result<Vec<Bytes>, KvError> {
    db.read(key, |e| {
        Ok(hash_of(e)?.map_or_else(Vec::new, |h| {
            h.pairs().map(|(_, v)| Bytes::copy_from_slice(v)).collect()
        }))
    })
}

/// HINCRBY: the new value. A missing field counts as 0.
///
/// # Errors
/// WRONGTYPE; [`KvError::HashValueNotInteger`]; [`KvError::Overflow`].
pub fn hincrby(db: &DbRef<'_>, key: &[u8], field: &[u8], delta: i64) -> Result<i64, KvError> {
    db.write(key, |slot| {
        with_hash_mut(slot, |h| {
            let current = match h.get(field) {
                None => 0,
                Some(v) => {
                    crate::shard::parse_canonical_i64(v).ok_or(KvError::HashValueNotInteger)?
                }
            };
            let next = current.checked_add(delta).ok_or(KvError::Overflow)?;
            let text = itoa::Buffer::new().format(next).as_bytes().to_vec();
            h.set(field, Bytes::from(text));
            Ok(next)
        })
    })
}

/// HINCRBYFLOAT: the new value as Redis prints it, computed as INCRBYFLOAT computes it
/// (80-bit long double). A missing field counts as 0.
///
/// # Errors
/// WRONGTYPE; [`KvError::HashValueNotFloat`]; [`KvError::NanOrInfinity`].
pub fn hincrbyfloat(
    db: &DbRef<'_>,
    key: &[u8],
    field: &[u8],
    delta: LongDouble,
) -> Result<Bytes, KvError> {
    db.write(key, |slot| {
        with_hash_mut(slot, |h| {
            let current = match h.get(field) {
                None => LongDouble::ZERO,
                // A stored `inf` reads; the sum is then refused, as Redis refuses it.
                Some(v) => LongDouble::parse(v).map_err(|e| match e {
                    Invalid::Infinite => KvError::NanOrInfinity,
                    Invalid::NotANumber => KvError::HashValueNotFloat,
                })?,
            };
            let next = current.plus(delta).map_err(|_| KvError::NanOrInfinity)?;
            let text = Bytes::from(next.to_text());
            h.set(field, text.clone());
            Ok(text)
        })
    })
}

/// HRANDFIELD without a count: a random field and its value.
///
/// # Errors
/// WRONGTYPE.
pub fn hrandfield(db: &DbRef<'_>, key: &[u8]) -> Result<Option<(Bytes, Bytes)>, KvError> {
    db.read(key, |e| {
        Ok(hash_of(e)?.map(|h| h.at(fastrand::usize(..h.len()))))
    })
}

/// HRANDFIELD with a count: `count > 0` distinct fields (all of them if fewer), or
/// `-count` fields picked independently (repeats possible), each with its value.
///
/// # Errors
/// WRONGTYPE.
pub fn hrandfield_count(
    db: &DbRef<'_>,
    key: &[u8],
    count: i64,
) -> Result<Vec<(Bytes, Bytes)>, KvError> {
    let want = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    if count < 0 {
        let mut picks = Vec::new();
        hrandfield_repeating(db, key, want, &mut picks)?;
        return Ok(picks);
    }
    db.read(key, |e| {
        let Some(h) = hash_of(e)? else {
            return Ok(Vec::new());
        };
        let pair = |i: usize| h.at(i);
        let n = h.len();
        Ok(if want >= n {
            (0..n).map(pair).collect()
        } else {
            sample_distinct(n, want).into_iter().map(pair).collect()
        })
    })
}

/// HRANDFIELD with a negative count: `picks` independent draws (repeats possible), each
/// field and its value handed to `out` under the key's lock.
///
/// # Errors
/// WRONGTYPE.
pub fn hrandfield_repeating(
    db: &DbRef<'_>,
    key: &[u8],
    picks: usize,
    out: &mut dyn crate::Picks<[u8]>,
) -> Result<(), KvError> {
    db.read(key, |e| {
        let Some(h) = hash_of(e)? else {
            out.count(0);
            return Ok(());
        };
        out.count(picks);
        for _ in 0..picks {
            let (field, value) = h.pair_at(fastrand::usize(..h.len()));
            out.pick(field, value);
        }
        Ok(())
    })
}

/// Options of HSCAN and SSCAN.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions<'a> {
    /// Only elements matching this glob (`MATCH`).
    pub pattern: Option<&'a [u8]>,
    /// How many elements to visit (`COUNT`, default 10).
    pub count: usize,
}

/// HSCAN: the next cursor and the field/value pairs of this step. A compact hash is
/// returned whole, with cursor 0, as Redis does.
///
/// # Errors
/// WRONGTYPE.
pub fn hscan(
    db: &DbRef<'_>,
    key: &[u8],
    cursor: u64,
    options: ScanOptions<'_>,
) -> Result<(u64, Vec<(Bytes, Bytes)>), KvError> {
    db.read(key, |e| {
        let Some(h) = hash_of(e)? else {
            return Ok((0, Vec::new()));
        };
        let keep = |k: &[u8]| {
            options
                .pattern
                .is_none_or(|p| crate::keys::glob_match(p, k, false))
        };
        let mut out = Vec::new();
        let next = match &h.repr {
            Repr::Small(v) => {
                out.extend(
                    v.iter()
                        .filter(|(k, _)| keep(k))
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
                0
            }
            Repr::Large(t) => t.scan(cursor, options.count, |k, v| {
                if keep(k) {
                    out.push((k.to_bytes(), v.to_bytes()));
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
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    fn keyspace() -> Keyspace {
        Keyspace::new(Arc::new(ManualClock::new(1_000)), 1 << 20)
    }

    #[test]
    fn grows_into_a_table_and_stays_one() {
        let ks = keyspace();
        let db = ks.db(0).unwrap();
        let fields: Vec<String> = (0..=MAX_SMALL_ENTRIES).map(|i| format!("f{i}")).collect();
        for f in &fields[..MAX_SMALL_ENTRIES] {
            hset(&db, b"h", &[(f.as_bytes(), b"v")]).unwrap();
        }
        assert_eq!(crate::keys::encoding(&db, b"h"), Some("listpack"));
        hset(&db, b"h", &[(fields[MAX_SMALL_ENTRIES].as_bytes(), b"v")]).unwrap();
        assert_eq!(crate::keys::encoding(&db, b"h"), Some("hashtable"));
        hdel(&db, b"h", &[b"f0", b"f1"]).unwrap();
        assert_eq!(crate::keys::encoding(&db, b"h"), Some("hashtable"));
        assert_eq!(hlen(&db, b"h").unwrap(), MAX_SMALL_ENTRIES - 1);

        hset(&db, b"long", &[(b"f", &[b'x'; MAX_SMALL_LEN + 1])]).unwrap();
        assert_eq!(crate::keys::encoding(&db, b"long"), Some("hashtable"));
    }

    #[test]
    fn small_hashes_keep_insertion_order() {
        let ks = keyspace();
        let db = ks.db(0).unwrap();
        hset(&db, b"h", &[(b"c", b"1"), (b"a", b"2"), (b"b", b"3")]).unwrap();
        hdel(&db, b"h", &[b"a"]).unwrap();
        hset(&db, b"h", &[(b"a", b"4"), (b"c", b"5")]).unwrap();
        assert_eq!(hkeys(&db, b"h").unwrap(), vec!["c", "b", "a"]);
        assert_eq!(hvals(&db, b"h").unwrap(), vec!["5", "3", "4"]);
    }

    #[test]
    fn counters_and_errors() {
        let ks = keyspace();
        let db = ks.db(0).unwrap();
        assert_eq!(hincrby(&db, b"h", b"n", 5).unwrap(), 5);
        assert_eq!(hincrby(&db, b"h", b"n", i64::MAX), Err(KvError::Overflow));
        hset(&db, b"h", &[(b"s", b"007")]).unwrap();
        assert_eq!(
            hincrby(&db, b"h", b"s", 1),
            Err(KvError::HashValueNotInteger)
        );
        let ld = |t: &str| LongDouble::parse(t.as_bytes()).unwrap();
        assert_eq!(hincrbyfloat(&db, b"h", b"s", ld("0.5")).unwrap(), "7.5");
        assert_eq!(hincrbyfloat(&db, b"h", b"n", ld("-5")).unwrap(), "0");
        hset(&db, b"h", &[(b"t", b"x")]).unwrap();
        assert_eq!(
            hincrbyfloat(&db, b"h", b"t", ld("1")),
            Err(KvError::HashValueNotFloat)
        );
        crate::strings::set(&db, b"str", b"v", Default::default()).unwrap();
        assert_eq!(hset(&db, b"str", &[(b"a", b"b")]), Err(KvError::WrongType));
        assert_eq!(hincrby(&db, b"missing", b"f", 0).unwrap(), 0);
        assert_eq!(hlen(&db, b"missing").unwrap(), 1, "HINCRBY 0 creates");
    }

    #[test]
    fn float_format_follows_redis() {
        let text = |t: &str| LongDouble::parse(t.as_bytes()).unwrap().to_text();
        assert_eq!(text("2.5"), "2.5");
        assert_eq!(text("-0.0"), "0");
        assert_eq!(text("1e-20"), "0");
        assert_eq!(text("-1e-20"), "0");
        assert_eq!(text("1e-7"), "0.0000001");
        assert_eq!(text("3.0"), "3");
        assert_eq!(text("12345678.125"), "12345678.125");
    }

    #[test]
    fn random_counts() {
        let ks = keyspace();
        let db = ks.db(0).unwrap();
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..300)
            .map(|i| (format!("f{i}").into_bytes(), format!("{i}").into_bytes()))
            .collect();
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(a, b)| (&a[..], &b[..])).collect();
        hset(&db, b"h", &refs).unwrap();
        for count in [1, 2, 150, 299, 300, 1000] {
            let got = hrandfield_count(&db, b"h", count).unwrap();
            let distinct: BTreeSet<_> = got.iter().map(|(k, _)| k.clone()).collect();
            assert_eq!(got.len(), (count as usize).min(300));
            assert_eq!(distinct.len(), got.len(), "distinct for positive counts");
            for (k, v) in &got {
                assert_eq!(hget(&db, b"h", k).unwrap().as_ref(), Some(v));
            }
        }
        assert_eq!(hrandfield_count(&db, b"h", -1000).unwrap().len(), 1000);
        assert_eq!(hrandfield_count(&db, b"none", -3).unwrap().len(), 0);
    }

    #[test]
    fn scan_returns_every_field_present_throughout() {
        let ks = keyspace();
        let db = ks.db(0).unwrap();
        for i in 0..600 {
            hset(&db, b"h", &[(format!("f{i}").as_bytes(), b"v")]).unwrap();
        }
        assert_eq!(crate::keys::encoding(&db, b"h"), Some("hashtable"));
        let options = ScanOptions {
            pattern: None,
            count: 7,
        };
        let mut seen = BTreeSet::new();
        let (mut cursor, mut step) = (0, 0);
        loop {
            let (next, items) = hscan(&db, b"h", cursor, options).unwrap();
            seen.extend(items.into_iter().map(|(k, _)| k));
            // Churn while scanning: delete low and high fields, add new ones.
            hdel(&db, b"h", &[format!("f{step}").as_bytes()]).unwrap();
            hdel(&db, b"h", &[format!("f{}", 599 - step).as_bytes()]).unwrap();
            hset(&db, b"h", &[(format!("new{step}").as_bytes(), b"v")]).unwrap();
            step += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for i in step..600 - step {
            assert!(seen.contains(format!("f{i}").as_bytes()), "f{i} missed");
        }
    }

    proptest! {
        /// The table (positions indexed by the keys they point at, swap-removal, shrink)
        /// against a map: same lookups after any inserts and removes, and every
        /// position reachable through its key.
        #[test]
        fn table_matches_a_map(ops in proptest::collection::vec((0u8..3, 0u16..300), 1..2000)) {
            let mut table = Table::default();
            let mut model = std::collections::HashMap::new();
            for (n, (op, k)) in ops.into_iter().enumerate() {
                // Long keys too: they are held on the heap, short ones inline.
                let key = Bytes::from(format!("f{k}{}", "-".repeat(usize::from(k % 3) * 20)));
                match op {
                    0 => prop_assert_eq!(
                        table.insert(Str::from_bytes(key.clone()), n),
                        model.insert(key, n).is_none()
                    ),
                    1 => prop_assert_eq!(table.remove(&key), model.remove(&key)),
                    _ if table.len() > 0 => {
                        let (k, v) = table.remove_at(usize::from(k) % table.len());
                        prop_assert_eq!(model.remove(k.as_bytes()), Some(v));
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(table.len(), model.len());
            for (k, v) in &model {
                prop_assert_eq!(table.get(k), Some(v));
            }
            for i in 0..table.len() {
                let (k, v) = table.at(i);
                prop_assert_eq!(model.get(k.as_bytes()), Some(v));
                prop_assert!(table.contains(k));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// HSET/HDEL against a BTreeMap model, across the compact/table boundary.
        #[test]
        fn matches_a_map_model(ops in prop::collection::vec((any::<bool>(), 0u8..160, 0u8..3), 1..400)) {
            let ks = keyspace();
            let db = ks.db(0).unwrap();
            let mut model = BTreeMap::new();
            for (insert, f, v) in ops {
                let field = format!("f{f}").into_bytes();
                if insert {
                    let value = vec![b'v'; usize::from(v) * 40];
                    let created = hset(&db, b"h", &[(&field, &value)]).unwrap();
                    prop_assert_eq!(created == 1, model.insert(field, value).is_none());
                } else {
                    let removed = hdel(&db, b"h", &[&field]).unwrap();
                    prop_assert_eq!(removed == 1, model.remove(&field).is_some());
                }
                prop_assert_eq!(hlen(&db, b"h").unwrap(), model.len());
                prop_assert_eq!(crate::keys::exists(&db, &[b"h"]), usize::from(!model.is_empty()));
            }
            let mut all = hgetall(&db, b"h").unwrap();
            all.sort();
            let expected: Vec<(Bytes, Bytes)> = model
                .into_iter()
                .map(|(k, v)| (Bytes::from(k), Bytes::from(v)))
                .collect();
            prop_assert_eq!(all, expected);
        }
    }
}
