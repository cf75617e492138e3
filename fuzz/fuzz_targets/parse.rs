//! The RESP request parser on arbitrary bytes: never panics, never reports a command
//! without consuming it, and a parse error is final for the connection.
#![no_main]

use bytes::BytesMut;
use girder_resp::codec::{parse_command, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits, so the fuzzer reaches them.
    let limits = Limits {
        max_bulk_len: 64,
        max_array_len: 16,
        max_inline_len: 128,
    };
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match parse_command(&mut buf, &limits) {
            Ok(Some(args)) => {
                assert!(buf.len() < before, "a command was returned without consuming input");
                // Arrays are bounded by their header; inline commands by their line length.
                assert!(args.len() <= limits.max_array_len.max(limits.max_inline_len));
                assert!(args.iter().all(|a| a.len() <= limits.max_bulk_len.max(limits.max_inline_len)));
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "incomplete input must stay buffered");
                break;
            }
            Err(_) => break,
        }
    }
});
