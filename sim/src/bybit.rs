//! Bybit v5 public WebSocket, spot (`/v5/public/spot`) and linear (`/v5/public/linear`) for
//! BTCUSDT: one book and trade state per category, the topic encoders (`orderbook.1`,
//! `orderbook.50` snapshot + delta with `u` and `seq`, `publicTrade`, `tickers` — spot:
//! snapshots; linear: a snapshot then partial deltas with mark, index, funding — and linear
//! `allLiquidation`), and the session (`subscribe` / `unsubscribe` / `ping` ops).
//!
//! Sequence rules: `orderbook.50` `u` is +1 per message of the topic, `seq` is the
//! cross-sequence (increasing, not contiguous); a subscriber gets a `snapshot` at its
//! subscription then `delta`s; `orderbook.1` is a `snapshot` on every top change, re-sent after
//! 3 s unchanged with the same `u`. Frames whose exact text could not be verified against the
//! venue's documentation or captures (error `ret_msg` for malformed JSON and unknown ops) are
//! marked so below.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::Value;

use crate::binance::escape;
use crate::cexbook::{BookShape, CexBook, Fill, pairs};
use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::hub::Hub;
use crate::ladder::{Change, Side};
use crate::market::stream_rng;
use crate::session::OpenError;
use crate::util::{fixed, fixed_signed, uuid_v4};
use crate::venue::{StepCtx, VenueModel, VenueSession, check_route};

/// This venue.
pub const VENUE: VenueId = VenueId::Bybit;
/// Symbol (both categories).
pub const SYMBOL: &str = "BTCUSDT";
/// Spot route.
pub const SPOT_PATH: &str = "/v5/public/spot";
/// Linear route.
pub const LINEAR_PATH: &str = "/v5/public/linear";
/// Level-1 book topic.
pub const TOPIC_OB1: &str = "orderbook.1.BTCUSDT";
/// Level-50 book topic.
pub const TOPIC_OB50: &str = "orderbook.50.BTCUSDT";
/// Trades topic.
pub const TOPIC_TRADE: &str = "publicTrade.BTCUSDT";
/// Tickers topic.
pub const TOPIC_TICKERS: &str = "tickers.BTCUSDT";
/// Liquidations topic (linear).
pub const TOPIC_LIQ: &str = "allLiquidation.BTCUSDT";

/// Market category (one route each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// `/v5/public/spot`.
    Spot,
    /// `/v5/public/linear` (USDT perpetual).
    Linear,
}

impl Category {
    fn topics(self) -> &'static [&'static str] {
        match self {
            Category::Spot => &[TOPIC_OB1, TOPIC_OB50, TOPIC_TRADE, TOPIC_TICKERS],
            Category::Linear => &[TOPIC_OB1, TOPIC_OB50, TOPIC_TRADE, TOPIC_TICKERS, TOPIC_LIQ],
        }
    }
    /// Event key: category and topic (`Topic::Stream`).
    fn key(self, topic: &str) -> &'static str {
        let i = self.topics().iter().position(|t| *t == topic).unwrap_or(0);
        match self {
            Category::Spot => ["spot|ob1", "spot|ob50", "spot|trade", "spot|tickers"][i],
            Category::Linear => [
                "linear|ob1",
                "linear|ob50",
                "linear|trade",
                "linear|tickers",
                "linear|liq",
            ][i],
        }
    }
    fn shape(self) -> BookShape {
        match self {
            // Spot: 0.01 USDT tick, sizes in 1e-6 BTC.
            Category::Spot => BookShape {
                tick_cents: 1,
                depth: 50,
                qty_min: 100,
                qty_max: 3_000_000,
                trade_max: 200_000,
            },
            // Linear: 0.10 USDT tick, sizes in 0.001 BTC.
            Category::Linear => BookShape {
                tick_cents: 10,
                depth: 50,
                qty_min: 1,
                qty_max: 30_000,
                trade_max: 2_000,
            },
        }
    }
    fn qty(self, units: i64) -> String {
        match self {
            Category::Spot => fixed(units, 6),
            Category::Linear => fixed(units, 3),
        }
    }
}

