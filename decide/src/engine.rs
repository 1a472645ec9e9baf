//! The reflex pass: event in → state update → decision record (+ optional order intent) out.
//!
//! Sans-IO and deterministic: the engine sees only bus [`Record`]s and the model probability it is
//! handed, uses event time only, and allocates nothing after [`Engine::new`]. Replaying the same
//! records with the same probabilities reproduces every decision bit for bit.

use ringbolt_bus::{
    Decision, Fill, OrderState, OrderTransition, PRICE_SCALE, PROB_SCALE, Record, SIZE_SCALE, Side,
    Venue,
};

use crate::config::{DecideConfig, MarketParams, RiskConfig};
use crate::fair::{buy_edge, lognormal_up_probability, lognormal_up_probability_ln};
use crate::features::{self, LnRatio, N_FEATURES};
use crate::market::{MarketState, NS, Outcome, Update, WINDOW_S, WindowSlot, event_ts};
use crate::num::{price_f64, prob_fixed};
use crate::slot::ModelProb;

/// Smallest marketable BUY notional Polymarket accepts (pUSD, PROTOCOL_NOTES.md §7).
pub const MIN_MARKETABLE_NOTIONAL: f64 = 1.0;
/// Bus stream number of decision records.
pub const DECISION_STREAM: u8 = 1;

/// Why a decision fired or not (the `reason` byte of [`Decision`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reason {
    /// An intent was emitted.
    Fired = 0,
    /// No current window registered (no market discovery yet).
    NoWindow = 1,
    /// The current window's strike is unknown.
    NoStrike = 2,
    /// Up or Down book missing, incomplete or crossed, or a Polymarket stream's feed status is
    /// not trustworthy (stale, gap detected, disconnected) until it is live or resynced again.
    NoBook = 3,
    /// Neither the composite reference nor Chainlink is fresh.
    NoReference = 4,
    /// No fresh model probability and the baseline is not allowed.
    NoModel = 5,
    /// Best edge below the minimum.
    NoEdge = 6,
    /// Too little time left in the window.
    TooLate = 7,
    /// Position limit reached.
    PositionLimit = 8,
    /// Order-count limit reached.
    OrderLimit = 9,
    /// Within the cooldown after the last fire.
    Cooldown = 10,
    /// Price outside the allowed band.
    PriceBand = 11,
    /// Size below the market minimum or notional below the marketable minimum.
    TooSmall = 12,
    /// Trading disabled by configuration.
    Disabled = 13,
}

impl Reason {
    /// Every reason, in code order.
    pub const ALL: [Reason; 14] = [
        Reason::Fired,
        Reason::NoWindow,
        Reason::NoStrike,
        Reason::NoBook,
        Reason::NoReference,
        Reason::NoModel,
        Reason::NoEdge,
        Reason::TooLate,
        Reason::PositionLimit,
        Reason::OrderLimit,
        Reason::Cooldown,
        Reason::PriceBand,
        Reason::TooSmall,
        Reason::Disabled,
    ];

    /// Stable snake_case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Fired => "fired",
            Reason::NoWindow => "no_window",
            Reason::NoStrike => "no_strike",
            Reason::NoBook => "no_book",
            Reason::NoReference => "no_reference",
            Reason::NoModel => "no_model",
            Reason::NoEdge => "no_edge",
            Reason::TooLate => "too_late",
            Reason::PositionLimit => "position_limit",
            Reason::OrderLimit => "order_limit",
            Reason::Cooldown => "cooldown",
            Reason::PriceBand => "price_band",
            Reason::TooSmall => "too_small",
            Reason::Disabled => "disabled",
        }
    }

    /// Converts the wire byte.
    #[must_use]
    pub fn from_u8(b: u8) -> Option<Self> {
        Self::ALL.get(b as usize).copied()
    }
}

/// Time in force of an intent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeInForce {
    /// Fill and kill: take what is there at the limit, cancel the rest.
    Fak,
}

