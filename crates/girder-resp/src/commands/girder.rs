//! Girder's own commands, in dotted namespaces no Redis command uses:
//! `ID.NEXT` (Snowflake ids), `RL.CHECK` (shared rate limits), and `CACHE.GET` /
//! `CACHE.FILL` / `CACHE.RELEASE` (leases against stampedes, `girder_kv::leases`).

use super::strings::deadline;
use super::{int_arg, is, kv_error, not_integer, reply, spec, syntax_error, Ctx, Spec};
use crate::codec::Reply;
use crate::ratelimits::RateLimitError;
use bytes::Bytes;
use girder_kv::leases::{self, CacheRead};
use girder_limit::AlgorithmKind;
use std::time::Duration;

/// Most ids one `ID.NEXT` returns (as `GET /v1/ids`).
pub const MAX_IDS: i64 = 10_000;

/// Default lease of `CACHE.GET`, ms (Facebook's memcache used 10 s).
pub const DEFAULT_LEASE_MS: i64 = 10_000;

/// Longest lease `CACHE.GET` grants, ms.
pub const MAX_LEASE_MS: i64 = 3_600_000;

pub(super) static SPECS: &[Spec] = &[
    spec(
        "id.next",
        -1,
        &["fast"],
        (0, 0, 0),
        "girder",
        "Returns the next Snowflake id of this node, or COUNT of them.",
        id_next,
    ),
    spec(
        "rl.check",
        -5,
        &["denyoom", "fast"],
        (0, 0, 0),
        "girder",
        "Spends COST of a rate limit shared by every client: RL.CHECK key algorithm limit period_ms [burst [cost]].",
        rl_check,
    ),
    spec(
        "cache.get",
        -2,
        &["write", "fast"],
        (1, 1, 1),
        "girder",
        "Reads a string; on a miss grants one caller a lease to fill it and tells the others to wait.",
        cache_get,
    ),
    spec(
        "cache.fill",
        -4,
        &["write", "denyoom"],
        (1, 1, 1),
        "girder",
        "Stores the value of a leased key if the lease token is still valid.",
        cache_fill,
    ),
    spec(
        "cache.release",
        3,
        &["write", "fast"],
        (1, 1, 1),
        "girder",
        "Gives a lease back unfilled so the next reader gets one at once.",
        cache_release,
    ),
];

/// ID.NEXT [count]: one id as an integer, or an array of `count` increasing ids.
pub fn id_next(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let count = match args {
        [_] => None,
        [_, n] => match int_arg(n) {
            Ok(n) if (1..=MAX_IDS).contains(&n) => Some(n as usize),
            Ok(_) => {
                return Reply::Error(format!("ERR count must be between 1 and {MAX_IDS}"));
            }
            Err(e) => return e,
        },
        _ => return syntax_error(),
    };
    let mut ids = Vec::new();
    if let Err(e) = ctx.shared.ids.next_ids(count.unwrap_or(1), &mut ids) {
        return Reply::Error(format!("ERR {e}"));
    }
    let mut ids = ids
        .into_iter()
        .map(|id| Reply::Integer(i64::try_from(id).unwrap_or(i64::MAX)));
    match count {
        None => ids.next().unwrap_or(Reply::Null),
        Some(_) => Reply::Array(ids.collect()),
    }
}

fn algorithm(arg: &[u8]) -> Option<AlgorithmKind> {
    Some(match arg.to_ascii_lowercase().as_slice() {
        b"gcra" | b"token_bucket" => AlgorithmKind::Gcra,
        b"fixed_window" => AlgorithmKind::FixedWindow,
        b"sliding_log" => AlgorithmKind::SlidingLog,
        b"sliding_window" => AlgorithmKind::SlidingWindow,
        _ => return None,
    })
}

fn positive(arg: &[u8], what: &str) -> Result<u64, Reply> {
    match int_arg(arg) {
        Ok(n) if n >= 1 => Ok(n as u64),
        Ok(_) => Err(Reply::Error(format!("ERR {what} must be at least 1"))),
        Err(e) => Err(e),
    }
}

/// Milliseconds, rounded up: waiting that long is always enough.
fn ceil_ms(d: Duration) -> i64 {
    if d == Duration::MAX {
        return -1;
    }
    i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX)
}

