//! Bitstamp WebSocket v2 (`wss://ws.bitstamp.net`).
//!
//! Frames are `{"event":…,"channel":"<name>_<pair>","data":{…}}`. Channels: `live_trades_*` →
//! Trade (`type` 0 = buy taker, 1 = sell taker; `amount_str`/`price_str` are parsed, never the
//! binary-noisy floats beside them), `diff_order_book_*` → BookLevel batches, `order_book_*` →
//! a full top-100 snapshot each push (self-healing, its own stream), `live_orders_*` counted.
//! `bts:request_reconnect` queues [`Action::Reconnect`]; subscription acks are counted. The REST
//! snapshot `GET /api/v2/order_book/<pair>/` is consumed by [`VenueAdapter::on_rest`].
//!
//! Continuity (`diff_order_book`): no sequence, only `microtimestamp`. In [`SyncMode::Enforce`]
//! diffs are buffered until the REST snapshot (requested with [`Action::Fetch`]) arrives; diffs
//! with `microtimestamp` ≤ the snapshot's are dropped, the rest replayed.

use ringbolt_bus::{Record, Side, Venue};

use crate::adapter::{
    Action, Ctx, DecimalField, Outgoing, ParseError, Parsed, RestKind, RestRequest, VenueAdapter,
};
use crate::continuity::SyncMode;
use crate::decimal::parse_u64;
use crate::json::Lexer;
use crate::time::us_text_ns;
use crate::venues::streams::{Selectable, channels_for};
use crate::venues::{collect_pairs, empty_snapshot, flush_batch, opt_ts, req_e8, trade};

const VENUE: Venue = Venue::Bitstamp;
const BUFFER_RECORDS: usize = 8192;

pub use super::streams::bitstamp::{ENDPOINT, KEEP_ALIVE, STREAMS, Stream};

#[derive(Debug)]
struct DiffBook {
    instrument: u32,
    pair: String,
    synced_us: Option<u64>,
    fetching: bool,
    records: Vec<Record>,
    /// (microtimestamp, start, end) per buffered diff.
    events: Vec<(u64, usize, usize)>,
}

/// The Bitstamp adapter.
#[derive(Debug)]
pub struct Bitstamp {
    mode: SyncMode,
    books: Vec<DiffBook>,
    last_diff: Option<u32>,
    scratch: Vec<Record>,
}

json_fields! {
    struct Data {
        micro: scalar <- b"microtimestamp",
        bids: raw <- b"bids",
        asks: raw <- b"asks",
        amount: scalar <- b"amount_str",
        price: scalar <- b"price_str",
        id: scalar <- b"id",
        kind: scalar <- b"type",
    }
}

fn data(raw: &[u8]) -> Result<Data<'_>, ParseError> {
    let mut j = Lexer::new(raw);
    if j.peek() != Some(b'{') {
        // `"data":""` on control events.
        j.skip_value()?;
        return Ok(Data::default());
    }
    Data::read(&mut j)
}

impl Bitstamp {
    /// A new adapter.
    #[must_use]
    pub fn new(mode: SyncMode) -> Self {
        Bitstamp {
            mode,
            books: Vec::new(),
            last_diff: None,
            scratch: Vec::with_capacity(BUFFER_RECORDS),
        }
    }

    fn levels(&mut self, d: &Data<'_>, stream: u8, id: u32, ts: i64, seq: u64) -> Parsed {
        collect_pairs(
            &mut self.scratch,
            VENUE,
            stream,
            id,
            [(d.bids, Side::Buy), (d.asks, Side::Sell)],
            ts,
            seq,
        )?;
        Ok(())
    }

    /// Emits `d`'s levels as one snapshot batch of `stream`.
    fn snapshot_batch(
        &mut self,
        d: &Data<'_>,
        stream: u8,
        id: u32,
        ts: i64,
        micro: u64,
        ctx: &mut Ctx<'_>,
    ) -> Parsed {
        self.levels(d, stream, id, ts, micro)?;
        let empty = empty_snapshot(VENUE, stream, id, ts, micro);
        flush_batch(ctx, &mut self.scratch, true, empty);
        Ok(())
    }

