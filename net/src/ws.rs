//! WebSocket client (RFC 6455) over a [`Link`]: opening handshake, client masking,
//! fragmentation, ping/pong, application keep-alives and the close handshake.
//!
//! The receive path hands out complete messages as slices borrowed from a reusable buffer: an
//! unfragmented frame is returned in place from the link's receive buffer (no copy); fragments
//! are reassembled into one buffer reused for every message. Nothing is allocated per message
//! once the buffers have grown to the working size (see `tests/alloc.rs`).

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::connect::{LinkConnect, Resolver};
use crate::driver::Driver;
use crate::error::{NetError, Result};
use crate::link::{Endpoint, Link, Timeouts};

const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Frame opcodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpCode {
    /// Continuation of a fragmented message.
    Continuation = 0x0,
    /// UTF-8 text.
    Text = 0x1,
    /// Binary.
    Binary = 0x2,
    /// Close.
    Close = 0x8,
    /// Ping.
    Ping = 0x9,
    /// Pong.
    Pong = 0xA,
}

impl OpCode {
    fn from_u8(v: u8) -> Option<OpCode> {
        Some(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN bit.
    pub fin: bool,
    /// Opcode.
    pub opcode: OpCode,
    /// Masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Header length, bytes.
    pub header_bytes: usize,
    /// Payload length, bytes.
    pub payload_bytes: u64,
}

/// Decodes a frame header from the start of `buf`; `Ok(None)` if more bytes are needed.
/// Rejects reserved bits, unknown opcodes, and oversized or fragmented control frames.
pub fn decode_header(buf: &[u8]) -> Result<Option<FrameHeader>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let b0 = buf[0];
    let b1 = buf[1];
    if b0 & 0x70 != 0 {
        return Err(NetError::WsProtocol(
            "reserved bits set (no extension negotiated)",
        ));
    }
    let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(NetError::WsProtocol("unknown opcode"))?;
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    let (payload_bytes, mut pos) = match len7 {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            let n = u64::from_be_bytes(b);
            if n >> 63 != 0 {
                return Err(NetError::WsProtocol("64-bit length with the top bit set"));
            }
            (n, 10)
        }
        n => (u64::from(n), 2),
    };
    if opcode.is_control() && (payload_bytes > 125 || !fin) {
        return Err(NetError::WsProtocol("control frame too long or fragmented"));
    }
    let mask = if masked {
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        let m = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
        pos += 4;
        Some(m)
    } else {
        None
    };
    Ok(Some(FrameHeader {
        fin,
        opcode,
        mask,
        header_bytes: pos,
        payload_bytes,
    }))
}

/// Appends one frame to `out`; masked with `mask` when given (clients must always mask).
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    out.push(u8::from(fin) << 7 | opcode as u8);
    let mbit = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        out.push(mbit | n as u8);
    } else if n <= usize::from(u16::MAX) {
        out.push(mbit | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(mbit | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], m);
        }
        None => out.extend_from_slice(payload),
    }
}

/// XORs `buf` with the 4-byte mask (RFC 6455 §5.3).
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = buf.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID.as_bytes());
    BASE64.encode(h.digest().bytes())
}

