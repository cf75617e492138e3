//! String operations: GET, SET and its variants, counters, ranges.

use crate::long_double::{Invalid, LongDouble};
use crate::shard::Value;
use crate::{DbRef, Entry, KvError};
use bytes::Bytes;

/// When SET writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    /// Always.
    #[default]
    Always,
    /// Only if the key does not exist (`NX`).
    IfAbsent,
    /// Only if the key exists (`XX`).
    IfPresent,
}

/// What SET does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetExpiry {
    /// Clear it (plain SET).
    #[default]
    Clear,
    /// Keep the existing one (`KEEPTTL`).
    Keep,
    /// Set it to this time, ms since the Unix epoch (`EX`/`PX`/`EXAT`/`PXAT`, resolved).
    At(u64),
}

/// Options of [`set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetOptions {
    /// When to write.
    pub condition: SetCondition,
    /// What happens to the deadline.
    pub expiry: SetExpiry,
    /// Return the old value (`GET`); fails with WRONGTYPE if it is not a string.
    pub return_old: bool,
}

/// What [`set`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// Whether the value was written.
    pub written: bool,
    /// The previous string value, when asked for.
    pub old: Option<Bytes>,
}

/// The bytes of a string value.
pub fn to_bytes(value: &Value) -> Bytes {
    match value {
        Value::Int(i) => Bytes::copy_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::Small(s) => Bytes::copy_from_slice(s.as_bytes()),
        Value::Str(b) | Value::Raw(b) => b.clone(),
        // Callers check the type first; other types have no string form.
        _ => Bytes::new(),
    }
}

fn string_of(entry: Option<&Entry>) -> Result<Option<Bytes>, KvError> {
    match entry.map(|e| &e.value) {
        None => Ok(None),
        Some(v @ (Value::Int(_) | Value::Small(_) | Value::Str(_) | Value::Raw(_))) => {
            Ok(Some(to_bytes(v)))
        }
        Some(_) => Err(KvError::WrongType),
    }
}

/// GET without copying the value out: `f` gets the string's bytes (an integer as it
/// prints) while the key's shard is locked. `Ok(None)` when the key is missing.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn get_with<R>(
    db: &DbRef<'_>,
    key: &[u8],
    f: impl FnOnce(&[u8]) -> R,
) -> Result<Option<R>, KvError> {
    db.read(key, |e| match e.map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Int(i)) => Ok(Some(f(itoa::Buffer::new().format(*i).as_bytes()))),
        Some(v) => v.str_bytes().map(|b| Some(f(b))).ok_or(KvError::WrongType),
    })
}

/// GET.
///
/// # Errors
/// WRONGTYPE when the key holds another type.
pub fn get(db: &DbRef<'_>, key: &[u8]) -> Result<Option<Bytes>, KvError> {
    db.read(key, string_of)
}

/// SET with all its options.
///
/// # Errors
/// WRONGTYPE with `return_old` when the old value is not a string (nothing is written);
/// [`KvError::StringTooLong`] above the size limit.
pub fn set(
    db: &DbRef<'_>,
    key: &[u8],
    value: &[u8],
    options: SetOptions,
) -> Result<SetOutcome, KvError> {
    if value.len() > db.max_string_len() {
        return Err(KvError::StringTooLong);
    }
    db.write(key, |slot| {
        let existing = slot.get();
        let old = if options.return_old {
            string_of(existing.as_deref())?
        } else {
            None
        };
        let exists = existing.is_some();
        let keep_deadline = existing.and_then(|e| e.expire_at);
        let allowed = match options.condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => !exists,
            SetCondition::IfPresent => exists,
        };
        if !allowed {
            return Ok(SetOutcome {
                written: false,
                old,
            });
        }
        let expire_at = match options.expiry {
            SetExpiry::Clear => None,
            SetExpiry::Keep => keep_deadline,
            SetExpiry::At(t) => Some(t),
        };
        slot.put(Value::from_bytes(value), expire_at);
        Ok(SetOutcome { written: true, old })
    })
}

/// MGET: a missing key or a non-string is `None` (no error, as in Redis).
pub fn mget(db: &DbRef<'_>, keys: &[&[u8]]) -> Vec<Option<Bytes>> {
    keys.iter()
        .map(|k| db.read(k, |e| string_of(e).ok().flatten()))
        .collect()
}

