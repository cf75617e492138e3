//! The in-memory keyspace: 16 logical databases of typed values with millisecond TTLs.
//!
//! Architecture invariant: this crate knows nothing of RESP or any wire protocol. It
//! offers typed operations (`strings::set`, `keys::expire`, ...) that return typed results;
//! the front end turns requests into calls and results into replies.
//!
//! # Concurrency
//! Each database is split into [`SHARDS`] shards, each behind its own mutex, so commands on
//! different keys run in parallel on different cores. A command touching several keys
//! locks their shards in ascending shard order (no deadlock). Operations that must see the
//! whole keyspace at once (`FLUSHALL`, `SWAPDB`, `MULTI`/`EXEC`) take the keyspace's
//! exclusive gate; every other operation holds the gate shared. The gate is striped: a
//! thread takes one stripe of its own for reading, so readers on different cores do not
//! bounce one cache line between them; the exclusive side takes every stripe.
//!
//! # Expiry
//! A key with a TTL is recorded in its shard's expiry index (ordered by deadline). Expired
//! keys vanish on access (lazy) and are reclaimed by [`Keyspace::expire_cycle`], which the
//! server calls periodically: memory held by expired keys nobody reads is freed too.
//!
//! # Keys and values are owned
//! Nothing stored may be a slice of a network buffer: one such `Bytes` would pin the whole
//! buffer it came from. Keys are copied into the shard's own key type (inline up to 22
//! bytes, so most lookups compare keys without a second cache miss); values are copied
//! with `Bytes::copy_from_slice` by the operations that store them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blocks;
mod evict;
pub mod hashes;
pub mod keys;
pub mod leases;
pub mod lists;
pub mod long_double;
pub mod origin;
pub mod replay;
pub mod sets;
mod shard;
pub mod streams;
pub mod strings;
pub mod zsets;

pub use evict::{Access, MemoryProbe, Policy};
pub use shard::{Entry, Value};

use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use shard::Shard;
use std::sync::Arc;

/// Shards per database. A power of two, so the shard of a key is a mask of its hash.
pub const SHARDS: usize = 64;

/// Number of logical databases (`SELECT 0..15`).
pub const DATABASES: usize = 16;

/// Where a random read with a negative count (SRANDMEMBER, HRANDFIELD, ZRANDMEMBER)
/// delivers its picks, under the key's lock: such a read may repeat elements up to 10M
/// times, so a front end encodes each pick as it comes instead of first collecting
/// owned copies (which took ~100 bytes a pick, 12× Redis's reply buffer).
pub trait Picks<T: ?Sized> {
    /// How many picks follow (0 for a missing key); called once, first.
    fn count(&mut self, n: usize);
    /// One pick: an element and what goes with it (nothing, its value, its score).
    fn pick(&mut self, element: &[u8], with: &T);
}

/// Picks collected as owned copies (for callers that want them, and tests).
impl Picks<()> for Vec<bytes::Bytes> {
    fn count(&mut self, n: usize) {
        self.reserve(n);
    }
    fn pick(&mut self, element: &[u8], (): &()) {
        self.push(bytes::Bytes::copy_from_slice(element));
    }
}

impl Picks<[u8]> for Vec<(bytes::Bytes, bytes::Bytes)> {
    fn count(&mut self, n: usize) {
        self.reserve(n);
    }
    fn pick(&mut self, element: &[u8], with: &[u8]) {
        self.push((
            bytes::Bytes::copy_from_slice(element),
            bytes::Bytes::copy_from_slice(with),
        ));
    }
}

impl Picks<f64> for Vec<(bytes::Bytes, f64)> {
    fn count(&mut self, n: usize) {
        self.reserve(n);
    }
    fn pick(&mut self, element: &[u8], with: &f64) {
        self.push((bytes::Bytes::copy_from_slice(element), *with));
    }
}

/// A source of wall-clock milliseconds; injected so TTLs are tested with virtual time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock for tests: moves only when told.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicU64);

