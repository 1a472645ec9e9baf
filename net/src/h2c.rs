//! HTTP/2 client for order entry: one long-lived TLS connection (ALPN `h2`), requests pipelined
//! on concurrent streams, PING keep-alive, GOAWAY/RST handling and reconnect.
//!
//! The `h2` crate does HPACK, flow control and stream state; it runs with no async runtime: its
//! I/O object is an in-memory pipe ([`MemIo`]) that this module fills from and drains into the
//! driver connection, and its futures are polled by hand with a no-op waker from the ring loop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::{Connection, ResponseFuture, SendRequest};
use h2::{PingPong, RecvStream};
use http::{HeaderMap, Method, Request, Uri};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::driver::Driver;
use crate::error::{NetError, Result};
use crate::link::{Endpoint, Link, Timeouts};

/// Bytes shared between the h2 connection (via [`MemIo`]) and the ring loop.
#[derive(Debug, Default)]
struct Pipe {
    inbound: Vec<u8>,
    inbound_head: usize,
    outbound: Vec<u8>,
    eof: bool,
}

/// The in-memory I/O object given to `h2`: reads what the ring received, writes into a buffer
/// the ring sends. Never blocks; returns `Pending` when no input is buffered.
#[derive(Debug)]
pub struct MemIo(Rc<RefCell<Pipe>>);

