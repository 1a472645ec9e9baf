//! `GET /metrics` on loopback: the per-stream counters of every source in the Prometheus text
//! exposition format (0.0.4), plus per-source state and discovery gauges.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Result;
use ringbolt_feeds::Counters;
use ringbolt_telemetry::StageMetrics;

use super::SourceShared;

/// Renders the whole exposition: the per-source families, then the stage latencies.
pub fn render(sources: &[Arc<SourceShared>], stages: &StageMetrics) -> String {
    let snapshots: Vec<Counters> = sources
        .iter()
        .map(|s| s.counters.lock().map(|c| c.clone()).unwrap_or_default())
        .collect();
    let feeds: Vec<_> = sources
        .iter()
        .zip(&snapshots)
        .map(|(s, c)| (s.name.as_str(), s.venue, s.streams, c))
        .collect();
    let mut out = ringbolt_feeds::render_prometheus_by_source(&feeds);
    type Gauge = (
        &'static str,
        &'static str,
        &'static str,
        fn(&SourceShared) -> u64,
    );
    const EXTRA: &[Gauge] = &[
        (
            "ringbolt_feed_state",
            "gauge",
            "Last feed state published (1 connected, 2 subscribed, 3 live, 4 stale, 5 gap_detected, 6 resynced, 7 disconnected; 0 none yet)",
            |s| u64::from(s.state.load(Ordering::Relaxed)),
        ),
        (
            "ringbolt_feed_published_records_total",
            "counter",
            "Records published to the bus (market records and feed-status records)",
            |s| s.published.load(Ordering::Relaxed),
        ),
        (
            "ringbolt_feed_subscribed_tokens",
            "gauge",
            "Polymarket outcome tokens subscribed",
            |s| s.subscribed_tokens.load(Ordering::Relaxed),
        ),
        (
            "ringbolt_feed_rollovers_total",
            "counter",
            "Polymarket (un)subscriptions made on a live connection at window rollovers",
            |s| s.rollovers.load(Ordering::Relaxed),
        ),
        (
            "ringbolt_feed_retired_instruments_total",
            "counter",
            "Polymarket bus instruments of windows over retired by discovery (entries reused)",
            |s| s.retired_instruments.load(Ordering::Relaxed),
        ),
        (
            "ringbolt_feed_discovery_errors_total",
            "counter",
            "Polymarket Gamma lookups that failed",
            |s| s.discovery_errors.load(Ordering::Relaxed),
        ),
        (
            "ringbolt_feed_poly_cmd_stalls_total",
            "counter",
            "Polymarket discovery commands held back by a full command channel (retried, never dropped)",
            |s| s.poly_cmd_stalls.load(Ordering::Relaxed),
        ),
        (
            "ringbolt_feed_poly_verdicts_dropped_total",
            "counter",
            "Polymarket top-of-book verdicts dropped by the ring thread's full verdict queue",
            |s| s.poly_verdicts_dropped.load(Ordering::Relaxed),
        ),
        (
            "ringbolt_feed_top_checks_total",
            "counter",
            "Polymarket best_bid_ask events checked against the book",
            |s| s.top_checks.load(Ordering::Relaxed),
        ),
        (
            "ringbolt_feed_connect_failures_total",
            "counter",
            "Connect attempts that failed (DNS, TCP, TLS, WebSocket upgrade, or a timeout)",
            |s| s.connect_failures.load(Ordering::Relaxed),
        ),
        (
            "ringbolt_feed_recv_to_publish_p50_ns",
            "gauge",
            "Median ns from taking a message off the connection to its last record on the bus",
            |s| s.recv_to_publish_p50_ns.load(Ordering::Relaxed),
        ),
        (
            "ringbolt_feed_recv_to_publish_p99_ns",
            "gauge",
            "99th percentile ns from taking a message off the connection to its last record on the bus",
            |s| s.recv_to_publish_p99_ns.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, get) in EXTRA {
        let _ = writeln!(out, "# HELP {name} {help}.");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in sources {
            let _ = writeln!(
                out,
                "{name}{{venue=\"{}\",source=\"{}\"}} {}",
                s.venue,
                s.name,
                get(s)
            );
        }
    }
    out.push_str(&stages.render());
    out
}

/// Serves `GET /metrics` on `addr` from one thread; returns the bound address.
pub fn spawn(
    addr: SocketAddr,
    sources: Vec<Arc<SourceShared>>,
    stages: StageMetrics,
) -> Result<SocketAddr> {
    ringbolt_service::spawn_metrics_endpoint(addr, move || render(&sources, &stages))
}
