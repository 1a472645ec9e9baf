//! Deribit JSON-RPC WebSocket (`wss://www.deribit.com/ws/api/v2`).
//!
//! Notifications are `{"jsonrpc":"2.0","method":"subscription","params":{"channel","data"}}`;
//! numbers are JSON numbers (their text is parsed exactly). Channels: `book.*` (`[action, price,
//! amount]` levels with `change_id` / `prev_change_id`; grouped books `book.<i>.none.<n>.*` are
//! full `[price, amount]` snapshots) → BookLevel batches, `trades.*` → Trade (+ Liquidation when
//! `liquidation` is set), `ticker.*` → TopOfBook, IndexPrice (mark, index) and Funding
//! (`current_funding`), `quote.*` → TopOfBook, `deribit_price_index.*` → IndexPrice.
//! A server `heartbeat` `test_request` is answered with `public/test` ([`Action::Send`]).
//! BTC-PERPETUAL amounts are USD (10-USD contracts).
//!
//! Continuity: book `prev_change_id` must equal the last `change_id` (a mismatch ⇒ resubscribe
//! in [`SyncMode::Enforce`]); `trade_seq` +1 per instrument (gaps counted).

use ringbolt_bus::{FeedState, Funding, IndexPrice, Liquidation, Record, Side, TopOfBook, Venue};

use crate::adapter::{Action, Ctx, DecimalField, Outgoing, ParseError, Parsed, VenueAdapter};
use crate::continuity::{SeqCheck, SeqTracker, SyncMode};
use crate::decimal::{parse_e8, parse_fixed_i64, parse_fixed_i128, parse_u64};
use crate::json::Lexer;
use crate::time::ms_text_ns;
use crate::venues::streams::{Selectable, channels_for};
use crate::venues::{
    Span, flush_levels, for_each_element, opt_ts, push_parsed, req, side_of, span_in, stamp_levels,
    sync_gate, text_at, trade,
};

const VENUE: Venue = Venue::Deribit;

pub use super::streams::deribit::{ENDPOINT, KEEP_ALIVE, STREAMS, Stream};

#[derive(Debug)]
struct Book {
    instrument: u32,
    channel: String,
    last_change: Option<u64>,
    synced: bool,
}

/// The Deribit adapter.
#[derive(Debug)]
pub struct Deribit {
    mode: SyncMode,
    books: Vec<Book>,
    trades: Vec<(u32, SeqTracker)>,
    scratch: Vec<Record>,
    /// A trades push's rows read in the envelope's pass (their texts as spans of the frame),
    /// handled once the whole frame has been read.
    trade_rows: Vec<TradeSpans>,
}

/// The texts of one trade row that [`Deribit::trade_row`] reads, as spans of the frame.
#[derive(Clone, Copy, Debug, Default)]
struct TradeSpans {
    direction: Option<Span>,
    price: Option<Span>,
    amount: Option<Span>,
    trade_seq: Option<Span>,
    trade_id: Option<Span>,
    ts: Option<Span>,
    instrument: Option<Span>,
    liquidation: Option<Span>,
}

impl TradeSpans {
    /// The spans of a row's fields (`base` is the frame they were read from).
    fn of(base: &[u8], d: &Data<'_>) -> Self {
        let span = |t: Option<&[u8]>| t.map(|t| span_in(base, t));
        TradeSpans {
            direction: span(d.direction),
            price: span(d.price),
            amount: span(d.amount),
            trade_seq: span(d.trade_seq),
            trade_id: span(d.trade_id),
            ts: span(d.ts),
            instrument: span(d.instrument),
            liquidation: span(d.liquidation),
        }
    }

    /// The row again, its fields as [`TradeSpans::of`] took them.
    fn data<'a>(&self, base: &'a [u8]) -> Data<'a> {
        let text = |s: Option<Span>| s.map(|s| text_at(base, s));
        Data {
            direction: text(self.direction),
            price: text(self.price),
            amount: text(self.amount),
            trade_seq: text(self.trade_seq),
            trade_id: text(self.trade_id),
            ts: text(self.ts),
            instrument: text(self.instrument),
            liquidation: text(self.liquidation),
            ..Data::default()
        }
    }
}

