//! The wire-log contract: every Polymarket market-data frame written is stamped (CLOCK_REALTIME
//! ns just before the write) per `(asset_id, timestamp)`, and live events carry timestamps unique
//! per asset, so a client can look up when the frame it acted on left the emulator.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{control, market_channel, next_text};
use ringbolt_testkit::json::current_window;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_frames_are_stamped_per_asset_and_timestamp() {
    let emu = common::start("wirelog", 300, 11).await;
    let (_, w) = control(&emu.info, "GET", "/windows").await;
    let w: Value = serde_json::from_str(&w).unwrap();
    let cur = current_window(&w);
    let (up, down) = (
        cur["up_token"].as_str().unwrap().to_string(),
        cur["down_token"].as_str().unwrap().to_string(),
    );
    let mut ws = market_channel(&emu.info, &[&up, &down]).await;
    // Collect what the client received: (asset, timestamp) → event types.
    let mut got: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
    let end = Instant::now() + Duration::from_millis(2500);
    let t_first = common::now_ns();
    while Instant::now() < end {
        let t = next_text(&mut ws, 5).await;
        for (a, ts, kind) in ringbolt_sim::wirelog::poly_frame_keys(&t) {
            got.entry((a, ts)).or_default().push(kind);
        }
    }
    assert!(got.len() > 10, "too few events: {}", got.len());
    // Live events (everything after the subscribe snapshot) have unique (asset, timestamp).
    for ((a, ts), kinds) in &got {
        let live: Vec<&String> = kinds.iter().filter(|k| *k != "book").collect();
        assert!(live.len() <= 1, "{a} @ {ts}: {kinds:?}");
    }
    let (status, log) = control(&emu.info, "GET", "/wirelog").await;
    assert_eq!(status, 200);
    let log: Value = serde_json::from_str(&log).unwrap();
    assert_eq!(log["clock"], "CLOCK_REALTIME");
    let stamped: BTreeSet<(String, i64)> = log["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let ns = f["write_ns"].as_i64().unwrap();
            assert!(ns >= t_first - 5_000_000_000, "{f}");
            (
                f["asset_id"].as_str().unwrap().to_string(),
                f["timestamp_ms"].as_i64().unwrap(),
            )
        })
        .collect();
    for key in got.keys() {
        assert!(stamped.contains(key), "{key:?} received but not stamped");
    }
    // since_ns filters.
    let (_, later) = control(&emu.info, "GET", &format!("/wirelog?since_ns={}", i64::MAX)).await;
    let later: Value = serde_json::from_str(&later).unwrap();
    assert_eq!(later["frames"].as_array().unwrap().len(), 0);
    emu.shutdown().await;
}
