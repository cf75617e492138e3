//! Stream entry commands: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID, XREAD.
//! Arguments are parsed and validated in the order Redis 7.0 does it (most before the
//! key is looked at; XREAD checks each key's type just before parsing its id), so a
//! command with several faults reports the same error as Redis.
//!
//! XADD announces its key to [`crate::blocking`] once its keyspace handle is released,
//! so that clients blocked reading the stream are served before the next command. XREAD
//! BLOCK registers a [`StreamRead`] waiter (see the "Streams" section of `blocking.rs`).
//! The id helpers here (`strict_id`, `interval_id`, `invalid_id`, `entries_reply`) are
//! `pub(super)` for the consumer-group commands.

use super::lists::announce_push;
use super::{count, int_arg, is, kv_error, reply, spec, syntax_error, wrong_arity, Ctx, Spec};
use crate::blocking::{Blocked, StreamRead};
use crate::codec::{Protocol, Reply};
use crate::notify;
use bytes::Bytes;
use girder_kv::streams::entries::{
    self as kv, AddOptions, IdRequest, SetId, StreamEntry, StreamError, Trim, TrimStrategy,
    DEFAULT_APPROX_LIMIT,
};
use girder_kv::streams::StreamId;
use girder_kv::DbRef;
use std::time::Duration;

/// The stream entry commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "xadd",
        -5,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "stream",
        "Append an entry to a stream.",
        xadd,
    ),
    spec(
        "xlen",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "stream",
        "Get the number of entries in a stream.",
        xlen,
    ),
    spec(
        "xrange",
        -4,
        &["readonly"],
        (1, 1, 1),
        "stream",
        "Get the entries of a stream within a range of ids.",
        xrange,
    ),
    spec(
        "xrevrange",
        -4,
        &["readonly"],
        (1, 1, 1),
        "stream",
        "Get the entries of a stream within a range of ids, newest first.",
        xrevrange,
    ),
    spec(
        "xdel",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "stream",
        "Delete entries of a stream.",
        xdel,
    ),
    spec(
        "xtrim",
        -4,
        &["write"],
        (1, 1, 1),
        "stream",
        "Delete the oldest entries of a stream.",
        xtrim,
    ),
    spec(
        "xsetid",
        -3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "stream",
        "Set the last id and counters of a stream.",
        xsetid,
    ),
    spec(
        "xread",
        -4,
        &["readonly", "blocking", "movablekeys"],
        (0, 0, 0),
        "stream",
        "Read entries after given ids from streams, or block until some arrive.",
        xread,
    ),
];

/// `ERR Invalid stream ID specified as stream command argument`.
pub(super) fn invalid_id() -> Reply {
    Reply::error("ERR Invalid stream ID specified as stream command argument")
}

/// An engine error of a stream operation as a reply.
fn stream_error(e: StreamError) -> Reply {
    Reply::Error(e.to_string())
}

/// An id where Redis accepts neither `-` nor `+` (`streamParseStrictIDOrReply`); a
/// missing sequence is `missing_seq`.
pub(super) fn strict_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, Reply> {
    if arg == b"-" || arg == b"+" {
        return Err(invalid_id());
    }
    kv::parse_id(arg, missing_seq, false)
        .map(|(id, _)| id)
        .ok_or_else(invalid_id)
}

/// A range bound (`streamParseIntervalIDOrReply`): `-`, `+`, an id, or `(id` (exclusive,
/// returned with `true`); a missing sequence is `missing_seq`.
pub(super) fn interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    match arg {
        [b'(', rest @ ..] if !rest.is_empty() => Ok((strict_id(rest, missing_seq)?, true)),
        b"-" => Ok((StreamId::MIN, false)),
        b"+" => Ok((StreamId::MAX, false)),
        _ => kv::parse_id(arg, missing_seq, false)
            .map(|(id, _)| (id, false))
            .ok_or_else(invalid_id),
    }
}

/// An id as a bulk string: `ms-seq` written with itoa into one exact allocation (the
/// `Display` route grew a `String` through the formatter and cost about an eighth of an
/// XADD's instructions).
pub(super) fn id_reply(id: StreamId) -> Reply {
    let (mut ms, mut seq) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (ms, seq) = (ms.format(id.ms).as_bytes(), seq.format(id.seq).as_bytes());
    let mut out = bytes::BytesMut::with_capacity(ms.len() + 1 + seq.len());
    out.extend_from_slice(ms);
    out.extend_from_slice(b"-");
    out.extend_from_slice(seq);
    Reply::Bulk(out.freeze())
}

