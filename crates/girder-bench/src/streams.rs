//! The streams benchmark: XADD throughput, then XREADGROUP + XACK throughput, on a fresh
//! stream key of one server.
//!
//! **Produce.** `producers` connections share one budget of `entries` XADDs. Each claims
//! up to `pipeline` of them at a time, writes them with one write (`XADD key * data
//! <payload>`, identical bytes every time, encoded once) and waits for all their
//! replies before the next batch, as `redis-benchmark -P` does. Latency is measured per
//! batch: from the write to the last reply of the batch.
//!
//! **Consume.** `XGROUP CREATE key g 0`, then `consumers` connections `c0, c1, ...` loop
//! on `XREADGROUP GROUP g c<i> COUNT <count> STREAMS key >`. The XACK of the ids of batch
//! *i* travels in the same write as the XREADGROUP of batch *i + 1* (one round trip per
//! batch); a consumer stops when XREADGROUP answers nil. Latency is per round trip.
//!
//! Invariants checked, each a failure of the run rather than a number: every XADD
//! answered with an id, XLEN = `entries`; every entry read exactly once (reads total
//! `entries` and the XACKs acknowledged `entries` in total, so a duplicate delivery
//! would show as an XACK answering 0), and XPENDING reports 0 pending at the end. Any
//! error reply is counted, and the first one is kept for the report.

