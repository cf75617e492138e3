//! RESP2 on the client side: commands are encoded as arrays of bulk strings, replies are
//! parsed into [`Reply`].
//!
//! Invariants:
//! - [`parse`] returning `Ok(None)` means "need more bytes" and is never an error; it
//!   consumes nothing, so the caller retries with the same buffer plus what it read next.
//! - A length read from a header never sizes an allocation beyond the bytes actually
//!   buffered, so a bogus header cannot make the client allocate gigabytes.
//! - Anything that is not well-formed RESP2 (an unknown type byte, a negative length
//!   other than -1, a bulk string not followed by CRLF, nesting deeper than
//!   [`MAX_DEPTH`]) is a [`ProtocolError`]: the connection cannot be trusted after it.
//!
//! Error replies (`-ERR ...`) are values, not protocol errors: the benchmark counts them.

use std::fmt;

/// Deepest nesting of arrays accepted in a reply. XREADGROUP's reply is four levels deep;
/// the bound only keeps a malformed reply from exhausting the stack.
pub const MAX_DEPTH: usize = 32;

/// Longest bulk string accepted, Redis's default `proto-max-bulk-len` (512 MB).
pub const MAX_BULK_LEN: usize = 512 * 1024 * 1024;

/// One RESP2 reply.
#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR message`: the text after the `-`.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo` (`$-1` is [`Reply::Nil`]).
    Bulk(Vec<u8>),
    /// `*2\r\n...` (`*-1` is [`Reply::Nil`]).
    Array(Vec<Reply>),
    /// The null bulk string `$-1` or the null array `*-1`.
    Nil,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Simple(s) => write!(f, "+{s}"),
            Reply::Error(s) => write!(f, "-{s}"),
            Reply::Integer(n) => write!(f, ":{n}"),
            Reply::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Reply::Array(items) => f.debug_list().entries(items).finish(),
            Reply::Nil => write!(f, "(nil)"),
        }
    }
}

/// A reply that is not well-formed RESP2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The first byte of a reply is not one of `+ - : $ *`.
    #[error("Protocol error: unexpected reply type byte {0:?}")]
    UnknownType(char),
    /// A length or integer line is not a decimal integer.
    #[error("Protocol error: invalid integer {0:?}")]
    BadInteger(String),
    /// A length below -1, or a bulk string longer than [`MAX_BULK_LEN`].
    #[error("Protocol error: invalid length {0}")]
    BadLength(i64),
    /// A bulk string is not followed by CRLF.
    #[error("Protocol error: bulk string not terminated by CRLF")]
    MissingCrlf,
    /// A simple string or error line is not valid UTF-8.
    #[error("Protocol error: line is not UTF-8")]
    NotUtf8,
    /// Arrays nested deeper than [`MAX_DEPTH`].
    #[error("Protocol error: replies nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Appends `args` as one RESP array of bulk strings (the form every Redis command takes).
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    push_decimal(out, args.len());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        push_decimal(out, arg.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Parses one reply from the start of `buf`: `Ok(Some((reply, bytes used)))`, or
/// `Ok(None)` if `buf` holds only part of a reply.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let mut pos = 0;
    match parse_at(buf, &mut pos, 0)? {
        Some(reply) => Ok(Some((reply, pos))),
        None => Ok(None),
    }
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Reply>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError::TooDeep);
    }
    let Some(line) = line(buf, pos) else {
        return Ok(None);
    };
    let Some((&kind, rest)) = line.split_first() else {
        return Err(ProtocolError::UnknownType('\r'));
    };
    match kind {
        b'+' => Ok(Some(Reply::Simple(utf8(rest)?))),
        b'-' => Ok(Some(Reply::Error(utf8(rest)?))),
        b':' => Ok(Some(Reply::Integer(integer(rest)?))),
        b'$' => {
            let len = integer(rest)?;
            if len == -1 {
                return Ok(Some(Reply::Nil));
            }
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= MAX_BULK_LEN)
                .ok_or(ProtocolError::BadLength(len))?;
            let end = *pos + len;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError::MissingCrlf);
            }
            let bulk = buf[*pos..end].to_vec();
            *pos = end + 2;
            Ok(Some(Reply::Bulk(bulk)))
        }
        b'*' => {
            let len = integer(rest)?;
            if len == -1 {
                return Ok(Some(Reply::Nil));
            }
            let len = usize::try_from(len).map_err(|_| ProtocolError::BadLength(len))?;
            // Every element takes at least 3 bytes (":0\r\n" is 4, "+\r\n" 3).
            let mut items = Vec::with_capacity(len.min((buf.len() - *pos) / 3));
            for _ in 0..len {
                match parse_at(buf, pos, depth + 1)? {
                    Some(item) => items.push(item),
                    None => return Ok(None),
                }
            }
            Ok(Some(Reply::Array(items)))
        }
        other => Err(ProtocolError::UnknownType(char::from(other))),
    }
}

