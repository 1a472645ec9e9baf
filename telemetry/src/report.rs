//! `ringbolt report latency`: every process's `.hlog` dumps merged into one row per
//! (process, stage), in pipeline order.

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{TelemetryError, latency_histogram, read_hlog, stages};

/// One stage of one process over every interval of every dump.
#[derive(Debug, Serialize)]
pub struct StageRow {
    /// Process (the dump file's name up to its first `-`).
    pub process: String,
    /// Stage tag.
    pub stage: String,
    /// Values recorded.
    pub count: u64,
    /// Median, ns (0 without values).
    pub p50_ns: u64,
    /// 90th percentile, ns.
    pub p90_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// Maximum, ns.
    pub max_ns: u64,
    /// Intervals (lines) merged.
    pub intervals: usize,
    /// The merged histogram.
    #[serde(skip)]
    pub histogram: Histogram<u64>,
}

impl StageRow {
    fn new(process: &str, stage: &str) -> StageRow {
        StageRow {
            process: process.to_owned(),
            stage: stage.to_owned(),
            count: 0,
            p50_ns: 0,
            p90_ns: 0,
            p99_ns: 0,
            p999_ns: 0,
            max_ns: 0,
            intervals: 0,
            histogram: latency_histogram(),
        }
    }

    fn finish(&mut self) {
        let h = &self.histogram;
        self.count = h.len();
        if !h.is_empty() {
            self.p50_ns = h.value_at_quantile(0.5);
            self.p90_ns = h.value_at_quantile(0.9);
            self.p99_ns = h.value_at_quantile(0.99);
            self.p999_ns = h.value_at_quantile(0.999);
            self.max_ns = h.max();
        }
    }

    /// Position in pipeline order: the process's place in [`stages::ALL`], then the stage's
    /// in its table; unknown ones after, by name.
    fn order(&self) -> (usize, usize, String, String) {
        let table = stages::ALL.iter().position(|t| t.process == self.process);
        let stage = table.and_then(|t| stages::ALL[t].id(&self.stage));
        (
            table.unwrap_or(usize::MAX),
            stage.map_or(usize::MAX, stages::StageId::index),
            self.process.clone(),
            self.stage.clone(),
        )
    }
}

/// The process a dump belongs to: its file name up to the first `-` (`trade-<start>.hlog`).
#[must_use]
pub fn process_of(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
    stem.split('-').next().unwrap_or(stem).to_owned()
}

/// Every `.hlog` file under `dir` (recursively), sorted.
///
/// # Errors
/// [`TelemetryError::Read`] for an unreadable directory.
pub fn hlog_files(dir: &Path) -> Result<Vec<PathBuf>, TelemetryError> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| TelemetryError::Read {
            path: d.clone(),
            reason: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "hlog") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Merges `files` into one row per (process, stage), in pipeline order. Stages that recorded
/// nothing keep a row with count 0, so a report shows every stage a process has.
///
/// # Errors
/// [`TelemetryError::Read`] for an unreadable or undecodable file.
pub fn merge(files: &[PathBuf]) -> Result<Vec<StageRow>, TelemetryError> {
    let mut rows: Vec<StageRow> = Vec::new();
    for file in files {
        let process = process_of(file);
        for interval in read_hlog(file)? {
            let stage = interval.tag.as_deref().unwrap_or("untagged");
            let i = match rows
                .iter()
                .position(|r| r.process == process && r.stage == stage)
            {
                Some(i) => i,
                None => {
                    rows.push(StageRow::new(&process, stage));
                    rows.len() - 1
                }
            };
            let row = &mut rows[i];
            row.intervals += 1;
            row.histogram
                .add(&interval.histogram)
                .map_err(|e| TelemetryError::Read {
                    path: file.clone(),
                    reason: format!("merging {stage}: {e:?}"),
                })?;
        }
    }
    for row in &mut rows {
        row.finish();
    }
    rows.sort_by_key(StageRow::order);
    Ok(rows)
}

/// The rows as a fixed-width text table.
#[must_use]
pub fn table(rows: &[StageRow]) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<26} {:<10} {:>10} {:>10} {:>10} {:>11} {:>11} {:>13}\n",
        "stage", "process", "count", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<26} {:<10} {:>10} {:>10} {:>10} {:>11} {:>11} {:>13}",
            r.stage, r.process, r.count, r.p50_ns, r.p90_ns, r.p99_ns, r.p999_ns, r.max_ns
        );
    }
    out
}
