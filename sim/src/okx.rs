//! OKX v5 public WebSocket (`/ws/v5/public`) for spot `BTC-USDT` and the perpetual
//! `BTC-USDT-SWAP`: `books` (snapshot + updates linked by `seqId`/`prevSeqId`, each carrying the
//! signed CRC32 `checksum` over the interleaved top-25 levels), `bbo-tbt`, `trades`, `tickers`,
//! and for the SWAP `mark-price`, `funding-rate`, `open-interest`, plus `index-tickers`
//! (`BTC-USDT` index) and `liquidation-orders` (per `instType`). The `op` subscribe /
//! unsubscribe handshake answers one `event` per argument (or an `error` event with OKX's
//! codes); the literal text `ping` is answered `pong`.
//!
//! Units: prices on a 0.1 USDT grid (ladder unit = 0.1); spot sizes in 1e-8 BTC, SWAP sizes in
//! contracts of 0.01 BTC. Numbers are strings without trailing zeros, as OKX writes them.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;

use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::ladder::{Ladder, LadderParams, Side};
use crate::market::stream_rng;
use crate::session::OpenError;
use crate::util::{hex_id, trimmed};
use crate::venue::{VenueSession, check_route};

/// Spot instrument.
pub const SPOT: &str = "BTC-USDT";
/// Perpetual swap instrument.
pub const SWAP: &str = "BTC-USDT-SWAP";
/// `liquidation-orders` is subscribed per instrument type.
pub const LIQ_INST_TYPE: &str = "SWAP";
/// Levels per side covered by the checksum.
pub const CHECKSUM_DEPTH: usize = 25;
/// Observation lag of the true price, ms.
pub const LAG_MS: i64 = 50;
/// Probability per tick of a taker order on each instrument.
pub const TRADE_PROB: f64 = 0.4;
/// Probability per tick of a SWAP liquidation.
pub const LIQUIDATION_PROB: f64 = 0.003;

/// Every served `(channel, key)` (key: `instId`, or `instType` for liquidations) and its event
/// topic (`Topic::Stream`).
pub const TOPICS: [(&str, &str, &str); 13] = [
    ("books", SPOT, "books:BTC-USDT"),
    ("books", SWAP, "books:BTC-USDT-SWAP"),
    ("bbo-tbt", SPOT, "bbo-tbt:BTC-USDT"),
    ("bbo-tbt", SWAP, "bbo-tbt:BTC-USDT-SWAP"),
    ("trades", SPOT, "trades:BTC-USDT"),
    ("trades", SWAP, "trades:BTC-USDT-SWAP"),
    ("tickers", SPOT, "tickers:BTC-USDT"),
    ("tickers", SWAP, "tickers:BTC-USDT-SWAP"),
    ("mark-price", SWAP, "mark-price:BTC-USDT-SWAP"),
    ("funding-rate", SWAP, "funding-rate:BTC-USDT-SWAP"),
    ("open-interest", SWAP, "open-interest:BTC-USDT-SWAP"),
    ("index-tickers", SPOT, "index-tickers:BTC-USDT"),
    (
        "liquidation-orders",
        LIQ_INST_TYPE,
        "liquidation-orders:SWAP",
    ),
];

/// The topic of a served `(channel, key)` (`""` for anything else: matches no subscription).
fn topic(channel: &str, key: &str) -> &'static str {
    TOPICS
        .iter()
        .find(|(c, k, _)| *c == channel && *k == key)
        .map_or("", |t| t.2)
}

const SPOT_PARAMS: LadderParams = LadderParams {
    depth: 100,
    step: 1,
    max_gap_ticks: 4,
    qty_min: 1_000,
    qty_max: 300_000_000,
    perturb: 4,
    lo: 1,
    hi: i64::MAX / 4,
};

const SWAP_PARAMS: LadderParams = LadderParams {
    qty_min: 1,
    qty_max: 3_000,
    ..SPOT_PARAMS
};

/// Price text of a ladder price (0.1 USDT units).
fn px(tenths: i64) -> String {
    trimmed(tenths, 1)
}

/// One instrument's book, trade and 24 h statistics.
#[derive(Debug)]
struct Inst {
    id: &'static str,
    swap: bool,
    book: Ladder,
    seq: i64,
    next_trade_id: u64,
    last: (i64, i64),
    open: i64,
    high: i64,
    low: i64,
    vol: i64,
    top: Option<((i64, i64), (i64, i64))>,
}

impl Inst {
    fn new(id: &'static str, swap: bool, rng: &mut ChaCha8Rng) -> Self {
        Self {
            id,
            swap,
            book: Ladder::default(),
            seq: rng.random_range(10_000_000_000..20_000_000_000),
            next_trade_id: rng.random_range(500_000_000..600_000_000),
            last: (0, 0),
            open: 0,
            high: 0,
            low: i64::MAX,
            vol: 0,
            top: None,
        }
    }

    /// Size text: BTC with 8 decimals (spot) or whole contracts (SWAP).
    fn sz(&self, q: i64) -> String {
        if self.swap {
            q.to_string()
        } else {
            trimmed(q, 8)
        }
    }

