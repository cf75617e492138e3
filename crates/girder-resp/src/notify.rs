//! Keyspace notifications (`notify-keyspace-events`): the flags, their Redis spelling,
//! and the events a write command publishes on `__keyspace@<db>__:<key>` (the event as
//! message) and `__keyevent@<db>__:<event>` (the key as message).
//!
//! Invariants:
//! - Off costs one relaxed atomic load per command: [`run`] calls the handler directly
//!   unless the flags select a channel (K or E) and at least one class.
//! - Events follow a command only when it changed the keyspace, in Redis's order: `new`
//!   just before the first event of a key the command created, the command's own events,
//!   then `del` just after the last event of a key it emptied.
//! - Keys are inspected before the handler only while notifications are on: that
//!   inspection is what reports lazily expired keys (`expired`) and what tells created
//!   and emptied keys apart.

use crate::codec::Reply;
use crate::commands::{is, Ctx, Spec};
use crate::state::Shared;
use bytes::Bytes;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME, ...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: a key's TTL passed.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: a key was evicted (Girder never evicts).
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands: `xadd`, `xtrim` (XTRIM, and XADD when its MAXLEN/MINID removed
/// entries), `xdel`, `xsetid`, `xgroup-create`, `xgroup-setid`, `xgroup-destroy`,
/// `xgroup-createconsumer` (also when XREADGROUP, XCLAIM or XAUTOCLAIM create the
/// consumer, including an XREADGROUP served later by an XADD) and
/// `xgroup-delconsumer`; XACK and reads publish nothing.
pub const STREAM: u32 = 1 << 10;
/// `m`: key misses (accepted; Girder emits none, as Redis 7.0 never does for this flag
/// outside modules).
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events (accepted, never emitted).
pub const MODULE: u32 = 1 << 13;
/// `n`: a key was created.
pub const NEW: u32 = 1 << 14;
/// `A`: every class but `m` and `n`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses a flag string as Redis's `keyspaceEventsStringToFlags`; `None` on an unknown
/// character.
pub fn parse(text: &[u8]) -> Option<u32> {
    text.iter().try_fold(0, |flags, c| {
        Some(
            flags
                | match c {
                    b'A' => ALL,
                    b'g' => GENERIC,
                    b'$' => STRING,
                    b'l' => LIST,
                    b's' => SET,
                    b'h' => HASH,
                    b'z' => ZSET,
                    b'x' => EXPIRED,
                    b'e' => EVICTED,
                    b'K' => KEYSPACE,
                    b'E' => KEYEVENT,
                    b't' => STREAM,
                    b'm' => KEY_MISS,
                    b'd' => MODULE,
                    b'n' => NEW,
                    _ => return None,
                },
        )
    })
}

/// The canonical spelling Redis's CONFIG GET gives (`keyspaceEventsFlagsToString`):
/// `A` or the classes, then `K`, `E`, `m`. Like Redis 7.0, `A` hides `n`.
pub fn format(flags: u32) -> String {
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                out.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            out.push(c);
        }
    }
    out
}

/// The error CONFIG SET gives for an invalid flag string.
pub const INVALID: &str = "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/// The server-wide setting.
#[derive(Debug, Default)]
pub struct Notifications {
    flags: AtomicU32,
}

impl Notifications {
    /// Notifications with `flags`.
    pub fn new(flags: u32) -> Self {
        Self {
            flags: AtomicU32::new(flags),
        }
    }

    /// The current flags.
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Replaces the flags.
    pub fn set(&self, flags: u32) {
        self.flags.store(flags, Ordering::Relaxed);
    }
}

/// Whether `flags` publish anything for class `class`.
fn selects(flags: u32, class: u32) -> bool {
    flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
}

/// Whether `flags` publish `expired` events: the keyspace then reports the keys its
/// active expiry removes.
pub fn reports_expired(flags: u32) -> bool {
    selects(flags, EXPIRED)
}

/// Publishes one event as Redis's `notifyKeyspaceEvent`: keyspace channel first.
pub fn publish(shared: &Shared, flags: u32, class: u32, event: &str, db: usize, key: &[u8]) {
    if !selects(flags, class) {
        return;
    }
    if flags & KEYSPACE != 0 {
        let mut channel = format!("__keyspace@{db}__:").into_bytes();
        channel.extend_from_slice(key);
        shared.pubsub.publish(&channel, event.as_bytes());
    }
    if flags & KEYEVENT != 0 {
        let channel = format!("__keyevent@{db}__:{event}");
        shared.pubsub.publish(channel.as_bytes(), key);
    }
}

