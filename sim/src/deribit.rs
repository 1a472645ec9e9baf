//! Deribit JSON-RPC 2.0 over WebSocket (`/ws/api/v2`) for `BTC-PERPETUAL` and the BTC index:
//! `public/subscribe` / `public/unsubscribe` to `book.BTC-PERPETUAL.100ms` (snapshot, then
//! `change` notifications linked by `change_id` / `prev_change_id`), `trades.BTC-PERPETUAL.100ms`
//! (`trade_seq` +1), `ticker.BTC-PERPETUAL.100ms`, `quote.BTC-PERPETUAL`,
//! `deribit_price_index.btc_usd` and the DVOL `deribit_volatility_index.btc_usd`;
//! `public/set_heartbeat` followed by `heartbeat` `test_request`s every interval, which the
//! client answers with `public/test`. `.raw` channels need an authorised connection and are
//! refused as Deribit refuses them; unknown channels are left out of the subscribe result.
//!
//! Units: prices on a 0.5 USD grid (ladder unit = 0.5 USD); amounts in USD, multiples of the
//! 10-USD contract. Numbers are JSON numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::ladder::{Change, Ladder, LadderParams, Side};
use crate::session::OpenError;
use crate::venue::{VenueSession, check_route};

/// The only instrument served.
pub const INSTRUMENT: &str = "BTC-PERPETUAL";
/// Channels served.
pub const CHANNELS: [&str; 6] = [
    "book.BTC-PERPETUAL.100ms",
    "trades.BTC-PERPETUAL.100ms",
    "ticker.BTC-PERPETUAL.100ms",
    "quote.BTC-PERPETUAL",
    "deribit_price_index.btc_usd",
    "deribit_volatility_index.btc_usd",
];
const BOOK: &str = CHANNELS[0];
const TRADES: &str = CHANNELS[1];
const TICKER: &str = CHANNELS[2];
const QUOTE: &str = CHANNELS[3];
const INDEX: &str = CHANNELS[4];
const DVOL: &str = CHANNELS[5];
/// The topic of the once-a-second heartbeat clock (each session turns it into a
/// `test_request` every interval it set).
const CLOCK: &str = "heartbeat";
const TEST_REQUEST: &str =
    "{\"jsonrpc\":\"2.0\",\"method\":\"heartbeat\",\"params\":{\"type\":\"test_request\"}}";
/// Observation lag of the true price, ms.
pub const LAG_MS: i64 = 80;
/// Probability per tick of a taker order.
pub const TRADE_PROB: f64 = 0.35;
/// Smallest heartbeat interval Deribit accepts, s.
pub const MIN_HEARTBEAT_S: u64 = 10;

const PARAMS: LadderParams = LadderParams {
    depth: 60,
    step: 1,
    max_gap_ticks: 3,
    qty_min: 1,
    qty_max: 30_000,
    perturb: 4,
    lo: 1,
    hi: i64::MAX / 4,
};

/// Price number text of a ladder price (0.5 USD units): `37240.0`, `37240.5`.
fn px(halves: i64) -> String {
    format!("{}.{}", halves / 2, if halves % 2 == 0 { 0 } else { 5 })
}
/// Amount number text of a ladder quantity (10-USD contracts).
fn amount(contracts: i64) -> String {
    format!("{}.0", contracts * 10)
}

fn notification(channel: &str, data: &str) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{{\"channel\":\"{channel}\",\"data\":{data}}}}}"
    )
}

fn event(tick: u64, topic: &'static str, sequenced: bool, text: String) -> VenueEvent {
    VenueEvent {
        venue: VenueId::Deribit,
        tick,
        topic: Topic::Stream(topic),
        sequenced,
        text: Arc::from(text),
    }
}

/// `[["new",37240.0,20.0],…]`.
fn levels_json(out: &mut String, levels: impl Iterator<Item = (&'static str, i64, i64)>) {
    out.push('[');
    for (i, (action, p, q)) in levels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[\"{action}\",{},{}]", px(p), amount(q));
    }
    out.push(']');
}

/// Deribit BTC-PERPETUAL venue state.
#[derive(Debug)]
pub struct DeribitState {
    book: Ladder,
    change_id: u64,
    trade_seq: u64,
    next_trade_id: u64,
    index: i64,
    mark: i64,
    last: i64,
    open_interest: i64,
    volume_usd: i64,
    quote: Option<((i64, i64), (i64, i64))>,
    t_ms: i64,
    steps: u64,
}

