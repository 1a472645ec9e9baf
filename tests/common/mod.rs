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

/// Names instrument ids `#<id>` (for rewriting archive parts in tests).
struct NumberNames;
impl ringbolt_archive::tables::InstrumentNames for NumberNames {
    fn name(&mut self, id: u32) -> std::sync::Arc<str> {
        format!("#{id}").into()
    }
}

/// Tampers with an archive: rewrites the window of `table` (venue `internal`) that holds
/// `target` (one of `rows`, the table's rows as read) with `edit` applied to the target record,
/// replacing that window's part files.
pub fn tamper(
    root: &Path,
    table: ringbolt_archive::tables::Table,
    segment: &str,
    rows: &[ringbolt_archive::reader::Row],
    target: ringbolt_archive::reader::Row,
    edit: impl FnOnce(&mut ringbolt_bus::Record),
) {
    use ringbolt_archive::layout::Window;
    let window = Window::of_ns(target.record.publish_ts_ns);
    let mut records: Vec<_> = rows
        .iter()
        .filter(|r| Window::of_ns(r.record.publish_ts_ns) == window)
        .map(|r| r.record)
        .collect();
    if let Some(r) = records.iter_mut().find(|r| **r == target.record) {
        edit(r);
    }
    let dir = window.dir(root, table.name(), "internal");
    for part in ringbolt_archive::report::list_parts(root).unwrap() {
        if part.path.parent() == Some(dir.as_path()) {
            std::fs::remove_file(&part.path).unwrap();
        }
    }
    let source = ringbolt_archive::tables::Source {
        segment: segment.to_owned(),
        ring: target.ring,
        epoch: target.epoch,
    };
    let (batch, _) =
        ringbolt_archive::tables::build_batch(table, &source, &records, &mut NumberNames).unwrap();
    let props = ringbolt_archive::writer::properties(table, 3, Vec::new()).unwrap();
    ringbolt_archive::writer::write_file(&dir.join("part-999999.parquet"), &batch, props).unwrap();
}

/// `ringbolt replay --check-parity --no-progress --archive <archive> [--config <config>]`:
/// (success, the JSON summary, stderr).
pub fn replay_check_parity(
    archive: &Path,
    config: Option<&Path>,
) -> (bool, serde_json::Value, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["replay", "--check-parity", "--no-progress", "--archive"])
        .arg(archive);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let summary = serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap();
    (
        out.status.success(),
        summary,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The feed states published for `venue`'s `stream` in `recs`, in bus order.
pub fn feed_states(
    recs: &[ringbolt_bus::Record],
    venue: ringbolt_bus::Venue,
    stream: u8,
) -> Vec<ringbolt_bus::FeedState> {
    recs.iter()
        .filter(|r| r.venue == venue as u8 && r.stream == stream)
        .filter_map(|r| {
            ringbolt_bus::FeedState::from_u8(r.body_as::<ringbolt_bus::FeedStatusBody>()?.state)
        })
        .collect()
}

/// Whether `venue`'s `stream` went through the states `seq` in that order (others between).
pub fn went_through(
    recs: &[ringbolt_bus::Record],
    venue: ringbolt_bus::Venue,
    stream: u8,
    seq: &[ringbolt_bus::FeedState],
) -> bool {
    let seen = feed_states(recs, venue, stream);
    let mut it = seen.iter();
    seq.iter().all(|n| it.any(|h| h == n))
}