/// MSET, or MSETNX with `only_if_none_exist`: atomic across all keys. Later pairs win for
/// repeated keys. Returns whether the values were written.
///
/// # Errors
/// [`KvError::StringTooLong`].
pub fn mset(
    db: &DbRef<'_>,
    pairs: &[(&[u8], &[u8])],
    only_if_none_exist: bool,
) -> Result<bool, KvError> {
    if pairs.iter().any(|(_, v)| v.len() > db.max_string_len()) {
        return Err(KvError::StringTooLong);
    }
    let keys: Vec<&[u8]> = pairs.iter().map(|(k, _)| *k).collect();
    Ok(db.write_many(&keys, |multi| {
        if only_if_none_exist && keys.iter().any(|k| multi.slot(k).get().is_some()) {
            return false;
        }
        for (k, v) in pairs {
            multi.slot(k).put(Value::from_bytes(v), None);
        }
        true
    }))
}

/// INCRBY (and INCR, DECR, DECRBY): the new value.
///
/// # Errors
/// WRONGTYPE; `NotInteger` when the value is not an integer; `Overflow`.
pub fn incr_by(db: &DbRef<'_>, key: &[u8], delta: i64) -> Result<i64, KvError> {
    db.write(key, |slot| {
        let (current, deadline) = match slot.get() {
            None => (0, None),
            Some(Entry {
                value: Value::Int(i),
                expire_at,
                ..
            }) => (*i, *expire_at),
            Some(Entry {
                value, expire_at, ..
            }) => match value.str_bytes() {
                Some(b) => (
                    crate::shard::parse_canonical_i64(b).ok_or(KvError::NotInteger)?,
                    *expire_at,
                ),
                None => return Err(KvError::WrongType),
            },
        };
        let next = current.checked_add(delta).ok_or(KvError::Overflow)?;
        if let Some(entry) = slot.get() {
            entry.value = Value::Int(next);
        } else {
            slot.put(Value::Int(next), deadline);
        }
        Ok(next)
    })
}

/// INCRBYFLOAT: the new value as Redis prints it, computed as Redis computes it (80-bit
/// long double, [`LongDouble`]).
///
/// `delta` is the increment's text, read after the key's type and value as Redis reads
/// them (so WRONGTYPE comes first); `inf` reads, and the sum is then refused.
///
/// # Errors
/// WRONGTYPE; `NotFloat`; `NanOrInfinity`.
pub fn incr_by_float(db: &DbRef<'_>, key: &[u8], delta: &[u8]) -> Result<Bytes, KvError> {
    let read = |text: &[u8]| match LongDouble::parse(text) {
        Ok(v) => Ok(v),
        Err(Invalid::Infinite) => Err(KvError::NanOrInfinity),
        Err(Invalid::NotANumber) => Err(KvError::NotFloat),
    };
    db.write(key, |slot| {
        let current = match slot.get() {
            None => Ok(LongDouble::ZERO),
            Some(Entry {
                value: Value::Int(i),
                ..
            }) => Ok(LongDouble::from_i64(*i)),
            Some(Entry { value, .. }) => match value.str_bytes() {
                Some(b) => read(b),
                None => return Err(KvError::WrongType),
            },
        };
        // Both are read before either is judged: an unreadable value or increment is
        // "not a valid float" even where the other is infinite.
        let delta = read(delta);
        let (current, delta) = match (current, delta) {
            (Err(KvError::NotFloat), _) | (_, Err(KvError::NotFloat)) => {
                return Err(KvError::NotFloat)
            }
            (Ok(c), Ok(d)) => (c, d),
            _ => return Err(KvError::NanOrInfinity),
        };
        let text = current
            .plus(delta)
            .map_err(|_| KvError::NanOrInfinity)?
            .to_text();
        // Stored as a plain string even when integral, as Redis does.
        let value = Value::string(text.as_bytes());
        if let Some(entry) = slot.get() {
            entry.value = value;
        } else {
            slot.put(value, None);
        }
        Ok(Bytes::from(text))
    })
}

