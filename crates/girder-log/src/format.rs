//! The on-disk format: record frames, segment headers, index files, the
//! log-start-offset checkpoint and file names. Everything is little-endian.
//!
//! Invariants kept here:
//! * a frame's CRC32C covers every byte after the CRC (offset, timestamp,
//!   payload), so a frame whose length field survived but whose body did not
//!   is always detected;
//! * every file starts with a magic and a format version, and every
//!   fixed-size header carries its own CRC32C: a file is never trusted on its
//!   name alone;
//! * decoding never allocates from a length read from disk before checking it
//!   against the bytes actually present.

use std::path::{Path, PathBuf};

/// Bytes in a frame before the payload: length (4) + CRC (4) + offset (8) + timestamp (8).
pub(crate) const FRAME_HEADER: usize = 24;
/// Bytes the length field counts that are not payload: CRC + offset + timestamp.
pub(crate) const FRAME_FIXED_BODY: u32 = 20;

/// Segment file header: magic (4) + version (4) + base offset (8) + flags (4) + CRC (4).
pub(crate) const SEGMENT_HEADER: usize = 24;
const SEGMENT_MAGIC: [u8; 4] = *b"GLOG";
/// The one format version this crate writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Index file header: magic (4) + version (4) + base offset (8) + sealed log size (8)
/// + a per-kind value (8) + entry count (4) + CRC over header and entries (4).
pub(crate) const INDEX_HEADER: usize = 40;
pub(crate) const OFFSET_INDEX_MAGIC: [u8; 4] = *b"GIDX";
pub(crate) const TIME_INDEX_MAGIC: [u8; 4] = *b"GTIX";
/// Offset index entry: relative offset (4) + file position (4).
pub(crate) const OFFSET_ENTRY: usize = 8;
/// Time index entry: timestamp (8) + relative offset (4).
pub(crate) const TIME_ENTRY: usize = 12;

const CHECKPOINT_MAGIC: [u8; 4] = *b"GLSO";
/// Checkpoint file: magic (4) + version (4) + start offset (8) + CRC (4).
pub(crate) const CHECKPOINT_LEN: usize = 20;
/// Name of the log-start-offset checkpoint inside the log directory.
pub(crate) const CHECKPOINT_FILE: &str = "log-start-offset";

/// One decoded frame, borrowing its payload from the buffer it was read from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub offset: u64,
    pub timestamp_ms: u64,
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Bytes this frame occupies on disk.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER + self.payload.len()
    }
}

