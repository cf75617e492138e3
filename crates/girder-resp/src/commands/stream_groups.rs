//! Stream consumer-group commands: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM,
//! XAUTOCLAIM and XINFO. Arguments are checked in the order Redis 7.0 checks them (some
//! commands look the key and group up before parsing ids, others after), so a command
//! with several faults reports the same one as Redis.
//!
//! XREADGROUP is a [`StreamRead`]: without BLOCK it is served once, with BLOCK it waits
//! in [`crate::blocking`] like XREAD, and is served the entries of the key that received
//! them (or told its group was destroyed). XGROUP DESTROY announces the key so blocked
//! readers of the group learn it at once.
//!
//! XINFO STREAM's `radix-tree-keys` / `radix-tree-nodes` describe Redis's storage, which
//! Girder does not have: they are given as the node counts Redis would have for a stream
//! only ever appended to (100 entries a node).

use super::streams::{id_reply, interval_id, strict_id};
use super::{count, int_arg, is, reply, spec, syntax_error, wrong_arity, Ctx, Spec};
use crate::blocking::{Blocked, StreamRead};
use crate::codec::{Protocol, Reply};
use bytes::Bytes;
use girder_kv::streams::groups::{
    self as kv, AutoClaim, Claim, DeliveryTime, GroupEntry, GroupError, GroupStart, ReadFrom,
    ReadGroup,
};
use girder_kv::streams::{StreamId, StreamValue};
use girder_kv::DbRef;
use std::time::Duration;

/// The consumer-group commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "xgroup",
        -2,
        &["write"],
        (2, 2, 1),
        "stream",
        "Create, destroy and manage consumer groups.",
        xgroup,
    ),
    spec(
        "xreadgroup",
        -7,
        &["write", "blocking", "movablekeys"],
        (0, 0, 0),
        "stream",
        "Read new or pending entries of streams as a consumer of a group.",
        xreadgroup,
    ),
    spec(
        "xack",
        -4,
        &["write", "fast"],
        (1, 1, 1),
        "stream",
        "Acknowledge pending entries of a consumer group.",
        xack,
    ),
    spec(
        "xpending",
        -3,
        &["readonly"],
        (1, 1, 1),
        "stream",
        "Inspect the pending entries of a consumer group.",
        xpending,
    ),
    spec(
        "xclaim",
        -6,
        &["write", "fast"],
        (1, 1, 1),
        "stream",
        "Change the owner of pending entries of a consumer group.",
        xclaim,
    ),
    spec(
        "xautoclaim",
        -6,
        &["write", "fast"],
        (1, 1, 1),
        "stream",
        "Claim the idle pending entries of a consumer group, scanning from a cursor.",
        xautoclaim,
    ),
    spec(
        "xinfo",
        -2,
        &["readonly"],
        (2, 2, 1),
        "stream",
        "Describe a stream, its consumer groups and their consumers.",
        xinfo,
    ),
];

fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

fn status(s: &str) -> Reply {
    Reply::Status(s.to_owned())
}

fn key_name(s: &'static str) -> Reply {
    Reply::bulk(Bytes::from_static(s.as_bytes()))
}

fn wrong_type() -> Reply {
    Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

/// `NOGROUP No such key '<key>' or consumer group '<group>'` (+ a suffix for XREADGROUP).
fn no_key_or_group(key: &[u8], group: &[u8], suffix: &str) -> Reply {
    Reply::Error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'{suffix}",
        text(key),
        text(group)
    ))
}

/// `NOGROUP No such consumer group '<group>' for key name '<key>'` (XGROUP, XINFO).
fn no_group_for_key(key: &[u8], group: &[u8]) -> Reply {
    Reply::Error(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        text(group),
        text(key)
    ))
}

/// A group error of a command that words a missing key or group as `no_key_or_group`.
fn group_error(e: GroupError, key: &[u8], group: &[u8]) -> Reply {
    match e {
        GroupError::WrongType => wrong_type(),
        GroupError::NoKey | GroupError::NoGroup => no_key_or_group(key, group, ""),
        GroupError::BusyGroup => Reply::error("BUSYGROUP Consumer Group name already exists"),
    }
}

