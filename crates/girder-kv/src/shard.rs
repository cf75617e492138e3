//! One shard of a database: a hash map of entries and an index of deadlines.

use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};

use crate::evict::Clocking;

/// Borrow, Hash, Eq and Ord of a type holding bytes, all the byte slice's (through
/// `$bytes`), so maps and sets keyed by it are looked up by `&[u8]` and order as `[u8]`
/// (and `Bytes`) do, however the bytes are held.
macro_rules! bytes_like {
    ($t:ty, $bytes:ident) => {
        impl std::borrow::Borrow<[u8]> for $t {
            fn borrow(&self) -> &[u8] {
                self.$bytes()
            }
        }

        impl std::hash::Hash for $t {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.$bytes().hash(state);
            }
        }

        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.$bytes() == other.$bytes()
            }
        }

        impl Eq for $t {}

        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $t {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.$bytes().cmp(other.$bytes())
            }
        }
    };
}

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string that is a canonical decimal integer, kept as a number (Redis's `int`
    /// encoding): 8 bytes instead of a heap allocation, and INCR needs no parsing.
    Int(i64),
    /// Any other string of up to [`SMALL_STR`] bytes, held in the entry itself (Redis
    /// embeds short strings in their object the same way, `embstr`): no allocation to
    /// set or free it, and reading it touches no memory beyond the entry.
    Small(SmallStr),
    /// Any other string, as it was set (always longer than [`SMALL_STR`]: the
    /// constructors keep shorter ones `Small`).
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
            None => Self::string(bytes),
        }
    }

    /// The value for string bytes kept as they are, never as an integer (INCRBYFLOAT's
    /// result, as in Redis).
    pub fn string(bytes: &[u8]) -> Self {
        Str::copy(bytes).into()
    }

    /// [`Value::string`] of bytes already owned: a long string keeps them.
    pub fn string_from(bytes: Bytes) -> Self {
        Str::from_bytes(bytes).into()
    }

    /// The bytes of a string not held as an integer (`Small`, `Str`, `Raw`).
    pub fn str_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Small(s) => Some(s.as_bytes()),
            Self::Str(b) | Self::Raw(b) => Some(b),
            _ => None,
        }
    }

    /// The Redis type name (`TYPE`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Int(_) | Self::Small(_) | Self::Str(_) | Self::Raw(_) => "string",
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
            Self::Small(_) => "embstr",
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

/// Longest string held in the entry itself ([`Value::Small`]): what fits beside the
/// enum's tag and a length byte in the 40 bytes a `Value` takes anyway.
pub const SMALL_STR: usize = 38;

/// A string of at most [`SMALL_STR`] bytes, stored inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SmallStr {
    len: u8,
    bytes: [u8; SMALL_STR],
}

impl SmallStr {
    /// `bytes` inline, if they fit.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let len = u8::try_from(bytes.len())
            .ok()
            .filter(|&n| usize::from(n) <= SMALL_STR)?;
        let mut inline = [0; SMALL_STR];
        inline[..bytes.len()].copy_from_slice(bytes);
        Some(Self { len, bytes: inline })
    }

    /// The string.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for SmallStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_bytes()))
    }
}

/// Bytes held inline when they fit ([`SmallStr`]), else shared: the fields, values and
/// members of hash and set tables. A short one costs no allocation, and comparing it
/// reads nothing beyond the table's own entry.
#[derive(Clone)]
pub enum Str {
    /// At most [`SMALL_STR`] bytes, inline.
    Small(SmallStr),
    /// Longer.
    Heap(Bytes),
}

impl Str {
    /// A copy of `bytes`.
    pub fn copy(bytes: &[u8]) -> Self {
        match SmallStr::new(bytes) {
            Some(small) => Self::Small(small),
            None => Self::Heap(Bytes::copy_from_slice(bytes)),
        }
    }

    /// `bytes`, kept if long.
    pub fn from_bytes(bytes: Bytes) -> Self {
        match SmallStr::new(&bytes) {
            Some(small) => Self::Small(small),
            None => Self::Heap(bytes),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Small(s) => s.as_bytes(),
            Self::Heap(b) => b,
        }
    }

