//! Connection commands: PING ECHO HELLO AUTH SELECT QUIT RESET CLIENT.

use super::{count, int_arg, is, parse_i64, spec, syntax_error, Ctx, Spec};
use crate::auth;
use crate::codec::{Protocol, Reply};
use bytes::Bytes;
use girder_kv::DATABASES;
use std::sync::atomic::Ordering;

/// The connection commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "ping",
        -1,
        &["fast"],
        (0, 0, 0),
        "connection",
        "Ping the server.",
        ping,
    ),
    spec(
        "echo",
        2,
        &["fast"],
        (0, 0, 0),
        "connection",
        "Echo the given string.",
        echo,
    ),
    spec(
        "hello",
        -1,
        &["fast", "no-auth"],
        (0, 0, 0),
        "connection",
        "Handshake: switch protocol, authenticate, name the client.",
        hello,
    ),
    spec(
        "auth",
        -2,
        &["fast", "no-auth"],
        (0, 0, 0),
        "connection",
        "Authenticate the connection.",
        auth,
    ),
    spec(
        "select",
        2,
        &["fast"],
        (0, 0, 0),
        "connection",
        "Change the selected database.",
        select,
    ),
    spec(
        "quit",
        -1,
        &["fast", "no-auth"],
        (0, 0, 0),
        "connection",
        "Close the connection.",
        quit,
    ),
    spec(
        "reset",
        1,
        &["fast", "no-auth"],
        (0, 0, 0),
        "connection",
        "Reset the connection.",
        reset,
    ),
    spec(
        "client",
        -2,
        &[],
        (0, 0, 0),
        "connection",
        "Client connection commands.",
        client,
    ),
];

pub fn ping(_: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match args.len() {
        1 => Reply::Simple("PONG"),
        2 => Reply::Bulk(args[1].clone()),
        _ => super::wrong_arity("ping"),
    }
}

pub fn echo(_: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    Reply::Bulk(args[1].clone())
}

pub fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match int_arg(&args[1]) {
        Ok(n) if (0..DATABASES as i64).contains(&n) => {
            ctx.client.select(n as usize);
            Reply::OK
        }
        Ok(_) => Reply::error("ERR DB index is out of range"),
        Err(e) => e,
    }
}

pub fn quit(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    ctx.client.closing = true;
    Reply::OK
}

pub fn reset(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    // Back to the default user: logged out again if it has a password, as in Redis.
    let default = ctx.shared.acl.default_user();
    ctx.client.authenticated = !default.needs_password();
    ctx.client.set_user(default);
    ctx.client.acl_epoch = ctx.shared.acl.epoch();
    super::transactions::release(ctx.keyspace, ctx.client);
    ctx.shared.pubsub.release(ctx.client);
    ctx.client.show_subscriptions();
    ctx.client.select(0);
    ctx.client.protocol = Protocol::Resp2;
    ctx.client.handle.meta.lock().name = None;
    Reply::Simple("RESET")
}

const NO_PASSWORD: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";

/// AUTH [user] password. A failed attempt leaves the connection as it was.
pub fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let acl = &ctx.shared.acl;
    let user = match args {
        // The one-argument form is Redis's legacy requirepass check.
        [_, _] if !acl.default_user().needs_password() => return Reply::error(NO_PASSWORD),
        [_, password] => acl.authenticate(auth::DEFAULT_USER, password),
        [_, user, password] => acl.authenticate(user, password),
        _ => return syntax_error(),
    };
    let Some(user) = user else {
        return Reply::error(auth::WRONGPASS);
    };
    log_in(ctx, user);
    Reply::OK
}

fn log_in(ctx: &mut Ctx<'_>, user: std::sync::Arc<crate::acl::User>) {
    ctx.client.authenticated = true;
    ctx.client.set_user(user);
    ctx.client.acl_epoch = ctx.shared.acl.epoch();
}

