//! Coinbase Exchange WebSocket feed for BTC-USD: `ticker`, `matches` (with `last_match` on
//! subscribe), `heartbeat` and `level2_batch` (`snapshot` + `l2update`), the per-product engine
//! `sequence`, and the `subscribe`/`unsubscribe` handshake with its `subscriptions` reply and
//! `error` messages.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::ladder::{Ladder, LadderParams, Side};
use crate::util::{fixed, iso_micros, uuid_v4};

/// The only product served.
pub const PRODUCT: &str = "BTC-USD";
/// Channels served.
pub const CHANNELS: [&str; 4] = ["ticker", "matches", "heartbeat", "level2_batch"];

const PARAMS: LadderParams = LadderParams {
    depth: 100,
    step: 1,
    max_gap_ticks: 6,
    qty_min: 10_000,
    qty_max: 80_000_000,
    perturb: 4,
    lo: 1,
    hi: i64::MAX / 4,
};

fn px(cents: i64) -> String {
    fixed(cents, 2)
}
fn qty(e8: i64) -> String {
    fixed(e8, 8)
}

#[derive(Serialize, Clone)]
struct Ticker {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence: u64,
    product_id: &'static str,
    price: String,
    open_24h: String,
    volume_24h: String,
    low_24h: String,
    high_24h: String,
    volume_30d: String,
    best_bid: String,
    best_bid_size: String,
    best_ask: String,
    best_ask_size: String,
    side: &'static str,
    time: String,
    trade_id: u64,
    last_size: String,
}

#[derive(Serialize, Clone)]
struct Match {
    #[serde(rename = "type")]
    kind: &'static str,
    trade_id: u64,
    maker_order_id: String,
    taker_order_id: String,
    side: &'static str,
    size: String,
    price: String,
    product_id: &'static str,
    sequence: u64,
    time: String,
}

#[derive(Serialize)]
struct Heartbeat {
    #[serde(rename = "type")]
    kind: &'static str,
    last_trade_id: u64,
    product_id: &'static str,
    sequence: u64,
    time: String,
}

#[derive(Serialize)]
struct L2Update {
    #[serde(rename = "type")]
    kind: &'static str,
    product_id: &'static str,
    changes: Vec<[String; 3]>,
    time: String,
}

#[derive(Serialize)]
struct L2Snapshot {
    #[serde(rename = "type")]
    kind: &'static str,
    product_id: &'static str,
    asks: Vec<[String; 2]>,
    bids: Vec<[String; 2]>,
}

/// Coinbase BTC-USD venue state.
#[derive(Debug)]
pub struct CoinbaseState {
    book: Ladder,
    sequence: u64,
    next_trade_id: u64,
    last_match: Option<String>,
    last_ticker: Option<String>,
    last_heartbeat_ms: Option<i64>,
    open_cents: i64,
    high_cents: i64,
    low_cents: i64,
    volume_e8: i64,
}

