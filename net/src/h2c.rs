//! HTTP/2 client for order entry: one long-lived TLS connection (ALPN `h2`), requests pipelined
//! on concurrent streams, PING keep-alive, GOAWAY/RST handling and reconnect.
//!
//! The protocol is ringbolt's own sans-IO frame layer ([`crate::h2wire`]): a request's HEADERS
//! frame carries a pre-encoded HPACK block ([`HeaderBlock`], built once per request kind) plus the
//! per-request headers as never-indexed literals, its DATA frame the body, both written straight
//! into the connection's send queue and sealed there as one TLS record ([`Link::send_with`]).
//! Responses are parsed by the same layer (full HPACK decoder) with no async runtime.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

use crate::driver::Driver;
use crate::error::{NetError, Result};
use crate::h2wire::{self, Conn, Event, StreamFailure, hpack};
use crate::link::{Endpoint, Link, Timeouts};

/// A request prepared once (method, URI, headers) and sent many times with different bodies.
#[derive(Clone, Debug)]
pub struct PreparedRequest {
    /// Method.
    pub method: Method,
    /// Absolute URI (`https://host/path`).
    pub uri: Uri,
    /// Request headers (content-type, auth...).
    pub headers: HeaderMap,
}

impl PreparedRequest {
    /// Builds a prepared request from a method, an absolute URI and header pairs.
    pub fn new(method: Method, uri: &str, headers: &[(&str, &str)]) -> Result<Self> {
        let uri: Uri = uri
            .parse()
            .map_err(|e| NetError::BadRequest(format!("uri {uri}: {e}")))?;
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let name = http::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| NetError::BadRequest(format!("header {k}: {e}")))?;
            let value = http::header::HeaderValue::from_str(v)
                .map_err(|e| NetError::BadRequest(format!("header {k}: {e}")))?;
            map.append(name, value);
        }
        Ok(PreparedRequest {
            method,
            uri,
            headers: map,
        })
    }
}

/// A response (or failure) to a request, identified by the caller's tag.
#[derive(Debug)]
pub struct Completion {
    /// The tag given to [`H2Client::send`].
    pub tag: u64,
    /// Status, headers and body, or why the stream failed (RST_STREAM, GOAWAY, connection loss).
    pub result: Result<Response>,
}

/// A complete HTTP/2 response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// HTTP/2 client options.
#[derive(Clone, Debug)]
pub struct H2Options {
    /// Link timeouts; `idle` must exceed `ping_interval` (pongs count as traffic).
    pub timeouts: Timeouts,
    /// PING keep-alive interval (keeps the connection and the path warm).
    pub ping_interval: Option<Duration>,
    /// Per-request timeout: a stream without a complete response after this long fails.
    pub request_timeout: Duration,
    /// Bound on requests not yet claimed: streams in flight plus completions not yet taken with
    /// [`H2Client::next_completion`]. [`H2Client::send`] refuses a request beyond it
    /// ([`NetError::Backpressure`], counted in [`H2Stats::refused_backpressure`]): completions
    /// are never dropped, so the completion queue never holds more than this.
    pub max_unclaimed: usize,
}

impl Default for H2Options {
    fn default() -> Self {
        H2Options {
            timeouts: Timeouts::default(),
            ping_interval: Some(Duration::from_secs(5)),
            request_timeout: Duration::from_secs(10),
            max_unclaimed: 1024,
        }
    }
}

/// A request's header block, HPACK-encoded once: `:method` (indexed), `:scheme`, `:path`,
/// `:authority` and the constant headers as never-indexed literals (no dynamic-table state, so
/// the same bytes are valid on every connection and every stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderBlock {
    bytes: Vec<u8>,
}

