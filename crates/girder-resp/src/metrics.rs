//! Per-command metrics: calls, errors and a latency histogram per command, and the number
//! of connected clients. Labels are bounded: command names come from the command table,
//! anything else counts as `unknown`.
//!
//! The hot path touches no shared memory: each connection counts into a small
//! [`LocalStats`] and folds it into the shared atomics when it waits for input, every
//! [`FLUSH_INTERVAL`] during a long run of commands, and when it closes. Shared counters updated on every command
//! bounce their cache line between the cores, and `prometheus-client`'s histogram takes
//! a mutex per observation; at hundreds of thousands of commands per second both cost
//! more than the commands themselves.

use crate::commands::table;
use girder_runtime::Metrics;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The clock of command latencies ([`quanta`]: the TSC where it is invariant).
pub use quanta::Instant;

/// How stale a busy connection's counts may be before they reach `/metrics` (an idle one
/// has folded them when it began to wait).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);

/// Upper bounds of the latency buckets, in nanoseconds: 1 µs to ~1 s, doubling.
const BOUNDS_NS: [u64; 21] = {
    let mut b = [0u64; 21];
    let mut i = 0;
    while i < b.len() {
        b[i] = 1_000 << i;
        i += 1;
    }
    b
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: &'static str,
}

/// A lock-free latency histogram with fixed buckets, exposed as a Prometheus histogram.
/// Clones share the same counts.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    inner: Arc<HistogramInner>,
}

