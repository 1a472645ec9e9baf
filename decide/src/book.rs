//! A Polymarket outcome-token order book on a dense price grid.
//!
//! Polymarket prices lie in (0, 1) on a tick of 0.01 or 0.001, so the book is two fixed arrays of
//! [`LEVELS`] sizes indexed by price in 0.001 units: O(1) per level update, no allocation ever,
//! and best-price recovery after a removal is a bounded scan (≤ [`LEVELS`] slots).

use ringbolt_bus::{PRICE_SCALE, Side};

/// Grid slots per side: prices 0.000 ..= 1.000 in steps of 0.001.
pub const LEVELS: usize = 1001;
/// Fixed-point price units per grid slot (0.001 at [`PRICE_SCALE`]).
pub const GRID_UNITS: i64 = PRICE_SCALE / 1000;

/// Why a level update was refused (counted by the caller, never a panic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The price is outside (0, 1) or not on the 0.001 grid.
    #[error("price {0} is not on the 0.001 grid inside (0, 1)")]
    OffGrid(i64),
    /// Negative size.
    #[error("negative size {0}")]
    NegativeSize(i64),
    /// The side byte is neither buy nor sell.
    #[error("side byte {0} is not a book side")]
    BadSide(u8),
}

/// One outcome token's book.
#[derive(Clone, Debug)]
pub struct PolyBook {
    bids: [i64; LEVELS],
    asks: [i64; LEVELS],
    /// Best bid slot, or -1 when the bid side is empty.
    best_bid: i32,
    /// Best ask slot, or `LEVELS` when the ask side is empty.
    best_ask: i32,
    snapshot_seen: bool,
    /// Bus sequence of the last applied update.
    pub last_seq: u64,
    /// Event time of the last applied update (ns).
    pub last_ts_ns: i64,
}

impl Default for PolyBook {
    fn default() -> Self {
        Self::new()
    }
}

impl PolyBook {
    /// An empty book.
    #[must_use]
    pub fn new() -> Self {
        Self {
            bids: [0; LEVELS],
            asks: [0; LEVELS],
            best_bid: -1,
            best_ask: LEVELS as i32,
            snapshot_seen: false,
            last_seq: 0,
            last_ts_ns: 0,
        }
    }

    /// Empties the book (used when its window slot is reused).
    pub fn reset(&mut self) {
        self.bids.fill(0);
        self.asks.fill(0);
        self.best_bid = -1;
        self.best_ask = LEVELS as i32;
        self.snapshot_seen = false;
        self.last_seq = 0;
        self.last_ts_ns = 0;
    }

    /// Clears one side (a snapshot replaces the side it touches).
    pub fn clear_side(&mut self, side: Side) {
        match side {
            Side::Buy => {
                self.bids.fill(0);
                self.best_bid = -1;
            }
            Side::Sell => {
                self.asks.fill(0);
                self.best_ask = LEVELS as i32;
            }
            Side::None => {}
        }
    }

    /// Marks that a full snapshot has been applied (the book is complete from now on).
    pub fn mark_snapshot(&mut self) {
        self.snapshot_seen = true;
    }

    /// Sets the absolute size at `price` on `side` (0 removes the level).
    ///
    /// # Errors
    /// [`BookError`] for an off-grid price, a negative size or a bad side; the book is unchanged.
    pub fn apply(&mut self, side_byte: u8, price: i64, size: i64) -> Result<(), BookError> {
        if price <= 0 || price >= PRICE_SCALE || price % GRID_UNITS != 0 {
            return Err(BookError::OffGrid(price));
        }
        if size < 0 {
            return Err(BookError::NegativeSize(size));
        }
        let slot = (price / GRID_UNITS) as usize;
        debug_assert!(slot > 0 && slot < LEVELS - 1);
        match Side::from_u8(side_byte) {
            Some(Side::Buy) => {
                self.bids[slot] = size;
                let s = slot as i32;
                if size > 0 {
                    self.best_bid = self.best_bid.max(s);
                } else if s == self.best_bid {
                    let mut i = s - 1;
                    while i >= 0 && self.bids[i as usize] == 0 {
                        i -= 1;
                    }
                    self.best_bid = i;
                }
            }
            Some(Side::Sell) => {
                self.asks[slot] = size;
                let s = slot as i32;
                if size > 0 {
                    self.best_ask = self.best_ask.min(s);
                } else if s == self.best_ask {
                    let mut i = s + 1;
                    while (i as usize) < LEVELS && self.asks[i as usize] == 0 {
                        i += 1;
                    }
                    self.best_ask = i;
                }
            }
            _ => return Err(BookError::BadSide(side_byte)),
        }
        Ok(())
    }