impl DeribitState {
    /// Fresh state.
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        Self {
            book: Ladder::default(),
            change_id: rng.random_range(70_000_000_000..80_000_000_000),
            trade_seq: rng.random_range(150_000_000..160_000_000),
            next_trade_id: rng.random_range(300_000_000..310_000_000),
            index: 0,
            mark: 0,
            last: 0,
            open_interest: rng.random_range(900_000_000..1_100_000_000),
            volume_usd: 0,
            quote: None,
            t_ms: 0,
            steps: 0,
        }
    }

    /// One market step at `t_ms`; `index_usd` is the observed BTC index.
    pub fn step(
        &mut self,
        t_ms: i64,
        tick: u64,
        index_usd: f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<VenueEvent> {
        self.t_ms = t_ms;
        self.steps += 1;
        let mut events = Vec::new();
        self.index = (index_usd * 2.0).round() as i64;
        self.mark = self.index + rng.random_range(-2..=4);
        let mid = self.mark;
        let before: BTreeMap<(Side, i64), ()> =
            self.levels().map(|(s, p, _)| ((s, p), ())).collect();
        let mut changes = self.book.reprice(mid, mid + 1, &PARAMS, rng);
        if rng.random_bool(TRADE_PROB) {
            self.trade(tick, rng, &mut changes, &mut events);
        }
        if !changes.is_empty() {
            let prev = self.change_id;
            self.change_id += rng.random_range(1..=6);
            let text = self.change_json(prev, &changes, &before);
            events.push(event(tick, BOOK, true, text));
        }
        let quote = self.book.best_bid().zip(self.book.best_ask());
        if quote != self.quote {
            self.quote = quote;
            events.push(event(tick, QUOTE, false, self.quote_json()));
        }
        events.push(event(tick, TICKER, false, self.ticker_json()));
        if self.steps.is_multiple_of(10) {
            events.push(event(tick, INDEX, false, self.index_json()));
            events.push(event(tick, DVOL, false, dvol_json(t_ms, rng)));
            events.push(event(tick, CLOCK, false, TEST_REQUEST.into()));
        }
        events
    }

    fn levels(&self) -> impl Iterator<Item = (Side, i64, i64)> + '_ {
        let bids = self.book.bids.iter().map(|(p, q)| (Side::Bid, *p, *q));
        bids.chain(self.book.asks.iter().map(|(p, q)| (Side::Ask, *p, *q)))
    }

    fn trade(
        &mut self,
        tick: u64,
        rng: &mut ChaCha8Rng,
        changes: &mut Vec<Change>,
        events: &mut Vec<VenueEvent>,
    ) {
        let buy = rng.random_bool(0.5);
        let (maker, level) = if buy {
            (Side::Ask, self.book.best_ask())
        } else {
            (Side::Bid, self.book.best_bid())
        };
        let Some((price, avail)) = level else { return };
        let q = rng.random_range(1..=2_000).min(avail);
        self.book.fill(maker, price, q, changes);
        self.trade_seq += 1;
        let id = self.next_trade_id;
        self.next_trade_id += 1;
        self.last = price;
        self.volume_usd += q * 10;
        self.open_interest += if rng.random_bool(0.5) {
            q * 10
        } else {
            -q * 10
        };
        // A liquidation print carries `liquidation` where others carry `mark_price` (the
        // recorded shapes, corpus deribit/trades.jsonl lines 2 and 3).
        let middle = if rng.random_bool(0.01) {
            ",\"liquidation\":\"T\"".to_string()
        } else {
            format!(",\"mark_price\":{}", px(self.mark))
        };
        let data = format!(
            "[{{\"trade_seq\":{},\"trade_id\":\"{id}\",\"timestamp\":{},\"tick_direction\":{},\"price\":{}{middle},\"instrument_name\":\"{INSTRUMENT}\",\"index_price\":{},\"direction\":\"{}\",\"amount\":{}}}]",
            self.trade_seq,
            self.t_ms,
            if buy { 0 } else { 2 },
            px(price),
            px(self.index),
            if buy { "buy" } else { "sell" },
            amount(q)
        );
        events.push(event(tick, TRADES, true, notification(TRADES, &data)));
    }

    fn change_json(
        &self,
        prev: u64,
        changes: &[Change],
        before: &BTreeMap<(Side, i64), ()>,
    ) -> String {
        let mut s = format!(
            "{{\"type\":\"change\",\"timestamp\":{},\"prev_change_id\":{prev},\"instrument_name\":\"{INSTRUMENT}\",\"change_id\":{},\"bids\":",
            self.t_ms, self.change_id
        );
        for (i, side) in [Side::Bid, Side::Ask].into_iter().enumerate() {
            if i == 1 {
                s.push_str(",\"asks\":");
            }
            let rows = changes.iter().filter(|c| c.side == side).map(|c| {
                let action = match (c.qty, before.contains_key(&(c.side, c.price))) {
                    (0, _) => "delete",
                    (_, true) => "change",
                    (_, false) => "new",
                };
                (action, c.price, c.qty)
            });
            levels_json(&mut s, rows);
        }
        s.push('}');
        notification(BOOK, &s)
    }

    /// The book snapshot notification (best first).
    #[must_use]
    pub fn book_snapshot(&self) -> String {
        let mut s = format!(
            "{{\"type\":\"snapshot\",\"timestamp\":{},\"instrument_name\":\"{INSTRUMENT}\",\"change_id\":{},\"bids\":",
            self.t_ms, self.change_id
        );
        levels_json(
            &mut s,
            self.book.bids.iter().rev().map(|(p, q)| ("new", *p, *q)),
        );
        s.push_str(",\"asks\":");
        levels_json(&mut s, self.book.asks.iter().map(|(p, q)| ("new", *p, *q)));
        s.push('}');
        notification(BOOK, &s)
    }

    fn top(&self) -> ((i64, i64), (i64, i64)) {
        (
            self.book.best_bid().unwrap_or((0, 0)),
            self.book.best_ask().unwrap_or((0, 0)),
        )
    }

    fn quote_json(&self) -> String {
        let ((bp, bq), (ap, aq)) = self.top();
        let data = format!(
            "{{\"timestamp\":{},\"instrument_name\":\"{INSTRUMENT}\",\"best_bid_price\":{},\"best_bid_amount\":{},\"best_ask_price\":{},\"best_ask_amount\":{}}}",
            self.t_ms,
            px(bp),
            amount(bq),
            px(ap),
            amount(aq)
        );
        notification(QUOTE, &data)
    }

    fn ticker_json(&self) -> String {
        let ((bp, bq), (ap, aq)) = self.top();
        let funding = (self.mark - self.index) as f64 / self.index.max(1) as f64;
        let last = if self.last == 0 { self.mark } else { self.last };
        let data = format!(
            "{{\"timestamp\":{},\"stats\":{{\"volume_usd\":{}.0,\"volume\":{:.8},\"price_change\":0.0,\"low\":{},\"high\":{}}},\"state\":\"open\",\"settlement_price\":{},\"open_interest\":{},\"min_price\":{},\"max_price\":{},\"mark_price\":{},\"last_price\":{},\"instrument_name\":\"{INSTRUMENT}\",\"index_price\":{},\"funding_8h\":{:.8},\"estimated_delivery_price\":{},\"current_funding\":{:.8},\"best_bid_price\":{},\"best_bid_amount\":{},\"best_ask_price\":{},\"best_ask_amount\":{}}}",
            self.t_ms,
            self.volume_usd,
            self.volume_usd as f64 * 2.0 / self.index.max(1) as f64,
            px(last.min(self.mark)),
            px(last.max(self.mark)),
            px(self.index),
            self.open_interest,
            px(self.mark * 99 / 100),
            px(self.mark * 101 / 100),
            px(self.mark),
            px(last),
            px(self.index),
            funding / 3.0,
            px(self.index),
            funding,
            px(bp),
            amount(bq),
            px(ap),
            amount(aq)
        );
        notification(TICKER, &data)
    }

    fn index_json(&self) -> String {
        let data = format!(
            "{{\"timestamp\":{},\"price\":{},\"index_name\":\"btc_usd\"}}",
            self.t_ms,
            px(self.index)
        );
        notification(INDEX, &data)
    }

    /// What a fresh subscription to `channel` gets at once.
    fn on_subscribe(&self, channel: &str) -> Option<String> {
        match channel {
            BOOK => Some(self.book_snapshot()),
            TICKER => Some(self.ticker_json()),
            QUOTE => Some(self.quote_json()),
            INDEX => Some(self.index_json()),
            _ => None,
        }
    }
}