/// HELLO [protover [AUTH user pass] [SETNAME name]]
pub fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut protocol = ctx.client.protocol;
    let mut i = 1;
    if let Some(ver) = args.get(1) {
        match int_arg(ver) {
            Ok(2) => protocol = Protocol::Resp2,
            Ok(3) => protocol = Protocol::Resp3,
            Ok(_) => return Reply::error("NOPROTO unsupported protocol version"),
            Err(_) => {
                return Reply::error("ERR Protocol version is not an integer or out of range")
            }
        }
        i = 2;
    }
    let mut name = None;
    let mut login = None;
    while i < args.len() {
        let remaining = args.len() - i - 1;
        if is(&args[i], "AUTH") && remaining >= 2 {
            match ctx.shared.acl.authenticate(&args[i + 1], &args[i + 2]) {
                Some(user) => login = Some(user),
                None => return Reply::error(auth::WRONGPASS),
            }
            i += 3;
        } else if is(&args[i], "SETNAME") && remaining >= 1 {
            if let Err(e) = valid_name(&args[i + 1]) {
                return e;
            }
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            ));
        }
    }
    match login {
        Some(user) => log_in(ctx, user),
        None if !ctx.client.authenticated => return Reply::error(auth::NOAUTH_HELLO),
        None => {}
    }
    ctx.client.protocol = protocol;
    if let Some(name) = name {
        ctx.client.handle.meta.lock().name = Some(name);
    }
    let proto = if protocol == Protocol::Resp3 { 3 } else { 2 };
    Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(crate::REDIS_VERSION)),
        (Reply::bulk("proto"), Reply::Integer(proto)),
        (Reply::bulk("id"), Reply::Integer(ctx.client.id as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk("master")),
        (Reply::bulk("modules"), Reply::Array(vec![])),
    ])
}

