//! RESP request parsing and reply encoding.
//!
//! Clients send commands either as RESP arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! or as inline text (`GET k\r\n`, what telnet sends). [`parse_command`] reads one command
//! from the front of a buffer:
//!
//! - `Ok(Some((args, consumed)))`: a whole command;
//! - `Ok(None)`: **not an error** — the command is not complete yet; read more bytes;
//! - `Err(ProtocolError)`: the bytes can never become a command. The connection replies
//!   with `-ERR Protocol error: ...` and closes, as Redis does.
//!
//! Limits are checked from the headers, before anything is allocated: a client announcing
//! a 4 GB bulk string or a billion-element array is refused on the spot.
//!
//! Error messages are Redis 7's (`networking.c`), since clients and tests match on them.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

/// Size limits for incoming commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (Redis: `proto-max-bulk-len`, default 512 MB).
    pub max_bulk_len: usize,
    /// Most arguments in one command. Redis accepts up to 2^31-1; a lower default bounds
    /// the memory a single command header can make the server reserve.
    pub max_array_len: usize,
    /// Longest inline command line (Redis: 64 KB).
    pub max_inline_len: usize,
    /// The client has not authenticated and must: commands are held to
    /// [`UNAUTHENTICATED_MAX_ARRAY_LEN`] arguments of [`UNAUTHENTICATED_MAX_BULK_LEN`]
    /// bytes, as in Redis (CVE-2021-32675), so a stranger cannot make the server buffer
    /// `proto-max-bulk-len` bytes per connection.
    pub unauthenticated: bool,
}

/// Most arguments in a command from a client that must authenticate and has not
/// (Redis: 10; AUTH and HELLO ... AUTH fit).
pub const UNAUTHENTICATED_MAX_ARRAY_LEN: usize = 10;

/// Longest argument from a client that must authenticate and has not (Redis: 16 KB).
pub const UNAUTHENTICATED_MAX_BULK_LEN: usize = 16 * 1024;

impl Limits {
    /// These limits for a client that must authenticate and has not.
    pub fn unauthenticated(self) -> Self {
        Self {
            unauthenticated: true,
            ..self
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk_len: 512 * 1024 * 1024,
            max_array_len: 1024 * 1024,
            max_inline_len: 64 * 1024,
            unauthenticated: false,
        }
    }
}

/// Framing that can never become a valid command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// An array header whose count is not a number or out of range.
    InvalidMultibulkLength,
    /// A bulk header whose length is not a number or out of range.
    InvalidBulkLength,
    /// Something other than `$` where a bulk string must start.
    ExpectedBulk(u8),
    /// No line end within the inline limit.
    TooBigInlineRequest,
    /// No line end after an array count within the inline limit.
    TooBigMultibulkCount,
    /// No line end after a bulk length within the inline limit.
    TooBigBulkCount,
    /// An inline command with an unclosed quote.
    UnbalancedQuotes,
    /// A bulk string not followed by `\r\n`.
    MissingBulkTerminator,
    /// More arguments than an unauthenticated client may send.
    UnauthenticatedMultibulkLength,
    /// A longer argument than an unauthenticated client may send.
    UnauthenticatedBulkLength,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocol error: ")?;
        match self {
            Self::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            Self::InvalidBulkLength => f.write_str("invalid bulk length"),
            Self::ExpectedBulk(b) => write!(f, "expected '$', got '{}'", char::from(*b)),
            Self::TooBigInlineRequest => f.write_str("too big inline request"),
            Self::TooBigMultibulkCount => f.write_str("too big mbulk count string"),
            Self::TooBigBulkCount => f.write_str("too big bulk count string"),
            Self::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            Self::MissingBulkTerminator => f.write_str("expected CRLF after bulk string"),
            Self::UnauthenticatedMultibulkLength => f.write_str("unauthenticated multibulk length"),
            Self::UnauthenticatedBulkLength => f.write_str("unauthenticated bulk length"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// One command: its arguments, the first being the command name.
pub type Args = Vec<Bytes>;

/// Reads one command from the front of `buf`, removing its bytes when complete.
///
/// An empty array (`*0\r\n`, `*-1\r\n`) or an empty inline line is consumed and yields an
/// empty argument list, which callers skip, as Redis does.
///
/// # Errors
/// A [`ProtocolError`] when the bytes cannot be a command.
pub fn parse_command(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Args>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, limits),
        Some(_) => parse_inline(buf, limits),
    }
}

