//! Real loopback peers for the integration tests: a tokio-tungstenite WebSocket server (plain or
//! TLS via tokio-rustls with an rcgen certificate) and a hyper HTTP/2 server with TLS + ALPN h2.
#![allow(
    dead_code,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::result_large_err
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ringbolt_net::{Backend, Driver, DriverConfig, WaitMode};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message as TMsg;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};

/// A test PKI: a CA and a `localhost` leaf signed by it.
pub struct Pki {
    pub ca_pem: String,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
    pub leaf_der: CertificateDer<'static>,
    pub leaf_key: Vec<u8>,
}

pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ringbolt test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
        leaf_der: leaf.der().clone(),
        leaf_key: leaf_key.serialize_der(),
    }
}

pub fn acceptor(pki: &Pki, alpn: &[&[u8]]) -> TlsAcceptor {
    acceptor_versions(pki, alpn, rustls::DEFAULT_VERSIONS)
}

pub fn acceptor_versions(
    pki: &Pki,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![pki.leaf_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key.clone())),
        )
        .unwrap();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(cfg))
}

/// Runs `fut` on a fresh multi-thread runtime in a background thread.
pub fn spawn_runtime<F>(f: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()> + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        tx.send(()).unwrap();
        local.block_on(&rt, f());
    });
    rx.recv().unwrap();
}

/// Payload of message `seq` of `size` bytes: the sequence number then a pattern derived from it.
pub fn payload(seq: u64, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    v.extend_from_slice(&seq.to_le_bytes());
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v.truncate(size.max(8));
    v
}

/// Starts the WebSocket test server (TLS when `pki` is given). The request path picks the script:
/// `/count/N/SIZE`, `/frag`, `/large/SIZE`, `/ping`, `/close`, `/reset`, `/stall`, `/echo`,
/// `/keepalive`, `/garbage`.
pub fn ws_server(pki: Option<&Pki>) -> SocketAddr {
    ws_server_with(pki.map(|p| acceptor(p, &[b"http/1.1"])))
}

/// The WebSocket test server speaking TLS 1.2 only (the client then keeps rustls' record layer).
pub fn ws_server_tls12(pki: &Pki) -> SocketAddr {
    ws_server_with(Some(acceptor_versions(
        pki,
        &[b"http/1.1"],
        &[&rustls::version::TLS12],
    )))
}

fn ws_server_with(acceptor: Option<TlsAcceptor>) -> SocketAddr {
    serve_loopback(move |tcp| {
        let acceptor = acceptor.clone();
        async move {
            match acceptor {
                Some(a) => {
                    if let Ok(tls) = a.accept(tcp).await {
                        serve_ws(tls).await;
                    }
                }
                None => serve_ws(tcp).await,
            }
        }
    })
}

/// Listens on an ephemeral loopback port and runs `handle` on every accepted connection (TCP
/// no-delay set), each as a local task of one background runtime. Returns the address.
fn serve_loopback<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    spawn_runtime(move || async move {
        let listener = TcpListener::from_std(std_listener).unwrap();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tcp.set_nodelay(true).unwrap();
            tokio::task::spawn_local(handle(tcp));
        }
    });
    addr
}

trait RawTcp {
    fn tcp(&self) -> &TcpStream;
    fn tcp_mut(&mut self) -> &mut TcpStream;
}
impl RawTcp for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
    fn tcp_mut(&mut self) -> &mut TcpStream {
        self
    }
}
impl RawTcp for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
    fn tcp_mut(&mut self) -> &mut TcpStream {
        self.get_mut().0
    }
}

