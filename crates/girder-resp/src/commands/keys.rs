//! Generic key commands.

use super::{count, int_arg, is, kv_error, reply, spec, syntax_error, Ctx, Spec};
use crate::codec::Reply;
use bytes::Bytes;
use girder_kv::keys::{self as kv, ExpireCondition, Ttl};
use girder_kv::DATABASES;

/// The keys commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "del",
        -2,
        &["write"],
        (1, -1, 1),
        "generic",
        "Delete keys.",
        del,
    ),
    spec(
        "unlink",
        -2,
        &["write", "fast"],
        (1, -1, 1),
        "generic",
        "Delete keys (non-blocking).",
        del,
    ),
    spec(
        "exists",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
        "generic",
        "Count existing keys.",
        exists,
    ),
    spec(
        "touch",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
        "generic",
        "Touch keys.",
        touch,
    ),
    spec(
        "type",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "The type of a key's value.",
        type_,
    ),
    spec(
        "expire",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Set a TTL in seconds.",
        expire,
    ),
    spec(
        "pexpire",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Set a TTL in milliseconds.",
        pexpire,
    ),
    spec(
        "expireat",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Set a deadline as a Unix time in seconds.",
        expireat,
    ),
    spec(
        "pexpireat",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Set a deadline as a Unix time in milliseconds.",
        pexpireat,
    ),
    spec(
        "ttl",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "TTL in seconds.",
        ttl,
    ),
    spec(
        "pttl",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "TTL in milliseconds.",
        pttl,
    ),
    spec(
        "expiretime",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "Deadline as a Unix time in seconds.",
        expiretime,
    ),
    spec(
        "pexpiretime",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "Deadline as a Unix time in milliseconds.",
        pexpiretime,
    ),
    spec(
        "persist",
        2,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Remove a key's TTL.",
        persist,
    ),
    spec(
        "rename",
        3,
        &["write"],
        (1, 2, 1),
        "generic",
        "Rename a key.",
        rename,
    ),
    spec(
        "renamenx",
        3,
        &["write", "fast"],
        (1, 2, 1),
        "generic",
        "Rename a key if the new name is free.",
        renamenx,
    ),
    spec(
        "copy",
        -3,
        &["write", "denyoom"],
        (1, 2, 1),
        "generic",
        "Copy a key.",
        copy,
    ),
    spec(
        "move",
        3,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Move a key to another database.",
        move_,
    ),
    spec(
        "keys",
        2,
        &["readonly"],
        (0, 0, 0),
        "generic",
        "Keys matching a pattern.",
        keys,
    ),
    spec(
        "scan",
        -2,
        &["readonly"],
        (0, 0, 0),
        "generic",
        "Iterate over the keys.",
        scan,
    ),
    spec(
        "randomkey",
        1,
        &["readonly"],
        (0, 0, 0),
        "generic",
        "A random key.",
        randomkey,
    ),
    spec(
        "object",
        -2,
        &["readonly"],
        (2, 2, 1),
        "generic",
        "Inspect a key's internals.",
        object,
    ),
];

fn key_refs(args: &[Bytes]) -> Vec<&[u8]> {
    args.iter().map(|a| a.as_ref()).collect()
}

pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| count(kv::del(&db, &key_refs(&args[1..])))),
    )
}

pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| count(kv::exists(&db, &key_refs(&args[1..])))),
    )
}

/// TOUCH uses the keys even under CLIENT NO-TOUCH, as in Redis.
pub fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.keyspace
            .db_at(ctx.client.db, ctx.now_ms)
            .map_err(super::kv_error)
            .map(|db| count(kv::touch(&db, &key_refs(&args[1..])))),
    )
}

pub fn type_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| Reply::Simple(kv::type_of(&db, &args[1]))))
}

/// How the deadline argument of an EXPIRE-family command is given.
#[derive(Clone, Copy)]
enum Unit {
    RelativeSeconds,
    RelativeMillis,
    AbsoluteSeconds,
    AbsoluteMillis,
}

