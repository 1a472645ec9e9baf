//! Helpers shared by the integration tests that build real archives of a synthetic market:
//! a `ringbolt features synth --publish` producer process on a bus segment, the archiver library
//! consuming it exactly as `ringbolt archive` does, the venue and CLOB emulators in-process (the
//! appliance binary has no `emulate`: that is `ringbolt-lab`'s), and clean-up guards.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringbolt_archive::{ArchiveConfig, Archiver};
use ringbolt_bus::Segment;
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};
use ringbolt_sim::EmulatorConfig;
use ringbolt_testkit::emulator::RunningEmulator;
use ringbolt_testkit::process::Reaper;

pub const BIN: &str = env!("CARGO_BIN_EXE_ringbolt");

/// Unlinks bus segments however the test ends.
pub struct Unlink(pub Vec<String>);
impl Drop for Unlink {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Segment::unlink(name);
        }
    }
}

/// Starts the emulators (`ringbolt-lab emulate` in-process, stopped however the test ends) with
/// the `ringbolt-lab emulate` configuration file at `config`.
pub fn emulate(config: &Path) -> RunningEmulator {
    let cfg = EmulatorConfig::load(config).unwrap();
    cfg.validate().unwrap();
    RunningEmulator::with_config(cfg, 2)
}

/// Starts `ringbolt features synth --publish <segment>`; the closure tells whether every record
/// of that stream (counted with the same generator in process) has been published.
pub fn spawn_synth(
    segment: &str,
    windows: u32,
    seed: u64,
    capacity: usize,
) -> (Reaper, impl Fn() -> bool) {
    let child = Command::new(BIN)
        .args(["features", "synth", "--publish", segment])
        .args([
            "--windows",
            &windows.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .args(["--capacity", &capacity.to_string(), "--linger-ms", "600000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let expected = SynthStream::new(SynthConfig {
        windows,
        seed,
        ..SynthConfig::default()
    })
    .filter(|i| matches!(i, SynthItem::Record(_)))
    .count() as u64;
    assert!(
        expected < capacity as u64,
        "the ring must hold the whole stream"
    );
    let seg = Segment::open_wait(segment, Duration::from_secs(60)).unwrap();
    (Reaper(child), move || seg.head(0) >= expected)
}

/// Archives `segments` into `root` with the archiver library until every ring is read to its
/// head and `finished()` holds, then commits.
pub fn archive_until(root: &Path, segments: &[String], finished: &dyn Fn() -> bool) {
    let mut archiver = Archiver::open(ArchiveConfig::new(root, segments.to_vec())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = finished();
        let taken = archiver.poll_once(65_536).unwrap();
        if taken == 0 && done && archiver.caught_up() {
            break;
        }
        if taken == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(
            Instant::now() < deadline,
            "archiver did not catch up: finished={done} archived={} cursors={:?}",
            archiver.archived(),
            archiver.cursors()
        );
    }
    archiver.flush().unwrap();
    archiver.shutdown();
}

/// Runs `ringbolt trade --config <config> [extra args]` to completion (it must succeed) and
/// returns its JSON summary (the last stdout line).
pub fn run_trade(config: &Path, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("trade")
        .args(extra)
        .arg("--config")
        .arg(config)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "ringbolt trade failed");
    serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap()
}

/// Starts `ringbolt --log info feeds --config <config>`, its stdout in `dir/feeds.out` and its
/// log in `dir/feeds.log` (returned), stopped however the test ends.
pub fn spawn_feeds(dir: &Path, config: &Path) -> (Reaper, std::path::PathBuf) {
    let log = dir.join("feeds.log");
    let child = Command::new(BIN)
        .args([
            "--log",
            "info",
            "feeds",
            "--config",
            config.to_str().unwrap(),
        ])
        .stdout(std::fs::File::create(dir.join("feeds.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("run ringbolt feeds");
    (Reaper(child), log)
}
