//! OKX v5 public WebSocket (`wss://ws.okx.com:8443/ws/v5/public`).
//!
//! Frames are `{"arg":{"channel","instId"},"action"?,"data":[…]}`; everything numeric is a
//! string except `checksum` / `seqId` / `prevSeqId`. Channels: `books` (and `books5`,
//! `books-l2-tbt`, `books50-l2-tbt`) → BookLevel batches, `bbo-tbt` and `tickers` →
//! TopOfBook, `trades` → Trade (side = taker side), `mark-price` / `index-tickers` →
//! IndexPrice, `funding-rate` → Funding, `liquidation-orders` → Liquidation,
//! `open-interest` counted (no record kind yet). Keep-alive: the text `ping` → `pong`.
//!
//! Continuity (books): `prevSeqId` must equal the previous `seqId` (snapshot `prevSeqId` = -1;
//! equal ids = no-change push; `seqId` < `prevSeqId` = sequence reset after maintenance), and
//! the CRC32 of the top 25 levels' received text must equal `checksum`. In
//! [`SyncMode::Enforce`] a gap or mismatch drops the update, emits `gap_detected`, and queues
//! an unsubscribe + subscribe (fresh snapshot); updates before the snapshot are dropped.
//!
//! Funding rates carry up to 16 decimals; `Funding.rate` holds 12: extra digits are truncated
//! toward zero (a wider bus field is requested in docs/notes/feeds.md).

use ringbolt_bus::{FeedState, Funding, IndexPrice, Liquidation, Record, Side, TopOfBook, Venue};

use crate::adapter::{Action, Ctx, DecimalField, Outgoing, ParseError, Parsed, VenueAdapter};
use crate::continuity::SyncMode;
use crate::decimal::{parse_e8, parse_fixed_i128, parse_i64, parse_u64};
use crate::json::Lexer;
use crate::textbook::TextBook;
use crate::time::ms_text_ns;
use crate::venues::streams::{Selectable, channels_for};
use crate::venues::{
    flush_levels, opt_e8, opt_ts, push_parsed, req, req_e8, side_of, text_frame, trade,
};

const VENUE: Venue = Venue::Okx;
/// Levels kept per side of a checksum book (`books` sends 400).
const BOOK_CAPACITY: usize = 512;

pub use super::streams::okx::{ENDPOINT, KEEP_ALIVE, STREAMS, Stream};

#[derive(Debug)]
struct Book {
    instrument: u32,
    channel: String,
    symbol: String,
    text: TextBook,
    synced: bool,
    last_seq: Option<i64>,
}

/// The OKX adapter.
#[derive(Debug)]
pub struct Okx {
    mode: SyncMode,
    books: Vec<Book>,
    scratch: Vec<Record>,
    /// The levels of the current frame, converted while its rows are read.
    levels: Vec<OkxLevel>,
}

/// A level converted in place: values and the frame offsets of its texts (for the checksum).
#[derive(Clone, Copy, Debug)]
struct OkxLevel {
    price: i64,
    size: i64,
    price_text: (usize, usize),
    size_text: (usize, usize),
}

#[derive(Default)]
struct Row<'a> {
    /// Range of `Okx::levels`.
    asks: Option<(usize, usize)>,
    /// Range of `Okx::levels`.
    bids: Option<(usize, usize)>,
    ts: Option<&'a [u8]>,
    checksum: Option<&'a [u8]>,
    seq: Option<&'a [u8]>,
    prev_seq: Option<&'a [u8]>,
    inst: Option<&'a [u8]>,
    trade_id: Option<&'a [u8]>,
    px: Option<&'a [u8]>,
    sz: Option<&'a [u8]>,
    side: Option<&'a [u8]>,
    bid_px: Option<&'a [u8]>,
    bid_sz: Option<&'a [u8]>,
    ask_px: Option<&'a [u8]>,
    ask_sz: Option<&'a [u8]>,
    funding_rate: Option<&'a [u8]>,
    funding_time: Option<&'a [u8]>,
    mark_px: Option<&'a [u8]>,
    idx_px: Option<&'a [u8]>,
    details: Option<&'a [u8]>,
    bk_px: Option<&'a [u8]>,
}

