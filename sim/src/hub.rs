//! The sans-IO market hub: steps the synthetic market (or a capture replay) and produces every
//! venue's encoded events; answers snapshot and REST queries.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use crate::binance::BinanceState;
use crate::coinbase::CoinbaseState;
use crate::event::{Topic, VenueEvent, VenueId};
use crate::market::{BtcWalk, MarketConfig, stream_rng};
use crate::polybolt::{Credentials as PolyBoltCredentials, PolyBoltState};
use crate::polymarket::{PolyInputs, PolyState};
use crate::rtds::RtdsState;
use crate::util::normal;
use crate::venue::{REGISTRY, StepCtx, VenueModel};

/// Seconds of market simulated silently before the start, so that books, the Chainlink
/// backfill and the current window exist from the first client on.
pub const WARMUP_S: i64 = 65;

/// Replays a capture (one raw venue message per line) at a fixed interval.
#[derive(Debug)]
pub struct ReplaySource {
    lines: Vec<Arc<str>>,
    next: usize,
    interval_ms: i64,
    next_ms: Option<i64>,
    looped: bool,
}

/// Errors loading a capture.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// File unreadable.
    #[error("reading capture {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A line is not JSON.
    #[error("capture {path} line {line}: not JSON: {source}")]
    BadLine {
        /// File.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Cause.
        source: serde_json::Error,
    },
    /// No messages.
    #[error("capture {0} holds no messages")]
    Empty(String),
}

impl ReplaySource {
    /// Load a JSONL capture. Blank lines are skipped; every other line must be JSON (it is sent
    /// verbatim, byte for byte).
    pub fn load(path: &Path, interval_ms: i64, looped: bool) -> Result<Self, ReplayError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Io {
            path: p.clone(),
            source,
        })?;
        let mut lines = Vec::new();
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            serde_json::from_str::<serde_json::Value>(l).map_err(|source| {
                ReplayError::BadLine {
                    path: p.clone(),
                    line: i + 1,
                    source,
                }
            })?;
            lines.push(Arc::from(l));
        }
        if lines.is_empty() {
            return Err(ReplayError::Empty(p));
        }
        Ok(Self {
            lines,
            next: 0,
            interval_ms: interval_ms.max(1),
            next_ms: None,
            looped,
        })
    }

    /// Lines due by `t_ms`.
    pub fn step(&mut self, venue: VenueId, t_ms: i64, tick: u64) -> Vec<VenueEvent> {
        let mut out = Vec::new();
        let next_ms = self.next_ms.get_or_insert(t_ms);
        while *next_ms <= t_ms {
            if self.next >= self.lines.len() {
                if !self.looped {
                    break;
                }
                self.next = 0;
            }
            out.push(VenueEvent {
                venue,
                tick,
                topic: Topic::Replay,
                sequenced: false,
                text: self.lines[self.next].clone(),
            });
            self.next += 1;
            *next_ms += self.interval_ms;
        }
        out
    }
}

/// The whole emulated market.
#[derive(Debug)]
pub struct Hub {
    cfg: MarketConfig,
    t_ms: i64,
    tick: u64,
    walk: BtcWalk,
    rng_binance: ChaCha8Rng,
    rng_coinbase: ChaCha8Rng,
    rng_rtds: ChaCha8Rng,
    rng_poly: ChaCha8Rng,
    rng_noise: ChaCha8Rng,
    binance: BinanceState,
    polybolt: PolyBoltState,
    polybolt_credentials: PolyBoltCredentials,
    coinbase: CoinbaseState,
    rtds: RtdsState,
    poly: PolyState,
    replay: BTreeMap<VenueId, ReplaySource>,
    models: BTreeMap<VenueId, Box<dyn VenueModel>>,
}

impl Hub {
    /// A market whose clock starts at `start_ms` (rounded down to the tick) after a silent
    /// warm-up of [`WARMUP_S`], with every registered venue model.
    pub fn new(cfg: MarketConfig, start_ms: i64) -> Self {
        Self::with_venues(cfg, start_ms, &VenueId::ALL)
    }

