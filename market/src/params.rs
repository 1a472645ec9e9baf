//! Per-market trading parameters as data: tick, taker fee curve, minimum order size.
//!
//! Defaults come from configuration (`[decide.default_market]`, per-slug overrides); the venue
//! states them per market in Gamma (`orderPriceMinTickSize`, `orderMinSize`, `feesEnabled`,
//! `feeSchedule`; the market channel's `new_market` uses the snake-case names) and announces
//! tick changes on the market channel (`tick_size_change`). Parsing is sans-IO: bytes in,
//! values out.

use ringbolt_bus::{MarketParamsBody, PARAMS_FROM_TICK_SIZE_CHANGE, SIZE_SCALE};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::tick::{Tick, TickError};

/// Per-market trading parameters (Polymarket publishes them per market: `fd` in
/// `GET /clob-markets/<conditionId>`, `orderPriceMinTickSize`, `orderMinSize`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketParams {
    /// Taker fee rate (`fd.r`, `feeSchedule.rate`, e.g. 0.07).
    pub fee_rate: f64,
    /// Taker fee exponent (`fd.e`, `feeSchedule.exponent`, e.g. 1).
    pub fee_exponent: f64,
    /// Price tick (`orderPriceMinTickSize`, e.g. 0.01; TOML `tick_size = 0.01`).
    pub tick_size: Tick,
    /// Minimum order size in shares (`orderMinSize`, e.g. 5).
    pub min_size_shares: f64,
}

impl Default for MarketParams {
    fn default() -> Self {
        // BTC 5-minute markets, 2026-10: fee_schedule {"exponent":"1","rate":"0.07"}, tick 0.01,
        // orderMinSize 5 (PROTOCOL_NOTES.md §6-7, gamma_market_btc_updown_5m_1773307200.json).
        Self {
            fee_rate: 0.07,
            fee_exponent: 1.0,
            tick_size: Tick::T0_01,
            min_size_shares: 5.0,
        }
    }
}

impl MarketParams {
    /// Taker fee per share when buying or selling at `price`:
    /// `rate × (price × (1 − price))^exponent` (pUSD per share).
    #[must_use]
    pub fn taker_fee_per_share(&self, price: f64) -> f64 {
        let q = price * (1.0 - price);
        if self.fee_exponent == 1.0 {
            self.fee_rate * q
        } else {
            self.fee_rate * q.max(0.0).powf(self.fee_exponent)
        }
    }

    /// These parameters updated with what a Gamma market object (or a `new_market` event)
    /// states; fields it does not state keep their value. `feesEnabled: false` makes the fee
    /// rate 0.
    ///
    /// # Errors
    /// [`ParamsError`] naming the first field with a value that is not usable; nothing is
    /// applied then.
    pub fn updated_from_gamma(&self, gamma: &GammaParams) -> Result<MarketParams, ParamsError> {
        let mut p = *self;
        if let Some(t) = &gamma.tick {
            p.tick_size = match t {
                NumberOrText::Number(v) => Tick::from_f64(*v),
                NumberOrText::Text(s) => Tick::parse(s),
            }
            .map_err(ParamsError::Tick)?;
        }
        if let Some(v) = &gamma.min_size {
            p.min_size_shares = positive(v, "orderMinSize")?;
        }
        if gamma.fees_enabled == Some(false) {
            p.fee_rate = 0.0;
        } else if let Some(fs) = &gamma.fee_schedule {
            p.fee_rate = non_negative(&fs.rate, "feeSchedule.rate")?;
            p.fee_exponent = positive(&fs.exponent, "feeSchedule.exponent")?;
        }
        Ok(p)
    }

    /// These parameters after a market-channel `tick_size_change`.
    #[must_use]
    pub fn with_tick(&self, change: &TickSizeChange<'_>) -> MarketParams {
        MarketParams {
            tick_size: change.new_tick,
            ..*self
        }
    }
}

