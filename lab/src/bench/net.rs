//! `ringbolt bench net`: loopback latency of ringbolt's transport against the tokio ecosystem,
//! all in one run against the same in-process servers (tokio, pinned to one core; the client
//! pinned to the other):
//!
//! 1. TCP ping-pong, 64 B (echo server): round trip;
//! 2. WebSocket over TLS: one-way latency server → client (the server stamps the send time from
//!    the shared monotonic clock into each 64-byte message, paced so that the client is idle
//!    when a message arrives), and maximum sustained messages/s (the server blasts pre-encoded
//!    64-byte frames; the client counts);
//! 3. HTTP/2 over TLS (ALPN h2, hyper server): POST round trip with a small JSON body.
//!
//! Each for ringbolt spin (io_uring), block (io_uring), fallback (epoll) and fallback-spin
//! (non-blocking std sockets), and for the ecosystem peers: tokio TcpStream, tokio-tungstenite
//! over tokio-rustls, hyper's HTTP/2 client; all on a current-thread tokio runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use ringbolt_net::h2c::{H2Client, H2Options, PreparedRequest};
use ringbolt_net::tls::{Roots, client_config};
use ringbolt_net::ws::{Message, WsClient, WsOptions};
use ringbolt_net::{Backend, Driver, DriverConfig, DriverCounters, Endpoint, WaitMode};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message as TMsg;

use super::{Percentiles, pin};
use crate::machine::Machine;

/// Options of `ringbolt bench net`.
#[derive(Debug, Args)]
pub struct NetBenchArgs {
    /// Print JSON only (one line).
    #[arg(long)]
    json: bool,
    /// Measured TCP and HTTP/2 round trips per client.
    #[arg(long, default_value_t = 20_000)]
    iterations: u64,
    /// Measured WebSocket one-way messages per client.
    #[arg(long, default_value_t = 20_000)]
    ws_messages: u64,
    /// Gap between stamped WebSocket messages, µs (the server spins between sends).
    #[arg(long, default_value_t = 50)]
    ws_gap_us: u64,
    /// Messages in the WebSocket throughput flood.
    #[arg(long, default_value_t = 1_000_000)]
    flood_messages: u64,
    /// Do not pin the server and client threads.
    #[arg(long)]
    no_pin: bool,
    /// Idle TCP connections held open on the driver during the fan-in WebSocket measure (spin
    /// variants only).
    #[arg(long, default_value_t = 48)]
    idle_conns: usize,
    /// Interleaved rounds (every variant then every peer per round; counts are split evenly).
    #[arg(long, default_value_t = 3)]
    rounds: u64,
}

/// The one clock (`CLOCK_REALTIME` ns), shared by the sending and the receiving thread.
fn stamp_ns() -> u64 {
    ringbolt_telemetry::now_ns().unsigned_abs()
}

const WARMUP_DIVISOR: u64 = 10;

struct Pki {
    ca_pem: String,
    acceptor_ws: tokio_rustls::TlsAcceptor,
    acceptor_h2: tokio_rustls::TlsAcceptor,
}

fn pki() -> Result<Pki> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ringbolt bench CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let leaf_key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&leaf_key, &ca)?;
    let acceptor = |alpn: &[u8]| -> Result<tokio_rustls::TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )?;
        cfg.alpn_protocols = vec![alpn.to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
    };
    Ok(Pki {
        ca_pem: ca.pem(),
        acceptor_ws: acceptor(b"http/1.1")?,
        acceptor_h2: acceptor(b"h2")?,
    })
}

struct Servers {
    tcp: SocketAddr,
    ws: SocketAddr,
    h2: SocketAddr,
}

fn bind() -> Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Starts the three servers on one current-thread runtime in a thread pinned to `core`.
fn start_servers(pki: &Pki, core: Option<usize>) -> Result<Servers> {
    let (tcp_l, ws_l, h2_l) = (bind()?, bind()?, bind()?);
    let servers = Servers {
        tcp: tcp_l.local_addr()?,
        ws: ws_l.local_addr()?,
        h2: h2_l.local_addr()?,
    };
    let ws_acc = pki.acceptor_ws.clone();
    let h2_acc = pki.acceptor_h2.clone();
    std::thread::Builder::new()
        .name("bench-net-server".into())
        .spawn(move || {
            pin(core);
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "bench server runtime");
                    return;
                }
            };
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                tokio::task::spawn_local(tcp_echo(tcp_l));
                tokio::task::spawn_local(ws_server(ws_l, ws_acc));
                h2_server(h2_l, h2_acc).await;
            });
        })?;
    Ok(servers)
}