fn px(cents: i64) -> String {
    fixed(cents, 2)
}

/// The linear ticker's fields, in the venue's order.
const LINEAR_TICKER_FIELDS: [&str; 19] = [
    "tickDirection",
    "price24hPcnt",
    "lastPrice",
    "prevPrice24h",
    "highPrice24h",
    "lowPrice24h",
    "prevPrice1h",
    "markPrice",
    "indexPrice",
    "openInterest",
    "openInterestValue",
    "turnover24h",
    "volume24h",
    "nextFundingTime",
    "fundingRate",
    "bid1Price",
    "bid1Size",
    "ask1Price",
    "ask1Size",
];

/// One category's book, trades and ticker.
#[derive(Debug)]
pub struct CategoryState {
    cat: Category,
    book: CexBook,
    u50: u64,
    u1: u64,
    seq: u64,
    last_top: Option<(i64, i64, i64, i64)>,
    ob1_sent_ms: i64,
    next_trade_id: u64,
    last_px: i64,
    prev_px: i64,
    open_px: i64,
    high_px: i64,
    low_px: i64,
    volume_units: i64,
    turnover_cents: i64,
    index_usd: f64,
    mark_usd: f64,
    funding_e6: i64,
    open_interest: i64,
    cs: u64,
    ticker_sent_ms: i64,
    ticker: Vec<(&'static str, String)>,
}

impl CategoryState {
    fn new(cat: Category, rng: &mut ChaCha8Rng) -> Self {
        Self {
            cat,
            book: CexBook::new(cat.shape()),
            u50: 40_000_000 + rng.random_range(0..10_000_000),
            u1: 9_000_000 + rng.random_range(0..1_000_000),
            seq: 60_000_000_000 + rng.random_range(0..1_000_000_000),
            last_top: None,
            ob1_sent_ms: 0,
            next_trade_id: 2_290_000_000_050_000_000 + rng.random_range(0..1_000_000),
            last_px: 0,
            prev_px: 0,
            open_px: 0,
            high_px: 0,
            low_px: i64::MAX,
            volume_units: 0,
            turnover_cents: 0,
            index_usd: 0.0,
            mark_usd: 0.0,
            funding_e6: 100,
            open_interest: 52_000_000 + rng.random_range(0..1_000_000),
            cs: 76_000_000_000 + rng.random_range(0..1_000_000_000),
            ticker_sent_ms: 0,
            ticker: Vec::new(),
        }
    }

    fn event(&self, tick: u64, topic: &str, sequenced: bool, text: String) -> VenueEvent {
        VenueEvent {
            venue: VENUE,
            tick,
            topic: Topic::Stream(self.cat.key(topic)),
            sequenced,
            text: Arc::from(text),
        }
    }

    fn book_json(&self, b: &[[String; 2]], a: &[[String; 2]], u: u64) -> String {
        format!(
            r#"{{"s":"{SYMBOL}","b":{},"a":{},"u":{u},"seq":{}}}"#,
            serde_json::to_string(b).unwrap_or_default(),
            serde_json::to_string(a).unwrap_or_default(),
            self.seq
        )
    }

    /// The `orderbook.50` snapshot a new subscriber gets.
    pub fn ob50_snapshot(&self, ts: i64) -> String {
        let side = |s| -> Vec<[String; 2]> {
            self.book
                .levels(s, 50)
                .into_iter()
                .map(|(p, q)| [px(p), self.cat.qty(q)])
                .collect()
        };
        let data = self.book_json(&side(Side::Bid), &side(Side::Ask), self.u50);
        format!(
            r#"{{"topic":"{TOPIC_OB50}","ts":{ts},"type":"snapshot","data":{data},"cts":{}}}"#,
            ts - 2
        )
    }

    fn ob1_frame(&self, ts: i64) -> Option<String> {
        let (b, bq, a, aq) = self.book.top()?;
        let q = |v| self.cat.qty(v);
        let data = self.book_json(&[[px(b), q(bq)]], &[[px(a), q(aq)]], self.u1);
        Some(format!(
            r#"{{"topic":"{TOPIC_OB1}","ts":{ts},"type":"snapshot","data":{data},"cts":{}}}"#,
            ts - 2
        ))
    }

