//! Recycled segment files: a deleted segment's file is renamed aside and a later
//! segment writes over it; recovery tells the file's old frames from damage.

use super::*;
use crate::format::{encode_frame, recycled_path, FRAME_HEADER};
use crate::fs::Fs;

/// 76-byte payloads: 100-byte frames, ten to a 1024-byte segment.
const LEN: usize = 76;

/// Payload length of the record at `offset` in the varied tests: segments then end
/// short of their limit by different amounts, so a recycled file is longer than the
/// segment sealed over it.
fn varied(offset: u64) -> usize {
    if offset.is_multiple_of(3) {
        276
    } else {
        LEN
    }
}

fn fill_with(log: &Log, n: u64, len: impl Fn(u64) -> usize) {
    for _ in 0..n {
        let off = log.end_offset();
        assert_eq!(
            log.append(off, &payload(off, len(off))).expect("append"),
            off
        );
    }
}

fn fill(log: &Log, n: u64) {
    fill_with(log, n, |_| LEN);
}

fn check_all(log: &Log) {
    check_records(log, |_| LEN);
}

fn recycled(fs: &SimFs) -> Vec<PathBuf> {
    names_with(fs, "seg")
}

fn file_len(fs: &SimFs, path: &Path) -> u64 {
    fs.open_read(path).and_then(|f| f.len()).expect("len")
}

/// Appends one record at a time, synced, until a roll took a recycled file. Returns
/// the new active segment's path.
fn roll_onto_a_recycled_file(log: &Log, fs: &SimFs) -> PathBuf {
    let before = log.stats().recycled_segments;
    while log.stats().recycled_segments == before {
        fill_with(log, 1, varied);
        log.sync().expect("sync");
    }
    names_with(fs, "log").pop().expect("active segment")
}

#[test]
fn deleted_segments_are_written_over_by_later_ones() {
    let fs = SimFs::default();
    let config = small_config(FsyncPolicy::Always);
    let (log, _) = open(&fs, config.clone()).expect("open");
    fill_with(&log, 60, varied);
    log.sync().expect("sync");
    let segments = names_with(&fs, "log").len();
    log.delete_before(55).expect("delete");
    let removed = segments - names_with(&fs, "log").len();
    assert!(removed >= 3, "{removed}");
    // Two files are kept (the default), the rest removed with every index.
    let dir = dir();
    assert_eq!(
        recycled(&fs),
        vec![recycled_path(&dir, 0), recycled_path(&dir, 1)]
    );
    assert_eq!(
        names_with(&fs, "index").len(),
        names_with(&fs, "log").len() - 1
    );

    // The active segment over a recycled file holds one record and the file's old
    // frames after it.
    let active = roll_onto_a_recycled_file(&log, &fs);
    assert!(file_len(&fs, &active) > 24 + 300, "old content kept");
    assert_eq!(recycled(&fs).len(), 1);
    fill_with(&log, 40, varied);
    log.sync().expect("sync");
    assert_eq!(log.stats().recycled_segments, 2);
    assert!(recycled(&fs).is_empty());
    check_records(&log, varied);

    // A clean reopen trusts every sealed segment's indexes (each file ends at its
    // last record) and ends the active one where its records do: nothing torn.
    log.close().expect("close");
    let (log, report) = open(&fs, config.clone()).expect("reopen");
    assert_eq!(report.truncated_bytes, 0);
    assert!(
        report.rebuilt_indexes.is_empty(),
        "{:?}",
        report.rebuilt_indexes
    );
    let end = report.end_offset;
    check_records(&log, varied);
    // Again with a recycled active segment.
    log.delete_before(end - 2).expect("delete");
    roll_onto_a_recycled_file(&log, &fs);
    fill_with(&log, 1, varied);
    let end = log.end_offset();
    log.close().expect("close");
    let (log, report) = open(&fs, config).expect("reopen");
    assert_eq!((report.truncated_bytes, report.end_offset), (0, end));
    assert!(report.rebuilt_indexes.is_empty());
    check_records(&log, varied);
}

