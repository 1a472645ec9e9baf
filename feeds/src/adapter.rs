//! The venue adapter framework: what every venue implements, and what a collector hands it.
//!
//! A collector (the io_uring/TLS/WebSocket process, out of this crate) drives one
//! [`VenueAdapter`] per connection:
//!
//! 1. it connects to [`VenueAdapter::endpoint`] and sends [`VenueAdapter::subscribe`]'s frames;
//! 2. for every complete WebSocket message it calls [`VenueAdapter::on_frame`] with the bytes,
//!    the receive timestamp and a [`Ctx`] (instrument resolver, record sink, counters, action
//!    queue); the adapter emits bus [`Record`]s into the sink without allocating;
//! 3. it performs the [`Action`]s the adapter queues (REST snapshot fetch, resubscribe, reply
//!    frames) and feeds REST bodies back through [`VenueAdapter::on_rest`];
//! 4. it sends [`VenueAdapter::keep_alive`] frames on their interval;
//! 5. after a reconnect it calls [`VenueAdapter::on_reconnect`] so continuity state restarts.
//!
//! Instrument ids are resolved through [`InstrumentResolver`], which the collector backs with
//! `Publisher::register_instrument` at subscribe time (cold path); the per-message lookup is a
//! byte comparison over a handful of entries.

use crate::venues::streams::{Selectable, default_streams};
use ringbolt_bus::{Body, FeedState, Record, Venue};
use thiserror::Error;

use crate::counters::Counters;
pub use crate::counters::StreamDesc;
use crate::decimal::DecimalError;
use crate::json::JsonError;

/// Why a frame could not be turned into records. The frame is counted and skipped.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    /// The frame is not well-formed JSON (or is truncated).
    #[error(transparent)]
    Json(#[from] JsonError),
    /// A numeric field is not an exact decimal at the record's scale.
    #[error("field `{field}`: {error}")]
    Decimal {
        /// The field's name.
        field: &'static str,
        /// The conversion error.
        error: DecimalError,
    },
    /// A field the message kind requires is absent.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A field holds a value outside its domain (e.g. an unknown side).
    #[error("invalid value in field `{0}`")]
    Invalid(&'static str),
    /// A well-formed message of a type this adapter does not know.
    #[error("unknown message type")]
    Unknown,
    /// The adapter does not handle this REST response kind.
    #[error("unsupported REST response")]
    UnsupportedRest,
}

/// What handling a frame (or a REST body) returns.
pub type Parsed = Result<(), ParseError>;

/// Attaches a field name to a decimal conversion error.
pub(crate) trait DecimalField<T> {
    /// Maps a [`DecimalError`] to [`ParseError::Decimal`] for `field`.
    fn field(self, field: &'static str) -> Result<T, ParseError>;
}

impl<T> DecimalField<T> for Result<T, DecimalError> {
    #[inline]
    fn field(self, field: &'static str) -> Result<T, ParseError> {
        self.map_err(|error| ParseError::Decimal { field, error })
    }
}

/// Receives the records an adapter produces (the collector's implementation publishes to a
/// `RingWriter`; tests collect into a `Vec`).
pub trait RecordSink {
    /// Takes one record.
    fn emit(&mut self, record: &Record);

    /// Takes a batch of records, in order (the same as [`RecordSink::emit`] on each; a sink
    /// that stores records may copy the slice at once).
    #[inline]
    fn emit_all(&mut self, records: &[Record]) {
        for r in records {
            self.emit(r);
        }
    }
}

impl RecordSink for Vec<Record> {
    fn emit(&mut self, record: &Record) {
        self.push(*record);
    }

    fn emit_all(&mut self, records: &[Record]) {
        self.extend_from_slice(records);
    }
}

/// A fixed-capacity record buffer that never grows after construction: records beyond the
/// capacity are counted in [`RecordBuf::overflowed`] and dropped.
#[derive(Debug)]
pub struct RecordBuf {
    records: Vec<Record>,
    overflowed: u64,
}

impl RecordBuf {
    /// A buffer holding at most `capacity` records (allocated once, here).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        RecordBuf {
            records: Vec::with_capacity(capacity),
            overflowed: 0,
        }
    }

    /// The records emitted since the last [`RecordBuf::clear`].
    #[must_use]
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Records dropped because the buffer was full.
    #[must_use]
    pub const fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Empties the buffer (capacity kept).
    pub fn clear(&mut self) {
        self.records.clear();
    }
}

