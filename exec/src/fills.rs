//! User-channel events → order transitions and `Fill` records (sans-IO).
//!
//! [`FillTracker::on_event`] finds our orders in an event by their order hash (known before the
//! order is sent, [`ClientCore::track`]): the taker order of a trade, and every `maker_orders[]`
//! entry. Each of our fills gets a `Fill` record per status change ([`crate::ledger::fill_step`]):
//! provisional on MATCHED (MINED and RETRYING stay provisional), confirmed on CONFIRMED, failed on
//! FAILED, which also lowers the order's cumulative fill (an `OrderTransition` back from FILLED /
//! PARTIALLY_FILLED). Order events move the lifecycle: PLACEMENT acks an order whose REST
//! response has not arrived yet, CANCELLATION cancels it; `size_matched` is **not** used for fills
//! (trades are), so nothing is counted twice.
//!
//! Fees: a taker fill pays `size × rate × p × (1 − p)` (the crypto-fee curve with exponent 1,
//! PROTOCOL_NOTES.md §7) with the market's rate ([`FillTracker::set_taker_fee_rate_bps`], default
//! 0.07), when the event's `fee_rate_bps` is non-zero; maker fills pay none (rebates are paid
//! separately).

use std::collections::HashMap;

use ringbolt_bus::{Fill, OrderState, Record, Side, Venue};
use sha3::{Digest, Keccak256};

use crate::client::inflight::{ClientCore, TransitionSink};
use crate::ledger::{FillStep, fill_step};
use crate::lifecycle::Order;
use crate::user::{
    LIQUIDITY_MAKER, LIQUIDITY_TAKER, OrderEvent, OrderEventKind, TradeEvent, UserEvent,
    VenueOrderStatus,
};

/// Bus stream number of fill records (the order stream).
pub const STREAM_FILLS: u8 = crate::lifecycle::STREAM_ORDERS;

