//! `ringbolt demo`: the whole appliance offline, as separate processes on loopback.
//!
//! The demo builds its configuration as values and serialises them under `<out>/config/`: the
//! appliance's one `ringbolt.toml` (every process loads it, so the archive records the decision
//! config the trade process used) and the emulators' `emulate.toml`. It then supervises
//! `ringbolt-lab emulate` (venue + CLOB emulators, this binary) and the appliance's processes
//! from the sibling `ringbolt` binary: `ringbolt archive`, `ringbolt trade` (decisions + paper
//! orders) and `ringbolt feeds` (the collector) — restart on crash with backoff, clean stop
//! on Ctrl-C or at the end, every child reaped. It watches the bus like any other consumer, prints
//! a status line, and at the end writes `<out>/report.json`.
//!
//! Windows are the real 5-minute windows on the wall clock: the decision core needs the Chainlink
//! price at a window's start (its strike), so decisions begin after the first rollover the demo
//! sees; the default run length is "until the next rollover + 75 s".

pub mod cpu;
pub(crate) mod http;
pub(crate) mod monitor;
pub(crate) mod sources;
pub(crate) mod supervisor;

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use ringbolt_archive::ArchiveConfig;
use ringbolt_collector::config::FeedsConfig;
use ringbolt_config::RingboltConfig;
use ringbolt_decide::model::EvaluatorKind;
use ringbolt_sim::config::VenueConfig;
use ringbolt_sim::{EmulatorConfig, MarketConfig};
use ringbolt_trade::config::StartAt;

use self::monitor::Monitor;
#[cfg(doc)]
use self::sources::DEMO_SOURCES;
use self::sources::VenuePorts;
use self::supervisor::{Spec, Supervisor};

/// Options of `ringbolt demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run length in seconds (default: until the next 5-minute rollover + 75 s).
    #[arg(long)]
    seconds: Option<u64>,
    /// Output directory (configs, logs, archive, hlog dumps, report.json).
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// Busy-poll (spin) the collector and decision threads instead of blocking waits.
    #[arg(long)]
    spin: bool,
    /// `SCHED_FIFO` priority (1-99) for the hot threads: the collector's ring threads and the
    /// reflex thread (`[feeds] rt_priority`, `[trade] reflex_rt_priority`); the CLOB emulator
    /// takes one step below, the venue emulators' workers two (`$RINGBOLT_RT_PRIORITY`). 0 = the
    /// normal class. Needs root or CAP_SYS_NICE; a refusal is logged and the thread runs on
    /// normally. The report's `cpu.<process>.sched` shows which threads took it (ADR 0030).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=99))]
    rt_priority: u8,
    /// The reflex thread's spin after a record, µs (`[trade] idle_spin_us`); unset = the
    /// trade process's default.
    #[arg(long)]
    idle_spin_us: Option<u32>,
    /// Decision evaluator: native, ort or baseline.
    #[arg(long, default_value = "native")]
    evaluator: String,
    /// Market seed of the emulators.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Scheduled faults, repeatable: `AT:kill:CHILD` (SIGKILL feeds|archive|trade|emulate) or
    /// `AT:venue:VENUE:KIND` (emulator fault: disconnect|stall|gap|corrupt|checksum|
    /// slow_handshake|refuse, or for venue `clob`
    /// the CLOB faults). AT is seconds from start (`20`) or after the first rollover (`r+10`).
    #[arg(long = "fault")]
    faults: Vec<String>,
    /// No live status line (plain progress lines instead).
    #[arg(long)]
    quiet: bool,
    /// Keep the run's bus segments in /dev/shm afterwards (for `ringbolt bus status`); by
    /// default they are removed once every process has stopped (the archive keeps everything).
    #[arg(long)]
    keep_segments: bool,
    /// Live mode on the emulated CLOB: `ringbolt trade --live` with 5-share orders, the user
    /// channel and a journal (the emulator funds the fresh key); the report's `live` compares
    /// the positions from the fills with the emulator's ledger.
    #[arg(long)]
    live: bool,
    /// Do not start the dashboard (`ringbolt dash`; by default it serves on a free loopback
    /// port printed at start).
    #[arg(long)]
    no_dash: bool,
}

#[derive(Clone, Debug)]
enum FaultAction {
    Kill(String),
    Venue(String, String),
}

#[derive(Clone, Debug)]
struct Fault {
    after_rollover: bool,
    at_s: u64,
    action: FaultAction,
    done: bool,
    spec: String,
}

fn parse_fault(spec: &str) -> Result<Fault> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (after_rollover, at) = match parts.first() {
        Some(a) if a.starts_with("r+") => (true, &a[2..]),
        Some(a) => (false, *a),
        None => bail!("empty --fault"),
    };
    let at_s: u64 = at
        .parse()
        .with_context(|| format!("--fault {spec:?}: bad time {at:?}"))?;
    let action = match parts.get(1..) {
        Some(["kill", child]) => {
            if !["feeds", "archive", "trade", "emulate"].contains(child) {
                bail!("--fault {spec:?}: unknown child {child:?}");
            }
            FaultAction::Kill((*child).to_owned())
        }
        Some(["venue", venue, kind]) => FaultAction::Venue((*venue).to_owned(), (*kind).to_owned()),
        _ => bail!("--fault {spec:?}: expected AT:kill:CHILD or AT:venue:VENUE:KIND"),
    };
    Ok(Fault {
        after_rollover,
        at_s,
        action,
        done: false,
        spec: spec.to_owned(),
    })
}

