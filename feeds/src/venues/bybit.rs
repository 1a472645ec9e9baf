//! Bybit v5 public WebSocket (`wss://stream.bybit.com/v5/public/{spot,linear}`).
//!
//! Frames are `{"topic":"<channel>.<…>.<symbol>","type":"snapshot"|"delta","ts":ms,"data":…}`.
//! Topics: `orderbook.{1,50,…}` → BookLevel batches, `publicTrade` → Trade (`S` is the taker
//! side), `tickers` → TopOfBook (linear `bid1/ask1`, deltas are partial and merged into a cached
//! state), IndexPrice (mark / index) and Funding, `allLiquidation` / legacy `liquidation` →
//! Liquidation. `{"success":…,"op":…}` acks and pongs are counted. Keep-alive `{"op":"ping"}`.
//!
//! Spot and linear use the same symbols: run one adapter per category and give the linear one a
//! symbol prefix ([`Bybit::with_prefix`]) so instruments stay distinct.
//!
//! Continuity (orderbook): every snapshot (including `u` = 1 after a service restart) replaces
//! the book; a delta's `u` must be the previous `u` + 1. In [`SyncMode::Enforce`] deltas before a
//! snapshot are dropped and a gap emits `gap_detected` and queues an unsubscribe + subscribe.

use ringbolt_bus::{FeedState, Funding, IndexPrice, Liquidation, Record, Side, TopOfBook, Venue};

use crate::adapter::{
    Action, Ctx, DecimalField, KeepAlive, Outgoing, ParseError, Parsed, VenueAdapter, WsEndpoint,
};
use crate::continuity::{SeqCheck, SeqTracker, SyncMode};
use crate::decimal::{parse_e8, parse_fixed_i128, parse_u64};
use crate::json::{Lexer, ValueKind};
use crate::time::ms_text_ns;
use crate::venues::streams::{Selectable, channels_for};
use crate::venues::{
    LevelsInPlace, Span, collect_pairs, flush_levels, for_each_element, opt_ts, req_e8, side_of,
    span_in, stamp_levels, sync_gate, text_at, text_frame, trade,
};

const VENUE: Venue = Venue::Bybit;

pub use super::streams::bybit::{KEEP_ALIVE, STREAMS, Stream};

#[derive(Debug, Default, Clone, Copy)]
struct TickerState {
    instrument: u32,
    bid: i64,
    bid_size: i64,
    ask: i64,
    ask_size: i64,
    next_funding_ns: i64,
}

#[derive(Debug)]
struct Book {
    instrument: u32,
    topic: String,
    synced: bool,
    u: SeqTracker,
}

/// The Bybit adapter.
#[derive(Debug)]
pub struct Bybit {
    mode: SyncMode,
    prefix: &'static [u8],
    books: Vec<Book>,
    tickers: Vec<TickerState>,
    scratch: Vec<Record>,
    /// A `publicTrade` push's rows read in the envelope's pass (texts as spans of the frame).
    trade_rows: Vec<TradeSpans>,
}

/// The texts of one `publicTrade` row that [`Bybit::trade_row`] reads, as spans of the frame.
#[derive(Clone, Copy, Debug, Default)]
struct TradeSpans {
    symbol: Option<Span>,
    side: Option<Span>,
    price: Option<Span>,
    size: Option<Span>,
    time: Option<Span>,
    id: Option<Span>,
    seq: Option<Span>,
}

impl TradeSpans {
    /// The spans of a row's fields (`base` is the frame they were read from).
    fn of(base: &[u8], r: &Fields<'_>) -> Self {
        let span = |t: Option<&[u8]>| t.map(|t| span_in(base, t));
        TradeSpans {
            symbol: span(r.symbol),
            side: span(r.side),
            price: span(r.price),
            size: span(r.size),
            time: span(r.time),
            id: span(r.id),
            seq: span(r.seq),
        }
    }

