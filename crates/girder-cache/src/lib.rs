//! Stampede-safe read-through caching.
//!
//! [`Cache::get_or_load`] returns a cached value or loads it, and keeps a
//! popular key from stampeding its backend:
//!
//! - **Single-flight**: concurrent misses on one key make one loader call;
//!   the others wait for its value or its (shared, `Arc`ed) error. A loader
//!   panic or a cancelled leader never leaves waiters hanging.
//! - **XFetch** (Vattani, Chierichetti & Lowenstein, VLDB 2015): near
//!   expiry one reader recomputes early, with probability rising as expiry
//!   nears and as recomputation gets slower, while others keep the value.
//! - **Stale-while-revalidate / stale-if-error** windows, and **negative
//!   caching** of failures.
//! - [`Cache::write_through`] and a bounded, coalescing [`WriteBehind`] queue.
//!
//! Storage is [`moka`]; every time decision goes through an injectable
//! [`Clock`], so tests run on virtual time.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use girder_cache::{Cache, CacheConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), girder_cache::Error<std::io::Error>> {
//! let cache: Cache<u64, Arc<String>, std::io::Error> = Cache::new(CacheConfig {
//!     ttl: Duration::from_secs(30),
//!     stale_if_error: Duration::from_secs(300),
//!     ..CacheConfig::default()
//! })?;
//!
//! let user = cache
//!     .get_or_load(&7, || async { Ok(Arc::new("user 7".to_string())) })
//!     .await?;
//! assert_eq!(*user, "user 7");
//! // A hit: the loader is not called.
//! let again = cache
//!     .get_or_load(&7, || async { unreachable!("fresh value is cached") })
//!     .await?;
//! assert!(Arc::ptr_eq(&user, &again));
//! assert_eq!(cache.get_if_fresh(&7).as_deref().map(String::as_str), Some("user 7"));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod clock;
mod config;
mod error;
mod flight;
mod write_behind;
mod xfetch;

pub use cache::{Cache, CacheStats};
pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use config::{CacheConfig, WhenFull, WriteBehindConfig};
pub use error::Error;
pub use write_behind::{WriteBehind, WriteBehindStats};