    /// As [`Hub::new`], stepping only the registered models among `venues` (the core four are
    /// always stepped: their markets are coupled).
    pub fn with_venues(cfg: MarketConfig, start_ms: i64, venues: &[VenueId]) -> Self {
        let tick_ms = cfg.tick_ms.max(1);
        let start = start_ms.div_euclid(tick_ms) * tick_ms;
        let t0 = start - WARMUP_S * 1000;
        let seed = cfg.seed;
        let mut rng_binance = stream_rng(cfg.seed, 10);
        let mut rng_coinbase = stream_rng(cfg.seed, 11);
        let mut hub = Self {
            polybolt: PolyBoltState::new(),
            polybolt_credentials: PolyBoltCredentials::default(),
            walk: BtcWalk::new(&cfg, t0),
            binance: BinanceState::new(&mut rng_binance),
            coinbase: CoinbaseState::new(&mut rng_coinbase),
            rtds: RtdsState::new(),
            poly: PolyState::new(cfg.seed, cfg.window_len_s),
            rng_binance,
            rng_coinbase,
            rng_rtds: stream_rng(cfg.seed, 12),
            rng_poly: stream_rng(cfg.seed, 13),
            rng_noise: stream_rng(cfg.seed, 14),
            cfg: MarketConfig { tick_ms, ..cfg },
            t_ms: t0,
            tick: 0,
            replay: BTreeMap::new(),
            models: REGISTRY
                .iter()
                .filter(|s| venues.contains(&s.id))
                .filter_map(|s| Some((s.id, (s.model?)(seed))))
                .collect(),
        };
        while hub.t_ms < start {
            hub.step();
        }
        hub
    }

    /// Serve `venue` from a capture instead of the synthetic market.
    pub fn set_replay(&mut self, venue: VenueId, source: ReplaySource) {
        self.replay.insert(venue, source);
    }

    /// Whether `venue` replays a capture.
    pub fn is_replay(&self, venue: VenueId) -> bool {
        self.replay.contains_key(&venue)
    }

    /// Market clock, ms.
    pub fn now_ms(&self) -> i64 {
        self.t_ms
    }

    /// Steps taken so far.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// Configuration.
    pub fn config(&self) -> &MarketConfig {
        &self.cfg
    }

    /// True BTC price now (USD).
    pub fn true_price(&self) -> f64 {
        self.walk.price()
    }

    /// Binance state (REST snapshot).
    pub fn binance(&self) -> &BinanceState {
        &self.binance
    }

    /// Coinbase state.
    pub fn coinbase(&self) -> &CoinbaseState {
        &self.coinbase
    }

    /// RTDS state.
    pub fn rtds(&self) -> &RtdsState {
        &self.rtds
    }

    /// PolyBolt state.
    pub fn polybolt(&self) -> &PolyBoltState {
        &self.polybolt
    }

    /// The credentials PolyBolt's `auth` accepts.
    pub fn polybolt_credentials(&self) -> &PolyBoltCredentials {
        &self.polybolt_credentials
    }

    /// Accept these credentials on PolyBolt instead of the emulated defaults.
    pub fn set_polybolt_credentials(&mut self, credentials: PolyBoltCredentials) {
        self.polybolt_credentials = credentials;
    }

    /// Polymarket state (windows, books, Gamma).
    pub fn polymarket(&self) -> &PolyState {
        &self.poly
    }

    /// Polymarket state, mutable (the CLOB emulator trades against its books).
    pub fn polymarket_mut(&mut self) -> &mut PolyState {
        &mut self.poly
    }

    /// The model of a registered non-core venue.
    pub fn model(&self, venue: VenueId) -> Option<&dyn VenueModel> {
        self.models.get(&venue).map(AsRef::as_ref)
    }