/// The bytes from `*pos` to the next CRLF (excluded), advancing `*pos` past the CRLF, or
/// `None` if no CRLF is buffered yet.
fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let start = *pos;
    let rel = buf.get(start..)?.windows(2).position(|w| w == b"\r\n")?;
    *pos = start + rel + 2;
    Some(&buf[start..start + rel])
}

fn utf8(bytes: &[u8]) -> Result<String, ProtocolError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::NotUtf8)
}

fn integer(bytes: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.starts_with('+'))
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| ProtocolError::BadInteger(String::from_utf8_lossy(bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8]) -> Reply {
        match parse(input) {
            Ok(Some((reply, used))) => {
                assert_eq!(used, input.len(), "reply did not use all of {input:?}");
                reply
            }
            other => panic!("{input:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn encodes_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&mut out, &[b"XADD", b"s", b"*", b"", b"0123456789"]);
        assert_eq!(
            out,
            b"*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$0\r\n\r\n$10\r\n0123456789\r\n"
        );
    }

    #[test]
    fn encoded_commands_parse_back_as_arrays() {
        let mut out = Vec::new();
        let big = vec![b'x'; 1024];
        encode(&mut out, &[b"XACK", b"key", &big]);
        assert_eq!(
            one(&out),
            Reply::Array(vec![
                Reply::Bulk(b"XACK".to_vec()),
                Reply::Bulk(b"key".to_vec()),
                Reply::Bulk(big)
            ])
        );
    }

    #[test]
    fn parses_every_resp2_type() {
        assert_eq!(one(b"+OK\r\n"), Reply::Simple("OK".into()));
        assert_eq!(
            one(b"-NOGROUP No such key 's' or consumer group 'g'\r\n"),
            Reply::Error("NOGROUP No such key 's' or consumer group 'g'".into())
        );
        assert_eq!(one(b":-42\r\n"), Reply::Integer(-42));
        assert_eq!(one(b"$0\r\n\r\n"), Reply::Bulk(Vec::new()));
        // A bulk string may hold CRLF: only its length delimits it.
        assert_eq!(one(b"$4\r\na\r\nb\r\n"), Reply::Bulk(b"a\r\nb".to_vec()));
        assert_eq!(one(b"$-1\r\n"), Reply::Nil);
        assert_eq!(one(b"*-1\r\n"), Reply::Nil);
        assert_eq!(one(b"*0\r\n"), Reply::Array(Vec::new()));
    }

    #[test]
    fn parses_an_xreadgroup_reply() {
        let input = b"*1\r\n*2\r\n$1\r\ns\r\n*2\r\n\
            *2\r\n$3\r\n1-0\r\n*2\r\n$4\r\ndata\r\n$2\r\nab\r\n\
            *2\r\n$3\r\n1-1\r\n*-1\r\n";
        let entry = |id: &[u8], fields: Reply| Reply::Array(vec![Reply::Bulk(id.to_vec()), fields]);
        assert_eq!(
            one(input),
            Reply::Array(vec![Reply::Array(vec![
                Reply::Bulk(b"s".to_vec()),
                Reply::Array(vec![
                    entry(
                        b"1-0",
                        Reply::Array(vec![
                            Reply::Bulk(b"data".to_vec()),
                            Reply::Bulk(b"ab".to_vec())
                        ])
                    ),
                    entry(b"1-1", Reply::Nil),
                ]),
            ])])
        );
    }

    #[test]
    fn every_strict_prefix_needs_more_bytes() {
        let input = b"*3\r\n:1\r\n*2\r\n$5\r\nhello\r\n-ERR x\r\n$-1\r\n";
        for cut in 0..input.len() {
            assert_eq!(parse(&input[..cut]), Ok(None), "prefix of {cut} bytes");
        }
        assert!(matches!(parse(input), Ok(Some((Reply::Array(_), n))) if n == input.len()));
    }

    #[test]
    fn consecutive_replies_are_parsed_one_at_a_time() {
        let input = b"$3\r\n1-1\r\n:1\r\n+OK\r\ntrailing";
        let mut pos = 0;
        let mut replies = Vec::new();
        while let Ok(Some((reply, used))) = parse(&input[pos..]) {
            replies.push(reply);
            pos += used;
        }
        assert_eq!(
            replies,
            vec![
                Reply::Bulk(b"1-1".to_vec()),
                Reply::Integer(1),
                Reply::Simple("OK".into())
            ]
        );
        assert_eq!(&input[pos..], b"trailing");
    }

    #[test]
    fn malformed_replies_are_protocol_errors() {
        assert_eq!(parse(b"?x\r\n"), Err(ProtocolError::UnknownType('?')));
        assert_eq!(parse(b"\r\n"), Err(ProtocolError::UnknownType('\r')));
        // RESP3 types are not RESP2: the client never sends HELLO 3.
        assert_eq!(parse(b"_\r\n"), Err(ProtocolError::UnknownType('_')));
        assert_eq!(
            parse(b":12a\r\n"),
            Err(ProtocolError::BadInteger("12a".into()))
        );
        assert_eq!(
            parse(b":+1\r\n"),
            Err(ProtocolError::BadInteger("+1".into()))
        );
        assert_eq!(
            parse(b":\r\n"),
            Err(ProtocolError::BadInteger(String::new()))
        );
        assert_eq!(parse(b"$-2\r\n"), Err(ProtocolError::BadLength(-2)));
        assert_eq!(parse(b"*-5\r\n"), Err(ProtocolError::BadLength(-5)));
        assert_eq!(
            parse(b"$999999999999\r\n"),
            Err(ProtocolError::BadLength(999_999_999_999))
        );
        assert_eq!(parse(b"$3\r\nabcd\r\n"), Err(ProtocolError::MissingCrlf));
        assert_eq!(parse(b"+\xff\r\n"), Err(ProtocolError::NotUtf8));
        // An error deep inside an array is reported, not taken for "need more".
        assert_eq!(
            parse(b"*2\r\n:1\r\n$x\r\n"),
            Err(ProtocolError::BadInteger("x".into()))
        );
    }

    #[test]
    fn huge_array_headers_do_not_allocate_up_front() {
        // Claims 2^40 elements but holds one: needs more bytes, and must not try to
        // reserve a terabyte on the way.
        assert_eq!(parse(b"*1099511627776\r\n:1\r\n"), Ok(None));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&deep), Err(ProtocolError::TooDeep));
        let mut ok = b"*1\r\n".repeat(MAX_DEPTH);
        ok.extend_from_slice(b":7\r\n");
        assert!(matches!(parse(&ok), Ok(Some((_, n))) if n == ok.len()));
    }
}
