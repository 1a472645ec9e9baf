//! The Polymarket order book of one outcome token, on the 0.0001 grid that holds every tick.
//!
//! Each side is an array of [`GRID_LEVELS`] sizes indexed by `price / GRID_E8` (allocated once,
//! at construction) plus an occupancy bitmap, and the best price of each side is cached:
//! applying a level is O(1) and allocation-free, reading the best price is O(1), and when the
//! best level is removed the next one is found by scanning the bitmap a word (64 prices) at a
//! time from the removed level. Depth within a band and level iteration also walk the bitmap,
//! touching only occupied prices.
//!
//! The book stores what the venue sends; it does not know the market's current [`Tick`]
//! (a price on any tick is a grid price). Whether an order price is valid for the tick is
//! [`Tick::check`].
//!
//! [`Tick`]: crate::tick::Tick
//! [`Tick::check`]: crate::tick::Tick::check

use core::fmt;

use ringbolt_bus::{BookLevel, FLAG_BATCH_BEGIN, FLAG_SNAPSHOT, PRICE_SCALE, Record, Side};
use thiserror::Error;

use crate::tick::{GRID_E8, GRID_LEVELS, on_grid};

/// Bitmap words per side.
const WORDS: usize = GRID_LEVELS.div_ceil(64);
/// Best-bid slot of an empty bid side: slot 0 (price 0) never holds a level.
const NO_BID: usize = 0;
/// Best-ask slot of an empty ask side: the last slot (price 1) never holds a level.
const NO_ASK: usize = GRID_LEVELS - 1;

/// Why a level was refused (the book is unchanged; callers count it, never panic).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum BookError {
    /// The price is outside (0, 1) or not a multiple of 0.0001.
    #[error("price {0} (1e-8) is not on the 0.0001 grid inside (0, 1)")]
    OffGrid(i64),
    /// The size is negative.
    #[error("negative size {0}")]
    NegativeSize(i64),
    /// The side byte is neither buy nor sell.
    #[error("side byte {0} is not a book side")]
    BadSide(u8),
}

#[derive(Clone)]
struct BookSide {
    /// Size per grid slot ([`GRID_LEVELS`] entries, heap-allocated once).
    sizes: Box<[i64]>,
    occupied: [u64; WORDS],
    count: u32,
    /// Bitmap words that may be non-zero: `words.0..words.1` (empty when `0 >= 1`); every
    /// occupied bit lies inside, so [`BookSide::clear`] visits only these words.
    words: (usize, usize),
}

impl BookSide {
    fn new() -> Self {
        Self {
            sizes: vec![0; GRID_LEVELS].into_boxed_slice(),
            occupied: [0; WORDS],
            count: 0,
            words: (WORDS, 0),
        }
    }

    #[inline]
    fn is_set(&self, index: usize) -> bool {
        self.occupied[index / 64] & (1 << (index % 64)) != 0
    }

