//! Kraken WebSocket v2 (`wss://ws.kraken.com/v2`, JSON objects) and the frozen v1
//! (`wss://ws.kraken.com`, arrays `[channelID, payload…, channelName, pair]`), told apart by the
//! frame's first byte.
//!
//! v2: `book` → BookLevel batches (prices/quantities are JSON numbers whose TEXT is kept for the
//! checksum), `trade` → Trade, `ticker` → TopOfBook, `heartbeat` / `status` / method responses
//! counted. v1: `book-N` snapshots (`as`/`bs`) and updates (`a`/`b`, one or two objects, checksum
//! string `c` in the last; levels may carry a 4th `r` element), `trade`, `spread` and `ticker`
//! → TopOfBook; `{"event":…}` objects counted.
//!
//! Continuity: no sequence numbers on books; the CRC32 checksum over the top 10 asks then top 10
//! bids (received text, `.` removed, leading zeros stripped) must match after every update, the
//! book being truncated to the subscribed depth (`book-N` on v1, the configured depth on v2).
//! In [`SyncMode::Enforce`] a mismatch drops the update, emits `gap_detected` and queues an
//! unsubscribe + subscribe (fresh snapshot). v2 `trade_id` is sequential per pair (gaps counted).

use ringbolt_bus::{FeedState, Record, Side, TopOfBook, Venue};

use crate::adapter::{Action, Ctx, DecimalField, Outgoing, ParseError, Parsed, VenueAdapter};
use crate::continuity::{SeqCheck, SeqTracker, SyncMode};
use crate::decimal::{parse_e8, parse_fixed_i64, parse_u64};
use crate::json::{Lexer, ValueKind};
use crate::textbook::TextBook;
use crate::time::iso8601_ns;
use crate::venues::streams::Selectable;
use crate::venues::{array_scalars, flush_levels, opt_ts, push_parsed, req_e8, side_of, trade};

const VENUE: Venue = Venue::Kraken;
/// Book depth subscribed on v2 (the checksum covers the top 10).
pub const V2_DEPTH: usize = 10;
/// Largest depth kept per side (v1 `book-1000`).
const BOOK_CAPACITY: usize = 1024;

pub use super::streams::kraken::{ENDPOINT, KEEP_ALIVE, STREAMS, Stream};

#[derive(Debug)]
struct Book {
    instrument: u32,
    symbol: String,
    v1: bool,
    text: TextBook,
    synced: bool,
}

/// The Kraken adapter.
#[derive(Debug)]
pub struct Kraken {
    mode: SyncMode,
    books: Vec<Book>,
    trades: Vec<(u32, SeqTracker)>,
    scratch: Vec<Record>,
    /// Frame offsets of each scratch level's price and size text.
    texts: Vec<LevelText>,
}

/// One level of the message being read: its side and values (as in its scratch record) and
/// the frame offsets of its price and size text, for the text book.
#[derive(Clone, Copy, Debug)]
struct LevelText {
    side: Side,
    price: i64,
    size: i64,
    /// `(price start, price end, size start, size end)` in the frame.
    text: (usize, usize, usize, usize),
}

/// Seconds text `"1618678117.243818"` → ns.
fn sec_text_ns(text: &[u8]) -> Result<i64, ParseError> {
    parse_fixed_i64(text, 9).field("time")
}

/// Kraken leaves the levels an update pushes below the subscribed depth to the client's
/// truncation and sends no deletion for them: one size-0 level is pushed into `scratch` for
/// every level of `text` beyond `depth`, so a consumer rebuilding the book from the bus drops
/// them too (the scratch batch has its capacity from start-up: no allocation).
fn push_truncated(scratch: &mut Vec<Record>, text: &TextBook, depth: usize, id: u32, ts: i64) {
    let bids = (depth..text.bid_count()).filter_map(|r| text.bid(r).map(|l| (Side::Buy, l.price)));
    let asks = (depth..text.ask_count()).filter_map(|r| text.ask(r).map(|l| (Side::Sell, l.price)));
    for (side, price) in bids.chain(asks) {
        push_parsed(
            scratch,
            VENUE,
            Stream::Book as u8,
            id,
            side,
            price,
            0,
            ts,
            0,
        );
    }
}

