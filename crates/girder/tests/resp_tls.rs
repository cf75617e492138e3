//! TLS on the RESP listener: a rustls client and redis-cli against a real node, with the
//! test certificates in `tests/tls/` (regenerate with `tests/tls/gen.sh`).
//!
//! redis-cli must be on PATH for the redis-cli test; without it that test prints a
//! notice and passes, unless `REDIS_CLI_REQUIRED=1` (set by `.ci/run`).

mod common;

use girder::config::Config;
use girder::Node;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

fn config(name: &str, client_ca: bool) -> Config {
    let mut config = common::local_config(name);
    config.resp.tls.cert = Some(fixture("server.pem"));
    config.resp.tls.key = Some(fixture("server.key"));
    if client_ca {
        config.resp.tls.client_ca = Some(fixture("ca.pem"));
    }
    config
}

async fn start(config: Config) -> SocketAddr {
    let node = Node::builder(config).bind().await.unwrap();
    let addr = node.resp_addr();
    tokio::spawn(node.run(std::future::pending()));
    addr
}

fn client_config(ca: &str, identity: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(fixture(ca)).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if identity {
        let chain = CertificateDer::pem_file_iter(fixture("client.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(fixture("client.key")).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(config)
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// Sends `wire` and reads until `want` bytes arrived (or the stream ends).
async fn roundtrip(s: &mut Tls, wire: &[u8], want: usize) -> std::io::Result<Vec<u8>> {
    s.write_all(wire).await?;
    s.flush().await?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while out.len() < want {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut wire = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        wire.extend_from_slice(a);
        wire.extend_from_slice(b"\r\n");
    }
    wire
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_is_served_and_others_are_refused() {
    let addr = start(config("tls", false)).await;
    let mut s = connect(addr, client_config("ca.pem", false)).await.unwrap();
    assert_eq!(
        roundtrip(&mut s, &command(&[b"PING"]), 7).await.unwrap(),
        b"+PONG\r\n"
    );
    // A 1 MiB value each way, pipelined with a GET: replies that exceed one TLS record
    // and the server's 64 KiB flush threshold all arrive.
    let value = vec![b'x'; 1 << 20];
    let mut wire = command(&[b"SET", b"big", &value]);
    wire.extend(command(&[b"GET", b"big"]));
    let want = 5 + format!("${}\r\n", value.len()).len() + value.len() + 2;
    let reply = roundtrip(&mut s, &wire, want).await.unwrap();
    assert_eq!(&reply[..5], b"+OK\r\n");
    assert_eq!(reply.len(), want);
    assert!(reply[5..].starts_with(b"$1048576\r\nxxx"));

    // A client that trusts another CA rejects the server's certificate.
    let err = connect(addr, client_config("other-ca.pem", false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    // Plain RESP on the TLS port gets no reply, and the server goes on serving.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), plain.read(&mut buf))
        .await
        .expect("the server answers a non-TLS client by closing")
        .unwrap_or(0);
    assert!(!buf[..n].starts_with(b"+PONG"), "{:?}", &buf[..n]);
    let mut again = connect(addr, client_config("ca.pem", false)).await.unwrap();
    assert_eq!(
        roundtrip(&mut again, &command(&[b"GET", b"big"]), 11)
            .await
            .unwrap()[..10],
        *b"$1048576\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_clients_with_its_certificates_get_in() {
    let addr = start(config("mtls", true)).await;
    // TLS 1.3: the client's handshake completes before the server checks its
    // certificate, so the refusal shows on the first read or write.
    let refused = async {
        let mut s = connect(addr, client_config("ca.pem", false)).await?;
        roundtrip(&mut s, &command(&[b"PING"]), 7).await
    }
    .await;
    assert!(
        !matches!(&refused, Ok(r) if r.starts_with(b"+PONG")),
        "a client without a certificate was served: {refused:?}"
    );
    let mut s = connect(addr, client_config("ca.pem", true)).await.unwrap();
    assert_eq!(
        roundtrip(&mut s, &command(&[b"PING"]), 7).await.unwrap(),
        b"+PONG\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_speaks_tls_to_it() {
    let addr = start(config("tls-cli", false)).await;
    let run = |args: &[&str]| {
        std::process::Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(fixture("ca.pem"))
            .args(["-h", "localhost", "-p", &addr.port().to_string()])
            .args(args)
            .output()
    };
    let out = match tokio::task::block_in_place(|| run(&["PING"])) {
        Ok(out) => out,
        Err(e) => {
            assert!(
                std::env::var("REDIS_CLI_REQUIRED").as_deref() != Ok("1"),
                "REDIS_CLI_REQUIRED=1 but redis-cli cannot run: {e}"
            );
            eprintln!("skipping: redis-cli not found ({e})");
            return;
        }
    };
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "PONG",
        "{out:?}"
    );
    let out = tokio::task::block_in_place(|| run(&["SET", "greeting", "hello"])).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    let out = tokio::task::block_in_place(|| run(&["GET", "greeting"])).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
}

#[tokio::test]
async fn unusable_tls_files_stop_the_node_with_the_path() {
    let mut c = config("tls-bad", false);
    c.resp.tls.key = Some(fixture("missing.key"));
    let err = Node::builder(c).bind().await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("resp.tls") && text.contains("missing.key"),
        "{text}"
    );
    let mut c = config("tls-mismatch", false);
    c.resp.tls.key = Some(fixture("client.key"));
    let text = format!("{:#}", Node::builder(c).bind().await.unwrap_err());
    assert!(text.contains("server.pem"), "{text}");
    let mut c = config("tls-half", false);
    c.resp.tls.key = None;
    let text = c.validate().unwrap_err().to_string();
    assert!(text.contains("resp.tls.cert and resp.tls.key"), "{text}");
}