/// Accepts on `l` (TCP_NODELAY set), each connection served by `conn` on its own local task.
async fn serve<F, Fut>(l: std::net::TcpListener, conn: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let Ok(l) = TcpListener::from_std(l) else {
        return;
    };
    while let Ok((s, _)) = l.accept().await {
        let _ = s.set_nodelay(true);
        tokio::task::spawn_local(conn(s));
    }
}

/// [`serve`] behind a TLS handshake (connections whose handshake fails are dropped).
async fn serve_tls<F, Fut>(l: std::net::TcpListener, acc: tokio_rustls::TlsAcceptor, conn: F)
where
    F: Fn(tokio_rustls::server::TlsStream<TcpStream>) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    serve(l, move |s| {
        let (acc, conn) = (acc.clone(), conn.clone());
        async move {
            if let Ok(tls) = acc.accept(s).await {
                conn(tls).await;
            }
        }
    })
    .await;
}

async fn tcp_echo(l: std::net::TcpListener) {
    serve(l, |mut s| async move {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
    .await;
}

/// `/stamp/N/GAP_US`: N stamped messages, `/flood/N`: N pre-encoded 64-byte frames.
async fn ws_server(l: std::net::TcpListener, acc: tokio_rustls::TlsAcceptor) {
    serve_tls(l, acc, |tls| async move {
        let path = Arc::new(std::sync::Mutex::new(String::new()));
        let p2 = path.clone();
        #[allow(clippy::result_large_err)]
        let cb = move |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
            if let Ok(mut p) = p2.lock() {
                *p = req.uri().path().to_string();
            }
            Ok(resp)
        };
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tls, cb).await else {
            return;
        };
        let path = path.lock().map(|p| p.clone()).unwrap_or_default();
        let parts: Vec<u64> = path.split('/').filter_map(|p| p.parse().ok()).collect();
        if path.starts_with("/stamp/") && parts.len() == 2 {
            let (n, gap) = (parts[0], Duration::from_micros(parts[1]));
            let mut msg = [0u8; 64];
            for seq in 0..n {
                let t = Instant::now();
                msg[..8].copy_from_slice(&seq.to_le_bytes());
                msg[8..16].copy_from_slice(&stamp_ns().to_le_bytes());
                if ws.send(TMsg::binary(msg.to_vec())).await.is_err() {
                    return;
                }
                while t.elapsed() < gap {
                    std::hint::spin_loop();
                }
            }
        } else if path.starts_with("/flood/") && parts.len() == 1 {
            let n = parts[0];
            let mut block = Vec::with_capacity(1000 * 66);
            for i in 0..1000u64 {
                block.extend_from_slice(&[0x82, 64]);
                let mut p = [0u8; 64];
                p[..8].copy_from_slice(&i.to_le_bytes());
                block.extend_from_slice(&p);
            }
            let inner = ws.get_mut();
            let mut sent = 0;
            while sent < n {
                let k = (n - sent).min(1000);
                if inner.write_all(&block[..(k as usize) * 66]).await.is_err() {
                    return;
                }
                sent += k;
            }
            let _ = inner.flush().await;
        }
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

async fn h2_server(l: std::net::TcpListener, acc: tokio_rustls::TlsAcceptor) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    serve_tls(l, acc, |tls| async move {
        let svc =
            hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                let body = req.into_body().collect().await?.to_bytes();
                hyper::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(tls), svc)
            .await;
    })
    .await;
}

fn hist() -> Result<Histogram<u64>> {
    Ok(ringbolt_telemetry::latency_histogram())
}

/// A ringbolt client variant.
#[derive(Clone, Copy, Debug)]
struct Variant {
    name: &'static str,
    mode: WaitMode,
    backend: Backend,
    /// `DriverConfig::busy_poll_us` (block mode: poll without sleeping this long first).
    busy_poll_us: u32,
}

impl Variant {
    fn driver(&self) -> Result<Driver> {
        let mut cfg = DriverConfig::new(self.mode, self.backend);
        cfg.busy_poll_us = self.busy_poll_us;
        Ok(Driver::new(&cfg)?)
    }
}

const VARIANTS: [Variant; 5] = [
    Variant {
        name: "ringbolt_spin",
        mode: WaitMode::Spin,
        backend: Backend::IoUring,
        busy_poll_us: 0,
    },
    Variant {
        name: "ringbolt_block",
        mode: WaitMode::Block,
        backend: Backend::IoUring,
        busy_poll_us: 0,
    },
    Variant {
        name: "ringbolt_block_busy_poll",
        mode: WaitMode::Block,
        backend: Backend::IoUring,
        busy_poll_us: BUSY_POLL_US,
    },
    Variant {
        name: "ringbolt_fallback",
        mode: WaitMode::Block,
        backend: Backend::Fallback,
        busy_poll_us: 0,
    },
    Variant {
        name: "ringbolt_fallback_spin",
        mode: WaitMode::Spin,
        backend: Backend::Fallback,
        busy_poll_us: 0,
    },
];

/// The busy-poll window of the `ringbolt_block_busy_poll` variant, µs.
const BUSY_POLL_US: u32 = 200;

/// A latency histogram and the driver's counters over the run.
type Measured = (Histogram<u64>, DriverCounters);

const POLL_WAIT: Duration = Duration::from_millis(100);

fn rb_tcp(v: Variant, addr: SocketAddr, iterations: u64) -> Result<Measured> {
    let mut d = v.driver()?;
    let id = d.connect(&[addr], Duration::from_secs(2))?;
    let msg = [7u8; 64];
    let mut h = hist()?;
    let warm = iterations / WARMUP_DIVISOR;
    for i in 0..iterations + warm {
        let t = Instant::now();
        d.send(id, &msg)?;
        loop {
            d.poll_expecting(POLL_WAIT)?;
            if d.recv_buf(id)?.len() >= 64 {
                d.consume(id, 64)?;
                break;
            }
            d.read_finished(id)?;
        }
        if i >= warm {
            h.record(t.elapsed().as_nanos() as u64)?;
        }
    }
    d.close(id);
    Ok((h, d.counters()))
}

fn ws_endpoint(pki: &Pki, addr: SocketAddr) -> Result<Endpoint> {
    Ok(Endpoint {
        host: "localhost".into(),
        port: addr.port(),
        tls: Some(client_config(
            Roots::None,
            Some(pki.ca_pem.as_bytes()),
            &[b"http/1.1"],
        )?),
    })
}

fn rb_ws_oneway(
    v: Variant,
    pki: &Pki,
    addr: SocketAddr,
    n: u64,
    gap_us: u64,
    idle: &[SocketAddr],
) -> Result<Measured> {
    let mut d = v.driver()?;
    // Idle connections on the same driver (the appliance's ring holds ~49 feed sockets): a
    // busy-polled recv loop pays one recv per socket per turn, io_uring one enter for all.
    let idle_ids = idle
        .iter()
        .map(|a| d.connect(std::slice::from_ref(a), Duration::from_secs(2)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let warm = n / WARMUP_DIVISOR;
    let opts = WsOptions {
        path: format!("/stamp/{}/{gap_us}", n + warm),
        ..WsOptions::default()
    };
    let mut ws = WsClient::connect(&mut d, &ws_endpoint(pki, addr)?, &opts)?;
    let mut h = hist()?;
    ws_receive(&mut ws, &mut d, n + warm, |got, m| {
        let now = stamp_ns();
        let b = m.as_bytes();
        let mut stamp = [0u8; 8];
        stamp.copy_from_slice(&b[8..16]);
        if got >= warm {
            h.record(now.saturating_sub(u64::from_le_bytes(stamp)).max(1))?;
        }
        Ok(())
    })?;
    ws.shutdown(&mut d);
    for id in idle_ids {
        d.close(id);
    }
    Ok((h, d.counters()))
}

/// Receives `n` messages, polling the driver while none is ready; hands each to `on` with its
/// index.
fn ws_receive(
    ws: &mut WsClient,
    d: &mut Driver,
    n: u64,
    mut on: impl FnMut(u64, Message<'_>) -> Result<()>,
) -> Result<()> {
    let mut got = 0u64;
    while got < n {
        let Some(m) = ws
            .next(d)
            .with_context(|| format!("after {got} messages"))?
        else {
            d.poll_expecting(POLL_WAIT)?;
            continue;
        };
        on(got, m)?;
        got += 1;
    }
    Ok(())
}

fn rb_ws_flood(v: Variant, pki: &Pki, addr: SocketAddr, n: u64) -> Result<f64> {
    let mut d = v.driver()?;
    let opts = WsOptions {
        path: format!("/flood/{n}"),
        ..WsOptions::default()
    };
    let mut ws = WsClient::connect(&mut d, &ws_endpoint(pki, addr)?, &opts)?;
    let mut t0 = None;
    let mut bytes = 0usize;
    ws_receive(&mut ws, &mut d, n, |_, m| {
        if let Message::Binary(b) = m {
            bytes += b.len();
        }
        t0.get_or_insert_with(Instant::now);
        Ok(())
    })?;
    let secs = t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
    ws.shutdown(&mut d);
    if bytes != (n as usize) * 64 {
        bail!("flood: {bytes} bytes for {n} messages");
    }
    Ok(((n - 1) as f64 / secs.max(1e-9)).round())
}

const H2_BODY: &[u8] = br#"{"order":{"side":"BUY","tokenId":"1234","price":"0.53","size":"100"}}"#;

fn rb_h2(v: Variant, pki: &Pki, addr: SocketAddr, iterations: u64) -> Result<Measured> {
    let mut d = v.driver()?;
    let ep = Endpoint {
        host: "localhost".into(),
        port: addr.port(),
        tls: Some(client_config(
            Roots::None,
            Some(pki.ca_pem.as_bytes()),
            &[b"h2"],
        )?),
    };
    let mut c = H2Client::connect(&mut d, &ep, &H2Options::default())?;
    let req = PreparedRequest::new(
        http::Method::POST,
        &format!("https://localhost:{}/order", addr.port()),
        &[("content-type", "application/json")],
    )?;
    let body = Bytes::from_static(H2_BODY);
    let mut h = hist()?;
    let warm = iterations / WARMUP_DIVISOR;
    for i in 0..iterations + warm {
        let t = Instant::now();
        c.send(&mut d, &req, body.clone(), i)?;
        let done = loop {
            d.poll_expecting(POLL_WAIT)?;
            c.poll(&mut d)?;
            if let Some(done) = c.next_completion() {
                break done;
            }
        };
        let r = done.result?;
        if r.status != 200 || r.body != H2_BODY {
            bail!("h2: bad response {}", r.status);
        }
        if i >= warm {
            h.record(t.elapsed().as_nanos() as u64)?;
        }
    }
    c.shutdown(&mut d);
    Ok((h, d.counters()))
}

fn tokio_rt() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn tokio_tls(
    pki: &Pki,
    addr: SocketAddr,
    alpn: &[u8],
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let cfg = client_config(Roots::None, Some(pki.ca_pem.as_bytes()), &[alpn])?;
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    Ok(tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await?)
}

fn tokio_tcp(addr: SocketAddr, iterations: u64) -> Result<Histogram<u64>> {
    tokio_rt()?.block_on(async {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let msg = [7u8; 64];
        let mut buf = [0u8; 64];
        let mut h = hist()?;
        let warm = iterations / WARMUP_DIVISOR;
        for i in 0..iterations + warm {
            let t = Instant::now();
            s.write_all(&msg).await?;
            s.read_exact(&mut buf).await?;
            if i >= warm {
                h.record(t.elapsed().as_nanos() as u64)?;
            }
        }
        Ok(h)
    })
}

fn tokio_ws_oneway(pki: &Pki, addr: SocketAddr, n: u64, gap_us: u64) -> Result<Histogram<u64>> {
    tokio_rt()?.block_on(async {
        let tls = tokio_tls(pki, addr, b"http/1.1").await?;
        let warm = n / WARMUP_DIVISOR;
        let url = format!(
            "wss://localhost:{}/stamp/{}/{gap_us}",
            addr.port(),
            n + warm
        );
        let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await?;
        let mut h = hist()?;
        let mut got = 0;
        while got < n + warm {
            let m = ws.next().await.ok_or_else(|| anyhow!("ws ended"))??;
            let now = stamp_ns();
            if let TMsg::Binary(b) = m {
                let mut stamp = [0u8; 8];
                stamp.copy_from_slice(&b[8..16]);
                if got >= warm {
                    h.record(now.saturating_sub(u64::from_le_bytes(stamp)).max(1))?;
                }
                got += 1;
            }
        }
        Ok(h)
    })
}

fn tokio_ws_flood(pki: &Pki, addr: SocketAddr, n: u64) -> Result<f64> {
    tokio_rt()?.block_on(async {
        let tls = tokio_tls(pki, addr, b"http/1.1").await?;
        let url = format!("wss://localhost:{}/flood/{n}", addr.port());
        let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await?;
        let mut got = 0;
        let mut t0 = None;
        while got < n {
            let m = ws.next().await.ok_or_else(|| anyhow!("ws ended"))??;
            if m.is_binary() {
                t0.get_or_insert_with(Instant::now);
                got += 1;
            }
        }
        let secs = t0.map_or(0.0, |t: Instant| t.elapsed().as_secs_f64());
        Ok(((n - 1) as f64 / secs.max(1e-9)).round())
    })
}

fn hyper_h2(pki: &Pki, addr: SocketAddr, iterations: u64) -> Result<Histogram<u64>> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let rt = tokio_rt()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let tls = tokio_tls(pki, addr, b"h2").await?;
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::task::spawn_local(conn);
        let uri = format!("https://localhost:{}/order", addr.port());
        let mut h = hist()?;
        let warm = iterations / WARMUP_DIVISOR;
        for i in 0..iterations + warm {
            let t = Instant::now();
            let req = hyper::Request::post(&uri)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(H2_BODY)))?;
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            if status != 200 || &body[..] != H2_BODY {
                bail!("hyper: bad response {status}");
            }
            if i >= warm {
                h.record(t.elapsed().as_nanos() as u64)?;
            }
        }
        Ok(h)
    })
}