#[test]
fn a_crash_in_a_recycled_segment_keeps_every_durable_record() {
    let fs = SimFs::default();
    let config = small_config(FsyncPolicy::Interval(std::time::Duration::from_secs(60)));
    let (log, _) = open(&fs, config.clone()).expect("open");
    fill_with(&log, 45, varied);
    log.delete_before(40).expect("delete");
    roll_onto_a_recycled_file(&log, &fs);
    let durable = log.durable_offset();
    assert_eq!(durable, log.end_offset());
    // Written but not fsynced: the crash reverts those bytes to the file's old frames.
    fill_with(&log, 2, varied);
    let t = std::time::Instant::now();
    while log.stats().writes == 0 || log.buffered_bytes() > 0 {
        assert!(t.elapsed().as_secs() < 10, "never written");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    fs.crash();
    drop(log);
    let (log, report) = open(&fs, config).expect("reopen");
    assert_eq!(report.end_offset, durable);
    assert_eq!(report.truncated_bytes, 0, "old frames are not a torn tail");
    check_records(&log, varied);
    fill_with(&log, 20, varied);
    check_records(&log, varied);
}

/// Overwrites the frame at `index` (0-based) of the segment at `base`, whose frames
/// all carry `len`-byte payloads, with a frame of the same size and offset `offset`,
/// as a recycled file's old content would be.
fn plant_stale_frame(fs: &SimFs, base: u64, len: usize, index: u64, offset: u64) {
    let mut frame = Vec::new();
    encode_frame(&mut frame, offset, 0, &payload(offset, len));
    assert_eq!(frame.len(), FRAME_HEADER + len);
    let file = fs.open(&seg(base, "log"), false).expect("open");
    let pos = crate::format::SEGMENT_HEADER as u64 + index * frame.len() as u64;
    file.write_all_at(&frame, pos).expect("write");
    file.sync().expect("sync");
}

#[test]
fn an_old_frame_before_valid_records_is_damage() {
    let fs = SimFs::default();
    let config = small_config(FsyncPolicy::Always);
    let (log, _) = open(&fs, config.clone()).expect("open");
    fill(&log, 16);
    log.close().expect("close");
    // In the active segment (10..16, not recycled), record 13 replaced by an old one:
    // 14 and 15 follow it.
    plant_stale_frame(&fs, 10, LEN, 3, 2);
    match open(&fs, config) {
        Err(LogError::Corrupt {
            path,
            position,
            reason,
        }) => {
            assert_eq!((path, position), (seg(10, "log"), 24 + 300));
            assert!(reason.contains("followed by valid records"), "{reason}");
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|x| x.1)),
    }
    assert!(crate::check::check_with(&fs, &dir())
        .expect("check")
        .0
        .damage
        .is_some());
}

/// New records that end inside one of the recycled file's old frames (150-byte frames
/// over 100-byte ones): a clean reopen and `check` see the end, not a torn tail.
#[test]
fn records_ending_inside_an_old_frame_end_cleanly() {
    let fs = SimFs::default();
    let config = small_config(FsyncPolicy::Always);
    let (log, _) = open(&fs, config.clone()).expect("open");
    fill(&log, 45);
    log.delete_before(40).expect("delete");
    let before = log.stats().recycled_segments;
    while log.stats().recycled_segments == before {
        fill_with(&log, 1, |_| 126);
        log.sync().expect("sync");
    }
    let active = names_with(&fs, "log").pop().expect("active");
    assert!(file_len(&fs, &active) >= 1000, "over a recycled file");
    let end = log.end_offset();
    let len = |o: u64| if o < 45 { LEN } else { 126 };
    log.close().expect("close");
    let report = crate::check::check_with(&fs, &dir()).expect("check").0;
    assert_eq!(report.damage, None);
    let (log, report) = open(&fs, config.clone()).expect("reopen");
    assert_eq!((report.end_offset, report.truncated_bytes), (end, 0));
    check_records(&log, len);
    // And after a crash.
    fill_with(&log, 2, |_| 126);
    log.sync().expect("sync");
    fs.crash();
    drop(log);
    let (log, report) = open(&fs, config).expect("reopen");
    assert_eq!((report.end_offset, report.truncated_bytes), (end + 2, 0));
    check_records(&log, len);
}

