//! Binance spot (`wss://stream.binance.com:9443/stream`) and USD-M futures
//! (`wss://fstream.binance.com/stream`): one implementation, two rule sets
//! ([`BinanceMarket`]). Combined-stream wrappers and raw payloads are both accepted.
//!
//! Streams: `@trade`, `@aggTrade`, `@bookTicker`, `@depth@100ms` and the REST snapshot
//! (`GET /api/v3/depth` spot, `GET /fapi/v1/depth` futures); futures add `@markPrice@1s`
//! (mark + index → IndexPrice, funding → Funding), `@forceOrder` → Liquidation, and the
//! counted-only `@ticker` / REST `openInterest` (no bus record kind for them yet).
//! Prices/quantities are decimal strings, ids and times integers.
//!
//! Continuity: trade ids (`t`, `a`) must advance by one (gaps counted). Depth follows the
//! documented procedure ([`BinanceDepthSync`]): in [`SyncMode::Enforce`] updates are buffered
//! until the REST snapshot (requested through [`Action::Fetch`]) arrives, then replayed under
//! the `lastUpdateId` rules (spot: `U == prev u + 1`; futures: `pu == prev u`); a broken chain
//! emits a `gap_detected` feed status, clears the book state and fetches a new snapshot;
//! applying it emits `resynced`.

use ringbolt_bus::{FeedState, Funding, IndexPrice, Liquidation, Record, Side, TopOfBook, Venue};

use crate::adapter::{
    Action, Ctx, DecimalField, KeepAlive, Outgoing, ParseError, Parsed, RestKind, RestRequest,
    StreamDesc, VenueAdapter, WsEndpoint,
};
use crate::continuity::{
    BinanceDepthSync, BinanceMarket, DepthVerdict, SeqCheck, SeqTracker, SnapshotVerdict, SyncMode,
};
use crate::decimal::{parse_e8, parse_fixed_i64, parse_fixed_i128, parse_u64};
use crate::json::Lexer;
use crate::time::ms_text_ns;
use crate::venues::streams::{Selectable, channels_for};
use crate::venues::{
    LevelsInPlace, collect_pairs, empty_snapshot, flush_batch, for_each_element, for_each_pair,
    opt_ts, push_parsed, stamp_levels, trade,
};

/// Records buffered per instrument while awaiting a snapshot.
const BUFFER_RECORDS: usize = 16_384;
/// Depth events buffered per instrument while awaiting a snapshot.
const BUFFER_EVENTS: usize = 1_024;

pub use super::streams::binance::{FUTURES_STREAMS, KEEP_ALIVE, Stream};

/// The spot catalogue as [`StreamDesc`]s (the futures one's first five, spot's rules).
pub const SPOT_STREAMS: &[StreamDesc] = &[
    FUTURES_STREAMS[0],
    FUTURES_STREAMS[1],
    StreamDesc::new(3, "book_ticker", "top of book; u comparable with depth u"),
    StreamDesc::new(
        4,
        "depth",
        "L2 diffs; U == prev u + 1 after the snapshot rule",
    ),
    FUTURES_STREAMS[4],
];

#[derive(Debug)]
struct BufferedEvent {
    first: u64,
    last: u64,
    prev: Option<u64>,
    start: usize,
    end: usize,
}

#[derive(Debug)]
struct DepthBook {
    instrument: u32,
    symbol: String,
    sync: BinanceDepthSync,
    records: Vec<Record>,
    events: Vec<BufferedEvent>,
    fetching: bool,
    observe_last_u: Option<u64>,
}

#[derive(Debug, Default)]
struct TradeSeq {
    instrument: u32,
    trade: SeqTracker,
    agg: SeqTracker,
}

/// The Binance adapter (spot or USD-M futures).
#[derive(Debug)]
pub struct Binance {
    venue: Venue,
    market: BinanceMarket,
    mode: SyncMode,
    books: Vec<DepthBook>,
    trades: Vec<TradeSeq>,
    last_depth: Option<u32>,
    scratch: Vec<Record>,
    /// Whether frames are read in one pass first (`on_frame`); off only in tests that compare
    /// that pass with the general path.
    in_place: bool,
}

impl Binance {
    /// The spot adapter.
    #[must_use]
    pub fn spot(mode: SyncMode) -> Self {
        Self::new(BinanceMarket::Spot, mode)
    }