fn lat_json(r: &Result<Histogram<u64>>) -> Value {
    match r {
        Ok(h) => serde_json::to_value(Percentiles::of(h)).unwrap_or(Value::Null),
        Err(e) => json!({ "error": format!("{e:#}") }),
    }
}

/// peer / ours at p50, p99, p99.9 (>1: ringbolt is faster).
fn ratios(peer: &Result<Histogram<u64>>, ours: &Result<Histogram<u64>>) -> Value {
    match (peer, ours) {
        (Ok(p), Ok(o)) => {
            let r = |q: f64| {
                let v = p.value_at_quantile(q) as f64 / o.value_at_quantile(q).max(1) as f64;
                (v * 100.0).round() / 100.0
            };
            json!({ "p50": r(0.5), "p99": r(0.99), "p999": r(0.999) })
        }
        _ => Value::Null,
    }
}

fn p50(r: &Result<Histogram<u64>>) -> Option<u64> {
    r.as_ref().ok().map(|h| h.value_at_quantile(0.5))
}

/// One measure accumulated over the interleaved rounds: the merged histogram (or the first
/// error), the summed driver counters and the messages they cover.
#[derive(Default)]
struct Acc {
    h: Option<Histogram<u64>>,
    err: Option<String>,
    counters: DriverCounters,
    messages: u64,
}

