//! String commands.

use super::{bulk_or_null, count, int_arg, is, kv_error, reply, spec, syntax_error, Ctx, Spec};
use crate::codec::Reply;
use bytes::Bytes;
use girder_kv::strings::{self as kv, Lcs, LcsQuery, SetCondition, SetExpiry, SetOptions};
use girder_kv::KvError;

/// The strings commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "get",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "string",
        "Get a key's value.",
        get,
    ),
    spec(
        "set",
        -3,
        &["write", "denyoom"],
        (1, 1, 1),
        "string",
        "Set a key's value.",
        set,
    ),
    spec(
        "setnx",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "string",
        "Set if absent.",
        setnx,
    ),
    spec(
        "setex",
        4,
        &["write", "denyoom"],
        (1, 1, 1),
        "string",
        "Set with a TTL in seconds.",
        setex,
    ),
    spec(
        "psetex",
        4,
        &["write", "denyoom"],
        (1, 1, 1),
        "string",
        "Set with a TTL in milliseconds.",
        psetex,
    ),
    spec(
        "getset",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "string",
        "Set and return the old value.",
        getset,
    ),
    spec(
        "getdel",
        2,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Get and delete.",
        getdel,
    ),
    spec(
        "getex",
        -2,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Get and change the TTL.",
        getex,
    ),
    spec(
        "mget",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
        "string",
        "Get several keys.",
        mget,
    ),
    spec(
        "mset",
        -3,
        &["write", "denyoom"],
        (1, -1, 2),
        "string",
        "Set several keys.",
        mset,
    ),
    spec(
        "msetnx",
        -3,
        &["write", "denyoom"],
        (1, -1, 2),
        "string",
        "Set several keys if none exists.",
        msetnx,
    ),
    spec(
        "incr",
        2,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "string",
        "Add 1.",
        incr,
    ),
    spec(
        "decr",
        2,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "string",
        "Subtract 1.",
        decr,
    ),
    spec(
        "incrby",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "string",
        "Add an integer.",
        incrby,
    ),
    spec(
        "decrby",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "string",
        "Subtract an integer.",
        decrby,
    ),
    spec(
        "incrbyfloat",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "string",
        "Add a float.",
        incrbyfloat,
    ),
    spec(
        "append",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "string",
        "Append to a value.",
        append,
    ),
    spec(
        "strlen",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "string",
        "Length of a value.",
        strlen,
    ),
    spec(
        "getrange",
        4,
        &["readonly"],
        (1, 1, 1),
        "string",
        "A substring.",
        getrange,
    ),
    spec(
        "setrange",
        4,
        &["write", "denyoom"],
        (1, 1, 1),
        "string",
        "Overwrite part of a value.",
        setrange,
    ),
    spec(
        "lcs",
        -3,
        &["readonly"],
        (1, 2, 1),
        "string",
        "Longest common subsequence of two strings.",
        lcs,
    ),
];

pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::get_with(&db, &args[1], Reply::bulk_copy) {
                Ok(v) => v.unwrap_or(Reply::Null),
                Err(e) => kv_error(e),
            }),
    )
}

/// Resolves a relative or absolute expire argument to a deadline in ms, rejecting
/// values Redis rejects (zero, negative, overflowing).
pub(super) fn deadline(
    now_ms: u64,
    amount: &[u8],
    unit_ms: i64,
    absolute: bool,
    name: &str,
) -> Result<u64, Reply> {
    let invalid = || Reply::error(format!("ERR invalid expire time in '{name}' command"));
    let n = int_arg(amount)?;
    if n <= 0 {
        return Err(invalid());
    }
    let ms = n.checked_mul(unit_ms).ok_or_else(invalid)?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(now_ms as i64).ok_or_else(invalid)?
    };
    u64::try_from(at).map_err(|_| invalid())
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]
pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let db = match ctx.db() {
        Ok(db) => db,
        Err(e) => return e,
    };
    let mut options = SetOptions::default();
    let mut expiry_given = false;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        let has_next = i + 1 < args.len();
        if is(a, "NX") && options.condition != SetCondition::IfPresent {
            options.condition = SetCondition::IfAbsent;
        } else if is(a, "XX") && options.condition != SetCondition::IfAbsent {
            options.condition = SetCondition::IfPresent;
        } else if is(a, "GET") {
            options.return_old = true;
        } else if is(a, "KEEPTTL") && !expiry_given {
            options.expiry = SetExpiry::Keep;
            expiry_given = true;
        } else if !expiry_given
            && has_next
            && (is(a, "EX") || is(a, "PX") || is(a, "EXAT") || is(a, "PXAT"))
        {
            let (unit, absolute) = if is(a, "EX") {
                (1000, false)
            } else if is(a, "PX") {
                (1, false)
            } else if is(a, "EXAT") {
                (1000, true)
            } else {
                (1, true)
            };
            match deadline(db.now_ms(), &args[i + 1], unit, absolute, "set") {
                Ok(t) => options.expiry = SetExpiry::At(t),
                Err(e) => return e,
            }
            expiry_given = true;
            i += 1;
        } else {
            return syntax_error();
        }
        i += 1;
    }
    match kv::set(&db, &args[1], &args[2], options) {
        Ok(outcome) if options.return_old => bulk_or_null(outcome.old),
        Ok(outcome) if outcome.written => Reply::OK,
        Ok(_) => Reply::Null,
        Err(e) => kv_error(e),
    }
}

