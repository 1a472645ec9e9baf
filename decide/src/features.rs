//! The feature catalogue: ONE definition of every model input, used by the live reflex/model
//! paths, by replay and by `ringbolt features export` (training).
//!
//! Each entry of `features!` gives a name, a unit, the update trigger, the formula text (for
//! docs/features.md) and the expression that computes it from a [`Ctx`] snapshot of the
//! [`MarketState`]. The catalogue order is the model's input order; [`schema_hash`] hashes names
//! and units so a model trained on another schema is refused at load time.
//!
//! Missing inputs are encoded as 0 with a companion `*_ok`/`*_known` flag, never NaN.

use ringbolt_bus::{Side, Venue};
use ringbolt_market::PolyBook;

use crate::fair::{buy_edge, lognormal_up_probability, lognormal_up_probability_ln};
use crate::market::{Decay, MarketState, NS, REF_VENUES, WINDOW_S, mid_of};
use crate::num::{logit, price_f64, size_f64};

/// Version mixed into the schema hash (bump when a formula changes without a rename).
pub const FEATURE_SCHEMA_VERSION: u32 = 1;

/// One catalogue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Name (snake_case, unique).
    pub name: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// Which events change it.
    pub trigger: &'static str,
    /// The formula, for the documentation.
    pub formula: &'static str,
}

/// Book-derived numbers of one outcome token (probability units / shares).
#[derive(Clone, Copy, Debug, Default)]
pub struct BookView {
    /// Both sides present and a snapshot applied.
    pub ok: f64,
    /// Best bid.
    pub bid: f64,
    /// Best ask.
    pub ask: f64,
    /// Size at best bid (shares).
    pub bid_size: f64,
    /// Size at best ask (shares).
    pub ask_size: f64,
    /// Bid size within 0.05 of the best bid (shares).
    pub bid_depth5: f64,
    /// Ask size within 0.05 of the best ask (shares).
    pub ask_depth5: f64,
    /// Age of the last update (s).
    pub age_s: f64,
}

impl BookView {
    fn of(book: &PolyBook, now_ns: i64) -> Self {
        let (mut v, tops) = Self::of_levels(book);
        if tops {
            v.age_s = Self::age_of(book, now_ns);
        }
        v
    }
    /// Everything but the age (a function of the book's levels and sync state only), and
    /// whether both sides have a best level (only then is the age set).
    fn of_levels(book: &PolyBook) -> (Self, bool) {
        let (Some((b, bs)), Some((a, as_))) = (book.best_bid(), book.best_ask()) else {
            return (Self::default(), false);
        };
        let v = Self {
            ok: if book.is_valid() { 1.0 } else { 0.0 },
            bid: price_f64(b),
            ask: price_f64(a),
            bid_size: size_f64(bs),
            ask_size: size_f64(as_),
            bid_depth5: size_f64(book.depth_within(Side::Buy, 5_000_000)),
            ask_depth5: size_f64(book.depth_within(Side::Sell, 5_000_000)),
            age_s: 0.0,
        };
        (v, true)
    }
    fn age_of(book: &PolyBook, now_ns: i64) -> f64 {
        ((now_ns - book.last_ts_ns) as f64 / NS as f64).min(60.0)
    }
    fn mid(&self) -> f64 {
        if self.ok > 0.0 {
            0.5 * (self.bid + self.ask)
        } else {
            0.0
        }
    }
    fn spread(&self) -> f64 {
        if self.ok > 0.0 {
            self.ask - self.bid
        } else {
            0.0
        }
    }
    fn top_imbalance(&self) -> f64 {
        let t = self.bid_size + self.ask_size;
        if t > 0.0 {
            (self.bid_size - self.ask_size) / t
        } else {
            0.0
        }
    }
    fn depth_imbalance(&self) -> f64 {
        let t = self.bid_depth5 + self.ask_depth5;
        if t > 0.0 {
            (self.bid_depth5 - self.ask_depth5) / t
        } else {
            0.0
        }
    }
    fn microprice(&self) -> f64 {
        let t = self.bid_size + self.ask_size;
        if self.ok > 0.0 && t > 0.0 {
            (self.bid * self.ask_size + self.ask * self.bid_size) / t
        } else {
            0.0
        }
    }
}

/// Everything the feature expressions read, computed once per feature evaluation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ctx {
    /// Time left (s).
    pub tau: f64,
    /// Window start (s).
    pub start_s: i64,
    /// Strike known.
    pub strike_ok: f64,
    /// Strike (USD).
    pub strike: f64,
    /// Reference usable.
    pub ref_ok: f64,
    /// Reference (USD), Chainlink when the composite is stale.
    pub spot: f64,
    /// Chainlink fresh.
    pub cl_ok: f64,
    /// Chainlink (USD).
    pub chainlink: f64,
    /// Volatilities per √s.
    pub vol: [f64; 4],
    /// Chainlink vol per √s.
    pub cl_vol: f64,
    /// σ used by the baseline.
    pub sigma: f64,
    /// Baseline probability.
    pub p_base: f64,
    /// Up book.
    pub up: BookView,
    /// Down book.
    pub down: BookView,
    /// Params: fee rate / exponent.
    pub params: crate::config::MarketParams,
    /// Venue views: (deviation bps, spread bps, age s, ok).
    pub venues: [[f64; 4]; REF_VENUES.len()],
    /// ln(spot / strike), when the strike is known and both are positive.
    pub ln_spot_strike: Option<f64>,
    /// ln(chainlink / strike), when the strike is known and both are positive.
    pub ln_cl_strike: Option<f64>,
    /// ln(spot / chainlink), when the reference is usable and both are positive.
    pub ln_spot_cl: Option<f64>,
    /// ln(spot / reference at window start), when a current window exists and both are positive.
    pub ln_spot_start: Option<f64>,
    /// The decayed flow accumulators at the current event time.
    pub flow: Flow,
}

