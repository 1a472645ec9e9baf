//! Positions and cash from `Fill` records only (sans-IO).
//!
//! A fill is identified by its trade id and client order id. Its status moves
//! provisional → confirmed, or provisional → failed; [`fill_step`] says what each new status does
//! to the books: a first provisional (or a first confirmed, after a reconnect) adds the fill, a
//! confirmation of a counted fill changes nothing but its status, a FAILED one removes it, and
//! everything else (duplicates, a FAILED never seen, news after CONFIRMED) is counted and ignored.
//!
//! Cash is in USDC at 1e-8: a buy pays `price × size + fee`, a sell receives `price × size − fee`.
//! Positions are kept per instrument (token), with totals per window and per UTC day (of the
//! window's start).

use std::collections::HashMap;

use ringbolt_bus::{Fill, Record, Side};

use crate::user::{FILL_CONFIRMED, FILL_FAILED, FILL_PROVISIONAL};

/// What a fill status does to the books.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillStep {
    /// Count the fill.
    Add,
    /// Only its status changes (provisional → confirmed).
    Confirm,
    /// Remove the counted fill (FAILED).
    Revert,
    /// Nothing to do (duplicate, unknown, or after the fill was final).
    Ignore,
}

/// The fill state machine: previous status (`None` = never seen) and the new one.
#[must_use]
pub fn fill_step(prev: Option<u8>, new: u8) -> FillStep {
    match (prev, new) {
        (None, FILL_PROVISIONAL | FILL_CONFIRMED) => FillStep::Add,
        (Some(FILL_PROVISIONAL), FILL_CONFIRMED) => FillStep::Confirm,
        (Some(FILL_PROVISIONAL), FILL_FAILED) => FillStep::Revert,
        _ => FillStep::Ignore,
    }
}

/// Shares and cash of one token, or totals of a window or day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Book {
    /// Net shares held, 1e-8 (buys minus sells).
    pub shares_e8: i64,
    /// Of which still provisional, 1e-8.
    pub provisional_shares_e8: i64,
    /// Net cash, USDC 1e-8 (negative after buying).
    pub cash_usdc_e8: i64,
    /// Fees paid, USDC 1e-8 (negative = rebates).
    pub fees_usdc_e8: i64,
    /// Fills counted (not failed).
    pub fills: u64,
    /// Notional bought, USDC 1e-8 (spend, for caps).
    pub bought_usdc_e8: i64,
}

impl Book {
    fn add(&mut self, other: &Book) {
        self.shares_e8 += other.shares_e8;
        self.provisional_shares_e8 += other.provisional_shares_e8;
        self.cash_usdc_e8 += other.cash_usdc_e8;
        self.fees_usdc_e8 += other.fees_usdc_e8;
        self.fills += other.fills;
        self.bought_usdc_e8 += other.bought_usdc_e8;
    }

    fn apply(&mut self, f: &Fill, sign: i64, provisional: bool) {
        let notional = notional_e8(f.price, f.size);
        let buy = f.side == Side::Buy as u8;
        let shares = if buy { f.size } else { -f.size };
        self.shares_e8 += sign * shares;
        if provisional {
            self.provisional_shares_e8 += sign * shares;
        }
        let cash = if buy { -notional } else { notional } - f.fee_usdc;
        self.cash_usdc_e8 += sign * cash;
        self.fees_usdc_e8 += sign * f.fee_usdc;
        if buy {
            self.bought_usdc_e8 += sign * notional;
        }
        self.fills = self.fills.saturating_add_signed(sign);
    }
}

/// `price × size` at 1e-8 (both 1e-8), truncated.
#[must_use]
pub fn notional_e8(price_e8: i64, size_e8: i64) -> i64 {
    i64::try_from(i128::from(price_e8) * i128::from(size_e8) / 100_000_000).unwrap_or(i64::MAX)
}

/// Records the ledger ignored, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LedgerSkips {
    /// Not a `Fill` record.
    pub not_a_fill: u64,
    /// The same status twice.
    pub duplicate: u64,
    /// FAILED for a fill never counted.
    pub failed_unseen: u64,
    /// Any status after CONFIRMED.
    pub after_confirmed: u64,
    /// An unknown status byte.
    pub bad_status: u64,
    /// A fill of a window already closed ([`Ledger::close_windows_before`]).
    pub closed_window: u64,
}

/// Days of per-day totals kept before a close's cutoff day.
pub const DAYS_KEPT: i64 = 2;

/// Positions and cash derived from fills.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Per fill: its status and its window start.
    status: HashMap<([u8; 16], u64), (u8, i64)>,
    tokens: HashMap<u32, Book>,
    /// The window of each token in `tokens`.
    token_window: HashMap<u32, i64>,
    windows: HashMap<i64, Book>,
    days: HashMap<i64, Book>,
    /// Windows starting before this were closed and folded into `closed`.
    closed_before: i64,
    /// Totals of the closed windows.
    closed: Book,
    /// Ignored records by reason.
    pub skips: LedgerSkips,
}