/// What [`Deribit::book_in_place`] read: one object push (its channel, `data` and whether its
/// levels are in the scratch batch), or a trades push (its rows in `trade_rows`). A local of
/// one call, never stored: the size difference costs nothing a box would not cost more.
#[allow(clippy::large_enum_variant)]
enum InPlace<'a> {
    Object(&'a [u8], Data<'a>, bool),
    Trades,
}

json_fields! {
    struct Data {
        kind: str <- b"type",
        ts: opt <- b"timestamp",
        instrument: str <- b"instrument_name",
        index_name: str <- b"index_name",
        change_id: opt <- b"change_id",
        prev_change_id: opt <- b"prev_change_id",
        bids: raw <- b"bids",
        asks: raw <- b"asks",
        price: opt <- b"price",
        best_bid: opt <- b"best_bid_price",
        best_bid_amount: opt <- b"best_bid_amount",
        best_ask: opt <- b"best_ask_price",
        best_ask_amount: opt <- b"best_ask_amount",
        mark: opt <- b"mark_price",
        index: opt <- b"index_price",
        funding: opt <- b"current_funding",
        amount: opt <- b"amount",
        direction: str <- b"direction",
        trade_seq: opt <- b"trade_seq",
        trade_id: opt <- b"trade_id",
        liquidation: str <- b"liquidation",
    }
}

/// Whether a channel's `data` is one object (read in place by the fast path).
fn object_channel(channel: &[u8]) -> bool {
    [
        &b"book."[..],
        b"ticker.",
        b"quote.",
        b"deribit_price_index.",
    ]
    .iter()
    .any(|p| channel.starts_with(p))
}

/// A `ticker` or `quote` push (`stream`): top of book; mark, index and funding on tickers.
fn ticker(stream: u8, d: &Data<'_>, frame_len: usize, ctx: &mut Ctx<'_>) -> Parsed {
    ctx.count_message(stream, frame_len);
    let ts = opt_ts(d.ts, ms_text_ns, "timestamp")?;
    let opt = |v: Option<&[u8]>, n| match v {
        None | Some(b"null") => Ok(0),
        Some(t) => parse_e8(t).field(n),
    };
    let tob = TopOfBook {
        bid_price: opt(d.best_bid, "best_bid_price")?,
        bid_size: opt(d.best_bid_amount, "best_bid_amount")?,
        ask_price: opt(d.best_ask, "best_ask_price")?,
        ask_size: opt(d.best_ask_amount, "best_ask_amount")?,
        reserved: [0; 48],
    };
    let mark = d.mark.map(|m| index_body(m, 2, "mark_price")).transpose()?;
    let index = d
        .index
        .map(|m| index_body(m, 1, "index_price"))
        .transpose()?;
    let funding = d
        .funding
        .map(|f| parse_fixed_i64(f, 12))
        .transpose()
        .field("current_funding")?;
    let Some(id) = ctx.resolve(VENUE, stream, req(d.instrument, "instrument_name")?) else {
        return Ok(());
    };
    ctx.emit_body(VENUE, stream, id, ts, 0, 0, &tob);
    if stream == Stream::Ticker as u8 {
        for body in [mark, index].into_iter().flatten() {
            ctx.emit_body(VENUE, stream, id, ts, 0, 0, &body);
        }
        if let Some(rate) = funding {
            let body = Funding {
                rate,
                next_funding_ts_ns: 0,
                mark_price: mark.map_or(0, |m| m.price),
                reserved: [0; 56],
            };
            ctx.emit_body(VENUE, stream, id, ts, 0, 0, &body);
        }
    }
    Ok(())
}

