//! Coinbase Exchange WS (`wss://ws-feed.exchange.coinbase.com`) and Advanced Trade WS
//! (`wss://advanced-trade-ws.coinbase.com`), told apart by their envelope (`type` vs
//! `channel`).
//!
//! Exchange: `ticker` → TopOfBook, `match`/`last_match` → Trade (the message's `side` is the
//! MAKER side; the record carries the aggressor, i.e. the opposite), `snapshot`/`l2update` →
//! BookLevel batches, `heartbeat` → continuity only. Advanced: `l2_data`, `ticker`,
//! `market_trades`, `heartbeats`, `subscriptions`.
//!
//! Continuity: `trade_id` +1 per product (gaps counted; `last_match` sets the baseline;
//! a heartbeat's `last_trade_id` beyond the last seen match is a gap). Exchange `sequence` is
//! per product and shared by every event of the product's full feed, so on the public
//! `ticker` / `matches` / `heartbeat` channels it skips numbers by design (third-party capture:
//! 89 of 97 consecutive `match` steps skip, while `trade_id` advances by one); it is checked
//! per product and channel to strictly increase: a sequence not above the last one (a replay
//! or reordering) is counted (`dropped_unsynced`) and, in [`SyncMode::Enforce`], dropped. `level2_batch` has no
//! sequence: in [`SyncMode::Enforce`] an `l2update` before its product's `snapshot` is dropped.
//! Advanced frames carry `sequence_num`, +1 per connection: a gap marks every level-2 book
//! unsynchronised and queues a resubscribe (fresh snapshot).

use ringbolt_bus::{FeedState, Side, TopOfBook, Venue};

use crate::adapter::{Action, Ctx, DecimalField, Outgoing, ParseError, Parsed, VenueAdapter};
use crate::continuity::{SeqCheck, SeqTracker, SyncMode};
use crate::decimal::{parse_e8, parse_u64};
use crate::json::Lexer;
use crate::time::iso8601_ns;
use crate::venues::streams::Selectable;
use crate::venues::{
    array_scalars, flush_levels, for_each_pair, opposite, opt_e8, opt_ts, push_level, push_parsed,
    req, side_of, sync_gate, text_frame, trade,
};

const VENUE: Venue = Venue::Coinbase;

pub use super::streams::coinbase::{ENDPOINT, KEEP_ALIVE, STREAMS, Stream};

#[derive(Debug)]
struct Product {
    instrument: u32,
    symbol: String,
    trades: SeqTracker,
    l2_synced: bool,
    /// Last Exchange `sequence` per channel (ticker, matches, heartbeat).
    last_seq: [u64; 3],
}

/// The Coinbase adapter.
#[derive(Debug)]
pub struct Coinbase {
    mode: SyncMode,
    products: Vec<Product>,
    conn_seq: SeqTracker,
    scratch: Vec<ringbolt_bus::Record>,
}

json_fields! {
    struct Msg {
        kind: str <- b"type",
        product: str <- b"product_id",
        sequence: scalar <- b"sequence",
        time: str <- b"time",
        price: scalar <- b"price",
        size: scalar <- b"size" | b"last_size",
        side: str <- b"side",
        trade_id: scalar <- b"trade_id",
        last_trade_id: scalar <- b"last_trade_id",
        best_bid: scalar <- b"best_bid",
        best_ask: scalar <- b"best_ask",
        best_bid_size: scalar <- b"best_bid_size" | b"best_bid_quantity",
        best_ask_size: scalar <- b"best_ask_size" | b"best_ask_quantity",
        bids: raw <- b"bids",
        asks: raw <- b"asks",
        changes: raw <- b"changes",
        channel: str <- b"channel",
        events: raw <- b"events",
        sequence_num: scalar <- b"sequence_num",
        timestamp: str <- b"timestamp",
    }
}

fn ts_of(v: Option<&[u8]>) -> Result<i64, ParseError> {
    opt_ts(v, iso8601_ns, "time")
}

impl Coinbase {
    /// A new adapter.
    #[must_use]
    pub fn new(mode: SyncMode) -> Self {
        Coinbase {
            mode,
            products: Vec::new(),
            conn_seq: SeqTracker::default(),
            scratch: Vec::with_capacity(8192),
        }
    }

