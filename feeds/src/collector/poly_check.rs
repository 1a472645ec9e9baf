//! Polymarket continuity check, sans-IO.
//!
//! The market channel has no sequence numbers, so a lost `price_change` would silently corrupt
//! a book. Every `best_bid_ask` event (custom feature) states the venue's top of book after the
//! changes it follows; [`PolyTopCheck`] keeps each subscribed outcome token's book from the
//! records the adapter emits (`book` snapshots and `price_change` levels) and compares its top
//! with every `best_bid_ask`. A mismatch is a gap: the book is invalidated until the next
//! `book` snapshot (the collector asks for one by unsubscribing and subscribing the asset) and
//! the snapshot's arrival is reported as the resync.

use ringbolt_bus::{
    FLAG_BATCH_END, FLAG_SNAPSHOT, FeedState, FeedStatusBody, Record, RecordKind, TopOfBook, Venue,
};

use ringbolt_market::PolyBook;

use crate::venues::polymarket::Stream;

/// What a record told the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The venue's top of book disagrees with the book built from the stream: updates were
    /// lost. Request a fresh snapshot of `instrument`.
    Gap {
        /// Bus instrument id.
        instrument: u32,
        /// The venue's best bid / ask (1e-8), 0 = none.
        venue_top: (i64, i64),
        /// The local book's best bid / ask (1e-8), 0 = none.
        local_top: (i64, i64),
    },
    /// A snapshot arrived for an instrument that was in a gap.
    Resynced {
        /// Bus instrument id.
        instrument: u32,
    },
}

#[derive(Debug)]
struct Tracked {
    instrument: u32,
    book: PolyBook,
    in_gap: bool,
}

/// Books of the subscribed outcome tokens and their top-of-book checks.
#[derive(Debug, Default)]
pub struct PolyTopCheck {
    tracked: Vec<Tracked>,
    /// `best_bid_ask` events compared against a synchronised book.
    pub checks: u64,
}

impl PolyTopCheck {
    /// No tracked instrument.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts tracking `instrument` (cold path: allocates its book, ~160 KiB).
    pub fn track(&mut self, instrument: u32) {
        if !self.tracked.iter().any(|t| t.instrument == instrument) {
            self.tracked.push(Tracked {
                instrument,
                book: PolyBook::new(),
                in_gap: false,
            });
        }
    }

    /// Stops tracking `instrument` (after unsubscribing it).
    pub fn forget(&mut self, instrument: u32) {
        self.tracked.retain(|t| t.instrument != instrument);
    }

