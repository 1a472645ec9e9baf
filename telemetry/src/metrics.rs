//! The per-stage figures on `/metrics`: one Prometheus summary family,
//! `ringbolt_stage_latency_ns{process,stage,quantile}` with `_sum` and `_count`.
//!
//! Quantiles (0.5, 0.9, 0.99, 0.999) are those of the last completed interval (`NaN` when the
//! stage recorded nothing in it, as Prometheus client libraries do for an empty summary);
//! `_count` and `_sum` (exact, ns) are cumulative since the process started.

use std::fmt::Write as _;
use std::sync::Arc;

use hdrhistogram::Histogram;

use crate::dumper::Shared;

/// The summary family's name.
pub const FAMILY: &str = "ringbolt_stage_latency_ns";
/// The quantiles exported, with their label text.
pub const QUANTILES: [(f64, &str); 4] =
    [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];

/// One stage's exported figures.
#[derive(Clone, Debug)]
pub struct StageSnapshot {
    /// Stage tag.
    pub stage: &'static str,
    /// Quantiles of the last completed interval, ns (`None`: nothing recorded in it).
    pub quantiles_ns: Option<[u64; 4]>,
    /// Values recorded since start.
    pub count: u64,
    /// Sum of the values recorded since start, ns.
    pub sum_ns: u64,
}

impl StageSnapshot {
    pub(crate) fn empty(stage: &'static str) -> StageSnapshot {
        StageSnapshot {
            stage,
            quantiles_ns: None,
            count: 0,
            sum_ns: 0,
        }
    }

    pub(crate) fn update(&mut self, interval: &Histogram<u64>, interval_sum_ns: u64) {
        self.count += interval.len();
        self.sum_ns = self.sum_ns.saturating_add(interval_sum_ns);
        self.quantiles_ns =
            (!interval.is_empty()).then(|| QUANTILES.map(|(q, _)| interval.value_at_quantile(q)));
    }
}

/// A process's stage figures, shared with its `/metrics` endpoint.
#[derive(Clone, Debug)]
pub struct StageMetrics {
    shared: Arc<Shared>,
}

impl StageMetrics {
    pub(crate) fn new(shared: Arc<Shared>) -> StageMetrics {
        StageMetrics { shared }
    }

    /// The process name (the `process` label).
    #[must_use]
    pub fn process(&self) -> &'static str {
        self.shared.table.process
    }

    /// A copy of every stage's figures.
    #[must_use]
    pub fn snapshot(&self) -> Vec<StageSnapshot> {
        self.shared
            .metrics
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// The family in the Prometheus text exposition format (0.0.4), with HELP and TYPE lines.
    #[must_use]
    pub fn render(&self) -> String {
        render(self.process(), &self.snapshot())
    }
}

/// Renders `stages` of `process` as the `ringbolt_stage_latency_ns` summary family.
#[must_use]
pub fn render(process: &str, stages: &[StageSnapshot]) -> String {
    let mut out = String::with_capacity(256 + stages.len() * 400);
    let _ = writeln!(
        out,
        "# HELP {FAMILY} Latency of a pipeline stage in ns: quantiles over the last completed dump interval, count and sum since the process started."
    );
    let _ = writeln!(out, "# TYPE {FAMILY} summary");
    for s in stages {
        let labels = format!("process=\"{process}\",stage=\"{}\"", s.stage);
        for (k, (_, q)) in QUANTILES.iter().enumerate() {
            match s.quantiles_ns {
                Some(v) => {
                    let _ = writeln!(out, "{FAMILY}{{{labels},quantile=\"{q}\"}} {}", v[k]);
                }
                None => {
                    let _ = writeln!(out, "{FAMILY}{{{labels},quantile=\"{q}\"}} NaN");
                }
            }
        }
        let _ = writeln!(out, "{FAMILY}_sum{{{labels}}} {}", s.sum_ns);
        let _ = writeln!(out, "{FAMILY}_count{{{labels}}} {}", s.count);
    }
    out
}
