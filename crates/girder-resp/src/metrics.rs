//! Per-command metrics: calls, errors and a latency histogram per command, and the number
//! of connected clients. Labels are bounded: command names come from the command table,
//! anything else counts as `unknown`.

use crate::commands::table;
use girder_runtime::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::time::Instant;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: &'static str,
}

/// Handles for one command, created at start so the hot path does no map lookups.
#[derive(Debug, Clone)]
struct Handles {
    calls: Counter,
    errors: Counter,
    latency: Histogram,
}

/// The RESP metrics.
#[derive(Debug)]
pub struct CommandMetrics {
    per_command: Vec<Handles>,
    unknown: Counter,
    /// Connected clients.
    pub clients: Gauge,
}

impl CommandMetrics {
    /// Registers `girder_resp_*` metrics.
    pub fn register(metrics: &Metrics) -> Self {
        let calls = Family::<CommandLabel, Counter>::default();
        let errors = Family::<CommandLabel, Counter>::default();
        // 10 µs .. ~2.6 s.
        let latency = Family::<CommandLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.000_01, 2.0, 19))) as fn() -> Histogram,
        );
        let per_command = table()
            .iter()
            .map(|spec| {
                let label = CommandLabel { command: spec.name };
                Handles {
                    calls: calls.get_or_create(&label).clone(),
                    errors: errors.get_or_create(&label).clone(),
                    latency: latency.get_or_create(&label).clone(),
                }
            })
            .collect();
        let unknown = errors
            .get_or_create(&CommandLabel { command: "unknown" })
            .clone();
        let clients = Gauge::default();
        metrics.register(
            "girder_resp_commands",
            "RESP commands executed, by command",
            calls,
        );
        metrics.register(
            "girder_resp_command_errors",
            "RESP commands that replied with an error, by command",
            errors,
        );
        metrics.register(
            "girder_resp_command_duration_seconds",
            "RESP command execution time, by command",
            latency,
        );
        metrics.register(
            "girder_resp_connected_clients",
            "RESP clients connected",
            clients.clone(),
        );
        Self {
            per_command,
            unknown,
            clients,
        }
    }

    /// Records one execution of the command at `index` in the table.
    pub fn record(&self, index: usize, start: Instant, failed: bool) {
        if let Some(h) = self.per_command.get(index) {
            h.calls.inc();
            if failed {
                h.errors.inc();
            }
            h.latency.observe(start.elapsed().as_secs_f64());
        }
    }

    /// Records a command not in the table.
    pub fn record_unknown(&self) {
        self.unknown.inc();
    }
}
