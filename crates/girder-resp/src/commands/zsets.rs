//! Sorted set commands (ZADD, ZRANGE, ZUNIONSTORE, ...).
//!
//! Scores print as Redis 7.0 prints them, `%.17g` ([`format_score`]): in RESP2 as bulk
//! strings, byte for byte; in RESP3 as doubles. Argument errors come in Redis's order:
//! options are parsed before the key is looked up, except where Redis looks first
//! (ZPOPMIN's zero count, ZSCAN's options, the inputs of ZUNION and friends).
//!
//! Every command that adds members announces the key to [`crate::blocking`] once its
//! keyspace handle is released, so that clients blocked on it (BZPOPMIN...) are served.
//!
//! Known differences from Redis 7.0:
//! - RESP3 doubles are written in their shortest form (`,0.1`), Redis writes `%.17g`
//!   (`,0.10000000000000001`): the same value, other digits.
//! - ZSCAN answers in one reply with cursor 0 whatever the size; Redis pages sets past
//!   its compact encoding (128 members) with real cursors.
//! - ZRANDMEMBER with a huge negative count builds the whole reply in memory, as Redis
//!   does in its output buffer; there is no cap.

use super::lists::{announce_push, block, timeout_arg};
use super::{count, int_arg, is, kv_error, parse_i64, reply, spec, syntax_error, Ctx, Spec};
use crate::blocking::BlockedOp;
use crate::codec::{Protocol, Reply, Writer};
use bytes::Bytes;
use girder_kv::zsets::{
    self as kv, AddOptions, Aggregate, CombineOptions, LexBound, LexRange, RangeQuery, RangeSpec,
    ScoreRange, SetOp,
};

