//! Bitstamp WebSocket v2 (`wss://ws.bitstamp.net`) and REST order book for BTC/USD:
//! `bts:subscribe` / `bts:unsubscribe` to `live_trades_btcusd`, `diff_order_book_btcusd` and
//! `order_book_btcusd` answered by `bts:subscription_succeeded` / `bts:unsubscription_succeeded`
//! (`bts:error` for anything else), the client heartbeat `bts:heartbeat`, the server's
//! `bts:request_reconnect`, and `GET /api/v2/order_book/btcusd/` (full book with the
//! `microtimestamp` of the last diff applied to it).
//!
//! Frames carry `timestamp` (s) and `microtimestamp` (µs) as strings; trades carry the
//! binary-noisy floats next to their exact `*_str` texts, as the venue does. There is no sequence
//! number: diffs are ordered by `microtimestamp` only, so no event is `sequenced` (a lost diff is
//! invisible to any client; the REST snapshot after a reconnect heals the book).

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::hub::Hub;
use crate::ladder::Side;
use crate::session::{Fault, OpenError};
use crate::spot::{SpotBook, SpotVenue};
use crate::util::fixed;
use crate::venue::{VenueSession, check_route};

/// The only pair served.
pub const PAIR: &str = "btcusd";
/// Channels served (prefix + `_btcusd`).
pub const CHANNELS: [&str; 3] = ["live_trades", "diff_order_book", "order_book"];
/// Bitstamp's observation lag of the true price, ms.
pub const LAG_MS: i64 = 200;
/// `order_book` pushes at most this often, ms.
pub const ORDER_BOOK_MS: i64 = 1_000;
/// Levels per side in `order_book` pushes.
const TOP_LEVELS: usize = 100;

#[derive(Serialize)]
struct Envelope<'a, D: Serialize> {
    data: D,
    channel: &'a str,
    event: &'static str,
}

#[derive(Serialize)]
struct BookData {
    timestamp: String,
    microtimestamp: String,
    bids: Vec<[String; 2]>,
    asks: Vec<[String; 2]>,
}

#[derive(Serialize)]
struct TradeData {
    id: u64,
    timestamp: String,
    amount: f64,
    amount_str: String,
    price: f64,
    price_str: String,
    #[serde(rename = "type")]
    kind: u8,
    microtimestamp: String,
    buy_order_id: u64,
    sell_order_id: u64,
}

fn level(p: i64, q: i64) -> [String; 2] {
    [fixed(p, 2), fixed(q, 8)]
}

fn book_data(micro: i64, bids: &[(i64, i64)], asks: &[(i64, i64)]) -> BookData {
    BookData {
        timestamp: micro.div_euclid(1_000_000).to_string(),
        microtimestamp: micro.to_string(),
        bids: bids.iter().map(|(p, q)| level(*p, *q)).collect(),
        asks: asks.iter().map(|(p, q)| level(*p, *q)).collect(),
    }
}

/// Bitstamp BTC/USD venue state.
#[derive(Debug)]
pub struct BitstampState {
    book: SpotBook,
    next_trade_id: u64,
    next_order_id: u64,
    /// `microtimestamp` of the last diff (the REST snapshot's).
    last_micro: i64,
    last_order_book_ms: Option<i64>,
}

impl SpotVenue for BitstampState {
    const LAG_MS: i64 = LAG_MS;
    const RNG_STREAM: u64 = 41;

    /// Fresh state.
    fn new(rng: &mut ChaCha8Rng) -> Self {
        Self {
            book: SpotBook::default(),
            next_trade_id: 380_000_000 + rng.random_range(0..10_000_000),
            next_order_id: 1_900_000_000_000_000 + rng.random_range(0..1_000_000_000_000),
            last_micro: 0,
            last_order_book_ms: None,
        }
    }