impl CoinbaseState {
    /// Fresh state.
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        Self {
            book: Ladder::default(),
            sequence: 110_000_000_000 + rng.random_range(0..1_000_000_000),
            next_trade_id: 900_000_000 + rng.random_range(0..10_000_000),
            last_match: None,
            last_ticker: None,
            last_heartbeat_ms: None,
            open_cents: 0,
            high_cents: 0,
            low_cents: i64::MAX,
            volume_e8: 1_500_000_000_000,
        }
    }

    /// One market step.
    pub fn step(
        &mut self,
        t_ms: i64,
        tick: u64,
        mid_usd: f64,
        trade_prob: f64,
        heartbeat_ms: i64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<VenueEvent> {
        let mut events = Vec::new();
        let t_us = t_ms * 1000 + rng.random_range(0..1000);
        let time = iso_micros(t_us);
        let mid_cents = (mid_usd * 100.0).round() as i64;
        if self.open_cents == 0 {
            self.open_cents = mid_cents;
        }
        let mut changes = self.book.reprice(mid_cents, mid_cents + 1, &PARAMS, rng);
        self.sequence += changes.len() as u64;
        if rng.random_bool(trade_prob) {
            let taker_buys = rng.random_bool(0.5);
            let (maker_side, level) = if taker_buys {
                (Side::Ask, self.book.best_ask())
            } else {
                (Side::Bid, self.book.best_bid())
            };
            if let Some((price, avail)) = level {
                let size = rng.random_range(10_000..=5_000_000).min(avail);
                self.sequence += 1;
                let trade_id = self.next_trade_id;
                self.next_trade_id += 1;
                // Coinbase reports the maker's side.
                let side = if maker_side == Side::Bid {
                    "buy"
                } else {
                    "sell"
                };
                let m = Match {
                    kind: "match",
                    trade_id,
                    maker_order_id: uuid_v4(rng),
                    taker_order_id: uuid_v4(rng),
                    side,
                    size: qty(size),
                    price: px(price),
                    product_id: PRODUCT,
                    sequence: self.sequence,
                    time: time.clone(),
                };
                let text = to_json(&m);
                self.last_match = Some(to_json(&Match {
                    kind: "last_match",
                    ..m
                }));
                events.push(event(tick, "matches", true, text));
                self.book.fill(maker_side, price, size, &mut changes);
                self.high_cents = self.high_cents.max(price);
                self.low_cents = self.low_cents.min(price);
                self.volume_e8 += size;
                let ticker = self.ticker(price, size, side, trade_id, time.clone());
                self.last_ticker = Some(ticker.clone());
                events.push(event(tick, "ticker", false, ticker));
            }
        }
        if !changes.is_empty() {
            let msg = L2Update {
                kind: "l2update",
                product_id: PRODUCT,
                changes: changes
                    .iter()
                    .map(|c| {
                        let side = if c.side == Side::Bid { "buy" } else { "sell" };
                        [side.to_string(), px(c.price), qty(c.qty)]
                    })
                    .collect(),
                time: time.clone(),
            };
            events.push(event(tick, "level2_batch", false, to_json(&msg)));
        }
        if self
            .last_heartbeat_ms
            .is_none_or(|last| t_ms - last >= heartbeat_ms)
        {
            self.last_heartbeat_ms = Some(t_ms);
            let hb = Heartbeat {
                kind: "heartbeat",
                last_trade_id: self.next_trade_id - 1,
                product_id: PRODUCT,
                sequence: self.sequence,
                time,
            };
            events.push(event(tick, "heartbeat", false, to_json(&hb)));
        }
        events
    }

    fn ticker(
        &self,
        price: i64,
        size: i64,
        side: &'static str,
        trade_id: u64,
        time: String,
    ) -> String {
        let (bp, bq) = self.book.best_bid().unwrap_or((0, 0));
        let (ap, aq) = self.book.best_ask().unwrap_or((0, 0));
        let t = Ticker {
            kind: "ticker",
            sequence: self.sequence,
            product_id: PRODUCT,
            price: px(price),
            open_24h: px(self.open_cents),
            volume_24h: qty(self.volume_e8),
            low_24h: px(self.low_cents.min(price)),
            high_24h: px(self.high_cents.max(price)),
            volume_30d: qty(self.volume_e8 * 30),
            best_bid: px(bp),
            best_bid_size: qty(bq),
            best_ask: px(ap),
            best_ask_size: qty(aq),
            side,
            time,
            trade_id,
            last_size: qty(size),
        };
        to_json(&t)
    }

    /// The `snapshot` message of `level2_batch` (full book, best first).
    pub fn snapshot(&self) -> String {
        to_json(&L2Snapshot {
            kind: "snapshot",
            product_id: PRODUCT,
            asks: self
                .book
                .asks
                .iter()
                .map(|(p, q)| [px(*p), qty(*q)])
                .collect(),
            bids: self
                .book
                .bids
                .iter()
                .rev()
                .map(|(p, q)| [px(*p), qty(*q)])
                .collect(),
        })
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `sequenced`: a `gap` fault may drop it. Only `match` messages are: their `trade_id` chain is the
/// one loss a client can detect on Coinbase's public channels (their `sequence` skips numbers by
/// design, so a lost ticker or heartbeat is invisible to any client, ringbolt included).
fn event(tick: u64, channel: &'static str, sequenced: bool, text: String) -> VenueEvent {
    VenueEvent {
        venue: VenueId::Coinbase,
        tick,
        topic: Topic::Coinbase(channel),
        sequenced,
        text: Arc::from(text),
    }
}

/// A Coinbase Exchange feed session.
#[derive(Debug, Default)]
pub struct CoinbaseSession {
    /// channel -> tick of the snapshot/ack that started it (events up to it are dropped).
    subs: BTreeMap<&'static str, u64>,
}

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    product_ids: Vec<String>,
    #[serde(default)]
    channels: Vec<Value>,
}

#[derive(Serialize)]
struct ErrorMsg<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct ChannelSub {
    name: &'static str,
    product_ids: [&'static str; 1],
}

#[derive(Serialize)]
struct Subscriptions {
    #[serde(rename = "type")]
    kind: &'static str,
    channels: Vec<ChannelSub>,
}

fn error(message: &str, reason: &str) -> Out {
    Out::Text(to_json(&ErrorMsg {
        kind: "error",
        message,
        reason,
    }))
}

impl CoinbaseSession {
    /// Whether any channel is subscribed.
    pub fn has_subscription(&self) -> bool {
        !self.subs.is_empty()
    }

    /// Handle a client text frame; `state` gives the snapshots sent right after the ack
    /// (`None` in replay mode), `tick` is the current market step.
    pub fn on_text(&mut self, text: &str, state: Option<&CoinbaseState>, tick: u64) -> Vec<Out> {
        let req: Request = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => return vec![error("Malformed JSON", &e.to_string())],
        };
        let subscribe = match req.kind.as_str() {
            "subscribe" => true,
            "unsubscribe" => false,
            other => {
                return vec![error(
                    "Failed to subscribe",
                    &format!("{other} is not a valid message type"),
                )];
            }
        };
        // Channels: "name" or {"name":..,"product_ids":[..]}.
        let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
        for c in &req.channels {
            match c {
                Value::String(name) => wanted.push((name.clone(), req.product_ids.clone())),
                Value::Object(o) => {
                    let name = o
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let products = o
                        .get("product_ids")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|p| p.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_else(|| req.product_ids.clone());
                    wanted.push((name, products));
                }
                _ => {
                    return vec![error(
                        "Failed to subscribe",
                        "channels must be strings or objects",
                    )];
                }
            }
        }
        if wanted.is_empty() {
            return vec![error("Failed to subscribe", "No channels provided")];
        }
        let mut chans: Vec<&'static str> = Vec::new();
        for (name, products) in &wanted {
            if matches!(name.as_str(), "level2" | "level3" | "full") {
                return vec![error(
                    "Failed to subscribe",
                    "level2, level3, and full channels now require authentication.",
                )];
            }
            let Some(ch) = CHANNELS.iter().find(|c| **c == name) else {
                return vec![error(
                    "Failed to subscribe",
                    &format!("{name} is not a valid channel"),
                )];
            };
            if products.is_empty() {
                return vec![error("Failed to subscribe", "No product ids provided")];
            }
            if let Some(bad) = products.iter().find(|p| p.as_str() != PRODUCT) {
                return vec![error(
                    "Failed to subscribe",
                    &format!("{bad} is not a valid product"),
                )];
            }
            chans.push(ch);
        }
        let mut out = Vec::new();
        let newly: Vec<&'static str> = if subscribe {
            let fresh: Vec<_> = chans
                .iter()
                .copied()
                .filter(|c| !self.subs.contains_key(c))
                .collect();
            for c in &chans {
                self.subs.insert(c, tick);
            }
            fresh
        } else {
            for c in &chans {
                self.subs.remove(c);
            }
            Vec::new()
        };
        let channels = self
            .subs
            .keys()
            .map(|c| ChannelSub {
                name: c,
                product_ids: [PRODUCT],
            })
            .collect();
        out.push(Out::Text(to_json(&Subscriptions {
            kind: "subscriptions",
            channels,
        })));
        if let Some(st) = state {
            let set: BTreeSet<&str> = newly.into_iter().collect();
            if set.contains("level2_batch") {
                out.push(Out::Text(st.snapshot()));
            }
            if set.contains("matches")
                && let Some(m) = &st.last_match
            {
                out.push(Out::Text(m.clone()));
            }
            if set.contains("ticker")
                && let Some(t) = &st.last_ticker
            {
                out.push(Out::Text(t.clone()));
            }
        }
        out
    }

    /// Filter a market event.
    pub fn on_event(&self, ev: &VenueEvent) -> Option<String> {
        match &ev.topic {
            Topic::Coinbase(ch) => match self.subs.get(ch) {
                Some(since) if ev.tick > *since => Some(ev.text.to_string()),
                _ => None,
            },
            Topic::Replay => self.has_subscription().then(|| ev.text.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_ack_and_errors() {
        let mut s = CoinbaseSession::default();
        let out = s.on_text(
            r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker","matches","heartbeat","level2_batch"]}"#,
            None,
            0,
        );
        assert_eq!(
            out,
            vec![Out::Text(
                r#"{"type":"subscriptions","channels":[{"name":"heartbeat","product_ids":["BTC-USD"]},{"name":"level2_batch","product_ids":["BTC-USD"]},{"name":"matches","product_ids":["BTC-USD"]},{"name":"ticker","product_ids":["BTC-USD"]}]}"#
                    .into()
            )]
        );
        let out = s.on_text(
            r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2"]}"#,
            None,
            0,
        );
        assert!(matches!(&out[0], Out::Text(t) if t.contains("require authentication")));
        let out = s.on_text(
            r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["tickerz"]}"#,
            None,
            0,
        );
        assert!(matches!(&out[0], Out::Text(t) if t.contains("tickerz is not a valid channel")));
    }
}
