//! The command table and dispatch. One file per command family, each command in three
//! steps: parse the arguments, apply to the keyspace, encode the reply.
//!
//! Every command is described once, in [`TABLE`]: name, arity (Redis's convention: `n`
//! exactly, `-n` at least), flags and key positions. Dispatch checks the arity from the
//! table, so handlers only see argument counts they accept; `COMMAND COUNT/INFO/DOCS`
//! are generated from the same table.

mod connection;
mod keys;
mod server;
mod strings;

use crate::codec::Reply;
use crate::state::{ClientState, Shared};
use bytes::Bytes;
use girder_kv::{DbRef, Keyspace, KvError};
use std::collections::HashMap;
use std::sync::OnceLock;

/// What a handler gets.
pub struct Ctx<'a> {
    /// The keyspace.
    pub keyspace: &'a Keyspace,
    /// This connection's state.
    pub client: &'a mut ClientState,
    /// Server-wide state.
    pub shared: &'a Shared,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("client", &self.client.id)
            .finish()
    }
}

impl Ctx<'_> {
    /// The selected database.
    ///
    /// # Errors
    /// Never in practice: the selected index is validated by SELECT.
    pub fn db(&self) -> Result<DbRef<'_>, Reply> {
        self.keyspace.db(self.client.db).map_err(kv_error)
    }
}

/// A command implementation.
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> Reply;

/// One row of the command table.
#[derive(Debug)]
pub struct Spec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis arity: `n` exactly, `-n` at least `n` (counting the name).
    pub arity: i32,
    /// Redis command flags (`write`, `readonly`, `fast`, ...), for COMMAND INFO.
    pub flags: &'static [&'static str],
    /// First key argument (0: none), last key (-1: the last argument), step.
    pub keys: (i32, i32, i32),
    /// ACL category / documentation group.
    pub group: &'static str,
    /// One line of documentation.
    pub summary: &'static str,
    /// The implementation.
    pub handler: Handler,
}

