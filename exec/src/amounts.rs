//! Price/size → maker/taker amounts, exactly per the reference client's rounding rules
//! (py-clob-client-v2 `OrderBuilder.get_order_amounts` / `get_market_order_amounts`), but in exact
//! integer arithmetic: decimals are parsed straight from strings, never through `f64`.
//!
//! All amounts are 6-decimal integers (pUSD and outcome shares both have 6 decimals).
//!
//! Divergence from the reference, on purpose: the reference rounds in binary floating point, so
//! e.g. `floor(4.35 * 100) / 100` gives 4.34 shares. ringbolt gives 4.35. The vector generator
//! flags such cases (`float_artifact`) and checks ringbolt against the exact evaluation of the
//! same rules; see `exec/vectors/generate.py`.

use std::str::FromStr;

use crate::Error;

/// Micro-units (10⁻⁶) of pUSD or of outcome shares.
pub type Micros = u64;

/// A non-negative decimal parsed from a string: `mantissa × 10^-scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    /// Digits without the point.
    pub mantissa: u128,
    /// Digits after the point.
    pub scale: u32,
}

/// Largest accepted mantissa (keeps every intermediate product well inside `u128`).
const MAX_MANTISSA: u128 = 10u128.pow(24);
/// Most fractional digits accepted.
const MAX_SCALE: u32 = 18;

impl Decimal {
    /// Parses `123`, `0.37`, `12.345`, `.5`; rejects signs, exponents, empty strings, more than
    /// 18 fractional digits and values above 10²⁴ in mantissa.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::BadDecimal {
            input: s.chars().take(40).collect(),
            reason: why.to_owned(),
        };
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(bad("empty"));
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad("only digits and one '.' are allowed"));
        }
        let scale = u32::try_from(frac.len()).map_err(|_| bad("too many digits"))?;
        if scale > MAX_SCALE {
            return Err(bad("more than 18 fractional digits"));
        }
        let mut mantissa: u128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(b - b'0')))
                .filter(|m| *m <= MAX_MANTISSA)
                .ok_or_else(|| bad("too large"))?;
        }
        Ok(Decimal { mantissa, scale })
    }

    /// Value floored to `dp` fractional digits, as an integer count of 10^-dp.
    #[must_use]
    pub fn floor_to(self, dp: u32) -> u128 {
        if self.scale <= dp {
            self.mantissa * 10u128.pow(dp - self.scale)
        } else {
            self.mantissa / 10u128.pow(self.scale - dp)
        }
    }

    /// Value as an exact count of 10^-dp, `None` if it has more than `dp` fractional digits.
    #[must_use]
    pub fn exact_at(self, dp: u32) -> Option<u128> {
        let floored = self.floor_to(dp);
        (self.scale <= dp || floored * 10u128.pow(self.scale - dp) == self.mantissa)
            .then_some(floored)
    }
}

impl FromStr for Decimal {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Decimal::parse(s)
    }
}

/// The market crate's [`Tick`] under exec's name (the tick table and its rounding
/// configuration are defined once, in `ringbolt_market::tick`).
pub use ringbolt_market::tick::{RoundConfig, Tick, Tick as TickSize, TickError};

impl From<TickError> for Error {
    fn from(e: TickError) -> Self {
        Error::BadField {
            field: "tick_size",
            reason: e.to_string(),
        }
    }
}

/// Order side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderSide {
    /// Buy outcome shares with pUSD (EIP-712 side 0).
    Buy,
    /// Sell outcome shares for pUSD (EIP-712 side 1).
    Sell,
}

impl OrderSide {
    /// Wire string.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderSide::Buy => "BUY",
            OrderSide::Sell => "SELL",
        }
    }
    /// EIP-712 `uint8 side`.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            OrderSide::Buy => 0,
            OrderSide::Sell => 1,
        }
    }
}

impl FromStr for OrderSide {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "BUY" => Ok(OrderSide::Buy),
            "SELL" => Ok(OrderSide::Sell),
            _ => Err(Error::BadField {
                field: "side",
                reason: format!("{s:?} is not BUY or SELL"),
            }),
        }
    }
}

/// Maker and taker amounts in micro-units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amounts {
    /// What the maker gives (pUSD for BUY, shares for SELL), 1e-6.
    pub maker: Micros,
    /// What the maker receives, 1e-6.
    pub taker: Micros,
}

