#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The order state machine: legal paths emit one bus record per transition and replay
//! identically; illegal transitions are refused and change nothing.

use ringbolt_bus::{OrderState, OrderTransition, Side};
use ringbolt_exec::classify::{ErrorClass, Outcome, classify_one};
use ringbolt_exec::lifecycle::{ClientOrderIds, Order, legal};

const ALL: [OrderState; 8] = [
    OrderState::Initialized,
    OrderState::Submitted,
    OrderState::Acked,
    OrderState::Rejected,
    OrderState::PartiallyFilled,
    OrderState::Filled,
    OrderState::Cancelled,
    OrderState::Expired,
];

#[test]
fn ack_partial_fill_fill_replays() {
    let ids = ClientOrderIds::new(1_773_307_200_000);
    let (mut o, r0) = Order::new(ids.next(), 7, Side::Buy, 42_000_000, 10_00000000, false, 1);
    let accepted = classify_one(
        200,
        br#"{"success":true,"errorMsg":"","orderID":"0x0102030405060708090a0b0c0d0e0f1011","status":"live"}"#,
    );
    let recs = vec![
        r0,
        o.submitted(2).unwrap(),
        o.on_response(200, &accepted, 3).unwrap(),
        o.on_fill(4_00000000, 4).unwrap(),
        o.on_fill(10_00000000, 5).unwrap(),
    ];
    assert_eq!(o.state, OrderState::Filled);
    assert!(o.is_terminal());
    assert_eq!(o.venue_order_id[..3], [1, 2, 3]);
    let states: Vec<(u8, u8)> = recs
        .iter()
        .map(|r| {
            let t: OrderTransition = r.body_as().unwrap();
            (t.from_state, t.to_state)
        })
        .collect();
    assert_eq!(
        states,
        vec![(1, 1), (1, 2), (2, 3), (3, 5), (5, 6)],
        "one record per transition"
    );
    assert_eq!(recs[4].recv_ts_ns, 5);
    assert_eq!(Order::replay(&recs).unwrap(), o);
    // Dropping a record breaks the chain.
    let mut broken = recs.clone();
    broken.remove(2);
    assert!(Order::replay(&broken).is_err());
    // Further transitions are refused (a FAILED trade could still revert a fill).
    assert!(o.cancelled(6).is_err());
    assert_eq!(o.state, OrderState::Filled);
}

#[test]
fn rejection_carries_class_and_status() {
    let (mut o, _) = Order::new(1, 7, Side::Sell, 1, 0, true, 1);
    o.submitted(2).unwrap();
    let out = classify_one(400, br#"{"error":"order_version_mismatch"}"#);
    let r = o.on_response(400, &out, 3).unwrap();
    let t: OrderTransition = r.body_as().unwrap();
    assert_eq!(t.error_class, ErrorClass::OrderVersionMismatch as u16);
    assert_eq!((t.http_status, t.paper), (400, 1));
    assert!(matches!(out, Outcome::Rejected { .. }));
    assert!(o.submitted(4).is_err());
}

#[test]
fn transition_table_is_exactly_the_documented_one() {
    use OrderState::*;
    // The documented edges, listed one by one.
    let edges = [
        (Initialized, Submitted),
        (Initialized, Rejected),
        (Submitted, Acked),
        (Submitted, Rejected),
        (Submitted, PartiallyFilled),
        (Submitted, Filled),
        (Submitted, Cancelled),
        (Acked, PartiallyFilled),
        (Acked, Filled),
        (Acked, Cancelled),
        (Acked, Expired),
        (PartiallyFilled, Acked),
        (PartiallyFilled, PartiallyFilled),
        (PartiallyFilled, Filled),
        (PartiallyFilled, Cancelled),
        (PartiallyFilled, Expired),
        (Filled, Acked),
        (Filled, PartiallyFilled),
        (Rejected, Acked),
        (Rejected, PartiallyFilled),
        (Rejected, Filled),
        (Rejected, Cancelled),
        (Cancelled, Cancelled),
        (Expired, Expired),
    ];
    let mut n = 0;
    for from in ALL {
        for to in ALL {
            let expected = edges.contains(&(from, to));
            assert_eq!(legal(from, to), expected, "{from:?} -> {to:?}");
            n += usize::from(expected);
        }
    }
    assert_eq!(n, 24);
    // Illegal: ack before submit; fill before ack.
    let (mut o, _) = Order::new(2, 7, Side::Buy, 1, 1, true, 1);
    let ok = classify_one(
        200,
        br#"{"success":true,"errorMsg":"","orderID":"0xab","status":"live"}"#,
    );
    assert!(o.on_response(200, &ok, 2).is_err());
    assert!(o.on_fill(1, 2).is_err());
    assert_eq!(o.state, Initialized);
}

#[test]
fn client_order_ids_are_unique_across_threads() {
    let ids = std::sync::Arc::new(ClientOrderIds::new(1));
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let ids = ids.clone();
            std::thread::spawn(move || (0..10_000).map(|_| ids.next()).collect::<Vec<_>>())
        })
        .collect();
    let mut all: Vec<u64> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n);
}