fn row(raw: &[u8]) -> Result<Row<'_>, ParseError> {
    row_at(&mut Lexer::new(raw), raw, &mut Vec::new())
}

/// Calls `f` for every `[price, size, …]` row of the level array at the lexer's position, both
/// values converted in the pass that lexes them: `venues::for_each_pair_at`, except that the
/// row's trailing fields (OKX sends `"0","13"`: deprecated liquidations and the order count) are
/// stepped over by [`Lexer::skip_rest_of_array`]'s compact-string scan.
#[inline]
fn levels_at<'a>(j: &mut Lexer<'a>, mut f: impl FnMut(super::TextLevel<'a>) -> Parsed) -> Parsed {
    j.begin_array()?;
    while j.next_element()? {
        // A row whose two values convert is read without carrying error values.
        if let Some([(price_text, price), (size_text, size)]) = j.quoted_fixed_row_ok([8, 8]) {
            j.skip_rest_of_array()?;
            f(super::TextLevel {
                price_text,
                size_text,
                price,
                size,
            })?;
            continue;
        }
        let [(price_text, price), (size_text, size)] = super::pair_row_head(j)?;
        j.skip_rest_of_array()?;
        f(super::TextLevel::new(price_text, price, size_text, size)?)?;
    }
    Ok(())
}

/// Reads the object at the lexer's position (in place: no pre-scan of its extent); level
/// arrays are converted into `levels` as they are read, their texts located relative to
/// `frame`.
fn row_at<'a>(
    j: &mut Lexer<'a>,
    frame: &[u8],
    levels: &mut Vec<OkxLevel>,
) -> Result<Row<'a>, ParseError> {
    let mut r = Row::default();
    let base = frame.as_ptr() as usize;
    let span = |t: &[u8]| {
        let start = (t.as_ptr() as usize).wrapping_sub(base);
        (start, start + t.len())
    };
    j.begin_object()?;
    while let Some(key) = j.next_key()? {
        match key {
            b"asks" | b"bids" => {
                let start = levels.len();
                levels_at(j, |l| {
                    levels.push(OkxLevel {
                        price: l.price,
                        size: l.size,
                        price_text: span(l.price_text),
                        size_text: span(l.size_text),
                    });
                    Ok(())
                })?;
                let range = Some((start, levels.len()));
                if key == b"asks" {
                    r.asks = range;
                } else {
                    r.bids = range;
                }
            }
            b"ts" => r.ts = Some(j.scalar()?),
            b"checksum" => r.checksum = Some(j.scalar()?),
            b"seqId" => r.seq = Some(j.scalar()?),
            b"prevSeqId" => r.prev_seq = Some(j.scalar()?),
            b"instId" => r.inst = Some(j.str()?),
            b"tradeId" => r.trade_id = Some(j.scalar()?),
            b"px" => r.px = Some(j.scalar()?),
            b"sz" => r.sz = Some(j.scalar()?),
            b"side" => r.side = Some(j.str()?),
            b"bidPx" => r.bid_px = Some(j.scalar()?),
            b"bidSz" => r.bid_sz = Some(j.scalar()?),
            b"askPx" => r.ask_px = Some(j.scalar()?),
            b"askSz" => r.ask_sz = Some(j.scalar()?),
            b"fundingRate" => r.funding_rate = Some(j.scalar()?),
            b"fundingTime" => r.funding_time = Some(j.scalar()?),
            b"markPx" => r.mark_px = Some(j.scalar()?),
            b"idxPx" => r.idx_px = Some(j.scalar()?),
            b"details" => r.details = Some(j.raw_value()?),
            b"bkPx" => r.bk_px = Some(j.scalar()?),
            _ => j.skip_value()?,
        }
    }
    Ok(r)
}

