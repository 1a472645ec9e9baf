//! What every process reports about its latencies: one histogram type with ringbolt's bounds,
//! its percentile summary, and the names of the latency stages reports use.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{HIGHEST_NS, LOWEST_NS, SIGNIFICANT_FIGURES};

/// The one latency histogram type: ns, 1 ns to 60 s, 3 significant figures (larger values
/// saturate when recorded with `saturating_record`).
pub type LatencyHistogram = Histogram<u64>;

/// An empty [`LatencyHistogram`] with ringbolt's bounds.
#[must_use]
pub fn latency_histogram() -> LatencyHistogram {
    // The bounds are constants that hdrhistogram accepts: creation cannot fail.
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_FIGURES)
        .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"))
}

/// Percentiles of a latency histogram in ns.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Percentiles {
    /// Samples recorded.
    pub samples: u64,
    /// Minimum, ns.
    pub min_ns: u64,
    /// Median, ns.
    pub p50_ns: u64,
    /// 90th percentile, ns.
    pub p90_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// 99.99th percentile, ns.
    pub p9999_ns: u64,
    /// Maximum, ns.
    pub max_ns: u64,
    /// Mean, ns.
    pub mean_ns: f64,
}

impl Percentiles {
    /// Summarises a histogram recorded in ns.
    #[must_use]
    pub fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            samples: h.len(),
            min_ns: h.min(),
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            p9999_ns: h.value_at_quantile(0.9999),
            max_ns: h.max(),
            mean_ns: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// Names of the latency stages in reports (`report.json`, process summaries, `/metrics`),
/// defined once. Hops between two processes' stamps are measured by a bus observer (the demo
/// monitor); the per-process stages by the process itself.
pub mod stage {
    /// Emulator frame write → collector socket receive (the wire, from the venue's side).
    pub const EMULATOR_WRITE_TO_RECV: &str = "emulator_write_to_recv";
    /// Collector receive stamp → bus publish stamp of a market record.
    pub const RECV_TO_BUS: &str = "recv_to_bus";
    /// Trigger's bus publish → decision's bus publish.
    pub const BUS_TO_DECISION: &str = "bus_to_decision";
    /// Trigger's bus publish → order bytes handed to the wire (SUBMITTED transition).
    pub const BUS_TO_ORDER_WIRE: &str = "bus_to_order_wire";
    /// SUBMITTED transition → the CLOB emulator's receive stamp.
    pub const SUBMIT_TO_CLOB_RECV: &str = "submit_to_clob_recv";
    /// Venue frame write → order received by the CLOB: tick to order, wire to wire.
    pub const TICK_TO_ORDER: &str = "tick_to_order";
    /// SUBMITTED → the venue's answer.
    pub const ORDER_ROUND_TRIP: &str = "order_round_trip";
    /// Every hop a bus observer reports, in pipeline order.
    pub const HOPS: &[&str] = &[
        EMULATOR_WRITE_TO_RECV,
        RECV_TO_BUS,
        BUS_TO_DECISION,
        BUS_TO_ORDER_WIRE,
        SUBMIT_TO_CLOB_RECV,
        TICK_TO_ORDER,
        ORDER_ROUND_TRIP,
    ];
    /// Collector, per message with records: bytes off the connection → last record published.
    pub const RECV_TO_PUBLISH: &str = "recv_to_publish_ns";
    /// Trade, per decision: the reflex pass (record in → decision published).
    pub const REFLEX_PASS: &str = "reflex_pass_ns";
    /// Trade, per feature vector: the model thread's ensemble score.
    pub const MODEL_SCORE: &str = "model_score_ns";
}
