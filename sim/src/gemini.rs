//! Gemini market data v2 (`wss://api.gemini.com/v2/marketdata`) for BTCUSD: the
//! `{"type":"subscribe","subscriptions":[{"name":"l2","symbols":[…]}]}` handshake, the first
//! `l2_updates` per symbol as the full book with the last 50 `trades` and `auction_events`,
//! then `l2_updates` deltas (absolute quantities, "0" deletes), `trade` events (taker side,
//! `event_id` increasing but not contiguous) and a `heartbeat` every 5 s. Errors use Gemini's
//! `{"result":"error","reason":…,"message":…}` shape.
//!
//! v2 carries no sequence numbers: a lost delta cannot be seen by any client, so no event is
//! `sequenced` (a `gap` fault has nothing it could drop detectably); a client recovers by
//! reconnecting, which yields a fresh snapshot.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::hub::Hub;
use crate::ladder::Side;
use crate::session::OpenError;
use crate::spot::{SpotBook, SpotVenue};
use crate::util::fixed;
use crate::venue::{VenueSession, check_route};

/// The only symbol served.
pub const SYMBOL: &str = "BTCUSD";
/// Gemini's observation lag of the true price, ms.
pub const LAG_MS: i64 = 150;
/// Heartbeat period, ms.
pub const HEARTBEAT_MS: i64 = 5_000;
/// Trades embedded in the snapshot.
const SNAPSHOT_TRADES: usize = 50;

#[derive(Serialize, Clone)]
struct TradeMsg {
    #[serde(rename = "type")]
    kind: &'static str,
    symbol: &'static str,
    event_id: u64,
    timestamp: i64,
    price: String,
    quantity: String,
    side: &'static str,
}

#[derive(Serialize)]
struct L2Updates<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    symbol: &'static str,
    changes: Vec<[String; 3]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trades: Option<Vec<&'a TradeMsg>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auction_events: Option<[(); 0]>,
}

#[derive(Serialize)]
struct Heartbeat {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: i64,
}

fn change(side: Side, price_cents: i64, qty_e8: i64) -> [String; 3] {
    let s = if side == Side::Bid { "buy" } else { "sell" };
    [s.to_string(), fixed(price_cents, 2), fixed(qty_e8, 8)]
}

/// Gemini BTCUSD venue state.
#[derive(Debug)]
pub struct GeminiState {
    book: SpotBook,
    next_event_id: u64,
    trades: VecDeque<TradeMsgText>,
    last_heartbeat_ms: Option<i64>,
}

/// A trade kept for the snapshot (the message's fields).
#[derive(Debug, Clone)]
struct TradeMsgText {
    event_id: u64,
    timestamp: i64,
    price_cents: i64,
    qty_e8: i64,
    side: &'static str,
}

impl TradeMsgText {
    fn msg(&self) -> TradeMsg {
        TradeMsg {
            kind: "trade",
            symbol: SYMBOL,
            event_id: self.event_id,
            timestamp: self.timestamp,
            price: fixed(self.price_cents, 2),
            quantity: fixed(self.qty_e8, 8),
            side: self.side,
        }
    }
}

impl SpotVenue for GeminiState {
    const LAG_MS: i64 = LAG_MS;
    const RNG_STREAM: u64 = 40;

