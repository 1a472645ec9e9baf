//! Kraken WebSocket v2 (`/v2`) for `BTC/USD`: `book` (snapshot + updates of the subscribed
//! depth, each with the CRC32 `checksum` over the decimal TEXT of the top 10 asks and bids),
//! `trade` (sequential `trade_id`), `ticker` (`event_trigger` `bbo` or `trades`), the
//! `heartbeat` channel, the `status` message on connect, the `subscribe` / `unsubscribe`
//! methods acknowledged per symbol with `success`, and `ping` → `pong`.
//!
//! Book semantics as Kraken's: an update carries the levels that changed inside the subscribed
//! depth, a level deleted from the book is sent with `qty` 0, and a level pushed below the depth
//! by better ones is NOT deleted explicitly (the client truncates its book to the depth after
//! each update, then checks the checksum). Prices are JSON numbers with the pair's 1 decimal,
//! quantities with 8 decimals (the texts the checksum is computed from).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::ladder::{Ladder, LadderParams, Side};
use crate::session::OpenError;
use crate::util::{fixed, fixed_signed, iso_micros};
use crate::venue::{VenueSession, check_route};

/// The only pair served.
pub const SYMBOL: &str = "BTC/USD";
/// Book depths served (Kraken also offers 500 and 1000).
pub const DEPTHS: [usize; 3] = [10, 25, 100];
/// Levels per side covered by the checksum.
pub const CHECKSUM_DEPTH: usize = 10;
/// Observation lag of the true price, ms.
pub const LAG_MS: i64 = 150;
/// Probability per tick of a taker order.
pub const TRADE_PROB: f64 = 0.3;
/// Trades kept for a `trade` snapshot.
const TRADE_HISTORY: usize = 50;
/// Heartbeat period in ticks.
const HEARTBEAT_TICKS: u64 = 10;

const PARAMS: LadderParams = LadderParams {
    depth: 120,
    step: 1,
    max_gap_ticks: 5,
    qty_min: 10_000,
    qty_max: 400_000_000,
    perturb: 4,
    lo: 1,
    hi: i64::MAX / 4,
};

/// Topic keys of the book depths (same order as [`DEPTHS`]).
const BOOK_TOPICS: [&str; 3] = ["book:10", "book:25", "book:100"];

fn px(tenths: i64) -> String {
    fixed(tenths, 1)
}
fn qty(e8: i64) -> String {
    fixed(e8, 8)
}

/// `(price, qty)` levels in ladder units, best first.
type Levels = Vec<(i64, i64)>;

/// One side's best `n` levels, best first.
fn top(book: &Ladder, side: Side, n: usize) -> Vec<(i64, i64)> {
    match side {
        Side::Bid => book
            .bids
            .iter()
            .rev()
            .take(n)
            .map(|(p, q)| (*p, *q))
            .collect(),
        Side::Ask => book.asks.iter().take(n).map(|(p, q)| (*p, *q)).collect(),
    }
}

/// Kraken's checksum text of one level: decimal point removed, leading zeros stripped.
fn checksum_part(out: &mut String, text: &str) {
    let digits: String = text.chars().filter(|c| *c != '.').collect();
    out.push_str(digits.trim_start_matches('0'));
}

/// CRC32 over the top-10 asks (ascending) then the top-10 bids (descending) of `book`.
#[must_use]
pub fn book_checksum(book: &Ladder) -> u32 {
    let mut s = String::with_capacity(40 * CHECKSUM_DEPTH);
    for side in [Side::Ask, Side::Bid] {
        for (p, q) in top(book, side, CHECKSUM_DEPTH) {
            checksum_part(&mut s, &px(p));
            checksum_part(&mut s, &qty(q));
        }
    }
    crc32fast::hash(s.as_bytes())
}

/// `[{"price":…,"qty":…},…]`.
fn levels_json(out: &mut String, levels: &[(i64, i64)]) {
    out.push('[');
    for (i, (p, q)) in levels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"price\":{},\"qty\":{}}}", px(*p), qty(*q));
    }
    out.push(']');
}

