#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]
//! Development probes of the per-event decision path (run by hand in release):
//!
//! - `ir_probe`: the three passes of `decide_speed` (update alone, update + feature vector on
//!   every record, the reflex pass) in separate non-inlined functions, so that
//!   `valgrind --tool=callgrind` gives instructions per event for each, independent of machine
//!   load: `valgrind --tool=callgrind --callgrind-out-file=cg.out <test binary> --ignored
//!   --exact ir_probe`, then `callgrind_annotate --inclusive=yes cg.out | grep pass_` (Ir of
//!   `pass_*` / `IR_EVENTS`).
//! - `fingerprint`: a hash of every feature vector (on every record and on the engine's
//!   cadence), every decision record and the composite reference over a few synthetic streams.
//!   It depends on the platform's libm, so it is not a golden value: it must print the same hash
//!   before and after a change that claims bit-identical results, on one machine.

use std::hash::Hasher;
use std::hint::black_box;

use ringbolt_bus::Record;
use ringbolt_decide::slot::ModelProb;
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};
use ringbolt_decide::{DecideConfig, Engine, schema_hash};

/// Records per pass of the Ir probe.
const IR_EVENTS: usize = 100_000;

type Regs = Vec<(u32, ringbolt_bus::Venue, String)>;

fn stream(seed: u64, n: usize) -> (Regs, Vec<Record>) {
    let mut regs = Vec::new();
    let mut recs: Vec<Record> = Vec::with_capacity(n);
    for item in SynthStream::new(SynthConfig {
        seed,
        windows: (n / 40_000 + 2) as u32,
        ..SynthConfig::default()
    }) {
        match item {
            SynthItem::Instrument { id, venue, name } => regs.push((id, venue, name)),
            SynthItem::Record(r) if recs.len() < n => recs.push(r),
            SynthItem::Record(_) => break,
        }
    }
    (regs, recs)
}

fn engine(regs: &Regs) -> Engine {
    let mut e = Engine::new(DecideConfig::default());
    for (id, venue, name) in regs {
        let _ = e.register_instrument(*id, *venue, name);
    }
    e
}

#[inline(never)]
fn pass_update(e: &mut Engine, recs: &[Record]) {
    for r in recs {
        black_box(e.update(r));
    }
}

#[inline(never)]
fn pass_features(e: &mut Engine, recs: &[Record]) {
    for r in recs {
        let _ = e.update(r);
        black_box(e.compute_features());
    }
}

#[inline(never)]
fn pass_reflex(e: &mut Engine, recs: &[Record]) {
    for r in recs {
        let (u, want) = e.update(r);
        if want {
            black_box(e.compute_features());
        }
        black_box(e.decide_after(r, u, None));
    }
}

#[test]
#[ignore = "callgrind probe, run by hand in release"]
fn ir_probe() {
    let (regs, recs) = stream(11, IR_EVENTS);
    let mut e = engine(&regs);
    pass_update(&mut e, &recs);
    let mut e = engine(&regs);
    pass_features(&mut e, &recs);
    let mut e = engine(&regs);
    pass_reflex(&mut e, &recs);
    println!("ir_probe: {} records per pass", recs.len());
}

fn eat_f64(h: &mut impl Hasher, v: f64) {
    h.write_u64(v.to_bits());
}

#[test]
#[ignore = "bit-identity probe, compare the printed hash before/after a change on one machine"]
fn fingerprint() {
    let hash = schema_hash();
    let p_index = ringbolt_decide::features::index_of("p_baseline").unwrap();
    let mut total = std::collections::hash_map::DefaultHasher::new();
    for seed in [3u64, 11, 29] {
        let (regs, recs) = stream(seed, 120_000);
        // 1. Feature vector on every record, decisions without a model (baseline).
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut e = engine(&regs);
        for r in &recs {
            let (u, want) = e.update(r);
            h.write_u8(u8::from(want));
            for f in e.compute_features() {
                h.write_u32(f.to_bits());
            }
            let s = &e.state;
            eat_f64(&mut h, s.reference);
            eat_f64(&mut h, s.reference_mad);
            h.write_u32(s.reference_venues);
            h.write_u64(s.reference_seq);
            for v in s.var_per_s {
                eat_f64(&mut h, v);
            }
            if let Some(d) = e.decide_after(r, u, None).decision {
                h.write(bytemuck_bytes(&d));
            }
        }
        let every = h.finish();
        // 2. The reflex pass on the cadence, with a stand-in model probability.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut e = engine(&regs);
        let mut prob: Option<ModelProb> = None;
        for r in &recs {
            let (u, want) = e.update(r);
            h.write_u8(u8::from(want));
            if want {
                let ts = e.state.now_ns;
                let f = e.compute_features();
                for x in f {
                    h.write_u32(x.to_bits());
                }
                prob = Some(ModelProb {
                    p_up: f64::from(f[p_index]) * 0.9 + 0.05,
                    features_ts_ns: ts,
                    schema_hash: hash,
                    features_version: 0,
                });
            }
            let out = e.decide_after(r, u, prob);
            if let Some(d) = out.decision {
                h.write(bytemuck_bytes(&d));
            }
            h.write_u8(u8::from(out.intent.is_some()));
        }
        let cadence = h.finish();
        println!("seed {seed}: every-record {every:#018x} cadence {cadence:#018x}");
        total.write_u64(every);
        total.write_u64(cadence);
    }
    println!("fingerprint {:#018x}", total.finish());
}

fn bytemuck_bytes(r: &Record) -> &[u8] {
    // Record is a plain bus record (Pod).
    bytemuck::bytes_of(r)
}
