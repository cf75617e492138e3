//! One segment: a `.log` file of frames starting at `base`, and its sparse
//! offset and time indexes (in memory; written to `.index`/`.timeindex` when
//! the segment is sealed).
//!
//! Invariants:
//! * frames in a segment have the dense offsets `base..end`, in file order,
//!   starting right after the header;
//! * `size` only covers whole frames handed to the OS: readers never read past
//!   it, so they never see a half-written frame;
//! * offset index entries are `(offset - base, position)` with both strictly
//!   increasing; time index entries are `(max timestamp of every record up to
//!   and including that offset, offset - base)`, both strictly increasing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoContext, LogError};
use crate::format::{self, Decoded, Frame, IndexHeader, FRAME_HEADER, SEGMENT_HEADER};
use crate::fs::{Fs, FsFile};

/// How many bytes a frame cursor reads at once.
const CHUNK: usize = 256 * 1024;

/// A segment as the log keeps it in memory.
pub(crate) struct Segment {
    pub base: u64,
    /// Next offset after the segment's last record.
    pub end: u64,
    /// Bytes of header and whole frames.
    pub size: u64,
    pub path: PathBuf,
    pub file: Arc<dyn FsFile>,
    pub index: Vec<(u32, u32)>,
    pub time_index: Vec<(u64, u32)>,
    /// Largest timestamp in the segment (None when empty).
    pub max_ts: Option<u64>,
    /// Timestamp of the first record (segment_ms rolls on it).
    pub first_ts: Option<u64>,
    /// Bytes appended since the last offset index entry.
    bytes_since_index: u64,
}

impl Segment {
    /// An empty segment over an open file whose header is in place.
    pub fn empty(base: u64, path: PathBuf, file: Arc<dyn FsFile>) -> Self {
        Segment {
            base,
            end: base,
            size: SEGMENT_HEADER as u64,
            path,
            file,
            index: Vec::new(),
            time_index: Vec::new(),
            max_ts: None,
            first_ts: None,
            bytes_since_index: 0,
        }
    }

    /// Accounts for one frame written at `self.size`, adding index entries
    /// every `interval` bytes.
    pub fn on_append(&mut self, offset: u64, timestamp_ms: u64, len: u64, interval: u32) {
        debug_assert_eq!(offset, self.end);
        let rel = (offset - self.base) as u32;
        let max_ts = self.max_ts.map_or(timestamp_ms, |m| m.max(timestamp_ms));
        if self.first_ts.is_none() {
            self.first_ts = Some(timestamp_ms);
        }
        if self.end > self.base && self.bytes_since_index >= u64::from(interval) {
            self.index.push((rel, self.size as u32));
            self.bytes_since_index = 0;
            if self.time_index.last().is_none_or(|&(t, _)| max_ts > t) {
                self.time_index.push((max_ts, rel));
            }
        }
        self.bytes_since_index += len;
        self.max_ts = Some(max_ts);
        self.end = offset + 1;
        self.size += len;
    }

    /// File position to start scanning from to find `offset` (the greatest
    /// indexed position at or before it).
    pub fn position_for(&self, offset: u64) -> u64 {
        let rel = offset.saturating_sub(self.base).min(u64::from(u32::MAX)) as u32;
        match self.index.partition_point(|&(r, _)| r <= rel) {
            0 => SEGMENT_HEADER as u64,
            i => u64::from(self.index[i - 1].1),
        }
    }

    /// First offset that can hold a timestamp `>= ts`, from the time index.
    pub fn scan_start_for_timestamp(&self, ts: u64) -> u64 {
        match self.time_index.partition_point(|&(t, _)| t < ts) {
            0 => self.base,
            i => self.base + u64::from(self.time_index[i - 1].1) + 1,
        }
    }

    /// A cheap handle for reading outside the log's locks.
    pub fn view(&self) -> SegView {
        SegView {
            base: self.base,
            end: self.end,
            size: self.size,
            path: self.path.clone(),
            file: self.file.clone(),
        }
    }