/// The order-flow decays at the current event time (the feature values).
#[derive(Clone, Copy, Debug, Default)]
pub struct Flow {
    /// Reference OFI, τ = 1, 10, 60 s.
    pub ofi: [f64; 3],
    /// Reference signed trade volume, τ = 1, 10, 60 s.
    pub trade_imbalance: [f64; 3],
    /// Reference trade volume, τ = 10 s.
    pub trade_volume_10s: f64,
    /// Reference trade volume, τ = 60 s.
    pub trade_volume_60s: f64,
    /// Reference trade count, τ = 10 s.
    pub trade_count_10s: f64,
    /// Reference buy volume, τ = 60 s.
    pub buy_volume_60s: f64,
    /// Polymarket Up-book OFI, τ = 10 s.
    pub poly_ofi_up_10s: f64,
    /// Polymarket trade imbalance, τ = 60 s.
    pub poly_trade_imbalance_60s: f64,
    /// Polymarket volume, τ = 60 s.
    pub poly_volume_60s: f64,
}

impl Flow {
    /// Every decay read on its own (the reference computation).
    fn of(s: &MarketState) -> Self {
        let now = s.now_ns;
        Self {
            ofi: [
                s.ofi[0].get(now, 1.0),
                s.ofi[1].get(now, 10.0),
                s.ofi[2].get(now, 60.0),
            ],
            trade_imbalance: [
                s.trade_imbalance[0].get(now, 1.0),
                s.trade_imbalance[1].get(now, 10.0),
                s.trade_imbalance[2].get(now, 60.0),
            ],
            trade_volume_10s: s.trade_volume[1].get(now, 10.0),
            trade_volume_60s: s.trade_volume[2].get(now, 60.0),
            trade_count_10s: s.trade_count_10s.get(now, 10.0),
            buy_volume_60s: s.buy_volume_60s.get(now, 60.0),
            poly_ofi_up_10s: s.poly_ofi_up_10s.get(now, 10.0),
            poly_trade_imbalance_60s: s.poly_trade_imbalance_60s.get(now, 60.0),
            poly_volume_60s: s.poly_volume_60s.get(now, 60.0),
        }
    }

    /// The same values with one `exp` per (stamp, τ): decays added together share their stamp,
    /// and [`Decay::factor`] is a function of (now − stamp, τ) only.
    fn of_shared(s: &MarketState) -> Self {
        let now = s.now_ns;
        let ti = &s.trade_imbalance;
        let ti_dt = ti[0].dt_s(now);
        let ti_factor = |d: &Decay, tau: f64| {
            if d.ts_ns() == ti[0].ts_ns() {
                Decay::factor_of_dt(ti_dt, tau)
            } else {
                d.factor(now, tau)
            }
        };
        let f: [f64; 3] = [
            Decay::factor_of_dt(ti_dt, 1.0),
            ti_factor(&ti[1], 10.0),
            ti_factor(&ti[2], 60.0),
        ];
        let (ts10, ts60) = (ti[1].ts_ns(), ti[2].ts_ns());
        let shared =
            |d: &Decay, ts: i64, f: f64, tau: f64| d.get_with(d.factor_or(ts, f, now, tau));
        let poly_ts = s.poly_trade_imbalance_60s.ts_ns();
        let poly_f = s.poly_trade_imbalance_60s.factor(now, 60.0);
        // The OFI decays are added together: one Δt while their stamps agree.
        let ofi = &s.ofi;
        let ofi_dt = ofi[0].dt_s(now);
        let ofi_get = |d: &Decay, tau: f64| {
            if d.ts_ns() == ofi[0].ts_ns() {
                d.get_with(Decay::factor_of_dt(ofi_dt, tau))
            } else {
                d.get(now, tau)
            }
        };
        Self {
            ofi: [
                ofi[0].get_with(Decay::factor_of_dt(ofi_dt, 1.0)),
                ofi_get(&ofi[1], 10.0),
                ofi_get(&ofi[2], 60.0),
            ],
            trade_imbalance: [
                ti[0].get_with(f[0]),
                ti[1].get_with(f[1]),
                ti[2].get_with(f[2]),
            ],
            trade_volume_10s: shared(&s.trade_volume[1], ts10, f[1], 10.0),
            trade_volume_60s: shared(&s.trade_volume[2], ts60, f[2], 60.0),
            trade_count_10s: shared(&s.trade_count_10s, ts10, f[1], 10.0),
            buy_volume_60s: shared(&s.buy_volume_60s, ts60, f[2], 60.0),
            poly_ofi_up_10s: s.poly_ofi_up_10s.get(now, 10.0),
            poly_trade_imbalance_60s: s.poly_trade_imbalance_60s.get_with(poly_f),
            poly_volume_60s: shared(&s.poly_volume_60s, poly_ts, poly_f, 60.0),
        }
    }
}