impl RecordSink for RecordBuf {
    #[inline]
    fn emit(&mut self, record: &Record) {
        if self.records.len() < self.records.capacity() {
            self.records.push(*record);
        } else {
            self.overflowed += 1;
        }
    }

    #[inline]
    fn emit_all(&mut self, records: &[Record]) {
        let room = self.records.capacity() - self.records.len();
        let (fit, dropped) = records.split_at(records.len().min(room));
        self.records.extend_from_slice(fit);
        self.overflowed += dropped.len() as u64;
    }
}

/// Maps a venue symbol (or Polymarket token id) to a bus instrument id.
pub trait InstrumentResolver {
    /// The id of `symbol` on `venue`, `None` when the instrument is not subscribed (the event
    /// is then skipped and counted).
    fn resolve(&mut self, venue: Venue, symbol: &[u8]) -> Option<u32>;
}

/// One registered instrument of an [`InstrumentTable`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentEntry {
    /// Venue.
    pub venue: Venue,
    /// The symbol bytes as they appear in frames (e.g. `BTCUSDT`, a Polymarket token id).
    pub symbol: Box<[u8]>,
    /// The registered name (for Polymarket `<slug>/<up|down>/<token_id>`).
    pub name: String,
    /// Bus instrument id.
    pub id: u32,
}

/// A small instrument table: entries are registered on the cold path; lookups compare bytes.
///
/// With `auto_register` (offline tools), unknown symbols are added with consecutive ids and
/// their own text as name; without it, unknown symbols resolve to `None`.
#[derive(Clone, Debug, Default)]
pub struct InstrumentTable {
    entries: Vec<InstrumentEntry>,
    auto_register: bool,
}

impl InstrumentTable {
    /// An empty table; `auto_register` adds unknown symbols on first sight.
    #[must_use]
    pub fn new(auto_register: bool) -> Self {
        InstrumentTable {
            entries: Vec::new(),
            auto_register,
        }
    }

    /// Registers `symbol` under `name` with bus id `id` (cold path; replaces an older entry).
    pub fn register(&mut self, venue: Venue, symbol: &[u8], name: &str, id: u32) {
        self.entries
            .retain(|e| !(e.venue == venue && *e.symbol == *symbol));
        self.entries.push(InstrumentEntry {
            venue,
            symbol: symbol.into(),
            name: name.to_owned(),
            id,
        });
    }

    /// Removes `symbol` (after unsubscribing it; cold path). Returns its bus id.
    pub fn remove(&mut self, venue: Venue, symbol: &[u8]) -> Option<u32> {
        let i = self
            .entries
            .iter()
            .position(|e| e.venue == venue && *e.symbol == *symbol)?;
        Some(self.entries.swap_remove(i).id)
    }

    /// Entries registered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry with bus id `id`.
    #[must_use]
    pub fn by_id(&self, id: u32) -> Option<&InstrumentEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// All entries.
    #[must_use]
    pub fn entries(&self) -> &[InstrumentEntry] {
        &self.entries
    }
}

impl InstrumentResolver for InstrumentTable {
    #[inline]
    fn resolve(&mut self, venue: Venue, symbol: &[u8]) -> Option<u32> {
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.venue == venue && *e.symbol == *symbol)
        {
            return Some(e.id);
        }
        if !self.auto_register {
            return None;
        }
        let id = u32::try_from(self.entries.len()).ok()?;
        let name = String::from_utf8_lossy(symbol).into_owned();
        self.register(venue, symbol, &name, id);
        Some(id)
    }
}

/// A frame to send on the WebSocket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// A text frame.
    Text(Vec<u8>),
    /// A text frame of constant bytes: sent without an allocation (answers to venue heartbeats
    /// on a live ring thread).
    StaticText(&'static [u8]),
    /// A WebSocket ping control frame.
    Ping,
}

impl Outgoing {
    /// The text frame's bytes; `None` for a ping.
    #[must_use]
    pub fn text(&self) -> Option<&[u8]> {
        match self {
            Outgoing::Text(t) => Some(t),
            Outgoing::StaticText(t) => Some(t),
            Outgoing::Ping => None,
        }
    }
}

/// How a connection is kept alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    /// Nothing to send; the server pings and the transport answers with pongs.
    ServerPings,
    /// Send this text frame every `interval_ns` (Polymarket `PING`, OKX `ping`, Bybit
    /// `{"op":"ping"}`).
    Text {
        /// The frame.
        payload: &'static [u8],
        /// Interval, ns.
        interval_ns: u64,
    },
    /// Send a WebSocket ping control frame every `interval_ns`.
    WsPing {
        /// Interval, ns.
        interval_ns: u64,
    },
}