/// One event of a command.
#[derive(Debug)]
struct Event {
    class: u32,
    name: &'static str,
    db: usize,
    key: Bytes,
}

thread_local! {
    /// Events a handler reports itself (it alone knows, as ZADD knows whether a score
    /// changed); [`run`] drains them. Handlers run synchronously, so the list belongs to
    /// the command running on this thread.
    static NOTED: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
    /// Whether the command running on this thread is watched by [`run`].
    static WATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Reports an event from inside a handler; a no-op unless notifications are on.
pub fn note(ctx: &Ctx<'_>, class: u32, name: &'static str, key: &[u8]) {
    note_db(ctx.client.db, class, name, key);
}

/// [`note`] for database `db`, for code that serves a command without its context (an
/// XADD serving a blocked XREADGROUP).
pub fn note_db(db: usize, class: u32, name: &'static str, key: &[u8]) {
    if watching() {
        let event = Event {
            class,
            name,
            db,
            key: Bytes::copy_from_slice(key),
        };
        NOTED.with(|n| n.borrow_mut().push(event));
    }
}

/// Whether [`note`] records anything now: a handler calls it before it does extra work
/// only an event needs (XADD measuring whether it trimmed).
pub fn watching() -> bool {
    WATCHING.with(std::cell::Cell::get)
}

/// What a key looked like before the command: absent, or present with or without TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    Absent,
    Present { ttl: bool },
}

/// Runs `spec`'s handler and publishes the events of what it did.
pub fn run(ctx: &mut Ctx<'_>, spec: &Spec, args: &[Bytes]) -> Reply {
    let flags = ctx.shared.notify.flags();
    if !selects(flags, ALL | NEW) {
        return (spec.handler)(ctx, args);
    }
    let db = ctx.client.db;
    let keys = key_args(spec, args);
    // Lazy expiry first, reported as Redis reports it: before the command's events.
    let mut before = Vec::with_capacity(keys.len());
    if let Ok(dbref) = ctx.db() {
        for key in &keys {
            if dbref.expire_if_due(key) {
                publish(ctx.shared, flags, EXPIRED, "expired", db, key);
            }
            let state = dbref.peek(key, |e| {
                e.map_or(Before::Absent, |e| Before::Present {
                    ttl: e.expire_at.is_some(),
                })
            });
            before.push(state);
        }
    }
    if !spec.flags.contains(&"write") {
        return (spec.handler)(ctx, args);
    }
    // SMOVE announces `sadd` only when the member was not already in the destination.
    let moved_in = spec.name == "smove"
        && !ctx
            .db()
            .is_ok_and(|d| girder_kv::sets::sismember(&d, &args[2], &args[3]).unwrap_or(false));
    // XGROUP DELCONSUMER announces only a consumer that existed; XCLAIM and XAUTOCLAIM
    // announce one they create.
    let consumer_was = consumer_arg(spec.name, args).is_some_and(|(key, group, consumer)| {
        ctx.db().is_ok_and(|d| {
            girder_kv::streams::groups::view(&d, key, |s| {
                s.groups
                    .get(group)
                    .is_some_and(|g| g.consumers.contains_key(consumer))
            })
            .is_ok_and(|found| found == Some(true))
        })
    });
    WATCHING.with(|w| w.set(true));
    let reply = (spec.handler)(ctx, args);
    WATCHING.with(|w| w.set(false));
    let noted = NOTED.with(|n| std::mem::take(&mut *n.borrow_mut()));
    if matches!(reply, Reply::Error(_)) {
        return reply;
    }
    let was = |key: &[u8]| {
        keys.iter()
            .position(|k| k.as_ref() == key)
            .map_or(Before::Absent, |i| before[i])
    };
    let mut events = noted;
    events.extend(command_events(
        spec.name,
        args,
        &reply,
        db,
        &was,
        moved_in,
        consumer_was,
    ));
    let exists = |key: &[u8]| ctx.db().is_ok_and(|d| d.read(key, |e| e.is_some()));
    // Keys this command created or emptied, judged once each.
    let mut created: Vec<Bytes> = Vec::new();
    let mut emptied: Vec<Bytes> = Vec::new();
    for (key, b) in keys.iter().zip(&before) {
        let now = exists(key);
        match (b, now) {
            (Before::Absent, true) if !created.contains(key) => created.push(key.clone()),
            (Before::Present { .. }, false) if !emptied.contains(key) => emptied.push(key.clone()),
            _ => {}
        }
    }
    // RENAME and MOVE take the key away with events of their own.
    if matches!(spec.name, "rename" | "renamenx" | "move") {
        emptied.clear();
    }
    let mut out: Vec<Event> = Vec::with_capacity(events.len() + 2);
    for (i, event) in events.iter().enumerate() {
        let here = event.db == db;
        if here && event.name == "new" {
            created.retain(|k| *k != event.key);
        }
        // A deadline already past deletes the key instead: only `del`.
        if here && event.name == "expire" && emptied.contains(&event.key) {
            continue;
        }
        if here && event.name != "new" {
            if let Some(p) = created.iter().position(|k| *k == event.key) {
                let key = created.swap_remove(p);
                out.push(Event {
                    class: NEW,
                    name: "new",
                    db,
                    key,
                });
            }
        }
        out.push(Event {
            class: event.class,
            name: event.name,
            db: event.db,
            key: event.key.clone(),
        });
        let last = !events[i + 1..]
            .iter()
            .any(|e| e.db == event.db && e.key == event.key);
        if last && event.db == db && event.name != "del" {
            if let Some(p) = emptied.iter().position(|k| *k == event.key) {
                out.push(Event {
                    class: GENERIC,
                    name: "del",
                    db,
                    key: emptied.swap_remove(p),
                });
            }
        }
    }
    // Keys deleted without an event of their own (an EXPIRE in the past, an empty
    // SINTERSTORE result, DEL).
    for key in emptied {
        if !out
            .iter()
            .any(|e| e.key == key && e.db == db && e.name == "del")
        {
            out.push(Event {
                class: GENERIC,
                name: "del",
                db,
                key,
            });
        }
    }
    for e in &out {
        publish(ctx.shared, flags, e.class, e.name, e.db, &e.key);
    }
    reply
}