    fn delta(&mut self, t: i64, tick: u64, changes: &[Change]) -> VenueEvent {
        self.u50 += 1;
        // Cross sequence: other symbols' matching consumes ids too.
        self.seq += 1 + 2 * changes.len() as u64;
        let q = |v| self.cat.qty(v);
        let b = pairs(changes, Side::Bid, px, q);
        let a = pairs(changes, Side::Ask, px, q);
        let data = self.book_json(&b, &a, self.u50);
        let text = format!(
            r#"{{"topic":"{TOPIC_OB50}","ts":{t},"type":"delta","data":{data},"cts":{}}}"#,
            t - 2
        );
        self.event(tick, TOPIC_OB50, true, text)
    }

    fn ob1(&mut self, t: i64, tick: u64) -> Option<VenueEvent> {
        let top = self.book.top()?;
        let changed = self.last_top != Some(top);
        if !changed && t - self.ob1_sent_ms < 3_000 {
            return None;
        }
        if changed {
            self.u1 += 1;
            self.last_top = Some(top);
        }
        self.ob1_sent_ms = t;
        let text = self.ob1_frame(t)?;
        Some(self.event(tick, TOPIC_OB1, false, text))
    }

    fn trade(&mut self, t: i64, tick: u64, f: Fill, rng: &mut ChaCha8Rng) -> VenueEvent {
        self.seq += 1;
        let side = if f.taker_buy { "Buy" } else { "Sell" };
        let tick_dir = match f.price.cmp(&self.last_px) {
            std::cmp::Ordering::Greater => "PlusTick",
            std::cmp::Ordering::Less => "MinusTick",
            std::cmp::Ordering::Equal => "ZeroPlusTick",
        };
        let id = match self.cat {
            Category::Spot => {
                self.next_trade_id += 1;
                self.next_trade_id.to_string()
            }
            Category::Linear => uuid_v4(rng),
        };
        let (p, v) = (px(f.price), self.cat.qty(f.qty));
        let row = match self.cat {
            Category::Spot => format!(
                r#"{{"i":"{id}","T":{t},"p":"{p}","v":"{v}","S":"{side}","s":"{SYMBOL}","BT":false,"seq":{}}}"#,
                self.seq
            ),
            Category::Linear => format!(
                r#"{{"T":{t},"s":"{SYMBOL}","S":"{side}","v":"{v}","p":"{p}","L":"{tick_dir}","i":"{id}","BT":false,"RPI":false,"seq":{}}}"#,
                self.seq
            ),
        };
        self.record_trade(f);
        let text = format!(
            r#"{{"topic":"{TOPIC_TRADE}","ts":{},"type":"snapshot","data":[{row}]}}"#,
            t + 2
        );
        self.event(tick, TOPIC_TRADE, false, text)
    }

    fn record_trade(&mut self, f: Fill) {
        self.prev_px = self.last_px;
        self.last_px = f.price;
        self.high_px = self.high_px.max(f.price);
        self.low_px = self.low_px.min(f.price);
        self.volume_units += f.qty;
        let per_btc = match self.cat {
            Category::Spot => 1_000_000,
            Category::Linear => 1_000,
        };
        self.turnover_cents += f.price.saturating_mul(f.qty) / per_btc;
    }

