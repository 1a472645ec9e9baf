#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The `.hlog` dumps decode with our reader and with the Python `hdrhistogram` package, and the
//! hot-path recording allocates nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use ringbolt_telemetry::{Stage, hlog_pair, read_hlog};
use ringbolt_testkit::process::run_ok;
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

#[test]
fn recording_and_rotation_allocate_nothing() {
    let dir = tempdir("alloc");
    let (mut recorder, mut dumper) =
        hlog_pair(&dir.join("a.hlog"), Duration::from_millis(1), "test").unwrap();
    let values = latencies(7, 100_000);
    let start = SystemTime::now();
    let before = thread_allocs();
    let mut rotated = 0;
    for (i, v) in values.iter().enumerate() {
        recorder.record(Stage::ALL[i % Stage::COUNT], *v);
        if i % 10_000 == 0 && recorder.maybe_rotate(start + Duration::from_millis(i as u64)) {
            rotated += 1;
        }
    }
    recorder.record(Stage::Bus, u64::MAX); // saturates, never grows the histogram
    let after = thread_allocs();
    assert_eq!(after - before, 0, "the hot path allocated");
    assert!(rotated >= 1, "no rotation happened");
    dumper.drain().unwrap();
}

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("RINGBOLT_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = root.join(".venv/bin/python");
    if venv.exists() {
        return Some(venv);
    }
    Some(PathBuf::from("python3"))
}

fn python_has(py: &Path, module: &str) -> bool {
    Command::new(py)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn hlog_decodes_with_rust_and_python_readers() {
    let dir = tempdir("py");
    let path = dir.join("stages.hlog");
    let (mut recorder, dumper) = hlog_pair(&path, Duration::from_secs(3600), "test").unwrap();
    let thread = dumper.spawn().unwrap();
    let values = latencies(42, 60_000);
    let mut expected = Vec::new();
    for interval in 0..3 {
        let mut per_stage = vec![Vec::new(); Stage::COUNT];
        for (i, v) in values.iter().enumerate() {
            let stage = (i + interval) % Stage::COUNT;
            let v = v * (interval as u64 + 1);
            recorder.record(Stage::ALL[stage], v);
            per_stage[stage].push(v);
        }
        expected.push(per_stage);
        assert!(recorder.flush(SystemTime::now()));
        // Give the dumper time to hand a spare set back before the next rotation.
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(recorder);
    thread.join().unwrap().unwrap();

    let intervals = read_hlog(&path).unwrap();
    assert_eq!(intervals.len(), 3 * Stage::COUNT);
    for (k, interval) in intervals.iter().enumerate() {
        let stage = Stage::from_tag(interval.tag.as_deref().unwrap()).unwrap();
        let exact = &expected[k / Stage::COUNT][stage as usize];
        assert_eq!(interval.histogram.len(), exact.len() as u64);
        let mut sorted = exact.clone();
        sorted.sort_unstable();
        let p99 = sorted[(sorted.len() * 99).div_ceil(100) - 1];
        let got = interval.histogram.value_at_quantile(0.99);
        assert!(
            got.abs_diff(p99) * 1000 <= p99,
            "p99 {got} vs exact {p99} beyond 3 significant figures"
        );
    }

    let py = python().unwrap();
    if !python_has(&py, "hdrh") {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("Python package hdrhistogram missing (pip install -r archive/requirements.txt)");
        }
        eprintln!(
            "SKIP python part: hdrhistogram (hdrh) not importable by {}",
            py.display()
        );
        return;
    }
    let script = r#"
import sys, json
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 60_000_000_000, 3))
out = []
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    out.append({"tag": h.get_tag(), "count": h.get_total_count(),
                "p50": h.get_value_at_percentile(50), "p99": h.get_value_at_percentile(99),
                "max": h.get_max_value(), "start_ms": h.get_start_time_stamp()})
print(json.dumps(out))
"#;
    let output = run_ok(Command::new(&py).args(["-c", script]).arg(&path));
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(text.trim()).unwrap();
    let decoded: Vec<(String, u64, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["tag"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
                r["p50"].as_u64().unwrap(),
                r["p99"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(decoded.len(), intervals.len());
    for (py_row, ours) in decoded.iter().zip(&intervals) {
        assert_eq!(Some(py_row.0.as_str()), ours.tag.as_deref());
        assert_eq!(py_row.1, ours.histogram.len());
        // Both report the bucket's representative value; allow the 3-significant-figure bucket width.
        for (name, quantile, theirs) in [("p50", 0.5, py_row.2), ("p99", 0.99, py_row.3)] {
            let ours = ours.histogram.value_at_quantile(quantile);
            assert!(
                theirs.abs_diff(ours) * 500 <= ours,
                "{name} {theirs} vs {ours}"
            );
        }
    }
}