fn dvol_json(t_ms: i64, rng: &mut ChaCha8Rng) -> String {
    let vol = 45.0 + rng.random_range(-0.5..0.5);
    let data =
        format!("{{\"timestamp\":{t_ms},\"volatility\":{vol:.2},\"index_name\":\"btc_usd\"}}");
    notification(DVOL, &data)
}

/// A Deribit JSON-RPC session.
#[derive(Debug, Default)]
pub struct DeribitSession {
    /// Channel → tick of the subscribe result.
    subs: BTreeMap<&'static str, u64>,
    heartbeat_s: Option<u64>,
    clock_s: u64,
    test_requests: u64,
    tests_answered: u64,
}

/// A JSON-RPC response (`result` or `error` is `body`, without braces), with Deribit's timing.
fn response(id: &Value, body: &str, now_ms: i64) -> Out {
    let us = now_ms * 1000;
    Out::Text(format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},{body},\"usIn\":{us},\"usOut\":{},\"usDiff\":7,\"testnet\":false}}",
        us + 7
    ))
}

fn rpc_error(id: &Value, code: i64, message: &str, now_ms: i64) -> Out {
    response(
        id,
        &format!(
            "\"error\":{{\"message\":{},\"code\":{code}}}",
            Value::from(message)
        ),
        now_ms,
    )
}