/// Fixed-point units per 1.0 of a rate on the bus (`RATE_SCALE`).
const RATE_E12: f64 = ringbolt_bus::RATE_SCALE as f64;

impl MarketParams {
    /// The bus body carrying these parameters for a token of the window starting at
    /// `window_start_s`, from `source` (`PARAMS_FROM_*`).
    #[must_use]
    pub fn to_body(&self, window_start_s: i64, source: u8) -> MarketParamsBody {
        MarketParamsBody {
            window_start_s,
            tick_size: self.tick_size.e8(),
            min_size: (self.min_size_shares * SIZE_SCALE as f64).round() as i64,
            fee_rate: (self.fee_rate * RATE_E12).round() as i64,
            fee_exponent: (self.fee_exponent * RATE_E12).round() as i64,
            maker_rebate: 0,
            source,
            reserved: [0; 31],
        }
    }

    /// The bus body of a `tick_size_change`: the tick only (other fields 0 = unchanged).
    #[must_use]
    pub fn tick_body(window_start_s: i64, tick: Tick) -> MarketParamsBody {
        MarketParamsBody {
            window_start_s,
            tick_size: tick.e8(),
            min_size: 0,
            fee_rate: 0,
            fee_exponent: 0,
            maker_rebate: 0,
            source: PARAMS_FROM_TICK_SIZE_CHANGE,
            reserved: [0; 31],
        }
    }

    /// These parameters updated with a bus record's: a tick-size change sets the tick only,
    /// other sources every field they state (a non-positive size or exponent is not stated).
    ///
    /// # Errors
    /// [`ParamsError::Field`] naming a field that is not usable (a tick Polymarket does not use,
    /// a negative fee rate); nothing is applied then.
    pub fn updated_from_body(&self, body: &MarketParamsBody) -> Result<MarketParams, ParamsError> {
        let mut p = *self;
        if body.tick_size != 0 {
            p.tick_size = Tick::from_e8(body.tick_size).ok_or(ParamsError::Field("tick_size"))?;
        }
        if body.source == PARAMS_FROM_TICK_SIZE_CHANGE {
            return Ok(p);
        }
        if body.min_size > 0 {
            p.min_size_shares = body.min_size as f64 / SIZE_SCALE as f64;
        }
        if body.fee_rate < 0 {
            return Err(ParamsError::Field("fee_rate"));
        }
        p.fee_rate = body.fee_rate as f64 / RATE_E12;
        if body.fee_exponent > 0 {
            p.fee_exponent = body.fee_exponent as f64 / RATE_E12;
        }
        Ok(p)
    }
}

fn number(v: &NumberOrText, field: &'static str) -> Result<f64, ParamsError> {
    let x = match v {
        NumberOrText::Number(x) => *x,
        NumberOrText::Text(s) => s.parse().map_err(|_| ParamsError::Field(field))?,
    };
    if x.is_finite() {
        Ok(x)
    } else {
        Err(ParamsError::Field(field))
    }
}

fn positive(v: &NumberOrText, field: &'static str) -> Result<f64, ParamsError> {
    number(v, field).and_then(|x| {
        if x > 0.0 {
            Ok(x)
        } else {
            Err(ParamsError::Field(field))
        }
    })
}

fn non_negative(v: &NumberOrText, field: &'static str) -> Result<f64, ParamsError> {
    number(v, field).and_then(|x| {
        if x >= 0.0 {
            Ok(x)
        } else {
            Err(ParamsError::Field(field))
        }
    })
}

/// Why venue-stated parameters could not be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ParamsError {
    /// The tick is not one Polymarket uses.
    #[error("tick: {0}")]
    Tick(#[from] TickError),
    /// A numeric field is not a usable number.
    #[error("{0} is not a usable number")]
    Field(&'static str),
    /// The message is not the expected JSON object.
    #[error("not a {0} message")]
    Shape(&'static str),
}

/// A JSON value Polymarket sends as a number in one place and a string in another.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum NumberOrText {
    /// `0.01`
    Number(f64),
    /// `"0.01"`
    Text(String),
}

/// Gamma's fee schedule (`feeSchedule` / `fee_schedule`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FeeSchedule {
    /// Taker fee rate.
    pub rate: NumberOrText,
    /// Exponent of `p·(1−p)`.
    pub exponent: NumberOrText,
}

