//! A price-sorted book that also keeps each level's price and size TEXT exactly as received,
//! for venues whose checksum is computed over the received strings (OKX, Kraken).
//!
//! Capacity is fixed at construction (cold path); applying a level never allocates. Text longer
//! than [`TEXT_MAX`] bytes is refused.

use std::collections::VecDeque;

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

/// Bytes of a level's joined text (`price:size`, at most `2 * TEXT_MAX + 1` bytes) with the
/// slack that lets a checksum copy it with one fixed-size move.
const JOINED: usize = 64;

/// `kraken_len` of a slot whose Kraken checksum text is not computed yet.
const KRAKEN_UNSET: u8 = u8::MAX;

/// One level with its received text.
#[derive(Clone, Copy, Debug)]
pub struct TextLevel {
    /// Price, 1e-8 units.
    pub price: i64,
    /// Size, 1e-8 units.
    pub size: i64,
    /// `price:size` as received; bytes past `price_len + 1 + size_len` are meaningless.
    joined: [u8; JOINED],
    price_len: u8,
    size_len: u8,
}

impl TextLevel {
    /// A level slot not yet used.
    const EMPTY: TextLevel = TextLevel {
        price: 0,
        size: 0,
        joined: [0; JOINED],
        price_len: 0,
        size_len: 0,
    };

    /// Makes this slot the level `price` × `size` with copies of its texts (each at most
    /// [`TEXT_MAX`] bytes: checked by the caller).
    #[inline]
    fn fill(&mut self, price: i64, size: i64, price_text: &[u8], size_text: &[u8]) {
        let p = price_text.len();
        self.price = price;
        self.size = size;
        self.price_len = p as u8;
        self.size_len = size_text.len() as u8;
        self.joined[..p].copy_from_slice(price_text);
        self.joined[p] = b':';
        self.joined[p + 1..p + 1 + size_text.len()].copy_from_slice(size_text);
    }

    /// [`TextLevel::fill`] for texts inside `frame` at the given offsets (each at most
    /// [`TEXT_MAX`] bytes: checked by the caller): where 32 bytes of `frame` follow a text's
    /// start, they are copied whole (one fixed-size move; the bytes past the text are
    /// meaningless), otherwise the text alone.
    #[inline(always)]
    fn fill_in(
        &mut self,
        price: i64,
        size: i64,
        frame: &[u8],
        price_at: (usize, &[u8]),
        size_at: (usize, &[u8]),
    ) {
        const MOVE: usize = 32;
        let p = price_at.1.len();
        self.price = price;
        self.size = size;
        self.price_len = p as u8;
        self.size_len = size_at.1.len() as u8;
        match frame.get(price_at.0..price_at.0 + MOVE) {
            Some(src) => self.joined[..MOVE].copy_from_slice(src),
            None => self.joined[..p].copy_from_slice(price_at.1),
        }
        self.joined[p] = b':';
        // p + 1 + MOVE <= TEXT_MAX + 1 + MOVE <= JOINED.
        match frame.get(size_at.0..size_at.0 + MOVE) {
            Some(src) => self.joined[p + 1..p + 1 + MOVE].copy_from_slice(src),
            None => self.joined[p + 1..p + 1 + size_at.1.len()].copy_from_slice(size_at.1),
        }
    }

    /// The price as received.
    #[must_use]
    pub fn price_text(&self) -> &[u8] {
        &self.joined[..usize::from(self.price_len)]
    }

    /// The size as received.
    #[must_use]
    pub fn size_text(&self) -> &[u8] {
        let p = usize::from(self.price_len);
        &self.joined[p + 1..p + 1 + usize::from(self.size_len)]
    }

    /// Length of `price:size`.
    #[inline]
    fn joined_len(&self) -> usize {
        usize::from(self.price_len) + 1 + usize::from(self.size_len)
    }
}