impl ManualClock {
    /// A clock reading `ms`.
    pub fn new(ms: u64) -> Self {
        Self(std::sync::atomic::AtomicU64::new(ms))
    }
    /// Moves the clock forward.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Errors of keyspace operations, each a distinct client-visible condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The key holds a value of another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// The value is not an integer, or out of range.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// The value is not a valid float.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// An increment or decrement would overflow.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// The result of a float increment is NaN or infinite.
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    /// A string would exceed the maximum size.
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    /// The key does not exist (RENAME and friends).
    #[error("ERR no such key")]
    NoSuchKey,
    /// The database index is out of range.
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    /// An expire time out of range.
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpireTime(&'static str),
    /// HINCRBY on a field whose value is not an integer.
    #[error("ERR hash value is not an integer")]
    HashValueNotInteger,
    /// HINCRBYFLOAT on a field whose value is not a float.
    #[error("ERR hash value is not a float")]
    HashValueNotFloat,
    /// The key's shard holds the most outstanding cache leases it may.
    #[error("ERR too many outstanding cache leases, retry later")]
    TooManyLeases,
    /// Memory in use is over `maxmemory` and nothing can be evicted.
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    OutOfMemory,
}

/// The keyspace: all databases.
pub struct Keyspace {
    dbs: Box<[Db]>,
    /// Shared by ordinary operations, exclusive for whole-keyspace ones.
    gate: Gate,
    clock: Arc<dyn Clock>,
    hasher: ahash::RandomState,
    /// Largest string value, in bytes (`proto-max-bulk-len`).
    max_string_len: usize,
    /// Told of keys the active expiry removes, while `report_expired` is set.
    expired_hook: RwLock<Option<ExpiredHook>>,
    /// Whether [`Keyspace::expire_cycle`] collects the keys it removes for the hook;
    /// off, the cycle allocates nothing.
    report_expired: std::sync::atomic::AtomicBool,
    /// Where changes are recorded; set once at start.
    journal: std::sync::OnceLock<Arc<dyn Journal>>,
    /// Whether every write is journaled (the append-only file, or a snapshot being
    /// taken), not only changes to streams.
    journal_all: AtomicBool,
    /// While a snapshot is taken: a multi-key write is journaled as the state it left,
    /// never as its command (whose replay would read keys the snapshot has not reached).
    exact: AtomicBool,
    /// Changing write calls, striped like the gate (`rdb_changes_since_last_save`).
    changes: Box<[Padded<std::sync::atomic::AtomicU64>]>,
    /// The memory limit and what goes when it is reached ([`evict`]).
    eviction: evict::Eviction,
}

use std::sync::atomic::AtomicBool;

/// The durability seam: told of every change to a stream, in order, while the changed
/// key's shard is locked (so the journal's order is the keyspace's order for each key).
/// The storage behind it (`girder-stream`'s journal on `girder-log`) is not this crate's
/// business.
///
/// Besides the effects of stream operations, the keyspace reports what happens to stream
/// keys as keys: replaced wholesale (RENAME, COPY, MOVE, and a stream operation creating
/// its key), deleted or overwritten by another type, given a deadline, flushed, swapped.
/// Expiry is not reported: a replayed deadline expires the key again.
pub trait Journal: Send + Sync + 'static {
    /// Records the effects of one operation on the stream at (`db`, `key`), done by a
    /// command running at `now_ms` (the time its expiry decisions used: replay must
    /// decide them the same way).
    fn stream(&self, db: usize, now_ms: u64, key: &[u8], effects: &[streams::StreamEffect]);
    /// (`db`, `key`) now holds this stream with this deadline, whatever it held before.
    fn stream_replaced(
        &self,
        db: usize,
        now_ms: u64,
        key: &[u8],
        value: &streams::StreamValue,
        expire_at: Option<u64>,
    );
    /// (`db`, `key`) was deleted (a stream, or any key while every write is journaled),
    /// or its stream was overwritten by a value of another type.
    fn deleted(&self, db: usize, now_ms: u64, key: &[u8]);
    /// One command that changed the keyspace, as its front end received it: replayed at
    /// `now_ms` after everything journaled before it, it makes the same change
    /// ([`origin`]). Only while every write is journaled.
    fn command(&self, db: usize, now_ms: u64, args: &[bytes::Bytes]);
    /// (`db`, `key`) now holds `entry` (never a stream), whatever it held before. Only
    /// while every write is journaled.
    fn value(&self, db: usize, now_ms: u64, key: &[u8], entry: &Entry);
    /// These members were removed from the set at (`db`, `key`) (SPOP: a random choice
    /// that replaying the command would not repeat). Only while every write is journaled.
    fn set_removed(&self, db: usize, now_ms: u64, key: &[u8], members: &[bytes::Bytes]);
    /// The stream at (`db`, `key`) now has this deadline.
    fn stream_expire(&self, db: usize, now_ms: u64, key: &[u8], expire_at: Option<u64>);
    /// Every database was emptied (FLUSHALL; runs in the exclusive section).
    fn flushed_all(&self);
    /// Database `db` was emptied (FLUSHDB; runs in the exclusive section).
    fn flushed_db(&self, db: usize);
    /// What this thread journals until [`Journal::end_atomic`] is one unit: replayed
    /// whole or not at all (a transaction, in the exclusive section).
    fn begin_atomic(&self);
    /// Ends the unit [`Journal::begin_atomic`] began and records it.
    fn end_atomic(&self);
    /// Databases `a` and `b` traded contents (SWAPDB; runs in the exclusive section).
    fn swapped(&self, a: usize, b: usize);
    /// What the calling thread recorded since it last asked, as something to wait for
    /// before acknowledging it: a front end calls this after running a batch of commands
    /// and before writing their replies.
    fn take_pending(&self) -> Durability;
    /// What a reply that shows journaled state (a stream read, a blocked reader served by
    /// someone else's write) must wait for: everything journaled so far, so that no
    /// client sees a change a crash could still take back.
    fn barrier(&self) -> Durability;
}

/// [`Keyspace::set_journal`] on a keyspace that has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the keyspace already has a journal")]
pub struct JournalAlreadySet;

/// What a front end must wait for before acknowledging the commands it just ran.
pub enum Durability {
    /// Nothing was recorded, or the policy acknowledges before syncing.
    Nothing,
    /// Wait for this; an error means the records may be lost: do not acknowledge.
    Wait(std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>),
    /// Recording failed: do not acknowledge.
    Failed(String),
}