    /// Contract: `index < GRID_LEVELS`, `size >= 0` (checked by the callers); afterwards the slot
    /// holds `size`, its occupied bit says `size > 0`, and `count` is the number of set bits.
    #[inline]
    fn set(&mut self, index: usize, size: i64) {
        debug_assert!(index < GRID_LEVELS && size >= 0);
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
            self.words = (self.words.0.min(w), self.words.1.max(w + 1));
        }
        debug_assert_eq!(self.is_set(index), size > 0);
        debug_assert!(self.count as usize <= GRID_LEVELS);
    }

    fn clear(&mut self) {
        for w in self.words.0..self.words.1 {
            let mut bits = self.occupied[w];
            while bits != 0 {
                self.sizes[w * 64 + bits.trailing_zeros() as usize] = 0;
                bits &= bits - 1;
            }
            self.occupied[w] = 0;
        }
        debug_assert!(
            self.occupied.iter().all(|&w| w == 0),
            "a level outside the words"
        );
        self.count = 0;
        self.words = (WORDS, 0);
    }

    /// The highest occupied slot `<= index`.
    fn highest_at_or_below(&self, index: usize) -> Option<usize> {
        let w = index / 64;
        let masked = self.occupied[w] & (u64::MAX >> (63 - index % 64));
        if masked != 0 {
            return Some(w * 64 + 63 - masked.leading_zeros() as usize);
        }
        // Words outside `self.words` are zero.
        (self.words.0.min(w)..w)
            .rev()
            .find(|&w| self.occupied[w] != 0)
            .map(|w| w * 64 + 63 - self.occupied[w].leading_zeros() as usize)
    }

    /// The lowest occupied slot `>= index`.
    fn lowest_at_or_above(&self, index: usize) -> Option<usize> {
        let w = index / 64;
        let masked = self.occupied[w] & (u64::MAX << (index % 64));
        if masked != 0 {
            return Some(w * 64 + masked.trailing_zeros() as usize);
        }
        (w + 1..self.words.1.max(w + 1))
            .find(|&w| self.occupied[w] != 0)
            .map(|w| w * 64 + self.occupied[w].trailing_zeros() as usize)
    }

    /// Sum of the sizes in slots `lo..=hi`, visiting occupied slots only.
    fn sum(&self, lo: usize, hi: usize) -> i64 {
        let mut total = 0;
        for w in lo / 64..=hi / 64 {
            let mut bits = self.occupied[w];
            if w == lo / 64 {
                bits &= u64::MAX << (lo % 64);
            }
            if w == hi / 64 {
                bits &= u64::MAX >> (63 - hi % 64);
            }
            while bits != 0 {
                total += self.sizes[w * 64 + bits.trailing_zeros() as usize];
                bits &= bits - 1;
            }
        }
        total
    }
}

/// One outcome token's book: the only Polymarket book of ringbolt (collector checks, decision
/// core, benches).
#[derive(Clone)]
pub struct PolyBook {
    bids: BookSide,
    asks: BookSide,
    /// Best bid slot, [`NO_BID`] when the side is empty.
    best_bid: usize,
    /// Best ask slot, [`NO_ASK`] when the side is empty.
    best_ask: usize,
    /// Whether a complete snapshot was applied since construction, [`PolyBook::reset`] or
    /// [`PolyBook::invalidate`].
    synced: bool,
    /// Bus sequence of the last applied update (set by the caller, or by
    /// [`PolyBook::apply_record`]).
    pub last_seq: u64,
    /// Time of the last applied update (ns): the caller's event time, or the record's exchange
    /// stamp with [`PolyBook::apply_record`].
    pub last_ts_ns: i64,
}

impl Default for PolyBook {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PolyBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolyBook")
            .field("best_bid", &self.best_bid())
            .field("best_ask", &self.best_ask())
            .field("bid_levels", &self.bids.count)
            .field("ask_levels", &self.asks.count)
            .field("synced", &self.synced)
            .field("last_seq", &self.last_seq)
            .field("last_ts_ns", &self.last_ts_ns)
            .finish()
    }
}

#[inline]
fn price_of(index: usize) -> i64 {
    index as i64 * GRID_E8
}

/// The grid slot of a level that keeps [`PolyBook::apply`]'s contract (price before size).
#[inline]
fn checked_index(price_e8: i64, size_e8: i64) -> Result<usize, BookError> {
    if !on_grid(price_e8) {
        return Err(BookError::OffGrid(price_e8));
    }
    if size_e8 < 0 {
        return Err(BookError::NegativeSize(size_e8));
    }
    let index = (price_e8 / GRID_E8) as usize;
    debug_assert!(
        index > NO_BID && index < NO_ASK,
        "grid price {price_e8} on a sentinel slot"
    );
    Ok(index)
}

