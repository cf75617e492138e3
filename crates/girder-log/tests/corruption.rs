//! Damage on a real file system: bit flips, truncation, deleted and empty
//! files, and `check` / `repair`.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use girder_log::{check, repair, FsyncPolicy, Log, LogConfig, LogError};

/// 24-byte segment header; frames of 24 + 76 = 100 bytes; 10 per segment.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        fsync: FsyncPolicy::Always,
        ..LogConfig::default()
    }
}

fn payload(offset: u64) -> Vec<u8> {
    (0..76).map(|i| (offset * 13 + i) as u8).collect()
}

fn seg(dir: &Path, base: u64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

/// A log with `n` records: segments at 0, 10, 20, ... the last one active.
fn make(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = Log::open(dir.path(), config()).expect("open");
    for o in 0..n {
        assert_eq!(log.append(o, &payload(o)).expect("append"), o);
    }
    log.close().expect("close");
    dir
}

fn flip(path: &Path, pos: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open for flip");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, pos).expect("read");
    f.write_all_at(&[b[0] ^ 0x20], pos).expect("write");
}

fn read_all(log: &Log) -> Result<Vec<u64>, LogError> {
    Ok(log
        .read(log.start_offset(), usize::MAX)?
        .into_iter()
        .map(|r| r.offset)
        .collect())
}

#[test]
fn bit_flip_in_sealed_segment_is_corrupt_on_read_and_check() {
    let dir = make(25);
    let path = seg(dir.path(), 10, "log");
    // Record 13 starts at 24 + 3 * 100; flip a payload byte.
    flip(&path, 24 + 300 + 40);
    let (log, _) =
        Log::open(dir.path(), config()).expect("sealed segments are trusted through their indexes");
    match log.read(11, usize::MAX) {
        Err(LogError::Corrupt {
            path: p, position, ..
        }) => assert_eq!((p, position), (path.clone(), 324)),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        log.read(0, usize::MAX).map(|r| r.len()).ok(),
        None,
        "a read through the damage fails"
    );
    assert_eq!(log.read(20, usize::MAX).expect("after the damage").len(), 5);
    drop(log);
    let report = check(dir.path()).expect("check");
    let damage = report.damage.expect("damage found");
    assert_eq!(
        (damage.path, damage.position, damage.reason.as_str()),
        (path, 324, "CRC mismatch")
    );
    assert_eq!(report.records, 13);

    let fixed = repair(dir.path()).expect("repair");
    assert_eq!(fixed.end_offset, 13);
    assert_eq!(fixed.removed_segments, vec![seg(dir.path(), 20, "log")]);
    assert_eq!(fixed.truncated_bytes, 700);
    let (log, report) = Log::open(dir.path(), config()).expect("opens after repair");
    assert_eq!(report.end_offset, 13);
    assert_eq!(read_all(&log).expect("read"), (0..13).collect::<Vec<_>>());
    assert!(check(dir.path()).expect("check").damage.is_none());
}

#[test]
fn bit_flip_in_middle_of_active_segment_refuses_to_open() {
    let dir = make(25);
    let path = seg(dir.path(), 20, "log");
    flip(&path, 24 + 100 + 30); // record 21 of 20..25
    match Log::open(dir.path(), config()) {
        Err(LogError::Corrupt {
            path: p,
            position,
            reason,
        }) => {
            assert_eq!((p, position), (path, 124));
            assert!(reason.contains("followed by valid records"), "{reason}");
        }
        Ok(_) => panic!("opened a log with a damaged active segment"),
        Err(e) => panic!("expected Corrupt, got {e}"),
    }
    let fixed = repair(dir.path()).expect("repair");
    assert_eq!(fixed.end_offset, 21);
    let (log, _) = Log::open(dir.path(), config()).expect("open after repair");
    assert_eq!(log.end_offset(), 21);
    assert_eq!(log.append(0, &payload(21)).expect("append"), 21);
}

#[test]
fn damaged_last_frame_of_active_segment_is_a_torn_tail() {
    let dir = make(25);
    let path = seg(dir.path(), 20, "log");
    flip(&path, 24 + 400 + 50); // the last record, 24
    let (log, report) = Log::open(dir.path(), config()).expect("a torn tail is not corruption");
    assert_eq!((report.end_offset, report.truncated_bytes), (24, 100));
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), 24 + 400);
    assert_eq!(read_all(&log).expect("read").len(), 24);
}

