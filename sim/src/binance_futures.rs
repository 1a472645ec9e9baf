//! Binance USD-M futures (`fstream.binance.com`, `fapi.binance.com`) for BTCUSDT: the book and
//! trade state, the stream encoders (`depthUpdate` with `U`/`u`/`pu`, `aggTrade`, `trade`,
//! `bookTicker`, `markPriceUpdate`, `forceOrder`), the REST endpoints (`GET /fapi/v1/depth`,
//! `openInterest`, `premiumIndex`, `ping`, `time`) and the session.
//!
//! Routes (2026): streams are split into mutually exclusive tiers. `/public/stream`,
//! `/public/ws` carry `@bookTicker`, `@depth*`, `@trade`; `/market/stream`, `/market/ws` carry
//! `@aggTrade`, `@markPrice*`, `@forceOrder`. The legacy unrouted `/stream` and `/ws` still
//! accept every subscription but deliver only the public tier (Binance stopped delivering the
//! market tier there on 2026-04-23). A wrong-tier subscription is acknowledged
//! (`{"result":null,"id":..}`) and never delivers: that is what a client on the wrong route sees.
//!
//! Sequence rules as documented: every depth event's `pu` is the previous event's `u`; `U` is
//! above `pu` by one plus the ids other symbols consumed meanwhile (not contiguous). The REST
//! snapshot's `lastUpdateId` is the `u` of the last event published.

use std::any::Any;
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::binance::{BadPath, BinanceSession};
use crate::cexbook::{BookShape, CexBook, Fill, pairs};
use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::hub::Hub;
use crate::ladder::Side;
use crate::market::stream_rng;
use crate::session::OpenError;
use crate::util::{fixed, fixed_signed, query_param};
use crate::venue::{StepCtx, VenueModel, VenueSession};

/// This venue.
pub const VENUE: VenueId = VenueId::BinanceFutures;
/// Symbol.
pub const SYMBOL: &str = "BTCUSDT";
/// Aggregate trades (market tier).
pub const STREAM_AGG: &str = "btcusdt@aggTrade";
/// Trades (public tier).
pub const STREAM_TRADE: &str = "btcusdt@trade";
/// Best bid/offer (public tier).
pub const STREAM_BOOK_TICKER: &str = "btcusdt@bookTicker";
/// 100 ms depth diffs (public tier).
pub const STREAM_DEPTH: &str = "btcusdt@depth@100ms";
/// Mark price, index, funding every second (market tier).
pub const STREAM_MARK: &str = "btcusdt@markPrice@1s";
/// Liquidation orders, latest per second (market tier).
pub const STREAM_FORCE: &str = "btcusdt@forceOrder";

const SHAPE: BookShape = BookShape {
    tick_cents: 10,
    depth: 100,
    qty_min: 1,
    qty_max: 20_000,
    trade_max: 3_000,
};
/// Futures trade at a small premium over the index.
const BASIS: f64 = 1.5e-4;
/// Probability per step of a liquidation order.
const FORCE_PROB: f64 = 0.004;
/// Funding interval, ms.
const FUNDING_MS: i64 = 8 * 3_600_000;
/// Depth limits `GET /fapi/v1/depth` accepts.
const DEPTH_LIMITS: [usize; 7] = [5, 10, 20, 50, 100, 500, 1000];

fn px(cents: i64) -> String {
    fixed(cents, 2)
}
fn qty(milli: i64) -> String {
    fixed(milli, 3)
}
fn usd8(v: f64) -> String {
    fixed((v * 1e8).round() as i64, 8)
}

/// Which stream tier a stream belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// `/public`: book ticker, depth, trades.
    Public,
    /// `/market`: aggregate trades, mark price, liquidations, klines.
    Market,
}

/// The tier of a stream name.
pub fn tier_of(stream: &str) -> Tier {
    let kind = stream.split_once('@').map_or(stream, |(_, k)| k);
    if kind.starts_with("aggTrade")
        || kind.starts_with("markPrice")
        || kind.starts_with("forceOrder")
        || kind.starts_with("kline")
        || kind.starts_with("continuousKline")
    {
        Tier::Market
    } else {
        Tier::Public
    }
}

