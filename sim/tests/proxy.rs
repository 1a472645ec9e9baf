//! The fault proxy between a real TLS client and a real TLS server (rustls on both ends, the
//! emulators' loopback PKI): every fault kind, and the control API.
//!
//! The server answers a client's first byte: `E` echoes every byte back, `S` streams 8-byte
//! big-endian counters (one every millisecond), so a client can tell loss from delay.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the test failing

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringbolt_sim::proxy::{Proxy, ProxyFault, Route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector, client::TlsStream};

struct Pair {
    proxy: Arc<Proxy>,
    connector: TlsConnector,
    rt: tokio::runtime::Runtime,
}

async fn serve(mut s: tokio_rustls::server::TlsStream<TcpStream>) {
    let mut mode = [0u8; 1];
    if s.read_exact(&mut mode).await.is_err() {
        return;
    }
    if mode[0] == b'E' {
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    } else {
        let mut i: u64 = 0;
        loop {
            if s.write_all(&i.to_be_bytes()).await.is_err() || s.flush().await.is_err() {
                return;
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fn pair(tag: &str) -> Pair {
    let dir = std::env::temp_dir().join(format!("ringbolt-proxy-{tag}-{}", std::process::id()));
    let pki = ringbolt_sim::tls::generate(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let upstream = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::clone(&pki.server));
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(s) = acceptor.accept(tcp).await {
                    serve(s).await;
                }
            });
        }
    });
    let proxy = Proxy::start(vec![Route {
        name: "r".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream,
    }])
    .unwrap();
    Pair {
        proxy: Arc::new(proxy),
        connector: common::connector_trusting(&pki.ca_pem_path),
        rt,
    }
}

impl Pair {
    fn addr(&self) -> SocketAddr {
        self.proxy.listen_addr("r").unwrap()
    }

    async fn connect(&self, mode: u8) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr()).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut s = self.connector.connect(name, tcp).await.unwrap();
        s.write_all(&[mode]).await.unwrap();
        s.flush().await.unwrap();
        s
    }
}

/// Reads counters until `until`; returns them, or the error that ended the stream.
async fn read_counters(
    s: &mut TlsStream<TcpStream>,
    until: Duration,
) -> (Vec<u64>, Option<std::io::Error>) {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + until;
    let mut b = [0u8; 8];
    loop {
        match tokio::time::timeout_at(deadline, s.read_exact(&mut b)).await {
            Err(_) => return (out, None),
            Ok(Ok(_)) => out.push(u64::from_be_bytes(b)),
            Ok(Err(e)) => return (out, Some(e)),
        }
    }
}

fn contiguous(v: &[u64]) -> bool {
    v.windows(2).all(|w| w[1] == w[0] + 1)
}

async fn rtt(s: &mut TlsStream<TcpStream>) -> Duration {
    let t = Instant::now();
    s.write_all(b"ping").await.unwrap();
    s.flush().await.unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"ping");
    t.elapsed()
}

#[test]
fn latency_and_jitter_delay_each_round_trip_and_clear_restores_it() {
    let p = pair("latency");
    p.rt.block_on(async {
        let mut s = p.connect(b'E').await;
        let base = rtt(&mut s).await;
        p.proxy
            .inject(
                "r",
                ProxyFault::Latency {
                    ms: 40,
                    jitter_ms: 20,
                },
            )
            .unwrap();
        let slow = rtt(&mut s).await;
        // Two forwarded chunks (request, answer), each delayed 40..=60 ms.
        assert!(
            slow >= Duration::from_millis(80),
            "{slow:?} (base {base:?})"
        );
        p.proxy.inject("r", ProxyFault::Clear).unwrap();
        let fast = rtt(&mut s).await;
        assert!(fast < Duration::from_millis(80), "{fast:?}");
    });
}

#[test]
fn a_bandwidth_cap_slows_a_transfer_without_losing_a_byte() {
    let p = pair("bandwidth");
    p.rt.block_on(async {
        let s = p.connect(b'E').await;
        p.proxy
            .inject(
                "r",
                ProxyFault::Bandwidth {
                    bytes_per_s: 64 * 1024,
                },
            )
            .unwrap();
        let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let t = Instant::now();
        let (mut r, mut w) = tokio::io::split(s);
        let d2 = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&d2).await.unwrap();
            w.flush().await.unwrap();
            w
        });
        let mut back = vec![0u8; data.len()];
        r.read_exact(&mut back).await.unwrap();
        let _ = writer.await.unwrap();
        // 64 KiB (plus TLS overhead) each way at 64 KiB/s: at least about a second.
        assert!(
            t.elapsed() >= Duration::from_millis(900),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(back, data);
    });
}

