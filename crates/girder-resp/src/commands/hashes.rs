//! Hash commands, and the cursor/option parsing HSCAN shares with SSCAN.

use super::{
    bulk_or_null, count, int_arg, is, kv_error, parse_i64, reply, spec, syntax_error, wrong_arity,
    Ctx, Spec,
};
use crate::codec::{Protocol, Reply, Writer};
use bytes::Bytes;
use girder_kv::hashes::{self as kv, ScanOptions};
use girder_kv::long_double::{Invalid, LongDouble};

/// The hashes commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "hset",
        -4,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "hash",
        "Set fields of a hash.",
        hset,
    ),
    spec(
        "hsetnx",
        4,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "hash",
        "Set a field if it does not exist.",
        hsetnx,
    ),
    spec(
        "hget",
        3,
        &["readonly", "fast"],
        (1, 1, 1),
        "hash",
        "The value of a field.",
        hget,
    ),
    spec(
        "hmget",
        -3,
        &["readonly", "fast"],
        (1, 1, 1),
        "hash",
        "The values of several fields.",
        hmget,
    ),
    spec(
        "hmset",
        -4,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "hash",
        "Set fields of a hash (replies OK).",
        hmset,
    ),
    spec(
        "hdel",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "hash",
        "Delete fields.",
        hdel,
    ),
    spec(
        "hexists",
        3,
        &["readonly", "fast"],
        (1, 1, 1),
        "hash",
        "Whether a field exists.",
        hexists,
    ),
    spec(
        "hlen",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "hash",
        "Number of fields.",
        hlen,
    ),
    spec(
        "hstrlen",
        3,
        &["readonly", "fast"],
        (1, 1, 1),
        "hash",
        "Length of a field's value.",
        hstrlen,
    ),
    spec(
        "hgetall",
        2,
        &["readonly"],
        (1, 1, 1),
        "hash",
        "All fields and values.",
        hgetall,
    ),
    spec(
        "hkeys",
        2,
        &["readonly"],
        (1, 1, 1),
        "hash",
        "All fields.",
        hkeys,
    ),
    spec(
        "hvals",
        2,
        &["readonly"],
        (1, 1, 1),
        "hash",
        "All values.",
        hvals,
    ),
    spec(
        "hincrby",
        4,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "hash",
        "Add an integer to a field.",
        hincrby,
    ),
    spec(
        "hincrbyfloat",
        4,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "hash",
        "Add a float to a field.",
        hincrbyfloat,
    ),
    spec(
        "hrandfield",
        -2,
        &["readonly"],
        (1, 1, 1),
        "hash",
        "Random fields.",
        hrandfield,
    ),
    spec(
        "hscan",
        -3,
        &["readonly"],
        (1, 1, 1),
        "hash",
        "Iterate fields and values.",
        hscan,
    ),
];

fn refs(args: &[Bytes]) -> Vec<&[u8]> {
    args.iter().map(|a| a.as_ref()).collect()
}

fn pairs(args: &[Bytes]) -> Vec<(&[u8], &[u8])> {
    args.chunks_exact(2)
        .map(|c| (c[0].as_ref(), c[1].as_ref()))
        .collect()
}

fn bulks(items: Vec<Bytes>) -> Reply {
    Reply::Array(items.into_iter().map(Reply::Bulk).collect())
}

fn hset_generic(ctx: &mut Ctx<'_>, args: &[Bytes], name: &str) -> Result<usize, Reply> {
    if args.len() % 2 == 1 {
        return Err(wrong_arity(name));
    }
    let db = ctx.db()?;
    kv::hset(&db, &args[1], &pairs(&args[2..])).map_err(kv_error)
}

pub fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(hset_generic(ctx, args, "hset").map(count))
}

pub fn hmset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(hset_generic(ctx, args, "hmset").map(|_| Reply::OK))
}

pub fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::hsetnx(&db, &args[1], &args[2], &args[3]) {
                Ok(set) => count(usize::from(set)),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::hget(&db, &args[1], &args[2]) {
        Ok(v) => bulk_or_null(v),
        Err(e) => kv_error(e),
    }))
}