fn book_json(
    kind: &str,
    bids: &[(i64, i64)],
    asks: &[(i64, i64)],
    checksum: u32,
    ts: &str,
) -> String {
    let mut s = format!(
        "{{\"channel\":\"book\",\"type\":\"{kind}\",\"data\":[{{\"symbol\":\"{SYMBOL}\",\"bids\":"
    );
    levels_json(&mut s, bids);
    s.push_str(",\"asks\":");
    levels_json(&mut s, asks);
    let _ = write!(s, ",\"checksum\":{checksum},\"timestamp\":\"{ts}\"}}]}}");
    s
}

/// The changes that move a client holding `old` (truncated to its depth) to `new`.
fn view_diff(
    old: &[(i64, i64)],
    new: &[(i64, i64)],
    side_book: &BTreeMap<i64, i64>,
) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = new.iter().filter(|l| !old.contains(l)).copied().collect();
    for (p, _) in old {
        if !side_book.contains_key(p) {
            out.push((*p, 0));
        }
    }
    out
}

fn event(tick: u64, topic: &'static str, sequenced: bool, text: String) -> VenueEvent {
    VenueEvent {
        venue: VenueId::Kraken,
        tick,
        topic: Topic::Stream(topic),
        sequenced,
        text: Arc::from(text),
    }
}

#[derive(Debug, Clone)]
struct Print {
    side: &'static str,
    price: i64,
    qty: i64,
    ord_type: &'static str,
    trade_id: u64,
    ts: String,
}

fn trade_json(kind: &str, prints: &[&Print]) -> String {
    let mut s = format!("{{\"channel\":\"trade\",\"type\":\"{kind}\",\"data\":[");
    for (i, t) in prints.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"symbol\":\"{SYMBOL}\",\"side\":\"{}\",\"price\":{},\"qty\":{},\"ord_type\":\"{}\",\"trade_id\":{},\"timestamp\":\"{}\"}}",
            t.side,
            px(t.price),
            qty(t.qty),
            t.ord_type,
            t.trade_id,
            t.ts
        );
    }
    s.push_str("]}");
    s
}

/// Kraken BTC/USD venue state.
#[derive(Debug)]
pub struct KrakenState {
    book: Ladder,
    next_trade_id: u64,
    trades: VecDeque<Print>,
    open: i64,
    high: i64,
    low: i64,
    volume: i64,
    notional: i128,
    top: Option<((i64, i64), (i64, i64))>,
    ts: String,
}

