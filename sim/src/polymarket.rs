//! Polymarket: the emulated BTC Up/Down windows (deterministic token ids per window), their
//! order books repriced from a fair probability with a delay, the CLOB market-channel encoders
//! (`book`, `price_change`, `tick_size_change`, `last_trade_price`, `best_bid_ask`, `new_market`,
//! `market_resolved`, array frames), the market-channel session state machine and the Gamma
//! discovery REST responses (`/markets?slug=`, `/events?slug=`, `/events/slug/<slug>`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{Out, Topic, VenueEvent, VenueId};
use crate::ladder::{Change, Ladder, LadderParams, Side};
use crate::util::{
    decimal_id, hex_id, iso_date, iso_micros, iso_seconds, norm_cdf, trimmed, window_label,
};

/// Price units per 1.0 (prices are kept in thousandths).
const ONE: i64 = 1000;
/// Gamma market object recorded from the real API, used as the field template.
const GAMMA_TEMPLATE: &str =
    include_str!("../fixtures/corpus/gamma_market_btc_updown_5m_1773307200.json");
/// Kept resolved windows (for Gamma lookups of recent closed markets).
const KEEP_CLOSED: usize = 6;

fn price(p: i64) -> String {
    trimmed(p, 3)
}
/// A best price, `""` when the side is empty (as in live `best_bid_ask` frames).
fn best_px(p: i64) -> String {
    if p == 0 { String::new() } else { price(p) }
}
fn size(centi: i64) -> String {
    trimmed(centi, 2)
}

/// One emulated 5-minute (or configured length) window.
#[derive(Debug, Clone)]
pub struct Window {
    /// Window start, unix seconds (the slug suffix).
    pub start_s: i64,
    /// Window end, unix seconds.
    pub end_s: i64,
    /// `btc-updown-5m-<start>`.
    pub slug: String,
    /// Condition id (`0x` + 64 hex).
    pub condition_id: String,
    question_id: String,
    market_id: u64,
    event_id: u64,
    /// Token ids, index 0 = Up, 1 = Down (index-aligned with `outcomes`).
    pub tokens: [String; 2],
    /// Up-token book (prices in thousandths, sizes in hundredths of a share). The Down book is its
    /// mirror: Down bid at `1 - p` for every Up ask at `p`.
    up: Ladder,
    tick: i64,
    /// Chainlink strike (window-start reference), USD.
    pub strike: Option<f64>,
    last_trade: [Option<i64>; 2],
    last_best: [(i64, i64); 2],
    /// `Some(up_won)` once resolved.
    pub resolved: Option<bool>,
    created_ms: i64,
    /// Last `timestamp` (ms) written in an event about this window's assets: every event gets a
    /// strictly larger one, so `(asset_id, timestamp)` identifies a frame (wire log contract).
    last_ts_ms: i64,
    /// Level changes made by the CLOB emulator's trades, published with the next step.
    pending: Vec<Change>,
    /// The CLOB emulator's trades `(token index, taker side, token price, qty)`, published as
    /// `last_trade_price` with the next step.
    pending_trades: Vec<(usize, &'static str, i64, i64)>,
    /// A tick size set by the control endpoint (overrides the automatic one).
    forced_tick: Option<i64>,
}

impl Window {
    /// The next event timestamp at step time `t_ms`: `t_ms`, bumped by 1 ms past the previous
    /// event of this window when equal or behind.
    fn stamp(&mut self, t_ms: i64) -> String {
        let t = t_ms.max(self.last_ts_ms + 1);
        self.last_ts_ms = t;
        t.to_string()
    }

