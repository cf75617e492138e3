//! ACL SETUSER | DELUSER | LIST | USERS | WHOAMI | GETUSER | CAT | HELP (Redis 7 wording;
//! the rules and their checks are in [`crate::acl`]).

use super::{count, spec, table, Ctx, Spec};
use crate::acl::{categories, CATEGORIES};
use crate::codec::Reply;
use bytes::Bytes;

pub(super) static SPECS: &[Spec] = &[spec(
    "acl",
    -2,
    &["admin", "noscript", "loading", "stale"],
    (0, 0, 0),
    "server",
    "ACL users: SETUSER, DELUSER, LIST, USERS, WHOAMI, GETUSER, CAT.",
    acl,
)];

const HELP: [&str; 8] = [
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "DELUSER <username> [<username> ...]",
    "LIST",
    "USERS",
    "WHOAMI",
    "GETUSER <username>",
    "CAT [<category>]",
];

fn strings(items: impl IntoIterator<Item = String>) -> Reply {
    Reply::Array(
        items
            .into_iter()
            .map(|s| Reply::Bulk(Bytes::from(s)))
            .collect(),
    )
}

/// ACL <subcommand> ...
pub fn acl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let arity = || super::wrong_arity(&format!("acl|{sub}"));
    let acl = &ctx.shared.acl;
    match sub.as_str() {
        "setuser" if args.len() >= 3 => match acl.set_user(&args[2], &args[3..]) {
            Ok(()) => Reply::OK,
            Err(e) => Reply::Error(format!("ERR {e}")),
        },
        "deluser" if args.len() >= 3 => match acl.delete(&args[2..]) {
            Ok(n) => count(n),
            Err(e) => Reply::Error(format!("ERR {e}")),
        },
        "list" if args.len() == 2 => strings(acl.users().iter().map(|u| u.describe())),
        "users" if args.len() == 2 => strings(acl.users().iter().map(|u| u.name.clone())),
        "whoami" if args.len() == 2 => Reply::bulk(ctx.client.user.name.clone()),
        "getuser" if args.len() == 3 => {
            let Some(user) = std::str::from_utf8(&args[2]).ok().and_then(|n| acl.user(n)) else {
                return Reply::Null;
            };
            let (flags, passwords, commands, keys, channels) = user.fields();
            Reply::Map(vec![
                (Reply::bulk("flags"), strings(flags)),
                (Reply::bulk("passwords"), strings(passwords)),
                (Reply::bulk("commands"), Reply::bulk(commands)),
                (Reply::bulk("keys"), Reply::bulk(keys)),
                (Reply::bulk("channels"), Reply::bulk(channels)),
                (Reply::bulk("selectors"), Reply::Array(vec![])),
            ])
        }
        "cat" if args.len() == 2 => strings(CATEGORIES.iter().map(|c| (*c).to_owned())),
        "cat" if args.len() == 3 => {
            let name = String::from_utf8_lossy(&args[2]).to_ascii_lowercase();
            let Some(i) = CATEGORIES.iter().position(|c| *c == name) else {
                return Reply::Error(format!(
                    "ERR Unknown category '{}'",
                    String::from_utf8_lossy(&args[2])
                ));
            };
            strings(
                table()
                    .iter()
                    .filter(|s| categories(s, None) & (1 << i) != 0)
                    .map(|s| s.name.to_owned()),
            )
        }
        "help" if args.len() == 2 => strings(HELP.iter().map(|s| (*s).to_owned())),
        "setuser" | "deluser" | "list" | "users" | "whoami" | "getuser" | "cat" | "help" => arity(),
        _ => Reply::Error(format!(
            "ERR unknown subcommand '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}
