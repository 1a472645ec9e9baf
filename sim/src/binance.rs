//! Binance spot: book/trade state for BTCUSDT, the stream encoders (`depthUpdate` with `U`/`u`,
//! `trade`, `aggTrade`, `bookTicker`), the REST depth snapshot and the session state machine
//! (combined `/stream?streams=` and raw `/ws/` endpoints, `SUBSCRIBE`/`UNSUBSCRIBE`/
//! `LIST_SUBSCRIPTIONS`/`SET_PROPERTY`/`GET_PROPERTY`).

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::ladder::{Ladder, LadderParams, Side};
use crate::util::fixed;

/// Stream names served.
pub const STREAM_TRADE: &str = "btcusdt@trade";
/// Aggregate trades.
pub const STREAM_AGG: &str = "btcusdt@aggTrade";
/// Best bid/offer.
pub const STREAM_BOOK_TICKER: &str = "btcusdt@bookTicker";
/// 100 ms depth diffs.
pub const STREAM_DEPTH: &str = "btcusdt@depth@100ms";
/// Symbol.
pub const SYMBOL: &str = "BTCUSDT";

const PARAMS: LadderParams = LadderParams {
    depth: 100,
    step: 1,
    max_gap_ticks: 4,
    qty_min: 1_000,
    qty_max: 150_000_000,
    perturb: 6,
    lo: 1,
    hi: i64::MAX / 4,
};

fn px(cents: i64) -> String {
    fixed(cents * 1_000_000, 8)
}
fn qty(e8: i64) -> String {
    fixed(e8, 8)
}

#[derive(Serialize)]
struct DepthUpdate<'a> {
    e: &'static str,
    #[serde(rename = "E")]
    event_ms: i64,
    s: &'static str,
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    b: &'a [[String; 2]],
    a: &'a [[String; 2]],
}

/// The fields both trade messages end with: trade time, buyer-is-maker, best match.
#[derive(Serialize, Clone, Copy)]
struct TradeEnd {
    #[serde(rename = "T")]
    trade_ms: i64,
    m: bool,
    #[serde(rename = "M")]
    best: bool,
}

#[derive(Serialize)]
struct TradeMsg {
    e: &'static str,
    #[serde(rename = "E")]
    event_ms: i64,
    s: &'static str,
    t: u64,
    p: String,
    q: String,
    #[serde(flatten)]
    end: TradeEnd,
}

#[derive(Serialize)]
struct AggTradeMsg {
    e: &'static str,
    #[serde(rename = "E")]
    event_ms: i64,
    s: &'static str,
    a: u64,
    p: String,
    q: String,
    f: u64,
    l: u64,
    #[serde(flatten)]
    end: TradeEnd,
}

#[derive(Serialize)]
struct BookTicker {
    u: u64,
    s: &'static str,
    b: String,
    #[serde(rename = "B")]
    bid_qty: String,
    a: String,
    #[serde(rename = "A")]
    ask_qty: String,
}

#[derive(Serialize)]
struct Snapshot {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    bids: Vec<[String; 2]>,
    asks: Vec<[String; 2]>,
}

/// Binance spot BTCUSDT venue state.
#[derive(Debug)]
pub struct BinanceState {
    book: Ladder,
    last_update_id: u64,
    next_trade_id: u64,
    next_agg_id: u64,
    last_top: Option<(i64, i64, i64, i64)>,
    last_trade_px_cents: i64,
}