    /// Whether a snapshot was applied and both sides are present and uncrossed.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.snapshot_seen
            && self.best_bid >= 0
            && (self.best_ask as usize) < LEVELS
            && self.best_bid < self.best_ask
    }

    /// Best bid (price fixed-point, size fixed-point), `None` when empty.
    #[must_use]
    pub fn best_bid(&self) -> Option<(i64, i64)> {
        (self.best_bid >= 0).then(|| {
            let s = self.best_bid as usize;
            (s as i64 * GRID_UNITS, self.bids[s])
        })
    }

    /// Best ask (price fixed-point, size fixed-point), `None` when empty.
    #[must_use]
    pub fn best_ask(&self) -> Option<(i64, i64)> {
        ((self.best_ask as usize) < LEVELS).then(|| {
            let s = self.best_ask as usize;
            (s as i64 * GRID_UNITS, self.asks[s])
        })
    }

    /// Total bid size (fixed-point) within `band` price units of the best bid, inclusive.
    #[must_use]
    pub fn bid_depth(&self, band: i64) -> i64 {
        if self.best_bid < 0 {
            return 0;
        }
        let lo = (self.best_bid as i64 - band / GRID_UNITS).max(0) as usize;
        self.bids[lo..=self.best_bid as usize].iter().sum()
    }

    /// Total ask size (fixed-point) within `band` price units of the best ask, inclusive.
    #[must_use]
    pub fn ask_depth(&self, band: i64) -> i64 {
        if self.best_ask as usize >= LEVELS {
            return 0;
        }
        let hi = (self.best_ask as i64 + band / GRID_UNITS).min(LEVELS as i64 - 1) as usize;
        self.asks[self.best_ask as usize..=hi].iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: i64 = PRICE_SCALE / 100;

    #[test]
    fn best_prices_follow_updates_and_removals() {
        let mut b = PolyBook::new();
        b.apply(1, 48 * C, 100).unwrap();
        b.apply(1, 47 * C, 50).unwrap();
        b.apply(2, 52 * C, 70).unwrap();
        b.apply(2, 55 * C, 10).unwrap();
        assert!(!b.is_valid(), "no snapshot yet");
        b.mark_snapshot();
        assert!(b.is_valid());
        assert_eq!(b.best_bid(), Some((48 * C, 100)));
        assert_eq!(b.best_ask(), Some((52 * C, 70)));
        b.apply(1, 48 * C, 0).unwrap();
        assert_eq!(b.best_bid(), Some((47 * C, 50)));
        b.apply(2, 52 * C, 0).unwrap();
        assert_eq!(b.best_ask(), Some((55 * C, 10)));
        assert_eq!(b.ask_depth(5 * C), 10);
        b.apply(2, 55 * C, 0).unwrap();
        assert_eq!(b.best_ask(), None);
        assert!(!b.is_valid());
    }

    #[test]
    fn bad_levels_are_refused_without_change() {
        let mut b = PolyBook::new();
        assert_eq!(b.apply(1, 0, 5), Err(BookError::OffGrid(0)));
        assert_eq!(
            b.apply(1, PRICE_SCALE, 5),
            Err(BookError::OffGrid(PRICE_SCALE))
        );
        assert_eq!(b.apply(1, 12_345, 5), Err(BookError::OffGrid(12_345)));
        assert_eq!(b.apply(1, 50 * C, -1), Err(BookError::NegativeSize(-1)));
        assert_eq!(b.apply(9, 50 * C, 1), Err(BookError::BadSide(9)));
        assert_eq!(b.best_bid(), None);
    }
}
