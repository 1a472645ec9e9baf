//! `.hlog` files decoded by the Python `hdrh` package (the reference reader next to ours).

use std::path::{Path, PathBuf};
use std::process::Command;

use hdrhistogram::Histogram;

/// The Python that has the project's packages: `$RINGBOLT_PYTHON`, else the workspace's
/// `.venv`, else `python3`.
#[must_use]
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("RINGBOLT_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// One interval line as `hdrh` decodes it.
#[derive(Debug, serde::Deserialize)]
pub struct HdrhInterval {
    /// The line's tag.
    pub tag: String,
    /// Values in the interval.
    pub count: u64,
    /// 50th percentile.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Maximum.
    pub max: u64,
}

/// The value `hdrh` reports at `percentile` (0–100) of `h`: rank
/// `max(round(percentile × count / 100), 1)` (Python's `int(x + 0.5)`), the bucket where the
/// cumulative count reaches it, that bucket's highest equivalent value (0 when empty).
#[must_use]
pub fn value_at_percentile(h: &Histogram<u64>, percentile: f64) -> u64 {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((percentile.min(100.0) * h.len() as f64 / 100.0 + 0.5) as u64).max(1);
    let mut seen = 0;
    for v in h.iter_recorded() {
        seen += v.count_at_value();
        if seen >= rank {
            return h.highest_equivalent(v.value_iterated_to());
        }
    }
    0
}

/// Asserts that `hdrh`'s decoding of a line equals `h`, our decoding of the same line: tag,
/// count, max, and p50/p99 by hdrh's rank rule, to the nanosecond.
///
/// # Panics
/// On any difference.
pub fn assert_same(line: &HdrhInterval, tag: Option<&str>, h: &Histogram<u64>) {
    assert_eq!(Some(line.tag.as_str()), tag);
    assert_eq!(line.count, h.len(), "{} count", line.tag);
    assert_eq!(line.max, h.max(), "{} max", line.tag);
    for (pct, theirs) in [(50.0, line.p50), (99.0, line.p99)] {
        assert_eq!(theirs, value_at_percentile(h, pct), "{} p{pct}", line.tag);
    }
}

const SCRIPT: &str = r#"
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
                "max": h.get_max_value()})
print(json.dumps(out))
"#;

/// Every interval line of `path` decoded by `hdrh`; `None` (the caller skips) when the package
/// is not importable, which fails the test in CI (`CI=true`).
///
/// # Panics
/// In CI without `hdrh`, and when the script fails on the file.
#[must_use]
pub fn decode(path: &Path) -> Option<Vec<HdrhInterval>> {
    let py = python();
    let has = Command::new(&py)
        .args(["-c", "import hdrh"])
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "Python package hdrhistogram missing (pip install -r archive/requirements.txt)"
        );
        eprintln!("SKIP python part: hdrh not importable by {}", py.display());
        return None;
    }
    let output = crate::process::run_ok(Command::new(&py).args(["-c", SCRIPT]).arg(path));
    Some(serde_json::from_slice(&output.stdout).unwrap())
}