impl KeepAlive {
    /// Send the text frame `payload` every `secs` seconds.
    #[must_use]
    pub const fn text(payload: &'static [u8], secs: u64) -> Self {
        KeepAlive::Text {
            payload,
            interval_ns: secs * 1_000_000_000,
        }
    }

    /// Send a WebSocket ping every `secs` seconds.
    #[must_use]
    pub const fn ws_ping(secs: u64) -> Self {
        KeepAlive::WsPing {
            interval_ns: secs * 1_000_000_000,
        }
    }
}

/// A REST request the collector must perform over the same TLS stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestRequest {
    /// Host name.
    pub host: &'static str,
    /// Path and query.
    pub path: String,
    /// What the response is, handed back to [`VenueAdapter::on_rest`].
    pub kind: RestKind,
    /// The instrument it concerns.
    pub instrument: u32,
}

/// Kinds of REST responses an adapter consumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestKind {
    /// An order-book snapshot (Binance `lastUpdateId`, Bitstamp `microtimestamp`).
    BookSnapshot,
}

/// Something the adapter needs the collector to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this frame now (e.g. an answer to a server heartbeat request).
    Send(Outgoing),
    /// Fetch a REST resource and hand the body to [`VenueAdapter::on_rest`].
    Fetch(RestRequest),
    /// Send these frames to unsubscribe and subscribe again (fresh snapshot).
    Resubscribe(Vec<Outgoing>),
    /// Drop the connection and reconnect (the venue asked for it, or state is unrecoverable).
    Reconnect,
}

/// A WebSocket endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsEndpoint {
    /// Host name (TLS SNI).
    pub host: &'static str,
    /// TCP port.
    pub port: u16,
    /// Request path (and query).
    pub path: &'static str,
}

impl WsEndpoint {
    /// A `wss://` endpoint on the default port 443.
    #[must_use]
    pub const fn wss(host: &'static str, path: &'static str) -> Self {
        WsEndpoint {
            host,
            port: 443,
            path,
        }
    }

    /// The `wss://` URL.
    #[must_use]
    pub fn url(&self) -> String {
        if self.port == 443 {
            format!("wss://{}{}", self.host, self.path)
        } else {
            format!("wss://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// Everything an adapter needs while handling one frame.
pub struct Ctx<'a> {
    /// When the frame's bytes were read (ns since the Unix epoch).
    pub recv_ts_ns: i64,
    /// Symbol → instrument id.
    pub resolver: &'a mut dyn InstrumentResolver,
    /// Where records go.
    pub sink: &'a mut dyn RecordSink,
    /// Per-stream counters.
    pub counters: &'a mut Counters,
    /// Requests for the collector (cold path; rarely non-empty).
    pub actions: &'a mut Vec<Action>,
}

impl core::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ctx")
            .field("recv_ts_ns", &self.recv_ts_ns)
            .finish_non_exhaustive()
    }
}

impl Ctx<'_> {
    /// Emits one record: stamps `recv_ts_ns` and counts it on its stream.
    #[inline]
    pub fn emit(&mut self, record: &mut Record) {
        self.stamp(record);
        self.sink.emit(record);
    }

    /// Stamps `recv_ts_ns` on a record about to be emitted and counts it on its stream.
    #[inline]
    fn stamp(&mut self, record: &mut Record) {
        record.recv_ts_ns = self.recv_ts_ns;
        self.counters.stream_mut(record.stream).records += 1;
    }

    /// Emits a batch of records in order, as [`Ctx::emit`] on each (stamped and counted here,
    /// then handed to the sink in one call).
    #[inline]
    pub fn emit_all(&mut self, records: &mut [Record]) {
        for r in records.iter_mut() {
            self.stamp(r);
        }
        self.sink.emit_all(records);
    }

