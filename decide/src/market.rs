//! Incremental market state: windows and their Polymarket books, per-venue tops and trades, the
//! composite BTC reference, Chainlink, EWMA volatilities and order-flow accumulators.
//!
//! Every update is O(1) or O(levels touched); all storage is sized at construction, so nothing
//! allocates after start-up. Time is *event time* (the record's receive stamp), never the wall
//! clock, so replaying a stream reproduces the state bit for bit.

use ringbolt_bus::{
    BookLevel, FLAG_BATCH_BEGIN, FLAG_BATCH_END, FLAG_SNAPSHOT, FeedState, FeedStatusBody,
    IndexPrice, MarketParamsBody, Record, RecordKind, Side, TopOfBook, Trade, Venue,
};

use ringbolt_market::{InstrumentName, NameError, PolyBook, window_of_ns, window_start_s};

use crate::config::{DecideConfig, MarketParams};
use crate::num::{e18_f64, price_f64, size_f64};

pub use ringbolt_market::{NS, Outcome, WINDOW_S};
/// Window slots kept (previous, current, next and one spare).
pub const WINDOW_SLOTS: usize = 4;
/// Venues that make up the composite reference, in feature order.
pub const REF_VENUES: [Venue; 9] = [
    Venue::Coinbase,
    Venue::BinanceSpot,
    Venue::BinanceFutures,
    Venue::Kraken,
    Venue::Gemini,
    Venue::Bybit,
    Venue::Okx,
    Venue::Deribit,
    Venue::Bitstamp,
];
/// Per-second history kept for returns (s).
pub const HISTORY_S: usize = 128;
/// Half-lives of the reference volatility estimators (s).
pub const VOL_HALF_LIVES_S: [f64; 4] = [15.0, 60.0, 300.0, 900.0];
/// Time constants of the flow accumulators (s): 1, 10, 60.
pub const FLOW_TAUS_S: [f64; 3] = [1.0, 10.0, 60.0];

const VENUE_SLOTS: usize = 16;

/// Index in [`REF_VENUES`] by `Venue as usize` (`u8::MAX` for the others).
const REF_INDEX: [u8; VENUE_SLOTS] = {
    let mut t = [u8::MAX; VENUE_SLOTS];
    let mut i = 0;
    while i < REF_VENUES.len() {
        t[REF_VENUES[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// What an instrument id is to the decision core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InstrumentRole {
    /// Not registered (yet).
    #[default]
    Unknown,
    /// A Polymarket outcome token of the window starting at `window_start_s`.
    Outcome {
        /// Window start (Unix s).
        window_start_s: i64,
        /// Up or Down.
        outcome: Outcome,
    },
    /// Any other instrument (BTC spot/perp on a reference venue, Chainlink feed).
    Reference,
}

/// Errors of instrument registration.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The id does not fit the configured table.
    #[error("instrument id {id} exceeds the table capacity {capacity}")]
    Capacity {
        /// Offending id.
        id: u32,
        /// Configured capacity.
        capacity: usize,
    },
    /// A Polymarket name not of the form `btc-updown-5m-<start>/<up|down>/<token_id>`.
    #[error(
        "polymarket instrument name {name:?} is not btc-updown-5m-<start>/<up|down>/<token_id>: {source}"
    )]
    BadName {
        /// The name.
        name: String,
        /// What is wrong with it.
        source: NameError,
    },
}

/// An exponentially decaying sum in event time: `v(t) = Σ x_i e^{−(t−t_i)/τ}`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Decay {
    value: f64,
    ts_ns: i64,
}

impl Decay {
    /// Adds `x` at `now_ns` with time constant `tau_s`.
    pub fn add(&mut self, now_ns: i64, x: f64, tau_s: f64) {
        self.add_decayed(now_ns, x, self.factor(now_ns, tau_s));
    }

    /// The decayed value at `now_ns`.
    #[must_use]
    pub fn get(&self, now_ns: i64, tau_s: f64) -> f64 {
        self.value * self.factor(now_ns, tau_s)
    }

    /// The decay factor from the last add to `now_ns`, `e^{−Δt/τ}`: a function of
    /// (`now_ns − ts_ns`, `tau_s`) only, so two decays with the same [`Decay::ts_ns`] share it.
    #[must_use]
    #[inline]
    pub fn factor(&self, now_ns: i64, tau_s: f64) -> f64 {
        Self::factor_of_dt(self.dt_s(now_ns), tau_s)
    }

    /// Seconds from the last add to `now_ns` (0 if `now_ns` is earlier).
    #[must_use]
    #[inline]
    pub fn dt_s(&self, now_ns: i64) -> f64 {
        (now_ns - self.ts_ns).max(0) as f64 / NS as f64
    }

    /// [`Decay::factor`] from [`Decay::dt_s`].
    #[must_use]
    #[inline]
    pub fn factor_of_dt(dt_s: f64, tau_s: f64) -> f64 {
        (-dt_s / tau_s).exp()
    }

    /// The factor of `self` given that of a decay stamped `other_ts_ns` with the same `tau_s`
    /// (`other_factor`): shared when the stamps are equal, else computed.
    #[must_use]
    #[inline]
    pub fn factor_or(&self, other_ts_ns: i64, other_factor: f64, now_ns: i64, tau_s: f64) -> f64 {
        if self.ts_ns == other_ts_ns {
            other_factor
        } else {
            self.factor(now_ns, tau_s)
        }
    }

    /// [`Decay::get`] with its [`Decay::factor`] already computed.
    #[must_use]
    #[inline]
    pub fn get_with(&self, factor: f64) -> f64 {
        self.value * factor
    }

    /// [`Decay::add`] with its [`Decay::factor`] at `now_ns` already computed.
    #[inline]
    fn add_decayed(&mut self, now_ns: i64, x: f64, factor: f64) {
        self.value = self.value * factor + x;
        self.ts_ns = self.ts_ns.max(now_ns);
    }

    /// Event time of the last add (ns).
    #[must_use]
    #[inline]
    pub fn ts_ns(&self) -> i64 {
        self.ts_ns
    }
}

/// One reference venue's latest view.
#[derive(Clone, Copy, Debug, Default)]
pub struct VenueState {
    /// Best bid (USD), 0 if none.
    pub bid: f64,
    /// Best ask (USD), 0 if none.
    pub ask: f64,
    /// Size at best bid (BTC or contracts).
    pub bid_size: f64,
    /// Size at best ask.
    pub ask_size: f64,
    /// Event time of the last top of book (ns).
    pub top_ts_ns: i64,
    /// Last trade price (USD).
    pub trade_price: f64,
    /// Event time of the last trade (ns).
    pub trade_ts_ns: i64,
    /// Bit i set = stream i reported a state that is not trustworthy.
    pub untrusted_streams: u16,
    /// Bus sequence of the last record that moved this venue's price.
    pub seq: u64,
}

impl VenueState {
    /// The venue's price: mid of its top of book, else its last trade; with its event time.
    #[must_use]
    pub fn price(&self) -> Option<(f64, i64)> {
        if self.bid > 0.0
            && self.ask > 0.0
            && self.ask >= self.bid
            && self.top_ts_ns >= self.trade_ts_ns
        {
            Some(((self.bid + self.ask) * 0.5, self.top_ts_ns))
        } else if self.trade_price > 0.0 {
            Some((self.trade_price, self.trade_ts_ns))
        } else {
            None
        }
    }