    fn level(&self, p: i64, q: i64) -> [String; 4] {
        let orders = if q == 0 { 0 } else { 1 + q % 7 };
        [px(p), self.sz(q), "0".into(), orders.to_string()]
    }

    fn top_bid(&self, n: usize) -> Vec<(i64, i64)> {
        self.book
            .bids
            .iter()
            .rev()
            .take(n)
            .map(|(p, q)| (*p, *q))
            .collect()
    }

    fn top_ask(&self, n: usize) -> Vec<(i64, i64)> {
        self.book
            .asks
            .iter()
            .take(n)
            .map(|(p, q)| (*p, *q))
            .collect()
    }

    /// OKX's checksum: `bid1px:bid1sz:ask1px:ask1sz:…` over the top 25 of each side (the longer
    /// side continuing alone), CRC32 as a signed 32-bit integer.
    fn checksum(&self) -> i32 {
        let bids = self.top_bid(CHECKSUM_DEPTH);
        let asks = self.top_ask(CHECKSUM_DEPTH);
        let mut parts: Vec<String> = Vec::with_capacity(4 * CHECKSUM_DEPTH);
        for i in 0..CHECKSUM_DEPTH {
            for side in [&bids, &asks] {
                if let Some((p, q)) = side.get(i) {
                    parts.push(px(*p));
                    parts.push(self.sz(*q));
                }
            }
        }
        okx_crc(&parts.join(":"))
    }
}

/// CRC32 (IEEE) of `text` reinterpreted as a signed 32-bit integer, as OKX sends it.
#[must_use]
pub fn okx_crc(text: &str) -> i32 {
    i32::from_ne_bytes(crc32fast::hash(text.as_bytes()).to_ne_bytes())
}

#[derive(Serialize)]
struct Arg<'a> {
    channel: &'a str,
    #[serde(rename = "instId", skip_serializing_if = "Option::is_none")]
    inst_id: Option<&'a str>,
    #[serde(rename = "instType", skip_serializing_if = "Option::is_none")]
    inst_type: Option<&'a str>,
}

impl<'a> Arg<'a> {
    fn new(channel: &'a str, key: &'a str) -> Self {
        if channel == "liquidation-orders" {
            Self {
                channel,
                inst_id: None,
                inst_type: Some(key),
            }
        } else {
            Self {
                channel,
                inst_id: Some(key),
                inst_type: None,
            }
        }
    }
}

#[derive(Serialize)]
struct Push<'a, T: Serialize> {
    arg: Arg<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    data: [T; 1],
}

#[derive(Serialize)]
struct BookData {
    asks: Vec<[String; 4]>,
    bids: Vec<[String; 4]>,
    ts: String,
    checksum: i32,
    #[serde(rename = "prevSeqId")]
    prev_seq_id: i64,
    #[serde(rename = "seqId")]
    seq_id: i64,
}