/// Entries as Redis replies them: `[[id, [field, value, ...]], ...]`.
pub(super) fn entries_reply(entries: Vec<StreamEntry>) -> Reply {
    Reply::Array(
        entries
            .into_iter()
            .map(|(id, fields)| {
                Reply::Array(vec![
                    id_reply(id),
                    Reply::Array(fields.iter().cloned().map(Reply::Bulk).collect()),
                ])
            })
            .collect(),
    )
}

/// XREAD's reply: RESP2 `[[key, entries], ...]`, RESP3 `{key: entries, ...}`.
fn streams_reply(protocol: Protocol, found: Vec<(Bytes, Vec<StreamEntry>)>) -> Reply {
    let pairs = found
        .into_iter()
        .map(|(key, entries)| (Reply::Bulk(key), entries_reply(entries)));
    match protocol {
        Protocol::Resp3 => Reply::Map(pairs.collect()),
        Protocol::Resp2 => Reply::Array(
            pairs
                .map(|(key, entries)| Reply::Array(vec![key, entries]))
                .collect(),
        ),
    }
}

/// The options shared by XADD and XTRIM, as Redis's `streamParseAddOrTrimArgsOrReply`
/// reads them.
struct AddOrTrim {
    trim: Option<Trim>,
    id: IdRequest,
    no_mkstream: bool,
    /// XADD: where the id is (the fields follow); past the end when there is none.
    id_at: usize,
}

fn add_or_trim_args(args: &[Bytes], xadd: bool) -> Result<AddOrTrim, Reply> {
    let mut strategy = None;
    let mut approx = false;
    let mut limit: Option<u64> = None;
    let mut no_mkstream = false;
    let mut id = IdRequest::Auto;
    let mut i = 2;
    let incompatible = || {
        Reply::error(
            "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
        )
    };
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if strategy.is_some() {
                return Err(incompatible());
            }
            approx = false;
            let next = args[i + 1].as_ref();
            if more >= 2 && next == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let value = &args[i + 1];
            strategy = Some(if is(opt, "maxlen") {
                let n = int_arg(value)?;
                TrimStrategy::MaxLen(
                    u64::try_from(n)
                        .map_err(|_| Reply::error("ERR The MAXLEN argument must be >= 0."))?,
                )
            } else {
                TrimStrategy::MinId(strict_id(value, 0)?)
            });
            i += 1;
        } else if is(opt, "limit") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            limit = Some(
                u64::try_from(n)
                    .map_err(|_| Reply::error("ERR The LIMIT argument must be >= 0."))?,
            );
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            no_mkstream = true;
        } else if xadd {
            // Anything else is the id, or a syntax error reported as a bad id.
            let (given, seq_given) = match opt.as_ref() {
                b"-" | b"+" => None,
                text => kv::parse_id(text, 0, true),
            }
            .ok_or_else(invalid_id)?;
            id = if seq_given {
                IdRequest::Exact(given)
            } else {
                IdRequest::Ms(given.ms)
            };
            break;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    if limit.is_some_and(|n| n > 0) && strategy.is_none() {
        return Err(Reply::error(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && strategy.is_none() {
        return Err(Reply::error(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit.is_some() && !approx {
        return Err(Reply::error(
            "ERR syntax error, LIMIT cannot be used without the special ~ option",
        ));
    }
    let limit = limit.unwrap_or(if approx { DEFAULT_APPROX_LIMIT } else { 0 });
    Ok(AddOrTrim {
        trim: strategy.map(|strategy| Trim {
            strategy,
            approx,
            limit,
        }),
        id,
        no_mkstream,
        id_at: i,
    })
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value
/// [field value ...]
pub fn xadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let parsed = add_or_trim_args(args, true)?;
        let fields = args.get(parsed.id_at + 1..).unwrap_or_default();
        if fields.len() < 2 || !fields.len().is_multiple_of(2) {
            return Err(wrong_arity("xadd"));
        }
        let options = AddOptions {
            id: parsed.id,
            no_mkstream: parsed.no_mkstream,
            trim: parsed.trim,
        };
        // Whether MAXLEN/MINID removed entries is told by the length (only measured while
        // notifications watch: `xtrim` follows `xadd` then).
        let measure = options.trim.is_some() && notify::watching();
        let (added, trimmed) = {
            let db = ctx.db()?;
            let before = measure.then(|| kv::len(&db, &args[1]).ok()).flatten();
            let added = kv::add(&db, &args[1], fields, &options).map_err(stream_error)?;
            let trimmed = before.is_some_and(|n| kv::len(&db, &args[1]).is_ok_and(|m| m <= n));
            (added, trimmed)
        };
        Ok(match added {
            Some(id) => {
                notify::note(ctx, notify::STREAM, "xadd", &args[1]);
                if trimmed {
                    notify::note(ctx, notify::STREAM, "xtrim", &args[1]);
                }
                announce_push(ctx, &args[1]);
                id_reply(id)
            }
            None => Reply::Null,
        })
    })())
}

/// XLEN key
pub fn xlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::len(&db, &args[1]) {
        Ok(n) => count(n),
        Err(e) => kv_error(e),
    }))
}

