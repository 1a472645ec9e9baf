//! The deterministic synthetic BTC market: one "true" random walk with jumps that every venue
//! observes with its own lag and noise.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::util::normal;

/// Parameters of the synthetic market (the `[market]` table of the emulator config).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketConfig {
    /// RNG seed: same seed and start time give the same message sequence.
    pub seed: u64,
    /// Simulation step in milliseconds (also the Binance depth cadence).
    pub tick_ms: i64,
    /// BTC price at start, USD.
    pub initial_price_usd: f64,
    /// Diffusion volatility of log price per sqrt(second).
    pub vol_per_sqrt_s: f64,
    /// Poisson jump intensity per second.
    pub jump_rate_per_s: f64,
    /// Standard deviation of a jump in log price.
    pub jump_sd: f64,
    /// Polymarket window length in seconds (300 = the real 5-minute markets; shorter values are
    /// for demos and are labelled as emulated in every market title).
    pub window_len_s: i64,
    /// Binance's observation lag of the true price, ms.
    pub binance_lag_ms: i64,
    /// Coinbase's observation lag, ms.
    pub coinbase_lag_ms: i64,
    /// Chainlink observation-to-publication lag on RTDS, ms.
    pub chainlink_publish_lag_ms: i64,
    /// Delay with which the Polymarket books reprice from the reference, ms.
    pub polymarket_delay_ms: i64,
    /// Per-venue relative price noise (standard deviation, in basis points).
    pub noise_bp: f64,
    /// Probability per tick of a Binance taker order.
    pub binance_trade_prob: f64,
    /// Probability per tick of a Coinbase taker order.
    pub coinbase_trade_prob: f64,
    /// Probability per tick of a Polymarket trade.
    pub polymarket_trade_prob: f64,
    /// Coinbase heartbeat period, ms.
    pub heartbeat_ms: i64,
}

impl Default for MarketConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            tick_ms: 100,
            initial_price_usd: 97_000.0,
            vol_per_sqrt_s: 2.0e-4,
            jump_rate_per_s: 0.01,
            jump_sd: 2.0e-3,
            window_len_s: 300,
            binance_lag_ms: 0,
            coinbase_lag_ms: 100,
            chainlink_publish_lag_ms: 1_400,
            polymarket_delay_ms: 500,
            noise_bp: 0.5,
            binance_trade_prob: 0.5,
            coinbase_trade_prob: 0.3,
            polymarket_trade_prob: 0.05,
            heartbeat_ms: 1_000,
        }
    }
}

/// Derive an independent deterministic generator for one component from the seed.
pub fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The true BTC price path (geometric random walk with compound-Poisson jumps) and its recent
/// history, so that venues can look it up with a lag.
#[derive(Debug)]
pub struct BtcWalk {
    px: f64,
    history: VecDeque<(i64, f64)>,
    rng: ChaCha8Rng,
    sigma_step: f64,
    jump_prob_step: f64,
    jump_sd: f64,
}

/// History kept for lagged lookups, in steps.
const HISTORY_STEPS: usize = 1_200;

impl BtcWalk {
    /// A walk starting at `cfg.initial_price_usd` at `t0_ms`.
    pub fn new(cfg: &MarketConfig, t0_ms: i64) -> Self {
        let dt_s = cfg.tick_ms as f64 / 1000.0;
        let mut history = VecDeque::with_capacity(HISTORY_STEPS + 1);
        history.push_back((t0_ms, cfg.initial_price_usd));
        Self {
            px: cfg.initial_price_usd,
            history,
            rng: stream_rng(cfg.seed, 1),
            sigma_step: cfg.vol_per_sqrt_s * dt_s.sqrt(),
            jump_prob_step: (cfg.jump_rate_per_s * dt_s).min(1.0),
            jump_sd: cfg.jump_sd,
        }
    }

    /// Advance to `t_ms` (one step).
    pub fn step(&mut self, t_ms: i64) {
        let z = normal(&mut self.rng);
        let mut dlog = self.sigma_step * z - 0.5 * self.sigma_step * self.sigma_step;
        if self.rng.random_bool(self.jump_prob_step) {
            dlog += self.jump_sd * normal(&mut self.rng);
        }
        self.px *= dlog.exp();
        self.history.push_back((t_ms, self.px));
        while self.history.len() > HISTORY_STEPS {
            self.history.pop_front();
        }
    }

    /// Current true price.
    pub fn price(&self) -> f64 {
        self.px
    }

    /// The true price as of `t_ms` (latest step at or before it; the oldest kept if earlier).
    pub fn price_at(&self, t_ms: i64) -> f64 {
        for (t, p) in self.history.iter().rev() {
            if *t <= t_ms {
                return *p;
            }
        }
        self.history.front().map_or(self.px, |(_, p)| *p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_is_deterministic_and_lag_lookup_works() {
        let cfg = MarketConfig::default();
        let mut a = BtcWalk::new(&cfg, 0);
        let mut b = BtcWalk::new(&cfg, 0);
        for k in 1..=100 {
            a.step(k * 100);
            b.step(k * 100);
        }
        assert_eq!(a.price().to_bits(), b.price().to_bits());
        assert_eq!(a.price_at(10_000).to_bits(), a.price().to_bits());
        assert_eq!(a.price_at(-5), cfg.initial_price_usd);
        assert!(a.price_at(5_050) != a.price());
        let mut c = BtcWalk::new(&MarketConfig { seed: 2, ..cfg }, 0);
        for k in 1..=100 {
            c.step(k * 100);
        }
        assert_ne!(a.price().to_bits(), c.price().to_bits());
    }
}
