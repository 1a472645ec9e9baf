#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The `.hlog` dumps decode with our reader and with the Python `hdrh` package, files rotate,
//! `/metrics` figures match what was recorded, and the hot-path recording allocates nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringbolt_telemetry::stages::{StageId, trade};
use ringbolt_telemetry::{HlogSettings, Telemetry, latency_histogram, read_hlog};
use ringbolt_testkit::{CountingAlloc, thread_allocs};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn tempdir(name: &str) -> PathBuf {
    ringbolt_testkit::fs::tempdir("ringbolt-telemetry", name)
}

/// Deterministic pseudo-random latencies (xorshift), log-uniform-ish from ~50 ns to ~5 ms.
fn latencies(seed: u64, n: usize) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let shift = x % 17;
            50 + ((x >> 20) % 64) * (1 << shift)
        })
        .collect()
}

fn settings(dir: &Path, interval: Duration) -> HlogSettings {
    HlogSettings {
        dir: Some(dir.to_owned()),
        interval,
        ..HlogSettings::default()
    }
}

fn hlogs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hlog"))
        .collect();
    v.sort();
    v
}

#[test]
fn recording_and_rotation_allocate_nothing() {
    let dir = tempdir("alloc");
    let telemetry =
        Telemetry::start(trade::TABLE, settings(&dir, Duration::from_millis(5))).unwrap();
    let mut recorder = telemetry.recorder();
    let values = latencies(7, 100_000);
    let n = trade::TABLE.stages.len();
    let before = thread_allocs();
    let mut rotated = 0;
    for (i, v) in values.iter().enumerate() {
        recorder.record(StageId((i % n) as u8), *v);
        rotated += usize::from(recorder.maybe_rotate());
    }
    // Wait (without allocating) until the dumper opened at least one new interval.
    while rotated == 0 {
        std::thread::sleep(Duration::from_millis(1));
        rotated += usize::from(recorder.maybe_rotate());
    }
    recorder.record(trade::BUS_TO_DECISION, u64::MAX); // saturates, never grows the histogram
    recorder.record_between(trade::BUS_TO_DECISION, 10, 5); // a clock step: recorded as 0
    let after = thread_allocs();
    assert_eq!(after - before, 0, "the hot path allocated");
    drop(recorder);
    let files = telemetry.finish().unwrap();
    let total: u64 = read_hlog(&files[0])
        .unwrap()
        .iter()
        .map(|i| i.histogram.len())
        .sum();
    assert_eq!(total, values.len() as u64 + 2, "every value is in the dump");
}

