//! The client connection against a scripted server on port 0: replies split at every
//! byte, several replies in one segment, error replies, a server that hangs up, and one
//! that does not speak RESP.

use girder_bench::conn::{Conn, ConnError};
use girder_bench::resp::{self, ProtocolError, Reply};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Starts a server that reads `expect` bytes, then writes `reply` in `chunk`-byte
/// segments (flushing and pausing between them so the client sees partial replies),
/// then closes. Returns its address and a handle yielding the bytes it received.
async fn scripted(
    expect: usize,
    reply: Vec<u8>,
    chunk: usize,
) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        socket.set_nodelay(true).expect("nodelay");
        let mut got = vec![0; expect];
        socket.read_exact(&mut got).await.expect("read the command");
        for piece in reply.chunks(chunk) {
            socket.write_all(piece).await.expect("write");
            socket.flush().await.expect("flush");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        got
    });
    (addr, handle)
}

#[tokio::test]
async fn replies_dribbled_a_byte_at_a_time_are_reassembled_in_order() {
    let mut commands = Vec::new();
    resp::encode(&mut commands, &[b"XADD", b"s", b"*", b"data", b"abc"]);
    resp::encode(&mut commands, &[b"XADD", b"s", b"*", b"data", b"abc"]);
    resp::encode(&mut commands, &[b"XACK", b"s", b"g", b"1-0"]);
    let reply =
        b"$3\r\n1-0\r\n-ERR The ID specified in XADD is equal or smaller\r\n:1\r\n".to_vec();
    let (addr, server) = scripted(commands.len(), reply, 1).await;

    let mut conn = Conn::connect(&addr).await.expect("connect");
    let replies = conn.batch(&commands, 3).await.expect("batch");
    assert_eq!(
        replies,
        vec![
            Reply::Bulk(b"1-0".to_vec()),
            Reply::Error("ERR The ID specified in XADD is equal or smaller".into()),
            Reply::Integer(1),
        ]
    );
    assert_eq!(
        server.await.expect("server"),
        commands,
        "the server got the exact bytes"
    );
}

#[tokio::test]
async fn a_large_nested_reply_split_across_reads_is_parsed_whole() {
    // An XREADGROUP reply of 100 entries of 1 KiB, sent in 1000-byte segments.
    let mut reply = b"*1\r\n*2\r\n$1\r\ns\r\n*100\r\n".to_vec();
    let value = vec![b'v'; 1024];
    for i in 0..100 {
        let id = format!("1-{i}");
        reply.extend_from_slice(
            format!("*2\r\n${}\r\n{id}\r\n*2\r\n$4\r\ndata\r\n", id.len()).as_bytes(),
        );
        reply.extend_from_slice(b"$1024\r\n");
        reply.extend_from_slice(&value);
        reply.extend_from_slice(b"\r\n");
    }
    reply.extend_from_slice(b"+OK\r\n");
    let mut command = Vec::new();
    resp::encode(&mut command, &[b"PING"]);
    let (addr, _server) = scripted(command.len(), reply, 1000).await;

    let mut conn = Conn::connect(&addr).await.expect("connect");
    let mut replies = conn.batch(&command, 2).await.expect("batch").into_iter();
    let Some(Reply::Array(streams)) = replies.next() else {
        panic!("first reply is not an array");
    };
    let ids = girder_bench::streams::entry_ids(streams, "s").expect("shape");
    assert_eq!(ids.len(), 100);
    assert_eq!(ids[99], b"1-99");
    assert_eq!(replies.next(), Some(Reply::Simple("OK".into())));
}

#[tokio::test]
async fn a_server_hanging_up_mid_batch_is_an_error_naming_what_is_missing() {
    let mut commands = Vec::new();
    resp::encode(&mut commands, &[b"PING"]);
    resp::encode(&mut commands, &[b"PING"]);
    // One reply and half of the second.
    let (addr, _server) = scripted(commands.len(), b"+PONG\r\n+PO".to_vec(), 64).await;
    let mut conn = Conn::connect(&addr).await.expect("connect");
    match conn.batch(&commands, 2).await {
        Err(ConnError::Closed { expected: 1 }) => {}
        other => panic!("expected Closed with 1 reply outstanding, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_not_speaking_resp_is_a_protocol_error() {
    let mut command = Vec::new();
    resp::encode(&mut command, &[b"PING"]);
    let (addr, _server) =
        scripted(command.len(), b"HTTP/1.1 400 Bad Request\r\n".to_vec(), 64).await;
    let mut conn = Conn::connect(&addr).await.expect("connect");
    match conn.call(&[b"PING"]).await {
        Err(ConnError::Protocol(ProtocolError::UnknownType('H'))) => {}
        other => panic!("expected a protocol error, got {other:?}"),
    }
}
