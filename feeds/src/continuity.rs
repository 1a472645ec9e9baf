//! Continuity rules as sans-IO state machines: contiguous sequence numbers, Binance depth
//! update-id chaining against a REST snapshot, and "book needs a snapshot" gating.
//!
//! The machines only decide; adapters act on the verdicts (emit, buffer, drop, queue a
//! resync) and count gaps and resyncs per stream.

/// Whether continuity is enforced (live: hold back or drop updates that cannot be applied and
/// ask for a resync) or only observed (offline parsing of arbitrary captures: emit everything,
/// count gaps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Live collector: updates are only emitted onto a synchronised book.
    #[default]
    Enforce,
    /// Offline tools: every update is emitted, gaps are counted.
    Observe,
}

/// Result of checking one sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqCheck {
    /// The first number seen (or first after a reset).
    First,
    /// Exactly the expected next number.
    InOrder,
    /// Numbers were skipped; `missed` of them.
    Gap {
        /// How many numbers are missing.
        missed: u64,
    },
    /// Not newer than the last one (duplicate or replayed); ignore.
    Stale,
}

/// Tracks a sequence that must advance by exactly one (Coinbase `trade_id` per product,
/// Deribit `trade_seq`, Bybit `u`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqTracker {
    last: Option<u64>,
}

impl SeqTracker {
    /// Checks and records `seq`.
    #[inline]
    pub fn check(&mut self, seq: u64) -> SeqCheck {
        let verdict = match self.last {
            None => SeqCheck::First,
            Some(last) if seq == last.wrapping_add(1) => SeqCheck::InOrder,
            Some(last) if seq <= last => return SeqCheck::Stale,
            Some(last) => SeqCheck::Gap {
                missed: seq - last - 1,
            },
        };
        self.last = Some(seq);
        verdict
    }

    /// Forgets the last number (after a reconnect).
    pub fn reset(&mut self) {
        self.last = None;
    }

    /// The last number accepted.
    #[must_use]
    pub const fn last(&self) -> Option<u64> {
        self.last
    }
}

/// Which Binance depth rule set applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinanceMarket {
    /// Spot: `U`/`u` chaining, first event `U <= lastUpdateId+1 <= u`.
    Spot,
    /// USD-M futures: `pu` chaining, first event `U <= lastUpdateId <= u`.
    Futures,
}

/// Verdict on one depth update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepthVerdict {
    /// No snapshot yet: keep the update until the snapshot arrives.
    Buffer,
    /// Apply it to the book.
    Apply,
    /// Older than the book: ignore it.
    Drop,
    /// It does not chain: the book is invalid; fetch a new snapshot. `missed` update ids when
    /// countable.
    Gap {
        /// Update ids missing between the book and this event (0 if unknown).
        missed: u64,
    },
}

/// Verdict on a REST snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotVerdict {
    /// Apply it, then replay the buffered updates through [`BinanceDepthSync::on_update`].
    Apply,
    /// Older than the first buffered update (spot rule): fetch again.
    Refetch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DepthState {
    AwaitSnapshot { first_u: Option<u64> },
    Synced { last_u: u64, chained: bool },
}

/// Binance diff-depth synchronisation (binance-spot-api-docs web-socket-streams.md "How to
/// manage a local order book correctly"; USD-M futures docs for the `pu` rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinanceDepthSync {
    market: BinanceMarket,
    state: DepthState,
}

impl BinanceDepthSync {
    /// Awaiting a snapshot.
    #[must_use]
    pub const fn new(market: BinanceMarket) -> Self {
        BinanceDepthSync {
            market,
            state: DepthState::AwaitSnapshot { first_u: None },
        }
    }

    /// Whether a snapshot has been applied and the chain holds.
    #[must_use]
    pub const fn is_synced(&self) -> bool {
        matches!(self.state, DepthState::Synced { .. })
    }

    /// Forgets the book (reconnect or gap): await a new snapshot.
    pub fn reset(&mut self) {
        self.state = DepthState::AwaitSnapshot { first_u: None };
    }

    /// Applies the snapshot rule for `last_update_id`.
    pub fn on_snapshot(&mut self, last_update_id: u64) -> SnapshotVerdict {
        if let DepthState::AwaitSnapshot {
            first_u: Some(first_u),
        } = self.state
            && self.market == BinanceMarket::Spot
            && last_update_id < first_u
        {
            return SnapshotVerdict::Refetch;
        }
        self.state = DepthState::Synced {
            last_u: last_update_id,
            chained: false,
        };
        SnapshotVerdict::Apply
    }

