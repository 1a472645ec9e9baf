//! The paper exchange's matching, fees and settlement.
//!
//! Matching rules (anchored on hftbacktest's models; decision: `docs/adr/0018-paper-exchange.md`):
//! - an order reaches the venue `latency_ns(client_order_id)` after its decision
//!   ([`crate::PaperConfig::latency_ns`]); it is acknowledged then and matched against the book
//!   as observed at that moment (the records before the first one stamped at or after arrival);
//! - a marketable order takes the opposite side's levels up to its limit, best first, each fill at
//!   the level's price (partial fills), sizes floored to 0.01 share; what it took is remembered
//!   per level until the venue restates that level, so two paper orders never take the same
//!   displayed size twice;
//! - FAK cancels the rest, FOK fills completely or not at all, GTC/GTD rest the rest at the
//!   limit, **behind the displayed size** at that price (queue ahead); a trade at the price
//!   consumes the queue ahead first and then fills the order as maker; a trade through the price
//!   fills it at once; a level shrinking below the queue ahead shortens it (risk-averse queue
//!   model: cancels are assumed to be behind us); a level on the other side crossing the limit
//!   fills it as maker;
//! - fees: taker `shares × rate × (p(1 − p))^e` with the market's parameters, maker a rebate of
//!   `maker_rebate_rate` × that (a negative fee);
//! - orders expire at GTD expiry and at the window's end (the market closes);
//! - settlement: when the first Chainlink report stamped at or after a window's end arrives
//!   (within the tolerance), the window resolves Up when end ≥ start (start = the first report
//!   stamped at or after the start): one [`Settlement`] per token, paying 1 per winning share.
//!
//! Paper fills are final: each is one [`Fill`] record with `status = confirmed` (no provisional
//! step; there is no chain to wait for).

use ringbolt_bus::{
    BookLevel, FLAG_BATCH_BEGIN, FLAG_SNAPSHOT, Fill, IndexPrice, OrderState, OrderTransition,
    PRICE_SCALE, Record, RecordKind, SIZE_SCALE, Settlement, Side, Trade, Venue,
};
use ringbolt_market::{MarketParams, NS, Outcome, PolyBook, WINDOW_S, event_ts};

use crate::{PAPER_STREAM, PaperConfig};

/// The caller's key of a token (the trade loop uses the engine's instrument id).
pub type TokenKey = u32;

/// Smallest size step: 0.01 share (Polymarket's size precision).
const SIZE_STEP: i64 = SIZE_SCALE / 100;
/// Levels remembered as taken per token.
const TAKEN: usize = 16;
/// Most levels one order takes in one pass.
const MAX_TAKE: usize = 32;

/// Time in force of a paper order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaperTif {
    /// Fill and kill: take what is there up to the limit, cancel the rest.
    Fak,
    /// Fill or kill: all at once or nothing.
    Fok,
    /// Good till cancelled (here: till the window ends).
    Gtc,
    /// Good till the given time (ns) or the window's end.
    Gtd {
        /// Expiry (ns since the epoch).
        expires_at_ns: i64,
    },
}

/// An order handed to the paper exchange.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaperOrder {
    /// Client order id (the decision's).
    pub client_order_id: u64,
    /// The token, as registered with [`PaperExchange::register_token`].
    pub token: TokenKey,
    /// Buy or sell.
    pub side: Side,
    /// Limit price, [`PRICE_SCALE`].
    pub price: i64,
    /// Shares, [`SIZE_SCALE`].
    pub size: i64,
    /// Time in force.
    pub tif: PaperTif,
    /// Event time of the decision (ns): the latency counts from here.
    pub decided_at_ns: i64,
    /// The market's parameters (fee curve).
    pub params: MarketParams,
}

/// Counters of the paper exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PaperStats {
    /// Orders received.
    pub orders: u64,
    /// Orders for a token never registered (dropped, counted).
    pub unknown_token: u64,
    /// Orders that reached the venue after their window closed (rejected).
    pub late: u64,
    /// Fills as taker.
    pub taker_fills: u64,
    /// Fills as maker.
    pub maker_fills: u64,
    /// Orders cancelled (FAK/FOK rest).
    pub cancelled: u64,
    /// Orders expired (GTD, window end).
    pub expired: u64,
    /// Settlement records emitted.
    pub settlements: u64,
    /// Windows closed without a start or end price in tolerance (not settled).
    pub unsettled_windows: u64,
    /// Book levels the book refused (off grid, negative).
    pub bad_levels: u64,
}

