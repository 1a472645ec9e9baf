//! `ringbolt trade` and `ringbolt replay`: command-line options for the trade process's loop
//! (crate `ringbolt-trade`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use ringbolt_trade::replay::{GivenConfig, ModelMode, ReplayOptions};

/// Options of `ringbolt trade`.
#[derive(Debug, Args)]
pub struct TradeArgs {
    /// Configuration file (`ringbolt.toml`: `[trade]`, `[decide]` and `[exec]` are read; every
    /// section is checked for unknown keys).
    #[arg(long)]
    config: PathBuf,
    /// Live trading: real sizes on the wire. Also needs `paper = false`, `[exec] enabled`, a key
    /// file and every risk limit; without it every order is a paper order (size zero).
    #[arg(long)]
    live: bool,
    /// Start even when the host is not fully configured by `ringbolt-tune` (the reflex loop
    /// spins: the `tune` start-up check; also `[startup] allow_untuned`).
    #[arg(long)]
    force: bool,
}

/// Runs `ringbolt trade`; prints the JSON summary when it stops.
pub fn run_trade(args: &TradeArgs) -> Result<()> {
    let cfg = ringbolt_config::load(&args.config)?;
    cfg.startup_checks(ringbolt_service::startup::Mode::Spin, args.force)?;
    let summary = ringbolt_trade::live::run(&cfg.trade_sections(), args.live)?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// Where decisions take their model probability from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Model {
    /// The probability each archived live decision used (parity with an asynchronous model).
    Recorded,
    /// Score the ensemble synchronously on every feature vector (a zero-latency model path).
    Sync,
    /// No model: the baseline (or `no_model`) decides.
    None,
}

/// Options of `ringbolt replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Archive root written by `ringbolt archive`, or the `s3://bucket/prefix` it was shipped to
    /// (`ringbolt archive ship`; read through object storage into a local cache first).
    #[arg(long)]
    archive: PathBuf,
    /// A decision config (`ringbolt.toml` format: `[trade]` inputs/evaluator/model, `[decide]`).
    /// Default: the one the archive recorded from the live run's config (a warning names every
    /// `section.key` where a given config differs from it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Only this UTC date (`YYYY-MM-DD`).
    #[arg(long)]
    date: Option<String>,
    /// Compare every replayed decision with the archived live one; exit non-zero on divergence.
    #[arg(long)]
    check_parity: bool,
    /// Segment holding the live decisions (default: `[trade] output`, else the only one).
    #[arg(long)]
    decisions_segment: Option<String>,
    /// Producer epoch of the decisions segment to compare (default: the first).
    #[arg(long)]
    epoch: Option<u64>,
    /// Model probability source.
    #[arg(long, value_enum, default_value_t = Model::Recorded)]
    model: Model,
    /// Do not re-score feature vectors to verify recorded model probabilities.
    #[arg(long)]
    no_verify_model: bool,
    /// Events shown before a divergence.
    #[arg(long, default_value_t = 12)]
    context: usize,
    /// Never draw a progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Runs `ringbolt replay`.
pub fn run_replay(a: &ReplayArgs) -> Result<()> {
    let config = match &a.config {
        Some(path) => Some(GivenConfig {
            path: path.clone(),
            sections: ringbolt_config::load(path)?.trade_sections(),
        }),
        None => None,
    };
    ringbolt_trade::replay::run(&ReplayOptions {
        archive: ringbolt_archive::store::local_root(&a.archive)?,
        config,
        date: a.date.clone(),
        check_parity: a.check_parity,
        decisions_segment: a.decisions_segment.clone(),
        epoch: a.epoch,
        model: match a.model {
            Model::Recorded => ModelMode::Recorded,
            Model::Sync => ModelMode::Sync,
            Model::None => ModelMode::None,
        },
        no_verify_model: a.no_verify_model,
        context: a.context,
        no_progress: a.no_progress,
    })
}