    /// Whether the venue counts at `now_ns`: all its streams trustworthy and data fresh.
    #[must_use]
    pub fn usable(&self, now_ns: i64, stale_ns: i64) -> bool {
        self.untrusted_streams == 0 && self.price().is_some_and(|(_, ts)| now_ns - ts <= stale_ns)
    }
}

/// One 5-minute window: strike, books, position.
#[derive(Clone, Debug)]
pub struct WindowSlot {
    /// Window start (Unix s); 0 = empty slot.
    pub start_s: i64,
    /// Strike, Chainlink value at the start, exact at 1e18.
    pub strike_e18: i128,
    /// Strike as f64 (USD).
    pub strike: f64,
    /// Whether the strike is known.
    pub strike_known: bool,
    /// Bus sequence of the Chainlink report that set the strike.
    pub strike_seq: u64,
    /// Composite reference when the window started (USD), 0 if unknown.
    pub ref_at_start: f64,
    /// Books of the Up and Down tokens.
    pub books: [PolyBook; 2],
    /// Sides cleared in the snapshot batch in progress, per book (bit 0 bid, bit 1 ask).
    pub snap_sides: [u8; 2],
    /// Instrument ids of the Up and Down tokens (`u32::MAX` until registered).
    pub instruments: [u32; 2],
    /// Market parameters (fees, tick, minimum size): configuration's until a `MarketParams`
    /// record for the window's tokens arrives on the bus, then the bus's.
    pub params: MarketParams,
    /// Whether `params` came from the bus (registration then keeps them).
    pub params_from_bus: bool,
    /// Net shares filled in this window, both outcomes together: changed by [`ringbolt_bus::Fill`]
    /// records only (a fired order is not a fill; see [`crate::engine::Engine::own_record`]).
    pub position_shares: f64,
    /// Shares reserved by this window's orders still working (fired, not yet filled, cancelled,
    /// rejected or expired), so the engine does not overfire while fills are on their way.
    pub open_shares: f64,
    /// Orders fired in this window.
    pub orders: u32,
    /// Event time of the last fire (ns), 0 if none.
    pub last_fire_ns: i64,
}

impl WindowSlot {
    fn new() -> Self {
        Self {
            start_s: 0,
            strike_e18: 0,
            strike: 0.0,
            strike_known: false,
            strike_seq: 0,
            ref_at_start: 0.0,
            books: [PolyBook::new(), PolyBook::new()],
            snap_sides: [0; 2],
            instruments: [u32::MAX; 2],
            params: MarketParams::default(),
            params_from_bus: false,
            position_shares: 0.0,
            open_shares: 0.0,
            orders: 0,
            last_fire_ns: 0,
        }
    }

    /// Reuses the slot for the window starting at `start_s`, in place: every field as
    /// [`WindowSlot::new`] sets it, the books emptied without allocating (a few times per
    /// window, off the per-event path).
    fn reset(&mut self, start_s: i64, params: MarketParams) {
        let Self {
            start_s: slot_start,
            strike_e18,
            strike,
            strike_known,
            strike_seq,
            ref_at_start,
            books,
            snap_sides,
            instruments,
            params: slot_params,
            params_from_bus,
            position_shares,
            open_shares,
            orders,
            last_fire_ns,
        } = self;
        *slot_start = start_s;
        *strike_e18 = 0;
        *strike = 0.0;
        *strike_known = false;
        *strike_seq = 0;
        *ref_at_start = 0.0;
        for book in books.iter_mut() {
            book.reset();
        }
        *snap_sides = [0; 2];
        *instruments = [u32::MAX; 2];
        *slot_params = params;
        *params_from_bus = false;
        *position_shares = 0.0;
        *open_shares = 0.0;
        *orders = 0;
        *last_fire_ns = 0;
    }
}

/// Counters of input the state refused (never a panic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputErrors {
    /// Records of an unknown kind or venue byte.
    pub unknown_kind_or_venue: u64,
    /// Book levels refused by the book (off grid, bad side, negative size).
    pub bad_levels: u64,
    /// Records for instruments never registered or outside the table.
    pub unknown_instrument: u64,
    /// Book records for windows not in the slot ring (too old / too far ahead).
    pub window_out_of_range: u64,
    /// Non-positive prices.
    pub bad_prices: u64,
    /// Chainlink reports arriving after the strike tolerance for a window without strike.
    pub late_strikes: u64,
    /// `MarketParams` records with an unusable value (a tick Polymarket does not use).
    pub bad_params: u64,
}

/// What one record changed, for the reflex and model paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// The current window's Polymarket book completed a change.
    pub book_changed: bool,
    /// The composite reference or Chainlink moved.
    pub reference_changed: bool,
    /// A window rollover happened before applying the record.
    pub rolled_over: bool,
}

impl Update {
    /// Whether the reflex path should evaluate after this record.
    #[must_use]
    pub fn relevant(&self) -> bool {
        self.book_changed || self.reference_changed
    }
}