/// The sorted set commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "zadd",
        -4,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "sortedset",
        "Add members or update their scores.",
        zadd,
    ),
    spec(
        "zincrby",
        4,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        "sortedset",
        "Increment a member's score.",
        zincrby,
    ),
    spec(
        "zrem",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "sortedset",
        "Remove members.",
        zrem,
    ),
    spec(
        "zscore",
        3,
        &["readonly", "fast"],
        (1, 1, 1),
        "sortedset",
        "A member's score.",
        zscore,
    ),
    spec(
        "zmscore",
        -3,
        &["readonly", "fast"],
        (1, 1, 1),
        "sortedset",
        "Several members' scores.",
        zmscore,
    ),
    spec(
        "zcard",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "sortedset",
        "Number of members.",
        zcard,
    ),
    spec(
        "zcount",
        4,
        &["readonly", "fast"],
        (1, 1, 1),
        "sortedset",
        "Members within a score range.",
        zcount,
    ),
    spec(
        "zlexcount",
        4,
        &["readonly", "fast"],
        (1, 1, 1),
        "sortedset",
        "Members within a lexicographic range.",
        zlexcount,
    ),
    spec(
        "zrange",
        -4,
        &["readonly"],
        (1, 1, 1),
        "sortedset",
        "Members by index, score or lexicographic range.",
        zrange,
    ),
    spec(
        "zrangestore",
        -5,
        &["write", "denyoom"],
        (1, 2, 1),
        "sortedset",
        "Store a range of members.",
        zrangestore,
    ),
    spec(
        "zrangebyscore",
        -4,
        &["readonly"],
        (1, 1, 1),
        "sortedset",
        "Members within a score range.",
        zrangebyscore,
    ),
    spec(
        "zrevrangebyscore",
        -4,
        &["readonly"],
        (1, 1, 1),
        "sortedset",
        "Members within a score range, high to low.",
        zrevrangebyscore,
    ),
    spec(
        "zrangebylex",
        -4,
        &["readonly"],
        (1, 1, 1),
        "sortedset",
        "Members within a lexicographic range.",
        zrangebylex,
    ),
    spec(
        "zrevrangebylex",
        -4,
        &["readonly"],
        (1, 1, 1),
        "sortedset",
        "Members within a lexicographic range, high to low.",
        zrevrangebylex,
    ),
    spec(
        "zrevrange",
        -4,
        &["readonly"],
        (1, 1, 1),
        "sortedset",
        "Members by index, high to low.",
        zrevrange,
    ),
    spec(
        "zrank",
        3,
        &["readonly", "fast"],
        (1, 1, 1),
        "sortedset",
        "A member's index.",
        zrank,
    ),
    spec(
        "zrevrank",
        3,
        &["readonly", "fast"],
        (1, 1, 1),
        "sortedset",
        "A member's index, high to low.",
        zrevrank,
    ),
    spec(
        "zpopmin",
        -2,
        &["write", "fast"],
        (1, 1, 1),
        "sortedset",
        "Remove and return the lowest members.",
        zpopmin,
    ),
    spec(
        "zpopmax",
        -2,
        &["write", "fast"],
        (1, 1, 1),
        "sortedset",
        "Remove and return the highest members.",
        zpopmax,
    ),
    spec(
        "zmpop",
        -4,
        &["write", "movablekeys"],
        (0, 0, 0),
        "sortedset",
        "Pop from the first non-empty sorted set.",
        zmpop,
    ),
    spec(
        "bzpopmin",
        -3,
        &["write", "noscript", "fast", "blocking"],
        (1, -2, 1),
        "sortedset",
        "Pop the lowest member of the first non-empty sorted set, or block until one is added.",
        bzpopmin,
    ),
    spec(
        "bzpopmax",
        -3,
        &["write", "noscript", "fast", "blocking"],
        (1, -2, 1),
        "sortedset",
        "Pop the highest member of the first non-empty sorted set, or block until one is added.",
        bzpopmax,
    ),
    spec(
        "bzmpop",
        -5,
        &["write", "blocking", "movablekeys"],
        (0, 0, 0),
        "sortedset",
        "Pop from the first non-empty sorted set, or block until one is added.",
        bzmpop,
    ),
    spec(
        "zremrangebyscore",
        4,
        &["write"],
        (1, 1, 1),
        "sortedset",
        "Remove members within a score range.",
        zremrangebyscore,
    ),
    spec(
        "zremrangebyrank",
        4,
        &["write"],
        (1, 1, 1),
        "sortedset",
        "Remove members by index.",
        zremrangebyrank,
    ),
    spec(
        "zremrangebylex",
        4,
        &["write"],
        (1, 1, 1),
        "sortedset",
        "Remove members within a lexicographic range.",
        zremrangebylex,
    ),
    spec(
        "zunion",
        -3,
        &["readonly", "movablekeys"],
        (0, 0, 0),
        "sortedset",
        "Union of sorted sets.",
        zunion,
    ),
    spec(
        "zinter",
        -3,
        &["readonly", "movablekeys"],
        (0, 0, 0),
        "sortedset",
        "Intersection of sorted sets.",
        zinter,
    ),
    spec(
        "zdiff",
        -3,
        &["readonly", "movablekeys"],
        (0, 0, 0),
        "sortedset",
        "Difference of sorted sets.",
        zdiff,
    ),
    spec(
        "zunionstore",
        -4,
        &["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        "sortedset",
        "Store a union of sorted sets.",
        zunionstore,
    ),
    spec(
        "zinterstore",
        -4,
        &["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        "sortedset",
        "Store an intersection of sorted sets.",
        zinterstore,
    ),
    spec(
        "zdiffstore",
        -4,
        &["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        "sortedset",
        "Store a difference of sorted sets.",
        zdiffstore,
    ),
    spec(
        "zintercard",
        -3,
        &["readonly", "movablekeys"],
        (0, 0, 0),
        "sortedset",
        "Size of an intersection.",
        zintercard,
    ),
    spec(
        "zrandmember",
        -2,
        &["readonly"],
        (1, 1, 1),
        "sortedset",
        "Random members.",
        zrandmember,
    ),
    spec(
        "zscan",
        -3,
        &["readonly"],
        (1, 1, 1),
        "sortedset",
        "Iterate members and scores.",
        zscan,
    ),
];

/// Formats a score as Redis 7.0 does (`%.17g`): 17 significant digits, trailing zeros
/// dropped, an exponent below 1e-4 and from 1e17 up; `inf`, `-inf`.
pub fn format_score(d: f64) -> String {
    match integral(d) {
        Some(i) => itoa::Buffer::new().format(i).to_owned(),
        None => format_g17(d),
    }
}

/// `%.17g` itself, through Rust's float formatting.
fn format_g17(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{d:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..17).contains(&exp) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = usize::try_from(16 - exp).unwrap_or(0);
        trim_fraction(&format!("{d:.decimals$}")).to_owned()
    }
}

/// A score that `%.17g` prints as a plain integer: integral, not -0, and under 1e17 in
/// magnitude (17 digits at most, so no exponent and no rounding). Counters and
/// timestamps, the common scores, take this path without any float formatting.
fn integral(d: f64) -> Option<i64> {
    (d.fract() == 0.0 && d.abs() < 1e17 && !(d == 0.0 && d.is_sign_negative())).then_some(d as i64)
}

/// A score as a RESP2 bulk string, without a heap allocation when it is integral.
fn score_bulk(d: f64) -> Reply {
    match integral(d) {
        Some(i) => Reply::bulk_copy(itoa::Buffer::new().format(i).as_bytes()),
        None => Reply::bulk_copy(format_score(d).as_bytes()),
    }
}

/// `1.5000` → `1.5`, `2.000` → `2`: `%g` drops trailing zeros.
fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// C's `isspace`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// C's `strtod` on the whole of `b` (leading white space allowed): the value, how many
/// bytes it used, and whether it overflowed or underflowed to zero (`ERANGE`).
fn strtod(b: &[u8]) -> (f64, usize, bool) {
    let mut i = 0;
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    let start = i;
    let negative = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let sign = if negative { -1.0 } else { 1.0 };
    let rest = &b[i..];
    let starts =
        |word: &[u8]| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word);
    if starts(b"infinity") {
        return (sign * f64::INFINITY, i + 8, false);
    }
    if starts(b"inf") {
        return (sign * f64::INFINITY, i + 3, false);
    }
    if starts(b"nan") {
        return (f64::NAN, i + 3, false);
    }
    if (starts(b"0x"))
        && rest
            .get(2)
            .is_some_and(|c| c.is_ascii_hexdigit() || *c == b'.')
    {
        if let Some((v, used)) = hex_float(&rest[2..]) {
            return (sign * v, i + 2 + used, v.is_infinite());
        }
    }
    // Decimal: digits, optional fraction, optional exponent; at least one digit.
    let mut j = i;
    let digits = |j: &mut usize| {
        let from = *j;
        while *j < b.len() && b[*j].is_ascii_digit() {
            *j += 1;
        }
        *j - from
    };
    let mut n = digits(&mut j);
    if b.get(j) == Some(&b'.') {
        j += 1;
        n += digits(&mut j);
    }
    if n == 0 {
        return (0.0, 0, false);
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if digits(&mut k) > 0 {
            j = k;
        }
    }
    let text = std::str::from_utf8(&b[start..j]).unwrap_or("0");
    let v: f64 = text.parse().unwrap_or(0.0);
    let nonzero_digits = b[i..j]
        .iter()
        .take_while(|c| !matches!(c, b'e' | b'E'))
        .any(|c| (b'1'..=b'9').contains(c));
    let erange = v.is_infinite() || (v == 0.0 && nonzero_digits);
    (v, j, erange)
}