#[test]
fn truncated_tail_is_cut_and_reported() {
    let dir = make(25);
    let path = seg(dir.path(), 20, "log");
    let f = OpenOptions::new().write(true).open(&path).expect("open");
    f.set_len(24 + 300 + 57).expect("truncate mid-frame");
    drop(f);
    let (log, report) = Log::open(dir.path(), config()).expect("open");
    assert_eq!(
        (report.end_offset, report.truncated_bytes, report.records),
        (23, 57, 23)
    );
    assert_eq!(read_all(&log).expect("read"), (0..23).collect::<Vec<_>>());
    assert_eq!(log.append(0, &payload(23)).expect("append continues"), 23);
    log.close().expect("close");
    let (log, report) = Log::open(dir.path(), config()).expect("reopen");
    assert_eq!((report.end_offset, report.truncated_bytes), (24, 0));
    assert_eq!(read_all(&log).expect("read").len(), 24);
}

#[test]
fn zero_filled_tail_is_torn_not_corrupt() {
    let dir = make(5);
    let path = seg(dir.path(), 0, "log");
    let f = OpenOptions::new().write(true).open(&path).expect("open");
    f.set_len(24 + 500 + 4096)
        .expect("extend with zeros, as after a power loss");
    drop(f);
    let (_, report) = Log::open(dir.path(), config()).expect("open");
    assert_eq!((report.end_offset, report.truncated_bytes), (5, 4096));
}

#[test]
fn deleted_index_is_rebuilt() {
    let dir = make(25);
    std::fs::remove_file(seg(dir.path(), 0, "index")).expect("rm index");
    std::fs::write(seg(dir.path(), 10, "timeindex"), b"").expect("empty timeindex");
    let report = check(dir.path()).expect("check");
    assert!(report.damage.is_none(), "missing indexes are not damage");
    assert_eq!(
        report.invalid_indexes,
        vec![seg(dir.path(), 0, "index"), seg(dir.path(), 10, "index")]
    );
    let (log, report) = Log::open(dir.path(), config()).expect("open");
    assert_eq!(report.rebuilt_indexes.len(), 4);
    assert!(report
        .rebuilt_indexes
        .contains(&seg(dir.path(), 0, "index")));
    assert!(report
        .rebuilt_indexes
        .contains(&seg(dir.path(), 10, "timeindex")));
    assert_eq!(read_all(&log).expect("read").len(), 25);
    assert_eq!(log.offset_for_timestamp(17).expect("ts"), Some(17));
}

#[test]
fn empty_files() {
    // An empty directory is a new log.
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, report) = Log::open(dir.path(), config()).expect("open empty dir");
    assert_eq!((report.segments, report.records), (1, 0));
    drop(log);
    // An empty active segment file (crash while creating it) gets its header back.
    let dir = make(15);
    std::fs::write(seg(dir.path(), 10, "log"), b"").expect("empty active");
    std::fs::remove_file(seg(dir.path(), 10, "index")).ok();
    let (log, report) = Log::open(dir.path(), config()).expect("open");
    assert_eq!(report.end_offset, 10);
    assert_eq!(log.append(0, &payload(10)).expect("append"), 10);
    drop(log);
    // An empty sealed segment file is corruption: its records are gone.
    let dir = make(25);
    std::fs::write(seg(dir.path(), 10, "log"), b"").expect("empty sealed");
    assert!(matches!(
        Log::open(dir.path(), config()),
        Err(LogError::Corrupt { position: 0, .. })
    ));
    assert_eq!(repair(dir.path()).expect("repair").end_offset, 10);
    assert_eq!(
        Log::open(dir.path(), config())
            .expect("open")
            .0
            .end_offset(),
        10
    );
}

#[test]
fn damaged_checkpoint_is_corrupt_and_repairable() {
    let dir = make(25);
    {
        let (log, _) = Log::open(dir.path(), config()).expect("open");
        log.delete_before(12).expect("delete_before");
        assert_eq!(log.start_offset(), 12);
    }
    let (log, report) = Log::open(dir.path(), config()).expect("reopen");
    assert_eq!(report.start_offset, 12);
    assert_eq!(read_all(&log).expect("read").first(), Some(&12));
    drop(log);
    flip(&dir.path().join("log-start-offset"), 9);
    assert!(matches!(
        Log::open(dir.path(), config()),
        Err(LogError::Corrupt { .. })
    ));
    let fixed = repair(dir.path()).expect("repair");
    assert!(fixed.damage.is_some());
    // Without the checkpoint the start falls back to the first segment.
    assert_eq!(
        Log::open(dir.path(), config())
            .expect("open")
            .1
            .start_offset,
        10
    );
}