fn range_generic(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Reply {
    reply((|| {
        let (start_arg, end_arg) = if rev {
            (&args[3], &args[2])
        } else {
            (&args[2], &args[3])
        };
        let (mut start, exclusive) = interval_id(start_arg, 0)?;
        if exclusive {
            start = start
                .next()
                .ok_or_else(|| Reply::error("ERR invalid start ID for the interval"))?;
        }
        let (mut end, exclusive) = interval_id(end_arg, u64::MAX)?;
        if exclusive {
            end = end
                .prev()
                .ok_or_else(|| Reply::error("ERR invalid end ID for the interval"))?;
        }
        let mut wanted: Option<i64> = None;
        let mut i = 4;
        while i < args.len() {
            match args.get(i + 1) {
                Some(value) if is(&args[i], "count") => wanted = Some(int_arg(value)?.max(0)),
                _ => return Err(syntax_error()),
            }
            i += 2;
        }
        let db = ctx.db()?;
        // The key is looked at before a COUNT of 0 answers (a null array).
        if !kv::exists(&db, &args[1]).map_err(kv_error)? {
            return Ok(Reply::Array(Vec::new()));
        }
        if wanted == Some(0) {
            return Ok(Reply::NullArray);
        }
        let limit = wanted.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let entries = kv::range(&db, &args[1], start, end, limit, rev).map_err(kv_error)?;
        Ok(entries_reply(entries.unwrap_or_default()))
    })())
}

/// XRANGE key start end [COUNT count]
pub fn xrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, false)
}

/// XREVRANGE key end start [COUNT count]
pub fn xrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, true)
}

/// XDEL key id [id ...]: the key is looked at first (a missing key is 0 whatever the
/// ids), then every id is parsed before any is deleted.
pub fn xdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        if !kv::exists(&ctx.db()?, &args[1]).map_err(kv_error)? {
            return Ok(Reply::Integer(0));
        }
        let ids = args[2..]
            .iter()
            .map(|a| strict_id(a, 0))
            .collect::<Result<Vec<_>, _>>()?;
        let db = ctx.db()?;
        kv::delete(&db, &args[1], &ids).map(count).map_err(kv_error)
    })())
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
pub fn xtrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let parsed = add_or_trim_args(args, false)?;
        let trim = parsed.trim.ok_or_else(syntax_error)?;
        let db = ctx.db()?;
        kv::trim(&db, &args[1], &trim).map(count).map_err(kv_error)
    })())
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
pub fn xsetid(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let last_id = strict_id(&args[2], 0)?;
        let mut set = SetId {
            last_id,
            entries_added: None,
            max_deleted_id: None,
        };
        let mut i = 3;
        while i < args.len() {
            match args.get(i + 1) {
                Some(value) if is(&args[i], "entriesadded") => {
                    let n = int_arg(value)?;
                    set.entries_added = Some(
                        u64::try_from(n)
                            .map_err(|_| Reply::error("ERR entries_added must be positive"))?,
                    );
                }
                Some(value) if is(&args[i], "maxdeletedid") => {
                    let id = strict_id(value, 0)?;
                    if last_id < id {
                        return Err(stream_error(StreamError::SetIdBelowMaxDeleted));
                    }
                    set.max_deleted_id = Some(id);
                }
                _ => return Err(syntax_error()),
            }
            i += 2;
        }
        let db = ctx.db()?;
        kv::set_id(&db, &args[1], &set).map_err(stream_error)?;
        Ok(Reply::OK)
    })())
}

/// An XREAD: the keys' resolved ids, the count, and the reader's protocol.
struct XRead {
    /// The id after which each key (in order) is read; `$` already resolved.
    after: Vec<StreamId>,
    /// Entries per key at most (`None`: all).
    count: Option<usize>,
    protocol: Protocol,
}

