//! What the page shows, built from bus records (sans-IO: records in, JSON out).
//!
//! Market records go through the decision core's own [`MarketState`] (the same composite
//! reference, Chainlink strike and Polymarket books the trade process computes); decisions, order
//! transitions, fills and settlements come from the trade process's segment. Every
//! [`View::sample`] appends one chart point and returns the panels' JSON.

use std::collections::{BTreeMap, HashMap, VecDeque};

use ringbolt_bus::{
    Decision, FeedState, FeedStatusBody, Fill, OrderState, OrderTransition, PRICE_SCALE,
    PROB_SCALE, Record, RecordKind, SIZE_SCALE, Settlement, Side, Venue,
};
use ringbolt_decide::market::{MarketState, is_ref_venue};
use ringbolt_decide::{DecideConfig, PolyBook, Reason, SEGMENT_ID_SPAN};
use serde_json::{Value, json};

/// Reference venues charted, in column order (every venue `decide` counts in its composite).
fn chart_venues() -> Vec<Venue> {
    Venue::ALL
        .iter()
        .copied()
        .filter(|v| is_ref_venue(*v))
        .collect()
}

/// Fixed chart columns before the per-venue ones.
pub const FIXED_COLUMNS: [&str; 8] = [
    "t",
    "reference",
    "chainlink",
    "strike",
    "up_mid",
    "down_mid",
    "prob_up",
    "prob_down",
];

const FIRES_KEPT: usize = 40;
const LADDER_LEVELS: usize = 10;
const RTT_KEPT: usize = 1024;
const OUTCOME_MAP_MAX: usize = 100_000;

/// One feed stream's last status.
#[derive(Clone, Copy, Debug)]
struct FeedRow {
    state: u8,
    body: FeedStatusBody,
    at_ns: i64,
    changes: u64,
    /// Entries into `disconnected` and `gap_detected` seen on the bus.
    disconnects: u64,
    gap_states: u64,
    /// The last stale, gap or disconnected state, and when (a transient one may fall between two
    /// ticks: the bus sees every transition).
    issue: Option<(u8, i64)>,
}

/// One of our working orders.
#[derive(Clone, Copy, Debug)]
struct OpenOrder {
    outcome: Option<u8>,
    side: u8,
    price: i64,
    size: i64,
    filled: i64,
    state: u8,
    paper: bool,
}

/// Positions and cash of one window's token (`outcome`), from fills and settlements.
#[derive(Clone, Copy, Debug, Default)]
struct Position {
    shares_e8: i64,
    cash_e8: i128,
    fees_e8: i64,
    payout_e8: i64,
    fills: u64,
    settled: bool,
}

/// The dashboard's state.
#[derive(Debug)]
pub struct View {
    market: MarketState,
    looked_up: Vec<bool>,
    venues: Vec<Venue>,
    stream_names: HashMap<(u8, u8), &'static str>,
    feeds: BTreeMap<(u8, u8), FeedRow>,
    prob_up: Option<f64>,
    decisions_total: u64,
    fired_total: u64,
    reasons_total: BTreeMap<u8, u64>,
    reasons_recent: BTreeMap<u8, u64>,
    fires: VecDeque<Value>,
    outcome_of: HashMap<u64, u8>,
    orders: HashMap<(u8, u64), OpenOrder>,
    submitted_ns: HashMap<u64, i64>,
    place_rtt_ns: VecDeque<u64>,
    positions: BTreeMap<(i64, u8), Position>,
    history: VecDeque<Vec<Option<f64>>>,
    history_len: usize,
    records: u64,
}

fn e8(v: i64) -> f64 {
    v as f64 / PRICE_SCALE as f64
}

