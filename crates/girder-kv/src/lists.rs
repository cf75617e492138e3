//! List operations (LPUSH, LRANGE, ...).

use bytes::Bytes;
use std::collections::VecDeque;

/// A list of elements.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListValue {
    items: VecDeque<Bytes>,
}

impl ListValue {
    /// Redis 7.0's name for the representation (`OBJECT ENCODING`): always `quicklist`.
    pub(crate) fn encoding(&self) -> &'static str {
        let _ = &self.items;
        "quicklist"
    }
}