    /// Checks one update (`first` = `U`, `last` = `u`, `prev` = `pu` on futures).
    pub fn on_update(&mut self, first: u64, last: u64, prev: Option<u64>) -> DepthVerdict {
        match self.state {
            DepthState::AwaitSnapshot { first_u } => {
                if first_u.is_none() {
                    self.state = DepthState::AwaitSnapshot {
                        first_u: Some(first),
                    };
                }
                DepthVerdict::Buffer
            }
            DepthState::Synced {
                last_u,
                chained: false,
            } => {
                let (stale, fits) = match self.market {
                    BinanceMarket::Spot => (
                        last <= last_u,
                        first <= last_u.saturating_add(1) && last_u.saturating_add(1) <= last,
                    ),
                    BinanceMarket::Futures => (last < last_u, first <= last_u && last_u <= last),
                };
                if stale {
                    DepthVerdict::Drop
                } else if fits {
                    self.state = DepthState::Synced {
                        last_u: last,
                        chained: true,
                    };
                    DepthVerdict::Apply
                } else {
                    self.reset();
                    DepthVerdict::Gap {
                        missed: first.saturating_sub(last_u.saturating_add(1)),
                    }
                }
            }
            DepthState::Synced {
                last_u,
                chained: true,
            } => {
                let fits = match (self.market, prev) {
                    (BinanceMarket::Futures, Some(pu)) => pu == last_u,
                    _ => first == last_u.wrapping_add(1),
                };
                if fits {
                    self.state = DepthState::Synced {
                        last_u: last,
                        chained: true,
                    };
                    DepthVerdict::Apply
                } else if last <= last_u {
                    DepthVerdict::Drop
                } else {
                    self.reset();
                    DepthVerdict::Gap {
                        missed: first.saturating_sub(last_u.saturating_add(1)),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_tracker() {
        let mut t = SeqTracker::default();
        assert_eq!(t.check(10), SeqCheck::First);
        assert_eq!(t.check(11), SeqCheck::InOrder);
        assert_eq!(t.check(11), SeqCheck::Stale);
        assert_eq!(t.check(15), SeqCheck::Gap { missed: 3 });
        assert_eq!(t.last(), Some(15));
        t.reset();
        assert_eq!(t.check(3), SeqCheck::First);
    }

    #[test]
    fn binance_spot_rules() {
        // The ids of binance_spot/resync_scenario_lrcbtc.jsonl.
        let mut s = BinanceDepthSync::new(BinanceMarket::Spot);
        assert_eq!(
            s.on_update(259_345_536, 259_345_539, None),
            DepthVerdict::Buffer
        );
        assert_eq!(s.on_snapshot(259_345_543), SnapshotVerdict::Apply);
        // Replay of the buffered update: older than the snapshot.
        for (first, last, verdict) in [
            (259_345_536, 259_345_539, DepthVerdict::Drop),
            (259_345_540, 259_345_543, DepthVerdict::Drop),
            (259_345_544, 259_345_545, DepthVerdict::Apply),
            (259_345_546, 259_345_546, DepthVerdict::Apply),
            (259_345_546, 259_345_546, DepthVerdict::Drop),
            (259_345_550, 259_345_551, DepthVerdict::Gap { missed: 3 }),
        ] {
            assert_eq!(s.on_update(first, last, None), verdict, "{first}..{last}");
        }
        assert!(!s.is_synced());
        // Snapshot older than the first buffered event: refetch.
        assert_eq!(
            s.on_update(259_345_552, 259_345_552, None),
            DepthVerdict::Buffer
        );
        assert_eq!(s.on_snapshot(259_345_500), SnapshotVerdict::Refetch);
        // First event must straddle lastUpdateId+1.
        assert_eq!(s.on_snapshot(259_345_560), SnapshotVerdict::Apply);
        assert_eq!(
            s.on_update(259_345_563, 259_345_563, None),
            DepthVerdict::Gap { missed: 2 }
        );
    }

    #[test]
    fn binance_futures_rules() {
        let mut s = BinanceDepthSync::new(BinanceMarket::Futures);
        assert_eq!(s.on_snapshot(100), SnapshotVerdict::Apply);
        assert_eq!(s.on_update(90, 99, Some(89)), DepthVerdict::Drop);
        assert_eq!(s.on_update(95, 105, Some(94)), DepthVerdict::Apply);
        assert_eq!(s.on_update(106, 110, Some(105)), DepthVerdict::Apply);
        assert_eq!(
            s.on_update(112, 115, Some(111)),
            DepthVerdict::Gap { missed: 1 }
        );
    }
}