impl View {
    /// A view keeping `history_len` chart points, with the decision core's parameters.
    #[must_use]
    pub fn new(decide: &DecideConfig, history_len: usize) -> Self {
        let mut stream_names = HashMap::new();
        for &v in ringbolt_feeds::venues::IMPLEMENTED {
            if let Some(a) = ringbolt_feeds::venues::adapter_for(
                v,
                ringbolt_feeds::continuity::SyncMode::Observe,
            ) {
                for s in a.streams() {
                    stream_names.insert((v as u8, s.id), s.name);
                }
            }
        }
        Self {
            market: MarketState::new(decide),
            looked_up: vec![false; decide.instrument_capacity],
            venues: chart_venues(),
            stream_names,
            feeds: BTreeMap::new(),
            prob_up: None,
            decisions_total: 0,
            fired_total: 0,
            reasons_total: BTreeMap::new(),
            reasons_recent: BTreeMap::new(),
            fires: VecDeque::new(),
            outcome_of: HashMap::new(),
            orders: HashMap::new(),
            submitted_ns: HashMap::new(),
            place_rtt_ns: VecDeque::new(),
            positions: BTreeMap::new(),
            history: VecDeque::new(),
            history_len: history_len.max(1),
            records: 0,
        }
    }

    /// The chart's column names (the first is time in seconds).
    #[must_use]
    pub fn columns(&self) -> Vec<String> {
        FIXED_COLUMNS
            .iter()
            .map(|c| (*c).to_owned())
            .chain(self.venues.iter().map(|v| v.as_str().to_owned()))
            .collect()
    }

    /// Records applied so far.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Applies one record read from input segment `segment`; `names(id)` resolves an id of that
    /// segment's instrument table (called once per id).
    pub fn apply(
        &mut self,
        segment: usize,
        rec: &Record,
        names: impl FnOnce(u32) -> Option<(Venue, String)>,
    ) {
        self.records += 1;
        match rec.record_kind() {
            Some(RecordKind::Decision) => self.on_decision(rec),
            Some(RecordKind::OrderTransition) => self.on_transition(rec),
            Some(RecordKind::Fill) => self.on_fill(rec),
            Some(RecordKind::Settlement) => self.on_settlement(rec),
            Some(RecordKind::Heartbeat | RecordKind::Empty) | None => {}
            Some(kind) => {
                if kind == RecordKind::FeedStatus {
                    self.on_feed_status(rec);
                }
                self.on_market(segment, rec, names);
            }
        }
    }

    fn on_market(
        &mut self,
        segment: usize,
        rec: &Record,
        names: impl FnOnce(u32) -> Option<(Venue, String)>,
    ) {
        if rec.instrument >= SEGMENT_ID_SPAN {
            return;
        }
        let Ok(segment) = u32::try_from(segment) else {
            return;
        };
        let id = segment * SEGMENT_ID_SPAN + rec.instrument;
        if let Some(seen) = self.looked_up.get_mut(id as usize)
            && !*seen
        {
            *seen = true;
            if let Some((venue, name)) = names(rec.instrument) {
                let params = DecideConfig::default().default_market;
                let _ = self.market.register_instrument(id, venue, &name, params);
            }
        }
        let mut mapped = *rec;
        mapped.instrument = id;
        self.market.apply(&mapped);
    }

    fn on_feed_status(&mut self, rec: &Record) {
        let Some(body) = rec.body_as::<FeedStatusBody>() else {
            return;
        };
        let row = self
            .feeds
            .entry((rec.venue, rec.stream))
            .or_insert(FeedRow {
                state: 0,
                body,
                at_ns: 0,
                changes: 0,
                disconnects: 0,
                gap_states: 0,
                issue: None,
            });
        if row.state != body.state {
            row.changes += 1;
            match FeedState::from_u8(body.state) {
                Some(FeedState::Disconnected) => row.disconnects += 1,
                Some(FeedState::GapDetected) => row.gap_states += 1,
                _ => {}
            }
        }
        if matches!(
            FeedState::from_u8(body.state),
            Some(FeedState::Stale | FeedState::GapDetected | FeedState::Disconnected)
        ) {
            row.issue = Some((body.state, rec.publish_ts_ns));
        }
        row.state = body.state;
        row.body = body;
        row.at_ns = rec.publish_ts_ns;
    }