/// One book level at the lexer: `[action, price, amount]` (`delete` ⇒ amount 0) or
/// `[price, amount]`, numbers converted to 1e-8 in the pass that lexes them.
#[inline]
fn level_at(j: &mut Lexer<'_>) -> Result<(i64, i64), ParseError> {
    // The compact form (`["new",37240.0,20.0]`, `[31523.5,128780.0]`) in one step; an unknown
    // word (a quoted price) or any other shape takes the element-by-element path below.
    let at = j.clone();
    if let Some((word, [(_, price), (_, amount)])) = j.compact_number_row([8, 8]) {
        let delete = match word {
            None | Some(b"new" | b"change") => Some(false),
            Some(b"delete") => Some(true),
            Some(_) => None,
        };
        if let Some(delete) = delete {
            let price = price.field("price")?;
            let amount = if delete { 0 } else { amount.field("amount")? };
            return Ok((price, amount));
        }
        *j = at;
    }
    j.begin_array()?;
    if !j.next_element()? {
        return Err(ParseError::Invalid("book level"));
    }
    let mut delete = false;
    if j.peek() == Some(b'"') {
        let at = j.clone();
        let action = match j.str()? {
            b"delete" => Some(true),
            b"new" | b"change" => Some(false),
            _ => None,
        };
        match action {
            Some(d) => {
                delete = d;
                if !j.next_element()? {
                    return Err(ParseError::Invalid("book level"));
                }
            }
            // Not an action: a quoted price (two-element form).
            None => *j = at,
        }
    }
    let (_, price) = j.scalar_fixed_i64(8)?;
    if !j.next_element()? {
        return Err(ParseError::Invalid("book level"));
    }
    let (_, amount) = j.scalar_fixed_i64(8)?;
    if j.next_element()? {
        return Err(ParseError::Invalid("book level"));
    }
    let price = price.field("price")?;
    let amount = if delete { 0 } else { amount.field("amount")? };
    Ok((price, amount))
}

fn index_body(text: &[u8], kind: u8, name: &'static str) -> Result<IndexPrice, ParseError> {
    Ok(IndexPrice {
        value_e18: parse_fixed_i128(text, 18).field(name)?,
        price: parse_e8(text).field(name)?,
        price_type: kind,
        reserved: [0; 55],
    })
}

impl Deribit {
    /// A new adapter.
    #[must_use]
    pub fn new(mode: SyncMode) -> Self {
        Deribit {
            mode,
            books: Vec::new(),
            trades: Vec::new(),
            scratch: Vec::with_capacity(4096),
            trade_rows: Vec::with_capacity(256),
        }
    }