impl Kraken {
    /// A new adapter.
    #[must_use]
    pub fn new(mode: SyncMode) -> Self {
        Kraken {
            mode,
            books: Vec::new(),
            trades: Vec::new(),
            scratch: Vec::with_capacity(2 * BOOK_CAPACITY),
            texts: Vec::with_capacity(2 * BOOK_CAPACITY),
        }
    }

    fn book_index(&mut self, instrument: u32, symbol: &[u8], v1: bool) -> usize {
        if let Some(i) = self.books.iter().position(|b| b.instrument == instrument) {
            return i;
        }
        // Cold path: first sight of a book.
        self.books.push(Book {
            instrument,
            symbol: String::from_utf8_lossy(symbol).into_owned(),
            v1,
            text: TextBook::with_capacity(BOOK_CAPACITY + 64),
            synced: false,
        });
        self.books.len() - 1
    }

    /// Applies one parsed book message (levels already in `self.scratch` as
    /// `(record, price text, size text)` via `texts`) and emits it if it holds.
    #[allow(clippy::too_many_arguments)]
    fn finish_book(
        &mut self,
        id: u32,
        symbol: &[u8],
        v1: bool,
        snapshot: bool,
        depth: usize,
        texts: &[LevelText],
        frame: &[u8],
        checksum: Option<u64>,
        ctx: &mut Ctx<'_>,
    ) {
        let stream = Stream::Book as u8;
        let enforce = self.mode == SyncMode::Enforce;
        let bi = self.book_index(id, symbol, v1);
        let book = &mut self.books[bi];
        if !snapshot && enforce && !book.synced {
            ctx.counters.stream_mut(stream).dropped_unsynced += 1;
            self.scratch.clear();
            return;
        }
        if snapshot {
            book.text.clear();
        }
        let mut ok = true;
        for t in texts {
            let (ps, pe, ss, se) = t.text;
            ok &= book
                .text
                .apply_in(t.side, t.price, t.size, frame, ps..pe, ss..se)
                .is_ok();
        }
        let ts = self
            .scratch
            .iter()
            .map(|r| r.exchange_ts_ns)
            .max()
            .unwrap_or(0);
        if !snapshot {
            push_truncated(&mut self.scratch, &book.text, depth, id, ts);
        }
        book.text.truncate(depth);
        let mismatch = match checksum {
            Some(c) => !ok || u64::from(book.text.kraken_checksum()) != c,
            None => !ok,
        };
        if mismatch {
            let c = ctx.counters.stream_mut(stream);
            c.checksum_errors += 1;
            c.gaps += 1;
            if enforce {
                book.synced = false;
                ctx.emit_status(VENUE, stream, id, FeedState::GapDetected);
                let frames = if book.v1 {
                    ["unsubscribe", "subscribe"]
                        .iter()
                        .map(|e| {
                            Outgoing::Text(
                                format!(
                                    "{{\"event\":\"{e}\",\"pair\":[\"{}\"],\"subscription\":{{\"name\":\"book\",\"depth\":{depth}}}}}",
                                    book.symbol
                                )
                                .into_bytes(),
                            )
                        })
                        .collect()
                } else {
                    ["unsubscribe", "subscribe"]
                        .iter()
                        .map(|m| {
                            Outgoing::Text(
                                format!(
                                    "{{\"method\":\"{m}\",\"params\":{{\"channel\":\"book\",\"symbol\":[\"{}\"],\"depth\":{depth}}}}}",
                                    book.symbol
                                )
                                .into_bytes(),
                            )
                        })
                        .collect()
                };
                ctx.actions.push(Action::Resubscribe(frames));
                self.scratch.clear();
                return;
            }
        }
        let resynced = snapshot && !book.synced;
        if resynced {
            book.synced = true;
            ctx.counters.stream_mut(stream).resyncs += 1;
        }
        flush_levels(ctx, &mut self.scratch, snapshot, VENUE, stream, id, ts, 0);
        if resynced {
            ctx.emit_status(VENUE, stream, id, FeedState::Resynced);
        }
    }