async fn serve_ws<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + RawTcp,
{
    let path = Arc::new(std::sync::Mutex::new(String::new()));
    let p2 = path.clone();
    let cb = move |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                   resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
        *p2.lock().unwrap() = req.uri().path().to_string();
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, cb).await else {
        return;
    };
    let path = path.lock().unwrap().clone();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["count", n, size] => {
            let n: u64 = n.parse().unwrap();
            let size: usize = size.parse().unwrap();
            for seq in 0..n {
                if ws.feed(TMsg::binary(payload(seq, size))).await.is_err() {
                    return;
                }
                if seq % 64 == 63 && ws.flush().await.is_err() {
                    return;
                }
            }
            let _ = ws.flush().await;
            let _ = ws
                .send(TMsg::Close(Some(CloseFrame {
                    code: 1000.into(),
                    reason: "done".into(),
                })))
                .await;
            while let Some(Ok(_)) = ws.next().await {}
        }
        ["frag"] => {
            // "hello, " + "fragmented " + "world" as three frames, a ping in between.
            let frames = [
                Frame::message(&b"hello, "[..], OpCode::Data(Data::Text), false),
                Frame::message(&b"fragmented "[..], OpCode::Data(Data::Continue), false),
                Frame::ping(&b"mid"[..]),
                Frame::message(&b"world"[..], OpCode::Data(Data::Continue), true),
            ];
            for f in frames {
                ws.send(TMsg::Frame(f)).await.unwrap();
            }
            // Then a binary message in 1000 fragments of 1000 bytes.
            let big = payload(7, 1_000_000);
            for (i, chunk) in big.chunks(1000).enumerate() {
                let op = if i == 0 {
                    OpCode::Data(Data::Binary)
                } else {
                    OpCode::Data(Data::Continue)
                };
                let last = (i + 1) * 1000 >= big.len();
                ws.feed(TMsg::Frame(Frame::message(chunk.to_vec(), op, last)))
                    .await
                    .unwrap();
            }
            ws.flush().await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        }
        ["large", size] => {
            let size: usize = size.parse().unwrap();
            ws.send(TMsg::binary(payload(1, size))).await.unwrap();
            ws.send(TMsg::text("after")).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        }
        ["ping"] => {
            ws.send(TMsg::Ping(b"are you there".to_vec().into()))
                .await
                .unwrap();
            while let Some(Ok(m)) = ws.next().await {
                if let TMsg::Pong(p) = m {
                    let ok = &p[..] == b"are you there";
                    ws.send(TMsg::text(if ok { "pong ok" } else { "pong bad" }))
                        .await
                        .unwrap();
                }
            }
        }
        ["close"] => {
            ws.send(TMsg::text("bye soon")).await.unwrap();
            ws.send(TMsg::Close(Some(CloseFrame {
                code: 4001.into(),
                reason: "test".into(),
            })))
            .await
            .unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        }
        ["reset"] => {
            ws.send(TMsg::text("first")).await.unwrap();
            ws.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let inner = ws.get_mut();
            // Half a frame: binary, 16-bit length 4096, then 3 bytes of payload.
            inner
                .write_all(&[0x82, 126, 0x10, 0x00, 1, 2, 3])
                .await
                .unwrap();
            inner.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            inner.tcp().set_zero_linger().unwrap();
            drop(ws);
        }
        ["garbage"] => {
            let inner = ws.get_mut();
            // Reserved opcode 0x3.
            inner.write_all(&[0x83, 2, b'h', b'i']).await.unwrap();
            inner.flush().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        ["tlsgarbage"] => {
            ws.send(TMsg::text("clean")).await.unwrap();
            ws.flush().await.unwrap();
            // A well-formed application-data record header with a body that fails to decrypt,
            // written under the TLS layer.
            let mut rec = vec![23u8, 3, 3, 0, 40];
            rec.extend_from_slice(&[0x5A; 40]);
            ws.get_mut().tcp_mut().write_all(&rec).await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        ["stall"] => {
            ws.send(TMsg::text("one")).await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        ["keepalive"] => {
            while let Some(Ok(m)) = ws.next().await {
                if let TMsg::Text(t) = &m
                    && t.as_str() == "PING"
                {
                    ws.send(TMsg::text("PONG")).await.unwrap();
                }
            }
        }
        _ => {
            // echo
            while let Some(Ok(m)) = ws.next().await {
                if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The driver configurations every test runs on: block mode on io_uring and on the fallback,
/// plus spin mode when the machine has at least two cores.
pub fn matrix() -> Vec<(&'static str, DriverConfig)> {
    let mut m = vec![
        (
            "uring-block",
            DriverConfig::new(WaitMode::Block, Backend::IoUring),
        ),
        (
            "fallback-block",
            DriverConfig::new(WaitMode::Block, Backend::Fallback),
        ),
    ];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores >= 2 {
        m.push((
            "uring-spin",
            DriverConfig::new(WaitMode::Spin, Backend::IoUring),
        ));
        m.push((
            "fallback-spin",
            DriverConfig::new(WaitMode::Spin, Backend::Fallback),
        ));
    }
    m
}

pub fn is_spin(cfg: &DriverConfig) -> bool {
    cfg.mode == WaitMode::Spin
}

pub fn driver(cfg: &DriverConfig) -> Driver {
    Driver::new(cfg).unwrap()
}

/// Starts a hyper HTTP/2 server with TLS + ALPN h2 on loopback. Small initial windows (64 KiB-1)
/// so that large bodies exercise flow control; server-initiated PINGs every 100 ms with a 1 s
/// timeout (a client that does not answer is dropped). Routes: `POST /echo` (echoes the body),
/// `/delay/MS`, `/goaway` (responds, then GOAWAY), `/reset` (RST_STREAM), `/count` (requests
/// served on this connection).
pub fn h2_server(pki: &Pki) -> SocketAddr {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::{Request, Response};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let acceptor = acceptor(pki, &[b"h2"]);
    serve_loopback(move |tcp| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let goaway = Arc::new(tokio::sync::Notify::new());
            let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let g2 = goaway.clone();
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let goaway = g2.clone();
                let served = served.clone();
                async move {
                    let n = served.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    let path = req.uri().path().to_string();
                    let body = req.into_body().collect().await?.to_bytes();
                    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                    let out = match parts.as_slice() {
                        ["echo"] => body,
                        ["delay", ms] => {
                            let ms: u64 = ms.parse().unwrap_or(0);
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            bytes::Bytes::from(format!("{{\"delay_ms\":{ms}}}"))
                        }
                        ["goaway"] => {
                            goaway.notify_one();
                            bytes::Bytes::from_static(b"{\"bye\":true}")
                        }
                        ["count"] => bytes::Bytes::from(format!("{{\"served\":{n}}}")),
                        _ => {
                            // An error from the service resets the stream.
                            return Err::<
                                Response<Full<bytes::Bytes>>,
                                Box<dyn std::error::Error + Send + Sync>,
                            >("reset requested".into());
                        }
                    };
                    Ok(Response::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(Full::new(out))
                        .unwrap())
                }
            });
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .initial_stream_window_size(65_535)
                .initial_connection_window_size(65_535)
                .keep_alive_interval(Duration::from_millis(100))
                .keep_alive_timeout(Duration::from_secs(1));
            let conn = builder.serve_connection(TokioIo::new(tls), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = goaway.notified() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        }
    })
}