    /// Publishes the level batch built in `scratch` for one product, under the book-sync rule
    /// shared by the Exchange `level2` and Advanced Trade `l2_data` channels: a snapshot
    /// (re)synchronises the book; in `Enforce` mode an update before the first snapshot is
    /// dropped and counted (`dropped_unsynced`) instead of corrupting the book.
    #[allow(clippy::too_many_arguments)]
    fn commit_l2(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: u32,
        product: &[u8],
        stream: u8,
        snapshot: bool,
        ts: i64,
        seq: u64,
    ) {
        let enforce = self.mode == SyncMode::Enforce;
        let p = self.product(id, product);
        if !sync_gate(ctx, stream, &mut p.l2_synced, snapshot, enforce) {
            self.scratch.clear();
            return;
        }
        flush_levels(ctx, &mut self.scratch, snapshot, VENUE, stream, id, ts, seq);
    }

    fn product(&mut self, instrument: u32, symbol: &[u8]) -> &mut Product {
        let i = match self
            .products
            .iter()
            .position(|p| p.instrument == instrument)
        {
            Some(i) => i,
            None => {
                // Cold path: first sight of a product.
                self.products.push(Product {
                    instrument,
                    symbol: String::from_utf8_lossy(symbol).into_owned(),
                    trades: SeqTracker::default(),
                    l2_synced: false,
                    last_seq: [0; 3],
                });
                self.products.len() - 1
            }
        };
        &mut self.products[i]
    }

    /// Checks the Exchange `sequence` of a `stream` message of product `id`: `false` (counted)
    /// when it is not above the last one and the message must be dropped.
    fn sequence_ok(
        &mut self,
        ctx: &mut Ctx<'_>,
        stream: u8,
        id: u32,
        product: &[u8],
        seq: u64,
    ) -> bool {
        let slot = match stream {
            s if s == Stream::Ticker as u8 => 0,
            s if s == Stream::Matches as u8 => 1,
            _ => 2,
        };
        let enforce = self.mode == SyncMode::Enforce;
        let last = &mut self.product(id, product).last_seq[slot];
        if seq == 0 || seq > *last {
            *last = (*last).max(seq);
            return true;
        }
        ctx.counters.stream_mut(stream).dropped_unsynced += 1;
        !enforce
    }

    #[allow(clippy::too_many_arguments)]
    fn trade(
        &mut self,
        stream: u8,
        product: &[u8],
        trade_id: &[u8],
        price: &[u8],
        size: &[u8],
        maker_side: &[u8],
        ts: i64,
        seq: u64,
        baseline: bool,
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        let price = parse_e8(price).field("price")?;
        let size = parse_e8(size).field("size")?;
        let maker = side_of(maker_side).ok_or(ParseError::Invalid("side"))?;
        // Advanced Trade ids are numeric strings today; anything else is carried as 0.
        let trade_id = parse_u64(trade_id).unwrap_or(0);
        let Some(id) = ctx.resolve(VENUE, stream, product) else {
            return Ok(());
        };
        if stream == Stream::Matches as u8 {
            if !self.sequence_ok(ctx, stream, id, product, seq) {
                return Ok(());
            }
            let p = self.product(id, product);
            if baseline {
                p.trades.reset();
            }
            if let SeqCheck::Gap { missed } = p.trades.check(trade_id) {
                ctx.announce_gap(VENUE, stream, id, missed);
            }
        }
        let body = trade(price, size, trade_id, opposite(maker));
        ctx.emit_body(
            VENUE,
            stream,
            id,
            ts,
            if seq != 0 { seq } else { trade_id },
            0,
            &body,
        );
        Ok(())
    }

