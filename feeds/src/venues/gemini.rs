//! Gemini market data v2 (`wss://api.gemini.com/v2/marketdata`) and the 2026 Binance-style
//! "fast API" frames (nanosecond `E`, `U`/`u` ids; `fastapi_v3` in the corpus).
//!
//! v2: `l2_updates` → BookLevel batches (the FIRST per symbol is the full book, flagged as a
//! snapshot; its embedded `trades` history and `auction_events` are skipped), `trade` → Trade
//! (`side` is the taker side; `block` trades carry side `none`), `heartbeat` counted.
//! Fast API: `depthUpdate` → BookLevel batch (`u`), trades (`t`, `m` = buyer is maker) → Trade,
//! book tickers (`b`/`B`/`a`/`A`) → TopOfBook.
//!
//! Continuity: v2 has no sequence; a reconnect ⇒ the next `l2_updates` per symbol is again a
//! snapshot (the adapter forgets which symbols had theirs). Trades' `event_id` increases but is
//! not contiguous. Fast API depth: `U == prev u + 1` (gaps counted).

use ringbolt_bus::{Record, Side, TopOfBook, Venue};

use crate::adapter::{Ctx, DecimalField, Outgoing, ParseError, Parsed, VenueAdapter};
use crate::continuity::SyncMode;
use crate::decimal::{parse_e8, parse_u64};
use crate::json::Lexer;
use crate::time::ms_text_ns;
use crate::venues::streams::Selectable;
use crate::venues::{
    collect_pairs, flush_batch, flush_levels, opt_ts, push_level, req, req_e8, side_of, text_frame,
    trade,
};

const VENUE: Venue = Venue::Gemini;

pub use super::streams::gemini::{ENDPOINT, KEEP_ALIVE, STREAMS, Stream};

/// The Gemini adapter.
#[derive(Debug)]
pub struct Gemini {
    mode: SyncMode,
    /// Instruments whose first `l2_updates` (the snapshot) arrived since (re)connect.
    have_snapshot: Vec<u32>,
    /// Last fast-API depth `u` per instrument.
    fast_last_u: Vec<(u32, u64)>,
    scratch: Vec<Record>,
}

impl Gemini {
    /// A new adapter.
    #[must_use]
    pub fn new(mode: SyncMode) -> Self {
        Gemini {
            mode,
            have_snapshot: Vec::with_capacity(8),
            fast_last_u: Vec::with_capacity(8),
            scratch: Vec::with_capacity(4096),
        }
    }
}

#[derive(Default)]
struct Msg<'a> {
    kind: Option<&'a [u8]>,
    symbol: Option<&'a [u8]>,
    changes: Option<&'a [u8]>,
    price: Option<&'a [u8]>,
    quantity: Option<&'a [u8]>,
    side: Option<&'a [u8]>,
    event_id: Option<&'a [u8]>,
    timestamp: Option<&'a [u8]>,
    // Fast API.
    e: Option<&'a [u8]>,
    e_ts: Option<&'a [u8]>,
    s: Option<&'a [u8]>,
    first: Option<&'a [u8]>,
    last: Option<&'a [u8]>,
    bids: Option<&'a [u8]>,
    asks: Option<&'a [u8]>,
    bid: Option<&'a [u8]>,
    bid_qty: Option<&'a [u8]>,
    ask: Option<&'a [u8]>,
    ask_qty: Option<&'a [u8]>,
    trade_id: Option<&'a [u8]>,
    p: Option<&'a [u8]>,
    q: Option<&'a [u8]>,
    maker: Option<bool>,
    status: bool,
}

