use super::*;
use proptest::prelude::*;

fn parse_all(input: &[u8], limits: &Limits) -> Result<(Vec<Args>, usize), ProtocolError> {
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(args) = parse_command(&mut buf, limits)? {
        out.push(args);
    }
    Ok((out, buf.len()))
}

fn args(items: &[&str]) -> Args {
    items
        .iter()
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect()
}

fn encode_multibulk(cmd: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", cmd.len()).into_bytes();
    for a in cmd {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn parses_pipelined_multibulk_and_inline_commands() {
    let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nSET a \"b c\"\n*1\r\n$4\r\nPI";
    let (cmds, left) = parse_all(input, &Limits::default()).unwrap();
    assert_eq!(
        cmds,
        vec![
            args(&["GET", "k"]),
            args(&["PING"]),
            args(&["SET", "a", "b c"])
        ]
    );
    assert_eq!(left, 10, "the partial command stays in the buffer");
}

#[test]
fn empty_commands_are_consumed() {
    let (cmds, left) = parse_all(b"*0\r\n*-1\r\n\r\n   \r\n", &Limits::default()).unwrap();
    assert_eq!(cmds, vec![Vec::<Bytes>::new(); 4]);
    assert_eq!(left, 0);
}

#[test]
fn binary_safe_bulk_strings() {
    let (cmds, _) = parse_all(b"*1\r\n$4\r\n\r\n\0\xff\r\n", &Limits::default()).unwrap();
    assert_eq!(cmds[0][0].as_ref(), b"\r\n\0\xff");
}

#[test]
fn protocol_errors_are_worded_like_redis() {
    let l = Limits::default();
    for (input, message) in [
        (&b"*abc\r\n"[..], "Protocol error: invalid multibulk length"),
        (b"*1\r\n+OK\r\n", "Protocol error: expected '$', got '+'"),
        (b"*1\r\n$-5\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$x\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$01\r\na\r\n", "Protocol error: invalid bulk length"),
        (
            b"*1\r\n$1\r\nab\r\n",
            "Protocol error: expected CRLF after bulk string",
        ),
        (
            b"SET \"a\r\n",
            "Protocol error: unbalanced quotes in request",
        ),
        (
            b"SET \"a\"b\r\n",
            "Protocol error: unbalanced quotes in request",
        ),
        (
            b"SET 'a\r\n",
            "Protocol error: unbalanced quotes in request",
        ),
    ] {
        let err = parse_all(input, &l).unwrap_err();
        assert_eq!(
            err.to_string(),
            message,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn unauthenticated_limits_are_redis_s() {
    let l = Limits::default().unauthenticated();
    // A complete header within the limit: the parser waits for the arguments.
    assert_eq!(parse_all(b"*10\r\n", &l).unwrap(), (vec![], 5));
    assert_eq!(
        parse_all(b"*11\r\n", &l).unwrap_err(),
        ProtocolError::UnauthenticatedMultibulkLength
    );
    assert_eq!(
        parse_all(b"*1\r\n$16385\r\n", &l).unwrap_err(),
        ProtocolError::UnauthenticatedBulkLength
    );
    assert!(parse_all(b"*1\r\n$16384\r\n", &l).is_ok());
    // The configured limits still come first.
    assert_eq!(
        parse_all(b"*2000000\r\n", &l).unwrap_err(),
        ProtocolError::InvalidMultibulkLength
    );
    assert!(parse_all(b"*11\r\n$16385\r\n", &Limits::default()).is_ok());
}

#[test]
fn limits_are_enforced_from_headers_before_the_data_arrives() {
    let l = Limits {
        max_bulk_len: 10,
        max_array_len: 3,
        max_inline_len: 16,
        unauthenticated: false,
    };
    // Only the headers are sent: the refusal does not wait for (or buffer) the payload.
    assert_eq!(
        parse_all(b"*1\r\n$11\r\n", &l).unwrap_err(),
        ProtocolError::InvalidBulkLength
    );
    assert_eq!(
        parse_all(b"*4\r\n", &l).unwrap_err(),
        ProtocolError::InvalidMultibulkLength
    );
    assert_eq!(
        parse_all(b"*99999999999999999999\r\n", &Limits::default()).unwrap_err(),
        ProtocolError::InvalidMultibulkLength
    );
    assert_eq!(
        parse_all(&[b'a'; 17], &l).unwrap_err(),
        ProtocolError::TooBigInlineRequest
    );
    assert_eq!(
        parse_all(&[b'*'; 18], &l).unwrap_err(),
        ProtocolError::TooBigMultibulkCount
    );
    assert!(
        parse_all(&[b'a'; 16], &l).unwrap().0.is_empty(),
        "still within the limit"
    );
    let mut long = b"*1\r\n$".to_vec();
    long.extend_from_slice(&[b'1'; 20]);
    assert_eq!(
        parse_all(&long, &l).unwrap_err(),
        ProtocolError::TooBigBulkCount
    );
}

#[test]
fn inline_quotes_and_escapes_follow_sdssplitargs() {
    let (cmds, _) = parse_all(
        b"SET \"a\\x41\\n\\\"q\\\"\" 'it\\'s' plain\r\n",
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(cmds[0], args(&["SET", "aA\n\"q\"", "it's", "plain"]));
}

#[test]
fn encodes_each_type_for_each_protocol() {
    let cases: Vec<(Reply, &[u8], &[u8])> = vec![
        (Reply::OK, b"+OK\r\n", b"+OK\r\n"),
        (
            Reply::error("ERR bad\r\nthing"),
            b"-ERR bad  thing\r\n",
            b"-ERR bad  thing\r\n",
        ),
        (Reply::Integer(-7), b":-7\r\n", b":-7\r\n"),
        (Reply::bulk("hi"), b"$2\r\nhi\r\n", b"$2\r\nhi\r\n"),
        (Reply::Null, b"$-1\r\n", b"_\r\n"),
        (Reply::NullArray, b"*-1\r\n", b"_\r\n"),
        (
            Reply::Map(vec![(Reply::bulk("k"), Reply::Integer(1))]),
            b"*2\r\n$1\r\nk\r\n:1\r\n",
            b"%1\r\n$1\r\nk\r\n:1\r\n",
        ),
        (
            Reply::Set(vec![Reply::Integer(1)]),
            b"*1\r\n:1\r\n",
            b"~1\r\n:1\r\n",
        ),
        (Reply::Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (Reply::Boolean(true), b":1\r\n", b"#t\r\n"),
        (
            Reply::Verbatim("x".into()),
            b"$1\r\nx\r\n",
            b"=5\r\ntxt:x\r\n",
        ),
        (
            Reply::Push(vec![Reply::bulk("m")]),
            b"*1\r\n$1\r\nm\r\n",
            b">1\r\n$1\r\nm\r\n",
        ),
    ];
    for (reply, resp2, resp3) in cases {
        let mut out = BytesMut::new();
        reply.encode(Protocol::Resp2, &mut out);
        assert_eq!(&out[..], resp2, "{reply:?} in RESP2");
        out.clear();
        reply.encode(Protocol::Resp3, &mut out);
        assert_eq!(&out[..], resp3, "{reply:?} in RESP3");
    }
}

#[test]
fn doubles_are_formatted_like_redis() {
    for (d, text) in [
        (1.0, "1"),
        (1.5, "1.5"),
        (-0.25, "-0.25"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-07"),
        (123456.0, "123456"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ] {
        assert_eq!(format_double(d), text);
    }
}

proptest! {
    /// A command split at any byte boundary parses to the same arguments once complete,
    /// and never errors or yields early.
    #[test]
    fn any_split_point_is_just_incomplete(cmd in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 1..6), split in any::<prop::sample::Index>()) {
        let wire = encode_multibulk(&cmd);
        let at = split.index(wire.len());
        let mut buf = BytesMut::from(&wire[..at]);
        prop_assert_eq!(parse_command(&mut buf, &Limits::default()).unwrap(), None);
        buf.extend_from_slice(&wire[at..]);
        let parsed = parse_command(&mut buf, &Limits::default()).unwrap().unwrap();
        let expected: Args = cmd.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        prop_assert_eq!(parsed, expected);
        prop_assert!(buf.is_empty());
    }

    /// Arbitrary bytes never panic the parser, and whatever it consumes it consumes whole.
    #[test]
    fn arbitrary_input_never_panics(input in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut buf = BytesMut::from(&input[..]);
        let before = buf.len();
        if let Ok(Some(_)) = parse_command(&mut buf, &Limits::default()) {
            prop_assert!(buf.len() < before || input.is_empty() || before == buf.len());
        }
    }
}

/// How a [`Writer`] step is written the plain way, for the property below.
#[derive(Debug, Clone)]
enum Step {
    Array(usize),
    Bulk(Vec<u8>),
    Reply(i64),
}

fn plain(steps: &[Step]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for step in steps {
        match step {
            Step::Array(n) => out.extend_from_slice(format!("*{n}\r\n").as_bytes()),
            Step::Bulk(b) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Step::Reply(i) => out.extend_from_slice(format!(":{i}\r\n").as_bytes()),
        }
    }
    out.to_vec()
}

fn step() -> impl Strategy<Value = Step> {
    // Lengths around every boundary of the staged path: one and two digits, the
    // longest staged element, and the staging buffer's size.
    let len = prop_oneof![0..12usize, 60..70usize, 95..105usize, 500..1100usize];
    prop_oneof![
        (0..200usize).prop_map(Step::Array),
        len.prop_flat_map(|n| prop::collection::vec(any::<u8>(), n))
            .prop_map(Step::Bulk),
        any::<i64>().prop_map(Step::Reply),
    ]
}

proptest! {
    /// The staged `Writer` writes exactly the bytes of writing each piece at once,
    /// whatever the mix of short and long elements, headers and other replies.
    #[test]
    fn writer_matches_the_plain_encoding(steps in prop::collection::vec(step(), 0..120)) {
        let mut w = Writer::new(Protocol::Resp2);
        for s in &steps {
            match s {
                Step::Array(n) => w.array(*n),
                Step::Bulk(b) => w.bulk(b),
                Step::Reply(i) => w.reply(&Reply::Integer(*i)),
            }
        }
        let Reply::Encoded(got) = w.finish() else { panic!("an encoded reply") };
        prop_assert_eq!(got.to_vec(), plain(&steps));
    }

    /// `bulk_array` of any elements is the RESP array of them.
    #[test]
    fn bulk_array_matches_the_plain_encoding(items in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..130), 0..80)) {
        let reply = bulk_array(items.len(), &mut items.iter().map(Vec::as_slice));
        let mut got = BytesMut::new();
        reply.encode(Protocol::Resp3, &mut got);
        let mut steps = vec![Step::Array(items.len())];
        steps.extend(items.iter().cloned().map(Step::Bulk));
        prop_assert_eq!(got.to_vec(), plain(&steps));
    }
}