    fn exchange(&mut self, m: &Msg<'_>, len: usize, ctx: &mut Ctx<'_>) -> Parsed {
        let kind = req(m.kind, "type")?;
        let seq = m
            .sequence
            .map(parse_u64)
            .transpose()
            .field("sequence")?
            .unwrap_or(0);
        match kind {
            b"ticker" => {
                let stream = Stream::Ticker as u8;
                ctx.count_message(stream, len);
                let product = req(m.product, "product_id")?;
                let body = TopOfBook {
                    bid_price: parse_e8(req(m.best_bid, "best_bid")?).field("best_bid")?,
                    bid_size: opt_e8(m.best_bid_size, "best_bid_size")?,
                    ask_price: parse_e8(req(m.best_ask, "best_ask")?).field("best_ask")?,
                    ask_size: opt_e8(m.best_ask_size, "best_ask_size")?,
                    reserved: [0; 48],
                };
                let ts = ts_of(m.time)?;
                if let Some(id) = ctx.resolve(VENUE, stream, product)
                    && self.sequence_ok(ctx, stream, id, product, seq)
                {
                    ctx.emit_body(VENUE, stream, id, ts, seq, 0, &body);
                }
                Ok(())
            }
            b"match" | b"last_match" => {
                let stream = Stream::Matches as u8;
                ctx.count_message(stream, len);
                self.trade(
                    stream,
                    req(m.product, "product_id")?,
                    req(m.trade_id, "trade_id")?,
                    req(m.price, "price")?,
                    req(m.size, "size")?,
                    req(m.side, "side")?,
                    ts_of(m.time)?,
                    seq,
                    kind == b"last_match",
                    ctx,
                )
            }
            b"heartbeat" => {
                let stream = Stream::Heartbeat as u8;
                ctx.count_message(stream, len);
                let product = req(m.product, "product_id")?;
                let last =
                    parse_u64(req(m.last_trade_id, "last_trade_id")?).field("last_trade_id")?;
                if let Some(id) = ctx.resolve(VENUE, stream, product)
                    && self.sequence_ok(ctx, stream, id, product, seq)
                {
                    let p = self.product(id, product);
                    if let Some(seen) = p.trades.last()
                        && last > seen
                    {
                        // Matches were missed: count them on the matches stream.
                        ctx.announce_gap(VENUE, Stream::Matches as u8, id, last - seen);
                        let _ = p.trades.check(last);
                    }
                }
                Ok(())
            }
            b"snapshot" | b"l2update" => {
                let stream = Stream::Level2 as u8;
                ctx.count_message(stream, len);
                let product = req(m.product, "product_id")?;
                let ts = ts_of(m.time)?;
                let Some(id) = ctx.resolve(VENUE, stream, product) else {
                    return Ok(());
                };
                self.scratch.clear();
                let scratch = &mut self.scratch;
                let snapshot = kind == b"snapshot";
                if snapshot {
                    for (raw, side) in [(m.bids, Side::Buy), (m.asks, Side::Sell)] {
                        let raw = raw.ok_or(ParseError::Missing("bids/asks"))?;
                        for_each_pair(raw, |l| {
                            push_parsed(scratch, VENUE, stream, id, side, l.price, l.size, ts, 0);
                            Ok(())
                        })
                        .inspect_err(|_| scratch.clear())?;
                    }
                } else {
                    changes(req(m.changes, "changes")?, scratch, stream, id, ts)
                        .inspect_err(|_| scratch.clear())?;
                }
                self.commit_l2(ctx, id, product, stream, snapshot, ts, 0);
                Ok(())
            }
            b"subscriptions" | b"error" => {
                ctx.count_message(0, len);
                Ok(())
            }
            _ => Err(ParseError::Unknown),
        }
    }

    fn advanced(&mut self, m: &Msg<'_>, len: usize, ctx: &mut Ctx<'_>) -> Parsed {
        let channel = req(m.channel, "channel")?;
        let ts = ts_of(m.timestamp)?;
        let seq = m
            .sequence_num
            .map(parse_u64)
            .transpose()
            .field("sequence_num")?;
        let stream = match channel {
            b"l2_data" => Stream::AdvLevel2,
            b"ticker" | b"ticker_batch" => Stream::AdvTicker,
            b"market_trades" => Stream::AdvMarketTrades,
            b"heartbeats" => Stream::AdvHeartbeats,
            b"subscriptions" => {
                ctx.count_message(0, len);
                return Ok(());
            }
            _ => return Err(ParseError::Unknown),
        } as u8;
        ctx.count_message(stream, len);
        let events = req(m.events, "events")?;
        // Validate the whole frame before touching continuity state.
        let mut j = Lexer::new(events);
        j.begin_array()?;
        self.scratch.clear();
        while j.next_element()? {
            let ev = j.raw_value()?;
            match stream {
                s if s == Stream::AdvLevel2 as u8 => {
                    self.adv_level2(ev, ts, seq.unwrap_or(0), ctx)?
                }
                s if s == Stream::AdvTicker as u8 => {
                    self.adv_tickers(ev, ts, seq.unwrap_or(0), ctx)?
                }
                s if s == Stream::AdvMarketTrades as u8 => {
                    self.adv_trades(ev, seq.unwrap_or(0), ctx)?
                }
                _ => {}
            }
        }
        if let Some(seq) = seq
            && let SeqCheck::Gap { missed } = self.conn_seq.check(seq)
        {
            ctx.count_gap(0, missed);
            if self.mode == SyncMode::Enforce {
                let mut status = ctx.counters.status_record(
                    VENUE,
                    Stream::AdvLevel2 as u8,
                    FeedState::GapDetected,
                );
                ctx.emit(&mut status);
                let mut symbols: Vec<&str> = Vec::new();
                for p in &mut self.products {
                    if p.l2_synced {
                        p.l2_synced = false;
                        symbols.push(&p.symbol);
                    }
                }
                if !symbols.is_empty() {
                    let frames = ["unsubscribe", "subscribe"]
                        .iter()
                        .map(|kind| Outgoing::Text(advanced_sub(kind, &symbols, "level2")))
                        .collect();
                    ctx.actions.push(Action::Resubscribe(frames));
                }
            }
        }
        Ok(())
    }