fn pow10(n: u32) -> u128 {
    10u128.pow(n)
}

/// The reference's post-processing of a computed amount `num/den`: if it has more than
/// `amount_dp` decimals, round up at `amount_dp + 4`, and if that still has more than
/// `amount_dp` decimals, round down to `amount_dp`. Returns micro-units.
fn fix_amount(num: u128, den: u128, amount_dp: u32) -> Result<Micros, Error> {
    debug_assert!(den > 0 && (2..=6).contains(&amount_dp));
    let scaled = num
        .checked_mul(pow10(amount_dp + 4))
        .ok_or(Error::AmountOverflow)?;
    let micros: u128 = if (num * pow10(amount_dp)).is_multiple_of(den) {
        num * pow10(6) / den
    } else {
        let up = scaled.div_ceil(den); // units of 10^-(amount_dp+4)
        if up.is_multiple_of(pow10(4)) {
            // amount_dp + 4 >= 6, so this divides exactly.
            up / pow10(amount_dp + 4 - 6)
        } else {
            (up / pow10(4)) * pow10(6 - amount_dp)
        }
    };
    Micros::try_from(micros).map_err(|_| Error::AmountOverflow)
}

/// Validates a price against the tick and returns it in units of 10^-price_dp.
///
/// Limit orders: the price must be valid for the tick ([`Tick::check`]: a multiple of the tick
/// in `[tick, 1 - tick]`). Market orders: the price is floored to `price_dp` decimals first (as
/// the reference does), then must be in `[tick, 1 - tick]` ([`Tick::in_range`]).
pub fn price_units(price: Decimal, tick: TickSize, market: bool) -> Result<u128, Error> {
    let rc = tick.round_config();
    let off_tick = || Error::OffTick {
        price: format_decimal(price),
        tick,
    };
    let out_of_range = || Error::PriceOutOfRange {
        price: format_decimal(price),
        tick,
    };
    // The price at PRICE_SCALE (1e-8), which holds every tick's price decimals; a value beyond
    // i64 is far outside [tick, 1 - tick].
    let units = if market {
        price.floor_to(rc.price_dp) * 10u128.pow(8 - rc.price_dp)
    } else {
        price.exact_at(8).ok_or_else(off_tick)?
    };
    let e8 = i64::try_from(units).map_err(|_| out_of_range())?;
    if market {
        if !tick.in_range(e8) {
            return Err(out_of_range());
        }
    } else {
        tick.check(e8).map_err(|e| match e {
            ringbolt_market::PriceError::OffTick { .. } => off_tick(),
            ringbolt_market::PriceError::OutOfRange { .. } => out_of_range(),
        })?;
    }
    Ok((e8 / 10i64.pow(8 - rc.price_dp)) as u128)
}

fn format_decimal(d: Decimal) -> String {
    let digits = d.mantissa.to_string();
    let scale = d.scale as usize;
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (i, f) = padded.split_at(padded.len() - scale);
    format!("{i}.{f}")
}

/// The tick's rounding, the price in `10^-price_dp` units (see [`price_units`]), and the
/// quantity floored to `10^-size_dp` units, raw and as micro-units.
#[inline]
fn quantity_at(
    price: Decimal,
    qty: Decimal,
    tick: TickSize,
    market: bool,
) -> Result<(RoundConfig, u128, u128, Micros), Error> {
    let rc = tick.round_config();
    let p = price_units(price, tick, market)?;
    let units = qty.floor_to(rc.size_dp);
    let micros = fix_amount(units, pow10(rc.size_dp), rc.amount_dp)?;
    Ok((rc, p, units, micros))
}

/// `units` shares (`10^-size_dp`) at price `p` (`10^-price_dp`), in micro-units of pUSD.
#[inline]
fn notional(units: u128, p: u128, rc: &RoundConfig) -> Result<Micros, Error> {
    fix_amount(
        units.checked_mul(p).ok_or(Error::AmountOverflow)?,
        pow10(rc.size_dp + rc.price_dp),
        rc.amount_dp,
    )
}

/// Amounts of a limit order of `size` shares at `price`.
pub fn limit_amounts(
    side: OrderSide,
    price: Decimal,
    size: Decimal,
    tick: TickSize,
) -> Result<Amounts, Error> {
    let (rc, p, shares, base) = quantity_at(price, size, tick, false)?;
    let other = notional(shares, p, &rc)?;
    Ok(match side {
        OrderSide::Buy => Amounts {
            maker: other,
            taker: base,
        },
        OrderSide::Sell => Amounts {
            maker: base,
            taker: other,
        },
    })
}