/// RL.CHECK key algorithm limit period_ms [burst [cost]]
///
/// Replies `[allowed (1|0), remaining, reset_after_ms, retry_after_ms]`; `retry_after_ms`
/// is 0 when allowed and -1 when `cost` exceeds the capacity (never admitted).
pub fn rl_check(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() > 7 {
        return syntax_error();
    }
    let Some(kind) = algorithm(&args[2]) else {
        return Reply::Error(format!(
            "ERR unknown rate limit algorithm '{}' (gcra, fixed_window, sliding_log, sliding_window)",
            String::from_utf8_lossy(&args[2])
        ));
    };
    let parsed = (|| {
        let limit = positive(&args[3], "limit")?;
        let period_ms = positive(&args[4], "period")?;
        let burst = match args.get(5) {
            Some(b) => positive(b, "burst")?,
            None => limit,
        };
        let cost = match args.get(6) {
            Some(c) => match int_arg(c) {
                Ok(c) if c >= 0 => c as u64,
                Ok(_) => return Err(Reply::error("ERR cost must not be negative")),
                Err(_) => return Err(not_integer()),
            },
            None => 1,
        };
        Ok((limit, period_ms, burst, cost))
    })();
    let (limit, period_ms, burst, cost) = match parsed {
        Ok(p) => p,
        Err(e) => return e,
    };
    match ctx
        .shared
        .rate_limits
        .check(&args[1], kind, limit, period_ms, burst, cost)
    {
        Ok(d) => Reply::Array(vec![
            Reply::Integer(i64::from(d.allowed)),
            Reply::Integer(i64::try_from(d.remaining).unwrap_or(i64::MAX)),
            Reply::Integer(ceil_ms(d.reset_after)),
            Reply::Integer(ceil_ms(d.retry_after)),
        ]),
        Err(RateLimitError::InvalidQuota(why)) => Reply::Error(format!("ERR {why}")),
        Err(RateLimitError::TooManyQuotas) => Reply::Error(format!(
            "ERR too many distinct rate limit quotas in use (at most {})",
            crate::ratelimits::MAX_QUOTAS
        )),
    }
}

/// CACHE.GET key [LEASE ms]
///
/// Replies `["hit", value]`, `["lease", token]` (you fill it: load the value, then
/// CACHE.FILL) or `["wait", lease_left_ms]` (someone else is filling it: retry shortly).
pub fn cache_get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let lease_ms = match &args[2..] {
        [] => DEFAULT_LEASE_MS,
        [opt, ms] if is(opt, "LEASE") => match int_arg(ms) {
            Ok(n) if (1..=MAX_LEASE_MS).contains(&n) => n,
            Ok(_) => {
                return Reply::Error(format!("ERR lease must be between 1 and {MAX_LEASE_MS} ms"))
            }
            Err(e) => return e,
        },
        _ => return syntax_error(),
    };
    reply(ctx.db().map(
        |db| match leases::cache_get(&db, &args[1], lease_ms as u64) {
            Ok(CacheRead::Hit(v)) => Reply::Array(vec![Reply::bulk("hit"), Reply::Bulk(v)]),
            Ok(CacheRead::Lease { token }) => Reply::Array(vec![
                Reply::bulk("lease"),
                Reply::Integer(i64::try_from(token).unwrap_or(i64::MAX)),
            ]),
            Ok(CacheRead::Wait { lease_left_ms }) => Reply::Array(vec![
                Reply::bulk("wait"),
                Reply::Integer(i64::try_from(lease_left_ms).unwrap_or(i64::MAX)),
            ]),
            Err(e) => kv_error(e),
        },
    ))
}

fn token_arg(arg: &[u8]) -> Result<u64, Reply> {
    match int_arg(arg) {
        Ok(t) if t > 0 => Ok(t as u64),
        _ => Err(Reply::error("ERR invalid lease token")),
    }
}

/// CACHE.FILL key token value [EX seconds | PX milliseconds]: 1 if stored, 0 if the
/// lease was not valid (filled already, released, expired, or the key changed).
pub fn cache_fill(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let token = match token_arg(&args[2]) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let db = match ctx.db() {
        Ok(db) => db,
        Err(e) => return e,
    };
    let expire_at = match &args[4..] {
        [] => None,
        [unit, amount] if is(unit, "EX") || is(unit, "PX") => {
            let unit_ms = if is(unit, "EX") { 1000 } else { 1 };
            match deadline(db.now_ms(), amount, unit_ms, false, "cache.fill") {
                Ok(t) => Some(t),
                Err(e) => return e,
            }
        }
        _ => return syntax_error(),
    };
    match leases::cache_fill(&db, &args[1], token, &args[3], expire_at) {
        Ok(stored) => Reply::Integer(i64::from(stored)),
        Err(e) => kv_error(e),
    }
}

/// CACHE.RELEASE key token: 1 if that was the key's lease (now ended), else 0.
pub fn cache_release(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let token = match token_arg(&args[2]) {
        Ok(t) => t,
        Err(e) => return e,
    };
    reply(
        ctx.db()
            .map(|db| Reply::Integer(i64::from(leases::cache_release(&db, &args[1], token)))),
    )
}
