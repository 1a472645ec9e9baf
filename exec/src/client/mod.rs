//! The order client: one warm HTTP/2 connection to the CLOB (`ringbolt_net::H2Client` on the
//! io_uring driver, PING keep-alive), pre-signed orders from a [`PresignedPool`] sent with a
//! per-request L2 HMAC, responses classified into typed outcomes, and every lifecycle change
//! handed to a [`TransitionSink`] as a bus `OrderTransition` record.
//!
//! ```text
//! let mut client = OrderClient::connect(&cfg, signer, gate)?;           // start-up
//! let coid = client.submit(&pool, slot, intent, &mut sink)?;           // hot path
//! loop { client.poll(&mut sink)?; for ev in client.events() { … } }    // event loop
//! ```
//!
//! Safety rules enforced here:
//! * Paper mode (the default [`TradingMode`]) never sends a non-zero order: besides the pool signing
//!   paper orders with size zero, [`OrderClient::submit`] checks the body's amounts and refuses
//!   (REJECTED, class [`LOCAL_PAPER_GUARD`]) anything non-zero, whatever pool it came from.
//! * An order whose connection dies before its response ends REJECTED with [`LOCAL_CONN_LOST`]
//!   and is **never resent**; after reconnecting the client cancels it by hash
//!   (`DELETE /orders`) so that the venue side is definite too.
//! * The risk gate ([`RiskGate`]) and the kill switch are consulted before a slot is taken.
//!
//! The sans-IO bookkeeping is in [`inflight`]; this module is the thin driver.

pub mod inflight;
mod timing;
mod user_ws;

pub use self::timing::SubmitStamps;
pub use self::user_ws::{LiveStats, split_wss_url};

use std::collections::VecDeque;
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use memchr::memmem::Finder;
use ringbolt_bus::Side;
use ringbolt_net::h2c::{H2Client, H2Options, HeaderBlock, PreparedRequest};
use ringbolt_net::tls::{self, Roots};
use ringbolt_net::{Driver, DriverConfig, Endpoint, NetError};
use ringbolt_telemetry::now_ns;

pub use self::inflight::{
    ClientCore, Finished, FnSink, LOCAL_CONN_LOST, LOCAL_NOT_SENT, LOCAL_PAPER_GUARD, Pending,
    TransitionSink,
};
use crate::auth::L2Signer;
use crate::backoff::Backoff;
use crate::fills::{FillCounters, FillTracker, TokenInfo};
use crate::keys::PrivateKey;
use crate::lifecycle::{ClientOrderIds, LOCAL_KILL_SWITCH, LOCAL_RISK_REJECT, Order};
use crate::order::SignedOrder;
use crate::pool::{Miss, PresignedPool, SlotKey};
use crate::reconcile;
use crate::request::{HttpRequest, PATH_ORDER, PATH_ORDERS, RequestBuf};
use crate::risk::{RiskError, RiskGate, TradingMode};
use crate::user::UserParser;
use crate::{ApiCreds, Error as ExecError};

/// Order client configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Host name for DNS, SNI and `:authority` (`clob.polymarket.com`; `localhost` for the
    /// emulator).
    pub host: String,
    /// Port (443).
    pub port: u16,
    /// Public roots to trust.
    pub roots: Roots,
    /// An extra CA (PEM), e.g. the emulator's `ca.pem`.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// The io_uring driver (block mode by default; spin needs a core of its own).
    pub driver: DriverConfig,
    /// HTTP/2 options (PING keep-alive interval, request timeout, connect timeouts).
    pub h2: H2Options,
    /// Send `POST /v1/heartbeats` this often once started (the venue cancels everything when
    /// heartbeats stop for ~10 s); `None`: no heartbeats.
    pub heartbeat_interval: Option<Duration>,
    /// Wait at least this long between reconnect attempts.
    pub reconnect_backoff: Duration,
}

impl ClientConfig {
    /// The real CLOB: `clob.polymarket.com:443`, bundled roots, PING every 5 s.
    #[must_use]
    pub fn polymarket() -> Self {
        ClientConfig {
            host: "clob.polymarket.com".into(),
            port: 443,
            roots: Roots::Bundled,
            extra_ca_pem: None,
            driver: DriverConfig::default(),
            h2: H2Options::default(),
            heartbeat_interval: None,
            reconnect_backoff: Duration::from_millis(100),
        }
    }

    /// The loopback emulator at `localhost:port`, trusting `ca_pem`.
    #[must_use]
    pub fn emulator(port: u16, ca_pem: Vec<u8>) -> Self {
        ClientConfig {
            host: "localhost".into(),
            port,
            roots: Roots::None,
            extra_ca_pem: Some(ca_pem),
            ..Self::polymarket()
        }
    }

    fn endpoint(&self) -> Result<Endpoint, ClientError> {
        let tls = tls::client_config(self.roots, self.extra_ca_pem.as_deref(), &[b"h2"])?;
        Ok(Endpoint {
            host: self.host.clone(),
            port: self.port,
            tls: Some(tls),
        })
    }

    /// A fresh connection: endpoint, driver and HTTP/2 client (TCP, TLS with ALPN h2, settings).
    fn connect(&self) -> Result<(Endpoint, Driver, H2Client), ClientError> {
        let ep = self.endpoint()?;
        let mut driver = Driver::new(&self.driver)?;
        let h2 = H2Client::connect(&mut driver, &ep, &self.h2)?;
        Ok((ep, driver, h2))
    }

    fn base(&self) -> String {
        if self.port == 443 {
            format!("https://{}", self.host)
        } else {
            format!("https://{}:{}", self.host, self.port)
        }
    }
}

