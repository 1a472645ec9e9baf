//! A userspace TCP fault proxy: sits between any client and any emulator (or any TCP server) on
//! loopback and injects faults on command or on a schedule.
//!
//! Each [`Route`] listens on its own port and forwards every accepted connection to its upstream.
//! Faults ([`ProxyFault`]) act on a route:
//!
//! * **shaping**, kept until cleared, applies to every connection's data: `latency` (+ uniform
//!   `jitter`) before each forwarded chunk, and a `bandwidth` cap (bytes/s per direction);
//! * **connection faults** hit every connection open at that moment: `drop` (FIN both ways),
//!   `reset` (RST both ways: `SO_LINGER` 0), `blackhole` (half-open: nothing is forwarded either
//!   way, what arrives is read and discarded, both sockets stay open until the client closes),
//!   `stall` (nothing is read or forwarded for `ms`, then forwarding resumes: TCP back-pressure,
//!   nothing lost) and `corrupt_tls` (one byte flipped inside the next TLS application-data record
//!   from the server, so the client's record decryption fails and it must reconnect).
//!
//! The TLS record framing is followed by a sans-IO [`TlsRecordTracker`] (5-byte record headers,
//! RFC 8446 §5.1), so the flip always lands inside an encrypted record body, never in a header.
//! A plain-HTTP control endpoint ([`Proxy::serve_control`]) takes `POST /fault?route=&kind=…`
//! and answers `GET /stats`; [`Proxy::inject`] is the same thing in-process.
//!
//! Every connection a fault ends is counted per route (`connections_faulted`), and the time from
//! a connection-ending fault to the route's next accepted connection is kept as a reconnect
//! sample, so a caller can compare what it injected with what its client announced.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A fault the proxy injects on a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ProxyFault {
    /// Delay every forwarded chunk by `ms` plus a uniform `0..=jitter_ms` (until `clear`).
    Latency {
        /// Fixed delay, ms.
        ms: u64,
        /// Extra uniform delay, up to this many ms.
        jitter_ms: u64,
    },
    /// Cap each direction of each connection at `bytes_per_s` (until `clear`).
    Bandwidth {
        /// Cap, bytes per second.
        bytes_per_s: u64,
    },
    /// Remove latency, jitter and bandwidth caps.
    Clear,
    /// Close both sides of every open connection (FIN).
    Drop,
    /// Reset both sides of every open connection (RST).
    Reset,
    /// Stop forwarding both ways on every open connection; keep both sockets open.
    BlackHole,
    /// Forward nothing (and read nothing) for `ms` on every open connection, then resume.
    Stall {
        /// Pause, ms.
        ms: u64,
    },
    /// Flip a byte inside the next server→client TLS application-data record.
    CorruptTls,
}

/// Errors of the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A socket operation failed.
    #[error("proxy: {what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// No route of that name.
    #[error("proxy: unknown route {0:?}")]
    UnknownRoute(String),
    /// A fault specification could not be parsed.
    #[error("proxy: bad fault {0:?}")]
    BadFault(String),
}

impl ProxyFault {
    /// Parses `kind` with its parameters (`ms`, `jitter_ms`, `bytes_per_s`) as the control API
    /// and the command line spell them: `latency`, `bandwidth`, `clear`, `drop`, `reset`,
    /// `blackhole`, `stall`, `corrupt_tls`.
    ///
    /// # Errors
    /// An unknown kind or a missing parameter.
    pub fn parse(kind: &str, param: &dyn Fn(&str) -> Option<u64>) -> Result<Self, ProxyError> {
        let need = |k: &str| param(k).ok_or_else(|| ProxyError::BadFault(format!("{kind}: {k}")));
        Ok(match kind {
            "latency" => Self::Latency {
                ms: need("ms")?,
                jitter_ms: param("jitter_ms").unwrap_or(0),
            },
            "bandwidth" => Self::Bandwidth {
                bytes_per_s: need("bytes_per_s")?.max(1),
            },
            "clear" => Self::Clear,
            "drop" => Self::Drop,
            "reset" => Self::Reset,
            "blackhole" => Self::BlackHole,
            "stall" => Self::Stall { ms: need("ms")? },
            "corrupt_tls" => Self::CorruptTls,
            other => return Err(ProxyError::BadFault(other.to_owned())),
        })
    }