/// The whole incremental state.
#[derive(Debug)]
pub struct MarketState {
    cfg_stale_ns: i64,
    cfg_chainlink_stale_ns: i64,
    cfg_strike_tol_ns: i64,
    /// The venue whose index prices set the strike and the reference (`[decide]
    /// reference_source`).
    reference_venue: Venue,
    /// Instrument roles by id.
    roles: Vec<InstrumentRole>,
    /// Window ring, indexed by `(start_s / 300) % WINDOW_SLOTS`.
    pub windows: Vec<WindowSlot>,
    /// Start of the window containing `now_ns` (s).
    pub current_start_s: i64,
    /// Latest event time seen (ns).
    pub now_ns: i64,
    /// Reference venues by `Venue as usize`.
    pub venues: [VenueState; VENUE_SLOTS],
    /// `venues[v].price()` (0 when `None`), kept up to date by the only writers of the fields it
    /// reads (`on_top`, `on_trade`).
    venue_px: [(f64, i64); VENUE_SLOTS],
    /// Per [`REF_VENUES`] index: `venue_px` when all the venue's streams are trusted, else
    /// (0, stamp): the composite's inputs in one place.
    ref_px: [(f64, i64); REF_VENUES.len()],
    /// Indices into [`REF_VENUES`]: the last composite's venues in price order, then the others;
    /// the next composite gathers in this order, so its sort is nearly a no-op.
    ref_order: [u8; REF_VENUES.len()],
    /// The last composite's inputs still hold: no reference price moved since (`refresh_ref_px`
    /// clears it otherwise) …
    ref_clean: bool,
    /// … its usable venues (bit = [`REF_VENUES`] index) …
    ref_usable: u16,
    /// … and the time until which that set holds: the first usable venue's staleness (`now_ns`
    /// never goes back, `advance_time`).
    ref_valid_until_ns: i64,
    /// Composite reference price (USD), 0 when none.
    pub reference: f64,
    /// Venues in the composite.
    pub reference_venues: u32,
    /// Median absolute deviation of the venues in the composite (USD).
    pub reference_mad: f64,
    /// Event time of the last composite computation with ≥ 1 venue (ns).
    pub reference_ts_ns: i64,
    /// Bus sequence of the record that last moved the reference.
    pub reference_seq: u64,
    /// Latest Chainlink value (USD) and exact value.
    pub chainlink: f64,
    /// Latest Chainlink exact value (1e18).
    pub chainlink_e18: i128,
    /// Chainlink report timestamp (ns).
    pub chainlink_ts_ns: i64,
    /// When the latest Chainlink report was received (ns).
    pub chainlink_recv_ns: i64,
    /// Bus sequence of the latest Chainlink report.
    pub chainlink_seq: u64,
    /// ln(reference) at each of the last [`HISTORY_S`] whole seconds (ring).
    pub ref_history: [f64; HISTORY_S],
    /// Polymarket Up mid at each of the last [`HISTORY_S`] whole seconds (ring).
    pub up_mid_history: [f64; HISTORY_S],
    /// The last whole second sampled.
    pub last_second: i64,
    /// Seconds sampled so far (saturating).
    pub seconds_sampled: u64,
    /// EWMA variance of 1-s log returns per horizon (per s).
    pub var_per_s: [f64; 4],
    /// EWMA weight of a 1-s sample per horizon, `1 − e^{−ln 2 / half-life}` (constant).
    vol_alpha: [f64; 4],
    /// EWMA variance of Chainlink log returns (per s).
    pub chainlink_var_per_s: f64,
    /// `var_per_s[h].sqrt()` per horizon, then `chainlink_var_per_s.sqrt()`: updated with the
    /// variances (their only writers are `new`, `sample_second` and `on_chainlink`).
    vol_sqrt: [f64; 5],
    /// Order-flow imbalance (Cont) summed over reference venues, per [`FLOW_TAUS_S`] (BTC).
    pub ofi: [Decay; 3],
    /// Signed trade volume (buy − sell), per [`FLOW_TAUS_S`] (BTC).
    pub trade_imbalance: [Decay; 3],
    /// Trade volume, per [`FLOW_TAUS_S`] (BTC).
    pub trade_volume: [Decay; 3],
    /// Trade count, 10 s constant.
    pub trade_count_10s: Decay,
    /// Buy volume, 60 s constant (BTC).
    pub buy_volume_60s: Decay,
    /// Polymarket Up-book OFI, 10 s constant (shares).
    pub poly_ofi_up_10s: Decay,
    /// Polymarket trade imbalance in Up terms, 60 s constant (shares).
    pub poly_trade_imbalance_60s: Decay,
    /// Polymarket trade volume, 60 s constant (shares).
    pub poly_volume_60s: Decay,
    /// Last Polymarket trade price in Up terms.
    pub poly_last_up_price: f64,
    /// Event time of that trade (ns).
    pub poly_last_trade_ns: i64,
    poly_prev_top: [f64; 4],
    /// Per outcome (Up, Down): bumped by every change to that outcome's book in any window slot
    /// (levels, sync state, stamps) and by every slot reuse: what feature caches key
    /// book-derived values on.
    book_epoch: [u64; 2],
    /// Input refused, by reason.
    pub errors: InputErrors,
}

/// A window slot was reused: both outcomes' books changed.
fn bump_both(book_epoch: &mut [u64; 2]) {
    book_epoch[0] += 1;
    book_epoch[1] += 1;
}

fn slot_of(start_s: i64) -> usize {
    (start_s / WINDOW_S).rem_euclid(WINDOW_SLOTS as i64) as usize
}

impl MarketState {
    /// Builds the state; the only allocations of the decision core's state happen here.
    #[must_use]
    pub fn new(cfg: &DecideConfig) -> Self {
        let vol_prior = cfg.vol_prior_bps_per_sqrt_s * 1e-4;
        Self {
            cfg_stale_ns: cfg.stale_after_ms as i64 * 1_000_000,
            cfg_chainlink_stale_ns: cfg.chainlink_stale_after_ms as i64 * 1_000_000,
            cfg_strike_tol_ns: cfg.strike_tolerance_ms as i64 * 1_000_000,
            reference_venue: cfg.reference_source.venue(),
            roles: vec![InstrumentRole::Unknown; cfg.instrument_capacity],
            windows: (0..WINDOW_SLOTS).map(|_| WindowSlot::new()).collect(),
            current_start_s: 0,
            now_ns: 0,
            venues: [VenueState::default(); VENUE_SLOTS],
            venue_px: [(0.0, 0); VENUE_SLOTS],
            ref_px: [(0.0, 0); REF_VENUES.len()],
            ref_order: std::array::from_fn(|i| i as u8),
            ref_clean: false,
            ref_usable: 0,
            ref_valid_until_ns: i64::MIN,
            reference: 0.0,
            reference_venues: 0,
            reference_mad: 0.0,
            reference_ts_ns: 0,
            reference_seq: 0,
            chainlink: 0.0,
            chainlink_e18: 0,
            chainlink_ts_ns: 0,
            chainlink_recv_ns: 0,
            chainlink_seq: 0,
            ref_history: [0.0; HISTORY_S],
            up_mid_history: [0.0; HISTORY_S],
            last_second: 0,
            seconds_sampled: 0,
            var_per_s: [vol_prior * vol_prior; 4],
            vol_alpha: VOL_HALF_LIVES_S
                .map(|half_life| 1.0 - (-std::f64::consts::LN_2 / half_life).exp()),
            chainlink_var_per_s: vol_prior * vol_prior,
            vol_sqrt: [(vol_prior * vol_prior).sqrt(); 5],
            ofi: [Decay::default(); 3],
            trade_imbalance: [Decay::default(); 3],
            trade_volume: [Decay::default(); 3],
            trade_count_10s: Decay::default(),
            buy_volume_60s: Decay::default(),
            poly_ofi_up_10s: Decay::default(),
            poly_trade_imbalance_60s: Decay::default(),
            poly_volume_60s: Decay::default(),
            poly_last_up_price: 0.0,
            poly_last_trade_ns: 0,
            poly_prev_top: [0.0; 4],
            book_epoch: [0; 2],
            errors: InputErrors::default(),
        }
    }

    /// Registers an instrument from the bus instrument table (off the hot path: called once per
    /// new id). Polymarket names must follow `btc-updown-5m-<start>/<up|down>/<token_id>`.
    ///
    /// # Errors
    /// [`RegisterError`] for an id beyond capacity or a malformed Polymarket name.
    pub fn register_instrument(
        &mut self,
        id: u32,
        venue: Venue,
        name: &str,
        params: MarketParams,
    ) -> Result<(), RegisterError> {
        let capacity = self.roles.len();
        let Some(role) = self.roles.get_mut(id as usize) else {
            return Err(RegisterError::Capacity { id, capacity });
        };
        if venue != Venue::Polymarket {
            *role = InstrumentRole::Reference;
            return Ok(());
        }
        let InstrumentName {
            window_start_s,
            outcome,
            ..
        } = InstrumentName::parse(name).map_err(|source| RegisterError::BadName {
            name: name.to_owned(),
            source,
        })?;
        *role = InstrumentRole::Outcome {
            window_start_s,
            outcome,
        };
        let slot = &mut self.windows[slot_of(window_start_s)];
        if slot.start_s != window_start_s && window_start_s >= self.current_start_s {
            slot.reset(window_start_s, params);
            bump_both(&mut self.book_epoch);
        }
        if slot.start_s == window_start_s {
            slot.instruments[outcome as usize] = id;
            if !slot.params_from_bus {
                slot.params = params;
            }
        }
        Ok(())
    }