/// One token's observed book and our position in it.
#[derive(Clone, Debug)]
struct TokenSlot {
    key: TokenKey,
    instrument_out: u32,
    window_start_s: i64,
    outcome: Outcome,
    book: PolyBook,
    snap_sides: u8,
    /// (side byte, price, size) we took from a level since the venue last restated it.
    taken: [(u8, i64, i64); TAKEN],
    /// Net shares held, [`SIZE_SCALE`].
    position: i64,
    live: bool,
}

impl TokenSlot {
    fn taken_at(&self, side: Side, price: i64) -> i64 {
        self.taken
            .iter()
            .find(|t| t.0 == side as u8 && t.1 == price && t.2 > 0)
            .map_or(0, |t| t.2)
    }

    fn add_taken(&mut self, side: Side, price: i64, size: i64) {
        let i = self
            .taken
            .iter()
            .position(|t| t.0 == side as u8 && t.1 == price && t.2 > 0)
            .or_else(|| self.taken.iter().position(|t| t.2 == 0))
            .unwrap_or(0);
        let prev = if self.taken[i].0 == side as u8 && self.taken[i].1 == price {
            self.taken[i].2
        } else {
            0
        };
        self.taken[i] = (side as u8, price, prev + size);
    }

    fn restated(&mut self, side: u8, price: Option<i64>) {
        for t in &mut self.taken {
            if t.0 == side && price.is_none_or(|p| p == t.1) {
                t.2 = 0;
            }
        }
    }
}

/// A window's reference prices and tokens.
#[derive(Clone, Copy, Debug)]
struct WindowRef {
    start_s: i64,
    /// Chainlink at the start, [`PRICE_SCALE`]; 0 until seen.
    start_price: i64,
    tokens: [Option<usize>; 2],
}

/// An order at the venue (or on its way).
#[derive(Clone, Copy, Debug)]
struct Working {
    order: PaperOrder,
    slot: usize,
    arrive_ns: i64,
    filled: i64,
    queue_ahead: i64,
    state: OrderState,
}

impl Working {
    fn remaining(&self) -> i64 {
        self.order.size - self.filled
    }
}

/// Where emitted records are buffered.
#[derive(Debug, Default)]
struct Outbox {
    records: Vec<Record>,
    emitted: u64,
    trades: u64,
}

impl Outbox {
    fn push(&mut self, mut r: Record, ts_ns: i64) {
        self.emitted += 1;
        r.exchange_ts_ns = ts_ns;
        r.recv_ts_ns = ts_ns;
        r.venue_seq = self.emitted;
        self.records.push(r);
    }

    fn transition(&mut self, w: &Working, instrument: u32, to: OrderState, ts_ns: i64) {
        let body = OrderTransition {
            client_order_id: w.order.client_order_id,
            price: w.order.price,
            size: w.order.size,
            filled: w.filled,
            venue_order_id: [0; 16],
            error_class: 0,
            http_status: 0,
            from_state: w.state as u8,
            to_state: to as u8,
            side: w.order.side as u8,
            paper: 1,
            reserved: [0; 24],
        };
        self.push(
            Record::new(Venue::Internal, PAPER_STREAM, instrument, &body),
            ts_ns,
        );
    }
}

/// The paper exchange. See the module documentation for its rules.
#[derive(Debug)]
pub struct PaperExchange {
    cfg: PaperConfig,
    now_ns: i64,
    /// Token key → slot + 1 (0 = unknown).
    slot_of_key: Vec<u32>,
    tokens: Vec<TokenSlot>,
    windows: Vec<WindowRef>,
    working: Vec<Working>,
    out: Outbox,
    /// Counters.
    pub stats: PaperStats,
}

impl PaperExchange {
    /// A paper exchange with `cfg` (validated by the caller).
    #[must_use]
    pub fn new(cfg: PaperConfig) -> Self {
        Self {
            cfg,
            now_ns: 0,
            slot_of_key: Vec::new(),
            tokens: Vec::new(),
            windows: Vec::new(),
            working: Vec::with_capacity(64),
            out: Outbox {
                records: Vec::with_capacity(256),
                ..Outbox::default()
            },
            stats: PaperStats::default(),
        }
    }

    /// The exchange clock (ns): the latest record event time seen.
    #[must_use]
    pub fn now_ns(&self) -> i64 {
        self.now_ns
    }

    /// Per-window state held: (token slots, open windows, working orders). Token slots are
    /// reused once their window closes, so all three stay bounded by the windows open at once.
    #[must_use]
    pub fn held(&self) -> (usize, usize, usize) {
        (self.tokens.len(), self.windows.len(), self.working.len())
    }

    /// Net shares held of token `key` (0 when unknown).
    #[must_use]
    pub fn position(&self, key: TokenKey) -> i64 {
        self.slot(key).map_or(0, |s| self.tokens[s].position)
    }