#[derive(Serialize)]
struct BboData {
    asks: Vec<[String; 4]>,
    bids: Vec<[String; 4]>,
    ts: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TradeData {
    inst_id: &'static str,
    trade_id: String,
    px: String,
    sz: String,
    side: &'static str,
    ts: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TickerData {
    inst_type: &'static str,
    inst_id: &'static str,
    last: String,
    last_sz: String,
    ask_px: String,
    ask_sz: String,
    bid_px: String,
    bid_sz: String,
    open24h: String,
    high24h: String,
    low24h: String,
    sod_utc0: String,
    sod_utc8: String,
    vol_ccy24h: String,
    vol24h: String,
    ts: String,
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn push<T: Serialize>(channel: &str, key: &str, action: Option<&'static str>, data: T) -> String {
    to_json(&Push {
        arg: Arg::new(channel, key),
        action,
        data: [data],
    })
}

fn event(
    tick: u64,
    channel: &'static str,
    key: &'static str,
    seq: bool,
    text: String,
) -> VenueEvent {
    VenueEvent {
        venue: VenueId::Okx,
        tick,
        topic: Topic::Stream(topic(channel, key)),
        sequenced: seq,
        text: Arc::from(text),
    }
}

/// OKX venue state: both instruments, the index, and the latest push per snapshot channel.
#[derive(Debug)]
pub struct OkxState {
    spot: Inst,
    swap: Inst,
    /// Latest push of channels that send their current value on subscribe.
    latest: BTreeMap<(&'static str, &'static str), String>,
    open_interest: i64,
    steps: u64,
}

impl OkxState {
    /// Fresh state.
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        Self {
            spot: Inst::new(SPOT, false, rng),
            swap: Inst::new(SWAP, true, rng),
            latest: BTreeMap::new(),
            open_interest: rng.random_range(2_000_000..3_000_000),
            steps: 0,
        }
    }

    fn inst(&self, id: &str) -> Option<&Inst> {
        match id {
            SPOT => Some(&self.spot),
            SWAP => Some(&self.swap),
            _ => None,
        }
    }

    /// One market step at `t_ms`: `index_usd` is the observed BTC price; the SWAP trades at a
    /// small premium to it.
    pub fn step(
        &mut self,
        t_ms: i64,
        tick: u64,
        index_usd: f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<VenueEvent> {
        self.steps += 1;
        let mut events = Vec::new();
        let index = (index_usd * 10.0).round() as i64;
        let premium = (index as f64 * 2e-4 * (1.0 + 0.5 * crate::util::normal(rng))).round() as i64;
        let ts = t_ms.to_string();
        for (mid, swap) in [(index, false), (index + premium, true)] {
            let inst = if swap { &mut self.swap } else { &mut self.spot };
            step_inst(inst, mid, &ts, tick, rng, &mut events);
            let t = ticker_text(inst, &ts);
            self.latest.insert(("tickers", inst.id), t);
            let b = bbo_text(inst, &ts);
            self.latest.insert(("bbo-tbt", inst.id), b);
        }
        self.periodic(index, premium, t_ms, tick, rng, &mut events);
        events
    }

    /// Index, mark price, open interest, funding and liquidations.
    fn periodic(
        &mut self,
        index: i64,
        premium: i64,
        t_ms: i64,
        tick: u64,
        rng: &mut ChaCha8Rng,
        events: &mut Vec<VenueEvent>,
    ) {
        let ts = t_ms.to_string();
        let mut put = |latest: &mut BTreeMap<_, _>, ch: &'static str, key, text: String| {
            latest.insert((ch, key), text.clone());
            events.push(event(tick, ch, key, false, text));
        };
        let idx = push("index-tickers", SPOT, None, index_data(index, &ts));
        put(&mut self.latest, "index-tickers", SPOT, idx);
        if self.steps.is_multiple_of(2) {
            let mark = push(
                "mark-price",
                SWAP,
                None,
                mark_data(index + premium / 2, &ts),
            );
            put(&mut self.latest, "mark-price", SWAP, mark);
        }
        if self.steps % 30 == 1 {
            self.open_interest += rng.random_range(-2_000..=2_000);
            let oi = push(
                "open-interest",
                SWAP,
                None,
                oi_data(self.open_interest, &ts),
            );
            put(&mut self.latest, "open-interest", SWAP, oi);
        }
        if self.steps % 300 == 1 {
            let rate = premium as f64 / index.max(1) as f64 / 8.0;
            let fr = push("funding-rate", SWAP, None, funding_data(rate, t_ms));
            put(&mut self.latest, "funding-rate", SWAP, fr);
        }
        if rng.random_bool(LIQUIDATION_PROB) {
            let text = liquidation_text(index + premium, t_ms, rng);
            events.push(event(
                tick,
                "liquidation-orders",
                LIQ_INST_TYPE,
                false,
                text,
            ));
        }
    }

    /// The `books` snapshot push of `inst` (all levels kept, best first).
    pub fn book_snapshot(&self, inst: &str, t_ms: i64) -> Option<String> {
        let i = self.inst(inst)?;
        let lv = |v: Vec<(i64, i64)>| v.into_iter().map(|(p, q)| i.level(p, q)).collect();
        let data = BookData {
            asks: lv(i.top_ask(usize::MAX)),
            bids: lv(i.top_bid(usize::MAX)),
            ts: t_ms.to_string(),
            checksum: i.checksum(),
            prev_seq_id: -1,
            seq_id: i.seq,
        };
        Some(push("books", i.id, Some("snapshot"), data))
    }

    /// What a fresh subscription to `(channel, key)` gets at once.
    fn on_subscribe(&self, channel: &str, key: &str, t_ms: i64) -> Option<String> {
        if channel == "books" {
            return self.book_snapshot(key, t_ms);
        }
        self.latest
            .iter()
            .find(|((c, k), _)| *c == channel && *k == key)
            .map(|(_, t)| t.clone())
    }
}

/// Reprices one instrument, maybe trades, and pushes `books`, `bbo-tbt`, `trades`, `tickers`.
fn step_inst(
    inst: &mut Inst,
    mid: i64,
    ts: &str,
    tick: u64,
    rng: &mut ChaCha8Rng,
    events: &mut Vec<VenueEvent>,
) {
    let params = if inst.swap {
        &SWAP_PARAMS
    } else {
        &SPOT_PARAMS
    };
    let mut changes = inst.book.reprice(mid, mid + 1, params, rng);
    if inst.open == 0 {
        inst.open = mid;
    }
    let mut traded = false;
    if rng.random_bool(TRADE_PROB) {
        let buy = rng.random_bool(0.5);
        let (maker, level) = if buy {
            (Side::Ask, inst.book.best_ask())
        } else {
            (Side::Bid, inst.book.best_bid())
        };
        if let Some((p, avail)) = level {
            let q = rng
                .random_range(params.qty_min..=params.qty_max / 20)
                .min(avail);
            inst.book.fill(maker, p, q, &mut changes);
            inst.last = (p, q);
            inst.high = inst.high.max(p);
            inst.low = inst.low.min(p);
            inst.vol += q;
            let trade_id = inst.next_trade_id;
            inst.next_trade_id += 1;
            let data = TradeData {
                inst_id: inst.id,
                trade_id: trade_id.to_string(),
                px: px(p),
                sz: inst.sz(q),
                side: if buy { "buy" } else { "sell" },
                ts: ts.to_string(),
            };
            events.push(event(
                tick,
                "trades",
                inst.id,
                false,
                push("trades", inst.id, None, data),
            ));
            traded = true;
        }
    }
    if !changes.is_empty() {
        let prev = inst.seq;
        inst.seq += rng.random_range(1..=4);
        let lv = |side| {
            changes
                .iter()
                .filter(|c| c.side == side)
                .map(|c| inst.level(c.price, c.qty))
                .collect()
        };
        let data = BookData {
            asks: lv(Side::Ask),
            bids: lv(Side::Bid),
            ts: ts.to_string(),
            checksum: inst.checksum(),
            prev_seq_id: prev,
            seq_id: inst.seq,
        };
        let text = push("books", inst.id, Some("update"), data);
        events.push(event(tick, "books", inst.id, true, text));
    }
    let top = inst.book.best_bid().zip(inst.book.best_ask());
    if top != inst.top {
        inst.top = top;
        events.push(event(tick, "bbo-tbt", inst.id, false, bbo_text(inst, ts)));
    }
    if top != inst.top || traded || !changes.is_empty() {
        events.push(event(
            tick,
            "tickers",
            inst.id,
            false,
            ticker_text(inst, ts),
        ));
    }
}

fn bbo_text(inst: &Inst, ts: &str) -> String {
    let lv = |v: Vec<(i64, i64)>| v.into_iter().map(|(p, q)| inst.level(p, q)).collect();
    let data = BboData {
        asks: lv(inst.top_ask(1)),
        bids: lv(inst.top_bid(1)),
        ts: ts.to_string(),
    };
    push("bbo-tbt", inst.id, None, data)
}

fn ticker_text(inst: &Inst, ts: &str) -> String {
    let (bp, bq) = inst.book.best_bid().unwrap_or((0, 0));
    let (ap, aq) = inst.book.best_ask().unwrap_or((0, 0));
    let last = if inst.last.0 == 0 { (bp, 0) } else { inst.last };
    let vol_btc = if inst.swap {
        inst.vol
    } else {
        inst.vol / 1_000_000
    };
    let data = TickerData {
        inst_type: if inst.swap { "SWAP" } else { "SPOT" },
        inst_id: inst.id,
        last: px(last.0),
        last_sz: inst.sz(last.1),
        ask_px: px(ap),
        ask_sz: inst.sz(aq),
        bid_px: px(bp),
        bid_sz: inst.sz(bq),
        open24h: px(inst.open),
        high24h: px(inst.high.max(last.0)),
        low24h: px(inst.low.min(last.0)),
        sod_utc0: px(inst.open),
        sod_utc8: px(inst.open),
        vol_ccy24h: trimmed(vol_btc * last.0 / 10, 2),
        vol24h: inst.sz(inst.vol),
        ts: ts.to_string(),
    };
    push("tickers", inst.id, None, data)
}

fn index_data(index: i64, ts: &str) -> Value {
    serde_json::json!({
        "instId": SPOT, "idxPx": px(index), "open24h": px(index), "high24h": px(index),
        "low24h": px(index), "sodUtc0": px(index), "sodUtc8": px(index), "ts": ts,
    })
}

fn mark_data(mark: i64, ts: &str) -> Value {
    serde_json::json!({ "instId": SWAP, "instType": "SWAP", "markPx": px(mark), "ts": ts })
}

fn oi_data(contracts: i64, ts: &str) -> Value {
    // 1 contract = 0.01 BTC.
    serde_json::json!({
        "instId": SWAP, "instType": "SWAP", "oi": contracts.to_string(),
        "oiCcy": trimmed(contracts, 2), "ts": ts,
    })
}

fn funding_data(rate: f64, t_ms: i64) -> Value {
    const EIGHT_H_MS: i64 = 8 * 3_600_000;
    let next = (t_ms.div_euclid(EIGHT_H_MS) + 1) * EIGHT_H_MS;
    let rate = rate.clamp(-0.0075, 0.0075);
    // The recorded shape (corpus okx/funding-rate.jsonl line 1).
    serde_json::json!({
        "fundingRate": format!("{rate:.16}"), "fundingTime": next.to_string(), "instId": SWAP,
        "instType": "SWAP", "nextFundingRate": format!("{:.16}", rate * 0.9),
    })
}

fn liquidation_text(mark: i64, t_ms: i64, rng: &mut ChaCha8Rng) -> String {
    let long = rng.random_bool(0.5);
    let bk = if long { mark - 50 } else { mark + 50 };
    let data = serde_json::json!({
        "details": [{
            "bkLoss": "0", "bkPx": px(bk), "ccy": "", "posSide": if long { "long" } else { "short" },
            "side": if long { "sell" } else { "buy" },
            "sz": rng.random_range(1..=500).to_string(), "ts": t_ms.to_string(),
        }],
        "instFamily": "BTC-USDT", "instId": SWAP, "instType": "SWAP", "uly": "BTC-USDT",
    });
    push("liquidation-orders", LIQ_INST_TYPE, None, data)
}

/// An OKX public-channel session.
#[derive(Debug)]
pub struct OkxSession {
    conn_id: String,
    /// Topic → tick of the ack (earlier events are dropped).
    subs: BTreeMap<&'static str, u64>,
}

#[derive(Serialize)]
struct Ack<'a> {
    event: &'a str,
    arg: Arg<'a>,
    #[serde(rename = "connId")]
    conn_id: &'a str,
}

#[derive(Serialize)]
struct ErrorEvent<'a> {
    event: &'static str,
    code: &'a str,
    msg: &'a str,
    #[serde(rename = "connId")]
    conn_id: &'a str,
}