#[test]
fn drop_ends_the_clients_stream_and_the_next_connection_is_a_reconnect_sample() {
    let p = pair("drop");
    p.rt.block_on(async {
        let mut s = p.connect(b'S').await;
        let (got, err) = read_counters(&mut s, Duration::from_millis(200)).await;
        assert!(err.is_none() && got.len() > 10 && contiguous(&got));
        assert_eq!(p.proxy.inject("r", ProxyFault::Drop).unwrap(), 1);
        let (_, err) = read_counters(&mut s, Duration::from_secs(2)).await;
        // A FIN without TLS close_notify: rustls reports an unexpected EOF.
        let err = err.expect("the stream ended");
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
        let mut again = p.connect(b'S').await;
        let (got, _) = read_counters(&mut again, Duration::from_millis(100)).await;
        assert!(!got.is_empty());
        let st = p.proxy.stats("r").unwrap();
        assert_eq!(
            (st.accepted, st.connections_faulted, st.reconnect_ms.len()),
            (2, 1, 1)
        );
    });
}

#[test]
fn reset_gives_the_client_a_connection_reset() {
    let p = pair("reset");
    p.rt.block_on(async {
        let mut s = p.connect(b'S').await;
        let _ = read_counters(&mut s, Duration::from_millis(100)).await;
        assert_eq!(p.proxy.inject("r", ProxyFault::Reset).unwrap(), 1);
        let (_, err) = read_counters(&mut s, Duration::from_secs(2)).await;
        let err = err.expect("the stream ended");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    });
}

#[test]
fn a_black_hole_keeps_the_socket_open_and_silent_until_the_client_leaves() {
    let p = pair("blackhole");
    p.rt.block_on(async {
        let mut s = p.connect(b'S').await;
        let _ = read_counters(&mut s, Duration::from_millis(100)).await;
        p.proxy.inject("r", ProxyFault::BlackHole).unwrap();
        // Whatever was in flight drains; then nothing, and no EOF either.
        let _ = read_counters(&mut s, Duration::from_millis(200)).await;
        let (got, err) = read_counters(&mut s, Duration::from_millis(700)).await;
        assert!(got.is_empty() && err.is_none(), "{got:?} {err:?}");
        assert_eq!(p.proxy.stats("r").unwrap().open, 1);
        // The client gives up: the proxy lets go of both sockets.
        drop(s);
        let t = Instant::now();
        while p.proxy.stats("r").unwrap().open != 0 {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "connection still held"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn a_stall_pauses_the_stream_and_loses_nothing() {
    let p = pair("stall");
    p.rt.block_on(async {
        let mut s = p.connect(b'S').await;
        let (mut all, _) = read_counters(&mut s, Duration::from_millis(100)).await;
        p.proxy.inject("r", ProxyFault::Stall { ms: 600 }).unwrap();
        let t = Instant::now();
        let mut longest_pause = Duration::ZERO;
        let mut last = Instant::now();
        let mut b = [0u8; 8];
        while t.elapsed() < Duration::from_millis(1200) {
            s.read_exact(&mut b).await.unwrap();
            longest_pause = longest_pause.max(last.elapsed());
            last = Instant::now();
            all.push(u64::from_be_bytes(b));
        }
        assert!(
            longest_pause >= Duration::from_millis(450),
            "{longest_pause:?}"
        );
        assert!(contiguous(&all), "a counter was lost");
        assert_eq!(p.proxy.stats("r").unwrap().connections_faulted, 0);
    });
}

#[test]
fn a_corrupted_tls_record_fails_the_clients_decryption() {
    let p = pair("corrupt");
    p.rt.block_on(async {
        let mut s = p.connect(b'S').await;
        let (got, _) = read_counters(&mut s, Duration::from_millis(100)).await;
        assert!(contiguous(&got));
        p.proxy.inject("r", ProxyFault::CorruptTls).unwrap();
        let (_, err) = read_counters(&mut s, Duration::from_secs(2)).await;
        let err = err.expect("decryption failed");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("decrypt"), "{err}");
        assert_eq!(p.proxy.stats("r").unwrap().connections_faulted, 1);
    });
}

#[test]
fn the_control_api_injects_and_reports() {
    let p = pair("control");
    let ctl = p
        .proxy
        .serve_control("127.0.0.1:0".parse().unwrap())
        .unwrap();
    p.rt.block_on(async {
        let mut s = p.connect(b'S').await;
        let _ = read_counters(&mut s, Duration::from_millis(50)).await;
        let ask = |req: &'static str| async move {
            let mut c = TcpStream::connect(ctl).await.unwrap();
            c.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).await.unwrap();
            out
        };
        let a = ask("POST /fault?route=r&kind=reset HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            a.starts_with("HTTP/1.1 200") && a.ends_with("{\"hit\":1}"),
            "{a}"
        );
        let a = ask("POST /fault?route=nope&kind=drop HTTP/1.1\r\n\r\n").await;
        assert!(a.starts_with("HTTP/1.1 400"), "{a}");
        let a = ask("GET /stats HTTP/1.1\r\n\r\n").await;
        let body = a.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["r"]["injected"]["reset"], 1);
        assert_eq!(v["r"]["connections_faulted"], 1);
    });
}