    fn slot(&self, key: TokenKey) -> Option<usize> {
        let s = *self.slot_of_key.get(key as usize)?;
        (s != 0).then(|| s as usize - 1)
    }

    /// Registers a window's token (cold: once per token). `instrument_out` is the instrument id
    /// written into the records about it.
    pub fn register_token(
        &mut self,
        key: TokenKey,
        instrument_out: u32,
        window_start_s: i64,
        outcome: Outcome,
    ) {
        // The same token again is a no-op; a key that now stands for another instrument (its bus
        // slot was reused under a new generation) is registered afresh.
        if self
            .slot(key)
            .is_some_and(|s| self.tokens[s].instrument_out == instrument_out)
        {
            return;
        }
        let slot = match self.tokens.iter().position(|t| !t.live) {
            Some(i) => {
                self.tokens[i].book.reset();
                i
            }
            None => {
                self.tokens.push(TokenSlot {
                    key,
                    instrument_out,
                    window_start_s,
                    outcome,
                    book: PolyBook::new(),
                    snap_sides: 0,
                    taken: [(0, 0, 0); TAKEN],
                    position: 0,
                    live: true,
                });
                self.tokens.len() - 1
            }
        };
        let t = &mut self.tokens[slot];
        (t.key, t.instrument_out, t.window_start_s, t.outcome) =
            (key, instrument_out, window_start_s, outcome);
        (t.snap_sides, t.taken, t.position, t.live) = (0, [(0, 0, 0); TAKEN], 0, true);
        if self.slot_of_key.len() <= key as usize {
            self.slot_of_key.resize(key as usize + 1, 0);
        }
        self.slot_of_key[key as usize] = slot as u32 + 1;
        let w = match self
            .windows
            .iter()
            .position(|w| w.start_s == window_start_s)
        {
            Some(i) => i,
            None => {
                self.windows.push(WindowRef {
                    start_s: window_start_s,
                    start_price: 0,
                    tokens: [None; 2],
                });
                self.windows.len() - 1
            }
        };
        self.windows[w].tokens[outcome.index()] = Some(slot);
    }

    /// Takes an order (it reaches the venue after its latency).
    pub fn order(&mut self, order: PaperOrder) {
        self.stats.orders += 1;
        let Some(slot) = self.slot(order.token) else {
            self.stats.unknown_token += 1;
            return;
        };
        self.working.push(Working {
            order,
            slot,
            arrive_ns: order
                .decided_at_ns
                .saturating_add(self.cfg.latency_ns(order.client_order_id)),
            filled: 0,
            queue_ahead: 0,
            state: OrderState::Submitted,
        });
    }

    /// Whether records wait to be drained.
    #[must_use]
    pub fn has_output(&self) -> bool {
        !self.out.records.is_empty()
    }

    /// Hands the records emitted so far to `publish`, in order.
    pub fn drain(&mut self, mut publish: impl FnMut(&Record)) {
        for r in &self.out.records {
            publish(r);
        }
        self.out.records.clear();
    }

    /// One observed record (`key`: its token's key when it is a Polymarket token record).
    pub fn on_record(&mut self, key: Option<TokenKey>, rec: &Record) {
        let t = event_ts(rec);
        if t > self.now_ns {
            self.now_ns = t;
        }
        self.arrive_due();
        self.expire_due();
        self.close_stale();
        let slot = key.and_then(|k| self.slot(k));
        match (rec.record_kind(), rec.record_venue(), slot) {
            (Some(RecordKind::BookLevel), Some(Venue::Polymarket), Some(s)) => {
                self.on_level(s, rec);
            }
            (Some(RecordKind::Trade), Some(Venue::Polymarket), Some(s)) => self.on_trade(s, rec),
            (Some(RecordKind::IndexPrice), Some(Venue::ChainlinkRtds), _) => self.on_chainlink(rec),
            _ => {}
        }
    }

    /// Orders whose arrival time has come: acknowledged and matched (in arrival order).
    fn arrive_due(&mut self) {
        while let Some(i) = self
            .working
            .iter()
            .enumerate()
            .filter(|(_, w)| w.state == OrderState::Submitted && w.arrive_ns <= self.now_ns)
            .min_by_key(|(_, w)| (w.arrive_ns, w.order.client_order_id))
            .map(|(i, _)| i)
        {
            let mut w = self.working[i];
            let inst = self.tokens[w.slot].instrument_out;
            let end_ns = (self.tokens[w.slot].window_start_s + WINDOW_S) * NS;
            if w.arrive_ns >= end_ns {
                self.stats.late += 1;
                self.out
                    .transition(&w, inst, OrderState::Rejected, w.arrive_ns);
                self.working.swap_remove(i);
                continue;
            }
            self.out
                .transition(&w, inst, OrderState::Acked, w.arrive_ns);
            w.state = OrderState::Acked;
            self.take(&mut w);
            let keep =
                w.remaining() > 0 && matches!(w.order.tif, PaperTif::Gtc | PaperTif::Gtd { .. });
            if keep {
                w.queue_ahead = self.tokens[w.slot]
                    .book
                    .size_at(w.order.side, w.order.price);
                self.working[i] = w;
            } else {
                if w.remaining() > 0 {
                    self.stats.cancelled += 1;
                    self.out
                        .transition(&w, inst, OrderState::Cancelled, w.arrive_ns);
                }
                self.working.swap_remove(i);
            }
        }
    }

