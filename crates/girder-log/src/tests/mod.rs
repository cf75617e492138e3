//! Tests over the simulated file system: unit tests of the log's behaviour
//! and a model-based property test with crashes and injected faults.

mod model;
mod recycle;
mod unit;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::fs::sim::SimFs;
use crate::{FsyncPolicy, Log, LogConfig, LogError, RecoveryReport};

/// Polls a future to completion on the current thread.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

pub(crate) fn dir() -> PathBuf {
    PathBuf::from("/sim/log")
}

pub(crate) fn small_config(policy: FsyncPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        fsync: policy,
        max_record_bytes: 4096,
        ..LogConfig::default()
    }
}

pub(crate) fn open(fs: &SimFs, config: LogConfig) -> Result<(Log, RecoveryReport), LogError> {
    Log::open_with(Arc::new(fs.process()), &dir(), config)
}

pub(crate) fn payload(offset: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (offset as usize * 31 + i * 7) as u8)
        .collect()
}

/// Reads the whole log and checks every record: dense offsets from the start, each
/// payload [`payload`]`(offset, len(offset))`.
pub(crate) fn check_records(log: &Log, len: impl Fn(u64) -> usize) {
    let start = log.start_offset();
    let records = log.read(start, usize::MAX).expect("read");
    assert_eq!(records.len() as u64, log.end_offset() - start);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, start + i as u64);
        assert_eq!(
            &r.payload[..],
            &payload(r.offset, len(r.offset))[..],
            "payload of {}",
            r.offset
        );
    }
}

pub(crate) fn names_with(fs: &SimFs, ext: &str) -> Vec<PathBuf> {
    fs.names()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect()
}

pub(crate) fn seg(base: u64, ext: &str) -> PathBuf {
    crate::format::segment_path(Path::new("/sim/log"), base, ext)
}