/// Builds the context from the state at its current event time.
#[must_use]
pub fn context(s: &MarketState) -> Ctx {
    let now = s.now_ns;
    let mut c = Ctx {
        tau: s.time_left_s().max(0.0),
        start_s: s.current_start_s,
        ..Ctx::default()
    };
    if let Some(w) = s.current() {
        c.strike_ok = if w.strike_known { 1.0 } else { 0.0 };
        c.strike = w.strike;
        c.up = BookView::of(&w.books[0], now);
        c.down = BookView::of(&w.books[1], now);
        c.params = w.params;
    }
    c.cl_ok = if s.chainlink_fresh() { 1.0 } else { 0.0 };
    c.chainlink = s.chainlink;
    if s.reference_fresh() {
        c.ref_ok = 1.0;
        c.spot = s.reference;
    } else if s.chainlink_fresh() {
        c.spot = s.chainlink;
    }
    for h in 0..4 {
        c.vol[h] = s.var_per_s[h].sqrt();
    }
    c.cl_vol = s.chainlink_var_per_s.sqrt();
    c.sigma = c.vol[2].max(0.5 * c.vol[1]).max(1e-6);
    let ln = |a: f64, b: f64| (a > 0.0 && b > 0.0).then(|| (a / b).ln());
    if c.strike_ok > 0.0 {
        c.ln_spot_strike = ln(c.spot, c.strike);
        c.ln_cl_strike = ln(c.chainlink, c.strike);
    }
    if c.ref_ok > 0.0 {
        c.ln_spot_cl = ln(c.spot, c.chainlink);
    }
    c.ln_spot_start = s.current().and_then(|w| ln(c.spot, w.ref_at_start));
    c.flow = Flow::of(s);
    c.p_base = p_base(&c);
    for (i, v) in REF_VENUES.iter().enumerate() {
        let vs = &s.venues[*v as usize];
        let ok = vs.usable(now, s.stale_ns());
        let (price, ts) = vs.price().unwrap_or((0.0, 0));
        let dev = if ok && s.reference > 0.0 {
            (price / s.reference).ln() * 1e4
        } else {
            0.0
        };
        c.venues[i] = venue_row(vs, ok, price, ts, now, dev);
    }
    c
}

/// A venue's row of the context: deviation from the reference (bps, given), spread (bps), age of
/// its price (s, at most 60) and whether it is usable; shared by [`context`] and the cached path.
#[inline]
fn venue_row(
    vs: &crate::market::VenueState,
    ok: bool,
    price: f64,
    ts: i64,
    now: i64,
    dev: f64,
) -> [f64; 4] {
    let spread = if ok && vs.bid > 0.0 && vs.ask >= vs.bid {
        (vs.ask - vs.bid) / price * 1e4
    } else {
        0.0
    };
    let age = if ts > 0 {
        ((now - ts) as f64 / NS as f64).min(60.0)
    } else {
        60.0
    };
    [dev, spread, age, if ok { 1.0 } else { 0.0 }]
}

/// The baseline probability of the context: [`lognormal_up_probability`] of (spot, strike, σ,
/// τ) when the strike is known and the spot positive, else 0.5.
fn p_base(c: &Ctx) -> f64 {
    p_with(c, c.ln_spot_strike, c.spot, c.sigma, false)
}

/// `ln(a / b)` memoised on the exact bits of `a` and `b` (so the value is the one `(a / b).ln()`
/// gives).
#[derive(Clone, Copy, Debug, Default)]
pub struct LnRatio {
    key: Option<(u64, u64)>,
    value: f64,
}

impl LnRatio {
    /// `(a / b).ln()`.
    #[inline]
    pub fn get(&mut self, a: f64, b: f64) -> f64 {
        let key = (a.to_bits(), b.to_bits());
        if self.key != Some(key) {
            self.value = (a / b).ln();
            self.key = Some(key);
        }
        self.value
    }

    /// `Some((a / b).ln())` when a, b > 0, else `None`.
    #[inline]
    fn positive(&mut self, a: f64, b: f64) -> Option<f64> {
        (a > 0.0 && b > 0.0).then(|| self.get(a, b))
    }
}

/// What [`compute_cached`] remembers between feature vectors: book views keyed on the state's
/// book epoch, and `ln` of price ratios keyed on their exact inputs. Sized at construction; a
/// cached value is only ever reused for identical inputs, so results are bit-identical to
/// [`compute`].
#[derive(Clone, Debug, Default)]
pub struct FeatureCache {
    /// Per outcome: (book epoch, current window start) the book view below belongs to.
    books_key: [Option<(u64, i64)>; 2],
    /// Up and Down views without their age, and whether each has both tops (then its age is
    /// set per event); `None` without a current window.
    books: [Option<(BookView, bool)>; 2],
    /// ln(venue price / reference) per reference venue.
    venue_dev: [LnRatio; REF_VENUES.len()],
    /// ln(spot / strike), also used by the reflex pass's baseline.
    pub spot_strike: LnRatio,
    cl_strike: LnRatio,
    spot_cl: LnRatio,
    spot_start: LnRatio,
    /// The context of the last call (rebuilt in place).
    ctx: Ctx,
}