    /// The kind's name as [`ProxyFault::parse`] reads it.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Latency { .. } => "latency",
            Self::Bandwidth { .. } => "bandwidth",
            Self::Clear => "clear",
            Self::Drop => "drop",
            Self::Reset => "reset",
            Self::BlackHole => "blackhole",
            Self::Stall { .. } => "stall",
            Self::CorruptTls => "corrupt_tls",
        }
    }

    /// Whether the fault ends the connections it hits (the client loses data and must
    /// reconnect; `corrupt_tls` ends one when its record is corrupted).
    #[must_use]
    pub const fn ends_connection(&self) -> bool {
        matches!(
            self,
            Self::Drop | Self::Reset | Self::BlackHole | Self::CorruptTls
        )
    }
}

/// Follows TLS record boundaries in one direction of a byte stream (sans-IO) and flips one byte
/// inside the body of the next application-data record when armed.
#[derive(Clone, Debug, Default)]
pub struct TlsRecordTracker {
    header: [u8; 5],
    header_len: usize,
    body_left: usize,
    body_type: u8,
    /// Records whose header was read completely.
    pub records: u64,
}

/// TLS `ContentType` application_data (every record after a TLS 1.3 handshake).
const APPLICATION_DATA: u8 = 23;

impl TlsRecordTracker {
    /// Walks `buf` (the next bytes of the stream). When `armed`, flips the first application-data
    /// body byte met and returns `true` (the caller disarms).
    pub fn feed(&mut self, buf: &mut [u8], armed: bool) -> bool {
        let mut i = 0;
        let mut flipped = false;
        while i < buf.len() {
            if self.body_left == 0 {
                let take = (5 - self.header_len).min(buf.len() - i);
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&buf[i..i + take]);
                self.header_len += take;
                i += take;
                if self.header_len == 5 {
                    self.header_len = 0;
                    self.body_type = self.header[0];
                    self.body_left =
                        usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                    self.records += 1;
                }
                continue;
            }
            let take = self.body_left.min(buf.len() - i);
            if armed && !flipped && self.body_type == APPLICATION_DATA {
                buf[i] ^= 0x5a;
                flipped = true;
            }
            self.body_left -= take;
            i += take;
        }
        flipped
    }
}

/// One listening port and its upstream.
#[derive(Clone, Debug)]
pub struct Route {
    /// Name (the control API's `route=`).
    pub name: String,
    /// Listen address (port 0: any free port).
    pub listen: SocketAddr,
    /// Where connections are forwarded.
    pub upstream: SocketAddr,
}

/// What one connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Forward,
    Stall(tokio::time::Instant),
    BlackHole,
    Close { reset: bool },
}

#[derive(Debug)]
struct Conn {
    mode: watch::Sender<Mode>,
    corrupt: Arc<AtomicBool>,
}

/// Counters of one route.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RouteStats {
    /// Listen port.
    pub port: u16,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Faults injected, by kind.
    pub injected: BTreeMap<&'static str, u64>,
    /// Connections a connection-ending fault hit (for `corrupt_tls`: records corrupted).
    pub connections_faulted: u64,
    /// Bytes forwarded client → upstream.
    pub bytes_up: u64,
    /// Bytes forwarded upstream → client.
    pub bytes_down: u64,
    /// Upstream connects that failed (the client's connection was closed).
    pub upstream_failures: u64,
    /// Fault → next accepted connection, ms (one per connection-ending fault that hit).
    pub reconnect_ms: Vec<u64>,
}

#[derive(Debug, Default)]
struct Shape {
    latency_ms: AtomicU64,
    jitter_ms: AtomicU64,
    bytes_per_s: AtomicU64,
}

#[derive(Debug, Default)]
struct RouteState {
    conns: BTreeMap<u64, Conn>,
    next_id: u64,
    stats: RouteStats,
    /// Set by a connection-ending fault; the next accept takes a reconnect sample.
    pending_reconnect: Option<Instant>,
}

#[derive(Debug)]
struct RouteShared {
    route: Route,
    shape: Shape,
    state: Mutex<RouteState>,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    corrupted: AtomicU64,
}

