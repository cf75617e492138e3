//! The command table and dispatch. One file per command family, each command in three
//! steps: parse the arguments, apply to the keyspace, encode the reply.
//!
//! Every command is described once, in its family's `SPECS` (gathered by [`table`]): name, arity (Redis's convention: `n`
//! exactly, `-n` at least), flags and key positions. Dispatch checks the arity from the
//! table, so handlers only see argument counts they accept; `COMMAND COUNT/INFO/DOCS`
//! are generated from the same table.

mod acl;
mod connection;
mod girder;
mod hashes;
mod keys;
mod lists;
mod persistence;
mod pubsub;
mod server;
mod sets;
mod stream_groups;
mod streams;
mod strings;
pub mod transactions;
mod zsets;

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
    /// The time this batch of commands runs at, in ms since the Unix epoch.
    pub now_ms: u64,
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
        let db = self
            .keyspace
            .db_at(self.client.db, self.now_ms)
            .map_err(kv_error)?;
        Ok(if self.client.no_touch {
            db.without_touch()
        } else {
            db
        })
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

/// The command families, each defined in its own file.
static FAMILIES: &[&[Spec]] = &[
    connection::SPECS,
    server::SPECS,
    persistence::SPECS,
    acl::SPECS,
    keys::SPECS,
    strings::SPECS,
    hashes::SPECS,
    lists::SPECS,
    sets::SPECS,
    zsets::SPECS,
    transactions::SPECS,
    pubsub::SPECS,
    streams::SPECS,
    stream_groups::SPECS,
    girder::SPECS,
];

/// Every command Girder serves, in a stable order (families in the order above).
pub fn table() -> &'static [&'static Spec] {
    static TABLE: OnceLock<Vec<&'static Spec>> = OnceLock::new();
    TABLE.get_or_init(|| FAMILIES.iter().flat_map(|f| f.iter()).collect())
}

#[allow(clippy::too_many_arguments)]
pub(super) const fn spec(
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

/// Whether the command at `index` of [`table`] replies with journaled (stream) state:
/// under `persistence.fsync = always` such a reply waits until that state is durable.
pub fn reads_journaled(index: usize) -> bool {
    table()
        .get(index)
        .is_some_and(|spec| spec.group == "stream")
}

/// Whether the command at `index` of [`table`] may be journaled as itself
/// (`girder_kv::origin`): it writes, all its keyspace access is one `write`/`write_many`
/// call (so what it reads is locked while it is journaled), and replaying it at its time
/// repeats it. Others are journaled as the state they leave: several calls (DEL and
/// UNLINK of several keys, MOVE, COPY ... DB, the flushes), a lease only this process
/// knows (CACHE.FILL), streams (journaled by their own effects). SPOP is listed: the
/// keyspace journals its random choice in place of the command. A wrong entry here
/// fails a debug assertion in every test that runs the command.
pub fn replayable(index: usize) -> bool {
    journaling(index) == Journaling::Command
}

/// How the writes of a command are journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journaling {
    /// No `write` flag: it runs without a command around it (anything it still changes,
    /// such as a lease, is journaled as state).
    None,
    /// As the command itself ([`replayable`]).
    Command,
    /// As the state it leaves.
    State,
}

/// How the writes of the command at `index` of [`table`] are journaled.
pub fn journaling(index: usize) -> Journaling {
    static TABLE: OnceLock<Vec<Journaling>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            table()
                .iter()
                .map(|spec| {
                    if !spec.flags.contains(&"write") {
                        Journaling::None
                    } else if matches!(
                        spec.group,
                        "string" | "hash" | "list" | "set" | "sortedset" | "generic"
                    ) && !matches!(spec.name, "move" | "copy")
                    {
                        Journaling::Command
                    } else {
                        Journaling::State
                    }
                })
                .collect()
        })
        .get(index)
        .copied()
        .unwrap_or(Journaling::State)
}

/// Looks a command up by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    lookup_indexed(name).map(|(_, spec)| spec)
}