impl Acc {
    fn add_hist(&mut self, r: Result<Histogram<u64>>) {
        match (r, &mut self.h) {
            (Ok(h), Some(acc)) => {
                if let Err(e) = acc.add(&h) {
                    self.err.get_or_insert(e.to_string());
                }
            }
            (Ok(h), None) => self.h = Some(h),
            (Err(e), _) => {
                self.err.get_or_insert(format!("{e:#}"));
            }
        }
    }

    fn add(&mut self, r: Result<Measured>, messages: u64) {
        let r = r.map(|(h, c)| {
            let s = &mut self.counters;
            s.enters += c.enters;
            s.enters_waiting += c.enters_waiting;
            s.enters_taskrun += c.enters_taskrun;
            s.cqes += c.cqes;
            s.recv_calls += c.recv_calls;
            s.recv_would_block += c.recv_would_block;
            s.send_calls += c.send_calls;
            s.epoll_waits += c.epoll_waits;
            s.busy_poll_hits += c.busy_poll_hits;
            s.busy_poll_misses += c.busy_poll_misses;
            self.messages += messages;
            h
        });
        self.add_hist(r);
    }

    fn result(&self) -> Result<Histogram<u64>> {
        match (&self.err, &self.h) {
            (None, Some(h)) => Ok(h.clone()),
            (Some(e), _) => Err(anyhow!("{e}")),
            (None, None) => Err(anyhow!("not measured")),
        }
    }

