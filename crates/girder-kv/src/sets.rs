//! Set operations (SADD, SMEMBERS, ...).

use bytes::Bytes;
use std::collections::HashSet;

/// A set of members.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetValue {
    members: HashSet<Bytes, ahash::RandomState>,
}

impl SetValue {
    /// Redis 7.0's name for the representation (`OBJECT ENCODING`): `intset` while every
    /// member is an integer and there are at most 512, else `hashtable`.
    pub(crate) fn encoding(&self) -> &'static str {
        let ints = self.members.len() <= 512
            && self
                .members
                .iter()
                .all(|m| crate::shard::parse_canonical_i64(m).is_some());
        if ints {
            "intset"
        } else {
            "hashtable"
        }
    }
}
