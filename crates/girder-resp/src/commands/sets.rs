//! Set commands.

use super::hashes::{random_count, scan_cursor, scan_options, scan_reply};
use super::{bulk_or_null, count, is, kv_error, parse_i64, reply, spec, syntax_error, Ctx, Spec};
use crate::codec::{Reply, Writer};
use bytes::Bytes;
use girder_kv::sets::{self as kv, SetOp};

/// The sets commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "sadd",
        -3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "set",
        "Add members.",
        sadd,
    ),
    spec(
        "srem",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "set",
        "Remove members.",
        srem,
    ),
    spec(
        "smembers",
        2,
        &["readonly"],
        (1, 1, 1),
        "set",
        "All members.",
        smembers,
    ),
    spec(
        "sismember",
        3,
        &["readonly", "fast"],
        (1, 1, 1),
        "set",
        "Whether a member is in the set.",
        sismember,
    ),
    spec(
        "smismember",
        -3,
        &["readonly", "fast"],
        (1, 1, 1),
        "set",
        "Whether each member is in the set.",
        smismember,
    ),
    spec(
        "scard",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "set",
        "Number of members.",
        scard,
    ),
    spec(
        "spop",
        -2,
        &["write", "fast"],
        (1, 1, 1),
        "set",
        "Remove and return random members.",
        spop,
    ),
    spec(
        "srandmember",
        -2,
        &["readonly"],
        (1, 1, 1),
        "set",
        "Random members.",
        srandmember,
    ),
    spec(
        "smove",
        4,
        &["write", "fast"],
        (1, 2, 1),
        "set",
        "Move a member to another set.",
        smove,
    ),
    spec(
        "sinter",
        -2,
        &["readonly"],
        (1, -1, 1),
        "set",
        "Intersect sets.",
        sinter,
    ),
    spec(
        "sintercard",
        -3,
        &["readonly", "movablekeys"],
        (0, 0, 0),
        "set",
        "Size of the intersection of sets.",
        sintercard,
    ),
    spec(
        "sunion",
        -2,
        &["readonly"],
        (1, -1, 1),
        "set",
        "Union of sets.",
        sunion,
    ),
    spec(
        "sdiff",
        -2,
        &["readonly"],
        (1, -1, 1),
        "set",
        "Difference of sets.",
        sdiff,
    ),
    spec(
        "sinterstore",
        -3,
        &["write", "denyoom"],
        (1, -1, 1),
        "set",
        "Store the intersection of sets.",
        sinterstore,
    ),
    spec(
        "sunionstore",
        -3,
        &["write", "denyoom"],
        (1, -1, 1),
        "set",
        "Store the union of sets.",
        sunionstore,
    ),
    spec(
        "sdiffstore",
        -3,
        &["write", "denyoom"],
        (1, -1, 1),
        "set",
        "Store the difference of sets.",
        sdiffstore,
    ),
    spec(
        "sscan",
        -3,
        &["readonly"],
        (1, 1, 1),
        "set",
        "Iterate members.",
        sscan,
    ),
];

fn refs(args: &[Bytes]) -> Vec<&[u8]> {
    args.iter().map(|a| a.as_ref()).collect()
}

fn bulk_array(items: Vec<Bytes>) -> Reply {
    Reply::Array(items.into_iter().map(Reply::Bulk).collect())
}

/// Set-valued replies (SMEMBERS, SINTER, SPOP with a count...) are RESP3 sets.
fn bulk_set(items: Vec<Bytes>) -> Reply {
    Reply::Set(items.into_iter().map(Reply::Bulk).collect())
}

pub fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::sadd(&db, &args[1], &refs(&args[2..])) {
                Ok(n) => count(n),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::srem(&db, &args[1], &refs(&args[2..])) {
                Ok(n) => count(n),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::smembers(&db, &args[1]) {
        Ok(members) => bulk_set(members),
        Err(e) => kv_error(e),
    }))
}

pub fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::sismember(&db, &args[1], &args[2]) {
                Ok(b) => count(usize::from(b)),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(
        |db| match kv::smismember(&db, &args[1], &refs(&args[2..])) {
            Ok(flags) => Reply::Array(flags.into_iter().map(|b| count(usize::from(b))).collect()),
            Err(e) => kv_error(e),
        },
    ))
}

pub fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::scard(&db, &args[1]) {
        Ok(n) => count(n),
        Err(e) => kv_error(e),
    }))
}

