//! The CLOB emulator's I/O shell: hyper's HTTP/2 server over tokio-rustls (ALPN `h2`, the
//! run's loopback CA), the [`ClobState`] behind a mutex, faults, and the order half of the
//! wire log. Also serves Gamma discovery (`/markets`, `/events`, `/events/slug/<slug>`) from the
//! same windows as the Polymarket market emulator, and, on the same port, the authenticated
//! user channel (`wss://…/ws/user`, HTTP/1.1 upgrade: a TLS client that does not negotiate
//! ALPN `h2` gets HTTP/1.1), fed by the exchange's [`crate::clob_engine::UserEvent`]s.

use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::clob::{ClobRequest, ClobState, OrderSeen};
use crate::clob_engine::UserEvent;
use crate::clob_user::UserSession;
use crate::event::Out;
use crate::hub::Hub;
use crate::wirelog::{OrderStamp, WireLog, realtime_ns};

/// A connection-level fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnFault {
    /// Graceful HTTP/2 GOAWAY (in-flight streams finish, then the connection closes).
    GoAway,
    /// TCP RST (SO_LINGER 0), no GOAWAY, no TLS close_notify.
    Disconnect,
}

/// Faults of the CLOB emulator (`POST /fault?venue=clob&kind=…`).
#[derive(Debug)]
pub struct ClobFaults {
    /// Added delay before answering each order-entry request, ms (0: none). Persistent.
    pub latency_ms: AtomicU64,
    /// The next N order-entry requests get HTTP 429.
    pub http429: AtomicU64,
    /// The next N order-entry requests get HTTP 503.
    pub http503: AtomicU64,
    /// Order-entry requests get HTTP 425 until this wall-clock time, ms ("the matching engine
    /// restarts").
    pub http425_until_ms: AtomicU64,
    /// The next N order-entry requests are processed but their response is dropped (HTTP/2
    /// RST_STREAM instead of an answer): the submit outcome is unknown to the client.
    pub drop_response: AtomicU64,
    conn: broadcast::Sender<ConnFault>,
}

impl ClobFaults {
    fn new() -> Self {
        ClobFaults {
            latency_ms: AtomicU64::new(0),
            http429: AtomicU64::new(0),
            http503: AtomicU64::new(0),
            http425_until_ms: AtomicU64::new(0),
            drop_response: AtomicU64::new(0),
            conn: broadcast::channel(16).0,
        }
    }

    /// Applies a fault given by the control endpoint; returns how many connections a
    /// connection-level fault reached.
    pub fn apply(&self, kind: &str, ms: Option<u64>, count: Option<u64>) -> Result<usize, String> {
        let n = count.unwrap_or(1);
        match kind {
            "latency" => {
                self.latency_ms.store(ms.unwrap_or(0), Ordering::Relaxed);
                Ok(0)
            }
            "http429" => {
                self.http429.store(n, Ordering::Relaxed);
                Ok(0)
            }
            "http503" => {
                self.http503.store(n, Ordering::Relaxed);
                Ok(0)
            }
            "http425" => {
                let until = realtime_ns() / 1_000_000 + ms.unwrap_or(1_000) as i64;
                self.http425_until_ms.store(until as u64, Ordering::Relaxed);
                Ok(0)
            }
            "drop_response" => {
                self.drop_response.store(n, Ordering::Relaxed);
                Ok(0)
            }
            "goaway" => Ok(self.conn.send(ConnFault::GoAway).unwrap_or(0)),
            "disconnect" => Ok(self.conn.send(ConnFault::Disconnect).unwrap_or(0)),
            other => Err(format!(
                "clob fault kind {other:?}: latency&ms=N | http429[&count=N] | http503[&count=N] | http425&ms=N | drop_response[&count=N] | goaway | disconnect"
            )),
        }
    }
}

fn take_one(a: &AtomicU64) -> bool {
    a.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1))
        .is_ok()
}

/// Counters of the HTTP/2 side.
#[derive(Debug, Default)]
pub struct ClobConnStats {
    /// Connections accepted.
    pub connections_total: AtomicU64,
    /// Connections open.
    pub connections_open: AtomicU64,
    /// Requests served.
    pub requests: AtomicU64,
    /// Faults injected.
    pub faults_injected: AtomicU64,
    /// User-channel WebSocket sessions opened.
    pub user_sessions: AtomicU64,
}

