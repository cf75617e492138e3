//! kill -9 test: a child process (this test binary, re-executed in "child
//! mode") appends under `FsyncPolicy::Always` from 4 threads and prints each
//! offset once it is durable; the parent SIGKILLs it at random moments, then
//! checks every printed offset reads back with the payload derived from it. A fifth
//! thread deletes old records as the journal's rewrite does, so later segments are
//! written over recycled files (and the child is killed inside them).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use girder_log::{FsyncPolicy, Log, LogConfig};

const CHILD_ENV: &str = "GIRDER_LOG_KILL9_CHILD_DIR";
/// Records the child's deleter keeps (about 2 MB: some eight segments).
const KEEP: u64 = 2000;

fn payload(offset: u64) -> Vec<u8> {
    let len = 50 + (offset * 7919 % 1950) as usize;
    (0..len)
        .map(|i| (offset as usize).wrapping_mul(131).wrapping_add(i) as u8)
        .collect()
}

fn config() -> LogConfig {
    // Small segments so the child also rolls (and gets killed mid-roll).
    LogConfig {
        segment_bytes: 256 << 10,
        fsync: FsyncPolicy::Always,
        ..LogConfig::default()
    }
}

/// Polls a future on this thread (the log's futures need no runtime).
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
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
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn child(dir: &Path) -> ! {
    let (log, _) = Log::open(dir, config()).expect("child open");
    let log = Arc::new(log);
    // Offsets are assigned under a lock, as the streams engine does under its
    // keyspace lock, so the payload can be derived from the offset.
    let assign = Arc::new(Mutex::new(()));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (log, assign, out) = (log.clone(), assign.clone(), out.clone());
            std::thread::spawn(move || loop {
                let offset = {
                    let _g = assign.lock().expect("lock");
                    let next = log.end_offset();
                    let got = log.append(t, &payload(next)).expect("append");
                    assert_eq!(got, next);
                    got
                };
                if offset % 2 == 0 {
                    block_on(log.wait_durable(offset)).expect("wait_durable");
                } else {
                    log.sync().expect("sync");
                }
                use std::io::Write;
                let mut o = out.lock().expect("lock");
                writeln!(o, "{offset}").expect("stdout");
                o.flush().expect("flush");
            })
        })
        .collect();
    let deleter = log.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(20));
        let keep_from = deleter.durable_offset().saturating_sub(KEEP);
        deleter.delete_before(keep_from).expect("delete_before");
    });
    for t in threads {
        let _ = t.join();
    }
    std::process::exit(0)
}

#[test]
fn acknowledged_records_survive_kill_9() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let started = Instant::now();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id());
    let mut total_acked = 0;
    let mut recycled_seen = false;
    for round in 0..6 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "acknowledged_records_survive_kill_9",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.trim().parse::<u64>().ok())
                .collect::<Vec<u64>>()
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(150 + seed % 600));
        child.kill().expect("SIGKILL"); // SIGKILL on Unix
        let _ = child.wait();
        let acked = reader.join().expect("reader");
        assert!(
            !acked.is_empty(),
            "round {round}: the child acknowledged nothing"
        );
        total_acked += acked.len();

        recycled_seen |= std::fs::read_dir(dir.path())
            .expect("read_dir")
            .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("recycled-")));
        let (log, report) = Log::open(dir.path(), config()).expect("reopen after kill -9");
        let end = log.end_offset();
        let start = log.start_offset();
        for &offset in &acked {
            assert!(
                offset < end,
                "round {round}: acknowledged offset {offset} missing (end {end}, {report:?})"
            );
        }
        // Everything present, acknowledged or not, is a dense prefix with the right payloads.
        let mut next = start;
        while next < end {
            for r in log.read(next, 1 << 20).expect("read") {
                assert_eq!(r.offset, next);
                assert_eq!(
                    &r.payload[..],
                    &payload(r.offset)[..],
                    "round {round}: payload of {}",
                    r.offset
                );
                next += 1;
            }
        }
        log.close().expect("close");
    }
    assert!(
        total_acked > 100,
        "only {total_acked} acknowledgements in 6 rounds"
    );
    assert!(recycled_seen, "the child never recycled a segment");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