    /// Forgets instrument `id` (its bus slot now holds another instrument): its role becomes
    /// unknown and a window still listing it drops it. Cold: once per slot reuse.
    pub fn unregister_instrument(&mut self, id: u32) {
        let Some(role) = self.roles.get_mut(id as usize) else {
            return;
        };
        if let InstrumentRole::Outcome {
            window_start_s,
            outcome,
        } = std::mem::take(role)
        {
            let slot = &mut self.windows[slot_of(window_start_s)];
            if slot.start_s == window_start_s && slot.instruments[outcome as usize] == id {
                slot.instruments[outcome as usize] = u32::MAX;
            }
        }
    }

    /// Instrument ids with a role (registered and not forgotten).
    #[must_use]
    pub fn registered_instruments(&self) -> usize {
        self.roles
            .iter()
            .filter(|r| **r != InstrumentRole::Unknown)
            .count()
    }

    /// The role of an instrument id.
    #[must_use]
    pub fn role(&self, id: u32) -> InstrumentRole {
        self.roles.get(id as usize).copied().unwrap_or_default()
    }

    /// The current window's slot, if it has been set up (registered or strike seen).
    #[must_use]
    pub fn current(&self) -> Option<&WindowSlot> {
        let w = &self.windows[slot_of(self.current_start_s)];
        (w.start_s == self.current_start_s && w.start_s != 0).then_some(w)
    }

    /// Mutable access to the slot of the window starting at `start_s`, if present.
    pub fn window_mut(&mut self, start_s: i64) -> Option<&mut WindowSlot> {
        let w = &mut self.windows[slot_of(start_s)];
        (w.start_s == start_s && start_s != 0).then_some(w)
    }

    /// Mutable access to the current window's slot.
    pub fn current_mut(&mut self) -> Option<&mut WindowSlot> {
        let start = self.current_start_s;
        let w = &mut self.windows[slot_of(start)];
        (w.start_s == start && start != 0).then_some(w)
    }

    /// The slot of the window starting at `start_s`, if present.
    #[must_use]
    pub fn window(&self, start_s: i64) -> Option<&WindowSlot> {
        let w = &self.windows[slot_of(start_s)];
        (w.start_s == start_s).then_some(w)
    }

    /// Time left in the current window at `now_ns` (s).
    #[must_use]
    pub fn time_left_s(&self) -> f64 {
        ((self.current_start_s + WINDOW_S) * NS - self.now_ns) as f64 / NS as f64
    }

    /// Whether the composite reference is usable now.
    #[must_use]
    pub fn reference_fresh(&self) -> bool {
        self.reference > 0.0 && self.now_ns - self.reference_ts_ns <= self.cfg_stale_ns
    }

    /// Whether the latest Chainlink report is fresh.
    #[must_use]
    pub fn chainlink_fresh(&self) -> bool {
        self.chainlink > 0.0 && self.now_ns - self.chainlink_recv_ns <= self.cfg_chainlink_stale_ns
    }

    /// Volatility per √s at horizon index `h` (see [`VOL_HALF_LIVES_S`]).
    #[must_use]
    pub fn vol(&self, h: usize) -> f64 {
        self.vol_sqrt[h]
    }

    /// Chainlink volatility per √s: `chainlink_var_per_s.sqrt()`.
    #[must_use]
    pub fn chainlink_vol(&self) -> f64 {
        self.vol_sqrt[4]
    }

    /// Changes whenever the book of `outcome` (0 Up, 1 Down) of any window slot may have changed
    /// (see the field); books are only changed through [`MarketState::apply`] and instrument
    /// registration.
    #[must_use]
    pub fn book_epoch(&self, outcome: usize) -> u64 {
        self.book_epoch[outcome]
    }

    /// `venues[v].price()`, kept with the venue's record (no recomputation).
    #[must_use]
    #[inline]
    pub fn venue_price(&self, v: Venue) -> Option<(f64, i64)> {
        let (p, ts) = self.venue_px[v as usize];
        (p > 0.0).then_some((p, ts))
    }

    /// Staleness threshold for venues (ns).
    #[must_use]
    pub fn stale_ns(&self) -> i64 {
        self.cfg_stale_ns
    }

    /// ln(reference) `k` whole seconds ago (0 when unknown).
    #[must_use]
    pub fn ln_ref_ago(&self, k: usize) -> f64 {
        if k as u64 >= self.seconds_sampled || k >= HISTORY_S {
            return 0.0;
        }
        let idx = (self.last_second - k as i64).rem_euclid(HISTORY_S as i64) as usize;
        self.ref_history[idx]
    }

    /// Polymarket Up mid `k` whole seconds ago (0 when unknown).
    #[must_use]
    pub fn up_mid_ago(&self, k: usize) -> f64 {
        if k as u64 >= self.seconds_sampled || k >= HISTORY_S {
            return 0.0;
        }
        let idx = (self.last_second - k as i64).rem_euclid(HISTORY_S as i64) as usize;
        self.up_mid_history[idx]
    }

    fn advance_time(&mut self, ts_ns: i64, update: &mut Update) {
        if ts_ns <= self.now_ns {
            return;
        }
        self.now_ns = ts_ns;
        // Whole-second sampling for returns and volatility (bounded catch-up).
        let sec = ts_ns.div_euclid(NS);
        if self.last_second == 0 {
            self.last_second = sec;
        }
        let mut steps = 0;
        while self.last_second < sec && steps < HISTORY_S {
            self.sample_second();
            steps += 1;
        }
        if self.last_second < sec {
            self.last_second = sec;
        }
        let start = window_start_s(sec, WINDOW_S);
        if start != self.current_start_s {
            self.current_start_s = start;
            update.rolled_over = true;
            let params = self.windows[slot_of(start)].params;
            let reference = self.reference;
            let w = &mut self.windows[slot_of(start)];
            if w.start_s != start {
                w.reset(start, params);
                bump_both(&mut self.book_epoch);
            }
            w.ref_at_start = reference;
        }
    }

    fn sample_second(&mut self) {
        self.last_second += 1;
        let idx = self.last_second.rem_euclid(HISTORY_S as i64) as usize;
        let prev_idx = (self.last_second - 1).rem_euclid(HISTORY_S as i64) as usize;
        let ln_ref = if self.reference > 0.0 {
            self.reference.ln()
        } else {
            0.0
        };
        let prev = self.ref_history[prev_idx];
        self.ref_history[idx] = ln_ref;
        let up_mid = self
            .current()
            .and_then(|w| mid_of(&w.books[0]))
            .unwrap_or(0.0);
        self.up_mid_history[idx] = up_mid;
        self.seconds_sampled = self.seconds_sampled.saturating_add(1);
        if prev != 0.0 && ln_ref != 0.0 && self.seconds_sampled > 1 {
            let r2 = (ln_ref - prev) * (ln_ref - prev);
            for (h, alpha) in self.vol_alpha.iter().enumerate() {
                self.var_per_s[h] += alpha * (r2 - self.var_per_s[h]);
                self.vol_sqrt[h] = self.var_per_s[h].sqrt();
            }
        }
    }