impl DeribitSession {
    /// Whether anything is subscribed.
    pub fn has_subscription(&self) -> bool {
        !self.subs.is_empty()
    }

    /// `(test_requests sent, public/test answers received)`.
    pub fn heartbeat_counts(&self) -> (u64, u64) {
        (self.test_requests, self.tests_answered)
    }

    /// Handle a client text frame (`state` is `None` in replay mode).
    pub fn on_text(
        &mut self,
        text: &str,
        state: Option<&DeribitState>,
        tick: u64,
        now_ms: i64,
    ) -> Vec<Out> {
        let Ok(req) = serde_json::from_str::<Value>(text) else {
            return vec![rpc_error(&Value::Null, -32700, "Parse error", now_ms)];
        };
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let params = req.get("params").cloned().unwrap_or(Value::Null);
        match req.get("method").and_then(Value::as_str) {
            Some("public/subscribe") => self.subscribe(&id, &params, state, tick, now_ms),
            Some("public/unsubscribe") => self.unsubscribe(&id, &params, now_ms),
            Some("public/set_heartbeat") => match params.get("interval").and_then(Value::as_u64) {
                Some(s) if s >= MIN_HEARTBEAT_S => {
                    self.heartbeat_s = Some(s);
                    self.clock_s = 0;
                    vec![response(&id, "\"result\":\"ok\"", now_ms)]
                }
                _ => vec![rpc_error(&id, -32602, "Invalid params", now_ms)],
            },
            Some("public/disable_heartbeat") => {
                self.heartbeat_s = None;
                vec![response(&id, "\"result\":\"ok\"", now_ms)]
            }
            Some("public/test") => {
                self.tests_answered += 1;
                vec![response(&id, "\"result\":{\"version\":\"1.2.26\"}", now_ms)]
            }
            _ => vec![rpc_error(&id, -32601, "Method not found", now_ms)],
        }
    }

    fn channels(params: &Value) -> Option<Vec<&str>> {
        let list = params.get("channels")?.as_array()?;
        Some(list.iter().filter_map(Value::as_str).collect())
    }

    fn subscribe(
        &mut self,
        id: &Value,
        params: &Value,
        state: Option<&DeribitState>,
        tick: u64,
        now_ms: i64,
    ) -> Vec<Out> {
        let Some(wanted) = Self::channels(params) else {
            return vec![rpc_error(id, -32602, "Invalid params", now_ms)];
        };
        if wanted.iter().any(|c| c.ends_with(".raw")) {
            return vec![rpc_error(
                id,
                13778,
                "raw_subscriptions_not_available_for_unauthorized",
                now_ms,
            )];
        }
        let mut granted = Vec::new();
        let mut snaps = Vec::new();
        for c in wanted {
            let Some(ch) = CHANNELS.iter().find(|x| **x == c) else {
                continue;
            };
            granted.push(Value::from(*ch));
            if self.subs.insert(ch, tick).is_none()
                && let Some(s) = state.and_then(|st| st.on_subscribe(ch))
            {
                snaps.push(Out::Text(s));
            }
        }
        let mut out = vec![response(
            id,
            &format!("\"result\":{}", Value::from(granted)),
            now_ms,
        )];
        out.extend(snaps);
        out
    }

    fn unsubscribe(&mut self, id: &Value, params: &Value, now_ms: i64) -> Vec<Out> {
        let Some(wanted) = Self::channels(params) else {
            return vec![rpc_error(id, -32602, "Invalid params", now_ms)];
        };
        let removed: Vec<Value> = wanted
            .into_iter()
            .filter_map(|c| CHANNELS.iter().find(|x| **x == c))
            .filter(|c| self.subs.remove(*c).is_some())
            .map(|c| Value::from(*c))
            .collect();
        vec![response(
            id,
            &format!("\"result\":{}", Value::from(removed)),
            now_ms,
        )]
    }