fn expire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], unit: Unit, name: &'static str) -> Reply {
    let amount = match int_arg(&args[2]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut condition = ExpireCondition::default();
    for flag in &args[3..] {
        if is(flag, "NX") {
            condition.nx = true;
        } else if is(flag, "XX") {
            condition.xx = true;
        } else if is(flag, "GT") {
            condition.gt = true;
        } else if is(flag, "LT") {
            condition.lt = true;
        } else {
            return Reply::error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(flag)
            ));
        }
    }
    if condition.nx && (condition.xx || condition.gt || condition.lt) {
        return Reply::error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if condition.gt && condition.lt {
        return Reply::error("ERR GT and LT options at the same time are not compatible");
    }
    let db = match ctx.db() {
        Ok(db) => db,
        Err(e) => return e,
    };
    let now = db.now_ms() as i64;
    let invalid = || Reply::error(format!("ERR invalid expire time in '{name}' command"));
    let deadline = match unit {
        Unit::RelativeSeconds => amount.checked_mul(1000).and_then(|ms| ms.checked_add(now)),
        Unit::RelativeMillis => amount.checked_add(now),
        Unit::AbsoluteSeconds => amount.checked_mul(1000),
        Unit::AbsoluteMillis => Some(amount),
    };
    let Some(deadline) = deadline else {
        return invalid();
    };
    // A negative deadline is in the past: the key is deleted, as in Redis.
    let deadline = u64::try_from(deadline).unwrap_or(0);
    Reply::Integer(i64::from(kv::expire_at(&db, &args[1], deadline, condition)))
}

pub fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, Unit::RelativeSeconds, "expire")
}
pub fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, Unit::RelativeMillis, "pexpire")
}
pub fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, Unit::AbsoluteSeconds, "expireat")
}
pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, Unit::AbsoluteMillis, "pexpireat")
}

fn ttl_reply(t: Ttl, millis: bool) -> Reply {
    match t {
        Ttl::Missing => Reply::Integer(-2),
        Ttl::Persistent => Reply::Integer(-1),
        Ttl::Remaining(ms) | Ttl::At(ms) => {
            let v = if millis { ms } else { (ms + 500) / 1000 };
            Reply::Integer(i64::try_from(v).unwrap_or(i64::MAX))
        }
    }
}

pub fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| ttl_reply(kv::ttl(&db, &args[1]), false)))
}
pub fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| ttl_reply(kv::ttl(&db, &args[1]), true)))
}
pub fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| match kv::expire_time(&db, &args[1]) {
        // Rounded to the nearest second, as Redis does.
        Ttl::At(ms) => {
            Reply::Integer(i64::try_from(ms.saturating_add(500) / 1000).unwrap_or(i64::MAX))
        }
        other => ttl_reply(other, true),
    }))
}
pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| ttl_reply(kv::expire_time(&db, &args[1]), true)),
    )
}

pub fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| Reply::Integer(i64::from(kv::persist(&db, &args[1])))),
    )
}

pub fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::rename(&db, &args[1], &args[2], false) {
                Ok(_) => Reply::OK,
                Err(e) => kv_error(e),
            }),
    )
}

pub fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(
        ctx.db()
            .map(|db| match kv::rename(&db, &args[1], &args[2], true) {
                Ok(done) => Reply::Integer(i64::from(done)),
                Err(e) => kv_error(e),
            }),
    )
}

/// COPY source destination [DB destination-db] [REPLACE]
pub fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut target_db = ctx.client.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "REPLACE") {
            replace = true;
            i += 1;
        } else if is(&args[i], "DB") && i + 1 < args.len() {
            match int_arg(&args[i + 1]) {
                Ok(n) if (0..DATABASES as i64).contains(&n) => target_db = n as usize,
                Ok(_) => return Reply::error("ERR DB index is out of range"),
                Err(e) => return e,
            }
            i += 2;
        } else {
            return syntax_error();
        }
    }
    if target_db == ctx.client.db {
        if args[1] == args[2] {
            return Reply::error("ERR source and destination objects are the same");
        }
        return reply(
            ctx.db()
                .map(|db| Reply::Integer(i64::from(kv::copy(&db, &args[1], &args[2], replace)))),
        );
    }
    let ex = ctx.keyspace.exclusive();
    // One journal record: a crash never leaves half of it.
    match ex.atomically(|| ex.copy_across(&args[1], ctx.client.db, &args[2], target_db, replace)) {
        Ok(done) => Reply::Integer(i64::from(done)),
        Err(e) => kv_error(e),
    }
}