impl AsyncRead for MemIo {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let mut p = self.0.borrow_mut();
        let avail = p.inbound.len() - p.inbound_head;
        if avail == 0 {
            return if p.eof {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        }
        let n = avail.min(buf.remaining());
        let head = p.inbound_head;
        buf.put_slice(&p.inbound[head..head + n]);
        p.inbound_head += n;
        if p.inbound_head == p.inbound.len() {
            p.inbound.clear();
            p.inbound_head = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.borrow_mut().outbound.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

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

#[derive(Debug)]
enum StreamState {
    Head(ResponseFuture),
    Body {
        status: u16,
        headers: HeaderMap,
        body: RecvStream,
        buf: Vec<u8>,
    },
}

#[derive(Debug)]
struct InFlight {
    tag: u64,
    started: Instant,
    state: StreamState,
    /// Body still to hand to h2 (sent when flow control allows; h2 buffers it).
    _send: h2::SendStream<Bytes>,
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
    pipe: Rc<RefCell<Pipe>>,
    conn: Connection<MemIo, Bytes>,
    send: SendRequest<Bytes>,
    ping: Option<PingPong>,
    ping_out: Option<Instant>,
    last_ping: Instant,
    streams: Vec<InFlight>,
    done: VecDeque<Completion>,
    closed: Option<String>,
    stats: H2Stats,
}

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

impl H2Client {
    /// Connects: TCP, TLS with ALPN `h2` (required when TLS), HTTP/2 preface and settings.
    pub fn connect(driver: &mut Driver, ep: &Endpoint, opts: &H2Options) -> Result<H2Client> {
        let link = Link::connect(driver, ep, opts.timeouts)?;
        if link.is_tls() && link.alpn() != Some(b"h2") {
            link.close(driver);
            return Err(NetError::TlsConfig(
                "server did not negotiate ALPN h2".into(),
            ));
        }
        let pipe = Rc::new(RefCell::new(Pipe::default()));
        let mut hs = Box::pin(
            h2::client::Builder::new()
                .initial_window_size(4 * 1024 * 1024)
                .initial_connection_window_size(8 * 1024 * 1024)
                .enable_push(false)
                .handshake::<MemIo, Bytes>(MemIo(pipe.clone())),
        );
        let mut cx = noop_cx();
        let (send, mut conn) = match hs.as_mut().poll(&mut cx) {
            Poll::Ready(r) => r?,
            Poll::Pending => {
                link.close(driver);
                return Err(NetError::H2Handshake);
            }
        };
        let ping = conn.ping_pong();
        let mut c = H2Client {
            ep: ep.clone(),
            opts: opts.clone(),
            link,
            pipe,
            conn,
            send,
            ping,
            ping_out: None,
            last_ping: Instant::now(),
            streams: Vec::with_capacity(opts.max_unclaimed.min(1024)),
            done: VecDeque::with_capacity(opts.max_unclaimed.min(1024)),
            closed: None,
            stats: H2Stats::default(),
        };
        // Flush the preface and our SETTINGS; the server's are processed as they arrive.
        c.drive(driver)?;
        Ok(c)
    }

    /// Counters.
    pub fn stats(&self) -> H2Stats {
        self.stats
    }

    /// Streams in flight.
    pub fn in_flight(&self) -> usize {
        self.streams.len()
    }

    /// Why the connection is unusable, if it is (then call [`H2Client::reconnect`]).
    pub fn closed_reason(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Whether a new request can be sent now (connection open and a stream slot free).
    pub fn is_ready(&mut self) -> bool {
        self.closed.is_none() && matches!(self.send.poll_ready(&mut noop_cx()), Poll::Ready(Ok(())))
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
        if let Some(why) = &self.closed {
            return Err(NetError::BadRequest(format!("connection closed: {why}")));
        }
        if self.streams.len() + self.done.len() >= self.opts.max_unclaimed {
            self.stats.refused_backpressure += 1;
            return Err(NetError::Backpressure("h2 completions not taken"));
        }
        match self.send.poll_ready(&mut noop_cx()) {
            Poll::Ready(r) => r?,
            Poll::Pending => {
                return Err(NetError::BadRequest(
                    "no stream available (max concurrent streams)".into(),
                ));
            }
        }
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(req.uri.clone());
        if let Some(h) = builder.headers_mut() {
            h.clone_from(&req.headers);
        }
        let request = builder
            .body(())
            .map_err(|e| NetError::BadRequest(e.to_string()))?;
        let end = body.is_empty();
        let (resp, mut stream) = self.send.send_request(request, end)?;
        if !end {
            stream.reserve_capacity(body.len());
            stream.send_data(body, true)?;
        }
        self.streams.push(InFlight {
            tag,
            started: Instant::now(),
            state: StreamState::Head(resp),
            _send: stream,
        });
        self.stats.requests += 1;
        self.drive(driver)
    }

    /// Moves bytes between the link and h2, polls every stream and the keep-alive. Call it after
    /// each [`Driver::poll`]; then take finished responses with [`H2Client::next_completion`]
    /// (also after an error: responses received before a GOAWAY are still delivered).
    /// An error means the connection is dead: in-flight requests are completed with errors and
    /// [`H2Client::reconnect`] makes a new connection.
    pub fn poll(&mut self, driver: &mut Driver) -> Result<()> {
        if self.closed.is_some() {
            return Ok(());
        }
        match self.poll_inner(driver) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Responses h2 already holds (e.g. the last ones before a GOAWAY) still complete.
                self.harvest();
                self.fail_all(&e);
                self.closed = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn poll_inner(&mut self, driver: &mut Driver) -> Result<()> {
        self.drive(driver)?;
        let mut cx = noop_cx();
        // Keep-alive ping.
        if let (Some(interval), Some(pp)) = (self.opts.ping_interval, self.ping.as_mut()) {
            if self.ping_out.is_none() && self.last_ping.elapsed() >= interval {
                pp.send_ping(h2::Ping::opaque())?;
                self.ping_out = Some(Instant::now());
                self.last_ping = Instant::now();
                self.stats.pings_sent += 1;
            }
            if self.ping_out.is_some()
                && let Poll::Ready(r) = pp.poll_pong(&mut cx)
            {
                r?;
                self.ping_out = None;
                self.stats.pongs_received += 1;
            }
        }
        self.harvest();
        // Window updates and RST frames queued by the streams go out now.
        self.drive(driver)
    }

    /// Polls every stream, moving finished ones to the completion queue.
    fn harvest(&mut self) {
        let mut cx = noop_cx();
        let timeout = self.opts.request_timeout;
        let mut i = 0;
        while i < self.streams.len() {
            let s = &mut self.streams[i];
            let outcome = poll_stream(s, &mut cx, timeout);
            match outcome {
                None => i += 1,
                Some(result) => {
                    let s = self.streams.swap_remove(i);
                    match &result {
                        Ok(_) => self.stats.responses += 1,
                        Err(_) => self.stats.failed_streams += 1,
                    }
                    self.done.push_back(Completion { tag: s.tag, result });
                    debug_assert!(self.streams.len() + self.done.len() <= self.opts.max_unclaimed);
                }
            }
        }
    }

    /// Feeds received bytes to h2, polls the connection, sends what h2 wrote.
    fn drive(&mut self, driver: &mut Driver) -> Result<()> {
        let fresh = self.link.pump(driver)?;
        if fresh || !self.link.data(driver).is_empty() {
            let data = self.link.data(driver);
            let n = data.len();
            self.pipe.borrow_mut().inbound.extend_from_slice(data);
            self.link.consume(driver, n)?;
        }
        let mut cx = noop_cx();
        match Pin::new(&mut self.conn).poll(&mut cx) {
            Poll::Pending => {}
            Poll::Ready(Ok(())) => {
                self.flush_out(driver)?;
                return Err(NetError::GoAway);
            }
            Poll::Ready(Err(e)) => {
                self.flush_out(driver)?;
                return Err(if e.is_go_away() {
                    NetError::GoAway
                } else {
                    e.into()
                });
            }
        }
        self.flush_out(driver)
    }

    fn flush_out(&mut self, driver: &mut Driver) -> Result<()> {
        let mut p = self.pipe.borrow_mut();
        if !p.outbound.is_empty() {
            self.link.send(driver, &p.outbound)?;
            p.outbound.clear();
        }
        Ok(())
    }

    fn fail_all(&mut self, e: &NetError) {
        for s in self.streams.drain(..) {
            self.stats.failed_streams += 1;
            let err = match e {
                NetError::GoAway => NetError::GoAway,
                NetError::Closed => NetError::Closed,
                NetError::Reset => NetError::Reset,
                other => NetError::BadRequest(format!("connection failed: {other}")),
            };
            self.done.push_back(Completion {
                tag: s.tag,
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

    /// Sends GOAWAY-free close: closes the TLS/TCP connection.
    pub fn shutdown(self, driver: &mut Driver) {
        self.link.close(driver);
    }
}

fn poll_stream(
    s: &mut InFlight,
    cx: &mut Context<'_>,
    timeout: Duration,
) -> Option<Result<Response>> {
    loop {
        match &mut s.state {
            StreamState::Head(fut) => match Pin::new(fut).poll(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(e)) => return Some(Err(e.into())),
                Poll::Ready(Ok(resp)) => {
                    let (parts, body) = resp.into_parts();
                    s.state = StreamState::Body {
                        status: parts.status.as_u16(),
                        headers: parts.headers,
                        body,
                        buf: Vec::new(),
                    };
                }
            },
            StreamState::Body {
                status,
                headers,
                body,
                buf,
            } => match body.poll_data(cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(chunk))) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    buf.extend_from_slice(&chunk);
                }
                Poll::Ready(Some(Err(e))) => return Some(Err(e.into())),
                Poll::Ready(None) => {
                    return Some(Ok(Response {
                        status: *status,
                        headers: std::mem::take(headers),
                        body: std::mem::take(buf),
                    }));
                }
            },
        }
    }
    if s.started.elapsed() > timeout {
        return Some(Err(NetError::Timeout(timeout, "http2 request")));
    }
    None
}