    fn trade_gap(&mut self, id: u32, trade_id: u64, ctx: &mut Ctx<'_>) {
        let i = match self.trades.iter().position(|t| t.0 == id) {
            Some(i) => i,
            None => {
                self.trades.push((id, SeqTracker::default()));
                self.trades.len() - 1
            }
        };
        if let SeqCheck::Gap { missed } = self.trades[i].1.check(trade_id) {
            ctx.count_gap(Stream::Trade as u8, missed);
        }
    }

    #[allow(clippy::too_many_lines)]
    fn v2(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        let V2Envelope {
            channel,
            kind,
            data,
            control,
        } = V2Envelope::parse_exact(frame)?;
        let control = control.is_some();
        let stream = match channel {
            Some(b"book") => Stream::Book,
            Some(b"trade") => Stream::Trade,
            Some(b"ticker") => Stream::Ticker,
            Some(b"heartbeat" | b"status") | None if control || channel.is_some() => {
                ctx.count_message(0, frame.len());
                return Ok(());
            }
            _ => return Err(ParseError::Unknown),
        } as u8;
        ctx.count_message(stream, frame.len());
        let snapshot = kind == Some(b"snapshot");
        let mut rows = Lexer::new(data.ok_or(ParseError::Missing("data"))?);
        rows.begin_array()?;
        while rows.next_element()? {
            // The row is read in place (no pre-scan of its extent).
            let f = V2Row::read(&mut rows)?;
            let symbol = f.symbol.ok_or(ParseError::Missing("symbol"))?;
            let ts = opt_ts(f.ts, iso8601_ns, "timestamp")?;
            let Some(id) = ctx.resolve(VENUE, stream, symbol) else {
                continue;
            };
            match stream {
                s if s == Stream::Book as u8 => {
                    self.scratch.clear();
                    let mut texts = core::mem::take(&mut self.texts);
                    texts.clear();
                    for (part, side) in [(f.bids, Side::Buy), (f.asks, Side::Sell)] {
                        let Some(part) = part else { continue };
                        // Offset of `part` inside `frame`, for the level texts.
                        let off = part.as_ptr() as usize - frame.as_ptr() as usize;
                        let mut l = Lexer::new(part);
                        l.begin_array()?;
                        while l.next_element()? {
                            l.begin_object()?;
                            let (mut p, mut q) = (None, None);
                            while let Some(k) = l.next_key()? {
                                match k {
                                    b"price" => p = Some(l.scalar_fixed_i64(8)?),
                                    b"qty" => q = Some(l.scalar_fixed_i64(8)?),
                                    _ => l.skip_value()?,
                                }
                            }
                            let ((p, price), (q, qty)) = (
                                p.ok_or(ParseError::Missing("price"))?,
                                q.ok_or(ParseError::Missing("qty"))?,
                            );
                            let body = super::level(side, price.field("price")?, qty.field("qty")?);
                            let mut rec = Record::new(VENUE, stream, id, &body);
                            rec.exchange_ts_ns = ts;
                            self.scratch.push(rec);
                            texts.push(LevelText {
                                side,
                                price: body.price,
                                size: body.size,
                                text: span(off, part, p, q),
                            });
                        }
                    }
                    let checksum = f.checksum.map(parse_u64).transpose().field("checksum")?;
                    self.finish_book(
                        id, symbol, false, snapshot, V2_DEPTH, &texts, frame, checksum, ctx,
                    );
                    self.texts = texts;
                }
                s if s == Stream::Trade as u8 => {
                    let side = side_of(f.side.ok_or(ParseError::Missing("side"))?)
                        .ok_or(ParseError::Invalid("side"))?;
                    let trade_id = f
                        .trade_id
                        .map(parse_u64)
                        .transpose()
                        .field("trade_id")?
                        .unwrap_or(0);
                    let body = trade(
                        req_e8(f.price, "price")?,
                        req_e8(f.qty, "qty")?,
                        trade_id,
                        side,
                    );
                    if trade_id != 0 {
                        self.trade_gap(id, trade_id, ctx);
                    }
                    ctx.emit_body(VENUE, stream, id, ts, trade_id, 0, &body);
                }
                _ => {
                    let body = TopOfBook {
                        bid_price: parse_e8(f.bid.ok_or(ParseError::Missing("bid"))?)
                            .field("bid")?,
                        bid_size: parse_e8(f.bid_qty.ok_or(ParseError::Missing("bid_qty"))?)
                            .field("bid_qty")?,
                        ask_price: parse_e8(f.ask.ok_or(ParseError::Missing("ask"))?)
                            .field("ask")?,
                        ask_size: parse_e8(f.ask_qty.ok_or(ParseError::Missing("ask_qty"))?)
                            .field("ask_qty")?,
                        reserved: [0; 48],
                    };
                    ctx.emit_body(VENUE, stream, id, ts, 0, 0, &body);
                }
            }
        }
        Ok(())
    }

