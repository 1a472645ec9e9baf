//! A price ladder (one side map per book side) that reprices around a moving mid and reports
//! every level change, shared by the Binance, Coinbase and Polymarket emulations.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Book side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Bids (buy orders).
    Bid,
    /// Asks (sell orders).
    Ask,
}

/// One level change: `qty == 0` deletes the level. Prices and quantities are integers in the
/// ladder's units (e.g. cents and 1e-8 BTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Side of the level.
    pub side: Side,
    /// Price in ladder units.
    pub price: i64,
    /// New absolute quantity in ladder units (0 = removed).
    pub qty: i64,
}

/// Shape parameters of a ladder.
#[derive(Debug, Clone, Copy)]
pub struct LadderParams {
    /// Levels kept per side.
    pub depth: usize,
    /// Price units per tick.
    pub step: i64,
    /// Largest gap between neighbouring levels, in ticks.
    pub max_gap_ticks: i64,
    /// Smallest random level quantity.
    pub qty_min: i64,
    /// Largest random level quantity.
    pub qty_max: i64,
    /// Random level-size perturbations per reprice.
    pub perturb: usize,
    /// Lowest admissible price.
    pub lo: i64,
    /// Highest admissible price.
    pub hi: i64,
}

/// Two sorted sides. Invariant after [`Ladder::reprice`]: best bid < best ask, every level
/// quantity > 0, at most `depth` levels per side.
#[derive(Debug, Clone, Default)]
pub struct Ladder {
    /// price -> qty.
    pub bids: BTreeMap<i64, i64>,
    /// price -> qty.
    pub asks: BTreeMap<i64, i64>,
}

impl Ladder {
    /// Best bid `(price, qty)`.
    pub fn best_bid(&self) -> Option<(i64, i64)> {
        self.bids.iter().next_back().map(|(p, q)| (*p, *q))
    }

