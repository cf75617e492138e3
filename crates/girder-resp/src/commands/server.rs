//! Server commands: COMMAND INFO CONFIG DBSIZE TIME FLUSHDB FLUSHALL SWAPDB.

use super::{count, int_arg, is, kv_error, reply, spec, syntax_error, table, Ctx, Spec};
use crate::codec::Reply;
use crate::notify;
use bytes::Bytes;
use girder_kv::keys as kv;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// The server commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "command",
        -1,
        &["loading"],
        (0, 0, 0),
        "server",
        "Details about commands.",
        command,
    ),
    spec(
        "info",
        -1,
        &["loading"],
        (0, 0, 0),
        "server",
        "Information and statistics about the server.",
        info,
    ),
    spec(
        "config",
        -2,
        &["admin"],
        (0, 0, 0),
        "server",
        "Read or change configuration.",
        config,
    ),
    spec(
        "dbsize",
        1,
        &["readonly", "fast"],
        (0, 0, 0),
        "server",
        "Number of keys in the database.",
        dbsize,
    ),
    spec(
        "time",
        1,
        &["fast"],
        (0, 0, 0),
        "server",
        "The server time.",
        time,
    ),
    spec(
        "flushdb",
        -1,
        &["write"],
        (0, 0, 0),
        "server",
        "Remove all keys from the current database.",
        flushdb,
    ),
    spec(
        "flushall",
        -1,
        &["write"],
        (0, 0, 0),
        "server",
        "Remove all keys from all databases.",
        flushall,
    ),
    spec(
        "swapdb",
        3,
        &["write", "fast"],
        (0, 0, 0),
        "server",
        "Swap two databases.",
        swapdb,
    ),
];

fn command_info(spec: &Spec) -> Reply {
    let (first, last, step) = spec.keys;
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Integer(i64::from(spec.arity)),
        Reply::Set(spec.flags.iter().map(|f| Reply::Simple(f)).collect()),
        Reply::Integer(i64::from(first)),
        Reply::Integer(i64::from(last)),
        Reply::Integer(i64::from(step)),
        Reply::Set(vec![Reply::Status(format!("@{}", spec.group))]),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

fn command_docs(spec: &Spec) -> Reply {
    Reply::Map(vec![
        (Reply::bulk("summary"), Reply::bulk(spec.summary)),
        (Reply::bulk("since"), Reply::bulk("1.0.0")),
        (Reply::bulk("group"), Reply::bulk(spec.group)),
    ])
}

/// COMMAND [COUNT | LIST | INFO name... | DOCS name...]
pub fn command(_: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(sub) = args.get(1) else {
        return Reply::Array(table().iter().map(|s| command_info(s)).collect());
    };
    if is(sub, "COUNT") && args.len() == 2 {
        count(table().len())
    } else if is(sub, "LIST") && args.len() == 2 {
        Reply::Array(table().iter().map(|s| Reply::bulk(s.name)).collect())
    } else if is(sub, "INFO") {
        if args.len() == 2 {
            return Reply::Array(table().iter().map(|s| command_info(s)).collect());
        }
        Reply::Array(
            args[2..]
                .iter()
                .map(|n| super::lookup(n).map_or(Reply::NullArray, command_info))
                .collect(),
        )
    } else if is(sub, "DOCS") {
        let specs: Vec<&Spec> = if args.len() == 2 {
            table().to_vec()
        } else {
            args[2..].iter().filter_map(|n| super::lookup(n)).collect()
        };
        Reply::Map(
            specs
                .into_iter()
                .map(|s| (Reply::bulk(s.name), command_docs(s)))
                .collect(),
        )
    } else if is(sub, "COUNT") || is(sub, "LIST") {
        super::wrong_arity(&format!(
            "command|{}",
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        ))
    } else {
        Reply::error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(sub)
        ))
    }
}

