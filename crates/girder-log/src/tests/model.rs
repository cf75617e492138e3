//! Model-based test: random appends, syncs, reads, deletes, clean reopens,
//! crashes and injected faults, checked against a `Vec` of records.
//!
//! Checked after every reopen:
//! * every offset that was below `durable_offset()` before a crash is read
//!   back identical (a crash may keep more, never less);
//! * the log is a prefix of what was appended: offsets dense from the start
//!   offset, no holes, no duplicates, payloads and timestamps identical;
//! * once a write or fsync failed, appends are refused with `Failed`.

use proptest::prelude::*;

use super::*;
use crate::fs::sim::Faults;

#[derive(Debug, Clone)]
enum Op {
    Append { n: usize, len: usize },
    Sync,
    Read { from: u8, max: usize },
    DeleteBefore(u8),
    Reopen,
    Crash,
    FailWrite(u64),
    ShortWrite(u64),
    FailFsync(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..6, 0usize..300).prop_map(|(n, len)| Op::Append { n, len }),
        2 => Just(Op::Sync),
        2 => (any::<u8>(), 0usize..2000).prop_map(|(from, max)| Op::Read { from, max }),
        1 => any::<u8>().prop_map(Op::DeleteBefore),
        1 => Just(Op::Reopen),
        2 => Just(Op::Crash),
        1 => (1u64..4).prop_map(Op::FailWrite),
        1 => (1u64..4).prop_map(Op::ShortWrite),
        1 => (1u64..4).prop_map(Op::FailFsync),
    ]
}

fn policy() -> impl Strategy<Value = FsyncPolicy> {
    prop_oneof![
        Just(FsyncPolicy::Always),
        Just(FsyncPolicy::Never),
        Just(FsyncPolicy::Interval(std::time::Duration::from_millis(1))),
    ]
}

struct Model {
    /// (timestamp, payload) by offset.
    records: Vec<(u64, Vec<u8>)>,
    start: u64,
    failed: bool,
    /// Offsets below this were fsynced (by `sync` or a clean close).
    synced: u64,
}

fn model_payload(offset: u64, len: usize, salt: u64) -> Vec<u8> {
    (0..len)
        .map(|i| (offset.wrapping_mul(131).wrapping_add(salt) as usize + i) as u8)
        .collect()
}

/// Opens, retrying once without faults if an armed fault fired during recovery.
fn reopen(fs: &SimFs, config: &LogConfig) -> (Log, RecoveryReport) {
    let r = open(fs, config.clone());
    if std::env::var_os("MODEL_DEBUG").is_some() {
        eprintln!(
            "  open: {:?} files {:?}",
            r.as_ref().map(|x| &x.1),
            fs.names()
        );
    }
    match r {
        Ok(x) => x,
        Err(_) => {
            fs.disarm();
            open(fs, config.clone()).expect("open without faults")
        }
    }
}

fn verify(log: &Log, m: &Model) {
    assert_eq!(log.start_offset(), m.start, "start offset");
    assert_eq!(log.end_offset(), m.records.len() as u64, "end offset");
    let got = log.read(m.start, usize::MAX).expect("read all");
    assert_eq!(got.len() as u64, m.records.len() as u64 - m.start);
    for r in got {
        let (ts, p) = &m.records[r.offset as usize];
        assert_eq!(
            (&r.timestamp_ms, &r.payload[..]),
            (ts, &p[..]),
            "record {}",
            r.offset
        );
    }
}

/// After a reopen the log must hold a prefix of the model no shorter than
/// what was durable; the model forgets the rest.
fn after_reopen(log: &Log, m: &mut Model, durable: u64) {
    let end = log.end_offset();
    assert!(
        end >= durable,
        "lost durable records: end {end} < durable {durable}"
    );
    assert!(
        end <= m.records.len() as u64,
        "end {end} past what was appended ({})",
        m.records.len()
    );
    m.records.truncate(end as usize);
    m.failed = false;
    m.synced = m.synced.min(end);
    verify(log, m);
}