    /// Best ask `(price, qty)`.
    pub fn best_ask(&self) -> Option<(i64, i64)> {
        self.asks.iter().next().map(|(p, q)| (*p, *q))
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<i64, i64> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    /// Set a level (0 removes) and record the change into `out` (deduplicated per level,
    /// last write wins).
    pub fn set(&mut self, side: Side, price: i64, qty: i64, out: &mut BTreeMap<(Side, i64), i64>) {
        let map = self.side_mut(side);
        let prev = map.get(&price).copied().unwrap_or(0);
        if qty <= 0 {
            if map.remove(&price).is_some() || out.contains_key(&(side, price)) {
                out.insert((side, price), 0);
            }
        } else if prev != qty {
            map.insert(price, qty);
            out.insert((side, price), qty);
        }
    }

    /// Removes every level whose price is off the `tick` grid (recording the removals into
    /// `out`, as [`Ladder::set`] does).
    pub fn withdraw_off_grid(&mut self, tick: i64, out: &mut BTreeMap<(Side, i64), i64>) {
        for side in [Side::Bid, Side::Ask] {
            let off: Vec<i64> = self
                .side_mut(side)
                .keys()
                .copied()
                .filter(|p| p % tick != 0)
                .collect();
            for p in off {
                self.set(side, p, 0, out);
            }
        }
    }

    fn rand_qty(p: &LadderParams, rng: &mut ChaCha8Rng) -> i64 {
        rng.random_range(p.qty_min..=p.qty_max)
    }

    /// Move the book so that its best levels are `best_bid`/`best_ask`, refill to `depth` levels
    /// per side, trim the far end and perturb a few sizes. Returns the level changes, bids first,
    /// each side ordered best-first.
    pub fn reprice(
        &mut self,
        best_bid: i64,
        best_ask: i64,
        p: &LadderParams,
        rng: &mut ChaCha8Rng,
    ) -> Vec<Change> {
        let mut out = BTreeMap::new();
        let best_bid = best_bid.clamp(p.lo, p.hi - p.step);
        let best_ask = best_ask.clamp(best_bid + p.step, p.hi);
        let crossing_bids: Vec<i64> = self.bids.range(best_bid + 1..).map(|(k, _)| *k).collect();
        for px in crossing_bids {
            self.set(Side::Bid, px, 0, &mut out);
        }
        let crossing_asks: Vec<i64> = self.asks.range(..best_ask).map(|(k, _)| *k).collect();
        for px in crossing_asks {
            self.set(Side::Ask, px, 0, &mut out);
        }
        if !self.bids.contains_key(&best_bid) {
            let q = Self::rand_qty(p, rng);
            self.set(Side::Bid, best_bid, q, &mut out);
        }
        if !self.asks.contains_key(&best_ask) {
            let q = Self::rand_qty(p, rng);
            self.set(Side::Ask, best_ask, q, &mut out);
        }
        // Refill the far ends.
        while self.bids.len() < p.depth {
            let worst = self.bids.keys().next().copied().unwrap_or(best_bid);
            let px = worst - p.step * rng.random_range(1..=p.max_gap_ticks);
            if px < p.lo {
                break;
            }
            let q = Self::rand_qty(p, rng);
            self.set(Side::Bid, px, q, &mut out);
        }
        while self.asks.len() < p.depth {
            let worst = self.asks.keys().next_back().copied().unwrap_or(best_ask);
            let px = worst + p.step * rng.random_range(1..=p.max_gap_ticks);
            if px > p.hi {
                break;
            }
            let q = Self::rand_qty(p, rng);
            self.set(Side::Ask, px, q, &mut out);
        }
        while self.bids.len() > p.depth {
            let Some(px) = self.bids.keys().next().copied() else {
                break;
            };
            self.set(Side::Bid, px, 0, &mut out);
        }
        while self.asks.len() > p.depth {
            let Some(px) = self.asks.keys().next_back().copied() else {
                break;
            };
            self.set(Side::Ask, px, 0, &mut out);
        }
        // Perturb sizes, biased to the top of book.
        for _ in 0..p.perturb {
            let side = if rng.random_bool(0.5) {
                Side::Bid
            } else {
                Side::Ask
            };
            let n = match side {
                Side::Bid => self.bids.len(),
                Side::Ask => self.asks.len(),
            };
            if n == 0 {
                continue;
            }
            let idx = rng.random_range(0..n.min(10));
            let px = match side {
                Side::Bid => self.bids.keys().rev().nth(idx).copied(),
                Side::Ask => self.asks.keys().nth(idx).copied(),
            };
            if let Some(px) = px {
                let q = Self::rand_qty(p, rng);
                self.set(side, px, q, &mut out);
            }
        }
        Self::ordered(out)
    }

    /// Remove `qty` from the level at `price` (a fill after this step's reprice) and merge the
    /// resulting level change into `changes` (replacing any earlier change of that level).
    pub fn fill(&mut self, side: Side, price: i64, qty: i64, changes: &mut Vec<Change>) {
        let mut out = BTreeMap::new();
        let Some(cur) = self.side_mut(side).get(&price).copied() else {
            return;
        };
        self.set(side, price, (cur - qty).max(0), &mut out);
        for c in Self::ordered(out) {
            changes.retain(|x| !(x.side == c.side && x.price == c.price));
            changes.push(c);
        }
    }

    fn ordered(out: BTreeMap<(Side, i64), i64>) -> Vec<Change> {
        let mut bids: Vec<Change> = Vec::new();
        let mut asks: Vec<Change> = Vec::new();
        for ((side, price), qty) in out {
            let c = Change { side, price, qty };
            match side {
                Side::Bid => bids.push(c),
                Side::Ask => asks.push(c),
            }
        }
        bids.reverse();
        bids.extend(asks);
        bids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn reprice_keeps_invariants_and_reports_every_change() {
        let p = LadderParams {
            depth: 20,
            step: 1,
            max_gap_ticks: 3,
            qty_min: 1,
            qty_max: 100,
            perturb: 3,
            lo: 1,
            hi: 1_000_000,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut book = Ladder::default();
        let mut mirror = Ladder::default();
        let mut mid = 50_000_i64;
        for _ in 0..500 {
            mid += rng.random_range(-5..=5);
            let changes = book.reprice(mid, mid + 1, &p, &mut rng);
            for c in changes {
                let m = match c.side {
                    Side::Bid => &mut mirror.bids,
                    Side::Ask => &mut mirror.asks,
                };
                if c.qty == 0 {
                    m.remove(&c.price);
                } else {
                    m.insert(c.price, c.qty);
                }
            }
            assert_eq!(book.bids, mirror.bids);
            assert_eq!(book.asks, mirror.asks);
            assert!(book.best_bid().unwrap().0 < book.best_ask().unwrap().0);
            assert!(book.bids.len() <= 20 && book.asks.len() <= 20);
        }
    }
}
