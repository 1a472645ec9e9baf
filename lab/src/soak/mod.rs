//! `ringbolt soak --minutes N`: the demo's processes with every venue source and the CLOB
//! behind the fault proxy (`ringbolt_sim::proxy`), a fault schedule covering every venue and the
//! CLOB, kill -9 of the collector, the trade process and the archiver at random moments (the
//! demo's supervisor restarts them), and `soak.json`: faults injected against gaps announced per
//! venue stream, reconnect times, RSS and fd slopes per process, per-interval stage latencies
//! (creep), archive rows against the bus counts and the replay parity of the whole archive.
//! `scripts/check-soak.py` fails on any violated condition.
//!
//! Routes: one proxy route per collector source's WebSocket (faulted), one per source's REST
//! endpoint (never faulted: a snapshot or Gamma request is not a stream), one for the CLOB.

mod measure;
mod report;
mod schedule;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use ringbolt_config::RingboltConfig;
use ringbolt_sim::proxy::{Proxy, Route};

use crate::demo::monitor::Monitor;
use crate::demo::sources::DEMO_SOURCES;
use crate::demo::supervisor::Supervisor;
use crate::demo::{self, DemoArgs, Ports, Run, STOP};

use self::measure::{IntervalStage, Trend};
use self::schedule::{Action, Event};

/// Options of `ringbolt soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Run length in minutes.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// Run length in seconds instead (short CI soaks).
    #[arg(long)]
    seconds: Option<u64>,
    /// Output directory (configs, logs, archive, soak.json).
    #[arg(long, default_value = "out/soak")]
    out: PathBuf,
    /// Seed of the emulators' market and of the fault schedule.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Seconds between RSS / fd samples and latency intervals.
    #[arg(long, default_value_t = 60)]
    sample_s: u64,
    /// Kills per process (collector, trade, archive); default: one per 20 minutes, at least one.
    #[arg(long)]
    kills_each: Option<u32>,
    /// No kill in the last this-many minutes, so every process's last incarnation is long enough
    /// to judge RSS and fds flat; default: a third of runs of 30 minutes or more, else 0.
    #[arg(long)]
    calm_tail_min: Option<u64>,
    /// The collector's `reconnect_after_ms` (how long a black hole takes to notice).
    #[arg(long, default_value_t = 12_000)]
    reconnect_after_ms: u64,
    /// Skip the replay parity check at the end.
    #[arg(long)]
    no_replay: bool,
    /// Run no soak: redo the replay parity of the finished soak in `--out` (its archive) with
    /// this binary and rewrite the `replay` section of its `soak.json`.
    #[arg(long, conflicts_with = "no_replay")]
    replay_only: bool,
}

/// The soak's proxy routes and what they front.
struct Routes {
    proxy: Arc<Proxy>,
    /// Faulted routes (source WebSockets, `clob`), in schedule order.
    faulted: Vec<String>,
    /// Source name → bus venue name.
    venue_of: BTreeMap<String, &'static str>,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn start_proxy(ports: &Ports) -> Result<Routes> {
    let mut routes = Vec::new();
    let mut venue_of = BTreeMap::new();
    for d in DEMO_SOURCES {
        let upstream = loopback(
            *ports
                .venues
                .0
                .get(&d.venue)
                .with_context(|| format!("{}: venue not emulated", d.source))?,
        );
        for name in [d.source.to_owned(), format!("{}_rest", d.source)] {
            routes.push(Route {
                name,
                listen: loopback(0),
                upstream,
            });
        }
        venue_of.insert(d.source.to_owned(), d.venue.name());
    }
    routes.push(Route {
        name: "clob".into(),
        listen: loopback(0),
        upstream: loopback(ports.clob),
    });
    let proxy = Arc::new(Proxy::start(routes)?);
    let mut faulted: Vec<String> = DEMO_SOURCES.iter().map(|d| d.source.to_owned()).collect();
    faulted.push("clob".into());
    Ok(Routes {
        proxy,
        faulted,
        venue_of,
    })
}

/// Starts the proxy on ports none of the demo's children will bind (its listeners take
/// ephemeral ports after the children's were picked, so a clash is possible: retried).
fn start_proxy_clear_of(ports: &Ports) -> Result<Routes> {
    let taken: std::collections::BTreeSet<u16> = ports.all().collect();
    for _ in 0..8 {
        let routes = start_proxy(ports)?;
        let clash = routes
            .proxy
            .route_names()
            .filter_map(|r| routes.proxy.listen_addr(r))
            .any(|a| taken.contains(&a.port()));
        if !clash {
            return Ok(routes);
        }
    }
    anyhow::bail!("the proxy's ports kept clashing with the demo's")
}

/// Points `url`'s `127.0.0.1:<port>` at the proxy route `route`.
fn via(proxy: &Proxy, url: &str, route: &str) -> Result<String> {
    let addr = proxy
        .listen_addr(route)
        .with_context(|| format!("no proxy route {route}"))?;
    let rest = url
        .split_once("127.0.0.1:")
        .map(|(scheme, tail)| (scheme, tail.find('/').map_or("", |i| &tail[i..])))
        .with_context(|| format!("{url}: not a loopback URL"))?;
    Ok(format!("{}{addr}{}", rest.0, rest.1))
}