    /// Adds the final time index entry (the segment's max timestamp at its
    /// last offset) and encodes both index files.
    pub fn seal(&mut self) -> IndexFiles {
        if let (Some(max), true) = (self.max_ts, self.end > self.base) {
            if self.time_index.last().is_none_or(|&(t, _)| max > t) {
                self.time_index
                    .push((max, (self.end - 1 - self.base) as u32));
            }
        }
        let mut entries = Vec::with_capacity(self.index.len() * format::OFFSET_ENTRY);
        for (rel, pos) in &self.index {
            entries.extend_from_slice(&rel.to_le_bytes());
            entries.extend_from_slice(&pos.to_le_bytes());
        }
        let header = IndexHeader {
            base_offset: self.base,
            log_size: self.size,
            value: self.end,
        };
        let index = format::encode_index(
            format::OFFSET_INDEX_MAGIC,
            header,
            &entries,
            format::OFFSET_ENTRY,
        );
        let mut entries = Vec::with_capacity(self.time_index.len() * format::TIME_ENTRY);
        for (ts, rel) in &self.time_index {
            entries.extend_from_slice(&ts.to_le_bytes());
            entries.extend_from_slice(&rel.to_le_bytes());
        }
        let header = IndexHeader {
            value: self.max_ts.unwrap_or(0),
            ..header
        };
        let time_index = format::encode_index(
            format::TIME_INDEX_MAGIC,
            header,
            &entries,
            format::TIME_ENTRY,
        );
        IndexFiles {
            base: self.base,
            index,
            time_index,
        }
    }

    /// Loads a sealed segment's indexes; `Err` says why they cannot be trusted.
    pub fn load_indexes(&mut self, fs: &dyn Fs, dir: &Path, file_len: u64) -> Result<(), String> {
        let read = |ext: &str| -> Result<Vec<u8>, String> {
            let p = format::segment_path(dir, self.base, ext);
            let f = fs
                .open_read(&p)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            f.read_all().map_err(|e| format!("{}: {e}", p.display()))
        };
        let ibuf = read("index")?;
        let (ih, entries) =
            format::decode_index(&ibuf, format::OFFSET_INDEX_MAGIC, format::OFFSET_ENTRY)?;
        let tbuf = read("timeindex")?;
        let (th, tentries) =
            format::decode_index(&tbuf, format::TIME_INDEX_MAGIC, format::TIME_ENTRY)?;
        for h in [ih, th] {
            if h.base_offset != self.base || h.log_size != file_len {
                return Err(format!(
                    "index describes base {} size {}, segment is base {} size {file_len}",
                    h.base_offset, h.log_size, self.base
                ));
            }
        }
        if ih.value < self.base {
            return Err("index end offset before base".into());
        }
        let span = ih.value - self.base;
        let mut index = Vec::with_capacity(entries.len() / format::OFFSET_ENTRY);
        for e in entries.chunks_exact(format::OFFSET_ENTRY) {
            let (rel, pos) = (format::u32_at(e, 0), format::u32_at(e, 4));
            let ok = index.last().is_none_or(|&(r, p)| rel > r && pos > p)
                && u64::from(rel) < span
                && u64::from(pos) >= SEGMENT_HEADER as u64
                && u64::from(pos) < file_len;
            if !ok {
                return Err(format!(
                    "offset index entry ({rel}, {pos}) out of order or range"
                ));
            }
            index.push((rel, pos));
        }
        let mut time_index = Vec::with_capacity(tentries.len() / format::TIME_ENTRY);
        for e in tentries.chunks_exact(format::TIME_ENTRY) {
            let (ts, rel) = (format::u64_at(e, 0), format::u32_at(e, 8));
            let ok =
                time_index.last().is_none_or(|&(t, r)| ts > t && rel > r) && u64::from(rel) < span;
            if !ok {
                return Err(format!(
                    "time index entry ({ts}, {rel}) out of order or range"
                ));
            }
            time_index.push((ts, rel));
        }
        self.end = ih.value;
        self.size = file_len;
        self.max_ts = (span > 0).then_some(th.value);
        self.index = index;
        self.time_index = time_index;
        Ok(())
    }
}