impl HeaderBlock {
    /// Encodes `method uri` with `headers` (names lower case, as `http` keeps them).
    pub fn new(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Self> {
        let mut b = Vec::with_capacity(256);
        match hpack::static_index(b":method", Some(method.as_str().as_bytes())) {
            Some(i) => hpack::encode_int(&mut b, 0x80, 7, i),
            None => hpack::encode_never_indexed(&mut b, b":method", method.as_str().as_bytes()),
        }
        let scheme = uri.scheme_str().unwrap_or("https");
        match hpack::static_index(b":scheme", Some(scheme.as_bytes())) {
            Some(i) => hpack::encode_int(&mut b, 0x80, 7, i),
            None => hpack::encode_never_indexed(&mut b, b":scheme", scheme.as_bytes()),
        }
        let path = uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        hpack::encode_never_indexed(&mut b, b":path", path.as_bytes());
        let authority = uri
            .authority()
            .ok_or_else(|| NetError::BadRequest(format!("uri {uri}: no authority")))?;
        hpack::encode_never_indexed(&mut b, b":authority", authority.as_str().as_bytes());
        for (name, value) in headers {
            hpack::encode_never_indexed(&mut b, name.as_str().as_bytes(), value.as_bytes());
        }
        Ok(HeaderBlock { bytes: b })
    }

    /// The encoded block.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Counters of an HTTP/2 connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct H2Stats {
    /// Requests sent.
    pub requests: u64,
    /// Responses completed (any status).
    pub responses: u64,
    /// Streams that failed (reset, GOAWAY, timeout).
    pub failed_streams: u64,
    /// Keep-alive pings sent.
    pub pings_sent: u64,
    /// Pongs received for our pings.
    pub pongs_received: u64,
    /// Reconnects made.
    pub reconnects: u64,
    /// Requests refused because `max_unclaimed` requests were in flight or completed but not
    /// taken yet (back-pressure: the caller must take completions first).
    pub refused_backpressure: u64,
}

/// One live HTTP/2 connection on a [`Driver`].
#[derive(Debug)]
pub struct H2Client {
    ep: Endpoint,
    opts: H2Options,
    link: Link,
    conn: Conn,
    tags: Vec<u64>,
    /// When our PING went out, and the frame layer's PING ACK count then.
    ping_out: Option<(Instant, u64)>,
    last_ping: Instant,
    done: VecDeque<Completion>,
    closed: Option<String>,
    stats: H2Stats,
}

/// The response headers as an [`HeaderMap`] (invalid names or values skipped).
fn header_map(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(pairs.len());
    for (n, v) in pairs {
        if let (Ok(n), Ok(v)) = (
            http::header::HeaderName::from_bytes(&n),
            http::header::HeaderValue::from_bytes(&v),
        ) {
            map.append(n, v);
        }
    }
    map
}

impl H2Client {
    /// Connects: TCP, TLS with ALPN `h2` (required when TLS), HTTP/2 preface and settings.
    pub fn connect(driver: &mut Driver, ep: &Endpoint, opts: &H2Options) -> Result<H2Client> {
        let mut link = Link::connect(driver, ep, opts.timeouts)?;
        if link.is_tls() && link.alpn() != Some(b"h2") {
            link.close(driver);
            return Err(NetError::TlsConfig(
                "server did not negotiate ALPN h2".into(),
            ));
        }
        let mut conn = Conn::new();
        if let Err(e) = link.send_with(driver, |out| conn.start(out)) {
            link.close(driver);
            return Err(e);
        }
        let cap = opts.max_unclaimed.min(1024);
        let mut c = H2Client {
            ep: ep.clone(),
            opts: opts.clone(),
            link,
            conn,
            tags: Vec::with_capacity(cap),
            ping_out: None,
            last_ping: Instant::now(),
            done: VecDeque::with_capacity(cap),
            closed: None,
            stats: H2Stats::default(),
        };
        // The server's SETTINGS are processed as they arrive.
        c.drive(driver)?;
        Ok(c)
    }

    /// Counters.
    pub fn stats(&self) -> H2Stats {
        self.stats
    }

    /// Frame-layer counters.
    pub fn wire_stats(&self) -> h2wire::WireStats {
        self.conn.stats()
    }

    /// Streams in flight.
    pub fn in_flight(&self) -> usize {
        self.conn.open_streams()
    }

