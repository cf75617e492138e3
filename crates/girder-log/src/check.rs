//! Offline verification (`check`) and repair (`repair`) of a log directory.
//!
//! `check` reads every byte: segment headers, every frame's CRC and offset,
//! continuity between segments, the checkpoint; index files are compared with
//! what a rebuild would produce only as far as "valid for this segment".
//! `repair` truncates at the first damage and deletes every later segment —
//! records after the damage are lost, by design: a log is a prefix, and a
//! record after a hole cannot be trusted to be the one that was written.

use std::path::Path;
use std::sync::Arc;

use crate::config::{CheckReport, Damage, LogConfig, RepairReport};
use crate::error::{IoContext, LogError};
use crate::format::{self, SEGMENT_HEADER};
use crate::fs::{Fs, RealFs};
use crate::log::{list_segments, read_checkpoint, write_checkpoint, Log};
use crate::segment::{self, Segment};

/// Verifies every CRC in the log at `dir` and reports the first damage.
/// Read-only. `Err` only when the directory cannot be read at all.
pub fn check(dir: &Path) -> Result<CheckReport, LogError> {
    check_with(&RealFs, dir).map(|(r, _)| r)
}

/// Truncates the log at `dir` at its first damage, deleting every later
/// segment (documented data loss: the records after the damage), and rebuilds
/// the indexes, so that [`Log::open`] succeeds afterwards.
pub fn repair(dir: &Path) -> Result<RepairReport, LogError> {
    repair_with(Arc::new(RealFs), dir)
}

/// Where the damage is: the index in the segment list and the damage itself.
type Found = Option<(usize, Damage)>;

pub(crate) fn check_with(fs: &dyn Fs, dir: &Path) -> Result<(CheckReport, Found), LogError> {
    let cfg = LogConfig::default();
    let mut report = CheckReport::default();
    let bases = list_segments(fs, dir, false)?;
    let mut prev_end: Option<u64> = None;
    let mut found = None;
    for (i, &base) in bases.iter().enumerate() {
        report.segments += 1;
        let path = format::segment_path(dir, base, "log");
        let damage = |position: u64, reason: String| Damage {
            path: path.clone(),
            position,
            reason,
        };
        let file = fs.open_read(&path).at(&path)?;
        let len = file.len().at(&path)?;
        let mut header = [0u8; SEGMENT_HEADER];
        let got = file.read_full_at(&mut header, 0).at(&path)?;
        let flags = match format::check_segment_header(&header[..got], base) {
            Ok(flags) => flags,
            Err(reason) => {
                found = Some((i, damage(0, reason)));
                break;
            }
        };
        if let Some(end) = prev_end {
            if end != base {
                found = Some((
                    i,
                    damage(
                        0,
                        format!("segment starts at offset {base}, previous ends at {end}"),
                    ),
                ));
                break;
            }
        }
        let scan = segment::scan(
            base,
            path.clone(),
            file.clone(),
            len,
            u32::MAX - 64,
            cfg.index_interval_bytes,
            // As open reads it: the old content after the last record of an active
            // segment started over a recycled file is not damage.
            i + 1 == bases.len() && flags & format::SEGMENT_RECYCLED != 0,
        )?;
        report.records += scan.segment.end - base;
        report.bytes += scan.segment.size;
        prev_end = Some(scan.segment.end);
        if i + 1 < bases.len() {
            let mut probe = Segment::empty(base, path.clone(), file);
            if probe.load_indexes(fs, dir, len).is_err() {
                report
                    .invalid_indexes
                    .push(format::segment_path(dir, base, "index"));
            }
        }
        if let Some((pos, reason)) = scan.damage {
            found = Some((i, damage(pos, reason)));
            break;
        }
    }
    if found.is_none() {
        if let Err(LogError::Corrupt {
            path,
            position,
            reason,
        }) = read_checkpoint(fs, dir)
        {
            found = Some((
                usize::MAX,
                Damage {
                    path,
                    position,
                    reason,
                },
            ));
        }
    }
    report.damage = found.as_ref().map(|(_, d)| d.clone());
    Ok((report, found))
}

pub(crate) fn repair_with(fs: Arc<dyn Fs>, dir: &Path) -> Result<RepairReport, LogError> {
    let (_, found) = check_with(&*fs, dir)?;
    let mut report = RepairReport::default();
    let bases = list_segments(&*fs, dir, false)?;
    if let Some((i, damage)) = found {
        tracing::warn!(path = %damage.path.display(), position = damage.position, reason = damage.reason,
            "girder-log repair: truncating at the first damage; later records are lost");
        if i == usize::MAX {
            // The checkpoint is unreadable: fall back to the first segment.
            let cp = dir.join(format::CHECKPOINT_FILE);
            fs.remove(&cp).at(&cp)?;
        } else {
            let base = bases[i];
            let path = format::segment_path(dir, base, "log");
            let file = fs.open(&path, false).at(&path)?;
            let len = file.len().at(&path)?;
            let keep = damage.position.max(SEGMENT_HEADER as u64);
            if damage.position < SEGMENT_HEADER as u64 {
                file.set_len(0).at(&path)?;
                file.write_all_at(&format::encode_segment_header(base, 0), 0)
                    .at(&path)?;
            }
            file.set_len(keep).at(&path)?;
            file.sync().at(&path)?;
            report.truncated_bytes = len.saturating_sub(keep);
            for &b in &bases[i + 1..] {
                let p = format::segment_path(dir, b, "log");
                fs.remove(&p).at(&p)?;
                report.removed_segments.push(p);
            }
            for &b in &bases[i..] {
                for ext in ["index", "timeindex"] {
                    let p = format::segment_path(dir, b, ext);
                    if fs.exists(&p).at(&p)? {
                        fs.remove(&p).at(&p)?;
                    }
                }
            }
            // A checkpoint past the new end would make open refuse the log.
            if let Ok(Some(start)) = read_checkpoint(&*fs, dir) {
                let scan =
                    segment::scan(base, path.clone(), file, keep, u32::MAX - 64, 4096, false)?;
                if start > scan.segment.end {
                    write_checkpoint(&*fs, dir, scan.segment.end)?;
                }
            }
            fs.sync_dir(dir).at(dir)?;
        }
        report.damage = Some(damage);
    }
    let config = LogConfig {
        fsync: crate::FsyncPolicy::Never,
        max_record_bytes: 1 << 30,
        ..LogConfig::default()
    };
    let config = LogConfig {
        segment_bytes: u64::from(u32::MAX) - (1 << 30) - 64,
        ..config
    };
    let (log, recovered) = Log::open_with(fs, dir, config)?;
    report.rebuilt_indexes = recovered.rebuilt_indexes;
    report.end_offset = recovered.end_offset;
    log.close()?;
    Ok(report)
}