impl FeatureCache {
    /// [`context`] with the memoised parts, built in place (every field written on every call).
    pub fn context(&mut self, s: &MarketState) -> &Ctx {
        // Every field of `Ctx` is assigned below: naming them all here makes adding one without
        // assigning it a compile error to revisit.
        let Ctx {
            tau: _,
            start_s: _,
            strike_ok: _,
            strike: _,
            ref_ok: _,
            spot: _,
            cl_ok: _,
            chainlink: _,
            vol: _,
            cl_vol: _,
            sigma: _,
            p_base: _,
            up: _,
            down: _,
            params: _,
            venues: _,
            ln_spot_strike: _,
            ln_cl_strike: _,
            ln_spot_cl: _,
            ln_spot_start: _,
            flow: _,
        } = self.ctx;
        let now = s.now_ns;
        let c = &mut self.ctx;
        c.tau = s.time_left_s().max(0.0);
        c.start_s = s.current_start_s;
        if let Some(w) = s.current() {
            c.strike_ok = if w.strike_known { 1.0 } else { 0.0 };
            c.strike = w.strike;
            let mut views = [BookView::default(); 2];
            for (o, view) in views.iter_mut().enumerate() {
                let key = (s.book_epoch(o), s.current_start_s);
                let cached = match self.books[o] {
                    Some(v) if self.books_key[o] == Some(key) => v,
                    _ => {
                        let v = BookView::of_levels(&w.books[o]);
                        self.books[o] = Some(v);
                        self.books_key[o] = Some(key);
                        v
                    }
                };
                *view = cached.0;
                if cached.1 {
                    view.age_s = BookView::age_of(&w.books[o], now);
                }
            }
            c.up = views[0];
            c.down = views[1];
            c.params = w.params;
        } else {
            c.strike_ok = 0.0;
            c.strike = 0.0;
            c.up = BookView::default();
            c.down = BookView::default();
            c.params = crate::config::MarketParams::default();
        }
        c.cl_ok = if s.chainlink_fresh() { 1.0 } else { 0.0 };
        c.chainlink = s.chainlink;
        if s.reference_fresh() {
            c.ref_ok = 1.0;
            c.spot = s.reference;
        } else if s.chainlink_fresh() {
            c.ref_ok = 0.0;
            c.spot = s.chainlink;
        } else {
            c.ref_ok = 0.0;
            c.spot = 0.0;
        }
        for h in 0..4 {
            c.vol[h] = s.vol(h);
        }
        c.cl_vol = s.chainlink_vol();
        c.sigma = c.vol[2].max(0.5 * c.vol[1]).max(1e-6);
        (c.ln_spot_strike, c.ln_cl_strike) = if c.strike_ok > 0.0 {
            (
                self.spot_strike.positive(c.spot, c.strike),
                self.cl_strike.positive(c.chainlink, c.strike),
            )
        } else {
            (None, None)
        };
        c.ln_spot_cl = if c.ref_ok > 0.0 {
            self.spot_cl.positive(c.spot, c.chainlink)
        } else {
            None
        };
        let spot_start = &mut self.spot_start;
        let spot = c.spot;
        c.ln_spot_start = s
            .current()
            .and_then(|w| spot_start.positive(spot, w.ref_at_start));
        c.flow = Flow::of_shared(s);
        c.p_base = p_base(c);
        let stale = s.stale_ns();
        for (i, v) in REF_VENUES.iter().enumerate() {
            let vs = &s.venues[*v as usize];
            let price = s.venue_price(*v);
            // `VenueState::usable`, with the price looked up once.
            let ok = vs.untrusted_streams == 0 && price.is_some_and(|(_, ts)| now - ts <= stale);
            let (price, ts) = price.unwrap_or((0.0, 0));
            let dev = if ok && s.reference > 0.0 {
                self.venue_dev[i].get(price, s.reference) * 1e4
            } else {
                0.0
            };
            c.venues[i] = venue_row(vs, ok, price, ts, now, dev);
        }
        c
    }
}

/// `bps(a, b) = ln(a / b) × 1e4` when a, b > 0, else 0, from the context's `ln(a / b)` (`None`
/// exactly when a or b is not positive).
fn bps(ln_ratio: Option<f64>) -> f64 {
    ln_ratio.map_or(0.0, |l| l * 1e4)
}

fn ret_bps(s: &MarketState, k: usize) -> f64 {
    let now = s.ln_ref_ago(0);
    let then = s.ln_ref_ago(k);
    if now != 0.0 && then != 0.0 {
        (now - then) * 1e4
    } else {
        0.0
    }
}

fn z(c: &Ctx, sigma: f64) -> f64 {
    if c.strike_ok > 0.0 && c.spot > 0.0 && sigma > 0.0 && c.tau > 0.0 {
        // `ln_spot_strike` is ln(spot / strike) here unless the strike is not positive.
        let m = c.ln_spot_strike.unwrap_or_else(|| (c.spot / c.strike).ln());
        (m / (sigma * c.tau.sqrt())).clamp(-50.0, 50.0)
    } else {
        0.0
    }
}

/// The baseline with `spot` (whose ln(spot / strike) is `ln_spot`, `None` when spot or strike
/// is not positive) and σ (floored at 1e-6 when `floor`), 0.5 without a strike or spot.
fn p_with(c: &Ctx, ln_spot: Option<f64>, spot: f64, sigma: f64, floor: bool) -> f64 {
    let sigma = if floor { sigma.max(1e-6) } else { sigma };
    if c.strike_ok > 0.0 && spot > 0.0 {
        match ln_spot {
            Some(m) => lognormal_up_probability_ln(m, sigma, c.tau),
            None => lognormal_up_probability(spot, c.strike, sigma, c.tau),
        }
    } else {
        0.5
    }
}