    /// One market step around `mid_usd`.
    fn step(
        &mut self,
        t_ms: i64,
        tick: u64,
        mid_usd: f64,
        trade_prob: f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<VenueEvent> {
        let mut events = Vec::new();
        let out = self.book.step(mid_usd, trade_prob, rng);
        let micro = (t_ms * 1000 + rng.random_range(0..1000)).max(self.last_micro + 1);
        if let Some(p) = out.print {
            self.next_trade_id += 1;
            self.next_order_id += rng.random_range(1..5_000);
            let resting = self.next_order_id - rng.random_range(1_000..1_000_000);
            let (buy, sell) = if p.taker_buys {
                (self.next_order_id, resting)
            } else {
                (resting, self.next_order_id)
            };
            let d = TradeData {
                id: self.next_trade_id,
                timestamp: micro.div_euclid(1_000_000).to_string(),
                amount: p.size_e8 as f64 / 1e8,
                amount_str: fixed(p.size_e8, 8),
                price: p.price_cents as f64 / 100.0,
                price_str: fixed(p.price_cents, 2),
                kind: u8::from(!p.taker_buys),
                microtimestamp: micro.to_string(),
                buy_order_id: buy,
                sell_order_id: sell,
            };
            events.push(event(tick, "live_trades", "trade", d));
        }
        if !out.changes.is_empty() {
            let side = |s: Side| -> Vec<(i64, i64)> {
                out.changes
                    .iter()
                    .filter(|c| c.side == s)
                    .map(|c| (c.price, c.qty))
                    .collect()
            };
            let d = book_data(micro, &side(Side::Bid), &side(Side::Ask));
            events.push(event(tick, "diff_order_book", "data", d));
            self.last_micro = micro;
        }
        if self
            .last_order_book_ms
            .is_none_or(|last| t_ms - last >= ORDER_BOOK_MS)
        {
            self.last_order_book_ms = Some(t_ms);
            let (mut bids, mut asks) = self.book.sides();
            bids.truncate(TOP_LEVELS);
            asks.truncate(TOP_LEVELS);
            let d = book_data(self.last_micro.max(micro), &bids, &asks);
            events.push(event(tick, "order_book", "data", d));
        }
        events
    }

    fn rest(&self, path: &str) -> Option<(u16, String)> {
        is_order_book_path(path).then(|| (200, self.rest_snapshot()))
    }
}

impl BitstampState {
    /// `GET /api/v2/order_book/btcusd/`: the whole book as of the last diff.
    pub fn rest_snapshot(&self) -> String {
        let (bids, asks) = self.book.sides();
        serde_json::to_string(&book_data(self.last_micro, &bids, &asks)).unwrap_or_default()
    }
}

fn event<D: Serialize>(
    tick: u64,
    channel: &'static str,
    kind: &'static str,
    data: D,
) -> VenueEvent {
    let name = format!("{channel}_{PAIR}");
    let text = serde_json::to_string(&Envelope {
        data,
        channel: &name,
        event: kind,
    })
    .unwrap_or_default();
    VenueEvent {
        venue: VenueId::Bitstamp,
        tick,
        topic: Topic::Stream(channel),
        sequenced: false,
        text: Arc::from(text),
    }
}

/// The REST path of the order book of [`PAIR`] (with or without the trailing slash).
pub fn is_order_book_path(path: &str) -> bool {
    path.trim_end_matches('/') == "/api/v2/order_book/btcusd"
}

#[derive(Deserialize)]
struct Request {
    event: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

fn control(event: &str, channel: &str, data: serde_json::Value) -> Out {
    Out::Text(serde_json::json!({"event": event, "channel": channel, "data": data}).to_string())
}

fn bts_error(message: &str) -> Out {
    control(
        "bts:error",
        "",
        serde_json::json!({"code": null, "message": message}),
    )
}

/// A Bitstamp WebSocket v2 session.
#[derive(Debug, Default)]
pub struct BitstampSession {
    /// channel prefix → tick of its subscription.
    subs: BTreeMap<&'static str, u64>,
}

impl BitstampSession {
    /// Whether any channel is subscribed.
    pub fn has_subscription(&self) -> bool {
        !self.subs.is_empty()
    }

