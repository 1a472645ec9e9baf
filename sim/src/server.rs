//! The thin I/O layer: tokio + tokio-rustls + tokio-tungstenite on loopback. One TLS port per
//! venue serving both the WebSocket upgrade and the venue's REST endpoints (HTTP/1.1,
//! `Connection: close`), a plain-HTTP control port (`POST /fault`, `GET /stats`,
//! `GET /windows`), and the market task that steps the [`Hub`] on the wall clock and broadcasts
//! its events. All protocol decisions are made by the sans-IO [`Session`] and [`Hub`].

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tracing::{debug, info, warn};

use crate::clob_server::ClobShared;
use crate::config::{EmulatorConfig, VenueConfig};
use crate::event::{Out, VenueEvent, VenueId};
use crate::hub::{Hub, ReplayError, ReplaySource};
use crate::session::{FAULT_KINDS, Fault, Session};
use crate::tls::{self, TlsError};
use crate::util::query_param;
use crate::venue;
use crate::wirelog::{FrameStamp, WireLog, poly_frame_keys, realtime_ns};

/// Server start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Certificates.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Capture replay.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The PolyBolt credentials file (its contents are never shown).
    #[error(
        "PolyBolt credentials file {0}: unreadable, or not a table of api_key, secret, passphrase"
    )]
    Credentials(String),
    /// Binding a port.
    #[error("binding {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// Per-venue counters (all monotonic except `connections_open`).
#[derive(Debug, Default)]
pub struct VenueStats {
    /// WebSocket connections accepted.
    pub connections_total: AtomicU64,
    /// WebSocket connections currently open.
    pub connections_open: AtomicU64,
    /// Text frames written.
    pub frames_sent: AtomicU64,
    /// Text payload bytes written.
    pub bytes_sent: AtomicU64,
    /// Text frames received from clients.
    pub client_frames: AtomicU64,
    /// REST requests served.
    pub rest_requests: AtomicU64,
    /// Faults injected.
    pub faults_injected: AtomicU64,
    /// WebSocket pings sent by the server.
    pub pings_sent: AtomicU64,
    /// WebSocket pongs received.
    pub pongs_received: AtomicU64,
    /// Market events published to this venue's sessions.
    pub events_published: AtomicU64,
    /// TCP connections closed at once by a `refuse` fault.
    pub connections_refused: AtomicU64,
    /// TLS handshakes delayed by a `slow_handshake` fault.
    pub handshakes_delayed: AtomicU64,
}

impl VenueStats {
    fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BTreeMap::from([
            ("connections_total", g(&self.connections_total)),
            ("connections_open", g(&self.connections_open)),
            ("frames_sent", g(&self.frames_sent)),
            ("bytes_sent", g(&self.bytes_sent)),
            ("client_frames", g(&self.client_frames)),
            ("rest_requests", g(&self.rest_requests)),
            ("faults_injected", g(&self.faults_injected)),
            ("pings_sent", g(&self.pings_sent)),
            ("pongs_received", g(&self.pongs_received)),
            ("events_published", g(&self.events_published)),
            ("connections_refused", g(&self.connections_refused)),
            ("handshakes_delayed", g(&self.handshakes_delayed)),
        ])
    }
}

/// A session fault, for every connection of the venue or for one (`conn`).
#[derive(Debug, Clone, Copy)]
struct Targeted {
    fault: Fault,
    conn: Option<u64>,
}

/// A venue listener's armed faults and open connections.
#[derive(Debug, Default)]
struct ListenerState {
    /// New connections are closed at once until this wall time, ms.
    refuse_until_ms: AtomicI64,
    /// Handshake delay of the next `slow_count` connections, ms.
    slow_ms: AtomicU64,
    slow_count: AtomicU32,
    /// Numbers of the open WebSocket connections (`conn` of a per-connection fault).
    open: Mutex<BTreeSet<u64>>,
}