macro_rules! features {
    ($( $name:ident : $unit:literal, $trigger:literal, $formula:literal => |$s:ident, $c:ident| $e:expr ;)+) => {
        /// The catalogue, in model input order.
        pub const CATALOGUE: &[FeatureSpec] = &[$(FeatureSpec {
            name: stringify!($name), unit: $unit, trigger: $trigger, formula: $formula,
        }),+];
        /// Number of features.
        pub const N_FEATURES: usize = [$(stringify!($name)),+].len();

        /// Computes every feature from the state into `out` (catalogue order), every input
        /// computed afresh: the reference for [`compute_cached`]. No allocation.
        pub fn compute(state: &MarketState, out: &mut [f32; N_FEATURES]) {
            compute_from(state, &context(state), out);
        }

        /// [`compute`] with the costly inputs memoised in `cache` across calls (the engine's
        /// path): bit-identical to [`compute`] on the same state. No allocation.
        pub fn compute_cached(
            state: &MarketState,
            cache: &mut FeatureCache,
            out: &mut [f32; N_FEATURES],
        ) {
            compute_from(state, cache.context(state), out);
        }

        fn compute_from(state: &MarketState, ctx: &Ctx, out: &mut [f32; N_FEATURES]) {
            let mut i = 0;
            $(
                {
                    let $s: &MarketState = state;
                    let $c: &Ctx = ctx;
                    let _ = ($s, $c);
                    let v: f64 = $e;
                    out[i] = if v.is_finite() { v as f32 } else { 0.0 };
                    i += 1;
                }
            )+
            debug_assert_eq!(i, N_FEATURES);
        }
    };
}