impl PolyBook {
    /// An empty, unsynchronised book. Allocates its two grids (~80 KiB each, zeroed pages)
    /// here and never again.
    #[must_use]
    pub fn new() -> Self {
        Self {
            bids: BookSide::new(),
            asks: BookSide::new(),
            best_bid: NO_BID,
            best_ask: NO_ASK,
            synced: false,
            last_seq: 0,
            last_ts_ns: 0,
        }
    }

    /// Sets the absolute size at a price (0 removes the level).
    ///
    /// Contract: `price_e8` is a grid price ([`on_grid`]: a multiple of 0.0001 strictly inside
    /// (0, 1)), `size_e8 >= 0`, `side` is buy or sell. Input that breaks it is refused with a
    /// [`BookError`] (price checked first, then size, then side) and leaves the book
    /// unchanged; it never panics on input. O(1) except when the best level is removed (bitmap
    /// scan). Invariants kept (debug-asserted): the best bid / ask is an occupied level, is the
    /// highest / lowest one, and is "none" exactly when its side is empty.
    ///
    /// # Errors
    /// [`BookError`] as above.
    #[inline]
    pub fn apply(&mut self, side: Side, price_e8: i64, size_e8: i64) -> Result<(), BookError> {
        let index = checked_index(price_e8, size_e8)?;
        match side {
            Side::Buy => self.set_bid(index, size_e8),
            Side::Sell => self.set_ask(index, size_e8),
            Side::None => return Err(BookError::BadSide(Side::None as u8)),
        }
        Ok(())
    }

    /// [`PolyBook::apply`] for a bus [`BookLevel`] (side as its byte).
    ///
    /// # Errors
    /// As [`PolyBook::apply`]; [`BookError::BadSide`] carries the byte.
    #[inline]
    pub fn apply_level(&mut self, level: &BookLevel) -> Result<(), BookError> {
        let index = checked_index(level.price, level.size)?;
        match Side::from_u8(level.side) {
            Some(Side::Buy) => self.set_bid(index, level.size),
            Some(Side::Sell) => self.set_ask(index, level.size),
            _ => return Err(BookError::BadSide(level.side)),
        }
        Ok(())
    }

    #[inline]
    fn set_bid(&mut self, index: usize, size: i64) {
        self.bids.set(index, size);
        if size > 0 {
            self.best_bid = self.best_bid.max(index);
        } else if index == self.best_bid {
            self.best_bid = self.bids.highest_at_or_below(index - 1).unwrap_or(NO_BID);
        }
        debug_assert!(self.best_bid == NO_BID || self.bids.is_set(self.best_bid));
        debug_assert_eq!(self.best_bid == NO_BID, self.bids.count == 0);
        debug_assert!(
            size == 0 || self.best_bid >= index,
            "best bid below a live bid"
        );
    }

    #[inline]
    fn set_ask(&mut self, index: usize, size: i64) {
        self.asks.set(index, size);
        if size > 0 {
            self.best_ask = self.best_ask.min(index);
        } else if index == self.best_ask {
            self.best_ask = self.asks.lowest_at_or_above(index + 1).unwrap_or(NO_ASK);
        }
        debug_assert!(self.best_ask == NO_ASK || self.asks.is_set(self.best_ask));
        debug_assert_eq!(self.best_ask == NO_ASK, self.asks.count == 0);
        debug_assert!(
            size == 0 || self.best_ask <= index,
            "best ask above a live ask"
        );
    }