/// Everything the CLOB tasks share.
#[derive(Debug)]
pub struct ClobShared {
    state: Mutex<ClobState>,
    /// Faults.
    pub faults: ClobFaults,
    /// Counters.
    pub stats: ClobConnStats,
    conn_no: AtomicU64,
    user_tx: broadcast::Sender<Arc<UserEvent>>,
}

impl ClobShared {
    /// State seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        ClobShared {
            state: Mutex::new(ClobState::new(seed)),
            faults: ClobFaults::new(),
            stats: ClobConnStats::default(),
            conn_no: AtomicU64::new(0),
            user_tx: broadcast::channel(16_384).0,
        }
    }

    /// Delivers the exchange's queued user-channel events to the connected sessions.
    fn flush(&self, st: &mut ClobState) {
        for ev in st.exchange.outbox.drain(..) {
            let _ = self.user_tx.send(Arc::new(ev));
        }
    }

    /// Time passes (called by the market task after each step): heartbeat expiry, GTD expiry,
    /// resting orders the book moved through, trade status progression.
    pub fn tick(&self, hub: &Mutex<Hub>, now_ms: i64) {
        let mut view = lock_hub(hub);
        let mut st = self.state();
        st.check_heartbeats(now_ms);
        st.exchange.tick(view.polymarket_mut(), now_ms);
        self.flush(&mut st);
    }

    /// The state (lock).
    pub fn state(&self) -> MutexGuard<'_, ClobState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counters as JSON.
    pub fn stats_json(&self) -> serde_json::Value {
        let s = self.state().stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "connections_total": g(&self.stats.connections_total),
            "connections_open": g(&self.stats.connections_open),
            "requests": g(&self.stats.requests),
            "faults_injected": g(&self.stats.faults_injected),
            "user_sessions": g(&self.stats.user_sessions),
            "orders_received": s.orders_received,
            "orders_accepted": s.orders_accepted,
            "orders_rejected": s.orders_rejected,
            "auth_failures": s.auth_failures,
            "cancels": s.cancels,
            "heartbeats": s.heartbeats,
            "deadman_fired": s.deadman_fired,
            "open_orders": self.state().open_orders(),
            "exchange": self.state().exchange.stats,
            "latency_ms": g(&self.faults.latency_ms),
        })
    }
}

/// The hub lock, shared with the market task.
pub type HubLock = Arc<Mutex<Hub>>;

/// [`accept_loop`] on a listener bound elsewhere (a non-blocking std socket), registered with
/// the runtime this runs on; ends at shutdown or when the emulator is dropped.
pub async fn accept_loop_std(
    clob: Arc<ClobShared>,
    hub: HubLock,
    wirelog: Arc<WireLog>,
    listener: std::net::TcpListener,
    acceptor: TlsAcceptor,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    match TcpListener::from_std(listener) {
        Ok(listener) => accept_loop(clob, hub, wirelog, listener, acceptor, shutdown).await,
        Err(e) => warn!(error = %e, "clob listener could not join its runtime"),
    }
}

/// Accepts HTTP/2 connections until `shutdown` changes.
pub async fn accept_loop(
    clob: Arc<ClobShared>,
    hub: HubLock,
    wirelog: Arc<WireLog>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => { warn!(error = %e, "clob accept failed"); continue; }
            },
            _ = shutdown.changed() => return,
        };
        let (clob, hub, wirelog, acceptor, shutdown) = (
            clob.clone(),
            hub.clone(),
            wirelog.clone(),
            acceptor.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            clob.stats.connections_total.fetch_add(1, Ordering::Relaxed);
            clob.stats.connections_open.fetch_add(1, Ordering::Relaxed);
            let r = serve_conn(&clob, hub, wirelog, tcp, acceptor, shutdown).await;
            clob.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
            if let Err(e) = r {
                debug!(%peer, error = %e, "clob connection ended");
            }
        });
    }
}

/// A TCP stream that stamps (CLOCK_REALTIME) every read that returned bytes. An order's
/// arrival is the read that delivered it, taken before TLS, HTTP/2 and the runtime's hand-off
/// to the request task (which a stamp in the handler would include): the wire end of
/// tick-to-order.
struct ReadStamped {
    inner: TcpStream,
    last_read_ns: Arc<AtomicI64>,
}