/// First 16 bytes of a trade id: the 16 bytes of a UUID, else of its Keccak-256.
#[must_use]
pub fn trade_key(trade_id: &str) -> [u8; 16] {
    let hex: String = trade_id.chars().filter(|c| *c != '-').collect();
    if hex.len() == 32
        && let Ok(b) = crate::hex::decode_vec(&hex, "trade id")
        && let Ok(k) = <[u8; 16]>::try_from(b.as_slice())
    {
        return k;
    }
    let d = Keccak256::digest(trade_id.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

/// Taker fee in USDC at 1e-8: `size × rate × p × (1 − p)` with `rate` in basis points, computed
/// in pUSD micro-units (6 decimals, the token's precision) rounded half up, as the venue books it.
#[must_use]
pub fn taker_fee_e8(price_e8: i64, size_e8: i64, rate_bps: u32) -> i64 {
    const E8: i128 = 100_000_000;
    let p = i128::from(price_e8);
    let num = i128::from(size_e8) * p * (E8 - p) * i128::from(rate_bps);
    // num / (E8 · E8 · E8 · 10⁴) pUSD → micro: divide by E8³ · 10⁴ / 10⁶.
    let den = E8 * E8 * E8 * 10_000 / 1_000_000;
    i64::try_from((num + den / 2) / den).map_or(0, |micro| micro * 100)
}

/// The BTC 5-minute markets' taker fee rate (`fee_schedule.rate` 0.07, PROTOCOL_NOTES.md §7).
/// The trade event's `fee_rate_bps` is the market's `taker_base_fee` (e.g. 1000), not the rate
/// the fee is computed with; it only says whether a fee applies (0 = none).
pub const DEFAULT_TAKER_FEE_RATE_BPS: u32 = 700;

/// What [`FillTracker::on_event`] did to the open-order count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenDelta {
    /// Orders that became terminal.
    pub closed: u32,
    /// Orders that left a terminal state (a FAILED trade reverted a FILLED order's fill).
    pub reopened: u32,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FillCounters {
    /// Fill records emitted.
    pub fill_records: u64,
    /// Fills reverted by FAILED trades.
    pub reverts: u64,
    /// Trade or order events about no order of ours (other makers in our trades, old orders).
    pub foreign: u64,
    /// Status repeats (MINED after MATCHED, duplicates) that changed nothing.
    pub unchanged: u64,
    /// Events whose transition was illegal for the order's state (kept for inspection).
    pub illegal: u64,
}

/// Token facts fills carry: window start and outcome (0 up, 1 down), per order instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// Window start, s.
    pub window_start_s: i64,
    /// 0 = Up, 1 = Down.
    pub outcome: u8,
}

/// One of our fills within a trade event.
#[derive(Clone, Copy, Debug)]
struct OurFill {
    coid: u64,
    side: Side,
    price_e8: i64,
    size_e8: i64,
    fee_usdc_e8: i64,
    liquidity: u8,
}

/// Windows whose tokens a [`FillTracker`] keeps (an hour of 5-minute windows).
pub const TOKEN_WINDOWS_KEPT: i64 = 12;

/// Applies user-channel events to the tracked orders.
#[derive(Debug)]
pub struct FillTracker {
    status: HashMap<([u8; 16], u64), (u8, i64)>,
    tokens: HashMap<u32, TokenInfo>,
    taker_fee_rate_bps: u32,
    /// Counters.
    pub counters: FillCounters,
}

impl Default for FillTracker {
    fn default() -> Self {
        FillTracker {
            status: HashMap::new(),
            tokens: HashMap::new(),
            taker_fee_rate_bps: DEFAULT_TAKER_FEE_RATE_BPS,
            counters: FillCounters::default(),
        }
    }
}

impl FillTracker {
    /// Empty, with the default taker fee rate.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The market's taker fee rate (basis points of `p × (1 − p)` per share).
    pub fn set_taker_fee_rate_bps(&mut self, rate_bps: u32) {
        self.taker_fee_rate_bps = rate_bps;
    }

    /// Registers an order instrument's window and outcome (fills carry them). Tokens of windows
    /// that started more than [`TOKEN_WINDOWS_KEPT`] windows before the newest are dropped, so
    /// the map stays bounded however long the process runs (fills of a window arrive within
    /// minutes of its orders).
    pub fn register_token(&mut self, instrument: u32, info: TokenInfo) {
        self.tokens.insert(instrument, info);
        let newest = self.tokens.values().map(|t| t.window_start_s).max();
        if let Some(newest) = newest
            && self.tokens.len() > 2 * TOKEN_WINDOWS_KEPT as usize
        {
            let keep_from = newest - TOKEN_WINDOWS_KEPT * 300;
            self.tokens.retain(|_, t| t.window_start_s > keep_from);
        }
    }

    /// Tokens registered and not yet dropped (at most `2 × TOKEN_WINDOWS_KEPT` plus the newest
    /// window's).
    #[must_use]
    pub fn tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Applies one event; transitions and fill records go to `sink`.
    pub fn on_event(
        &mut self,
        core: &mut ClientCore,
        ev: &UserEvent<'_>,
        now_ns: i64,
        sink: &mut dyn TransitionSink,
    ) -> OpenDelta {
        match ev {
            UserEvent::Order(o) => self.on_order(core, o, now_ns, sink),
            UserEvent::Trade(t) => self.on_trade(core, t, now_ns, sink),
            UserEvent::Pong => OpenDelta::default(),
        }
    }

    fn on_order(
        &mut self,
        core: &mut ClientCore,
        ev: &OrderEvent<'_>,
        now_ns: i64,
        sink: &mut dyn TransitionSink,
    ) -> OpenDelta {
        let Some(o) = core.order_by_hash_mut(ev.order_id) else {
            self.counters.foreign += 1;
            return OpenDelta::default();
        };
        let was_terminal = o.is_terminal();
        let vid = o.venue_order_id;
        let vid = if vid == [0; 16] {
            hash16(ev.order_id)
        } else {
            vid
        };
        let cancel = ev.kind == OrderEventKind::Cancellation
            || matches!(
                ev.status,
                VenueOrderStatus::Canceled | VenueOrderStatus::Invalid
            );
        let r = match (cancel, o.state) {
            (true, OrderState::Submitted | OrderState::Rejected) => {
                o.restore(OrderState::Cancelled, vid, now_ns)
            }
            (true, _) => o.cancelled(now_ns),
            (false, OrderState::Submitted | OrderState::Rejected) => {
                o.restore(OrderState::Acked, vid, now_ns)
            }
            (false, _) => {
                self.counters.unchanged += 1;
                return OpenDelta::default();
            }
        };
        match r {
            Ok(r) => sink.transition(&r),
            Err(_) => self.counters.illegal += 1,
        }
        delta(was_terminal, o.is_terminal())
    }

    fn on_trade(
        &mut self,
        core: &mut ClientCore,
        t: &TradeEvent<'_>,
        now_ns: i64,
        sink: &mut dyn TransitionSink,
    ) -> OpenDelta {
        let key = trade_key(t.trade_id);
        let mut out = OpenDelta::default();
        let mut ours = 0;
        let mut apply = |this: &mut Self, core: &mut ClientCore, f: OurFill| {
            ours += 1;
            let d = this.one_fill(core, key, t, f, now_ns, sink);
            out.closed += d.closed;
            out.reopened += d.reopened;
        };
        if let Some(coid) = core.coid_by_hash(t.taker_order_id) {
            let f = OurFill {
                coid,
                side: t.side,
                price_e8: t.price_e8,
                size_e8: t.size_e8,
                fee_usdc_e8: if t.fee_rate_bps == 0 {
                    0
                } else {
                    taker_fee_e8(t.price_e8, t.size_e8, self.taker_fee_rate_bps)
                },
                liquidity: LIQUIDITY_TAKER,
            };
            apply(self, core, f);
        }
        for m in t.makers() {
            if let Some(coid) = core.coid_by_hash(m.order_id) {
                let f = OurFill {
                    coid,
                    side: m.side,
                    price_e8: m.price_e8,
                    size_e8: m.size_e8,
                    fee_usdc_e8: 0,
                    liquidity: LIQUIDITY_MAKER,
                };
                apply(self, core, f);
            }
        }
        if ours == 0 {
            self.counters.foreign += 1;
        }
        out
    }

    fn one_fill(
        &mut self,
        core: &mut ClientCore,
        key: [u8; 16],
        t: &TradeEvent<'_>,
        f: OurFill,
        now_ns: i64,
        sink: &mut dyn TransitionSink,
    ) -> OpenDelta {
        let status = t.status.fill_status();
        let prev = self.status.get(&(key, f.coid)).map(|s| s.0);
        let step = fill_step(prev, status);
        let change = match step {
            FillStep::Ignore => {
                self.counters.unchanged += 1;
                return OpenDelta::default();
            }
            FillStep::Add => f.size_e8,
            FillStep::Confirm => 0,
            FillStep::Revert => -self.status.get(&(key, f.coid)).map_or(0, |s| s.1),
        };
        self.status.insert((key, f.coid), (status, f.size_e8));
        let Some(o) = core.order_mut(f.coid) else {
            return OpenDelta::default();
        };
        let info = self.tokens.get(&o.instrument).copied();
        sink.transition(&fill_record(
            o,
            &f,
            key,
            status,
            info,
            t.match_ts_ns,
            now_ns,
        ));
        self.counters.fill_records += 1;
        if step == FillStep::Revert {
            self.counters.reverts += 1;
        }
        if change == 0 {
            return OpenDelta::default();
        }
        let was_terminal = o.is_terminal();
        match o.set_filled((o.filled_e8 + change).max(0), now_ns) {
            Ok(r) => sink.transition(&r),
            Err(_) => self.counters.illegal += 1,
        }
        delta(was_terminal, o.is_terminal())
    }
}

fn delta(was_terminal: bool, is_terminal: bool) -> OpenDelta {
    OpenDelta {
        closed: u32::from(!was_terminal && is_terminal),
        reopened: u32::from(was_terminal && !is_terminal),
    }
}

fn hash16(order_id: &str) -> [u8; 16] {
    crate::client::inflight::venue_key(order_id).unwrap_or([0; 16])
}

fn fill_record(
    o: &Order,
    f: &OurFill,
    trade_id: [u8; 16],
    status: u8,
    info: Option<TokenInfo>,
    match_ts_ns: i64,
    now_ns: i64,
) -> Record {
    let body = Fill {
        ts_ns: if match_ts_ns > 0 { match_ts_ns } else { now_ns },
        client_order_id: f.coid,
        price: f.price_e8,
        size: f.size_e8,
        fee_usdc: f.fee_usdc_e8,
        window_start_s: info.map_or(0, |i| i.window_start_s),
        trade_id,
        side: f.side as u8,
        liquidity: f.liquidity,
        status,
        paper: u8::from(o.paper),
        outcome: info.map_or(0, |i| i.outcome),
        reserved: [0; 11],
    };
    let mut r = Record::new(Venue::Polymarket, STREAM_FILLS, o.instrument, &body);
    r.recv_ts_ns = now_ns;
    r
}

#[cfg(test)]
mod horizon_tests {
    use super::*;

    #[test]
    fn token_registrations_stay_bounded_over_days_of_windows() {
        let mut t = FillTracker::new();
        for w in 0..8640_u32 {
            for outcome in 0..2_u8 {
                let info = TokenInfo {
                    window_start_s: 1_789_000_200 + i64::from(w) * 300,
                    outcome,
                };
                t.register_token(w * 2 + u32::from(outcome), info);
            }
            assert!(
                t.tokens() <= 2 * TOKEN_WINDOWS_KEPT as usize + 2,
                "{}",
                t.tokens()
            );
        }
        assert!(
            t.tokens() >= 2 * TOKEN_WINDOWS_KEPT as usize - 2,
            "recent windows kept"
        );
    }
}
