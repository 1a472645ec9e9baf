//! Polymarket CLOB market channel (`wss://ws-subscriptions-clob.polymarket.com/ws/market`).
//!
//! Events (`event_type`): `book` (full snapshot per asset), `price_change` (array form since
//! Sept 2025: `price_changes[]` with the new absolute size per level; the obsolete top-level
//! form is accepted too), `tick_size_change`, `last_trade_price`, `best_bid_ask`, and the
//! custom-feature events `new_market` / `market_resolved`. A frame may be one event object, a
//! JSON array of events, `[]`, or the text `PONG`.
//!
//! Continuity: the channel has no sequence numbers. A book is trusted only after a `book`
//! snapshot for its asset; after a reconnect every asset awaits a new snapshot and, in
//! [`SyncMode::Enforce`], `price_change` levels for an asset without one are dropped and
//! counted (`dropped_unsynced`).
//!
//! Book prices must lie on the market crate's grid (a multiple of 0.0001 inside (0, 1), which
//! holds every tick): a level elsewhere fails the frame with `invalid value in field price`.
//! `tick_size_change` is parsed by the market crate ([`TickSizeChange`]) and remembered per
//! instrument ([`Polymarket::tick_of`]) and published as a `MarketParams` record stating the
//! tick only (source `tick_size_change`, `window_start_s` 0: consumers know the token's window).

use ringbolt_bus::{Record, Side, TopOfBook, Venue};
use ringbolt_market::{MarketParams, ParamsError, Tick, TickSizeChange, on_grid};

use crate::adapter::{Ctx, DecimalField, Outgoing, ParseError, Parsed, VenueAdapter};
use crate::continuity::SyncMode;
use crate::decimal::parse_e8;
use crate::json::{Lexer, ValueKind};
use crate::time::ms_text_ns;
use crate::venues::streams::Selectable;
use crate::venues::{empty_snapshot, flush_batch, for_each_obj_level, push_parsed, side_of, trade};

const VENUE: Venue = Venue::Polymarket;

pub use super::streams::polymarket::{ENDPOINT, KEEP_ALIVE, STREAMS, Stream};

/// The Polymarket market-channel adapter.
#[derive(Debug)]
pub struct Polymarket {
    mode: SyncMode,
    /// Instruments whose book snapshot arrived since the last (re)connect.
    synced: Vec<u32>,
    /// The latest tick announced per instrument by `tick_size_change`.
    ticks: Vec<(u32, Tick)>,
    scratch: Vec<Record>,
}

impl Polymarket {
    /// A new adapter.
    #[must_use]
    pub fn new(mode: SyncMode) -> Self {
        Polymarket {
            mode,
            synced: Vec::with_capacity(16),
            ticks: Vec::with_capacity(16),
            scratch: Vec::with_capacity(4096),
        }
    }

    /// Frames that add assets to a live connection at a window rollover (no reconnect).
    #[must_use]
    pub fn add_assets(&self, asset_ids: &[&str]) -> Vec<Outgoing> {
        vec![Outgoing::Text(operation("subscribe", asset_ids))]
    }

    /// The tick the venue last announced for `instrument` (`tick_size_change`), if any.
    #[must_use]
    pub fn tick_of(&self, instrument: u32) -> Option<Tick> {
        self.ticks
            .iter()
            .find(|(id, _)| *id == instrument)
            .map(|(_, t)| *t)
    }

    fn is_synced(&self, instrument: u32) -> bool {
        self.synced.contains(&instrument)
    }