    /// The USD-M futures adapter.
    #[must_use]
    pub fn futures(mode: SyncMode) -> Self {
        Self::new(BinanceMarket::Futures, mode)
    }

    fn new(market: BinanceMarket, mode: SyncMode) -> Self {
        Binance {
            venue: match market {
                BinanceMarket::Spot => Venue::BinanceSpot,
                BinanceMarket::Futures => Venue::BinanceFutures,
            },
            market,
            mode,
            books: Vec::new(),
            trades: Vec::new(),
            last_depth: None,
            scratch: Vec::with_capacity(BUFFER_RECORDS),
            in_place: true,
        }
    }

    /// The same adapter reading every frame by the general path only (tests compare the two).
    #[doc(hidden)]
    #[must_use]
    pub fn general_path_only(mut self) -> Self {
        self.in_place = false;
        self
    }

    fn book_index(&mut self, instrument: u32, symbol: &[u8]) -> usize {
        if let Some(i) = self.books.iter().position(|b| b.instrument == instrument) {
            return i;
        }
        // Cold path: first sight of an instrument.
        self.books.push(DepthBook {
            instrument,
            symbol: String::from_utf8_lossy(symbol).to_ascii_uppercase(),
            sync: BinanceDepthSync::new(self.market),
            records: Vec::with_capacity(BUFFER_RECORDS),
            events: Vec::with_capacity(BUFFER_EVENTS),
            fetching: false,
            observe_last_u: None,
        });
        self.books.len() - 1
    }

    fn trade_seq(&mut self, instrument: u32) -> &mut TradeSeq {
        let i = match self.trades.iter().position(|t| t.instrument == instrument) {
            Some(i) => i,
            None => {
                self.trades.push(TradeSeq {
                    instrument,
                    ..TradeSeq::default()
                });
                self.trades.len() - 1
            }
        };
        &mut self.trades[i]
    }

    fn fetch(market: BinanceMarket, book: &mut DepthBook, ctx: &mut Ctx<'_>) {
        if !book.fetching {
            book.fetching = true;
            let (host, path) = match market {
                BinanceMarket::Spot => ("api.binance.com", "/api/v3/depth"),
                BinanceMarket::Futures => ("fapi.binance.com", "/fapi/v1/depth"),
            };
            let limit = if market == BinanceMarket::Spot {
                5000
            } else {
                1000
            };
            ctx.actions.push(Action::Fetch(RestRequest {
                host,
                path: format!("{path}?symbol={}&limit={limit}", book.symbol),
                kind: RestKind::BookSnapshot,
                instrument: book.instrument,
            }));
        }
    }

    fn gap(venue: Venue, book: &mut DepthBook, missed: u64, ctx: &mut Ctx<'_>) {
        let stream = Stream::Depth as u8;
        ctx.count_gap(stream, missed);
        ctx.emit_status(venue, stream, book.instrument, FeedState::GapDetected);
        book.records.clear();
        book.events.clear();
    }

