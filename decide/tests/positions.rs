#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The invariant "positions come from fills only": a fired order reserves room but is never
//! counted as filled; a Fill record counts (once per trade), a FAILED fill reverts it, a terminal
//! transition releases what the order still reserved.

use ringbolt_bus::{Fill, OrderState, OrderTransition, Record, SIZE_SCALE, Side, Venue};
use ringbolt_decide::DecideConfig;
use ringbolt_decide::engine::{Engine, OrderIntent};
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};

/// Runs the synthetic market through `engine`, calling `on_fire` after every fired intent.
fn run(engine: &mut Engine, mut on_fire: impl FnMut(&mut Engine, &OrderIntent)) {
    let stream = SynthStream::new(SynthConfig {
        windows: 2,
        seed: 5,
        ..SynthConfig::default()
    });
    for item in stream {
        match item {
            SynthItem::Instrument { id, venue, name } => {
                engine.register_instrument(id, venue, &name).unwrap();
            }
            SynthItem::Record(rec) => {
                if let Some(intent) = engine.on_record(&rec, None).intent {
                    on_fire(engine, &intent);
                }
            }
        }
    }
}

fn fill(intent: &OrderIntent, trade: u8, shares: f64, status: u8) -> Record {
    let body = Fill {
        ts_ns: intent.decided_at_ns,
        client_order_id: intent.client_order_id,
        price: intent.price,
        size: (shares * SIZE_SCALE as f64) as i64,
        fee_usdc: 0,
        window_start_s: intent.window_start_s,
        trade_id: [trade; 16],
        side: Side::Buy as u8,
        liquidity: 2,
        status,
        paper: 1,
        outcome: intent.outcome as u8,
        reserved: [0; 11],
    };
    Record::new(Venue::Internal, 2, intent.instrument, &body)
}

fn terminal(intent: &OrderIntent, to: OrderState) -> Record {
    let body = OrderTransition {
        client_order_id: intent.client_order_id,
        price: intent.price,
        size: intent.size,
        filled: 0,
        venue_order_id: [0; 16],
        error_class: 0,
        http_status: 0,
        from_state: OrderState::Acked as u8,
        to_state: to as u8,
        side: Side::Buy as u8,
        paper: 1,
        reserved: [0; 24],
    };
    Record::new(Venue::Internal, 2, intent.instrument, &body)
}

fn cfg() -> DecideConfig {
    let mut cfg = DecideConfig::default();
    cfg.risk.cooldown_ms = 0;
    cfg.risk.max_orders_per_window = 1_000;
    cfg
}

#[test]
fn a_fired_order_is_never_a_fill_and_reservations_stop_overfiring() {
    let mut engine = Engine::new(cfg());
    let mut fired = Vec::new();
    run(&mut engine, |e, intent| {
        let w = e.state.window(intent.window_start_s).unwrap();
        assert_eq!(w.position_shares, 0.0, "no fill record, no position");
        fired.push(*intent);
    });
    assert!(!fired.is_empty());
    // Nothing ever filled or ended: each window reserved at most its limit, then stopped.
    for start in fired.iter().map(|i| i.window_start_s) {
        let w = engine.state.window(start).unwrap();
        let reserved: f64 = fired
            .iter()
            .filter(|i| i.window_start_s == start)
            .map(|i| i.size as f64 / SIZE_SCALE as f64)
            .sum();
        assert!((w.open_shares - reserved).abs() < 1e-6);
        assert!(w.open_shares <= cfg().risk.max_position_shares + 1e-9);
        assert_eq!(w.position_shares, 0.0);
    }
}

#[test]
fn fills_count_once_failed_fills_revert_and_terminal_transitions_release() {
    let mut engine = Engine::new(cfg());
    let mut checked = false;
    run(&mut engine, |e, intent| {
        if checked {
            // Later orders end at once, so the window keeps room.
            e.own_record(&terminal(intent, OrderState::Cancelled));
            return;
        }
        checked = true;
        let start = intent.window_start_s;
        let shares = intent.size as f64 / SIZE_SCALE as f64;
        let w = |e: &Engine| {
            let w = e.state.window(start).unwrap();
            (w.position_shares, w.open_shares)
        };
        assert_eq!(w(e), (0.0, shares));
        e.own_record(&fill(intent, 1, 2.0, 1)); // provisional
        assert_eq!(w(e), (2.0, shares - 2.0));
        e.own_record(&fill(intent, 1, 2.0, 2)); // the same trade confirmed: counted once
        assert_eq!(w(e), (2.0, shares - 2.0));
        e.own_record(&fill(intent, 2, 1.0, 1));
        e.own_record(&fill(intent, 2, 1.0, 3)); // FAILED: reverted, reservation not restored
        assert_eq!(w(e), (2.0, shares - 3.0));
        e.own_record(&terminal(intent, OrderState::Cancelled));
        assert_eq!(w(e), (2.0, 0.0));
        e.own_record(&fill(intent, 9, 1.0, 3)); // a FAILED fill never counted: named, skipped
        assert_eq!(e.stats.own_records_unmatched, 1);
        assert_eq!((e.stats.fills_applied, e.stats.fills_reverted), (2, 1));
    });
    assert!(checked, "the synthetic market fires");
}
