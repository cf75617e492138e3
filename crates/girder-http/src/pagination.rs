//! Cursor pagination for list endpoints: `?limit=&cursor=` in, `{items, next_cursor}` out.
//!
//! Pages are **keyset** pages: a cursor holds the sort key of the last item a client saw,
//! and the next page starts strictly after it. That makes walking a list stable under
//! inserts and deletes: an item present for the whole walk is returned exactly once, in
//! order, however many items are added around it (offset pagination skips or repeats items
//! when rows are inserted before the offset).
//!
//! The cursor is opaque to clients: base64url of a small versioned JSON document. A cursor
//! that does not decode is a 400 `invalid-parameter`, never a silent first page.
//!
//! ```
//! use girder_http::pagination::{PageLimits, PageParams};
//! use std::collections::BTreeMap;
//!
//! let jobs: BTreeMap<u64, &str> = (1..=5).map(|k| (k, "job")).collect();
//! let limits = PageLimits { default: 2, max: 100 };
//! let mut params = PageParams { limit: None, cursor: None };
//! let mut seen = Vec::new();
//! loop {
//!     let request = params.resolve::<u64>(limits).unwrap();
//!     // Stores scan from just after the cursor's key; `page` cuts at the limit.
//!     let start = request.after().map_or(0, |k| k + 1);
//!     let page = request.page(jobs.range(start..).map(|(k, v)| (*k, *v)), |(k, _)| *k);
//!     seen.extend(page.items.iter().map(|(k, _)| *k));
//!     match page.next_cursor {
//!         Some(cursor) => params.cursor = Some(cursor),
//!         None => break,
//!     }
//! }
//! assert_eq!(seen, vec![1, 2, 3, 4, 5]);
//! ```

use crate::problem::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Query parameters of a list endpoint.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page; between 1 and the endpoint's maximum.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page; absent for the first page.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// Bounds on `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    /// Used when the client gives no `limit`.
    pub default: u32,
    /// The largest `limit` accepted; larger ones are a 422, not silently cut.
    pub max: u32,
}

impl Default for PageLimits {
    fn default() -> Self {
        Self {
            default: 100,
            max: 1000,
        }
    }
}

/// A validated page request, with the decoded key to continue after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<K> {
    after: Option<K>,
    limit: usize,
}

/// One page of a list, as returned to clients.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page, in key order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What a cursor holds on the wire. Versioned so the format can change without breaking
/// cursors that clients hold across an upgrade.
#[derive(Serialize, Deserialize)]
struct CursorDoc<K> {
    v: u8,
    k: K,
}

const CURSOR_VERSION: u8 = 1;

/// Encodes `key` as an opaque cursor.
///
/// # Panics
/// If `key` cannot be serialized as JSON (a key type with non-string map keys, say): a bug
/// in the endpoint, not a client error.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    let doc = CursorDoc {
        v: CURSOR_VERSION,
        k: key,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&doc).expect("cursor keys serialize as JSON"))
}

/// Decodes a cursor made by [`encode_cursor`].
///
/// # Errors
/// A 400 problem naming `cursor` when it is not one of ours.
pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Result<K, ApiError> {
    let invalid =
        || ApiError::invalid_parameter("cursor", "not a cursor returned by this endpoint");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let doc: CursorDoc<K> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if doc.v != CURSOR_VERSION {
        return Err(invalid());
    }
    Ok(doc.k)
}

impl PageParams {
    /// Validates `limit` and decodes `cursor`.
    ///
    /// # Errors
    /// 422 when `limit` is 0 or above `limits.max`; 400 when `cursor` is not ours.
    pub fn resolve<K: DeserializeOwned>(
        &self,
        limits: PageLimits,
    ) -> Result<PageRequest<K>, ApiError> {
        let limit = self.limit.unwrap_or(limits.default);
        if limit == 0 || limit > limits.max {
            return Err(ApiError::invalid_value(
                "limit",
                format!("must be between 1 and {} (got {limit})", limits.max),
            ));
        }
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(PageRequest {
            after,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        })
    }
}