impl std::fmt::Debug for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nothing => f.write_str("Nothing"),
            Self::Wait(_) => f.write_str("Wait"),
            Self::Failed(e) => write!(f, "Failed({e})"),
        }
    }
}

/// Called with (database index, key) for each key the active expiry removed, after the
/// key's shard is unlocked (keyspace notifications' `expired` event).
pub type ExpiredHook = Arc<dyn Fn(usize, &[u8]) + Send + Sync>;

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("dbs", &self.dbs.len())
            .finish()
    }
}

/// Stripes of the gate: enough for the cores this runs on, few enough that the
/// exclusive side (which takes them all) stays cheap.
const GATE_STRIPES: usize = 8;

/// The calling thread's stripe (of the gate, of the change counter).
fn thread_stripe() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % GATE_STRIPES;
    }
    STRIPE.with(|s| *s)
}

/// A reader-writer lock split into cache-line-sized stripes.
struct Gate {
    stripes: Box<[Padded<RwLock<()>>]>,
}

/// Aligns its content to its own cache lines (128 bytes covers adjacent-line prefetch).
#[repr(align(128))]
struct Padded<T>(T);

impl Gate {
    fn new() -> Self {
        Self {
            stripes: (0..GATE_STRIPES).map(|_| Padded(RwLock::new(()))).collect(),
        }
    }

    /// The calling thread's stripe, held shared; `None` when this thread already holds
    /// the gate exclusively (a transaction runs its commands inside one exclusive section).
    fn read(&self) -> Option<RwLockReadGuard<'_, ()>> {
        if EXCLUSIVE_DEPTH.with(std::cell::Cell::get) > 0 {
            return None;
        }
        Some(self.stripes[thread_stripe()].0.read())
    }

    /// Every stripe, held exclusively, taken in order; nothing when this thread already
    /// holds them (nested exclusive sections, as FLUSHALL inside EXEC).
    fn write(&self) -> Vec<RwLockWriteGuard<'_, ()>> {
        let outermost = EXCLUSIVE_DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get() == 1
        });
        if outermost {
            self.stripes.iter().map(|s| s.0.write()).collect()
        } else {
            Vec::new()
        }
    }
}

thread_local! {
    /// How many exclusive sections this thread is inside. An exclusive section never
    /// awaits, so it starts and ends on one thread.
    static EXCLUSIVE_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        EXCLUSIVE_DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// One logical database.
struct Db {
    shards: Box<[Mutex<Shard>]>,
}

impl Db {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }
}

/// Access to the whole keyspace for the duration of a transaction or a global command.
pub struct Exclusive<'a> {
    keyspace: &'a Keyspace,
    _gate: Vec<RwLockWriteGuard<'a, ()>>,
}

impl std::fmt::Debug for Exclusive<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exclusive")
    }
}

/// A handle on one database, holding the gate shared.
pub struct DbRef<'a> {
    keyspace: &'a Keyspace,
    db: &'a Db,
    index: usize,
    now: u64,
    /// How keys used through this handle are stamped (LRU time or LFU counter).
    clock: evict::Clocking,
    _gate: Option<RwLockReadGuard<'a, ()>>,
}

impl std::fmt::Debug for DbRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbRef")
    }
}

impl Keyspace {
    /// An empty keyspace of [`DATABASES`] databases.
    pub fn new(clock: Arc<dyn Clock>, max_string_len: usize) -> Self {
        Self {
            dbs: (0..DATABASES).map(|_| Db::new()).collect(),
            gate: Gate::new(),
            clock,
            hasher: ahash::RandomState::new(),
            max_string_len,
            expired_hook: RwLock::new(None),
            report_expired: std::sync::atomic::AtomicBool::new(false),
            journal: std::sync::OnceLock::new(),
            journal_all: AtomicBool::new(false),
            exact: AtomicBool::new(false),
            changes: (0..GATE_STRIPES)
                .map(|_| Padded(std::sync::atomic::AtomicU64::new(0)))
                .collect(),
            eviction: evict::Eviction::default(),
        }
    }