    /// System calls and completions per message (connection set-up included, amortised).
    fn per_message(&self) -> Value {
        let m = self.messages.max(1) as f64;
        let r = |v: u64| ((v as f64 / m) * 1000.0).round() / 1000.0;
        let c = &self.counters;
        json!({
            "messages": self.messages,
            "io_uring_enters": r(c.enters),
            "io_uring_enters_waiting": r(c.enters_waiting),
            "io_uring_enters_taskrun": r(c.enters_taskrun),
            "cqes": r(c.cqes),
            "recv_calls": r(c.recv_calls),
            "recv_would_block": r(c.recv_would_block),
            "epoll_waits": r(c.epoll_waits),
            "busy_poll_hits": r(c.busy_poll_hits),
            "busy_poll_misses": r(c.busy_poll_misses),
        })
    }
}

/// Per variant: TCP, WS one-way, WS flood rates, HTTP/2.
#[derive(Default)]
struct VariantAcc {
    tcp: Acc,
    ws: Acc,
    /// WS one-way with `idle_conns` idle sockets on the same driver (spin variants).
    ws_fanin: Acc,
    flood: Vec<f64>,
    flood_err: Option<String>,
    h2: Acc,
}

fn mean_rate(rates: &[f64], err: Option<&String>) -> Result<f64> {
    match err {
        Some(e) => Err(anyhow!("{e}")),
        None if rates.is_empty() => Err(anyhow!("not measured")),
        None => Ok((rates.iter().sum::<f64>() / rates.len() as f64).round()),
    }
}

