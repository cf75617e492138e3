//! ACL users, as Redis 7's ACL: who may log in, which commands they may run, which keys
//! and channels they may touch.
//!
//! A user is `on`/`off`, has SHA-256 digests of its passwords (or `nopass`), an ordered
//! list of command rules (`+@all`, `-@dangerous`, `+get`, `-config|set`: the last rule
//! that matches a command decides, none means denied), key patterns (`~cache:*`,
//! `allkeys`) and channel patterns (`&news.*`, `allchannels`). The `default` user always
//! exists; `requirepass` is its password.
//!
//! Checking costs nothing while every user that is logged in may do everything (`+@all
//! ~* &*`): connections hold their user's `Arc` and look at its `unrestricted` flag.
//! Every change bumps an epoch, so a connection refreshes its user before its next
//! command; a deleted user's connections are closed, as Redis does.

use crate::commands::Spec;
use bytes::Bytes;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Redis's ACL categories, in `ACL CAT` order.
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

fn category_bit(name: &str) -> Option<u32> {
    CATEGORIES.iter().position(|c| *c == name).map(|i| 1 << i)
}

fn bit(name: &str) -> u32 {
    category_bit(name).unwrap_or(0)
}

/// Subcommands that Redis puts in `@admin` and `@dangerous`.
fn admin_subcommand(command: &str, sub: &str) -> bool {
    match command {
        "config" => true,
        "acl" => !matches!(sub, "whoami" | "cat" | "help"),
        "client" => matches!(
            sub,
            "kill" | "pause" | "list" | "unpause" | "unblock" | "no-evict"
        ),
        _ => false,
    }
}

/// Commands Redis puts in `@dangerous` (and those of them in `@admin`).
const DANGEROUS: [&str; 6] = ["flushdb", "flushall", "keys", "swapdb", "info", "sort"];

/// The categories of `spec` (with subcommand `sub`, lowercase, for container commands).
pub fn categories(spec: &Spec, sub: Option<&str>) -> u32 {
    let mut c = match spec.group {
        "generic" => bit("keyspace"),
        "string" => bit("string"),
        "hash" => bit("hash"),
        "list" => bit("list"),
        "set" => bit("set"),
        "sortedset" => bit("sortedset"),
        "stream" => bit("stream"),
        "pubsub" => bit("pubsub"),
        "connection" => bit("connection"),
        "transactions" => bit("transaction"),
        _ => 0,
    };
    if spec.flags.contains(&"write") {
        c |= bit("write");
    }
    if spec.flags.contains(&"readonly") {
        c |= bit("read");
    }
    c |= if spec.flags.contains(&"fast") {
        bit("fast")
    } else {
        bit("slow")
    };
    if spec.flags.contains(&"blocking") {
        c |= bit("blocking");
    }
    if DANGEROUS.contains(&spec.name) {
        c |= bit("dangerous");
    }
    if sub.is_some_and(|s| admin_subcommand(spec.name, s)) {
        c |= bit("admin") | bit("dangerous");
    }
    c
}