    fn depth_update(&mut self, d: &Data<'_>, len: usize, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::Depth as u8;
        ctx.count_message(stream, len);
        let symbol = d.symbol.ok_or(ParseError::Missing("s"))?;
        let first = parse_u64(d.first_id.ok_or(ParseError::Missing("U"))?).field("U")?;
        let last = parse_u64(d.last_id.ok_or(ParseError::Missing("u"))?).field("u")?;
        let prev = d.prev_id.map(parse_u64).transpose().field("pu")?;
        if self.market == BinanceMarket::Futures && prev.is_none() {
            return Err(ParseError::Missing("pu"));
        }
        let ts = opt_ts(d.event_ts, ms_text_ns, "E")?;
        if first > last {
            return Err(ParseError::Invalid("U"));
        }
        let Some(id) = ctx.resolve(self.venue, stream, symbol) else {
            return Ok(());
        };
        self.last_depth = Some(id);
        if d.depth_levels.any() {
            // Converted in the envelope's pass: the scratch batch holds exactly these levels.
            stamp_levels(&mut self.scratch, stream, id, ts, last);
        } else {
            collect_pairs(
                &mut self.scratch,
                self.venue,
                stream,
                id,
                [(d.bids, Side::Buy), (d.asks, Side::Sell)],
                ts,
                last,
            )?;
        }
        let bi = self.book_index(id, symbol);
        let book = &mut self.books[bi];
        if self.mode == SyncMode::Observe {
            if let Some(last_u) = book.observe_last_u {
                let chained = match prev {
                    Some(pu) => pu == last_u,
                    None => first == last_u + 1,
                };
                if !chained && last > last_u {
                    ctx.count_gap(stream, first.saturating_sub(last_u + 1));
                }
            }
            book.observe_last_u = Some(last);
            flush_batch(ctx, &mut self.scratch, false, Record::zeroed());
            return Ok(());
        }
        match book.sync.on_update(first, last, prev) {
            DepthVerdict::Apply => flush_batch(ctx, &mut self.scratch, false, Record::zeroed()),
            DepthVerdict::Drop => {
                ctx.counters.stream_mut(stream).dropped_unsynced += 1;
                self.scratch.clear();
            }
            verdict @ (DepthVerdict::Buffer | DepthVerdict::Gap { .. }) => {
                if let DepthVerdict::Gap { missed } = verdict {
                    Self::gap(self.venue, book, missed, ctx);
                    let _ = book.sync.on_update(first, last, prev);
                }
                if book.events.len() < BUFFER_EVENTS
                    && book.records.len() + self.scratch.len() <= BUFFER_RECORDS
                {
                    let start = book.records.len();
                    book.records.extend_from_slice(&self.scratch);
                    book.events.push(BufferedEvent {
                        first,
                        last,
                        prev,
                        start,
                        end: book.records.len(),
                    });
                } else {
                    // Buffer full: the replay will find the chain broken and refetch.
                    ctx.counters.stream_mut(stream).dropped_unsynced += 1;
                }
                self.scratch.clear();
                Self::fetch(self.market, book, ctx);
            }
        }
        Ok(())
    }

    /// Applies a REST snapshot body for `instrument`.
    fn snapshot(&mut self, body: &[u8], instrument: u32, ctx: &mut Ctx<'_>) -> Parsed {
        let RestSnapshot { lid, bids, asks } = RestSnapshot::parse_exact(body)?;
        self.snapshot_parts(
            lid.ok_or(ParseError::Missing("lastUpdateId"))?,
            bids,
            asks,
            false,
            instrument,
            ctx,
        )
    }

    /// Applies a REST snapshot already split into its fields (`lastUpdateId` text, raw
    /// `bids` / `asks` arrays). `in_scratch`: the arrays were converted in the envelope's pass
    /// and the scratch batch holds their levels ([`LevelsInPlace`]).
    fn snapshot_parts(
        &mut self,
        lid: &[u8],
        bids: Option<&[u8]>,
        asks: Option<&[u8]>,
        in_scratch: bool,
        instrument: u32,
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        let stream = Stream::DepthSnapshot as u8;
        let lid = parse_u64(lid).field("lastUpdateId")?;
        if in_scratch {
            bids.ok_or(ParseError::Missing("bids"))?;
            asks.ok_or(ParseError::Missing("asks"))?;
            stamp_levels(&mut self.scratch, stream, instrument, 0, lid);
        } else {
            self.scratch.clear();
            let scratch = &mut self.scratch;
            for (raw, side) in [(bids, Side::Buy), (asks, Side::Sell)] {
                let raw = raw.ok_or(ParseError::Missing(if side == Side::Buy {
                    "bids"
                } else {
                    "asks"
                }))?;
                for_each_pair(raw, |l| {
                    push_parsed(
                        scratch, self.venue, stream, instrument, side, l.price, l.size, 0, lid,
                    );
                    Ok(())
                })
                .inspect_err(|_| scratch.clear())?;
            }
        }
        let bi = match self.books.iter().position(|b| b.instrument == instrument) {
            Some(i) => i,
            None => self.book_index(instrument, b""),
        };
        let empty = empty_snapshot(self.venue, stream, instrument, 0, lid);
        if self.mode == SyncMode::Observe {
            self.books[bi].observe_last_u = Some(lid);
            flush_batch(ctx, &mut self.scratch, true, empty);
            return Ok(());
        }
        let book = &mut self.books[bi];
        book.fetching = false;
        if book.sync.on_snapshot(lid) == SnapshotVerdict::Refetch {
            self.scratch.clear();
            Self::fetch(self.market, book, ctx);
            return Ok(());
        }
        flush_batch(ctx, &mut self.scratch, true, empty);
        ctx.counters.stream_mut(Stream::Depth as u8).resyncs += 1;
        ctx.emit_status(
            self.venue,
            Stream::Depth as u8,
            instrument,
            FeedState::Resynced,
        );
        // Replay the buffered events under the snapshot rules.
        let events = core::mem::take(&mut book.events);
        for ev in &events {
            match book.sync.on_update(ev.first, ev.last, ev.prev) {
                DepthVerdict::Apply => {
                    self.scratch
                        .extend_from_slice(&book.records[ev.start..ev.end]);
                    flush_batch(ctx, &mut self.scratch, false, Record::zeroed());
                }
                DepthVerdict::Drop => {
                    ctx.counters
                        .stream_mut(Stream::Depth as u8)
                        .dropped_unsynced += 1
                }
                DepthVerdict::Gap { missed } => {
                    Self::gap(self.venue, book, missed, ctx);
                    Self::fetch(self.market, book, ctx);
                    break;
                }
                DepthVerdict::Buffer => {}
            }
        }
        book.events = events;
        book.events.clear();
        book.records.clear();
        Ok(())
    }
}