    /// A book push. `in_scratch`: its level arrays were converted in the envelope's pass and
    /// the scratch batch holds their levels ([`Deribit::book_in_place`]).
    #[allow(clippy::too_many_lines)]
    fn book(
        &mut self,
        channel: &[u8],
        d: &Data<'_>,
        in_scratch: bool,
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        let stream = Stream::Book as u8;
        let ts = opt_ts(d.ts, ms_text_ns, "timestamp")?;
        let change = d.change_id.map(parse_u64).transpose().field("change_id")?;
        let prev = d
            .prev_change_id
            .map(parse_u64)
            .transpose()
            .field("prev_change_id")?;
        // Grouped books (`book.X.none.N.*`) and snapshots replace the book.
        let snapshot = d.kind != Some(b"change");
        let Some(id) = ctx.resolve(VENUE, stream, req(d.instrument, "instrument_name")?) else {
            return Ok(());
        };
        let seq = change.unwrap_or(0);
        if in_scratch {
            stamp_levels(&mut self.scratch, stream, id, ts, seq);
        } else {
            self.scratch.clear();
            for (raw, side) in [(d.bids, Side::Buy), (d.asks, Side::Sell)] {
                let Some(raw) = raw else { continue };
                let mut j = Lexer::new(raw);
                j.begin_array()?;
                while j.next_element()? {
                    let (price, amount) = level_at(&mut j).inspect_err(|_| self.scratch.clear())?;
                    push_parsed(
                        &mut self.scratch,
                        VENUE,
                        stream,
                        id,
                        side,
                        price,
                        amount,
                        ts,
                        seq,
                    );
                }
            }
        }
        let i = match self.books.iter().position(|b| b.instrument == id) {
            Some(i) => i,
            None => {
                self.books.push(Book {
                    instrument: id,
                    channel: String::from_utf8_lossy(channel).into_owned(),
                    last_change: None,
                    synced: false,
                });
                self.books.len() - 1
            }
        };
        let enforce = self.mode == SyncMode::Enforce;
        let book = &mut self.books[i];
        let resynced = snapshot && !book.synced;
        if !sync_gate(ctx, stream, &mut book.synced, snapshot, enforce) {
            self.scratch.clear();
            return Ok(());
        }
        if !snapshot
            && let (Some(last), Some(prev)) = (book.last_change, prev)
            && prev != last
        {
            ctx.counters.stream_mut(stream).gaps += 1;
            if enforce {
                book.synced = false;
                book.last_change = None;
                ctx.emit_status(VENUE, stream, id, FeedState::GapDetected);
                let ch = &book.channel;
                ctx.actions.push(Action::Resubscribe(vec![
                    Outgoing::Text(format!("{{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"public/unsubscribe\",\"params\":{{\"channels\":[\"{ch}\"]}}}}").into_bytes()),
                    Outgoing::Text(format!("{{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"public/subscribe\",\"params\":{{\"channels\":[\"{ch}\"]}}}}").into_bytes()),
                ]));
                self.scratch.clear();
                return Ok(());
            }
        }
        book.last_change = change.or(book.last_change);
        flush_levels(ctx, &mut self.scratch, snapshot, VENUE, stream, id, ts, seq);
        if resynced {
            ctx.emit_status(VENUE, stream, id, FeedState::Resynced);
        }
        Ok(())
    }

    /// A book, ticker, quote or price-index frame in Deribit's own key order (`method` before `params`, `channel` before
    /// `data`), read in one pass with `data` read in place, so its levels are scanned once
    /// before they are converted. `None` for any other frame, order or error: the general path
    /// then handles (and reports) it.
    fn book_in_place(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Option<Parsed> {
        // A book's level arrays go straight into the scratch batch as they are lexed.
        self.scratch.clear();
        self.trade_rows.clear();
        let mut j = Lexer::new(frame);
        j.begin_object().ok()?;
        let (mut method, mut book) = (None, None);
        while let Some(key) = j.next_key().ok()? {
            match key {
                b"method" => method = Some(j.str().ok()?),
                b"params" if method == Some(&b"subscription"[..]) && book.is_none() => {
                    j.begin_object().ok()?;
                    let mut channel = None;
                    while let Some(k) = j.next_key().ok()? {
                        match (k, channel) {
                            (b"channel", _) => channel = Some(j.str().ok()?),
                            (b"data", Some(c)) if c.starts_with(b"book.") && book.is_none() => {
                                let (d, in_scratch) = self.book_data_at(&mut j)?;
                                book = Some(InPlace::Object(c, d, in_scratch));
                            }
                            (b"data", Some(c)) if object_channel(c) && book.is_none() => {
                                book = Some(InPlace::Object(c, Data::read(&mut j).ok()?, false));
                            }
                            (b"data", Some(c))
                                if c.starts_with(b"trades.")
                                    && book.is_none()
                                    && j.peek() == Some(b'[') =>
                            {
                                // Rows kept as spans: handled only once the frame is whole.
                                j.begin_array().ok()?;
                                while j.next_element().ok()? {
                                    let row = Data::read(&mut j).ok()?;
                                    self.trade_rows.push(TradeSpans::of(frame, &row));
                                }
                                book = Some(InPlace::Trades);
                            }
                            _ => return None,
                        }
                    }
                }
                b"params" => return None,
                _ => j.skip_value().ok()?,
            }
        }
        j.end().ok()?;
        let r = match book? {
            InPlace::Object(channel, d, in_scratch) => {
                self.object_data(channel, &d, in_scratch, frame.len(), ctx)
            }
            InPlace::Trades => {
                ctx.count_message(Stream::Trades as u8, frame.len());
                let rows = core::mem::take(&mut self.trade_rows);
                let r = rows
                    .iter()
                    .try_for_each(|row| self.trade_row(&row.data(frame), ctx));
                self.trade_rows = rows;
                r
            }
        };
        self.scratch.clear();
        Some(r)
    }

    /// A book's `data` object at the lexer, as [`Data::read`] reads it, with its `bids` and
    /// `asks` arrays converted into the scratch batch as they are lexed (stream, instrument,
    /// time and sequence set later by [`stamp_levels`]); `true` when any was. `None` on an
    /// error or a shape the general path must judge (a side twice, asks before bids, a side
    /// that is not an array).
    fn book_data_at<'a>(&mut self, j: &mut Lexer<'a>) -> Option<(Data<'a>, bool)> {
        let mut d = Data::default();
        // Bit 0: bids taken, bit 1: asks taken (bids first, each once: the general order).
        let mut taken = 0u8;
        j.begin_object().ok()?;
        while let Some(key) = j.next_key().ok()? {
            let (bit, side) = match key {
                b"bids" => (1, Side::Buy),
                b"asks" => (2, Side::Sell),
                _ => {
                    d.read_field(key, j).ok()?;
                    continue;
                }
            };
            if taken >= bit || j.peek() != Some(b'[') {
                return None;
            }
            taken |= bit;
            let start = j.pos();
            j.begin_array().ok()?;
            while j.next_element().ok()? {
                let (price, amount) = level_at(j).ok()?;
                push_parsed(&mut self.scratch, VENUE, 0, 0, side, price, amount, 0, 0);
            }
            let text = Some(j.text_since(start));
            if side == Side::Buy {
                d.bids = text;
            } else {
                d.asks = text;
            }
        }
        Some((d, taken != 0))
    }