/// Commands whose first argument names a subcommand that ACL rules may address.
pub fn has_subcommands(name: &str) -> bool {
    matches!(name, "acl" | "client" | "config")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Category(u32),
    Command(String),
    Subcommand(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    target: Target,
    /// As written (`+@all`, `-config|set`), for ACL LIST.
    text: String,
}

/// One ACL user.
#[derive(Debug, Clone)]
pub struct User {
    /// Its name.
    pub name: String,
    enabled: bool,
    nopass: bool,
    passwords: Vec<[u8; 32]>,
    rules: Vec<Rule>,
    all_keys: bool,
    key_patterns: Vec<Bytes>,
    all_channels: bool,
    channel_patterns: Vec<Bytes>,
    /// `+@all ~* &*`: no command, key or channel is ever refused.
    pub unrestricted: bool,
}

fn digest(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// `{prefix}*` for all, else each pattern with `prefix`, space-separated.
fn patterns(prefix: char, all: bool, list: &[Bytes]) -> String {
    if all {
        return format!("{prefix}*");
    }
    list.iter()
        .map(|p| format!("{prefix}{}", String::from_utf8_lossy(p)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Equality that takes the same time wherever the inputs differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a user may not do, for the NOPERM reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The command (`get`, `config|set`).
    Command(String),
    /// One of the key arguments.
    Key,
    /// One of the channel arguments.
    Channel,
}

impl Denied {
    /// Redis 7.0's error text.
    pub fn message(&self) -> String {
        match self {
            Denied::Command(c) => {
                format!("NOPERM this user has no permissions to run the '{c}' command")
            }
            Denied::Key => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .into()
            }
            Denied::Channel => "NOPERM this user has no permissions to access one of the channels used as arguments".into(),
        }
    }
}

impl User {
    /// A new user as `ACL SETUSER name` makes it: off, no password, no commands, no
    /// keys, no channels.
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            rules: Vec::new(),
            all_keys: false,
            key_patterns: Vec::new(),
            all_channels: false,
            channel_patterns: Vec::new(),
            unrestricted: false,
        }
    }

    /// The `default` user: on, `nopass` (or `requirepass`), everything allowed.
    fn default_user(requirepass: &str) -> Self {
        let mut u = Self::new("default");
        u.enabled = true;
        if requirepass.is_empty() {
            u.nopass = true;
        } else {
            u.passwords.push(digest(requirepass.as_bytes()));
        }
        u.all_keys = true;
        u.all_channels = true;
        u.rules.push(Rule {
            allow: true,
            target: Target::Category(u32::MAX),
            text: "+@all".into(),
        });
        u.refresh();
        u
    }

    fn refresh(&mut self) {
        self.unrestricted = self.all_keys
            && self.all_channels
            && self
                .rules
                .last()
                .is_some_and(|r| r.allow && r.target == Target::Category(u32::MAX));
    }

    /// Whether `password` logs this user in.
    fn accepts(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let d = digest(password);
        self.passwords.iter().any(|p| same(p, &d))
    }

    /// Whether a password is needed to log in as this user (or it is off).
    pub fn needs_password(&self) -> bool {
        !self.enabled || !self.nopass
    }

    /// Whether the user may run `spec` (with `sub`, lowercase, for container commands).
    pub fn may_run(&self, spec: &Spec, sub: Option<&str>) -> bool {
        let cats = categories(spec, sub);
        let mut allowed = false;
        for rule in &self.rules {
            let hit = match &rule.target {
                Target::Category(bits) => cats & bits != 0 || *bits == u32::MAX,
                Target::Command(c) => c == spec.name,
                Target::Subcommand(c, s) => c == spec.name && sub == Some(s.as_str()),
            };
            if hit {
                allowed = rule.allow;
            }
        }
        allowed
    }

    /// Whether the user may touch `key`.
    pub fn may_access_key(&self, key: &[u8]) -> bool {
        self.all_keys
            || self
                .key_patterns
                .iter()
                .any(|p| girder_kv::keys::glob_match(p, key, false))
    }

    /// Whether the user may publish to or subscribe to `channel`; `literal` for a
    /// PSUBSCRIBE pattern, which must be one of the user's patterns itself.
    pub fn may_access_channel(&self, channel: &[u8], literal: bool) -> bool {
        self.all_channels
            || self.channel_patterns.iter().any(|p| {
                if literal {
                    p.as_ref() == channel
                } else {
                    girder_kv::keys::glob_match(p, channel, false)
                }
            })
    }

    /// Applies one `ACL SETUSER` modifier.
    fn apply(&mut self, rule: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(rule).into_owned();
        let lower = text.to_ascii_lowercase();
        let syntax = || format!("Error in ACL SETUSER modifier '{text}': Syntax error");
        let unknown = || {
            format!(
                "Error in ACL SETUSER modifier '{text}': Unknown command or category name in ACL"
            )
        };
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" => {
                self.all_keys = true;
                self.key_patterns.clear();
            }
            "resetkeys" => {
                self.all_keys = false;
                self.key_patterns.clear();
            }
            "allchannels" => {
                self.all_channels = true;
                self.channel_patterns.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channel_patterns.clear();
            }
            "allcommands" => return self.apply(b"+@all"),
            "nocommands" => return self.apply(b"-@all"),
            "reset" => {
                let name = std::mem::take(&mut self.name);
                *self = User::new(&name);
            }
            _ => match rule.first() {
                Some(b'>') => {
                    let d = digest(&rule[1..]);
                    if !self.passwords.contains(&d) {
                        self.passwords.push(d);
                    }
                    self.nopass = false;
                }
                Some(b'<') => {
                    let d = digest(&rule[1..]);
                    self.passwords.retain(|p| *p != d);
                }
                Some(b'#') => {
                    let d = parse_hex(&rule[1..]).ok_or_else(|| {
                        format!("Error in ACL SETUSER modifier '{text}': The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
                    })?;
                    if !self.passwords.contains(&d) {
                        self.passwords.push(d);
                    }
                    self.nopass = false;
                }
                Some(b'!') => {
                    let d = parse_hex(&rule[1..]).ok_or_else(syntax)?;
                    self.passwords.retain(|p| *p != d);
                }
                Some(b'~') => {
                    if &rule[1..] == b"*" {
                        return self.apply(b"allkeys");
                    }
                    if !self.all_keys {
                        self.key_patterns.push(Bytes::copy_from_slice(&rule[1..]));
                    }
                }
                Some(b'&') => {
                    if &rule[1..] == b"*" {
                        return self.apply(b"allchannels");
                    }
                    if !self.all_channels {
                        self.channel_patterns
                            .push(Bytes::copy_from_slice(&rule[1..]));
                    }
                }
                Some(b'+' | b'-') => {
                    let allow = rule[0] == b'+';
                    let name = &lower[1..];
                    let target = if let Some(cat) = name.strip_prefix('@') {
                        if cat == "all" {
                            // Overrides every earlier rule: keep the list short.
                            self.rules.clear();
                            Target::Category(u32::MAX)
                        } else {
                            Target::Category(category_bit(cat).ok_or_else(unknown)?)
                        }
                    } else if let Some((c, s)) = name.split_once('|') {
                        if crate::commands::lookup(c.as_bytes()).is_none() || !has_subcommands(c) {
                            return Err(unknown());
                        }
                        Target::Subcommand(c.to_owned(), s.to_owned())
                    } else {
                        let spec = crate::commands::lookup(name.as_bytes()).ok_or_else(unknown)?;
                        Target::Command(spec.name.to_owned())
                    };
                    self.rules.push(Rule {
                        allow,
                        target,
                        text: lower.clone(),
                    });
                }
                _ => return Err(syntax()),
            },
        }
        Ok(())
    }

    fn command_rules(&self) -> String {
        let rules = self.rules.iter().map(|r| r.text.as_str());
        // A user starts with no commands, which Redis spells `-@all` first.
        let starts_from_all = self
            .rules
            .first()
            .is_some_and(|r| r.target == Target::Category(u32::MAX));
        if starts_from_all {
            rules.collect::<Vec<_>>().join(" ")
        } else {
            std::iter::once("-@all")
                .chain(rules)
                .collect::<Vec<_>>()
                .join(" ")
        }
    }

    /// `on`/`off`, then `nopass` if set.
    fn flags(&self) -> Vec<String> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }.to_owned()];
        if self.nopass {
            flags.push("nopass".into());
        }
        flags
    }

    /// `~*`, or the key patterns as `~pattern ...` (empty for none).
    fn key_rules(&self) -> String {
        patterns('~', self.all_keys, &self.key_patterns)
    }

    /// `&*`, or the channel patterns as `&pattern ...` (empty for none).
    fn channel_rules(&self) -> String {
        patterns('&', self.all_channels, &self.channel_patterns)
    }

    /// The user as one `ACL LIST` line.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("user {}", self.name)];
        parts.extend(self.flags());
        parts.extend(self.passwords.iter().map(|p| format!("#{}", hex(p))));
        parts.push(self.key_rules());
        if !self.all_channels {
            parts.push("resetchannels".into());
        }
        parts.push(self.channel_rules());
        parts.push(self.command_rules());
        parts.retain(|p| !p.is_empty());
        parts.join(" ")
    }

    /// `ACL GETUSER`'s fields: flags, password digests, command rules, key and
    /// channel patterns.
    pub fn fields(&self) -> (Vec<String>, Vec<String>, String, String, String) {
        let (flags, keys, channels) = (self.flags(), self.key_rules(), self.channel_rules());
        (
            flags,
            self.passwords.iter().map(hex).collect(),
            self.command_rules(),
            keys,
            channels,
        )
    }
}

