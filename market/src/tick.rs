//! Ticks and the price grid.
//!
//! Polymarket prices are probabilities in (0, 1). A market trades on one tick at a time (it can
//! change: `tick_size_change`); the ticks in use are 0.1, 0.01, 0.005, 0.0025, 0.001 and 0.0001
//! (the reference clients' rounding table, PROTOCOL_NOTES §2). Prices are fixed-point `i64` at
//! [`PRICE_SCALE`] (1e-8). Every tick is a multiple of [`GRID_E8`] (0.0001), so one book grid
//! of [`GRID_LEVELS`] slots holds a price on any tick; whether a price is valid for a tick is
//! [`Tick::check`].

use core::fmt;
use core::str::FromStr;

use ringbolt_bus::PRICE_SCALE;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The book grid step in [`PRICE_SCALE`] units: 0.0001, the finest tick.
pub const GRID_E8: i64 = PRICE_SCALE / 10_000;
/// Grid slots from 0.0000 to 1.0000 inclusive.
pub const GRID_LEVELS: usize = 10_001;

/// Whether `price_e8` is a book price: strictly inside (0, 1) and a multiple of [`GRID_E8`].
#[must_use]
#[inline]
pub const fn on_grid(price_e8: i64) -> bool {
    price_e8 > 0 && price_e8 < PRICE_SCALE && price_e8 % GRID_E8 == 0
}

/// A market's minimum tick size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tick {
    /// 0.1
    T0_1,
    /// 0.01
    T0_01,
    /// 0.005
    T0_005,
    /// 0.0025
    T0_0025,
    /// 0.001
    T0_001,
    /// 0.0001
    T0_0001,
}

/// Decimal places the reference clients round to for one tick (`ROUNDING_CONFIG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundConfig {
    /// Price decimal places.
    pub price_dp: u32,
    /// Size decimal places.
    pub size_dp: u32,
    /// Amount decimal places.
    pub amount_dp: u32,
}

/// Why a tick could not be read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{0:?} is not one of 0.1, 0.01, 0.005, 0.0025, 0.001, 0.0001")]
pub struct TickError(pub String);

/// Why a price is not valid for a tick.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum PriceError {
    /// Not a multiple of the tick.
    #[error("price {price_e8} (1e-8) is not on the {tick} tick grid")]
    OffTick {
        /// The price (1e-8).
        price_e8: i64,
        /// The tick.
        tick: Tick,
    },
    /// Outside `[tick, 1 - tick]`.
    #[error("price {price_e8} (1e-8) is outside [{tick}, 1 - {tick}]")]
    OutOfRange {
        /// The price (1e-8).
        price_e8: i64,
        /// The tick.
        tick: Tick,
    },
}

impl Tick {
    /// Every tick Polymarket uses, coarsest first.
    pub const ALL: [Tick; 6] = [
        Tick::T0_1,
        Tick::T0_01,
        Tick::T0_005,
        Tick::T0_0025,
        Tick::T0_001,
        Tick::T0_0001,
    ];

    /// The decimal string the venue and the reference clients use (`"0.01"`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Tick::T0_1 => "0.1",
            Tick::T0_01 => "0.01",
            Tick::T0_005 => "0.005",
            Tick::T0_0025 => "0.0025",
            Tick::T0_001 => "0.001",
            Tick::T0_0001 => "0.0001",
        }
    }

    /// The tick in [`PRICE_SCALE`] units (1e-8).
    #[must_use]
    pub const fn e8(self) -> i64 {
        match self {
            Tick::T0_1 => 10_000_000,
            Tick::T0_01 => 1_000_000,
            Tick::T0_005 => 500_000,
            Tick::T0_0025 => 250_000,
            Tick::T0_001 => 100_000,
            Tick::T0_0001 => 10_000,
        }
    }

    /// The tick as `f64` (configuration and display only; prices stay fixed-point).
    #[must_use]
    pub fn as_f64(self) -> f64 {
        self.e8() as f64 / PRICE_SCALE as f64
    }

    /// The reference clients' rounding configuration (PROTOCOL_NOTES §2).
    #[must_use]
    pub const fn round_config(self) -> RoundConfig {
        let (price_dp, amount_dp) = match self {
            Tick::T0_1 => (1, 3),
            Tick::T0_01 => (2, 4),
            Tick::T0_005 | Tick::T0_001 => (3, 5),
            Tick::T0_0025 | Tick::T0_0001 => (4, 6),
        };
        RoundConfig {
            price_dp,
            size_dp: 2,
            amount_dp,
        }
    }

    /// The tick in units of `10^-price_dp`.
    #[must_use]
    pub const fn tick_units(self) -> u128 {
        match self {
            Tick::T0_1 | Tick::T0_01 | Tick::T0_001 | Tick::T0_0001 => 1,
            Tick::T0_005 => 5,
            Tick::T0_0025 => 25,
        }
    }

    /// Whether `price_e8` lies in `[tick, 1 - tick]` (the range an order price must be in).
    #[must_use]
    #[inline]
    pub const fn in_range(self, price_e8: i64) -> bool {
        price_e8 >= self.e8() && price_e8 <= PRICE_SCALE - self.e8()
    }

    /// The one validity rule of a price for this tick: a multiple of the tick, in
    /// `[tick, 1 - tick]`. Such a price is always [`on_grid`].
    ///
    /// # Errors
    /// [`PriceError::OffTick`] (checked first), then [`PriceError::OutOfRange`].
    #[inline]
    pub const fn check(self, price_e8: i64) -> Result<(), PriceError> {
        if price_e8 % self.e8() != 0 {
            return Err(PriceError::OffTick {
                price_e8,
                tick: self,
            });
        }
        if !self.in_range(price_e8) {
            return Err(PriceError::OutOfRange {
                price_e8,
                tick: self,
            });
        }
        Ok(())
    }

    /// The tick whose decimal text is `text` (`"0.01"`, also `"0.010"` or `".01"`).
    ///
    /// # Errors
    /// [`TickError`] for anything else.
    pub fn parse(text: &str) -> Result<Tick, TickError> {
        let bad = || TickError(text.chars().take(40).collect());
        let frac = text
            .strip_prefix("0.")
            .or_else(|| text.strip_prefix('.'))
            .ok_or_else(bad)?;
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() || frac.len() > 8 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let mut e8: i64 = 0;
        for k in 0..8 {
            let digit = frac.as_bytes().get(k).map_or(0, |b| b - b'0');
            e8 = e8 * 10 + i64::from(digit);
        }
        Tick::from_e8(e8).ok_or_else(bad)
    }

    /// The tick of `e8` [`PRICE_SCALE`] units, if it is one.
    #[must_use]
    pub fn from_e8(e8: i64) -> Option<Tick> {
        Tick::ALL.into_iter().find(|t| t.e8() == e8)
    }

    /// The tick nearest to `value` within 1e-12 (TOML / Gamma numbers such as `0.01`).
    ///
    /// # Errors
    /// [`TickError`] when no tick is that close.
    pub fn from_f64(value: f64) -> Result<Tick, TickError> {
        Tick::ALL
            .into_iter()
            .find(|t| (t.as_f64() - value).abs() < 1e-12)
            .ok_or_else(|| TickError(value.to_string()))
    }
}