impl RouteShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, RouteState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running proxy: its routes' listeners run on a tokio runtime of its own (one worker
/// thread); dropping the handle stops everything.
#[derive(Debug)]
pub struct Proxy {
    routes: BTreeMap<String, Arc<RouteShared>>,
    runtime: Option<tokio::runtime::Runtime>,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProxyError {
    let what = what.into();
    move |source| ProxyError::Io { what, source }
}

impl Proxy {
    /// Binds every route and starts forwarding.
    ///
    /// # Errors
    /// The runtime cannot start or a listen address cannot be bound.
    pub fn start(routes: Vec<Route>) -> Result<Self, ProxyError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .map_err(io_err("starting the proxy runtime"))?;
        let mut shared = BTreeMap::new();
        for route in routes {
            let listener = runtime
                .block_on(TcpListener::bind(route.listen))
                .map_err(io_err(format!("binding {}", route.listen)))?;
            let port = listener.local_addr().map_or(0, |a| a.port());
            let r = Arc::new(RouteShared {
                route: Route {
                    listen: SocketAddr::new(route.listen.ip(), port),
                    ..route
                },
                shape: Shape::default(),
                state: Mutex::new(RouteState::default()),
                bytes_up: AtomicU64::new(0),
                bytes_down: AtomicU64::new(0),
                corrupted: AtomicU64::new(0),
            });
            r.lock().stats.port = port;
            runtime.spawn(accept_loop(listener, Arc::clone(&r)));
            shared.insert(r.route.name.clone(), r);
        }
        Ok(Self {
            routes: shared,
            runtime: Some(runtime),
        })
    }

    /// The address a route listens on.
    #[must_use]
    pub fn listen_addr(&self, route: &str) -> Option<SocketAddr> {
        self.routes.get(route).map(|r| r.route.listen)
    }

    /// Route names.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    /// Injects `fault` on `route` now. Returns the connections it hit (shaping faults: the
    /// connections open now, which the new shape applies to along with later ones).
    ///
    /// # Errors
    /// Unknown route.
    pub fn inject(&self, route: &str, fault: ProxyFault) -> Result<u64, ProxyError> {
        let r = self
            .routes
            .get(route)
            .ok_or_else(|| ProxyError::UnknownRoute(route.to_owned()))?;
        let s = &r.shape;
        match fault {
            ProxyFault::Latency { ms, jitter_ms } => {
                s.latency_ms.store(ms, Ordering::Relaxed);
                s.jitter_ms.store(jitter_ms, Ordering::Relaxed);
            }
            ProxyFault::Bandwidth { bytes_per_s } => {
                s.bytes_per_s.store(bytes_per_s, Ordering::Relaxed)
            }
            ProxyFault::Clear => {
                s.latency_ms.store(0, Ordering::Relaxed);
                s.jitter_ms.store(0, Ordering::Relaxed);
                s.bytes_per_s.store(0, Ordering::Relaxed);
            }
            _ => {}
        }
        let mut st = r.lock();
        *st.stats.injected.entry(fault.name()).or_insert(0) += 1;
        let mode = match fault {
            ProxyFault::Drop => Some(Mode::Close { reset: false }),
            ProxyFault::Reset => Some(Mode::Close { reset: true }),
            ProxyFault::BlackHole => Some(Mode::BlackHole),
            ProxyFault::Stall { ms } => Some(Mode::Stall(
                tokio::time::Instant::now() + Duration::from_millis(ms),
            )),
            _ => None,
        };
        let hit = st.conns.len() as u64;
        for c in st.conns.values() {
            if let Some(m) = mode {
                let _ = c.mode.send(m);
            }
            if fault == ProxyFault::CorruptTls {
                c.corrupt.store(true, Ordering::Relaxed);
            }
        }
        if matches!(
            fault,
            ProxyFault::Drop | ProxyFault::Reset | ProxyFault::BlackHole
        ) {
            st.stats.connections_faulted += hit;
            if hit > 0 {
                st.pending_reconnect = Some(Instant::now());
            }
        }
        Ok(hit)
    }

    /// A route's counters now.
    #[must_use]
    pub fn stats(&self, route: &str) -> Option<RouteStats> {
        let r = self.routes.get(route)?;
        let mut s = r.lock().stats.clone();
        s.bytes_up = r.bytes_up.load(Ordering::Relaxed);
        s.bytes_down = r.bytes_down.load(Ordering::Relaxed);
        s.connections_faulted += r.corrupted.load(Ordering::Relaxed);
        Some(s)
    }

    /// Every route's counters, by name.
    #[must_use]
    pub fn all_stats(&self) -> BTreeMap<String, RouteStats> {
        self.routes
            .keys()
            .filter_map(|k| Some((k.clone(), self.stats(k)?)))
            .collect()
    }

    /// Runs `schedule` (offset from now, route, fault) on the proxy's runtime.
    pub fn run_schedule(self: &Arc<Self>, schedule: Vec<(Duration, String, ProxyFault)>) {
        let me = Arc::clone(self);
        let t0 = tokio::time::Instant::now();
        if let Some(rt) = &self.runtime {
            rt.spawn(async move {
                for (at, route, fault) in schedule {
                    tokio::time::sleep_until(t0 + at).await;
                    if let Err(e) = me.inject(&route, fault) {
                        tracing::warn!("scheduled fault: {e}");
                    }
                }
            });
        }
    }