impl KrakenState {
    /// Fresh state.
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        Self {
            book: Ladder::default(),
            next_trade_id: rng.random_range(80_000_000..90_000_000),
            trades: VecDeque::with_capacity(TRADE_HISTORY + 1),
            open: 0,
            high: 0,
            low: i64::MAX,
            volume: 0,
            notional: 0,
            top: None,
            ts: String::new(),
        }
    }

    /// One market step at `t_ms` around the observed price `mid_usd`.
    pub fn step(
        &mut self,
        t_ms: i64,
        tick: u64,
        mid_usd: f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<VenueEvent> {
        let mut events = Vec::new();
        self.ts = iso_micros(t_ms * 1000 + rng.random_range(0..1000));
        let deepest = DEPTHS[DEPTHS.len() - 1];
        let old = (
            top(&self.book, Side::Bid, deepest),
            top(&self.book, Side::Ask, deepest),
        );
        let mid = (mid_usd * 10.0).round() as i64;
        if self.open == 0 {
            self.open = mid;
        }
        let mut changes = self.book.reprice(mid, mid + 1, &PARAMS, rng);
        let traded = self.maybe_trade(rng, &mut changes);
        if !changes.is_empty() {
            self.book_updates(&old, tick, &mut events);
        }
        if let Some(t) = traded {
            events.push(event(tick, "trade", true, trade_json("update", &[&t])));
            events.push(event(
                tick,
                "ticker:trades",
                false,
                self.ticker_json("update"),
            ));
        }
        let top = self.book.best_bid().zip(self.book.best_ask());
        if top != self.top {
            self.top = top;
            events.push(event(tick, "ticker:bbo", false, self.ticker_json("update")));
        }
        if tick.is_multiple_of(HEARTBEAT_TICKS) {
            events.push(event(
                tick,
                "heartbeat",
                false,
                "{\"channel\":\"heartbeat\"}".into(),
            ));
        }
        events
    }

    fn maybe_trade(
        &mut self,
        rng: &mut ChaCha8Rng,
        changes: &mut Vec<crate::ladder::Change>,
    ) -> Option<Print> {
        if !rng.random_bool(TRADE_PROB) {
            return None;
        }
        let buy = rng.random_bool(0.5);
        let (maker, (price, avail)) = if buy {
            (Side::Ask, self.book.best_ask()?)
        } else {
            (Side::Bid, self.book.best_bid()?)
        };
        let q = rng.random_range(10_000..=20_000_000).min(avail);
        self.book.fill(maker, price, q, changes);
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.volume += q;
        self.notional += i128::from(price) * i128::from(q);
        let t = Print {
            side: if buy { "buy" } else { "sell" },
            price,
            qty: q,
            ord_type: if rng.random_bool(0.7) {
                "market"
            } else {
                "limit"
            },
            trade_id: self.next_trade_id,
            ts: self.ts.clone(),
        };
        self.next_trade_id += 1;
        self.trades.push_back(t.clone());
        if self.trades.len() > TRADE_HISTORY {
            self.trades.pop_front();
        }
        Some(t)
    }

    /// One update per served depth whose view changed.
    fn book_updates(&self, old: &(Levels, Levels), tick: u64, events: &mut Vec<VenueEvent>) {
        let checksum = book_checksum(&self.book);
        for (depth, topic) in DEPTHS.iter().zip(BOOK_TOPICS) {
            let ob = &old.0[..old.0.len().min(*depth)];
            let oa = &old.1[..old.1.len().min(*depth)];
            let bids = view_diff(ob, &top(&self.book, Side::Bid, *depth), &self.book.bids);
            let asks = view_diff(oa, &top(&self.book, Side::Ask, *depth), &self.book.asks);
            if bids.is_empty() && asks.is_empty() {
                continue;
            }
            let text = book_json("update", &bids, &asks, checksum, &self.ts);
            events.push(event(tick, topic, true, text));
        }
    }

    /// The `book` snapshot of `depth` levels per side.
    #[must_use]
    pub fn book_snapshot(&self, depth: usize) -> String {
        let bids = top(&self.book, Side::Bid, depth);
        let asks = top(&self.book, Side::Ask, depth);
        book_json(
            "snapshot",
            &bids,
            &asks,
            book_checksum(&self.book),
            &self.ts,
        )
    }

    fn ticker_json(&self, kind: &str) -> String {
        let (bp, bq) = self.book.best_bid().unwrap_or((0, 0));
        let (ap, aq) = self.book.best_ask().unwrap_or((0, 0));
        let last = self.trades.back().map_or(bp, |t| t.price);
        let vwap = if self.volume > 0 {
            (self.notional / i128::from(self.volume)) as i64
        } else {
            last
        };
        let change = last - self.open;
        let change_pct = if self.open > 0 {
            change as f64 * 100.0 / self.open as f64
        } else {
            0.0
        };
        format!(
            "{{\"channel\":\"ticker\",\"type\":\"{kind}\",\"data\":[{{\"symbol\":\"{SYMBOL}\",\"bid\":{},\"bid_qty\":{},\"ask\":{},\"ask_qty\":{},\"last\":{},\"volume\":{},\"vwap\":{},\"low\":{},\"high\":{},\"change\":{},\"change_pct\":{:.2},\"timestamp\":\"{}\"}}]}}",
            px(bp),
            qty(bq),
            px(ap),
            qty(aq),
            px(last),
            qty(self.volume),
            px(vwap),
            px(self.low.min(last)),
            px(self.high.max(last)),
            fixed_signed(change, 1),
            change_pct,
            self.ts
        )
    }
}