/// The appliance's configuration with every source and the CLOB behind the proxy.
fn edit_config(cfg: &mut RingboltConfig, proxy: &Proxy, reconnect_after_ms: u64) -> Result<()> {
    cfg.feeds.reconnect_after_ms = reconnect_after_ms;
    // Fewer, larger Parquet parts over a long run (the demo flushes every 500 ms).
    if let Some(a) = &mut cfg.archive {
        a.flush_interval_ms = 5_000;
    }
    for (name, s) in &mut cfg.feeds.sources {
        if let Some(u) = &s.url {
            s.url = Some(via(proxy, u, name)?);
        }
        if let Some(u) = &s.rest_url {
            s.rest_url = Some(via(proxy, u, &format!("{name}_rest"))?);
        }
    }
    cfg.exec.port = proxy.listen_addr("clob").context("no clob route")?.port();
    Ok(())
}

/// What the soak's loop collects.
#[derive(Default)]
struct Observed {
    /// Schedule events done, with the connections each hit.
    done: Vec<(Event, u64)>,
    trends: BTreeMap<&'static str, Trend>,
    intervals: Vec<(f64, BTreeMap<&'static str, IntervalStage>)>,
    totals: BTreeMap<&'static str, ringbolt_telemetry::LatencyHistogram>,
}

fn run_action(a: &Action, routes: &Routes, sup: &Supervisor) -> u64 {
    match a {
        Action::Proxy(route, fault) => match routes.proxy.inject(route, *fault) {
            Ok(hit) => hit,
            Err(e) => {
                tracing::warn!("soak fault on {route}: {e}");
                0
            }
        },
        Action::Kill(child) => {
            let pid = sup.pid(child);
            if pid == 0 {
                return 0;
            }
            // SAFETY: kill(2) on a child pid the supervisor spawned and has not reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            1
        }
    }
}

/// Samples every supervised child's RSS and fds, and closes a latency interval.
fn sample_all(obs: &mut Observed, sup: &Supervisor, mon: &mut Monitor, t_s: f64) {
    for (name, r) in sup.reports() {
        if let Some(s) = measure::sample(r.pid, t_s) {
            obs.trends.entry(name).or_default().samples.push(s);
        }
    }
    let mut iv = BTreeMap::new();
    for (stage, h) in &mut mon.hist {
        if h.is_empty() {
            continue;
        }
        iv.insert(
            *stage,
            IntervalStage {
                samples: h.len(),
                p50_ns: h.value_at_quantile(0.5),
                p99_ns: h.value_at_quantile(0.99),
            },
        );
        let total = obs
            .totals
            .entry(*stage)
            .or_insert_with(ringbolt_telemetry::latency_histogram);
        let _ = total.add(&*h);
        h.reset();
    }
    obs.intervals.push((t_s, iv));
}

fn watch(
    args: &SoakArgs,
    seconds: u64,
    routes: &Routes,
    sup: &mut Supervisor,
    mon: &mut Monitor,
    events: &[Event],
) -> Result<(Observed, Duration)> {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(seconds);
    let mut obs = Observed::default();
    let mut next = 0;
    let mut last_sample = t0;
    let mut last_line = t0;
    sample_all(&mut obs, sup, mon, 0.0);
    while Instant::now() < deadline && !STOP.load(Ordering::Relaxed) {
        let n = mon.poll(65_536);
        sup.tick();
        while next < events.len() && t0.elapsed() >= events[next].at {
            let hit = run_action(&events[next].action, routes, sup);
            obs.done.push((events[next].clone(), hit));
            next += 1;
        }
        if last_sample.elapsed() >= Duration::from_secs(args.sample_s.max(1)) {
            last_sample = Instant::now();
            sample_all(&mut obs, sup, mon, t0.elapsed().as_secs_f64());
        }
        if last_line.elapsed() >= Duration::from_secs(30) {
            last_line = Instant::now();
            eprintln!(
                "[{:>5}/{seconds}s] faults {}/{} decisions {} markets epochs {} observer lost {}",
                t0.elapsed().as_secs(),
                next,
                events.len(),
                mon.decisions_total,
                mon.market_epochs,
                mon.observer_lost
            );
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    sample_all(&mut obs, sup, mon, t0.elapsed().as_secs_f64());
    for t in obs.trends.values_mut() {
        t.fit();
    }
    Ok((obs, t0.elapsed()))
}

/// `ringbolt replay --check-parity` over the soak's archive for one decision epoch (the first
/// when `None`): (exit code, last stdout line).
fn replay_epoch(out: &Path, epoch: Option<u64>) -> Result<(i32, serde_json::Value)> {
    let bin = demo::appliance_binary()?;
    let tag = epoch.map_or_else(String::new, |e| format!("-{e}"));
    let json_path = out.join(format!("replay{tag}.json"));
    let stdout = std::fs::File::create(&json_path)?;
    let stderr = std::fs::File::create(out.join("logs").join(format!("replay{tag}.log")))?;
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["replay", "--no-progress", "--check-parity", "--archive"])
        .arg(out.join("archive"));
    if let Some(e) = epoch {
        cmd.args(["--epoch", &e.to_string()]);
    }
    let status = cmd
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .context("running ringbolt replay")?;
    let text = std::fs::read_to_string(&json_path).unwrap_or_default();
    let last = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok((status.code().unwrap_or(-1), last))
}

/// Replay parity for every trade session (decision epoch) of the archive: the first replay
/// names the epochs, each further one is replayed with `--epoch`. A session killed -9 and
/// restarted re-decides from the oldest record its segment still holds.
fn replay_parity(out: &Path) -> Result<ReplayRuns> {
    let first = replay_epoch(out, None)?;
    let epochs: Vec<u64> = first.1["decision_epochs"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
        .unwrap_or_default();
    let mut later = Vec::new();
    for e in epochs.iter().skip(1) {
        let (code, summary) = replay_epoch(out, Some(*e))?;
        later.push((*e, code, summary));
    }
    Ok((first, later))
}

/// The first epoch's replay (exit code, summary) and each later epoch's (epoch, code, summary).
type ReplayRuns = ((i32, serde_json::Value), Vec<(u64, i32, serde_json::Value)>);

/// `--replay-only`: the finished soak's replay parity again, written into its `soak.json`.
fn replay_again(out: &Path) -> Result<()> {
    let path = out.join("soak.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut soak: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    soak["replay"] = report::replay_json(&replay_parity(out)?);
    std::fs::write(&path, serde_json::to_string_pretty(&soak)?)
        .with_context(|| format!("writing {}", path.display()))?;
    report::print_summary(&soak);
    eprintln!("soak report's replay rewritten in {}", path.display());
    Ok(())
}

/// Runs `ringbolt soak`.
pub fn run(args: &SoakArgs) -> Result<()> {
    if args.replay_only {
        return replay_again(&args.out);
    }
    let seconds = args.seconds.unwrap_or(args.minutes * 60);
    let out = args.out.clone();
    demo::prepare_out(&out)?;
    let ports = demo::free_ports()?;
    let run = Run::new(&out, &ports);
    demo::install_stop_handler();
    let routes = start_proxy_clear_of(&ports)?;
    let kills_each = args
        .kills_each
        .unwrap_or_else(|| u32::try_from(seconds / 1200).unwrap_or(1).max(1));
    let blackhole_s = args.reconnect_after_ms.div_ceil(1000) + 10;
    let calm_tail_s = args
        .calm_tail_min
        .map_or_else(|| schedule::default_calm_tail_s(seconds), |m| m * 60);
    let events = schedule::build(
        &routes.faulted,
        schedule::Plan {
            total_s: seconds,
            kills_each,
            calm_tail_s,
            blackhole_s,
            seed: args.seed,
        },
    );
    let dargs = DemoArgs::for_run(&out, args.seed);
    let proxy = Arc::clone(&routes.proxy);
    let reconnect_after_ms = args.reconnect_after_ms;
    let mut sup = demo::start_children_with(&dargs, &run, &ports, &move |c| {
        edit_config(c, &proxy, reconnect_after_ms)
    })?;
    let mut mon = Monitor::new(&run.market, &run.decisions);
    mon.status_log = Some(Vec::new());
    eprintln!(
        "ringbolt soak: {seconds} s, {} scheduled faults and kills over {} routes, output in {}",
        events.len(),
        routes.faulted.len(),
        out.display()
    );
    let (obs, elapsed) = watch(args, seconds, &routes, &mut sup, &mut mon, &events)?;
    let (emulator, _) = demo::emulator_views(&run);
    demo::stop_children(&dargs, &run, &mut sup, &mut mon);
    let replay = if args.no_replay {
        None
    } else {
        Some(replay_parity(&out)?)
    };
    let ctx = report::Context {
        seconds,
        elapsed,
        seed: args.seed,
        routes: &routes,
        sup: &sup,
        mon: &mon,
        obs: &obs,
        emulator,
        replay,
    };
    let soak = report::build(&ctx, &out);
    let path = out.join("soak.json");
    std::fs::write(&path, serde_json::to_string_pretty(&soak)?)
        .with_context(|| format!("writing {}", path.display()))?;
    report::print_summary(&soak);
    eprintln!("soak report written to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_pointed_at_the_proxy() {
        let ports = demo::free_ports().unwrap();
        let routes = start_proxy(&ports).unwrap();
        let p = routes.proxy.listen_addr("coinbase").unwrap();
        assert_eq!(
            via(&routes.proxy, "wss://127.0.0.1:4000/ws", "coinbase").unwrap(),
            format!("wss://{p}/ws")
        );
        assert!(via(&routes.proxy, "wss://example.com/ws", "coinbase").is_err());
        assert_eq!(routes.faulted.len(), DEMO_SOURCES.len() + 1);
        assert_eq!(routes.venue_of["bybit_linear"], "bybit");
    }
}