/// The digits after `0x` of a hex float (`1.8p3`): value and bytes used.
fn hex_float(b: &[u8]) -> Option<(f64, usize)> {
    let mut v = 0.0f64;
    let mut i = 0;
    let mut any = false;
    while i < b.len() && b[i].is_ascii_hexdigit() {
        v = v * 16.0 + f64::from((b[i] as char).to_digit(16)?);
        i += 1;
        any = true;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 1.0 / 16.0;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            v += f64::from((b[i] as char).to_digit(16)?) * scale;
            scale /= 16.0;
            i += 1;
            any = true;
        }
    }
    if !any {
        return None;
    }
    if matches!(b.get(i), Some(b'p' | b'P')) {
        let mut k = i + 1;
        let neg = b.get(k) == Some(&b'-');
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let from = k;
        let mut e: i32 = 0;
        while k < b.len() && b[k].is_ascii_digit() {
            e = e.saturating_mul(10).saturating_add(i32::from(b[k] - b'0'));
            k += 1;
        }
        if k > from {
            v *= 2f64.powi(if neg { -e } else { e });
            i = k;
        }
    }
    Some((v, i))
}

/// A float argument as Redis's `getDoubleFromObject`: the whole string, no leading
/// space, no overflow, not NaN.
fn strict_float(b: &[u8]) -> Option<f64> {
    if b.is_empty() || is_space(b[0]) {
        return None;
    }
    let (v, used, erange) = strtod(b);
    (used == b.len() && !erange && !v.is_nan()).then_some(v)
}

fn float_arg(b: &[u8], error: &str) -> Result<f64, Reply> {
    strict_float(b).ok_or_else(|| Reply::error(error))
}

const NOT_FLOAT: &str = "ERR value is not a valid float";

/// A score range bound as Redis's `zslParseRange`: `(` for exclusive, then anything
/// `strtod` reads entirely (so `""` is 0 and `inf` works), never NaN.
fn score_bound(b: &[u8]) -> Option<(f64, bool)> {
    let (text, ex) = match b.first() {
        Some(b'(') => (&b[1..], true),
        _ => (b, false),
    };
    if text.is_empty() {
        // strtod reads nothing and stops at the end: 0.
        return Some((0.0, ex));
    }
    let (v, used, _) = strtod(text);
    (used == text.len() && !v.is_nan()).then_some((v, ex))
}

fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
    let error = || Reply::error("ERR min or max is not a float");
    let (min, min_ex) = score_bound(min).ok_or_else(error)?;
    let (max, max_ex) = score_bound(max).ok_or_else(error)?;
    Ok(ScoreRange {
        min,
        min_ex,
        max,
        max_ex,
    })
}

fn lex_bound(b: &[u8]) -> Option<LexBound> {
    match b {
        b"+" => Some(LexBound::PosInf),
        b"-" => Some(LexBound::NegInf),
        [b'(', rest @ ..] => Some(LexBound::Excl(Bytes::copy_from_slice(rest))),
        [b'[', rest @ ..] => Some(LexBound::Incl(Bytes::copy_from_slice(rest))),
        _ => None,
    }
}

fn lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, Reply> {
    let error = || Reply::error("ERR min or max not valid string range item");
    Ok(LexRange {
        min: lex_bound(min).ok_or_else(error)?,
        max: lex_bound(max).ok_or_else(error)?,
    })
}

/// A score in the connection's protocol: a bulk string in RESP2, a double in RESP3.
fn score_reply(protocol: Protocol, score: f64) -> Reply {
    match protocol {
        Protocol::Resp2 => score_bulk(score),
        Protocol::Resp3 => Reply::Double(score),
    }
}