/// Order client errors.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Transport.
    #[error(transparent)]
    Net(#[from] NetError),
    /// Building a request.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The venue answered an auth request with an error.
    #[error("{path}: HTTP {status}: {body}")]
    Venue {
        /// Path.
        path: &'static str,
        /// Status.
        status: u16,
        /// Body text.
        body: String,
    },
    /// No answer in time.
    #[error("{0}: no response within the request timeout")]
    Timeout(&'static str),
}

/// Why [`OrderClient::submit`] did not send.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The risk gate or kill switch refused (the order was recorded REJECTED).
    #[error("order {client_order_id} refused: {reason}")]
    Refused {
        /// Client order id (its INITIALIZED and REJECTED records were emitted).
        client_order_id: u64,
        /// Why.
        reason: RiskError,
    },
    /// Paper mode and the body carried a non-zero amount (recorded REJECTED, nothing sent).
    #[error("order {0} refused: paper mode never sends a non-zero order")]
    PaperGuard(u64),
    /// The pool has no slot for that key (nothing recorded; the risk admission was released).
    #[error("no pre-signed slot: {0:?}")]
    Pool(Miss),
    /// The connection is down (recorded REJECTED with [`LOCAL_NOT_SENT`]); poll to reconnect.
    #[error("order {client_order_id} not sent: {why}")]
    NotSent {
        /// Client order id.
        client_order_id: u64,
        /// Why.
        why: String,
    },
}

/// An order as the client takes it: the bus identity and nominal economics (the trade loop builds
/// it from the decision core's `ringbolt_decide::OrderIntent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderTicket {
    /// Bus instrument id of the token.
    pub instrument: u32,
    /// Side.
    pub side: Side,
    /// Limit price, 1e-8.
    pub price_e8: i64,
    /// Nominal size, 1e-8 shares (the wire size is zero in paper mode).
    pub size_e8: i64,
    /// Nominal notional, pUSD 1e-6 (for the risk gate).
    pub notional_micros: u64,
}

/// Something the caller may want beyond the transition records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A request finished.
    Finished {
        /// Tag returned when it was sent (the client order id for single orders).
        tag: u64,
        /// Meaning.
        what: Finished,
    },
    /// The connection was lost (`reason`) and replaced.
    Reconnected {
        /// Why the old one died.
        reason: String,
    },
    /// The connection is down and a reconnect attempt failed; the next poll after the backoff
    /// tries again.
    ReconnectFailed {
        /// Why the old one died.
        reason: String,
        /// Why the new one could not be made.
        error: String,
    },
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Orders handed to the connection.
    pub orders_sent: u64,
    /// Orders whose L2 signature came ready-made from the pool (`PresignedPool::presign_auth`)
    /// instead of being computed at submit.
    pub orders_auth_precomputed: u64,
    /// Orders refused locally (risk, kill switch, paper guard, not sent).
    pub orders_refused: u64,
    /// Orders lost in flight (never resent).
    pub orders_lost: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Heartbeats sent.
    pub heartbeats_sent: u64,
    /// Events dropped because the caller left [`EVENTS_CAPACITY`] events untaken (the oldest
    /// goes; the lifecycle records in the transition sink are unaffected).
    pub events_dropped: u64,
    /// Responses that asked us to back off (HTTP 425/429/503).
    pub backoffs: u64,
}

/// Bound on [`ClientEvent`]s waiting for [`OrderClient::events`]. A caller that drains events
/// every poll never comes near it.
pub const EVENTS_CAPACITY: usize = 1024;

/// The bounded event queue: when full, a new event replaces the oldest (drop-oldest, counted).
/// The newest events are the useful ones: [`OrderClient::wait_for`] looks for a request just sent,
/// and every order's fate is also in the transition records, so an old event is the cheapest loss.
#[derive(Debug)]
struct EventQueue {
    items: VecDeque<ClientEvent>,
    cap: usize,
}

impl EventQueue {
    fn with_capacity(cap: usize) -> Self {
        EventQueue {
            items: VecDeque::with_capacity(cap),
            cap,
        }
    }

    /// Appends `ev`; returns whether the oldest event was dropped to make room. Never grows the
    /// buffer past its capacity (no allocation).
    fn push(&mut self, ev: ClientEvent) -> bool {
        let full = self.items.len() >= self.cap;
        if full {
            self.items.pop_front();
        }
        self.items.push_back(ev);
        debug_assert!(self.items.len() <= self.cap);
        full
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether an order body (single or batch element) has zero maker and taker amounts: exactly
/// one `"makerAmount":"0"` and one `"takerAmount":"0"`, and no other maker or taker amount.
#[must_use]
pub fn body_is_zero_size(body: &[u8]) -> bool {
    // One pass over the body for the keys' common tail; the searcher is built once (building one
    // per call was a tenth of `submit`).
    static AMOUNT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"Amount\":\""));
    const TAIL: usize = b"Amount\":\"".len();
    let (mut makers, mut takers) = (0u32, 0u32);
    for at in AMOUNT.find_iter(body) {
        let key = at.checked_sub(6).map(|from| &body[from..at]);
        let count = match key {
            Some(b"\"maker") => &mut makers,
            Some(b"\"taker") => &mut takers,
            _ => continue,
        };
        if body.get(at + TAIL..at + TAIL + 2) != Some(b"0\"") {
            return false;
        }
        *count += 1;
    }
    makers == 1 && takers == 1
}

