//! Girder's RESP front end: the codec (RESP2, RESP3, inline) and, on top of it, the Redis
//! command set served over `girder-kv`.
//!
//! - [`blocking`]: clients blocked on list keys (BLPOP and friends) and the hand-off that
//!   serves them when a push arrives.
//! - [`codec`]: parsing requests (partial input is not an error) and encoding replies for
//!   either protocol.
//! - [`commands`]: the command table and one file per command family, each command in
//!   three steps: parse arguments, call the keyspace, build the reply.
//! - [`pubsub`]: the registry of channel and pattern subscriptions and the bounded
//!   per-subscriber message queues.
//! - [`server`]: the accept loop and per-connection pipeline handling, as a
//!   `girder_runtime::Service`.
//!
//! Architecture invariant: this crate knows nothing of storage internals; it calls
//! `girder-kv`'s typed operations and encodes their results.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acl;
pub mod auth;
pub mod blocking;
pub mod codec;
pub mod commands;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod output_limits;
pub mod persistence;
pub mod pubsub;
pub mod ratelimits;
pub mod replay;
pub mod server;
mod spin;
pub mod state;
pub mod tls;

pub use server::RespService;
pub use state::RespConfig;

/// The Redis version Girder reports (`INFO`, `HELLO`): the one whose commands and replies
/// it follows, so that clients enable the matching features.
pub const REDIS_VERSION: &str = "7.0.15";
