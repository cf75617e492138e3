//! String operations: GET, SET and its variants, counters, ranges.

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
        Value::Str(b) | Value::Raw(b) => b.clone(),
        // Callers check the type first; other types have no string form.
        _ => Bytes::new(),
    }
}

fn string_of(entry: Option<&Entry>) -> Result<Option<Bytes>, KvError> {
    match entry.map(|e| &e.value) {
        None => Ok(None),
        Some(v @ (Value::Int(_) | Value::Str(_) | Value::Raw(_))) => Ok(Some(to_bytes(v))),
        Some(_) => Err(KvError::WrongType),
    }
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
            }) => (*i, *expire_at),
            Some(Entry {
                value: Value::Str(b) | Value::Raw(b),
                expire_at,
            }) => (
                crate::shard::parse_canonical_i64(b).ok_or(KvError::NotInteger)?,
                *expire_at,
            ),
            Some(_) => return Err(KvError::WrongType),
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

/// INCRBYFLOAT: the new value as Redis prints it.
///
/// # Errors
/// WRONGTYPE; `NotFloat`; `NanOrInfinity`.
pub fn incr_by_float(db: &DbRef<'_>, key: &[u8], delta: f64) -> Result<Bytes, KvError> {
    db.write(key, |slot| {
        let current = match slot.get() {
            None => 0.0,
            Some(Entry {
                value: Value::Int(i),
                ..
            }) => *i as f64,
            Some(Entry {
                value: Value::Str(b) | Value::Raw(b),
                ..
            }) => parse_float(b).ok_or(KvError::NotFloat)?,
            Some(_) => return Err(KvError::WrongType),
        };
        let next = current + delta;
        if !next.is_finite() {
            return Err(KvError::NanOrInfinity);
        }
        let text = format_long_double(next);
        // Stored as a plain string even when integral, as Redis does.
        let value = Value::Str(Bytes::from(text.clone()));
        if let Some(entry) = slot.get() {
            entry.value = value;
        } else {
            slot.put(value, None);
        }
        Ok(Bytes::from(text))
    })
}

/// Parses a float as Redis's `string2ld`: no spaces, no empty string, finite or `inf`.
pub fn parse_float(b: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(b).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let v: f64 = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => text.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

/// Formats like Redis's INCRBYFLOAT (`%.17Lf` with trailing zeros removed): positional
/// notation, never an exponent. Rust's `Display` for f64 is exactly that, with the
/// shortest digits that read back to the same value.
///
/// Known difference: Redis computes in 80-bit `long double`, so sums whose f64 result is
/// inexact (0.1 + 0.2) print as `0.3` there and `0.30000000000000004` here.
fn format_long_double(v: f64) -> String {
    format!("{v}")
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
