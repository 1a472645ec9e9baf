#![allow(clippy::expect_used, clippy::unwrap_used)]
//! End-to-end tests of `ringbolt archive` and `ringbolt report archive|latency`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ringbolt_archive::synth::Synth;
use ringbolt_bus::{Publisher, Record, Segment, SegmentConfig, now_ns};
use ringbolt_telemetry::stages::{collector, trade};
use ringbolt_telemetry::{HlogSettings, Telemetry};
use ringbolt_testkit::process::{run_fails, run_ok};
use ringbolt_testkit::{fs, http};

fn ringbolt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringbolt"))
}

fn tempdir(name: &str) -> PathBuf {
    fs::tempdir("rb-cli-archive", name)
}

/// A fresh directory and a fresh bus segment (its name and publisher), both named after `tag`.
fn scratch(tag: &str) -> (PathBuf, String, Publisher) {
    let segment = fs::unique("rb-cli-archive", tag);
    let publisher = Publisher::create(&segment, SegmentConfig::default()).unwrap();
    (tempdir(tag), segment, publisher)
}

fn write_config(dir: &Path, segment: &str, extra: &str) -> PathBuf {
    let root = dir.join("archive");
    fs::write(
        dir,
        "ringbolt.toml",
        format!(
            "[archive]\nroot = \"{}\"\nsegments = [\"{segment}\"]\nflush_interval_ms = 200\nmin_free_bytes = 1048576\nhlog_interval_s = 1\n{extra}",
            root.display()
        ),
    )
}