/// A frame's `data` as the envelope pass left it.
// One on the stack per frame; boxing the row would allocate per frame.
#[allow(clippy::large_enum_variant)]
enum Data<'a> {
    /// No `data` key.
    Missing,
    /// Captured raw, read row by row afterwards (general path).
    Raw(&'a [u8]),
    /// Read in the envelope's pass: zero or one row.
    InPlace(Option<Row<'a>>),
    /// The in-place pass met something only the general path handles.
    Fallback,
}

/// The envelope of a push: `arg`, `action`, `event` and `data`.
struct Envelope<'a> {
    channel: Option<&'a [u8]>,
    inst: Option<&'a [u8]>,
    action: Option<&'a [u8]>,
    event: bool,
    data: Data<'a>,
}

/// Reads the envelope; with `in_place`, a `data` array that follows `arg` is read as rows in
/// the same pass (levels into `levels`), giving [`Data::Fallback`] for more than one row.
fn envelope<'a>(
    frame: &'a [u8],
    levels: &mut Vec<OkxLevel>,
    in_place: bool,
) -> Result<Envelope<'a>, ParseError> {
    let mut j = Lexer::new(frame);
    j.begin_object()?;
    let mut env = Envelope {
        channel: None,
        inst: None,
        action: None,
        event: false,
        data: Data::Missing,
    };
    while let Some(key) = j.next_key()? {
        match key {
            b"arg" => {
                j.begin_object()?;
                while let Some(k) = j.next_key()? {
                    match k {
                        b"channel" => env.channel = Some(j.str()?),
                        b"instId" => env.inst = Some(j.str()?),
                        _ => j.skip_value()?,
                    }
                }
            }
            b"action" => env.action = Some(j.str()?),
            b"data" if in_place && env.channel.is_some() => {
                env.data = rows_in_place(&mut j, frame, levels)?
            }
            b"data" => env.data = Data::Raw(j.raw_value()?),
            b"event" => {
                env.event = true;
                j.skip_value()?;
            }
            _ => j.skip_value()?,
        }
    }
    j.end()?;
    Ok(env)
}

/// The rows of `data` read at the lexer's position: none or one, else [`Data::Fallback`].
fn rows_in_place<'a>(
    j: &mut Lexer<'a>,
    frame: &'a [u8],
    levels: &mut Vec<OkxLevel>,
) -> Result<Data<'a>, ParseError> {
    j.begin_array()?;
    if !j.next_element()? {
        return Ok(Data::InPlace(None));
    }
    let row = row_at(j, frame, levels)?;
    if j.next_element()? {
        return Ok(Data::Fallback);
    }
    Ok(Data::InPlace(Some(row)))
}

fn ts_ns(v: Option<&[u8]>) -> Result<i64, ParseError> {
    opt_ts(v, ms_text_ns, "ts")
}

/// The first level of a converted level range.
fn first_level(levels: &[OkxLevel], range: Option<(usize, usize)>) -> (i64, i64) {
    range
        .and_then(|(a, b)| levels.get(a..b))
        .and_then(<[OkxLevel]>::first)
        .map_or((0, 0), |l| (l.price, l.size))
}

impl Okx {
    /// A new adapter.
    #[must_use]
    pub fn new(mode: SyncMode) -> Self {
        Okx {
            mode,
            books: Vec::new(),
            scratch: Vec::with_capacity(2 * BOOK_CAPACITY),
            levels: Vec::with_capacity(2 * BOOK_CAPACITY),
        }
    }

    fn book_index(&mut self, instrument: u32, channel: &[u8], symbol: &[u8]) -> usize {
        if let Some(i) = self.books.iter().position(|b| b.instrument == instrument) {
            return i;
        }
        // Cold path: first sight of a book.
        self.books.push(Book {
            instrument,
            channel: String::from_utf8_lossy(channel).into_owned(),
            symbol: String::from_utf8_lossy(symbol).into_owned(),
            text: TextBook::with_capacity(BOOK_CAPACITY),
            synced: false,
            last_seq: None,
        });
        self.books.len() - 1
    }

