//! List commands. Arguments are parsed and validated before the key is looked at, in the
//! order Redis 7.0 does it, so a command with both a bad argument and a wrong-type key
//! reports the same error as Redis.
//!
//! Every command that pushes announces it to [`crate::blocking`] once its keyspace handle
//! is released, so that clients blocked on the key (BLPOP...) are served.

use super::{count, int_arg, is, kv_error, reply, spec, syntax_error, wrong_arity, Ctx, Spec};
use crate::blocking::{Blocked, BlockedOp};
use crate::codec::Reply;
use bytes::Bytes;
use girder_kv::lists::{self as kv, End, InsertOutcome, PosOptions};
use girder_kv::KvError;
use std::time::Duration;

/// The lists commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "lpush",
        -3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "list",
        "Prepend elements to a list.",
        lpush,
    ),
    spec(
        "rpush",
        -3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "list",
        "Append elements to a list.",
        rpush,
    ),
    spec(
        "lpushx",
        -3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "list",
        "Prepend elements to an existing list.",
        lpushx,
    ),
    spec(
        "rpushx",
        -3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "list",
        "Append elements to an existing list.",
        rpushx,
    ),
    spec(
        "lpop",
        -2,
        &["write", "fast"],
        (1, 1, 1),
        "list",
        "Remove and return the first elements of a list.",
        lpop,
    ),
    spec(
        "rpop",
        -2,
        &["write", "fast"],
        (1, 1, 1),
        "list",
        "Remove and return the last elements of a list.",
        rpop,
    ),
    spec(
        "llen",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "list",
        "Get the length of a list.",
        llen,
    ),
    spec(
        "lrange",
        4,
        &["readonly"],
        (1, 1, 1),
        "list",
        "Get a range of elements of a list.",
        lrange,
    ),
    spec(
        "lindex",
        3,
        &["readonly"],
        (1, 1, 1),
        "list",
        "Get an element of a list by its index.",
        lindex,
    ),
    spec(
        "lset",
        4,
        &["write", "denyoom"],
        (1, 1, 1),
        "list",
        "Set an element of a list by its index.",
        lset,
    ),
    spec(
        "lrem",
        4,
        &["write"],
        (1, 1, 1),
        "list",
        "Remove occurrences of an element from a list.",
        lrem,
    ),
    spec(
        "ltrim",
        4,
        &["write"],
        (1, 1, 1),
        "list",
        "Trim a list to a range.",
        ltrim,
    ),
    spec(
        "linsert",
        5,
        &["write", "denyoom"],
        (1, 1, 1),
        "list",
        "Insert an element before or after another.",
        linsert,
    ),
    spec(
        "lpos",
        -3,
        &["readonly"],
        (1, 1, 1),
        "list",
        "Get the indexes of matching elements of a list.",
        lpos,
    ),
    spec(
        "lmove",
        5,
        &["write", "denyoom"],
        (1, 2, 1),
        "list",
        "Pop an element from a list and push it to another.",
        lmove,
    ),
    spec(
        "rpoplpush",
        3,
        &["write", "denyoom"],
        (1, 2, 1),
        "list",
        "Pop the last element of a list and prepend it to another.",
        rpoplpush,
    ),
    spec(
        "blpop",
        -3,
        &["write", "noscript", "blocking"],
        (1, -2, 1),
        "list",
        "Pop the first element of the first non-empty list, or block until one is pushed.",
        blpop,
    ),
    spec(
        "brpop",
        -3,
        &["write", "noscript", "blocking"],
        (1, -2, 1),
        "list",
        "Pop the last element of the first non-empty list, or block until one is pushed.",
        brpop,
    ),
    spec(
        "blmove",
        6,
        &["write", "denyoom", "noscript", "blocking"],
        (1, 2, 1),
        "list",
        "Pop an element and push it to another list, or block until one is pushed.",
        blmove,
    ),
    spec(
        "brpoplpush",
        4,
        &["write", "denyoom", "noscript", "blocking"],
        (1, 2, 1),
        "list",
        "Pop the last element and prepend it to another list, or block until one is pushed.",
        brpoplpush,
    ),
    spec(
        "blmpop",
        -5,
        &["write", "blocking", "movablekeys"],
        (0, 0, 0),
        "list",
        "Pop elements from the first non-empty list of several, or block until one is pushed.",
        blmpop,
    ),
    spec(
        "lmpop",
        -4,
        &["write", "movablekeys"],
        (0, 0, 0),
        "list",
        "Pop elements from the first non-empty list of several.",
        lmpop,
    ),
];

/// The bulk strings of `items`, as an array.
fn bulks(items: Vec<Bytes>) -> Reply {
    Reply::Array(items.into_iter().map(Reply::Bulk).collect())
}