    /// Applies one record. `seq` is the record's bus sequence.
    pub fn apply(&mut self, rec: &Record) -> Update {
        let mut update = Update::default();
        let ts = event_ts(rec);
        self.advance_time(ts, &mut update);
        let (Some(kind), Some(venue)) = (rec.record_kind(), rec.record_venue()) else {
            self.errors.unknown_kind_or_venue += 1;
            return update;
        };
        match (kind, venue) {
            (RecordKind::BookLevel, Venue::Polymarket) => self.on_poly_level(rec, &mut update),
            (RecordKind::Trade, Venue::Polymarket) => self.on_poly_trade(rec),
            // The one place the strike / outcome reference source is chosen.
            (RecordKind::IndexPrice, v) if v == self.reference_venue => {
                self.on_chainlink(rec, &mut update);
            }
            (RecordKind::TopOfBook, v) if is_ref_venue(v) => self.on_top(rec, v, &mut update),
            (RecordKind::Trade, v) if is_ref_venue(v) => self.on_trade(rec, v, &mut update),
            (RecordKind::FeedStatus, v) => self.on_feed_status(rec, v, &mut update),
            (RecordKind::MarketParams, Venue::Polymarket) => self.on_market_params(rec),
            _ => {}
        }
        update
    }

    /// A token's market parameters from the bus (Gamma at discovery, `tick_size_change`): they
    /// replace the configured ones for the token's window (cold: a few per window).
    fn on_market_params(&mut self, rec: &Record) {
        let Some(body) = rec.body_as::<MarketParamsBody>() else {
            return;
        };
        let InstrumentRole::Outcome { window_start_s, .. } = self.role(rec.instrument) else {
            self.errors.unknown_instrument += 1;
            return;
        };
        let slot = &mut self.windows[slot_of(window_start_s)];
        if slot.start_s != window_start_s {
            self.errors.window_out_of_range += 1;
            return;
        }
        match slot.params.updated_from_body(&body) {
            Ok(p) => {
                slot.params = p;
                slot.params_from_bus = true;
            }
            Err(_) => self.errors.bad_params += 1,
        }
    }

    fn on_poly_level(&mut self, rec: &Record, update: &mut Update) {
        let Some(level) = rec.body_as::<BookLevel>() else {
            return;
        };
        let InstrumentRole::Outcome {
            window_start_s,
            outcome,
        } = self.role(rec.instrument)
        else {
            self.errors.unknown_instrument += 1;
            return;
        };
        let current = self.current_start_s;
        let now = self.now_ns;
        let slot = &mut self.windows[slot_of(window_start_s)];
        if slot.start_s != window_start_s || window_start_s < current {
            self.errors.window_out_of_range += 1;
            return;
        }
        let o = outcome as usize;
        self.book_epoch[o] += 1;
        let book = &mut slot.books[o];
        if rec.flags & FLAG_SNAPSHOT != 0 {
            if rec.flags & FLAG_BATCH_BEGIN != 0 {
                slot.snap_sides[o] = 0;
            }
            let bit = if level.side == Side::Buy as u8 { 1 } else { 2 };
            if slot.snap_sides[o] & bit == 0 {
                if let Some(side) = Side::from_u8(level.side) {
                    book.clear_side(side);
                }
                slot.snap_sides[o] |= bit;
            }
        }
        if book.apply_level(&level).is_err() {
            self.errors.bad_levels += 1;
        }
        book.last_seq = rec.seq;
        book.last_ts_ns = now;
        let ends =
            rec.flags & FLAG_BATCH_END != 0 || rec.flags & (FLAG_BATCH_BEGIN | FLAG_BATCH_END) == 0;
        if ends {
            if rec.flags & FLAG_SNAPSHOT != 0 {
                book.mark_snapshot();
                slot.snap_sides[o] = 0;
            }
            if window_start_s == current {
                update.book_changed = true;
                if outcome == Outcome::Up {
                    self.on_up_top_change(now);
                }
            }
        }
    }

    fn on_up_top_change(&mut self, now: i64) {
        let Some(w) = self.current() else { return };
        let book = &w.books[0];
        let (Some((bp, bs)), Some((ap, as_))) = (book.best_bid(), book.best_ask()) else {
            return;
        };
        let (bp, bs, ap, as_) = (price_f64(bp), size_f64(bs), price_f64(ap), size_f64(as_));
        let prev = self.poly_prev_top;
        if prev[0] > 0.0 {
            let e = cont_ofi(prev, [bp, bs, ap, as_]);
            self.poly_ofi_up_10s.add(now, e, 10.0);
        }
        self.poly_prev_top = [bp, bs, ap, as_];
    }

    fn on_poly_trade(&mut self, rec: &Record) {
        let Some(t) = rec.body_as::<Trade>() else {
            return;
        };
        let InstrumentRole::Outcome { outcome, .. } = self.role(rec.instrument) else {
            self.errors.unknown_instrument += 1;
            return;
        };
        let (p, q) = (price_f64(t.price), size_f64(t.size));
        let sign = match Side::from_u8(t.side) {
            Some(Side::Buy) => 1.0,
            Some(Side::Sell) => -1.0,
            _ => 0.0,
        };
        let (up_price, up_sign) = match outcome {
            Outcome::Up => (p, sign),
            Outcome::Down => (1.0 - p, -sign),
        };
        let now = self.now_ns;
        let ts = self.poly_trade_imbalance_60s.ts_ns();
        let f = self.poly_trade_imbalance_60s.factor(now, 60.0);
        self.poly_trade_imbalance_60s
            .add_decayed(now, up_sign * q, f);
        let f = self.poly_volume_60s.factor_or(ts, f, now, 60.0);
        self.poly_volume_60s.add_decayed(now, q, f);
        self.poly_last_up_price = up_price;
        self.poly_last_trade_ns = now;
    }