impl FromStr for Tick {
    type Err = TickError;
    fn from_str(s: &str) -> Result<Self, TickError> {
        Tick::parse(s)
    }
}

impl fmt::Display for Tick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialised as a number (`tick_size = 0.01` in TOML).
impl Serialize for Tick {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

/// Read from a number (`0.01`) or a decimal string (`"0.01"`, Gamma and WS style).
impl<'de> Deserialize<'de> for Tick {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(v) => Tick::from_f64(v),
            Raw::Text(t) => Tick::parse(&t),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_tick_parses_and_checks_prices() {
        for t in Tick::ALL {
            assert_eq!(Tick::parse(t.as_str()), Ok(t));
            assert_eq!(Tick::from_f64(t.as_f64()), Ok(t));
            assert_eq!(Tick::from_e8(t.e8()), Some(t));
            // Every tick lies on the book grid, and so does every valid price.
            assert_eq!(t.e8() % GRID_E8, 0);
            assert!(on_grid(t.e8()) && on_grid(PRICE_SCALE - t.e8()));
            // The rounding table's price decimals hold the tick.
            let rc = t.round_config();
            assert_eq!(
                t.tick_units() as i64 * 10i64.pow(8 - rc.price_dp),
                t.e8(),
                "{t}"
            );
        }
        assert_eq!(Tick::parse("0.010"), Ok(Tick::T0_01));
        assert_eq!(Tick::parse(".0025"), Ok(Tick::T0_0025));
        for bad in ["0.02", "1", "0", "0.", "", "0.00001", "-0.01", "0.01 "] {
            assert!(Tick::parse(bad).is_err(), "{bad:?}");
        }
        let p = |s: &str| (s.parse::<f64>().unwrap() * PRICE_SCALE as f64).round() as i64;
        assert_eq!(Tick::T0_0025.check(p("0.5025")), Ok(()));
        assert_eq!(Tick::T0_0001.check(p("0.5025")), Ok(()));
        assert_eq!(Tick::T0_005.check(p("0.505")), Ok(()));
        assert_eq!(
            Tick::T0_001.check(p("0.5025")),
            Err(PriceError::OffTick {
                price_e8: p("0.5025"),
                tick: Tick::T0_001
            })
        );
        assert_eq!(
            Tick::T0_01.check(p("0.995")),
            Err(PriceError::OffTick {
                price_e8: p("0.995"),
                tick: Tick::T0_01
            })
        );
        assert_eq!(
            Tick::T0_01.check(0),
            Err(PriceError::OutOfRange {
                price_e8: 0,
                tick: Tick::T0_01
            })
        );
        assert!(Tick::T0_01.check(PRICE_SCALE).is_err());
        assert!(!on_grid(0) && !on_grid(PRICE_SCALE) && !on_grid(p("0.50255")));
    }

    #[test]
    fn serde_reads_numbers_and_strings() {
        let t: Tick = serde_json::from_str("0.01").unwrap();
        assert_eq!(t, Tick::T0_01);
        let t: Tick = serde_json::from_str("\"0.0025\"").unwrap();
        assert_eq!(t, Tick::T0_0025);
        assert!(serde_json::from_str::<Tick>("0.02").is_err());
        assert_eq!(serde_json::to_string(&Tick::T0_005).unwrap(), "0.005");
    }
}