/// Entries as group reads return them: `[id, [field, value, ...]]`, or `[id, nil]` for an
/// entry deleted while pending.
fn group_entries(entries: Vec<GroupEntry>) -> Reply {
    Reply::Array(
        entries
            .into_iter()
            .map(|(id, fields)| {
                let fields = fields.map_or(Reply::NullArray, |f| {
                    Reply::Array(f.iter().cloned().map(Reply::Bulk).collect())
                });
                Reply::Array(vec![id_reply(id), fields])
            })
            .collect(),
    )
}

/// A non-negative integer option as Redis's `getLongLongFromObjectOrReply`, clamped.
fn long_arg(arg: &[u8], message: Option<&str>) -> Result<i64, Reply> {
    super::parse_i64(arg).ok_or_else(|| match message {
        Some(m) => Reply::Error(format!("ERR {m}")),
        None => super::not_integer(),
    })
}

// XGROUP --------------------------------------------------------------------------------

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

fn subcommand_syntax(sub: &[u8], family: &str) -> Reply {
    Reply::Error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {family} HELP.",
        text(sub)
    ))
}

/// ENTRIESREAD's value: a counter, or -1 (unknown).
fn entries_read_arg(arg: &[u8]) -> Result<Option<u64>, Reply> {
    let n = int_arg(arg)?;
    match n {
        -1 => Ok(None),
        n if n >= 0 => Ok(Some(n.unsigned_abs())),
        _ => Err(Reply::error(
            "ERR value for ENTRIESREAD must be positive or -1",
        )),
    }
}

/// XGROUP CREATE | SETID | DESTROY | CREATECONSUMER | DELCONSUMER | HELP
pub fn xgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(xgroup_inner(ctx, args))
}