    /// The row again, its fields as [`TradeSpans::of`] took them.
    fn fields<'a>(&self, base: &'a [u8]) -> Fields<'a> {
        let text = |s: Option<Span>| s.map(|s| text_at(base, s));
        Fields {
            symbol: text(self.symbol),
            side: text(self.side),
            price: text(self.price),
            size: text(self.size),
            time: text(self.time),
            id: text(self.id),
            seq: text(self.seq),
            ..Fields::default()
        }
    }
}

impl Bybit {
    /// An adapter whose symbols are used as they are (spot, or offline parsing).
    #[must_use]
    pub fn new(mode: SyncMode) -> Self {
        Self::with_prefix(mode, b"")
    }

    /// An adapter that resolves `prefix` + symbol (e.g. `linear/` for the linear category).
    #[must_use]
    pub fn with_prefix(mode: SyncMode, prefix: &'static [u8]) -> Self {
        Bybit {
            mode,
            prefix,
            books: Vec::new(),
            tickers: Vec::new(),
            scratch: Vec::with_capacity(1024),
            trade_rows: Vec::with_capacity(256),
        }
    }

    fn resolve(&self, ctx: &mut Ctx<'_>, stream: u8, symbol: &[u8]) -> Option<u32> {
        if self.prefix.is_empty() {
            return ctx.resolve(VENUE, stream, symbol);
        }
        let mut buf = [0u8; 64];
        let n = self.prefix.len() + symbol.len();
        if n > buf.len() {
            return ctx.resolve(VENUE, stream, symbol);
        }
        buf[..self.prefix.len()].copy_from_slice(self.prefix);
        buf[self.prefix.len()..n].copy_from_slice(symbol);
        ctx.resolve(VENUE, stream, &buf[..n])
    }

