//! The Polymarket order book of one outcome token: fixed arrays indexed by price, no allocation
//! per update.
//!
//! Prices lie in `[0, 1]`; the finest Polymarket tick is 0.0001, so each side is an array of
//! [`LEVELS`] sizes plus an occupancy bitmap. Applying a level is O(1); the best price is found
//! by scanning the bitmap a word at a time (at most [`WORDS`] words).

use ringbolt_bus::{BookLevel, FLAG_BATCH_BEGIN, FLAG_SNAPSHOT, PRICE_SCALE, Record, Side};
use thiserror::Error;

/// Price resolution in [`PRICE_SCALE`] units (0.0001).
pub const TICK_E8: i64 = PRICE_SCALE / 10_000;
/// Price slots per side (0.0000 ..= 1.0000).
pub const LEVELS: usize = 10_001;
/// Bitmap words per side.
pub const WORDS: usize = LEVELS.div_ceil(64);

/// Why a level could not be applied (the book is unchanged).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum BookError {
    /// The price is outside `[0, 1]` or not a multiple of 0.0001.
    #[error("price {0} (1e-8) is not a Polymarket price")]
    Price(i64),
    /// The size is negative.
    #[error("negative size {0}")]
    Size(i64),
    /// The side is neither buy nor sell.
    #[error("book level without a side")]
    Side,
}

#[derive(Clone, Debug)]
struct BookSide {
    sizes: [i64; LEVELS],
    occupied: [u64; WORDS],
    count: u32,
}

impl BookSide {
    const EMPTY: BookSide = BookSide {
        sizes: [0; LEVELS],
        occupied: [0; WORDS],
        count: 0,
    };

    #[inline]
    fn set(&mut self, index: usize, size: i64) {
        let (w, bit) = (index / 64, 1u64 << (index % 64));
        let was = self.occupied[w] & bit != 0;
        self.sizes[index] = size;
        if size == 0 {
            if was {
                self.occupied[w] &= !bit;
                self.count -= 1;
            }
        } else if !was {
            self.occupied[w] |= bit;
            self.count += 1;
        }
    }

    fn clear(&mut self) {
        // Only touch occupied slots.
        for w in 0..WORDS {
            let mut bits = self.occupied[w];
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                self.sizes[i] = 0;
                bits &= bits - 1;
            }
            self.occupied[w] = 0;
        }
        self.count = 0;
    }

    fn highest(&self) -> Option<usize> {
        (0..WORDS)
            .rev()
            .find(|&w| self.occupied[w] != 0)
            .map(|w| w * 64 + 63 - self.occupied[w].leading_zeros() as usize)
    }

    fn lowest(&self) -> Option<usize> {
        (0..WORDS)
            .find(|&w| self.occupied[w] != 0)
            .map(|w| w * 64 + self.occupied[w].trailing_zeros() as usize)
    }
}

/// One outcome token's book.
#[derive(Clone, Debug)]
pub struct PolyBook {
    bids: BookSide,
    asks: BookSide,
    /// Whether a snapshot has been applied since construction or [`PolyBook::invalidate`].
    synced: bool,
    /// Last exchange timestamp applied (ns).
    pub exchange_ts_ns: i64,
}

impl PolyBook {
    /// An empty, unsynchronised book, allocated once on the heap (~160 KiB).
    #[must_use]
    pub fn boxed() -> Box<Self> {
        Box::new(PolyBook {
            bids: BookSide::EMPTY,
            asks: BookSide::EMPTY,
            synced: false,
            exchange_ts_ns: 0,
        })
    }

    /// Whether a snapshot has been applied (and the feed has not been invalidated since).
    #[must_use]
    pub const fn is_synced(&self) -> bool {
        self.synced
    }

    /// Marks the book untrustworthy until the next snapshot (gap, reconnect, stale feed).
    pub fn invalidate(&mut self) {
        self.synced = false;
    }

    /// Removes every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Sets the absolute size at a price (0 removes the level).
    ///
    /// # Errors
    /// [`BookError`] for a price off the grid, a negative size or no side; the book is unchanged.
    #[inline]
    pub fn apply(&mut self, side: Side, price_e8: i64, size_e8: i64) -> Result<(), BookError> {
        if !(0..=PRICE_SCALE).contains(&price_e8) || price_e8 % TICK_E8 != 0 {
            return Err(BookError::Price(price_e8));
        }
        if size_e8 < 0 {
            return Err(BookError::Size(size_e8));
        }
        let index = (price_e8 / TICK_E8) as usize;
        match side {
            Side::Buy => self.bids.set(index, size_e8),
            Side::Sell => self.asks.set(index, size_e8),
            Side::None => return Err(BookError::Side),
        }
        Ok(())
    }