pub fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let options = SetOptions {
        condition: SetCondition::IfAbsent,
        ..SetOptions::default()
    };
    reply(
        ctx.db()
            .map(|db| match kv::set(&db, &args[1], &args[2], options) {
                Ok(o) => Reply::Integer(i64::from(o.written)),
                Err(e) => kv_error(e),
            }),
    )
}

fn set_with_ttl(ctx: &mut Ctx<'_>, args: &[Bytes], unit: i64, name: &str) -> Reply {
    let db = match ctx.db() {
        Ok(db) => db,
        Err(e) => return e,
    };
    let at = match deadline(db.now_ms(), &args[2], unit, false, name) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let options = SetOptions {
        expiry: SetExpiry::At(at),
        ..SetOptions::default()
    };
    match kv::set(&db, &args[1], &args[3], options) {
        Ok(_) => Reply::OK,
        Err(e) => kv_error(e),
    }
}

pub fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    set_with_ttl(ctx, args, 1000, "setex")
}

pub fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    set_with_ttl(ctx, args, 1, "psetex")
}

pub fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let options = SetOptions {
        return_old: true,
        ..SetOptions::default()
    };
    reply(
        ctx.db()
            .map(|db| match kv::set(&db, &args[1], &args[2], options) {
                Ok(o) => bulk_or_null(o.old),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::getdel(&db, &args[1]) {
        Ok(v) => bulk_or_null(v),
        Err(e) => kv_error(e),
    }))
}

/// GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]
pub fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let db = match ctx.db() {
        Ok(db) => db,
        Err(e) => return e,
    };
    let change = match &args[2..] {
        [] => None,
        [flag] if is(flag, "PERSIST") => Some(None),
        [flag, amount] => {
            let (unit, absolute) = if is(flag, "EX") {
                (1000, false)
            } else if is(flag, "PX") {
                (1, false)
            } else if is(flag, "EXAT") {
                (1000, true)
            } else if is(flag, "PXAT") {
                (1, true)
            } else {
                return syntax_error();
            };
            match deadline(db.now_ms(), amount, unit, absolute, "getex") {
                Ok(t) => Some(Some(t)),
                Err(e) => return e,
            }
        }
        _ => return syntax_error(),
    };
    match kv::getex(&db, &args[1], change) {
        Ok(v) => bulk_or_null(v),
        Err(e) => kv_error(e),
    }
}

pub fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let keys: Vec<&[u8]> = args[1..].iter().map(|a| a.as_ref()).collect();
    reply(
        ctx.db()
            .map(|db| Reply::Array(kv::mget(&db, &keys).into_iter().map(bulk_or_null).collect())),
    )
}

/// MSET and MSETNX: `Ok(written)` or the error reply.
fn mset_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool, name: &str) -> Result<bool, Reply> {
    if args.len().is_multiple_of(2) {
        return Err(super::wrong_arity(name));
    }
    let pairs: Vec<(&[u8], &[u8])> = args[1..]
        .chunks(2)
        .map(|p| (p[0].as_ref(), p[1].as_ref()))
        .collect();
    let db = ctx.db()?;
    kv::mset(&db, &pairs, nx).map_err(kv_error)
}

