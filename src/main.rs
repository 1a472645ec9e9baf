//! `ringbolt`: the single binary. Each subcommand dispatches into a workspace crate.

mod archive_cmd;
mod bench;
mod bus_cmd;
mod collector;
mod demo;
mod emulate_cmd;
mod exec_cmd;
mod features_cmd;
mod feeds_cmd;
mod machine;
mod replay_cmd;
mod service;
mod trade_cmd;
mod trade_exec;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// ringbolt — a low-latency trading appliance for Polymarket's BTC Up/Down 5-minute markets.
#[derive(Debug, Parser)]
#[command(name = "ringbolt", version, about, propagate_version = true)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `ringbolt_bus=debug`.
    #[arg(long, global = true, default_value = "info", env = "RINGBOLT_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect the shared-memory bus: its pinned layout and live segments.
    Bus {
        #[command(subcommand)]
        command: bus_cmd::BusCommand,
    },
    /// The decision process: read the bus, decide, publish decisions (paper mode).
    Trade(trade_cmd::TradeArgs),
    /// The decision core's feature catalogue: docs, synthetic market, training export.
    Features {
        #[command(subcommand)]
        command: features_cmd::FeaturesCommand,
    },
    /// Polymarket CLOB V2 order path: sign orders, build L1/L2 headers (prints; never sends).
    Exec {
        #[command(subcommand)]
        command: exec_cmd::ExecCommand,
    },
    /// Venue feeds: `feeds --config ringbolt.toml` runs the collector (venues → bus);
    /// `feeds parse` normalizes raw venue messages offline.
    Feeds(feeds_cmd::FeedsArgs),
    /// Run the Parquet archiver: consume the configured bus segments into a Hive-partitioned,
    /// crash-safe archive (`[archive]` section of the TOML config).
    Archive(archive_cmd::ArchiveArgs),
    /// Offline analysis: `report archive` (rows, bytes, coverage, gaps) and `report latency`
    /// (percentiles of `.hlog` dumps).
    Report {
        #[command(subcommand)]
        command: archive_cmd::ReportCommand,
    },
    /// The offline twin of `trade`: feed an archive through the same decision code, optionally
    /// checking 100% decision parity with the archived live decisions (`--check-parity`).
    Replay(replay_cmd::ReplayArgs),
    /// Run a benchmark and print its results (`--json` for machine-readable output).
    Bench {
        #[command(subcommand)]
        area: bench::BenchArea,
    },
    /// Serve emulated venues (Polymarket CLOB + Gamma, Chainlink RTDS, Binance spot, Coinbase)
    /// over TLS WebSocket/REST on loopback, driven by a synthetic market or a capture replay.
    Emulate(emulate_cmd::EmulateArgs),
    /// The whole appliance offline: emulators, collector, decision + paper orders, archiver.
    Demo(demo::DemoArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Bus { command } => bus_cmd::run(command),
        Command::Exec { command } => exec_cmd::run(command),
        Command::Feeds(args) => feeds_cmd::run(args),
        Command::Archive(args) => archive_cmd::run_archive(&args),
        Command::Report { command } => archive_cmd::run_report(command),
        Command::Bench { area } => bench::run(area),
        Command::Emulate(args) => emulate_cmd::run(args),
        Command::Demo(args) => demo::run(&args),
        Command::Trade(args) => trade_cmd::run(&args),
        Command::Replay(args) => replay_cmd::run(&args),
        Command::Features { command } => features_cmd::run(command),
    }
}
