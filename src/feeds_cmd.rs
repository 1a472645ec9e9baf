//! `ringbolt feeds`: the collector (`feeds --config ringbolt.toml`, crate `ringbolt-collector`) and
//! offline parsing of raw venue messages (`feeds parse`).

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use ringbolt_bus::Venue;
use ringbolt_feeds::render::record_json;
use ringbolt_feeds::venues::IMPLEMENTED;
use ringbolt_feeds::{FrameDriver, SyncMode};
use ringbolt_service::startup::Mode;
use ringbolt_telemetry::now_ns;

/// Options of `ringbolt feeds`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FeedsArgs {
    #[command(subcommand)]
    command: Option<FeedsCommand>,
    /// Run the collector with this configuration (the `[feeds]` section).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Start even when spin mode (`busy_poll`) meets a host that `ringbolt-tune check` does not
    /// call fully configured (the `tune` start-up check; also `[startup] allow_untuned`).
    #[arg(long)]
    force: bool,
}

/// `ringbolt feeds` subcommands.
#[derive(Debug, Subcommand)]
pub enum FeedsCommand {
    /// Parse raw venue messages (one per line) and print one JSON object per normalized record,
    /// then a summary line.
    Parse(ParseArgs),
    /// List the selectable streams (`streams = [...]` in `[feeds.sources.<name>]`): venue, name,
    /// default (`*`), endpoint family, the venue's channel, what it carries.
    Streams(StreamsArgs),
}

/// Options of `ringbolt feeds streams`.
#[derive(Debug, Args)]
pub struct StreamsArgs {
    /// Only this venue.
    #[arg(long, value_parser = parse_venue)]
    venue: Option<Venue>,
}

/// Prints the stream catalogue, one stream a line.
fn streams(args: &StreamsArgs) {
    use ringbolt_feeds::venues::streams::SUBSCRIPTIONS;
    println!(
        "{:<16} {:<18} {:<3} {:<9} {:<28} carries",
        "venue", "stream", "def", "group", "channel"
    );
    for x in SUBSCRIPTIONS
        .iter()
        .filter(|x| args.venue.is_none_or(|v| v == x.venue))
    {
        let group = match (x.group, x.only_suffix) {
            ("", Some(suffix)) => format!("*{suffix}"),
            (g, _) => g.to_string(),
        };
        println!(
            "{:<16} {:<18} {:<3} {:<9} {:<28} {}",
            x.venue.as_str(),
            x.name,
            if x.default { "*" } else { "" },
            group,
            x.channel,
            x.carries
        );
    }
}

/// Continuity handling for `feeds parse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SyncArg {
    /// Emit every update and count gaps (arbitrary captures).
    Observe,
    /// Apply the live continuity rules: updates wait for snapshots, stale rows are dropped.
    Enforce,
}

/// Options of `ringbolt feeds parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Venue (corpus folder name): polymarket, chainlink_rtds, coinbase, binance_spot, …
    #[arg(long, value_parser = parse_venue)]
    venue: Venue,
    /// Input file, one raw message per line; `-` or /dev/stdin for standard input.
    file: PathBuf,
    /// Continuity handling.
    #[arg(long, value_enum, default_value_t = SyncArg::Observe)]
    mode: SyncArg,
    /// Print at most this many error lines in full before rate-limiting (then every 1000th).
    #[arg(long, default_value_t = 20)]
    max_errors: u64,
}

fn parse_venue(name: &str) -> Result<Venue, String> {
    let venue = Venue::ALL
        .iter()
        .copied()
        .find(|v| *v != Venue::Internal && v.as_str() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = Venue::ALL[1..].iter().map(|v| v.as_str()).collect();
            format!("unknown venue `{name}`; venues: {}", names.join(", "))
        })?;
    if !IMPLEMENTED.contains(&venue) {
        let names: Vec<&str> = IMPLEMENTED.iter().map(|v| v.as_str()).collect();
        return Err(format!(
            "no adapter for `{name}` yet; implemented: {}",
            names.join(", ")
        ));
    }
    Ok(venue)
}

/// Runs `ringbolt feeds`.
pub fn run(args: FeedsArgs) -> Result<()> {
    match (args.command, args.config) {
        (Some(FeedsCommand::Parse(p)), _) => parse(&p),
        (Some(FeedsCommand::Streams(s)), _) => {
            streams(&s);
            Ok(())
        }
        (None, Some(config)) => {
            let file = ringbolt_config::load(&config)?;
            let cfg = file.feeds_section(&config)?;
            let mode = if cfg.busy_poll {
                Mode::Spin
            } else {
                Mode::Block
            };
            file.startup_checks(mode, args.force)?;
            ringbolt_collector::run(&cfg)
        }
        (None, None) => bail!("`ringbolt feeds` needs a subcommand (`parse`) or --config"),
    }
}

fn snippet(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    if text.chars().count() > 200 {
        let cut: String = text.chars().take(200).collect();
        format!("{cut}… ({} bytes)", line.len())
    } else {
        text.into_owned()
    }
}

fn parse(args: &ParseArgs) -> Result<()> {
    match parse_inner(args) {
        // `ringbolt feeds parse … | head`: the reader went away; that is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn parse_inner(args: &ParseArgs) -> Result<()> {
    let input: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.file)
                .with_context(|| format!("opening {}", args.file.display()))?,
        )
    };
    let mode = match args.mode {
        SyncArg::Observe => SyncMode::Observe,
        SyncArg::Enforce => SyncMode::Enforce,
    };
    let mut driver = FrameDriver::new(args.venue, mode, true)
        .with_context(|| format!("no adapter for {}", args.venue))?;
    let streams = driver.adapter.streams();
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut line = Vec::with_capacity(1 << 16);
    let mut records = Vec::with_capacity(4096);
    let (mut lines, mut parsed, mut skipped, mut emitted, mut errors) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading {}", args.file.display()))?;
        if n == 0 {
            break;
        }
        lines += 1;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            skipped += 1;
            continue;
        }
        records.clear();
        match driver.frame(&line, now_ns(), &mut records) {
            Ok(()) => parsed += 1,
            Err(e) => {
                skipped += 1;
                errors += 1;
                if errors <= args.max_errors || errors % 1000 == 0 {
                    eprintln!("line {lines}: skipped: {e}: {}", snippet(&line));
                } else if errors == args.max_errors + 1 {
                    eprintln!("further errors are rate-limited (every 1000th shown)");
                }
            }
        }
        // Offline: nothing performs the actions (fetches, reconnects); drop them.
        driver.actions.clear();
        for r in &records {
            emitted += 1;
            writeln!(
                out,
                "{}",
                record_json(r, streams, driver.instrument_name(r.instrument))
            )?;
        }
    }
    let total = driver.counters.total();
    writeln!(
        out,
        "{{\"summary\":true,\"venue\":\"{}\",\"lines\":{lines},\"parsed\":{parsed},\"skipped\":{skipped},\
         \"records\":{emitted},\"parse_errors\":{errors},\"gaps\":{},\"gap_records\":{},\
         \"dropped_unsynced\":{},\"resyncs\":{}}}",
        args.venue, total.gaps, total.gap_records, total.dropped_unsynced, total.resyncs
    )?;
    out.flush()?;
    Ok(())
}