fn valid_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// CLIENT ID | SETNAME | GETNAME | LIST | KILL | SETINFO | INFO | NO-EVICT | NO-TOUCH | HELP
pub fn client(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let arity_error = || super::wrong_arity(&format!("client|{sub}"));
    match sub.as_str() {
        "id" if args.len() == 2 => Reply::Integer(ctx.client.id as i64),
        "getname" if args.len() == 2 => {
            super::bulk_or_null(ctx.client.handle.meta.lock().name.clone())
        }
        "setname" if args.len() == 3 => {
            if let Err(e) = valid_name(&args[2]) {
                return e;
            }
            let name = (!args[2].is_empty()).then(|| args[2].clone());
            ctx.client.handle.meta.lock().name = name;
            Reply::OK
        }
        "setinfo" if args.len() == 4 => {
            let value = args[3].clone();
            if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                return Reply::error(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(&args[2]).to_ascii_lowercase()
                ));
            }
            let mut meta = ctx.client.handle.meta.lock();
            if is(&args[2], "LIB-NAME") {
                meta.lib_name = Some(value);
            } else if is(&args[2], "LIB-VER") {
                meta.lib_ver = Some(value);
            } else {
                return Reply::error(format!(
                    "ERR Unrecognized option '{}'",
                    String::from_utf8_lossy(&args[2])
                ));
            }
            Reply::OK
        }
        "list" => list(ctx, &args[2..]),
        "info" if args.len() == 2 => {
            let mut line = client_line(&ctx.client.handle);
            line.push('\n');
            Reply::Verbatim(line.into())
        }
        "kill" if args.len() >= 3 => kill(ctx, &args[2..]),
        "unblock" if (3..=4).contains(&args.len()) => unblock(ctx, &args[2..]),
        "no-evict" | "no-touch" if args.len() == 3 => {
            let on = if is(&args[2], "ON") {
                true
            } else if is(&args[2], "OFF") {
                false
            } else {
                return syntax_error();
            };
            // NO-EVICT exempts a client from client eviction, which Girder does not do.
            if sub == "no-touch" {
                ctx.client.no_touch = on;
            }
            Reply::OK
        }
        "help" => Reply::Array(
            [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ID",
                "GETNAME",
                "SETNAME <name>",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <client-id> [<client-id> ...]]",
                "INFO",
                "KILL <ip:port>",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are: ID <client-id>, TYPE (NORMAL|MASTER|REPLICA|PUBSUB),",
                "    USER <username>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (YES|NO).",
                "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                "    Unblock the specified blocked client.",
                "NO-EVICT (ON|OFF)",
                "NO-TOUCH (ON|OFF)",
            ]
            .into_iter()
            .map(|s| Reply::Status(s.into()))
            .collect(),
        ),
        "id" | "getname" | "setname" | "setinfo" | "info" | "kill" | "no-evict"
        | "no-touch" | "unblock" => arity_error(),
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends the wait of a client blocked in BLPOP, XREAD,
/// XREADGROUP, ... as if it timed out, or with an error; 1 if it was blocked.
fn unblock(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(id) = std::str::from_utf8(&args[0])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    else {
        return Reply::error("ERR value is not an integer or out of range");
    };
    let reply = match args.get(1) {
        None => Reply::NullArray,
        Some(mode) if is(mode, "TIMEOUT") => Reply::NullArray,
        Some(mode) if is(mode, "ERROR") => {
            Reply::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        }
        Some(_) => return Reply::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let target = u64::try_from(id)
        .ok()
        .and_then(|id| ctx.shared.clients.lock().get(&id).cloned());
    let Some(target) = target else {
        return Reply::Integer(0);
    };
    if !target.blocked.load(Ordering::SeqCst) {
        return Reply::Integer(0);
    }
    *target.unblock.lock() = Some(reply);
    target.unblocked.notify_waiters();
    Reply::Integer(1)
}

fn client_line(c: &crate::state::ClientHandle) -> String {
    let meta = c.meta.lock();
    let age = c.created.elapsed().as_secs();
    let last = c.last_command_ms.load(Ordering::Relaxed);
    let idle = (c.created.elapsed().as_millis() as u64).saturating_sub(last) / 1000;
    let text = |b: &Option<Bytes>| {
        b.as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let [sub, psub] = [0, 1].map(|i| c.subscriptions[i].load(Ordering::Relaxed));
    let multi = c.multi.load(Ordering::Relaxed);
    let resp = c.resp.load(Ordering::Relaxed);
    // The command table's name (Redis adds `|subcommand` for container commands).
    let cmd = super::table()
        .get(c.last_cmd.load(Ordering::Relaxed))
        .map_or("NULL", |spec| spec.name);
    format!(
        "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db={} sub={sub} psub={psub} ssub=0 multi={multi} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={cmd} user={} redir=-1 resp={resp} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        text(&meta.name),
        age,
        idle,
        if c.is_pubsub() { 'P' } else { 'N' },
        c.db.load(Ordering::Relaxed),
        meta.user,
        text(&meta.lib_name),
        text(&meta.lib_ver),
    )
}

/// Redis's client types. Girder has no replication, so no client is a master or a
/// replica; the names are still accepted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Pubsub,
    Master,
    Replica,
}

impl ClientType {
    /// `getClientTypeByName`, or Redis's error for an unknown name.
    fn parse(name: &[u8]) -> Result<Self, Reply> {
        match name.to_ascii_lowercase().as_slice() {
            b"normal" => Ok(Self::Normal),
            b"pubsub" => Ok(Self::Pubsub),
            b"master" => Ok(Self::Master),
            b"replica" | b"slave" => Ok(Self::Replica),
            _ => Err(Reply::error(format!(
                "ERR Unknown client type '{}'",
                String::from_utf8_lossy(name)
            ))),
        }
    }

    fn matches(self, c: &crate::state::ClientHandle) -> bool {
        match self {
            Self::Normal => !c.is_pubsub(),
            Self::Pubsub => c.is_pubsub(),
            Self::Master | Self::Replica => false,
        }
    }
}

/// CLIENT LIST [TYPE type] [ID id [id ...]] (Redis 7.0: one filter or the other).
fn list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut kind = None;
    let mut ids = None;
    match args {
        [] => {}
        [option, name] if is(option, "TYPE") => match ClientType::parse(name) {
            Ok(t) => kind = Some(t),
            Err(e) => return e,
        },
        [option, list @ ..] if is(option, "ID") && !list.is_empty() => {
            let mut wanted = Vec::with_capacity(list.len());
            for id in list {
                // Any integer: one that is no client's id lists nothing.
                match parse_i64(id) {
                    Some(n) => wanted.push(n),
                    None => return Reply::error("ERR Invalid client ID"),
                }
            }
            ids = Some(wanted);
        }
        _ => return syntax_error(),
    }
    let clients = ctx.shared.clients.lock();
    let mut text = String::new();
    let mut line = |c: &crate::state::ClientHandle| {
        text.push_str(&client_line(c));
        text.push('\n');
    };
    match ids {
        // One line per id given, in their order, repeats included (as Redis lists them).
        Some(ids) => ids
            .iter()
            .filter_map(|&id| u64::try_from(id).ok().and_then(|id| clients.get(&id)))
            .for_each(|c| line(c)),
        None => clients
            .values()
            .filter(|c| kind.is_none_or(|t| t.matches(c)))
            .for_each(|c| line(c)),
    }
    Reply::Verbatim(text.into())
}