fn xgroup_inner(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    let sub = text(&args[1]).to_ascii_lowercase();
    let arity: i32 = match sub.as_str() {
        "create" | "setid" => -5,
        "destroy" => 4,
        "createconsumer" | "delconsumer" => 5,
        "help" => 2,
        _ => {
            return Err(Reply::Error(format!(
                "ERR unknown subcommand '{}'. Try XGROUP HELP.",
                text(&args[1])
            )))
        }
    };
    if !super::arity_ok(arity, args.len()) {
        return Err(wrong_arity(&format!("xgroup|{sub}")));
    }
    if sub == "help" {
        return Ok(Reply::Array(
            XGROUP_HELP.iter().map(|s| status(s)).collect(),
        ));
    }
    let (key, group) = (&args[2], &args[3]);
    // Options first, as Redis parses them before looking at the key.
    let mut mkstream = false;
    let mut entries_read = None;
    if sub == "create" || sub == "setid" {
        let mut i = 5;
        while i < args.len() {
            if sub == "create" && is(&args[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if is(&args[i], "entriesread") && i + 1 < args.len() {
                entries_read = entries_read_arg(&args[i + 1])?;
                i += 2;
            } else {
                return Err(subcommand_syntax(&args[1], "XGROUP"));
            }
        }
    }
    let db = ctx.db()?;
    match kv::probe(&db, key, Some(group)) {
        Ok(()) => {}
        Err(GroupError::WrongType) => return Err(wrong_type()),
        Err(GroupError::NoKey) if !mkstream => {
            return Err(Reply::error(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you \
                 may want to use the MKSTREAM option to create an empty stream automatically.",
            ))
        }
        Err(GroupError::NoGroup) if sub != "create" && sub != "destroy" => {
            return Err(no_group_for_key(key, group));
        }
        Err(_) => {}
    }
    let start = |arg: &[u8], strict: bool| -> Result<GroupStart, Reply> {
        match arg {
            b"$" => Ok(GroupStart::Last),
            b"-" if !strict => Ok(GroupStart::Id(StreamId::MIN)),
            b"+" if !strict => Ok(GroupStart::Id(StreamId::MAX)),
            _ => strict_id(arg, 0).map(GroupStart::Id),
        }
    };
    let done = match sub.as_str() {
        "create" if args.len() <= 8 => {
            let start = start(&args[4], true)?;
            kv::create(&db, key, group, start, mkstream, entries_read).map(|()| Reply::OK)
        }
        "setid" if args.len() == 5 || args.len() == 7 => {
            let start = start(&args[4], false)?;
            kv::set_id(&db, key, group, start, entries_read).map(|()| Reply::OK)
        }
        "destroy" => {
            let destroyed = kv::destroy(&db, key, group);
            drop(db);
            if destroyed == Ok(true) {
                // Readers blocked on the group learn it is gone.
                super::lists::announce_push(ctx, key);
            }
            destroyed.map(|d| Reply::Integer(i64::from(d)))
        }
        "createconsumer" => {
            kv::create_consumer(&db, key, group, &args[4]).map(|c| Reply::Integer(i64::from(c)))
        }
        "delconsumer" => kv::delete_consumer(&db, key, group, &args[4]).map(count),
        _ => return Err(subcommand_syntax(&args[1], "XGROUP")),
    };
    done.map_err(|e| match e {
        GroupError::NoGroup => no_group_for_key(key, group),
        e => group_error(e, key, group),
    })
}

// XREADGROUP ----------------------------------------------------------------------------

/// A parsed XREADGROUP: what it reads, resolved so every attempt answers the same.
struct GroupRead {
    group: Bytes,
    consumer: Bytes,
    /// Per key, in the command's order.
    from: Vec<ReadFrom>,
    count: usize,
    noack: bool,
    protocol: Protocol,
}

impl GroupRead {
    fn read_one(&self, db: &DbRef<'_>, key: &[u8], from: ReadFrom) -> Result<Option<Reply>, Reply> {
        let read = ReadGroup {
            group: &self.group,
            consumer: &self.consumer,
            from,
            count: self.count,
            noack: self.noack,
        };
        // A read that is served creates its consumer: `xgroup-createconsumer`, in the
        // database of the command serving it (this one, or an XADD serving it later).
        let new_consumer = crate::notify::watching()
            && kv::view(db, key, |s| {
                s.groups
                    .get(&self.group)
                    .is_some_and(|g| !g.consumers.contains_key(&self.consumer))
            })
            .is_ok_and(|absent| absent == Some(true));
        match kv::read_group(db, key, &read) {
            Ok(found) => {
                if new_consumer && found.is_some() {
                    let (class, event) = (crate::notify::STREAM, "xgroup-createconsumer");
                    crate::notify::note_db(db.index(), class, event, key);
                }
                Ok(found.map(group_entries))
            }
            // A key that vanished since the command was checked is skipped, as Redis
            // skips a key it no longer finds.
            Err(GroupError::NoKey) => Ok(None),
            Err(GroupError::NoGroup) => Err(Reply::error(
                "NOGROUP the consumer group this client was blocked on no longer exists",
            )),
            Err(e) => Err(group_error(e, key, &self.group)),
        }
    }

    fn shape(&self, found: Vec<(Bytes, Reply)>) -> Reply {
        match self.protocol {
            Protocol::Resp3 => Reply::Map(
                found
                    .into_iter()
                    .map(|(k, v)| (Reply::Bulk(k), v))
                    .collect(),
            ),
            _ => Reply::Array(
                found
                    .into_iter()
                    .map(|(k, v)| Reply::Array(vec![Reply::Bulk(k), v]))
                    .collect(),
            ),
        }
    }
}

impl StreamRead for GroupRead {
    fn serve(&self, db: &DbRef<'_>, keys: &[Bytes], ready: Option<&Bytes>) -> Option<Reply> {
        let mut found = Vec::new();
        match ready {
            None => {
                for (key, from) in keys.iter().zip(&self.from) {
                    match self.read_one(db, key, *from) {
                        Ok(Some(entries)) => found.push((key.clone(), entries)),
                        Ok(None) => {}
                        Err(e) => return Some(e),
                    }
                }
            }
            Some(key) => match self.read_one(db, key, ReadFrom::New) {
                Ok(Some(entries)) => found.push((key.clone(), entries)),
                Ok(None) => {}
                Err(e) => return Some(e),
            },
        }
        (!found.is_empty()).then(|| self.shape(found))
    }

    fn key_gone(&self) -> Option<Reply> {
        Some(Reply::error("UNBLOCKED the stream key no longer exists"))
    }
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK] STREAMS key [key ...]
/// id [id ...]
pub fn xreadgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(xreadgroup_inner(ctx, args))
}

fn xreadgroup_inner(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    let mut block: Option<Option<Duration>> = None;
    let mut count_limit = 0usize;
    let mut noack = false;
    let mut names: Option<(Bytes, Bytes)> = None;
    let mut streams_at = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let arg = &args[i];
        if is(arg, "block") && more > 0 {
            let ms = long_arg(
                &args[i + 1],
                Some("timeout is not an integer or out of range"),
            )?;
            if ms < 0 {
                return Err(Reply::error("ERR timeout is negative"));
            }
            block = Some((ms > 0).then(|| Duration::from_millis(ms.unsigned_abs())));
            i += 2;
        } else if is(arg, "count") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            count_limit = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
            i += 2;
        } else if is(arg, "streams") && more > 0 {
            if !(args.len() - i - 1).is_multiple_of(2) {
                return Err(Reply::error(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' \
                     must be specified.",
                ));
            }
            streams_at = Some(i + 1);
            break;
        } else if is(arg, "group") && more >= 2 {
            names = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 3;
        } else if is(arg, "noack") {
            noack = true;
            i += 1;
        } else {
            return Err(syntax_error());
        }
    }
    let Some(at) = streams_at else {
        return Err(syntax_error());
    };
    let Some((group, consumer)) = names else {
        return Err(Reply::error("ERR Missing GROUP option for XREADGROUP"));
    };
    let n = (args.len() - at) / 2;
    let keys = &args[at..at + n];
    let mut from = Vec::with_capacity(n);
    {
        let db = ctx.db()?;
        for (key, id) in keys.iter().zip(&args[at + n..]) {
            match kv::probe(&db, key, Some(&group)) {
                Ok(()) => {}
                Err(GroupError::WrongType) => return Err(wrong_type()),
                Err(_) => {
                    return Err(no_key_or_group(
                        key,
                        &group,
                        " in XREADGROUP with GROUP option",
                    ))
                }
            }
            from.push(match id.as_ref() {
                b"$" => {
                    return Err(Reply::error(
                        "ERR The $ ID is meaningless in the context of XREADGROUP: you want to \
                         read the history of this consumer by specifying a proper ID, or use \
                         the > ID to get new messages. The $ ID would just return an empty \
                         result set.",
                    ))
                }
                b">" => ReadFrom::New,
                // The greatest id means `>` to Redis too (it is its marker for `>`).
                _ => match strict_id(id, 0)? {
                    StreamId::MAX => ReadFrom::New,
                    id => ReadFrom::History(id),
                },
            });
        }
    }
    let read = GroupRead {
        group: Bytes::copy_from_slice(&group),
        consumer: Bytes::copy_from_slice(&consumer),
        from,
        count: count_limit,
        noack,
        protocol: ctx.client.protocol,
    };
    let keys: Vec<Bytes> = keys.iter().map(|k| Bytes::copy_from_slice(k)).collect();
    match block {
        Some(timeout) if !ctx.client.tx.executing => {
            match ctx.shared.blocking.block_stream(
                ctx.keyspace,
                ctx.client.db,
                &keys,
                Box::new(read),
                timeout,
            ) {
                Blocked::Now(reply) => Ok(reply),
                Blocked::Later(wait) => {
                    ctx.client.blocked = Some(wait);
                    Ok(Reply::NullArray)
                }
            }
        }
        _ => {
            let db = ctx.db()?;
            Ok(read.serve(&db, &keys, None).unwrap_or(Reply::NullArray))
        }
    }
}