    /// A push whose `data` is one object (book, ticker, quote, price index), read.
    fn object_data(
        &mut self,
        channel: &[u8],
        d: &Data<'_>,
        in_scratch: bool,
        frame_len: usize,
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        match channel.split(|&b| b == b'.').next().unwrap_or(b"") {
            b"book" => {
                ctx.count_message(Stream::Book as u8, frame_len);
                self.book(channel, d, in_scratch, ctx)
            }
            b"ticker" => ticker(Stream::Ticker as u8, d, frame_len, ctx),
            b"quote" => ticker(Stream::Quote as u8, d, frame_len, ctx),
            b"deribit_price_index" => {
                let stream = Stream::PriceIndex as u8;
                ctx.count_message(stream, frame_len);
                let ts = opt_ts(d.ts, ms_text_ns, "timestamp")?;
                let body = index_body(req(d.price, "price")?, 1, "price")?;
                if let Some(id) = index_instrument(ctx, stream, req(d.index_name, "index_name")?) {
                    ctx.emit_body(VENUE, stream, id, ts, 0, 0, &body);
                }
                Ok(())
            }
            _ => Err(ParseError::Unknown),
        }
    }

    fn trades(&mut self, raw: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        for_each_element(raw, |row| self.trade_row(&Data::parse(row)?, ctx))
    }