    fn event(&mut self, raw: &[u8], ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
        let mut j = Lexer::new(raw);
        j.begin_object()?;
        let mut ev = Event::default();
        while let Some(key) = j.next_key()? {
            match key {
                b"event_type" => ev.event_type = Some(j.str()?),
                b"asset_id" => ev.asset_id = Some(j.str()?),
                b"timestamp" => ev.timestamp = Some(j.scalar()?),
                b"bids" | b"buys" => ev.bids = Some(j.raw_value()?),
                b"asks" | b"sells" => ev.asks = Some(j.raw_value()?),
                b"price_changes" => ev.changes = Some(j.raw_value()?),
                b"price" => ev.price = Some(j.scalar()?),
                b"size" => ev.size = Some(j.scalar()?),
                b"side" => ev.side = Some(j.str()?),
                b"best_bid" => ev.best_bid = Some(j.scalar()?),
                b"best_ask" => ev.best_ask = Some(j.scalar()?),
                _ => j.skip_value()?,
            }
        }
        j.end()?;
        let ts = match ev.timestamp {
            Some(t) => ms_text_ns(t).field("timestamp")?,
            None => 0,
        };
        // ws_quotes-style frames carry `price_changes` without `event_type`.
        let event_type = match ev.event_type {
            Some(t) => t,
            None if ev.changes.is_some() => b"price_change",
            None if ev.bids.is_some() || ev.asks.is_some() => b"book",
            None => return Err(ParseError::Missing("event_type")),
        };
        match event_type {
            b"book" => {
                ctx.count_message(Stream::Book as u8, raw.len());
                self.book(&ev, ts, ctx)
            }
            b"price_change" => {
                ctx.count_message(Stream::PriceChange as u8, raw.len());
                self.price_change(&ev, ts, ctx)
            }
            b"last_trade_price" => {
                ctx.count_message(Stream::LastTradePrice as u8, raw.len());
                let asset = ev.asset_id.ok_or(ParseError::Missing("asset_id"))?;
                let side = side_of(ev.side.ok_or(ParseError::Missing("side"))?)
                    .ok_or(ParseError::Invalid("side"))?;
                let price =
                    parse_e8(ev.price.ok_or(ParseError::Missing("price"))?).field("price")?;
                let size = parse_e8(ev.size.ok_or(ParseError::Missing("size"))?).field("size")?;
                let stream = Stream::LastTradePrice as u8;
                if let Some(id) = ctx.resolve(VENUE, stream, asset) {
                    let body = trade(price, size, 0, side);
                    ctx.emit_body(VENUE, stream, id, ts, 0, 0, &body);
                }
                Ok(())
            }
            b"best_bid_ask" => {
                let stream = Stream::BestBidAsk as u8;
                ctx.count_message(stream, raw.len());
                let asset = ev.asset_id.ok_or(ParseError::Missing("asset_id"))?;
                let bid = opt_price(ev.best_bid, "best_bid")?;
                let ask = opt_price(ev.best_ask, "best_ask")?;
                if let Some(id) = ctx.resolve(VENUE, stream, asset) {
                    let body = TopOfBook {
                        bid_price: bid,
                        bid_size: 0,
                        ask_price: ask,
                        ask_size: 0,
                        reserved: [0; 48],
                    };
                    ctx.emit_body(VENUE, stream, id, ts, 0, 0, &body);
                }
                Ok(())
            }
            b"tick_size_change" => self.tick_size_change(raw, ctx),
            b"new_market" | b"market_resolved" => {
                ctx.count_message(Stream::MarketEvent as u8, raw.len());
                Ok(())
            }
            _ => Err(ParseError::Unknown),
        }
    }

    fn tick_size_change(&mut self, raw: &[u8], ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
        let stream = Stream::TickSizeChange as u8;
        ctx.count_message(stream, raw.len());
        let change = TickSizeChange::parse(raw).map_err(|e| match e {
            ParamsError::Tick(_) => ParseError::Invalid("new_tick_size"),
            _ => ParseError::Missing("new_tick_size"),
        })?;
        if let Some(id) = ctx.resolve(VENUE, stream, change.asset_id.as_bytes()) {
            match self.ticks.iter_mut().find(|(i, _)| *i == id) {
                Some(entry) => entry.1 = change.new_tick,
                None => self.ticks.push((id, change.new_tick)),
            }
            let body = MarketParams::tick_body(0, change.new_tick);
            ctx.emit_body(VENUE, stream, id, 0, 0, 0, &body);
        }
        Ok(())
    }

    /// A `book` event (counted by the caller).
    fn book(&mut self, ev: &Event<'_>, ts: i64, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::Book as u8;
        let asset = ev.asset_id.ok_or(ParseError::Missing("asset_id"))?;
        let bids = ev.bids.ok_or(ParseError::Missing("bids"))?;
        let asks = ev.asks.ok_or(ParseError::Missing("asks"))?;
        let Some(id) = ctx.resolve(VENUE, stream, asset) else {
            return Ok(());
        };
        self.scratch.clear();
        let scratch = &mut self.scratch;
        for (raw, side) in [(bids, Side::Buy), (asks, Side::Sell)] {
            for_each_obj_level(raw, b"price", b"size", |l| {
                if !on_grid(l.price) {
                    return Err(ParseError::Invalid("price"));
                }
                push_parsed(scratch, VENUE, stream, id, side, l.price, l.size, ts, 0);
                Ok(())
            })
            .inspect_err(|_| scratch.clear())?;
        }
        flush_batch(
            ctx,
            &mut self.scratch,
            true,
            empty_snapshot(VENUE, stream, id, ts, 0),
        );
        if !self.is_synced(id) {
            self.synced.push(id);
            ctx.counters.stream_mut(stream).resyncs += 1;
        }
        Ok(())
    }

    /// A `price_change` event (counted by the caller).
    fn price_change(&mut self, ev: &Event<'_>, ts: i64, ctx: &mut Ctx<'_>) -> Parsed {
        self.scratch.clear();
        let result = match ev.changes {
            Some(changes) => self.changes(changes, ts, ctx),
            None => {
                // Obsolete (pre-Sept-2025) single-level form.
                let asset = ev.asset_id.ok_or(ParseError::Missing("asset_id"))?;
                let side = side_of(ev.side.ok_or(ParseError::Missing("side"))?)
                    .ok_or(ParseError::Invalid("side"))?;
                let price = ev.price.ok_or(ParseError::Missing("price"))?;
                let size = ev.size.ok_or(ParseError::Missing("size"))?;
                self.change(asset, side, price, size, ts, ctx)
            }
        };
        if let Err(e) = result {
            self.scratch.clear();
            return Err(e);
        }
        let empty = Record::zeroed();
        flush_batch(ctx, &mut self.scratch, false, empty);
        Ok(())
    }