    #[allow(clippy::too_many_arguments)]
    fn orderbook(
        &mut self,
        topic: &[u8],
        snapshot: bool,
        ts: i64,
        (data, levels): (BookData<'_>, LevelsInPlace),
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        let stream = Stream::Orderbook as u8;
        let BookData { s, b, a, u } = data;
        let symbol = s.ok_or(ParseError::Missing("s"))?;
        let u = parse_u64(u.ok_or(ParseError::Missing("u"))?).field("u")?;
        let Some(id) = self.resolve(ctx, stream, symbol) else {
            return Ok(());
        };
        if levels.any() {
            // Converted in the envelope's pass: the scratch batch holds exactly these levels.
            stamp_levels(&mut self.scratch, stream, id, ts, u);
        } else {
            collect_pairs(
                &mut self.scratch,
                VENUE,
                stream,
                id,
                [(b, Side::Buy), (a, Side::Sell)],
                ts,
                u,
            )?;
        }
        let i = match self.books.iter().position(|x| x.instrument == id) {
            Some(i) => i,
            None => {
                self.books.push(Book {
                    instrument: id,
                    topic: String::from_utf8_lossy(topic).into_owned(),
                    synced: false,
                    u: SeqTracker::default(),
                });
                self.books.len() - 1
            }
        };
        let enforce = self.mode == SyncMode::Enforce;
        let book = &mut self.books[i];
        if snapshot {
            book.u.reset();
            let _ = book.u.check(u);
        }
        if !sync_gate(ctx, stream, &mut book.synced, snapshot, enforce) {
            self.scratch.clear();
            return Ok(());
        }
        if !snapshot {
            match book.u.check(u) {
                SeqCheck::Gap { missed } => {
                    ctx.count_gap(stream, missed);
                    if enforce {
                        book.synced = false;
                        ctx.emit_status(VENUE, stream, id, FeedState::GapDetected);
                        let arg = format!("\"{}\"", book.topic);
                        ctx.actions.push(Action::Resubscribe(vec![
                            Outgoing::Text(
                                format!("{{\"op\":\"unsubscribe\",\"args\":[{arg}]}}").into_bytes(),
                            ),
                            Outgoing::Text(
                                format!("{{\"op\":\"subscribe\",\"args\":[{arg}]}}").into_bytes(),
                            ),
                        ]));
                        self.scratch.clear();
                        return Ok(());
                    }
                }
                SeqCheck::Stale if enforce => {
                    ctx.counters.stream_mut(stream).dropped_unsynced += 1;
                    self.scratch.clear();
                    return Ok(());
                }
                _ => {}
            }
        }
        flush_levels(ctx, &mut self.scratch, snapshot, VENUE, stream, id, ts, u);
        Ok(())
    }

    fn trades(&mut self, data: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        // Rows are read in place, in the pass that walks the array.
        let mut j = Lexer::new(data);
        j.begin_array()?;
        while j.next_element()? {
            let r = Fields::read(&mut j)?;
            self.trade_row(&r, ctx)?;
        }
        Ok(())
    }

    /// One `publicTrade` row: a Trade record.
    fn trade_row(&mut self, r: &Fields<'_>, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::PublicTrade as u8;
        {
            let side =
                side_of(r.side.ok_or(ParseError::Missing("S"))?).ok_or(ParseError::Invalid("S"))?;
            // Numeric on spot, a UUID on linear (carried as 0).
            let body = trade(
                req_e8(r.price, "p")?,
                req_e8(r.size, "v")?,
                r.id.map_or(0, |i| parse_u64(i).unwrap_or(0)),
                side,
            );
            let ts = opt_ts(r.time, ms_text_ns, "T")?;
            let seq = r.seq.map(parse_u64).transpose().field("seq")?.unwrap_or(0);
            if let Some(id) = self.resolve(ctx, stream, r.symbol.ok_or(ParseError::Missing("s"))?) {
                ctx.emit_body(VENUE, stream, id, ts, seq, 0, &body);
            }
        }
        Ok(())
    }

    fn liquidations(&mut self, data: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::Liquidation as u8;
        let one = |raw: &[u8], ctx: &mut Ctx<'_>| -> Parsed {
            let r = Fields::parse(raw)?;
            let side =
                side_of(r.side.ok_or(ParseError::Missing("S"))?).ok_or(ParseError::Invalid("S"))?;
            let body = Liquidation {
                price: parse_e8(r.price.ok_or(ParseError::Missing("p"))?).field("p")?,
                size: parse_e8(r.size.ok_or(ParseError::Missing("v"))?).field("v")?,
                side: side as u8,
                reserved: [0; 63],
            };
            let ts = opt_ts(r.time, ms_text_ns, "T")?;
            if let Some(id) = self.resolve(ctx, stream, r.symbol.ok_or(ParseError::Missing("s"))?) {
                ctx.emit_body(VENUE, stream, id, ts, 0, 0, &body);
            }
            Ok(())
        };
        if Lexer::new(data).kind()? == ValueKind::Array {
            for_each_element(data, |row| one(row, ctx))
        } else {
            one(data, ctx)
        }
    }