    /// The bytes as `Bytes` (a copy when inline, a shared reference otherwise).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Self::Small(s) => Bytes::copy_from_slice(s.as_bytes()),
            Self::Heap(b) => b.clone(),
        }
    }
}

/// A string value held as `s` is: inline when short.
impl From<Str> for Value {
    fn from(s: Str) -> Self {
        match s {
            Str::Small(small) => Self::Small(small),
            Str::Heap(bytes) => Self::Str(bytes),
        }
    }
}

impl std::ops::Deref for Str {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

bytes_like!(Str, as_bytes);

impl std::fmt::Debug for Str {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_bytes()))
    }
}

// A small string costs no space: a value is as large as it was with `Bytes` alone, and
// an entry still 64 bytes.
const _: () = assert!(std::mem::size_of::<Value>() == 40);
const _: () = assert!(std::mem::size_of::<Entry>() == 64);
const _: () = assert!(std::mem::size_of::<Str>() == 40);

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
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Deadline in ms since the Unix epoch; the key exists up to and including it.
    pub expire_at: Option<u64>,
    /// When the key was last used (ms since the Unix epoch), or, under an LFU policy,
    /// its logarithmic access counter and the minute it was last decayed
    /// ([`crate::evict`]). It sits in what was padding: an entry is 64 bytes either way.
    pub(crate) access: u64,
}

/// Entries are equal when they hold the same data; when they were last used is not data.
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.expire_at == other.expire_at
    }
}

impl Entry {
    /// An entry that has not been used yet.
    pub fn new(value: Value, expire_at: Option<u64>) -> Self {
        Self {
            value,
            expire_at,
            access: 0,
        }
    }

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

bytes_like!(Key, as_slice);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

/// A shard's keys: a hash table that, unlike `std`'s `HashMap`, lets eviction pick a
/// bucket at random, so sampling a key costs O(1) (Redis's `dictGetSomeKeys`).
///
/// Each key and entry live in a box of their own; the table holds pointers. A table
/// under churn (keys deleted or evicted while others arrive) fills with tombstones and
/// doubles its buckets while the number of keys stays the same. With 88-byte buckets
/// that doubling took memory from the values: under eviction the values were evicted to
/// pay for it and the heap kept their holes (RSS 1.26× the limit). With 8-byte buckets
/// it costs almost nothing. A lookup follows one more pointer, from a dense array.
#[derive(Default)]
pub(crate) struct KeyTable {
    table: hashbrown::HashTable<Box<(Key, Entry)>>,
    hasher: ahash::RandomState,
}

impl std::fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.table.iter().map(|b| (&b.0, &b.1)))
            .finish()
    }
}

/// A table emptier than this, by live keys per bucket, is shrunk on removal.
const SHRINK_BELOW: usize = 8;

