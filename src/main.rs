//! `ringbolt`: the appliance binary. Each subcommand is thin dispatch into a workspace crate; the
//! processes themselves live in library crates (`ringbolt-collector`, `ringbolt-trade`,
//! `ringbolt-archive`). Benchmarks, emulators and the demo supervisor are the sibling binary
//! `ringbolt-lab`'s: `ringbolt demo|bench|emulate|soak …` runs it (see [`lab`]).

mod archive_cmd;
mod bus_cmd;
mod dash_cmd;
mod exec_cmd;
mod features_cmd;
mod feeds_cmd;
mod lab;
mod trade_cmd;

use std::ffi::OsString;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// ringbolt — a low-latency trading appliance for Polymarket's BTC Up/Down 5-minute markets.
#[derive(Debug, Parser)]
#[command(name = "ringbolt", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    logging: ringbolt_service::LogArgs,
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
    /// The offline twin of `trade`: feed an archive through the same decision loop, optionally
    /// checking 100% decision parity with the archived live decisions (`--check-parity`).
    Replay(trade_cmd::ReplayArgs),
    /// The operator's live dashboard: reads the bus (read-only) and the processes' `/metrics`,
    /// serves one page on loopback (`[dash]` section; default 127.0.0.1:8052).
    Dash(dash_cmd::DashArgs),
    /// Run a benchmark and print its results (`--json`); runs `ringbolt-lab bench`.
    #[command(disable_help_flag = true)]
    Bench {
        /// Arguments of `ringbolt-lab bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Serve emulated venues and the CLOB over TLS on loopback; runs `ringbolt-lab emulate`.
    #[command(disable_help_flag = true)]
    Emulate {
        /// Arguments of `ringbolt-lab emulate`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// The whole appliance offline: emulators, collector, decision + paper orders, archiver;
    /// runs `ringbolt-lab demo`.
    #[command(disable_help_flag = true)]
    Demo {
        /// Arguments of `ringbolt-lab demo`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// The demo's processes behind the fault proxy with faults and kill -9 for N minutes;
    /// writes soak.json; runs `ringbolt-lab soak`.
    #[command(disable_help_flag = true)]
    Soak {
        /// Arguments of `ringbolt-lab soak`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench { args } => return lab::forward("bench", &args, &cli.logging.log),
        Command::Emulate { args } => return lab::forward("emulate", &args, &cli.logging.log),
        Command::Demo { args } => return lab::forward("demo", &args, &cli.logging.log),
        Command::Soak { args } => return lab::forward("soak", &args, &cli.logging.log),
        _ => {}
    }
    cli.logging.init()?;
    match cli.command {
        Command::Bus { command } => bus_cmd::run(command),
        Command::Exec { command } => exec_cmd::run(command),
        Command::Feeds(args) => feeds_cmd::run(args),
        Command::Archive(args) => archive_cmd::run_archive(&args),
        Command::Report { command } => archive_cmd::run_report(command),
        Command::Trade(args) => trade_cmd::run_trade(&args),
        Command::Replay(args) => trade_cmd::run_replay(&args),
        Command::Features { command } => features_cmd::run(command),
        Command::Dash(args) => dash_cmd::run(&args),
        Command::Bench { .. }
        | Command::Emulate { .. }
        | Command::Demo { .. }
        | Command::Soak { .. } => Ok(()),
    }
}