#[test]
fn archive_process_archives_a_live_segment_and_the_reports_read_it() {
    let (dir, segment, publisher) = scratch("live");
    let mut synth = Synth::new(4, &publisher).unwrap();
    let mut writer = publisher.writer(0).unwrap();
    let config = write_config(&dir, &segment, "");
    let mut child = ringbolt()
        .args(["archive", "--config"])
        .arg(&config)
        .spawn()
        .unwrap();
    let mut record = Record::zeroed();
    let total = 30_000u64;
    for _ in 0..total {
        synth.next_record(now_ns(), &mut record);
        writer.publish(&record);
        if writer.next_seq().is_multiple_of(1000) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Wait until the archiver's cursor reaches the head, then stop it with SIGTERM.
    let deadline = Instant::now() + Duration::from_secs(60);
    while publisher.slowest_consumer(0) != Some(writer.next_seq()) {
        assert!(Instant::now() < deadline, "archiver did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "archiver exited with {status}");
    drop(publisher);
    let _ = Segment::unlink(&segment);

    let root = dir.join("archive");
    // The decision config of the file the archiver loaded, for `ringbolt replay`.
    let recorded = ringbolt_archive::recorded::recorded_decision_config(&root)
        .unwrap()
        .expect("a recorded decision config");
    assert!(recorded.text.contains("[trade]"), "{}", recorded.text);
    let svg = dir.join("events.svg");
    let output = run_ok(
        ringbolt()
            .args(["report", "archive", "--json", "--root"])
            .arg(&root)
            .arg("--plot")
            .arg(&svg),
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let days = report["days"].as_object().unwrap();
    let mut bus_rows = 0;
    for day in days.values() {
        for (table, venues) in day["tables"].as_object().unwrap() {
            for v in venues.as_object().unwrap().values() {
                if table != "gaps" {
                    bus_rows += v["rows"].as_u64().unwrap();
                }
            }
        }
        assert!(day["coverage"]["archive"]["windows"].as_u64().unwrap() >= 1);
        assert!(
            day["gaps"].as_object().unwrap().is_empty(),
            "{}",
            day["gaps"]
        );
    }
    // Every bus record plus the archiver's own heartbeat row per window it ran in.
    assert!((total + 1..=total + 2).contains(&bus_rows), "{bus_rows}");
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.contains("<svg") && svg_text.contains("polymarket"));

    let table = run_ok(ringbolt().args(["report", "archive", "--root"]).arg(&root));
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains("book_changes") && text.contains("coverage archive"),
        "{text}"
    );

    // The archiver's own latency dump (bus publish → durable) is readable by the report.
    let hlogs: Vec<PathBuf> = std::fs::read_dir(root.join("_ringbolt/hlog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(hlogs.len(), 1);
    let output = run_ok(
        ringbolt()
            .args(["report", "latency", "--json"])
            .args(&hlogs),
    );
    let latency: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let row = &latency["stages"][0];
    assert_eq!(
        (&row["process"], &row["stage"]),
        (&"archive".into(), &"bus_to_durable".into())
    );
    // Every archived bus record was made durable once, with the archiver's heartbeat rows.
    let durable = row["count"].as_u64().unwrap();
    assert!(
        (total..=total + 2).contains(&durable),
        "{durable} for {total}: {row}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_latency_merges_every_process_dump_in_pipeline_order_and_plots() {
    let dir = tempdir("latency");
    let settings = HlogSettings {
        dir: Some(dir.join("hlog")),
        interval: Duration::from_secs(3600),
        ..HlogSettings::default()
    };
    // The trade process first (its rows must still come after the collector's).
    let trade_t = Telemetry::start(trade::TABLE, settings.clone()).unwrap();
    let mut r = trade_t.recorder();
    for interval in 0..2u64 {
        for i in 0..10_000u64 {
            r.record(trade::BUS_TO_DECISION, 1_000 + i);
            r.record(trade::ORDER_RTT, (interval + 1) * 20_000 + i % 100);
        }
        trade_t.end_interval();
        while !r.maybe_rotate() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    drop(r);
    trade_t.finish().unwrap();
    let collector_t = Telemetry::start(collector::TABLE, settings).unwrap();
    let mut r = collector_t.recorder();
    for i in 0..500u64 {
        r.record(collector::RECV_TO_BUS, 3_000 + i);
    }
    drop(r);
    collector_t.finish().unwrap();

    let svg = dir.join("pct.svg");
    let output = run_ok(
        ringbolt()
            .args(["report", "latency", "--json", "--dir"])
            .arg(&dir)
            .arg("--plot")
            .arg(&svg),
    );
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = v["stages"].as_array().unwrap();
    let names: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["process"].as_str().unwrap(),
                r["stage"].as_str().unwrap()
            )
        })
        .collect();
    let expected: Vec<String> = [collector::TABLE, trade::TABLE]
        .iter()
        .flat_map(|t| t.stages.iter().map(move |s| format!("{}/{s}", t.process)))
        .collect();
    assert_eq!(
        names, expected,
        "every stage of both processes, in pipeline order"
    );
    let row = |name: &str| &rows[names.iter().position(|n| n == name).unwrap()];
    let decision = row("trade/bus_to_decision");
    assert_eq!(decision["count"], 20_000);
    let p50 = decision["p50_ns"].as_u64().unwrap();
    assert!((5_990..=6_010).contains(&p50), "{p50}");
    let rtt = row("trade/order_rtt_2xx");
    let max = rtt["max_ns"].as_u64().unwrap();
    assert!((40_099..=40_140).contains(&max), "{max}");
    for key in ["p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"] {
        assert!(rtt[key].is_u64(), "{key}");
    }
    assert_eq!(row("collector/recv_to_bus")["count"], 500);
    assert_eq!(row("trade/cancel_rtt_lost")["count"], 0);
    assert!(
        std::fs::read_to_string(&svg)
            .unwrap()
            .contains("trade/order_rtt_2xx")
    );
    let text =
        String::from_utf8(run_ok(ringbolt().args(["report", "latency", "--dir"]).arg(&dir)).stdout)
            .unwrap();
    assert!(text.starts_with("stage "), "{text}");
    assert!(text.contains("recv_to_parsed"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_configs_and_the_disk_guard_are_clear_errors() {
    let dir = tempdir("bad");
    let stderr = run_fails(
        ringbolt()
            .args(["archive", "--config"])
            .arg(dir.join("nope.toml")),
    );
    assert!(stderr.contains("cannot read config"), "{stderr}");

    let no_section = dir.join("x.toml");
    std::fs::write(&no_section, "[trade]\n").unwrap();
    let stderr = run_fails(ringbolt().args(["archive", "--config"]).arg(&no_section));
    assert!(stderr.contains("missing [archive] section"), "{stderr}");
    // One rule for unknown keys, in every section of the shared file.
    std::fs::write(&no_section, "[bus]\n").unwrap();
    let stderr = run_fails(ringbolt().args(["archive", "--config"]).arg(&no_section));
    assert!(stderr.contains("x.toml: unknown key `bus`"), "{stderr}");

    let guard = write_config(&dir, "rb-never-exists", "")
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string(&guard).unwrap().replace(
        "min_free_bytes = 1048576",
        "min_free_bytes = 18446744073709551615",
    );
    std::fs::write(&guard, text).unwrap();
    let stderr = run_fails(ringbolt().args(["archive", "--config", &guard]));
    assert!(
        stderr.contains("disk guard") && stderr.contains("min_free_bytes"),
        "{stderr}"
    );

    let stderr = run_fails(
        ringbolt()
            .args(["report", "archive", "--root"])
            .arg(dir.join("absent")),
    );
    assert!(stderr.contains("is not a directory"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET /healthz` on `addr`: the status code, or `None` when nothing answered.
fn healthz(addr: std::net::SocketAddr) -> Option<u16> {
    http::status(addr, "/healthz")
}

/// Kills the child and removes the test's files however the test ends.
struct Cleanup {
    child: std::process::Child,
    dir: PathBuf,
    segment: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Segment::unlink(&self.segment);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The ops contract (docs/runbook.md): `health_addr` serves `/healthz`, `READY=1` comes once it
/// answers, `WATCHDOG=1` follows the run loop. The stall is real: a FIFO where the next flush
/// writes its commit record (`_ringbolt/.state.json.tmp`) blocks that flush in `open(2)`, as a
/// hung filesystem would, while the health and watchdog threads keep running.
#[test]
fn archive_serves_healthz_and_feeds_the_watchdog_from_its_loop_until_the_loop_stalls() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let (dir, segment, publisher) = scratch("health");
    let mut synth = Synth::new(4, &publisher).unwrap();
    let mut writer = publisher.writer(0).unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = write_config(
        &dir,
        &segment,
        &format!("health_addr = \"{addr}\"\nhealth_stale_ms = 500\n"),
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("flush_interval_ms = 200", "flush_interval_ms = 50");
    std::fs::write(&config, text).unwrap();
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let child = ringbolt()
        .args(["archive", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "100000")
        .spawn()
        .unwrap();
    let cleanup = Cleanup {
        child,
        dir: dir.clone(),
        segment: segment.clone(),
    };
    let mut buf = [0u8; 64];
    let mut next_message = |timeout: Duration| -> Option<String> {
        notify.set_read_timeout(Some(timeout)).unwrap();
        let n = notify.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    };

    // READY=1 is the first notification, and the endpoint already answers when it arrives.
    assert_eq!(
        next_message(Duration::from_secs(60)).as_deref(),
        Some("READY=1")
    );
    assert_eq!(healthz(addr), Some(200), "READY=1 before /healthz answered");

    // While records flow the loop beats: healthy, and the watchdog keeps notifying.
    let mut record = Record::zeroed();
    for _ in 0..2_000 {
        synth.next_record(now_ns(), &mut record);
        writer.publish(&record);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while publisher.slowest_consumer(0) != Some(writer.next_seq()) {
        assert!(Instant::now() < deadline, "archiver did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(healthz(addr), Some(200));
    assert_eq!(
        next_message(Duration::from_secs(10)).as_deref(),
        Some("WATCHDOG=1")
    );
    // A flush has committed (the commit record exists), so the loop is past start-up.
    let state = dir.join("archive/_ringbolt/state.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !state.exists() {
        assert!(Instant::now() < deadline, "no flush committed");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Stall the loop inside a flush: the next commit blocks opening the FIFO.
    let fifo = dir.join("archive/_ringbolt/.state.json.tmp");
    let c_fifo = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c_fifo` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    // Wait for the stall to be reported: /healthz 503 and then no WATCHDOG=1 for a whole second
    // (20 watchdog periods). A 503 seen during a merely slow flush (fsync on a loaded disk) is
    // followed by beats again, so the wait restarts; only a permanent stall ends it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "/healthz or the watchdog kept reporting a stalled loop as alive"
        );
        if healthz(addr) != Some(503) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        while next_message(Duration::from_millis(1)).is_some() {}
        if next_message(Duration::from_secs(1)).is_none() && healthz(addr) == Some(503) {
            break;
        }
    }
    drop(cleanup);
    drop(publisher);
}