/// Members, with scores when asked: flat in RESP2, `[member, score]` pairs in RESP3.
fn members_reply(protocol: Protocol, items: Vec<(Bytes, f64)>, withscores: bool) -> Reply {
    if !withscores {
        return Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect());
    }
    match protocol {
        Protocol::Resp2 => Reply::Array(
            items
                .into_iter()
                .flat_map(|(m, s)| [Reply::Bulk(m), score_reply(protocol, s)])
                .collect(),
        ),
        Protocol::Resp3 => Reply::Array(
            items
                .into_iter()
                .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), score_reply(protocol, s)]))
                .collect(),
        ),
    }
}

fn slices(args: &[Bytes]) -> Vec<&[u8]> {
    args.iter().map(|a| a.as_ref()).collect()
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
pub fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut opts = AddOptions::default();
    let mut ch = false;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if is(a, "NX") {
            opts.nx = true;
        } else if is(a, "XX") {
            opts.xx = true;
        } else if is(a, "CH") {
            ch = true;
        } else if is(a, "INCR") {
            opts.incr = true;
        } else if is(a, "GT") {
            opts.gt = true;
        } else if is(a, "LT") {
            opts.lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() || rest.len() % 2 == 1 {
        return syntax_error();
    }
    if opts.nx && opts.xx {
        return Reply::error("ERR XX and NX options at the same time are not compatible");
    }
    if (opts.nx && (opts.gt || opts.lt)) || (opts.gt && opts.lt) {
        return Reply::error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if opts.incr && rest.len() > 2 {
        return Reply::error("ERR INCR option supports a single increment-element pair");
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        match float_arg(&p[0], NOT_FLOAT) {
            Ok(s) => pairs.push((s, p[1].as_ref())),
            Err(e) => return e,
        }
    }
    add_reply(ctx, &args[1], &pairs, opts, ch)
}

fn add_reply(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    pairs: &[(f64, &[u8])],
    opts: AddOptions,
    ch: bool,
) -> Reply {
    let protocol = ctx.client.protocol;
    let outcome = ctx
        .db()
        .and_then(|db| kv::add(&db, key, pairs, opts).map_err(kv_error));
    let o = match outcome {
        Ok(o) if o.nan => return Reply::error("ERR resulting score is not a number (NaN)"),
        Ok(o) => o,
        Err(e) => return e,
    };
    if o.added + o.updated > 0 {
        let event = if opts.incr { "zincr" } else { "zadd" };
        crate::notify::note(ctx, crate::notify::ZSET, event, key);
    }
    // Only a new member can make a missing key non-empty, which is what waiters need.
    if o.added > 0 {
        announce_push(ctx, key);
    }
    if opts.incr {
        if o.processed > 0 {
            score_reply(protocol, o.score)
        } else {
            Reply::Null
        }
    } else {
        count(if ch { o.added + o.updated } else { o.added })
    }
}

pub fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let delta = match float_arg(&args[2], NOT_FLOAT) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let opts = AddOptions {
        incr: true,
        ..AddOptions::default()
    };
    add_reply(ctx, &args[1], &[(delta, args[3].as_ref())], opts, false)
}

pub fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let members = slices(&args[2..]);
    reply(
        ctx.db()
            .map(|db| match kv::remove(&db, &args[1], &members) {
                Ok(n) => count(n),
                Err(e) => kv_error(e),
            }),
    )
}

pub fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let protocol = ctx.client.protocol;
    reply(ctx.db().map(|db| match kv::score(&db, &args[1], &args[2]) {
        Ok(Some(s)) => score_reply(protocol, s),
        Ok(None) => Reply::Null,
        Err(e) => kv_error(e),
    }))
}

pub fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let protocol = ctx.client.protocol;
    let members = slices(&args[2..]);
    reply(ctx.db().map(|db| {
        match kv::scores(&db, &args[1], &members) {
            Ok(v) => Reply::Array(
                v.into_iter()
                    .map(|s| s.map_or(Reply::Null, |s| score_reply(protocol, s)))
                    .collect(),
            ),
            Err(e) => kv_error(e),
        }
    }))
}

pub fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::card(&db, &args[1]) {
        Ok(n) => count(n),
        Err(e) => kv_error(e),
    }))
}

fn count_in(ctx: &mut Ctx<'_>, key: &[u8], range: Result<RangeSpec, Reply>) -> Reply {
    reply(range.and_then(|range| {
        let db = ctx.db()?;
        kv::count(&db, key, &range).map(count).map_err(kv_error)
    }))
}

pub fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let range = score_range(&args[2], &args[3]).map(RangeSpec::Score);
    count_in(ctx, &args[1], range)
}

pub fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let range = lex_range(&args[2], &args[3]).map(RangeSpec::Lex);
    count_in(ctx, &args[1], range)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rank,
    Score,
    Lex,
}