impl ListenerState {
    fn arm(&self, fault: Fault) {
        match fault {
            Fault::Refuse { ms } => {
                let until = now_ms().saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
                self.refuse_until_ms.store(until, Ordering::Relaxed);
            }
            Fault::SlowHandshake { ms, count } => {
                self.slow_ms.store(ms, Ordering::Relaxed);
                self.slow_count.store(count, Ordering::Relaxed);
            }
            _ => {}
        }
    }
    fn refusing(&self) -> bool {
        now_ms() < self.refuse_until_ms.load(Ordering::Relaxed)
    }
    /// The handshake delay for a new connection, consuming one armed slot.
    fn take_delay(&self) -> Option<Duration> {
        self.slow_count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .ok()
            .map(|_| Duration::from_millis(self.slow_ms.load(Ordering::Relaxed)))
    }
    fn open_set(&self) -> MutexGuard<'_, BTreeSet<u64>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Shared {
    hub: Arc<Mutex<Hub>>,
    events: BTreeMap<VenueId, broadcast::Sender<Arc<VenueEvent>>>,
    faults: BTreeMap<VenueId, broadcast::Sender<Targeted>>,
    listeners: BTreeMap<VenueId, ListenerState>,
    stats: BTreeMap<VenueId, VenueStats>,
    conn_no: AtomicU64,
    shutdown: watch::Receiver<bool>,
    clob: Option<Arc<ClobShared>>,
    wirelog: Arc<WireLog>,
}

impl Shared {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        // A panic while holding the lock cannot leave the hub half-stepped in a way that matters
        // more than stopping the emulator would; keep serving.
        self.hub
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn stats(&self, v: VenueId) -> Option<&VenueStats> {
        self.stats.get(&v)
    }
}

/// Addresses of one served venue.
#[derive(Debug, Clone, Serialize)]
pub struct VenueInfo {
    /// Bound socket address.
    pub addr: SocketAddr,
    /// WebSocket URL (host `localhost`, covered by the certificate).
    pub ws_url: String,
    /// REST base URL, if the venue has REST endpoints here.
    pub rest_url: Option<String>,
    /// Capture replayed instead of the synthetic market.
    pub replay: Option<String>,
}

/// What `ringbolt emulate` prints once listening (one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct StartInfo {
    /// Always true: nothing here is a real venue.
    pub emulated: bool,
    /// PEM of the CA to trust.
    pub ca_pem: String,
    /// Control base URL (plain HTTP).
    pub control_url: String,
    /// Market seed.
    pub seed: u64,
    /// Polymarket window length, s.
    pub window_len_s: i64,
    /// Venues by name.
    pub venues: BTreeMap<&'static str, VenueInfo>,
    /// The CLOB order-entry emulator (HTTP/2 over TLS, ALPN h2), when served.
    pub clob: Option<ClobInfo>,
}

/// Where the CLOB emulator listens.
#[derive(Debug, Clone, Serialize)]
pub struct ClobInfo {
    /// Bound socket address.
    pub addr: SocketAddr,
    /// Base URL (`https://localhost:<port>`; the certificate also covers `clob.polymarket.com`).
    pub url: String,
    /// The authenticated user channel (`wss://localhost:<port>/ws/user`, same port, HTTP/1.1
    /// upgrade for clients that do not negotiate ALPN `h2`).
    pub user_ws_url: String,
}

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    /// Bound addresses.
    pub info: StartInfo,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds `addr`; the listener and the address it got (port 0: an ephemeral port).
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    Ok((listener, local))
}

/// Binds `addr` for a listener that another runtime will own (non-blocking std socket).
fn bind_std(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), ServerError> {
    let err = |source| ServerError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    Ok((listener, local))
}

/// Runs the CLOB emulator on its own OS thread and current-thread runtime, as the other host it
/// stands for: on a shared multi-thread runtime its socket was noticed when a busy worker next
/// polled the I/O driver (about 1 ms on 2 vCPUs while 12 venues stream), which counted as
/// order latency. `on_start` runs first on the new thread: the `emulate` command puts it in
/// `SCHED_FIFO` above the venue emulators' workers under `--rt-priority` (ADR 0030). At the
/// workers' priority it queued behind their bursts (orders read ~1.1 ms after they were sent);
/// in the normal class it was woken ~20 us after the send but ran only when the normal-class
/// task on its vCPU gave way, 1-4 ms later (ftrace of a demo: `sched_wakeup` then
/// `sched_switch`). It ends with the emulator's shutdown.
fn spawn_clob_thread<F, Fut>(
    addr: SocketAddr,
    on_start: impl FnOnce() + Send + 'static,
    serve: F,
) -> Result<(), ServerError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let err = |source| ServerError::Bind { addr, source };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(err)?;
    std::thread::Builder::new()
        .name("clob-emulator".into())
        .spawn(move || {
            on_start();
            rt.block_on(serve())
        })
        .map_err(err)?;
    Ok(())
}