/// APPEND: the new length.
///
/// # Errors
/// WRONGTYPE; `StringTooLong`.
pub fn append(db: &DbRef<'_>, key: &[u8], suffix: &[u8]) -> Result<usize, KvError> {
    let max = db.max_string_len();
    db.write(key, |slot| match slot.get() {
        None => {
            if suffix.len() > max {
                return Err(KvError::StringTooLong);
            }
            slot.put(Value::from_bytes(suffix), None);
            Ok(suffix.len())
        }
        Some(entry) => {
            if !crate::keys::is_string(&entry.value) {
                return Err(KvError::WrongType);
            }
            let current = to_bytes(&entry.value);
            let len = current.len() + suffix.len();
            if len > max {
                return Err(KvError::StringTooLong);
            }
            let mut joined = Vec::with_capacity(len);
            joined.extend_from_slice(&current);
            joined.extend_from_slice(suffix);
            entry.value = Value::Raw(Bytes::from(joined));
            Ok(len)
        }
    })
}

/// STRLEN.
///
/// # Errors
/// WRONGTYPE.
pub fn strlen(db: &DbRef<'_>, key: &[u8]) -> Result<usize, KvError> {
    db.read(key, |e| Ok(string_of(e)?.map_or(0, |b| b.len())))
}

/// GETDEL.
///
/// # Errors
/// WRONGTYPE (and the key is kept).
pub fn getdel(db: &DbRef<'_>, key: &[u8]) -> Result<Option<Bytes>, KvError> {
    db.write(key, |slot| {
        let value = string_of(slot.get().as_deref())?;
        if value.is_some() {
            slot.remove();
        }
        Ok(value)
    })
}

/// GETEX: the value, after changing its deadline (`None` leaves it, `Some(None)` clears).
///
/// # Errors
/// WRONGTYPE.
pub fn getex(
    db: &DbRef<'_>,
    key: &[u8],
    deadline: Option<Option<u64>>,
) -> Result<Option<Bytes>, KvError> {
    db.write(key, |slot| {
        let value = string_of(slot.get().as_deref())?;
        if let (Some(_), Some(d)) = (&value, deadline) {
            slot.set_expire(d);
        }
        Ok(value)
    })
}

/// GETRANGE with Redis's index rules (negative from the end, clamped, inclusive end).
///
/// # Errors
/// WRONGTYPE.
pub fn getrange(db: &DbRef<'_>, key: &[u8], start: i64, end: i64) -> Result<Bytes, KvError> {
    db.read(key, |e| {
        let Some(s) = string_of(e)? else {
            return Ok(Bytes::new());
        };
        let len = i64::try_from(s.len()).unwrap_or(i64::MAX);
        if start < 0 && end < 0 && start > end {
            return Ok(Bytes::new());
        }
        let mut start = if start < 0 { len + start } else { start };
        let mut end = if end < 0 { len + end } else { end };
        start = start.max(0);
        end = end.max(0);
        if end >= len {
            end = len - 1;
        }
        if len == 0 || start > end {
            return Ok(Bytes::new());
        }
        let (start, end) = (start as usize, end as usize);
        Ok(s.slice(start..=end))
    })
}

/// SETRANGE: the new length.
///
/// # Errors
/// WRONGTYPE; `StringTooLong` when `offset + value` exceeds the limit.
pub fn setrange(db: &DbRef<'_>, key: &[u8], offset: usize, value: &[u8]) -> Result<usize, KvError> {
    let max = db.max_string_len();
    db.write(key, |slot| {
        let current = string_of(slot.get().as_deref())?;
        if value.is_empty() {
            return Ok(current.map_or(0, |c| c.len()));
        }
        let needed = offset
            .checked_add(value.len())
            .ok_or(KvError::StringTooLong)?;
        if needed > max {
            return Err(KvError::StringTooLong);
        }
        let mut bytes = current.map(|c| c.to_vec()).unwrap_or_default();
        if bytes.len() < needed {
            bytes.resize(needed, 0);
        }
        bytes[offset..needed].copy_from_slice(value);
        let len = bytes.len();
        match slot.get() {
            Some(entry) => entry.value = Value::Raw(Bytes::from(bytes)),
            None => slot.put(Value::Raw(Bytes::from(bytes)), None),
        }
        Ok(len)
    })
}