/// Both sides, best first: bids descending, asks ascending.
/// One side: levels in stable slots, and the price order as a ring of slot indices, so an
/// insert or removal in the middle of a 400-level side moves 2-byte indices, not 80-byte levels,
/// and only those on the shorter side of it (a change near the top moves a few entries).
#[derive(Clone, Debug)]
struct Half {
    /// Every slot, allocated up front; the first `used` have been handed out.
    slots: Vec<TextLevel>,
    used: usize,
    free: Vec<u16>,
    /// Slot indices, best price first.
    order: VecDeque<u16>,
    /// The sort key of each entry of `order` (price, negated on the descending side), so the
    /// search runs over one contiguous ascending `i64` array without chasing slots.
    keys: VecDeque<i64>,
    descending: bool,
    /// Per slot: the level's Kraken checksum text (price then size, `.` removed, leading zeros
    /// stripped), computed when the level is first hashed and kept until the slot is reused.
    kraken: Vec<[u8; JOINED]>,
    /// Per slot: the length of `kraken`, [`KRAKEN_UNSET`] until computed.
    kraken_len: Vec<u8>,
}

impl Half {
    fn new(capacity: usize, descending: bool) -> Self {
        Half {
            slots: vec![TextLevel::EMPTY; capacity],
            used: 0,
            free: Vec::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            keys: VecDeque::with_capacity(capacity),
            descending,
            kraken: vec![[0; JOINED]; capacity],
            kraken_len: vec![KRAKEN_UNSET; capacity],
        }
    }

    /// The ascending sort key of `price` on this side.
    #[inline]
    fn key(&self, price: i64) -> i64 {
        if self.descending {
            price.wrapping_neg()
        } else {
            price
        }
    }

    fn clear(&mut self) {
        self.used = 0;
        self.free.clear();
        self.order.clear();
        self.keys.clear();
    }

    #[inline]
    fn level(&self, rank: usize) -> Option<&TextLevel> {
        self.order
            .get(rank)
            .map(|&slot| &self.slots[usize::from(slot)])
    }

    /// A slot for a new level (its Kraken text marked stale), `None` when the side is full.
    #[inline]
    fn alloc(&mut self) -> Option<u16> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                if self.used >= self.slots.len() {
                    return None;
                }
                self.used += 1;
                u16::try_from(self.used - 1).ok()?
            }
        };
        self.kraken_len[usize::from(slot)] = KRAKEN_UNSET;
        Some(slot)
    }

    /// The Kraken checksum text of the level in `slot`, computed on first use.
    #[inline]
    fn kraken_text(&mut self, slot: u16) -> (&[u8; JOINED], usize) {
        let s = usize::from(slot);
        if self.kraken_len[s] == KRAKEN_UNSET {
            let l = &self.slots[s];
            let out = &mut self.kraken[s];
            let n = kraken_strip(l.price_text(), out, 0);
            let n = kraken_strip(l.size_text(), out, n);
            // At most 2 * TEXT_MAX bytes: below KRAKEN_UNSET.
            self.kraken_len[s] = n as u8;
        }
        (&self.kraken[s], usize::from(self.kraken_len[s]))
    }

    fn truncate(&mut self, depth: usize) {
        if depth < self.order.len() {
            for &slot in self.order.range(depth..) {
                self.free.push(slot);
            }
            self.order.truncate(depth);
            self.keys.truncate(depth);
        }
    }
}

/// Drops the cached checksums that cover `rank` (a level at `rank` of one side was inserted,
/// replaced or removed).
#[inline(always)]
fn changed_at(okx: &mut Option<i32>, kraken: &mut Option<u32>, rank: usize) {
    if rank < OKX_DEPTH {
        *okx = None;
    }
    if rank < KRAKEN_DEPTH {
        *kraken = None;
    }
}