features! {
    // ---- window and time ----
    time_left_s: "s", "every event", "window_start + 300 − now" => |s, c| c.tau;
    time_elapsed_s: "s", "every event", "now − window_start" => |s, c| WINDOW_S as f64 - c.tau;
    time_left_frac: "1", "every event", "time_left_s / 300" => |s, c| c.tau / WINDOW_S as f64;
    sqrt_time_left: "√s", "every event", "√time_left_s" => |s, c| c.tau.sqrt();
    window_of_hour: "1", "window rollover", "(window_start mod 3600) / 300" => |s, c| (c.start_s.rem_euclid(3600) / WINDOW_S) as f64;
    strike_known: "flag", "Chainlink report", "1 if the strike (Chainlink at window start) is known" => |s, c| c.strike_ok;
    // ---- reference and Chainlink ----
    ref_ok: "flag", "reference venue top/trade, feed status", "1 if ≥ 1 trusted venue is fresh" => |s, c| c.ref_ok;
    ref_venue_count: "venues", "reference venue top/trade, feed status", "venues in the composite median" => |s, c| f64::from(s.reference_venues);
    ref_dispersion_bps: "bps", "reference venue top/trade", "MAD of venue prices / reference × 1e4" => |s, c| if s.reference > 0.0 { s.reference_mad / s.reference * 1e4 } else { 0.0 };
    ref_age_s: "s", "every event", "now − last composite update (cap 60)" => |s, c| ((s.now_ns - s.reference_ts_ns) as f64 / NS as f64).min(60.0);
    chainlink_ok: "flag", "Chainlink report", "1 if the last report is fresh" => |s, c| c.cl_ok;
    chainlink_age_s: "s", "every event", "now − receive time of the last report (cap 60)" => |s, c| ((s.now_ns - s.chainlink_recv_ns) as f64 / NS as f64).min(60.0);
    moneyness_bps: "bps", "reference move, Chainlink", "ln(reference / strike) × 1e4" => |s, c| if c.strike_ok > 0.0 { bps(c.ln_spot_strike) } else { 0.0 };
    chainlink_moneyness_bps: "bps", "Chainlink report", "ln(chainlink / strike) × 1e4" => |s, c| if c.strike_ok > 0.0 { bps(c.ln_cl_strike) } else { 0.0 };
    ref_minus_chainlink_bps: "bps", "reference move, Chainlink", "ln(reference / chainlink) × 1e4" => |s, c| if c.ref_ok > 0.0 { bps(c.ln_spot_cl) } else { 0.0 };
    ref_move_since_start_bps: "bps", "reference move", "ln(reference / reference at window start) × 1e4" => |s, c| bps(c.ln_spot_start);
    ret_1s_bps: "bps", "whole second", "ln(ref_t / ref_{t−1s}) × 1e4 on the per-second grid" => |s, c| ret_bps(s, 1);
    ret_5s_bps: "bps", "whole second", "same over 5 s" => |s, c| ret_bps(s, 5);
    ret_15s_bps: "bps", "whole second", "same over 15 s" => |s, c| ret_bps(s, 15);
    ret_30s_bps: "bps", "whole second", "same over 30 s" => |s, c| ret_bps(s, 30);
    ret_60s_bps: "bps", "whole second", "same over 60 s" => |s, c| ret_bps(s, 60);
    ret_120s_bps: "bps", "whole second", "same over 120 s" => |s, c| ret_bps(s, 120);
    // ---- volatility ----
    vol_15s: "bps/√s", "whole second", "√EWMA(r²), 1-s log returns, half-life 15 s" => |s, c| c.vol[0] * 1e4;
    vol_60s: "bps/√s", "whole second", "same, half-life 60 s" => |s, c| c.vol[1] * 1e4;
    vol_300s: "bps/√s", "whole second", "same, half-life 300 s" => |s, c| c.vol[2] * 1e4;
    vol_900s: "bps/√s", "whole second", "same, half-life 900 s" => |s, c| c.vol[3] * 1e4;
    chainlink_vol_60s: "bps/√s", "Chainlink report", "√EWMA(r²/Δt) of report-to-report returns, half-life 60 s" => |s, c| c.cl_vol * 1e4;
    vol_ratio_15_300: "1", "whole second", "vol_15s / vol_300s" => |s, c| if c.vol[2] > 0.0 { c.vol[0] / c.vol[2] } else { 1.0 };
    sigma_baseline: "bps/√s", "whole second", "σ = max(vol_300s, vol_60s / 2)" => |s, c| c.sigma * 1e4;
    expected_move_bps: "bps", "every event", "σ × √time_left × 1e4" => |s, c| c.sigma * c.tau.sqrt() * 1e4;
    // ---- fair value ----
    z_score: "σ", "reference move, time", "ln(ref / strike) / (σ √τ), clamp ±50" => |s, c| z(c, c.sigma);
    z_score_vol15: "σ", "reference move, time", "same with vol_15s" => |s, c| z(c, c.vol[0]);
    p_baseline: "prob", "reference move, time", "Φ((ln(S/K) − σ²τ/2)/(σ√τ)), driftless lognormal" => |s, c| c.p_base;
    logit_p_baseline: "logit", "reference move, time", "ln(p / (1 − p))" => |s, c| logit(c.p_base);
    p_baseline_vol15: "prob", "reference move, time", "baseline with σ = vol_15s" => |s, c| p_with(c, c.ln_spot_strike, c.spot, c.vol[0], true);
    p_baseline_chainlink: "prob", "Chainlink, time", "baseline with S = Chainlink" => |s, c| p_with(c, c.ln_cl_strike, c.chainlink, c.sigma, true);
    // ---- reference order flow ----
    ofi_1s: "BTC", "reference top of book", "Σ Cont OFI of venue tops, e^{−Δt/1s} decay" => |s, c| c.flow.ofi[0];
    ofi_10s: "BTC", "reference top of book", "same, τ = 10 s" => |s, c| c.flow.ofi[1];
    ofi_60s: "BTC", "reference top of book", "same, τ = 60 s" => |s, c| c.flow.ofi[2];
    trade_imbalance_1s: "BTC", "reference trade", "Σ signed size (buy +), τ = 1 s" => |s, c| c.flow.trade_imbalance[0];
    trade_imbalance_10s: "BTC", "reference trade", "same, τ = 10 s" => |s, c| c.flow.trade_imbalance[1];
    trade_imbalance_60s: "BTC", "reference trade", "same, τ = 60 s" => |s, c| c.flow.trade_imbalance[2];
    trade_volume_10s: "BTC", "reference trade", "Σ size, τ = 10 s" => |s, c| c.flow.trade_volume_10s;
    trade_volume_60s: "BTC", "reference trade", "Σ size, τ = 60 s" => |s, c| c.flow.trade_volume_60s;
    trade_count_10s: "trades", "reference trade", "Σ 1, τ = 10 s" => |s, c| c.flow.trade_count_10s;
    buy_ratio_60s: "1", "reference trade", "buy volume / volume, τ = 60 s" => |s, c| { let v = c.flow.trade_volume_60s; if v > 0.0 { c.flow.buy_volume_60s / v } else { 0.5 } };
    trade_imbalance_norm_10s: "1", "reference trade", "trade_imbalance_10s / trade_volume_10s" => |s, c| { let v = c.flow.trade_volume_10s; if v > 0.0 { c.flow.trade_imbalance[1] / v } else { 0.0 } };
    // ---- Polymarket Up book ----
    up_ok: "flag", "Up book batch end", "snapshot applied, both sides, uncrossed" => |s, c| c.up.ok;
    up_bid: "prob", "Up book batch end", "best bid" => |s, c| c.up.bid;
    up_ask: "prob", "Up book batch end", "best ask" => |s, c| c.up.ask;
    up_mid: "prob", "Up book batch end", "(bid + ask) / 2" => |s, c| c.up.mid();
    up_spread: "prob", "Up book batch end", "ask − bid" => |s, c| c.up.spread();
    up_bid_size: "shares", "Up book batch end", "size at best bid" => |s, c| c.up.bid_size;
    up_ask_size: "shares", "Up book batch end", "size at best ask" => |s, c| c.up.ask_size;
    up_bid_depth5: "shares", "Up book batch end", "bid size within 0.05 of best" => |s, c| c.up.bid_depth5;
    up_ask_depth5: "shares", "Up book batch end", "ask size within 0.05 of best" => |s, c| c.up.ask_depth5;
    up_top_imbalance: "1", "Up book batch end", "(bid size − ask size) / sum" => |s, c| c.up.top_imbalance();
    up_depth_imbalance: "1", "Up book batch end", "(bid depth5 − ask depth5) / sum" => |s, c| c.up.depth_imbalance();
    up_microprice: "prob", "Up book batch end", "(bid × ask size + ask × bid size) / (bid size + ask size)" => |s, c| c.up.microprice();
    up_book_age_s: "s", "every event", "now − last Up update (cap 60)" => |s, c| c.up.age_s;
    // ---- Polymarket Down book ----
    down_ok: "flag", "Down book batch end", "snapshot applied, both sides, uncrossed" => |s, c| c.down.ok;
    down_bid: "prob", "Down book batch end", "best bid" => |s, c| c.down.bid;
    down_ask: "prob", "Down book batch end", "best ask" => |s, c| c.down.ask;
    down_mid: "prob", "Down book batch end", "(bid + ask) / 2" => |s, c| c.down.mid();
    down_spread: "prob", "Down book batch end", "ask − bid" => |s, c| c.down.spread();
    down_bid_size: "shares", "Down book batch end", "size at best bid" => |s, c| c.down.bid_size;
    down_ask_size: "shares", "Down book batch end", "size at best ask" => |s, c| c.down.ask_size;
    down_bid_depth5: "shares", "Down book batch end", "bid size within 0.05 of best" => |s, c| c.down.bid_depth5;
    down_ask_depth5: "shares", "Down book batch end", "ask size within 0.05 of best" => |s, c| c.down.ask_depth5;
    down_top_imbalance: "1", "Down book batch end", "(bid size − ask size) / sum" => |s, c| c.down.top_imbalance();
    down_depth_imbalance: "1", "Down book batch end", "(bid depth5 − ask depth5) / sum" => |s, c| c.down.depth_imbalance();
    down_microprice: "prob", "Down book batch end", "size-weighted mid" => |s, c| c.down.microprice();
    down_book_age_s: "s", "every event", "now − last Down update (cap 60)" => |s, c| c.down.age_s;
    // ---- Up/Down cross-book ----
    updown_mid_sum: "prob", "book batch end", "up_mid + down_mid" => |s, c| c.up.mid() + c.down.mid();
    updown_ask_sum: "prob", "book batch end", "up_ask + down_ask (< 1 = arbitrage)" => |s, c| if c.up.ok * c.down.ok > 0.0 { c.up.ask + c.down.ask } else { 0.0 };
    updown_bid_sum: "prob", "book batch end", "up_bid + down_bid (> 1 = arbitrage)" => |s, c| if c.up.ok * c.down.ok > 0.0 { c.up.bid + c.down.bid } else { 0.0 };
    implied_p_up: "prob", "book batch end", "(up_mid + 1 − down_mid) / 2 (0.5 if a book is missing)" => |s, c| if c.up.ok * c.down.ok > 0.0 { 0.5 * (c.up.mid() + 1.0 - c.down.mid()) } else { 0.5 };
    baseline_minus_implied: "prob", "book batch end, reference move", "p_baseline − implied_p_up" => |s, c| if c.up.ok * c.down.ok > 0.0 { c.p_base - 0.5 * (c.up.mid() + 1.0 - c.down.mid()) } else { 0.0 };
    edge_up_baseline: "prob", "book batch end, reference move", "p_baseline − up_ask − fee(up_ask)" => |s, c| if c.up.ok > 0.0 { buy_edge(c.p_base, c.up.ask, &c.params) } else { 0.0 };
    edge_down_baseline: "prob", "book batch end, reference move", "(1 − p_baseline) − down_ask − fee(down_ask)" => |s, c| if c.down.ok > 0.0 { buy_edge(1.0 - c.p_base, c.down.ask, &c.params) } else { 0.0 };
    fee_up_ask: "prob", "book batch end", "rate × (up_ask (1 − up_ask))^exponent per share" => |s, c| if c.up.ok > 0.0 { c.params.taker_fee_per_share(c.up.ask) } else { 0.0 };
    // ---- Polymarket flow ----
    poly_ofi_up_10s: "shares", "Up book batch end", "Cont OFI of the Up top, τ = 10 s" => |s, c| c.flow.poly_ofi_up_10s;
    poly_trade_imbalance_60s: "shares", "Polymarket trade", "Σ signed size in Up terms (Down buys count −), τ = 60 s" => |s, c| c.flow.poly_trade_imbalance_60s;
    poly_volume_60s: "shares", "Polymarket trade", "Σ size, τ = 60 s" => |s, c| c.flow.poly_volume_60s;
    poly_last_up_price: "prob", "Polymarket trade", "last trade price in Up terms (Down p → 1 − p)" => |s, c| s.poly_last_up_price;
    poly_last_trade_age_s: "s", "every event", "now − last Polymarket trade (cap 300)" => |s, c| if s.poly_last_trade_ns > 0 { ((s.now_ns - s.poly_last_trade_ns) as f64 / NS as f64).min(300.0) } else { 300.0 };
    up_mid_change_10s: "prob", "whole second", "up_mid(t) − up_mid(t − 10 s) on the per-second grid" => |s, c| { let a = s.up_mid_ago(0); let b = s.up_mid_ago(10); if a > 0.0 && b > 0.0 { a - b } else { 0.0 } };
    // ---- per reference venue: deviation from composite, spread, age, usable ----
    coinbase_dev_bps: "bps", "venue top/trade", "ln(venue price / reference) × 1e4 (0 if unusable)" => |s, c| c.venues[0][0];
    coinbase_spread_bps: "bps", "venue top", "(ask − bid) / price × 1e4" => |s, c| c.venues[0][1];
    coinbase_age_s: "s", "every event", "now − venue's last price (cap 60)" => |s, c| c.venues[0][2];
    coinbase_ok: "flag", "venue top/trade, feed status", "trusted and fresh" => |s, c| c.venues[0][3];
    binance_spot_dev_bps: "bps", "venue top/trade", "as coinbase_*" => |s, c| c.venues[1][0];
    binance_spot_spread_bps: "bps", "venue top", "as coinbase_*" => |s, c| c.venues[1][1];
    binance_spot_age_s: "s", "every event", "as coinbase_*" => |s, c| c.venues[1][2];
    binance_spot_ok: "flag", "venue top/trade, feed status", "as coinbase_*" => |s, c| c.venues[1][3];
    binance_futures_dev_bps: "bps", "venue top/trade", "as coinbase_* (perp basis)" => |s, c| c.venues[2][0];
    binance_futures_spread_bps: "bps", "venue top", "as coinbase_*" => |s, c| c.venues[2][1];
    binance_futures_age_s: "s", "every event", "as coinbase_*" => |s, c| c.venues[2][2];
    binance_futures_ok: "flag", "venue top/trade, feed status", "as coinbase_*" => |s, c| c.venues[2][3];
    kraken_dev_bps: "bps", "venue top/trade", "as coinbase_*" => |s, c| c.venues[3][0];
    kraken_spread_bps: "bps", "venue top", "as coinbase_*" => |s, c| c.venues[3][1];
    kraken_age_s: "s", "every event", "as coinbase_*" => |s, c| c.venues[3][2];
    kraken_ok: "flag", "venue top/trade, feed status", "as coinbase_*" => |s, c| c.venues[3][3];
    gemini_dev_bps: "bps", "venue top/trade", "as coinbase_*" => |s, c| c.venues[4][0];
    gemini_spread_bps: "bps", "venue top", "as coinbase_*" => |s, c| c.venues[4][1];
    gemini_age_s: "s", "every event", "as coinbase_*" => |s, c| c.venues[4][2];
    gemini_ok: "flag", "venue top/trade, feed status", "as coinbase_*" => |s, c| c.venues[4][3];
    bybit_dev_bps: "bps", "venue top/trade", "as coinbase_*" => |s, c| c.venues[5][0];
    bybit_spread_bps: "bps", "venue top", "as coinbase_*" => |s, c| c.venues[5][1];
    bybit_age_s: "s", "every event", "as coinbase_*" => |s, c| c.venues[5][2];
    bybit_ok: "flag", "venue top/trade, feed status", "as coinbase_*" => |s, c| c.venues[5][3];
    okx_dev_bps: "bps", "venue top/trade", "as coinbase_*" => |s, c| c.venues[6][0];
    okx_spread_bps: "bps", "venue top", "as coinbase_*" => |s, c| c.venues[6][1];
    okx_age_s: "s", "every event", "as coinbase_*" => |s, c| c.venues[6][2];
    okx_ok: "flag", "venue top/trade, feed status", "as coinbase_*" => |s, c| c.venues[6][3];
    deribit_dev_bps: "bps", "venue top/trade", "as coinbase_* (perp basis)" => |s, c| c.venues[7][0];
    deribit_spread_bps: "bps", "venue top", "as coinbase_*" => |s, c| c.venues[7][1];
    deribit_age_s: "s", "every event", "as coinbase_*" => |s, c| c.venues[7][2];
    deribit_ok: "flag", "venue top/trade, feed status", "as coinbase_*" => |s, c| c.venues[7][3];
    bitstamp_dev_bps: "bps", "venue top/trade", "as coinbase_*" => |s, c| c.venues[8][0];
    bitstamp_spread_bps: "bps", "venue top", "as coinbase_*" => |s, c| c.venues[8][1];
    bitstamp_age_s: "s", "every event", "as coinbase_*" => |s, c| c.venues[8][2];
    bitstamp_ok: "flag", "venue top/trade, feed status", "as coinbase_*" => |s, c| c.venues[8][3];
}