    /// Journals every write from now on (`on`), or only changes to streams. Takes effect
    /// for each write call that starts after it returns.
    pub fn set_journal_all(&self, on: bool) {
        self.journal_all
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether every write is journaled (a front end then runs commands inside
    /// [`origin::run`]).
    pub fn journals_all(&self) -> bool {
        self.journal_all.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets the snapshot mode ([`Keyspace`]'s `exact` field): multi-key writes are
    /// journaled as state.
    pub fn set_exact(&self, on: bool) {
        self.exact.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits until every operation that started before this call has finished (and with
    /// it, journaled what it did): the exclusive gate, taken and released.
    pub fn quiesce(&self) {
        drop(self.exclusive());
    }

    /// Changing write calls since the keyspace was created.
    pub fn changes(&self) -> u64 {
        self.changes
            .iter()
            .map(|c| c.0.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    /// Installs (or removes) the hook told of keys the active expiry removes.
    pub fn set_expired_hook(&self, hook: Option<ExpiredHook>) {
        *self.expired_hook.write() = hook;
    }

    /// Installs the journal (once, before serving).
    ///
    /// # Errors
    /// [`JournalAlreadySet`] when one is already installed.
    pub fn set_journal(&self, journal: Arc<dyn Journal>) -> Result<(), JournalAlreadySet> {
        self.journal.set(journal).map_err(|_| JournalAlreadySet)
    }

    /// What this thread's commands since the last call must wait for before they are
    /// acknowledged ([`Journal::take_pending`]); `Nothing` without a journal.
    pub fn take_durability(&self) -> Durability {
        match self.journal.get() {
            Some(journal) => journal.take_pending(),
            None => Durability::Nothing,
        }
    }

    /// What a reply showing journaled state must wait for ([`Journal::barrier`]);
    /// `Nothing` without a journal.
    pub fn durability_barrier(&self) -> Durability {
        match self.journal.get() {
            Some(journal) => journal.barrier(),
            None => Durability::Nothing,
        }
    }

    /// Turns reporting of actively expired keys to the hook on or off.
    pub fn report_expired(&self, on: bool) {
        self.report_expired
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The current time, in ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// A handle on database `index`.
    ///
    /// # Errors
    /// [`KvError::DbIndexOutOfRange`].
    pub fn db(&self, index: usize) -> Result<DbRef<'_>, KvError> {
        self.db_at(index, self.clock.now_ms())
    }

    /// A handle on database `index` whose operations see the time `now_ms`: a server
    /// reads the clock once per batch of pipelined commands instead of once per command.
    ///
    /// # Errors
    /// [`KvError::DbIndexOutOfRange`].
    pub fn db_at(&self, index: usize, now_ms: u64) -> Result<DbRef<'_>, KvError> {
        let db = self.dbs.get(index).ok_or(KvError::DbIndexOutOfRange)?;
        Ok(DbRef {
            keyspace: self,
            db,
            index,
            now: now_ms,
            clock: self.clocking(now_ms),
            _gate: self.gate.read(),
        })
    }

    /// Exclusive access to every database, for transactions and global commands.
    pub fn exclusive(&self) -> Exclusive<'_> {
        Exclusive {
            keyspace: self,
            _gate: self.gate.write(),
        }
    }

    fn shard_of(&self, key: &[u8]) -> usize {
        // The low bits pick the shard; hashbrown inside the shard uses the high bits.
        (self.hasher.hash_one(key) as usize) & (SHARDS - 1)
    }

    /// Removes up to `budget` expired keys per database; returns how many were removed.
    /// The server calls this periodically so expired keys nobody reads are reclaimed.
    /// Removed keys go to the expired hook when reporting is on.
    pub fn expire_cycle(&self, budget: usize) -> usize {
        let _gate = self.gate.read();
        let now = self.clock.now_ms();
        let hook = if self
            .report_expired
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.expired_hook.read().clone()
        } else {
            None
        };
        let mut keys = Vec::new();
        let mut removed = 0;
        for (index, db) in self.dbs.iter().enumerate() {
            let mut left = budget;
            for shard in db.shards.iter() {
                if left == 0 {
                    break;
                }
                let log = hook.is_some().then_some(&mut keys);
                let n = shard.lock().remove_expired(now, left, log);
                left -= n;
                removed += n;
                // The hook runs with no shard locked.
                if let Some(hook) = &hook {
                    for key in keys.drain(..) {
                        hook(index, key.as_slice());
                    }
                }
            }
        }
        removed
    }

    /// Lookups by read commands and keys expired, over every database since the start.
    pub fn keyspace_stats(&self) -> KeyspaceStats {
        self.dbs
            .iter()
            .flat_map(|db| &db.shards)
            .fold(KeyspaceStats::default(), |total, shard| {
                total.plus(shard.lock().stats)
            })
    }

    /// Keys per database (including expired keys not yet reclaimed) and keys with a TTL.
    pub fn db_sizes(&self) -> Vec<(usize, usize)> {
        self.dbs
            .iter()
            .map(|db| {
                db.shards.iter().fold((0, 0), |(keys, volatile), s| {
                    let s = s.lock();
                    (keys + s.len(), volatile + s.volatile_len())
                })
            })
            .collect()
    }
}

impl Exclusive<'_> {
    /// A handle on database `index` within the exclusive section.
    ///
    /// # Errors
    /// [`KvError::DbIndexOutOfRange`].
    pub fn db(&self, index: usize) -> Result<DbRef<'_>, KvError> {
        let db = self
            .keyspace
            .dbs
            .get(index)
            .ok_or(KvError::DbIndexOutOfRange)?;
        let now = self.keyspace.clock.now_ms();
        Ok(DbRef {
            keyspace: self.keyspace,
            db,
            index,
            now,
            clock: self.keyspace.clocking(now),
            _gate: None,
        })
    }

    /// Empties every database.
    pub fn flush_all(&self) {
        for db in self.keyspace.dbs.iter() {
            for shard in db.shards.iter() {
                shard.lock().clear();
            }
        }
        if let Some(journal) = self.keyspace.journal.get() {
            journal.flushed_all();
        }
    }

    /// Runs `f` (a transaction's commands, a MOVE) so that the journal records
    /// everything it journals as one unit: after a crash all of it is replayed or none.
    /// Nested calls (a MOVE inside EXEC) belong to the outermost unit.
    pub fn atomically<R>(&self, f: impl FnOnce() -> R) -> R {
        thread_local! {
            static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        }
        let Some(journal) = self.keyspace.journal.get() else {
            return f();
        };
        let outermost = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get() == 1
        });
        if outermost {
            journal.begin_atomic();
        }
        let result = f();
        DEPTH.with(|d| d.set(d.get() - 1));
        if outermost {
            journal.end_atomic();
        }
        result
    }

    /// Empties database `index` (FLUSHDB), journaled as one record.
    ///
    /// # Errors
    /// [`KvError::DbIndexOutOfRange`].
    pub fn flush_db(&self, index: usize) -> Result<(), KvError> {
        let db = self
            .keyspace
            .dbs
            .get(index)
            .ok_or(KvError::DbIndexOutOfRange)?;
        for shard in db.shards.iter() {
            shard.lock().clear();
        }
        if let Some(journal) = self.keyspace.journal.get() {
            journal.flushed_db(index);
        }
        Ok(())
    }

    /// Swaps the contents of two databases.
    ///
    /// # Errors
    /// [`KvError::DbIndexOutOfRange`].
    pub fn swap_db(&self, a: usize, b: usize) -> Result<(), KvError> {
        let dbs = &self.keyspace.dbs;
        let (da, db) = (
            dbs.get(a).ok_or(KvError::DbIndexOutOfRange)?,
            dbs.get(b).ok_or(KvError::DbIndexOutOfRange)?,
        );
        if a == b {
            return Ok(());
        }
        for (sa, sb) in da.shards.iter().zip(db.shards.iter()) {
            sa.lock().swap_contents(&mut sb.lock());
        }
        if let Some(journal) = self.keyspace.journal.get() {
            journal.swapped(a, b);
        }
        Ok(())
    }
}

impl<'a> DbRef<'a> {
    /// This database's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The same handle, whose reads and writes leave the keys' LRU time and LFU counter
    /// as they are (CLIENT NO-TOUCH).
    #[must_use]
    pub fn without_touch(mut self) -> Self {
        self.clock = self.clock.frozen();
        self
    }