/// Outcome of decoding a frame at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A whole, checksummed frame.
    Frame(Frame<'a>),
    /// The buffer ends inside the frame: need this many bytes in total.
    Incomplete(usize),
    /// The bytes cannot be a frame written by this crate.
    Invalid(&'static str),
}

/// Appends one frame to `out`.
pub(crate) fn encode_frame(out: &mut Vec<u8>, offset: u64, timestamp_ms: u64, payload: &[u8]) {
    let len = FRAME_FIXED_BODY + payload.len() as u32;
    out.reserve(FRAME_HEADER + payload.len());
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the frame at the start of `buf`. `max_payload` bounds the length
/// field so garbage is `Invalid` rather than a huge `Incomplete`.
pub(crate) fn decode_frame(buf: &[u8], max_payload: u32) -> Decoded<'_> {
    if buf.len() < 4 {
        return Decoded::Incomplete(4);
    }
    let len = u32_at(buf, 0);
    if len < FRAME_FIXED_BODY {
        return Decoded::Invalid("frame length too small");
    }
    if len - FRAME_FIXED_BODY > max_payload {
        return Decoded::Invalid("frame length over the record limit");
    }
    let total = 4 + len as usize;
    if buf.len() < total {
        return Decoded::Incomplete(total);
    }
    let crc = u32_at(buf, 4);
    if crc32c::crc32c(&buf[8..total]) != crc {
        return Decoded::Invalid("CRC mismatch");
    }
    Decoded::Frame(Frame {
        offset: u64_at(buf, 8),
        timestamp_ms: u64_at(buf, 16),
        payload: &buf[FRAME_HEADER..total],
    })
}

/// Reads the offset and timestamp of an already-validated frame.
pub(crate) fn frame_len_at(buf: &[u8], pos: usize) -> usize {
    4 + u32_at(buf, pos) as usize
}

/// Encodes a segment file header.
pub(crate) fn encode_segment_header(base_offset: u64, flags: u32) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[0..4].copy_from_slice(&SEGMENT_MAGIC);
    h[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[8..16].copy_from_slice(&base_offset.to_le_bytes());
    h[16..20].copy_from_slice(&flags.to_le_bytes());
    let crc = crc32c::crc32c(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Segment header flag: the file was a deleted segment's, recycled, so after this
/// segment's last record come the old segment's frames (or parts of them).
pub(crate) const SEGMENT_RECYCLED: u32 = 1;

/// Checks a segment header; returns the reason it is not valid for `base_offset`, or
/// its flags. (Unknown flags are ignored: version 1 readers wrote 0 and ignored them.)
pub(crate) fn check_segment_header(h: &[u8], base_offset: u64) -> Result<u32, String> {
    if h.len() < SEGMENT_HEADER {
        return Err(format!("segment header truncated to {} bytes", h.len()));
    }
    if h[0..4] != SEGMENT_MAGIC {
        return Err("bad segment magic".into());
    }
    if crc32c::crc32c(&h[..20]) != u32_at(h, 20) {
        return Err("segment header CRC mismatch".into());
    }
    let version = u32_at(h, 4);
    if version != FORMAT_VERSION {
        return Err(format!("unsupported segment format version {version}"));
    }
    let base = u64_at(h, 8);
    if base != base_offset {
        return Err(format!(
            "segment header says base offset {base}, file name says {base_offset}"
        ));
    }
    Ok(u32_at(h, 16))
}

/// The fixed part of an index file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexHeader {
    pub base_offset: u64,
    /// Size of the `.log` file when the index was written; a mismatch means
    /// the index does not describe the data.
    pub log_size: u64,
    /// Offset index: the segment's end offset. Time index: its max timestamp.
    pub value: u64,
}

/// Encodes a whole index file (header + entries).
pub(crate) fn encode_index(
    magic: [u8; 4],
    header: IndexHeader,
    entries: &[u8],
    entry_len: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(INDEX_HEADER + entries.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&header.base_offset.to_le_bytes());
    out.extend_from_slice(&header.log_size.to_le_bytes());
    out.extend_from_slice(&header.value.to_le_bytes());
    out.extend_from_slice(&((entries.len() / entry_len) as u32).to_le_bytes());
    let mut crc = crc32c::crc32c(&out);
    crc = crc32c::crc32c_append(crc, entries);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(entries);
    out
}

/// Decodes an index file; returns the header and the entry bytes, or why it is invalid.
pub(crate) fn decode_index(
    buf: &[u8],
    magic: [u8; 4],
    entry_len: usize,
) -> Result<(IndexHeader, &[u8]), String> {
    if buf.len() < INDEX_HEADER {
        return Err("index header truncated".into());
    }
    if buf[0..4] != magic {
        return Err("bad index magic".into());
    }
    let version = u32_at(buf, 4);
    if version != FORMAT_VERSION {
        return Err(format!("unsupported index format version {version}"));
    }
    let count = u32_at(buf, 32) as usize;
    let entries = &buf[INDEX_HEADER..];
    if entries.len() != count * entry_len {
        return Err(format!(
            "index holds {} bytes of entries, header says {count} entries",
            entries.len()
        ));
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&buf[..36]), entries);
    if crc != u32_at(buf, 36) {
        return Err("index CRC mismatch".into());
    }
    Ok((
        IndexHeader {
            base_offset: u64_at(buf, 8),
            log_size: u64_at(buf, 16),
            value: u64_at(buf, 24),
        },
        entries,
    ))
}

/// Encodes the log-start-offset checkpoint.
pub(crate) fn encode_checkpoint(start_offset: u64) -> [u8; CHECKPOINT_LEN] {
    let mut b = [0u8; CHECKPOINT_LEN];
    b[0..4].copy_from_slice(&CHECKPOINT_MAGIC);
    b[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[8..16].copy_from_slice(&start_offset.to_le_bytes());
    let crc = crc32c::crc32c(&b[..16]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes the checkpoint, or says why it is invalid.
pub(crate) fn decode_checkpoint(b: &[u8]) -> Result<u64, String> {
    if b.len() != CHECKPOINT_LEN {
        return Err(format!(
            "checkpoint is {} bytes, expected {CHECKPOINT_LEN}",
            b.len()
        ));
    }
    if b[0..4] != CHECKPOINT_MAGIC {
        return Err("bad checkpoint magic".into());
    }
    if crc32c::crc32c(&b[..16]) != u32_at(b, 16) {
        return Err("checkpoint CRC mismatch".into());
    }
    let version = u32_at(b, 4);
    if version != FORMAT_VERSION {
        return Err(format!("unsupported checkpoint format version {version}"));
    }
    Ok(u64_at(b, 8))
}

/// `dir/00000000000000000042.log` and friends.
pub(crate) fn segment_path(dir: &Path, base_offset: u64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// Name of a recycled segment file waiting to be written over.
pub(crate) fn recycled_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("recycled-{n}.seg"))
}

/// Parses `recycled-7.seg` into 7.
pub(crate) fn parse_recycled_name(name: &str) -> Option<u64> {
    name.strip_prefix("recycled-")?
        .strip_suffix(".seg")?
        .parse()
        .ok()
}

/// Parses `00000000000000000042.log` into (42, "log").
pub(crate) fn parse_segment_name(name: &str) -> Option<(u64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, 7, 1_700_000_000_000, b"hello");
        encode_frame(&mut buf, 8, 1_700_000_000_001, b"");
        assert_eq!(buf.len(), 2 * FRAME_HEADER + 5);
        let Decoded::Frame(f) = decode_frame(&buf, 1024) else {
            panic!("not a frame")
        };
        assert_eq!(
            f,
            Frame {
                offset: 7,
                timestamp_ms: 1_700_000_000_000,
                payload: b"hello"
            }
        );
        let Decoded::Frame(g) = decode_frame(&buf[f.encoded_len()..], 1024) else {
            panic!("not a frame")
        };
        assert_eq!((g.offset, g.payload.len()), (8, 0));
    }

    #[test]
    fn frame_damage_is_detected() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, 1, 2, b"payload");
        for i in 4..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert_eq!(
                decode_frame(&bad, 1024),
                Decoded::Invalid("CRC mismatch"),
                "flip at {i}"
            );
        }
        assert_eq!(
            decode_frame(&buf[..10], 1024),
            Decoded::Incomplete(buf.len())
        );
        assert_eq!(decode_frame(&buf[..3], 1024), Decoded::Incomplete(4));
        assert_eq!(
            decode_frame(&[0; 24], 1024),
            Decoded::Invalid("frame length too small")
        );
        assert_eq!(
            decode_frame(&buf, 3),
            Decoded::Invalid("frame length over the record limit")
        );
    }

    #[test]
    fn headers_and_checkpoint() {
        let h = encode_segment_header(42, 0);
        assert_eq!(check_segment_header(&h, 42), Ok(0));
        let r = encode_segment_header(42, SEGMENT_RECYCLED);
        assert_eq!(check_segment_header(&r, 42), Ok(SEGMENT_RECYCLED));
        assert!(check_segment_header(&h, 43).is_err());
        let mut bad = h;
        bad[9] ^= 1;
        assert!(check_segment_header(&bad, 42).is_err());
        assert_eq!(decode_checkpoint(&encode_checkpoint(99)), Ok(99));
        let mut c = encode_checkpoint(99);
        c[8] = 98;
        assert!(decode_checkpoint(&c).is_err());
        let header = IndexHeader {
            base_offset: 5,
            log_size: 100,
            value: 9,
        };
        let file = encode_index(
            OFFSET_INDEX_MAGIC,
            header,
            &[1, 0, 0, 0, 24, 0, 0, 0],
            OFFSET_ENTRY,
        );
        let (h2, e) = decode_index(&file, OFFSET_INDEX_MAGIC, OFFSET_ENTRY).expect("valid index");
        assert_eq!((h2, e.len()), (header, 8));
        assert!(decode_index(&file, TIME_INDEX_MAGIC, TIME_ENTRY).is_err());
        let mut badi = file.clone();
        badi[INDEX_HEADER] ^= 1;
        assert!(decode_index(&badi, OFFSET_INDEX_MAGIC, OFFSET_ENTRY).is_err());
        assert_eq!(
            parse_segment_name("00000000000000000042.log"),
            Some((42, "log"))
        );
        assert_eq!(parse_segment_name("0042.log"), None);
        assert_eq!(parse_recycled_name("recycled-7.seg"), Some(7));
        assert_eq!(parse_segment_name("recycled-7.seg"), None);
        assert_eq!(parse_recycled_name("recycled-x.seg"), None);
    }
}