/// OKX's error event.
fn error(code: &str, msg: &str, conn_id: &str) -> Out {
    Out::Text(to_json(&ErrorEvent {
        event: "error",
        code,
        msg,
        conn_id,
    }))
}

/// The served `(channel, key, topic)` named by a subscription argument, if any.
fn lookup(arg: &Value) -> Option<(&'static str, &'static str, &'static str)> {
    let channel = arg.get("channel")?.as_str()?;
    let key_name = if channel == "liquidation-orders" {
        "instType"
    } else {
        "instId"
    };
    let key = arg.get(key_name)?.as_str()?;
    TOPICS
        .iter()
        .find(|(c, k, _)| *c == channel && *k == key)
        .copied()
}

impl OkxSession {
    /// A session for connection number `conn_no` (its `connId`).
    pub fn open(conn_no: u64) -> Self {
        let mut rng = stream_rng(conn_no, 1_000);
        Self {
            conn_id: hex_id(&mut rng, 8),
            subs: BTreeMap::new(),
        }
    }

    /// Whether anything is subscribed.
    pub fn has_subscription(&self) -> bool {
        !self.subs.is_empty()
    }

    /// Handle a client text frame (`state` is `None` in replay mode).
    pub fn on_text(
        &mut self,
        text: &str,
        state: Option<&OkxState>,
        tick: u64,
        now_ms: i64,
    ) -> Vec<Out> {
        if text == "ping" {
            return vec![Out::Text("pong".into())];
        }
        let invalid = || error("60012", &format!("Invalid request: {text}"), &self.conn_id);
        let Ok(req) = serde_json::from_str::<Value>(text) else {
            return vec![invalid()];
        };
        let op = req.get("op").and_then(Value::as_str).unwrap_or("");
        let args = req.get("args").and_then(Value::as_array);
        let (subscribe, Some(args)) = (op == "subscribe", args) else {
            return vec![invalid()];
        };
        if !subscribe && op != "unsubscribe" || args.is_empty() {
            return vec![invalid()];
        }
        let mut out = Vec::new();
        for arg in args {
            let Some((ch, key, topic)) = lookup(arg) else {
                let msg = format!(
                    "Wrong URL or channel:{}, doesn't exist. Please use the correct URL, channel and parameters referring to API document.",
                    arg.get("channel").and_then(Value::as_str).unwrap_or("")
                );
                out.push(error("60018", &msg, &self.conn_id));
                continue;
            };
            let ack = Ack {
                event: op,
                arg: Arg::new(ch, key),
                conn_id: &self.conn_id,
            };
            out.push(Out::Text(to_json(&ack)));
            if !subscribe {
                self.subs.remove(topic);
                continue;
            }
            let fresh = self.subs.insert(topic, tick).is_none();
            if fresh && let Some(snap) = state.and_then(|s| s.on_subscribe(ch, key, now_ms)) {
                out.push(Out::Text(snap));
            }
        }
        out
    }