/// The key, group and consumer of the commands whose events depend on whether the
/// consumer existed before (XGROUP DELCONSUMER, XCLAIM, XAUTOCLAIM).
fn consumer_arg<'a>(name: &str, args: &'a [Bytes]) -> Option<(&'a [u8], &'a [u8], &'a [u8])> {
    match name {
        "xclaim" | "xautoclaim" if args.len() > 3 => Some((&args[1], &args[2], &args[3])),
        "xgroup" if args.len() == 5 && is(&args[1], "delconsumer") => {
            Some((&args[2], &args[3], &args[4]))
        }
        _ => None,
    }
}

/// The keys of XREAD and XREADGROUP: the first half of what follows STREAMS, found by
/// skipping the options as the commands parse them (a group or consumer may be named
/// `STREAMS`). None when the command is malformed: it fails before looking at a key.
fn stream_read_keys(args: &[Bytes], group: bool) -> Vec<Bytes> {
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if (is(opt, "block") || is(opt, "count")) && more > 0 {
            i += 2;
        } else if group && is(opt, "group") && more >= 2 {
            i += 3;
        } else if group && is(opt, "noack") {
            i += 1;
        } else if is(opt, "streams") && more > 0 && more.is_multiple_of(2) {
            let keys = &args[i + 1..i + 1 + more / 2];
            let mut out: Vec<Bytes> = Vec::with_capacity(keys.len());
            for key in keys {
                if !out.contains(key) {
                    out.push(key.clone());
                }
            }
            return out;
        } else {
            break;
        }
    }
    Vec::new()
}