#[derive(Default)]
struct Data<'a> {
    event: Option<&'a [u8]>,
    symbol: Option<&'a [u8]>,
    event_ts: Option<&'a [u8]>,
    trade_ts: Option<&'a [u8]>,
    price: Option<&'a [u8]>,
    qty: Option<&'a [u8]>,
    trade_id: Option<&'a [u8]>,
    agg_id: Option<&'a [u8]>,
    buyer_maker: Option<bool>,
    first_id: Option<&'a [u8]>,
    last_id: Option<&'a [u8]>,
    bids: Option<&'a [u8]>,
    asks: Option<&'a [u8]>,
    best_bid: Option<&'a [u8]>,
    bid_qty: Option<&'a [u8]>,
    ask_qty: Option<&'a [u8]>,
    prev_id: Option<&'a [u8]>,
    side: Option<&'a [u8]>,
    index: Option<&'a [u8]>,
    rate: Option<&'a [u8]>,
    order: Option<&'a [u8]>,
    open_interest: bool,
    /// `lastUpdateId` of a REST depth snapshot (its `bids` / `asks` are kept below).
    last_update_id: Option<&'a [u8]>,
    snapshot_bids: Option<&'a [u8]>,
    snapshot_asks: Option<&'a [u8]>,
    result: bool,
    code: bool,
    /// `b` / `a` converted in place into the scratch batch (see [`Levels`]).
    depth_levels: LevelsInPlace,
    /// `bids` / `asks` converted in place into the scratch batch.
    snapshot_levels: LevelsInPlace,
}

/// Where [`data_at`] puts level arrays: captured as raw text (`None`: converted later from
/// it), or converted in the same pass into the adapter's scratch batch (`Some`).
type Levels<'s> = Option<(&'s mut Vec<Record>, Venue)>;

fn data(raw: &[u8]) -> Result<Data<'_>, ParseError> {
    let mut j = Lexer::new(raw);
    let d = data_at(&mut j, None)?;
    j.end()?;
    Ok(d)
}

/// A level array's text: captured raw, or converted in place into the scratch batch.
#[inline]
fn level_array<'a>(
    j: &mut Lexer<'a>,
    levels: &mut Levels<'_>,
    taken: &mut LevelsInPlace,
    side: Side,
) -> Result<&'a [u8], ParseError> {
    match levels {
        None => Ok(j.raw_value()?),
        Some((scratch, venue)) => taken.pairs(j, scratch, *venue, side),
    }
}

