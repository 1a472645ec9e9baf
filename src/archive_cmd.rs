//! `ringbolt archive` (the archiver process) and `ringbolt report archive|latency` (offline
//! analysis of the Parquet archive and of `.hlog` latency dumps).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use ringbolt_archive::Archiver;
use ringbolt_archive::report::{ArchiveReport, summarize};
use serde_json::json;

/// `ringbolt archive` arguments.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ArchiveArgs {
    /// Configuration file (`ringbolt.toml`: `[archive]` is required; `[trade]` and `[decide]` are
    /// recorded in the archive for `ringbolt replay`; every section is checked for unknown keys).
    #[arg(long, default_value = "ringbolt.toml")]
    config: PathBuf,
    /// A sidecar instead of the archiver.
    #[command(subcommand)]
    action: Option<ArchiveAction>,
}

/// `ringbolt archive …` sidecars.
#[derive(Debug, Subcommand)]
pub enum ArchiveAction {
    /// Ship closed, compacted partitions to an S3-compatible bucket exactly once (journal
    /// `_ringbolt/shipped.json`), then apply the local retention (`[archive.ship]`).
    Ship(ShipArgs),
}

/// `ringbolt archive ship` arguments.
#[derive(Debug, Args)]
pub struct ShipArgs {
    /// Configuration file (`[archive]` root and `[archive.ship]`), unless --root and --url.
    #[arg(long, default_value = "ringbolt.toml")]
    config: PathBuf,
    /// Archive root (with --url: no configuration file needed).
    #[arg(long, requires = "url")]
    root: Option<PathBuf>,
    /// `s3://bucket/prefix` (endpoint and credentials: the AWS environment/profile chain).
    #[arg(long, requires = "root")]
    url: Option<String>,
    /// Overrides `closed_grace_s`: seconds after a window's end before it is shipped.
    #[arg(long)]
    closed_grace_s: Option<u64>,
    /// Overrides `delete_local_after_s` (local retention of confirmed partitions).
    #[arg(long)]
    delete_local_after_s: Option<u64>,
    /// Judge which windows have closed (and aged past retention) as of this Unix time in
    /// seconds instead of now: an archive copied from elsewhere, or a test that cannot wait for
    /// a window to end.
    #[arg(long)]
    as_of_s: Option<i64>,
    /// Keep shipping every `interval_s` until SIGINT/SIGTERM (default: one pass).
    #[arg(long, conflicts_with = "final_run")]
    follow: bool,
    /// The archiver has stopped for good (a finished demo or lab run): ship every partition,
    /// the last windows and uncompacted ones included.
    #[arg(long = "final")]
    final_run: bool,
}

/// `ringbolt report …` commands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Rows per venue and stream per day, bytes on disk, coverage %, gap counts of an archive.
    Archive {
        /// Archive root.
        #[arg(long)]
        root: PathBuf,
        /// Only this UTC day (`YYYY-MM-DD`).
        #[arg(long)]
        date: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Write an SVG chart of market events per venue (log scale).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// P&L per window, per day and in total from the archive's `fills` and `settlements`
    /// (confirmed fills; `pnl = sold − bought − fees + payout`, USDC).
    Pnl {
        /// Archive root.
        #[arg(long)]
        archive: PathBuf,
        /// Only this UTC day (`YYYY-MM-DD`).
        #[arg(long)]
        date: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Every process's `.hlog` latency dumps merged: one row per (stage, process) with count,
    /// p50/p90/p99/p99.9 and max in ns, in pipeline order.
    Latency {
        /// Directory searched (recursively) for `.hlog` files, e.g. a demo's run directory.
        #[arg(long, required_unless_present = "files")]
        dir: Option<PathBuf>,
        /// `.hlog` files (besides those under `--dir`).
        files: Vec<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Write an SVG percentile plot (one line per stage and process, all intervals merged).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install_stop_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let handler = on_signal as extern "C" fn(libc::c_int);
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, handler as libc::sighandler_t) };
    }
}

