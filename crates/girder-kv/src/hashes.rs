//! Hash operations (HSET, HGET, ...).

use bytes::Bytes;
use std::collections::HashMap;

/// A hash: field → value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HashValue {
    fields: HashMap<Bytes, Bytes, ahash::RandomState>,
}

impl HashValue {
    /// Redis's name for the representation (`OBJECT ENCODING`): small hashes are
    /// `listpack` (≤ 128 fields of ≤ 64 bytes), others `hashtable`.
    pub(crate) fn encoding(&self) -> &'static str {
        let small = self.fields.len() <= 128
            && self
                .fields
                .iter()
                .all(|(k, v)| k.len() <= 64 && v.len() <= 64);
        if small {
            "listpack"
        } else {
            "hashtable"
        }
    }
}