/// Two recorders on two threads, three intervals: returns the dump and the exact values per tag.
fn record_three_intervals(dir: &Path) -> (PathBuf, BTreeMap<String, Vec<u64>>) {
    let telemetry =
        Telemetry::start(trade::TABLE, settings(dir, Duration::from_secs(3600))).unwrap();
    let mut exact: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let n = trade::TABLE.stages.len();
    let mut recorders = [telemetry.recorder(), telemetry.recorder()];
    for interval in 0..3u64 {
        for (r, recorder) in recorders.iter_mut().enumerate() {
            for (i, v) in latencies(42 + r as u64, 20_000).iter().enumerate() {
                let stage = StageId(((i + interval as usize) % n) as u8);
                let v = v * (interval + 1);
                recorder.record(stage, v);
                exact
                    .entry(trade::TABLE.tag(stage).to_owned())
                    .or_default()
                    .push(v);
            }
        }
        telemetry.end_interval();
        for recorder in &mut recorders {
            while !recorder.maybe_rotate() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    drop(recorders);
    let files = telemetry.finish().unwrap();
    assert_eq!(files.len(), 1, "no rotation with the default limits");
    (files[0].clone(), exact)
}

#[test]
fn hlog_decodes_with_rust_and_python_readers() {
    let dir = tempdir("py");
    let (path, exact) = record_three_intervals(&dir);
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("trade-") && name.ends_with("Z.hlog"),
        "{name}"
    );

    let intervals = read_hlog(&path).unwrap();
    assert!(intervals.len() >= 3 * trade::TABLE.stages.len());
    let mut merged: BTreeMap<String, hdrhistogram::Histogram<u64>> = BTreeMap::new();
    for i in &intervals {
        merged
            .entry(i.tag.clone().unwrap())
            .or_insert_with(latency_histogram)
            .add(&i.histogram)
            .unwrap();
    }
    assert_eq!(merged.len(), trade::TABLE.stages.len(), "one tag per stage");
    for (tag, values) in &exact {
        let h = &merged[tag];
        assert_eq!(h.len(), values.len() as u64, "{tag}");
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let p99 = sorted[(sorted.len() * 99).div_ceil(100) - 1];
        let got = h.value_at_quantile(0.99);
        assert!(
            got.abs_diff(p99) * 1000 <= p99,
            "{tag}: p99 {got} vs exact {p99} beyond 3 significant figures"
        );
    }
    let Some(rows) = ringbolt_testkit::hdrh::decode(&path) else {
        return;
    };
    assert_eq!(rows.len(), intervals.len());
    // Tag, count, max and hdrh's percentiles (its rank rule) from our decoded counts, exactly.
    for (py_row, ours) in rows.iter().zip(&intervals) {
        ringbolt_testkit::hdrh::assert_same(py_row, ours.tag.as_deref(), &ours.histogram);
    }
}

#[test]
fn files_rotate_by_size_and_every_file_stands_alone() {
    let dir = tempdir("rotate");
    let telemetry = Telemetry::start(
        trade::TABLE,
        HlogSettings {
            rotate_bytes: 1,
            ..settings(&dir, Duration::from_secs(3600))
        },
    )
    .unwrap();
    let mut recorder = telemetry.recorder();
    for k in 1..=4u64 {
        for v in 1..=1000u64 {
            recorder.record(trade::ORDER_RTT, v * k);
        }
        telemetry.end_interval();
        while !recorder.maybe_rotate() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    drop(recorder);
    let files = telemetry.finish().unwrap();
    assert_eq!(hlogs(&dir), {
        let mut f = files.clone();
        f.sort();
        f
    });
    assert!(
        files.len() >= 4,
        "a new file after every interval: {files:?}"
    );
    let mut total = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.contains("#[BaseTime:"),
            "{} has its own header",
            f.display()
        );
        total += read_hlog(f)
            .unwrap()
            .iter()
            .map(|i| i.histogram.len())
            .sum::<u64>();
    }
    assert_eq!(total, 4000, "no interval lost across rotations");
}

#[test]
fn metrics_show_the_last_interval_and_cumulative_counts() {
    let telemetry = Telemetry::start(trade::TABLE, HlogSettings::default()).unwrap();
    let metrics = telemetry.metrics();
    let mut recorder = telemetry.recorder();
    for v in 1..=100u64 {
        recorder.record(trade::BUS_TO_DECISION, v * 1000);
    }
    telemetry.end_interval();
    while !recorder.maybe_rotate() {
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..10 {
        recorder.record(trade::BUS_TO_DECISION, 7_000_000);
    }
    drop(recorder);
    telemetry.finish().unwrap();
    let text = metrics.render();
    let labels = "process=\"trade\",stage=\"bus_to_decision\"";
    // The last interval holds the ten 7 ms values only; count and sum cover both.
    for q in ["0.5", "0.9", "0.99", "0.999"] {
        let line = format!("ringbolt_stage_latency_ns{{{labels},quantile=\"{q}\"}} ");
        let value: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in\n{text}"))
            .parse()
            .unwrap();
        assert!(value.abs_diff(7_000_000) <= 7_000, "{q}: {value}");
    }
    assert!(text.contains(&format!(
        "ringbolt_stage_latency_ns_count{{{labels}}} 110\n"
    )));
    let sum: u64 = (1..=100u64).map(|v| v * 1000).sum::<u64>() + 70_000_000;
    assert!(text.contains(&format!(
        "ringbolt_stage_latency_ns_sum{{{labels}}} {sum}\n"
    )));
    assert!(text.contains("# TYPE ringbolt_stage_latency_ns summary\n"));
    let idle = "process=\"trade\",stage=\"cancel_rtt_lost\"";
    assert!(text.contains(&format!(
        "ringbolt_stage_latency_ns{{{idle},quantile=\"0.5\"}} NaN\n"
    )));
    assert!(text.contains(&format!("ringbolt_stage_latency_ns_count{{{idle}}} 0\n")));
}