impl<K: Ord + Serialize> PageRequest<K> {
    /// The key to continue after, if this is not the first page.
    pub fn after(&self) -> Option<&K> {
        self.after.as_ref()
    }

    /// Items per page.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Builds the page from `items`, which must be in strictly increasing key order. Items
    /// at or before the cursor's key are skipped, so a store may pass a scan that starts a
    /// little early. Reads at most `limit + 1` items past the cursor.
    pub fn page<T>(&self, items: impl IntoIterator<Item = T>, key: impl Fn(&T) -> K) -> Page<T> {
        let mut iter = items
            .into_iter()
            .skip_while(|item| self.after.as_ref().is_some_and(|after| key(item) <= *after));
        let items: Vec<T> = iter.by_ref().take(self.limit).collect();
        let more = iter.next().is_some();
        let next_cursor = match items.last() {
            Some(last) if more => Some(encode_cursor(&key(last))),
            _ => None,
        };
        Page { items, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn params(limit: Option<u32>, cursor: Option<String>) -> PageParams {
        PageParams { limit, cursor }
    }

    #[test]
    fn limit_is_bounded() {
        let limits = PageLimits {
            default: 10,
            max: 50,
        };
        assert_eq!(
            params(None, None).resolve::<u64>(limits).unwrap().limit(),
            10
        );
        assert_eq!(
            params(Some(50), None)
                .resolve::<u64>(limits)
                .unwrap()
                .limit(),
            50
        );
        for bad in [0, 51] {
            let err = params(Some(bad), None).resolve::<u64>(limits).unwrap_err();
            assert_eq!(err.status(), 422);
        }
    }

    #[test]
    fn foreign_cursors_are_rejected() {
        for bad in [
            "",
            "!!!",
            "bm90IGpzb24",
            &URL_SAFE_NO_PAD.encode(br#"{"v":9,"k":1}"#),
        ] {
            let err = params(None, Some(bad.to_owned())).resolve::<u64>(PageLimits::default());
            assert_eq!(err.unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn composite_keys_round_trip() {
        let key = ("queue-a".to_owned(), 42u64);
        assert_eq!(
            decode_cursor::<(String, u64)>(&encode_cursor(&key)).unwrap(),
            key
        );
    }

    #[test]
    fn last_page_has_no_cursor_even_when_full() {
        let req = params(Some(2), None)
            .resolve::<u32>(PageLimits::default())
            .unwrap();
        let page = req.page([1u32, 2], |k| *k);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor, None);
    }

    proptest! {
        /// Walk a list page by page while other keys are inserted between page requests:
        /// every key present at the start is returned exactly once, and keys come out in
        /// strictly increasing order across pages.
        #[test]
        fn stable_under_inserts(
            initial in prop::collection::btree_set(0u32..10_000, 0..300),
            inserts in prop::collection::vec(prop::collection::vec(0u32..10_000, 0..20), 0..100),
            limit in 1u32..40,
        ) {
            let mut store: BTreeSet<u32> = initial.clone();
            let limits = PageLimits { default: limit, max: 1000 };
            let mut cursor = None;
            let mut seen = Vec::new();
            let mut inserts = inserts.into_iter();
            loop {
                let req = params(None, cursor.take()).resolve::<u32>(limits).unwrap();
                let start = req.after().map_or(0, |k| k + 1);
                let page = req.page(store.range(start..).copied(), |k| *k);
                prop_assert!(page.items.len() <= limit as usize);
                seen.extend(page.items);
                if let Some(batch) = inserts.next() {
                    store.extend(batch);
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            prop_assert!(seen.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {:?}", seen);
            let seen: BTreeSet<u32> = seen.into_iter().collect();
            prop_assert!(initial.is_subset(&seen));
        }
    }
}
