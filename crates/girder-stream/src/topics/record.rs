//! The binary record a topic stores per message, one `girder-log` record each.
//!
//! Version 1, little-endian; the log frame around it carries the offset, the timestamp
//! and a CRC32C, so the record holds only what the producer sent:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version (1) |
//! | 1 | flags: bit 0 a key follows, bit 1 an id follows, bit 2 a transaction tag follows |
//! | 4 + n | key length and bytes (when flagged) |
//! | 4 + n | id length and bytes (when flagged) |
//! | 8 + 4 | transaction tag (when flagged): the commit record's offset in the transaction log and the output's index in it; never shown to consumers (see `txn`) |
//! | 4 | header count, then per header 4 + n name and 4 + n value |
//! | rest | the value |
//!
//! Every string is UTF-8 when written (they arrive as JSON strings); a record that does
//! not decode is reported as damage, never skipped.

use std::collections::BTreeMap;

const VERSION: u8 = 1;
const HAS_KEY: u8 = 1;
const HAS_ID: u8 = 2;
const HAS_TXN: u8 = 4;

/// One message, as produced and as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Chooses the partition: equal keys go to the same partition, in order.
    pub key: Option<String>,
    /// The payload.
    pub value: String,
    /// Free-form metadata.
    pub headers: BTreeMap<String, String>,
    /// A producer-chosen id for deduplicated produce.
    pub id: Option<String>,
}

impl Message {
    /// Bytes the message counts against the size limit: key, value, id, header names
    /// and values.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, String::len)
            + self.value.len()
            + self.id.as_ref().map_or(0, String::len)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// Why a stored record does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("topic record: {0}")]
pub struct DecodeError(pub &'static str);

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Messages are capped far below 4 GiB before they are encoded.
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends the encoding of `m` to `out`.
pub fn encode(m: &Message, out: &mut Vec<u8>) {
    encode_tagged(m, None, out);
}

/// A transactional output's tag: (commit record offset, index among its outputs).
pub type TxnTag = (u64, u32);

/// [`encode`], marking the record as output `tag.1` of the transaction committed at
/// `tag.0`, so recovery can tell which outputs of a transaction were appended.
pub fn encode_tagged(m: &Message, tag: Option<TxnTag>, out: &mut Vec<u8>) {
    let mut flags = 0;
    if m.key.is_some() {
        flags |= HAS_KEY;
    }
    if m.id.is_some() {
        flags |= HAS_ID;
    }
    if tag.is_some() {
        flags |= HAS_TXN;
    }
    out.extend_from_slice(&[VERSION, flags]);
    if let Some(key) = &m.key {
        put_str(out, key);
    }
    if let Some(id) = &m.id {
        put_str(out, id);
    }
    if let Some((txn, index)) = tag {
        out.extend_from_slice(&txn.to_le_bytes());
        out.extend_from_slice(&index.to_le_bytes());
    }
    let count = u32::try_from(m.headers.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for (name, value) in &m.headers {
        put_str(out, name);
        put_str(out, value);
    }
    out.extend_from_slice(m.value.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        utf8(self.take(len)?)
    }

    fn skip_string(&mut self) -> Result<(), DecodeError> {
        let len = self.u32()? as usize;
        self.take(len).map(drop)
    }

    fn tag(&mut self) -> Result<TxnTag, DecodeError> {
        let b = self.take(8)?;
        let mut txn = [0; 8];
        txn.copy_from_slice(b);
        Ok((u64::from_le_bytes(txn), self.u32()?))
    }
}

fn utf8(b: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError("a string is not UTF-8"))
}

/// Decodes a record written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader(bytes);
    let head = r.take(2)?;
    if head[0] != VERSION {
        return Err(DecodeError("unknown record version"));
    }
    let flags = head[1];
    if flags & !(HAS_KEY | HAS_ID | HAS_TXN) != 0 {
        return Err(DecodeError("unknown flags"));
    }
    let key = (flags & HAS_KEY != 0).then(|| r.string()).transpose()?;
    let id = (flags & HAS_ID != 0).then(|| r.string()).transpose()?;
    if flags & HAS_TXN != 0 {
        r.tag()?;
    }
    let count = r.u32()?;
    let mut headers = BTreeMap::new();
    for _ in 0..count {
        let name = r.string()?;
        let value = r.string()?;
        headers.insert(name, value);
    }
    Ok(Message {
        key,
        value: utf8(r.0)?,
        headers,
        id,
    })
}

/// Only the id of a record, for rebuilding the dedup map without decoding values.
pub fn decode_id(bytes: &[u8]) -> Result<Option<String>, DecodeError> {
    let mut r = Reader(bytes);
    let head = r.take(2)?;
    if head[0] != VERSION {
        return Err(DecodeError("unknown record version"));
    }
    if head[1] & HAS_ID == 0 {
        return Ok(None);
    }
    if head[1] & HAS_KEY != 0 {
        r.skip_string()?;
    }
    r.string().map(Some)
}

/// Only the transaction tag of a record, if it has one.
pub fn decode_tag(bytes: &[u8]) -> Result<Option<TxnTag>, DecodeError> {
    let mut r = Reader(bytes);
    let head = r.take(2)?;
    if head[0] != VERSION {
        return Err(DecodeError("unknown record version"));
    }
    if head[1] & HAS_TXN == 0 {
        return Ok(None);
    }
    if head[1] & HAS_KEY != 0 {
        r.skip_string()?;
    }
    if head[1] & HAS_ID != 0 {
        r.skip_string()?;
    }
    r.tag().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let full = Message {
            key: Some("user-1".into()),
            value: "{\"x\":1}".into(),
            headers: [
                ("a".to_owned(), "1".to_owned()),
                ("b".into(), String::new()),
            ]
            .into(),
            id: Some("m-1".into()),
        };
        for m in [
            full,
            Message::default(),
            Message {
                id: Some("i".into()),
                ..Message::default()
            },
        ] {
            for tag in [None, Some((u64::MAX - 3, 7))] {
                let mut buf = Vec::new();
                encode_tagged(&m, tag, &mut buf);
                assert_eq!(decode(&buf).unwrap(), m);
                assert_eq!(decode_id(&buf).unwrap(), m.id);
                assert_eq!(decode_tag(&buf).unwrap(), tag);
                // Every strict prefix that cuts a field is an error, not a panic.
                for cut in 0..buf.len() {
                    let _ = decode(&buf[..cut]);
                    let _ = decode_id(&buf[..cut]);
                    let _ = decode_tag(&buf[..cut]);
                }
            }
        }
        assert!(decode(&[2, 0, 0, 0, 0, 0]).is_err());
        assert!(decode(&[1, 8, 0, 0, 0, 0]).is_err());
    }
}