/// Finds `\r\n` at or after `from`; the index of `\r`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    memchr_crlf(&buf[from..]).map(|i| i + from)
}

fn memchr_crlf(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(i) = buf[start..].iter().position(|&b| b == b'\r') {
        let at = start + i;
        match buf.get(at + 1) {
            Some(b'\n') => return Some(at),
            Some(_) => start = at + 1,
            None => return None,
        }
    }
    None
}

/// Parses a signed decimal as Redis's `string2ll` does: no leading `+`, no spaces, no
/// leading zeros beyond "0", within i64.
fn parse_len(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let (negative, digits) = match digits {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

fn parse_multibulk(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Args>, ProtocolError> {
    let Some(line_end) = find_crlf(buf, 1) else {
        return if buf.len() > limits.max_inline_len {
            Err(ProtocolError::TooBigMultibulkCount)
        } else {
            Ok(None)
        };
    };
    let count = parse_len(&buf[1..line_end]).ok_or(ProtocolError::InvalidMultibulkLength)?;
    let count = match usize::try_from(count) {
        // `*-1` and `*0` are empty commands.
        Err(_) | Ok(0) => {
            buf.advance(line_end + 2);
            return Ok(Some(Vec::new()));
        }
        Ok(n) if n > limits.max_array_len => return Err(ProtocolError::InvalidMultibulkLength),
        Ok(n) if limits.unauthenticated && n > UNAUTHENTICATED_MAX_ARRAY_LEN => {
            return Err(ProtocolError::UnauthenticatedMultibulkLength)
        }
        Ok(n) => n,
    };
    // First pass: check the whole command is here, validating headers as we go, without
    // allocating. Only then split the buffer, and walk the (now known good) headers
    // again to cut the arguments out of it.
    let first = line_end + 2;
    let mut at = first;
    for _ in 0..count {
        let Some(&first) = buf.get(at) else {
            return Ok(None);
        };
        if first != b'$' {
            return Err(ProtocolError::ExpectedBulk(first));
        }
        let Some(len_end) = find_crlf(buf, at + 1) else {
            return if buf.len() - at > limits.max_inline_len {
                Err(ProtocolError::TooBigBulkCount)
            } else {
                Ok(None)
            };
        };
        let len = parse_len(&buf[at + 1..len_end]).ok_or(ProtocolError::InvalidBulkLength)?;
        let len = usize::try_from(len).map_err(|_| ProtocolError::InvalidBulkLength)?;
        if len > limits.max_bulk_len {
            return Err(ProtocolError::InvalidBulkLength);
        }
        if limits.unauthenticated && len > UNAUTHENTICATED_MAX_BULK_LEN {
            return Err(ProtocolError::UnauthenticatedBulkLength);
        }
        let data = len_end + 2;
        let end = data + len;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ProtocolError::MissingBulkTerminator);
        }
        at = end + 2;
    }
    let frozen = buf.split_to(at).freeze();
    let mut args = Vec::with_capacity(count);
    let mut at = first;
    for _ in 0..count {
        // Checked by the first pass: a `$`, a valid length, its data and `\r\n`.
        let len_end = find_crlf(&frozen, at + 1).ok_or(ProtocolError::InvalidBulkLength)?;
        let len = parse_len(&frozen[at + 1..len_end])
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(ProtocolError::InvalidBulkLength)?;
        let data = len_end + 2;
        args.push(frozen.slice(data..data + len));
        at = data + len + 2;
    }
    Ok(Some(args))
}

fn parse_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Args>, ProtocolError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > limits.max_inline_len {
            Err(ProtocolError::TooBigInlineRequest)
        } else {
            Ok(None)
        };
    };
    if newline > limits.max_inline_len {
        return Err(ProtocolError::TooBigInlineRequest);
    }
    let line = buf.split_to(newline + 1);
    let mut text = &line[..newline];
    if let [rest @ .., b'\r'] = text {
        text = rest;
    }
    split_args(text).map(Some)
}

/// Splits an inline command like Redis's `sdssplitargs`: spaces separate arguments;
/// `"..."` allows escapes (`\n \r \t \b \a \\ \" \xHH`); `'...'` allows `\'`. A closing
/// quote must be followed by a space or the end of the line.
pub fn split_args(line: &[u8]) -> Result<Args, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Ok(args);
        }
        let current = match line[i] {
            quote @ (b'"' | b'\'') => {
                let (arg, next) = quoted(line, i + 1, quote)?;
                i = next;
                arg
            }
            _ => {
                let start = i;
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    i += 1;
                }
                line[start..i].to_vec()
            }
        };
        args.push(Bytes::from(current));
    }
}