    #[allow(clippy::too_many_lines)]
    fn book(
        &mut self,
        channel: &[u8],
        symbol: &[u8],
        snapshot: bool,
        r: &Row<'_>,
        frame: &[u8],
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        let stream = Stream::Books as u8;
        let ts = ts_ns(r.ts)?;
        let seq = r.seq.map(parse_i64).transpose().field("seqId")?;
        let prev = r.prev_seq.map(parse_i64).transpose().field("prevSeqId")?;
        let checksum = r.checksum.map(parse_i64).transpose().field("checksum")?;
        let Some(id) = ctx.resolve(VENUE, stream, symbol) else {
            return Ok(());
        };
        let venue_seq = seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
        // Every level was converted (and validated) while the frame was read.
        self.scratch.clear();
        for (range, side) in [(r.bids, Side::Buy), (r.asks, Side::Sell)] {
            let Some((a, b)) = range else { continue };
            for l in self.levels.get(a..b).unwrap_or_default() {
                push_parsed(
                    &mut self.scratch,
                    VENUE,
                    stream,
                    id,
                    side,
                    l.price,
                    l.size,
                    ts,
                    venue_seq,
                );
            }
        }
        let bi = self.book_index(id, channel, symbol);
        let enforce = self.mode == SyncMode::Enforce;
        let book = &mut self.books[bi];
        // Sequence rule.
        let mut broken = false;
        if !snapshot {
            if enforce && !book.synced {
                ctx.counters.stream_mut(stream).dropped_unsynced += 1;
                self.scratch.clear();
                return Ok(());
            }
            if let (Some(last), Some(prev), Some(seq)) = (book.last_seq, prev, seq)
                && prev != last
                && seq >= prev
            {
                broken = true;
            }
        }
        // Apply to the text book (texts as received) and verify the checksum.
        if snapshot {
            book.text.clear();
        }
        let mut text_ok = true;
        for (range, side) in [(r.bids, Side::Buy), (r.asks, Side::Sell)] {
            let Some((a, b)) = range else { continue };
            for l in self.levels.get(a..b).unwrap_or_default() {
                // A text range outside the frame is refused like an over-long text.
                text_ok &= book
                    .text
                    .apply_in(
                        side,
                        l.price,
                        l.size,
                        frame,
                        l.price_text.0..l.price_text.1,
                        l.size_text.0..l.size_text.1,
                    )
                    .is_ok();
            }
        }
        if let Some(expected) = checksum
            && (!text_ok || i64::from(book.text.okx_checksum()) != expected)
        {
            ctx.counters.stream_mut(stream).checksum_errors += 1;
            broken = true;
        }
        book.last_seq = seq.or(book.last_seq);
        if broken {
            let c = ctx.counters.stream_mut(stream);
            c.gaps += 1;
            if enforce {
                book.synced = false;
                book.last_seq = None;
                ctx.emit_status(VENUE, stream, id, FeedState::GapDetected);
                let arg = format!(
                    "{{\"channel\":\"{}\",\"instId\":\"{}\"}}",
                    book.channel, book.symbol
                );
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
        let resynced = snapshot && !book.synced;
        if resynced {
            book.synced = true;
            ctx.counters.stream_mut(stream).resyncs += 1;
        }
        flush_levels(
            ctx,
            &mut self.scratch,
            snapshot,
            VENUE,
            stream,
            id,
            ts,
            venue_seq,
        );
        if resynced {
            ctx.emit_status(VENUE, stream, id, FeedState::Resynced);
        }
        Ok(())
    }
    /// One row of a push's `data`, for `stream`.
    #[allow(clippy::too_many_arguments)]
    fn on_row(
        &mut self,
        stream: Stream,
        channel: &[u8],
        action: Option<&[u8]>,
        symbol: &[u8],
        ts: i64,
        r: &Row<'_>,
        frame: &[u8],
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        let s = stream as u8;
        match stream {
            Stream::Books => {
                let snapshot = match action {
                    Some(b"snapshot") => true,
                    Some(b"update") => false,
                    // books5 / bbo-style pushes are full snapshots without `action`.
                    None => true,
                    Some(_) => return Err(ParseError::Invalid("action")),
                };
                self.book(channel, symbol, snapshot, r, frame, ctx)?;
            }
            Stream::BboTbt | Stream::Tickers => {
                let (bid, bid_sz, ask, ask_sz) = if stream == Stream::BboTbt {
                    let b = first_level(&self.levels, r.bids);
                    let a = first_level(&self.levels, r.asks);
                    (b.0, b.1, a.0, a.1)
                } else {
                    (
                        opt_e8(r.bid_px, "bidPx")?,
                        opt_e8(r.bid_sz, "bidSz")?,
                        opt_e8(r.ask_px, "askPx")?,
                        opt_e8(r.ask_sz, "askSz")?,
                    )
                };
                let seq = r
                    .seq
                    .map(parse_u64)
                    .transpose()
                    .field("seqId")?
                    .unwrap_or(0);
                if let Some(id) = ctx.resolve(VENUE, s, symbol) {
                    let body = TopOfBook {
                        bid_price: bid,
                        bid_size: bid_sz,
                        ask_price: ask,
                        ask_size: ask_sz,
                        reserved: [0; 48],
                    };
                    ctx.emit_body(VENUE, s, id, ts, seq, 0, &body);
                }
            }
            Stream::Trades => {
                let side = side_of(req(r.side, "side")?).ok_or(ParseError::Invalid("side"))?;
                let trade_id = parse_u64(req(r.trade_id, "tradeId")?).unwrap_or(0);
                let body = trade(req_e8(r.px, "px")?, req_e8(r.sz, "sz")?, trade_id, side);
                if let Some(id) = ctx.resolve(VENUE, s, symbol) {
                    ctx.emit_body(VENUE, s, id, ts, trade_id, 0, &body);
                }
            }
            Stream::FundingRate => {
                let Some(rate_text) = r.funding_rate else {
                    // Newly listed instruments: only nextFundingRate; nothing current.
                    return Ok(());
                };
                // Truncate toward zero to RATE_SCALE (1e-12): see the module doc.
                let rate = parse_fixed_i128(rate_text, 18).field("fundingRate")? / 1_000_000;
                let body = Funding {
                    rate: i64::try_from(rate).map_err(|_| ParseError::Invalid("fundingRate"))?,
                    next_funding_ts_ns: ts_ns(r.funding_time)?,
                    mark_price: 0,
                    reserved: [0; 56],
                };
                if let Some(id) = ctx.resolve(VENUE, s, symbol) {
                    ctx.emit_body(VENUE, s, id, ts, 0, 0, &body);
                }
            }
            Stream::MarkPrice | Stream::IndexTickers => {
                let (text, kind, name) = if stream == Stream::MarkPrice {
                    (r.mark_px, 2, "markPx")
                } else {
                    (r.idx_px, 1, "idxPx")
                };
                let text = req(text, name)?;
                let body = IndexPrice {
                    value_e18: parse_fixed_i128(text, 18).field(name)?,
                    price: parse_e8(text).field(name)?,
                    price_type: kind,
                    reserved: [0; 55],
                };
                if let Some(id) = ctx.resolve(VENUE, s, symbol) {
                    ctx.emit_body(VENUE, s, id, ts, 0, 0, &body);
                }
            }
            Stream::OpenInterest => {}
            Stream::Liquidations => Self::liquidations(symbol, r, ctx)?,
        }
        Ok(())
    }

    /// A `liquidation-orders` row: one Liquidation per entry of its `details`.
    fn liquidations(symbol: &[u8], r: &Row<'_>, ctx: &mut Ctx<'_>) -> Parsed {
        let s = Stream::Liquidations as u8;
        let details = req(r.details, "details")?;
        let mut d = Lexer::new(details);
        d.begin_array()?;
        while d.next_element()? {
            let x = row(d.raw_value()?)?;
            let side = side_of(req(x.side, "side")?).ok_or(ParseError::Invalid("side"))?;
            let body = Liquidation {
                price: parse_e8(req(x.bk_px, "bkPx")?).field("bkPx")?,
                size: parse_e8(req(x.sz, "sz")?).field("sz")?,
                side: side as u8,
                reserved: [0; 63],
            };
            let ts = ts_ns(x.ts)?;
            if let Some(id) = ctx.resolve(VENUE, s, symbol) {
                ctx.emit_body(VENUE, s, id, ts, 0, 0, &body);
            }
        }
        Ok(())
    }
}

impl VenueAdapter for Okx {
    adapter_profile!(VENUE, STREAMS, ENDPOINT, KEEP_ALIVE);

    subscriptions!(op, "subscribe", "unsubscribe");

    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        if frame.trim_ascii() == b"pong" {
            ctx.count_message(0, frame.len());
            return Ok(());
        }
        // Fast path: a one-row `data` after `arg` (OKX's order) is read in the envelope's pass,
        // its levels converted as they are lexed, and interpreted only once the whole frame is
        // valid. Anything else (several rows, `arg` last, any error) takes the general path,
        // which captures `data` raw and reads it again (fuzzed against each other in
        // tests/fuzz.rs::okx_in_place_and_general_paths_agree).
        self.levels.clear();
        let env = match envelope(frame, &mut self.levels, true) {
            Ok(env) if !matches!(env.data, Data::Fallback) => env,
            _ => {
                self.levels.clear();
                envelope(frame, &mut self.levels, false)?
            }
        };
        if env.event {
            ctx.count_message(0, frame.len());
            return Ok(());
        }
        let channel = req(env.channel, "arg.channel")?;
        if matches!(env.data, Data::Missing | Data::Fallback) {
            return Err(ParseError::Missing("data"));
        }
        let stream = match channel {
            b"books" | b"books5" | b"books-l2-tbt" | b"books50-l2-tbt" => Stream::Books,
            b"bbo-tbt" => Stream::BboTbt,
            b"trades" | b"trades-all" => Stream::Trades,
            b"tickers" => Stream::Tickers,
            b"funding-rate" => Stream::FundingRate,
            b"mark-price" => Stream::MarkPrice,
            b"index-tickers" => Stream::IndexTickers,
            b"open-interest" => Stream::OpenInterest,
            b"liquidation-orders" => Stream::Liquidations,
            _ => return Err(ParseError::Unknown),
        };
        let (inst, action) = (env.inst, env.action);
        let on_row = |okx: &mut Self, r: &Row<'_>, ctx: &mut Ctx<'_>| -> Parsed {
            let symbol = r.inst.or(inst).ok_or(ParseError::Missing("instId"))?;
            let ts = ts_ns(r.ts)?;
            okx.on_row(stream, channel, action, symbol, ts, r, frame, ctx)
        };
        ctx.count_message(stream as u8, frame.len());
        match env.data {
            Data::Missing | Data::Fallback => Ok(()),
            Data::InPlace(row) => row.map_or(Ok(()), |r| on_row(self, &r, ctx)),
            Data::Raw(data) => {
                let mut rows = Lexer::new(data);
                rows.begin_array()?;
                while rows.next_element()? {
                    let r = row_at(&mut rows, frame, &mut self.levels)?;
                    on_row(self, &r, ctx)?;
                }
                Ok(())
            }
        }
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        for b in &mut self.books {
            b.synced = false;
            b.last_seq = None;
            b.text.clear();
        }
        ctx.counters.stream_mut(Stream::Books as u8).reconnects += 1;
    }
}

fn op(op: &str, symbols: &[&str], streams: &[&'static Selectable]) -> Vec<Outgoing> {
    let mut args: Vec<String> = Vec::new();
    for s in symbols {
        // SWAP-only channels (funding, mark, open interest, liquidations) are skipped for spot
        // instruments.
        for channel in channels_for(streams, s) {
            let arg = match channel {
                // The index of `BTC-USDT` and `BTC-USDT-SWAP` is `BTC-USDT`: subscribed once.
                "index-tickers" => format!(
                    "{{\"channel\":\"{channel}\",\"instId\":\"{}\"}}",
                    s.strip_suffix("-SWAP").unwrap_or(s)
                ),
                // Liquidations are per instrument type (rows of other instruments are counted
                // as unknown instrument).
                "liquidation-orders" => {
                    format!("{{\"channel\":\"{channel}\",\"instType\":\"SWAP\"}}")
                }
                _ => format!("{{\"channel\":\"{channel}\",\"instId\":\"{s}\"}}"),
            };
            if !args.contains(&arg) {
                args.push(arg);
            }
        }
    }
    text_frame(format!("{{\"op\":\"{op}\",\"args\":[{}]}}", args.join(",")))
}