    fn changes(&mut self, raw: &[u8], ts: i64, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
        let mut j = Lexer::new(raw);
        j.begin_array()?;
        while j.next_element()? {
            j.begin_object()?;
            let (mut asset, mut price, mut size, mut side) = (None, None, None, None);
            while let Some(key) = j.next_key()? {
                match key {
                    b"asset_id" => asset = Some(j.str()?),
                    b"price" => price = Some(j.scalar()?),
                    b"size" => size = Some(j.scalar()?),
                    b"side" => side = Some(j.str()?),
                    _ => j.skip_value()?,
                }
            }
            let side = side_of(side.ok_or(ParseError::Missing("side"))?)
                .ok_or(ParseError::Invalid("side"))?;
            self.change(
                asset.ok_or(ParseError::Missing("asset_id"))?,
                side,
                price.ok_or(ParseError::Missing("price"))?,
                size.ok_or(ParseError::Missing("size"))?,
                ts,
                ctx,
            )?;
        }
        Ok(())
    }

    fn change(
        &mut self,
        asset: &[u8],
        side: Side,
        price: &[u8],
        size: &[u8],
        ts: i64,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), ParseError> {
        let stream = Stream::PriceChange as u8;
        let Some(id) = ctx.resolve(VENUE, stream, asset) else {
            return Ok(());
        };
        // Validated even when dropped below, so garbage is reported.
        let price = parse_e8(price).field("price")?;
        let size = parse_e8(size).field("size")?;
        if !on_grid(price) {
            return Err(ParseError::Invalid("price"));
        }
        if self.mode == SyncMode::Enforce && !self.is_synced(id) {
            ctx.counters.stream_mut(stream).dropped_unsynced += 1;
            return Ok(());
        }
        push_parsed(
            &mut self.scratch,
            VENUE,
            stream,
            id,
            side,
            price,
            size,
            ts,
            0,
        );
        Ok(())
    }
}

/// `""` (empty side) → 0.
fn opt_price(text: Option<&[u8]>, field: &'static str) -> Result<i64, ParseError> {
    match text {
        None | Some(b"") => Ok(0),
        Some(t) => parse_e8(t).field(field),
    }
}

fn operation(op: &str, asset_ids: &[&str]) -> Vec<u8> {
    let ids: Vec<String> = asset_ids.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "{{\"operation\":\"{op}\",\"assets_ids\":[{}],\"custom_feature_enabled\":true}}",
        ids.join(",")
    )
    .into_bytes()
}

#[derive(Default)]
struct Event<'a> {
    event_type: Option<&'a [u8]>,
    asset_id: Option<&'a [u8]>,
    timestamp: Option<&'a [u8]>,
    bids: Option<&'a [u8]>,
    asks: Option<&'a [u8]>,
    changes: Option<&'a [u8]>,
    price: Option<&'a [u8]>,
    size: Option<&'a [u8]>,
    side: Option<&'a [u8]>,
    best_bid: Option<&'a [u8]>,
    best_ask: Option<&'a [u8]>,
}

impl VenueAdapter for Polymarket {
    adapter_profile!(VENUE, STREAMS, ENDPOINT, KEEP_ALIVE);

    /// One channel (`market`): the selection does not change the request.
    fn subscribe_streams(&self, symbols: &[&str], _: &[&'static Selectable]) -> Vec<Outgoing> {
        let ids: Vec<String> = symbols.iter().map(|a| format!("\"{a}\"")).collect();
        vec![Outgoing::Text(
            format!(
                "{{\"type\":\"market\",\"assets_ids\":[{}],\"custom_feature_enabled\":true}}",
                ids.join(",")
            )
            .into_bytes(),
        )]
    }

    fn unsubscribe_streams(&self, symbols: &[&str], _: &[&'static Selectable]) -> Vec<Outgoing> {
        vec![Outgoing::Text(operation("unsubscribe", symbols))]
    }

    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
        let trimmed = frame.trim_ascii();
        if trimmed == b"PONG" || trimmed.is_empty() {
            ctx.count_message(0, frame.len());
            return Ok(());
        }
        let mut j = Lexer::new(trimmed);
        match j.kind()? {
            ValueKind::Array => {
                j.begin_array()?;
                let mut any = false;
                while j.next_element()? {
                    any = true;
                    let raw = j.raw_value()?;
                    self.event(raw, ctx)?;
                }
                j.end()?;
                if !any {
                    ctx.count_message(0, frame.len());
                }
                Ok(())
            }
            ValueKind::Object => self.event(trimmed, ctx),
            _ => Err(ParseError::Unknown),
        }
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        self.synced.clear();
        ctx.counters.stream_mut(Stream::Book as u8).reconnects += 1;
    }
}