pub fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match args.len() {
        2 => reply(ctx.db().map(|db| match kv::spop(&db, &args[1]) {
            Ok(m) => bulk_or_null(m),
            Err(e) => kv_error(e),
        })),
        3 => {
            // Redis words every bad count, even a non-number, as out of range.
            let Some(n) = parse_i64(&args[2]).and_then(|n| usize::try_from(n).ok()) else {
                return Reply::error("ERR value is out of range, must be positive");
            };
            reply(ctx.db().map(|db| match kv::spop_count(&db, &args[1], n) {
                Ok(members) => bulk_set(members),
                Err(e) => kv_error(e),
            }))
        }
        _ => syntax_error(),
    }
}

pub fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match args.len() {
        2 => reply(ctx.db().map(|db| match kv::srandmember(&db, &args[1]) {
            Ok(m) => bulk_or_null(m),
            Err(e) => kv_error(e),
        })),
        3 => {
            let n = match random_count(&args[2]).and_then(super::bound_random_count) {
                Ok(n) => n,
                Err(e) => return e,
            };
            if n < 0 {
                // Repeats allowed: encoded as drawn (see `girder_kv::Picks`).
                let mut w = Writer::new(ctx.client.protocol);
                return reply(ctx.db().map(|db| {
                    match kv::srandmember_repeating(
                        &db,
                        &args[1],
                        n.unsigned_abs() as usize,
                        &mut w,
                    ) {
                        Ok(()) => w.finish(),
                        Err(e) => kv_error(e),
                    }
                }));
            }
            reply(
                ctx.db()
                    .map(|db| match kv::srandmember_count(&db, &args[1], n) {
                        Ok(members) => bulk_array(members),
                        Err(e) => kv_error(e),
                    }),
            )
        }
        _ => syntax_error(),
    }
}

pub fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::smove(&db, &args[1], &args[2], &args[3]) {
                Ok(moved) => count(usize::from(moved)),
                Err(e) => kv_error(e),
            }),
    )
}

fn combine(ctx: &mut Ctx<'_>, args: &[Bytes], op: SetOp) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::combine_sets(&db, &refs(&args[1..]), op) {
                Ok(members) => bulk_set(members),
                Err(e) => kv_error(e),
            }),
    )
}

fn combine_store(ctx: &mut Ctx<'_>, args: &[Bytes], op: SetOp) -> Reply {
    reply(ctx.db().map(
        |db| match kv::combine_store(&db, &args[1], &refs(&args[2..]), op) {
            Ok(n) => count(n),
            Err(e) => kv_error(e),
        },
    ))
}

pub fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine(ctx, args, SetOp::Inter)
}

pub fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine(ctx, args, SetOp::Union)
}

pub fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine(ctx, args, SetOp::Diff)
}

pub fn sinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_store(ctx, args, SetOp::Inter)
}

pub fn sunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_store(ctx, args, SetOp::Union)
}

pub fn sdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_store(ctx, args, SetOp::Diff)
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    // Redis uses the same words for a non-number as for a number out of range.
    let Some(numkeys) = parse_i64(&args[1])
        .filter(|&n| n > 0)
        .and_then(|n| usize::try_from(n).ok())
    else {
        return Reply::error("ERR numkeys should be greater than 0");
    };
    if numkeys > args.len() - 2 {
        return Reply::error("ERR Number of keys can't be greater than number of args");
    }
    let mut limit = 0;
    let mut rest = &args[2 + numkeys..];
    while let [option, tail @ ..] = rest {
        match tail {
            [value, tail @ ..] if is(option, "LIMIT") => {
                let Some(n) = parse_i64(value).and_then(|n| usize::try_from(n).ok()) else {
                    return Reply::error("ERR LIMIT can't be negative");
                };
                limit = n;
                rest = tail;
            }
            _ => return syntax_error(),
        }
    }
    reply(ctx.db().map(
        |db| match kv::sintercard(&db, &refs(&args[2..2 + numkeys]), limit) {
            Ok(n) => count(n),
            Err(e) => kv_error(e),
        },
    ))
}

pub fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let cursor = match scan_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    reply(ctx.db().map(|db| match scan_options(&args[3..]) {
        Ok(options) => match kv::sscan(&db, &args[1], cursor, options) {
            Ok((next, members)) => scan_reply(next, members.into_iter().map(Reply::Bulk).collect()),
            Err(e) => kv_error(e),
        },
        // As HSCAN: the key is looked up before the options are parsed.
        Err(bad_options) => match kv::scard(&db, &args[1]) {
            Ok(0) => scan_reply(0, Vec::new()),
            Ok(_) => bad_options,
            Err(e) => kv_error(e),
        },
    }))
}