impl BinanceState {
    /// Fresh state with realistic-looking id bases.
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        Self {
            book: Ladder::default(),
            last_update_id: 80_000_000_000 + rng.random_range(0..1_000_000_000),
            next_trade_id: 6_400_000_000 + rng.random_range(0..100_000_000),
            next_agg_id: 3_980_000_000 + rng.random_range(0..10_000_000),
            last_top: None,
            last_trade_px_cents: 0,
        }
    }

    /// Last traded price in cents (0 before the first trade).
    pub fn last_trade_px_cents(&self) -> i64 {
        self.last_trade_px_cents
    }

    /// One market step: reprice around `mid_usd`, maybe trade; emits trade, aggTrade, depth and
    /// bookTicker events (in that order, as the matching engine would publish them).
    pub fn step(
        &mut self,
        t_ms: i64,
        tick: u64,
        mid_usd: f64,
        trade_prob: f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<VenueEvent> {
        let mut events = Vec::new();
        let mid_cents = (mid_usd * 100.0).round() as i64;
        let mut changes = self.book.reprice(mid_cents, mid_cents + 1, &PARAMS, rng);
        if rng.random_bool(trade_prob) {
            let buyer_is_maker = rng.random_bool(0.5);
            let end = TradeEnd {
                trade_ms: t_ms,
                m: buyer_is_maker,
                best: true,
            };
            let (side, level) = if buyer_is_maker {
                (Side::Bid, self.book.best_bid())
            } else {
                (Side::Ask, self.book.best_ask())
            };
            if let Some((price, avail)) = level {
                let fills = rng.random_range(1..=3u64);
                let first_id = self.next_trade_id;
                let mut total = 0;
                for _ in 0..fills {
                    let q = rng
                        .random_range(1_000..=2_000_000)
                        .min(avail - total)
                        .max(0);
                    if q == 0 {
                        break;
                    }
                    total += q;
                    let msg = TradeMsg {
                        e: "trade",
                        event_ms: t_ms,
                        s: SYMBOL,
                        t: self.next_trade_id,
                        p: px(price),
                        q: qty(q),
                        end,
                    };
                    self.next_trade_id += 1;
                    events.push(event(tick, STREAM_TRADE, true, &msg));
                }
                if total > 0 {
                    let agg = AggTradeMsg {
                        e: "aggTrade",
                        event_ms: t_ms,
                        s: SYMBOL,
                        a: self.next_agg_id,
                        p: px(price),
                        q: qty(total),
                        f: first_id,
                        l: self.next_trade_id - 1,
                        end,
                    };
                    self.next_agg_id += 1;
                    events.push(event(tick, STREAM_AGG, true, &agg));
                    self.last_trade_px_cents = price;
                    self.book.fill(side, price, total, &mut changes);
                }
            }
        }
        if !changes.is_empty() {
            let first = self.last_update_id + 1;
            self.last_update_id += changes.len() as u64;
            let b: Vec<[String; 2]> = changes
                .iter()
                .filter(|c| c.side == Side::Bid)
                .map(|c| [px(c.price), qty(c.qty)])
                .collect();
            let a: Vec<[String; 2]> = changes
                .iter()
                .filter(|c| c.side == Side::Ask)
                .map(|c| [px(c.price), qty(c.qty)])
                .collect();
            let msg = DepthUpdate {
                e: "depthUpdate",
                event_ms: t_ms,
                s: SYMBOL,
                first,
                u: self.last_update_id,
                b: &b,
                a: &a,
            };
            events.push(event(tick, STREAM_DEPTH, true, &msg));
        }
        if let (Some((bp, bq)), Some((ap, aq))) = (self.book.best_bid(), self.book.best_ask()) {
            let top = (bp, bq, ap, aq);
            if self.last_top != Some(top) {
                self.last_top = Some(top);
                let msg = BookTicker {
                    u: self.last_update_id,
                    s: SYMBOL,
                    b: px(bp),
                    bid_qty: qty(bq),
                    a: px(ap),
                    ask_qty: qty(aq),
                };
                events.push(event(tick, STREAM_BOOK_TICKER, false, &msg));
            }
        }
        events
    }

    /// `GET /api/v3/depth?symbol=BTCUSDT&limit=N` body (bids best-first, asks best-first).
    pub fn depth_snapshot(&self, limit: usize) -> String {
        let snap = Snapshot {
            last_update_id: self.last_update_id,
            bids: self
                .book
                .bids
                .iter()
                .rev()
                .take(limit)
                .map(|(p, q)| [px(*p), qty(*q)])
                .collect(),
            asks: self
                .book
                .asks
                .iter()
                .take(limit)
                .map(|(p, q)| [px(*p), qty(*q)])
                .collect(),
        };
        to_json(&snap)
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"code\":-1,\"msg\":\"{e}\"}}"))
}