/// Builds the opening handshake request.
pub fn handshake_request(
    host_header: &str,
    path: &str,
    key: &str,
    extra_headers: &[(String, String)],
) -> Vec<u8> {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (k, v) in extra_headers {
        r.push_str(k);
        r.push_str(": ");
        r.push_str(v);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Parses the handshake response at the start of `buf`. `Ok(None)`: incomplete;
/// `Ok(Some(n))`: valid, `n` header bytes to consume.
pub fn parse_handshake_response(buf: &[u8], key: &str) -> Result<Option<usize>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > 16 * 1024 {
                return Err(NetError::WsHandshake("response header too large".into()));
            }
            return Ok(None);
        }
        Err(e) => return Err(NetError::WsHandshake(format!("bad response: {e}"))),
    };
    if resp.code != Some(101) {
        return Err(NetError::WsHandshake(format!(
            "status {:?} {:?}",
            resp.code,
            resp.reason.unwrap_or("")
        )));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    if !header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(NetError::WsHandshake("missing Upgrade: websocket".into()));
    }
    if !header("connection").is_some_and(|v| v.to_ascii_lowercase().contains("upgrade")) {
        return Err(NetError::WsHandshake("missing Connection: Upgrade".into()));
    }
    if header("sec-websocket-accept").as_deref() != Some(accept_key(key).as_str()) {
        return Err(NetError::WsHandshake("bad Sec-WebSocket-Accept".into()));
    }
    if header("sec-websocket-extensions").is_some() {
        return Err(NetError::WsHandshake(
            "server negotiated an extension we did not offer".into(),
        ));
    }
    Ok(Some(n))
}

/// An application keep-alive some venues require.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    /// A WebSocket ping frame with this payload.
    Ping(Vec<u8>),
    /// A text message (e.g. `PING`).
    Text(String),
}

/// WebSocket client options.
#[derive(Clone, Debug)]
pub struct WsOptions {
    /// Request path and query, e.g. `/ws/btcusdt@trade`.
    pub path: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Largest accepted message, bytes.
    pub max_message_bytes: usize,
    /// Connect/handshake/idle timeouts.
    pub timeouts: Timeouts,
    /// Application keep-alive and its interval.
    pub keepalive: Option<(Duration, KeepAlive)>,
}

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            path: "/".into(),
            headers: Vec::new(),
            max_message_bytes: 16 * 1024 * 1024,
            timeouts: Timeouts::default(),
            keepalive: None,
        }
    }
}

/// A complete message, borrowed from the connection's reusable buffers until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message (UTF-8 validated).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }
}

/// Counters of a WebSocket connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WsStats {
    /// Data messages delivered.
    pub messages: u64,
    /// Pings received (each answered with a pong).
    pub pings_received: u64,
    /// Pongs received.
    pub pongs_received: u64,
    /// Keep-alives sent.
    pub keepalives_sent: u64,
}

/// Where the last returned message lives (to release it on the next call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    None,
    /// In the link buffer: consume this many bytes.
    Link(usize),
    /// In the reassembly buffer.
    Frag,
}

/// A WebSocket client connection. Drive the [`Driver`] and call [`WsClient::next`] to receive.
#[derive(Debug)]
pub struct WsClient {
    ep: Endpoint,
    opts: WsOptions,
    reconnects: u64,
    link: Link,
    frag: Vec<u8>,
    frag_opcode: Option<OpCode>,
    held: Held,
    tx: Vec<u8>,
    rng: fastrand::Rng,
    max_message_bytes: usize,
    keepalive: Option<(Duration, KeepAlive)>,
    last_keepalive: Instant,
    close_sent: bool,
    stats: WsStats,
}

/// Where a [`WsConnect`] is.
#[derive(Debug)]
enum Upgrade {
    /// TCP / TLS in progress.
    Link(LinkConnect),
    /// The upgrade request sent; waiting for `101 Switching Protocols`.
    Response {
        link: Link,
        key: String,
        /// Seeds the client's masking keys.
        seed: [u8; 8],
    },
    /// Finished (handed out, failed or aborted).
    Done,
}

/// A WebSocket connection being opened one step at a time ([`WsConnect::step`] once per ring
/// loop turn): DNS, TCP and TLS through [`LinkConnect`], then the opening handshake, within the
/// timeouts of [`WsOptions::timeouts`] (`connect` for DNS + TCP, `handshake` for TLS and again
/// for the upgrade). Nothing in it blocks the thread.
#[derive(Debug)]
pub struct WsConnect {
    ep: Endpoint,
    opts: WsOptions,
    stage: Upgrade,
    deadline: Instant,
}