    fn on_decision(&mut self, rec: &Record) {
        let Some(d) = rec.body_as::<Decision>() else {
            return;
        };
        self.decisions_total += 1;
        *self.reasons_total.entry(d.reason).or_insert(0) += 1;
        *self.reasons_recent.entry(d.reason).or_insert(0) += 1;
        if d.probability > 0 {
            self.prob_up = Some(d.probability as f64 / PROB_SCALE as f64);
        }
        if d.fired == 0 {
            return;
        }
        self.fired_total += 1;
        if self.outcome_of.len() >= OUTCOME_MAP_MAX {
            self.outcome_of.clear();
        }
        self.outcome_of.insert(d.client_order_id, d.outcome);
        if self.fires.len() >= FIRES_KEPT {
            self.fires.pop_front();
        }
        self.fires.push_back(json!({
            "t": rec.publish_ts_ns as f64 / 1e9,
            "outcome": if d.outcome == 0 { "up" } else { "down" },
            "side": Side::from_u8(d.side).map_or("?", Side::as_str),
            "price": e8(d.price),
            "size": d.size as f64 / SIZE_SCALE as f64,
            "edge": e8(d.edge),
            "prob_up": d.probability as f64 / PROB_SCALE as f64,
            "reason": reason_name(d.reason),
            "coid": d.client_order_id,
        }));
    }

    fn on_transition(&mut self, rec: &Record) {
        let Some(t) = rec.body_as::<OrderTransition>() else {
            return;
        };
        let coid = t.client_order_id;
        let to = OrderState::from_u8(t.to_state);
        if to == Some(OrderState::Submitted) {
            self.submitted_ns.insert(coid, rec.publish_ts_ns);
        } else if let Some(at) = self.submitted_ns.remove(&coid) {
            if self.place_rtt_ns.len() >= RTT_KEPT {
                self.place_rtt_ns.pop_front();
            }
            self.place_rtt_ns
                .push_back(u64::try_from(rec.publish_ts_ns - at).unwrap_or(0));
        }
        let key = (rec.stream, coid);
        let working = matches!(
            to,
            Some(OrderState::Submitted | OrderState::Acked | OrderState::PartiallyFilled)
        );
        if working {
            self.orders.insert(
                key,
                OpenOrder {
                    outcome: self.outcome_of.get(&coid).copied(),
                    side: t.side,
                    price: t.price,
                    size: t.size,
                    filled: t.filled,
                    state: t.to_state,
                    paper: t.paper != 0,
                },
            );
        } else {
            self.orders.remove(&key);
        }
    }

    fn on_fill(&mut self, rec: &Record) {
        let Some(f) = rec.body_as::<Fill>() else {
            return;
        };
        // Provisional and confirmed steps of one live fill share a trade id: count the first
        // step; a failed step reverts it.
        let sign: i64 = match f.status {
            1 => 1,
            3 => -1,
            2 if f.paper != 0 => 1,
            _ => return,
        };
        let p = self
            .positions
            .entry((f.window_start_s, f.outcome))
            .or_default();
        let buy = if f.side == Side::Buy as u8 { 1 } else { -1 };
        p.shares_e8 += sign * buy * f.size;
        let notional = i128::from(f.price) * i128::from(f.size) / i128::from(SIZE_SCALE);
        p.cash_e8 -= i128::from(sign * buy) * notional;
        p.cash_e8 -= i128::from(sign * f.fee_usdc);
        p.fees_e8 += sign * f.fee_usdc;
        p.fills += 1;
    }

    fn on_settlement(&mut self, rec: &Record) {
        let Some(s) = rec.body_as::<Settlement>() else {
            return;
        };
        let p = self
            .positions
            .entry((s.window_start_s, s.token_outcome))
            .or_default();
        p.payout_e8 = s.payout_usdc;
        p.settled = true;
    }