/// The key arguments of a command, from its table row or, for the `numkeys` commands,
/// from that argument, or for XREAD and XREADGROUP from STREAMS (duplicates kept out).
pub(crate) fn key_args(spec: &Spec, args: &[Bytes]) -> Vec<Bytes> {
    if matches!(spec.name, "xread" | "xreadgroup") {
        return stream_read_keys(args, spec.name == "xreadgroup");
    }
    let numkeys_at = match spec.name {
        "lmpop" | "zmpop" => Some(1),
        "blmpop" | "bzmpop" => Some(2),
        _ => None,
    };
    let (first, last, step) = match numkeys_at {
        Some(at) => {
            let n = std::str::from_utf8(&args[at])
                .ok()
                .and_then(|n| n.parse::<i32>().ok())
                .unwrap_or(0)
                .clamp(0, i32::try_from(args.len()).unwrap_or(i32::MAX));
            let first = i32::try_from(at).unwrap_or(0) + 1;
            (first, first + n - 1, 1)
        }
        None => spec.keys,
    };
    let mut keys: Vec<Bytes> = Vec::new();
    if first <= 0 || step <= 0 {
        return keys;
    }
    let len = i32::try_from(args.len()).unwrap_or(i32::MAX);
    let last = if last < 0 {
        len + last
    } else {
        last.min(len - 1)
    };
    let mut i = first;
    while i <= last {
        let key = &args[usize::try_from(i).unwrap_or(0)];
        if !keys.contains(key) {
            keys.push(key.clone());
        }
        i += step;
    }
    keys
}

/// An argument in lower case (a subcommand name).
fn text_lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}

/// Whether a reply says something was done: not null, not zero, not empty.
fn done(reply: &Reply) -> bool {
    match reply {
        Reply::Null | Reply::NullArray | Reply::Error(_) => false,
        Reply::Integer(n) => *n != 0,
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => !items.is_empty(),
        _ => true,
    }
}

