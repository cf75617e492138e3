//! The command line: `girder serve`, `girder config check`, `girder log check|repair`.

use crate::config::{LogFormat, Overrides};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Girder: the building blocks of large-scale backends in one binary.
#[derive(Debug, Parser)]
#[command(name = "girder", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Verify or repair a durable log (such as the stream journal,
    /// `<data_dir>/journal`). Run it with the node stopped.
    #[command(subcommand)]
    Log(LogCommand),
}

/// `girder log ...`
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Verify every record's checksum and every index; print what was found. Exits 0
    /// when the log is whole, 1 when it is damaged.
    Check {
        /// The log's directory.
        dir: PathBuf,
    },
    /// Truncate the log at its first damage (the records from there on are lost),
    /// delete the segments after it, and rebuild the indexes, so the node starts again.
    Repair {
        /// The log's directory.
        dir: PathBuf,
    },
}

/// `girder config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (file, GIRDER_* environment, flags) and print the
    /// effective result as TOML. Exits 2 when it is invalid.
    Check(ServeArgs),
}

/// Where the configuration comes from, and the flags that override it.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Configuration file [default: ./girder.toml, if it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HTTP listen address (http.addr) [default: 127.0.0.1:7380].
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// RESP (Redis protocol) listen address (resp.addr) [default: 127.0.0.1:7379].
    #[arg(long, value_name = "ADDR")]
    pub resp_addr: Option<String>,
    /// Data directory (data_dir) [default: ./girder-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Node id, 0..=1023 (node_id) [default: 0].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub node_id: Option<i64>,
    /// Log level or filter directives (log.level) [default: info].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format (log.format) [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// OTLP/HTTP endpoint for span export (otlp.endpoint) [default: none].
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

impl ServeArgs {
    /// The flags as configuration overrides.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            http_addr: self.http_addr.clone(),
            resp_addr: self.resp_addr.clone(),
            data_dir: self.data_dir.clone(),
            node_id: self.node_id,
            log_level: self.log_level.clone(),
            log_format: self.log_format,
            otlp_endpoint: self.otlp_endpoint.clone(),
        }
    }
}