/// INFO [section ...]
pub fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "default" || w == "everything");
    let want = |s: &str| all || wanted.iter().any(|w| w == s);
    // Sections Redis leaves out of the default ones.
    let want_extra = |s: &str| {
        wanted
            .iter()
            .any(|w| w == s || w == "all" || w == "everything")
    };
    let shared = ctx.shared;
    let mut out = String::new();
    if want("server") {
        let uptime = shared.started.elapsed().as_secs();
        let _ = write!(
            out,
            "# Server\r\nredis_version:{}\r\ngirder_version:{}\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\n\r\n",
            crate::REDIS_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            ctx.client.handle.laddr.port(),
            uptime,
            uptime / 86_400
        );
    }
    if want("clients") {
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n\r\n",
            shared.connected(),
            shared.settings.max_clients()
        );
    }
    if want("memory") {
        out.push_str(&crate::memory::info(ctx.keyspace));
    }
    if want("persistence") {
        out.push_str("# Persistence\r\nloading:0\r\n");
        if let Some(p) = shared.persistence.get() {
            for (name, value) in p.info() {
                let _ = write!(out, "{name}:{value}\r\n");
            }
        }
        out.push_str("\r\n");
    }
    if want("stats") {
        let s = &shared.stats;
        let base = *s.baseline.lock();
        let keyspace = ctx.keyspace.keyspace_stats().since(base.keyspace);
        let [ops, input, output] = s.rates.lock().per_second();
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\ntotal_error_replies:{}\r\n\r\n",
            s.connections_received.load(Ordering::Relaxed),
            shared.metrics.total_calls().saturating_sub(base.commands),
            ops,
            shared.metrics.net_input_bytes().saturating_sub(base.net_input),
            shared.metrics.net_output_bytes().saturating_sub(base.net_output),
            input as f64 / 1024.0,
            output as f64 / 1024.0,
            s.rejected_connections.load(Ordering::Relaxed),
            keyspace.expired,
            ctx.keyspace.evicted_keys().saturating_sub(base.evicted),
            keyspace.hits,
            keyspace.misses,
            shared.metrics.total_errors().saturating_sub(base.errors),
        );
    }
    if want_extra("commandstats") {
        out.push_str(&commandstats(ctx));
    }
    if want("keyspace") {
        out.push_str("# Keyspace\r\n");
        for (i, (keys, expires)) in ctx.keyspace.db_sizes().into_iter().enumerate() {
            if keys > 0 {
                let _ = write!(out, "db{i}:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
        out.push_str("\r\n");
    }
    if out.is_empty() {
        // No section by that name: an empty string, as Redis answers.
        return Reply::Verbatim(Bytes::new());
    }
    Reply::Verbatim(Bytes::from(out.trim_end().to_owned() + "\r\n"))
}

/// INFO commandstats, Redis's format: a line per command that was called since the
/// last CONFIG RESETSTAT. Girder counts a call refused before it ran (wrong arity, ACL,
/// OOM) as a call with an error, so everything is in `failed_calls` and
/// `rejected_calls` is 0.
fn commandstats(ctx: &Ctx<'_>) -> String {
    let totals = ctx.shared.metrics.per_command();
    let base = ctx.shared.stats.command_baseline.lock().clone();
    let mut out = String::from("# Commandstats\r\n");
    for (i, (spec, total)) in super::table().iter().zip(totals).enumerate() {
        let t = total.since(base.get(i).copied().unwrap_or_default());
        if t.calls == 0 {
            continue;
        }
        let usec = t.nanos / 1_000;
        let _ = write!(
            out,
            "cmdstat_{}:calls={},usec={usec},usec_per_call={:.2},rejected_calls=0,failed_calls={}\r\n",
            spec.name,
            t.calls,
            usec as f64 / t.calls as f64,
            t.errors
        );
    }
    out.push_str("\r\n");
    out
}

/// CONFIG GET pattern... | SET | RESETSTAT | HELP
pub fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "get" if args.len() >= 3 => {
            let c = &ctx.shared.config;
            let s = &ctx.shared.settings;
            let persist = ctx.shared.persistence.get();
            let ks = ctx.keyspace;
            let settings: [(&str, String); 17] = [
                (
                    "client-output-buffer-limit",
                    ctx.shared.output_limits.describe(),
                ),
                ("maxclients", s.max_clients().to_string()),
                ("timeout", s.timeout_secs().to_string()),
                ("requirepass", ctx.shared.acl.describe_requirepass()),
                (
                    "protected-mode",
                    if c.protected_mode { "yes" } else { "no" }.into(),
                ),
                ("proto-max-bulk-len", c.limits.max_bulk_len.to_string()),
                (
                    "client-query-buffer-limit",
                    c.query_buffer_limit.to_string(),
                ),
                ("databases", girder_kv::DATABASES.to_string()),
                (
                    "save",
                    persist
                        .as_ref()
                        .map_or_else(String::new, |p| p.save_rules()),
                ),
                (
                    "appendonly",
                    if persist.as_ref().is_some_and(|p| p.appendonly()) {
                        "yes"
                    } else {
                        "no"
                    }
                    .into(),
                ),
                (
                    "appendfsync",
                    persist
                        .as_ref()
                        .map_or("everysec", |p| p.appendfsync())
                        .into(),
                ),
                ("maxmemory", ks.maxmemory().to_string()),
                ("maxmemory-policy", ks.eviction_policy().name().into()),
                ("maxmemory-samples", ks.eviction_samples().to_string()),
                ("lfu-log-factor", ks.lfu_log_factor().to_string()),
                ("lfu-decay-time", ks.lfu_decay_time().to_string()),
                (
                    "notify-keyspace-events",
                    notify::format(ctx.shared.notify.flags()),
                ),
            ];
            // Each setting once, named as the first argument that asked for it: a plain
            // name as the client spelled it (`MAXMEMORY`), a pattern's match as Girder
            // spells it (Redis 7.0 does the same).
            let mut pairs = Vec::new();
            for (name, value) in &settings {
                let asked = args[2..]
                    .iter()
                    .find(|p| kv::glob_match(p, name.as_bytes(), true));
                if let Some(asked) = asked {
                    let shown = if asked.iter().any(|b| b"[*?".contains(b)) {
                        Reply::bulk(*name)
                    } else {
                        Reply::Bulk(asked.clone())
                    };
                    pairs.push((shown, Reply::bulk(value.clone())));
                }
            }
            Reply::Map(pairs)
        }
        "set" if args.len() >= 4 && args.len().is_multiple_of(2) => config_set(ctx, &args[2..]),
        "resetstat" if args.len() == 2 => {
            reset_stats(ctx);
            Reply::OK
        }
        "get" | "set" | "resetstat" => super::wrong_arity(&format!("config|{sub}")),
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// CONFIG RESETSTAT: INFO's counters start again from zero (Redis's
/// `resetServerStats`); the Prometheus counters on `/metrics` are left monotonic.
fn reset_stats(ctx: &Ctx<'_>) {
    let shared = &ctx.shared;
    let s = &shared.stats;
    s.connections_received.store(0, Ordering::Relaxed);
    s.rejected_connections.store(0, Ordering::Relaxed);
    *s.baseline.lock() = crate::state::StatsBaseline {
        commands: shared.metrics.total_calls(),
        errors: shared.metrics.total_errors(),
        evicted: ctx.keyspace.evicted_keys(),
        keyspace: ctx.keyspace.keyspace_stats(),
        net_input: shared.metrics.net_input_bytes(),
        net_output: shared.metrics.net_output_bytes(),
    };
    *s.rates.lock() = crate::metrics::Rates::default();
    *s.command_baseline.lock() = shared.metrics.per_command();
}

/// One `CONFIG SET` change, checked before any is applied.
enum Change {
    Notify(u32),
    AppendFsync(String),
    OutputLimits(String),
    AppendOnly(bool),
    Save(String),
    RequirePass(Bytes),
    MaxClients(usize),
    Timeout(u64),
    MaxMemory(u64),
    Policy(girder_kv::Policy),
    Samples(u32),
    LfuLogFactor(u32),
    LfuDecayTime(u32),
}

/// Redis's wording for a refused CONFIG SET value.
fn config_set_failed(name: &str, why: &str) -> Reply {
    Reply::error(format!(
        "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
    ))
}

fn config_int(name: &str, value: &[u8], min: i64, max: i64) -> Result<i64, Reply> {
    let n = super::parse_i64(value)
        .ok_or_else(|| config_set_failed(name, "argument couldn't be parsed into an integer"))?;
    if !(min..=max).contains(&n) {
        return Err(config_set_failed(
            name,
            &format!("argument must be between {min} and {max} inclusive"),
        ));
    }
    Ok(n)
}

/// CONFIG SET name value [name value ...] for `notify-keyspace-events`, `requirepass`,
/// `maxclients` and `timeout`. Every pair is checked before any is applied, as Redis
/// does.
fn config_set(ctx: &mut Ctx<'_>, pairs: &[Bytes]) -> Reply {
    let mut changes: Vec<(String, Change)> = Vec::new();
    for pair in pairs.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let value = &pair[1];
        let change =
            match name.as_str() {
                "notify-keyspace-events" => match notify::parse(value) {
                    Some(f) => Change::Notify(f),
                    None => return Reply::error(notify::INVALID),
                },
                "requirepass" => {
                    if value.is_empty() && ctx.shared.settings.protected() {
                        return config_set_failed(
                        &name,
                        "protected mode: the server listens on a non-loopback address, so it keeps a password",
                    );
                    }
                    Change::RequirePass(value.clone())
                }
                "appendonly" => match yes_no(value) {
                    Some(on) => Change::AppendOnly(on),
                    None => return config_set_failed(&name, "argument must be 'yes' or 'no'"),
                },
                "save" => {
                    let text = String::from_utf8_lossy(value).into_owned();
                    if let Err(e) = crate::persistence::parse_save_rules(&text) {
                        return config_set_failed(&name, &e);
                    }
                    Change::Save(text)
                }
                "appendfsync" => {
                    let wanted = String::from_utf8_lossy(value).to_ascii_lowercase();
                    if !matches!(wanted.as_str(), "always" | "everysec" | "no") {
                        return config_set_failed(
                            &name,
                            "argument(s) must be one of the following: everysec, always, no",
                        );
                    }
                    Change::AppendFsync(wanted)
                }
                "client-output-buffer-limit" => {
                    let text = String::from_utf8_lossy(value).into_owned();
                    if let Err(e) = crate::output_limits::parse(&text) {
                        return config_set_failed(&name, &e);
                    }
                    Change::OutputLimits(text)
                }
                "maxclients" => match config_int(&name, value, 1, 1_000_000) {
                    Ok(n) => Change::MaxClients(n as usize),
                    Err(e) => return e,
                },
                "timeout" => match config_int(&name, value, 0, i64::from(i32::MAX)) {
                    Ok(n) => Change::Timeout(n as u64),
                    Err(e) => return e,
                },
                "maxmemory" => match crate::memory::parse_bytes(&String::from_utf8_lossy(value)) {
                    Ok(n) => Change::MaxMemory(n),
                    Err(_) => return config_set_failed(&name, "argument must be a memory value"),
                },
                "maxmemory-policy" => {
                    match girder_kv::Policy::parse(&String::from_utf8_lossy(value)) {
                    Some(p) => Change::Policy(p),
                    None => return config_set_failed(&name, "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"),
                }
                }
                "maxmemory-samples" => match config_int(&name, value, 1, 64) {
                    Ok(n) => Change::Samples(n as u32),
                    Err(e) => return e,
                },
                "lfu-log-factor" => match config_int(&name, value, 0, i64::from(i32::MAX)) {
                    Ok(n) => Change::LfuLogFactor(n as u32),
                    Err(e) => return e,
                },
                "lfu-decay-time" => match config_int(&name, value, 0, i64::from(i32::MAX)) {
                    Ok(n) => Change::LfuDecayTime(n as u32),
                    Err(e) => return e,
                },
                _ => {
                    return Reply::error(format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                        String::from_utf8_lossy(&pair[0])
                    ))
                }
            };
        if changes.iter().any(|(n, _)| *n == name) {
            return config_set_failed(&name, "duplicate parameter");
        }
        changes.push((name, change));
    }
    let settings = &ctx.shared.settings;
    // The persistence settings need a node that persists: checked before any applies.
    let touches_persistence = changes.iter().any(|(_, c)| {
        matches!(
            c,
            Change::AppendOnly(_) | Change::AppendFsync(_) | Change::Save(_)
        )
    });
    let p = if touches_persistence {
        match super::persistence::persistence(ctx) {
            Ok(p) => Some(p),
            Err(e) => return e,
        }
    } else {
        None
    };
    for (_, change) in changes {
        match change {
            Change::Notify(flags) => {
                ctx.shared.notify.set(flags);
                ctx.keyspace.report_expired(notify::reports_expired(flags));
            }
            Change::RequirePass(p) => ctx.shared.acl.set_requirepass(&p),
            Change::MaxClients(n) => settings.set_max_clients(n),
            Change::MaxMemory(n) => {
                ctx.keyspace.set_maxmemory(n);
                crate::memory::evict_now(ctx);
            }
            Change::Policy(p) => {
                ctx.keyspace.set_eviction_policy(p);
                crate::memory::evict_now(ctx);
            }
            Change::Samples(n) => ctx.keyspace.set_eviction_samples(n),
            Change::LfuLogFactor(n) => ctx.keyspace.set_lfu_log_factor(n),
            Change::LfuDecayTime(n) => ctx.keyspace.set_lfu_decay_time(n),
            Change::Timeout(secs) => settings.set_timeout_secs(secs),
            Change::OutputLimits(text) => {
                // Parsed above.
                let _ = ctx.shared.output_limits.set(&text);
            }
            // `p` is there: checked above.
            Change::AppendOnly(on) => {
                if let Some(Err(e)) = p
                    .as_ref()
                    .map(|p| super::persistence::blocking(|| p.set_appendonly(on)))
                {
                    return Reply::error(format!("ERR {e}"));
                }
            }
            Change::AppendFsync(policy) => {
                if let Some(Err(e)) = p.as_ref().map(|p| p.set_appendfsync(&policy)) {
                    return config_set_failed("appendfsync", &e);
                }
            }
            Change::Save(rules) => {
                if let Some(Err(e)) = p.as_ref().map(|p| p.set_save_rules(&rules)) {
                    return config_set_failed("save", &e);
                }
            }
        }
    }
    Reply::OK
}