// The per-venue block above lists the venues in `REF_VENUES` order.
const _: () = assert!(REF_VENUES.len() == 9 && matches!(REF_VENUES[8], Venue::Bitstamp));

/// FNV-1a (32-bit) over `version`, then `name|unit\n` of every catalogue entry in order.
#[must_use]
pub fn schema_hash() -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |b: u8| {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    };
    for b in FEATURE_SCHEMA_VERSION.to_le_bytes() {
        eat(b);
    }
    for f in CATALOGUE {
        for b in f
            .name
            .bytes()
            .chain([b'|'])
            .chain(f.unit.bytes())
            .chain([b'\n'])
        {
            eat(b);
        }
    }
    h
}

/// Index of a feature by name.
#[must_use]
pub fn index_of(name: &str) -> Option<usize> {
    CATALOGUE.iter().position(|f| f.name == name)
}

/// The catalogue rendered as docs/features.md.
#[must_use]
pub fn markdown() -> String {
    let mut s = String::new();
    s.push_str("# Feature catalogue (decide)\n\n");
    s.push_str("Generated by `ringbolt features doc` from `decide/src/features.rs`; a test keeps this file in sync.\n\n");
    s.push_str(&format!(
        "- features: {N_FEATURES}\n- schema version: {FEATURE_SCHEMA_VERSION}\n- schema hash: `{:#010x}` (FNV-1a 32 of the version and `name|unit` lines)\n\n",
        schema_hash()
    ));
    s.push_str("Conventions: time is event time (the record's receive stamp); \"reference\" is the median of the fresh, trusted reference venues' prices (mid of top of book, else last trade); prices in probability units are pUSD per share; missing inputs are 0 with a flag feature, never NaN. Decays are `Σ x·e^{−Δt/τ}` in event time. Feature vectors are computed on the model cadence, on large moves and, for training, on the export cadence.\n\n");
    s.push_str("| # | name | unit | update trigger | formula |\n|---|---|---|---|---|\n");
    for (i, f) in CATALOGUE.iter().enumerate() {
        s.push_str(&format!(
            "| {i} | `{}` | {} | {} | {} |\n",
            f.name,
            f.unit,
            f.trigger,
            f.formula.replace('|', "\\|")
        ));
    }
    s
}

/// The Up mid of the current window (used by tests and the synthetic generator's checks).
#[must_use]
pub fn current_up_mid(s: &MarketState) -> Option<f64> {
    s.current().and_then(|w| mid_of(&w.books[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_large_unique_and_hashed() {
        const { assert!(N_FEATURES >= 100) };
        let mut names: Vec<_> = CATALOGUE.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), N_FEATURES, "duplicate feature names");
        assert_ne!(schema_hash(), 0);
    }
}

#[cfg(test)]
mod doc_sync {
    #[test]
    fn docs_features_md_is_in_sync_with_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/features.md");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == super::markdown(),
            "docs/features.md is stale: regenerate with `cargo run -p ringbolt -- features doc > docs/features.md`"
        );
    }
}
