//! A sans-IO HTTP/2 client connection (RFC 9113) written for the order path: frames are written
//! straight into the caller's buffer (the TLS send queue, sealed in place afterwards), the request
//! header block is pre-encoded HPACK ([`hpack`], never-indexed literals: no encoder state), stream
//! ids are ours, and both flow-control windows are respected on send and enforced on receive.
//!
//! Bytes in: [`Conn::recv`] parses complete frames, answers SETTINGS and PING, applies
//! WINDOW_UPDATE / RST_STREAM / GOAWAY, decodes response headers (full HPACK decoder) and queues
//! [`Event`]s. Bytes out: [`Conn::start`], [`Conn::send_request`], [`Conn::ping`] and the
//! control frames [`Conn::recv`] leaves in [`Conn::take_out`]. No I/O, no clock reads.

pub mod hpack;
mod tables;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const PRIORITY: u8 = 2;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PUSH_PROMISE: u8 = 5;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

/// Error codes (RFC 9113 §7).
pub mod code {
    /// Graceful.
    pub const NO_ERROR: u32 = 0;
    /// Protocol violation.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// Flow-control violation.
    pub const FLOW_CONTROL_ERROR: u32 = 3;
    /// Frame too large.
    pub const FRAME_SIZE_ERROR: u32 = 6;
    /// Stream no longer needed.
    pub const CANCEL: u32 = 8;
    /// HPACK failure.
    pub const COMPRESSION_ERROR: u32 = 9;
}

/// The frame header size.
pub const FRAME_HEADER: usize = 9;
const DEFAULT_WINDOW: i64 = 65_535;
const MAX_WINDOW: i64 = (1 << 31) - 1;
/// Our SETTINGS_INITIAL_WINDOW_SIZE (per stream receive window).
pub const OUR_STREAM_WINDOW: u32 = 4 * 1024 * 1024;
/// Our connection receive window (raised from 65 535 by a WINDOW_UPDATE after the preface).
pub const OUR_CONN_WINDOW: u32 = 8 * 1024 * 1024;
/// Our SETTINGS_MAX_FRAME_SIZE (the default; we never announce another).
const OUR_MAX_FRAME: usize = 16_384;
/// Our SETTINGS_HEADER_TABLE_SIZE (the default).
const OUR_HEADER_TABLE: usize = 4096;

/// A connection error: GOAWAY with `code` was queued and the connection is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("http2 connection error {code}: {why}")]
pub struct ConnError {
    /// RFC 9113 error code.
    pub code: u32,
    /// What was wrong.
    pub why: &'static str,
}

fn err(code: u32, why: &'static str) -> ConnError {
    ConnError { code, why }
}

/// Why one request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFailure {
    /// The server reset the stream (RST_STREAM with this code).
    Reset(u32),
    /// GOAWAY said this stream was not processed (id above the last stream id).
    Refused,
    /// No complete response within the request timeout (we sent RST_STREAM CANCEL).
    Timeout,
}

/// What the connection has for the caller.
#[derive(Debug)]
pub enum Event {
    /// A complete response.
    Response {
        /// The caller's tag.
        tag: u64,
        /// `:status`.
        status: u16,
        /// Regular headers (pseudo-headers removed), names lower case.
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        /// Body.
        body: Vec<u8>,
    },
    /// A request that will not complete.
    Failed {
        /// The caller's tag.
        tag: u64,
        /// Why.
        why: StreamFailure,
    },
}

#[derive(Debug)]
struct Stream {
    id: u32,
    tag: u64,
    started: Instant,
    send_window: i64,
    recv_window: i64,
    /// Body bytes not yet sent (flow control), from `pending_off`.
    pending: Vec<u8>,
    pending_off: usize,
    status: Option<u16>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

/// Counters of the frame layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Frames received.
    pub frames_in: u64,
    /// Frames of unknown type skipped (RFC 9113 §4.1: ignored).
    pub unknown_frames: u64,
    /// DATA frames for streams no longer open (counted against the connection window, dropped).
    pub data_for_closed_streams: u64,
    /// PINGs from the server answered.
    pub pings_answered: u64,
    /// PING ACKs received.
    pub pongs: u64,
    /// Times a DATA frame waited for a WINDOW_UPDATE.
    pub send_blocked: u64,
    /// Response headers that were not valid header names or values (skipped).
    pub bad_headers: u64,
}