/// Levels per side the OKX checksum covers.
const OKX_DEPTH: usize = 25;
/// Levels per side the Kraken checksum covers.
const KRAKEN_DEPTH: usize = 10;
/// Bytes of the checksum text buffer: every level either checksum covers, `JOINED` bytes each
/// (the fixed-size moves), and one move of slack.
const CHECKSUM_TEXT: usize = (2 * OKX_DEPTH + 1) * JOINED;

/// A sorted two-sided book that keeps the received text of every level.
///
/// The checksums are cached: a change at a rank the checksum does not cover (most updates of a
/// deep book) keeps the cached value, so an update beyond the top levels costs no re-hash.
#[derive(Clone, Debug)]
pub struct TextBook {
    bids: Half,
    asks: Half,
    okx_cache: Option<i32>,
    kraken_cache: Option<u32>,
    /// Where a checksum's text is assembled (allocated once; never cleared: only the bytes
    /// written for the current checksum are hashed).
    checksum_text: Vec<u8>,
}

impl TextBook {
    /// An empty book holding up to `capacity` levels per side (allocated here, once; at most
    /// 65 536).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.min(usize::from(u16::MAX) + 1);
        TextBook {
            bids: Half::new(capacity, true),
            asks: Half::new(capacity, false),
            okx_cache: None,
            kraken_cache: None,
            checksum_text: vec![0; CHECKSUM_TEXT],
        }
    }

    /// Removes every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.changed_at(0);
    }

    /// Drops the cached checksums that cover `rank` (see [`changed_at`]).
    #[inline]
    fn changed_at(&mut self, rank: usize) {
        changed_at(&mut self.okx_cache, &mut self.kraken_cache, rank);
    }

    /// Sets the level at `price` to `size` (0 removes), keeping the received texts.
    ///
    /// # Errors
    /// [`TextBookError`]; the book is unchanged.
    #[inline]
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
        if let Some(l) = self.apply_level(side, price, size)? {
            l.fill(price, size, price_text, size_text);
        }
        Ok(())
    }

    /// [`TextBook::apply`] for texts that are the ranges `price_at` and `size_at` of `frame`
    /// (the received message): the same book, the texts copied with fixed-size moves where the
    /// frame allows.
    ///
    /// # Errors
    /// [`TextBookError`]; a range outside `frame` is [`TextBookError::TextTooLong`]. The book
    /// is unchanged.
    #[inline]
    pub fn apply_in(
        &mut self,
        side: Side,
        price: i64,
        size: i64,
        frame: &[u8],
        price_at: core::ops::Range<usize>,
        size_at: core::ops::Range<usize>,
    ) -> Result<(), TextBookError> {
        let (Some(price_text), Some(size_text)) =
            (frame.get(price_at.clone()), frame.get(size_at.clone()))
        else {
            return Err(TextBookError::TextTooLong);
        };
        if price_text.len() > TEXT_MAX || size_text.len() > TEXT_MAX {
            return Err(TextBookError::TextTooLong);
        }
        if let Some(l) = self.apply_level(side, price, size)? {
            l.fill_in(
                price,
                size,
                frame,
                (price_at.start, price_text),
                (size_at.start, size_text),
            );
        }
        Ok(())
    }

    /// The body of [`TextBook::apply`]: the slot the caller must write the level into (texts
    /// checked), or `None` when the level was removed (or absent).
    #[inline(always)]
    fn apply_level(
        &mut self,
        side: Side,
        price: i64,
        size: i64,
    ) -> Result<Option<&mut TextLevel>, TextBookError> {
        let half = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
            Side::None => return Err(TextBookError::Side),
        };
        // Levels arriving in book order (a snapshot, or a level beyond the worst one) append
        // without a search.
        let key = half.key(price);
        if size != 0 && half.keys.back().is_none_or(|&w| w < key) {
            let slot = half.alloc().ok_or(TextBookError::Full)?;
            let rank = half.order.len();
            half.order.push_back(slot);
            half.keys.push_back(key);
            changed_at(&mut self.okx_cache, &mut self.kraken_cache, rank);
            return Ok(Some(&mut half.slots[usize::from(slot)]));
        }
        // Rank of the first level not in front of `price`.
        let rank = half.keys.partition_point(|&k| k < key);
        let found = half
            .order
            .get(rank)
            .copied()
            .filter(|&slot| half.slots[usize::from(slot)].price == price);
        let slot = match (found, size) {
            (Some(slot), 0) => {
                half.order.remove(rank);
                half.keys.remove(rank);
                half.free.push(slot);
                None
            }
            (None, 0) => return Ok(None),
            (Some(slot), _) => {
                half.kraken_len[usize::from(slot)] = KRAKEN_UNSET;
                Some(slot)
            }
            (None, _) => {
                let slot = half.alloc().ok_or(TextBookError::Full)?;
                half.order.insert(rank, slot);
                half.keys.insert(rank, key);
                Some(slot)
            }
        };
        changed_at(&mut self.okx_cache, &mut self.kraken_cache, rank);
        Ok(slot.map(|slot| &mut half.slots[usize::from(slot)]))
    }

    /// Keeps only the best `depth` levels per side (Kraken truncates to the subscribed depth).
    pub fn truncate(&mut self, depth: usize) {
        self.bids.truncate(depth);
        self.asks.truncate(depth);
        self.changed_at(depth);
    }

    /// Number of bid levels.
    #[must_use]
    pub fn bid_count(&self) -> usize {
        self.bids.order.len()
    }

    /// Number of ask levels.
    #[must_use]
    pub fn ask_count(&self) -> usize {
        self.asks.order.len()
    }

    /// The bid at `rank` (0 = best, highest price).
    #[must_use]
    pub fn bid(&self, rank: usize) -> Option<&TextLevel> {
        self.bids.level(rank)
    }

    /// The ask at `rank` (0 = best, lowest price).
    #[must_use]
    pub fn ask(&self, rank: usize) -> Option<&TextLevel> {
        self.asks.level(rank)
    }

    /// OKX v5 checksum: up to 25 levels, `bid:bidSz:ask:askSz:…` interleaved (continuing with
    /// the longer side alone), CRC32 as a signed 32-bit integer. Cached until a change within
    /// the top 25 levels.
    pub fn okx_checksum(&mut self) -> i32 {
        if let Some(crc) = self.okx_cache {
            return crc;
        }
        let crc = okx_crc_fast(&self.bids, &self.asks, &mut self.checksum_text);
        self.okx_cache = Some(crc);
        crc
    }

    /// Kraken checksum (v1 and v2): top 10 asks then top 10 bids; for each level the price
    /// then size text with `.` removed and leading zeros stripped; CRC32 (unsigned). Cached
    /// until a change within the top 10 levels.
    pub fn kraken_checksum(&mut self) -> u32 {
        if let Some(crc) = self.kraken_cache {
            return crc;
        }
        let crc = kraken_crc_fast(&mut self.asks, &mut self.bids, &mut self.checksum_text);
        self.kraken_cache = Some(crc);
        crc
    }
}