impl WsConnect {
    /// Starts connecting to `ep` (host names resolved on `resolver`; see [`LinkConnect::start`]).
    ///
    /// # Errors
    /// As [`LinkConnect::start`].
    pub fn start(ep: &Endpoint, opts: &WsOptions, resolver: Option<&Resolver>) -> Result<Self> {
        Ok(WsConnect {
            ep: ep.clone(),
            opts: opts.clone(),
            stage: Upgrade::Link(LinkConnect::start(ep, opts.timeouts, resolver)?),
            deadline: Instant::now() + opts.timeouts.connect + opts.timeouts.handshake,
        })
    }

    /// Advances without waiting: `Ok(Some(client))` once the WebSocket is open, `Ok(None)`
    /// while in progress. After an error the attempt is over and its socket closed.
    ///
    /// # Errors
    /// Connect, TLS or handshake failures, or a deadline passed.
    pub fn step(&mut self, driver: &mut Driver) -> Result<Option<WsClient>> {
        let r = self.advance(driver);
        if r.is_err() {
            self.abort(driver);
        }
        r
    }

    fn advance(&mut self, driver: &mut Driver) -> Result<Option<WsClient>> {
        loop {
            self.stage = match std::mem::replace(&mut self.stage, Upgrade::Done) {
                Upgrade::Link(mut c) => match c.step(driver)? {
                    Some(mut link) => {
                        let (key, seed) = match (random::<16>(), random::<8>()) {
                            (Ok(k), Ok(s)) => (BASE64.encode(k), s),
                            (Err(e), _) | (_, Err(e)) => {
                                link.close(driver);
                                return Err(e);
                            }
                        };
                        let req = handshake_request(
                            &crate::http1::host_header(&self.ep),
                            &self.opts.path,
                            &key,
                            &self.opts.headers,
                        );
                        if let Err(e) = link.send(driver, &req) {
                            link.close(driver);
                            return Err(e);
                        }
                        self.deadline = Instant::now() + self.opts.timeouts.handshake;
                        Upgrade::Response { link, key, seed }
                    }
                    None => {
                        self.stage = Upgrade::Link(c);
                        return Ok(None);
                    }
                },
                Upgrade::Response {
                    mut link,
                    key,
                    seed,
                } => match upgrade_step(&mut link, driver, &key) {
                    Ok(true) => return Ok(Some(WsClient::over(link, &self.ep, &self.opts, seed))),
                    Ok(false) if Instant::now() > self.deadline => {
                        link.close(driver);
                        return Err(NetError::Timeout(
                            self.opts.timeouts.handshake,
                            "websocket handshake",
                        ));
                    }
                    Ok(false) => {
                        self.stage = Upgrade::Response { link, key, seed };
                        return Ok(None);
                    }
                    Err(e) => {
                        link.close(driver);
                        return Err(e);
                    }
                },
                Upgrade::Done => return Err(NetError::UnknownConn),
            };
        }
    }

    /// Whether the attempt's socket is on the driver (TLS or upgrade under way).
    pub fn on_driver(&self) -> bool {
        match &self.stage {
            Upgrade::Link(c) => c.on_driver(),
            Upgrade::Response { .. } => true,
            Upgrade::Done => false,
        }
    }

    /// Gives up: closes whatever socket the attempt holds.
    pub fn abort(&mut self, driver: &mut Driver) {
        match std::mem::replace(&mut self.stage, Upgrade::Done) {
            Upgrade::Link(mut c) => c.abort(driver),
            Upgrade::Response { link, .. } => link.close(driver),
            Upgrade::Done => {}
        }
    }
}

/// `N` bytes from the OS generator (handshake key, masking seed).
fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| NetError::io("getrandom", std::io::Error::other(e.to_string())))?;
    Ok(bytes)
}