    /// Applies one BookLevel record as the collector's check does: a snapshot batch's first
    /// record clears the whole book, every snapshot record marks the book synchronised, and a
    /// side-`none` snapshot record (an empty book) only clears. Sets `last_seq` and
    /// `last_ts_ns` (exchange stamp). Records of other kinds are ignored.
    ///
    /// # Errors
    /// As [`PolyBook::apply_level`].
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
        self.last_seq = record.seq;
        self.last_ts_ns = record.exchange_ts_ns;
        self.apply_level(&level)
    }

    /// Removes every level of one side (a snapshot replaces the side it lists).
    pub fn clear_side(&mut self, side: Side) {
        match side {
            Side::Buy => {
                self.bids.clear();
                self.best_bid = NO_BID;
            }
            Side::Sell => {
                self.asks.clear();
                self.best_ask = NO_ASK;
            }
            Side::None => {}
        }
    }

    /// Removes every level (the synchronisation state is kept).
    pub fn clear(&mut self) {
        self.clear_side(Side::Buy);
        self.clear_side(Side::Sell);
    }

    /// Empties the book for reuse: no levels, unsynchronised, `last_seq`/`last_ts_ns` 0.
    /// Touches occupied slots only; never allocates.
    pub fn reset(&mut self) {
        self.clear();
        self.synced = false;
        self.last_seq = 0;
        self.last_ts_ns = 0;
    }

    /// Marks that a complete snapshot has been applied (the book is trusted from now on).
    pub fn mark_snapshot(&mut self) {
        self.synced = true;
    }

    /// Marks the book untrustworthy until the next snapshot (gap, reconnect, stale feed).
    pub fn invalidate(&mut self) {
        self.synced = false;
    }

    /// Whether a snapshot has been applied (and the book not invalidated since).
    #[must_use]
    pub const fn is_synced(&self) -> bool {
        self.synced
    }

    /// Whether the book can be priced from: synchronised, both sides present, uncrossed.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.synced
            && self.best_bid != NO_BID
            && self.best_ask != NO_ASK
            && self.best_bid < self.best_ask
    }

    /// Best bid `(price_e8, size_e8)`.
    #[must_use]
    #[inline]
    pub fn best_bid(&self) -> Option<(i64, i64)> {
        let i = self.best_bid;
        (i != NO_BID).then(|| (price_of(i), self.bids.sizes[i]))
    }

    /// Best ask `(price_e8, size_e8)`.
    #[must_use]
    #[inline]
    pub fn best_ask(&self) -> Option<(i64, i64)> {
        let i = self.best_ask;
        (i != NO_ASK).then(|| (price_of(i), self.asks.sizes[i]))
    }

    /// Mid price as a probability, `0.5 × (bid + ask)`, when both sides exist.
    #[must_use]
    pub fn mid(&self) -> Option<f64> {
        let (b, _) = self.best_bid()?;
        let (a, _) = self.best_ask()?;
        Some(0.5 * (b as f64 / PRICE_SCALE as f64 + a as f64 / PRICE_SCALE as f64))
    }

    /// Number of price levels on a side.
    #[must_use]
    pub const fn level_count(&self, side: Side) -> u32 {
        match side {
            Side::Buy => self.bids.count,
            Side::Sell => self.asks.count,
            Side::None => 0,
        }
    }

    /// Size at a price on a side (0 when empty or not a grid price).
    #[must_use]
    pub fn size_at(&self, side: Side, price_e8: i64) -> i64 {
        if !on_grid(price_e8) {
            return 0;
        }
        let i = (price_e8 / GRID_E8) as usize;
        match side {
            Side::Buy => self.bids.sizes[i],
            Side::Sell => self.asks.sizes[i],
            Side::None => 0,
        }
    }

    /// Total size of the levels within `band_e8` of the side's best price, inclusive (bids:
    /// `[best − band, best]`, asks: `[best, best + band]`); 0 for an empty side.
    #[must_use]
    pub fn depth_within(&self, side: Side, band_e8: i64) -> i64 {
        let band = (band_e8.max(0) / GRID_E8) as usize;
        match side {
            Side::Buy if self.best_bid != NO_BID => {
                let b = self.best_bid;
                self.bids.sum(b.saturating_sub(band), b)
            }
            Side::Sell if self.best_ask != NO_ASK => {
                let a = self.best_ask;
                self.asks.sum(a, (a + band).min(GRID_LEVELS - 1))
            }
            _ => 0,
        }
    }

    /// Total size on a side.
    #[must_use]
    pub fn total(&self, side: Side) -> i128 {
        let s = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
            Side::None => return 0,
        };
        let mut total = 0i128;
        for (w, &word) in s.occupied.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                total += i128::from(s.sizes[w * 64 + bits.trailing_zeros() as usize]);
                bits &= bits - 1;
            }
        }
        total
    }

    /// The levels of a side best first, `(price_e8, size_e8)` (top-N: `.take(n)`).
    pub fn levels(&self, side: Side) -> Levels<'_> {
        let next = match side {
            Side::Buy => (self.best_bid != NO_BID).then_some(self.best_bid),
            Side::Sell => (self.best_ask != NO_ASK).then_some(self.best_ask),
            Side::None => None,
        };
        Levels {
            book: self,
            bids: side == Side::Buy,
            next,
        }
    }
}