    fn on_chainlink(&mut self, rec: &Record, update: &mut Update) {
        let Some(ip) = rec.body_as::<IndexPrice>() else {
            return;
        };
        if ip.price_type != 1 && ip.price_type != 0 {
            return;
        }
        let (value, exact) = if ip.value_e18 > 0 {
            (e18_f64(ip.value_e18), ip.value_e18)
        } else if ip.price > 0 {
            (price_f64(ip.price), ip.price as i128 * 10_000_000_000)
        } else {
            self.errors.bad_prices += 1;
            return;
        };
        let report_ts = if rec.exchange_ts_ns > 0 {
            rec.exchange_ts_ns
        } else {
            self.now_ns
        };
        if self.chainlink > 0.0 && report_ts > self.chainlink_ts_ns {
            let dt = (report_ts - self.chainlink_ts_ns) as f64 / NS as f64;
            let r = (value / self.chainlink).ln();
            let alpha = 1.0 - (-dt * std::f64::consts::LN_2 / 60.0).exp();
            self.chainlink_var_per_s += alpha * (r * r / dt - self.chainlink_var_per_s);
            self.vol_sqrt[4] = self.chainlink_var_per_s.sqrt();
        }
        if report_ts >= self.chainlink_ts_ns {
            self.chainlink = value;
            self.chainlink_e18 = exact;
            self.chainlink_ts_ns = report_ts;
            self.chainlink_recv_ns = self.now_ns;
            self.chainlink_seq = rec.seq;
        }
        // Strike: the first report stamped in [start, start + tolerance].
        let start = window_of_ns(report_ts);
        let params = self.windows[slot_of(start)].params;
        let tol = self.cfg_strike_tol_ns;
        let slot = &mut self.windows[slot_of(start)];
        if slot.start_s != start && start >= self.current_start_s {
            slot.reset(start, params);
            bump_both(&mut self.book_epoch);
        }
        if slot.start_s == start && !slot.strike_known {
            if report_ts - start * NS <= tol {
                slot.strike_known = true;
                slot.strike = value;
                slot.strike_e18 = exact;
                slot.strike_seq = rec.seq;
            } else if slot.strike_seq != u64::MAX {
                self.errors.late_strikes += 1;
                // Mark so the error is counted once per window.
                slot.strike_seq = u64::MAX;
                slot.strike_known = false;
            }
        }
        update.reference_changed = true;
    }

    fn on_top(&mut self, rec: &Record, venue: Venue, update: &mut Update) {
        let Some(t) = rec.body_as::<TopOfBook>() else {
            return;
        };
        if t.bid_price < 0 || t.ask_price < 0 || (t.bid_price == 0 && t.ask_price == 0) {
            self.errors.bad_prices += 1;
            return;
        }
        let now = self.now_ns;
        let v = &mut self.venues[venue as usize];
        let new = [
            price_f64(t.bid_price),
            size_f64(t.bid_size),
            price_f64(t.ask_price),
            size_f64(t.ask_size),
        ];
        if v.bid > 0.0 && v.ask > 0.0 && new[0] > 0.0 && new[2] > 0.0 {
            let e = cont_ofi([v.bid, v.bid_size, v.ask, v.ask_size], new);
            // The three OFI decays are added together: one Δt (shared while their stamps agree).
            let ts = self.ofi[0].ts_ns();
            let dt = self.ofi[0].dt_s(now);
            for (d, tau) in self.ofi.iter_mut().zip(FLOW_TAUS_S) {
                let f = if d.ts_ns() == ts {
                    Decay::factor_of_dt(dt, tau)
                } else {
                    d.factor(now, tau)
                };
                d.add_decayed(now, e, f);
            }
        }
        v.bid = new[0];
        v.bid_size = new[1];
        v.ask = new[2];
        v.ask_size = new[3];
        v.top_ts_ns = now;
        v.seq = rec.seq;
        self.venue_px[venue as usize] = v.price().unwrap_or((0.0, 0));
        self.refresh_ref_px(venue);
        self.recompute_reference(rec.seq, update);
    }

    fn on_trade(&mut self, rec: &Record, venue: Venue, update: &mut Update) {
        let Some(t) = rec.body_as::<Trade>() else {
            return;
        };
        if t.price <= 0 || t.size < 0 {
            self.errors.bad_prices += 1;
            return;
        }
        let now = self.now_ns;
        let q = size_f64(t.size);
        let sign = match Side::from_u8(t.side) {
            Some(Side::Buy) => 1.0,
            Some(Side::Sell) => -1.0,
            _ => 0.0,
        };
        // The trade decays are added together, so they mostly share their stamp and hence one
        // decay factor per time constant (`Decay::factor_or`; same value as `Decay::add`'s).
        let mut factors = [(0i64, 0.0f64); 3];
        let (ts0, dt0) = (
            self.trade_imbalance[0].ts_ns(),
            self.trade_imbalance[0].dt_s(now),
        );
        for (i, tau) in FLOW_TAUS_S.iter().enumerate() {
            let ts = self.trade_imbalance[i].ts_ns();
            let f = if ts == ts0 {
                Decay::factor_of_dt(dt0, *tau)
            } else {
                self.trade_imbalance[i].factor(now, *tau)
            };
            factors[i] = (ts, f);
            self.trade_imbalance[i].add_decayed(now, sign * q, f);
            let fv = self.trade_volume[i].factor_or(ts, f, now, *tau);
            self.trade_volume[i].add_decayed(now, q, fv);
        }
        const { assert!(FLOW_TAUS_S[1] == 10.0 && FLOW_TAUS_S[2] == 60.0) };
        let f = self
            .trade_count_10s
            .factor_or(factors[1].0, factors[1].1, now, 10.0);
        self.trade_count_10s.add_decayed(now, 1.0, f);
        if sign > 0.0 {
            let f = self
                .buy_volume_60s
                .factor_or(factors[2].0, factors[2].1, now, 60.0);
            self.buy_volume_60s.add_decayed(now, q, f);
        }
        let v = &mut self.venues[venue as usize];
        v.trade_price = price_f64(t.price);
        v.trade_ts_ns = now;
        v.seq = rec.seq;
        self.venue_px[venue as usize] = v.price().unwrap_or((0.0, 0));
        self.refresh_ref_px(venue);
        self.recompute_reference(rec.seq, update);
    }

    fn on_feed_status(&mut self, rec: &Record, venue: Venue, update: &mut Update) {
        let Some(fs) = rec.body_as::<FeedStatusBody>() else {
            return;
        };
        let trusted = FeedState::from_u8(fs.state).is_some_and(FeedState::is_trustworthy);
        let bit = 1u16 << (rec.stream & 15);
        if venue == Venue::Polymarket {
            // The Up/Down books cannot be trusted while a Polymarket stream is stale, gapped or
            // disconnected (the reflex path refuses to fire until it is live or resynced).
            let v = &mut self.venues[venue as usize];
            if trusted {
                v.untrusted_streams &= !bit;
            } else {
                v.untrusted_streams |= bit;
            }
        } else if is_ref_venue(venue) {
            let v = &mut self.venues[venue as usize];
            if trusted {
                v.untrusted_streams &= !bit;
            } else {
                v.untrusted_streams |= bit;
            }
            self.refresh_ref_px(venue);
            self.recompute_reference(rec.seq, update);
        }
    }

    /// Keeps `ref_px` in step with `venue_px` and the venue's trust (after either changed).
    #[inline]
    fn refresh_ref_px(&mut self, venue: Venue) {
        let v = venue as usize;
        if let Some(&k) = REF_INDEX.get(v).filter(|&&k| k != u8::MAX) {
            let (p, ts) = self.venue_px[v];
            let trusted = self.venues[v].untrusted_streams == 0;
            let new = (if trusted { p } else { 0.0 }, ts);
            let old = std::mem::replace(&mut self.ref_px[k as usize], new);
            // The last composite still holds unless the price moved, the stamp went back (the
            // venue may go stale sooner), or a venue outside its set may have become usable.
            let outside = self.ref_usable & (1 << k) == 0;
            if new.0 != old.0 || new.1 < old.1 || (new.0 > 0.0 && outside) {
                self.ref_clean = false;
            }
        }
    }