fn header_map(pairs: &[(&'static str, &[u8])]) -> Result<HeaderMap, NetError> {
    let mut map = HeaderMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        let name = http::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| NetError::BadRequest(format!("header {k}: {e}")))?;
        let value = HeaderValue::from_bytes(v)
            .map_err(|e| NetError::BadRequest(format!("header {k}: {e}")))?;
        map.append(name, value);
    }
    Ok(map)
}

/// What handing a request to the connection came to ([`OrderClient::hand_over`]).
enum Handed {
    /// On the ring (and sent, when the enter sent it inline).
    Sent,
    /// Paper mode and a non-zero size: not sent.
    PaperGuard,
    /// The connection refused it: not sent.
    Failed(NetError),
}

/// The order client. Owns its driver (one per thread: create and use it on the exec thread).
#[derive(Debug)]
pub struct OrderClient {
    cfg: ClientConfig,
    ep: Endpoint,
    driver: Driver,
    h2: H2Client,
    signer: L2Signer,
    gate: RiskGate,
    core: ClientCore,
    ids: ClientOrderIds,
    buf: RequestBuf,
    base: String,
    /// `POST /order` and `POST /orders` with the constant L2 headers (address, API key,
    /// passphrase, content type, user agent), HPACK-encoded once; each order adds
    /// `poly_signature` and `poly_timestamp`.
    order_block: HeaderBlock,
    orders_block: HeaderBlock,
    events: EventQueue,
    in_doubt: Vec<[u8; 32]>,
    last_reconnect: Option<Instant>,
    last_heartbeat: Option<Instant>,
    heartbeat_id: String,
    next_tag: u64,
    stats: ClientStats,
    backoff: Backoff,
    user: UserParser,
    fills: FillTracker,
    user_ws: Option<user_ws::UserChannel>,
    recon: std::collections::HashMap<u64, user_ws::Recon>,
    live: LiveStats,
    /// Instrument → token id, in registration order (for the position check).
    token_ids: std::collections::BTreeMap<u32, String>,
    venue_positions: std::collections::BTreeMap<u32, i64>,
    /// Open orders from the pages of `GET /data/orders` received so far.
    open_pages: Vec<reconcile::VenueOrder>,
    /// Send stamps and the trade process's stage recorder.
    timing: timing::ClientTiming,
}

/// `base` + `path` as a request URI.
fn uri(base: &str, path: &str) -> Result<http::Uri, NetError> {
    format!("{base}{path}")
        .parse()
        .map_err(|e| NetError::BadRequest(format!("uri: {e}")))
}

/// Tags of non-order requests live above this (client order ids are `ms << 20 | n`, far below).
const OTHER_TAG_BASE: u64 = 1 << 63;

impl OrderClient {
    /// Connects (TCP, TLS with ALPN h2, HTTP/2 settings) and warms the connection.
    pub fn connect(
        cfg: &ClientConfig,
        signer: L2Signer,
        gate: RiskGate,
    ) -> Result<Self, ClientError> {
        let (ep, driver, h2) = cfg.connect()?;
        let base = cfg.base();
        let buf = RequestBuf::new(&signer);
        let order_headers = header_map(
            &buf.headers()
                .into_iter()
                .filter(|(k, _)| !matches!(*k, "POLY_SIGNATURE" | "POLY_TIMESTAMP"))
                .collect::<Vec<_>>(),
        )?;
        let order_block =
            HeaderBlock::new(&Method::POST, &uri(&base, PATH_ORDER)?, &order_headers)?;
        let orders_block =
            HeaderBlock::new(&Method::POST, &uri(&base, PATH_ORDERS)?, &order_headers)?;
        let ms = (now_ns() / 1_000_000).max(0) as u64;
        Ok(OrderClient {
            cfg: cfg.clone(),
            ep,
            driver,
            h2,
            signer,
            gate,
            core: ClientCore::with_capacity(4096),
            ids: ClientOrderIds::new(ms),
            buf,
            base,
            order_block,
            orders_block,
            events: EventQueue::with_capacity(EVENTS_CAPACITY),
            in_doubt: Vec::new(),
            last_reconnect: None,
            last_heartbeat: None,
            heartbeat_id: String::new(),
            next_tag: OTHER_TAG_BASE,
            stats: ClientStats::default(),
            backoff: Backoff::default(),
            user: UserParser::new(),
            fills: FillTracker::new(),
            user_ws: None,
            recon: std::collections::HashMap::new(),
            live: LiveStats::default(),
            token_ids: std::collections::BTreeMap::new(),
            venue_positions: std::collections::BTreeMap::new(),
            open_pages: Vec::new(),
            timing: timing::ClientTiming::default(),
        })
    }

    /// Records the order path's stages (decision → order bytes, bytes → wire, order and cancel
    /// round trips per response class) with `recorder` from the trade process's telemetry.
    pub fn set_recorder(&mut self, recorder: ringbolt_telemetry::StageRecorder) {
        self.timing.set_recorder(recorder);
    }

    /// The clock stamps of the last order sent (decided, bytes ready, handed to the ring,
    /// submit returned): where its submit's time went.
    #[must_use]
    pub fn last_submit_stamps(&self) -> SubmitStamps {
        self.timing.last
    }

    /// Round trips not measured because their stamp slot was reused before the answer.
    #[must_use]
    pub fn unmeasured_round_trips(&self) -> u64 {
        self.timing.forgotten
    }

