#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The engine's feature vector (memoised book views, `ln` of price ratios, shared decay factors:
//! `features::compute_cached`) is bit-identical to computing every input afresh
//! (`features::compute`), whether it is computed on every record or only now and then (caches
//! then span many state changes), over synthetic markets with feed outages, rollovers and
//! snapshot batches.

use ringbolt_decide::features::{self, CATALOGUE, N_FEATURES};
use ringbolt_decide::synth::{Rng, SynthConfig, SynthItem, SynthStream};
use ringbolt_decide::{DecideConfig, Engine};

fn check(seed: u64, windows: u32, outage_per_s: f64, every: bool) -> u64 {
    let mut engine = Engine::new(DecideConfig::default());
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut compared = 0u64;
    for item in SynthStream::new(SynthConfig {
        seed,
        windows,
        outage_per_s,
        ..SynthConfig::default()
    }) {
        match item {
            SynthItem::Instrument { id, venue, name } => {
                let _ = engine.register_instrument(id, venue, &name);
            }
            SynthItem::Record(rec) => {
                let (_, want) = engine.update(&rec);
                if !(every || want || rng.chance(0.02)) {
                    continue;
                }
                let cached = *engine.compute_features();
                let mut direct = [0f32; N_FEATURES];
                features::compute(&engine.state, &mut direct);
                for i in 0..N_FEATURES {
                    assert_eq!(
                        cached[i].to_bits(),
                        direct[i].to_bits(),
                        "seed {seed}: feature {} ({}) at record seq {}: cached {} direct {}",
                        i,
                        CATALOGUE[i].name,
                        rec.seq,
                        cached[i],
                        direct[i]
                    );
                }
                compared += 1;
            }
        }
    }
    compared
}

#[test]
fn cached_features_are_bit_identical_on_every_record() {
    assert!(check(21, 3, 0.002, true) > 100_000);
    assert!(check(22, 2, 0.05, true) > 50_000);
}

#[test]
fn cached_features_are_bit_identical_when_computed_now_and_then() {
    assert!(check(23, 4, 0.002, false) > 1_000);
    assert!(check(24, 3, 0.05, false) > 1_000);
}

/// `Engine::refresh_features` on every record brings the vector up to date (bit-identical to
/// `features::compute`) and leaves the model cadence alone: the same records, with and without
/// it, give the same re-score points and the same decisions, field for field.
#[test]
fn refreshing_every_record_leaves_the_cadence_and_decisions_alone() {
    let mut plain = Engine::new(DecideConfig::default());
    let mut refreshed = Engine::new(DecideConfig::default());
    let (mut decisions, mut rescores) = (0u64, 0u64);
    for item in SynthStream::new(SynthConfig {
        seed: 25,
        windows: 2,
        ..SynthConfig::default()
    }) {
        match item {
            SynthItem::Instrument { id, venue, name } => {
                let _ = plain.register_instrument(id, venue, &name);
                let _ = refreshed.register_instrument(id, venue, &name);
            }
            SynthItem::Record(rec) => {
                let (u1, want1) = plain.update(&rec);
                let (u2, want2) = refreshed.update(&rec);
                assert_eq!(want1, want2, "re-score point differs at seq {}", rec.seq);
                let now = *refreshed.refresh_features();
                let mut direct = [0f32; N_FEATURES];
                features::compute(&refreshed.state, &mut direct);
                assert!(
                    now.iter()
                        .zip(&direct)
                        .all(|(a, b)| a.to_bits() == b.to_bits())
                );
                if want1 {
                    rescores += 1;
                    let a = *plain.compute_features();
                    let b = *refreshed.compute_features();
                    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
                }
                let d1 = plain.decide_after(&rec, u1, None).decision;
                let d2 = refreshed.decide_after(&rec, u2, None).decision;
                assert_eq!(
                    d1.map(|d| bytemuck::bytes_of(&d).to_vec()),
                    d2.map(|d| bytemuck::bytes_of(&d).to_vec()),
                    "decision differs at seq {}",
                    rec.seq
                );
                decisions += u64::from(d1.is_some());
            }
        }
    }
    assert!(
        decisions > 10_000 && rescores > 100,
        "{decisions} decisions, {rescores} re-scores"
    );
}
