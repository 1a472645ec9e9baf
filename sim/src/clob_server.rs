//! The CLOB emulator's I/O shell: hyper's HTTP/2 server over tokio-rustls (ALPN `h2`, the
//! run's loopback CA), the [`ClobState`] behind a mutex, faults, and the order half of the
//! wire log. Also serves Gamma discovery (`/markets`, `/events`, `/events/slug/<slug>`) from the
//! same windows as the Polymarket market emulator.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::clob::{ClobRequest, ClobState, OrderSeen};
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
    conn: broadcast::Sender<ConnFault>,
}

impl ClobFaults {
    fn new() -> Self {
        ClobFaults {
            latency_ms: AtomicU64::new(0),
            http429: AtomicU64::new(0),
            http503: AtomicU64::new(0),
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
            "goaway" => Ok(self.conn.send(ConnFault::GoAway).unwrap_or(0)),
            "disconnect" => Ok(self.conn.send(ConnFault::Disconnect).unwrap_or(0)),
            other => Err(format!(
                "clob fault kind {other:?}: latency&ms=N | http429[&count=N] | http503[&count=N] | goaway | disconnect"
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
}

impl ClobShared {
    /// State seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        ClobShared {
            state: Mutex::new(ClobState::new(seed)),
            faults: ClobFaults::new(),
            stats: ClobConnStats::default(),
            conn_no: AtomicU64::new(0),
        }
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
            "orders_received": s.orders_received,
            "orders_accepted": s.orders_accepted,
            "orders_rejected": s.orders_rejected,
            "auth_failures": s.auth_failures,
            "cancels": s.cancels,
            "heartbeats": s.heartbeats,
            "deadman_fired": s.deadman_fired,
            "open_orders": self.state().open_orders(),
            "latency_ms": g(&self.faults.latency_ms),
        })
    }
}

/// The hub lock, shared with the market task.
pub type HubLock = Arc<Mutex<Hub>>;

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
    let tcp = TcpStream::from_std(std_tcp)?;
    let tls = acceptor.accept(tcp).await?;
    let conn_no = clob.conn_no.fetch_add(1, Ordering::Relaxed);
    let mut faults = clob.faults.conn.subscribe();
    let clob2 = clob.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (clob, hub, wirelog) = (clob2.clone(), hub.clone(), wirelog.clone());
        async move { Ok::<_, Infallible>(handle(&clob, &hub, &wirelog, conn_no, req).await) }
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

fn stamps(recv_ns: i64, conn: u64, path: &str, seen: Vec<OrderSeen>) -> Vec<OrderStamp> {
    seen.into_iter()
        .map(|s| OrderStamp {
            recv_ns,
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
    conn_no: u64,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    // Headers have arrived: this is the order's arrival time.
    let recv_ns = realtime_ns();
    clob.stats.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return respond(400, format!(r#"{{"error":"reading body: {e}"}}"#)),
    };
    let method = parts.method.as_str();
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    if method == "GET"
        && (path == "/markets" || path == "/events" || path.starts_with("/events/slug/"))
    {
        let view = lock_hub(hub);
        let now = view.now_ms();
        let (status, body) = view
            .polymarket()
            .gamma(path, query, now)
            .unwrap_or((404, r#"{"error":"not found"}"#.to_string()));
        return respond(status, body);
    }
    let order_entry = matches!(
        (method, path),
        ("POST", "/order" | "/orders" | "/v1/heartbeats")
            | ("DELETE", "/order" | "/orders" | "/cancel-all")
    );
    if order_entry {
        let lat = clob.faults.latency_ms.load(Ordering::Relaxed);
        if lat > 0 {
            tokio::time::sleep(Duration::from_millis(lat)).await;
        }
        let fault = if take_one(&clob.faults.http429) {
            Some((429, crate::clob::msg::TOO_MANY_REQUESTS))
        } else if take_one(&clob.faults.http503) {
            Some((503, crate::clob::msg::TRADING_DISABLED))
        } else {
            None
        };
        if let Some((status, text)) = fault {
            let seen = crate::clob::describe_orders(&body, text);
            wirelog.orders(stamps(recv_ns, conn_no, path, seen));
            return respond(status, serde_json::json!({ "error": text }).to_string());
        }
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
        let view = lock_hub(hub);
        let poly = view.polymarket();
        let token = |t: &str| poly.token_info(t);
        clob.state().handle(&creq, &token, now_ms)
    };
    if !seen.is_empty() {
        wirelog.orders(stamps(recv_ns, conn_no, path, seen));
    }
    respond(resp.status, resp.body)
}
