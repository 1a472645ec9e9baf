//! `[trade.paper_exchange]`: on/off, latency distribution, maker rebate, settlement tolerance.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A `[trade.paper_exchange]` value that is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("invalid {key}")]
pub struct ConfigError {
    /// The dotted key.
    pub key: &'static str,
}

/// Configuration of the paper exchange.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaperConfig {
    /// Run the paper exchange in paper mode (fills, settlements, P&L).
    pub enabled: bool,
    /// One-way order latency (decision → order at the venue) in µs at equally spaced
    /// quantiles from 0 to 1 (at least one value, non-decreasing): half the measured order round
    /// trips (exec's `order round trip` percentiles). A draw interpolates linearly between them.
    pub latency_quantiles_us: Vec<u64>,
    /// Seed of the latency draws (a draw is a hash of the seed and the client order id, so it
    /// does not depend on the order in which orders arrive).
    pub seed: u64,
    /// Share of the taker fee paid back to the maker of a fill (`fee_schedule.rebate_rate`,
    /// 0.2 for BTC 5-minute markets, PROTOCOL_NOTES.md §7).
    pub maker_rebate_rate: f64,
    /// A window's start (end) price is the first Chainlink report stamped in
    /// `[start, start + tolerance]` (`[end, end + tolerance]`), ms; without one it is not settled.
    pub settle_tolerance_ms: u64,
}

impl Default for PaperConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            // Placeholder until exec-live publishes measured venue round trips: 10-40 ms one way.
            latency_quantiles_us: vec![10_000, 12_000, 14_000, 17_000, 22_000, 40_000],
            seed: 1,
            maker_rebate_rate: 0.2,
            settle_tolerance_ms: 60_000,
        }
    }
}

/// SplitMix64: a well-mixed 64-bit hash step.
#[must_use]
pub const fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl PaperConfig {
    /// The latency of order `client_order_id` in ns: integer interpolation between the configured
    /// quantiles at a uniform draw from `splitmix64(seed ^ client_order_id)` (no floating point,
    /// identical on every machine). At least 1 ns, so an order never fills on the record that
    /// fired it.
    #[must_use]
    pub fn latency_ns(&self, client_order_id: u64) -> i64 {
        let q = &self.latency_quantiles_us;
        let Some(&last) = q.last() else {
            return 1;
        };
        if q.len() == 1 {
            return (last as i64).saturating_mul(1_000).max(1);
        }
        let h = splitmix64(self.seed ^ splitmix64(client_order_id));
        let segments = (q.len() - 1) as u128;
        // u in [0, segments) at 2^64 resolution per segment.
        let pos = u128::from(h) * segments;
        let seg = (pos >> 64) as usize;
        let frac = pos & u128::from(u64::MAX);
        let (a, b) = (u128::from(q[seg]), u128::from(q[seg + 1].max(q[seg])));
        let us_e3 = a * 1_000 + (((b - a) * 1_000 * frac) >> 64);
        i64::try_from(us_e3).unwrap_or(i64::MAX).max(1)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first dotted key that is not usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let q = &self.latency_quantiles_us;
        if q.is_empty() || q.windows(2).any(|w| w[1] < w[0]) {
            return Err(ConfigError {
                key: "trade.paper_exchange.latency_quantiles_us",
            });
        }
        if !(0.0..=1.0).contains(&self.maker_rebate_rate) {
            return Err(ConfigError {
                key: "trade.paper_exchange.maker_rebate_rate",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn latency_draws_are_seeded_within_the_quantiles_and_spread() {
        let cfg = PaperConfig::default();
        let draws: Vec<i64> = (1..2_000u64).map(|id| cfg.latency_ns(id)).collect();
        assert!(
            draws
                .iter()
                .all(|&d| (10_000_000..=40_000_000).contains(&d))
        );
        let mut sorted = draws.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        assert!(
            (15_000_000..=16_000_000).contains(&median),
            "median {median} halfway between the 3rd and 4th quantile (15.5 ms)"
        );
        assert_eq!(draws[7], cfg.latency_ns(8), "deterministic per order");
        let other = PaperConfig {
            seed: 2,
            ..PaperConfig::default()
        };
        assert_ne!(other.latency_ns(8), cfg.latency_ns(8), "the seed matters");
        assert!(cfg.validate().is_ok());
        let bad = PaperConfig {
            latency_quantiles_us: vec![5, 3],
            ..PaperConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "invalid trade.paper_exchange.latency_quantiles_us"
        );
    }
}