    fn book(&mut self, id: u32, pair: &[u8]) -> usize {
        if let Some(i) = self.books.iter().position(|b| b.instrument == id) {
            return i;
        }
        self.books.push(DiffBook {
            instrument: id,
            pair: String::from_utf8_lossy(pair).into_owned(),
            synced_us: None,
            fetching: false,
            records: Vec::with_capacity(BUFFER_RECORDS),
            events: Vec::with_capacity(256),
        });
        self.books.len() - 1
    }

    fn diff(&mut self, pair: &[u8], d: &Data<'_>, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::DiffOrderBook as u8;
        let micro = parse_u64(d.micro.ok_or(ParseError::Missing("microtimestamp"))?)
            .field("microtimestamp")?;
        let ts = us_text_ns(d.micro.unwrap_or(b"0")).field("microtimestamp")?;
        let Some(id) = ctx.resolve(VENUE, stream, pair) else {
            return Ok(());
        };
        self.last_diff = Some(id);
        self.levels(d, stream, id, ts, micro)?;
        let bi = self.book(id, pair);
        let book = &mut self.books[bi];
        if self.mode == SyncMode::Observe {
            flush_batch(ctx, &mut self.scratch, false, Record::zeroed());
            return Ok(());
        }
        match book.synced_us {
            Some(snap) if micro <= snap => {
                ctx.counters.stream_mut(stream).dropped_unsynced += 1;
                self.scratch.clear();
            }
            Some(_) => flush_batch(ctx, &mut self.scratch, false, Record::zeroed()),
            None => {
                if book.records.len() + self.scratch.len() <= BUFFER_RECORDS {
                    let start = book.records.len();
                    book.records.extend_from_slice(&self.scratch);
                    book.events.push((micro, start, book.records.len()));
                } else {
                    ctx.counters.stream_mut(stream).dropped_unsynced += 1;
                }
                self.scratch.clear();
                if !book.fetching {
                    book.fetching = true;
                    ctx.actions.push(Action::Fetch(RestRequest {
                        host: "www.bitstamp.net",
                        path: format!("/api/v2/order_book/{}/", book.pair),
                        kind: RestKind::BookSnapshot,
                        instrument: id,
                    }));
                }
            }
        }
        Ok(())
    }

    fn snapshot(&mut self, body: &[u8], id: u32, ctx: &mut Ctx<'_>) -> Parsed {
        let stream = Stream::OrderBookRest as u8;
        let d = data(body)?;
        let micro = parse_u64(d.micro.ok_or(ParseError::Missing("microtimestamp"))?)
            .field("microtimestamp")?;
        let ts = us_text_ns(d.micro.unwrap_or(b"0")).field("microtimestamp")?;
        self.snapshot_batch(&d, stream, id, ts, micro, ctx)?;
        if self.mode == SyncMode::Observe {
            return Ok(());
        }
        let bi = self.book(id, b"");
        let book = &mut self.books[bi];
        book.synced_us = Some(micro);
        book.fetching = false;
        ctx.counters.stream_mut(Stream::DiffOrderBook as u8).resyncs += 1;
        for &(m, start, end) in &book.events {
            if m <= micro {
                ctx.counters
                    .stream_mut(Stream::DiffOrderBook as u8)
                    .dropped_unsynced += 1;
                continue;
            }
            self.scratch.extend_from_slice(&book.records[start..end]);
            flush_batch(ctx, &mut self.scratch, false, Record::zeroed());
        }
        book.events.clear();
        book.records.clear();
        Ok(())
    }
}

json_fields! {
    /// A frame's envelope (`microtimestamp` at the top level: a bare REST snapshot).
    struct Envelope {
        event: str <- b"event",
        channel: str <- b"channel",
        raw: raw <- b"data",
        micro: seen <- b"microtimestamp",
    }
}

impl VenueAdapter for Bitstamp {
    adapter_profile!(VENUE, STREAMS, ENDPOINT, KEEP_ALIVE);