    /// Paper or live (from the risk gate).
    #[must_use]
    pub fn mode(&self) -> TradingMode {
        self.gate.mode()
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// The lifecycle bookkeeping (order states by client order id).
    #[must_use]
    pub fn core(&self) -> &ClientCore {
        &self.core
    }

    /// The risk gate (read).
    #[must_use]
    pub fn gate(&self) -> &RiskGate {
        &self.gate
    }

    /// The risk gate.
    pub fn gate_mut(&mut self) -> &mut RiskGate {
        &mut self.gate
    }

    /// The driver's system-call counters (enters per order in `bench exec`).
    #[must_use]
    pub fn driver_counters(&self) -> ringbolt_net::DriverCounters {
        self.driver.counters()
    }

    /// Whether the connection is up.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.h2.closed_reason().is_none()
    }

    /// Requests in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.core.in_flight()
    }

    fn refuse(&mut self, order: &mut Order, class: u16, sink: &mut dyn TransitionSink) {
        if let Ok(r) = order.rejected_locally(class, now_ns()) {
            sink.transition(&r);
        }
        self.stats.orders_refused += 1;
    }

    /// The hot path: risk check, take the pre-signed slot `key` from `pool` with the request's
    /// L2 headers for the current second (the pool's ready-made signature when it has one, else
    /// an HMAC made here), hand it to the connection, and record INITIALIZED → SUBMITTED. Returns the client order id; the outcome arrives through [`OrderClient::poll`].
    pub fn submit(
        &mut self,
        pool: &PresignedPool,
        key: SlotKey,
        intent: OrderTicket,
        sink: &mut dyn TransitionSink,
    ) -> Result<u64, SubmitError> {
        let coid = self.ids.next();
        self.submit_with_id(coid, pool, key, intent, sink)
    }

    /// As [`OrderClient::submit`] with the caller's client order id (the decision core's, so a
    /// decision record names the order it produced and replay reproduces the id). The caller
    /// keeps ids unique.
    pub fn submit_with_id(
        &mut self,
        coid: u64,
        pool: &PresignedPool,
        key: SlotKey,
        intent: OrderTicket,
        sink: &mut dyn TransitionSink,
    ) -> Result<u64, SubmitError> {
        let t_ns = now_ns();
        let paper = self.gate.mode() == TradingMode::Paper;
        if let Err(reason) = self
            .gate
            .admit(intent.notional_micros, (t_ns / 1_000_000_000) as u64)
        {
            let (mut order, rec) = self.new_order(coid, &intent, paper, t_ns);
            sink.transition(&rec);
            let class = if matches!(reason, RiskError::KillSwitch) {
                LOCAL_KILL_SWITCH
            } else {
                LOCAL_RISK_REJECT
            };
            self.refuse(&mut order, class, sink);
            self.core.track(order, [0; 32]);
            return Err(SubmitError::Refused {
                client_order_id: coid,
                reason,
            });
        }
        let taken = match pool.take(
            &self.signer,
            key,
            (t_ns / 1_000_000_000) as u64,
            &mut self.buf,
        ) {
            Ok(t) => t,
            Err(miss) => {
                // Nothing was sent: the window and day caps get the notional back.
                self.gate.unadmit(intent.notional_micros);
                return Err(SubmitError::Pool(miss));
            }
        };
        self.timing.bytes_ready(t_ns, now_ns());
        self.stats.orders_auth_precomputed += u64::from(taken.auth_precomputed);
        // Send first, book after: the request goes to the ring (and, in block mode, onto the
        // wire) before the order is tracked. Nothing can answer it before the next poll, and
        // the transitions only reach the sink's buffer, in order: INITIALIZED, then SUBMITTED
        // or the local rejection.
        let handed = self.hand_over(coid, false);
        let (mut order, rec) = self.new_order(coid, &intent, paper, t_ns);
        // The order hash is the venue's order id; known before the venue answers.
        order.venue_order_id.copy_from_slice(&taken.digest[..16]);
        sink.transition(&rec);
        self.core.track(order, taken.digest);
        self.book_handed(coid, Pending::Order(coid), handed, sink)
    }

    fn new_order(
        &self,
        coid: u64,
        i: &OrderTicket,
        paper: bool,
        t_ns: i64,
    ) -> (Order, ringbolt_bus::Record) {
        Order::new(
            coid,
            i.instrument,
            i.side,
            i.price_e8,
            if paper { 0 } else { i.size_e8 },
            paper,
            t_ns,
        )
    }

    /// Sends what is in `self.buf` for the orders in `what` (already tracked, INITIALIZED).
    fn send_buf(
        &mut self,
        tag: u64,
        what: Pending,
        sink: &mut dyn TransitionSink,
    ) -> Result<u64, SubmitError> {
        let batch = matches!(&what, Pending::Batch(c) if c.len() > 1);
        let handed = self.hand_over(tag, batch);
        self.book_handed(tag, what, handed, sink)
    }

    /// Hands the request in `self.buf` (`batch`: a `POST /orders` of several orders) to the
    /// connection as request `tag` and sends it: the paper guard, then HTTP/2 frames sealed and
    /// queued on the ring (the hand-off stamp), then the enter that sends them.
    fn hand_over(&mut self, tag: u64, batch: bool) -> Handed {
        // Paper guard: the last line of defence, whatever the pool or caller did.
        if self.gate.mode() == TradingMode::Paper {
            let body = self.buf.body();
            let all_zero = if batch {
                split_batch(body).iter().all(|b| body_is_zero_size(b))
            } else {
                body_is_zero_size(body)
            };
            if !all_zero {
                return Handed::PaperGuard;
            }
        }
        let block = if batch || self.buf.path() == PATH_ORDERS {
            &self.orders_block
        } else {
            &self.order_block
        };
        let (signature, timestamp) = self.buf.auth_values();
        let sent = self.h2.send_block(
            &mut self.driver,
            block,
            &[
                (b"poly_signature", signature),
                (b"poly_timestamp", timestamp),
            ],
            self.buf.body(),
            tag,
        );
        match sent {
            Ok(()) => {
                self.timing.handed(now_ns());
                // The bytes leave now, not at the next poll (a blocking loop may sleep first); a
                // failure here shows again, and is handled, at that poll.
                let _ = self.driver.submit_now();
                Handed::Sent
            }
            Err(e) => Handed::Failed(e),
        }
    }

    /// Books a request [`OrderClient::hand_over`] handled, for the orders in `what` (tracked,
    /// INITIALIZED): SUBMITTED and in flight, or rejected locally.
    fn book_handed(
        &mut self,
        tag: u64,
        what: Pending,
        handed: Handed,
        sink: &mut dyn TransitionSink,
    ) -> Result<u64, SubmitError> {
        let single;
        let coids: &[u64] = match &what {
            Pending::Order(c) => {
                single = [*c];
                &single
            }
            Pending::Batch(c) => c,
            _ => &[],
        };
        let t_ns = now_ns();
        let (class, err) = match handed {
            Handed::Sent => {
                self.timing.sent(tag, true, t_ns);
                for c in coids {
                    if let Some(o) = self.core.order_mut(*c)
                        && let Ok(r) = o.submitted(t_ns)
                    {
                        sink.transition(&r);
                    }
                }
                let n = coids.len() as u64;
                self.core.sent(tag, what);
                self.stats.orders_sent += n;
                return Ok(tag);
            }
            Handed::PaperGuard => (
                LOCAL_PAPER_GUARD,
                SubmitError::PaperGuard(coids.first().copied().unwrap_or(0)),
            ),
            Handed::Failed(e) => (
                LOCAL_NOT_SENT,
                SubmitError::NotSent {
                    client_order_id: coids.first().copied().unwrap_or(0),
                    why: e.to_string(),
                },
            ),
        };
        for c in coids {
            if let Some(mut o) = self.core.order_mut(*c).copied() {
                self.refuse(&mut o, class, sink);
                if let Some(slot) = self.core.order_mut(*c) {
                    *slot = o;
                }
            }
            self.gate.closed();
        }
        Err(err)
    }

    /// Sends one already-signed order (one-offs, tests). Same rules as [`OrderClient::submit`].
    pub fn submit_signed(
        &mut self,
        order: &SignedOrder,
        intent: OrderTicket,
        sink: &mut dyn TransitionSink,
    ) -> Result<u64, SubmitError> {
        self.submit_signed_batch(std::slice::from_ref(order), &[intent], sink)
            .map(|(_, coids)| coids[0])
    }

    /// `POST /orders` for 1-15 signed orders (their own flags). Returns the request tag and the
    /// client order ids in body order.
    pub fn submit_signed_batch(
        &mut self,
        orders: &[SignedOrder],
        intents: &[OrderTicket],
        sink: &mut dyn TransitionSink,
    ) -> Result<(u64, Vec<u64>), SubmitError> {
        let t_ns = now_ns();
        let paper = self.gate.mode() == TradingMode::Paper;
        let mut coids = Vec::with_capacity(orders.len());
        for (o, i) in orders.iter().zip(intents) {
            let coid = self.ids.next();
            let (mut order, rec) = self.new_order(coid, i, paper, t_ns);
            sink.transition(&rec);
            if let Err(reason) = self
                .gate
                .admit(i.notional_micros, (t_ns / 1_000_000_000) as u64)
            {
                let class = if matches!(reason, RiskError::KillSwitch) {
                    LOCAL_KILL_SWITCH
                } else {
                    LOCAL_RISK_REJECT
                };
                self.refuse(&mut order, class, sink);
                self.core.track(order, o.digest);
                for c in &coids {
                    if let Some(mut prev) = self.core.order_mut(*c).copied() {
                        self.refuse(&mut prev, class, sink);
                        if let Some(slot) = self.core.order_mut(*c) {
                            *slot = prev;
                        }
                        self.gate.closed();
                    }
                }
                return Err(SubmitError::Refused {
                    client_order_id: coid,
                    reason,
                });
            }
            self.core.track(order, o.digest);
            coids.push(coid);
        }
        let owner = self.signer.creds().api_key.clone();
        let (path, body, what, tag) = if orders.len() == 1 {
            let mut b = Vec::with_capacity(1024);
            orders[0].write_json(&mut b, &owner, orders[0].post_only, orders[0].defer_exec);
            (PATH_ORDER, b, Pending::Order(coids[0]), coids[0])
        } else {
            let post_only = orders.iter().all(|o| o.post_only);
            let b = crate::order::batch_body(orders, &owner, post_only, false).map_err(|e| {
                SubmitError::NotSent {
                    client_order_id: coids[0],
                    why: e.to_string(),
                }
            })?;
            let tag = self.other_tag();
            (
                PATH_ORDERS,
                b.into_bytes(),
                Pending::Batch(coids.clone()),
                tag,
            )
        };
        self.buf.fill(&self.signer, now_s(), path, &body);
        self.timing.bytes_ready(t_ns, now_ns());
        self.send_buf(tag, what, sink).map(|t| (t, coids))
    }

    fn other_tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    /// Sends an arbitrary request (cancels, heartbeats, raw bodies); returns its tag. Its
    /// response comes back as [`ClientEvent::Finished`] (cancels also move the lifecycles).
    pub fn send_request(&mut self, req: &HttpRequest, what: Pending) -> Result<u64, ClientError> {
        let tag = self.other_tag();
        let pairs: Vec<(&'static str, &[u8])> = req
            .headers
            .iter()
            .map(|(k, v)| (*k, v.as_bytes()))
            .collect();
        let headers = header_map(&pairs)?;
        let method = Method::from_bytes(req.method.as_bytes())
            .map_err(|e| NetError::BadRequest(e.to_string()))?;
        let uri: http::Uri = format!("{}{}", self.base, req.path)
            .parse()
            .map_err(|e| NetError::BadRequest(format!("uri: {e}")))?;
        let p = PreparedRequest {
            method,
            uri,
            headers,
        };
        self.h2
            .send(&mut self.driver, &p, Bytes::from(req.body.clone()), tag)?;
        let _ = self.driver.submit_now(); // as for orders: out now, a failure shows at the poll
        if what == Pending::Cancel {
            self.timing.sent(tag, false, now_ns());
        }
        self.core.sent(tag, what);
        Ok(tag)
    }

    /// `DELETE /order` (one venue order id) or `DELETE /orders` (several).
    pub fn cancel(&mut self, order_ids: &[&str]) -> Result<u64, ClientError> {
        let req = if order_ids.len() == 1 {
            HttpRequest::cancel_order(&self.signer, now_s(), order_ids[0])
        } else {
            HttpRequest::cancel_orders(&self.signer, now_s(), order_ids)
        };
        self.send_request(&req, Pending::Cancel)
    }

    /// Cancels a tracked order by client order id.
    pub fn cancel_client_order(&mut self, client_order_id: u64) -> Result<u64, ClientError> {
        let id = self
            .core
            .digest(client_order_id)
            .map(|d| crate::hex::encode_0x(&d))
            .unwrap_or_default();
        self.cancel(&[&id])
    }

    /// One user-channel frame: our orders' events become transitions and `Fill` records in
    /// `sink` (the risk gate's open-order count follows). Returns the events parsed.
    pub fn on_user_frame(&mut self, frame: &[u8], sink: &mut dyn TransitionSink) -> usize {
        let t = now_ns();
        let Self {
            user,
            fills,
            core,
            gate,
            ..
        } = self;
        user.parse_frame(frame, |ev| {
            let d = fills.on_event(core, &ev, t, sink);
            for _ in 0..d.closed {
                gate.closed();
            }
            for _ in 0..d.reopened {
                gate.reopened();
            }
        })
    }

    /// Fills carry the window and outcome of the order's instrument: registered per token, with
    /// its token id (reconciliation asks the venue for the shares held of it).
    pub fn register_token(&mut self, instrument: u32, token_id: &str, info: TokenInfo) {
        self.fills.register_token(instrument, info);
        self.token_ids.insert(instrument, token_id.to_owned());
    }

    /// The user-channel parser (its counters).
    #[must_use]
    pub fn user_parser(&self) -> &UserParser {
        &self.user
    }

    /// The fill tracker's counters.
    #[must_use]
    pub fn fill_counters(&self) -> FillCounters {
        self.fills.counters
    }

    /// The sans-IO core, mutable (reconciliation restores orders through it).
    pub fn core_mut(&mut self) -> &mut ClientCore {
        &mut self.core
    }

    /// The L2 signer (REST requests built outside the client).
    #[must_use]
    pub fn signer(&self) -> &L2Signer {
        &self.signer
    }

    /// `DELETE /cancel-all`.
    pub fn cancel_all(&mut self) -> Result<u64, ClientError> {
        let req = HttpRequest::cancel_all(&self.signer, now_s());
        self.send_request(&req, Pending::Cancel)
    }

    /// Drives the connection: receives, completes requests (records to `sink`), keeps the
    /// connection alive (PING, heartbeats) and reconnects after GOAWAY / loss (in-flight orders
    /// become REJECTED/[`LOCAL_CONN_LOST`], never resent). Waits at most `wait` for I/O in block
    /// mode. Returns the number of requests completed. Connection trouble is never an error here
    /// (it becomes events and reconnects); an error means the driver itself failed.
    pub fn poll(
        &mut self,
        wait: Duration,
        sink: &mut dyn TransitionSink,
    ) -> Result<usize, ClientError> {
        if self.h2.in_flight() > 0 {
            // An answer is due: busy-poll first when the driver is configured to
            // (`DriverConfig::busy_poll_us`, block mode).
            self.driver.poll_expecting(wait)?;
        } else {
            self.driver.poll(wait)?;
        }
        let h2_err = self.h2.poll(&mut self.driver).err();
        let mut n = 0;
        while let Some(c) = self.h2.next_completion() {
            n += 1;
            let t = now_ns();
            let status = c.result.as_ref().ok().map(|r| r.status);
            self.timing.finished(c.tag, status, t);
            let (what, closed) = match c.result {
                Ok(resp) => {
                    let retry_after = resp
                        .headers
                        .get(http::header::RETRY_AFTER)
                        .map(HeaderValue::as_bytes);
                    if let Some(ms) = self.backoff.on_status(resp.status, retry_after) {
                        self.stats.backoffs += 1;
                        let ms = i64::try_from(ms).unwrap_or(i64::MAX / 2);
                        self.gate.back_off_until(t.saturating_add(ms * 1_000_000));
                    }
                    if self.on_recon(c.tag, resp.status, &resp.body, sink) {
                        self.core.forget(c.tag);
                        continue;
                    }
                    self.core
                        .on_response(c.tag, resp.status, &resp.body, t, sink)
                }
                Err(_) => {
                    if self.recon.remove(&c.tag).is_some() {
                        // A lost reconciliation request: the next (re)connect runs another.
                        self.live.recon_errors += 1;
                    }
                    let (what, closed) = self.core.on_lost(c.tag, t, sink);
                    if let Finished::Lost(coids) = &what {
                        self.stats.orders_lost += coids.len() as u64;
                        for coid in coids {
                            // Only orders still of unknown outcome (the user channel may already
                            // have told what the venue did with them).
                            let unknown = self.core.order(*coid).is_some_and(|o| o.unknown_outcome);
                            if let Some(d) = self.core.digest(*coid).filter(|_| unknown) {
                                self.in_doubt.push(d);
                            }
                        }
                    }
                    (what, closed)
                }
            };
            for _ in 0..closed {
                self.gate.closed();
            }
            self.push_event(ClientEvent::Finished { tag: c.tag, what });
        }
        self.poll_user(sink);
        if let Some(reason) = h2_err
            .map(|e| e.to_string())
            .or_else(|| self.h2.closed_reason().map(str::to_owned))
        {
            self.try_reconnect(reason)?;
        } else {
            self.keepalive()?;
        }
        self.timing.maybe_rotate();
        Ok(n)
    }

    fn try_reconnect(&mut self, reason: String) -> Result<(), ClientError> {
        if self
            .last_reconnect
            .is_some_and(|t| t.elapsed() < self.cfg.reconnect_backoff)
        {
            return Ok(());
        }
        self.last_reconnect = Some(Instant::now());
        if let Err(e) = self.h2.reconnect(&mut self.driver) {
            // Retried on a later poll (after the backoff).
            self.push_event(ClientEvent::ReconnectFailed {
                reason,
                error: e.to_string(),
            });
            return Ok(());
        }
        // Completions for requests the old connection still held (none normally: poll failed
        // them already) are processed on the next poll.
        self.stats.reconnects += 1;
        self.push_event(ClientEvent::Reconnected { reason });
        self.cancel_in_doubt()
    }

    /// Cancels, by order hash, orders whose fate is unknown (lost in flight or timed out).
    fn cancel_in_doubt(&mut self) -> Result<(), ClientError> {
        if self.in_doubt.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = self
            .in_doubt
            .iter()
            .map(|d| crate::hex::encode_0x(d))
            .collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        // Kept for the next attempt when the connection is already gone again.
        if self.cancel(&refs).is_ok() {
            self.in_doubt.clear();
        }
        Ok(())
    }

    fn keepalive(&mut self) -> Result<(), ClientError> {
        let Some(every) = self.cfg.heartbeat_interval else {
            return Ok(());
        };
        if self.last_heartbeat.is_some_and(|t| t.elapsed() < every) {
            return Ok(());
        }
        self.last_heartbeat = Some(Instant::now());
        let req = HttpRequest::heartbeat(&self.signer, now_s(), &self.heartbeat_id);
        // A failure means the connection just died: the next poll reconnects.
        if self.send_request(&req, Pending::Heartbeat).is_ok() {
            self.stats.heartbeats_sent += 1;
        }
        Ok(())
    }

    fn push_event(&mut self, ev: ClientEvent) {
        if self.events.push(ev) {
            self.stats.events_dropped += 1;
        }
    }

    /// Takes the events produced so far (at most [`EVENTS_CAPACITY`]; older ones beyond it were
    /// dropped and counted in [`ClientStats::events_dropped`]).
    pub fn events(&mut self) -> impl Iterator<Item = ClientEvent> + '_ {
        self.events.items.drain(..)
    }

    /// Polls until request `tag` finishes or `timeout` passes; other events stay queued.
    pub fn wait_for(
        &mut self,
        tag: u64,
        timeout: Duration,
        sink: &mut dyn TransitionSink,
    ) -> Result<Option<Finished>, ClientError> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(i) = self
                .events
                .items
                .iter()
                .position(|e| matches!(e, ClientEvent::Finished { tag: t, .. } if *t == tag))
                && let Some(ClientEvent::Finished { what, .. }) = self.events.items.remove(i)
            {
                return Ok(Some(what));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            self.poll(Duration::from_millis(1), sink)?;
        }
    }

    /// Closes the connection.
    pub fn shutdown(self) {
        let OrderClient { mut driver, h2, .. } = self;
        h2.shutdown(&mut driver);
    }

    /// The endpoint (host, port, TLS).
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }
}