/// Over a recycled file a power loss can keep a later page of an unsynced write and
/// lose an earlier one. Damage followed by valid records within what could have been
/// unsynced is a torn tail, cut; further on, it is damage.
#[test]
fn damage_in_a_recycled_segment_is_torn_only_within_the_unsynced_window() {
    const BIG: usize = 8 << 10;
    let config = LogConfig {
        segment_bytes: 4 << 20,
        max_record_bytes: 64 << 10,
        max_buffered_bytes: 64 << 10,
        index_interval_bytes: 64 << 10,
        ..small_config(FsyncPolicy::Never)
    };
    // Window: a quarter segment (1 MiB) + the buffer (64 KiB): 136 frames of 8216 B.
    // Returns the file system and the base of an active segment over a recycled file
    // that holds 300 records.
    let setup = || {
        let fs = SimFs::default();
        let (log, _) = open(&fs, config.clone()).expect("open");
        fill_with(&log, 1600, |_| BIG);
        log.sync().expect("sync");
        log.delete_before(1500).expect("delete");
        while log.stats().recycled_segments == 0 {
            fill_with(&log, 1, |_| BIG);
            log.sync().expect("sync");
        }
        let active_base = log.end_offset() - 1;
        fill_with(&log, 299, |_| BIG);
        log.close().expect("close");
        assert_eq!(
            names_with(&fs, "log").pop(),
            Some(seg(active_base, "log")),
            "the last record rolled onto the recycled file"
        );
        (fs, active_base)
    };
    // 289 valid records (2.4 MB) follow the damage: beyond the window.
    let (fs, active_base) = setup();
    plant_stale_frame(&fs, active_base, BIG, 10, 2);
    assert!(matches!(
        open(&fs, config.clone()),
        Err(LogError::Corrupt { .. })
    ));
    // 39 follow: within it.
    let (fs, active_base) = setup();
    plant_stale_frame(&fs, active_base, BIG, 260, 2);
    let (log, report) = open(&fs, config).expect("torn tail");
    assert_eq!(report.end_offset, active_base + 260);
    assert!(report.truncated_bytes > 0);
    check_records(&log, |_| BIG);
}

#[test]
fn an_old_frame_in_a_sealed_segment_is_damage() {
    let fs = SimFs::default();
    let config = small_config(FsyncPolicy::Always);
    let (log, _) = open(&fs, config.clone()).expect("open");
    fill(&log, 25);
    log.close().expect("close");
    plant_stale_frame(&fs, 10, LEN, 9, 2);
    // The sealed segment's indexes still match its length: only a scan sees it.
    let report = crate::check::check_with(&fs, &dir()).expect("check").0;
    let damage = report.damage.expect("damage");
    assert_eq!((damage.path, damage.position), (seg(10, "log"), 24 + 900));
    // Without its indexes, open scans it and refuses.
    fs.remove(&seg(10, "index")).expect("remove");
    assert!(matches!(
        open(&fs, config),
        Err(LogError::Corrupt { position: 924, .. })
    ));
}

#[test]
fn the_pool_is_bounded_and_can_be_turned_off() {
    let fs = SimFs::default();
    let off = LogConfig {
        recycle_segments: 0,
        ..small_config(FsyncPolicy::Never)
    };
    let (log, _) = open(&fs, off.clone()).expect("open");
    fill(&log, 45);
    log.delete_before(40).expect("delete");
    assert!(recycled(&fs).is_empty(), "off: deleted files are removed");
    drop(log);

    let on = LogConfig {
        recycle_segments: 3,
        ..off.clone()
    };
    let (log, _) = open(&fs, on).expect("open");
    fill(&log, 40);
    log.delete_before(80).expect("delete");
    assert_eq!(recycled(&fs).len(), 3);
    drop(log);
    // Reopened with a smaller pool, the extra files go.
    let one = LogConfig {
        recycle_segments: 1,
        ..off
    };
    let (log, _) = open(&fs, one).expect("open");
    assert_eq!(recycled(&fs), vec![recycled_path(&dir(), 0)]);
    fill(&log, 10);
    log.sync().expect("sync");
    assert_eq!(log.stats().recycled_segments, 1);
    assert!(recycled(&fs).is_empty());
    check_all(&log);
}