// XACK / XPENDING -----------------------------------------------------------------------

/// XACK key group id [id ...]
pub fn xack(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let db = ctx.db()?;
        match kv::probe(&db, &args[1], Some(&args[2])) {
            Ok(()) => {}
            Err(GroupError::WrongType) => return Err(wrong_type()),
            Err(_) => return Ok(Reply::Integer(0)),
        }
        let ids = args[3..]
            .iter()
            .map(|a| strict_id(a, 0))
            .collect::<Result<Vec<_>, _>>()?;
        kv::ack(&db, &args[1], &args[2], &ids)
            .map(count)
            .map_err(|e| group_error(e, &args[1], &args[2]))
    })())
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
pub fn xpending(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(xpending_inner(ctx, args))
}

struct PendingQuery {
    min_idle: i64,
    start: StreamId,
    end: StreamId,
    count: usize,
    consumer: Option<Bytes>,
}

fn xpending_inner(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(syntax_error());
    }
    let query = if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if is(&args[3], "idle") {
            min_idle = int_arg(&args[4])?;
            if argc < 8 {
                return Err(syntax_error());
            }
            at += 2;
        }
        let n = int_arg(&args[at + 2])?;
        let (mut start, start_ex) = interval_id(&args[at], 0)?;
        if start_ex {
            start = start
                .next()
                .ok_or_else(|| Reply::error("ERR invalid start ID for the interval"))?;
        }
        let (mut end, end_ex) = interval_id(&args[at + 1], u64::MAX)?;
        if end_ex {
            end = end
                .prev()
                .ok_or_else(|| Reply::error("ERR invalid end ID for the interval"))?;
        }
        Some(PendingQuery {
            min_idle,
            start,
            end,
            count: usize::try_from(n.max(0)).unwrap_or(usize::MAX),
            consumer: args.get(at + 3).cloned(),
        })
    } else {
        None
    };
    let now = ctx.now_ms;
    let db = ctx.db()?;
    let found = kv::view(&db, &args[1], |s| {
        let g = s.groups.get(&args[2])?;
        Some(match &query {
            None => pending_summary(g),
            Some(q) => pending_rows(g, q, now),
        })
    })
    .map_err(|e| group_error(e, &args[1], &args[2]))?;
    found
        .flatten()
        .ok_or_else(|| no_key_or_group(&args[1], &args[2], ""))
}