    /// Tracked instruments.
    pub fn instruments(&self) -> impl Iterator<Item = u32> + '_ {
        self.tracked.iter().map(|t| t.instrument)
    }

    /// The connection was lost: every book awaits a snapshot (not a gap of its own: the
    /// reconnect is reported as such).
    pub fn reset(&mut self) {
        for t in &mut self.tracked {
            t.book.invalidate();
            t.in_gap = false;
        }
    }

    /// Looks at one record the Polymarket adapter emitted.
    pub fn on_record(&mut self, r: &Record) -> Option<Verdict> {
        if r.venue != Venue::Polymarket as u8 {
            return None;
        }
        let t = self
            .tracked
            .iter_mut()
            .find(|t| t.instrument == r.instrument)?;
        if r.kind == RecordKind::BookLevel as u8
            && (r.stream == Stream::Book as u8 || r.stream == Stream::PriceChange as u8)
        {
            if r.stream == Stream::PriceChange as u8 && !t.book.is_synced() {
                return None;
            }
            if t.book.apply_record(r).is_err() {
                // A level off the grid: the venue sent something we cannot hold.
                t.book.invalidate();
                return None;
            }
            if r.has_flags(FLAG_SNAPSHOT) && r.has_flags(FLAG_BATCH_END) && t.in_gap {
                t.in_gap = false;
                return Some(Verdict::Resynced {
                    instrument: t.instrument,
                });
            }
            return None;
        }
        if r.kind == RecordKind::FeedStatus as u8 && r.stream == Stream::PriceChange as u8 {
            // The adapter found a loss itself (a `price_change`'s stated top) and asked for a
            // fresh book: await it without a second gap; its arrival is the resync.
            if r.body_as::<FeedStatusBody>()
                .is_some_and(|s| s.state == FeedState::GapDetected as u8)
            {
                t.book.invalidate();
                t.in_gap = true;
            }
            return None;
        }
        if r.kind == RecordKind::TopOfBook as u8 && r.stream == Stream::BestBidAsk as u8 {
            if !t.book.is_synced() {
                return None;
            }
            let top = r.body_as::<TopOfBook>()?;
            self.checks += 1;
            let local = (
                t.book.best_bid().map_or(0, |b| b.0),
                t.book.best_ask().map_or(0, |a| a.0),
            );
            let venue = (top.bid_price, top.ask_price);
            if local != venue {
                t.book.invalidate();
                t.in_gap = true;
                return Some(Verdict::Gap {
                    instrument: t.instrument,
                    venue_top: venue,
                    local_top: local,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::adapter::InstrumentTable;
    use crate::continuity::SyncMode;
    use crate::driver::FrameDriver;

    const ASSET: &str = "1111";

    fn driver() -> FrameDriver {
        let mut d = FrameDriver::new(Venue::Polymarket, SyncMode::Enforce, false).unwrap();
        d.instruments = InstrumentTable::new(false);
        d.instruments
            .register(Venue::Polymarket, ASSET.as_bytes(), "s/up/1111", 7);
        d
    }

    fn feed(d: &mut FrameDriver, c: &mut PolyTopCheck, frame: &str) -> Vec<Verdict> {
        let mut recs = Vec::new();
        d.frame(frame.as_bytes(), 1, &mut recs).unwrap();
        recs.iter().filter_map(|r| c.on_record(r)).collect()
    }

    fn book() -> String {
        format!(
            r#"{{"event_type":"book","asset_id":"{ASSET}","market":"0x1","timestamp":"1","hash":"0","bids":[{{"price":"0.48","size":"10"}},{{"price":"0.49","size":"5"}}],"asks":[{{"price":"0.52","size":"7"}},{{"price":"0.51","size":"3"}}]}}"#
        )
    }

    fn change(price: &str, size: &str, side: &str) -> String {
        format!(
            r#"{{"event_type":"price_change","market":"0x1","timestamp":"2","price_changes":[{{"asset_id":"{ASSET}","price":"{price}","size":"{size}","side":"{side}","hash":"0","best_bid":"","best_ask":""}}]}}"#
        )
    }

    fn bba(bid: &str, ask: &str) -> String {
        format!(
            r#"{{"event_type":"best_bid_ask","market":"0x1","asset_id":"{ASSET}","best_bid":"{bid}","best_ask":"{ask}","spread":"0","timestamp":"3"}}"#
        )
    }

    #[test]
    fn agreeing_tops_pass_a_lost_change_is_a_gap_and_the_snapshot_resyncs() {
        let mut d = driver();
        let mut c = PolyTopCheck::new();
        c.track(7);
        // Before any snapshot nothing is checked.
        assert!(feed(&mut d, &mut c, &bba("0.49", "0.51")).is_empty());
        assert!(feed(&mut d, &mut c, &book()).is_empty());
        assert!(feed(&mut d, &mut c, &bba("0.49", "0.51")).is_empty());
        assert!(feed(&mut d, &mut c, &change("0.50", "4", "BUY")).is_empty());
        assert!(feed(&mut d, &mut c, &bba("0.5", "0.51")).is_empty());
        assert_eq!(c.checks, 2);
        // The venue removed the 0.51 ask in a change we never saw.
        let v = feed(&mut d, &mut c, &bba("0.5", "0.52"));
        assert_eq!(
            v,
            vec![Verdict::Gap {
                instrument: 7,
                venue_top: (50_000_000, 52_000_000),
                local_top: (50_000_000, 51_000_000)
            }]
        );
        // Until the snapshot the book is not trusted: no further verdicts.
        assert!(feed(&mut d, &mut c, &bba("0.3", "0.9")).is_empty());
        assert_eq!(
            feed(&mut d, &mut c, &book()),
            vec![Verdict::Resynced { instrument: 7 }]
        );
        assert!(feed(&mut d, &mut c, &bba("0.49", "0.51")).is_empty());
        // An empty side is 0 on both ends.
        let empty_asks = format!(
            r#"{{"event_type":"book","asset_id":"{ASSET}","market":"0x1","timestamp":"1","hash":"0","bids":[{{"price":"0.48","size":"10"}}],"asks":[]}}"#
        );
        assert!(feed(&mut d, &mut c, &empty_asks).is_empty());
        assert!(feed(&mut d, &mut c, &bba("0.48", "")).is_empty());
        // Untracked instruments and other venues are ignored.
        c.forget(7);
        assert!(feed(&mut d, &mut c, &bba("0.1", "0.2")).is_empty());
        c.track(7);
        c.reset();
        assert!(feed(&mut d, &mut c, &bba("0.1", "0.2")).is_empty());
    }

    #[test]
    fn a_loss_the_adapter_found_is_awaited_without_a_second_gap() {
        let mut d = driver();
        let mut c = PolyTopCheck::new();
        c.track(7);
        assert!(feed(&mut d, &mut c, &book()).is_empty());
        // The change states best bid 0.48: the 0.49 bid was removed in a change we never saw.
        let stated = format!(
            r#"{{"event_type":"price_change","market":"0x1","timestamp":"2","price_changes":[{{"asset_id":"{ASSET}","price":"0.52","size":"6","side":"SELL","hash":"0","best_bid":"0.48","best_ask":"0.51"}}]}}"#
        );
        assert!(feed(&mut d, &mut c, &stated).is_empty());
        assert_eq!(d.counters.stream(Stream::PriceChange as u8).gaps, 1);
        assert_eq!(d.actions.len(), 1, "the adapter resubscribes");
        // The venue's top disagrees with the (known bad) book: no second gap.
        assert!(feed(&mut d, &mut c, &bba("0.48", "0.51")).is_empty());
        // The fresh book is the resync.
        assert_eq!(
            feed(&mut d, &mut c, &book()),
            vec![Verdict::Resynced { instrument: 7 }]
        );
    }
}
