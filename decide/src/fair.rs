//! Fair value: the driftless lognormal baseline and the fee-aware edge.

use crate::config::MarketParams;
use crate::num::norm_cdf;

/// Probabilities are clamped to [`P_MIN`, 1 − `P_MIN`].
pub const P_MIN: f64 = 1e-4;

/// P(S_T ≥ K) for a driftless (martingale) lognormal price: ln S_T ~ N(ln S − σ²τ/2, σ²τ), so
/// `p = Φ((ln(S/K) − σ²τ/2) / (σ√τ))`. `vol_per_sqrt_s` is σ per √s, `tau_s` the time left (s).
/// At or after expiry the result is the indicator S ≥ K (clamped).
#[must_use]
pub fn lognormal_up_probability(spot: f64, strike: f64, vol_per_sqrt_s: f64, tau_s: f64) -> f64 {
    if !(spot > 0.0 && strike > 0.0) {
        return 0.5;
    }
    lognormal_up_probability_ln((spot / strike).ln(), vol_per_sqrt_s, tau_s)
}

/// [`lognormal_up_probability`] from the log-moneyness `m = ln(S/K)` (S, K > 0) computed by
/// the caller: the same operations after `ln`, so the same result for the same `m`.
#[must_use]
pub fn lognormal_up_probability_ln(m: f64, vol_per_sqrt_s: f64, tau_s: f64) -> f64 {
    let sd = vol_per_sqrt_s * tau_s.max(0.0).sqrt();
    let p = if sd <= 1e-12 {
        if m >= 0.0 { 1.0 } else { 0.0 }
    } else {
        norm_cdf((m - 0.5 * sd * sd) / sd)
    };
    p.clamp(P_MIN, 1.0 - P_MIN)
}

/// Expected value per share of buying at `ask` given probability `p` of paying 1, after the taker
/// fee: `p − ask − fee(ask)`.
#[must_use]
pub fn buy_edge(p: f64, ask: f64, params: &MarketParams) -> f64 {
    p - ask - params.taker_fee_per_share(ask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_is_half_at_the_money_minus_convexity() {
        let p = lognormal_up_probability(100.0, 100.0, 1e-4, 300.0);
        assert!(p < 0.5 && p > 0.499, "{p}");
        assert!(lognormal_up_probability(101.0, 100.0, 1e-4, 300.0) > 0.99);
        assert!(
            lognormal_up_probability(100.0, 100.0, 1e-4, 0.0) > 0.99,
            "S = K at expiry is Up"
        );
        assert!(lognormal_up_probability(99.99, 100.0, 1e-4, 0.0) < 0.01);
        // Symmetry in log-moneyness around the convexity shift.
        let up = lognormal_up_probability(100.05, 100.0, 1e-4, 100.0);
        let dn = lognormal_up_probability(100.0 * 100.0 / 100.05, 100.0, 1e-4, 100.0);
        assert!((up + dn - 1.0).abs() < 1e-3);
    }

    #[test]
    fn edge_subtracts_fee() {
        let m = MarketParams::default();
        let e = buy_edge(0.6, 0.5, &m);
        assert!((e - (0.1 - 0.0175)).abs() < 1e-12);
    }
}