/// `LEFT` or `RIGHT`, any case.
fn end_arg(arg: &[u8]) -> Result<End, Reply> {
    if is(arg, "left") {
        Ok(End::Left)
    } else if is(arg, "right") {
        Ok(End::Right)
    } else {
        Err(syntax_error())
    }
}

/// A non-negative integer; anything else (negative or not a number) is `ERR <message>`,
/// as Redis's `getPositiveLongFromObjectOrReply` words it.
fn non_negative_arg(arg: &[u8], message: &str) -> Result<usize, Reply> {
    super::parse_i64(arg)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Reply::error(format!("ERR {message}")))
}

/// An integer of at least 1; anything else is `ERR <message>`.
fn positive_arg(arg: &[u8], message: &str) -> Result<usize, Reply> {
    non_negative_arg(arg, message).and_then(|n| {
        if n == 0 {
            Err(Reply::error(format!("ERR {message}")))
        } else {
            Ok(n)
        }
    })
}

/// Serves the clients blocked on `key`, which was just pushed to (or added to, for a
/// sorted set); inside EXEC, once the transaction is done (its later commands must see the elements first).
pub(super) fn announce_push(ctx: &mut Ctx<'_>, key: &[u8]) {
    if ctx.client.tx.executing {
        ctx.client
            .tx
            .pushed
            .push((ctx.client.db, Bytes::copy_from_slice(key)));
    } else {
        ctx.shared.blocking.pushed(ctx.keyspace, ctx.client.db, key);
    }
}

fn push_generic(ctx: &mut Ctx<'_>, args: &[Bytes], end: End, only_if_exists: bool) -> Reply {
    let pushed = ctx
        .db()
        .and_then(|db| kv::push(&db, &args[1], end, &args[2..], only_if_exists).map_err(kv_error));
    reply(pushed.map(|n| {
        if n > 0 {
            announce_push(ctx, &args[1]);
        }
        count(n)
    }))
}

/// LPUSH key element [element ...]
pub fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push_generic(ctx, args, End::Left, false)
}

/// RPUSH key element [element ...]
pub fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push_generic(ctx, args, End::Right, false)
}

/// LPUSHX key element [element ...]
pub fn lpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push_generic(ctx, args, End::Left, true)
}

/// RPUSHX key element [element ...]
pub fn rpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push_generic(ctx, args, End::Right, true)
}

/// LPOP / RPOP key [count]: without a count, one element (bulk or null); with a count,
/// an array (null array for a missing key, empty array for a count of 0).
fn pop_generic(ctx: &mut Ctx<'_>, args: &[Bytes], end: End, name: &str) -> Reply {
    reply((|| {
        let wanted = match args.len() {
            2 => None,
            3 => Some(non_negative_arg(
                &args[2],
                "value is out of range, must be positive",
            )?),
            _ => return Err(wrong_arity(name)),
        };
        let db = ctx.db()?;
        let popped = kv::pop(&db, &args[1], end, wanted.unwrap_or(1)).map_err(kv_error)?;
        Ok(match (wanted, popped) {
            (None, None) => Reply::Null,
            (None, Some(mut items)) => items.pop().map_or(Reply::Null, Reply::Bulk),
            (Some(_), None) => Reply::NullArray,
            (Some(_), Some(items)) => bulks(items),
        })
    })())
}

/// LPOP key [count]
pub fn lpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop_generic(ctx, args, End::Left, "lpop")
}

/// RPOP key [count]
pub fn rpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop_generic(ctx, args, End::Right, "rpop")
}

/// LLEN key
pub fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::len(&db, &args[1]) {
        Ok(n) => count(n),
        Err(e) => kv_error(e),
    }))
}

/// LRANGE key start stop
pub fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let start = int_arg(&args[2])?;
        let stop = int_arg(&args[3])?;
        let db = ctx.db()?;
        kv::range_with(&db, &args[1], start, stop, crate::codec::bulk_array).map_err(kv_error)
    })())
}

/// Redis looks the key up before parsing the index of LINDEX and LSET: a missing or
/// wrong-type key wins over a malformed index. Parsing first keeps the common path to
/// one lookup; the key is consulted again only to order the errors. `missing` is the
/// reply for a missing key.
fn index_arg(ctx: &Ctx<'_>, args: &[Bytes], missing: Reply) -> Result<i64, Reply> {
    int_arg(&args[2]).or_else(|not_integer| {
        let db = ctx.db()?;
        match kv::len(&db, &args[1]).map_err(kv_error)? {
            0 => Err(missing),
            _ => Err(not_integer),
        }
    })
}