    fn liquidation(&mut self, t: i64, tick: u64, rng: &mut ChaCha8Rng) -> Option<VenueEvent> {
        let (b, _, a, _) = self.book.top()?;
        let long_liq = rng.random_bool(0.5);
        let (side, p) = if long_liq { ("Buy", b) } else { ("Sell", a) };
        let v = self.cat.qty(rng.random_range(1..=500));
        let text = format!(
            r#"{{"topic":"{TOPIC_LIQ}","type":"snapshot","ts":{},"data":[{{"T":{t},"s":"{SYMBOL}","S":"{side}","v":"{v}","p":"{}"}}]}}"#,
            t + 300,
            px(p)
        );
        Some(self.event(tick, TOPIC_LIQ, false, text))
    }
}

impl CategoryState {
    fn ticker_fields(&self, now_ms: i64) -> Vec<(&'static str, String)> {
        let last = self.last_px;
        let pcnt = if self.open_px > 0 {
            ((last - self.open_px) as f64 / self.open_px as f64 * 1e6).round() as i64
        } else {
            0
        };
        let common = [
            ("lastPrice", px(last)),
            ("highPrice24h", px(self.high_px)),
            ("lowPrice24h", px(self.low_px.min(last))),
            ("prevPrice24h", px(self.open_px)),
            ("volume24h", self.cat.qty(self.volume_units)),
            ("turnover24h", px(self.turnover_cents)),
            ("price24hPcnt", fixed_signed(pcnt, 6)),
        ];
        if self.cat == Category::Spot {
            let mut v: Vec<_> = common.into_iter().collect();
            v.push((
                "usdIndexPrice",
                fixed((self.index_usd * 1e6).round() as i64, 6),
            ));
            return v;
        }
        let (b, bq, a, aq) = self.book.top().unwrap_or((last, 0, last, 0));
        let funding = (now_ms.div_euclid(28_800_000) + 1) * 28_800_000;
        let dir = if last >= self.prev_px {
            "PlusTick"
        } else {
            "MinusTick"
        };
        let oi_value = (self.open_interest as f64 * self.mark_usd / 1e3 * 100.0).round() as i64;
        let extra = [
            ("tickDirection", dir.to_string()),
            ("prevPrice1h", px(self.open_px)),
            ("markPrice", px((self.mark_usd * 100.0).round() as i64)),
            ("indexPrice", px((self.index_usd * 100.0).round() as i64)),
            ("openInterest", self.cat.qty(self.open_interest)),
            ("openInterestValue", px(oi_value)),
            ("nextFundingTime", funding.to_string()),
            ("fundingRate", fixed_signed(self.funding_e6, 6)),
            ("bid1Price", px(b)),
            ("bid1Size", self.cat.qty(bq)),
            ("ask1Price", px(a)),
            ("ask1Size", self.cat.qty(aq)),
        ];
        let all: BTreeMap<&str, String> = common.into_iter().chain(extra).collect();
        LINEAR_TICKER_FIELDS
            .iter()
            .filter_map(|k| all.get(k).map(|v| (*k, v.clone())))
            .collect()
    }

