#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Smoke test of `ringbolt bench replay --json` on one synthetic window (the figures come from the
//! release build; this checks the bench runs, its parity holds and its keys name their units).

use std::process::Command;

use ringbolt_testkit::process::run_ok;

#[test]
fn bench_replay_runs_and_reports_units() {
    let out = run_ok(Command::new(env!("CARGO_BIN_EXE_ringbolt-lab")).args([
        "bench",
        "replay",
        "--json",
        "--windows",
        "1",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = v["archive"]["events"].as_u64().unwrap();
    assert!(events > 10_000, "{v}");
    assert_eq!(
        v["decide"]["parity_decisions_matched"], v["archive"]["decisions"],
        "{v}"
    );
    assert!(v["decide"]["events_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["read"]["ringbolt_rows_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["read"]["peer_rows_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["targets"]["decide_events_per_s"], 5_000_000.0);
    let issue_19 = &v["targets"]["issue_19"];
    assert_eq!(issue_19["end_to_end_events_per_s_min"], 3_000_000.0, "{v}");
    assert!(issue_19["met"]["end_to_end"].is_boolean(), "{v}");
    assert!(v["archive"]["files"].as_u64().unwrap() > 5, "{v}");
}