fn add_rate(acc: &mut VariantAcc, r: Result<f64>) {
    match r {
        Ok(v) => acc.flood.push(v),
        Err(e) => {
            acc.flood_err.get_or_insert(format!("{e:#}"));
        }
    }
}

fn scheduling_policy() -> &'static str {
    // SAFETY: sched_getscheduler(0) queries the calling thread's policy; no pointers.
    match unsafe { libc::sched_getscheduler(0) } {
        libc::SCHED_FIFO => "SCHED_FIFO",
        libc::SCHED_RR => "SCHED_RR",
        libc::SCHED_OTHER => "SCHED_OTHER",
        _ => "other",
    }
}

/// Every variant and every peer once per round, rounds interleaved so that load drift on the
/// shared machine hits all alike.
fn measure(
    args: &NetBenchArgs,
    pki: &Pki,
    servers: &Servers,
) -> (Vec<(Variant, VariantAcc)>, VariantAcc) {
    let rounds = args.rounds.max(1);
    let (it, wsn, fl) = (
        (args.iterations / rounds).max(10),
        (args.ws_messages / rounds).max(10),
        (args.flood_messages / rounds).max(10),
    );
    let mut ours: Vec<(Variant, VariantAcc)> = VARIANTS
        .iter()
        .map(|v| (*v, VariantAcc::default()))
        .collect();
    let mut peer = VariantAcc::default();
    let msgs = |n: u64| n + n / WARMUP_DIVISOR;
    for round in 0..rounds {
        for (v, acc) in &mut ours {
            tracing::info!(variant = v.name, round, "measuring");
            acc.tcp.add(rb_tcp(*v, servers.tcp, it), msgs(it));
            acc.ws.add(
                rb_ws_oneway(*v, pki, servers.ws, wsn, args.ws_gap_us, &[]),
                msgs(wsn),
            );
            if v.mode == WaitMode::Spin && args.idle_conns > 0 {
                let idle = vec![servers.tcp; args.idle_conns];
                acc.ws_fanin.add(
                    rb_ws_oneway(*v, pki, servers.ws, wsn, args.ws_gap_us, &idle),
                    msgs(wsn),
                );
            }
            add_rate(acc, rb_ws_flood(*v, pki, servers.ws, fl));
            acc.h2.add(rb_h2(*v, pki, servers.h2, it), msgs(it));
        }
        tracing::info!(variant = "tokio peers", round, "measuring");
        peer.tcp.add_hist(tokio_tcp(servers.tcp, it));
        peer.ws
            .add_hist(tokio_ws_oneway(pki, servers.ws, wsn, args.ws_gap_us));
        add_rate(&mut peer, tokio_ws_flood(pki, servers.ws, fl));
        peer.h2.add_hist(hyper_h2(pki, servers.h2, it));
    }
    (ours, peer)
}