/// Reads the upgrade response if it is complete: `Ok(true)` accepted (its bytes consumed).
fn upgrade_step(link: &mut Link, driver: &mut Driver, key: &str) -> Result<bool> {
    loop {
        if let Some(n) = parse_handshake_response(link.data(driver), key)? {
            link.consume(driver, n)?;
            return Ok(true);
        }
        if !link.pump(driver)? {
            return Ok(false);
        }
    }
}

impl WsClient {
    /// Connects, completes TLS (if configured) and the WebSocket opening handshake, blocking
    /// (helper threads, tests, benches): a [`WsConnect`] run to completion. A ring thread steps
    /// a `WsConnect` instead.
    ///
    /// # Errors
    /// Resolution, connect, TLS or handshake failures, or a timeout.
    pub fn connect(driver: &mut Driver, ep: &Endpoint, opts: &WsOptions) -> Result<WsClient> {
        let mut c = WsConnect::start(ep, opts, None)?;
        loop {
            if let Some(ws) = c.step(driver)? {
                return Ok(ws);
            }
            crate::connect::wait_a_little(driver, c.on_driver())?;
        }
    }

    /// A client on an open link whose upgrade completed.
    fn over(link: Link, ep: &Endpoint, opts: &WsOptions, seed: [u8; 8]) -> WsClient {
        WsClient {
            ep: ep.clone(),
            opts: opts.clone(),
            reconnects: 0,
            link,
            frag: Vec::with_capacity(64 * 1024),
            frag_opcode: None,
            held: Held::None,
            tx: Vec::with_capacity(4096),
            rng: fastrand::Rng::with_seed(u64::from_ne_bytes(seed)),
            max_message_bytes: opts.max_message_bytes,
            keepalive: opts.keepalive.clone(),
            last_keepalive: Instant::now(),
            close_sent: false,
            stats: WsStats::default(),
        }
    }

    /// Replaces this connection with a new one to the same endpoint and path (after an error,
    /// or to refresh). The old socket is closed; messages not yet received on it are lost, so
    /// the caller resubscribes / resyncs (feeds mark the gap on the bus).
    pub fn reconnect(&mut self, driver: &mut Driver) -> Result<()> {
        let fresh = WsClient::connect(driver, &self.ep, &self.opts)?;
        let reconnects = self.reconnects + 1;
        let old = std::mem::replace(self, fresh);
        self.reconnects = reconnects;
        old.link.close(driver);
        Ok(())
    }

    /// Reconnections made by [`WsClient::reconnect`].
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// The underlying link.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Counters.
    pub fn stats(&self) -> WsStats {
        self.stats
    }

    fn release(&mut self, driver: &mut Driver) -> Result<()> {
        match std::mem::replace(&mut self.held, Held::None) {
            Held::None => {}
            Held::Link(n) => self.link.consume(driver, n)?,
            Held::Frag => {
                self.frag.clear();
                self.frag_opcode = None;
            }
        }
        Ok(())
    }

    fn send_frame(
        &mut self,
        driver: &mut Driver,
        fin: bool,
        op: OpCode,
        payload: &[u8],
    ) -> Result<()> {
        let mut mask = [0u8; 4];
        self.rng.fill(&mut mask);
        self.tx.clear();
        encode_frame(&mut self.tx, fin, op, payload, Some(mask));
        self.link.send(driver, &self.tx)
    }

