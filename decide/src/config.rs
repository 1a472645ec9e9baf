//! Configuration of the decision core (TOML `[decide]` section of `ringbolt.toml`).

use std::collections::BTreeMap;

pub use ringbolt_market::MarketParams;
use serde::{Deserialize, Serialize};

/// Risk limits applied by the reflex path before an intent is emitted.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// Minimum edge after fees to fire (probability units = pUSD per share).
    pub min_edge: f64,
    /// Largest single order (shares).
    pub max_order_shares: f64,
    /// Largest position per window, both outcomes together (shares).
    pub max_position_shares: f64,
    /// Most orders per window.
    pub max_orders_per_window: u32,
    /// Minimum time between two fires (ms of event time).
    pub cooldown_ms: u64,
    /// No new orders with less than this left in the window (s).
    pub min_time_left_s: f64,
    /// Only prices inside [min_price, max_price] are traded.
    pub min_price: f64,
    /// See `min_price`.
    pub max_price: f64,
    /// Master switch: false = decide but never fire.
    pub enabled: bool,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            min_edge: 0.03,
            max_order_shares: 50.0,
            max_position_shares: 200.0,
            max_orders_per_window: 8,
            cooldown_ms: 1_000,
            min_time_left_s: 10.0,
            min_price: 0.03,
            max_price: 0.97,
            enabled: true,
        }
    }
}

/// Which feed gives the strike (window-start price) and the outcome reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceSource {
    /// Chainlink BTC/USD through Polymarket's real-time data socket (`IndexPrice` price_type 1
    /// of venue `chainlink_rtds`).
    #[default]
    ChainlinkRtds,
    /// PolyBolt's `price.crypto` channel (`IndexPrice` price_type 1 of venue `polybolt`; its
    /// TWAP, price_type 3, never sets the strike).
    Polybolt,
}

impl ReferenceSource {
    /// The bus venue whose index prices are the reference.
    #[must_use]
    pub const fn venue(self) -> ringbolt_bus::Venue {
        match self {
            ReferenceSource::ChainlinkRtds => ringbolt_bus::Venue::ChainlinkRtds,
            ReferenceSource::Polybolt => ringbolt_bus::Venue::PolyBolt,
        }
    }
}

/// The decision core's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecideConfig {
    /// A venue's top of book / trade older than this no longer counts in the reference (ms).
    pub stale_after_ms: u64,
    /// A Chainlink report older than this (by receive time) is stale (ms).
    pub chainlink_stale_after_ms: u64,
    /// Which feed sets the strike and the outcome reference (`chainlink_rtds` | `polybolt`);
    /// part of the recorded decision config like every `[decide]` key.
    pub reference_source: ReferenceSource,
    /// The strike is the first Chainlink report stamped within this long after the window start
    /// (ms); a later first report leaves the window without a strike (no trading).
    pub strike_tolerance_ms: u64,
    /// Volatility prior until the estimators warm up (bps per √s).
    pub vol_prior_bps_per_sqrt_s: f64,
    /// Re-score the model at least this often (ms of event time).
    pub model_cadence_ms: u64,
    /// A model probability older than this (event time) is not used (ms).
    pub model_max_age_ms: u64,
    /// Re-score early when the reference moved this much since the last score (bps).
    pub model_rescore_move_bps: f64,
    /// When no fresh model probability exists, decide on the lognormal baseline (else no-fire).
    pub allow_baseline: bool,
    /// Parameters of markets without an entry in `markets`.
    pub default_market: MarketParams,
    /// Per-market parameters keyed by slug (`btc-updown-5m-<start>`).
    pub markets: BTreeMap<String, MarketParams>,
    /// Risk limits.
    pub risk: RiskConfig,
    /// Instrument-table entries tracked (ids ≥ this are ignored and counted).
    pub instrument_capacity: usize,
    /// Identifier mixed into client order ids (one per trading process).
    pub engine_id: u16,
}

impl Default for DecideConfig {
    fn default() -> Self {
        Self {
            stale_after_ms: 2_000,
            chainlink_stale_after_ms: 5_000,
            reference_source: ReferenceSource::ChainlinkRtds,
            strike_tolerance_ms: 2_000,
            vol_prior_bps_per_sqrt_s: 0.9,
            model_cadence_ms: 250,
            model_max_age_ms: 2_000,
            model_rescore_move_bps: 2.0,
            allow_baseline: true,
            default_market: MarketParams::default(),
            markets: BTreeMap::new(),
            risk: RiskConfig::default(),
            instrument_capacity: 65_536,
            engine_id: 1,
        }
    }
}