/// Captures the fields of the event object at the lexer's position, in place; level arrays as
/// `levels` says.
fn data_at<'a>(j: &mut Lexer<'a>, mut levels: Levels<'_>) -> Result<Data<'a>, ParseError> {
    let mut d = Data::default();
    j.begin_object()?;
    while let Some(key) = j.next_key()? {
        match key {
            b"e" => d.event = Some(j.str()?),
            b"s" => d.symbol = Some(j.str()?),
            b"E" => d.event_ts = Some(j.scalar()?),
            b"T" => d.trade_ts = Some(j.scalar()?),
            b"p" => d.price = Some(j.scalar()?),
            b"q" => d.qty = Some(j.scalar()?),
            b"t" => d.trade_id = Some(j.scalar()?),
            b"a" => {
                if j.peek() == Some(b'[') {
                    d.asks = Some(level_array(
                        j,
                        &mut levels,
                        &mut d.depth_levels,
                        Side::Sell,
                    )?);
                } else {
                    let v = j.scalar()?;
                    // `a` is the agg id on aggTrade and the best ask on bookTicker.
                    d.agg_id = Some(v);
                }
            }
            b"b" => {
                if j.peek() == Some(b'[') {
                    d.bids = Some(level_array(j, &mut levels, &mut d.depth_levels, Side::Buy)?);
                } else {
                    // Best bid price on bookTicker (buyer order id on old trade frames).
                    d.best_bid = Some(j.scalar()?);
                }
            }
            b"m" => d.buyer_maker = Some(j.bool()?),
            b"U" => d.first_id = Some(j.scalar()?),
            b"u" => d.last_id = Some(j.scalar()?),
            b"B" => d.bid_qty = Some(j.scalar()?),
            b"pu" => d.prev_id = Some(j.scalar()?),
            b"S" => d.side = Some(j.str()?),
            b"i" => d.index = Some(j.scalar()?),
            b"r" => d.rate = Some(j.scalar()?),
            b"o" if j.peek() == Some(b'{') => d.order = Some(j.raw_value()?),
            b"openInterest" => {
                d.open_interest = true;
                j.skip_value()?;
            }
            b"A" => d.ask_qty = Some(j.scalar()?),
            b"lastUpdateId" => d.last_update_id = Some(j.scalar()?),
            b"bids" => {
                d.snapshot_bids = Some(level_array(
                    j,
                    &mut levels,
                    &mut d.snapshot_levels,
                    Side::Buy,
                )?);
            }
            b"asks" => {
                d.snapshot_asks = Some(level_array(
                    j,
                    &mut levels,
                    &mut d.snapshot_levels,
                    Side::Sell,
                )?);
            }
            b"result" | b"id" => {
                d.result = true;
                j.skip_value()?;
            }
            b"code" | b"msg" => {
                d.code = true;
                j.skip_value()?;
            }
            _ => j.skip_value()?,
        }
    }
    if d.depth_levels.any() && d.snapshot_levels.any() {
        // Both kinds of arrays in one object: the general path sorts it out.
        return Err(ParseError::Invalid("level arrays of two kinds"));
    }
    Ok(d)
}

json_fields! {
    /// A REST depth snapshot body.
    struct RestSnapshot {
        lid: scalar <- b"lastUpdateId",
        bids: raw <- b"bids",
        asks: raw <- b"asks",
    }
}

impl VenueAdapter for Binance {
    fn venue(&self) -> Venue {
        self.venue
    }

    fn streams(&self) -> &'static [StreamDesc] {
        match self.market {
            BinanceMarket::Spot => SPOT_STREAMS,
            BinanceMarket::Futures => FUTURES_STREAMS,
        }
    }

    fn endpoint(&self) -> WsEndpoint {
        match self.market {
            BinanceMarket::Spot => WsEndpoint {
                host: "stream.binance.com",
                port: 9443,
                path: "/stream",
            },
            // 2026: bookTicker/depth/trade live on /public, the rest on /market; one
            // connection per route.
            BinanceMarket::Futures => WsEndpoint {
                host: "fstream.binance.com",
                port: 443,
                path: "/stream",
            },
        }
    }

    fn subscribe_streams(
        &self,
        symbols: &[&str],
        streams: &[&'static Selectable],
    ) -> Vec<Outgoing> {
        vec![Outgoing::Text(method("SUBSCRIBE", symbols, streams, 1))]
    }

    fn unsubscribe_streams(
        &self,
        symbols: &[&str],
        streams: &[&'static Selectable],
    ) -> Vec<Outgoing> {
        vec![Outgoing::Text(method("UNSUBSCRIBE", symbols, streams, 2))]
    }

    fn keep_alive(&self) -> KeepAlive {
        KEEP_ALIVE
    }

    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        // One pass, level arrays converted as they are lexed; any other shape or an error takes
        // the general path below, which reports it.
        if self.in_place
            && let Some((d, stream_name)) = self.read_in_place(frame)
        {
            let r = self.event_data(&d, stream_name, frame.len(), ctx);
            self.scratch.clear();
            return r;
        }
        self.scratch.clear();
        let mut j = Lexer::new(frame);
        j.begin_object()?;
        // Combined-stream wrapper {"stream":…,"data":{…}} (tardis adds "generated").
        let (mut stream_name, mut inner, mut parsed) = (None, None, None);
        let mut other = false;
        while let Some(key) = j.next_key()? {
            match key {
                b"stream" => stream_name = Some(j.str()?),
                // An event object is captured in place (one pass); arrays of events are
                // walked below.
                b"data" if j.peek() == Some(b'{') => parsed = Some(data_at(&mut j, None)?),
                b"data" => inner = Some(j.raw_value()?),
                b"generated" => j.skip_value()?,
                _ => {
                    // Not the wrapper: the frame is the event itself, which `event` parses
                    // (and checks) in full; no need to walk the rest of it here.
                    other = true;
                    break;
                }
            }
        }
        if !other {
            j.end()?;
        }
        if !other && let Some(d) = parsed {
            return self.event_data(&d, stream_name, frame.len(), ctx);
        }
        let payload = match inner {
            Some(d) if !other => d,
            _ => frame,
        };
        if payload.first() == Some(&b'[') {
            // `!markPrice@arr` / `!ticker@arr`: an array of events.
            return for_each_element(payload, |ev| self.event(ev, None, ev.len(), ctx));
        }
        self.event(payload, stream_name, frame.len(), ctx)
    }

    fn on_rest(&mut self, request: &RestRequest, body: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        self.rest(request, body, ctx)
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        self.reconnect(ctx);
    }
}