/// All users.
#[derive(Debug)]
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    epoch: AtomicU64,
}

impl Acl {
    /// Only the `default` user, with `requirepass` as its password (none if empty).
    pub fn new(requirepass: &str) -> Self {
        let mut users = BTreeMap::new();
        users.insert(
            "default".to_owned(),
            Arc::new(User::default_user(requirepass)),
        );
        Self {
            users: RwLock::new(users),
            epoch: AtomicU64::new(0),
        }
    }

    /// Moves on with every change; connections compare it before each command.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The user called `name`.
    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// The `default` user.
    pub fn default_user(&self) -> Arc<User> {
        self.user("default")
            .expect("the default user cannot be removed")
    }

    /// AUTH: the user if `name` exists, is on and `password` is one of its passwords.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<User>> {
        let user = self.user(std::str::from_utf8(name).ok()?)?;
        user.accepts(password).then_some(user)
    }

    /// ACL SETUSER: creates the user if needed and applies `rules` in order, all or
    /// nothing.
    ///
    /// # Errors
    /// Redis's wording for the first modifier that fails (nothing is changed).
    pub fn set_user(&self, name: &[u8], rules: &[Bytes]) -> Result<(), String> {
        let name = std::str::from_utf8(name)
            .map_err(|_| "Usernames must be valid UTF-8".to_owned())?
            .to_owned();
        if name.is_empty()
            || name
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err("Usernames can't contain spaces or null characters".into());
        }
        let mut users = self.users.write();
        let mut user = users
            .get(&name)
            .map_or_else(|| User::new(&name), |u| User::clone(u));
        for rule in rules {
            user.apply(rule)?;
        }
        user.name = name.clone();
        user.refresh();
        users.insert(name, Arc::new(user));
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// ACL DELUSER: how many of `names` existed and are gone.
    ///
    /// # Errors
    /// When `default` is among them (nothing is deleted).
    pub fn delete(&self, names: &[Bytes]) -> Result<usize, String> {
        if names.iter().any(|n| n.as_ref() == b"default") {
            return Err("The 'default' user cannot be removed".into());
        }
        let mut users = self.users.write();
        let n = names
            .iter()
            .filter(|n| {
                std::str::from_utf8(n)
                    .ok()
                    .is_some_and(|n| users.remove(n).is_some())
            })
            .count();
        if n > 0 {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        Ok(n)
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// CONFIG SET requirepass: the default user's only password, or `nopass` if empty.
    pub fn set_requirepass(&self, password: &[u8]) {
        let rules: Vec<Bytes> = if password.is_empty() {
            vec![Bytes::from_static(b"nopass")]
        } else {
            let mut rule = b">".to_vec();
            rule.extend_from_slice(password);
            vec![Bytes::from_static(b"resetpass"), Bytes::from(rule)]
        };
        // Only fixed, valid modifiers.
        let _ = self.set_user(b"default", &rules);
    }

    /// CONFIG GET requirepass: `""` when the default user needs none, else `#` and the
    /// hex digest of its first password.
    pub fn describe_requirepass(&self) -> String {
        let user = self.default_user();
        if user.nopass {
            return String::new();
        }
        user.passwords
            .first()
            .map_or_else(String::new, |p| format!("#{}", hex(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> &'static Spec {
        crate::commands::lookup(name.as_bytes()).unwrap()
    }

    fn rules(r: &[&str]) -> Vec<Bytes> {
        r.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn rules_apply_in_order_and_the_last_match_decides() {
        let acl = Acl::new("");
        acl.set_user(
            b"alice",
            &rules(&["on", ">pw", "~cache:*", "+@all", "-@dangerous"]),
        )
        .unwrap();
        let alice = acl.authenticate(b"alice", b"pw").unwrap();
        assert!(acl.authenticate(b"alice", b"nope").is_none());
        assert!(alice.may_run(spec("get"), None));
        assert!(alice.may_run(spec("set"), None));
        assert!(!alice.may_run(spec("flushall"), None));
        assert!(!alice.may_run(spec("keys"), None));
        assert!(!alice.may_run(spec("config"), Some("get")));
        assert!(alice.may_run(spec("client"), Some("id")));
        assert!(!alice.may_run(spec("client"), Some("kill")));
        assert!(alice.may_access_key(b"cache:1"));
        assert!(!alice.may_access_key(b"other"));
        assert!(!alice.unrestricted);
        assert_eq!(
            alice.describe(),
            format!(
                "user alice on #{} ~cache:* resetchannels +@all -@dangerous",
                hex(&digest(b"pw"))
            )
        );
        acl.set_user(
            b"bob",
            &rules(&["on", "nopass", "-@all", "+get", "+config|get", "allkeys"]),
        )
        .unwrap();
        let bob = acl.authenticate(b"bob", b"anything").unwrap();
        assert!(bob.may_run(spec("get"), None));
        assert!(!bob.may_run(spec("set"), None));
        assert!(bob.may_run(spec("config"), Some("get")));
        assert!(!bob.may_run(spec("config"), Some("set")));
        assert!(acl.default_user().unrestricted);
    }

    #[test]
    fn bad_modifiers_change_nothing() {
        let acl = Acl::new("");
        assert_eq!(
            acl.set_user(b"carol", &rules(&["on", "badrule"])),
            Err("Error in ACL SETUSER modifier 'badrule': Syntax error".into())
        );
        assert!(acl.user("carol").is_none());
        assert_eq!(
            acl.set_user(b"carol", &rules(&["+nosuchcmd"])),
            Err("Error in ACL SETUSER modifier '+nosuchcmd': Unknown command or category name in ACL".into())
        );
        assert!(acl.set_user(b"carol", &rules(&["+@nosuchcat"])).is_err());
        acl.set_user(b"carol", &[]).unwrap();
        assert_eq!(
            acl.user("carol").unwrap().describe(),
            "user carol off resetchannels -@all"
        );
        assert!(acl.authenticate(b"carol", b"").is_none(), "off");
        assert_eq!(
            acl.delete(&rules(&["default"])),
            Err("The 'default' user cannot be removed".into())
        );
        assert_eq!(acl.delete(&rules(&["carol", "nobody"])), Ok(1));
    }

    #[test]
    fn requirepass_is_the_default_users_password() {
        let acl = Acl::new("s3cret");
        assert!(acl.default_user().needs_password());
        assert!(acl.authenticate(b"default", b"s3cret").is_some());
        assert!(acl.authenticate(b"default", b"x").is_none());
        assert_eq!(
            acl.describe_requirepass(),
            "#1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"
        );
        acl.set_requirepass(b"");
        assert!(!acl.default_user().needs_password());
        assert_eq!(acl.describe_requirepass(), "");
        assert!(acl.authenticate(b"default", b"whatever").is_some());
    }
}