/// Amounts of a market order: `amount` is pUSD to spend for BUY, shares to sell for SELL.
pub fn market_amounts(
    side: OrderSide,
    price: Decimal,
    amount: Decimal,
    tick: TickSize,
) -> Result<Amounts, Error> {
    let (rc, p, maker_units, maker) = quantity_at(price, amount, tick, true)?;
    let taker = match side {
        // (m / 10^s) / (p / 10^pd) = m·10^pd / (p·10^s)
        OrderSide::Buy => fix_amount(
            maker_units
                .checked_mul(pow10(rc.price_dp))
                .ok_or(Error::AmountOverflow)?,
            p * pow10(rc.size_dp),
            rc.amount_dp,
        )?,
        OrderSide::Sell => notional(maker_units, p, &rc)?,
    };
    Ok(Amounts { maker, taker })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn protocol_notes_examples() {
        // PROTOCOL_NOTES.md section 2.
        let a = limit_amounts(OrderSide::Buy, d("0.37"), d("12.345"), TickSize::T0_01).unwrap();
        assert_eq!((a.maker, a.taker), (4_565_800, 12_340_000));
        let a = market_amounts(OrderSide::Buy, d("0.55"), d("25"), TickSize::T0_01).unwrap();
        assert_eq!((a.maker, a.taker), (25_000_000, 45_454_500));
    }

    #[test]
    fn bad_inputs_are_errors() {
        for s in [
            "",
            ".",
            "-1",
            "1e3",
            "0x10",
            "1.2.3",
            " 1",
            "1.0000000000000000001",
        ] {
            assert!(Decimal::parse(s).is_err(), "{s}");
        }
        assert!(limit_amounts(OrderSide::Buy, d("0.375"), d("1"), TickSize::T0_01).is_err());
        assert!(limit_amounts(OrderSide::Buy, d("0.003"), d("1"), TickSize::T0_005).is_err());
        assert!(limit_amounts(OrderSide::Buy, d("0"), d("1"), TickSize::T0_01).is_err());
        assert!(limit_amounts(OrderSide::Buy, d("1"), d("1"), TickSize::T0_01).is_err());
        assert!(limit_amounts(OrderSide::Sell, d("0.99"), d("1"), TickSize::T0_01).is_ok());
    }

    #[test]
    fn size_zero_gives_zero_amounts() {
        let a = limit_amounts(OrderSide::Buy, d("0.5"), d("0"), TickSize::T0_01).unwrap();
        assert_eq!((a.maker, a.taker), (0, 0));
    }

    proptest::proptest! {
        #[test]
        fn limit_price_identity(shares in 0u64..10_000_000, p in 1u64..99, sell: bool) {
            // maker/taker ratio is the price exactly for tick 0.01.
            let size = Decimal { mantissa: u128::from(shares), scale: 2 };
            let price = Decimal { mantissa: u128::from(p), scale: 2 };
            let side = if sell { OrderSide::Sell } else { OrderSide::Buy };
            let a = limit_amounts(side, price, size, TickSize::T0_01).unwrap();
            let (usd, sh) = if sell { (a.taker, a.maker) } else { (a.maker, a.taker) };
            proptest::prop_assert_eq!(u128::from(usd) * 100, u128::from(sh) * u128::from(p));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Decimal::parse(&s);
        }

        #[test]
        fn amounts_never_panic(p in "[0-9]{0,3}\\.?[0-9]{0,6}", q in "[0-9]{0,26}\\.?[0-9]{0,20}", t in 0usize..6, sell: bool, market: bool) {
            if let (Ok(p), Ok(q)) = (Decimal::parse(&p), Decimal::parse(&q)) {
                let side = if sell { OrderSide::Sell } else { OrderSide::Buy };
                let tick = TickSize::ALL[t];
                let r = if market { market_amounts(side, p, q, tick) } else { limit_amounts(side, p, q, tick) };
                if let Ok(a) = r {
                    // Amounts carry at most amount_dp decimals.
                    let step = 10u64.pow(6 - tick.round_config().amount_dp);
                    proptest::prop_assert!(a.maker % step == 0 && a.taker % step == 0);
                }
            }
        }
    }
}