/// A header block in progress (HEADERS without END_HEADERS, then CONTINUATION).
#[derive(Debug)]
struct Partial {
    stream: u32,
    end_stream: bool,
    block: Vec<u8>,
}

/// The connection state.
#[derive(Debug)]
pub struct Conn {
    peer_max_frame: usize,
    peer_initial_window: i64,
    peer_max_streams: u32,
    send_window: i64,
    recv_window: i64,
    next_id: u32,
    streams: Vec<Stream>,
    decoder: hpack::Decoder,
    partial: Option<Partial>,
    /// Last stream id of a GOAWAY received.
    goaway: Option<u32>,
    error: Option<ConnError>,
    /// Settings frames received (the first one is the server's preface).
    settings_seen: u32,
    events: VecDeque<Event>,
    out: Vec<u8>,
    stats: WireStats,
}

impl Default for Conn {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes a frame header.
#[inline]
pub fn frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let l = (len as u32).to_be_bytes();
    out.extend_from_slice(&[l[1], l[2], l[3], kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Conn {
    /// A fresh connection (write [`Conn::start`] first).
    #[must_use]
    pub fn new() -> Self {
        Conn {
            peer_max_frame: 16_384,
            peer_initial_window: DEFAULT_WINDOW,
            peer_max_streams: u32::MAX,
            send_window: DEFAULT_WINDOW,
            recv_window: DEFAULT_WINDOW,
            next_id: 1,
            streams: Vec::with_capacity(64),
            decoder: hpack::Decoder::new(OUR_HEADER_TABLE),
            partial: None,
            goaway: None,
            error: None,
            settings_seen: 0,
            events: VecDeque::with_capacity(64),
            out: Vec::with_capacity(4096),
            stats: WireStats::default(),
        }
    }

    /// The preface, our SETTINGS (no push, 4 MiB stream windows) and the connection window
    /// raised to [`OUR_CONN_WINDOW`].
    pub fn start(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(PREFACE);
        frame_header(out, 12, SETTINGS, 0, 0);
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&OUR_STREAM_WINDOW.to_be_bytes());
        let raise = OUR_CONN_WINDOW - DEFAULT_WINDOW as u32;
        frame_header(out, 4, WINDOW_UPDATE, 0, 0);
        out.extend_from_slice(&raise.to_be_bytes());
        self.recv_window = i64::from(OUR_CONN_WINDOW);
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> WireStats {
        self.stats
    }

    /// Streams open.
    #[must_use]
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// The connection error, if one happened.
    #[must_use]
    pub fn error(&self) -> Option<ConnError> {
        self.error
    }

    /// Whether GOAWAY was received (no new streams).
    #[must_use]
    pub fn going_away(&self) -> bool {
        self.goaway.is_some()
    }

    /// Whether the server's SETTINGS arrived.
    #[must_use]
    pub fn peer_settings_seen(&self) -> bool {
        self.settings_seen > 0
    }

    /// Why a new request cannot be opened now, if it cannot.
    pub fn check_open(&self) -> Result<(), &'static str> {
        if self.error.is_some() {
            return Err("connection error");
        }
        if self.goaway.is_some() {
            return Err("GOAWAY received");
        }
        if self.next_id > MAX_WINDOW as u32 {
            return Err("stream ids exhausted");
        }
        if self.streams.len() >= self.peer_max_streams as usize {
            return Err("no stream available (max concurrent streams)");
        }
        Ok(())
    }

    /// Opens a stream: HEADERS carrying the block `write_block` appends (pre-encoded HPACK), then
    /// as much of `body` as the windows allow in DATA frames (the rest goes out as WINDOW_UPDATEs
    /// arrive). Returns the stream id. Writes nothing when [`Conn::check_open`] fails.
    ///
    /// Control frames already queued for [`Conn::take_out`] are moved into `out` first: a
    /// SETTINGS ACK must reach the server before a stream it opens, or a server that sizes new
    /// streams by its acknowledged settings (the `h2` crate) and the client that already uses
    /// the announced ones disagree on the stream's window and wait for each other.
    pub fn send_request(
        &mut self,
        out: &mut Vec<u8>,
        tag: u64,
        write_block: impl FnOnce(&mut Vec<u8>),
        body: &[u8],
        now: Instant,
    ) -> Result<u32, &'static str> {
        self.check_open()?;
        out.append(&mut self.out);
        let id = self.next_id;
        self.next_id += 2;
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER]);
        write_block(out);
        let block_len = out.len() - start - FRAME_HEADER;
        let flags = if body.is_empty() { END_STREAM } else { 0 };
        if block_len <= self.peer_max_frame {
            let l = (block_len as u32).to_be_bytes();
            out[start..start + FRAME_HEADER].copy_from_slice(&[
                l[1],
                l[2],
                l[3],
                HEADERS,
                flags | END_HEADERS,
                0,
                0,
                0,
                0,
            ]);
            out[start + 5..start + 9].copy_from_slice(&id.to_be_bytes());
        } else {
            let block = out.split_off(start + FRAME_HEADER);
            out.truncate(start);
            self.write_fragmented_headers(out, id, flags, &block);
        }
        let mut s = Stream {
            id,
            tag,
            started: now,
            send_window: self.peer_initial_window,
            recv_window: i64::from(OUR_STREAM_WINDOW),
            pending: Vec::new(),
            pending_off: 0,
            status: None,
            headers: Vec::new(),
            body: Vec::new(),
        };
        let sent = self.write_data(out, &mut s, body);
        if sent < body.len() {
            self.stats.send_blocked += 1;
            s.pending.extend_from_slice(&body[sent..]);
        }
        self.streams.push(s);
        Ok(id)
    }

    fn write_fragmented_headers(&self, out: &mut Vec<u8>, id: u32, flags: u8, block: &[u8]) {
        let mut chunks = block.chunks(self.peer_max_frame).peekable();
        let mut kind = HEADERS;
        let mut f = flags;
        while let Some(c) = chunks.next() {
            let last = chunks.peek().is_none();
            frame_header(
                out,
                c.len(),
                kind,
                f | if last { END_HEADERS } else { 0 },
                id,
            );
            out.extend_from_slice(c);
            kind = CONTINUATION;
            f = 0;
        }
    }

    /// Writes DATA frames for as much of `data` as the windows allow; the last one carries
    /// END_STREAM when all of the body (pending included) is out. Returns the bytes sent.
    fn write_data(&mut self, out: &mut Vec<u8>, s: &mut Stream, data: &[u8]) -> usize {
        let mut sent = 0;
        while sent < data.len() {
            let room = self.send_window.min(s.send_window).max(0) as usize;
            let n = (data.len() - sent).min(room).min(self.peer_max_frame);
            if n == 0 {
                break;
            }
            let last = sent + n == data.len();
            frame_header(out, n, DATA, if last { END_STREAM } else { 0 }, s.id);
            out.extend_from_slice(&data[sent..sent + n]);
            sent += n;
            self.send_window -= n as i64;
            s.send_window -= n as i64;
        }
        sent
    }

    /// Sends bodies that were waiting for window, into [`Conn::take_out`]'s buffer.
    fn flush_pending(&mut self) {
        let mut out = std::mem::take(&mut self.out);
        let mut streams = std::mem::take(&mut self.streams);
        for s in streams
            .iter_mut()
            .filter(|s| s.pending_off < s.pending.len())
        {
            let pending = std::mem::take(&mut s.pending);
            let sent = self.write_data(&mut out, s, &pending[s.pending_off..]);
            s.pending = pending;
            s.pending_off += sent;
            if s.pending_off == s.pending.len() {
                s.pending = Vec::new();
                s.pending_off = 0;
            }
        }
        self.streams = streams;
        self.out = out;
    }

    /// A PING with `payload`.
    pub fn ping(&mut self, out: &mut Vec<u8>, payload: [u8; 8]) {
        frame_header(out, 8, PING, 0, 0);
        out.extend_from_slice(&payload);
    }

    /// Control frames (SETTINGS ACK, PING ACK, WINDOW_UPDATE, RST_STREAM, GOAWAY) and window-
    /// blocked DATA queued by [`Conn::recv`] and [`Conn::expire`]: send them, then clear.
    pub fn take_out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// The next event.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Fails every stream older than `timeout` (RST_STREAM CANCEL queued).
    pub fn expire(&mut self, now: Instant, timeout: Duration) {
        let mut i = 0;
        while i < self.streams.len() {
            if now.duration_since(self.streams[i].started) > timeout {
                let s = self.streams.swap_remove(i);
                self.rst(s.id, code::CANCEL);
                self.events.push_back(Event::Failed {
                    tag: s.tag,
                    why: StreamFailure::Timeout,
                });
            } else {
                i += 1;
            }
        }
    }

    /// Tags of every open stream, removed (the connection died under them).
    pub fn drain_streams(&mut self) -> impl Iterator<Item = u64> + '_ {
        self.streams.drain(..).map(|s| s.tag)
    }

    fn rst(&mut self, id: u32, error_code: u32) {
        frame_header(&mut self.out, 4, RST_STREAM, 0, id);
        self.out.extend_from_slice(&error_code.to_be_bytes());
    }

    fn fail(&mut self, e: ConnError) -> ConnError {
        if self.error.is_none() {
            let last = self.next_id.saturating_sub(2) & !1;
            frame_header(&mut self.out, 8, GOAWAY, 0, 0);
            self.out.extend_from_slice(&last.to_be_bytes());
            self.out.extend_from_slice(&e.code.to_be_bytes());
            self.error = Some(e);
        }
        e
    }

    /// Parses every complete frame at the start of `buf`; returns the bytes consumed (the rest
    /// is an incomplete frame). On a connection error GOAWAY is queued in [`Conn::take_out`] and
    /// the connection must be closed.
    pub fn recv(&mut self, buf: &[u8]) -> Result<usize, ConnError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut pos = 0;
        while buf.len() - pos >= FRAME_HEADER {
            let h = &buf[pos..pos + FRAME_HEADER];
            let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
            if len > OUR_MAX_FRAME {
                return Err(self.fail(err(code::FRAME_SIZE_ERROR, "frame above 16 KiB")));
            }
            if buf.len() - pos < FRAME_HEADER + len {
                break;
            }
            let (kind, flags, stream) = (h[3], h[4], be32(&h[5..9]) & 0x7fff_ffff);
            let payload = &buf[pos + FRAME_HEADER..pos + FRAME_HEADER + len];
            pos += FRAME_HEADER + len;
            self.stats.frames_in += 1;
            if let Err(e) = self.frame(kind, flags, stream, payload) {
                return Err(self.fail(e));
            }
        }
        Ok(pos)
    }

    fn frame(&mut self, kind: u8, flags: u8, stream: u32, p: &[u8]) -> Result<(), ConnError> {
        if self.partial.is_some() && kind != CONTINUATION {
            return Err(err(code::PROTOCOL_ERROR, "frame inside a header block"));
        }
        match kind {
            DATA => self.on_data(flags, stream, p),
            HEADERS => self.on_headers(flags, stream, p),
            CONTINUATION => self.on_continuation(flags, stream, p),
            PRIORITY => Ok(()),
            RST_STREAM => self.on_rst(stream, p),
            SETTINGS => self.on_settings(flags, stream, p),
            PUSH_PROMISE => Err(err(code::PROTOCOL_ERROR, "PUSH_PROMISE with push disabled")),
            PING => self.on_ping(flags, stream, p),
            GOAWAY => self.on_goaway(stream, p),
            WINDOW_UPDATE => self.on_window_update(stream, p),
            _ => {
                self.stats.unknown_frames += 1;
                Ok(())
            }
        }
    }

    /// The payload without padding (PADDED flag).
    fn unpad(flags: u8, p: &[u8]) -> Result<&[u8], ConnError> {
        if flags & PADDED == 0 {
            return Ok(p);
        }
        let pad = usize::from(*p.first().ok_or(err(code::PROTOCOL_ERROR, "empty padded"))?);
        if pad + 1 > p.len() {
            return Err(err(code::PROTOCOL_ERROR, "padding longer than the frame"));
        }
        Ok(&p[1..p.len() - pad])
    }

    fn stream_index(&self, id: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }

    fn on_data(&mut self, flags: u8, stream: u32, p: &[u8]) -> Result<(), ConnError> {
        if stream == 0 {
            return Err(err(code::PROTOCOL_ERROR, "DATA on stream 0"));
        }
        let len = p.len() as i64;
        self.recv_window -= len;
        if self.recv_window < 0 {
            return Err(err(
                code::FLOW_CONTROL_ERROR,
                "DATA past the connection window",
            ));
        }
        if self.recv_window <= i64::from(OUR_CONN_WINDOW / 2) {
            let inc = i64::from(OUR_CONN_WINDOW) - self.recv_window;
            self.window_update(0, inc as u32);
            self.recv_window += inc;
        }
        let data = Self::unpad(flags, p)?;
        let Some(i) = self.stream_index(stream) else {
            self.stats.data_for_closed_streams += 1;
            return Ok(());
        };
        let s = &mut self.streams[i];
        s.recv_window -= len;
        if s.recv_window < 0 {
            let s = self.streams.swap_remove(i);
            self.rst(s.id, code::FLOW_CONTROL_ERROR);
            self.events.push_back(Event::Failed {
                tag: s.tag,
                why: StreamFailure::Reset(code::FLOW_CONTROL_ERROR),
            });
            return Ok(());
        }
        if s.status.is_none() {
            return Err(err(code::PROTOCOL_ERROR, "DATA before HEADERS"));
        }
        s.body.extend_from_slice(data);
        if flags & END_STREAM != 0 {
            self.complete(i);
        } else if s.recv_window <= i64::from(OUR_STREAM_WINDOW / 2) {
            let inc = i64::from(OUR_STREAM_WINDOW) - s.recv_window;
            s.recv_window += inc;
            let id = s.id;
            self.window_update(id, inc as u32);
        }
        Ok(())
    }

    fn window_update(&mut self, stream: u32, inc: u32) {
        frame_header(&mut self.out, 4, WINDOW_UPDATE, 0, stream);
        self.out.extend_from_slice(&inc.to_be_bytes());
    }

    fn complete(&mut self, i: usize) {
        let s = self.streams.swap_remove(i);
        self.events.push_back(Event::Response {
            tag: s.tag,
            status: s.status.unwrap_or(0),
            headers: s.headers,
            body: s.body,
        });
    }

    fn on_headers(&mut self, flags: u8, stream: u32, p: &[u8]) -> Result<(), ConnError> {
        if stream == 0 || stream.is_multiple_of(2) {
            return Err(err(
                code::PROTOCOL_ERROR,
                "HEADERS on a stream we did not open",
            ));
        }
        let mut frag = Self::unpad(flags, p)?;
        if flags & PRIORITY_FLAG != 0 {
            frag = frag
                .get(5..)
                .ok_or(err(code::PROTOCOL_ERROR, "short priority"))?;
        }
        let end_stream = flags & END_STREAM != 0;
        if flags & END_HEADERS != 0 {
            return self.on_block(stream, end_stream, frag);
        }
        self.partial = Some(Partial {
            stream,
            end_stream,
            block: frag.to_vec(),
        });
        Ok(())
    }

    fn on_continuation(&mut self, flags: u8, stream: u32, p: &[u8]) -> Result<(), ConnError> {
        let Some(mut part) = self.partial.take() else {
            return Err(err(code::PROTOCOL_ERROR, "CONTINUATION without HEADERS"));
        };
        if part.stream != stream {
            return Err(err(code::PROTOCOL_ERROR, "CONTINUATION on another stream"));
        }
        part.block.extend_from_slice(p);
        if part.block.len() > 256 * 1024 {
            return Err(err(code::PROTOCOL_ERROR, "header block above 256 KiB"));
        }
        if flags & END_HEADERS != 0 {
            return self.on_block(stream, part.end_stream, &part.block);
        }
        self.partial = Some(part);
        Ok(())
    }

    /// A complete header block: decoded always (the dynamic table must stay in step), applied
    /// to the stream if it is still open.
    fn on_block(&mut self, stream: u32, end_stream: bool, block: &[u8]) -> Result<(), ConnError> {
        let mut status = None;
        let mut headers = Vec::new();
        let mut bad = 0u64;
        self.decoder
            .decode(block, |n, v| {
                if n == b":status" {
                    status = std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<u16>().ok());
                } else if n.first() == Some(&b':') {
                    bad += 1;
                } else {
                    headers.push((n.to_vec(), v.to_vec()));
                }
            })
            .map_err(|_| err(code::COMPRESSION_ERROR, "bad header block"))?;
        self.stats.bad_headers += bad;
        let Some(i) = self.stream_index(stream) else {
            return Ok(());
        };
        let s = &mut self.streams[i];
        match (s.status, status) {
            // Informational (1xx): another HEADERS follows.
            (None, Some(code)) if code < 200 => return Ok(()),
            (None, Some(code)) => {
                s.status = Some(code);
                s.headers = headers;
            }
            // Trailers.
            (Some(_), None) if end_stream => s.headers.extend(headers),
            _ => {
                let s = self.streams.swap_remove(i);
                self.rst(s.id, code::PROTOCOL_ERROR);
                self.events.push_back(Event::Failed {
                    tag: s.tag,
                    why: StreamFailure::Reset(code::PROTOCOL_ERROR),
                });
                return Ok(());
            }
        }
        if end_stream {
            self.complete(i);
        }
        Ok(())
    }

    fn on_rst(&mut self, stream: u32, p: &[u8]) -> Result<(), ConnError> {
        if stream == 0 || p.len() != 4 {
            return Err(err(code::PROTOCOL_ERROR, "bad RST_STREAM"));
        }
        if let Some(i) = self.stream_index(stream) {
            let s = self.streams.swap_remove(i);
            self.events.push_back(Event::Failed {
                tag: s.tag,
                why: StreamFailure::Reset(be32(p)),
            });
        }
        Ok(())
    }

    fn on_settings(&mut self, flags: u8, stream: u32, p: &[u8]) -> Result<(), ConnError> {
        if stream != 0 || !p.len().is_multiple_of(6) || (flags & ACK != 0 && !p.is_empty()) {
            return Err(err(code::FRAME_SIZE_ERROR, "bad SETTINGS"));
        }
        if flags & ACK != 0 {
            return Ok(());
        }
        for e in p.chunks_exact(6) {
            let (id, v) = (u16::from_be_bytes([e[0], e[1]]), be32(&e[2..6]));
            match id {
                3 => self.peer_max_streams = v,
                4 => {
                    if i64::from(v) > MAX_WINDOW {
                        return Err(err(code::FLOW_CONTROL_ERROR, "initial window above 2^31-1"));
                    }
                    let delta = i64::from(v) - self.peer_initial_window;
                    self.peer_initial_window = i64::from(v);
                    for s in &mut self.streams {
                        s.send_window += delta;
                    }
                }
                5 => {
                    if !(16_384..=16_777_215).contains(&v) {
                        return Err(err(code::PROTOCOL_ERROR, "bad max frame size"));
                    }
                    self.peer_max_frame = v as usize;
                }
                // Header table size (we never index), push (a server may not enable it), header
                // list size, unknown: nothing to do.
                _ => {}
            }
        }
        self.settings_seen += 1;
        frame_header(&mut self.out, 0, SETTINGS, ACK, 0);
        self.flush_pending();
        Ok(())
    }

    fn on_ping(&mut self, flags: u8, stream: u32, p: &[u8]) -> Result<(), ConnError> {
        if stream != 0 || p.len() != 8 {
            return Err(err(code::FRAME_SIZE_ERROR, "bad PING"));
        }
        if flags & ACK != 0 {
            self.stats.pongs += 1;
        } else {
            frame_header(&mut self.out, 8, PING, ACK, 0);
            self.out.extend_from_slice(p);
            self.stats.pings_answered += 1;
        }
        Ok(())
    }

    fn on_goaway(&mut self, stream: u32, p: &[u8]) -> Result<(), ConnError> {
        if stream != 0 || p.len() < 8 {
            return Err(err(code::FRAME_SIZE_ERROR, "bad GOAWAY"));
        }
        let last = be32(p) & 0x7fff_ffff;
        self.goaway = Some(self.goaway.map_or(last, |g| g.min(last)));
        let mut i = 0;
        while i < self.streams.len() {
            if self.streams[i].id > last {
                let s = self.streams.swap_remove(i);
                self.events.push_back(Event::Failed {
                    tag: s.tag,
                    why: StreamFailure::Refused,
                });
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    fn on_window_update(&mut self, stream: u32, p: &[u8]) -> Result<(), ConnError> {
        if p.len() != 4 {
            return Err(err(code::FRAME_SIZE_ERROR, "bad WINDOW_UPDATE"));
        }
        let inc = i64::from(be32(p) & 0x7fff_ffff);
        if stream == 0 {
            if inc == 0 {
                return Err(err(code::PROTOCOL_ERROR, "WINDOW_UPDATE of 0"));
            }
            self.send_window += inc;
            if self.send_window > MAX_WINDOW {
                return Err(err(
                    code::FLOW_CONTROL_ERROR,
                    "connection window above 2^31-1",
                ));
            }
        } else if let Some(i) = self.stream_index(stream) {
            let s = &mut self.streams[i];
            s.send_window += inc;
            if inc == 0 || s.send_window > MAX_WINDOW {
                let s = self.streams.swap_remove(i);
                let c = if inc == 0 {
                    code::PROTOCOL_ERROR
                } else {
                    code::FLOW_CONTROL_ERROR
                };
                self.rst(s.id, c);
                self.events.push_back(Event::Failed {
                    tag: s.tag,
                    why: StreamFailure::Reset(c),
                });
            }
        }
        self.flush_pending();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        frame_header(&mut v, payload.len(), kind, flags, stream);
        v.extend_from_slice(payload);
        v
    }

    fn open(conn: &mut Conn, n: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        conn.start(&mut out);
        conn.recv(&frame(SETTINGS, 0, 0, &[])).unwrap();
        for tag in 0..n {
            conn.send_request(&mut out, tag, |b| b.push(0x83), body, Instant::now())
                .unwrap();
        }
        out
    }

    #[test]
    fn stream_ids_are_odd_and_increasing_and_goaway_refuses_the_unprocessed() {
        let mut c = Conn::new();
        let out = open(&mut c, 3, b"");
        // HEADERS frames of streams 1, 3, 5 after the preface, SETTINGS, WINDOW_UPDATE and
        // the ACK of the server's SETTINGS.
        let mut pos = PREFACE.len() + 9 + 12 + 9 + 4;
        assert_eq!(out[pos + 3], SETTINGS);
        assert_eq!(out[pos + 4], ACK);
        pos += 9;
        let mut ids = Vec::new();
        while pos < out.len() {
            ids.push(be32(&out[pos + 5..pos + 9]));
            assert_eq!(out[pos + 3], HEADERS);
            pos += 9 + usize::from(out[pos + 2]);
        }
        assert_eq!(ids, [1, 3, 5]);
        let mut goaway = 3u32.to_be_bytes().to_vec();
        goaway.extend_from_slice(&0u32.to_be_bytes());
        c.recv(&frame(GOAWAY, 0, 0, &goaway)).unwrap();
        match c.next_event() {
            Some(Event::Failed { tag: 2, why }) => assert_eq!(why, StreamFailure::Refused),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.open_streams(), 2, "streams 1 and 3 may still answer");
        assert!(c.check_open().is_err(), "no new streams after GOAWAY");
    }

    #[test]
    fn a_body_waits_for_window_updates() {
        let mut c = Conn::new();
        let mut out = Vec::new();
        c.start(&mut out);
        // Server: initial stream window 10 bytes.
        let mut s = 4u16.to_be_bytes().to_vec();
        s.extend_from_slice(&10u32.to_be_bytes());
        c.recv(&frame(SETTINGS, 0, 0, &s)).unwrap();
        out.clear();
        c.send_request(&mut out, 7, |b| b.push(0x83), &[b'a'; 25], Instant::now())
            .unwrap();
        // The SETTINGS ACK goes before the stream it governs; then HEADERS (10) + DATA with
        // 10 bytes, no END_STREAM.
        let ack = frame(SETTINGS, ACK, 0, &[]);
        assert_eq!(out[..ack.len()], ack[..]);
        let out = &out[ack.len()..];
        assert_eq!(out.len(), 10 + 9 + 10);
        assert_eq!(out[10 + 4] & END_STREAM, 0);
        assert!(c.take_out().is_empty(), "the ACK is sent once");
        c.take_out().clear();
        c.recv(&frame(WINDOW_UPDATE, 0, 1, &100u32.to_be_bytes()))
            .unwrap();
        let rest = c.take_out().clone();
        assert_eq!(rest.len(), 9 + 15);
        assert_eq!(rest[4] & END_STREAM, END_STREAM);
    }

    #[test]
    fn ping_settings_and_rst_are_answered_and_applied() {
        let mut c = Conn::new();
        open(&mut c, 1, b"");
        c.take_out().clear();
        c.recv(&frame(PING, 0, 0, b"abcdefgh")).unwrap();
        assert_eq!(c.take_out()[..], frame(PING, ACK, 0, b"abcdefgh")[..]);
        c.recv(&frame(RST_STREAM, 0, 1, &code::CANCEL.to_be_bytes()))
            .unwrap();
        assert!(matches!(
            c.next_event(),
            Some(Event::Failed {
                tag: 0,
                why: StreamFailure::Reset(code::CANCEL)
            })
        ));
    }

    #[test]
    fn protocol_violations_end_the_connection_with_goaway() {
        let cases: [(Vec<u8>, u32); 5] = [
            (
                frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2]),
                code::PROTOCOL_ERROR,
            ),
            (
                {
                    let mut f = frame(DATA, 0, 1, &[]);
                    f[0] = 1; // 65 536 + 0 bytes announced
                    f
                },
                code::FRAME_SIZE_ERROR,
            ),
            (
                frame(WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()),
                code::FLOW_CONTROL_ERROR,
            ),
            (
                frame(HEADERS, END_HEADERS, 1, &[0x80]),
                code::COMPRESSION_ERROR,
            ),
            (
                frame(CONTINUATION, END_HEADERS, 1, &[0x88]),
                code::PROTOCOL_ERROR,
            ),
        ];
        for (bytes, want) in cases {
            let mut c = Conn::new();
            open(&mut c, 1, b"");
            c.take_out().clear();
            let e = c.recv(&bytes).unwrap_err();
            assert_eq!(e.code, want, "{e}");
            assert_eq!(c.take_out()[3], GOAWAY);
            assert!(c.check_open().is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut c = Conn::new();
            open(&mut c, 2, b"xyz");
            let len = (rng % 200) as usize;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                bytes.push(rng as u8);
            }
            // Plausible headers for half the cases so that the frame bodies get parsed.
            if rng.is_multiple_of(2) && bytes.len() > 9 {
                bytes[0] = 0;
                bytes[5..9].copy_from_slice(&1u32.to_be_bytes());
                bytes[1] = 0;
                bytes[2] = (bytes.len() - 9) as u8;
            }
            let _ = c.recv(&bytes);
        }
    }
}
