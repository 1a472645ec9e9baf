#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The native tree evaluator equals ONNX Runtime within 1e-6 on 10,000 random feature vectors,
//! for each ensemble member and for the ensemble, using the shipped model (decide/models).
//!
//! Needs libonnxruntime (ORT_DYLIB_PATH or <workspace>/.venv): with `CI=true` a missing library
//! fails the test; elsewhere the test is skipped with a message.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringbolt_decide::N_FEATURES;
use ringbolt_decide::model::native::TreeEnsemble;
use ringbolt_decide::model::ort_eval::{OrtModel, environment};
use ringbolt_decide::model::{Ensemble, EvaluatorKind, ModelDir, ModelError, shipped_model_dir};

fn ort_available() -> bool {
    match environment() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and ONNX Runtime is unavailable: {e}");
            }
            eprintln!("SKIPPED: {e}");
            false
        }
    }
}

/// Random vectors that hit the split thresholds: per feature, a threshold (exactly, or nudged by
/// one ulp either way), a value between two thresholds, or a value outside their range.
fn vectors(trees: &[TreeEnsemble], n: usize, seed: u64) -> Vec<[f32; N_FEATURES]> {
    let mut by_feature: Vec<Vec<f32>> = vec![Vec::new(); N_FEATURES];
    for t in trees {
        for (f, thr) in t.splits() {
            by_feature[f].push(thr);
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut x = [0f32; N_FEATURES];
            for (f, v) in x.iter_mut().enumerate() {
                let th = &by_feature[f];
                *v = if th.is_empty() {
                    rng.random_range(-10.0..10.0)
                } else {
                    let t = th[rng.random_range(0..th.len())];
                    match rng.random_range(0..5) {
                        0 => t,
                        1 => f32::from_bits(t.to_bits().wrapping_add(1)),
                        2 => f32::from_bits(t.to_bits().wrapping_sub(1)),
                        3 => t + rng.random_range(-1.0f32..1.0) * (t.abs() * 0.1 + 0.5),
                        _ => rng.random_range(-1000.0f32..1000.0),
                    }
                };
            }
            x
        })
        .collect()
}

/// The shipped model's members as native tree ensembles.
fn member_trees(dir: &ModelDir) -> Vec<TreeEnsemble> {
    dir.members
        .iter()
        .map(|(_, b)| TreeEnsemble::from_onnx(b).unwrap())
        .collect()
}

#[test]
fn native_evaluator_equals_ort_on_10k_random_vectors() {
    if !ort_available() {
        return;
    }
    let dir = ModelDir::load(&shipped_model_dir()).expect("shipped model loads");
    let trees = member_trees(&dir);
    let mut orts: Vec<OrtModel> = dir
        .members
        .iter()
        .map(|(_, b)| OrtModel::load(b, N_FEATURES).unwrap())
        .collect();
    // CatBoost's oblivious trees take the oblivious layout, XGBoost's the complete-tree layout:
    // both are covered by the comparison below.
    let oblivious: Vec<usize> = trees.iter().map(TreeEnsemble::oblivious_trees).collect();
    assert!(
        oblivious.iter().any(|n| *n > 0),
        "no oblivious tree detected: {oblivious:?}"
    );
    assert!(
        trees.iter().any(|t| t.complete_trees() > 0),
        "no complete-layout tree: {oblivious:?}"
    );
    let xs = vectors(&trees, 10_000, 42);
    let mut worst = 0.0f64;
    for x in &xs {
        for (t, o) in trees.iter().zip(orts.iter_mut()) {
            let a = t.predict(x);
            let b = o.predict(x).unwrap();
            worst = worst.max((a - b).abs());
            assert!((a - b).abs() <= 1e-6, "native {a} vs ort {b}");
        }
    }
    let mut native = Ensemble::load(&dir, EvaluatorKind::Native).unwrap();
    let mut ort = Ensemble::load(&dir, EvaluatorKind::Ort).unwrap();
    for x in xs.iter().take(2_000) {
        let (a, b) = (native.predict(x).unwrap(), ort.predict(x).unwrap());
        assert!((a - b).abs() <= 1e-6, "ensemble native {a} vs ort {b}");
    }
    eprintln!(
        "max |native − ort| over 10,000 vectors × {} members: {worst:e}",
        trees.len()
    );
}

/// The padded layouts (what `predict` scores through) against the node-by-node walk, bit for
/// bit, per member and for the ensemble (same member order and f64 sum): threshold-hitting
/// vectors, half of them with some features NaN, ±∞ or ±0. Replay parity rests on this.
#[test]
fn padded_layouts_equal_the_node_walk_bit_for_bit() {
    let dir = ModelDir::load(&shipped_model_dir()).expect("shipped model loads");
    let trees = member_trees(&dir);
    for t in &trees {
        assert_eq!(t.complete_trees() + t.oblivious_trees(), t.trees());
    }
    assert!(trees.iter().any(|t| t.complete_trees() > 0));
    assert!(trees.iter().any(|t| t.oblivious_trees() > 0));
    let mut xs = vectors(&trees, 50_000, 7);
    let mut rng = StdRng::seed_from_u64(8);
    let odd = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0];
    for x in xs.iter_mut().step_by(2) {
        for _ in 0..rng.random_range(1..30) {
            x[rng.random_range(0..N_FEATURES)] = odd[rng.random_range(0..odd.len())];
        }
    }
    let mut ensemble = Ensemble::load(&dir, EvaluatorKind::Native).unwrap();
    for x in &xs {
        for t in &trees {
            let (fast, walk) = (t.predict(x), t.predict_walk(x));
            assert_eq!(fast.to_bits(), walk.to_bits(), "{fast} vs walk {walk}");
        }
        let Ensemble::Native(members) = &ensemble else {
            panic!("native ensemble expected")
        };
        let walk: f64 = members.iter().map(|(w, t)| w * t.predict_walk(x)).sum();
        let fast = ensemble.predict(x).unwrap();
        assert_eq!(
            fast.to_bits(),
            walk.to_bits(),
            "ensemble {fast} vs walk {walk}"
        );
    }
}

#[test]
fn corrupt_or_foreign_onnx_is_a_clear_error() {
    let err = TreeEnsemble::from_onnx(b"\x08\x07garbage").unwrap_err();
    assert!(matches!(err, ModelError::Onnx(_)), "{err}");
    let empty = TreeEnsemble::from_onnx(&[]).unwrap_err();
    assert!(empty.to_string().contains("no graph"), "{empty}");
}

#[test]
fn schema_mismatch_is_refused() {
    let tmp = std::env::temp_dir().join(format!("decide-schema-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let text = std::fs::read_to_string(shipped_model_dir().join("model.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["feature_schema_hash"] = serde_json::json!("0x12345678");
    std::fs::write(tmp.join("model.json"), v.to_string()).unwrap();
    let err = ModelDir::load(&tmp).unwrap_err().to_string();
    assert!(err.contains("retrain"), "{err}");
    std::fs::remove_dir_all(&tmp).ok();
}