/// Looks a command up by name, with its position in [`table`] (for per-command metrics
/// kept in a flat array).
pub fn lookup_indexed(name: &[u8]) -> Option<(usize, &'static Spec)> {
    // ahash, not the default SipHash: this runs once per command.
    static INDEX: OnceLock<HashMap<&'static str, usize, ahash::RandomState>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        table()
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name, i))
            .collect()
    });
    if name.len() > 32 {
        return None;
    }
    let mut lower = [0u8; 32];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let i = *index.get(std::str::from_utf8(lower).ok()?)?;
    Some((i, table()[i]))
}

/// Runs one command (`args[0]` is its name): looks it up, checks its arity, calls its
/// handler. Returns the command's index in [`table`] (`None` when unknown) and the reply.
///
/// # Panics
/// If `args` is empty: callers skip empty commands.
pub fn dispatch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> (Option<usize>, Reply) {
    let found = match &ctx.client.last_command {
        Some((name, i)) if *name == args[0] => Some((*i, table()[*i])),
        _ => lookup_indexed(&args[0]),
    };
    let Some((index, spec)) = found else {
        transactions::refuse(ctx);
        return (None, unknown_command(args));
    };
    if ctx
        .client
        .last_command
        .as_ref()
        .is_none_or(|(_, i)| *i != index)
    {
        // A copy: a slice would keep this request's whole buffer alive.
        ctx.client.last_command = Some((Bytes::copy_from_slice(&args[0]), index));
    }
    if !arity_ok(spec.arity, args.len()) {
        transactions::refuse(ctx);
        return (Some(index), wrong_arity(spec.name));
    }
    // As Redis: an unknown command or a wrong arity is reported before NOAUTH.
    let no_auth = matches!(spec.name, "auth" | "hello" | "quit" | "reset");
    if !ctx.client.authenticated && !no_auth {
        transactions::refuse(ctx);
        return (Some(index), Reply::error(crate::auth::NOAUTH));
    }
    if let Err(reply) = check_acl(ctx, spec, args, no_auth) {
        transactions::refuse(ctx);
        return (Some(index), reply);
    }
    // RESP2 subscribe mode restricts what may run (a client in it cannot be in MULTI).
    if let Some(reply) = pubsub::intercept(ctx, spec.name, args) {
        return (Some(index), reply);
    }
    // Over `maxmemory`: evict first; refuse what may grow memory if that is not enough.
    if let Some(reply) = crate::memory::refuse_when_full(ctx, spec) {
        transactions::refuse(ctx);
        return (Some(index), reply);
    }
    if ctx.client.tx.queued.is_some() && !transactions::runs_inside_multi(spec.name) {
        return (Some(index), transactions::queue(ctx, args));
    }
    // Every write journaled: a write command goes with its writes (debug builds check
    // the `replayable` table on every one). Reads skip it.
    let journaling = journaling(index);
    let reply = if journaling != Journaling::None
        && (cfg!(debug_assertions) || ctx.keyspace.journals_all())
    {
        girder_kv::origin::run(args, journaling == Journaling::Command, || {
            crate::notify::run(ctx, spec, args)
        })
    } else {
        crate::notify::run(ctx, spec, args)
    };
    announce_key_changes(ctx, spec, args);
    (Some(index), reply)
}

/// Refuses what the connection's ACL user may not run or touch. Free while the user may
/// do everything; a changed ACL (epoch) is read again first, and a connection whose
/// user was deleted is closed.
fn check_acl(ctx: &mut Ctx<'_>, spec: &Spec, args: &[Bytes], no_auth: bool) -> Result<(), Reply> {
    let acl = &ctx.shared.acl;
    let epoch = acl.epoch();
    if ctx.client.acl_epoch != epoch {
        ctx.client.acl_epoch = epoch;
        match acl.user(&ctx.client.user.name) {
            Some(user) => ctx.client.user = user,
            None => {
                ctx.client.closing = true;
                return Err(Reply::error(
                    "ERR the ACL user of this connection was deleted",
                ));
            }
        }
    }
    let user = &ctx.client.user;
    if user.unrestricted || no_auth {
        return Ok(());
    }
    let sub = (crate::acl::has_subcommands(spec.name) && args.len() > 1)
        .then(|| String::from_utf8_lossy(&args[1]).to_ascii_lowercase());
    if !user.may_run(spec, sub.as_deref()) {
        let name = match &sub {
            Some(s) => format!("{}|{s}", spec.name),
            None => spec.name.to_owned(),
        };
        return Err(Reply::Error(crate::acl::Denied::Command(name).message()));
    }
    if acl_keys(spec, args).iter().any(|k| !user.may_access_key(k)) {
        return Err(Reply::Error(crate::acl::Denied::Key.message()));
    }
    let channels: &[Bytes] = match spec.name {
        "publish" => &args[1..2],
        "subscribe" | "psubscribe" => &args[1..],
        _ => &[],
    };
    let literal = spec.name == "psubscribe";
    if channels
        .iter()
        .any(|c| !user.may_access_channel(c, literal))
    {
        return Err(Reply::Error(crate::acl::Denied::Channel.message()));
    }
    Ok(())
}