    /// Sends a text message.
    pub fn send_text(&mut self, driver: &mut Driver, text: &str) -> Result<()> {
        self.send_frame(driver, true, OpCode::Text, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, driver: &mut Driver, data: &[u8]) -> Result<()> {
        self.send_frame(driver, true, OpCode::Binary, data)
    }

    /// Sends a ping (payload ≤ 125 bytes).
    pub fn send_ping(&mut self, driver: &mut Driver, payload: &[u8]) -> Result<()> {
        if payload.len() > 125 {
            return Err(NetError::WsProtocol("ping payload over 125 bytes"));
        }
        self.send_frame(driver, true, OpCode::Ping, payload)
    }

    /// Starts the close handshake (code 1000). Keep calling [`WsClient::next`] until it returns
    /// [`NetError::WsClosed`], or drop the client.
    pub fn close(&mut self, driver: &mut Driver) -> Result<()> {
        if !self.close_sent {
            self.close_sent = true;
            self.send_frame(driver, true, OpCode::Close, &1000u16.to_be_bytes())?;
        }
        Ok(())
    }

    /// Closes the TCP/TLS connection now.
    pub fn shutdown(self, driver: &mut Driver) {
        self.link.close(driver);
    }

    fn maybe_keepalive(&mut self, driver: &mut Driver) -> Result<()> {
        let Some((interval, _)) = &self.keepalive else {
            return Ok(());
        };
        if self.last_keepalive.elapsed() < *interval {
            return Ok(());
        }
        self.last_keepalive = Instant::now();
        self.stats.keepalives_sent += 1;
        // Taken out and put back (not cloned): a keep-alive costs no allocation.
        let keepalive = self.keepalive.take();
        let sent = match keepalive.as_ref().map(|k| &k.1) {
            Some(KeepAlive::Ping(p)) => self.send_ping(driver, p),
            Some(KeepAlive::Text(t)) => self.send_text(driver, t),
            None => Ok(()),
        };
        self.keepalive = keepalive;
        sent
    }

    /// Returns the next complete message if one has arrived, `Ok(None)` if not yet. Answers
    /// pings, sends due keep-alives, enforces the idle timeout. Does not wait: call
    /// [`Driver::poll`] between calls. An error means the connection is finished (reconnect);
    /// [`NetError::WsClosed`] after a clean close handshake.
    pub fn next<'a>(&'a mut self, driver: &'a mut Driver) -> Result<Option<Message<'a>>> {
        self.release(driver)?;
        if self.keepalive.is_some() && self.stats.messages.is_multiple_of(256) {
            self.maybe_keepalive(driver)?;
        }
        loop {
            let data = self.link.data(driver);
            let Some(h) = decode_header(data)? else {
                if !self.link.pump(driver)? {
                    self.maybe_keepalive(driver)?;
                    return Ok(None);
                }
                continue;
            };
            if h.mask.is_some() {
                return Err(NetError::WsProtocol("server frame is masked"));
            }
            let limit = self.max_message_bytes as u64;
            let so_far = self.frag.len() as u64;
            if h.payload_bytes + so_far > limit {
                return Err(NetError::TooLarge {
                    len_bytes: h.payload_bytes + so_far,
                    limit_bytes: limit,
                });
            }
            let total = h.header_bytes + h.payload_bytes as usize;
            if data.len() < total {
                if !self.link.pump(driver)? {
                    self.maybe_keepalive(driver)?;
                    return Ok(None);
                }
                continue;
            }
            let payload = &data[h.header_bytes..total];
            match h.opcode {
                OpCode::Ping => {
                    self.stats.pings_received += 1;
                    let mut buf = [0u8; 125];
                    let n = payload.len();
                    buf[..n].copy_from_slice(payload);
                    self.link.consume(driver, total)?;
                    self.send_frame(driver, true, OpCode::Pong, &buf[..n])?;
                }
                OpCode::Pong => {
                    self.stats.pongs_received += 1;
                    self.link.consume(driver, total)?;
                }
                OpCode::Close => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    self.link.consume(driver, total)?;
                    if !self.close_sent {
                        self.close_sent = true;
                        let echo = code.unwrap_or(1000).to_be_bytes();
                        let _ = self.send_frame(driver, true, OpCode::Close, &echo);
                        let _ = driver.poll(Duration::ZERO);
                    }
                    return Err(NetError::WsClosed(code));
                }
                OpCode::Text | OpCode::Binary => {
                    if self.frag_opcode.is_some() {
                        return Err(NetError::WsProtocol(
                            "new data frame inside a fragmented message",
                        ));
                    }
                    if h.fin {
                        self.held = Held::Link(total);
                        self.stats.messages += 1;
                        let data = self.link.data(driver);
                        return message(h.opcode, &data[h.header_bytes..total]).map(Some);
                    }
                    self.frag.extend_from_slice(payload);
                    self.frag_opcode = Some(h.opcode);
                    self.link.consume(driver, total)?;
                }
                OpCode::Continuation => {
                    let Some(op) = self.frag_opcode else {
                        return Err(NetError::WsProtocol(
                            "continuation without a started message",
                        ));
                    };
                    self.frag.extend_from_slice(payload);
                    self.link.consume(driver, total)?;
                    if h.fin {
                        self.held = Held::Frag;
                        self.stats.messages += 1;
                        return message(op, &self.frag).map(Some);
                    }
                }
            }
        }
    }
}