/// The parameter fields of a Gamma market object or a `new_market` event, as sent (other
/// fields are ignored). Embed it with `#[serde(flatten)]` or deserialize it on its own.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct GammaParams {
    /// `orderPriceMinTickSize`.
    #[serde(
        default,
        rename = "orderPriceMinTickSize",
        alias = "order_price_min_tick_size"
    )]
    pub tick: Option<NumberOrText>,
    /// `orderMinSize`.
    #[serde(default, rename = "orderMinSize", alias = "order_min_size")]
    pub min_size: Option<NumberOrText>,
    /// `feesEnabled`.
    #[serde(default, rename = "feesEnabled", alias = "fees_enabled")]
    pub fees_enabled: Option<bool>,
    /// `feeSchedule`.
    #[serde(default, rename = "feeSchedule", alias = "fee_schedule")]
    pub fee_schedule: Option<FeeSchedule>,
}

impl GammaParams {
    /// The parameter fields of one Gamma market object (JSON).
    ///
    /// # Errors
    /// [`ParamsError::Shape`] when `json` is not such an object.
    pub fn parse(json: &[u8]) -> Result<GammaParams, ParamsError> {
        serde_json::from_slice(json).map_err(|_| ParamsError::Shape("gamma market"))
    }
}

/// A market-channel `tick_size_change` event (borrowed from the frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickSizeChange<'a> {
    /// The outcome token (CLOB token id).
    pub asset_id: &'a str,
    /// The previous tick.
    pub old_tick: Option<Tick>,
    /// The new tick.
    pub new_tick: Tick,
}

#[derive(Deserialize)]
struct RawTickSizeChange<'a> {
    event_type: &'a str,
    asset_id: &'a str,
    #[serde(default)]
    old_tick_size: Option<&'a str>,
    new_tick_size: &'a str,
}