/// What one subscription is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Sub {
    Book(usize),
    Trade,
    Ticker(bool),
}

impl Sub {
    fn topic(self) -> &'static str {
        match self {
            Sub::Book(i) => BOOK_TOPICS[i],
            Sub::Trade => "trade",
            Sub::Ticker(true) => "ticker:bbo",
            Sub::Ticker(false) => "ticker:trades",
        }
    }
    fn channel(self) -> &'static str {
        match self {
            Sub::Book(_) => "book",
            Sub::Trade => "trade",
            Sub::Ticker(_) => "ticker",
        }
    }
}

/// A Kraken v2 session.
#[derive(Debug, Default)]
pub struct KrakenSession {
    /// Subscription → tick of its ack.
    subs: BTreeMap<Sub, u64>,
}

/// A method reply: `body` holds the method-specific members (without braces).
fn reply(method: &str, req_id: Option<&Value>, body: &str, now_ms: i64) -> Out {
    let t = iso_micros(now_ms * 1000);
    let id = req_id.map_or(String::new(), |v| format!(",\"req_id\":{v}"));
    Out::Text(format!(
        "{{\"method\":\"{method}\"{body},\"time_in\":\"{t}\",\"time_out\":\"{t}\"{id}}}"
    ))
}

fn failure(
    method: &str,
    req_id: Option<&Value>,
    error: &str,
    symbol: Option<&str>,
    now_ms: i64,
) -> Out {
    let sym = symbol.map_or(String::new(), |s| format!(",\"symbol\":{}", Value::from(s)));
    let body = format!(",\"error\":{},\"success\":false{sym}", Value::from(error));
    reply(method, req_id, &body, now_ms)
}

impl KrakenSession {
    /// The `status` message sent on connect.
    #[must_use]
    pub fn status(conn_no: u64) -> String {
        let id = conn_no.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1;
        format!(
            "{{\"channel\":\"status\",\"type\":\"update\",\"data\":[{{\"version\":\"2.0.10\",\"system\":\"online\",\"api_version\":\"v2\",\"connection_id\":{id}}}]}}"
        )
    }

    /// Whether anything is subscribed.
    pub fn has_subscription(&self) -> bool {
        !self.subs.is_empty()
    }

    /// Handle a client text frame (`state` is `None` in replay mode).
    pub fn on_text(
        &mut self,
        text: &str,
        state: Option<&KrakenState>,
        tick: u64,
        now_ms: i64,
    ) -> Vec<Out> {
        let Ok(req) = serde_json::from_str::<Value>(text) else {
            return vec![failure(
                "",
                None,
                "EGeneral:Invalid arguments",
                None,
                now_ms,
            )];
        };
        let req_id = req.get("req_id");
        let method = req.get("method").and_then(Value::as_str).unwrap_or("");
        match method {
            "ping" => vec![reply("pong", req_id, "", now_ms)],
            "subscribe" | "unsubscribe" => {
                let params = req.get("params").cloned().unwrap_or(Value::Null);
                self.subscription(method, req_id, &params, state, tick, now_ms)
            }
            _ => vec![failure(method, req_id, "Method not found", None, now_ms)],
        }
    }

