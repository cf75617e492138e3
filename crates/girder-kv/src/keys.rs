//! Generic key operations: existence, deletion, types, deadlines, renames, listing.

use crate::shard::Value;
use crate::{DbRef, Entry, Exclusive, KvError};
use bytes::Bytes;

/// DEL / UNLINK: how many of `keys` existed and were removed.
pub fn del(db: &DbRef<'_>, keys: &[&[u8]]) -> usize {
    keys.iter()
        .filter(|k| db.write(k, |slot| slot.remove().is_some()))
        .count()
}

/// EXISTS: how many of `keys` exist (a key given twice counts twice).
pub fn exists(db: &DbRef<'_>, keys: &[&[u8]]) -> usize {
    keys.iter().filter(|k| db.read(k, |e| e.is_some())).count()
}

/// TYPE: the type name, or `none`.
pub fn type_of(db: &DbRef<'_>, key: &[u8]) -> &'static str {
    db.read(key, |e| e.map_or("none", |e| e.value.type_name()))
}

/// OBJECT ENCODING: the encoding name, if the key exists.
pub fn encoding(db: &DbRef<'_>, key: &[u8]) -> Option<&'static str> {
    db.read(key, |e| e.map(|e| e.value.encoding()))
}

/// The condition flags of EXPIRE and friends (Redis 7). Several may be combined
/// (`XX GT`); the front end rejects the incompatible combinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpireCondition {
    /// Only if the key has no deadline.
    pub nx: bool,
    /// Only if the key has a deadline.
    pub xx: bool,
    /// Only if the new deadline is later (no deadline counts as infinite).
    pub gt: bool,
    /// Only if the new deadline is earlier (no deadline counts as infinite).
    pub lt: bool,
}

impl ExpireCondition {
    /// Whether a key whose deadline is `current` may get `deadline`.
    pub fn allows(self, current: Option<u64>, deadline: u64) -> bool {
        !((self.nx && current.is_some())
            || (self.xx && current.is_none())
            || (self.gt && current.is_none_or(|c| deadline <= c))
            || (self.lt && current.is_some_and(|c| deadline >= c)))
    }
}

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT with the deadline resolved to ms since the
/// epoch. A deadline not after now deletes the key. Returns whether the deadline was set
/// (or the key deleted).
pub fn expire_at(db: &DbRef<'_>, key: &[u8], deadline: u64, condition: ExpireCondition) -> bool {
    let now = db.now_ms();
    db.write(key, |slot| {
        let Some(entry) = slot.get() else {
            return false;
        };
        if !condition.allows(entry.expire_at, deadline) {
            return false;
        }
        if deadline <= now {
            slot.remove();
        } else {
            slot.set_expire(Some(deadline));
        }
        true
    })
}

/// What TTL knows about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// No such key (-2).
    Missing,
    /// The key has no deadline (-1).
    Persistent,
    /// Milliseconds left.
    Remaining(u64),
    /// The deadline, ms since the epoch (for EXPIRETIME).
    At(u64),
}

/// TTL / PTTL: milliseconds left.
pub fn ttl(db: &DbRef<'_>, key: &[u8]) -> Ttl {
    match expire_time(db, key) {
        Ttl::At(t) => Ttl::Remaining(t.saturating_sub(db.now_ms())),
        other => other,
    }
}

/// EXPIRETIME / PEXPIRETIME: the deadline.
pub fn expire_time(db: &DbRef<'_>, key: &[u8]) -> Ttl {
    db.read(key, |e| match e {
        None => Ttl::Missing,
        Some(Entry {
            expire_at: None, ..
        }) => Ttl::Persistent,
        Some(Entry {
            expire_at: Some(t), ..
        }) => Ttl::At(*t),
    })
}

/// PERSIST: whether a deadline was removed.
pub fn persist(db: &DbRef<'_>, key: &[u8]) -> bool {
    db.write(key, |slot| {
        let had = slot.get().is_some_and(|e| e.expire_at.is_some());
        if had {
            slot.set_expire(None);
        }
        had
    })
}

/// RENAME (or RENAMENX with `only_if_absent`): whether it renamed. The deadline moves
/// with the value.
///
/// # Errors
/// [`KvError::NoSuchKey`] when `from` does not exist.
pub fn rename(
    db: &DbRef<'_>,
    from: &[u8],
    to: &[u8],
    only_if_absent: bool,
) -> Result<bool, KvError> {
    db.write_many(&[from, to], |multi| {
        if multi.slot(from).get().is_none() {
            return Err(KvError::NoSuchKey);
        }
        if from == to {
            return Ok(!only_if_absent);
        }
        if only_if_absent && multi.slot(to).get().is_some() {
            return Ok(false);
        }
        let entry = multi.slot(from).remove().ok_or(KvError::NoSuchKey)?;
        multi.slot(to).put(entry.value, entry.expire_at);
        Ok(true)
    })
}