impl<'a> TickSizeChange<'a> {
    /// Parses one `tick_size_change` event object. Sans-IO and allocation-free for frames
    /// without escapes.
    ///
    /// # Errors
    /// [`ParamsError::Shape`] for another event or a missing field, [`ParamsError::Tick`] for
    /// a tick Polymarket does not use.
    pub fn parse(json: &'a [u8]) -> Result<Self, ParamsError> {
        let raw: RawTickSizeChange<'a> =
            serde_json::from_slice(json).map_err(|_| ParamsError::Shape("tick_size_change"))?;
        if raw.event_type != "tick_size_change" {
            return Err(ParamsError::Shape("tick_size_change"));
        }
        Ok(Self {
            asset_id: raw.asset_id,
            old_tick: raw.old_tick_size.map(Tick::parse).transpose()?,
            new_tick: Tick::parse(raw.new_tick_size)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fee_curve_matches_protocol_notes_example() {
        // PROTOCOL_NOTES.md §7: 100 shares @0.50 → 1.75 pUSD with rate 0.07, exponent 1.
        let m = MarketParams::default();
        assert!((100.0 * m.taker_fee_per_share(0.5) - 1.75).abs() < 1e-12);
        let m2 = MarketParams {
            fee_exponent: 2.0,
            ..m
        };
        assert!((m2.taker_fee_per_share(0.5) - 0.07 * 0.0625).abs() < 1e-15);
    }

    #[test]
    fn gamma_and_new_market_fields_update_the_defaults() {
        // The recorded Gamma market: tick 0.01, min size 5, fees enabled, no schedule.
        let gamma = br#"{"slug":"btc-updown-5m-1773307200","orderPriceMinTickSize":0.001,"orderMinSize":15,"feesEnabled":true,"feeType":"crypto_fees"}"#;
        let p = MarketParams::default()
            .updated_from_gamma(&GammaParams::parse(gamma).unwrap())
            .unwrap();
        assert_eq!(p.tick_size, Tick::T0_001);
        assert_eq!(p.min_size_shares, 15.0);
        assert_eq!(p.fee_rate, 0.07);
        // new_market (market channel): snake case, strings, a fee schedule.
        let nm = br#"{"event_type":"new_market","order_price_min_tick_size":"0.0025","fees_enabled":true,"fee_schedule":{"exponent":"2","rate":"0.05","taker_only":true}}"#;
        let p = MarketParams::default()
            .updated_from_gamma(&GammaParams::parse(nm).unwrap())
            .unwrap();
        assert_eq!(
            (p.tick_size, p.fee_rate, p.fee_exponent),
            (Tick::T0_0025, 0.05, 2.0)
        );
        let off = br#"{"feesEnabled":false,"feeSchedule":{"exponent":"1","rate":"0.07"}}"#;
        let p = MarketParams::default()
            .updated_from_gamma(&GammaParams::parse(off).unwrap())
            .unwrap();
        assert_eq!(p.fee_rate, 0.0);
        let bad = br#"{"orderPriceMinTickSize":0.02}"#;
        assert!(matches!(
            MarketParams::default().updated_from_gamma(&GammaParams::parse(bad).unwrap()),
            Err(ParamsError::Tick(_))
        ));
        let bad = br#"{"orderMinSize":"-1"}"#;
        assert_eq!(
            MarketParams::default().updated_from_gamma(&GammaParams::parse(bad).unwrap()),
            Err(ParamsError::Field("orderMinSize"))
        );
    }

    #[test]
    fn params_round_trip_through_the_bus_body() {
        let p = MarketParams {
            fee_rate: 0.05,
            fee_exponent: 2.0,
            tick_size: Tick::T0_001,
            min_size_shares: 15.0,
        };
        let body = p.to_body(1_773_307_200, ringbolt_bus::PARAMS_FROM_GAMMA);
        assert_eq!(
            (body.tick_size, body.min_size, body.fee_rate),
            (100_000, 1_500_000_000, 50_000_000_000)
        );
        assert_eq!(MarketParams::default().updated_from_body(&body), Ok(p));
        // A tick-size change moves the tick only.
        let tick = MarketParams::tick_body(1_773_307_200, Tick::T0_0001);
        let q = p.updated_from_body(&tick).unwrap();
        assert_eq!((q.tick_size, q.min_size_shares), (Tick::T0_0001, 15.0));
        let bad = MarketParamsBody {
            tick_size: 2_000_000,
            ..body
        };
        assert_eq!(
            p.updated_from_body(&bad),
            Err(ParamsError::Field("tick_size"))
        );
    }

    #[test]
    fn tick_size_change_events() {
        let raw = br#"{"event_type":"tick_size_change","asset_id":"6581","market":"0xbd","old_tick_size":"0.01","new_tick_size":"0.001","timestamp":"1757908892351"}"#;
        let c = TickSizeChange::parse(raw).unwrap();
        assert_eq!(
            c,
            TickSizeChange {
                asset_id: "6581",
                old_tick: Some(Tick::T0_01),
                new_tick: Tick::T0_001
            }
        );
        assert_eq!(
            MarketParams::default().with_tick(&c).tick_size,
            Tick::T0_001
        );
        let bad = br#"{"event_type":"tick_size_change","asset_id":"1","new_tick_size":"0.02"}"#;
        assert!(matches!(
            TickSizeChange::parse(bad),
            Err(ParamsError::Tick(_))
        ));
        let other = br#"{"event_type":"book","asset_id":"1","new_tick_size":"0.01"}"#;
        assert_eq!(
            TickSizeChange::parse(other),
            Err(ParamsError::Shape("tick_size_change"))
        );
    }
}