    /// Filter a market event.
    pub fn on_event(&self, ev: &VenueEvent) -> Option<String> {
        crate::walked::forward(&self.subs, ev)
    }
}

/// Registry session factory: the public WebSocket at `/ws/v5/public`.
pub fn open(path: &str, conn_no: u64) -> Result<(Box<dyn VenueSession>, Vec<Out>), OpenError> {
    check_route(VenueId::Okx, path, &["/ws/v5/public"])?;
    Ok((Box::new(OkxSession::open(conn_no)), Vec::new()))
}

walked_venue! {
    state: OkxState,
    session: OkxSession,
    venue: VenueId::Okx,
    rng_stream: 20,
    checksummed: |t| t.starts_with("books:"),
}

/// The message with the integer after its first `"checksum":` replaced by a different one
/// (bitwise complement; kept a valid signed 32-bit / unsigned value for its venue's shape).
pub(crate) fn spoil_checksum(text: &str) -> Option<String> {
    const KEY: &str = "\"checksum\":";
    let start = text.find(KEY)? + KEY.len();
    let rest = &text[start..];
    let len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    let value: i64 = rest[..len].parse().ok()?;
    let spoiled = if value < 0 {
        i64::from(!(value as i32))
    } else if value > i64::from(i32::MAX) {
        i64::from(!(value as u32))
    } else {
        value ^ 1
    };
    Some(format!("{}{}{}", &text[..start], spoiled, &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::harness::{Mangle, Rig, scaled};
    use super::*;

    #[test]
    fn crc_is_zlib_crc32_read_as_signed() {
        // zlib.crc32(b"3366.1:7:3366.8:9:3366:6:3368:8") = 2413953002 = -1881014294 as i32.
        assert_eq!(okx_crc("3366.1:7:3366.8:9:3366:6:3368:8"), -1_881_014_294);
    }

    #[test]
    fn checksum_matches_a_recorded_okx_snapshot() {
        // Corpus okx/books_checksum_sequence_btcusdt.jsonl line 1 (recorded), top 25 per side.
        let mut rng = stream_rng(1, 1);
        let mut inst = Inst::new(SPOT, false, &mut rng);
        inst.book.bids.extend([
            (302434, 120290),
            (302366, 790300),
            (302361, 5452000),
            (302359, 10160000),
            (302350, 20000),
            (302341, 16000000),
            (302340, 7239171),
            (302339, 79685801),
            (302320, 1000000),
            (302308, 28156443),
            (302302, 85000000),
            (302301, 12784965),
            (302293, 798335),
            (302292, 504689973),
            (302289, 7189416),
            (302287, 85286652),
            (302286, 1223199),
            (302277, 16000000),
            (302268, 12158052),
            (302252, 2098000),
            (302251, 5000000),
            (302248, 1137000),
            (302234, 33086945),
            (302228, 12000000),
            (302225, 662176),
        ]);
        inst.book.asks.extend([
            (302435, 144679000),
            (302440, 8000000),
            (302461, 5426064),
            (302475, 63500000),
            (302481, 1320000),
            (302491, 9999997),
            (302494, 16562579),
            (302497, 6523858),
            (302518, 47612),
            (302519, 18080000),
            (302523, 27412546),
            (302526, 1648681),
            (302529, 19984000),
            (302540, 5000000),
            (302550, 16000000),
            (302552, 4844827),
            (302570, 2484658),
            (302571, 93333757),
            (302581, 16000000),
            (302595, 52769),
            (302596, 10000000),
            (302603, 4632884),
            (302604, 28027349),
            (302605, 74399463),
            (302610, 3000000),
        ]);
        assert_eq!(i64::from(inst.checksum()), 47640993);
    }

    #[test]
    fn spoils_only_the_checksum() {
        let t = r#"{"data":[{"ts":"1","checksum":-5,"seqId":3}]}"#;
        assert_eq!(
            spoil_checksum(t).unwrap(),
            r#"{"data":[{"ts":"1","checksum":4,"seqId":3}]}"#
        );
        let k = r#"{"checksum":3310070434,"x":1}"#;
        assert_eq!(
            spoil_checksum(k).unwrap(),
            r#"{"checksum":984896861,"x":1}"#
        );
    }

    fn warm() -> (OkxState, ChaCha8Rng) {
        let mut rng = stream_rng(3, 20);
        let mut st = OkxState::new(&mut rng);
        for k in 1..=50 {
            st.step(k * 100, k as u64, 97_000.0, &mut rng);
        }
        (st, rng)
    }

    #[test]
    fn subscribe_acks_errors_and_ping() {
        let (st, _) = warm();
        let mut s = OkxSession::open(1);
        assert_eq!(
            s.on_text("ping", Some(&st), 50, 5_000),
            vec![Out::Text("pong".into())]
        );
        let out = s.on_text(
            r#"{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},{"channel":"books","instId":"BTC-XYZ"},{"channel":"liquidation-orders","instType":"SWAP"}]}"#,
            Some(&st),
            50,
            5_000,
        );
        let texts: Vec<String> = out
            .into_iter()
            .map(|o| match o {
                Out::Text(t) => t,
                Out::Close(..) => String::new(),
            })
            .collect();
        assert_eq!(texts.len(), 4, "{texts:?}");
        assert!(texts[0].starts_with(
            r#"{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":""#
        ));
        assert!(
            texts[1].starts_with(
                r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot""#
            )
        );
        assert!(texts[2].contains(r#""code":"60018""#));
        assert!(texts[3].contains(r#""instType":"SWAP""#));
        let bad = s.on_text("{nope", Some(&st), 50, 5_000);
        assert!(matches!(&bad[0], Out::Text(t) if t.contains(r#""code":"60012""#)));
    }

    #[test]
    fn ringbolt_adapter_rebuilds_both_books_and_catches_gap_and_checksum_faults() {
        let venue = ringbolt_bus::Venue::Okx;
        let mut r = Rig::new(3, 50, OkxSession::open(2), venue, "books:BTC-USDT");
        r.subscribe(&[SPOT, SWAP]);
        r.send(r#"{"op":"subscribe","args":[{"channel":"index-tickers","instId":"BTC-USDT"},{"channel":"liquidation-orders","instType":"SWAP"}]}"#);
        r.run(600, Mangle::Keep);
        let t = r.c.total();
        assert_eq!(
            (t.parse_errors, t.gaps, t.checksum_errors),
            (0, 0, 0),
            "{t:?}"
        );
        assert_eq!(t.resyncs, 2, "one snapshot per book");
        for (inst, size_e8) in [(&r.st.spot, 1), (&r.st.swap, 100_000_000)] {
            let (bids, asks) = r.c.book(inst.id);
            assert_eq!(
                bids,
                scaled(&inst.book.bids, true, usize::MAX, 10_000_000, size_e8)
            );
            assert_eq!(
                asks,
                scaled(&inst.book.asks, false, usize::MAX, 10_000_000, size_e8)
            );
            assert!(bids.len() >= 90, "{}", bids.len());
        }
        let trades = r.count::<ringbolt_bus::Trade>();
        let funding = r.count::<ringbolt_bus::Funding>();
        let index = r.count::<ringbolt_bus::IndexPrice>();
        assert!(
            trades > 300 && funding >= 2 && index > 600,
            "{trades} {funding} {index}"
        );
        // A lost update: the next one's prevSeqId breaks the chain → resubscribe → fresh snapshot.
        r.run(30, Mangle::Drop);
        let t = r.c.total();
        // (The adapter also counts the checksum that no longer matches its book.)
        assert_eq!((t.gaps, t.checksum_errors, t.resyncs), (1, 1, 3), "{t:?}");
        // A spoiled checksum: counted, resubscribed, resynced, book right again.
        r.run(30, Mangle::Spoil);
        let t = r.c.total();
        assert_eq!((t.gaps, t.checksum_errors, t.resyncs), (2, 2, 4), "{t:?}");
        let (bids, _) = r.c.book(SPOT);
        assert_eq!(
            bids,
            scaled(&r.st.spot.book.bids, true, usize::MAX, 10_000_000, 1)
        );
    }
}

/// Test harness shared by the venue modules: ringbolt's own adapter (through its
/// [`ringbolt_feeds::FrameDriver`]) as the client of an emulated session.
#[cfg(test)]
pub(crate) mod harness {
    use std::collections::BTreeMap;

    use rand_chacha::ChaCha8Rng;
    use ringbolt_bus::{Body, BookLevel, FLAG_BATCH_BEGIN, FLAG_SNAPSHOT, Record, Side, Venue};
    use ringbolt_feeds::adapter::{Action, Outgoing};
    use ringbolt_feeds::{FrameDriver, StreamCounters, SyncMode};

    use crate::event::{Out, Topic, VenueEvent};
    use crate::market::stream_rng;
    use crate::walked::Stepped;

    /// A sans-IO venue session as the [`Rig`] drives it.
    pub(crate) trait Peer {
        /// Its venue state.
        type State: Stepped;
        /// The session's `on_event`.
        fn event(&mut self, ev: &VenueEvent) -> Option<String>;
        /// The session's `on_text` with the state.
        fn text(&mut self, text: &str, st: &Self::State, tick: u64, now_ms: i64) -> Vec<Out>;
    }

    /// A venue state, one session of it, and ringbolt's adapter as the session's client.
    pub(crate) struct Rig<P: Peer> {
        pub(crate) st: P::State,
        rng: ChaCha8Rng,
        pub(crate) s: P,
        pub(crate) c: Client,
        tick: u64,
        book: &'static str,
    }

    impl<P: Peer> Rig<P> {
        /// A fresh state from `seed` stepped `warm` ticks at 97 000 USD, then `s` and a client;
        /// a [`Mangle`] applies to the book updates of topic `book`.
        pub(crate) fn new(seed: u64, warm: u64, s: P, venue: Venue, book: &'static str) -> Self {
            let mut rng = stream_rng(seed, P::State::RNG_STREAM);
            let mut st = P::State::fresh(&mut rng);
            for tick in 1..=warm {
                st.advance(tick as i64 * 100, tick, 97_000.0, &mut rng);
            }
            Self {
                st,
                rng,
                s,
                c: Client::new(venue),
                tick: warm,
                book,
            }
        }

        /// A client frame to the session; its answers to the client.
        pub(crate) fn send(&mut self, text: &str) {
            let out = self
                .s
                .text(text, &self.st, self.tick, self.tick as i64 * 100);
            self.c.feed_outs(out);
        }

        /// The adapter's subscribe frames for `symbols`, sent.
        pub(crate) fn subscribe(&mut self, symbols: &[&str]) {
            for f in self.c.subscribe(symbols) {
                self.send(&f);
            }
        }

        /// Steps `n` ticks at 97 000 USD, forwarding what the session sends and what the adapter
        /// answers; `mangle` applies to the first `book` update.
        pub(crate) fn run(&mut self, n: u64, mut mangle: Mangle) {
            for _ in 0..n {
                self.tick += 1;
                let t_ms = self.tick as i64 * 100;
                for ev in self.st.advance(t_ms, self.tick, 97_000.0, &mut self.rng) {
                    let Some(mut t) = self.s.event(&ev) else {
                        continue;
                    };
                    if ev.topic == Topic::Stream(self.book) {
                        let Some(m) = mangle.apply(t) else { continue };
                        t = m;
                    }
                    self.c.feed(&t);
                }
                for f in self.c.take_sends() {
                    self.send(&f);
                }
            }
        }

        /// Records with a body of kind `B` emitted so far.
        pub(crate) fn count<B: Body>(&self) -> usize {
            self.c
                .recs
                .iter()
                .filter(|r| r.body_as::<B>().is_some())
                .count()
        }
    }

    /// What happens to the first book update a test run forwards.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Mangle {
        /// Sent as is.
        Keep,
        /// Lost (a sequence gap).
        Drop,
        /// Sent with a wrong checksum (as the `checksum` fault does).
        Spoil,
    }

    impl Mangle {
        /// The book update `text` as the client gets it (`None`: lost); disarms after one.
        pub(crate) fn apply(&mut self, text: String) -> Option<String> {
            let m = std::mem::replace(self, Mangle::Keep);
            match m {
                Mangle::Keep => Some(text),
                Mangle::Drop => None,
                Mangle::Spoil => super::spoil_checksum(&text),
            }
        }
    }

    /// One side of a reconstructed book: price e8 → size e8.
    pub(crate) type SideMap = BTreeMap<i64, i64>;

    /// The adapter under test and everything it emitted.
    pub(crate) struct Client {
        pub(crate) driver: FrameDriver,
        pub(crate) recs: Vec<Record>,
        pub(crate) frames: u64,
    }

    impl Client {
        pub(crate) fn new(venue: Venue) -> Self {
            Self {
                driver: FrameDriver::new(venue, SyncMode::Enforce, true).expect("adapter"),
                recs: Vec::new(),
                frames: 0,
            }
        }

        /// The adapter's subscribe frames for `symbols`.
        pub(crate) fn subscribe(&self, symbols: &[&str]) -> Vec<String> {
            texts(self.driver.adapter.subscribe(symbols))
        }

        pub(crate) fn feed(&mut self, text: &str) {
            self.frames += 1;
            let _ = self.driver.frame(text.as_bytes(), 1, &mut self.recs);
        }

        pub(crate) fn feed_outs(&mut self, outs: Vec<Out>) {
            for o in outs {
                if let Out::Text(t) = o {
                    self.feed(&t);
                }
            }
        }

        /// The frames the adapter queued (answers and resubscriptions), oldest first.
        pub(crate) fn take_sends(&mut self) -> Vec<String> {
            let mut out = Vec::new();
            for a in self.driver.actions.drain(..) {
                match a {
                    Action::Send(o) => out.extend(texts(vec![o])),
                    Action::Resubscribe(v) => out.extend(texts(v)),
                    Action::Fetch(_) | Action::Reconnect => {}
                }
            }
            out
        }

        pub(crate) fn total(&self) -> StreamCounters {
            self.driver.counters.total()
        }

        /// The book of `symbol` rebuilt from the emitted BookLevel records.
        pub(crate) fn book(&self, symbol: &str) -> (SideMap, SideMap) {
            let (mut bids, mut asks) = (SideMap::new(), SideMap::new());
            for r in &self.recs {
                let Some(l) = r.body_as::<BookLevel>() else {
                    continue;
                };
                if self.driver.instrument_name(r.instrument) != symbol {
                    continue;
                }
                if r.flags & FLAG_SNAPSHOT != 0 && r.flags & FLAG_BATCH_BEGIN != 0 {
                    bids.clear();
                    asks.clear();
                }
                let side = match Side::from_u8(l.side) {
                    Some(Side::Buy) => &mut bids,
                    Some(Side::Sell) => &mut asks,
                    _ => continue,
                };
                if l.size == 0 {
                    side.remove(&l.price);
                } else {
                    side.insert(l.price, l.size);
                }
            }
            (bids, asks)
        }
    }

    fn texts(v: Vec<Outgoing>) -> Vec<String> {
        v.into_iter()
            .filter_map(|o| o.text().and_then(|b| String::from_utf8(b.to_vec()).ok()))
            .collect()
    }

    /// A ladder side scaled to e8 (`price_e8` and `size_e8` per ladder unit), best `n` levels.
    pub(crate) fn scaled(
        side: &BTreeMap<i64, i64>,
        bids: bool,
        n: usize,
        price_e8: i64,
        size_e8: i64,
    ) -> SideMap {
        let it: Box<dyn Iterator<Item = (&i64, &i64)>> = if bids {
            Box::new(side.iter().rev())
        } else {
            Box::new(side.iter())
        };
        it.take(n)
            .map(|(p, q)| (p * price_e8, q * size_e8))
            .collect()
    }
}