/// Splits a `POST /orders` body into its element objects (top-level commas).
fn split_batch(body: &[u8]) -> Vec<&[u8]> {
    let inner = body
        .strip_prefix(b"[")
        .and_then(|b| b.strip_suffix(b"]"))
        .unwrap_or(body);
    let mut out = Vec::new();
    let (mut depth, mut start, mut in_str, mut esc) = (0i32, 0usize, false, false);
    for (i, &c) in inner.iter().enumerate() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            b',' if depth == 0 => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&inner[start..]);
    out
}

/// API credentials through the L1 flow: `POST /auth/api-key`, and when the key exists already
/// (any 4xx), `GET /auth/derive-api-key` — what the reference's `create_or_derive_api_creds`
/// does. Uses its own short-lived connection.
pub fn create_or_derive_api_creds(
    cfg: &ClientConfig,
    key: &PrivateKey,
    chain_id: u64,
    nonce: u64,
) -> Result<ApiCreds, ClientError> {
    let (_, mut driver, mut h2) = cfg.connect()?;
    let base = cfg.base();
    let mut ask = |req: HttpRequest, path: &'static str| -> Result<(u16, Vec<u8>), ClientError> {
        let pairs: Vec<(&'static str, &[u8])> = req
            .headers
            .iter()
            .map(|(k, v)| (*k, v.as_bytes()))
            .collect();
        let p = PreparedRequest {
            method: Method::from_bytes(req.method.as_bytes())
                .map_err(|e| NetError::BadRequest(e.to_string()))?,
            uri: uri(&base, path)?,
            headers: header_map(&pairs)?,
        };
        h2.send(&mut driver, &p, Bytes::from(req.body), 1)?;
        let end = Instant::now() + cfg.h2.request_timeout;
        while Instant::now() < end {
            driver.poll(Duration::from_millis(1))?;
            h2.poll(&mut driver)?;
            if let Some(c) = h2.next_completion() {
                let r = c.result?;
                return Ok((r.status, r.body));
            }
        }
        Err(ClientError::Timeout(path))
    };
    let ts = now_s();
    let h = crate::auth::l1_headers(key, chain_id, ts, nonce)?;
    let (mut status, mut body) = ask(
        HttpRequest::create_api_key(h),
        crate::request::PATH_CREATE_API_KEY,
    )?;
    let mut path = crate::request::PATH_CREATE_API_KEY;
    if (400..500).contains(&status) && status != 401 {
        let h = crate::auth::l1_headers(key, chain_id, ts, nonce)?;
        (status, body) = ask(
            HttpRequest::derive_api_key(h),
            crate::request::PATH_DERIVE_API_KEY,
        )?;
        path = crate::request::PATH_DERIVE_API_KEY;
    }
    let venue_err = |status: u16, body: &[u8]| ClientError::Venue {
        path,
        status,
        body: String::from_utf8_lossy(body).chars().take(200).collect(),
    };
    if status != 200 {
        return Err(venue_err(status, &body));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Creds {
        api_key: String,
        secret: String,
        passphrase: String,
    }
    // The body holds the secret: never echo it in the error.
    let c: Creds = serde_json::from_slice(&body).map_err(|_| ClientError::Venue {
        path,
        status,
        body: "unparseable credentials".into(),
    })?;
    Ok(ApiCreds::new(c.api_key, c.secret, c.passphrase))
}

#[cfg(test)]
mod event_queue_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev(tag: u64) -> ClientEvent {
        ClientEvent::Finished {
            tag,
            what: Finished::Heartbeat(200),
        }
    }

    #[test]
    fn a_full_event_queue_drops_the_oldest_and_says_so() {
        let mut q = EventQueue::with_capacity(3);
        let cap = q.items.capacity();
        let dropped: Vec<bool> = (0..5).map(|t| q.push(ev(t))).collect();
        assert_eq!(dropped, [false, false, false, true, true]);
        let tags: Vec<u64> = q
            .items
            .iter()
            .map(|e| match e {
                ClientEvent::Finished { tag, .. } => *tag,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(tags, [2, 3, 4], "the newest kept");
        assert_eq!(q.items.capacity(), cap, "no growth past the bound");
    }
}

#[cfg(test)]
mod paper_guard_tests {
    use super::body_is_zero_size;

    /// An order body element shaped like `SignedOrder::write_json`'s, with these amounts.
    fn body(maker: &str, taker: &str) -> String {
        format!(
            "{{\"order\":{{\"salt\":7,\"maker\":\"0xab\",\"signer\":\"0xab\",\"tokenId\":\"123\",\
             \"makerAmount\":\"{maker}\",\"takerAmount\":\"{taker}\",\"side\":\"BUY\",\
             \"signature\":\"0x00\"}},\"owner\":\"k\",\"orderType\":\"FAK\"}}"
        )
    }

    #[test]
    fn only_a_body_with_both_amounts_zero_passes() {
        assert!(body_is_zero_size(body("0", "0").as_bytes()));
        for (maker, taker) in [
            ("1", "0"),
            ("0", "1"),
            ("00", "0"),
            ("0", "05"),
            ("10", "10"),
        ] {
            assert!(
                !body_is_zero_size(body(maker, taker).as_bytes()),
                "maker {maker} taker {taker}"
            );
        }
    }

    #[test]
    fn a_second_maker_amount_or_a_missing_one_fails() {
        let zero = body("0", "0");
        // Two order objects in one element: the guard cannot vouch for the second.
        let twice = format!("{zero}{}", body("0", "0"));
        assert!(!body_is_zero_size(twice.as_bytes()));
        let smuggled = zero.replace("\"side\"", "\"makerAmount\":\"5\",\"side\"");
        assert!(!body_is_zero_size(smuggled.as_bytes()));
        // A second taker amount, zero or not, is refused too.
        for taker in ["0", "5"] {
            let extra = format!("\"takerAmount\":\"{taker}\",\"side\"");
            assert!(!body_is_zero_size(
                zero.replace("\"side\"", &extra).as_bytes()
            ));
        }
        // Other keys ending in `Amount` are not amounts the guard reads.
        let other = zero.replace("\"side\"", "\"feeAmount\":\"7\",\"side\"");
        assert!(body_is_zero_size(other.as_bytes()));
        assert!(!body_is_zero_size(
            zero.replace("makerAmount", "maker_amount").as_bytes()
        ));
        assert!(!body_is_zero_size(
            zero.replace("takerAmount", "taker_amount").as_bytes()
        ));
        assert!(!body_is_zero_size(b""));
        // Cut right after the key: no value to read.
        assert!(!body_is_zero_size(b"{\"makerAmount\":\""));
    }
}
