//! Generic key operations: existence, deletion, types, deadlines, renames, listing.

use crate::shard::Value;
use crate::{DbRef, Entry, Exclusive, KvError};
use bytes::Bytes;

/// DEL / UNLINK: how many of `keys` existed and were removed. One write call with every
/// key's shard locked: atomic, so journaled as one command (a crash never leaves half of
/// a DEL), as Redis's AOF records it.
pub fn del(db: &DbRef<'_>, keys: &[&[u8]]) -> usize {
    if let [key] = keys {
        return usize::from(db.write(key, |slot| slot.remove().is_some()));
    }
    db.write_many(keys, |multi| {
        keys.iter()
            .filter(|k| multi.slot(k).remove().is_some())
            .count()
    })
}

/// EXISTS: how many of `keys` exist (a key given twice counts twice). Like TYPE, TTL
/// and OBJECT, it looks without using the keys (their LRU/LFU stamps stay).
pub fn exists(db: &DbRef<'_>, keys: &[&[u8]]) -> usize {
    keys.iter().filter(|k| db.peek(k, |e| e.is_some())).count()
}

/// TOUCH: how many of `keys` exist; each one is used (its LRU time or LFU counter
/// moves on).
pub fn touch(db: &DbRef<'_>, keys: &[&[u8]]) -> usize {
    keys.iter().filter(|k| db.read(k, |e| e.is_some())).count()
}