/// LINDEX key index
pub fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let index = index_arg(ctx, args, Reply::Null)?;
        let db = ctx.db()?;
        let item = kv::index(&db, &args[1], index).map_err(kv_error)?;
        Ok(item.map_or(Reply::Null, Reply::Bulk))
    })())
}

/// LSET key index element
pub fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let index = index_arg(ctx, args, kv_error(KvError::NoSuchKey))?;
        let db = ctx.db()?;
        match kv::set(&db, &args[1], index, &args[3]).map_err(kv_error)? {
            true => Ok(Reply::OK),
            false => Err(Reply::error("ERR index out of range")),
        }
    })())
}

/// LREM key count element
pub fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let n = int_arg(&args[2])?;
        let db = ctx.db()?;
        kv::rem(&db, &args[1], n, &args[3])
            .map(count)
            .map_err(kv_error)
    })())
}

/// LTRIM key start stop
pub fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let start = int_arg(&args[2])?;
        let stop = int_arg(&args[3])?;
        let db = ctx.db()?;
        kv::trim(&db, &args[1], start, stop).map_err(kv_error)?;
        Ok(Reply::OK)
    })())
}

/// LINSERT key BEFORE|AFTER pivot element
pub fn linsert(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let before = if is(&args[2], "before") {
            true
        } else if is(&args[2], "after") {
            false
        } else {
            return Err(syntax_error());
        };
        let db = ctx.db()?;
        Ok(
            match kv::insert(&db, &args[1], before, &args[3], &args[4]).map_err(kv_error)? {
                InsertOutcome::NoKey => Reply::Integer(0),
                InsertOutcome::NoPivot => Reply::Integer(-1),
                InsertOutcome::Inserted(n) => count(n),
            },
        )
    })())
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let mut options = PosOptions {
            rank: 1,
            count: None,
            maxlen: 0,
        };
        let mut i = 3;
        while i < args.len() {
            let Some(value) = args.get(i + 1) else {
                return Err(syntax_error());
            };
            let option = &args[i];
            if is(option, "rank") {
                options.rank = int_arg(value)?;
                if options.rank == 0 {
                    return Err(Reply::error(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from \
                         the second ... or use negative to start from the end of the list",
                    ));
                }
            } else if is(option, "count") {
                options.count = Some(non_negative_arg(value, "COUNT can't be negative")?);
            } else if is(option, "maxlen") {
                options.maxlen = non_negative_arg(value, "MAXLEN can't be negative")?;
            } else {
                return Err(syntax_error());
            }
            i += 2;
        }
        let db = ctx.db()?;
        let found = kv::pos(&db, &args[1], &args[2], options).map_err(kv_error)?;
        Ok(match options.count {
            Some(_) => Reply::Array(found.into_iter().map(count).collect()),
            None => found.first().map_or(Reply::Null, |&i| count(i)),
        })
    })())
}

fn move_generic(ctx: &mut Ctx<'_>, args: &[Bytes], from: End, to: End) -> Reply {
    let moved = ctx
        .db()
        .and_then(|db| kv::lmove(&db, &args[1], &args[2], from, to).map_err(kv_error));
    reply(moved.map(|item| match item {
        Some(item) => {
            announce_push(ctx, &args[2]);
            Reply::Bulk(item)
        }
        None => Reply::Null,
    }))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match (end_arg(&args[3]), end_arg(&args[4])) {
        (Ok(from), Ok(to)) => move_generic(ctx, args, from, to),
        (Err(e), _) | (_, Err(e)) => e,
    }
}

/// RPOPLPUSH source destination
pub fn rpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    move_generic(ctx, args, End::Right, End::Left)
}

/// The arguments of LMPOP and BLMPOP from `numkeys` (at `args[at]`) on: the keys, the
/// end, the count (default 1).
fn mpop_args(args: &[Bytes], at: usize) -> Result<(&[Bytes], End, usize), Reply> {
    let numkeys = positive_arg(&args[at], "numkeys should be greater than 0")?;
    let first = at + 1;
    let keys = args
        .get(first..numkeys.saturating_add(first))
        .ok_or_else(syntax_error)?;
    let where_at = first + numkeys;
    let end = end_arg(args.get(where_at).ok_or_else(syntax_error)?)?;
    let mut wanted = None;
    let mut i = where_at + 1;
    while i < args.len() {
        match args.get(i + 1) {
            Some(value) if wanted.is_none() && is(&args[i], "count") => {
                wanted = Some(positive_arg(value, "count should be greater than 0")?);
            }
            _ => return Err(syntax_error()),
        }
        i += 2;
    }
    Ok((keys, end, wanted.unwrap_or(1)))
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let (keys, end, wanted) = mpop_args(args, 1)?;
        let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        let db = ctx.db()?;
        Ok(match kv::mpop(&db, &refs, end, wanted).map_err(kv_error)? {
            Some((at, items)) => Reply::Array(vec![Reply::Bulk(keys[at].clone()), bulks(items)]),
            None => Reply::NullArray,
        })
    })())
}