/// COPY within a database: whether it copied.
pub fn copy(db: &DbRef<'_>, from: &[u8], to: &[u8], replace: bool) -> bool {
    if from == to {
        return false;
    }
    db.write_many(&[from, to], |multi| {
        let Some(entry) = multi.slot(from).get().map(|e| e.clone()) else {
            return false;
        };
        if !replace && multi.slot(to).get().is_some() {
            return false;
        }
        multi.slot(to).put(entry.value, entry.expire_at);
        true
    })
}

impl Exclusive<'_> {
    /// MOVE: moves `key` from database `from` to `to` if it is absent there.
    ///
    /// # Errors
    /// [`KvError::DbIndexOutOfRange`].
    pub fn move_key(&self, key: &[u8], from: usize, to: usize) -> Result<bool, KvError> {
        let (src, dst) = (self.db(from)?, self.db(to)?);
        if from == to {
            return Ok(false);
        }
        if dst.read(key, |e| e.is_some()) {
            return Ok(false);
        }
        let Some(entry) = src.write(key, |slot| slot.remove()) else {
            return Ok(false);
        };
        dst.write(key, |slot| slot.put(entry.value, entry.expire_at));
        Ok(true)
    }

    /// COPY ... DB: copies across databases.
    ///
    /// # Errors
    /// [`KvError::DbIndexOutOfRange`].
    pub fn copy_across(
        &self,
        key: &[u8],
        from: usize,
        to_key: &[u8],
        to: usize,
        replace: bool,
    ) -> Result<bool, KvError> {
        let (src, dst) = (self.db(from)?, self.db(to)?);
        let Some(entry) = src.read(key, |e| e.cloned()) else {
            return Ok(false);
        };
        Ok(dst.write(to_key, |slot| {
            if !replace && slot.get().is_some() {
                return false;
            }
            slot.put(entry.value, entry.expire_at);
            true
        }))
    }
}

/// KEYS: every live key matching the glob `pattern`.
pub fn keys(db: &DbRef<'_>, pattern: &[u8]) -> Vec<Bytes> {
    let match_all = pattern == b"*";
    let mut out = Vec::new();
    db.for_each_shard(|_, shard| {
        out.extend(
            shard
                .live_entries()
                .filter(|(k, _)| match_all || glob_match(pattern, k, false))
                .map(|(k, _)| Bytes::copy_from_slice(k)),
        );
        true
    });
    out
}

/// DBSIZE: keys in the database (expired keys not yet reclaimed are not counted).
pub fn dbsize(db: &DbRef<'_>) -> usize {
    let mut n = 0;
    db.for_each_shard(|_, shard| {
        n += shard.live_entries().count();
        true
    });
    n
}

/// RANDOMKEY: a live key picked at random, if any.
pub fn random_key(db: &DbRef<'_>) -> Option<Bytes> {
    let start = fastrand::usize(..crate::SHARDS);
    let mut found = None;
    // Visit shards from a random start; pick a random live key of the first non-empty one.
    db.for_each_shard(|i, shard| {
        if i < start && found.is_none() {
            return true;
        }
        let live: Vec<&[u8]> = shard.live_entries().map(|(k, _)| k).collect();
        if !live.is_empty() {
            found = Some(Bytes::copy_from_slice(live[fastrand::usize(..live.len())]));
            return false;
        }
        true
    });
    found.or_else(|| {
        let mut first = None;
        db.for_each_shard(|_, shard| {
            first = shard
                .live_entries()
                .next()
                .map(|(k, _)| Bytes::copy_from_slice(k));
            first.is_none()
        });
        first
    })
}

/// Glob matching as Redis's `stringmatchlen`: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`.
/// Linear in practice: one backtrack point for the last `*`.
pub fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(pattern, p, text[t], nocase) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if eq(pattern[p + 1], text[t]) {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                c => {
                    if eq(c, text[t]) {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[start] == b'['`; returns whether it
/// matched and the index after the class.
fn class_match(pattern: &[u8], start: usize, c: u8, nocase: bool) -> Option<(bool, usize)> {
    let mut p = start + 1;
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    let c = fold(c);
    let mut matched = false;
    loop {
        match pattern.get(p) {
            // An unterminated class ends at the end of the pattern, as in Redis.
            None => break,
            Some(b']') => {
                p += 1;
                break;
            }
            Some(b'\\') if p + 1 < pattern.len() => {
                matched |= fold(pattern[p + 1]) == c;
                p += 2;
            }
            Some(&lo)
                if pattern.get(p + 1) == Some(&b'-')
                    && p + 2 < pattern.len()
                    && pattern[p + 2] != b']' =>
            {
                let hi = pattern[p + 2];
                let (lo, hi) = (fold(lo.min(hi)), fold(lo.max(hi)));
                matched |= (lo..=hi).contains(&c);
                p += 3;
            }
            Some(&b) => {
                matched |= fold(b) == c;
                p += 1;
            }
        }
    }
    Some((matched != negate, p))
}

/// Whether `value` is a string (for commands that only look at strings).
pub fn is_string(value: &Value) -> bool {
    matches!(value, Value::Int(_) | Value::Str(_) | Value::Raw(_))
}