impl XRead {
    /// Every key's entries after its id; `None` when no key has any.
    fn read_all(&self, db: &DbRef<'_>, keys: &[Bytes]) -> Result<Option<Reply>, Reply> {
        let mut found = Vec::new();
        for (key, after) in keys.iter().zip(&self.after) {
            if let Some(read) = kv::read(db, key, *after, self.count).map_err(kv_error)? {
                if !read.entries.is_empty() {
                    found.push((key.clone(), read.entries));
                }
            }
        }
        Ok((!found.is_empty()).then(|| streams_reply(self.protocol, found)))
    }
}

impl StreamRead for XRead {
    fn serve(&self, db: &DbRef<'_>, keys: &[Bytes], ready: Option<&Bytes>) -> Option<Reply> {
        let Some(ready) = ready else {
            return self.read_all(db, keys).unwrap_or_else(Some);
        };
        // A key given twice waits with its first id, as in Redis.
        let at = keys.iter().position(|k| k == ready)?;
        let after = *self.after.get(at)?;
        let read = kv::read(db, ready, after, self.count).ok()??;
        // Redis serves a reader once the stream's last id passed the one it waited for,
        // even if the entries after it were deleted since (an empty list of entries).
        (read.last_id > after)
            .then(|| streams_reply(self.protocol, vec![(ready.clone(), read.entries)]))
    }
}

/// A BLOCK timeout in milliseconds (Redis's `getTimeoutFromObjectOrReply` in
/// milliseconds): an integer, 0 waiting forever.
fn block_arg(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let ms = super::parse_i64(arg)
        .ok_or_else(|| Reply::error("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    // Redis 7.0 adds the time to the timeout unchecked; a timeout past what the clock
    // can reach waits forever here.
    Ok((ms > 0).then(|| Duration::from_millis(ms.unsigned_abs())))
}

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
pub fn xread(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let mut wanted = None;
        let mut block = None;
        let mut streams_at = None;
        let mut i = 1;
        while i < args.len() {
            let more = args.len() - 1 - i;
            let opt = &args[i];
            if is(opt, "block") && more > 0 {
                i += 1;
                block = Some(block_arg(&args[i])?);
            } else if is(opt, "count") && more > 0 {
                i += 1;
                let n = int_arg(&args[i])?;
                wanted = usize::try_from(n).ok().filter(|n| *n > 0);
            } else if is(opt, "streams") && more > 0 {
                if !more.is_multiple_of(2) {
                    return Err(Reply::error(
                        "ERR Unbalanced XREAD list of streams: for each stream key an ID or \
                         '$' must be specified.",
                    ));
                }
                streams_at = Some(i + 1);
                break;
            } else if is(opt, "group") && more >= 2 {
                return Err(Reply::error(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD \
                     instead.",
                ));
            } else if is(opt, "noack") {
                return Err(Reply::error(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD \
                     instead.",
                ));
            } else {
                return Err(syntax_error());
            }
            i += 1;
        }
        let at = streams_at.ok_or_else(syntax_error)?;
        let n = (args.len() - at) / 2;
        let keys = &args[at..at + n];
        let mut after = Vec::with_capacity(n);
        {
            let db = ctx.db()?;
            for (key, id) in keys.iter().zip(&args[at + n..]) {
                // Each key's type is checked just before its id is parsed.
                let last = kv::last_id(&db, key).map_err(kv_error)?;
                after.push(match id.as_ref() {
                    b"$" => last.unwrap_or(StreamId::MIN),
                    b">" => {
                        return Err(Reply::error(
                            "ERR The > ID can be specified only when calling XREADGROUP using \
                             the GROUP <group> <consumer> option.",
                        ))
                    }
                    _ => strict_id(id, 0)?,
                });
            }
        }
        let read = XRead {
            after,
            count: wanted,
            protocol: ctx.client.protocol,
        };
        // Without BLOCK, and inside EXEC where nothing blocks: one read.
        let timeout = match block {
            Some(timeout) if !ctx.client.tx.executing => timeout,
            _ => {
                let db = ctx.db()?;
                return Ok(read.read_all(&db, keys)?.unwrap_or(Reply::NullArray));
            }
        };
        let blocked = ctx.shared.blocking.block_stream(
            ctx.keyspace,
            ctx.client.db,
            keys,
            Box::new(read),
            timeout,
        );
        Ok(match blocked {
            Blocked::Now(reply) => reply,
            Blocked::Later(wait) => {
                ctx.client.blocked = Some(wait);
                Reply::NullArray
            }
        })
    })())
}