/// What [`lcs`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LcsQuery {
    /// The longest common subsequence itself.
    Text,
    /// Only its length (`LEN`).
    Len,
    /// The matching runs (`IDX`), keeping those at least `min_len` bytes long.
    Matches {
        /// Shorter runs are left out of the list (but still count in the length).
        min_len: usize,
    },
}

/// One run of the common subsequence: `a[a.0..=a.1]` equals `b[b.0..=b.1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcsMatch {
    /// Inclusive range in the first string.
    pub a: (usize, usize),
    /// Inclusive range in the second string.
    pub b: (usize, usize),
}

impl LcsMatch {
    /// The run's length in bytes (never zero).
    pub fn run_len(&self) -> usize {
        self.a.1 - self.a.0 + 1
    }
}

/// The answer of [`lcs`], shaped by its [`LcsQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lcs {
    /// The subsequence.
    Text(Bytes),
    /// Its length.
    Len(usize),
    /// The runs, from the end of the strings towards their start (Redis's order), and the
    /// length of the whole subsequence.
    Matches {
        /// The runs kept by the query's minimum length.
        matches: Vec<LcsMatch>,
        /// The subsequence's length.
        len: usize,
    },
}

/// Why [`lcs`] refused to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LcsError {
    /// A string is too long for 32-bit table cells.
    #[error("ERR String too long for LCS")]
    StringTooLong,
    /// The table would be larger than the limit (Redis uses proto-max-bulk-len).
    #[error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")]
    TableTooLarge,
    /// The table size overflows or could not be allocated.
    #[error("ERR Insufficient memory, failed allocating transient memory for LCS")]
    OutOfMemory,
}

/// The two inputs of LCS, read atomically: a missing key is the empty string.
///
/// # Errors
/// WRONGTYPE when either key holds another type (LCS reports it with its own text).
pub fn lcs_values(db: &DbRef<'_>, key1: &[u8], key2: &[u8]) -> Result<(Bytes, Bytes), KvError> {
    db.write_many(&[key1, key2], |m| {
        let a = string_of(m.slot(key1).get().as_deref())?;
        let b = string_of(m.slot(key2).get().as_deref())?;
        Ok((a.unwrap_or_default(), b.unwrap_or_default()))
    })
}

