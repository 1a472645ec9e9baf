//! `ringbolt bench <area>` (`ringbolt-lab bench <area>`): benchmarks that print JSON whose keys name their units, with the
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
pub use ringbolt_net::affinity::pin;
pub use ringbolt_telemetry::Percentiles;

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