/// An order intent for exec's pre-signed pool: everything exec needs to pick a pre-signed order
/// (or sign one) without looking at the market again.
///
/// - `instrument` is the bus instrument id of the outcome token; exec resolves it to the token id
///   through the same segment's instrument table (`<slug>/<up|down>/<token_id>`).
/// - `price` is the limit (the best ask seen, on the market's tick grid); `size` is shares with
///   2 decimals (Polymarket's size precision), at [`SIZE_SCALE`].
/// - `pool_slot` is a hint: `outcome × 1000 + price in 0.001 units`; exec maps it to its pool.
/// - Paper mode: the trading process publishes the intent as a fired [`Decision`] record only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderIntent {
    /// Client order id: `engine_id << 48 | sequence`.
    pub client_order_id: u64,
    /// Bus instrument id of the outcome token bought.
    pub instrument: u32,
    /// Window start (Unix s).
    pub window_start_s: i64,
    /// Which token.
    pub outcome: Outcome,
    /// Always [`Side::Buy`] for now (the core does not sell inventory).
    pub side: Side,
    /// Limit price, [`PRICE_SCALE`].
    pub price: i64,
    /// Shares, [`SIZE_SCALE`], multiple of 0.01 share.
    pub size: i64,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Do not send after this time (window end, ns).
    pub expires_at_ns: i64,
    /// Event time of the decision (ns).
    pub decided_at_ns: i64,
    /// Bus sequence of the triggering record.
    pub trigger_seq: u64,
    /// Probability of the bought outcome paying, [`ringbolt_bus::PROB_SCALE`].
    pub probability: i64,
    /// Edge after fees per share, [`PRICE_SCALE`].
    pub edge: i64,
    /// Pre-signed pool slot hint.
    pub pool_slot: u16,
}

/// Counters of the reflex path.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct EngineStats {
    /// Records applied.
    pub records: u64,
    /// Decisions made.
    pub decisions: u64,
    /// Decisions by reason code.
    pub by_reason: [u64; 14],
    /// Decisions that used the model probability.
    pub model_decisions: u64,
    /// Feature vectors computed.
    pub feature_vectors: u64,
    /// Fill records that changed a position (first sight of a trade, provisional or confirmed).
    pub fills_applied: u64,
    /// FAILED fills that reverted a counted fill.
    pub fills_reverted: u64,
    /// Own records the engine could not place (window no longer tracked, unknown order, a
    /// failed fill never counted).
    pub own_records_unmatched: u64,
}

/// Orders whose reservation the engine tracks at once (the oldest is released when full).
const OPEN_ORDERS: usize = 64;
/// Trades remembered to count each one once (provisional then confirmed) and to revert it.
const TRADES_SEEN: usize = 256;

/// A fired order still reserving room in its window.
#[derive(Clone, Copy, Debug, Default)]
struct OpenOrder {
    client_order_id: u64,
    window_start_s: i64,
    /// Shares still reserved.
    reserved: f64,
}

/// A trade already counted in a position.
#[derive(Clone, Copy, Debug, Default)]
struct TradeSeen {
    trade_id: [u8; 16],
    client_order_id: u64,
    window_start_s: i64,
    /// Signed shares counted (buy +, sell −); 0 once reverted.
    shares: f64,
}

/// Result of one reflex pass.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// What the record changed.
    pub update: Update,
    /// The decision record, when the record was relevant.
    pub decision: Option<Record>,
    /// The intent, when the decision fired.
    pub intent: Option<OrderIntent>,
}

/// The decision core.
#[derive(Debug)]
pub struct Engine {
    cfg: DecideConfig,
    /// The incremental market state.
    pub state: MarketState,
    features: [f32; N_FEATURES],
    /// Memoised inputs of the feature vector (and the baseline's ln(S/K)).
    feature_cache: features::FeatureCache,
    last_score_ns: i64,
    last_score_ref: f64,
    /// Ratios reference / last score reference that are certainly not a re-score move.
    no_move_band: (f64, f64),
    next_order: u64,
    decision_count: u64,
    schema: u32,
    open: Vec<OpenOrder>,
    trades: Vec<TradeSeen>,
    next_trade: usize,
    /// Counters.
    pub stats: EngineStats,
}