/// LCS of `a` and `b` with Redis's dynamic programme and traceback, so ties resolve as
/// in Redis and the same subsequence and runs come out. The table has
/// `(a.len() + 1) * (b.len() + 1)` `u32` cells and is refused, before anything is
/// allocated, when it would exceed `max_table_bytes`: two large strings cannot make
/// the server allocate unbounded memory. Callers run this outside any shard lock.
///
/// # Errors
/// [`LcsError`], checked in Redis's order.
pub fn lcs(a: &[u8], b: &[u8], query: LcsQuery, max_table_bytes: usize) -> Result<Lcs, LcsError> {
    let cell_limit = (u32::MAX - 1) as usize;
    if a.len() >= cell_limit || b.len() >= cell_limit {
        return Err(LcsError::StringTooLong);
    }
    let width = b.len() + 1;
    let cells = (a.len() + 1)
        .checked_mul(width)
        .ok_or(LcsError::OutOfMemory)?;
    let bytes = cells
        .checked_mul(std::mem::size_of::<u32>())
        .ok_or(LcsError::OutOfMemory)?;
    if bytes > max_table_bytes {
        return Err(LcsError::TableTooLarge);
    }
    let mut table: Vec<u32> = Vec::new();
    table
        .try_reserve_exact(cells)
        .map_err(|_| LcsError::OutOfMemory)?;
    table.resize(cells, 0);
    // Row i holds the LCS lengths of a[..i] against every prefix of b; row 0 and
    // column 0 stay zero.
    for (i, &x) in a.iter().enumerate() {
        let (done, rest) = table.split_at_mut((i + 1) * width);
        let prev = &done[i * width..];
        let row = &mut rest[..width];
        for (j, &y) in b.iter().enumerate() {
            row[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(row[j])
            };
        }
    }
    let total = table[a.len() * width + b.len()] as usize;
    let min_len = match query {
        LcsQuery::Len => return Ok(Lcs::Len(total)),
        LcsQuery::Text => None,
        LcsQuery::Matches { min_len } => Some(min_len),
    };
    let mut text = if min_len.is_none() {
        vec![0; total]
    } else {
        Vec::new()
    };
    let mut matches = Vec::new();
    let mut remaining = total;
    let (mut i, mut j) = (a.len(), b.len());
    // The run followed backwards from its end; a match always follows the previous
    // one diagonally, so a run in progress is contiguous.
    let mut run: Option<LcsMatch> = None;
    while i > 0 && j > 0 {
        let ends = if a[i - 1] == b[j - 1] {
            if min_len.is_none() {
                text[remaining - 1] = a[i - 1];
            }
            let r = run.get_or_insert(LcsMatch {
                a: (i, i - 1),
                b: (j, j - 1),
            });
            r.a.0 -= 1;
            r.b.0 -= 1;
            // A run touching the start of either string is the last one.
            let at_start = r.a.0 == 0 || r.b.0 == 0;
            remaining -= 1;
            i -= 1;
            j -= 1;
            at_start
        } else {
            // On ties Redis steps back in the second string; so do we, for the same runs.
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            run.is_some()
        };
        if ends {
            if let (Some(r), Some(min)) = (run.take(), min_len) {
                if r.run_len() >= min {
                    matches.push(r);
                }
            }
        }
    }
    Ok(match min_len {
        None => Lcs::Text(Bytes::from(text)),
        Some(_) => Lcs::Matches {
            matches,
            len: total,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NO_LIMIT: usize = usize::MAX;

    fn text(a: &[u8], b: &[u8]) -> Vec<u8> {
        match lcs(a, b, LcsQuery::Text, NO_LIMIT) {
            Ok(Lcs::Text(t)) => t.to_vec(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn runs(a: &[u8], b: &[u8], min_len: usize) -> (Vec<LcsMatch>, usize) {
        match lcs(a, b, LcsQuery::Matches { min_len }, NO_LIMIT) {
            Ok(Lcs::Matches { matches, len }) => (matches, len),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn is_subsequence(s: &[u8], of: &[u8]) -> bool {
        let mut it = of.iter();
        s.iter().all(|c| it.any(|d| d == c))
    }

    #[test]
    fn redis_doc_example() {
        let (a, b) = (b"ohmytext".as_slice(), b"mynewtext".as_slice());
        assert_eq!(text(a, b), b"mytext");
        assert_eq!(
            lcs(a, b, LcsQuery::Len, NO_LIMIT),
            Ok(Lcs::Len(6)),
            "LEN agrees with the text"
        );
        let (matches, len) = runs(a, b, 0);
        assert_eq!(len, 6);
        assert_eq!(
            matches,
            vec![
                LcsMatch {
                    a: (4, 7),
                    b: (5, 8)
                },
                LcsMatch {
                    a: (2, 3),
                    b: (0, 1)
                },
            ]
        );
        assert_eq!(runs(a, b, 4).0.len(), 1);
    }

    #[test]
    fn table_guard_refuses_before_allocating() {
        let big = vec![b'x'; 1000];
        // 1001 * 1001 cells of 4 bytes.
        assert_eq!(
            lcs(&big, &big, LcsQuery::Len, 1001 * 1001 * 4 - 1),
            Err(LcsError::TableTooLarge)
        );
        assert_eq!(
            lcs(&big, &big, LcsQuery::Len, 1001 * 1001 * 4),
            Ok(Lcs::Len(1000))
        );
    }

    proptest! {
        #[test]
        fn answers_are_consistent(a in "[abc]{0,12}", b in "[abc]{0,12}") {
            let (a, b) = (a.as_bytes(), b.as_bytes());
            let t = text(a, b);
            prop_assert!(is_subsequence(&t, a) && is_subsequence(&t, b));
            prop_assert_eq!(lcs(a, b, LcsQuery::Len, NO_LIMIT), Ok(Lcs::Len(t.len())));
            let (matches, len) = runs(a, b, 0);
            prop_assert_eq!(len, t.len());
            // The runs, read from the start, spell the subsequence in both strings.
            let mut from_a = Vec::new();
            let mut from_b = Vec::new();
            for m in matches.iter().rev() {
                from_a.extend_from_slice(&a[m.a.0..=m.a.1]);
                from_b.extend_from_slice(&b[m.b.0..=m.b.1]);
            }
            prop_assert_eq!(&from_a, &t);
            prop_assert_eq!(&from_b, &t);
        }
    }
}