    /// Applies one BookLevel record: a snapshot batch's first record clears the book first and
    /// its records mark the book synchronised; a side-`none` snapshot record only clears.
    ///
    /// # Errors
    /// As [`PolyBook::apply`]; records of other kinds are ignored.
    #[inline]
    pub fn apply_record(&mut self, record: &Record) -> Result<(), BookError> {
        let Some(level) = record.body_as::<BookLevel>() else {
            return Ok(());
        };
        if record.has_flags(FLAG_SNAPSHOT) {
            if record.has_flags(FLAG_BATCH_BEGIN) {
                self.clear();
            }
            self.synced = true;
            if level.side == Side::None as u8 {
                return Ok(());
            }
        }
        self.exchange_ts_ns = record.exchange_ts_ns;
        let side = Side::from_u8(level.side).ok_or(BookError::Side)?;
        self.apply(side, level.price, level.size)
    }

    /// Best bid `(price_e8, size_e8)`.
    #[must_use]
    pub fn best_bid(&self) -> Option<(i64, i64)> {
        self.bids
            .highest()
            .map(|i| (i as i64 * TICK_E8, self.bids.sizes[i]))
    }

    /// Best ask `(price_e8, size_e8)`.
    #[must_use]
    pub fn best_ask(&self) -> Option<(i64, i64)> {
        self.asks
            .lowest()
            .map(|i| (i as i64 * TICK_E8, self.asks.sizes[i]))
    }

    /// Number of price levels on a side.
    #[must_use]
    pub const fn depth(&self, side: Side) -> u32 {
        match side {
            Side::Buy => self.bids.count,
            Side::Sell => self.asks.count,
            Side::None => 0,
        }
    }

    /// Size at a price on a side (0 when empty or off the grid).
    #[must_use]
    pub fn size_at(&self, side: Side, price_e8: i64) -> i64 {
        if !(0..=PRICE_SCALE).contains(&price_e8) || price_e8 % TICK_E8 != 0 {
            return 0;
        }
        let i = (price_e8 / TICK_E8) as usize;
        match side {
            Side::Buy => self.bids.sizes[i],
            Side::Sell => self.asks.sizes[i],
            Side::None => 0,
        }
    }

    /// Total size on a side, [`ringbolt_bus::SIZE_SCALE`].
    #[must_use]
    pub fn total(&self, side: Side) -> i128 {
        let s = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
            Side::None => return 0,
        };
        s.sizes.iter().map(|&v| i128::from(v)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_best_and_delete() {
        let mut b = PolyBook::boxed();
        b.apply(Side::Buy, 48_000_000, 30 * PRICE_SCALE).unwrap();
        b.apply(Side::Buy, 50_000_000, 15 * PRICE_SCALE).unwrap();
        b.apply(Side::Sell, 52_000_000, 25 * PRICE_SCALE).unwrap();
        b.apply(Side::Sell, 99_900_000, 1).unwrap();
        assert_eq!(b.best_bid(), Some((50_000_000, 15 * PRICE_SCALE)));
        assert_eq!(b.best_ask(), Some((52_000_000, 25 * PRICE_SCALE)));
        b.apply(Side::Buy, 50_000_000, 0).unwrap();
        assert_eq!(b.best_bid(), Some((48_000_000, 30 * PRICE_SCALE)));
        assert_eq!(b.depth(Side::Buy), 1);
        assert_eq!(
            b.apply(Side::Buy, 48_000_001, 1),
            Err(BookError::Price(48_000_001))
        );
        assert_eq!(
            b.apply(Side::Buy, PRICE_SCALE + TICK_E8, 1),
            Err(BookError::Price(PRICE_SCALE + TICK_E8))
        );
        assert_eq!(b.apply(Side::Buy, 0, -1), Err(BookError::Size(-1)));
        b.apply(Side::Buy, 0, 5).unwrap();
        b.apply(Side::Sell, PRICE_SCALE, 5).unwrap();
        b.clear();
        assert_eq!((b.best_bid(), b.best_ask()), (None, None));
    }
}