fn event<T: Serialize>(tick: u64, stream: &'static str, sequenced: bool, msg: &T) -> VenueEvent {
    VenueEvent {
        venue: VenueId::BinanceSpot,
        tick,
        topic: Topic::Binance(stream),
        sequenced,
        text: Arc::from(to_json(msg)),
    }
}

/// Valid `limit` values of `GET /api/v3/depth` (1..=5000; Binance clamps above 5000).
pub fn parse_depth_query(query: &str) -> Result<usize, (u16, String)> {
    let mut symbol = None;
    let mut limit = 100usize;
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "symbol" => symbol = Some(v.to_string()),
            "limit" => {
                limit = v.parse().map_err(|_| {
                    (
                        400,
                        r#"{"code":-1100,"msg":"Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."}"#
                            .to_string(),
                    )
                })?;
            }
            _ => {}
        }
    }
    match symbol.as_deref() {
        None => Err((
            400,
            r#"{"code":-1102,"msg":"Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}"#.to_string(),
        )),
        Some(SYMBOL) => Ok(limit.clamp(1, 5000)),
        Some(_) => Err((400, r#"{"code":-1121,"msg":"Invalid symbol."}"#.to_string())),
    }
}

/// Why a Binance WebSocket path was refused.
#[derive(Debug, thiserror::Error)]
#[error("no Binance stream endpoint at {0}")]
pub struct BadPath(pub String);

/// A Binance spot WebSocket session.
#[derive(Debug)]
pub struct BinanceSession {
    combined: bool,
    subs: BTreeSet<String>,
}

#[derive(Deserialize)]
struct Request {
    method: String,
    #[serde(default)]
    params: Vec<Value>,
    id: Value,
}

impl BinanceSession {
    /// Open from the request path: `/stream?streams=a/b` (combined), `/stream`, `/ws/<name>`,
    /// `/ws` (raw).
    pub fn open(path: &str) -> Result<Self, BadPath> {
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        let mut subs = BTreeSet::new();
        let combined = match route {
            "/stream" => {
                for kv in query.split('&') {
                    if let Some(v) = kv.strip_prefix("streams=") {
                        subs.extend(v.split('/').filter(|s| !s.is_empty()).map(str::to_string));
                    }
                }
                true
            }
            "/ws" => false,
            r if r.starts_with("/ws/") => {
                subs.extend(
                    r["/ws/".len()..]
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
                false
            }
            _ => return Err(BadPath(path.to_string())),
        };
        Ok(Self { combined, subs })
    }

    /// Whether any stream is subscribed.
    pub fn has_subscription(&self) -> bool {
        !self.subs.is_empty()
    }

    /// Handle a client text frame.
    pub fn on_text(&mut self, text: &str) -> Vec<Out> {
        let req: Request = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) if e.is_syntax() || e.is_eof() => {
                return vec![Out::Text(format!(
                    r#"{{"code":3,"msg":"Invalid JSON: {}"}}"#,
                    escape(&e.to_string())
                ))];
            }
            Err(e) => {
                return vec![Out::Text(format!(
                    r#"{{"code":2,"msg":"Invalid request: {}"}}"#,
                    escape(&e.to_string())
                ))];
            }
        };
        let id = req.id.to_string();
        let names: Vec<String> = req
            .params
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let reply = match req.method.as_str() {
            "SUBSCRIBE" => {
                self.subs.extend(names);
                format!(r#"{{"result":null,"id":{id}}}"#)
            }
            "UNSUBSCRIBE" => {
                for n in &names {
                    self.subs.remove(n);
                }
                format!(r#"{{"result":null,"id":{id}}}"#)
            }
            "LIST_SUBSCRIPTIONS" => {
                let list = serde_json::to_string(&self.subs).unwrap_or_else(|_| "[]".into());
                format!(r#"{{"result":{list},"id":{id}}}"#)
            }
            "SET_PROPERTY" if req.params.first().and_then(Value::as_str) == Some("combined") => {
                match req.params.get(1).and_then(Value::as_bool) {
                    Some(b) => {
                        self.combined = b;
                        format!(r#"{{"result":null,"id":{id}}}"#)
                    }
                    None => format!(
                        r#"{{"code":2,"msg":"Invalid request: property value must be a boolean","id":{id}}}"#
                    ),
                }
            }
            "GET_PROPERTY" if req.params.first().and_then(Value::as_str) == Some("combined") => {
                format!(r#"{{"result":{},"id":{id}}}"#, self.combined)
            }
            other => format!(
                r#"{{"code":2,"msg":"Invalid request: unknown variant `{}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`","id":{id}}}"#,
                escape(other)
            ),
        };
        vec![Out::Text(reply)]
    }

    /// Filter and wrap a market event.
    pub fn on_event(&self, ev: &VenueEvent) -> Option<String> {
        let stream = match &ev.topic {
            Topic::Binance(s) => *s,
            Topic::Replay => return self.has_subscription().then(|| ev.text.to_string()),
            _ => return None,
        };
        if !self.subs.contains(stream) {
            return None;
        }
        Some(self.wrap(stream, &ev.text))
    }

    fn wrap(&self, stream: &str, payload: &str) -> String {
        if self.combined {
            format!(r#"{{"stream":"{stream}","data":{payload}}}"#)
        } else {
            payload.to_string()
        }
    }

    /// The `serverShutdown` event Binance sends before closing a connection for maintenance.
    pub fn shutdown_frame(&self, t_ms: i64) -> String {
        let payload = format!(r#"{{"e":"serverShutdown","E":{t_ms}}}"#);
        self.wrap("!serverShutdown", &payload)
    }
}

/// JSON-escape a message for embedding in a string literal.
pub fn escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted.trim_matches('"').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_replies_match_binance() {
        let mut s = BinanceSession::open("/stream").unwrap();
        let out = s.on_text(r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#);
        assert_eq!(out, vec![Out::Text(r#"{"result":null,"id":1}"#.into())]);
        let out = s.on_text(r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#);
        assert_eq!(
            out,
            vec![Out::Text(r#"{"result":["btcusdt@trade"],"id":3}"#.into())]
        );
        let out = s.on_text(r#"{"params":["btcusdt@aggTrade"],"id":7}"#);
        let Out::Text(t) = &out[0] else { panic!() };
        assert!(
            t.starts_with(r#"{"code":2,"msg":"Invalid request: missing field `method`"#),
            "{t}"
        );
        let out = s.on_text("{nope");
        let Out::Text(t) = &out[0] else { panic!() };
        assert!(t.starts_with(r#"{"code":3,"msg":"Invalid JSON"#), "{t}");
    }

    #[test]
    fn paths() {
        let s = BinanceSession::open("/stream?streams=btcusdt@trade/btcusdt@depth@100ms").unwrap();
        assert!(s.combined && s.subs.len() == 2);
        let s = BinanceSession::open("/ws/btcusdt@depth@100ms").unwrap();
        assert!(!s.combined && s.subs.contains(STREAM_DEPTH));
        assert!(BinanceSession::open("/foo").is_err());
        assert_eq!(parse_depth_query("symbol=BTCUSDT&limit=10"), Ok(10));
        assert!(parse_depth_query("symbol=ETHUSDT").is_err());
        assert!(parse_depth_query("limit=5").is_err());
    }
}