impl KeyTable {
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    #[cfg(test)]
    pub(crate) fn buckets(&self) -> usize {
        self.table.num_buckets()
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.table
            .find(self.hash(key), |b| b.0.as_slice() == key)
            .map(|b| &b.1)
    }

    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let hash = self.hash(key);
        self.table
            .find_mut(hash, |b| b.0.as_slice() == key)
            .map(|b| &mut b.1)
    }

    pub(crate) fn get_key_value(&self, key: &[u8]) -> Option<(&Key, &Entry)> {
        self.table
            .find(self.hash(key), |b| b.0.as_slice() == key)
            .map(|b| (&b.0, &b.1))
    }

    /// The entry of `key`, or a vacant place for it: one hash, one probe.
    fn entry(&mut self, key: &[u8]) -> hashbrown::hash_table::Entry<'_, Box<(Key, Entry)>> {
        let hash = self.hash(key);
        let hasher = &self.hasher;
        self.table.entry(
            hash,
            |b| b.0.as_slice() == key,
            |b| hasher.hash_one(b.0.as_slice()),
        )
    }

    pub(crate) fn remove_entry(&mut self, key: &[u8]) -> Option<(Key, Entry)> {
        let hash = self.hash(key);
        let removed = match self.table.find_entry(hash, |b| b.0.as_slice() == key) {
            Ok(occupied) => *occupied.remove().0,
            Err(_) => return None,
        };
        // Mass deletion (eviction, DEL of most keys) leaves a sparse table: give the
        // memory back, and keep random sampling O(1).
        let buckets = self.table.num_buckets();
        if buckets > 64 && self.table.len() * SHRINK_BELOW < buckets {
            let hasher = &self.hasher;
            self.table
                .shrink_to(self.table.len() * 2, |b| hasher.hash_one(b.0.as_slice()));
        }
        Some(removed)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.table.iter().map(|b| (&b.0, &b.1))
    }

    /// Walks the buckets from a random one and calls `f` on the entries found until
    /// `n` of them were accepted (`f` returned true). A bucket walk from a random start
    /// is how Redis's eviction samples too: the hash spreads neighbours across the keys.
    ///
    /// The entries found are scattered over the heap, a cache miss each. They are taken
    /// a few at a time ([`SAMPLE_BATCH`]) and read together before `f` sees any, so the
    /// misses overlap instead of each waiting behind the one before: under SET with
    /// every write evicting, that wait was 80% of this walk's time and the walk 44% of
    /// the server's (`perf`, allkeys-lru; `bench/eviction.sh`).
    pub(crate) fn sample(&self, n: usize, mut f: impl FnMut(&Key, &Entry) -> bool) {
        let buckets = self.table.num_buckets();
        if self.table.is_empty() || buckets == 0 {
            return;
        }
        let mask = buckets - 1;
        let mut at = fastrand::usize(..buckets);
        let mut accepted = 0;
        // Shrinking keeps at least one key per `SHRINK_BELOW` buckets, so this meets `n`
        // keys several times over; a filter few keys pass ends the walk here.
        let limit = buckets.min(n.max(1) * SHRINK_BELOW * 8);
        let mut walked = 0;
        let mut batch: [Option<&(Key, Entry)>; SAMPLE_BATCH] = [None; SAMPLE_BATCH];
        while walked < limit && accepted < n {
            let want = (n - accepted).min(SAMPLE_BATCH);
            let mut len = 0;
            while len < want && walked < limit {
                if let Some(b) = self.table.get_bucket(at) {
                    batch[len] = Some(&**b);
                    len += 1;
                }
                at = (at + 1) & mask;
                walked += 1;
            }
            let found = &batch[..len];
            // One independent load per line the callers read (the key, the stamp).
            let mut touched = 0u64;
            for (key, entry) in found.iter().flatten() {
                let first = key.as_slice().first().copied().unwrap_or(0);
                touched = touched.wrapping_add(entry.access) ^ u64::from(first);
            }
            std::hint::black_box(touched);
            for (key, entry) in found.iter().flatten() {
                if f(key, entry) {
                    accepted += 1;
                    if accepted == n {
                        return;
                    }
                }
            }
        }
    }
}

/// How many sampled entries [`KeyTable::sample`] reads at once.
const SAMPLE_BATCH: usize = 8;

#[derive(Debug, Default)]
pub(crate) struct Shard {
    map: KeyTable,
    /// (deadline, key) of every key with a TTL: the active cycle pops from the front.
    deadlines: BTreeSet<(u64, Key)>,
    /// Keys under WATCH: (number of watchers, version). Empty unless transactions use
    /// WATCH, so writes pay one `is_empty` check.
    watched: HashMap<Key, (usize, u64), ahash::RandomState>,
    /// Outstanding cache leases (`leases.rs`); each holds one watch of its key.
    pub(crate) leases: crate::leases::Leases,
    /// Lookups and expiries, counted under the shard's lock (INFO stats).
    pub(crate) stats: crate::KeyspaceStats,
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

    pub(crate) fn table(&self) -> &KeyTable {
        &self.map
    }