    /// Serves the control API on `addr` (plain HTTP/1.1, one request per connection):
    /// `POST /fault?route=R&kind=K[&ms=..&jitter_ms=..&bytes_per_s=..]` answers the connections
    /// hit as JSON; `GET /stats` answers every route's counters. Returns the bound address.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub fn serve_control(self: &Arc<Self>, addr: SocketAddr) -> Result<SocketAddr, ProxyError> {
        let Some(rt) = &self.runtime else {
            return Err(ProxyError::BadFault("stopped".into()));
        };
        let listener = rt
            .block_on(TcpListener::bind(addr))
            .map_err(io_err(format!("binding control {addr}")))?;
        let bound = listener.local_addr().map_err(io_err("control address"))?;
        let me = Arc::clone(self);
        rt.spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let me = Arc::clone(&me);
                tokio::spawn(async move { control_conn(&me, s).await });
            }
        });
        Ok(bound)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn control_answer(proxy: &Proxy, method: &str, target: &str) -> (u16, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match (method, path) {
        ("GET", "/stats") => (
            200,
            serde_json::to_string(&proxy.all_stats()).unwrap_or_default(),
        ),
        ("POST", "/fault") => {
            let route = query_param(query, "route").unwrap_or("");
            let kind = query_param(query, "kind").unwrap_or("");
            let fault = ProxyFault::parse(kind, &|k| {
                query_param(query, k).and_then(|v| v.parse().ok())
            });
            match fault.and_then(|f| proxy.inject(route, f)) {
                Ok(hit) => (200, format!("{{\"hit\":{hit}}}")),
                Err(e) => (
                    400,
                    serde_json::json!({ "error": e.to_string() }).to_string(),
                ),
            }
        }
        _ => (404, "{\"error\":\"not found\"}".to_owned()),
    }
}

async fn control_conn(proxy: &Proxy, mut s: TcpStream) {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
        match s.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => len += n,
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, body) = control_answer(proxy, method, target);
    let reply = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(reply.as_bytes()).await;
}

async fn accept_loop(listener: TcpListener, r: Arc<RouteShared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (tx, _) = watch::channel(Mode::Forward);
        let corrupt = Arc::new(AtomicBool::new(false));
        let id = {
            let mut st = r.lock();
            st.stats.accepted += 1;
            if let Some(t) = st.pending_reconnect.take() {
                let ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
                st.stats.reconnect_ms.push(ms);
            }
            st.next_id += 1;
            let id = st.next_id;
            st.conns.insert(
                id,
                Conn {
                    mode: tx.clone(),
                    corrupt: Arc::clone(&corrupt),
                },
            );
            st.stats.open = st.conns.len() as u64;
            id
        };
        let r2 = Arc::clone(&r);
        tokio::spawn(async move {
            run_conn(client, &r2, &tx, &corrupt).await;
            let mut st = r2.lock();
            st.conns.remove(&id);
            st.stats.open = st.conns.len() as u64;
        });
    }
}

async fn run_conn(
    client: TcpStream,
    r: &Arc<RouteShared>,
    tx: &watch::Sender<Mode>,
    corrupt: &Arc<AtomicBool>,
) {
    let _ = client.set_nodelay(true);
    let upstream = match TcpStream::connect(r.route.upstream).await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(route = r.route.name, "upstream connect: {e}");
            r.lock().stats.upstream_failures += 1;
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let up = pump(cr, uw, r, tx, None, true);
    let down = pump(ur, cw, r, tx, Some(Arc::clone(corrupt)), false);
    let (a, b) = tokio::join!(up, down);
    // Both directions ended: a reset closes with RST (SO_LINGER 0 and no FIN first), anything
    // else with FIN.
    if *tx.borrow() == (Mode::Close { reset: true }) {
        for (read, write) in [a, b].into_iter().flatten() {
            let _ = socket2::SockRef::from(read.as_ref()).set_linger(Some(Duration::ZERO));
            let _ = socket2::SockRef::from(write.as_ref()).set_linger(Some(Duration::ZERO));
            write.forget();
            drop(read);
        }
    }
}

