//! `ringbolt dash`: the operator dashboard (crate `ringbolt-dash`), configured by `[dash]` of
//! `ringbolt.toml` (its `[decide]` section gives the composite reference's parameters).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Args;

/// Options of `ringbolt dash`.
#[derive(Debug, Args)]
pub struct DashArgs {
    /// Configuration file (`ringbolt.toml`: `[dash]` and `[decide]` are read; every section is
    /// checked for unknown keys).
    #[arg(long)]
    config: PathBuf,
    /// Override `dash.bind` (a non-loopback address still needs `dash.allow_remote` and
    /// `dash.token` in the file).
    #[arg(long)]
    bind: Option<SocketAddr>,
}

/// Runs `ringbolt dash` until SIGINT or SIGTERM.
pub fn run(args: &DashArgs) -> Result<()> {
    let cfg = ringbolt_config::load(&args.config)?;
    let mut dash = cfg.dash.clone();
    if let Some(bind) = args.bind {
        dash.bind = bind;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing SIGINT/SIGTERM")?;
    }
    ringbolt_dash::run(&dash, &cfg.decide, &stop)
}