/// Every command Girder serves.
pub static TABLE: &[Spec] = &[
    // connection
    spec(
        "ping",
        -1,
        &["fast"],
        (0, 0, 0),
        "connection",
        "Ping the server.",
        connection::ping,
    ),
    spec(
        "echo",
        2,
        &["fast"],
        (0, 0, 0),
        "connection",
        "Echo the given string.",
        connection::echo,
    ),
    spec(
        "hello",
        -1,
        &["fast", "no-auth"],
        (0, 0, 0),
        "connection",
        "Handshake: switch protocol, authenticate, name the client.",
        connection::hello,
    ),
    spec(
        "auth",
        -2,
        &["fast", "no-auth"],
        (0, 0, 0),
        "connection",
        "Authenticate the connection.",
        connection::auth,
    ),
    spec(
        "select",
        2,
        &["fast"],
        (0, 0, 0),
        "connection",
        "Change the selected database.",
        connection::select,
    ),
    spec(
        "quit",
        -1,
        &["fast", "no-auth"],
        (0, 0, 0),
        "connection",
        "Close the connection.",
        connection::quit,
    ),
    spec(
        "reset",
        1,
        &["fast", "no-auth"],
        (0, 0, 0),
        "connection",
        "Reset the connection.",
        connection::reset,
    ),
    spec(
        "client",
        -2,
        &[],
        (0, 0, 0),
        "connection",
        "Client connection commands.",
        connection::client,
    ),
    // server
    spec(
        "command",
        -1,
        &["loading"],
        (0, 0, 0),
        "server",
        "Details about commands.",
        server::command,
    ),
    spec(
        "info",
        -1,
        &["loading"],
        (0, 0, 0),
        "server",
        "Information and statistics about the server.",
        server::info,
    ),
    spec(
        "config",
        -2,
        &["admin"],
        (0, 0, 0),
        "server",
        "Read or change configuration.",
        server::config,
    ),
    spec(
        "dbsize",
        1,
        &["readonly", "fast"],
        (0, 0, 0),
        "server",
        "Number of keys in the database.",
        server::dbsize,
    ),
    spec(
        "time",
        1,
        &["fast"],
        (0, 0, 0),
        "server",
        "The server time.",
        server::time,
    ),
    spec(
        "flushdb",
        -1,
        &["write"],
        (0, 0, 0),
        "server",
        "Remove all keys from the current database.",
        server::flushdb,
    ),
    spec(
        "flushall",
        -1,
        &["write"],
        (0, 0, 0),
        "server",
        "Remove all keys from all databases.",
        server::flushall,
    ),
    spec(
        "swapdb",
        3,
        &["write", "fast"],
        (0, 0, 0),
        "server",
        "Swap two databases.",
        server::swapdb,
    ),
    // keys
    spec(
        "del",
        -2,
        &["write"],
        (1, -1, 1),
        "generic",
        "Delete keys.",
        keys::del,
    ),
    spec(
        "unlink",
        -2,
        &["write", "fast"],
        (1, -1, 1),
        "generic",
        "Delete keys (non-blocking).",
        keys::del,
    ),
    spec(
        "exists",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
        "generic",
        "Count existing keys.",
        keys::exists,
    ),
    spec(
        "touch",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
        "generic",
        "Touch keys.",
        keys::exists,
    ),
    spec(
        "type",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "The type of a key's value.",
        keys::type_,
    ),
    spec(
        "expire",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Set a TTL in seconds.",
        keys::expire,
    ),
    spec(
        "pexpire",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Set a TTL in milliseconds.",
        keys::pexpire,
    ),
    spec(
        "expireat",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Set a deadline as a Unix time in seconds.",
        keys::expireat,
    ),
    spec(
        "pexpireat",
        -3,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Set a deadline as a Unix time in milliseconds.",
        keys::pexpireat,
    ),
    spec(
        "ttl",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "TTL in seconds.",
        keys::ttl,
    ),
    spec(
        "pttl",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "TTL in milliseconds.",
        keys::pttl,
    ),
    spec(
        "expiretime",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "Deadline as a Unix time in seconds.",
        keys::expiretime,
    ),
    spec(
        "pexpiretime",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "Deadline as a Unix time in milliseconds.",
        keys::pexpiretime,
    ),
    spec(
        "persist",
        2,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Remove a key's TTL.",
        keys::persist,
    ),
    spec(
        "rename",
        3,
        &["write"],
        (1, 2, 1),
        "generic",
        "Rename a key.",
        keys::rename,
    ),
    spec(
        "renamenx",
        3,
        &["write", "fast"],
        (1, 2, 1),
        "generic",
        "Rename a key if the new name is free.",
        keys::renamenx,
    ),
    spec(
        "copy",
        -3,
        &["write"],
        (1, 2, 1),
        "generic",
        "Copy a key.",
        keys::copy,
    ),
    spec(
        "move",
        3,
        &["write", "fast"],
        (1, 1, 1),
        "generic",
        "Move a key to another database.",
        keys::move_,
    ),
    spec(
        "keys",
        2,
        &["readonly"],
        (0, 0, 0),
        "generic",
        "Keys matching a pattern.",
        keys::keys,
    ),
    spec(
        "randomkey",
        1,
        &["readonly"],
        (0, 0, 0),
        "generic",
        "A random key.",
        keys::randomkey,
    ),
    spec(
        "object",
        -2,
        &["readonly"],
        (2, 2, 1),
        "generic",
        "Inspect a key's internals.",
        keys::object,
    ),
    // strings
    spec(
        "get",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "string",
        "Get a key's value.",
        strings::get,
    ),
    spec(
        "set",
        -3,
        &["write"],
        (1, 1, 1),
        "string",
        "Set a key's value.",
        strings::set,
    ),
    spec(
        "setnx",
        3,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Set if absent.",
        strings::setnx,
    ),
    spec(
        "setex",
        4,
        &["write"],
        (1, 1, 1),
        "string",
        "Set with a TTL in seconds.",
        strings::setex,
    ),
    spec(
        "psetex",
        4,
        &["write"],
        (1, 1, 1),
        "string",
        "Set with a TTL in milliseconds.",
        strings::psetex,
    ),
    spec(
        "getset",
        3,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Set and return the old value.",
        strings::getset,
    ),
    spec(
        "getdel",
        2,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Get and delete.",
        strings::getdel,
    ),
    spec(
        "getex",
        -2,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Get and change the TTL.",
        strings::getex,
    ),
    spec(
        "mget",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
        "string",
        "Get several keys.",
        strings::mget,
    ),
    spec(
        "mset",
        -3,
        &["write"],
        (1, -1, 2),
        "string",
        "Set several keys.",
        strings::mset,
    ),
    spec(
        "msetnx",
        -3,
        &["write"],
        (1, -1, 2),
        "string",
        "Set several keys if none exists.",
        strings::msetnx,
    ),
    spec(
        "incr",
        2,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Add 1.",
        strings::incr,
    ),
    spec(
        "decr",
        2,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Subtract 1.",
        strings::decr,
    ),
    spec(
        "incrby",
        3,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Add an integer.",
        strings::incrby,
    ),
    spec(
        "decrby",
        3,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Subtract an integer.",
        strings::decrby,
    ),
    spec(
        "incrbyfloat",
        3,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Add a float.",
        strings::incrbyfloat,
    ),
    spec(
        "append",
        3,
        &["write", "fast"],
        (1, 1, 1),
        "string",
        "Append to a value.",
        strings::append,
    ),
    spec(
        "strlen",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        "string",
        "Length of a value.",
        strings::strlen,
    ),
    spec(
        "getrange",
        4,
        &["readonly"],
        (1, 1, 1),
        "string",
        "A substring.",
        strings::getrange,
    ),
    spec(
        "setrange",
        4,
        &["write"],
        (1, 1, 1),
        "string",
        "Overwrite part of a value.",
        strings::setrange,
    ),
];

