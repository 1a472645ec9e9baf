//! P&L per window, per day and in total, from [`Fill`] and [`Settlement`] records only (the
//! archive's `fills` and `settlements` tables hold exactly these records, so the same numbers
//! can be recomputed from them with plain SQL: `docs/analysis.md`).
//!
//! Per window: `pnl = sold − bought − fees + payout`, where bought/sold are `Σ price × size` of
//! the window's **confirmed** fills by side (a provisional fill is not final, a failed one is
//! reverted), fees are `Σ fee_usdc` of those fills (a maker rebate is negative) and payout is
//! `Σ payout_usdc` of the window's settlements. `realised` is the P&L of settled windows. All
//! sums are exact in fixed point (10⁻⁸ USDC) and reported in USDC.

use std::collections::{BTreeMap, BTreeSet};

use ringbolt_bus::{Fill, PRICE_SCALE, Record, SIZE_SCALE, Settlement, Side};
use ringbolt_market::time::civil_from_days;
use serde::Serialize;

/// Sums of one window (or day, or the total), fixed point.
#[derive(Clone, Debug, Default)]
struct Sums {
    orders: BTreeSet<u64>,
    fills: u64,
    shares_e8: i128,
    bought_e16: i128,
    sold_e16: i128,
    fees_e8: i128,
    payout_e8: i128,
    settled: bool,
}

/// One row of the P&L report, in USDC and shares.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PnlRow {
    /// Window start (s), or 0 for day and total rows.
    pub window_start_s: i64,
    /// Orders with at least one confirmed fill.
    pub orders: u64,
    /// Confirmed fills.
    pub fills: u64,
    /// Shares filled (both sides).
    pub shares: f64,
    /// `Σ price × size` of buys (USDC).
    pub bought_usdc: f64,
    /// `Σ price × size` of sells (USDC).
    pub sold_usdc: f64,
    /// Fees paid (USDC; maker rebates negative).
    pub fees_usdc: f64,
    /// Settlement payouts (USDC).
    pub payout_usdc: f64,
    /// `sold − bought − fees + payout` (USDC).
    pub pnl_usdc: f64,
    /// Whether the window was settled (for day and total rows: all of them).
    pub settled: bool,
}

/// The P&L report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PnlReport {
    /// One row per window with a fill or a settlement, by window start.
    pub windows: Vec<PnlRow>,
    /// One row per UTC date of the window starts (`YYYY-MM-DD`).
    pub days: BTreeMap<String, PnlRow>,
    /// All windows.
    pub total: PnlRow,
    /// P&L of the settled windows (USDC).
    pub realised_usdc: f64,
}

/// Accumulates fills and settlements.
#[derive(Clone, Debug, Default)]
pub struct Pnl {
    windows: BTreeMap<i64, Sums>,
}

