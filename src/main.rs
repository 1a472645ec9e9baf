//! `ringbolt`: the single binary. Each subcommand dispatches into a workspace crate.

mod archive_cmd;
mod bench;
mod bus_cmd;
mod machine;

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
    /// Run the Parquet archiver: consume the configured bus segments into a Hive-partitioned,
    /// crash-safe archive (`[archive]` section of the TOML config).
    Archive(archive_cmd::ArchiveArgs),
    /// Offline analysis: `report archive` (rows, bytes, coverage, gaps) and `report latency`
    /// (percentiles of `.hlog` dumps).
    Report {
        #[command(subcommand)]
        command: archive_cmd::ReportCommand,
    },
    /// Run a benchmark and print its results (`--json` for machine-readable output).
    Bench {
        #[command(subcommand)]
        area: bench::BenchArea,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Bus { command } => bus_cmd::run(command),
        Command::Archive(args) => archive_cmd::run_archive(&args),
        Command::Report { command } => archive_cmd::run_report(command),
        Command::Bench { area } => bench::run(area),
    }
}