/// The events Redis 7.0 publishes for a successful `name` with `args` and `reply`
/// (`was` tells what a key looked like before, `consumer_was` whether the consumer of
/// [`consumer_arg`] existed), except those the handler noted itself and the implied
/// `new` and `del`.
fn command_events(
    name: &str,
    args: &[Bytes],
    reply: &Reply,
    db: usize,
    was: &dyn Fn(&[u8]) -> Before,
    moved_in: bool,
    consumer_was: bool,
) -> Vec<Event> {
    let ev = |class: u32, name: &'static str, key: &Bytes| Event {
        class,
        name,
        db,
        key: key.clone(),
    };
    let mut out = Vec::new();
    let present = |k: &[u8]| was(k) != Before::Absent;
    match name {
        "set" => {
            let opts = &args[3..];
            let has = |w: &str| opts.iter().any(|a| is(a, w));
            let applied = if has("NX") {
                !present(&args[1])
            } else if has("XX") {
                present(&args[1])
            } else {
                true
            };
            if applied {
                out.push(ev(STRING, "set", &args[1]));
                if ["EX", "PX", "EXAT", "PXAT"].iter().any(|w| has(w)) {
                    out.push(ev(GENERIC, "expire", &args[1]));
                }
            }
        }
        "setnx" if done(reply) => out.push(ev(STRING, "set", &args[1])),
        // CACHE.FILL key token value [EX s | PX ms]: a SET when the lease was valid.
        "cache.fill" if done(reply) => {
            out.push(ev(STRING, "set", &args[1]));
            if args.len() > 4 {
                out.push(ev(GENERIC, "expire", &args[1]));
            }
        }
        "getset" => out.push(ev(STRING, "set", &args[1])),
        "setex" | "psetex" => {
            out.push(ev(STRING, "set", &args[1]));
            out.push(ev(GENERIC, "expire", &args[1]));
        }
        "mset" => args[1..]
            .chunks(2)
            .for_each(|p| out.push(ev(STRING, "set", &p[0]))),
        "msetnx" if done(reply) => args[1..]
            .chunks(2)
            .for_each(|p| out.push(ev(STRING, "set", &p[0]))),
        "getdel" if done(reply) => out.push(ev(GENERIC, "del", &args[1])),
        "getex" if done(reply) && args.len() > 2 => {
            if is(&args[2], "PERSIST") {
                if was(&args[1]) == (Before::Present { ttl: true }) {
                    out.push(ev(GENERIC, "persist", &args[1]));
                }
            } else {
                out.push(ev(GENERIC, "expire", &args[1]));
            }
        }
        "incr" | "decr" | "incrby" | "decrby" => out.push(ev(STRING, "incrby", &args[1])),
        "incrbyfloat" => out.push(ev(STRING, "incrbyfloat", &args[1])),
        "append" => out.push(ev(STRING, "append", &args[1])),
        "setrange" if !args[3].is_empty() => out.push(ev(STRING, "setrange", &args[1])),
        "del" | "unlink" => {}
        "expire" | "pexpire" | "expireat" | "pexpireat" if done(reply) => {
            // A deadline in the past deletes the key: `del`, added by the caller.
            out.push(ev(GENERIC, "expire", &args[1]));
        }
        "persist" if done(reply) => out.push(ev(GENERIC, "persist", &args[1])),
        "rename" | "renamenx" if done(reply) && args[1] != args[2] => {
            // RENAME deletes the target first and adds it anew: always `new`.
            out.push(ev(NEW, "new", &args[2]));
            out.push(ev(GENERIC, "rename_from", &args[1]));
            out.push(ev(GENERIC, "rename_to", &args[2]));
        }
        "copy" if done(reply) => {
            let target = args[3..]
                .windows(2)
                .find(|w| is(&w[0], "DB"))
                .and_then(|w| std::str::from_utf8(&w[1]).ok()?.parse().ok())
                .unwrap_or(db);
            out.push(Event {
                class: NEW,
                name: "new",
                db: target,
                key: args[2].clone(),
            });
            out.push(Event {
                class: GENERIC,
                name: "copy_to",
                db: target,
                key: args[2].clone(),
            });
        }
        "move" if done(reply) => {
            let target = std::str::from_utf8(&args[2])
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(db);
            for (class, name, db) in [
                (NEW, "new", target),
                (GENERIC, "move_from", db),
                (GENERIC, "move_to", target),
            ] {
                out.push(Event {
                    class,
                    name,
                    db,
                    key: args[1].clone(),
                });
            }
        }
        "lpush" | "lpushx" if done(reply) => out.push(ev(LIST, "lpush", &args[1])),
        "rpush" | "rpushx" if done(reply) => out.push(ev(LIST, "rpush", &args[1])),
        "lpop" if done(reply) => out.push(ev(LIST, "lpop", &args[1])),
        "rpop" if done(reply) => out.push(ev(LIST, "rpop", &args[1])),
        "linsert" if matches!(reply, Reply::Integer(n) if *n > 0) => {
            out.push(ev(LIST, "linsert", &args[1]));
        }
        "lset" => out.push(ev(LIST, "lset", &args[1])),
        "lrem" if done(reply) => out.push(ev(LIST, "lrem", &args[1])),
        "ltrim" if present(&args[1]) => out.push(ev(LIST, "ltrim", &args[1])),
        "rpoplpush" | "lmove" | "blmove" | "brpoplpush" if done(reply) => {
            let (from_left, to_left) = match name {
                "rpoplpush" | "brpoplpush" => (false, true),
                _ => (is(&args[3], "LEFT"), is(&args[4], "LEFT")),
            };
            out.push(ev(LIST, if to_left { "lpush" } else { "rpush" }, &args[2]));
            out.push(ev(LIST, if from_left { "lpop" } else { "rpop" }, &args[1]));
        }
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            if let Reply::Array(items) = reply {
                if let Some(Reply::Bulk(key)) = items.first() {
                    let event = match name {
                        "blpop" => "lpop",
                        "brpop" => "rpop",
                        "bzpopmin" => "zpopmin",
                        _ => "zpopmax",
                    };
                    let class = if name.starts_with("bz") { ZSET } else { LIST };
                    out.push(ev(class, event, key));
                }
            }
        }
        "lmpop" | "blmpop" | "zmpop" | "bzmpop" => {
            if let Reply::Array(items) = reply {
                if let Some(Reply::Bulk(key)) = items.first() {
                    // The direction follows `numkeys` and the keys.
                    let at = if name.starts_with('b') { 2 } else { 1 };
                    let n: usize = std::str::from_utf8(&args[at])
                        .ok()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    let left = args
                        .get(at + 1 + n)
                        .is_some_and(|a| is(a, "LEFT") || is(a, "MIN"));
                    let (class, event) = match (name.ends_with("zmpop"), left) {
                        (true, true) => (ZSET, "zpopmin"),
                        (true, false) => (ZSET, "zpopmax"),
                        (false, true) => (LIST, "lpop"),
                        (false, false) => (LIST, "rpop"),
                    };
                    out.push(ev(class, event, key));
                }
            }
        }
        "hset" | "hmset" => out.push(ev(HASH, "hset", &args[1])),
        "hsetnx" if done(reply) => out.push(ev(HASH, "hset", &args[1])),
        "hdel" if done(reply) => out.push(ev(HASH, "hdel", &args[1])),
        "hincrby" => out.push(ev(HASH, "hincrby", &args[1])),
        "hincrbyfloat" => out.push(ev(HASH, "hincrbyfloat", &args[1])),
        "sadd" if done(reply) => out.push(ev(SET, "sadd", &args[1])),
        "smove" if done(reply) && args[1] != args[2] => {
            out.push(ev(SET, "srem", &args[1]));
            if moved_in {
                out.push(ev(SET, "sadd", &args[2]));
            }
        }
        "srem" if done(reply) => out.push(ev(SET, "srem", &args[1])),
        "spop" if done(reply) => out.push(ev(SET, "spop", &args[1])),
        "sinterstore" | "sunionstore" | "sdiffstore" | "zunionstore" | "zinterstore"
        | "zdiffstore" | "zrangestore"
            if done(reply) =>
        {
            let class = if name.starts_with('z') { ZSET } else { SET };
            let event = match name {
                "sinterstore" => "sinterstore",
                "sunionstore" => "sunionstore",
                "sdiffstore" => "sdiffstore",
                "zunionstore" => "zunionstore",
                "zinterstore" => "zinterstore",
                "zdiffstore" => "zdiffstore",
                _ => "zrangestore",
            };
            out.push(ev(class, event, &args[1]));
        }
        "zrem" if done(reply) => out.push(ev(ZSET, "zrem", &args[1])),
        "zremrangebyscore" if done(reply) => out.push(ev(ZSET, "zremrangebyscore", &args[1])),
        "zremrangebyrank" if done(reply) => out.push(ev(ZSET, "zremrangebyrank", &args[1])),
        "zremrangebylex" if done(reply) => out.push(ev(ZSET, "zremrangebylex", &args[1])),
        "zpopmin" if done(reply) => out.push(ev(ZSET, "zpopmin", &args[1])),
        "zpopmax" if done(reply) => out.push(ev(ZSET, "zpopmax", &args[1])),
        // XADD and XREADGROUP note their events themselves: only XADD knows whether it
        // trimmed, and a consumer is created wherever a group read is served (an XADD
        // serving a blocked XREADGROUP announces it after its own events).
        "xtrim" if done(reply) => out.push(ev(STREAM, "xtrim", &args[1])),
        "xdel" if done(reply) => out.push(ev(STREAM, "xdel", &args[1])),
        "xsetid" => out.push(ev(STREAM, "xsetid", &args[1])),
        "xgroup" if args.len() > 2 => {
            let event = match text_lower(&args[1]).as_str() {
                "create" => Some("xgroup-create"),
                "setid" => Some("xgroup-setid"),
                "destroy" if done(reply) => Some("xgroup-destroy"),
                "createconsumer" if done(reply) => Some("xgroup-createconsumer"),
                "delconsumer" if consumer_was => Some("xgroup-delconsumer"),
                _ => None,
            };
            if let Some(event) = event {
                out.push(ev(STREAM, event, &args[2]));
            }
        }
        "xclaim" | "xautoclaim" if !consumer_was => {
            // The consumer is created with the first entry it claims.
            let claimed = match (name, reply) {
                ("xclaim", claimed) => done(claimed),
                (_, Reply::Array(parts)) => parts.get(1).is_some_and(done),
                _ => false,
            };
            if claimed {
                out.push(ev(STREAM, "xgroup-createconsumer", &args[1]));
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_in_redis_order() {
        for (given, printed) in [
            ("", ""),
            ("KEA", "AKE"),
            ("Kgn$", "g$nK"),
            ("Enmlx", "lxnEm"),
            ("An", "A"),
            ("Anm", "Am"),
            ("ztd$", "$ztd"),
            ("g$lshzxetd", "A"),
            ("hhK", "hK"),
        ] {
            assert_eq!(format(parse(given.as_bytes()).unwrap()), printed, "{given}");
        }
        assert_eq!(parse(b"A"), Some(ALL));
        assert_eq!(parse(b"KEQ"), None);
        assert_eq!(parse(b"k"), None, "case matters");
    }

    #[test]
    fn a_class_without_a_channel_selects_nothing() {
        assert!(!selects(parse(b"A").unwrap(), LIST));
        assert!(selects(parse(b"Kl").unwrap(), LIST));
        assert!(!selects(parse(b"Kl").unwrap(), SET));
        assert!(reports_expired(parse(b"Ex").unwrap()));
        assert!(!reports_expired(parse(b"E$").unwrap()));
    }
}