pub(crate) static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

pub(crate) fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(l.local_addr()?.port())
}

pub(crate) fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Ports of one demo run.
#[derive(Clone, Debug)]
pub(crate) struct Ports {
    control: u16,
    /// One per emulated venue.
    pub(crate) venues: VenuePorts,
    pub(crate) clob: u16,
    metrics: u16,
    feeds_health: u16,
    trade_health: u16,
    archive_health: u16,
    dash: u16,
    trade_metrics: u16,
    archive_metrics: u16,
}

impl Ports {
    /// Every port of the run.
    pub(crate) fn all(&self) -> impl Iterator<Item = u16> + '_ {
        [
            self.control,
            self.clob,
            self.metrics,
            self.feeds_health,
            self.trade_health,
            self.archive_health,
        ]
        .into_iter()
        .chain(self.venues.0.values().copied())
    }
}

/// The emulators' configuration (the lab's own file format, `sim/emulate.example.toml`).
fn emulate_config(out: &Path, p: &Ports, seed: u64) -> EmulatorConfig {
    let clob = VenueConfig {
        port: p.clob,
        ..VenueConfig::default()
    };
    EmulatorConfig {
        bind: [127, 0, 0, 1].into(),
        cert_dir: out.join("certs"),
        control_port: p.control,
        market: MarketConfig {
            seed,
            window_len_s: 300,
            ..MarketConfig::default()
        },
        venues: p
            .venues
            .emulator_venues()
            .chain([(ringbolt_sim::config::CLOB.to_owned(), clob)])
            .collect(),
        ..EmulatorConfig::default()
    }
}

/// The appliance's one `ringbolt.toml` for this run: every process (`feeds`, `trade`,
/// `archive`) loads it, so the archive records the decision config the trade process used.
fn ringbolt_config(args: &DemoArgs, run: &Run, p: &Ports) -> Result<RingboltConfig> {
    let out = &run.out;
    let mut cfg = RingboltConfig {
        feeds: FeedsConfig {
            rt_priority: Some(args.rt_priority),
            ..feeds_config(out, &run.market, p, args.spin)?
        },
        dash: dash_config(run, p),
        archive: Some(ArchiveConfig {
            hlog_dir: Some(out.join("hlog")),
            flush_interval_ms: 500,
            open_timeout_ms: 120_000,
            health_addr: Some(loopback(p.archive_health)),
            metrics_addr: Some(loopback(p.archive_metrics)),
            ..ArchiveConfig::new(
                out.join("archive"),
                vec![run.market.clone(), run.decisions.clone()],
            )
        }),
        ..RingboltConfig::default()
    };
    // `start = "oldest"`: from the segment's first record, as replay does. Paper mode: orders
    // take the real signing and HTTP/2 path with size zero, and the CLOB emulator rejects them
    // as the venue does.
    let trade = &mut cfg.trade;
    trade.inputs = vec![run.market.clone()];
    trade.output.clone_from(&run.decisions);
    trade.evaluator = match args.evaluator.as_str() {
        "native" => EvaluatorKind::Native,
        "ort" => EvaluatorKind::Ort,
        "baseline" => EvaluatorKind::Baseline,
        other => bail!("--evaluator {other}: expected native, ort or baseline"),
    };
    trade.start = StartAt::Oldest;
    trade.open_timeout_s = 120;
    trade.reflex_rt_priority = Some(args.rt_priority);
    if let Some(us) = args.idle_spin_us {
        trade.idle_spin_us = us;
    }
    trade.paper = true;
    trade.health_addr = Some(loopback(p.trade_health));
    trade.metrics_addr = Some(loopback(p.trade_metrics));
    trade.hlog_dir = Some(out.join("hlog"));
    // Demo only: more orders per window than production's defaults, for latency statistics
    // (paper orders are rejected by the venue anyway).
    let risk = &mut cfg.decide.risk;
    risk.max_orders_per_window = 60;
    risk.max_position_shares = 3000.0;
    risk.cooldown_ms = 250;
    let exec = &mut cfg.exec;
    exec.enabled = true;
    exec.host = "localhost".into();
    exec.port = p.clob;
    exec.ca_file = Some(out.join("certs").join("ca.pem"));
    exec.key_file = Some(out.join("paper.key"));
    if args.live {
        cfg.trade.paper = false;
        let exec = &mut cfg.exec;
        exec.sizes = vec!["5".into()];
        exec.user_ws_url = Some(format!("wss://localhost:{}/ws/user", p.clob));
        exec.journal_path = Some(out.join("exec.journal"));
        exec.risk = ringbolt_exec::risk::RiskLimits {
            max_order_notional_micros: Some(5_000_000),
            max_window_notional_micros: Some(100_000_000),
            max_day_notional_micros: Some(1_000_000_000),
            max_open_orders: Some(20),
        };
    }
    Ok(cfg)
}

