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
//! Lost updates: the adapter keeps each asset's book ([`PolyBook`]) and checks it two ways.
//! (1) Every `price_changes[]` entry carries the asset's `best_bid` / `best_ask` after the
//! change (an empty side is `"0"` for bids, `"1"` for asks; `""` states nothing); after a
//! frame's entries are
//! applied, each asset's local top must equal the last values the frame gave for it. (2) The
//! next `book` snapshot of an asset must equal the local book level for level. A mismatch is a
//! lost `price_change` even when it did not move the top: counted on the `price_change` stream
//! (`gaps` and `checksum_errors`); in [`SyncMode::Enforce`] (1) also emits `gap_detected` and
//! queues an unsubscribe + subscribe of the asset (a fresh `book`; the collector's
//! `PolyTopCheck` counts its arrival as the resync), while (2) resynchronises on the snapshot
//! itself (`resyncs` on `book`).
//!
//! `book.hash` is not verified: the algorithm (SHA-1 of the compact JSON
//! `{"market","asset_id","hash":"","bids","asks"}` with the levels' received text) reproduces
//! the 2024 recorded frame of the corpus, but not the 2026 live one, whose hash also covers
//! fields the WS frame does not carry (docs/notes/feeds.md §gap holes).
//!
//! Book prices must lie on the market crate's grid (a multiple of 0.0001 inside (0, 1), which
//! holds every tick): a level elsewhere fails the frame with `invalid value in field price`.
//! `tick_size_change` is parsed by the market crate ([`TickSizeChange`]) and remembered per
//! instrument ([`Polymarket::tick_of`]) and published as a `MarketParams` record stating the
//! tick only (source `tick_size_change`, `window_start_s` 0: consumers know the token's window).

use ringbolt_bus::{BookLevel, Record, Side, TopOfBook, Venue};
use ringbolt_bus::{FeedState, PRICE_SCALE};
use ringbolt_market::{MarketParams, ParamsError, PolyBook, Tick, TickSizeChange, on_grid};

use crate::adapter::{Action, Ctx, DecimalField, Outgoing, ParseError, Parsed, VenueAdapter};
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
    /// Each asset's book as this adapter applied it, for the lost-update checks.
    books: Vec<AssetBook>,
    /// Per asset of the current `price_change` frame: the last `best_bid` / `best_ask` it gave.
    tops: [FrameTop; MAX_FRAME_ASSETS],
    tops_len: usize,
    /// Snapshots applied so far (orders the books for reuse).
    snapshots: u64,
}

/// Assets checked per `price_change` frame (frames carry both tokens of one market).
const MAX_FRAME_ASSETS: usize = 8;
/// Local books kept (160 KiB each); the least recently snapshotted is reused beyond this (the
/// tokens of past windows).
const MAX_BOOKS: usize = 16;

#[derive(Clone, Copy, Debug, Default)]
struct FrameTop {
    instrument: u32,
    /// Best bid and ask stated by the venue (0 = empty side, `None` = not stated).
    bid: Option<i64>,
    ask: Option<i64>,
}