    /// One trade row: a Trade record (and a Liquidation when `liquidation` is set).
    fn trade_row(&mut self, t: &Data<'_>, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::Trades as u8;
        {
            let side =
                side_of(req(t.direction, "direction")?).ok_or(ParseError::Invalid("direction"))?;
            let price = parse_e8(req(t.price, "price")?).field("price")?;
            let size = parse_e8(req(t.amount, "amount")?).field("amount")?;
            let seq = t
                .trade_seq
                .map(parse_u64)
                .transpose()
                .field("trade_seq")?
                .unwrap_or(0);
            let trade_id = t.trade_id.map_or(0, |i| parse_u64(i).unwrap_or(0));
            let ts = opt_ts(t.ts, ms_text_ns, "timestamp")?;
            let Some(id) = ctx.resolve(VENUE, stream, req(t.instrument, "instrument_name")?) else {
                return Ok(());
            };
            if seq != 0 {
                let i = match self.trades.iter().position(|x| x.0 == id) {
                    Some(i) => i,
                    None => {
                        self.trades.push((id, SeqTracker::default()));
                        self.trades.len() - 1
                    }
                };
                if let SeqCheck::Gap { missed } = self.trades[i].1.check(seq) {
                    ctx.count_gap(stream, missed);
                }
            }
            let body = trade(price, size, trade_id, side);
            ctx.emit_body(VENUE, stream, id, ts, seq, 0, &body);
            if t.liquidation.is_some() {
                let body = Liquidation {
                    price,
                    size,
                    side: side as u8,
                    reserved: [0; 63],
                };
                ctx.emit_body(VENUE, stream, id, ts, seq, 0, &body);
            }
            Ok(())
        }
    }
}

json_fields! {
    /// A JSON-RPC frame's envelope.
    struct Envelope {
        method: str <- b"method",
        params: raw <- b"params",
        result: seen <- b"result" | b"error",
    }
}

impl VenueAdapter for Deribit {
    adapter_profile!(VENUE, STREAMS, ENDPOINT, KEEP_ALIVE);

    subscriptions!(rpc, "public/subscribe", "public/unsubscribe");

    #[allow(clippy::too_many_lines)]
    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        if let Some(parsed) = self.book_in_place(frame, ctx) {
            return parsed;
        }
        self.scratch.clear();
        let Envelope {
            method,
            params,
            result,
        } = Envelope::parse_exact(frame)?;
        let result = result.is_some();
        match method {
            Some(b"subscription") => {}
            Some(b"heartbeat") => {
                ctx.count_message(0, frame.len());
                let test = params.is_some_and(|p| memchr_contains(p, b"test_request"));
                if test {
                    ctx.actions.push(Action::Send(Outgoing::StaticText(
                        br#"{"jsonrpc":"2.0","id":9,"method":"public/test","params":{}}"#,
                    )));
                }
                return Ok(());
            }
            None if result => {
                ctx.count_message(0, frame.len());
                return Ok(());
            }
            _ => return Err(ParseError::Unknown),
        }
        let mut p = Lexer::new(params.ok_or(ParseError::Missing("params"))?);
        p.begin_object()?;
        let (mut channel, mut raw) = (None, None);
        while let Some(key) = p.next_key()? {
            match key {
                b"channel" => channel = Some(p.str()?),
                b"data" => raw = Some(p.raw_value()?),
                _ => p.skip_value()?,
            }
        }
        let channel = req(channel, "channel")?;
        let raw = req(raw, "data")?;
        let prefix = channel.split(|&b| b == b'.').next().unwrap_or(b"");
        match prefix {
            b"book" | b"ticker" | b"quote" | b"deribit_price_index" => {
                self.object_data(channel, &Data::parse(raw)?, false, frame.len(), ctx)
            }
            b"trades" => {
                ctx.count_message(Stream::Trades as u8, frame.len());
                self.trades(raw, ctx)
            }
            b"deribit_volatility_index" => {
                // DVOL: no record kind for a volatility index; counted.
                ctx.count_message(0, frame.len());
                Ok(())
            }
            _ => Err(ParseError::Unknown),
        }
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        for b in &mut self.books {
            b.synced = false;
            b.last_change = None;
        }
        for t in &mut self.trades {
            t.1.reset();
        }
        ctx.counters.stream_mut(Stream::Book as u8).reconnects += 1;
    }
}

fn memchr_contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