#[derive(Debug, Default)]
struct HistogramInner {
    /// Per-bucket (not cumulative) counts; the last slot is +Inf.
    buckets: [AtomicU64; BOUNDS_NS.len() + 1],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = &self.inner;
        // The encoder adds the +Inf bucket itself, from `count`.
        let buckets: Vec<(f64, u64)> = BOUNDS_NS
            .iter()
            .zip(&h.buckets)
            .map(|(b, n)| (*b as f64 / 1e9, n.load(Ordering::Relaxed)))
            .collect();
        encoder.encode_histogram::<NoLabelSet>(
            h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
            h.count.load(Ordering::Relaxed),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Shared handles for one command.
#[derive(Debug, Clone)]
struct Handles {
    calls: Counter,
    errors: Counter,
    latency: LatencyHistogram,
}

/// The RESP metrics, shared by all connections.
#[derive(Debug)]
pub struct CommandMetrics {
    per_command: Vec<Handles>,
    unknown: Counter,
    /// Connected clients.
    pub clients: Gauge,
    /// Bytes read from clients (INFO's `total_net_input_bytes`).
    net_input: Counter,
    /// Bytes written to clients (INFO's `total_net_output_bytes`).
    net_output: Counter,
}

impl CommandMetrics {
    /// Registers `girder_resp_*` metrics.
    pub fn register(metrics: &Metrics) -> Self {
        let calls = Family::<CommandLabel, Counter>::default();
        let errors = Family::<CommandLabel, Counter>::default();
        let latency = Family::<CommandLabel, LatencyHistogram>::default();
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
        let (net_input, net_output) = (Counter::default(), Counter::default());
        metrics.register(
            "girder_resp_net_input_bytes",
            "Bytes read from RESP clients",
            net_input.clone(),
        );
        metrics.register(
            "girder_resp_net_output_bytes",
            "Bytes written to RESP clients",
            net_output.clone(),
        );
        Self {
            per_command,
            unknown,
            clients,
            net_input,
            net_output,
        }
    }

    /// Bytes read from clients so far (at most [`FLUSH_INTERVAL`] stale).
    pub fn net_input_bytes(&self) -> u64 {
        self.net_input.get()
    }

    /// Bytes written to clients so far (at most [`FLUSH_INTERVAL`] stale).
    pub fn net_output_bytes(&self) -> u64 {
        self.net_output.get()
    }

    /// Commands executed so far, all commands together (INFO's
    /// `total_commands_processed`; at most [`FLUSH_INTERVAL`] stale).
    pub fn total_calls(&self) -> u64 {
        self.per_command.iter().map(|h| h.calls.get()).sum()
    }

    /// Each command's totals so far, in command-table order (INFO commandstats).
    pub fn per_command(&self) -> Vec<CommandTotals> {
        self.per_command
            .iter()
            .map(|h| CommandTotals {
                calls: h.calls.get(),
                errors: h.errors.get(),
                nanos: h.latency.inner.sum_ns.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Commands that replied with an error so far.
    pub fn total_errors(&self) -> u64 {
        self.per_command.iter().map(|h| h.errors.get()).sum::<u64>() + self.unknown.get()
    }
}

/// One command's calls, error replies and execution time so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CommandTotals {
    /// Calls (including those refused with an error).
    pub calls: u64,
    /// Calls that replied with an error.
    pub errors: u64,
    /// Time spent executing them, in nanoseconds.
    pub nanos: u64,
}

impl CommandTotals {
    /// What was counted since `base`.
    pub fn since(self, base: Self) -> Self {
        Self {
            calls: self.calls.saturating_sub(base.calls),
            errors: self.errors.saturating_sub(base.errors),
            nanos: self.nanos.saturating_sub(base.nanos),
        }
    }
}

/// How often [`Rates`] takes a sample (Redis: every 100 ms, from `serverCron`).
pub const RATE_PERIOD: Duration = Duration::from_millis(100);

/// How many samples [`Rates`] averages (Redis's `STATS_METRIC_SAMPLES`).
pub const RATE_SAMPLES: usize = 16;

/// INFO's `instantaneous_ops_per_sec`, `instantaneous_input_kbps` and
/// `instantaneous_output_kbps`, computed as Redis's `trackInstantaneousMetric` does:
/// each sample is a counter's rate per second since the previous sample, and the figure
/// is the mean of the last [`RATE_SAMPLES`] (about 1.6 s). The counters are commands,
/// bytes in and bytes out, in that order.
#[derive(Debug, Default)]
pub struct Rates {
    /// The time (ms on any monotonic clock) and counters of the previous sample.
    last: Option<(u64, [u64; 3])>,
    samples: [[u64; 3]; RATE_SAMPLES],
    next: usize,
}

impl Rates {
    /// Takes a sample of the counters' `totals` at `now_ms`.
    pub fn sample(&mut self, now_ms: u64, totals: [u64; 3]) {
        if let Some((then, previous)) = self.last {
            let elapsed = now_ms.saturating_sub(then);
            self.samples[self.next] = std::array::from_fn(|i| {
                let delta = totals[i].saturating_sub(previous[i]);
                (delta * 1000).checked_div(elapsed).unwrap_or(0)
            });
            self.next = (self.next + 1) % RATE_SAMPLES;
        }
        self.last = Some((now_ms, totals));
    }

    /// The mean rate per second of each counter over the samples.
    pub fn per_second(&self) -> [u64; 3] {
        std::array::from_fn(|i| {
            self.samples.iter().map(|s| s[i]).sum::<u64>() / RATE_SAMPLES as u64
        })
    }
}

/// One connection's counts since its last flush.
#[derive(Debug)]
pub struct LocalStats {
    /// (table index, counts): the few commands a connection uses, searched linearly.
    commands: Vec<(usize, LocalCommand)>,
    unknown: u64,
    /// Bytes read and written.
    net_in: u64,
    net_out: u64,
    last_flush: Instant,
}

#[derive(Debug, Default)]
struct LocalCommand {
    calls: u64,
    errors: u64,
    sum_ns: u64,
    buckets: [u32; BOUNDS_NS.len() + 1],
}

impl Default for LocalStats {
    fn default() -> Self {
        Self {
            commands: Vec::new(),
            unknown: 0,
            net_in: 0,
            net_out: 0,
            last_flush: Instant::now(),
        }
    }
}

/// The index of the first bound `1000 << i` at or above `ns` (`BOUNDS_NS.len()` past
/// the last): a logarithm instead of a search.
fn bucket_of(ns: u64) -> usize {
    let micros = ns.div_ceil(1_000);
    if micros <= 1 {
        return 0;
    }
    // The smallest i with 1 << i >= micros.
    let i = (u64::BITS - (micros - 1).leading_zeros()) as usize;
    i.min(BOUNDS_NS.len())
}

impl LocalStats {
    /// Counts one execution of the command at `index`, which took `elapsed`.
    pub fn record(&mut self, index: usize, elapsed: Duration, failed: bool) {
        let slot = match self.commands.iter().position(|(i, _)| *i == index) {
            Some(p) => p,
            None => {
                self.commands.push((index, LocalCommand::default()));
                self.commands.len() - 1
            }
        };
        let c = &mut self.commands[slot].1;
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        c.calls += 1;
        c.errors += u64::from(failed);
        c.sum_ns = c.sum_ns.saturating_add(ns);
        let bucket = bucket_of(ns);
        c.buckets[bucket] += 1;
    }

    /// Counts a command not in the table.
    pub fn record_unknown(&mut self) {
        self.unknown += 1;
    }

    /// Counts `n` bytes read from the client.
    pub fn read(&mut self, n: usize) {
        self.net_in += n as u64;
    }

    /// Counts `n` bytes written to the client.
    pub fn wrote(&mut self, n: usize) {
        self.net_out += n as u64;
    }

    /// Folds the counts into `shared` if [`FLUSH_INTERVAL`] has passed since the last
    /// flush (`now` is a time the caller already read).
    pub fn maybe_flush(&mut self, shared: &CommandMetrics, now: Instant) {
        if now.duration_since(self.last_flush) >= FLUSH_INTERVAL {
            self.flush(shared, now);
        }
    }

    /// Folds the counts into `shared` now.
    pub fn flush(&mut self, shared: &CommandMetrics, now: Instant) {
        for (index, c) in self.commands.drain(..) {
            let Some(h) = shared.per_command.get(index) else {
                continue;
            };
            h.calls.inc_by(c.calls);
            if c.errors > 0 {
                h.errors.inc_by(c.errors);
            }
            let latency = &h.latency.inner;
            latency.count.fetch_add(c.calls, Ordering::Relaxed);
            latency.sum_ns.fetch_add(c.sum_ns, Ordering::Relaxed);
            for (shared_bucket, n) in latency.buckets.iter().zip(c.buckets) {
                if n > 0 {
                    shared_bucket.fetch_add(u64::from(n), Ordering::Relaxed);
                }
            }
        }
        if self.unknown > 0 {
            shared.unknown.inc_by(self.unknown);
            self.unknown = 0;
        }
        for (counter, n) in [
            (&shared.net_input, &mut self.net_in),
            (&shared.net_output, &mut self.net_out),
        ] {
            if *n > 0 {
                counter.inc_by(std::mem::take(n));
            }
        }
        self.last_flush = now;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_average_the_last_sixteen_samples() {
        let mut rates = super::Rates::default();
        assert_eq!(rates.per_second(), [0, 0, 0]);
        // 1,000 commands, 2,048 bytes in and 4,096 out every 100 ms.
        for k in 0..=16u64 {
            rates.sample(k * 100, [k * 1_000, k * 2_048, k * 4_096]);
        }
        assert_eq!(rates.per_second(), [10_000, 20_480, 40_960]);
        // Idle from here: the mean falls by a sixteenth per sample, to zero.
        for k in 17..=24u64 {
            rates.sample(k * 100, [16_000, 16 * 2_048, 16 * 4_096]);
        }
        assert_eq!(rates.per_second()[0], 5_000);
        for k in 25..=32u64 {
            rates.sample(k * 100, [16_000, 16 * 2_048, 16 * 4_096]);
        }
        assert_eq!(rates.per_second(), [0, 0, 0]);
        // A late tick is a longer interval, not a burst; a repeated time counts nothing.
        let mut rates = super::Rates::default();
        rates.sample(0, [0; 3]);
        rates.sample(400, [1_600, 0, 0]);
        rates.sample(400, [1_700, 0, 0]);
        assert_eq!(rates.per_second()[0], 4_000 / 16);
    }

    use super::*;
    use girder_runtime::BuildInfo;

    #[test]
    fn bucket_of_is_the_first_bound_at_or_above() {
        let search = |ns: u64| BOUNDS_NS.partition_point(|&b| b < ns);
        let mut probes: Vec<u64> = (0..5_000).chain([u64::MAX, u64::MAX - 1]).collect();
        for b in BOUNDS_NS {
            probes.extend([b - 1, b, b + 1, b * 3 / 2]);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            probes.push(x >> (x % 64));
        }
        for ns in probes {
            assert_eq!(bucket_of(ns), search(ns), "{ns} ns");
        }
    }

    #[test]
    fn local_counts_reach_the_registry_on_flush() {
        let registry = Metrics::new(BuildInfo::default());
        let shared = CommandMetrics::register(&registry);
        let get = crate::commands::lookup_indexed(b"get").unwrap().0;
        let mut local = LocalStats::default();
        local.record(get, Duration::from_micros(3), false);
        local.record(get, Duration::from_millis(2), true);
        local.record_unknown();
        assert_eq!(shared.total_calls(), 0, "nothing shared before a flush");
        local.flush(&shared, Instant::now());
        assert_eq!(shared.total_calls(), 2);
        assert_eq!(shared.total_errors(), 2);
        let text = registry.encode();
        assert!(
            text.contains(r#"girder_resp_commands_total{command="get"} 2"#),
            "{text}"
        );
        // 3 µs falls in the 4 µs bucket; 2 ms in the 2.048 ms one (buckets are cumulative).
        assert!(
            text.contains(
                r#"girder_resp_command_duration_seconds_bucket{command="get",le="4e-06"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"girder_resp_command_duration_seconds_bucket{command="get",le="0.002048"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"girder_resp_command_duration_seconds_bucket{command="get",le="0.001024"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"girder_resp_command_duration_seconds_bucket{command="get",le="+Inf"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"girder_resp_command_duration_seconds_count{command="get"} 2"#),
            "{text}"
        );
    }
}