/// Parses `<min> <max> [options]` of the ZRANGE family as Redis's
/// `zrangeGenericCommand`. `kind` and `rev` are fixed by the older command forms
/// (ZRANGEBYSCORE, ZREVRANGE, ...); `None` lets the options choose.
fn parse_range(
    args: &[Bytes],
    store: bool,
    mut kind: Option<Kind>,
    mut rev: Option<bool>,
) -> Result<(RangeQuery, bool), Reply> {
    let (mut min, mut max) = (&args[0], &args[1]);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = 2;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && is(a, "WITHSCORES") {
            withscores = true;
        } else if is(a, "LIMIT") && left >= 2 {
            offset = int_arg(&args[j + 1])?;
            limit = int_arg(&args[j + 2])?;
            j += 2;
        } else if rev.is_none() && is(a, "REV") {
            rev = Some(true);
        } else if kind.is_none() && is(a, "BYLEX") {
            kind = Some(Kind::Lex);
        } else if kind.is_none() && is(a, "BYSCORE") {
            kind = Some(Kind::Score);
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    let kind = kind.unwrap_or(Kind::Rank);
    if limit != -1 && kind == Kind::Rank {
        return Err(Reply::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == Kind::Lex {
        return Err(Reply::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    if rev && kind != Kind::Rank {
        // The range is given high end first.
        std::mem::swap(&mut min, &mut max);
    }
    let range = match kind {
        Kind::Rank => RangeSpec::Rank(int_arg(min)?, int_arg(max)?),
        Kind::Score => RangeSpec::Score(score_range(min, max)?),
        Kind::Lex => RangeSpec::Lex(lex_range(min, max)?),
    };
    let query = RangeQuery {
        range,
        rev,
        offset,
        limit: (limit >= 0).then_some(limit),
    };
    Ok((query, withscores))
}

fn range_generic(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    kind: Option<Kind>,
    rev: Option<bool>,
) -> Reply {
    let protocol = ctx.client.protocol;
    reply(
        parse_range(&args[2..], false, kind, rev).and_then(|(q, withscores)| {
            let db = ctx.db()?;
            kv::range(&db, &args[1], &q)
                .map(|items| members_reply(protocol, items, withscores))
                .map_err(kv_error)
        }),
    )
}

/// ZRANGE key min max [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
pub fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, None, None)
}

pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, Some(Kind::Score), Some(false))
}

pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, Some(Kind::Score), Some(true))
}

pub fn zrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, Some(Kind::Lex), Some(false))
}

pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, Some(Kind::Lex), Some(true))
}

pub fn zrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, Some(Kind::Rank), Some(true))
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
pub fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let stored = parse_range(&args[3..], true, None, None).and_then(|(q, _)| {
        let db = ctx.db()?;
        kv::range_store(&db, &args[1], &args[2], &q).map_err(kv_error)
    });
    stored_reply(ctx, &args[1], stored)
}

/// The reply of a command that stored `stored` members at `destination`, announced to
/// its waiters when there are any.
fn stored_reply(ctx: &mut Ctx<'_>, destination: &[u8], stored: Result<usize, Reply>) -> Reply {
    match stored {
        Ok(n) => {
            if n > 0 {
                announce_push(ctx, destination);
            }
            count(n)
        }
        Err(e) => e,
    }
}

fn rank_generic(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::rank(&db, &args[1], &args[2], rev) {
                Ok(Some(r)) => count(r),
                Ok(None) => Reply::Null,
                Err(e) => kv_error(e),
            }),
    )
}

pub fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rank_generic(ctx, args, false)
}

pub fn zrevrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rank_generic(ctx, args, true)
}

fn positive_count(arg: &[u8]) -> Result<usize, Reply> {
    parse_i64(arg)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Reply::error("ERR value is out of range, must be positive"))
}

fn pop_generic(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> Reply {
    if args.len() > 3 {
        return syntax_error();
    }
    let protocol = ctx.client.protocol;
    let given = match args.get(2).map(|a| positive_count(a)).transpose() {
        Ok(c) => c,
        Err(e) => return e,
    };
    reply(ctx.db().map(|db| {
        // The type is checked even for a zero count; a missing key is an empty reply.
        match kv::pop(&db, &args[1], max, given.unwrap_or(1)) {
            Err(e) => kv_error(e),
            Ok(items) if given.is_some() => members_reply(protocol, items, true),
            Ok(items) => Reply::Array(
                items
                    .into_iter()
                    .flat_map(|(m, s)| [Reply::Bulk(m), score_reply(protocol, s)])
                    .collect(),
            ),
        }
    }))
}

pub fn zpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop_generic(ctx, args, false)
}

pub fn zpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop_generic(ctx, args, true)
}

/// A count in `1..=i64::MAX`, else `msg` (also for a non-integer), as Redis's
/// `getRangeLongFromObjectOrReply` with a message.
fn at_least_one(arg: &[u8], msg: &str) -> Result<usize, Reply> {
    parse_i64(arg)
        .filter(|n| *n >= 1)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Reply::error(msg))
}

