#![allow(clippy::expect_used, clippy::unwrap_used)]
//! User-channel trades (corpus lines, fixtures/USER_SOURCES.md) → order transitions and `Fill`
//! records → positions and cash: provisional, confirmed, a FAILED trade reverting its fill.

use ringbolt_bus::{Fill, OrderState, OrderTransition, Record, RecordKind, Side};
use ringbolt_exec::client::inflight::ClientCore;
use ringbolt_exec::fills::{FillTracker, TokenInfo, taker_fee_e8, trade_key};
use ringbolt_exec::ledger::{FillStep, Ledger};
use ringbolt_exec::lifecycle::Order;
use ringbolt_exec::user::UserParser;

const TRADES: &str = include_str!("fixtures/user_trade.jsonl");
const ORDERS: &str = include_str!("fixtures/user_order.jsonl");
const WINDOW: i64 = 1_773_307_200;

fn digest(hash: &str) -> [u8; 32] {
    let h = hash.trim_start_matches("0x");
    let mut d = [0u8; 32];
    for (i, b) in d.iter_mut().enumerate() {
        *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
    }
    d
}

struct World {
    core: ClientCore,
    tracker: FillTracker,
    parser: UserParser,
    out: Vec<Record>,
    ledger: Ledger,
}

impl World {
    fn new() -> Self {
        let mut tracker = FillTracker::new();
        tracker.register_token(
            7,
            TokenInfo {
                window_start_s: WINDOW,
                outcome: 0,
            },
        );
        World {
            core: ClientCore::with_capacity(16),
            tracker,
            parser: UserParser::new(),
            out: Vec::new(),
            ledger: Ledger::new(),
        }
    }
    fn order(&mut self, coid: u64, hash: &str, side: Side, price_e8: i64, size_e8: i64) {
        let (o, _) = Order::new(coid, 7, side, price_e8, size_e8, false, 1);
        self.core.track(o, digest(hash));
        self.core.order_mut(coid).unwrap().submitted(2).unwrap();
    }
    fn feed(&mut self, line: &str) {
        assert_eq!(
            self.parser.parse_frame(line.as_bytes(), |_| {}),
            1,
            "{line}"
        );
        let ev = self.parser.parse_event(line.as_bytes()).unwrap();
        let before = self.out.len();
        self.tracker
            .on_event(&mut self.core, &ev, 100, &mut self.out);
        for r in &self.out[before..] {
            if r.kind == RecordKind::Fill as u8 {
                self.ledger.apply(r);
            }
        }
    }
    fn fills(&self) -> Vec<Fill> {
        self.out
            .iter()
            .filter_map(Record::body_as::<Fill>)
            .collect()
    }
    fn states(&self) -> Vec<(u8, u8, i64)> {
        self.out
            .iter()
            .filter_map(Record::body_as::<OrderTransition>)
            .map(|t| (t.from_state, t.to_state, t.filled))
            .collect()
    }
}

fn with_status(line: &str, from: &str, to: &str) -> String {
    line.replace(
        &format!("\"status\":\"{from}\""),
        &format!("\"status\":\"{to}\""),
    )
}

#[test]
fn taker_fill_provisional_then_confirmed() {
    let line = TRADES.lines().next().unwrap();
    let mut w = World::new();
    let hash = "0x5b605a0e8e40f3402d3cb3bc19edad6733ed23fbc079d2a09ee399c3487ace81";
    w.order(1, hash, Side::Buy, 52_000_000, 5_00000000);
    w.feed(line);
    w.feed(&with_status(line, "MATCHED", "MINED"));
    w.feed(&with_status(line, "MATCHED", "CONFIRMED"));
    w.feed(&with_status(line, "MATCHED", "CONFIRMED"));
    let f = w.fills();
    assert_eq!(
        f.len(),
        2,
        "one record per status change: provisional, confirmed"
    );
    assert_eq!((f[0].status, f[1].status), (1, 2));
    assert_eq!(f[0].size, 5_00000000);
    assert_eq!(
        (f[0].liquidity, f[0].side, f[0].window_start_s),
        (2, Side::Buy as u8, WINDOW)
    );
    assert_eq!(
        f[0].trade_id,
        trade_key("f50e8ab2-652d-4dc8-9c82-8e46197fe98d")
    );
    assert_eq!(f[0].trade_id[..2], [0xf5, 0x0e]);
    // Submitted → Filled straight from the user channel.
    assert_eq!(w.states(), vec![(2, 6, 5_00000000)]);
    let b = w.ledger.token(7);
    assert_eq!((b.shares_e8, b.provisional_shares_e8), (5_00000000, 0));
    assert_eq!(b.cash_usdc_e8, -2_60000000, "5 × 0.52 bought, fee rate 0");
    assert_eq!(
        w.tracker.counters.unchanged, 2,
        "MINED and the repeat change nothing"
    );
    assert_eq!(w.ledger.window(WINDOW), b);
    assert_eq!(w.ledger.day(WINDOW / 86_400), b);
}