/// Reads a quoted argument starting after its opening `quote`; returns it and the index
/// after the closing quote. Double quotes take C-like escapes (`\n \r \t \b \a \xHH`,
/// and `\` before any other byte keeps that byte); single quotes only `\'`. The closing
/// quote must be followed by a space or the end of the line.
fn quoted(line: &[u8], mut i: usize, quote: u8) -> Result<(Vec<u8>, usize), ProtocolError> {
    let mut arg = Vec::new();
    loop {
        match line.get(i) {
            None => return Err(ProtocolError::UnbalancedQuotes),
            Some(&b) if b == quote => {
                i += 1;
                if i < line.len() && !line[i].is_ascii_whitespace() {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                return Ok((arg, i));
            }
            Some(b'\\') if quote == b'\'' => {
                if line.get(i + 1) == Some(&b'\'') {
                    arg.push(b'\'');
                    i += 2;
                } else {
                    arg.push(b'\\');
                    i += 1;
                }
            }
            Some(b'\\')
                if i + 3 < line.len()
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&line[i + 2..i + 4]).unwrap_or("0");
                arg.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 4;
            }
            Some(b'\\') if i + 1 < line.len() => {
                arg.push(match line[i + 1] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 8,
                    b'a' => 7,
                    other => other,
                });
                i += 2;
            }
            Some(&b) => {
                arg.push(b);
                i += 1;
            }
        }
    }
}

/// The protocol a connection speaks, switched by `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, the default.
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

/// A reply, independent of the protocol; [`Reply::encode`] renders it for one.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`
    Simple(&'static str),
    /// A status built at run time (`+` line); must not contain CR or LF.
    Status(String),
    /// `-ERR ...`: the text includes its prefix (`ERR`, `WRONGTYPE`, ...).
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`
    Bulk(Bytes),
    /// A bulk string of at most [`SMALL_BULK`] bytes, held in the reply itself: a small
    /// value read under the engine's lock is answered without an allocation
    /// ([`Reply::bulk_copy`]).
    SmallBulk {
        /// How many bytes of `bytes` are the string.
        len: u8,
        /// The string, then padding.
        bytes: [u8; SMALL_BULK],
    },
    /// RESP3 `_`; RESP2 `$-1`.
    Null,
    /// RESP3 `_`; RESP2 `*-1` (a missing array, as BLPOP's timeout).
    NullArray,
    /// `*N`
    Array(Vec<Reply>),
    /// RESP3 `%N`; RESP2 a flat array of key, value, ...
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~N`; RESP2 an array.
    Set(Vec<Reply>),
    /// RESP3 `,1.5`; RESP2 a bulk string.
    Double(f64),
    /// RESP3 `#t`; RESP2 `:1` / `:0`.
    Boolean(bool),
    /// RESP3 `=N\r\ntxt:...`; RESP2 a bulk string.
    Verbatim(Bytes),
    /// RESP3 `>N` (pub/sub messages); RESP2 an array.
    Push(Vec<Reply>),
    /// A reply already encoded for the connection's protocol (see [`bulk_array`] and
    /// [`Writer`]); passed through as it is.
    Encoded(BytesMut),
    /// Several replies in a row, for a command that answers once per argument
    /// (SUBSCRIBE confirms each channel in its own frame). Only as a command's whole
    /// reply, never nested.
    Frames(Vec<Reply>),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Simple("OK");

    /// An error reply; `text` starts with its code (`ERR ...`).
    pub fn error(text: impl Into<String>) -> Self {
        Self::Error(text.into())
    }

    /// A bulk string from anything byte-like.
    pub fn bulk(bytes: impl Into<Bytes>) -> Self {
        Self::Bulk(bytes.into())
    }

    /// A bulk string copied from `bytes`: inline when short, else into a `Bytes`.
    pub fn bulk_copy(bytes: &[u8]) -> Self {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= SMALL_BULK => {
                let mut inline = [0; SMALL_BULK];
                inline[..bytes.len()].copy_from_slice(bytes);
                Self::SmallBulk { len, bytes: inline }
            }
            _ => Self::Bulk(Bytes::copy_from_slice(bytes)),
        }
    }

    /// Appends the encoding of `self` for `protocol` to `out`.
    pub fn encode(&self, protocol: Protocol, out: &mut BytesMut) {
        let resp3 = protocol == Protocol::Resp3;
        match self {
            Self::Simple(s) => line(out, b'+', s.as_bytes()),
            Self::Status(s) => line(out, b'+', s.as_bytes()),
            Self::Error(e) => {
                // CR/LF inside an error would break framing.
                let clean: Vec<u8> = e
                    .bytes()
                    .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                    .collect();
                line(out, b'-', &clean);
            }
            Self::Integer(i) => number(out, b':', *i),
            Self::Bulk(b) => bulk(out, b'$', b),
            Self::SmallBulk { len, bytes } => bulk(out, b'$', &bytes[..usize::from(*len)]),
            Self::Null if resp3 => out.extend_from_slice(b"_\r\n"),
            Self::Null => out.extend_from_slice(b"$-1\r\n"),
            Self::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Self::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Self::Array(items) => aggregate(out, b'*', items, protocol),
            Self::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, protocol),
            Self::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, protocol),
            Self::Frames(frames) => {
                for frame in frames {
                    frame.encode(protocol, out);
                }
            }
            Self::Map(pairs) => {
                if resp3 {
                    number(out, b'%', len_i64(pairs.len()));
                } else {
                    number(out, b'*', len_i64(pairs.len() * 2));
                }
                for (k, v) in pairs {
                    k.encode(protocol, out);
                    v.encode(protocol, out);
                }
            }
            Self::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, b'$', text.as_bytes());
                }
            }
            Self::Boolean(b) if resp3 => {
                out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" })
            }
            Self::Boolean(b) => number(out, b':', i64::from(*b)),
            Self::Verbatim(text) if resp3 => {
                let mut body = Vec::with_capacity(text.len() + 4);
                body.extend_from_slice(b"txt:");
                body.extend_from_slice(text);
                bulk(out, b'=', &body);
            }
            Self::Verbatim(text) => bulk(out, b'$', text),
            Self::Encoded(bytes) => out.extend_from_slice(bytes),
        }
    }
}