    /// The subscription a request's params name (or Kraken's error text).
    fn parse_sub(params: &Value) -> Result<Sub, &'static str> {
        match params.get("channel").and_then(Value::as_str) {
            Some("book") => {
                let depth = params.get("depth").map_or(Some(10), Value::as_u64);
                match depth.and_then(|d| DEPTHS.iter().position(|x| *x as u64 == d)) {
                    Some(i) => Ok(Sub::Book(i)),
                    None => Err("EGeneral:Invalid arguments:depth"),
                }
            }
            Some("trade") => Ok(Sub::Trade),
            Some("ticker") => match params.get("event_trigger").and_then(Value::as_str) {
                None | Some("trades") => Ok(Sub::Ticker(false)),
                Some("bbo") => Ok(Sub::Ticker(true)),
                Some(_) => Err("EGeneral:Invalid arguments:event_trigger"),
            },
            _ => Err("EGeneral:Invalid arguments:channel"),
        }
    }

    fn subscription(
        &mut self,
        method: &str,
        req_id: Option<&Value>,
        params: &Value,
        state: Option<&KrakenState>,
        tick: u64,
        now_ms: i64,
    ) -> Vec<Out> {
        let sub = match Self::parse_sub(params) {
            Ok(s) => s,
            Err(e) => return vec![failure(method, req_id, e, None, now_ms)],
        };
        let Some(symbols) = params
            .get("symbol")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
        else {
            return vec![failure(
                method,
                req_id,
                "EGeneral:Invalid arguments:symbol",
                None,
                now_ms,
            )];
        };
        let snapshot = params
            .get("snapshot")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let mut out = Vec::new();
        for sym in symbols {
            let s = sym.as_str().unwrap_or("");
            if s != SYMBOL {
                out.push(failure(
                    method,
                    req_id,
                    &format!("Currency pair not supported {s}"),
                    Some(s),
                    now_ms,
                ));
                continue;
            }
            let subscribe = method == "subscribe";
            if subscribe && self.subs.contains_key(&sub) {
                out.push(failure(
                    method,
                    req_id,
                    "Already subscribed",
                    Some(s),
                    now_ms,
                ));
                continue;
            }
            if !subscribe && self.subs.remove(&sub).is_none() {
                out.push(failure(
                    method,
                    req_id,
                    "Subscription Not Found",
                    Some(s),
                    now_ms,
                ));
                continue;
            }
            out.push(reply(method, req_id, &ack_body(sub, snapshot), now_ms));
            if subscribe {
                self.subs.insert(sub, tick);
                if let (true, Some(st)) = (snapshot, state) {
                    out.extend(initial(sub, st).map(Out::Text));
                }
            }
        }
        out
    }

    /// Filter a market event.
    pub fn on_event(&self, ev: &VenueEvent) -> Option<String> {
        match &ev.topic {
            Topic::Stream("heartbeat") => self.has_subscription().then(|| ev.text.to_string()),
            Topic::Stream(t) => {
                let since = self
                    .subs
                    .iter()
                    .find(|(s, _)| s.topic() == *t)
                    .map(|(_, k)| *k)?;
                if ev.tick <= since {
                    return None;
                }
                Some(ev.text.to_string())
            }
            Topic::Replay => self.has_subscription().then(|| ev.text.to_string()),
            _ => None,
        }
    }
}

/// Registry session factory: WebSocket v2 at `/v2` (the `status` message first).
pub fn open(path: &str, conn_no: u64) -> Result<(Box<dyn VenueSession>, Vec<Out>), OpenError> {
    check_route(VenueId::Kraken, path, &["/v2"])?;
    let first = vec![Out::Text(KrakenSession::status(conn_no))];
    Ok((Box::new(KrakenSession::default()), first))
}

walked_venue! {
    state: KrakenState,
    session: KrakenSession,
    venue: VenueId::Kraken,
    rng_stream: 21,
    checksummed: |t| t.starts_with("book:"),
}

fn ack_body(sub: Sub, snapshot: bool) -> String {
    let extra = match sub {
        Sub::Book(i) => format!("\"depth\":{},", DEPTHS[i]),
        Sub::Ticker(bbo) => format!(
            "\"event_trigger\":\"{}\",",
            if bbo { "bbo" } else { "trades" }
        ),
        Sub::Trade => String::new(),
    };
    format!(
        ",\"result\":{{\"channel\":\"{}\",{extra}\"snapshot\":{snapshot},\"symbol\":\"{SYMBOL}\"}},\"success\":true",
        sub.channel()
    )
}