/// One direction. Returns its halves when it ended on a fault (so a reset can set `SO_LINGER`
/// before they drop), `None` when the stream ended on its own.
async fn pump(
    mut src: OwnedReadHalf,
    mut dst: OwnedWriteHalf,
    r: &RouteShared,
    tx: &watch::Sender<Mode>,
    corrupt: Option<Arc<AtomicBool>>,
    up: bool,
) -> Option<(OwnedReadHalf, OwnedWriteHalf)> {
    let mut mode = tx.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    let mut tls = TlsRecordTracker::default();
    let mut rng = fastrand_seed(r.route.listen.port(), up);
    loop {
        let current = *mode.borrow_and_update();
        match current {
            Mode::Close { .. } => return Some((src, dst)),
            Mode::Stall(until) if tokio::time::Instant::now() < until => {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => {}
                    _ = mode.changed() => {}
                }
                continue;
            }
            _ => {}
        }
        let n = tokio::select! {
            res = src.read(&mut buf) => match res {
                Ok(0) if current == Mode::Forward => {
                    // A clean half-close is passed on; the other direction carries on.
                    let _ = dst.shutdown().await;
                    return None;
                }
                Ok(0) | Err(_) => {
                    // An error, or the client left a black hole: the whole connection ends.
                    let _ = tx.send(Mode::Close { reset: false });
                    return Some((src, dst));
                }
                Ok(n) => n,
            },
            _ = mode.changed() => continue,
        };
        if current == Mode::BlackHole {
            continue; // read and discarded: nothing crosses a black hole
        }
        if let Some(flag) = &corrupt
            && tls.feed(&mut buf[..n], flag.load(Ordering::Relaxed))
        {
            flag.store(false, Ordering::Relaxed);
            r.corrupted.fetch_add(1, Ordering::Relaxed);
            r.lock().pending_reconnect = Some(Instant::now());
        }
        shape_delay(&r.shape, n, &mut rng).await;
        if matches!(*mode.borrow(), Mode::Close { .. } | Mode::BlackHole) {
            continue;
        }
        if dst.write_all(&buf[..n]).await.is_err() {
            return None;
        }
        let counter = if up { &r.bytes_up } else { &r.bytes_down };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A small xorshift generator for jitter (no cryptographic need).
fn fastrand_seed(port: u16, up: bool) -> u64 {
    ((u64::from(port) << 1) | u64::from(up)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

async fn shape_delay(shape: &Shape, n: usize, rng: &mut u64) {
    let lat = shape.latency_ms.load(Ordering::Relaxed);
    let jit = shape.jitter_ms.load(Ordering::Relaxed);
    let bps = shape.bytes_per_s.load(Ordering::Relaxed);
    let mut delay_us = lat * 1000;
    if jit > 0 {
        delay_us += next_rand(rng) % (jit * 1000 + 1);
    }
    delay_us += (n as u64)
        .saturating_mul(1_000_000)
        .checked_div(bps)
        .unwrap_or(0);
    if delay_us > 0 {
        tokio::time::sleep(Duration::from_micros(delay_us)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, 3, 3];
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn tracker_flips_inside_the_first_application_record_only() {
        let mut stream = record(22, &[1, 2, 3]);
        stream.extend(record(23, &[9; 10]));
        stream.extend(record(23, &[7; 4]));
        let orig = stream.clone();
        let mut t = TlsRecordTracker::default();
        // Byte by byte: headers split across chunks.
        let mut flipped_at = None;
        for i in 0..stream.len() {
            if t.feed(&mut stream[i..=i], flipped_at.is_none()) {
                flipped_at = Some(i);
            }
        }
        assert_eq!(t.records, 3);
        // The first application-data body byte: after the 8-byte handshake record and a header.
        assert_eq!(flipped_at, Some(8 + 5));
        let diffs: Vec<usize> = (0..orig.len()).filter(|&i| orig[i] != stream[i]).collect();
        assert_eq!(diffs, vec![13]);
    }

    #[test]
    fn fault_specs_parse() {
        let p = |k: &str| match k {
            "ms" => Some(30),
            "jitter_ms" => Some(5),
            _ => None,
        };
        assert_eq!(
            ProxyFault::parse("latency", &p).ok(),
            Some(ProxyFault::Latency {
                ms: 30,
                jitter_ms: 5
            })
        );
        assert!(ProxyFault::parse("bandwidth", &p).is_err());
        assert!(ProxyFault::parse("nope", &p).is_err());
        assert!(ProxyFault::CorruptTls.ends_connection());
        assert!(!ProxyFault::Stall { ms: 1 }.ends_connection());
    }
}
