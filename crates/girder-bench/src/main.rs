//! The `girder-bench` command line: see the crate docs of `girder_bench`.

use clap::{Parser, Subcommand};
use girder_bench::{brokers, jobs, streams};
use std::process::ExitCode;

/// Girder's load generator: drives Girder or any Redis-compatible server over RESP2.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Tokio worker threads of the client (1 = a single-threaded client, like
    /// redis-benchmark, leaving the other cores to the server).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// XADD throughput, then XREADGROUP + XACK throughput, on a fresh stream key.
    ///
    /// Prints one JSON line per phase, each followed by a human line starting with '#'.
    /// Exits with status 1 if any reply was an error or an entry was lost, duplicated or
    /// left pending.
    Streams(StreamsArgs),
    /// The scheduler over HTTP: enqueue → claim → complete throughput, then start
    /// lateness of delayed jobs on the idle node.
    ///
    /// Prints one JSON line per phase. Exits with status 1 if any request failed or a
    /// job was lost, claimed twice or left behind.
    Jobs(JobsArgs),
    /// Girder's topics against RabbitMQ (quorum queue) and NATS JetStream (file
    /// storage): produce with confirms, consume with manual acks, end-to-end latency.
    ///
    /// Prints one JSON line per phase. Exits with status 1 if any request failed or a
    /// message was lost or received twice.
    Brokers(BrokersArgs),
}

#[derive(Debug, clap::Args)]
struct BrokersArgs {
    /// girder, rabbitmq or nats.
    #[arg(long)]
    system: brokers::System,
    /// Girder's HTTP base URL.
    #[arg(long, default_value = "http://127.0.0.1:7380")]
    base: String,
    /// RabbitMQ's AMQP URL.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp: String,
    /// NATS's URL.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Messages to produce, then to consume.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Producer tasks.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Consumer tasks.
    #[arg(long, default_value_t = 4)]
    consumers: usize,
    /// Messages in flight per producer (Girder: messages per produce request).
    #[arg(long, default_value_t = 100)]
    window: usize,
    /// Messages per receive and per ack.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Partitions of the Girder topic.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Girder topic's fsync policy (always or never).
    #[arg(long, default_value = "always")]
    fsync: String,
    /// Messages in the end-to-end phase (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    e2e_messages: u64,
    /// Total publish rate of the end-to-end phase, msgs/s.
    #[arg(long, default_value_t = 5_000)]
    e2e_rate: u64,
}

#[derive(Debug, clap::Args)]
struct JobsArgs {
    /// The node's HTTP base URL.
    #[arg(long, default_value = "http://127.0.0.1:7380")]
    base: String,
    /// Jobs in the throughput phase.
    #[arg(long, default_value_t = 20_000)]
    jobs: u64,
    /// Concurrent enqueuers.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Concurrent workers.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Jobs per claim.
    #[arg(long, default_value_t = 32)]
    batch: u32,
    /// Jobs per enqueue request (1: `POST /v1/jobs`; more: `POST /v1/jobs/batch`).
    #[arg(long, default_value_t = 1)]
    enqueue_batch: u64,
    /// Complete each claim's jobs with one `POST /v1/jobs/complete`.
    #[arg(long)]
    complete_batch: bool,
    /// Delayed jobs in the lateness phase (0 skips it).
    #[arg(long, default_value_t = 1000)]
    late_jobs: u64,
}

#[derive(Debug, clap::Args)]
struct StreamsArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: String,
    /// Stream key [default: a fresh girder-bench:streams:<pid>-<micros>].
    #[arg(long)]
    key: Option<String>,
    /// Entries to add, then to read.
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// Payload bytes per entry.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Producer connections.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// XADDs per pipelined batch.
    #[arg(long, default_value_t = 16)]
    pipeline: usize,
    /// Consumer connections.
    #[arg(long, default_value_t = 2)]
    consumers: usize,
    /// XREADGROUP COUNT.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Keep the stream key instead of deleting it at the end.
    #[arg(long)]
    keep_key: bool,
    /// Random (incompressible) payload bytes instead of `x` repeated, a payload of its
    /// own for each entry of 4 MiB of them.
    #[arg(long)]
    random_payload: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("girder-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.bench {
        Bench::Streams(a) => runtime
            .block_on(streams::run(&streams::Config {
                addr: a.addr,
                key: a.key,
                entries: a.entries,
                size: a.size,
                producers: a.producers,
                pipeline: a.pipeline,
                consumers: a.consumers,
                count: a.count,
                keep_key: a.keep_key,
                random_payload: a.random_payload,
            }))
            .map_err(|e| e.to_string()),
        Bench::Jobs(a) => runtime
            .block_on(jobs::run(&jobs::Config {
                base: a.base,
                jobs: a.jobs,
                producers: a.producers,
                workers: a.workers,
                batch: a.batch,
                enqueue_batch: a.enqueue_batch,
                complete_batch: a.complete_batch,
                late_jobs: a.late_jobs,
            }))
            .map_err(|e| e.to_string()),
        Bench::Brokers(a) => runtime
            .block_on(brokers::run(&brokers::Config {
                system: a.system,
                base: a.base,
                amqp: a.amqp,
                nats: a.nats,
                messages: a.messages,
                size: a.size,
                producers: a.producers,
                consumers: a.consumers,
                window: a.window,
                batch: a.batch,
                partitions: a.partitions,
                girder_fsync: a.fsync,
                e2e_messages: a.e2e_messages,
                e2e_rate: a.e2e_rate,
            }))
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("girder-bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