/// A blocking timeout in seconds, as Redis 7.0 reads it: a float (C `strtold` syntax,
/// hexadecimal integers included) turned into milliseconds rounded up, so any positive
/// timeout waits at least 1 ms. `None`: 0, wait forever.
pub(super) fn timeout_arg(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let seconds = parse_seconds(arg)
        .ok_or_else(|| Reply::error("ERR timeout is not a float or out of range"))?;
    let ms = (seconds * 1000.0).ceil();
    // Redis converts to a C long long, where values out of its range (infinities too)
    // come out negative: they are reported as negative. -0.0 is not negative.
    if !(0.0..9_223_372_036_854_775_808.0).contains(&ms) {
        return Err(Reply::error("ERR timeout is negative"));
    }
    // Exact: integral and in range by the checks above.
    let ms = ms as u64;
    Ok((ms > 0).then(|| Duration::from_millis(ms)))
}

/// A float as `strtold` reads it, whole argument, no spaces, no NaN.
fn parse_seconds(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        // Exact for what a timeout can hold; beyond, the float is as close as it gets.
        let magnitude = hex.bytes().fold(0f64, |acc, b| {
            acc * 16.0 + f64::from(char::from(b).to_digit(16).unwrap_or(0))
        });
        return Some(if negative { -magnitude } else { magnitude });
    }
    if digits.starts_with(['+', '-']) || digits.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let value: f64 = digits.parse().ok()?;
    (!value.is_nan()).then_some(if negative { -value } else { value })
}

/// Pops now if one of `keys` has elements, else blocks the client (the connection loop
/// waits and sends the reply of the wait instead of the placeholder returned here).
pub(super) fn block(
    ctx: &mut Ctx<'_>,
    keys: &[Bytes],
    op: BlockedOp,
    timeout: Option<Duration>,
) -> Reply {
    // Inside EXEC nothing blocks: an empty list times out at once, as in Redis. The
    // registry is not touched there (see `Blocking::attempt_once`).
    if ctx.client.tx.executing {
        let db = ctx.client.db;
        return match ctx
            .shared
            .blocking
            .attempt_once(ctx.keyspace, db, keys, &op)
        {
            Some((reply, pushed)) => {
                if let Some(key) = pushed {
                    announce_push(ctx, &key);
                }
                reply
            }
            None => Reply::NullArray,
        };
    }
    match ctx
        .shared
        .blocking
        .block(ctx.keyspace, ctx.client.db, keys, op, timeout)
    {
        Blocked::Now(reply) => reply,
        Blocked::Later(wait) => {
            ctx.client.blocked = Some(wait);
            Reply::NullArray
        }
    }
}

fn blocking_pop(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> Reply {
    let last = args.len() - 1;
    match timeout_arg(&args[last]) {
        Ok(timeout) => block(ctx, &args[1..last], BlockedOp::Pop(end), timeout),
        Err(e) => e,
    }
}

/// BLPOP key [key ...] timeout
pub fn blpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    blocking_pop(ctx, args, End::Left)
}

/// BRPOP key [key ...] timeout
pub fn brpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    blocking_pop(ctx, args, End::Right)
}

fn blocking_move(ctx: &mut Ctx<'_>, args: &[Bytes], from: End, to: End, timeout: &[u8]) -> Reply {
    let op = BlockedOp::Move {
        destination: Bytes::copy_from_slice(&args[2]),
        from,
        to,
    };
    match timeout_arg(timeout) {
        Ok(timeout) => block(ctx, &args[1..2], op, timeout),
        Err(e) => e,
    }
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
pub fn blmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match (end_arg(&args[3]), end_arg(&args[4])) {
        (Ok(from), Ok(to)) => blocking_move(ctx, args, from, to, &args[5]),
        (Err(e), _) | (_, Err(e)) => e,
    }
}

/// BRPOPLPUSH source destination timeout
pub fn brpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    blocking_move(ctx, args, End::Right, End::Left, &args[3])
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]: the timeout is read
/// after the other arguments, as in Redis.
pub fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply((|| {
        let (keys, end, wanted) = mpop_args(args, 2)?;
        let timeout = timeout_arg(&args[1])?;
        Ok(block(ctx, keys, BlockedOp::MultiPop(end, wanted), timeout))
    })())
}