/// The snapshot a fresh subscription gets.
fn initial(sub: Sub, st: &KrakenState) -> Option<String> {
    match sub {
        Sub::Book(i) => Some(st.book_snapshot(DEPTHS[i])),
        Sub::Ticker(_) => Some(st.ticker_json("snapshot")),
        Sub::Trade => {
            let prints: Vec<&Print> = st.trades.iter().collect();
            (!prints.is_empty()).then(|| trade_json("snapshot", &prints))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::stream_rng;
    use crate::okx::harness::{Client, Mangle, Rig, scaled};

    /// The client's book, truncated to the subscribed depth, equals the emulated top 10.
    fn check_top(r: &Rig<KrakenSession>) {
        let (bids, asks) = r.c.book(SYMBOL);
        let bids: BTreeMap<i64, i64> = bids.into_iter().rev().take(10).collect();
        let asks: BTreeMap<i64, i64> = asks.into_iter().take(10).collect();
        assert_eq!(bids, scaled(&r.st.book.bids, true, 10, 10_000_000, 1));
        assert_eq!(asks, scaled(&r.st.book.asks, false, 10, 10_000_000, 1));
    }

    #[test]
    fn ringbolt_adapter_keeps_the_depth_10_book_and_catches_lost_updates_and_checksums() {
        let venue = ringbolt_bus::Venue::Kraken;
        let mut r = Rig::new(4, 50, KrakenSession::default(), venue, "book:10");
        r.c.feed(&KrakenSession::status(1));
        r.subscribe(&[SYMBOL]);
        r.run(600, Mangle::Keep);
        let t = r.c.total();
        assert_eq!(
            (t.parse_errors, t.gaps, t.checksum_errors, t.resyncs),
            (0, 0, 0, 1),
            "{t:?}"
        );
        check_top(&r);
        let tops = r.count::<ringbolt_bus::TopOfBook>();
        let trades = r.count::<ringbolt_bus::Trade>();
        assert!(tops > 100 && trades > 100, "{tops} {trades}");
        // No sequence numbers on Kraken books: a lost update shows as a checksum mismatch.
        r.run(30, Mangle::Drop);
        let t = r.c.total();
        assert_eq!((t.checksum_errors, t.resyncs), (1, 2), "{t:?}");
        r.run(30, Mangle::Spoil);
        let t = r.c.total();
        assert_eq!((t.checksum_errors, t.resyncs), (2, 3), "{t:?}");
        check_top(&r);
    }

    /// Kraken leaves levels pushed below the subscribed depth to the client's truncation; the
    /// adapter truncates its own book but emits no deletion for them, so the BookLevel stream on
    /// the bus keeps them forever: a consumer rebuilding the book from the bus holds phantom
    /// levels (inside the top 10 once the price comes back, even crossed).
    #[test]

    fn the_bus_book_equals_the_venue_book() {
        let mut rng = stream_rng(4, 21);
        let mut st = KrakenState::new(&mut rng);
        let mut s = KrakenSession::default();
        let mut c = Client::new(ringbolt_bus::Venue::Kraken);
        st.step(100, 1, 97_000.0, &mut rng);
        for f in c.subscribe(&[SYMBOL]) {
            let out = s.on_text(&f, Some(&st), 1, 100);
            c.feed_outs(out);
        }
        for tick in 2..400_u64 {
            // Up 20 USD, then back down.
            let mid = 97_000.0 + 20.0 * (1.0 - (tick as f64 / 200.0 - 1.0).abs());
            for ev in st.step(tick as i64 * 100, tick, mid, &mut rng) {
                if let Some(t) = s.on_event(&ev) {
                    c.feed(&t);
                }
            }
        }
        assert_eq!(c.total().checksum_errors, 0);
        let (bids, asks) = c.book(SYMBOL);
        assert_eq!(bids, scaled(&st.book.bids, true, 10, 10_000_000, 1));
        assert_eq!(asks, scaled(&st.book.asks, false, 10, 10_000_000, 1));
    }

    #[test]
    fn every_depth_view_applied_and_truncated_equals_the_book_top() {
        let mut rng = stream_rng(9, 21);
        let mut st = KrakenState::new(&mut rng);
        st.step(100, 1, 97_000.0, &mut rng);
        let mut views: Vec<(Levels, Levels)> = DEPTHS
            .iter()
            .map(|d| (top(&st.book, Side::Bid, *d), top(&st.book, Side::Ask, *d)))
            .collect();
        let apply = |view: &mut Vec<(i64, i64)>, diff: &[(i64, i64)], depth: usize, bids: bool| {
            let mut m: BTreeMap<i64, i64> = view.iter().copied().collect();
            for (p, q) in diff {
                if *q == 0 {
                    m.remove(p);
                } else {
                    m.insert(*p, *q);
                }
            }
            *view = if bids {
                m.into_iter().rev().take(depth).collect()
            } else {
                m.into_iter().take(depth).collect()
            };
        };
        for tick in 2..400 {
            st.step(
                tick * 100,
                tick as u64,
                97_000.0 + (tick % 50) as f64,
                &mut rng,
            );
            for (d, (vb, va)) in DEPTHS.iter().zip(views.iter_mut()) {
                let (nb, na) = (top(&st.book, Side::Bid, *d), top(&st.book, Side::Ask, *d));
                let db = view_diff(vb, &nb, &st.book.bids);
                let da = view_diff(va, &na, &st.book.asks);
                apply(vb, &db, *d, true);
                apply(va, &da, *d, false);
                assert_eq!((&*vb, &*va), (&nb, &na), "depth {d} tick {tick}");
            }
        }
    }

    #[test]
    fn checksum_matches_the_kraken_docs_vector() {
        // docs.kraken.com book-checksum-v2 example (corpus kraken/v2_book.jsonl line 1).
        let mut book = Ladder::default();
        book.bids.extend([
            (452835, 10000000),
            (452834, 154582015),
            (452821, 10000000),
            (452810, 10000000),
            (452803, 154592586),
            (452790, 7990000),
            (452776, 3310103),
            (452775, 30000000),
            (452773, 154602737),
            (452766, 15445238),
        ]);
        book.asks.extend([
            (452852, 100000),
            (452864, 154571953),
            (452866, 154571109),
            (452896, 154560911),
            (452902, 15890660),
            (452918, 154553491),
            (452947, 4454749),
            (452961, 35380000),
            (452975, 9945542),
            (452995, 18772827),
        ]);
        assert_eq!(book_checksum(&book), 3_310_070_434);
    }

    #[test]
    fn checksum_part_strips_point_and_leading_zeros() {
        let mut s = String::new();
        checksum_part(&mut s, "0.00100000");
        checksum_part(&mut s, "45285.2");
        assert_eq!(s, "100000452852");
    }

    #[test]
    fn view_diff_leaves_pushed_out_levels_to_truncation() {
        let mut side = BTreeMap::new();
        for p in [1, 2, 3, 4] {
            side.insert(p, 5);
        }
        // Old view [4,3]; 5 inserted on top pushes 3 out (still in the book); 6 was deleted.
        side.insert(5, 7);
        let d = view_diff(&[(6, 1), (4, 5)], &[(5, 7), (4, 5)], &side);
        assert_eq!(d, vec![(5, 7), (6, 0)]);
    }

    #[test]
    fn subscribe_ack_errors_and_ping() {
        let mut s = KrakenSession::default();
        let out = s.on_text(r#"{"method":"ping","req_id":7}"#, None, 0, 1_000);
        assert!(
            matches!(&out[0], Out::Text(t) if t.starts_with(r#"{"method":"pong","time_in":"#) && t.ends_with(r#","req_id":7}"#))
        );
        let out = s.on_text(
            r#"{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD","BTC/XYZ"],"depth":10},"req_id":1}"#,
            None,
            0,
            1_000,
        );
        assert_eq!(out.len(), 2);
        assert!(
            matches!(&out[0], Out::Text(t) if t.contains(r#""result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},"success":true"#))
        );
        assert!(
            matches!(&out[1], Out::Text(t) if t.contains(r#""error":"Currency pair not supported BTC/XYZ","success":false"#))
        );
        let out = s.on_text(
            r#"{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":7}}"#,
            None,
            0,
            1_000,
        );
        assert!(matches!(&out[0], Out::Text(t) if t.contains("Invalid arguments:depth")));
    }
}