/// Encoded index files of a sealed segment, written outside the log's locks.
pub(crate) struct IndexFiles {
    base: u64,
    index: Vec<u8>,
    time_index: Vec<u8>,
}

impl IndexFiles {
    /// Writes `.index` and `.timeindex`, each fsynced.
    pub fn write(&self, fs: &dyn Fs, dir: &Path) -> Result<(), LogError> {
        write_file(
            fs,
            &format::segment_path(dir, self.base, "index"),
            &self.index,
        )?;
        write_file(
            fs,
            &format::segment_path(dir, self.base, "timeindex"),
            &self.time_index,
        )
    }
}

/// What a reader needs of a segment, cloned out of the lock.
#[derive(Clone)]
pub(crate) struct SegView {
    pub base: u64,
    pub end: u64,
    pub size: u64,
    pub path: PathBuf,
    pub file: Arc<dyn FsFile>,
}

/// Creates or replaces `path` with `bytes`, fsynced.
pub(crate) fn write_file(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let f = fs.open(path, true).at(path)?;
    f.set_len(0).at(path)?;
    f.write_all_at(bytes, 0).at(path)?;
    f.sync().at(path)
}

/// One step of a [`FrameCursor`].
pub(crate) enum Step<'a> {
    /// A frame that starts at `pos`.
    Frame { pos: u64, frame: Frame<'a> },
    /// The cursor reached its end exactly at a frame boundary.
    End,
    /// The frame at `pos` runs past the end.
    Torn { pos: u64 },
    /// The bytes at `pos` are not a valid frame.
    Invalid { pos: u64, reason: &'static str },
}

/// Reads frames sequentially from `[pos, end)` of a file, in chunks.
pub(crate) struct FrameCursor<'f> {
    file: &'f dyn FsFile,
    end: u64,
    buf: Vec<u8>,
    /// File position of `buf[0]`.
    buf_pos: u64,
    cur: usize,
    max_payload: u32,
    /// Bytes the next refill reads at least; doubles up to [`CHUNK`].
    chunk: usize,
}

impl<'f> FrameCursor<'f> {
    pub fn new(file: &'f dyn FsFile, pos: u64, end: u64, max_payload: u32) -> Self {
        Self::with_first_chunk(file, pos, end, max_payload, CHUNK)
    }

    /// A cursor whose first read is about `first_chunk` bytes (a reader that wants a
    /// few small records does not read and copy [`CHUNK`] bytes), doubling after.
    pub fn with_first_chunk(
        file: &'f dyn FsFile,
        pos: u64,
        end: u64,
        max_payload: u32,
        first_chunk: usize,
    ) -> Self {
        FrameCursor {
            file,
            end,
            buf: Vec::new(),
            buf_pos: pos,
            cur: 0,
            max_payload,
            chunk: first_chunk.clamp(FRAME_HEADER, CHUNK),
        }
    }

    /// File position of the next frame.
    pub fn position(&self) -> u64 {
        self.buf_pos + self.cur as u64
    }

    pub fn next(&mut self) -> std::io::Result<Step<'_>> {
        loop {
            let pos = self.position();
            if pos >= self.end {
                return Ok(Step::End);
            }
            let need = match format::decode_frame(&self.buf[self.cur..], self.max_payload) {
                Decoded::Frame(f) => Ok((f.encoded_len(), f.offset, f.timestamp_ms)),
                Decoded::Invalid(reason) => return Ok(Step::Invalid { pos, reason }),
                Decoded::Incomplete(n) => Err(n),
            };
            let need = match need {
                Ok((len, offset, timestamp_ms)) => {
                    let start = self.cur;
                    self.cur += len;
                    let payload = &self.buf[start + FRAME_HEADER..start + len];
                    return Ok(Step::Frame {
                        pos,
                        frame: Frame {
                            offset,
                            timestamp_ms,
                            payload,
                        },
                    });
                }
                Err(n) => n,
            };
            if pos + need as u64 > self.end {
                return Ok(Step::Torn { pos });
            }
            // Refill: keep the unconsumed tail, read at least `need` bytes.
            self.buf.drain(..self.cur);
            self.buf_pos += self.cur as u64;
            self.cur = 0;
            let want = need.max(self.chunk).min((self.end - self.buf_pos) as usize);
            self.chunk = (self.chunk * 2).min(CHUNK);
            let have = self.buf.len();
            self.buf.resize(want, 0);
            let n = self
                .file
                .read_full_at(&mut self.buf[have..], self.buf_pos + have as u64)?;
            self.buf.truncate(have + n);
            if have + n < need {
                return Ok(Step::Torn { pos });
            }
        }
    }
}