fn pending_summary(g: &girder_kv::streams::ConsumerGroup) -> Reply {
    let (Some(first), Some(last)) = (g.pel.keys().next(), g.pel.keys().next_back()) else {
        return Reply::Array(vec![
            Reply::Integer(0),
            Reply::Null,
            Reply::Null,
            Reply::NullArray,
        ]);
    };
    let consumers = g
        .consumers
        .iter()
        .filter(|(_, c)| !c.pel.is_empty())
        .map(|(name, c)| {
            Reply::Array(vec![
                Reply::Bulk(name.clone()),
                Reply::bulk(Bytes::from(c.pel.len().to_string())),
            ])
        })
        .collect();
    Reply::Array(vec![
        count(g.pel.len()),
        id_reply(*first),
        id_reply(*last),
        Reply::Array(consumers),
    ])
}

fn pending_rows(g: &girder_kv::streams::ConsumerGroup, q: &PendingQuery, now: u64) -> Reply {
    if q.start > q.end {
        return Reply::Array(Vec::new());
    }
    let ids: Box<dyn Iterator<Item = &StreamId>> = match &q.consumer {
        Some(name) => match g.consumers.get(name) {
            Some(c) => Box::new(c.pel.range(q.start..=q.end)),
            None => return Reply::Array(Vec::new()),
        },
        None => Box::new(g.pel.range(q.start..=q.end).map(|(id, _)| id)),
    };
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let rows = ids
        .filter_map(|id| g.pel.get(id).map(|p| (id, p)))
        .filter_map(|(id, p)| {
            let idle = now.saturating_sub(i64::try_from(p.delivery_ms).unwrap_or(i64::MAX));
            (q.min_idle == 0 || idle >= q.min_idle).then(|| {
                Reply::Array(vec![
                    id_reply(*id),
                    Reply::Bulk(p.consumer.clone()),
                    Reply::Integer(idle.max(0)),
                    Reply::Integer(i64::try_from(p.delivery_count).unwrap_or(i64::MAX)),
                ])
            })
        })
        .take(q.count)
        .collect();
    Reply::Array(rows)
}