pub fn move_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let target = match int_arg(&args[2]) {
        Ok(n) if (0..DATABASES as i64).contains(&n) => n as usize,
        Ok(_) => return Reply::error("ERR DB index is out of range"),
        Err(e) => return e,
    };
    if target == ctx.client.db {
        return Reply::error("ERR source and destination objects are the same");
    }
    let ex = ctx.keyspace.exclusive();
    // One journal record: a crash never leaves the key in both databases or neither.
    match ex.atomically(|| ex.move_key(&args[1], ctx.client.db, target)) {
        Ok(done) => Reply::Integer(i64::from(done)),
        Err(e) => kv_error(e),
    }
}

pub fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| {
        Reply::Array(
            kv::keys(&db, &args[1])
                .into_iter()
                .map(Reply::Bulk)
                .collect(),
        )
    }))
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. The cursor is checked first;
/// options are read left to right, the last of a repeated one wins, as in Redis.
pub fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let cursor = match super::hashes::scan_cursor(&args[1]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let (mut pattern, mut type_name, mut count) = (None, None, 10);
    let mut rest = &args[2..];
    while !rest.is_empty() {
        let [option, value, tail @ ..] = rest else {
            return syntax_error();
        };
        if is(option, "COUNT") {
            count = match int_arg(value) {
                Ok(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
                Ok(_) => return syntax_error(),
                Err(e) => return e,
            };
        } else if is(option, "MATCH") {
            // `*` matches everything: skip matching altogether, as Redis does.
            pattern = (value.as_ref() != b"*").then_some(value.as_ref());
        } else if is(option, "TYPE") {
            type_name = Some(value.as_ref());
        } else {
            return syntax_error();
        }
        rest = tail;
    }
    reply(ctx.db().map(|db| {
        let (next, keys) = kv::scan(&db, cursor, pattern, type_name, count);
        super::hashes::scan_reply(next, keys.into_iter().map(Reply::Bulk).collect())
    }))
}

pub fn randomkey(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| super::bulk_or_null(kv::random_key(&db))))
}

/// OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT | HELP
pub fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    if sub == "help" && args.len() > 2 {
        return Reply::error("ERR wrong number of arguments for 'object|help' command");
    }
    if sub == "help" {
        return Reply::Array(
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "FREQ <key>",
                "IDLETIME <key>",
                "REFCOUNT <key>",
            ]
            .into_iter()
            .map(|s| Reply::Status(s.into()))
            .collect(),
        );
    }
    if !matches!(sub.as_str(), "encoding" | "freq" | "idletime" | "refcount") {
        return Reply::error(format!(
            "ERR unknown subcommand '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(&args[1])
        ));
    }
    if args.len() != 3 {
        return super::wrong_arity(&format!("object|{sub}"));
    }
    let db = match ctx.db() {
        Ok(db) => db,
        Err(e) => return e,
    };
    let Some(encoding) = kv::encoding(&db, &args[2]) else {
        return Reply::Null;
    };
    drop(db);
    let access = || {
        ctx.keyspace
            .object_access(ctx.client.db, &args[2])
            .ok()
            .flatten()
    };
    match (sub.as_str(), ctx.keyspace.eviction_policy().lfu()) {
        ("encoding", _) => Reply::bulk(encoding),
        ("refcount", _) => Reply::Integer(1),
        ("idletime", false) | ("freq", true) => match access() {
            Some(girder_kv::Access::IdleSeconds(n) | girder_kv::Access::Frequency(n)) => {
                Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX))
            }
            None => Reply::Null,
        },
        ("idletime", true) => Reply::error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
        _ => Reply::error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
    }
}
