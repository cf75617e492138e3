//! Transactions: MULTI EXEC DISCARD WATCH UNWATCH.
//!
//! Between MULTI and EXEC, commands are checked (name, arity) and queued; a refused one
//! makes EXEC answer EXECABORT. EXEC runs the queue inside one exclusive section of the
//! keyspace, so no other client's command interleaves, after checking that no WATCHed
//! key was modified since WATCH (else it answers a null array and runs nothing).
//! WATCH is conservative: an attempted write that changed nothing (SET NX on an existing
//! key, a WRONGTYPE) also counts as a modification, so a transaction may abort where
//! Redis would not, never the reverse.

use super::{spec, Ctx, Spec};
use crate::codec::Reply;
use crate::state::MAX_QUEUED;
use bytes::Bytes;

/// The transaction commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "multi",
        1,
        &["noscript", "loading", "stale", "fast", "allow-busy"],
        (0, 0, 0),
        "transactions",
        "Start a transaction.",
        multi,
    ),
    spec(
        "exec",
        1,
        &["noscript", "loading", "stale", "skip-slowlog"],
        (0, 0, 0),
        "transactions",
        "Execute the queued commands.",
        exec,
    ),
    spec(
        "discard",
        1,
        &["noscript", "loading", "stale", "fast", "allow-busy"],
        (0, 0, 0),
        "transactions",
        "Discard the queued commands.",
        discard,
    ),
    spec(
        "watch",
        -2,
        &["noscript", "loading", "stale", "fast", "allow-busy"],
        (1, -1, 1),
        "transactions",
        "Abort the next EXEC if these keys change.",
        watch,
    ),
    spec(
        "unwatch",
        1,
        &["noscript", "loading", "stale", "fast", "allow-busy"],
        (0, 0, 0),
        "transactions",
        "Forget all WATCHed keys.",
        unwatch,
    ),
];

/// Commands that act on the transaction itself instead of being queued.
pub fn runs_inside_multi(name: &str) -> bool {
    matches!(
        name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Queues `args` (already checked) for EXEC.
pub fn queue(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let tx = &mut ctx.client.tx;
    let queued = tx.queued.get_or_insert_with(Vec::new);
    if queued.len() >= MAX_QUEUED {
        tx.aborted = true;
        return Reply::Error(format!(
            "ERR transaction too long: at most {MAX_QUEUED} queued commands"
        ));
    }
    // Owned copies: queued arguments must not pin the connection's read buffer.
    queued.push(args.iter().map(|a| Bytes::copy_from_slice(a)).collect());
    Reply::Simple("QUEUED")
}

/// Marks the transaction failed after a refused command (wrong name or arity).
pub fn refuse(ctx: &mut Ctx<'_>) {
    if ctx.client.tx.queued.is_some() {
        ctx.client.tx.aborted = true;
    }
}

fn multi(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    if ctx.client.tx.queued.is_some() {
        return Reply::error("ERR MULTI calls can not be nested");
    }
    ctx.client.tx.queued = Some(Vec::new());
    ctx.client.tx.aborted = false;
    Reply::OK
}

/// Ends the transaction without running it: EXEC refused before it ran (Redis's
/// `execCommandAbort`), with `why` as the reason given.
pub fn abort_exec(ctx: &mut Ctx<'_>, why: &str) -> Reply {
    ctx.client.tx.queued = None;
    ctx.client.tx.aborted = false;
    forget_watches(ctx);
    Reply::error(format!("EXECABORT Transaction discarded because of: {why}"))
}

fn discard(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    if ctx.client.tx.queued.take().is_none() {
        return Reply::error("ERR DISCARD without MULTI");
    }
    ctx.client.tx.aborted = false;
    forget_watches(ctx);
    Reply::OK
}

fn watch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if ctx.client.tx.queued.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    let db_index = ctx.client.db;
    let Ok(db) = ctx.db() else {
        return Reply::error("ERR DB index is out of range");
    };
    let mut watched = Vec::with_capacity(args.len() - 1);
    for key in &args[1..] {
        watched.push((db_index, Bytes::copy_from_slice(key), db.watch(key)));
    }
    drop(db);
    ctx.client.tx.watched.extend(watched);
    Reply::OK
}

fn unwatch(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    forget_watches(ctx);
    Reply::OK
}

/// Releases every WATCH of this client (after EXEC, DISCARD, UNWATCH).
pub fn forget_watches(ctx: &mut Ctx<'_>) {
    release(ctx.keyspace, ctx.client);
}

/// Ends whatever transaction state `client` has: the queue and every WATCH (RESET, and a
/// connection that closes).
pub fn release(keyspace: &girder_kv::Keyspace, client: &mut crate::state::ClientState) {
    client.tx.queued = None;
    client.tx.aborted = false;
    for (db, key, _) in std::mem::take(&mut client.tx.watched) {
        if let Ok(db) = keyspace.db(db) {
            db.unwatch(&key);
        }
    }
}

fn exec(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    let Some(queued) = ctx.client.tx.queued.take() else {
        return Reply::error("ERR EXEC without MULTI");
    };
    if std::mem::take(&mut ctx.client.tx.aborted) {
        forget_watches(ctx);
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    let replies = {
        let exclusive = ctx.keyspace.exclusive();
        let unchanged = ctx.client.tx.watched.iter().all(|(db, key, version)| {
            exclusive
                .db(*db)
                .is_ok_and(|db| db.watched_version(key) == *version)
        });
        if unchanged {
            ctx.client.tx.executing = true;
            // One journal record for the whole transaction: after a crash it is all
            // there or not at all.
            let replies: Vec<Reply> = exclusive.atomically(|| {
                queued
                    .iter()
                    .map(|args| super::dispatch(ctx, args).1)
                    .collect()
            });
            ctx.client.tx.executing = false;
            Some(replies)
        } else {
            None
        }
    };
    forget_watches(ctx);
    // Clients blocked on keys the transaction pushed to are served now that it is done.
    for (db, key) in std::mem::take(&mut ctx.client.tx.pushed) {
        ctx.shared.blocking.pushed(ctx.keyspace, db, &key);
    }
    match replies {
        Some(replies) => Reply::Array(replies),
        None => Reply::NullArray,
    }
}
