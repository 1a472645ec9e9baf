#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]
//! Timing probe of the per-event decision path for development (`cargo test --release -p
//! ringbolt-decide --test decide_speed -- --ignored --nocapture`): feature update per event
//! (state update + all features) and the reflex pass, timed per record like `ringbolt bench
//! decide` (whose release figures are the ones recorded).

use std::hint::black_box;
use std::time::Instant;

use ringbolt_bus::Record;
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};
use ringbolt_decide::{DecideConfig, Engine};

fn p50(mut ns: Vec<u64>) -> u64 {
    ns.sort_unstable();
    ns[ns.len() / 2]
}

#[test]
#[ignore = "timing probe, run by hand in release"]
fn decide_speed_probe() {
    let n = 1_000_000usize;
    let mut regs = Vec::new();
    let mut recs: Vec<Record> = Vec::with_capacity(n);
    for item in SynthStream::new(SynthConfig {
        seed: 11,
        windows: (n / 40_000 + 2) as u32,
        ..SynthConfig::default()
    }) {
        match item {
            SynthItem::Instrument { id, venue, name } => regs.push((id, venue, name)),
            SynthItem::Record(r) if recs.len() < n => recs.push(r),
            SynthItem::Record(_) => break,
        }
    }
    let engine = || {
        let mut e = Engine::new(DecideConfig::default());
        for (id, venue, name) in &regs {
            let _ = e.register_instrument(*id, *venue, name);
        }
        e
    };
    for round in 0..3 {
        let mut e = engine();
        let mut update = Vec::with_capacity(n);
        let mut feat = Vec::with_capacity(n);
        for r in &recs {
            let t0 = Instant::now();
            let _ = e.update(r);
            let t1 = Instant::now();
            black_box(e.compute_features());
            let t2 = Instant::now();
            update.push((t1 - t0).as_nanos() as u64);
            feat.push((t2 - t0).as_nanos() as u64);
        }
        let mut e = engine();
        let mut reflex = Vec::with_capacity(n);
        for r in &recs {
            let t0 = Instant::now();
            let (u, want) = e.update(r);
            if want {
                black_box(e.compute_features());
            }
            black_box(e.decide_after(r, u, None));
            reflex.push(t0.elapsed().as_nanos() as u64);
        }
        println!(
            "round {round}: update alone {} ns, feature update {} ns, reflex pass {} ns",
            p50(update),
            p50(feat),
            p50(reflex)
        );
    }
}