/// Appends `text` to `out` at `n` with leading `0`s and `.`s dropped and then its first `.`
/// removed (Kraken's checksum form); returns the new length.
fn kraken_strip(text: &[u8], out: &mut [u8; JOINED], mut n: usize) -> usize {
    let start = text
        .iter()
        .position(|&b| b != b'0' && b != b'.')
        .unwrap_or(text.len());
    let mut dot_seen = false;
    for &b in &text[start..] {
        if b == b'.' && !dot_seen {
            dot_seen = true;
            continue;
        }
        // Two texts of at most TEXT_MAX bytes: within JOINED.
        out[n] = b;
        n += 1;
    }
    n
}

/// [`TextBook::okx_checksum`] computed from the levels (no cache): each level's joined
/// `price:size` text is copied with one fixed-size move and `:`-separated.
fn okx_crc_fast(bids: &Half, asks: &Half, buf: &mut [u8]) -> i32 {
    let mut n = 0;
    for i in 0..OKX_DEPTH {
        for l in [bids.level(i), asks.level(i)].into_iter().flatten() {
            // At most 2 * OKX_DEPTH levels of at most JOINED - 2 bytes plus `:` each before
            // this one: the fixed-size move stays inside `buf`.
            buf[n..n + JOINED].copy_from_slice(&l.joined);
            n += l.joined_len();
            buf[n] = b':';
            n += 1;
        }
    }
    // No `:` after the last text.
    crc32fast::hash(&buf[..n.saturating_sub(1)]) as i32
}