/// Binance USD-M BTCUSDT state.
#[derive(Debug)]
pub struct FuturesState {
    rng: ChaCha8Rng,
    book: CexBook,
    last_u: u64,
    next_agg: u64,
    next_trade: u64,
    last_top: Option<(i64, i64, i64, i64)>,
    last_mark_s: i64,
    funding_rate_e8: i64,
    open_interest_milli: i64,
    index_usd: f64,
    mark_usd: f64,
}

impl FuturesState {
    /// Fresh state with realistic-looking id bases (RNG stream 20 of the market seed).
    pub fn new(seed: u64) -> Self {
        let mut rng = stream_rng(seed, 20);
        Self {
            last_u: 9_100_000_000_000 + rng.random_range(0..1_000_000_000),
            next_agg: 2_800_000_000 + rng.random_range(0..10_000_000),
            next_trade: 6_700_000_000 + rng.random_range(0..100_000_000),
            funding_rate_e8: 5_000 + rng.random_range(0..6_000),
            open_interest_milli: 80_000_000 + rng.random_range(0..10_000_000),
            rng,
            book: CexBook::new(SHAPE),
            last_top: None,
            last_mark_s: 0,
            index_usd: 0.0,
            mark_usd: 0.0,
        }
    }

    /// Last published depth update id.
    pub fn last_update_id(&self) -> u64 {
        self.last_u
    }

    /// `GET /fapi/v1/depth` body.
    pub fn depth_snapshot(&self, limit: usize, now_ms: i64) -> String {
        let side = |s| {
            let v: Vec<[String; 2]> = self
                .book
                .levels(s, limit)
                .into_iter()
                .map(|(p, q)| [px(p), qty(q)])
                .collect();
            serde_json::to_string(&v).unwrap_or_default()
        };
        format!(
            r#"{{"lastUpdateId":{},"E":{now_ms},"T":{},"bids":{},"asks":{}}}"#,
            self.last_u,
            now_ms - 2,
            side(Side::Bid),
            side(Side::Ask)
        )
    }

    fn trades(&mut self, t: i64, tick: u64, f: Fill, out: &mut Vec<VenueEvent>) {
        let first = self.next_trade;
        let n = i64::from(f.trades).min(f.qty);
        let mut left = f.qty;
        for k in 0..n {
            let q = if k == n - 1 { left } else { (left / 2).max(1) };
            left -= q;
            out.push(event(
                tick,
                STREAM_TRADE,
                false,
                format!(
                    r#"{{"e":"trade","E":{},"T":{t},"s":"{SYMBOL}","t":{},"p":"{}","q":"{}","X":"MARKET","m":{}}}"#,
                    t + 4,
                    self.next_trade,
                    px(f.price),
                    qty(q),
                    !f.taker_buy
                ),
            ));
            self.next_trade += 1;
        }
        out.push(event(
            tick,
            STREAM_AGG,
            false,
            format!(
                r#"{{"e":"aggTrade","E":{},"a":{},"s":"{SYMBOL}","p":"{}","q":"{}","f":{first},"l":{},"T":{t},"m":{}}}"#,
                t + 5,
                self.next_agg,
                px(f.price),
                qty(f.qty),
                self.next_trade - 1,
                !f.taker_buy
            ),
        ));
        self.next_agg += 1;
        self.open_interest_milli += if self.rng.random_bool(0.5) {
            f.qty
        } else {
            -f.qty
        };
        self.open_interest_milli = self.open_interest_milli.max(1_000_000);
    }

    fn depth(&mut self, t: i64, tick: u64, changes: &[crate::ladder::Change]) -> VenueEvent {
        let prev = self.last_u;
        let first = prev + 1 + self.rng.random_range(0..40);
        let last = first + changes.len() as u64 + self.rng.random_range(0..20);
        self.last_u = last;
        let b = pairs(changes, Side::Bid, px, qty);
        let a = pairs(changes, Side::Ask, px, qty);
        event(
            tick,
            STREAM_DEPTH,
            true,
            format!(
                r#"{{"e":"depthUpdate","E":{},"T":{t},"s":"{SYMBOL}","U":{first},"u":{last},"pu":{prev},"b":{},"a":{}}}"#,
                t + 3,
                serde_json::to_string(&b).unwrap_or_default(),
                serde_json::to_string(&a).unwrap_or_default()
            ),
        )
    }

