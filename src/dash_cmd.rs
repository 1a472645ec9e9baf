//! `ringbolt dash`: the operator dashboard (crate `ringbolt-dash`), configured by `[dash]` of
//! `ringbolt.toml` (its `[decide]` section gives the composite reference's parameters).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
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

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Runs `ringbolt dash` until SIGINT or SIGTERM.
pub fn run(args: &DashArgs) -> Result<()> {
    let cfg = ringbolt_config::load(&args.config)?;
    let mut dash = cfg.dash.clone();
    if let Some(bind) = args.bind {
        dash.bind = bind;
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let handler = on_signal as extern "C" fn(libc::c_int);
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, handler as libc::sighandler_t) };
    }
    ringbolt_dash::run(&dash, &cfg.decide, &STOP)
}