    subscriptions!(subs, "bts:subscribe", "bts:unsubscribe");

    fn on_frame(&mut self, frame: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        let Envelope {
            event,
            channel,
            raw,
            micro,
        } = Envelope::parse_exact(frame)?;
        if micro.is_some() && event.is_none() {
            // A REST snapshot body in a capture: it belongs to the last diff instrument.
            let stream = Stream::OrderBookRest as u8;
            ctx.count_message(stream, frame.len());
            let id = self.last_diff.ok_or(ParseError::Missing(
                "pair (a bare REST snapshot goes through on_rest with its instrument)",
            ))?;
            return self.snapshot(frame, id, ctx);
        }
        let event = event.ok_or(ParseError::Missing("event"))?;
        if event.starts_with(b"bts:") {
            ctx.count_message(0, frame.len());
            if event == b"bts:request_reconnect" {
                ctx.actions.push(Action::Reconnect);
            }
            return Ok(());
        }
        let channel = channel.ok_or(ParseError::Missing("channel"))?;
        let d = data(raw.ok_or(ParseError::Missing("data"))?)?;
        let split = |prefix: &[u8]| channel.strip_prefix(prefix);
        if let Some(pair) = split(b"live_trades_") {
            let stream = Stream::LiveTrades as u8;
            ctx.count_message(stream, frame.len());
            let id_num = parse_u64(d.id.ok_or(ParseError::Missing("id"))?).field("id")?;
            let side = match d.kind {
                Some(b"0") => Side::Buy,
                Some(b"1") => Side::Sell,
                _ => return Err(ParseError::Invalid("type")),
            };
            let body = trade(
                req_e8(d.price, "price_str")?,
                req_e8(d.amount, "amount_str")?,
                id_num,
                side,
            );
            let ts = opt_ts(d.micro, us_text_ns, "microtimestamp")?;
            if let Some(id) = ctx.resolve(VENUE, stream, pair) {
                ctx.emit_body(VENUE, stream, id, ts, id_num, 0, &body);
            }
            Ok(())
        } else if let Some(pair) = split(b"diff_order_book_") {
            ctx.count_message(Stream::DiffOrderBook as u8, frame.len());
            self.diff(pair, &d, ctx)
        } else if let Some(pair) = split(b"order_book_") {
            let stream = Stream::OrderBook as u8;
            ctx.count_message(stream, frame.len());
            let micro = parse_u64(d.micro.ok_or(ParseError::Missing("microtimestamp"))?)
                .field("microtimestamp")?;
            let ts = us_text_ns(d.micro.unwrap_or(b"0")).field("microtimestamp")?;
            let Some(id) = ctx.resolve(VENUE, stream, pair) else {
                return Ok(());
            };
            self.snapshot_batch(&d, stream, id, ts, micro, ctx)?;
            Ok(())
        } else if channel.starts_with(b"live_orders_") {
            ctx.count_message(Stream::LiveOrders as u8, frame.len());
            Ok(())
        } else {
            Err(ParseError::Unknown)
        }
    }

    fn on_rest(&mut self, request: &RestRequest, body: &[u8], ctx: &mut Ctx<'_>) -> Parsed {
        ctx.count_message(Stream::OrderBookRest as u8, body.len());
        self.snapshot(body, request.instrument, ctx)
    }

    fn on_reconnect(&mut self, ctx: &mut Ctx<'_>) {
        for b in &mut self.books {
            b.synced_us = None;
            b.fetching = false;
            b.records.clear();
            b.events.clear();
        }
        ctx.counters
            .stream_mut(Stream::DiffOrderBook as u8)
            .reconnects += 1;
    }
}

fn subs(event: &str, symbols: &[&str], streams: &[&'static Selectable]) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for s in symbols {
        for ch in channels_for(streams, s) {
            out.push(Outgoing::Text(
                format!("{{\"event\":\"{event}\",\"data\":{{\"channel\":\"{ch}_{s}\"}}}}")
                    .into_bytes(),
            ));
        }
    }
    out
}