pub fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(mset_generic(ctx, args, false, "mset").map(|_| Reply::OK))
}

pub fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(mset_generic(ctx, args, true, "msetnx").map(|w| Reply::Integer(i64::from(w))))
}

fn incr_generic(ctx: &mut Ctx<'_>, key: &[u8], delta: Result<i64, Reply>) -> Reply {
    let result = delta.and_then(|d| {
        let db = ctx.db()?;
        kv::incr_by(&db, key, d).map_err(kv_error)
    });
    reply(result.map(Reply::Integer))
}

pub fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    incr_generic(ctx, &args[1], Ok(1))
}

pub fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    incr_generic(ctx, &args[1], Ok(-1))
}

pub fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    incr_generic(ctx, &args[1], int_arg(&args[2]))
}

pub fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let delta = int_arg(&args[2]).and_then(|d| {
        d.checked_neg()
            .ok_or_else(|| Reply::error("ERR decrement would overflow"))
    });
    incr_generic(ctx, &args[1], delta)
}

pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::incr_by_float(&db, &args[1], &args[2]) {
                Ok(v) => Reply::Bulk(v),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::append(&db, &args[1], &args[2]) {
                Ok(n) => count(n),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::strlen(&db, &args[1]) {
        Ok(n) => count(n),
        Err(e) => kv_error(e),
    }))
}

pub fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (start, end) = match (int_arg(&args[2]), int_arg(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    reply(
        ctx.db()
            .map(|db| match kv::getrange(&db, &args[1], start, end) {
                Ok(v) => Reply::Bulk(v),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let offset = match int_arg(&args[2]) {
        Ok(o) if o >= 0 => o as usize,
        Ok(_) => return Reply::error("ERR offset is out of range"),
        Err(e) => return e,
    };
    reply(
        ctx.db()
            .map(|db| match kv::setrange(&db, &args[1], offset, &args[3]) {
                Ok(n) => count(n),
                Err(e) => kv_error(e),
            }),
    )
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]. As in Redis, the key
/// types are checked before the options; the table is computed after the keys are read,
/// outside any lock.
pub fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let read = ctx
        .db()
        .map(|db| (kv::lcs_values(&db, &args[1], &args[2]), db.max_string_len()));
    let (a, b, max_table_bytes) = match read {
        Err(r) => return r,
        Ok((Err(KvError::WrongType), _)) => {
            return Reply::error("ERR The specified keys must contain string values")
        }
        Ok((Err(e), _)) => return kv_error(e),
        Ok((Ok((a, b)), max)) => (a, b, max),
    };
    let (mut len, mut idx, mut with_len, mut min_len) = (false, false, false, 0usize);
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        if is(opt, "idx") {
            idx = true;
        } else if is(opt, "len") {
            len = true;
        } else if is(opt, "withmatchlen") {
            with_len = true;
        } else if is(opt, "minmatchlen") && i + 1 < args.len() {
            // Negative minimums mean no minimum.
            min_len = match int_arg(&args[i + 1]) {
                Ok(n) => usize::try_from(n).unwrap_or(0),
                Err(e) => return e,
            };
            i += 1;
        } else {
            return syntax_error();
        }
        i += 1;
    }
    if len && idx {
        return Reply::error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let query = if idx {
        LcsQuery::Matches { min_len }
    } else if len {
        LcsQuery::Len
    } else {
        LcsQuery::Text
    };
    let range = |(start, end): (usize, usize)| Reply::Array(vec![count(start), count(end)]);
    match kv::lcs(&a, &b, query, max_table_bytes) {
        Err(e) => Reply::error(e.to_string()),
        Ok(Lcs::Text(s)) => Reply::Bulk(s),
        Ok(Lcs::Len(n)) => count(n),
        Ok(Lcs::Matches { matches, len }) => {
            let matches = matches
                .iter()
                .map(|m| {
                    let mut item = vec![range(m.a), range(m.b)];
                    if with_len {
                        item.push(count(m.run_len()));
                    }
                    Reply::Array(item)
                })
                .collect();
            Reply::Map(vec![
                (
                    Reply::Bulk(Bytes::from_static(b"matches")),
                    Reply::Array(matches),
                ),
                (Reply::Bulk(Bytes::from_static(b"len")), count(len)),
            ])
        }
    }
}
