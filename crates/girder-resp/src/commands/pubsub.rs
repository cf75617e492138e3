//! Pub/sub commands: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH PUBSUB, and the
//! RESP2 subscribe mode (which commands a subscribed client may run, PING's reply there).
//!
//! The registry and the message queues live in [`crate::pubsub`]; the connection loop
//! delivers queued messages. Confirmations are one frame per channel (a RESP3 push, a
//! RESP2 array) carrying the client's running subscription count.

use super::{count, is, spec, wrong_arity, Ctx, Spec};
use crate::codec::{Protocol, Reply};
use crate::pubsub::Kind;
use bytes::Bytes;

/// The pub/sub commands.
pub(super) static SPECS: &[Spec] = &[
    spec(
        "subscribe",
        -2,
        &["pubsub", "noscript", "loading", "stale"],
        (0, 0, 0),
        "pubsub",
        "Listen for messages published to channels.",
        subscribe,
    ),
    spec(
        "unsubscribe",
        -1,
        &["pubsub", "noscript", "loading", "stale"],
        (0, 0, 0),
        "pubsub",
        "Stop listening to channels (all of them without arguments).",
        unsubscribe,
    ),
    spec(
        "psubscribe",
        -2,
        &["pubsub", "noscript", "loading", "stale"],
        (0, 0, 0),
        "pubsub",
        "Listen for messages published to channels matching glob patterns.",
        psubscribe,
    ),
    spec(
        "punsubscribe",
        -1,
        &["pubsub", "noscript", "loading", "stale"],
        (0, 0, 0),
        "pubsub",
        "Stop listening to patterns (all of them without arguments).",
        punsubscribe,
    ),
    spec(
        "publish",
        3,
        &["pubsub", "loading", "stale", "fast"],
        (0, 0, 0),
        "pubsub",
        "Post a message to a channel.",
        publish,
    ),
    spec(
        "pubsub",
        -2,
        &[],
        (0, 0, 0),
        "pubsub",
        "Introspect the pub/sub state: CHANNELS, NUMSUB, NUMPAT.",
        pubsub,
    ),
];

/// Commands with subcommands: Redis names them `name|sub` in the subscribe-mode error.
const CONTAINERS: &[&str] = &[
    "acl", "client", "cluster", "command", "config", "function", "latency", "memory", "module",
    "object", "pubsub", "script", "slowlog", "xgroup", "xinfo",
];