fn message(op: OpCode, payload: &[u8]) -> Result<Message<'_>> {
    if op == OpCode::Text {
        std::str::from_utf8(payload)
            .map(Message::Text)
            .map_err(|_| NetError::WsProtocol("text message is not valid UTF-8"))
    } else {
        Ok(Message::Binary(payload))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accept_key_matches_rfc6455_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn length_encodings_round_trip() {
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 1 << 20] {
            let payload = vec![0xA5u8; len];
            let mut out = Vec::new();
            encode_frame(&mut out, true, OpCode::Binary, &payload, Some([1, 2, 3, 4]));
            let h = decode_header(&out).unwrap().unwrap();
            assert_eq!(h.payload_bytes, len as u64);
            assert_eq!(h.header_bytes + len, out.len());
            let mut body = out[h.header_bytes..].to_vec();
            apply_mask(&mut body, h.mask.unwrap());
            assert_eq!(body, payload);
            // Every strict prefix of the header is "need more".
            for cut in 0..h.header_bytes {
                assert_eq!(decode_header(&out[..cut]).unwrap(), None);
            }
        }
    }

    #[test]
    fn protocol_violations_are_errors() {
        let cases: [&[u8]; 5] = [
            &[0xC1, 0x00],                           // RSV1 without an extension
            &[0x83, 0x00],                           // reserved opcode
            &[0x89, 126, 0, 126],                    // control frame over 125 bytes
            &[0x09, 0x00],                           // fragmented control frame
            &[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0], // 64-bit length with the top bit set
        ];
        for c in cases {
            assert!(
                matches!(decode_header(c), Err(NetError::WsProtocol(_))),
                "{c:?}"
            );
        }
    }

    #[test]
    fn handshake_response_checks() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(
            parse_handshake_response(good.as_bytes(), key).unwrap(),
            Some(good.len())
        );
        assert_eq!(
            parse_handshake_response(&good.as_bytes()[..40], key).unwrap(),
            None
        );
        let bad_accept = good.replace("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "AAAA");
        assert!(parse_handshake_response(bad_accept.as_bytes(), key).is_err());
        let not_101 = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_handshake_response(not_101.as_bytes(), key).is_err());
        assert!(parse_handshake_response(b"\x00\x01garbage\r\n\r\n", key).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_header(&bytes);
        }

        #[test]
        fn frames_round_trip(
            payload in proptest::collection::vec(any::<u8>(), 0..2_000),
            fin in any::<bool>(),
            binary in any::<bool>(),
            mask in proptest::option::of(any::<[u8; 4]>()),
        ) {
            let op = if binary { OpCode::Binary } else { OpCode::Text };
            let mut out = Vec::new();
            encode_frame(&mut out, fin, op, &payload, mask);
            let h = decode_header(&out).unwrap().unwrap();
            prop_assert_eq!(h.fin, fin);
            prop_assert_eq!(h.opcode, op);
            prop_assert_eq!(h.mask, mask);
            let mut body = out[h.header_bytes..].to_vec();
            if let Some(m) = mask {
                apply_mask(&mut body, m);
            }
            prop_assert_eq!(body, payload);
        }
    }
}