// XCLAIM / XAUTOCLAIM -------------------------------------------------------------------

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]
pub fn xclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(xclaim_inner(ctx, args))
}

fn xclaim_inner(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    let (key, group) = (&args[1], &args[2]);
    let db = ctx.db()?;
    kv::probe(&db, key, Some(group)).map_err(|e| group_error(e, key, group))?;
    drop(db);
    let min_idle = long_arg(&args[4], Some("Invalid min-idle-time argument for XCLAIM"))?;
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match strict_id(&args[j], 0) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let mut claim = Claim {
        group,
        consumer: &args[3],
        min_idle: min_idle.max(0).unsigned_abs(),
        ids,
        delivery: DeliveryTime::Now,
        retry_count: None,
        force: false,
        justid: false,
        last_id: None,
    };
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if is(opt, "force") {
            claim.force = true;
        } else if is(opt, "justid") {
            claim.justid = true;
        } else if is(opt, "idle") && more {
            j += 1;
            let ms = long_arg(&args[j], Some("Invalid IDLE option argument for XCLAIM"))?;
            claim.delivery = DeliveryTime::Idle(ms);
        } else if is(opt, "time") && more {
            j += 1;
            let ms = long_arg(&args[j], Some("Invalid TIME option argument for XCLAIM"))?;
            claim.delivery = DeliveryTime::At(ms);
        } else if is(opt, "retrycount") && more {
            j += 1;
            let n = long_arg(
                &args[j],
                Some("Invalid RETRYCOUNT option argument for XCLAIM"),
            )?;
            // A negative count is Redis's "not given".
            claim.retry_count = u64::try_from(n).ok();
        } else if is(opt, "lastid") && more {
            j += 1;
            claim.last_id = Some(strict_id(&args[j], 0)?);
        } else {
            return Err(Reply::Error(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                text(opt)
            )));
        }
        j += 1;
    }
    let db = ctx.db()?;
    let claimed = kv::claim(&db, key, &claim).map_err(|e| group_error(e, key, group))?;
    Ok(if claim.justid {
        Reply::Array(claimed.into_iter().map(|(id, _)| id_reply(id)).collect())
    } else {
        group_entries(claimed)
    })
}

/// Most COUNT XAUTOCLAIM accepts: Redis's `LONG_MAX / 16`.
const AUTOCLAIM_MAX_COUNT: i64 = i64::MAX / 16;

/// Counts above this would make Redis allocate gigabytes for its deleted-ids buffer and
/// fail; Girder allocates nothing by the count, but answers as Redis does there.
const AUTOCLAIM_ALLOC_LIMIT: i64 = 1 << 28;

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub fn xautoclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(xautoclaim_inner(ctx, args))
}

