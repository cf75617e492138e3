//! Appends N MB of records of one size under one fsync policy and prints MB/s,
//! measured as wall time from the first append until `sync()` returns.
//!
//! ```text
//! cargo run --release -p girder-log --example append_mbps -- \
//!     --dir /path/on/disk --mb 512 --size 1024 --policy interval:1000 [--threads 1] [--buffer-kb 8192]
//! ```
//! `--policy` is `never`, `always` or `interval:<ms>`. The directory must not
//! hold a log (it is created; remove it afterwards).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use girder_log::{FsyncPolicy, Log, LogConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dir = None;
    let mut buffer = LogConfig::default().max_buffered_bytes;
    let (mut mb, mut size, mut threads) = (512u64, 1024usize, 1u64);
    let mut policy = FsyncPolicy::Interval(Duration::from_millis(1000));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => dir = Some(PathBuf::from(val()?)),
            "--mb" => mb = val()?.parse()?,
            "--size" => size = val()?.parse()?,
            "--threads" => threads = val()?.parse()?,
            "--buffer-kb" => buffer = val()?.parse::<usize>()? * 1024,
            "--policy" => {
                policy = match val()?.as_str() {
                    "never" => FsyncPolicy::Never,
                    "always" => FsyncPolicy::Always,
                    p => match p.strip_prefix("interval:") {
                        Some(ms) => FsyncPolicy::Interval(Duration::from_millis(ms.parse()?)),
                        None => return Err(format!("unknown policy {p}").into()),
                    },
                }
            }
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let dir = dir.ok_or("--dir is required")?;
    let (log, _) = Log::open(
        &dir,
        LogConfig {
            fsync: policy,
            max_buffered_bytes: buffer,
            ..LogConfig::default()
        },
    )?;
    let log = Arc::new(log);
    let records = mb * 1_000_000 / size as u64;
    let per_thread = records / threads;
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || -> Result<(), girder_log::LogError> {
                let payload = vec![t as u8; size];
                for _ in 0..per_thread {
                    log.append(0, &payload)?;
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "appender panicked")??;
    }
    let appended = start.elapsed().as_secs_f64();
    log.sync()?;
    let secs = start.elapsed().as_secs_f64();
    let bytes = (per_thread * threads) as f64 * size as f64;
    let stats = log.stats();
    println!(
        "{:.1} MB/s ({} records of {size} B in {secs:.3} s, appends done at {appended:.3} s, {} writes, {} fsyncs, policy {policy:?})",
        bytes / 1e6 / secs,
        per_thread * threads,
        stats.writes,
        stats.fsyncs
    );
    Ok(())
}