    /// Deterministic identity of the window starting at `start_s` under `seed`.
    pub fn new(seed: u64, start_s: i64, len_s: i64, created_ms: i64) -> Self {
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed ^ (start_s as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let index = (start_s / len_s.max(1)) as u64;
        Self {
            start_s,
            end_s: start_s + len_s,
            slug: ringbolt_market::slug(start_s),
            condition_id: format!("0x{}", hex_id(&mut rng, 64)),
            question_id: format!("0x{}", hex_id(&mut rng, 64)),
            market_id: 1_000_000 + index % 8_000_000,
            event_id: 200_000 + index % 800_000,
            tokens: [decimal_id(&mut rng, 77), decimal_id(&mut rng, 77)],
            up: Ladder::default(),
            tick: 10,
            strike: None,
            last_trade: [None, None],
            last_best: [(0, 0), (0, 0)],
            resolved: None,
            created_ms,
            last_ts_ms: i64::MIN / 2,
            pending: Vec::new(),
            pending_trades: Vec::new(),
            forced_tick: None,
        }
    }

    /// Book of token `idx` (0 Up, 1 Down) as (bids, asks) maps.
    fn book(&self, idx: usize) -> (BTreeMap<i64, i64>, BTreeMap<i64, i64>) {
        if idx == 0 {
            (self.up.bids.clone(), self.up.asks.clone())
        } else {
            (
                self.up.asks.iter().map(|(p, q)| (ONE - p, *q)).collect(),
                self.up.bids.iter().map(|(p, q)| (ONE - p, *q)).collect(),
            )
        }
    }

    fn best(&self, idx: usize) -> (i64, i64) {
        let (b, a) = self.book(idx);
        (
            b.keys().next_back().copied().unwrap_or(0),
            a.keys().next().copied().unwrap_or(0),
        )
    }

    fn title(&self) -> String {
        format!(
            "Bitcoin Up or Down - {} [EMULATED]",
            window_label(self.start_s * 1000, self.end_s * 1000)
        )
    }
}

#[derive(Serialize)]
struct Level {
    price: String,
    size: String,
}

#[derive(Serialize)]
struct BookMsg<'a> {
    market: &'a str,
    asset_id: &'a str,
    timestamp: String,
    hash: String,
    bids: Vec<Level>,
    asks: Vec<Level>,
    tick_size: String,
    event_type: &'static str,
    last_trade_price: String,
}

#[derive(Serialize)]
struct PriceChangeEntry<'a> {
    asset_id: &'a str,
    price: String,
    size: String,
    side: &'static str,
    hash: String,
    best_bid: String,
    best_ask: String,
}

#[derive(Serialize)]
struct PriceChange<'a> {
    event_type: &'static str,
    market: &'a str,
    price_changes: Vec<PriceChangeEntry<'a>>,
    timestamp: String,
}

#[derive(Serialize)]
struct TickSizeChange<'a> {
    event_type: &'static str,
    asset_id: &'a str,
    market: &'a str,
    old_tick_size: String,
    new_tick_size: String,
    timestamp: String,
}

#[derive(Serialize)]
struct LastTradePrice<'a> {
    event_type: &'static str,
    asset_id: &'a str,
    market: &'a str,
    price: String,
    size: String,
    fee_rate_bps: &'static str,
    side: &'static str,
    timestamp: String,
    transaction_hash: String,
}

#[derive(Serialize)]
struct BestBidAsk<'a> {
    event_type: &'static str,
    market: &'a str,
    asset_id: &'a str,
    best_bid: String,
    best_ask: String,
    spread: String,
    timestamp: String,
}

#[derive(Serialize)]
struct EventMessage<'a> {
    id: String,
    ticker: &'a str,
    slug: &'a str,
    title: String,
    description: &'static str,
}

#[derive(Serialize)]
struct FeeSchedule {
    exponent: &'static str,
    rate: &'static str,
    taker_only: bool,
    rebate_rate: &'static str,
}