    fn v1(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        // [channelID, payload…, channelName, pair]: collect the elements first.
        let mut j = Lexer::new(frame);
        j.begin_array()?;
        let mut parts: [&[u8]; 6] = [b""; 6];
        let mut n = 0;
        while j.next_element()? {
            if n == parts.len() {
                return Err(ParseError::Invalid("v1 frame length"));
            }
            parts[n] = j.raw_value()?;
            n += 1;
        }
        j.end()?;
        if n < 4 {
            return Err(ParseError::Invalid("v1 frame length"));
        }
        let name = Lexer::new(parts[n - 2]).str()?;
        let pair = Lexer::new(parts[n - 1]).str()?;
        let payloads = &parts[1..n - 2];
        if name.starts_with(b"book") {
            return self.v1_book(frame, name, pair, payloads, ctx);
        }
        let payload = payloads.first().copied().unwrap_or(b"");
        let stream = match name {
            b"trade" => Stream::Trade,
            b"spread" => Stream::Spread,
            b"ticker" => Stream::Ticker,
            _ => return Err(ParseError::Unknown),
        };
        ctx.count_message(stream as u8, frame.len());
        match stream {
            Stream::Trade => Self::v1_trade(payload, pair, ctx),
            Stream::Spread => Self::v1_spread(payload, pair, ctx),
            _ => Self::v1_ticker(payload, pair, ctx),
        }
    }

