//! Sorted set operations (ZADD, ZRANGE, ...).

use bytes::Bytes;
use std::collections::HashMap;

/// A sorted set: members with scores, ordered by (score, member).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZSetValue {
    scores: HashMap<Bytes, f64, ahash::RandomState>,
}

impl ZSetValue {
    /// Redis 7.0's name for the representation (`OBJECT ENCODING`): `listpack` for
    /// ≤ 128 members of ≤ 64 bytes, else `skiplist`.
    pub(crate) fn encoding(&self) -> &'static str {
        let small = self.scores.len() <= 128 && self.scores.keys().all(|m| m.len() <= 64);
        if small {
            "listpack"
        } else {
            "skiplist"
        }
    }
}