    fn journal(&self) -> Option<(&'a dyn Journal, usize)> {
        self.keyspace
            .journal
            .get()
            .map(|j| (&**j as &dyn Journal, self.index))
    }

    /// Hands the effects of one change to the stream at `key` to the journal, if one is
    /// installed. Call it while the key's shard is locked (inside `write`), after the
    /// change, so the journal sees each key's changes in the order they happened.
    pub fn journal_stream(&self, key: &[u8], effects: &[streams::StreamEffect]) {
        if effects.is_empty() {
            return;
        }
        if let Some(journal) = self.keyspace.journal.get() {
            journal.stream(self.index, self.now, key, effects);
        }
    }

    /// The time this handle was taken: one command sees one instant, as in Redis.
    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// The keyspace's string size limit.
    pub fn max_string_len(&self) -> usize {
        self.keyspace.max_string_len
    }

    fn shard(&self, key: &[u8]) -> MutexGuard<'a, Shard> {
        self.db.shards[self.keyspace.shard_of(key)].lock()
    }

    /// Removes `key` if its TTL has passed; returns whether it did (the lazy expiry a
    /// front end reports as an `expired` keyspace event before running a command).
    pub fn expire_if_due(&self, key: &[u8]) -> bool {
        let mut shard = self.shard(key);
        let due = shard.peek_expired(key, self.now);
        if due {
            shard.remove(key);
        }
        due
    }