    /// Resting orders past their GTD expiry or their window's end: expired.
    fn expire_due(&mut self) {
        let now = self.now_ns;
        let mut i = 0;
        while i < self.working.len() {
            let w = self.working[i];
            let tok = &self.tokens[w.slot];
            let end_ns = (tok.window_start_s + WINDOW_S) * NS;
            let gtd = match w.order.tif {
                PaperTif::Gtd { expires_at_ns } => expires_at_ns,
                _ => i64::MAX,
            };
            let at = end_ns.min(gtd);
            if w.state != OrderState::Submitted && now >= at {
                self.stats.expired += 1;
                let inst = tok.instrument_out;
                self.out.transition(&w, inst, OrderState::Expired, at);
                self.working.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// A marketable pass: takes the opposite side's levels up to the limit.
    fn take(&mut self, w: &mut Working) {
        let tok = &self.tokens[w.slot];
        let opp = if w.order.side == Side::Buy {
            Side::Sell
        } else {
            Side::Buy
        };
        let crosses = |p: i64| {
            if w.order.side == Side::Buy {
                p <= w.order.price
            } else {
                p >= w.order.price
            }
        };
        let mut plan = [(0i64, 0i64); MAX_TAKE];
        let mut n = 0;
        let mut want = w.remaining();
        for (price, size) in tok.book.levels(opp) {
            if !crosses(price) || want <= 0 || n == MAX_TAKE {
                break;
            }
            let avail = size - tok.taken_at(opp, price);
            let q = (avail.min(want) / SIZE_STEP) * SIZE_STEP;
            if q > 0 {
                plan[n] = (price, q);
                n += 1;
                want -= q;
            }
        }
        if w.order.tif == PaperTif::Fok && want > 0 {
            return;
        }
        for &(price, q) in &plan[..n] {
            self.tokens[w.slot].add_taken(opp, price, q);
            self.fill(w, price, q, false, w.arrive_ns);
        }
    }

    /// Records a fill of `q` shares at `price` (maker or taker) and its transition.
    fn fill(&mut self, w: &mut Working, price: i64, q: i64, maker: bool, ts_ns: i64) {
        let tok = &mut self.tokens[w.slot];
        let p = price as f64 / PRICE_SCALE as f64;
        let fee_per_share = w.order.params.taker_fee_per_share(p);
        let shares = q as f64 / SIZE_SCALE as f64;
        let fee = if maker {
            -(shares * fee_per_share * self.cfg.maker_rebate_rate)
        } else {
            shares * fee_per_share
        };
        tok.position += if w.order.side == Side::Buy { q } else { -q };
        self.out.trades += 1;
        let mut trade_id = [0u8; 16];
        trade_id[..8].copy_from_slice(&self.out.trades.to_le_bytes());
        trade_id[8..13].copy_from_slice(b"paper");
        let body = Fill {
            ts_ns,
            client_order_id: w.order.client_order_id,
            price,
            size: q,
            fee_usdc: (fee * PRICE_SCALE as f64).round() as i64,
            window_start_s: tok.window_start_s,
            trade_id,
            side: w.order.side as u8,
            liquidity: if maker { 1 } else { 2 },
            status: 2,
            paper: 1,
            outcome: tok.outcome as u8,
            reserved: [0; 11],
        };
        let inst = tok.instrument_out;
        self.out.push(
            Record::new(Venue::Internal, PAPER_STREAM, inst, &body),
            ts_ns,
        );
        if maker {
            self.stats.maker_fills += 1;
        } else {
            self.stats.taker_fills += 1;
        }
        w.filled += q;
        let to = if w.remaining() > 0 {
            OrderState::PartiallyFilled
        } else {
            OrderState::Filled
        };
        self.out.transition(w, inst, to, ts_ns);
        w.state = to;
    }

    fn on_level(&mut self, s: usize, rec: &Record) {
        let Some(level) = rec.body_as::<BookLevel>() else {
            return;
        };
        let tok = &mut self.tokens[s];
        if rec.has_flags(FLAG_SNAPSHOT) {
            if rec.has_flags(FLAG_BATCH_BEGIN) {
                tok.snap_sides = 0;
            }
            let bit = if level.side == Side::Buy as u8 { 1 } else { 2 };
            if tok.snap_sides & bit == 0 {
                if let Some(side) = Side::from_u8(level.side) {
                    tok.book.clear_side(side);
                }
                tok.restated(level.side, None);
                tok.snap_sides |= bit;
            }
        }
        if tok.book.apply_level(&level).is_err() {
            self.stats.bad_levels += 1;
            return;
        }
        tok.restated(level.side, Some(level.price));
        self.on_level_resting(s, &level);
    }

    /// Resting orders of token slot `s` after a level change: the queue ahead shrinks with the
    /// level (risk-averse), a crossing level on the other side fills as maker.
    fn on_level_resting(&mut self, s: usize, level: &BookLevel) {
        for i in 0..self.working.len() {
            let mut w = self.working[i];
            if w.slot != s || w.state == OrderState::Submitted || w.remaining() <= 0 {
                continue;
            }
            let (ours, theirs) = if w.order.side == Side::Buy {
                (Side::Buy, Side::Sell)
            } else {
                (Side::Sell, Side::Buy)
            };
            if level.side == ours as u8 && level.price == w.order.price {
                w.queue_ahead = w.queue_ahead.min(level.size);
            }
            let crossing = if ours == Side::Buy {
                level.price <= w.order.price
            } else {
                level.price >= w.order.price
            };
            if level.side == theirs as u8 && crossing && level.size > 0 {
                let avail = level.size - self.tokens[s].taken_at(theirs, level.price);
                let q = (avail.min(w.remaining()) / SIZE_STEP) * SIZE_STEP;
                if q > 0 {
                    self.tokens[s].add_taken(theirs, level.price, q);
                    let now = self.now_ns;
                    let price = w.order.price;
                    self.fill(&mut w, price, q, true, now);
                }
            }
            self.working[i] = w;
        }
        self.working.retain(|w| w.remaining() > 0);
    }

    /// A trade of token slot `s`: consumes the queue ahead of resting orders at its price, fills
    /// them as maker past it (or at once when it traded through their price).
    fn on_trade(&mut self, s: usize, rec: &Record) {
        let Some(t) = rec.body_as::<Trade>() else {
            return;
        };
        let mut left = t.size;
        for i in 0..self.working.len() {
            let mut w = self.working[i];
            if w.slot != s || w.state == OrderState::Submitted || left <= 0 {
                continue;
            }
            let (hits_us, through) = match w.order.side {
                Side::Buy => (t.side == Side::Sell as u8, t.price < w.order.price),
                _ => (t.side == Side::Buy as u8, t.price > w.order.price),
            };
            if !hits_us || !(through || t.price == w.order.price) {
                continue;
            }
            let past_queue = if through {
                left
            } else {
                let used = left.min(w.queue_ahead);
                w.queue_ahead -= used;
                left - used
            };
            let q = (past_queue.min(w.remaining()) / SIZE_STEP) * SIZE_STEP;
            if q > 0 {
                left -= q;
                let now = self.now_ns;
                let price = w.order.price;
                self.fill(&mut w, price, q, true, now);
            }
            self.working[i] = w;
        }
        self.working.retain(|w| w.remaining() > 0);
    }

    /// A Chainlink report: a window's start price, or its end price and settlement.
    fn on_chainlink(&mut self, rec: &Record) {
        let Some(ip) = rec.body_as::<IndexPrice>() else {
            return;
        };
        let price = if ip.price > 0 {
            ip.price
        } else {
            i64::try_from(ip.value_e18 / 10_000_000_000).unwrap_or(0)
        };
        if price <= 0 || (ip.price_type != 0 && ip.price_type != 1) {
            return;
        }
        let ts = if rec.exchange_ts_ns > 0 {
            rec.exchange_ts_ns
        } else {
            self.now_ns
        };
        let tol = self.cfg.settle_tolerance_ms as i64 * 1_000_000;
        let mut i = 0;
        while i < self.windows.len() {
            let w = self.windows[i];
            let (start_ns, end_ns) = (w.start_s * NS, (w.start_s + WINDOW_S) * NS);
            if w.start_price == 0 && ts >= start_ns && ts <= start_ns + tol {
                self.windows[i].start_price = price;
            }
            if ts < end_ns {
                i += 1;
                continue;
            }
            if w.start_price > 0 && ts <= end_ns + tol {
                self.settle(&w, price);
            } else {
                self.stats.unsettled_windows += 1;
            }
            self.close_window(&w);
            self.windows.swap_remove(i);
        }
    }

    /// Windows whose end is more than the tolerance past without an end price (no Chainlink
    /// report): closed unsettled, so their slots are reused.
    fn close_stale(&mut self) {
        let tol = self.cfg.settle_tolerance_ms as i64 * 1_000_000;
        let mut i = 0;
        while i < self.windows.len() {
            let w = self.windows[i];
            if self.now_ns > (w.start_s + WINDOW_S) * NS + tol {
                self.stats.unsettled_windows += 1;
                self.close_window(&w);
                self.windows.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// One [`Settlement`] per registered token of window `w`.
    fn settle(&mut self, w: &WindowRef, end_price: i64) {
        let winner = if end_price >= w.start_price {
            Outcome::Up
        } else {
            Outcome::Down
        };
        for slot in w.tokens.iter().flatten() {
            let tok = &self.tokens[*slot];
            let shares = tok.position.max(0);
            let body = Settlement {
                window_start_s: w.start_s,
                start_price: w.start_price,
                end_price,
                shares,
                payout_usdc: if tok.outcome == winner { shares } else { 0 },
                outcome: winner as u8,
                token_outcome: tok.outcome as u8,
                source: Venue::ChainlinkRtds as u8,
                paper: 1,
                reserved: [0; 36],
            };
            let r = Record::new(Venue::Internal, PAPER_STREAM, tok.instrument_out, &body);
            self.out.push(r, self.now_ns);
            self.stats.settlements += 1;
        }
    }

    /// Expires what still works in window `w` and frees its token slots.
    fn close_window(&mut self, w: &WindowRef) {
        let end_ns = (w.start_s + WINDOW_S) * NS;
        let slots: [Option<usize>; 2] = w.tokens;
        let mut i = 0;
        while i < self.working.len() {
            let wk = self.working[i];
            if slots.contains(&Some(wk.slot)) {
                let inst = self.tokens[wk.slot].instrument_out;
                self.stats.expired += 1;
                self.out.transition(&wk, inst, OrderState::Expired, end_ns);
                self.working.swap_remove(i);
            } else {
                i += 1;
            }
        }
        for slot in slots.iter().flatten() {
            let key = self.tokens[*slot].key;
            self.tokens[*slot].live = false;
            if let Some(k) = self.slot_of_key.get_mut(key as usize) {
                *k = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ringbolt_bus::{FLAG_BATCH_END, Settlement};

    use super::*;

    const START: i64 = 1_773_307_200;
    const T0: i64 = START * NS;
    const MS: i64 = 1_000_000;

    fn cfg() -> PaperConfig {
        PaperConfig {
            latency_quantiles_us: vec![10_000],
            ..PaperConfig::default()
        }
    }

    fn e8(x: f64) -> i64 {
        (x * 1e8).round() as i64
    }

    fn level(ts: i64, side: Side, price: f64, size: f64, flags: u8) -> Record {
        let body = BookLevel {
            price: e8(price),
            size: e8(size),
            side: side as u8,
            reserved: [0; 63],
        };
        let mut r = Record::new(Venue::Polymarket, 0, 0, &body);
        r.recv_ts_ns = ts;
        r.flags = flags;
        r
    }

    fn trade(ts: i64, aggressor: Side, price: f64, size: f64) -> Record {
        let body = Trade {
            price: e8(price),
            size: e8(size),
            trade_id: 0,
            side: aggressor as u8,
            reserved: [0; 55],
        };
        let mut r = Record::new(Venue::Polymarket, 0, 0, &body);
        r.recv_ts_ns = ts;
        r
    }

    fn chainlink(ts: i64, price: f64) -> Record {
        let body = IndexPrice {
            value_e18: 0,
            price: e8(price),
            price_type: 1,
            reserved: [0; 55],
        };
        let mut r = Record::new(Venue::ChainlinkRtds, 0, 9, &body);
        r.exchange_ts_ns = ts;
        r.recv_ts_ns = ts + MS;
        r
    }

    fn order(id: u64, price: f64, size: f64, tif: PaperTif, at: i64) -> PaperOrder {
        PaperOrder {
            client_order_id: id,
            token: 7,
            side: Side::Buy,
            price: e8(price),
            size: e8(size),
            tif,
            decided_at_ns: at,
            params: MarketParams::default(),
        }
    }

    /// An exchange with the Up token (key 7) and the Down token (key 8), a book of asks
    /// 0.50 × 10, 0.51 × 20, 0.53 × 50 and bids 0.48 × 30.
    fn market() -> PaperExchange {
        let mut x = PaperExchange::new(cfg());
        x.register_token(7, 3, START, Outcome::Up);
        x.register_token(8, 4, START, Outcome::Down);
        let snap = FLAG_SNAPSHOT;
        let ts = T0 + 10 * MS;
        x.on_record(
            Some(7),
            &level(ts, Side::Buy, 0.48, 30.0, snap | FLAG_BATCH_BEGIN),
        );
        x.on_record(Some(7), &level(ts, Side::Sell, 0.50, 10.0, snap));
        x.on_record(Some(7), &level(ts, Side::Sell, 0.51, 20.0, snap));
        x.on_record(
            Some(7),
            &level(ts, Side::Sell, 0.53, 50.0, snap | FLAG_BATCH_END),
        );
        x
    }

    fn drain(x: &mut PaperExchange) -> Vec<Record> {
        let mut v = Vec::new();
        x.drain(|r| v.push(*r));
        v
    }

    fn fills(v: &[Record]) -> Vec<Fill> {
        v.iter().filter_map(Record::body_as::<Fill>).collect()
    }

    fn states(v: &[Record]) -> Vec<(OrderState, i64)> {
        v.iter()
            .filter_map(Record::body_as::<OrderTransition>)
            .map(|t| (OrderState::ALL[t.to_state as usize - 1], t.filled))
            .collect()
    }

    #[test]
    fn a_marketable_fak_waits_for_its_latency_then_takes_levels_and_cancels_the_rest() {
        let mut x = market();
        let at = T0 + 20 * MS;
        x.order(order(1, 0.51, 45.0, PaperTif::Fak, at));
        x.on_record(Some(8), &level(at + 5 * MS, Side::Sell, 0.60, 1.0, 0));
        assert!(
            drain(&mut x).is_empty(),
            "not at the venue before its latency"
        );
        x.on_record(Some(8), &level(at + 10 * MS, Side::Sell, 0.60, 2.0, 0));
        let out = drain(&mut x);
        let f = fills(&out);
        assert_eq!(f.len(), 2, "two levels taken");
        assert_eq!((f[0].price, f[0].size), (e8(0.50), e8(10.0)));
        assert_eq!((f[1].price, f[1].size), (e8(0.51), e8(20.0)));
        assert_eq!(f[0].ts_ns, at + 10 * MS, "filled at arrival");
        // Taker fee 10 × 0.07 × 0.5 × 0.5 = 0.175; 20 × 0.07 × 0.51 × 0.49 = 0.34986.
        assert_eq!(f[0].fee_usdc, e8(0.175));
        assert_eq!(f[1].fee_usdc, e8(0.34986));
        assert!(
            f.iter()
                .all(|f| f.liquidity == 2 && f.status == 2 && f.paper == 1)
        );
        assert_eq!(
            states(&out),
            vec![
                (OrderState::Acked, 0),
                (OrderState::PartiallyFilled, e8(10.0)),
                (OrderState::PartiallyFilled, e8(30.0)),
                (OrderState::Cancelled, e8(30.0)),
            ]
        );
        assert_eq!(x.position(7), e8(30.0));
        // The same displayed size is not taken twice until the venue restates it.
        x.order(order(2, 0.51, 5.0, PaperTif::Fak, at + 20 * MS));
        x.on_record(Some(8), &level(at + 40 * MS, Side::Sell, 0.60, 3.0, 0));
        assert!(fills(&drain(&mut x)).is_empty());
        x.on_record(Some(7), &level(at + 41 * MS, Side::Sell, 0.51, 8.0, 0));
        x.order(order(3, 0.51, 5.0, PaperTif::Fok, at + 41 * MS));
        x.on_record(Some(8), &level(at + 60 * MS, Side::Sell, 0.60, 3.0, 0));
        assert_eq!(
            fills(&drain(&mut x))[0].size,
            e8(5.0),
            "restated level fills"
        );
    }

    #[test]
    fn fok_fills_all_or_nothing() {
        let mut x = market();
        x.order(order(1, 0.51, 31.0, PaperTif::Fok, T0 + 20 * MS));
        x.on_record(None, &chainlink(T0 + 40 * MS, 100.0));
        let out = drain(&mut x);
        assert!(fills(&out).is_empty());
        assert_eq!(
            states(&out),
            vec![(OrderState::Acked, 0), (OrderState::Cancelled, 0)]
        );
    }

    #[test]
    fn a_resting_order_queues_behind_the_displayed_size_and_fills_as_maker() {
        let mut x = market();
        let at = T0 + 20 * MS;
        x.order(order(1, 0.48, 10.0, PaperTif::Gtc, at));
        x.on_record(None, &chainlink(at + 15 * MS, 100.0));
        assert_eq!(states(&drain(&mut x)), vec![(OrderState::Acked, 0)]);
        // 30 ahead: a sell of 25 at 0.48 leaves 5 ahead; the level shrinks to 3 (cancels
        // assumed behind us, risk-averse: queue ahead 3); a sell of 7 fills 4 of ours.
        x.on_record(Some(7), &trade(at + 20 * MS, Side::Sell, 0.48, 25.0));
        assert!(fills(&drain(&mut x)).is_empty());
        x.on_record(Some(7), &level(at + 21 * MS, Side::Buy, 0.48, 3.0, 0));
        x.on_record(Some(7), &trade(at + 22 * MS, Side::Sell, 0.48, 7.0));
        let f = fills(&drain(&mut x));
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].price, f[0].size, f[0].liquidity),
            (e8(0.48), e8(4.0), 1)
        );
        // Maker rebate: −4 × 0.07 × 0.48 × 0.52 × 0.2.
        assert_eq!(f[0].fee_usdc, -e8(4.0 * 0.07 * 0.48 * 0.52 * 0.2));
        // A buy trade does not touch a resting buy; a sell through the price fills the rest.
        x.on_record(Some(7), &trade(at + 23 * MS, Side::Buy, 0.48, 50.0));
        assert!(fills(&drain(&mut x)).is_empty());
        x.on_record(Some(7), &trade(at + 24 * MS, Side::Sell, 0.47, 50.0));
        let out = drain(&mut x);
        assert_eq!(fills(&out)[0].size, e8(6.0));
        assert_eq!(states(&out), vec![(OrderState::Filled, e8(10.0))]);
    }

    #[test]
    fn resting_orders_expire_and_windows_settle_from_chainlink() {
        let mut x = market();
        x.on_record(None, &chainlink(T0 + 500 * MS, 100_000.0));
        x.order(order(1, 0.50, 4.0, PaperTif::Fak, T0 + 600 * MS));
        x.order(order(2, 0.40, 5.0, PaperTif::Gtc, T0 + 600 * MS));
        x.on_record(Some(7), &level(T0 + 700 * MS, Side::Sell, 0.70, 1.0, 0));
        drain(&mut x);
        let end = (START + WINDOW_S) * NS;
        x.on_record(None, &chainlink(end + 300 * MS, 100_000.01));
        let out = drain(&mut x);
        assert_eq!(states(&out), vec![(OrderState::Expired, 0)]);
        let s: Vec<Settlement> = out
            .iter()
            .filter_map(Record::body_as::<Settlement>)
            .collect();
        assert_eq!(s.len(), 2, "one per token");
        assert_eq!(s[0].outcome, Outcome::Up as u8, "end ≥ start is Up");
        assert_eq!(
            (s[0].token_outcome, s[0].shares, s[0].payout_usdc),
            (0, e8(4.0), e8(4.0))
        );
        assert_eq!(
            (s[1].token_outcome, s[1].shares, s[1].payout_usdc),
            (1, 0, 0)
        );
        assert_eq!(
            (s[0].start_price, s[0].end_price),
            (e8(100_000.0), e8(100_000.01))
        );
        assert_eq!(x.stats.settlements, 2);
        assert_eq!(x.position(7), 0, "the window's slots are freed");
    }

    #[test]
    fn a_window_without_an_end_price_closes_unsettled_after_the_tolerance() {
        let mut x = market();
        let end = (START + WINDOW_S) * NS;
        x.on_record(Some(8), &level(end + 59_000 * MS, Side::Sell, 0.60, 3.0, 0));
        assert_eq!(x.stats.unsettled_windows, 0);
        x.on_record(None, &trade(end + 61_000 * MS, Side::Buy, 0.5, 1.0));
        assert_eq!(x.stats.unsettled_windows, 1);
        assert_eq!(x.stats.settlements, 0);
        x.register_token(9, 5, START + WINDOW_S, Outcome::Up);
        assert_eq!(x.tokens.len(), 2, "a freed slot is reused");
    }

    #[test]
    fn orders_arriving_after_the_window_closed_are_rejected_and_unknown_tokens_counted() {
        let mut x = market();
        let end = (START + WINDOW_S) * NS;
        x.order(order(1, 0.51, 5.0, PaperTif::Fak, end - MS));
        x.order(PaperOrder {
            token: 99,
            ..order(2, 0.51, 5.0, PaperTif::Fak, end - MS)
        });
        x.on_record(Some(8), &level(end + 20 * MS, Side::Sell, 0.60, 3.0, 0));
        assert_eq!(states(&drain(&mut x)), vec![(OrderState::Rejected, 0)]);
        assert_eq!((x.stats.late, x.stats.unknown_token), (1, 1));
    }
}
