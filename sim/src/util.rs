//! Small deterministic helpers: UTC time formatting, decimal formatting, id generation.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use ringbolt_market::time::civil_from_days;

fn split_ms(ts_ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = ts_ms.div_euclid(1000);
    let ms = ts_ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, sod / 3600, (sod / 60) % 60, sod % 60, ms)
}

/// RFC 3339 UTC with microseconds, Coinbase Exchange style: `2021-04-01T00:00:01.618503Z`.
pub fn iso_micros(ts_us: i64) -> String {
    let (y, mo, d, h, mi, s, _) = split_ms(ts_us.div_euclid(1000));
    let us = ts_us.rem_euclid(1_000_000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
}

/// RFC 3339 UTC without fraction (Gamma `endDate` style): `2026-03-12T09:25:00Z`.
pub fn iso_seconds(ts_ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = split_ms(ts_ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Calendar date `2026-03-12`.
pub fn iso_date(ts_ms: i64) -> String {
    let (y, mo, d, ..) = split_ms(ts_ms);
    format!("{y:04}-{mo:02}-{d:02}")
}

/// `November 23, 11:20PM-11:25PM UTC`: the window label used in emulated market titles.
pub fn window_label(start_ms: i64, end_ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (_, mo, d, h, mi, s, _) = split_ms(start_ms);
    let (_, _, _, h2, mi2, s2, _) = split_ms(end_ms);
    let clock = |h: u32, mi: u32, s: u32| {
        let (h12, ap) = match h {
            0 => (12, "AM"),
            1..=11 => (h, "AM"),
            12 => (12, "PM"),
            _ => (h - 12, "PM"),
        };
        if s == 0 {
            format!("{h12}:{mi:02}{ap}")
        } else {
            format!("{h12}:{mi:02}:{s:02}{ap}")
        }
    };
    format!(
        "{} {}, {}-{} UTC",
        MONTHS[(mo - 1) as usize],
        d,
        clock(h, mi, s),
        clock(h2, mi2, s2)
    )
}

/// Fixed-point integer with `scale` decimals as a decimal string, keeping all decimals
/// (`fixed(5_000_000, 8)` = `"0.05000000"`). Negative values are not used by any venue here.
pub fn fixed(value: i64, decimals: u32) -> String {
    let div = 10_i64.pow(decimals);
    if decimals == 0 {
        return value.to_string();
    }
    format!(
        "{}.{:0width$}",
        value / div,
        value % div,
        width = decimals as usize
    )
}

/// [`fixed`] with a leading `-` for negative values (funding rates, percent changes).
pub fn fixed_signed(value: i64, decimals: u32) -> String {
    if value < 0 {
        format!("-{}", fixed(-value, decimals))
    } else {
        fixed(value, decimals)
    }
}

/// The value of `key` in a URL query string (`a=1&b=2`), undecoded.
pub fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// Like [`fixed`] but with trailing zeros (and a bare trailing point) removed: `0.50` -> `"0.5"`,
/// `1.00` -> `"1"` (Polymarket's style).
pub fn trimmed(value: i64, decimals: u32) -> String {
    let s = fixed(value, decimals);
    if !s.contains('.') {
        return s;
    }
    let t = s.trim_end_matches('0').trim_end_matches('.');
    t.to_string()
}

/// A random decimal string of `len` digits without a leading zero (Polymarket token-id style).
pub fn decimal_id(rng: &mut ChaCha8Rng, len: usize) -> String {
    let mut s = String::with_capacity(len);
    s.push(char::from(b'1' + rng.random_range(0..9u8)));
    for _ in 1..len {
        s.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    s
}

/// `n` random lowercase hex digits.
pub fn hex_id(rng: &mut ChaCha8Rng, n: usize) -> String {
    let mut s = String::with_capacity(n + 16);
    while s.len() < n {
        s.push_str(&format!("{:016x}", rng.random::<u64>()));
    }
    s.truncate(n);
    s
}

/// A random RFC 4122 version-4 UUID string.
pub fn uuid_v4(rng: &mut ChaCha8Rng) -> String {
    let h = hex_id(rng, 32);
    let variant = ["8", "9", "a", "b"][rng.random_range(0..4usize)];
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        variant,
        &h[17..20],
        &h[20..32]
    )
}

/// A standard normal draw (Box–Muller), deterministic for a given generator state.
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 via erf, |error| < 1.5e-7).
pub fn norm_cdf(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    let erf = if z >= 0.0 { erf } else { -erf };
    0.5 * (1.0 + erf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_like_the_venues() {
        // 2026-03-12T09:20:00Z = 1773307200 (the corpus Gamma window start).
        assert_eq!(iso_seconds(1_773_307_200_000), "2026-03-12T09:20:00Z");
        assert_eq!(iso_date(1_773_307_200_000), "2026-03-12");
        assert_eq!(
            iso_micros(1_617_235_201_618_503),
            "2021-04-01T00:00:01.618503Z"
        );
        assert_eq!(
            window_label(1_773_307_200_000, 1_773_307_500_000),
            "March 12, 9:20AM-9:25AM UTC"
        );
    }

    #[test]
    fn formats_decimals() {
        assert_eq!(fixed(5_894_201, 2), "58942.01");
        assert_eq!(fixed(35_600, 8), "0.00035600");
        assert_eq!(trimmed(500, 3), "0.5");
        assert_eq!(trimmed(1000, 3), "1");
        assert_eq!(trimmed(4_166_632, 2), "41666.32");
    }

    #[test]
    fn normal_cdf_matches_known_points() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(1.96) - 0.975_002).abs() < 1e-5);
        assert!((norm_cdf(-1.0) - 0.158_655).abs() < 1e-5);
    }
}