fn rpc(method: &str, symbols: &[&str], streams: &[&'static Selectable]) -> Vec<Outgoing> {
    let mut channels = Vec::new();
    for s in symbols {
        for ch in channels_for(streams, s).filter(|c| c.contains("{}")) {
            channels.push(format!("\"{}\"", ch.replace("{}", s)));
        }
    }
    // Channels without a symbol (the index) once.
    for x in streams.iter().filter(|x| !x.channel.contains("{}")) {
        channels.push(format!("\"{}\"", x.channel));
    }
    let mut frames = vec![Outgoing::Text(
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"{method}\",\"params\":{{\"channels\":[{}]}}}}",
            channels.join(",")
        )
        .into_bytes(),
    )];
    // Deribit closes a connection it hears nothing from; with a heartbeat set it sends
    // `test_request`s, answered with `public/test` (see `on_frame`).
    if method == "public/subscribe" {
        frames.push(Outgoing::Text(
            format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"public/set_heartbeat\",\"params\":{{\"interval\":{HEARTBEAT_INTERVAL_S}}}}}"
            )
            .into_bytes(),
        ));
    }
    frames
}

/// The `public/set_heartbeat` interval sent after subscribing, s (Deribit's minimum is 10).
pub const HEARTBEAT_INTERVAL_S: u64 = 10;