    /// Handle a client text frame.
    pub fn on_text(&mut self, text: &str, tick: u64) -> Vec<Out> {
        let Ok(req) = serde_json::from_str::<Request>(text) else {
            return vec![bts_error("Bad request. Check the message format.")];
        };
        let channel = req
            .data
            .as_ref()
            .and_then(|d| d.get("channel"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let subscribe = match req.event.as_str() {
            "bts:heartbeat" => {
                return vec![control(
                    "bts:heartbeat",
                    "",
                    serde_json::json!({"status": "success"}),
                )];
            }
            "bts:subscribe" => true,
            "bts:unsubscribe" => false,
            _ => return vec![bts_error("Bad request. Unknown event.")],
        };
        let prefix = channel
            .strip_suffix(PAIR)
            .and_then(|p| p.strip_suffix('_'))
            .and_then(|p| CHANNELS.iter().find(|c| **c == p));
        let Some(prefix) = prefix else {
            return vec![bts_error("Bad subscription string.")];
        };
        let reply = if subscribe {
            self.subs.insert(prefix, tick);
            "bts:subscription_succeeded"
        } else {
            self.subs.remove(prefix);
            "bts:unsubscription_succeeded"
        };
        vec![control(reply, channel, serde_json::json!({}))]
    }

    /// Filter a market event.
    pub fn on_event(&self, ev: &VenueEvent) -> Option<String> {
        match &ev.topic {
            Topic::Stream(ch) => match self.subs.get(ch) {
                Some(since) if ev.tick > *since => Some(ev.text.to_string()),
                _ => None,
            },
            Topic::Replay => self.has_subscription().then(|| ev.text.to_string()),
            _ => None,
        }
    }

    /// The frame with which the venue asks clients to reconnect (maintenance).
    pub fn request_reconnect() -> Out {
        control("bts:request_reconnect", "", serde_json::json!(""))
    }
}

/// The registry's session factory (`/`).
pub fn open(path: &str, _conn_no: u64) -> Result<(Box<dyn VenueSession>, Vec<Out>), OpenError> {
    check_route(VenueId::Bitstamp, path, &["", "/"])?;
    Ok((Box::new(BitstampSession::default()), Vec::new()))
}

impl VenueSession for BitstampSession {
    fn on_text(&mut self, text: &str, hub: &Hub) -> Vec<Out> {
        BitstampSession::on_text(self, text, hub.tick())
    }

    fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        BitstampSession::on_event(self, ev)
    }

    fn venue_fault(&mut self, fault: Fault) -> Vec<Out> {
        match fault {
            Fault::RequestReconnect => vec![Self::request_reconnect()],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::stream_rng;
    use crate::spot::test_util::{Book, apply, feed, venue_book};
    use ringbolt_bus::{Trade, Venue};
    use ringbolt_feeds::{Action, FrameDriver, SyncMode};

    #[test]
    fn diffs_and_the_rest_snapshot_rebuild_the_venue_book_in_ringbolts_adapter() {
        let mut rng = stream_rng(4, 21);
        let mut st = BitstampState::new(&mut rng);
        for k in 0..30 {
            st.step(k * 100, k as u64, 97_000.0, 0.5, &mut rng);
        }
        let mut s = BitstampSession::default();
        let mut d = FrameDriver::new(Venue::Bitstamp, SyncMode::Enforce, true).unwrap();
        for ch in ["live_trades_btcusd", "diff_order_book_btcusd"] {
            let out = s.on_text(
                &format!(r#"{{"event":"bts:subscribe","data":{{"channel":"{ch}"}}}}"#),
                29,
            );
            let Out::Text(t) = &out[0] else { panic!() };
            assert_eq!(
                t,
                &format!(
                    r#"{{"channel":"{ch}","data":{{}},"event":"bts:subscription_succeeded"}}"#
                )
            );
            assert!(feed(&mut d, t).is_empty());
        }
        // Diffs before the REST snapshot are buffered; the adapter asks for the snapshot.
        let mut book = Book::new();
        let (mut trades, mut last_id, mut snapshot_at) = (0, 0, None);
        for k in 30..130 {
            for ev in st.step(k * 100, k as u64, 97_000.0 + k as f64, 0.5, &mut rng) {
                let Some(text) = s.on_event(&ev) else {
                    continue;
                };
                let recs = feed(&mut d, &text);
                for r in &recs {
                    if let Some(t) = r.body_as::<Trade>() {
                        assert!(t.trade_id == last_id + 1 || last_id == 0);
                        last_id = t.trade_id;
                        trades += 1;
                    }
                }
                apply(&mut book, &recs);
            }
            if k == 35 {
                let fetch = d.actions.drain(..).find_map(|a| match a {
                    Action::Fetch(r) => Some(r),
                    _ => None,
                });
                let req = fetch.expect("a REST snapshot request");
                assert!(is_order_book_path(&req.path), "{}", req.path);
                snapshot_at = Some((req, st.rest_snapshot()));
            }
            if k == 40 {
                let (req, body) = snapshot_at.take().unwrap();
                let mut out = Vec::new();
                d.rest(&req, body.as_bytes(), 1, &mut out).unwrap();
                apply(&mut book, &out);
            }
        }
        assert!(trades > 20, "{trades}");
        assert_eq!(book, venue_book(&st.book));
        let c = d.counters.total();
        assert_eq!((c.parse_errors, c.resyncs), (0, 1));
        assert!(
            c.dropped_unsynced > 0,
            "diffs older than the snapshot dropped"
        );
        // Control frames in the venue's shapes, all understood by the adapter.
        let hb = s.on_text(r#"{"event":"bts:heartbeat"}"#, 0);
        let err = s.on_text(
            r#"{"event":"bts:subscribe","data":{"channel":"nope_btcusd"}}"#,
            0,
        );
        for out in [&hb[0], &err[0], &BitstampSession::request_reconnect()] {
            let Out::Text(t) = out else { panic!() };
            assert!(feed(&mut d, t).is_empty(), "{t}");
        }
        assert!(matches!(&err[0], Out::Text(t) if t.contains("bts:error")));
        assert_eq!(d.actions.last(), Some(&Action::Reconnect));
    }
}
