#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The user-channel parser on the corpus lines (fixtures/USER_SOURCES.md) and on fuzzed input.

use proptest::prelude::*;
use ringbolt_bus::Side;
use ringbolt_exec::user::{
    OrderEventKind, TradeStatus, UserError, UserEvent, UserParser, VenueOrderStatus, decimal_e8,
};

const ORDERS: &str = include_str!("fixtures/user_order.jsonl");
const TRADES: &str = include_str!("fixtures/user_trade.jsonl");

fn one(p: &mut UserParser, line: &str) -> UserEvent<'static> {
    let line: &'static str = Box::leak(line.to_owned().into_boxed_str());
    p.parse_event(line.as_bytes()).expect(line)
}

#[test]
fn order_events_parse_with_fixed_point_sizes() {
    let mut p = UserParser::new();
    let lines: Vec<&str> = ORDERS.lines().collect();
    let UserEvent::Order(o) = one(&mut p, lines[0]) else {
        panic!("order")
    };
    assert_eq!(o.kind, OrderEventKind::Placement);
    assert_eq!(o.status, VenueOrderStatus::Live);
    assert_eq!(o.side, Side::Buy);
    assert_eq!(o.price_e8, 51_300_000);
    assert_eq!(o.original_size_e8, 500_000_000);
    assert_eq!(o.size_matched_e8, 0);
    assert_eq!(o.ts_ns, 1_725_842_520_990_000_000);
    assert!(o.order_id.starts_with("0x0f76f4dc"));

    let UserEvent::Order(o) = one(&mut p, lines[1]) else {
        panic!("order")
    };
    assert_eq!(
        (o.kind, o.status, o.side, o.size_matched_e8),
        (
            OrderEventKind::Cancellation,
            VenueOrderStatus::Canceled,
            Side::Sell,
            500_000_000
        )
    );
    // No event_type on this fixture: recognised by shape.
    let UserEvent::Order(o) = one(&mut p, lines[2]) else {
        panic!("order")
    };
    assert_eq!(
        (o.kind, o.status, o.size_matched_e8),
        (
            OrderEventKind::Update,
            VenueOrderStatus::Matched,
            10_000_000_000
        )
    );
    // FOK kill: CANCELED_<reason>, empty size_matched = 0.
    let UserEvent::Order(o) = one(&mut p, lines[3]) else {
        panic!("order")
    };
    assert_eq!(
        (o.status, o.size_matched_e8),
        (VenueOrderStatus::Canceled, 0)
    );
    let UserEvent::Order(o) = one(&mut p, lines[4]) else {
        panic!("order")
    };
    assert_eq!(o.status, VenueOrderStatus::Invalid);
    assert_eq!((p.events, p.skipped_total()), (5, 0));
}

#[test]
fn trade_events_give_every_maker_its_side() {
    let mut p = UserParser::new();
    let lines: Vec<&str> = TRADES.lines().collect();
    let UserEvent::Trade(t) = one(&mut p, lines[0]) else {
        panic!("trade")
    };
    assert_eq!(t.status, TradeStatus::Matched);
    assert!(t.we_are_taker);
    assert_eq!(
        (t.side, t.price_e8, t.size_e8),
        (Side::Buy, 52_000_000, 500_000_000)
    );
    assert_eq!(t.match_ts_ns, 1_725_958_681_000_000_000);
    assert_eq!(t.n_makers, 1);
    // Same token as the taker, no side given: the maker sold.
    assert_eq!(t.makers()[0].side, Side::Sell);
    assert_eq!(t.makers()[0].size_e8, 500_000_000);

    let UserEvent::Trade(t) = one(&mut p, lines[1]) else {
        panic!("trade")
    };
    assert_eq!(t.status, TradeStatus::Confirmed);
    assert!(!t.we_are_taker);
    // The entry's own side wins.
    assert_eq!(t.makers()[0].side, Side::Buy);
    assert_eq!(t.makers()[0].price_e8, 51_300_000);

    let UserEvent::Trade(t) = one(&mut p, lines[2]) else {
        panic!("trade")
    };
    assert_eq!(t.status, TradeStatus::Mined);
    assert_eq!(t.n_makers, 6);
    assert_eq!(t.size_e8, 109_687_000_000);
    // Entry 0 is on the complementary token: a maker buying "No" against a taker buying "Yes".
    assert_eq!(t.makers()[0].side, Side::Buy);
    assert_eq!(t.makers()[1].side, Side::Sell);
    assert_eq!(t.makers()[1].size_e8, 24_768_000_000);
    let total: i64 = t.makers().iter().map(|m| m.size_e8).sum();
    assert_eq!(total, t.size_e8, "maker sizes add up to the taker's");
    assert_eq!(
        TradeStatus::Failed.fill_status(),
        3,
        "FAILED maps to the bus failed status"
    );
}

