#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The decision core end to end on the synthetic market: determinism (replay reproduces every
//! decision bit for bit), strikes and rollover, fire consistency, staleness, bad input.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringbolt_bus::{Decision, FeedState, PRICE_SCALE, Record, SIZE_SCALE, TopOfBook, Venue};
use ringbolt_decide::engine::{Engine, Reason};
use ringbolt_decide::market::{NS, WINDOW_S};
use ringbolt_decide::model::{Ensemble, EvaluatorKind, ModelDir, shipped_model_dir};
use ringbolt_decide::slot::ModelProb;
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream, feed_status_record};
use ringbolt_decide::{DecideConfig, schema_hash};

fn items(windows: u32, seed: u64) -> Vec<SynthItem> {
    SynthStream::new(SynthConfig {
        windows,
        seed,
        ..SynthConfig::default()
    })
    .collect()
}

/// Replays `items`, scoring the model inline on the engine's cadence when `ensemble` is given.
fn replay(items: &[SynthItem], mut ensemble: Option<&mut Ensemble>) -> (Engine, Vec<Record>) {
    let mut engine = Engine::new(DecideConfig::default());
    let mut decisions = Vec::new();
    let mut prob: Option<ModelProb> = None;
    for item in items {
        match item {
            SynthItem::Instrument { id, venue, name } => {
                engine.register_instrument(*id, *venue, name).unwrap();
            }
            SynthItem::Record(rec) => {
                let (update, want) = engine.update(rec);
                if want && let Some(ens) = ensemble.as_deref_mut() {
                    let ts = engine.state.now_ns;
                    let p = ens.predict(engine.compute_features()).unwrap();
                    prob = Some(ModelProb {
                        p_up: p,
                        features_ts_ns: ts,
                        schema_hash: schema_hash(),
                        features_version: 0,
                    });
                }
                let out = engine.decide_after(rec, update, prob);
                if let Some(d) = out.decision {
                    assert_eq!(
                        out.intent.is_some(),
                        d.body_as::<Decision>().unwrap().fired == 1
                    );
                    decisions.push(d);
                }
            }
        }
    }
    (engine, decisions)
}

#[test]
fn replay_is_bit_for_bit_deterministic_with_the_native_model() {
    let items = items(2, 5);
    let dir = ModelDir::load(&shipped_model_dir()).unwrap();
    let mut a = Ensemble::load(&dir, EvaluatorKind::Native).unwrap();
    let mut b = Ensemble::load(&dir, EvaluatorKind::Native).unwrap();
    let (e1, d1) = replay(&items, Some(&mut a));
    let (_, d2) = replay(&items, Some(&mut b));
    assert!(d1.len() > 1_000, "decisions {}", d1.len());
    assert_eq!(d1, d2, "replay must reproduce every decision");
    assert!(e1.stats.model_decisions > 0);
}

#[test]
fn strikes_rollover_and_fires_are_consistent() {
    let items = items(3, 9);
    // Chainlink reports stamped exactly at window starts, from the stream itself.
    let mut starts = std::collections::BTreeMap::new();
    for it in &items {
        if let SynthItem::Record(r) = it
            && r.venue == Venue::ChainlinkRtds as u8
            && r.exchange_ts_ns % (WINDOW_S * NS) == 0
        {
            let ip = r.body_as::<ringbolt_bus::IndexPrice>().unwrap();
            starts.insert(r.exchange_ts_ns / NS, ip.value_e18);
        }
    }
    let (engine, decisions) = replay(&items, None);
    assert!(starts.len() >= 3, "{starts:?}");
    for (start, value) in &starts {
        if let Some(w) = engine.state.window(*start) {
            assert!(w.strike_known);
            assert_eq!(
                w.strike_e18, *value,
                "strike of {start} must be the exact Chainlink value"
            );
        }
    }
    let cfg = DecideConfig::default();
    let mut fired = 0;
    let mut windows_traded = std::collections::BTreeSet::new();
    for d in &decisions {
        let b = d.body_as::<Decision>().unwrap();
        let reason = Reason::from_u8(b.reason).unwrap();
        assert!(
            b.probability > 0 && b.probability < 1_000_000_000
                || reason == Reason::NoWindow
                || reason == Reason::NoStrike
                || reason == Reason::NoReference
        );
        if b.fired == 1 {
            fired += 1;
            assert_eq!(reason, Reason::Fired);
            assert!(b.edge as f64 / PRICE_SCALE as f64 >= cfg.risk.min_edge);
            assert_eq!(b.price % (PRICE_SCALE / 100), 0, "price on the 0.01 tick");
            assert_eq!(b.size % (SIZE_SCALE / 100), 0, "size in 0.01 shares");
            assert!(b.size >= 5 * SIZE_SCALE);
            assert!(b.size <= (cfg.risk.max_order_shares * SIZE_SCALE as f64) as i64);
            assert_ne!(b.client_order_id, 0);
            windows_traded.insert(d.exchange_ts_ns / NS / WINDOW_S);
        } else {
            assert_eq!(b.client_order_id, 0);
        }
    }
    assert!(
        fired > 0,
        "the lagging synthetic market maker must offer some edge"
    );
    // Per-window limits hold.
    for w in &engine.state.windows {
        assert!(w.orders <= cfg.risk.max_orders_per_window);
        assert!(w.position_shares <= cfg.risk.max_position_shares + 1e-9);
    }
    assert!(!windows_traded.is_empty());
    assert_eq!(engine.state.errors.bad_levels, 0);
}