    /// Filter a market event; the heartbeat clock becomes a `test_request` every interval.
    pub fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        match &ev.topic {
            Topic::Stream(CLOCK) => {
                let interval = self.heartbeat_s?;
                self.clock_s += 1;
                if self.clock_s < interval {
                    return None;
                }
                self.clock_s = 0;
                self.test_requests += 1;
                Some(ev.text.to_string())
            }
            _ => crate::walked::forward(&self.subs, ev),
        }
    }
}

/// Registry session factory: JSON-RPC at `/ws/api/v2`.
pub fn open(path: &str, _conn_no: u64) -> Result<(Box<dyn VenueSession>, Vec<Out>), OpenError> {
    check_route(VenueId::Deribit, path, &["/ws/api/v2", "/ws/api/v2/"])?;
    Ok((Box::new(DeribitSession::default()), Vec::new()))
}

walked_venue! {
    state: DeribitState,
    session: DeribitSession,
    venue: VenueId::Deribit,
    rng_stream: 22,
    checksummed: |_| false,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okx::harness::{Mangle, Rig, scaled};

    #[test]
    fn ringbolt_adapter_rebuilds_the_book_answers_heartbeats_and_resyncs_a_gap() {
        let venue = ringbolt_bus::Venue::Deribit;
        let mut r = Rig::new(5, 50, DeribitSession::default(), venue, BOOK);
        // The adapter's subscribe frames set the heartbeat themselves.
        r.subscribe(&[INSTRUMENT]);
        r.run(600, Mangle::Keep);
        let t = r.c.total();
        assert_eq!((t.parse_errors, t.gaps, t.resyncs), (0, 0, 1), "{t:?}");
        let usd_e8 = 1_000_000_000;
        let (bids, asks) = r.c.book(INSTRUMENT);
        assert_eq!(
            bids,
            scaled(&r.st.book.bids, true, usize::MAX, 50_000_000, usd_e8)
        );
        assert_eq!(
            asks,
            scaled(&r.st.book.asks, false, usize::MAX, 50_000_000, usd_e8)
        );
        assert_eq!(
            r.s.heartbeat_counts(),
            (6, 6),
            "every test_request answered with public/test"
        );
        let trades = r.count::<ringbolt_bus::Trade>();
        let index = r.count::<ringbolt_bus::IndexPrice>();
        assert!(trades > 150 && index > 1200, "{trades} {index}");
        // A lost change: prev_change_id breaks the chain → unsubscribe + subscribe → snapshot.
        r.run(30, Mangle::Drop);
        let t = r.c.total();
        assert_eq!((t.gaps, t.resyncs, t.parse_errors), (1, 2, 0), "{t:?}");
        let (bids, _) = r.c.book(INSTRUMENT);
        assert_eq!(
            bids,
            scaled(&r.st.book.bids, true, usize::MAX, 50_000_000, usd_e8)
        );
    }

    #[test]
    fn formats_numbers_like_deribit() {
        assert_eq!(px(74_481), "37240.5");
        assert_eq!(px(74_480), "37240.0");
        assert_eq!(amount(1_424), "14240.0");
    }

    #[test]
    fn rpc_errors_heartbeat_and_raw_refusal() {
        let mut s = DeribitSession::default();
        let out = s.on_text(
            r#"{"jsonrpc":"2.0","id":5,"method":"public/set_heartbeat","params":{"interval":3}}"#,
            None,
            0,
            1,
        );
        assert!(
            matches!(&out[0], Out::Text(t) if t.contains(r#""id":5,"error":{"message":"Invalid params","code":-32602}"#))
        );
        let out = s.on_text(
            r#"{"jsonrpc":"2.0","id":6,"method":"public/set_heartbeat","params":{"interval":10}}"#,
            None,
            0,
            1,
        );
        assert!(matches!(&out[0], Out::Text(t) if t.contains(r#""id":6,"result":"ok""#)));
        let clock = event(1, CLOCK, false, TEST_REQUEST.into());
        let sent: Vec<_> = (0..25).filter_map(|_| s.on_event(&clock)).collect();
        assert_eq!(sent.len(), 2);
        assert_eq!(s.heartbeat_counts(), (2, 0));
        let out = s.on_text(r#"{"jsonrpc":"2.0","id":7,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.raw"]}}"#, None, 0, 1);
        assert!(matches!(&out[0], Out::Text(t) if t.contains("13778")));
        let out = s.on_text(r#"{"jsonrpc":"2.0","id":8,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.100ms","book.ETH-X.100ms"]}}"#, None, 0, 1);
        assert!(
            matches!(&out[0], Out::Text(t) if t.contains(r#""result":["book.BTC-PERPETUAL.100ms"]"#))
        );
        let out = s.on_text("{", None, 0, 1);
        assert!(matches!(&out[0], Out::Text(t) if t.contains("-32700")));
    }
}