fn msg(raw: &[u8]) -> Result<Msg<'_>, ParseError> {
    let mut m = Msg::default();
    let mut j = Lexer::new(raw);
    j.begin_object()?;
    while let Some(key) = j.next_key()? {
        match key {
            b"type" => m.kind = Some(j.str()?),
            b"symbol" => m.symbol = Some(j.str()?),
            b"changes" => m.changes = Some(j.raw_value()?),
            b"price" => m.price = Some(j.scalar()?),
            b"quantity" => m.quantity = Some(j.scalar()?),
            b"side" => m.side = Some(j.str()?),
            b"event_id" => m.event_id = Some(j.scalar()?),
            b"timestamp" => m.timestamp = Some(j.scalar()?),
            b"e" => m.e = Some(j.str()?),
            b"E" => m.e_ts = Some(j.scalar()?),
            b"s" => m.s = Some(j.str()?),
            b"U" => m.first = Some(j.scalar()?),
            b"u" => m.last = Some(j.scalar()?),
            b"b" if j.peek() == Some(b'[') => m.bids = Some(j.raw_value()?),
            b"a" if j.peek() == Some(b'[') => m.asks = Some(j.raw_value()?),
            b"b" => m.bid = Some(j.scalar()?),
            b"B" => m.bid_qty = Some(j.scalar()?),
            b"a" => m.ask = Some(j.scalar()?),
            b"A" => m.ask_qty = Some(j.scalar()?),
            b"t" => m.trade_id = Some(j.scalar()?),
            b"p" => m.p = Some(j.scalar()?),
            b"q" => m.q = Some(j.scalar()?),
            b"m" => m.maker = Some(j.bool()?),
            b"status" | b"id" | b"result" => {
                m.status = true;
                j.skip_value()?;
            }
            _ => j.skip_value()?,
        }
    }
    j.end()?;
    Ok(m)
}

impl Gemini {
    fn l2(&mut self, m: &Msg<'_>, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::L2 as u8;
        let symbol = req(m.symbol, "symbol")?;
        let Some(id) = ctx.resolve(VENUE, stream, symbol) else {
            return Ok(());
        };
        self.scratch.clear();
        let mut j = Lexer::new(req(m.changes, "changes")?);
        j.begin_array()?;
        while j.next_element()? {
            j.begin_array()?;
            let mut f: [&[u8]; 3] = [b""; 3];
            for x in &mut f {
                if !j.next_element()? {
                    self.scratch.clear();
                    return Err(ParseError::Missing("change"));
                }
                *x = j.scalar()?;
            }
            while j.next_element()? {
                j.skip_value()?;
            }
            let side = side_of(f[0]).ok_or(ParseError::Invalid("side"))?;
            push_level(&mut self.scratch, VENUE, stream, id, side, f[1], f[2], 0, 0)
                .inspect_err(|_| self.scratch.clear())?;
        }
        let snapshot = !self.have_snapshot.contains(&id);
        if snapshot {
            self.have_snapshot.push(id);
            ctx.counters.stream_mut(stream).resyncs += 1;
        }
        flush_levels(ctx, &mut self.scratch, snapshot, VENUE, stream, id, 0, 0);
        Ok(())
    }

    fn fast(&mut self, m: &Msg<'_>, len: usize, ctx: &mut Ctx<'_>) -> Parsed {
        let symbol = req(m.s, "s")?;
        // `E` is in nanoseconds on the fast API.
        let ts = m
            .e_ts
            .map(parse_u64)
            .transpose()
            .field("E")?
            .map_or(0, |v| i64::try_from(v).unwrap_or(0));
        if m.e == Some(b"depthUpdate") {
            let stream = Stream::FastDepth as u8;
            ctx.count_message(stream, len);
            let first = parse_u64(req(m.first, "U")?).field("U")?;
            let last = parse_u64(req(m.last, "u")?).field("u")?;
            let Some(id) = ctx.resolve(VENUE, stream, symbol) else {
                return Ok(());
            };
            collect_pairs(
                &mut self.scratch,
                VENUE,
                stream,
                id,
                [(m.bids, Side::Buy), (m.asks, Side::Sell)],
                ts,
                last,
            )?;
            match self.fast_last_u.iter_mut().find(|x| x.0 == id) {
                Some(entry) => {
                    if first != entry.1 + 1 && last > entry.1 {
                        ctx.count_gap(stream, first.saturating_sub(entry.1 + 1));
                    }
                    entry.1 = last;
                }
                None => self.fast_last_u.push((id, last)),
            }
            flush_batch(ctx, &mut self.scratch, false, Record::zeroed());
            return Ok(());
        }
        if let Some(t) = m.trade_id {
            let stream = Stream::FastTrades as u8;
            ctx.count_message(stream, len);
            let trade_id = parse_u64(t).field("t")?;
            let maker = m.maker.ok_or(ParseError::Missing("m"))?;
            let body = trade(
                req_e8(m.p, "p")?,
                req_e8(m.q, "q")?,
                trade_id,
                if maker { Side::Sell } else { Side::Buy },
            );
            if let Some(id) = ctx.resolve(VENUE, stream, symbol) {
                ctx.emit_body(VENUE, stream, id, ts, trade_id, 0, &body);
            }
            return Ok(());
        }
        if m.bid.is_some() && m.ask.is_some() {
            let stream = Stream::FastBookTicker as u8;
            ctx.count_message(stream, len);
            let u = m.last.map(parse_u64).transpose().field("u")?.unwrap_or(0);
            let body = TopOfBook {
                bid_price: parse_e8(req(m.bid, "b")?).field("b")?,
                bid_size: parse_e8(req(m.bid_qty, "B")?).field("B")?,
                ask_price: parse_e8(req(m.ask, "a")?).field("a")?,
                ask_size: parse_e8(req(m.ask_qty, "A")?).field("A")?,
                reserved: [0; 48],
            };
            if let Some(id) = ctx.resolve(VENUE, stream, symbol) {
                ctx.emit_body(VENUE, stream, id, ts, u, 0, &body);
            }
            return Ok(());
        }
        Err(ParseError::Unknown)
    }
}

