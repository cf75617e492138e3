//! The `girder` binary as a library: command line, configuration, telemetry, and the
//! wiring of engines to front ends ([`node`]). `main.rs` only parses arguments and calls in.
//!
//! Architecture invariant: this is the only crate that knows every system. Engines and
//! front ends never depend on it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod node;
pub mod persistence;
pub mod telemetry;

pub use node::{Node, NodeBuilder};