/// The arguments of ZMPOP and BZMPOP from `numkeys` (at `args[at]`) on: the keys,
/// whether to pop the highest scores, the count (default 1).
fn mpop_args(args: &[Bytes], at: usize) -> Result<(&[Bytes], bool, usize), Reply> {
    let numkeys = at_least_one(&args[at], "ERR numkeys should be greater than 0")?;
    let where_idx = numkeys
        .checked_add(at + 1)
        .filter(|i| *i < args.len())
        .ok_or_else(syntax_error)?;
    let max = if is(&args[where_idx], "MIN") {
        false
    } else if is(&args[where_idx], "MAX") {
        true
    } else {
        return Err(syntax_error());
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && is(&args[j], "COUNT") && j + 1 < args.len() {
            count = Some(at_least_one(
                &args[j + 1],
                "ERR count should be greater than 0",
            )?);
            j += 2;
        } else {
            return Err(syntax_error());
        }
    }
    Ok((&args[at + 1..where_idx], max, count.unwrap_or(1)))
}

/// ZMPOP's and BZMPOP's reply: `[key, [[member, score], ...]]`.
fn mpop_reply(protocol: Protocol, key: Bytes, items: Vec<(Bytes, f64)>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(key),
        Reply::Array(
            items
                .into_iter()
                .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), score_reply(protocol, s)]))
                .collect(),
        ),
    ])
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let protocol = ctx.client.protocol;
    reply(mpop_args(args, 1).and_then(|(keys, max, n)| {
        let db = ctx.db()?;
        match kv::mpop(&db, &slices(keys), max, n).map_err(kv_error)? {
            None => Ok(Reply::NullArray),
            Some((key, items)) => Ok(mpop_reply(protocol, key, items)),
        }
    }))
}

/// BZPOPMIN's and BZPOPMAX's reply: `[key, member, score]`, flat in both protocols.
fn bzpop_reply(protocol: Protocol, key: Bytes, items: Vec<(Bytes, f64)>) -> Reply {
    let mut all = Vec::with_capacity(1 + 2 * items.len());
    all.push(Reply::Bulk(key));
    for (m, s) in items {
        all.push(Reply::Bulk(m));
        all.push(score_reply(protocol, s));
    }
    Reply::Array(all)
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout: the timeout is read first, as in Redis.
fn bzpop_generic(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> Reply {
    let last = args.len() - 1;
    match timeout_arg(&args[last]) {
        Ok(timeout) => {
            let op = BlockedOp::ZsetPop {
                max,
                count: 1,
                protocol: ctx.client.protocol,
                reply: bzpop_reply,
            };
            block(ctx, &args[1..last], op, timeout)
        }
        Err(e) => e,
    }
}

/// BZPOPMIN key [key ...] timeout
pub fn bzpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    bzpop_generic(ctx, args, false)
}

/// BZPOPMAX key [key ...] timeout
pub fn bzpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    bzpop_generic(ctx, args, true)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]: the timeout is read after
/// the other arguments, as in Redis.
pub fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(mpop_args(args, 2).and_then(|(keys, max, count)| {
        let timeout = timeout_arg(&args[1])?;
        let op = BlockedOp::ZsetPop {
            max,
            count,
            protocol: ctx.client.protocol,
            reply: mpop_reply,
        };
        Ok(block(ctx, keys, op, timeout))
    }))
}

fn remrange(ctx: &mut Ctx<'_>, key: &[u8], range: Result<RangeSpec, Reply>) -> Reply {
    reply(range.and_then(|range| {
        let db = ctx.db()?;
        kv::remove_range(&db, key, &range)
            .map(count)
            .map_err(kv_error)
    }))
}

pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let range = score_range(&args[2], &args[3]).map(RangeSpec::Score);
    remrange(ctx, &args[1], range)
}

pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let range = int_arg(&args[2]).and_then(|s| Ok(RangeSpec::Rank(s, int_arg(&args[3])?)));
    remrange(ctx, &args[1], range)
}

pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let range = lex_range(&args[2], &args[3]).map(RangeSpec::Lex);
    remrange(ctx, &args[1], range)
}

/// What follows the inputs of ZUNION and friends.
struct CombineArgs<'a> {
    keys: Vec<&'a [u8]>,
    opts: CombineOptions,
    withscores: bool,
}