    fn tickers(&mut self, ts: i64, cs: Option<&[u8]>, r: &Fields<'_>, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::Tickers as u8;
        let Some(id) = self.resolve(ctx, stream, r.symbol.ok_or(ParseError::Missing("symbol"))?)
        else {
            return Ok(());
        };
        let i = match self.tickers.iter().position(|t| t.instrument == id) {
            Some(i) => i,
            None => {
                self.tickers.push(TickerState {
                    instrument: id,
                    ..TickerState::default()
                });
                self.tickers.len() - 1
            }
        };
        // Parse everything before touching the cached state.
        let opt = |v: Option<&[u8]>, name| -> Result<Option<i64>, ParseError> {
            match v {
                None | Some(b"") => Ok(None),
                Some(t) => parse_e8(t).field(name).map(Some),
            }
        };
        let bid = opt(r.bid, "bid1Price")?;
        let bid_size = opt(r.bid_size, "bid1Size")?;
        let ask = opt(r.ask, "ask1Price")?;
        let ask_size = opt(r.ask_size, "ask1Size")?;
        let mark = r
            .mark
            .map(|m| parse_fixed_i128(m, 18).field("markPrice"))
            .transpose()?;
        let index = r
            .index
            .map(|m| parse_fixed_i128(m, 18).field("indexPrice"))
            .transpose()?;
        let rate = match r.funding {
            None | Some(b"") => None,
            Some(f) => Some(
                i64::try_from(parse_fixed_i128(f, 18).field("fundingRate")? / 1_000_000)
                    .map_err(|_| ParseError::Invalid("fundingRate"))?,
            ),
        };
        let next = match r.next_funding {
            None | Some(b"") => None,
            Some(t) => Some(ms_text_ns(t).field("nextFundingTime")?),
        };
        let t = &mut self.tickers[i];
        let tob_changed =
            bid.is_some() || bid_size.is_some() || ask.is_some() || ask_size.is_some();
        t.bid = bid.unwrap_or(t.bid);
        t.bid_size = bid_size.unwrap_or(t.bid_size);
        t.ask = ask.unwrap_or(t.ask);
        t.ask_size = ask_size.unwrap_or(t.ask_size);
        t.next_funding_ns = next.unwrap_or(t.next_funding_ns);
        let t = *t;
        let seq = cs
            .or(r.seq)
            .map(parse_u64)
            .transpose()
            .field("cs")?
            .unwrap_or(0);
        if tob_changed {
            let body = TopOfBook {
                bid_price: t.bid,
                bid_size: t.bid_size,
                ask_price: t.ask,
                ask_size: t.ask_size,
                reserved: [0; 48],
            };
            ctx.emit_body(VENUE, stream, id, ts, seq, 0, &body);
        }
        let e8 = |v: i128| i64::try_from(v / 10_000_000_000).unwrap_or(0);
        for (value, kind) in [(mark, 2u8), (index, 1u8)] {
            if let Some(v) = value {
                let body = IndexPrice {
                    value_e18: v,
                    price: e8(v),
                    price_type: kind,
                    reserved: [0; 55],
                };
                ctx.emit_body(VENUE, stream, id, ts, seq, 0, &body);
            }
        }
        if let Some(rate) = rate {
            let body = Funding {
                rate,
                next_funding_ts_ns: t.next_funding_ns,
                mark_price: mark.map_or(0, e8),
                reserved: [0; 56],
            };
            ctx.emit_body(VENUE, stream, id, ts, seq, 0, &body);
        }
        Ok(())
    }
}

json_fields! {
    struct Fields {
        symbol: str <- b"s" | b"symbol",
        side: str <- b"S" | b"side",
        price: scalar <- b"p" | b"price",
        size: scalar <- b"v" | b"size",
        time: scalar <- b"T" | b"updatedTime",
        id: scalar <- b"i",
        seq: scalar <- b"seq" | b"cs",
        bid: scalar <- b"bid1Price",
        bid_size: scalar <- b"bid1Size",
        ask: scalar <- b"ask1Price",
        ask_size: scalar <- b"ask1Size",
        mark: scalar <- b"markPrice",
        index: scalar <- b"indexPrice" | b"usdIndexPrice",
        funding: scalar <- b"fundingRate",
        next_funding: scalar <- b"nextFundingTime",
    }
}