    /// A v1 `book-<depth>` message: its payload objects (`as`/`bs` snapshot, `a`/`b` updates,
    /// `c` checksum) converted in place.
    /// One v1 book payload object at `o` (a lexer over `frame` or a slice of it): its levels
    /// into `scratch` (instrument `id`) and their text offsets in `frame` into `texts`; sets
    /// `snapshot` on `as`/`bs` and `checksum` from `c`.
    fn v1_payload<'a>(
        o: &mut Lexer<'a>,
        frame: &'a [u8],
        (stream, id): (u8, u32),
        scratch: &mut Vec<Record>,
        texts: &mut Vec<LevelText>,
        (snapshot, checksum): (&mut bool, &mut Option<u64>),
    ) -> Parsed {
        o.begin_object()?;
        while let Some(key) = o.next_key()? {
            let side = match key {
                b"as" | b"bs" => {
                    *snapshot = true;
                    if key == b"as" { Side::Sell } else { Side::Buy }
                }
                b"a" => Side::Sell,
                b"b" => Side::Buy,
                b"c" => {
                    *checksum = Some(parse_u64(o.str()?).field("c")?);
                    continue;
                }
                _ => {
                    o.skip_value()?;
                    continue;
                }
            };
            // The level array is lexed and converted in one pass, in place.
            o.begin_array()?;
            while o.next_element()? {
                // Seconds text `"1618678117.243818"` → ns, converted while lexed. A row
                // whose three values convert is read without carrying error values; any other
                // row takes the fused reader, or the general path.
                let fast = o.quoted_fixed_row_ok([8, 8, 9]);
                let [(pt, price), (qt, volume), (_, ts)] = match fast {
                    Some([(pt, p), (qt, v), (tt, t)]) => [(pt, Ok(p)), (qt, Ok(v)), (tt, Ok(t))],
                    None => match o.quoted_fixed_row([8, 8, 9]) {
                        Some(row) => row,
                        None => {
                            o.begin_array()?;
                            let mut row = [(&frame[..0], Ok(0)); 3];
                            for (x, scale) in row.iter_mut().zip([8, 8, 9]) {
                                if !o.next_element()? {
                                    return Err(ParseError::Missing("level"));
                                }
                                *x = o.scalar_fixed_i64(scale)?;
                            }
                            row
                        }
                    },
                };
                while o.next_element()? {
                    o.skip_value()?;
                }
                let body = super::level(side, price.field("price")?, volume.field("volume")?);
                let mut rec = Record::new(VENUE, stream, id, &body);
                rec.exchange_ts_ns = ts.field("time")?;
                scratch.push(rec);
                texts.push(LevelText {
                    side,
                    price: body.price,
                    size: body.size,
                    text: span(0, frame, pt, qt),
                });
            }
        }
        Ok(())
    }

    /// A v1 book frame `[channelID, payload(, payload), "book-N", pair]` read in one pass (the
    /// name and pair come last: levels are parsed first, their instrument set after). `None`
    /// for any other frame or any error: the general path then handles (and reports) it.
    fn v1_book_in_place(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Option<Parsed> {
        let stream = Stream::Book as u8;
        let mut j = Lexer::new(frame);
        j.begin_array().ok()?;
        if !j.next_element().ok()? || j.kind().ok()? != ValueKind::Number {
            return None;
        }
        j.number().ok()?;
        self.scratch.clear();
        let mut texts = core::mem::take(&mut self.texts);
        texts.clear();
        let (mut snapshot, mut checksum) = (false, None);
        let (mut payloads, mut strings, mut names): (usize, usize, [&[u8]; 2]) = (0, 0, [b""; 2]);
        let mut read = || -> Option<()> {
            while j.next_element().ok()? {
                match j.kind().ok()? {
                    ValueKind::Object if strings == 0 && payloads < 2 => {
                        Self::v1_payload(
                            &mut j,
                            frame,
                            (stream, 0),
                            &mut self.scratch,
                            &mut texts,
                            (&mut snapshot, &mut checksum),
                        )
                        .ok()?;
                        payloads += 1;
                    }
                    ValueKind::String if payloads > 0 && strings < 2 => {
                        names[strings] = j.str().ok()?;
                        strings += 1;
                    }
                    _ => return None,
                }
            }
            j.end().ok()?;
            (strings == 2 && names[0].starts_with(b"book-")).then_some(())
        };
        let ok = read();
        let [name, pair] = names;
        let depth = name.strip_prefix(b"book-").map(parse_u64);
        let (Some(()), Some(Ok(depth))) = (ok, depth) else {
            self.texts = texts;
            self.scratch.clear();
            return None;
        };
        let depth = depth.min(BOOK_CAPACITY as u64) as usize;
        ctx.count_message(stream, frame.len());
        let Some(id) = ctx.resolve(VENUE, stream, pair) else {
            self.texts = texts;
            self.scratch.clear();
            return Some(Ok(()));
        };
        for r in &mut self.scratch {
            r.instrument = id;
        }
        let checksum = if snapshot { None } else { checksum };
        self.finish_book(
            id, pair, true, snapshot, depth, &texts, frame, checksum, ctx,
        );
        self.texts = texts;
        Some(Ok(()))
    }

    fn v1_book(
        &mut self,
        frame: &[u8],
        name: &[u8],
        pair: &[u8],
        payloads: &[&[u8]],
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        let stream = Stream::Book as u8;
        ctx.count_message(stream, frame.len());
        let depth = name
            .strip_prefix(b"book-")
            .map(parse_u64)
            .transpose()
            .field("channelName")?
            .unwrap_or(10)
            .min(BOOK_CAPACITY as u64) as usize;
        let Some(id) = ctx.resolve(VENUE, stream, pair) else {
            return Ok(());
        };
        self.scratch.clear();
        let mut texts = core::mem::take(&mut self.texts);
        texts.clear();
        let (mut snapshot, mut checksum) = (false, None);
        for payload in payloads {
            let r = Self::v1_payload(
                &mut Lexer::new(payload),
                frame,
                (stream, id),
                &mut self.scratch,
                &mut texts,
                (&mut snapshot, &mut checksum),
            );
            if let Err(e) = r {
                self.texts = texts;
                return Err(e);
            }
        }
        // v1 snapshots carry no checksum.
        let checksum = if snapshot { None } else { checksum };
        self.finish_book(
            id, pair, true, snapshot, depth, &texts, frame, checksum, ctx,
        );
        self.texts = texts;
        Ok(())
    }

    /// A v1 `trade` message: `[price, volume, time, side, …]` rows.
    fn v1_trade(payload: &[u8], pair: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::Trade as u8;
        let Some(id) = ctx.resolve(VENUE, stream, pair) else {
            return Ok(());
        };
        let mut l = Lexer::new(payload);
        l.begin_array()?;
        while l.next_element()? {
            l.begin_array()?;
            let f: [&[u8]; 4] = array_scalars(&mut l, "trade")?;
            let side = side_of(f[3]).ok_or(ParseError::Invalid("side"))?;
            let body = trade(
                parse_e8(f[0]).field("price")?,
                parse_e8(f[1]).field("volume")?,
                0,
                side,
            );
            ctx.emit_body(VENUE, stream, id, sec_text_ns(f[2])?, 0, 0, &body);
        }
        Ok(())
    }

    /// A v1 `spread` message: `[bid, ask, time, bidVolume, askVolume]`.
    fn v1_spread(payload: &[u8], pair: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::Spread as u8;
        let mut l = Lexer::new(payload);
        l.begin_array()?;
        let mut f: [&[u8]; 5] = [b""; 5];
        for x in &mut f {
            if !l.next_element()? {
                return Err(ParseError::Missing("spread"));
            }
            *x = l.scalar()?;
        }
        let body = TopOfBook {
            bid_price: parse_e8(f[0]).field("bid")?,
            bid_size: parse_e8(f[3]).field("bidVolume")?,
            ask_price: parse_e8(f[1]).field("ask")?,
            ask_size: parse_e8(f[4]).field("askVolume")?,
            reserved: [0; 48],
        };
        let ts = sec_text_ns(f[2])?;
        if let Some(id) = ctx.resolve(VENUE, stream, pair) {
            ctx.emit_body(VENUE, stream, id, ts, 0, 0, &body);
        }
        Ok(())
    }

    /// A v1 `ticker` message: best ask `a` and bid `b` as `[price, wholeLotVolume, lotVolume]`.
    fn v1_ticker(payload: &[u8], pair: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::Ticker as u8;
        let mut o = Lexer::new(payload);
        o.begin_object()?;
        let (mut a, mut b) = (None, None);
        while let Some(key) = o.next_key()? {
            match key {
                b"a" | b"b" => {
                    o.begin_array()?;
                    let f: [&[u8]; 3] = array_scalars(&mut o, "ticker a/b")?;
                    let v = (
                        parse_e8(f[0]).field("price")?,
                        parse_e8(f[2]).field("lotVolume")?,
                    );
                    if key == b"a" {
                        a = Some(v)
                    } else {
                        b = Some(v)
                    }
                }
                _ => o.skip_value()?,
            }
        }
        let (a, b) = (
            a.ok_or(ParseError::Missing("a"))?,
            b.ok_or(ParseError::Missing("b"))?,
        );
        let body = TopOfBook {
            bid_price: b.0,
            bid_size: b.1,
            ask_price: a.0,
            ask_size: a.1,
            reserved: [0; 48],
        };
        if let Some(id) = ctx.resolve(VENUE, stream, pair) {
            ctx.emit_body(VENUE, stream, id, 0, 0, 0, &body);
        }
        Ok(())
    }
}