/// What RESP2 subscribe mode does to a command about to run (`name` checked and its
/// arity accepted): PING gets the subscribe-mode reply; anything but (P)SUBSCRIBE,
/// (P)UNSUBSCRIBE, PING, QUIT and RESET is refused. `None`: run it normally. RESP3
/// clients have no subscribe mode.
pub fn intercept(ctx: &Ctx<'_>, name: &str, args: &[Bytes]) -> Option<Reply> {
    if ctx.client.protocol != Protocol::Resp2 || !ctx.client.pubsub.active() {
        return None;
    }
    match name {
        // Redis's pingCommand checks the mode itself, so this holds inside EXEC too.
        // PING checks its own arity (-1 in the table): leave the error to it.
        "ping" if args.len() > 2 => None,
        "ping" => Some(Reply::Array(vec![
            Reply::bulk("pong"),
            Reply::Bulk(args.get(1).cloned().unwrap_or_default()),
        ])),
        "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "quit" | "reset" => None,
        // The refusal happens before queueing or running a command, not inside EXEC.
        _ if ctx.client.tx.executing => None,
        _ => {
            let full = match args.get(1) {
                Some(sub) if CONTAINERS.contains(&name) => {
                    format!("{name}|{}", String::from_utf8_lossy(sub).to_lowercase())
                }
                _ => name.to_owned(),
            };
            Some(Reply::Error(format!(
                "ERR Can't execute '{full}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            )))
        }
    }
}

fn verb(kind: Kind, on: bool) -> &'static str {
    match (kind, on) {
        (Kind::Channel, true) => "subscribe",
        (Kind::Channel, false) => "unsubscribe",
        (Kind::Pattern, true) => "psubscribe",
        (Kind::Pattern, false) => "punsubscribe",
    }
}

/// One confirmation frame: `[verb, name or null, subscription count]`.
fn confirmation(ctx: &Ctx<'_>, verb: &'static str, name: Reply) -> Reply {
    Reply::Push(vec![
        Reply::bulk(verb),
        name,
        count(ctx.client.pubsub.count()),
    ])
}

fn add(ctx: &mut Ctx<'_>, args: &[Bytes], kind: Kind) -> Reply {
    let mut frames = Vec::with_capacity(args.len() - 1);
    for name in &args[1..] {
        ctx.shared.pubsub.subscribe(ctx.client, kind, name);
        frames.push(confirmation(
            ctx,
            verb(kind, true),
            Reply::Bulk(name.clone()),
        ));
    }
    ctx.client.show_subscriptions();
    Reply::Frames(frames)
}

fn remove(ctx: &mut Ctx<'_>, args: &[Bytes], kind: Kind) -> Reply {
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        let current = match kind {
            Kind::Channel => &ctx.client.pubsub.channels,
            Kind::Pattern => &ctx.client.pubsub.patterns,
        };
        if current.is_empty() {
            // Redis answers once, with a null name, when there was nothing to drop.
            return Reply::Frames(vec![confirmation(ctx, verb(kind, false), Reply::Null)]);
        }
        current.iter().cloned().collect()
    };
    let mut frames = Vec::with_capacity(names.len());
    for name in names {
        ctx.shared.pubsub.unsubscribe(ctx.client, kind, &name);
        frames.push(confirmation(ctx, verb(kind, false), Reply::Bulk(name)));
    }
    ctx.client.show_subscriptions();
    Reply::Frames(frames)
}

fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    add(ctx, args, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    add(ctx, args, Kind::Pattern)
}

fn unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    remove(ctx, args, Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    remove(ctx, args, Kind::Pattern)
}

fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    count(ctx.shared.pubsub.publish(&args[1], &args[2]))
}

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | SHARDCHANNELS [pattern] |
/// SHARDNUMSUB [channel ...] | HELP. Girder has no shard channels (SSUBSCRIBE), so the
/// SHARD forms report none.
fn pubsub(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = &args[1];
    let shown = String::from_utf8_lossy(sub);
    let optional_pattern = || match args.len() {
        2 => Ok(None),
        3 => Ok(Some(&args[2][..])),
        _ => Err(Reply::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{shown}'. Try PUBSUB HELP."
        ))),
    };
    let counts = |numsub: &dyn Fn(&[u8]) -> usize| {
        let mut out = Vec::with_capacity(2 * (args.len() - 2));
        for channel in &args[2..] {
            out.push(Reply::Bulk(channel.clone()));
            out.push(count(numsub(channel)));
        }
        Reply::Array(out)
    };
    if is(sub, "channels") {
        match optional_pattern() {
            Ok(pattern) => Reply::Array(
                ctx.shared
                    .pubsub
                    .channels(pattern)
                    .into_iter()
                    .map(Reply::Bulk)
                    .collect(),
            ),
            Err(e) => e,
        }
    } else if is(sub, "numsub") {
        counts(&|channel| ctx.shared.pubsub.numsub(channel))
    } else if is(sub, "numpat") {
        if args.len() != 2 {
            return wrong_arity("pubsub|numpat");
        }
        count(ctx.shared.pubsub.numpat())
    } else if is(sub, "shardchannels") {
        match optional_pattern() {
            Ok(_) => Reply::Array(Vec::new()),
            Err(e) => e,
        }
    } else if is(sub, "shardnumsub") {
        counts(&|_| 0)
    } else if is(sub, "help") {
        if args.len() != 2 {
            return wrong_arity("pubsub|help");
        }
        Reply::Array(HELP.iter().copied().map(Reply::Simple).collect())
    } else {
        Reply::Error(format!(
            "ERR unknown subcommand '{shown}'. Try PUBSUB HELP."
        ))
    }
}
