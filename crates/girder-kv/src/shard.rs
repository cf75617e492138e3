//! One shard of a database: a hash map of entries and an index of deadlines.

use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string that is a canonical decimal integer, kept as a number (Redis's `int`
    /// encoding): 8 bytes instead of a heap allocation, and INCR needs no parsing.
    Int(i64),
    /// Any other string, as it was set.
    Str(Bytes),
    /// A string modified in place (APPEND, SETRANGE): Redis reports these as `raw`
    /// whatever their length, and so does Girder.
    Raw(Bytes),
    /// A hash (`HSET`).
    Hash(Box<crate::hashes::HashValue>),
    /// A list (`LPUSH`).
    List(Box<crate::lists::ListValue>),
    /// A set (`SADD`).
    Set(Box<crate::sets::SetValue>),
    /// A sorted set (`ZADD`).
    ZSet(Box<crate::zsets::ZSetValue>),
    /// A stream (`XADD`).
    Stream(Box<crate::streams::StreamValue>),
}

impl Value {
    /// The value for string bytes, choosing the integer encoding when the bytes are the
    /// canonical form of an i64 (so they read back byte for byte).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match parse_canonical_i64(bytes) {
            Some(i) => Self::Int(i),
            None => Self::Str(Bytes::copy_from_slice(bytes)),
        }
    }

    /// The Redis type name (`TYPE`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Int(_) | Self::Str(_) | Self::Raw(_) => "string",
            Self::Hash(_) => "hash",
            Self::List(_) => "list",
            Self::Set(_) => "set",
            Self::ZSet(_) => "zset",
            Self::Stream(_) => "stream",
        }
    }

    /// The Redis encoding name (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        match self {
            Self::Int(_) => "int",
            Self::Str(b) if b.len() <= 44 => "embstr",
            Self::Str(_) | Self::Raw(_) => "raw",
            Self::Hash(h) => h.encoding(),
            Self::List(l) => l.encoding(),
            Self::Set(s) => s.encoding(),
            Self::ZSet(z) => z.encoding(),
            Self::Stream(s) => s.encoding(),
        }
    }
}

/// Parses bytes that are exactly how an i64 prints (no `+`, no leading zeros, no spaces).
pub(crate) fn parse_canonical_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let n: i64 = text.parse().ok()?;
    let mut buf = itoa::Buffer::new();
    (buf.format(n).as_bytes() == bytes).then_some(n)
}

/// A key's value and deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Deadline in ms since the Unix epoch; the key exists up to and including it.
    pub expire_at: Option<u64>,
}

impl Entry {
    /// Whether the entry is gone at `now` (Redis: expired when now > deadline).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at.is_some_and(|t| now > t)
    }
}

/// Keys up to this long live inside the hash table's bucket.
const INLINE_KEY: usize = 22;

/// A stored key. Most keys are short: kept inline they cost no allocation and, above all,
/// a lookup compares them without a second cache miss into the heap.
#[derive(Clone)]
pub(crate) enum Key {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl Key {
    pub(crate) fn new(key: &[u8]) -> Self {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key);
            // At most 22: fits.
            Self::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            Self::Heap(key.into())
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(b) => b,
        }
    }
}

impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

// Hash, Eq and Ord are the byte slice's, so that lookups by `&[u8]` find the key.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Shard {
    map: HashMap<Key, Entry, ahash::RandomState>,
    /// (deadline, key) of every key with a TTL: the active cycle pops from the front.
    deadlines: BTreeSet<(u64, Key)>,
    /// Keys under WATCH: (number of watchers, version). Empty unless transactions use
    /// WATCH, so writes pay one `is_empty` check.
    watched: HashMap<Key, (usize, u64), ahash::RandomState>,
    /// Outstanding cache leases (`leases.rs`); each holds one watch of its key.
    pub(crate) leases: crate::leases::Leases,
}

impl Shard {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn volatile_len(&self) -> usize {
        self.deadlines.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.map.iter().map(|(k, e)| (k.as_slice(), e))
    }

    /// The entry if live; an expired one is removed on the way (lazy expiry).
    pub(crate) fn live(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.live_mut(key, now).map(|e| &*e)
    }

    /// Whether `key` is present but past its deadline.
    pub(crate) fn peek_expired(&self, key: &[u8], now: u64) -> bool {
        self.map.get(key).is_some_and(|e| e.is_expired(now))
    }