/// Result of scanning a whole segment.
pub(crate) struct Scan {
    /// The segment with its in-memory indexes rebuilt up to the damage (or the end).
    pub segment: Segment,
    /// First damage: position and reason. `None` if every frame is valid.
    pub damage: Option<(u64, String)>,
    /// Where the recycled file's old content begins, when `scan` was told the file is
    /// one (see [`LogConfig::recycle_segments`](crate::LogConfig)).
    pub recycled_from: Option<u64>,
}

/// Scans `file` from its header to `file_len`, verifying every frame and
/// rebuilding the indexes. Stops at the first damage.
///
/// `recycled`: the segment was started over a recycled file (its header says so), so
/// after its last record comes the old content: old frames, whose offsets lie below
/// this segment's base, and, where the new records ended inside an old frame, the rest
/// of it. The first frame that does not continue the segment is then where that
/// content begins, not damage, unless a frame continuing this segment's offsets lies
/// further on.
pub(crate) fn scan(
    base: u64,
    path: PathBuf,
    file: Arc<dyn FsFile>,
    file_len: u64,
    max_payload: u32,
    interval: u32,
    recycled: bool,
) -> Result<Scan, LogError> {
    let mut seg = Segment::empty(base, path, file.clone());
    let mut cursor = FrameCursor::new(&*file, SEGMENT_HEADER as u64, file_len, max_payload);
    let damage = loop {
        match cursor.next().at(&seg.path)? {
            Step::End => break None,
            Step::Frame { pos, frame } => {
                if frame.offset != seg.end {
                    break Some((
                        pos,
                        format!(
                            "frame offset {} where {} was expected",
                            frame.offset, seg.end
                        ),
                    ));
                }
                seg.on_append(
                    frame.offset,
                    frame.timestamp_ms,
                    frame.encoded_len() as u64,
                    interval,
                );
            }
            Step::Torn { pos } => {
                break Some((
                    pos,
                    "frame runs past the end of the file (torn write)".to_owned(),
                ))
            }
            Step::Invalid { pos, reason } => break Some((pos, reason.to_owned())),
        }
    };
    let mut recycled_from = None;
    let damage = match damage {
        Some((pos, _))
            if recycled
                && !valid_frame_after(&*file, &seg.path, pos, file_len, seg.end, max_payload)? =>
        {
            recycled_from = Some(pos);
            None
        }
        damage => damage,
    };
    Ok(Scan {
        segment: seg,
        damage,
        recycled_from,
    })
}

