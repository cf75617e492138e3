//! `girder`: see `girder --help`.
#![forbid(unsafe_code)]

use clap::Parser;
use girder::cli::{Cli, Command, ConfigCommand, LogCommand, ServeArgs};
use girder::config::{self, Config};
use girder::Node;
use std::path::PathBuf;
use std::process::ExitCode;

/// Every allocation is counted: `maxmemory` is held to what the allocator really holds.
#[global_allocator]
static ALLOC: girder_alloc::Counting = girder_alloc::Counting;

/// Exit code for an invalid configuration (as for a usage error).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Config(ConfigCommand::Check(args)) => check(&args),
        Command::Log(LogCommand::Check { dir }) => log_check(&dir),
        Command::Log(LogCommand::Repair { dir }) => log_repair(&dir),
    }
}

fn log_check(dir: &std::path::Path) -> ExitCode {
    match girder_log::check(dir) {
        Ok(report) => {
            println!(
                "{}: {} segments, {} records, {} bytes verified",
                dir.display(),
                report.segments,
                report.records,
                report.bytes
            );
            for index in &report.invalid_indexes {
                println!(
                    "index {} is missing or stale (rebuilt at start; not data loss)",
                    index.display()
                );
            }
            match report.damage {
                None => {
                    println!("no damage");
                    ExitCode::SUCCESS
                }
                Some(d) => {
                    println!(
                        "DAMAGED: {} at byte {}: {}\n`girder log repair {}` truncates the log there; the records from that point on are lost",
                        d.path.display(),
                        d.position,
                        d.reason,
                        dir.display()
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("girder: {e}");
            ExitCode::FAILURE
        }
    }
}

fn log_repair(dir: &std::path::Path) -> ExitCode {
    match girder_log::repair(dir) {
        Ok(report) => {
            match &report.damage {
                None => println!("{}: no damage found", dir.display()),
                Some(d) => println!(
                    "{}: cut at {} byte {} ({}): {} bytes truncated, {} later segments removed",
                    dir.display(),
                    d.path.display(),
                    d.position,
                    d.reason,
                    report.truncated_bytes,
                    report.removed_segments.len()
                ),
            }
            for index in &report.rebuilt_indexes {
                println!("rebuilt {}", index.display());
            }
            println!("next offset: {}", report.end_offset);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("girder: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: &ServeArgs) -> Result<Config, config::ConfigError> {
    let default_file = PathBuf::from(config::DEFAULT_FILE);
    let file = args
        .config
        .clone()
        .or_else(|| default_file.exists().then_some(default_file));
    Config::load(file.as_deref(), config::environment()?, &args.overrides())
}

fn check(args: &ServeArgs) -> ExitCode {
    match load(args) {
        Ok(config) => {
            print!("{}", config.to_toml());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("girder: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let config = match load(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("girder: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Telemetry is set up outside the runtime: the OTLP exporter uses a blocking client.
    let telemetry = match girder::telemetry::init(&config.log, &config.otlp) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("girder: cannot set up logging/tracing: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("girder")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("girder: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        let node = Node::builder(config.clone()).bind().await?;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            node_id = config.node_id,
            data_dir = %config.data_dir.display(),
            http = %node.http_addr(),
            "girder started"
        );
        node.run(shutdown_signal()).await
    });
    drop(runtime);
    let code = match outcome {
        Ok(report) => {
            tracing::info!(aborted = ?report.aborted, "girder stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "girder failed");
            eprintln!("girder: {e:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

/// Resolves on the first SIGINT or SIGTERM. A second one exits at once, for an operator
/// who does not want to wait out the grace period.
async fn shutdown_signal() {
    wait_for_signal().await;
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second signal: exiting without waiting for in-flight work");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