impl Ledger {
    /// Empty.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one record; returns what it did.
    pub fn apply(&mut self, rec: &Record) -> FillStep {
        let Some(f) = rec.body_as::<Fill>() else {
            self.skips.not_a_fill += 1;
            return FillStep::Ignore;
        };
        if !matches!(f.status, FILL_PROVISIONAL | FILL_CONFIRMED | FILL_FAILED) {
            self.skips.bad_status += 1;
            return FillStep::Ignore;
        }
        if f.window_start_s < self.closed_before {
            self.skips.closed_window += 1;
            return FillStep::Ignore;
        }
        let key = (f.trade_id, f.client_order_id);
        let prev = self.status.get(&key).map(|s| s.0);
        let step = fill_step(prev, f.status);
        let (sign, provisional) = match step {
            FillStep::Add => (1, f.status == FILL_PROVISIONAL),
            FillStep::Revert => (-1, true),
            FillStep::Confirm => {
                // Provisional shares become confirmed.
                let shares = if f.side == Side::Buy as u8 {
                    f.size
                } else {
                    -f.size
                };
                for b in self.books(rec.instrument, f.window_start_s) {
                    b.provisional_shares_e8 -= shares;
                }
                self.status.insert(key, (f.status, f.window_start_s));
                return step;
            }
            FillStep::Ignore => {
                match (prev, f.status) {
                    (Some(FILL_CONFIRMED), _) => self.skips.after_confirmed += 1,
                    (None, FILL_FAILED) => self.skips.failed_unseen += 1,
                    _ => self.skips.duplicate += 1,
                }
                return step;
            }
        };
        self.status.insert(key, (f.status, f.window_start_s));
        for b in self.books(rec.instrument, f.window_start_s) {
            b.apply(&f, sign, provisional);
        }
        step
    }

    fn books(&mut self, instrument: u32, window_start_s: i64) -> [&mut Book; 3] {
        let day = window_start_s.div_euclid(86_400);
        self.token_window.insert(instrument, window_start_s);
        [
            self.tokens.entry(instrument).or_default(),
            self.windows.entry(window_start_s).or_default(),
            self.days.entry(day).or_default(),
        ]
    }

    /// Closes every window starting before `cutoff_s`: its totals are folded into
    /// [`Ledger::closed`], and its window, token and per-fill entries are dropped; days more
    /// than [`DAYS_KEPT`] before the cutoff's are dropped too (their windows are in `closed`).
    /// A later fill of a closed window is counted (`skips.closed_window`) and ignored. So the
    /// ledger holds the open windows only, however long the process runs. Cold: at rollovers.
    pub fn close_windows_before(&mut self, cutoff_s: i64) {
        if cutoff_s <= self.closed_before {
            return;
        }
        self.closed_before = cutoff_s;
        let closed = &mut self.closed;
        self.windows.retain(|&w, b| {
            if w < cutoff_s {
                closed.add(b);
            }
            w >= cutoff_s
        });
        let token_window = &mut self.token_window;
        self.tokens
            .retain(|id, _| token_window.get(id).is_some_and(|&w| w >= cutoff_s));
        token_window.retain(|_, w| *w >= cutoff_s);
        self.status.retain(|_, s| s.1 >= cutoff_s);
        let first_day = cutoff_s.div_euclid(86_400) - DAYS_KEPT;
        self.days.retain(|&d, _| d >= first_day);
    }

    /// Totals of the windows closed so far.
    #[must_use]
    pub fn closed(&self) -> Book {
        self.closed
    }

    /// Entries held: (tokens, windows, days, fills).
    #[must_use]
    pub fn held(&self) -> (usize, usize, usize, usize) {
        (
            self.tokens.len(),
            self.windows.len(),
            self.days.len(),
            self.status.len(),
        )
    }

    /// The position in one token (instrument id).
    #[must_use]
    pub fn token(&self, instrument: u32) -> Book {
        self.tokens.get(&instrument).copied().unwrap_or_default()
    }

    /// Totals of one window (by its start, s).
    #[must_use]
    pub fn window(&self, window_start_s: i64) -> Book {
        self.windows
            .get(&window_start_s)
            .copied()
            .unwrap_or_default()
    }

    /// Totals of one UTC day (days since the epoch).
    #[must_use]
    pub fn day(&self, day: i64) -> Book {
        self.days.get(&day).copied().unwrap_or_default()
    }

    /// Every token's position, sorted by instrument.
    #[must_use]
    pub fn tokens(&self) -> Vec<(u32, Book)> {
        let mut v: Vec<_> = self.tokens.iter().map(|(k, b)| (*k, *b)).collect();
        v.sort_unstable_by_key(|(k, _)| *k);
        v
    }
}