/// Longest bulk string a [`Reply::SmallBulk`] holds: what fits in the 40 bytes a
/// `Reply` takes anyway.
pub const SMALL_BULK: usize = 38;

// Holding small strings inline costs no space.
const _: () = assert!(std::mem::size_of::<Reply>() == 40);

/// An array of `len` bulk strings, encoded as it is read (under the engine's lock, with
/// no copy of each element into a `Bytes` and no `Reply` per element): the same bytes
/// in RESP2 and RESP3.
pub fn bulk_array(len: usize, items: &mut dyn Iterator<Item = &[u8]>) -> Reply {
    // Bulk arrays are the same bytes in both protocols.
    let mut w = Writer::new(Protocol::Resp2);
    w.array(len);
    for item in items {
        w.bulk(item);
    }
    w.finish()
}

/// A reply written element by element as it is read (under the engine's lock): no
/// `Reply` and no owned copy per element, so a long reply costs its encoding only.
///
/// Short bulk strings (the elements of most long replies) are assembled in a staging
/// buffer on the stack with fixed-size moves, and reach `out` a few hundred bytes at a
/// time: appending each element's five pieces to `out` was five `memcpy` calls of a
/// few bytes each, 16 ns per 3-byte element (`benches/codec.rs`).
#[derive(Debug)]
pub struct Writer {
    out: BytesMut,
    protocol: Protocol,
    stage: [u8; STAGE],
    staged: usize,
}

/// Bytes of [`Writer`]'s staging buffer.
const STAGE: usize = 512;

/// Longest bulk string [`Writer::bulk`] stages whole (a longer one goes to `out` as it
/// is, between its staged header and CRLF).
const SHORT_BULK: usize = 64;