    fn ticker_frame(&self, kind: &str, fields: &[(&'static str, String)], ts: i64) -> String {
        let mut data = format!(r#"{{"symbol":"{SYMBOL}""#);
        for (k, v) in fields {
            let _ = write!(data, r#","{k}":"{v}""#);
        }
        data.push('}');
        format!(
            r#"{{"topic":"{TOPIC_TICKERS}","ts":{ts},"type":"{kind}","cs":{},"data":{data}}}"#,
            self.cs
        )
    }

    /// The tickers frame a new subscriber gets (`None` before the first publication).
    pub fn ticker_snapshot(&self, ts: i64) -> Option<String> {
        (!self.ticker.is_empty()).then(|| self.ticker_frame("snapshot", &self.ticker, ts))
    }

    /// Spot: a snapshot every second; linear: the changed fields every step.
    fn tickers(&mut self, t: i64, tick: u64) -> Option<VenueEvent> {
        if self.last_px == 0 {
            return None;
        }
        let fields = self.ticker_fields(t);
        let text = match self.cat {
            Category::Spot => {
                if t - self.ticker_sent_ms < 1_000 {
                    return None;
                }
                self.ticker_frame("snapshot", &fields, t)
            }
            Category::Linear => {
                let changed: Vec<_> = fields
                    .iter()
                    .filter(|f| !self.ticker.contains(f))
                    .cloned()
                    .collect();
                if changed.is_empty() {
                    return None;
                }
                self.ticker_frame("delta", &changed, t)
            }
        };
        self.cs += 1;
        self.ticker_sent_ms = t;
        self.ticker = fields;
        Some(self.event(tick, TOPIC_TICKERS, false, text))
    }

    fn step(&mut self, ctx: &StepCtx<'_>, mid: f64, rng: &mut ChaCha8Rng) -> Vec<VenueEvent> {
        let (t, tick) = (ctx.t_ms, ctx.tick);
        let mut out = Vec::new();
        let (changes, fill) = self.book.step(mid, ctx.cfg.binance_trade_prob, rng);
        if self.last_px == 0
            && let Some((b, ..)) = self.book.top()
        {
            (self.last_px, self.prev_px, self.open_px, self.high_px) = (b, b, b, b);
        }
        if let Some(f) = fill {
            out.push(self.trade(t, tick, f, rng));
        }
        if !changes.is_empty() {
            out.push(self.delta(t, tick, &changes));
        }
        out.extend(self.ob1(t, tick));
        out.extend(self.tickers(t, tick));
        if self.cat == Category::Linear && rng.random_bool(LIQ_PROB) {
            out.extend(self.liquidation(t, tick, rng));
        }
        out
    }
}

/// Probability per step of a linear liquidation.
const LIQ_PROB: f64 = 0.004;
/// Linear perpetual premium over the index.
const BASIS: f64 = 1.2e-4;

/// Bybit's state: one book per category.
#[derive(Debug)]
pub struct BybitState {
    rng: ChaCha8Rng,
    spot: CategoryState,
    linear: CategoryState,
}

impl BybitState {
    /// Fresh state (RNG stream 21 of the market seed).
    pub fn new(seed: u64) -> Self {
        let mut rng = stream_rng(seed, 21);
        let spot = CategoryState::new(Category::Spot, &mut rng);
        let linear = CategoryState::new(Category::Linear, &mut rng);
        Self { rng, spot, linear }
    }

    /// One category.
    pub fn category(&self, cat: Category) -> &CategoryState {
        match cat {
            Category::Spot => &self.spot,
            Category::Linear => &self.linear,
        }
    }
}

impl VenueModel for BybitState {
    fn step(&mut self, ctx: &StepCtx<'_>) -> Vec<VenueEvent> {
        let Self { rng, spot, linear } = self;
        let index = ctx.view(ctx.cfg.binance_lag_ms, rng);
        let mark = index * (1.0 + BASIS);
        for (c, mid) in [(&mut *spot, index), (&mut *linear, mark)] {
            c.index_usd = index;
            c.mark_usd = mid;
        }
        let mut out = spot.step(ctx, index, rng);
        out.extend(linear.step(ctx, mark, rng));
        out
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[derive(Deserialize)]
struct Request {
    op: String,
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default)]
    req_id: Option<Value>,
}

/// A Bybit public WebSocket session on one category's route.
#[derive(Debug)]
pub struct BybitSession {
    cat: Category,
    conn_id: String,
    /// Subscribed topic → market tick its snapshot covers.
    subs: BTreeMap<&'static str, u64>,
}

impl BybitSession {
    /// A session on `cat`'s route; `conn_no` seeds the `conn_id`.
    pub fn new(cat: Category, conn_no: u64) -> Self {
        Self {
            cat,
            conn_id: conn_id(conn_no),
            subs: BTreeMap::new(),
        }
    }

    fn reply(&self, success: bool, ret_msg: &str, req_id: Option<&str>, op: &str) -> Out {
        let req = req_id.map_or(String::new(), |r| format!(r#","req_id":"{}""#, escape(r)));
        Out::Text(format!(
            r#"{{"success":{success},"ret_msg":"{}","conn_id":"{}"{req},"op":"{}"}}"#,
            escape(ret_msg),
            self.conn_id,
            escape(op)
        ))
    }

    /// Validates a subscribe's topics: all known for the category and none subscribed already.
    fn check_topics(&self, args: &[Value]) -> Result<Vec<&'static str>, String> {
        let mut topics = Vec::new();
        for a in args {
            let name = a.as_str().unwrap_or("");
            let Some(t) = self.cat.topics().iter().find(|t| **t == name) else {
                return Err(format!("error:handler not found,topic:{name}"));
            };
            if self.subs.contains_key(t) {
                return Err(format!("error:already subscribed,topic:{name}"));
            }
            topics.push(*t);
        }
        if topics.is_empty() {
            return Err("Params Error".into());
        }
        Ok(topics)
    }

    fn subscribe(&mut self, args: &[Value], req_id: Option<&str>, hub: &Hub) -> Vec<Out> {
        let topics = match self.check_topics(args) {
            Ok(t) => t,
            Err(msg) => return vec![self.reply(false, &msg, req_id, "subscribe")],
        };
        let mut out = vec![self.reply(true, "subscribe", req_id, "subscribe")];
        let state = hub
            .model_state::<BybitState>(VENUE)
            .map(|s| s.category(self.cat));
        let now = hub.now_ms();
        for t in topics {
            self.subs.insert(t, hub.tick());
            let snap = match (state, t) {
                (Some(s), TOPIC_OB50) => Some(s.ob50_snapshot(now)),
                (Some(s), TOPIC_OB1) => s.ob1_frame(now),
                (Some(s), TOPIC_TICKERS) => s.ticker_snapshot(now),
                _ => None,
            };
            out.extend(snap.map(Out::Text));
        }
        out
    }
}

impl VenueSession for BybitSession {
    fn on_text(&mut self, text: &str, hub: &Hub) -> Vec<Out> {
        let req: Request = match serde_json::from_str(text) {
            Ok(r) => r,
            // Unverified wording: the venue's reply to a non-JSON / op-less frame.
            Err(_) => return vec![self.reply(false, "error:invalid request", None, "")],
        };
        let req_id = req.req_id.as_ref().map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let req_id = req_id.as_deref();
        match req.op.as_str() {
            "subscribe" => self.subscribe(&req.args, req_id, hub),
            "unsubscribe" => {
                for a in &req.args {
                    self.subs.retain(|t, _| Some(*t) != a.as_str());
                }
                vec![self.reply(true, "", req_id, "unsubscribe")]
            }
            "ping" => vec![self.reply(true, "pong", req_id, "ping")],
            // Unverified wording.
            other => vec![self.reply(
                false,
                &format!("error:unsupported op {other}"),
                req_id,
                other,
            )],
        }
    }

    fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        let key = match &ev.topic {
            Topic::Stream(k) => *k,
            Topic::Replay => return (!self.subs.is_empty()).then(|| ev.text.to_string()),
            _ => return None,
        };
        let topic = self.cat.topics().iter().find(|t| self.cat.key(t) == key)?;
        match self.subs.get(topic) {
            Some(since) if ev.tick > *since => Some(ev.text.to_string()),
            _ => None,
        }
    }
}

/// A Bybit-style connection id (`cthp2bgd1vqpp1lds2o0-l9ny`).
fn conn_id(conn_no: u64) -> String {
    const B32: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut x = conn_no.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x2545_F491_4F6C_DD1D;
    let mut s = String::with_capacity(25);
    for i in 0..24 {
        if i == 20 {
            s.push('-');
        }
        s.push(char::from(B32[(x & 31) as usize]));
        x = x.rotate_right(5) ^ conn_no.wrapping_add(i);
    }
    s
}

/// Registry: session factory (`/v5/public/spot`, `/v5/public/linear`).
pub fn open(path: &str, conn_no: u64) -> Result<(Box<dyn VenueSession>, Vec<Out>), OpenError> {
    check_route(VENUE, path, &[SPOT_PATH, LINEAR_PATH])?;
    let cat = if path.starts_with(LINEAR_PATH) {
        Category::Linear
    } else {
        Category::Spot
    };
    Ok((Box::new(BybitSession::new(cat, conn_no)), Vec::new()))
}

/// Registry: model factory.
pub fn model(seed: u64) -> Box<dyn VenueModel> {
    Box::new(BybitState::new(seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::MarketConfig;

    fn texts(out: Vec<Out>) -> Vec<Value> {
        out.into_iter()
            .map(|o| match o {
                Out::Text(t) => serde_json::from_str(&t).unwrap(),
                Out::Close(..) => panic!("close"),
            })
            .collect()
    }

    #[test]
    fn subscribe_acks_snapshots_then_deltas_continue_u() {
        let mut hub = Hub::with_venues(MarketConfig::default(), 1_795_000_000_000, &[VENUE]);
        let (mut s, first) = open(LINEAR_PATH, 3).unwrap();
        assert!(first.is_empty());
        let out = texts(s.on_text(
            r#"{"op":"subscribe","req_id":"linear-1","args":["orderbook.50.BTCUSDT","tickers.BTCUSDT"]}"#,
            &hub,
        ));
        assert_eq!(out[0]["success"], true);
        assert_eq!(out[0]["ret_msg"], "subscribe");
        assert_eq!(out[0]["req_id"], "linear-1");
        assert_eq!(out[1]["type"], "snapshot");
        assert_eq!(out[1]["data"]["b"].as_array().unwrap().len(), 50);
        assert_eq!(out[2]["topic"], TOPIC_TICKERS);
        assert!(out[2]["data"]["fundingRate"].is_string());
        let mut u = out[1]["data"]["u"].as_u64().unwrap();
        let mut deltas = 0;
        for _ in 0..100 {
            for ev in hub.step() {
                if let Some(t) = s.on_event(&ev) {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["topic"] == TOPIC_OB50 {
                        assert_eq!(v["type"], "delta");
                        assert_eq!(v["data"]["u"].as_u64().unwrap(), u + 1, "{t}");
                        u += 1;
                        deltas += 1;
                    }
                }
            }
        }
        assert!(deltas > 50, "{deltas}");
        // Errors name the topic; a second subscribe of the same topic is refused.
        let out = texts(s.on_text(
            r#"{"op":"subscribe","args":["orderbook.50.BTCUSDT"]}"#,
            &hub,
        ));
        assert_eq!(out[0]["success"], false);
        assert!(
            out[0]["ret_msg"]
                .as_str()
                .unwrap()
                .contains("already subscribed")
        );
        let out = texts(s.on_text(r#"{"op":"subscribe","args":["kline.9.BTCUSDT"]}"#, &hub));
        assert!(
            out[0]["ret_msg"]
                .as_str()
                .unwrap()
                .contains("handler not found")
        );
        let out = texts(s.on_text(r#"{"op":"ping","req_id":"hb"}"#, &hub));
        assert_eq!(out[0]["ret_msg"], "pong");
        assert_eq!(out[0]["op"], "ping");
    }

    #[test]
    fn spot_has_no_liquidations_and_linear_trades_carry_uuids() {
        let mut hub = Hub::with_venues(MarketConfig::default(), 1_795_000_000_000, &[VENUE]);
        let (mut spot, _) = open(SPOT_PATH, 1).unwrap();
        let out = texts(spot.on_text(
            r#"{"op":"subscribe","args":["allLiquidation.BTCUSDT"]}"#,
            &hub,
        ));
        assert_eq!(out[0]["success"], false);
        let (mut lin, _) = open(LINEAR_PATH, 2).unwrap();
        lin.on_text(
            r#"{"op":"subscribe","args":["publicTrade.BTCUSDT","allLiquidation.BTCUSDT"]}"#,
            &hub,
        );
        let (mut trades, mut liqs) = (0, 0);
        for _ in 0..3_000 {
            for ev in hub.step() {
                let Some(t) = lin.on_event(&ev) else { continue };
                let v: Value = serde_json::from_str(&t).unwrap();
                match v["topic"].as_str().unwrap() {
                    TOPIC_TRADE => {
                        trades += 1;
                        assert_eq!(v["data"][0]["i"].as_str().unwrap().len(), 36);
                    }
                    TOPIC_LIQ => liqs += 1,
                    other => panic!("unsubscribed {other}"),
                }
            }
        }
        assert!(trades > 100 && liqs > 0, "{trades} {liqs}");
        assert!(open("/v5/public/option", 1).is_err());
    }
}