/// The WebSocket URL (and REST base URL, for venues with REST) of venue `v` on `port`.
fn venue_urls(v: VenueId, port: u16) -> (String, Option<String>) {
    let (path, rest) = venue::spec(v).map_or(("/", false), |s| (s.ws_path, s.rest));
    (
        format!("wss://localhost:{port}{path}"),
        rest.then(|| format!("https://localhost:{port}")),
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Emulator {
    /// Generate certificates, bind every port and start serving.
    pub async fn start(cfg: EmulatorConfig) -> Result<Self, ServerError> {
        Self::start_with(cfg, || {}).await
    }

    /// [`Emulator::start`], running `clob_thread_start` first on the CLOB emulator's own thread
    /// (e.g. to give it a real-time priority, as the `emulate` command does); not run when the
    /// configuration has no CLOB.
    pub async fn start_with(
        cfg: EmulatorConfig,
        clob_thread_start: impl FnOnce() + Send + 'static,
    ) -> Result<Self, ServerError> {
        let pki = tls::generate(&cfg.cert_dir)?;
        let acceptor = TlsAcceptor::from(pki.server.clone());
        let served = cfg.served();
        let wall_at_start = now_ms();
        let ids: Vec<VenueId> = served.iter().map(|(v, _)| *v).collect();
        let mut hub = Hub::with_venues(
            cfg.market.clone(),
            cfg.start_ms.unwrap_or(wall_at_start),
            &ids,
        );
        if let Some(path) = &cfg.polybolt_credentials_file {
            let creds = crate::polybolt::load_credentials(path)
                .ok_or_else(|| ServerError::Credentials(path.display().to_string()))?;
            hub.set_polybolt_credentials(creds);
        }
        for (v, vc) in &served {
            if let Some(path) = &vc.replay {
                hub.set_replay(
                    *v,
                    ReplaySource::load(path, vc.replay_interval_ms, vc.replay_loop)?,
                );
            }
        }
        // The market clock runs at wall-clock speed from its anchor (wall time unless
        // `start_ms` is configured); catch up on the time the warm-up took.
        let clock_offset_ms = cfg.start_ms.map_or(0, |s| s - wall_at_start);
        let _ = hub.advance_to(now_ms() + clock_offset_ms);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut events = BTreeMap::new();
        let mut faults = BTreeMap::new();
        let mut stats = BTreeMap::new();
        let mut listeners = BTreeMap::new();
        for (v, _) in &served {
            events.insert(*v, broadcast::channel(16_384).0);
            faults.insert(*v, broadcast::channel(64).0);
            stats.insert(*v, VenueStats::default());
            listeners.insert(*v, ListenerState::default());
        }
        let shared = Arc::new(Shared {
            hub: Arc::new(Mutex::new(hub)),
            events,
            faults,
            listeners,
            stats,
            conn_no: AtomicU64::new(0),
            shutdown: shutdown_rx,
            clob: cfg
                .clob()
                .map(|_| Arc::new(ClobShared::new(cfg.market.seed))),
            wirelog: Arc::new(WireLog::new(cfg.wirelog_capacity)),
        });
        let mut tasks = Vec::new();
        let mut venues = BTreeMap::new();
        for (v, vc) in served {
            let (listener, addr) = bind(SocketAddr::new(cfg.bind, vc.port)).await?;
            let (ws_url, rest_url) = venue_urls(v, addr.port());
            venues.insert(
                v.name(),
                VenueInfo {
                    addr,
                    ws_url,
                    rest_url,
                    replay: vc.replay.as_ref().map(|p| p.display().to_string()),
                },
            );
            tasks.push(tokio::spawn(accept_loop(
                shared.clone(),
                v,
                vc,
                listener,
                acceptor.clone(),
            )));
        }
        let mut clob_info = None;
        if let (Some(vc), Some(clob)) = (cfg.clob(), shared.clob.clone()) {
            let (listener, addr) = bind_std(SocketAddr::new(cfg.bind, vc.port))?;
            let mut h2 = (*pki.server).clone();
            h2.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            let acceptor = TlsAcceptor::from(Arc::new(h2));
            let (hub, wirelog, shutdown) = (
                shared.hub.clone(),
                shared.wirelog.clone(),
                shared.shutdown.clone(),
            );
            spawn_clob_thread(addr, clob_thread_start, move || {
                crate::clob_server::accept_loop_std(
                    clob, hub, wirelog, listener, acceptor, shutdown,
                )
            })?;
            clob_info = Some(ClobInfo {
                addr,
                url: format!("https://localhost:{}", addr.port()),
                user_ws_url: format!("wss://localhost:{}/ws/user", addr.port()),
            });
        }
        let (control, caddr) = bind(SocketAddr::new(cfg.bind, cfg.control_port)).await?;
        tasks.push(tokio::spawn(control_loop(shared.clone(), control)));
        tasks.push(tokio::spawn(market_loop(
            shared.clone(),
            cfg.market.tick_ms,
            clock_offset_ms,
        )));
        let info = StartInfo {
            emulated: true,
            ca_pem: pki.ca_pem_path.display().to_string(),
            control_url: format!("http://{caddr}"),
            seed: cfg.market.seed,
            window_len_s: cfg.market.window_len_s,
            venues,
            clob: clob_info,
        };
        info!(?info, "emulator listening");
        Ok(Self {
            info,
            shutdown: shutdown_tx,
            tasks,
        })
    }

    /// Announce shutdown to every session (Binance `serverShutdown`, close 1001), then stop.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        tokio::time::sleep(Duration::from_millis(300)).await;
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn market_loop(shared: Arc<Shared>, tick_ms: i64, clock_offset_ms: i64) {
    let mut iv = tokio::time::interval(Duration::from_millis(tick_ms.max(1) as u64));
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            _ = iv.tick() => {}
            _ = shutdown.changed() => return,
        }
        let events = shared.hub().advance_to(now_ms() + clock_offset_ms);
        if let Some(clob) = &shared.clob {
            clob.tick(&shared.hub, now_ms());
        }
        for ev in events {
            if let (Some(tx), Some(st)) = (shared.events.get(&ev.venue), shared.stats(ev.venue)) {
                st.events_published.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(Arc::new(ev));
            }
        }
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    venue: VenueId,
    vc: VenueConfig,
    listener: TcpListener,
    acceptor: TlsAcceptor,
) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => { warn!(venue = venue.name(), error = %e, "accept failed"); continue; }
            },
            _ = shutdown.changed() => return,
        };
        let listener_state = shared.listeners.get(&venue);
        if listener_state.is_some_and(ListenerState::refusing) {
            if let Some(st) = shared.stats(venue) {
                st.connections_refused.fetch_add(1, Ordering::Relaxed);
            }
            // Abort: RST right after accept, as a refusing load balancer would.
            #[allow(deprecated)]
            let _ = tcp.set_linger(Some(Duration::ZERO));
            drop(tcp);
            continue;
        }
        let delay = listener_state.and_then(ListenerState::take_delay);
        if let (Some(_), Some(st)) = (delay, shared.stats(venue)) {
            st.handshakes_delayed.fetch_add(1, Ordering::Relaxed);
        }
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        let ping = vc.server_ping_ms;
        tokio::spawn(async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            if let Err(e) = serve_conn(shared, venue, tcp, acceptor, ping).await {
                debug!(venue = venue.name(), %peer, error = %e, "connection ended");
            }
        });
    }
}