#[allow(clippy::too_many_arguments)]
const fn spec(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    group: &'static str,
    summary: &'static str,
    handler: Handler,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        keys,
        group,
        summary,
        handler,
    }
}

/// Looks a command up by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    lookup_indexed(name).map(|(_, spec)| spec)
}

/// Looks a command up by name, with its position in [`TABLE`] (for per-command metrics
/// kept in a flat array).
pub fn lookup_indexed(name: &[u8]) -> Option<(usize, &'static Spec)> {
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| TABLE.iter().enumerate().map(|(i, s)| (s.name, i)).collect());
    if name.len() > 32 {
        return None;
    }
    let mut lower = [0u8; 32];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let i = *index.get(std::str::from_utf8(lower).ok()?)?;
    Some((i, &TABLE[i]))
}

/// Whether `argc` arguments (name included) fit `arity`.
pub fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = i64::try_from(argc).unwrap_or(i64::MAX);
    let arity = i64::from(arity);
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

/// The reply for an unknown command, worded as Redis 7 words it.
pub fn unknown_command(args: &[Bytes]) -> Reply {
    let name = String::from_utf8_lossy(&args[0]);
    let mut text = format!(
        "ERR unknown command '{}', with args beginning with: ",
        truncate(&name, 128)
    );
    for arg in args.iter().skip(1) {
        let arg = String::from_utf8_lossy(arg);
        let room = 128usize.saturating_sub(text.len());
        if room == 0 {
            break;
        }
        text.push_str(&format!("'{}' ", truncate(&arg, room)));
    }
    Reply::Error(text)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `ERR wrong number of arguments for '<cmd>' command`.
pub fn wrong_arity(name: &str) -> Reply {
    Reply::Error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// An engine error as a reply.
pub fn kv_error(e: KvError) -> Reply {
    Reply::Error(e.to_string())
}

/// `ERR syntax error`.
pub fn syntax_error() -> Reply {
    Reply::error("ERR syntax error")
}

/// `ERR value is not an integer or out of range`.
pub fn not_integer() -> Reply {
    Reply::error("ERR value is not an integer or out of range")
}

/// Parses an integer argument as Redis's `string2ll` does.
///
/// # Errors
/// The `not an integer` reply.
pub fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(not_integer)
}

/// Redis's `string2ll`: optional `-`, digits, no leading zeros (except "0"), in range.
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    if arg.is_empty() || arg.len() > 20 {
        return None;
    }
    let text = std::str::from_utf8(arg).ok()?;
    if text.starts_with('+') || (text.len() > 1 && text.starts_with('0')) || text.starts_with("-0")
    {
        return None;
    }
    text.parse().ok()
}

/// Whether `arg` equals `word`, ignoring ASCII case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// A bulk reply or null.
pub fn bulk_or_null(value: Option<Bytes>) -> Reply {
    value.map_or(Reply::Null, Reply::Bulk)
}

/// Converts a count to an integer reply.
pub fn count(n: usize) -> Reply {
    Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Unwraps a `Result<Reply, Reply>` produced with `?` inside handlers.
pub fn reply(result: Result<Reply, Reply>) -> Reply {
    result.unwrap_or_else(|e| e)
}