fn xautoclaim_inner(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    let (key, group) = (&args[1], &args[2]);
    let min_idle = long_arg(
        &args[4],
        Some("Invalid min-idle-time argument for XAUTOCLAIM"),
    )?;
    let (mut start, exclusive) = interval_id(&args[5], 0)?;
    if exclusive {
        start = start
            .next()
            .ok_or_else(|| Reply::error("ERR invalid start ID for the interval"))?;
    }
    let mut n: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = j + 1 < args.len();
        if is(&args[j], "count") && more {
            n = match super::parse_i64(&args[j + 1]) {
                Some(n) if (1..=AUTOCLAIM_MAX_COUNT).contains(&n) => n,
                _ => return Err(Reply::error("ERR COUNT must be > 0")),
            };
            j += 1;
        } else if is(&args[j], "justid") {
            justid = true;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    let db = ctx.db()?;
    kv::probe(&db, key, Some(group)).map_err(|e| group_error(e, key, group))?;
    if n > AUTOCLAIM_ALLOC_LIMIT {
        return Err(Reply::error(
            "ERR Insufficient memory, failed allocating transient memory, COUNT too high.",
        ));
    }
    let done = kv::auto_claim(
        &db,
        key,
        &AutoClaim {
            group,
            consumer: &args[3],
            min_idle: min_idle.max(0).unsigned_abs(),
            start,
            count: n.unsigned_abs(),
            justid,
        },
    )
    .map_err(|e| group_error(e, key, group))?;
    let claimed = if justid {
        Reply::Array(
            done.claimed
                .into_iter()
                .map(|(id, _)| id_reply(id))
                .collect(),
        )
    } else {
        group_entries(done.claimed)
    };
    Ok(Reply::Array(vec![
        id_reply(done.next),
        claimed,
        Reply::Array(done.deleted.into_iter().map(id_reply).collect()),
    ]))
}

// XINFO ---------------------------------------------------------------------------------

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

/// XINFO STREAM key [FULL [COUNT count]] | GROUPS key | CONSUMERS key group | HELP
pub fn xinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(xinfo_inner(ctx, args))
}

fn xinfo_inner(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    let sub = text(&args[1]).to_ascii_lowercase();
    let arity: i32 = match sub.as_str() {
        "stream" => -3,
        "groups" => 3,
        "consumers" => 4,
        "help" => 2,
        _ => {
            return Err(Reply::Error(format!(
                "ERR unknown subcommand '{}'. Try XINFO HELP.",
                text(&args[1])
            )))
        }
    };
    if !super::arity_ok(arity, args.len()) {
        return Err(wrong_arity(&format!("xinfo|{sub}")));
    }
    if sub == "help" {
        return Ok(Reply::Array(XINFO_HELP.iter().map(|s| status(s)).collect()));
    }
    let key = &args[2];
    let now = ctx.now_ms;
    let db = ctx.db()?;
    let shown = kv::view(&db, key, |s| match sub.as_str() {
        "stream" => info_stream(s, args),
        "groups" => Ok(info_groups(s)),
        _ => match s.groups.get(&args[3]) {
            Some(g) => Ok(info_consumers(g, now)),
            None => Err(no_group_for_key(key, &args[3])),
        },
    })
    .map_err(|_| wrong_type())?;
    shown.unwrap_or_else(|| Err(Reply::error("ERR no such key")))
}

