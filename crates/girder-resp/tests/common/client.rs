//! Raw clients that send and receive separately, for the differential tests where
//! several clients block: each side runs the same script and the transcripts compare.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A connection that sends and receives separately, for clients that block. Replies are
/// kept raw, like the harness's, so both servers' bytes can be compared.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects to `addr` and selects database `db`.
    pub fn connect(addr: &str, db: &str) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut client = Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        assert_eq!(client.call(&["SELECT", db]), b"+OK\r\n");
        client
    }

    pub fn send(&mut self, cmd: &[&str]) {
        let mut wire = format!("*{}\r\n", cmd.len()).into_bytes();
        for a in cmd {
            wire.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.writer.write_all(&wire).unwrap();
    }

    pub fn receive(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_reply(&mut out);
        out
    }

    pub fn call(&mut self, cmd: &[&str]) -> Vec<u8> {
        self.send(cmd);
        self.receive()
    }

    fn read_reply(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.reader.read_until(b'\n', out).unwrap();
        assert!(out.ends_with(b"\r\n"), "truncated reply: {out:?}");
        let header = String::from_utf8_lossy(&out[start + 1..out.len() - 2]).into_owned();
        match out[start] {
            b'$' | b'=' => {
                if let Ok(len @ 0..) = header.parse::<i64>() {
                    let mut data = vec![0; usize::try_from(len).unwrap() + 2];
                    self.reader.read_exact(&mut data).unwrap();
                    out.extend_from_slice(&data);
                }
            }
            b'*' | b'~' | b'>' | b'%' => {
                let n = header.parse::<i64>().unwrap().max(0);
                let n = if out[start] == b'%' { n * 2 } else { n };
                for _ in 0..n {
                    self.read_reply(out);
                }
            }
            _ => {}
        }
    }

    /// Whether a reply is waiting to be read, without waiting for one.
    pub fn has_reply(&mut self) -> bool {
        self.writer.set_nonblocking(true).unwrap();
        let ready = matches!(self.reader.fill_buf(), Ok(b) if !b.is_empty());
        self.writer.set_nonblocking(false).unwrap();
        ready
    }
}

/// The address a harness connection is connected to, from CLIENT INFO's `laddr`.
pub fn server_addr(side: &mut super::Raw) -> String {
    let info = side.call(&super::args(&["CLIENT", "INFO"]));
    let info = String::from_utf8_lossy(&info).into_owned();
    let laddr = info
        .split_whitespace()
        .find_map(|f| f.strip_prefix("laddr="))
        .expect("CLIENT INFO has laddr");
    laddr.to_owned()
}

/// Long enough for a command sent by one client to be blocked before another acts.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(50));
}