#[derive(Debug)]
struct AssetBook {
    instrument: u32,
    /// The asset id (for a resubscribe).
    asset: String,
    book: Box<PolyBook>,
    /// The book was built from a snapshot and every update since (checks apply).
    valid: bool,
    /// Snapshot counter value when this book last took a snapshot (for reuse).
    last_snapshot: u64,
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
            books: Vec::with_capacity(16),
            tops: [FrameTop::default(); MAX_FRAME_ASSETS],
            tops_len: 0,
            snapshots: 0,
        }
    }

    /// The local book of `instrument` (allocated on first sight: cold path).
    fn local(&mut self, instrument: u32, asset: &[u8]) -> &mut AssetBook {
        // Cold path below: first sight of an asset.
        let i = match self.books.iter().position(|b| b.instrument == instrument) {
            Some(i) => i,
            None if self.books.len() < MAX_BOOKS => {
                self.books.push(AssetBook {
                    instrument,
                    asset: String::from_utf8_lossy(asset).into_owned(),
                    book: Box::new(PolyBook::new()),
                    valid: false,
                    last_snapshot: 0,
                });
                self.books.len() - 1
            }
            None => {
                let mut i = 0;
                for (k, b) in self.books.iter().enumerate() {
                    if b.last_snapshot < self.books[i].last_snapshot {
                        i = k;
                    }
                }
                let b = &mut self.books[i];
                b.instrument = instrument;
                b.asset = String::from_utf8_lossy(asset).into_owned();
                b.valid = false;
                i
            }
        };
        &mut self.books[i]
    }

    /// Compares the snapshot in `scratch` with the local book of `id` (if valid), then makes
    /// it the local book. `true` when they differed: updates were lost.
    fn snapshot_differs(&mut self, id: u32, asset: &[u8]) -> bool {
        let scratch = core::mem::take(&mut self.scratch);
        self.snapshots += 1;
        let stamp = self.snapshots;
        let local = self.local(id, asset);
        let mut differs = false;
        if local.valid {
            let mut counts = [0usize; 2];
            for l in scratch.iter().filter_map(Record::body_as::<BookLevel>) {
                let side = Side::from_u8(l.side).unwrap_or(Side::None);
                counts[usize::from(side == Side::Sell)] += usize::from(l.size != 0);
                differs |= local.book.size_at(side, l.price) != l.size;
            }
            differs |= local.book.levels(Side::Buy).count() != counts[0]
                || local.book.levels(Side::Sell).count() != counts[1];
        }
        local.book.reset();
        local.valid = true;
        local.last_snapshot = stamp;
        for l in scratch.iter().filter_map(Record::body_as::<BookLevel>) {
            let side = Side::from_u8(l.side).unwrap_or(Side::None);
            local.valid &= local.book.apply(side, l.price, l.size).is_ok();
        }
        self.scratch = scratch;
        differs
    }

    /// Applies the `price_change` levels in `scratch` to the local books, then checks each
    /// frame asset's top against the venue's `best_bid` / `best_ask`; handles a mismatch.
    fn check_tops(&mut self, ctx: &mut Ctx<'_>) {
        for r in &self.scratch {
            let Some(l) = r.body_as::<BookLevel>() else {
                continue;
            };
            if let Some(b) = self.books.iter_mut().find(|b| b.instrument == r.instrument)
                && b.valid
            {
                let side = Side::from_u8(l.side).unwrap_or(Side::None);
                b.valid &= b.book.apply(side, l.price, l.size).is_ok();
            }
        }
        let tops = self.tops;
        for t in &tops[..self.tops_len] {
            let Some(b) = self.books.iter_mut().find(|b| b.instrument == t.instrument) else {
                continue;
            };
            if !b.valid {
                continue;
            }
            let bid = b.book.best_bid().map_or(0, |(p, _)| p);
            let ask = b.book.best_ask().map_or(0, |(p, _)| p);
            if t.bid.is_none_or(|v| v == bid) && t.ask.is_none_or(|v| v == ask) {
                continue;
            }
            b.valid = false;
            let asset = core::mem::take(&mut b.asset);
            self.lost_update(t.instrument, &asset, ctx);
            if let Some(b) = self.books.iter_mut().find(|b| b.instrument == t.instrument) {
                b.asset = asset;
            }
        }
        self.tops_len = 0;
    }

    /// A lost update on `instrument`: counted; when enforcing, `gap_detected` is published
    /// (the collector's `PolyTopCheck` then awaits the fresh book without counting the gap
    /// again, and counts its arrival as the resync) and the asset is resubscribed.
    fn lost_update(&mut self, instrument: u32, asset: &str, ctx: &mut Ctx<'_>) {
        let stream = Stream::PriceChange as u8;
        let c = ctx.counters.stream_mut(stream);
        c.gaps += 1;
        c.checksum_errors += 1;
        if self.mode != SyncMode::Enforce {
            return;
        }
        ctx.emit_status(VENUE, stream, instrument, FeedState::GapDetected);
        ctx.actions.push(Action::Resubscribe(vec![
            Outgoing::Text(operation("unsubscribe", &[asset])),
            Outgoing::Text(operation("subscribe", &[asset])),
        ]));
    }

    /// Remembers the venue's top after a `price_changes[]` entry of `instrument`.
    fn note_top(&mut self, instrument: u32, bid: Option<&[u8]>, ask: Option<&[u8]>) -> Parsed {
        // An empty side is stated as the bound 0 (bids) or 1 (asks), never a grid price; `""`
        // (or no field) states nothing.
        let stated = |t: Option<&[u8]>, f| match t {
            None | Some(b"") => Ok(None),
            Some(t) => parse_e8(t).field(f).map(Some),
        };
        let bid = stated(bid, "best_bid")?;
        let ask = stated(ask, "best_ask")?.map(|a| if a == PRICE_SCALE { 0 } else { a });
        if bid.is_none() && ask.is_none() {
            return Ok(());
        }
        let top = FrameTop {
            instrument,
            bid,
            ask,
        };
        match self.tops[..self.tops_len]
            .iter_mut()
            .find(|t| t.instrument == instrument)
        {
            Some(t) => *t = top,
            None if self.tops_len < MAX_FRAME_ASSETS => {
                self.tops[self.tops_len] = top;
                self.tops_len += 1;
            }
            None => {}
        }
        Ok(())
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
        let lost = self.snapshot_differs(id, asset);
        if lost {
            let c = ctx.counters.stream_mut(Stream::PriceChange as u8);
            c.gaps += 1;
            c.checksum_errors += 1;
        }
        flush_batch(
            ctx,
            &mut self.scratch,
            true,
            empty_snapshot(VENUE, stream, id, ts, 0),
        );
        if !self.is_synced(id) || lost {
            if !self.is_synced(id) {
                self.synced.push(id);
            }
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
                self.change(asset, side, price, size, ts, ctx).map(|_| ())
            }
        };
        if let Err(e) = result {
            self.scratch.clear();
            return Err(e);
        }
        self.check_tops(ctx);
        let empty = Record::zeroed();
        flush_batch(ctx, &mut self.scratch, false, empty);
        Ok(())
    }

    fn changes(&mut self, raw: &[u8], ts: i64, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
        self.tops_len = 0;
        let mut j = Lexer::new(raw);
        j.begin_array()?;
        while j.next_element()? {
            j.begin_object()?;
            let (mut asset, mut price, mut size, mut side) = (None, None, None, None);
            let (mut best_bid, mut best_ask) = (None, None);
            while let Some(key) = j.next_key()? {
                match key {
                    b"asset_id" => asset = Some(j.str()?),
                    b"price" => price = Some(j.scalar()?),
                    b"size" => size = Some(j.scalar()?),
                    b"side" => side = Some(j.str()?),
                    b"best_bid" => best_bid = Some(j.scalar()?),
                    b"best_ask" => best_ask = Some(j.scalar()?),
                    _ => j.skip_value()?,
                }
            }
            let side = side_of(side.ok_or(ParseError::Missing("side"))?)
                .ok_or(ParseError::Invalid("side"))?;
            let id = self.change(
                asset.ok_or(ParseError::Missing("asset_id"))?,
                side,
                price.ok_or(ParseError::Missing("price"))?,
                size.ok_or(ParseError::Missing("size"))?,
                ts,
                ctx,
            )?;
            if let Some(id) = id {
                self.note_top(id, best_bid, best_ask)?;
            }
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
    ) -> Result<Option<u32>, ParseError> {
        let stream = Stream::PriceChange as u8;
        let Some(id) = ctx.resolve(VENUE, stream, asset) else {
            return Ok(None);
        };
        // Validated even when dropped below, so garbage is reported.
        let price = parse_e8(price).field("price")?;
        let size = parse_e8(size).field("size")?;
        if !on_grid(price) {
            return Err(ParseError::Invalid("price"));
        }
        if self.mode == SyncMode::Enforce && !self.is_synced(id) {
            ctx.counters.stream_mut(stream).dropped_unsynced += 1;
            return Ok(None);
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
        Ok(Some(id))
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

    fn forget_instrument(&mut self, id: u32) {
        self.synced.retain(|&i| i != id);
        self.ticks.retain(|&(i, _)| i != id);
    }

    fn instrument_state_len(&self) -> usize {
        self.synced.len() + self.ticks.len()
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        self.synced.clear();
        for b in &mut self.books {
            b.valid = false;
        }
        ctx.counters.stream_mut(Stream::Book as u8).reconnects += 1;
    }
}

#[cfg(test)]
mod lost_update_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::FrameDriver;
    use ringbolt_bus::{FeedStatusBody, RecordKind};

    const A: &str = "71321045679252212594626385532706912750332728571942532289631379312455583992563";
    const B: &str = "52114319501245915516055106046884209969926127482827954674443846427813813222426";

    fn book(asset: &str, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> String {
        let side = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(p, s)| format!(r#"{{"price":"{p}","size":"{s}"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            r#"{{"event_type":"book","asset_id":"{asset}","market":"0x5f65","bids":[{}],"asks":[{}],"timestamp":"1757908892351","hash":"0"}}"#,
            side(bids),
            side(asks)
        )
    }

    /// One `price_change` frame: `(asset, side, price, size, best_bid, best_ask)` entries.
    fn change(entries: &[(&str, &str, &str, &str, &str, &str)]) -> String {
        let e: Vec<String> = entries
            .iter()
            .map(|(a, side, p, s, bb, ba)| {
                format!(
                    r#"{{"asset_id":"{a}","price":"{p}","size":"{s}","side":"{side}","hash":"x","best_bid":"{bb}","best_ask":"{ba}"}}"#
                )
            })
            .collect();
        format!(
            r#"{{"event_type":"price_change","market":"0x5f65","price_changes":[{}],"timestamp":"1757908892352"}}"#,
            e.join(",")
        )
    }

    const BIDS: &[(&str, &str)] = &[("0.47", "10"), ("0.48", "20"), ("0.49", "30")];
    const ASKS: &[(&str, &str)] = &[("0.52", "10"), ("0.51", "40")];

    fn pc(d: &FrameDriver) -> crate::StreamCounters {
        d.counters.stream(Stream::PriceChange as u8)
    }

    #[test]
    fn a_lost_change_that_left_the_top_wrong_resubscribes_the_asset() {
        let mut d = FrameDriver::new(VENUE, SyncMode::Enforce, true).unwrap();
        let mut out = Vec::new();
        d.frame(book(A, BIDS, ASKS).as_bytes(), 1, &mut out)
            .unwrap();
        // Applied in order, both tokens in one frame, the top agrees.
        let ok = change(&[
            (A, "BUY", "0.46", "5", "0.49", "0.51"),
            (B, "SELL", "0.54", "5", "", ""),
        ]);
        d.frame(ok.as_bytes(), 1, &mut out).unwrap();
        assert_eq!((pc(&d).gaps, pc(&d).checksum_errors), (0, 0));
        // The venue removed 0.49 (lost here): its next change states best_bid 0.48.
        out.clear();
        let after_loss = change(&[(A, "SELL", "0.53", "5", "0.48", "0.51")]);
        d.frame(after_loss.as_bytes(), 1, &mut out).unwrap();
        assert_eq!((pc(&d).gaps, pc(&d).checksum_errors), (1, 1));
        let status = out
            .iter()
            .find(|r| r.kind == RecordKind::FeedStatus as u8)
            .unwrap();
        assert_eq!(
            status.body_as::<FeedStatusBody>().unwrap().state,
            FeedState::GapDetected as u8
        );
        let Some(Action::Resubscribe(frames)) = d.actions.pop() else {
            panic!("no resubscribe: {:?}", d.actions);
        };
        assert_eq!(frames[1], Outgoing::Text(operation("subscribe", &[A])));
        // Until the fresh book the asset's book is not judged again (no second gap).
        d.frame(after_loss.as_bytes(), 1, &mut out).unwrap();
        assert_eq!(pc(&d).gaps, 1);
        assert!(d.actions.is_empty());
        // The fresh book is taken as is (not compared with the known-bad one), then checked.
        d.frame(book(A, &BIDS[..2], ASKS).as_bytes(), 1, &mut out)
            .unwrap();
        d.frame(after_loss.as_bytes(), 1, &mut out).unwrap();
        assert_eq!(pc(&d).gaps, 1);
        let wrong = change(&[(A, "SELL", "0.53", "0", "0.49", "0.51")]);
        d.frame(wrong.as_bytes(), 1, &mut out).unwrap();
        assert_eq!(pc(&d).gaps, 2);
    }

    #[test]
    fn a_lost_change_below_the_top_is_caught_by_the_next_snapshot() {
        for mode in [SyncMode::Enforce, SyncMode::Observe] {
            let mut d = FrameDriver::new(VENUE, mode, true).unwrap();
            let mut out = Vec::new();
            d.frame(book(A, BIDS, ASKS).as_bytes(), 1, &mut out)
                .unwrap();
            // Identical snapshot: nothing lost.
            d.frame(book(A, BIDS, ASKS).as_bytes(), 1, &mut out)
                .unwrap();
            assert_eq!(pc(&d).gaps, 0, "{mode:?}");
            // 0.47 changed to 15 at the venue (lost here; the top did not move).
            let venue_bids = [("0.47", "15"), ("0.48", "20"), ("0.49", "30")];
            let resyncs = d.counters.stream(Stream::Book as u8).resyncs;
            d.frame(book(A, &venue_bids, ASKS).as_bytes(), 1, &mut out)
                .unwrap();
            assert_eq!((pc(&d).gaps, pc(&d).checksum_errors), (1, 1), "{mode:?}");
            assert_eq!(
                d.counters.stream(Stream::Book as u8).resyncs,
                resyncs + 1,
                "{mode:?}"
            );
            // A level missing from the local book is caught too.
            let more = [
                ("0.45", "1"),
                ("0.47", "15"),
                ("0.48", "20"),
                ("0.49", "30"),
            ];
            d.frame(book(A, &more, ASKS).as_bytes(), 1, &mut out)
                .unwrap();
            assert_eq!(pc(&d).gaps, 2, "{mode:?}");
        }
    }

    #[test]
    fn empty_sides_are_stated_as_zero_or_one_and_blank_states_nothing() {
        let mut d = FrameDriver::new(VENUE, SyncMode::Enforce, true).unwrap();
        let mut out = Vec::new();
        d.frame(book(A, &[("0.29", "5")], &[]).as_bytes(), 1, &mut out)
            .unwrap();
        // The last bid goes; the venue states the empty sides as 0 and 1.
        for (bb, ba) in [("0", "1"), ("", ""), ("", "1")] {
            let frame = change(&[(A, "BUY", "0.29", "0", bb, ba)]);
            d.frame(frame.as_bytes(), 1, &mut out).unwrap();
        }
        assert_eq!(pc(&d).gaps, 0);
        assert!(d.actions.is_empty());
        // A stated bid where the book has none is a gap even with the ask left blank.
        let frame = change(&[(A, "SELL", "0.70", "1", "0.28", "")]);
        d.frame(frame.as_bytes(), 1, &mut out).unwrap();
        assert_eq!(pc(&d).gaps, 1);
    }
}