/// Every key a command names, sources included (`notify::key_args` lists the keys a
/// command writes; the `numkeys` commands read more).
fn acl_keys(spec: &Spec, args: &[Bytes]) -> Vec<Bytes> {
    let numkeys_at = match spec.name {
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" => Some(1),
        "zunionstore" | "zinterstore" | "zdiffstore" => Some(2),
        _ => None,
    };
    let mut keys = crate::notify::key_args(spec, args);
    if let Some(at) = numkeys_at {
        let n = args
            .get(at)
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        keys.extend(args.iter().skip(at + 1).take(n).cloned());
    }
    keys
}

/// While clients are blocked, tells the blocking registry of the keys a write command
/// outside the list, sorted-set and stream families touched (DEL, SET, RENAME, ...):
/// a consumer group blocked on a key that no longer holds a stream is answered
/// `-UNBLOCKED`, as Redis does. The families that add elements announce their own
/// pushes. Costs one atomic load when nobody is blocked.
fn announce_key_changes(ctx: &mut Ctx<'_>, spec: &Spec, args: &[Bytes]) {
    if !ctx.shared.blocking.anyone_waiting()
        || !spec.flags.contains(&"write")
        || matches!(spec.group, "list" | "sortedset" | "stream")
    {
        return;
    }
    let whole = match spec.name {
        "flushdb" => Some(Some(ctx.client.db)),
        "flushall" | "swapdb" => Some(None),
        _ => None,
    };
    if let Some(db) = whole {
        for (db, key) in ctx.shared.blocking.waiting_keys(db) {
            if ctx.client.tx.executing {
                ctx.client.tx.pushed.push((db, key));
            } else {
                ctx.shared.blocking.pushed(ctx.keyspace, db, &key);
            }
        }
        return;
    }
    for key in crate::notify::key_args(spec, args) {
        lists::announce_push(ctx, &key);
    }
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
    // As Redis's: up to 128 bytes of the arguments' text, each argument cut to what
    // is left of them.
    let mut rest = String::new();
    for arg in args.iter().skip(1) {
        if rest.len() >= 128 {
            break;
        }
        let arg = String::from_utf8_lossy(arg);
        let room = 128 - rest.len();
        rest.push_str(&format!("'{}' ", truncate(&arg, room)));
    }
    Reply::Error(format!(
        "ERR unknown command '{}', with args beginning with: {rest}",
        truncate(&name, 128)
    ))
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

/// Most elements a negative count may ask HRANDFIELD, SRANDMEMBER or ZRANDMEMBER for.
/// A negative count repeats elements, so its reply is as long as asked: Redis 7.0 builds
/// it whole and dies of memory exhaustion for counts near -2^63. Girder refuses instead.
pub const MAX_RANDOM_REPLY: i64 = 10_000_000;

/// Refuses a negative random-element count longer than [`MAX_RANDOM_REPLY`].
///
/// # Errors
/// An `ERR` reply naming the bound.
pub fn bound_random_count(n: i64) -> Result<i64, Reply> {
    if n < -MAX_RANDOM_REPLY {
        Err(Reply::Error(format!(
            "ERR count is out of range: a negative count may ask for at most {MAX_RANDOM_REPLY} elements"
        )))
    } else {
        Ok(n)
    }
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
