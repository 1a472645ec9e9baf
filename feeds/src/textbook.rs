//! A price-sorted book that also keeps each level's price and size TEXT exactly as received,
//! for venues whose checksum is computed over the received strings (OKX, Kraken).
//!
//! Capacity is fixed at construction (cold path); applying a level never allocates. Text longer
//! than [`TEXT_MAX`] bytes is refused.

use ringbolt_bus::Side;
use thiserror::Error;

/// Longest price/size text kept per level.
pub const TEXT_MAX: usize = 30;

/// Why a level could not be applied (the book is unchanged).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum TextBookError {
    /// Price or size text longer than [`TEXT_MAX`].
    #[error("level text longer than {TEXT_MAX} bytes")]
    TextTooLong,
    /// The side already holds its capacity of levels.
    #[error("book side full")]
    Full,
    /// Neither bid nor ask.
    #[error("level without a side")]
    Side,
}

/// One level with its received text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextLevel {
    /// Price, 1e-8 units.
    pub price: i64,
    /// Size, 1e-8 units.
    pub size: i64,
    price_text: [u8; TEXT_MAX],
    price_len: u8,
    size_text: [u8; TEXT_MAX],
    size_len: u8,
}

impl TextLevel {
    /// The price as received.
    #[must_use]
    pub fn price_text(&self) -> &[u8] {
        &self.price_text[..usize::from(self.price_len)]
    }

    /// The size as received.
    #[must_use]
    pub fn size_text(&self) -> &[u8] {
        &self.size_text[..usize::from(self.size_len)]
    }
}

/// Both sides, best first: bids descending, asks ascending.
#[derive(Clone, Debug)]
pub struct TextBook {
    bids: Vec<TextLevel>,
    asks: Vec<TextLevel>,
    capacity: usize,
}

impl TextBook {
    /// An empty book holding up to `capacity` levels per side (allocated here, once).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        TextBook {
            bids: Vec::with_capacity(capacity),
            asks: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Removes every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Sets the level at `price` to `size` (0 removes), keeping the received texts.
    ///
    /// # Errors
    /// [`TextBookError`]; the book is unchanged.
    pub fn apply(
        &mut self,
        side: Side,
        price: i64,
        size: i64,
        price_text: &[u8],
        size_text: &[u8],
    ) -> Result<(), TextBookError> {
        if price_text.len() > TEXT_MAX || size_text.len() > TEXT_MAX {
            return Err(TextBookError::TextTooLong);
        }
        let (levels, descending) = match side {
            Side::Buy => (&mut self.bids, true),
            Side::Sell => (&mut self.asks, false),
            Side::None => return Err(TextBookError::Side),
        };
        let found = levels.binary_search_by(|l| {
            if descending {
                price.cmp(&l.price)
            } else {
                l.price.cmp(&price)
            }
        });
        match (found, size) {
            (Ok(i), 0) => {
                levels.remove(i);
            }
            (Err(_), 0) => {}
            (found, _) => {
                let mut level = TextLevel {
                    price,
                    size,
                    price_text: [0; TEXT_MAX],
                    price_len: price_text.len() as u8,
                    size_text: [0; TEXT_MAX],
                    size_len: size_text.len() as u8,
                };
                level.price_text[..price_text.len()].copy_from_slice(price_text);
                level.size_text[..size_text.len()].copy_from_slice(size_text);
                match found {
                    Ok(i) => levels[i] = level,
                    Err(i) => {
                        if levels.len() == self.capacity {
                            return Err(TextBookError::Full);
                        }
                        levels.insert(i, level);
                    }
                }
            }
        }
        Ok(())
    }

    /// Keeps only the best `depth` levels per side.
    pub fn truncate(&mut self, depth: usize) {
        self.bids.truncate(depth);
        self.asks.truncate(depth);
    }

    /// Bids, best (highest) first.
    #[must_use]
    pub fn bids(&self) -> &[TextLevel] {
        &self.bids
    }

    /// Asks, best (lowest) first.
    #[must_use]
    pub fn asks(&self) -> &[TextLevel] {
        &self.asks
    }

    /// OKX v5 checksum: up to 25 levels, `bid:bidSz:ask:askSz:…` interleaved (continuing with
    /// the longer side alone), CRC32 as a signed 32-bit integer.
    #[must_use]
    pub fn okx_checksum(&self) -> i32 {
        let mut h = crc32fast::Hasher::new();
        let mut first = true;
        let mut part = |text: &[u8]| {
            if !first {
                h.update(b":");
            }
            first = false;
            h.update(text);
        };
        for i in 0..25 {
            if let Some(b) = self.bids.get(i) {
                part(b.price_text());
                part(b.size_text());
            }
            if let Some(a) = self.asks.get(i) {
                part(a.price_text());
                part(a.size_text());
            }
        }
        h.finalize() as i32
    }

    /// Kraken checksum (v1 and v2): top 10 asks then top 10 bids; for each level the price
    /// then size text with `.` removed and leading zeros stripped; CRC32 (unsigned).
    #[must_use]
    pub fn kraken_checksum(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        let mut part = |text: &[u8]| {
            let mut leading = true;
            for &b in text {
                if b == b'.' {
                    continue;
                }
                if leading && b == b'0' {
                    continue;
                }
                leading = false;
                h.update(&[b]);
            }
        };
        for l in self.asks.iter().take(10).chain(self.bids.iter().take(10)) {
            part(l.price_text());
            part(l.size_text());
        }
        h.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_sides_and_okx_doc_checksum() {
        // Interleaving of the OKX documentation example: bids 3366.1/7, 3366/6 and asks
        // 3366.8/9, 3368/8 give "3366.1:7:3366.8:9:3366:6:3368:8" (the recorded 41-frame
        // sequence in tests/corpus.rs verifies real checksums).
        let mut b = TextBook::with_capacity(8);
        b.apply(Side::Buy, 336_600_000_000, 600_000_000, b"3366", b"6")
            .unwrap();
        b.apply(Side::Buy, 336_610_000_000, 700_000_000, b"3366.1", b"7")
            .unwrap();
        b.apply(Side::Sell, 336_800_000_000, 800_000_000, b"3368", b"8")
            .unwrap();
        b.apply(Side::Sell, 336_680_000_000, 900_000_000, b"3366.8", b"9")
            .unwrap();
        assert_eq!(b.bids()[0].price_text(), b"3366.1");
        assert_eq!(b.asks()[0].price_text(), b"3366.8");
        let expected = crc32fast::hash(b"3366.1:7:3366.8:9:3366:6:3368:8") as i32;
        assert_eq!(b.okx_checksum(), expected);
        b.apply(Side::Buy, 336_600_000_000, 0, b"3366", b"0")
            .unwrap();
        assert_eq!(b.bids().len(), 1);
        for i in 0..6 {
            b.apply(Side::Sell, 400_000_000_000 + i, 1, b"4000", b"1")
                .unwrap();
        }
        assert_eq!(
            b.apply(Side::Sell, 500_000_000_000, 1, b"5000", b"1"),
            Err(TextBookError::Full)
        );
        b.truncate(1);
        assert_eq!(b.asks().len(), 1);
    }
}