/// CLIENT KILL addr | KILL [ID id] [TYPE type] [USER name] [ADDR addr] [LADDR addr]
/// [SKIPME yes|no]: every filter given must match (Redis 7.0's `clientKillCommand`).
fn kill(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let clients: Vec<_> = ctx.shared.clients.lock().values().cloned().collect();
    if args.len() == 1 {
        let addr = String::from_utf8_lossy(&args[0]);
        return match clients.iter().find(|c| c.addr.to_string() == addr) {
            Some(c) => {
                c.kill.cancel();
                Reply::OK
            }
            None => Reply::error("ERR No such client"),
        };
    }
    if !args.len().is_multiple_of(2) {
        return syntax_error();
    }
    let mut id = None;
    let mut kind = None;
    let mut user = None;
    let mut addr = None;
    let mut laddr = None;
    let mut skip_me = true;
    for pair in args.chunks(2) {
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        if is(&pair[0], "ID") {
            match parse_i64(&pair[1])
                .and_then(|n| u64::try_from(n).ok())
                .filter(|&n| n > 0)
            {
                Some(v) => id = Some(v),
                None => return Reply::error("ERR client-id should be greater than 0"),
            }
        } else if is(&pair[0], "TYPE") {
            match ClientType::parse(&pair[1]) {
                Ok(t) => kind = Some(t),
                Err(e) => return e,
            }
        } else if is(&pair[0], "USER") {
            if ctx.shared.acl.user(&value).is_none() {
                return Reply::error(format!("ERR No such user '{value}'"));
            }
            user = Some(value);
        } else if is(&pair[0], "ADDR") {
            addr = Some(value);
        } else if is(&pair[0], "LADDR") {
            laddr = Some(value);
        } else if is(&pair[0], "SKIPME") {
            match value.to_ascii_lowercase().as_str() {
                "yes" => skip_me = true,
                "no" => skip_me = false,
                _ => return syntax_error(),
            }
        } else {
            return syntax_error();
        }
    }
    let killed = clients
        .iter()
        .filter(|c| id.is_none_or(|id| c.id == id))
        .filter(|c| kind.is_none_or(|t| t.matches(c)))
        .filter(|c| user.as_ref().is_none_or(|u| c.meta.lock().user == *u))
        .filter(|c| addr.as_ref().is_none_or(|a| c.addr.to_string() == *a))
        .filter(|c| laddr.as_ref().is_none_or(|a| c.laddr.to_string() == *a))
        .filter(|c| !(skip_me && c.id == ctx.client.id))
        .inspect(|c| c.kill.cancel())
        .count();
    count(killed)
}