/// The instrument an index channel's records are filed under: the index name itself when it
/// is registered, else the currency's perpetual (`btc_usd` → `BTC-PERPETUAL`, `btc_usdc` →
/// `BTC_USDC-PERPETUAL`), the instrument whose ticker carries the same index. Built on the
/// stack; `None` (counted as unknown instrument) when neither is subscribed.
fn index_instrument(ctx: &mut Ctx<'_>, stream: u8, index_name: &[u8]) -> Option<u32> {
    if let Some(id) = ctx.resolver.resolve(VENUE, index_name) {
        return Some(id);
    }
    const SUFFIX: &[u8] = b"-PERPETUAL";
    let base = index_name.strip_suffix(b"_usd").unwrap_or(index_name);
    let mut buf = [0u8; 32];
    let n = base.len() + SUFFIX.len();
    let Some(out) = buf.get_mut(..n) else {
        ctx.counters.stream_mut(stream).unknown_instrument += 1;
        return None;
    };
    out[..base.len()].copy_from_slice(base);
    out[..base.len()].make_ascii_uppercase();
    out[base.len()..].copy_from_slice(SUFFIX);
    ctx.resolve(VENUE, stream, out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::FrameDriver;
    use ringbolt_bus::{FeedStatusBody, RecordKind};

    fn book(kind: &str, prev: Option<u64>, change: u64) -> String {
        let prev = prev.map_or(String::new(), |p| format!("\"prev_change_id\":{p},"));
        format!(
            r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"book.BTC-PERPETUAL.100ms","data":{{"type":"{kind}","timestamp":1622627435737,{prev}"instrument_name":"BTC-PERPETUAL","change_id":{change},"bids":[["new",37240.0,20.0]],"asks":[["change",37240.5,1424.0]]}}}}}}"#
        )
    }

    #[test]
    fn change_id_gap_resubscribes_and_the_next_snapshot_resyncs() {
        let mut d = FrameDriver::new(VENUE, SyncMode::Enforce, true).unwrap();
        let mut out = Vec::new();
        d.frame(book("snapshot", None, 100).as_bytes(), 1, &mut out)
            .unwrap();
        d.frame(book("change", Some(100), 105).as_bytes(), 1, &mut out)
            .unwrap();
        // 2 + 2 levels and the `resynced` status after the snapshot.
        assert_eq!(out.len(), 5);
        let states = |out: &[Record]| -> Vec<u8> {
            out.iter()
                .filter_map(|r| r.body_as::<FeedStatusBody>())
                .map(|s| s.state)
                .collect()
        };
        assert_eq!(states(&out), [FeedState::Resynced as u8]);
        let c = d.counters.stream(Stream::Book as u8);
        assert_eq!((c.gaps, c.resyncs), (0, 1));
        // 105 → 111: the change with prev_change_id 105 was lost.
        out.clear();
        d.frame(book("change", Some(107), 111).as_bytes(), 1, &mut out)
            .unwrap();
        let c = d.counters.stream(Stream::Book as u8);
        assert_eq!(c.gaps, 1);
        assert_eq!(out.len(), 1, "only the gap status, no levels: {out:?}");
        let status = out[0].body_as::<FeedStatusBody>().unwrap();
        assert_eq!(out[0].kind, RecordKind::FeedStatus as u8);
        assert_eq!(status.state, FeedState::GapDetected as u8);
        let Some(Action::Resubscribe(frames)) = d.actions.pop() else {
            panic!("no resubscribe queued");
        };
        let texts: Vec<String> = frames
            .iter()
            .map(|f| match f {
                Outgoing::Text(t) => String::from_utf8_lossy(t).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(
            texts[0].contains("public/unsubscribe")
                && texts[0].contains("book.BTC-PERPETUAL.100ms")
        );
        assert!(
            texts[1].contains("public/subscribe") && texts[1].contains("book.BTC-PERPETUAL.100ms")
        );
        // Changes before the new snapshot are dropped, the snapshot resyncs.
        out.clear();
        d.frame(book("change", Some(111), 112).as_bytes(), 1, &mut out)
            .unwrap();
        assert!(out.is_empty());
        d.frame(book("snapshot", None, 200).as_bytes(), 1, &mut out)
            .unwrap();
        d.frame(book("change", Some(200), 201).as_bytes(), 1, &mut out)
            .unwrap();
        let c = d.counters.stream(Stream::Book as u8);
        assert_eq!((c.gaps, c.resyncs, c.dropped_unsynced), (1, 2, 1));
        assert_eq!(out.len(), 5);
        assert_eq!(states(&out), [FeedState::Resynced as u8]);
    }

    #[test]
    fn price_index_reaches_the_bus_under_the_perpetual() {
        let mut d = FrameDriver::new(VENUE, SyncMode::Enforce, false).unwrap();
        d.instruments
            .register(VENUE, b"BTC-PERPETUAL", "BTC-PERPETUAL", 7);
        let mut out = Vec::new();
        let index = |name: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"deribit_price_index.{name}","data":{{"timestamp":1622627435737,"price":37240.25,"index_name":"{name}"}}}}}}"#
            )
        };
        d.frame(index("btc_usd").as_bytes(), 1, &mut out).unwrap();
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].instrument, 7);
        assert_eq!(out[0].stream, Stream::PriceIndex as u8);
        let body = out[0].body_as::<IndexPrice>().unwrap();
        assert_eq!((body.price, body.price_type), (3_724_025_000_000, 1));
        // Another currency's index is not subscribed: counted, not published.
        out.clear();
        d.frame(index("eth_usd").as_bytes(), 1, &mut out).unwrap();
        assert!(out.is_empty());
        let c = d.counters.stream(Stream::PriceIndex as u8);
        assert_eq!(c.unknown_instrument, 1);
    }

    #[test]
    fn subscribing_sets_the_heartbeat() {
        let d = Deribit::new(SyncMode::Enforce);
        let frames = d.subscribe(&["BTC-PERPETUAL"]);
        let Some(Outgoing::Text(last)) = frames.last() else {
            panic!("{frames:?}");
        };
        assert_eq!(
            String::from_utf8_lossy(last),
            r#"{"jsonrpc":"2.0","id":2,"method":"public/set_heartbeat","params":{"interval":10}}"#
        );
        assert!(d.unsubscribe(&["BTC-PERPETUAL"]).len() == 1);
    }

    #[test]
    fn change_id_gap_is_counted_when_observing() {
        let mut d = FrameDriver::new(VENUE, SyncMode::Observe, true).unwrap();
        let mut out = Vec::new();
        d.frame(book("snapshot", None, 100).as_bytes(), 1, &mut out)
            .unwrap();
        d.frame(book("change", Some(101), 102).as_bytes(), 1, &mut out)
            .unwrap();
        assert_eq!(d.counters.stream(Stream::Book as u8).gaps, 1);
        // Both frames' levels and the snapshot's `resynced`; no gap status when observing.
        assert_eq!(out.len(), 5);
        assert!(d.actions.is_empty());
    }
}