    /// The concrete state of a registered non-core venue (`None` when replaying it).
    pub fn model_state<T: 'static>(&self, venue: VenueId) -> Option<&T> {
        if self.is_replay(venue) {
            return None;
        }
        self.model(venue)?.as_any().downcast_ref()
    }

    fn view(&mut self, lag_ms: i64) -> f64 {
        self.walk.price_at(self.t_ms - lag_ms)
            * (1.0 + self.cfg.noise_bp * 1e-4 * normal(&mut self.rng_noise))
    }

    /// Advance one tick and return the events it produced, venue by venue.
    pub fn step(&mut self) -> Vec<VenueEvent> {
        self.t_ms += self.cfg.tick_ms;
        self.tick += 1;
        let (t, tick) = (self.t_ms, self.tick);
        self.walk.step(t);
        let cfg = self.cfg.clone();
        let mut events = Vec::new();
        let b_mid = self.view(cfg.binance_lag_ms);
        events.extend(self.binance.step(
            t,
            tick,
            b_mid,
            cfg.binance_trade_prob,
            &mut self.rng_binance,
        ));
        let c_mid = self.view(cfg.coinbase_lag_ms);
        events.extend(self.coinbase.step(
            t,
            tick,
            c_mid,
            cfg.coinbase_trade_prob,
            cfg.heartbeat_ms,
            &mut self.rng_coinbase,
        ));
        events.extend(self.rtds.step(
            t,
            tick,
            &self.walk,
            self.binance.last_trade_px_cents(),
            cfg.chainlink_publish_lag_ms,
            cfg.noise_bp,
            &mut self.rng_rtds,
        ));
        // PolyBolt republishes RTDS's Chainlink series: a core venue, coupled like Polymarket.
        events.extend(self.polybolt.step(tick, &self.rtds));
        let eff_vol =
            (cfg.vol_per_sqrt_s.powi(2) + cfg.jump_rate_per_s * cfg.jump_sd.powi(2)).sqrt();
        let inputs = PolyInputs {
            t_ms: t,
            tick,
            reference_usd: self.walk.price_at(t - cfg.polymarket_delay_ms),
            vol_per_sqrt_s: eff_vol,
            trade_prob: cfg.polymarket_trade_prob,
        };
        let rtds = &self.rtds;
        let walk = &self.walk;
        let strike_at = |ms: i64| rtds.at(ms).map_or_else(|| walk.price_at(ms), |o| o.value());
        events.extend(self.poly.step(inputs, &strike_at, &mut self.rng_poly));
        let ctx = StepCtx {
            t_ms: t,
            tick,
            walk: &self.walk,
            cfg: &self.cfg,
        };
        for model in self.models.values_mut() {
            events.extend(model.step(&ctx));
        }
        if !self.replay.is_empty() {
            events.retain(|e| !self.replay.contains_key(&e.venue));
            for (venue, src) in self.replay.iter_mut() {
                events.extend(src.step(*venue, t, tick));
            }
        }
        events
    }

    /// Step until the clock reaches `now_ms`; returns all events (bounded to 10 minutes of
    /// catch-up per call so a suspended process does not stall for long).
    pub fn advance_to(&mut self, now_ms: i64) -> Vec<VenueEvent> {
        let mut events = Vec::new();
        let max_steps = 600_000 / self.cfg.tick_ms.max(1);
        let mut n = 0;
        while self.t_ms + self.cfg.tick_ms <= now_ms && n < max_steps {
            events.extend(self.step());
            n += 1;
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_messages_different_seed_different() {
        let run = |seed: u64| {
            let mut hub = Hub::new(
                MarketConfig {
                    seed,
                    window_len_s: 20,
                    ..MarketConfig::default()
                },
                1_790_000_000_000,
            );
            let mut all = Vec::new();
            for _ in 0..400 {
                for e in hub.step() {
                    all.push(format!("{}|{}", e.venue.name(), e.text));
                }
            }
            all
        };
        let a = run(5);
        let b = run(5);
        assert!(a.len() > 1000, "only {} events", a.len());
        assert_eq!(a, b);
        assert_ne!(a, run(6));
        // Every venue and every Polymarket event type shows up within 40 s of 20 s windows.
        for needle in [
            "binance_spot|{\"e\":\"depthUpdate\"",
            "binance_spot|{\"e\":\"trade\"",
            "binance_spot|{\"e\":\"aggTrade\"",
            "binance_spot|{\"u\":",
            "coinbase|{\"type\":\"match\"",
            "coinbase|{\"type\":\"ticker\"",
            "coinbase|{\"type\":\"heartbeat\"",
            "coinbase|{\"type\":\"l2update\"",
            "chainlink_rtds|{\"payload\":{\"full_accuracy_value\"",
            "polymarket|{\"event_type\":\"price_change\"",
            "polymarket|{\"event_type\":\"last_trade_price\"",
            "polymarket|{\"event_type\":\"best_bid_ask\"",
            "polymarket|{\"id\":",
            "polymarket|{\"event_type\":\"market_resolved\"",
            "polymarket|{\"market\":",
        ] {
            assert!(a.iter().any(|l| l.starts_with(needle)), "missing {needle}");
        }
    }
}
