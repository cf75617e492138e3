//! `girder-bench`: Girder's load generator for side-by-side comparisons with peers.
//!
//! It speaks RESP2 itself over `tokio::net::TcpStream` ([`resp`], [`conn`]), so the same
//! client, with the same pipelining and the same checks, drives Girder and Redis alike.
//! Each benchmark checks the server's answers as it goes: error replies are counted and
//! reported, never ignored, and a run whose results do not add up fails instead of
//! printing a number.
//!
//! Benchmarks: [`streams`] (XADD, then XREADGROUP + XACK); [`jobs`] (the scheduler over
//! HTTP: enqueue → claim → complete throughput, and start lateness); [`brokers`] (Girder's
//! topics against RabbitMQ and NATS JetStream: produce, consume, end-to-end latency).

pub mod brokers;
pub mod conn;
pub mod jobs;
pub mod resp;
pub mod streams;
