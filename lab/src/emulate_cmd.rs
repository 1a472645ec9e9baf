//! `ringbolt emulate`: serve the emulated venues (crate `ringbolt-sim`) on loopback.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use ringbolt_sim::{Emulator, EmulatorConfig};

/// Arguments of `ringbolt emulate`.
#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// TOML configuration (venues, ports, seed, window length, rates, cert dir); defaults serve
    /// every emulated venue (the `ringbolt-sim` registry) on ephemeral loopback ports.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Stop by itself after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
    /// Override the market seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the Polymarket window length in seconds (demo windows are labelled emulated).
    #[arg(long)]
    window_len_s: Option<i64>,
    /// Override the directory the CA certificate (`ca.pem`) is written to.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
}

/// Run the emulator; prints the bound addresses as one JSON line on stdout once listening.
pub fn run(args: EmulateArgs) -> Result<()> {
    let mut cfg = match &args.config {
        Some(p) => EmulatorConfig::load(p)?,
        None => EmulatorConfig::default(),
    };
    if let Some(s) = args.seed {
        cfg.market.seed = s;
    }
    if let Some(w) = args.window_len_s {
        cfg.market.window_len_s = w;
    }
    if let Some(d) = args.cert_dir {
        cfg.cert_dir = d;
    }
    cfg.validate()?;
    // The emulated venues stand in for remote hosts: with `$RINGBOLT_RT_PRIORITY` P (the demo's
    // `--rt-priority`) the CLOB emulator's thread takes SCHED_FIFO at P and the venue workers
    // one step below, so that neither their scheduling on a small host nor the venues' bursts
    // count as the appliance's order latency (ADR 0030).
    let rt_priority =
        ringbolt_net::affinity::rt_priority_or_env(None).map_err(anyhow::Error::msg)?;
    let worker_priority = rt_priority.map(crate::demo::rt_step_below);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(move || {
            ringbolt_net::affinity::enter_realtime("emulator", worker_priority);
        })
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        let emu = Emulator::start_with(cfg, move || {
            ringbolt_net::affinity::enter_realtime("clob emulator", rt_priority);
        })
        .await?;
        let line = serde_json::to_string(&emu.info)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        drop(out);
        // Stop on Ctrl-C, SIGTERM (supervisors, systemd) or after `--seconds`.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let limit = async {
            match args.seconds {
                Some(n) => tokio::time::sleep(Duration::from_secs(n)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = limit => {}
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
        emu.shutdown().await;
        Ok(())
    })
}