    /// Takes one chart point at `now_ns` and returns `(point, panels)`.
    pub fn sample(&mut self, now_ns: i64) -> (Vec<Option<f64>>, Value) {
        let point = self.point(now_ns);
        if self.history.len() >= self.history_len {
            self.history.pop_front();
        }
        self.history.push_back(point.clone());
        let panels = json!({
            "window": self.window_panel(now_ns),
            "books": self.books_panel(),
            "decisions": self.decisions_panel(),
            "order_latency": self.order_latency_panel(),
            "health": self.health_panel(now_ns),
            "positions": self.positions_panel(),
            "records": self.records,
        });
        self.reasons_recent.clear();
        (point, panels)
    }

    /// The kept chart points as columns (uPlot's data layout).
    #[must_use]
    pub fn history_columns(&self) -> Vec<Vec<Option<f64>>> {
        let width = FIXED_COLUMNS.len() + self.venues.len();
        (0..width)
            .map(|c| {
                self.history
                    .iter()
                    .map(|p| p.get(c).copied().flatten())
                    .collect()
            })
            .collect()
    }

    fn current_books(&self) -> Option<&[PolyBook; 2]> {
        self.market.current().map(|w| &w.books)
    }

    fn point(&self, now_ns: i64) -> Vec<Option<f64>> {
        let m = &self.market;
        let positive = |v: f64| (v > 0.0 && v.is_finite()).then_some(v);
        let strike = m.current().filter(|w| w.strike_known).map(|w| w.strike);
        let mids = self
            .current_books()
            .map_or([None, None], |b| [b[0].mid(), b[1].mid()]);
        let mut point = vec![
            Some(now_ns as f64 / 1e9),
            positive(m.reference),
            positive(m.chainlink),
            strike,
            mids[0],
            mids[1],
            self.prob_up,
            self.prob_up.map(|p| 1.0 - p),
        ];
        for v in &self.venues {
            let price = m
                .venues
                .get(*v as usize)
                .and_then(ringbolt_decide::market::VenueState::price)
                .map(|(p, _)| p);
            point.push(price.and_then(positive));
        }
        point
    }

    fn window_panel(&self, now_ns: i64) -> Value {
        let m = &self.market;
        let start = m.current_start_s;
        let w = m.current();
        json!({
            "start_s": start,
            "end_s": if start > 0 { start + 300 } else { 0 },
            "time_left_s": if start > 0 { (start + 300) as f64 - now_ns as f64 / 1e9 } else { 0.0 },
            "strike": w.filter(|w| w.strike_known).map(|w| w.strike),
            "reference": (m.reference > 0.0).then_some(m.reference),
            "reference_venues": m.reference_venues,
            "chainlink": (m.chainlink > 0.0).then_some(m.chainlink),
            "prob_up": self.prob_up,
        })
    }

    fn books_panel(&self) -> Value {
        let ladder = |book: &PolyBook, outcome: u8| {
            let levels = |side: Side| -> Vec<[f64; 2]> {
                book.levels(side)
                    .take(LADDER_LEVELS)
                    .map(|(p, s)| [e8(p), s as f64 / SIZE_SCALE as f64])
                    .collect()
            };
            let ours: Vec<Value> = self
                .orders
                .values()
                .filter(|o| o.outcome == Some(outcome))
                .map(|o| {
                    json!({
                        "side": Side::from_u8(o.side).map_or("?", Side::as_str),
                        "price": e8(o.price),
                        "size": o.size as f64 / SIZE_SCALE as f64,
                        "filled": o.filled as f64 / SIZE_SCALE as f64,
                        "state": OrderState::from_u8(o.state).map_or("?", OrderState::as_str),
                        "paper": o.paper,
                    })
                })
                .collect();
            json!({ "bids": levels(Side::Buy), "asks": levels(Side::Sell), "orders": ours,
                    "mid": book.mid() })
        };
        match self.current_books() {
            Some(b) => json!({ "up": ladder(&b[0], 0), "down": ladder(&b[1], 1),
                               "open_orders": self.orders.len() }),
            None => json!({ "up": null, "down": null, "open_orders": self.orders.len() }),
        }
    }

