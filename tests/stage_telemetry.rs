#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing
//! Per-stage latency telemetry from every process, end to end: `ringbolt feeds` (Coinbase from
//! the emulator), `ringbolt trade` with exec on the CLOB emulator (paper orders over real TLS +
//! HTTP/2) over a synthetic market, and `ringbolt archive` of both segments, each with
//! `hlog_dir` and `metrics_addr`. Each process's `/metrics` is scraped while it runs (the
//! `ringbolt_stage_latency_ns` summary family), and after they stop every `.hlog` file is decoded
//! by the Python `hdrh` package and by our reader, line by line, and the figures compared.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringbolt_telemetry::read_hlog;
use ringbolt_telemetry::stages::{StageTable, archive, collector, trade};
use ringbolt_testkit::emulator::RunningEmulator;
use ringbolt_testkit::process::{Reaper, run_ok};
use ringbolt_testkit::{fs, http};

mod common;

use common::{BIN, Unlink};

const WAIT: Duration = Duration::from_secs(120);

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn hlog_keys(dir: &Path, metrics: SocketAddr) -> String {
    format!(
        "hlog_dir = \"{}\"\nhlog_interval_s = 1\nmetrics_addr = \"{metrics}\"\n",
        dir.display()
    )
}

/// The `_count` of `stage` in a `/metrics` text (`None` when the line is missing).
fn count_of(text: &str, process: &str, stage: &str) -> Option<u64> {
    let prefix =
        format!("ringbolt_stage_latency_ns_count{{process=\"{process}\",stage=\"{stage}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

/// Scrapes `addr` until every stage of `stages` has a count (a process's recorders hand their
/// intervals over every second); checks the family's shape on the way.
fn scrape_until(addr: SocketAddr, table: StageTable, stages: &[&str]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        // Not listening yet: the process is still starting.
        if http::status(addr, "/metrics") == Some(200) {
            let text = http::get(addr, "/metrics").body;
            assert!(
                text.contains("# TYPE ringbolt_stage_latency_ns summary\n"),
                "{text}"
            );
            for stage in table.stages {
                assert!(
                    count_of(&text, table.process, stage).is_some(),
                    "{stage}: {text}"
                );
                for q in ["0.5", "0.9", "0.99", "0.999"] {
                    let line = format!(
                        "ringbolt_stage_latency_ns{{process=\"{}\",stage=\"{stage}\",quantile=\"{q}\"}} ",
                        table.process
                    );
                    assert!(text.contains(&line), "{line}: {text}");
                }
            }
            if stages
                .iter()
                .all(|s| count_of(&text, table.process, s).unwrap_or(0) > 0)
            {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{}: stages {stages:?} never counted on /metrics",
            table.process
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write_key(dir: &Path) -> PathBuf {
    let path = dir.join("key");
    fs::write(
        dir,
        "key",
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n",
    );
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&path, perms).unwrap();
    path
}

fn spawn(args: &[&str], config: &Path, log: &Path) -> Reaper {
    Reaper(
        Command::new(BIN)
            .args(["--log", "info"])
            .args(args)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn stop(mut child: Reaper) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

fn wait_exit(mut child: Reaper, what: &str, log: &Path) {
    let status = child.0.wait().unwrap();
    assert!(
        status.success(),
        "{what} failed: {status:?}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn every_process_dumps_its_stages_as_hlog_and_serves_them_on_metrics() {
    let pid = std::process::id();
    let dir = fs::tempdir("rb-stage-telemetry", "run");
    let hlog = dir.join("hlog");
    let emu = RunningEmulator::start("stage-telemetry", &["clob", "coinbase"], |_| {});
    let market = format!("rb-test-st-mkt-{pid}");
    let decide = format!("rb-test-st-dec-{pid}");
    let feeds_seg = format!("rb-test-st-feeds-{pid}");
    let _unlink = Unlink(vec![market.clone(), decide.clone(), feeds_seg.clone()]);
    let ca = emu.info.ca_pem.clone();

    // The collector on the emulated Coinbase.
    let feeds_metrics = free_addr();
    let feeds_cfg = fs::write(
        &dir,
        "feeds.toml",
        format!(
            "[feeds]\nsegment = \"{feeds_seg}\"\ncapacity = 65536\ninstrument_capacity = 64\n{}\
             [feeds.sources.coinbase]\nurl = \"wss://{}/\"\nsymbols = [\"BTC-USD\"]\n\
             ca_file = \"{ca}\"\nca_only = true\n",
            hlog_keys(&hlog, feeds_metrics),
            emu.info.venues["coinbase"].addr
        ),
    );
    let feeds = spawn(&["feeds"], &feeds_cfg, &dir.join("feeds.log"));

    // A synthetic market, the trade process with exec (paper orders on the CLOB emulator) and
    // the archiver of both segments.
    let _synth = Reaper(
        Command::new(BIN)
            .args(["features", "synth", "--publish", &market])
            .args(["--windows", "2", "--seed", "21", "--speed", "40"])
            .args(["--capacity", "262144", "--linger-ms", "600000"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let key = write_key(&dir);
    let trade_metrics = free_addr();
    let archive_metrics = free_addr();
    let config = fs::write(
        &dir,
        "ringbolt.toml",
        format!(
            "[trade]\ninputs = [\"{market}\"]\noutput = \"{decide}\"\nevaluator = \"native\"\n\
             start = \"oldest\"\nexit_when_idle_ms = 5000\nopen_timeout_s = 60\n\
             output_capacity = 262144\n{}\n[exec]\nenabled = true\nhost = \"localhost\"\n\
             port = {}\nca_file = \"{ca}\"\nkey_file = \"{}\"\n\n[archive]\nroot = \"{}\"\n\
             segments = [\"{market}\", \"{decide}\"]\nflush_interval_ms = 200\n\
             min_free_bytes = 1048576\nopen_timeout_ms = 60000\n{}",
            hlog_keys(&hlog, trade_metrics),
            emu.clob_port(),
            key.display(),
            dir.join("archive").display(),
            hlog_keys(&hlog, archive_metrics),
        ),
    );
    let trade_log = dir.join("trade.log");
    let trade_p = spawn(&["trade"], &config, &trade_log);
    let archive_p = spawn(&["archive"], &config, &dir.join("archive.log"));

    let t = scrape_until(trade_metrics, trade::TABLE, &["bus_to_decision"]);
    assert!(t.contains("process=\"trade\""), "{t}");
    scrape_until(archive_metrics, archive::TABLE, &["bus_to_durable"]);
    scrape_until(
        feeds_metrics,
        collector::TABLE,
        &["recv_to_parsed", "parsed_to_bus", "recv_to_bus"],
    );
    wait_exit(trade_p, "ringbolt trade", &trade_log);
    stop(archive_p);
    stop(feeds);

    // Every process's dumps, decoded by both readers.
    let files = ringbolt_telemetry::report::hlog_files(&hlog).unwrap();
    let mut totals: std::collections::BTreeMap<String, u64> = Default::default();
    for file in &files {
        let ours = read_hlog(file).unwrap();
        let process = ringbolt_telemetry::report::process_of(file);
        for i in &ours {
            *totals
                .entry(format!("{process}/{}", i.tag.as_deref().unwrap()))
                .or_default() += i.histogram.len();
        }
        let Some(theirs) = ringbolt_testkit::hdrh::decode(file) else {
            continue;
        };
        assert_eq!(theirs.len(), ours.len(), "{}", file.display());
        // Tag, count, max and hdrh's percentiles (its rank rule) from our counts, exactly.
        for (py, i) in theirs.iter().zip(&ours) {
            ringbolt_testkit::hdrh::assert_same(py, i.tag.as_deref(), &i.histogram);
        }
    }
    for stage in [
        "collector/recv_to_parsed",
        "collector/parsed_to_bus",
        "collector/recv_to_bus",
        "trade/bus_to_decision",
        "trade/decision_to_order_bytes",
        "trade/order_bytes_to_wire",
        "archive/bus_to_durable",
    ] {
        assert!(
            totals.get(stage).copied().unwrap_or(0) > 0,
            "{stage}: {totals:?}"
        );
    }
    let rtt: u64 = totals
        .iter()
        .filter(|(k, _)| k.starts_with("trade/order_rtt_"))
        .map(|(_, n)| n)
        .sum();
    assert!(rtt > 0, "order round trips per class: {totals:?}");
    assert!(
        totals["trade/order_bytes_to_wire"] <= totals["trade/decision_to_order_bytes"],
        "an order reaches the wire only once its bytes were ready: {totals:?}"
    );
    // The same merged table from the CLI.
    let out = run_ok(
        Command::new(BIN)
            .args(["report", "latency", "--dir"])
            .arg(&hlog),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for stage in [
        "recv_to_parsed",
        "bus_to_decision",
        "order_rtt_4xx",
        "bus_to_durable",
    ] {
        assert!(text.contains(stage), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
