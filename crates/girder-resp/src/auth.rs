//! `requirepass`, the default user's password, and the settings `CONFIG SET` changes at
//! run time (`maxclients`, `timeout`).
//!
//! The password is kept only as its SHA-256 (as Redis's ACL keeps user passwords), so
//! neither a heap dump nor `CONFIG GET requirepass` shows it: the latter answers
//! `#<sha256 hex>`, the form `ACL GETUSER` uses. Comparison is over the digests, in
//! constant time.
//!
//! Protected mode: a server listening on a non-loopback address refuses to run without
//! a password, and refuses `CONFIG SET requirepass ""` while it listens there.

use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// `-NOAUTH` for any command but AUTH, HELLO, QUIT and RESET before authentication.
pub const NOAUTH: &str = "NOAUTH Authentication required.";

/// `-NOAUTH` for a HELLO without AUTH before authentication (Redis 7's wording).
pub const NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

/// `-WRONGPASS`.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// The only user until ACL users exist.
pub const DEFAULT_USER: &[u8] = b"default";

/// Settings shared by every connection that `CONFIG SET` may change.
#[derive(Debug)]
pub struct Settings {
    /// SHA-256 of `requirepass`; `None` when no password is required.
    password: RwLock<Option<[u8; 32]>>,
    /// Whether the listener is on a non-loopback address with protected mode on.
    protected: AtomicBool,
    /// `maxclients`.
    max_clients: AtomicUsize,
    /// `timeout`: seconds a client may stay idle before it is closed; 0 is never.
    timeout_secs: AtomicU64,
}

fn digest(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

/// Equality that takes the same time wherever the inputs differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why `CONFIG SET requirepass ""` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtectedMode;

impl Settings {
    /// Settings with `requirepass` (empty: none), `maxclients` and `timeout`.
    pub fn new(requirepass: &str, max_clients: usize, timeout_secs: u64) -> Self {
        Self {
            password: RwLock::new(
                (!requirepass.is_empty()).then(|| digest(requirepass.as_bytes())),
            ),
            protected: AtomicBool::new(false),
            max_clients: AtomicUsize::new(max_clients),
            timeout_secs: AtomicU64::new(timeout_secs),
        }
    }

    /// Whether a new connection must authenticate before running commands.
    pub fn password_required(&self) -> bool {
        self.password.read().is_some()
    }

    /// AUTH / HELLO AUTH: whether `user` with `password` may log in. With no password
    /// required, the default user accepts any password (as Redis's `nopass`).
    pub fn check(&self, user: &[u8], password: &[u8]) -> bool {
        if user != DEFAULT_USER {
            return false;
        }
        match *self.password.read() {
            None => true,
            Some(want) => same(&want, &digest(password)),
        }
    }

    /// Sets `requirepass` (empty: none). Connections already authenticated stay so.
    ///
    /// # Errors
    /// [`ProtectedMode`] when clearing it while listening on a non-loopback address.
    pub fn set_password(&self, password: &[u8]) -> Result<(), ProtectedMode> {
        if password.is_empty() && self.protected.load(Ordering::Relaxed) {
            return Err(ProtectedMode);
        }
        *self.password.write() = (!password.is_empty()).then(|| digest(password));
        Ok(())
    }

    /// `CONFIG GET requirepass`: `""`, or `#` and the hex SHA-256.
    pub fn describe_password(&self) -> String {
        match *self.password.read() {
            None => String::new(),
            Some(d) => {
                let mut out = String::with_capacity(65);
                out.push('#');
                for b in d {
                    out.push_str(&format!("{b:02x}"));
                }
                out
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_checked_by_digest_and_only_for_the_default_user() {
        let s = Settings::new("", 10, 0);
        assert!(!s.password_required());
        assert!(
            s.check(b"default", b"anything"),
            "nopass accepts any password"
        );
        assert!(!s.check(b"bob", b"anything"));
        assert_eq!(s.describe_password(), "");
        s.set_password(b"s3cret").unwrap();
        assert!(s.password_required());
        assert!(s.check(b"default", b"s3cret"));
        assert!(!s.check(b"default", b"s3cret "));
        assert!(!s.check(b"default", b""));
        // SHA-256("s3cret")
        assert_eq!(
            s.describe_password(),
            "#1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"
        );
        s.set_protected(true);
        assert_eq!(s.set_password(b""), Err(ProtectedMode));
        assert!(s.password_required());
        s.set_protected(false);
        s.set_password(b"").unwrap();
        assert!(!s.password_required());
    }
}
