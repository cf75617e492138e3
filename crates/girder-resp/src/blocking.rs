//! Blocking pops of lists (BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH) and sorted sets
//! (BZPOPMIN, BZPOPMAX, BZMPOP), and blocking stream reads (XREAD BLOCK; see the
//! "Streams" section below for how readers are served and how XREADGROUP plugs in): the
//! registry of clients waiting for keys, and the hand-off that serves them.
//!
//! A command that finds every key empty registers a waiter under each of its keys and
//! hands the connection loop a [`Wait`]; the connection stops executing commands until the
//! wait ends. Every command that pushes to a list or adds members to a sorted set calls
//! [`Blocking::pushed`] afterwards, which pops on behalf of the waiters of that key, oldest
//! first, and sends each its reply.
//!
//! Invariants:
//! - Waiters on a key are served in the order they blocked, each at most once; a key
//!   serves only the waiters that pop its type (a list waiter queued first does not hold
//!   up a sorted set waiter on the same key, as in Redis). A stream key is offered to
//!   every stream reader queued on it, in that order (reading consumes nothing).
//! - Serving and cancelling (timeout, disconnection) both happen under the registry lock,
//!   so an element is never popped for a waiter that has already given up.
//! - No wake-up is lost: a waiter counts itself in `waiting` and retries its pop under the
//!   registry lock before it sleeps; a push reads `waiting` after its write, so either the
//!   retry sees the element or the push sees the waiter (both accesses are `SeqCst`).
//! - Lock order is registry, then keyspace: callers never hold a `DbRef` while calling in.
//! - A push costs one atomic load when nobody waits.

use crate::codec::{Protocol, Reply};
use crate::commands::kv_error;
use bytes::Bytes;
use girder_kv::lists::{self as kv, End};
use girder_kv::streams::entries as streams;
use girder_kv::zsets::{self, Scored};
use girder_kv::{DbRef, Keyspace};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What a blocked command does once one of its keys has elements.
#[derive(Debug, Clone)]
pub enum BlockedOp {
    /// BLPOP / BRPOP: one element, replied as `[key, element]`.
    Pop(End),
    /// BLMPOP: up to `count` elements, replied as `[key, [elements]]`.
    MultiPop(End, usize),
    /// BLMOVE / BRPOPLPUSH: moves one element to `destination`, replied as the element.
    Move {
        /// Where the element goes.
        destination: Bytes,
        /// The end it is popped from.
        from: End,
        /// The end it is pushed to.
        to: End,
    },
    /// BZPOPMIN / BZPOPMAX / BZMPOP: up to `count` members from the low (or high) end.
    ZsetPop {
        /// Pops the highest scores.
        max: bool,
        /// Members to pop at most.
        count: usize,
        /// The waiting client's protocol, for the scores.
        protocol: Protocol,
        /// Shapes the reply from the key and the popped members: the command's own form.
        reply: fn(Protocol, Bytes, Scored) -> Reply,
    },
}

/// The reply of a pop that happened (or of its error), and the key it pushed to, if any
/// (BLMOVE), whose own waiters may now be served.
struct Served {
    reply: Reply,
    pushed: Option<Bytes>,
}

impl BlockedOp {
    /// Runs the operation on the first of `keys` that exists; `None` when none does. An
    /// error (WRONGTYPE) is served as the reply.
    fn attempt(&self, db: &DbRef<'_>, keys: &[Bytes]) -> Option<Served> {
        let served = |reply, pushed| Some(Served { reply, pushed });
        match self {
            Self::Pop(end) | Self::MultiPop(end, _) => {
                let count = match self {
                    Self::MultiPop(_, count) => *count,
                    _ => 1,
                };
                let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
                let (at, mut items) = match kv::mpop(db, &refs, *end, count) {
                    Ok(popped) => popped?,
                    Err(e) => return served(kv_error(e), None),
                };
                let key = Reply::Bulk(keys[at].clone());
                let reply = match self {
                    Self::MultiPop(..) => Reply::Array(vec![
                        key,
                        Reply::Array(items.into_iter().map(Reply::Bulk).collect()),
                    ]),
                    _ => Reply::Array(vec![key, items.pop().map_or(Reply::Null, Reply::Bulk)]),
                };
                served(reply, None)
            }
            Self::Move {
                destination,
                from,
                to,
            } => match kv::lmove(db, &keys[0], destination, *from, *to) {
                Ok(item) => served(Reply::Bulk(item?), Some(destination.clone())),
                Err(e) => served(kv_error(e), None),
            },
            Self::ZsetPop {
                max,
                count,
                protocol,
                reply,
            } => {
                let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
                match zsets::mpop(db, &refs, *max, *count) {
                    Ok(popped) => {
                        let (key, items) = popped?;
                        served(reply(*protocol, key, items), None)
                    }
                    Err(e) => served(kv_error(e), None),
                }
            }
        }
    }