/// A frame's `data`: read in the envelope's pass when `topic` came before it (ticker and order
/// book objects), else its raw text, read afterwards.
enum Data<'a> {
    Raw(&'a [u8]),
    Ticker(Fields<'a>),
    /// The book fields; their level arrays converted into the scratch batch when
    /// [`LevelsInPlace::any`].
    Book(BookData<'a>, LevelsInPlace),
    /// A `publicTrade` array (its text) whose rows were read into the adapter's `trade_rows`.
    Rows(&'a [u8]),
}

/// The raw text of a `data` that was not read in place; one read in place under another
/// channel (a repeated `topic` key) is invalid.
fn raw(data: Data<'_>) -> Result<&[u8], ParseError> {
    match data {
        Data::Raw(raw) | Data::Rows(raw) => Ok(raw),
        Data::Ticker(_) | Data::Book(..) => Err(ParseError::Invalid("topic")),
    }
}

/// The channel of a topic (`orderbook.50.BTCUSDT` → `orderbook`).
fn channel_of(topic: &[u8]) -> &[u8] {
    topic.split(|&b| b == b'.').next().unwrap_or(b"")
}

/// A frame's envelope.
#[derive(Default)]
struct Envelope<'a> {
    topic: Option<&'a [u8]>,
    kind: Option<&'a [u8]>,
    ts: Option<&'a [u8]>,
    data: Option<Data<'a>>,
    cs: Option<&'a [u8]>,
    op: bool,
}

impl<'a> Envelope<'a> {
    /// Reads `raw`, which must be one object and nothing else. With `levels`, an order book's
    /// `b` / `a` arrays are converted into that scratch batch in the same pass (cleared first);
    /// shapes that [`LevelsInPlace`] refuses, or a second `data`, are then errors, and the
    /// caller reads the frame again without `levels`.
    fn parse_exact(
        raw: &'a [u8],
        mut in_place: Option<(&mut Vec<Record>, &mut Vec<TradeSpans>)>,
    ) -> Result<Self, ParseError> {
        let mut f = Self::default();
        if let Some((scratch, rows)) = in_place.as_mut() {
            scratch.clear();
            rows.clear();
        }
        let mut j = Lexer::new(raw);
        j.begin_object()?;
        while let Some(key) = j.next_key()? {
            match key {
                b"topic" => f.topic = Some(j.str()?),
                b"type" => f.kind = Some(j.str()?),
                b"ts" => f.ts = Some(j.scalar()?),
                b"data" => {
                    f.data = Some(match f.topic.map(channel_of) {
                        Some(b"tickers") => Data::Ticker(Fields::read(&mut j)?),
                        Some(b"orderbook") => match in_place.as_mut() {
                            None => Data::Book(BookData::read(&mut j)?, LevelsInPlace::default()),
                            Some(_) if f.data.is_some() => {
                                return Err(ParseError::Invalid("data repeated"));
                            }
                            Some((scratch, _)) => book_in_place(&mut j, scratch)?,
                        },
                        Some(b"publicTrade") if j.peek() == Some(b'[') => match in_place.as_mut() {
                            None => Data::Raw(j.raw_value()?),
                            Some(_) if f.data.is_some() => {
                                return Err(ParseError::Invalid("data repeated"));
                            }
                            Some((_, rows)) => {
                                // Rows kept as spans: handled once the frame is whole.
                                let start = j.pos();
                                j.begin_array()?;
                                while j.next_element()? {
                                    rows.push(TradeSpans::of(raw, &Fields::read(&mut j)?));
                                }
                                Data::Rows(j.text_since(start))
                            }
                        },
                        _ => Data::Raw(j.raw_value()?),
                    });
                }
                b"cs" => f.cs = Some(j.scalar()?),
                b"op" | b"success" => {
                    j.skip_value()?;
                    f.op = true;
                }
                _ => j.skip_value()?,
            }
        }
        j.end()?;
        Ok(f)
    }
}

json_fields! {
    /// An `orderbook.*` message's `data`.
    struct BookData {
        s: str <- b"s",
        b: raw <- b"b",
        a: raw <- b"a",
        u: scalar <- b"u",
    }
}

/// [`BookData::read`] with the `b` / `a` arrays converted into `scratch` as they are lexed
/// ([`LevelsInPlace`]); a side that is not an array is refused (the raw path decides).
fn book_in_place<'a>(j: &mut Lexer<'a>, scratch: &mut Vec<Record>) -> Result<Data<'a>, ParseError> {
    let mut f = BookData::default();
    let mut levels = LevelsInPlace::default();
    j.begin_object()?;
    while let Some(key) = j.next_key()? {
        let (slot, side) = match key {
            b"b" => (&mut f.b, Side::Buy),
            b"a" => (&mut f.a, Side::Sell),
            _ => {
                f.read_field(key, j)?;
                continue;
            }
        };
        if j.peek() != Some(b'[') {
            return Err(ParseError::Invalid("level array"));
        }
        *slot = Some(levels.pairs(j, scratch, VENUE, side)?);
    }
    Ok(Data::Book(f, levels))
}

