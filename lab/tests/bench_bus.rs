//! `ringbolt-lab bench bus` (also reached as `ringbolt bench bus`): the cross-process hop
//! latency report, ringbolt's ring beside iceoryx2.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

use std::process::Command;

use ringbolt_testkit::process::run_ok;

fn ringbolt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringbolt-lab"))
}

#[test]
fn bench_bus_prints_unit_named_keys_with_the_peer_beside_ours() {
    let output = run_ok(ringbolt().args([
        "bench",
        "bus",
        "--json",
        "--iterations",
        "3000",
        "--warmup",
        "300",
        "--no-pin",
    ]));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    for transport in ["ringbolt_hop", "iceoryx2_hop"] {
        let hop = &report[transport];
        assert_eq!(hop["samples"], 3000, "{transport}: {hop}");
        let p50 = hop["p50_ns"].as_u64().expect("p50_ns");
        let p99 = hop["p99_ns"].as_u64().expect("p99_ns");
        let p999 = hop["p999_ns"].as_u64().expect("p999_ns");
        assert!(0 < p50 && p50 <= p99 && p99 <= p999, "{transport}: {hop}");
    }
    assert!(
        report["ratio_iceoryx2_over_ringbolt"]["p50"]
            .as_f64()
            .expect("ratio")
            > 0.0
    );
    assert_eq!(report["record_bytes"], 128);
    assert!(report["targets"]["met"].is_boolean());
}