    /// Runs `f` on the live entry of `key` (expired entries are removed first); the key
    /// counts as used (its LRU time or LFU counter moves on).
    pub fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<&Entry>) -> R) -> R {
        let mut shard = self.shard(key);
        let entry = shard.used(key, self.now, self.clock).map(|e| &*e);
        let hit = entry.is_some();
        let result = f(entry);
        shard.stats.count_lookup(hit);
        result
    }

    /// [`DbRef::read`] without using the key: for commands that look at a key without
    /// touching it (TYPE, TTL, OBJECT, as in Redis).
    pub fn peek<R>(&self, key: &[u8], f: impl FnOnce(Option<&Entry>) -> R) -> R {
        let mut shard = self.shard(key);
        let entry = shard.live(key, self.now);
        let hit = entry.is_some();
        let result = f(entry);
        shard.stats.count_lookup(hit);
        result
    }

    /// Runs `f` with write access to `key`'s slot.
    pub fn write<R>(&self, key: &[u8], f: impl FnOnce(&mut Slot<'_>) -> R) -> R {
        let mut shard = self.shard(key);
        let mut marks = Marks::default();
        let journal = self.journal();
        let all = journal.is_some() && self.keyspace.journals_all();
        let result = f(&mut Slot {
            shard: &mut shard,
            key,
            now: self.now,
            clock: self.clock,
            journal,
            all,
            marks: &mut marks,
        });
        if marks.dirty {
            self.count_changes(1);
            let now = self.now;
            self.journal_write(
                all,
                false,
                &[(key, marks)],
                |key, f| f(shard.live(key, now)),
            );
        }
        result
    }

    /// Locks the shards of all `keys` (ascending shard order) and runs `f` with a view
    /// that can read and write any of them: multi-key commands are atomic.
    pub fn write_many<R>(&self, keys: &[&[u8]], f: impl FnOnce(&mut Multi<'_, 'a>) -> R) -> R {
        let mut ids: Vec<usize> = keys.iter().map(|k| self.keyspace.shard_of(k)).collect();
        ids.sort_unstable();
        ids.dedup();
        let guards: Vec<(usize, MutexGuard<'a, Shard>)> = ids
            .into_iter()
            .map(|i| (i, self.db.shards[i].lock()))
            .collect();
        let all = self.journal().is_some() && self.keyspace.journals_all();
        let mut multi = Multi {
            db: self,
            guards,
            keys,
            marks: vec![Marks::default(); keys.len()],
            cursor: 0,
            all,
        };
        let result = f(&mut multi);
        let Multi {
            mut guards, marks, ..
        } = multi;
        let mut dirty: Vec<(&[u8], Marks)> = Vec::new();
        for (key, m) in keys.iter().zip(marks) {
            // A key named twice is one key.
            if m.dirty {
                match dirty.iter_mut().find(|(k, _)| k == key) {
                    Some((_, d)) => {
                        d.stream |= m.stream;
                        d.overridden |= m.overridden;
                    }
                    None => dirty.push((key, m)),
                }
            }
        }
        if !dirty.is_empty() {
            self.count_changes(dirty.len());
            let multi_key = keys.iter().any(|k| *k != keys[0]);
            let now = self.now;
            self.journal_write(all, multi_key, &dirty, |key, f| {
                let id = self.keyspace.shard_of(key);
                let shard = guards
                    .iter_mut()
                    .find(|(i, _)| *i == id)
                    .map(|(_, g)| &mut **g)
                    .expect("key was locked by write_many");
                f(shard.live(key, now));
            });
        }
        result
    }

    fn count_changes(&self, n: usize) {
        self.keyspace.changes[thread_stripe()]
            .0
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// After a write call that changed `dirty` keys, under its locks: journals it as its
    /// command when it can ([`origin`]), else as the state each key was left in. Keys
    /// holding streams are journaled by the stream operations themselves.
    fn journal_write(
        &self,
        all: bool,
        multi_key: bool,
        dirty: &[(&[u8], Marks)],
        mut with_entry: impl FnMut(&[u8], &mut dyn FnMut(Option<&Entry>)),
    ) {
        let (Some((journal, db)), true) = (self.journal(), all) else {
            origin::on_write(None::<fn(&[bytes::Bytes])>);
            return;
        };
        let exact = self
            .keyspace
            .exact
            .load(std::sync::atomic::Ordering::SeqCst);
        let now = self.now;
        let mut command_ok = !(exact && multi_key);
        for (key, marks) in dirty {
            if marks.stream || marks.overridden {
                command_ok = false;
            }
            with_entry(key, &mut |e| {
                if e.is_some_and(|e| matches!(e.value, Value::Stream(_))) {
                    command_ok = false;
                }
            });
        }
        let journaled = origin::on_write(
            command_ok.then_some(|args: &[bytes::Bytes]| journal.command(db, now, args)),
        );
        if journaled {
            return;
        }
        for (key, marks) in dirty {
            if marks.stream || marks.overridden {
                continue;
            }
            with_entry(key, &mut |e| match e {
                Some(e) if matches!(e.value, Value::Stream(_)) => {}
                Some(e) => journal.value(db, now, key, e),
                None => journal.deleted(db, now, key),
            });
        }
    }

    /// Visits every shard in order, for KEYS, RANDOMKEY and DBSIZE.
    pub fn for_each_shard(&self, mut f: impl FnMut(usize, &mut ShardView<'_>) -> bool) {
        for (i, shard) in self.db.shards.iter().enumerate() {
            let mut guard = shard.lock();
            let mut view = ShardView {
                shard: &mut guard,
                now: self.now,
            };
            if !f(i, &mut view) {
                break;
            }
        }
    }

    /// Runs `f` on shard `index` (of [`SHARDS`]) alone, under its lock: a snapshot
    /// records a shard's keys there, so every later change to them comes after.
    pub fn visit_shard<R>(&self, index: usize, f: impl FnOnce(&ShardView<'_>) -> R) -> R {
        self.with_shard(index, f)
    }

    /// Number of keys in shard `index` (expired ones not yet reclaimed included).
    pub fn shard_len(&self, index: usize) -> usize {
        self.db.shards[index].lock().len()
    }

    /// Runs `f` on the live entries of shard `index` whose hash falls in the `part`-th of
    /// `parts` equal slices of the shard's hash space, under the shard's lock. A snapshot
    /// takes a large shard in parts, so a command on the shard waits for one part's
    /// encoding, not the whole shard's; a key present throughout is in exactly one part
    /// (its hash is fixed), and every change to it after its part was visited comes
    /// after its record.
    pub fn visit_shard_part<R>(
        &self,
        index: usize,
        part: u64,
        parts: u64,
        f: impl FnOnce(&mut dyn Iterator<Item = (&[u8], &Entry)>) -> R,
    ) -> R {
        let parts = parts.max(1);
        let span = keys::HASH_SPACE / parts + 1;
        let from = part.saturating_mul(span);
        let to = if part + 1 >= parts {
            u64::MAX
        } else {
            from.saturating_add(span)
        };
        self.with_shard(index, |view| {
            f(&mut view
                .live_entries()
                .filter(|(key, _)| (from..to).contains(&(self.key_hash(key) >> keys::SHARD_BITS))))
        })
    }

    /// Runs `f` on shard `index` alone: SCAN resumes an iteration at a given shard.
    pub(crate) fn with_shard<R>(&self, index: usize, f: impl FnOnce(&ShardView<'_>) -> R) -> R {
        let mut guard = self.db.shards[index].lock();
        f(&ShardView {
            shard: &mut guard,
            now: self.now,
        })
    }

    /// The full 64-bit hash of `key` whose low bits pick its shard. It is fixed for the
    /// life of the keyspace, so SCAN orders the keys of a shard by its high bits.
    pub(crate) fn key_hash(&self, key: &[u8]) -> u64 {
        self.keyspace.hasher.hash_one(key)
    }

    /// Empties this database beside other writers (FLUSHDB runs
    /// [`Exclusive::flush_db`], journaled as one record).
    pub fn flush(&self) {
        let journal = self.journal();
        let all = self.keyspace.journals_all();
        for shard in self.db.shards.iter() {
            let mut shard = shard.lock();
            // Each deletion is journaled under its shard's lock, so the journal's order
            // is the keyspace's.
            if let Some((journal, db)) = journal {
                for (key, entry) in shard.iter() {
                    if all || matches!(entry.value, Value::Stream(_)) {
                        journal.deleted(db, self.now, key);
                    }
                }
            }
            shard.clear();
        }
    }

    /// WATCH: starts tracking modifications of `key` and returns its version now. Every
    /// write to the key (set, change, delete, expiry, flush) moves the version on, so a
    /// transaction compares it at EXEC with [`DbRef::watched_version`]. Each call must
    /// be paired with an [`DbRef::unwatch`].
    ///
    /// A key already past its deadline is removed first, as a read would: WATCH then
    /// sees it absent, and its expiry is no modification (Redis 7 notes `expired` on
    /// such a watch and ignores the key's deletion).
    pub fn watch(&self, key: &[u8]) -> u64 {
        let mut shard = self.shard(key);
        let _ = shard.live(key, self.now);
        shard.watch(key)
    }

    /// The version of a watched key now.
    pub fn watched_version(&self, key: &[u8]) -> u64 {
        let mut shard = self.shard(key);
        // A deadline that passed is a modification, as Redis counts it at EXEC.
        let _ = shard.live(key, self.now);
        shard.watched_version(key)
    }

    /// Stops one WATCH of `key`.
    pub fn unwatch(&self, key: &[u8]) {
        self.shard(key).unwatch(key);
    }
}

/// INFO stats the engine counts (Redis's `keyspace_hits`, `keyspace_misses`,
/// `expired_keys`): a lookup by [`DbRef::read`] or [`DbRef::peek`] that found a live key
/// is a hit, one that found none a miss; every key removed for its deadline, lazily or
/// by the active cycle, is expired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeyspaceStats {
    /// Lookups that found the key.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Keys removed because their deadline passed.
    pub expired: u64,
}

impl KeyspaceStats {
    /// Both counts together.
    #[must_use]
    pub fn plus(self, other: Self) -> Self {
        Self {
            hits: self.hits + other.hits,
            misses: self.misses + other.misses,
            expired: self.expired + other.expired,
        }
    }

    /// What was counted after `base` was taken (zero where `base` is ahead).
    #[must_use]
    pub fn since(self, base: Self) -> Self {
        Self {
            hits: self.hits.saturating_sub(base.hits),
            misses: self.misses.saturating_sub(base.misses),
            expired: self.expired.saturating_sub(base.expired),
        }
    }

    fn count_lookup(&mut self, hit: bool) {
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
    }
}

/// What a write call did to one key, for the journal.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Marks {
    /// Changed (conservatively: handed out for change).
    dirty: bool,
    /// A stream record was journaled for the key.
    stream: bool,
    /// The operation journaled its own effect ([`Slot::journal_set_removed`]).
    overridden: bool,
}

/// Write access to one key's slot in its (locked) shard.
pub struct Slot<'s> {
    shard: &'s mut Shard,
    key: &'s [u8],
    now: u64,
    clock: evict::Clocking,
    /// The journal and this database's index, when a journal is installed.
    journal: Option<(&'s dyn Journal, usize)>,
    /// Every write is journaled (read once per write call).
    all: bool,
    marks: &'s mut Marks,
}

impl std::fmt::Debug for Slot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

impl Slot<'_> {
    /// The live entry, if any, for changing it in place. When there is one, counts as a
    /// modification for WATCH (conservatively: also when the caller then changes
    /// nothing); a missing key changes only through [`Slot::put`].
    pub fn get(&mut self) -> Option<&mut Entry> {
        if self.shard.is_watched(self.key) && self.shard.live(self.key, self.now).is_some() {
            self.shard.touch(self.key);
        }
        let entry = self.shard.used(self.key, self.now, self.clock);
        // A missing key changes only through `put`. (An expired one was just removed:
        // replay removes it the same way, at the same time.)
        self.marks.dirty |= entry.is_some();
        entry
    }

    /// The live entry, if any, for changing it in place, without counting as a
    /// modification for WATCH: the caller calls [`Slot::touch`] when it changes what
    /// WATCH watches (streams: entries, not group state — as Redis counts it).
    pub fn get_quiet(&mut self) -> Option<&mut Entry> {
        let entry = self.shard.used(self.key, self.now, self.clock);
        self.marks.dirty |= entry.is_some();
        entry
    }

    /// The live entry, if any, to look at: neither a modification nor a use.
    pub(crate) fn peek(&mut self) -> Option<&Entry> {
        self.shard.live(self.key, self.now)
    }

    /// Counts a modification of the key for WATCH.
    pub fn touch(&mut self) {
        self.marks.dirty = true;
        self.shard.touch(self.key);
    }

    /// Stores `value` with `expire_at`, replacing any entry. The key is copied.
    pub fn put(&mut self, value: Value, expire_at: Option<u64>) {
        self.marks.dirty = true;
        let Some((journal, db)) = self.journal else {
            self.shard.put(self.key, value, expire_at, self.clock);
            return;
        };
        if let Value::Stream(stream) = &value {
            journal.stream_replaced(db, self.now, self.key, stream, expire_at);
            self.marks.stream = true;
        }
        let is_stream = matches!(value, Value::Stream(_));
        if self.shard.put(self.key, value, expire_at, self.clock) && !is_stream {
            journal.deleted(db, self.now, self.key);
        }
    }

    /// Removes the entry; true if a live one was there.
    pub fn remove(&mut self) -> Option<Entry> {
        self.shard.live(self.key, self.now)?;
        let entry = self.shard.remove(self.key)?;
        self.marks.dirty = true;
        if let (Some((journal, db)), Value::Stream(_)) = (self.journal, &entry.value) {
            journal.deleted(db, self.now, self.key);
            self.marks.stream = true;
        }
        Some(entry)
    }

    /// Sets or clears the deadline of the live entry; false if there is none.
    pub fn set_expire(&mut self, expire_at: Option<u64>) -> bool {
        if self.shard.live(self.key, self.now).is_none() {
            return false;
        }
        self.marks.dirty = true;
        self.shard.set_expire(self.key, expire_at);
        if let Some((journal, db)) = self.journal {
            if matches!(
                self.shard.live(self.key, self.now).map(|e| &e.value),
                Some(Value::Stream(_))
            ) {
                journal.stream_expire(db, self.now, self.key, expire_at);
                self.marks.stream = true;
            }
        }
        true
    }

    /// Journals the removal of these members from the set here, in place of the command
    /// (SPOP: replaying a random choice would choose again).
    pub fn journal_set_removed(&mut self, members: &[bytes::Bytes]) {
        let Some((journal, db)) = self.journal else {
            return;
        };
        if members.is_empty() {
            return;
        }
        self.marks.dirty = true;
        self.marks.overridden = true;
        if self.all {
            journal.set_removed(db, self.now, self.key, members);
        }
    }

    /// The time of the command, in ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.now
    }
}

/// Several keys' shards, locked together.
pub struct Multi<'m, 'a> {
    db: &'m DbRef<'a>,
    guards: Vec<(usize, MutexGuard<'a, Shard>)>,
    /// The keys given to `write_many`, and what was done to each.
    keys: &'m [&'m [u8]],
    marks: Vec<Marks>,
    /// Where the last slot's key was found (commands visit keys in order).
    cursor: usize,
    all: bool,
}

impl std::fmt::Debug for Multi<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Multi")
    }
}