    /// Whether the operation pops sorted sets (else lists).
    fn pops_sorted_set(&self) -> bool {
        matches!(self, Self::ZsetPop { .. })
    }
}

/// One attempt at `op` on `keys` of database `db`: `None` when every key is empty.
fn attempt(keyspace: &Keyspace, db: usize, keys: &[Bytes], op: &BlockedOp) -> Option<Served> {
    match keyspace.db(db) {
        Ok(handle) => op.attempt(&handle, keys),
        Err(e) => Some(Served {
            reply: kv_error(e),
            pushed: None,
        }),
    }
}

/// What [`Blocking::block`] decided.
#[derive(Debug)]
pub enum Blocked {
    /// The command completed (served, or an error): its reply.
    Now(Reply),
    /// The client waits.
    Later(Wait),
}

/// A registered waiter, held by its connection until the wait ends.
#[derive(Debug)]
pub struct Wait {
    id: u64,
    reply: oneshot::Receiver<Reply>,
    deadline: Option<Instant>,
}

struct Waiter {
    db: usize,
    keys: Vec<Bytes>,
    op: WaitOp,
    reply: oneshot::Sender<Reply>,
}

/// What a waiter does when served: pop a list or sorted set, or read streams.
enum WaitOp {
    Pop(BlockedOp),
    Stream(Box<dyn StreamRead>),
}

impl WaitOp {
    /// Whether this waiter pops the type a key holds: `Some(true)` a sorted set,
    /// `Some(false)` a list, `None` for a stream reader.
    fn pops_sorted_set(&self) -> Option<bool> {
        match self {
            Self::Pop(op) => Some(op.pops_sorted_set()),
            Self::Stream(_) => None,
        }
    }
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    /// Waiter ids per (database, key), oldest first.
    queues: HashMap<(usize, Bytes), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
}

/// The clients blocked on list and sorted set keys, server-wide.
#[derive(Default)]
pub struct Blocking {
    /// Registered waiters (and ones registering): pushes skip the lock when it is 0.
    waiting: AtomicUsize,
    registry: Mutex<Registry>,
}

impl std::fmt::Debug for Blocking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocking")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

impl Blocking {
    /// Runs `op` on `keys` of database `db` now if one has elements, else registers the
    /// client to be served later. `timeout` `None` waits forever. The keys are copied: a
    /// waiter must not pin the request buffer.
    pub fn block(
        &self,
        keyspace: &Keyspace,
        db: usize,
        keys: &[Bytes],
        op: BlockedOp,
        timeout: Option<Duration>,
    ) -> Blocked {
        // Without the registry lock first: the common case of a non-empty list.
        if let Some(done) = self.try_now(keyspace, db, keys, &op) {
            return Blocked::Now(done);
        }
        let mut registry = self.registry.lock();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        if let Some(done) = attempt(keyspace, db, keys, &op) {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            drop(registry);
            if let Some(key) = done.pushed {
                self.pushed(keyspace, db, &key);
            }
            return Blocked::Now(done.reply);
        }
        Blocked::Later(registry.register(db, keys, WaitOp::Pop(op), timeout))
    }

    /// One attempt at `op` that neither registers nor announces: for EXEC, where nothing
    /// blocks, and where taking the registry lock inside the exclusive section could
    /// deadlock with a `pushed` that holds it and waits for the keyspace. Returns the
    /// reply and the key a move pushed to (to announce after the exclusive section).
    pub fn attempt_once(
        &self,
        keyspace: &Keyspace,
        db: usize,
        keys: &[Bytes],
        op: &BlockedOp,
    ) -> Option<(Reply, Option<Bytes>)> {
        attempt(keyspace, db, keys, op).map(|done| (done.reply, done.pushed))
    }