fn yes_no(value: &[u8]) -> Option<bool> {
    if value.eq_ignore_ascii_case(b"yes") {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"no") {
        Some(false)
    } else {
        None
    }
}

pub fn dbsize(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    reply(ctx.db().map(|db| count(kv::dbsize(&db))))
}

pub fn time(_: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Reply::Array(vec![
        Reply::bulk(now.as_secs().to_string()),
        Reply::bulk(now.subsec_micros().to_string()),
    ])
}

fn flush_mode(args: &[Bytes]) -> Result<(), Reply> {
    match args.get(1) {
        None => Ok(()),
        Some(a) if args.len() == 2 && (is(a, "SYNC") || is(a, "ASYNC")) => Ok(()),
        Some(_) => Err(syntax_error()),
    }
}

pub fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if let Err(e) = flush_mode(args) {
        return e;
    }
    reply(
        ctx.keyspace
            .exclusive()
            .flush_db(ctx.client.db)
            .map(|()| Reply::OK)
            .map_err(kv_error),
    )
}

pub fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if let Err(e) = flush_mode(args) {
        return e;
    }
    ctx.keyspace.exclusive().flush_all();
    Reply::OK
}

pub fn swapdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let index = |a: &Bytes| match int_arg(a) {
        Ok(n) => usize::try_from(n).map_err(|_| Reply::error("ERR DB index is out of range")),
        Err(_) => Err(Reply::error("ERR invalid first DB index")),
    };
    let a = match index(&args[1]) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let b = match int_arg(&args[2]) {
        Ok(n) => match usize::try_from(n) {
            Ok(b) => b,
            Err(_) => return Reply::error("ERR DB index is out of range"),
        },
        Err(_) => return Reply::error("ERR invalid second DB index"),
    };
    match ctx.keyspace.exclusive().swap_db(a, b) {
        Ok(()) => Reply::OK,
        Err(e) => kv_error(e),
    }
}