    /// Fresh state.
    fn new(rng: &mut ChaCha8Rng) -> Self {
        Self {
            book: SpotBook::default(),
            next_event_id: 180_000_000_000 + rng.random_range(0..1_000_000_000),
            trades: VecDeque::with_capacity(SNAPSHOT_TRADES + 1),
            last_heartbeat_ms: None,
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
        // Event ids grow with every engine event, so consecutive trades skip ids.
        self.next_event_id += rng.random_range(1..40);
        if let Some(p) = out.print {
            let t = TradeMsgText {
                event_id: self.next_event_id,
                timestamp: t_ms,
                price_cents: p.price_cents,
                qty_e8: p.size_e8,
                side: if p.taker_buys { "buy" } else { "sell" },
            };
            events.push(event(tick, "l2", to_json(&t.msg())));
            self.trades.push_back(t);
            if self.trades.len() > SNAPSHOT_TRADES {
                self.trades.pop_front();
            }
        }
        if !out.changes.is_empty() {
            let msg = L2Updates {
                kind: "l2_updates",
                symbol: SYMBOL,
                changes: out
                    .changes
                    .iter()
                    .map(|c| change(c.side, c.price, c.qty))
                    .collect(),
                trades: None,
                auction_events: None,
            };
            events.push(event(tick, "l2", to_json(&msg)));
        }
        if self
            .last_heartbeat_ms
            .is_none_or(|last| t_ms - last >= HEARTBEAT_MS)
        {
            self.last_heartbeat_ms = Some(t_ms);
            let hb = Heartbeat {
                kind: "heartbeat",
                timestamp: t_ms,
            };
            events.push(event(tick, "heartbeat", to_json(&hb)));
        }
        events
    }
}

impl GeminiState {
    /// The first `l2_updates` of a subscription: the whole book (bids best first, then asks)
    /// with the last trades and the (empty) auction events.
    pub fn snapshot(&self) -> String {
        let (bids, asks) = self.book.sides();
        let mut changes: Vec<[String; 3]> = bids
            .iter()
            .map(|(p, q)| change(Side::Bid, *p, *q))
            .collect();
        changes.extend(asks.iter().map(|(p, q)| change(Side::Ask, *p, *q)));
        let trades: Vec<TradeMsg> = self.trades.iter().map(TradeMsgText::msg).collect();
        to_json(&L2Updates {
            kind: "l2_updates",
            symbol: SYMBOL,
            changes,
            trades: Some(trades.iter().collect()),
            auction_events: Some([]),
        })
    }

    /// Best bid and ask, cents.
    pub fn top_cents(&self) -> Option<(i64, i64)> {
        Some((self.book.book.best_bid()?.0, self.book.book.best_ask()?.0))
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn event(tick: u64, topic: &'static str, text: String) -> VenueEvent {
    VenueEvent {
        venue: VenueId::Gemini,
        tick,
        topic: Topic::Stream(topic),
        sequenced: false,
        text: Arc::from(text),
    }
}

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    subscriptions: Vec<Sub>,
}

#[derive(Deserialize)]
struct Sub {
    name: String,
    #[serde(default)]
    symbols: Vec<String>,
}

fn error(reason: &str, message: &str) -> Out {
    Out::Text(
        serde_json::json!({"result": "error", "reason": reason, "message": message}).to_string(),
    )
}

/// A Gemini market-data v2 session.
#[derive(Debug, Default)]
pub struct GeminiSession {
    /// Tick of the snapshot that started the `l2` subscription.
    l2_since: Option<u64>,
}

impl GeminiSession {
    /// Whether `l2` is subscribed.
    pub fn has_subscription(&self) -> bool {
        self.l2_since.is_some()
    }

    /// Handle a client text frame; `state` gives the snapshot (`None` in replay mode).
    pub fn on_text(&mut self, text: &str, state: Option<&GeminiState>, tick: u64) -> Vec<Out> {
        let Ok(req) = serde_json::from_str::<Request>(text) else {
            return vec![error("InvalidJson", "Could not parse the request as JSON")];
        };
        let subscribe = match req.kind.as_str() {
            "subscribe" => true,
            "unsubscribe" => false,
            other => return vec![error("InvalidRequestType", other)],
        };
        let mut symbols = BTreeSet::new();
        for s in &req.subscriptions {
            if s.name != "l2" {
                return vec![error("InvalidSubscription", &s.name)];
            }
            if let Some(bad) = s.symbols.iter().find(|x| x.as_str() != SYMBOL) {
                return vec![error("InvalidSymbol", bad)];
            }
            symbols.extend(s.symbols.iter().map(String::as_str));
        }
        if symbols.is_empty() {
            return vec![error("InvalidSubscription", "no symbols")];
        }
        if !subscribe {
            self.l2_since = None;
            return Vec::new();
        }
        if self.l2_since.is_some() {
            return Vec::new();
        }
        self.l2_since = Some(tick);
        state
            .map(|st| Out::Text(st.snapshot()))
            .into_iter()
            .collect()
    }