/// Whether a valid frame with an offset at or after `expected` starts anywhere
/// after `from` (distinguishes mid-file corruption from a torn tail, and a recycled
/// file's old frames from damage). Reads the file in [`CHUNK`]s: a recycled segment
/// can hold a whole segment of old frames after its last record.
pub(crate) fn valid_frame_after(
    file: &dyn FsFile,
    path: &Path,
    from: u64,
    file_len: u64,
    expected: u64,
    max_payload: u32,
) -> Result<bool, LogError> {
    // No frame continuing the data can carry an offset beyond one per frame header in
    // the whole file (bounded from the file's start: `from` may lie well past where the
    // data being continued ends).
    let max_offset = expected + file_len / FRAME_HEADER as u64;
    let mut chunk = vec![0; CHUNK + FRAME_HEADER];
    // Candidate frame starts are tried at every position in `(from, file_len)`.
    let mut at = from + 1;
    while at + FRAME_HEADER as u64 <= file_len {
        let want = (file_len - at).min(chunk.len() as u64) as usize;
        let n = file.read_full_at(&mut chunk[..want], at).at(path)?;
        let buf = &chunk[..n];
        if buf.len() < FRAME_HEADER {
            break;
        }
        for i in 0..=buf.len() - FRAME_HEADER {
            let off = format::u64_at(buf, i + 8);
            if off < expected || off > max_offset {
                continue;
            }
            let found = match format::decode_frame(&buf[i..], max_payload) {
                Decoded::Frame(_) => true,
                Decoded::Invalid(_) => false,
                // Longer than what this chunk holds: read that frame on its own.
                Decoded::Incomplete(len) => {
                    let pos = at + i as u64;
                    if pos + len as u64 > file_len {
                        false
                    } else {
                        let mut frame = vec![0; len];
                        let got = file.read_full_at(&mut frame, pos).at(path)?;
                        got == len
                            && matches!(
                                format::decode_frame(&frame, max_payload),
                                Decoded::Frame(_)
                            )
                    }
                }
            };
            if found {
                return Ok(true);
            }
        }
        // The next chunk starts at the first position not tried.
        at += (buf.len() - FRAME_HEADER + 1) as u64;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::sim::SimFs;

    #[test]
    fn index_lookup_and_time_index() {
        let fs = SimFs::default();
        let file = fs.open(Path::new("/l/0.log"), true).expect("open");
        let mut seg = Segment::empty(100, PathBuf::from("/l/0.log"), file);
        // 10 frames of 50 bytes, an index entry every 100 bytes.
        let ts = [5, 3, 9, 9, 12, 1, 15, 15, 20, 2];
        for (i, t) in ts.iter().enumerate() {
            seg.on_append(100 + i as u64, *t, 50, 100);
        }
        assert_eq!(seg.end, 110);
        assert_eq!(seg.size, SEGMENT_HEADER as u64 + 500);
        // Entries at records 2, 4, 6, 8 (after 100 bytes each).
        let hdr = SEGMENT_HEADER as u32;
        assert_eq!(
            seg.index,
            vec![
                (2, hdr + 100),
                (4, hdr + 200),
                (6, hdr + 300),
                (8, hdr + 400)
            ]
        );
        assert_eq!(seg.position_for(100), u64::from(hdr));
        assert_eq!(seg.position_for(101), u64::from(hdr));
        assert_eq!(seg.position_for(105), u64::from(hdr + 200));
        assert_eq!(seg.position_for(109), u64::from(hdr + 400));
        // Running max at 2, 4, 6, 8 is 9, 12, 15, 20.
        assert_eq!(seg.time_index, vec![(9, 2), (12, 4), (15, 6), (20, 8)]);
        assert_eq!(seg.scan_start_for_timestamp(4), 100);
        assert_eq!(seg.scan_start_for_timestamp(13), 105);
        assert_eq!(seg.scan_start_for_timestamp(21), 109);
        assert_eq!(seg.max_ts, Some(20));
    }

    /// Frames continuing the data far past the damage (as recovery's window check looks
    /// for them) are found, whatever their distance from the point searched from.
    #[test]
    fn valid_frame_after_finds_frames_far_past_the_damage() {
        let fs = SimFs::default();
        let path = Path::new("/l/0.log");
        let file = fs.open(path, true).expect("open");
        let mut buf = vec![0u8; SEGMENT_HEADER];
        for offset in 0..200u64 {
            crate::format::encode_frame(&mut buf, offset, 0, &[7u8; 100]);
        }
        file.write_all_at(&buf, 0).expect("write");
        let len = buf.len() as u64;
        let frame = 124u64;
        let at = |i: u64| SEGMENT_HEADER as u64 + i * frame;
        // Damage at record 0 (expected offset 0); searching from record 190 on, the
        // frames left carry offsets 191..199, far above `expected + (len - from) / 24`.
        assert!(valid_frame_after(&*file, path, at(190), len, 0, 1000).expect("search"));
        // Only frames below `expected` after the point: nothing continues.
        assert!(!valid_frame_after(&*file, path, at(150), len, 500, 1000).expect("search"));
        assert!(!valid_frame_after(&*file, path, at(199), len, 0, 1000).expect("search"));
    }
}
