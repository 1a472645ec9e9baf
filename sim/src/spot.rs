//! A spot venue's BTC/USD book and taker prints, shared by the Gemini and Bitstamp emulations:
//! a [`Ladder`] in cents × 1e-8 BTC repriced around the venue's (lagged, noisy) view of the true
//! price, and now and then one taker order against the best level.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::ladder::{Change, Ladder, LadderParams, Side};

/// Ladder shape of both spot venues (cents, 1e-8 BTC).
pub const PARAMS: LadderParams = LadderParams {
    depth: 60,
    step: 1,
    max_gap_ticks: 8,
    qty_min: 10_000,
    qty_max: 60_000_000,
    perturb: 3,
    lo: 1,
    hi: i64::MAX / 4,
};

/// Levels as `(price_cents, qty_e8)`, best first.
pub type Levels = Vec<(i64, i64)>;

/// One taker print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Print {
    /// Price, cents.
    pub price_cents: i64,
    /// Size, 1e-8 BTC.
    pub size_e8: i64,
    /// The taker bought (lifted the ask).
    pub taker_buys: bool,
}

/// What one market step did to the book.
#[derive(Debug, Default)]
pub struct StepOut {
    /// Level changes (absolute quantities, 0 = removed), bids first.
    pub changes: Vec<Change>,
    /// A taker print, if one happened.
    pub print: Option<Print>,
}

/// The book of one spot venue.
#[derive(Debug, Default)]
pub struct SpotBook {
    /// The levels.
    pub book: Ladder,
}

impl SpotBook {
    /// Reprices around `mid_usd` and, with probability `trade_prob`, prints one taker order
    /// against the best level (the fill's level change is merged into the changes).
    pub fn step(&mut self, mid_usd: f64, trade_prob: f64, rng: &mut ChaCha8Rng) -> StepOut {
        let mid_cents = (mid_usd * 100.0).round() as i64;
        let mut changes = self.book.reprice(mid_cents, mid_cents + 1, &PARAMS, rng);
        let mut print = None;
        if rng.random_bool(trade_prob.clamp(0.0, 1.0)) {
            let taker_buys = rng.random_bool(0.5);
            let (maker, level) = if taker_buys {
                (Side::Ask, self.book.best_ask())
            } else {
                (Side::Bid, self.book.best_bid())
            };
            if let Some((price_cents, avail)) = level {
                let size_e8 = rng.random_range(10_000..=5_000_000).min(avail);
                self.book.fill(maker, price_cents, size_e8, &mut changes);
                print = Some(Print {
                    price_cents,
                    size_e8,
                    taker_buys,
                });
            }
        }
        StepOut { changes, print }
    }

    /// Bids best first, then asks best first, as `(price_cents, qty_e8)`.
    pub fn sides(&self) -> (Levels, Levels) {
        (
            self.book.bids.iter().rev().map(|(p, q)| (*p, *q)).collect(),
            self.book.asks.iter().map(|(p, q)| (*p, *q)).collect(),
        )
    }
}