    fn adv_level2(&mut self, ev: &[u8], ts: i64, seq: u64, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::AdvLevel2 as u8;
        let L2Event {
            kind,
            product,
            updates,
        } = L2Event::parse(ev)?;
        let snapshot = req(kind, "type")? == b"snapshot";
        let product = req(product, "product_id")?;
        let Some(id) = ctx.resolve(VENUE, stream, product) else {
            return Ok(());
        };
        let mut u = Lexer::new(req(updates, "updates")?);
        u.begin_array()?;
        self.scratch.clear();
        while u.next_element()? {
            u.begin_object()?;
            let (mut side, mut price, mut qty) = (None, None, None);
            while let Some(key) = u.next_key()? {
                match key {
                    b"side" => side = Some(u.str()?),
                    b"price_level" => price = Some(u.scalar()?),
                    b"new_quantity" => qty = Some(u.scalar()?),
                    _ => u.skip_value()?,
                }
            }
            let side = side_of(req(side, "side")?).ok_or(ParseError::Invalid("side"))?;
            push_level(
                &mut self.scratch,
                VENUE,
                stream,
                id,
                side,
                req(price, "price_level")?,
                req(qty, "new_quantity")?,
                ts,
                seq,
            )
            .inspect_err(|_| self.scratch.clear())?;
        }
        self.commit_l2(ctx, id, product, stream, snapshot, ts, seq);
        Ok(())
    }

    fn adv_tickers(&mut self, ev: &[u8], ts: i64, seq: u64, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::AdvTicker as u8;
        let mut j = Lexer::new(ev);
        j.begin_object()?;
        while let Some(key) = j.next_key()? {
            if key != b"tickers" {
                j.skip_value()?;
                continue;
            }
            j.begin_array()?;
            while j.next_element()? {
                let t = Msg::parse_exact(j.raw_value()?)?;
                let product = req(t.product, "product_id")?;
                // Older revisions carry no best bid/ask: nothing to publish.
                let (Some(bid), Some(ask)) = (t.best_bid, t.best_ask) else {
                    continue;
                };
                let body = TopOfBook {
                    bid_price: parse_e8(bid).field("best_bid")?,
                    bid_size: opt_e8(t.best_bid_size, "best_bid_quantity")?,
                    ask_price: parse_e8(ask).field("best_ask")?,
                    ask_size: opt_e8(t.best_ask_size, "best_ask_quantity")?,
                    reserved: [0; 48],
                };
                if let Some(id) = ctx.resolve(VENUE, stream, product)
                    && self.sequence_ok(ctx, stream, id, product, seq)
                {
                    ctx.emit_body(VENUE, stream, id, ts, seq, 0, &body);
                }
            }
        }
        Ok(())
    }

    fn adv_trades(&mut self, ev: &[u8], seq: u64, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::AdvMarketTrades as u8;
        let mut j = Lexer::new(ev);
        j.begin_object()?;
        while let Some(key) = j.next_key()? {
            if key != b"trades" {
                j.skip_value()?;
                continue;
            }
            j.begin_array()?;
            while j.next_element()? {
                let t = Msg::parse_exact(j.raw_value()?)?;
                self.trade(
                    stream,
                    req(t.product, "product_id")?,
                    req(t.trade_id, "trade_id")?,
                    req(t.price, "price")?,
                    req(t.size, "size")?,
                    req(t.side, "side")?,
                    ts_of(t.time)?,
                    seq,
                    false,
                    ctx,
                )?;
            }
        }
        Ok(())
    }
}

fn changes(
    raw: &[u8],
    scratch: &mut Vec<ringbolt_bus::Record>,
    stream: u8,
    id: u32,
    ts: i64,
) -> Parsed {
    let mut j = Lexer::new(raw);
    j.begin_array()?;
    while j.next_element()? {
        j.begin_array()?;
        let parts: [&[u8]; 3] = array_scalars(&mut j, "change")?;
        let side = side_of(parts[0]).ok_or(ParseError::Invalid("side"))?;
        push_level(scratch, VENUE, stream, id, side, parts[1], parts[2], ts, 0)?;
    }
    Ok(())
}

