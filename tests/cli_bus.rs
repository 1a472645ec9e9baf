//! End-to-end tests of the `ringbolt` binary's bus commands.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

use std::process::Command;

use ringbolt_bus::{Consumer, Publisher, Segment, SegmentConfig, Start, Venue};

fn ringbolt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringbolt"))
}

#[test]
fn bus_status_reports_epoch_heads_and_consumer_lag() {
    let name = format!("rb-test-{}-status", std::process::id());
    let config = SegmentConfig {
        rings: 2,
        capacity: 64,
        instrument_capacity: 8,
    };
    let publisher = Publisher::create(&name, config).expect("create");
    publisher
        .register_instrument(Venue::Kraken, "XBT/USD")
        .expect("instrument");
    let retired = publisher
        .register_instrument(Venue::Polymarket, "btc-updown-5m-1789000200/up/1")
        .expect("instrument");
    assert!(publisher.retire_instrument(retired));
    let segment = Segment::open(&name).expect("open");
    let _consumer = Consumer::new(&segment, 1, Start::LiveEdge).expect("consumer");
    let mut writer = publisher.writer(1).expect("writer");
    for _ in 0..10 {
        writer.publish(&ringbolt_bus::Record::zeroed());
    }
    let output = ringbolt()
        .args(["bus", "status", "--segment", &name])
        .output()
        .expect("run");
    let _ = Segment::unlink(&name);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(status["epoch"], segment.epoch());
    assert_eq!(status["heads"], serde_json::json!([0, 10]));
    assert_eq!(status["consumers"][0]["ring"], 1);
    assert_eq!(status["consumers"][0]["lag_records"], 10);
    assert_eq!(status["producer_pid"], std::process::id());
    let instruments = &status["instruments"];
    assert_eq!(
        (&instruments["capacity"], &instruments["used"]),
        (&serde_json::json!(8), &serde_json::json!(2))
    );
    assert_eq!(
        (&instruments["live"], &instruments["retired"]),
        (&serde_json::json!(1), &serde_json::json!(1))
    );
}

#[test]
fn bus_status_on_a_missing_segment_is_a_clear_error() {
    let output = ringbolt()
        .args(["bus", "status", "--segment", "rb-test-no-such-segment"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not exist"), "stderr: {stderr}");
}