    pub(crate) fn live_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let expired = self.map.get(key)?.is_expired(now);
        if expired {
            self.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    /// Stores `value`; returns whether it replaced a stream (the journal's business).
    pub(crate) fn put(&mut self, key: &[u8], value: Value, expire_at: Option<u64>) -> bool {
        self.touch(key);
        // An existing key is updated in place: no key copy, no rehash.
        if let Some(entry) = self.map.get_mut(key) {
            let old = entry.expire_at;
            let was_stream = matches!(entry.value, Value::Stream(_));
            entry.value = value;
            entry.expire_at = expire_at;
            if old != expire_at {
                if let Some(t) = old {
                    self.deadlines.remove(&(t, Key::new(key)));
                }
                if let Some(t) = expire_at {
                    self.deadlines.insert((t, Key::new(key)));
                }
            }
            return was_stream;
        }
        let key = Key::new(key);
        if let Some(t) = expire_at {
            self.deadlines.insert((t, key.clone()));
        }
        self.map.insert(key, Entry { value, expire_at });
        false
    }

    /// Moves a watched key's version on.
    pub(crate) fn touch(&mut self, key: &[u8]) {
        if !self.watched.is_empty() {
            if let Some((_, version)) = self.watched.get_mut(key) {
                *version += 1;
            }
        }
    }

    fn touch_all(&mut self) {
        for (_, version) in self.watched.values_mut() {
            *version += 1;
        }
    }

    pub(crate) fn watch(&mut self, key: &[u8]) -> u64 {
        if let Some((watchers, version)) = self.watched.get_mut(key) {
            *watchers += 1;
            return *version;
        }
        self.watched.insert(Key::new(key), (1, 0));
        0
    }

    pub(crate) fn watched_version(&self, key: &[u8]) -> u64 {
        self.watched.get(key).map_or(u64::MAX, |(_, v)| *v)
    }

    pub(crate) fn unwatch(&mut self, key: &[u8]) {
        if let Some((watchers, _)) = self.watched.get_mut(key) {
            *watchers -= 1;
            if *watchers == 0 {
                self.watched.remove(key);
            }
        }
    }

    /// FLUSHDB / FLUSHALL: every key goes; watches stay, each counting a modification.
    pub(crate) fn clear(&mut self) {
        self.map = HashMap::default();
        self.deadlines = BTreeSet::new();
        self.touch_all();
    }

    /// SWAPDB: the keys trade places; each shard's watches stay and count a modification.
    pub(crate) fn swap_contents(&mut self, other: &mut Shard) {
        std::mem::swap(&mut self.map, &mut other.map);
        std::mem::swap(&mut self.deadlines, &mut other.deadlines);
        self.touch_all();
        other.touch_all();
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.touch(key);
        let (k, entry) = self.map.remove_entry(key)?;
        if let Some(t) = entry.expire_at {
            self.deadlines.remove(&(t, k));
        }
        Some(entry)
    }

    pub(crate) fn set_expire(&mut self, key: &[u8], expire_at: Option<u64>) {
        self.touch(key);
        // The deadline index holds its own copy of the key.
        let Some((k, old)) = self
            .map
            .get_key_value(key)
            .map(|(k, e)| (k.clone(), e.expire_at))
        else {
            return;
        };
        if old == expire_at {
            return;
        }
        if let Some(old) = old {
            self.deadlines.remove(&(old, k.clone()));
        }
        if let Some(t) = expire_at {
            self.deadlines.insert((t, k.clone()));
        }
        if let Some(entry) = self.map.get_mut(&k) {
            entry.expire_at = expire_at;
        }
    }

    /// Removes up to `budget` keys whose deadline passed; returns how many.
    /// Each removed key is appended to `log` when one is given.
    pub(crate) fn remove_expired(
        &mut self,
        now: u64,
        budget: usize,
        mut log: Option<&mut Vec<Key>>,
    ) -> usize {
        let mut removed = 0;
        while removed < budget {
            let Some((t, _)) = self.deadlines.first() else {
                break;
            };
            if *t >= now {
                break;
            }
            let (_, key) = self.deadlines.pop_first().expect("first exists");
            self.touch(key.as_slice());
            self.map.remove(&key);
            if let Some(log) = log.as_mut() {
                log.push(key);
            }
            removed += 1;
        }
        removed
    }
}