/// Parses `numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...] [WITHSCORES]` (from
/// `args[at]`) as Redis's `zunionInterDiffGenericCommand`, checking the inputs' types
/// before the options as Redis does.
fn parse_combine<'a>(
    ctx: &Ctx<'_>,
    args: &'a [Bytes],
    at: usize,
    name: &str,
    op: SetOp,
    store: bool,
) -> Result<CombineArgs<'a>, Reply> {
    let numkeys = int_arg(&args[at])?;
    if numkeys < 1 {
        return Err(Reply::error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len() - at - 1 {
        return Err(syntax_error());
    }
    let keys = slices(&args[at + 1..at + 1 + numkeys]);
    kv::check_inputs(&ctx.db()?, &keys).map_err(kv_error)?;
    let mut opts = CombineOptions::default();
    let mut withscores = false;
    let mut j = at + 1 + numkeys;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != SetOp::Diff && remaining > numkeys && is(a, "WEIGHTS") {
            opts.weights = args[j + 1..=j + numkeys]
                .iter()
                .map(|w| float_arg(w, "ERR weight value is not a float"))
                .collect::<Result<_, _>>()?;
            j += numkeys + 1;
        } else if op != SetOp::Diff && remaining >= 2 && is(a, "AGGREGATE") {
            let how = &args[j + 1];
            opts.aggregate = if is(how, "SUM") {
                Aggregate::Sum
            } else if is(how, "MIN") {
                Aggregate::Min
            } else if is(how, "MAX") {
                Aggregate::Max
            } else {
                return Err(syntax_error());
            };
            j += 2;
        } else if !store && is(a, "WITHSCORES") {
            withscores = true;
            j += 1;
        } else {
            return Err(syntax_error());
        }
    }
    Ok(CombineArgs {
        keys,
        opts,
        withscores,
    })
}

fn combine_generic(ctx: &mut Ctx<'_>, args: &[Bytes], name: &str, op: SetOp) -> Reply {
    let protocol = ctx.client.protocol;
    reply(parse_combine(ctx, args, 1, name, op, false).and_then(|c| {
        let db = ctx.db()?;
        kv::combine(&db, op, &c.keys, &c.opts)
            .map(|items| members_reply(protocol, items, c.withscores))
            .map_err(kv_error)
    }))
}

fn combine_store_generic(ctx: &mut Ctx<'_>, args: &[Bytes], name: &str, op: SetOp) -> Reply {
    let stored = parse_combine(ctx, args, 2, name, op, true).and_then(|c| {
        let db = ctx.db()?;
        kv::combine_store(&db, &args[1], op, &c.keys, &c.opts).map_err(kv_error)
    });
    stored_reply(ctx, &args[1], stored)
}

pub fn zunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_generic(ctx, args, "zunion", SetOp::Union)
}

pub fn zinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_generic(ctx, args, "zinter", SetOp::Inter)
}

pub fn zdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_generic(ctx, args, "zdiff", SetOp::Diff)
}

pub fn zunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_store_generic(ctx, args, "zunionstore", SetOp::Union)
}

pub fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_store_generic(ctx, args, "zinterstore", SetOp::Inter)
}

pub fn zdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_store_generic(ctx, args, "zdiffstore", SetOp::Diff)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let parsed = (|| {
        let numkeys = int_arg(&args[1])?;
        if numkeys < 1 {
            return Err(Reply::error(
                "ERR at least 1 input key is needed for 'zintercard' command",
            ));
        }
        let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
        if numkeys > args.len() - 2 {
            return Err(syntax_error());
        }
        let keys = slices(&args[2..2 + numkeys]);
        kv::check_inputs(&ctx.db()?, &keys).map_err(kv_error)?;
        let mut limit = 0;
        let mut j = 2 + numkeys;
        while j < args.len() {
            if is(&args[j], "LIMIT") && j + 1 < args.len() {
                limit = parse_i64(&args[j + 1])
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| Reply::error("ERR LIMIT can't be negative"))?;
                j += 2;
            } else {
                return Err(syntax_error());
            }
        }
        Ok((keys, limit))
    })();
    reply(parsed.and_then(|(keys, limit)| {
        let db = ctx.db()?;
        kv::inter_card(&db, &keys, limit)
            .map(count)
            .map_err(kv_error)
    }))
}

/// ZRANDMEMBER key [count [WITHSCORES]]
pub fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let protocol = ctx.client.protocol;
    if args.len() == 2 {
        return reply(ctx.db().map(|db| {
            match kv::random_members(&db, &args[1], 1) {
                Ok(items) => items
                    .into_iter()
                    .next()
                    .map_or(Reply::Null, |(m, _)| Reply::Bulk(m)),
                Err(e) => kv_error(e),
            }
        }));
    }
    let n = match int_arg(&args[2]) {
        Ok(i64::MIN) => {
            return Reply::error(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            )
        }
        Ok(n) => n,
        Err(e) => return e,
    };
    if args.len() > 4 || (args.len() == 4 && !is(&args[3], "WITHSCORES")) {
        return syntax_error();
    }
    let withscores = args.len() == 4;
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return Reply::error("ERR value is out of range");
    }
    if let Err(e) = super::bound_random_count(n) {
        return e;
    }
    if n < 0 {
        // Repeats allowed: encoded as drawn (see `girder_kv::Picks`).
        let mut w = RandomMembers {
            w: Writer::new(protocol),
            withscores,
        };
        return reply(ctx.db().map(|db| {
            match kv::random_members_repeating(&db, &args[1], n.unsigned_abs() as usize, &mut w) {
                Ok(()) => w.w.finish(),
                Err(e) => kv_error(e),
            }
        }));
    }
    reply(
        ctx.db()
            .map(|db| match kv::random_members(&db, &args[1], n) {
                Ok(items) => members_reply(protocol, items, withscores),
                Err(e) => kv_error(e),
            }),
    )
}