impl Engine {
    /// Builds an engine; every allocation of the decision core happens here.
    #[must_use]
    pub fn new(cfg: DecideConfig) -> Self {
        Self {
            state: MarketState::new(&cfg),
            no_move_band: no_move_band(cfg.model_rescore_move_bps),
            cfg,
            features: [0.0; N_FEATURES],
            feature_cache: features::FeatureCache::default(),
            last_score_ns: i64::MIN / 2,
            last_score_ref: 0.0,
            next_order: 1,
            decision_count: 0,
            schema: features::schema_hash(),
            open: Vec::with_capacity(OPEN_ORDERS),
            trades: vec![TradeSeen::default(); TRADES_SEEN],
            next_trade: 0,
            stats: EngineStats::default(),
        }
    }

    /// One of our own records (an order sink's output: [`Fill`] or [`OrderTransition`]): the
    /// only way a position changes. A fill counts at the first record of its trade (provisional
    /// or confirmed) and releases that much of its order's reservation; a FAILED fill reverts
    /// the counted one with the same `trade_id`; a terminal transition (filled, cancelled,
    /// rejected, expired) releases what the order still reserved. Never advances the event
    /// clock; allocates nothing.
    pub fn own_record(&mut self, rec: &Record) {
        if let Some(f) = rec.body_as::<Fill>() {
            self.own_fill(&f);
        } else if let Some(t) = rec.body_as::<OrderTransition>() {
            let terminal = matches!(
                OrderState::from_u8(t.to_state),
                Some(
                    OrderState::Filled
                        | OrderState::Cancelled
                        | OrderState::Rejected
                        | OrderState::Expired
                )
            );
            if terminal {
                self.release(t.client_order_id, f64::INFINITY);
            }
        }
    }

    fn own_fill(&mut self, f: &Fill) {
        let sign = if f.side == Side::Sell as u8 {
            -1.0
        } else {
            1.0
        };
        let shares = sign * f.size as f64 / SIZE_SCALE as f64;
        let seen = self
            .trades
            .iter()
            .position(|t| t.trade_id == f.trade_id && t.client_order_id == f.client_order_id);
        if f.status == 3 {
            // FAILED: revert what was counted under this trade id.
            let Some(i) = seen.filter(|&i| self.trades[i].shares != 0.0) else {
                self.stats.own_records_unmatched += 1;
                return;
            };
            let t = self.trades[i];
            self.trades[i].shares = 0.0;
            if let Some(w) = self.state.window_mut(t.window_start_s) {
                w.position_shares -= t.shares;
            }
            self.stats.fills_reverted += 1;
            return;
        }
        if seen.is_some() {
            return; // provisional then confirmed: counted once
        }
        self.trades[self.next_trade % TRADES_SEEN] = TradeSeen {
            trade_id: f.trade_id,
            client_order_id: f.client_order_id,
            window_start_s: f.window_start_s,
            shares,
        };
        self.next_trade += 1;
        let Some(w) = self.state.window_mut(f.window_start_s) else {
            self.stats.own_records_unmatched += 1;
            return;
        };
        w.position_shares += shares;
        self.stats.fills_applied += 1;
        self.release(f.client_order_id, shares.abs());
    }

    /// Releases up to `shares` of order `client_order_id`'s reservation (all with infinity).
    fn release(&mut self, client_order_id: u64, shares: f64) {
        let Some(i) = self
            .open
            .iter()
            .position(|o| o.client_order_id == client_order_id)
        else {
            return;
        };
        let o = &mut self.open[i];
        let freed = o.reserved.min(shares);
        o.reserved -= freed;
        let (start, done) = (o.window_start_s, o.reserved <= 1e-9);
        if done {
            self.open.swap_remove(i);
        }
        if let Some(w) = self.state.window_mut(start) {
            w.open_shares = (w.open_shares - freed).max(0.0);
        }
    }