    /// Why the connection is unusable, if it is (then call [`H2Client::reconnect`]).
    pub fn closed_reason(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Whether a new request can be sent now (connection open and a stream slot free).
    pub fn is_ready(&mut self) -> bool {
        self.closed.is_none() && self.conn.check_open().is_ok()
    }

    /// Sends `req` with `body` on a new stream; its [`Completion`] carries `tag`. Fails when the
    /// connection is closed, the server's stream limit is reached (check [`H2Client::is_ready`]),
    /// or [`H2Options::max_unclaimed`] requests are in flight or completed but not taken
    /// ([`NetError::Backpressure`]).
    pub fn send(
        &mut self,
        driver: &mut Driver,
        req: &PreparedRequest,
        body: Bytes,
        tag: u64,
    ) -> Result<()> {
        let block = HeaderBlock::new(&req.method, &req.uri, &req.headers)?;
        self.send_block(driver, &block, &[], &body, tag)
    }

    /// The order path: a new stream whose HEADERS frame is `block` followed by `extra` headers
    /// (never-indexed literals with literal names: lower case, not in the static table, e.g.
    /// `poly_signature`), and `body` in DATA frames; written into the send queue and sealed in
    /// place, handed to the ring. Same failures as [`H2Client::send`]; no allocation.
    pub fn send_block(
        &mut self,
        driver: &mut Driver,
        block: &HeaderBlock,
        extra: &[(&[u8], &[u8])],
        body: &[u8],
        tag: u64,
    ) -> Result<()> {
        if let Some(why) = &self.closed {
            return Err(NetError::BadRequest(format!("connection closed: {why}")));
        }
        if self.conn.open_streams() + self.done.len() >= self.opts.max_unclaimed {
            self.stats.refused_backpressure += 1;
            return Err(NetError::Backpressure("h2 completions not taken"));
        }
        self.conn
            .check_open()
            .map_err(|why| NetError::BadRequest(why.into()))?;
        let now = Instant::now();
        let Self { link, conn, .. } = self;
        let write_block = |b: &mut Vec<u8>| {
            b.extend_from_slice(&block.bytes);
            for (n, v) in extra {
                hpack::encode_never_indexed_new_name(b, n, v);
            }
        };
        link.send_with(driver, |out| {
            conn.send_request(out, tag, write_block, body, now)
        })?
        .map_err(|why| NetError::BadRequest(why.into()))?;
        self.stats.requests += 1;
        Ok(())
    }

    /// Moves bytes between the link and the frame layer, completes streams and keeps the
    /// connection alive. Call it after each [`Driver::poll`]; then take finished responses with
    /// [`H2Client::next_completion`] (also after an error: responses received before a GOAWAY
    /// are still delivered). An error means the connection is dead: in-flight requests are
    /// completed with errors and [`H2Client::reconnect`] makes a new connection.
    pub fn poll(&mut self, driver: &mut Driver) -> Result<()> {
        if self.closed.is_some() {
            return Ok(());
        }
        match self.poll_inner(driver) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.harvest();
                self.fail_all(&e);
                self.closed = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn poll_inner(&mut self, driver: &mut Driver) -> Result<()> {
        self.drive(driver)?;
        let now = Instant::now();
        self.conn.expire(now, self.opts.request_timeout);
        if let Some(interval) = self.opts.ping_interval {
            let pongs = self.conn.stats().pongs;
            if self.ping_out.is_some_and(|(_, before)| pongs > before) {
                self.stats.pongs_received += 1;
                self.ping_out = None;
            }
            if self.ping_out.is_none() && now.duration_since(self.last_ping) >= interval {
                let Self { link, conn, .. } = self;
                link.send_with(driver, |out| conn.ping(out, *b"ringbolt"))?;
                self.ping_out = Some((now, pongs));
                self.last_ping = now;
                self.stats.pings_sent += 1;
            }
        }
        self.harvest();
        self.flush_control(driver)?;
        if self.conn.going_away() && self.conn.open_streams() == 0 {
            return Err(NetError::GoAway);
        }
        Ok(())
    }

    /// Moves the frame layer's events to the completion queue.
    fn harvest(&mut self) {
        let timeout = self.opts.request_timeout;
        while let Some(ev) = self.conn.next_event() {
            let (tag, result) = match ev {
                Event::Response {
                    tag,
                    status,
                    headers,
                    body,
                } => {
                    self.stats.responses += 1;
                    let headers = header_map(headers);
                    (
                        tag,
                        Ok(Response {
                            status,
                            headers,
                            body,
                        }),
                    )
                }
                Event::Failed { tag, why } => {
                    self.stats.failed_streams += 1;
                    let e = match why {
                        StreamFailure::Reset(code) => NetError::StreamReset(code),
                        StreamFailure::Refused => NetError::GoAway,
                        StreamFailure::Timeout => NetError::Timeout(timeout, "http2 request"),
                    };
                    (tag, Err(e))
                }
            };
            self.done.push_back(Completion { tag, result });
        }
    }

    /// Feeds received bytes to the frame layer and sends its control frames.
    fn drive(&mut self, driver: &mut Driver) -> Result<()> {
        let pumped = self.link.pump(driver);
        let data = self.link.data(driver);
        if !data.is_empty() {
            let n = self.conn.recv(data);
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    let _ = self.flush_control(driver);
                    return Err(e.into());
                }
            };
            self.link.consume(driver, n)?;
        }
        self.harvest();
        self.flush_control(driver)?;
        pumped.map(|_| ())
    }

    fn flush_control(&mut self, driver: &mut Driver) -> Result<()> {
        let Self { link, conn, .. } = self;
        let out = conn.take_out();
        if !out.is_empty() {
            link.send(driver, out)?;
            out.clear();
        }
        Ok(())
    }

    fn fail_all(&mut self, e: &NetError) {
        self.tags.clear();
        self.tags.extend(self.conn.drain_streams());
        for tag in self.tags.drain(..) {
            self.stats.failed_streams += 1;
            let err = match e {
                NetError::GoAway => NetError::GoAway,
                NetError::Closed => NetError::Closed,
                NetError::Reset => NetError::Reset,
                other => NetError::BadRequest(format!("connection failed: {other}")),
            };
            self.done.push_back(Completion {
                tag,
                result: Err(err),
            });
        }
    }

    /// The next finished request, if any.
    pub fn next_completion(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }

    /// Replaces a dead (or live) connection with a new one to the same endpoint. Requests in
    /// flight on the old one are completed with errors.
    pub fn reconnect(&mut self, driver: &mut Driver) -> Result<()> {
        let e = NetError::BadRequest("reconnect".into());
        self.fail_all(&e);
        let fresh = H2Client::connect(driver, &self.ep, &self.opts)?;
        let old_done = std::mem::take(&mut self.done);
        let stats = self.stats;
        let old = std::mem::replace(self, fresh);
        self.done = old_done;
        self.stats = H2Stats {
            reconnects: stats.reconnects + 1,
            ..stats
        };
        old.link.close(driver);
        Ok(())
    }

    /// Closes the TLS/TCP connection (no GOAWAY).
    pub fn shutdown(self, driver: &mut Driver) {
        self.link.close(driver);
    }
}