impl Multi<'_, '_> {
    /// The slot of `key`, which must be one of the keys given to `write_many`.
    ///
    /// # Panics
    /// If `key` was not among them: a bug in the calling command.
    pub fn slot<'k>(&'k mut self, key: &'k [u8]) -> Slot<'k> {
        let id = self.db.keyspace.shard_of(key);
        let now = self.db.now;
        let journal = self.db.journal();
        let shard = self
            .guards
            .iter_mut()
            .find(|(i, _)| *i == id)
            .map(|(_, g)| &mut **g)
            .expect("key was locked by write_many");
        let n = self.keys.len();
        let at = (0..n)
            .map(|i| (self.cursor + i) % n)
            .find(|&i| self.keys[i] == key)
            .expect("key was given to write_many");
        self.cursor = at + 1;
        Slot {
            shard,
            key,
            now,
            clock: self.db.clock,
            journal,
            all: self.all,
            marks: &mut self.marks[at],
        }
    }
}

/// Read access to one shard while iterating a database.
pub struct ShardView<'s> {
    shard: &'s mut Shard,
    now: u64,
}

impl std::fmt::Debug for ShardView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardView")
    }
}

impl ShardView<'_> {
    /// Live keys of this shard, with their entries.
    pub fn live_entries(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        let now = self.now;
        self.shard.iter().filter(move |(_, e)| !e.is_expired(now))
    }

    /// Number of keys (including expired ones not yet reclaimed).
    pub fn len(&self) -> usize {
        self.shard.len()
    }

    /// Whether the shard holds no keys.
    pub fn is_empty(&self) -> bool {
        self.shard.len() == 0
    }
}

#[cfg(test)]
mod tests;