impl Binance {
    /// Reads a frame whose event is one object (combined-stream wrapper or the bare event) in
    /// one pass, its level arrays converted into the scratch batch as they are lexed
    /// ([`LevelsInPlace`]): the event's fields and the wrapper's stream name, as the general
    /// path of `on_frame` would capture them. `None` for any other shape (arrays of events, no
    /// event object), any error, or level arrays out of order: the general path then handles
    /// (and reports) the frame.
    fn read_in_place<'a>(&mut self, frame: &'a [u8]) -> Option<(Data<'a>, Option<&'a [u8]>)> {
        self.scratch.clear();
        let levels = Some((&mut self.scratch, self.venue));
        let mut j = Lexer::new(frame);
        j.begin_object().ok()?;
        let mut stream_name = None;
        while let Some(key) = j.next_key().ok()? {
            match key {
                b"stream" => stream_name = Some(j.str().ok()?),
                b"data" if j.peek() == Some(b'{') => {
                    let d = data_at(&mut j, levels).ok()?;
                    // The wrapper's remaining keys, as the general path reads them.
                    while let Some(key) = j.next_key().ok()? {
                        match key {
                            b"stream" => stream_name = Some(j.str().ok()?),
                            b"generated" => j.skip_value().ok()?,
                            _ => return None,
                        }
                    }
                    j.end().ok()?;
                    return Some((d, stream_name));
                }
                b"generated" => j.skip_value().ok()?,
                b"data" => return None,
                _ => {
                    // Not the wrapper: the frame is the event itself.
                    let mut j = Lexer::new(frame);
                    let d = data_at(&mut j, levels).ok()?;
                    j.end().ok()?;
                    return Some((d, stream_name));
                }
            }
        }
        None
    }

    #[allow(clippy::too_many_lines)]
    fn event(
        &mut self,
        payload: &[u8],
        stream_name: Option<&[u8]>,
        len: usize,
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        let d = data(payload)?;
        self.event_data(&d, stream_name, len, ctx)
    }

    /// Handles one event whose fields are already captured.
    fn event_data(
        &mut self,
        d: &Data<'_>,
        stream_name: Option<&[u8]>,
        len: usize,
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        let frame_len = len;
        if let Some(lid) = d.last_update_id {
            // A REST depth snapshot (or tardis' wrapper around one).
            let symbol = stream_name.and_then(|s| s.split(|&b| b == b'@').next());
            let instrument = match symbol {
                Some(s) => {
                    let mut upper = [0u8; 32];
                    let n = s.len().min(32);
                    for (dst, src) in upper.iter_mut().zip(&s[..n]) {
                        *dst = src.to_ascii_uppercase();
                    }
                    ctx.resolve(self.venue, Stream::DepthSnapshot as u8, &upper[..n])
                }
                None => Some(self.last_depth.ok_or(ParseError::Missing(
                    "symbol (a bare REST snapshot goes through on_rest with its instrument)",
                ))?),
            };
            ctx.count_message(Stream::DepthSnapshot as u8, frame_len);
            return match instrument {
                Some(id) => self.snapshot_parts(
                    lid,
                    d.snapshot_bids,
                    d.snapshot_asks,
                    d.snapshot_levels.any(),
                    id,
                    ctx,
                ),
                None => Ok(()),
            };
        }
        match d.event {
            Some(b"trade" | b"aggTrade") => {
                let agg = d.event == Some(b"aggTrade");
                let stream = if agg { Stream::AggTrade } else { Stream::Trade } as u8;
                ctx.count_message(stream, frame_len);
                let symbol = d.symbol.ok_or(ParseError::Missing("s"))?;
                let price = parse_e8(d.price.ok_or(ParseError::Missing("p"))?).field("p")?;
                let size = parse_e8(d.qty.ok_or(ParseError::Missing("q"))?).field("q")?;
                let id_text = if agg { d.agg_id } else { d.trade_id };
                // Some old aggTrade captures lack `a`: carry 0 (no id) and skip the id check.
                let trade_id = match id_text {
                    Some(t) => parse_u64(t).field("t")?,
                    None if agg => 0,
                    None => return Err(ParseError::Missing("t")),
                };
                let ts = ms_text_ns(d.trade_ts.or(d.event_ts).ok_or(ParseError::Missing("T"))?)
                    .field("T")?;
                let maker = d.buyer_maker.ok_or(ParseError::Missing("m"))?;
                let Some(id) = ctx.resolve(self.venue, stream, symbol) else {
                    return Ok(());
                };
                let seq = self.trade_seq(id);
                let tracker = if agg { &mut seq.agg } else { &mut seq.trade };
                if trade_id != 0
                    && let SeqCheck::Gap { missed } = tracker.check(trade_id)
                {
                    ctx.count_gap(stream, missed);
                }
                // Buyer is maker ⇒ the seller was the aggressor.
                let body = trade(
                    price,
                    size,
                    trade_id,
                    if maker { Side::Sell } else { Side::Buy },
                );
                ctx.emit_body(self.venue, stream, id, ts, trade_id, 0, &body);
                Ok(())
            }
            Some(b"depthUpdate") => self.depth_update(d, frame_len, ctx),
            Some(b"serverShutdown") => {
                ctx.count_message(0, frame_len);
                ctx.actions.push(Action::Reconnect);
                Ok(())
            }
            Some(b"markPriceUpdate") => self.mark_price(d, frame_len, ctx),
            Some(b"forceOrder") => self.force_order(d, frame_len, ctx),
            Some(b"24hrTicker") => {
                ctx.count_message(Stream::Ticker24h as u8, frame_len);
                Ok(())
            }
            None if d.open_interest => {
                ctx.count_message(Stream::OpenInterest as u8, frame_len);
                Ok(())
            }
            Some(b"bookTicker") | None if d.last_id.is_some() && d.ask_qty.is_some() => {
                let stream = Stream::BookTicker as u8;
                ctx.count_message(stream, frame_len);
                let symbol = d.symbol.ok_or(ParseError::Missing("s"))?;
                let u = parse_u64(d.last_id.ok_or(ParseError::Missing("u"))?).field("u")?;
                let body = TopOfBook {
                    bid_price: parse_e8(d.best_bid.ok_or(ParseError::Missing("b"))?).field("b")?,
                    bid_size: parse_e8(d.bid_qty.ok_or(ParseError::Missing("B"))?).field("B")?,
                    ask_price: parse_e8(d.agg_id.ok_or(ParseError::Missing("a"))?).field("a")?,
                    ask_size: parse_e8(d.ask_qty.ok_or(ParseError::Missing("A"))?).field("A")?,
                    reserved: [0; 48],
                };
                let ts = opt_ts(d.event_ts, ms_text_ns, "E")?;
                if let Some(id) = ctx.resolve(self.venue, stream, symbol) {
                    ctx.emit_body(self.venue, stream, id, ts, u, 0, &body);
                }
                Ok(())
            }
            None if d.result || d.code => {
                ctx.count_message(0, frame_len);
                Ok(())
            }
            _ => Err(ParseError::Unknown),
        }
    }

    fn mark_price(&mut self, d: &Data<'_>, len: usize, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::MarkPrice as u8;
        ctx.count_message(stream, len);
        let symbol = d.symbol.ok_or(ParseError::Missing("s"))?;
        let mark_text = d.price.ok_or(ParseError::Missing("p"))?;
        let mark_e18 = parse_fixed_i128(mark_text, 18).field("p")?;
        let mark = parse_e8(mark_text).field("p")?;
        let index = d
            .index
            .map(|i| {
                Ok::<_, ParseError>((parse_fixed_i128(i, 18).field("i")?, parse_e8(i).field("i")?))
            })
            .transpose()?;
        let rate = d
            .rate
            .map(|r| parse_fixed_i64(r, 12))
            .transpose()
            .field("r")?;
        let next_ns = opt_ts(d.trade_ts, ms_text_ns, "T")?;
        let ts = opt_ts(d.event_ts, ms_text_ns, "E")?;
        let Some(id) = ctx.resolve(self.venue, stream, symbol) else {
            return Ok(());
        };
        let mark_body = IndexPrice {
            value_e18: mark_e18,
            price: mark,
            price_type: 2,
            reserved: [0; 55],
        };
        ctx.emit_body(self.venue, stream, id, ts, 0, 0, &mark_body);
        if let Some((value_e18, price)) = index {
            let body = IndexPrice {
                value_e18,
                price,
                price_type: 1,
                reserved: [0; 55],
            };
            ctx.emit_body(self.venue, stream, id, ts, 0, 0, &body);
        }
        if let Some(rate) = rate {
            let body = Funding {
                rate,
                next_funding_ts_ns: next_ns,
                mark_price: mark,
                reserved: [0; 56],
            };
            ctx.emit_body(self.venue, stream, id, ts, 0, 0, &body);
        }
        Ok(())
    }

    fn force_order(&mut self, d: &Data<'_>, len: usize, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::ForceOrder as u8;
        ctx.count_message(stream, len);
        let o = data(d.order.ok_or(ParseError::Missing("o"))?)?;
        let symbol = o.symbol.ok_or(ParseError::Missing("s"))?;
        let side = super::side_of(o.side.ok_or(ParseError::Missing("S"))?)
            .ok_or(ParseError::Invalid("S"))?;
        let body = Liquidation {
            price: parse_e8(o.price.ok_or(ParseError::Missing("p"))?).field("p")?,
            size: parse_e8(o.qty.ok_or(ParseError::Missing("q"))?).field("q")?,
            side: side as u8,
            reserved: [0; 63],
        };
        let ts = o
            .trade_ts
            .or(d.event_ts)
            .map(ms_text_ns)
            .transpose()
            .field("T")?
            .unwrap_or(0);
        if let Some(id) = ctx.resolve(self.venue, stream, symbol) {
            ctx.emit_body(self.venue, stream, id, ts, 0, 0, &body);
        }
        Ok(())
    }

    fn rest(&mut self, request: &RestRequest, body: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        match request.kind {
            RestKind::BookSnapshot => {
                ctx.count_message(Stream::DepthSnapshot as u8, body.len());
                let r = self.snapshot(body, request.instrument, ctx);
                if r.is_err()
                    && let Some(book) = self
                        .books
                        .iter_mut()
                        .find(|b| b.instrument == request.instrument)
                {
                    book.fetching = false;
                    Self::fetch(self.market, book, ctx);
                }
                r
            }
        }
    }

    fn reconnect(&mut self, ctx: &mut Ctx<'_>) {
        for book in &mut self.books {
            book.sync.reset();
            book.records.clear();
            book.events.clear();
            book.fetching = false;
            book.observe_last_u = None;
        }
        for t in &mut self.trades {
            t.trade.reset();
            t.agg.reset();
        }
        ctx.counters.stream_mut(Stream::Depth as u8).reconnects += 1;
    }
}

fn method(method: &str, symbols: &[&str], streams: &[&'static Selectable], id: u32) -> Vec<u8> {
    let mut params = Vec::new();
    for s in symbols {
        let s = s.to_ascii_lowercase();
        for suffix in channels_for(streams, &s) {
            params.push(format!("\"{s}@{suffix}\""));
        }
    }
    format!(
        "{{\"method\":\"{method}\",\"params\":[{}],\"id\":{id}}}",
        params.join(",")
    )
    .into_bytes()
}