    /// Reserves `shares` for a fired order (the oldest reservation goes when the table is full).
    fn reserve(&mut self, client_order_id: u64, window_start_s: i64, shares: f64) {
        if self.open.len() == OPEN_ORDERS {
            let oldest = self.open[0].client_order_id;
            self.release(oldest, f64::INFINITY);
        }
        self.open.push(OpenOrder {
            client_order_id,
            window_start_s,
            reserved: shares,
        });
        if let Some(w) = self.state.window_mut(window_start_s) {
            w.open_shares += shares;
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &DecideConfig {
        &self.cfg
    }

    /// Registers an instrument of the bus table (off the hot path); market parameters come
    /// from `markets[slug]` or the default.
    ///
    /// # Errors
    /// See [`MarketState::register_instrument`].
    pub fn register_instrument(
        &mut self,
        id: u32,
        venue: Venue,
        name: &str,
    ) -> Result<(), crate::market::RegisterError> {
        let slug = name.split('/').next().unwrap_or("");
        let params = self
            .cfg
            .markets
            .get(slug)
            .copied()
            .unwrap_or(self.cfg.default_market);
        self.state.register_instrument(id, venue, name, params)
    }

    /// Applies a record to the state. Returns what changed and whether the model should be
    /// re-scored now (cadence elapsed, large reference move or rollover).
    pub fn update(&mut self, rec: &Record) -> (Update, bool) {
        self.stats.records += 1;
        let update = self.state.apply(rec);
        let now = self.state.now_ns;
        let cadence = self.cfg.model_cadence_ms as i64 * 1_000_000;
        // `moved` is pure, so evaluating it only when it decides `want` changes nothing.
        let want = update.relevant() && (now - self.last_score_ns >= cadence || self.moved())
            || update.rolled_over;
        (update, want)
    }

    /// Whether the reference moved at least `model_rescore_move_bps` since the last score:
    /// `|ln(reference / last_score_ref)| × 1e4 ≥ bps`. A ratio strictly inside the no-move band
    /// (see [`no_move_band`]) is below the threshold by a margin far larger than the error of
    /// `ln`, so the answer is the same without computing it.
    fn moved(&self) -> bool {
        if !(self.last_score_ref > 0.0 && self.state.reference > 0.0) {
            return false;
        }
        let r = self.state.reference / self.last_score_ref;
        if r > self.no_move_band.0 && r < self.no_move_band.1 {
            return false;
        }
        r.ln().abs() * 1e4 >= self.cfg.model_rescore_move_bps
    }

    /// Computes the feature vector at the current event time and marks the model as re-scored
    /// from it.
    pub fn compute_features(&mut self) -> &[f32; N_FEATURES] {
        self.refresh_features();
        self.last_score_ns = self.state.now_ns;
        self.last_score_ref = self.state.reference;
        self.stats.feature_vectors += 1;
        &self.features
    }

    /// Brings the feature vector up to the current event time without marking the model as
    /// re-scored (the cadence is left alone): for a consumer that wants every event's vector.
    pub fn refresh_features(&mut self) -> &[f32; N_FEATURES] {
        features::compute_cached(&self.state, &mut self.feature_cache, &mut self.features);
        &self.features
    }

    /// The last computed feature vector.
    #[must_use]
    pub fn features(&self) -> &[f32; N_FEATURES] {
        &self.features
    }

    /// Full reflex pass for one record with the latest model probability (if any).
    pub fn on_record(&mut self, rec: &Record, model: Option<ModelProb>) -> Output {
        let (update, _) = self.update(rec);
        self.decide_after(rec, update, model)
    }

    /// Decides after [`Engine::update`] when the update is relevant.
    pub fn decide_after(
        &mut self,
        rec: &Record,
        update: Update,
        model: Option<ModelProb>,
    ) -> Output {
        if !update.relevant() {
            return Output {
                update,
                decision: None,
                intent: None,
            };
        }
        let (decision, intent) = self.decide(rec, model);
        Output {
            update,
            decision: Some(decision),
            intent,
        }
    }

    fn decide(
        &mut self,
        trigger: &Record,
        model: Option<ModelProb>,
    ) -> (Record, Option<OrderIntent>) {
        let now = self.state.now_ns;
        let mut d = Decision {
            trigger_seq: trigger.seq,
            book_seq: 0,
            reference_seq: self.state.reference_seq,
            probability: 0,
            edge: 0,
            price: 0,
            size: 0,
            client_order_id: 0,
            feature_schema_hash: 0,
            slot: u16::MAX,
            fired: 0,
            reason: 0,
            side: Side::Buy as u8,
            outcome: 0,
            reserved: [0; 6],
        };
        let (reason, instrument, intent) = self.evaluate(now, model, trigger.seq, &mut d);
        d.reason = reason as u8;
        self.stats.decisions += 1;
        self.stats.by_reason[reason as usize] += 1;
        self.decision_count += 1;
        let mut rec = Record::new(Venue::Internal, DECISION_STREAM, instrument, &d);
        rec.exchange_ts_ns = now;
        rec.recv_ts_ns = trigger.recv_ts_ns;
        rec.venue_seq = self.decision_count;
        (rec, intent)
    }

    /// The decision for the current event: the reason, the instrument it concerns and, when
    /// it fires, the order intent. Fills `d` as far as the checks get (the recorded decision
    /// shows where it stopped).
    fn evaluate(
        &mut self,
        now: i64,
        model: Option<ModelProb>,
        trigger_seq: u64,
        d: &mut Decision,
    ) -> (Reason, u32, Option<OrderIntent>) {
        let tau = self.state.time_left_s();
        let spot = self.spot();
        let sigma = self.state.vol(2).max(0.5 * self.state.vol(1)).max(1e-6);
        let Some(w) = self.state.current() else {
            return (Reason::NoWindow, 0, None);
        };
        d.book_seq = w.books[0].last_seq.max(w.books[1].last_seq);
        if !w.strike_known {
            return (Reason::NoStrike, 0, None);
        }
        if spot <= 0.0 {
            return (Reason::NoReference, 0, None);
        }
        let fair = FairInputs {
            spot,
            strike: w.strike,
            sigma,
            tau,
        };
        let ln_spot_strike = &mut self.feature_cache.spot_strike;
        let baseline = || fair.baseline(ln_spot_strike);
        let Some(p_up) = up_probability(
            &self.cfg,
            self.schema,
            &mut self.stats,
            now,
            model,
            baseline,
            d,
        ) else {
            return (Reason::NoModel, 0, None);
        };
        d.probability = prob_fixed(p_up);
        if !w.books[0].is_valid() || !w.books[1].is_valid() || !self.state.polymarket_trusted() {
            return (Reason::NoBook, 0, None);
        }
        let params: MarketParams = w.params;
        let Some(pick) = pick_side(w, p_up, &params) else {
            return (Reason::NoBook, 0, None);
        };
        let instrument = pick.instrument;
        d.outcome = pick.outcome as u8;
        d.edge = (pick.edge * PRICE_SCALE as f64).round() as i64;
        d.price = pick.ask;
        let sized = match size_order(&self.cfg.risk, &params, w, &pick, tau, now) {
            Ok(sized) => sized,
            Err(reason) => return (reason, instrument, None),
        };
        let window_start_s = w.start_s;
        let intent = self.fire(now, trigger_seq, window_start_s, &pick, sized, d);
        (Reason::Fired, instrument, Some(intent))
    }

    /// The reference price used: the composite when fresh, else Chainlink when fresh, else 0.
    fn spot(&self) -> f64 {
        if self.state.reference_fresh() {
            self.state.reference
        } else if self.state.chainlink_fresh() {
            self.state.chainlink
        } else {
            0.0
        }
    }

    /// Takes the next client order id, records the fired decision in `d`, counts the order in
    /// the current window (orders, cooldown, reserved shares — never position) and returns its
    /// intent.
    fn fire(
        &mut self,
        now: i64,
        trigger_seq: u64,
        window_start_s: i64,
        pick: &Pick,
        sized: OrderSize,
        d: &mut Decision,
    ) -> OrderIntent {
        let size = sized.centi_shares as i64 * (SIZE_SCALE / 100);
        let client_order_id = u64::from(self.cfg.engine_id) << 48 | self.next_order;
        self.next_order += 1;
        let pool_slot = (pick.outcome as u16) * 1000 + (pick.ask / (PRICE_SCALE / 1000)) as u16;
        d.size = size;
        d.client_order_id = client_order_id;
        d.slot = pool_slot;
        d.fired = 1;
        let intent = OrderIntent {
            client_order_id,
            instrument: pick.instrument,
            window_start_s,
            outcome: pick.outcome,
            side: Side::Buy,
            price: pick.ask,
            size,
            time_in_force: TimeInForce::Fak,
            expires_at_ns: (window_start_s + WINDOW_S) * NS,
            decided_at_ns: now,
            trigger_seq,
            probability: prob_fixed(pick.p_win),
            edge: d.edge,
            pool_slot,
        };
        if let Some(w) = self.state.current_mut() {
            w.orders += 1;
            w.last_fire_ns = now;
        }
        // Not a fill: the shares are reserved until fills or the order's end say otherwise.
        self.reserve(client_order_id, window_start_s, sized.shares);
        intent
    }
}

/// The open interval of ratios `r` for which `|ln r| × 1e4 ≥ bps` is certainly false:
/// `(e^{−0.99·bps·1e-4}, e^{0.99·bps·1e-4})`. The 1 % margin (2e-8 in log terms at 2 bps) is
/// many orders of magnitude above the error of `ln`, `exp` and the × 1e4 (≈ 1e-16 relative), so
/// skipping `ln` inside it never changes the answer. Empty (`(1, 1)`) for a threshold that is
/// not a positive finite number or too small for the margin to be represented.
fn no_move_band(bps: f64) -> (f64, f64) {
    if bps.is_finite() && bps > 1e-6 {
        let h = 0.99 * bps * 1e-4;
        ((-h).exp(), h.exp())
    } else {
        (1.0, 1.0)
    }
}

/// What the baseline fair probability is computed from.
#[derive(Clone, Copy)]
struct FairInputs {
    spot: f64,
    strike: f64,
    sigma: f64,
    tau: f64,
}

impl FairInputs {
    /// `lognormal_up_probability(spot, strike, σ, τ)` with ln(S/K) memoised in `ln_spot_strike`
    /// (shared with the feature vector's): the same value.
    fn baseline(&self, ln_spot_strike: &mut LnRatio) -> f64 {
        if self.spot > 0.0 && self.strike > 0.0 {
            let m = ln_spot_strike.get(self.spot, self.strike);
            lognormal_up_probability_ln(m, self.sigma, self.tau)
        } else {
            lognormal_up_probability(self.spot, self.strike, self.sigma, self.tau)
        }
    }
}

/// The probability of Up the decision uses: a fresh model probability (same feature schema, not
/// older than `model_max_age_ms`, finite) on the bus's probability grid, else the lognormal
/// baseline (`baseline()`) when allowed, else `None`. A model probability used is noted in `d` and `stats`.
fn up_probability(
    cfg: &DecideConfig,
    schema: u32,
    stats: &mut EngineStats,
    now: i64,
    model: Option<ModelProb>,
    baseline: impl FnOnce() -> f64,
    d: &mut Decision,
) -> Option<f64> {
    let max_age = cfg.model_max_age_ms as i64 * 1_000_000;
    let fresh_model = model.filter(|m| {
        m.schema_hash == schema && now - m.features_ts_ns <= max_age && m.p_up.is_finite()
    });
    match fresh_model {
        Some(m) => {
            d.feature_schema_hash = schema;
            stats.model_decisions += 1;
            // On the bus's probability grid, so the recorded value is exactly the one used
            // (replay feeds it back bit for bit).
            Some(model_prob_fixed(m.p_up) as f64 / PROB_SCALE as f64)
        }
        None if cfg.allow_baseline => Some(baseline()),
        None => None,
    }
}

/// The outcome to buy: the larger edge at the best asks (Up on a tie).
#[derive(Clone, Copy)]
struct Pick {
    outcome: Outcome,
    /// Bus instrument id of the outcome's token (0 when not registered).
    instrument: u32,
    ask: i64,
    ask_sz: i64,
    edge: f64,
    /// Probability that the picked outcome wins.
    p_win: f64,
}

/// [`Pick`] from the current window's books; `None` when a side has no ask.
fn pick_side(w: &WindowSlot, p_up: f64, params: &MarketParams) -> Option<Pick> {
    let (Some((up_ask, up_sz)), Some((dn_ask, dn_sz))) =
        (w.books[0].best_ask(), w.books[1].best_ask())
    else {
        return None;
    };
    let e_up = buy_edge(p_up, price_f64(up_ask), params);
    let e_dn = buy_edge(1.0 - p_up, price_f64(dn_ask), params);
    let (outcome, ask, ask_sz, edge, p_win) = if e_up >= e_dn {
        (Outcome::Up, up_ask, up_sz, e_up, p_up)
    } else {
        (Outcome::Down, dn_ask, dn_sz, e_dn, 1.0 - p_up)
    };
    let instrument = w.instruments[outcome as usize];
    let instrument = if instrument == u32::MAX {
        0
    } else {
        instrument
    };
    Some(Pick {
        outcome,
        instrument,
        ask,
        ask_sz,
        edge,
        p_win,
    })
}

/// An order size that passed the risk gates.
#[derive(Clone, Copy)]
struct OrderSize {
    /// Shares × 100, whole.
    centi_shares: f64,
    /// Shares (multiple of 0.01).
    shares: f64,
}

/// The risk gates in order (edge, enabled, time left, price band, orders per window, cooldown,
/// position room), then the size: the smallest of the order cap, the room and the ask's size,
/// floored to 0.01 share, refused below the market's minimum size or minimum notional.
fn size_order(
    risk: &RiskConfig,
    params: &MarketParams,
    w: &WindowSlot,
    pick: &Pick,
    tau: f64,
    now: i64,
) -> Result<OrderSize, Reason> {
    if pick.edge < risk.min_edge {
        return Err(Reason::NoEdge);
    }
    if !risk.enabled {
        return Err(Reason::Disabled);
    }
    if tau < risk.min_time_left_s {
        return Err(Reason::TooLate);
    }
    let ask_f = price_f64(pick.ask);
    if ask_f < risk.min_price || ask_f > risk.max_price {
        return Err(Reason::PriceBand);
    }
    if w.orders >= risk.max_orders_per_window {
        return Err(Reason::OrderLimit);
    }
    if w.last_fire_ns != 0 && now - w.last_fire_ns < risk.cooldown_ms as i64 * 1_000_000 {
        return Err(Reason::Cooldown);
    }
    let room = risk.max_position_shares - w.position_shares.abs() - w.open_shares;
    if room < params.min_size_shares {
        return Err(Reason::PositionLimit);
    }
    let shares = risk
        .max_order_shares
        .min(room)
        .min(pick.ask_sz as f64 / SIZE_SCALE as f64);
    let centi_shares = (shares * 100.0).floor();
    let shares = centi_shares / 100.0;
    if shares < params.min_size_shares || shares * ask_f < MIN_MARKETABLE_NOTIONAL {
        return Err(Reason::TooSmall);
    }
    Ok(OrderSize {
        centi_shares,
        shares,
    })
}

/// A model probability as the engine uses it: clamped to [`crate::fair::P_MIN`,
/// 1 − `P_MIN`] and rounded to the bus's [`PROB_SCALE`] grid (the `Decision.probability` value).
#[must_use]
pub fn model_prob_fixed(p_up: f64) -> i64 {
    prob_fixed(p_up.clamp(crate::fair::P_MIN, 1.0 - crate::fair::P_MIN))
}

/// The event time of a record as the engine sees it (re-exported for drivers).
#[must_use]
pub fn record_time(rec: &Record) -> i64 {
    event_ts(rec)
}