/// TYPE: the type name, or `none`.
pub fn type_of(db: &DbRef<'_>, key: &[u8]) -> &'static str {
    db.peek(key, |e| e.map_or("none", |e| e.value.type_name()))
}

/// OBJECT ENCODING: the encoding name, if the key exists.
pub fn encoding(db: &DbRef<'_>, key: &[u8]) -> Option<&'static str> {
    db.peek(key, |e| e.map(|e| e.value.encoding()))
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
    db.peek(key, |e| match e {
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

/// Bits of a SCAN cursor that name the shard (the low bits, as in [`crate::SHARDS`]).
pub(crate) const SHARD_BITS: u32 = crate::SHARDS.trailing_zeros();
/// Size of a shard's hash space: the high `64 - SHARD_BITS` bits of a key's hash.
pub(crate) const HASH_SPACE: u64 = 1 << (64 - SHARD_BITS);
/// Smallest slice of a shard's hash space one SCAN step covers: a shard is done in at
/// most 64 passes, whatever COUNT is.
const MIN_SPAN: u64 = HASH_SPACE / 64;

/// SCAN: one step of an iteration over the database; returns the next cursor (0 when the
/// iteration is over) and the keys of this step that match `pattern` (a glob) and
/// `type_name` (compared ignoring case with [`Value::type_name`]). Expired keys are skipped.
///
/// The cursor is `(threshold << SHARD_BITS) | shard`: a key's hash is fixed for the life of
/// the keyspace, its low bits pick its shard and its high bits order it within the shard.
/// A step takes the keys of the cursor's shard whose high bits fall in
/// `[threshold, threshold + span)`, the span sized so about `count` keys fall in it (counted
/// before filtering, as Redis counts) but never less than 1/64 of the shard's hash space.
/// When that reaches the end of the shard, the step goes on into the next shards while it
/// has visited fewer than `count` keys. So a key present for a whole iteration is returned
/// exactly once; a key added or removed meanwhile may or may not be.
///
/// Complexity: each step is O(keys in the shards it visits), one pass over each; a whole
/// iteration is at most 64 passes over each shard, O(keys) overall whatever `count` is.
pub fn scan(
    db: &DbRef<'_>,
    cursor: u64,
    pattern: Option<&[u8]>,
    type_name: Option<&[u8]>,
    count: usize,
) -> (u64, Vec<Bytes>) {
    let count = count.max(1);
    let mut shard = usize::try_from(cursor & ((1 << SHARD_BITS) - 1)).unwrap_or(0);
    let mut from = cursor >> SHARD_BITS;
    let mut visited = 0;
    let mut out = Vec::new();
    loop {
        let to = db.with_shard(shard, |view| {
            let to = from.saturating_add(scan_span(count - visited, view.len()));
            let to = to.min(HASH_SPACE);
            for (key, entry) in view.live_entries() {
                let position = db.key_hash(key) >> SHARD_BITS;
                if !(from..to).contains(&position) {
                    continue;
                }
                visited += 1;
                let wanted = pattern.is_none_or(|p| glob_match(p, key, false))
                    && type_name
                        .is_none_or(|t| t.eq_ignore_ascii_case(entry.value.type_name().as_bytes()));
                if wanted {
                    out.push(Bytes::copy_from_slice(key));
                }
            }
            to
        });
        if to < HASH_SPACE {
            return ((to << SHARD_BITS) | shard as u64, out);
        }
        shard += 1;
        if shard == crate::SHARDS {
            return (0, out);
        }
        from = 0;
        if visited >= count {
            // The next shard from its start: a nonzero cursor, as `shard` is not 0.
            return (shard as u64, out);
        }
    }
}

/// The slice of a shard's hash space in which about `want` of its `keys` fall, assuming
/// hashes spread evenly: at least [`MIN_SPAN`], at most the whole space.
fn scan_span(want: usize, keys: usize) -> u64 {
    if keys == 0 {
        return HASH_SPACE;
    }
    let span = u128::from(HASH_SPACE) * want as u128 / keys as u128;
    u64::try_from(span.clamp(u128::from(MIN_SPAN), u128::from(HASH_SPACE))).unwrap_or(HASH_SPACE)
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
            // A range even when its end is `]` (`[a-]` is the range `]`..`a`, and the
            // class then runs to the end of the pattern), as in Redis.
            Some(&lo) if pattern.get(p + 1) == Some(&b'-') && p + 2 < pattern.len() => {
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
    matches!(
        value,
        Value::Int(_) | Value::Small(_) | Value::Str(_) | Value::Raw(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keyspace, ManualClock};
    use std::collections::HashSet;
    use std::sync::Arc;

    const T0: u64 = 1_800_000_000_000;

    fn keyspace() -> (Arc<ManualClock>, Keyspace) {
        let clock = Arc::new(ManualClock::new(T0));
        (clock.clone(), Keyspace::new(clock, 512 * 1024 * 1024))
    }

    fn put(db: &DbRef<'_>, key: &str, expire_at: Option<u64>) {
        db.write(key.as_bytes(), |slot| {
            slot.put(Value::from_bytes(b"v"), expire_at);
        });
    }

    /// A whole iteration: every key returned, and the number of steps it took.
    fn iterate(
        db: &DbRef<'_>,
        pattern: Option<&[u8]>,
        type_name: Option<&[u8]>,
        count: usize,
    ) -> (Vec<Bytes>, usize) {
        let (mut cursor, mut all, mut steps) = (0, Vec::new(), 0);
        loop {
            let (next, keys) = scan(db, cursor, pattern, type_name, count);
            all.extend(keys);
            steps += 1;
            if next == 0 {
                return (all, steps);
            }
            cursor = next;
        }
    }

    #[test]
    fn empty_database_finishes_in_one_step() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        assert_eq!(scan(&db, 0, None, None, 10), (0, Vec::new()));
    }

    #[test]
    fn every_key_exactly_once_whatever_the_count() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        let n = 5_000;
        for i in 0..n {
            put(&db, &format!("key:{i}"), None);
        }
        for count in [1, 7, 10, 100, 1_000, 100_000] {
            let (all, steps) = iterate(&db, None, None, count);
            assert_eq!(all.len(), n, "count {count}: no key twice");
            let distinct: HashSet<&Bytes> = all.iter().collect();
            assert_eq!(distinct.len(), n, "count {count}: every key");
            // At most 64 steps per shard, and about n / count steps otherwise.
            assert!(steps <= 64 * crate::SHARDS, "count {count}: {steps} steps");
            assert!(
                steps <= 3 * n / count + crate::SHARDS + 1,
                "count {count}: {steps} steps"
            );
        }
    }

    #[test]
    fn steps_return_about_count_keys() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        for i in 0..20_000 {
            put(&db, &format!("k{i}"), None);
        }
        let (next, keys) = scan(&db, 0, None, None, 1_000);
        assert_ne!(next, 0);
        assert!((500..2_000).contains(&keys.len()), "{} keys", keys.len());
    }

    #[test]
    fn filters_by_pattern_type_and_expiry() {
        let (clock, ks) = keyspace();
        let db = ks.db(0).unwrap();
        for i in 0..300 {
            put(&db, &format!("str:{i}"), None);
            crate::sets::sadd(&db, format!("set:{i}").as_bytes(), &[b"m"]).unwrap();
        }
        put(&db, "str:doomed", Some(T0 + 10));
        clock.advance(11);
        let db = ks.db(0).unwrap();
        let names = |keys: Vec<Bytes>| -> HashSet<String> {
            keys.iter()
                .map(|k| String::from_utf8(k.to_vec()).unwrap())
                .collect()
        };
        let (all, _) = iterate(&db, None, None, 10);
        assert_eq!(all.len(), 600, "the expired key is skipped");
        let (sets, _) = iterate(&db, None, Some(b"SET"), 10);
        assert_eq!(names(sets), (0..300).map(|i| format!("set:{i}")).collect());
        let (matched, _) = iterate(&db, Some(b"str:1?"), None, 10);
        assert_eq!(
            names(matched),
            (10..20).map(|i| format!("str:{i}")).collect()
        );
        let (both, _) = iterate(&db, Some(b"s*:5"), Some(b"string"), 10);
        assert_eq!(names(both), HashSet::from(["str:5".to_string()]));
        let (none, _) = iterate(&db, None, Some(b"stream"), 10);
        assert!(none.is_empty());
    }

    #[test]
    fn keys_present_throughout_survive_concurrent_changes() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        for i in 0..2_000 {
            put(&db, &format!("stable:{i}"), None);
            put(&db, &format!("gone:{i}"), None);
        }
        let (mut cursor, mut seen, mut step) = (0, HashSet::new(), 0);
        loop {
            let (next, keys) = scan(&db, cursor, None, None, 25);
            seen.extend(keys);
            // Between steps: delete some keys, add many (shards grow and rehash).
            for i in 0..40 {
                let n = step * 40 + i;
                put(&db, &format!("new:{n}"), None);
                del(&db, &[format!("gone:{n}").as_bytes()]);
            }
            step += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..2_000 {
            assert!(
                seen.contains(format!("stable:{i}").as_bytes()),
                "stable:{i}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Against a model: while keys `churn:*` come and go between steps, every
        /// `stable:*` key is returned exactly once, and nothing that never existed is.
        #[test]
        fn stable_keys_exactly_once_under_churn(
            stable in 0usize..400,
            count in 1usize..60,
            churn in proptest::collection::vec((proptest::bool::ANY, 0u16..500), 0..200),
        ) {
            let (_, ks) = keyspace();
            let db = ks.db(0).unwrap();
            for i in 0..stable {
                put(&db, &format!("stable:{i}"), None);
            }
            let mut changes = churn.iter();
            let (mut cursor, mut seen) = (0, Vec::new());
            loop {
                let (next, keys) = scan(&db, cursor, None, None, count);
                seen.extend(keys);
                for &(insert, n) in changes.by_ref().take(5) {
                    let key = format!("churn:{n}");
                    if insert {
                        put(&db, &key, None);
                    } else {
                        del(&db, &[key.as_bytes()]);
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            for i in 0..stable {
                let key = format!("stable:{i}");
                let times = seen.iter().filter(|k| k.as_ref() == key.as_bytes()).count();
                proptest::prop_assert_eq!(times, 1, "{}", key);
            }
            for key in &seen {
                let ok = key.starts_with(b"stable:") || key.starts_with(b"churn:");
                proptest::prop_assert!(ok, "{:?}", key);
            }
        }
    }

    #[test]
    fn any_cursor_is_accepted() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        put(&db, "a", None);
        // Cursors a client made up: still a step that ends, never a panic.
        for cursor in [u64::MAX, u64::MAX - 1, 1, 63, 64, 1 << 63] {
            let (next, _) = scan(&db, cursor, None, None, 10);
            assert!(next == 0 || next > cursor || next & 63 > cursor & 63);
        }
    }
}