impl VenueAdapter for Bybit {
    adapter_identity!(VENUE, STREAMS);

    fn endpoint(&self) -> WsEndpoint {
        WsEndpoint {
            host: "stream.bybit.com",
            port: 443,
            path: if self.prefix.is_empty() {
                "/v5/public/spot"
            } else {
                "/v5/public/linear"
            },
        }
    }

    subscriptions!(op, "subscribe", "unsubscribe");

    fn keep_alive(&self) -> KeepAlive {
        KEEP_ALIVE
    }

    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        // One pass with the book levels converted as they are lexed; anything that pass
        // refuses is read again the general way (which reports errors).
        let in_place = Some((&mut self.scratch, &mut self.trade_rows));
        let envelope = match Envelope::parse_exact(frame, in_place) {
            Ok(envelope) => envelope,
            Err(_) => {
                self.scratch.clear();
                Envelope::parse_exact(frame, None)?
            }
        };
        let r = self.envelope(frame, envelope, ctx);
        self.scratch.clear();
        r
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        for b in &mut self.books {
            b.synced = false;
            b.u.reset();
        }
        ctx.counters.stream_mut(Stream::Orderbook as u8).reconnects += 1;
    }
}

impl Bybit {
    /// Handles a frame's envelope (read by `on_frame`).
    fn envelope(&mut self, frame: &[u8], envelope: Envelope<'_>, ctx: &mut Ctx<'_>) -> Parsed {
        let Envelope {
            topic,
            kind,
            ts,
            data,
            cs,
            op,
        } = envelope;
        let Some(topic) = topic else {
            if op {
                ctx.count_message(0, frame.len());
                return Ok(());
            }
            return Err(ParseError::Missing("topic"));
        };
        let ts = opt_ts(ts, ms_text_ns, "ts")?;
        let data = data.ok_or(ParseError::Missing("data"))?;
        let snapshot = kind == Some(b"snapshot");
        match channel_of(topic) {
            b"orderbook" => {
                let book = match data {
                    Data::Book(book, levels) => (book, levels),
                    other => (BookData::parse(raw(other)?)?, LevelsInPlace::default()),
                };
                ctx.count_message(Stream::Orderbook as u8, frame.len());
                self.orderbook(topic, snapshot, ts, book, ctx)
            }
            b"publicTrade" => {
                ctx.count_message(Stream::PublicTrade as u8, frame.len());
                match data {
                    Data::Rows(_) => {
                        let rows = core::mem::take(&mut self.trade_rows);
                        let r = rows
                            .iter()
                            .try_for_each(|row| self.trade_row(&row.fields(frame), ctx));
                        self.trade_rows = rows;
                        r
                    }
                    other => self.trades(raw(other)?, ctx),
                }
            }
            b"tickers" => {
                let fields = match data {
                    Data::Ticker(fields) => fields,
                    other => Fields::parse(raw(other)?)?,
                };
                ctx.count_message(Stream::Tickers as u8, frame.len());
                self.tickers(ts, cs, &fields, ctx)
            }
            b"allLiquidation" | b"liquidation" => {
                ctx.count_message(Stream::Liquidation as u8, frame.len());
                self.liquidations(raw(data)?, ctx)
            }
            _ => Err(ParseError::Unknown),
        }
    }
}

fn op(op: &str, symbols: &[&str], streams: &[&'static Selectable]) -> Vec<Outgoing> {
    let mut args = Vec::new();
    for s in symbols {
        for t in channels_for(streams, s) {
            args.push(format!("\"{t}.{s}\""));
        }
    }
    text_frame(format!("{{\"op\":\"{op}\",\"args\":[{}]}}", args.join(",")))
}
