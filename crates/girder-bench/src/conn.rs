//! One client connection: write a batch of encoded commands with one write, read back
//! exactly as many replies.
//!
//! Invariant: the read buffer holds only bytes not yet returned as a reply, so a batch's
//! replies are never confused with a later batch's (a server that sends more replies than
//! commands leaves them for the next read, where the counts stop matching).

use crate::resp::{self, ProtocolError, Reply};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

/// What can end a connection. Error *replies* are not here: they are [`Reply::Error`].
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Connecting, reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection while replies were still expected.
    #[error("connection closed by the server with {expected} replies outstanding")]
    Closed {
        /// Replies still expected.
        expected: usize,
    },
    /// The server sent something that is not RESP2.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// A RESP2 connection (the client never sends HELLO, so replies stay RESP2).
pub struct Conn {
    stream: TcpStream,
    /// Received bytes not yet parsed into a returned reply.
    buf: Vec<u8>,
}

impl Conn {
    /// Connects with `TCP_NODELAY` set: a batch goes out in one write and waits for its
    /// replies, so Nagle's algorithm could only delay it.
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Conn, ConnError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sends `commands` (already RESP-encoded, `n` of them) and returns their `n` replies
    /// in order.
    pub async fn batch(&mut self, commands: &[u8], n: usize) -> Result<Vec<Reply>, ConnError> {
        self.stream.write_all(commands).await?;
        self.read_replies(n).await
    }

    /// Runs one command and returns its reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, ConnError> {
        let mut out = Vec::new();
        resp::encode(&mut out, args);
        let mut replies = self.batch(&out, 1).await?;
        replies.pop().ok_or(ConnError::Closed { expected: 1 })
    }

    /// Reads until `n` complete replies are parsed.
    async fn read_replies(&mut self, n: usize) -> Result<Vec<Reply>, ConnError> {
        let mut replies = Vec::with_capacity(n);
        let mut pos = 0;
        while replies.len() < n {
            match resp::parse(&self.buf[pos..])? {
                Some((reply, used)) => {
                    replies.push(reply);
                    pos += used;
                }
                None => {
                    // Drop what was parsed so the buffer does not grow with the batch.
                    self.buf.drain(..pos);
                    pos = 0;
                    if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                        self.buf.reserve(64 * 1024);
                    }
                    if self.stream.read_buf(&mut self.buf).await? == 0 {
                        return Err(ConnError::Closed {
                            expected: n - replies.len(),
                        });
                    }
                }
            }
        }
        self.buf.drain(..pos);
        Ok(replies)
    }
}