    fn mark(&mut self, t: i64, tick: u64) -> VenueEvent {
        let next_funding = (t.div_euclid(FUNDING_MS) + 1) * FUNDING_MS;
        self.funding_rate_e8 =
            (self.funding_rate_e8 + self.rng.random_range(-3..=3)).clamp(-75_000, 75_000);
        event(
            tick,
            STREAM_MARK,
            false,
            format!(
                r#"{{"e":"markPriceUpdate","E":{t},"s":"{SYMBOL}","p":"{}","P":"{}","i":"{}","r":"{}","T":{next_funding}}}"#,
                usd8(self.mark_usd),
                usd8(self.index_usd * (1.0 + BASIS / 3.0)),
                usd8(self.index_usd),
                fixed_signed(self.funding_rate_e8, 8)
            ),
        )
    }

    fn force_order(&mut self, t: i64, tick: u64) -> Option<VenueEvent> {
        let (b, _, a, _) = self.book.top()?;
        let sell = self.rng.random_bool(0.5);
        let q = self.rng.random_range(1..=800);
        let (side, limit, avg) = if sell {
            ("SELL", b - 30 * SHAPE.tick_cents, b)
        } else {
            ("BUY", a + 30 * SHAPE.tick_cents, a)
        };
        let q = qty(q);
        Some(event(
            tick,
            STREAM_FORCE,
            false,
            format!(
                r#"{{"e":"forceOrder","E":{},"o":{{"s":"{SYMBOL}","S":"{side}","o":"LIMIT","f":"IOC","q":"{q}","p":"{}","ap":"{}","X":"FILLED","l":"{q}","z":"{q}","T":{t}}}}}"#,
                t + 5,
                px(limit),
                px(avg)
            ),
        ))
    }

    fn book_ticker(&mut self, t: i64, tick: u64) -> Option<VenueEvent> {
        let top = self.book.top()?;
        if self.last_top == Some(top) {
            return None;
        }
        self.last_top = Some(top);
        let (b, bq, a, aq) = top;
        Some(event(
            tick,
            STREAM_BOOK_TICKER,
            false,
            format!(
                r#"{{"e":"bookTicker","u":{},"s":"{SYMBOL}","b":"{}","B":"{}","a":"{}","A":"{}","T":{t},"E":{}}}"#,
                self.last_u,
                px(b),
                qty(bq),
                px(a),
                qty(aq),
                t + 3
            ),
        ))
    }

    /// `GET /fapi/v1/premiumIndex` body.
    fn premium_index(&self, now_ms: i64) -> String {
        format!(
            r#"{{"symbol":"{SYMBOL}","markPrice":"{}","indexPrice":"{}","estimatedSettlePrice":"{}","lastFundingRate":"{}","interestRate":"0.00010000","nextFundingTime":{},"time":{now_ms}}}"#,
            usd8(self.mark_usd),
            usd8(self.index_usd),
            usd8(self.index_usd * (1.0 + BASIS / 3.0)),
            fixed_signed(self.funding_rate_e8, 8),
            (now_ms.div_euclid(FUNDING_MS) + 1) * FUNDING_MS
        )
    }
}

fn event(tick: u64, stream: &'static str, sequenced: bool, text: String) -> VenueEvent {
    VenueEvent {
        venue: VENUE,
        tick,
        topic: Topic::Binance(stream),
        sequenced,
        text: Arc::from(text),
    }
}

impl VenueModel for FuturesState {
    fn step(&mut self, ctx: &StepCtx<'_>) -> Vec<VenueEvent> {
        let (t, tick) = (ctx.t_ms, ctx.tick);
        self.index_usd = ctx.view(ctx.cfg.binance_lag_ms, &mut self.rng);
        self.mark_usd = self.index_usd * (1.0 + BASIS);
        let mid = self.mark_usd;
        let (changes, fill) = self
            .book
            .step(mid, ctx.cfg.binance_trade_prob, &mut self.rng);
        let mut out = Vec::new();
        if let Some(f) = fill {
            self.trades(t, tick, f, &mut out);
        }
        if !changes.is_empty() {
            out.push(self.depth(t, tick, &changes));
        }
        out.extend(self.book_ticker(t, tick));
        if t.div_euclid(1000) != self.last_mark_s {
            self.last_mark_s = t.div_euclid(1000);
            out.push(self.mark(t, tick));
        }
        if self.rng.random_bool(FORCE_PROB) {
            out.extend(self.force_order(t, tick));
        }
        out
    }