fn run(policy: FsyncPolicy, ops: Vec<Op>) {
    let fs = SimFs::default();
    let config = LogConfig {
        segment_bytes: 700,
        index_interval_bytes: 100,
        ..small_config(policy)
    };
    let (mut log, _) = open(&fs, config.clone()).expect("open");
    let mut m = Model {
        records: Vec::new(),
        start: 0,
        failed: false,
        synced: 0,
    };
    let mut salt = 0;
    let debug = std::env::var_os("MODEL_DEBUG").is_some();
    for op in ops {
        if debug {
            eprintln!(
                "{op:?}: end {} durable {} model {} synced {}",
                log.end_offset(),
                log.durable_offset(),
                m.records.len(),
                m.synced
            );
        }
        match op {
            Op::Append { n, len } => {
                let base = m.records.len() as u64;
                salt += 1;
                let payloads: Vec<Vec<u8>> = (0..n as u64)
                    .map(|i| model_payload(base + i, len, salt))
                    .collect();
                let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
                match log.append_batch(salt * 10, &refs) {
                    Ok(range) => {
                        assert!(!m.failed, "a failed log accepted an append");
                        assert_eq!(range, base..base + n as u64);
                        m.records
                            .extend(payloads.into_iter().map(|p| (salt * 10, p)));
                    }
                    Err(LogError::Failed) => m.failed = true,
                    Err(e) => panic!("append: {e}"),
                }
            }
            Op::Sync => match log.sync() {
                Ok(()) => {
                    assert!(!m.failed);
                    assert_eq!(log.durable_offset(), m.records.len() as u64);
                    m.synced = m.records.len() as u64;
                }
                Err(LogError::Failed) => m.failed = true,
                Err(e) => panic!("sync: {e}"),
            },
            Op::Read { from, max } => {
                let span = m.records.len() as u64 - m.start;
                let from = m.start + u64::from(from) * span / 255;
                match log.read(from, max) {
                    Ok(got) => {
                        let mut bytes = 0;
                        for (i, r) in got.iter().enumerate() {
                            assert!(bytes < max || i == 0, "read past max_bytes");
                            assert_eq!(r.offset, from + i as u64);
                            assert_eq!(&r.payload[..], &m.records[r.offset as usize].1[..]);
                            bytes += r.payload.len();
                        }
                        let more = from + (got.len() as u64) < m.records.len() as u64;
                        assert!(
                            !more || bytes >= max,
                            "short read: {bytes} < {max} with records left"
                        );
                    }
                    Err(LogError::Failed) => m.failed = true,
                    Err(e) => panic!("read: {e}"),
                }
            }
            Op::DeleteBefore(frac) => {
                fs.disarm();
                let span = m.records.len() as u64 - m.start;
                let to = m.start + u64::from(frac) * span / 255 / 2;
                match log.delete_before(to) {
                    Ok(()) => {
                        m.start = m.start.max(to);
                        m.synced = m.synced.max(to);
                    }
                    Err(LogError::Failed) => m.failed = true,
                    Err(e) => panic!("delete_before: {e}"),
                }
            }
            Op::Reopen => {
                let durable = log.durable_offset();
                if log.close().is_ok() {
                    m.synced = m.records.len() as u64;
                }
                let (l, _) = reopen(&fs, &config);
                log = l;
                after_reopen(&log, &mut m, durable);
            }
            Op::Crash => {
                // Under `Never`, "durable" means written to the OS, which a
                // process crash keeps and a machine crash does not.
                let durable = match policy {
                    FsyncPolicy::Never => m.synced,
                    _ => log.durable_offset(),
                };
                fs.crash();
                drop(log);
                let (l, _) = reopen(&fs, &config);
                log = l;
                after_reopen(&log, &mut m, durable);
            }
            Op::FailWrite(n) => fs.arm(Faults {
                fail_write: Some(n),
                ..Faults::default()
            }),
            Op::ShortWrite(n) => fs.arm(Faults {
                short_write: Some(n),
                ..Faults::default()
            }),
            Op::FailFsync(n) => fs.arm(Faults {
                fail_fsync: Some(n),
                ..Faults::default()
            }),
        }
        if m.failed {
            assert!(
                matches!(log.append(0, b"refused"), Err(LogError::Failed)),
                "failed log took an append"
            );
            assert!(matches!(log.sync(), Err(LogError::Failed)));
        }
    }
    fs.disarm();
    let durable = log.durable_offset();
    drop(log);
    let (log, _) = reopen(&fs, &config);
    after_reopen(&log, &mut m, durable);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model_under_crashes_and_faults(policy in policy(), ops in prop::collection::vec(op(), 1..60)) {
        run(policy, ops);
    }
}