/// Absolute `(price start, price end, size start, size end)` offsets in the frame, given the
/// absolute offset `off` of `container` and two slices inside it.
fn span(off: usize, container: &[u8], price: &[u8], size: &[u8]) -> (usize, usize, usize, usize) {
    let base = container.as_ptr() as usize;
    let p = off + (price.as_ptr() as usize - base);
    let s = off + (size.as_ptr() as usize - base);
    (p, p + price.len(), s, s + size.len())
}

json_fields! {
    struct V2Row {
        symbol: str <- b"symbol",
        bids: raw <- b"bids",
        asks: raw <- b"asks",
        checksum: scalar <- b"checksum",
        ts: str <- b"timestamp",
        price: scalar <- b"price",
        qty: scalar <- b"qty",
        side: str <- b"side",
        trade_id: scalar <- b"trade_id",
        bid: scalar <- b"bid",
        bid_qty: scalar <- b"bid_qty",
        ask: scalar <- b"ask",
        ask_qty: scalar <- b"ask_qty",
    }
}

json_fields! {
    /// A v2 frame's envelope.
    struct V2Envelope {
        channel: str <- b"channel",
        kind: str <- b"type",
        data: raw <- b"data",
        control: seen <- b"method" | b"event",
    }
}

impl VenueAdapter for Kraken {
    adapter_profile!(VENUE, STREAMS, ENDPOINT, KEEP_ALIVE);

