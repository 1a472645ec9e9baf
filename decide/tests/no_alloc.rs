#![allow(clippy::expect_used, clippy::unwrap_used)]
//! No allocation after start-up: the reflex pass, feature computation, native model scoring and
//! the seqlock slots run under a counting global allocator that must not move.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use ringbolt_decide::engine::Engine;
use ringbolt_decide::model::{Ensemble, EvaluatorKind, ModelDir, shipped_model_dir};
use ringbolt_decide::slot::{FeatureSlot, ModelProb, ProbSlot};
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};
use ringbolt_decide::{DecideConfig, schema_hash};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    let before = ALLOCS.load(Ordering::Relaxed);
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
    let after = ALLOCS.load(Ordering::Relaxed);
    assert!(decisions > 1_000);
    assert_eq!(
        after - before,
        0,
        "allocations on the hot path over {} records",
        records.len()
    );
}
