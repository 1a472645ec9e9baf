//! Small numeric helpers shared by the fair-value code and the features: the standard normal CDF
//! (Hart/West double-precision rational approximation, |error| < 1e-14), logit/sigmoid and
//! fixed-point conversions. Pure `f64` arithmetic, so results are bit-identical between live and
//! replay on one build.

use ringbolt_bus::{PRICE_SCALE, SIZE_SCALE, VALUE_E18_SCALE};

/// Hart/West numerator coefficients of the tail, highest power first.
const NUMERATOR: [f64; 7] = [
    3.526_249_659_989_11e-2,
    0.700_383_064_443_688,
    6.373_962_203_531_65,
    33.912_866_078_383,
    112.079_291_497_871,
    221.213_596_169_931,
    220.206_867_912_376,
];

/// Hart/West denominator coefficients of the tail, highest power first.
const DENOMINATOR: [f64; 8] = [
    8.838_834_764_831_84e-2,
    1.755_667_163_182_64,
    16.064_177_579_207,
    86.780_732_202_946_1,
    296.564_248_779_674,
    637.333_633_378_831,
    793.826_512_519_948,
    440.413_735_824_752,
];

/// The polynomial with `coeffs` (highest power first) at `x`, by Horner's rule: the same
/// multiply-then-add sequence as writing it out, so the result is bit-identical.
#[inline]
fn horner(x: f64, coeffs: &[f64]) -> f64 {
    let mut acc = coeffs[0];
    for c in &coeffs[1..] {
        acc = acc * x + c;
    }
    acc
}

/// Standard normal cumulative distribution function Φ(x).
#[must_use]
pub fn norm_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let xa = x.abs();
    let tail = if xa > 37.0 {
        0.0
    } else {
        let e = (-xa * xa / 2.0).exp();
        if xa < 7.071_067_811_865_47 {
            let n = horner(xa, &NUMERATOR);
            let d = horner(xa, &DENOMINATOR);
            e * n / d
        } else {
            let mut b = xa + 0.65;
            b = xa + 4.0 / b;
            b = xa + 3.0 / b;
            b = xa + 2.0 / b;
            b = xa + 1.0 / b;
            e / b / 2.506_628_274_631
        }
    };
    if x > 0.0 { 1.0 - tail } else { tail }
}

/// Logistic function 1 / (1 + e^(−x)).
#[must_use]
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// ln(p / (1 − p)), with p clamped to [1e-9, 1 − 1e-9].
#[must_use]
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

/// A [`PRICE_SCALE`] fixed-point price as `f64`.
#[must_use]
pub fn price_f64(price: i64) -> f64 {
    price as f64 / PRICE_SCALE as f64
}

/// A [`SIZE_SCALE`] fixed-point size as `f64`.
#[must_use]
pub fn size_f64(size: i64) -> f64 {
    size as f64 / SIZE_SCALE as f64
}

/// A [`VALUE_E18_SCALE`] value as `f64` (integer and fractional parts converted separately so
/// that the result is the correctly rounded-ish nearest double for realistic magnitudes).
#[must_use]
pub fn e18_f64(value: i128) -> f64 {
    let int = value / VALUE_E18_SCALE;
    let frac = value % VALUE_E18_SCALE;
    int as f64 + frac as f64 / VALUE_E18_SCALE as f64
}

/// Rounds a probability to [`ringbolt_bus::PROB_SCALE`] fixed point.
#[must_use]
pub fn prob_fixed(p: f64) -> i64 {
    (p * ringbolt_bus::PROB_SCALE as f64).round() as i64
}

/// Rounds a price-like `f64` to [`PRICE_SCALE`] fixed point.
#[must_use]
pub fn price_fixed(p: f64) -> i64 {
    (p * PRICE_SCALE as f64).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_cdf_matches_reference_values() {
        // Reference values from scipy.stats.norm.cdf (double precision).
        let cases = [
            (0.0, 0.5),
            (1.0, 0.841_344_746_068_542_9),
            (-2.0, 0.022_750_131_948_179_195),
            (1.96, 0.975_002_104_851_779_5),
            (-5.0, 2.866_515_718_791_939e-7),
            (8.0, 0.999_999_999_999_999_3),
            (-8.5, 9.479_534_822_203_318e-18),
        ];
        for (x, want) in cases {
            let want: f64 = want;
            let got = norm_cdf(x);
            let tol = 1e-14_f64.max(want.abs() * 1e-12);
            assert!((got - want).abs() < tol, "Φ({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn e18_conversion_keeps_fraction() {
        let v: i128 = 95_000_123_456_789_012_345_678;
        assert!((e18_f64(v) - 95_000.123_456_789).abs() < 1e-9);
        assert!((sigmoid(logit(0.3)) - 0.3).abs() < 1e-12);
    }
}