/// [`TextBook::kraken_checksum`] computed from the levels (no cache), each level's checksum
/// text computed once per slot and copied with one fixed-size move.
fn kraken_crc_fast(asks: &mut Half, bids: &mut Half, buf: &mut [u8]) -> u32 {
    let mut n = 0;
    for half in [asks, bids] {
        for rank in 0..KRAKEN_DEPTH.min(half.order.len()) {
            let slot = half.order[rank];
            let (text, len) = half.kraken_text(slot);
            // At most 2 * KRAKEN_DEPTH texts of at most 2 * TEXT_MAX bytes before this one.
            buf[n..n + JOINED].copy_from_slice(text);
            n += len;
        }
    }
    crc32fast::hash(&buf[..n])
}

/// [`TextBook::okx_checksum`] computed from the levels (no cache).
#[cfg(test)]
fn okx_crc(book: &TextBook) -> i32 {
    // The checksum string is assembled on the stack and hashed in one call (crc32fast's
    // SIMD path), not fed to the hasher in a hundred small pieces.
    let mut buf = [0u8; OKX_DEPTH * 4 * (TEXT_MAX + 1)];
    let mut n = 0;
    let mut part = |text: &[u8]| {
        if n != 0 {
            buf[n] = b':';
            n += 1;
        }
        buf[n..n + text.len()].copy_from_slice(text);
        n += text.len();
    };
    for i in 0..OKX_DEPTH {
        if let Some(b) = book.bid(i) {
            part(b.price_text());
            part(b.size_text());
        }
        if let Some(a) = book.ask(i) {
            part(a.price_text());
            part(a.size_text());
        }
    }
    crc32fast::hash(&buf[..n]) as i32
}