    /// Whether every Polymarket stream's last feed status says its books can be trusted.
    #[must_use]
    pub fn polymarket_trusted(&self) -> bool {
        self.venues[Venue::Polymarket as usize].untrusted_streams == 0
    }

    /// Median of the usable venues' prices; O(venues) with a fixed stack buffer.
    fn recompute_reference(&mut self, seq: u64, update: &mut Update) {
        const N: usize = REF_VENUES.len();
        const { assert!(N <= 16) };
        // Same inputs, same usable set: the composite is the last one (only its stamp moves).
        if self.ref_clean && self.now_ns <= self.ref_valid_until_ns {
            self.debug_assert_composite_holds();
            if self.reference_venues != 0 {
                self.reference_ts_ns = self.now_ns;
            }
            return;
        }
        self.ref_clean = true;
        self.ref_valid_until_ns = i64::MAX;
        self.ref_usable = 0;
        let mut vals = [0.0f64; N];
        let mut order = [0u8; N];
        let (mut n, mut rest) = (0, N);
        let (now, stale) = (self.now_ns, self.cfg_stale_ns);
        // Usable venues in the last composite's order (the others fill `order` from the back).
        for &i in &self.ref_order {
            // `VenueState::usable` and `price` (`ref_px` is `price()` of a trusted venue, 0 when
            // `None` or untrusted; a price is never 0 when `Some`).
            let (p, ts) = self.ref_px[i as usize];
            if p > 0.0 && now - ts <= stale {
                vals[n] = p;
                order[n] = i;
                n += 1;
                self.ref_usable |= 1 << i;
                self.ref_valid_until_ns = self.ref_valid_until_ns.min(ts.saturating_add(stale));
            } else {
                rest -= 1;
                order[rest] = i;
            }
        }
        if n == 0 {
            if self.reference_venues != 0 {
                update.reference_changed = true;
            }
            self.reference_venues = 0;
            return;
        }
        // Insertion sort of (price, venue) by price: a handful of steps on nearly sorted input.
        for i in 1..n {
            let (x, k) = (vals[i], order[i]);
            let mut j = i;
            while j > 0 && vals[j - 1] > x {
                vals[j] = vals[j - 1];
                order[j] = order[j - 1];
                j -= 1;
            }
            vals[j] = x;
            order[j] = k;
        }
        self.ref_order = order;
        let (median, mad) = median_mad_sorted(&vals[..n]);
        self.reference_mad = mad;
        if median != self.reference || n as u32 != self.reference_venues {
            update.reference_changed = true;
            self.reference_seq = seq;
        }
        self.reference = median;
        self.reference_venues = n as u32;
        self.reference_ts_ns = self.now_ns;
    }

    /// Debug builds: the composite recomputed from scratch (the original rule, from the venues)
    /// is the one kept.
    #[inline]
    fn debug_assert_composite_holds(&self) {
        #[cfg(debug_assertions)]
        {
            let bits = |(median, mad, n): (f64, f64, u32)| (median.to_bits(), mad.to_bits(), n);
            let kept = (self.reference_venues != 0).then_some((
                self.reference,
                self.reference_mad,
                self.reference_venues,
            ));
            assert_eq!(
                composite_from_scratch(self).map(bits),
                kept.map(bits),
                "reused reference composite"
            );
        }
    }
}

/// Median of `vals` (sorted ascending; the mean of the two middle values for an even count) and
/// the median absolute deviation: the `n/2`-th smallest (0-based) of `|v − median|`.
///
/// The deviations are not sorted: both halves of the sorted values have deviations that grow
/// away from the median (`|v − m|` rounded is monotone in `v` on each side, and
/// `vals[..n/2] ≤ median ≤ vals[n/2..]`), so merging the two runs outwards from the middle
/// yields them in order and the `n/2`-th one is the same value a full sort gives.
/// Contract: `1 ≤ vals.len()`, values finite.
fn median_mad_sorted(vals: &[f64]) -> (f64, f64) {
    let n = vals.len();
    debug_assert!(n >= 1 && vals.is_sorted());
    let median = if n % 2 == 1 {
        vals[n / 2]
    } else {
        0.5 * (vals[n / 2 - 1] + vals[n / 2])
    };
    // Left run: indices l-1, l-2, … 0; right run: r, r+1, … n-1. Bounded by n/2 + 1 steps.
    let (mut l, mut r) = (n / 2, n / 2);
    let mut mad = 0.0;
    for _ in 0..=n / 2 {
        let take_left = if l == 0 {
            false
        } else if r == n {
            true
        } else {
            (vals[l - 1] - median).abs() <= (vals[r] - median).abs()
        };
        if take_left {
            l -= 1;
            mad = (vals[l] - median).abs();
        } else {
            mad = (vals[r] - median).abs();
            r += 1;
        }
    }
    (median, mad_check(vals, median, mad))
}

/// Sorts `vals` and returns [`median_mad_sorted`] (tests).
#[cfg(test)]
fn median_mad(vals: &mut [f64]) -> (f64, f64) {
    insertion_sort(vals);
    median_mad_sorted(vals)
}

/// Debug builds: the MAD found by merging equals the one of a full sort of the deviations.
#[inline]
fn mad_check(vals: &[f64], median: f64, mad: f64) -> f64 {
    #[cfg(debug_assertions)]
    {
        let mut dev = [0.0f64; REF_VENUES.len()];
        let n = vals.len().min(REF_VENUES.len());
        for (d, v) in dev.iter_mut().zip(vals.iter()) {
            *d = (v - median).abs();
        }
        let devs = &mut dev[..n];
        insertion_sort(devs);
        debug_assert_eq!(devs[n / 2].to_bits(), mad.to_bits(), "MAD merge");
    }
    let _ = (vals, median);
    mad
}

/// The record's event time: receive stamp, else exchange stamp, else publish stamp.
pub use ringbolt_market::event_ts;

/// Whether `venue` contributes to the composite reference.
#[must_use]
pub fn is_ref_venue(venue: Venue) -> bool {
    !matches!(
        venue,
        Venue::Internal | Venue::Polymarket | Venue::ChainlinkRtds | Venue::PolyBolt
    )
}

/// Mid of a book with both sides, as f64.
#[must_use]
pub fn mid_of(book: &PolyBook) -> Option<f64> {
    book.mid()
}

/// Cont–Kukanov–Stoikov order-flow imbalance of one top-of-book change:
/// `1{Pb'≥Pb}qb' − 1{Pb'≤Pb}qb − 1{Pa'≤Pa}qa' + 1{Pa'≥Pa}qa`, tops as [bid, bid size, ask, ask size].
#[must_use]
pub fn cont_ofi(prev: [f64; 4], new: [f64; 4]) -> f64 {
    let mut e = 0.0;
    if new[0] >= prev[0] {
        e += new[1];
    }
    if new[0] <= prev[0] {
        e -= prev[1];
    }
    if new[2] <= prev[2] {
        e -= new[3];
    }
    if new[2] >= prev[2] {
        e += prev[3];
    }
    e
}

