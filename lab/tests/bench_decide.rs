#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Smoke test of `ringbolt bench decide --json` with a small event count (the ≥ 1M-event runs
//! are manual, see docs/notes/decide.md): every figure is present, named with its unit, and sane.

use std::process::Command;

use ringbolt_testkit::process::run_ok;

#[test]
fn bench_decide_smoke() {
    let out = run_ok(Command::new(env!("CARGO_BIN_EXE_ringbolt-lab")).args([
        "bench",
        "decide",
        "--json",
        "--events",
        "20000",
        "--skip-ort",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bench"], "decide");
    assert_eq!(v["records"], 20_000);
    for key in [
        "reflex_pass_decisions_ns",
        "reflex_pass_all_records_ns",
        "feature_update_per_event_ns",
        "decision_per_event_ns",
        "model_native_ensemble_ns",
    ] {
        let p = &v[key];
        assert!(p["samples"].as_u64().unwrap() > 0, "{key}: {p}");
        assert!(
            p["p50_ns"].as_u64().unwrap() <= p["p99_ns"].as_u64().unwrap(),
            "{key}: {p}"
        );
    }
    assert!(
        v["model_ort_ensemble_ns"]["error"]
            .as_str()
            .unwrap()
            .contains("skipped")
    );
    assert_eq!(v["seed_system_p50_ns"], 21_000);
    // One span per record: the decision per event is timed on every record, not only on the
    // ones that produce a decision.
    assert_eq!(v["decision_per_event_ns"]["samples"], 20_000);
    assert_eq!(v["targets"]["decision_per_event_p50_ns_max"], 500);
    assert!(v["targets"]["met"].is_object());
}