/// `YYYY-MM-DD` (UTC) of a time in seconds.
fn utc_date(s: i64) -> String {
    let (y, m, d) = civil_from_days(s.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

fn usdc(e8: i128) -> f64 {
    e8 as f64 / PRICE_SCALE as f64
}

impl Pnl {
    /// Adds a record (fills and settlements count; anything else is ignored).
    pub fn add(&mut self, rec: &Record) {
        if let Some(f) = rec.body_as::<Fill>() {
            if f.status != 2 {
                return;
            }
            let w = self.windows.entry(f.window_start_s).or_default();
            w.orders.insert(f.client_order_id);
            w.fills += 1;
            w.shares_e8 += i128::from(f.size);
            let notional = i128::from(f.price) * i128::from(f.size);
            if f.side == Side::Sell as u8 {
                w.sold_e16 += notional;
            } else {
                w.bought_e16 += notional;
            }
            w.fees_e8 += i128::from(f.fee_usdc);
        } else if let Some(s) = rec.body_as::<Settlement>() {
            let w = self.windows.entry(s.window_start_s).or_default();
            w.payout_e8 += i128::from(s.payout_usdc);
            w.settled = true;
        }
    }

    fn row(start: i64, s: &Sums) -> PnlRow {
        let scale = i128::from(SIZE_SCALE);
        let pnl_e16 = s.sold_e16 - s.bought_e16 + (s.payout_e8 - s.fees_e8) * scale;
        PnlRow {
            window_start_s: start,
            orders: s.orders.len() as u64,
            fills: s.fills,
            shares: s.shares_e8 as f64 / SIZE_SCALE as f64,
            bought_usdc: usdc(s.bought_e16 / scale),
            sold_usdc: usdc(s.sold_e16 / scale),
            fees_usdc: usdc(s.fees_e8),
            payout_usdc: usdc(s.payout_e8),
            pnl_usdc: usdc(pnl_e16 / scale),
            settled: s.settled,
        }
    }

    fn merge(into: &mut Sums, s: &Sums, first: bool) {
        into.orders.extend(s.orders.iter().copied());
        into.fills += s.fills;
        into.shares_e8 += s.shares_e8;
        into.bought_e16 += s.bought_e16;
        into.sold_e16 += s.sold_e16;
        into.fees_e8 += s.fees_e8;
        into.payout_e8 += s.payout_e8;
        into.settled = (first || into.settled) && s.settled;
    }

    /// The report.
    #[must_use]
    pub fn report(&self) -> PnlReport {
        let mut days: BTreeMap<String, Sums> = BTreeMap::new();
        let mut total = Sums::default();
        let mut settled = Sums::default();
        for (i, (start, s)) in self.windows.iter().enumerate() {
            let day = utc_date(*start);
            let first = !days.contains_key(&day);
            Self::merge(days.entry(day).or_default(), s, first);
            Self::merge(&mut total, s, i == 0);
            if s.settled {
                Self::merge(&mut settled, s, false);
            }
        }
        PnlReport {
            windows: self.windows.iter().map(|(w, s)| Self::row(*w, s)).collect(),
            days: days
                .iter()
                .map(|(d, s)| (d.clone(), Self::row(0, s)))
                .collect(),
            total: Self::row(0, &total),
            realised_usdc: Self::row(0, &settled).pnl_usdc,
        }
    }
}

#[cfg(test)]
mod tests {
    use ringbolt_bus::Venue;

    use super::*;

    fn fill(
        window: i64,
        order: u64,
        side: Side,
        price: i64,
        size: i64,
        fee: i64,
        status: u8,
    ) -> Record {
        let body = Fill {
            ts_ns: 0,
            client_order_id: order,
            price,
            size,
            fee_usdc: fee,
            window_start_s: window,
            trade_id: [0; 16],
            side: side as u8,
            liquidity: 2,
            status,
            paper: 1,
            outcome: 0,
            reserved: [0; 11],
        };
        Record::new(Venue::Internal, 2, 0, &body)
    }

    fn settlement(window: i64, payout: i64) -> Record {
        let body = Settlement {
            window_start_s: window,
            start_price: 1,
            end_price: 2,
            shares: payout,
            payout_usdc: payout,
            outcome: 0,
            token_outcome: 0,
            source: Venue::ChainlinkRtds as u8,
            paper: 1,
            reserved: [0; 36],
        };
        Record::new(Venue::Internal, 2, 0, &body)
    }

    #[test]
    fn pnl_is_sold_minus_bought_minus_fees_plus_payout_per_window_and_day() {
        const E8: i64 = 100_000_000;
        let w1 = 1_773_307_200;
        let w2 = w1 + 300;
        let mut p = Pnl::default();
        // w1: buy 10 @0.40 and 5 @0.41 (fees 0.168 + 0.0861), a provisional and a failed fill
        // ignored, 15 shares win: 15 − 4 − 2.05 − 0.2541 = 8.6959.
        p.add(&fill(w1, 1, Side::Buy, 40_000_000, 10 * E8, 16_800_000, 2));
        p.add(&fill(w1, 1, Side::Buy, 41_000_000, 5 * E8, 8_610_000, 2));
        p.add(&fill(w1, 2, Side::Buy, 41_000_000, 5 * E8, 8_610_000, 1));
        p.add(&fill(w1, 2, Side::Buy, 41_000_000, 5 * E8, 8_610_000, 3));
        p.add(&settlement(w1, 15 * E8));
        // w2: buy 10 @0.70 as maker (rebate −0.0294), sell 4 @0.75, unsettled.
        p.add(&fill(w2, 3, Side::Buy, 70_000_000, 10 * E8, -2_940_000, 2));
        p.add(&fill(w2, 4, Side::Sell, 75_000_000, 4 * E8, 0, 2));
        let r = p.report();
        assert_eq!(r.windows.len(), 2);
        let a = &r.windows[0];
        assert_eq!((a.orders, a.fills, a.shares), (1, 2, 15.0));
        assert_eq!(
            (a.bought_usdc, a.fees_usdc, a.payout_usdc),
            (6.05, 0.2541, 15.0)
        );
        assert!((a.pnl_usdc - 8.6959).abs() < 1e-9 && a.settled);
        let b = &r.windows[1];
        assert!((b.pnl_usdc - (3.0 - 7.0 + 0.0294)).abs() < 1e-9 && !b.settled);
        assert!((r.total.pnl_usdc - (8.6959 - 3.9706)).abs() < 1e-9);
        assert!(!r.total.settled);
        assert!((r.realised_usdc - 8.6959).abs() < 1e-9);
        assert_eq!(r.days.len(), 1);
        assert_eq!(r.days.values().next().unwrap().fills, 4);
    }
}