/// ZRANDMEMBER's repeated picks, laid out as [`members_reply`] lays them out.
struct RandomMembers {
    w: Writer,
    withscores: bool,
}

impl girder_kv::Picks<f64> for RandomMembers {
    fn count(&mut self, n: usize) {
        let flat = self.withscores && self.w.protocol() == Protocol::Resp2;
        self.w.array(if flat { n.saturating_mul(2) } else { n });
    }

    fn pick(&mut self, member: &[u8], score: &f64) {
        if !self.withscores {
            return self.w.bulk(member);
        }
        let protocol = self.w.protocol();
        if protocol == Protocol::Resp3 {
            self.w.array(2);
        }
        self.w.bulk(member);
        self.w.reply(&score_reply(protocol, *score));
    }
}

/// An unsigned cursor as Redis's `parseScanCursorOrReply` (`strtoul`: a sign allowed,
/// no leading space, no overflow).
fn valid_cursor(b: &[u8]) -> bool {
    let digits = match b.first() {
        Some(b'+' | b'-') => &b[1..],
        _ => b,
    };
    digits.iter().all(u8::is_ascii_digit)
        && (digits.is_empty() == b.is_empty())
        && std::str::from_utf8(digits).is_ok_and(|d| d.is_empty() || d.parse::<u64>().is_ok())
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: everything in one reply, cursor 0
/// (see the engine's module docs).
pub fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if !valid_cursor(&args[2]) {
        return Reply::error("ERR invalid cursor");
    }
    let empty = || Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]);
    reply((|| {
        let db = ctx.db()?;
        // The key's type is checked before the options, as in Redis.
        if kv::card(&db, &args[1]).map_err(kv_error)? == 0 {
            return Ok(empty());
        }
        let mut pattern: Option<&[u8]> = None;
        let mut j = 3;
        while j < args.len() {
            let has_value = j + 1 < args.len();
            if is(&args[j], "COUNT") && has_value {
                if int_arg(&args[j + 1])? < 1 {
                    return Err(syntax_error());
                }
            } else if is(&args[j], "MATCH") && has_value {
                pattern = Some(&args[j + 1])
                    .filter(|p| p.as_ref() != b"*")
                    .map(|p| p.as_ref());
            } else {
                return Err(syntax_error());
            }
            j += 2;
        }
        let items = kv::scan(&db, &args[1], pattern).map_err(kv_error)?;
        Ok(Reply::Array(vec![
            Reply::bulk("0"),
            Reply::Array(
                items
                    .into_iter()
                    .flat_map(|(m, s)| [Reply::Bulk(m), score_bulk(s)])
                    .collect(),
            ),
        ]))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_print_like_printf_17g() {
        for (v, text) in [
            (0.1, "0.10000000000000001"),
            (1.5, "1.5"),
            (3.0, "3"),
            (-2.25, "-2.25"),
            (1e20, "1e+20"),
            (1e-5, "1.0000000000000001e-05"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e16, "10000000000000000"),
            (0.0001, "0.0001"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (-0.0, "-0"),
            (0.30000000000000004, "0.30000000000000004"),
            (42.0, "42"),
            (-7.0, "-7"),
            (99999999999999999.0, "1e+17"),
            (9.999999999999998e16, "99999999999999984"),
            (1_700_000_000_123.0, "1700000000123"),
        ] {
            assert_eq!(format_score(v), text, "{v:e}");
        }
    }

    proptest::proptest! {
        /// The integer fast path prints what `%.17g` prints.
        #[test]
        fn integral_scores_print_as_g17(i in -(10i64.pow(17) - 1)..10i64.pow(17)) {
            let d = i as f64;
            proptest::prop_assert_eq!(format_score(d), format_g17(d));
        }
    }

    #[test]
    fn floats_parse_like_strtod() {
        assert_eq!(strict_float(b"0x10"), Some(16.0));
        assert_eq!(strict_float(b"0x1p1"), Some(2.0));
        assert_eq!(strict_float(b"inF"), Some(f64::INFINITY));
        assert_eq!(strict_float(b"-infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(strict_float(b".5"), Some(0.5));
        assert_eq!(strict_float(b"1."), Some(1.0));
        for bad in [
            &b"nan"[..],
            b"",
            b" 1",
            b"1 ",
            b"1e400",
            b"1e-400",
            b"1e",
            b"x",
            b"+",
        ] {
            assert_eq!(strict_float(bad), None, "{bad:?}");
        }
        assert_eq!(score_bound(b""), Some((0.0, false)));
        assert_eq!(score_bound(b"("), Some((0.0, true)));
        assert_eq!(score_bound(b" 1"), Some((1.0, false)));
        assert_eq!(score_bound(b"1 "), None);
        assert_eq!(score_bound(b"nan"), None);
        assert_eq!(score_bound(b"1e999"), Some((f64::INFINITY, false)));
    }
}