/// `ringbolt archive ship`: one pass (or `--follow`), one JSON line of counters per pass.
fn run_ship(a: &ShipArgs) -> Result<()> {
    use ringbolt_archive::ship::{ShipConfig, Shipper};
    let (root, mut ship) = match (&a.root, &a.url) {
        (Some(root), Some(url)) => (root.clone(), ShipConfig::new(url)),
        _ => {
            let file = ringbolt_config::load(&a.config)?;
            let config = file.archive_section(&a.config)?;
            let ship = config
                .ship
                .with_context(|| format!("{}: no [archive.ship] section", a.config.display()))?;
            (config.root, ship)
        }
    };
    if let Some(g) = a.closed_grace_s {
        ship.closed_grace_s = g;
    }
    if let Some(d) = a.delete_local_after_s {
        ship.delete_local_after_s = Some(d);
    }
    let interval = std::time::Duration::from_secs(ship.interval_s.max(1));
    let mut shipper = Shipper::open(&root, ship)
        .with_context(|| format!("opening the shipper of {}", root.display()))?;
    shipper.set_final(a.final_run);
    install_stop_handlers();
    loop {
        let now_s = a.as_of_s.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
        let stats = shipper.ship_once(now_s).context("shipping")?;
        println!("{}", serde_json::to_string(&stats)?);
        if !a.follow || STOP.load(Ordering::Relaxed) {
            return Ok(());
        }
        let until = std::time::Instant::now() + interval;
        while std::time::Instant::now() < until && !STOP.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// Runs the archiver until SIGINT/SIGTERM (then flushes and exits), or its sidecar.
pub fn run_archive(args: &ArchiveArgs) -> Result<()> {
    if let Some(ArchiveAction::Ship(a)) = &args.action {
        return run_ship(a);
    }
    let file = ringbolt_config::load(&args.config)?;
    let config = file.archive_section(&args.config)?;
    // The archiver (all its threads) runs on the core map's archiver cpus.
    ringbolt_net::affinity::pin_env_set("RINGBOLT_ARCHIVER_CPUS");
    file.startup_checks(ringbolt_service::startup::Mode::Block, false)?;
    install_stop_handlers();
    let mut archiver = Archiver::open(config.clone())
        .with_context(|| format!("starting the archiver on {}", config.root.display()))?;
    let hlog = archiver.enable_hlog()?;
    // The decision config of the shared file, for `ringbolt replay` to default to.
    let decision = file.trade_sections().decision_toml()?;
    let recorded = ringbolt_archive::recorded::record_decision_config(&config.root, &decision)
        .with_context(|| format!("recording the decision config in {}", config.root.display()))?;
    tracing::info!(file = %recorded.display(), "decision config recorded");
    tracing::info!(
        root = %config.root.display(),
        segments = ?config.segments,
        hlog = %hlog.display(),
        stray_tmp_removed = archiver.stray_tmp_removed(),
        "archiver running"
    );
    // Health endpoint and systemd readiness once the segments are mapped and the archive root
    // recovered; the watchdog follows the run loop's progress calls, so a stalled loop (a hung
    // write) turns /healthz to 503 and stops WATCHDOG=1.
    let liveness =
        ringbolt_service::Liveness::new(std::time::Duration::from_millis(config.health_stale_ms));
    if let Some(addr) = config.health_addr {
        let bound = ringbolt_service::spawn_health_endpoint(addr, &liveness)?;
        tracing::info!(%bound, "health endpoint listening");
    }
    if let (Some(addr), Some(stages)) = (config.metrics_addr, archiver.stage_metrics()) {
        let bound = ringbolt_service::spawn_metrics_endpoint(addr, move || stages.render())?;
        tracing::info!(%bound, "metrics endpoint listening");
    }
    ringbolt_service::spawn_watchdog(&liveness)?;
    verify_placement()?;
    liveness.set_ready()?;
    let result = archiver.run_with_progress(&STOP, &mut |_| liveness.beat());
    let archived = archiver.archived();
    archiver.shutdown();
    result.context("archiver stopped")?;
    tracing::info!(archived, "archiver stopped cleanly");
    Ok(())
}

/// Start-up check `threads`: every archiver thread on `$RINGBOLT_ARCHIVER_CPUS` (when set).
fn verify_placement() -> Result<()> {
    use ringbolt_service::startup::{Rule, Who, require, verify_placement};
    let rule = Rule {
        role: "archiver",
        who: Who::Named(""),
        cpus: ringbolt_net::affinity::env_cpus("RINGBOLT_ARCHIVER_CPUS"),
        min_threads: 1,
    };
    require(
        "threads",
        verify_placement(&[rule], None, std::time::Duration::from_secs(1)),
    )
}

/// Runs a report command.
pub fn run_report(command: ReportCommand) -> Result<()> {
    match command {
        ReportCommand::Archive {
            root,
            date,
            json,
            plot,
        } => report_archive(&root, date.as_deref(), json, plot.as_deref()),
        ReportCommand::Latency {
            dir,
            mut files,
            json,
            plot,
        } => {
            if let Some(dir) = dir {
                files.extend(ringbolt_telemetry::report::hlog_files(&dir)?);
            }
            if files.is_empty() {
                bail!("no .hlog files found");
            }
            report_latency(&files, json, plot.as_deref())
        }
        ReportCommand::Pnl {
            archive,
            date,
            json,
        } => report_pnl(&archive, date.as_deref(), json),
    }
}

/// `ringbolt report pnl`: the library's P&L of the archive, as JSON or a table.
fn report_pnl(root: &Path, date: Option<&str>, json: bool) -> Result<()> {
    let report = ringbolt_trade::paper::archive_pnl(root, date)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{:>12} {:>6} {:>6} {:>10} {:>12} {:>12} {:>10} {:>12} {:>12} settled",
        "window", "orders", "fills", "shares", "bought", "sold", "fees", "payout", "pnl"
    );
    let line = |name: String, r: &ringbolt_paper::PnlRow| {
        println!(
            "{name:>12} {:>6} {:>6} {:>10.2} {:>12.2} {:>12.2} {:>10.2} {:>12.2} {:>12.2} {}",
            r.orders,
            r.fills,
            r.shares,
            r.bought_usdc,
            r.sold_usdc,
            r.fees_usdc,
            r.payout_usdc,
            r.pnl_usdc,
            r.settled
        );
    };
    for r in &report.windows {
        line(r.window_start_s.to_string(), r);
    }
    for (day, r) in &report.days {
        line(day.clone(), r);
    }
    line("total".into(), &report.total);
    println!(
        "realised (settled windows): {:.2} USDC",
        report.realised_usdc
    );
    Ok(())
}

fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

fn report_archive(root: &Path, date: Option<&str>, json: bool, plot: Option<&Path>) -> Result<()> {
    if !root.is_dir() {
        bail!("archive root {} is not a directory", root.display());
    }
    if let Some(d) = date
        && ringbolt_archive::layout::Date::parse(d).is_none()
    {
        bail!("--date must be YYYY-MM-DD, got {d:?}");
    }
    let bar = progress_bar(0, "scanning parquet footers");
    let report = summarize(root, date, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if let Some(path) = plot {
        plot_events(&report, path)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "archive {}: {} files, {} rows, {} bytes",
        report.root, report.files, report.rows, report.bytes
    );
    for (day, d) in &report.days {
        println!("\n{day}: {} rows, {} bytes", d.rows, d.bytes);
        println!(
            "  {:<20} {:<16} {:>12} {:>12} {:>8}",
            "table", "venue", "rows", "bytes", "B/row"
        );
        for (table, venues) in &d.tables {
            for (venue, v) in venues {
                println!(
                    "  {table:<20} {venue:<16} {:>12} {:>12} {:>8.1}",
                    v.rows,
                    v.bytes,
                    v.bytes as f64 / v.rows.max(1) as f64
                );
            }
        }
        for (role, c) in &d.coverage {
            println!(
                "  coverage {role:<10} {:>3}/288 windows = {:.1}%",
                c.windows, c.coverage_pct
            );
        }
        if d.gaps.is_empty() {
            println!("  gaps: none");
        }
        for (kind, g) in &d.gaps {
            println!(
                "  gaps {kind:<18} {} events, {} records",
                g.events, g.records
            );
        }
    }
    Ok(())
}

fn plot_events(report: &ArchiveReport, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    if path.extension().and_then(|e| e.to_str()) != Some("svg") {
        bail!("--plot writes SVG (no system libraries needed); use a .svg file name");
    }
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for day in report.days.values() {
        for (venue, n) in &day.events_by_venue {
            *totals.entry(venue.clone()).or_default() += n;
        }
    }
    let venues: Vec<(String, u64)> = totals.into_iter().collect();
    let max = venues.iter().map(|v| v.1).max().unwrap_or(1).max(10) as f64;
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = venues.len().max(1) as u32;
    let mut chart = ChartBuilder::on(&root)
        .caption("market events per venue (log scale)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(70)
        .build_cartesian_2d((0u32..n).into_segmented(), (1f64..max * 2.0).log_scale())?;
    let labels: Vec<String> = venues.iter().map(|v| v.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("events")
        .x_labels(venues.len().max(1))
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(venues.iter().enumerate().map(|(i, (_, count))| {
        let i = i as u32;
        Rectangle::new(
            [
                (SegmentValue::Exact(i), 1.0),
                (SegmentValue::Exact(i + 1), (*count).max(1) as f64),
            ],
            BLUE.mix(0.7).filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}

fn report_latency(files: &[PathBuf], json: bool, plot: Option<&Path>) -> Result<()> {
    let rows = ringbolt_telemetry::report::merge(files)?;
    if let Some(path) = plot {
        let merged: BTreeMap<String, &Histogram<u64>> = rows
            .iter()
            .filter(|r| r.count > 0)
            .map(|r| (format!("{}/{}", r.process, r.stage), &r.histogram))
            .collect();
        plot_percentiles(&merged, path)?;
    }
    if json {
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "stages": rows, "files": files }))?
        );
    } else {
        print!("{}", ringbolt_telemetry::report::table(&rows));
    }
    Ok(())
}

fn plot_percentiles(merged: &BTreeMap<String, &Histogram<u64>>, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    if path.extension().and_then(|e| e.to_str()) != Some("svg") {
        bail!("--plot writes SVG (no system libraries needed); use a .svg file name");
    }
    let max = merged.values().map(|h| h.max()).max().unwrap_or(10).max(10) as f64;
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    // x = 1 / (1 - percentile): 1 = p0, 10 = p90, 100 = p99 … 10^5 = p99.999.
    let mut chart = ChartBuilder::on(&root)
        .caption("latency by percentile", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (1f64..100_000f64).log_scale(),
            (1f64..max * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ns)")
        .x_label_formatter(&|x| format!("{:.3}%", 100.0 * (1.0 - 1.0 / x)))
        .draw()?;
    for (k, (stage, h)) in merged.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let points: Vec<(f64, f64)> = (0..=500)
            .map(|i| {
                let x = 10f64.powf(f64::from(i) / 100.0);
                let q = (1.0 - 1.0 / x).clamp(0.0, 0.99999);
                (x, h.value_at_quantile(q).max(1) as f64)
            })
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(stage.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
