//! SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF: through the [`crate::persistence`] seam.

use super::{spec, Ctx, Spec};
use crate::codec::Reply;
use crate::persistence::Persistence;
use bytes::Bytes;
use std::sync::Arc;

pub static SPECS: &[Spec] = &[
    spec(
        "save",
        1,
        &["admin", "noscript", "no_async_loading", "no_multi"],
        (0, 0, 0),
        "server",
        "Synchronously save the dataset to disk.",
        save,
    ),
    spec(
        "bgsave",
        -1,
        &["admin", "noscript", "no_async_loading"],
        (0, 0, 0),
        "server",
        "Asynchronously save the dataset to disk.",
        bgsave,
    ),
    spec(
        "bgrewriteaof",
        1,
        &["admin", "noscript", "no_async_loading"],
        (0, 0, 0),
        "server",
        "Asynchronously rewrite the append-only file.",
        bgrewriteaof,
    ),
    spec(
        "lastsave",
        1,
        &["fast", "random", "loading", "stale"],
        (0, 0, 0),
        "server",
        "Get the Unix timestamp of the last successful save to disk.",
        lastsave,
    ),
];

/// The persistence seam, or the error a node without one answers.
pub(super) fn persistence(ctx: &Ctx<'_>) -> Result<Arc<dyn Persistence>, Reply> {
    ctx.shared
        .persistence
        .get()
        .cloned()
        .ok_or_else(|| Reply::error("ERR this node keeps nothing on disk"))
}

fn save(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    let p = match persistence(ctx) {
        Ok(p) => p,
        Err(e) => return e,
    };
    // As Redis: SAVE holds this client until the snapshot is on disk. The worker thread
    // is handed over to blocking work meanwhile, so other clients keep being served.
    match blocking(|| p.save()) {
        Ok(()) => Reply::OK,
        Err(e) => Reply::error(format!("ERR {e}")),
    }
}

/// Runs blocking work from a handler without starving the async runtime.
pub(super) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn bgsave(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() > 2 || (args.len() == 2 && !super::is(&args[1], "SCHEDULE")) {
        return super::syntax_error();
    }
    match persistence(ctx).and_then(|p| p.bgsave().map_err(|e| Reply::error(format!("ERR {e}")))) {
        Ok(()) => Reply::Status("Background saving started".into()),
        Err(e) => e,
    }
}

fn bgrewriteaof(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    match persistence(ctx).and_then(|p| p.bgsave().map_err(|e| Reply::error(format!("ERR {e}")))) {
        Ok(()) => Reply::Status("Background append only file rewriting started".into()),
        Err(e) => e,
    }
}

fn lastsave(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Reply {
    match persistence(ctx) {
        Ok(p) => Reply::Integer(i64::try_from(p.last_save_secs()).unwrap_or(i64::MAX)),
        Err(e) => e,
    }
}
