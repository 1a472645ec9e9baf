//! `ringbolt`: the single binary. Each subcommand dispatches into a workspace crate.

mod bench;
mod bus_cmd;
mod feeds_cmd;
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
    /// Venue feeds: `feeds parse` normalizes raw venue messages offline; `feeds --config`
    /// will run the collector.
    Feeds(feeds_cmd::FeedsArgs),
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
        Command::Feeds(args) => feeds_cmd::run(args),
        Command::Bench { area } => bench::run(area),
    }
}
