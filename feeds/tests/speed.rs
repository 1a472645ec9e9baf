#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]
//! Quick parse-speed probe for development (`cargo test --release -p ringbolt-feeds --test speed
//! -- --ignored --nocapture`, `RINGBOLT_SPEED_VENUE=okx`): the same alternating-rounds method
//! as `ringbolt bench parse`, whose release figures are the ones recorded. `RINGBOLT_SPEED_SIDE=ours`
//! (or `serde`) times one side only, for a profiler.

use std::hint::black_box;
use std::time::Instant;

use ringbolt_feeds::venues::IMPLEMENTED;
use ringbolt_feeds::{FrameDriver, RecordBuf, SyncMode};

fn corpus(venue: &str) -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/fixtures/{venue}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "jsonl")
                && !(venue == "polymarket"
                    && p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("rtds_"))
        })
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read(f)
                .unwrap()
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
#[ignore = "timing probe, run by hand in release"]
fn parse_speed_probe() {
    let only = std::env::var("RINGBOLT_SPEED_VENUE").ok();
    // `RINGBOLT_SPEED_SIDE=ours` (or `serde`) runs one side only, for a profiler.
    let side = std::env::var("RINGBOLT_SPEED_SIDE").ok();
    for &venue in IMPLEMENTED {
        if only.as_deref().is_some_and(|o| o != venue.as_str()) {
            continue;
        }
        let lines = corpus(venue.as_str());
        let mut d = FrameDriver::new(venue, SyncMode::Observe, true).unwrap();
        let mut sink = RecordBuf::with_capacity(8192);
        // Many short rounds: on a loaded machine the fastest ones are the least disturbed.
        let reps = (5_000 / lines.len()).max(1);
        let mut best = [f64::MAX; 2];
        for _ in 0..60 {
            for (which, best) in best.iter_mut().enumerate() {
                if side
                    .as_deref()
                    .is_some_and(|s| s != ["ours", "serde"][which])
                {
                    continue;
                }
                let t = Instant::now();
                for _ in 0..reps {
                    for l in &lines {
                        if which == 0 {
                            sink.clear();
                            let _ = d.frame(l, 1, &mut sink);
                            d.actions.clear();
                            black_box(sink.records());
                        } else {
                            let v: Result<serde_json::Value, _> =
                                serde_json::from_slice(black_box(l));
                            black_box(&v);
                        }
                    }
                }
                let ns = t.elapsed().as_nanos() as f64 / (reps * lines.len()) as f64;
                *best = best.min(ns);
            }
        }
        println!(
            "{:16} ours {:8.1} ns  serde {:8.1} ns  ratio {:.2}",
            venue.as_str(),
            best[0],
            best[1],
            best[1] / best[0]
        );
    }
}