/// [`TextBook::kraken_checksum`] computed from the levels (no cache).
#[cfg(test)]
fn kraken_crc(book: &TextBook) -> u32 {
    let mut buf = [0u8; 2 * KRAKEN_DEPTH * 2 * TEXT_MAX];
    let mut n = 0;
    // Leading `0`s and `.`s dropped, then the rest without its first `.`, byte by byte (the
    // texts are short: cheaper than two library copies each).
    let mut part = |text: &[u8]| {
        let start = text
            .iter()
            .position(|&b| b != b'0' && b != b'.')
            .unwrap_or(text.len());
        let mut dot_seen = false;
        for &b in &text[start..] {
            if b == b'.' && !dot_seen {
                dot_seen = true;
                continue;
            }
            // `buf` holds every text of the checksum's levels (TEXT_MAX each): never full.
            buf[n] = b;
            n += 1;
        }
    };
    for l in (0..KRAKEN_DEPTH)
        .filter_map(|i| book.ask(i))
        .chain((0..KRAKEN_DEPTH).filter_map(|i| book.bid(i)))
    {
        part(l.price_text());
        part(l.size_text());
    }
    crc32fast::hash(&buf[..n])
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
        assert_eq!(b.bid(0).unwrap().price_text(), b"3366.1");
        assert_eq!(b.ask(0).unwrap().price_text(), b"3366.8");
        let expected = crc32fast::hash(b"3366.1:7:3366.8:9:3366:6:3368:8") as i32;
        assert_eq!(b.okx_checksum(), expected);
        b.apply(Side::Buy, 336_600_000_000, 0, b"3366", b"0")
            .unwrap();
        assert_eq!(b.bid_count(), 1);
        for i in 0..6 {
            b.apply(Side::Sell, 400_000_000_000 + i, 1, b"4000", b"1")
                .unwrap();
        }
        assert_eq!(
            b.apply(Side::Sell, 500_000_000_000, 1, b"5000", b"1"),
            Err(TextBookError::Full)
        );
        b.truncate(1);
        assert_eq!(b.ask_count(), 1);
    }

    /// Random applies, removals and truncations against a `BTreeMap` model: same levels, same
    /// order, same texts, same `Full` refusals; the cached checksums equal fresh ones.
    #[test]
    fn matches_a_sorted_map_model() {
        use std::collections::BTreeMap;
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let capacity = 48;
        let mut book = TextBook::with_capacity(capacity);
        let mut model: [BTreeMap<i64, (i64, Vec<u8>)>; 2] = [BTreeMap::new(), BTreeMap::new()];
        for step in 0..20_000u32 {
            let r = next();
            let side = if r & 1 == 0 { Side::Buy } else { Side::Sell };
            let m = &mut model[usize::from(side == Side::Sell)];
            let price = i64::try_from((r >> 8) % 64).unwrap();
            let size = if (r >> 20) % 3 == 0 {
                0
            } else {
                i64::try_from((r >> 24) % 1000).unwrap() + 1
            };
            let text = format!("{price}.{step}").into_bytes();
            // Every other step through `apply_in`, the texts inside a frame (near its end on
            // some steps, so both copies are taken).
            let got = if step % 2 == 0 {
                book.apply(side, price, size, &text, b"1")
            } else {
                let pad = if step % 4 == 1 { 40 } else { 0 };
                let frame = [&b"[\""[..], &text, b"\",\"1\"]", &vec![b' '; pad]].concat();
                let p = 2..2 + text.len();
                let q = p.end + 3..p.end + 4;
                book.apply_in(side, price, size, &frame, p, q)
            };
            if size == 0 {
                m.remove(&price);
                assert_eq!(got, Ok(()));
            } else if m.contains_key(&price) || m.len() < capacity {
                m.insert(price, (size, text));
                assert_eq!(got, Ok(()));
            } else {
                assert_eq!(got, Err(TextBookError::Full));
            }
            if step % 997 == 0 {
                book.truncate(10);
                for (k, m) in model.iter_mut().enumerate() {
                    let keep: Vec<i64> = if k == 0 {
                        m.keys().rev().take(10).copied().collect()
                    } else {
                        m.keys().take(10).copied().collect()
                    };
                    m.retain(|p, _| keep.contains(p));
                }
            }
            type Row = (i64, i64, Vec<u8>);
            let row = |l: &TextLevel| (l.price, l.size, l.price_text().to_vec());
            let bids: Vec<Row> = (0..book.bid_count())
                .map(|i| row(book.bid(i).unwrap()))
                .collect();
            let asks: Vec<Row> = (0..book.ask_count())
                .map(|i| row(book.ask(i).unwrap()))
                .collect();
            let model_row = |(p, (s, t)): (&i64, &(i64, Vec<u8>))| (*p, *s, t.clone());
            let want_bids: Vec<Row> = model[0].iter().rev().map(model_row).collect();
            let want_asks: Vec<Row> = model[1].iter().map(model_row).collect();
            assert_eq!(bids, want_bids, "bids at step {step}");
            assert_eq!(asks, want_asks, "asks at step {step}");
            // Every third step, so a cached value outlives several changes.
            if step % 3 == 0 {
                assert_eq!(book.okx_checksum(), okx_crc(&book), "okx at step {step}");
                assert_eq!(
                    book.kraken_checksum(),
                    kraken_crc(&book),
                    "kraken at {step}"
                );
            }
        }
    }
}
