//! `X-Request-Id`: accepted from the client when sane, generated otherwise, echoed back.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The header carrying the request id, in and out.
pub const HEADER: &str = "x-request-id";

/// The longest client-supplied id that is kept; longer ones are replaced.
pub const MAX_LEN: usize = 128;

/// A request's id, stored in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Keeps the client's id if it is 1..=128 visible ASCII characters; otherwise makes one.
    /// Control characters and spaces are refused so that an id cannot forge log lines.
    pub fn from_header(value: Option<&[u8]>) -> Self {
        match value {
            Some(v) if is_acceptable(v) => {
                Self(Arc::from(std::str::from_utf8(v).unwrap_or_default()))
            }
            _ => Self::generate(),
        }
    }

    /// A fresh id: 16 hex digits. The low 8 are a process-wide counter, so ids are unique
    /// within a process for 2^32 requests; the high 8 hash that counter with a per-process
    /// random key, so ids from different processes differ and are not sequential.
    pub fn generate() -> Self {
        static KEY: OnceLock<RandomState> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let hashed = KEY.get_or_init(RandomState::new).hash_one(n);
        Self(Arc::from(format!(
            "{:08x}{:08x}",
            hashed >> 32,
            n & 0xffff_ffff
        )))
    }
}

fn is_acceptable(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= MAX_LEN && v.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_client_ids_and_replaces_others() {
        assert_eq!(RequestId::from_header(Some(b"abc-123")).as_str(), "abc-123");
        for bad in [
            &b""[..],
            b"has space",
            b"line\nbreak",
            &[b'a'; 129],
            b"\xff",
        ] {
            let id = RequestId::from_header(Some(bad));
            assert_eq!(id.as_str().len(), 16, "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_distinct() {
        let ids: std::collections::HashSet<_> = (0..10_000)
            .map(|_| RequestId::generate().as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), 10_000);
    }
}