fn ratio_p50(peer: &Result<Histogram<u64>>, ours: &Result<Histogram<u64>>) -> f64 {
    match (p50(peer), p50(ours)) {
        (Some(p), Some(o)) => ((p as f64 / o.max(1) as f64) * 100.0).round() / 100.0,
        _ => 0.0,
    }
}

/// Runs the benchmark.
pub fn run(args: &NetBenchArgs) -> Result<()> {
    let load_1m: Option<f64> = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()));
    let cores = ringbolt_net::affinity::core_ids();
    let (server_core, client_core) = match (args.no_pin, cores.as_slice()) {
        (false, [.., a, b]) => (Some(*a), Some(*b)),
        _ => (None, None),
    };
    let pki = pki().context("test PKI")?;
    let servers = start_servers(&pki, server_core)?;
    pin(client_core);
    let (ours, peer) = measure(args, &pki, &servers);
    let (pt, pw, ph) = (peer.tcp.result(), peer.ws.result(), peer.h2.result());
    let pf = mean_rate(&peer.flood, peer.flood_err.as_ref());
    let mut tcp = serde_json::Map::new();
    let mut ws_lat = serde_json::Map::new();
    let mut ws_rate = serde_json::Map::new();
    let mut h2 = serde_json::Map::new();
    let mut syscalls = serde_json::Map::new();
    tcp.insert("tokio_rtt".into(), lat_json(&pt));
    ws_lat.insert("tokio_tungstenite_one_way".into(), lat_json(&pw));
    ws_rate.insert(
        "tokio_tungstenite_messages_per_s".into(),
        pf.as_ref()
            .map_or_else(|e| json!({ "error": format!("{e:#}") }), |r| json!(r)),
    );
    h2.insert("hyper_rtt".into(), lat_json(&ph));
    for (v, acc) in &ours {
        let (t, w, h) = (acc.tcp.result(), acc.ws.result(), acc.h2.result());
        let f = mean_rate(&acc.flood, acc.flood_err.as_ref());
        tcp.insert(format!("{}_rtt", v.name), lat_json(&t));
        ws_lat.insert(format!("{}_one_way", v.name), lat_json(&w));
        ws_rate.insert(
            format!("{}_messages_per_s", v.name),
            f.as_ref()
                .map_or_else(|e| json!({ "error": format!("{e:#}") }), |r| json!(r)),
        );
        h2.insert(format!("{}_rtt", v.name), lat_json(&h));
        tcp.insert(format!("ratio_tokio_over_{}", v.name), ratios(&pt, &t));
        ws_lat.insert(
            format!("ratio_tokio_tungstenite_over_{}", v.name),
            ratios(&pw, &w),
        );
        if let (Ok(o), Ok(p)) = (&f, &pf) {
            ws_rate.insert(
                format!("ratio_{}_over_tokio_tungstenite", v.name),
                json!(((o / p.max(1.0)) * 100.0).round() / 100.0),
            );
        }
        h2.insert(format!("ratio_hyper_over_{}", v.name), ratios(&ph, &h));
        syscalls.insert(
            v.name.into(),
            json!({
                "tcp_rtt": acc.tcp.per_message(),
                "ws_one_way": acc.ws.per_message(),
                "http2_rtt": acc.h2.per_message(),
            }),
        );
    }
    let find = |name: &str| ours.iter().find(|(v, _)| v.name == name).map(|(_, a)| a);
    let spin = find("ringbolt_spin").ok_or_else(|| anyhow!("no spin variant"))?;
    let fb_spin = find("ringbolt_fallback_spin").ok_or_else(|| anyhow!("no fallback spin"))?;
    let ws_ratio = ratio_p50(&pw, &spin.ws.result());
    let h2_ratio = ratio_p50(&ph, &spin.h2.result());
    let report = json!({
        "bench": "net",
        "method": "loopback, one process: tokio servers on one pinned core, each client in turn on the other; \
                   TCP: 64 B echo round trip; WS: TLS, server stamps the shared monotonic clock into 64 B \
                   binary messages paced ws_gap_us apart, latency = receive time - stamp; WS flood: TLS, \
                   pre-encoded 64 B frames, messages/s from first to last (mean of rounds); HTTP/2: TLS ALPN h2, \
                   POST of a 70 B JSON body echoed by hyper, round trip; `rounds` interleaved rounds \
                   (every variant, then the peers), 10% warm-up discarded per round; ratios are peer/ringbolt \
                   (>1: ringbolt faster) except messages_per_s ratios (ringbolt/peer); syscalls_per_message: \
                   the driver's counters over each measure divided by its messages (set-up amortised)",
        "machine": Machine::current(),
        "load_average_1m_at_start": load_1m,
        "scheduling_policy": scheduling_policy(),
        "pinned": { "server_core": server_core, "client_core": client_core },
        "rounds": args.rounds,
        "iterations": args.iterations,
        "ws_messages": args.ws_messages,
        "ws_gap_us": args.ws_gap_us,
        "flood_messages": args.flood_messages,
        "busy_poll_us_of_block_busy_poll": BUSY_POLL_US,
        "tcp_ping_pong_64b": tcp,
        "ws_one_way": ws_lat,
        "ws_throughput": ws_rate,
        "http2_post_rtt": h2,
        "syscalls_per_message": syscalls,
        "io_uring_spin_vs_fallback_spin": {
            "ws_one_way_p50_fallback_over_io_uring": ratio_p50(&fb_spin.ws.result(), &spin.ws.result()),
            "ws_one_way_with_idle_conns_p50_fallback_over_io_uring":
                ratio_p50(&fb_spin.ws_fanin.result(), &spin.ws_fanin.result()),
            "ws_one_way_with_idle_conns_io_uring": lat_json(&spin.ws_fanin.result()),
            "ws_one_way_with_idle_conns_fallback": lat_json(&fb_spin.ws_fanin.result()),
            "ws_one_way_with_idle_conns_syscalls_io_uring": spin.ws_fanin.per_message(),
            "ws_one_way_with_idle_conns_syscalls_fallback": fb_spin.ws_fanin.per_message(),
            "idle_conns": args.idle_conns,
            "http2_rtt_p50_fallback_over_io_uring": ratio_p50(&fb_spin.h2.result(), &spin.h2.result()),
            "tcp_rtt_p50_fallback_over_io_uring": ratio_p50(&fb_spin.tcp.result(), &spin.tcp.result()),
        },
        "targets": {
            "ws_one_way_p50_ratio_tokio_tungstenite_over_ringbolt_spin_min": 3.0,
            "ws_one_way_p50_ratio_measured": ws_ratio,
            "http2_rtt_p50_ratio_hyper_over_ringbolt_spin_min": 1.5,
            "http2_rtt_p50_ratio_measured": h2_ratio,
            "met": ws_ratio >= 3.0 && h2_ratio >= 1.5,
        },
    });
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
