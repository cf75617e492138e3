//! The process-wide Prometheus registry, with process metrics and build info built in.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Metric, Registry};
use std::sync::{Arc, RwLock};

/// What `girder_build_info` reports.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    /// The package version (`CARGO_PKG_VERSION` of the binary).
    pub version: &'static str,
    /// `release` or `debug`.
    pub profile: &'static str,
}

impl Default for BuildInfo {
    fn default() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }
}

/// A shared metrics registry. Cloning is cheap; all clones register into the same one.
///
/// Metrics are registered once, when a service is built, and updated lock-free afterwards;
/// the lock is taken for registration and for each scrape only.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
}

impl Metrics {
    /// A registry holding `girder_build_info` and the `process_*` metrics.
    pub fn new(build: BuildInfo) -> Self {
        let mut registry = Registry::default();
        let info = Family::<Vec<(String, String)>, Gauge>::default();
        info.get_or_create(&vec![
            ("version".to_owned(), build.version.to_owned()),
            ("profile".to_owned(), build.profile.to_owned()),
        ])
        .set(1);
        registry.register("girder_build_info", "Build information; always 1", info);
        registry.register_collector(Box::new(ProcessCollector));
        Self {
            registry: Arc::new(RwLock::new(registry)),
        }
    }

    /// Registers `metric` under `name`. Counters get `_total` appended, as Prometheus wants.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.write().register(name, help, metric);
    }

    /// Renders every metric in the Prometheus text format, version 0.0.4.
    ///
    /// # Panics
    /// Never in practice: encoding into a `String` cannot fail.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let registry = self
            .registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The `Content-Type` of [`Metrics::encode`]'s output.
    pub const CONTENT_TYPE: &'static str = "text/plain; version=0.0.4; charset=utf-8";

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The standard `process_*` metrics of Prometheus client libraries, read from `/proc` on
/// each scrape. On systems without `/proc` it reports nothing.
#[derive(Debug)]
struct ProcessCollector;

/// Linux reports times in `/proc` in USER_HZ, which the kernel ABI fixes at 100.
const USER_HZ: f64 = 100.0;

#[derive(Debug, Default, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    start_time_seconds: f64,
    threads: i64,
    resident_bytes: i64,
    virtual_bytes: i64,
    open_fds: i64,
    max_fds: i64,
}

impl ProcessStats {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot_time = std::fs::read_to_string("/proc/stat").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let mut stats = parse_stat(&stat, &boot_time)?;
        stats.open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| i64::try_from(d.count()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        stats.max_fds = parse_max_fds(&limits).unwrap_or(0);
        Some(stats)
    }
}

/// Parses `/proc/self/stat` (and the `btime` line of `/proc/stat`). Fields are counted after
/// the command name, which is in parentheses and may itself contain spaces.
fn parse_stat(stat: &str, proc_stat: &str) -> Option<ProcessStats> {
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // `fields[0]` is field 3 (state) of proc(5).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let page_size = 4096;
    let btime: u64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    #[allow(clippy::cast_precision_loss)] // tick counts are far below 2^52
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) as f64 / USER_HZ,
        start_time_seconds: btime as f64 + field(22)? as f64 / USER_HZ,
        threads: i64::try_from(field(20)?).ok()?,
        virtual_bytes: i64::try_from(field(23)?).ok()?,
        resident_bytes: i64::try_from(field(24)? * page_size).ok()?,
        open_fds: 0,
        max_fds: 0,
    })
}

fn parse_max_fds(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, f64); 6] = [
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                s.start_time_seconds,
            ),
            ("process_threads", "Number of OS threads", to_f64(s.threads)),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                to_f64(s.resident_bytes),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                to_f64(s.virtual_bytes),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                to_f64(s.open_fds),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                to_f64(s.max_fds),
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

#[allow(clippy::cast_precision_loss)] // process sizes and counts are far below 2^52
fn to_f64(v: i64) -> f64 {
    v as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_spaces_in_the_command_name() {
        // Fields from proc(5): utime=14 stime=15 num_threads=20 starttime=22 vsize=23 rss=24.
        let stat = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 7 0 1000 8192000 300 18446744073709551615";
        let proc_stat = "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n";
        let s = parse_stat(stat, proc_stat).unwrap();
        assert_eq!(
            s,
            ProcessStats {
                cpu_seconds: 3.0,
                start_time_seconds: 1_700_000_010.0,
                threads: 7,
                resident_bytes: 300 * 4096,
                virtual_bytes: 8_192_000,
                open_fds: 0,
                max_fds: 0,
            }
        );
    }

    #[test]
    fn parses_max_open_files() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
    }

    #[test]
    fn encodes_build_info_and_process_metrics() {
        let m = Metrics::new(BuildInfo {
            version: "1.2.3",
            profile: "release",
        });
        let text = m.encode();
        assert!(text.contains("girder_build_info{version=\"1.2.3\",profile=\"release\"} 1"));
        if cfg!(target_os = "linux") {
            assert!(
                text.contains("# TYPE process_cpu_seconds_total counter"),
                "{text}"
            );
            assert!(text.contains("process_resident_memory_bytes "), "{text}");
            assert!(text.contains("process_open_fds "), "{text}");
        }
    }
}