    fn decisions_panel(&self) -> Value {
        let names = |m: &BTreeMap<u8, u64>| -> BTreeMap<String, u64> {
            m.iter().map(|(r, n)| (reason_name(*r), *n)).collect()
        };
        json!({
            "total": self.decisions_total,
            "fired": self.fired_total,
            "reasons_total": names(&self.reasons_total),
            "reasons_recent": names(&self.reasons_recent),
            "fires": self.fires,
        })
    }

    fn order_latency_panel(&self) -> Value {
        let mut v: Vec<u64> = self.place_rtt_ns.iter().copied().collect();
        v.sort_unstable();
        let q = |f: f64| -> Option<u64> {
            if v.is_empty() {
                return None;
            }
            let i = ((v.len() - 1) as f64 * f).round() as usize;
            v.get(i).copied()
        };
        json!({
            "what": "submitted -> first venue answer (acked or rejected), from the trade process's order transitions on the bus",
            "samples": v.len(),
            "p50_ns": q(0.5),
            "p99_ns": q(0.99),
            "max_ns": v.last(),
        })
    }

    fn health_panel(&self, now_ns: i64) -> Value {
        let rows: Vec<Value> = self
            .feeds
            .iter()
            .map(|(&(venue, stream), row)| {
                let state = FeedState::from_u8(row.state);
                let b = &row.body;
                json!({
                    "venue": Venue::from_u8(venue).map_or("unknown", Venue::as_str),
                    "stream": self.stream_names.get(&(venue, stream)).copied().unwrap_or("connection"),
                    "state": state.map_or("unknown", FeedState::as_str),
                    "health": health_label(state),
                    "messages": b.messages,
                    "gaps": b.gaps.max(row.gap_states),
                    "gap_records": b.gap_records,
                    "reconnects": b.reconnects.max(row.disconnects),
                    "resyncs": b.resyncs,
                    "parse_errors": b.parse_errors,
                    "changes": row.changes,
                    "last_issue": row.issue.map(|(s, _)| {
                        FeedState::from_u8(s).map_or("unknown", FeedState::as_str)
                    }),
                    "last_issue_s": row.issue.map(|(_, at)| at as f64 / 1e9),
                    "age_s": (now_ns - row.at_ns) as f64 / 1e9,
                })
            })
            .collect();
        Value::Array(rows)
    }

    fn positions_panel(&self) -> Value {
        let mut total_e8: i128 = 0;
        let rows: Vec<Value> = self
            .positions
            .iter()
            .map(|(&(window, outcome), p)| {
                let pnl = p.cash_e8 + i128::from(p.payout_e8);
                if p.settled {
                    total_e8 += pnl;
                }
                json!({
                    "window_start_s": window,
                    "outcome": if outcome == 0 { "up" } else { "down" },
                    "shares": e8(p.shares_e8),
                    "cash_usdc": p.cash_e8 as f64 / PRICE_SCALE as f64,
                    "fees_usdc": e8(p.fees_e8),
                    "payout_usdc": e8(p.payout_e8),
                    "fills": p.fills,
                    "settled": p.settled,
                    "pnl_usdc": p.settled.then_some(pnl as f64 / PRICE_SCALE as f64),
                })
            })
            .collect();
        json!({ "rows": rows, "realised_pnl_usdc": total_e8 as f64 / PRICE_SCALE as f64 })
    }
}

/// The health panel's word for a feed state.
fn health_label(state: Option<FeedState>) -> &'static str {
    match state {
        Some(FeedState::Live | FeedState::Resynced | FeedState::Subscribed) => "live",
        Some(FeedState::Stale) => "stale",
        Some(FeedState::GapDetected) => "gap",
        Some(FeedState::Disconnected | FeedState::Connected) => "reconnecting",
        None => "unknown",
    }
}

fn reason_name(code: u8) -> String {
    Reason::from_u8(code).map_or_else(|| format!("unknown_{code}"), |r| r.as_str().to_owned())
}