/// `[dash]`: the dashboard on its own loopback port, reading both segments and every process's
/// `/metrics` (trade and archive serve theirs beside `/healthz`; a 404 shows as "no data").
fn dash_config(run: &Run, p: &Ports) -> ringbolt_dash::DashConfig {
    let metrics = |process: &str, port: u16| ringbolt_dash::MetricsSource {
        process: process.to_owned(),
        url: format!("http://127.0.0.1:{port}/metrics"),
    };
    ringbolt_dash::DashConfig {
        bind: loopback(p.dash),
        segments: vec![run.market.clone(), run.decisions.clone()],
        metrics: vec![
            metrics("feeds", p.metrics),
            metrics("trade", p.trade_metrics),
            metrics("archive", p.archive_metrics),
        ],
        ..ringbolt_dash::DashConfig::default()
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A throwaway signing key for paper orders (mode 0600, fresh per run; never funded).
fn write_paper_key(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    std::io::Read::read_exact(&mut f, &mut bytes)?;
    bytes[0] = bytes[0].clamp(1, 0x7f); // a valid scalar (below the curve order)
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "0x{hex}")?;
    Ok(())
}

/// `[feeds]`: the collector against the local emulators, one source per [`DEMO_SOURCES`] line.
fn feeds_config(out: &Path, market: &str, p: &Ports, spin: bool) -> Result<FeedsConfig> {
    let ca = out.join("certs").join("ca.pem");
    Ok(FeedsConfig {
        segment: market.to_owned(),
        busy_poll: spin,
        metrics_addr: Some(loopback(p.metrics)),
        health_addr: Some(loopback(p.feeds_health)),
        hlog_dir: Some(out.join("hlog")),
        backoff_base_ms: 250,
        backoff_max_ms: 4000,
        sources: p.venues.collector_sources(&ca)?,
        ..FeedsConfig::default()
    })
}

pub(crate) struct Run {
    pub(crate) out: PathBuf,
    pub(crate) market: String,
    pub(crate) decisions: String,
    pub(crate) control: SocketAddr,
    /// The dashboard's URL, when it runs.
    pub(crate) dash_url: Option<String>,
}

impl Run {
    /// A run writing to `out`, its segments named after this process, its emulator control port
    /// taken from `ports`.
    pub(crate) fn new(out: &Path, ports: &Ports) -> Self {
        let tag = std::process::id();
        Self {
            out: out.to_path_buf(),
            market: format!("rbdemo-{tag}-market"),
            decisions: format!("rbdemo-{tag}-decide"),
            control: SocketAddr::from(([127, 0, 0, 1], ports.control)),
            dash_url: None,
        }
    }
}

impl DemoArgs {
    /// The demo's options for another lab command that runs the demo's processes (the soak):
    /// blocking mode, the native evaluator, paper orders.
    pub(crate) fn for_run(out: &Path, seed: u64) -> Self {
        Self {
            seconds: None,
            out: out.to_path_buf(),
            spin: false,
            rt_priority: 0,
            idle_spin_us: None,
            evaluator: "native".into(),
            seed,
            faults: Vec::new(),
            quiet: true,
            keep_segments: false,
            live: false,
            no_dash: true,
        }
    }
}

/// The emulators' `SCHED_FIFO` priority for the demo's `--rt-priority` `hot`: one step below the
/// hot threads, 0 when they run in the normal class. The CLOB emulator's thread takes it, the
/// venue emulators' workers one step lower again (`ringbolt-lab emulate`).
fn emulator_rt_priority(hot: u8) -> u8 {
    match hot {
        0 => 0,
        p => rt_step_below(p),
    }
}

/// One `SCHED_FIFO` step below priority `p` (1-99), never below the lowest priority, 1.
pub(crate) fn rt_step_below(p: u8) -> u8 {
    p.saturating_sub(1).max(1)
}

/// A 5-character venue label for the status line, unique over the venue names:
/// `binance_spot` → `binas`, `binance_futures` → `binaf`, `polymarket` → `polym`.
pub(crate) fn short_name(venue: &str) -> String {
    let head: String = venue.chars().take(4).collect();
    match venue.rsplit_once('_') {
        Some((_, last)) => head + &last.chars().take(1).collect::<String>(),
        None => venue.chars().take(5).collect(),
    }
}

fn wait_for_control(
    control: SocketAddr,
    sup: &mut Supervisor,
    log: &Path,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if http::get(control, "/stats").is_ok() {
            return Ok(());
        }
        sup.tick();
        if Instant::now() >= deadline {
            let report = sup
                .reports()
                .into_iter()
                .find(|(name, _)| *name == "emulate")
                .map(|(_, r)| r)
                .unwrap_or_default();
            bail!(
                "the emulator did not answer on {control} within {timeout:?} (pid {}, {} \
                 restart(s), exits {:?}); the end of {}:\n{}",
                report.pid,
                report.restarts,
                report.crashes,
                log.display(),
                log_tail(log, 15)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `lines` lines of a child's log, for an error message ("" when unreadable).
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs the demo.
/// The appliance binary, `ringbolt`, next to this one (`ringbolt-lab`): the demo runs the
/// appliance's own processes.
pub(crate) fn appliance_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the ringbolt-lab binary")?;
    let appliance = exe.with_file_name("ringbolt");
    if !appliance.is_file() {
        bail!(
            "the appliance binary `ringbolt` is not next to {}: build both with `cargo build \
             --bin ringbolt --bin ringbolt-lab` (add --release for a release build)",
            exe.display()
        );
    }
    Ok(appliance)
}

/// Fresh output directories: a new archive per run (replay parity is checked against this
/// run's decisions only) and no old logs.
pub(crate) fn prepare_out(out: &Path) -> Result<()> {
    for d in ["config", "logs", "archive", "hlog", "certs"] {
        std::fs::create_dir_all(out.join(d))
            .with_context(|| format!("creating {}", out.join(d).display()))?;
    }
    let archive_dir = out.join("archive");
    if archive_dir.exists() {
        std::fs::remove_dir_all(&archive_dir)?;
        std::fs::create_dir_all(&archive_dir)?;
    }
    for dir in ["logs", "hlog"] {
        for entry in std::fs::read_dir(out.join(dir))? {
            let _ = std::fs::remove_file(entry?.path());
        }
    }
    Ok(())
}

pub(crate) fn free_ports() -> Result<Ports> {
    Ok(Ports {
        control: free_port()?,
        venues: VenuePorts::allocate(free_port)?,
        clob: free_port()?,
        metrics: free_port()?,
        feeds_health: free_port()?,
        trade_health: free_port()?,
        archive_health: free_port()?,
        dash: free_port()?,
        trade_metrics: free_port()?,
        archive_metrics: free_port()?,
    })
}

/// Writes every child's configuration and the paper key; starts the children in order
/// (emulators first, the collector last) under a supervisor.
fn start_children(args: &DemoArgs, run: &Run, ports: &Ports) -> Result<Supervisor> {
    start_children_with(args, run, ports, &|_| Ok(()))
}

/// As [`start_children`], with `edit` applied to the appliance's configuration before it is
/// written (the soak points the collector and exec at its fault proxy).
pub(crate) fn start_children_with(
    args: &DemoArgs,
    run: &Run,
    ports: &Ports,
    edit: &dyn Fn(&mut RingboltConfig) -> Result<()>,
) -> Result<Supervisor> {
    let out = &run.out;
    let cfg = |name: &str, header: &str, text: String| -> Result<PathBuf> {
        let p = out.join("config").join(format!("{name}.toml"));
        std::fs::write(&p, format!("{header}{text}"))
            .with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    };
    let emulate_toml = cfg(
        "emulate",
        "# Generated by `ringbolt demo`. Everything served is EMULATED.\n",
        toml::to_string(&emulate_config(out, ports, args.seed))?,
    )?;
    // One shared file, as on the appliance: the archiver records its decision config.
    let ringbolt_toml = cfg(
        "ringbolt",
        "# Generated by `ringbolt demo`: the appliance's processes against the local emulators.\n",
        {
            let mut c = ringbolt_config(args, run, ports)?;
            edit(&mut c)?;
            c.to_toml()?
        },
    )?;
    write_paper_key(&out.join("paper.key"))?;
    sources::write_polybolt_credentials(&out.join("certs").join("ca.pem"))?;
    // The emulators are this binary's; the appliance's processes are the `ringbolt` binary's.
    let lab = std::env::current_exe().context("locating the ringbolt-lab binary")?;
    let appliance = appliance_binary()?;
    let spec = |name: &'static str, program: &Path, config: &Path| Spec {
        name,
        program: program.to_path_buf(),
        args: vec![
            name.to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ],
        env: Vec::new(),
        log: out.join("logs").join(format!("{name}.log")),
    };
    let mut sup = Supervisor::default();
    let mut emulate = spec("emulate", &lab, &emulate_toml);
    // Below the appliance's hot threads: the emulated venues preempt the normal-class
    // processes but never a ring or reflex thread (at the same FIFO priority a burst of frames
    // to 12 venues held the woken ring thread back ~0.5 ms; ADR 0030); the CLOB emulator one
    // step above the venues' workers, so that it reads an order as soon as it arrives.
    emulate.env.push((
        ringbolt_net::affinity::RT_PRIORITY_ENV.to_owned(),
        emulator_rt_priority(args.rt_priority).to_string(),
    ));
    let emulate_log = emulate.log.clone();
    sup.start(emulate)?;
    // Generous: a debug emulator on a loaded 2-core machine has taken more than 30 s to start.
    wait_for_control(run.control, &mut sup, &emulate_log, Duration::from_secs(90))?;
    sup.start(spec("archive", &appliance, &ringbolt_toml))?;
    let mut trade = spec("trade", &appliance, &ringbolt_toml);
    if args.live {
        trade.args.insert(1, "--live".to_owned());
    }
    sup.start(trade)?;
    sup.start(spec("feeds", &appliance, &ringbolt_toml))?;
    if !args.no_dash {
        sup.start(spec("dash", &appliance, &ringbolt_toml))?;
        eprintln!(
            "ringbolt demo: dashboard on http://127.0.0.1:{}/",
            ports.dash
        );
    }
    write_pids(run, &sup)?;
    Ok(sup)
}

/// Watches the bus and supervises the children until the deadline or a stop signal, running
/// the fault schedule and printing a status line every second.
fn watch(
    args: &DemoArgs,
    run: &Run,
    sup: &mut Supervisor,
    mon: &mut Monitor,
    faults: &mut [Fault],
    seconds: u64,
    started_s: i64,
) -> Result<(Duration, cpu::CpuTracker)> {
    let mut cpu = cpu::CpuTracker::default();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(seconds);
    let tty = std::io::stderr().is_terminal() && !args.quiet;
    let mut last_status = Instant::now();
    let mut last_counts = (0u64, BTreeMap::new());
    let mut rollover_seen_at: Option<Instant> = None;
    let first_window = started_s / 300;
    let pids = |sup: &Supervisor| {
        let mut pids: Vec<(&'static str, u32)> =
            sup.reports().into_iter().map(|(n, r)| (n, r.pid)).collect();
        pids.push(("demo", std::process::id()));
        pids
    };
    cpu.sample(pids(sup));
    while Instant::now() < deadline && !STOP.load(Ordering::Relaxed) {
        let n = mon.poll(65_536);
        sup.tick();
        if rollover_seen_at.is_none() && now_s() / 300 > first_window {
            rollover_seen_at = Some(Instant::now());
        }
        run_faults(faults, run, sup, t0, rollover_seen_at)?;
        if last_status.elapsed() >= Duration::from_secs(1) {
            let line = status_line(mon, &mut last_counts, t0, seconds, last_status.elapsed());
            if tty {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
            let _ = std::io::stderr().flush();
            last_status = Instant::now();
            write_pids(run, sup)?;
            cpu.sample(pids(sup));
        }
        if n == 0 {
            mon.wait(Duration::from_millis(20));
        }
    }
    cpu.sample(pids(sup));
    if tty {
        eprintln!();
    }
    Ok((t0.elapsed(), cpu))
}

/// The emulators' view (stats and wire log), taken before they stop.
pub(crate) fn emulator_views(run: &Run) -> (Value, Value) {
    let get = |path: &str| -> Value {
        http::get(run.control, path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    };
    (get("/stats"), get("/wirelog"))
}

/// Live mode: the positions from exec's fills against the emulator's ledger (1e-6 shares per
/// token, every account of the emulator: the run's fresh key is the only trading one).
fn live_report(mon: &Monitor, ledger: &Value) -> Value {
    let ours = mon.live_positions();
    let mut venue: BTreeMap<String, i64> = BTreeMap::new();
    for account in ledger["accounts"]
        .as_object()
        .into_iter()
        .flat_map(|a| a.values())
    {
        for (token, p) in account["positions"].as_object().into_iter().flatten() {
            *venue.entry(token.clone()).or_insert(0) += p["size_micro"].as_i64().unwrap_or(0);
        }
    }
    venue.retain(|_, v| *v != 0);
    let ours_held: BTreeMap<String, i64> = ours
        .iter()
        .filter(|(_, v)| **v != 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    json!({
        "fills": mon.live_fills.tokens().iter().map(|(_, b)| b.fills).sum::<u64>(),
        "positions_micro": ours,
        "ledger_positions_micro": venue,
        "positions_equal_ledger": ours_held == venue,
    })
}

/// Stops the producers first so the archiver and the monitor see everything published, then
/// everything; removes the run's segments unless asked to keep them.
pub(crate) fn stop_children(args: &DemoArgs, run: &Run, sup: &mut Supervisor, mon: &mut Monitor) {
    sup.stop_one("feeds", Duration::from_secs(5));
    sup.stop_one("trade", Duration::from_secs(5));
    let drain_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < drain_until {
        if mon.poll(1 << 20) == 0 {
            mon.wait(Duration::from_millis(10));
        }
    }
    // The archiver drains what the rings still hold and commits it: on a loaded host that takes
    // longer than the others' grace, and a SIGKILL then would leave the tail unarchived (a
    // production restart re-reads it from the bus; the run's report cannot).
    sup.stop_one("archive", Duration::from_secs(60));
    sup.shutdown(Duration::from_secs(10));
    if !args.keep_segments {
        for name in [&run.market, &run.decisions] {
            if let Err(e) = ringbolt_bus::Segment::unlink(name) {
                tracing::warn!("removing bus segment {name}: {e}");
            }
        }
    }
}

/// SIGINT / SIGTERM set [`STOP`].
pub(crate) fn install_stop_handler() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let handler = on_signal as extern "C" fn(libc::c_int);
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, handler as libc::sighandler_t) };
    }
}

/// Runs `ringbolt demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    let mut faults = args
        .faults
        .iter()
        .map(|f| parse_fault(f))
        .collect::<Result<Vec<_>>>()?;
    let out = args.out.clone();
    prepare_out(&out)?;
    let started_s = now_s();
    let next_rollover_s = (started_s / 300 + 1) * 300;
    let seconds = args
        .seconds
        .unwrap_or_else(|| (next_rollover_s - started_s + 75) as u64);
    let ports = free_ports()?;
    let mut run = Run::new(&out, &ports);
    run.dash_url = (!args.no_dash).then(|| format!("http://127.0.0.1:{}/", ports.dash));
    install_stop_handler();
    let mut sup = start_children(args, &run, &ports)?;
    let mut mon = Monitor::new(&run.market, &run.decisions);
    eprintln!(
        "ringbolt demo: {} s on loopback ({} mode), output in {}; EMULATED venues; next rollover in {} s",
        seconds,
        if args.spin { "spin" } else { "blocking" },
        out.display(),
        next_rollover_s - started_s
    );
    let (elapsed, cpu) = watch(
        args,
        &run,
        &mut sup,
        &mut mon,
        &mut faults,
        seconds,
        started_s,
    )?;
    let interrupted = STOP.load(Ordering::Relaxed);
    let (emulator_stats, wirelog) = emulator_views(&run);
    // Live mode: the ledger once fills have settled (the trade process stops first, so no new
    // order comes in; then a moment for the user channel's last events).
    let ledger = if args.live {
        sup.stop_one("trade", Duration::from_secs(5));
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if mon.poll(1 << 20) == 0 {
                mon.wait(Duration::from_millis(10));
            }
        }
        http::get(run.control, "/clob/ledger")
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    stop_children(args, &run, &mut sup, &mut mon);

    mon.judge_fired(true);
    let (md_writes, clob_recvs) = parse_wirelog(&wirelog);
    let joined = mon.join_wire(&md_writes, &clob_recvs);
    let archive = ringbolt_archive::report::summarize(&out.join("archive"), None, &mut |_, _| {})
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .unwrap_or_else(|e| json!({ "error": e.to_string() }));
    let mut report = build_report(
        args,
        &run,
        &mon,
        &sup,
        seconds,
        elapsed,
        interrupted,
        joined,
        emulator_stats,
        archive,
        &faults,
    );
    // P&L of the paper exchange's fills and settlements, from the archive (the numbers
    // `ringbolt report pnl` prints and the SQL of docs/analysis.md recomputes).
    report["pnl"] = ringbolt_trade::paper::archive_pnl(&out.join("archive"), None)
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .unwrap_or_else(|e| json!({ "error": format!("{e:#}") }));
    if args.live {
        report["live"] = live_report(&mon, &ledger);
    }
    report["stage_latency"] = stage_latency(&out.join("hlog"));
    // CPU per process over the watched run (/proc/<pid>/stat), with the load average.
    report["cpu"] = cpu.report();
    let path = out.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    print_summary(&report);
    eprintln!("report written to {}", path.display());
    Ok(())
}

/// Every process's `.hlog` dumps of this run merged (the table `ringbolt report latency --dir`
/// prints), with the stages each process defines, so a check can name a missing one.
fn stage_latency(dir: &Path) -> Value {
    let expected: Vec<String> = ringbolt_telemetry::stages::ALL
        .iter()
        .flat_map(|t| t.stages.iter().map(move |s| format!("{}/{s}", t.process)))
        .collect();
    let rows = ringbolt_telemetry::report::hlog_files(dir)
        .and_then(|files| ringbolt_telemetry::report::merge(&files).map(|rows| (files, rows)));
    match rows {
        Ok((files, rows)) => json!({
            "dir": dir.display().to_string(),
            "files": files.len(),
            "expected": expected,
            "stages": rows,
        }),
        Err(e) => json!({ "error": e.to_string(), "expected": expected }),
    }
}

pub(crate) fn write_pids(run: &Run, sup: &Supervisor) -> Result<()> {
    let pids: BTreeMap<&str, u32> = sup.reports().into_iter().map(|(n, r)| (n, r.pid)).collect();
    let v = json!({ "demo": std::process::id(), "children": pids, "control": run.control.to_string(),
        "dash": run.dash_url,
        "market_segment": run.market, "decision_segment": run.decisions });
    let tmp = run.out.join("pids.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&v)?)?;
    std::fs::rename(&tmp, run.out.join("pids.json"))?;
    Ok(())
}

fn run_faults(
    faults: &mut [Fault],
    run: &Run,
    sup: &mut Supervisor,
    t0: Instant,
    rollover: Option<Instant>,
) -> Result<()> {
    for f in faults.iter_mut().filter(|f| !f.done) {
        let base = if f.after_rollover {
            match rollover {
                Some(r) => r,
                None => continue,
            }
        } else {
            t0
        };
        if base.elapsed() < Duration::from_secs(f.at_s) {
            continue;
        }
        f.done = true;
        match &f.action {
            FaultAction::Kill(child) => {
                let pid = sup.pid(child);
                if pid != 0 {
                    eprintln!("\nfault {}: kill -9 {child} (pid {pid})", f.spec);
                    // SAFETY: kill(2) on a child pid the supervisor spawned and has not reaped.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
            }
            FaultAction::Venue(venue, kind) => {
                eprintln!("\nfault {}: {venue} {kind}", f.spec);
                let path = format!("/fault?venue={venue}&kind={kind}");
                match http::request(run.control, "POST", &path) {
                    Ok((s, _)) if (200..300).contains(&s) => {}
                    Ok((s, body)) => eprintln!(
                        "fault {}: emulator answered {s}: {}",
                        f.spec,
                        String::from_utf8_lossy(&body)
                    ),
                    Err(e) => eprintln!("fault {}: {e:#}", f.spec),
                }
            }
        }
    }
    Ok(())
}

fn status_line(
    mon: &Monitor,
    last: &mut (u64, BTreeMap<&'static str, u64>),
    t0: Instant,
    seconds: u64,
    dt: Duration,
) -> String {
    let per_venue = mon.events_per_venue();
    let dt_s = dt.as_secs_f64().max(1e-3);
    let mut venues = String::new();
    let mut total = 0u64;
    for (v, n) in &per_venue {
        let prev = last.1.get(v).copied().unwrap_or(0);
        let rate = (n - prev) as f64 / dt_s;
        total += n;
        venues.push_str(&format!(" {} {rate:.0}", short_name(v)));
    }
    let total_rate = (total - last.0) as f64 / dt_s;
    *last = (total, per_venue);
    let stages = mon.stage_percentiles();
    let stage = |k: &str| {
        stages.get(k).map_or_else(
            || "-".to_owned(),
            |p| {
                format!(
                    "{:.1}/{:.1}µs",
                    p.p50_ns as f64 / 1e3,
                    p.p99_ns as f64 / 1e3
                )
            },
        )
    };
    format!(
        "[{:>4}/{seconds}s] {total_rate:.0} ev/s ({}) | decisions {} fired {} | orders {} | recv→bus {} bus→decide {}",
        t0.elapsed().as_secs(),
        venues.trim(),
        mon.decisions_total,
        mon.decisions_fired,
        mon.orders_submitted,
        stage(ringbolt_telemetry::stage::RECV_TO_BUS),
        stage(ringbolt_telemetry::stage::BUS_TO_DECISION),
    )
}

/// (token id, frame timestamp ms) → write ns; order hash prefix → receive ns.
type WireMaps = (HashMap<(String, i64), i64>, HashMap<[u8; 16], i64>);

fn parse_wirelog(v: &Value) -> WireMaps {
    let mut md = HashMap::new();
    let mut clob = HashMap::new();
    if let Some(arr) = v.get("frames").and_then(Value::as_array) {
        for e in arr {
            if let (Some(a), Some(ts), Some(w)) = (
                e.get("asset_id").and_then(Value::as_str),
                e.get("timestamp_ms").and_then(Value::as_i64),
                e.get("write_ns").and_then(Value::as_i64),
            ) {
                md.insert((a.to_owned(), ts), w);
            }
        }
    }
    if let Some(arr) = v.get("orders").and_then(Value::as_array) {
        for e in arr {
            if let (Some(h), Some(r)) = (
                e.get("order_hash").and_then(Value::as_str),
                e.get("recv_ns").and_then(Value::as_i64),
            ) {
                let hex = h.trim_start_matches("0x");
                let mut key = [0u8; 16];
                let mut ok = hex.len() >= 32;
                for (i, k) in key.iter_mut().enumerate() {
                    match hex
                        .get(2 * i..2 * i + 2)
                        .and_then(|b| u8::from_str_radix(b, 16).ok())
                    {
                        Some(b) => *k = b,
                        None => ok = false,
                    }
                }
                if ok {
                    clob.insert(key, r);
                }
            }
        }
    }
    (md, clob)
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    args: &DemoArgs,
    run: &Run,
    mon: &Monitor,
    sup: &Supervisor,
    seconds: u64,
    elapsed: Duration,
    interrupted: bool,
    joined: u64,
    emulator_stats: Value,
    archive: Value,
    faults: &[Fault],
) -> Value {
    let mut events: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (&(v, s, k), &n) in &mon.events {
        let venue = ringbolt_bus::Venue::from_u8(v).map_or("unknown", |v| v.as_str());
        let kind = ringbolt_bus::RecordKind::from_u8(k).map_or("unknown", |k| k.as_str());
        *events
            .entry(venue.to_owned())
            .or_default()
            .entry(format!("{}/{kind}", mon.stream_name(v, s)))
            .or_insert(0) += n;
    }
    let mut streams: BTreeMap<String, &monitor::StreamStatus> = BTreeMap::new();
    for ((v, s), st) in &mon.status {
        let venue = ringbolt_bus::Venue::from_u8(*v).map_or("unknown", |v| v.as_str());
        streams.insert(format!("{venue}/{}", mon.stream_name(*v, *s)), st);
    }
    let gaps: u64 = mon.status.values().map(|s| s.gaps).sum();
    let children: BTreeMap<&str, supervisor::ChildReport> = sup.reports().into_iter().collect();
    let stages = mon.stage_percentiles();
    json!({
        "emulated": true,
        "mode": if args.spin { "spin" } else { "blocking" },
        "seconds_requested": seconds,
        "seconds_run": elapsed.as_secs_f64(),
        "interrupted": interrupted,
        "machine": crate::machine::Machine::current(),
        "segments": { "market": run.market, "decisions": run.decisions },
        "events_per_venue": mon.events_per_venue(),
        "events_per_source": mon.events_per_source(),
        "gap_statuses_per_venue": mon.gap_statuses,
        "events": events,
        "feed_streams": streams,
        "gaps": gaps,
        "market_epochs": mon.market_epochs,
        "observer_lost_records": mon.observer_lost,
        "decisions": {
            "total": mon.decisions_total,
            "fired": mon.decisions_fired,
            "fired_on_untrusted_book": mon.fired_on_untrusted_book,
        },
        "orders": {
            "submitted": mon.orders_submitted,
            "paper": mon.orders_paper,
            "transitions_by_state": mon.order_states,
            "rejections_by_class": mon.reject_classes,
            "http_statuses": mon.http_statuses,
        },
        "paper_exchange": {
            "transitions_by_state": mon.paper_states,
            "fills": mon.paper_fills,
            "settlements": mon.paper_settlements,
        },
        "latency_ns": stages,
        "tick_to_order": {
            "what": "Polymarket emulator writes the triggering frame -> CLOB emulator reads the order request off its socket (the read that delivered it, before TLS and HTTP/2); both CLOCK_REALTIME on this host",
            "orders_joined": joined,
            "percentiles_ns": stages.get(ringbolt_telemetry::stage::TICK_TO_ORDER),
        },
        "children": children,
        "faults": faults.iter().map(|f| json!({"spec": f.spec, "done": f.done})).collect::<Vec<_>>(),
        "emulator": emulator_stats,
        "archive": archive,
    })
}

fn print_summary(report: &Value) {
    println!("== ringbolt demo summary ({}) ==", report["mode"]);
    println!("ran {:.0} s", report["seconds_run"].as_f64().unwrap_or(0.0));
    if let Some(m) = report["events_per_source"].as_object() {
        for (v, n) in m {
            println!("  {v:<16} {n:>12} records");
        }
    }
    println!(
        "gaps {}  collector restarts seen (epochs) {}",
        report["gaps"], report["market_epochs"]
    );
    if let Some(cpu) = report["cpu"].as_object() {
        let per: Vec<String> = cpu
            .iter()
            .filter_map(|(name, v)| Some(format!("{name} {:.1}%", v["core_pct"].as_f64()?)))
            .collect();
        println!(
            "cpu (% of a core) {}  load {}",
            per.join("  "),
            cpu["load_avg"]
        );
    }
    println!(
        "decisions {} fired {} (on untrusted book: {})",
        report["decisions"]["total"],
        report["decisions"]["fired"],
        report["decisions"]["fired_on_untrusted_book"]
    );
    println!(
        "orders submitted {} (paper {}), transitions {}",
        report["orders"]["submitted"],
        report["orders"]["paper"],
        report["orders"]["transitions_by_state"]
    );
    let pnl = &report["pnl"]["total"];
    println!(
        "paper P&L {} USDC (realised {}): orders {} fills {} shares {} fees {} payout {}",
        pnl["pnl_usdc"],
        report["pnl"]["realised_usdc"],
        pnl["orders"],
        pnl["fills"],
        pnl["shares"],
        pnl["fees_usdc"],
        pnl["payout_usdc"]
    );
    if report["live"].is_object() {
        println!(
            "live fills {}, positions (1e-6 shares) {} vs emulator ledger {}: equal {}",
            report["live"]["fills"],
            report["live"]["positions_micro"],
            report["live"]["ledger_positions_micro"],
            report["live"]["positions_equal_ledger"]
        );
    }
    if let Some(st) = report["latency_ns"].as_object() {
        for (k, p) in st {
            println!(
                "  {k:<24} p50 {:>9} ns  p99 {:>9} ns  p99.9 {:>9} ns  (n={})",
                p["p50_ns"], p["p99_ns"], p["p999_ns"], p["samples"]
            );
        }
    }
    if let Some(rows) = report["stage_latency"]["stages"].as_array() {
        println!("per-stage latency from every process's .hlog dumps:");
        for r in rows {
            println!(
                "  {:<10} {:<24} p50 {:>9} ns  p99 {:>9} ns  max {:>11} ns  (n={})",
                r["process"].as_str().unwrap_or(""),
                r["stage"].as_str().unwrap_or(""),
                r["p50_ns"],
                r["p99_ns"],
                r["max_ns"],
                r["count"]
            );
        }
    }
    if let Some(c) = report["children"].as_object() {
        for (k, r) in c {
            println!("  child {k:<8} restarts {}", r["restarts"]);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn emulators_run_one_real_time_step_below_the_hot_threads() {
        assert_eq!(
            super::emulator_rt_priority(0),
            0,
            "normal class stays normal"
        );
        assert_eq!(super::emulator_rt_priority(20), 19);
        assert_eq!(
            super::emulator_rt_priority(1),
            1,
            "the lowest FIFO priority is 1"
        );
    }
}