fn acked(size_e8: i64) -> Order {
    let (mut o, _) = Order::new(9, 7, Side::Buy, 50_000_000, size_e8, false, 1);
    o.submitted(2).unwrap();
    let ok = classify_one(
        200,
        br#"{"success":true,"errorMsg":"","orderID":"0xab","status":"live"}"#,
    );
    o.on_response(200, &ok, 3).unwrap();
    o
}

fn edge(r: &ringbolt_bus::Record) -> (OrderState, OrderState, i64) {
    let t: OrderTransition = r.body_as().unwrap();
    (
        OrderState::from_u8(t.from_state).unwrap(),
        OrderState::from_u8(t.to_state).unwrap(),
        t.filled,
    )
}

#[test]
fn a_failed_trade_reverts_the_fill_and_the_state() {
    use OrderState::*;
    let mut o = acked(10_00000000);
    let a = o.set_filled(4_00000000, 4).unwrap();
    let b = o.set_filled(10_00000000, 5).unwrap();
    assert_eq!(o.state, Filled);
    // The second trade (6 shares) FAILED: back to 4 filled.
    let c = o.set_filled(4_00000000, 6).unwrap();
    assert_eq!((o.state, o.filled_e8), (PartiallyFilled, 4_00000000));
    // The first FAILED too: back to ACKED with nothing filled.
    let d = o.set_filled(0, 7).unwrap();
    assert_eq!((o.state, o.filled_e8), (Acked, 0));
    assert_eq!(
        [a, b, c, d].iter().map(edge).collect::<Vec<_>>(),
        vec![
            (Acked, PartiallyFilled, 4_00000000),
            (PartiallyFilled, Filled, 10_00000000),
            (Filled, PartiallyFilled, 4_00000000),
            (PartiallyFilled, Acked, 0),
        ]
    );
    // No change, negative: refused, nothing changes.
    assert!(o.set_filled(0, 8).is_err());
    assert!(o.set_filled(-1, 8).is_err());
    // A revert after a venue cancel keeps the order cancelled.
    o.set_filled(2_00000000, 9).unwrap();
    o.cancelled(10).unwrap();
    let e = o.set_filled(0, 11).unwrap();
    assert_eq!(edge(&e), (Cancelled, Cancelled, 0));
}

#[test]
fn fills_before_the_rest_response_and_restoring_a_lost_order() {
    use OrderState::*;
    // The user channel reports the match before the REST response.
    let (mut o, r0) = Order::new(3, 7, Side::Buy, 50_000_000, 5_00000000, false, 1);
    let r1 = o.submitted(2).unwrap();
    let r2 = o.set_filled(5_00000000, 3).unwrap();
    assert_eq!(o.state, Filled);
    let ok = classify_one(
        200,
        br#"{"success":true,"errorMsg":"","orderID":"0xab","status":"matched"}"#,
    );
    assert!(
        o.on_response(200, &ok, 4).is_err(),
        "the late ack changes nothing"
    );
    assert_eq!(Order::replay(&[r0, r1, r2]).unwrap(), o);

    // A genuine venue rejection is final ...
    let (mut o, _) = Order::new(4, 7, Side::Buy, 50_000_000, 5_00000000, false, 1);
    o.submitted(2).unwrap();
    o.on_response(
        400,
        &classify_one(400, br#"{"error":"invalid signature"}"#),
        3,
    )
    .unwrap();
    assert!(o.restore(Acked, [1; 16], 4).is_err());
    // ... a lost response is not: the venue had it, resting with 2 filled.
    let (mut o, r0) = Order::new(5, 7, Side::Buy, 50_000_000, 5_00000000, false, 1);
    let r1 = o.submitted(2).unwrap();
    let r2 = o
        .rejected_locally(ringbolt_exec::lifecycle::LOCAL_CONN_LOST, 3)
        .unwrap();
    assert!(o.unknown_outcome);
    let r3 = o.restore(Acked, [7; 16], 4).unwrap();
    let r4 = o.set_filled(2_00000000, 5).unwrap();
    assert_eq!((o.state, o.venue_order_id), (PartiallyFilled, [7; 16]));
    assert!(!o.unknown_outcome);
    let back = Order::replay(&[r0, r1, r2, r3, r4]).unwrap();
    assert_eq!(back, o);
}
