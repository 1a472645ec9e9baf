//! Helpers shared by the integration tests that build real archives of a synthetic market:
//! a `ringbolt features synth --publish` producer process on a bus segment, the archiver library
//! consuming it exactly as `ringbolt archive` does, the venue and CLOB emulators in-process (the
//! appliance binary has no `emulate`: that is `ringbolt-lab`'s), and clean-up guards.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringbolt_archive::{ArchiveConfig, Archiver};
use ringbolt_bus::Segment;
use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};
use ringbolt_sim::{Emulator, EmulatorConfig};

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

/// The emulators (`ringbolt-lab emulate` in-process), stopped however the test ends.
pub struct Emulated {
    rt: tokio::runtime::Runtime,
    emu: Option<Emulator>,
    /// The start-up line `ringbolt-lab emulate` prints: bound addresses, CA file, control URL.
    pub info: serde_json::Value,
}

impl Drop for Emulated {
    fn drop(&mut self) {
        if let Some(emu) = self.emu.take() {
            self.rt.block_on(emu.shutdown());
        }
    }
}

/// Starts the emulators with the `ringbolt-lab emulate` configuration file at `config`.
pub fn emulate(config: &Path) -> Emulated {
    let cfg = EmulatorConfig::load(config).unwrap();
    cfg.validate().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emu = rt.block_on(Emulator::start(cfg)).unwrap();
    let info = serde_json::to_value(&emu.info).unwrap();
    Emulated {
        rt,
        emu: Some(emu),
        info,
    }
}

/// Kills and reaps a child however the test ends.
pub struct Kill(pub Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ringbolt features synth --publish <segment>`; the closure tells whether every record
/// of that stream (counted with the same generator in process) has been published.
pub fn spawn_synth(
    segment: &str,
    windows: u32,
    seed: u64,
    capacity: usize,
) -> (Kill, impl Fn() -> bool) {
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
    (Kill(child), move || seg.head(0) >= expected)
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
