//! `ringbolt-lab`: the workspace's second binary, for everything that is not the appliance —
//! benchmarks beside their ecosystem peers (`bench`), the venue and CLOB emulators (`emulate`),
//! and the demo supervisor (`demo`), which runs the appliance's own processes (the sibling
//! `ringbolt` binary) against the emulators. The appliance forwards `ringbolt demo|bench|emulate`
//! here, so both spellings work.

mod bench;
mod demo;
mod emulate_cmd;
mod machine;
mod soak;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// ringbolt-lab — benchmarks, venue emulators and the offline demo of the ringbolt appliance.
#[derive(Debug, Parser)]
#[command(name = "ringbolt-lab", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    logging: ringbolt_service::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    /// The demo's processes behind the fault proxy for N minutes, with faults on every venue
    /// and the CLOB and kill -9 of each process; writes `soak.json` (scripts/check-soak.py).
    Soak(soak::SoakArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    cli.logging.init()?;
    match cli.command {
        Command::Bench { area } => bench::run(area),
        Command::Emulate(args) => emulate_cmd::run(args),
        Command::Demo(args) => demo::run(&args),
        Command::Soak(args) => soak::run(&args),
    }
}