#[derive(Serialize)]
struct NewMarket<'a> {
    id: String,
    question: String,
    market: &'a str,
    slug: &'a str,
    description: &'static str,
    assets_ids: &'a [String; 2],
    outcomes: [&'static str; 2],
    event_message: EventMessage<'a>,
    timestamp: String,
    event_type: &'static str,
    tags: [&'static str; 0],
    condition_id: &'a str,
    active: bool,
    clob_token_ids: &'a [String; 2],
    sports_market_type: &'static str,
    line: &'static str,
    game_start_time: &'static str,
    order_price_min_tick_size: &'static str,
    group_item_title: &'static str,
    taker_base_fee: &'static str,
    fees_enabled: bool,
    fee_schedule: FeeSchedule,
}

#[derive(Serialize)]
struct MarketResolved<'a> {
    event_type: &'static str,
    id: String,
    market: &'a str,
    assets_ids: &'a [String; 2],
    winning_asset_id: &'a str,
    winning_outcome: &'static str,
    timestamp: String,
    tags: [&'static str; 0],
}

const DESCRIPTION: &str = "EMULATED market (ringbolt sim, not Polymarket). This market will resolve to \"Up\" if the Bitcoin price at the end of the time range specified in the title is greater than or equal to the price at the beginning of that range. Otherwise, it will resolve to \"Down\".";

/// Inputs of one Polymarket step.
#[derive(Debug, Clone, Copy)]
pub struct PolyInputs {
    /// Step time, ms.
    pub t_ms: i64,
    /// Market step number.
    pub tick: u64,
    /// Delayed reference price the books reprice from, USD.
    pub reference_usd: f64,
    /// Effective volatility per sqrt(second) of the reference.
    pub vol_per_sqrt_s: f64,
    /// Probability of a trade per step.
    pub trade_prob: f64,
}

/// Polymarket venue state: windows by start second.
#[derive(Debug)]
pub struct PolyState {
    seed: u64,
    len_s: i64,
    windows: BTreeMap<i64, Window>,
}

impl PolyState {
    /// Empty state.
    pub fn new(seed: u64, len_s: i64) -> Self {
        Self {
            seed,
            len_s: len_s.max(1),
            windows: BTreeMap::new(),
        }
    }

    /// Window length, seconds.
    pub fn len_s(&self) -> i64 {
        self.len_s
    }

    /// All known windows (closed, current, next), oldest first.
    pub fn windows(&self) -> impl Iterator<Item = &Window> {
        self.windows.values()
    }

    /// The window containing `t_ms`.
    pub fn current(&self, t_ms: i64) -> Option<&Window> {
        let start = (t_ms / 1000).div_euclid(self.len_s) * self.len_s;
        self.windows.get(&start)
    }

    /// Order-entry view of a token (for the CLOB emulator): tick, top of book, resolution.
    pub fn token_info(&self, asset: &str) -> Option<crate::clob::TokenInfo> {
        let (w, idx) = self.find_asset(asset)?;
        let (best_bid, best_ask) = w.best(idx);
        Some(crate::clob::TokenInfo {
            tick: if w.tick == 1 {
                ringbolt_market::Tick::T0_001
            } else {
                ringbolt_market::Tick::T0_01
            },
            best_bid,
            best_ask,
            resolved: w.resolved.is_some(),
        })
    }

    /// Forces the tick size of the window holding `asset` (`tick_e3`: 1 = 0.001, 10 = 0.01;
    /// `None` returns to the automatic one); published as `tick_size_change` by the next step.
    pub fn force_tick(&mut self, asset: &str, tick_e3: Option<i64>) -> bool {
        let found = self
            .windows
            .values_mut()
            .find(|w| w.tokens.iter().any(|t| t == asset));
        found.map(|w| w.forced_tick = tick_e3).is_some()
    }

    fn find_asset(&self, asset: &str) -> Option<(&Window, usize)> {
        self.windows
            .values()
            .find_map(|w| w.tokens.iter().position(|t| t == asset).map(|i| (w, i)))
    }

    /// One market step. `strike_at(start_ms)` gives the Chainlink value at a window start and
    /// `settle_at(end_ms)` at its end.
    pub fn step(
        &mut self,
        inp: PolyInputs,
        strike_at: &dyn Fn(i64) -> f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<VenueEvent> {
        let mut events = Vec::new();
        let t_ms = inp.t_ms;
        let cur = (t_ms / 1000).div_euclid(self.len_s) * self.len_s;
        // Resolve ended windows.
        for w in self.windows.values_mut() {
            if w.resolved.is_none() && w.end_s * 1000 <= t_ms {
                let strike = w.strike.unwrap_or_else(|| strike_at(w.start_s * 1000));
                let up_won = strike_at(w.end_s * 1000) >= strike;
                w.resolved = Some(up_won);
                let idx = if up_won { 0 } else { 1 };
                let ts = w.stamp(t_ms);
                let msg = MarketResolved {
                    event_type: "market_resolved",
                    id: w.market_id.to_string(),
                    market: &w.condition_id,
                    assets_ids: &w.tokens,
                    winning_asset_id: &w.tokens[idx],
                    winning_outcome: if up_won { "Up" } else { "Down" },
                    timestamp: ts,
                    tags: [],
                };
                events.push(event(inp.tick, w.tokens.to_vec(), true, false, false, &msg));
            }
        }
        // Create the current and the next window.
        for start in [cur, cur + self.len_s] {
            if !self.windows.contains_key(&start) {
                let mut w = Window::new(self.seed, start, self.len_s, t_ms);
                let ts = w.stamp(t_ms);
                let msg = NewMarket {
                    id: w.market_id.to_string(),
                    question: w.title(),
                    market: &w.condition_id,
                    slug: &w.slug,
                    description: DESCRIPTION,
                    assets_ids: &w.tokens,
                    outcomes: ["Up", "Down"],
                    event_message: EventMessage {
                        id: w.event_id.to_string(),
                        ticker: &w.slug,
                        slug: &w.slug,
                        title: w.title(),
                        description: DESCRIPTION,
                    },
                    timestamp: ts,
                    event_type: "new_market",
                    tags: [],
                    condition_id: &w.condition_id,
                    active: true,
                    clob_token_ids: &w.tokens,
                    sports_market_type: "",
                    line: "",
                    game_start_time: "",
                    order_price_min_tick_size: "0.01",
                    group_item_title: "",
                    taker_base_fee: "1000",
                    fees_enabled: true,
                    fee_schedule: FeeSchedule {
                        exponent: "1",
                        rate: "0.07",
                        taker_only: true,
                        rebate_rate: "0.2",
                    },
                };
                events.push(event(inp.tick, Vec::new(), false, true, true, &msg));
                self.windows.insert(start, w);
            }
        }
        // Prune old closed windows.
        while self.windows.len() > KEEP_CLOSED + 2 {
            let Some(first) = self.windows.keys().next().copied() else {
                break;
            };
            self.windows.remove(&first);
        }
        // Reprice live and pre-open books.
        for w in self.windows.values_mut().filter(|w| w.resolved.is_none()) {
            let p_up = if t_ms < w.start_s * 1000 {
                0.5
            } else {
                let strike = *w.strike.get_or_insert_with(|| strike_at(w.start_s * 1000));
                let tau_s = ((w.end_s * 1000 - t_ms) as f64 / 1000.0).max(1e-3);
                let sig = inp.vol_per_sqrt_s * tau_s.sqrt();
                let d = ((inp.reference_usd / strike).ln() - 0.5 * sig * sig) / sig;
                norm_cdf(d)
            };
            step_window(w, p_up, &inp, rng, &mut events);
        }
        events
    }

    /// The `book` event of an asset (live key order; bids ascending, asks descending).
    fn book_msg(w: &Window, idx: usize, ts: &str, rng: &mut ChaCha8Rng) -> String {
        let (bids, asks) = w.book(idx);
        let msg = BookMsg {
            market: &w.condition_id,
            asset_id: &w.tokens[idx],
            timestamp: ts.to_string(),
            hash: hex_id(rng, 40),
            bids: bids
                .iter()
                .map(|(p, q)| Level {
                    price: price(*p),
                    size: size(*q),
                })
                .collect(),
            asks: asks
                .iter()
                .rev()
                .map(|(p, q)| Level {
                    price: price(*p),
                    size: size(*q),
                })
                .collect(),
            tick_size: price(w.tick),
            event_type: "book",
            last_trade_price: w.last_trade[idx]
                .map(|p| format!("{:.3}", p as f64 / 1000.0))
                .unwrap_or_default(),
        };
        serde_json::to_string(&msg).unwrap_or_default()
    }

    /// The JSON-array frame of `book` events for the requested assets that are live (unknown or
    /// resolved assets are left out; none at all gives `[]`).
    pub fn books_frame(&self, assets: &[String], t_ms: i64, tick: u64) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ tick);
        let books: Vec<String> = assets
            .iter()
            .filter_map(|a| self.find_asset(a))
            .filter(|(w, _)| w.resolved.is_none())
            .map(|(w, i)| Self::book_msg(w, i, &t_ms.to_string(), &mut rng))
            .collect();
        format!("[{}]", books.join(","))
    }

    /// Gamma market object of a window (the recorded real object with this window's values).
    pub fn gamma_market(&self, w: &Window, now_ms: i64) -> Value {
        let mut m: Value = serde_json::from_str(GAMMA_TEMPLATE).unwrap_or(Value::Null);
        let (bb, ba) = w.best(0);
        let mid = if bb > 0 && ba > 0 {
            (bb + ba) as f64 / 2000.0
        } else {
            0.5
        };
        let closed = w.resolved.is_some();
        let outcome_prices = match w.resolved {
            Some(true) => r#"["1", "0"]"#.to_string(),
            Some(false) => r#"["0", "1"]"#.to_string(),
            None => format!(
                r#"["{}", "{}"]"#,
                trimmed((mid * 1000.0).round() as i64, 3),
                trimmed(1000 - (mid * 1000.0).round() as i64, 3)
            ),
        };
        let created = iso_micros(w.created_ms * 1000);
        let set = |m: &mut Value, k: &str, v: Value| {
            if let Some(o) = m.as_object_mut() {
                o.insert(k.to_string(), v);
            }
        };
        let start_iso = iso_seconds(w.start_s * 1000);
        let end_iso = iso_seconds(w.end_s * 1000);
        set(&mut m, "id", Value::from(w.market_id.to_string()));
        set(&mut m, "question", Value::from(w.title()));
        set(&mut m, "conditionId", Value::from(w.condition_id.clone()));
        set(&mut m, "slug", Value::from(w.slug.clone()));
        set(&mut m, "endDate", Value::from(end_iso.clone()));
        set(&mut m, "startDate", Value::from(created.clone()));
        set(&mut m, "description", Value::from(DESCRIPTION));
        set(&mut m, "outcomes", Value::from(r#"["Up", "Down"]"#));
        set(&mut m, "outcomePrices", Value::from(outcome_prices));
        set(&mut m, "active", Value::from(true));
        set(&mut m, "closed", Value::from(closed));
        set(&mut m, "createdAt", Value::from(created.clone()));
        set(&mut m, "updatedAt", Value::from(iso_micros(now_ms * 1000)));
        set(&mut m, "questionID", Value::from(w.question_id.clone()));
        set(&mut m, "endDateIso", Value::from(iso_date(w.end_s * 1000)));
        set(&mut m, "startDateIso", Value::from(iso_date(w.created_ms)));
        set(
            &mut m,
            "clobTokenIds",
            Value::from(format!(r#"["{}", "{}"]"#, w.tokens[0], w.tokens[1])),
        );
        set(&mut m, "acceptingOrders", Value::from(!closed));
        set(
            &mut m,
            "acceptingOrdersTimestamp",
            Value::from(iso_seconds(w.created_ms)),
        );
        set(&mut m, "eventStartTime", Value::from(start_iso.clone()));
        set(
            &mut m,
            "orderPriceMinTickSize",
            Value::from(w.tick as f64 / 1000.0),
        );
        set(&mut m, "bestBid", Value::from(bb as f64 / 1000.0));
        set(&mut m, "bestAsk", Value::from(ba as f64 / 1000.0));
        set(&mut m, "spread", Value::from((ba - bb) as f64 / 1000.0));
        set(
            &mut m,
            "lastTradePrice",
            Value::from(w.last_trade[0].unwrap_or(0) as f64 / 1000.0),
        );
        if let Some(ev) = m
            .get_mut("events")
            .and_then(Value::as_array_mut)
            .and_then(|a| a.first_mut())
        {
            set(ev, "id", Value::from(w.event_id.to_string()));
            set(ev, "ticker", Value::from(w.slug.clone()));
            set(ev, "slug", Value::from(w.slug.clone()));
            set(ev, "title", Value::from(w.title()));
            set(ev, "description", Value::from(DESCRIPTION));
            set(ev, "startDate", Value::from(created.clone()));
            set(ev, "creationDate", Value::from(created.clone()));
            set(ev, "endDate", Value::from(end_iso));
            set(ev, "startTime", Value::from(start_iso));
            set(ev, "closed", Value::from(closed));
            set(ev, "createdAt", Value::from(created));
            set(ev, "updatedAt", Value::from(iso_micros(now_ms * 1000)));
        }
        m
    }

    /// Gamma REST: `(status, body)` for `GET <path>?<query>`; `None` if the path is not Gamma's.
    pub fn gamma(&self, path: &str, query: &str, now_ms: i64) -> Option<(u16, String)> {
        let slugs: Vec<&str> = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("slug="))
            .collect();
        let find = |slug: &str| self.windows.values().find(|w| w.slug == slug);
        let list = |one: &dyn Fn(&Window) -> Value| {
            let arr: Vec<Value> = slugs.iter().filter_map(|s| find(s)).map(one).collect();
            Some((200, Value::Array(arr).to_string()))
        };
        match path {
            "/markets" => list(&|w| self.gamma_market(w, now_ms)),
            "/events" => list(&|w| self.gamma_event(w, now_ms)),
            p if p.starts_with("/events/slug/") => match find(&p["/events/slug/".len()..]) {
                Some(w) => Some((200, self.gamma_event(w, now_ms).to_string())),
                None => Some((
                    404,
                    r#"{"type":"not found error","error":"not found"}"#.to_string(),
                )),
            },
            _ => None,
        }
    }

    fn gamma_event(&self, w: &Window, now_ms: i64) -> Value {
        let mut market = self.gamma_market(w, now_ms);
        let mut ev = market
            .get("events")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(o) = market.as_object_mut() {
            o.remove("events");
        }
        if let Some(o) = ev.as_object_mut() {
            o.insert("markets".into(), Value::Array(vec![market]));
        }
        ev
    }
}

fn step_window(
    w: &mut Window,
    p_up: f64,
    inp: &PolyInputs,
    rng: &mut ChaCha8Rng,
    events: &mut Vec<VenueEvent>,
) {
    let t_ms = inp.t_ms;
    // Tick size: 0.001 near the extremes, as on the live venue.
    let auto_tick = if !(0.04..=0.96).contains(&p_up) {
        1
    } else {
        10
    };
    let tick = w.forced_tick.unwrap_or(auto_tick);
    emit_clob_trades(w, inp, rng, events);
    let mut changes: Vec<Change> = std::mem::take(&mut w.pending);
    if tick != w.tick {
        retick(w, tick, inp, events, &mut changes);
    }
    let fair = (p_up * ONE as f64).round() as i64;
    let best_bid = ((fair - tick / 2).max(tick) / tick) * tick;
    let best_ask = best_bid + tick * if rng.random_bool(0.2) { 2 } else { 1 };
    let params = LadderParams {
        depth: 12,
        step: tick,
        max_gap_ticks: 2,
        qty_min: 500,
        qty_max: 200_000,
        perturb: usize::from(rng.random_bool(0.3)),
        lo: tick,
        hi: ONE - tick,
    };
    changes.extend(w.up.reprice(best_bid, best_ask, &params, rng));
    let trade = random_trade(w, inp, rng, &mut changes);
    if let Some(t) = trade {
        events.push(last_trade_event(w, inp, rng, t));
    }
    if !changes.is_empty() {
        emit_price_change(w, &changes, inp, rng, events);
    }
    if let Some((idx, ..)) = trade {
        let ts = w.stamp(t_ms);
        let book = PolyState::book_msg(w, idx, &ts, rng);
        events.push(VenueEvent {
            venue: VenueId::Polymarket,
            tick: inp.tick,
            topic: Topic::Polymarket {
                assets: vec![w.tokens[idx].clone()],
                custom_only: false,
                to_all_custom: false,
            },
            sequenced: false,
            text: Arc::from(book),
        });
    }
    emit_best_bid_ask(w, inp, events);
}

/// The CLOB emulator's trades since the last step, as `last_trade_price`.
fn emit_clob_trades(
    w: &mut Window,
    inp: &PolyInputs,
    rng: &mut ChaCha8Rng,
    events: &mut Vec<VenueEvent>,
) {
    for t in std::mem::take(&mut w.pending_trades) {
        events.push(last_trade_event(w, inp, rng, t));
    }
}

/// The `last_trade_price` event of a trade `(token index, side, token price, quantity)`.
fn last_trade_event(
    w: &mut Window,
    inp: &PolyInputs,
    rng: &mut ChaCha8Rng,
    (idx, side, px, q): (usize, &'static str, i64, i64),
) -> VenueEvent {
    let ts = w.stamp(inp.t_ms);
    let msg = LastTradePrice {
        event_type: "last_trade_price",
        asset_id: &w.tokens[idx],
        market: &w.condition_id,
        price: price(px),
        size: size(q),
        fee_rate_bps: "0",
        side,
        timestamp: ts,
        transaction_hash: format!("0x{}", hex_id(rng, 64)),
    };
    asset_event(inp.tick, &w.tokens[idx], &msg)
}

/// A tick size change to `tick`: the `tick_size_change` events of both tokens, and the Up
/// ladder's levels off the new grid withdrawn (into `changes`).
fn retick(
    w: &mut Window,
    tick: i64,
    inp: &PolyInputs,
    events: &mut Vec<VenueEvent>,
    changes: &mut Vec<Change>,
) {
    let t_ms = inp.t_ms;
    for idx in 0..2 {
        let ts = w.stamp(t_ms);
        let msg = TickSizeChange {
            event_type: "tick_size_change",
            asset_id: &w.tokens[idx],
            market: &w.condition_id,
            old_tick_size: price(w.tick),
            new_tick_size: price(tick),
            timestamp: ts,
        };
        events.push(asset_event(inp.tick, &w.tokens[idx], &msg));
    }
    w.tick = tick;
    // Levels off the new grid are withdrawn.
    let mut out = BTreeMap::new();
    w.up.withdraw_off_grid(tick, &mut out);
    changes.extend(
        out.into_iter()
            .map(|((side, price), qty)| Change { side, price, qty }),
    );
}

/// With probability `trade_prob`, a trade against the best level of a random token and side
/// (recorded into `changes`): `(token index, side, token price, quantity)`.
fn random_trade(
    w: &mut Window,
    inp: &PolyInputs,
    rng: &mut ChaCha8Rng,
    changes: &mut Vec<Change>,
) -> Option<(usize, &'static str, i64, i64)> {
    if !rng.random_bool(inp.trade_prob) {
        return None;
    }
    let idx = rng.random_range(0..2usize);
    let buy = rng.random_bool(0.5);
    // BUY lifts the token's ask; on the Up ladder a Down ask at 1-p is an Up bid at p.
    let up_side = match (idx, buy) {
        (0, true) | (1, false) => Side::Ask,
        _ => Side::Bid,
    };
    let level = if up_side == Side::Ask {
        w.up.best_ask()
    } else {
        w.up.best_bid()
    };
    if let Some((p, avail)) = level {
        let q = rng.random_range(500..=20_000).min(avail);
        w.up.fill(up_side, p, q, changes);
        let token_px = if idx == 0 { p } else { ONE - p };
        w.last_trade[idx] = Some(token_px);
        return Some((idx, if buy { "BUY" } else { "SELL" }, token_px, q));
    }
    None
}

/// One `price_change` event carrying `changes` for both tokens (Up entry, mirrored Down entry).
fn emit_price_change(
    w: &mut Window,
    changes: &[Change],
    inp: &PolyInputs,
    rng: &mut ChaCha8Rng,
    events: &mut Vec<VenueEvent>,
) {
    let t_ms = inp.t_ms;
    let best = [w.best(0), w.best(1)];
    let mut entries = Vec::new();
    for c in changes {
        // Up entry, then the mirrored Down entry.
        let up_side = if c.side == Side::Bid { "BUY" } else { "SELL" };
        let down_side = if c.side == Side::Bid { "SELL" } else { "BUY" };
        for (idx, px, side) in [(0usize, c.price, up_side), (1, ONE - c.price, down_side)] {
            entries.push(PriceChangeEntry {
                asset_id: &w.tokens[idx],
                price: price(px),
                size: size(c.qty),
                side,
                hash: hex_id(rng, 40),
                best_bid: best_px(best[idx].0),
                best_ask: best_px(best[idx].1),
            });
        }
    }
    let ts = w.last_ts_ms.max(t_ms - 1) + 1;
    w.last_ts_ms = ts;
    let msg = PriceChange {
        event_type: "price_change",
        market: &w.condition_id,
        price_changes: entries,
        timestamp: ts.to_string(),
    };
    events.push(event(inp.tick, w.tokens.to_vec(), true, false, false, &msg));
}

/// A `best_bid_ask` event for each token whose best prices moved.
fn emit_best_bid_ask(w: &mut Window, inp: &PolyInputs, events: &mut Vec<VenueEvent>) {
    let t_ms = inp.t_ms;
    for idx in 0..2 {
        let b = w.best(idx);
        if b != w.last_best[idx] {
            w.last_best[idx] = b;
            let ts = w.stamp(t_ms);
            let msg = BestBidAsk {
                event_type: "best_bid_ask",
                market: &w.condition_id,
                asset_id: &w.tokens[idx],
                best_bid: best_px(b.0),
                best_ask: best_px(b.1),
                spread: if b.0 == 0 || b.1 == 0 {
                    String::new()
                } else {
                    price(b.1 - b.0)
                },
                timestamp: ts,
            };
            events.push(event(
                inp.tick,
                vec![w.tokens[idx].clone()],
                false,
                true,
                false,
                &msg,
            ));
        }
    }
}

/// A plain (non-custom) event about one asset.
fn asset_event<T: Serialize>(tick: u64, asset: &str, msg: &T) -> VenueEvent {
    event(tick, vec![asset.to_string()], false, false, false, msg)
}

fn event<T: Serialize>(
    tick: u64,
    assets: Vec<String>,
    sequenced: bool,
    custom_only: bool,
    to_all_custom: bool,
    msg: &T,
) -> VenueEvent {
    VenueEvent {
        venue: VenueId::Polymarket,
        tick,
        topic: Topic::Polymarket {
            assets,
            custom_only,
            to_all_custom,
        },
        sequenced,
        text: Arc::from(serde_json::to_string(msg).unwrap_or_default()),
    }
}

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    assets_ids: Vec<String>,
    #[serde(default)]
    custom_feature_enabled: Option<bool>,
    #[serde(default)]
    initial_dump: Option<bool>,
}

/// A Polymarket market-channel session.
#[derive(Debug, Default)]
pub struct PolySession {
    assets: BTreeMap<String, u64>,
    custom: bool,
    started: bool,
}

impl PolySession {
    /// Whether the initial `{"type":"market",...}` subscription was received.
    pub fn has_subscription(&self) -> bool {
        self.started
    }

    /// Subscribed asset ids.
    pub fn assets(&self) -> BTreeSet<&str> {
        self.assets.keys().map(String::as_str).collect()
    }

    /// Handle a client text frame (`PING`, the initial subscription, or an `operation`).
    pub fn on_text(
        &mut self,
        text: &str,
        state: Option<&PolyState>,
        tick: u64,
        now_ms: i64,
    ) -> Vec<Out> {
        if text == "PING" {
            return vec![Out::Text("PONG".into())];
        }
        let Ok(req) = serde_json::from_str::<Request>(text) else {
            return vec![Out::Text("INVALID OPERATION".into())];
        };
        if let Some(c) = req.custom_feature_enabled {
            self.custom = c;
        }
        let (add, dump) = match (req.operation.as_deref(), req.kind.as_deref()) {
            (Some("subscribe"), _) => (true, true),
            (Some("unsubscribe"), _) => (false, false),
            (None, Some(k)) if k.eq_ignore_ascii_case("market") => {
                self.started = true;
                self.assets.clear();
                (true, req.initial_dump.unwrap_or(true))
            }
            _ => return vec![Out::Text("INVALID OPERATION".into())],
        };
        if !add {
            for a in &req.assets_ids {
                self.assets.remove(a);
            }
            return Vec::new();
        }
        self.started = true;
        for a in &req.assets_ids {
            self.assets.insert(a.clone(), tick);
        }
        match (dump, state) {
            (true, Some(st)) => vec![Out::Text(st.books_frame(&req.assets_ids, now_ms, tick))],
            _ => Vec::new(),
        }
    }

    /// Filter a market event.
    pub fn on_event(&self, ev: &VenueEvent) -> Option<String> {
        match &ev.topic {
            Topic::Polymarket {
                assets,
                custom_only,
                to_all_custom,
            } => {
                if *custom_only && !self.custom {
                    return None;
                }
                if *to_all_custom {
                    return self.started.then(|| ev.text.to_string());
                }
                let wanted = assets
                    .iter()
                    .any(|a| self.assets.get(a).is_some_and(|since| ev.tick > *since));
                wanted.then(|| ev.text.to_string())
            }
            Topic::Replay => self.has_subscription().then(|| ev.text.to_string()),
            _ => None,
        }
    }
}

/// The CLOB emulator trades against these books: what it takes is withdrawn from the Up ladder
/// (a Down level is the mirror of an Up level) and published with the next step.
impl crate::clob_engine::ExchangeVenue for PolyState {
    fn token_info(&self, asset: &str) -> Option<crate::clob::TokenInfo> {
        PolyState::token_info(self, asset)
    }

    fn token_meta(&self, asset: &str) -> Option<(String, &'static str)> {
        let (w, idx) = self.find_asset(asset)?;
        Some((w.condition_id.clone(), if idx == 0 { "Up" } else { "Down" }))
    }

    fn levels(&self, asset: &str, taker: crate::clob_engine::Side) -> Vec<(i64, i64)> {
        let Some((w, idx)) = self.find_asset(asset) else {
            return Vec::new();
        };
        let (bids, asks) = w.book(idx);
        let conv = |(p, q): (&i64, &i64)| (p * 1000, q * 10_000);
        match taker {
            crate::clob_engine::Side::Buy => asks.iter().map(conv).collect(),
            crate::clob_engine::Side::Sell => bids.iter().rev().map(conv).collect(),
        }
    }

    fn take(
        &mut self,
        asset: &str,
        taker: crate::clob_engine::Side,
        price_e6: i64,
        qty_micro: i64,
    ) {
        let Some(w) = self
            .windows
            .values_mut()
            .find(|w| w.tokens.iter().any(|t| t == asset))
        else {
            return;
        };
        let idx = usize::from(w.tokens[0] != asset);
        let (p, q) = (price_e6 / 1000, qty_micro / 10_000);
        let buy = taker == crate::clob_engine::Side::Buy;
        // A BUY lifts the token's ask; a Down ask at p is an Up bid at 1 - p.
        let (side, up_px) = match (idx, buy) {
            (0, true) => (Side::Ask, p),
            (0, false) => (Side::Bid, p),
            (_, true) => (Side::Bid, ONE - p),
            (_, false) => (Side::Ask, ONE - p),
        };
        let mut changes = std::mem::take(&mut w.pending);
        w.up.fill(side, up_px, q, &mut changes);
        w.pending = changes;
        w.last_trade[idx] = Some(p);
        w.pending_trades
            .push((idx, if buy { "BUY" } else { "SELL" }, p, q));
    }
}