impl VenueAdapter for Gemini {
    adapter_profile!(VENUE, STREAMS, ENDPOINT, KEEP_ALIVE);

    subscriptions!(sub, "subscribe", "unsubscribe");

    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        let m = msg(frame)?;
        match m.kind {
            Some(b"l2_updates") => {
                ctx.count_message(Stream::L2 as u8, frame.len());
                self.l2(&m, ctx)
            }
            Some(b"trade") => {
                let stream = Stream::Trades as u8;
                ctx.count_message(stream, frame.len());
                let side = match req(m.side, "side")? {
                    b"block" => Side::None,
                    s => side_of(s).ok_or(ParseError::Invalid("side"))?,
                };
                let trade_id = parse_u64(req(m.event_id, "event_id")?).field("event_id")?;
                let body = trade(
                    req_e8(m.price, "price")?,
                    req_e8(m.quantity, "quantity")?,
                    trade_id,
                    side,
                );
                let ts = opt_ts(m.timestamp, ms_text_ns, "timestamp")?;
                if let Some(id) = ctx.resolve(VENUE, stream, req(m.symbol, "symbol")?) {
                    ctx.emit_body(VENUE, stream, id, ts, trade_id, 0, &body);
                }
                Ok(())
            }
            Some(b"heartbeat" | b"subscription_ack") => {
                ctx.count_message(0, frame.len());
                Ok(())
            }
            Some(_) => Err(ParseError::Unknown),
            None if m.s.is_some() => self.fast(&m, frame.len(), ctx),
            None if m.status => {
                ctx.count_message(0, frame.len());
                Ok(())
            }
            None => Err(ParseError::Unknown),
        }
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        self.have_snapshot.clear();
        self.fast_last_u.clear();
        let _ = self.mode;
        ctx.counters.stream_mut(Stream::L2 as u8).reconnects += 1;
    }
}

/// v2 (`/v2/marketdata`): one request naming every channel; the current API
/// (`wss://ws.gemini.com`): `{"id","method","params":["btcusd@bookTicker",…]}`, lowercase symbols.
fn sub(kind: &str, symbols: &[&str], streams: &[&'static Selectable]) -> Vec<Outgoing> {
    let list: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
    let (fast, v2): (Vec<&&Selectable>, Vec<&&Selectable>) =
        streams.iter().partition(|x| x.group == "fast");
    let mut out = Vec::new();
    if !v2.is_empty() {
        let subs: Vec<String> = v2
            .iter()
            .map(|x| {
                format!(
                    "{{\"name\":\"{}\",\"symbols\":[{}]}}",
                    x.channel,
                    list.join(",")
                )
            })
            .collect();
        out.extend(text_frame(format!(
            "{{\"type\":\"{kind}\",\"subscriptions\":[{}]}}",
            subs.join(",")
        )));
    }
    if !fast.is_empty() {
        let mut params = Vec::new();
        for s in symbols {
            let s = s.to_ascii_lowercase();
            params.extend(fast.iter().map(|x| format!("\"{s}@{}\"", x.channel)));
        }
        out.extend(text_frame(format!(
            "{{\"id\":\"1\",\"method\":\"{kind}\",\"params\":[{}]}}",
            params.join(",")
        )));
    }
    out
}
