//! `ringbolt bench <area>`: benchmarks that print JSON whose keys name their units, with the
//! ecosystem peer measured in the same run beside ringbolt's figures.

mod archive;
mod bus;
mod decide;
mod exec;
mod exec_rtt;
mod net;
mod parse;
mod replay;

use anyhow::Result;
use clap::Subcommand;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Benchmark areas.
#[derive(Debug, Subcommand)]
pub enum BenchArea {
    /// Bus → durable Parquet: records/s on one core, bytes/record per table, publish latency with
    /// and without the archiver; JSON lines + zstd and arrow-rs default Parquet as peers.
    Archive(archive::ArchiveBenchArgs),
    /// Cross-process bus hop latency (ping-pong), ringbolt's shm ring vs iceoryx2 pub/sub.
    Bus(bus::BusBenchArgs),
    /// Decision core: reflex pass, feature update, ensemble via ort and native (≥ 1M events).
    Decide(decide::DecideBenchArgs),
    /// Order path: sign time (pool refill rate), hot-path request build, L2 HMAC; Python
    /// reference client beside.
    Exec(exec::ExecBenchArgs),
    /// Feed parsing: ringbolt's venue adapters vs serde_json::Value, and Polymarket book apply.
    Parse(parse::ParseBenchArgs),
    /// The offline twin: archive → bus records → decide path with parity, events/s on one core;
    /// raw arrow-rs Parquet read as the read-side peer.
    Replay(replay::ReplayBenchArgs),
    /// Loopback TCP / WebSocket / HTTP/2 latency and throughput: ringbolt (spin, block,
    /// fallback) vs tokio, tokio-tungstenite and hyper, in one run against the same servers.
    Net(net::NetBenchArgs),
    /// Internal: the echo side of `bench bus`, run as a child process.
    #[command(hide = true)]
    BusEcho(bus::EchoArgs),
}

/// Runs a benchmark.
pub fn run(area: BenchArea) -> Result<()> {
    match area {
        BenchArea::Archive(args) => archive::run(&args),
        BenchArea::Bus(args) => bus::run(&args),
        BenchArea::Replay(args) => replay::run(&args),
        BenchArea::BusEcho(args) => bus::echo(&args),
        BenchArea::Decide(args) => decide::run(&args),
        BenchArea::Exec(args) => exec::run(&args),
        BenchArea::Parse(args) => parse::run(&args),
        BenchArea::Net(args) => net::run(&args),
    }
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

/// Pins the calling thread to `core` when asked and possible; returns whether it did.
pub fn pin(core: Option<usize>) -> bool {
    let Some(core) = core else { return false };
    core_affinity::get_core_ids()
        .and_then(|ids| ids.into_iter().find(|id| id.id == core))
        .is_some_and(core_affinity::set_for_current)
}
