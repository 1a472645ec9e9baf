#![allow(clippy::expect_used, clippy::unwrap_used)]
//! No allocation after start-up: the reflex pass, feature computation, native model scoring and
//! the seqlock slots run under a counting global allocator that must not move.

use ringbolt_decide::engine::Engine;
use ringbolt_decide::model::{Ensemble, EvaluatorKind, ModelDir, shipped_model_dir};
use ringbolt_decide::slot::{FeatureSlot, ModelProb, ProbSlot};
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};
use ringbolt_decide::{DecideConfig, schema_hash};
use ringbolt_testkit::{CountingAlloc, thread_allocs};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn hot_path_does_not_allocate() {
    let items: Vec<SynthItem> = SynthStream::new(SynthConfig {
        windows: 2,
        seed: 4,
        ..SynthConfig::default()
    })
    .collect();
    let dir = ModelDir::load(&shipped_model_dir()).unwrap();
    let mut ens = Ensemble::load(&dir, EvaluatorKind::Native).unwrap();
    let mut engine = Engine::new(DecideConfig::default());
    let records: Vec<_> = items
        .iter()
        .filter_map(|it| match it {
            SynthItem::Instrument { id, venue, name } => {
                engine.register_instrument(*id, *venue, name).unwrap();
                None
            }
            SynthItem::Record(r) => Some(*r),
        })
        .collect();
    let fslot = FeatureSlot::default();
    let pslot = ProbSlot::default();
    let hash = schema_hash();
    let before = thread_allocs();
    let mut decisions = 0u64;
    for rec in &records {
        let (update, want) = engine.update(rec);
        if want {
            let ts = engine.state.now_ns;
            fslot.publish(engine.compute_features(), ts);
            let mut x = [0f32; ringbolt_decide::N_FEATURES];
            let (v, ts) = fslot.read(&mut x).unwrap();
            let p = ens.predict(&x).unwrap();
            pslot.publish(&ModelProb {
                p_up: p,
                features_ts_ns: ts,
                schema_hash: hash,
                features_version: v,
            });
        }
        let out = engine.decide_after(rec, update, pslot.latest());
        decisions += u64::from(out.decision.is_some());
    }
    let after = thread_allocs();
    assert!(decisions > 1_000);
    assert_eq!(
        after - before,
        0,
        "allocations on the hot path over {} records",
        records.len()
    );
}

/// The shared pipeline (what `ringbolt trade` and `ringbolt replay` run per record), with the live
/// seqlock link and with the parity link (recorded probabilities + re-scoring by the native
/// ensemble): the only allocations are the instrument names looked up once per id.
#[test]
fn pipeline_allocates_only_to_register_instruments() {
    use std::collections::HashMap;

    use ringbolt_decide::pipeline::{Pipeline, RecordedLink, RecordedProb, Scorer, SlotLink};

    let mut names = HashMap::new();
    let mut records = Vec::new();
    for item in SynthStream::new(SynthConfig {
        windows: 2,
        seed: 4,
        ..SynthConfig::default()
    }) {
        match item {
            SynthItem::Instrument { id, venue, name } => {
                names.insert(id, (venue, name));
            }
            SynthItem::Record(r) => records.push(r),
        }
    }
    let ids: std::collections::HashSet<u32> = records
        .iter()
        .map(|r| r.instrument)
        .filter(|id| names.contains_key(id))
        .collect();
    let fslot = FeatureSlot::default();
    let pslot = ProbSlot::default();
    let mut live = Pipeline::new(DecideConfig::default(), 1, true);
    let mut slots = SlotLink {
        features: &fslot,
        probs: &pslot,
    };
    let mut decisions = Vec::with_capacity(records.len());
    let before = thread_allocs();
    for r in &records {
        let mut rec = *r;
        let lookup = |id: u32| names.get(&id).cloned();
        if let Some(d) = live.process(0, &mut rec, lookup, &mut slots) {
            decisions.push(d);
        }
    }
    let live_allocs = thread_allocs() - before;
    assert!(decisions.len() > 1_000);
    assert_eq!(
        live_allocs,
        ids.len() as u64,
        "allocations beyond one name per instrument"
    );

    let by_decision: Vec<Option<RecordedProb>> = decisions.iter().map(RecordedProb::of).collect();
    let dir = ModelDir::load(&shipped_model_dir()).unwrap();
    let scorer = Scorer::new(Ensemble::load(&dir, EvaluatorKind::Native).unwrap());
    let cfg = DecideConfig::default();
    let mut link = RecordedLink::new(by_decision, Some(scorer), &cfg);
    let mut replay = Pipeline::new(cfg, 1, true);
    let mut n = 0usize;
    let before = thread_allocs();
    for r in &records {
        let mut rec = *r;
        let lookup = |id: u32| names.get(&id).cloned();
        if let Some(d) = replay.process(0, &mut rec, lookup, &mut link) {
            assert_eq!(d, decisions[n]);
            n += 1;
        }
    }
    let replay_allocs = thread_allocs() - before;
    assert_eq!(n, decisions.len());
    assert_eq!(replay_allocs, ids.len() as u64);
}