    /// Builds and emits a record.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn emit_body<B: Body>(
        &mut self,
        venue: Venue,
        stream: u8,
        instrument: u32,
        exchange_ts_ns: i64,
        venue_seq: u64,
        flags: u8,
        body: &B,
    ) {
        let mut record = Record::new(venue, stream, instrument, body);
        record.exchange_ts_ns = exchange_ts_ns;
        record.venue_seq = venue_seq;
        record.flags = flags;
        self.emit(&mut record);
    }

    /// Counts one message of `bytes` bytes on `stream`.
    #[inline]
    pub fn count_message(&mut self, stream: u8, bytes: usize) {
        let c = self.counters.stream_mut(stream);
        c.messages += 1;
        c.bytes += bytes as u64;
    }

    /// Counts one sequence gap on `stream` that missed `missed` updates.
    #[inline]
    pub fn count_gap(&mut self, stream: u8, missed: u64) {
        let c = self.counters.stream_mut(stream);
        c.gaps += 1;
        c.gap_records += missed;
    }

    /// A gap on a stream that goes on without a resync (a trade-id chain: the next message is
    /// whole): counted as [`Ctx::count_gap`] and announced on the bus as `gap_detected` then
    /// `resynced` for `instrument`, so a bus consumer sees the loss, not only `/metrics`.
    pub fn announce_gap(&mut self, venue: Venue, stream: u8, instrument: u32, missed: u64) {
        self.count_gap(stream, missed);
        self.emit_status(venue, stream, instrument, FeedState::GapDetected);
        self.emit_status(venue, stream, instrument, FeedState::Resynced);
    }

    /// Emits a feed-status record for `instrument` on `stream` in `state`, carrying the
    /// stream's counters.
    #[inline]
    pub fn emit_status(&mut self, venue: Venue, stream: u8, instrument: u32, state: FeedState) {
        let mut status = self.counters.status_record(venue, stream, state);
        status.instrument = instrument;
        self.emit(&mut status);
    }

    /// Resolves a symbol, counting a skip on `stream` when it is unknown.
    #[inline]
    pub fn resolve(&mut self, venue: Venue, stream: u8, symbol: &[u8]) -> Option<u32> {
        let id = self.resolver.resolve(venue, symbol);
        if id.is_none() {
            self.counters.stream_mut(stream).unknown_instrument += 1;
        }
        id
    }
}

/// A venue adapter: endpoints, subscribe frames, keep-alive, frame parser and continuity rules.
pub trait VenueAdapter: Send {
    /// The venue.
    fn venue(&self) -> Venue;

    /// The stream catalogue (`Record.stream` values this adapter emits).
    fn streams(&self) -> &'static [StreamDesc];

    /// Where to connect.
    fn endpoint(&self) -> WsEndpoint;

    /// Frames that subscribe the given venue symbols on the selected streams (entries of
    /// [`crate::venues::streams::SUBSCRIPTIONS`] for this venue; cold path).
    fn subscribe_streams(&self, symbols: &[&str], streams: &[&'static Selectable])
    -> Vec<Outgoing>;

    /// Frames that unsubscribe the given venue symbols from the selected streams (cold path).
    fn unsubscribe_streams(
        &self,
        symbols: &[&str],
        streams: &[&'static Selectable],
    ) -> Vec<Outgoing>;

    /// Frames that subscribe the given venue symbols on the default streams (cold path).
    fn subscribe(&self, symbols: &[&str]) -> Vec<Outgoing> {
        self.subscribe_streams(symbols, &default_streams(self.venue()))
    }

    /// Frames that unsubscribe the given venue symbols from the default streams (cold path).
    fn unsubscribe(&self, symbols: &[&str]) -> Vec<Outgoing> {
        self.unsubscribe_streams(symbols, &default_streams(self.venue()))
    }

    /// How the connection is kept alive.
    fn keep_alive(&self) -> KeepAlive;

    /// Seconds without any frame after which the stream is stale.
    fn stale_after_ns(&self) -> u64 {
        10_000_000_000
    }

    /// Parses one complete WebSocket message.
    ///
    /// # Errors
    /// [`ParseError`] when the frame is malformed, truncated or unknown; no record of a
    /// failing frame's book batch is emitted after the error, and continuity state is unchanged
    /// unless documented by the venue.
    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed;

    /// Consumes the body of a REST request the adapter asked for.
    ///
    /// # Errors
    /// [`ParseError`] when the body is malformed; the adapter re-queues the fetch.
    fn on_rest(&mut self, request: &RestRequest, body: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        let _ = (request, body, ctx);
        Err(ParseError::UnsupportedRest)
    }

    /// The connection was re-established: continuity state restarts (books await a snapshot).
    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>);

    /// Instrument `id` was unsubscribed (its window is over): drop what the adapter keeps about
    /// it, so per-instrument state stays bounded by the instruments subscribed at once.
    fn forget_instrument(&mut self, id: u32) {
        let _ = id;
    }

    /// Per-instrument entries the adapter holds (continuity and tick lists; for bound checks).
    fn instrument_state_len(&self) -> usize {
        0
    }
}
