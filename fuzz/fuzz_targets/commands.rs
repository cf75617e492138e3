//! The command layer on arbitrary input: bytes are parsed into commands and every command
//! runs against a real keyspace, its reply encoded in RESP2 and RESP3. No input may panic.
#![no_main]

use bytes::BytesMut;
use girder_kv::{Keyspace, ManualClock};
use girder_resp::codec::{parse_command, Limits, Protocol};
use girder_resp::commands::{dispatch, Ctx};
use girder_resp::state::{RespConfig, Shared};
use girder_runtime::{BuildInfo, Metrics};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

/// Commands that wait for other clients: a single-client harness would only register
/// waiters nobody serves.
const BLOCKING: [&[u8]; 5] = [b"blpop", b"brpop", b"blmove", b"blmpop", b"brpoplpush"];

fuzz_target!(|data: &[u8]| {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let keyspace = Keyspace::new(clock.clone(), 1 << 16);
    let ids = girder_id::Generator::new(girder_id::Config::default(), girder_id::SystemClock)
        .expect("node 0 is a valid generator");
    let shared = Shared::new(
        RespConfig::default(),
        Arc::new(ids),
        &Metrics::new(BuildInfo::default()),
    );
    let addr = "127.0.0.1:1".parse().unwrap();
    let mut client = shared.register(addr, addr);
    let limits = Limits {
        max_bulk_len: 256,
        max_array_len: 32,
        max_inline_len: 256,
        unauthenticated: false,
    };
    let mut buf = BytesMut::from(data);
    let mut out = BytesMut::new();
    let mut now_ms = 1_800_000_000_000;
    while let Ok(Some(args)) = parse_command(&mut buf, &limits) {
        if args.is_empty() || BLOCKING.iter().any(|b| args[0].eq_ignore_ascii_case(b)) {
            continue;
        }
        // Time moves a little with every command, so TTLs expire mid-sequence.
        now_ms += 7;
        clock.advance(7);
        let (_, reply) = dispatch(
            &mut Ctx {
                keyspace: &keyspace,
                client: &mut client,
                shared: &shared,
                now_ms,
            },
            &args,
        );
        reply.encode(Protocol::Resp2, &mut out);
        reply.encode(Protocol::Resp3, &mut out);
        out.clear();
        let _ = keyspace.expire_cycle(16);
    }
});
