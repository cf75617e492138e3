//! Authentication replies and the settings `CONFIG SET` changes at run time
//! (`maxclients`, `timeout`, whether protected mode applies).
//!
//! Passwords are the ACL's ([`crate::acl`]): `requirepass` is the default user's, kept
//! only as its SHA-256, so `CONFIG GET requirepass` answers `#<sha256 hex>`, the form
//! `ACL GETUSER` uses.
//!
//! Protected mode: a server listening on a non-loopback address refuses to run without
//! a password, and refuses `CONFIG SET requirepass ""` while it listens there.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// `-NOAUTH` for any command but AUTH, HELLO, QUIT and RESET before authentication.
pub const NOAUTH: &str = "NOAUTH Authentication required.";

/// `-NOAUTH` for a HELLO without AUTH before authentication (Redis 7's wording).
pub const NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

/// `-WRONGPASS`.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// The user a connection starts as.
pub const DEFAULT_USER: &[u8] = b"default";

/// Settings shared by every connection that `CONFIG SET` may change (passwords live in
/// [`crate::acl`]).
#[derive(Debug)]
pub struct Settings {
    /// Whether the listener is on a non-loopback address with protected mode on.
    protected: AtomicBool,
    /// `maxclients`.
    max_clients: AtomicUsize,
    /// `timeout`: seconds a client may stay idle before it is closed; 0 is never.
    timeout_secs: AtomicU64,
}

impl Settings {
    /// Settings with `maxclients` and `timeout`.
    pub fn new(max_clients: usize, timeout_secs: u64) -> Self {
        Self {
            protected: AtomicBool::new(false),
            max_clients: AtomicUsize::new(max_clients),
            timeout_secs: AtomicU64::new(timeout_secs),
        }
    }

    /// Marks the server as listening where protected mode applies.
    pub fn set_protected(&self, on: bool) {
        self.protected.store(on, Ordering::Relaxed);
    }

    /// Whether protected mode applies.
    pub fn protected(&self) -> bool {
        self.protected.load(Ordering::Relaxed)
    }

    /// `maxclients`.
    pub fn max_clients(&self) -> usize {
        self.max_clients.load(Ordering::Relaxed)
    }

    /// Sets `maxclients`; connections beyond it stay, new ones are refused.
    pub fn set_max_clients(&self, n: usize) {
        self.max_clients.store(n, Ordering::Relaxed);
    }

    /// `timeout` in seconds; 0 is never.
    pub fn timeout_secs(&self) -> u64 {
        self.timeout_secs.load(Ordering::Relaxed)
    }

    /// Sets `timeout`.
    pub fn set_timeout_secs(&self, secs: u64) {
        self.timeout_secs.store(secs, Ordering::Relaxed);
    }
}