    fn rest(&self, path: &str, query: &str, now_ms: i64) -> Option<(u16, String)> {
        let symbol_ok = || {
            match query_param(query, "symbol") {
            Some(SYMBOL) => Ok(()),
            Some(_) => Err((400, r#"{"code":-1121,"msg":"Invalid symbol."}"#.to_string())),
            None => Err((
                400,
                r#"{"code":-1102,"msg":"Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}"#
                    .to_string(),
            )),
        }
        };
        let answer = match path {
            "/fapi/v1/ping" => Ok("{}".to_string()),
            "/fapi/v1/time" => Ok(format!(r#"{{"serverTime":{now_ms}}}"#)),
            "/fapi/v1/depth" => symbol_ok().and_then(|()| {
                let limit = match query_param(query, "limit") {
                    None => 500,
                    Some(l) => l.parse().ok().filter(|l| DEPTH_LIMITS.contains(l)).ok_or((
                        400,
                        r#"{"code":-1130,"msg":"Data sent for parameter 'limit' is not valid."}"#
                            .to_string(),
                    ))?,
                };
                Ok(self.depth_snapshot(limit, now_ms))
            }),
            "/fapi/v1/openInterest" => symbol_ok().map(|()| {
                format!(
                    r#"{{"symbol":"{SYMBOL}","openInterest":"{}","time":{now_ms}}}"#,
                    qty(self.open_interest_milli)
                )
            }),
            "/fapi/v1/premiumIndex" => symbol_ok().map(|()| self.premium_index(now_ms)),
            _ => return None,
        };
        Some(answer.map_or_else(|e| e, |body| (200, body)))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A USD-M futures WebSocket session: Binance's request protocol on one route.
#[derive(Debug)]
pub struct FuturesSession {
    inner: BinanceSession,
    /// Tier delivered on this route.
    tier: Tier,
}

impl FuturesSession {
    /// Open from the request path: `/public/stream?streams=..`, `/market/ws/<name>`, legacy
    /// `/stream`, `/ws` (public tier only).
    pub fn open(path: &str) -> Result<Self, BadPath> {
        let (tier, rest) = if let Some(r) = path.strip_prefix("/public") {
            (Tier::Public, r)
        } else if let Some(r) = path.strip_prefix("/market") {
            (Tier::Market, r)
        } else {
            (Tier::Public, path)
        };
        let inner = BinanceSession::open(rest).map_err(|_| BadPath(path.to_string()))?;
        Ok(Self { inner, tier })
    }
}

impl VenueSession for FuturesSession {
    fn on_text(&mut self, text: &str, _: &Hub) -> Vec<Out> {
        self.inner.on_text(text)
    }
    fn on_event(&mut self, ev: &VenueEvent) -> Option<String> {
        match ev.topic {
            Topic::Binance(s) if tier_of(s) != self.tier => None,
            _ => self.inner.on_event(ev),
        }
    }
    fn shutdown(&self, now_ms: i64) -> Vec<Out> {
        vec![Out::Text(self.inner.shutdown_frame(now_ms))]
    }
}

/// Registry: session factory.
pub fn open(path: &str, _conn_no: u64) -> Result<(Box<dyn VenueSession>, Vec<Out>), OpenError> {
    Ok((Box::new(FuturesSession::open(path)?), Vec::new()))
}

/// Registry: model factory.
pub fn model(seed: u64) -> Box<dyn VenueModel> {
    Box::new(FuturesState::new(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_and_routes() {
        assert_eq!(tier_of(STREAM_DEPTH), Tier::Public);
        assert_eq!(tier_of(STREAM_BOOK_TICKER), Tier::Public);
        assert_eq!(tier_of(STREAM_TRADE), Tier::Public);
        assert_eq!(tier_of(STREAM_AGG), Tier::Market);
        assert_eq!(tier_of(STREAM_MARK), Tier::Market);
        assert_eq!(tier_of(STREAM_FORCE), Tier::Market);
        assert_eq!(
            FuturesSession::open("/market/stream").unwrap().tier,
            Tier::Market
        );
        assert_eq!(
            FuturesSession::open("/public/ws/btcusdt@depth@100ms")
                .unwrap()
                .tier,
            Tier::Public
        );
        assert_eq!(FuturesSession::open("/stream").unwrap().tier, Tier::Public);
        assert!(FuturesSession::open("/private/ws").is_err());
        assert!(FuturesSession::open("/market/foo").is_err());
    }
}