fn top(venue: Venue, bid: f64, ask: f64, ts: i64, seq: u64) -> Record {
    let mut r = Record::new(
        venue,
        1,
        0,
        &TopOfBook {
            bid_price: (bid * PRICE_SCALE as f64) as i64,
            bid_size: SIZE_SCALE,
            ask_price: (ask * PRICE_SCALE as f64) as i64,
            ask_size: SIZE_SCALE,
            reserved: [0; 48],
        },
    );
    r.recv_ts_ns = ts;
    r.seq = seq;
    r
}

#[test]
fn untrusted_or_stale_venues_drop_out_of_the_reference() {
    let mut e = Engine::new(DecideConfig::default());
    let t0 = 1_773_307_210 * NS;
    e.update(&top(Venue::Coinbase, 100.0, 100.2, t0, 1));
    e.update(&top(Venue::Kraken, 101.0, 101.2, t0 + 1, 2));
    e.update(&top(Venue::Okx, 102.0, 102.2, t0 + 2, 3));
    assert_eq!(e.state.reference_venues, 3);
    assert!((e.state.reference - 101.1).abs() < 1e-9);
    // Kraken's stream goes stale by its feed status: it leaves the median.
    let mut fs = feed_status_record(Venue::Kraken, 1, FeedState::GapDetected);
    fs.recv_ts_ns = t0 + 3;
    e.update(&fs);
    assert_eq!(e.state.reference_venues, 2);
    assert!(
        (e.state.reference - 101.1).abs() < 1e-9,
        "median of 100.1 and 102.1"
    );
    // Time passes beyond the staleness limit: only the venue that keeps quoting counts.
    e.update(&top(Venue::Okx, 103.0, 103.2, t0 + 3 * NS, 4));
    assert_eq!(e.state.reference_venues, 1);
    assert!((e.state.reference - 103.1).abs() < 1e-9);
}