/// A parsed HTTP/1.1 request head.
#[derive(Debug)]
struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn split_target(&self) -> (&str, &str) {
        self.target.split_once('?').unwrap_or((&self.target, ""))
    }
}

/// Read a request head byte by byte (so nothing after it is consumed).
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Head> {
    let mut buf = Vec::with_capacity(512);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 16 * 1024 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head over 16 KiB",
            ));
        }
        if s.read(&mut byte).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before request head",
            ));
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Head {
        method,
        target,
        headers,
    })
}

async fn respond<S: AsyncWrite + Unpin>(s: &mut S, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(resp.as_bytes()).await?;
    s.flush().await?;
    s.shutdown().await
}

async fn serve_conn(
    shared: Arc<Shared>,
    venue: VenueId,
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    ping_ms: Option<u64>,
) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let mut tls = acceptor.accept(tcp).await?;
    let head = read_head(&mut tls).await?;
    let upgrade = head
        .header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return serve_rest(&shared, venue, &mut tls, &head).await;
    }
    let Some(key) = head.header("sec-websocket-key").map(str::to_string) else {
        return respond(&mut tls, 400, r#"{"error":"missing Sec-WebSocket-Key"}"#).await;
    };
    let conn_no = shared.conn_no.fetch_add(1, Ordering::Relaxed);
    let (mut session, first) = match Session::open(venue, &head.target, conn_no) {
        Ok(x) => x,
        Err(e) => return respond(&mut tls, 404, &format!(r#"{{"error":"{e}"}}"#)).await,
    };
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    tls.write_all(resp.as_bytes()).await?;
    tls.flush().await?;
    let mut ws = WebSocketStream::from_raw_socket(tls, Role::Server, None).await;
    let (Some(events), Some(faults), Some(stats)) = (
        shared.events.get(&venue),
        shared.faults.get(&venue),
        shared.stats(venue),
    ) else {
        return Ok(());
    };
    let mut events = events.subscribe();
    let mut faults = faults.subscribe();
    stats.connections_total.fetch_add(1, Ordering::Relaxed);
    stats.connections_open.fetch_add(1, Ordering::Relaxed);
    if let Some(l) = shared.listeners.get(&venue) {
        l.open_set().insert(conn_no);
    }
    let result = ws_loop(
        &shared,
        &mut session,
        &mut ws,
        &mut events,
        &mut faults,
        stats,
        first,
        ping_ms,
        conn_no,
    )
    .await;
    stats.connections_open.fetch_sub(1, Ordering::Relaxed);
    if let Some(l) = shared.listeners.get(&venue) {
        l.open_set().remove(&conn_no);
    }
    match result {
        Ok(Ending::Abrupt) => {
            // Abort: RST, no close frame, no TLS close_notify.
            #[allow(deprecated)]
            let _ = ws.get_ref().get_ref().0.set_linger(Some(Duration::ZERO));
            drop(ws);
            Ok(())
        }
        Ok(Ending::Graceful) => Ok(()),
        Err(e) => Err(std::io::Error::other(e)),
    }
}

enum Ending {
    Graceful,
    Abrupt,
}

type Ws = WebSocketStream<tokio_rustls::server::TlsStream<TcpStream>>;

/// Where a session's written frames are stamped (Polymarket market channel only).
struct FrameLog<'a> {
    wirelog: &'a WireLog,
    conn: u64,
    enabled: bool,
}

impl FrameLog<'_> {
    /// Stamps `text` just before it is written.
    fn stamp(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let keys = poly_frame_keys(text);
        if keys.is_empty() {
            return;
        }
        let write_ns = realtime_ns();
        self.wirelog.frames(
            keys.into_iter()
                .map(|(asset_id, timestamp_ms, event_type)| FrameStamp {
                    write_ns,
                    conn: self.conn,
                    asset_id,
                    timestamp_ms,
                    event_type,
                }),
        );
    }
}