/// Iterator over one side's levels, best first ([`PolyBook::levels`]).
#[derive(Debug)]
pub struct Levels<'a> {
    book: &'a PolyBook,
    bids: bool,
    next: Option<usize>,
}

impl Iterator for Levels<'_> {
    type Item = (i64, i64);

    fn next(&mut self) -> Option<(i64, i64)> {
        let i = self.next?;
        let (side, item) = if self.bids {
            let s = &self.book.bids;
            self.next = i.checked_sub(1).and_then(|j| s.highest_at_or_below(j));
            (s, i)
        } else {
            let s = &self.book.asks;
            self.next = (i + 1 < GRID_LEVELS)
                .then(|| s.lowest_at_or_above(i + 1))
                .flatten();
            (s, i)
        };
        Some((price_of(item), side.sizes[item]))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const C: i64 = PRICE_SCALE / 100;

    #[test]
    fn best_prices_follow_updates_and_removals() {
        let mut b = PolyBook::new();
        b.apply(Side::Buy, 48 * C, 100).unwrap();
        b.apply(Side::Buy, 47 * C, 50).unwrap();
        b.apply(Side::Sell, 52 * C, 70).unwrap();
        b.apply(Side::Sell, 55 * C, 10).unwrap();
        assert!(!b.is_valid(), "no snapshot yet");
        b.mark_snapshot();
        assert!(b.is_valid());
        assert_eq!(b.best_bid(), Some((48 * C, 100)));
        assert_eq!(b.best_ask(), Some((52 * C, 70)));
        assert_eq!(b.mid(), Some(0.5));
        b.apply(Side::Buy, 48 * C, 0).unwrap();
        assert_eq!(b.best_bid(), Some((47 * C, 50)));
        b.apply(Side::Sell, 52 * C, 0).unwrap();
        assert_eq!(b.best_ask(), Some((55 * C, 10)));
        assert_eq!(b.depth_within(Side::Sell, 5 * C), 10);
        assert_eq!(b.level_count(Side::Buy), 1);
        b.apply(Side::Sell, 55 * C, 0).unwrap();
        assert_eq!(b.best_ask(), None);
        assert!(!b.is_valid());
        // Extremes of the grid, and a price on every tick.
        b.apply(Side::Buy, GRID_E8, 1).unwrap();
        b.apply(Side::Sell, PRICE_SCALE - GRID_E8, 2).unwrap();
        b.apply(Side::Sell, 50_250_000, 3).unwrap();
        assert_eq!(b.best_ask(), Some((50_250_000, 3)));
        b.apply(Side::Sell, 50_250_000, 0).unwrap();
        assert_eq!(b.best_ask(), Some((PRICE_SCALE - GRID_E8, 2)));
        b.apply(Side::Buy, 47 * C, 0).unwrap();
        assert_eq!(b.best_bid(), Some((GRID_E8, 1)));
        b.reset();
        assert_eq!(
            (b.best_bid(), b.best_ask(), b.is_synced()),
            (None, None, false)
        );
    }

    #[test]
    fn bad_levels_are_refused_without_change() {
        let mut b = PolyBook::new();
        b.apply(Side::Buy, 40 * C, 5).unwrap();
        assert_eq!(b.apply(Side::Buy, 0, 5), Err(BookError::OffGrid(0)));
        assert_eq!(
            b.apply(Side::Buy, PRICE_SCALE, 5),
            Err(BookError::OffGrid(PRICE_SCALE))
        );
        assert_eq!(
            b.apply(Side::Buy, 48_000_001, 5),
            Err(BookError::OffGrid(48_000_001))
        );
        assert_eq!(b.apply(Side::Buy, -C, 5), Err(BookError::OffGrid(-C)));
        assert_eq!(
            b.apply(Side::Buy, 50 * C, -1),
            Err(BookError::NegativeSize(-1))
        );
        assert_eq!(b.apply(Side::None, 50 * C, 1), Err(BookError::BadSide(0)));
        let level = BookLevel {
            price: 50 * C,
            size: 1,
            side: 9,
            reserved: [0; 63],
        };
        assert_eq!(b.apply_level(&level), Err(BookError::BadSide(9)));
        assert_eq!(b.best_bid(), Some((40 * C, 5)));
        assert_eq!(b.level_count(Side::Buy), 1);
        assert_eq!(b.best_ask(), None);
    }

    /// The bitmap book agrees with a naive map model under random updates.
    #[test]
    fn matches_a_naive_model() {
        use std::collections::BTreeMap;
        let mut b = PolyBook::new();
        let mut model: [BTreeMap<i64, i64>; 2] = [BTreeMap::new(), BTreeMap::new()];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let side = if x & 1 == 0 { Side::Buy } else { Side::Sell };
            // Now and then a side is cleared (a snapshot), also while the levels are bunched
            // in a narrow band (the second half), so clearing visits only the words in use.
            if (x >> 50).is_multiple_of(997) {
                b.clear_side(side);
                model[usize::from(side == Side::Sell)].clear();
                assert_eq!(b.level_count(side), 0);
                assert_eq!(b.total(side), 0);
                continue;
            }
            let slot = if i < 25_000 {
                1 + (x >> 8) % 9_999
            } else {
                4_000 + (x >> 8) % 700
            };
            let price = slot as i64 * GRID_E8;
            let size = if (x >> 40).is_multiple_of(3) {
                0
            } else {
                ((x >> 20) % 1000) as i64
            };
            b.apply(side, price, size).unwrap();
            let m = &mut model[usize::from(side == Side::Sell)];
            if size == 0 {
                m.remove(&price);
            } else {
                m.insert(price, size);
            }
            let best_bid = model[0].iter().next_back().map(|(p, s)| (*p, *s));
            let best_ask = model[1].iter().next().map(|(p, s)| (*p, *s));
            assert_eq!(b.best_bid(), best_bid);
            assert_eq!(b.best_ask(), best_ask);
        }
        let band = 5 * C;
        let (bb, _) = b.best_bid().unwrap();
        let want: i64 = model[0].range(bb - band..=bb).map(|(_, s)| s).sum();
        assert_eq!(b.depth_within(Side::Buy, band), want);
        let (ba, _) = b.best_ask().unwrap();
        let want: i64 = model[1].range(ba..=ba + band).map(|(_, s)| s).sum();
        assert_eq!(b.depth_within(Side::Sell, band), want);
        let bids: Vec<_> = b.levels(Side::Buy).collect();
        let want: Vec<_> = model[0].iter().rev().map(|(p, s)| (*p, *s)).collect();
        assert_eq!(bids, want);
        let asks: Vec<_> = b.levels(Side::Sell).take(3).collect();
        let want: Vec<_> = model[1].iter().take(3).map(|(p, s)| (*p, *s)).collect();
        assert_eq!(asks, want);
        assert_eq!(
            b.total(Side::Sell),
            model[1].values().map(|&s| i128::from(s)).sum::<i128>()
        );
        assert_eq!(b.level_count(Side::Buy) as usize, model[0].len());
    }
}
