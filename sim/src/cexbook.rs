//! A centralised exchange's BTC order book driven by the shared market: a [`Ladder`] repriced
//! around the venue's view of the price each step, with an occasional taker order against the
//! top level. Venue modules encode its level changes and fills in their own wire format.
//! Prices are integers in cents (on the venue's tick grid), quantities in the venue's smallest
//! size unit.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::ladder::{Change, Ladder, LadderParams, Side};

/// A taker order filled against the top of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// The taker bought (lifted the ask).
    pub taker_buy: bool,
    /// Price, cents.
    pub price: i64,
    /// Total quantity, size units.
    pub qty: i64,
    /// Number of maker orders matched (individual trades).
    pub trades: u32,
}

/// Shape of one venue's book.
#[derive(Debug, Clone, Copy)]
pub struct BookShape {
    /// Price tick, cents.
    pub tick_cents: i64,
    /// Levels kept per side.
    pub depth: usize,
    /// Level size range, size units.
    pub qty_min: i64,
    /// Largest level size, size units.
    pub qty_max: i64,
    /// Largest taker order, size units.
    pub trade_max: i64,
}

/// One venue's book.
#[derive(Debug, Clone)]
pub struct CexBook {
    ladder: Ladder,
    params: LadderParams,
    trade_max: i64,
}

impl CexBook {
    /// An empty book of `shape`.
    pub fn new(shape: BookShape) -> Self {
        Self {
            ladder: Ladder::default(),
            params: LadderParams {
                depth: shape.depth,
                step: shape.tick_cents,
                max_gap_ticks: 3,
                qty_min: shape.qty_min,
                qty_max: shape.qty_max,
                perturb: 4,
                lo: shape.tick_cents,
                hi: i64::MAX / 4,
            },
            trade_max: shape.trade_max.max(1),
        }
    }

    /// Reprice around `mid_usd` and, with probability `trade_prob`, fill one taker order at
    /// the top. Returns the level changes (bids best-first, then asks) and the fill.
    pub fn step(
        &mut self,
        mid_usd: f64,
        trade_prob: f64,
        rng: &mut ChaCha8Rng,
    ) -> (Vec<Change>, Option<Fill>) {
        let step = self.params.step;
        let mid_cents = (mid_usd * 100.0).round() as i64;
        let bid = mid_cents.div_euclid(step) * step;
        let mut changes = self.ladder.reprice(bid, bid + step, &self.params, rng);
        if !rng.random_bool(trade_prob.clamp(0.0, 1.0)) {
            return (changes, None);
        }
        let taker_buy = rng.random_bool(0.5);
        let (side, level) = if taker_buy {
            (Side::Ask, self.ladder.best_ask())
        } else {
            (Side::Bid, self.ladder.best_bid())
        };
        let Some((price, avail)) = level else {
            return (changes, None);
        };
        let qty = rng.random_range(1..=self.trade_max).min(avail);
        if qty <= 0 {
            return (changes, None);
        }
        self.ladder.fill(side, price, qty, &mut changes);
        let fill = Fill {
            taker_buy,
            price,
            qty,
            trades: rng.random_range(1..=3),
        };
        (changes, Some(fill))
    }

    /// Best bid and ask `(bid, bid_qty, ask, ask_qty)`.
    pub fn top(&self) -> Option<(i64, i64, i64, i64)> {
        let (b, bq) = self.ladder.best_bid()?;
        let (a, aq) = self.ladder.best_ask()?;
        Some((b, bq, a, aq))
    }

    /// Up to `limit` levels of `side`, best first.
    pub fn levels(&self, side: Side, limit: usize) -> Vec<(i64, i64)> {
        match side {
            Side::Bid => self
                .ladder
                .bids
                .iter()
                .rev()
                .take(limit)
                .map(|(p, q)| (*p, *q))
                .collect(),
            Side::Ask => self
                .ladder
                .asks
                .iter()
                .take(limit)
                .map(|(p, q)| (*p, *q))
                .collect(),
        }
    }
}

/// `[price, qty]` string pairs of `changes` on `side`, in order.
pub fn pairs(
    changes: &[Change],
    side: Side,
    px: impl Fn(i64) -> String,
    qty: impl Fn(i64) -> String,
) -> Vec<[String; 2]> {
    changes
        .iter()
        .filter(|c| c.side == side)
        .map(|c| [px(c.price), qty(c.qty)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn book_stays_on_its_tick_grid_uncrossed_and_fills_at_the_top() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut book = CexBook::new(BookShape {
            tick_cents: 10,
            depth: 50,
            qty_min: 1,
            qty_max: 5_000,
            trade_max: 2_000,
        });
        let mut fills = 0;
        for i in 0..2_000 {
            let mid = 97_000.0 + f64::from(i % 200) * 0.37;
            let before = book.top();
            let (changes, fill) = book.step(mid, 0.3, &mut rng);
            assert!(changes.iter().all(|c| c.price % 10 == 0));
            let (b, _, a, _) = book.top().unwrap();
            assert!(b < a);
            if let (Some(f), Some((pb, _, pa, _))) = (fill, before) {
                fills += 1;
                assert!(f.qty > 0);
                // The fill is at this step's repriced top, which is within a tick of the mid.
                assert!(
                    (f.price - (mid * 100.0) as i64).abs() <= 20,
                    "{f:?} {pb} {pa}"
                );
            }
        }
        assert!(fills > 400, "{fills}");
    }
}