fn integer(n: u64) -> Reply {
    Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn entry_reply(id: StreamId, fields: &[Bytes]) -> Reply {
    Reply::Array(vec![
        id_reply(id),
        Reply::Array(fields.iter().cloned().map(Reply::Bulk).collect()),
    ])
}

/// Redis's node counts for a stream of `len` entries only ever appended to.
fn radix_counts(len: usize) -> (usize, usize) {
    let keys = len.div_ceil(girder_kv::streams::entries::NODE_ENTRIES);
    (keys, keys + 1)
}

fn info_stream(s: &StreamValue, args: &[Bytes]) -> Result<Reply, Reply> {
    let full = match args.len() {
        3 => None,
        4 if is(&args[3], "full") => Some(10),
        6 if is(&args[3], "full") && is(&args[4], "count") => {
            // Redis: 0 is everything, a negative count the default.
            let n = int_arg(&args[5])?;
            Some(usize::try_from(n).unwrap_or(10))
        }
        _ => return Err(subcommand_syntax(&args[1], "XINFO")),
    };
    let (keys, nodes) = radix_counts(s.entries.len());
    let mut map = vec![
        (key_name("length"), count(s.entries.len())),
        (key_name("radix-tree-keys"), count(keys)),
        (key_name("radix-tree-nodes"), count(nodes)),
        (key_name("last-generated-id"), id_reply(s.last_id)),
        (key_name("max-deleted-entry-id"), id_reply(s.max_deleted_id)),
        (key_name("entries-added"), integer(s.entries_added)),
        (key_name("recorded-first-entry-id"), id_reply(s.first_id())),
    ];
    let Some(limit) = full else {
        let edge = |e: Option<(&StreamId, &girder_kv::streams::Fields)>| {
            e.map_or(Reply::Null, |(id, f)| entry_reply(*id, f))
        };
        map.push((key_name("groups"), count(s.groups.len())));
        map.push((key_name("first-entry"), edge(s.entries.iter().next())));
        map.push((key_name("last-entry"), edge(s.entries.iter().next_back())));
        return Ok(Reply::Map(map));
    };
    let limit = if limit == 0 { usize::MAX } else { limit };
    let entries = s
        .entries
        .iter()
        .take(limit)
        .map(|(id, f)| entry_reply(*id, f))
        .collect();
    map.push((key_name("entries"), Reply::Array(entries)));
    let groups = s
        .groups
        .iter()
        .map(|(name, g)| {
            let pending = g
                .pel
                .iter()
                .take(limit)
                .map(|(id, p)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        Reply::Bulk(p.consumer.clone()),
                        integer(p.delivery_ms),
                        integer(p.delivery_count),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .iter()
                .map(|(cname, c)| {
                    let pending = c
                        .pel
                        .iter()
                        .take(limit)
                        .filter_map(|id| g.pel.get(id).map(|p| (id, p)))
                        .map(|(id, p)| {
                            Reply::Array(vec![
                                id_reply(*id),
                                integer(p.delivery_ms),
                                integer(p.delivery_count),
                            ])
                        })
                        .collect();
                    Reply::Map(vec![
                        (key_name("name"), Reply::Bulk(cname.clone())),
                        (key_name("seen-time"), integer(c.seen_ms)),
                        (key_name("pel-count"), count(c.pel.len())),
                        (key_name("pending"), Reply::Array(pending)),
                    ])
                })
                .collect();
            Reply::Map(vec![
                (key_name("name"), Reply::Bulk(name.clone())),
                (key_name("last-delivered-id"), id_reply(g.last_id)),
                (
                    key_name("entries-read"),
                    g.entries_read.map_or(Reply::Null, integer),
                ),
                (
                    key_name("lag"),
                    s.lag(g).map_or(Reply::Null, Reply::Integer),
                ),
                (key_name("pel-count"), count(g.pel.len())),
                (key_name("pending"), Reply::Array(pending)),
                (key_name("consumers"), Reply::Array(consumers)),
            ])
        })
        .collect();
    map.push((key_name("groups"), Reply::Array(groups)));
    Ok(Reply::Map(map))
}

fn info_groups(s: &StreamValue) -> Reply {
    Reply::Array(
        s.groups
            .iter()
            .map(|(name, g)| {
                Reply::Map(vec![
                    (key_name("name"), Reply::Bulk(name.clone())),
                    (key_name("consumers"), count(g.consumers.len())),
                    (key_name("pending"), count(g.pel.len())),
                    (key_name("last-delivered-id"), id_reply(g.last_id)),
                    (
                        key_name("entries-read"),
                        g.entries_read.map_or(Reply::Null, integer),
                    ),
                    (
                        key_name("lag"),
                        s.lag(g).map_or(Reply::Null, Reply::Integer),
                    ),
                ])
            })
            .collect(),
    )
}

fn info_consumers(g: &girder_kv::streams::ConsumerGroup, now: u64) -> Reply {
    Reply::Array(
        g.consumers
            .iter()
            .map(|(name, c)| {
                let idle = i64::try_from(now.saturating_sub(c.seen_ms)).unwrap_or(i64::MAX);
                Reply::Map(vec![
                    (key_name("name"), Reply::Bulk(name.clone())),
                    (key_name("pending"), count(c.pel.len())),
                    (key_name("idle"), Reply::Integer(idle)),
                ])
            })
            .collect(),
    )
}