    /// One attempt at `op`, announcing a move's destination as any push is.
    fn try_now(
        &self,
        keyspace: &Keyspace,
        db: usize,
        keys: &[Bytes],
        op: &BlockedOp,
    ) -> Option<Reply> {
        let done = attempt(keyspace, db, keys, op)?;
        if let Some(key) = done.pushed {
            self.pushed(keyspace, db, &key);
        }
        Some(done.reply)
    }

    /// Announces that a command pushed to `key` of database `db` (or added members to the
    /// sorted set there): serves its waiters, oldest first, while the key has elements.
    /// Call with no `DbRef` held.
    pub fn pushed(&self, keyspace: &Keyspace, db: usize, key: &[u8]) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        // Serving waiters is not the pushing command's work: journaled as the state
        // it leaves.
        girder_kv::origin::detached(|| self.serve_pushed(keyspace, db, key));
    }

    fn serve_pushed(&self, keyspace: &Keyspace, db: usize, key: &[u8]) {
        let mut registry = self.registry.lock();
        // A served move pushes in turn: its destination joins the keys to serve.
        let mut ready = vec![Bytes::copy_from_slice(key)];
        while let Some(key) = ready.pop() {
            while let Some(served) = registry.serve_one(keyspace, db, &key) {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                ready.extend(served);
            }
            let served = registry.serve_streams(keyspace, db, &key);
            self.waiting.fetch_sub(served, Ordering::SeqCst);
        }
    }

    /// The keys clients wait on, in database `db` (every database when `None`): FLUSHDB,
    /// FLUSHALL and SWAPDB change keys without naming them, and announce these instead.
    pub fn waiting_keys(&self, db: Option<usize>) -> Vec<(usize, Bytes)> {
        if !self.anyone_waiting() {
            return Vec::new();
        }
        let registry = self.registry.lock();
        registry
            .queues
            .keys()
            .filter(|(d, _)| db.is_none_or(|db| *d == db))
            .cloned()
            .collect()
    }

    /// Whether any client is blocked (one atomic load).
    pub fn anyone_waiting(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    /// Forgets waiter `id`; false if it was served first.
    fn cancel(&self, id: u64) -> bool {
        let mut registry = self.registry.lock();
        let removed = registry.remove(id).is_some();
        if removed {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        removed
    }
}

impl Registry {
    /// Serves the oldest waiter on `key` that pops the type the key holds (a list or a
    /// sorted set). Returns `None` when nobody was served, else the key the served command
    /// pushed to, if any.
    fn serve_one(&mut self, keyspace: &Keyspace, db: usize, key: &Bytes) -> Option<Option<Bytes>> {
        let queue = self.queues.get(&(db, key.clone()))?;
        let handle = keyspace.db(db).ok()?;
        // Only a list or sorted set with elements serves: a key of another type waits on.
        let sorted_set = if matches!(kv::len(&handle, key), Ok(n) if n > 0) {
            false
        } else if matches!(zsets::card(&handle, key), Ok(n) if n > 0) {
            true
        } else {
            return None;
        };
        let id = queue
            .iter()
            .copied()
            .find(|id| self.waiters[id].op.pops_sorted_set() == Some(sorted_set))?;
        let WaitOp::Pop(op) = &self.waiters[&id].op else {
            return None;
        };
        // A BLMOVE whose destination is no longer a list is served its error.
        let served = op.attempt(&handle, std::slice::from_ref(key))?;
        drop(handle);
        let waiter = self.remove(id).expect("queued waiters are registered");
        // A connection removes its waiter before dropping the receiver; only a task
        // dropped mid-wait (at shutdown) loses the element, as a reply to a closing
        // socket would be lost.
        let _ = waiter.reply.send(served.reply);
        Some(served.pushed)
    }

    /// Registers a waiter on `keys` (copied: a waiter must not pin the request buffer).
    fn register(
        &mut self,
        db: usize,
        keys: &[Bytes],
        op: WaitOp,
        timeout: Option<Duration>,
    ) -> Wait {
        let keys: Vec<Bytes> = keys.iter().map(|k| Bytes::copy_from_slice(k)).collect();
        let id = self.next_id;
        self.next_id += 1;
        for key in &keys {
            let queue = self.queues.entry((db, key.clone())).or_default();
            // A key given twice takes one place in the queue.
            if queue.back() != Some(&id) {
                queue.push_back(id);
            }
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.insert(
            id,
            Waiter {
                db,
                keys,
                op,
                reply: tx,
            },
        );
        Wait {
            id,
            reply: rx,
            deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
        }
    }

    fn remove(&mut self, id: u64) -> Option<Waiter> {
        let waiter = self.waiters.remove(&id)?;
        for key in &waiter.keys {
            let slot = (waiter.db, key.clone());
            if let Some(queue) = self.queues.get_mut(&slot) {
                queue.retain(|w| *w != id);
                if queue.is_empty() {
                    self.queues.remove(&slot);
                }
            }
        }
        Some(waiter)
    }
}

impl Blocking {
    /// Gives a wait up at once (a blocking command inside EXEC). If it was served in the
    /// meantime the element stays popped for nobody, which cannot happen inside EXEC:
    /// pushes there are announced only after the transaction.
    pub fn abandon(&self, wait: Wait) {
        let _ = self.cancel(wait.id);
    }
}

impl Wait {
    /// Waits until the command is served (its reply), times out (a null array, as Redis
    /// replies to every timed-out list or sorted set pop), or `interrupted` completes (`None`: the
    /// connection is going away).
    pub async fn finish(
        mut self,
        blocking: &Blocking,
        interrupted: impl Future<Output = ()>,
        unblocked: impl Future<Output = Reply>,
    ) -> Option<Reply> {
        let deadline = self.deadline;
        let timeout = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let given_up = tokio::select! {
            reply = &mut self.reply => return reply.ok(),
            () = timeout => Some(Reply::NullArray),
            () = interrupted => None,
            // CLIENT UNBLOCK: a timeout's reply, or its error.
            reply = unblocked => Some(reply),
        };
        if blocking.cancel(self.id) {
            return given_up;
        }
        // Served while giving up: the reply is already in the channel.
        let served = self.reply.try_recv().ok();
        given_up.and(served)
    }
}

// Streams ---------------------------------------------------------------------------
//
// Clients blocked reading streams (XREAD BLOCK; XREADGROUP BLOCK plugs in the same way)
// share the registry with the pops above: the same queues per (database, key), ids,
// [`Wait`], timeout and cancellation. What differs is serving: reading a stream consumes
// nothing, so a key that received entries offers them to *every* stream reader queued on
// it, oldest first, each deciding by itself whether it is served ([`StreamRead::serve`]);
// the pops' rule (one element to the oldest popper) does not apply to them.
//
// How a stream command blocks (XREAD is the model, `commands/streams.rs`):
// 1. Parse and validate everything, and resolve what "new" means *now* (XREAD's `$` is
//    the stream's last id at the time of the command), so a retry gives the same answer.
// 2. Build a value implementing [`StreamRead`] that owns those resolved arguments and the
//    client's protocol.
// 3. Without BLOCK, or inside EXEC (nothing blocks there, as in Redis), call its `serve`
//    once with `ready: None` and reply a null array when it returns `None`. With BLOCK,
//    call [`Blocking::block_stream`] and hand a [`Blocked::Later`] wait to the connection
//    (`ctx.client.blocked = Some(wait)`, as `commands/lists.rs` `block` does).
// 4. Every command that adds entries to a stream calls `announce_push` (in
//    `commands/lists.rs`) after its write: it calls [`Blocking::pushed`] (deferred to the
//    end of EXEC inside a transaction), which serves the stream readers of that key. A
//    command that should wake readers to report an error (XGROUP DESTROY → NOGROUP) calls
//    it too: `serve` decides what the reader gets.
//
// How XREADGROUP plugs in: GROUPS defines in `commands/stream_groups.rs` a struct (e.g.
// `GroupRead { group, consumer, noack, count, protocol }`) and implements
// [`StreamRead`] for it; with `ready: None` it does the `>` read on all its keys, with
// `ready: Some(key)` it reads the entries after the group's `last_id` in that key (and
// returns `Some(NOGROUP error)` when the group is gone). Its `serve` changes the group
// through girder-kv (PEL, cursor, consumer) and journals there, under the key's lock, as
// any command does. Nothing in this file needs to change.

/// A client blocked reading streams: knows how to serve itself from the keyspace.
///
/// `serve` runs under the registry lock, with no `DbRef` held by the caller: it may read
/// and write the keyspace (a consumer group read delivers entries) but must not call back
/// into [`Blocking`].
pub trait StreamRead: Send + 'static {
    /// Tries to serve the client from `keys` of `db` (the command's keys, in its order).
    /// `ready` is `None` for the attempt made when the command runs (every key may
    /// answer), or the key, one of `keys`, that just received entries (Redis then replies
    /// with that key alone). Returns the reply that ends the wait, or `None` to keep
    /// waiting. `ready` is only ever a key that holds a stream.
    fn serve(&self, db: &DbRef<'_>, keys: &[Bytes], ready: Option<&Bytes>) -> Option<Reply>;

    /// The reply that ends the wait when a key it waits on no longer holds a stream
    /// (deleted, expired, or overwritten by another type); `None` keeps waiting (XREAD,
    /// which Redis leaves blocked).
    fn key_gone(&self) -> Option<Reply> {
        None
    }
}

impl Blocking {
    /// Serves `read` on `keys` of database `db` now if it can be, else registers it to be
    /// served when one of its keys receives entries. `timeout` `None` waits forever.
    /// Not for use inside EXEC (nothing blocks there: call `serve` once instead).
    pub fn block_stream(
        &self,
        keyspace: &Keyspace,
        db: usize,
        keys: &[Bytes],
        read: Box<dyn StreamRead>,
        timeout: Option<Duration>,
    ) -> Blocked {
        let attempt = |read: &dyn StreamRead| match keyspace.db(db) {
            Ok(handle) => read.serve(&handle, keys, None),
            Err(e) => Some(kv_error(e)),
        };
        // Without the registry lock first: the common case of entries already there.
        if let Some(reply) = attempt(&*read) {
            return Blocked::Now(reply);
        }
        let mut registry = self.registry.lock();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Entries added since the first attempt were announced to nobody: retry.
        if let Some(reply) = attempt(&*read) {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Blocked::Now(reply);
        }
        Blocked::Later(registry.register(db, keys, WaitOp::Stream(read), timeout))
    }
}

impl Registry {
    /// Offers `key` of `db` to its stream readers, oldest first, if it holds a stream.
    /// Returns how many were served (and removed).
    fn serve_streams(&mut self, keyspace: &Keyspace, db: usize, key: &Bytes) -> usize {
        let Some(queue) = self.queues.get(&(db, key.clone())) else {
            return 0;
        };
        let readers: Vec<u64> = queue
            .iter()
            .copied()
            .filter(|id| matches!(self.waiters[id].op, WaitOp::Stream(_)))
            .collect();
        if readers.is_empty() {
            return 0;
        }
        let Ok(handle) = keyspace.db(db) else {
            return 0;
        };
        // Only a stream serves stream readers. A key that holds none any more ends the
        // waits of the readers that say so (consumer groups), in order.
        if !matches!(streams::exists(&handle, key), Ok(true)) {
            let mut served = 0;
            for id in readers {
                let WaitOp::Stream(read) = &self.waiters[&id].op else {
                    continue;
                };
                let Some(reply) = read.key_gone() else {
                    continue;
                };
                let waiter = self.remove(id).expect("queued waiters are registered");
                let _ = waiter.reply.send(reply);
                served += 1;
            }
            return served;
        }
        let mut served = 0;
        for id in readers {
            let waiter = &self.waiters[&id];
            let WaitOp::Stream(read) = &waiter.op else {
                continue;
            };
            let Some(reply) = read.serve(&handle, &waiter.keys, Some(key)) else {
                continue;
            };
            let waiter = self.remove(id).expect("queued waiters are registered");
            // As for pops: only a task dropped mid-wait loses the reply.
            let _ = waiter.reply.send(reply);
            served += 1;
        }
        served
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use girder_kv::SystemClock;
    use std::sync::Arc;

    fn keyspace() -> Keyspace {
        Keyspace::new(Arc::new(SystemClock), 1 << 20)
    }

    fn wait_on(
        blocking: &Blocking,
        keyspace: &Keyspace,
        key: &str,
        timeout: Option<Duration>,
    ) -> Wait {
        match blocking.block(
            keyspace,
            0,
            &[Bytes::from(key.to_owned())],
            BlockedOp::Pop(End::Left),
            timeout,
        ) {
            Blocked::Later(wait) => wait,
            Blocked::Now(reply) => panic!("served at once: {reply:?}"),
        }
    }

    fn push(blocking: &Blocking, keyspace: &Keyspace, key: &str, items: &[&str]) {
        kv::push(
            &keyspace.db(0).unwrap(),
            key.as_bytes(),
            End::Right,
            items,
            false,
        )
        .unwrap();
        blocking.pushed(keyspace, 0, key.as_bytes());
    }

    fn popped(key: &str, item: &str) -> Reply {
        Reply::Array(vec![
            Reply::Bulk(Bytes::from(key.to_owned())),
            Reply::Bulk(Bytes::from(item.to_owned())),
        ])
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn waiters_are_served_oldest_first_one_element_each() {
        let (blocking, keyspace) = (Blocking::default(), keyspace());
        let mut first = wait_on(&blocking, &keyspace, "k", None);
        let mut second = wait_on(&blocking, &keyspace, "k", None);
        push(&blocking, &keyspace, "k", &["a"]);
        assert_eq!(first.reply.try_recv().ok(), Some(popped("k", "a")));
        assert!(
            second.reply.try_recv().is_err(),
            "nothing left for the second"
        );
        assert_eq!(blocking.waiting.load(Ordering::SeqCst), 1);
        push(&blocking, &keyspace, "k", &["b", "c"]);
        assert_eq!(second.reply.try_recv().ok(), Some(popped("k", "b")));
        assert_eq!(blocking.waiting.load(Ordering::SeqCst), 0);
        assert_eq!(kv::len(&keyspace.db(0).unwrap(), b"k"), Ok(1), "c stays");
        assert!(blocking.registry.lock().queues.is_empty());
    }

    #[test]
    fn a_waiter_that_gave_up_takes_nothing() {
        let (blocking, keyspace) = (Blocking::default(), keyspace());
        let wait = wait_on(&blocking, &keyspace, "k", None);
        let outcome = runtime().block_on(wait.finish(
            &blocking,
            std::future::ready(()),
            std::future::pending(),
        ));
        assert_eq!(outcome, None);
        push(&blocking, &keyspace, "k", &["a"]);
        assert_eq!(kv::len(&keyspace.db(0).unwrap(), b"k"), Ok(1));
        assert_eq!(blocking.waiting.load(Ordering::SeqCst), 0);
        assert!(blocking.registry.lock().waiters.is_empty());
    }

    #[test]
    fn a_waiter_served_as_its_deadline_passes_gets_the_element() {
        let (blocking, keyspace) = (Blocking::default(), keyspace());
        let wait = wait_on(&blocking, &keyspace, "k", Some(Duration::from_millis(1)));
        push(&blocking, &keyspace, "k", &["a"]);
        std::thread::sleep(Duration::from_millis(5));
        // Both the reply and the deadline are ready: whichever wins, the reply is kept.
        let outcome = runtime().block_on(wait.finish(
            &blocking,
            std::future::pending(),
            std::future::pending(),
        ));
        assert_eq!(outcome, Some(popped("k", "a")));
    }

    #[test]
    fn a_sorted_set_serves_its_waiters_past_list_waiters() {
        let (blocking, keyspace) = (Blocking::default(), keyspace());
        let mut list_waiter = wait_on(&blocking, &keyspace, "k", None);
        let op = BlockedOp::ZsetPop {
            max: false,
            count: 1,
            protocol: Protocol::Resp2,
            reply: |_, key, items| {
                let mut all = vec![Reply::Bulk(key)];
                all.extend(items.into_iter().map(|(m, _)| Reply::Bulk(m)));
                Reply::Array(all)
            },
        };
        let Blocked::Later(mut zset_waiter) =
            blocking.block(&keyspace, 0, &[Bytes::from_static(b"k")], op, None)
        else {
            panic!("served at once");
        };
        let added = zsets::add(
            &keyspace.db(0).unwrap(),
            b"k",
            &[(2.0, b"b".as_slice()), (1.0, b"a".as_slice())],
            zsets::AddOptions::default(),
        );
        assert_eq!(added.map(|o| o.added), Ok(2));
        blocking.pushed(&keyspace, 0, b"k");
        assert_eq!(zset_waiter.reply.try_recv().ok(), Some(popped("k", "a")));
        assert!(
            list_waiter.reply.try_recv().is_err(),
            "a list waiter waits on"
        );
        assert_eq!(zsets::card(&keyspace.db(0).unwrap(), b"k"), Ok(1));
        assert_eq!(blocking.waiting.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_waiter_times_out_with_a_null_array() {
        let (blocking, keyspace) = (Blocking::default(), keyspace());
        let wait = wait_on(&blocking, &keyspace, "k", Some(Duration::from_millis(1)));
        let outcome = runtime().block_on(wait.finish(
            &blocking,
            std::future::pending(),
            std::future::pending(),
        ));
        assert_eq!(outcome, Some(Reply::NullArray));
        assert_eq!(blocking.waiting.load(Ordering::SeqCst), 0);
    }
    /// A stream reader that records the order it was served in and replies its number.
    struct Recording {
        n: i64,
        served: Arc<parking_lot::Mutex<Vec<i64>>>,
    }

    impl StreamRead for Recording {
        fn serve(&self, db: &DbRef<'_>, _: &[Bytes], ready: Option<&Bytes>) -> Option<Reply> {
            let key = ready?;
            // Served only once the stream has an entry.
            if streams::len(db, key).ok()? == 0 {
                return None;
            }
            self.served.lock().push(self.n);
            Some(Reply::Integer(self.n))
        }
    }

    fn xadd(keyspace: &Keyspace, key: &str) {
        let options = streams::AddOptions {
            id: streams::IdRequest::Auto,
            no_mkstream: false,
            trim: None,
        };
        streams::add(
            &keyspace.db(0).unwrap(),
            key.as_bytes(),
            &["f", "v"],
            &options,
        )
        .unwrap();
    }

    #[test]
    fn stream_readers_are_all_served_in_the_order_they_blocked() {
        let (blocking, keyspace) = (Blocking::default(), keyspace());
        let served = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let mut waits: Vec<Wait> = (0..20)
            .map(|n| {
                let read = Box::new(Recording {
                    n,
                    served: served.clone(),
                });
                match blocking.block_stream(&keyspace, 0, &[Bytes::from("s")], read, None) {
                    Blocked::Later(wait) => wait,
                    Blocked::Now(reply) => panic!("served at once: {reply:?}"),
                }
            })
            .collect();
        // A list push on another key, and a stream of another name, serve nobody.
        push(&blocking, &keyspace, "l", &["a"]);
        xadd(&keyspace, "other");
        blocking.pushed(&keyspace, 0, b"other");
        assert!(served.lock().is_empty());
        xadd(&keyspace, "s");
        blocking.pushed(&keyspace, 0, b"s");
        assert_eq!(*served.lock(), (0..20).collect::<Vec<_>>());
        for (n, wait) in waits.iter_mut().enumerate() {
            assert_eq!(wait.reply.try_recv().ok(), Some(Reply::Integer(n as i64)));
        }
        assert_eq!(blocking.waiting.load(Ordering::SeqCst), 0);
        assert!(blocking.registry.lock().queues.is_empty());
    }

    #[test]
    fn a_stream_reader_that_disconnects_leaves_nothing_behind() {
        let (blocking, keyspace) = (Blocking::default(), keyspace());
        let served = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let keys = [Bytes::from("s"), Bytes::from("t")];
        let read = Box::new(Recording {
            n: 1,
            served: served.clone(),
        });
        let Blocked::Later(wait) = blocking.block_stream(&keyspace, 0, &keys, read, None) else {
            panic!("served at once");
        };
        assert_eq!(blocking.registry.lock().queues.len(), 2);
        let outcome = runtime().block_on(wait.finish(
            &blocking,
            std::future::ready(()),
            std::future::pending(),
        ));
        assert_eq!(outcome, None);
        assert_eq!(blocking.waiting.load(Ordering::SeqCst), 0);
        let registry = blocking.registry.lock();
        assert!(registry.waiters.is_empty() && registry.queues.is_empty());
        drop(registry);
        xadd(&keyspace, "s");
        blocking.pushed(&keyspace, 0, b"s");
        assert!(served.lock().is_empty(), "nobody is served after leaving");
    }

    #[test]
    fn a_stream_reader_times_out_with_a_null_array() {
        let (blocking, keyspace) = (Blocking::default(), keyspace());
        let read = Box::new(Recording {
            n: 1,
            served: Arc::default(),
        });
        let timeout = Some(Duration::from_millis(1));
        let Blocked::Later(wait) =
            blocking.block_stream(&keyspace, 0, &[Bytes::from("s")], read, timeout)
        else {
            panic!("served at once");
        };
        let outcome = runtime().block_on(wait.finish(
            &blocking,
            std::future::pending(),
            std::future::pending(),
        ));
        assert_eq!(outcome, Some(Reply::NullArray));
        assert!(blocking.registry.lock().waiters.is_empty());
    }
}