async fn send_outs(
    ws: &mut Ws,
    outs: Vec<Out>,
    stats: &VenueStats,
    log: &FrameLog<'_>,
) -> Result<bool, tokio_tungstenite::tungstenite::Error> {
    for o in outs {
        match o {
            Out::Text(t) => {
                log.stamp(&t);
                stats.frames_sent.fetch_add(1, Ordering::Relaxed);
                stats
                    .bytes_sent
                    .fetch_add(t.len() as u64, Ordering::Relaxed);
                ws.send(Message::text(t)).await?;
            }
            Out::Close(code, reason) => {
                ws.send(Message::Close(Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                })))
                .await?;
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
async fn ws_loop(
    shared: &Shared,
    session: &mut Session,
    ws: &mut Ws,
    events: &mut broadcast::Receiver<Arc<VenueEvent>>,
    faults: &mut broadcast::Receiver<Targeted>,
    stats: &VenueStats,
    first: Vec<Out>,
    ping_ms: Option<u64>,
    conn_no: u64,
) -> Result<Ending, tokio_tungstenite::tungstenite::Error> {
    let log = FrameLog {
        wirelog: &shared.wirelog,
        conn: conn_no,
        enabled: session.venue() == VenueId::Polymarket,
    };
    send_outs(ws, first, stats, &log).await?;
    let mut shutdown = shared.shutdown.clone();
    let ping_period = Duration::from_millis(ping_ms.unwrap_or(3_600_000).max(1));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_period, ping_period);
    let mut stalled_until: Option<tokio::time::Instant> = None;
    loop {
        let stalled = stalled_until.is_some_and(|t| tokio::time::Instant::now() < t);
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    stats.client_frames.fetch_add(1, Ordering::Relaxed);
                    if stalled { continue; }
                    let outs = {
                        let hub = shared.hub();
                        session.on_client_text(t.as_str(), &hub)
                    };
                    if !send_outs(ws, outs, stats, &log).await? { return Ok(Ending::Graceful); }
                }
                Some(Ok(Message::Pong(_))) => { stats.pongs_received.fetch_add(1, Ordering::Relaxed); }
                Some(Ok(Message::Close(_))) | None => return Ok(Ending::Graceful),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
            },
            ev = events.recv() => match ev {
                Ok(ev) => {
                    if stalled { continue; }
                    if let Some(text) = session.on_event(&ev) {
                        send_outs(ws, vec![Out::Text(text)], stats, &log).await?;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(venue = session.venue().name(), missed = n, "slow client disconnected");
                    send_outs(ws, vec![Out::Close(1008, "slow consumer".into())], stats, &log).await?;
                    return Ok(Ending::Graceful);
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(Ending::Graceful),
            },
            f = faults.recv() => match f {
                Ok(t) if t.conn.is_some_and(|c| c != conn_no) => {}
                Ok(Targeted { fault: Fault::Disconnect, .. }) => return Ok(Ending::Abrupt),
                Ok(Targeted { fault: Fault::Stall { ms }, .. }) => stalled_until = Some(tokio::time::Instant::now() + Duration::from_millis(ms)),
                Ok(t) => {
                    session.inject(t.fault);
                    let outs = session.take_pending();
                    if !send_outs(ws, outs, stats, &log).await? { return Ok(Ending::Graceful); }
                }
                Err(_) => {}
            },
            _ = ping.tick(), if ping_ms.is_some() && !stalled => {
                stats.pings_sent.fetch_add(1, Ordering::Relaxed);
                ws.send(Message::Ping(now_ms().to_string().into_bytes().into())).await?;
            }
            _ = shutdown.changed() => {
                let now = shared.hub().now_ms();
                send_outs(ws, session.shutdown(now), stats, &log).await?;
                return Ok(Ending::Graceful);
            }
        }
    }
}