json_fields! {
    /// One Advanced Trade `l2_data` event.
    struct L2Event {
        kind: str <- b"type",
        product: str <- b"product_id",
        updates: raw <- b"updates",
    }
}

impl VenueAdapter for Coinbase {
    adapter_profile!(VENUE, STREAMS, ENDPOINT, KEEP_ALIVE);

    subscriptions!(sub, "subscribe", "unsubscribe");

    fn stale_after_ns(&self) -> u64 {
        // Heartbeats arrive every second.
        3_000_000_000
    }

    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        let m = Msg::parse_exact(frame)?;
        if m.channel.is_some() {
            self.advanced(&m, frame.len(), ctx)
        } else {
            self.exchange(&m, frame.len(), ctx)
        }
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        for p in &mut self.products {
            p.trades.reset();
            p.l2_synced = false;
            p.last_seq = [0; 3];
        }
        self.conn_seq.reset();
        ctx.counters.stream_mut(Stream::Level2 as u8).reconnects += 1;
    }
}

/// Exchange channels go in one request; Advanced Trade takes one channel per request.
fn sub(kind: &str, symbols: &[&str], streams: &[&'static Selectable]) -> Vec<Outgoing> {
    let ids: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
    let ids = ids.join(",");
    let (advanced, exchange): (Vec<&&Selectable>, Vec<&&Selectable>) =
        streams.iter().partition(|x| x.group == "advanced");
    let mut out = Vec::new();
    if !exchange.is_empty() {
        let channels: Vec<String> = exchange
            .iter()
            .map(|x| format!("\"{}\"", x.channel))
            .collect();
        out.extend(text_frame(format!(
            "{{\"type\":\"{kind}\",\"product_ids\":[{ids}],\"channels\":[{}]}}",
            channels.join(",")
        )));
    }
    for x in advanced {
        out.extend(text_frame(format!(
            "{{\"type\":\"{kind}\",\"product_ids\":[{ids}],\"channel\":\"{}\"}}",
            x.channel
        )));
    }
    out
}

/// An Advanced Trade (un)subscribe frame for one channel.
fn advanced_sub(kind: &str, symbols: &[&str], channel: &str) -> Vec<u8> {
    let ids: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "{{\"type\":\"{kind}\",\"product_ids\":[{}],\"channel\":\"{channel}\"}}",
        ids.join(",")
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::FrameDriver;

    fn matched(seq: u64, trade_id: u64) -> String {
        format!(
            r#"{{"type":"match","trade_id":{trade_id},"maker_order_id":"a","taker_order_id":"b","side":"sell","size":"0.5","price":"97000.01","product_id":"BTC-USD","sequence":{seq},"time":"2026-12-06T01:00:00.000000Z"}}"#
        )
    }

    #[test]
    fn exchange_sequence_must_increase_per_product_and_channel() {
        for (mode, emitted) in [(SyncMode::Enforce, 3), (SyncMode::Observe, 4)] {
            let mut d = FrameDriver::new(VENUE, mode, true).unwrap();
            let mut out = Vec::new();
            // Skipping numbers is normal on the public channels; going back is not.
            for (seq, id) in [(100, 1), (130, 2), (120, 3), (131, 3)] {
                d.frame(matched(seq, id).as_bytes(), 1, &mut out).unwrap();
            }
            let c = d.counters.stream(Stream::Matches as u8);
            assert_eq!(c.dropped_unsynced, 1, "{mode:?}");
            assert_eq!(out.len(), emitted, "{mode:?}");
            // A ticker shares its match's sequence: separate per channel, not a regression.
            let ticker = r#"{"type":"ticker","sequence":131,"product_id":"BTC-USD","price":"97000.01","best_bid":"97000.00","best_bid_size":"0.1","best_ask":"97000.02","best_ask_size":"0.2","side":"buy","time":"2026-12-06T01:00:00.000000Z","trade_id":3,"last_size":"0.5"}"#;
            d.frame(ticker.as_bytes(), 1, &mut out).unwrap();
            assert_eq!(d.counters.stream(Stream::Ticker as u8).dropped_unsynced, 0);
            assert_eq!(out.len(), emitted + 1, "{mode:?}");
        }
    }
}