    subscriptions!(v2_requests, "subscribe", "unsubscribe");

    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        match Lexer::new(frame).kind()? {
            ValueKind::Array => match self.v1_book_in_place(frame, ctx) {
                Some(parsed) => parsed,
                None => self.v1(frame, ctx),
            },
            ValueKind::Object => {
                // v1 events ({"event":…}) and v2 frames share the object shape.
                self.v2(frame, ctx)
            }
            _ => Err(ParseError::Unknown),
        }
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        for b in &mut self.books {
            b.synced = false;
            b.text.clear();
        }
        for t in &mut self.trades {
            t.1.reset();
        }
        ctx.counters.stream_mut(Stream::Book as u8).reconnects += 1;
    }
}

fn v2_requests(method: &str, symbols: &[&str], streams: &[&'static Selectable]) -> Vec<Outgoing> {
    let list: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
    let list = list.join(",");
    let mut out = Vec::new();
    for x in streams {
        // One request per channel with its own parameters and req_id.
        let (extra, req_id) = match x.channel {
            "book" => (format!(",\"depth\":{V2_DEPTH},\"snapshot\":true"), 1),
            "trade" => (",\"snapshot\":false".to_owned(), 2),
            _ => (",\"event_trigger\":\"bbo\"".to_owned(), 3),
        };
        out.push(Outgoing::Text(
            format!("{{\"method\":\"{method}\",\"params\":{{\"channel\":\"{}\",\"symbol\":[{list}]{extra}}},\"req_id\":{req_id}}}", x.channel)
                .into_bytes(),
        ));
    }
    out
}