async fn serve_rest<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    venue: VenueId,
    s: &mut S,
    head: &Head,
) -> std::io::Result<()> {
    if let Some(st) = shared.stats(venue) {
        st.rest_requests.fetch_add(1, Ordering::Relaxed);
    }
    if head.method != "GET" {
        return respond(s, 405, r#"{"error":"method not allowed"}"#).await;
    }
    let (path, query) = head.split_target();
    let (status, body) = {
        let hub = shared.hub();
        venue::spec(venue)
            .and_then(|spec| (spec.rest_fn)(&hub, venue, path, query))
            .unwrap_or((404, r#"{"error":"not found"}"#.to_string()))
    };
    respond(s, status, &body).await
}

async fn control_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let (mut tcp, _) = tokio::select! {
            r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(head) = read_head(&mut tcp).await else {
                return;
            };
            let (status, body) = control(&shared, &head);
            let _ = respond(&mut tcp, status, &body).await;
        });
    }
}

fn control(shared: &Shared, head: &Head) -> (u16, String) {
    let (path, query) = head.split_target();
    match (head.method.as_str(), path) {
        ("POST", "/fault") if query_param(query, "venue") == Some("clob") => {
            let Some(clob) = &shared.clob else {
                return (404, r#"{"error":"venue not served"}"#.into());
            };
            let ms = query_param(query, "ms").and_then(|v| v.parse().ok());
            let count = query_param(query, "count").and_then(|v| v.parse().ok());
            let kind = query_param(query, "kind").unwrap_or("");
            match clob.faults.apply(kind, ms, count) {
                Ok(conns) => {
                    clob.stats.faults_injected.fetch_add(1, Ordering::Relaxed);
                    info!(venue = "clob", kind, ?ms, ?count, conns, "fault injected");
                    (200, serde_json::json!({"ok": true, "venue": "clob", "fault": kind, "ms": ms, "count": count, "sessions": conns}).to_string())
                }
                Err(e) => (400, serde_json::json!({ "error": e }).to_string()),
            }
        }
        (m, p) if p.starts_with("/clob/") => match &shared.clob {
            Some(clob) => crate::clob_server::control(clob, &shared.hub, m, p, query),
            None => (404, r#"{"error":"clob not served"}"#.into()),
        },
        ("GET", "/wirelog") => {
            let since = query_param(query, "since_ns").and_then(|v| v.parse().ok()).unwrap_or(i64::MIN);
            (200, shared.wirelog.to_json(since).to_string())
        }
        ("POST", "/fault") => venue_fault(shared, query),
        ("GET", "/stats") => {
            let hub = shared.hub();
            let venues: BTreeMap<&str, _> = shared.stats.iter().map(|(v, s)| {
                let mut j = serde_json::json!(s.snapshot());
                let open: Vec<u64> = shared.listeners.get(v).map(|l| l.open_set().iter().copied().collect()).unwrap_or_default();
                j["open_conns"] = serde_json::json!(open);
                (v.name(), j)
            }).collect();
            let body = serde_json::json!({
                "tick": hub.tick(),
                "market_now_ms": hub.now_ms(),
                "true_price_usd": hub.true_price(),
                "venues": venues,
                "clob": shared.clob.as_ref().map(|c| c.stats_json()),
            });
            (200, body.to_string())
        }
        ("GET", "/windows") => {
            let hub = shared.hub();
            let now = hub.now_ms();
            let current = hub.polymarket().current(now).map(|w| w.start_s);
            let list: Vec<serde_json::Value> = hub
                .polymarket()
                .windows()
                .map(|w| serde_json::json!({
                    "slug": w.slug,
                    "start_s": w.start_s,
                    "end_s": w.end_s,
                    "condition_id": w.condition_id,
                    "up_token": w.tokens[0],
                    "down_token": w.tokens[1],
                    "strike_usd": w.strike,
                    "resolved_up": w.resolved,
                    "current": Some(w.start_s) == current,
                }))
                .collect();
            (200, serde_json::json!({"market_now_ms": now, "windows": list}).to_string())
        }
        _ => (404, r#"{"error":"routes: POST /fault?venue=&kind=disconnect|stall|gap|corrupt|checksum|slow_handshake|refuse[&ms=][&count=][&conn=], POST /fault?venue=clob&kind=latency&ms=N|http429|http503|goaway|disconnect[&count=], GET /stats, GET /windows, GET /wirelog[?since_ns=]"}"#.into()),
    }
}

/// `POST /fault?venue=V&kind=K[&ms=][&count=][&conn=N]`: arm a fault on venue `V`'s live
/// sessions (all, or connection `N` of `GET /stats` `open_conns`) or on its listener
/// (`slow_handshake`, `refuse`).
fn venue_fault(shared: &Shared, query: &str) -> (u16, String) {
    let err = |status: u16, msg: String| (status, serde_json::json!({ "error": msg }).to_string());
    let Some(venue) = query_param(query, "venue").and_then(VenueId::parse) else {
        return err(
            400,
            format!("venue must be one of {}, clob", venue::registered_names()),
        );
    };
    let ms = query_param(query, "ms").and_then(|v| v.parse().ok());
    let count = query_param(query, "count").and_then(|v| v.parse().ok());
    let conn: Option<u64> = match query_param(query, "conn").map(str::parse) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => return err(400, "conn must be a connection number".into()),
    };
    let fault = match Fault::parse(query_param(query, "kind").unwrap_or(""), ms, count)
        .and_then(|f| f.check_applies(venue).map(|()| f))
    {
        Ok(f) => f,
        Err(e) => return err(400, e.to_string()),
    };
    let (Some(tx), Some(listener)) = (shared.faults.get(&venue), shared.listeners.get(&venue))
    else {
        return err(404, format!("venue {} not served", venue.name()));
    };
    let sessions = if fault.is_listener_fault() {
        listener.arm(fault);
        0
    } else {
        if conn.is_some_and(|c| !listener.open_set().contains(&c)) {
            return err(404, format!("no open {} connection {conn:?}", venue.name()));
        }
        tx.send(Targeted { fault, conn }).unwrap_or(0)
    };
    if let Some(st) = shared.stats(venue) {
        st.faults_injected.fetch_add(1, Ordering::Relaxed);
    }
    info!(
        venue = venue.name(),
        ?fault,
        ?conn,
        sessions,
        "fault injected"
    );
    let body = serde_json::json!({
        "ok": true, "venue": venue.name(), "fault": format!("{fault:?}"), "conn": conn,
        "sessions": sessions, "kinds": FAULT_KINDS,
    });
    (200, body.to_string())
}
