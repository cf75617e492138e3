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

    /// A fresh id: 16 hex digits. A process-wide counter, started at a random offset, is
    /// passed through the splitmix64 finalizer, which is a bijection on 64-bit values: ids
    /// are unique within a process for 2^64 requests, yet neither sequential nor a count
    /// of the requests served.
    pub fn generate() -> Self {
        static START: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let start = *START.get_or_init(|| RandomState::new().hash_one(0u64));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_add(start);
        Self(Arc::from(format!("{:016x}", mix(n))))
    }
}

/// The splitmix64 finalizer: xor-shifts and multiplications by odd constants, each
/// invertible, so distinct inputs give distinct outputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