/// The composite of `m` as the original rule computes it from the venues: usable venues'
/// prices, sorted; median; MAD of a full sort of the deviations. Tests and debug builds.
#[cfg(any(test, debug_assertions))]
fn composite_from_scratch(m: &MarketState) -> Option<(f64, f64, u32)> {
    let mut buf = [0.0f64; REF_VENUES.len()];
    let mut n = 0;
    for v in REF_VENUES {
        let vs = &m.venues[v as usize];
        if vs.usable(m.now_ns, m.cfg_stale_ns)
            && let Some((p, _)) = vs.price()
        {
            buf[n] = p;
            n += 1;
        }
    }
    if n == 0 {
        return None;
    }
    let (median, mad) = median_mad_full_sort(&mut buf[..n]);
    Some((median, mad, n as u32))
}

/// Median and MAD by the definition: `vals` sorted, then a full sort of the deviations. Tests
/// and debug builds. Contract: `1 ≤ vals.len() ≤ REF_VENUES.len()`.
#[cfg(any(test, debug_assertions))]
fn median_mad_full_sort(vals: &mut [f64]) -> (f64, f64) {
    let n = vals.len();
    insertion_sort(vals);
    let median = if n % 2 == 1 {
        vals[n / 2]
    } else {
        0.5 * (vals[n / 2 - 1] + vals[n / 2])
    };
    let mut dev = [0.0f64; REF_VENUES.len()];
    for (d, v) in dev.iter_mut().zip(vals.iter()) {
        *d = (v - median).abs();
    }
    insertion_sort(&mut dev[..n]);
    (median, dev[n / 2])
}

#[cfg(any(test, debug_assertions))]
fn insertion_sort(v: &mut [f64]) {
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReferenceSource;

    #[test]
    fn median_mad_matches_sorting_the_deviations() {
        let mut rng = crate::synth::Rng::new(17);
        for case in 0..20_000 {
            let n = 1 + case % REF_VENUES.len();
            let mut vals = [0.0f64; REF_VENUES.len()];
            for v in &mut vals[..n] {
                // Few distinct values (ties) in some cases, fine-grained prices in others.
                *v = if case % 3 == 0 {
                    95_000.0 + (rng.next_u64() % 4) as f64 * 0.5
                } else {
                    95_000.0 + rng.normal() * 7.3
                };
            }
            let mut sorted = vals;
            let (median, want_mad) = median_mad_full_sort(&mut sorted[..n]);
            let (m, mad) = median_mad(&mut vals[..n]);
            assert_eq!(m.to_bits(), median.to_bits(), "case {case}");
            assert_eq!(mad.to_bits(), want_mad.to_bits(), "case {case}");
        }
    }

    /// The composite kept by the state (venue prices stored with their records, trusted prices
    /// in one array, gathered in the last sorted order, MAD by merging) equals the original
    /// rule's after every record that recomputed it, with feed outages.
    #[test]
    fn composite_matches_the_original_rule() {
        use crate::synth::{SynthConfig, SynthItem, SynthStream};
        for (seed, outage_per_s) in [(31, 0.002), (32, 0.05)] {
            let cfg = DecideConfig::default();
            let mut m = MarketState::new(&cfg);
            let mut checked = 0;
            for item in SynthStream::new(SynthConfig {
                seed,
                windows: 2,
                outage_per_s,
                ..SynthConfig::default()
            }) {
                match item {
                    SynthItem::Instrument { id, venue, name } => {
                        let _ = m.register_instrument(id, venue, &name, cfg.default_market);
                    }
                    SynthItem::Record(r) => {
                        let kind = r.record_kind();
                        m.apply(&r);
                        let recomputed = matches!(
                            kind,
                            Some(
                                RecordKind::TopOfBook | RecordKind::Trade | RecordKind::FeedStatus
                            )
                        ) && r.record_venue().is_some_and(is_ref_venue);
                        if !recomputed {
                            continue;
                        }
                        match composite_from_scratch(&m) {
                            Some((median, mad, n)) => {
                                assert_eq!(
                                    median.to_bits(),
                                    m.reference.to_bits(),
                                    "seq {}",
                                    r.seq
                                );
                                assert_eq!(
                                    mad.to_bits(),
                                    m.reference_mad.to_bits(),
                                    "seq {}",
                                    r.seq
                                );
                                assert_eq!(n, m.reference_venues, "seq {}", r.seq);
                                checked += 1;
                            }
                            None => assert_eq!(m.reference_venues, 0, "seq {}", r.seq),
                        }
                    }
                }
            }
            assert!(checked > 10_000, "{checked}");
        }
    }

    #[test]
    fn ofi_signs() {
        // Bid price up: + new bid size.
        assert_eq!(
            cont_ofi([100.0, 1.0, 101.0, 2.0], [100.5, 3.0, 101.0, 2.0]),
            3.0
        );
        // Ask price down: − new ask size.
        assert_eq!(
            cont_ofi([100.0, 1.0, 101.0, 2.0], [100.0, 1.0, 100.5, 4.0]),
            -4.0
        );
    }

    fn index(venue: Venue, stream: u8, price_type: u8, usd: i64, ts_ns: i64) -> Record {
        let body = IndexPrice {
            value_e18: i128::from(usd) * 1_000_000_000_000_000_000,
            price: usd * 100_000_000,
            price_type,
            reserved: [0; 55],
        };
        let mut r = Record::new(venue, stream, 9, &body);
        r.exchange_ts_ns = ts_ns;
        r.recv_ts_ns = ts_ns + 300_000_000;
        r
    }

    #[test]
    fn the_strike_follows_the_configured_reference_source() {
        let start_s = 1_788_973_200_i64; // a 5-minute boundary
        let at = |ms: i64| start_s * NS + ms * 1_000_000;
        // Same instants: RTDS Chainlink says 64 000, PolyBolt's price 64 100 (and its TWAP,
        // price_type 3, 64 200, which must never set the strike).
        let records = [
            index(Venue::PolyBolt, 2, 3, 64_200, at(200)),
            index(Venue::ChainlinkRtds, 1, 1, 64_000, at(400)),
            index(Venue::PolyBolt, 1, 1, 64_100, at(600)),
            index(Venue::ChainlinkRtds, 1, 1, 64_010, at(1_400)),
            index(Venue::PolyBolt, 1, 1, 64_110, at(1_600)),
        ];
        let strike = |source: ReferenceSource| {
            let cfg = DecideConfig {
                reference_source: source,
                ..DecideConfig::default()
            };
            let mut m = MarketState::new(&cfg);
            for r in &records {
                m.apply(r);
            }
            let w = &m.windows[slot_of(start_s)];
            assert!(w.strike_known && w.start_s == start_s, "{source:?}");
            (w.strike_e18, m.chainlink)
        };
        assert_eq!(
            strike(ReferenceSource::ChainlinkRtds),
            (64_000 * 1_000_000_000_000_000_000, 64_010.0)
        );
        assert_eq!(
            strike(ReferenceSource::Polybolt),
            (64_100 * 1_000_000_000_000_000_000, 64_110.0)
        );
        assert_eq!(
            DecideConfig::default().reference_source,
            ReferenceSource::ChainlinkRtds
        );
        let text = serde_json::to_string(&ReferenceSource::Polybolt).unwrap();
        assert_eq!(text, "\"polybolt\"");
    }
}