use crate::conn::{Conn, ConnError};
use crate::resp::{self, Reply};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The field name of every entry (`XADD key * data <payload>`).
const FIELD: &[u8] = b"data";
/// The consumer group the consume phase creates.
const GROUP: &[u8] = b"g";

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port` of the server.
    pub addr: String,
    /// Stream key; `None` picks a fresh `girder-bench:streams:<pid>-<micros>`.
    pub key: Option<String>,
    /// Entries to add (and then to read).
    pub entries: u64,
    /// Payload bytes per entry (the value of its single field).
    pub size: usize,
    /// Connections adding entries.
    pub producers: usize,
    /// XADDs per pipelined batch.
    pub pipeline: usize,
    /// Connections reading in the group.
    pub consumers: usize,
    /// XREADGROUP's COUNT.
    pub count: usize,
    /// Leave the key on the server afterwards instead of deleting it.
    pub keep_key: bool,
    /// Random payload bytes (incompressible) instead of `x` repeated. A server that
    /// compresses what it writes (Redis's AOF rewrite stores strings LZF-compressed,
    /// Girder's snapshot compresses its chunks of a stream with LZ4) writes almost
    /// nothing of a repeated byte. Each entry of [`RANDOM_SPAN`] bytes of them has a
    /// payload of its own, so no compressor finds a repeat across entries either.
    pub random_payload: bool,
}

/// Payload bytes after which random payloads repeat: more than any compressor's window
/// (LZ4's is 64 KiB) or a snapshot chunk (at most 1 MiB).
pub const RANDOM_SPAN: usize = 4 << 20;

/// `size` pseudo-random printable bytes (xorshift64 from `state`): no compressor finds
/// repeats in them.
fn random_payload(state: &mut u64, size: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
    (0..size)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            ALPHABET[(*state >> 58) as usize]
        })
        .collect()
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A connection failed (refused, closed, not RESP).
    #[error("{context}: {source}")]
    Conn {
        /// The step that was running.
        context: String,
        /// What went wrong.
        source: ConnError,
    },
    /// The server answered, but not as a correct server would (error replies, lost or
    /// duplicated entries, entries left pending).
    #[error("{0}")]
    Check(String),
    /// A configuration value that cannot work (zero connections, zero entries).
    #[error("{0}")]
    Config(String),
}

/// Result of the produce phase.
#[derive(Debug, Clone)]
pub struct ProduceReport {
    /// XADDs answered with an id.
    pub added: u64,
    /// XADDs answered with an error (or anything but an id).
    pub errors: u64,
    /// The first such answer.
    pub first_error: Option<String>,
    /// From the first write to the last reply.
    pub elapsed: Duration,
    /// Per pipelined batch.
    pub latency: Percentiles,
}

/// Result of the consume phase.
#[derive(Debug, Clone)]
pub struct ConsumeReport {
    /// Entries delivered by XREADGROUP.
    pub read: u64,
    /// Sum of XACK's replies.
    pub acked: u64,
    /// Error replies (or replies of the wrong shape) to XREADGROUP or XACK.
    pub errors: u64,
    /// The first such answer.
    pub first_error: Option<String>,
    /// XPENDING's count after the phase.
    pub pending: i64,
    /// From the first write to the last reply.
    pub elapsed: Duration,
    /// Per round trip (XACK + XREADGROUP).
    pub latency: Percentiles,
}

/// Latency percentiles (nearest rank).
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Percentiles {
        samples.sort_unstable();
        let rank = |p: f64| {
            let i = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len().max(1));
            samples.get(i - 1).copied().unwrap_or_default()
        };
        Percentiles {
            p50: rank(0.50),
            p99: rank(0.99),
        }
    }
}

/// Runs both phases, printing each phase's lines as soon as it ends, and fails loudly
/// on any error reply or failed check (after printing what was measured).
pub async fn run(config: &Config) -> Result<(), BenchError> {
    if config.entries == 0
        || config.producers == 0
        || config.pipeline == 0
        || config.consumers == 0
        || config.count == 0
    {
        return Err(BenchError::Config(
            "--entries, --producers, --pipeline, --consumers and --count must be at least 1".into(),
        ));
    }
    let key = config.key.clone().unwrap_or_else(fresh_key);
    let mut admin = connect(&config.addr, "connecting").await?;
    let exists = call(&mut admin, &[b"EXISTS", key.as_bytes()], "EXISTS").await?;
    if exists != Reply::Integer(0) {
        return Err(BenchError::Check(format!(
            "key {key:?} is not fresh (EXISTS answered {exists:?})"
        )));
    }

    let result = phases(config, &key, &mut admin).await;
    if !config.keep_key {
        // Best effort: the run's outcome is already decided.
        if let Err(e) = admin.call(&[b"DEL", key.as_bytes()]).await {
            eprintln!("warning: DEL {key} failed: {e}");
        }
    }
    result
}

async fn phases(config: &Config, key: &str, admin: &mut Conn) -> Result<(), BenchError> {
    let produce = produce(config, key).await?;
    println!("{}", produce_json(config, key, &produce));
    println!("{}", produce_human(config, &produce));
    if produce.errors > 0 {
        return Err(BenchError::Check(format!(
            "produce: {} of {} XADD failed; first error: {}",
            produce.errors,
            config.entries,
            produce.first_error.as_deref().unwrap_or("?")
        )));
    }
    let xlen = call(admin, &[b"XLEN", key.as_bytes()], "XLEN").await?;
    if xlen != Reply::Integer(config.entries as i64) {
        return Err(BenchError::Check(format!(
            "produce: XLEN answered {xlen:?} after {} acknowledged XADD",
            produce.added
        )));
    }

    let created = call(
        admin,
        &[b"XGROUP", b"CREATE", key.as_bytes(), GROUP, b"0"],
        "XGROUP CREATE",
    )
    .await?;
    if created != Reply::Simple("OK".into()) {
        return Err(BenchError::Check(format!(
            "consume: XGROUP CREATE answered {created:?}"
        )));
    }
    let mut consume = consume(config, key).await?;
    consume.pending = pending(admin, key).await?;
    println!("{}", consume_json(config, key, &consume));
    println!("{}", consume_human(config, &consume));

    let mut failures = Vec::new();
    if consume.errors > 0 {
        failures.push(format!(
            "{} error replies; first error: {}",
            consume.errors,
            consume.first_error.as_deref().unwrap_or("?")
        ));
    }
    if consume.read != config.entries {
        failures.push(format!(
            "read {} entries, expected {}",
            consume.read, config.entries
        ));
    }
    if consume.acked != config.entries {
        failures.push(format!(
            "XACK acknowledged {}, expected {}",
            consume.acked, config.entries
        ));
    }
    if consume.pending != 0 {
        failures.push(format!(
            "XPENDING reports {} pending, expected 0",
            consume.pending
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(BenchError::Check(format!(
            "consume: {}",
            failures.join("; ")
        )))
    }
}

fn fresh_key() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or_default();
    format!("girder-bench:streams:{}-{micros}", std::process::id())
}

async fn connect(addr: &str, context: &str) -> Result<Conn, BenchError> {
    Conn::connect(addr)
        .await
        .map_err(|source| BenchError::Conn {
            context: format!("{context} to {addr}"),
            source,
        })
}

async fn call(conn: &mut Conn, args: &[&[u8]], context: &str) -> Result<Reply, BenchError> {
    conn.call(args).await.map_err(|source| BenchError::Conn {
        context: context.into(),
        source,
    })
}

/// XPENDING's summary count; any other answer is a failure.
async fn pending(admin: &mut Conn, key: &str) -> Result<i64, BenchError> {
    let reply = call(admin, &[b"XPENDING", key.as_bytes(), GROUP], "XPENDING").await?;
    match &reply {
        Reply::Array(items) => match items.first() {
            Some(Reply::Integer(n)) if items.len() == 4 => Ok(*n),
            _ => Err(BenchError::Check(format!("XPENDING answered {reply:?}"))),
        },
        _ => Err(BenchError::Check(format!("XPENDING answered {reply:?}"))),
    }
}

// Produce --------------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    ok: u64,
    acked: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
}

impl Tally {
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.acked += other.acked;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
    }
}

async fn produce(config: &Config, key: &str) -> Result<ProduceReport, BenchError> {
    // The XADDs the producers send, in a ring they walk a batch at a time: `pipeline` of
    // them when the payload repeats, enough for RANDOM_SPAN bytes of distinct payloads
    // when it is random. Every command has the same length.
    let commands = if config.random_payload {
        let batches = RANDOM_SPAN.div_ceil(config.size.max(1) * config.pipeline);
        batches * config.pipeline
    } else {
        config.pipeline
    };
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let (mut ring, mut one_len) = (Vec::new(), 0);
    for _ in 0..commands {
        let payload = if config.random_payload {
            random_payload(&mut state, config.size)
        } else {
            vec![b'x'; config.size]
        };
        let before = ring.len();
        resp::encode(&mut ring, &[b"XADD", key.as_bytes(), b"*", FIELD, &payload]);
        one_len = ring.len() - before;
    }
    let ring: Arc<[u8]> = ring.into();
    let claimed = Arc::new(AtomicU64::new(0));

    let mut conns = Vec::with_capacity(config.producers);
    for _ in 0..config.producers {
        conns.push(connect(&config.addr, "produce: connecting").await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(conns.len());
    // Producers start spread over the ring: entries that land side by side in the
    // stream do not repeat each other.
    let (batches, producers) = (commands / config.pipeline, conns.len());
    for (j, conn) in conns.into_iter().enumerate() {
        let (ring, claimed) = (ring.clone(), claimed.clone());
        let (pipeline, total) = (config.pipeline, config.entries);
        let at = j * batches / producers * pipeline * one_len;
        tasks.push(tokio::spawn(async move {
            producer(conn, &ring, at, one_len, pipeline, &claimed, total).await
        }));
    }
    let tally = join(tasks, "produce").await?;
    let elapsed = start.elapsed();
    Ok(ProduceReport {
        added: tally.ok,
        errors: tally.errors,
        first_error: tally.first_error,
        elapsed,
        latency: Percentiles::of(tally.latencies),
    })
}

/// Claims up to `want` of the `total` operations; 0 once all are claimed.
fn claim(claimed: &AtomicU64, want: u64, total: u64) -> u64 {
    match claimed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
        (c < total).then(|| c + want.min(total - c))
    }) {
        Ok(before) => want.min(total - before),
        Err(_) => 0,
    }
}

/// Sends batches of `pipeline` commands (the last may be shorter) from `ring`, a whole
/// number of batches of commands `one_len` bytes long, starting at byte `at` (a batch's
/// start), until `total` are claimed.
async fn producer(
    mut conn: Conn,
    ring: &[u8],
    mut at: usize,
    one_len: usize,
    pipeline: usize,
    claimed: &AtomicU64,
    total: u64,
) -> Result<Tally, ConnError> {
    let mut tally = Tally::default();
    loop {
        let k = claim(claimed, pipeline as u64, total) as usize;
        if k == 0 {
            return Ok(tally);
        }
        let sent = Instant::now();
        let replies = conn.batch(&ring[at..at + one_len * k], k).await?;
        at = (at + one_len * pipeline) % ring.len();
        tally.latencies.push(sent.elapsed());
        for reply in replies {
            match reply {
                Reply::Bulk(_) => tally.ok += 1,
                Reply::Error(e) => tally.error(format!("XADD: -{e}")),
                other => tally.error(format!("XADD answered {other:?}, not an id")),
            }
        }
    }
}

async fn join(
    tasks: Vec<tokio::task::JoinHandle<Result<Tally, ConnError>>>,
    phase: &str,
) -> Result<Tally, BenchError> {
    let mut total = Tally::default();
    for task in tasks {
        match task.await {
            Ok(Ok(tally)) => total.merge(tally),
            Ok(Err(source)) => {
                return Err(BenchError::Conn {
                    context: phase.into(),
                    source,
                })
            }
            Err(e) => return Err(BenchError::Check(format!("{phase}: a task failed: {e}"))),
        }
    }
    Ok(total)
}

// Consume --------------------------------------------------------------------------------

async fn consume(config: &Config, key: &str) -> Result<ConsumeReport, BenchError> {
    let mut conns = Vec::with_capacity(config.consumers);
    for _ in 0..config.consumers {
        conns.push(connect(&config.addr, "consume: connecting").await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(conns.len());
    for (i, conn) in conns.into_iter().enumerate() {
        let (key, count) = (key.to_owned(), config.count);
        tasks.push(tokio::spawn(async move {
            consumer(conn, &key, &format!("c{i}"), count).await
        }));
    }
    let tally = join(tasks, "consume").await?;
    let elapsed = start.elapsed();
    Ok(ConsumeReport {
        read: tally.ok,
        acked: tally.acked,
        errors: tally.errors,
        first_error: tally.first_error,
        pending: 0,
        elapsed,
        latency: Percentiles::of(tally.latencies),
    })
}

async fn consumer(mut conn: Conn, key: &str, name: &str, count: usize) -> Result<Tally, ConnError> {
    let mut tally = Tally::default();
    let count = count.to_string();
    let mut read_cmd = Vec::new();
    resp::encode(
        &mut read_cmd,
        &[
            b"XREADGROUP",
            b"GROUP",
            GROUP,
            name.as_bytes(),
            b"COUNT",
            count.as_bytes(),
            b"STREAMS",
            key.as_bytes(),
            b">",
        ],
    );
    let mut out = Vec::new();
    let mut to_ack: Vec<Vec<u8>> = Vec::new();
    loop {
        out.clear();
        let acking = !to_ack.is_empty();
        if acking {
            let mut args: Vec<&[u8]> = vec![b"XACK", key.as_bytes(), GROUP];
            args.extend(to_ack.iter().map(Vec::as_slice));
            resp::encode(&mut out, &args);
        }
        out.extend_from_slice(&read_cmd);
        let sent = Instant::now();
        let mut replies = conn.batch(&out, 1 + usize::from(acking)).await?.into_iter();
        tally.latencies.push(sent.elapsed());
        if acking {
            match replies.next() {
                Some(Reply::Integer(n)) if n >= 0 => tally.acked += n as u64,
                Some(Reply::Error(e)) => tally.error(format!("XACK: -{e}")),
                other => tally.error(format!("XACK answered {other:?}")),
            }
            to_ack.clear();
        }
        match replies.next() {
            Some(Reply::Nil) => return Ok(tally),
            Some(Reply::Array(streams)) => match entry_ids(streams, key) {
                Ok(ids) if ids.is_empty() => return Ok(tally),
                Ok(ids) => {
                    tally.ok += ids.len() as u64;
                    to_ack = ids;
                }
                Err(e) => {
                    tally.error(e);
                    return Ok(tally);
                }
            },
            Some(Reply::Error(e)) => {
                tally.error(format!("XREADGROUP: -{e}"));
                return Ok(tally);
            }
            other => {
                tally.error(format!("XREADGROUP answered {other:?}"));
                return Ok(tally);
            }
        }
    }
}

/// The ids in XREADGROUP's reply `[[key, [[id, fields], ...]]]`, checking its shape.
pub fn entry_ids(streams: Vec<Reply>, key: &str) -> Result<Vec<Vec<u8>>, String> {
    let shape = |what: &str| format!("XREADGROUP reply has the wrong shape: {what}");
    let mut streams = streams.into_iter();
    let (Some(Reply::Array(stream)), None) = (streams.next(), streams.next()) else {
        return Err(shape("expected exactly one stream"));
    };
    let mut stream = stream.into_iter();
    let (Some(Reply::Bulk(name)), Some(Reply::Array(entries)), None) =
        (stream.next(), stream.next(), stream.next())
    else {
        return Err(shape("expected [key, entries]"));
    };
    if name != key.as_bytes() {
        return Err(shape(&format!(
            "entries of key {:?}",
            String::from_utf8_lossy(&name)
        )));
    }
    let mut ids = Vec::with_capacity(entries.len());
    for entry in entries {
        let Reply::Array(entry) = entry else {
            return Err(shape("an entry is not an array"));
        };
        let mut entry = entry.into_iter();
        match (entry.next(), entry.next(), entry.next()) {
            (Some(Reply::Bulk(id)), Some(Reply::Array(_)), None) => ids.push(id),
            _ => return Err(shape("expected an entry [id, [field, value]]")),
        }
    }
    Ok(ids)
}

// Output ---------------------------------------------------------------------------------

fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn mb_per_sec(n: u64, size: usize, elapsed: Duration) -> f64 {
    rate(n, elapsed) * size as f64 / 1e6
}

fn micros(d: Duration) -> u128 {
    d.as_micros()
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".into(), json_str)
}

/// The machine-readable line of the produce phase (one JSON object).
pub fn produce_json(config: &Config, key: &str, r: &ProduceReport) -> String {
    format!(
        "{{\"phase\":\"produce\",\"addr\":{},\"key\":{},\"entries\":{},\"size\":{},\
         \"producers\":{},\"pipeline\":{},\"added\":{},\"errors\":{},\"first_error\":{},\
         \"seconds\":{:.6},\"entries_per_sec\":{:.1},\"mb_per_sec\":{:.3},\
         \"batch_p50_us\":{},\"batch_p99_us\":{}}}",
        json_str(&config.addr),
        json_str(key),
        config.entries,
        config.size,
        config.producers,
        config.pipeline,
        r.added,
        r.errors,
        json_opt(r.first_error.as_deref()),
        r.elapsed.as_secs_f64(),
        rate(r.added, r.elapsed),
        mb_per_sec(r.added, config.size, r.elapsed),
        micros(r.latency.p50),
        micros(r.latency.p99),
    )
}

/// The machine-readable line of the consume phase (one JSON object).
pub fn consume_json(config: &Config, key: &str, r: &ConsumeReport) -> String {
    format!(
        "{{\"phase\":\"consume\",\"addr\":{},\"key\":{},\"entries\":{},\"size\":{},\
         \"consumers\":{},\"count\":{},\"read\":{},\"acked\":{},\"pending\":{},\"errors\":{},\
         \"first_error\":{},\"seconds\":{:.6},\"entries_per_sec\":{:.1},\"mb_per_sec\":{:.3},\
         \"round_trip_p50_us\":{},\"round_trip_p99_us\":{}}}",
        json_str(&config.addr),
        json_str(key),
        config.entries,
        config.size,
        config.consumers,
        config.count,
        r.read,
        r.acked,
        r.pending,
        r.errors,
        json_opt(r.first_error.as_deref()),
        r.elapsed.as_secs_f64(),
        rate(r.read, r.elapsed),
        mb_per_sec(r.read, config.size, r.elapsed),
        micros(r.latency.p50),
        micros(r.latency.p99),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn produce_human(config: &Config, r: &ProduceReport) -> String {
    format!(
        "# produce: {} XADD of {} B over {} connections, pipeline {}: {:.2} s, {:.0} entries/s, \
         {:.1} MB/s of payload; latency per pipelined batch p50 {:.2} ms, p99 {:.2} ms; {} errors",
        r.added,
        config.size,
        config.producers,
        config.pipeline,
        r.elapsed.as_secs_f64(),
        rate(r.added, r.elapsed),
        mb_per_sec(r.added, config.size, r.elapsed),
        ms(r.latency.p50),
        ms(r.latency.p99),
        r.errors,
    )
}

fn consume_human(config: &Config, r: &ConsumeReport) -> String {
    format!(
        "# consume: {} read, {} acked by {} consumers, COUNT {} (XACK of batch i pipelined with \
         XREADGROUP of batch i+1): {:.2} s, {:.0} entries/s, {:.1} MB/s of payload; latency per \
         round trip p50 {:.2} ms, p99 {:.2} ms; {} pending; {} errors",
        r.read,
        r.acked,
        config.consumers,
        config.count,
        r.elapsed.as_secs_f64(),
        rate(r.read, r.elapsed),
        mb_per_sec(r.read, config.size, r.elapsed),
        ms(r.latency.p50),
        ms(r.latency.p99),
        r.pending,
        r.errors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_split_the_budget_exactly() {
        let claimed = AtomicU64::new(0);
        let mut got = Vec::new();
        loop {
            let k = claim(&claimed, 16, 50);
            if k == 0 {
                break;
            }
            got.push(k);
        }
        assert_eq!(got, vec![16, 16, 16, 2]);
        assert_eq!(claim(&claimed, 16, 50), 0);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<Duration> = (1..=200).rev().map(Duration::from_micros).collect();
        let p = Percentiles::of(samples);
        assert_eq!(p.p50, Duration::from_micros(100));
        assert_eq!(p.p99, Duration::from_micros(198));
        let empty = Percentiles::of(Vec::new());
        assert_eq!(empty.p99, Duration::ZERO);
    }

    #[test]
    fn entry_ids_reads_xreadgroup_replies_and_rejects_other_shapes() {
        let entry = |id: &str| {
            Reply::Array(vec![
                Reply::Bulk(id.as_bytes().to_vec()),
                Reply::Array(vec![
                    Reply::Bulk(b"data".to_vec()),
                    Reply::Bulk(b"x".to_vec()),
                ]),
            ])
        };
        let reply = |key: &str, entries: Vec<Reply>| {
            vec![Reply::Array(vec![
                Reply::Bulk(key.as_bytes().to_vec()),
                Reply::Array(entries),
            ])]
        };
        assert_eq!(
            entry_ids(reply("s", vec![entry("1-0"), entry("1-1")]), "s"),
            Ok(vec![b"1-0".to_vec(), b"1-1".to_vec()])
        );
        assert!(entry_ids(reply("other", vec![entry("1-0")]), "s").is_err());
        assert!(entry_ids(reply("s", vec![Reply::Integer(1)]), "s").is_err());
        assert!(entry_ids(Vec::new(), "s").is_err());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(json_opt(None), "null");
    }
}