    /// The key with the soonest deadline (volatile-ttl's victim in this shard).
    pub(crate) fn soonest_deadline(&self) -> Option<(u64, &Key)> {
        self.deadlines.first().map(|(t, k)| (*t, k))
    }

    /// The live entry, used now: its access stamp moves on (`clock`).
    pub(crate) fn used(&mut self, key: &[u8], now: u64, clock: Clocking) -> Option<&mut Entry> {
        let entry = self.live_mut(key, now)?;
        entry.access = clock.touched(entry.access);
        Some(entry)
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
            self.stats.expired += 1;
            return None;
        }
        self.map.get_mut(key)
    }

    /// Stores `value`; returns whether it replaced a stream (the journal's business).
    pub(crate) fn put(
        &mut self,
        key: &[u8],
        value: Value,
        expire_at: Option<u64>,
        clock: Clocking,
    ) -> bool {
        self.touch(key);
        // An existing key is updated in place: no key copy, no rehash.
        let (old, was_stream) = match self.map.entry(key) {
            hashbrown::hash_table::Entry::Occupied(mut occupied) => {
                let entry = &mut occupied.get_mut().1;
                let old = entry.expire_at;
                let was_stream = matches!(entry.value, Value::Stream(_));
                entry.value = value;
                entry.expire_at = expire_at;
                entry.access = clock.overwritten(entry.access);
                (old, was_stream)
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                let key = Key::new(key);
                if let Some(t) = expire_at {
                    self.deadlines.insert((t, key.clone()));
                }
                vacant.insert(Box::new((
                    key,
                    Entry {
                        value,
                        expire_at,
                        access: clock.fresh(),
                    },
                )));
                return false;
            }
        };
        if old != expire_at {
            if let Some(t) = old {
                self.deadlines.remove(&(t, Key::new(key)));
            }
            if let Some(t) = expire_at {
                self.deadlines.insert((t, Key::new(key)));
            }
        }
        was_stream
    }

    /// Moves a watched key's version on.
    pub(crate) fn touch(&mut self, key: &[u8]) {
        if !self.watched.is_empty() {
            if let Some((_, version)) = self.watched.get_mut(key) {
                *version += 1;
            }
        }
    }

    /// Whether a transaction watches `key` (cheap when none watches anything).
    pub(crate) fn is_watched(&self, key: &[u8]) -> bool {
        !self.watched.is_empty() && self.watched.contains_key(key)
    }

    /// Moves on the version of every watched key present here or in `other` (Redis
    /// 7.0's `touchAllWatchedKeysInDb`: FLUSHDB and SWAPDB change only keys that were,
    /// or come to be, there; a watched key missing on both sides stays unchanged for
    /// WATCH). A cache lease's key moves on regardless: a flush voids every lease.
    fn touch_present(&mut self, other: Option<&KeyTable>) {
        let (map, leases) = (&self.map, &self.leases);
        for (key, (_, version)) in &mut self.watched {
            let key: &[u8] = std::borrow::Borrow::borrow(key);
            if map.get(key).is_some()
                || other.is_some_and(|o| o.get(key).is_some())
                || leases.contains_key(key)
            {
                *version += 1;
            }
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

    /// FLUSHDB / FLUSHALL: every key goes; watches stay, a watched key that was here
    /// counting a modification.
    pub(crate) fn clear(&mut self) {
        self.touch_present(None);
        self.map = KeyTable::default();
        self.deadlines = BTreeSet::new();
    }

    /// SWAPDB: the keys trade places; each shard's watches stay, a watched key present
    /// on either side counting a modification.
    pub(crate) fn swap_contents(&mut self, other: &mut Shard) {
        self.touch_present(Some(&other.map));
        other.touch_present(Some(&self.map));
        std::mem::swap(&mut self.map, &mut other.map);
        std::mem::swap(&mut self.deadlines, &mut other.deadlines);
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
        if let Some(entry) = self.map.get_mut(k.as_slice()) {
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
            self.map.remove_entry(key.as_slice());
            if let Some(log) = log.as_mut() {
                log.push(key);
            }
            removed += 1;
            self.stats.expired += 1;
        }
        removed
    }
}
