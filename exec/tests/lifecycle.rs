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
    // Further transitions are refused.
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
        (Acked, PartiallyFilled),
        (Acked, Filled),
        (Acked, Cancelled),
        (Acked, Expired),
        (PartiallyFilled, PartiallyFilled),
        (PartiallyFilled, Filled),
        (PartiallyFilled, Cancelled),
        (PartiallyFilled, Expired),
    ];
    let mut n = 0;
    for from in ALL {
        for to in ALL {
            let expected = edges.contains(&(from, to));
            assert_eq!(legal(from, to), expected, "{from:?} -> {to:?}");
            n += usize::from(expected);
        }
    }
    assert_eq!(n, 12);
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