#[test]
fn a_failed_trade_reverts_the_fill_position_and_order_state() {
    let line = TRADES.lines().nth(2).unwrap();
    let mut w = World::new();
    // Ours: the fourth maker entry, 5 @ 0.518 on the taker's token → we sold.
    let hash = "0xab679e56242324e15e59cfd488cd0f12e4fd71b153b9bfb57518898b9983145e";
    w.order(2, hash, Side::Sell, 51_800_000, 5_00000000);
    w.feed(&with_status(line, "MINED", "MATCHED"));
    assert_eq!(w.ledger.token(7).shares_e8, -5_00000000);
    assert_eq!(w.ledger.token(7).provisional_shares_e8, -5_00000000);
    w.feed(&with_status(line, "MINED", "RETRYING"));
    w.feed(&with_status(line, "MINED", "FAILED"));
    let f = w.fills();
    assert_eq!(f.iter().map(|f| f.status).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(
        (f[0].side, f[0].liquidity, f[0].fee_usdc),
        (Side::Sell as u8, 1, 0)
    );
    assert_eq!(f[0].price, 51_800_000);
    assert_eq!(w.ledger.token(7), Default::default(), "reverted to nothing");
    assert_eq!(
        w.states(),
        vec![(2, 6, 5_00000000), (6, 3, 0)],
        "FILLED back to ACKED"
    );
    assert_eq!(w.tracker.counters.reverts, 1);
    // The five other makers are not ours: nothing about them.
    assert_eq!(w.out.len(), 4);
}

#[test]
fn venue_order_events_ack_and_cancel() {
    let mut lines = ORDERS.lines();
    let placement = lines.next().unwrap();
    let mut w = World::new();
    let hash = "0x0f76f4dc6eaf3332f4100f2e8a0b4a927351dd64646b7bb12f37df775c657a78";
    w.order(3, hash, Side::Buy, 51_300_000, 5_00000000);
    w.feed(placement);
    let cancel = placement
        .replace("\"PLACEMENT\"", "\"CANCELLATION\"")
        .replace("\"LIVE\"", "\"CANCELED\"");
    w.feed(&cancel);
    w.feed(&cancel);
    assert_eq!(
        w.states(),
        vec![(2, 3, 0), (3, 7, 0)],
        "SUBMITTED → ACKED (PLACEMENT) → CANCELLED"
    );
    assert_eq!(w.core.order(3).unwrap().state, OrderState::Cancelled);
    assert_eq!(
        w.tracker.counters.illegal, 1,
        "the second cancel is refused"
    );
    // Someone else's order: counted foreign.
    w.feed(lines.next().unwrap());
    assert_eq!(w.tracker.counters.foreign, 1);
}

#[test]
fn ledger_ignores_duplicates_and_unseen_failures_by_name() {
    let mut l = Ledger::new();
    let fill = |status: u8, trade: u8| {
        let body = Fill {
            ts_ns: 1,
            client_order_id: 9,
            price: 40_000_000,
            size: 10_00000000,
            fee_usdc: 1_000_000,
            window_start_s: WINDOW,
            trade_id: [trade; 16],
            side: Side::Buy as u8,
            liquidity: 2,
            status,
            paper: 0,
            outcome: 1,
            reserved: [0; 11],
        };
        Record::new(ringbolt_bus::Venue::Polymarket, 0, 4, &body)
    };
    assert_eq!(l.apply(&fill(3, 1)), FillStep::Ignore);
    assert_eq!(
        l.apply(&fill(2, 2)),
        FillStep::Add,
        "confirmed after a reconnect"
    );
    assert_eq!(l.apply(&fill(1, 2)), FillStep::Ignore);
    assert_eq!(l.apply(&fill(1, 3)), FillStep::Add);
    assert_eq!(l.apply(&fill(1, 3)), FillStep::Ignore);
    assert_eq!(l.apply(&fill(9, 4)), FillStep::Ignore);
    assert_eq!(l.skips.failed_unseen, 1);
    assert_eq!(l.skips.after_confirmed, 1);
    assert_eq!(l.skips.duplicate, 1);
    assert_eq!(l.skips.bad_status, 1);
    let b = l.token(4);
    assert_eq!(b.shares_e8, 20_00000000);
    assert_eq!(b.provisional_shares_e8, 10_00000000);
    assert_eq!(b.cash_usdc_e8, -2 * (4_00000000 + 1_000_000));
    assert_eq!(b.fees_usdc_e8, 2_000_000);
    assert_eq!(b.bought_usdc_e8, 8_00000000);
}

#[test]
fn taker_fee_follows_the_crypto_curve_in_micro_units() {
    // 100 shares at 0.50, rate 0.07: 100 × 0.07 × 0.25 = 1.75.
    assert_eq!(taker_fee_e8(50_000_000, 100_00000000, 700), 1_75000000);
    // 0.01 share at 0.55: 0.00017325 pUSD → 173 micro (rounded at the token's 6 decimals).
    assert_eq!(taker_fee_e8(55_000_000, 1_000_000, 700), 17_300);
    assert_eq!(taker_fee_e8(50_000_000, 100_00000000, 0), 0);
}

/// A `Fill` record of trade `trade`: `size` shares bought at 0.50 in window `w` (instrument
/// `id`).
fn fill(id: u32, w: i64, trade: u64, status: u8, size_e8: i64) -> Record {
    let mut trade_id = [0u8; 16];
    trade_id[..8].copy_from_slice(&trade.to_le_bytes());
    let body = Fill {
        ts_ns: w * 1_000_000_000,
        client_order_id: trade,
        price: 50_000_000,
        size: size_e8,
        fee_usdc: 0,
        window_start_s: w,
        trade_id,
        side: Side::Buy as u8,
        liquidity: 2,
        status,
        paper: 1,
        outcome: 0,
        reserved: [0; 11],
    };
    Record::new(ringbolt_bus::Venue::Polymarket, 2, id, &body)
}

#[test]
fn closing_windows_keeps_the_ledger_bounded_and_the_totals_whole() {
    use ringbolt_exec::user::{FILL_CONFIRMED, FILL_PROVISIONAL};
    let mut ledger = Ledger::new();
    let windows = 30 * 288;
    for n in 0..windows {
        let w = WINDOW + n * 300;
        let id = (n as u32 % 1024) | ((n as u32 / 1024) << 16);
        let trade = n as u64;
        let add = ledger.apply(&fill(id, w, trade, FILL_PROVISIONAL, 100_000_000));
        assert_eq!(add, FillStep::Add);
        let confirm = ledger.apply(&fill(id, w, trade, FILL_CONFIRMED, 100_000_000));
        assert_eq!(confirm, FillStep::Confirm);
        // Rollover: windows an hour old close.
        ledger.close_windows_before(w - 3600);
        let (tokens, open, days, fills) = ledger.held();
        assert!(
            tokens <= 13 && open <= 13 && days <= 4 && fills <= 13,
            "{:?}",
            ledger.held()
        );
    }
    // Every fill is counted once, closed or open.
    let open: i64 = (0..13)
        .map(|k| ledger.window(WINDOW + (windows - 1 - k) * 300).shares_e8)
        .sum();
    assert_eq!(ledger.closed().shares_e8 + open, windows * 100_000_000);
    assert_eq!(ledger.closed().provisional_shares_e8, 0);
    // A late confirmation of a closed window is ignored, by name.
    let late = ledger.apply(&fill(0, WINDOW, 0, FILL_CONFIRMED, 100_000_000));
    assert_eq!(late, FillStep::Ignore);
    assert_eq!(ledger.skips.closed_window, 1);
}
