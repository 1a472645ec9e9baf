#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Reconciliation against REST bodies: an order whose submit outcome was unknown is found by its
//! hash and restored; one the venue cancelled is cancelled; an in-flight one is left to its own
//! response; the open-order count is the venue's.

use ringbolt_bus::{OrderState, Side};
use ringbolt_exec::client::inflight::ClientCore;
use ringbolt_exec::lifecycle::{LOCAL_CONN_LOST, Order};
use ringbolt_exec::reconcile::{apply_lookup, apply_open_orders, order_lookup, page, venue_order};

fn hash(n: u8) -> (String, [u8; 32]) {
    let d = [n; 32];
    let s = format!(
        "0x{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    (s, d)
}

fn core_with(states: &[(u64, u8, bool)]) -> ClientCore {
    let mut core = ClientCore::with_capacity(8);
    for &(coid, h, lost) in states {
        let (o, _) = Order::new(coid, 1, Side::Buy, 50_000_000, 5_00000000, false, 1);
        core.track(o, hash(h).1);
        let o = core.order_mut(coid).unwrap();
        o.submitted(2).unwrap();
        if lost {
            o.rejected_locally(LOCAL_CONN_LOST, 3).unwrap();
        }
    }
    core
}

#[test]
fn open_orders_restore_the_lost_and_ask_for_the_rest() {
    // 1: lost in flight, resting at the venue. 2: lost, not listed. 3: submitted, not listed.
    let mut core = core_with(&[(1, 0xa1, true), (2, 0xa2, true), (3, 0xa3, false)]);
    let body = format!(
        r#"{{"data":[{{"id":"{}","status":"LIVE","size_matched":"0","price":"0.5"}},
        {{"id":"0xffff","status":"LIVE","size_matched":""}}],"next_cursor":"LTE="}}"#,
        hash(0xa1).0
    );
    let (items, next) = page(body.as_bytes()).unwrap();
    assert_eq!(next, None);
    let open: Vec<_> = items.iter().filter_map(venue_order).collect();
    let mut out = Vec::new();
    let rep = apply_open_orders(&mut core, &open, 10, &mut out);
    assert_eq!(rep.venue_open, 2);
    assert_eq!(rep.restored, 1);
    assert_eq!(
        rep.lookup,
        vec![2],
        "unlisted orders of unknown outcome are looked up; in-flight ones are not"
    );
    assert_eq!(core.order(1).unwrap().state, OrderState::Acked);
    assert_eq!(out.len(), 1);

    // Lookups by hash: 2 was cancelled at the venue.
    let cancelled = format!(r#"{{"id":"{}","status":"CANCELED"}}"#, hash(0xa2).0);
    let v = order_lookup(200, cancelled.as_bytes()).unwrap();
    let d = apply_lookup(&mut core, 2, v.as_ref(), 11, &mut out);
    assert_eq!(core.order(2).unwrap().state, OrderState::Cancelled);
    assert_eq!(
        (d.closed, d.reopened),
        (0, 0),
        "REJECTED was already terminal"
    );
    let v = order_lookup(404, b"").unwrap();
    assert_eq!(v, None);
    // An in-flight order is left to its own response.
    let d = apply_lookup(&mut core, 3, None, 12, &mut out);
    assert_eq!(core.order(3).unwrap().state, OrderState::Submitted);
    assert_eq!(d.closed, 0);
    assert_eq!(order_lookup(200, b"null").unwrap(), None);
    assert!(order_lookup(200, b"<html>").is_err());
    assert!(page(b"{\"x\":1}").is_err());
    // Paginated: the cursor is handed back.
    let (_, next) = page(br#"{"data":[],"next_cursor":"MTAw"}"#).unwrap();
    assert_eq!(next.as_deref(), Some("MTAw"));
}

#[test]
fn a_tick_change_finds_resting_orders_off_the_new_grid() {
    use ringbolt_exec::amounts::TickSize;
    use ringbolt_exec::pool::resting_off_grid;
    let mut core = ClientCore::with_capacity(8);
    // Prices 0.505 (on 0.001 and 0.005, off 0.01) and 0.51 (on every grid), instrument 1;
    // one on instrument 2; one not resting.
    let ok = ringbolt_exec::classify::classify_one(
        200,
        br#"{"success":true,"errorMsg":"","orderID":"0xab","status":"live"}"#,
    );
    for (coid, instrument, price, ack) in [
        (1, 1, 50_500_000, true),
        (2, 1, 51_000_000, true),
        (3, 2, 50_500_000, true),
        (4, 1, 50_500_000, false),
    ] {
        let (o, _) = Order::new(coid, instrument, Side::Buy, price, 5_00000000, false, 1);
        core.track(o, hash(u8::try_from(coid).unwrap()).1);
        let o = core.order_mut(coid).unwrap();
        o.submitted(2).unwrap();
        if ack {
            o.on_response(200, &ok, 3).unwrap();
        }
    }
    assert_eq!(resting_off_grid(&core, &[1], TickSize::T0_01), vec![1]);
    assert_eq!(
        resting_off_grid(&core, &[1, 2], TickSize::T0_01),
        vec![1, 3]
    );
    assert!(resting_off_grid(&core, &[1, 2], TickSize::T0_001).is_empty());
}