#[test]
fn random_garbage_records_are_counted_not_fatal() {
    let items = items(1, 3);
    let mut e = Engine::new(DecideConfig::default());
    for it in items.iter().take(20_000) {
        match it {
            SynthItem::Instrument { id, venue, name } => {
                e.register_instrument(*id, *venue, name).unwrap()
            }
            SynthItem::Record(r) => {
                e.on_record(r, None);
            }
        }
    }
    let n: u64 = std::env::var("DECIDE_FUZZ_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut rng = StdRng::seed_from_u64(1);
    let base = e.state.now_ns;
    for i in 0..n {
        let mut r = Record::zeroed();
        rng.fill(&mut r.body[..]);
        r.kind = rng.random_range(0..14);
        r.venue = rng.random_range(0..14);
        r.flags = rng.random();
        r.stream = rng.random();
        r.instrument = rng.random_range(0..70_000);
        r.seq = i;
        r.recv_ts_ns = base + rng.random_range(-NS..NS * 1000);
        let out = e.on_record(&r, None);
        if let Some(d) = out.decision {
            let b = d.body_as::<Decision>().unwrap();
            assert!(Reason::from_u8(b.reason).is_some());
        }
    }
    let errs = e.state.errors;
    assert!(
        errs.unknown_kind_or_venue > 0
            && errs.unknown_instrument + errs.bad_levels + errs.bad_prices > 0,
        "{errs:?}"
    );
    assert!(
        e.register_instrument(3, Venue::Polymarket, "btc-updown-5m-17/up/1")
            .is_err()
    );
    assert!(
        e.register_instrument(1 << 20, Venue::Coinbase, "BTC-USD")
            .is_err()
    );
}

#[test]
fn no_fire_while_a_polymarket_stream_is_untrusted_until_it_is_live_again() {
    let all = items(3, 11);
    let (_, baseline) = replay(&all, None);
    let fired = |ds: &[Record]| {
        ds.iter()
            .filter(|d| d.body_as::<Decision>().unwrap().fired == 1)
            .count()
    };
    assert!(fired(&baseline) > 0, "the synthetic market must fire");
    // The Polymarket stream goes into a gap at the start: nothing may fire, every relevant
    // decision says no_book.
    let status = |state| {
        let mut r = feed_status_record(Venue::Polymarket, 0, state);
        r.recv_ts_ns = 1;
        SynthItem::Record(r)
    };
    let mut gapped = vec![status(FeedState::GapDetected)];
    gapped.extend(all.iter().cloned());
    let (engine, ds) = replay(&gapped, None);
    assert_eq!(fired(&ds), 0, "fired on an untrusted Polymarket book");
    assert!(engine.stats.by_reason[Reason::NoBook as usize] > 0);
    // Resynced again half-way: firing resumes.
    let mut healed = vec![status(FeedState::GapDetected)];
    let half = all.len() / 2;
    healed.extend(all[..half].iter().cloned());
    healed.push(status(FeedState::Resynced));
    healed.extend(all[half..].iter().cloned());
    let (_, ds) = replay(&healed, None);
    assert!(fired(&ds) > 0, "never fired after the stream was resynced");
}

#[test]
fn market_params_records_replace_the_configured_parameters_of_their_window() {
    use ringbolt_bus::{MarketParamsBody, PARAMS_FROM_GAMMA};
    use ringbolt_market::{MarketParams, Tick};
    let start = 1_773_307_200;
    let mut e = Engine::new(DecideConfig::default());
    let up = format!("btc-updown-5m-{start}/up/11");
    let down = format!("btc-updown-5m-{start}/down/22");
    e.register_instrument(1, Venue::Polymarket, &up).unwrap();
    let rec = |id: u32, body: &MarketParamsBody| {
        let mut r = Record::new(Venue::Polymarket, 6, id, body);
        r.recv_ts_ns = start * NS + NS;
        r
    };
    let gamma = MarketParams {
        fee_rate: 0.05,
        fee_exponent: 1.0,
        tick_size: Tick::T0_001,
        min_size_shares: 15.0,
    };
    e.on_record(&rec(1, &gamma.to_body(start, PARAMS_FROM_GAMMA)), None);
    assert_eq!(e.state.window(start).unwrap().params, gamma);
    // The second token's registration keeps the bus's parameters (not the configured ones).
    e.register_instrument(2, Venue::Polymarket, &down).unwrap();
    assert_eq!(e.state.window(start).unwrap().params, gamma);
    // A tick-size change moves the tick only; an unusable tick is counted, not applied.
    e.on_record(&rec(2, &MarketParams::tick_body(0, Tick::T0_01)), None);
    let p = e.state.window(start).unwrap().params;
    assert_eq!(
        (p.tick_size, p.min_size_shares, p.fee_rate),
        (Tick::T0_01, 15.0, 0.05)
    );
    let mut bad = MarketParams::tick_body(0, Tick::T0_01);
    bad.tick_size = 2_000_000;
    e.on_record(&rec(2, &bad), None);
    assert_eq!(e.state.errors.bad_params, 1);
    assert_eq!(e.state.window(start).unwrap().params.tick_size, Tick::T0_01);
}
