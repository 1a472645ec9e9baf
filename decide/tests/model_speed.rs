#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]
//! Timing probe of the native evaluator for development (`cargo test --release -p
//! ringbolt-decide --test model_speed -- --ignored --nocapture`): per-call p50 (and the mean of
//! the fastest rounds) of each member and of the ensemble on real feature vectors of the
//! synthetic stream, like `ringbolt bench decide` (whose release figures are the ones recorded).

use std::hint::black_box;
use std::time::Instant;

use ringbolt_decide::model::native::TreeEnsemble;
use ringbolt_decide::model::{Ensemble, EvaluatorKind, ModelDir, shipped_model_dir};
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};
use ringbolt_decide::{DecideConfig, Engine, N_FEATURES};

/// Feature vectors sampled from a replay of the synthetic stream (as `bench decide` does).
fn samples(records: usize) -> Vec<[f32; N_FEATURES]> {
    let mut engine = Engine::new(DecideConfig::default());
    let mut out = Vec::new();
    let mut seen = 0usize;
    for item in SynthStream::new(SynthConfig {
        seed: 11,
        windows: (records / 40_000 + 2) as u32,
        ..SynthConfig::default()
    }) {
        match item {
            SynthItem::Instrument { id, venue, name } => {
                let _ = engine.register_instrument(id, venue, &name);
            }
            SynthItem::Record(r) => {
                if seen >= records {
                    break;
                }
                seen += 1;
                let _ = engine.update(&r);
                let f = engine.compute_features();
                if seen.is_multiple_of(97) && f[5] > 0.0 {
                    out.push(*f);
                }
            }
        }
    }
    assert!(!out.is_empty());
    out
}

/// p50 of per-call times (ns) over `calls` calls, timed one by one like the bench.
fn p50(
    xs: &[[f32; N_FEATURES]],
    calls: usize,
    mut f: impl FnMut(&[f32; N_FEATURES]) -> f64,
) -> u64 {
    let mut ns = Vec::with_capacity(calls);
    let mut acc = 0.0;
    for i in 0..calls {
        let x = black_box(&xs[i % xs.len()]);
        let t = Instant::now();
        acc += f(x);
        ns.push(t.elapsed().as_nanos() as u64);
    }
    black_box(acc);
    ns.sort_unstable();
    ns[ns.len() / 2]
}

#[test]
#[ignore = "timing probe, run by hand in release"]
fn native_evaluator_speed_probe() {
    let xs = samples(300_000);
    let dir = ModelDir::load(&shipped_model_dir()).unwrap();
    let members: Vec<(String, TreeEnsemble)> = dir
        .members
        .iter()
        .map(|(m, b)| (m.name.clone(), TreeEnsemble::from_onnx(b).unwrap()))
        .collect();
    let mut ens = Ensemble::load(&dir, EvaluatorKind::Native).unwrap();
    println!("{} vectors", xs.len());
    // Many short rounds, variants alternating: on a loaded machine the best and the median
    // round say more than one long run.
    let names: Vec<String> = members
        .iter()
        .flat_map(|(n, _)| [format!("{n} walk"), n.clone()])
        .chain(["ensemble".to_string()])
        .collect();
    let mut p50s: Vec<Vec<u64>> = vec![Vec::new(); names.len()];
    for _ in 0..30 {
        for (m, (_, t)) in members.iter().enumerate() {
            p50s[2 * m].push(p50(&xs, 20_000, |x| t.predict_walk(x)));
            p50s[2 * m + 1].push(p50(&xs, 20_000, |x| t.predict(x)));
        }
        p50s[names.len() - 1].push(p50(&xs, 20_000, |x| ens.predict(x).unwrap()));
    }
    for (name, mut v) in names.iter().zip(p50s) {
        v.sort_unstable();
        println!(
            "{name:16} p50 per call: best round {:5} ns, median round {:5} ns",
            v[0],
            v[v.len() / 2]
        );
    }
}