    /// Filter a market event: deltas and trades after the snapshot, heartbeats once subscribed.
    pub fn on_event(&self, ev: &VenueEvent) -> Option<String> {
        let since = self.l2_since?;
        match &ev.topic {
            Topic::Stream("heartbeat") => Some(ev.text.to_string()),
            Topic::Stream(_) if ev.tick > since => Some(ev.text.to_string()),
            Topic::Replay => Some(ev.text.to_string()),
            _ => None,
        }
    }
}

/// The registry's session factory (`/v2/marketdata`).
pub fn open(path: &str, _conn_no: u64) -> Result<(Box<dyn VenueSession>, Vec<Out>), OpenError> {
    check_route(
        VenueId::Gemini,
        path,
        &["/v2/marketdata", "/v2/marketdata/"],
    )?;
    Ok((Box::new(GeminiSession::default()), Vec::new()))
}

impl VenueSession for GeminiSession {
    fn on_text(&mut self, text: &str, hub: &Hub) -> Vec<Out> {
        let state = hub.model_state::<GeminiState>(VenueId::Gemini);
        GeminiSession::on_text(self, text, state, hub.tick())
    }

    fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        GeminiSession::on_event(self, ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::stream_rng;
    use crate::spot::test_util::{Book, apply, feed, venue_book};
    use ringbolt_bus::{FLAG_SNAPSHOT, Trade, Venue};
    use ringbolt_feeds::{FrameDriver, SyncMode};

    #[test]
    fn frames_parse_in_ringbolts_adapter_and_rebuild_the_venue_book() {
        let mut rng = stream_rng(3, 20);
        let mut st = GeminiState::new(&mut rng);
        for k in 0..50 {
            st.step(k * 100, k as u64, 97_000.0 + k as f64, 0.5, &mut rng);
        }
        let mut s = GeminiSession::default();
        let sub = r#"{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["BTCUSD"]}]}"#;
        let out = s.on_text(sub, Some(&st), 49);
        assert_eq!(out.len(), 1);
        assert!(
            s.on_text(sub, Some(&st), 49).is_empty(),
            "no second snapshot"
        );
        let mut d = FrameDriver::new(Venue::Gemini, SyncMode::Enforce, true).unwrap();
        let Out::Text(snap) = &out[0] else { panic!() };
        let recs = feed(&mut d, snap);
        assert!(recs.iter().all(|r| r.flags & FLAG_SNAPSHOT != 0));
        let mut book = Book::new();
        apply(&mut book, &recs);
        let (mut trades, mut last_id) = (0, 0);
        for k in 50..150 {
            for ev in st.step(k * 100, k as u64, 97_050.0 - k as f64, 0.5, &mut rng) {
                let Some(text) = s.on_event(&ev) else {
                    continue;
                };
                let recs = feed(&mut d, &text);
                for r in &recs {
                    if let Some(t) = r.body_as::<Trade>() {
                        assert!(t.trade_id > last_id);
                        last_id = t.trade_id;
                        trades += 1;
                    }
                }
                apply(&mut book, &recs);
            }
        }
        assert!(trades > 20, "{trades}");
        // The parsed book is the venue's book, level for level.
        assert_eq!(book, venue_book(&st.book));
        let c = d.counters.total();
        assert_eq!((c.parse_errors, c.resyncs), (0, 1));
        // Errors in Gemini's shape.
        let out = s.on_text(
            r#"{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["ETHUSD"]}]}"#,
            None,
            0,
        );
        assert!(matches!(&out[0], Out::Text(t) if t.contains(r#""reason":"InvalidSymbol""#)));
        let Out::Text(t) = &out[0] else { panic!() };
        assert!(feed(&mut d, t).is_empty());
    }
}