pub fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::hmget(&db, &args[1], &refs(&args[2..])) {
                Ok(values) => Reply::Array(values.into_iter().map(bulk_or_null).collect()),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::hdel(&db, &args[1], &refs(&args[2..])) {
                Ok(n) => count(n),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::hexists(&db, &args[1], &args[2]) {
                Ok(b) => count(usize::from(b)),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::hlen(&db, &args[1]) {
        Ok(n) => count(n),
        Err(e) => kv_error(e),
    }))
}

pub fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::hstrlen(&db, &args[1], &args[2]) {
                Ok(n) => count(n),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| {
        match kv::hgetall(&db, &args[1]) {
            Ok(pairs) => Reply::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Reply::Bulk(k), Reply::Bulk(v)))
                    .collect(),
            ),
            Err(e) => kv_error(e),
        }
    }))
}

pub fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::hkeys(&db, &args[1]) {
        Ok(keys) => bulks(keys),
        Err(e) => kv_error(e),
    }))
}

pub fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::hvals(&db, &args[1]) {
        Ok(values) => bulks(values),
        Err(e) => kv_error(e),
    }))
}

pub fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let delta = match int_arg(&args[3]) {
        Ok(d) => d,
        Err(e) => return e,
    };
    reply(
        ctx.db()
            .map(|db| match kv::hincrby(&db, &args[1], &args[2], delta) {
                Ok(n) => Reply::Integer(n),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    // Unlike INCRBYFLOAT, Redis reads the increment, and rejects an infinite one,
    // before looking at the key.
    let delta = match LongDouble::parse(&args[3]) {
        Ok(d) => d,
        Err(Invalid::NotANumber) => return Reply::error("ERR value is not a valid float"),
        Err(Invalid::Infinite) => return Reply::error("ERR value is NaN or Infinity"),
    };
    reply(ctx.db().map(
        |db| match kv::hincrbyfloat(&db, &args[1], &args[2], delta) {
            Ok(v) => Reply::Bulk(v),
            Err(e) => kv_error(e),
        },
    ))
}

/// The count of HRANDFIELD and SRANDMEMBER: any i64 but `i64::MIN` (Redis takes
/// `-LONG_MAX..=LONG_MAX`).
pub(super) fn random_count(arg: &[u8]) -> Result<i64, Reply> {
    match parse_i64(arg) {
        None => Err(super::not_integer()),
        Some(i64::MIN) => Err(Reply::error(
            "ERR value is out of range, value must between -9223372036854775807 and \
             9223372036854775807",
        )),
        Some(n) => Ok(n),
    }
}

pub fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() == 2 {
        return reply(ctx.db().map(|db| match kv::hrandfield(&db, &args[1]) {
            Ok(pick) => bulk_or_null(pick.map(|(k, _)| k)),
            Err(e) => kv_error(e),
        }));
    }
    let n = match random_count(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if args.len() > 4 || (args.len() == 4 && !is(&args[3], "WITHVALUES")) {
        return syntax_error();
    }
    let with_values = args.len() == 4;
    // Redis bounds the count so that the reply's length (twice it) cannot overflow.
    if with_values && n.unsigned_abs() > i64::MAX as u64 / 2 {
        return Reply::error("ERR value is out of range");
    }
    if let Err(e) = super::bound_random_count(n) {
        return e;
    }
    let resp3 = ctx.client.protocol == Protocol::Resp3;
    if n < 0 {
        // Repeats allowed: encoded as drawn (see `girder_kv::Picks`).
        let mut w = RandomFields {
            w: Writer::new(ctx.client.protocol),
            with_values,
        };
        return reply(ctx.db().map(|db| {
            match kv::hrandfield_repeating(&db, &args[1], n.unsigned_abs() as usize, &mut w) {
                Ok(()) => w.w.finish(),
                Err(e) => kv_error(e),
            }
        }));
    }
    reply(ctx.db().map(|db| {
        match kv::hrandfield_count(&db, &args[1], n) {
            Ok(picks) if with_values && resp3 => Reply::Array(
                picks
                    .into_iter()
                    .map(|(k, v)| Reply::Array(vec![Reply::Bulk(k), Reply::Bulk(v)]))
                    .collect(),
            ),
            Ok(picks) if with_values => Reply::Array(
                picks
                    .into_iter()
                    .flat_map(|(k, v)| [Reply::Bulk(k), Reply::Bulk(v)])
                    .collect(),
            ),
            Ok(picks) => Reply::Array(picks.into_iter().map(|(k, _)| Reply::Bulk(k)).collect()),
            Err(e) => kv_error(e),
        }
    }))
}

/// HRANDFIELD's repeated picks: fields, or with values fields and values (flat in
/// RESP2, `[field, value]` pairs in RESP3).
struct RandomFields {
    w: Writer,
    with_values: bool,
}

impl girder_kv::Picks<[u8]> for RandomFields {
    fn count(&mut self, n: usize) {
        let flat = self.with_values && self.w.protocol() == Protocol::Resp2;
        self.w.array(if flat { n.saturating_mul(2) } else { n });
    }

    fn pick(&mut self, field: &[u8], value: &[u8]) {
        if !self.with_values {
            return self.w.bulk(field);
        }
        if self.w.protocol() == Protocol::Resp3 {
            self.w.array(2);
        }
        self.w.bulk(field);
        self.w.bulk(value);
    }
}

/// Parses `[MATCH pattern] [COUNT n]` (repeatable, any order) as Redis's scan does.
pub(super) fn scan_options(args: &[Bytes]) -> Result<ScanOptions<'_>, Reply> {
    let mut options = ScanOptions {
        pattern: None,
        count: 10,
    };
    let mut rest = args;
    while let [option, value, tail @ ..] = rest {
        if is(option, "COUNT") {
            let n = int_arg(value)?;
            options.count = usize::try_from(n)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(syntax_error)?;
        } else if is(option, "MATCH") {
            // `*` matches everything: skip matching altogether, as Redis does.
            options.pattern = (value.as_ref() != b"*").then_some(value.as_ref());
        } else {
            return Err(syntax_error());
        }
        rest = tail;
    }
    if rest.is_empty() {
        Ok(options)
    } else {
        Err(syntax_error())
    }
}

/// Parses a SCAN cursor as Redis does (`strtoul`, base 10): an optional sign, digits, no
/// leading space; a negative value wraps; the empty string is 0. `None` is `invalid cursor`.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (negative, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        return arg.is_empty().then_some(0);
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// The cursor argument of HSCAN/SSCAN.
pub(super) fn scan_cursor(arg: &[u8]) -> Result<u64, Reply> {
    parse_cursor(arg).ok_or_else(|| Reply::error("ERR invalid cursor"))
}

/// `[cursor, [items...]]`, arrays in both protocols.
pub(super) fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk(cursor.to_string()), Reply::Array(items)])
}

pub fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let cursor = match scan_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    reply(ctx.db().map(|db| {
        match scan_options(&args[3..]) {
            Ok(options) => match kv::hscan(&db, &args[1], cursor, options) {
                Ok((next, items)) => scan_reply(
                    next,
                    items
                        .into_iter()
                        .flat_map(|(k, v)| [Reply::Bulk(k), Reply::Bulk(v)])
                        .collect(),
                ),
                Err(e) => kv_error(e),
            },
            // Redis looks the key up before parsing options: a missing key is an empty scan
            // and a wrong type an error, whatever the options say.
            Err(bad_options) => match kv::hlen(&db, &args[1]) {
                Ok(0) => scan_reply(0, Vec::new()),
                Ok(_) => bad_options,
                Err(e) => kv_error(e),
            },
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursor_parsing_follows_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+5"), Some(5));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b" 5"), None);
        assert_eq!(parse_cursor(b"5x"), None);
        assert_eq!(parse_cursor(b"-"), None);
    }
}