impl Writer {
    /// An empty reply for a client speaking `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        Self {
            out: BytesMut::new(),
            protocol,
            stage: [0; STAGE],
            staged: 0,
        }
    }

    /// The client's protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// An array header: `len` elements follow.
    pub fn array(&mut self, len: usize) {
        self.flush();
        // Room for that many short elements, so a long reply does not grow by doubling
        // from nothing (it still does past this).
        self.out.reserve(len.min(4096) * 16);
        number(&mut self.out, b'*', len_i64(len));
    }

    /// A bulk string.
    pub fn bulk(&mut self, data: &[u8]) {
        if self.staged + SHORT_BULK + HEADER > STAGE {
            self.flush();
        }
        let n = data.len();
        let stage = &mut self.stage[self.staged..];
        let mut at = header(stage, b'$', n);
        if n <= SHORT_BULK {
            copy_short(&mut stage[at..at + n], data);
            at += n;
            stage[at..at + 2].copy_from_slice(b"\r\n");
            self.staged += at + 2;
        } else {
            self.staged += at;
            self.flush();
            self.out.extend_from_slice(data);
            self.stage[..2].copy_from_slice(b"\r\n");
            self.staged = 2;
        }
    }

    /// Any reply, as an element.
    pub fn reply(&mut self, reply: &Reply) {
        self.flush();
        reply.encode(self.protocol, &mut self.out);
    }

    /// The finished reply.
    pub fn finish(mut self) -> Reply {
        self.flush();
        Reply::Encoded(self.out)
    }

    /// Moves what is staged to `out`.
    fn flush(&mut self) {
        if self.staged > 0 {
            self.out.extend_from_slice(&self.stage[..self.staged]);
            self.staged = 0;
        }
    }
}

/// Longest header [`header`] writes: a prefix, 20 digits, CRLF.
const HEADER: usize = 23;

/// Writes `<prefix><n>\r\n` at the start of `dst` with fixed-size moves; returns its
/// length.
fn header(dst: &mut [u8], prefix: u8, n: usize) -> usize {
    dst[0] = prefix;
    let at = if n < 10 {
        dst[1] = b'0' + n as u8;
        2
    } else if n < 100 {
        dst[1] = b'0' + (n / 10) as u8;
        dst[2] = b'0' + (n % 10) as u8;
        3
    } else {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        copy_short(&mut dst[1..=digits.len()], digits);
        1 + digits.len()
    };
    dst[at..at + 2].copy_from_slice(b"\r\n");
    at + 2
}

/// `dst.copy_from_slice(src)` for at most 64 bytes as two overlapping fixed-size moves
/// (what `memcpy` does inside, without the call).
fn copy_short(dst: &mut [u8], src: &[u8]) {
    fn both_ends<const N: usize>(dst: &mut [u8], src: &[u8]) {
        let n = src.len();
        let head: &[u8; N] = src[..N].try_into().expect("N bytes");
        let tail: &[u8; N] = src[n - N..].try_into().expect("N bytes");
        dst[..N].copy_from_slice(head);
        dst[n - N..n].copy_from_slice(tail);
    }
    let n = src.len();
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => both_ends::<4>(dst, src),
        8..=15 => both_ends::<8>(dst, src),
        16..=31 => both_ends::<16>(dst, src),
        _ => both_ends::<32>(dst, src),
    }
}

/// SRANDMEMBER's repeated picks: a flat array of members.
impl girder_kv::Picks<()> for Writer {
    fn count(&mut self, n: usize) {
        self.array(n);
    }
    fn pick(&mut self, element: &[u8], (): &()) {
        self.bulk(element);
    }
}

/// Formats a double as Redis 7 does for replies: `inf`, `-inf`, `nan`, integers without a
/// fraction, otherwise the shortest text that reads back to the same value.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        // Shortest round-tripping digits (Rust's formatting), laid out as C's `%g` would:
        // an exponent below 1e-4 and from 1e17 up, written `1e+21` / `1.5e-07`.
        let abs = d.abs();
        if abs != 0.0 && !(1e-4..1e17).contains(&abs) {
            let s = format!("{d:e}");
            let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exp.abs())
        } else {
            format!("{d}")
        }
    }
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn line(out: &mut BytesMut, prefix: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.extend_from_slice(&[prefix]);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

fn number(out: &mut BytesMut, prefix: u8, n: i64) {
    let mut buf = itoa::Buffer::new();
    line(out, prefix, buf.format(n).as_bytes());
}

fn bulk(out: &mut BytesMut, prefix: u8, data: &[u8]) {
    number(out, prefix, len_i64(data.len()));
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, prefix: u8, items: &[Reply], protocol: Protocol) {
    number(out, prefix, len_i64(items.len()));
    for item in items {
        item.encode(protocol, out);
    }
}

#[cfg(test)]
mod tests;