#[test]
fn arrays_and_pong_and_bad_events_are_counted_by_name() {
    let mut p = UserParser::new();
    let frame = format!(
        "[{},{},{{\"event_type\":\"trade\",\"status\":\"WHATEVER\"}}]",
        ORDERS.lines().next().unwrap(),
        TRADES.lines().next().unwrap()
    );
    let mut got = Vec::new();
    let n = p.parse_frame(frame.as_bytes(), |e| {
        got.push(matches!(e, UserEvent::Trade(_)))
    });
    assert_eq!(n, 2);
    assert_eq!(got, vec![false, true]);
    assert_eq!(
        p.parse_frame(b"PONG", |e| assert_eq!(e, UserEvent::Pong)),
        1
    );
    let bad: [(&[u8], UserError); 5] = [
        (b"{not json", UserError::BadJson),
        (b"{\"event_type\":\"book\"}", UserError::UnknownEventType),
        (
            b"{\"event_type\":\"order\",\"type\":\"PLACEMENT\",\"status\":\"LIVE\",\"id\":\"0x1\",\"asset_id\":\"1\",\"side\":\"BUY\",\"price\":\"0.5x\",\"original_size\":\"5\"}",
            UserError::BadDecimal("price"),
        ),
        (
            b"{\"event_type\":\"order\",\"type\":\"PLACEMENT\",\"status\":\"LIVE\",\"id\":\"0x1\",\"asset_id\":\"1\",\"side\":\"UP\",\"price\":\"0.5\",\"original_size\":\"5\"}",
            UserError::BadSide("side"),
        ),
        (
            b"{\"event_type\":\"order\",\"type\":\"PLACEMENT\",\"status\":\"LIVE\",\"asset_id\":\"1\",\"side\":\"BUY\",\"price\":\"0.5\",\"original_size\":\"5\"}",
            UserError::Missing("id"),
        ),
    ];
    for (b, e) in bad {
        assert_eq!(p.parse_event(b), Err(e));
    }
    let reasons = p.reasons();
    let count = |name: &str| reasons.iter().find(|(n, _)| *n == name).unwrap().1;
    assert_eq!(count("bad_status"), 1, "{reasons:?}");
    assert_eq!(count("bad_json"), 1);
    assert_eq!(count("unknown_event_type"), 1);
    assert_eq!(count("bad_decimal"), 1);
    assert_eq!(count("bad_side"), 1);
    assert_eq!(count("missing_field"), 1);
}

#[test]
fn decimals_are_exact() {
    assert_eq!(decimal_e8("0.513"), Some(51_300_000));
    assert_eq!(decimal_e8("247.68"), Some(24_768_000_000));
    assert_eq!(decimal_e8("1.000000000"), Some(100_000_000));
    assert_eq!(decimal_e8("1.000000001"), None);
    assert_eq!(decimal_e8("-1"), None);
    assert_eq!(decimal_e8(""), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut p = UserParser::new();
        let n = p.parse_frame(&bytes, |_| {});
        prop_assert!(n as u64 <= p.events + 1);
    }

    #[test]
    fn mutated_corpus_lines_are_delivered_or_counted(
        line in 0usize..8, at in 0usize..2000, byte in any::<u8>(), cut in any::<bool>()
    ) {
        let all: Vec<&str> = ORDERS.lines().chain(TRADES.lines()).collect();
        let mut b = all[line].as_bytes().to_vec();
        let i = at % b.len();
        if cut { b.truncate(i) } else { b[i] = byte }
        let mut p = UserParser::new();
        let n = p.parse_frame(&b, |_| {});
        // Every frame is either delivered or counted under a named reason.
        prop_assert_eq!(n as u64 + p.skipped_total() >= 1, true);
    }
}
