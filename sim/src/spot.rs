//! A spot venue's BTC/USD book and taker prints, shared by the Gemini and Bitstamp emulations:
//! a [`Ladder`] in cents × 1e-8 BTC repriced around the venue's (lagged, noisy) view of the true
//! price, and now and then one taker order against the best level.

use std::any::Any;
use std::fmt::Debug;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::event::VenueEvent;
use crate::ladder::{Change, Ladder, LadderParams, Side};
use crate::market::stream_rng;
use crate::venue::{StepCtx, VenueModel};

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

/// A spot venue's state as the registry steps it (Gemini, Bitstamp): built from its own random
/// stream, stepped around its lagged, noisy view of the true price.
pub trait SpotVenue: Debug + Send + Sync + 'static {
    /// Observation lag of the true price, ms.
    const LAG_MS: i64;
    /// Random stream of the venue (derived from the market seed).
    const RNG_STREAM: u64;
    /// Fresh state.
    fn new(rng: &mut ChaCha8Rng) -> Self;
    /// One market step at `t_ms` (step `tick`) around `mid_usd`; a taker print with
    /// probability `trade_prob`.
    fn step(
        &mut self,
        t_ms: i64,
        tick: u64,
        mid_usd: f64,
        trade_prob: f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<VenueEvent>;
    /// A REST answer for `path` (`None`: 404).
    fn rest(&self, _path: &str) -> Option<(u16, String)> {
        None
    }
}

/// The registry model of a [`SpotVenue`]: its state and its random stream (taker probability:
/// the market's `coinbase_trade_prob`).
#[derive(Debug)]
pub struct SpotModel<S> {
    state: S,
    rng: ChaCha8Rng,
}

impl<S: SpotVenue> SpotModel<S> {
    /// The registry's model factory.
    pub fn boxed(seed: u64) -> Box<dyn VenueModel> {
        let mut rng = stream_rng(seed, S::RNG_STREAM);
        Box::new(Self {
            state: S::new(&mut rng),
            rng,
        })
    }
}

impl<S: SpotVenue> VenueModel for SpotModel<S> {
    fn step(&mut self, ctx: &StepCtx<'_>) -> Vec<VenueEvent> {
        let mid = ctx.view(S::LAG_MS, &mut self.rng);
        let p = ctx.cfg.coinbase_trade_prob;
        self.state.step(ctx.t_ms, ctx.tick, mid, p, &mut self.rng)
    }

    fn rest(&self, path: &str, _query: &str, _now_ms: i64) -> Option<(u16, String)> {
        self.state.rest(path)
    }

    fn as_any(&self) -> &dyn Any {
        &self.state
    }
}

/// What the Gemini and Bitstamp tests share: frames through ringbolt's adapter, the book the
/// records rebuild, and the venue's own book in the same units.
#[cfg(test)]
pub(crate) mod test_util {
    use std::collections::BTreeMap;

    use ringbolt_bus::{BookLevel, Record, Side as BusSide};
    use ringbolt_feeds::FrameDriver;

    use super::SpotBook;

    /// A book keyed by (bus side, price ×1e8) → size ×1e8.
    pub type Book = BTreeMap<(u8, i64), i64>;

    /// Feeds one frame, which must parse.
    pub fn feed(d: &mut FrameDriver, text: &str) -> Vec<Record> {
        let mut out = Vec::new();
        d.frame(text.as_bytes(), 1, &mut out)
            .unwrap_or_else(|e| panic!("{e}: {text}"));
        out
    }

    /// Applies the book levels among `recs` (size 0 removes).
    pub fn apply(book: &mut Book, recs: &[Record]) {
        for r in recs {
            if let Some(l) = r.body_as::<BookLevel>() {
                if l.size == 0 {
                    book.remove(&(l.side, l.price));
                } else {
                    book.insert((l.side, l.price), l.size);
                }
            }
        }
    }

    /// The venue's book in the bus units (cents → ×1e8).
    pub fn venue_book(b: &SpotBook) -> Book {
        let (bids, asks) = b.sides();
        let side = |levels: Vec<(i64, i64)>, s: BusSide| {
            levels
                .into_iter()
                .map(move |(p, q)| ((s as u8, p * 1_000_000), q))
        };
        side(bids, BusSide::Buy)
            .chain(side(asks, BusSide::Sell))
            .collect()
    }
}