impl AsyncRead for ReadStamped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.last_read_ns.store(realtime_ns(), Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for ReadStamped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn serve_conn(
    clob: &Arc<ClobShared>,
    hub: HubLock,
    wirelog: Arc<WireLog>,
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    // Keep a second descriptor of the socket so a `disconnect` fault can set SO_LINGER 0
    // (RST on close) after the stream is wrapped by TLS and hyper.
    let std_tcp = tcp.into_std()?;
    let raw = std_tcp.try_clone()?;
    let last_read_ns = Arc::new(AtomicI64::new(0));
    let tcp = ReadStamped {
        inner: TcpStream::from_std(std_tcp)?,
        last_read_ns: Arc::clone(&last_read_ns),
    };
    let tls = acceptor.accept(tcp).await?;
    if tls.get_ref().1.alpn_protocol() != Some(b"h2".as_slice()) {
        return user_channel(clob, tls, shutdown).await;
    }
    let conn_no = clob.conn_no.fetch_add(1, Ordering::Relaxed);
    let mut faults = clob.faults.conn.subscribe();
    let clob2 = clob.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (clob, hub, wirelog) = (clob2.clone(), hub.clone(), wirelog.clone());
        let conn = Conn {
            no: conn_no,
            last_read_ns: Arc::clone(&last_read_ns),
        };
        async move { handle(&clob, &hub, &wirelog, &conn, req).await }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .max_concurrent_streams(128)
        .initial_stream_window_size(4 * 1024 * 1024)
        .initial_connection_window_size(8 * 1024 * 1024);
    let conn = builder.serve_connection(TokioIo::new(tls), svc);
    let mut conn = std::pin::pin!(conn);
    loop {
        tokio::select! {
            r = conn.as_mut() => return r.map_err(std::io::Error::other),
            f = faults.recv() => match f {
                Ok(ConnFault::GoAway) => conn.as_mut().graceful_shutdown(),
                Ok(ConnFault::Disconnect) => {
                    socket2::SockRef::from(&raw).set_linger(Some(Duration::ZERO))?;
                    return Ok(());
                }
                Err(_) => {}
            },
            _ = shutdown.changed() => {
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

fn lock_hub(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn respond(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A request's connection: its number and the stamp of its latest read.
struct Conn {
    no: u64,
    last_read_ns: Arc<AtomicI64>,
}

/// When a request arrived: `(read_ns, handler_ns)`, the read that delivered it (at most the
/// handler's stamp: a later read can only make it later, never earlier than the arrival) and
/// the handler's start.
fn arrival(conn: &Conn) -> (i64, i64) {
    let handler_ns = realtime_ns();
    let read_ns = conn.last_read_ns.load(Ordering::Relaxed);
    let read_ns = if read_ns > 0 && read_ns <= handler_ns {
        read_ns
    } else {
        handler_ns
    };
    (read_ns, handler_ns)
}

fn stamps(at: (i64, i64), conn: u64, path: &str, seen: Vec<OrderSeen>) -> Vec<OrderStamp> {
    seen.into_iter()
        .map(|s| OrderStamp {
            recv_ns: at.0,
            handler_ns: at.1,
            conn,
            path: path.to_string(),
            order: s,
        })
        .collect()
}

async fn handle(
    clob: &ClobShared,
    hub: &Mutex<Hub>,
    wirelog: &WireLog,
    conn: &Conn,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    // Headers have arrived; the order arrived with the connection's latest read.
    let arrived = arrival(conn);
    let conn_no = conn.no;
    clob.stats.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(respond(400, format!(r#"{{"error":"reading body: {e}"}}"#))),
    };
    let method = parts.method.as_str();
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    if method == "GET"
        && (path == "/markets" || path == "/events" || path.starts_with("/events/slug/"))
    {
        return Ok(gamma(hub, path, query));
    }
    let order_entry = matches!(
        (method, path),
        ("POST", "/order" | "/orders" | "/v1/heartbeats")
            | (
                "DELETE",
                "/order" | "/orders" | "/cancel-all" | "/cancel-market-orders"
            )
    );
    let mut drop_it = false;
    if order_entry {
        if let Some((status, text)) = entry_fault(&clob.faults).await {
            let seen = crate::clob::describe_orders(&body, text);
            wirelog.orders(stamps(arrived, conn_no, path, seen));
            return Ok(respond(
                status,
                serde_json::json!({ "error": text }).to_string(),
            ));
        }
        drop_it = take_one(&clob.faults.drop_response);
    }
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let creq = ClobRequest {
        method,
        path,
        query,
        headers: &headers,
        body: &body,
    };
    let now_ms = realtime_ns() / 1_000_000;
    let (resp, seen) = {
        let mut view = lock_hub(hub);
        let mut st = clob.state();
        let r = st.handle(&creq, view.polymarket_mut(), now_ms);
        clob.flush(&mut st);
        r
    };
    if !seen.is_empty() {
        wirelog.orders(stamps(arrived, conn_no, path, seen));
    }
    if drop_it {
        clob.stats.faults_injected.fetch_add(1, Ordering::Relaxed);
        return Err(std::io::Error::other(
            "drop_response fault: answer withheld",
        ));
    }
    Ok(respond(resp.status, resp.body))
}

/// Gamma discovery, from the market emulator's windows.
fn gamma(hub: &Mutex<Hub>, path: &str, query: &str) -> Response<Full<Bytes>> {
    let view = lock_hub(hub);
    let now = view.now_ms();
    let (status, body) = view
        .polymarket()
        .gamma(path, query, now)
        .unwrap_or((404, r#"{"error":"not found"}"#.to_string()));
    respond(status, body)
}

/// Text of the injected HTTP 425 (unverified: the venue's exact body is not in the corpus).
pub const TOO_EARLY: &str = "Too Early: the matching engine is restarting, retry later";

/// The injected latency, then an injected refusal if one is armed.
async fn entry_fault(f: &ClobFaults) -> Option<(u16, &'static str)> {
    let lat = f.latency_ms.load(Ordering::Relaxed);
    if lat > 0 {
        tokio::time::sleep(Duration::from_millis(lat)).await;
    }
    let now_ms = (realtime_ns() / 1_000_000) as u64;
    if now_ms < f.http425_until_ms.load(Ordering::Relaxed) {
        Some((425, TOO_EARLY))
    } else if take_one(&f.http429) {
        Some((429, crate::clob::msg::TOO_MANY_REQUESTS))
    } else if take_one(&f.http503) {
        Some((503, crate::clob::msg::TRADING_DISABLED))
    } else {
        None
    }
}

type UserWs = WebSocketStream<tokio_rustls::server::TlsStream<ReadStamped>>;

/// An HTTP/1.1 connection on the CLOB port: the user channel's WebSocket upgrade at `/ws/user`
/// (any other path: 404).
async fn user_channel(
    clob: &Arc<ClobShared>,
    tls: tokio_rustls::server::TlsStream<ReadStamped>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    // The signature is tungstenite's callback type.
    #[allow(clippy::result_large_err)]
    let route = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == "/ws/user" {
            return Ok(resp);
        }
        let mut e = ErrorResponse::new(Some(r#"{"error":"not found"}"#.to_string()));
        *e.status_mut() = hyper::StatusCode::NOT_FOUND;
        Err(e)
    };
    let mut ws = tokio_tungstenite::accept_hdr_async(tls, route)
        .await
        .map_err(std::io::Error::other)?;
    let rx = clob.user_tx.subscribe();
    clob.stats.user_sessions.fetch_add(1, Ordering::Relaxed);
    user_loop(clob, &mut ws, rx, shutdown)
        .await
        .map_err(std::io::Error::other)
}

async fn send_user(
    ws: &mut UserWs,
    outs: Vec<Out>,
) -> Result<bool, tokio_tungstenite::tungstenite::Error> {
    for o in outs {
        match o {
            Out::Text(t) => ws.send(Message::text(t)).await?,
            Out::Close(code, reason) => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                ws.close(Some(frame)).await?;
                return Ok(false);
            }
        }
    }
    Ok(true)
}

async fn user_loop(
    clob: &ClobShared,
    ws: &mut UserWs,
    mut rx: broadcast::Receiver<Arc<UserEvent>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut session = UserSession::default();
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let outs = {
                        let st = clob.state();
                        session.on_text(t.as_str(), &|k, s, p| st.check_creds(k, s, p))
                    };
                    if !send_user(ws, outs).await? { return Ok(()); }
                }
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
            },
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if let Some(text) = session.on_event(&ev) {
                        ws.send(Message::text(text.to_string())).await?;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(missed = n, "slow user-channel client disconnected");
                    send_user(ws, vec![Out::Close(1008, "slow consumer".into())]).await?;
                    return Ok(());
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = shutdown.changed() => {
                send_user(ws, vec![Out::Close(1001, "server shutdown".into())]).await?;
                return Ok(());
            }
        }
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The exchange's control routes (control port, `/clob/...`):
/// `GET /clob/ledger`, `POST /clob/fail-next[?count=N]`, `POST /clob/delay-next[?count=N][&ms=M]`,
/// `POST /clob/params?[mined_ms=][&confirmed_ms=][&fail_share=][&heartbeat_timeout_ms=][&initial_usdc_micro=]`,
/// `POST /clob/fund?api_key=K&usdc_micro=N`, `POST /clob/tick-size?token=T&tick=0.01|0.001|auto`.
pub fn control(
    clob: &ClobShared,
    hub: &Mutex<Hub>,
    method: &str,
    path: &str,
    query: &str,
) -> (u16, String) {
    let q = |k: &str| query_param(query, k);
    let num = |k: &str| q(k).and_then(|v| v.parse::<i64>().ok());
    let ok = |v: serde_json::Value| (200, v.to_string());
    let mut st = clob.state();
    match (method, path) {
        ("GET", "/clob/ledger") => {
            let mut v = st.exchange.ledger_json();
            v["heartbeat_timeout_ms"] = st.heartbeat_timeout_ms.into();
            ok(v)
        }
        ("POST", "/clob/fail-next") => {
            let n = num("count").unwrap_or(1).max(0) as u64;
            st.exchange.fail_next(n);
            ok(serde_json::json!({"ok": true, "fail_next": n}))
        }
        ("POST", "/clob/params") => {
            let p = &mut st.exchange.params;
            if let Some(v) = num("mined_ms") {
                p.mined_delay_ms = v;
            }
            if let Some(v) = num("confirmed_ms") {
                p.confirmed_delay_ms = v;
            }
            if let Some(v) = q("fail_share").and_then(|v| v.parse::<f64>().ok()) {
                p.fail_share = v.clamp(0.0, 1.0);
            }
            if let Some(v) = num("initial_usdc_micro") {
                p.initial_usdc_micro = v;
            }
            let params = *p;
            if let Some(v) = num("heartbeat_timeout_ms") {
                st.heartbeat_timeout_ms = v;
            }
            ok(serde_json::json!({"ok": true, "params": params, "heartbeat_timeout_ms": st.heartbeat_timeout_ms}))
        }
        ("POST", "/clob/delay-next") => {
            let (n, ms) = (num("count").unwrap_or(1).max(0) as u64, num("ms").unwrap_or(1000));
            st.exchange.delay_next(n, ms);
            ok(serde_json::json!({"ok": true, "delay_next": n, "ms": ms}))
        }
        ("POST", "/clob/fund") => match (q("api_key"), num("usdc_micro")) {
            (Some(k), Some(v)) => {
                st.exchange.account(k).usdc_micro = v;
                ok(serde_json::json!({"ok": true, "api_key": k, "usdc_micro": v}))
            }
            _ => (400, r#"{"error":"api_key and usdc_micro are required"}"#.into()),
        },
        ("POST", "/clob/tick-size") => {
            let tick = match q("tick") {
                Some("0.01") => Some(10),
                Some("0.001") => Some(1),
                Some("auto") => None,
                _ => return (400, r#"{"error":"tick must be 0.01, 0.001 or auto"}"#.into()),
            };
            let token = q("token").unwrap_or("");
            drop(st);
            if lock_hub(hub).polymarket_mut().force_tick(token, tick) {
                ok(serde_json::json!({"ok": true, "token": token, "tick": q("tick")}))
            } else {
                (404, r#"{"error":"unknown token"}"#.into())
            }
        }
        _ => (404, r#"{"error":"clob routes: GET /clob/ledger, POST /clob/fail-next[?count=N], POST /clob/delay-next[?count=N][&ms=M], POST /clob/params?mined_ms=&confirmed_ms=&fail_share=&heartbeat_timeout_ms=&initial_usdc_micro=, POST /clob/fund?api_key=&usdc_micro=, POST /clob/tick-size?token=&tick=0.01|0.001|auto"}"#.into()),
    }
}
